/* test_seg_data.c - segmentation pairs and batches (include/deft/seg_data.h):
 * pairing by stem (an image without a mask skipped and counted), masks through the label
 * map (unknown value and size mismatch named, 0/255 binary masks, ignore id), and the
 * transform moving image and mask together: images whose grey level encodes the class go
 * through flips and crop-and-resize and still agree with their masks; the same seed and
 * epoch give the same batch; grey input is the mean of R, G, B scaled to [-1, 1]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft_test.h"
#include "deft/data.h"
#include "deft/report.h"
#include "deft/seg_data.h"

enum { W = 64, H = 48 };

/* class of pixel (x, y): 4 blocks of 16 columns x 2 bands of rows */
static int cls_at(int x, int y, int k) { return ((x / 16) + 2 * (y / 24) + k) % 4; }

static void write_png(const char *path, int w, int h, int (*val)(int, int, int), int k, int scale, int off) {
    struct deft_image im = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memset(im.rgb + ((size_t)y * w + x) * 3, val(x, y, k) * scale + off, 3);
    CHECK_OK(deft_image_save_png(&im, path));
    free(im.rgb);
}

static char dir[512];

static void make_data(void) {
    char p[700];
    snprintf(dir, sizeof dir, "%s/seg", test_tmpdir());
    snprintf(p, sizeof p, "mkdir -p %s/img %s/mask", dir, dir);
    CHECK(system(p) == 0, "mkdir");
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/img/im%d.png", dir, k);
        write_png(p, W, H, cls_at, k, 40, 20);
        if (k == 4) continue; /* no mask */
        snprintf(p, sizeof p, "%s/mask/im%d.png", dir, k);
        write_png(p, W, H, cls_at, k, 1, 0);
    }
}

static void pairs(void) {
    struct deft_seg_dataset ds;
    char im[600], mk[600];
    snprintf(im, sizeof im, "%s/img", dir);
    snprintf(mk, sizeof mk, "%s/mask", dir);
    CHECK_OK(deft_seg_dataset_open(im, mk, &ds));
    CHECK(ds.n == 4 && ds.missing_masks == 1, "4 pairs and 1 image without a mask, got %d and %d", ds.n,
          ds.missing_masks);
    CHECK(ds.n && strstr(ds.samples[0].image, "im0.png") && strstr(ds.samples[0].mask, "mask/im0.png"),
          "pairs sorted by name");
    deft_seg_dataset_free(&ds);
    CHECK_OK(deft_seg_dataset_open(im, NULL, &ds));
    CHECK(ds.n == 5 && !ds.samples[0].mask, "images only: 5");
    deft_seg_dataset_free(&ds);
    snprintf(mk, sizeof mk, "%s/nothing", dir);
    CHECK(deft_seg_dataset_open(mk, NULL, &ds) == DEFT_ERR_NOT_FOUND, "a missing folder: NOT_FOUND");
}

static void masks(void) {
    struct deft_seg_label_map lm;
    deft_seg_label_map_init(&lm);
    lm.class_of[0] = 0, lm.class_of[1] = 1, lm.class_of[2] = 2;
    char p[600];
    snprintf(p, sizeof p, "%s/mask/im0.png", dir);
    int32_t *m = NULL;
    int w, h;
    CHECK(deft_seg_mask_load(p, &lm, &m, &w, &h) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "value 3") &&
              strstr(deft_last_error(), "im0.png"),
          "an unlisted mask value is named with the file: %s", deft_last_error());
    lm.class_of[3] = DEFT_SEG_IGNORE;
    CHECK_OK(deft_seg_mask_load(p, &lm, &m, &w, &h));
    CHECK(m && w == W && h == H && m[0] == 0 && m[16] == 1 && m[48] == DEFT_SEG_IGNORE, "mask as classes");
    free(m);
    /* 0/255 binary masks with ids 0 and 1 */
    snprintf(p, sizeof p, "%s/bin.png", dir);
    struct deft_image im = {4, 1, (uint8_t[]){0, 0, 0, 255, 255, 255, 200, 200, 200, 0, 0, 0}};
    CHECK_OK(deft_image_save_png(&im, p));
    deft_seg_label_map_init(&lm);
    lm.class_of[0] = 1, lm.class_of[1] = 0; /* ISBI: label_id 0 is the membrane class */
    lm.binary = true;
    m = NULL;
    CHECK_OK(deft_seg_mask_load(p, &lm, &m, &w, &h));
    CHECK(m && m[0] == 1 && m[1] == 0 && m[2] == 0 && m[3] == 1, "0/255 mask read as ids 0/1");
    free(m);
}

/* Fraction of pixels whose image grey level (x / 127.5 - 1 of 40 c + 20) gives the mask's class. */
static double agreement(const float *img, const int32_t *mask, int n) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        float v = (img[i] + 1) * 127.5f;
        int c = (int)((v - 20) / 40 + 0.5f);
        ok += c == mask[i];
    }
    return (double)ok / n;
}

/* The generated pairs with ids 0..3 as classes 0..3. */
static void open_blocks(struct deft_seg_dataset *ds, struct deft_seg_label_map *lm) {
    char im[600], mk[600];
    snprintf(im, sizeof im, "%s/img", dir);
    snprintf(mk, sizeof mk, "%s/mask", dir);
    CHECK_OK(deft_seg_dataset_open(im, mk, ds));
    deft_seg_label_map_init(lm);
    for (int i = 0; i < 4; i++) lm->class_of[i] = (int16_t)i;
}

static void batches(void) {
    struct deft_seg_dataset ds;
    struct deft_seg_label_map lm;
    open_blocks(&ds, &lm);
    struct deft_seg_loader_opts o = {.batch = 2, .width = 32, .height = 32, .channels = 1, .labels = &lm,
                                     .shuffle = true, .hflip = 0.5f, .vflip = 0.5f, .crop_and_resize = 0.5f,
                                     .seed = 3};
    struct deft_seg_loader *l = NULL;
    CHECK_OK(deft_seg_loader_create(&o, &ds, &l));
    if (!l) goto done;
    float img[2 * 32 * 32], img2[2 * 32 * 32];
    int32_t mask[2 * 32 * 32], mask2[2 * 32 * 32];
    int n, idx[2], worst_epoch = -1;
    double worst = 1;
    for (int e = 0; e < 6; e++) {
        CHECK_OK(deft_seg_loader_start_epoch(l, e));
        for (;;) {
            CHECK_OK(deft_seg_loader_next(l, img, mask, idx, &n));
            if (!n) break;
            for (int i = 0; i < n; i++) {
                double a = agreement(img + i * 1024, mask + i * 1024, 1024);
                if (a < worst) worst = a, worst_epoch = e;
            }
        }
    }
    printf("worst image/mask agreement over 6 augmented epochs: %.4f\n", worst);
    /* bilinear images mix classes only along block edges */
    CHECK(worst >= 0.9, "image and mask agree on >= 90%% of pixels after flips and crops (worst %.3f, epoch %d)",
          worst, worst_epoch);
    CHECK_OK(deft_seg_loader_start_epoch(l, 2));
    CHECK_OK(deft_seg_loader_next(l, img, mask, idx, &n));
    CHECK_OK(deft_seg_loader_start_epoch(l, 2));
    CHECK_OK(deft_seg_loader_next(l, img2, mask2, NULL, &n));
    CHECK(!memcmp(img, img2, sizeof img) && !memcmp(mask, mask2, sizeof mask), "same seed and epoch: same batch");
    /* no augmentation: the plain resize, grey values exact inside blocks */
    struct deft_seg_loader_opts v = {.batch = 1, .width = W, .height = H, .channels = 1, .labels = &lm};
    float full[W * H];
    int32_t fm[W * H];
    CHECK_OK(deft_seg_load_pair(&v, &ds.samples[1], full, fm));
    CHECK(fm[0] == 1 && full[0] == (60.0f / 127.5f - 1.0f) && agreement(full, fm, W * H) == 1.0,
          "validation transform: value %g class %d", full[0], fm[0]);
    /* a mask of another size than its image is named */
    char p[700];
    snprintf(p, sizeof p, "%s/mask/im2.png", dir);
    write_png(p, W / 2, H, cls_at, 2, 1, 0);
    CHECK(deft_seg_load_pair(&v, &ds.samples[2], full, fm) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "im2.png is 32x48 but its image"),
          "size mismatch named: %s", deft_last_error());
done:
    deft_seg_loader_free(l);
    deft_seg_dataset_free(&ds);
}

/* resize_padding: 64x48 into 32x32 keeps 4:3 as 32x24 at y = 4 (TF's resize_with_pad); the
 * bands above and below are black and ignored; resize_method NEAREST keeps block values exact. */
static void padding(void) {
    struct deft_seg_dataset ds;
    struct deft_seg_label_map lm;
    open_blocks(&ds, &lm);
    struct deft_seg_loader_opts o = {.batch = 1, .width = 32, .height = 32, .channels = 1, .labels = &lm,
                                     .pad = true, .filter = DEFT_RESAMPLE_NEAREST};
    struct deft_seg_place pl = deft_seg_place_of(&o, W, H);
    CHECK(pl.x == 0 && pl.y == 4 && pl.w == 32 && pl.h == 24, "64x48 in 32x32: at (%d,%d) %dx%d", pl.x, pl.y, pl.w,
          pl.h);
    pl = deft_seg_place_of(&o, 30, 100);
    CHECK(pl.x == 11 && pl.y == 0 && pl.w == 9 && pl.h == 32, "30x100 in 32x32: at (%d,%d) %dx%d", pl.x, pl.y, pl.w,
          pl.h);
    float img[32 * 32];
    int32_t mask[32 * 32];
    if (ds.n > 1) CHECK_OK(deft_seg_load_pair(&o, &ds.samples[1], img, mask));
    int pad_ok = 0, pad_n = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            if (y < 4 || y >= 28) pad_n++, pad_ok += mask[y * 32 + x] == DEFT_SEG_IGNORE && img[y * 32 + x] == -1.0f;
    CHECK(pad_ok == pad_n, "padding rows: black and ignored (%d of %d)", pad_ok, pad_n);
    CHECK(agreement(img + 4 * 32, mask + 4 * 32, 24 * 32) == 1.0, "nearest-neighbour image inside: exact classes");
    o.filter = DEFT_RESAMPLE_AREA;
    if (ds.n > 1) CHECK_OK(deft_seg_load_pair(&o, &ds.samples[1], img, mask));
    CHECK(agreement(img + 4 * 32, mask + 4 * 32, 24 * 32) == 1.0, "area (2x2 means of equal blocks) inside: exact");
    deft_seg_dataset_free(&ds);
}

int main(void) {
    make_data();
    pairs();
    masks();
    batches();
    padding();
    return test_summary();
}

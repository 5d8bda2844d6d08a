/* test_transform.c - resampling vs torch F.interpolate, preprocessing modes
 * vs the numpy formulas, color jitter vs torchvision.functional, flip /
 * rotation / crop geometry and determinism of the random transform. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/data.h"

static char dir[512];

static const char *P(const char *name) {
    static char buf[4][768];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static float *ref(const char *name, size_t expect) {
    int64_t shape[8];
    int nd = 0;
    float *r = test_npy_read(P(name), shape, &nd);
    size_t n = 1;
    for (int i = 0; r && i < nd; i++) n *= (size_t)shape[i];
    if (!r || n != expect) {
        CHECK(0, "reference %s missing or %zu elements (want %zu)", name, n, expect);
        free(r);
        return NULL;
    }
    return r;
}

static void check_resize(const struct deft_image *im, const struct deft_resample *r, int ow, int oh,
                         const char *name, double tol) {
    float *out = malloc(sizeof(float) * 3 * ow * oh);
    CHECK_OK(deft_image_resample_chw(im, r, ow, oh, out));
    float *e = ref(name, (size_t)3 * ow * oh);
    if (e) {
        double d = test_max_abs_diff(out, e, (size_t)3 * ow * oh);
        CHECK(d <= tol, "resize %s: max diff %.5f", name, d);
    }
    free(e);
    free(out);
}

/* Grey input: deft_image_to_gray is PIL's convert('L') exactly; each mode's
 * grey preprocessing matches numpy on that plane; a grey transform with every
 * augmentation is the first plane of the RGB transform of the grey image
 * (same draws; saturation and hue leave grey alone). */
static void check_gray(const struct deft_image *im) {
    static const char *const modes[] = {"caffe", "torch", "tf", "torchvision"};
    static const char *const files[] = {"pre_gray_caffe.npy", "pre_gray_torch.npy", "pre_gray_tf.npy",
                                        "pre_gray_torchvision.npy"};
    const int W = im->w, H = im->h;
    size_t plane = (size_t)W * H, n = 3 * plane;
    struct deft_image g = {W, H, deft_malloc(n)};
    float *chw = malloc(sizeof(float) * n), *e = ref("src_gray.npy", plane);
    if (!g.rgb || !chw || !e) goto done;
    memcpy(g.rgb, im->rgb, n);
    deft_image_to_gray(&g);
    int bad = 0;
    for (size_t i = 0; i < plane; i++)
        bad += g.rgb[3 * i] != e[i] || g.rgb[3 * i + 1] != e[i] || g.rgb[3 * i + 2] != e[i];
    CHECK(bad == 0, "deft_image_to_gray == PIL convert('L') (%d pixels differ)", bad);
    for (int m = 0; m < 4; m++) {
        enum deft_preprocess_mode mode;
        CHECK_OK(deft_preprocess_parse(modes[m], &mode));
        struct deft_preprocess p;
        deft_preprocess_init(&p, mode);
        deft_preprocess_set_gray(&p);
        CHECK(deft_preprocess_channels(&p) == 1 && !p.bgr, "%s: grey is one plane, no channel order", modes[m]);
        CHECK_OK(deft_image_resize_chw(&g, W, H, chw));
        deft_preprocess_apply(&p, chw, H, W);
        float *r = ref(files[m], plane);
        if (r) CHECK(test_max_abs_diff(chw, r, plane) <= 1e-6, "grey preprocess %s: max diff %g", modes[m],
                     test_max_abs_diff(chw, r, plane));
        free(r);
    }
    struct deft_transform t;
    deft_transform_defaults(&t);
    t.out_w = 24;
    t.out_h = 20;
    t.aug.crop = DEFT_CROP_RANDOM_RESIZED;
    t.aug.hflip_prob = t.aug.vflip_prob = t.aug.rotate_prob = 0.5f;
    t.aug.rotate_deg = 15.0f;
    t.aug.brightness = t.aug.contrast = 0.4f;
    deft_preprocess_init(&t.pre, DEFT_PREPROCESS_TORCH);
    t.pre.std[0] = t.pre.std[1] = t.pre.std[2] = 0.224f;
    t.pre.mean[0] = t.pre.mean[1] = t.pre.mean[2] = 0.449f;
    size_t on = 24 * 20;
    float *rgb = malloc(sizeof(float) * 3 * on), *grey = malloc(sizeof(float) * on);
    for (uint64_t k = 0; rgb && grey && k < 8; k++) {
        CHECK_OK(deft_transform_apply(&t, &g, 11, k, rgb)); /* RGB pipeline on the grey image */
        struct deft_transform tg = t;
        tg.aug.saturation = 0.4f;
        tg.aug.hue = 0.1f;
        deft_preprocess_set_gray(&tg.pre);
        CHECK_OK(deft_transform_apply(&tg, im, 11, k, grey)); /* grey pipeline on the colour image */
        CHECK(test_max_abs_diff(grey, rgb, on) == 0, "grey transform (stream %d) = plane 0 of the RGB one, max "
              "diff %g", (int)k, test_max_abs_diff(grey, rgb, on));
    }
    uint8_t *png;
    size_t pn;
    CHECK_OK(deft_read_file(P("src.png"), 1 << 20, &png, &pn));
    float *viab = malloc(sizeof(float) * on);
    struct deft_transform tg = t;
    deft_preprocess_set_gray(&tg.pre);
    CHECK_OK(deft_transform_apply(&tg, im, 3, 9, grey));
    CHECK_OK(deft_transform_bytes(&tg, png, pn, 3, 9, viab));
    CHECK(viab && !memcmp(grey, viab, sizeof(float) * on), "grey: transform_bytes == decode + transform_apply");
    deft_free(png);
    free(viab);
    free(rgb);
    free(grey);
done:
    deft_free(g.rgb);
    free(chw);
    free(e);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/img", test_tmpdir());
    char cmd[2048];
    bool torch = test_have_torch();
    if (!torch) test_skip_part("python3 with torch not available: torchvision's transforms are not compared");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && /usr/bin/python3 '%s/tests/data/make_images.py' '%s' %s", dir,
             test_source_dir(), dir, torch ? "--torch" : "");
    if (system(cmd) != 0) test_skip("python3 with numpy + PIL is needed to write the test images");
    long live0 = deft_alloc_live();

    struct deft_image im;
    CHECK_OK(deft_image_load(P("src.png"), NULL, &im));
    if (!im.rgb) return test_summary();
    const int W = im.w, H = im.h; /* 37 x 29 */
    size_t plane = (size_t)W * H;
    float *chw = malloc(sizeof(float) * 3 * plane);
    float *tmp = malloc(sizeof(float) * 3 * plane);

    /* ---- resize vs torch ---- */
    if (torch) {
        struct deft_resample full = {0, 0, (float)W, (float)H, false};
        check_resize(&im, &full, 50, 40, "rs_up.npy", 1e-3);
        check_resize(&im, &full, 20, 17, "rs_down.npy", 1e-3);
        check_resize(&im, &full, 9, 7, "rs_aa.npy", 1e-3); /* > 2x: antialias=True */
        check_resize(&im, &full, W, H, "rs_same.npy", 0);
        struct deft_resample crop = {5, 3, 20, 15, true};
        check_resize(&im, &crop, 16, 12, "rs_crop.npy", 1e-3);
        /* the fixed filters of TAO UNet's resize_method, at 1.35x up, 1.8x and 4x down */
        static const struct {
            enum deft_resample_filter f;
            const char *name;
        } fixed[] = {{DEFT_RESAMPLE_BILINEAR, "bilinear"}, {DEFT_RESAMPLE_NEAREST, "nearest"},
                     {DEFT_RESAMPLE_BICUBIC, "bicubic"}};
        static const struct {
            int w, h;
            const char *name;
        } sizes[] = {{50, 40, "up"}, {20, 17, "down"}, {9, 7, "far"}};
        char name[64];
        for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++)
            for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
                struct deft_resample r = {0, 0, (float)W, (float)H, false, fixed[f].f};
                snprintf(name, sizeof name, "rs_%s_%s.npy", fixed[f].name, sizes[k].name);
                check_resize(&im, &r, sizes[k].w, sizes[k].h, name, 2e-3);
            }
        struct deft_resample area = {0, 0, (float)W, (float)H, false, DEFT_RESAMPLE_AREA};
        check_resize(&im, &area, 20, 17, "rs_area_down.npy", 2e-3);
        check_resize(&im, &area, 9, 7, "rs_area_far.npy", 2e-3);
    }

    /* ---- preprocessing: exact vs numpy ---- */
    CHECK_OK(deft_image_resize_chw(&im, W, H, chw));
    float *src = ref("src_chw.npy", 3 * plane);
    if (src) CHECK(test_max_abs_diff(chw, src, 3 * plane) == 0, "identity resize is exact");
    struct {
        const char *name, *file;
    } modes[] = {{"caffe", "pre_caffe.npy"}, {"torch", "pre_torch.npy"}, {"tf", "pre_tf.npy"},
                 {"torchvision", "pre_torchvision.npy"}};
    for (int m = 0; m < 4; m++) {
        enum deft_preprocess_mode mode;
        CHECK_OK(deft_preprocess_parse(modes[m].name, &mode));
        struct deft_preprocess p;
        deft_preprocess_init(&p, mode);
        memcpy(tmp, chw, sizeof(float) * 3 * plane);
        deft_preprocess_apply(&p, tmp, H, W);
        float *e = ref(modes[m].file, 3 * plane);
        if (e) CHECK(test_max_abs_diff(tmp, e, 3 * plane) == 0, "preprocess %s: max diff %g", modes[m].name,
                     test_max_abs_diff(tmp, e, 3 * plane));
        free(e);
    }
    enum deft_preprocess_mode mode;
    CHECK(deft_preprocess_parse("yolo", &mode) == DEFT_ERR_INVALID_ARG, "unknown mode rejected");
    check_gray(&im);

    /* ---- color jitter vs torchvision (float tensors in [0,1], scaled) ---- */
    if (torch) {
        struct {
            const char *file;
            void (*fn)(float *, int, int, float);
            float f;
        } cj[] = {{"cj_bright.npy", deft_adjust_brightness, 1.3f},
                  {"cj_contrast.npy", deft_adjust_contrast, 0.6f},
                  {"cj_sat.npy", deft_adjust_saturation, 1.7f},
                  {"cj_hue.npy", deft_adjust_hue, 0.21f},
                  {"cj_hue_neg.npy", deft_adjust_hue, -0.4f}};
        for (int i = 0; i < 5; i++) {
            memcpy(tmp, chw, sizeof(float) * 3 * plane);
            cj[i].fn(tmp, H, W, cj[i].f);
            float *e = ref(cj[i].file, 3 * plane);
            if (e) CHECK(test_max_abs_diff(tmp, e, 3 * plane) < 2e-3, "%s: max diff %g", cj[i].file,
                         test_max_abs_diff(tmp, e, 3 * plane));
            free(e);
        }
    }

    /* ---- flips and rotation geometry ---- */
    memcpy(tmp, chw, sizeof(float) * 3 * plane);
    deft_augment_hflip(tmp, H, W);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) bad += tmp[c * plane + y * W + x] != chw[c * plane + y * W + (W - 1 - x)];
    CHECK(bad == 0, "hflip geometry");
    memcpy(tmp, chw, sizeof(float) * 3 * plane);
    deft_augment_vflip(tmp, H, W);
    bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) bad += tmp[c * plane + y * W + x] != chw[c * plane + (H - 1 - y) * W + x];
    CHECK(bad == 0, "vflip geometry");
    {   /* 90 degrees on a square: counter-clockwise == np.rot90 */
        const int S = 16;
        float sq[3 * 16 * 16], rot[3 * 16 * 16], scratch[3 * 16 * 16];
        for (int i = 0; i < 3 * S * S; i++) sq[i] = (float)((i * 37) % 251);
        memcpy(rot, sq, sizeof sq);
        deft_augment_rotate(rot, S, S, 90.0f, scratch);
        double md = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) { /* rot90: out[y][x] = in[x][S-1-y] */
                    double d = fabs(rot[c * S * S + y * S + x] - sq[c * S * S + x * S + (S - 1 - y)]);
                    if (d > md) md = d;
                }
        CHECK(md < 1e-3, "rotate 90 = rot90 (max diff %g)", md);
        memcpy(rot, sq, sizeof sq);
        deft_augment_rotate(rot, S, S, 45.0f, scratch);
        CHECK(rot[0] == 0.0f && rot[S - 1] == 0.0f, "rotate 45: corners filled with 0");
    }

    /* ---- random resized crop box ---- */
    struct deft_augment a;
    deft_augment_defaults(&a);
    int box[4], box2[4];
    bool inside = true, varied = false;
    for (uint64_t s = 0; s < 500; s++) {
        deft_random_resized_crop_box(300, 200, &a, 42, s, box);
        inside &= box[0] >= 0 && box[1] >= 0 && box[2] > 0 && box[3] > 0 && box[0] + box[2] <= 300 &&
                  box[1] + box[3] <= 200;
        double area = (double)box[2] * box[3] / (300.0 * 200.0);
        double ratio = (double)box[2] / box[3];
        /* rounding to whole pixels moves area/ratio a little past the ranges */
        inside &= area > 0.07 && area <= 1.0 && ratio > 0.7 && ratio < 1.45;
        deft_random_resized_crop_box(300, 200, &a, 42, s, box2);
        inside &= !memcmp(box, box2, sizeof box);
        if (s > 0 && box[0] != 0) varied = true;
    }
    CHECK(inside && varied, "random resized crop boxes inside the image, in range, reproducible");
    a.scale_min = a.scale_max = 1.0f; /* 1000x10 image: ratio 100 out of range -> fallback */
    deft_random_resized_crop_box(1000, 10, &a, 1, 2, box);
    CHECK(box[2] == 13 && box[3] == 10 && box[0] == (1000 - 13) / 2 && box[1] == 0,
          "fallback center crop: %d %d %d %d", box[0], box[1], box[2], box[3]);

    /* ---- full transform: determinism and consistency ---- */
    struct deft_transform t;
    deft_transform_defaults(&t);
    t.out_w = 24;
    t.out_h = 20;
    t.aug.crop = DEFT_CROP_RANDOM_RESIZED;
    t.aug.hflip_prob = 0.5f;
    t.aug.vflip_prob = 0.5f;
    t.aug.rotate_prob = 0.5f;
    t.aug.rotate_deg = 15.0f;
    t.aug.brightness = t.aug.contrast = t.aug.saturation = 0.4f;
    t.aug.hue = 0.1f;
    deft_preprocess_init(&t.pre, DEFT_PREPROCESS_TORCHVISION);
    size_t on = 3 * 24 * 20;
    float *o1 = malloc(sizeof(float) * on), *o2 = malloc(sizeof(float) * on), *o3 = malloc(sizeof(float) * on);
    CHECK_OK(deft_transform_apply(&t, &im, 7, 1234, o1));
    CHECK_OK(deft_transform_apply(&t, &im, 7, 1234, o2));
    CHECK(!memcmp(o1, o2, sizeof(float) * on), "same seed+stream -> same bytes");
    CHECK_OK(deft_transform_apply(&t, &im, 7, 1235, o3));
    CHECK(memcmp(o1, o3, sizeof(float) * on) != 0, "another stream -> another sample");
    uint8_t *png;
    size_t pn;
    CHECK_OK(deft_read_file(P("src.png"), 1 << 20, &png, &pn));
    CHECK_OK(deft_transform_bytes(&t, png, pn, 7, 1234, o2));
    CHECK(!memcmp(o1, o2, sizeof(float) * on), "transform_bytes == decode + transform_apply");
    deft_free(png);
    /* fixed jitter order is also deterministic and differs from the random one for some stream */
    t.aug.jitter_fixed_order = true;
    CHECK_OK(deft_transform_apply(&t, &im, 7, 1234, o2));
    CHECK_OK(deft_transform_apply(&t, &im, 7, 1234, o3));
    CHECK(!memcmp(o2, o3, sizeof(float) * on), "fixed order deterministic");
    /* hflip on its own: the transformed output is the mirror of the plain one */
    deft_transform_defaults(&t);
    t.out_w = 24;
    t.out_h = 20;
    CHECK_OK(deft_transform_apply(&t, &im, 7, 5, o1));
    t.aug.hflip_prob = 1.0f;
    CHECK_OK(deft_transform_apply(&t, &im, 7, 5, o2));
    deft_augment_hflip(o2, 20, 24);
    CHECK(!memcmp(o1, o2, sizeof(float) * on), "hflip(p=1) mirrors the output");
    /* TAO center crop: 37x29 -> 24x20 with padding 8: cover 32x28, ratio
     * max(32/37, 28/29) = 0.9655 -> 35x28, window at (6, 4). */
    t.aug.hflip_prob = 0;
    t.resize = DEFT_RESIZE_CENTER_CROP;
    t.crop_padding = 8;
    deft_preprocess_init(&t.pre, DEFT_PREPROCESS_CUSTOM);
    CHECK_OK(deft_transform_apply(&t, &im, 0, 0, o1));
    struct deft_resample rr = {(float)(6 * 37.0 / 35.0), (float)(4 * 29.0 / 28.0), (float)(24 * 37.0 / 35.0),
                               (float)(20 * 29.0 / 28.0), false};
    CHECK_OK(deft_image_resample_chw(&im, &rr, 24, 20, o2));
    CHECK(test_max_abs_diff(o1, o2, on) < 1e-4, "center crop window");
    /* bad options */
    t.aug.hue = 0.7f;
    CHECK(deft_transform_apply(&t, &im, 0, 0, o1) == DEFT_ERR_INVALID_ARG, "hue > 0.5 rejected");

    /* Beta sampling: mean a/(a+b), reproducible. */
    double sum = 0;
    for (int i = 0; i < 4000; i++) sum += deft_rng_beta(3, (uint64_t)i, 0.4, 0.4);
    CHECK(fabs(sum / 4000 - 0.5) < 0.03, "Beta(0.4,0.4) mean %.3f", sum / 4000);
    sum = 0;
    for (int i = 0; i < 4000; i++) sum += deft_rng_beta(3, (uint64_t)i, 2.0, 6.0);
    CHECK(fabs(sum / 4000 - 0.25) < 0.02, "Beta(2,6) mean %.3f", sum / 4000);
    CHECK(deft_rng_beta(1, 2, 0.2, 0.2) == deft_rng_beta(1, 2, 0.2, 0.2), "beta reproducible");

    free(o1);
    free(o2);
    free(o3);
    free(src);
    free(chw);
    free(tmp);
    deft_image_free(&im);
    CHECK(deft_alloc_live() == live0, "leaked %ld blocks", deft_alloc_live() - live0);
    return test_summary();
}

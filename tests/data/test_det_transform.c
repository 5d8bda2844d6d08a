/* test_det_transform.c - detection transforms move boxes (and masks) with
 * the pixels: scenes of filled rectangles in distinct colours go through
 * letterbox, flips, jitter, mosaic and the loader's random input shapes,
 * and every output box must match where its colour ended up (1 px). Also:
 * letterbox round trip and JSON, difficult boxes, HSV against Python's own
 * conversion (cv2 when importable, else colorsys) at test time, and
 * bit-identical loader batches for 1 and 2 worker threads, corrupt images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/data.h"
#include "deft/det_loader.h"

#define NPAL 12
static const float PAL[NPAL][3] = {{255, 0, 0},   {0, 255, 0},   {0, 0, 255},   {255, 255, 0},
                                   {255, 0, 255}, {0, 255, 255}, {255, 128, 0}, {128, 255, 0},
                                   {0, 128, 255}, {255, 0, 128}, {128, 0, 255}, {0, 255, 128}};
static const uint8_t BG = 40;

struct scene {
    struct deft_image img;
    struct deft_box boxes[3];
    uint8_t *mask;
};

/* Image j of size W x H: three rectangles of colours 3j..3j+2 (class ids
 * the same), the first touching the left edge, the last the bottom edge. */
static void make_scene(struct scene *s, int j, int W, int H) {
    s->img.w = W;
    s->img.h = H;
    s->img.rgb = deft_malloc((size_t)W * H * 3);
    s->mask = malloc((size_t)W * H);
    memset(s->img.rgb, BG, (size_t)W * H * 3);
    memset(s->mask, 0, (size_t)W * H);
    int r[3][4] = {{0, H / 8, W / 4, H / 2},
                   {W / 3, H / 10, W / 3 + W / 5, H / 10 + H / 3},
                   {W / 2 + W / 8, H / 2 + H / 8, W - W / 10, H}};
    for (int k = 0; k < 3; k++) {
        int c = 3 * j + k;
        for (int y = r[k][1]; y < r[k][3]; y++)
            for (int x = r[k][0]; x < r[k][2]; x++) {
                for (int q = 0; q < 3; q++) s->img.rgb[((size_t)y * W + x) * 3 + q] = (uint8_t)PAL[c][q];
                s->mask[(size_t)y * W + x] = (uint8_t)(c + 1);
            }
        s->boxes[k] = (struct deft_box){(float)r[k][0], (float)r[k][1], (float)r[k][2], (float)r[k][3], c, false, 1};
    }
}

static void free_scene(struct scene *s) {
    deft_image_free(&s->img);
    free(s->mask);
}

/* Undo preprocessing: raw RGB 0..255 (CHW) from the network input. */
static void unpre(const struct deft_preprocess *p, const float *in, int w, int h, float *raw) {
    size_t plane = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        int src = p->bgr ? 2 - c : c;
        for (size_t i = 0; i < plane; i++) raw[src * plane + i] = (in[c * plane + i] * p->std[c] + p->mean[c]) * p->divisor;
    }
}

/* Every box matches the extent of its colour (and of its mask id) within 1
 * px; every colour that is visible has a box. boxes in network pixels. */
static void check_match(const float *raw, const uint8_t *mask, int w, int h, const struct deft_box *b, int nb,
                        const char *what) {
    size_t plane = (size_t)w * h;
    for (int c = 0; c < NPAL; c++) {
        int x0 = w, y0 = h, x1 = -1, y1 = -1, cnt = 0;
        int mx0 = w, my0 = h, mx1 = -1, my1 = -1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                bool in = true;
                for (int q = 0; q < 3 && in; q++) in = fabsf(raw[q * plane + i] - PAL[c][q]) < 60.0f;
                if (in) {
                    cnt++;
                    if (x < x0) x0 = x;
                    if (x > x1) x1 = x;
                    if (y < y0) y0 = y;
                    if (y > y1) y1 = y;
                }
                if (mask && mask[i] == c + 1) {
                    if (x < mx0) mx0 = x;
                    if (x > mx1) mx1 = x;
                    if (y < my0) my0 = y;
                    if (y > my1) my1 = y;
                }
            }
        int found = -1, dup = 0;
        for (int k = 0; k < nb; k++)
            if (b[k].cls == c) found = found < 0 ? k : (dup = 1, found);
        CHECK(!dup, "%s: class %d has two boxes", what, c);
        if (found < 0) {
            CHECK(cnt < 6, "%s: colour %d visible (%d px) but no box", what, c, cnt);
            continue;
        }
        const struct deft_box *B = &b[found];
        if (B->x2 - B->x1 < 2 || B->y2 - B->y1 < 2) continue; /* slivers: too thin to see */
        CHECK(cnt > 0, "%s: box of class %d (%.1f %.1f %.1f %.1f) but no pixels", what, c, B->x1, B->y1, B->x2, B->y2);
        if (!cnt) continue;
        double e = fmax(fmax(fabs(B->x1 - x0), fabs(B->x2 - (x1 + 1))), fmax(fabs(B->y1 - y0), fabs(B->y2 - (y1 + 1))));
        CHECK(e <= 1.0, "%s: class %d box (%.2f %.2f %.2f %.2f) vs pixels (%d %d %d %d): %.2f px", what, c, B->x1,
              B->y1, B->x2, B->y2, x0, y0, x1 + 1, y1 + 1, e);
        if (mask && mx1 >= 0) {
            double em = fmax(fmax(fabs(B->x1 - mx0), fabs(B->x2 - (mx1 + 1))),
                             fmax(fabs(B->y1 - my0), fabs(B->y2 - (my1 + 1))));
            CHECK(em <= 1.0, "%s: class %d mask extent off by %.2f px", what, c, em);
        }
    }
}

/* Apply t to scenes (1 or 4) and check. */
static void run_case(const struct deft_det_transform *t, struct scene *sc, int n_in, int nw, int nh, uint64_t seed,
                     uint64_t stream, const char *what) {
    struct deft_det_input in[4];
    for (int j = 0; j < n_in; j++) in[j] = (struct deft_det_input){&sc[j].img, sc[j].boxes, 3, sc[j].mask, 0, 0};
    float *out = malloc(sizeof(float) * 3 * nw * nh), *raw = malloc(sizeof(float) * 3 * nw * nh);
    uint8_t *mask = malloc((size_t)nw * nh);
    struct deft_box boxes[12];
    int nb = 0;
    struct deft_letterbox lb;
    CHECK_OK(deft_det_transform_apply(t, in, n_in, nw, nh, seed, stream, out, mask, boxes, 12, &nb, &lb));
    unpre(&t->pre, out, nw, nh, raw);
    char name[160];
    snprintf(name, sizeof name, "%s (seed %llu)", what, (unsigned long long)seed);
    check_match(raw, mask, nw, nh, boxes, nb, name);
    free(out);
    free(raw);
    free(mask);
}

static void test_geometry(void) {
    struct scene sc[4];
    int sizes[4][2] = {{160, 100}, {120, 150}, {140, 140}, {200, 90}};
    for (int j = 0; j < 4; j++) make_scene(&sc[j], j, sizes[j][0], sizes[j][1]);
    struct deft_det_transform t;
    deft_det_transform_defaults(&t);

    /* letterbox (eval) */
    for (int j = 0; j < 4; j++) run_case(&t, &sc[j], 1, 128, 96, 0, 0, "letterbox");
    /* the padding is exactly 0 after preprocessing */
    {
        struct deft_det_input in = {&sc[1].img, sc[1].boxes, 3, NULL, 0, 0};
        float *out = malloc(sizeof(float) * 3 * 128 * 128);
        struct deft_box bx[3];
        int nb;
        struct deft_letterbox lb;
        CHECK_OK(deft_det_transform_apply(&t, &in, 1, 128, 128, 0, 0, out, NULL, bx, 3, &nb, &lb));
        CHECK(lb.off_x > 0 && out[0] == 0.0f && out[128 * 128] == 0.0f && out[2 * 128 * 128] == 0.0f,
              "letterbox padding is 0 after caffe preprocessing (%g %g %g)", out[0], out[128 * 128],
              out[2 * 128 * 128]);
        free(out);
    }
    /* flips alone */
    t.train = true;
    t.aug.hflip_prob = 1;
    run_case(&t, &sc[2], 1, 128, 128, 1, 1, "hflip");
    t.aug.vflip_prob = 1;
    run_case(&t, &sc[2], 1, 128, 128, 1, 1, "hflip+vflip");
    t.aug.hflip_prob = 0;
    run_case(&t, &sc[0], 1, 128, 96, 1, 1, "vflip");
    /* jitter + random flips */
    t.aug.vflip_prob = 0;
    t.aug.hflip_prob = 0.5f;
    t.aug.jitter = 0.3f;
    for (uint64_t s = 0; s < 12; s++) run_case(&t, &sc[s % 4], 1, 128, 128, 7, s, "jitter");
    /* mosaic */
    t.aug.mosaic_prob = 1;
    t.aug.mosaic_min_ratio = 0.2f;
    for (uint64_t s = 0; s < 10; s++) run_case(&t, sc, 4, 160, 128, 11, s, "mosaic");
    CHECK(deft_det_wants_mosaic(&t, 0, 0), "mosaic_prob 1 always mosaics");
    /* random shapes: every size the loader may use */
    t.aug.mosaic_prob = 0;
    t.net_w = 128;
    t.net_h = 96;
    t.aug.randomize_input_shape_period = 3;
    int seen_w[64] = {0};
    for (int64_t b = 0; b < 60; b++) {
        int w, h, w2, h2, mw, mh;
        deft_det_input_size(&t, 5, b, &w, &h);
        deft_det_input_size(&t, 5, b - b % 3, &w2, &h2);
        deft_det_max_input_size(&t, &mw, &mh);
        CHECK(w == w2 && h == h2, "size constant within a period");
        CHECK(w % 32 == 0 && h % 32 == 0 && w >= 0.6 * 128 && w <= 1.5 * 128 && w <= mw && h <= mh,
              "random size %dx%d in range", w, h);
        seen_w[w / 32] = 1;
        if (b % 3 == 0) run_case(&t, &sc[b % 4], 1, w, h, 3, (uint64_t)b, "random shape");
    }
    int distinct = 0;
    for (int i = 0; i < 64; i++) distinct += seen_w[i];
    CHECK(distinct >= 2, "random shapes vary (%d sizes)", distinct);
    for (int j = 0; j < 4; j++) free_scene(&sc[j]);
}

static void test_difficult(void) {
    struct scene s;
    make_scene(&s, 0, 100, 80);
    s.boxes[1].difficult = true;
    struct deft_det_transform t;
    deft_det_transform_defaults(&t);
    struct deft_det_input in = {&s.img, s.boxes, 3, NULL, 0, 0};
    float *out = malloc(sizeof(float) * 3 * 64 * 64);
    struct deft_box b[3];
    int nb;
    CHECK_OK(deft_det_transform_apply(&t, &in, 1, 64, 64, 0, 0, out, NULL, b, 3, &nb, NULL));
    CHECK(nb == 3 && b[1].difficult, "eval keeps difficult boxes, flagged");
    t.train = true;
    CHECK_OK(deft_det_transform_apply(&t, &in, 1, 64, 64, 0, 0, out, NULL, b, 3, &nb, NULL));
    CHECK(nb == 2 && b[0].cls == 0 && b[1].cls == 2, "training drops difficult boxes (got %d)", nb);
    t.aug.include_difficult = true;
    CHECK_OK(deft_det_transform_apply(&t, &in, 1, 64, 64, 0, 0, out, NULL, b, 3, &nb, NULL));
    CHECK(nb == 3, "include_difficult_in_training keeps them");
    free(out);
    free_scene(&s);
}

static void test_letterbox(void) {
    int sizes[][2] = {{640, 480}, {1242, 375}, {100, 300}, {416, 416}, {33, 17}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct deft_letterbox lb, lb2;
        CHECK_OK(deft_letterbox_make(sizes[i][0], sizes[i][1], 416, 320, &lb));
        double worst = 0;
        for (int k = 0; k < 200; k++) {
            struct deft_box b = {deft_rng_uniform(1, i, 4 * k) * sizes[i][0], deft_rng_uniform(1, i, 4 * k + 1) * sizes[i][1],
                                 0, 0, 0, false, 1};
            b.x2 = b.x1 + deft_rng_uniform(1, i, 4 * k + 2) * (sizes[i][0] - b.x1);
            b.y2 = b.y1 + deft_rng_uniform(1, i, 4 * k + 3) * (sizes[i][1] - b.y1);
            struct deft_box n = b;
            deft_letterbox_box_to_net(&lb, &n);
            CHECK(n.x1 >= lb.off_x - 1e-3 && n.x2 <= lb.off_x + lb.content_w + 1e-3 && n.y1 >= lb.off_y - 1e-3 &&
                      n.y2 <= lb.off_y + lb.content_h + 1e-3,
                  "box inside the content area");
            deft_letterbox_box_to_image(&lb, &n);
            worst = fmax(worst, fmax(fmax(fabs(n.x1 - b.x1), fabs(n.x2 - b.x2)), fmax(fabs(n.y1 - b.y1), fabs(n.y2 - b.y2))));
        }
        printf("letterbox round trip %dx%d -> 416x320: max error %.3g px\n", sizes[i][0], sizes[i][1], worst);
        CHECK(worst <= 1e-4,
              "letterbox round trip %dx%d: %.3g px", sizes[i][0], sizes[i][1], worst);
        CHECK(abs(lb.content_w - (int)(lb.scale_x * sizes[i][0] + 0.5)) == 0 &&
                  (lb.content_w == 416 || lb.content_h == 320),
              "content fills one side");
        char js[512];
        deft_letterbox_to_json(&lb, js, sizeof js);
        CHECK_OK(deft_letterbox_from_json(js, &lb2));
        CHECK(memcmp(&lb, &lb2, sizeof lb) == 0, "letterbox JSON round trip: %s", js);
    }
    struct deft_letterbox lb;
    CHECK(deft_letterbox_from_json("{\"type\":\"letterbox\",\"align\":\"center\",\"pad\":\"mean\",\"net_w\":\"x\"}", &lb) ==
              DEFT_ERR_FORMAT,
          "bad letterbox JSON is refused");
    CHECK(deft_letterbox_make(0, 10, 416, 416, &lb) == DEFT_ERR_INVALID_ARG, "empty image refused");
}

/* HSV: our conversion against Python's (cv2 when importable, else colorsys). */
static void test_hsv(void) {
    enum { N = 24 };
    float px[3 * N];
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 3; c++) px[c * N + i] = (float)(deft_rng_u64(9, (uint64_t)i, (uint64_t)c) % 256);
    px[0] = px[N] = px[2 * N] = 77; /* gray */
    px[1] = 0, px[N + 1] = 0, px[2 * N + 1] = 0; /* black */
    px[2] = 255, px[N + 2] = 0, px[2 * N + 2] = 0;
    const float cases[][3] = {{30, 1.3f, 0.8f}, {-75, 0.6f, 1.4f}, {170, 1.5f, 1.5f}, {0, 1, 1}};
    char path[600], outp[600], cmd[1400];
    snprintf(path, sizeof path, "%s/hsv.py", test_tmpdir());
    snprintf(outp, sizeof outp, "%s/hsv.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    fprintf(f, "import sys\npx = [");
    for (int i = 0; i < N; i++) fprintf(f, "(%g,%g,%g),", px[i], px[N + i], px[2 * N + i]);
    fprintf(f, "]\ncases = [");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) fprintf(f, "(%g,%g,%g),", cases[k][0], cases[k][1], cases[k][2]);
    fprintf(f, "]\n"
               "try:\n"
               "    import cv2, numpy as np\n"
               "    def conv(p, h, s, v):\n"
               "        a = np.array([[p]], np.float32)\n"
               "        x = cv2.cvtColor(a, cv2.COLOR_RGB2HSV)\n"
               "        x[..., 0] = (x[..., 0] + h) %% 360\n"
               "        x[..., 1] = np.clip(x[..., 1] * s, 0, 1)\n"
               "        x[..., 2] = np.clip(x[..., 2] * v, 0, 255)\n"
               "        return list(cv2.cvtColor(x, cv2.COLOR_HSV2RGB)[0, 0])\n"
               "    which = 'cv2'\n"
               "except ImportError:\n"
               "    import colorsys\n"
               "    def conv(p, h, s, v):\n"
               "        hh, ss, vv = colorsys.rgb_to_hsv(*[c / 255.0 for c in p])\n"
               "        hh = (hh + h / 360.0) %% 1.0\n"
               "        ss = min(max(ss * s, 0.0), 1.0)\n"
               "        vv = min(max(vv * v, 0.0), 1.0)\n"
               "        return [c * 255.0 for c in colorsys.hsv_to_rgb(hh, ss, vv)]\n"
               "    which = 'colorsys'\n"
               "with open(sys.argv[1], 'w') as o:\n"
               "    o.write(which + '\\n')\n"
               "    for h, s, v in cases:\n"
               "        for p in px:\n"
               "            o.write('%%.6f %%.6f %%.6f\\n' %% tuple(conv(p, h, s, v)))\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", path, outp);
    if (system(cmd) != 0) {
        test_skip_part("the HSV reference (/usr/bin/python3 with numpy/OpenCV) failed to run");
        return;
    }
    f = fopen(outp, "r");
    char which[32] = "";
    if (!f || fscanf(f, "%31s", which) != 1) {
        CHECK(0, "no HSV reference output");
        if (f) fclose(f);
        return;
    }
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float img[3 * N];
        memcpy(img, px, sizeof img);
        deft_det_adjust_hsv(img, 1, N, cases[k][0], cases[k][1], cases[k][2]);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            float r[3];
            if (fscanf(f, "%f %f %f", &r[0], &r[1], &r[2]) != 3) {
                CHECK(0, "short HSV reference");
                fclose(f);
                return;
            }
            for (int c = 0; c < 3; c++) worst = fmax(worst, fabs(img[c * N + i] - r[c]));
        }
        CHECK(worst <= 0.02, "HSV (%g deg, s %g, v %g) vs %s: max diff %.4f", cases[k][0], cases[k][1], cases[k][2],
              which, worst);
    }
    fclose(f);
    printf("HSV reference: %s\n", which);
}

/* ---- loader -------------------------------------------------------------------- */

static int write_bmp(const char *path, const struct deft_image *im) {
    int row = (im->w * 3 + 3) & ~3;
    uint32_t size = 54 + (uint32_t)row * im->h;
    uint8_t h[54] = {'B', 'M'};
    uint32_t v[] = {size, 0, 54, 40, (uint32_t)im->w, (uint32_t)im->h};
    for (int i = 0; i < 6; i++) memcpy(h + 2 + 4 * i, &v[i], 4);
    h[26] = 1;
    h[28] = 24;
    memcpy(h + 34, &(uint32_t){(uint32_t)row * im->h}, 4);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(h, 1, 54, f);
    uint8_t *line = calloc(1, (size_t)row);
    for (int y = im->h - 1; y >= 0; y--) {
        for (int x = 0; x < im->w; x++)
            for (int c = 0; c < 3; c++) line[3 * x + c] = im->rgb[((size_t)y * im->w + x) * 3 + 2 - c];
        fwrite(line, 1, (size_t)row, f);
    }
    free(line);
    return fclose(f);
}

#define NIMG 13
static struct deft_det_dataset ds;
static struct scene scenes[NIMG];

static void make_dataset(void) {
    ds.n = NIMG;
    ds.samples = calloc(NIMG, sizeof *ds.samples);
    for (int i = 0; i < NIMG; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/img%02d.bmp", test_tmpdir(), i);
        struct deft_det_sample *s = &ds.samples[i];
        s->image = strdup(p);
        if (i == 5) { /* corrupt */
            FILE *f = fopen(p, "wb");
            fputs("BM this is not an image", f);
            fclose(f);
            continue;
        }
        make_scene(&scenes[i], i % 4, 90 + 13 * i, 70 + 7 * (i % 5));
        CHECK(write_bmp(p, &scenes[i].img) == 0, "write %s", p);
        s->width = scenes[i].img.w;
        s->height = scenes[i].img.h;
        s->n_boxes = 3;
        s->boxes = scenes[i].boxes;
    }
}

struct run {
    int nb;
    size_t floats, boxes;
    float *img;
    struct deft_box *bx;
    int *meta; /* per batch: n, w, h, total; per item: n_boxes, index, corrupt */
    size_t nmeta;
    struct deft_loader_stats st;
};

static void run_loader(const struct deft_det_loader_opts *o, int epochs, struct run *r, bool check_pixels) {
    memset(r, 0, sizeof *r);
    struct deft_det_loader *l = NULL;
    CHECK_OK(deft_det_loader_create(o, &ds, &l));
    if (!l) return;
    for (int e = 0; e < epochs; e++) {
        CHECK_OK(deft_det_loader_start_epoch(l, e));
        struct deft_det_batch b;
        while (deft_det_loader_next(l, &b) == DEFT_OK && b.n > 0) {
            size_t f = (size_t)3 * b.w * b.h * b.n;
            r->img = realloc(r->img, sizeof(float) * (r->floats + f));
            memcpy(r->img + r->floats, b.images, sizeof(float) * f);
            r->floats += f;
            r->bx = realloc(r->bx, sizeof *r->bx * (r->boxes + (size_t)b.total_boxes + 1));
            memcpy(r->bx + r->boxes, b.boxes, sizeof *r->bx * (size_t)b.total_boxes);
            r->boxes += (size_t)b.total_boxes;
            r->meta = realloc(r->meta, sizeof(int) * (r->nmeta + 4 + 3 * (size_t)b.n));
            int *m = r->meta + r->nmeta;
            m[0] = b.n, m[1] = b.w, m[2] = b.h, m[3] = b.total_boxes;
            for (int i = 0; i < b.n; i++) {
                m[4 + 3 * i] = b.n_boxes[i];
                m[5 + 3 * i] = b.index[i];
                m[6 + 3 * i] = b.corrupt[i];
            }
            r->nmeta += 4 + 3 * (size_t)b.n;
            r->nb++;
            if (check_pixels) {
                float *raw = malloc(sizeof(float) * 3 * b.w * b.h);
                for (int i = 0; i < b.n; i++) {
                    if (b.corrupt[i]) continue;
                    struct deft_box px[12];
                    int n = b.n_boxes[i] < 12 ? b.n_boxes[i] : 12;
                    for (int k = 0; k < n; k++) {
                        px[k] = b.boxes[b.box_start[i] + k];
                        px[k].x1 *= (float)b.w, px[k].x2 *= (float)b.w;
                        px[k].y1 *= (float)b.h, px[k].y2 *= (float)b.h;
                    }
                    unpre(&o->transform.pre, b.images + (size_t)i * 3 * b.w * b.h, b.w, b.h, raw);
                    char name[96];
                    snprintf(name, sizeof name, "loader e%d b%lld i%d %dx%d", e, (long long)b.batch, i, b.w, b.h);
                    check_match(raw, NULL, b.w, b.h, px, n, name);
                }
                free(raw);
            }
        }
    }
    deft_det_loader_get_stats(l, &r->st);
    deft_det_loader_free(l);
}

static void free_run(struct run *r) {
    free(r->img);
    free(r->bx);
    free(r->meta);
}

static void test_loader(void) {
    make_dataset();
    struct deft_det_loader_opts o;
    deft_det_loader_opts_defaults(&o);
    o.batch_size = 4;
    o.transform.net_w = 96;
    o.transform.net_h = 64;

    /* eval: every image in order, last partial batch, letterbox, corrupt flagged */
    struct run ev;
    run_loader(&o, 1, &ev, true);
    CHECK(ev.nb == 4, "eval: 13 images in 4 batches (got %d)", ev.nb);
    int pos = 0, corrupt_seen = 0;
    for (size_t m = 0; m < ev.nmeta;) {
        int n = ev.meta[m];
        for (int i = 0; i < n; i++) {
            CHECK(ev.meta[m + 5 + 3 * i] == pos, "eval order: item %d is sample %d", pos, ev.meta[m + 5 + 3 * i]);
            corrupt_seen += ev.meta[m + 6 + 3 * i];
            pos++;
        }
        m += 4 + 3 * (size_t)n;
    }
    CHECK(pos == NIMG && corrupt_seen == 1 && ev.st.corrupt_skipped == 1, "eval: %d items, %d corrupt flagged, %lld counted",
          pos, corrupt_seen, (long long)ev.st.corrupt_skipped);
    free_run(&ev);

    /* training geometry through the loader: jitter, flips, random shapes */
    o.transform.train = true;
    o.transform.aug.jitter = 0.3f;
    o.transform.aug.hflip_prob = 0.5f;
    o.transform.aug.randomize_input_shape_period = 1;
    o.seed = 3;
    struct run tr;
    run_loader(&o, 2, &tr, true);
    CHECK(tr.st.corrupt_skipped >= 1, "training: corrupt image skipped and counted (%lld)", (long long)tr.st.corrupt_skipped);
    free_run(&tr);

    /* everything on: identical for 1 and 2 threads */
    o.transform.aug.mosaic_prob = 0.5f;
    o.transform.aug.hue = 0.1f;
    o.transform.aug.saturation = 1.5f;
    o.transform.aug.exposure = 1.5f;
    o.transform.aug.randomize_input_shape_period = 2;
    struct run a, b;
    o.num_threads = 1;
    run_loader(&o, 2, &a, false);
    o.num_threads = 2;
    o.prefetch = 2;
    run_loader(&o, 2, &b, false);
    CHECK(a.nb == b.nb && a.floats == b.floats && a.boxes == b.boxes && a.nmeta == b.nmeta && a.nb == 8,
          "1 vs 2 threads: same shapes (%d/%d batches)", a.nb, b.nb);
    if (a.floats == b.floats && a.boxes == b.boxes && a.nmeta == b.nmeta) {
        CHECK(memcmp(a.img, b.img, sizeof(float) * a.floats) == 0, "1 vs 2 threads: images bit-identical");
        bool same = true; /* field by field: the struct has padding */
        for (size_t k = 0; k < a.boxes; k++)
            same = same && !memcmp(&a.bx[k].x1, &b.bx[k].x1, 4 * sizeof(float)) && a.bx[k].cls == b.bx[k].cls &&
                   a.bx[k].difficult == b.bx[k].difficult;
        CHECK(same, "1 vs 2 threads: boxes bit-identical");
        CHECK(memcmp(a.meta, b.meta, sizeof(int) * a.nmeta) == 0, "1 vs 2 threads: counts/indices identical");
    }
    bool in01 = true;
    for (size_t k = 0; k < a.boxes; k++)
        in01 = in01 && a.bx[k].x1 >= 0 && a.bx[k].x2 <= 1 && a.bx[k].y1 >= 0 && a.bx[k].y2 <= 1 &&
               a.bx[k].x2 > a.bx[k].x1 + 1e-3f && a.bx[k].y2 > a.bx[k].y1 + 1e-3f;
    CHECK(in01 && a.boxes > 0, "training boxes normalised, clipped, not tiny (%zu boxes)", a.boxes);
    free_run(&a);
    free_run(&b);

    o.transform.aug.mosaic_min_ratio = 0.7f;
    struct deft_det_loader *l = NULL;
    CHECK(deft_det_loader_create(&o, &ds, &l) == DEFT_ERR_INVALID_ARG && !l, "bad mosaic_min_ratio refused");
    for (int i = 0; i < NIMG; i++) {
        free(ds.samples[i].image);
        if (i != 5) free_scene(&scenes[i]);
    }
    free(ds.samples);
}

int main(void) {
    long live0 = deft_alloc_live();
    test_letterbox();
    test_geometry();
    test_difficult();
    test_hsv();
    test_loader();
    CHECK(deft_alloc_live() == live0, "no leaks (%ld blocks live)", deft_alloc_live() - live0);
    return test_summary();
}

/* test_dnv2_raster.c - DetectNet_v2 ground-truth rasterizer (src/tasks/
 * detectnet_v2/dnv2_raster.c) against tests/ref/dnv2_raster_ref.py, a numpy
 * rasterizer written from tao.md §3.2 (every cell against every box), run
 * at test time.
 *
 * Cases: stride 16 with three classes of different cov_center / radii /
 * bbox_min_radius, overlapping, tiny, clipped, tied and zero-width boxes and
 * two mask boxes (preserve_ground_truth); a non-integer stride (200x120 on
 * 13x8) with off-centre coverage and a 0.5 mask multiplier; a crowd of
 * overlapping boxes with deadzone 1; an empty image. cov, cov_norm and the
 * mask must be identical, bbox within 1e-5. Then a hand-computed box and
 * the argument checks. */
#include <string.h>
#include <sys/stat.h>
#include "tasks/detectnet_v2/dnv2_post.h"
#include "deft_test.h"

#define MAXB 32
#define MAXK 3

struct rcase {
    const char *name;
    struct dnv2_grid g;
    int k;
    struct dnv2_raster_class cls[MAXK];
    struct dnv2_raster_config cfg;
    struct deft_box boxes[MAXB], masks[4];
    int nb, nm;
    char dir[512];
};

static uint64_t rk;
static float unif(void) { return deft_rng_uniform(77, 3, rk++); }

static void add_box(struct rcase *t, int cls, float x1, float y1, float x2, float y2) {
    t->boxes[t->nb++] = (struct deft_box){x1, y1, x2, y2, cls, false, 1};
}

static void random_boxes(struct rcase *t, int n, float min_wh, float max_wh) {
    for (int i = 0; i < n; i++) {
        float w = min_wh + (max_wh - min_wh) * unif(), h = min_wh + (max_wh - min_wh) * unif();
        float x = unif() * ((float)t->g.in_w - w * 0.5f), y = unif() * ((float)t->g.in_h - h * 0.5f);
        add_box(t, (int)(unif() * t->k) % t->k, x, y, x + w, y + h);
    }
}

static void setup(struct rcase *cases) {
    struct rcase *t = &cases[0];
    t->name = "stride16";
    t->g = (struct dnv2_grid){384, 256, 24, 16, 35.0f, 0.5f};
    t->k = 3;
    t->cls[0] = (struct dnv2_raster_class){0.5f, 0.5f, 0.4f, 0.4f, 1.0f};
    t->cls[1] = (struct dnv2_raster_class){0.5f, 0.5f, 1.0f, 0.6f, 0.5f};
    t->cls[2] = (struct dnv2_raster_class){0.4f, 0.6f, 0.8f, 0.8f, 1.5f};
    t->cfg = (struct dnv2_raster_config){3, t->cls, 0.3f, 0.0f, true};
    random_boxes(t, 10, 40, 160);
    random_boxes(t, 4, 2, 12);                   /* tiny: under a cell */
    add_box(t, 0, 100, 60, 180, 150);            /* overlapping pair, same class */
    add_box(t, 0, 130, 70, 210, 170);
    add_box(t, 1, 20, 40, 90, 150);              /* equal ymax: input order */
    add_box(t, 1, 40, 50, 120, 150);
    add_box(t, 2, 340, 200, 420, 290);           /* sticks out of the image */
    add_box(t, 2, 60, 100, 60, 140);             /* zero width */
    t->masks[t->nm++] = (struct deft_box){200, 20, 300, 120, 1, false, 1};
    t->masks[t->nm++] = (struct deft_box){0, 180, 120, 256, -1, false, 1};

    t = &cases[1];
    t->name = "stride_odd";
    t->g = (struct dnv2_grid){200, 120, 13, 8, 20.0f, 0.25f};
    t->k = 2;
    t->cls[0] = (struct dnv2_raster_class){0.3f, 0.7f, 0.9f, 0.5f, 0.2f};
    t->cls[1] = (struct dnv2_raster_class){0.7f, 0.5f, 0.6f, 1.0f, 0.0f};
    t->cfg = (struct dnv2_raster_config){2, t->cls, 0.0f, 0.5f, false};
    random_boxes(t, 12, 6, 90);
    t->masks[t->nm++] = (struct deft_box){50, 30, 130, 100, 0, false, 1};

    t = &cases[2];
    t->name = "crowd_dz1";
    t->g = (struct dnv2_grid){256, 256, 16, 16, 35.0f, 0.5f};
    t->k = 1;
    t->cls[0] = (struct dnv2_raster_class){0.5f, 0.5f, 1.0f, 1.0f, 1.0f};
    t->cfg = (struct dnv2_raster_config){1, t->cls, 1.0f, 0.0f, false};
    for (int i = 0; i < 20; i++) {
        float x = 60 + 12 * (float)(i % 5) + 4 * unif(), y = 50 + 20 * (float)(i / 5) + 4 * unif();
        add_box(t, 0, x, y, x + 70 + 20 * unif(), y + 60 + 30 * unif());
    }

    t = &cases[3];
    t->name = "empty";
    t->g = (struct dnv2_grid){128, 96, 8, 6, 35.0f, 0.5f};
    t->k = 2;
    t->cls[0] = t->cls[1] = (struct dnv2_raster_class){0.5f, 0.5f, 0.4f, 0.4f, 1.0f};
    t->cfg = (struct dnv2_raster_config){2, t->cls, 0.3f, 0.0f, true};
}

static int write_case(struct rcase *t) {
    snprintf(t->dir, sizeof t->dir, "%s/%s", test_tmpdir(), t->name);
    mkdir(t->dir, 0755);
    char p[700];
    float cfg[9] = {(float)t->g.in_w, (float)t->g.in_h, (float)t->g.gw, (float)t->g.gh,
                    t->g.scale, t->g.offset, t->cfg.deadzone_radius, t->cfg.mask_multiplier,
                    t->cfg.preserve_ground_truth ? 1.0f : 0.0f};
    int64_t sh[2] = {9};
    snprintf(p, sizeof p, "%s/cfg.npy", t->dir);
    int rc = test_npy_write(p, cfg, sh, 1);
    float cls[MAXK][5];
    for (int k = 0; k < t->k; k++) {
        const struct dnv2_raster_class *c = &t->cls[k];
        float v[5] = {c->cov_center_x, c->cov_center_y, c->cov_radius_x, c->cov_radius_y,
                      c->bbox_min_radius};
        memcpy(cls[k], v, sizeof v);
    }
    sh[0] = t->k, sh[1] = 5;
    snprintf(p, sizeof p, "%s/cls.npy", t->dir);
    rc |= test_npy_write(p, &cls[0][0], sh, 2);
    float b[MAXB + 4][5];
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? t->nm : t->nb;
        const struct deft_box *src = pass ? t->masks : t->boxes;
        for (int i = 0; i < n; i++) {
            float v[5] = {(float)src[i].cls, src[i].x1, src[i].y1, src[i].x2, src[i].y2};
            memcpy(b[i], v, sizeof v);
        }
        sh[0] = n;
        snprintf(p, sizeof p, "%s/%s.npy", t->dir, pass ? "masks" : "boxes");
        rc |= test_npy_write(p, &b[0][0], sh, 2);
    }
    return rc;
}

static float *read_ref(const struct rcase *t, const char *name, size_t want) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s.npy", t->dir, name);
    int64_t sh[4];
    int nd = 0;
    float *v = test_npy_read(p, sh, &nd);
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)sh[i];
    if (v && n != want) free(v), v = NULL;
    return v;
}

static void compare(struct rcase *t) {
    size_t plane = (size_t)t->g.gw * (size_t)t->g.gh, kp = (size_t)t->k * plane;
    float *buf = malloc(7 * kp * sizeof(float));
    struct dnv2_targets o = {buf, buf + kp, buf + 2 * kp, buf + 6 * kp};
    CHECK_OK(dnv2_rasterize(&t->g, &t->cfg, t->boxes, t->nb, t->masks, t->nm, &o));
    static const char *names[4] = {"cov", "cov_norm", "bbox", "mask"};
    float *mine[4] = {o.cov, o.cov_norm, o.bbox, o.mask};
    size_t sizes[4] = {kp, kp, 4 * kp, kp};
    int covered = 0, masked = 0;
    for (size_t i = 0; i < kp; i++) covered += o.cov[i] > 0, masked += o.mask[i] != 1;
    for (int q = 0; q < 4; q++) {
        float *ref = read_ref(t, names[q], sizes[q]);
        double e = ref ? (q == 2 ? test_max_rel_err(mine[q], ref, sizes[q])
                                 : test_max_abs_diff(mine[q], ref, sizes[q]))
                       : INFINITY;
        printf("  %s %-8s %s %.2e\n", t->name, names[q], q == 2 ? "max rel err" : "max abs diff", e);
        CHECK(q == 2 ? e <= 1e-5 : e <= 1e-7, "%s: %s equals the reference (%.3g)", t->name,
              names[q], e);
        free(ref);
    }
    printf("  %s: %d boxes, %d cells covered, %d masked of %zu\n", t->name, t->nb, covered,
           masked, kp);
    if (t->nb) CHECK(covered > 0, "%s: some coverage drawn", t->name);
    else CHECK(covered == 0 && masked == 0, "%s: an empty image is all background", t->name);
    free(buf);
}

/* A 64x64 box centred on cell (5, 3)'s centre region, radius 1, no dead
 * zone: the centre cell is fully covered; distances are the closed form. */
static void hand_case(void) {
    struct dnv2_grid g = {256, 128, 16, 8, 35.0f, 0.5f};
    struct dnv2_raster_class c = {0.5f, 0.5f, 1.0f, 1.0f, 0.0f};
    struct dnv2_raster_config cfg = {1, &c, 0.0f, 0.0f, false};
    struct deft_box b = {56, 24, 120, 88, 0, false, 1};
    float buf[7 * 128];
    struct dnv2_targets o = {buf, buf + 128, buf + 256, buf + 768};
    CHECK_OK(dnv2_rasterize(&g, &cfg, &b, 1, NULL, 0, &o));
    int p = 3 * 16 + 5; /* cell (5, 3): centre (80.5, 48.5) */
    CHECK(o.cov[p] == 1.0f && fabsf(o.cov_norm[p] - 1.0f / 16.0f) < 1e-7f,
          "centre cell: cov 1, cov_norm 1/(4*2*2) (%g, %g)", (double)o.cov[p],
          (double)o.cov_norm[p]);
    float want[4] = {24.5f / 35, 24.5f / 35, 39.5f / 35, 39.5f / 35};
    for (int q = 0; q < 4; q++)
        CHECK(fabsf(o.bbox[q * 128 + p] - want[q]) < 1e-6f, "centre cell bbox %d = %g (%g)", q,
              (double)want[q], (double)o.bbox[q * 128 + p]);
    CHECK(o.cov[0] == 0 && o.bbox[0] == 0 && o.mask[0] == 1, "a far cell is background");
}

static void bad_input(struct rcase *t) {
    size_t kp = (size_t)t->k * (size_t)t->g.gw * (size_t)t->g.gh;
    float *buf = malloc(7 * kp * sizeof(float));
    struct dnv2_targets o = {buf, buf + kp, buf + 2 * kp, buf + 6 * kp};
    struct deft_box b = t->boxes[0];
    b.cls = t->k;
    CHECK(dnv2_rasterize(&t->g, &t->cfg, &b, 1, NULL, 0, &o) == DEFT_ERR_INVALID_ARG &&
              strstr(deft_last_error(), "class"),
          "a class out of range is refused: %s", deft_last_error());
    b.cls = 0, b.x2 = NAN;
    CHECK(dnv2_rasterize(&t->g, &t->cfg, &b, 1, NULL, 0, &o) == DEFT_ERR_INVALID_ARG,
          "a NaN coordinate is refused");
    b = t->boxes[0];
    b.x1 = -1e30f, b.x2 = 1e30f; /* huge but finite: no overflow, every cell in range */
    CHECK_OK(dnv2_rasterize(&t->g, &t->cfg, &b, 1, NULL, 0, &o));
    struct dnv2_targets none = o;
    none.mask = NULL;
    CHECK(dnv2_rasterize(&t->g, &t->cfg, t->boxes, 1, NULL, 0, &none) == DEFT_ERR_INVALID_ARG,
          "a missing target buffer is refused");
    CHECK(dnv2_rasterize(&t->g, &t->cfg, NULL, 2, NULL, 0, &o) == DEFT_ERR_INVALID_ARG,
          "boxes announced but not given are refused");
    free(buf);
}

int main(void) {
    static struct rcase cases[4];
    setup(cases);
    for (int c = 0; c < 4; c++) CHECK(write_case(&cases[c]) == 0, "%s written", cases[c].name);
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        test_skip_part("python3 with numpy not available: the reference is not compared");
    } else {
        char cmd[4096];
        int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/dnv2_raster_ref.py",
                           test_source_dir());
        for (int c = 0; c < 4; c++)
            len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s", cases[c].dir);
        CHECK(system(cmd) == 0, "the numpy reference ran: %s", cmd);
        for (int c = 0; c < 4; c++) compare(&cases[c]);
    }
    hand_case();
    bad_input(&cases[0]);
    return test_summary();
}

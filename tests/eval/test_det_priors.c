/* test_det_priors.c - Faster R-CNN anchors and SSD priors (deft/det_priors.h)
 * against references computed at test time by tests/ref/priors_ref.py:
 * torchvision 0.14's DefaultBoxGenerator and AnchorGenerator where their
 * definition matches TAO's (the script's docstring lists the differences,
 * undone here), numpy from TAO's definition otherwise (clip_boxes, TAO's
 * sample anchors); plus counts, the coverage check and bad arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/det_priors.h"

static float *load(const char *dir, const char *name, long *n) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *v = malloc((size_t)bytes + 4);
    *n = (long)fread(v, sizeof *v, (size_t)bytes / 4, f);
    fclose(f);
    return v;
}

/* largest |a - b| over n boxes: a every sa floats, b every 4 */
static double max_diff(const float *a, int sa, const float *b, long n) {
    double m = 0;
    for (long i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) m = fmax(m, fabs((double)a[i * sa + k] - b[i * 4 + k]));
    return m;
}

static const double scales7[7] = {0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85};
static const double var[4] = {0.1, 0.1, 0.2, 0.2};

static void ssd_sample(const char *dir, const char *file, const double *steps) {
    static const double ar[5] = {1.0, 2.0, 0.5, 3.0, 1.0 / 3.0};
    static const int maps[6] = {38, 19, 10, 5, 3, 2};
    struct deft_ssd_layer_params L[6];
    for (int k = 0; k < 6; k++)
        L[k] = (struct deft_ssd_layer_params){maps[k], maps[k], scales7[k], scales7[k + 1], ar, 5,
                                              steps ? steps[k] : 0, steps ? steps[k] : 0, 0.5, 0.5};
    long n = deft_ssd_prior_count(L, 6, true), got = 0, m = 0;
    CHECK(n == 11658, "TAO sample: 11658 priors (got %ld)", n);
    float *p = malloc((size_t)n * 8 * sizeof *p);
    CHECK_OK(deft_ssd_priors(L, 6, 300, 300, true, false, var, p, n, &got));
    float *r = load(dir, file, &m);
    CHECK(r && m == n * 4, "%s: %ld boxes from torchvision, %ld from deft", file, m / 4, n);
    if (r && m == n * 4) {
        double d = max_diff(p, 8, r, n);
        CHECK(d <= 1e-5, "%s: SSD priors equal torchvision's DefaultBoxGenerator (max |diff| %.2e)", file, d);
        printf("ssd %s: %ld priors, max |deft - torchvision| = %.2e (normalised)\n", file, n, d);
    }
    CHECK(p[4] == 0.1f && p[7] == 0.2f, "variances follow each prior");
    free(p);
    free(r);
}

static void ssd_clip(const char *dir) {
    static const double ar[3] = {1.0, 2.0, 0.5};
    static const int mh[6] = {30, 15, 8, 4, 2, 1}, mw[6] = {40, 20, 10, 5, 3, 2};
    struct deft_ssd_layer_params L[6];
    for (int k = 0; k < 6; k++)
        L[k] = (struct deft_ssd_layer_params){mh[k], mw[k], scales7[k], scales7[k + 1], ar, 3, 0, 0, 0.5, 0.5};
    long n = deft_ssd_prior_count(L, 6, true), got = 0, m = 0;
    float *p = malloc((size_t)n * 8 * sizeof *p), *r = load(dir, "np_ssd_clip.bin", &m);
    CHECK_OK(deft_ssd_priors(L, 6, 320, 240, true, true, var, p, n, &got));
    CHECK(r && m == n * 4, "clip: %ld reference boxes, %ld deft", m / 4, n);
    if (r && m == n * 4) {
        double d = max_diff(p, 8, r, n);
        CHECK(d <= 1e-6, "clip_boxes on 320x240 equals numpy from TAO's AnchorBoxes (max |diff| %.2e)", d);
        printf("ssd clip 320x240: %ld priors, max |deft - numpy| = %.2e\n", n, d);
    }
    free(p);
    free(r);
}

static void frcnn(const char *dir) {
    /* torchvision: aspect h/w, ratio-major, centres at stride*i, rounded base anchors */
    static const double sc[2] = {32, 64}, ra[3] = {1.0, 0.25, 4.0}; /* TAO w/h ratios = 1/torchvision's (1, 4, 0.25) */
    long n = deft_frcnn_anchor_count(2, 3, 5, 7), got = 0, m = 0;
    float *a = malloc((size_t)n * 4 * sizeof *a), *r = load(dir, "tv_frcnn.bin", &m);
    CHECK_OK(deft_frcnn_anchors(sc, 2, ra, 3, 16, 5, 7, a, n, &got));
    CHECK(r && m == n * 4, "torchvision anchors: %ld, deft %ld", m / 4, n);
    if (r && m == n * 4) {
        double d = 0;
        for (long cell = 0; cell < 35; cell++)
            for (int s = 0; s < 2; s++)
                for (int q = 0; q < 3; q++) {
                    const float *x = a + 4 * (cell * 6 + s * 3 + q), *y = r + 4 * (cell * 6 + q * 2 + s);
                    for (int k = 0; k < 4; k++) d = fmax(d, fabs((double)x[k] - (y[k] + 8.0))); /* +stride/2 */
                }
        CHECK(d <= 1e-4, "Faster R-CNN anchors equal torchvision's AnchorGenerator after its three conventions "
              "(max |diff| %.2e px)", d);
        printf("frcnn vs torchvision: %ld anchors, max |diff| = %.2e px\n", n, d);
    }
    free(a);
    free(r);
    static const double sc2[3] = {64, 128, 256}, ra2[3] = {1, 0.5, 2};
    n = deft_frcnn_anchor_count(3, 3, 24, 78);
    CHECK(n == 16848, "TAO sample 1248x384: 16848 anchors (got %ld)", n);
    a = malloc((size_t)n * 4 * sizeof *a);
    r = load(dir, "np_frcnn.bin", &m);
    CHECK_OK(deft_frcnn_anchors(sc2, 3, ra2, 3, 16, 24, 78, a, n, &got));
    if (r && m == n * 4) {
        double d = max_diff(a, 4, r, n);
        CHECK(d <= 1e-3, "TAO sample anchors equal numpy from TAO's definition (max |diff| %.2e px)", d);
        printf("frcnn TAO sample: %ld anchors, max |deft - numpy| = %.2e px\n", n, d);
    } else {
        CHECK(0, "numpy anchors missing");
    }
    free(a);
    free(r);
}

static void coverage_and_errors(void) {
    static const double sc[1] = {64}, ra[1] = {1};
    float a[4 * 16];
    long n = 0;
    CHECK_OK(deft_frcnn_anchors(sc, 1, ra, 1, 16, 4, 4, a, 16, &n));
    /* a 64x64 box on a cell centre is matched exactly; a 6x6 box and a 400x20 box are not */
    float gt[12] = {8 - 32, 8 - 32, 8 + 32, 8 + 32, 20, 20, 26, 26, 0, 10, 400, 30}, best[3];
    long below = deft_det_best_anchor_iou(a, n, 4, gt, 3, 0.7f, best);
    CHECK(below == 2 && fabsf(best[0] - 1) < 1e-6 && best[1] < 0.05f && best[2] < 0.7f,
          "coverage: 2 of 3 boxes below 0.7 (best %.3f %.3f %.3f)", best[0], best[1], best[2]);
    CHECK(deft_frcnn_anchors(sc, 1, ra, 1, 16, 4, 4, a, 15, &n) == DEFT_ERR_INVALID_ARG, "too little room refused");
    double bad = -1;
    CHECK(deft_frcnn_anchors(&bad, 1, ra, 1, 16, 4, 4, a, 16, &n) == DEFT_ERR_INVALID_ARG, "negative scale refused");
    double ar0 = 0;
    struct deft_ssd_layer_params L = {2, 2, 0.2, 0.3, &ar0, 1, 0, 0, 0.5, 0.5};
    float p[64];
    CHECK(deft_ssd_priors(&L, 1, 100, 100, true, false, var, p, 8, &n) == DEFT_ERR_INVALID_ARG, "aspect 0 refused");
    double ar1 = 1;
    L.ar = &ar1;
    CHECK(deft_ssd_boxes_per_cell(&ar1, 1, true) == 2 && deft_ssd_boxes_per_cell(&ar1, 1, false) == 1,
          "aspect 1 gives a second box only with two_boxes_for_ar1");
}

int main(void) {
    coverage_and_errors();
    const char *dir = test_tmpdir();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/priors_ref.py %s", test_source_dir(), dir);
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("SKIP (part): reference needs /usr/bin/python3 with numpy\n");
        return test_summary();
    }
    CHECK(system(cmd) == 0, "reference: %s", cmd);
    frcnn(dir);
    ssd_clip(dir);
    static const double steps[6] = {8, 16, 32, 64, 100, 300};
    char p[600];
    snprintf(p, sizeof p, "%s/tv_ssd.bin", dir);
    FILE *f = fopen(p, "rb");
    if (!f) {
        printf("SKIP (part): torchvision not importable: SSD vs DefaultBoxGenerator not run\n");
        return test_summary();
    }
    fclose(f);
    ssd_sample(dir, "tv_ssd.bin", NULL);
    ssd_sample(dir, "tv_ssd_steps.bin", steps);
    return test_summary();
}

/* test_seg_loss.c - TAO UNet's segmentation losses (deft/seg.h):
 *   - every loss kind, softmax and sigmoid heads, class weights and an ignore
 *     id: gradient against central finite differences (no peer needed);
 *   - the same cases against PyTorch float64 autograd (tests/ref/seg_loss_ref.py,
 *     run with /usr/bin/python3; skipped without torch): loss and gradient
 *     within 1e-5 relative;
 *   - bad input (target outside the classes, bad weights, bad head), every
 *     pixel ignored, the host-loss adapter, thread-count independence. */
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "deft/seg.h"
#include "deft/tensor.h"
#include "deft_test.h"

struct lcase {
    enum deft_seg_loss_kind kind;
    bool sigmoid, weighted;
    int k, n, h, w, ignore_id;
    float scale; /* logit spread */
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Random logits, targets with ~15% ignored pixels, weights in [0.2, 2]. */
static void fill(const struct lcase *c, float *x, int32_t *t, float *wts) {
    int C = c->sigmoid ? 1 : c->k;
    size_t hw = (size_t)c->h * c->w;
    for (size_t i = 0; i < (size_t)c->n * C * hw; i++) x[i] = (float)((urand() * 2 - 1) * c->scale);
    for (size_t i = 0; i < (size_t)c->n * hw; i++)
        t[i] = urand() < 0.15 ? c->ignore_id : (int32_t)(urand() * c->k) % c->k;
    for (int i = 0; i < c->k; i++) wts[i] = (float)(0.2 + 1.8 * urand());
}

static struct deft_seg_loss_opts opts_of(const struct lcase *c, const float *wts) {
    return (struct deft_seg_loss_opts){c->kind, c->k, c->weighted ? wts : NULL, c->ignore_id, c->sigmoid};
}

static const struct lcase cases[] = {
    {DEFT_SEG_LOSS_CROSS_ENTROPY, false, true, 5, 2, 7, 9, 255, 3.0f},
    {DEFT_SEG_LOSS_CROSS_ENTROPY, false, false, 3, 1, 6, 5, -1, 2.0f},
    {DEFT_SEG_LOSS_DICE, false, false, 4, 2, 5, 6, 4, 3.0f},
    {DEFT_SEG_LOSS_DICE, false, true, 12, 1, 9, 8, 11, 4.0f},
    {DEFT_SEG_LOSS_CROSS_DICE_SUM, false, true, 6, 3, 4, 7, 255, 3.0f},
    {DEFT_SEG_LOSS_CROSS_DICE_SUM, false, false, 2, 2, 8, 8, 255, 5.0f},
    {DEFT_SEG_LOSS_CROSS_ENTROPY, true, true, 2, 2, 6, 7, 255, 4.0f},
    {DEFT_SEG_LOSS_DICE, true, false, 2, 2, 6, 7, 255, 3.0f},
    {DEFT_SEG_LOSS_CROSS_DICE_SUM, true, true, 2, 3, 5, 5, 255, 3.0f},
    /* over one parallel chunk (4096 pixels) and one block (256): the seams */
    {DEFT_SEG_LOSS_CROSS_DICE_SUM, false, true, 3, 2, 67, 71, 255, 6.0f},
    {DEFT_SEG_LOSS_CROSS_DICE_SUM, true, true, 2, 1, 70, 66, 255, 6.0f},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static size_t n_logits(const struct lcase *c) {
    return (size_t)c->n * (c->sigmoid ? 1 : c->k) * c->h * c->w;
}

/* Central differences on a sample of logits (all of them for small cases). */
static void check_fd(const struct lcase *c, int idx) {
    size_t nl = n_logits(c), np = (size_t)c->n * c->h * c->w;
    float *x = malloc(nl * sizeof *x), *g = malloc(nl * sizeof *g), wts[64];
    int32_t *t = malloc(np * sizeof *t);
    fill(c, x, t, wts);
    struct deft_seg_loss_opts o = opts_of(c, wts);
    struct deft_seg_loss_terms tm;
    CHECK_OK(deft_seg_loss(&o, x, t, c->n, c->h, c->w, &tm, g));
    double max_err = 0, max_g = 0;
    size_t step = nl > 400 ? nl / 397 : 1;
    for (size_t i = 0; i < nl; i += step) {
        float keep = x[i];
        const float e = 1e-2f;
        struct deft_seg_loss_terms a, b;
        x[i] = keep + e;
        CHECK_OK(deft_seg_loss(&o, x, t, c->n, c->h, c->w, &a, NULL));
        x[i] = keep - e;
        CHECK_OK(deft_seg_loss(&o, x, t, c->n, c->h, c->w, &b, NULL));
        x[i] = keep;
        double fd = (a.total - b.total) / ((double)(keep + e) - (double)(keep - e));
        max_err = fmax(max_err, fabs(fd - g[i]));
        max_g = fmax(max_g, fabs(g[i]));
    }
    printf("case %d (%s%s): finite differences max |err| %.3g, relative %.3g\n", idx,
           deft_seg_loss_kind_name(c->kind), c->sigmoid ? ", sigmoid" : "", max_err, max_err / max_g);
    CHECK(max_g > 0 && max_err <= 2e-3 * max_g, "case %d: gradient vs finite differences %.3g (scale %.3g)", idx,
          max_err, max_g);
    free(x), free(g), free(t);
}

static int write_case(const char *dir, int idx, const struct lcase *c, float *x, int32_t *t, float *wts) {
    char p[512];
    int C = c->sigmoid ? 1 : c->k;
    size_t np = (size_t)c->n * c->h * c->w;
    float *tf = malloc(np * sizeof *tf), cfg[5 + 64];
    for (size_t i = 0; i < np; i++) tf[i] = (float)t[i];
    cfg[0] = (float)c->kind, cfg[1] = (float)c->k, cfg[2] = (float)c->ignore_id, cfg[3] = c->sigmoid,
    cfg[4] = c->weighted;
    for (int i = 0; i < c->k; i++) cfg[5 + i] = wts[i];
    int64_t sx[4] = {c->n, C, c->h, c->w}, st[3] = {c->n, c->h, c->w}, sc[1] = {5 + c->k};
    int rc = 0;
    snprintf(p, sizeof p, "%s/case%02d_logits.npy", dir, idx);
    rc |= test_npy_write(p, x, sx, 4);
    snprintf(p, sizeof p, "%s/case%02d_target.npy", dir, idx);
    rc |= test_npy_write(p, tf, st, 3);
    snprintf(p, sizeof p, "%s/case%02d_cfg.npy", dir, idx);
    rc |= test_npy_write(p, cfg, sc, 1);
    free(tf);
    return rc;
}

static void compare_torch(const char *dir, int idx, const struct lcase *c, const float *x, const int32_t *t,
                          const float *wts, double *worst_loss, double *worst_grad) {
    size_t nl = n_logits(c);
    float *g = malloc(nl * sizeof *g);
    struct deft_seg_loss_opts o = opts_of(c, wts);
    struct deft_seg_loss_terms tm;
    CHECK_OK(deft_seg_loss(&o, x, t, c->n, c->h, c->w, &tm, g));
    char p[512];
    double ref[3] = {NAN, NAN, NAN};
    snprintf(p, sizeof p, "%s/case%02d_loss_ref.txt", dir, idx);
    FILE *f = fopen(p, "r");
    CHECK(f && fscanf(f, "%lf %lf %lf", &ref[0], &ref[1], &ref[2]) == 3, "case %d: no torch loss", idx);
    if (f) fclose(f);
    double got[3] = {tm.total, tm.ce, tm.dice}, lerr = 0;
    for (int i = 0; i < 3; i++) lerr = fmax(lerr, fabs(got[i] - ref[i]) / fmax(fabs(ref[i]), 1e-30));
    snprintf(p, sizeof p, "%s/case%02d_grad_ref.npy", dir, idx);
    int64_t shape[8];
    int nd = 0;
    float *gr = test_npy_read(p, shape, &nd);
    CHECK(gr != NULL, "case %d: no torch gradient", idx);
    double gerr = gr ? test_max_rel_err(g, gr, nl) : INFINITY;
    printf("case %d (%s%s, %dx%dx%dx%d): loss %.8f vs torch %.8f, max rel err loss %.2e (ce %.2e, dice %.2e), "
           "grad %.2e\n", idx, deft_seg_loss_kind_name(c->kind), c->sigmoid ? ", sigmoid" : "", c->n,
           c->sigmoid ? 1 : c->k, c->h, c->w, tm.total, ref[0], lerr, fabs(tm.ce - ref[1]) / fmax(fabs(ref[1]), 1e-30),
           fabs(tm.dice - ref[2]) / fmax(fabs(ref[2]), 1e-30), gerr);
    CHECK(lerr <= 1e-5, "case %d: loss vs torch relative error %.3g", idx, lerr);
    CHECK(gerr <= 1e-5, "case %d: gradient vs torch relative error %.3g", idx, gerr);
    *worst_loss = fmax(*worst_loss, lerr);
    *worst_grad = fmax(*worst_grad, gerr);
    free(gr), free(g);
}

static void test_torch(void) {
    if (!test_have_torch()) {
        test_skip_part("PyTorch reference of the segmentation losses: /usr/bin/python3 has no torch "
                       "(apt-get install python3-torch)");
        return;
    }
    const char *dir = test_tmpdir();
    float *xs[N_CASES], wts[N_CASES][64];
    int32_t *ts[N_CASES];
    for (int i = 0; i < N_CASES; i++) {
        const struct lcase *c = &cases[i];
        xs[i] = malloc(n_logits(c) * sizeof(float));
        ts[i] = malloc((size_t)c->n * c->h * c->w * sizeof(int32_t));
        fill(c, xs[i], ts[i], wts[i]);
        CHECK(write_case(dir, i, c, xs[i], ts[i], wts[i]) == 0, "write case %d", i);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/seg_loss_ref.py %s", test_source_dir(), dir);
    CHECK(system(cmd) == 0, "reference failed: %s", cmd);
    double wl = 0, wg = 0;
    for (int i = 0; i < N_CASES; i++) {
        compare_torch(dir, i, &cases[i], xs[i], ts[i], wts[i], &wl, &wg);
        free(xs[i]), free(ts[i]);
    }
    printf("vs PyTorch: max relative error loss %.2e, gradient %.2e over %d cases\n", wl, wg, N_CASES);
}

static void test_bad_input(void) {
    float x[2 * 3 * 2 * 2] = {0}, g[2 * 3 * 2 * 2];
    int32_t t[2 * 2 * 2] = {0, 1, 2, 1, 0, 7, 1, 255};
    struct deft_seg_loss_opts o = {DEFT_SEG_LOSS_CROSS_ENTROPY, 3, NULL, 255, false};
    struct deft_seg_loss_terms tm;
    CHECK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g) == DEFT_ERR_INVALID_ARG, "target 7 in 3 classes");
    CHECK(strstr(deft_last_error(), "target id 7") && strstr(deft_last_error(), "pixel 5"), "message: %s",
          deft_last_error());
    t[5] = -3;
    CHECK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g) == DEFT_ERR_INVALID_ARG, "negative target");
    t[5] = 2;
    CHECK_OK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g));
    CHECK_NEAR(tm.ce, log(3.0), 1e-6, "uniform logits: ce = log 3 (%g)", tm.ce);
    CHECK(tm.pixels == 7, "7 pixels counted (%lld)", (long long)tm.pixels);
    float bad_w[3] = {1, -1, 1};
    o.class_weights = bad_w;
    CHECK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g) == DEFT_ERR_INVALID_ARG, "negative weight");
    o.class_weights = NULL;
    o.n_classes = 1;
    CHECK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g) == DEFT_ERR_INVALID_ARG, "softmax with one class");
    o.n_classes = 3, o.sigmoid = true;
    CHECK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g) == DEFT_ERR_INVALID_ARG, "sigmoid with 3 classes");
    o.sigmoid = false, o.kind = (enum deft_seg_loss_kind)7;
    CHECK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g) == DEFT_ERR_INVALID_ARG, "unknown kind");
    enum deft_seg_loss_kind k;
    CHECK(deft_seg_loss_kind_parse("cross_dice_sum", &k) == DEFT_OK && k == DEFT_SEG_LOSS_CROSS_DICE_SUM, "parse");
    CHECK(deft_seg_loss_kind_parse("focal", &k) == DEFT_ERR_INVALID_ARG, "parse unknown");
}

static void test_all_ignored(void) {
    float x[2 * 3 * 4], g[24];
    int32_t t[8];
    for (int i = 0; i < 24; i++) x[i] = (float)i * 0.1f, g[i] = 9;
    for (int i = 0; i < 8; i++) t[i] = 255;
    struct deft_seg_loss_opts o = {DEFT_SEG_LOSS_CROSS_DICE_SUM, 3, NULL, 255, false};
    struct deft_seg_loss_terms tm;
    CHECK_OK(deft_seg_loss(&o, x, t, 2, 2, 2, &tm, g));
    double s = 0;
    for (int i = 0; i < 24; i++) s += fabs(g[i]);
    CHECK(tm.total == 0 && tm.pixels == 0 && s == 0, "every pixel ignored: loss %g, |grad| %g", tm.total, s);
}

/* The trainer's callback, and the same numbers with 1 and 2 threads. */
static void test_host_loss_and_threads(void) {
    const struct lcase *c = &cases[9];
    size_t nl = n_logits(c);
    float *x = malloc(nl * sizeof *x), *g1 = malloc(nl * sizeof *g1), *g2 = malloc(nl * sizeof *g2), wts[64];
    int32_t *t = malloc((size_t)c->n * c->h * c->w * sizeof *t);
    fill(c, x, t, wts);
    struct deft_seg_loss_opts o = opts_of(c, wts);
    struct deft_shape sh = {4, {c->n, c->k, c->h, c->w}};
    const float *outs[1] = {x};
    float *grads[1] = {g1};
    double loss1, terms[8];
    omp_set_num_threads(1);
    CHECK_OK(deft_seg_host_loss(&o, 1, outs, &sh, t, grads, &loss1, terms));
    omp_set_num_threads(2);
    struct deft_seg_loss_terms tm;
    CHECK_OK(deft_seg_loss(&o, x, t, c->n, c->h, c->w, &tm, g2));
    CHECK(loss1 == tm.total && terms[0] == tm.ce && terms[1] == tm.dice, "host loss = deft_seg_loss, any threads");
    CHECK(memcmp(g1, g2, nl * sizeof *g1) == 0, "gradients identical with 1 and 2 threads");
    sh.d[1] = 4;
    CHECK(deft_seg_host_loss(&o, 1, outs, &sh, t, grads, &loss1, terms) == DEFT_ERR_SHAPE, "channel mismatch");
    free(x), free(g1), free(g2), free(t);
}

int main(void) {
    for (int i = 0; i < N_CASES; i++) check_fd(&cases[i], i);
    test_bad_input();
    test_all_ignored();
    test_host_loss_and_threads();
    test_torch();
    return test_summary();
}

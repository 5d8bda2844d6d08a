/* test_dnv2_cost.c - DetectNet_v2 cost and auto-weighting (src/tasks/
 * detectnet_v2/dnv2_cost.c) against tests/ref/dnv2_cost_ref.py, the cost
 * written from tao.md §3.3 in PyTorch (float64) with gradients by autograd,
 * run at test time.
 *
 * Targets come from the rasterizer on random boxes (with a don't-care mask
 * box); predictions are random, some probabilities exactly 0 or 1 and some
 * bbox values equal to their target. Two cases of 3 batches of 2 images:
 * probabilities in, auto-weighting on with the clamp active; logits in,
 * auto-weighting off. Each batch's total, per-objective means and both
 * gradients within 1e-5 relative; the weights after the epoch and batch 0's
 * total under them likewise. Then the argument checks. */
#include <string.h>
#include <sys/stat.h>
#include "tasks/detectnet_v2/dnv2_post.h"
#include "deft_test.h"

#define N 2
#define K 3
#define GW 12
#define GH 10
#define PLANE (GW * GH)
#define NB 3

struct ccase {
    const char *name;
    struct dnv2_cost_class cls[K];
    struct dnv2_cost_config cfg;
    float cov[N * K * PLANE], norm[N * K * PLANE], bbox[N * 4 * K * PLANE], mask[N * K * PLANE];
    float pc[NB][N * K * PLANE], pb[NB][N * 4 * K * PLANE];
    char dir[512];
};

static uint64_t rk;
static float unif(void) { return deft_rng_uniform(55, 1, rk++); }
static float gauss(void) { return deft_rng_normal(55, 2, rk++); }

static void make_targets(struct ccase *t) {
    struct dnv2_grid g = {192, 160, GW, GH, 35.0f, 0.5f};
    struct dnv2_raster_class rc[K] = {{0.5f, 0.5f, 0.4f, 0.4f, 1.0f},
                                      {0.5f, 0.5f, 1.0f, 1.0f, 0.5f},
                                      {0.5f, 0.5f, 0.6f, 0.6f, 1.0f}};
    struct dnv2_raster_config c = {K, rc, 0.3f, 0.0f, true};
    for (int b = 0; b < N; b++) {
        struct deft_box bx[8], mb = {0, 120, 60, 160, -1, false, 1};
        for (int i = 0; i < 8; i++) {
            float w = 20 + 80 * unif(), h = 20 + 80 * unif();
            float x = unif() * (192 - w), y = unif() * (160 - h);
            bx[i] = (struct deft_box){x, y, x + w, y + h, i % K, false, 1};
        }
        size_t o = (size_t)b * K * PLANE;
        struct dnv2_targets tg = {t->cov + o, t->norm + o, t->bbox + 4 * o, t->mask + o};
        CHECK_OK(dnv2_rasterize(&g, &c, bx, 8, &mb, 1, &tg));
    }
}

static void make_preds(struct ccase *t) {
    for (int s = 0; s < NB; s++) {
        for (int i = 0; i < N * K * PLANE; i++) {
            if (t->cfg.cov_is_logits) t->pc[s][i] = 2.5f * gauss();
            else {
                float u = unif();
                t->pc[s][i] = i % 97 == 0 ? 0.0f : i % 89 == 0 ? 1.0f : u;
            }
        }
        for (int i = 0; i < N * 4 * K * PLANE; i++)
            t->pb[s][i] = i % 53 == 0 ? t->bbox[i] : t->bbox[i] + 0.5f * gauss();
    }
}

static int save(const struct ccase *t, const char *name, const float *v, int64_t n) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s.npy", t->dir, name);
    return test_npy_write(p, v, &n, 1);
}

static int write_case(struct ccase *t) {
    snprintf(t->dir, sizeof t->dir, "%s/%s", test_tmpdir(), t->name);
    mkdir(t->dir, 0755);
    float cfg[9] = {N, K, GH, GW, t->cfg.cov_is_logits, t->cfg.enable_autoweighting,
                    t->cfg.min_objective_weight, t->cfg.max_objective_weight, NB};
    float cls[K * 6];
    for (int k = 0; k < K; k++) {
        const struct dnv2_cost_class *c = &t->cls[k];
        float v[6] = {c->class_weight, c->coverage_foreground_weight, c->initial_weight[0],
                      c->initial_weight[1], c->weight_target[0], c->weight_target[1]};
        memcpy(cls + 6 * k, v, sizeof v);
    }
    char p[700];
    int64_t sh[2] = {K, 6};
    snprintf(p, sizeof p, "%s/cls.npy", t->dir);
    int rc = test_npy_write(p, cls, sh, 2);
    rc |= save(t, "cfg", cfg, 9);
    rc |= save(t, "cov", t->cov, N * K * PLANE) | save(t, "cov_norm", t->norm, N * K * PLANE);
    rc |= save(t, "bbox", t->bbox, N * 4 * K * PLANE) | save(t, "mask", t->mask, N * K * PLANE);
    for (int s = 0; s < NB; s++) {
        char nm[32];
        snprintf(nm, sizeof nm, "pred_cov%d", s);
        rc |= save(t, nm, t->pc[s], N * K * PLANE);
        snprintf(nm, sizeof nm, "pred_bbox%d", s);
        rc |= save(t, nm, t->pb[s], N * 4 * K * PLANE);
    }
    return rc;
}

static float *read_ref(const struct ccase *t, const char *name, size_t want) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s.npy", t->dir, name);
    int64_t sh[8];
    int nd = 0;
    float *v = test_npy_read(p, sh, &nd);
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)sh[i];
    if (v && n != want) free(v), v = NULL;
    return v;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

static void compare(struct ccase *t) {
    struct dnv2_targets tg = {t->cov, t->norm, t->bbox, t->mask};
    struct dnv2_cost_state s;
    CHECK_OK(dnv2_cost_state_init(&s, &t->cfg));
    static float gc[N * K * PLANE], gb[N * 4 * K * PLANE];
    for (int b = 0; b < NB; b++) {
        double mean[K * DNV2_N_OBJ];
        struct dnv2_cost_terms tm = {0, mean};
        CHECK_OK(dnv2_cost(&s, &t->cfg, N, GH, GW, t->pc[b], t->pb[b], &tg, gc, gb, &tm));
        dnv2_cost_accumulate(&s, mean);
        char nm[32];
        snprintf(nm, sizeof nm, "terms%d", b);
        float *ref = read_ref(t, nm, 1 + 2 * K);
        double e = ref ? rel(tm.total, ref[0]) : INFINITY;
        for (int i = 0; ref && i < 2 * K; i++) e = fmax(e, rel(mean[i], ref[1 + i]));
        snprintf(nm, sizeof nm, "grad_cov%d", b);
        float *rc = read_ref(t, nm, N * K * PLANE);
        snprintf(nm, sizeof nm, "grad_bbox%d", b);
        float *rb = read_ref(t, nm, N * 4 * K * PLANE);
        double ec = rc ? test_max_rel_err(gc, rc, N * K * PLANE) : INFINITY;
        double eb = rb ? test_max_rel_err(gb, rb, N * 4 * K * PLANE) : INFINITY;
        printf("  %s batch %d: total %.7g (ref %.7g), terms rel %.2e, grad cov %.2e, grad bbox "
               "%.2e\n", t->name, b, tm.total, ref ? (double)ref[0] : NAN, e, ec, eb);
        CHECK(e <= 1e-5, "%s batch %d: total and means within 1e-5 (%.3g)", t->name, b, e);
        CHECK(ec <= 1e-5 && eb <= 1e-5, "%s batch %d: gradients within 1e-5 (%.3g, %.3g)",
              t->name, b, ec, eb);
        /* the value-only call gives the same total */
        struct dnv2_cost_terms v = {0, NULL};
        CHECK_OK(dnv2_cost(&s, &t->cfg, N, GH, GW, t->pc[b], t->pb[b], &tg, NULL, NULL, &v));
        CHECK(v.total == tm.total, "%s batch %d: value-only total equals", t->name, b);
        free(ref), free(rc), free(rb);
    }
    float before[K * DNV2_N_OBJ];
    memcpy(before, s.obj_w, sizeof before);
    dnv2_cost_epoch_end(&s, &t->cfg);
    float *rw = read_ref(t, "weights", K * DNV2_N_OBJ);
    double ew = 0;
    int changed = 0, clamped = 0;
    for (int i = 0; rw && i < K * DNV2_N_OBJ; i++) {
        ew = fmax(ew, rel(s.obj_w[i], rw[i]));
        changed += s.obj_w[i] != before[i];
        clamped += s.obj_w[i] == t->cfg.min_objective_weight ||
                   s.obj_w[i] == t->cfg.max_objective_weight;
    }
    printf("  %s epoch end: weights rel %.2e, %d changed, %d at a clamp bound\n", t->name, ew,
           changed, clamped);
    CHECK(rw && ew <= 1e-6, "%s: objective weights after the epoch equal (%.3g)", t->name, ew);
    if (t->cfg.enable_autoweighting)
        CHECK(changed > 0 && clamped > 0 && clamped < K * DNV2_N_OBJ,
              "%s: auto-weighting moved weights, clamp hit by some", t->name);
    else
        CHECK(changed == 0, "%s: without auto-weighting the weights stay", t->name);
    struct dnv2_cost_terms v = {0, NULL};
    CHECK_OK(dnv2_cost(&s, &t->cfg, N, GH, GW, t->pc[0], t->pb[0], &tg, NULL, NULL, &v));
    float *ra = read_ref(t, "after", 1);
    CHECK(ra && rel(v.total, ra[0]) <= 1e-5, "%s: total under the new weights (%.7g vs %.7g)",
          t->name, v.total, ra ? (double)ra[0] : NAN);
    for (int i = 0; i < K * DNV2_N_OBJ; i++)
        CHECK(s.cost_sum[i] == 0, "%s: epoch sums reset", t->name);
    free(rw), free(ra);
    dnv2_cost_state_free(&s);
}

static void bad_input(struct ccase *t) {
    struct dnv2_cost_state s;
    struct dnv2_cost_config c = t->cfg;
    struct dnv2_cost_class cls[K];
    memcpy(cls, t->cls, sizeof cls);
    c.cls = cls;
    for (int k = 0; k < K; k++) cls[k].class_weight = 0;
    CHECK(dnv2_cost_state_init(&s, &c) == DEFT_ERR_INVALID_ARG &&
              strstr(deft_last_error(), "sum to 0"),
          "class weights summing to 0 are refused: %s", deft_last_error());
    memcpy(cls, t->cls, sizeof cls);
    cls[1].coverage_foreground_weight = NAN;
    CHECK(dnv2_cost_state_init(&s, &c) == DEFT_ERR_INVALID_ARG, "a NaN weight is refused");
    memcpy(cls, t->cls, sizeof cls);
    c.enable_autoweighting = true, c.min_objective_weight = 0.9f, c.max_objective_weight = 0.1f;
    CHECK(dnv2_cost_state_init(&s, &c) == DEFT_ERR_INVALID_ARG, "min above max is refused");
    CHECK_OK(dnv2_cost_state_init(&s, &t->cfg));
    struct dnv2_targets tg = {t->cov, t->norm, t->bbox, NULL};
    struct dnv2_cost_terms tm = {0, NULL};
    CHECK(dnv2_cost(&s, &t->cfg, 0, GH, GW, t->pc[0], t->pb[0], &tg, NULL, NULL, &tm) ==
              DEFT_ERR_INVALID_ARG,
          "0 images are refused");
    static float bad[N * K * PLANE];
    memcpy(bad, t->pc[0], sizeof bad);
    bad[5] = NAN;
    CHECK(dnv2_cost(&s, &t->cfg, N, GH, GW, bad, t->pb[0], &tg, NULL, NULL, &tm) ==
              DEFT_ERR_NUMERIC,
          "a NaN prediction is reported: %s", deft_last_error());
    /* no mask: same as a mask of ones */
    static float ones[N * K * PLANE];
    for (int i = 0; i < N * K * PLANE; i++) ones[i] = 1;
    struct dnv2_targets t1 = {t->cov, t->norm, t->bbox, ones};
    struct dnv2_cost_terms a = {0, NULL}, b = {0, NULL};
    CHECK_OK(dnv2_cost(&s, &t->cfg, N, GH, GW, t->pc[1], t->pb[1], &tg, NULL, NULL, &a));
    CHECK_OK(dnv2_cost(&s, &t->cfg, N, GH, GW, t->pc[1], t->pb[1], &t1, NULL, NULL, &b));
    CHECK(a.total == b.total, "a NULL mask is all ones");
    dnv2_cost_state_free(&s);
}

int main(void) {
    static struct ccase cases[2];
    for (int c = 0; c < 2; c++) {
        struct ccase *t = &cases[c];
        t->name = c == 0 ? "prob_autoweight" : "logits_fixed";
        float cw[K] = {1, 8, 4}, fg[K] = {0.05f, 0.1f, 0.5f};
        for (int k = 0; k < K; k++)
            t->cls[k] = (struct dnv2_cost_class){cw[k], fg[k], {1.0f, 10.0f}, {1.0f, 0.02f * (float)(1 + k * k)}};
        t->cfg = (struct dnv2_cost_config){K, t->cls, c == 0, 0.1f, 0.8f, c == 1};
        make_targets(t);
        make_preds(t);
        CHECK(write_case(t) == 0, "%s written", t->name);
    }
    if (!test_have_torch()) {
        test_skip_part("python3 with torch not available: the autograd reference is not compared");
    } else {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/dnv2_cost_ref.py %s %s",
                 test_source_dir(), cases[0].dir, cases[1].dir);
        CHECK(system(cmd) == 0, "the PyTorch reference ran: %s", cmd);
        for (int c = 0; c < 2; c++) compare(&cases[c]);
    }
    bad_input(&cases[0]);
    return test_summary();
}

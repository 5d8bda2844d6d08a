/* test_ref_ops.c - the reference backend's kernels against PyTorch.
 *
 * Every case builds a tiny graph (builders for forward ops, deft_graph_add_node
 * for backward ops), fills its inputs with random numbers, runs each node with
 * deft_ref_run_node on buffers allocated here, and writes the inputs as .npy.
 * One python process (tests/ref/gen_ops.py) then computes every case's forward
 * result and autograd gradients in float64 from a manifest, and the outputs are
 * compared: max relative error <= 1e-4 forward, <= 1e-3 backward (roi_align and
 * crop-and-resize: 1e-4 both ways, against torchvision.ops.roi_align and a
 * differentiable TF crop_and_resize in gen_ops.py). The worst
 * error per op is printed. Dropout (its mask comes from deft's own RNG) and the
 * backend vtable are checked without PyTorch.
 */
#include <stdarg.h>
#include <string.h>
#include "deft_test.h"
#include "backend/backend.h"
#include "deft/io.h"

#define TOL_FWD 1e-4
#define TOL_BWD 1e-3
#define MAX_CASES 160
#define MAX_CMP 10

struct cmp {
    int v;
    char key[24];
    char label[40];
    double tol;
    bool i32; /* int32 buffer (max-pool workspace): compared exactly */
};

struct tcase {
    char name[48];
    struct deft_graph *g;
    void **buf;
    int nv;
    bool ok; /* graph built and every node ran */
    struct cmp cmp[MAX_CMP];
    int ncmp;
};

static struct tcase cases[MAX_CASES];
static int n_cases;
static FILE *manifest;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Uniform in [-1, 1). */
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* ---- worst error per op label ------------------------------------------- */

static struct { char label[40]; double worst, tol; int n; } stats[96];
static int n_stats;

static void stat_add(const char *label, double err, double tol) {
    int i;
    for (i = 0; i < n_stats; i++)
        if (strcmp(stats[i].label, label) == 0) break;
    if (i == n_stats) {
        if (n_stats == (int)(sizeof stats / sizeof stats[0])) return;
        snprintf(stats[n_stats].label, sizeof stats[0].label, "%s", label);
        stats[n_stats].worst = 0;
        stats[n_stats].tol = tol;
        n_stats++;
    }
    if (err > stats[i].worst || err != err) stats[i].worst = err;
    stats[i].n++;
}

/* ---- case plumbing ------------------------------------------------------- */

static struct tcase *tc_new(const char *name) {
    if (n_cases == MAX_CASES) {
        CHECK(0, "too many cases");
        return NULL;
    }
    struct tcase *t = &cases[n_cases++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    CHECK_OK(deft_graph_create(&t->g));
    return t;
}

static bool tc_graph_ok(struct tcase *t) {
    enum deft_status s = deft_graph_status(t->g);
    CHECK(s == DEFT_OK, "%s: graph build failed: %s", t->name, deft_last_error());
    return s == DEFT_OK;
}

static const struct deft_shape *vshape(struct tcase *t, int v) {
    return &deft_graph_value(t->g, v)->shape;
}
static int64_t vnumel(struct tcase *t, int v) { return deft_shape_numel(vshape(t, v)); }
static float *B(struct tcase *t, int v) { return (float *)t->buf[v]; }
static int node_out(struct tcase *t, int node, int i) {
    return node >= 0 ? deft_graph_node(t->g, node)->out[i] : -1;
}
static int producer(struct tcase *t, int v) { return deft_graph_value(t->g, v)->producer; }

/* Allocate a buffer for every value; fill inputs/params/state with U(-1, 1). */
static bool tc_alloc(struct tcase *t) {
    if (!tc_graph_ok(t)) return false;
    t->nv = deft_graph_num_values(t->g);
    t->buf = calloc((size_t)t->nv, sizeof *t->buf);
    for (int v = 0; v < t->nv; v++) {
        size_t bytes = deft_ref_value_bytes(t->g, v);
        size_t plain = (size_t)vnumel(t, v) * sizeof(float);
        if (plain > bytes) bytes = plain;
        t->buf[v] = calloc(1, bytes + sizeof(float));
        const struct deft_value *val = deft_graph_value(t->g, v);
        if (val->kind != DEFT_VALUE_NODE)
            for (int64_t i = 0; i < vnumel(t, v); i++) B(t, v)[i] = frand();
    }
    return true;
}

static void tc_save(struct tcase *t, int v, const char *key) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s.npy", test_tmpdir(), t->name, key);
    const struct deft_shape *s = vshape(t, v);
    CHECK(test_npy_write(path, B(t, v), s->d, s->ndim) == 0, "cannot write %s", path);
}

static void tc_manifest(struct tcase *t, const char *op, const char *fmt, ...) {
    fprintf(manifest, "%s %s ", t->name, op);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(manifest, fmt, ap);
    va_end(ap);
    fputc('\n', manifest);
}

static void tc_run(struct tcase *t, uint64_t step) {
    struct deft_run_ctx rc = {.step = step};
    t->ok = true;
    for (int n = 0; n < deft_graph_num_nodes(t->g); n++) {
        enum deft_status s = deft_ref_run_node(t->g, n, t->buf, &rc);
        CHECK(s == DEFT_OK, "%s: node %s: %s", t->name, deft_graph_node(t->g, n)->name,
              deft_last_error());
        if (s) t->ok = false;
    }
}

static void tc_expect(struct tcase *t, int v, const char *key, const char *label, double tol) {
    if (v < 0 || t->ncmp == MAX_CMP) return;
    struct cmp *c = &t->cmp[t->ncmp++];
    c->v = v;
    c->tol = tol;
    c->i32 = false;
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->label, sizeof c->label, "%s", label);
}

static void tc_compare(struct tcase *t) {
    for (int i = 0; i < t->ncmp && t->ok; i++) {
        struct cmp *c = &t->cmp[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s.ref.%s.npy", test_tmpdir(), t->name, c->key);
        int64_t shape[8];
        int nd = 0;
        float *ref = test_npy_read(path, shape, &nd);
        CHECK(ref != NULL, "%s: no reference %s (see gen_ops.py output)", t->name, c->key);
        if (!ref) continue;
        int64_t n = 1;
        for (int d = 0; d < nd; d++) n *= shape[d];
        CHECK(n == vnumel(t, c->v), "%s.%s: %lld elements, reference has %lld", t->name, c->key,
              (long long)vnumel(t, c->v), (long long)n);
        if (n == vnumel(t, c->v)) {
            float *ours = B(t, c->v), *tmp = NULL;
            if (c->i32) {
                tmp = malloc((size_t)n * sizeof(float) + 1);
                for (int64_t j = 0; j < n; j++) tmp[j] = (float)((int32_t *)t->buf[c->v])[j];
                ours = tmp;
            }
            double err = c->i32 ? test_max_abs_diff(ours, ref, (size_t)n)
                                : test_max_rel_err(ours, ref, (size_t)n);
            stat_add(c->label, err, c->tol);
            CHECK(err <= c->tol, "%s.%s (%s): max rel err %.3g > %.1g", t->name, c->key, c->label,
                  err, c->tol);
            if (!(err <= c->tol)) { /* show the worst element to make the failure actionable */
                int64_t wi = 0;
                double wd = -1;
                for (int64_t j = 0; j < n; j++) {
                    double d = fabs((double)ours[j] - (double)ref[j]);
                    if (d > wd || d != d) wd = d, wi = j;
                }
                printf("    worst at [%lld]: ours %.9g, torch %.9g\n", (long long)wi,
                       (double)ours[wi], (double)ref[wi]);
            }
            free(tmp);
        }
        free(ref);
    }
}

static void tc_free(struct tcase *t) {
    for (int v = 0; v < t->nv; v++) free(t->buf[v]);
    free(t->buf);
    deft_graph_free(t->g);
}

/* Add a backward node; returns its index (-1 on error). */
static int bwd(struct tcase *t, enum deft_op op, const char *name, const int *in, int n_in,
               const struct deft_attr *a) {
    return deft_graph_add_node(t->g, op, name, in, n_in, a);
}

static void fmt_list(char *buf, size_t n, const int64_t *v, int cnt) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < cnt && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)v[i]);
}

/* ---- conv ---------------------------------------------------------------- */

static void case_conv(const char *name, struct deft_shape xs, int k, int r, int s,
                      struct deft_conv_attr a, bool bias) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", xs);
    int y = deft_conv2d(t->g, "conv", x, k, r, s, &a, bias);
    if (!tc_graph_ok(t)) return;
    struct deft_node fn = *deft_graph_node(t->g, producer(t, y));
    int w = fn.in[1], b = bias ? fn.in[2] : -1;
    int dy = deft_input(t->g, "dy", *vshape(t, y));
    struct deft_attr at = fn.attr;
    at.shape = xs;
    int n1 = bwd(t, DEFT_OP_CONV2D_BWD_DATA, "conv.bwd_data", (int[]){dy, w}, 2, &at);
    at.shape = *vshape(t, w);
    at.has_bias = bias;
    int n2 = bwd(t, DEFT_OP_CONV2D_BWD_WEIGHTS, "conv.bwd_weights", (int[]){dy, x}, 2, &at);
    if (!tc_alloc(t)) return;
    tc_save(t, x, "x"), tc_save(t, w, "w"), tc_save(t, dy, "dy");
    if (b >= 0) tc_save(t, b, "b");
    tc_manifest(t, "conv2d", "stride=%d,%d pad=%d,%d,%d,%d dil=%d,%d groups=%d", a.stride[0],
                a.stride[1], a.pad[0], a.pad[1], a.pad[2], a.pad[3], a.dilation[0], a.dilation[1],
                a.groups);
    tc_run(t, 0);
    tc_expect(t, y, "y", "conv2d", TOL_FWD);
    tc_expect(t, node_out(t, n1, 0), "dx", "conv2d_bwd_data", TOL_BWD);
    tc_expect(t, node_out(t, n2, 0), "dw", "conv2d_bwd_weights", TOL_BWD);
    if (bias) tc_expect(t, node_out(t, n2, 1), "db", "conv2d_bwd_weights", TOL_BWD);
}

static void case_convt(const char *name, struct deft_shape xs, int k, int r, int s,
                       struct deft_conv_attr a, bool bias) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", xs);
    int y = deft_conv_transpose2d(t->g, "convt", x, k, r, s, &a, bias);
    if (!tc_graph_ok(t)) return;
    struct deft_node fn = *deft_graph_node(t->g, producer(t, y));
    int w = fn.in[1], b = bias ? fn.in[2] : -1;
    int dy = deft_input(t->g, "dy", *vshape(t, y));
    struct deft_attr at = fn.attr;
    at.shape = xs;
    int n1 = bwd(t, DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA, "convt.bwd_data", (int[]){dy, w}, 2, &at);
    at.shape = *vshape(t, w);
    at.has_bias = bias;
    int n2 = bwd(t, DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS, "convt.bwd_weights", (int[]){dy, x}, 2,
                 &at);
    if (!tc_alloc(t)) return;
    tc_save(t, x, "x"), tc_save(t, w, "w"), tc_save(t, dy, "dy");
    if (b >= 0) tc_save(t, b, "b");
    const struct deft_shape *ys = vshape(t, y);
    tc_manifest(t, "conv_transpose2d",
                "stride=%d,%d pad=%d,%d,%d,%d dil=%d,%d groups=%d opad=%d,%d out=%lld,%lld",
                a.stride[0], a.stride[1], a.pad[0], a.pad[1], a.pad[2], a.pad[3], a.dilation[0],
                a.dilation[1], a.groups, a.output_padding[0], a.output_padding[1],
                (long long)ys->d[2], (long long)ys->d[3]);
    tc_run(t, 0);
    tc_expect(t, y, "y", "conv_transpose2d", TOL_FWD);
    tc_expect(t, node_out(t, n1, 0), "dx", "conv_transpose2d_bwd_data", TOL_BWD);
    tc_expect(t, node_out(t, n2, 0), "dw", "conv_transpose2d_bwd_weights", TOL_BWD);
    if (bias) tc_expect(t, node_out(t, n2, 1), "db", "conv_transpose2d_bwd_weights", TOL_BWD);
}

static struct deft_conv_attr CA(int sh, int sw, int pt, int pl, int pb, int pr, int dh, int dw,
                                int groups) {
    return (struct deft_conv_attr){.stride = {sh, sw}, .pad = {pt, pl, pb, pr},
                                   .dilation = {dh, dw}, .groups = groups};
}

static void cases_conv(void) {
    case_conv("conv_3x3", deft_shape4(2, 3, 9, 7), 4, 3, 3, CA(1, 1, 1, 1, 1, 1, 1, 1, 1), true);
    case_conv("conv_asym", deft_shape4(1, 4, 10, 11), 6, 3, 2, CA(2, 1, 0, 1, 2, 0, 1, 2, 2), true);
    case_conv("conv_dw", deft_shape4(2, 6, 8, 8), 6, 3, 3, CA(2, 2, 1, 1, 1, 1, 1, 1, 6), false);
    case_conv("conv_dw_mult", deft_shape4(1, 4, 7, 6), 8, 3, 3, CA(1, 1, 1, 1, 1, 1, 1, 1, 4),
              true);
    case_conv("conv_1x1", deft_shape4(1, 3, 7, 7), 5, 1, 1, CA(1, 1, 0, 0, 0, 0, 1, 1, 1), false);
    case_conv("conv_5x5_dil", deft_shape4(2, 4, 13, 12), 8, 5, 5, CA(3, 2, 2, 2, 2, 2, 2, 2, 1),
              true);
    case_conv("conv_7x7_s2", deft_shape4(1, 3, 17, 15), 4, 7, 7, CA(2, 2, 3, 3, 3, 3, 1, 1, 1),
              false);

    struct deft_conv_attr a = CA(2, 2, 1, 1, 1, 1, 1, 1, 1);
    a.output_padding[0] = a.output_padding[1] = 1;
    case_convt("convt_s2", deft_shape4(2, 4, 5, 6), 3, 3, 3, a, true);
    a = CA(2, 3, 1, 0, 2, 1, 1, 2, 2);
    a.output_padding[1] = 2;
    case_convt("convt_asym", deft_shape4(1, 4, 4, 5), 6, 4, 3, a, true);
    case_convt("convt_dw", deft_shape4(2, 6, 5, 5), 6, 3, 3, CA(1, 1, 1, 1, 1, 1, 1, 1, 6), false);
    case_convt("convt_k2s2", deft_shape4(1, 3, 4, 3), 5, 2, 2, CA(2, 2, 0, 0, 0, 0, 1, 1, 1),
               true);
}

/* ---- batchnorm ------------------------------------------------------------ */

static void case_bn(const char *name, struct deft_shape xs, enum deft_bn_mode mode,
                    bool drop_param_grads) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    struct deft_bn_attr ba = {.eps = 1e-3f, .momentum = 0.3f, .mode = mode};
    int x = deft_input(t->g, "x", xs);
    int y = deft_batchnorm_ex(t->g, "bn", x, &ba);
    if (!tc_graph_ok(t)) return;
    struct deft_node fn = *deft_graph_node(t->g, producer(t, y));
    int dy = deft_input(t->g, "dy", xs);
    struct deft_attr at = fn.attr;
    int nb = bwd(t, DEFT_OP_BATCHNORM_BWD, "bn.bwd",
                 (int[]){dy, x, fn.in[1], fn.out[1], fn.out[2]}, 5, &at);
    if (!tc_alloc(t)) return;
    if (drop_param_grads) {
        /* Frozen gamma/beta: autograd marks those outputs absent. */
        struct deft_node *m = deft_graph_node_mut(t->g, nb);
        m->out[1] = m->out[2] = -1;
    }
    for (int64_t c = 0; c < vnumel(t, fn.in[4]); c++) {
        B(t, fn.in[4])[c] = 0.5f + 0.5f * (frand() + 1.0f); /* running_var > 0 */
        B(t, fn.in[1])[c] = 1.0f + 0.5f * frand();
    }
    for (int64_t i = 0; i < vnumel(t, x); i++) B(t, x)[i] = 2.0f * B(t, x)[i] + 0.5f;
    tc_save(t, x, "x"), tc_save(t, fn.in[1], "gamma"), tc_save(t, fn.in[2], "beta");
    tc_save(t, fn.in[3], "rmean"), tc_save(t, fn.in[4], "rvar"), tc_save(t, dy, "dy");
    tc_manifest(t, "batchnorm", "mode=%d eps=%.9g momentum=%.9g", (int)mode, (double)ba.eps,
                (double)ba.momentum);
    tc_run(t, 0);
    tc_expect(t, y, "y", "batchnorm", TOL_FWD);
    tc_expect(t, fn.out[1], "save_mean", "batchnorm", TOL_FWD);
    tc_expect(t, fn.out[2], "save_var", "batchnorm", TOL_FWD);
    tc_expect(t, fn.in[3], "rmean", "batchnorm", TOL_FWD);
    tc_expect(t, fn.in[4], "rvar", "batchnorm", TOL_FWD);
    tc_expect(t, node_out(t, nb, 0), "dx", "batchnorm_bwd", TOL_BWD);
    if (!drop_param_grads) {
        tc_expect(t, node_out(t, nb, 1), "dgamma", "batchnorm_bwd", TOL_BWD);
        tc_expect(t, node_out(t, nb, 2), "dbeta", "batchnorm_bwd", TOL_BWD);
    }
}

static void cases_bn(void) {
    case_bn("bn_train", deft_shape4(2, 3, 5, 4), DEFT_BN_TRAIN, false);
    case_bn("bn_train_2d", deft_shape_make(2, (int64_t[]){6, 5}), DEFT_BN_TRAIN, false);
    case_bn("bn_eval", deft_shape4(2, 3, 5, 4), DEFT_BN_EVAL, false);
    case_bn("bn_frozen", deft_shape4(3, 4, 3, 3), DEFT_BN_FROZEN, false);
    case_bn("bn_train_nograd", deft_shape4(2, 4, 3, 5), DEFT_BN_TRAIN, true);
}

/* ---- activations ------------------------------------------------------------ */

static void cases_act(void) {
    for (int kind = 0; kind < DEFT_ACT_COUNT; kind++) {
        char name[48];
        snprintf(name, sizeof name, "act_%s", deft_act_name((enum deft_act_kind)kind));
        struct tcase *t = tc_new(name);
        if (!t) return;
        float alpha = kind == DEFT_ACT_LEAKY_RELU ? 0.1f : kind == DEFT_ACT_ELU ? 1.0f : 0.0f;
        bool positive = kind == DEFT_ACT_LOG || kind == DEFT_ACT_SQRT || kind == DEFT_ACT_RECIPROCAL;
        int x = deft_input(t->g, "x", deft_shape4(2, 3, 4, 5));
        int y = deft_act(t->g, "act", x, (enum deft_act_kind)kind, alpha);
        int dy = deft_input(t->g, "dy", deft_shape4(2, 3, 4, 5));
        struct deft_attr at = {.act = {(enum deft_act_kind)kind, alpha}};
        bool from_y = deft_act_bwd_uses_output((enum deft_act_kind)kind);
        int nb = tc_graph_ok(t) ? bwd(t, DEFT_OP_ACT_BWD, "act.bwd", (int[]){dy, from_y ? y : x},
                                      2, &at)
                                : -1;
        if (!tc_alloc(t)) continue;
        /* Span the interesting range and hit every kink exactly once. */
        const float kinks[] = {0.0f, 6.0f, -3.0f, 3.0f, -6.0f, 7.0f};
        for (int64_t i = 0; i < vnumel(t, x); i++) B(t, x)[i] *= 8.0f;
        for (int i = 0; i < 6; i++) B(t, x)[i] = kinks[i];
        if (positive) /* their domain, away from the pole at 0 */
            for (int64_t i = 0; i < vnumel(t, x); i++) B(t, x)[i] = fabsf(B(t, x)[i]) + 0.25f;
        tc_save(t, x, "x"), tc_save(t, dy, "dy");
        tc_manifest(t, "act", "kind=%d alpha=%.9g", kind, (double)alpha);
        tc_run(t, 0);
        tc_expect(t, y, "y", name, TOL_FWD);
        char lb[48];
        snprintf(lb, sizeof lb, "%s_bwd", name);
        tc_expect(t, node_out(t, nb, 0), "dx", lb, TOL_BWD);
    }
}

/* ---- pooling ------------------------------------------------------------- */

static void case_pool(const char *name, struct deft_shape xs, struct deft_pool_attr a,
                      bool quantize, bool use_workspace) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", xs);
    int y = deft_pool(t->g, "pool", x, &a);
    if (!tc_graph_ok(t)) return;
    struct deft_node fn = *deft_graph_node(t->g, producer(t, y));
    int ws = fn.n_out > 1 ? fn.out[1] : -1;
    int dy = deft_input(t->g, "dy", *vshape(t, y));
    struct deft_attr at = fn.attr;
    int nb = ws >= 0 && use_workspace
                 ? bwd(t, DEFT_OP_POOL_BWD, "pool.bwd", (int[]){dy, x, ws}, 3, &at)
                 : bwd(t, DEFT_OP_POOL_BWD, "pool.bwd", (int[]){dy, x}, 2, &at);
    if (!tc_alloc(t)) return;
    if (quantize) /* many ties: the first maximum must win, as in PyTorch */
        for (int64_t i = 0; i < vnumel(t, x); i++)
            B(t, x)[i] = (float)(int)(B(t, x)[i] * 2.0f) * 0.5f;
    tc_save(t, x, "x"), tc_save(t, dy, "dy");
    tc_manifest(t, "pool", "kind=%d kernel=%d,%d stride=%d,%d pad=%d,%d,%d,%d cip=%d ceil=%d",
                (int)a.kind, a.kernel[0], a.kernel[1], a.stride[0], a.stride[1], a.pad[0],
                a.pad[1], a.pad[2], a.pad[3], (int)a.count_include_pad, (int)a.ceil_mode);
    tc_run(t, 0);
    const char *lf = a.kind == DEFT_POOL_MAX ? "maxpool" : "avgpool";
    const char *lb = a.kind == DEFT_POOL_MAX ? "maxpool_bwd" : "avgpool_bwd";
    tc_expect(t, y, "y", lf, TOL_FWD);
    if (ws >= 0) {
        tc_expect(t, ws, "idx", "maxpool_workspace", 0.0);
        t->cmp[t->ncmp - 1].i32 = true;
    }
    tc_expect(t, node_out(t, nb, 0), "dx", lb, TOL_BWD);
}

static struct deft_pool_attr PA(enum deft_pool_kind kind, int kh, int kw, int sh, int sw, int ph,
                                int pw, bool cip, bool ceil) {
    return (struct deft_pool_attr){.kind = kind, .kernel = {kh, kw}, .stride = {sh, sw},
                                   .pad = {ph, pw, ph, pw}, .count_include_pad = cip,
                                   .ceil_mode = ceil};
}

static void cases_pool(void) {
    case_pool("maxpool_3s2p1", deft_shape4(2, 3, 9, 9), PA(DEFT_POOL_MAX, 3, 3, 2, 2, 1, 1, 0, 0),
              false, true);
    case_pool("maxpool_ceil", deft_shape4(1, 2, 7, 7), PA(DEFT_POOL_MAX, 2, 2, 2, 2, 0, 0, 0, 1),
              false, true);
    case_pool("maxpool_rect", deft_shape4(1, 3, 6, 5), PA(DEFT_POOL_MAX, 3, 2, 2, 1, 1, 1, 0, 0),
              false, false);
    case_pool("maxpool_ties", deft_shape4(2, 2, 8, 7), PA(DEFT_POOL_MAX, 3, 3, 2, 2, 1, 1, 0, 1),
              true, true);
    case_pool("maxpool_ties_nows", deft_shape4(1, 2, 6, 6),
              PA(DEFT_POOL_MAX, 2, 2, 1, 1, 1, 1, 0, 0), true, false);
    case_pool("avgpool_cip", deft_shape4(2, 3, 8, 9), PA(DEFT_POOL_AVG, 3, 3, 2, 2, 1, 1, 1, 0),
              false, false);
    case_pool("avgpool_nocip_ceil", deft_shape4(1, 2, 8, 8),
              PA(DEFT_POOL_AVG, 3, 3, 2, 2, 1, 1, 0, 1), false, false);
    case_pool("avgpool_ceil", deft_shape4(1, 2, 5, 5), PA(DEFT_POOL_AVG, 2, 2, 2, 2, 0, 0, 1, 1),
              false, false);
    case_pool("avgpool_rect", deft_shape4(1, 2, 7, 6), PA(DEFT_POOL_AVG, 2, 3, 1, 2, 1, 1, 1, 1),
              false, false);

    struct tcase *t = tc_new("gap");
    if (!t) return;
    struct deft_shape xs = deft_shape4(2, 3, 5, 7);
    int x = deft_input(t->g, "x", xs);
    int y = deft_global_avgpool(t->g, "gap", x);
    int dy = deft_input(t->g, "dy", deft_shape4(2, 3, 1, 1));
    struct deft_attr at = {.shape = xs};
    int nb = tc_graph_ok(t) ? bwd(t, DEFT_OP_GLOBAL_AVGPOOL_BWD, "gap.bwd", &dy, 1, &at) : -1;
    if (!tc_alloc(t)) return;
    tc_save(t, x, "x"), tc_save(t, dy, "dy");
    tc_manifest(t, "global_avgpool", "-");
    tc_run(t, 0);
    tc_expect(t, y, "y", "global_avgpool", TOL_FWD);
    tc_expect(t, node_out(t, nb, 0), "dx", "global_avgpool_bwd", TOL_BWD);
}

/* ---- add / mul / reduce_to ---------------------------------------------- */

static void case_binary(const char *name, bool mul, struct deft_shape as, struct deft_shape bs) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int a = deft_input(t->g, "a", as), b = deft_input(t->g, "b", bs);
    int y = mul ? deft_mul(t->g, "op", a, b) : deft_add(t->g, "op", a, b);
    if (!tc_graph_ok(t)) return;
    int dy = deft_input(t->g, "dy", *vshape(t, y));
    int ga = dy, gb = dy;
    if (mul) { /* d(a*b)/da = dy*b, reduced to a's shape */
        ga = node_out(t, bwd(t, DEFT_OP_MUL, "ga", (int[]){dy, b}, 2, NULL), 0);
        gb = node_out(t, bwd(t, DEFT_OP_MUL, "gb", (int[]){dy, a}, 2, NULL), 0);
    }
    struct deft_attr at = {.shape = as};
    int na = bwd(t, DEFT_OP_REDUCE_TO, "ra", &ga, 1, &at);
    at.shape = bs;
    int nb = bwd(t, DEFT_OP_REDUCE_TO, "rb", &gb, 1, &at);
    if (!tc_alloc(t)) return;
    tc_save(t, a, "a"), tc_save(t, b, "b"), tc_save(t, dy, "dy");
    tc_manifest(t, mul ? "mul" : "add", "-");
    tc_run(t, 0);
    tc_expect(t, y, "y", mul ? "mul" : "add", TOL_FWD);
    tc_expect(t, node_out(t, na, 0), "da", "reduce_to", TOL_BWD);
    tc_expect(t, node_out(t, nb, 0), "db", "reduce_to", TOL_BWD);
}

static void cases_binary(void) {
    struct deft_shape s4 = deft_shape4(2, 3, 4, 5);
    for (int m = 0; m < 2; m++) {
        char nm[48];
        const char *p = m ? "mul" : "add";
        snprintf(nm, sizeof nm, "%s_same", p);
        case_binary(nm, m, s4, s4);
        snprintf(nm, sizeof nm, "%s_chan", p);
        case_binary(nm, m, s4, deft_shape4(1, 3, 1, 1));
        snprintf(nm, sizeof nm, "%s_last", p);
        case_binary(nm, m, s4, deft_shape_make(1, (int64_t[]){5}));
        snprintf(nm, sizeof nm, "%s_both", p);
        case_binary(nm, m, deft_shape_make(3, (int64_t[]){3, 1, 5}), deft_shape4(2, 3, 4, 1));
        snprintf(nm, sizeof nm, "%s_outer", p);
        case_binary(nm, m, deft_shape_make(2, (int64_t[]){4, 1}),
                    deft_shape_make(2, (int64_t[]){1, 6}));
    }
}

/* ---- concat / slice / pad / reshape --------------------------------------- */

static void case_concat(const char *name, int axis, const struct deft_shape *xs, int n) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int in[8];
    for (int i = 0; i < n; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", i);
        in[i] = deft_input(t->g, nm, xs[i]);
    }
    int y = deft_concat(t->g, "cat", in, n, axis);
    if (!tc_alloc(t)) return;
    for (int i = 0; i < n; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", i);
        tc_save(t, in[i], nm);
    }
    tc_manifest(t, "concat", "n=%d axis=%d", n, axis);
    tc_run(t, 0);
    tc_expect(t, y, "y", "concat", 0.0);
}

static void case_slice(const char *name, struct deft_shape xs, const int64_t *start,
                       const int64_t *end) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", xs);
    struct deft_attr at = {0};
    for (int d = 0; d < xs.ndim; d++) {
        at.slice.start[d] = start[d];
        at.slice.end[d] = end[d];
    }
    int y = node_out(t, bwd(t, DEFT_OP_SLICE, "slice", &x, 1, &at), 0);
    if (!tc_alloc(t)) return;
    tc_save(t, x, "x");
    char s0[64], s1[64];
    fmt_list(s0, sizeof s0, start, xs.ndim);
    fmt_list(s1, sizeof s1, end, xs.ndim);
    tc_manifest(t, "slice", "start=%s end=%s", s0, s1);
    tc_run(t, 0);
    tc_expect(t, y, "y", "slice", 0.0);
}

static void cases_shape(void) {
    struct deft_shape c1[3] = {deft_shape4(2, 3, 4, 5), deft_shape4(2, 2, 4, 5),
                               deft_shape4(2, 1, 4, 5)};
    case_concat("concat_c", 1, c1, 3);
    struct deft_shape c2[2] = {deft_shape4(2, 3, 4, 1), deft_shape4(2, 3, 4, 2)};
    case_concat("concat_w", 3, c2, 2);
    struct deft_shape c3[2] = {deft_shape_make(2, (int64_t[]){1, 7}),
                               deft_shape_make(2, (int64_t[]){3, 7})};
    case_concat("concat_n", 0, c3, 2);

    case_slice("slice_c", deft_shape4(2, 5, 6, 7), (int64_t[]){0, 1, 0, 0},
               (int64_t[]){2, 4, 6, 7});
    case_slice("slice_multi", deft_shape4(2, 5, 6, 7), (int64_t[]){1, 0, 2, 3},
               (int64_t[]){2, 5, 5, 7});

    /* the builder: deft_slice along one axis */
    struct tcase *t = tc_new("slice_builder");
    if (!t) return;
    int x = deft_input(t->g, "x", deft_shape4(1, 4, 3, 5));
    int y = deft_slice(t->g, "slice", x, 3, 2, 5);
    if (tc_alloc(t)) {
        tc_save(t, x, "x");
        tc_manifest(t, "slice", "start=0,0,0,2 end=1,4,3,5");
        tc_run(t, 0);
        tc_expect(t, y, "y", "slice", 0.0);
    }

    t = tc_new("pad");
    if (!t) return;
    x = deft_input(t->g, "x", deft_shape4(2, 3, 4, 5));
    struct deft_pad_attr pa = {.before = {0, 1, 2, 0}, .after = {1, 0, 1, 3}};
    y = deft_pad(t->g, "pad", x, &pa);
    if (tc_alloc(t)) {
        tc_save(t, x, "x");
        tc_manifest(t, "pad", "before=0,1,2,0 after=1,0,1,3");
        tc_run(t, 0);
        tc_expect(t, y, "y", "pad", 0.0);
    }

    /* reshape: same elements, same order (no PyTorch needed) */
    t = tc_new("reshape");
    if (!t) return;
    x = deft_input(t->g, "x", deft_shape4(2, 3, 4, 5));
    y = deft_flatten(t->g, "flat", x);
    int y2 = deft_reshape(t->g, "re", y, deft_shape_make(3, (int64_t[]){4, 5, 6}));
    if (tc_alloc(t)) {
        tc_run(t, 0);
        CHECK(memcmp(B(t, x), B(t, y2), 120 * sizeof(float)) == 0, "reshape moved elements");
        CHECK(vshape(t, y)->ndim == 2 && vshape(t, y)->d[1] == 60, "flatten shape");
    }
}

/* ---- upsample ------------------------------------------------------------- */

static void case_upsample(const char *name, struct deft_shape xs, int64_t oh, int64_t ow,
                          enum deft_upsample_mode mode, bool align) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", xs);
    int y = deft_upsample(t->g, "up", x, oh, ow, mode, align);
    if (!tc_graph_ok(t)) return;
    struct deft_attr at = deft_graph_node(t->g, producer(t, y))->attr;
    at.shape = xs;
    int dy = deft_input(t->g, "dy", *vshape(t, y));
    int nb = bwd(t, DEFT_OP_UPSAMPLE_BWD, "up.bwd", &dy, 1, &at);
    if (!tc_alloc(t)) return;
    tc_save(t, x, "x"), tc_save(t, dy, "dy");
    tc_manifest(t, "upsample", "mode=%d align=%d size=%lld,%lld", (int)mode, (int)align,
                (long long)oh, (long long)ow);
    tc_run(t, 0);
    const char *lf = mode == DEFT_UPSAMPLE_NEAREST ? "upsample_nearest" : "upsample_bilinear";
    const char *lb =
        mode == DEFT_UPSAMPLE_NEAREST ? "upsample_nearest_bwd" : "upsample_bilinear_bwd";
    tc_expect(t, y, "y", lf, TOL_FWD);
    tc_expect(t, node_out(t, nb, 0), "dx", lb, TOL_BWD);
}

static void cases_upsample(void) {
    struct deft_shape s = deft_shape4(2, 3, 4, 5);
    const enum deft_upsample_mode NN = DEFT_UPSAMPLE_NEAREST, BL = DEFT_UPSAMPLE_BILINEAR;
    case_upsample("up_nn_x2", s, 8, 10, NN, false);
    case_upsample("up_nn_odd", s, 7, 9, NN, false);
    case_upsample("up_nn_down", s, 3, 4, NN, false);
    case_upsample("up_nn_x3", deft_shape4(1, 2, 5, 3), 15, 9, NN, false);
    case_upsample("up_bl_x2", s, 8, 10, BL, false);
    case_upsample("up_bl_x2_ac", s, 8, 10, BL, true);
    case_upsample("up_bl_odd", s, 7, 9, BL, false);
    case_upsample("up_bl_odd_ac", s, 7, 9, BL, true);
    case_upsample("up_bl_down", s, 3, 7, BL, false);
    case_upsample("up_bl_down_ac", s, 3, 2, BL, true);
    case_upsample("up_bl_one_ac", s, 1, 6, BL, true);
}

/* ---- linear / softmax ----------------------------------------------------- */

static void case_linear(const char *name, int64_t n, int64_t k, int64_t m, bool bias) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", deft_shape_make(2, (int64_t[]){n, k}));
    int y = deft_linear(t->g, "fc", x, m, bias);
    if (!tc_graph_ok(t)) return;
    struct deft_node fn = *deft_graph_node(t->g, producer(t, y));
    int w = fn.in[1], b = bias ? fn.in[2] : -1;
    int dy = deft_input(t->g, "dy", *vshape(t, y));
    struct deft_attr at = fn.attr;
    int n1 = bwd(t, DEFT_OP_LINEAR_BWD_DATA, "fc.bwd_data", (int[]){dy, w}, 2, &at);
    at.has_bias = bias;
    int n2 = bwd(t, DEFT_OP_LINEAR_BWD_WEIGHTS, "fc.bwd_weights", (int[]){dy, x}, 2, &at);
    if (!tc_alloc(t)) return;
    tc_save(t, x, "x"), tc_save(t, w, "w"), tc_save(t, dy, "dy");
    if (b >= 0) tc_save(t, b, "b");
    tc_manifest(t, "linear", "-");
    tc_run(t, 0);
    tc_expect(t, y, "y", "linear", TOL_FWD);
    tc_expect(t, node_out(t, n1, 0), "dx", "linear_bwd_data", TOL_BWD);
    tc_expect(t, node_out(t, n2, 0), "dw", "linear_bwd_weights", TOL_BWD);
    if (bias) tc_expect(t, node_out(t, n2, 1), "db", "linear_bwd_weights", TOL_BWD);
}

static void case_softmax(const char *name, struct deft_shape xs, int axis) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", xs);
    int y = deft_softmax(t->g, "sm", x, axis);
    int dy = deft_input(t->g, "dy", xs);
    struct deft_attr at = {.softmax = {axis}};
    int nb = tc_graph_ok(t) ? bwd(t, DEFT_OP_SOFTMAX_BWD, "sm.bwd", (int[]){dy, y}, 2, &at) : -1;
    if (!tc_alloc(t)) return;
    for (int64_t i = 0; i < vnumel(t, x); i++) B(t, x)[i] *= 4.0f;
    tc_save(t, x, "x"), tc_save(t, dy, "dy");
    tc_manifest(t, "softmax", "axis=%d", axis);
    tc_run(t, 0);
    tc_expect(t, y, "y", "softmax", TOL_FWD);
    tc_expect(t, node_out(t, nb, 0), "dx", "softmax_bwd", TOL_BWD);
}

/* ---- losses --------------------------------------------------------------- */

enum target_kind { T_IDS, T_IDS_IGNORE, T_PROBS, T_UNIT, T_BINARY, T_RANDOM };

static void case_loss(const char *name, struct deft_loss_attr la, int64_t n, int64_t c,
                      enum target_kind tk) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    struct deft_shape xs = deft_shape_make(2, (int64_t[]){n, c});
    int x = deft_input(t->g, "x", xs);
    bool ids = tk == T_IDS || tk == T_IDS_IGNORE;
    int tg = deft_input(t->g, "t", ids ? deft_shape_make(1, (int64_t[]){n}) : xs);
    int l = deft_loss(t->g, "loss", x, tg, &la);
    int dl = deft_input(t->g, "dloss", deft_shape_make(1, (int64_t[]){1}));
    struct deft_attr at = {.loss = la};
    int nb = tc_graph_ok(t) ? bwd(t, DEFT_OP_LOSS_BWD, "loss.bwd", (int[]){x, tg, dl}, 3, &at)
                            : -1;
    if (!tc_alloc(t)) return;
    float *tp = B(t, tg), *xp = B(t, x);
    for (int64_t i = 0; i < n * c; i++) xp[i] *= 3.0f;
    for (int64_t i = 0; i < vnumel(t, tg); i++) {
        float u = 0.5f * (frand() + 1.0f);
        switch (tk) {
        case T_IDS: tp[i] = (float)(int64_t)(u * (float)c); break;
        case T_IDS_IGNORE: /* PyTorch's default ignore_index */
            tp[i] = i % 3 == 1 ? -100.0f : (float)(int64_t)(u * (float)c);
            break;
        case T_PROBS: tp[i] = expf(2.0f * frand()); break;
        case T_UNIT: tp[i] = u; break;
        case T_BINARY: tp[i] = u < 0.3f ? 1.0f : 0.0f; break;
        case T_RANDOM: tp[i] = 2.0f * frand(); break;
        }
    }
    if (tk == T_PROBS) /* rows sum to one */
        for (int64_t r = 0; r < n; r++) {
            double s = 0;
            for (int64_t j = 0; j < c; j++) s += tp[r * c + j];
            for (int64_t j = 0; j < c; j++) tp[r * c + j] = (float)(tp[r * c + j] / s);
        }
    B(t, dl)[0] = 0.7f;
    tc_save(t, x, "x"), tc_save(t, tg, "t"), tc_save(t, dl, "dloss");
    tc_manifest(t, "loss", "kind=%d smoothing=%.9g alpha=%.9g gamma=%.9g beta=%.9g", (int)la.kind,
                (double)la.label_smoothing, (double)la.alpha, (double)la.gamma, (double)la.beta);
    tc_run(t, 0);
    char lb[48];
    snprintf(lb, sizeof lb, "loss_%s", deft_loss_name(la.kind));
    tc_expect(t, l, "loss", lb, TOL_FWD);
    snprintf(lb, sizeof lb, "loss_%s_bwd", deft_loss_name(la.kind));
    tc_expect(t, node_out(t, nb, 0), "dx", lb, TOL_BWD);
}

static void cases_misc(void) {
    case_linear("linear_bias", 4, 7, 5, true);
    case_linear("linear_nobias", 3, 16, 10, false);
    case_softmax("softmax_2d", deft_shape_make(2, (int64_t[]){3, 7}), 1);
    case_softmax("softmax_4d", deft_shape4(2, 3, 4, 5), 1);
    case_softmax("softmax_ax0", deft_shape_make(2, (int64_t[]){4, 3}), 0);
    case_softmax("softmax_last", deft_shape4(2, 3, 2, 6), 3);

    const enum deft_loss_kind CE = DEFT_LOSS_SOFTMAX_CE;
    case_loss("ce_ids", (struct deft_loss_attr){.kind = CE}, 6, 5, T_IDS);
    case_loss("ce_ids_ls", (struct deft_loss_attr){.kind = CE, .label_smoothing = 0.1f}, 7, 4,
              T_IDS);
    case_loss("ce_ignore_ls", (struct deft_loss_attr){.kind = CE, .label_smoothing = 0.15f}, 8,
              5, T_IDS_IGNORE);
    case_loss("ce_probs", (struct deft_loss_attr){.kind = CE}, 6, 5, T_PROBS);
    case_loss("ce_probs_ls", (struct deft_loss_attr){.kind = CE, .label_smoothing = 0.2f}, 5, 6,
              T_PROBS);
    case_loss("bce", (struct deft_loss_attr){.kind = DEFT_LOSS_BCE_LOGITS}, 4, 6, T_UNIT);
    case_loss("focal", (struct deft_loss_attr){.kind = DEFT_LOSS_FOCAL, .alpha = 0.25f,
                                               .gamma = 2.0f}, 4, 6, T_BINARY);
    case_loss("focal_noalpha", (struct deft_loss_attr){.kind = DEFT_LOSS_FOCAL, .alpha = -1.0f,
                                                       .gamma = 1.5f}, 3, 5, T_UNIT);
    case_loss("l1", (struct deft_loss_attr){.kind = DEFT_LOSS_L1}, 4, 5, T_RANDOM);
    case_loss("smooth_l1", (struct deft_loss_attr){.kind = DEFT_LOSS_SMOOTH_L1, .beta = 0.5f}, 5,
              6, T_RANDOM);
    case_loss("smooth_l1_b1", (struct deft_loss_attr){.kind = DEFT_LOSS_SMOOTH_L1, .beta = 1.0f},
              4, 4, T_RANDOM);
    case_loss("l2", (struct deft_loss_attr){.kind = DEFT_LOSS_L2}, 4, 5, T_RANDOM);
}

/* ---- RoIAlign / crop-and-resize ------------------------------------------ */

/* Boxes over an image of img_h x img_w input pixels: ordinary boxes, boxes
 * partly (or wholly) outside the image, tiny and zero-size boxes, one box
 * with swapped corners; batch indices over the batch. */
static void fill_boxes(float *b, int r, int n, float img_h, float img_w) {
    for (int i = 0; i < r; i++) {
        float u[4];
        for (int k = 0; k < 4; k++) u[k] = 0.5f * (frand() + 1.0f);
        float x1 = u[0] * img_w, y1 = u[1] * img_h, bw = u[2] * img_w * 0.8f, bh = u[3] * img_h * 0.8f;
        switch (i % 6) {
        case 1: x1 -= 0.4f * img_w, y1 += 0.3f * img_h; break;  /* crosses the left/bottom edge */
        case 2: bw = 0.3f * u[2], bh = 0.2f * u[3]; break;      /* tiny */
        case 3: bw = 0.0f; break;                               /* zero width */
        case 4: x1 += 0.5f * img_w, bw += 0.5f * img_w; break;  /* crosses the right edge */
        case 5: bw = -0.2f * img_w; break;                      /* x2 < x1 */
        default: break;
        }
        b[i * 5 + 0] = (float)(i % n);
        b[i * 5 + 1] = x1, b[i * 5 + 2] = y1, b[i * 5 + 3] = x1 + bw, b[i * 5 + 4] = y1 + bh;
    }
}

/* Forward and backward at the same tolerance (1e-4): the bar. */
static void case_roi(const char *name, struct deft_shape xs, int r, struct deft_roi_attr a, float img_h,
                     float img_w) {
    struct tcase *t = tc_new(name);
    if (!t) return;
    int x = deft_input(t->g, "x", xs);
    int bx = deft_input(t->g, "boxes", deft_shape_make(2, (int64_t[]){r, 5}));
    int y = deft_roi_align(t->g, "roi", x, bx, &a);
    if (!tc_graph_ok(t)) return;
    int dy = deft_input(t->g, "dy", *vshape(t, y));
    struct deft_attr at = {.roi = a, .shape = xs};
    int nb = bwd(t, DEFT_OP_ROI_ALIGN_BWD, "roi.bwd", (int[]){dy, bx}, 2, &at);
    if (!tc_alloc(t)) return;
    fill_boxes(B(t, bx), r, (int)xs.d[0], img_h, img_w);
    tc_save(t, x, "x"), tc_save(t, bx, "boxes"), tc_save(t, dy, "dy");
    tc_manifest(t, "roi_align", "mode=%d out=%d,%d scale=%.9g sr=%d aligned=%d image=%d,%d", (int)a.mode,
                a.out_h, a.out_w, (double)a.spatial_scale, a.sampling_ratio, (int)a.aligned, a.image_h,
                a.image_w);
    tc_run(t, 0);
    const bool crop = a.mode == DEFT_ROI_CROP_RESIZE;
    tc_expect(t, y, "y", crop ? "crop_and_resize" : "roi_align", TOL_FWD);
    tc_expect(t, node_out(t, nb, 0), "dx", crop ? "crop_and_resize_bwd" : "roi_align_bwd", TOL_FWD);
}

static void cases_roi(void) {
    struct deft_shape s = deft_shape4(2, 3, 9, 11);
    /* feature map 9x11 at scale 1/2 of an 18x22 image; boxes overhang it */
    const struct { const char *name; int oh, ow, sr; bool aligned; float scale; } al[] = {
        {"roi_sr_adapt", 7, 7, -1, false, 0.5f}, {"roi_sr_adapt_al", 7, 7, -1, true, 0.5f},
        {"roi_sr2", 7, 7, 2, false, 0.5f},       {"roi_sr2_al", 7, 7, 2, true, 0.5f},
        {"roi_3x5_sr1", 3, 5, 1, true, 0.5f},    {"roi_2x2_sr0", 2, 2, 0, false, 0.5f},
    };
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++)
        case_roi(al[i].name, s, 12, (struct deft_roi_attr){.mode = DEFT_ROI_ALIGN, .out_h = al[i].oh,
                 .out_w = al[i].ow, .spatial_scale = al[i].scale, .sampling_ratio = al[i].sr,
                 .aligned = al[i].aligned}, 18.0f, 22.0f);
    /* stride 16 as Faster R-CNN: a 5x6 map of an 80x96 image, 16 channels */
    case_roi("roi_stride16", deft_shape4(1, 16, 5, 6), 9, (struct deft_roi_attr){.mode = DEFT_ROI_ALIGN,
             .out_h = 7, .out_w = 7, .spatial_scale = 1.0f / 16, .sampling_ratio = -1, .aligned = true},
             80.0f, 96.0f);
    /* TAO's CropAndResize: pool_size 7, pool_size_2x (14), a single cell */
    const int crop[][2] = {{7, 7}, {14, 14}, {1, 1}, {1, 4}};
    const char *cn[] = {"crop_7", "crop_14", "crop_1", "crop_1x4"};
    for (int i = 0; i < 4; i++)
        case_roi(cn[i], s, 12, (struct deft_roi_attr){.mode = DEFT_ROI_CROP_RESIZE, .out_h = crop[i][0],
                 .out_w = crop[i][1], .image_h = 18, .image_w = 22}, 18.0f, 22.0f);
}

/* ---- checks that need no PyTorch ------------------------------------------- */

static void test_dropout(void) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    const int64_t cnt = 4 * 1000;
    int x = deft_input(g, "x", deft_shape_make(2, (int64_t[]){4, 1000}));
    int y = deft_dropout(g, "drop", x, 0.3f, true, 1234);
    int ye = deft_dropout(g, "drop_eval", x, 0.3f, false, 1234);
    int dy = deft_input(g, "dy", deft_shape_make(2, (int64_t[]){4, 1000}));
    if (deft_graph_status(g)) {
        CHECK(0, "dropout graph: %s", deft_last_error());
        deft_graph_free(g);
        return;
    }
    int nd = deft_graph_value(g, y)->producer, nde = deft_graph_value(g, ye)->producer;
    int mask = deft_graph_node(g, nd)->out[1], maske = deft_graph_node(g, nde)->out[1];
    int nb = deft_graph_add_node(g, DEFT_OP_DROPOUT_BWD, "drop.bwd", (int[]){dy, mask}, 2, NULL);
    CHECK(nb >= 0, "dropout_bwd node: %s", deft_last_error());
    if (nb < 0) {
        deft_graph_free(g);
        return;
    }
    int dx = deft_graph_node(g, nb)->out[0];
    int nv = deft_graph_num_values(g);
    void **buf = calloc((size_t)nv, sizeof *buf);
    for (int v = 0; v < nv; v++) buf[v] = calloc(1, deft_ref_value_bytes(g, v) + 4);
    for (int64_t i = 0; i < cnt; i++) {
        ((float *)buf[x])[i] = frand();
        ((float *)buf[dy])[i] = frand();
    }
    for (uint64_t step = 5; step <= 6; step++) {
        struct deft_run_ctx rc = {.step = step};
        for (int n = 0; n < deft_graph_num_nodes(g); n++)
            CHECK_OK(deft_ref_run_node(g, n, buf, &rc));
        const float *xs = buf[x], *ys = buf[y], *m = buf[mask], *dys = buf[dy], *dxs = buf[dx];
        int64_t dropped = 0, bad = 0;
        for (int64_t i = 0; i < cnt; i++) {
            float u = deft_rng_uniform(1234, (uint64_t)nd, step * (uint64_t)cnt + (uint64_t)i);
            float want = u >= 0.3f ? (float)(1.0 / 0.7) : 0.0f;
            if (m[i] != want || ys[i] != xs[i] * want || dxs[i] != dys[i] * want) bad++;
            dropped += m[i] == 0.0f;
        }
        CHECK(bad == 0, "dropout step %llu: %lld elements differ from the RNG formula",
              (unsigned long long)step, (long long)bad);
        CHECK(dropped > 0.25 * cnt && dropped < 0.35 * cnt, "dropout dropped %lld of %lld",
              (long long)dropped, (long long)cnt);
        int64_t ebad = 0;
        for (int64_t i = 0; i < cnt; i++)
            ebad += ((float *)buf[ye])[i] != xs[i] || ((float *)buf[maske])[i] != 1.0f;
        CHECK(ebad == 0, "eval dropout is not the identity (%lld)", (long long)ebad);
    }
    for (int v = 0; v < nv; v++) free(buf[v]);
    free(buf);
    deft_graph_free(g);
}

/* RoI boxes the kernel cannot sample are errors, never a crash or a read
 * outside the map; bad shapes and attributes fail at build time; the
 * attributes survive the graph's JSON form. */
static void test_roi_bad_input(void) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = deft_input(g, "x", deft_shape4(2, 3, 5, 6));
    int bx = deft_input(g, "boxes", deft_shape_make(2, (int64_t[]){1, 5}));
    struct deft_roi_attr a = {.mode = DEFT_ROI_ALIGN, .out_h = 2, .out_w = 3, .spatial_scale = 0.5f,
                              .sampling_ratio = -1, .aligned = true};
    int y = deft_roi_align(g, "roi", x, bx, &a);
    int dy = deft_input(g, "dy", deft_shape4(1, 3, 2, 3));
    struct deft_attr at = {.roi = a, .shape = deft_shape4(2, 3, 5, 6)};
    int nb = deft_graph_add_node(g, DEFT_OP_ROI_ALIGN_BWD, "roi.bwd", (int[]){dy, bx}, 2, &at);
    CHECK(y >= 0 && nb >= 0 && deft_graph_status(g) == DEFT_OK, "roi graph: %s", deft_last_error());
    if (deft_graph_status(g)) {
        deft_graph_free(g);
        return;
    }
    int nv = deft_graph_num_values(g);
    void **buf = calloc((size_t)nv, sizeof *buf);
    for (int v = 0; v < nv; v++) buf[v] = calloc(1, deft_ref_value_bytes(g, v) + 4);
    const float bad[][5] = {{2, 0, 0, 4, 4}, {-1, 0, 0, 4, 4}, {0, NAN, 0, 4, 4}, {1, 0, 0, INFINITY, 4},
                            {0, 0, 0, 1e9f, 4}};
    struct deft_run_ctx rc = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(buf[bx], bad[i], sizeof bad[i]);
        CHECK(deft_ref_run_node(g, 0, buf, &rc) == DEFT_ERR_INVALID_ARG, "roi_align accepted bad box %zu", i);
        CHECK(deft_ref_run_node(g, 1, buf, &rc) == DEFT_ERR_INVALID_ARG, "roi_align_bwd accepted bad box %zu", i);
    }
    const float good[5] = {1, -3, -2, 40, 30}; /* overhangs the map on every side */
    memcpy(buf[bx], good, sizeof good);
    CHECK_OK(deft_ref_run_node(g, 0, buf, &rc));
    char *json = NULL;
    struct deft_graph *g2 = NULL;
    CHECK_OK(deft_graph_to_json(g, &json));
    if (json) CHECK_OK(deft_graph_from_json(json, strlen(json), &g2));
    if (g2) {
        const struct deft_roi_attr *b = &deft_graph_node(g2, 0)->attr.roi;
        CHECK(b->mode == a.mode && b->out_h == 2 && b->out_w == 3 && b->spatial_scale == 0.5f &&
              b->sampling_ratio == -1 && b->aligned, "roi_align attributes lost in JSON");
        deft_graph_free(g2);
    }
    deft_free(json);
    /* ONNX: RoiAlign (opset 16 for aligned); crop-and-resize has no operator */
    deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
    char onnx_path[512];
    snprintf(onnx_path, sizeof onnx_path, "%s/roi_align.onnx", test_tmpdir());
    CHECK_OK(deft_onnx_export(onnx_path, g, NULL, &(struct deft_onnx_export_opts){.opset = 16}, NULL));
    CHECK(deft_onnx_export(onnx_path, g, NULL, &(struct deft_onnx_export_opts){.opset = 13}, NULL) ==
              DEFT_ERR_UNSUPPORTED, "aligned RoiAlign exported at opset 13");
    if (test_have_torch()) { /* Debian's onnx sits beside torch */
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import onnx,sys; m=onnx.load(sys.argv[1]); "
                 "onnx.checker.check_model(m, full_check=True); r=[n for n in m.graph.node if n.op_type=='RoiAlign'][0]; "
                 "a={x.name: onnx.helper.get_attribute_value(x) for x in r.attribute}; "
                 "assert a['output_height']==2 and a['output_width']==3 and a['sampling_ratio']==0 and "
                 "a['spatial_scale']==0.5 and a['coordinate_transformation_mode']==b'half_pixel', a\" '%s'",
                 onnx_path);
        CHECK(system(cmd) == 0, "exported RoiAlign fails onnx.checker or has the wrong attributes");
    }
    for (int v = 0; v < nv; v++) free(buf[v]);
    free(buf);
    deft_graph_free(g);
    /* build-time checks */
    const struct { struct deft_roi_attr a; int64_t bcols; const char *what; } fails[] = {
        {a, 4, "boxes [R, 4]"},
        {{.mode = DEFT_ROI_ALIGN, .out_h = 0, .out_w = 3, .spatial_scale = 1}, 5, "output size 0"},
        {{.mode = DEFT_ROI_ALIGN, .out_h = 2, .out_w = 3, .spatial_scale = 0}, 5, "spatial_scale 0"},
        {{.mode = DEFT_ROI_CROP_RESIZE, .out_h = 7, .out_w = 7}, 5, "crop without the image size"},
        {{.mode = (enum deft_roi_mode)7, .out_h = 7, .out_w = 7, .spatial_scale = 1}, 5, "unknown mode"},
    };
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        CHECK_OK(deft_graph_create(&g));
        x = deft_input(g, "x", deft_shape4(2, 3, 5, 6));
        bx = deft_input(g, "boxes", deft_shape_make(2, (int64_t[]){3, fails[i].bcols}));
        CHECK(deft_roi_align(g, "roi", x, bx, &fails[i].a) < 0 && deft_graph_status(g) != DEFT_OK,
              "roi_align built with %s", fails[i].what);
        deft_graph_free(g);
    }
}

/* The vtable: value sizes, running through it, read_plain, unsupported ops. */
static void test_vtable(void) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = deft_input(g, "x", deft_shape4(1, 2, 6, 6));
    int y = deft_conv2d(g, "conv", x, 3, 3, 3, &(struct deft_conv_attr){.stride = {1, 1},
                        .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1}, true);
    struct deft_pool_attr pa = PA(DEFT_POOL_MAX, 2, 2, 2, 2, 0, 0, 0, 0);
    int p = deft_pool(g, "pool", y, &pa);
    if (deft_graph_status(g)) {
        CHECK(0, "vtable graph: %s", deft_last_error());
        deft_graph_free(g);
        return;
    }
    const struct deft_backend_vtable *vt = &deft_backend_ref;
    CHECK(strcmp(vt->name, "ref") == 0, "ref backend name");
    int nv = deft_graph_num_values(g);
    size_t *vb = calloc((size_t)nv, sizeof *vb);
    size_t scratch = 1;
    struct deft_program *prog = NULL;
    CHECK_OK(vt->compile(g, NULL, &prog, vb, &scratch));
    CHECK(scratch == 0, "ref scratch %zu", scratch);
    CHECK(vb[x] == 0, "input value bytes %zu", vb[x]);
    CHECK(vb[y] == 3 * 36 * 4, "conv output bytes %zu", vb[y]);
    int ws = deft_graph_node(g, deft_graph_value(g, p)->producer)->out[1];
    CHECK(vb[ws] == 3 * 9 * 4, "pool workspace bytes %zu", vb[ws]);
    void **buf = calloc((size_t)nv, sizeof *buf);
    for (int v = 0; v < nv; v++) {
        buf[v] = calloc(1, deft_ref_value_bytes(g, v) + 4);
        if (deft_graph_value(g, v)->kind != DEFT_VALUE_NODE)
            for (int64_t i = 0; i < deft_shape_numel(&deft_graph_value(g, v)->shape); i++)
                ((float *)buf[v])[i] = frand();
    }
    struct deft_run_ctx rc = {0};
    for (int n = 0; n < deft_graph_num_nodes(g); n++)
        CHECK_OK(vt->run_node(prog, n, buf, NULL, &rc));
    float plain[27];
    CHECK_OK(vt->read_plain(prog, ws, buf[ws], plain));
    bool idx_ok = true;
    for (int i = 0; i < 27; i++) {
        /* the argmax of each 2x2 window holds the window's maximum */
        int plane = i / 9, oh = (i % 9) / 3, ow = i % 3, id = (int)plain[i];
        const float *yp = (const float *)buf[y] + plane * 36;
        int ih = id / 6, iw = id % 6;
        idx_ok &= ih / 2 == oh && iw / 2 == ow && yp[id] == ((float *)buf[p])[i];
    }
    CHECK(idx_ok, "read_plain of the max-pool workspace");
    CHECK_OK(vt->read_plain(prog, p, buf[p], plain));
    CHECK(memcmp(plain, buf[p], sizeof plain) == 0, "read_plain of a plain value");
    /* An op the reference does not know gives UNSUPPORTED, not a crash. */
    struct deft_node *m = deft_graph_node_mut(g, 0);
    enum deft_op saved = m->op;
    m->op = DEFT_OP_COUNT;
    CHECK(deft_ref_run_node(g, 0, buf, &rc) == DEFT_ERR_UNSUPPORTED, "unknown op not rejected");
    m->op = saved;
    CHECK(deft_ref_run_node(g, 99, buf, &rc) == DEFT_ERR_INVALID_ARG, "bad node index accepted");
    void *save = buf[y];
    buf[y] = NULL;
    CHECK(deft_ref_run_node(g, 0, buf, &rc) == DEFT_ERR_INVALID_ARG, "missing buffer accepted");
    buf[y] = save;
    vt->free_program(prog);
    for (int v = 0; v < nv; v++) free(buf[v]);
    free(buf);
    free(vb);
    deft_graph_free(g);
}

/* Results must not depend on the thread count: every output element is summed
 * by one thread in a fixed order. */
static void test_threads(void) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    struct deft_shape xs = deft_shape4(3, 4, 11, 10);
    int x = deft_input(g, "x", xs);
    struct deft_conv_attr ca = CA(2, 1, 1, 2, 0, 1, 1, 2, 2);
    int y = deft_conv2d(g, "conv", x, 6, 3, 3, &ca, true);
    int u = deft_upsample(g, "up", y, 13, 17, DEFT_UPSAMPLE_BILINEAR, false);
    int dy = deft_input(g, "dy", deft_graph_status(g) ? xs : deft_graph_value(g, y)->shape);
    int du = deft_input(g, "du", deft_graph_status(g) ? xs : deft_graph_value(g, u)->shape);
    if (deft_graph_status(g)) {
        CHECK(0, "threads graph: %s", deft_last_error());
        deft_graph_free(g);
        return;
    }
    struct deft_attr at = deft_graph_node(g, deft_graph_value(g, y)->producer)->attr;
    int w = deft_graph_node(g, deft_graph_value(g, y)->producer)->in[1];
    at.shape = xs;
    deft_graph_add_node(g, DEFT_OP_CONV2D_BWD_DATA, "bd", (int[]){dy, w}, 2, &at);
    at.shape = deft_graph_value(g, w)->shape;
    deft_graph_add_node(g, DEFT_OP_CONV2D_BWD_WEIGHTS, "bw", (int[]){dy, x}, 2, &at);
    struct deft_attr ua = deft_graph_node(g, deft_graph_value(g, u)->producer)->attr;
    ua.shape = deft_graph_value(g, y)->shape;
    deft_graph_add_node(g, DEFT_OP_UPSAMPLE_BWD, "ub", &du, 1, &ua);
    CHECK_OK(deft_graph_status(g));
    int nv = deft_graph_num_values(g);
    void **buf = calloc((size_t)nv, sizeof *buf), **first = calloc((size_t)nv, sizeof *first);
    for (int v = 0; v < nv; v++) {
        size_t bytes = deft_ref_value_bytes(g, v) + 4;
        buf[v] = calloc(1, bytes);
        first[v] = calloc(1, bytes);
        if (deft_graph_value(g, v)->kind != DEFT_VALUE_NODE)
            for (int64_t i = 0; i < deft_shape_numel(&deft_graph_value(g, v)->shape); i++)
                ((float *)buf[v])[i] = frand();
    }
    int saved = deft_get_threads();
    struct deft_run_ctx rc = {0};
    for (int pass = 0; pass < 2; pass++) {
        deft_set_threads(pass == 0 ? 1 : 3);
        for (int n = 0; n < deft_graph_num_nodes(g); n++)
            CHECK_OK(deft_ref_run_node(g, n, buf, &rc));
        for (int v = 0; v < nv; v++) {
            size_t bytes = deft_ref_value_bytes(g, v);
            if (pass == 0) memcpy(first[v], buf[v], bytes);
            else
                CHECK(memcmp(first[v], buf[v], bytes) == 0, "%s differs between 1 and 3 threads",
                      deft_graph_value(g, v)->name);
        }
    }
    deft_set_threads(saved);
    for (int v = 0; v < nv; v++) free(buf[v]), free(first[v]);
    free(buf);
    free(first);
    deft_graph_free(g);
}

int main(void) {
    test_dropout();
    test_roi_bad_input();
    test_vtable();
    test_threads();
    if (!test_have_torch()) {
        if (test_failed) return test_summary();
        test_skip("python3 with torch not available for the PyTorch comparisons");
    }
    char path[512];
    snprintf(path, sizeof path, "%s/manifest.txt", test_tmpdir());
    manifest = fopen(path, "w");
    if (!manifest) {
        CHECK(0, "cannot create %s", path);
        return test_summary();
    }
    cases_conv();
    cases_bn();
    cases_act();
    cases_pool();
    cases_binary();
    cases_shape();
    cases_upsample();
    cases_misc();
    cases_roi();
    fclose(manifest);

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/gen_ops.py' '%s' '%s'",
             test_source_dir(), path, test_tmpdir());
    double t0 = deft_time_now();
    int rc = system(cmd);
    CHECK(rc == 0, "gen_ops.py failed (%d)", rc);
    printf("gen_ops.py: %d cases in %.1f s\n", n_cases, deft_time_now() - t0);

    for (int i = 0; i < n_cases; i++) {
        tc_compare(&cases[i]);
        tc_free(&cases[i]);
    }
    printf("%-34s %10s %8s %4s\n", "op", "worst err", "tol", "n");
    for (int i = 0; i < n_stats; i++)
        printf("%-34s %10.3g %8.0e %4d\n", stats[i].label, stats[i].worst, stats[i].tol,
               stats[i].n);
    return test_summary();
}

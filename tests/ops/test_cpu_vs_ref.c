/* test_cpu_vs_ref.c - a fast backend against the reference backend: the op
 * matrix. `test_cpu_vs_ref [BACKEND [fp32|bf16|fp16]]` (default cpu); the
 * build also runs it for cuda-emu (the CUDA backend's host code and kernel
 * bodies on the CPU) and, in CUDA builds, for cuda (skipped without a GPU).
 *
 * Every op (forward and backward) over odd shapes, strides, padding,
 * dilation, groups, depthwise, channel counts that are not multiples of 16
 * and batches of 1 and 3. Each case is a small graph compiled with both
 * backends and run by a tiny executor local to this test (one buffer per
 * value, sized by the backend's value_bytes); every node-produced value and
 * every state value is read back as plain f32 and compared. Cases run twice:
 * on plain inputs and behind a 1x1 convolution, so the op sees the cpu
 * backend's blocked layout (nChw16c) and backward ops get mixed layouts.
 */
#include <string.h>
#include "deft_test.h"
#include "deft/autograd.h"
#include "deft/models.h"
#include "backend/backend.h"

#define TOL 1e-4

/* Worst error per op name over all cases. */
static struct { char op[40]; double err; char where[96]; } worst[64];
static const struct deft_backend_vtable *tested; /* the backend under test */
static struct deft_backend_opts bopts;
static int n_worst;

static void note_worst(const char *op, double err, const char *where) {
    int i;
    for (i = 0; i < n_worst; i++)
        if (strcmp(worst[i].op, op) == 0) break;
    if (i == n_worst) {
        if (n_worst == 64) return;
        snprintf(worst[i].op, sizeof worst[i].op, "%s", op);
        worst[i].err = -1;
        n_worst++;
    }
    if (err > worst[i].err) {
        worst[i].err = err;
        snprintf(worst[i].where, sizeof worst[i].where, "%s", where);
    }
}

/* ---- tiny executor ------------------------------------------------------- */

struct result { float **val; int nv; };

static void result_free(struct result *r) {
    if (!r->val) return;
    for (int v = 0; v < r->nv; v++) free(r->val[v]);
    free(r->val);
    r->val = NULL;
}

/* Host data for runtime-owned values (inputs, params, state); model cases
 * use the graph's initializers so activations keep a sane scale. */
static bool use_init;
/* RoI cases: the value named "boxes" gets these rows (batch index, x1, y1, x2,
 * y2) instead of noise, which would be no valid batch index. */
static const float *roi_boxes;
static float **make_host(const struct deft_graph *g, uint64_t seed) {
    int nv = deft_graph_num_values(g);
    float **h = calloc((size_t)nv, sizeof *h);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind == DEFT_VALUE_NODE) continue;
        int64_t n = deft_shape_numel(&val->shape);
        h[v] = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
        bool var = strstr(val->name, "running_var") != NULL;
        if (roi_boxes && strcmp(val->name, "boxes") == 0) {
            memcpy(h[v], roi_boxes, (size_t)n * sizeof(float));
            continue;
        }
        if (use_init && val->kind != DEFT_VALUE_INPUT && deft_init_param(val, seed, h[v]) == DEFT_OK) {
            if (var) /* non-trivial running statistics for eval/frozen BN */
                for (int64_t i = 0; i < n; i++) h[v][i] += 0.5f * deft_rng_uniform(seed, (uint64_t)v, (uint64_t)i);
            continue;
        }
        for (int64_t i = 0; i < n; i++) {
            float u = deft_rng_uniform(seed, (uint64_t)v, (uint64_t)i);
            h[v][i] = var ? 0.5f + u : 2.0f * u - 1.0f;
        }
    }
    return h;
}

static bool run_graph(const struct deft_backend_vtable *be, const struct deft_graph *g, float **host,
                      struct result *res) {
    int nv = deft_graph_num_values(g), nn = deft_graph_num_nodes(g);
    size_t *bytes = calloc((size_t)nv, sizeof *bytes), scratch_bytes = 0;
    struct deft_program *prog = NULL;
    enum deft_status st = be->compile(g, &bopts, &prog, bytes, &scratch_bytes);
    CHECK(st == DEFT_OK, "%s compile: %s", be->name, deft_last_error());
    if (st) {
        free(bytes);
        return false;
    }
    void **ptr = calloc((size_t)nv, sizeof *ptr);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        size_t n = (size_t)deft_shape_numel(&val->shape) * sizeof(float);
        size_t b = val->kind == DEFT_VALUE_NODE ? bytes[v] : n;
        ptr[v] = be->alloc ? be->alloc(prog, b > 64 ? b : 64) : deft_malloc_aligned(b > 64 ? b : 64);
        if (val->kind == DEFT_VALUE_NODE) memset(ptr[v], 0, b);
        else memcpy(ptr[v], host[v], n);
    }
    void *scratch = be->alloc ? be->alloc(prog, scratch_bytes > 64 ? scratch_bytes : 64)
                              : deft_malloc_aligned(scratch_bytes > 64 ? scratch_bytes : 64);
    struct deft_run_ctx rc = {.step = 1};
    bool ok = true;
    for (int n = 0; n < nn && ok; n++) {
        st = be->run_node(prog, n, ptr, scratch, &rc);
        CHECK(st == DEFT_OK, "%s run %s: %s", be->name, deft_graph_node(g, n)->name, deft_last_error());
        ok = st == DEFT_OK;
    }
    if (ok && be->sync) {
        st = be->sync(prog);
        CHECK(st == DEFT_OK, "%s sync: %s", be->name, deft_last_error());
        ok = st == DEFT_OK;
    }
    res->nv = nv;
    res->val = calloc((size_t)nv, sizeof *res->val);
    for (int v = 0; v < nv && ok; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        size_t n = (size_t)deft_shape_numel(&val->shape);
        res->val[v] = malloc((n > 0 ? n : 1) * sizeof(float));
        if (val->kind != DEFT_VALUE_NODE) {
            memcpy(res->val[v], ptr[v], n * sizeof(float));
        } else {
            st = be->read_plain(prog, v, ptr[v], res->val[v]);
            CHECK(st == DEFT_OK, "%s read_plain %s: %s", be->name, val->name, deft_last_error());
        }
    }
    for (int v = 0; v < nv; v++) {
        if (be->free_mem) be->free_mem(prog, ptr[v]);
        else deft_free_aligned(ptr[v]);
    }
    if (be->free_mem) be->free_mem(prog, scratch);
    else deft_free_aligned(scratch);
    free(ptr);
    free(bytes);
    be->free_program(prog);
    return ok;
}

/* max |a - b| / max |b|: the error relative to the output's scale. Model
 * cases floor the scale at 1 (activations there are O(1)): values that are
 * zero in exact arithmetic (the batch mean after a zero-mean BN output, the
 * bias gradient behind a train-mode BN) are pure rounding noise. */
static double scale_floor;
static double scale_err(const float *a, const float *b, size_t n) {
    double scale = scale_floor, m = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        m = fmax(m, d);
    }
    return m / (scale > 0 ? scale : 1.0);
}

static bool fed_by_inputs(const struct deft_graph *g, int v) {
    const struct deft_value *val = deft_graph_value(g, v);
    if (val->kind != DEFT_VALUE_NODE) return false;
    const struct deft_node *nd = deft_graph_node(g, val->producer);
    for (int i = 0; i < nd->n_in; i++)
        if (nd->in[i] >= 0 && deft_graph_value(g, nd->in[i])->kind == DEFT_VALUE_NODE) return false;
    return true;
}

/* Run g on both backends and compare every computed value. */
static double tol = TOL;
static double tol_scale = 1.0; /* AMP: a documented, looser bound */
static void compare(struct deft_graph *g, const char *label) {
    CHECK(deft_graph_status(g) == DEFT_OK, "%s: building: %s", label, deft_last_error());
    if (deft_graph_status(g)) return;
    long live0 = deft_alloc_live();
    float **host = make_host(g, 1234);
    struct result rc = {0}, rr = {0};
    bool ok = run_graph(tested, g, host, &rc) && run_graph(&deft_backend_ref, g, host, &rr);
    int nv = deft_graph_num_values(g);
    for (int v = 0; v < nv && ok; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind == DEFT_VALUE_INPUT || val->kind == DEFT_VALUE_PARAM) continue;
        if (val->flags & DEFT_VF_OPAQUE) continue;
        /* 16-bit products change a value slightly; downstream of it a ReLU kink
         * or a max-pool argmax may flip, so AMP checks only the ops fed by the
         * test's own data (each op once, on identical inputs). */
        if (bopts.amp && !fed_by_inputs(g, v)) continue;
        size_t n = (size_t)deft_shape_numel(&val->shape);
        double e = scale_err(rc.val[v], rr.val[v], n);
        const char *op = val->kind == DEFT_VALUE_STATE ? "running_stats"
                                                       : deft_op_name(deft_graph_node(g, val->producer)->op);
        char where[96];
        snprintf(where, sizeof where, "%s/%s", label, val->name);
        if (!use_init) note_worst(op, e, where); /* model cases are checked, not tabled */
        CHECK(e <= tol * tol_scale, "%s: value %s (%s) rel err %.3g", label, val->name, op, e);
    }
    result_free(&rc);
    result_free(&rr);
    for (int v = 0; v < nv; v++) free(host[v]);
    free(host);
    CHECK(deft_alloc_live() == live0, "%s: %ld blocks leaked", label, deft_alloc_live() - live0);
}

/* ---- graph helpers ------------------------------------------------------- */

static int producer(struct deft_graph *g, int v) { return deft_graph_value(g, v)->producer; }

/* Backward node for the node producing value fv; returns its node index. */
static int bwd(struct deft_graph *g, enum deft_op op, const char *name, const int *in, int n_in, int fv) {
    int fn = producer(g, fv);
    struct deft_attr a = deft_graph_node(g, fn)->attr;
    return deft_graph_add_bwd_node(g, op, name, in, n_in, &a, fn);
}

static int grad_input(struct deft_graph *g, const char *name, int like) {
    return deft_input(g, name, deft_graph_value(g, like)->shape);
}

/* The op's input: a plain INPUT, or (blocked) the output of a 1x1 conv, which
 * the cpu backend keeps in its blocked layout. */
static int source(struct deft_graph *g, struct deft_shape s, bool blocked) {
    int x = deft_input(g, "x0", s);
    if (!blocked) return x;
    struct deft_conv_attr a = {.stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
    return deft_conv2d(g, "pre", x, (int)s.d[1], 1, 1, &a, false);
}

/* ---- cases --------------------------------------------------------------- */

struct conv_case {
    int n, c, h, w, k, r, s, sh, sw, pt, pl, pb, pr, dh, dw, groups, oph, opw;
    bool bias, transposed;
};

static void conv_case(const struct conv_case *cc, bool blocked) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    struct deft_conv_attr a = {.stride = {cc->sh, cc->sw}, .pad = {cc->pt, cc->pl, cc->pb, cc->pr},
                               .dilation = {cc->dh, cc->dw}, .groups = cc->groups,
                               .output_padding = {cc->oph, cc->opw}};
    int x = source(g, deft_shape4(cc->n, cc->c, cc->h, cc->w), blocked);
    int y = cc->transposed ? deft_conv_transpose2d(g, "conv", x, cc->k, cc->r, cc->s, &a, cc->bias)
                           : deft_conv2d(g, "conv", x, cc->k, cc->r, cc->s, &a, cc->bias);
    if (y >= 0) {
        int dy = grad_input(g, "dy", y), w = deft_graph_find_value(g, "conv.weight");
        enum deft_op bd = cc->transposed ? DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA : DEFT_OP_CONV2D_BWD_DATA;
        enum deft_op bw = cc->transposed ? DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS
                                         : DEFT_OP_CONV2D_BWD_WEIGHTS;
        bwd(g, bd, "conv_bwd_data", (int[]){dy, w}, 2, y);
        bwd(g, bw, "conv_bwd_weights", (int[]){dy, x}, 2, y);
    }
    char label[128];
    snprintf(label, sizeof label, "%s n%d c%d %dx%d k%d %dx%d s%d,%d p%d,%d,%d,%d d%d,%d g%d%s%s",
             cc->transposed ? "deconv" : "conv", cc->n, cc->c, cc->h, cc->w, cc->k, cc->r, cc->s,
             cc->sh, cc->sw, cc->pt, cc->pl, cc->pb, cc->pr, cc->dh, cc->dw, cc->groups,
             cc->bias ? " bias" : "", blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

static void bn_case(struct deft_shape s, enum deft_bn_mode mode, bool blocked) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = source(g, s, blocked);
    int y = deft_batchnorm(g, "bn", x, mode);
    if (y >= 0) {
        const struct deft_node *f = deft_graph_node(g, producer(g, y));
        int sm = f->out[1], sv = f->out[2];
        int dy = grad_input(g, "dy", y), gamma = deft_graph_find_value(g, "bn.weight");
        bwd(g, DEFT_OP_BATCHNORM_BWD, "bn_bwd", (int[]){dy, x, gamma, sm, sv}, 5, y);
    }
    char label[96];
    snprintf(label, sizeof label, "bn mode%d n%lld c%lld%s", (int)mode, (long long)s.d[0],
             (long long)s.d[1], blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

static void act_case(enum deft_act_kind k, struct deft_shape s, bool blocked) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = source(g, s, blocked);
    if (k == DEFT_ACT_LOG || k == DEFT_ACT_SQRT || k == DEFT_ACT_RECIPROCAL) /* their domain: e^x > 0 */
        x = deft_act(g, "to_positive", x, DEFT_ACT_EXP, 0);
    int y = deft_act(g, "act", x, k, 0.1f);
    if (y >= 0) {
        int dy = grad_input(g, "dy", y);
        int t = deft_act_bwd_uses_output(k) ? y : x;
        bwd(g, DEFT_OP_ACT_BWD, "act_bwd", (int[]){dy, t}, 2, y);
    }
    char label[96];
    snprintf(label, sizeof label, "act %s%s", deft_act_name(k), blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

static void pool_case(struct deft_pool_attr a, struct deft_shape s, bool blocked, bool with_ws) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = source(g, s, blocked);
    int y = deft_pool(g, "pool", x, &a);
    if (y >= 0) {
        const struct deft_node *f = deft_graph_node(g, producer(g, y));
        int dy = grad_input(g, "dy", y);
        if (a.kind == DEFT_POOL_MAX && with_ws)
            bwd(g, DEFT_OP_POOL_BWD, "pool_bwd", (int[]){dy, x, f->out[1]}, 3, y);
        else
            bwd(g, DEFT_OP_POOL_BWD, "pool_bwd", (int[]){dy, x}, 2, y);
    }
    char label[128];
    snprintf(label, sizeof label, "%s k%dx%d s%d p%d,%d,%d,%d%s%s%s%s",
             a.kind == DEFT_POOL_MAX ? "maxpool" : "avgpool", a.kernel[0], a.kernel[1], a.stride[0],
             a.pad[0], a.pad[1], a.pad[2], a.pad[3], a.ceil_mode ? " ceil" : "",
             a.count_include_pad ? " incl" : "", with_ws ? "" : " no-ws", blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

static void gap_case(struct deft_shape s, bool blocked) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = source(g, s, blocked);
    int y = deft_global_avgpool(g, "gap", x);
    int f = deft_flatten(g, "flat", y);
    int l = deft_linear(g, "fc", f, 10, true);
    if (l >= 0) {
        int dl = grad_input(g, "dl", l);
        int fw = deft_graph_find_value(g, "fc.weight");
        int nb = bwd(g, DEFT_OP_LINEAR_BWD_DATA, "fc_bwd_data", (int[]){dl, fw}, 2, l);
        bwd(g, DEFT_OP_LINEAR_BWD_WEIGHTS, "fc_bwd_weights", (int[]){dl, f}, 2, l);
        int df = deft_graph_node(g, nb)->out[0];
        int dy = deft_reshape(g, "flat_bwd", df, deft_graph_value(g, y)->shape);
        bwd(g, DEFT_OP_GLOBAL_AVGPOOL_BWD, "gap_bwd", (int[]){dy}, 1, y);
    }
    char label[96];
    snprintf(label, sizeof label, "gap+fc n%lld c%lld%s", (long long)s.d[0], (long long)s.d[1],
             blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

static void binary_case(enum deft_op op, struct deft_shape sa, struct deft_shape sb, bool blocked) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int a = source(g, sa, blocked);
    int b = deft_input(g, "b", sb);
    int y = op == DEFT_OP_ADD ? deft_add(g, "bin", a, b) : deft_mul(g, "bin", a, b);
    if (y >= 0) {
        /* The adjoint of broadcasting: sums down to each operand's shape. */
        struct deft_attr ra = {0};
        ra.shape = sb;
        deft_graph_add_node(g, DEFT_OP_REDUCE_TO, "reduce_b", (int[]){y}, 1, &ra);
        ra.shape = sa;
        deft_graph_add_node(g, DEFT_OP_REDUCE_TO, "reduce_a", (int[]){y}, 1, &ra);
    }
    char label[96];
    snprintf(label, sizeof label, "%s ndim%d/%d%s", deft_op_name(op), sa.ndim, sb.ndim,
             blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

static void residual_case(bool blocked) {
    /* conv -> bn -> relu -> conv -> add(skip) -> relu, the ResNet block shape */
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    struct deft_conv_attr a = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int x = source(g, deft_shape4(3, 24, 9, 9), blocked);
    int c1 = deft_conv2d(g, "c1", x, 24, 3, 3, &a, false);
    int b1 = deft_batchnorm(g, "b1", c1, DEFT_BN_TRAIN);
    int r1 = deft_act(g, "r1", b1, DEFT_ACT_RELU, 0);
    int c2 = deft_conv2d(g, "c2", r1, 24, 3, 3, &a, false);
    int s = deft_add(g, "sum", c2, x);
    int r2 = deft_act(g, "r2", s, DEFT_ACT_RELU, 0);
    int flat = deft_flatten(g, "flat", r2);
    struct deft_loss_attr la = {.kind = DEFT_LOSS_L2};
    int t = grad_input(g, "target", flat);
    int loss = deft_loss(g, "loss", flat, t, &la);
    if (loss >= 0) CHECK_OK(deft_autograd(g, loss, &(struct deft_autograd_opts){.input_grads = true}));
    char label[64];
    snprintf(label, sizeof label, "residual block%s", blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

static void misc_case(bool blocked) {
    /* Ops fed by blocked tensors that run on the reference fallback (upsample,
     * dropout, transpose, a slice at a channel offset inside a 16-block) or natively. */
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = source(g, deft_shape4(2, 20, 6, 7), blocked);
    int x2 = deft_input(g, "x1", deft_shape4(2, 20, 6, 7));
    int cat = deft_concat(g, "cat", (int[]){x, x2}, 2, 1);
    int sl = deft_slice(g, "slice", cat, 1, 3, 29);
    struct deft_pad_attr pa = {.before = {0, 0, 1, 2}, .after = {0, 0, 2, 1}};
    int pd = deft_pad(g, "pad", sl, &pa);
    int up = deft_upsample(g, "up", pd, 18, 20, DEFT_UPSAMPLE_NEAREST, false);
    int dr = deft_dropout(g, "drop", up, 0.3f, true, 7);
    int tr = deft_transpose(g, "transpose_nhwc", x, (int[]){0, 2, 3, 1}, 4);
    deft_transpose(g, "transpose_back", tr, (int[]){2, 0, 3, 1}, 4);
    (void)dr;
    int fl = deft_flatten(g, "flat", x);
    int lin = deft_linear(g, "fc", fl, 12, false);
    int sm = deft_softmax(g, "softmax", lin, 1);
    if (sm >= 0) {
        int dsm = grad_input(g, "dsm", sm);
        bwd(g, DEFT_OP_SOFTMAX_BWD, "softmax_bwd", (int[]){dsm, sm}, 2, sm);
    }
    char label[64];
    snprintf(label, sizeof label, "fallback ops%s", blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

/* Channel split and join as detection graphs use them (CSP route groups, PAN
 * concats, and their gradients): blocked inputs whose channel offsets fall on
 * 16-blocks (the native path), one that does not (fallback), and a plain input
 * mixed into a blocked concat. */
static void shape_case(bool blocked) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int a = source(g, deft_shape4(2, 32, 6, 7), blocked);
    int b = deft_input(g, "x1", deft_shape4(2, 16, 6, 7));
    struct deft_conv_attr ca = {.stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
    int c = deft_conv2d(g, "pre2", b, 48, 1, 1, &ca, false);
    int cat = deft_concat(g, "cat", (int[]){a, c, b}, 3, 1);        /* 96 channels */
    int half = deft_slice(g, "route_group", cat, 1, 48, 96);
    int mid = deft_slice(g, "slice_mid", cat, 1, 16, 80);
    int odd = deft_slice(g, "slice_odd", cat, 1, 5, 37);
    int rows = deft_slice(g, "slice_rows", half, 2, 1, 5);
    struct deft_pad_attr pc = {.before = {0, 48, 0, 0}, .after = {0, 16, 0, 0}};
    deft_pad(g, "pad_channels", half, &pc);
    struct deft_pad_attr ps = {.before = {0, 0, 1, 0}, .after = {0, 0, 2, 3}};
    deft_pad(g, "pad_spatial", mid, &ps);
    struct deft_pad_attr po = {.before = {0, 3, 0, 0}, .after = {0, 0, 0, 0}};
    deft_pad(g, "pad_odd", rows, &po);
    int odd_rows = deft_slice(g, "slice_odd_rows", odd, 2, 1, 5);
    deft_concat(g, "cat_rows", (int[]){odd, odd_rows}, 2, 2);
    char label[64];
    snprintf(label, sizeof label, "concat/slice/pad%s", blocked ? " blocked" : "");
    compare(g, label);
    deft_graph_free(g);
}

/* Fake quantization (quantization-aware training) in the producer's layout: a
 * training node moves its range state (first batch or moving average, as the
 * random initial state is negative or not), an inference node reads it, the
 * straight-through backward with a plain gradient against a blocked input, a
 * range observer, and the per-channel form on the reference fallback. Behind
 * the 1x1 conv the input differs from ref's by float rounding, and an element
 * on a rounding tie moves a whole step: the blocked case allows one step (1/127
 * of the range) where the plain one must agree exactly. */
static void fake_quant_case(bool blocked) {
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    struct deft_shape s = deft_shape4(3, 20, 5, 7), one = {.ndim = 1, .d = {1}};
    int x = source(g, s, blocked);
    int st = deft_graph_add_value(g, "fq.amax", DEFT_VALUE_STATE, DEFT_F32, &one);
    int st2 = deft_graph_add_value(g, "obs.amax", DEFT_VALUE_STATE, DEFT_F32, &one);
    struct deft_attr tr = {.fq = {.mode = DEFT_FQ_PER_TENSOR, .decay = 0.9f, .training = true}}, ev = tr, ch = {0};
    ev.fq.training = false;
    ch.fq = (struct deft_fq_attr){.mode = DEFT_FQ_PER_CHANNEL, .axis = 1};
    deft_graph_add_node(g, DEFT_OP_FAKE_QUANT, "fq_train", (int[]){x, st}, 2, &tr);
    int fe = deft_graph_add_node(g, DEFT_OP_FAKE_QUANT, "fq_eval", (int[]){x, st}, 2, &ev);
    deft_graph_add_node(g, DEFT_OP_OBSERVE, "observe", (int[]){x, st2}, 2, &tr);
    int fc = deft_graph_add_node(g, DEFT_OP_FAKE_QUANT, "fq_channel", (int[]){x}, 1, &ch);
    int dy = grad_input(g, "dy", x);
    if (fe >= 0 && fc >= 0) {
        deft_graph_add_bwd_node(g, DEFT_OP_FAKE_QUANT_BWD, "fq_bwd", (int[]){dy, x, st}, 3, &ev, fe);
        deft_graph_add_bwd_node(g, DEFT_OP_FAKE_QUANT_BWD, "fq_channel_bwd", (int[]){dy, x}, 2, &ch, fc);
    }
    char label[64];
    snprintf(label, sizeof label, "fake quant%s", blocked ? " blocked" : "");
    if (blocked) tol = 1.0 / 127 + 1e-4;
    compare(g, label);
    tol = TOL;
    deft_graph_free(g);
}

/* RoIAlign and crop-and-resize, forward and backward, with boxes of both
 * images (so the backward scatters into both), partly outside the map, tiny
 * and degenerate; 20 channels so a blocked input is reordered to plain. */
static void roi_case(struct deft_roi_attr a, bool blocked) {
    static const float boxes[] = {0, 2, 3, 30, 25,  1, -8, 4, 12, 40,  1, 10, 10, 10.5f, 10.2f,
                                  0, 20, 5, 20, 30, 0, 35, 1, 60, 18,  1, 0, 0, 44, 36,
                                  0, 15, 12, 9, 26};
    struct deft_graph *g;
    CHECK_OK(deft_graph_create(&g));
    int x = source(g, deft_shape4(2, 20, 9, 11), blocked);
    int bx = deft_input(g, "boxes", deft_shape_make(2, (int64_t[]){7, 5}));
    int y = deft_roi_align(g, "roi", x, bx, &a);
    if (y >= 0) {
        int dy = grad_input(g, "dy", y);
        struct deft_attr at = {.roi = a};
        deft_graph_add_bwd_node(g, DEFT_OP_ROI_ALIGN_BWD, "roi_bwd", (int[]){dy, bx}, 2, &at, producer(g, y));
    }
    char label[96];
    snprintf(label, sizeof label, "roi mode %d %dx%d sr %d aligned %d%s", (int)a.mode, a.out_h, a.out_w,
             a.sampling_ratio, (int)a.aligned, blocked ? " blocked" : "");
    roi_boxes = boxes;
    compare(g, label);
    roi_boxes = NULL;
    deft_graph_free(g);
}

/* A whole small network, forward + autograd backward (every value compared). */
static void model_case(const char *arch, int batch, int hw, bool training, enum deft_bn_mode bn,
                       double model_tol) {
    struct deft_graph *g;
    int input, logits;
    struct deft_model_opts o = {.arch = arch, .num_classes = 10, .batch = batch, .height = hw, .width = hw - 16,
                                .training = training, .bn_mode = bn, .dropout = -1};
    CHECK_OK(deft_model_build(&o, &g, &input, &logits));
    if (!g) return;
    if (training) {
        int t = deft_input(g, "target", deft_graph_value(g, logits)->shape);
        int loss = deft_loss(g, "loss", logits, t, &(struct deft_loss_attr){.kind = DEFT_LOSS_L2});
        if (loss >= 0) CHECK_OK(deft_autograd(g, loss, NULL));
    }
    char label[96];
    snprintf(label, sizeof label, "%s b%d %dx%d %s bn%d", arch, batch, hw, hw - 16,
             training ? "train" : "eval", (int)bn);
    /* Errors compound over ~60 layers of float accumulation. */
    tol = model_tol;
    use_init = true;
    scale_floor = 1.0;
    compare(g, label);
    scale_floor = 0;
    use_init = false;
    tol = TOL;
    deft_graph_free(g);
}

/* The backend under test must open (a GPU backend without a GPU skips). */
static void pick_backend(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "cpu", *math = argc > 2 ? argv[2] : "fp32";
    tested = deft_backend_find(name);
    if (!tested) {
        static char why[160];
        snprintf(why, sizeof why, "backend %s is not in this build (it has: %s)", name, deft_backend_names());
        test_skip(why);
    }
    bopts.amp = !strcmp(math, "bf16") ? DEFT_AMP_BF16 : !strcmp(math, "fp16") ? DEFT_AMP_FP16 : DEFT_AMP_OFF;
    /* 16-bit products: inputs keep 8 (bf16) or 11 (fp16) significant bits. */
    if (bopts.amp) tol_scale = bopts.amp == DEFT_AMP_BF16 ? 100.0 : 20.0;
    struct deft_graph *g;
    if (deft_graph_create(&g)) test_skip("out of memory");
    int x = deft_input(g, "x", deft_shape4(1, 1, 2, 2));
    (void)deft_act(g, "relu", x, DEFT_ACT_RELU, 0);
    size_t bytes[4] = {0}, scratch = 0;
    struct deft_program *prog = NULL;
    if (tested->compile(g, &bopts, &prog, bytes, &scratch)) {
        static char why[400];
        snprintf(why, sizeof why, "backend %s cannot start here: %s", name, deft_last_error());
        deft_graph_free(g);
        test_skip(why);
    }
    tested->free_program(prog);
    deft_graph_free(g);
    printf("op matrix: %s vs ref (%s products)\n", tested->name, math);
}

int main(int argc, char **argv) {
    deft_log_set_level(getenv("DEFT_TEST_DEBUG") ? DEFT_LOG_DEBUG : DEFT_LOG_WARN);
    pick_backend(argc, argv);
    static const struct conv_case convs[] = {
        /* n  c  h  w   k  r s sh sw pt pl pb pr dh dw g oph opw bias transposed */
        {3, 5, 11, 11, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, true, false},
        {1, 3, 17, 17, 16, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 0, 0, false, false},
        {3, 32, 9, 10, 48, 3, 3, 2, 2, 1, 0, 1, 1, 1, 1, 1, 0, 0, false, false},
        /* dense 3x3 stride 1 on 16-channel blocks: the Winograd kernels */
        {3, 32, 13, 11, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, true, false},
        {2, 64, 26, 26, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, false, false},
        {2, 20, 12, 11, 36, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 0, 0, true, false},
        {3, 12, 8, 9, 18, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0, 0, false, false},
        {3, 24, 13, 13, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 24, 0, 0, true, false},
        {1, 144, 7, 7, 144, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 144, 0, 0, false, false},
        {3, 20, 7, 6, 36, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, false, false},
        {2, 64, 7, 7, 32, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0, false, false},
        {2, 8, 5, 6, 6, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, true, true},
        /* UNet's 4x4/2 pad 1 and 2x2/2 pad 0 on 16-channel blocks: the four-phase forward */
        {2, 32, 5, 7, 24, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, true, true},
        {2, 16, 4, 6, 16, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0, false, true},
        {1, 8, 5, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, false, true},
        {3, 6, 4, 5, 10, 3, 3, 1, 1, 0, 0, 0, 0, 2, 2, 1, 0, 0, true, true},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        conv_case(&convs[i], false);
        if (convs[i].c > 3) conv_case(&convs[i], true);
    }
    for (int blocked = 0; blocked < 2; blocked++) {
        bn_case(deft_shape4(3, 20, 7, 5), DEFT_BN_TRAIN, blocked);
        bn_case(deft_shape4(1, 32, 6, 6), DEFT_BN_TRAIN, blocked);
        bn_case(deft_shape4(3, 20, 7, 5), DEFT_BN_EVAL, blocked);
        bn_case(deft_shape4(3, 17, 4, 5), DEFT_BN_FROZEN, blocked);
        for (int k = 0; k < DEFT_ACT_COUNT; k++) act_case(k, deft_shape4(3, 21, 5, 7), blocked);
        struct deft_shape ps = deft_shape4(3, 19, 11, 10);
        pool_case((struct deft_pool_attr){DEFT_POOL_MAX, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, false},
                  ps, blocked, true);
        pool_case((struct deft_pool_attr){DEFT_POOL_MAX, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, false},
                  ps, blocked, false);
        pool_case((struct deft_pool_attr){DEFT_POOL_MAX, {2, 2}, {2, 2}, {0, 0, 0, 0}, true, true},
                  ps, blocked, true);
        pool_case((struct deft_pool_attr){DEFT_POOL_AVG, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, false},
                  ps, blocked, true);
        pool_case((struct deft_pool_attr){DEFT_POOL_AVG, {3, 2}, {1, 2}, {1, 0, 1, 1}, false, false},
                  ps, blocked, true);
        pool_case((struct deft_pool_attr){DEFT_POOL_AVG, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, true},
                  ps, blocked, true);
        pool_case((struct deft_pool_attr){DEFT_POOL_AVG, {2, 2}, {2, 2}, {0, 0, 0, 0}, false, true},
                  ps, blocked, true);
        gap_case(deft_shape4(3, 20, 5, 6), blocked);
        gap_case(deft_shape4(1, 32, 7, 7), blocked);
        struct deft_shape s4 = deft_shape4(3, 20, 5, 6);
        binary_case(DEFT_OP_ADD, s4, s4, blocked);
        binary_case(DEFT_OP_MUL, s4, s4, blocked);
        binary_case(DEFT_OP_ADD, s4, deft_shape4(3, 20, 1, 1), blocked);
        binary_case(DEFT_OP_MUL, s4, deft_shape4(1, 20, 1, 1), blocked);
        binary_case(DEFT_OP_MUL, s4, deft_shape_make(1, (int64_t[]){6}), blocked);
        binary_case(DEFT_OP_MUL, deft_shape4(3, 20, 1, 1), s4, blocked);
        binary_case(DEFT_OP_ADD, s4, deft_shape_make(3, (int64_t[]){20, 5, 1}), blocked);
        residual_case(blocked);
        misc_case(blocked);
        shape_case(blocked);
        fake_quant_case(blocked);
        roi_case((struct deft_roi_attr){.mode = DEFT_ROI_ALIGN, .out_h = 7, .out_w = 7, .spatial_scale = 0.25f,
                                        .sampling_ratio = -1, .aligned = true}, blocked);
        roi_case((struct deft_roi_attr){.mode = DEFT_ROI_ALIGN, .out_h = 3, .out_w = 5, .spatial_scale = 0.25f,
                                        .sampling_ratio = 2, .aligned = false}, blocked);
        roi_case((struct deft_roi_attr){.mode = DEFT_ROI_CROP_RESIZE, .out_h = 14, .out_w = 14, .image_h = 36,
                                        .image_w = 44}, blocked);
    }
    model_case("resnet18", 2, 64, true, DEFT_BN_TRAIN, 1e-3);
    model_case("resnet18", 2, 64, true, DEFT_BN_FROZEN, 1e-3);
    model_case("resnet18", 2, 64, false, DEFT_BN_EVAL, 1e-3);
    model_case("mobilenet_v2", 2, 64, false, DEFT_BN_EVAL, 1e-3);
    model_case("mobilenet_v2", 1, 64, true, DEFT_BN_FROZEN, 1e-3);
    /* 52 train-mode BNs over few elements per channel (batch 4, 4x3 maps at
     * the end) amplify float rounding on the way back: the early-layer
     * gradients differ by up to ~1e-2 of their scale (the same layers pass
     * at 1e-6 in isolation above). A layout or indexing bug is O(1). */
    model_case("mobilenet_v2", 4, 112, true, DEFT_BN_TRAIN, 2e-2);
    printf("worst relative error per op (%s vs ref):\n", tested->name);
    for (int i = 0; i < n_worst; i++)
        printf("  %-32s %.3g  (%s)\n", worst[i].op, worst[i].err, worst[i].where);
    return test_summary();
}

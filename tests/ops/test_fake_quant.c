/* test_fake_quant.c - int8 fake quantization (quantization-aware training).
 *
 *  (a) The FAKE_QUANT op and its straight-through backward on the "ref" and
 *      "cpu" backends against PyTorch computed now (tests/ref/fake_quant_ref.py):
 *      per tensor = torch.fake_quantize_per_tensor_affine(x, amax/127, 0, -128,
 *      127), per channel = torch.fake_quantize_per_channel_affine(x,
 *      max|x_c|/127, 0, axis, -127, 127) for a conv weight (axis 0), a
 *      transposed-conv weight (axis 1) and a linear weight, with values past the
 *      clip range, exact zeros, an all-zero channel and values on rounding ties;
 *      forward and x.grad must match exactly (the same float operations).
 *  (b) Range tracking: a first training batch sets the range to max|x|, the
 *      next ones move it by TAO's moving average (decay 0.999, here recomputed
 *      in double); inference reads it; OBSERVE tracks without quantizing.
 *  (c) The straight-through estimator, gradcheck style: the backward equals the
 *      central finite difference of the clipped identity fake quantization
 *      stands in for (dy inside the clip range, 0 outside), coordinates within
 *      2h of a clip edge skipped; both cases must occur.
 *  (d) deft_qat_insert on a conv graph, then autograd: output, loss and the
 *      gradients of the input, the (fake-quantized) weight and the bias against
 *      PyTorch's conv2d on fake-quantized input and weight (rel 1e-4 / 1e-3 on
 *      both backends), and the bias gradient against finite differences (the
 *      loss is smooth in the bias).
 *  (e) The rewrite of a whole network (resnet18): fake quantization on the input
 *      and weights of every convolution and linear layer except an excluded
 *      one, observers on the other tensors the export names (not on a
 *      convolution output folded into its batch norm), Add inputs with
 *      `fusion`; deft_qat_strip gives the float graph back node for node with
 *      each range's state; the QAT graph survives the JSON round trip; a
 *      second insert is refused.
 */
#include <string.h>
#include "deft_test.h"
#include "deft/autograd.h"
#include "deft/models.h"
#include "deft/quant.h"

#define NB 2
static const char *const BACKENDS[NB] = {"ref", "cpu"};
static uint64_t rng_state = 0x853c49e6748fea9bull;

static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

static FILE *manifest;
static char dir[4096];

static void save(const char *c, const char *name, const float *d, const struct deft_shape *s) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s.%s.npy", dir, c, name);
    int64_t sh[DEFT_MAX_DIMS];
    for (int i = 0; i < s->ndim; i++) sh[i] = s->d[i];
    CHECK(test_npy_write(p, d, sh, s->ndim) == 0, "write %s", p);
}

static float *load_ref(const char *c, const char *name, size_t n) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s.ref.%s.npy", dir, c, name);
    int64_t sh[DEFT_MAX_DIMS];
    int nd;
    float *d = test_npy_read(p, sh, &nd);
    int64_t k = 1;
    for (int i = 0; d && i < nd; i++) k *= sh[i];
    CHECK(d && (size_t)k == n, "reference %s (%lld values, want %zu)", p, (long long)k, n);
    if (d && (size_t)k != n) {
        free(d);
        return NULL;
    }
    return d;
}

/* ---- (a)-(c): one fake-quant node and its backward ------------------------ */

struct opcase {
    char name[32];
    struct deft_fq_attr a;
    struct deft_shape s;
    float *x, *dy;
    float state0;                 /* per tensor: the range before the run */
    float *y[NB], *dx[NB], state[NB];
};
static struct opcase ops[16];
static int n_ops;

/* x -> FAKE_QUANT -> y; dy, x -> FAKE_QUANT_BWD -> dx, on one backend. */
static bool run_op(struct opcase *c, int b) {
    struct deft_graph *g;
    if (deft_graph_create(&g)) return false;
    bool chan = c->a.mode == DEFT_FQ_PER_CHANNEL;
    int x = deft_input(g, "x", c->s), dy = deft_input(g, "dy", c->s);
    struct deft_shape one = {.ndim = 1, .d = {1}};
    int st = chan ? -1 : deft_graph_add_value(g, "x.quant.amax", DEFT_VALUE_STATE, DEFT_F32, &one);
    struct deft_attr at = {.fq = c->a};
    int f = deft_graph_add_node(g, DEFT_OP_FAKE_QUANT, "x.quant", (int[]){x, st}, chan ? 1 : 2, &at);
    int bn = f < 0 ? -1 : deft_graph_add_bwd_node(g, DEFT_OP_FAKE_QUANT_BWD, "x.quant.bwd", (int[]){dy, x, st},
                                                  chan ? 2 : 3, &at, f);
    bool ok = deft_graph_status(g) == DEFT_OK;
    CHECK(ok, "%s: graph: %s", c->name, deft_last_error());
    int y = ok ? deft_graph_node(g, f)->out[0] : -1, dx = ok ? deft_graph_node(g, bn)->out[0] : -1;
    if (ok) {
        deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
        deft_graph_value_mut(g, dx)->flags |= DEFT_VF_OUTPUT;
    }
    struct deft_runtime *rt = NULL;
    size_t n = (size_t)deft_shape_numel(&c->s);
    ok = ok && deft_runtime_create(g, &(struct deft_runtime_opts){.backend = BACKENDS[b]}, &rt) == DEFT_OK;
    if (ok && !chan) deft_runtime_data(rt, st)[0] = c->state0;
    c->y[b] = malloc(n * sizeof(float));
    c->dx[b] = malloc(n * sizeof(float));
    ok = ok && deft_runtime_set_input(rt, x, c->x, n) == DEFT_OK && deft_runtime_set_input(rt, dy, c->dy, n) == DEFT_OK &&
         deft_runtime_run(rt) == DEFT_OK && deft_runtime_read(rt, y, c->y[b], n) == DEFT_OK &&
         deft_runtime_read(rt, dx, c->dx[b], n) == DEFT_OK;
    CHECK(ok, "%s on %s: %s", c->name, BACKENDS[b], deft_last_error());
    c->state[b] = ok && !chan ? deft_runtime_data(rt, st)[0] : 0;
    deft_runtime_free(rt);
    deft_graph_free(g);
    return ok;
}

static struct opcase *new_op(const char *name, struct deft_shape s, struct deft_fq_attr a, float spread) {
    struct opcase *c = &ops[n_ops++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->a = a;
    c->s = s;
    size_t n = (size_t)deft_shape_numel(&s);
    c->x = malloc(n * sizeof(float));
    c->dy = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        c->x[i] = spread * frand();
        c->dy[i] = frand();
    }
    return c;
}

static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* Ties and edges in a per-tensor input: x = (k + 1/2) * scale, exact zeros,
 * +-amax and beyond. */
static void special_values(struct opcase *c, float amax) {
    size_t n = (size_t)deft_shape_numel(&c->s);
    float s = amax / 127.0f;
    for (size_t i = 0; i + 8 < n; i += 9) {
        int k = (int)(frand() * 100);
        c->x[i] = ((float)k + 0.5f) * s;
        c->x[i + 1] = 0.0f;
        c->x[i + 2] = (i / 9) % 2 ? amax : -amax;
        c->x[i + 3] = -129.0f * s;
    }
}

static void op_cases(void) {
    struct deft_fq_attr pt_eval = {.mode = DEFT_FQ_PER_TENSOR, .decay = 0.999f, .training = false};
    struct deft_fq_attr pt_train = {.mode = DEFT_FQ_PER_TENSOR, .decay = 0.999f, .training = true};
    struct opcase *c = new_op("tensor_eval", deft_shape4(2, 3, 5, 7), pt_eval, 1.5f);
    c->state0 = 0.8f; /* a third of the values lie past the range: clipped, zero gradient */
    special_values(c, 0.8f);
    c = new_op("tensor_first", deft_shape4(3, 4, 6, 5), pt_train, 2.0f);
    c->state0 = 0; /* nothing seen yet: this batch sets the range */
    c = new_op("tensor_ema", deft_shape4(3, 4, 6, 5), pt_train, 3.0f);
    c->state0 = 1.25f;
    c = new_op("tensor_2d", deft_shape_make(2, (int64_t[]){4, 33}), pt_eval, 1.0f);
    c->state0 = 0.5f;
    special_values(c, 0.5f);
    c = new_op("chan_conv", deft_shape4(8, 3, 3, 3), (struct deft_fq_attr){.mode = DEFT_FQ_PER_CHANNEL, .axis = 0}, 0.3f);
    for (int i = 0; i < 27; i++) c->x[5 * 27 + i] = 0; /* an all-zero output channel */
    c = new_op("chan_deconv", deft_shape4(4, 6, 3, 3), (struct deft_fq_attr){.mode = DEFT_FQ_PER_CHANNEL, .axis = 1}, 0.3f);
    c = new_op("chan_linear", deft_shape_make(2, (int64_t[]){5, 70}), (struct deft_fq_attr){.mode = DEFT_FQ_PER_CHANNEL}, 2.0f);
    for (int i = 0; i < n_ops; i++) {
        c = &ops[i];
        for (int b = 0; b < NB; b++) run_op(c, b);
        size_t n = (size_t)deft_shape_numel(&c->s);
        if (!c->y[0] || !c->y[1]) continue;
        CHECK(test_max_abs_diff(c->y[0], c->y[1], n) == 0 && test_max_abs_diff(c->dx[0], c->dx[1], n) == 0 &&
              c->state[0] == c->state[1], "%s: cpu differs from ref", c->name);
        bool chan = c->a.mode == DEFT_FQ_PER_CHANNEL;
        if (!chan) { /* (b) the range the run used */
            float m = max_abs(c->x, n), want = c->state0;
            if (c->a.training) want = c->state0 > 0 ? (float)(0.999 * (double)c->state0 + 0.001 * (double)m) : m;
            CHECK(c->state[0] == want, "%s: range %.9g, want %.9g", c->name, c->state[0], want);
            float amax[1] = {c->state[0]};
            save(c->name, "amax", amax, &(struct deft_shape){.ndim = 1, .d = {1}});
        }
        save(c->name, "x", c->x, &c->s);
        save(c->name, "dy", c->dy, &c->s);
        fprintf(manifest, "%s %s axis=%d\n", c->name, chan ? "channel" : "tensor", c->a.axis);
    }
}

/* (c) the backward is the derivative of the clipped identity. */
static void ste_check(void) {
    struct opcase *c = &ops[0]; /* tensor_eval: clipped and unclipped values */
    if (!c->dx[0]) return;
    const float s = c->state0 / 127.0f, lo = -128.5f * s, hi = 127.5f * s, h = 1e-3f;
    int inside = 0, outside = 0, skipped = 0, bad = 0;
    size_t n = (size_t)deft_shape_numel(&c->s);
    for (size_t i = 0; i < n; i++) {
        double x = c->x[i];
        if (fabs(x - lo) < 2 * h || fabs(x - hi) < 2 * h) {
            skipped++;
            continue;
        }
        double cp = fmin(fmax(x + h, lo), hi), cm = fmin(fmax(x - h, lo), hi);
        double fd = c->dy[i] * (cp - cm) / (2.0 * h);
        if (fabs(fd - c->dx[0][i]) > 1e-3 * fabs(c->dy[i]) + 1e-6) bad++;
        if (x > lo && x < hi) inside++;
        else outside++;
    }
    printf("STE: %d inside the range, %d clipped, %d near an edge skipped\n", inside, outside, skipped);
    CHECK(bad == 0 && inside > 50 && outside > 20, "STE vs finite differences of the clipped identity: %d mismatches", bad);
}

/* ---- (d) a conv layer through deft_qat_insert and autograd ------------------ */

struct conv_run { float *y, *loss, *dx, *dw, *db, amax; double fd_db_err; };

static const int CN = 2, CC = 3, CH = 8, CW = 7, CK = 4;

static bool conv_graph(struct deft_graph **out, int *x, int *t, int *y, int *loss) {
    struct deft_graph *g;
    if (deft_graph_create(&g)) return false;
    *x = deft_input(g, "x", deft_shape4(CN, CC, CH, CW));
    struct deft_conv_attr a = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int c = deft_conv2d(g, "conv", *x, CK, 3, 3, &a, true);
    if (c >= 0) deft_graph_value_mut(g, c)->flags |= DEFT_VF_OUTPUT;
    struct deft_graph *q = NULL;
    bool ok = deft_graph_status(g) == DEFT_OK && deft_qat_insert(g, NULL, &q) == DEFT_OK;
    deft_graph_free(g);
    CHECK(ok, "qat_insert on a conv: %s", deft_last_error());
    if (!ok) return false;
    *x = deft_graph_find_value(q, "x");
    *y = deft_graph_find_value(q, "conv");
    *t = deft_input(q, "t", deft_graph_value(q, *y)->shape);
    *loss = deft_loss(q, "loss", *y, *t, &(struct deft_loss_attr){.kind = DEFT_LOSS_L2});
    ok = deft_graph_status(q) == DEFT_OK &&
         deft_autograd(q, *loss, &(struct deft_autograd_opts){.input_grads = true}) == DEFT_OK;
    CHECK(ok, "conv graph: %s", deft_last_error());
    *out = q;
    return ok;
}

static bool conv_run(int b, const float *xd, const float *wd, const float *bd, const float *td, struct conv_run *r) {
    struct deft_graph *g = NULL;
    int x, t, y, loss;
    if (!conv_graph(&g, &x, &t, &y, &loss)) {
        deft_graph_free(g);
        return false;
    }
    int w = deft_graph_find_value(g, "conv.weight"), bias = deft_graph_find_value(g, "conv.bias");
    int amax = deft_graph_find_value(g, "x.quant.amax"), lg = deft_graph_find_value(g, "loss_grad");
    int gx = deft_grad_of(g, x);
    CHECK(w >= 0 && bias >= 0 && amax >= 0 && lg >= 0 && gx >= 0, "conv graph values");
    size_t nx = (size_t)CN * CC * CH * CW, nw = (size_t)CK * CC * 9, ny = (size_t)CN * CK * CH * CW;
    struct deft_runtime *rt = NULL;
    bool ok = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = BACKENDS[b]}, &rt) == DEFT_OK;
    float one = 1.0f;
    if (ok) {
        memcpy(deft_runtime_data(rt, w), wd, nw * sizeof(float));
        memcpy(deft_runtime_data(rt, bias), bd, CK * sizeof(float));
        deft_runtime_data(rt, amax)[0] = 0; /* training: this batch sets the input's range */
        ok = deft_runtime_set_input(rt, x, xd, nx) == DEFT_OK && deft_runtime_set_input(rt, t, td, ny) == DEFT_OK &&
             deft_runtime_set_input(rt, lg, &one, 1) == DEFT_OK && deft_runtime_run(rt) == DEFT_OK;
    }
    r->y = malloc(ny * sizeof(float));
    r->loss = malloc(sizeof(float));
    r->dx = malloc(nx * sizeof(float));
    r->dw = malloc(nw * sizeof(float));
    r->db = malloc(CK * sizeof(float));
    ok = ok && deft_runtime_read(rt, y, r->y, ny) == DEFT_OK && deft_runtime_read(rt, loss, r->loss, 1) == DEFT_OK &&
         deft_runtime_read(rt, gx, r->dx, nx) == DEFT_OK;
    if (ok) {
        memcpy(r->dw, deft_runtime_grad(rt, w), nw * sizeof(float));
        memcpy(r->db, deft_runtime_grad(rt, bias), CK * sizeof(float));
        r->amax = deft_runtime_data(rt, amax)[0];
    }
    /* finite differences in the bias: forward nodes only; the range stays put
     * (its moving average of the same batch maximum is that maximum) */
    int n_fwd = 0;
    while (n_fwd < deft_graph_num_nodes(g) && deft_graph_node(g, n_fwd)->fwd < 0) n_fwd++;
    r->fd_db_err = 0;
    for (int k = 0; ok && k < CK; k++) {
        float *bp = deft_runtime_data(rt, bias), keep = bp[k], lp, lm;
        const float h = 1e-2f;
        bp[k] = keep + h;
        ok = deft_runtime_run_range(rt, 0, n_fwd) == DEFT_OK && deft_runtime_read(rt, loss, &lp, 1) == DEFT_OK;
        bp[k] = keep - h;
        ok = ok && deft_runtime_run_range(rt, 0, n_fwd) == DEFT_OK && deft_runtime_read(rt, loss, &lm, 1) == DEFT_OK;
        bp[k] = keep;
        double fd = ((double)lp - lm) / (2.0 * h), e = fabs(fd - r->db[k]) / fmax(1e-3, fabs(r->db[k]));
        if (e > r->fd_db_err) r->fd_db_err = e;
    }
    CHECK(ok, "conv case on %s: %s", BACKENDS[b], deft_last_error());
    deft_runtime_free(rt);
    deft_graph_free(g);
    return ok;
}

static struct conv_run conv_res[NB];
static float *cx, *cw, *cb, *ct;

static void conv_case(void) {
    size_t nx = (size_t)CN * CC * CH * CW, nw = (size_t)CK * CC * 9, ny = (size_t)CN * CK * CH * CW;
    cx = malloc(nx * sizeof(float));
    cw = malloc(nw * sizeof(float));
    cb = malloc(CK * sizeof(float));
    ct = malloc(ny * sizeof(float));
    for (size_t i = 0; i < nx; i++) cx[i] = 2.0f * frand();
    for (size_t i = 0; i < nw; i++) cw[i] = 0.3f * frand();
    for (int i = 0; i < CK; i++) cb[i] = 0.1f * frand();
    for (size_t i = 0; i < ny; i++) ct[i] = frand();
    for (int b = 0; b < NB; b++) {
        if (!conv_run(b, cx, cw, cb, ct, &conv_res[b])) return;
        CHECK(conv_res[b].amax == max_abs(cx, nx), "%s: the first batch sets the input range", BACKENDS[b]);
        CHECK(conv_res[b].fd_db_err < 1e-3, "%s: bias gradient vs finite differences: rel err %.3g", BACKENDS[b],
              conv_res[b].fd_db_err);
    }
    save("conv", "x", cx, &(struct deft_shape){.ndim = 4, .d = {CN, CC, CH, CW}});
    save("conv", "w", cw, &(struct deft_shape){.ndim = 4, .d = {CK, CC, 3, 3}});
    save("conv", "b", cb, &(struct deft_shape){.ndim = 1, .d = {CK}});
    save("conv", "t", ct, &(struct deft_shape){.ndim = 4, .d = {CN, CK, CH, CW}});
    float amax[1] = {conv_res[0].amax};
    save("conv", "amax", amax, &(struct deft_shape){.ndim = 1, .d = {1}});
    fprintf(manifest, "conv conv stride=1 pad=1\n");
}

static void compare_torch(void) {
    for (int i = 0; i < n_ops; i++) {
        struct opcase *c = &ops[i];
        size_t n = (size_t)deft_shape_numel(&c->s);
        float *y = load_ref(c->name, "y", n), *dx = load_ref(c->name, "dx", n);
        if (y && dx && c->y[0]) {
            double ey = test_max_abs_diff(c->y[0], y, n), ed = test_max_abs_diff(c->dx[0], dx, n);
            size_t zero = 0;
            for (size_t k = 0; k < n; k++) zero += dx[k] == 0 && c->dy[k] != 0;
            printf("%-12s vs torch: max |dy| %.3g, max |ddx| %.3g, %zu/%zu gradients clipped to 0\n", c->name, ey, ed,
                   zero, n);
            CHECK(ey == 0 && ed == 0, "%s: forward/backward differ from torch.fake_quantize (%.3g, %.3g)", c->name, ey, ed);
        }
        free(y);
        free(dx);
    }
    if (!conv_res[0].y || !conv_res[1].y) return;
    size_t nx = (size_t)CN * CC * CH * CW, nw = (size_t)CK * CC * 9, ny = (size_t)CN * CK * CH * CW;
    struct { const char *key; size_t n; double tol; } cmp[] = {
        {"y", ny, 1e-4}, {"loss", 1, 1e-4}, {"dx", nx, 1e-3}, {"dw", nw, 1e-3}, {"db", CK, 1e-3}};
    for (size_t k = 0; k < sizeof cmp / sizeof cmp[0]; k++) {
        float *ref = load_ref("conv", cmp[k].key, cmp[k].n);
        for (int b = 0; ref && b < NB; b++) {
            const struct conv_run *r = &conv_res[b];
            const float *got = k == 0 ? r->y : k == 1 ? r->loss : k == 2 ? r->dx : k == 3 ? r->dw : r->db;
            double e = test_max_rel_err(got, ref, cmp[k].n);
            printf("conv %-4s %s vs torch: rel err %.3g\n", cmp[k].key, BACKENDS[b], e);
            CHECK(e <= cmp[k].tol, "conv %s on %s vs torch: rel err %.3g", cmp[k].key, BACKENDS[b], e);
        }
        free(ref);
    }
}

/* ---- (e) the rewrite of a network ----------------------------------------------- */

static const struct deft_node *producer_of(const struct deft_graph *g, int v) {
    const struct deft_value *a = deft_graph_value(g, v);
    return a && a->kind == DEFT_VALUE_NODE ? deft_graph_node(g, a->producer) : NULL;
}

static bool has_node(const struct deft_graph *g, const char *name, enum deft_op op) {
    int n = deft_graph_find_node(g, name);
    return n >= 0 && deft_graph_node(g, n)->op == op;
}

static void rewrite_case(void) {
    struct deft_graph *g = NULL, *q = NULL, *f = NULL, *back = NULL;
    int input, logits;
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = "resnet18", .num_classes = 3, .batch = 2, .height = 32,
                                                       .width = 32, .training = true}, &g, &input, &logits));
    if (!g) return;
    const char *excl[] = {"f?", NULL};
    CHECK_OK(deft_qat_insert(g, &(struct deft_qat_opts){.exclude = excl}, &q));
    if (!q) goto done;
    int convs = 0, quantized = 0;
    for (int n = 0; n < deft_graph_num_nodes(q); n++) {
        const struct deft_node *nd = deft_graph_node(q, n);
        if (nd->op != DEFT_OP_CONV2D && nd->op != DEFT_OP_LINEAR) continue;
        convs++;
        const struct deft_node *px = producer_of(q, nd->in[0]), *pw = producer_of(q, nd->in[1]);
        bool xq = px && px->op == DEFT_OP_FAKE_QUANT && px->attr.fq.mode == DEFT_FQ_PER_TENSOR &&
                  deft_graph_value(q, px->in[1])->kind == DEFT_VALUE_STATE;
        bool wq = pw && pw->op == DEFT_OP_FAKE_QUANT && pw->attr.fq.mode == DEFT_FQ_PER_CHANNEL && pw->attr.fq.axis == 0 &&
                  deft_graph_value(q, pw->in[0])->kind == DEFT_VALUE_PARAM;
        if (!strcmp(nd->name, "fc")) {
            CHECK((!px || px->op != DEFT_OP_FAKE_QUANT) && deft_graph_value(q, nd->in[1])->kind == DEFT_VALUE_PARAM,
                  "the excluded layer fc stays float");
            CHECK(has_node(q, "flatten.observe", DEFT_OP_OBSERVE), "fc's float input is observed");
        } else {
            CHECK(xq && wq, "%s: input and weight fake-quantized", nd->name);
            quantized += xq && wq;
        }
    }
    CHECK(convs == 21 && quantized == 20, "resnet18: %d of %d layers quantized", quantized, convs);
    CHECK(has_node(q, "input_1.quant", DEFT_OP_FAKE_QUANT) && has_node(q, "layer1.0.relu1.quant", DEFT_OP_FAKE_QUANT) &&
          has_node(q, "layer1.0.bn1.observe", DEFT_OP_OBSERVE) && has_node(q, "layer1.0.add.observe", DEFT_OP_OBSERVE) &&
          has_node(q, "fc.observe", DEFT_OP_OBSERVE) && deft_graph_find_node(q, "conv1.observe") < 0 &&
          deft_graph_find_node(q, "layer1.0.relu1.observe") < 0,
          "quantized inputs, observed tensors, a folded conv output not observed");
    CHECK(deft_qat_enabled(q) && !deft_qat_enabled(g), "deft_qat_enabled");
    const char *meta = deft_graph_get_meta(q, "qat");
    CHECK(meta && strstr(meta, "\"fusion\": false") && strstr(meta, "\"f?\""), "qat metadata: %s", meta ? meta : "none");
    struct deft_graph *twice = NULL;
    CHECK(deft_qat_insert(q, NULL, &twice) != DEFT_OK && !twice, "a second insert is refused");
    /* JSON round trip */
    char *j1 = NULL, *j2 = NULL;
    CHECK_OK(deft_graph_to_json(q, &j1));
    if (j1) CHECK_OK(deft_graph_from_json(j1, strlen(j1), &back));
    if (back) CHECK_OK(deft_graph_to_json(back, &j2));
    CHECK(j1 && j2 && !strcmp(j1, j2), "QAT graph JSON round trip");
    deft_free(j1);
    deft_free(j2);
    /* strip: the float graph node for node, ranges found */
    struct deft_qat_range *r = NULL;
    CHECK_OK(deft_qat_strip(q, &f, &r));
    if (f) {
        bool same = deft_graph_num_nodes(f) == deft_graph_num_nodes(g);
        for (int n = 0; same && n < deft_graph_num_nodes(g); n++) {
            const struct deft_node *a = deft_graph_node(g, n), *b = deft_graph_node(f, n);
            same = a->op == b->op && !strcmp(a->name, b->name) && a->n_in == b->n_in;
            for (int i = 0; same && i < a->n_in; i++)
                same = (a->in[i] < 0) == (b->in[i] < 0) &&
                       (a->in[i] < 0 || !strcmp(deft_graph_value(g, a->in[i])->name, deft_graph_value(f, b->in[i])->name));
        }
        CHECK(same && !deft_qat_enabled(f) && !deft_graph_get_meta(f, "qat"), "strip gives the float graph back");
        int v1 = deft_graph_find_value(f, "layer1.0.relu1"), v2 = deft_graph_find_value(f, "layer1.0.bn1"),
            v3 = deft_graph_find_value(f, "conv1");
        CHECK(v1 >= 0 && r[v1].quantized && r[v1].state >= 0 &&
              !strcmp(deft_graph_value(q, r[v1].state)->name, "layer1.0.relu1.quant.amax"), "a quantized tensor's range");
        CHECK(v2 >= 0 && !r[v2].quantized && r[v2].state >= 0 &&
              !strcmp(deft_graph_value(q, r[v2].state)->name, "layer1.0.bn1.observe.amax"), "an observed tensor's range");
        CHECK(v3 >= 0 && r[v3].state < 0, "a folded conv output has no range");
    }
    deft_free(r);
    /* fusion: residual-add and pooling inputs too */
    struct deft_graph *fu = NULL;
    CHECK_OK(deft_qat_insert(g, &(struct deft_qat_opts){.fusion = true}, &fu));
    if (fu) {
        int n = deft_graph_find_node(fu, "layer1.0.add");
        const struct deft_node *add = n >= 0 ? deft_graph_node(fu, n) : NULL;
        const struct deft_node *pa = add ? producer_of(fu, add->in[0]) : NULL, *pb = add ? producer_of(fu, add->in[1]) : NULL;
        CHECK(pa && pb && pa->op == DEFT_OP_FAKE_QUANT && pb->op == DEFT_OP_FAKE_QUANT &&
              has_node(fu, "relu.quant", DEFT_OP_FAKE_QUANT), "fusion: add and pooling inputs fake-quantized");
    }
    deft_graph_free(fu);
done:
    deft_graph_free(back);
    deft_graph_free(f);
    deft_graph_free(q);
    deft_graph_free(g);
}

int main(void) {
    deft_log_set_level(DEFT_LOG_WARN);
    deft_set_threads(2);
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char mp[4200];
    snprintf(mp, sizeof mp, "%s/manifest.txt", dir);
    manifest = fopen(mp, "w");
    CHECK(manifest != NULL, "manifest");
    if (!manifest) return test_summary();
    op_cases();
    ste_check();
    conv_case();
    rewrite_case();
    fclose(manifest);
    if (!test_have_torch()) {
        test_skip_part("python3 with torch not available: the PyTorch comparison is not run");
        return test_summary();
    }
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/fake_quant_ref.py' '%s'", test_source_dir(), dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    compare_torch();
    for (int i = 0; i < n_ops; i++) {
        free(ops[i].x);
        free(ops[i].dy);
        for (int b = 0; b < NB; b++) {
            free(ops[i].y[b]);
            free(ops[i].dx[b]);
        }
    }
    for (int b = 0; b < NB; b++) {
        free(conv_res[b].y);
        free(conv_res[b].loss);
        free(conv_res[b].dx);
        free(conv_res[b].dw);
        free(conv_res[b].db);
    }
    free(cx);
    free(cw);
    free(cb);
    free(ct);
    return test_summary();
}

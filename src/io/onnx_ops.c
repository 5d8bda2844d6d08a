/* onnx_ops.c - one converter per ONNX op onto deft's IR (default domain,
 * opsets 7-20 as torch.onnx, tf2onnx and keras2onnx write them for CNNs).
 * A converter reads the current node's inputs and attributes through the
 * oi_* helpers, adds deft nodes and binds the node's first output. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "io/onnx_impl.h"

#define BAD(...) oi_fail(im, DEFT_ERR_UNSUPPORTED, __VA_ARGS__)

static int in_ndim(struct onnx_imp *im, int v) { return deft_graph_value(im->g, v)->shape.ndim; }
static const struct deft_shape *in_shape(struct onnx_imp *im, int v) {
    return &deft_graph_value(im->g, v)->shape;
}

/* pads for auto_pad SAME_UPPER / SAME_LOWER (kernel already dilated). */
static void same_pads(int64_t in, int64_t k, int64_t stride, bool upper, int64_t *begin,
                      int64_t *end) {
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + k - in;
    if (total < 0) total = 0;
    *begin = upper ? total / 2 : total - total / 2;
    *end = total - *begin;
}

/* strides, dilations, pads (top, left, bottom, right) of a conv or pool over x. */
static enum deft_status window_attrs(struct onnx_imp *im, int x, const int64_t kernel[2],
                                     int stride[2], int dil[2], int pad[4]) {
    int64_t st[4] = {1, 1}, dl[4] = {1, 1}, pd[8] = {0, 0, 0, 0};
    int ns = oi_attr_ints(im, "strides", st, 2), nd = oi_attr_ints(im, "dilations", dl, 2),
        np = oi_attr_ints(im, "pads", pd, 4);
    if (ns < 0 || nd < 0 || np < 0) return im->status;
    if ((ns && ns != 2) || (nd && nd != 2) || (np && np != 4))
        return BAD("only 2-D windows are supported");
    char buf[32];
    const char *ap = oi_attr_s(im, "auto_pad", "NOTSET", buf, sizeof buf);
    const struct deft_shape *s = in_shape(im, x);
    for (int i = 0; i < 2; i++) {
        if (st[i] < 1 || st[i] > 1024 || dl[i] < 1 || dl[i] > 1024)
            return BAD("stride or dilation out of range");
        stride[i] = (int)st[i];
        dil[i] = (int)dl[i];
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"))
            same_pads(s->d[2 + i], (kernel[i] - 1) * dl[i] + 1, st[i], ap[5] == 'U', &pd[i],
                      &pd[i + 2]);
        else if (!strcmp(ap, "VALID"))
            pd[i] = pd[i + 2] = 0;
        else if (strcmp(ap, "NOTSET"))
            return BAD("auto_pad '%s' is not supported", ap);
    }
    for (int i = 0; i < 4; i++) {
        if (pd[i] < 0 || pd[i] > 4096) return BAD("padding %lld is not supported", (long long)pd[i]);
        pad[i] = (int)pd[i];
    }
    return DEFT_OK;
}

/* ConvTranspose's pads from output_shape or auto_pad SAME_* (the ONNX
 * specification's total_padding split); the given pads otherwise. */
static enum deft_status transposed_pads(struct onnx_imp *im, int x, const int64_t k[2],
                                        struct deft_conv_attr *c) {
    int64_t os[4] = {0}, op[2] = {0, 0};
    int nos = oi_attr_ints(im, "output_shape", os, 4);
    if (nos < 0 || oi_attr_ints(im, "output_padding", op, 2) < 0) return im->status;
    if (op[0] < 0 || op[1] < 0 || op[0] > 64 || op[1] > 64) return BAD("output_padding out of range");
    char buf[32];
    const char *ap = oi_attr_s(im, "auto_pad", "NOTSET", buf, sizeof buf);
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (nos && nos != 2 && nos != 4) return BAD("output_shape must give H and W");
    const struct deft_shape *s = in_shape(im, x);
    for (int i = 0; i < 2; i++) {
        c->output_padding[i] = (int)op[i];
        if (!nos && !same) continue;
        int64_t want = nos ? os[nos - 2 + i] : s->d[2 + i] * c->stride[i];
        int64_t total = c->stride[i] * (s->d[2 + i] - 1) + op[i] + (k[i] - 1) * c->dilation[i] + 1 - want;
        if (total < -64 || total > 8192) return BAD("output_shape %lld is out of range", (long long)want);
        if (total < 0) { /* rows past the full result: zeros plus bias, at the end */
            c->output_padding[i] += (int)-total;
            total = 0;
        }
        bool upper = !strcmp(ap, "SAME_UPPER");
        c->pad[i] = (int)(upper ? total / 2 : total - total / 2);
        c->pad[i + 2] = (int)(total - c->pad[i]);
    }
    return DEFT_OK;
}

static enum deft_status conv(struct onnx_imp *im, bool transposed) {
    int x = oi_act(im, 0);
    int w = x < 0 ? -1 : oi_weight(im, 1, "weight", DEFT_VALUE_PARAM);
    int b = w >= 0 && oi_has_input(im, 2) ? oi_weight(im, 2, "bias", DEFT_VALUE_PARAM) : -1;
    if (x < 0 || w < 0 || (oi_has_input(im, 2) && b < 0)) return oi_bind(im, -1);
    const struct deft_shape *ws = in_shape(im, w);
    if (ws->ndim != 4 || in_ndim(im, x) != 4) return BAD("only 2-D convolutions are supported");
    int64_t groups = oi_attr_i(im, "group", 1), ks[4] = {ws->d[2], ws->d[3]};
    if (groups < 1 || groups > 65536)
        return BAD("group %lld", (long long)groups);
    int nk = oi_attr_ints(im, "kernel_shape", ks, 2);
    if (nk < 0) return im->status;
    if (nk && (nk != 2 || ks[0] != ws->d[2] || ks[1] != ws->d[3]))
        return BAD("attribute kernel_shape does not match the weight's %lldx%lld", (long long)ws->d[2],
                   (long long)ws->d[3]);
    struct deft_attr a = {.has_bias = b >= 0};
    a.conv.groups = (int)groups;
    if (window_attrs(im, x, (int64_t[2]){ws->d[2], ws->d[3]}, a.conv.stride, a.conv.dilation,
                     a.conv.pad))
        return im->status;
    if (transposed && transposed_pads(im, x, (int64_t[2]){ws->d[2], ws->d[3]}, &a.conv)) return im->status;
    int in[3] = {x, w, b};
    return oi_bind(im, oi_add_node(im, transposed ? DEFT_OP_CONV_TRANSPOSE2D : DEFT_OP_CONV2D,
                                   true, in, b >= 0 ? 3 : 2, &a));
}
static enum deft_status op_conv(struct onnx_imp *im) { return conv(im, false); }
static enum deft_status op_conv_transpose(struct onnx_imp *im) { return conv(im, true); }

static enum deft_status op_batchnorm(struct onnx_imp *im) {
    int in[5] = {oi_act(im, 0), -1, -1, -1, -1};
    static const char *const sfx[] = {"", "weight", "bias", "running_mean", "running_var"};
    for (int i = 1; i < 5 && in[i - 1] >= 0; i++)
        in[i] = oi_weight(im, i, sfx[i], i <= 2 ? DEFT_VALUE_PARAM : DEFT_VALUE_STATE);
    if (in[4] < 0) return oi_bind(im, -1);
    if (oi_attr_i(im, "training_mode", 0)) return BAD("training_mode=1 is not supported");
    if (!oi_attr_i(im, "spatial", 1)) return BAD("attribute spatial=0 is not supported");
    if (im->opset < 7 && !oi_attr_i(im, "is_test", 0))
        return BAD("attribute is_test=0 (training, before opset 7) is not supported");
    struct deft_attr a = {.bn = {.eps = oi_attr_f(im, "epsilon", 1e-5f),
                                 .momentum = 1.0f - oi_attr_f(im, "momentum", 0.9f),
                                 .mode = DEFT_BN_EVAL}};
    return oi_bind(im, oi_add_node(im, DEFT_OP_BATCHNORM, true, in, 5, &a));
}

static enum deft_status act(struct onnx_imp *im, enum deft_act_kind k, float alpha) {
    int x = oi_act(im, 0);
    struct deft_attr a = {.act = {k, alpha}};
    return oi_bind(im, x < 0 ? -1 : oi_add_node(im, DEFT_OP_ACT, false, &x, 1, &a));
}
static enum deft_status op_relu(struct onnx_imp *im) { return act(im, DEFT_ACT_RELU, 0); }
static enum deft_status op_sigmoid(struct onnx_imp *im) { return act(im, DEFT_ACT_SIGMOID, 0); }
static enum deft_status op_tanh(struct onnx_imp *im) { return act(im, DEFT_ACT_TANH, 0); }
static enum deft_status op_hardswish(struct onnx_imp *im) { return act(im, DEFT_ACT_HARDSWISH, 0); }
/* A [1] STATE constant holding v. */
static int scalar_const(struct onnx_imp *im, const char *suffix, float v) {
    struct deft_tensor *t;
    if (deft_tensor_create(DEFT_F32, &(struct deft_shape){.ndim = 1, .d = {1}}, &t))
        return oi_fail(im, DEFT_ERR_NOMEM, "out of memory"), -1;
    ((float *)t->data)[0] = v;
    return oi_new_weight(im, suffix, DEFT_VALUE_STATE, t);
}

/* clip(alpha*x + beta, 0, 1). PyTorch's (alpha 1/6, beta 1/2) is deft's
 * hardsigmoid; other slopes (Keras: 0.2, 0.5) feed it 6*alpha*x + 6*beta - 3,
 * the same function. */
static enum deft_status op_hardsigmoid(struct onnx_imp *im) {
    float al = oi_attr_f(im, "alpha", 0.2f), be = oi_attr_f(im, "beta", 0.5f);
    if (fabsf(al - 1.0f / 6.0f) <= 1e-6f && fabsf(be - 0.5f) <= 1e-6f) return act(im, DEFT_ACT_HARDSIGMOID, 0);
    if (!isfinite(al) || !isfinite(be)) return BAD("HardSigmoid alpha %g beta %g", (double)al, (double)be);
    int x = oi_act(im, 0), k = x < 0 ? -1 : scalar_const(im, "slope", 6.0f * al);
    int c = k < 0 ? -1 : scalar_const(im, "offset", 6.0f * be - 3.0f);
    struct deft_attr none = {0}, a = {.act = {DEFT_ACT_HARDSIGMOID, 0}};
    int y = c < 0 ? -1 : oi_add_node(im, DEFT_OP_MUL, false, (int[2]){x, k}, 2, &none);
    y = y < 0 ? -1 : oi_add_node(im, DEFT_OP_ADD, false, (int[2]){y, c}, 2, &none);
    return oi_bind(im, y < 0 ? -1 : oi_add_node(im, DEFT_OP_ACT, false, &y, 1, &a));
}
/* Mish (opset 18; YOLOv4's CSPDarknet). */
static enum deft_status op_mish(struct onnx_imp *im) { return act(im, DEFT_ACT_MISH, 0); }
/* Element-wise math. */
static enum deft_status op_exp(struct onnx_imp *im) { return act(im, DEFT_ACT_EXP, 0); }
static enum deft_status op_log(struct onnx_imp *im) { return act(im, DEFT_ACT_LOG, 0); }
static enum deft_status op_sqrt(struct onnx_imp *im) { return act(im, DEFT_ACT_SQRT, 0); }
static enum deft_status op_abs(struct onnx_imp *im) { return act(im, DEFT_ACT_ABS, 0); }
static enum deft_status op_neg(struct onnx_imp *im) { return act(im, DEFT_ACT_NEG, 0); }
static enum deft_status op_reciprocal(struct onnx_imp *im) { return act(im, DEFT_ACT_RECIPROCAL, 0); }
static enum deft_status op_softplus(struct onnx_imp *im) { return act(im, DEFT_ACT_SOFTPLUS, 0); }
static enum deft_status op_softsign(struct onnx_imp *im) { return act(im, DEFT_ACT_SOFTSIGN, 0); }
static enum deft_status op_erf(struct onnx_imp *im) { return act(im, DEFT_ACT_ERF, 0); }
static enum deft_status op_elu(struct onnx_imp *im) {
    float al = oi_attr_f(im, "alpha", 1.0f);
    if (!isfinite(al)) return BAD("Elu alpha %g", (double)al);
    return act(im, DEFT_ACT_ELU, al);
}

/* ReduceMean over H and W of [N, C, H, W] (squeeze-excitation, pooling
 * heads): deft's global average pool, flattened to [N, C] without keepdims. */
static enum deft_status op_reduce_mean(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    int r = in_ndim(im, x);
    int64_t ax[8] = {0}, n;
    if (im->opset < 18) {
        if ((n = oi_attr_ints(im, "axes", ax, 8)) < 0) return im->status;
    } else if (oi_has_input(im, 1)) {
        const struct deft_tensor *t = oi_const(im, 1);
        if (!t) return im->status;
        if (t->dtype != DEFT_I64 || (n = deft_tensor_numel(t)) > 8) return BAD("axes must be int64");
        memcpy(ax, t->data, (size_t)n * sizeof *ax);
    } else {
        n = 0;
    }
    if (oi_attr_i(im, "noop_with_empty_axes", 0)) return BAD("attribute noop_with_empty_axes=1 is not supported");
    for (int i = 0; i < n; i++) ax[i] += ax[i] < 0 ? r : 0;
    bool hw = r == 4 && n == 2 && ((ax[0] == 2 && ax[1] == 3) || (ax[0] == 3 && ax[1] == 2));
    if (!hw) return BAD("only the mean over axes [2, 3] of a 4-D input is supported");
    struct deft_attr a = {0};
    int y = oi_add_node(im, DEFT_OP_GLOBAL_AVGPOOL, false, &x, 1, &a);
    if (y < 0 || oi_attr_i(im, "keepdims", 1)) return oi_bind(im, y);
    struct deft_shape s = *in_shape(im, x);
    struct deft_attr ra = {.shape = {.ndim = 2, .d = {-1, s.d[1]}}};
    return oi_bind(im, oi_add_node(im, DEFT_OP_RESHAPE, false, &y, 1, &ra));
}

static enum deft_status op_leaky_relu(struct onnx_imp *im) {
    return act(im, DEFT_ACT_LEAKY_RELU, oi_attr_f(im, "alpha", 0.01f));
}

/* Clip to [0, 6] is relu6 and to [0, inf) relu; bounds are attributes before
 * opset 11 and constant inputs from then on. */
static enum deft_status op_clip(struct onnx_imp *im) {
    float lo = -INFINITY, hi = INFINITY;
    if (im->opset < 11) {
        lo = oi_attr_f(im, "min", lo);
        hi = oi_attr_f(im, "max", hi);
    } else {
        for (int i = 1; i <= 2; i++) {
            if (!oi_has_input(im, i)) continue;
            const struct deft_tensor *t = oi_const(im, i);
            if (!t) return im->status;
            if (deft_tensor_numel(t) != 1) return BAD("Clip bounds must be scalars");
            float v;
            if (deft_tensor_to_f32(t, &v)) return DEFT_ERR_NOMEM;
            if (i == 1) lo = v; else hi = v;
        }
    }
    if (isinf(lo) && lo < 0 && isinf(hi) && hi > 0) return oi_bind(im, oi_act(im, 0));
    if (lo == 0 && hi == 6) return act(im, DEFT_ACT_RELU6, 0);
    if (lo == 0 && isinf(hi) && hi > 0) return act(im, DEFT_ACT_RELU, 0);
    return BAD("Clip to [%g, %g] is not supported (only [0, 6] and [0, inf))", lo, hi);
}

static enum deft_status pool(struct onnx_imp *im, enum deft_pool_kind kind) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    if (in_ndim(im, x) != 4) return BAD("only 2-D pooling is supported");
    if (im->node->n_output > 1 && im->node->output[1] && *im->node->output[1])
        return BAD("the Indices output is not supported");
    int64_t k[4] = {0, 0};
    if (oi_attr_ints(im, "kernel_shape", k, 2) != 2 || k[0] < 1 || k[1] < 1 || k[0] > 4096 ||
        k[1] > 4096)
        return im->status ? im->status : BAD("kernel_shape must give 2 sizes");
    struct deft_attr a = {.pool = {.kind = kind, .kernel = {(int)k[0], (int)k[1]},
                                   .ceil_mode = oi_attr_i(im, "ceil_mode", 0) != 0,
                                   .count_include_pad = oi_attr_i(im, "count_include_pad", 0) != 0}};
    int dil[2];
    if (window_attrs(im, x, k, a.pool.stride, dil, a.pool.pad)) return im->status;
    if (dil[0] != 1 || dil[1] != 1) return BAD("dilated pooling is not supported");
    return oi_bind(im, oi_add_node(im, DEFT_OP_POOL, false, &x, 1, &a));
}
static enum deft_status op_maxpool(struct onnx_imp *im) { return pool(im, DEFT_POOL_MAX); }
static enum deft_status op_avgpool(struct onnx_imp *im) { return pool(im, DEFT_POOL_AVG); }

static enum deft_status op_global_avgpool(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x >= 0 && in_ndim(im, x) != 4) return BAD("only [N, C, H, W] inputs are supported");
    struct deft_attr a = {0};
    return oi_bind(im, x < 0 ? -1 : oi_add_node(im, DEFT_OP_GLOBAL_AVGPOOL, false, &x, 1, &a));
}

/* A constant the converter made from input i: -c (neg) or 1/c. */
static int derived_const(struct onnx_imp *im, int i, bool neg) {
    const struct deft_tensor *c = oi_const(im, i);
    if (!c) return -1;
    struct deft_tensor *t;
    struct deft_shape sh = c->shape.ndim ? c->shape : (struct deft_shape){.ndim = 1, .d = {1}};
    if (deft_tensor_create(DEFT_F32, &sh, &t)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory"), -1;
    float *f = t->data;
    if (deft_tensor_to_f32(c, f)) {
        deft_tensor_free(t);
        return oi_fail(im, DEFT_ERR_NOMEM, "out of memory"), -1;
    }
    for (int64_t k = 0; k < deft_tensor_numel(t); k++) f[k] = neg ? -f[k] : 1.0f / f[k];
    return oi_new_weight(im, neg ? "neg" : "reciprocal", DEFT_VALUE_STATE, t);
}

/* -x as x * -1 (exact). */
static int negate(struct onnx_imp *im, int x) {
    struct deft_tensor *t;
    if (x < 0) return -1;
    if (deft_tensor_create(DEFT_F32, &(struct deft_shape){.ndim = 1, .d = {1}}, &t))
        return oi_fail(im, DEFT_ERR_NOMEM, "out of memory"), -1;
    ((float *)t->data)[0] = -1.0f;
    int m = oi_new_weight(im, "minus_one", DEFT_VALUE_STATE, t);
    struct deft_attr at = {0};
    return m < 0 ? -1 : oi_add_node(im, DEFT_OP_MUL, false, (int[2]){x, m}, 2, &at);
}

/* Add, Mul (numpy broadcast); Sub as Add of -b; Div by a constant as Mul by 1/c. */
static enum deft_status binary(struct onnx_imp *im, enum deft_op op, int invert) {
    if (oi_attr(im, "axis"))
        return BAD("attribute axis (broadcast before opset 7) is not supported");
    if (!oi_has_input(im, 1)) return BAD("second input missing");
    if (oi_all_const(im)) return oi_fold_binary(im, "+-*/"[op == DEFT_OP_ADD ? (invert ? 1 : 0) : (invert ? 3 : 2)]);
    int a = oi_act(im, 0), b;
    if (a < 0) return oi_bind(im, -1);
    if (invert == 1)
        b = oi_input_is_const(im, 1) ? derived_const(im, 1, true) : negate(im, oi_act(im, 1));
    else if (invert == 2)
        b = derived_const(im, 1, false); /* deft has no division of two computed values */
    else
        b = oi_act(im, 1);
    if (b < 0) return oi_bind(im, -1);
    struct deft_attr at = {0};
    return oi_bind(im, oi_add_node(im, op, false, (int[2]){a, b}, 2, &at));
}
static enum deft_status op_add(struct onnx_imp *im) { return binary(im, DEFT_OP_ADD, 0); }
static enum deft_status op_mul(struct onnx_imp *im) { return binary(im, DEFT_OP_MUL, 0); }
static enum deft_status op_sub(struct onnx_imp *im) { return binary(im, DEFT_OP_ADD, 1); }
static enum deft_status op_div(struct onnx_imp *im) { return binary(im, DEFT_OP_MUL, 2); }

static enum deft_status op_concat(struct onnx_imp *im) {
    int n = (int)im->node->n_input;
    if (n < 1 || n > DEFT_MAX_INPUTS)
        return BAD("Concat of %d inputs (deft takes 1 to %d)", n, DEFT_MAX_INPUTS);
    if (oi_all_const(im)) return oi_fold_concat(im, oi_attr_i(im, "axis", 1));
    int in[DEFT_MAX_INPUTS];
    for (int i = 0; i < n; i++)
        if ((in[i] = oi_act(im, i)) < 0) return oi_bind(im, -1);
    int64_t axis = oi_attr_i(im, "axis", 1), r = in_ndim(im, in[0]);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return BAD("axis out of range");
    struct deft_attr a = {.concat = {(int)axis}};
    return oi_bind(im, oi_add_node(im, DEFT_OP_CONCAT, false, in, n, &a));
}

/* Reshape to s, keeping the batch free when the first dimension is the
 * input's batch, so the model follows batch-size changes. */
static enum deft_status reshape_to(struct onnx_imp *im, int x, struct deft_shape s, bool batch_free) {
    if (batch_free) s.d[0] = -1;
    struct deft_attr a = {.shape = s};
    return oi_bind(im, oi_add_node(im, DEFT_OP_RESHAPE, false, &x, 1, &a));
}

static enum deft_status op_flatten(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    const struct deft_shape *s = in_shape(im, x);
    int64_t axis = oi_attr_i(im, "axis", 1);
    if (axis < 0) axis += s->ndim;
    if (axis < 0 || axis > s->ndim) return BAD("axis out of range");
    struct deft_shape o = {.ndim = 2, .d = {1, 1}};
    for (int d = 0; d < s->ndim; d++) o.d[d < axis ? 0 : 1] *= s->d[d];
    return reshape_to(im, x, o, axis == 1);
}

static enum deft_status op_reshape(struct onnx_imp *im) {
    bool cst = oi_input_is_const(im, 0); /* folded: a constant with the new shape */
    const struct deft_tensor *xc = cst ? oi_const(im, 0) : NULL;
    int x = cst ? (xc ? -2 : -1) : oi_act(im, 0);
    const struct deft_tensor *t = x == -1 ? NULL : oi_const(im, 1);
    if (!t) return oi_bind(im, -1);
    const struct deft_shape *s = cst ? &xc->shape : in_shape(im, x);
    int64_t n = deft_tensor_numel(t);
    if (t->dtype != DEFT_I64 || t->shape.ndim != 1 || n < 1 || n > DEFT_MAX_DIMS)
        return BAD("the shape input must be 1 to %d int64 values", DEFT_MAX_DIMS);
    const int64_t *q = t->data;
    for (int d = 0; d < n && oi_attr_i(im, "allowzero", 0); d++)
        if (!q[d]) return BAD("attribute allowzero=1 with a 0 in the shape (an empty tensor) is not supported");
    struct deft_shape o = {.ndim = (int)n};
    int infer = -1;
    int64_t known = 1, total = deft_shape_numel(s);
    for (int d = 0; d < o.ndim; d++) {
        o.d[d] = q[d] == 0 && !oi_attr_i(im, "allowzero", 0) && d < s->ndim ? s->d[d] : q[d];
        if (o.d[d] == -1) {
            if (infer >= 0) return BAD("two -1 entries in the shape");
            infer = d;
        } else if (o.d[d] < 0 || o.d[d] > ((int64_t)1 << 40)) {
            return BAD("bad shape entry %lld", (long long)o.d[d]);
        } else if (o.d[d] && known > total / o.d[d]) {
            return BAD("the shape does not keep the element count");
        } else {
            known *= o.d[d];
        }
    }
    if (infer >= 0) o.d[infer] = known ? total / known : 0;
    if (deft_shape_numel(&o) != total) return BAD("the shape does not keep the element count");
    if (cst) {
        struct deft_tensor *c;
        if (deft_tensor_create(xc->dtype, &o, &c)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
        memcpy(c->data, xc->data, deft_tensor_nbytes(xc));
        return oi_bind_const(im, c);
    }
    bool batch_free = s->ndim >= 1 && o.ndim >= 1 && (q[0] == 0 || q[0] == -1 || q[0] == s->d[0]) &&
                      o.d[0] == s->d[0];
    return reshape_to(im, x, o, batch_free);
}

/* Gemm's beta * C: a scalar or a row is the linear layer's bias [M] (the
 * return value); any other shape that broadcasts to [N, M] a constant added
 * after it (*add). -1 with the error set when neither. */
static int gemm_bias(struct onnx_imp *im, int64_t m, float beta, int *add) {
    *add = -1;
    const struct deft_tensor *c = oi_const(im, 2);
    if (!c) return -1;
    int64_t cn = deft_tensor_numel(c);
    bool row = cn == m && (c->shape.ndim == 1 || (c->shape.ndim == 2 && c->shape.d[0] == 1));
    if (row && c->shape.ndim == 1 && beta == 1.0f) return oi_weight(im, 2, "bias", DEFT_VALUE_PARAM);
    if (c->shape.ndim > 2) return BAD("C of rank %d does not broadcast to [N, M]", c->shape.ndim), -1;
    bool vec = row || cn == 1;
    struct deft_shape sh = vec ? (struct deft_shape){.ndim = 1, .d = {m}} : c->shape;
    struct deft_tensor *t, *src;
    if (deft_tensor_create(DEFT_F32, &sh, &t)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory"), -1;
    if (deft_tensor_create(DEFT_F32, &c->shape, &src) || deft_tensor_to_f32(c, src->data)) {
        deft_tensor_free(t);
        deft_tensor_free(src);
        return oi_fail(im, DEFT_ERR_NOMEM, "out of memory"), -1;
    }
    float *f = t->data;
    const float *cv = src->data;
    for (int64_t i = 0; i < deft_tensor_numel(t); i++) f[i] = beta * cv[cn == 1 ? 0 : i];
    deft_tensor_free(src);
    if (vec) return oi_new_weight(im, "bias", DEFT_VALUE_PARAM, t);
    *add = oi_new_weight(im, "bias", DEFT_VALUE_STATE, t);
    return -1;
}

/* Gemm (A [N, K] times B, plus C) and MatMul with a constant 2-D B: linear
 * layers. Weights are stored as deft's [M, K]; a transposed or scaled weight
 * gets a converted copy. */
static enum deft_status linear(struct onnx_imp *im, bool gemm) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    int64_t trans_b = gemm ? oi_attr_i(im, "transB", 0) : 0;
    float alpha = gemm ? oi_attr_f(im, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? oi_attr_f(im, "beta", 1.0f) : 1.0f;
    struct deft_shape xs = *in_shape(im, x); /* MatMul of [..., K]: rows flattened, then restored */
    if (gemm && xs.ndim != 2) return BAD("Gemm needs a 2-D A");
    if (xs.ndim < 2) return BAD("a 1-D A is not supported");
    if (gemm && oi_attr_i(im, "transA", 0)) { /* A^T: a transpose first */
        struct deft_attr ta = {.shape = {.ndim = 2, .d = {1, 0}}};
        if ((x = oi_add_node(im, DEFT_OP_TRANSPOSE, false, &x, 1, &ta)) < 0) return oi_bind(im, -1);
    } else if (xs.ndim > 2) {
        struct deft_attr ra = {.shape = {.ndim = 2, .d = {-1, xs.d[xs.ndim - 1]}}};
        if ((x = oi_add_node(im, DEFT_OP_RESHAPE, false, &x, 1, &ra)) < 0) return oi_bind(im, -1);
    }
    if (!oi_input_is_const(im, 1)) return BAD("B must be a constant (deft has no product of two computed values)");
    const struct deft_tensor *bt = oi_const(im, 1);
    if (!bt) return im->status;
    if (bt->shape.ndim != 2) return BAD("B must be a 2-D constant (batched MatMul is not supported)");
    int64_t k = in_shape(im, x)->d[1];
    int64_t m = trans_b ? bt->shape.d[0] : bt->shape.d[1];
    if ((trans_b ? bt->shape.d[1] : bt->shape.d[0]) != k)
        return oi_fail(im, DEFT_ERR_SHAPE, "B does not match the input's %lld features", (long long)k);
    int w;
    if (trans_b && alpha == 1.0f) {
        w = oi_weight(im, 1, "weight", DEFT_VALUE_PARAM);
    } else {
        struct deft_tensor *t, *src;
        if (deft_tensor_create(DEFT_F32, &(struct deft_shape){.ndim = 2, .d = {m, k}}, &t))
            return DEFT_ERR_NOMEM;
        if (deft_tensor_create(DEFT_F32, &bt->shape, &src) || deft_tensor_to_f32(bt, src->data)) {
            deft_tensor_free(t);
            deft_tensor_free(src);
            return DEFT_ERR_NOMEM;
        }
        const float *b = src->data;
        float *o = t->data;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++) o[i * k + j] = alpha * (trans_b ? b[i * k + j] : b[j * m + i]);
        deft_tensor_free(src);
        w = oi_new_weight(im, "weight", DEFT_VALUE_PARAM, t);
    }
    int bias = -1, add = -1;
    if (w >= 0 && gemm && oi_has_input(im, 2) && (bias = gemm_bias(im, m, beta, &add)) < 0 && add < 0)
        return oi_bind(im, -1);
    if (w < 0) return oi_bind(im, -1);
    struct deft_attr a = {.has_bias = bias >= 0};
    int in[3] = {x, w, bias};
    int y = oi_add_node(im, DEFT_OP_LINEAR, true, in, bias >= 0 ? 3 : 2, &a);
    struct deft_attr none = {0};
    if (y >= 0 && add >= 0) y = oi_add_node(im, DEFT_OP_ADD, false, (int[2]){y, add}, 2, &none);
    if (y >= 0 && !gemm && xs.ndim > 2) {
        struct deft_attr ra = {.shape = xs};
        ra.shape.d[0] = -1;
        ra.shape.d[xs.ndim - 1] = m;
        y = oi_add_node(im, DEFT_OP_RESHAPE, false, &y, 1, &ra);
    }
    return oi_bind(im, y);
}
static enum deft_status op_gemm(struct onnx_imp *im) { return linear(im, true); }
static enum deft_status op_matmul(struct onnx_imp *im) { return linear(im, false); }

/* Identity, and Dropout at inference: the output is the input. The exporter
 * also shares equal constants through Identity nodes: those stay constants. */
static enum deft_status op_identity(struct onnx_imp *im) {
    if (!oi_input_is_const(im, 0)) return oi_bind(im, oi_act(im, 0));
    const struct deft_tensor *c = oi_const(im, 0);
    struct deft_tensor *t;
    if (!c) return im->status;
    if (deft_tensor_create(c->dtype, &c->shape, &t)) return DEFT_ERR_NOMEM;
    memcpy(t->data, c->data, deft_tensor_nbytes(c));
    return oi_bind_const(im, t);
}

/* Dropout is the identity at inference; training (is_test=0 before opset 7,
 * the training_mode input from opset 12) with a ratio above 0 is random. */
static enum deft_status op_dropout(struct onnx_imp *im) {
    bool training = im->opset < 7 ? !oi_attr_i(im, "is_test", 0) : false;
    float ratio = oi_attr_f(im, "ratio", 0.5f);
    if (im->opset >= 12 && oi_has_input(im, 2)) {
        const struct deft_tensor *t = oi_const(im, 2);
        float v;
        if (!t) return im->status;
        if (deft_tensor_numel(t) != 1 || deft_tensor_to_f32(t, &v)) return BAD("training_mode must be a scalar");
        training = v != 0;
    }
    if (training && im->opset >= 12) {
        ratio = 0.5f;
        if (oi_has_input(im, 1)) {
            const struct deft_tensor *r = oi_const(im, 1);
            if (!r) return im->status;
            if (deft_tensor_numel(r) != 1 || deft_tensor_to_f32(r, &ratio)) return BAD("ratio must be a scalar");
        }
    }
    if (training && ratio != 0)
        return BAD("training mode (random dropout, ratio %g) is not supported; export for inference",
                   (double)ratio);
    return op_identity(im);
}

/* Softmax over one axis (opset 13), or before opset 13 over the dimensions
 * from axis on flattened: a reshape around a softmax over the last axis. */
static enum deft_status op_softmax(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    int r = in_ndim(im, x);
    int64_t axis = oi_attr_i(im, "axis", im->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return BAD("axis out of range");
    struct deft_attr a = {.softmax = {(int)axis}};
    if (im->opset >= 13 || axis == r - 1)
        return oi_bind(im, oi_add_node(im, DEFT_OP_SOFTMAX, false, &x, 1, &a));
    struct deft_shape s = *in_shape(im, x), f = {.ndim = 2, .d = {1, 1}};
    for (int d = 0; d < r; d++) f.d[d < axis ? 0 : 1] *= s.d[d];
    if (axis >= 1) f.d[0] = s.d[0] = -1; /* the batch stays free */
    a.softmax.axis = 1;
    struct deft_attr ra = {.shape = f}, rb = {.shape = s};
    int y = oi_add_node(im, DEFT_OP_RESHAPE, false, &x, 1, &ra);
    y = y < 0 ? -1 : oi_add_node(im, DEFT_OP_SOFTMAX, false, &y, 1, &a);
    return oi_bind(im, y < 0 ? -1 : oi_add_node(im, DEFT_OP_RESHAPE, false, &y, 1, &rb));
}

static enum deft_status op_pad(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    char buf[32];
    if (strcmp(oi_attr_s(im, "mode", "constant", buf, sizeof buf), "constant"))
        return BAD("mode '%s' is not supported (only constant zeros)", buf);
    int r = in_ndim(im, x);
    int64_t p[2 * DEFT_MAX_DIMS] = {0};
    int np;
    float value = 0;
    if (im->opset < 2) return BAD("Pad-1 (attribute paddings) is not supported");
    if (im->opset < 11) {
        if ((np = oi_attr_ints(im, "pads", p, 2 * DEFT_MAX_DIMS)) < 0) return im->status;
        value = oi_attr_f(im, "value", 0);
    } else {
        const struct deft_tensor *t = oi_const(im, 1);
        if (!t) return im->status;
        if (t->dtype != DEFT_I64 || deft_tensor_numel(t) > 2 * DEFT_MAX_DIMS)
            return BAD("pads must be int64");
        np = (int)deft_tensor_numel(t);
        memcpy(p, t->data, (size_t)np * sizeof *p);
        if (oi_has_input(im, 2)) {
            const struct deft_tensor *v = oi_const(im, 2);
            if (!v) return im->status;
            if (deft_tensor_numel(v) != 1 || deft_tensor_to_f32(v, &value)) return BAD("bad value");
        }
        if (oi_has_input(im, 3)) return BAD("the axes input is not supported");
    }
    if (np != 2 * r) return BAD("pads has %d entries for a rank-%d input", np, r);
    if (value != 0) return BAD("padding with %g is not supported (only zeros)", value);
    struct deft_attr a = {0};
    for (int d = 0; d < r; d++) {
        if (p[d] < 0 || p[d + r] < 0 || p[d] > 4096 || p[d + r] > 4096)
            return BAD("negative or huge pads are not supported");
        a.pad.before[d] = p[d];
        a.pad.after[d] = p[d + r];
    }
    return oi_bind(im, oi_add_node(im, DEFT_OP_PAD, false, &x, 1, &a));
}

/* Slice with constant starts/ends/axes and unit steps (what deft's exporter
 * and torch.onnx write for crops and adaptive pooling bins). */
static enum deft_status op_slice(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    if (im->opset < 10) return BAD("Slice before opset 10 (attributes) is not supported");
    const struct deft_shape *s = in_shape(im, x);
    const struct deft_tensor *st = oi_const(im, 1), *en = st ? oi_const(im, 2) : NULL;
    if (!en) return im->status;
    int64_t n = deft_tensor_numel(st), ax[DEFT_MAX_DIMS];
    if (st->dtype != DEFT_I64 || en->dtype != DEFT_I64 || n != deft_tensor_numel(en) || n < 1 ||
        n > s->ndim)
        return BAD("starts/ends must be int64 of the same length");
    for (int64_t i = 0; i < n; i++) ax[i] = i;
    if (oi_has_input(im, 3)) {
        const struct deft_tensor *a = oi_const(im, 3);
        if (!a) return im->status;
        if (a->dtype != DEFT_I64 || deft_tensor_numel(a) != n) return BAD("axes must be int64, one per start");
        memcpy(ax, a->data, (size_t)n * sizeof *ax);
    }
    if (oi_has_input(im, 4)) {
        const struct deft_tensor *p = oi_const(im, 4);
        if (!p) return im->status;
        for (int64_t i = 0; i < deft_tensor_numel(p); i++)
            if (p->dtype != DEFT_I64 || ((const int64_t *)p->data)[i] != 1) return BAD("only steps of 1 are supported");
    }
    for (int64_t i = 0; i < n && x >= 0; i++) {
        int64_t d = ax[i] < 0 ? ax[i] + s->ndim : ax[i], dim;
        if (d < 0 || d >= s->ndim) return BAD("axis out of range");
        dim = in_shape(im, x)->d[d];
        int64_t b = ((const int64_t *)st->data)[i], e = ((const int64_t *)en->data)[i];
        if (b < 0) b += dim;
        if (e < 0) e += dim;
        b = b < 0 ? 0 : b > dim ? dim : b;
        e = e < 0 ? 0 : e > dim ? dim : e;
        if (e <= b) return BAD("empty slice");
        struct deft_attr a = {0};
        const struct deft_shape *cs = in_shape(im, x);
        for (int k = 0; k < cs->ndim; k++) {
            a.slice.start[k] = 0;
            a.slice.end[k] = -1; /* the whole dimension, whatever the batch */
        }
        a.slice.start[d] = b;
        a.slice.end[d] = e;
        x = oi_add_node(im, DEFT_OP_SLICE, false, &x, 1, &a);
    }
    return oi_bind(im, x);
}

static enum deft_status op_constant(struct onnx_imp *im) {
    const Onnx__AttributeProto *a;
    struct deft_tensor *t = NULL;
    enum deft_status s;
    if ((a = oi_attr(im, "value")) && a->t) {
        if ((s = deft_onnx_tensor(a->t, im->file, &t))) return s;
        return oi_bind_const(im, t);
    }
    bool f = (a = oi_attr(im, "value_float")) || (a = oi_attr(im, "value_floats"));
    if (!f && !(a = oi_attr(im, "value_int")) && !(a = oi_attr(im, "value_ints")))
        return BAD("only tensor, float and int values are supported");
    bool list = a->name[strlen(a->name) - 1] == 's'; /* value_floats, value_ints */
    int64_t n = f ? (list ? (int64_t)a->n_floats : 1) : (list ? (int64_t)a->n_ints : 1);
    if (n < 1 || n > (1 << 24)) return BAD("empty or huge constant");
    struct deft_shape sh = {.ndim = list ? 1 : 0, .d = {n}};
    if ((s = deft_tensor_create(f ? DEFT_F32 : DEFT_I64, &sh, &t))) return s;
    for (int64_t i = 0; i < n; i++) {
        if (f) ((float *)t->data)[i] = list ? a->floats[i] : a->f;
        else ((int64_t *)t->data)[i] = list ? a->ints[i] : a->i;
    }
    return oi_bind_const(im, t);
}

static const struct onnx_op onnx_ops[] = {
    {"Abs", op_abs}, {"Add", op_add}, {"AveragePool", op_avgpool}, {"BatchNormalization", op_batchnorm},
    {"Clip", op_clip}, {"Concat", op_concat}, {"Constant", op_constant}, {"Conv", op_conv},
    {"ConvTranspose", op_conv_transpose}, {"Div", op_div}, {"Dropout", op_dropout},
    {"Elu", op_elu}, {"Erf", op_erf}, {"Exp", op_exp}, {"Flatten", op_flatten}, {"Gemm", op_gemm}, {"GlobalAveragePool", op_global_avgpool},
    {"HardSigmoid", op_hardsigmoid}, {"HardSwish", op_hardswish}, {"Identity", op_identity}, {"LeakyRelu", op_leaky_relu}, {"Log", op_log},
    {"MatMul", op_matmul}, {"MaxPool", op_maxpool}, {"Mish", op_mish}, {"ReduceMean", op_reduce_mean}, {"Mul", op_mul}, {"Neg", op_neg}, {"Pad", op_pad},
    {"Reciprocal", op_reciprocal}, {"Relu", op_relu}, {"Reshape", op_reshape}, {"Resize", oi_resize}, {"Sigmoid", op_sigmoid}, {"Slice", op_slice},
    {"Softmax", op_softmax}, {"Softplus", op_softplus}, {"Softsign", op_softsign}, {"Sqrt", op_sqrt}, {"Sub", op_sub}, {"Tanh", op_tanh}, {"Upsample", oi_resize},
};

enum deft_status oi_convert_node(struct onnx_imp *im) {
    const Onnx__NodeProto *n = im->node;
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return BAD("ops of domain '%s' are not supported", n->domain);
    for (size_t i = 0; i < sizeof onnx_ops / sizeof onnx_ops[0]; i++)
        if (!strcmp(onnx_ops[i].name, n->op_type)) return onnx_ops[i].convert(im);
    for (const struct onnx_op *o = oi_shape_ops; o->name; o++)
        if (!strcmp(o->name, n->op_type)) return o->convert(im);
    for (const struct onnx_op *o = oi_qdq_ops; o->name; o++)
        if (!strcmp(o->name, n->op_type)) return o->convert(im);
    char list[1400];
    size_t l = 0;
    for (size_t i = 0; i < sizeof onnx_ops / sizeof onnx_ops[0] && l < sizeof list; i++)
        l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", onnx_ops[i].name);
    for (const struct onnx_op *o = oi_shape_ops; o->name && l < sizeof list; o++)
        l += (size_t)snprintf(list + l, sizeof list - l, ", %s", o->name);
    for (const struct onnx_op *o = oi_qdq_ops; o->name && l < sizeof list; o++)
        l += (size_t)snprintf(list + l, sizeof list - l, ", %s", o->name);
    return oi_fail(im, DEFT_ERR_UNSUPPORTED, "unsupported ONNX op '%s'; deft imports %s",
                   n->op_type, list);
}

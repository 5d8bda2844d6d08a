/* op_table.c - per-op facts: names, output counts, shape inference, FLOPs.
 * Dimension legend: n batch, c input channels, k output channels, h/w spatial,
 * r/s kernel height/width. Every table is checked against DEFT_OP_COUNT. */
#include <string.h>
#include "graph/graph_impl.h"

static const char *const op_names[] = {
    "conv2d", "conv_transpose2d", "batchnorm", "act", "pool", "global_avgpool", "add", "mul",
    "concat", "slice", "pad", "reshape", "upsample", "linear", "dropout", "softmax", "loss",
    "conv2d_bwd_data", "conv2d_bwd_weights", "conv_transpose2d_bwd_data",
    "conv_transpose2d_bwd_weights", "batchnorm_bwd", "act_bwd", "pool_bwd",
    "global_avgpool_bwd", "reduce_to", "upsample_bwd", "linear_bwd_data", "linear_bwd_weights",
    "dropout_bwd", "softmax_bwd", "loss_bwd", "fake_quant", "fake_quant_bwd", "observe",
    "roi_align", "roi_align_bwd", "transpose",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == DEFT_OP_COUNT, "op_names incomplete");

static const char *const act_names[] = {"relu", "relu6", "leaky_relu", "sigmoid", "tanh", "swish",
                                        "hardswish", "mish", "hardsigmoid", "exp", "log", "sqrt", "abs", "neg",
                                        "reciprocal", "softplus", "softsign", "elu", "erf"};
_Static_assert(sizeof act_names / sizeof act_names[0] == DEFT_ACT_COUNT, "act_names incomplete");

static const char *const loss_names[] = {"softmax_ce", "bce_logits", "focal", "l1", "smooth_l1",
                                         "l2"};
_Static_assert(sizeof loss_names / sizeof loss_names[0] == DEFT_LOSS_COUNT, "loss_names incomplete");

const char *deft_op_name(enum deft_op op) {
    return (unsigned)op < DEFT_OP_COUNT ? op_names[op] : "?";
}
int deft_op_from_name(const char *name) {
    for (int i = 0; i < DEFT_OP_COUNT; i++)
        if (strcmp(op_names[i], name) == 0) return i;
    return -1;
}
bool deft_op_is_forward(enum deft_op op) {
    return op < DEFT_OP_LOSS || op == DEFT_OP_FAKE_QUANT || op == DEFT_OP_OBSERVE ||
           op == DEFT_OP_ROI_ALIGN || op == DEFT_OP_TRANSPOSE;
}

const char *deft_act_name(enum deft_act_kind k) {
    return (unsigned)k < DEFT_ACT_COUNT ? act_names[k] : "?";
}
const char *deft_loss_name(enum deft_loss_kind k) {
    return (unsigned)k < DEFT_LOSS_COUNT ? loss_names[k] : "?";
}

bool deft_act_bwd_uses_output(enum deft_act_kind k) {
    /* Derivatives recoverable from the output let the pre-activation buffer be
     * freed (and match oneDNN's *_use_dst_for_bwd algorithms). */
    return k == DEFT_ACT_RELU || k == DEFT_ACT_RELU6 || k == DEFT_ACT_SIGMOID || k == DEFT_ACT_TANH ||
           k == DEFT_ACT_EXP || k == DEFT_ACT_SQRT;
}

int deft_op_num_outputs(enum deft_op op, const struct deft_attr *a, int n_in) {
    switch (op) {
    case DEFT_OP_BATCHNORM: return 3;
    case DEFT_OP_BATCHNORM_BWD: return 3;
    case DEFT_OP_POOL: return a->pool.kind == DEFT_POOL_MAX ? 2 : 1;
    case DEFT_OP_DROPOUT: return 2;
    case DEFT_OP_CONV2D_BWD_WEIGHTS:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS:
    case DEFT_OP_LINEAR_BWD_WEIGHTS: return a->has_bias ? 2 : 1;
    default: (void)n_in; return 1;
    }
}

/* ---- shape inference ---------------------------------------------------- */

#define FAIL(...) return deft_set_error(DEFT_ERR_SHAPE, __VA_ARGS__)

static const struct deft_shape *in_shape(struct deft_graph *g, const struct deft_node *nd, int i) {
    return &g->values[nd->in[i]].shape;
}
static void set_out(struct deft_graph *g, const struct deft_node *nd, int i, struct deft_shape s,
                    enum deft_dtype dt, unsigned flags) {
    struct deft_value *v = &g->values[nd->out[i]];
    v->shape = s;
    v->dtype = dt;
    v->flags |= flags;
}

static enum deft_status need_inputs(const struct deft_node *nd, int lo, int hi) {
    if (nd->n_in < lo || nd->n_in > hi)
        FAIL("expects %d..%d inputs, got %d", lo, hi, nd->n_in);
    for (int i = 0; i < nd->n_in; i++)
        if (nd->in[i] < 0 && i < lo) FAIL("input %d is missing", i);
    return DEFT_OK;
}

static enum deft_status need_rank(const struct deft_shape *s, int r, const char *what) {
    if (s->ndim != r) FAIL("%s must have rank %d, has rank %d", what, r, s->ndim);
    return DEFT_OK;
}

/* Shape of the forward node's input i, for backward nodes with fwd >= 0. */
static const struct deft_shape *fwd_in(struct deft_graph *g, const struct deft_node *nd, int i) {
    if (nd->fwd < 0) return NULL;
    const struct deft_node *f = &g->nodes[nd->fwd];
    if (i >= f->n_in || f->in[i] < 0) return NULL;
    return &g->values[f->in[i]].shape;
}

static enum deft_status check_conv_attr(const struct deft_conv_attr *a) {
    for (int i = 0; i < 2; i++) {
        if (a->stride[i] < 1 || a->dilation[i] < 1) FAIL("stride and dilation must be >= 1");
        if (a->output_padding[i] < 0) FAIL("output_padding must be >= 0");
    }
    for (int i = 0; i < 4; i++)
        if (a->pad[i] < 0) FAIL("padding must be >= 0");
    if (a->groups < 1) FAIL("groups must be >= 1");
    return DEFT_OK;
}

static int64_t conv_out(int64_t in, int pad0, int pad1, int64_t k, int dil, int stride) {
    int64_t eff = (int64_t)dil * (k - 1) + 1;
    int64_t span = in + pad0 + pad1 - eff;
    return span < 0 ? 0 : span / stride + 1;
}

static enum deft_status infer_conv(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 2, 3))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0), *w = in_shape(g, nd, 1);
    const struct deft_conv_attr *a = &nd->attr.conv;
    if ((s = need_rank(x, 4, "input")) || (s = need_rank(w, 4, "weight"))) return s;
    if ((s = check_conv_attr(a))) return s;
    nd->attr.has_bias = nd->n_in == 3 && nd->in[2] >= 0;
    int64_t n = x->d[0], c = x->d[1], h = x->d[2], wd = x->d[3], gr = a->groups;
    int64_t k, oh, ow;
    if (nd->op == DEFT_OP_CONV2D) {
        k = w->d[0];
        if (c % gr || k % gr) FAIL("channels %lld / %lld not divisible by groups %lld",
                                   (long long)c, (long long)k, (long long)gr);
        if (w->d[1] != c / gr)
            FAIL("weight expects %lld input channels per group, input has %lld",
                 (long long)w->d[1], (long long)(c / gr));
        oh = conv_out(h, a->pad[0], a->pad[2], w->d[2], a->dilation[0], a->stride[0]);
        ow = conv_out(wd, a->pad[1], a->pad[3], w->d[3], a->dilation[1], a->stride[1]);
    } else {
        if (w->d[0] != c) FAIL("transposed-conv weight expects %lld input channels, input has %lld",
                               (long long)w->d[0], (long long)c);
        if (c % gr) FAIL("channels not divisible by groups");
        k = w->d[1] * gr;
        for (int i = 0; i < 2; i++)
            if (a->output_padding[i] >= a->stride[i] && a->output_padding[i] >= a->dilation[i])
                FAIL("output_padding must be smaller than stride or dilation");
        oh = (h - 1) * a->stride[0] - a->pad[0] - a->pad[2] + (int64_t)a->dilation[0] * (w->d[2] - 1) +
             a->output_padding[0] + 1;
        ow = (wd - 1) * a->stride[1] - a->pad[1] - a->pad[3] + (int64_t)a->dilation[1] * (w->d[3] - 1) +
             a->output_padding[1] + 1;
    }
    if (oh <= 0 || ow <= 0) FAIL("output would be empty (%lldx%lld)", (long long)oh, (long long)ow);
    if (nd->attr.has_bias) {
        const struct deft_shape *b = in_shape(g, nd, 2);
        if (b->ndim != 1 || b->d[0] != k) FAIL("bias must have shape [%lld]", (long long)k);
    }
    set_out(g, nd, 0, deft_shape4(n, k, oh, ow), DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_bn(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 5, 5))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0);
    if (x->ndim < 2) FAIL("batchnorm input needs a channel dimension");
    int64_t c = x->d[1];
    for (int i = 1; i < 5; i++) {
        const struct deft_shape *p = in_shape(g, nd, i);
        if (p->ndim != 1 || p->d[0] != c) FAIL("batchnorm parameter %d must have shape [%lld]", i, (long long)c);
    }
    if (nd->attr.bn.eps <= 0) FAIL("batchnorm eps must be > 0");
    struct deft_shape cs = {.ndim = 1, .d = {c}};
    set_out(g, nd, 0, *x, DEFT_F32, 0);
    set_out(g, nd, 1, cs, DEFT_F32, 0);
    set_out(g, nd, 2, cs, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_pool(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 1, 1))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0);
    if ((s = need_rank(x, 4, "input"))) return s;
    const struct deft_pool_attr *a = &nd->attr.pool;
    int64_t o[2];
    for (int i = 0; i < 2; i++) {
        int64_t in = x->d[2 + i], p0 = a->pad[i], p1 = a->pad[2 + i];
        if (a->kernel[i] < 1 || a->stride[i] < 1) FAIL("pool kernel and stride must be >= 1");
        if (p0 < 0 || p1 < 0 || p0 * 2 > a->kernel[i] || p1 * 2 > a->kernel[i])
            FAIL("pool padding must be between 0 and half the kernel");
        int64_t span = in + p0 + p1 - a->kernel[i];
        if (span < 0) FAIL("pool window %d larger than padded input %lld", a->kernel[i], (long long)(in + p0 + p1));
        int64_t out = (a->ceil_mode ? (span + a->stride[i] - 1) / a->stride[i] : span / a->stride[i]) + 1;
        /* PyTorch: the last window must start inside the input or left padding */
        if (a->ceil_mode && (out - 1) * a->stride[i] >= in + p0) out--;
        o[i] = out;
    }
    struct deft_shape y = deft_shape4(x->d[0], x->d[1], o[0], o[1]);
    set_out(g, nd, 0, y, DEFT_F32, 0);
    if (nd->n_out > 1) set_out(g, nd, 1, y, DEFT_I32, DEFT_VF_OPAQUE);
    return DEFT_OK;
}

static enum deft_status infer_binary(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 2, 2))) return s;
    struct deft_shape y;
    if ((s = deft_shape_broadcast(in_shape(g, nd, 0), in_shape(g, nd, 1), &y))) return s;
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_concat(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 1, DEFT_MAX_INPUTS))) return s;
    struct deft_shape y = *in_shape(g, nd, 0);
    int ax = nd->attr.concat.axis;
    if (ax < 0 || ax >= y.ndim) FAIL("concat axis %d out of range for rank %d", ax, y.ndim);
    for (int i = 1; i < nd->n_in; i++) {
        const struct deft_shape *x = in_shape(g, nd, i);
        if (x->ndim != y.ndim) FAIL("concat inputs differ in rank");
        for (int d = 0; d < y.ndim; d++)
            if (d != ax && x->d[d] != y.d[d]) FAIL("concat input %d differs in dimension %d", i, d);
        y.d[ax] += x->d[ax];
    }
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_slice(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 1, 1))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0);
    struct deft_shape y = *x;
    for (int d = 0; d < x->ndim; d++) {
        int64_t b = nd->attr.slice.start[d], e = nd->attr.slice.end[d];
        if (e == -1) e = x->d[d]; /* -1: to the end of the dimension */
        if (b < 0 || e > x->d[d] || b >= e)
            FAIL("slice [%lld, %lld) out of range for dimension %d of size %lld", (long long)b,
                 (long long)e, d, (long long)x->d[d]);
        y.d[d] = e - b;
    }
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_pad(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 1, 1))) return s;
    struct deft_shape y = *in_shape(g, nd, 0);
    for (int d = 0; d < y.ndim; d++) {
        if (nd->attr.pad.before[d] < 0 || nd->attr.pad.after[d] < 0) FAIL("negative padding");
        y.d[d] += nd->attr.pad.before[d] + nd->attr.pad.after[d];
    }
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_reshape(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 1, 1))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0);
    struct deft_shape y = nd->attr.shape;
    if (y.ndim < 1 || y.ndim > DEFT_MAX_DIMS) FAIL("reshape target rank %d invalid", y.ndim);
    int64_t known = 1;
    int infer_at = -1;
    for (int d = 0; d < y.ndim; d++) {
        if (y.d[d] == -1 && infer_at < 0) infer_at = d;
        else if (y.d[d] <= 0) FAIL("reshape target dimension %d is %lld", d, (long long)y.d[d]);
        else known *= y.d[d];
    }
    int64_t n = deft_shape_numel(x);
    if (infer_at >= 0) {
        if (n % known) FAIL("cannot reshape %lld elements with -1", (long long)n);
        y.d[infer_at] = n / known;
    }
    if (deft_shape_numel(&y) != n) FAIL("reshape changes the element count");
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

/* attr.shape is the permutation: each of 0..rank-1 once. */
static enum deft_status infer_transpose(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 1, 1))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0), *p = &nd->attr.shape;
    if (p->ndim != x->ndim) FAIL("transpose permutation has %d entries for rank %d", p->ndim, x->ndim);
    bool seen[DEFT_MAX_DIMS] = {false};
    struct deft_shape y = {.ndim = x->ndim};
    for (int i = 0; i < p->ndim; i++) {
        if (p->d[i] < 0 || p->d[i] >= x->ndim || seen[p->d[i]]) FAIL("transpose: not a permutation");
        seen[p->d[i]] = true;
        y.d[i] = x->d[p->d[i]];
    }
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_linear(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 2, 3))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0), *w = in_shape(g, nd, 1);
    if ((s = need_rank(x, 2, "linear input")) || (s = need_rank(w, 2, "linear weight"))) return s;
    if (w->d[1] != x->d[1]) FAIL("linear weight expects %lld features, input has %lld",
                                 (long long)w->d[1], (long long)x->d[1]);
    nd->attr.has_bias = nd->n_in == 3 && nd->in[2] >= 0;
    if (nd->attr.has_bias) {
        const struct deft_shape *b = in_shape(g, nd, 2);
        if (b->ndim != 1 || b->d[0] != w->d[0]) FAIL("linear bias must have shape [%lld]", (long long)w->d[0]);
    }
    struct deft_shape y = {.ndim = 2, .d = {x->d[0], w->d[0]}};
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_loss(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 2, 2))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0), *t = in_shape(g, nd, 1);
    const struct deft_loss_attr *a = &nd->attr.loss;
    if ((unsigned)a->kind >= DEFT_LOSS_COUNT) FAIL("unknown loss kind");
    if (a->kind == DEFT_LOSS_SOFTMAX_CE) {
        if (x->ndim != 2) FAIL("softmax cross-entropy expects logits [N, C]");
        bool ids = t->ndim == 1 && t->d[0] == x->d[0];
        if (!ids && !deft_shape_equal(x, t))
            FAIL("softmax cross-entropy target must be [N] class ids or [N, C] probabilities");
        if (a->label_smoothing < 0 || a->label_smoothing > 1) FAIL("label_smoothing must be in [0, 1]");
    } else if (!deft_shape_equal(x, t)) {
        FAIL("%s loss: prediction and target shapes differ", deft_loss_name(a->kind));
    }
    struct deft_shape y = {.ndim = 1, .d = {1}};
    set_out(g, nd, 0, y, DEFT_F32, 0);
    return DEFT_OK;
}

/* FAKE_QUANT / OBSERVE: a per-tensor range is a [1] value; a per-channel axis
 * must exist. */
static enum deft_status infer_fake_quant(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    const struct deft_fq_attr *a = &nd->attr.fq;
    bool obs = nd->op == DEFT_OP_OBSERVE;
    bool chan = !obs && a->mode == DEFT_FQ_PER_CHANNEL;
    if (!obs && a->mode != DEFT_FQ_PER_TENSOR && !chan) FAIL("unknown fake-quant mode");
    if ((s = need_inputs(nd, chan ? 1 : 2, chan ? 1 : 2))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0);
    if (chan && (a->axis < 0 || a->axis >= x->ndim)) FAIL("fake-quant axis %d out of range for rank %d", a->axis, x->ndim);
    if (!chan) {
        if (deft_shape_numel(in_shape(g, nd, 1)) != 1) FAIL("the range (amax) must be one value");
        if (!(a->decay >= 0 && a->decay < 1)) FAIL("range decay must be in [0, 1)");
    }
    struct deft_shape one = {.ndim = 1, .d = {1}};
    set_out(g, nd, 0, obs ? one : *x, DEFT_F32, 0);
    return DEFT_OK;
}

/* ROI_ALIGN: x[N,C,H,W], boxes[R,5] -> [R,C,out_h,out_w]. */
static enum deft_status check_roi_attr(const struct deft_roi_attr *a) {
    if (a->mode != DEFT_ROI_ALIGN && a->mode != DEFT_ROI_CROP_RESIZE) FAIL("unknown roi_align mode");
    if (a->out_h < 1 || a->out_w < 1 || a->out_h > 4096 || a->out_w > 4096)
        FAIL("roi_align output size %dx%d must be in 1..4096", a->out_h, a->out_w);
    if (a->mode == DEFT_ROI_ALIGN && !(a->spatial_scale > 0 && a->spatial_scale < 1e6f))
        FAIL("roi_align spatial_scale must be > 0");
    if (a->mode == DEFT_ROI_ALIGN && a->sampling_ratio > 64) FAIL("roi_align sampling_ratio must be <= 64");
    if (a->mode == DEFT_ROI_CROP_RESIZE && (a->image_h < 2 || a->image_w < 2))
        FAIL("crop_and_resize needs the input image size (>= 2x2)");
    return DEFT_OK;
}

static enum deft_status infer_roi_align(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    if ((s = need_inputs(nd, 2, 2))) return s;
    const struct deft_shape *x = in_shape(g, nd, 0), *b = in_shape(g, nd, 1);
    if ((s = need_rank(x, 4, "roi_align feature map")) || (s = check_roi_attr(&nd->attr.roi))) return s;
    if (b->ndim != 2 || b->d[1] != 5) FAIL("roi_align boxes must be [R, 5] (batch index, x1, y1, x2, y2)");
    if (b->d[0] < 1) FAIL("roi_align needs at least one box");
    set_out(g, nd, 0, deft_shape4(b->d[0], x->d[1], nd->attr.roi.out_h, nd->attr.roi.out_w), DEFT_F32, 0);
    return DEFT_OK;
}

/* Output 0 of a backward op has the shape of the forward node's input i, or
 * attr.shape when built without a forward node. */
static enum deft_status infer_from_fwd(struct deft_graph *g, struct deft_node *nd, int out,
                                       int fwd_input) {
    const struct deft_shape *s = fwd_in(g, nd, fwd_input);
    struct deft_shape sh = s ? *s : nd->attr.shape;
    if (sh.ndim < 1) FAIL("backward op needs attr.shape or a forward node");
    set_out(g, nd, out, sh, DEFT_F32, 0);
    return DEFT_OK;
}

static enum deft_status infer_bwd(struct deft_graph *g, struct deft_node *nd) {
    enum deft_status s;
    switch (nd->op) {
    case DEFT_OP_CONV2D_BWD_DATA:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA:
        if ((s = need_inputs(nd, 2, 2))) return s;
        return infer_from_fwd(g, nd, 0, 0);
    case DEFT_OP_CONV2D_BWD_WEIGHTS:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS: {
        if ((s = need_inputs(nd, 2, 2))) return s;
        if ((s = infer_from_fwd(g, nd, 0, 1))) return s;
        if (nd->n_out > 1) {
            int64_t k = in_shape(g, nd, 0)->d[1];
            set_out(g, nd, 1, (struct deft_shape){.ndim = 1, .d = {k}}, DEFT_F32, 0);
        }
        return DEFT_OK;
    }
    case DEFT_OP_BATCHNORM_BWD: {
        if ((s = need_inputs(nd, 5, 5))) return s;
        const struct deft_shape *x = in_shape(g, nd, 1);
        struct deft_shape cs = {.ndim = 1, .d = {x->d[1]}};
        set_out(g, nd, 0, *x, DEFT_F32, 0);
        set_out(g, nd, 1, cs, DEFT_F32, 0);
        set_out(g, nd, 2, cs, DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_ACT_BWD:
    case DEFT_OP_DROPOUT_BWD:
    case DEFT_OP_SOFTMAX_BWD:
        if ((s = need_inputs(nd, 2, 2))) return s;
        set_out(g, nd, 0, *in_shape(g, nd, 0), DEFT_F32, 0);
        return DEFT_OK;
    case DEFT_OP_POOL_BWD:
        if ((s = need_inputs(nd, 2, 3))) return s;
        set_out(g, nd, 0, *in_shape(g, nd, 1), DEFT_F32, 0);
        return DEFT_OK;
    case DEFT_OP_GLOBAL_AVGPOOL_BWD:
    case DEFT_OP_UPSAMPLE_BWD:
        if ((s = need_inputs(nd, 1, 1))) return s;
        return infer_from_fwd(g, nd, 0, 0);
    case DEFT_OP_REDUCE_TO: {
        if ((s = need_inputs(nd, 1, 1))) return s;
        struct deft_shape b;
        if ((s = deft_shape_broadcast(in_shape(g, nd, 0), &nd->attr.shape, &b))) return s;
        if (!deft_shape_equal(&b, in_shape(g, nd, 0))) FAIL("reduce_to target does not broadcast to the input");
        set_out(g, nd, 0, nd->attr.shape, DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_LINEAR_BWD_DATA: {
        if ((s = need_inputs(nd, 2, 2))) return s;
        const struct deft_shape *dy = in_shape(g, nd, 0), *w = in_shape(g, nd, 1);
        set_out(g, nd, 0, (struct deft_shape){.ndim = 2, .d = {dy->d[0], w->d[1]}}, DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_LINEAR_BWD_WEIGHTS: {
        if ((s = need_inputs(nd, 2, 2))) return s;
        const struct deft_shape *dy = in_shape(g, nd, 0), *x = in_shape(g, nd, 1);
        set_out(g, nd, 0, (struct deft_shape){.ndim = 2, .d = {dy->d[1], x->d[1]}}, DEFT_F32, 0);
        if (nd->n_out > 1) set_out(g, nd, 1, (struct deft_shape){.ndim = 1, .d = {dy->d[1]}}, DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_LOSS_BWD:
        if ((s = need_inputs(nd, 3, 3))) return s;
        set_out(g, nd, 0, *in_shape(g, nd, 0), DEFT_F32, 0);
        return DEFT_OK;
    case DEFT_OP_FAKE_QUANT_BWD: {
        bool chan = nd->attr.fq.mode == DEFT_FQ_PER_CHANNEL;
        if ((s = need_inputs(nd, chan ? 2 : 3, chan ? 2 : 3))) return s;
        if (!deft_shape_equal(in_shape(g, nd, 0), in_shape(g, nd, 1))) FAIL("dy and x shapes differ");
        set_out(g, nd, 0, *in_shape(g, nd, 1), DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_ROI_ALIGN_BWD: {
        if ((s = need_inputs(nd, 2, 2)) || (s = check_roi_attr(&nd->attr.roi))) return s;
        const struct deft_shape *dy = in_shape(g, nd, 0), *b = in_shape(g, nd, 1);
        if (dy->ndim != 4 || b->ndim != 2 || b->d[1] != 5 || dy->d[0] != b->d[0] ||
            dy->d[2] != nd->attr.roi.out_h || dy->d[3] != nd->attr.roi.out_w)
            FAIL("roi_align_bwd: dy must be [R, C, out_h, out_w] for boxes [R, 5]");
        if ((s = infer_from_fwd(g, nd, 0, 0))) return s;
        const struct deft_shape *dx = &g->values[nd->out[0]].shape;
        if (dx->ndim != 4 || dx->d[1] != dy->d[1]) FAIL("roi_align_bwd: dx must be [N, C, H, W] with dy's C");
        return DEFT_OK;
    }
    default: FAIL("no shape rule");
    }
}

enum deft_status deft_op_infer(struct deft_graph *g, int n) {
    struct deft_node *nd = &g->nodes[n];
    enum deft_status s;
    switch (nd->op) {
    case DEFT_OP_CONV2D:
    case DEFT_OP_CONV_TRANSPOSE2D: return infer_conv(g, nd);
    case DEFT_OP_BATCHNORM: return infer_bn(g, nd);
    case DEFT_OP_ACT:
        if ((s = need_inputs(nd, 1, 1))) return s;
        if ((unsigned)nd->attr.act.kind >= DEFT_ACT_COUNT) FAIL("unknown activation");
        set_out(g, nd, 0, *in_shape(g, nd, 0), DEFT_F32, 0);
        return DEFT_OK;
    case DEFT_OP_POOL: return infer_pool(g, nd);
    case DEFT_OP_GLOBAL_AVGPOOL: {
        if ((s = need_inputs(nd, 1, 1))) return s;
        const struct deft_shape *x = in_shape(g, nd, 0);
        if ((s = need_rank(x, 4, "input"))) return s;
        set_out(g, nd, 0, deft_shape4(x->d[0], x->d[1], 1, 1), DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_ADD:
    case DEFT_OP_MUL: return infer_binary(g, nd);
    case DEFT_OP_CONCAT: return infer_concat(g, nd);
    case DEFT_OP_SLICE: return infer_slice(g, nd);
    case DEFT_OP_PAD: return infer_pad(g, nd);
    case DEFT_OP_RESHAPE: return infer_reshape(g, nd);
    case DEFT_OP_TRANSPOSE: return infer_transpose(g, nd);
    case DEFT_OP_UPSAMPLE: {
        if ((s = need_inputs(nd, 1, 1))) return s;
        const struct deft_shape *x = in_shape(g, nd, 0);
        if ((s = need_rank(x, 4, "input"))) return s;
        int64_t oh = nd->attr.shape.d[2], ow = nd->attr.shape.d[3];
        if (oh < 1 || ow < 1) FAIL("upsample output size must be >= 1");
        set_out(g, nd, 0, deft_shape4(x->d[0], x->d[1], oh, ow), DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_LINEAR: return infer_linear(g, nd);
    case DEFT_OP_DROPOUT:
        if ((s = need_inputs(nd, 1, 1))) return s;
        if (nd->attr.dropout.p < 0 || nd->attr.dropout.p >= 1) FAIL("dropout p must be in [0, 1)");
        set_out(g, nd, 0, *in_shape(g, nd, 0), DEFT_F32, 0);
        set_out(g, nd, 1, *in_shape(g, nd, 0), DEFT_F32, DEFT_VF_OPAQUE);
        return DEFT_OK;
    case DEFT_OP_SOFTMAX: {
        if ((s = need_inputs(nd, 1, 1))) return s;
        const struct deft_shape *x = in_shape(g, nd, 0);
        if (nd->attr.softmax.axis < 0 || nd->attr.softmax.axis >= x->ndim) FAIL("softmax axis out of range");
        set_out(g, nd, 0, *x, DEFT_F32, 0);
        return DEFT_OK;
    }
    case DEFT_OP_LOSS: return infer_loss(g, nd);
    case DEFT_OP_ROI_ALIGN: return infer_roi_align(g, nd);
    case DEFT_OP_FAKE_QUANT:
    case DEFT_OP_OBSERVE: return infer_fake_quant(g, nd);
    default: return infer_bwd(g, nd);
    }
}

/* ---- FLOPs -------------------------------------------------------------- */

int64_t deft_node_flops(const struct deft_graph *g, int n) {
    const struct deft_node *nd = &g->nodes[n];
    const struct deft_value *v = g->values;
    switch (nd->op) {
    case DEFT_OP_CONV2D: {
        const struct deft_shape *y = &v[nd->out[0]].shape, *w = &v[nd->in[1]].shape;
        return 2 * deft_shape_numel(y) * w->d[1] * w->d[2] * w->d[3];
    }
    case DEFT_OP_CONV_TRANSPOSE2D: {
        const struct deft_shape *x = &v[nd->in[0]].shape, *w = &v[nd->in[1]].shape;
        return 2 * deft_shape_numel(x) * w->d[1] * w->d[2] * w->d[3];
    }
    case DEFT_OP_LINEAR: {
        const struct deft_shape *y = &v[nd->out[0]].shape, *w = &v[nd->in[1]].shape;
        return 2 * deft_shape_numel(y) * w->d[1];
    }
    case DEFT_OP_CONV2D_BWD_DATA:
    case DEFT_OP_CONV2D_BWD_WEIGHTS:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS:
    case DEFT_OP_LINEAR_BWD_DATA:
    case DEFT_OP_LINEAR_BWD_WEIGHTS:
        return nd->fwd >= 0 ? deft_node_flops(g, nd->fwd) : 0;
    case DEFT_OP_ROI_ALIGN:
    case DEFT_OP_ROI_ALIGN_BWD: {
        /* 4 multiply-adds per bilinear sample; adaptive sampling counted as 2x2 */
        const struct deft_roi_attr *a = &nd->attr.roi;
        int64_t sr = a->mode == DEFT_ROI_ALIGN ? (a->sampling_ratio > 0 ? a->sampling_ratio : 2) : 1;
        int64_t y = deft_shape_numel(&v[nd->op == DEFT_OP_ROI_ALIGN ? nd->out[0] : nd->in[0]].shape);
        return 8 * y * sr * sr;
    }
    default: return 0;
    }
}

/* cuda_ops.c - the CUDA backend's element-wise, normalization, pooling,
 * shape, dropout, softmax and loss ops: argument packing for the kernels of
 * cuda_bodies.h. Geometry follows the reference kernels (src/backend/ref). */
#include <string.h>
#include "backend/cuda/cuda_impl.h"
#include "backend/shape_views.h"

#define OPFN(name)                                                                              \
    static enum deft_status name(struct deft_program *p, const struct deft_node *nd, int n,    \
                                 void *const *ptr, char *scratch, const struct deft_run_ctx *rc)

static const struct deft_shape *shape_of(const struct deft_program *p, int v) {
    return &deft_graph_value(p->g, v)->shape;
}
static int64_t numel(const struct deft_program *p, int v) { return deft_shape_numel(shape_of(p, v)); }
static void *in_ptr(const struct deft_node *nd, void *const *ptr, int i) {
    return i < nd->n_in && nd->in[i] >= 0 ? ptr[nd->in[i]] : NULL;
}
static void *out_ptr(const struct deft_node *nd, void *const *ptr, int i) {
    return i < nd->n_out && nd->out[i] >= 0 ? ptr[nd->out[i]] : NULL;
}

int64_t cuda_parts(int64_t per_channel) {
    int64_t parts = per_channel / 2048;
    return parts < 1 ? 1 : (parts > 128 ? 128 : parts);
}

_Static_assert(DEFT_ACT_HARDSIGMOID == 8 && DEFT_ACT_ERF == 18 && DEFT_ACT_COUNT == 19,
               "cuda_bodies.h numbers activations as enum deft_act_kind does");

OPFN(op_act) {
    union ck_args a = {.act = {.x = in_ptr(nd, ptr, 0), .y = out_ptr(nd, ptr, 0),
                               .kind = nd->attr.act.kind, .alpha = nd->attr.act.alpha}};
    return cuda_launch(p, CK_ACT_FWD, numel(p, nd->out[0]), &a);
}
OPFN(op_act_bwd) {
    const bool from_y = deft_act_bwd_uses_output(nd->attr.act.kind);
    if (from_y && (nd->attr.act.kind == DEFT_ACT_SWISH || nd->attr.act.kind == DEFT_ACT_HARDSWISH ||
                   nd->attr.act.kind == DEFT_ACT_MISH))
        return DEFT_ERR_UNSUPPORTED; /* the reference reports this graph error */
    union ck_args a = {.act = {.dy = in_ptr(nd, ptr, 0), .x = in_ptr(nd, ptr, 1), .y = out_ptr(nd, ptr, 0),
                               .kind = nd->attr.act.kind, .alpha = nd->attr.act.alpha, .from_y = from_y}};
    return cuda_launch(p, CK_ACT_BWD, numel(p, nd->out[0]), &a);
}

static enum deft_status binary(struct deft_program *p, const struct deft_node *nd, void *const *ptr, bool mul) {
    const struct deft_shape *ys = shape_of(p, nd->out[0]);
    union ck_args a = {.binary = {.a = in_ptr(nd, ptr, 0), .b = in_ptr(nd, ptr, 1), .y = out_ptr(nd, ptr, 0),
                                  .ndim = ys->ndim, .mul = mul}};
    for (int i = 0; i < ys->ndim; i++) a.binary.yd[i] = ys->d[i];
    view_bcast_strides(shape_of(p, nd->in[0]), ys, a.binary.sa);
    view_bcast_strides(shape_of(p, nd->in[1]), ys, a.binary.sb);
    return cuda_launch(p, CK_BINARY, deft_shape_numel(ys), &a);
}
OPFN(op_add) { return binary(p, nd, ptr, false); }
OPFN(op_mul) { return binary(p, nd, ptr, true); }

OPFN(op_reduce_to) {
    const struct deft_shape *xs = shape_of(p, nd->in[0]), *ys = shape_of(p, nd->out[0]);
    if (ys->ndim > xs->ndim) return DEFT_ERR_UNSUPPORTED;
    const int64_t xn = deft_shape_numel(xs), yn = deft_shape_numel(ys);
    if (xn == yn) {
        CUDA_TRY(p, p->api->copy(p->ctx, out_ptr(nd, ptr, 0), in_ptr(nd, ptr, 0), (size_t)xn * sizeof(float)),
                 "copy");
        return DEFT_OK;
    }
    union ck_args a = {.reduce = {.x = in_ptr(nd, ptr, 0), .y = out_ptr(nd, ptr, 0), .ndim = xs->ndim}};
    for (int i = 0; i < xs->ndim; i++) {
        int j = i - (xs->ndim - ys->ndim);
        a.reduce.xd[i] = xs->d[i];
        a.reduce.yd[i] = j < 0 ? 1 : ys->d[j];
    }
    return cuda_launch(p, CK_REDUCE_TO, yn, &a);
}

OPFN(op_concat) {
    const struct deft_shape *ys = shape_of(p, nd->out[0]);
    int axis = nd->attr.concat.axis;
    if (axis < 0) axis += ys->ndim;
    if (axis < 0 || axis >= ys->ndim) return DEFT_ERR_UNSUPPORTED;
    int64_t yst[DEFT_MAX_DIMS], off = 0;
    view_strides(ys, yst);
    for (int k = 0; k < nd->n_in; k++) {
        const struct deft_shape *xs = shape_of(p, nd->in[k]);
        union ck_args a = {.copy = {.x = ptr[nd->in[k]], .y = out_ptr(nd, ptr, 0), .ndim = ys->ndim,
                                    .obase = off * yst[axis]}};
        view_strides(xs, a.copy.is);
        for (int i = 0; i < ys->ndim; i++) {
            a.copy.rd[i] = a.copy.id[i] = xs->d[i];
            a.copy.os[i] = yst[i];
        }
        enum deft_status s = cuda_launch(p, CK_COPY, deft_shape_numel(xs), &a);
        if (s) return s;
        off += xs->d[axis];
    }
    return DEFT_OK;
}
/* Slice and pad: every output element y[c] reads x[c + istart] (zero outside x). */
static enum deft_status window_copy(struct deft_program *p, const struct deft_node *nd, void *const *ptr,
                                    bool pad) {
    const struct deft_shape *xs = shape_of(p, nd->in[0]), *ys = shape_of(p, nd->out[0]);
    if (xs->ndim != ys->ndim) return DEFT_ERR_UNSUPPORTED;
    union ck_args a = {.copy = {.x = in_ptr(nd, ptr, 0), .y = out_ptr(nd, ptr, 0), .ndim = ys->ndim}};
    view_strides(xs, a.copy.is);
    view_strides(ys, a.copy.os);
    for (int i = 0; i < ys->ndim; i++) {
        a.copy.istart[i] = pad ? -nd->attr.pad.before[i] : view_slice_start(xs, ys, nd->attr.slice.start[i], i);
        a.copy.rd[i] = ys->d[i];
        a.copy.id[i] = xs->d[i];
    }
    return cuda_launch(p, CK_COPY, deft_shape_numel(ys), &a);
}
OPFN(op_slice) { return window_copy(p, nd, ptr, false); }
OPFN(op_pad) { return window_copy(p, nd, ptr, true); }
OPFN(op_reshape) {
    CUDA_TRY(p, p->api->copy(p->ctx, out_ptr(nd, ptr, 0), in_ptr(nd, ptr, 0),
                             (size_t)numel(p, nd->out[0]) * sizeof(float)), "copy");
    return DEFT_OK;
}

static bool pool_args(const struct deft_program *p, const struct deft_node *nd, int xv, int yv,
                      struct ck_pool *a) {
    const struct deft_shape *xs = shape_of(p, xv), *ys = shape_of(p, yv);
    if (xs->ndim != 4 || ys->ndim != 4) return false;
    const struct deft_pool_attr *at = &nd->attr.pool;
    *a = (struct ck_pool){
        .planes = xs->d[0] * xs->d[1], .h = xs->d[2], .w = xs->d[3], .p = ys->d[2], .q = ys->d[3],
        .kh = at->kernel[0], .kw = at->kernel[1],
        .sh = at->stride[0] > 0 ? at->stride[0] : 1, .sw = at->stride[1] > 0 ? at->stride[1] : 1,
        .pt = at->pad[0], .pl = at->pad[1], .pb = at->pad[2], .pr = at->pad[3],
        .max = at->kind == DEFT_POOL_MAX, .include_pad = at->count_include_pad};
    return true;
}
OPFN(op_pool) {
    union ck_args a;
    if (!pool_args(p, nd, nd->in[0], nd->out[0], &a.pool)) return DEFT_ERR_UNSUPPORTED;
    a.pool.x = in_ptr(nd, ptr, 0);
    a.pool.y = out_ptr(nd, ptr, 0);
    a.pool.ws_out = out_ptr(nd, ptr, 1);
    return cuda_launch(p, CK_POOL_FWD, numel(p, nd->out[0]), &a);
}
/* POOL_BWD: in dy, x, [workspace]; out dx. Max pooling needs the workspace here. */
OPFN(op_pool_bwd) {
    union ck_args a;
    if (!pool_args(p, nd, nd->out[0], nd->in[0], &a.pool)) return DEFT_ERR_UNSUPPORTED;
    a.pool.dy = in_ptr(nd, ptr, 0);
    a.pool.ws_in = in_ptr(nd, ptr, 2);
    a.pool.y = out_ptr(nd, ptr, 0);
    if (a.pool.max && !a.pool.ws_in) return DEFT_ERR_UNSUPPORTED;
    return cuda_launch(p, CK_POOL_BWD, numel(p, nd->out[0]), &a);
}
OPFN(op_gap) {
    const struct deft_shape *xs = shape_of(p, nd->in[0]);
    if (xs->ndim < 2) return DEFT_ERR_UNSUPPORTED;
    const int64_t planes = xs->d[0] * xs->d[1], plane = planes ? deft_shape_numel(xs) / planes : 0;
    union ck_args a = {.gap = {.x = in_ptr(nd, ptr, 0), .y = out_ptr(nd, ptr, 0), .planes = planes, .plane = plane}};
    return cuda_launch(p, CK_GAP_FWD, planes, &a);
}
OPFN(op_gap_bwd) {
    const struct deft_shape *xs = shape_of(p, nd->out[0]);
    if (xs->ndim < 2) return DEFT_ERR_UNSUPPORTED;
    const int64_t planes = xs->d[0] * xs->d[1], plane = planes ? deft_shape_numel(xs) / planes : 0;
    if (plane == 0) return DEFT_OK;
    union ck_args a = {.gap = {.x = in_ptr(nd, ptr, 0), .y = out_ptr(nd, ptr, 0), .planes = planes, .plane = plane}};
    return cuda_launch(p, CK_GAP_BWD, planes * plane, &a);
}

/* BN scratch: part, part2 (c*parts doubles each), coef (3c floats). */
static size_t bn_scratch(int64_t c, int64_t per_channel) {
    return (size_t)(2 * c * cuda_parts(per_channel)) * sizeof(double) + (size_t)(3 * c) * sizeof(float);
}
OPFN(op_batchnorm) {
    int64_t nb, c, plane;
    view_channels(shape_of(p, nd->in[0]), &nb, &c, &plane);
    const int64_t parts = cuda_parts(nb * plane);
    double *part = (double *)scratch, *part2 = part + c * parts;
    const bool train = nd->attr.bn.mode == DEFT_BN_TRAIN;
    float *rmean = in_ptr(nd, ptr, 3), *rvar = in_ptr(nd, ptr, 4);
    if (!train && (!rmean || !rvar)) return DEFT_ERR_UNSUPPORTED;
    union ck_args a = {.bn = {
        .part = part, .part2 = part2, .x = in_ptr(nd, ptr, 0), .gamma = in_ptr(nd, ptr, 1),
        .beta = in_ptr(nd, ptr, 2), .rmean = rmean, .rvar = rvar, .smean = out_ptr(nd, ptr, 1),
        .svar = out_ptr(nd, ptr, 2), .y = out_ptr(nd, ptr, 0), .coef = (float *)(part2 + c * parts),
        .outer = nb, .ch = c, .inner = plane, .parts = parts, .eps = nd->attr.bn.eps,
        .momentum = nd->attr.bn.momentum, .train = train, .has_running = rmean && rvar}};
    enum deft_status s;
    if (train) {
        union ck_args cs = {.chsum = {.x = a.bn.x, .part = part, .outer = nb, .ch = c, .inner = plane,
                                      .parts = parts, .mode = CK_CHSUM_SUM}};
        if ((s = cuda_launch(p, CK_CHSUM, c * parts, &cs))) return s;
        cs.chsum.mode = CK_CHSUM_SQDEV;
        cs.chsum.sum_part = part;
        cs.chsum.part = part2;
        if ((s = cuda_launch(p, CK_CHSUM, c * parts, &cs))) return s;
    }
    if ((s = cuda_launch(p, CK_BN_FINISH, c, &a))) return s;
    return cuda_launch(p, CK_BN_APPLY, nb * c * plane, &a);
}
/* BATCHNORM_BWD: in dy, x, gamma, save_mean, save_var; out dx, [dgamma], [dbeta]. */
OPFN(op_batchnorm_bwd) {
    int64_t nb, c, plane;
    view_channels(shape_of(p, nd->in[1]), &nb, &c, &plane);
    const int64_t parts = cuda_parts(nb * plane);
    double *part = (double *)scratch, *part2 = part + c * parts;
    union ck_args cs = {.chsum = {.x = in_ptr(nd, ptr, 0), .x2 = in_ptr(nd, ptr, 1), .mean = in_ptr(nd, ptr, 3),
                                  .var = in_ptr(nd, ptr, 4), .part = part, .part2 = part2, .outer = nb, .ch = c,
                                  .inner = plane, .parts = parts, .eps = nd->attr.bn.eps,
                                  .mode = CK_CHSUM_BN_BWD}};
    enum deft_status s = cuda_launch(p, CK_CHSUM, c * parts, &cs);
    if (s) return s;
    union ck_args a = {.bn = {
        .part = part, .part2 = part2, .x = in_ptr(nd, ptr, 1), .dy = in_ptr(nd, ptr, 0),
        .gamma = in_ptr(nd, ptr, 2), .smean_in = in_ptr(nd, ptr, 3), .svar_in = in_ptr(nd, ptr, 4),
        .dx = out_ptr(nd, ptr, 0), .dgamma = out_ptr(nd, ptr, 1), .dbeta = out_ptr(nd, ptr, 2),
        .coef = (float *)(part2 + c * parts), .outer = nb, .ch = c, .inner = plane, .parts = parts,
        .eps = nd->attr.bn.eps, .train = nd->attr.bn.mode == DEFT_BN_TRAIN}};
    if ((s = cuda_launch(p, CK_BN_BWD_FINISH, c, &a))) return s;
    if (!a.bn.dx) return DEFT_OK;
    return cuda_launch(p, CK_BN_BWD_APPLY, nb * c * plane, &a);
}

OPFN(op_dropout) {
    const struct deft_dropout_attr *at = &nd->attr.dropout;
    const int64_t cnt = numel(p, nd->out[0]);
    const struct deft_shape *sh = &deft_graph_value(p->g, nd->out[0])->shape;
    const int64_t per = sh->ndim > 0 && sh->d[0] > 0 ? cnt / sh->d[0] : cnt;
    union ck_args a = {.dropout = {
        .x = in_ptr(nd, ptr, 0), .y = out_ptr(nd, ptr, 0), .mask = out_ptr(nd, ptr, 1), .seed = at->seed,
        .stream = (uint64_t)n, .base = deft_dropout_counter(rc, cnt, per, 0), .p = at->p,
        .per = per, .world = rc && rc->shard_world > 1 ? rc->shard_world : 1, .rank = rc ? rc->shard_rank : 0,
        .scale = at->p < 1 ? (float)(1.0 / (1.0 - (double)at->p)) : 0.0f, .active = at->training && at->p > 0}};
    return cuda_launch(p, CK_DROPOUT_FWD, cnt, &a);
}
OPFN(op_dropout_bwd) {
    union ck_args a = {.dropout = {.x = in_ptr(nd, ptr, 0), .mask_in = in_ptr(nd, ptr, 1), .y = out_ptr(nd, ptr, 0)}};
    return cuda_launch(p, CK_DROPOUT_BWD, numel(p, nd->out[0]), &a);
}

static bool softmax_dims(const struct deft_program *p, const struct deft_node *nd, int v, int64_t *lines,
                         int64_t *dim, int64_t *inner) {
    int64_t outer;
    if (!view_axis(shape_of(p, v), nd->attr.softmax.axis, &outer, dim, inner)) return false;
    *lines = outer * *inner;
    return true;
}
OPFN(op_softmax) {
    int64_t lines, dim, inner;
    if (!softmax_dims(p, nd, nd->in[0], &lines, &dim, &inner)) return DEFT_ERR_UNSUPPORTED;
    union ck_args a = {.softmax = {.x = in_ptr(nd, ptr, 0), .y = out_ptr(nd, ptr, 0), .dim = dim, .inner = inner}};
    return cuda_launch(p, CK_SOFTMAX_FWD, lines, &a);
}
/* SOFTMAX_BWD: in dy, y; out dx. */
OPFN(op_softmax_bwd) {
    int64_t lines, dim, inner;
    if (!softmax_dims(p, nd, nd->out[0], &lines, &dim, &inner)) return DEFT_ERR_UNSUPPORTED;
    union ck_args a = {.softmax = {.dy = in_ptr(nd, ptr, 0), .x = in_ptr(nd, ptr, 1), .y = out_ptr(nd, ptr, 0),
                                   .dim = dim, .inner = inner}};
    return cuda_launch(p, CK_SOFTMAX_BWD, lines, &a);
}

/* Loss geometry as ref/loss.c; false when the reference should report the error. */
static bool loss_args(const struct deft_program *p, const struct deft_node *nd, void *const *ptr, char *scratch,
                      struct ck_loss *a) {
    const struct deft_loss_attr *at = &nd->attr.loss;
    const struct deft_shape *xs = shape_of(p, nd->in[0]), *ts = shape_of(p, nd->in[1]);
    if ((unsigned)at->kind >= DEFT_LOSS_COUNT) return false;
    *a = (struct ck_loss){.x = in_ptr(nd, ptr, 0), .t = in_ptr(nd, ptr, 1), .kind = at->kind,
                          .eps = at->label_smoothing, .alpha = at->alpha, .gamma = at->gamma, .beta = at->beta};
    if (at->kind == DEFT_LOSS_SOFTMAX_CE) {
        if (xs->ndim < 1) return false;
        const int64_t nb = xs->ndim >= 2 ? xs->d[0] : 1;
        a->c = xs->ndim >= 2 ? xs->d[1] : xs->d[0];
        a->sp = 1;
        for (int i = 2; i < xs->ndim; i++) a->sp *= xs->d[i];
        a->probs = deft_shape_equal(xs, ts);
        if (!a->probs && deft_shape_numel(ts) != nb * a->sp) return false;
        a->rows = nb * a->sp;
    } else {
        if (deft_shape_numel(ts) != deft_shape_numel(xs)) return false;
        a->rows = deft_shape_numel(xs);
    }
    a->part = (double *)scratch;
    a->count = a->part + (a->rows > 0 ? a->rows : 1);
    return true;
}
static size_t loss_scratch(const struct deft_graph *g, const struct deft_node *nd) {
    int64_t rows = deft_shape_numel(&deft_graph_value(g, nd->in[0])->shape);
    return (size_t)(2 * (rows > 0 ? rows : 1)) * sizeof(double);
}
OPFN(op_loss) {
    union ck_args a;
    if (!loss_args(p, nd, ptr, scratch, &a.loss)) return DEFT_ERR_UNSUPPORTED;
    a.loss.loss = out_ptr(nd, ptr, 0);
    enum deft_status s = cuda_launch(p, CK_LOSS_PART, a.loss.rows, &a);
    if (s) return s;
    return cuda_launch(p, CK_LOSS_FINISH, 1, &a);
}
/* LOSS_BWD: in x, target, dloss[1]; out dx. */
OPFN(op_loss_bwd) {
    union ck_args a;
    if (!loss_args(p, nd, ptr, scratch, &a.loss)) return DEFT_ERR_UNSUPPORTED;
    a.loss.dloss = in_ptr(nd, ptr, 2);
    a.loss.dx = out_ptr(nd, ptr, 0);
    if (!a.loss.dloss) return DEFT_ERR_UNSUPPORTED;
    enum deft_status s = cuda_launch(p, CK_LOSS_PART, a.loss.rows, &a);
    if (s || (s = cuda_launch(p, CK_LOSS_FINISH, 1, &a))) return s;
    return cuda_launch(p, CK_LOSS_BWD, a.loss.rows, &a);
}

size_t cuda_node_scratch(const struct deft_graph *g, int n) {
    const struct deft_node *nd = deft_graph_node(g, n);
    int64_t nb, c, plane;
    switch (nd->op) {
    case DEFT_OP_BATCHNORM:
    case DEFT_OP_BATCHNORM_BWD:
        view_channels(&deft_graph_value(g, nd->in[nd->op == DEFT_OP_BATCHNORM ? 0 : 1])->shape, &nb, &c, &plane);
        return bn_scratch(c, nb * plane);
    case DEFT_OP_LOSS:
    case DEFT_OP_LOSS_BWD:
        return loss_scratch(g, nd);
    default:
        return cuda_conv_scratch(g, nd);
    }
}

/* NULL: not on the device yet (conv_transpose, upsample, the fake quantization
 * of quantization-aware training): the reference runs it on the host after a
 * sync (managed memory). */
cuda_op_fn cuda_op_for(enum deft_op op) {
    switch (op) {
    case DEFT_OP_CONV2D: return cuda_conv2d;
    case DEFT_OP_CONV2D_BWD_DATA: return cuda_conv2d_bwd_data;
    case DEFT_OP_CONV2D_BWD_WEIGHTS: return cuda_conv2d_bwd_weights;
    case DEFT_OP_LINEAR: return cuda_linear;
    case DEFT_OP_LINEAR_BWD_DATA: return cuda_linear_bwd_data;
    case DEFT_OP_LINEAR_BWD_WEIGHTS: return cuda_linear_bwd_weights;
    case DEFT_OP_BATCHNORM: return op_batchnorm;
    case DEFT_OP_BATCHNORM_BWD: return op_batchnorm_bwd;
    case DEFT_OP_ACT: return op_act;
    case DEFT_OP_ACT_BWD: return op_act_bwd;
    case DEFT_OP_POOL: return op_pool;
    case DEFT_OP_POOL_BWD: return op_pool_bwd;
    case DEFT_OP_GLOBAL_AVGPOOL: return op_gap;
    case DEFT_OP_GLOBAL_AVGPOOL_BWD: return op_gap_bwd;
    case DEFT_OP_ADD: return op_add;
    case DEFT_OP_MUL: return op_mul;
    case DEFT_OP_REDUCE_TO: return op_reduce_to;
    case DEFT_OP_CONCAT: return op_concat;
    case DEFT_OP_SLICE: return op_slice;
    case DEFT_OP_PAD: return op_pad;
    case DEFT_OP_RESHAPE: return op_reshape;
    case DEFT_OP_DROPOUT: return op_dropout;
    case DEFT_OP_DROPOUT_BWD: return op_dropout_bwd;
    case DEFT_OP_SOFTMAX: return op_softmax;
    case DEFT_OP_SOFTMAX_BWD: return op_softmax_bwd;
    case DEFT_OP_LOSS: return op_loss;
    case DEFT_OP_LOSS_BWD: return op_loss_bwd;
    case DEFT_OP_CONV_TRANSPOSE2D:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS:
    case DEFT_OP_UPSAMPLE:
    case DEFT_OP_UPSAMPLE_BWD:
    case DEFT_OP_FAKE_QUANT:
    case DEFT_OP_FAKE_QUANT_BWD:
    case DEFT_OP_OBSERVE:
    case DEFT_OP_ROI_ALIGN: /* the reference kernel (host fallback) */
    case DEFT_OP_ROI_ALIGN_BWD:
    case DEFT_OP_TRANSPOSE:
    case DEFT_OP_COUNT:
        break;
    }
    return NULL;
}

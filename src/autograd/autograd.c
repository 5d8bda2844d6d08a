/* autograd.c - appends the backward graph to a forward graph.
 *
 * Walks the forward nodes in reverse. For every node whose output carries a
 * gradient and which has an input that needs one, it emits the op's backward
 * nodes (one rule per op below) and accumulates gradients of values used more
 * than once with ADD nodes. Nothing is emitted for inputs that need no
 * gradient, so e.g. the first convolution gets no data-gradient node. */
#include <stdio.h>
#include <string.h>
#include "deft/autograd.h"
#include "graph/graph_impl.h"

struct ad {
    struct deft_graph *g;
    int *grad;          /* current gradient value of each value, -1 if none */
    bool *req;          /* value needs a gradient */
    int n_values0;      /* values before autograd (arrays are sized to this) */
    int counter;
};

static enum deft_status fail_status(struct ad *a) {
    return a->g->status ? a->g->status : DEFT_ERR_INVALID_ARG;
}

/* Add grad value gv into the gradient of value v. */
static enum deft_status acc(struct ad *a, int v, int gv) {
    if (v < 0 || v >= a->n_values0 || !a->req[v]) return DEFT_OK;
    if (gv < 0) return fail_status(a);
    if (a->grad[v] < 0) {
        a->grad[v] = gv;
        return DEFT_OK;
    }
    char nm[512];
    snprintf(nm, sizeof nm, "%s.grad_sum%d", a->g->values[v].name, a->counter++);
    int in[2] = {a->grad[v], gv};
    int n = deft_graph_add_bwd_node(a->g, DEFT_OP_ADD, nm, in, 2, NULL, -1);
    if (n < 0) return fail_status(a);
    a->grad[v] = a->g->nodes[n].out[0];
    return DEFT_OK;
}

/* Emit a backward node of forward node f; returns the node index or -1. */
static int emit(struct ad *a, enum deft_op op, int f, const char *suffix, const int *in, int n_in,
                const struct deft_attr *attr) {
    char nm[512];
    snprintf(nm, sizeof nm, "%s.%s", a->g->nodes[f].name, suffix);
    if (deft_graph_find_node(a->g, nm) >= 0 || deft_graph_find_value(a->g, nm) >= 0)
        snprintf(nm, sizeof nm, "%s.%s%d", a->g->nodes[f].name, suffix, a->counter++);
    return deft_graph_add_bwd_node(a->g, op, nm, in, n_in, attr, f);
}

static int out0(struct ad *a, int node) { return node < 0 ? -1 : a->g->nodes[node].out[0]; }

static bool rq(struct ad *a, int v) { return v >= 0 && v < a->n_values0 && a->req[v]; }

/* dy reduced to the shape of v (for broadcasting binary ops). */
static int reduce_to(struct ad *a, int f, int dy, int v, const char *suffix) {
    struct deft_graph *g = a->g;
    if (deft_shape_equal(&g->values[dy].shape, &g->values[v].shape)) return dy;
    struct deft_attr at = {.shape = g->values[v].shape};
    int in[1] = {dy};
    return out0(a, emit(a, DEFT_OP_REDUCE_TO, f, suffix, in, 1, &at));
}

static enum deft_status backward_node(struct ad *a, int f) {
    struct deft_graph *g = a->g;
    /* copy: the node array may move while we add nodes */
    struct deft_node nd = g->nodes[f];
    int dy = a->grad[nd.out[0]];
    if (dy < 0) return DEFT_OK;
    bool any = false;
    for (int i = 0; i < nd.n_in; i++) any |= rq(a, nd.in[i]);
    if (!any) return DEFT_OK;
    struct deft_attr at = nd.attr;
    enum deft_status s = DEFT_OK;
    int x = nd.in[0];

    switch (nd.op) {
    case DEFT_OP_CONV2D:
    case DEFT_OP_CONV_TRANSPOSE2D: {
        bool t = nd.op == DEFT_OP_CONV_TRANSPOSE2D;
        int w = nd.in[1], b = nd.attr.has_bias ? nd.in[2] : -1;
        if (rq(a, x)) {
            at.shape = g->values[x].shape;
            int in[2] = {dy, w};
            s = acc(a, x, out0(a, emit(a, t ? DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA : DEFT_OP_CONV2D_BWD_DATA,
                                       f, "bwd_data", in, 2, &at)));
            if (s) return s;
        }
        if (rq(a, w) || rq(a, b)) {
            at.shape = g->values[w].shape;
            int in[2] = {dy, x};
            int n = emit(a, t ? DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS : DEFT_OP_CONV2D_BWD_WEIGHTS, f,
                         "bwd_weights", in, 2, &at);
            if (n < 0) return fail_status(a);
            if ((s = acc(a, w, g->nodes[n].out[0]))) return s;
            if (b >= 0 && (s = acc(a, b, g->nodes[n].out[1]))) return s;
        }
        return DEFT_OK;
    }
    case DEFT_OP_BATCHNORM: {
        int in[5] = {dy, x, nd.in[1], nd.out[1], nd.out[2]};
        int n = emit(a, DEFT_OP_BATCHNORM_BWD, f, "bwd", in, 5, &at);
        if (n < 0) return fail_status(a);
        int o[3] = {g->nodes[n].out[0], g->nodes[n].out[1], g->nodes[n].out[2]};
        if ((s = acc(a, x, o[0])) || (s = acc(a, nd.in[1], o[1])) || (s = acc(a, nd.in[2], o[2])))
            return s;
        return DEFT_OK;
    }
    case DEFT_OP_ACT: {
        int in[2] = {dy, deft_act_bwd_uses_output(nd.attr.act.kind) ? nd.out[0] : x};
        return acc(a, x, out0(a, emit(a, DEFT_OP_ACT_BWD, f, "bwd", in, 2, &at)));
    }
    case DEFT_OP_POOL: {
        int in[3] = {dy, x, nd.n_out > 1 ? nd.out[1] : -1};
        return acc(a, x, out0(a, emit(a, DEFT_OP_POOL_BWD, f, "bwd", in, nd.n_out > 1 ? 3 : 2, &at)));
    }
    case DEFT_OP_GLOBAL_AVGPOOL: {
        at.shape = g->values[x].shape;
        int in[1] = {dy};
        return acc(a, x, out0(a, emit(a, DEFT_OP_GLOBAL_AVGPOOL_BWD, f, "bwd", in, 1, &at)));
    }
    case DEFT_OP_ADD: {
        for (int i = 0; i < 2 && !s; i++)
            if (rq(a, nd.in[i])) s = acc(a, nd.in[i], reduce_to(a, f, dy, nd.in[i], i ? "bwd_b" : "bwd_a"));
        return s;
    }
    case DEFT_OP_MUL: {
        for (int i = 0; i < 2 && !s; i++) {
            int v = nd.in[i], other = nd.in[1 - i];
            if (!rq(a, v)) continue;
            int in[2] = {dy, other};
            int prod = out0(a, emit(a, DEFT_OP_MUL, f, i ? "bwd_b" : "bwd_a", in, 2, NULL));
            if (prod < 0) return fail_status(a);
            s = acc(a, v, reduce_to(a, f, prod, v, i ? "bwd_b_sum" : "bwd_a_sum"));
        }
        return s;
    }
    case DEFT_OP_CONCAT: {
        int ax = nd.attr.concat.axis;
        int64_t off = 0;
        for (int i = 0; i < nd.n_in && !s; i++) {
            int v = nd.in[i];
            int64_t len = g->values[v].shape.d[ax];
            if (rq(a, v)) {
                struct deft_attr sa = {0};
                const struct deft_shape *ys = &g->values[dy].shape;
                for (int d = 0; d < ys->ndim; d++) sa.slice.end[d] = ys->d[d];
                sa.slice.start[ax] = off;
                sa.slice.end[ax] = off + len;
                char suf[32];
                snprintf(suf, sizeof suf, "bwd%d", i);
                int in[1] = {dy};
                s = acc(a, v, out0(a, emit(a, DEFT_OP_SLICE, f, suf, in, 1, &sa)));
            }
            off += len;
        }
        return s;
    }
    case DEFT_OP_SLICE: {
        struct deft_attr pa = {0};
        const struct deft_shape *xs = &g->values[x].shape;
        for (int d = 0; d < xs->ndim; d++) {
            pa.pad.before[d] = nd.attr.slice.start[d];
            pa.pad.after[d] = nd.attr.slice.end[d] == -1 ? 0 : xs->d[d] - nd.attr.slice.end[d];
        }
        int in[1] = {dy};
        return acc(a, x, out0(a, emit(a, DEFT_OP_PAD, f, "bwd", in, 1, &pa)));
    }
    case DEFT_OP_PAD: {
        struct deft_attr sa = {0};
        const struct deft_shape *xs = &g->values[x].shape;
        for (int d = 0; d < xs->ndim; d++) {
            sa.slice.start[d] = nd.attr.pad.before[d];
            sa.slice.end[d] = nd.attr.pad.before[d] + xs->d[d];
        }
        int in[1] = {dy};
        return acc(a, x, out0(a, emit(a, DEFT_OP_SLICE, f, "bwd", in, 1, &sa)));
    }
    case DEFT_OP_RESHAPE: {
        struct deft_attr ra = {.shape = g->values[x].shape};
        if (ra.shape.ndim >= 2) ra.shape.d[0] = -1; /* follow batch-size changes */
        int in[1] = {dy};
        return acc(a, x, out0(a, emit(a, DEFT_OP_RESHAPE, f, "bwd", in, 1, &ra)));
    }
    case DEFT_OP_TRANSPOSE: { /* dy transposed back: the inverse permutation */
        struct deft_attr ta = {.shape = {.ndim = nd.attr.shape.ndim}};
        for (int i = 0; i < ta.shape.ndim; i++) ta.shape.d[nd.attr.shape.d[i]] = i;
        int in[1] = {dy};
        return acc(a, x, out0(a, emit(a, DEFT_OP_TRANSPOSE, f, "bwd", in, 1, &ta)));
    }
    case DEFT_OP_UPSAMPLE: {
        at.shape = g->values[x].shape;
        int in[1] = {dy};
        return acc(a, x, out0(a, emit(a, DEFT_OP_UPSAMPLE_BWD, f, "bwd", in, 1, &at)));
    }
    case DEFT_OP_LINEAR: {
        int w = nd.in[1], b = nd.attr.has_bias ? nd.in[2] : -1;
        if (rq(a, x)) {
            int in[2] = {dy, w};
            if ((s = acc(a, x, out0(a, emit(a, DEFT_OP_LINEAR_BWD_DATA, f, "bwd_data", in, 2, &at)))))
                return s;
        }
        if (rq(a, w) || rq(a, b)) {
            int in[2] = {dy, x};
            int n = emit(a, DEFT_OP_LINEAR_BWD_WEIGHTS, f, "bwd_weights", in, 2, &at);
            if (n < 0) return fail_status(a);
            if ((s = acc(a, w, g->nodes[n].out[0]))) return s;
            if (b >= 0 && (s = acc(a, b, g->nodes[n].out[1]))) return s;
        }
        return DEFT_OK;
    }
    case DEFT_OP_DROPOUT: {
        int in[2] = {dy, nd.out[1]};
        return acc(a, x, out0(a, emit(a, DEFT_OP_DROPOUT_BWD, f, "bwd", in, 2, &at)));
    }
    case DEFT_OP_SOFTMAX: {
        int in[2] = {dy, nd.out[0]};
        return acc(a, x, out0(a, emit(a, DEFT_OP_SOFTMAX_BWD, f, "bwd", in, 2, &at)));
    }
    case DEFT_OP_LOSS: {
        int in[3] = {x, nd.in[1], dy};
        return acc(a, x, out0(a, emit(a, DEFT_OP_LOSS_BWD, f, "bwd", in, 3, &at)));
    }
    case DEFT_OP_FAKE_QUANT: { /* straight-through; the range state gets no gradient */
        bool chan = nd.attr.fq.mode == DEFT_FQ_PER_CHANNEL;
        int in[3] = {dy, x, chan ? -1 : nd.in[1]};
        return acc(a, x, out0(a, emit(a, DEFT_OP_FAKE_QUANT_BWD, f, "bwd", in, chan ? 2 : 3, &at)));
    }
    case DEFT_OP_ROI_ALIGN: { /* the boxes get no gradient */
        at.shape = g->values[x].shape;
        int in[2] = {dy, nd.in[1]};
        return acc(a, x, out0(a, emit(a, DEFT_OP_ROI_ALIGN_BWD, f, "bwd", in, 2, &at)));
    }
    default:
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "autograd: no gradient rule for op %s (node '%s')",
                              deft_op_name(nd.op), nd.name);
    }
}

/* An INPUT "<name>.seed" holding the gradient of output v (a host-side loss). */
static enum deft_status add_seed(struct ad *a, int v) {
    struct deft_graph *g = a->g;
    if (!a->req[v])
        return deft_set_error(DEFT_ERR_INVALID_ARG, "autograd: output '%s' does not depend on any trainable parameter",
                              g->values[v].name);
    if (a->grad[v] >= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "autograd: output '%s' is seeded twice", g->values[v].name);
    char nm[512];
    snprintf(nm, sizeof nm, "%s.seed", g->values[v].name);
    struct deft_shape sh = g->values[v].shape;
    int seed = deft_graph_add_value(g, nm, DEFT_VALUE_INPUT, DEFT_F32, &sh);
    if (seed < 0) return fail_status(a);
    a->grad[v] = seed;
    return DEFT_OK;
}

/* Which inputs of a forward op carry gradients (targets, stats do not). */
static bool differentiable_input(const struct deft_node *nd, int i) {
    switch (nd->op) {
    case DEFT_OP_BATCHNORM: return i <= 2;
    case DEFT_OP_LOSS: return i == 0;
    case DEFT_OP_FAKE_QUANT: return i == 0;
    case DEFT_OP_ROI_ALIGN: return i == 0; /* boxes: detached, as torchvision and TF */
    case DEFT_OP_OBSERVE: return false; /* a range, not a function of the model's output */
    default: return true;
    }
}

enum deft_status deft_autograd(struct deft_graph *g, int loss, const struct deft_autograd_opts *o) {
    if (g->status) return g->status;
    int n_seeds = o && o->seeds ? o->n_seeds : 0;
    if (loss < 0 && n_seeds < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "autograd: no loss value and no seeded outputs");
    if (loss >= g->n_values || (loss >= 0 && deft_shape_numel(&g->values[loss].shape) != 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "autograd: the loss must be a scalar value");
    for (int i = 0; i < n_seeds; i++)
        if (o->seeds[i] < 0 || o->seeds[i] >= g->n_values)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "autograd: seed %d is value %d, out of range", i,
                                  o->seeds[i]);
    for (int n = 0; n < g->n_nodes; n++)
        if (g->nodes[n].fwd >= 0)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "autograd: graph already has backward nodes");
    struct ad a = {.g = g, .n_values0 = g->n_values};
    a.grad = deft_malloc((size_t)g->n_values * sizeof *a.grad);
    a.req = deft_calloc((size_t)g->n_values, sizeof *a.req);
    enum deft_status s = DEFT_OK;
    if (!a.grad || !a.req) {
        s = deft_set_error(DEFT_ERR_NOMEM, "autograd: out of memory");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++) {
        const struct deft_value *val = &g->values[v];
        a.grad[v] = -1;
        a.req[v] = (val->kind == DEFT_VALUE_PARAM && !(val->flags & DEFT_VF_FROZEN)) ||
                   (val->kind == DEFT_VALUE_INPUT && o && o->input_grads);
    }
    int n_fwd = g->n_nodes;
    for (int n = 0; n < n_fwd; n++) {
        const struct deft_node *nd = &g->nodes[n];
        bool r = false;
        for (int i = 0; i < nd->n_in; i++)
            if (nd->in[i] >= 0 && differentiable_input(nd, i)) r |= a.req[nd->in[i]];
        a.req[nd->out[0]] = r;
    }
    if (loss >= 0 && !a.req[loss]) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "autograd: the loss does not depend on any trainable parameter");
        goto done;
    }
    if (loss >= 0) {
        struct deft_shape one = {.ndim = 1, .d = {1}};
        int seed = deft_graph_add_value(g, "loss_grad", DEFT_VALUE_INPUT, DEFT_F32, &one);
        if (seed < 0) {
            s = fail_status(&a);
            goto done;
        }
        a.grad[loss] = seed;
    }
    for (int i = 0; i < n_seeds && !s; i++) s = add_seed(&a, o->seeds[i]);
    if (s) goto done;
    for (int n = n_fwd - 1; n >= 0 && !s; n--) s = backward_node(&a, n);
    if (s) goto done;
    /* Tag final gradients; a value serving as gradient of two params gets a copy. */
    for (int v = 0; v < a.n_values0; v++) {
        int gv = a.grad[v];
        if (gv < 0 || v == loss) continue;
        const struct deft_value *val = &g->values[v];
        if (val->kind != DEFT_VALUE_PARAM && !(val->kind == DEFT_VALUE_INPUT && o && o->input_grads))
            continue;
        if (g->values[gv].grad_of >= 0 || g->values[gv].kind != DEFT_VALUE_NODE) {
            char nm[512];
            snprintf(nm, sizeof nm, "%s.grad_copy", val->name);
            struct deft_attr ra = {.shape = g->values[gv].shape};
            int in[1] = {gv};
            int n = deft_graph_add_bwd_node(g, DEFT_OP_RESHAPE, nm, in, 1, &ra, -1);
            if (n < 0) {
                s = fail_status(&a);
                goto done;
            }
            gv = g->nodes[n].out[0];
        }
        g->values[gv].grad_of = v;
        if (val->kind == DEFT_VALUE_INPUT) g->values[gv].flags |= DEFT_VF_OUTPUT;
    }
done:
    deft_free(a.grad);
    deft_free(a.req);
    if (s && !g->status) g->status = s;
    return s;
}

int deft_grad_of(const struct deft_graph *g, int v) {
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].grad_of == v) return i;
    return -1;
}

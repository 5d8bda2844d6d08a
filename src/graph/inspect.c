/* inspect.c - statistics, printing (table and DOT) and parameter initializers. */
#include <math.h>
#include <string.h>
#include "graph/graph_impl.h"

void deft_graph_stats(const struct deft_graph *g, struct deft_graph_stats *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < g->n_values; i++) {
        const struct deft_value *v = &g->values[i];
        int64_t n = deft_shape_numel(&v->shape);
        if (v->kind == DEFT_VALUE_PARAM) {
            out->params += n;
            if (!(v->flags & DEFT_VF_FROZEN)) out->trainable_params += n;
        } else if (v->kind == DEFT_VALUE_STATE) {
            out->state += n;
        }
    }
    for (int n = 0; n < g->n_nodes; n++) {
        if (g->nodes[n].fwd >= 0) continue; /* forward FLOPs only */
        out->flops += deft_node_flops(g, n);
        out->nodes++;
        if (g->nodes[n].op == DEFT_OP_CONV2D || g->nodes[n].op == DEFT_OP_CONV_TRANSPOSE2D) out->convs++;
    }
}

static int64_t node_params(const struct deft_graph *g, int n) {
    int64_t p = 0;
    const struct deft_node *nd = &g->nodes[n];
    for (int i = 0; i < nd->n_in; i++)
        if (nd->in[i] >= 0 && g->values[nd->in[i]].kind == DEFT_VALUE_PARAM)
            p += deft_shape_numel(&g->values[nd->in[i]].shape);
    return p;
}

static const char *op_label(const struct deft_node *nd) {
    if (nd->op == DEFT_OP_ACT) return deft_act_name(nd->attr.act.kind);
    if (nd->op == DEFT_OP_POOL) return nd->attr.pool.kind == DEFT_POOL_MAX ? "maxpool" : "avgpool";
    if (nd->op == DEFT_OP_LOSS) return deft_loss_name(nd->attr.loss.kind);
    return deft_op_name(nd->op);
}

void deft_graph_print(const struct deft_graph *g, FILE *f) {
    char sh[96];
    fprintf(f, "%-36s %-18s %-22s %12s %14s\n", "layer", "op", "output", "params", "FLOPs");
    for (int n = 0; n < g->n_nodes; n++) {
        const struct deft_node *nd = &g->nodes[n];
        if (nd->fwd >= 0) continue;
        deft_shape_str(&g->values[nd->out[0]].shape, sh, sizeof sh);
        fprintf(f, "%-36s %-18s %-22s %12lld %14lld\n", nd->name, op_label(nd), sh,
                (long long)node_params(g, n), (long long)deft_node_flops(g, n));
    }
    struct deft_graph_stats st;
    deft_graph_stats(g, &st);
    fprintf(f, "total: %d layers, %lld params (%lld trainable), %lld state, %.3f GFLOPs",
            st.nodes, (long long)st.params, (long long)st.trainable_params, (long long)st.state,
            (double)st.flops * 1e-9);
    /* a saved model keeps its training batch: say what one image costs */
    int img = deft_graph_find_role(g, "image");
    long long b = img >= 0 && g->values[img].shape.ndim > 0 ? g->values[img].shape.d[0] : 1;
    if (b > 1) fprintf(f, " (batch %lld: %.3f GFLOPs per image)", b, (double)st.flops * 1e-9 / (double)b);
    fputc('\n', f);
}

void deft_graph_print_dot(const struct deft_graph *g, FILE *f) {
    char sh[96];
    fprintf(f, "digraph deft {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (int n = 0; n < g->n_nodes; n++) {
        const struct deft_node *nd = &g->nodes[n];
        deft_shape_str(&g->values[nd->out[0]].shape, sh, sizeof sh);
        fprintf(f, "  n%d [label=\"%s\\n%s %s\"%s];\n", n, nd->name, op_label(nd), sh,
                nd->fwd >= 0 ? ", style=dashed" : "");
        for (int i = 0; i < nd->n_in; i++) {
            int v = nd->in[i];
            if (v < 0) continue;
            const struct deft_value *val = &g->values[v];
            if (val->kind == DEFT_VALUE_NODE)
                fprintf(f, "  n%d -> n%d;\n", val->producer, n);
            else if (val->kind == DEFT_VALUE_INPUT)
                fprintf(f, "  v%d [label=\"%s\", shape=ellipse];\n  v%d -> n%d;\n", v, val->name, v, n);
        }
    }
    fprintf(f, "}\n");
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

enum deft_status deft_init_param(const struct deft_value *v, uint64_t seed, float *dst) {
    int64_t n = deft_shape_numel(&v->shape);
    uint64_t stream = fnv1a(v->name); /* independent of creation order */
    double fan_in = v->fan_in > 0 ? v->fan_in : 1, fan_out = v->fan_out > 0 ? v->fan_out : 1;
    double bound = 0, stdv = 0;
    switch (v->init) {
    case DEFT_INIT_ZEROS:
        memset(dst, 0, (size_t)n * sizeof *dst);
        return DEFT_OK;
    case DEFT_INIT_ONES:
        for (int64_t i = 0; i < n; i++) dst[i] = 1.0f;
        return DEFT_OK;
    case DEFT_INIT_PRIOR_PROB_001:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)-log(99.0);
        return DEFT_OK;
    case DEFT_INIT_KAIMING_NORMAL_FAN_OUT: stdv = sqrt(2.0 / fan_out); break;
    case DEFT_INIT_KAIMING_UNIFORM:
    case DEFT_INIT_UNIFORM_FAN_IN: bound = 1.0 / sqrt(fan_in); break;
    case DEFT_INIT_NORMAL_001: stdv = 0.01; break;
    case DEFT_INIT_XAVIER_UNIFORM: bound = sqrt(6.0 / (fan_in + fan_out)); break;
    default: return deft_set_error(DEFT_ERR_INVALID_ARG, "param '%s': unknown initializer", v->name);
    }
    for (int64_t i = 0; i < n; i++)
        dst[i] = stdv > 0 ? (float)(stdv * deft_rng_normal(seed, stream, (uint64_t)i))
                          : (float)(bound * (2.0 * deft_rng_uniform(seed, stream, (uint64_t)i) - 1.0));
    return DEFT_OK;
}

/* cpu_fuse.c - the inference chains of a forward-only program.
 *
 * In a graph without backward nodes nothing reads a convolution's raw
 * output, a batch norm's output or a residual sum except the next node, so
 *     conv -> [batch norm (running stats)] -> [act] -> [add] -> [act]
 * can run as one oneDNN convolution: the batch norm folded into the
 * weights and bias (prepared once per parameter version), the activations
 * as eltwise post-ops and the residual add as a binary post-op. The chain
 * runs at its last node; the nodes before it do nothing and their outputs
 * are never materialized, and the chain's inputs live until it runs.
 * Only links whose value has exactly one reader (and is not an OUTPUT) join.
 *
 * int8 (p->q8_scale): every convolution whose input has a scale is a chain,
 * even alone, and runs in int8 (cpu_conv_q8.c); a chain's output is stored
 * as u8/s8 when it has a scale and every reader is an int8 chain reading it
 * as its input or its residual, so int8 flows conv -> conv; other outputs
 * are f32 (dequantized in the convolution).
 */
#include <string.h>
#include "backend/cpu/cpu_impl.h"

/* The only node reading v, or -1 (none, several, or v is a model output). */
static int sole_reader(const struct cpu_prog *p, const int *readers, const int *reader_of, int v) {
    if (v < 0 || readers[v] != 1 || (cpu_val(p, v)->flags & DEFT_VF_OUTPUT)) return -1;
    return reader_of[v];
}

static bool unread(const struct cpu_prog *p, const int *readers, int v) {
    return v < 0 || (readers[v] == 0 && !(cpu_val(p, v)->flags & DEFT_VF_OUTPUT));
}

/* Activations oneDNN's convolutions take as eltwise post-ops here. An int8
 * chain applies its post-ops in the destination's units, where only the
 * activations that commute with a positive scale (ReLU, leaky ReLU; ReLU6
 * with its bound scaled) are right; float chains (fp32, bf16: scale 1) take
 * any activation oneDNN has (swish, sigmoid, hardswish... of EfficientNet,
 * MobileNetV3, YOLO), saving a pass over the tensor each. */
static bool act_post_op(const struct deft_node *m, bool scaled, struct cpu_fuse_op *op) {
    enum deft_act_kind k = m->attr.act.kind;
    if (scaled && k != DEFT_ACT_RELU && k != DEFT_ACT_RELU6 && k != DEFT_ACT_LEAKY_RELU) return false;
    memset(op, 0, sizeof *op);
    op->value = -1;
    return cpu_act_alg(&m->attr.act, false, &op->alg, &op->alpha, &op->beta);
}

static bool same_shape(const struct deft_shape *a, const struct deft_shape *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i]) return false;
    return true;
}

/* Grow the chain starting at conv node c; claimed[] marks nodes already in one. */
static void plan_chain(struct cpu_prog *p, int c, const int *readers, const int *reader_of, bool *claimed) {
    const struct deft_node *conv = deft_graph_node(p->g, c);
    int w = conv->in[1];
    if (w < 0 || cpu_val(p, w)->kind == DEFT_VALUE_NODE || cpu_val(p, conv->in[0])->shape.ndim != 4) return;
    struct cpu_fusion f = {.conv = c, .bn = -1};
    f.q8 = p->q8_scale && p->q8_scale[conv->in[0]] > 0;
    int nodes[2 + CPU_FUSE_MAX_OPS], nnodes = 0, cur = conv->out[0], last = c;
    bool added = false;
    int m = sole_reader(p, readers, reader_of, cur);
    if (m >= 0 && !claimed[m]) {
        const struct deft_node *bn = deft_graph_node(p->g, m);
        if (bn->op == DEFT_OP_BATCHNORM && bn->attr.bn.mode != DEFT_BN_TRAIN && bn->in[0] == cur &&
            bn->n_in >= 5 && bn->in[3] >= 0 && bn->in[4] >= 0 &&
            unread(p, readers, bn->n_out > 1 ? bn->out[1] : -1) &&
            unread(p, readers, bn->n_out > 2 ? bn->out[2] : -1)) {
            f.bn = m;
            nodes[nnodes++] = m;
            cur = bn->out[0];
            last = m;
        }
    }
    while (f.nops < CPU_FUSE_MAX_OPS && (m = sole_reader(p, readers, reader_of, cur)) >= 0 && !claimed[m]) {
        const struct deft_node *nd = deft_graph_node(p->g, m);
        struct cpu_fuse_op op;
        if (nd->op == DEFT_OP_ACT && act_post_op(nd, f.q8 && !p->fchain, &op)) {
        } else if (nd->op == DEFT_OP_ADD && !added && nd->n_in == 2 && nd->in[0] != nd->in[1] &&
                   (f.q8 || !cpu_conv_node_winograd(p, conv))) { /* oneDNN's Winograd takes no binary post-op */
            int other = nd->in[0] == cur ? nd->in[1] : nd->in[0];
            if (other < 0 || !same_shape(&cpu_val(p, other)->shape, &cpu_val(p, cur)->shape) ||
                !same_shape(&cpu_val(p, nd->out[0])->shape, &cpu_val(p, cur)->shape))
                break;
            memset(&op, 0, sizeof op);
            op.add = true;
            op.alg = dnnl_binary_add;
            op.value = other;
            added = true;
        } else {
            break;
        }
        f.ops[f.nops++] = op;
        nodes[nnodes++] = m;
        cur = nd->out[0];
        last = m;
    }
    if (last == c && !f.q8) return; /* nothing to fuse */
    f.out = cur;
    p->fusion[last] = f;
    claimed[c] = true;
    p->fused_into[c] = last;
    for (int i = 0; i < nnodes; i++) {
        claimed[nodes[i]] = true;
        p->fused_into[nodes[i]] = last;
    }
    /* The chain reads the conv input and the residual when it runs. */
    p->last_use[conv->in[0]] = last > p->last_use[conv->in[0]] ? last : p->last_use[conv->in[0]];
    for (int i = 0; i < f.nops; i++)
        if (f.ops[i].add && last > p->last_use[f.ops[i].value]) p->last_use[f.ops[i].value] = last;
}

/* Does node m, an int8 chain's member, read v as that chain's input or residual? */
static bool q8_reader(const struct cpu_prog *p, int m, int v) {
    int last = p->fused_into[m];
    if (last < 0 || !p->fusion[last].q8) return false;
    const struct cpu_fusion *f = &p->fusion[last];
    if (m == f->conv) return deft_graph_node(p->g, m)->in[0] == v && deft_graph_node(p->g, m)->in[1] != v;
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].add && f->ops[i].value == v) return deft_graph_node(p->g, m)->op == DEFT_OP_ADD;
    return false;
}

/* int8 chain outputs every reader of which is an int8 chain stay int8. */
static void plan_q8_values(struct cpu_prog *p) {
    for (int n = 0; n < p->nn; n++) {
        const struct cpu_fusion *f = &p->fusion[n];
        if (f->conv < 0 || !f->q8) continue;
        int v = f->out, nread = 0;
        bool ok = p->q8_scale[v] > 0 && !(cpu_val(p, v)->flags & DEFT_VF_OUTPUT);
        for (int m = 0; ok && m < p->nn; m++) {
            const struct deft_node *node = deft_graph_node(p->g, m);
            for (int i = 0; ok && i < node->n_in; i++)
                if (node->in[i] == v) {
                    ok = q8_reader(p, m, v);
                    nread++;
                }
        }
        p->q8[v] = ok && nread > 0;
    }
}

enum deft_status cpu_fuse_plan(struct cpu_prog *p) {
    for (int n = 0; n < p->nn; n++) {
        p->fused_into[n] = -1;
        p->fusion[n].conv = -1;
    }
    for (int v = 0; v < p->nv; v++) p->last_use[v] = -1;
    if (!p->fuse) return DEFT_OK;
    int *readers = deft_calloc((size_t)p->nv + 1, sizeof *readers);
    int *reader_of = deft_calloc((size_t)p->nv + 1, sizeof *reader_of);
    bool *claimed = deft_calloc((size_t)p->nn + 1, sizeof *claimed);
    if (!readers || !reader_of || !claimed) {
        deft_free(readers);
        deft_free(reader_of);
        deft_free(claimed);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory planning inference fusions");
    }
    for (int n = 0; n < p->nn; n++) {
        const struct deft_node *node = deft_graph_node(p->g, n);
        for (int i = 0; i < node->n_in; i++) {
            int v = node->in[i];
            if (v < 0) continue;
            bool dup = false; /* a node reading v twice counts once */
            for (int k = 0; k < i; k++) dup |= node->in[k] == v;
            if (dup) continue;
            readers[v]++;
            reader_of[v] = n;
        }
    }
    int fused = 0, q8 = 0;
    for (int n = 0; n < p->nn; n++)
        if (deft_graph_node(p->g, n)->op == DEFT_OP_CONV2D && !claimed[n]) {
            plan_chain(p, n, readers, reader_of, claimed);
            fused += p->fused_into[n] >= 0;
        }
    if (p->q8_scale) plan_q8_values(p);
    for (int n = 0; n < p->nn; n++) q8 += p->fusion[n].conv >= 0 && p->fusion[n].q8;
    deft_log(DEFT_LOG_DEBUG, "cpu: %d convolution chains fused for inference, %d in int8", fused, q8);
    deft_free(readers);
    deft_free(reader_of);
    deft_free(claimed);
    return DEFT_OK;
}

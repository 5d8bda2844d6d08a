/* cpu_eltwise.c - activations forward and backward on oneDNN eltwise.
 *
 * Activations keep their input's layout. ACT_BWD reads the forward output
 * for the activations deft_act_bwd_uses_output names, mapped to oneDNN's
 * *_use_dst_for_bwd algorithms, so the pre-activation can be freed.
 * ReLU6 is clip_v2, whose gradient is 0 at both bounds like PyTorch's.
 */
#include "backend/cpu/cpu_impl.h"

/* oneDNN alg, alpha, beta for an activation; use_dst selects the backward
 * variant reading y. Returns false when there is no such algorithm. */
bool cpu_act_alg(const struct deft_act_attr *a, bool use_dst, dnnl_alg_kind_t *alg, float *alpha,
                 float *beta) {
    *alpha = 0;
    *beta = 0;
    switch (a->kind) {
    case DEFT_ACT_RELU:
        *alg = use_dst ? dnnl_eltwise_relu_use_dst_for_bwd : dnnl_eltwise_relu;
        return true;
    case DEFT_ACT_LEAKY_RELU:
        *alpha = a->alpha;
        if (use_dst && a->alpha < 0) return false; /* sign(y) != sign(x) */
        *alg = use_dst ? dnnl_eltwise_relu_use_dst_for_bwd : dnnl_eltwise_relu;
        return true;
    case DEFT_ACT_RELU6:
        *beta = 6.0f;
        *alg = use_dst ? dnnl_eltwise_clip_v2_use_dst_for_bwd : dnnl_eltwise_clip_v2;
        return true;
    case DEFT_ACT_SIGMOID:
        *alg = use_dst ? dnnl_eltwise_logistic_use_dst_for_bwd : dnnl_eltwise_logistic;
        return true;
    case DEFT_ACT_TANH:
        *alg = use_dst ? dnnl_eltwise_tanh_use_dst_for_bwd : dnnl_eltwise_tanh;
        return true;
    case DEFT_ACT_SWISH:
        *alpha = 1.0f;
        *alg = dnnl_eltwise_swish;
        return !use_dst;
    case DEFT_ACT_HARDSWISH:
        *alg = dnnl_eltwise_hardswish;
        return !use_dst;
    case DEFT_ACT_MISH:
        *alg = dnnl_eltwise_mish;
        return !use_dst;
    case DEFT_ACT_EXP:
        *alg = use_dst ? dnnl_eltwise_exp_use_dst_for_bwd : dnnl_eltwise_exp;
        return true;
    case DEFT_ACT_SQRT:
        *alg = use_dst ? dnnl_eltwise_sqrt_use_dst_for_bwd : dnnl_eltwise_sqrt;
        return true;
    case DEFT_ACT_ABS:
        *alg = dnnl_eltwise_abs;
        return !use_dst;
    case DEFT_ACT_NEG: /* alpha x + beta */
        *alpha = -1.0f;
        *alg = dnnl_eltwise_linear;
        return !use_dst;
    case DEFT_ACT_RECIPROCAL: /* alpha x^beta */
        *alpha = 1.0f;
        *beta = -1.0f;
        *alg = dnnl_eltwise_pow;
        return !use_dst;
    case DEFT_ACT_SOFTPLUS: /* alpha 1: log(1 + e^x) whether or not this oneDNN reads alpha */
        *alpha = 1.0f;
        *alg = dnnl_eltwise_soft_relu;
        return !use_dst;
    case DEFT_ACT_ELU:
        *alpha = a->alpha;
        *alg = dnnl_eltwise_elu;
        return !use_dst;
    /* log: oneDNN 2.6's approximation gives log(1) = -1.4e-6 (ONNX's node test wants 0 within 1e-7);
     * softsign, erf: no such algorithm. The reference kernel runs them. */
    default: return false;
    }
}

enum deft_status cpu_compile_eltwise(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    const struct deft_act_attr *a = &node->attr.act;
    dnnl_alg_kind_t alg;
    float alpha, beta;
    enum deft_status st;
    if (node->op == DEFT_OP_ACT) {
        int x = node->in[0], y = node->out[0];
        if (!cpu_act_alg(a, false, &alg, &alpha, &beta)) return DEFT_ERR_UNSUPPORTED;
        dnnl_eltwise_desc_t d;
        dnnl_primitive_desc_t pd;
        if (dnnl_eltwise_forward_desc_init(&d, cpu_fwd_prop(p), alg, &p->md[x], alpha, beta) !=
                dnnl_success ||
            deft_dnnl_pd_create(&pd, &d, p->eng, NULL, node->name, "eltwise fwd", false) != dnnl_success)
            return DEFT_ERR_UNSUPPORTED;
        int mx, my;
        st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &mx);
        if (!st) st = cpu_bind_out(p, nd, y, deft_dnnl_pd_md(pd, dnnl_query_dst_md, 0), &my);
        int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}, mems[2] = {mx, my};
        if (!st) st = cpu_add_prim(p, nd, pd, 2, args, mems);
        dnnl_primitive_desc_destroy(pd);
        return st;
    }
    /* ACT_BWD: in dy, x_or_y; out dx */
    int dy = node->in[0], t = node->in[1], dx = node->out[0];
    bool use_dst = deft_act_bwd_uses_output(a->kind);
    if (!cpu_act_alg(a, use_dst, &alg, &alpha, &beta)) return DEFT_ERR_UNSUPPORTED;
    const dnnl_memory_desc_t *data = &p->md[t];
    /* The hint uses the same (use_dst) algorithm: oneDNN accepts it forward. */
    dnnl_eltwise_desc_t fd, d;
    dnnl_primitive_desc_t hint, pd;
    if (dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, alg, data, alpha, beta) !=
            dnnl_success ||
        deft_dnnl_pd_create(&hint, &fd, p->eng, NULL, node->name, "eltwise fwd (hint)", false) !=
            dnnl_success)
        return DEFT_ERR_UNSUPPORTED;
    dnnl_status_t ds = dnnl_eltwise_backward_desc_init(&d, alg, data, data, alpha, beta);
    if (ds == dnnl_success)
        ds = deft_dnnl_pd_create(&pd, &d, p->eng, hint, node->name, "eltwise bwd", false);
    dnnl_primitive_desc_destroy(hint);
    if (ds != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    int mdy, mt, mdx;
    st = cpu_bind_in(p, nd, dy, deft_dnnl_pd_md(pd, dnnl_query_diff_dst_md, 0), &mdy);
    if (!st)
        st = cpu_bind_in(p, nd, t,
                         deft_dnnl_pd_md(pd, use_dst ? dnnl_query_dst_md : dnnl_query_src_md, 0), &mt);
    if (!st) st = cpu_bind_out(p, nd, dx, deft_dnnl_pd_md(pd, dnnl_query_diff_src_md, 0), &mdx);
    int args[3] = {DNNL_ARG_DIFF_DST, use_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, DNNL_ARG_DIFF_SRC};
    int mems[3] = {mdy, mt, mdx};
    if (!st) st = cpu_add_prim(p, nd, pd, 3, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* cpu_softmax.c - softmax forward and backward on oneDNN softmax_v2.
 *
 * Softmax runs on plain tensors (it sits in heads, after linear layers);
 * the backward pass reads the forward output y, as oneDNN requires.
 */
#include "backend/cpu/cpu_impl.h"

enum deft_status cpu_compile_softmax(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    int x = node->in[0];
    const struct deft_shape *xs = &cpu_val(p, x)->shape;
    int axis = node->attr.softmax.axis;
    if (axis < 0) axis += xs->ndim;
    if (xs->ndim < 1 || axis < 0 || axis >= xs->ndim) return DEFT_ERR_UNSUPPORTED;
    dnnl_memory_desc_t plain;
    deft_dnnl_md_plain(&plain, xs);
    dnnl_softmax_v2_desc_t fd;
    dnnl_primitive_desc_t fpd;
    if (dnnl_softmax_v2_forward_desc_init(&fd, cpu_fwd_prop(p), dnnl_softmax_accurate, &plain,
                                          &plain, axis) != dnnl_success ||
        deft_dnnl_pd_create(&fpd, &fd, p->eng, NULL, node->name, "softmax fwd", false) != dnnl_success)
        return DEFT_ERR_UNSUPPORTED;
    enum deft_status st;
    if (node->op == DEFT_OP_SOFTMAX) {
        int y = node->out[0], mx, my;
        st = cpu_bind_in(p, nd, x, &plain, &mx);
        if (!st) st = cpu_bind_out(p, nd, y, &plain, &my);
        int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}, mems[2] = {mx, my};
        if (!st) st = cpu_add_prim(p, nd, fpd, 2, args, mems);
        dnnl_primitive_desc_destroy(fpd);
        return st;
    }
    /* SOFTMAX_BWD: in dy, y; out dx */
    int dy = node->in[0], y = node->in[1], dx = node->out[0];
    dnnl_softmax_v2_desc_t d;
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = dnnl_softmax_v2_backward_desc_init(&d, dnnl_softmax_accurate, &plain, &plain,
                                                          &plain, axis);
    if (ds == dnnl_success) ds = deft_dnnl_pd_create(&pd, &d, p->eng, fpd, node->name, "softmax bwd", false);
    dnnl_primitive_desc_destroy(fpd);
    if (ds != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    int mdy, my, mdx;
    st = cpu_bind_in(p, nd, dy, &plain, &mdy);
    if (!st) st = cpu_bind_in(p, nd, y, &plain, &my);
    if (!st) st = cpu_bind_out(p, nd, dx, &plain, &mdx);
    int args[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_DST, DNNL_ARG_DIFF_SRC}, mems[3] = {mdy, my, mdx};
    if (!st) st = cpu_add_prim(p, nd, pd, 3, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* cpu_binary.c - elementwise add/mul with broadcasting, and REDUCE_TO (their
 * adjoint: a sum over the broadcast dimensions) on oneDNN binary/reduction.
 *
 * oneDNN broadcasts src1 only, so the full-shape operand becomes src0 (add
 * and mul commute); the output takes src0's layout. A full-shape src1 in
 * another layout is reordered to src0's first: the blocked kernels are much
 * faster than the mixed-layout ones.
 */
#include "backend/cpu/cpu_impl.h"

/* The plain md of shape s right-aligned to ndims (leading 1s). */
static void plain_aligned(const struct deft_shape *s, int ndims, dnnl_memory_desc_t *md) {
    int64_t d[DEFT_MAX_DIMS];
    int off = ndims - s->ndim;
    for (int i = 0; i < ndims; i++) d[i] = i < off ? 1 : s->d[i - off];
    deft_dnnl_md_plain_dims(md, ndims, d);
}

static enum deft_status compile_binary(struct cpu_prog *p, const struct deft_node *node,
                                       struct cpu_node *nd) {
    int a = node->in[0], b = node->in[1], y = node->out[0];
    const struct deft_shape *ys = &cpu_val(p, y)->shape;
    int s0 = a, s1 = b;
    if (!deft_shape_equal(&cpu_val(p, a)->shape, ys)) {
        if (!deft_shape_equal(&cpu_val(p, b)->shape, ys)) return DEFT_ERR_UNSUPPORTED;
        s0 = b;
        s1 = a;
    }
    if (ys->ndim < 1) return DEFT_ERR_UNSUPPORTED;
    const dnnl_memory_desc_t *md0 = &p->md[s0];
    const struct deft_shape *sh1 = &cpu_val(p, s1)->shape;
    dnnl_memory_desc_t view1, want1;
    if (deft_shape_equal(sh1, ys)) {
        view1 = p->md[s1];
        want1 = *md0;             /* same dims: match src0's layout */
    } else if (sh1->ndim == ys->ndim) {
        view1 = p->md[s1];
        want1 = view1;
    } else {
        if (!deft_dnnl_md_is_plain(&p->md[s1]) || sh1->ndim > ys->ndim) return DEFT_ERR_UNSUPPORTED;
        plain_aligned(sh1, ys->ndim, &view1);
        want1 = view1;
    }
    dnnl_binary_desc_t d;
    dnnl_primitive_desc_t pd;
    dnnl_alg_kind_t alg = node->op == DEFT_OP_ADD ? dnnl_binary_add : dnnl_binary_mul;
    if (dnnl_binary_desc_init(&d, alg, md0, &want1, md0) != dnnl_success ||
        deft_dnnl_pd_create(&pd, &d, p->eng, NULL, node->name, "binary", false) != dnnl_success)
        return DEFT_ERR_UNSUPPORTED;
    int m0, m1, my;
    enum deft_status st = cpu_bind_in(p, nd, s0, md0, &m0);
    if (!st) st = cpu_bind_in_as(p, nd, s1, &view1, &want1, &m1);
    if (!st) st = cpu_bind_out(p, nd, y, deft_dnnl_pd_md(pd, dnnl_query_dst_md, 0), &my);
    int args[3] = {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST}, mems[3] = {m0, m1, my};
    if (!st) st = cpu_add_prim(p, nd, pd, 3, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static enum deft_status compile_reduce(struct cpu_prog *p, const struct deft_node *node,
                                       struct cpu_node *nd) {
    int x = node->in[0], y = node->out[0];
    const struct deft_shape *xs = &cpu_val(p, x)->shape, *ys = &cpu_val(p, y)->shape;
    if (xs->ndim < 1 || ys->ndim > xs->ndim) return DEFT_ERR_UNSUPPORTED;
    dnnl_memory_desc_t yplain, yview;
    deft_dnnl_md_plain(&yplain, ys);
    plain_aligned(ys, xs->ndim, &yview);
    p->md[y] = yplain;
    p->md_set[y] = true;
    int mx, my;
    enum deft_status st;
    if (deft_shape_numel(xs) == deft_shape_numel(ys)) { /* nothing broadcast: a copy */
        st = cpu_mem_value(p, nd, x, &p->md[x], &mx);
        if (!st) st = cpu_mem_value(p, nd, y, &yview, &my);
        if (!st) st = cpu_add_reorder(p, nd, mx, my);
        return st;
    }
    dnnl_reduction_desc_t d;
    dnnl_primitive_desc_t pd;
    if (dnnl_reduction_desc_init(&d, dnnl_reduction_sum, &p->md[x], &yview, 0.f, 0.f) != dnnl_success ||
        deft_dnnl_pd_create(&pd, &d, p->eng, NULL, node->name, "reduction", false) != dnnl_success)
        return DEFT_ERR_UNSUPPORTED;
    st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &mx);
    if (!st) st = cpu_bind_out_as(p, nd, y, &yview, deft_dnnl_pd_md(pd, dnnl_query_dst_md, 0), &my);
    int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}, mems[2] = {mx, my};
    if (!st) st = cpu_add_prim(p, nd, pd, 2, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

enum deft_status cpu_compile_binary(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    if (node->op == DEFT_OP_REDUCE_TO) return compile_reduce(p, node, nd);
    return compile_binary(p, node, nd);
}

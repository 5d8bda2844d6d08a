/* cpu_pool.c - max/average pooling and global average pooling on oneDNN.
 *
 * Pooling keeps its input's layout. Max pooling trains with oneDNN's
 * workspace (the node's opaque output 1); a backward node without one
 * recomputes it in scratch. ceil_mode becomes extra right padding; for
 * average pooling with count_include_pad that extra padding must not count
 * (PyTorch divides by the window clipped to the declared padding), which
 * oneDNN cannot express, so that case runs on the reference kernels.
 */
#include "backend/cpu/cpu_impl.h"

struct pool_desc {
    dnnl_alg_kind_t alg;
    dnnl_dims_t kernel, stride, dil, pad_l, pad_r;
    int64_t src[4], dst[4];
};

static bool pool_geom(const struct deft_pool_attr *a, const struct deft_shape *x,
                      const struct deft_shape *y, struct pool_desc *pd) {
    if (x->ndim != 4 || y->ndim != 4) return false;
    for (int i = 0; i < 4; i++) {
        pd->src[i] = x->d[i];
        pd->dst[i] = y->d[i];
    }
    if (a->kind == DEFT_POOL_MAX) pd->alg = dnnl_pooling_max;
    else pd->alg = a->count_include_pad ? dnnl_pooling_avg_include_padding
                                        : dnnl_pooling_avg_exclude_padding;
    for (int i = 0; i < 2; i++) {
        int64_t k = a->kernel[i], s = a->stride[i] > 0 ? a->stride[i] : 1;
        int64_t pl = a->pad[i], pr = a->pad[2 + i];
        pd->kernel[i] = k;
        pd->stride[i] = s;
        pd->dil[i] = 0;
        pd->pad_l[i] = pl;
        /* The padding the output size really uses (ceil_mode adds some). */
        int64_t need = (y->d[2 + i] - 1) * s + k - x->d[2 + i] - pl;
        if (need > pr) {
            if (pd->alg == dnnl_pooling_avg_include_padding) return false;
            pr = need;
        }
        pd->pad_r[i] = pr;
    }
    return true;
}

static void global_geom(const struct deft_shape *x, struct pool_desc *pd) {
    for (int i = 0; i < 4; i++) {
        pd->src[i] = x->d[i];
        pd->dst[i] = i < 2 ? x->d[i] : 1;
    }
    pd->alg = dnnl_pooling_avg_exclude_padding;
    for (int i = 0; i < 2; i++) {
        pd->kernel[i] = x->d[2 + i];
        pd->stride[i] = 1;
        pd->dil[i] = 0;
        pd->pad_l[i] = pd->pad_r[i] = 0;
    }
}

static dnnl_status_t fwd_pd(struct cpu_prog *p, const struct pool_desc *g, const dnnl_memory_desc_t *src,
                            const char *name, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t dst;
    deft_dnnl_md_like(&dst, src, g->dst);
    dnnl_pooling_v2_desc_t d;
    dnnl_status_t st = dnnl_pooling_v2_forward_desc_init(&d, cpu_fwd_prop(p), g->alg, src, &dst,
                                                         g->stride, g->kernel, g->dil, g->pad_l,
                                                         g->pad_r);
    if (st != dnnl_success) return st;
    return deft_dnnl_pd_create(pd, &d, p->eng, NULL, name, "pool fwd", false);
}

static enum deft_status compile_fwd(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd,
                                    const struct pool_desc *g) {
    int x = node->in[0], y = node->out[0], ws = node->n_out > 1 ? node->out[1] : -1;
    dnnl_primitive_desc_t pd;
    if (fwd_pd(p, g, &p->md[x], node->name, &pd) != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    int mx, my, mws = -1;
    enum deft_status st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &mx);
    if (!st) st = cpu_bind_out(p, nd, y, deft_dnnl_pd_md(pd, dnnl_query_dst_md, 0), &my);
    const dnnl_memory_desc_t *wsmd = deft_dnnl_pd_md(pd, dnnl_query_workspace_md, 0);
    if (!st && wsmd->ndims > 0) {
        if (ws >= 0) {
            /* Opaque: the value holds oneDNN's workspace bytes as they are. */
            p->md[ws] = *wsmd;
            p->md_set[ws] = true;
            p->native_opaque[ws] = true;
            st = cpu_mem_value(p, nd, ws, wsmd, &mws);
        } else {
            st = cpu_mem_temp(p, nd, wsmd, &mws);
        }
    } else if (!st && ws >= 0) {
        /* An unused workspace output (average pooling): a plain dummy. */
        dnnl_memory_desc_t plain;
        deft_dnnl_md_plain(&plain, &cpu_val(p, ws)->shape);
        cpu_set_md(p, ws, &plain);
    }
    int args[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE}, mems[3] = {mx, my, mws};
    if (!st) st = cpu_add_prim(p, nd, pd, 3, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Backward: dx in layout dxmd, dy reordered to the same format. x/ws may be
 * -1 (global pooling has neither; max pooling without ws recomputes it). */
static enum deft_status compile_bwd(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd,
                                    const struct pool_desc *g, const dnnl_memory_desc_t *dxmd, int dy,
                                    int x, int ws, int dx) {
    bool is_max = g->alg == dnnl_pooling_max;
    if (is_max && ws >= 0 && !p->native_opaque[ws]) return DEFT_ERR_UNSUPPORTED;
    if (is_max && ws < 0 && x < 0) return DEFT_ERR_UNSUPPORTED;
    dnnl_primitive_desc_t hint, pd;
    if (fwd_pd(p, g, dxmd, node->name, &hint) != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    dnnl_memory_desc_t ddst;
    deft_dnnl_md_like(&ddst, dxmd, g->dst);
    dnnl_pooling_v2_desc_t d;
    dnnl_status_t ds = dnnl_pooling_v2_backward_desc_init(&d, g->alg, dxmd, &ddst, g->stride, g->kernel,
                                                          g->dil, g->pad_l, g->pad_r);
    if (ds == dnnl_success) ds = deft_dnnl_pd_create(&pd, &d, p->eng, hint, node->name, "pool bwd", false);
    if (ds != dnnl_success) {
        dnnl_primitive_desc_destroy(hint);
        return DEFT_ERR_UNSUPPORTED;
    }
    enum deft_status st = DEFT_OK;
    int mws = -1;
    const dnnl_memory_desc_t *wsmd = deft_dnnl_pd_md(pd, dnnl_query_workspace_md, 0);
    if (wsmd->ndims > 0) {
        if (ws >= 0) {
            if (!deft_dnnl_md_equal(&p->md[ws], wsmd)) st = DEFT_ERR_UNSUPPORTED;
            else st = cpu_mem_value(p, nd, ws, wsmd, &mws);
        } else {
            /* No saved workspace: run the forward pass into scratch first. */
            int mx, my;
            st = cpu_mem_temp(p, nd, wsmd, &mws);
            if (!st) st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(hint, dnnl_query_src_md, 0), &mx);
            if (!st) st = cpu_mem_temp(p, nd, deft_dnnl_pd_md(hint, dnnl_query_dst_md, 0), &my);
            int args[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE}, mems[3] = {mx, my, mws};
            if (!st) st = cpu_add_prim(p, nd, hint, 3, args, mems);
        }
    }
    dnnl_primitive_desc_destroy(hint);
    int mdy, mdx;
    if (!st) st = cpu_bind_in(p, nd, dy, deft_dnnl_pd_md(pd, dnnl_query_diff_dst_md, 0), &mdy);
    if (!st) st = cpu_bind_out(p, nd, dx, deft_dnnl_pd_md(pd, dnnl_query_diff_src_md, 0), &mdx);
    int args[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE, DNNL_ARG_DIFF_SRC}, mems[3] = {mdy, mws, mdx};
    if (!st) st = cpu_add_prim(p, nd, pd, 3, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

enum deft_status cpu_compile_pool(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    struct pool_desc g;
    switch (node->op) {
    case DEFT_OP_POOL:
        if (!pool_geom(&node->attr.pool, &cpu_val(p, node->in[0])->shape,
                       &cpu_val(p, node->out[0])->shape, &g))
            return DEFT_ERR_UNSUPPORTED;
        return compile_fwd(p, node, nd, &g);
    case DEFT_OP_GLOBAL_AVGPOOL:
        if (cpu_val(p, node->in[0])->shape.ndim != 4) return DEFT_ERR_UNSUPPORTED;
        global_geom(&cpu_val(p, node->in[0])->shape, &g);
        return compile_fwd(p, node, nd, &g);
    case DEFT_OP_POOL_BWD: {
        int dy = node->in[0], x = node->in[1], ws = node->n_in > 2 ? node->in[2] : -1;
        if (!pool_geom(&node->attr.pool, &cpu_val(p, x)->shape, &cpu_val(p, dy)->shape, &g))
            return DEFT_ERR_UNSUPPORTED;
        return compile_bwd(p, node, nd, &g, &p->md[x], dy, x, ws, node->out[0]);
    }
    case DEFT_OP_GLOBAL_AVGPOOL_BWD: {
        int dy = node->in[0], dx = node->out[0];
        const struct deft_shape *xs = &cpu_val(p, dx)->shape;
        if (xs->ndim != 4) return DEFT_ERR_UNSUPPORTED;
        global_geom(xs, &g);
        /* dx in the forward input's layout when the forward node is known. */
        dnnl_memory_desc_t dxmd;
        if (node->fwd >= 0 && !cpu_value_plain_required(p, dx))
            dxmd = p->md[deft_graph_node(p->g, node->fwd)->in[0]];
        else
            deft_dnnl_md_plain(&dxmd, xs);
        return compile_bwd(p, node, nd, &g, &dxmd, dy, -1, -1, dx);
    }
    default: return DEFT_ERR_UNSUPPORTED;
    }
}

/* cpu_conv.c - convolution and transposed convolution (forward training,
 * backward data, backward weights with bias) on oneDNN.
 *
 * Activations use the layout the forward pd picks with format_tag_any
 * (nChw16c on AVX-512). Weights stay plain in the graph ([K, C/g, R, S];
 * transposed: [C, K/g, R, S]); each call reorders them into the pd's layout
 * in scratch, and weight gradients are reordered back to plain. A small-C
 * plain input (the image) is handed to the conv as nchw, since padding C=3
 * to 16 would cost more than the conv gains.
 */
#include <stdlib.h>
#include <string.h>
#include "backend/cpu/cpu_impl.h"

/* Inputs with at most this many channels stay plain (first layer). */
#define CPU_CONV_PLAIN_SRC_MAX_C 8

struct conv_geom {
    bool transposed;
    int64_t src[4], dst[4];  /* N, C, H, W of the conv's src/dst (deconv: its own src/dst) */
    int64_t g, r, s;
    dnnl_dims_t stride, dil, pad_l, pad_r;
    dnnl_memory_desc_t w_plain;  /* the graph's weight bytes as oneDNN logical weights */
    dnnl_memory_desc_t w_any, b_plain;
};

static void geom_init(struct conv_geom *cg, const struct deft_attr *a, bool transposed,
                      const struct deft_shape *x, const struct deft_shape *y,
                      const struct deft_shape *w) {
    memset(cg, 0, sizeof *cg);
    cg->transposed = transposed;
    for (int i = 0; i < 4; i++) {
        cg->src[i] = x->d[i];
        cg->dst[i] = y->d[i];
    }
    const struct deft_conv_attr *c = &a->conv;
    cg->g = c->groups > 0 ? c->groups : 1;
    cg->r = w->d[2];
    cg->s = w->d[3];
    cg->stride[0] = c->stride[0];
    cg->stride[1] = c->stride[1];
    cg->dil[0] = c->dilation[0] > 0 ? c->dilation[0] - 1 : 0; /* oneDNN: 0 = dense */
    cg->dil[1] = c->dilation[1] > 0 ? c->dilation[1] - 1 : 0;
    cg->pad_l[0] = c->pad[0];
    cg->pad_l[1] = c->pad[1];
    cg->pad_r[0] = c->pad[2];
    cg->pad_r[1] = c->pad[3];
    if (transposed) {
        /* output_padding enlarges the output on the bottom/right: in oneDNN
         * terms that is a smaller right padding (it may go negative). */
        cg->pad_r[0] -= c->output_padding[0];
        cg->pad_r[1] -= c->output_padding[1];
    }
    int64_t ic = cg->src[1], oc = cg->dst[1], G = cg->g, R = cg->r, S = cg->s;
    dnnl_dims_t d = {0}, st = {0};
    int nd;
    if (G == 1) {
        nd = 4;
        d[0] = oc; d[1] = ic; d[2] = R; d[3] = S;
        if (!transposed) { st[0] = ic * R * S; st[1] = R * S; }
        else { st[0] = R * S; st[1] = oc * R * S; } /* graph: [IC, OC, R, S] */
        st[2] = S; st[3] = 1;
    } else {
        nd = 5;
        int64_t ocg = oc / G, icg = ic / G;
        d[0] = G; d[1] = ocg; d[2] = icg; d[3] = R; d[4] = S;
        if (!transposed) { st[0] = ocg * icg * R * S; st[1] = icg * R * S; st[2] = R * S; }
        else { st[0] = icg * ocg * R * S; st[1] = R * S; st[2] = ocg * R * S; }
        st[3] = S; st[4] = 1;
    }
    dnnl_memory_desc_init_by_strides(&cg->w_plain, nd, d, dnnl_f32, st);
    dnnl_memory_desc_init_by_tag(&cg->w_any, nd, d, dnnl_f32, dnnl_format_tag_any);
    dnnl_dims_t bd = {oc};
    dnnl_memory_desc_init_by_tag(&cg->b_plain, 1, bd, dnnl_f32, dnnl_a);
}

/* Winograd F(4x4, 3x3) for dense 3x3 stride-1 convolutions with channels in
 * whole 16-blocks: 2.25x fewer multiplications, measured 1.3x (YOLOv4-tiny)
 * to 1.4x (YOLOv4-ResNet18) faster training steps on AVX-512 at batch 8 and
 * faster at batch 1 too (bench/yolo_speed.sh); rounding stays ~1e-6 relative
 * (test_cpu_vs_ref). DEFT_CONV_ALGO=direct turns it off. oneDNN builds
 * without the kernel (no AVX-512) refuse the pd and the direct one is used. */
static bool winograd_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("DEFT_CONV_ALGO");
        on = !(v && strcmp(v, "direct") == 0);
    }
    return on;
}

/* The algorithms to try for a (non-transposed) convolution, best first. */
static int conv_algs(const struct conv_geom *cg, dnnl_alg_kind_t algs[2]) {
    int n = 0;
    if (winograd_enabled() && cg->g == 1 && cg->r == 3 && cg->s == 3 && cg->stride[0] == 1 &&
        cg->stride[1] == 1 && cg->dil[0] == 0 && cg->dil[1] == 0 && cg->src[1] % 16 == 0 &&
        cg->dst[1] % 16 == 0)
        algs[n++] = dnnl_convolution_winograd;
    algs[n++] = dnnl_convolution_direct;
    return n;
}

/* src md for a conv reading value x: plain for a small-C plain input, any otherwise. */
static void src_choice(const struct cpu_prog *p, int x, const int64_t *dims, dnnl_memory_desc_t *md) {
    if (x >= 0 && p->md_set[x] && deft_dnnl_md_is_plain(&p->md[x]) &&
        dims[1] <= CPU_CONV_PLAIN_SRC_MAX_C)
        *md = p->md[x];
    else
        deft_dnnl_md_any(md, 4, dims);
}

static dnnl_status_t fwd_pd(struct cpu_prog *p, const struct conv_geom *cg,
                            const dnnl_memory_desc_t *src, bool bias, const char *name,
                            dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t dst;
    deft_dnnl_md_any(&dst, 4, cg->dst);
    dnnl_status_t st;
    if (!cg->transposed) {
        dnnl_alg_kind_t algs[2];
        st = dnnl_unimplemented;
        for (int i = 0, n = conv_algs(cg, algs); i < n && st != dnnl_success; i++) {
            dnnl_convolution_desc_t d;
            st = dnnl_dilated_convolution_forward_desc_init(
                &d, dnnl_forward_training, algs[i], src, &cg->w_any, bias ? &cg->b_plain : NULL, &dst, cg->stride, cg->dil, cg->pad_l,
                cg->pad_r);
            if (st == dnnl_success) st = deft_dnnl_pd_create(pd, &d, p->eng, NULL, name, "conv fwd", true);
        }
        return st;
    }
    dnnl_deconvolution_desc_t d;
    st = dnnl_dilated_deconvolution_forward_desc_init(
        &d, dnnl_forward_training, dnnl_deconvolution_direct, src, &cg->w_any,
        bias ? &cg->b_plain : NULL, &dst, cg->stride, cg->dil, cg->pad_l, cg->pad_r);
    if (st != dnnl_success) return st;
    return deft_dnnl_pd_create(pd, &d, p->eng, NULL, name, "deconv fwd", false);
}

static enum deft_status unsupported(const char *name, const char *what, dnnl_status_t st) {
    return deft_set_error(DEFT_ERR_UNSUPPORTED, "cpu: %s: oneDNN has no %s (%s)", name, what,
                          deft_dnnl_status_str(st));
}

static enum deft_status compile_fwd(struct cpu_prog *p, const struct deft_node *node,
                                    struct cpu_node *nd, bool transposed) {
    int x = node->in[0], w = node->in[1], b = node->n_in > 2 ? node->in[2] : -1, y = node->out[0];
    struct conv_geom cg;
    geom_init(&cg, &node->attr, transposed, &cpu_val(p, x)->shape, &cpu_val(p, y)->shape,
              &cpu_val(p, w)->shape);
    dnnl_memory_desc_t src;
    src_choice(p, x, cg.src, &src);
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = fwd_pd(p, &cg, &src, b >= 0, node->name, &pd);
    if (ds != dnnl_success) return unsupported(node->name, "forward convolution", ds);
    int ms, mw, mb = -1, my;
    enum deft_status st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &ms);
    if (!st) st = cpu_bind_in_as(p, nd, w, &cg.w_plain, deft_dnnl_pd_md(pd, dnnl_query_weights_md, 0), &mw);
    if (!st && b >= 0)
        st = cpu_bind_in(p, nd, b, deft_dnnl_pd_md(pd, dnnl_query_weights_md, 1), &mb);
    if (!st) st = cpu_bind_out(p, nd, y, deft_dnnl_pd_md(pd, dnnl_query_dst_md, 0), &my);
    int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    int mems[4] = {ms, mw, mb, my};
    if (!st) st = cpu_add_prim(p, nd, pd, 4, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* The forward pd used as the hint of a backward pd, built from the shapes the
 * backward node sees (and the forward input's layout when the node is known). */
static dnnl_status_t hint_pd(struct cpu_prog *p, const struct deft_node *node, const struct conv_geom *cg,
                             dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t src;
    int x = -1;
    if (node->fwd >= 0) x = deft_graph_node(p->g, node->fwd)->in[0];
    src_choice(p, x, cg->src, &src);
    return fwd_pd(p, cg, &src, node->attr.has_bias, node->name, pd);
}

static enum deft_status compile_bwd_data(struct cpu_prog *p, const struct deft_node *node,
                                         struct cpu_node *nd, bool transposed) {
    int dy = node->in[0], w = node->in[1], dx = node->out[0];
    struct conv_geom cg;
    geom_init(&cg, &node->attr, transposed, &cpu_val(p, dx)->shape, &cpu_val(p, dy)->shape,
              &cpu_val(p, w)->shape);
    dnnl_primitive_desc_t hint, pd;
    dnnl_status_t ds = hint_pd(p, node, &cg, &hint);
    if (ds != dnnl_success) return unsupported(node->name, "forward convolution (hint)", ds);
    dnnl_memory_desc_t dsrc, ddst;
    deft_dnnl_md_any(&dsrc, 4, cg.src);
    deft_dnnl_md_any(&ddst, 4, cg.dst);
    if (!transposed) {
        dnnl_alg_kind_t algs[2];
        ds = dnnl_unimplemented;
        for (int i = 0, n = conv_algs(&cg, algs); i < n && ds != dnnl_success; i++) {
            dnnl_convolution_desc_t d;
            ds = dnnl_dilated_convolution_backward_data_desc_init(
                &d, algs[i], &dsrc, &cg.w_any,
                &ddst, cg.stride, cg.dil, cg.pad_l, cg.pad_r);
            if (ds == dnnl_success)
                ds = deft_dnnl_pd_create(&pd, &d, p->eng, hint, node->name, "conv bwd data", true);
        }
    } else {
        dnnl_deconvolution_desc_t d;
        ds = dnnl_dilated_deconvolution_backward_data_desc_init(
            &d, dnnl_deconvolution_direct, &dsrc, &cg.w_any, &ddst, cg.stride, cg.dil, cg.pad_l,
            cg.pad_r);
        if (ds == dnnl_success)
            ds = deft_dnnl_pd_create(&pd, &d, p->eng, hint, node->name, "deconv bwd data", false);
    }
    dnnl_primitive_desc_destroy(hint);
    if (ds != dnnl_success) return unsupported(node->name, "backward-data convolution", ds);
    int mdy, mw, mdx;
    enum deft_status st = cpu_bind_in(p, nd, dy, deft_dnnl_pd_md(pd, dnnl_query_diff_dst_md, 0), &mdy);
    if (!st) st = cpu_bind_in_as(p, nd, w, &cg.w_plain, deft_dnnl_pd_md(pd, dnnl_query_weights_md, 0), &mw);
    if (!st) st = cpu_bind_out(p, nd, dx, deft_dnnl_pd_md(pd, dnnl_query_diff_src_md, 0), &mdx);
    int args[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    int mems[3] = {mdy, mw, mdx};
    if (!st) st = cpu_add_prim(p, nd, pd, 3, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static enum deft_status compile_bwd_weights(struct cpu_prog *p, const struct deft_node *node,
                                            struct cpu_node *nd, bool transposed) {
    int dy = node->in[0], x = node->in[1], dw = node->out[0];
    int db = node->attr.has_bias && node->n_out > 1 ? node->out[1] : -1;
    bool bias = node->attr.has_bias;
    struct conv_geom cg;
    geom_init(&cg, &node->attr, transposed, &cpu_val(p, x)->shape, &cpu_val(p, dy)->shape,
              &cpu_val(p, dw)->shape);
    dnnl_primitive_desc_t hint, pd;
    dnnl_status_t ds = hint_pd(p, node, &cg, &hint);
    if (ds != dnnl_success) return unsupported(node->name, "forward convolution (hint)", ds);
    dnnl_memory_desc_t src, ddst;
    src_choice(p, x, cg.src, &src);
    deft_dnnl_md_any(&ddst, 4, cg.dst);
    if (!transposed) {
        dnnl_alg_kind_t algs[2];
        ds = dnnl_unimplemented;
        for (int i = 0, n = conv_algs(&cg, algs); i < n && ds != dnnl_success; i++) {
            dnnl_convolution_desc_t d;
            ds = dnnl_dilated_convolution_backward_weights_desc_init(
                &d, algs[i], &src, &cg.w_any,
                bias ? &cg.b_plain : NULL, &ddst, cg.stride, cg.dil, cg.pad_l, cg.pad_r);
            if (ds == dnnl_success)
                ds = deft_dnnl_pd_create(&pd, &d, p->eng, hint, node->name, "conv bwd weights", true);
        }
    } else {
        dnnl_deconvolution_desc_t d;
        ds = dnnl_dilated_deconvolution_backward_weights_desc_init(
            &d, dnnl_deconvolution_direct, &src, &cg.w_any, bias ? &cg.b_plain : NULL, &ddst,
            cg.stride, cg.dil, cg.pad_l, cg.pad_r);
        if (ds == dnnl_success)
            ds = deft_dnnl_pd_create(&pd, &d, p->eng, hint, node->name, "deconv bwd weights", false);
    }
    dnnl_primitive_desc_destroy(hint);
    if (ds != dnnl_success) return unsupported(node->name, "backward-weights convolution", ds);
    int mdy, mx, mdw, mdb = -1;
    enum deft_status st = cpu_bind_in(p, nd, dy, deft_dnnl_pd_md(pd, dnnl_query_diff_dst_md, 0), &mdy);
    if (!st) st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &mx);
    if (!st) st = cpu_bind_out_as(p, nd, dw, &cg.w_plain,
                                  deft_dnnl_pd_md(pd, dnnl_query_diff_weights_md, 0), &mdw);
    if (!st && bias) {
        const dnnl_memory_desc_t *bmd = deft_dnnl_pd_md(pd, dnnl_query_diff_weights_md, 1);
        if (db >= 0) st = cpu_bind_out_as(p, nd, db, &cg.b_plain, bmd, &mdb);
        else st = cpu_mem_temp(p, nd, bmd, &mdb);
    }
    int args[4] = {DNNL_ARG_DIFF_DST, DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
    int mems[4] = {mdy, mx, mdw, mdb};
    if (!st) st = cpu_add_prim(p, nd, pd, 4, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

enum deft_status cpu_compile_conv(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    /* Only 4-D NCHW tensors reach oneDNN's 2-D convolutions. */
    for (int i = 0; i < node->n_in; i++)
        if (node->in[i] >= 0 && i < 2 && cpu_val(p, node->in[i])->shape.ndim != 4)
            return DEFT_ERR_UNSUPPORTED;
    switch (node->op) {
    case DEFT_OP_CONV2D: return compile_fwd(p, node, nd, false);
    case DEFT_OP_CONV_TRANSPOSE2D: return compile_fwd(p, node, nd, true);
    case DEFT_OP_CONV2D_BWD_DATA: return compile_bwd_data(p, node, nd, false);
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA: return compile_bwd_data(p, node, nd, true);
    case DEFT_OP_CONV2D_BWD_WEIGHTS: return compile_bwd_weights(p, node, nd, false);
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS: return compile_bwd_weights(p, node, nd, true);
    default: return DEFT_ERR_UNSUPPORTED;
    }
}

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
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cpu/cpu_impl.h"

/* Inputs with at most this many channels stay plain (first layer). */
#define CPU_CONV_PLAIN_SRC_MAX_C 8

void cpu_conv_geom_init(struct conv_geom *cg, const struct deft_attr *a, bool transposed,
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
 * (test_cpu_vs_ref). Training only by default: for inference its
 * transformed weights and scratchpad cost more memory than it saves time
 * (resnet18 engine, batch 16, AMX Xeon: 369 MiB peak RSS and +8% img/s
 * against 252 MiB direct; onnxruntime 329 MiB), and at small batches it was
 * 1.5-3x slower. A trainer's validation runtime asks for it at batch >= 8
 * (runtime opts .winograd: DetectNet_v2's 512-channel 26x20 layers at batch 8,
 * Zen 4: 32 ms against 91 ms direct). DEFT_CONV_ALGO=direct turns it off,
 * =winograd on for every inference at batch >= 8. oneDNN builds without the kernel (no
 * AVX-512) refuse the pd and the direct one is used. */
static int winograd_mode(void) { /* 0 off, 1 training, 2 training and inference */
    static int mode = -1;
    if (mode < 0) {
        const char *v = getenv("DEFT_CONV_ALGO");
        mode = v && !strcmp(v, "direct") ? 0 : v && !strcmp(v, "winograd") ? 2 : 1;
    }
    return mode;
}

/* The algorithms to try for a (non-transposed) convolution, best first. */
static int conv_algs(const struct cpu_prog *p, const struct conv_geom *cg, dnnl_alg_kind_t algs[2]) {
    int n = 0;
    int wino = winograd_mode();
    if (wino && !(p->inference && ((wino < 2 && !p->winograd) || cg->src[0] < 8)) && cg->g == 1 && cg->r == 3 && cg->s == 3 && cg->stride[0] == 1 &&
        cg->stride[1] == 1 && cg->dil[0] == 0 && cg->dil[1] == 0 && cg->src[1] % 16 == 0 &&
        cg->dst[1] % 16 == 0)
        algs[n++] = dnnl_convolution_winograd;
    algs[n++] = dnnl_convolution_direct;
    return n;
}

bool cpu_conv_node_winograd(const struct cpu_prog *p, const struct deft_node *conv) {
    if (conv->op != DEFT_OP_CONV2D || conv->n_in < 2 || conv->in[1] < 0 || cpu_val(p, conv->in[0])->shape.ndim != 4)
        return false;
    struct conv_geom cg;
    cpu_conv_geom_init(&cg, &conv->attr, false, &cpu_val(p, conv->in[0])->shape, &cpu_val(p, conv->out[0])->shape,
                       &cpu_val(p, conv->in[1])->shape);
    dnnl_alg_kind_t algs[2];
    return conv_algs(p, &cg, algs) > 1 && algs[0] == dnnl_convolution_winograd;
}

/* src md for a conv reading value x: plain for a small-C plain input, any otherwise. */
static bool infer_layout(const struct cpu_prog *p, const int64_t *dims, dnnl_memory_desc_t *md);
static void src_choice(const struct cpu_prog *p, int x, const int64_t *dims, dnnl_memory_desc_t *md) {
    if (x >= 0 && p->md_set[x] && !(deft_dnnl_md_is_plain(&p->md[x]) && dims[1] <= CPU_CONV_PLAIN_SRC_MAX_C) &&
        infer_layout(p, dims, md))
        return;
    if (x >= 0 && p->md_set[x] && deft_dnnl_md_is_plain(&p->md[x]) &&
        dims[1] <= CPU_CONV_PLAIN_SRC_MAX_C)
        *md = p->md[x];
    else
        deft_dnnl_md_any(md, 4, dims);
}

/* Inference activations keep one layout from convolution to convolution
 * (oneDNN's `any` picks nchw, nhwc or nChw16c per layer for inference,
 * and every switch costs a reorder): nChw16c by default, DEFT_INFER_LAYOUT=
 * nhwc or any to compare. Returns false for `any`. */
static bool infer_layout(const struct cpu_prog *p, const int64_t *dims, dnnl_memory_desc_t *md) {
    static int mode = -1; /* 0 any, 1 nChw16c, 2 nhwc */
    if (mode < 0) {
        const char *v = getenv("DEFT_INFER_LAYOUT");
        mode = v && !strcmp(v, "any") ? 0 : v && !strcmp(v, "nhwc") ? 2 : 1;
    }
    if (!p->inference || mode == 0) return false;
    dnnl_dims_t d = {dims[0], dims[1], dims[2], dims[3]};
    return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, mode == 1 ? dnnl_aBcd16b : dnnl_acdb) ==
           dnnl_success;
}

static dnnl_status_t fwd_pd_po(struct cpu_prog *p, const struct conv_geom *cg,
                               const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst_want,
                               bool bias, const_dnnl_post_ops_t po, const char *name,
                               dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t dst;
    if (dst_want) dst = *dst_want;
    else if (!infer_layout(p, cg->dst, &dst)) deft_dnnl_md_any(&dst, 4, cg->dst);
    else { /* the pinned layout must not cost a reference kernel: else let oneDNN choose */
        dnnl_memory_desc_t any;
        deft_dnnl_md_any(&any, 4, cg->dst);
        dnnl_status_t st = fwd_pd_po(p, cg, src, &dst, bias, po, name, pd);
        if (st != dnnl_success || !strstr(deft_dnnl_pd_impl(*pd), "ref")) return st;
        dnnl_primitive_desc_destroy(*pd);
        return fwd_pd_po(p, cg, src, &any, bias, po, name, pd);
    }
    dnnl_status_t st;
    if (!cg->transposed) {
        dnnl_alg_kind_t algs[2];
        st = dnnl_unimplemented;
        for (int i = 0, n = conv_algs(p, cg, algs); i < n && st != dnnl_success; i++) {
            dnnl_convolution_desc_t d;
            st = dnnl_dilated_convolution_forward_desc_init(
                &d, cpu_fwd_prop(p), algs[i], src, &cg->w_any, bias ? &cg->b_plain : NULL, &dst, cg->stride, cg->dil, cg->pad_l,
                cg->pad_r);
            if (st == dnnl_success)
                st = deft_dnnl_pd_create_po(pd, &d, p->eng, NULL, po, name, "conv fwd", true);
        }
        return st;
    }
    dnnl_deconvolution_desc_t d;
    st = dnnl_dilated_deconvolution_forward_desc_init(
        &d, cpu_fwd_prop(p), dnnl_deconvolution_direct, src, &cg->w_any,
        bias ? &cg->b_plain : NULL, &dst, cg->stride, cg->dil, cg->pad_l, cg->pad_r);
    if (st != dnnl_success) return st;
    return deft_dnnl_pd_create_po(pd, &d, p->eng, NULL, po, name, "deconv fwd", false);
}

static dnnl_status_t fwd_pd(struct cpu_prog *p, const struct conv_geom *cg,
                            const dnnl_memory_desc_t *src, bool bias, const char *name,
                            dnnl_primitive_desc_t *pd) {
    return fwd_pd_po(p, cg, src, NULL, bias, NULL, name, pd);
}

/* ---- weights prepared once per parameter version (inference) ---- */

struct fold_priv {
    int w, b, gamma, beta, mean, var;   /* mems (b -1: no conv bias) */
    int wout, bout;                     /* folded plain weights, bias */
    int64_t k, per_k;
    float eps;
};

/* Batch norm folded into the convolution: s = gamma / sqrt(var + eps),
 * w' = w * s (per output channel), b' = (b - mean) * s + beta. */
static enum deft_status fold_bn(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    (void)p; (void)s; (void)rc;
    const struct fold_priv *f = nd->priv;
    const float *w = cpu_mem_ptr(nd, f->w, ptr, scratch);
    const float *b = f->b >= 0 ? cpu_mem_ptr(nd, f->b, ptr, scratch) : NULL;
    const float *g = cpu_mem_ptr(nd, f->gamma, ptr, scratch), *be = cpu_mem_ptr(nd, f->beta, ptr, scratch);
    const float *mean = cpu_mem_ptr(nd, f->mean, ptr, scratch), *var = cpu_mem_ptr(nd, f->var, ptr, scratch);
    float *wo = cpu_mem_ptr(nd, f->wout, ptr, scratch), *bo = cpu_mem_ptr(nd, f->bout, ptr, scratch);
    for (int64_t k = 0; k < f->k; k++) {
        double sc = (double)g[k] / sqrt((double)var[k] + (double)f->eps);
        for (int64_t i = 0; i < f->per_k; i++) wo[k * f->per_k + i] = (float)(w[k * f->per_k + i] * sc);
        bo[k] = (float)(((b ? (double)b[k] : 0.0) - mean[k]) * sc + be[k]);
    }
    return DEFT_OK;
}

/* Weights (and bias) of an inference convolution in the pd's layout, kept
 * in owned buffers and refreshed only when the params change: the reorder
 * (and the batch-norm fold when bn >= 0) become the node's prep steps. */
static enum deft_status bind_prepared(struct cpu_prog *p, struct cpu_node *nd, const struct deft_node *node,
                                      const struct conv_geom *cg, const_dnnl_primitive_desc_t pd,
                                      const struct deft_node *bn, int *mw, int *mb) {
    int w = node->in[1], b = node->n_in > 2 ? node->in[2] : -1;
    const dnnl_memory_desc_t *wmd = deft_dnnl_pd_md(pd, dnnl_query_weights_md, 0);
    bool plain = deft_dnnl_md_equal(wmd, &cg->w_plain);
    enum deft_status st;
    int src;
    *mb = -1;
    if (!bn) {
        if (b >= 0 && (st = cpu_mem_value(p, nd, b, &cg->b_plain, mb))) return st;
        if (plain) return cpu_mem_value(p, nd, w, &cg->w_plain, mw);
        if ((st = cpu_mem_value(p, nd, w, &cg->w_plain, &src)) || (st = cpu_mem_owned(p, nd, wmd, mw)) ||
            (st = cpu_add_reorder(p, nd, src, *mw)))
            return st;
        nd->nprep = nd->nsteps;
        return DEFT_OK;
    }
    struct fold_priv *f = deft_calloc(1, sizeof *f);
    if (!f) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling a fused convolution");
    nd->priv = f;
    f->b = -1;
    f->eps = bn->attr.bn.eps;
    f->k = cg->dst[1];
    f->per_k = deft_shape_numel(&cpu_val(p, w)->shape) / (f->k > 0 ? f->k : 1);
    dnnl_memory_desc_t cmd = cg->b_plain;
    if ((st = cpu_mem_value(p, nd, w, &cg->w_plain, &f->w)) ||
        (b >= 0 && (st = cpu_mem_value(p, nd, b, &cmd, &f->b))) ||
        (st = cpu_mem_value(p, nd, bn->in[1], &cmd, &f->gamma)) ||
        (st = cpu_mem_value(p, nd, bn->in[2], &cmd, &f->beta)) ||
        (st = cpu_mem_value(p, nd, bn->in[3], &cmd, &f->mean)) ||
        (st = cpu_mem_value(p, nd, bn->in[4], &cmd, &f->var)) ||
        (st = cpu_mem_owned(p, nd, &cmd, &f->bout)) ||
        (st = (plain ? cpu_mem_owned : cpu_mem_temp)(p, nd, &cg->w_plain, &f->wout)) ||
        (st = cpu_add_fn(p, nd, fold_bn, -1, -1, -1, -1)))
        return st;
    *mb = f->bout;
    *mw = f->wout;
    if (!plain && ((st = cpu_mem_owned(p, nd, wmd, mw)) || (st = cpu_add_reorder(p, nd, f->wout, *mw))))
        return st;
    nd->nprep = nd->nsteps;
    return DEFT_OK;
}

static bool prepared_weights(const struct cpu_prog *p, const struct deft_node *node) {
    int w = node->in[1];
    return p->inference && w >= 0 && cpu_val(p, w)->kind != DEFT_VALUE_NODE;
}

static enum deft_status unsupported(const char *name, const char *what, dnnl_status_t st) {
    return deft_set_error(DEFT_ERR_UNSUPPORTED, "cpu: %s: oneDNN has no %s (%s)", name, what,
                          deft_dnnl_status_str(st));
}

static enum deft_status compile_fwd(struct cpu_prog *p, const struct deft_node *node,
                                    struct cpu_node *nd, bool transposed) {
    int x = node->in[0], w = node->in[1], b = node->n_in > 2 ? node->in[2] : -1, y = node->out[0];
    struct conv_geom cg;
    cpu_conv_geom_init(&cg, &node->attr, transposed, &cpu_val(p, x)->shape, &cpu_val(p, y)->shape,
              &cpu_val(p, w)->shape);
    if (transposed) { /* the four-phase form when the geometry allows it (cpu_deconv_phase.c) */
        enum deft_status ps = cpu_compile_deconv_phase(p, node, nd, &cg);
        if (ps != DEFT_ERR_UNSUPPORTED) return ps;
    }
    dnnl_memory_desc_t src;
    src_choice(p, x, cg.src, &src);
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = fwd_pd(p, &cg, &src, b >= 0, node->name, &pd);
    if (ds != dnnl_success) return unsupported(node->name, "forward convolution", ds);
    int ms, mw, mb = -1, my;
    enum deft_status st = DEFT_OK;
    if (prepared_weights(p, node) && !transposed) {
        st = bind_prepared(p, nd, node, &cg, pd, NULL, &mw, &mb);
    } else {
        st = cpu_bind_in_as(p, nd, w, &cg.w_plain, deft_dnnl_pd_md(pd, dnnl_query_weights_md, 0), &mw);
        if (!st && b >= 0)
            st = cpu_bind_in(p, nd, b, deft_dnnl_pd_md(pd, dnnl_query_weights_md, 1), &mb);
    }
    if (!st) st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &ms);
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
    cpu_conv_geom_init(&cg, &node->attr, transposed, &cpu_val(p, dx)->shape, &cpu_val(p, dy)->shape,
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
        for (int i = 0, n = conv_algs(p, &cg, algs); i < n && ds != dnnl_success; i++) {
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
    cpu_conv_geom_init(&cg, &node->attr, transposed, &cpu_val(p, x)->shape, &cpu_val(p, dy)->shape,
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
        for (int i = 0, n = conv_algs(p, &cg, algs); i < n && ds != dnnl_success; i++) {
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

/* ---- an inference chain as one convolution (cpu_fuse.c) ---- */

static dnnl_status_t fused_post_ops(struct cpu_prog *p, const struct cpu_fusion *f, dnnl_post_ops_t *po) {
    dnnl_status_t st = dnnl_post_ops_create(po);
    for (int i = 0; i < f->nops && st == dnnl_success; i++) {
        const struct cpu_fuse_op *op = &f->ops[i];
        if (op->add) st = dnnl_post_ops_append_binary(*po, dnnl_binary_add, &p->md[op->value]);
        else st = dnnl_post_ops_append_eltwise(*po, 1.0f, op->alg, op->alpha, op->beta);
    }
    if (st != dnnl_success && *po) {
        dnnl_post_ops_destroy(*po);
        *po = NULL;
    }
    return st;
}

enum deft_status cpu_compile_conv_fused(struct cpu_prog *p, const struct cpu_fusion *f, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, f->conv);
    const struct deft_node *bn = f->bn >= 0 ? deft_graph_node(p->g, f->bn) : NULL;
    int x = node->in[0], y = f->out;
    struct conv_geom cg;
    cpu_conv_geom_init(&cg, &node->attr, false, &cpu_val(p, x)->shape, &cpu_val(p, node->out[0])->shape,
              &cpu_val(p, node->in[1])->shape);
    dnnl_memory_desc_t src;
    src_choice(p, x, cg.src, &src);
    dnnl_post_ops_t po;
    dnnl_status_t ds = fused_post_ops(p, f, &po);
    if (ds != dnnl_success) return deft_dnnl_error(ds, "dnnl_post_ops_append");
    bool bias = bn || (node->n_in > 2 && node->in[2] >= 0);
    dnnl_primitive_desc_t pd;
    ds = fwd_pd_po(p, &cg, &src, NULL, bias, po, node->name, &pd);
    /* A binary add may want the residual's own layout for dst. */
    for (int i = 0; i < f->nops && ds != dnnl_success; i++)
        if (f->ops[i].add) ds = fwd_pd_po(p, &cg, &src, &p->md[f->ops[i].value], bias, po, node->name, &pd);
    dnnl_post_ops_destroy(po);
    if (ds != dnnl_success)
        return deft_set_error(DEFT_ERR_BACKEND,
                              "cpu: %s: oneDNN has no convolution with these fused post-ops (%s); "
                              "build the runtime with no_fuse", node->name, deft_dnnl_status_str(ds));
    int ms, mw, mb, my, mr[CPU_FUSE_MAX_OPS];
    enum deft_status st = bind_prepared(p, nd, node, &cg, pd, bn, &mw, &mb);
    if (!st) st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &ms);
    int args[4 + CPU_FUSE_MAX_OPS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    int mems[4 + CPU_FUSE_MAX_OPS], nargs = 4;
    for (int i = 0; i < f->nops && !st; i++) {
        if (!f->ops[i].add) continue;
        st = cpu_mem_value(p, nd, f->ops[i].value, &p->md[f->ops[i].value], &mr[i]);
        args[nargs] = DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1;
        mems[nargs++] = mr[i];
    }
    if (!st) st = cpu_bind_out(p, nd, y, deft_dnnl_pd_md(pd, dnnl_query_dst_md, 0), &my);
    mems[0] = ms;
    mems[1] = mw;
    mems[2] = mb;
    mems[3] = my;
    if (!st) st = cpu_add_prim(p, nd, pd, nargs, args, mems);
    dnnl_primitive_desc_destroy(pd);
    deft_log(DEFT_LOG_DEBUG, "cpu: %s fused: conv%s%s", node->name, bn ? " + batchnorm" : "",
             f->nops ? " + post-ops" : "");
    return st;
}

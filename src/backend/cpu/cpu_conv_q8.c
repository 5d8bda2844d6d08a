/* cpu_conv_q8.c - an inference chain (cpu_fuse.c) as one int8 oneDNN
 * convolution: u8/s8 source, s8 weights per output channel, f32 bias,
 * per-channel output scales, the activations as eltwise post-ops and the
 * residual add as a sum post-op.
 *
 * Every quantity after the output scale is in units of the destination:
 * s_dst for an int8 output, 1 for an f32 one (dequantized here). So
 *     output_scale[k] = s_src * s_w[k] / s_dst,
 *     bias (oneDNN 2.6 adds it to the s32 accumulator) = b[k] / (s_src * s_w[k]),
 *     ReLU6's bound = 6 / s_dst, the residual's sum scale = s_res / s_dst.
 * The weights (batch norm folded, as the f32 chain does) are quantized
 * symmetrically per output channel, s_w[k] = max|w'[k]| / 127, when they are
 * prepared (once per parameter version); oneDNN 2.6 takes output scales only
 * when a primitive is created, so the convolution primitive is created
 * again at that moment with the real scales (the compile-time one, with
 * placeholder scales, fixes layouts and the scratchpad size).
 * Activations are u8 where they cannot be negative (after ReLU/ReLU6, max
 * pooling of those) - VNNI multiplies u8 by s8 natively - and s8 otherwise;
 * an f32 input is quantized by a scaled reorder. Layout: nhwc, which the
 * int8 brgconv kernels take.
 *
 * bf16 and f32-nhwc (p->fchain) take the same path with every scale 1:
 * bf16 (f32) source, weights and chain outputs between such chains, f32
 * bias, no output scales (the weights are folded in f32 and reordered to
 * the chain's type). f32-nhwc is the fp32 engines' alternative to the
 * blocked chains of cpu_conv.c: oneDNN's nhwc brgconv kernels, faster on
 * some networks (resnet18 at batch 1), slower on others.
 */
#include <math.h>
#include <string.h>
#include "backend/cpu/cpu_impl.h"

struct q8_priv {
    int w, b, gamma, beta, mean, var; /* f32 value mems (b, bn: -1 when absent) */
    int wq, bq;                       /* owned: plain s8 weights, bias in accumulator units */
    int conv_step;                    /* the convolution's step (its primitive is replaced) */
    int64_t k, per_k;
    float eps, s_src, s_dst;          /* s_dst 1: f32 output */
    bool dst_u8;
    /* the residual: copied into the destination buffer (as res_dt, with
     * res_scale) before the convolution accumulates onto it with sum_scale */
    int res;
    dnnl_data_type_t res_dt;
    float res_scale, sum_scale;
    struct cpu_fusion f;
    dnnl_convolution_desc_t desc;
    dnnl_memory_desc_t w_md_copy;     /* the compile-time pd's weights layout */
    size_t pad_bytes;
    const char *name;
    float oscale[];                   /* k */
};

/* Can v not be negative? (ReLU/ReLU6 outputs, poolings and concatenations of them.) */
static bool nonneg(const struct cpu_prog *p, int v, int depth) {
    const struct deft_value *val = cpu_val(p, v);
    if (depth > 8 || val->kind != DEFT_VALUE_NODE || val->producer < 0) return false;
    const struct deft_node *n = deft_graph_node(p->g, val->producer);
    if (n->op == DEFT_OP_ACT) return n->attr.act.kind == DEFT_ACT_RELU || n->attr.act.kind == DEFT_ACT_RELU6;
    if (n->op == DEFT_OP_POOL || n->op == DEFT_OP_GLOBAL_AVGPOOL) return nonneg(p, n->in[0], depth + 1);
    if (n->op != DEFT_OP_CONCAT) return false;
    for (int i = 0; i < n->n_in; i++)
        if (!nonneg(p, n->in[i], depth + 1)) return false;
    return n->n_in > 0;
}

static dnnl_data_type_t q8_type(const struct cpu_prog *p, int v) {
    if (p->fchain) return p->fchain_dt;
    return nonneg(p, v, 0) ? dnnl_u8 : dnnl_s8;
}

static void nhwc(dnnl_memory_desc_t *md, const int64_t *d, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {d[0], d[1], d[2], d[3]};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dt, dnnl_acdb);
}

/* The chain's post-ops in destination units. A u8 output is clipped at 127
 * like an s8 one (TensorRT's symmetric int8, what the ranges were chosen
 * and quantization-aware models trained for): its final ReLU becomes
 * clip [0, 127], ReLU6's bound min(6 / s_dst, 127). */
static dnnl_status_t q8_post_ops(const struct q8_priv *q, dnnl_post_ops_t *po) {
    dnnl_status_t st = dnnl_post_ops_create(po);
    for (int i = 0; i < q->f.nops && st == dnnl_success; i++) {
        const struct cpu_fuse_op *op = &q->f.ops[i];
        float a = op->alpha, b = op->beta;
        dnnl_alg_kind_t alg = op->alg;
        if (alg == dnnl_eltwise_clip || alg == dnnl_eltwise_clip_v2) {
            a /= q->s_dst;
            b /= q->s_dst;
        } else if (alg == dnnl_eltwise_bounded_relu) {
            a /= q->s_dst;
        }
        if (q->dst_u8 && i == q->f.nops - 1 && !op->add) {
            if (alg == dnnl_eltwise_relu && a == 0) {
                alg = dnnl_eltwise_clip_v2;
                b = 127.0f;
            } else if (alg == dnnl_eltwise_clip_v2 || alg == dnnl_eltwise_clip) {
                b = b < 127.0f ? b : 127.0f;
            }
        }
        st = op->add ? dnnl_post_ops_append_sum_v2(*po, q->sum_scale, q->res_dt)
                     : dnnl_post_ops_append_eltwise(*po, 1.0f, alg, a, b);
    }
    if (st != dnnl_success && *po) {
        dnnl_post_ops_destroy(*po);
        *po = NULL;
    }
    return st;
}

static dnnl_status_t q8_pd(struct cpu_prog *p, const struct q8_priv *q, dnnl_primitive_desc_t *pd) {
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t st = deft_dnnl_user_scratchpad_attr(&attr);
    if (st != dnnl_success) return st;
    if (!p->fchain) st = dnnl_primitive_attr_set_output_scales(attr, q->k, 1 << 1, q->oscale);
    if (st == dnnl_success) st = q8_post_ops(q, &po);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &q->desc, attr, p->eng, NULL);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Batch norm folded into the weights and bias; int8: the weights quantized
 * per channel, the bias in accumulator units and the output scales set. */
static void fold_quantize(const struct cpu_prog *p, struct cpu_node *nd, struct q8_priv *q, void *const *ptr,
                          char *scratch) {
    const float *w = cpu_mem_ptr(nd, q->w, ptr, scratch);
    const float *b = q->b >= 0 ? cpu_mem_ptr(nd, q->b, ptr, scratch) : NULL;
    const float *g = q->gamma >= 0 ? cpu_mem_ptr(nd, q->gamma, ptr, scratch) : NULL;
    const float *be = q->gamma >= 0 ? cpu_mem_ptr(nd, q->beta, ptr, scratch) : NULL;
    const float *mean = q->gamma >= 0 ? cpu_mem_ptr(nd, q->mean, ptr, scratch) : NULL;
    const float *var = q->gamma >= 0 ? cpu_mem_ptr(nd, q->var, ptr, scratch) : NULL;
    int8_t *wq = cpu_mem_ptr(nd, q->wq, ptr, scratch);
    float *bq = cpu_mem_ptr(nd, q->bq, ptr, scratch);
    for (int64_t k = 0; k < q->k; k++) {
        double sc = g ? (double)g[k] / sqrt((double)var[k] + (double)q->eps) : 1.0;
        double bias = g ? ((b ? (double)b[k] : 0.0) - mean[k]) * sc + be[k] : (b ? (double)b[k] : 0.0);
        const float *wk = w + k * q->per_k;
        if (p->fchain) { /* folded f32 weights, reordered to the chain's type by the next step */
            float *wf = (float *)(void *)wq + k * q->per_k;
            for (int64_t i = 0; i < q->per_k; i++) wf[i] = (float)(wk[i] * sc);
            bq[k] = (float)bias;
            continue;
        }
        double amax = 0;
        for (int64_t i = 0; i < q->per_k; i++) amax = fmax(amax, fabs(wk[i] * sc));
        double sw = amax > 0 && isfinite(amax) ? amax / 127.0 : 1.0;
        for (int64_t i = 0; i < q->per_k; i++) {
            double r = nearbyint(wk[i] * sc / sw);
            wq[k * q->per_k + i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r == r ? r : 0);
        }
        bq[k] = (float)(bias / ((double)q->s_src * sw));
        q->oscale[k] = (float)((double)q->s_src * sw / q->s_dst);
    }
}

/* Prep step: fold and quantize, then create the convolution again with the
 * output scales of these weights. */
static enum deft_status q8_prepare(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                   void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    (void)s; (void)rc;
    struct q8_priv *q = nd->priv;
    fold_quantize(p, nd, q, ptr, scratch);
    if (p->fchain) return DEFT_OK; /* no scales: the compiled primitive stands */
    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = q8_pd(p, q, &pd);
    if (ds != dnnl_success) return deft_dnnl_error(ds, "int8 convolution");
    const dnnl_memory_desc_t *spmd = deft_dnnl_pd_md(pd, dnnl_query_scratchpad_md, 0);
    if (!deft_dnnl_md_equal(deft_dnnl_pd_md(pd, dnnl_query_weights_md, 0), &q->w_md_copy) ||
        (spmd->ndims > 0 && deft_dnnl_md_size(spmd) > q->pad_bytes)) {
        dnnl_primitive_desc_destroy(pd);
        return deft_set_error(DEFT_ERR_BACKEND, "cpu: %s: the int8 convolution changed layout with its scales",
                              q->name);
    }
    dnnl_primitive_t prim;
    ds = dnnl_primitive_create(&prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (ds != dnnl_success) return deft_dnnl_error(ds, "dnnl_primitive_create(int8 convolution)");
    dnnl_primitive_destroy(nd->steps[q->conv_step].prim);
    nd->steps[q->conv_step].prim = prim;
    return DEFT_OK;
}

/* Weights, bias and their prep steps. */
static enum deft_status bind_weights(struct cpu_prog *p, struct cpu_node *nd, const struct deft_node *conv,
                                     const struct deft_node *bn, const struct conv_geom *cg,
                                     const_dnnl_primitive_desc_t pd, int *mw, int *mb) {
    struct q8_priv *q = nd->priv;
    dnnl_memory_desc_t cmd = cg->b_plain, wq = cg->w_plain;
    wq.data_type = p->fchain ? dnnl_f32 : dnnl_s8;
    /* the plain weights' strides stay valid for s8: oneDNN counts them in elements */
    int b = conv->n_in > 2 ? conv->in[2] : -1;
    enum deft_status st;
    q->b = q->gamma = q->beta = q->mean = q->var = -1;
    if ((st = cpu_mem_value(p, nd, conv->in[1], &cg->w_plain, &q->w)) ||
        (b >= 0 && (st = cpu_mem_value(p, nd, b, &cmd, &q->b))) ||
        (bn && ((st = cpu_mem_value(p, nd, bn->in[1], &cmd, &q->gamma)) ||
                (st = cpu_mem_value(p, nd, bn->in[2], &cmd, &q->beta)) ||
                (st = cpu_mem_value(p, nd, bn->in[3], &cmd, &q->mean)) ||
                (st = cpu_mem_value(p, nd, bn->in[4], &cmd, &q->var)))) ||
        (st = cpu_mem_owned(p, nd, &wq, &q->wq)) || (st = cpu_mem_owned(p, nd, &cmd, &q->bq)) ||
        (st = cpu_mem_owned(p, nd, deft_dnnl_pd_md(pd, dnnl_query_weights_md, 0), mw)) ||
        (st = cpu_add_fn(p, nd, q8_prepare, -1, -1, -1, -1)) || (st = cpu_add_reorder(p, nd, q->wq, *mw)))
        return st;
    *mb = q->bq;
    nd->nprep = nd->nsteps;
    return DEFT_OK;
}

static enum deft_status new_priv(struct cpu_node *nd, int64_t k, struct q8_priv **out) {
    struct q8_priv *q = deft_calloc(1, sizeof *q + (size_t)k * sizeof(float));
    if (!q) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling an int8 convolution");
    for (int64_t i = 0; i < k; i++) q->oscale[i] = 1.0f;
    nd->priv = q;
    *out = q;
    return DEFT_OK;
}

/* How the residual r enters an int8 chain writing y. An f32 destination
 * takes it dequantized (sum scale 1). An int8 one takes it in its own int8
 * type and scale (sum scale s_r / s_dst): a negative residual (s8) must not
 * be clipped by a u8 destination before the final ReLU, so the sum reads
 * the destination's bytes as the residual's type. */
static void plan_residual(const struct cpu_prog *p, struct q8_priv *q, int y) {
    q->res = -1;
    q->res_dt = dnnl_data_type_undef;
    q->res_scale = q->sum_scale = 1.0f;
    for (int i = 0; i < q->f.nops; i++) {
        if (!q->f.ops[i].add) continue;
        int r = q->f.ops[i].value;
        q->res = r;
        if (!p->q8[y]) {
            q->res_dt = dnnl_f32;
            q->res_scale = p->q8[r] ? p->q8_scale[r] : 1.0f;
        } else if (p->q8[r]) {
            q->res_dt = p->md[r].data_type;
            q->sum_scale = p->q8_scale[r] / q->s_dst;
        } else {
            float s_r = p->q8_scale[r] > 0 ? p->q8_scale[r] : q->s_dst;
            q->res_dt = q8_type(p, r);
            q->res_scale = 1.0f / s_r;
            q->sum_scale = s_r / q->s_dst;
        }
    }
}

/* Can the chain writing y (at node n, reading x) accumulate in place over
 * the residual r's buffer? r must already hold the destination's bytes
 * (same type and layout, no rescale), be an activation nothing reads after
 * this chain, and not be the convolution's own input. */
static bool residual_in_place(const struct cpu_prog *p, const struct q8_priv *q, int n, int x, int y) {
    int r = q->res;
    const struct deft_value *rv = cpu_val(p, r);
    if (r == x || !p->q8[y] || !p->q8[r] || q->res_scale != 1.0f || rv->kind != DEFT_VALUE_NODE ||
        (rv->flags & DEFT_VF_OUTPUT) || p->last_use[r] > n || !deft_dnnl_md_equal(&p->md[r], &p->md[y]))
        return false;
    for (int m = n + 1; m < p->nn; m++) {
        const struct deft_node *nm = deft_graph_node(p->g, m);
        for (int i = 0; i < nm->n_in; i++)
            if (nm->in[i] == r) return false;
    }
    for (int v = 0; v < p->nv; v++)
        if (p->alias[v] == r) return false;
    return true;
}

/* The residual's copy into the destination buffer (viewed as res_dt), or
 * none where y takes over r's buffer (the runtime plans them as one). */
static enum deft_status bind_residual(struct cpu_prog *p, struct cpu_node *nd, struct q8_priv *q, int x, int y,
                                      int my) {
    if (q->res < 0) return DEFT_OK;
    if (residual_in_place(p, q, (int)(nd - p->nodes), x, y)) {
        p->alias[y] = q->res;
        deft_log(DEFT_LOG_DEBUG, "cpu: %s accumulates in place over its residual", q->name);
        return DEFT_OK;
    }
    int mr, mview = my;
    enum deft_status st = cpu_mem_value(p, nd, q->res, &p->md[q->res], &mr);
    if (!st && p->q8[y]) {
        dnnl_memory_desc_t view = p->md[y];
        view.data_type = q->res_dt;
        st = cpu_mem_value(p, nd, y, &view, &mview);
    }
    return st ? st : cpu_add_reorder_scaled(p, nd, mr, mview, q->res_scale);
}

enum deft_status cpu_compile_conv_q8(struct cpu_prog *p, const struct cpu_fusion *f, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, f->conv);
    const struct deft_node *bn = f->bn >= 0 ? deft_graph_node(p->g, f->bn) : NULL;
    int x = node->in[0], y = f->out;
    struct conv_geom cg;
    cpu_conv_geom_init(&cg, &node->attr, false, &cpu_val(p, x)->shape, &cpu_val(p, node->out[0])->shape,
                       &cpu_val(p, node->in[1])->shape);
    struct q8_priv *q = NULL;
    enum deft_status st = new_priv(nd, cg.dst[1], &q);
    if (st) return st;
    q->f = *f;
    q->k = cg.dst[1];
    q->per_k = deft_shape_numel(&cpu_val(p, node->in[1])->shape) / (q->k > 0 ? q->k : 1);
    q->eps = bn ? bn->attr.bn.eps : 0;
    q->s_src = p->q8_scale[x];
    q->s_dst = p->q8[y] ? p->q8_scale[y] : 1.0f;
    q->name = node->name;
    plan_residual(p, q, y); /* known now: only the output scales wait for the weights */
    dnnl_memory_desc_t src, dst, w, bias = cg.b_plain;
    if (p->q8[x]) src = p->md[x];
    else nhwc(&src, cg.src, q8_type(p, x));
    nhwc(&dst, cg.dst, p->q8[y] ? q8_type(p, y) : dnnl_f32);
    q->dst_u8 = dst.data_type == dnnl_u8;
    w = cg.w_any;
    w.data_type = p->fchain ? p->fchain_dt : dnnl_s8;
    dnnl_status_t ds = dnnl_dilated_convolution_forward_desc_init(&q->desc, dnnl_forward_inference,
                                                                 dnnl_convolution_direct, &src, &w, &bias, &dst,
                                                                 cg.stride, cg.dil, cg.pad_l, cg.pad_r);
    dnnl_primitive_desc_t pd = NULL;
    if (ds == dnnl_success) ds = q8_pd(p, q, &pd);
    if (ds != dnnl_success)
        return deft_set_error(DEFT_ERR_BACKEND, "cpu: %s: oneDNN has no int8 convolution for it (%s)", node->name,
                              deft_dnnl_status_str(ds));
    static const char *const tn[] = {[dnnl_u8] = "u8", [dnnl_s8] = "s8", [dnnl_bf16] = "bf16", [dnnl_f32] = "f32"};
    deft_log(DEFT_LOG_DEBUG, "cpu: %s %s conv (%s -> %s): %s", node->name,
             !p->fchain ? "int8" : p->fchain_dt == dnnl_bf16 ? "bf16" : "f32-nhwc",
             tn[src.data_type], tn[dst.data_type], deft_dnnl_pd_impl(pd));
    q->w_md_copy = *deft_dnnl_pd_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *spmd = deft_dnnl_pd_md(pd, dnnl_query_scratchpad_md, 0);
    q->pad_bytes = spmd->ndims > 0 ? deft_dnnl_md_size(spmd) : 0;
    int mw = -1, mb = -1, ms = -1, my = -1;
    st = bind_weights(p, nd, node, bn, &cg, pd, &mw, &mb);
    if (!st && p->q8[x]) {
        st = cpu_mem_value(p, nd, x, &src, &ms);
    } else if (!st) { /* quantize the f32 input */
        int mx;
        st = cpu_mem_value(p, nd, x, &p->md[x], &mx);
        if (!st) st = cpu_mem_temp(p, nd, &src, &ms);
        if (!st) st = cpu_add_reorder_scaled(p, nd, mx, ms, 1.0f / q->s_src);
    }
    if (!st && p->q8[y]) {
        p->md[y] = dst;
        p->md_set[y] = true;
        st = cpu_mem_value(p, nd, y, &dst, &my);
    } else if (!st) {
        st = cpu_bind_out(p, nd, y, &dst, &my);
    }
    if (!st) st = bind_residual(p, nd, q, x, y, my);
    q->conv_step = nd->nsteps;
    int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST}, mems[4] = {ms, mw, mb, my};
    if (!st) st = cpu_add_prim(p, nd, pd, 4, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

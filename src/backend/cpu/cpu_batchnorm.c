/* cpu_batchnorm.c - batch normalization forward and backward on oneDNN.
 *
 * BN works in its input's layout (nChw16c after a conv). TRAIN uses batch
 * statistics (oneDNN returns the biased variance, which is what save_var
 * holds) and then updates the running statistics here, as PyTorch does:
 * running = (1-m)*running + m*batch, with the variance corrected by n/(n-1).
 * EVAL and FROZEN normalize with the running statistics (use_global_stats)
 * and copy them into save_mean/save_var for the backward node.
 */
#include <string.h>
#include "backend/cpu/cpu_impl.h"

struct bn_priv {
    float momentum;
    int64_t count;  /* elements per channel: N*H*W */
    int64_t c;
};

/* imem: save_mean, save_var, running_mean, running_var */
static enum deft_status update_running(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                       void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const struct bn_priv *b = nd->priv;
    const float *mean = cpu_mem_ptr(nd, s->imem[0], ptr, scratch);
    const float *var = cpu_mem_ptr(nd, s->imem[1], ptr, scratch);
    float *rmean = s->imem[2] >= 0 ? cpu_mem_ptr(nd, s->imem[2], ptr, scratch) : NULL;
    float *rvar = s->imem[3] >= 0 ? cpu_mem_ptr(nd, s->imem[3], ptr, scratch) : NULL;
    if (!rmean || !rvar) return DEFT_OK;
    const double m = b->momentum;
    const double corr = b->count > 1 ? (double)b->count / (double)(b->count - 1) : 1.0;
    for (int64_t c = 0; c < b->c; c++) {
        rmean[c] = (float)((1.0 - m) * rmean[c] + m * mean[c]);
        rvar[c] = (float)((1.0 - m) * rvar[c] + m * var[c] * corr);
    }
    return DEFT_OK;
}

/* imem: running_mean, running_var, save_mean, save_var */
static enum deft_status copy_stats(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                   void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const struct bn_priv *b = nd->priv;
    for (int i = 0; i < 2; i++) {
        if (s->imem[2 + i] < 0) continue;
        memcpy(cpu_mem_ptr(nd, s->imem[2 + i], ptr, scratch), cpu_mem_ptr(nd, s->imem[i], ptr, scratch),
               (size_t)b->c * sizeof(float));
    }
    return DEFT_OK;
}

static unsigned bn_flags(enum deft_bn_mode mode) {
    unsigned f = dnnl_use_scale | dnnl_use_shift;
    if (mode != DEFT_BN_TRAIN) f |= dnnl_use_global_stats;
    return f;
}

static dnnl_status_t fwd_pd(struct cpu_prog *p, const struct deft_node *node,
                            const dnnl_memory_desc_t *data, dnnl_primitive_desc_t *pd) {
    dnnl_batch_normalization_desc_t d;
    dnnl_status_t st = dnnl_batch_normalization_forward_desc_init(
        &d, node->attr.bn.mode == DEFT_BN_TRAIN ? dnnl_forward_training : cpu_fwd_prop(p), data,
        node->attr.bn.eps, bn_flags(node->attr.bn.mode));
    if (st != dnnl_success) return st;
    return deft_dnnl_pd_create(pd, &d, p->eng, NULL, node->name, "batchnorm fwd", false);
}

static enum deft_status compile_fwd(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd) {
    int x = node->in[0], gamma = node->in[1], beta = node->in[2];
    int rmean = node->n_in > 3 ? node->in[3] : -1, rvar = node->n_in > 4 ? node->in[4] : -1;
    int y = node->out[0], smean = node->out[1], svar = node->out[2];
    bool train = node->attr.bn.mode == DEFT_BN_TRAIN;
    const struct deft_shape *xs = &cpu_val(p, x)->shape;
    if (xs->ndim < 2 || xs->ndim > 5 || gamma < 0 || beta < 0) return DEFT_ERR_UNSUPPORTED;
    if (!train && (rmean < 0 || rvar < 0)) return DEFT_ERR_UNSUPPORTED;
    struct bn_priv *b = deft_calloc(1, sizeof *b);
    if (!b) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling batchnorm");
    nd->priv = b;
    b->momentum = node->attr.bn.momentum;
    b->c = xs->d[1];
    b->count = deft_shape_numel(xs) / (b->c > 0 ? b->c : 1);

    dnnl_primitive_desc_t pd;
    dnnl_status_t ds = fwd_pd(p, node, &p->md[x], &pd);
    if (ds != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    dnnl_memory_desc_t cmd;
    int64_t c = b->c;
    deft_dnnl_md_plain_dims(&cmd, 1, &c);
    int mx, my, mg, mb, mm = -1, mv = -1, mrm = -1, mrv = -1;
    enum deft_status st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &mx);
    if (!st) st = cpu_bind_out(p, nd, y, deft_dnnl_pd_md(pd, dnnl_query_dst_md, 0), &my);
    if (!st) st = cpu_bind_in(p, nd, gamma, &cmd, &mg);
    if (!st) st = cpu_bind_in(p, nd, beta, &cmd, &mb);
    if (!st && rmean >= 0) st = cpu_mem_value(p, nd, rmean, &cmd, &mrm);
    if (!st && rvar >= 0) st = cpu_mem_value(p, nd, rvar, &cmd, &mrv);
    int ms = -1, mvv = -1;
    if (!st) st = cpu_bind_out(p, nd, smean, &cmd, &ms);
    if (!st) st = cpu_bind_out(p, nd, svar, &cmd, &mvv);
    if (!st) {
        if (train) { /* the batch statistics are outputs */
            mm = ms;
            mv = mvv;
        } else {     /* the running statistics are inputs */
            mm = mrm;
            mv = mrv;
        }
        int args[6] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                       DNNL_ARG_VARIANCE};
        int mems[6] = {mx, my, mg, mb, mm, mv};
        st = cpu_add_prim(p, nd, pd, 6, args, mems);
    }
    dnnl_primitive_desc_destroy(pd);
    if (st) return st;
    if (train) return cpu_add_fn(p, nd, update_running, ms, mvv, mrm, mrv);
    return cpu_add_fn(p, nd, copy_stats, mrm, mrv, ms, mvv);
}

static enum deft_status compile_bwd(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd) {
    int dy = node->in[0], x = node->in[1], gamma = node->in[2];
    int smean = node->in[3], svar = node->in[4];
    int dx = node->out[0];
    int dg = node->n_out > 1 ? node->out[1] : -1, db = node->n_out > 2 ? node->out[2] : -1;
    const struct deft_shape *xs = &cpu_val(p, x)->shape;
    if (xs->ndim < 2 || xs->ndim > 5 || gamma < 0 || smean < 0 || svar < 0) return DEFT_ERR_UNSUPPORTED;
    const dnnl_memory_desc_t *data = &p->md[x];
    dnnl_primitive_desc_t hint, pd;
    dnnl_status_t ds = fwd_pd(p, node, data, &hint);
    if (ds != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    dnnl_batch_normalization_desc_t d;
    /* diff layout = data layout: dy from another producer is reordered to it. */
    ds = dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, data, data,
                                                     node->attr.bn.eps, bn_flags(node->attr.bn.mode));
    if (ds == dnnl_success)
        ds = deft_dnnl_pd_create(&pd, &d, p->eng, hint, node->name, "batchnorm bwd", false);
    dnnl_primitive_desc_destroy(hint);
    if (ds != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    dnnl_memory_desc_t cmd;
    int64_t c = xs->d[1];
    deft_dnnl_md_plain_dims(&cmd, 1, &c);
    int mdy, mx, mg, msh, mm, mv, mdx, mdg, mdb;
    enum deft_status st = cpu_bind_in(p, nd, dy, deft_dnnl_pd_md(pd, dnnl_query_diff_dst_md, 0), &mdy);
    if (!st) st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd, dnnl_query_src_md, 0), &mx);
    if (!st) st = cpu_bind_in(p, nd, gamma, &cmd, &mg);
    /* oneDNN 2.6 counts SHIFT as an input of the backward pass with
     * use_shift although it does not read it: bind a scratch dummy. */
    if (!st) st = cpu_mem_temp(p, nd, &cmd, &msh);
    if (!st) st = cpu_bind_in(p, nd, smean, &cmd, &mm);
    if (!st) st = cpu_bind_in(p, nd, svar, &cmd, &mv);
    if (!st) st = cpu_bind_out(p, nd, dx, deft_dnnl_pd_md(pd, dnnl_query_diff_src_md, 0), &mdx);
    if (!st) st = cpu_bind_out(p, nd, dg, &cmd, &mdg);
    if (!st) st = cpu_bind_out(p, nd, db, &cmd, &mdb);
    int args[9] = {DNNL_ARG_DIFF_DST, DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                   DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};
    int mems[9] = {mdy, mx, mg, msh, mm, mv, mdx, mdg, mdb};
    if (!st) st = cpu_add_prim(p, nd, pd, 9, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

enum deft_status cpu_compile_batchnorm(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    /* sync_bn: the reference kernels, which sum over the ranks between
     * their passes (oneDNN's primitive computes its statistics in one go) */
    if (node->attr.bn.sync && node->attr.bn.mode == DEFT_BN_TRAIN) return DEFT_ERR_UNSUPPORTED;
    if (node->op == DEFT_OP_BATCHNORM) return compile_fwd(p, node, nd);
    return compile_bwd(p, node, nd);
}

/* cpu_linear.c - fully connected layers (forward, backward data, backward
 * weights with bias) as oneDNN matmuls over plain 2-D tensors.
 *
 * y = x w^T + b is a matmul with w read transposed through strides, so the
 * plain [M, K] parameter is used in place; dw = dy^T x reads dy transposed
 * the same way. The bias gradient is a column sum done here.
 */
#include <string.h>
#include "backend/cpu/cpu_impl.h"

/* 2-D md over rows x cols with strides (rs, cs). */
static void md2(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
    dnnl_dims_t d = {rows, cols}, st = {rs, cs};
    dnnl_memory_desc_init_by_strides(md, 2, d, dnnl_f32, st);
}

struct lin_priv { int64_t rows, cols; };

/* db[c] = sum over rows of dy[r, c]; imem: dy, db */
static enum deft_status bias_grad(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                  void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const struct lin_priv *lp = nd->priv;
    const float *dy = cpu_mem_ptr(nd, s->imem[0], ptr, scratch);
    float *db = cpu_mem_ptr(nd, s->imem[1], ptr, scratch);
    const int64_t rows = lp->rows, cols = lp->cols;
    #pragma omp parallel for if (cols * rows > 65536)
    for (int64_t c = 0; c < cols; c++) {
        double acc = 0;
        for (int64_t r = 0; r < rows; r++) acc += dy[r * cols + c];
        db[c] = (float)acc;
    }
    return DEFT_OK;
}

static enum deft_status matmul(struct cpu_prog *p, struct cpu_node *nd, const char *name,
                               int a, const dnnl_memory_desc_t *amd, int b, const dnnl_memory_desc_t *bmd,
                               int bias, const dnnl_memory_desc_t *biasmd, int c,
                               const dnnl_memory_desc_t *cmd) {
    dnnl_matmul_desc_t d;
    dnnl_primitive_desc_t pd;
    if (dnnl_matmul_desc_init(&d, amd, bmd, bias >= 0 ? biasmd : NULL, cmd) != dnnl_success ||
        deft_dnnl_pd_create(&pd, &d, p->eng, NULL, name, "matmul", false) != dnnl_success)
        return DEFT_ERR_UNSUPPORTED;
    int ma, mb, mbias = -1, mc;
    /* a and b may be views of plain values (transposed through strides). */
    dnnl_memory_desc_t aview = *amd, bview = *bmd;
    enum deft_status st = cpu_bind_in_as(p, nd, a, &aview, amd, &ma);
    if (!st) st = cpu_bind_in_as(p, nd, b, &bview, bmd, &mb);
    if (!st && bias >= 0) st = cpu_mem_value(p, nd, bias, biasmd, &mbias);
    if (!st) {
        dnnl_memory_desc_t plain;
        deft_dnnl_md_plain(&plain, &cpu_val(p, c)->shape);
        p->md[c] = plain;
        p->md_set[c] = true;
        st = cpu_mem_value(p, nd, c, cmd, &mc);
    }
    int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    int mems[4] = {ma, mb, mbias, mc};
    if (!st) st = cpu_add_prim(p, nd, pd, 4, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

enum deft_status cpu_compile_linear(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    /* Matmul reads inputs through plain views: they must be plain 2-D. */
    for (int i = 0; i < node->n_in; i++) {
        int v = node->in[i];
        if (v < 0) continue;
        if (!deft_dnnl_md_is_plain(&p->md[v])) return DEFT_ERR_UNSUPPORTED;
        if (i < 2 && cpu_val(p, v)->shape.ndim != 2) return DEFT_ERR_UNSUPPORTED;
    }
    dnnl_memory_desc_t amd, bmd, biasmd, cmd;
    switch (node->op) {
    case DEFT_OP_LINEAR: {
        int x = node->in[0], w = node->in[1], b = node->n_in > 2 ? node->in[2] : -1, y = node->out[0];
        int64_t N = cpu_val(p, x)->shape.d[0], K = cpu_val(p, x)->shape.d[1];
        int64_t M = cpu_val(p, w)->shape.d[0];
        md2(&amd, N, K, K, 1);
        md2(&bmd, K, M, 1, K);   /* w^T */
        md2(&biasmd, 1, M, M, 1);
        md2(&cmd, N, M, M, 1);
        return matmul(p, nd, node->name, x, &amd, w, &bmd, b, &biasmd, y, &cmd);
    }
    case DEFT_OP_LINEAR_BWD_DATA: {
        int dy = node->in[0], w = node->in[1], dx = node->out[0];
        int64_t N = cpu_val(p, dy)->shape.d[0], M = cpu_val(p, dy)->shape.d[1];
        int64_t K = cpu_val(p, w)->shape.d[1];
        md2(&amd, N, M, M, 1);
        md2(&bmd, M, K, K, 1);
        md2(&cmd, N, K, K, 1);
        return matmul(p, nd, node->name, dy, &amd, w, &bmd, -1, NULL, dx, &cmd);
    }
    case DEFT_OP_LINEAR_BWD_WEIGHTS: {
        int dy = node->in[0], x = node->in[1], dw = node->out[0];
        int db = node->attr.has_bias && node->n_out > 1 ? node->out[1] : -1;
        int64_t N = cpu_val(p, dy)->shape.d[0], M = cpu_val(p, dy)->shape.d[1];
        int64_t K = cpu_val(p, x)->shape.d[1];
        md2(&amd, M, N, 1, M);   /* dy^T */
        md2(&bmd, N, K, K, 1);
        md2(&cmd, M, K, K, 1);
        enum deft_status st = matmul(p, nd, node->name, dy, &amd, x, &bmd, -1, NULL, dw, &cmd);
        if (st || db < 0) return st;
        struct lin_priv *lp = deft_calloc(1, sizeof *lp);
        if (!lp) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling linear");
        lp->rows = N;
        lp->cols = M;
        nd->priv = lp;
        dnnl_memory_desc_t dyp, dbp;
        deft_dnnl_md_plain(&dyp, &cpu_val(p, dy)->shape);
        deft_dnnl_md_plain(&dbp, &cpu_val(p, db)->shape);
        p->md[db] = dbp;
        p->md_set[db] = true;
        int mdy, mdb;
        st = cpu_mem_value(p, nd, dy, &dyp, &mdy);
        if (!st) st = cpu_mem_value(p, nd, db, &dbp, &mdb);
        if (!st) st = cpu_add_fn(p, nd, bias_grad, mdy, mdb, -1, -1);
        return st;
    }
    default: return DEFT_ERR_UNSUPPORTED;
    }
}

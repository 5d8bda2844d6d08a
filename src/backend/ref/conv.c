/* conv.c - reference 2-D convolution and transposed convolution, forward and
 * backward (data and weights), NCHW, groups, stride, 4-sided padding, dilation.
 *
 * Legend: x[n,c,h,w] (conv input), w[k,c/groups,r,s], y[n,k,p,q] (conv output),
 * ih = p*stride_h - pad_top + r*dilation_h (likewise for width).
 *
 * Three loop nests do all the work. A transposed convolution is the data
 * gradient of a convolution, so ConvTranspose2d reuses them with the roles of
 * the two sides swapped: its weight [C_in, K/groups, R, S] is exactly the weight
 * of the convolution that maps its output (c side) back to its input (k side).
 */
#include <string.h>
#include "backend/ref/ref_impl.h"

/* Geometry of one convolution: c side = (n, c, h, w), k side = (n, k, p, q). */
struct conv_geom {
    int64_t n, c, h, w;
    int64_t k, p, q;
    int64_t r, s;
    int64_t sh, sw, pt, pl, dh, dw, groups;
};

static enum deft_status make_geom(const struct deft_shape *cs, const struct deft_shape *ks,
                                  const struct deft_shape *ws, const struct deft_conv_attr *a,
                                  struct conv_geom *G) {
    if (cs->ndim != 4 || ks->ndim != 4 || ws->ndim != 4)
        return deft_set_error(DEFT_ERR_SHAPE, "ref conv: expected 4-D tensors");
    int64_t groups = a->groups > 0 ? a->groups : 1;
    *G = (struct conv_geom){
        .n = cs->d[0], .c = cs->d[1], .h = cs->d[2], .w = cs->d[3],
        .k = ks->d[1], .p = ks->d[2], .q = ks->d[3],
        .r = ws->d[2], .s = ws->d[3],
        .sh = a->stride[0] > 0 ? a->stride[0] : 1, .sw = a->stride[1] > 0 ? a->stride[1] : 1,
        .pt = a->pad[0], .pl = a->pad[1],
        .dh = a->dilation[0] > 0 ? a->dilation[0] : 1,
        .dw = a->dilation[1] > 0 ? a->dilation[1] : 1,
        .groups = groups,
    };
    if (G->c % groups || G->k % groups || ks->d[0] != cs->d[0])
        return deft_set_error(DEFT_ERR_SHAPE, "ref conv: channels not divisible by groups");
    return DEFT_OK;
}

/* Per-thread double accumulators (nthreads x len). */
static double *alloc_acc(int64_t len, int *nthr) {
    *nthr = ref_max_threads();
    double *acc = deft_malloc((size_t)(*nthr) * (size_t)(len > 0 ? len : 1) * sizeof(double));
    if (!acc) deft_set_error(DEFT_ERR_NOMEM, "ref conv: out of memory for accumulators");
    return acc;
}

/* The three inner loops, over output columns q in [lo, hi) with input column
 * q*stride + off. Stride 1 gets its own contiguous loop so it vectorizes. */
static inline void axpy_strided(double *acc, const float *in, double wv, int64_t lo, int64_t hi,
                                int64_t stride, int64_t off) {
    if (stride == 1) {
        const float *src = in + off;
        #pragma omp simd
        for (int64_t q = lo; q < hi; q++) acc[q] += wv * src[q];
    } else {
        for (int64_t q = lo; q < hi; q++) acc[q] += wv * in[q * stride + off];
    }
}

static inline void axpy_scatter(double *acc, const float *d, double wv, int64_t lo, int64_t hi,
                                int64_t stride, int64_t off) {
    if (stride == 1) {
        double *dst = acc + off;
        #pragma omp simd
        for (int64_t q = lo; q < hi; q++) dst[q] += wv * d[q];
    } else {
        for (int64_t q = lo; q < hi; q++) acc[q * stride + off] += wv * d[q];
    }
}

static inline double dot_strided(const float *d, const float *in, int64_t lo, int64_t hi,
                                 int64_t stride, int64_t off) {
    double sum = 0;
    if (stride == 1) {
        const float *src = in + off;
        #pragma omp simd reduction(+ : sum)
        for (int64_t q = lo; q < hi; q++) sum += (double)d[q] * src[q];
    } else {
        for (int64_t q = lo; q < hi; q++) sum += (double)d[q] * in[q * stride + off];
    }
    return sum;
}

/* y[n,k,:,:] = bias[k] + sum_{c in group, r, s} w[k,c,r,s] * x[n,c,ih,iw]. */
static enum deft_status conv_fwd_core(const struct conv_geom *G, const float *x, const float *w,
                                      const float *bias, float *y) {
    const int64_t cpg = G->c / G->groups, kpg = G->k / G->groups, pq = G->p * G->q;
    int nthr;
    double *accs = alloc_acc(pq, &nthr);
    if (!accs) return DEFT_ERR_NOMEM;
    const int64_t nk = G->n * G->k;
    #pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < nk; i++) {
        const int64_t n = i / G->k, k = i % G->k, grp = k / kpg;
        double *acc = accs + (int64_t)ref_thread_num() * pq;
        double b0 = bias ? bias[k] : 0.0;
        for (int64_t j = 0; j < pq; j++) acc[j] = b0;
        for (int64_t cl = 0; cl < cpg; cl++) {
            const float *xp = x + ((n * G->c) + grp * cpg + cl) * G->h * G->w;
            const float *wp = w + (k * cpg + cl) * G->r * G->s;
            for (int64_t r = 0; r < G->r; r++) {
                int64_t plo, phi;
                ref_valid_range(r * G->dh - G->pt, G->sh, G->h, G->p, &plo, &phi);
                for (int64_t s = 0; s < G->s; s++) {
                    const double wv = wp[r * G->s + s];
                    const int64_t off = s * G->dw - G->pl;
                    int64_t qlo, qhi;
                    ref_valid_range(off, G->sw, G->w, G->q, &qlo, &qhi);
                    for (int64_t p = plo; p < phi; p++) {
                        const float *row = xp + (p * G->sh + r * G->dh - G->pt) * G->w;
                        double *arow = acc + p * G->q;
                        axpy_strided(arow, row, wv, qlo, qhi, G->sw, off);
                    }
                }
            }
        }
        float *yp = y + i * pq;
        for (int64_t j = 0; j < pq; j++) yp[j] = (float)acc[j];
    }
    deft_free(accs);
    return DEFT_OK;
}

/* dx[n,c,:,:] = bias[c] + scatter of w[k,c,r,s] * dy[n,k,p,q] (the transpose of
 * conv_fwd_core). One (n, c) plane per iteration, so threads never collide. */
static enum deft_status conv_bwd_data_core(const struct conv_geom *G, const float *dy,
                                           const float *w, const float *bias, float *dx) {
    const int64_t cpg = G->c / G->groups, kpg = G->k / G->groups, hw = G->h * G->w;
    int nthr;
    double *accs = alloc_acc(hw, &nthr);
    if (!accs) return DEFT_ERR_NOMEM;
    const int64_t nc = G->n * G->c;
    #pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < nc; i++) {
        const int64_t n = i / G->c, c = i % G->c, grp = c / cpg, cl = c % cpg;
        double *acc = accs + (int64_t)ref_thread_num() * hw;
        double b0 = bias ? bias[c] : 0.0;
        for (int64_t j = 0; j < hw; j++) acc[j] = b0;
        for (int64_t kl = 0; kl < kpg; kl++) {
            const int64_t k = grp * kpg + kl;
            const float *dyp = dy + (n * G->k + k) * G->p * G->q;
            const float *wp = w + (k * cpg + cl) * G->r * G->s;
            for (int64_t r = 0; r < G->r; r++) {
                int64_t plo, phi;
                ref_valid_range(r * G->dh - G->pt, G->sh, G->h, G->p, &plo, &phi);
                for (int64_t s = 0; s < G->s; s++) {
                    const double wv = wp[r * G->s + s];
                    const int64_t off = s * G->dw - G->pl;
                    int64_t qlo, qhi;
                    ref_valid_range(off, G->sw, G->w, G->q, &qlo, &qhi);
                    for (int64_t p = plo; p < phi; p++) {
                        double *arow = acc + (p * G->sh + r * G->dh - G->pt) * G->w;
                        const float *drow = dyp + p * G->q;
                        axpy_scatter(arow, drow, wv, qlo, qhi, G->sw, off);
                    }
                }
            }
        }
        float *dxp = dx + i * hw;
        for (int64_t j = 0; j < hw; j++) dxp[j] = (float)acc[j];
    }
    deft_free(accs);
    return DEFT_OK;
}

/* dw[k,cl,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n,c,ih,iw]. */
static void conv_bwd_weights_core(const struct conv_geom *G, const float *dy, const float *x,
                                  float *dw) {
    const int64_t cpg = G->c / G->groups, kpg = G->k / G->groups;
    const int64_t kc = G->k * cpg;
    #pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < kc; i++) {
        const int64_t k = i / cpg, cl = i % cpg, c = (k / kpg) * cpg + cl;
        for (int64_t r = 0; r < G->r; r++) {
            int64_t plo, phi;
            ref_valid_range(r * G->dh - G->pt, G->sh, G->h, G->p, &plo, &phi);
            for (int64_t s = 0; s < G->s; s++) {
                const int64_t off = s * G->dw - G->pl;
                int64_t qlo, qhi;
                ref_valid_range(off, G->sw, G->w, G->q, &qlo, &qhi);
                double sum = 0;
                for (int64_t n = 0; n < G->n; n++) {
                    const float *xp = x + (n * G->c + c) * G->h * G->w;
                    const float *dyp = dy + (n * G->k + k) * G->p * G->q;
                    for (int64_t p = plo; p < phi; p++) {
                        const float *row = xp + (p * G->sh + r * G->dh - G->pt) * G->w;
                        const float *drow = dyp + p * G->q;
                        sum += dot_strided(drow, row, qlo, qhi, G->sw, off);
                    }
                }
                dw[i * G->r * G->s + r * G->s + s] = (float)sum;
            }
        }
    }
}

/* db[c] = sum over n and the plane of t[n,c,:,:]. */
static void channel_sum(const float *t, int64_t n, int64_t c, int64_t plane, float *db) {
    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        double sum = 0;
        for (int64_t ni = 0; ni < n; ni++) {
            const float *tp = t + (ni * c + ci) * plane;
            for (int64_t j = 0; j < plane; j++) sum += tp[j];
        }
        db[ci] = (float)sum;
    }
}

/* CONV2D: in x, w, [b]; out y. */
enum deft_status deft_ref_conv2d(const struct deft_graph *g, int n, void *const *ptr,
                                 const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    struct conv_geom G;
    enum deft_status st = make_geom(ref_shape(g, nd->in[0]), ref_shape(g, nd->out[0]),
                                    ref_shape(g, nd->in[1]), &nd->attr.conv, &G);
    if (st) return st;
    const float *b = nd->attr.has_bias ? ref_in(nd, ptr, 2) : NULL;
    return conv_fwd_core(&G, ref_in(nd, ptr, 0), ref_in(nd, ptr, 1), b, ref_out(nd, ptr, 0));
}

/* CONV2D_BWD_DATA: in dy, w; out dx. */
enum deft_status deft_ref_conv2d_bwd_data(const struct deft_graph *g, int n, void *const *ptr,
                                          const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    struct conv_geom G;
    enum deft_status st = make_geom(ref_shape(g, nd->out[0]), ref_shape(g, nd->in[0]),
                                    ref_shape(g, nd->in[1]), &nd->attr.conv, &G);
    if (st) return st;
    return conv_bwd_data_core(&G, ref_in(nd, ptr, 0), ref_in(nd, ptr, 1), NULL,
                              ref_out(nd, ptr, 0));
}

/* CONV2D_BWD_WEIGHTS: in dy, x; out dw, [db]. */
enum deft_status deft_ref_conv2d_bwd_weights(const struct deft_graph *g, int n, void *const *ptr,
                                             const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    struct conv_geom G;
    const float *dy = ref_in(nd, ptr, 0), *x = ref_in(nd, ptr, 1);
    enum deft_status st = make_geom(ref_shape(g, nd->in[1]), ref_shape(g, nd->in[0]),
                                    ref_shape(g, nd->out[0]), &nd->attr.conv, &G);
    if (st) return st;
    float *dw = ref_out(nd, ptr, 0), *db = ref_out(nd, ptr, 1);
    if (dw) conv_bwd_weights_core(&G, dy, x, dw);
    if (db && nd->attr.has_bias) channel_sum(dy, G.n, G.k, G.p * G.q, db);
    return DEFT_OK;
}

/* CONV_TRANSPOSE2D: in x[N,C_in,H,W], w[C_in,K/g,R,S], [b[K]]; out y[N,K,Ho,Wo].
 * The c side of the geometry is y, the k side is x. */
enum deft_status deft_ref_conv_transpose2d(const struct deft_graph *g, int n, void *const *ptr,
                                           const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    struct conv_geom G;
    enum deft_status st = make_geom(ref_shape(g, nd->out[0]), ref_shape(g, nd->in[0]),
                                    ref_shape(g, nd->in[1]), &nd->attr.conv, &G);
    if (st) return st;
    const float *b = nd->attr.has_bias ? ref_in(nd, ptr, 2) : NULL;
    return conv_bwd_data_core(&G, ref_in(nd, ptr, 0), ref_in(nd, ptr, 1), b, ref_out(nd, ptr, 0));
}

/* CONV_TRANSPOSE2D_BWD_DATA: in dy[N,K,Ho,Wo], w; out dx[N,C_in,H,W] (a plain conv). */
enum deft_status deft_ref_conv_transpose2d_bwd_data(const struct deft_graph *g, int n,
                                                    void *const *ptr,
                                                    const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    struct conv_geom G;
    enum deft_status st = make_geom(ref_shape(g, nd->in[0]), ref_shape(g, nd->out[0]),
                                    ref_shape(g, nd->in[1]), &nd->attr.conv, &G);
    if (st) return st;
    return conv_fwd_core(&G, ref_in(nd, ptr, 0), ref_in(nd, ptr, 1), NULL, ref_out(nd, ptr, 0));
}

/* CONV_TRANSPOSE2D_BWD_WEIGHTS: in dy[N,K,Ho,Wo], x[N,C_in,H,W]; out dw[C_in,K/g,R,S], [db[K]]. */
enum deft_status deft_ref_conv_transpose2d_bwd_weights(const struct deft_graph *g, int n,
                                                       void *const *ptr,
                                                       const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    struct conv_geom G;
    const float *dy = ref_in(nd, ptr, 0), *x = ref_in(nd, ptr, 1);
    enum deft_status st = make_geom(ref_shape(g, nd->in[0]), ref_shape(g, nd->in[1]),
                                    ref_shape(g, nd->out[0]), &nd->attr.conv, &G);
    if (st) return st;
    float *dw = ref_out(nd, ptr, 0), *db = ref_out(nd, ptr, 1);
    /* Roles swap: the conv's "dy" is our x (k side), its "x" is our dy (c side). */
    if (dw) conv_bwd_weights_core(&G, x, dy, dw);
    if (db && nd->attr.has_bias) channel_sum(dy, G.n, G.c, G.h * G.w, db);
    return DEFT_OK;
}

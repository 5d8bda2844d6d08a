/* pool.c - reference 2-D max/average pooling and global average pooling,
 * forward and backward, x[n, c, h, w] -> y[n, c, p, q], PyTorch semantics.
 *
 * Windows: hstart = p*stride_h - pad_top, hend = hstart + kernel_h. Max pooling
 * treats padding as -inf (the window is clipped to the image) and keeps the
 * first maximum (a NaN always wins, as in PyTorch's CPU kernel). Average
 * pooling divides by the window clipped to the padded image (count_include_pad)
 * or to the image itself; ceil_mode only changes the output size, which comes
 * from the graph. The max-pool workspace is the int32 argmax (h*W + w within
 * the input plane) of every output element; backward recomputes it when absent.
 */
#include <math.h>
#include "backend/ref/ref_impl.h"

struct pool_geom {
    int64_t planes, h, w, p, q;
    int64_t kh, kw, sh, sw, pt, pl, pb, pr;
};

static enum deft_status pool_geom(const struct deft_shape *xs, const struct deft_shape *ys,
                                  const struct deft_pool_attr *a, struct pool_geom *G) {
    if (xs->ndim != 4 || ys->ndim != 4)
        return deft_set_error(DEFT_ERR_SHAPE, "ref pool: expected 4-D tensors");
    *G = (struct pool_geom){
        .planes = xs->d[0] * xs->d[1], .h = xs->d[2], .w = xs->d[3], .p = ys->d[2], .q = ys->d[3],
        .kh = a->kernel[0], .kw = a->kernel[1],
        .sh = a->stride[0] > 0 ? a->stride[0] : 1, .sw = a->stride[1] > 0 ? a->stride[1] : 1,
        .pt = a->pad[0], .pl = a->pad[1], .pb = a->pad[2], .pr = a->pad[3],
    };
    return DEFT_OK;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Max over the clipped window of output (p, q); returns the argmax, -1 for an empty window. */
static int64_t max_window(const struct pool_geom *G, const float *xp, int64_t p, int64_t q,
                          float *out) {
    int64_t hs = p * G->sh - G->pt, ws = q * G->sw - G->pl;
    int64_t he = min64(hs + G->kh, G->h), we = min64(ws + G->kw, G->w);
    hs = max64(hs, 0);
    ws = max64(ws, 0);
    if (hs >= he || ws >= we) {
        *out = -INFINITY;
        return -1;
    }
    float best = -INFINITY;
    int64_t idx = hs * G->w + ws;
    for (int64_t ih = hs; ih < he; ih++)
        for (int64_t iw = ws; iw < we; iw++) {
            float v = xp[ih * G->w + iw];
            if (v > best || isnan(v)) {
                best = v;
                idx = ih * G->w + iw;
            }
        }
    *out = best;
    return idx;
}

/* Average window of output (p, q): clipped bounds and the divisor. */
static double avg_window(const struct pool_geom *G, bool include_pad, int64_t p, int64_t q,
                         int64_t *hs_, int64_t *he_, int64_t *ws_, int64_t *we_) {
    int64_t hs = p * G->sh - G->pt, ws = q * G->sw - G->pl;
    int64_t he = min64(hs + G->kh, G->h + G->pb), we = min64(ws + G->kw, G->w + G->pr);
    int64_t padded = (he - hs) * (we - ws);
    hs = max64(hs, 0);
    ws = max64(ws, 0);
    he = min64(he, G->h);
    we = min64(we, G->w);
    *hs_ = hs, *he_ = he, *ws_ = ws, *we_ = we;
    int64_t cnt = include_pad ? padded : max64(he - hs, 0) * max64(we - ws, 0);
    return (double)cnt;
}

/* POOL: in x; out y, [workspace]. */
enum deft_status deft_ref_pool(const struct deft_graph *g, int n, void *const *ptr,
                               const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_pool_attr *a = &nd->attr.pool;
    struct pool_geom G;
    enum deft_status st = pool_geom(ref_shape(g, nd->in[0]), ref_shape(g, nd->out[0]), a, &G);
    if (st) return st;
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    int32_t *wsp = (int32_t *)ref_out(nd, ptr, 1);
    const int64_t pq = G.p * G.q;
    #pragma omp parallel for
    for (int64_t pl = 0; pl < G.planes; pl++) {
        const float *xp = x + pl * G.h * G.w;
        float *yp = y + pl * pq;
        for (int64_t p = 0; p < G.p; p++)
            for (int64_t q = 0; q < G.q; q++) {
                if (a->kind == DEFT_POOL_MAX) {
                    int64_t idx = max_window(&G, xp, p, q, &yp[p * G.q + q]);
                    if (wsp) wsp[pl * pq + p * G.q + q] = (int32_t)idx;
                } else {
                    int64_t hs, he, ws, we;
                    double div = avg_window(&G, a->count_include_pad, p, q, &hs, &he, &ws, &we);
                    double sum = 0;
                    for (int64_t ih = hs; ih < he; ih++)
                        for (int64_t iw = ws; iw < we; iw++) sum += xp[ih * G.w + iw];
                    yp[p * G.q + q] = div > 0 ? (float)(sum / div) : 0.0f;
                }
            }
    }
    return DEFT_OK;
}

/* POOL_BWD: in dy, x, [workspace]; out dx. */
enum deft_status deft_ref_pool_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_pool_attr *a = &nd->attr.pool;
    struct pool_geom G;
    enum deft_status st = pool_geom(ref_shape(g, nd->out[0]), ref_shape(g, nd->in[0]), a, &G);
    if (st) return st;
    const float *dy = ref_in(nd, ptr, 0), *x = ref_in(nd, ptr, 1);
    const int32_t *wsp = (const int32_t *)ref_in(nd, ptr, 2);
    float *dx = ref_out(nd, ptr, 0);
    const int64_t pq = G.p * G.q, hw = G.h * G.w;
    if (a->kind == DEFT_POOL_MAX && !wsp && !x)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ref pool_bwd %s: needs x or a workspace",
                              nd->name);
    /* Overlapping windows add several terms per input: sum them in double. */
    const int nthr = ref_max_threads();
    double *accs = deft_malloc((size_t)nthr * (size_t)(hw > 0 ? hw : 1) * sizeof(double));
    if (!accs) return deft_set_error(DEFT_ERR_NOMEM, "ref pool_bwd: out of memory");
    #pragma omp parallel for
    for (int64_t pl = 0; pl < G.planes; pl++) {
        double *acc = accs + (int64_t)ref_thread_num() * hw;
        const float *dyp = dy + pl * pq;
        for (int64_t j = 0; j < hw; j++) acc[j] = 0.0;
        for (int64_t p = 0; p < G.p; p++)
            for (int64_t q = 0; q < G.q; q++) {
                const double d = dyp[p * G.q + q];
                if (a->kind == DEFT_POOL_MAX) {
                    int64_t idx;
                    if (wsp) {
                        idx = wsp[pl * pq + p * G.q + q];
                    } else {
                        float unused;
                        idx = max_window(&G, x + pl * hw, p, q, &unused);
                    }
                    if (idx >= 0 && idx < hw) acc[idx] += d;
                } else {
                    int64_t hs, he, ws, we;
                    double div = avg_window(&G, a->count_include_pad, p, q, &hs, &he, &ws, &we);
                    if (div <= 0) continue;
                    const double v = d / div;
                    for (int64_t ih = hs; ih < he; ih++)
                        for (int64_t iw = ws; iw < we; iw++) acc[ih * G.w + iw] += v;
                }
            }
        float *dxp = dx + pl * hw;
        for (int64_t j = 0; j < hw; j++) dxp[j] = (float)acc[j];
    }
    deft_free(accs);
    return DEFT_OK;
}

/* GLOBAL_AVGPOOL: in x[n, c, *]; out y[n, c, 1, 1]. */
enum deft_status deft_ref_global_avgpool(const struct deft_graph *g, int n, void *const *ptr,
                                         const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->in[0]);
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    const int64_t planes = xs->ndim >= 2 ? xs->d[0] * xs->d[1] : 1;
    const int64_t hw = planes > 0 ? deft_shape_numel(xs) / planes : 0;
    #pragma omp parallel for
    for (int64_t pl = 0; pl < planes; pl++) {
        double sum = 0;
        for (int64_t j = 0; j < hw; j++) sum += x[pl * hw + j];
        y[pl] = hw > 0 ? (float)(sum / (double)hw) : 0.0f;
    }
    return DEFT_OK;
}

/* GLOBAL_AVGPOOL_BWD: in dy[n, c, 1, 1]; out dx (attr.shape): dy / (h*w) everywhere. */
enum deft_status deft_ref_global_avgpool_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                             const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->out[0]);
    const float *dy = ref_in(nd, ptr, 0);
    float *dx = ref_out(nd, ptr, 0);
    const int64_t planes = xs->ndim >= 2 ? xs->d[0] * xs->d[1] : 1;
    const int64_t hw = planes > 0 ? deft_shape_numel(xs) / planes : 0;
    #pragma omp parallel for
    for (int64_t pl = 0; pl < planes; pl++) {
        const float v = (float)((double)dy[pl] / (double)hw);
        for (int64_t j = 0; j < hw; j++) dx[pl * hw + j] = v;
    }
    return DEFT_OK;
}

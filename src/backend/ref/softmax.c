/* softmax.c - reference softmax over one axis and its backward.
 * The tensor is viewed as [outer, dim, inner] around attr.softmax.axis; the max
 * is subtracted before exp for stability.
 */
#include <math.h>
#include "backend/ref/ref_impl.h"

static enum deft_status softmax_dims(const struct deft_graph *g, const struct deft_node *nd, int v,
                                     int64_t *outer, int64_t *dim, int64_t *inner) {
    if (!view_axis(ref_shape(g, v), nd->attr.softmax.axis, outer, dim, inner))
        return deft_set_error(DEFT_ERR_SHAPE, "ref softmax %s: bad axis %d", nd->name,
                              nd->attr.softmax.axis);
    return DEFT_OK;
}

/* SOFTMAX: in x; out y. */
enum deft_status deft_ref_softmax(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    int64_t outer, dim, inner;
    enum deft_status st = softmax_dims(g, nd, nd->in[0], &outer, &dim, &inner);
    if (st) return st;
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    const int64_t lines = outer * inner;
    #pragma omp parallel for
    for (int64_t l = 0; l < lines; l++) {
        const int64_t base = (l / inner) * dim * inner + l % inner;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < dim; j++) mx = fmax(mx, x[base + j * inner]);
        for (int64_t j = 0; j < dim; j++) sum += exp(x[base + j * inner] - mx);
        for (int64_t j = 0; j < dim; j++)
            y[base + j * inner] = (float)(exp(x[base + j * inner] - mx) / sum);
    }
    return DEFT_OK;
}

/* SOFTMAX_BWD: in dy, y; out dx = y * (dy - sum(dy * y)). */
enum deft_status deft_ref_softmax_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                      const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    int64_t outer, dim, inner;
    enum deft_status st = softmax_dims(g, nd, nd->out[0], &outer, &dim, &inner);
    if (st) return st;
    const float *dy = ref_in(nd, ptr, 0), *y = ref_in(nd, ptr, 1);
    float *dx = ref_out(nd, ptr, 0);
    const int64_t lines = outer * inner;
    #pragma omp parallel for
    for (int64_t l = 0; l < lines; l++) {
        const int64_t base = (l / inner) * dim * inner + l % inner;
        double dot = 0;
        for (int64_t j = 0; j < dim; j++) dot += (double)dy[base + j * inner] * y[base + j * inner];
        for (int64_t j = 0; j < dim; j++) {
            const int64_t i = base + j * inner;
            dx[i] = (float)(y[i] * (dy[i] - dot));
        }
    }
    return DEFT_OK;
}

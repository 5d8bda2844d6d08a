/* elementwise.c - reference binary ops with NumPy broadcasting (add, mul) and
 * REDUCE_TO, their adjoint: sum over the broadcast dimensions down to a shape.
 *
 * Broadcasting aligns shapes at the last dimension; a missing leading dimension
 * or a dimension of 1 repeats. We express that as element strides of 0.
 */
#include <string.h>
#include "backend/ref/ref_impl.h"

/* Offset of row `row` (all dims but the last) given per-dim strides. */
static int64_t row_offset(const struct deft_shape *out, const int64_t *st, int64_t row) {
    int64_t off = 0;
    for (int i = out->ndim - 2; i >= 0; i--) {
        int64_t d = out->d[i] > 0 ? out->d[i] : 1;
        off += (row % d) * st[i];
        row /= d;
    }
    return off;
}

static enum deft_status binary(const struct deft_graph *g, int n, void *const *ptr, bool mul) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *as = ref_shape(g, nd->in[0]), *bs = ref_shape(g, nd->in[1]);
    const struct deft_shape *ys = ref_shape(g, nd->out[0]);
    const float *a = ref_in(nd, ptr, 0), *b = ref_in(nd, ptr, 1);
    float *y = ref_out(nd, ptr, 0);
    const int64_t cnt = deft_shape_numel(ys);
    if (cnt == 0) return DEFT_OK;
    if (deft_shape_numel(as) == cnt && deft_shape_numel(bs) == cnt) {
        /* Same shape (up to leading 1s): no broadcasting. */
        #pragma omp parallel for
        for (int64_t i = 0; i < cnt; i++) y[i] = mul ? a[i] * b[i] : a[i] + b[i];
        return DEFT_OK;
    }
    if (ys->ndim == 0) {
        y[0] = mul ? a[0] * b[0] : a[0] + b[0];
        return DEFT_OK;
    }
    int64_t sa[DEFT_MAX_DIMS], sb[DEFT_MAX_DIMS];
    view_bcast_strides(as, ys, sa);
    view_bcast_strides(bs, ys, sb);
    const int64_t inner = ys->d[ys->ndim - 1], rows = cnt / inner;
    const int64_t ia = sa[ys->ndim - 1], ib = sb[ys->ndim - 1];
    #pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        const float *ap = a + row_offset(ys, sa, r), *bp = b + row_offset(ys, sb, r);
        float *yp = y + r * inner;
        for (int64_t j = 0; j < inner; j++)
            yp[j] = mul ? ap[j * ia] * bp[j * ib] : ap[j * ia] + bp[j * ib];
    }
    return DEFT_OK;
}

/* ADD: in a, b; out y = a + b (broadcast). */
enum deft_status deft_ref_add(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc) {
    return binary(g, n, ptr, false);
}

/* MUL: in a, b; out y = a * b (broadcast). */
enum deft_status deft_ref_mul(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc) {
    return binary(g, n, ptr, true);
}

/* REDUCE_TO: in x; out y (attr.shape, broadcastable to x): y = sum of x over the
 * dimensions where y is broadcast. */
enum deft_status deft_ref_reduce_to(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->in[0]), *ys = ref_shape(g, nd->out[0]);
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    const int64_t xn = deft_shape_numel(xs), yn = deft_shape_numel(ys);
    if (ys->ndim > xs->ndim)
        return deft_set_error(DEFT_ERR_SHAPE, "ref reduce_to %s: target has more dims", nd->name);
    if (xn == yn) {
        memcpy(y, x, (size_t)xn * sizeof(float));
        return DEFT_OK;
    }
    double *acc = deft_calloc((size_t)(yn > 0 ? yn : 1), sizeof(double));
    if (!acc) return deft_set_error(DEFT_ERR_NOMEM, "ref reduce_to: out of memory");
    if (xs->ndim == 0) {
        acc[0] = x[0];
    } else {
        int64_t sy[DEFT_MAX_DIMS];
        view_bcast_strides(ys, xs, sy);
        const int64_t inner = xs->d[xs->ndim - 1], rows = xn / (inner > 0 ? inner : 1);
        const int64_t iy = sy[xs->ndim - 1];
        for (int64_t r = 0; r < rows && inner > 0; r++) {
            double *ap = acc + row_offset(xs, sy, r);
            const float *xp = x + r * inner;
            for (int64_t j = 0; j < inner; j++) ap[j * iy] += xp[j];
        }
    }
    for (int64_t i = 0; i < yn; i++) y[i] = (float)acc[i];
    deft_free(acc);
    return DEFT_OK;
}

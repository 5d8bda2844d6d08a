/* shape_ops.c - reference data-movement ops: concat, slice, zero pad, reshape.
 * Output shapes come from the graph; these kernels only move elements.
 *
 * Slice and pad walk the output row by row (a row = the last dimension) and map
 * each row to its source row through per-dimension offsets.
 */
#include <string.h>
#include "backend/ref/ref_impl.h"


/* CONCAT: in x0..x(n-1); out y, joined along attr.concat.axis. */
enum deft_status deft_ref_concat(const struct deft_graph *g, int n, void *const *ptr,
                                 const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *ys = ref_shape(g, nd->out[0]);
    int axis = nd->attr.concat.axis;
    if (axis < 0) axis += ys->ndim;
    if (axis < 0 || axis >= ys->ndim)
        return deft_set_error(DEFT_ERR_SHAPE, "ref concat %s: bad axis", nd->name);
    int64_t outer = 1, tail = 1;
    for (int i = 0; i < axis; i++) outer *= ys->d[i];
    for (int i = axis + 1; i < ys->ndim; i++) tail *= ys->d[i];
    const int64_t yrow = ys->d[axis] * tail;
    float *y = ref_out(nd, ptr, 0);
    int64_t col = 0;
    for (int k = 0; k < nd->n_in; k++) {
        if (nd->in[k] < 0) continue;
        const float *x = ref_in(nd, ptr, k);
        const int64_t xrow = ref_shape(g, nd->in[k])->d[axis] * tail;
        #pragma omp parallel for
        for (int64_t o = 0; o < outer; o++)
            memcpy(y + o * yrow + col, x + o * xrow, (size_t)xrow * sizeof(float));
        col += xrow;
    }
    return DEFT_OK;
}

/* SLICE: in x; out y = x[start0:end0, start1:end1, ...] (step 1). */
enum deft_status deft_ref_slice(const struct deft_graph *g, int n, void *const *ptr,
                                const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->in[0]), *ys = ref_shape(g, nd->out[0]);
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    if (xs->ndim != ys->ndim)
        return deft_set_error(DEFT_ERR_SHAPE, "ref slice %s: rank mismatch", nd->name);
    const int nd_ = ys->ndim;
    const int64_t cnt = deft_shape_numel(ys);
    if (cnt == 0) return DEFT_OK;
    if (nd_ == 0) {
        y[0] = x[0];
        return DEFT_OK;
    }
    int64_t start[DEFT_MAX_DIMS], xst[DEFT_MAX_DIMS];
    view_strides(xs, xst);
    for (int i = 0; i < nd_; i++) start[i] = view_slice_start(xs, ys, nd->attr.slice.start[i], i);
    const int64_t inner = ys->d[nd_ - 1], rows = cnt / inner;
    #pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off = start[nd_ - 1];
        for (int i = nd_ - 2; i >= 0; i--) {
            off += (rem % ys->d[i] + start[i]) * xst[i];
            rem /= ys->d[i];
        }
        memcpy(y + r * inner, x + off, (size_t)inner * sizeof(float));
    }
    return DEFT_OK;
}

/* PAD: in x; out y with attr.pad.before/after zeros around x in every dimension. */
enum deft_status deft_ref_pad(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->in[0]), *ys = ref_shape(g, nd->out[0]);
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    if (xs->ndim != ys->ndim)
        return deft_set_error(DEFT_ERR_SHAPE, "ref pad %s: rank mismatch", nd->name);
    const int nd_ = ys->ndim;
    const int64_t cnt = deft_shape_numel(ys);
    if (cnt == 0) return DEFT_OK;
    if (nd_ == 0) {
        y[0] = x[0];
        return DEFT_OK;
    }
    int64_t xst[DEFT_MAX_DIMS];
    view_strides(xs, xst);
    const int64_t *before = nd->attr.pad.before;
    const int64_t inner = ys->d[nd_ - 1], rows = cnt / inner, xw = xs->d[nd_ - 1];
    #pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        float *yp = y + r * inner;
        int64_t rem = r, off = 0;
        bool inside = true;
        for (int i = nd_ - 2; i >= 0; i--) {
            int64_t xi = rem % ys->d[i] - before[i];
            rem /= ys->d[i];
            if (xi < 0 || xi >= xs->d[i]) inside = false;
            off += xi * xst[i];
        }
        for (int64_t j = 0; j < inner; j++) {
            int64_t xj = j - before[nd_ - 1];
            yp[j] = inside && xj >= 0 && xj < xw ? x[off + xj] : 0.0f;
        }
    }
    return DEFT_OK;
}

/* TRANSPOSE: in x; out y with y[i0..ir] = x at the permuted index
 * (attr.shape.d = perm): walk y in order, x by its permuted strides. */
enum deft_status deft_ref_transpose(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc) {
    (void)rc;
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->in[0]), *ys = ref_shape(g, nd->out[0]);
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    int r = xs->ndim;
    int64_t xstride[DEFT_MAX_DIMS], st[DEFT_MAX_DIMS], idx[DEFT_MAX_DIMS] = {0};
    for (int d = r - 1; d >= 0; d--) xstride[d] = d == r - 1 ? 1 : xstride[d + 1] * xs->d[d + 1];
    for (int i = 0; i < r; i++) st[i] = xstride[nd->attr.shape.d[i]];
    const int64_t cnt = ref_numel(g, nd->out[0]);
    int64_t off = 0;
    for (int64_t k = 0; k < cnt; k++) {
        y[k] = x[off];
        for (int d = r - 1; d >= 0; d--) { /* odometer over y's index, x's offset along */
            off += st[d];
            if (++idx[d] < ys->d[d]) break;
            off -= st[d] * ys->d[d];
            idx[d] = 0;
        }
    }
    return DEFT_OK;
}

/* RESHAPE: in x; out y with the same elements in the same order. */
enum deft_status deft_ref_reshape(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    const int64_t cnt = ref_numel(g, nd->out[0]);
    if (ref_numel(g, nd->in[0]) != cnt)
        return deft_set_error(DEFT_ERR_SHAPE, "ref reshape %s: element count differs", nd->name);
    if (x != y && cnt > 0) memmove(y, x, (size_t)cnt * sizeof(float));
    return DEFT_OK;
}

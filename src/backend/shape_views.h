/* shape_views.h (internal) - how kernels view a value's shape, shared by the
 * reference and the CUDA backends so both index tensors the same way. */
#ifndef DEFT_BACKEND_SHAPE_VIEWS_H
#define DEFT_BACKEND_SHAPE_VIEWS_H

#include <stdbool.h>
#include "deft/tensor.h"

/* Row-major element strides of s. */
static inline void view_strides(const struct deft_shape *s, int64_t *st) {
    int64_t acc = 1;
    for (int i = s->ndim - 1; i >= 0; i--) {
        st[i] = acc;
        acc *= s->d[i];
    }
}

/* Strides (in elements) of a tensor of shape `in` read as if it had shape
 * `out` under NumPy broadcasting (aligned at the last dimension): 0 along
 * broadcast dimensions. */
static inline void view_bcast_strides(const struct deft_shape *in, const struct deft_shape *out, int64_t *st) {
    int64_t acc = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int j = i - (out->ndim - in->ndim);
        if (j < 0) {
            st[i] = 0;
            continue;
        }
        st[i] = (in->d[j] == 1 && out->d[i] != 1) ? 0 : acc;
        acc *= in->d[j];
    }
}

/* x[n, c, *] as (outer n, channels c, inner plane): batch norm. */
static inline void view_channels(const struct deft_shape *s, int64_t *nb, int64_t *c, int64_t *plane) {
    *nb = s->ndim > 0 ? s->d[0] : 1;
    *c = s->ndim > 1 ? s->d[1] : 1;
    *plane = 1;
    for (int i = 2; i < s->ndim; i++) *plane *= s->d[i];
}

/* x as [rows, k] with k its last dimension: fully connected layers. */
static inline void view_rows(const struct deft_shape *s, int64_t *rows, int64_t *k) {
    *k = s->ndim > 0 ? s->d[s->ndim - 1] : 1;
    *rows = *k > 0 ? deft_shape_numel(s) / *k : 0;
}

/* s as [outer, dim, inner] around `axis` (negative counts from the end);
 * false when the axis is out of range. */
static inline bool view_axis(const struct deft_shape *s, int axis, int64_t *outer, int64_t *dim, int64_t *inner) {
    if (axis < 0) axis += s->ndim;
    if (axis < 0 || axis >= s->ndim) return false;
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s->d[i];
    for (int i = axis + 1; i < s->ndim; i++) *inner *= s->d[i];
    *dim = s->d[axis];
    return true;
}

/* Start of a slice along dim i of x (Python-style negative starts), clamped
 * so the output (shape from the graph) fits. */
static inline int64_t view_slice_start(const struct deft_shape *xs, const struct deft_shape *ys, int64_t start,
                                       int i) {
    if (start < 0) start += xs->d[i];
    if (start < 0) start = 0;
    if (start > xs->d[i] - ys->d[i]) start = xs->d[i] - ys->d[i];
    return start;
}

#endif

/* onnx_fold.c - constant folding at import: Add, Sub, Mul, Div and Concat of
 * constants (int64 shape arithmetic in exported graphs, or float constants),
 * so the Reshape / Resize / Slice they feed sees constant operands. */
#include <string.h>
#include "io/onnx_impl.h"

bool oi_all_const(struct onnx_imp *im) {
    for (size_t i = 0; i < im->node->n_input; i++)
        if (oi_has_input(im, (int)i) && !oi_input_is_const(im, (int)i)) return false;
    return im->node->n_input > 0;
}

/* Element offset in t of output index i (of shape o), numpy broadcasting. */
static int64_t bcast_offset(const struct deft_shape *t, const struct deft_shape *o, int64_t i) {
    int64_t off = 0, stride = 1;
    for (int d = o->ndim - 1; d >= 0; d--) {
        int64_t c = i % o->d[d];
        i /= o->d[d];
        int td = d - (o->ndim - t->ndim);
        if (td < 0) break;
        if (t->d[td] != 1) off += c * stride;
        stride *= t->d[td];
    }
    return off;
}

static double elem(const struct deft_tensor *t, int64_t i) {
    return t->dtype == DEFT_I64 ? (double)((const int64_t *)t->data)[i] : ((const float *)t->data)[i];
}

enum deft_status oi_fold_binary(struct onnx_imp *im, char op) {
    const struct deft_tensor *a = oi_const(im, 0), *b = a ? oi_const(im, 1) : NULL;
    if (!b) return im->status;
    struct deft_shape o;
    if (deft_shape_broadcast(&a->shape, &b->shape, &o))
        return oi_fail(im, DEFT_ERR_SHAPE, "%s", deft_last_error());
    bool f = a->dtype == DEFT_F32 || b->dtype == DEFT_F32;
    struct deft_tensor *t;
    if (deft_tensor_create(f ? DEFT_F32 : DEFT_I64, &o, &t)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < deft_tensor_numel(t); i++) {
        int64_t ia = bcast_offset(&a->shape, &o, i), ib = bcast_offset(&b->shape, &o, i);
        if (f) {
            float x = (float)elem(a, ia), y = (float)elem(b, ib);
            ((float *)t->data)[i] = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
            continue;
        }
        int64_t x = ((const int64_t *)a->data)[ia], y = ((const int64_t *)b->data)[ib];
        if (op == '/' && (y == 0 || (x == INT64_MIN && y == -1))) {
            deft_tensor_free(t);
            return oi_fail(im, DEFT_ERR_UNSUPPORTED, "integer division by zero in a constant");
        }
        /* wrap-around arithmetic, as ONNX runtimes do, without C's overflow UB */
        uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
        ((int64_t *)t->data)[i] = op == '+' ? (int64_t)(ux + uy) : op == '-' ? (int64_t)(ux - uy)
                                : op == '*' ? (int64_t)(ux * uy) : x / y;
    }
    return oi_bind_const(im, t);
}

enum deft_status oi_fold_concat(struct onnx_imp *im, int64_t axis) {
    int n = (int)im->node->n_input;
    const struct deft_tensor *c0 = oi_const(im, 0);
    if (!c0) return im->status;
    int r = c0->shape.ndim;
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return oi_fail(im, DEFT_ERR_UNSUPPORTED, "axis out of range");
    struct deft_shape o = c0->shape;
    o.d[axis] = 0;
    for (int i = 0; i < n; i++) {
        const struct deft_tensor *c = oi_const(im, i);
        if (!c) return im->status;
        if (c->dtype != c0->dtype || c->shape.ndim != r)
            return oi_fail(im, DEFT_ERR_UNSUPPORTED, "constants of different types or ranks");
        for (int d = 0; d < r; d++)
            if (d != axis && c->shape.d[d] != o.d[d])
                return oi_fail(im, DEFT_ERR_SHAPE, "input %d's shape does not match", i);
        o.d[axis] += c->shape.d[axis];
    }
    struct deft_tensor *t;
    if (deft_tensor_create(c0->dtype, &o, &t)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
    size_t es = c0->dtype == DEFT_I64 ? 8 : 4;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= o.d[d];
    for (int d = (int)axis + 1; d < r; d++) inner *= o.d[d];
    char *dst = t->data;
    for (int64_t p = 0; p < outer; p++)
        for (int i = 0; i < n; i++) {
            const struct deft_tensor *c = oi_const(im, i);
            size_t chunk = (size_t)(c->shape.d[axis] * inner) * es;
            memcpy(dst, (const char *)c->data + (size_t)p * chunk, chunk);
            dst += chunk;
        }
    return oi_bind_const(im, t);
}

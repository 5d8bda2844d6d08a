/* onnx_shape_ops.c - ONNX's shape plumbing: Shape, Gather, Unsqueeze,
 * Squeeze, ConstantOfShape, Cast, Split and Transpose.
 *
 * deft's shapes are static, so what exporters compute at run time from
 * shapes (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) is folded here
 * into constants at import. On activations these ops become deft reshapes
 * and slices (exact copies); anything else is refused with the op named. */
#include <string.h>
#include "io/onnx_impl.h"

#define BAD(...) oi_fail(im, DEFT_ERR_UNSUPPORTED, __VA_ARGS__)

static const struct deft_shape *vshape(struct onnx_imp *im, int v) {
    return &deft_graph_value(im->g, v)->shape;
}

/* The shape of input 0, constant or computed. */
static bool input_shape(struct onnx_imp *im, struct deft_shape *s) {
    if (oi_input_is_const(im, 0)) {
        const struct deft_tensor *t = oi_const(im, 0);
        if (t) *s = t->shape;
        return t != NULL;
    }
    int x = oi_act(im, 0);
    if (x >= 0) *s = *vshape(im, x);
    return x >= 0;
}

/* A new tensor with t's data and shape sh (the same element count). */
static struct deft_tensor *reshaped_copy(struct onnx_imp *im, const struct deft_tensor *t,
                                         const struct deft_shape *sh) {
    struct deft_tensor *o;
    if (deft_tensor_create(t->dtype, sh, &o)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory"), NULL;
    memcpy(o->data, t->data, deft_tensor_nbytes(t));
    return o;
}

/* Output 0 is input 0 with shape o: a folded constant, or a deft reshape
 * (the batch left free when it stays the first dimension). */
static enum deft_status bind_reshaped(struct onnx_imp *im, struct deft_shape o, bool batch_free) {
    if (oi_input_is_const(im, 0)) {
        const struct deft_tensor *t = oi_const(im, 0);
        struct deft_tensor *c = t ? reshaped_copy(im, t, &o) : NULL;
        return c ? oi_bind_const(im, c) : oi_bind(im, -1);
    }
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    if (batch_free && o.ndim) o.d[0] = -1;
    struct deft_attr a = {.shape = o};
    return oi_bind(im, oi_add_node(im, DEFT_OP_RESHAPE, false, &x, 1, &a));
}

/* Axes from the attribute (before opset 13) or the constant input 1;
 * normalized against rank r. Returns the count, -1 with the error set. */
static int read_axes(struct onnx_imp *im, int r, int64_t *ax, bool *given) {
    int n = 0;
    *given = false;
    if (im->opset < 13) {
        if ((n = oi_attr_ints(im, "axes", ax, DEFT_MAX_DIMS)) < 0) return -1;
        *given = oi_attr(im, "axes") != NULL;
    } else if (oi_has_input(im, 1)) {
        const struct deft_tensor *t = oi_const(im, 1);
        if (!t) return -1;
        if (t->dtype != DEFT_I64 || deft_tensor_numel(t) > DEFT_MAX_DIMS)
            return BAD("axes must be at most %d int64 values", DEFT_MAX_DIMS), -1;
        n = (int)deft_tensor_numel(t);
        memcpy(ax, t->data, (size_t)n * sizeof *ax);
        *given = true;
    }
    for (int i = 0; i < n; i++) {
        if (ax[i] < 0) ax[i] += r;
        if (ax[i] < 0 || ax[i] >= r) return BAD("axis out of range"), -1;
        for (int j = 0; j < i; j++)
            if (ax[j] == ax[i]) return BAD("axis %lld given twice", (long long)ax[i]), -1;
    }
    return n;
}

static enum deft_status op_unsqueeze(struct onnx_imp *im) {
    struct deft_shape s, o = {0};
    if (!input_shape(im, &s)) return oi_bind(im, -1);
    int64_t ax[DEFT_MAX_DIMS];
    bool given;
    int n = s.ndim;
    if (im->opset < 13) {
        const Onnx__AttributeProto *a = oi_attr(im, "axes");
        n += a ? (int)(a->n_ints > 64 ? 64 : a->n_ints) : 0;
    } else if (oi_has_input(im, 1)) {
        const struct deft_tensor *t = oi_const(im, 1);
        if (!t) return im->status;
        n += (int)(deft_tensor_numel(t) > 64 ? 64 : deft_tensor_numel(t));
    }
    if (n > DEFT_MAX_DIMS) return BAD("the result would have %d dimensions (at most %d)", n, DEFT_MAX_DIMS);
    int na = read_axes(im, n, ax, &given);
    if (na < 0) return im->status;
    if (!given || na == 0) return BAD("axes missing");
    bool one[DEFT_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) one[ax[i]] = true;
    o.ndim = n;
    for (int d = 0, k = 0; d < n; d++) o.d[d] = one[d] ? 1 : s.d[k++];
    return bind_reshaped(im, o, !one[0]);
}

static enum deft_status op_squeeze(struct onnx_imp *im) {
    struct deft_shape s, o = {0};
    if (!input_shape(im, &s)) return oi_bind(im, -1);
    int64_t ax[DEFT_MAX_DIMS];
    bool given, drop[DEFT_MAX_DIMS] = {false};
    int na = read_axes(im, s.ndim, ax, &given);
    if (na < 0) return im->status;
    for (int i = 0; i < na; i++) {
        if (s.d[ax[i]] != 1) return BAD("axis %lld has size %lld, not 1", (long long)ax[i], (long long)s.d[ax[i]]);
        drop[ax[i]] = true;
    }
    for (int d = 0; d < s.ndim && !given; d++) drop[d] = s.d[d] == 1;
    for (int d = 0; d < s.ndim; d++)
        if (!drop[d]) o.d[o.ndim++] = s.d[d];
    if (o.ndim == 0) return BAD("squeezing to a scalar is not supported");
    return bind_reshaped(im, o, !drop[0]);
}

/* Shape (start and end from opset 15): a constant. */
static enum deft_status op_shape(struct onnx_imp *im) {
    struct deft_shape s;
    if (!input_shape(im, &s)) return oi_bind(im, -1);
    int64_t b = oi_attr_i(im, "start", 0), e = oi_attr_i(im, "end", s.ndim);
    if (b < 0) b += s.ndim;
    if (e < 0) e += s.ndim;
    b = b < 0 ? 0 : b > s.ndim ? s.ndim : b;
    e = e < b ? b : e > s.ndim ? s.ndim : e;
    struct deft_tensor *t;
    if (deft_tensor_create(DEFT_I64, &(struct deft_shape){.ndim = 1, .d = {e - b}}, &t))
        return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
    for (int64_t i = b; i < e; i++) ((int64_t *)t->data)[i - b] = s.d[i];
    return oi_bind_const(im, t);
}

/* ConstantOfShape: a constant filled with the value attribute (0.0f by default). */
static enum deft_status op_constant_of_shape(struct onnx_imp *im) {
    const struct deft_tensor *sh = oi_const(im, 0);
    if (!sh) return im->status;
    int64_t n = deft_tensor_numel(sh);
    if (sh->dtype != DEFT_I64 || n > DEFT_MAX_DIMS) return BAD("the shape must be at most %d int64 values", DEFT_MAX_DIMS);
    struct deft_shape s = {.ndim = (int)n};
    int64_t numel = 1;
    for (int i = 0; i < s.ndim; i++) {
        s.d[i] = ((const int64_t *)sh->data)[i];
        if (s.d[i] < 0 || s.d[i] > (1 << 24)) return BAD("shape entry %lld", (long long)s.d[i]);
        if (s.d[i] && numel > ((int64_t)1 << 28) / s.d[i]) return BAD("a constant of over 2^28 elements");
        numel *= s.d[i];
    }
    const Onnx__AttributeProto *a = oi_attr(im, "value");
    struct deft_tensor *v = NULL, *t;
    enum deft_status st;
    if (a && a->t && (st = deft_onnx_tensor(a->t, im->file, &v))) return oi_fail(im, st, "bad value");
    if (v && deft_tensor_numel(v) != 1) {
        deft_tensor_free(v);
        return BAD("value must hold one element");
    }
    if ((st = deft_tensor_create(v ? v->dtype : DEFT_F32, &s, &t))) {
        deft_tensor_free(v);
        return oi_fail(im, st, "out of memory");
    }
    for (int64_t i = 0; i < deft_tensor_numel(t); i++) {
        if (t->dtype == DEFT_I64) ((int64_t *)t->data)[i] = ((const int64_t *)v->data)[0];
        else ((float *)t->data)[i] = v ? ((const float *)v->data)[0] : 0.0f;
    }
    deft_tensor_free(v);
    return oi_bind_const(im, t);
}

/* Cast: constants convert (float types to f32, integer types to i64,
 * truncating as C does); on an activation only a cast to float is possible. */
static enum deft_status op_cast(struct onnx_imp *im) {
    int64_t to = oi_attr_i(im, "to", 0);
    bool to_float = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    bool to_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    if (!oi_input_is_const(im, 0)) {
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return BAD("cast of a computed value to type %lld (deft computes in float32)", (long long)to);
        return oi_bind(im, oi_act(im, 0));
    }
    const struct deft_tensor *c = oi_const(im, 0);
    if (!c) return im->status;
    if (!to_float && !to_int) return BAD("cast of a constant to type %lld is not supported", (long long)to);
    struct deft_tensor *t;
    if (deft_tensor_create(to_float ? DEFT_F32 : DEFT_I64, &c->shape, &t))
        return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < deft_tensor_numel(c); i++) {
        bool fin = c->dtype == DEFT_F32;
        float f = fin ? ((const float *)c->data)[i] : 0;
        int64_t q = fin ? 0 : ((const int64_t *)c->data)[i];
        if (to_float) ((float *)t->data)[i] = fin ? f : (float)q;
        else if (fin && !(f > -9.2e18f && f < 9.2e18f)) {
            deft_tensor_free(t);
            return BAD("cast of %g to an integer type", (double)f);
        } else ((int64_t *)t->data)[i] = fin ? (int64_t)f : q;
    }
    return oi_bind_const(im, t);
}

/* One slice of x along axis d, [b, e); the batch stays free unless d is 0. */
static int slice_axis(struct onnx_imp *im, int x, int d, int64_t b, int64_t e) {
    struct deft_attr a = {0};
    for (int k = 0; k < vshape(im, x)->ndim; k++) a.slice.end[k] = -1;
    a.slice.start[d] = b;
    a.slice.end[d] = e;
    return oi_add_node(im, DEFT_OP_SLICE, false, &x, 1, &a);
}

/* Gather of constants (folded, any indices); of an activation: a scalar
 * index or an ascending run of indices, as a slice. */
static enum deft_status op_gather(struct onnx_imp *im) {
    struct deft_shape s;
    if (!input_shape(im, &s)) return oi_bind(im, -1);
    const struct deft_tensor *ix = oi_const(im, 1);
    if (!ix) return im->status;
    int64_t axis = oi_attr_i(im, "axis", 0), ni = deft_tensor_numel(ix);
    if (axis < 0) axis += s.ndim;
    if (axis < 0 || axis >= s.ndim) return BAD("axis out of range");
    if (ix->dtype != DEFT_I64 || ix->shape.ndim > 1 || ni < 1) return BAD("indices must be a scalar or a list (int)");
    if (s.ndim - 1 + ix->shape.ndim > DEFT_MAX_DIMS ||
        (s.ndim - 1 + ix->shape.ndim < 1 && !oi_input_is_const(im, 0))) /* constants may be scalars */
        return BAD("the result's rank is not supported");
    int64_t idx[64], dim = s.d[axis];
    if (ni > 64 && !oi_input_is_const(im, 0)) return BAD("more than 64 indices of a computed value");
    struct deft_shape o = {0};
    for (int d = 0; d < s.ndim; d++) {
        if (d == axis && ix->shape.ndim) o.d[o.ndim++] = ni;
        else if (d != axis) o.d[o.ndim++] = s.d[d];
    }
    if (oi_input_is_const(im, 0)) {
        const struct deft_tensor *c = oi_const(im, 0);
        struct deft_tensor *t;
        if (deft_tensor_create(c->dtype, &o, &t)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= s.d[d];
        for (int d = (int)axis + 1; d < s.ndim; d++) inner *= s.d[d];
        size_t es = c->dtype == DEFT_I64 ? 8 : 4;
        for (int64_t p = 0; p < outer; p++)
            for (int64_t j = 0; j < ni; j++) {
                int64_t i = ((const int64_t *)ix->data)[j];
                if (i < 0) i += dim;
                if (i < 0 || i >= dim) {
                    deft_tensor_free(t);
                    return BAD("index %lld out of range", (long long)((const int64_t *)ix->data)[j]);
                }
                memcpy((char *)t->data + (size_t)((p * ni + j) * inner) * es,
                       (const char *)c->data + (size_t)((p * dim + i) * inner) * es, (size_t)inner * es);
            }
        return oi_bind_const(im, t);
    }
    /* runs of consecutive indices, each a slice, joined by a concat */
    int x = oi_act(im, 0), parts[DEFT_MAX_INPUTS], np = 0;
    for (int64_t j = 0, run = 0; j < ni && x >= 0; j++) {
        idx[j] = ((const int64_t *)ix->data)[j];
        if (idx[j] < 0) idx[j] += dim;
        if (idx[j] < 0 || idx[j] >= dim) return BAD("index %lld out of range", (long long)idx[j]);
        if (j + 1 < ni && ((const int64_t *)ix->data)[j + 1] == ((const int64_t *)ix->data)[j] + 1 &&
            ((const int64_t *)ix->data)[j] != -1)
            continue;
        if (np == DEFT_MAX_INPUTS) return BAD("indices of a computed value in more than %d runs", DEFT_MAX_INPUTS);
        if ((parts[np++] = slice_axis(im, x, (int)axis, idx[run], idx[j] + 1)) < 0) return oi_bind(im, -1);
        run = j + 1;
    }
    if (x < 0) return oi_bind(im, -1);
    int y = parts[0];
    if (np > 1) {
        struct deft_attr c = {.concat = {(int)axis}};
        y = oi_add_node(im, DEFT_OP_CONCAT, false, parts, np, &c);
    }
    if (y < 0 || ix->shape.ndim) return oi_bind(im, y);
    if (axis) o.d[0] = -1;
    struct deft_attr a = {.shape = o};
    return oi_bind(im, oi_add_node(im, DEFT_OP_RESHAPE, false, &y, 1, &a));
}

/* Split of an activation into slices: sizes from the split attribute
 * (before opset 13) or input, else equal parts (num_outputs from opset 18). */
static enum deft_status op_split(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    const struct deft_shape s = *vshape(im, x);
    int64_t axis = oi_attr_i(im, "axis", 0), sz[DEFT_MAX_OUTPUTS * 32];
    int n = (int)im->node->n_output, max = (int)(sizeof sz / sizeof sz[0]);
    if (axis < 0) axis += s.ndim;
    if (axis < 0 || axis >= s.ndim) return BAD("axis out of range");
    if (n < 1 || n > max) return BAD("%d outputs (deft takes at most %d)", n, max);
    int ns = 0;
    if (im->opset < 13) {
        if ((ns = oi_attr_ints(im, "split", sz, max)) < 0) return im->status;
    } else if (oi_has_input(im, 1)) {
        const struct deft_tensor *t = oi_const(im, 1);
        if (!t) return im->status;
        if (t->dtype != DEFT_I64 || deft_tensor_numel(t) > max) return BAD("split must be int64 sizes");
        ns = (int)deft_tensor_numel(t);
        memcpy(sz, t->data, (size_t)ns * sizeof *sz);
    }
    int64_t dim = s.d[axis], sum = 0;
    if (!ns) {
        if (dim % n) return BAD("%lld does not split into %d equal parts", (long long)dim, n);
        for (int k = 0; k < n; k++) sz[k] = dim / n;
        ns = n;
    }
    if (ns != n) return BAD("split gives %d sizes for %d outputs", ns, n);
    for (int k = 0; k < n; k++) {
        if (sz[k] < 1) return BAD("empty parts are not supported");
        sum += sz[k];
    }
    if (sum != dim) return BAD("the sizes add up to %lld, not %lld", (long long)sum, (long long)dim);
    for (int k = 0, b = 0; k < n; b += (int)sz[k], k++) {
        int y = slice_axis(im, x, (int)axis, b, b + sz[k]);
        enum deft_status st = oi_bind_output(im, k, y);
        if (st) return st;
    }
    return DEFT_OK;
}

/* Transpose: folded on a constant, deft's transpose op on an activation. */
static enum deft_status op_transpose(struct onnx_imp *im) {
    struct deft_shape s;
    if (!input_shape(im, &s)) return oi_bind(im, -1);
    int64_t p[DEFT_MAX_DIMS];
    int np = oi_attr_ints(im, "perm", p, DEFT_MAX_DIMS), perm[DEFT_MAX_DIMS];
    if (np < 0) return im->status;
    if (!np)
        for (np = 0; np < s.ndim; np++) p[np] = s.ndim - 1 - np; /* default: reversed */
    if (np != s.ndim) return BAD("perm has %d entries for rank %d", np, s.ndim);
    for (int i = 0; i < np; i++) perm[i] = p[i] >= 0 && p[i] < np ? (int)p[i] : -1;
    if (!oi_input_is_const(im, 0)) {
        int x = oi_act(im, 0);
        struct deft_attr a = {.shape = {.ndim = np}};
        for (int i = 0; i < np; i++) a.shape.d[i] = perm[i];
        return oi_bind(im, x < 0 ? -1 : oi_add_node(im, DEFT_OP_TRANSPOSE, false, &x, 1, &a));
    }
    const struct deft_tensor *c = oi_const(im, 0);
    struct deft_shape o = {.ndim = np};
    bool seen[DEFT_MAX_DIMS] = {false};
    for (int i = 0; i < np; i++) {
        if (perm[i] < 0 || seen[perm[i]]) return BAD("perm is not a permutation");
        seen[perm[i]] = true;
        o.d[i] = s.d[perm[i]];
    }
    struct deft_tensor *t;
    if (deft_tensor_create(c->dtype, &o, &t)) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
    size_t es = c->dtype == DEFT_I64 ? 8 : 4;
    int64_t xst[DEFT_MAX_DIMS], idx[DEFT_MAX_DIMS] = {0};
    for (int d = np - 1; d >= 0; d--) xst[d] = d == np - 1 ? 1 : xst[d + 1] * s.d[d + 1];
    for (int64_t k = 0; k < deft_tensor_numel(t); k++) {
        int64_t off = 0;
        for (int i = 0; i < np; i++) off += idx[i] * xst[perm[i]];
        memcpy((char *)t->data + (size_t)k * es, (const char *)c->data + (size_t)off * es, es);
        for (int d = np - 1; d >= 0 && ++idx[d] == o.d[d]; d--) idx[d] = 0;
    }
    return oi_bind_const(im, t);
}

const struct onnx_op oi_shape_ops[] = {
    {"Cast", op_cast}, {"ConstantOfShape", op_constant_of_shape}, {"Gather", op_gather},
    {"Shape", op_shape}, {"Split", op_split}, {"Squeeze", op_squeeze}, {"Transpose", op_transpose},
    {"Unsqueeze", op_unsqueeze},
    {NULL, NULL},
};

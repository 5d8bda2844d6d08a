/* tensor.c - shapes and host tensors. */
#include <stdio.h>
#include <string.h>
#include "deft/tensor.h"

size_t deft_dtype_size(enum deft_dtype t) {
    static const size_t sz[] = {4, 2, 2, 1, 1, 4, 8, 8};
    _Static_assert(sizeof sz / sizeof sz[0] == DEFT_DTYPE_COUNT, "dtype sizes");
    return (unsigned)t < DEFT_DTYPE_COUNT ? sz[t] : 0;
}

const char *deft_dtype_name(enum deft_dtype t) {
    static const char *const nm[] = {"f32", "f16", "bf16", "i8", "u8", "i32", "i64", "f64"};
    _Static_assert(sizeof nm / sizeof nm[0] == DEFT_DTYPE_COUNT, "dtype names");
    return (unsigned)t < DEFT_DTYPE_COUNT ? nm[t] : "?";
}

struct deft_shape deft_shape_make(int ndim, const int64_t *d) {
    struct deft_shape s = {0};
    if (ndim < 0) ndim = 0;
    if (ndim > DEFT_MAX_DIMS) ndim = DEFT_MAX_DIMS;
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

struct deft_shape deft_shape4(int64_t n, int64_t c, int64_t h, int64_t w) {
    return (struct deft_shape){.ndim = 4, .d = {n, c, h, w}};
}

int64_t deft_shape_numel(const struct deft_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->d[i];
    return n;
}

bool deft_shape_equal(const struct deft_shape *a, const struct deft_shape *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i]) return false;
    return true;
}

char *deft_shape_str(const struct deft_shape *s, char *buf, size_t n) {
    size_t k = 0;
    if (n == 0) return buf;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < s->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)s->d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

enum deft_status deft_shape_broadcast(const struct deft_shape *a, const struct deft_shape *b,
                                      struct deft_shape *out) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    struct deft_shape r = {.ndim = nd};
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[96], sb[96];
            return deft_set_error(DEFT_ERR_SHAPE, "shapes %s and %s do not broadcast",
                                  deft_shape_str(a, sa, sizeof sa), deft_shape_str(b, sb, sizeof sb));
        }
        r.d[i] = da == 1 ? db : da;
    }
    *out = r;
    return DEFT_OK;
}

static void set_contiguous_strides(struct deft_tensor *t) {
    int64_t st = 1;
    for (int i = t->shape.ndim - 1; i >= 0; i--) {
        t->stride[i] = st;
        st *= t->shape.d[i];
    }
}

enum deft_status deft_tensor_create(enum deft_dtype dt, const struct deft_shape *s,
                                    struct deft_tensor **out) {
    *out = NULL;
    if ((unsigned)dt >= DEFT_DTYPE_COUNT || s->ndim < 0 || s->ndim > DEFT_MAX_DIMS)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "bad tensor dtype or rank");
    /* n: the element count; span: the product of the nonzero dimensions, which
     * the strides reach even when a zero dimension makes the tensor empty */
    int64_t n = 1, span = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->d[i] < 0 || (s->d[i] && span > INT64_MAX / 16 / s->d[i]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "tensor dimension out of range");
        n *= s->d[i];
        if (s->d[i]) span *= s->d[i];
    }
    struct deft_tensor *t = deft_calloc(1, sizeof *t);
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory allocating a tensor");
    t->dtype = dt;
    t->shape = *s;
    set_contiguous_strides(t);
    t->data = deft_calloc((size_t)n ? (size_t)n : 1, deft_dtype_size(dt));
    if (!t->data) {
        deft_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory allocating a tensor of %lld elements",
                              (long long)n);
    }
    t->owns_data = true;
    *out = t;
    return DEFT_OK;
}

struct deft_tensor deft_tensor_view(enum deft_dtype dt, const struct deft_shape *s, void *data) {
    struct deft_tensor t = {.dtype = dt, .shape = *s, .data = data};
    set_contiguous_strides(&t);
    return t;
}

void deft_tensor_free(struct deft_tensor *t) {
    if (!t) return;
    if (t->owns_data) deft_free(t->data);
    deft_free(t);
}

int64_t deft_tensor_numel(const struct deft_tensor *t) { return deft_shape_numel(&t->shape); }
size_t deft_tensor_nbytes(const struct deft_tensor *t) {
    return (size_t)deft_tensor_numel(t) * deft_dtype_size(t->dtype);
}

bool deft_tensor_is_contiguous(const struct deft_tensor *t) {
    int64_t st = 1;
    for (int i = t->shape.ndim - 1; i >= 0; i--) {
        if (t->shape.d[i] != 1 && t->stride[i] != st) return false;
        st *= t->shape.d[i];
    }
    return true;
}

/* convert.c - io module: dtype conversion to f32, strided gathers and
 * checked byte sizes, shared by the file readers and writers. Data in files
 * is little-endian; deft only builds for little-endian hosts. */
#include <string.h>
#include "io_impl.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "deft io assumes a little-endian host");

float deft_io_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {
        /* subnormal: normalise the mantissa */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float deft_io_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

bool deft_io_shape_bytes(const struct deft_shape *s, size_t elem, uint64_t *nbytes) {
    uint64_t n = elem, span = elem; /* span: nonzero dimensions only, what strides reach */
    for (int i = 0; i < s->ndim; i++) {
        if (s->d[i] < 0) return false;
        uint64_t d = (uint64_t)s->d[i];
        if (d && span > (uint64_t)INT64_MAX / 16 / d) return false;
        n *= d;
        if (d) span *= d;
    }
    if (n > (uint64_t)SIZE_MAX / 2) return false;
    *nbytes = n;
    return true;
}

enum deft_status deft_io_tensor_bytes(const struct deft_tensor *t, const char *what,
                                      size_t *nbytes) {
    if (!t) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: NULL tensor", what);
    if (t->device != DEFT_DEVICE_CPU)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: tensor is not in host memory", what);
    if ((unsigned)t->dtype >= DEFT_DTYPE_COUNT || t->shape.ndim < 0 ||
        t->shape.ndim > DEFT_MAX_DIMS)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: bad tensor dtype or rank", what);
    uint64_t n;
    if (!deft_io_shape_bytes(&t->shape, deft_dtype_size(t->dtype), &n))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: tensor shape out of range", what);
    if (n && !t->data) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: tensor has no data", what);
    *nbytes = (size_t)n;
    return DEFT_OK;
}

void deft_io_gather(const struct deft_tensor *t, void *dst) {
    size_t es = deft_dtype_size(t->dtype);
    int64_t numel = deft_shape_numel(&t->shape);
    if (numel <= 0) return;
    if (deft_tensor_is_contiguous(t)) {
        memcpy(dst, t->data, (size_t)numel * es);
        return;
    }
    /* odometer over the index space in C order */
    int nd = t->shape.ndim;
    int64_t idx[DEFT_MAX_DIMS] = {0};
    const char *src = t->data;
    char *out = dst;
    for (int64_t k = 0; k < numel; k++) {
        int64_t off = 0;
        for (int i = 0; i < nd; i++) off += idx[i] * t->stride[i];
        memcpy(out + (size_t)k * es, src + off * (int64_t)es, es);
        for (int i = nd - 1; i >= 0; i--) {
            if (++idx[i] < t->shape.d[i]) break;
            idx[i] = 0;
        }
    }
}

/* Element i (C order) of a contiguous buffer of dtype dt, as float. */
static float elem_f32(enum deft_dtype dt, const void *p, size_t i) {
    const unsigned char *b = p;
    switch (dt) {
    case DEFT_F32: { float v; memcpy(&v, b + 4 * i, 4); return v; }
    case DEFT_F64: { double v; memcpy(&v, b + 8 * i, 8); return (float)v; }
    case DEFT_F16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return deft_io_f16_to_f32(v); }
    case DEFT_BF16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return deft_io_bf16_to_f32(v); }
    case DEFT_I8: return (float)((const int8_t *)p)[i];
    case DEFT_U8: return (float)b[i];
    case DEFT_I32: { int32_t v; memcpy(&v, b + 4 * i, 4); return (float)v; }
    case DEFT_I64: { int64_t v; memcpy(&v, b + 8 * i, 8); return (float)v; }
    default: return 0;
    }
}

enum deft_status deft_tensor_to_f32(const struct deft_tensor *t, float *dst) {
    size_t nbytes;
    enum deft_status s = deft_io_tensor_bytes(t, "converting to f32", &nbytes);
    if (s) return s;
    size_t n = (size_t)deft_shape_numel(&t->shape);
    if (n == 0) return DEFT_OK;
    const void *src = t->data;
    void *tmp = NULL;
    if (!deft_tensor_is_contiguous(t)) {
        tmp = deft_malloc(nbytes);
        if (!tmp) return deft_set_error(DEFT_ERR_NOMEM, "out of memory converting a tensor to f32");
        deft_io_gather(t, tmp);
        src = tmp;
    }
    if (t->dtype == DEFT_F32)
        memcpy(dst, src, n * 4);
    else
        for (size_t i = 0; i < n; i++) dst[i] = elem_f32(t->dtype, src, i);
    deft_free(tmp);
    return DEFT_OK;
}

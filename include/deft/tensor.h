/* deft/tensor.h - dtypes, shapes and host tensors.
 *
 * A `struct deft_tensor` is a plain, row-major (C-contiguous unless strides say
 * otherwise) block of host memory with a dtype and a shape. It is what crosses
 * the library boundary: weights read from a file, a batch given to a runtime,
 * an output copied back. Inside a runtime a backend may keep values in other
 * layouts (oneDNN blocked) or on another device; it converts at the edges.
 *
 * Ownership: deft_tensor_create() allocates data that deft_tensor_free() frees.
 * deft_tensor_view() wraps caller memory and never frees it.
 */
#ifndef DEFT_TENSOR_H
#define DEFT_TENSOR_H

#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_MAX_DIMS 6

/* Stable numbering. Only F32 is computed on today; the others are reserved
 * for mixed precision (CUDA AMP) and INT8 export. */
enum deft_dtype {
    DEFT_F32 = 0,
    DEFT_F16 = 1,
    DEFT_BF16 = 2,
    DEFT_I8 = 3,
    DEFT_U8 = 4,
    DEFT_I32 = 5,
    DEFT_I64 = 6,
    DEFT_F64 = 7,
    DEFT_DTYPE_COUNT
};

enum deft_device { DEFT_DEVICE_CPU = 0, DEFT_DEVICE_CUDA = 1 };

struct deft_shape {
    int ndim;
    int64_t d[DEFT_MAX_DIMS];
};

struct deft_tensor {
    enum deft_dtype dtype;
    enum deft_device device;
    struct deft_shape shape;
    int64_t stride[DEFT_MAX_DIMS]; /* in elements */
    void *data;
    bool owns_data;
};

DEFT_API size_t deft_dtype_size(enum deft_dtype t);
DEFT_API const char *deft_dtype_name(enum deft_dtype t); /* "f32" ... */

/* Shape helpers. deft_shape_make(2, (int64_t[]){3, 4}). */
DEFT_API struct deft_shape deft_shape_make(int ndim, const int64_t *d);
DEFT_API struct deft_shape deft_shape4(int64_t n, int64_t c, int64_t h, int64_t w);
DEFT_API int64_t deft_shape_numel(const struct deft_shape *s);
DEFT_API bool deft_shape_equal(const struct deft_shape *a, const struct deft_shape *b);
/* "[16, 3, 224, 224]" into buf; returns buf. */
DEFT_API char *deft_shape_str(const struct deft_shape *s, char *buf, size_t n);
/* NumPy broadcasting of a and b into out; DEFT_ERR_SHAPE when incompatible. */
DEFT_API DEFT_NODISCARD enum deft_status deft_shape_broadcast(const struct deft_shape *a,
                                                             const struct deft_shape *b,
                                                             struct deft_shape *out);

/* Allocate a zeroed contiguous host tensor (*out must be freed with deft_tensor_free). */
DEFT_API DEFT_NODISCARD enum deft_status deft_tensor_create(enum deft_dtype t,
                                                           const struct deft_shape *s,
                                                           struct deft_tensor **out);
/* A non-owning contiguous view of caller memory (by value, nothing to free). */
DEFT_API struct deft_tensor deft_tensor_view(enum deft_dtype t, const struct deft_shape *s,
                                             void *data);
DEFT_API void deft_tensor_free(struct deft_tensor *t);
DEFT_API int64_t deft_tensor_numel(const struct deft_tensor *t);
DEFT_API size_t deft_tensor_nbytes(const struct deft_tensor *t);
DEFT_API bool deft_tensor_is_contiguous(const struct deft_tensor *t);

#ifdef __cplusplus
}
#endif
#endif

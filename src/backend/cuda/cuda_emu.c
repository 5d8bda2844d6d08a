/* cuda_emu.c - the device API of cuda_dev.h on the host: memory is host
 * memory, a launch runs the kernel's body for every item (in parallel with
 * OpenMP: items are independent by construction), and the GEMM follows
 * cuBLAS's contract, rounding its inputs to bf16 or fp16 in the AMP math
 * modes as the tensor cores do. It exists so the CUDA backend's host code
 * runs in every test on machines without a GPU ("cuda-emu" backend). */
#include <stdio.h>
#include <string.h>
#include "backend/cuda/cuda_bodies.h"
#include "deft/core.h"

struct cuda_ctx {
    enum cuda_math math;
    char err[128];
};

static int emu_open(int index, enum cuda_math math, struct cuda_ctx **out, char *err, size_t errlen) {
    *out = NULL;
    if (index != 0) {
        snprintf(err, errlen, "cuda-emu has one device (index 0), not %d", index);
        return 1;
    }
    struct cuda_ctx *c = deft_calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->math = math;
    *out = c;
    return 0;
}
static void emu_close(struct cuda_ctx *c) { deft_free(c); }
static void *emu_alloc(size_t bytes) { return deft_malloc_aligned(bytes ? bytes : 64); }
static void emu_free(void *p) { deft_free_aligned(p); }
static int emu_memset0(struct cuda_ctx *c, void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
    return 0;
}
static int emu_copy(struct cuda_ctx *c, void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
    return 0;
}
static int emu_sync(struct cuda_ctx *c, char *err, size_t errlen) { return 0; }

/* Round to bf16 (8-bit mantissa) or fp16 (11-bit, flushed like a half) by
 * nearest-even on the float's bits; the tensor cores see these values. */
static float round_bits(float v, enum cuda_math m) {
    if (m == CUDA_MATH_FP32 || !isfinite(v)) return v;
    if (m == CUDA_MATH_FP16) {
        if (fabsf(v) > 65504.0f) return v > 0 ? INFINITY : -INFINITY;
        if (fabsf(v) < 6.1035156e-05f) /* subnormal half: a fixed 2^-24 grid */
            return nearbyintf(v * 16777216.0f) / 16777216.0f;
    }
    const int drop = m == CUDA_MATH_BF16 ? 16 : 13;
    uint32_t u;
    memcpy(&u, &v, 4);
    const uint32_t half = 1u << (drop - 1), lsb = (u >> drop) & 1u;
    u = (u + half - 1 + lsb) & ~((1u << drop) - 1);
    memcpy(&v, &u, 4);
    return v;
}

static int emu_gemm(struct cuda_ctx *c, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, int64_t sa, const float *b, int64_t ldb, int64_t sb,
                    float beta, float *cm, int64_t ldc, int64_t sc, int64_t batch) {
    const enum cuda_math math = c->math;
    #pragma omp parallel for collapse(2)
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t i = 0; i < m; i++) {
            const float *A = a + bi * sa, *B = b + bi * sb;
            float *C = cm + bi * sc;
            for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t l = 0; l < k; l++) {
                    float x = ta ? A[l * lda + i] : A[i * lda + l];
                    float y = tb ? B[j * ldb + l] : B[l * ldb + j];
                    acc += (double)round_bits(x, math) * round_bits(y, math);
                }
                /* cuBLAS does not read C when beta == 0 (it may hold NaN). */
                C[i * ldc + j] = (float)(alpha * acc + (beta != 0 ? beta * C[i * ldc + j] : 0.0));
            }
        }
    return 0;
}

static int emu_launch(struct cuda_ctx *c, enum ck_kernel k, int64_t items, const union ck_args *a) {
    switch (k) {
#define CK_CASE(id, member, body)                              \
    case id: {                                                 \
        const struct ck_##member *args = &a->member;           \
        _Pragma("omp parallel for")                            \
        for (int64_t i = 0; i < items; i++) body(i, args);     \
        return 0;                                              \
    }
        CK_KERNELS(CK_CASE)
#undef CK_CASE
    case CK_COUNT: break;
    }
    snprintf(c->err, sizeof c->err, "unknown kernel %d", (int)k);
    return 1;
}

static const char *emu_error(struct cuda_ctx *c) { return c ? c->err : "cuda-emu error"; }

const struct cuda_api cuda_api_emu = {
    .name = "cuda-emu",
    .open = emu_open,
    .close = emu_close,
    .alloc = emu_alloc,
    .free = emu_free,
    .memset0 = emu_memset0,
    .copy = emu_copy,
    .sync = emu_sync,
    .gemm = emu_gemm,
    .launch = emu_launch,
    .error = emu_error,
};

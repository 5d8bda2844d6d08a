/* cuda_real.cu - the device API of cuda_dev.h on an NVIDIA GPU: managed
 * memory (host-readable after a sync, resident on the device while kernels
 * run), one stream per program, cuBLAS for the GEMMs (TF32 off in fp32 mode
 * so results match the reference; *_FAST_16BF / _16F under --use_amp), and
 * one grid-stride __global__ kernel per body of cuda_bodies.h. */
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>
#include <cublas_v2.h>

extern "C" {
#include "backend/cuda/cuda_bodies.h"
}

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    enum cuda_math math;
    char err[256];
};

static int set_err(struct cuda_ctx *c, const char *what, cudaError_t e) {
    if (c) snprintf(c->err, sizeof c->err, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return 1;
}

static int real_open(int index, enum cuda_math math, struct cuda_ctx **out, char *err, size_t errlen) {
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(err, errlen, "no usable NVIDIA GPU: %s (is the driver installed and a GPU visible?)",
                 cudaGetErrorString(e));
        return 1;
    }
    if (count == 0) {
        snprintf(err, errlen, "no NVIDIA GPU found (CUDA_VISIBLE_DEVICES=%s)",
                 getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "unset");
        return 1;
    }
    if (index < 0 || index >= count) {
        snprintf(err, errlen, "--gpu_index %d: this machine has %d GPU%s (0..%d)", index, count,
                 count == 1 ? "" : "s", count - 1);
        return 1;
    }
    struct cuda_ctx *c = (struct cuda_ctx *)calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    c->device = index;
    c->math = math;
    int managed = 0;
    if ((e = cudaSetDevice(index)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&managed, cudaDevAttrConcurrentManagedAccess, index)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(err, errlen, "GPU %d: %s", index, cudaGetErrorString(e));
        free(c);
        return 1;
    }
    if (cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errlen, "GPU %d: cuBLAS failed to initialize", index);
        cudaStreamDestroy(c->stream);
        free(c);
        return 1;
    }
    cublasSetStream(c->blas, c->stream);
    /* fp32 means fp32: no silent TF32 (the op matrix compares with the reference at 1e-4). */
    cublasSetMathMode(c->blas, math == CUDA_MATH_FP32 ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH);
    *out = c;
    return 0;
}

static void real_close(struct cuda_ctx *c) {
    if (!c) return;
    cudaStreamSynchronize(c->stream);
    cublasDestroy(c->blas);
    cudaStreamDestroy(c->stream);
    free(c);
}

static void *real_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMallocManaged(&p, bytes ? bytes : 64, cudaMemAttachGlobal) != cudaSuccess) return NULL;
    return p;
}
static void real_free(void *p) {
    if (p) cudaFree(p);
}
static int real_memset0(struct cuda_ctx *c, void *p, size_t bytes) {
    cudaError_t e = cudaMemsetAsync(p, 0, bytes, c->stream);
    return e == cudaSuccess ? 0 : set_err(c, "cudaMemsetAsync", e);
}
static int real_copy(struct cuda_ctx *c, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return 0;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, c->stream);
    return e == cudaSuccess ? 0 : set_err(c, "cudaMemcpyAsync", e);
}
static int real_sync(struct cuda_ctx *c, char *err, size_t errlen) {
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    snprintf(err, errlen, "GPU %d: %s", c->device, cudaGetErrorString(e));
    return 1;
}

static const char *blas_status(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "out of GPU memory";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "not supported on this GPU";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
    }
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the
 * operands, keep each one's transpose flag. */
static int real_gemm(struct cuda_ctx *c, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, int64_t sa, const float *b, int64_t ldb, int64_t sb,
                     float beta, float *cm, int64_t ldc, int64_t sc, int64_t batch) {
    if (m == 0 || n == 0 || batch == 0) return 0;
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || batch > INT32_MAX) {
        snprintf(c->err, sizeof c->err, "GEMM dimensions beyond cuBLAS's 32-bit range");
        return 1;
    }
    const cublasComputeType_t compute = c->math == CUDA_MATH_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                      : c->math == CUDA_MATH_FP16 ? CUBLAS_COMPUTE_32F_FAST_16F
                                                                  : CUBLAS_COMPUTE_32F;
    cublasStatus_t s = cublasGemmStridedBatchedEx(
        c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha,
        b, CUDA_R_32F, (int)ldb, sb, a, CUDA_R_32F, (int)lda, sa, &beta, cm, CUDA_R_32F, (int)ldc, sc, (int)batch,
        compute, CUBLAS_GEMM_DEFAULT);
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    snprintf(c->err, sizeof c->err, "cuBLAS GEMM %lldx%lldx%lld: %s", (long long)m, (long long)n, (long long)k,
             blas_status(s));
    return 1;
}

#define CK_GLOBAL(id, member, body)                                                    \
    __global__ void k_##body(int64_t items, struct ck_##member args) {                 \
        const int64_t stride = (int64_t)gridDim.x * blockDim.x;                        \
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < items; i += stride) \
            body(i, &args);                                                            \
    }
CK_KERNELS(CK_GLOBAL)
#undef CK_GLOBAL

static int real_launch(struct cuda_ctx *c, enum ck_kernel k, int64_t items, const union ck_args *a) {
    const int threads = 256;
    int64_t blocks = (items + threads - 1) / threads;
    if (blocks > 65535 * 8) blocks = 65535 * 8; /* grid-stride covers the rest */
    if (blocks < 1) blocks = 1;
    switch (k) {
#define CK_CASE(id, member, body)                                                        \
    case id: k_##body<<<(unsigned)blocks, threads, 0, c->stream>>>(items, a->member); break;
        CK_KERNELS(CK_CASE)
#undef CK_CASE
    default:
        snprintf(c->err, sizeof c->err, "unknown kernel %d", (int)k);
        return 1;
    }
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? 0 : set_err(c, "kernel launch", e);
}

static const char *real_error(struct cuda_ctx *c) { return c ? c->err : "CUDA error"; }

extern "C" const struct cuda_api cuda_api_real = {
    "cuda", real_open, real_close, real_alloc, real_free, real_memset0,
    real_copy, real_sync, real_gemm, real_launch, real_error,
};

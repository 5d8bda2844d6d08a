/* cuda_dev.h (internal) - what the CUDA backend's host code asks of a device.
 *
 * The backend (cuda_backend.c, cuda_ops.c) never calls the CUDA runtime
 * itself: it calls a `struct cuda_api`, of which there are two:
 *   - cuda_api_real (cuda_real.cu, built with DEFT_CUDA): cudart, cuBLAS,
 *     and one __global__ grid-stride kernel per body of cuda_bodies.h;
 *   - cuda_api_emu (cuda_emu.c, always built): host memory, a naive GEMM
 *     with cuBLAS's semantics, and the same bodies run in host loops.
 * So every line of the backend above the device (geometry, scratch
 * planning, GEMM shapes, kernel arguments) is tested on any machine through
 * the "cuda-emu" backend, and only the thin real layer needs a GPU.
 *
 * Kernels are "items + arguments + a per-item body": launch(k, items, args)
 * runs body_k(i, args) for every i < items, in any order, each item writing
 * only its own outputs (no atomics, so results are deterministic).
 */
#ifndef DEFT_CUDA_DEV_H
#define DEFT_CUDA_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CK_MAX_DIMS 8

/* ---- kernel arguments (plain data: copied by value into the launch) ---- */

struct ck_act { const float *x, *dy; float *y; int kind; float alpha; int from_y; };
/* y = a op b with broadcasting: per-dim element strides (0 = broadcast). */
struct ck_binary {
    const float *a, *b; float *y; int ndim, mul;
    int64_t yd[CK_MAX_DIMS], sa[CK_MAX_DIMS], sb[CK_MAX_DIMS];
};
/* y[j] = sum of x over the dims where y is broadcast: x dims xd, y strides sy
 * aligned to x (0 = reduced), y dims yd aligned to x (1 = reduced). */
struct ck_reduce {
    const float *x; float *y; int ndim;
    int64_t xd[CK_MAX_DIMS], yd[CK_MAX_DIMS];
};
/* Strided region copy: for every coordinate c of region rd,
 * y[obase + sum c*os] = x[sum (c + istart)*is] when 0 <= c + istart < id (else 0). */
struct ck_copy {
    const float *x; float *y; int ndim; int64_t obase;
    int64_t rd[CK_MAX_DIMS], os[CK_MAX_DIMS], is[CK_MAX_DIMS], istart[CK_MAX_DIMS], id[CK_MAX_DIMS];
};
struct ck_pool {
    const float *x, *dy; float *y; int32_t *ws_out; const int32_t *ws_in;
    int64_t planes, h, w, p, q, kh, kw, sh, sw, pt, pl, pb, pr;
    int max, include_pad;
};
/* Global average pool over planes of `plane` elements. */
struct ck_gap { const float *x; float *y; int64_t planes, plane; };
/* Per-channel sums over x[outer, ch, inner] in `parts` chunks per channel:
 * part[c*parts + j] = sum over chunk j of x (SUM); of (x - mean)^2 with the
 * mean from sum_part (SQDEV); of x and x*(x2 - mean[c])*istd[c] (BN_BWD). */
struct ck_chsum {
    const float *x, *x2, *mean, *var; const double *sum_part; double *part; double *part2;
    int64_t outer, ch, inner, parts; float eps; int mode; /* CK_CHSUM_* */
};
enum { CK_CHSUM_SUM = 0, CK_CHSUM_SQDEV, CK_CHSUM_BN_BWD };
/* out[c] = sum of the parts of channel c. */
struct ck_parts { const double *part; float *out; int64_t parts; };
/* BN finish per channel: combine the parts, update running stats, write the
 * saved statistics and the affine (scale, shift) used by ck_bn_apply. */
struct ck_bn {
    const double *part, *part2; const float *x, *dy, *gamma, *beta, *smean_in, *svar_in;
    float *rmean, *rvar, *smean, *svar, *dgamma, *dbeta, *y, *dx; float *coef; /* [ch*3] */
    int64_t outer, ch, inner, parts; float eps, momentum; int train, has_running;
};
/* im2col of images [img0, img0+nimg) of x[n, c, h, w] into col[nimg][c*r*s][p*q];
 * col2im is its adjoint (gathered per input element). */
struct ck_im2col {
    const float *x, *col_in; float *col, *dx; int64_t img0, nimg;
    int64_t c, h, w, p, q, r, s, sh, sw, ph, pw, dh, dw;
};
/* y[i] += bias[(i / inner) % ch] */
struct ck_bias { float *y; const float *bias; int64_t inner, ch; };
struct ck_dropout { const float *x, *mask_in; float *y, *mask; uint64_t seed, stream, base; float p, scale; int active;
                    int64_t per; uint64_t world, rank; /* data parallel: global item of element i */ };
struct ck_softmax { const float *x, *dy; float *y; int64_t dim, inner; };
/* Losses: per row (softmax CE) or per element (the rest) into part[], then
 * ck_loss_finish sums part[] in order into loss[0] (and count into part2). */
struct ck_loss {
    const float *x, *t, *dloss; float *dx, *loss; double *part, *count;
    int64_t rows, c, sp, n; int kind, probs; float eps, alpha, gamma, beta;
};
/* Optimizer over one segment (torch.optim formulas, see src/optim/optim.c). */
struct ck_optim {
    float *p, *b0, *b1; const float *g; int kind, decay, has_b0, has_b1, first, nesterov, decoupled;
    float lr, gscale, momentum, wd, l1, beta1, beta2, eps, rho, bc1, bc2s;
};
/* Gradient statistics in parts: part[j] = sum of g^2 over chunk j, part2[j] = non-finite count. */
struct ck_gstat { const float *g; double *part, *part2; int64_t n, parts; };

/* X(id, args-member, body) for every kernel. */
#define CK_KERNELS(X)                              \
    X(CK_ACT_FWD, act, ck_act_fwd)                 \
    X(CK_ACT_BWD, act, ck_act_bwd)                 \
    X(CK_BINARY, binary, ck_binary_body)           \
    X(CK_REDUCE_TO, reduce, ck_reduce_to)          \
    X(CK_COPY, copy, ck_copy_body)                 \
    X(CK_POOL_FWD, pool, ck_pool_fwd)              \
    X(CK_POOL_BWD, pool, ck_pool_bwd)              \
    X(CK_GAP_FWD, gap, ck_gap_fwd)                 \
    X(CK_GAP_BWD, gap, ck_gap_bwd)                 \
    X(CK_CHSUM, chsum, ck_chsum_body)              \
    X(CK_PARTS_SUM, parts, ck_parts_sum)           \
    X(CK_BN_FINISH, bn, ck_bn_finish)              \
    X(CK_BN_APPLY, bn, ck_bn_apply)                \
    X(CK_BN_BWD_FINISH, bn, ck_bn_bwd_finish)      \
    X(CK_BN_BWD_APPLY, bn, ck_bn_bwd_apply)        \
    X(CK_IM2COL, im2col, ck_im2col_body)           \
    X(CK_COL2IM, im2col, ck_col2im_body)           \
    X(CK_BIAS, bias, ck_bias_body)                 \
    X(CK_DROPOUT_FWD, dropout, ck_dropout_fwd)     \
    X(CK_DROPOUT_BWD, dropout, ck_dropout_bwd)     \
    X(CK_SOFTMAX_FWD, softmax, ck_softmax_fwd)     \
    X(CK_SOFTMAX_BWD, softmax, ck_softmax_bwd)     \
    X(CK_LOSS_PART, loss, ck_loss_part)            \
    X(CK_LOSS_FINISH, loss, ck_loss_finish)        \
    X(CK_LOSS_BWD, loss, ck_loss_bwd)              \
    X(CK_OPTIM, optim, ck_optim_body)              \
    X(CK_GSTAT, gstat, ck_gstat_body)

#define CK_ENUM(id, member, body) id,
enum ck_kernel { CK_KERNELS(CK_ENUM) CK_COUNT };
#undef CK_ENUM

union ck_args {
    struct ck_act act;
    struct ck_binary binary;
    struct ck_reduce reduce;
    struct ck_copy copy;
    struct ck_pool pool;
    struct ck_gap gap;
    struct ck_chsum chsum;
    struct ck_parts parts;
    struct ck_bn bn;
    struct ck_im2col im2col;
    struct ck_bias bias;
    struct ck_dropout dropout;
    struct ck_softmax softmax;
    struct ck_loss loss;
    struct ck_optim optim;
    struct ck_gstat gstat;
};

/* Math modes of the GEMMs (--use_amp): fp32, or fp32 storage with bf16 / fp16
 * tensor-core products and fp32 accumulation (cuBLAS's *_FAST_16BF/16F). */
enum cuda_math { CUDA_MATH_FP32 = 0, CUDA_MATH_BF16, CUDA_MATH_FP16 };

struct cuda_ctx; /* a device, a stream and a BLAS handle */

struct cuda_api {
    const char *name;
    /* Open device `index`; a message in err (size errlen) when there is none. */
    int (*open)(int index, enum cuda_math math, struct cuda_ctx **out, char *err, size_t errlen);
    void (*close)(struct cuda_ctx *c);
    /* Memory reachable from the host and the device (managed on a GPU). */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    int (*memset0)(struct cuda_ctx *c, void *p, size_t bytes);
    int (*copy)(struct cuda_ctx *c, void *dst, const void *src, size_t bytes);
    /* Wait for everything queued; the host may then read and write memory. */
    int (*sync)(struct cuda_ctx *c, char *err, size_t errlen);
    /* Row-major C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C, `batch`
     * times with element strides sa, sb, sc between the matrices. */
    int (*gemm)(struct cuda_ctx *c, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, int64_t sa, const float *b, int64_t ldb, int64_t sb,
                float beta, float *cm, int64_t ldc, int64_t sc, int64_t batch);
    int (*launch)(struct cuda_ctx *c, enum ck_kernel k, int64_t items, const union ck_args *a);
    /* Last error text of this api (after a non-zero return). */
    const char *(*error)(struct cuda_ctx *c);
};

extern const struct cuda_api cuda_api_emu;
#ifdef DEFT_HAVE_CUDA
extern const struct cuda_api cuda_api_real;
#endif

#endif

/* backend.h (internal) - the interface every compute backend implements.
 *
 * A backend compiles a graph into a program: it chooses a memory layout for
 * every node-produced value (oneDNN's blocked nChw16c, a device buffer ...),
 * creates its kernels, and reports how many bytes each value needs. The
 * runtime then plans one arena by liveness and asks the backend to run nodes
 * one by one, passing a pointer for every value.
 *
 * Layout rule: INPUT, PARAM and STATE values, gradients of params
 * (value.grad_of names a PARAM) and values flagged DEFT_VF_OUTPUT are always
 * plain row-major f32 in host-visible memory. Every other value is in the
 * backend's own layout; read_plain converts one to plain f32 (for tests,
 * debugging and users).
 */
#ifndef DEFT_BACKEND_H
#define DEFT_BACKEND_H

#include "deft/graph.h"

struct deft_program; /* backend-private */

/* Per-run information a kernel may need. */
struct deft_run_ctx {
    uint64_t step;    /* training step counter (dropout masks depend on it) */
    /* data parallel: this runtime's batch is items rank, rank+world, ... of
     * the global batch; dropout keys its masks by the global item, so any
     * split of a global batch draws one process's masks (world 0/1: alone) */
    uint32_t shard_rank, shard_world;
    /* data parallel (sync_bn): in-place sum of n doubles over the ranks, in
     * the same order on every rank (NULL: a world of one) */
    enum deft_status (*allreduce)(double *buf, size_t n, void *user);
    void *allreduce_user;
    uint64_t param_version; /* changes whenever params/state may have been written:
                               weights a backend prepared (reordered, BN folded) are
                               prepared again when it differs from theirs */
};

/* Dropout's counter for element i of a batch of cnt elements (per item):
 * step*global numel + the element's index in the global batch. */
static inline uint64_t deft_dropout_counter(const struct deft_run_ctx *rc, int64_t cnt, int64_t per, int64_t i) {
    uint64_t w = rc && rc->shard_world > 1 ? rc->shard_world : 1, step = rc ? rc->step : 0;
    if (w == 1 || per <= 0) return step * (uint64_t)cnt + (uint64_t)i;
    return step * (uint64_t)cnt * w + ((uint64_t)(i / per) * w + rc->shard_rank) * (uint64_t)per + (uint64_t)(i % per);
}

/* Options a backend may honour (others ignore them). */
struct deft_backend_opts {
    int device_index;        /* cuda: which GPU */
    int amp;                 /* enum deft_amp: 16-bit GEMM products, fp32 storage */
    bool inference;          /* forward-only graph (no backward node): no workspaces,
                                weights prepared once, inference fusions allowed */
    bool no_fuse;            /* inference: no BN folding / post-op fusion (tests, debugging) */
    const float *int8_scale; /* inference on cpu: per value, its int8 scale (0: none); NULL: fp32 */
    bool bf16;               /* inference on cpu: convolutions in bf16 (int8_scale NULL) */
    bool f32_nhwc;           /* inference on cpu, fp32: chains in nhwc on the int8 path's code */
    bool winograd;           /* inference on cpu at batch >= 8: Winograd 3x3 convolutions too */
};

/* One optimizer update over a contiguous segment of the parameter block,
 * with src/optim/optim.c's formulas (kind: enum deft_optim_kind). */
struct deft_optim_seg_args {
    float *params, *buf0, *buf1;
    const float *grads;
    int64_t n;
    int kind, decay, first, nesterov, decoupled;
    float lr, gscale, momentum, weight_decay, l1, beta1, beta2, eps, rho, bc1, bc2s;
};

struct deft_backend_vtable {
    const char *name;             /* "ref", "cpu", "cuda", "cuda-emu" */
    enum deft_device device;
    /* Compile graph g (which must outlive the program). Fills value_bytes[v]
     * for every value (0 for values the runtime owns: inputs, params, state)
     * and *scratch_bytes (one scratch buffer shared by all nodes, since nodes
     * run one at a time). */
    enum deft_status (*compile)(const struct deft_graph *g, const struct deft_backend_opts *o,
                                struct deft_program **out, size_t *value_bytes, size_t *scratch_bytes);
    /* Run node n. ptr[v] is the buffer of value v (NULL for absent optional inputs). */
    enum deft_status (*run_node)(struct deft_program *p, int n, void *const *ptr, void *scratch,
                                 const struct deft_run_ctx *rc);
    /* Copy value v from its backend layout at src into plain f32 dst. */
    enum deft_status (*read_plain)(struct deft_program *p, int v, const void *src, float *dst);
    void (*free_program)(struct deft_program *p);
    /* Optional (NULL: host memory, synchronous). Device backends allocate
     * every buffer the runtime owns through alloc (memory the host can read
     * after sync), queue work asynchronously and finish it in sync; the
     * runtime calls sync before the host touches any buffer. */
    void *(*alloc)(struct deft_program *p, size_t bytes);
    void (*free_mem)(struct deft_program *p, void *mem);
    enum deft_status (*sync)(struct deft_program *p);
    /* Optional: run the optimizer's per-element update and gradient
     * statistics where the parameters live (see deft/optim.h). */
    enum deft_status (*optim_segment)(struct deft_program *p, const struct deft_optim_seg_args *a);
    enum deft_status (*grad_stats)(struct deft_program *p, const float *g, size_t n, double *sumsq,
                                   bool *finite);
    /* Optional: the last node that reads value v when the backend runs a
     * fused chain later than the graph says (-1: as the graph says). */
    int (*last_use)(struct deft_program *p, int v);
    /* Optional: the value whose buffer value v takes over (-1: none). The
     * backend writes v in place over that value, which nothing reads after
     * v's producer; the runtime must give both one buffer. */
    int (*alias_of)(struct deft_program *p, int v);
};

/* Registered backends. */
extern const struct deft_backend_vtable deft_backend_ref;  /* naive, double accumulation */
extern const struct deft_backend_vtable deft_backend_cpu;  /* oneDNN + OpenMP */
extern const struct deft_backend_vtable deft_backend_cuda_emu; /* the CUDA backend on the host (tests) */
#ifdef DEFT_HAVE_CUDA
extern const struct deft_backend_vtable deft_backend_cuda; /* NVIDIA GPUs: cuBLAS + kernels */
#endif
const struct deft_backend_vtable *deft_backend_find(const char *name);

/* The reference kernels, usable directly by tests and by other backends as a
 * fallback: run node n of g with all values plain f32 (opaque values: pool
 * workspace = int32 argmax per output element, dropout mask = f32 0/scale). */
enum deft_status deft_ref_run_node(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc);
/* Bytes the reference layout needs for value v (numel * 4; workspace/mask included). */
size_t deft_ref_value_bytes(const struct deft_graph *g, int v);
/* Copy value v from the reference layout at src into plain f32 dst (the
 * max-pool workspace's int32 indices as floats). */
enum deft_status deft_ref_read_plain(const struct deft_graph *g, int v, const void *src, float *dst);
/* An error naming the value when node n lacks a buffer for a present, non-empty value. */
enum deft_status deft_ref_check_buffers(const char *backend, const struct deft_graph *g, int n,
                                        void *const *ptr);

#endif

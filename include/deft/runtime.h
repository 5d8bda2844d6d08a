/* deft/runtime.h - compile a graph for a backend, plan memory, run it.
 *
 *     struct deft_runtime *rt;
 *     deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "cpu"}, &rt);
 *     deft_runtime_set_input(rt, x, batch, n);      // plain NCHW f32
 *     deft_runtime_run(rt);                         // every node: forward (+ backward)
 *     deft_runtime_read(rt, logits, out, n);
 *
 * Memory: trainable params live in one contiguous block, their gradients in a
 * second block with the same offsets (so an optimizer is one loop), frozen
 * params and state in a third; activations and activation gradients share one
 * arena whose offsets the planner assigns by liveness over the whole
 * forward+backward schedule.
 *
 * The graph must outlive the runtime and must not change while it exists.
 */
#ifndef DEFT_RUNTIME_H
#define DEFT_RUNTIME_H

#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_runtime;

/* Mixed precision (--use_amp): 16-bit products in the GEMMs and
 * convolutions, fp32 storage, accumulation and master weights. */
enum deft_amp { DEFT_AMP_OFF = 0, DEFT_AMP_BF16, DEFT_AMP_FP16 };

struct deft_runtime_opts {
    const char *backend;   /* "cpu" (oneDNN, default), "ref" (naive reference),
                              "cuda" (NVIDIA GPU, builds with CUDA=1), "cuda-emu" (its host emulation) */
    int no_reuse;          /* planner: give every value its own buffer, so every value stays
                              readable after a run (calibration, debugging); implies no_fuse */
    int device_index;      /* cuda: GPU index (--gpu_index) */
    enum deft_amp amp;     /* cuda: mixed precision; other backends compute in fp32 */
    int no_fuse;           /* forward-only graphs: keep every node separate (no BN folding or
                              conv+activation+add fusion); the unfused reference for tests */
    const float *int8_scales; /* cpu, forward-only graphs: one per value of the graph, the int8
                              scale (amax / 127) of that activation, 0 = none; NULL = fp32.
                              Convolutions whose input has a scale run in int8 (engine.h) */
    int bf16;              /* cpu, forward-only graphs: convolutions in bf16 (f32 accumulation) */
    int f32_nhwc;          /* cpu, forward-only fp32 graphs: convolution chains in nhwc on oneDNN's
                              brgconv kernels, the residual as a sum post-op (an engine's choice,
                              timed at convert: engine.h); else blocked nChw16c */
    int winograd;          /* cpu, forward-only graphs at batch >= 8: Winograd 3x3 convolutions
                              as training runs them (a trainer's validation: up to 2.8x faster
                              on wide 3x3 layers, more memory); else direct ones */
};

/* Names of the backends this build has, comma-separated ("cpu, ref, cuda-emu"). */
DEFT_API const char *deft_backend_names(void);

/* Called after the backward pass with the gradient block (data-parallel
 * training all-reduces it here). Return non-OK to stop the step. */
typedef enum deft_status (*deft_grad_hook)(float *grads, size_t n, void *user);

struct deft_runtime_stats {
    size_t arena_bytes;     /* planned activation arena */
    size_t naive_bytes;     /* sum of all activation buffers without reuse */
    size_t param_bytes, grad_bytes, state_bytes, scratch_bytes;
};

DEFT_API DEFT_NODISCARD enum deft_status deft_runtime_create(const struct deft_graph *g,
                                                            const struct deft_runtime_opts *o,
                                                            struct deft_runtime **out);
DEFT_API void deft_runtime_free(struct deft_runtime *rt);
DEFT_API const struct deft_graph *deft_runtime_graph(const struct deft_runtime *rt);

/* Copy n floats of plain data into input value v. */
DEFT_API DEFT_NODISCARD enum deft_status deft_runtime_set_input(struct deft_runtime *rt, int v,
                                                               const float *data, size_t n);
/* Host pointer to a PARAM or STATE value's plain data (read/write), or to the
 * gradient of a trainable param (deft_runtime_grad). NULL if not such a value. */
DEFT_API float *deft_runtime_data(struct deft_runtime *rt, int v);
DEFT_API float *deft_runtime_grad(struct deft_runtime *rt, int param);
/* Say that params/state were written through a pointer obtained earlier
 * (deft_runtime_data and the block getters already count as a write): a
 * forward-only runtime keeps its weights prepared (reordered, batch norm
 * folded) and prepares them again on the next run only after this. */
DEFT_API void deft_runtime_params_changed(struct deft_runtime *rt);
/* Fill every param/state with its initializer. */
DEFT_API DEFT_NODISCARD enum deft_status deft_runtime_init_params(struct deft_runtime *rt,
                                                                 uint64_t seed);

/* Run all nodes in order; then the gradient hook (if any). */
DEFT_API DEFT_NODISCARD enum deft_status deft_runtime_run(struct deft_runtime *rt);
/* Run nodes [first, last). */
DEFT_API DEFT_NODISCARD enum deft_status deft_runtime_run_range(struct deft_runtime *rt, int first,
                                                               int last);
/* Copy any value as plain f32 (n must equal its numel). Values not flagged
 * OUTPUT may have been overwritten by later nodes unless no_reuse was set. */
DEFT_API DEFT_NODISCARD enum deft_status deft_runtime_read(struct deft_runtime *rt, int v,
                                                          float *dst, size_t n);

/* Trainable parameter and gradient blocks (same length and order). A graph
 * without backward nodes (inference) has no gradient block: NULL, *n = 0, and
 * deft_runtime_grad returns NULL. */
DEFT_API float *deft_runtime_param_block(struct deft_runtime *rt, size_t *n);
DEFT_API float *deft_runtime_grad_block(struct deft_runtime *rt, size_t *n);
/* Non-trainable state (batch-norm running statistics) in one block. */
DEFT_API float *deft_runtime_state_block(struct deft_runtime *rt, size_t *n);
/* Offset (in floats) of trainable param v in the blocks, or -1. */
DEFT_API int64_t deft_runtime_param_offset(const struct deft_runtime *rt, int v);
DEFT_API void deft_runtime_set_grad_hook(struct deft_runtime *rt, deft_grad_hook fn, void *user);
/* Called after node `node` of a run when it was watched (deft_runtime_watch_node),
 * with every buffer it wrote readable by the host: data-parallel training
 * starts reducing a bucket of gradients there while the backward pass goes on. */
typedef void (*deft_node_hook)(int node, void *user);
DEFT_API void deft_runtime_set_node_hook(struct deft_runtime *rt, deft_node_hook fn, void *user);
/* Watch node n (or stop watching it); out-of-range n is ignored. */
DEFT_API void deft_runtime_watch_node(struct deft_runtime *rt, int n, bool on);
/* Data parallel: the sum over the ranks that synchronized batch norm uses
 * during a run (NULL: none; sync BN nodes then use this rank's batch alone). */
typedef enum deft_status (*deft_allreduce_fn)(double *buf, size_t n, void *user);
DEFT_API void deft_runtime_set_allreduce(struct deft_runtime *rt, deft_allreduce_fn fn, void *user);
DEFT_API void deft_runtime_set_step(struct deft_runtime *rt, uint64_t step);
/* Data parallel: this runtime's batch holds items rank, rank+world, ... of a
 * global batch (the distributed sampler's split), so random ops (dropout)
 * draw what one process with the global batch draws for those items. */
DEFT_API void deft_runtime_set_shard(struct deft_runtime *rt, int rank, int world);
DEFT_API void deft_runtime_stats(const struct deft_runtime *rt, struct deft_runtime_stats *out);
/* Per-op-type time accumulated over runs (profiling), printed as a table. */
DEFT_API void deft_runtime_print_profile(const struct deft_runtime *rt, FILE *f);

#ifdef __cplusplus
}
#endif
#endif

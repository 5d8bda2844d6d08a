/* cuda_impl.h (internal) - the CUDA backend's program and op functions.
 *
 * Every value is plain row-major f32 (the reference layout: max-pool
 * workspace int32 argmax, dropout mask f32) in memory both the host and the
 * device reach, so an op the backend lacks runs as the reference kernel on
 * the host after a sync (the CPU fallback), and read_plain is a copy.
 */
#ifndef DEFT_CUDA_IMPL_H
#define DEFT_CUDA_IMPL_H

#include "backend/backend.h"
#include "backend/cuda/cuda_dev.h"

#define CUDA_GSTAT_PARTS 512

struct deft_program {
    const struct deft_graph *g;
    const struct cuda_api *api;
    struct cuda_ctx *ctx;
    size_t scratch_bytes;
    long fallback_nodes; /* nodes run by the host reference kernels (counted per run) */
    double *gstat;       /* CUDA_GSTAT_PARTS x 2 partial sums of the gradient statistics */
};

/* A device call failed: the api's message, as a deft error. */
enum deft_status cuda_fail(struct deft_program *p, const char *what);
#define CUDA_TRY(p, call, what) \
    do { if (call) return cuda_fail(p, what); } while (0)

static inline enum deft_status cuda_launch(struct deft_program *p, enum ck_kernel k, int64_t items,
                                           const union ck_args *a) {
    if (items <= 0) return DEFT_OK;
    CUDA_TRY(p, p->api->launch(p->ctx, k, items, a), "kernel launch");
    return DEFT_OK;
}

/* Scratch a node needs (bytes); 0 for ops without temporaries. */
size_t cuda_node_scratch(const struct deft_graph *g, int n);
/* Number of parts per channel for the chunked per-channel sums. */
int64_t cuda_parts(int64_t per_channel);

/* Op functions: run node n of p->g with buffers ptr and the scratch buffer.
 * Return DEFT_ERR_UNSUPPORTED (without setting an error) for a case they do
 * not handle; the caller then falls back to the reference kernel. */
typedef enum deft_status (*cuda_op_fn)(struct deft_program *p, const struct deft_node *nd, int n,
                                       void *const *ptr, char *scratch, const struct deft_run_ctx *rc);
cuda_op_fn cuda_op_for(enum deft_op op);

/* cuda_conv.c */
enum deft_status cuda_conv2d(struct deft_program *p, const struct deft_node *nd, int n,
                             void *const *ptr, char *scratch, const struct deft_run_ctx *rc);
enum deft_status cuda_conv2d_bwd_data(struct deft_program *p, const struct deft_node *nd, int n,
                                      void *const *ptr, char *scratch, const struct deft_run_ctx *rc);
enum deft_status cuda_conv2d_bwd_weights(struct deft_program *p, const struct deft_node *nd, int n,
                                         void *const *ptr, char *scratch, const struct deft_run_ctx *rc);
enum deft_status cuda_linear(struct deft_program *p, const struct deft_node *nd, int n,
                             void *const *ptr, char *scratch, const struct deft_run_ctx *rc);
enum deft_status cuda_linear_bwd_data(struct deft_program *p, const struct deft_node *nd, int n,
                                      void *const *ptr, char *scratch, const struct deft_run_ctx *rc);
enum deft_status cuda_linear_bwd_weights(struct deft_program *p, const struct deft_node *nd, int n,
                                         void *const *ptr, char *scratch, const struct deft_run_ctx *rc);
size_t cuda_conv_scratch(const struct deft_graph *g, const struct deft_node *nd);
/* Channel sums of x[outer, ch, inner] into out[ch] (bias gradients). */
enum deft_status cuda_channel_sum(struct deft_program *p, const float *x, int64_t outer, int64_t ch,
                                  int64_t inner, float *out, char *scratch);

#endif

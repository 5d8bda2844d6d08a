/* ref_impl.h (internal) - prototypes and helpers shared by the reference kernels.
 *
 * Every reference kernel has the same signature: it reads node `n` of graph `g`
 * and finds its buffers in ptr[value index]. All values are plain row-major f32,
 * except the max-pool workspace (int32 argmax per output element). Sums are
 * accumulated in double; indices are int64. Kernels trust the shapes stored in
 * the graph (shape inference validated them) and take output shapes from there.
 *
 * Legend: n batch, c input channels, k output channels, h/w input height/width,
 * p/q output height/width, r/s kernel height/width.
 */
#ifndef DEFT_REF_IMPL_H
#define DEFT_REF_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include "backend/backend.h"
#include "backend/shape_views.h"

typedef enum deft_status (*deft_ref_kernel)(const struct deft_graph *g, int n, void *const *ptr,
                                            const struct deft_run_ctx *rc);

/* Input i of node nd as a value index, -1 when absent. */
static inline int ref_in_id(const struct deft_node *nd, int i) {
    return i < nd->n_in ? nd->in[i] : -1;
}
/* Output i of node nd as a value index, -1 when absent. */
static inline int ref_out_id(const struct deft_node *nd, int i) {
    return i < nd->n_out ? nd->out[i] : -1;
}
static inline float *ref_buf(void *const *ptr, int v) {
    return v >= 0 ? (float *)ptr[v] : NULL;
}
static inline float *ref_in(const struct deft_node *nd, void *const *ptr, int i) {
    return ref_buf(ptr, ref_in_id(nd, i));
}
static inline float *ref_out(const struct deft_node *nd, void *const *ptr, int i) {
    return ref_buf(ptr, ref_out_id(nd, i));
}
static inline const struct deft_shape *ref_shape(const struct deft_graph *g, int v) {
    return &deft_graph_value(g, v)->shape;
}
static inline int64_t ref_numel(const struct deft_graph *g, int v) {
    return deft_shape_numel(ref_shape(g, v));
}

#ifdef _OPENMP
#include <omp.h>
static inline int ref_max_threads(void) { return omp_get_max_threads(); }
static inline int ref_thread_num(void) { return omp_get_thread_num(); }
#else
static inline int ref_max_threads(void) { return 1; }
static inline int ref_thread_num(void) { return 0; }/* roi_align.c */
enum deft_status deft_ref_roi_align(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc);
enum deft_status deft_ref_roi_align_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                        const struct deft_run_ctx *rc);

#endif

/* Outputs o in [*lo, *hi) whose input index o*stride + off lies in [0, limit):
 * lets the window loops run without a bounds test per element. */
static inline void ref_valid_range(int64_t off, int64_t stride, int64_t limit, int64_t nout,
                                   int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = off >= limit ? 0 : (limit - 1 - off) / stride + 1;
    if (b > nout) b = nout;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* conv.c */
enum deft_status deft_ref_conv2d(const struct deft_graph *g, int n, void *const *ptr,
                                 const struct deft_run_ctx *rc);
enum deft_status deft_ref_conv2d_bwd_data(const struct deft_graph *g, int n, void *const *ptr,
                                          const struct deft_run_ctx *rc);
enum deft_status deft_ref_conv2d_bwd_weights(const struct deft_graph *g, int n, void *const *ptr,
                                             const struct deft_run_ctx *rc);
enum deft_status deft_ref_conv_transpose2d(const struct deft_graph *g, int n, void *const *ptr,
                                           const struct deft_run_ctx *rc);
enum deft_status deft_ref_conv_transpose2d_bwd_data(const struct deft_graph *g, int n,
                                                    void *const *ptr,
                                                    const struct deft_run_ctx *rc);
enum deft_status deft_ref_conv_transpose2d_bwd_weights(const struct deft_graph *g, int n,
                                                       void *const *ptr,
                                                       const struct deft_run_ctx *rc);
/* batchnorm.c */
enum deft_status deft_ref_batchnorm(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc);
enum deft_status deft_ref_batchnorm_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                        const struct deft_run_ctx *rc);
/* act.c */
enum deft_status deft_ref_act(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc);
enum deft_status deft_ref_act_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc);
/* pool.c */
enum deft_status deft_ref_pool(const struct deft_graph *g, int n, void *const *ptr,
                               const struct deft_run_ctx *rc);
enum deft_status deft_ref_pool_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc);
enum deft_status deft_ref_global_avgpool(const struct deft_graph *g, int n, void *const *ptr,
                                         const struct deft_run_ctx *rc);
enum deft_status deft_ref_global_avgpool_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                             const struct deft_run_ctx *rc);
/* elementwise.c */
enum deft_status deft_ref_add(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc);
enum deft_status deft_ref_mul(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc);
enum deft_status deft_ref_reduce_to(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc);
/* shape_ops.c */
enum deft_status deft_ref_concat(const struct deft_graph *g, int n, void *const *ptr,
                                 const struct deft_run_ctx *rc);
enum deft_status deft_ref_slice(const struct deft_graph *g, int n, void *const *ptr,
                                const struct deft_run_ctx *rc);
enum deft_status deft_ref_pad(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc);
enum deft_status deft_ref_transpose(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc);
enum deft_status deft_ref_reshape(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc);
/* upsample.c */
enum deft_status deft_ref_upsample(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc);
enum deft_status deft_ref_upsample_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                       const struct deft_run_ctx *rc);
/* linear.c */
enum deft_status deft_ref_linear(const struct deft_graph *g, int n, void *const *ptr,
                                 const struct deft_run_ctx *rc);
enum deft_status deft_ref_linear_bwd_data(const struct deft_graph *g, int n, void *const *ptr,
                                          const struct deft_run_ctx *rc);
enum deft_status deft_ref_linear_bwd_weights(const struct deft_graph *g, int n, void *const *ptr,
                                             const struct deft_run_ctx *rc);
/* dropout.c */
enum deft_status deft_ref_dropout(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc);
enum deft_status deft_ref_dropout_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                      const struct deft_run_ctx *rc);
/* softmax.c */
enum deft_status deft_ref_softmax(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc);
enum deft_status deft_ref_softmax_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                      const struct deft_run_ctx *rc);
/* loss.c */
enum deft_status deft_ref_loss(const struct deft_graph *g, int n, void *const *ptr,
                               const struct deft_run_ctx *rc);
enum deft_status deft_ref_loss_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc);
/* fake_quant.c */
enum deft_status deft_ref_fake_quant(const struct deft_graph *g, int n, void *const *ptr,
                                     const struct deft_run_ctx *rc);
enum deft_status deft_ref_fake_quant_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                         const struct deft_run_ctx *rc);
enum deft_status deft_ref_observe(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc);
/* roi_align.c */
enum deft_status deft_ref_roi_align(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc);
enum deft_status deft_ref_roi_align_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                        const struct deft_run_ctx *rc);

#endif

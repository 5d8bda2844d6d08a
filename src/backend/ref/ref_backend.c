/* ref_backend.c - the reference backend: the vtable, the per-op dispatch and
 * the byte size of every value in the reference layout (plain row-major f32;
 * the max-pool workspace is int32 argmax and the dropout mask f32, both one
 * element per element of the op's first output).
 *
 * The reference kernels are the oracle every fast kernel is tested against:
 * naive loops, double accumulation, PyTorch semantics.
 */
#include <string.h>
#include "backend/ref/ref_impl.h"

struct deft_program {
    const struct deft_graph *g;
};

size_t deft_ref_value_bytes(const struct deft_graph *g, int v) {
    const struct deft_value *val = deft_graph_value(g, v);
    if (!val) return 0;
    int64_t cnt = deft_shape_numel(&val->shape);
    size_t esize = deft_dtype_size(val->dtype);
    if (val->kind == DEFT_VALUE_NODE && val->producer >= 0 && val->slot == 1) {
        /* Opaque second outputs: size them from the first output, whatever
         * shape or dtype the graph gave them. */
        const struct deft_node *nd = deft_graph_node(g, val->producer);
        if (nd && (nd->op == DEFT_OP_POOL || nd->op == DEFT_OP_DROPOUT) && nd->out[0] >= 0) {
            cnt = ref_numel(g, nd->out[0]);
            esize = nd->op == DEFT_OP_POOL ? sizeof(int32_t) : sizeof(float);
        }
    }
    if (esize == 0) esize = sizeof(float);
    return cnt > 0 ? (size_t)cnt * esize : 0;
}

static deft_ref_kernel kernel_for(enum deft_op op) {
    switch (op) {
    case DEFT_OP_CONV2D: return deft_ref_conv2d;
    case DEFT_OP_CONV_TRANSPOSE2D: return deft_ref_conv_transpose2d;
    case DEFT_OP_BATCHNORM: return deft_ref_batchnorm;
    case DEFT_OP_ACT: return deft_ref_act;
    case DEFT_OP_POOL: return deft_ref_pool;
    case DEFT_OP_GLOBAL_AVGPOOL: return deft_ref_global_avgpool;
    case DEFT_OP_ADD: return deft_ref_add;
    case DEFT_OP_MUL: return deft_ref_mul;
    case DEFT_OP_CONCAT: return deft_ref_concat;
    case DEFT_OP_SLICE: return deft_ref_slice;
    case DEFT_OP_PAD: return deft_ref_pad;
    case DEFT_OP_RESHAPE: return deft_ref_reshape;
    case DEFT_OP_UPSAMPLE: return deft_ref_upsample;
    case DEFT_OP_LINEAR: return deft_ref_linear;
    case DEFT_OP_DROPOUT: return deft_ref_dropout;
    case DEFT_OP_SOFTMAX: return deft_ref_softmax;
    case DEFT_OP_LOSS: return deft_ref_loss;
    case DEFT_OP_CONV2D_BWD_DATA: return deft_ref_conv2d_bwd_data;
    case DEFT_OP_CONV2D_BWD_WEIGHTS: return deft_ref_conv2d_bwd_weights;
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA: return deft_ref_conv_transpose2d_bwd_data;
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS: return deft_ref_conv_transpose2d_bwd_weights;
    case DEFT_OP_BATCHNORM_BWD: return deft_ref_batchnorm_bwd;
    case DEFT_OP_ACT_BWD: return deft_ref_act_bwd;
    case DEFT_OP_POOL_BWD: return deft_ref_pool_bwd;
    case DEFT_OP_GLOBAL_AVGPOOL_BWD: return deft_ref_global_avgpool_bwd;
    case DEFT_OP_REDUCE_TO: return deft_ref_reduce_to;
    case DEFT_OP_UPSAMPLE_BWD: return deft_ref_upsample_bwd;
    case DEFT_OP_LINEAR_BWD_DATA: return deft_ref_linear_bwd_data;
    case DEFT_OP_LINEAR_BWD_WEIGHTS: return deft_ref_linear_bwd_weights;
    case DEFT_OP_DROPOUT_BWD: return deft_ref_dropout_bwd;
    case DEFT_OP_SOFTMAX_BWD: return deft_ref_softmax_bwd;
    case DEFT_OP_LOSS_BWD: return deft_ref_loss_bwd;
    case DEFT_OP_FAKE_QUANT: return deft_ref_fake_quant;
    case DEFT_OP_FAKE_QUANT_BWD: return deft_ref_fake_quant_bwd;
    case DEFT_OP_OBSERVE: return deft_ref_observe;
    case DEFT_OP_ROI_ALIGN: return deft_ref_roi_align;
    case DEFT_OP_ROI_ALIGN_BWD: return deft_ref_roi_align_bwd;
    case DEFT_OP_TRANSPOSE: return deft_ref_transpose;
    case DEFT_OP_COUNT: break;
    }
    return NULL; /* no default: -Wswitch flags a new op without a kernel */
}

enum deft_status deft_ref_run_node(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc) {
    if (!g || !ptr || n < 0 || n >= deft_graph_num_nodes(g))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ref backend: node %d out of range", n);
    const struct deft_node *nd = deft_graph_node(g, n);
    deft_ref_kernel k = kernel_for(nd->op);
    if (!k)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "ref backend: op %d (node %s) not supported",
                              (int)nd->op, nd->name ? nd->name : "?");
    enum deft_status s = deft_ref_check_buffers("ref", g, n, ptr);
    return s ? s : k(g, n, ptr, rc);
}

enum deft_status deft_ref_check_buffers(const char *backend, const struct deft_graph *g, int n,
                                        void *const *ptr) {
    /* Every present, non-empty value needs a buffer; a NULL here is a caller bug
     * that would otherwise crash inside a kernel. */
    const struct deft_node *nd = deft_graph_node(g, n);
    for (int i = 0; i < nd->n_in + nd->n_out; i++) {
        int v = i < nd->n_in ? nd->in[i] : nd->out[i - nd->n_in];
        if (v >= 0 && !ptr[v] && deft_ref_value_bytes(g, v) > 0)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s backend: node %s: no buffer for %s", backend,
                                  nd->name ? nd->name : "?", deft_graph_value(g, v)->name);
    }
    return DEFT_OK;
}

static enum deft_status ref_compile(const struct deft_graph *g, const struct deft_backend_opts *o,
                                    struct deft_program **out,
                                    size_t *value_bytes, size_t *scratch_bytes) {
    *out = NULL;
    struct deft_program *p = deft_calloc(1, sizeof *p);
    if (!p) return deft_set_error(DEFT_ERR_NOMEM, "ref backend: out of memory");
    p->g = g;
    const int nv = deft_graph_num_values(g);
    for (int v = 0; v < nv; v++)
        value_bytes[v] = deft_graph_value(g, v)->kind == DEFT_VALUE_NODE
                             ? deft_ref_value_bytes(g, v) : 0;
    *scratch_bytes = 0;
    *out = p;
    return DEFT_OK;
}

static enum deft_status ref_run_node(struct deft_program *p, int n, void *const *ptr,
                                     void *scratch, const struct deft_run_ctx *rc) {
    return deft_ref_run_node(p->g, n, ptr, rc);
}

static enum deft_status ref_read_plain(struct deft_program *p, int v, const void *src,
                                       float *dst) {
    return deft_ref_read_plain(p->g, v, src, dst);
}

enum deft_status deft_ref_read_plain(const struct deft_graph *g, int v, const void *src, float *dst) {
    const struct deft_value *val = deft_graph_value(g, v);
    if (!val) return deft_set_error(DEFT_ERR_INVALID_ARG, "value %d out of range", v);
    const int64_t cnt = deft_shape_numel(&val->shape);
    if (cnt <= 0) return DEFT_OK;
    if (val->kind == DEFT_VALUE_NODE && val->producer >= 0 && val->slot == 1 &&
        deft_graph_node(g, val->producer)->op == DEFT_OP_POOL) {
        /* The max-pool workspace holds int32 indices: give them as floats. */
        const struct deft_node *nd = deft_graph_node(g, val->producer);
        const int64_t have = ref_numel(g, nd->out[0]);
        const int32_t *ws = src;
        for (int64_t i = 0; i < cnt; i++) dst[i] = i < have ? (float)ws[i] : 0.0f;
        return DEFT_OK;
    }
    memcpy(dst, src, (size_t)cnt * sizeof(float));
    return DEFT_OK;
}

static void ref_free_program(struct deft_program *p) {
    deft_free(p);
}

const struct deft_backend_vtable deft_backend_ref = {
    .name = "ref",
    .device = DEFT_DEVICE_CPU,
    .compile = ref_compile,
    .run_node = ref_run_node,
    .read_plain = ref_read_plain,
    .free_program = ref_free_program,
};

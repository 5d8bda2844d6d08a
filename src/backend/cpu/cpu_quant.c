/* cpu_quant.c - per-tensor fake quantization, its straight-through backward
 * and the range observer, in the producer's layout.
 *
 * All three are element-wise (plus a max|x| reduction), so they run on the
 * raw buffer of any layout: a blocked nChw16c activation stays blocked from
 * the convolution that made it to the one that reads it. The padded channels
 * of a blocked layout hold zeros (oneDNN writes them so), which quantize to
 * zero and do not move max|x|. Per-channel (weight) fake quantization needs
 * the channel of every element: it runs on the reference kernels (weights
 * are small and plain anyway).
 */
#include <string.h>
#include "backend/cpu/cpu_impl.h"
#include "backend/fake_quant.h"

/* The graph node a step belongs to (its attributes are read at run time:
 * deft_graph_set_training may flip them after compilation). */
struct fq_priv { int node; };

static const struct deft_fq_attr *attr_of(const struct cpu_prog *p, const struct cpu_node *nd) {
    return &deft_graph_node(p->g, ((const struct fq_priv *)nd->priv)->node)->attr.fq;
}

static size_t floats(const struct cpu_node *nd, int mi) { return nd->mems[mi].bytes / sizeof(float); }

static float max_abs(const float *x, size_t n) {
    float m = 0;
    #pragma omp parallel for reduction(max : m)
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    return m;
}

static float next_range(const struct deft_fq_attr *a, const float *x, size_t n, float *state) {
    state[0] = fq_range_next(state[0], a->training ? max_abs(x, n) : 0.0f, a->decay, a->training);
    return state[0];
}

/* imem: x, y, amax state. */
static enum deft_status fq_fwd(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                               void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const float *x = cpu_mem_ptr(nd, s->imem[0], ptr, scratch);
    float *y = cpu_mem_ptr(nd, s->imem[1], ptr, scratch);
    const size_t n = floats(nd, s->imem[0]);
    const float r = next_range(attr_of(p, nd), x, n, cpu_mem_ptr(nd, s->imem[2], ptr, scratch));
    if (!(r > 0)) {
        memcpy(y, x, n * sizeof *y);
        return DEFT_OK;
    }
    const float sc = r / FQ_LEVELS, inv = 1.0f / sc;
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) y[i] = fq_value(x[i], sc, inv, FQ_ACT_QMIN, FQ_ACT_QMAX);
    return DEFT_OK;
}

/* imem: dy, x, amax state, dx. */
static enum deft_status fq_bwd(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                               void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const float *dy = cpu_mem_ptr(nd, s->imem[0], ptr, scratch), *x = cpu_mem_ptr(nd, s->imem[1], ptr, scratch);
    const float r = ((const float *)cpu_mem_ptr(nd, s->imem[2], ptr, scratch))[0];
    float *dx = cpu_mem_ptr(nd, s->imem[3], ptr, scratch);
    const size_t n = floats(nd, s->imem[3]);
    const float inv = 1.0f / (r / FQ_LEVELS);
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++)
        dx[i] = r > 0 && !fq_inside(x[i], inv, FQ_ACT_QMIN, FQ_ACT_QMAX) ? 0.0f : dy[i];
    return DEFT_OK;
}

/* imem: x, amax state, the range output. */
static enum deft_status observe(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const float *x = cpu_mem_ptr(nd, s->imem[0], ptr, scratch);
    float *out = cpu_mem_ptr(nd, s->imem[2], ptr, scratch);
    out[0] = next_range(attr_of(p, nd), x, floats(nd, s->imem[0]), cpu_mem_ptr(nd, s->imem[1], ptr, scratch));
    return DEFT_OK;
}

/* Output v in the layout of `like`, with v's own dims (plain when it must be). */
static void set_md_like(struct cpu_prog *p, int v, const dnnl_memory_desc_t *like) {
    int64_t dims[DNNL_MAX_NDIMS];
    cpu_dims(&cpu_val(p, v)->shape, dims);
    dnnl_memory_desc_t want;
    deft_dnnl_md_like(&want, like, dims);
    cpu_set_md(p, v, &want);
}

/* Output-layout steps after a function step (cpu_bind_out queues them for
 * the next primitive, and there is none). */
static enum deft_status flush_pending(struct cpu_prog *p, struct cpu_node *nd) {
    for (int i = 0; i < nd->npending; i++) {
        enum deft_status st = cpu_add_reorder(p, nd, nd->pending[i][0], nd->pending[i][1]);
        if (st) return st;
    }
    nd->npending = 0;
    return DEFT_OK;
}

enum deft_status cpu_compile_fake_quant(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    if (node->op != DEFT_OP_OBSERVE && node->attr.fq.mode != DEFT_FQ_PER_TENSOR) return DEFT_ERR_UNSUPPORTED;
    struct fq_priv *pr = deft_malloc(sizeof *pr);
    if (!pr) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling for cpu");
    pr->node = n;
    nd->priv = pr;
    enum deft_status st;
    int m[4];
    switch (node->op) {
    case DEFT_OP_FAKE_QUANT: { /* in x, amax; out y */
        int x = node->in[0], y = node->out[0];
        set_md_like(p, y, &p->md[x]);
        if ((st = cpu_bind_in(p, nd, x, &p->md[y], &m[0])) || (st = cpu_mem_value(p, nd, y, &p->md[y], &m[1])) ||
            (st = cpu_mem_value(p, nd, node->in[1], &p->md[node->in[1]], &m[2])))
            return st;
        return cpu_add_fn(p, nd, fq_fwd, m[0], m[1], m[2], -1);
    }
    case DEFT_OP_FAKE_QUANT_BWD: { /* in dy, x, amax; out dx, in x's layout */
        int dy = node->in[0], x = node->in[1], dx = node->out[0];
        if ((st = cpu_bind_in(p, nd, dy, &p->md[x], &m[0])) || (st = cpu_mem_value(p, nd, x, &p->md[x], &m[1])) ||
            (st = cpu_mem_value(p, nd, node->in[2], &p->md[node->in[2]], &m[2])) ||
            (st = cpu_bind_out(p, nd, dx, &p->md[x], &m[3])) || (st = cpu_add_fn(p, nd, fq_bwd, m[0], m[1], m[2], m[3])))
            return st;
        return flush_pending(p, nd);
    }
    case DEFT_OP_OBSERVE: { /* in x, amax; out the range [1] (plain) */
        int x = node->in[0], r = node->out[0];
        dnnl_memory_desc_t one;
        deft_dnnl_md_plain(&one, &cpu_val(p, r)->shape);
        cpu_set_md(p, r, &one);
        if ((st = cpu_mem_value(p, nd, x, &p->md[x], &m[0])) ||
            (st = cpu_mem_value(p, nd, node->in[1], &p->md[node->in[1]], &m[1])) ||
            (st = cpu_mem_value(p, nd, r, &p->md[r], &m[2])))
            return st;
        return cpu_add_fn(p, nd, observe, m[0], m[1], m[2], -1);
    }
    default: return DEFT_ERR_UNSUPPORTED;
    }
}

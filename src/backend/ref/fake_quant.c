/* fake_quant.c - reference int8 fake quantization (quantization-aware
 * training): FAKE_QUANT per tensor (activations, a tracked range) and per
 * channel (weights, the range of each output channel), its straight-through
 * backward, and OBSERVE (the range alone). Semantics in deft/graph.h
 * (deft_fq_attr); the grid and range update in backend/fake_quant.h. */
#include "backend/fake_quant.h"
#include "backend/ref/ref_impl.h"

static float max_abs(const float *x, int64_t n) {
    float m = 0;
    #pragma omp parallel for reduction(max : m)
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    return m;
}

/* The range this run uses, written back to the state when training. */
static float tracked_range(const struct deft_fq_attr *a, const float *x, int64_t n, float *state) {
    float r = fq_range_next(state[0], a->training ? max_abs(x, n) : 0.0f, a->decay, a->training);
    state[0] = r;
    return r;
}

/* x[outer, ch, inner] viewed around the channel axis. */
static void axis_view(const struct deft_shape *s, int axis, int64_t *outer, int64_t *ch, int64_t *inner) {
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s->d[i];
    *ch = s->d[axis];
    for (int i = axis + 1; i < s->ndim; i++) *inner *= s->d[i];
}

/* Per-channel scales: max|x_c| / 127 (0 for an all-zero channel). */
static void channel_scales(const float *x, int64_t outer, int64_t ch, int64_t inner, float *scale) {
    for (int64_t c = 0; c < ch; c++) scale[c] = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++) {
            const float *p = x + (o * ch + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                if (fabsf(p[i]) > scale[c]) scale[c] = fabsf(p[i]);
        }
    for (int64_t c = 0; c < ch; c++) scale[c] /= FQ_LEVELS;
}

/* PER_CHANNEL forward (dx == NULL) or backward mask (dy, dx given). */
static enum deft_status per_channel(const struct deft_graph *g, const struct deft_node *nd, const float *x,
                                    float *y, const float *dy, float *dx) {
    int64_t outer, ch, inner;
    axis_view(ref_shape(g, nd->in[dx ? 1 : 0]), nd->attr.fq.axis, &outer, &ch, &inner);
    float *scale = deft_malloc((size_t)(ch ? ch : 1) * sizeof *scale);
    if (!scale) return deft_set_error(DEFT_ERR_NOMEM, "fake quant %s: out of memory", nd->name);
    channel_scales(x, outer, ch, inner, scale);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++) {
            const int64_t base = (o * ch + c) * inner;
            const float s = scale[c], inv = s > 0 ? 1.0f / s : 0.0f;
            for (int64_t i = 0; i < inner; i++) {
                const int64_t k = base + i;
                if (dx) dx[k] = s > 0 && !fq_inside(x[k], inv, -FQ_W_QMAX, FQ_W_QMAX) ? 0.0f : dy[k];
                else y[k] = s > 0 ? fq_value(x[k], s, inv, -FQ_W_QMAX, FQ_W_QMAX) : x[k];
            }
        }
    deft_free(scale);
    return DEFT_OK;
}

/* FAKE_QUANT: in x, [amax]; out y. */
enum deft_status deft_ref_fake_quant(const struct deft_graph *g, int n, void *const *ptr,
                                     const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_fq_attr *a = &nd->attr.fq;
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    if (a->mode == DEFT_FQ_PER_CHANNEL) return per_channel(g, nd, x, y, NULL, NULL);
    const int64_t cnt = ref_numel(g, nd->out[0]);
    const float r = tracked_range(a, x, cnt, ref_in(nd, ptr, 1));
    const float s = r / FQ_LEVELS, inv = 1.0f / s;
    #pragma omp parallel for
    for (int64_t i = 0; i < cnt; i++) y[i] = r > 0 ? fq_value(x[i], s, inv, FQ_ACT_QMIN, FQ_ACT_QMAX) : x[i];
    return DEFT_OK;
}

/* FAKE_QUANT_BWD: in dy, x, [amax]; out dx = dy where x was not clipped. */
enum deft_status deft_ref_fake_quant_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                         const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const float *dy = ref_in(nd, ptr, 0), *x = ref_in(nd, ptr, 1);
    float *dx = ref_out(nd, ptr, 0);
    if (nd->attr.fq.mode == DEFT_FQ_PER_CHANNEL) return per_channel(g, nd, x, NULL, dy, dx);
    /* the range the forward used: it updated the state before quantizing */
    const float r = ref_in(nd, ptr, 2)[0], inv = 1.0f / (r / FQ_LEVELS);
    const int64_t cnt = ref_numel(g, nd->out[0]);
    #pragma omp parallel for
    for (int64_t i = 0; i < cnt; i++)
        dx[i] = r > 0 && !fq_inside(x[i], inv, FQ_ACT_QMIN, FQ_ACT_QMAX) ? 0.0f : dy[i];
    return DEFT_OK;
}

/* OBSERVE: in x, amax; out the range in use. */
enum deft_status deft_ref_observe(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    ref_out(nd, ptr, 0)[0] = tracked_range(&nd->attr.fq, ref_in(nd, ptr, 0), ref_numel(g, nd->in[0]),
                                           ref_in(nd, ptr, 1));
    return DEFT_OK;
}

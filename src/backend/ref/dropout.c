/* dropout.c - reference inverted dropout and its backward.
 *
 * Training: mask[i] = u >= p ? 1/(1-p) : 0 with u = deft_rng_uniform(seed,
 * stream = forward node index, index = step*numel + i), y = x*mask. The mask is
 * a pure function of (seed, node, step, i), so every backend and thread count
 * draws the same one; a data-parallel rank keys i by its place in the global
 * batch (deft_dropout_counter). Not training: y = x and mask = 1.
 */
#include "backend/ref/ref_impl.h"

/* DROPOUT: in x; out y, [mask]. */
enum deft_status deft_ref_dropout(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_dropout_attr *a = &nd->attr.dropout;
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0), *mask = ref_out(nd, ptr, 1);
    const int64_t cnt = ref_numel(g, nd->out[0]);
    const bool active = a->training && a->p > 0;
    /* p >= 1 drops everything (avoids the infinite 1/(1-p)). */
    const float scale = a->p < 1 ? (float)(1.0 / (1.0 - (double)a->p)) : 0.0f;
    const struct deft_shape *sh = &deft_graph_value(g, nd->out[0])->shape;
    const int64_t per = sh->ndim > 0 && sh->d[0] > 0 ? cnt / sh->d[0] : cnt;
    #pragma omp parallel for
    for (int64_t i = 0; i < cnt; i++) {
        float mk = 1.0f;
        if (active)
            mk = deft_rng_uniform(a->seed, (uint64_t)n, deft_dropout_counter(rc, cnt, per, i)) >= a->p ? scale : 0.0f;
        if (mask) mask[i] = mk;
        y[i] = x[i] * mk;
    }
    return DEFT_OK;
}

/* DROPOUT_BWD: in dy, mask; out dx = dy * mask. */
enum deft_status deft_ref_dropout_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                      const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const float *dy = ref_in(nd, ptr, 0), *mask = ref_in(nd, ptr, 1);
    float *dx = ref_out(nd, ptr, 0);
    const int64_t cnt = ref_numel(g, nd->out[0]);
    #pragma omp parallel for
    for (int64_t i = 0; i < cnt; i++) dx[i] = mask ? dy[i] * mask[i] : dy[i];
    return DEFT_OK;
}

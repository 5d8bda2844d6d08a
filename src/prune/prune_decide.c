/* prune_decide.c - retained filters per equalization group at a threshold,
 * the threshold search behind --target_ratio/--target_flops, and the
 * per-layer view the report prints. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "prune/prune_impl.h"

/* What one decision asks of the groups: TAO's threshold rule everywhere, or
 * (only >= 0) the group rooted at `only` keeps its `fraction` best filters
 * and every other group keeps all. */
struct pr_ask {
    float threshold;
    int only;
    double fraction;
};

/* One group: members' scores combined, the count rule, top-k. */
static enum deft_status decide_group(struct deft_prune_plan *p, int root, const struct pr_ask *ask,
                                     const float **rows, float *comb) {
    int m = 0, n = p->units[root].n;
    bool full = ask->only >= 0 && ask->only != root;
    for (int u = 0; u < p->n_units; u++)
        if (pr_find(p, u) == root) {
            rows[m++] = p->units[u].stat;
            full |= p->units[u].full;
        }
    if (!p->ret[root] && !(p->ret[root] = deft_malloc((size_t)(n ? n : 1) * sizeof(int))))
        return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    int k = n;
    if (full) {
        for (int i = 0; i < n; i++) p->ret[root][i] = i;
    } else {
        if (m == 1) memcpy(comb, rows[0], (size_t)n * sizeof(float));
        else pr_combine(rows, m, n, p->o.eq, comb);
        int mn = p->o.min_num_filters, gr = p->o.granularity;
        k = ask->only >= 0 ? pr_round_count((int)ceil(ask->fraction * n - 1e-9), n, mn, gr)
                           : pr_retained_count(comb, n, ask->threshold, mn, gr);
        if (pr_top_k(comb, n, k, p->ret[root]) < 0) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    }
    p->ret_n[root] = k;
    return DEFT_OK;
}

static enum deft_status decide(struct deft_prune_plan *p, const struct pr_ask *ask) {
    int maxn = 1;
    for (int u = 0; u < p->n_units; u++) maxn = p->units[u].n > maxn ? p->units[u].n : maxn;
    const float **rows = deft_malloc((size_t)(p->n_units ? p->n_units : 1) * sizeof *rows);
    float *comb = deft_malloc((size_t)maxn * sizeof(float));
    enum deft_status s = rows && comb ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    for (int u = 0; !s && u < p->n_units; u++)
        if (pr_find(p, u) == u) s = decide_group(p, u, ask, rows, comb);
    deft_free(rows);
    deft_free(comb);
    if (s) return s;
    memset(p->keep, 0, (size_t)p->total + 1);
    for (int u = 0; u < p->n_units; u++) { /* members share the root's choice */
        int r = pr_find(p, u);
        for (int i = 0; i < p->ret_n[r]; i++) p->keep[p->units[u].base + p->ret[r][i]] = 1;
    }
    p->decided = true;
    return DEFT_OK;
}

enum deft_status deft_prune_decide(struct deft_prune_plan *p, float threshold) {
    if (!isfinite(threshold)) return deft_set_error(DEFT_ERR_INVALID_ARG, "pruning: threshold is not a number");
    enum deft_status s = decide(p, &(struct pr_ask){.threshold = threshold, .only = -1});
    if (!s) p->o.threshold = threshold;
    return s;
}

int deft_prune_layer_group(const struct deft_prune_plan *p, int layer) {
    if (layer < 0 || layer >= p->n_layers || p->layers[layer].unit < 0) return -1;
    struct deft_prune_plan *q = (struct deft_prune_plan *)p; /* pr_find compresses paths only */
    int r = pr_find(q, p->layers[layer].unit);
    for (int u = 0; u < p->n_units; u++)
        if (pr_find(q, u) == r && p->units[u].full) return -1;
    return r;
}

enum deft_status deft_prune_decide_layer(struct deft_prune_plan *p, int layer, double fraction) {
    if (!(fraction > 0 && fraction <= 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "pruning: keep fraction %g is not in (0, 1]", fraction);
    int r = deft_prune_layer_group(p, layer);
    if (r < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "pruning: layer %d is kept whole (excluded, an output, or "
                              "tied to one)", layer);
    return decide(p, &(struct pr_ask){.only = r, .fraction = fraction});
}

enum deft_status deft_prune_counts(struct deft_prune_plan *p, struct deft_prune_counts *c) {
    enum deft_status s;
    if (!p->have_before) {
        if ((s = pr_count(p->g, &p->before.params_before, &p->before.flops_before))) return s;
        p->have_before = true;
    }
    struct deft_graph *g2 = NULL;
    int **rows = NULL, **cols = NULL, *nr = NULL, *nc = NULL;
    if ((s = pr_build_graph(p, &g2, &rows, &nr, &cols, &nc))) return s;
    int nv = deft_graph_num_values(g2);
    pr_free_lists(rows, nv);
    pr_free_lists(cols, nv);
    deft_free(nr);
    deft_free(nc);
    *c = p->before;
    s = pr_count(g2, &c->params_after, &c->flops_after);
    deft_graph_free(g2);
    return s;
}

float deft_prune_max_threshold(const struct deft_prune_plan *p) {
    float m = 0;
    for (int u = 0; u < p->n_units; u++)
        for (int i = 0; i < p->units[u].n; i++) m = p->units[u].stat[i] > m ? p->units[u].stat[i] : m;
    return m;
}

static int by_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int deft_prune_sweep_thresholds(const struct deft_prune_plan *p, float *out, int n) {
    if (n < 1) return 0;
    float *all = deft_malloc((size_t)(p->total ? p->total : 1) * sizeof(float));
    int m = 0, k = 0;
    out[k++] = 0;
    if (!all) return k;
    for (int u = 0; u < p->n_units; u++)
        if (!p->units[u].full)
            for (int i = 0; i < p->units[u].n; i++) all[m++] = p->units[u].stat[i];
    qsort(all, (size_t)m, sizeof *all, by_float);
    for (int i = 1; i < n && m > 0; i++) {
        float t = all[(size_t)(m - 1) * (size_t)i / (size_t)(n - 1)];
        if (t > out[k - 1]) out[k++] = t;
    }
    deft_free(all);
    return k;
}

static enum deft_status ratio_at(struct deft_prune_plan *p, float t, bool flops, double *r) {
    struct deft_prune_counts c;
    enum deft_status s = deft_prune_decide(p, t);
    if (!s) s = deft_prune_counts(p, &c);
    if (s) return s;
    *r = flops ? (double)c.flops_after / (double)(c.flops_before ? c.flops_before : 1)
               : (double)c.params_after / (double)(c.params_before ? c.params_before : 1);
    return DEFT_OK;
}

/* The ratio falls in steps as the threshold passes scores; bisect for the
 * smallest threshold at or under the target. */
enum deft_status deft_prune_search(struct deft_prune_plan *p, double target, bool flops, float *threshold) {
    if (!(target > 0 && target <= 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "pruning: target ratio %g is not in (0, 1]", target);
    double r;
    float lo = 0, hi = deft_prune_max_threshold(p) * 1.001f + 1e-6f;
    enum deft_status s = ratio_at(p, lo, flops, &r);
    if (s) return s;
    if (r <= target) {
        *threshold = lo;
        return DEFT_OK;
    }
    if ((s = ratio_at(p, hi, flops, &r))) return s;
    if (r > target) {
        *threshold = hi;
        return deft_set_error(DEFT_ERR_INVALID_ARG, "pruning: the smallest reachable %s ratio is %.4f (every layer "
                              "at min_num_filters or whole), above the target %.4f; lower -nf or exclude fewer layers",
                              flops ? "FLOPs" : "parameter", r, target);
    }
    for (int it = 0; it < 60 && hi - lo > 1e-7f * (hi > 1 ? hi : 1); it++) {
        float mid = lo + (hi - lo) / 2;
        if ((s = ratio_at(p, mid, flops, &r))) return s;
        if (r <= target) hi = mid;
        else lo = mid;
    }
    *threshold = hi;
    return deft_prune_decide(p, hi);
}

int deft_prune_num_layers(const struct deft_prune_plan *p) { return p->n_layers; }

void deft_prune_layer_info(const struct deft_prune_plan *p, int i, struct deft_prune_layer *out) {
    static const char *const kinds[] = {"conv", "depthwise", "linear"};
    static const int none[1] = {0};
    const struct pr_layer *l = &p->layers[i];
    memset(out, 0, sizeof *out);
    out->name = deft_graph_node(p->g, l->node)->name;
    out->type = kinds[l->kind];
    out->before = l->channels;
    if (l->unit < 0) { /* a depthwise conv on unprunable channels */
        out->after = l->channels;
        out->retained = NULL;
        out->excluded = true;
        return;
    }
    int r = pr_find((struct deft_prune_plan *)p, l->unit);
    out->after = p->ret_n[r];
    out->retained = p->ret[r] ? p->ret[r] : none;
    for (int u = 0; u < p->n_units; u++)
        if (pr_find((struct deft_prune_plan *)p, u) == r && p->units[u].full) out->excluded = true;
}

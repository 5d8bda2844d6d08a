/* prune_apply.c - TAO's second pass (tao.md §2.6): the pruned graph, with
 * every weight cut along its output axis by its own retained filters and
 * along its input axis by the channels its input still has; batch norm by
 * its producer's; flatten's width follows. */
#include <stdio.h>
#include <string.h>
#include "prune/prune_impl.h"

void pr_free_lists(int **l, int n) {
    for (int i = 0; l && i < n; i++) deft_free(l[i]);
    deft_free(l);
}

/* Channels of value v that stay: a new list, or NULL when all do. */
static enum deft_status kept(const struct deft_prune_plan *p, int v, int **list, int *n) {
    *list = NULL;
    *n = 0;
    if (v < 0 || !p->map[v]) return DEFT_OK;
    int c = p->map_n[v], k = 0;
    for (int i = 0; i < c; i++) k += p->map[v][i] < 0 || p->keep[p->map[v][i]];
    if (k == c) return DEFT_OK;
    int *l = deft_malloc((size_t)(k ? k : 1) * sizeof(int));
    if (!l) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    k = 0;
    for (int i = 0; i < c; i++)
        if (p->map[v][i] < 0 || p->keep[p->map[v][i]]) l[k++] = i;
    *list = l;
    *n = k;
    return DEFT_OK;
}

static enum deft_status cut(const struct deft_prune_plan *p, int param, int src, int **lists, int *ns) {
    if (param < 0 || lists[param]) return DEFT_OK;
    return kept(p, src, &lists[param], &ns[param]);
}

static enum deft_status plan_node(const struct deft_prune_plan *p, struct deft_graph *g2, int n, int **rows,
                                  int *nr, int **cols, int *nc) {
    struct deft_node *nd = deft_graph_node_mut(g2, n);
    const struct deft_graph *g = p->g;
    enum deft_status s = DEFT_OK;
    int x = nd->in[0], y = nd->out[0];
    switch (nd->op) {
    case DEFT_OP_CONV2D: {
        int groups = nd->attr.conv.groups > 0 ? nd->attr.conv.groups : 1;
        int cin = (int)deft_graph_value(g, x)->shape.d[1];
        if (groups > 1 && groups != cin) break; /* grouped: kept whole (analysis forced its input whole) */
        if (!(s = cut(p, nd->in[1], y, rows, nr)) && groups == 1) s = cut(p, nd->in[1], x, cols, nc);
        if (!s && nd->n_in > 2) s = cut(p, nd->in[2], y, rows, nr);
        if (!s && groups > 1 && rows[nd->in[1]]) nd->attr.conv.groups = nr[nd->in[1]]; /* depthwise */
        break;
    }
    case DEFT_OP_CONV_TRANSPOSE2D:
        if (nd->attr.conv.groups <= 1) s = cut(p, nd->in[1], x, rows, nr); /* weight [Cin, K, R, S] */
        break;
    case DEFT_OP_LINEAR:
        if (!(s = cut(p, nd->in[1], y, rows, nr))) s = cut(p, nd->in[1], x, cols, nc);
        if (!s && nd->n_in > 2) s = cut(p, nd->in[2], y, rows, nr);
        break;
    case DEFT_OP_BATCHNORM:
        for (int i = 1; !s && i < nd->n_in && i < 5; i++) s = cut(p, nd->in[i], x, rows, nr);
        break;
    case DEFT_OP_RESHAPE: {
        int *l;
        int k;
        if ((s = kept(p, y, &l, &k)) || !l) break;
        deft_free(l);
        if (nd->attr.shape.ndim == 2) nd->attr.shape.d[1] = k;
        break;
    }
    default: break;
    }
    return s;
}

static void resize_value(struct deft_value *v, int *rows, int nr, int *cols, int nc) {
    if (rows && v->shape.ndim >= 1) {
        if (v->fan_out > 0 && v->shape.d[0] > 0) v->fan_out = (int)((int64_t)v->fan_out * nr / v->shape.d[0]);
        v->shape.d[0] = nr;
    }
    if (cols && v->shape.ndim >= 2) {
        if (v->fan_in > 0 && v->shape.d[1] > 0) v->fan_in = (int)((int64_t)v->fan_in * nc / v->shape.d[1]);
        v->shape.d[1] = nc;
    }
}

enum deft_status pr_build_graph(struct deft_prune_plan *p, struct deft_graph **out, int ***rows_out,
                                int **nr_out, int ***cols_out, int **nc_out) {
    *out = NULL;
    struct deft_graph *g2;
    enum deft_status s = deft_graph_clone(p->g, &g2);
    if (s) return s;
    int nv = deft_graph_num_values(g2);
    int **rows = deft_calloc((size_t)nv + 1, sizeof *rows), **cols = deft_calloc((size_t)nv + 1, sizeof *cols);
    int *nr = deft_calloc((size_t)nv + 1, sizeof *nr), *nc = deft_calloc((size_t)nv + 1, sizeof *nc);
    if (!rows || !cols || !nr || !nc) s = deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    for (int n = 0; !s && n < deft_graph_num_nodes(g2); n++) s = plan_node(p, g2, n, rows, nr, cols, nc);
    for (int v = 0; !s && v < nv; v++)
        if (rows[v] || cols[v]) resize_value(deft_graph_value_mut(g2, v), rows[v], nr[v], cols[v], nc[v]);
    if (!s && (s = deft_graph_infer_shapes(g2)))
        s = deft_wrap_error(s, "pruning produced an inconsistent graph (a bug: please report)");
    if (s) {
        pr_free_lists(rows, nv);
        pr_free_lists(cols, nv);
        deft_free(nr);
        deft_free(nc);
        deft_graph_free(g2);
        return s;
    }
    *out = g2, *rows_out = rows, *nr_out = nr, *cols_out = cols, *nc_out = nc;
    return DEFT_OK;
}

/* TAO counts every weight (Keras count_params: BN statistics too); FLOPs at batch 1. */
enum deft_status pr_count(const struct deft_graph *g, int64_t *params, int64_t *flops) {
    struct deft_graph *c;
    enum deft_status s = deft_graph_clone(g, &c);
    if (s) return s;
    for (int v = 0; v < deft_graph_num_values(c); v++) {
        struct deft_value *val = deft_graph_value_mut(c, v);
        if (val->kind == DEFT_VALUE_INPUT && val->shape.ndim >= 1) val->shape.d[0] = 1;
    }
    if (!(s = deft_graph_infer_shapes(c))) {
        struct deft_graph_stats st;
        deft_graph_stats(c, &st);
        *params = st.params + st.state;
        *flops = st.flops;
    }
    deft_graph_free(c);
    return s;
}

/* dst[i, j, ...] = src[rows[i], cols[j], ...] for a tensor [A, B, inner...]. */
static void slice2(const float *src, const struct deft_shape *os, const int *rows, int nr, const int *cols, int nc,
                   float *dst) {
    int64_t a = os->ndim >= 1 ? os->d[0] : 1, b = os->ndim >= 2 ? os->d[1] : 1, inner = 1;
    for (int d = 2; d < os->ndim; d++) inner *= os->d[d];
    int64_t na = rows ? nr : a, nb = cols ? nc : b;
    for (int64_t i = 0; i < na; i++) {
        int64_t r = rows ? rows[i] : i;
        for (int64_t j = 0; j < nb; j++) {
            int64_t c = cols ? cols[j] : j;
            memcpy(dst + (i * nb + j) * inner, src + (r * b + c) * inner, (size_t)inner * sizeof(float));
        }
    }
}

void deft_prune_tensors_free(struct deft_named_tensor *t, int n) {
    for (int i = 0; t && i < n; i++) {
        deft_free(t[i].name);
        deft_tensor_free(t[i].tensor);
    }
    deft_free(t);
}

static enum deft_status meta_pruned(const struct deft_prune_plan *p, struct deft_graph *g2) {
    static const char *const norms[] = {"max", "L2", "off"};
    static const char *const eqs[] = {"union", "intersection", "arithmetic_mean", "geometric_mean"};
    char buf[400];
    snprintf(buf, sizeof buf, "{\"threshold\": %.9g, \"normalizer\": \"%s\", \"equalization_criterion\": \"%s\", "
             "\"pruning_granularity\": %d, \"min_num_filters\": %d}", p->o.threshold, norms[p->o.norm], eqs[p->o.eq],
             p->o.granularity, p->o.min_num_filters);
    return deft_graph_set_meta(g2, "pruned", buf);
}

enum deft_status deft_prune_apply(struct deft_prune_plan *p, const struct deft_safetensors *w,
                                  struct deft_graph **graph, struct deft_named_tensor **tensors, int *n) {
    *graph = NULL, *tensors = NULL, *n = 0;
    struct deft_graph *g2;
    int **rows, **cols, *nr, *nc;
    enum deft_status s = pr_build_graph(p, &g2, &rows, &nr, &cols, &nc);
    if (s) return s;
    int nv = deft_graph_num_values(g2), k = 0;
    struct deft_named_tensor *list = deft_calloc((size_t)nv + 1, sizeof *list);
    float *buf = NULL;
    if (!list) s = deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    for (int v = 0; !s && v < nv; v++) {
        const struct deft_value *nvv = deft_graph_value(g2, v), *ov = deft_graph_value(p->g, v);
        if (nvv->kind != DEFT_VALUE_PARAM && nvv->kind != DEFT_VALUE_STATE) continue;
        const struct deft_tensor *src = deft_safetensors_find(w, ov->name);
        if (!src || !deft_shape_equal(&src->shape, &ov->shape)) {
            s = deft_set_error(DEFT_ERR_NOT_FOUND, "pruning: no weights of the right shape for '%s'", ov->name);
            break;
        }
        deft_free(buf);
        if (!(buf = deft_malloc((size_t)deft_shape_numel(&ov->shape) * sizeof(float) + 1))) {
            s = deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
            break;
        }
        if ((s = deft_tensor_to_f32(src, buf))) break;
        if ((s = deft_tensor_create(DEFT_F32, &nvv->shape, &list[k].tensor))) break;
        if (!(list[k].name = deft_strdup(nvv->name))) {
            k++;
            s = deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
            break;
        }
        slice2(buf, &ov->shape, rows[v], nr[v], cols[v], nc[v], list[k].tensor->data);
        k++;
    }
    deft_free(buf);
    if (!s) s = meta_pruned(p, g2);
    pr_free_lists(rows, nv);
    pr_free_lists(cols, nv);
    deft_free(nr);
    deft_free(nc);
    if (s) {
        deft_prune_tensors_free(list, k + 1);
        deft_graph_free(g2);
        return s;
    }
    *graph = g2, *tensors = list, *n = k;
    return DEFT_OK;
}

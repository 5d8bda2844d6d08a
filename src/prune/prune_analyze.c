/* prune_analyze.c - TAO's exploration pass over deft's IR: which filter
 * produced each channel, per-filter scores, equalization groups, depthwise
 * ties and the layers that must stay whole (tao.md §2.4, 2.5, 2.7). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "prune/prune_impl.h"

int pr_find(struct deft_prune_plan *p, int u) {
    while (p->units[u].parent != u) {
        p->units[u].parent = p->units[p->units[u].parent].parent;
        u = p->units[u].parent;
    }
    return u;
}

static void unite(struct deft_prune_plan *p, int a, int b) {
    a = pr_find(p, a), b = pr_find(p, b);
    if (a != b) p->units[b].parent = a;
}

static int unit_of_id(const struct deft_prune_plan *p, int id) {
    int lo = 0, hi = p->n_units - 1; /* bases ascend */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (p->units[mid].base <= id) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static const char *node_name(const struct deft_prune_plan *p, int n) { return deft_graph_node(p->g, n)->name; }

static int channels(const struct deft_prune_plan *p, int v) {
    const struct deft_value *val = deft_graph_value(p->g, v);
    return val->shape.ndim >= 2 ? (int)val->shape.d[1] : 1;
}

static bool has_units(const struct deft_prune_plan *p, int v) {
    if (!p->map[v]) return false;
    for (int c = 0; c < p->map_n[v]; c++)
        if (p->map[v][c] >= 0) return true;
    return false;
}

/* v carries channels of a layer that may lose filters (not -el excluded) */
static bool has_prunable(const struct deft_prune_plan *p, int v) {
    for (int c = 0; p->map[v] && c < p->map_n[v]; c++)
        if (p->map[v][c] >= 0 && !p->units[unit_of_id(p, p->map[v][c])].full) return true;
    return false;
}

/* the first prunable layer feeding value v (for messages) */
static const char *first_layer(const struct deft_prune_plan *p, int v) {
    for (int c = 0; p->map[v] && c < p->map_n[v]; c++)
        if (p->map[v][c] >= 0 && !p->units[unit_of_id(p, p->map[v][c])].full) return node_name(p, p->units[unit_of_id(p, p->map[v][c])].node);
    return "?";
}

static enum deft_status set_map(struct deft_prune_plan *p, int v, const int *src, int n) {
    if (!src) return DEFT_OK;
    p->map[v] = deft_malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!p->map[v]) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    memcpy(p->map[v], src, (size_t)n * sizeof(int));
    p->map_n[v] = n;
    return DEFT_OK;
}

static enum deft_status copy_map(struct deft_prune_plan *p, int dst, int src) {
    if (!p->map[src]) return DEFT_OK;
    if (channels(p, dst) != p->map_n[src]) {
        if (!has_prunable(p, src)) return DEFT_OK;
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: '%s' changes the channel count of '%s' (pruned "
                              "layer '%s'); exclude that layer with -el", deft_graph_value(p->g, dst)->name,
                              deft_graph_value(p->g, src)->name, first_layer(p, src));
    }
    return set_map(p, dst, p->map[src], p->map_n[src]);
}

static void force_full(struct deft_prune_plan *p, int v) {
    for (int c = 0; p->map[v] && c < p->map_n[v]; c++)
        if (p->map[v][c] >= 0) p->units[unit_of_id(p, p->map[v][c])].full = true;
}

/* The unit whose filters are exactly value v's channels in order, -1 if v
 * carries no prunable channel, -2 if it mixes several (a concat). */
static int identity_unit(struct deft_prune_plan *p, int v) {
    if (!has_units(p, v)) return -1;
    int id0 = p->map[v][0];
    if (id0 < 0) return -2;
    int u = unit_of_id(p, id0);
    if (p->units[u].n != p->map_n[v] || id0 != p->units[u].base) return -2;
    for (int c = 0; c < p->map_n[v]; c++)
        if (p->map[v][c] != p->units[u].base + c) return -2;
    return u;
}

static bool is_excluded(const struct deft_prune_plan *p, const char *name) {
    for (int i = 0; i < p->n_excl; i++)
        if (!strcmp(p->excl[i], name)) return true;
    return false;
}

/* Per-filter L2 norm of the kernel (row-major: filters on axis 0), normalized. */
static enum deft_status filter_stat(struct deft_prune_plan *p, const struct deft_safetensors *w, int node,
                                    int n, float **out) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    const struct deft_value *wv = deft_graph_value(p->g, nd->in[1]);
    const struct deft_tensor *t = deft_safetensors_find(w, wv->name);
    if (!t || !deft_shape_equal(&t->shape, &wv->shape))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "pruning: no weights of the right shape for '%s'", wv->name);
    int64_t numel = deft_shape_numel(&wv->shape), per = numel / n;
    float *buf = deft_malloc((size_t)numel * sizeof(float)), *s = deft_malloc((size_t)n * sizeof(float));
    enum deft_status st = buf && s ? deft_tensor_to_f32(t, buf) : deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    for (int f = 0; !st && f < n; f++) {
        double acc = 0;
        for (int64_t i = 0; i < per; i++) acc += (double)buf[f * per + i] * buf[f * per + i];
        s[f] = (float)sqrt(acc);
    }
    deft_free(buf);
    if (st) {
        deft_free(s);
        return st;
    }
    pr_normalize(s, n, p->o.norm);
    *out = s;
    return DEFT_OK;
}

static enum deft_status add_layer(struct deft_prune_plan *p, int node, enum pr_kind kind, int unit, int ch) {
    if (p->n_layers == p->cap_layers) {
        int cap = p->cap_layers ? 2 * p->cap_layers : 64;
        void *nl = deft_realloc(p->layers, (size_t)cap * sizeof *p->layers);
        if (!nl) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
        p->layers = nl, p->cap_layers = cap;
    }
    p->layers[p->n_layers++] = (struct pr_layer){node, kind, unit, ch};
    return DEFT_OK;
}

/* A conv or linear: a new unit; its output channels are its filters. */
static enum deft_status new_unit(struct deft_prune_plan *p, const struct deft_safetensors *w, int node,
                                 enum pr_kind kind) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    int n = (int)deft_graph_value(p->g, nd->in[1])->shape.d[0];
    if (p->n_units == p->cap_units) {
        int cap = p->cap_units ? 2 * p->cap_units : 64;
        void *nu = deft_realloc(p->units, (size_t)cap * sizeof *p->units);
        if (!nu) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
        p->units = nu, p->cap_units = cap;
    }
    int u = p->n_units;
    struct pr_unit *un = &p->units[u];
    *un = (struct pr_unit){.node = node, .weight = nd->in[1], .n = n, .base = p->total, .parent = u};
    enum deft_status s = filter_stat(p, w, node, n, &un->stat);
    if (s) return s;
    p->units[u].full = is_excluded(p, nd->name);
    p->n_units++;
    p->total += n;
    int out = nd->out[0];
    p->map[out] = deft_malloc((size_t)n * sizeof(int));
    if (!p->map[out]) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    for (int c = 0; c < n; c++) p->map[out][c] = un->base + c;
    p->map_n[out] = n;
    return add_layer(p, node, kind, u, n);
}

/* Depthwise conv: its channels are its parent's; scores merge pairwise. */
static enum deft_status depthwise(struct deft_prune_plan *p, const struct deft_safetensors *w, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    int x = nd->in[0], c = channels(p, x);
    int u = identity_unit(p, x);
    if (u == -2)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: depthwise conv '%s' reads channels of several layers "
                              "(a concat in the way): not supported; exclude '%s' with -el", nd->name, first_layer(p, x));
    if (u >= 0) {
        float *s;
        enum deft_status st = filter_stat(p, w, node, c, &s);
        if (st) return st;
        for (int i = 0; i < c; i++) p->units[u].stat[i] = pr_combine2(p->units[u].stat[i], s[i], p->o.eq);
        deft_free(s);
        if (is_excluded(p, nd->name)) p->units[u].full = true;
    }
    enum deft_status st = copy_map(p, nd->out[0], x);
    return st ? st : add_layer(p, node, PR_DEPTHWISE, u, c);
}

static enum deft_status conv(struct deft_prune_plan *p, const struct deft_safetensors *w, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    int groups = nd->attr.conv.groups > 0 ? nd->attr.conv.groups : 1;
    int cin = channels(p, nd->in[0]), k = (int)deft_graph_value(p->g, nd->in[1])->shape.d[0];
    if (groups == 1) return new_unit(p, w, node, PR_CONV);
    if (groups == cin && k == cin) return depthwise(p, w, node);
    if (groups == cin && has_prunable(p, nd->in[0]))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: depthwise conv '%s' has depth multiplier %d (TAO "
                              "prunes only 1); exclude '%s' with -el", nd->name, k / cin, first_layer(p, nd->in[0]));
    /* other grouped convs: channels would have to go in whole groups; keep
     * them and their input whole */
    force_full(p, nd->in[0]);
    return DEFT_OK;
}

/* add / mul: TAO's equalization (tao.md §2.5). */
static enum deft_status eltwise(struct deft_prune_plan *p, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    int out = nd->out[0], c = channels(p, out), first = -1, first_u = -1;
    bool unprunable = false;
    for (int i = 0; i < nd->n_in; i++) {
        int v = nd->in[i];
        if (v < 0) continue;
        if (channels(p, v) == 1 && c > 1) { /* broadcast: a 1-filter parent stays */
            force_full(p, v);
            continue;
        }
        int u = identity_unit(p, v);
        if (u == -2)
            return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: '%s' (%s) adds channels that mix several layers "
                                  "(a concat in the way): not supported; exclude '%s' with -el", nd->name,
                                  deft_op_name(nd->op), first_layer(p, v));
        if (u == -1) {
            unprunable = true; /* the image, a constant, a transposed conv ... */
            continue;
        }
        if (first < 0) first = v, first_u = u;
        else unite(p, first_u, u);
    }
    if (first < 0) return DEFT_OK;
    if (unprunable) force_full(p, first);
    return copy_map(p, out, first);
}

static enum deft_status concat(struct deft_prune_plan *p, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    int out = nd->out[0];
    bool any = false, prunable = false;
    for (int i = 0; i < nd->n_in; i++) any |= has_units(p, nd->in[i]), prunable |= has_prunable(p, nd->in[i]);
    if (!any || (nd->attr.concat.axis != 1 && !prunable)) return DEFT_OK;
    if (nd->attr.concat.axis != 1)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: concat '%s' is not on the channel axis but its "
                              "inputs come from pruned layers; exclude them with -el", nd->name);
    int n = channels(p, out), off = 0;
    p->map[out] = deft_malloc((size_t)n * sizeof(int));
    if (!p->map[out]) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    p->map_n[out] = n;
    for (int i = 0; i < nd->n_in; i++) { /* channel offsets: each input's map in turn */
        int v = nd->in[i], ci = channels(p, v);
        for (int k = 0; k < ci && off + k < n; k++) p->map[out][off + k] = p->map[v] ? p->map[v][k] : -1;
        off += ci;
    }
    return DEFT_OK;
}

/* Flatten [N, C, H, W] -> [N, C*H*W] repeats each channel H*W times (NCHW). */
static enum deft_status reshape(struct deft_prune_plan *p, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    int x = nd->in[0], out = nd->out[0];
    if (!has_units(p, x)) return DEFT_OK;
    const struct deft_shape *xs = &deft_graph_value(p->g, x)->shape, *ys = &deft_graph_value(p->g, out)->shape;
    if (deft_shape_equal(xs, ys)) return copy_map(p, out, x);
    if (xs->ndim == 4 && ys->ndim == 2 && ys->d[0] == xs->d[0] && ys->d[1] == xs->d[1] * xs->d[2] * xs->d[3]) {
        int c = (int)xs->d[1], hw = (int)(xs->d[2] * xs->d[3]);
        p->map[out] = deft_malloc((size_t)c * (size_t)hw * sizeof(int));
        if (!p->map[out]) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
        p->map_n[out] = c * hw;
        for (int k = 0; k < c * hw; k++) p->map[out][k] = p->map[x][k / hw];
        return DEFT_OK;
    }
    if (!has_prunable(p, x)) return DEFT_OK; /* its producers stay whole: channels pass unchanged */
    return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: reshape '%s' after the prunable layer '%s' is not supported "
                          "(only flatten is); exclude '%s' with -el", nd->name, first_layer(p, x), first_layer(p, x));
}

static enum deft_status slice_or_pad(struct deft_prune_plan *p, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    int x = nd->in[0];
    if (!has_units(p, x)) return DEFT_OK;
    int c = channels(p, x);
    if (!has_prunable(p, x)) return DEFT_OK;
    bool touches = nd->op == DEFT_OP_SLICE ? (nd->attr.slice.start[1] != 0 || nd->attr.slice.end[1] < c)
                                           : (nd->attr.pad.before[1] != 0 || nd->attr.pad.after[1] != 0);
    if (touches) { /* TAO keeps the conv before a Split whole: so do we, for any channel cut */
        force_full(p, x);
        return DEFT_OK;
    }
    return copy_map(p, nd->out[0], x);
}

/* A conv/linear whose weight or bias an earlier node reads too. */
static bool reads_shared(const struct deft_prune_plan *p, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    if (nd->op != DEFT_OP_CONV2D && nd->op != DEFT_OP_LINEAR && nd->op != DEFT_OP_CONV_TRANSPOSE2D) return false;
    for (int i = 1; i < nd->n_in; i++) {
        if (nd->in[i] < 0 || deft_graph_value(p->g, nd->in[i])->kind != DEFT_VALUE_PARAM) continue;
        for (int m = 0; m < node; m++) {
            const struct deft_node *o = deft_graph_node(p->g, m);
            for (int j = 0; j < o->n_in; j++)
                if (o->in[j] == nd->in[i]) return true;
        }
    }
    return false;
}

static int weight_unit(const struct deft_prune_plan *p, int weight) {
    for (int u = 0; u < p->n_units; u++)
        if (p->units[u].weight == weight) return u;
    return -1;
}

/* Another conv reading unit u's weight (TAO: a Conv2D with several inbound
 * nodes). Its filters are the unit's, so its output gets the unit's
 * channels and every consumer is cut the same way; its input must lose the
 * same channels as the first use's, so the two inputs' producers form one
 * equalization group (TAO's rule, tao.md 2.4-2.5), and an input no pruning
 * touches keeps the other whole. The score is the kernel's: the same for
 * every use. */
static enum deft_status shared_use(struct deft_prune_plan *p, int node, int u) {
    const struct deft_node *nd = deft_graph_node(p->g, node), *first = deft_graph_node(p->g, p->units[u].node);
    int x0 = first->in[0], x = nd->in[0], u0 = identity_unit(p, x0), ux = identity_unit(p, x);
    if (u0 == -2 || ux == -2)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: '%s' shares its weight with '%s' but one of them reads "
                              "channels of several layers (a concat in the way): not supported; exclude '%s' with -el",
                              nd->name, first->name, first_layer(p, u0 == -2 ? x0 : x));
    if (u0 >= 0 && ux >= 0) unite(p, u0, ux);
    else if (u0 >= 0) force_full(p, x0);
    else if (ux >= 0) force_full(p, x);
    if (is_excluded(p, nd->name)) p->units[u].full = true;
    int out = nd->out[0], n = p->units[u].n;
    p->map[out] = deft_malloc((size_t)n * sizeof(int));
    if (!p->map[out]) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    for (int c = 0; c < n; c++) p->map[out][c] = p->units[u].base + c;
    p->map_n[out] = n;
    return DEFT_OK;
}

static enum deft_status visit(struct deft_prune_plan *p, const struct deft_safetensors *w, int node) {
    const struct deft_node *nd = deft_graph_node(p->g, node);
    if (nd->fwd >= 0 || !deft_op_is_forward(nd->op))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: '%s' is a %s node: prune a model graph, not a training "
                              "graph", nd->name, deft_op_name(nd->op));
    if (reads_shared(p, node)) {
        int u = weight_unit(p, nd->in[1]);
        bool plain = nd->op == DEFT_OP_LINEAR || (nd->op == DEFT_OP_CONV2D && nd->attr.conv.groups <= 1);
        if (u >= 0 && plain) return shared_use(p, node, u);
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: '%s' (%s) shares a weight with an earlier layer: "
                              "only plain convs and linears may share one; exclude it with -el", nd->name,
                              deft_op_name(nd->op));
    }
    switch (nd->op) {
    case DEFT_OP_CONV2D: return conv(p, w, node);
    case DEFT_OP_LINEAR: return new_unit(p, w, node, PR_LINEAR);
    case DEFT_OP_CONV_TRANSPOSE2D: /* outputs never pruned; a grouped one keeps its input */
        if (nd->attr.conv.groups > 1) force_full(p, nd->in[0]);
        return DEFT_OK;
    case DEFT_OP_BATCHNORM:
    case DEFT_OP_ACT:
    case DEFT_OP_POOL:
    case DEFT_OP_GLOBAL_AVGPOOL:
    case DEFT_OP_DROPOUT:
    case DEFT_OP_UPSAMPLE:
    case DEFT_OP_ROI_ALIGN: /* per-RoI crops keep the feature map's channels */
    case DEFT_OP_SOFTMAX: return copy_map(p, nd->out[0], nd->in[0]);
    case DEFT_OP_ADD:
    case DEFT_OP_MUL: return eltwise(p, node);
    case DEFT_OP_CONCAT: return concat(p, node);
    case DEFT_OP_RESHAPE: return reshape(p, node);
    case DEFT_OP_SLICE:
    case DEFT_OP_PAD: return slice_or_pad(p, node);
    default:
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "pruning: op %s ('%s') is not supported", deft_op_name(nd->op),
                              nd->name);
    }
}

/* -el names must be layers; they are applied as the walk meets them. */
static enum deft_status check_excluded(struct deft_prune_plan *p, const struct deft_prune_opts *o) {
    for (int i = 0; i < o->n_excluded; i++)
        if (!o->excluded[i] || deft_graph_find_node(p->g, o->excluded[i]) < 0)
            return deft_set_error(DEFT_ERR_NOT_FOUND, "-el: the model has no layer named '%s' (see `deft model info`)",
                                  o->excluded[i] ? o->excluded[i] : "(null)");
    p->excl = o->excluded;
    p->n_excl = o->n_excluded;
    return DEFT_OK;
}

/* Layers whose channels reach a model output keep them all. */
static enum deft_status exclusions(struct deft_prune_plan *p) {
    for (int v = 0; v < deft_graph_num_values(p->g); v++)
        if (deft_graph_value(p->g, v)->flags & DEFT_VF_OUTPUT) force_full(p, v);
    return DEFT_OK;
}

void deft_prune_plan_free(struct deft_prune_plan *p) {
    if (!p) return;
    int nv = p->g ? deft_graph_num_values(p->g) : 0;
    for (int v = 0; p->map && v < nv; v++) deft_free(p->map[v]);
    deft_free(p->map);
    deft_free(p->map_n);
    for (int u = 0; u < p->n_units; u++) {
        deft_free(p->units[u].stat);
        if (p->ret) deft_free(p->ret[u]);
    }
    deft_free(p->ret);
    deft_free(p->ret_n);
    deft_free(p->units);
    deft_free(p->layers);
    deft_free(p->keep);
    deft_graph_free(p->g);
    deft_free(p);
}

enum deft_status deft_prune_analyze(const struct deft_graph *g, const struct deft_safetensors *w,
                                    const struct deft_prune_opts *o, struct deft_prune_plan **out) {
    *out = NULL;
    if (!g || !w || !o) return deft_set_error(DEFT_ERR_INVALID_ARG, "pruning: NULL argument");
    if (o->norm > DEFT_PRUNE_NORM_OFF || o->eq > DEFT_PRUNE_EQ_GEOMETRIC_MEAN || o->granularity < 0 ||
        !isfinite(o->threshold))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "pruning: bad options");
    struct deft_prune_plan *p = deft_calloc(1, sizeof *p);
    if (!p) return deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    p->o = *o;
    p->o.excluded = NULL, p->o.n_excluded = 0;
    if (!p->o.granularity) p->o.granularity = 8;
    if (!p->o.min_num_filters) p->o.min_num_filters = 16;
    if (p->o.min_num_filters < 0) p->o.min_num_filters = 0;
    enum deft_status s = deft_graph_clone(g, &p->g);
    int nv = s ? 0 : deft_graph_num_values(p->g);
    if (!s) {
        p->map = deft_calloc((size_t)nv + 1, sizeof *p->map);
        p->map_n = deft_calloc((size_t)nv + 1, sizeof *p->map_n);
        if (!p->map || !p->map_n) s = deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    }
    if (!s) s = check_excluded(p, o);
    for (int n = 0; !s && n < deft_graph_num_nodes(p->g); n++) s = visit(p, w, n);
    if (!s) s = exclusions(p);
    p->excl = NULL, p->n_excl = 0; /* the caller's strings */
    if (!s && !(p->keep = deft_calloc((size_t)p->total + 1, 1))) s = deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    if (!s && (!(p->ret = deft_calloc((size_t)p->n_units + 1, sizeof *p->ret)) ||
               !(p->ret_n = deft_calloc((size_t)p->n_units + 1, sizeof *p->ret_n))))
        s = deft_set_error(DEFT_ERR_NOMEM, "pruning: out of memory");
    if (!s) s = deft_prune_decide(p, o->threshold);
    if (s) {
        deft_prune_plan_free(p);
        return s;
    }
    *out = p;
    return DEFT_OK;
}

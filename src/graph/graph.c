/* graph.c - graph storage: values, nodes, metadata, lookup, clone, checks. */
#include <string.h>
#include "graph/graph_impl.h"

enum deft_status deft_graph_create(struct deft_graph **out) {
    *out = deft_calloc(1, sizeof **out);
    if (!*out) return deft_set_error(DEFT_ERR_NOMEM, "out of memory creating a graph");
    return DEFT_OK;
}

void deft_graph_free(struct deft_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) deft_free(g->values[i].name);
    for (int i = 0; i < g->n_nodes; i++) deft_free(g->nodes[i].name);
    for (int i = 0; i < g->n_meta; i++) {
        deft_free(g->meta[i].key);
        deft_free(g->meta[i].json);
    }
    deft_free(g->values);
    deft_free(g->nodes);
    deft_free(g->meta);
    deft_free(g);
}

int deft_graph_fail(struct deft_graph *g, enum deft_status s) {
    if (g->status == DEFT_OK) g->status = s;
    return -1;
}

enum deft_status deft_graph_status(const struct deft_graph *g) { return g->status; }
int deft_graph_num_values(const struct deft_graph *g) { return g->n_values; }
int deft_graph_num_nodes(const struct deft_graph *g) { return g->n_nodes; }

const struct deft_value *deft_graph_value(const struct deft_graph *g, int v) {
    return v >= 0 && v < g->n_values ? &g->values[v] : NULL;
}
const struct deft_node *deft_graph_node(const struct deft_graph *g, int n) {
    return n >= 0 && n < g->n_nodes ? &g->nodes[n] : NULL;
}
struct deft_value *deft_graph_value_mut(struct deft_graph *g, int v) {
    return v >= 0 && v < g->n_values ? &g->values[v] : NULL;
}
struct deft_node *deft_graph_node_mut(struct deft_graph *g, int n) {
    return n >= 0 && n < g->n_nodes ? &g->nodes[n] : NULL;
}

int deft_graph_find_value(const struct deft_graph *g, const char *name) {
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

int deft_graph_find_node(const struct deft_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

static bool grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *p = deft_realloc(*arr, (size_t)nc * elem);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

int deft_graph_add_value(struct deft_graph *g, const char *name, enum deft_value_kind kind,
                         enum deft_dtype dtype, const struct deft_shape *shape) {
    if (g->status) return -1;
    if (!name || !name[0]) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "a graph value needs a name");
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    if (deft_graph_find_value(g, name) >= 0) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "duplicate value name '%s' in graph", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    if (shape->ndim < 0 || shape->ndim > DEFT_MAX_DIMS) {
        deft_set_error(DEFT_ERR_SHAPE, "value '%s': rank %d out of range", name, shape->ndim);
        return deft_graph_fail(g, DEFT_ERR_SHAPE);
    }
    for (int i = 0; i < shape->ndim; i++)
        if (shape->d[i] < 0 || shape->d[i] > ((int64_t)1 << 40)) {
            deft_set_error(DEFT_ERR_SHAPE, "value '%s': dimension %d is %lld", name, i,
                           (long long)shape->d[i]);
            return deft_graph_fail(g, DEFT_ERR_SHAPE);
        }
    if (!grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof *g->values)) {
        deft_set_error(DEFT_ERR_NOMEM, "out of memory adding value '%s'", name);
        return deft_graph_fail(g, DEFT_ERR_NOMEM);
    }
    char *nm = deft_strdup(name);
    if (!nm) {
        deft_set_error(DEFT_ERR_NOMEM, "out of memory adding value '%s'", name);
        return deft_graph_fail(g, DEFT_ERR_NOMEM);
    }
    struct deft_value *v = &g->values[g->n_values];
    *v = (struct deft_value){.name = nm, .kind = kind, .dtype = dtype, .shape = *shape,
                             .producer = -1, .grad_of = -1};
    return g->n_values++;
}

static int add_node_common(struct deft_graph *g, enum deft_op op, const char *name, const int *in,
                           int n_in, const struct deft_attr *attr, int fwd) {
    if (g->status) return -1;
    if ((unsigned)op >= DEFT_OP_COUNT || n_in < 0 || n_in > DEFT_MAX_INPUTS || !name) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "invalid node '%s'", name ? name : "?");
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    for (int i = 0; i < n_in; i++)
        if (in[i] < -1 || in[i] >= g->n_values) {
            deft_set_error(DEFT_ERR_INVALID_ARG, "node '%s': input %d refers to no value", name, i);
            return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
        }
    if (fwd >= g->n_nodes) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "node '%s': forward node out of range", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    if (deft_graph_find_node(g, name) >= 0) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "duplicate node name '%s' in graph", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    struct deft_attr a = attr ? *attr : (struct deft_attr){0};
    int n_out = deft_op_num_outputs(op, &a, n_in);
    if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) {
        deft_set_error(DEFT_ERR_NOMEM, "out of memory adding node '%s'", name);
        return deft_graph_fail(g, DEFT_ERR_NOMEM);
    }
    int first_value = g->n_values;
    int outs[DEFT_MAX_OUTPUTS];
    for (int i = 0; i < n_out; i++) {
        char vn[512];
        if (i == 0)
            snprintf(vn, sizeof vn, "%s", name);
        else
            snprintf(vn, sizeof vn, "%s:%d", name, i);
        struct deft_shape empty = {0};
        outs[i] = deft_graph_add_value(g, vn, DEFT_VALUE_NODE, DEFT_F32, &empty);
        if (outs[i] < 0) goto undo_values;
    }
    char *nm = deft_strdup(name);
    if (!nm) {
        deft_set_error(DEFT_ERR_NOMEM, "out of memory adding node '%s'", name);
        deft_graph_fail(g, DEFT_ERR_NOMEM);
        goto undo_values;
    }
    int n = g->n_nodes;
    struct deft_node *node = &g->nodes[n];
    *node = (struct deft_node){.op = op, .name = nm, .n_in = n_in, .n_out = n_out, .attr = a,
                               .fwd = fwd};
    for (int i = 0; i < n_in; i++) node->in[i] = in[i];
    for (int i = 0; i < n_out; i++) {
        node->out[i] = outs[i];
        g->values[outs[i]].producer = n;
        g->values[outs[i]].slot = i;
    }
    g->n_nodes++;
    enum deft_status s = deft_op_infer(g, n);
    if (s) {
        deft_wrap_error(s, "node '%s' (%s)", name, deft_op_name(op));
        deft_graph_fail(g, s);
        return -1;
    }
    return n;
undo_values:
    for (int i = first_value; i < g->n_values; i++) deft_free(g->values[i].name);
    g->n_values = first_value;
    return -1;
}

int deft_graph_add_node(struct deft_graph *g, enum deft_op op, const char *name, const int *in,
                        int n_in, const struct deft_attr *attr) {
    return add_node_common(g, op, name, in, n_in, attr, -1);
}

int deft_graph_add_bwd_node(struct deft_graph *g, enum deft_op op, const char *name,
                            const int *in, int n_in, const struct deft_attr *attr, int fwd) {
    return add_node_common(g, op, name, in, n_in, attr, fwd);
}

enum deft_status deft_graph_infer_shapes(struct deft_graph *g) {
    for (int n = 0; n < g->n_nodes; n++) {
        enum deft_status s = deft_op_infer(g, n);
        if (s) return deft_wrap_error(s, "node '%s' (%s)", g->nodes[n].name, deft_op_name(g->nodes[n].op));
    }
    return DEFT_OK;
}

enum deft_status deft_graph_set_meta(struct deft_graph *g, const char *key, const char *json) {
    for (int i = 0; i < g->n_meta; i++)
        if (strcmp(g->meta[i].key, key) == 0) {
            char *j = deft_strdup(json);
            if (!j) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            deft_free(g->meta[i].json);
            g->meta[i].json = j;
            return DEFT_OK;
        }
    struct deft_meta_entry *m = deft_realloc(g->meta, (size_t)(g->n_meta + 1) * sizeof *m);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    g->meta = m;
    char *k = deft_strdup(key), *j = deft_strdup(json);
    if (!k || !j) {
        deft_free(k);
        deft_free(j);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    g->meta[g->n_meta++] = (struct deft_meta_entry){k, j};
    return DEFT_OK;
}

const char *deft_graph_get_meta(const struct deft_graph *g, const char *key) {
    for (int i = 0; i < g->n_meta; i++)
        if (strcmp(g->meta[i].key, key) == 0) return g->meta[i].json;
    return NULL;
}

const char *deft_graph_meta_key(const struct deft_graph *g, int i) {
    return i >= 0 && i < g->n_meta ? g->meta[i].key : NULL;
}

enum deft_status deft_graph_clone(const struct deft_graph *g, struct deft_graph **out) {
    struct deft_graph *c;
    *out = NULL;
    enum deft_status s = deft_graph_create(&c);
    if (s) return s;
    c->values = deft_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c->values);
    c->nodes = deft_calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *c->nodes);
    if (!c->values || !c->nodes) goto nomem;
    c->cap_values = g->n_values;
    c->cap_nodes = g->n_nodes;
    for (int i = 0; i < g->n_values; i++) {
        c->values[i] = g->values[i];
        c->values[i].name = deft_strdup(g->values[i].name);
        c->n_values = i + 1;
        if (!c->values[i].name) goto nomem;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        c->nodes[i] = g->nodes[i];
        c->nodes[i].name = deft_strdup(g->nodes[i].name);
        c->n_nodes = i + 1;
        if (!c->nodes[i].name) goto nomem;
    }
    for (int i = 0; i < g->n_meta; i++)
        if (deft_graph_set_meta(c, g->meta[i].key, g->meta[i].json)) goto nomem;
    c->status = g->status;
    *out = c;
    return DEFT_OK;
nomem:
    deft_graph_free(c);
    return deft_set_error(DEFT_ERR_NOMEM, "out of memory cloning a graph");
}

enum deft_status deft_graph_validate(const struct deft_graph *g) {
    if (g->status) return g->status;
    for (int n = 0; n < g->n_nodes; n++) {
        const struct deft_node *nd = &g->nodes[n];
        if ((unsigned)nd->op >= DEFT_OP_COUNT)
            return deft_set_error(DEFT_ERR_FORMAT, "node %d has an invalid op", n);
        for (int i = 0; i < nd->n_in; i++) {
            int v = nd->in[i];
            if (v < -1 || v >= g->n_values)
                return deft_set_error(DEFT_ERR_FORMAT, "node '%s': input out of range", nd->name);
            if (v >= 0 && g->values[v].kind == DEFT_VALUE_NODE && g->values[v].producer >= n)
                return deft_set_error(DEFT_ERR_FORMAT, "node '%s' reads '%s' before it is computed",
                                      nd->name, g->values[v].name);
        }
        for (int i = 0; i < nd->n_out; i++) {
            int v = nd->out[i];
            if (v < 0 || v >= g->n_values || g->values[v].producer != n)
                return deft_set_error(DEFT_ERR_FORMAT, "node '%s': bad output", nd->name);
        }
    }
    return DEFT_OK;
}

int deft_graph_freeze(struct deft_graph *g, const char *prefix, bool frozen) {
    int count = 0;
    size_t pl = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < g->n_values; i++) {
        struct deft_value *v = &g->values[i];
        if (v->kind != DEFT_VALUE_PARAM) continue;
        if (prefix && strncmp(v->name, prefix, pl) != 0) continue;
        if (frozen)
            v->flags |= DEFT_VF_FROZEN;
        else
            v->flags &= ~(unsigned)DEFT_VF_FROZEN;
        count++;
    }
    return count;
}

void deft_graph_set_training(struct deft_graph *g, bool training) {
    for (int n = 0; n < g->n_nodes; n++) {
        struct deft_node *nd = &g->nodes[n];
        if (nd->op == DEFT_OP_BATCHNORM && nd->attr.bn.mode != DEFT_BN_FROZEN)
            nd->attr.bn.mode = training ? DEFT_BN_TRAIN : DEFT_BN_EVAL;
        if (nd->op == DEFT_OP_DROPOUT) nd->attr.dropout.training = training;
        if (nd->op == DEFT_OP_FAKE_QUANT || nd->op == DEFT_OP_OBSERVE) nd->attr.fq.training = training;
    }
}

enum deft_status deft_graph_reshape_input(struct deft_graph *g, int v, const struct deft_shape *s) {
    if (v < 0 || v >= g->n_values || g->values[v].kind != DEFT_VALUE_INPUT)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "value %d is not a graph input", v);
    if (s->ndim < 1 || s->ndim > DEFT_MAX_DIMS)
        return deft_set_error(DEFT_ERR_SHAPE, "bad input rank %d", s->ndim);
    for (int i = 0; i < s->ndim; i++)
        if (s->d[i] < 1 || s->d[i] > ((int64_t)1 << 31))
            return deft_set_error(DEFT_ERR_SHAPE, "input dimension %d is %lld", i, (long long)s->d[i]);
    g->values[v].shape = *s;
    return deft_graph_infer_shapes(g);
}

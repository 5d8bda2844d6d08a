/* qat.c - the graph rewrite for quantization-aware training and its inverse
 * (deft/quant.h): fake quantization where the QDQ export quantizes, range
 * observers where it only names a tensor, and the float graph back with the
 * learned ranges for the export.
 *
 * Both directions rebuild the graph node by node through the public builder
 * API (nodes must stay in execution order, so new nodes cannot simply be
 * appended): values and parameters keep their names, so weights, roles and
 * checkpoints match by name across the rewrite. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include "deft/quant.h"

#define QAT_DECAY 0.999f /* TAO's QDQ layer */

struct rw {
    const struct deft_graph *g;   /* source */
    struct deft_graph *ng;        /* rebuilt */
    int *map;                     /* source value -> rebuilt value */
    const struct deft_qat_opts *o;
    float decay;
    bool *act_q;                  /* source value: a quantized input of some layer */
    int *act_fq;                  /* source value -> its fake-quant output in ng, -1 */
};

static enum deft_status nomem(void) { return deft_set_error(DEFT_ERR_NOMEM, "QAT: out of memory"); }

static bool excluded(const struct deft_qat_opts *o, const char *layer) {
    for (const char *const *p = o && o->exclude ? o->exclude : NULL; p && *p; p++)
        if (fnmatch(*p, layer, 0) == 0) return true;
    return false;
}

/* Input slot i of node nd is an activation the export quantizes. */
static bool quantized_input(const struct rw *r, const struct deft_node *nd, int i) {
    if (i >= nd->n_in || nd->in[i] < 0 || excluded(r->o, nd->name)) return false;
    enum deft_value_kind k = deft_graph_value(r->g, nd->in[i])->kind;
    if (k != DEFT_VALUE_NODE && k != DEFT_VALUE_INPUT) return false;
    switch (nd->op) {
    case DEFT_OP_CONV2D: case DEFT_OP_CONV_TRANSPOSE2D: case DEFT_OP_LINEAR: return i == 0;
    case DEFT_OP_ADD: return r->o && r->o->fusion && i < 2;
    case DEFT_OP_POOL: case DEFT_OP_GLOBAL_AVGPOOL: return r->o && r->o->fusion && i == 0;
    default: return false;
    }
}

/* The per-channel axis the export quantizes weight input 1 of nd along, or -1. */
static int weight_axis(const struct rw *r, const struct deft_node *nd) {
    if (excluded(r->o, nd->name) || nd->n_in < 2 || nd->in[1] < 0 ||
        deft_graph_value(r->g, nd->in[1])->kind != DEFT_VALUE_PARAM)
        return -1;
    switch (nd->op) {
    case DEFT_OP_CONV2D: case DEFT_OP_LINEAR: return 0;
    case DEFT_OP_CONV_TRANSPOSE2D: return nd->attr.conv.groups == 1 ? 1 : 0;
    default: return -1;
    }
}

/* A value the export writes as an activation tensor (a cal.bin entry): the
 * image input and the first output of every forward node, except a dropout
 * (an alias of its input) and a convolution output only a batch norm reads
 * (the export folds the two into one tensor). */
static bool named_by_export(const struct deft_graph *g, int v, const int *uses, const int *user) {
    const struct deft_value *a = deft_graph_value(g, v);
    if (a->dtype != DEFT_F32 || (a->flags & DEFT_VF_OPAQUE)) return false;
    if (a->kind == DEFT_VALUE_INPUT) return a->shape.ndim == 4;
    if (a->kind != DEFT_VALUE_NODE || a->slot != 0) return false;
    const struct deft_node *p = deft_graph_node(g, a->producer);
    if (!deft_op_is_forward(p->op) || p->op == DEFT_OP_DROPOUT) return false;
    if (p->op == DEFT_OP_CONV2D && uses[v] == 1 && !(a->flags & DEFT_VF_OUTPUT)) {
        const struct deft_node *c = deft_graph_node(g, user[v]);
        if (c->op == DEFT_OP_BATCHNORM && c->in[0] == v) return false;
    }
    return true;
}

/* A [1] range state "<name>", zero: no range seen yet. */
static int range_state(struct deft_graph *ng, const char *name) {
    struct deft_shape one = {.ndim = 1, .d = {1}};
    int s = deft_graph_add_value(ng, name, DEFT_VALUE_STATE, DEFT_F32, &one);
    if (s >= 0) deft_graph_value_mut(ng, s)->init = DEFT_INIT_ZEROS;
    return s;
}

/* After source value v exists in ng: its fake quantization or its observer. */
static enum deft_status track(struct rw *r, int v, const int *uses, const int *user) {
    const struct deft_value *a = deft_graph_value(r->g, v);
    char nm[512], st[520];
    bool q = r->act_q[v];
    if (!q && !named_by_export(r->g, v, uses, user)) return DEFT_OK;
    snprintf(nm, sizeof nm, "%s.%s", a->name, q ? "quant" : "observe");
    snprintf(st, sizeof st, "%s.amax", nm);
    int s = range_state(r->ng, st);
    struct deft_attr at = {.fq = {.mode = DEFT_FQ_PER_TENSOR, .decay = r->decay, .training = true}};
    int n = s < 0 ? -1 : deft_graph_add_node(r->ng, q ? DEFT_OP_FAKE_QUANT : DEFT_OP_OBSERVE, nm,
                                             (int[]){r->map[v], s}, 2, &at);
    if (n < 0) return deft_graph_status(r->ng);
    if (q) r->act_fq[v] = deft_graph_node(r->ng, n)->out[0];
    return DEFT_OK;
}

static enum deft_status copy_value(struct rw *r, int v) {
    const struct deft_value *a = deft_graph_value(r->g, v);
    int nv = deft_graph_add_value(r->ng, a->name, a->kind, a->dtype, &a->shape);
    if (nv < 0) return deft_graph_status(r->ng);
    struct deft_value *b = deft_graph_value_mut(r->ng, nv);
    b->flags = a->flags;
    b->init = a->init;
    b->fan_in = a->fan_in;
    b->fan_out = a->fan_out;
    r->map[v] = nv;
    return DEFT_OK;
}

/* Node nd of the source with remapped inputs (in) and its outputs' flags. */
static enum deft_status copy_node(struct rw *r, const struct deft_node *nd, const int *in) {
    int n = deft_graph_add_node(r->ng, nd->op, nd->name, in, nd->n_in, &nd->attr);
    if (n < 0) return deft_graph_status(r->ng);
    const struct deft_node *m = deft_graph_node(r->ng, n);
    for (int i = 0; i < nd->n_out && i < m->n_out; i++) {
        r->map[nd->out[i]] = m->out[i];
        deft_graph_value_mut(r->ng, m->out[i])->flags |= deft_graph_value(r->g, nd->out[i])->flags;
    }
    return DEFT_OK;
}

static enum deft_status copy_meta(const struct deft_graph *g, struct deft_graph *ng, const char *skip) {
    enum deft_status s = DEFT_OK;
    for (int i = 0; !s && deft_graph_meta_key(g, i); i++) {
        const char *k = deft_graph_meta_key(g, i);
        if (!skip || strcmp(k, skip)) s = deft_graph_set_meta(ng, k, deft_graph_get_meta(g, k));
    }
    return s;
}

static enum deft_status model_graph_only(const struct deft_graph *g) {
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (nd->fwd >= 0 || !deft_op_is_forward(nd->op))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "QAT: '%s' (%s) is not a model-graph node", nd->name,
                                  deft_op_name(nd->op));
    }
    return deft_graph_validate(g);
}

/* Consumer counts and the last consumer of every value. */
static enum deft_status count_uses(const struct deft_graph *g, int **uses, int **user) {
    int nv = deft_graph_num_values(g);
    *uses = deft_calloc((size_t)nv + 1, sizeof **uses);
    *user = deft_calloc((size_t)nv + 1, sizeof **user);
    if (!*uses || !*user) return nomem();
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        for (int i = 0; i < nd->n_in; i++)
            if (nd->in[i] >= 0) {
                (*uses)[nd->in[i]]++;
                (*user)[nd->in[i]] = n;
            }
    }
    return DEFT_OK;
}

static enum deft_status qat_meta(struct rw *r) {
    char buf[2048];
    int len = snprintf(buf, sizeof buf, "{\"weights\": \"per_channel_symmetric\", \"activations\": "
                       "\"per_tensor_symmetric_ema_max\", \"ema_decay\": %.9g, \"fusion\": %s, \"exclude\": [",
                       r->decay, r->o && r->o->fusion ? "true" : "false");
    int k = 0;
    for (const char *const *p = r->o && r->o->exclude ? r->o->exclude : NULL; p && *p; p++, k++) {
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s\"", k ? ", " : "");
        for (const char *c = *p; *c && len < (int)sizeof buf - 8; c++)
            if (*c >= 0x20 && *c != '"' && *c != '\\') buf[len++] = *c; /* patterns are plain names */
        len += snprintf(buf + len, sizeof buf - (size_t)len, "\"");
    }
    if (len >= (int)sizeof buf - 4) return deft_set_error(DEFT_ERR_INVALID_ARG, "QAT: exclude patterns too long");
    snprintf(buf + len, sizeof buf - (size_t)len, "]}");
    return deft_graph_set_meta(r->ng, "qat", buf);
}

static enum deft_status insert(struct rw *r, const int *uses, const int *user) {
    const struct deft_graph *g = r->g;
    enum deft_status s = DEFT_OK;
    int nv = deft_graph_num_values(g);
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        for (int i = 0; i < nd->n_in; i++)
            if (nd->in[i] >= 0 && quantized_input(r, nd, i)) r->act_q[nd->in[i]] = true;
    }
    for (int v = 0; v < nv && !s; v++)
        if (deft_graph_value(g, v)->kind != DEFT_VALUE_NODE) s = copy_value(r, v);
    for (int v = 0; v < nv && !s; v++)
        if (deft_graph_value(g, v)->kind == DEFT_VALUE_INPUT) s = track(r, v, uses, user);
    for (int n = 0; n < deft_graph_num_nodes(g) && !s; n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        int in[DEFT_MAX_INPUTS];
        for (int i = 0; i < nd->n_in; i++) {
            int v = nd->in[i];
            in[i] = v < 0 ? -1 : quantized_input(r, nd, i) ? r->act_fq[v] : r->map[v];
        }
        int axis = weight_axis(r, nd);
        if (axis >= 0) { /* the weight's per-channel fake quantization, read by this layer only */
            char nm[512];
            snprintf(nm, sizeof nm, "%s.quant", deft_graph_value(g, nd->in[1])->name);
            struct deft_attr at = {.fq = {.mode = DEFT_FQ_PER_CHANNEL, .axis = axis}};
            int w = deft_graph_add_node(r->ng, DEFT_OP_FAKE_QUANT, nm, &in[1], 1, &at);
            if (w < 0) return deft_graph_status(r->ng);
            in[1] = deft_graph_node(r->ng, w)->out[0];
        }
        if ((s = copy_node(r, nd, in))) break;
        for (int o = 0; o < nd->n_out && !s; o++) s = track(r, nd->out[o], uses, user);
    }
    if (!s) s = copy_meta(g, r->ng, "qat");
    if (!s) s = qat_meta(r);
    return s ? s : deft_graph_validate(r->ng);
}

enum deft_status deft_qat_insert(const struct deft_graph *g, const struct deft_qat_opts *o, struct deft_graph **out) {
    *out = NULL;
    enum deft_status s = model_graph_only(g);
    if (s) return s;
    if (deft_qat_enabled(g))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "QAT: the graph is already quantization-aware");
    float decay = o && o->ema_decay > 0 ? o->ema_decay : QAT_DECAY;
    if (!(decay < 1)) return deft_set_error(DEFT_ERR_INVALID_ARG, "QAT: range decay %g must be below 1", decay);
    int nv = deft_graph_num_values(g), *uses = NULL, *user = NULL;
    struct rw r = {.g = g, .o = o, .decay = decay};
    r.map = deft_malloc(((size_t)nv + 1) * sizeof *r.map);
    r.act_fq = deft_malloc(((size_t)nv + 1) * sizeof *r.act_fq);
    r.act_q = deft_calloc((size_t)nv + 1, sizeof *r.act_q);
    if (!r.map || !r.act_fq || !r.act_q) s = nomem();
    for (int v = 0; !s && v < nv; v++) r.map[v] = r.act_fq[v] = -1;
    if (!s) s = count_uses(g, &uses, &user);
    if (!s) s = deft_graph_create(&r.ng);
    if (!s) s = insert(&r, uses, user);
    deft_free(uses);
    deft_free(user);
    deft_free(r.map);
    deft_free(r.act_fq);
    deft_free(r.act_q);
    if (s) {
        deft_graph_free(r.ng);
        return deft_wrap_error(s, "inserting fake quantization");
    }
    *out = r.ng;
    return DEFT_OK;
}

bool deft_qat_enabled(const struct deft_graph *g) {
    for (int n = 0; n < deft_graph_num_nodes(g); n++)
        if (deft_graph_node(g, n)->op == DEFT_OP_FAKE_QUANT) return true;
    return false;
}

static bool is_qat_node(const struct deft_node *nd) {
    return nd->op == DEFT_OP_FAKE_QUANT || nd->op == DEFT_OP_OBSERVE;
}

/* Strip: every node but fake-quant/observe copied, their outputs read as
 * their inputs; range states dropped and recorded per float value. */
static enum deft_status strip(struct rw *r, struct deft_qat_range *ranges, int *state_of) {
    const struct deft_graph *g = r->g;
    enum deft_status s = DEFT_OK;
    int nv = deft_graph_num_values(g);
    bool *is_range = deft_calloc((size_t)nv + 1, sizeof *is_range);
    if (!is_range) return nomem();
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (is_qat_node(nd) && nd->n_in > 1 && nd->in[1] >= 0) is_range[nd->in[1]] = true;
    }
    for (int v = 0; v < nv && !s; v++)
        if (deft_graph_value(g, v)->kind != DEFT_VALUE_NODE && !is_range[v]) s = copy_value(r, v);
    deft_free(is_range);
    for (int n = 0; n < deft_graph_num_nodes(g) && !s; n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (is_qat_node(nd)) {
            int x = nd->in[0];
            if (nd->op == DEFT_OP_FAKE_QUANT) r->map[nd->out[0]] = r->map[x];
            if (nd->op == DEFT_OP_FAKE_QUANT && nd->attr.fq.mode == DEFT_FQ_PER_CHANNEL) continue;
            /* a tensor both fake-quantized and observed (not made by insert) keeps the quantized range */
            if (!(nd->op == DEFT_OP_OBSERVE && state_of[x] >= 0)) {
                state_of[x] = nd->in[1];
                if (nd->op == DEFT_OP_FAKE_QUANT) r->act_q[x] = true;
            }
            continue;
        }
        int in[DEFT_MAX_INPUTS];
        for (int i = 0; i < nd->n_in; i++) in[i] = nd->in[i] < 0 ? -1 : r->map[nd->in[i]];
        s = copy_node(r, nd, in);
    }
    if (!s) s = copy_meta(g, r->ng, "qat");
    if (s) return s;
    for (int v = 0; v < deft_graph_num_values(r->ng); v++) ranges[v] = (struct deft_qat_range){-1, false};
    for (int v = 0; v < nv; v++)
        if (state_of[v] >= 0 && r->map[v] >= 0) ranges[r->map[v]] = (struct deft_qat_range){state_of[v], r->act_q[v]};
    return deft_graph_validate(r->ng);
}

enum deft_status deft_qat_strip(const struct deft_graph *g, struct deft_graph **out, struct deft_qat_range **ranges) {
    *out = NULL;
    *ranges = NULL;
    enum deft_status s = model_graph_only(g);
    if (s) return s;
    int nv = deft_graph_num_values(g);
    struct rw r = {.g = g};
    int *state_of = deft_malloc(((size_t)nv + 1) * sizeof *state_of);
    struct deft_qat_range *rg = deft_calloc((size_t)nv + 1, sizeof *rg); /* the float graph is smaller */
    r.map = deft_malloc(((size_t)nv + 1) * sizeof *r.map);
    r.act_q = deft_calloc((size_t)nv + 1, sizeof *r.act_q);
    if (!state_of || !rg || !r.map || !r.act_q) s = nomem();
    for (int v = 0; !s && v < nv; v++) r.map[v] = state_of[v] = -1;
    if (!s) s = deft_graph_create(&r.ng);
    if (!s) s = strip(&r, rg, state_of);
    deft_free(state_of);
    deft_free(r.map);
    deft_free(r.act_q);
    if (s) {
        deft_free(rg);
        deft_graph_free(r.ng);
        return deft_wrap_error(s, "removing fake quantization");
    }
    *out = r.ng;
    *ranges = rg;
    return DEFT_OK;
}

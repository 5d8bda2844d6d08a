/* onnx_tail.c - nodes a task appends after an exported graph (deft/io.h:
 * its decode and NMS as ONNX ops). The tail only records them; onnx_export.c
 * turns them into protobuf. Every allocation goes into one block list freed
 * by deft_onnx_tail_free, so a failed call leaves nothing to undo: it sets
 * the sticky status and later calls return "". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "onnx_tail.h"

size_t deft_onnx_dtype_size(enum deft_onnx_dtype t) {
    switch (t) {
    case DEFT_ONNX_FLOAT: case DEFT_ONNX_INT32: return 4;
    case DEFT_ONNX_INT64: return 8;
    case DEFT_ONNX_INT8: case DEFT_ONNX_BOOL: return 1;
    default: return 0;
    }
}

static void *ta(struct deft_onnx_tail *t, size_t n) {
    if (t->status) return NULL;
    if (t->n_blk == t->cap_blk) {
        int c = t->cap_blk ? 2 * t->cap_blk : 64;
        void **nb = deft_realloc(t->blk, (size_t)c * sizeof *nb);
        if (!nb) {
            t->status = deft_set_error(DEFT_ERR_NOMEM, "ONNX tail: out of memory");
            return NULL;
        }
        t->blk = nb;
        t->cap_blk = c;
    }
    void *p = deft_calloc(1, n ? n : 1);
    if (!p) {
        t->status = deft_set_error(DEFT_ERR_NOMEM, "ONNX tail: out of memory");
        return NULL;
    }
    t->blk[t->n_blk++] = p;
    return p;
}

static char *tstr(struct deft_onnx_tail *t, const char *fmt, ...) DEFT_PRINTF(2, 3);
static char *tstr(struct deft_onnx_tail *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? ta(t, (size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Room for one more element in an array of elem-sized items (kept in the block list). */
static bool grow(struct deft_onnx_tail *t, void **arr, int n, int *cap, size_t elem) {
    if (n < *cap) return true;
    int c = *cap ? 2 * *cap : 16;
    void *na = ta(t, (size_t)c * elem);
    if (!na) return false;
    if (n) memcpy(na, *arr, (size_t)n * elem);
    *arr = na;
    *cap = c;
    return true;
}

struct deft_onnx_tail *deft_onnx_tail_create(const char *prefix) {
    struct deft_onnx_tail *t = deft_calloc(1, sizeof *t);
    if (!t) {
        deft_set_error(DEFT_ERR_NOMEM, "ONNX tail: out of memory");
        return NULL;
    }
    if (!(t->prefix = tstr(t, "%s", prefix ? prefix : ""))) {
        deft_onnx_tail_free(t);
        return NULL;
    }
    return t;
}

void deft_onnx_tail_free(struct deft_onnx_tail *t) {
    if (!t) return;
    for (int i = 0; i < t->n_blk; i++) deft_free(t->blk[i]);
    deft_free(t->blk);
    deft_free(t);
}

enum deft_status deft_onnx_tail_status(const struct deft_onnx_tail *t) {
    return t ? t->status : deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX tail: NULL");
}

const char *deft_onnx_tail_node_n(struct deft_onnx_tail *t, const char *op, const char *name,
                                  const char *const *in, int n_in, const char *const *out, int n_out) {
    if (!t || t->status) return "";
    if (!op || !op[0] || n_in < 0 || n_out < 1 || (n_in && !in)) {
        t->status = deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX tail: node '%s' needs an op and outputs",
                                   name ? name : "?");
        return "";
    }
    if (!grow(t, (void **)&t->node, t->n_node, &t->cap_node, sizeof *t->node)) return "";
    struct tail_node *nd = &t->node[t->n_node];
    memset(nd, 0, sizeof *nd);
    nd->op = tstr(t, "%s", op);
    nd->name = name ? tstr(t, "%s", name) : tstr(t, "%s%s_%d", t->prefix, op, t->counter++);
    nd->in = ta(t, (size_t)(n_in ? n_in : 1) * sizeof *nd->in);
    nd->out = ta(t, (size_t)n_out * sizeof *nd->out);
    if (!nd->op || !nd->name || !nd->in || !nd->out) return "";
    for (int i = 0; i < n_in; i++)
        if (!(nd->in[i] = tstr(t, "%s", in[i] ? in[i] : ""))) return "";
    for (int i = 0; i < n_out; i++) {
        const char *o = out ? out[i] : NULL;
        nd->out[i] = o ? tstr(t, "%s", o) : n_out == 1 ? tstr(t, "%s", nd->name) : tstr(t, "%s_%d", nd->name, i);
        if (!nd->out[i]) return "";
    }
    nd->n_in = n_in;
    nd->n_out = n_out;
    t->n_node++;
    return nd->out[0];
}

const char *deft_onnx_tail_node(struct deft_onnx_tail *t, const char *op, const char *name,
                                const char *const *in, int n_in, const char *out) {
    return deft_onnx_tail_node_n(t, op, name, in, n_in, (const char *const[]){out}, 1);
}

const char *deft_onnx_tail_out(const struct deft_onnx_tail *t, int i) {
    if (!t || t->status || !t->n_node || i < 0 || i >= t->node[t->n_node - 1].n_out) return "";
    return t->node[t->n_node - 1].out[i];
}

int deft_onnx_tail_num_nodes(const struct deft_onnx_tail *t) { return t ? t->n_node : 0; }

const char *deft_onnx_tail_node_name(const struct deft_onnx_tail *t, int i) {
    return t && i >= 0 && i < t->n_node ? t->node[i].name : "";
}

static struct tail_attr *new_attr(struct deft_onnx_tail *t, const char *name, enum tail_attr_type ty) {
    if (!t || t->status) return NULL;
    if (!t->n_node) {
        t->status = deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX tail: attribute '%s' before any node", name);
        return NULL;
    }
    struct tail_node *nd = &t->node[t->n_node - 1];
    if (!grow(t, (void **)&nd->attr, nd->n_attr, &nd->cap_attr, sizeof *nd->attr)) return NULL;
    struct tail_attr *a = &nd->attr[nd->n_attr];
    memset(a, 0, sizeof *a);
    a->type = ty;
    if (!(a->name = tstr(t, "%s", name))) return NULL;
    nd->n_attr++;
    return a;
}

void deft_onnx_tail_attr_i(struct deft_onnx_tail *t, const char *name, int64_t v) {
    struct tail_attr *a = new_attr(t, name, TAIL_ATTR_INT);
    if (a) a->i = v;
}

void deft_onnx_tail_attr_f(struct deft_onnx_tail *t, const char *name, float v) {
    struct tail_attr *a = new_attr(t, name, TAIL_ATTR_FLOAT);
    if (a) a->f = v;
}

void deft_onnx_tail_attr_ints(struct deft_onnx_tail *t, const char *name, int n, const int64_t *v) {
    struct tail_attr *a = new_attr(t, name, TAIL_ATTR_INTS);
    if (!a) return;
    if (!(a->ints = ta(t, (size_t)(n > 0 ? n : 1) * sizeof *a->ints))) return;
    if (n > 0) memcpy(a->ints, v, (size_t)n * sizeof *v);
    a->n_ints = n > 0 ? n : 0;
}

void deft_onnx_tail_attr_floats(struct deft_onnx_tail *t, const char *name, int n, const float *v) {
    struct tail_attr *a = new_attr(t, name, TAIL_ATTR_FLOATS);
    if (!a) return;
    if (!(a->floats = ta(t, (size_t)(n > 0 ? n : 1) * sizeof *a->floats))) return;
    if (n > 0) memcpy(a->floats, v, (size_t)n * sizeof *v);
    a->n_floats = n > 0 ? n : 0;
}

void deft_onnx_tail_attr_s(struct deft_onnx_tail *t, const char *name, const char *v) {
    struct tail_attr *a = new_attr(t, name, TAIL_ATTR_STRING);
    if (a) a->s = tstr(t, "%s", v ? v : "");
}

static bool check_dims(struct deft_onnx_tail *t, const char *what, int ndim, const int64_t *dims) {
    if (ndim < 0 || ndim > DEFT_MAX_DIMS || (ndim && !dims)) {
        t->status = deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX tail: %s has %d dims", what, ndim);
        return false;
    }
    return true;
}

const char *deft_onnx_tail_const(struct deft_onnx_tail *t, const char *name, enum deft_onnx_dtype type,
                                 int ndim, const int64_t *dims, const void *data) {
    if (!t || t->status) return "";
    size_t es = deft_onnx_dtype_size(type), n = 1;
    if (!es) {
        t->status = deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX tail: constant of data type %d", (int)type);
        return "";
    }
    if (!check_dims(t, "a constant", ndim, dims)) return "";
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || (dims[i] && n > ((size_t)1 << 40) / (size_t)dims[i])) {
            t->status = deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX tail: constant dim %lld", (long long)dims[i]);
            return "";
        }
        n *= (size_t)dims[i];
    }
    if (!grow(t, (void **)&t->cst, t->n_cst, &t->cap_cst, sizeof *t->cst)) return "";
    struct tail_const *c = &t->cst[t->n_cst];
    memset(c, 0, sizeof *c);
    c->type = type;
    c->ndim = ndim;
    if (ndim) memcpy(c->dims, dims, (size_t)ndim * sizeof *dims);
    c->nbytes = n * es;
    c->name = name ? tstr(t, "%s", name) : tstr(t, "%sconst_%d", t->prefix, t->counter++);
    c->data = ta(t, c->nbytes);
    if (!c->name || !c->data) return "";
    if (c->nbytes) memcpy(c->data, data, c->nbytes);
    t->n_cst++;
    return c->name;
}

void deft_onnx_tail_output(struct deft_onnx_tail *t, const char *name, enum deft_onnx_dtype type, int ndim,
                           const int64_t *dims) {
    if (!t || t->status) return;
    if (!deft_onnx_dtype_size(type) || !name || !name[0]) {
        t->status = deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX tail: output '%s' of data type %d",
                                   name ? name : "", (int)type);
        return;
    }
    if (!check_dims(t, "an output", ndim, dims)) return;
    if (!grow(t, (void **)&t->out, t->n_out, &t->cap_out, sizeof *t->out)) return;
    struct tail_output *o = &t->out[t->n_out];
    memset(o, 0, sizeof *o);
    o->type = type;
    o->ndim = ndim;
    if (ndim) memcpy(o->dims, dims, (size_t)ndim * sizeof *dims);
    if (!(o->name = tstr(t, "%s", name))) return;
    t->n_out++;
}

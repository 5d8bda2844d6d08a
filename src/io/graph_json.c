/* graph_json.c - io module: a graph as versioned JSON (deft_graph_to_json /
 * deft_graph_from_json, declared in deft/graph.h), stored in model files.
 *
 *   {"format": "deft-graph", "version": 1,
 *    "values": [{"name", "kind", "dtype", "shape", "flags", ["init", "fan_in",
 *                "fan_out"] (params/state), ["grad_of"]}, ...],      index order
 *    "nodes":  [{"op", "name", "inputs": [name|null], "outputs": [name],
 *                ["fwd": node index], "attr": {...}}, ...],          execution order
 *    "meta":   {key: JSON value}}
 *
 * from_json rebuilds through the public builder API (deft_graph_add_value /
 * add_node / add_bwd_node), so shape inference re-checks every node, and it
 * checks each field's type and range first: hostile JSON yields
 * DEFT_ERR_FORMAT with a message, never a crash. The graph's meta map has no
 * public iterator, so this file reads it through graph_impl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "graph/graph_impl.h"
#include "io_impl.h"

#define GRAPH_JSON_VERSION 1
#define ATTR_INT_MAX (1 << 16)          /* kernel, stride, pad: keeps shape arithmetic in int64 */
#define DIM_MAX ((int64_t)1 << 40)      /* as deft_graph_add_value */

static const char *const kind_names[] = {"input", "param", "state", "node"};
static const char *const dtype_names[] = {"f32", "f16", "bf16", "i8", "u8", "i32", "i64", "f64"};
static const char *const init_names[] = {"zeros", "ones", "kaiming_normal_fan_out",
                                         "kaiming_uniform", "uniform_fan_in", "normal_001",
                                         "xavier_uniform", "prior_prob_001"};
static const char *const bn_mode_names[] = {"train", "eval", "frozen"};
static const char *const pool_names[] = {"max", "avg"};
static const char *const upsample_names[] = {"nearest", "bilinear"};
static const char *const fq_mode_names[] = {"per_tensor", "per_channel"};
static const char *const roi_mode_names[] = {"roi_align", "crop_and_resize"};
_Static_assert(sizeof dtype_names / sizeof dtype_names[0] == DEFT_DTYPE_COUNT, "dtype names");
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Which deft_attr union member an op uses (a backward op uses its forward op's). */
enum attr_family { AF_NONE, AF_CONV, AF_BN, AF_ACT, AF_POOL, AF_CONCAT, AF_SLICE, AF_PAD,
                   AF_UPSAMPLE, AF_DROPOUT, AF_SOFTMAX, AF_LOSS, AF_FQ, AF_ROI };

static enum attr_family op_family(enum deft_op op) {
    switch (op) {
    case DEFT_OP_CONV2D: case DEFT_OP_CONV_TRANSPOSE2D: case DEFT_OP_CONV2D_BWD_DATA:
    case DEFT_OP_CONV2D_BWD_WEIGHTS: case DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS: return AF_CONV;
    case DEFT_OP_BATCHNORM: case DEFT_OP_BATCHNORM_BWD: return AF_BN;
    case DEFT_OP_ACT: case DEFT_OP_ACT_BWD: return AF_ACT;
    case DEFT_OP_POOL: case DEFT_OP_POOL_BWD: return AF_POOL;
    case DEFT_OP_CONCAT: return AF_CONCAT;
    case DEFT_OP_SLICE: return AF_SLICE;
    case DEFT_OP_PAD: return AF_PAD;
    case DEFT_OP_UPSAMPLE: case DEFT_OP_UPSAMPLE_BWD: return AF_UPSAMPLE;
    case DEFT_OP_DROPOUT: case DEFT_OP_DROPOUT_BWD: return AF_DROPOUT;
    case DEFT_OP_SOFTMAX: case DEFT_OP_SOFTMAX_BWD: return AF_SOFTMAX;
    case DEFT_OP_LOSS: case DEFT_OP_LOSS_BWD: return AF_LOSS;
    case DEFT_OP_FAKE_QUANT: case DEFT_OP_FAKE_QUANT_BWD: case DEFT_OP_OBSERVE: return AF_FQ;
    case DEFT_OP_ROI_ALIGN: case DEFT_OP_ROI_ALIGN_BWD: return AF_ROI;
    default: return AF_NONE;
    }
}

/* ======================================================================== */
/* to_json                                                                  */
/* ======================================================================== */

/* cJSON signals OOM by returning NULL; one flag keeps the builders short. */
struct jb {
    bool oom;
};

static cJSON *jadd(struct jb *b, cJSON *obj, const char *key, cJSON *item) {
    if (!item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        b->oom = true;
        return NULL;
    }
    return item;
}
static void jnum(struct jb *b, cJSON *o, const char *k, double v) {
    jadd(b, o, k, cJSON_CreateNumber(v));
}
static void jstr(struct jb *b, cJSON *o, const char *k, const char *v) {
    jadd(b, o, k, cJSON_CreateString(v));
}
static void jbool(struct jb *b, cJSON *o, const char *k, bool v) {
    jadd(b, o, k, cJSON_CreateBool(v));
}

static void jints(struct jb *b, cJSON *o, const char *k, const int *v, int n) {
    jadd(b, o, k, cJSON_CreateIntArray(v, n));
}
static void ji64s(struct jb *b, cJSON *o, const char *k, const int64_t *v, int n) {
    cJSON *a = jadd(b, o, k, cJSON_CreateArray());
    for (int i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]))) b->oom = true;
}

static void attr_to_json(struct jb *b, cJSON *a, const struct deft_node *nd) {
    const struct deft_attr *at = &nd->attr;
    char seed[32];
    switch (op_family(nd->op)) {
    case AF_CONV:
        jints(b, a, "stride", at->conv.stride, 2);
        jints(b, a, "pad", at->conv.pad, 4);
        jints(b, a, "dilation", at->conv.dilation, 2);
        jnum(b, a, "groups", at->conv.groups);
        jints(b, a, "output_padding", at->conv.output_padding, 2);
        break;
    case AF_BN:
        jnum(b, a, "eps", at->bn.eps);
        jnum(b, a, "momentum", at->bn.momentum);
        jstr(b, a, "mode", (unsigned)at->bn.mode < 3 ? bn_mode_names[at->bn.mode] : "?");
        break;
    case AF_ACT:
        jstr(b, a, "kind", deft_act_name(at->act.kind));
        jnum(b, a, "alpha", at->act.alpha);
        break;
    case AF_POOL:
        jstr(b, a, "kind", (unsigned)at->pool.kind < 2 ? pool_names[at->pool.kind] : "?");
        jints(b, a, "kernel", at->pool.kernel, 2);
        jints(b, a, "stride", at->pool.stride, 2);
        jints(b, a, "pad", at->pool.pad, 4);
        jbool(b, a, "count_include_pad", at->pool.count_include_pad);
        jbool(b, a, "ceil_mode", at->pool.ceil_mode);
        break;
    case AF_CONCAT: jnum(b, a, "axis", at->concat.axis); break;
    case AF_SLICE:
        ji64s(b, a, "start", at->slice.start, DEFT_MAX_DIMS);
        ji64s(b, a, "end", at->slice.end, DEFT_MAX_DIMS);
        break;
    case AF_PAD:
        ji64s(b, a, "before", at->pad.before, DEFT_MAX_DIMS);
        ji64s(b, a, "after", at->pad.after, DEFT_MAX_DIMS);
        break;
    case AF_UPSAMPLE:
        jstr(b, a, "mode",
             (unsigned)at->upsample.mode < 2 ? upsample_names[at->upsample.mode] : "?");
        jbool(b, a, "align_corners", at->upsample.align_corners);
        break;
    case AF_DROPOUT:
        jnum(b, a, "p", at->dropout.p);
        jbool(b, a, "training", at->dropout.training);
        /* a string: JSON numbers are doubles and would round a 64-bit seed */
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)at->dropout.seed);
        jstr(b, a, "seed", seed);
        break;
    case AF_SOFTMAX: jnum(b, a, "axis", at->softmax.axis); break;
    case AF_LOSS:
        jstr(b, a, "kind", deft_loss_name(at->loss.kind));
        jnum(b, a, "label_smoothing", at->loss.label_smoothing);
        jnum(b, a, "alpha", at->loss.alpha);
        jnum(b, a, "gamma", at->loss.gamma);
        jnum(b, a, "beta", at->loss.beta);
        break;
    case AF_FQ:
        jstr(b, a, "mode", (unsigned)at->fq.mode < 2 ? fq_mode_names[at->fq.mode] : "?");
        jnum(b, a, "axis", at->fq.axis);
        jnum(b, a, "decay", at->fq.decay);
        jbool(b, a, "training", at->fq.training);
        break;
    case AF_ROI:
        jstr(b, a, "mode", (unsigned)at->roi.mode < 2 ? roi_mode_names[at->roi.mode] : "?");
        jints(b, a, "output_size", (int[]){at->roi.out_h, at->roi.out_w}, 2);
        jnum(b, a, "spatial_scale", at->roi.spatial_scale);
        jnum(b, a, "sampling_ratio", at->roi.sampling_ratio);
        jbool(b, a, "aligned", at->roi.aligned);
        jints(b, a, "image_size", (int[]){at->roi.image_h, at->roi.image_w}, 2);
        break;
    case AF_NONE: break;
    }
    if (at->shape.ndim > 0) ji64s(b, a, "shape", at->shape.d, at->shape.ndim);
    if (at->has_bias) jbool(b, a, "has_bias", true);
}

/* The meta map as a cJSON object; each entry's text must be valid JSON. */
static enum deft_status meta_to_cjson(const struct deft_graph *g, cJSON **out) {
    *out = NULL;
    cJSON *m = cJSON_CreateObject();
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory serializing graph metadata");
    for (int i = 0; i < g->n_meta; i++) {
        cJSON *v = cJSON_Parse(g->meta[i].json);
        if (!v) {
            cJSON_Delete(m);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "graph metadata '%s' is not valid JSON",
                                  g->meta[i].key);
        }
        if (!cJSON_AddItemToObject(m, g->meta[i].key, v)) {
            cJSON_Delete(v);
            cJSON_Delete(m);
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory serializing graph metadata");
        }
    }
    *out = m;
    return DEFT_OK;
}

/* cJSON's printed text into deft-allocated memory (callers free with deft_free). */
static enum deft_status print_json(cJSON *root, char **json) {
    char *txt = cJSON_PrintUnformatted(root);
    if (!txt) return deft_set_error(DEFT_ERR_NOMEM, "out of memory printing JSON");
    *json = deft_strdup(txt);
    cJSON_free(txt);
    if (!*json) return deft_set_error(DEFT_ERR_NOMEM, "out of memory printing JSON");
    return DEFT_OK;
}

enum deft_status deft_graph_meta_to_json(const struct deft_graph *g, char **json) {
    *json = NULL;
    cJSON *m;
    enum deft_status s = meta_to_cjson(g, &m);
    if (s) return s;
    s = print_json(m, json);
    cJSON_Delete(m);
    return s;
}

enum deft_status deft_graph_to_json(const struct deft_graph *g, char **json) {
    *json = NULL;
    if (g->status)
        return deft_set_error(g->status, "cannot serialize a graph whose construction failed");
    struct jb b = {0};
    cJSON *root = cJSON_CreateObject(), *meta = NULL;
    if (!root) return deft_set_error(DEFT_ERR_NOMEM, "out of memory serializing a graph");
    jstr(&b, root, "format", "deft-graph");
    jnum(&b, root, "version", GRAPH_JSON_VERSION);
    cJSON *vals = jadd(&b, root, "values", cJSON_CreateArray());
    for (int i = 0; vals && i < g->n_values; i++) {
        const struct deft_value *v = &g->values[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(vals, o)) {
            cJSON_Delete(o);
            b.oom = true;
            break;
        }
        jstr(&b, o, "name", v->name);
        jstr(&b, o, "kind", (unsigned)v->kind < 4 ? kind_names[v->kind] : "?");
        jstr(&b, o, "dtype", deft_dtype_name(v->dtype));
        ji64s(&b, o, "shape", v->shape.d, v->shape.ndim);
        jnum(&b, o, "flags", v->flags);
        if (v->kind == DEFT_VALUE_PARAM || v->kind == DEFT_VALUE_STATE) {
            jstr(&b, o, "init",
                 (unsigned)v->init < (unsigned)NELEM(init_names) ? init_names[v->init] : "?");
            jnum(&b, o, "fan_in", v->fan_in);
            jnum(&b, o, "fan_out", v->fan_out);
        }
        if (v->grad_of >= 0 && v->grad_of < g->n_values)
            jstr(&b, o, "grad_of", g->values[v->grad_of].name);
    }
    cJSON *nodes = jadd(&b, root, "nodes", cJSON_CreateArray());
    for (int i = 0; nodes && i < g->n_nodes; i++) {
        const struct deft_node *nd = &g->nodes[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(nodes, o)) {
            cJSON_Delete(o);
            b.oom = true;
            break;
        }
        jstr(&b, o, "op", deft_op_name(nd->op));
        jstr(&b, o, "name", nd->name);
        cJSON *in = jadd(&b, o, "inputs", cJSON_CreateArray());
        for (int k = 0; in && k < nd->n_in; k++) {
            int v = nd->in[k];
            cJSON *item = v >= 0 && v < g->n_values ? cJSON_CreateString(g->values[v].name)
                                                    : cJSON_CreateNull();
            if (!cJSON_AddItemToArray(in, item)) b.oom = true;
        }
        cJSON *out = jadd(&b, o, "outputs", cJSON_CreateArray());
        for (int k = 0; out && k < nd->n_out; k++) {
            int v = nd->out[k];
            if (v < 0 || v >= g->n_values) continue;
            if (!cJSON_AddItemToArray(out, cJSON_CreateString(g->values[v].name))) b.oom = true;
        }
        if (nd->fwd >= 0) jnum(&b, o, "fwd", nd->fwd);
        cJSON *a = jadd(&b, o, "attr", cJSON_CreateObject());
        if (a) attr_to_json(&b, a, nd);
    }
    enum deft_status s = DEFT_OK;
    if (!b.oom) {
        s = meta_to_cjson(g, &meta);
        if (!s && !jadd(&b, root, "meta", meta)) s = DEFT_ERR_NOMEM;
    }
    if (!s && b.oom) s = DEFT_ERR_NOMEM;
    if (s == DEFT_ERR_NOMEM) deft_set_error(s, "out of memory serializing a graph");
    if (!s) s = print_json(root, json);
    cJSON_Delete(root);
    return s;
}

/* ======================================================================== */
/* from_json                                                                */
/* ======================================================================== */

struct rd {
    struct deft_graph *g;
    int nv;
    const char **names_by_ix;  /* name of value i (inside the cJSON tree) */
    struct name_ix { const char *name; int ix; } *names; /* sorted, for lookups */
};

#define BAD(...) deft_set_error(DEFT_ERR_FORMAT, "graph JSON: " __VA_ARGS__)

static int cmp_name_ix(const void *a, const void *b) {
    return strcmp(((const struct name_ix *)a)->name, ((const struct name_ix *)b)->name);
}

static int lookup(const struct rd *r, const char *name) {
    struct name_ix key = {name, 0};
    const struct name_ix *hit = bsearch(&key, r->names, (size_t)r->nv, sizeof key, cmp_name_ix);
    return hit ? hit->ix : -1;
}

static bool get_int(const cJSON *j, int64_t lo, int64_t hi, int64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d) return false;
    *out = (int64_t)d;
    return true;
}

static int name_index(const char *s, const char *const *tbl, int n) {
    if (!s) return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(s, tbl[i])) return i;
    return -1;
}

/* Every member of obj must be one of the allowed keys (typos in hand-edited
 * files fail loudly), and each at most once. */
static enum deft_status check_keys(const cJSON *obj, const char *const *allowed, int n,
                                   const char *what) {
    const cJSON *c;
    cJSON_ArrayForEach(c, obj) {
        if (name_index(c->string, allowed, n) < 0)
            return BAD("%s: unknown field '%.80s'", what, c->string ? c->string : "");
        for (const cJSON *d = obj->child; d != c; d = d->next)
            if (!strcmp(d->string, c->string))
                return BAD("%s: duplicate field '%.80s'", what, c->string);
    }
    return DEFT_OK;
}

static enum deft_status rd_ints(const cJSON *o, const char *key, int *dst, int n, int64_t lo,
                                int64_t hi, const char *what) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return BAD("%s: '%s' must be an array of %d integers", what, key, n);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        int64_t v;
        if (!get_int(e, lo, hi, &v)) return BAD("%s: '%s' holds an invalid value", what, key);
        dst[i++] = (int)v;
    }
    return DEFT_OK;
}

static enum deft_status rd_i64s(const cJSON *a, int64_t *dst, int max_n, int *n, int64_t lo,
                                int64_t hi, const char *what, const char *key) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > max_n)
        return BAD("%s: '%s' must be an array of at most %d integers", what, key, max_n);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!get_int(e, lo, hi, &dst[i])) return BAD("%s: '%s' holds an invalid value", what, key);
        i++;
    }
    if (n) *n = i;
    return DEFT_OK;
}

static enum deft_status rd_int(const cJSON *o, const char *key, int64_t lo, int64_t hi,
                               int64_t *dst, const char *what) {
    if (!get_int(cJSON_GetObjectItemCaseSensitive(o, key), lo, hi, dst))
        return BAD("%s: '%s' must be an integer in [%lld, %lld]", what, key, (long long)lo,
                   (long long)hi);
    return DEFT_OK;
}

static enum deft_status rd_float(const cJSON *o, const char *key, float *dst, const char *what) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= -3.4e38 && j->valuedouble <= 3.4e38))
        return BAD("%s: '%s' must be a finite number", what, key);
    *dst = (float)j->valuedouble;
    return DEFT_OK;
}

static enum deft_status rd_bool(const cJSON *o, const char *key, bool *dst, const char *what) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(j)) return BAD("%s: '%s' must be true or false", what, key);
    *dst = cJSON_IsTrue(j);
    return DEFT_OK;
}

static enum deft_status rd_enum(const cJSON *o, const char *key, const char *const *tbl, int n,
                                int *dst, const char *what) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    int k = cJSON_IsString(j) ? name_index(j->valuestring, tbl, n) : -1;
    if (k < 0) return BAD("%s: '%s' has an unknown or missing value", what, key);
    *dst = k;
    return DEFT_OK;
}

static enum deft_status attr_from_json(const cJSON *a, enum deft_op op, struct deft_attr *at,
                                       const char *what) {
    /* allowed keys per family; "shape" and "has_bias" are valid for every op */
#define COMMON "shape", "has_bias"
    static const char *const k_conv[] = {"stride", "pad", "dilation", "groups", "output_padding",
                                         COMMON};
    static const char *const k_bn[] = {"eps", "momentum", "mode", COMMON};
    static const char *const k_act[] = {"kind", "alpha", COMMON};
    static const char *const k_pool[] = {"kind", "kernel", "stride", "pad", "count_include_pad",
                                         "ceil_mode", COMMON};
    static const char *const k_concat[] = {"axis", COMMON};
    static const char *const k_slice[] = {"start", "end", COMMON};
    static const char *const k_pad[] = {"before", "after", COMMON};
    static const char *const k_up[] = {"mode", "align_corners", COMMON};
    static const char *const k_drop[] = {"p", "training", "seed", COMMON};
    static const char *const k_soft[] = {"axis", COMMON};
    static const char *const k_loss[] = {"kind", "label_smoothing", "alpha", "gamma", "beta",
                                         COMMON};
    static const char *const k_fq[] = {"mode", "axis", "decay", "training", COMMON};
    static const char *const k_roi[] = {"mode", "output_size", "spatial_scale", "sampling_ratio",
                                        "aligned", "image_size", COMMON};
    static const char *const k_none[] = {COMMON};
#undef COMMON
    /* enum names come from the op table, so a new activation needs no edit here */
    const char *act_tbl[DEFT_ACT_COUNT], *loss_tbl[DEFT_LOSS_COUNT];
    for (int i = 0; i < DEFT_ACT_COUNT; i++) act_tbl[i] = deft_act_name((enum deft_act_kind)i);
    for (int i = 0; i < DEFT_LOSS_COUNT; i++) loss_tbl[i] = deft_loss_name((enum deft_loss_kind)i);
    enum deft_status s;
    int64_t v;
    int k;
    memset(at, 0, sizeof *at);
    if (!cJSON_IsObject(a)) return BAD("%s: 'attr' must be an object", what);
#define KEYS(tbl) if ((s = check_keys(a, tbl, NELEM(tbl), what))) return s
    switch (op_family(op)) {
    case AF_CONV:
        KEYS(k_conv);
        if ((s = rd_ints(a, "stride", at->conv.stride, 2, 0, ATTR_INT_MAX, what)) ||
            (s = rd_ints(a, "pad", at->conv.pad, 4, 0, ATTR_INT_MAX, what)) ||
            (s = rd_ints(a, "dilation", at->conv.dilation, 2, 0, ATTR_INT_MAX, what)) ||
            (s = rd_int(a, "groups", 0, ATTR_INT_MAX, &v, what)) ||
            (s = rd_ints(a, "output_padding", at->conv.output_padding, 2, 0, ATTR_INT_MAX, what)))
            return s;
        at->conv.groups = (int)v;
        break;
    case AF_BN:
        KEYS(k_bn);
        if ((s = rd_float(a, "eps", &at->bn.eps, what)) ||
            (s = rd_float(a, "momentum", &at->bn.momentum, what)) ||
            (s = rd_enum(a, "mode", bn_mode_names, NELEM(bn_mode_names), &k, what)))
            return s;
        at->bn.mode = (enum deft_bn_mode)k;
        break;
    case AF_ACT:
        KEYS(k_act);
        if ((s = rd_enum(a, "kind", act_tbl, NELEM(act_tbl), &k, what)) ||
            (s = rd_float(a, "alpha", &at->act.alpha, what)))
            return s;
        at->act.kind = (enum deft_act_kind)k;
        break;
    case AF_POOL:
        KEYS(k_pool);
        if ((s = rd_enum(a, "kind", pool_names, NELEM(pool_names), &k, what)) ||
            (s = rd_ints(a, "kernel", at->pool.kernel, 2, 0, ATTR_INT_MAX, what)) ||
            (s = rd_ints(a, "stride", at->pool.stride, 2, 0, ATTR_INT_MAX, what)) ||
            (s = rd_ints(a, "pad", at->pool.pad, 4, 0, ATTR_INT_MAX, what)) ||
            (s = rd_bool(a, "count_include_pad", &at->pool.count_include_pad, what)) ||
            (s = rd_bool(a, "ceil_mode", &at->pool.ceil_mode, what)))
            return s;
        at->pool.kind = (enum deft_pool_kind)k;
        break;
    case AF_CONCAT:
        KEYS(k_concat);
        if ((s = rd_int(a, "axis", -DEFT_MAX_DIMS, DEFT_MAX_DIMS, &v, what))) return s;
        at->concat.axis = (int)v;
        break;
    case AF_SLICE: {
        KEYS(k_slice);
        int n1, n2;
        if ((s = rd_i64s(cJSON_GetObjectItemCaseSensitive(a, "start"), at->slice.start,
                         DEFT_MAX_DIMS, &n1, -DIM_MAX, DIM_MAX, what, "start")) ||
            (s = rd_i64s(cJSON_GetObjectItemCaseSensitive(a, "end"), at->slice.end,
                         DEFT_MAX_DIMS, &n2, -DIM_MAX, DIM_MAX, what, "end")))
            return s;
        break;
    }
    case AF_PAD: {
        KEYS(k_pad);
        int n1, n2;
        if ((s = rd_i64s(cJSON_GetObjectItemCaseSensitive(a, "before"), at->pad.before,
                         DEFT_MAX_DIMS, &n1, 0, DIM_MAX, what, "before")) ||
            (s = rd_i64s(cJSON_GetObjectItemCaseSensitive(a, "after"), at->pad.after,
                         DEFT_MAX_DIMS, &n2, 0, DIM_MAX, what, "after")))
            return s;
        break;
    }
    case AF_UPSAMPLE:
        KEYS(k_up);
        if ((s = rd_enum(a, "mode", upsample_names, NELEM(upsample_names), &k, what)) ||
            (s = rd_bool(a, "align_corners", &at->upsample.align_corners, what)))
            return s;
        at->upsample.mode = (enum deft_upsample_mode)k;
        break;
    case AF_DROPOUT: {
        KEYS(k_drop);
        if ((s = rd_float(a, "p", &at->dropout.p, what)) ||
            (s = rd_bool(a, "training", &at->dropout.training, what)))
            return s;
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(a, "seed");
        const char *p = cJSON_IsString(sd) ? sd->valuestring : NULL;
        uint64_t seed = 0;
        if (!p || !*p) return BAD("%s: 'seed' must be a decimal string", what);
        for (; *p; p++) {
            if (*p < '0' || *p > '9' || seed > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                return BAD("%s: 'seed' must be a decimal string below 2^64", what);
            seed = seed * 10 + (uint64_t)(*p - '0');
        }
        at->dropout.seed = seed;
        break;
    }
    case AF_SOFTMAX:
        KEYS(k_soft);
        if ((s = rd_int(a, "axis", -DEFT_MAX_DIMS, DEFT_MAX_DIMS, &v, what))) return s;
        at->softmax.axis = (int)v;
        break;
    case AF_LOSS:
        KEYS(k_loss);
        if ((s = rd_enum(a, "kind", loss_tbl, NELEM(loss_tbl), &k, what)) ||
            (s = rd_float(a, "label_smoothing", &at->loss.label_smoothing, what)) ||
            (s = rd_float(a, "alpha", &at->loss.alpha, what)) ||
            (s = rd_float(a, "gamma", &at->loss.gamma, what)) ||
            (s = rd_float(a, "beta", &at->loss.beta, what)))
            return s;
        at->loss.kind = (enum deft_loss_kind)k;
        break;
    case AF_FQ:
        KEYS(k_fq);
        if ((s = rd_enum(a, "mode", fq_mode_names, NELEM(fq_mode_names), &k, what)) ||
            (s = rd_int(a, "axis", 0, DEFT_MAX_DIMS, &v, what)) ||
            (s = rd_float(a, "decay", &at->fq.decay, what)) ||
            (s = rd_bool(a, "training", &at->fq.training, what)))
            return s;
        at->fq.mode = (enum deft_fq_mode)k;
        at->fq.axis = (int)v;
        break;
    case AF_ROI: {
        KEYS(k_roi);
        int os[2], is[2];
        if ((s = rd_enum(a, "mode", roi_mode_names, NELEM(roi_mode_names), &k, what)) ||
            (s = rd_ints(a, "output_size", os, 2, 0, ATTR_INT_MAX, what)) ||
            (s = rd_float(a, "spatial_scale", &at->roi.spatial_scale, what)) ||
            (s = rd_int(a, "sampling_ratio", -ATTR_INT_MAX, 64, &v, what)) ||
            (s = rd_bool(a, "aligned", &at->roi.aligned, what)) ||
            (s = rd_ints(a, "image_size", is, 2, 0, ATTR_INT_MAX, what)))
            return s;
        at->roi.mode = (enum deft_roi_mode)k;
        at->roi.out_h = os[0], at->roi.out_w = os[1];
        at->roi.sampling_ratio = (int)v;
        at->roi.image_h = is[0], at->roi.image_w = is[1];
        break;
    }
    case AF_NONE:
        KEYS(k_none);
        break;
    }
#undef KEYS
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(a, "shape");
    if (sh && (s = rd_i64s(sh, at->shape.d, DEFT_MAX_DIMS, &at->shape.ndim, -1, DIM_MAX, what,
                           "shape")))
        return s;
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(a, "has_bias");
    if (hb && (s = rd_bool(a, "has_bias", &at->has_bias, what))) return s;
    return DEFT_OK;
}

/* Fields of a value object: checked once up front, applied after building. */
static enum deft_status check_value(const cJSON *o, int i, struct deft_value *v,
                                    const char **grad_of) {
    static const char *const keys[] = {"name", "kind", "dtype", "shape", "flags", "init",
                                       "fan_in", "fan_out", "grad_of"};
    char what[160];
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsObject(o) || !cJSON_IsString(nm) || !nm->valuestring[0])
        return BAD("value %d: not an object with a non-empty 'name'", i);
    snprintf(what, sizeof what, "value '%.100s'", nm->valuestring);
    enum deft_status s;
    int k;
    int64_t x;
    memset(v, 0, sizeof *v);
    if ((s = check_keys(o, keys, NELEM(keys), what))) return s;
    if ((s = rd_enum(o, "kind", kind_names, NELEM(kind_names), &k, what))) return s;
    v->kind = (enum deft_value_kind)k;
    if ((s = rd_enum(o, "dtype", dtype_names, NELEM(dtype_names), &k, what))) return s;
    v->dtype = (enum deft_dtype)k;
    if ((s = rd_i64s(cJSON_GetObjectItemCaseSensitive(o, "shape"), v->shape.d, DEFT_MAX_DIMS,
                     &v->shape.ndim, 0, DIM_MAX, what, "shape")))
        return s;
    if ((s = rd_int(o, "flags", 0, 0xffff, &x, what))) return s;
    v->flags = (unsigned)x;
    bool pinit = v->kind == DEFT_VALUE_PARAM || v->kind == DEFT_VALUE_STATE;
    if (pinit) {
        if ((s = rd_enum(o, "init", init_names, NELEM(init_names), &k, what))) return s;
        v->init = (enum deft_init)k;
        if ((s = rd_int(o, "fan_in", 0, INT32_MAX, &x, what))) return s;
        v->fan_in = (int)x;
        if ((s = rd_int(o, "fan_out", 0, INT32_MAX, &x, what))) return s;
        v->fan_out = (int)x;
    } else if (cJSON_GetObjectItemCaseSensitive(o, "init") ||
               cJSON_GetObjectItemCaseSensitive(o, "fan_in") ||
               cJSON_GetObjectItemCaseSensitive(o, "fan_out")) {
        return BAD("%s: only params and state have 'init', 'fan_in', 'fan_out'", what);
    }
    const cJSON *go = cJSON_GetObjectItemCaseSensitive(o, "grad_of");
    *grad_of = NULL;
    if (go) {
        if (!cJSON_IsString(go)) return BAD("%s: 'grad_of' must be a value name", what);
        *grad_of = go->valuestring;
    }
    /* bytes of the value must fit comfortably in memory arithmetic */
    uint64_t nb;
    if (!deft_io_shape_bytes(&v->shape, 8, &nb)) return BAD("%s: shape is too large", what);
    return DEFT_OK;
}

/* A builder failure (message already set by graph.c) becomes a format error. */
static enum deft_status graph_status_as_format(void) {
    return deft_wrap_error(DEFT_ERR_FORMAT, "graph JSON");
}

/* Copy the JSON-only fields (flags, init, fans, dtype) onto built value i and
 * check an inferred shape against the stored one. */
static enum deft_status apply_value(struct rd *r, int i, const struct deft_value *jv) {
    struct deft_value *v = deft_graph_value_mut(r->g, i);
    if (v->kind == DEFT_VALUE_NODE && !deft_shape_equal(&v->shape, &jv->shape)) {
        char a[96], b[96];
        return BAD("value '%s': stored shape %s but the graph infers %s", v->name,
                   deft_shape_str(&jv->shape, a, sizeof a), deft_shape_str(&v->shape, b, sizeof b));
    }
    v->dtype = jv->dtype;
    v->flags = jv->flags;
    v->init = jv->init;
    v->fan_in = jv->fan_in;
    v->fan_out = jv->fan_out;
    return DEFT_OK;
}

static enum deft_status add_plain_value(struct rd *r, int i, const struct deft_value *jv) {
    const char *name = r->names_by_ix[i];
    if (jv->kind == DEFT_VALUE_NODE)
        return BAD("value '%s' is a node output but no node produces it here", name);
    int ix = deft_graph_add_value(r->g, name, jv->kind, jv->dtype, &jv->shape);
    if (ix < 0) return graph_status_as_format();
    if (ix != i) return BAD("value '%s' lands at index %d instead of %d", name, ix, i);
    return apply_value(r, i, jv);
}

static enum deft_status build(struct rd *r, const cJSON *nodes, struct deft_value *jvals,
                              const char **grad_names) {
    enum deft_status s;
    int vi = 0, ni = 0;
    static const char *const node_keys[] = {"op", "name", "inputs", "outputs", "fwd", "attr"};
    const cJSON *o;
    cJSON_ArrayForEach(o, nodes) {
        char what[160];
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsObject(o) || !cJSON_IsString(nm) || !nm->valuestring[0])
            return BAD("node %d: not an object with a non-empty 'name'", ni);
        snprintf(what, sizeof what, "node '%.100s'", nm->valuestring);
        if ((s = check_keys(o, node_keys, NELEM(node_keys), what))) return s;
        const cJSON *opj = cJSON_GetObjectItemCaseSensitive(o, "op");
        int op = cJSON_IsString(opj) ? deft_op_from_name(opj->valuestring) : -1;
        if (op < 0)
            return BAD("%s: unknown op '%.60s'", what, cJSON_IsString(opj) ? opj->valuestring : "");
        int64_t fwd = -1;
        if (cJSON_GetObjectItemCaseSensitive(o, "fwd") &&
            (s = rd_int(o, "fwd", -1, ni - 1, &fwd, what)))
            return s;
        struct deft_attr at;
        if ((s = attr_from_json(cJSON_GetObjectItemCaseSensitive(o, "attr"), (enum deft_op)op, &at,
                                what)))
            return s;
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(o, "inputs");
        const cJSON *outs = cJSON_GetObjectItemCaseSensitive(o, "outputs");
        if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) > DEFT_MAX_INPUTS)
            return BAD("%s: 'inputs' must be an array of at most %d names", what, DEFT_MAX_INPUTS);
        int n_out = deft_op_num_outputs((enum deft_op)op, &at, cJSON_GetArraySize(ins));
        if (!cJSON_IsArray(outs) || cJSON_GetArraySize(outs) != n_out)
            return BAD("%s: %s produces %d outputs, 'outputs' lists %d", what, deft_op_name(op),
                       n_out, cJSON_IsArray(outs) ? cJSON_GetArraySize(outs) : 0);
        /* the node's outputs are the next node values in index order: first
         * create the plain values that precede them */
        while (vi < r->nv && jvals[vi].kind != DEFT_VALUE_NODE) {
            if ((s = add_plain_value(r, vi, &jvals[vi]))) return s;
            vi++;
        }
        int in[DEFT_MAX_INPUTS], n_in = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ins) {
            if (cJSON_IsNull(e)) {
                in[n_in++] = -1;
                continue;
            }
            int ix = cJSON_IsString(e) ? lookup(r, e->valuestring) : -1;
            if (ix < 0 || ix >= vi)
                return BAD("%s: input %d '%.100s' is not a value defined before the node", what,
                           n_in, cJSON_IsString(e) ? e->valuestring : "?");
            in[n_in++] = ix;
        }
        int k = 0;
        cJSON_ArrayForEach(e, outs) {
            if (!cJSON_IsString(e) || vi + k >= r->nv || jvals[vi + k].kind != DEFT_VALUE_NODE ||
                lookup(r, e->valuestring) != vi + k)
                return BAD("%s: output %d is not the next node value in 'values'", what, k);
            k++;
        }
        /* backward nodes need their forward node for shape inference */
        int n = fwd >= 0 ? deft_graph_add_bwd_node(r->g, (enum deft_op)op, nm->valuestring, in,
                                                   n_in, &at, (int)fwd)
                         : deft_graph_add_node(r->g, (enum deft_op)op, nm->valuestring, in, n_in,
                                               &at);
        if (n < 0) return graph_status_as_format();
        if (n != ni) return BAD("%s lands at index %d instead of %d", what, n, ni);
        const struct deft_node *nd = deft_graph_node(r->g, n);
        for (int i = 0; i < nd->n_out; i++) {
            int ov = nd->out[i];
            if (ov != vi + i) return BAD("%s: output %d lands at index %d", what, i, ov);
            /* a pass may have renamed the output: restore the stored name */
            const char *want = cJSON_GetArrayItem(outs, i)->valuestring;
            struct deft_value *v = deft_graph_value_mut(r->g, ov);
            if (strcmp(v->name, want) != 0) {
                int clash = deft_graph_find_value(r->g, want);
                if (clash >= 0) return BAD("%s: output name '%.100s' is taken", what, want);
                char *nn = deft_strdup(want);
                if (!nn) return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading graph JSON");
                deft_free(v->name);
                v->name = nn;
            }
            if ((s = apply_value(r, ov, &jvals[ov]))) return s;
        }
        vi += nd->n_out;
        ni++;
    }
    for (; vi < r->nv; vi++)
        if ((s = add_plain_value(r, vi, &jvals[vi]))) return s;
    for (int i = 0; i < r->nv; i++) {
        if (!grad_names[i]) continue;
        int gi = lookup(r, grad_names[i]);
        if (gi < 0) return BAD("value %d: 'grad_of' names no value", i);
        deft_graph_value_mut(r->g, i)->grad_of = gi;
    }
    return DEFT_OK;
}

enum deft_status deft_graph_from_json(const char *json, size_t len, struct deft_graph **out) {
    *out = NULL;
    if (!json) return deft_set_error(DEFT_ERR_INVALID_ARG, "graph JSON: NULL text");
    enum deft_status s = DEFT_OK;
    struct rd r = {0};
    struct deft_value *jvals = NULL;
    const char **grad_names = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) return BAD("not valid JSON");
    for (; end && end < json + len && *end; end++)
        if (*end != ' ' && *end != '\n' && *end != '\r' && *end != '\t') {
            cJSON_Delete(root);
            return BAD("not valid JSON (junk after the object)");
        }
    static const char *const top_keys[] = {"format", "version", "values", "nodes", "meta"};
    int64_t ver;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "deft-graph")) {
        s = BAD("not a deft graph (\"format\" is not \"deft-graph\")");
        goto done;
    }
    if ((s = rd_int(root, "version", 0, INT32_MAX, &ver, "top level"))) goto done;
    if (ver != GRAPH_JSON_VERSION) {
        s = BAD("version %lld is not supported (this build reads version %d)", (long long)ver,
                GRAPH_JSON_VERSION);
        goto done;
    }
    if ((s = check_keys(root, top_keys, NELEM(top_keys), "top level"))) goto done;
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(root, "values");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    if (!cJSON_IsArray(vals) || !cJSON_IsArray(nodes) || (meta && !cJSON_IsObject(meta))) {
        s = BAD("'values' and 'nodes' must be arrays and 'meta' an object");
        goto done;
    }
    r.nv = cJSON_GetArraySize(vals);
    r.names_by_ix = deft_calloc((size_t)r.nv + 1, sizeof *r.names_by_ix);
    r.names = deft_calloc((size_t)r.nv + 1, sizeof *r.names);
    jvals = deft_calloc((size_t)r.nv + 1, sizeof *jvals);
    grad_names = deft_calloc((size_t)r.nv + 1, sizeof *grad_names);
    if (!r.names_by_ix || !r.names || !jvals || !grad_names) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading graph JSON");
        goto done;
    }
    int i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, vals) {
        if ((s = check_value(o, i, &jvals[i], &grad_names[i]))) goto done;
        r.names_by_ix[i] = cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring;
        r.names[i].name = r.names_by_ix[i];
        r.names[i].ix = i;
        i++;
    }
    qsort(r.names, (size_t)r.nv, sizeof *r.names, cmp_name_ix);
    for (i = 1; i < r.nv; i++)
        if (!strcmp(r.names[i - 1].name, r.names[i].name)) {
            s = BAD("duplicate value name '%.100s'", r.names[i].name);
            goto done;
        }
    if ((s = deft_graph_create(&r.g))) goto done;
    if ((s = build(&r, nodes, jvals, grad_names))) goto done;
    if (meta) {
        cJSON_ArrayForEach(o, meta) {
            char *txt = cJSON_PrintUnformatted(o);
            if (!txt) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading graph metadata");
                goto done;
            }
            s = deft_graph_set_meta(r.g, o->string, txt);
            cJSON_free(txt);
            if (s) goto done;
        }
    }
    if ((s = deft_graph_validate(r.g))) {
        s = deft_wrap_error(DEFT_ERR_FORMAT, "graph JSON");
        goto done;
    }
    *out = r.g;
    r.g = NULL;
done:
    deft_graph_free(r.g);
    deft_free(r.names_by_ix);
    deft_free(r.names);
    deft_free(jvals);
    deft_free(grad_names);
    cJSON_Delete(root);
    return s;
}

/* onnx_graph.c - the ONNX graph importer's driver: graph inputs, the value
 * table, names, the node loop and graph outputs (ops are in onnx_ops.c).
 *
 * Names: deft keeps the file's tensor names ("features.3.expand1x1.weight").
 * Names the exporter generated ("onnx::Conv_191", after batch-norm folding)
 * are replaced by the module path torch.onnx records in the node name
 * ("/layer1/layer1.0/conv1/Conv" -> "layer1.0.conv1.weight"), so reports and
 * exclusion lists use names the user knows. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "io/io_impl.h"
#include "io/onnx_impl.h"

#define OI_MAX_VALUES 4000000 /* names in one graph: far above any real network */

enum deft_status oi_fail(struct onnx_imp *im, enum deft_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!im->status) im->status = s;
    const Onnx__NodeProto *n = im->node;
    if (n && n->name && *n->name)
        return deft_set_error(s, "%s: %s node '%s': %s", im->file, str_or_empty(n->op_type), n->name, msg);
    if (n) /* unnamed (hand-written graphs): the output names it */
        return deft_set_error(s, "%s: %s node with output '%s': %s", im->file, str_or_empty(n->op_type),
                              n->n_output ? str_or_empty(n->output[0]) : "", msg);
    return deft_set_error(s, "%s: %s", im->file, msg);
}

/* ---- the value table ----------------------------------------------------------- */

static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int ent_find(const struct onnx_imp *im, const char *name) {
    if (!im->hash_cap) return -1;
    for (uint32_t i = hash_str(name) & (uint32_t)(im->hash_cap - 1);; i = (i + 1) & (uint32_t)(im->hash_cap - 1)) {
        int e = im->hash[i];
        if (e < 0) return -1;
        if (!strcmp(im->ents[e].name, name)) return e;
    }
}

static enum deft_status hash_grow(struct onnx_imp *im) {
    int cap = im->hash_cap ? im->hash_cap * 2 : 1024;
    int *h = deft_malloc((size_t)cap * sizeof *h);
    if (!h) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < cap; i++) h[i] = -1;
    for (int e = 0; e < im->n_ents; e++) {
        uint32_t i = hash_str(im->ents[e].name) & (uint32_t)(cap - 1);
        while (h[i] >= 0) i = (i + 1) & (uint32_t)(cap - 1);
        h[i] = e;
    }
    deft_free(im->hash);
    im->hash = h;
    im->hash_cap = cap;
    return DEFT_OK;
}

/* A new entry for `name`; defining a name twice is an error (ONNX is SSA). */
static enum deft_status ent_add(struct onnx_imp *im, const char *name, int value,
                                const Onnx__TensorProto *proto, struct deft_tensor *constant) {
    if (!name || !*name) {
        deft_tensor_free(constant);
        return oi_fail(im, DEFT_ERR_FORMAT, "a value has no name");
    }
    if (ent_find(im, name) >= 0) {
        deft_tensor_free(constant);
        return oi_fail(im, DEFT_ERR_FORMAT, "value '%s' is defined twice", name);
    }
    if (im->n_ents >= OI_MAX_VALUES) {
        deft_tensor_free(constant);
        return oi_fail(im, DEFT_ERR_FORMAT, "more than %d values", OI_MAX_VALUES);
    }
    enum deft_status s;
    if (2 * (im->n_ents + 1) > im->hash_cap && (s = hash_grow(im))) {
        deft_tensor_free(constant);
        return s;
    }
    if (im->n_ents == im->cap_ents) {
        int cap = im->cap_ents ? im->cap_ents * 2 : 256;
        struct oi_ent *e = deft_realloc(im->ents, (size_t)cap * sizeof *e);
        if (!e) {
            deft_tensor_free(constant);
            return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
        }
        im->ents = e;
        im->cap_ents = cap;
    }
    char *nm = deft_strdup(name);
    if (!nm) {
        deft_tensor_free(constant);
        return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
    }
    int e = im->n_ents++;
    im->ents[e] = (struct oi_ent){nm, value, proto, constant};
    uint32_t i = hash_str(name) & (uint32_t)(im->hash_cap - 1);
    while (im->hash[i] >= 0) i = (i + 1) & (uint32_t)(im->hash_cap - 1);
    im->hash[i] = e;
    return DEFT_OK;
}

/* Entry of input i of the current node, decoding a constant on first use. */
static int input_ent(struct onnx_imp *im, int i) {
    const Onnx__NodeProto *n = im->node;
    if (i >= (int)n->n_input || !n->input[i] || !*n->input[i]) {
        oi_fail(im, DEFT_ERR_FORMAT, "input %d is missing", i);
        return -1;
    }
    int e = ent_find(im, n->input[i]);
    if (e < 0) {
        oi_fail(im, DEFT_ERR_FORMAT, "input '%s' is not defined before the node (the graph must "
                "be in topological order)", n->input[i]);
        return -1;
    }
    struct oi_ent *en = &im->ents[e];
    if (en->value < 0 && !en->proto && !en->constant) {
        oi_fail(im, DEFT_ERR_UNSUPPORTED, "input '%s' is a second output of a node; deft computes "
                "only the first output of each op", n->input[i]);
        return -1;
    }
    if (en->proto && !en->constant) {
        enum deft_status s = deft_onnx_tensor(en->proto, im->file, &en->constant);
        if (s) {
            /* keep the status: converters read im->status after a NULL constant */
            if (!im->status) im->status = s;
            return -1;
        }
        en->proto = NULL;
    }
    return e;
}

bool oi_has_input(const struct onnx_imp *im, int i) {
    const Onnx__NodeProto *n = im->node;
    return i < (int)n->n_input && n->input[i] && *n->input[i];
}

bool oi_input_is_const(struct onnx_imp *im, int i) {
    if (!oi_has_input(im, i)) return false;
    int e = ent_find(im, im->node->input[i]);
    return e >= 0 && (im->ents[e].proto || im->ents[e].constant);
}

const struct deft_tensor *oi_const(struct onnx_imp *im, int i) {
    int e = input_ent(im, i);
    if (e < 0) return NULL;
    if (!im->ents[e].constant) {
        oi_fail(im, DEFT_ERR_UNSUPPORTED, "input '%s' must be a constant (an initializer or a "
                "Constant node): deft's shapes and attributes are static", im->node->input[i]);
        return NULL;
    }
    return im->ents[e].constant;
}

/* ---- names ----------------------------------------------------------------------- */

/* torch.onnx scope names: "/layer1/layer1.0/conv1/Conv" -> "layer1.0.conv1"
 * (a segment already qualified by its parent's path replaces it). Writes ""
 * for a top-level node ("/Relu"); false when the name is not of that form.
 * *last points at the last segment ("Conv"). */
static bool module_path(const char *node, char *out, size_t n, const char **last) {
    out[0] = 0;
    if (!node || node[0] != '/') return false;
    const char *p = node + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash) {
            *last = p;
            return *p != 0;
        }
        size_t len = (size_t)(slash - p), cur = strlen(out);
        if (len == 0) return false;
        if (cur && !(len > cur && !strncmp(p, out, cur) && p[cur] == '.')) {
            if (cur + 1 + len + 1 > n) return false;
            out[cur++] = '.';
            memcpy(out + cur, p, len);
            out[cur + len] = 0;
        } else {
            if (len + 1 > n) return false;
            memcpy(out, p, len);
            out[len] = 0;
        }
        p = slash + 1;
    }
}

static bool name_taken(const struct onnx_imp *im, const char *nm) {
    return deft_graph_find_value(im->g, nm) >= 0 || deft_graph_find_node(im->g, nm) >= 0;
}

/* base, or base_2, base_3 ... the first name no value or node has. */
static void unique_name(const struct onnx_imp *im, const char *base, char *out, size_t n) {
    snprintf(out, n, "%s", base);
    for (int k = 2; name_taken(im, out) && k < 1000000; k++) snprintf(out, n, "%s_%d", base, k);
}

static bool generated_name(const char *nm) {
    return !nm || !*nm || strstr(nm, "::") || nm[0] == '/';
}

/* Name of a weight of the current node: the file's, unless generated. */
static void weight_name(const struct onnx_imp *im, const char *file_name, const char *suffix,
                        char *out, size_t n) {
    char mp[400], base[512];
    const char *last;
    if (file_name && !generated_name(file_name))
        snprintf(base, sizeof base, "%s", file_name);
    else if (module_path(im->node->name, mp, sizeof mp, &last))
        snprintf(base, sizeof base, "%s.%s", *mp ? mp : last, suffix);
    else if (im->node->name && *im->node->name)
        snprintf(base, sizeof base, "%s.%s", im->node->name, suffix);
    else
        snprintf(base, sizeof base, "%s.%s",
                 im->node->n_output ? str_or_empty(im->node->output[0]) : "weight", suffix);
    unique_name(im, base, out, n);
}

static bool is_graph_output(const struct onnx_imp *im, const char *nm) {
    for (size_t i = 0; i < im->gp->n_output; i++)
        if (im->gp->output[i]->name && !strcmp(im->gp->output[i]->name, nm)) return true;
    return false;
}

/* Name of the deft node for the current ONNX node: a graph output keeps its
 * name ("logits"); an op with weights is named after its module ("layer1.0.conv1");
 * others after module and op ("layer1.0.Relu_1"). */
static void node_name(const struct onnx_imp *im, bool has_params, char *out, size_t n) {
    const Onnx__NodeProto *nd = im->node;
    const char *o0 = nd->n_output ? str_or_empty(nd->output[0]) : "";
    char mp[400], base[512];
    const char *last;
    if (*o0 && is_graph_output(im, o0))
        snprintf(base, sizeof base, "%s", o0);
    else if (module_path(nd->name, mp, sizeof mp, &last))
        snprintf(base, sizeof base, "%s%s%s", mp, *mp ? "." : "", has_params && *mp ? "" : last);
    else if (nd->name && *nd->name)
        snprintf(base, sizeof base, "%s", nd->name);
    else
        snprintf(base, sizeof base, "%s", *o0 ? o0 : nd->op_type);
    size_t l = strlen(base);
    if (l && base[l - 1] == '.') base[l - 1] = 0;
    unique_name(im, base, out, n);
}

/* ---- values ------------------------------------------------------------------------ */

static enum deft_status store_tensor(struct onnx_imp *im, const char *vname, struct deft_tensor *t) {
    enum deft_status s = deft_io_tensor_list_add(im->w, vname, t);
    return s ? oi_fail(im, s, "out of memory") : DEFT_OK;
}

/* f32 copy of a constant, a 0-d scalar as [1] (deft values have a rank). */
static enum deft_status f32_copy(struct onnx_imp *im, const struct deft_tensor *c,
                                 struct deft_tensor **out) {
    struct deft_shape sh = c->shape;
    if (sh.ndim == 0) sh = (struct deft_shape){.ndim = 1, .d = {1}};
    enum deft_status s = deft_tensor_create(DEFT_F32, &sh, out);
    if (s) return oi_fail(im, s, "out of memory");
    if ((s = deft_tensor_to_f32(c, (*out)->data))) {
        deft_tensor_free(*out);
        *out = NULL;
    }
    return s;
}

/* A PARAM or STATE value named `name` holding t (owned). */
static int add_weight_value(struct onnx_imp *im, const char *name, enum deft_value_kind kind,
                            struct deft_tensor *t) {
    int v = kind == DEFT_VALUE_PARAM
                ? deft_param(im->g, name, t->shape, DEFT_INIT_ZEROS)
                : deft_graph_add_value(im->g, name, DEFT_VALUE_STATE, DEFT_F32, &t->shape);
    if (v < 0) {
        deft_tensor_free(t);
        return -1;
    }
    if (kind == DEFT_VALUE_PARAM && t->shape.ndim == 1)
        deft_graph_value_mut(im->g, v)->flags |= DEFT_VF_NO_DECAY;
    return store_tensor(im, name, t) ? -1 : v;
}

/* A value for constant entry e. Weights (suffix set) get a value per use:
 * exporters share equal constants between layers (all-zero folded biases),
 * which must not tie those layers' parameters when the model is trained. */
static int materialize(struct onnx_imp *im, int e, const char *suffix, enum deft_value_kind kind) {
    struct oi_ent *en = &im->ents[e];
    if (en->value >= 0 && !suffix) return en->value;
    struct deft_tensor *t;
    if (f32_copy(im, en->constant, &t)) return -1;
    char nm[512];
    if (suffix)
        weight_name(im, en->name, suffix, nm, sizeof nm);
    else
        unique_name(im, en->name, nm, sizeof nm);
    int v = add_weight_value(im, nm, kind, t);
    if (v >= 0 && im->ents[e].value < 0) im->ents[e].value = v;
    return v;
}

int oi_act(struct onnx_imp *im, int i) {
    int e = input_ent(im, i);
    if (e < 0) return -1;
    if (im->ents[e].value >= 0) return im->ents[e].value;
    return materialize(im, e, NULL, DEFT_VALUE_STATE);
}

int oi_weight(struct onnx_imp *im, int i, const char *suffix, enum deft_value_kind kind) {
    int e = input_ent(im, i);
    if (e < 0) return -1;
    struct oi_ent *en = &im->ents[e];
    if (!en->constant) {
        oi_fail(im, DEFT_ERR_UNSUPPORTED, "its %s ('%s') is computed in the graph; deft needs it "
                "as an initializer", suffix, en->name);
        return -1;
    }
    return materialize(im, e, suffix, kind);
}

int oi_new_weight(struct onnx_imp *im, const char *suffix, enum deft_value_kind kind,
                  struct deft_tensor *t) {
    char nm[512];
    weight_name(im, NULL, suffix, nm, sizeof nm);
    return add_weight_value(im, nm, kind, t);
}

enum deft_status oi_bind(struct onnx_imp *im, int v) {
    if (v < 0) {
        if (im->status) return im->status;
        enum deft_status gs = deft_graph_status(im->g);
        if (gs) return gs;
        char why[256];
        snprintf(why, sizeof why, "%s", deft_last_error());
        return oi_fail(im, DEFT_ERR_INVALID_ARG, "conversion failed%s%s", *why ? ": " : "", why);
    }
    if (!im->node->n_output) return oi_fail(im, DEFT_ERR_FORMAT, "the node has no output");
    return ent_add(im, im->node->output[0], v, NULL, NULL);
}

enum deft_status oi_bind_output(struct onnx_imp *im, int k, int v) {
    if (k == 0) return oi_bind(im, v);
    if (v < 0) return oi_bind(im, v);
    if (k >= (int)im->node->n_output || !im->node->output[k] || !*im->node->output[k]) return DEFT_OK;
    return ent_add(im, im->node->output[k], v, NULL, NULL);
}

enum deft_status oi_bind_const(struct onnx_imp *im, struct deft_tensor *t) {
    if (!im->node->n_output) {
        deft_tensor_free(t);
        return oi_fail(im, DEFT_ERR_FORMAT, "the node has no output");
    }
    return ent_add(im, im->node->output[0], -1, NULL, t);
}

int oi_add_node(struct onnx_imp *im, enum deft_op op, bool has_params, const int *in, int n_in,
                const struct deft_attr *a) {
    for (int i = 0; i < n_in; i++)
        if (in[i] < 0 && !(i >= 2 && (op == DEFT_OP_CONV2D || op == DEFT_OP_CONV_TRANSPOSE2D ||
                                      op == DEFT_OP_LINEAR)))
            return -1;
    char nm[512];
    node_name(im, has_params, nm, sizeof nm);
    int n = deft_graph_add_node(im->g, op, nm, in, n_in, a);
    if (n < 0) {
        /* shape inference refused the node (or memory ran out): say which
         * ONNX node it was, keeping out-of-memory distinct from a bad shape */
        enum deft_status gs = deft_graph_status(im->g);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", deft_last_error());
        deft_clear_error();
        return oi_fail(im, gs == DEFT_ERR_NOMEM ? DEFT_ERR_NOMEM : DEFT_ERR_SHAPE, "%s", msg), -1;
    }
    return deft_graph_node(im->g, n)->out[0];
}

/* ---- attributes ------------------------------------------------------------------------ */

const Onnx__AttributeProto *oi_attr(const struct onnx_imp *im, const char *name) {
    for (size_t i = 0; i < im->node->n_attribute; i++) {
        const Onnx__AttributeProto *a = im->node->attribute[i];
        if (a->name && !strcmp(a->name, name)) return a;
    }
    return NULL;
}

int64_t oi_attr_i(const struct onnx_imp *im, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = oi_attr(im, name);
    return a && a->has_i ? a->i : def;
}

float oi_attr_f(const struct onnx_imp *im, const char *name, float def) {
    const Onnx__AttributeProto *a = oi_attr(im, name);
    return a && a->has_f ? a->f : def;
}

int oi_attr_ints(struct onnx_imp *im, const char *name, int64_t *out, int max) {
    const Onnx__AttributeProto *a = oi_attr(im, name);
    if (!a) return 0;
    if (a->n_ints > (size_t)max) {
        oi_fail(im, DEFT_ERR_UNSUPPORTED, "attribute %s has %zu values (deft takes at most %d)",
                name, a->n_ints, max);
        return -1;
    }
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    return (int)a->n_ints;
}

const char *oi_attr_s(const struct onnx_imp *im, const char *name, const char *def, char *buf,
                      size_t n) {
    const Onnx__AttributeProto *a = oi_attr(im, name);
    if (!a || !a->has_s) return def;
    size_t l = a->s.len < n - 1 ? a->s.len : n - 1;
    if (l) memcpy(buf, a->s.data, l);
    buf[l] = 0;
    return buf;
}

/* ---- the driver ---------------------------------------------------------------------------- */

static enum deft_status add_graph_input(struct onnx_imp *im, const Onnx__ValueInfoProto *vi) {
    const char *nm = str_or_empty(vi->name);
    if (ent_find(im, nm) >= 0) return DEFT_OK; /* an initializer also listed as input (IR < 4) */
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return oi_fail(im, DEFT_ERR_UNSUPPORTED, "input '%s' is not a tensor", nm);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return oi_fail(im, DEFT_ERR_UNSUPPORTED, "input '%s' is %s; deft takes float inputs", nm,
                       tt->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? "int64" : "not float");
    if (!tt->shape || tt->shape->n_dim == 0 || tt->shape->n_dim > DEFT_MAX_DIMS)
        return oi_fail(im, DEFT_ERR_UNSUPPORTED, "input '%s' has no static shape", nm);
    struct deft_shape sh = {.ndim = (int)tt->shape->n_dim};
    for (int d = 0; d < sh.ndim; d++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
        bool fixed = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                     dm->dim_value > 0;
        if (fixed && dm->dim_value > (1 << 24))
            return oi_fail(im, DEFT_ERR_UNSUPPORTED, "input '%s' dimension %d is %lld", nm, d,
                           (long long)dm->dim_value);
        if (!fixed && d > 0)
            return oi_fail(im, DEFT_ERR_UNSUPPORTED, "input '%s' dimension %d is symbolic ('%s'); "
                           "deft needs a fixed size apart from the batch: re-export with a fixed "
                           "input size", nm, d,
                           dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                               ? str_or_empty(dm->dim_param) : "?");
        sh.d[d] = fixed ? dm->dim_value : 1; /* a symbolic batch: 1, resizable at run time */
    }
    int v = deft_input(im->g, nm, sh);
    if (v < 0) return deft_graph_status(im->g);
    return ent_add(im, nm, v, NULL, NULL);
}

/* A graph output that is a graph input or a constant (Identity, Dropout,
 * a Clip without bounds): a node copying it (a reshape to its own shape, the
 * batch free), since deft's outputs are computed values. */
static int output_copy(struct onnx_imp *im, const char *name, int v) {
    struct deft_attr a = {.shape = deft_graph_value(im->g, v)->shape};
    if (deft_graph_value(im->g, v)->kind == DEFT_VALUE_INPUT) a.shape.d[0] = -1;
    char nm[512];
    unique_name(im, name, nm, sizeof nm);
    int n = deft_graph_add_node(im->g, DEFT_OP_RESHAPE, nm, &v, 1, &a);
    return n < 0 ? -1 : deft_graph_node(im->g, n)->out[0];
}

static int64_t default_opset(const Onnx__ModelProto *m) {
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            return o->version;
    }
    return 13;
}

static enum deft_status import_graph(struct onnx_imp *im, const Onnx__ModelProto *m) {
    const Onnx__GraphProto *gp = m->graph;
    enum deft_status s;
    if (gp->n_sparse_initializer)
        return oi_fail(im, DEFT_ERR_UNSUPPORTED, "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_initializer; i++)
        if ((s = ent_add(im, gp->initializer[i]->name, -1, gp->initializer[i], NULL))) return s;
    for (size_t i = 0; i < gp->n_input; i++)
        if ((s = add_graph_input(im, gp->input[i]))) return s;
    if (deft_graph_num_values(im->g) == 0)
        return oi_fail(im, DEFT_ERR_FORMAT, "the graph has no input");
    for (size_t i = 0; i < gp->n_node; i++) {
        im->node = gp->node[i];
        if (!im->node->op_type) return oi_fail(im, DEFT_ERR_FORMAT, "a node has no op_type");
        if ((s = oi_convert_node(im))) return s;
        /* outputs beyond the first must not be used: deft has no value for them */
        for (size_t o = 1; o < im->node->n_output; o++)
            if (im->node->output[o] && *im->node->output[o] && ent_find(im, im->node->output[o]) < 0 &&
                (s = ent_add(im, im->node->output[o], -2, NULL, NULL)))
                return s;
    }
    im->node = NULL;
    if (gp->n_output == 0) return oi_fail(im, DEFT_ERR_FORMAT, "the graph has no output");
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *nm = str_or_empty(gp->output[i]->name);
        int e = ent_find(im, nm);
        if (e >= 0 && im->ents[e].value < 0 && im->ents[e].constant &&
            materialize(im, e, NULL, DEFT_VALUE_STATE) < 0) /* a folded constant */
            return im->status ? im->status : deft_graph_status(im->g);
        if (e < 0 || im->ents[e].value < 0)
            return oi_fail(im, DEFT_ERR_UNSUPPORTED, "graph output '%s' is %s", nm,
                           e < 0 ? "not produced by any node" : "an output deft does not compute");
        int v = im->ents[e].value;
        if (deft_graph_value(im->g, v)->kind != DEFT_VALUE_NODE && (v = output_copy(im, nm, v)) < 0)
            return deft_graph_status(im->g) ? deft_graph_status(im->g) : DEFT_ERR_SHAPE;
        deft_graph_value_mut(im->g, v)->flags |= DEFT_VF_OUTPUT;
    }
    return deft_graph_validate(im->g);
}

static enum deft_status set_meta(struct onnx_imp *im, const Onnx__ModelProto *m) {
    enum deft_status s;
    char buf[64];
    if ((s = deft_graph_set_meta(im->g, "arch", "\"onnx\"")) ||
        (s = deft_graph_set_meta(im->g, "source_format", "\"onnx\"")))
        return s;
    /* what deft's exporter records (onnx_export.c): class names, preprocessing
     * and the output's kind, so evaluate/inference run an exported file */
    static const char *const keep[] = {"class_names", "preprocess", "output_kind"};
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = m->metadata_props[i];
        for (size_t k = 0; e->key && e->value && k < sizeof keep / sizeof keep[0]; k++)
            if (!strcmp(e->key, keep[k]) && (s = deft_graph_set_meta(im->g, keep[k], e->value)))
                return s;
    }
    /* a single [N, C] output: a classifier with C classes */
    if (m->graph->n_output == 1) {
        int e = ent_find(im, str_or_empty(m->graph->output[0]->name));
        const struct deft_value *v = deft_graph_value(im->g, im->ents[e].value);
        if (v->shape.ndim == 2) {
            snprintf(buf, sizeof buf, "%lld", (long long)v->shape.d[1]);
            if ((s = deft_graph_set_meta(im->g, "num_classes", buf))) return s;
        }
    }
    return DEFT_OK;
}

enum deft_status oi_record_scale(struct onnx_imp *im, int value, float step) {
    for (int i = 0; i < im->n_scales; i++)
        if (im->scales[i].value == value) return DEFT_OK;
    if (im->n_scales == im->cap_scales) {
        int cap = im->cap_scales ? 2 * im->cap_scales : 64;
        struct oi_scale *p = deft_realloc(im->scales, (size_t)cap * sizeof *p);
        if (!p) return oi_fail(im, DEFT_ERR_NOMEM, "out of memory");
        im->scales = p;
        im->cap_scales = cap;
    }
    im->scales[im->n_scales++] = (struct oi_scale){value, step};
    return DEFT_OK;
}

/* {"value name": step, ...} of the QDQ activations, as metadata. */
static enum deft_status set_scales_meta(struct onnx_imp *im) {
    if (!im->n_scales) return DEFT_OK;
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < im->n_scales; i++)
        if (!cJSON_AddNumberToObject(o, deft_graph_value(im->g, im->scales[i].value)->name, im->scales[i].step)) {
            cJSON_Delete(o);
            o = NULL;
        }
    char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    enum deft_status s = txt ? deft_graph_set_meta(im->g, "int8_act_scales", txt) : DEFT_ERR_NOMEM;
    cJSON_free(txt);
    return s ? oi_fail(im, s, "out of memory") : DEFT_OK;
}

static void imp_free(struct onnx_imp *im) {
    deft_free(im->scales);
    for (int e = 0; e < im->n_ents; e++) {
        deft_free(im->ents[e].name);
        deft_tensor_free(im->ents[e].constant);
    }
    deft_free(im->ents);
    deft_free(im->hash);
}

enum deft_status deft_onnx_parse(const void *buf, size_t len, const char *file,
                                 struct deft_graph **graph, struct deft_safetensors **weights) {
    *graph = NULL;
    *weights = NULL;
    void *mv;
    enum deft_status s = deft_onnx_unpack(buf, len, file, &mv);
    if (s) return s;
    const Onnx__ModelProto *m = mv;
    struct onnx_imp im = {.file = file, .opset = default_opset(m), .gp = m->graph};
    if ((s = deft_graph_create(&im.g))) goto done;
    if ((s = deft_io_tensor_list_new("onnx", &im.w))) goto done;
    if ((s = import_graph(&im, m)) || (s = set_meta(&im, m)) || (s = set_scales_meta(&im))) goto done;
done:
    imp_free(&im);
    deft_onnx_free(mv);
    if (s) {
        deft_graph_free(im.g);
        deft_safetensors_free(im.w);
        return s;
    }
    *graph = im.g;
    *weights = im.w;
    return DEFT_OK;
}

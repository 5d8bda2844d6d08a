/* model_file.c - io module: deft model files (design §4).
 *
 * A model is one .safetensors file: every PARAM and STATE value's data as f32
 * under the value's name, optional extra tensors (optimizer state), and
 * `__metadata__` = {"deft_format": "1", "graph": <graph JSON>, "meta": <graph
 * meta object>, caller entries...}. "meta" is applied over the graph's own
 * meta on load, so tools may edit class names without touching the graph.
 * Writes go through deft_safetensors_write, hence are atomic.
 */
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/runtime.h"
#include "io_impl.h"

static bool is_weight(const struct deft_value *v) {
    return v->kind == DEFT_VALUE_PARAM || v->kind == DEFT_VALUE_STATE;
}

static const char *const reserved_keys[] = {"deft_format", "graph", "meta"};

enum deft_status deft_model_save(const char *path, const struct deft_graph *g,
                                 const struct deft_model_save_opts *o) {
    static const struct deft_model_save_opts none = {0};
    if (!o) o = &none;
    if (!g && o->rt) g = deft_runtime_graph(o->rt);
    if (!g || !path) return deft_set_error(DEFT_ERR_INVALID_ARG, "saving a model: no graph or path");
    if (o->n_tensors < 0 || o->n_extra < 0 || o->n_meta < 0 || (o->n_tensors && !o->tensors) ||
        (o->n_extra && !o->extra) || (o->n_meta && !o->meta))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "saving %s: bad tensor or metadata list", path);
    for (int i = 0; i < o->n_meta; i++)
        for (int k = 0; k < 3; k++)
            if (o->meta[i].key && !strcmp(o->meta[i].key, reserved_keys[k]))
                return deft_set_error(DEFT_ERR_INVALID_ARG,
                                      "saving %s: metadata key '%s' is reserved", path,
                                      reserved_keys[k]);
    int nv = deft_graph_num_values(g), n_w = 0;
    for (int v = 0; v < nv; v++) n_w += is_weight(deft_graph_value(g, v));

    enum deft_status s = DEFT_OK;
    char *gjson = NULL, *mjson = NULL;
    size_t n_all = (size_t)n_w + (size_t)o->n_extra;
    struct deft_named_tensor *list = deft_calloc(n_all + 1, sizeof *list);
    struct deft_tensor *views = deft_calloc((size_t)n_w + 1, sizeof *views);
    struct deft_kv *kv = deft_calloc((size_t)o->n_meta + 3, sizeof *kv);
    if (!list || !views || !kv) {
        s = deft_set_error(DEFT_ERR_NOMEM, "saving %s: out of memory", path);
        goto done;
    }
    int k = 0;
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (!is_weight(val)) continue;
        char a[96], b[96];
        if (o->rt) {
            /* by name, so g may be a forward-only clone of the runtime's training graph */
            const struct deft_graph *rg = deft_runtime_graph(o->rt);
            int rv = rg == g ? v : deft_graph_find_value(rg, val->name);
            const struct deft_value *rval = deft_graph_value(rg, rv);
            float *p = rval && deft_shape_equal(&rval->shape, &val->shape)
                           ? deft_runtime_data(o->rt, rv) : NULL;
            if (!p) {
                s = deft_set_error(DEFT_ERR_INVALID_ARG,
                                   "saving %s: the runtime has no data of shape %s for '%s'", path,
                                   deft_shape_str(&val->shape, a, sizeof a), val->name);
                goto done;
            }
            views[k] = deft_tensor_view(DEFT_F32, &val->shape, p);
        } else {
            const struct deft_tensor *t = NULL;
            for (int i = 0; i < o->n_tensors && !t; i++)
                if (o->tensors[i].name && !strcmp(o->tensors[i].name, val->name))
                    t = o->tensors[i].tensor;
            if (!t) {
                s = deft_set_error(DEFT_ERR_NOT_FOUND, "saving %s: no tensor given for %s '%s'",
                                   path, val->kind == DEFT_VALUE_PARAM ? "param" : "state",
                                   val->name);
                goto done;
            }
            if (t->dtype != DEFT_F32 || !deft_shape_equal(&t->shape, &val->shape)) {
                s = deft_set_error(DEFT_ERR_SHAPE, "saving %s: tensor '%s' is %s %s, the graph "
                                   "expects f32 %s", path, val->name, deft_dtype_name(t->dtype),
                                   deft_shape_str(&t->shape, a, sizeof a),
                                   deft_shape_str(&val->shape, b, sizeof b));
                goto done;
            }
            views[k] = *t; /* shallow: the list below only borrows */
            views[k].owns_data = false;
        }
        list[k].name = val->name;
        list[k].tensor = &views[k];
        k++;
    }
    /* an explicit list must not carry strays: extras have their own field */
    for (int i = 0; !o->rt && i < o->n_tensors; i++) {
        int v = o->tensors[i].name ? deft_graph_find_value(g, o->tensors[i].name) : -1;
        if (v < 0 || !is_weight(deft_graph_value(g, v))) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "saving %s: tensor '%s' is no param or state "
                               "of the graph (pass it in .extra)", path,
                               o->tensors[i].name ? o->tensors[i].name : "(null)");
            goto done;
        }
    }
    for (int i = 0; i < o->n_extra; i++) list[k++] = o->extra[i];

    if ((s = deft_graph_to_json(g, &gjson)) || (s = deft_graph_meta_to_json(g, &mjson))) {
        s = deft_wrap_error(s, "saving %s", path);
        goto done;
    }
    kv[0] = (struct deft_kv){"deft_format", DEFT_MODEL_FORMAT_VERSION};
    kv[1] = (struct deft_kv){"graph", gjson};
    kv[2] = (struct deft_kv){"meta", mjson};
    for (int i = 0; i < o->n_meta; i++) kv[3 + i] = o->meta[i];
    s = deft_safetensors_write(path, list, k, kv, o->n_meta + 3);
done:
    deft_free(gjson);
    deft_free(mjson);
    deft_free(list);
    deft_free(views);
    deft_free(kv);
    return s;
}

void deft_model_free(struct deft_model *m) {
    if (!m) return;
    deft_graph_free(m->graph);
    deft_safetensors_free(m->file);
    deft_free(m);
}

/* Apply the "meta" object (key -> any JSON) over the graph's meta map. */
static enum deft_status apply_meta(struct deft_graph *g, const char *text, const char *path) {
    cJSON *root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: __metadata__ \"meta\" is not a JSON object", path);
    }
    enum deft_status s = DEFT_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        char *txt = cJSON_PrintUnformatted(e);
        if (!txt) {
            s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        s = deft_graph_set_meta(g, e->string, txt);
        cJSON_free(txt);
        if (s) break;
    }
    cJSON_Delete(root);
    return s;
}

/* The graph of a parsed model file (m->file) into m->graph, every weight
 * checked against it: shared by the path and the buffer readers. */
static enum deft_status model_check(struct deft_model *m, const char *path) {
    enum deft_status s = DEFT_OK;
    const char *fmt = deft_safetensors_meta(m->file, "deft_format");
    const char *gj = deft_safetensors_meta(m->file, "graph");
    const char *mj = deft_safetensors_meta(m->file, "meta");
    if (!fmt || !gj) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s is not a deft model (no deft_format/graph in its "
                           "__metadata__); import foreign weights with `deft model import`", path);
        return s;
    }
    if (strcmp(fmt, DEFT_MODEL_FORMAT_VERSION) != 0) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: deft model format '%.20s' is not supported "
                           "(this build reads '%s')", path, fmt, DEFT_MODEL_FORMAT_VERSION);
        return s;
    }
    if ((s = deft_graph_from_json(gj, strlen(gj), &m->graph))) {
        s = deft_wrap_error(s, "%s", path);
        return s;
    }
    if (mj && (s = apply_meta(m->graph, mj, path))) return s;
    int nv = deft_graph_num_values(m->graph);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(m->graph, v);
        if (!is_weight(val)) continue;
        const struct deft_tensor *t = deft_safetensors_find(m->file, val->name);
        char a[96], b[96];
        if (!t) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s' of the graph is missing", path,
                               val->name);
            return s;
        }
        if (t->dtype != DEFT_F32 || !deft_shape_equal(&t->shape, &val->shape)) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s' is %s %s, the graph expects f32 %s",
                               path, val->name, deft_dtype_name(t->dtype),
                               deft_shape_str(&t->shape, a, sizeof a),
                               deft_shape_str(&val->shape, b, sizeof b));
            return s;
        }
    }
    return DEFT_OK;
}

enum deft_status deft_model_parse(const void *buf, size_t len, const char *name, struct deft_model **out) {
    *out = NULL;
    struct deft_model *m = deft_calloc(1, sizeof *m);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "loading %s: out of memory", name);
    enum deft_status s = deft_safetensors_parse(buf, len, name, &m->file);
    if (s || (s = model_check(m, name))) {
        deft_model_free(m);
        return s;
    }
    *out = m;
    return DEFT_OK;
}

enum deft_status deft_model_load(const char *path, struct deft_model **out) {
    *out = NULL;
    struct deft_model *m = deft_calloc(1, sizeof *m);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "loading %s: out of memory", path);
    const char *format;
    enum deft_status s = deft_weights_format(path, &format);
    if (s) goto fail;
    if (!strcmp(format, "onnx")) { /* an ONNX graph is a model too (an exported one, say) */
        if ((s = deft_onnx_read(path, &m->graph, &m->file))) goto fail;
        *out = m;
        return DEFT_OK;
    }
    if (strcmp(format, "safetensors")) { /* .pth, .h5, pickle: weights without deft's graph */
        bool known = strcmp(format, "unknown") != 0;
        s = deft_set_error(DEFT_ERR_FORMAT, known ? "%s is %s weights without a graph: import it first, "
                           "`deft model import -i %s -o model.safetensors --arch NAME [--class_names FILE]` "
                           "(evaluate and inference run it directly with --arch NAME)"
                           : "%s is not a model file deft reads (a deft .safetensors model, ONNX; or import "
                           ".pth/.h5 weights with `deft model import`)%.0s%.0s", path,
                           !strncmp(format, "pth", 3) || !strcmp(format, "pickle") ? "PyTorch" : "Keras HDF5", path);
        goto fail;
    }
    if ((s = deft_safetensors_read(path, &m->file)) || (s = model_check(m, path))) goto fail;
    *out = m;
    return DEFT_OK;
fail:
    deft_model_free(m);
    return s;
}

enum deft_status deft_model_copy_to_runtime(const struct deft_safetensors *st,
                                            struct deft_runtime *rt, unsigned flags,
                                            int *n_copied) {
    if (n_copied) *n_copied = 0;
    if (!st || !rt) return deft_set_error(DEFT_ERR_INVALID_ARG, "copying weights: NULL argument");
    const struct deft_graph *g = deft_runtime_graph(rt);
    int nv = deft_graph_num_values(g), copied = 0;
    /* two passes: check everything, then copy, so a failure changes nothing */
    for (int pass = 0; pass < 2; pass++) {
        for (int v = 0; v < nv; v++) {
            const struct deft_value *val = deft_graph_value(g, v);
            if (!is_weight(val)) continue;
            const struct deft_tensor *t = deft_safetensors_find(st, val->name);
            char a[96], b[96];
            if (!t) {
                if (flags & DEFT_LOAD_ALLOW_MISSING) continue;
                return deft_set_error(DEFT_ERR_NOT_FOUND, "no tensor named '%s' in the weights",
                                      val->name);
            }
            if (!deft_shape_equal(&t->shape, &val->shape)) {
                if (flags & DEFT_LOAD_SKIP_MISMATCH) {
                    if (pass == 1)
                        deft_log(DEFT_LOG_WARN, "skipping tensor '%s': weights have %s, the model "
                                 "has %s", val->name, deft_shape_str(&t->shape, a, sizeof a),
                                 deft_shape_str(&val->shape, b, sizeof b));
                    continue;
                }
                return deft_set_error(DEFT_ERR_SHAPE, "tensor '%s': weights have shape %s, the "
                                      "model expects %s", val->name,
                                      deft_shape_str(&t->shape, a, sizeof a),
                                      deft_shape_str(&val->shape, b, sizeof b));
            }
            if (t->dtype != DEFT_F32 && t->dtype != DEFT_F64 && t->dtype != DEFT_F16 &&
                t->dtype != DEFT_BF16)
                return deft_set_error(DEFT_ERR_INVALID_ARG, "tensor '%s' has dtype %s, expected "
                                      "a floating-point type", val->name,
                                      deft_dtype_name(t->dtype));
            float *dst = deft_runtime_data(rt, v);
            if (!dst)
                return deft_set_error(DEFT_ERR_INVALID_ARG, "the runtime holds no data for '%s'",
                                      val->name);
            if (pass == 0) continue;
            enum deft_status s = deft_tensor_to_f32(t, dst);
            if (s) return deft_wrap_error(s, "tensor '%s'", val->name);
            copied++;
        }
    }
    if (n_copied) *n_copied = copied;
    return DEFT_OK;
}

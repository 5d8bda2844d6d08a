/* engine.c - engine files read and checked, contexts, runs (deft/engine.h).
 *
 * The engine is a deft model file plus its "engine" metadata entry; reading
 * it is deft_model_parse/load (the safetensors and graph checks) followed by
 * the entry's checks here, so every size the entry declares is compared
 * with the graph before anything is allocated from it. */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/engine.h"
#include "deft/io.h"
#include "deft/data.h"
#include "deft/runtime.h"
#include "tasks/classification/cls_common.h"
#include "engine_impl.h"

struct deft_engine {
    struct deft_model *model;
    struct deft_engine_info info;
    char *precision, *cpu, *path;
    char **names; /* class names, when the model records them */
    int n_names;
    float *scales; /* int8: per value (engine_int8.c), else NULL */
};

struct deft_engine_context {
    const struct deft_engine *e;
    struct deft_runtime *rt;
    int in, out[DEFT_ENGINE_MAX_OUTPUTS];
};

void deft_engine_free(struct deft_engine *e) {
    if (!e) return;
    deft_model_free(e->model);
    deft_free(e->precision);
    deft_free(e->cpu);
    deft_free(e->path);
    deft_free(e->scales);
    deft_string_list_free(e->names, e->n_names);
    deft_free(e);
}

/* A JSON array of up to DEFT_MAX_DIMS positive ints into s. */
static bool read_shape(const cJSON *a, struct deft_shape *s) {
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n < 1 || n > DEFT_MAX_DIMS) return false;
    s->ndim = n;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > (double)(1 << 30) ||
            v->valuedouble != (double)(int64_t)v->valuedouble)
            return false;
        s->d[i] = (int64_t)v->valuedouble;
    }
    return true;
}

/* The entry's named value must exist with exactly the recorded shape. */
static enum deft_status check_value(const struct deft_graph *g, const char *name, const struct deft_shape *want,
                                    bool input, const char *path, int *index) {
    int v = deft_graph_find_value(g, name);
    const struct deft_value *val = v >= 0 ? deft_graph_value(g, v) : NULL;
    char a[96], b[96];
    if (!val || (input && val->kind != DEFT_VALUE_INPUT) || (!input && val->kind != DEFT_VALUE_NODE))
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the engine's %s '%.64s' is not an %s of its graph", path,
                              input ? "input" : "output", name, input ? "input" : "output");
    if (!deft_shape_equal(&val->shape, want))
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the engine records %s '%.64s' as %s, its graph has %s", path,
                              input ? "input" : "output", name, deft_shape_str(want, a, sizeof a),
                              deft_shape_str(&val->shape, b, sizeof b));
    *index = v;
    return DEFT_OK;
}

/* The outputs after the first ("more_outputs": [{"name", "shape"}...]) into
 * info's arrays from index 1; each a distinct output of the graph. */
static enum deft_status read_more_outputs(struct deft_engine *e, const cJSON *more, const char *path) {
    struct deft_engine_info *in = &e->info;
    in->num_outputs = 1;
    if (!more) return DEFT_OK;
    int n = cJSON_IsArray(more) ? cJSON_GetArraySize(more) : -1;
    if (n < 1 || n >= DEFT_ENGINE_MAX_OUTPUTS)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: malformed \"engine\" metadata (more_outputs: not an array of 1 "
                              "to %d outputs)", path, DEFT_ENGINE_MAX_OUTPUTS - 1);
    for (int k = 1; k <= n; k++) {
        const cJSON *x = cJSON_GetArrayItem(more, k - 1), *name = cJSON_GetObjectItem(x, "name");
        int v;
        if (!cJSON_IsString(name) || !read_shape(cJSON_GetObjectItem(x, "shape"), &in->output_shapes[k]))
            return deft_set_error(DEFT_ERR_FORMAT, "%s: malformed \"engine\" metadata (more_outputs[%d]: no name "
                                  "or shape)", path, k - 1);
        enum deft_status s = check_value(e->model->graph, name->valuestring, &in->output_shapes[k], false, path, &v);
        if (s) return s;
        for (int j = 0; j < k; j++)
            if (!strcmp(in->output_names[j], deft_graph_value(e->model->graph, v)->name))
                return deft_set_error(DEFT_ERR_FORMAT, "%s: the engine names output '%.64s' twice", path,
                                      name->valuestring);
        in->output_names[k] = deft_graph_value(e->model->graph, v)->name;
        in->output_numels[k] = (size_t)deft_shape_numel(&in->output_shapes[k]);
        in->num_outputs = k + 1;
    }
    return DEFT_OK;
}

static enum deft_status read_entry(struct deft_engine *e, const char *text, const char *path) {
    struct deft_engine_info *in = &e->info;
    cJSON *o = cJSON_Parse(text);
    const cJSON *fv = cJSON_GetObjectItem(o, "engine_format"), *pr = cJSON_GetObjectItem(o, "precision"),
                *b = cJSON_GetObjectItem(o, "batch"), *iname = cJSON_GetObjectItem(o, "input"),
                *oname = cJSON_GetObjectItem(o, "output"), *cpu = cJSON_GetObjectItem(o, "cpu");
    enum deft_status s = DEFT_OK;
    int iv = -1, ov = -1;
    bool nhwc = false; /* fp32: chains in nhwc ("layout", chosen at convert) */
    if (!cJSON_IsObject(o) || !cJSON_IsNumber(fv) || fv->valuedouble < 1 || fv->valuedouble != (int)fv->valuedouble) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: malformed \"engine\" metadata (no engine_format)", path);
    } else if (fv->valuedouble > DEFT_ENGINE_FORMAT_VERSION) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: engine format %d is newer than this deft reads (%d): "
                           "convert the model again with this deft (`deft model convert`)", path,
                           (int)fv->valuedouble, DEFT_ENGINE_FORMAT_VERSION);
    } else if (!cJSON_IsString(pr) ||
               (strcmp(pr->valuestring, "fp32") && strcmp(pr->valuestring, "int8") && strcmp(pr->valuestring, "bf16"))) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: engine precision '%.32s' is not one this deft runs (fp32, int8, bf16)",
                           path, cJSON_IsString(pr) ? pr->valuestring : "?");
    } else if (!cJSON_IsNumber(b) || b->valuedouble < 1 || b->valuedouble > DEFT_ENGINE_MAX_BATCH ||
               !cJSON_IsString(iname) || !cJSON_IsString(oname) ||
               !read_shape(cJSON_GetObjectItem(o, "input_shape"), &in->input_shape) ||
               !read_shape(cJSON_GetObjectItem(o, "output_shape"), &in->output_shape) ||
               in->input_shape.d[0] != (int64_t)b->valuedouble) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: malformed \"engine\" metadata (batch, input, output or their "
                           "shapes missing, out of range or disagreeing)", path);
    } else if (!(s = check_value(e->model->graph, iname->valuestring, &in->input_shape, true, path, &iv)) &&
               !(s = check_value(e->model->graph, oname->valuestring, &in->output_shape, false, path, &ov))) {
        e->precision = deft_strdup(pr->valuestring);
        e->cpu = deft_strdup(cJSON_IsString(cpu) ? cpu->valuestring : "unknown");
        if (!e->precision || !e->cpu) s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
        in->format_version = (int)fv->valuedouble;
        in->batch = (int)b->valuedouble;
        in->output_names[0] = deft_graph_value(e->model->graph, ov)->name;
        const cJSON *lay = cJSON_GetObjectItem(o, "layout");
        nhwc = cJSON_IsString(lay) && !strcmp(lay->valuestring, "nhwc");
        if (!s) s = read_more_outputs(e, cJSON_GetObjectItem(o, "more_outputs"), path);
        if (!s && !strcmp(e->precision, "int8"))
            s = engine_scales_read(e->model->graph, cJSON_GetObjectItem(o, "act_scales"), path, &e->scales);
    }
    cJSON_Delete(o);
    if (s) return s;
    const struct deft_graph *g = e->model->graph;
    in->precision = e->precision;
    in->cpu = e->cpu;
    in->cpu_differs = strcmp(e->cpu, deft_engine_cpu_features()) != 0;
    in->input_name = deft_graph_value(g, iv)->name;
    in->output_name = deft_graph_value(g, ov)->name;
    in->input_numel = (size_t)deft_shape_numel(&in->input_shape);
    in->output_numel = (size_t)deft_shape_numel(&in->output_shape);
    in->graph = g;
    in->output_shapes[0] = in->output_shape;
    const char *lay = getenv("DEFT_ENGINE_LAYOUT"); /* overrides the entry's (comparisons) */
    if (!strcmp(e->precision, "fp32")) in->layout = (lay ? !strcmp(lay, "nhwc") : nhwc) ? "nhwc" : "blocked";
    in->output_numels[0] = in->output_numel;
    return DEFT_OK;
}

static enum deft_status finish(struct deft_model *m, const char *name, struct deft_engine **out) {
    *out = NULL;
    const char *entry = deft_safetensors_meta(m->file, "engine");
    if (!entry) {
        deft_model_free(m);
        return deft_set_error(DEFT_ERR_FORMAT, "%s is a deft model, not an engine: convert it with "
                              "`deft model convert -m %s -o OUT.engine`", name, name);
    }
    struct deft_engine *e = deft_calloc(1, sizeof *e);
    if (!e) {
        deft_model_free(m);
        return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
    }
    e->model = m;
    enum deft_status s = read_entry(e, entry, name);
    if (!s && !(e->path = deft_strdup(name))) s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
    /* optional: an engine without class names still runs */
    if (!s && deft_graph_get_meta(e->model->graph, "class_names") &&
        cls_class_names_from_meta(e->model->graph, name, &e->names, &e->n_names)) {
        s = DEFT_OK;
        deft_clear_error();
    }
    if (s) {
        deft_engine_free(e);
        return s;
    }
    *out = e;
    return DEFT_OK;
}

enum deft_status deft_engine_parse(const void *buf, size_t len, const char *name, struct deft_engine **out) {
    struct deft_model *m = NULL;
    *out = NULL;
    enum deft_status s = deft_model_parse(buf, len, name, &m);
    return s ? s : finish(m, name, out);
}

enum deft_status deft_engine_load(const char *path, struct deft_engine **out) {
    struct deft_model *m = NULL;
    *out = NULL;
    if (!path) return deft_set_error(DEFT_ERR_INVALID_ARG, "loading an engine: no path");
    const char *fmt;
    enum deft_status s = deft_weights_format(path, &fmt);
    if (s) return s;
    if (strcmp(fmt, "safetensors"))
        return deft_set_error(DEFT_ERR_FORMAT, "%s is not a deft engine (a %s file): convert it with "
                              "`deft model convert -m %s -o OUT.engine`", path, fmt, path);
    if ((s = deft_model_load(path, &m))) return s;
    return finish(m, path, out);
}

bool deft_engine_is_engine_file(const char *path) {
    const char *fmt;
    if (deft_weights_format(path, &fmt) || strcmp(fmt, "safetensors")) {
        deft_clear_error();
        return false;
    }
    struct deft_safetensors *st = NULL;
    if (deft_safetensors_read(path, &st)) {
        deft_clear_error();
        return false;
    }
    bool yes = deft_safetensors_meta(st, "engine") != NULL;
    deft_safetensors_free(st);
    return yes;
}

void deft_engine_get_info(const struct deft_engine *e, struct deft_engine_info *out) {
    *out = e->info;
}

enum deft_status deft_engine_context_create_on(const struct deft_engine *e, const char *backend,
                                               struct deft_engine_context **out) {
    *out = NULL;
    if (!e) return deft_set_error(DEFT_ERR_INVALID_ARG, "engine context: no engine");
    struct deft_engine_context *c = deft_calloc(1, sizeof *c);
    if (!c) return deft_set_error(DEFT_ERR_NOMEM, "engine context: out of memory");
    c->e = e;
    const struct deft_graph *g = e->model->graph;
    c->in = deft_graph_find_value(g, e->info.input_name);
    for (int k = 0; k < e->info.num_outputs; k++) c->out[k] = deft_graph_find_value(g, e->info.output_names[k]);
    bool bf16 = !strcmp(e->precision, "bf16") && deft_engine_bf16_native();
    bool nhwc = e->info.layout && !strcmp(e->info.layout, "nhwc");
    enum deft_status s = deft_runtime_create(
        g, &(struct deft_runtime_opts){.backend = backend ? backend : "cpu", .int8_scales = e->scales, .bf16 = bf16,
                                       .f32_nhwc = nhwc},
        &c->rt);
    if (!s) s = deft_model_copy_to_runtime(e->model->file, c->rt, 0, NULL);
    if (s) {
        deft_engine_context_free(c);
        return s;
    }
    *out = c;
    return DEFT_OK;
}

enum deft_status deft_engine_context_create(const struct deft_engine *e, struct deft_engine_context **out) {
    return deft_engine_context_create_on(e, "cpu", out);
}

void deft_engine_context_free(struct deft_engine_context *c) {
    if (!c) return;
    deft_runtime_free(c->rt);
    deft_free(c);
}

enum deft_status deft_engine_run_outputs(struct deft_engine_context *c, const float *input, size_t n_in,
                                         float *const *outputs, const size_t *n_out, int n_outputs) {
    if (!c || !input || !outputs || !n_out)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "engine run: NULL context, input or output");
    const struct deft_engine_info *in = &c->e->info;
    if (n_outputs != in->num_outputs)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "engine run: %d output buffers given, the engine has %d "
                              "outputs%s", n_outputs, in->num_outputs,
                              n_outputs == 1 ? " (deft_engine_run_outputs takes them all)" : "");
    for (int k = 0; k < n_outputs; k++) {
        if (!outputs[k]) return deft_set_error(DEFT_ERR_INVALID_ARG, "engine run: output %d is NULL", k);
        if (n_in != in->input_numel || n_out[k] != in->output_numels[k])
            return deft_set_error(DEFT_ERR_SHAPE, "engine run: %zu input and %zu output floats given (output "
                                  "'%s'), the engine takes %zu and gives %zu (batch %d)", n_in, n_out[k],
                                  in->output_names[k], in->input_numel, in->output_numels[k], in->batch);
    }
    enum deft_status s;
    if ((s = deft_runtime_set_input(c->rt, c->in, input, n_in)) || (s = deft_runtime_run(c->rt))) return s;
    for (int k = 0; k < n_outputs; k++)
        if ((s = deft_runtime_read(c->rt, c->out[k], outputs[k], n_out[k]))) return s;
    return DEFT_OK;
}

enum deft_status deft_engine_run(struct deft_engine_context *c, const float *input, size_t n_in, float *output,
                                 size_t n_out) {
    return deft_engine_run_outputs(c, input, n_in, &output, &n_out, 1);
}

struct deft_runtime *deft_engine_context_runtime(struct deft_engine_context *c) {
    return c ? c->rt : NULL;
}

int deft_engine_num_classes(const struct deft_engine *e) {
    return e ? e->n_names : 0;
}

const char *deft_engine_class_name(const struct deft_engine *e, int i) {
    return e && i >= 0 && i < e->n_names ? e->names[i] : NULL;
}

const char *deft_engine_path(const struct deft_engine *e) {
    return e->path;
}

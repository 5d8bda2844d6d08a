/* engine_convert.c - a model into an engine file (deft/engine.h): the graph
 * in eval mode with its batch and input size fixed, its weights, and the
 * "engine" entry; plus the CPU features the entry records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/engine.h"
#include "deft/io.h"
#include "deft/runtime.h"
#include "backend/cpu/dnnl_util.h"
#include "deft/quant.h"
#include "tasks/common/qat_export.h"
#include "engine_impl.h"

const char *deft_engine_cpu_features(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    static char buf[160];
    if (buf[0]) return buf;
    /* the features that change which oneDNN kernels run */
    static const char *const name[] = {"avx2", "fma", "avx512f", "avx512vnni", "avx512bf16"};
    char tmp[160] = "x86_64";
    size_t n = strlen(tmp);
    __builtin_cpu_init();
    int on[5] = {__builtin_cpu_supports("avx2"), __builtin_cpu_supports("fma"),
                 __builtin_cpu_supports("avx512f"), __builtin_cpu_supports("avx512vnni"),
                 __builtin_cpu_supports("avx512bf16")};
    for (int i = 0; i < 5; i++)
        if (on[i]) n += (size_t)snprintf(tmp + n, sizeof tmp - n, " %s", name[i]);
    /* AMX (int8/bf16 tiles): gcc 12 cannot test for it; oneDNN's ISA names it */
    if (strstr(deft_engine_cpu_isa(), "amx")) snprintf(tmp + n, sizeof tmp - n, " amx");
    memcpy(buf, tmp, sizeof buf);
    return buf;
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "unknown";
#endif
}

const char *deft_engine_cpu_isa(void) {
    return deft_dnnl_isa_name();
}

bool deft_engine_bf16_native(void) {
    const char *isa = deft_dnnl_isa_name();
    return strstr(isa, "bf16") || strstr(isa, "amx");
}

bool deft_engine_int8_native(void) {
    const char *isa = deft_dnnl_isa_name();
    return strstr(isa, "vnni") || strstr(isa, "amx") || strstr(isa, "bf16"); /* avx512_core_bf16 implies VNNI */
}

int deft_engine_pick_outputs(const struct deft_graph *g, int *out, int max) {
    int v = deft_graph_declared_role(g, DEFT_ROLE_LOGITS), n;
    if (v < 0 && (n = deft_graph_outputs(g, out, max)) >= 1) return n;
    int nn = deft_graph_num_nodes(g);
    if (v < 0) v = deft_graph_find_role(g, DEFT_ROLE_LOGITS);
    if (v < 0 && nn) v = deft_graph_node(g, nn - 1)->out[0];
    if (v < 0 || max < 1) return 0;
    out[0] = v;
    return 1;
}

int deft_engine_pick_input(const struct deft_graph *g) {
    int v = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    if (v >= 0) return v;
    for (v = 0; v < deft_graph_num_values(g); v++)
        if (deft_graph_value(g, v)->kind == DEFT_VALUE_INPUT) return v;
    return -1;
}

static cJSON *shape_json(const struct deft_shape *s) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < s->ndim; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)s->d[i]));
    return a;
}

/* The "engine" entry as JSON text (deft_free it via cJSON_free). */
static char *entry_json(const struct deft_graph *g, int iv, const int *ov, int n_out, const char *precision,
                        const char *layout, const float *scales) {
    const struct deft_value *i = deft_graph_value(g, iv), *o = deft_graph_value(g, ov[0]);
    cJSON *e = cJSON_CreateObject();
    if (!e) return NULL;
    cJSON_AddNumberToObject(e, "engine_format", n_out > 1 ? DEFT_ENGINE_FORMAT_VERSION : 1);
    cJSON_AddStringToObject(e, "precision", precision);
    cJSON_AddNumberToObject(e, "batch", (double)i->shape.d[0]);
    cJSON_AddStringToObject(e, "input", i->name);
    cJSON_AddItemToObject(e, "input_shape", shape_json(&i->shape));
    cJSON_AddStringToObject(e, "output", o->name);
    cJSON_AddItemToObject(e, "output_shape", shape_json(&o->shape));
    cJSON *more = n_out > 1 ? cJSON_AddArrayToObject(e, "more_outputs") : NULL;
    for (int k = 1; more && k < n_out; k++) {
        const struct deft_value *ok = deft_graph_value(g, ov[k]);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", ok->name);
        cJSON_AddItemToObject(x, "shape", shape_json(&ok->shape));
        cJSON_AddItemToArray(more, x);
    }
    if (layout) cJSON_AddStringToObject(e, "layout", layout);
    cJSON_AddStringToObject(e, "cpu", deft_engine_cpu_features());
    cJSON_AddStringToObject(e, "deft_version", DEFT_VERSION_STRING);
    if (scales) cJSON_AddItemToObject(e, "act_scales", engine_scales_json(g, scales));
    char *txt = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    return txt;
}

/* Fix the batch and input size of m's graph for inference. */
static enum deft_status fix_input(struct deft_graph *g, int iv, const struct deft_engine_convert_opts *o,
                                  const char *path) {
    struct deft_shape s = deft_graph_value(g, iv)->shape;
    if (s.ndim != 4)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: input '%s' has %d dimensions; engines take NCHW images",
                              path, deft_graph_value(g, iv)->name, s.ndim);
    if (o->channels && o->channels != s.d[1])
        return deft_set_error(DEFT_ERR_SHAPE, "%s: the model takes %lld channels, not %d", path,
                              (long long)s.d[1], o->channels);
    if (o->batch) s.d[0] = o->batch;
    if (o->height) s.d[2] = o->height;
    if (o->width) s.d[3] = o->width;
    if (s.d[0] < 1 || s.d[0] > DEFT_ENGINE_MAX_BATCH)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: batch %lld is out of range (1..%d)", path,
                              (long long)s.d[0], DEFT_ENGINE_MAX_BATCH);
    deft_graph_set_training(g, false);
    enum deft_status st = deft_graph_reshape_input(g, iv, &s);
    return st ? deft_wrap_error(st, "%s", path) : DEFT_OK;
}

/* A cpu runtime of g with file's weights, fp32 chains in nhwc or blocked,
 * run once (the first run prepares the weights); NULL when that layout does
 * not compile or run here. */
static struct deft_runtime *layout_runtime(const struct deft_graph *g, const struct deft_safetensors *file, int iv,
                                           bool nhwc, const float *x, size_t n) {
    struct deft_runtime *rt = NULL;
    if (deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "cpu", .f32_nhwc = nhwc}, &rt) ||
        deft_model_copy_to_runtime(file, rt, 0, NULL) || deft_runtime_set_input(rt, iv, x, n) ||
        deft_runtime_run(rt)) {
        deft_clear_error();
        deft_runtime_free(rt);
        return NULL;
    }
    return rt;
}

/* Seconds of one run of rt, < 0 when it fails. */
static double time_run(struct deft_runtime *rt) {
    double t0 = deft_time_now();
    if (deft_runtime_run(rt)) {
        deft_clear_error();
        return -1;
    }
    return deft_time_now() - t0;
}

/* The fp32 engine's convolution layout: oneDNN's blocked nChw16c kernels or
 * its nhwc brgconv ones, whichever ran this graph faster here (like
 * TensorRT's tactic selection; neither wins everywhere: measured on an AMX
 * Xeon, nhwc was faster for resnet18 at batch 1, blocked for mobilenet_v2,
 * efficientnet_b0 and batch 16). DEFT_ENGINE_LAYOUT=nhwc|blocked decides
 * without timing. NULL (blocked) when timing is not possible. */
static const char *pick_layout(const struct deft_graph *g, const struct deft_safetensors *file, int iv,
                               FILE *progress) {
    const char *env = getenv("DEFT_ENGINE_LAYOUT");
    if (env && (!strcmp(env, "nhwc") || !strcmp(env, "blocked"))) return env;
    size_t n = (size_t)deft_shape_numel(&deft_graph_value(g, iv)->shape);
    float *x = deft_malloc(n * sizeof *x);
    if (!x) return NULL;
    for (size_t i = 0; i < n; i++) x[i] = deft_rng_normal(7, 0, i);
    struct deft_runtime *rt[2] = {layout_runtime(g, file, iv, false, x, n), layout_runtime(g, file, iv, true, x, n)};
    double t[2] = {-1, -1}; /* blocked, nhwc: the best of alternating runs (3; 1 when a run takes 0.2 s) */
    for (int r = 0; r < 3 && rt[0] && rt[1]; r++) {
        for (int k = 0; k < 2; k++) {
            double s = time_run(rt[k]);
            if (s >= 0 && (t[k] < 0 || s < t[k])) t[k] = s;
        }
        if (t[0] > 0.2) break;
    }
    deft_runtime_free(rt[0]);
    deft_runtime_free(rt[1]);
    deft_free(x);
    const char *pick = t[1] > 0 && t[0] > 0 && t[1] < t[0] ? "nhwc" : "blocked";
    if (progress && t[1] > 0)
        fprintf(progress, "layout: %s (a run took %.2f ms blocked, %.2f ms nhwc)\n", pick, t[0] * 1e3, t[1] * 1e3);
    else if (progress)
        fprintf(progress, "layout: blocked (nhwc does not run here)\n");
    return pick;
}

enum deft_status deft_engine_convert(const char *model_path, const char *engine_path,
                                     const struct deft_engine_convert_opts *o) {
    static const struct deft_engine_convert_opts none = {0};
    if (!o) o = &none;
    if (!model_path || !engine_path) return deft_set_error(DEFT_ERR_INVALID_ARG, "convert: no model or output path");
    if (o->precision && strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16") && strcmp(o->precision, "int8"))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "convert: precision '%s' is not available (fp32, int8, bf16)",
                              o->precision);
    if (o->cal_cache && o->cal_image_dir)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "convert: --cal_cache and --cal_image_dir: give one of them");
    if ((o->cal_cache || o->cal_image_dir) && (!o->precision || strcmp(o->precision, "int8")))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "convert: --cal_cache and --cal_image_dir need --precision int8");
    if (o->batch < 0 || o->height < 0 || o->width < 0 || o->channels < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "convert: negative batch or input size");
    struct deft_model *m = NULL;
    struct deft_runtime *rt = NULL;
    char *entry = NULL;
    float *scales = NULL;
    struct task_qat qm = {0};
    enum deft_status s = deft_model_load(model_path, &m);
    if (s) return s;
    /* an explicitly quantized (QDQ) ONNX model carries its int8 ranges: int8 unless told otherwise */
    const char *qdq = deft_graph_get_meta(m->graph, "int8_act_scales");
    const char *precision = o->precision ? o->precision : qdq ? "int8" : "fp32";
    bool int8 = !strcmp(precision, "int8");
    /* quantization-aware: the float graph; its learned ranges are the int8 ranges */
    bool qat = deft_qat_enabled(m->graph);
    if (qat) {
        if ((s = task_qat_load(m, model_path, &qm))) goto done;
        task_qat_swap_graph(&qm, m);
    }
    if (int8 && !qat && !qdq && !o->cal_cache && !o->cal_image_dir) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "convert: an int8 engine needs its activation ranges: "
                           "--cal_cache cal.bin or --cal_image_dir DIR (or a quantization-aware or QDQ model)");
        goto done;
    }
    if (deft_safetensors_meta(m->file, "engine")) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s is an engine already; convert the model it came from",
                           model_path);
        goto done;
    }
    struct deft_graph *g = m->graph;
    int ov[DEFT_ENGINE_MAX_OUTPUTS], iv = deft_engine_pick_input(g);
    int n_out = deft_engine_pick_outputs(g, ov, DEFT_ENGINE_MAX_OUTPUTS);
    if (iv < 0 || n_out < 1) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: the model has no input or output", model_path);
        goto done;
    }
    if (n_out > DEFT_ENGINE_MAX_OUTPUTS) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: the model has %d outputs; an engine takes at most %d",
                           model_path, n_out, DEFT_ENGINE_MAX_OUTPUTS);
        goto done;
    }
    if (int8) {
        if (!(scales = deft_calloc((size_t)deft_graph_num_values(g) + 1, sizeof *scales))) {
            s = deft_set_error(DEFT_ERR_NOMEM, "convert: out of memory");
            goto done;
        }
        deft_graph_set_training(g, false);
        if (o->cal_cache) s = engine_scales_from_cache(g, o->cal_cache, scales);
        else if (o->cal_image_dir) s = engine_scales_calibrate(m, model_path, o, scales);
        else if (qdq) s = engine_scales_from_qdq(g, qdq, model_path, scales);
        else s = engine_scales_from_amax(g, qm.amax, model_path, scales);
        if (s) goto done;
    }
    if ((s = fix_input(g, iv, o, model_path))) goto done;
    /* through a runtime: it converts f16/bf16/f64 weights (ONNX) to f32 by name */
    if ((s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "ref"}, &rt)) ||
        (s = deft_model_copy_to_runtime(m->file, rt, 0, NULL)))
        goto done;
    /* fp32: the layout that runs this graph faster here */
    const char *layout = !strcmp(precision, "fp32") ? pick_layout(g, m->file, iv, o->progress) : NULL;
    if (!(entry = entry_json(g, iv, ov, n_out, precision, layout, scales))) {
        s = deft_set_error(DEFT_ERR_NOMEM, "convert: out of memory");
        goto done;
    }
    struct deft_kv kv = {"engine", entry};
    s = deft_model_save(engine_path, g, &(struct deft_model_save_opts){.rt = rt, .meta = &kv, .n_meta = 1});
done:
    task_qat_free(&qm);
    deft_free(scales);
    cJSON_free(entry);
    deft_runtime_free(rt);
    deft_model_free(m);
    return s;
}

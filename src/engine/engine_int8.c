/* engine_int8.c - the activation scales of an int8 engine: from a TensorRT
 * calibration cache (cal.bin, as deft's own INT8 export and QAT write it),
 * or from calibrating on images (the exports' calibrator,
 * tasks/common/calib.c); checked, and kept in the "engine" entry as
 * "act_scales": {"<value>": scale} with scale = amax / 127 (TensorRT's).
 *
 * Weights are not stored in int8: they are quantized per output channel
 * when a context prepares them (backend/cpu/cpu_conv_q8.c), after batch
 * norm is folded into them for the CPU the engine runs on, so the engine
 * file stays a plain deft model that any precision reads. */
#include <math.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/engine.h"
#include "deft/io.h"
#include "deft/quant.h"
#include "tasks/classification/cls_calib.h"
#include "tasks/classification/cls_common.h"
#include "engine_impl.h"

/* A scale of 0 (an activation that was all zeros) would divide by zero
 * when quantizing; any tiny scale represents zeros exactly. */
#define ENGINE_MIN_SCALE 1e-12f

/* Does a convolution quantize value v (the input of a 2-D conv with weights)? */
static bool quantized_input(const struct deft_graph *g, int v) {
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (nd->op == DEFT_OP_CONV2D && nd->in[0] == v && nd->in[1] >= 0 &&
            deft_graph_value(g, nd->in[1])->kind != DEFT_VALUE_NODE && deft_graph_value(g, v)->shape.ndim == 4)
            return true;
    }
    return false;
}

enum deft_status engine_scales_check(const struct deft_graph *g, const float *scale, const char *from) {
    for (int v = 0; v < deft_graph_num_values(g); v++)
        if (!(scale[v] > 0) && quantized_input(g, v))
            return deft_set_error(DEFT_ERR_FORMAT, "%s has no int8 scale for '%s' (the input of a convolution); "
                                  "calibrate the model this engine comes from", from,
                                  deft_graph_value(g, v)->name);
    return DEFT_OK;
}

static enum deft_status check_one(const char *from, const char *name, double s) {
    if (!isfinite(s) || s < 0 || s > 1e30)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the int8 scale of '%s' is %g (must be finite and >= 0)", from,
                              name, s);
    return DEFT_OK;
}

enum deft_status engine_scales_from_cache(const struct deft_graph *g, const char *path, float *scale) {
    struct deft_calib_entry *e;
    int n;
    enum deft_status s = deft_calib_cache_read(path, &e, &n);
    if (s) return s;
    int used = 0, input = deft_engine_pick_input(g);
    for (int i = 0; i < n && !s; i++) {
        int v = deft_graph_find_value(g, e[i].name);
        /* deft's detector exports name the image input 'Input', as TAO's do */
        if (v < 0 && !strcmp(e[i].name, "Input") && deft_graph_find_value(g, "Input") < 0) v = input;
        if (v < 0) continue; /* tensors of the export that are not values here (ReLU6's x+6 ...) */
        if (!(s = check_one(path, e[i].name, e[i].scale))) scale[v] = e[i].scale > 0 ? e[i].scale : ENGINE_MIN_SCALE;
        used++;
    }
    deft_calib_cache_free(e, n);
    if (s) return s;
    deft_log(DEFT_LOG_DEBUG, "%s: %d of its %d tensors are values of the model", path, used, n);
    return engine_scales_check(g, scale, path);
}

enum deft_status engine_scales_calibrate(struct deft_model *m, const char *model_path,
                                         const struct deft_engine_convert_opts *o, float *scale) {
    struct deft_graph *g = m->graph;
    int input = deft_engine_pick_input(g);
    struct deft_transform tf;
    char **paths = NULL;
    int n_paths = 0;
    float *amax = NULL;
    enum deft_calibrator cal = DEFT_CALIB_ENTROPY;
    enum deft_status s = o->calibrator ? deft_calibrator_parse(o->calibrator, &cal) : DEFT_OK;
    if (s) return s;
    if ((s = cls_transform_from_meta(g, model_path, &tf)))
        return deft_wrap_error(s, "calibrating on images needs the model's preprocessing");
    struct deft_shape keep = deft_graph_value(g, input)->shape;
    struct task_calib_opts co = {.batches = o->cal_batches > 0 ? o->cal_batches : 10,
                                 .batch_size = o->cal_batch_size > 0 ? o->cal_batch_size : 16,
                                 .calibrator = cal, .percentile = o->percentile, .out = o->progress};
    if ((s = task_calib_list_images(o->cal_image_dir, &paths, &n_paths)) ||
        (s = cls_calibrate(m, input, &tf, paths, n_paths, &co, 1, &amax)) ||
        (s = deft_graph_reshape_input(g, input, &keep)))
        goto done;
    for (int v = 0; v < deft_graph_num_values(g); v++)
        if (amax[v] > 0) scale[v] = amax[v] / 127.0f;
        else if (quantized_input(g, v)) scale[v] = ENGINE_MIN_SCALE;
    s = engine_scales_check(g, scale, o->cal_image_dir);
done:
    deft_string_list_free(paths, n_paths);
    deft_free(amax);
    return s;
}

enum deft_status engine_scales_from_amax(const struct deft_graph *g, const float *amax, const char *from,
                                        float *scale) {
    for (int v = 0; v < deft_graph_num_values(g); v++)
        if (amax[v] > 0) scale[v] = amax[v] / 127.0f;
    return engine_scales_check(g, scale, from);
}

enum deft_status engine_scales_from_qdq(const struct deft_graph *g, const char *json, const char *from,
                                       float *scale) {
    cJSON *o = cJSON_Parse(json);
    float *got = NULL;
    enum deft_status s = engine_scales_read(g, o, from, &got);
    cJSON_Delete(o);
    if (s) return s;
    memcpy(scale, got, (size_t)deft_graph_num_values(g) * sizeof *scale);
    deft_free(got);
    return DEFT_OK;
}

cJSON *engine_scales_json(const struct deft_graph *g, const float *scale) {
    cJSON *o = cJSON_CreateObject();
    for (int v = 0; o && v < deft_graph_num_values(g); v++)
        if (scale[v] > 0) cJSON_AddNumberToObject(o, deft_graph_value(g, v)->name, scale[v]);
    return o;
}

enum deft_status engine_scales_read(const struct deft_graph *g, const cJSON *o, const char *path, float **out) {
    *out = NULL;
    if (!cJSON_IsObject(o))
        return deft_set_error(DEFT_ERR_FORMAT, "%s: an int8 engine without \"act_scales\"", path);
    float *scale = deft_calloc((size_t)deft_graph_num_values(g) + 1, sizeof *scale);
    if (!scale) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
    enum deft_status s = DEFT_OK;
    for (const cJSON *it = o->child; it && !s; it = it->next) {
        int v = deft_graph_find_value(g, it->string);
        if (v < 0 || !cJSON_IsNumber(it))
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: act_scales names '%.64s', which is %s", path, it->string,
                               v < 0 ? "not a value of its graph" : "not a number");
        else if (!(s = check_one(path, it->string, it->valuedouble)))
            scale[v] = it->valuedouble > 0 ? (float)it->valuedouble : ENGINE_MIN_SCALE;
    }
    if (!s) s = engine_scales_check(g, scale, path);
    if (s) {
        deft_free(scale);
        return s;
    }
    *out = scale;
    return DEFT_OK;
}

/* det_export.c - the detectors' shared export pieces (det_export.h): flags,
 * the preprocessing and letterbox a consumer needs, the metadata list, the
 * calibration images. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "tasks/common/calib.h"
#include "tasks/common/det_export.h"

const char *det_nms_name(enum det_nms_mode m) {
    return m == DET_NMS_TRT ? "trt" : m == DET_NMS_ONNX ? "onnx" : "none";
}

/* What a consumer needs to feed "Input" exactly as deft's evaluation does. */
char *det_export_preprocess_json(const struct deft_preprocess *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "layout", "NCHW");
    cJSON_AddStringToObject(o, "channel_order", p->bgr ? "BGR" : "RGB");
    cJSON_AddStringToObject(o, "formula", "input[c] = (pixel[c] - offsets[c]) * scale[c], pixels 0..255 in "
                                          "channel_order, after the letterbox");
    cJSON *of = cJSON_AddArrayToObject(o, "offsets"), *sc = cJSON_AddArrayToObject(o, "scale");
    for (int c = 0; c < 3; c++) {
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)p->mean[c] * p->divisor));
        cJSON_AddItemToArray(sc, cJSON_CreateNumber(1.0 / ((double)p->divisor * p->std[c])));
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *r = t ? deft_strdup(t) : NULL;
    free(t);
    return r;
}

char *det_export_letterbox_json(int net_w, int net_h) {
    struct deft_letterbox lb = {.net_w = net_w, .net_h = net_h};
    char buf[512];
    int n = deft_letterbox_to_json(&lb, buf, sizeof buf);
    if (n < 2 || n >= (int)sizeof buf) return NULL;
    buf[n - 1] = 0; /* reopen the object */
    static const char rule[] =
        ",\"rule\":\"r = min(net_w/img_w, net_h/img_h); the image resized to round(img_w*r) x round(img_h*r) "
        "(bilinear, half-pixel centres, antialiased when shrinking more than 2x; JPEGs decoded at the "
        "smallest DCT scale that keeps that size) and pasted at ((net_w-cw)/2, (net_h-ch)/2) (integer "
        "division); the rest is the offsets (0 after preprocessing). A box back in the image: "
        "x = (x_norm*net_w - off_x) * img_w/cw, y likewise, clipped to the image\"}";
    size_t len = strlen(buf) + sizeof rule;
    char *r = deft_malloc(len);
    if (r) snprintf(r, len, "%s%s", buf, rule);
    return r;
}

enum deft_status det_export_parse_flags(const struct deft_task_args *a, const char *trt_plugin, const char *ds_parser,
                                        struct det_export_opts *o) {
    memset(o, 0, sizeof *o);
    const char *nms = deft_task_arg(a, "--nms"), *dt = deft_task_arg(a, "--data_type");
    if (!nms || !strcmp(nms, "trt")) o->nms = DET_NMS_TRT;
    else if (!strcmp(nms, "onnx")) o->nms = DET_NMS_ONNX;
    else if (!strcmp(nms, "none")) o->nms = DET_NMS_NONE;
    else return deft_set_error(DEFT_ERR_INVALID_ARG, "--nms '%s': use trt (TensorRT's %s, TAO's layout), onnx "
                               "(ONNX NonMaxSuppression) or none", nms, trt_plugin);
    if (!dt) dt = "fp32";
    o->int8 = !strcmp(dt, "int8");
    o->fp16 = !strcmp(dt, "fp16");
    if (!o->int8 && !o->fp16 && strcmp(dt, "fp32"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type '%s': use fp32, fp16 or int8", dt);
    o->cal_image_dir = deft_task_arg(a, "--cal_image_dir");
    o->cal_cache = deft_task_arg(a, "--cal_cache_file");
    o->cal_json = deft_task_arg(a, "--cal_json_file");
    o->qdq_file = deft_task_arg(a, "--qdq_file");
    o->gen_ds = deft_task_arg(a, "--gen_ds_config") != NULL;
    o->quantize_head = deft_task_arg(a, "--quantize_head") != NULL;
    o->qdq_fusion = deft_task_arg(a, "--qdq_fusion") != NULL;
    const char *cal = deft_task_arg(a, "--calibrator");
    if (!o->int8 && (o->cal_image_dir || o->cal_cache || o->cal_json || o->qdq_file || cal ||
                     deft_task_arg(a, "--batches") || deft_task_arg(a, "--batch_size") || o->quantize_head ||
                     o->qdq_fusion))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "--cal_*, --calibrator, --batches, --batch_size, --qdq_file, --quantize_head and "
                              "--qdq_fusion need --data_type int8");
    if ((o->quantize_head || o->qdq_fusion) && !o->qdq_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--quantize_head and --qdq_fusion shape the --qdq_file model: "
                              "give --qdq_file OUT_qdq.onnx");
    o->calibrator = DEFT_CALIB_ENTROPY;
    enum deft_status s;
    if (cal && (s = deft_calibrator_parse(cal, &o->calibrator))) return s;
    const char *pct = deft_task_arg(a, "--percentile");
    if (pct) {
        char *end;
        errno = 0;
        o->percentile = strtod(pct, &end);
        if (errno || end == pct || *end || !(o->percentile > 0 && o->percentile <= 100))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "--percentile is in (0, 100], got '%s'", pct);
    }
    if ((s = deft_task_arg_int(a, "--batches", 1, 100000, 10, &o->batches)) ||
        (s = deft_task_arg_int(a, "--batch_size", 1, 256, 16, &o->batch_size)) ||
        (s = deft_task_arg_int(a, "--opset", 13, 17, 13, &o->opset)) ||
        (s = deft_task_arg_int(a, "--trt_version", 1000, 999999, 8601, &o->trt_version)) ||
        (s = deft_task_arg_int(a, "--static_batch_size", -1, 4096, -1, &o->static_batch)))
        return s;
    if (o->static_batch == 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--static_batch_size is -1 (dynamic batch) or a batch size >= 1");
    if (o->gen_ds && o->nms != DET_NMS_TRT)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--gen_ds_config writes the config of TAO's DeepStream parser "
                              "(%s), which reads the --nms trt outputs", ds_parser);
    return DEFT_OK;
}

enum deft_status det_export_cal_images(const struct deft_det_loader_opts *lo, char **paths, int n_paths, int need,
                                       uint64_t seed, int net_w, int net_h, float *x) {
    int *order;
    enum deft_status s = task_calib_shuffle(n_paths, seed, &order);
    if (s) return s;
    size_t per = (size_t)3 * (size_t)net_h * (size_t)net_w;
    int got = 0, bad = 0;
    for (int next = 0; !s && got < need && next < n_paths;) {
        int chunk = need - got < n_paths - next ? need - got : n_paths - next;
        struct deft_det_dataset ds = {0};
        ds.samples = deft_calloc((size_t)chunk, sizeof *ds.samples);
        if (!ds.samples) {
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            break;
        }
        for (int i = 0; i < chunk; i++) ds.samples[i].image = paths[order[next + i]]; /* borrowed */
        ds.n = chunk;
        struct deft_det_loader *ld = NULL;
        if (!(s = deft_det_loader_create(lo, &ds, &ld)) && !(s = deft_det_loader_start_epoch(ld, 0))) {
            struct deft_det_batch b;
            while (!(s = deft_det_loader_next(ld, &b)) && b.n > 0)
                for (int i = 0; i < b.n; i++) {
                    if (b.corrupt[i]) {
                        deft_log(DEFT_LOG_WARN, "calibration: skipping unreadable %s", ds.samples[b.index[i]].image);
                        bad++;
                    } else if (got < need) {
                        memcpy(x + (size_t)got++ * per, b.images + (size_t)i * per, per * sizeof *x);
                    }
                }
        }
        deft_det_loader_free(ld);
        deft_free(ds.samples);
        next += chunk;
    }
    deft_free(order);
    if (!s && got < need)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches x --batch_size) but only "
                           "%d%s could be read; give more images or fewer batches", need, got,
                           bad ? " (others corrupt)" : "");
    return s;
}

void det_export_meta_graph(struct det_export_meta *m, const struct deft_graph *g, const char *key) {
    const char *v = deft_graph_get_meta(g, key);
    if (v && m->n < DET_EXPORT_MAX_META) m->kv[m->n++] = (struct deft_kv){key, v};
}

enum deft_status det_export_meta_own(struct det_export_meta *m, const char *key, char *v) {
    if (!v) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (m->n >= DET_EXPORT_MAX_META) {
        deft_free(v);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "too many metadata entries");
    }
    m->owned[m->n_owned++] = v;
    m->kv[m->n++] = (struct deft_kv){key, v};
    return DEFT_OK;
}

void det_export_meta_free(struct det_export_meta *m) {
    for (int i = 0; i < m->n_owned; i++) deft_free(m->owned[i]);
    m->n = m->n_owned = 0;
}

enum deft_status det_export_take_paths(struct deft_det_dataset *ds, char ***paths, int *n) {
    enum deft_status s = DEFT_OK;
    *paths = deft_calloc((size_t)(ds->n ? ds->n : 1), sizeof **paths);
    if (!*paths) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < ds->n; i++) {
        (*paths)[i] = ds->samples[i].image;
        ds->samples[i].image = NULL;
    }
    if (!s) *n = ds->n;
    deft_det_dataset_free(ds);
    return s;
}

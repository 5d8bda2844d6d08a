/* unet_export.c - `deft unet export`: the trained UNet as ONNX (float), its
 * output as TAO's export gives it (the activation appended: softmax over the
 * class axis, or sigmoid for the binary head), the raw logits, or the class
 * map (ArgMax over the class axis, int64 [N, 1, H, W]); with --data_type int8
 * the activation ranges from calibration images (TensorRT's cal.bin, TAO's
 * calib.json, an explicitly quantized QDQ ONNX). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "tasks/common/calib.h"
#include "tasks/common/export_files.h"
#include "tasks/unet/unet_task.h"

enum output_kind { OUT_ACTIVATION, OUT_LOGITS, OUT_ARGMAX };

static enum deft_status parse_output(const char *v, enum output_kind *k) {
    *k = OUT_ACTIVATION;
    if (!v || !strcmp(v, "softmax") || !strcmp(v, "sigmoid") || !strcmp(v, "activation")) return DEFT_OK;
    if (!strcmp(v, "logits")) *k = OUT_LOGITS;
    else if (!strcmp(v, "argmax")) *k = OUT_ARGMAX;
    else
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--output '%s': use softmax (sigmoid for a binary head: the "
                              "activation, TAO's default), logits or argmax", v);
    return DEFT_OK;
}

/* The nodes after the logits: Softmax(axis 1) / Sigmoid, or ArgMax(axis 1). */
static struct deft_onnx_tail *make_tail(enum output_kind k, const char *logits, const struct deft_shape *s,
                                        bool sigmoid) {
    struct deft_onnx_tail *t = deft_onnx_tail_create("post/");
    if (!t) return NULL;
    int64_t dims[4] = {-1, s->d[1], s->d[2], s->d[3]};
    if (k == OUT_ARGMAX) {
        const char *y;
        if (sigmoid) { /* one channel: class 1 where the logit is above 0 */
            const char *zero = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 0, NULL, (float[]){0.0f});
            y = deft_onnx_tail_node(t, "Greater", NULL, (const char *[]){logits, zero}, 2, "above");
            y = deft_onnx_tail_node(t, "Cast", NULL, &y, 1, "class_map");
            deft_onnx_tail_attr_i(t, "to", DEFT_ONNX_INT64);
        } else {
            y = deft_onnx_tail_node(t, "ArgMax", NULL, &logits, 1, "class_map");
            deft_onnx_tail_attr_i(t, "axis", 1);
            deft_onnx_tail_attr_i(t, "keepdims", 1);
        }
        dims[1] = 1;
        deft_onnx_tail_output(t, y, DEFT_ONNX_INT64, 4, dims);
    } else {
        const char *y = deft_onnx_tail_node(t, sigmoid ? "Sigmoid" : "Softmax", NULL, &logits, 1, "predictions");
        if (!sigmoid) deft_onnx_tail_attr_i(t, "axis", 1);
        deft_onnx_tail_output(t, y, DEFT_ONNX_FLOAT, 4, dims);
    }
    return t;
}

/* The images' preprocessing the model recorded ("unet" metadata: size, channels, scale). */
static enum deft_status input_opts(const struct deft_graph *g, const char *path, struct deft_seg_loader_opts *lo) {
    const char *js = deft_graph_get_meta(g, "unet");
    cJSON *o = js ? cJSON_Parse(js) : NULL;
    const cJSON *c = cJSON_GetObjectItem(o, "channels"), *h = cJSON_GetObjectItem(o, "height"),
                *w = cJSON_GetObjectItem(o, "width"), *sc = cJSON_GetObjectItem(o, "input_scale"),
                *rm = cJSON_GetObjectItem(o, "resize_method");
    static const char *const filters[] = {"auto", "bilinear", "nearest", "bicubic", "area"};
    int filter = 0;
    for (int k = 0; cJSON_IsString(rm) && k < 5; k++)
        if (!strcmp(rm->valuestring, filters[k])) filter = k;
    enum deft_status s = DEFT_OK;
    if (!cJSON_IsNumber(c) || !cJSON_IsNumber(h) || !cJSON_IsNumber(w))
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: no \"unet\" input metadata (a model deft unet train wrote has it)", path);
    else
        *lo = (struct deft_seg_loader_opts){.batch = 1, .channels = c->valueint, .height = h->valueint,
                                            .width = w->valueint,
                                            .zero_one = cJSON_IsString(sc) && !strcmp(sc->valuestring, "x/255"),
                                            .filter = filter,
                                            .pad = cJSON_IsTrue(cJSON_GetObjectItem(o, "resize_padding"))};
    cJSON_Delete(o);
    return s;
}

/* batches x batch_size calibration images of dir (a seeded pick), preprocessed as training
 * saw them (without augmentation), then the shared range computation. */
static enum deft_status calibrate(struct deft_model *m, int input, const char *dir, const struct task_calib_opts *co,
                                  uint64_t seed, const char *path, float **amax) {
    struct deft_seg_loader_opts lo;
    struct deft_seg_label_map none;
    deft_seg_label_map_init(&none);
    enum deft_status s = input_opts(m->graph, path, &lo);
    if (s) return s;
    lo.labels = &none;
    char **paths = NULL;
    int n = 0, *order = NULL, need = co->batches * co->batch_size, got = 0;
    if ((s = task_calib_list_images(dir, &paths, &n))) return s;
    if (n < need) {
        deft_string_list_free(paths, n);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches x --batch_size) but %s "
                              "has %d", need, dir, n);
    }
    size_t per = (size_t)lo.channels * (size_t)lo.height * (size_t)lo.width;
    float *x = deft_malloc((size_t)need * per * sizeof *x);
    if (!x) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration images)");
    if (!s) s = task_calib_shuffle(n, seed, &order);
    for (int k = 0; !s && k < n && got < need; k++) {
        struct deft_seg_sample sm = {.image = paths[order[k]]};
        enum deft_status e = deft_seg_load_pair(&lo, &sm, x + (size_t)got * per, NULL);
        if (e == DEFT_ERR_NOMEM) s = e;
        else if (e) deft_log(DEFT_LOG_WARN, "calibration: skipping %s: %s", sm.image, deft_last_error());
        else got++;
    }
    if (!s && got < need)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images but only %d could be read", need, got);
    if (!s) s = task_calib_ranges(m, input, lo.height, lo.width, x, co, amax);
    deft_free(x);
    deft_free(order);
    deft_string_list_free(paths, n);
    return s;
}

/* DeepStream: labels.txt (one class a line) and nvinfer_config.txt for nvinfer's
 * semantic segmentation (network-type 2: per-class probability maps in NCHW, the
 * pixel's class their argmax). nvinfer computes y = net-scale-factor * (x - offset). */
static enum deft_status write_ds(const char *dir, const char *onnx, const char *cal, const struct deft_graph *g,
                                 const struct deft_seg_loader_opts *lo, bool int8, const char *out_name,
                                 struct export_files *w) {
    const char *js = deft_graph_get_meta(g, "unet");
    cJSON *o = js ? cJSON_Parse(js) : NULL, *names = cJSON_GetObjectItem(o, "class_names");
    char path[4400], buf[16384];
    size_t len = 0;
    int nc = cJSON_GetArraySize(names);
    for (int i = 0; i < nc && len < sizeof buf; i++) {
        const cJSON *n = cJSON_GetArrayItem(names, i);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\n", cJSON_IsString(n) ? n->valuestring : "?");
    }
    cJSON_Delete(o);
    if (nc < 1 || len >= sizeof buf) return deft_set_error(DEFT_ERR_FORMAT, "no class names for labels.txt");
    snprintf(path, sizeof path, "%slabels.txt", dir);
    enum deft_status s = deft_file_write_atomic(path, buf, len);
    if (s) return s;
    export_files_add(w, path);
    double scale = lo->zero_one ? 1.0 / 255.0 : 1.0 / 127.5, off = lo->zero_one ? 0 : 127.5;
    len = (size_t)snprintf(buf, sizeof buf,
        "# DeepStream nvinfer config written by deft %s for %s (UNet semantic segmentation)\n"
        "# preprocessing: y = net-scale-factor * (pixel - offsets[c]), %s input\n"
        "[property]\n"
        "gpu-id=0\n"
        "onnx-file=%s\n"
        "labelfile-path=labels.txt\n"
        "%s%s%s"
        "net-scale-factor=%.9g\n"
        "offsets=%.7g;%.7g;%.7g\n"
        "model-color-format=%d\n"
        "infer-dims=%d;%d;%d\n"
        "maintain-aspect-ratio=%d\n"
        "symmetric-padding=%d\n"
        "batch-size=1\n"
        "network-mode=%d\n"
        "network-type=2\n"
        "num-detected-classes=%d\n"
        "output-blob-names=%s\n"
        "segmentation-threshold=0.0\n"
        "segmentation-output-order=0\n"
        "process-mode=1\n"
        "gie-unique-id=1\n",
        DEFT_VERSION_STRING, onnx, lo->channels == 1 ? "GRAY" : "RGB", onnx, int8 ? "int8-calib-file=" : "",
        int8 ? cal : "", int8 ? "\n" : "", scale, off, off, off, lo->channels == 1 ? 2 : 0, lo->channels, lo->height,
        lo->width, lo->pad, lo->pad, int8 ? 1 : 0, nc, out_name);
    snprintf(path, sizeof path, "%snvinfer_config.txt", dir);
    if ((s = deft_file_write_atomic(path, buf, len))) return s;
    export_files_add(w, path);
    return DEFT_OK;
}

/* --data_type and the calibration flags. */
struct int8_args {
    bool int8;
    const char *cal_dir, *cal_cache, *cal_json, *qdq;
    struct task_calib_opts co;
};

static enum deft_status int8_args(const struct deft_task_args *a, FILE *out, struct int8_args *i) {
    memset(i, 0, sizeof *i);
    const char *dt = deft_task_arg(a, "--data_type");
    i->int8 = dt && !strcmp(dt, "int8");
    if (dt && !i->int8 && strcmp(dt, "fp32") && strcmp(dt, "fp16"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type '%s': use fp32, fp16 or int8", dt);
    i->cal_dir = deft_task_arg(a, "--cal_image_dir");
    i->cal_cache = deft_task_arg(a, "--cal_cache_file");
    i->cal_json = deft_task_arg(a, "--cal_json_file");
    i->qdq = deft_task_arg(a, "--qdq_file");
    if (!i->int8 && (i->cal_dir || i->cal_cache || i->cal_json || i->qdq))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--cal_* and --qdq_file need --data_type int8");
    if (i->int8 && !i->cal_dir)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type int8 needs --cal_image_dir DIR (images to calibrate on)");
    const char *cal = deft_task_arg(a, "--calibrator");
    enum deft_status s = cal ? deft_calibrator_parse(cal, &i->co.calibrator) : DEFT_OK;
    if (!s) s = deft_task_arg_int(a, "--batches", 1, 100000, 10, &i->co.batches);
    if (!s) s = deft_task_arg_int(a, "--batch_size", 1, 4096, 4, &i->co.batch_size);
    const char *pct = deft_task_arg(a, "--percentile");
    if (!s && pct) {
        char *end;
        i->co.percentile = strtod(pct, &end);
        if (*end || !(i->co.percentile > 0 && i->co.percentile <= 100))
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "--percentile '%s': a number in (0, 100]", pct);
    }
    i->co.out = out;
    return s;
}

enum deft_status unet_export(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->model || !a->output_file) return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    enum output_kind kind;
    int opset = 0;
    struct int8_args q;
    enum deft_status s = parse_output(deft_task_arg(a, "--output"), &kind);
    if (!s) s = deft_task_arg_int(a, "--opset", 11, 17, 13, &opset);
    if (!s) s = int8_args(a, out, &q);
    bool ds = deft_task_arg(a, "--gen_ds_config") != NULL;
    if (!s && ds && kind != OUT_ACTIVATION)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "--gen_ds_config: DeepStream's segmentation parser reads class "
                           "probabilities; export with --output softmax (the default)");
    if (s) return s;
    if (a->threads > 0) deft_set_threads(a->threads);
    struct deft_model *m = NULL;
    struct deft_onnx_tail *t = NULL;
    struct deft_onnx_export_info info = {0};
    struct export_files w = {0};
    float *amax = NULL;
    char dir[4200], cal_path[4300];
    export_dir_of(a->output_file, dir, sizeof dir);
    snprintf(cal_path, sizeof cal_path, "%s", q.cal_cache ? q.cal_cache : "");
    if (!q.cal_cache) snprintf(cal_path, sizeof cal_path, "%scal.bin", dir);
    if ((s = deft_model_load(a->model, &m))) return s;
    struct deft_graph *g = m->graph;
    int in = deft_graph_find_role(g, DEFT_ROLE_IMAGE), lo = deft_graph_find_role(g, DEFT_ROLE_LOGITS), lo_v = lo;
    const char *net = deft_graph_get_meta(g, "arch");
    if (in < 0 || lo < 0 || deft_graph_value(g, lo)->shape.ndim != 4 || !net || strcmp(net, "\"unet\"")) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: not a UNet model (deft unet train writes them)", a->model);
        goto done;
    }
    deft_graph_set_training(g, false);
    if (q.int8 && (s = calibrate(m, in, q.cal_dir, &q.co, a->seed_set ? (uint64_t)a->seed : 42, a->model, &amax)))
        goto done;
    struct deft_shape one = deft_graph_value(g, in)->shape;
    one.d[0] = 1;
    if ((s = deft_graph_reshape_input(g, in, &one))) goto done;
    const struct deft_shape *ls = &deft_graph_value(g, lo)->shape;
    bool sigmoid = ls->d[1] == 1;
    if (kind != OUT_LOGITS && !(t = make_tail(kind, deft_graph_value(g, lo)->name, ls, sigmoid))) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    const struct deft_kv meta[] = {{"network", "\"unet\""},
                                   {"output_kind", kind == OUT_LOGITS ? "\"logits\"" : kind == OUT_ARGMAX ? "\"class_map\""
                                                                                      : "\"probabilities\""}};
    struct deft_onnx_export_opts eo = {.opset = opset, .input_name = "input_1", .tail = t, .meta = meta, .n_meta = 2};
    if ((s = deft_mkdirs_for(a->output_file)) || (s = deft_onnx_export(a->output_file, g, m->file, &eo, &info)))
        goto done;
    export_files_add(&w, a->output_file);
    static const char *const kinds[] = {"probabilities", "logits", "class map"};
    fprintf(out, "wrote %s: input_1 [1, %lld, %lld, %lld] -> %s (%s), opset %d\n", a->output_file,
            (long long)one.d[1], (long long)one.d[2], (long long)one.d[3], kinds[kind],
            kind == OUT_ACTIVATION ? (sigmoid ? "sigmoid" : "softmax over the class axis")
            : kind == OUT_ARGMAX   ? "int64 [1, 1, H, W]"
                                   : "before the activation",
            opset);
    if (q.int8) {
        if ((s = task_calib_write_cache(cal_path, 0, q.co.calibrator, &info, amax))) goto done;
        export_files_add(&w, cal_path);
        fprintf(out, "wrote %s: %s calibration over %d x %d images, %d tensors\n", cal_path,
                deft_calibrator_name(q.co.calibrator), q.co.batches, q.co.batch_size, info.n);
        if (q.cal_json) {
            if ((s = task_calib_write_json(q.cal_json, &info, amax))) goto done;
            export_files_add(&w, q.cal_json);
        }
        if (q.qdq) {
            struct deft_onnx_export_opts qo = eo;
            qo.act_amax = amax;
            if ((s = deft_mkdirs_for(q.qdq)) || (s = deft_onnx_export(q.qdq, g, m->file, &qo, NULL))) goto done;
            export_files_add(&w, q.qdq);
            fprintf(out, "wrote %s (explicit INT8: QuantizeLinear/DequantizeLinear)\n", q.qdq);
        }
    }
    if (ds) {
        struct deft_seg_loader_opts lo;
        char cal_rel[4300];
        snprintf(cal_rel, sizeof cal_rel, "%s", q.cal_cache ? cal_path : "cal.bin");
        if ((s = input_opts(g, a->model, &lo)) ||
            (s = write_ds(dir, export_base_of(a->output_file), cal_rel, g, &lo, q.int8,
                          kind == OUT_LOGITS ? deft_graph_value(g, lo_v)->name : "predictions", &w)))
            goto done;
        fprintf(out, "wrote %slabels.txt and %snvinfer_config.txt\n", dir, dir);
    }
done:
    if (s) export_files_remove_all(&w); /* nothing half-exported stays */
    deft_onnx_export_info_free(&info);
    deft_free(amax);
    deft_onnx_tail_free(t);
    deft_model_free(m);
    return s;
}

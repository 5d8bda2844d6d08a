/* cls_export.c - `deft classification export`: a trained model as files
 * deployment tools take without edits (tao.md §6):
 *   -o OUT.onnx        the float graph (BN folded, softmax output "predictions"
 *                      unless --logits), with class names and preprocessing in
 *                      its metadata so deft's own commands read it back
 *   cal.bin            INT8: TensorRT's calibration cache for implicit
 *                      quantization, one scale per activation of OUT.onnx
 *                      (a quantization-aware model: its learned ranges, no
 *                      calibration images; the ONNX files are its float graph)
 *   --qdq_file F       INT8: the same graph explicitly quantized (QDQ)
 *   labels.txt, nvinfer_config.txt   --gen_ds_config: DeepStream nvinfer
 * Calibration runs before anything is written; if a later write fails, the
 * files already written are removed, so a failed export leaves nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/classification.h"
#include "deft/io.h"
#include "deft/quant.h"
#include "deft/spec.h"
#include "tasks/classification/cls_calib.h"
#include "tasks/classification/cls_common.h"
#include "tasks/common/export_files.h"
#include "tasks/common/qat_export.h"

/* labels.txt (a classifier: one line, labels separated by ';') and
 * nvinfer_config.txt with the keys nvinfer needs (formats.md §3). nvinfer
 * computes y = net-scale-factor * (x - offsets[c]) on 0..255 pixels; deft's
 * (x / divisor - mean) / std is that with offsets = mean * divisor and
 * scale = 1 / (divisor * std) when std is the same for every channel; a grey
 * model is model-color-format=2 (GRAY) with one offset and infer-dims 1;H;W. */
static enum deft_status write_ds(const char *dir, const char *onnx, const char *cal,
                                 const char *const *classes, int nc, const struct deft_transform *tf,
                                 int int8, const char *out_name, struct export_files *w) {
    char path[4200], buf[8192];
    size_t len = 0;
    for (int i = 0; i < nc; i++) len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? ";" : "", classes[i]);
    len += (size_t)snprintf(buf + len, sizeof buf - len, "\n");
    if (len >= sizeof buf) return deft_set_error(DEFT_ERR_INVALID_ARG, "class names too long for labels.txt");
    snprintf(path, sizeof path, "%slabels.txt", dir);
    enum deft_status s = deft_file_write_atomic(path, buf, len);
    if (s) return s;
    export_files_add(w, path);
    const struct deft_preprocess *p = &tf->pre;
    struct ds_preprocess d;
    ds_preprocess_from(p, &d);
    len = (size_t)snprintf(buf, sizeof buf,
        "# DeepStream nvinfer config written by deft %s for %s\n"
        "# preprocessing: y = net-scale-factor * (pixel - offsets[c]), %s input%s\n"
        "[property]\n"
        "gpu-id=0\n"
        "onnx-file=%s\n"
        "labelfile-path=labels.txt\n"
        "%s%s%s"
        "net-scale-factor=%.9g\n"
        "offsets=%s\n"
        "model-color-format=%d\n"
        "infer-dims=%d;%d;%d\n"
        "maintain-aspect-ratio=0\n"
        "batch-size=1\n"
        "network-mode=%d\n"
        "network-type=1\n"
        "num-detected-classes=%d\n"
        "output-blob-names=%s\n"
        "classifier-threshold=0.2\n"
        "process-mode=1\n"
        "gie-unique-id=1\n",
        DEFT_VERSION_STRING, onnx, d.color, d.std_note,
        onnx, int8 ? "int8-calib-file=" : "", int8 ? cal : "", int8 ? "\n" : "",
        d.scale, d.offsets_text, d.color_format, d.channels, tf->out_h, tf->out_w, int8 ? 1 : 0, nc,
        out_name);
    snprintf(path, sizeof path, "%snvinfer_config.txt", dir);
    if ((s = deft_file_write_atomic(path, buf, len))) return s;
    export_files_add(w, path);
    return DEFT_OK;
}

/* Calibration images: --cal_image_dir, else the spec's training set. */
static enum deft_status cal_images(const struct deft_cls_export_args *a, char ***paths, int *n) {
    if (a->cal_image_dir) return task_calib_list_images(a->cal_image_dir, paths, n);
    if (!a->spec)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type int8 needs calibration images: "
                              "--cal_image_dir DIR, or -e SPEC (its training set)");
    struct deft_cls_config cfg;
    enum deft_status s = deft_cls_config_load(a->spec, a->overrides, a->n_overrides, &cfg);
    if (s) return s;
    struct deft_dataset *ds = NULL;
    s = deft_dataset_open(cfg.train_config.train_dataset_path, NULL, 0, &ds);
    if (!s) {
        *paths = ds->paths; /* take the list */
        *n = ds->num_samples;
        ds->paths = NULL;
        ds->num_samples = 0;
    }
    deft_dataset_free(ds);
    deft_cls_config_free(&cfg);
    return s;
}

struct meta_buf { struct deft_kv kv[6]; int n; };

static void add_meta(struct meta_buf *m, const struct deft_graph *g, const char *key) {
    const char *v = deft_graph_get_meta(g, key);
    if (v) m->kv[m->n++] = (struct deft_kv){key, v};
}

enum deft_status deft_cls_export(const struct deft_cls_export_args *a) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->model || !a->output_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    const char *dt = a->data_type ? a->data_type : "fp32";
    bool int8 = !strcmp(dt, "int8");
    if (!int8 && strcmp(dt, "fp32") && strcmp(dt, "fp16"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type '%s': use fp32, fp16 or int8", dt);
    if (!int8 && (a->qdq_file || a->cal_cache_file || a->cal_image_dir || a->cal_json_file))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--cal_* and --qdq_file need --data_type int8");
    enum deft_calibrator cal = DEFT_CALIB_ENTROPY;
    enum deft_status s;
    if (a->calibrator && (s = deft_calibrator_parse(a->calibrator, &cal))) return s;
    int batches = a->batches > 0 ? a->batches : 10, bsz = a->batch_size > 0 ? a->batch_size : 16;
    if (a->threads > 0) deft_set_threads(a->threads);
    struct deft_model *m = NULL;
    char **classes = NULL, **paths = NULL;
    int nc = 0, n_paths = 0;
    float *amax = NULL;
    struct deft_onnx_export_info info = {0};
    struct export_files w = {0};
    struct task_qat qm = {0};
    struct deft_transform tf;
    char dir[4200], cal_path[4200];
    export_dir_of(a->output_file, dir, sizeof dir);
    snprintf(cal_path, sizeof cal_path, "%s", a->cal_cache_file ? a->cal_cache_file : "");
    if (!a->cal_cache_file) snprintf(cal_path, sizeof cal_path, "%scal.bin", dir);
    if ((s = deft_model_load(a->model, &m))) goto done;
    /* quantization-aware: export the float graph; its learned ranges replace calibration */
    const bool qat = deft_qat_enabled(m->graph);
    if (qat) {
        if ((s = task_qat_load(m, a->model, &qm))) goto done;
        task_qat_swap_graph(&qm, m);
    }
    struct deft_graph *g = m->graph;
    bool have_pre = deft_graph_get_meta(g, "preprocess") != NULL;
    if (have_pre && (s = cls_transform_from_meta(g, a->model, &tf))) goto done;
    if ((int8 || a->gen_ds_config) && !have_pre) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: the model records no preprocessing, which %s "
                           "needs (import it with `deft model import --preprocess ...`)", a->model,
                           int8 ? "calibration" : "--gen_ds_config");
        goto done;
    }
    if (deft_graph_get_meta(g, "class_names"))
        (void)cls_class_names_from_meta(g, a->model, &classes, &nc);
    if (a->gen_ds_config && !classes) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: no class names recorded; --gen_ds_config needs "
                           "them for labels.txt", a->model);
        goto done;
    }
    deft_graph_set_training(g, false);
    int input = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    if (input < 0) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: the model has no image input", a->model);
        goto done;
    }
    if (int8 && qat) {
        task_qat_notes(&qm, a->model, a->cal_image_dir || a->spec, a->qdq_file, a->qdq_fusion, out);
    } else if (int8) {
        if ((s = cal_images(a, &paths, &n_paths))) goto done;
        struct task_calib_opts co = {.batches = batches, .batch_size = bsz, .calibrator = cal,
                                     .percentile = a->percentile, .out = out};
        if ((s = cls_calibrate(m, input, &tf, paths, n_paths, &co, a->seed, &amax))) goto done;
    }
    struct deft_shape one = deft_graph_value(g, input)->shape;
    one.d[0] = 1;
    if ((s = deft_graph_reshape_input(g, input, &one))) goto done;
    struct meta_buf mb = {0};
    add_meta(&mb, g, "arch");
    add_meta(&mb, g, "class_names");
    add_meta(&mb, g, "preprocess");
    add_meta(&mb, g, "num_classes");
    mb.kv[mb.n++] = (struct deft_kv){"output_kind", a->logits ? "\"logits\"" : "\"probabilities\""};
    const char *out_name = a->logits ? "logits" : "predictions";
    struct deft_onnx_export_opts eo = {.opset = a->opset, .dynamic_batch = a->dynamic_batch,
                                       .softmax = !a->logits, .output_name = out_name,
                                       .relu6_as_relu = a->relu6_as_relu, .meta = mb.kv,
                                       .n_meta = mb.n};
    if ((s = deft_mkdirs_for(a->output_file)) || (s = deft_onnx_export(a->output_file, g, m->file, &eo, &info)))
        goto done;
    export_files_add(&w, a->output_file);
    fprintf(out, "wrote %s (%d activation tensors, opset %d%s)\n", a->output_file, info.n,
            a->opset ? a->opset : 13, a->dynamic_batch ? ", dynamic batch" : "");
    if (int8) {
        const float *ranges = qat ? qm.amax : amax;
        if ((s = task_calib_write_cache(cal_path, a->trt_version, qat ? DEFT_CALIB_ENTROPY : cal, &info, ranges)))
            goto done;
        export_files_add(&w, cal_path);
        if (qat)
            fprintf(out, "wrote %s: ranges learned by quantization-aware training, %d tensors\n", cal_path, info.n);
        else
            fprintf(out, "wrote %s: %s calibration over %d x %d images, %d tensors\n", cal_path,
                    deft_calibrator_name(cal), batches, bsz, info.n);
        if (a->cal_json_file) {
            if ((s = task_calib_write_json(a->cal_json_file, &info, ranges))) goto done;
            export_files_add(&w, a->cal_json_file);
        }
        if (a->qdq_file) {
            struct deft_onnx_export_opts q = eo;
            q.act_amax = qat ? qm.amax_q : amax; /* QAT: Q/DQ where training quantized */
            q.qdq_fusion = qat ? qm.fusion : a->qdq_fusion;
            if ((s = deft_onnx_export(a->qdq_file, g, m->file, &q, NULL))) goto done;
            export_files_add(&w, a->qdq_file);
            fprintf(out, "wrote %s (explicit INT8: QuantizeLinear/DequantizeLinear)\n", a->qdq_file);
        }
    }
    if (!strcmp(dt, "fp16"))
        fprintf(out, "note: fp16 is chosen when TensorRT builds the engine; the ONNX stays fp32\n");
    if (a->gen_ds_config) {
        char cal_rel[4200];
        snprintf(cal_rel, sizeof cal_rel, "%s", a->cal_cache_file ? cal_path : "cal.bin");
        if ((s = write_ds(dir, export_base_of(a->output_file), cal_rel, (const char *const *)classes, nc,
                          &tf, int8, out_name, &w)))
            goto done;
        fprintf(out, "wrote %slabels.txt and %snvinfer_config.txt\n", dir, dir);
    }
done:
    if (s) export_files_remove_all(&w); /* nothing half-exported stays */
    deft_onnx_export_info_free(&info);
    deft_free(amax);
    deft_string_list_free(paths, n_paths);
    deft_string_list_free(classes, nc);
    task_qat_free(&qm);
    deft_model_free(m);
    return s;
}

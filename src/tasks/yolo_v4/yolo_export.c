/* yolo_export.c - `deft yolo_v4 export` / `deft yolo_v4_tiny export`: a
 * trained detector as the files TensorRT, DeepStream and onnxruntime take
 * (tao.md §6, detection.md §2 Export):
 *   -o OUT.onnx   input "Input" (NCHW, preprocessed and letterboxed as deft's
 *                 evaluation does, recorded in metadata_props), the network,
 *                 then the decode and NMS as ONNX nodes (yolo_export_tail.c):
 *                 --nms trt (TAO's BatchedNMSDynamic_TRT), onnx (standard
 *                 NonMaxSuppression, runs in onnxruntime) or none
 *   cal.bin       --data_type int8: TensorRT's calibration cache for every
 *                 activation of the network (the decode after it stays float);
 *                 a quantization-aware model's learned ranges (no images)
 *   --qdq_file F  int8: the same model explicitly quantized (QDQ); the head
 *                 convolutions stay float unless --quantize_head
 *   labels.txt, nvinfer_config.txt   --gen_ds_config (DeepStream)
 * Every check runs and calibration finishes before the first file is
 * written; a later failure removes what was written (nothing partial). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/data.h"
#include "deft/graph.h"
#include "tasks/common/calib.h"
#include "tasks/common/det_export.h"
#include "tasks/common/export_files.h"
#include "tasks/common/qat_export.h"
#include "tasks/yolo_v4/yolo_task.h"

/* ---- calibration ----------------------------------------------------------------- */

/* Calibration images: --cal_image_dir, else the spec's training (else validation) images. */
static enum deft_status cal_paths(const struct det_export_opts *o, const struct yolo_setup *y, char ***paths, int *n) {
    *paths = NULL;
    *n = 0;
    if (o->cal_image_dir) return task_calib_list_images(o->cal_image_dir, paths, n);
    if (!y->cfg_loaded)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type int8 needs calibration images: --cal_image_dir DIR, "
                              "or -e SPEC (its training images)");
    struct deft_det_dataset ds;
    enum deft_status s = yolo_read_split(y, y->cfg.dataset_config.n_data_sources == 0, &ds);
    return s ? s : det_export_take_paths(&ds, paths, n);
}

/* need images letterboxed and preprocessed by evaluation's loader into x. */
static enum deft_status cal_images(const struct yolo_model *ym, char **paths, int n_paths, int need, int bs,
                                   uint64_t seed, int threads, float *x) {
    struct yolo_model lm = *ym;
    lm.batch = bs;
    struct deft_det_loader_opts lo;
    yolo_eval_loader_opts(&lm, threads, &lo);
    return det_export_cal_images(&lo, paths, n_paths, need, seed, ym->net_w, ym->net_h, x);
}

/* ---- metadata ------------------------------------------------------------------- */

static const char *outputs_doc(enum det_nms_mode m) {
    switch (m) {
    case DET_NMS_TRT:
        return "BatchedNMS int32 [N,1] boxes kept; BatchedNMS_1 float [N,K,4] x1,y1,x2,y2 in [0,1] of the "
               "network input; BatchedNMS_2 float [N,K] scores; BatchedNMS_3 float [N,K] class ids "
               "(TensorRT's BatchedNMSDynamic_TRT plugin, TAO's layout)";
    case DET_NMS_ONNX:
        return "num_detections int32 [N,1]; detection_boxes float [N,K,4] x1,y1,x2,y2 in [0,1] of the network "
               "input (clipped); detection_scores float [N,K]; detection_classes int32 [N,K]; best first, "
               "zeros and class -1 after num_detections";
    default:
        return "boxes float [N,B,4] x1,y1,x2,y2 in [0,1] of the network input (not clipped); scores float "
               "[N,B,C] sigmoid(objectness) * sigmoid(class); no NMS";
    }
}

static char *nms_json(enum det_nms_mode m, const struct yolo_nms *c, int num_boxes) {
    char buf[512];
    if (m == DET_NMS_NONE)
        snprintf(buf, sizeof buf, "{\"mode\":\"none\",\"num_boxes\":%d}", num_boxes);
    else
        snprintf(buf, sizeof buf,
                 "{\"mode\":\"%s\",\"confidence_threshold\":%g,\"iou_threshold\":%g,\"top_k\":%d,"
                 "\"num_boxes\":%d,\"rule\":\"per class, highest score first, a box overlapping a kept one "
                 "with IoU > iou_threshold is dropped; top_k per class and per image; boxes clipped to [0,1]\"}",
                 det_nms_name(m), (double)c->conf, (double)c->iou, c->top_k, num_boxes);
    return deft_strdup(buf);
}

/* ---- the action ------------------------------------------------------------------ */

static enum deft_status check_model(const struct yolo_model *ym, const char *path, const char *network,
                                    const struct yolo_setup *y) {
    const char *arch = deft_graph_get_meta(ym->m->graph, "arch");
    bool tiny = arch && strstr(arch, "yolo_v4_tiny");
    if (arch && tiny != !strcmp(network, "yolo_v4_tiny"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s is a %s model: run `deft %s export`", path,
                              tiny ? "yolo_v4_tiny" : "yolo_v4", tiny ? "yolo_v4_tiny" : "yolo_v4");
    if (!y->cfg_loaded) return DEFT_OK;
    const struct deft_yolo_dataset_config *d = &y->cfg.dataset_config;
    if (d->n_classes != ym->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec %s has %d", path, ym->n_classes,
                              y->cfg.source_path, d->n_classes);
    for (int k = 0; k < d->n_classes; k++)
        if (strcmp(ym->classes[k], d->class_names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "class %d is '%s' in %s but '%s' in the spec", k,
                                  ym->classes[k], path, d->class_names[k]);
    return DEFT_OK;
}

enum deft_status yolo_export(const struct deft_task_args *a, const char *network) {
    FILE *out = a->out ? a->out : stdout;
    struct det_export_opts o;
    struct yolo_setup y = {0};
    struct yolo_model ym = {0};
    struct deft_onnx_tail *tail = NULL;
    struct deft_onnx_export_info info = {0};
    struct export_files w = {0};
    struct det_export_meta mt = {0};
    char **paths = NULL, *fp32_layers = NULL;
    int n_paths = 0;
    float *amax = NULL, *x = NULL;
    bool *float_nodes = NULL;
    struct task_qat qm = {0};
    enum deft_status s = det_export_parse_flags(a, "BatchedNMSDynamic_TRT", "NvDsInferParseCustomBatchedNMSTLT", &o);
    if (s) return s;
    if (!a->model || !a->output_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    if (a->threads > 0) deft_set_threads(a->threads);
    if (a->spec && (s = yolo_setup_load(&y, a, network))) goto done;
    struct yolo_nms nms = {0};
    if (o.nms != DET_NMS_NONE) {
        if (!y.cfg_loaded || !y.cfg.has_nms_config) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG,
                               "--nms %s needs the spec's nms_config (confidence_threshold, clustering_iou_threshold, "
                               "top_k): %s%s, or export the raw boxes and scores with --nms none",
                               det_nms_name(o.nms), y.cfg_loaded ? "add one to " : "give -e SPEC",
                               y.cfg_loaded ? y.cfg.source_path : "");
            goto done;
        }
        nms = (struct yolo_nms){(float)y.cfg.nms_config.confidence_threshold,
                                (float)y.cfg.nms_config.clustering_iou_threshold, y.cfg.nms_config.top_k};
    }
    if ((s = yolo_model_read(&ym, a->model, 1)) || (s = check_model(&ym, a->model, network, &y))) goto done;
    const bool qat = deft_qat_enabled(ym.m->graph);
    if (qat) { /* quantization-aware: the float graph, and its learned ranges instead of calibration */
        const char *names[DEFT_YOLO_HEADS + 1];
        names[0] = deft_graph_value(ym.m->graph, ym.input)->name;
        for (int i = 0; i < ym.heads.n; i++) names[i + 1] = deft_graph_value(ym.m->graph, ym.out[i])->name;
        if ((s = task_qat_load(ym.m, a->model, &qm))) goto done;
        ym.input = deft_graph_find_value(qm.g, names[0]); /* the strip renumbers values */
        for (int i = 0; i < ym.heads.n; i++) ym.out[i] = deft_graph_find_value(qm.g, names[i + 1]);
        task_qat_swap_graph(&qm, ym.m);
        if (o.int8) task_qat_notes(&qm, a->model, o.cal_image_dir != NULL, o.qdq_file != NULL, o.qdq_fusion, out);
    }
    struct deft_graph *g = ym.m->graph;
    if (o.int8 && !qat) { /* calibrate before anything is written */
        int need = o.batches * o.batch_size;
        if ((s = cal_paths(&o, &y, &paths, &n_paths))) goto done;
        if (n_paths < need) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches %d x --batch_size %d) "
                               "but only %d were found", need, o.batches, o.batch_size, n_paths);
            goto done;
        }
        if (!(x = deft_malloc((size_t)need * 3 * (size_t)ym.net_h * (size_t)ym.net_w * sizeof *x))) {
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration images)");
            goto done;
        }
        struct task_calib_opts co = {.batches = o.batches, .batch_size = o.batch_size, .calibrator = o.calibrator,
                                     .percentile = o.percentile, .out = out};
        uint64_t seed = a->seed_set ? (uint64_t)a->seed : 0;
        if ((s = cal_images(&ym, paths, n_paths, need, o.batch_size, seed, a->threads, x)) ||
            (s = task_calib_ranges(ym.m, ym.input, ym.net_h, ym.net_w, x, &co, &amax)))
            goto done;
        deft_free(x);
        x = NULL;
    }
    struct deft_shape in = deft_shape4(o.static_batch > 0 ? o.static_batch : 1, 3, ym.net_h, ym.net_w);
    if ((s = deft_graph_reshape_input(g, ym.input, &in))) goto done;
    const char *head_names[DEFT_YOLO_HEADS];
    for (int i = 0; i < ym.heads.n; i++) head_names[i] = deft_graph_value(g, ym.out[i])->name;
    int num_boxes = 0;
    struct yolo_tail_opts to = {.heads = &ym.heads, .n_classes = ym.n_classes, .head_names = head_names,
                                .nms = o.nms, .cfg = nms,
                                .score_bits = y.cfg_loaded ? y.cfg.nms_config.infer_nms_score_bits : 0};
    if ((s = yolo_export_tail(&to, &tail, &num_boxes))) goto done;
    det_export_meta_graph(&mt, g, "arch");
    det_export_meta_graph(&mt, g, "backbone");
    det_export_meta_graph(&mt, g, "class_names");
    det_export_meta_graph(&mt, g, "num_classes");
    det_export_meta_graph(&mt, g, "yolo");
    if ((s = det_export_meta_own(&mt, "preprocess", det_export_preprocess_json(&ym.pre))) ||
        (s = det_export_meta_own(&mt, "letterbox", det_export_letterbox_json(ym.net_w, ym.net_h))) ||
        (s = det_export_meta_own(&mt, "nms", nms_json(o.nms, &nms, num_boxes))) ||
        (s = det_export_meta_own(&mt, "outputs", deft_strdup(outputs_doc(o.nms)))))
        goto done;
    struct deft_onnx_export_opts eo = {.opset = o.opset, .dynamic_batch = o.static_batch < 0, .input_name = "Input",
                                       .tail = tail, .meta = mt.kv, .n_meta = mt.n};
    if ((s = deft_mkdirs_for(a->output_file)) || (s = deft_onnx_export(a->output_file, g, ym.m->file, &eo, &info)))
        goto done;
    export_files_add(&w, a->output_file);
    fprintf(out, "wrote %s: %s, input Input [%s,3,%d,%d], %d candidate boxes, NMS %s%s (opset %d)\n", a->output_file,
            network, o.static_batch > 0 ? "" : "batch", ym.net_h, ym.net_w, num_boxes, det_nms_name(o.nms),
            o.nms == DET_NMS_TRT ? " (BatchedNMSDynamic_TRT: TensorRT only)" : "", o.opset);
    char dir[4200], cal_path[4200];
    export_dir_of(a->output_file, dir, sizeof dir);
    if (o.cal_cache) snprintf(cal_path, sizeof cal_path, "%s", o.cal_cache);
    else snprintf(cal_path, sizeof cal_path, "%scal.bin", dir);
    if (o.int8) {
        const float *ranges = qat ? qm.amax : amax;
        if ((s = task_calib_write_cache(cal_path, o.trt_version, qat ? DEFT_CALIB_ENTROPY : o.calibrator, &info,
                                        ranges)))
            goto done;
        export_files_add(&w, cal_path);
        if (qat)
            fprintf(out, "wrote %s: ranges learned by quantization-aware training, %d tensors (the decode after the "
                    "head stays float)\n", cal_path, info.n);
        else
            fprintf(out, "wrote %s: %s calibration over %d x %d images, %d tensors (the decode after the head "
                    "stays float)\n", cal_path, deft_calibrator_name(o.calibrator), o.batches, o.batch_size, info.n);
        if (o.cal_json) {
            if ((s = task_calib_write_json(o.cal_json, &info, ranges))) goto done;
            export_files_add(&w, o.cal_json);
        }
        if (o.qdq_file) {
            int nn = deft_graph_num_nodes(g);
            if (!(float_nodes = deft_calloc((size_t)nn, sizeof *float_nodes))) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (int i = 0; !o.quantize_head && i < ym.heads.n; i++)
                float_nodes[deft_graph_value(g, ym.out[i])->producer] = true;
            struct deft_onnx_export_opts q = eo;
            /* QAT: Q/DQ where training quantized (a head it kept float has no range: float here too) */
            q.act_amax = qat ? qm.amax_q : amax;
            q.qdq_fusion = qat ? qm.fusion : o.qdq_fusion;
            q.float_nodes = float_nodes;
            if ((s = deft_onnx_export(o.qdq_file, g, ym.m->file, &q, NULL))) goto done;
            export_files_add(&w, o.qdq_file);
            fprintf(out, "wrote %s (explicit INT8: QuantizeLinear/DequantizeLinear%s)\n", o.qdq_file,
                    o.quantize_head ? ", head included" : "; head convolutions and decode float");
        }
    }
    if (o.fp16)
        fprintf(out, "note: fp16 is chosen when TensorRT builds the engine (DeepStream network-mode=2); the ONNX "
                "stays fp32\n");
    if (o.gen_ds) {
        if (o.int8 && !(fp32_layers = yolo_fp32_layers(&ym, tail))) {
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            goto done;
        }
        char cal_rel[4200];
        snprintf(cal_rel, sizeof cal_rel, "%s", o.cal_cache ? cal_path : "cal.bin");
        if ((s = yolo_write_ds(dir, export_base_of(a->output_file), cal_rel, &ym, o.int8, o.fp16, &nms, fp32_layers,
                               &w)))
            goto done;
        fprintf(out, "wrote %slabels.txt and %snvinfer_config.txt\n", dir, dir);
    }
done:
    if (s) export_files_remove_all(&w); /* nothing half-exported stays */
    det_export_meta_free(&mt);
    deft_free(fp32_layers);
    deft_free(float_nodes);
    deft_free(amax);
    task_qat_free(&qm);
    deft_free(x);
    deft_string_list_free(paths, n_paths);
    deft_onnx_export_info_free(&info);
    deft_onnx_tail_free(tail);
    yolo_model_close(&ym);
    yolo_setup_free(&y);
    return s;
}

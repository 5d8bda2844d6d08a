/* ssd_export.c - `deft ssd export`: a trained SSD as the files TensorRT,
 * DeepStream and onnxruntime take (detection.md §5, tao.md §6):
 *   -o OUT.onnx   input "Input" (NCHW, preprocessed and letterboxed as deft's
 *                 evaluation, recorded in metadata_props), the network, then
 *                 TAO's mbox_conf/mbox_loc layout and the NMS as ONNX nodes
 *                 (ssd_export_tail.c): --nms trt (TAO's NMSDynamic_TRT node
 *                 "NMS"), onnx (standard NonMaxSuppression, runs in
 *                 onnxruntime) or none (decoded boxes and scores)
 *   cal.bin       --data_type int8: TensorRT's calibration cache for every
 *                 activation of the network (the tail after it stays float)
 *   --qdq_file F  int8: the same model explicitly quantized (QDQ), the twelve
 *                 head convolutions float unless --quantize_head
 *   labels.txt, nvinfer_config.txt   --gen_ds_config (DeepStream)
 * Checks and calibration finish before the first file is written; a later
 * failure removes what was written. */
#include <stdio.h>
#include <string.h>
#include "deft/graph.h"
#include "deft/quant.h"
#include "tasks/common/calib.h"
#include "tasks/common/det_export.h"
#include "tasks/common/det_export_ds.h"
#include "tasks/common/det_split.h"
#include "tasks/common/export_files.h"
#include "tasks/ssd/ssd_task.h"

/* Calibration images: --cal_image_dir, else the spec's training (else validation) images. */
static enum deft_status cal_paths(const struct det_export_opts *o, const struct ssd_setup *ss, char ***paths,
                                  int *n) {
    *paths = NULL;
    *n = 0;
    if (o->cal_image_dir) return task_calib_list_images(o->cal_image_dir, paths, n);
    if (!ss->cfg_loaded)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type int8 needs calibration images: --cal_image_dir DIR, "
                              "or -e SPEC (its training images)");
    const struct deft_ssd_config *c = &ss->cfg;
    struct deft_det_dataset ds;
    enum deft_status s =
        det_spec_read_split(&c->dataset_config, c->source_path, c->dataset_config.n_data_sources == 0, &ds);
    return s ? s : det_export_take_paths(&ds, paths, n);
}

/* The activation ranges over --batches x --batch_size images letterboxed as evaluation does. */
static enum deft_status calibrate(const struct det_export_opts *o, const struct ssd_setup *ss, struct ssd_model *sm,
                                  const struct deft_task_args *a, float **amax) {
    char **paths = NULL;
    int n_paths = 0, need = o->batches * o->batch_size;
    float *x = NULL;
    enum deft_status s = cal_paths(o, ss, &paths, &n_paths);
    if (!s && n_paths < need)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches %d x --batch_size %d) but "
                           "only %d were found", need, o->batches, o->batch_size, n_paths);
    const struct ssd_geom *g = &sm->geom;
    if (!s && !(x = deft_malloc((size_t)need * 3 * (size_t)g->net_h * (size_t)g->net_w * sizeof *x)))
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration images)");
    if (!s) {
        struct deft_det_loader_opts lo;
        deft_det_loader_opts_defaults(&lo);
        lo.batch_size = o->batch_size;
        lo.num_threads = a->threads > 0 ? a->threads : 2;
        lo.shuffle = false;
        lo.drop_last = false;
        deft_det_transform_defaults(&lo.transform);
        lo.transform.net_w = g->net_w;
        lo.transform.net_h = g->net_h;
        lo.transform.pre = sm->pre;
        struct task_calib_opts co = {.batches = o->batches, .batch_size = o->batch_size,
                                     .calibrator = o->calibrator, .percentile = o->percentile,
                                     .out = a->out ? a->out : stdout};
        uint64_t seed = a->seed_set ? (uint64_t)a->seed : 0;
        if (!(s = det_export_cal_images(&lo, paths, n_paths, need, seed, g->net_w, g->net_h, x)))
            s = task_calib_ranges(sm->m, sm->input, g->net_h, g->net_w, x, &co, amax);
    }
    deft_free(x);
    deft_string_list_free(paths, n_paths);
    return s;
}

static const char *outputs_doc(enum det_nms_mode m) {
    switch (m) {
    case DET_NMS_TRT:
        return "NMS float [N,1,keepTopK,7] (image_id, label, confidence, x1, y1, x2, y2 in [0,1] of the network "
               "input; label 0 is the background); NMS_1 int32 [N,1,1,1] detections kept (TensorRT's "
               "NMSDynamic_TRT plugin, TAO's layout; its inputs loc_data, conf_data and the constant anchor_data)";
    case DET_NMS_ONNX:
        return "num_detections int32 [N,1]; detection_boxes float [N,K,4] x1,y1,x2,y2 in [0,1] of the network "
               "input (clipped); detection_scores float [N,K]; detection_classes int32 [N,K] (object classes, no "
               "background); best first, zeros and class -1 after num_detections";
    default:
        return "boxes float [N,P,4] x1,y1,x2,y2 in [0,1] of the network input (not clipped); scores float [N,P,C] "
               "softmax (RetinaNet: sigmoid) of the object classes (background dropped); no NMS";
    }
}

static char *nms_json(enum det_nms_mode m, const struct ssd_nms *c, long num_boxes) {
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"mode\":\"%s\",\"confidence_threshold\":%g,\"iou_threshold\":%g,\"top_k\":%d,\"num_boxes\":%ld,"
             "\"rule\":\"per class, highest score first, a box overlapping a kept one with IoU > iou_threshold is "
             "dropped; top_k per class and per image; boxes clipped to [0,1]\"}",
             det_nms_name(m), (double)c->conf, (double)c->iou, c->top_k, num_boxes);
    return deft_strdup(buf);
}

static enum deft_status check_model(const struct ssd_model *sm, const char *path, const struct ssd_setup *ss) {
    if (deft_qat_enabled(sm->m->graph))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: exporting a quantization-aware SSD is %s", path,
                              DEFT_SSD_NOT_FINISHED);
    if (!ss->cfg_loaded) return DEFT_OK;
    const struct deft_yolo_dataset_config *d = &ss->cfg.dataset_config;
    if (d->n_classes != sm->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec %s has %d", path, sm->n_classes,
                              ss->cfg.source_path, d->n_classes);
    for (int k = 0; k < d->n_classes; k++)
        if (strcmp(sm->classes[k], d->class_names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "class %d is '%s' in %s but '%s' in the spec", k,
                                  sm->classes[k], path, d->class_names[k]);
    return DEFT_OK;
}

static enum deft_status nms_of(const struct det_export_opts *o, const struct ssd_setup *ss, struct ssd_nms *nms) {
    *nms = (struct ssd_nms){0};
    if (o->nms == DET_NMS_NONE) return DEFT_OK;
    if (!ss->cfg_loaded || !ss->cfg.has_nms_config)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--nms %s needs the spec's nms_config (confidence_threshold, "
                              "clustering_iou_threshold, top_k): %s%s, or export the raw boxes and scores with --nms "
                              "none", det_nms_name(o->nms), ss->cfg_loaded ? "add one to " : "give -e SPEC",
                              ss->cfg_loaded ? ss->cfg.source_path : "");
    const struct deft_yolo_nms_config *c = &ss->cfg.nms_config;
    *nms = (struct ssd_nms){(float)c->confidence_threshold, (float)c->clustering_iou_threshold, c->top_k};
    if (nms->top_k < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "nms_config.top_k must be >= 1, got %d", c->top_k);
    return DEFT_OK;
}

/* The explicitly quantized copy: Q/DQ on every activation, the heads float unless --quantize_head. */
static enum deft_status write_qdq(const struct det_export_opts *o, const struct ssd_model *sm,
                                  const struct deft_onnx_export_opts *eo, const float *amax) {
    struct deft_graph *g = sm->m->graph;
    bool *float_nodes = deft_calloc((size_t)deft_graph_num_nodes(g), sizeof *float_nodes);
    if (!float_nodes) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !o->quantize_head && i < 2 * sm->geom.n_maps; i++)
        float_nodes[deft_graph_value(g, sm->out[i])->producer] = true;
    struct deft_onnx_export_opts q = *eo;
    q.act_amax = amax;
    q.qdq_fusion = o->qdq_fusion;
    q.float_nodes = float_nodes;
    enum deft_status s = deft_onnx_export(o->qdq_file, g, sm->m->file, &q, NULL);
    deft_free(float_nodes);
    return s;
}

enum deft_status ssd_export(const struct deft_task_args *a) { return ssd_export_net(a, false); }

enum deft_status ssd_export_net(const struct deft_task_args *a, bool retina) {
    FILE *out = a->out ? a->out : stdout;
    struct det_export_opts o;
    struct ssd_setup ss = {0};
    struct ssd_model sm = {0};
    struct deft_onnx_tail *tail = NULL;
    struct deft_onnx_export_info info = {0};
    struct export_files w = {0};
    struct det_export_meta mt = {0};
    float *amax = NULL;
    struct ssd_nms nms;
    enum deft_status s = det_export_parse_flags(a, "NMSDynamic_TRT", "NvDsInferParseCustomNMSTLT", &o);
    if (s) return s;
    if (!a->model || !a->output_file) return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((a->spec && (s = ssd_setup_load(&ss, a, retina))) || (s = nms_of(&o, &ss, &nms)) ||
        (s = ssd_model_read(&sm, a->model, 1)) || (s = ssd_model_check_net(&sm, a->model, retina)) ||
        (s = check_model(&sm, a->model, &ss)))
        goto done;
    if (o.int8 && (s = calibrate(&o, &ss, &sm, a, &amax))) goto done; /* before anything is written */
    struct deft_graph *g = sm.m->graph;
    const struct ssd_geom *geo = &sm.geom;
    struct deft_shape in = deft_shape4(o.static_batch > 0 ? o.static_batch : 1, 3, geo->net_h, geo->net_w);
    if ((s = deft_graph_reshape_input(g, sm.input, &in))) goto done;
    const char *names[2 * DEFT_SSD_LAYERS];
    for (int i = 0; i < 2 * sm.geom.n_maps; i++) names[i] = deft_graph_value(g, sm.out[i])->name;
    struct ssd_tail_opts to = {.geom = geo, .out_names = names, .mode = o.nms, .nms = nms,
                               .score_bits = ss.cfg_loaded ? ss.cfg.nms_config.infer_nms_score_bits : 0};
    if ((s = ssd_export_tail(&to, &tail))) goto done;
    static const char *const graph_keys[] = {"arch", "backbone", "class_names", "num_classes", "ssd"};
    for (int i = 0; i < 5; i++) det_export_meta_graph(&mt, g, graph_keys[i]);
    if ((s = det_export_meta_own(&mt, "preprocess", det_export_preprocess_json(&sm.pre))) ||
        (s = det_export_meta_own(&mt, "letterbox", det_export_letterbox_json(geo->net_w, geo->net_h))) ||
        (s = det_export_meta_own(&mt, "nms", nms_json(o.nms, &nms, geo->n_priors))) ||
        (s = det_export_meta_own(&mt, "outputs", deft_strdup(outputs_doc(o.nms)))))
        goto done;
    struct deft_onnx_export_opts eo = {.opset = o.opset, .dynamic_batch = o.static_batch < 0, .input_name = "Input",
                                       .tail = tail, .meta = mt.kv, .n_meta = mt.n};
    if ((s = deft_mkdirs_for(a->output_file)) || (s = deft_onnx_export(a->output_file, g, sm.m->file, &eo, &info)))
        goto done;
    export_files_add(&w, a->output_file);
    fprintf(out, "wrote %s: %s, input Input [%s,3,%d,%d], %ld priors, NMS %s%s (opset %d)\n", a->output_file, ssd_net_name(retina),
            o.static_batch > 0 ? "" : "batch", geo->net_h, geo->net_w, geo->n_priors, det_nms_name(o.nms),
            o.nms == DET_NMS_TRT ? " (NMSDynamic_TRT: TensorRT only)" : "", o.opset);
    char dir[4200], cal_path[4200];
    export_dir_of(a->output_file, dir, sizeof dir);
    snprintf(cal_path, sizeof cal_path, "%s%s", o.cal_cache ? "" : dir, o.cal_cache ? o.cal_cache : "cal.bin");
    if (o.int8) {
        if ((s = task_calib_write_cache(cal_path, o.trt_version, o.calibrator, &info, amax))) goto done;
        export_files_add(&w, cal_path);
        fprintf(out, "wrote %s: %s calibration over %d x %d images, %d tensors (the tail after the heads stays "
                "float)\n", cal_path, deft_calibrator_name(o.calibrator), o.batches, o.batch_size, info.n);
        if (o.cal_json) {
            if ((s = task_calib_write_json(o.cal_json, &info, amax))) goto done;
            export_files_add(&w, o.cal_json);
        }
        if (o.qdq_file) {
            if ((s = write_qdq(&o, &sm, &eo, amax))) goto done;
            export_files_add(&w, o.qdq_file);
            fprintf(out, "wrote %s (explicit INT8: QuantizeLinear/DequantizeLinear%s)\n", o.qdq_file,
                    o.quantize_head ? ", heads included" : "; head convolutions and the tail float");
        }
    }
    if (o.fp16)
        fprintf(out, "note: fp16 is chosen when TensorRT builds the engine (DeepStream network-mode=2); the ONNX "
                "stays fp32\n");
    if (o.gen_ds) {
        struct det_ds_opts d = {.dir = dir, .onnx = export_base_of(a->output_file),
                                .cal = o.cal_cache ? cal_path : "cal.bin",
                                .arch = retina ? "TAO's RetinaNet" : "TAO's SSD", .pre = &sm.pre,
                                .net_w = sm.geom.net_w, .net_h = sm.geom.net_h,
                                .classes = (const char *const *)sm.classes, .n_classes = sm.n_classes,
                                .background_first = true, .int8 = o.int8, .fp16 = o.fp16, .conf = nms.conf,
                                .iou = nms.iou, .top_k = nms.top_k};
        if ((s = det_write_ds(&d, &w))) goto done;
        fprintf(out, "wrote %slabels.txt and %snvinfer_config.txt\n", dir, dir);
    }
done:
    if (s) export_files_remove_all(&w); /* nothing half-exported stays */
    det_export_meta_free(&mt);
    deft_free(amax);
    deft_onnx_export_info_free(&info);
    deft_onnx_tail_free(tail);
    ssd_model_close(&sm);
    ssd_setup_free(&ss);
    return s;
}

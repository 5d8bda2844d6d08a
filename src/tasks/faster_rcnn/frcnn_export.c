/* frcnn_export.c - `deft faster_rcnn export`: a trained Faster R-CNN as one
 * ONNX graph (detection.md §3 Export) taking the preprocessed, letterboxed
 * image "Input" (NCHW) and giving TAO's NMS layout:
 *   --nms onnx   standard ONNX only: the proposal layer between the RPN and
 *                the crop, crop-and-resize as RoiAlign, the per-class decode
 *                and NMS (frcnn_export_tail.c); runs in onnxruntime and
 *                computes what `deft faster_rcnn inference` computes
 *   --nms trt    (default) TAO's ProposalDynamic / CropAndResizeDynamic /
 *                NMSDynamic_TRT plugin layout for TensorRT
 *                (frcnn_export_trt.c)
 * --data_type int8 adds cal.bin (TensorRT's calibration cache) for every
 * activation of the network, calibrated through the whole two-stage forward
 * (frcnn_export_int8.c), and with --qdq_file the explicitly quantized copy.
 * The spec's inference_config gives the proposal and NMS settings (without
 * -e: inference's defaults). Calibration finishes before the first file is
 * written; a failure leaves no file. */
#include <stdio.h>
#include <string.h>
#include "tasks/common/calib.h"
#include "tasks/common/det_export.h"
#include "tasks/common/det_export_ds.h"
#include "tasks/common/export_files.h"
#include "tasks/faster_rcnn/frcnn_export.h"

/* The shared export flags; faster_rcnn has no --nms none (its NMS is part of
 * the detector) and its --nms onnx crop is RoiAlign with half_pixel (opset 16+). */
static enum deft_status parse_flags(const struct deft_task_args *a, struct det_export_opts *o) {
    const char *nms = deft_task_arg(a, "--nms");
    if (nms && strcmp(nms, "trt") && strcmp(nms, "onnx") && strcmp(nms, "none"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--nms '%s': use trt (TensorRT's ProposalDynamic, "
                              "CropAndResizeDynamic and NMSDynamic_TRT, TAO's layout) or onnx (standard ONNX, "
                              "onnxruntime)", nms);
    enum deft_status s = det_export_parse_flags(a, "ProposalDynamic, CropAndResizeDynamic and NMSDynamic_TRT",
                                                "NvDsInferParseCustomNMSTLT", o);
    if (s) return s;
    if (o->nms == DET_NMS_NONE)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--nms none: faster_rcnn's NMS is part of the detector; use trt "
                              "(TensorRT plugins) or onnx (onnxruntime)");
    if (!deft_task_arg(a, "--opset")) o->opset = 16;
    if (o->nms == DET_NMS_ONNX && o->opset < 16)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--opset %d: --nms onnx writes the crop as RoiAlign with "
                              "half_pixel, opset 16 or 17", o->opset);
    return DEFT_OK;
}

static char *nms_json(enum det_nms_mode m, const struct frcnn_prop_cfg *pc, int rows, const struct frcnn_nms *n) {
    char buf[768];
    snprintf(buf, sizeof buf,
             "{\"mode\":\"%s\",\"rpn_pre_nms_top_N\":%d,\"rpn_nms_max_boxes\":%d,\"rpn_nms_overlap_threshold\":%g,"
             "\"proposal_rows\":%d,\"object_confidence_thres\":%g,\"classifier_nms_overlap_threshold\":%g,"
             "\"classifier_nms_max_boxes\":%d}",
             det_nms_name(m), pc->pre_nms_top_n, pc->max_boxes, (double)pc->nms_iou, rows, (double)n->conf, (double)n->iou,
             n->max_dets);
    return deft_strdup(buf);
}

static const char OUTPUTS_DOC[] =
    "NMS float [N,1,K,7] rows (image, class, score, x1, y1, x2, y2), corners in [0,1] of the network input, best "
    "first, zeros after the count; NMS_1 int32 [N,1,1,1] the count (TAO's NMS layout)";
static const char OUTPUTS_DOC_TRT[] =
    "NMS float [N,1,keepTopK,7] (image_id, label, confidence, x1, y1, x2, y2 in [0,1] of the network input; labels "
    "are the object classes, the background is the last class); NMS_1 int32 [N,1,1,1] detections kept "
    "(TensorRT's ProposalDynamic, CropAndResizeDynamic and NMSDynamic_TRT plugins, TAO's layout)";

/* Settings from the spec's inference_config, or inference's defaults. */
static void settings(const struct frcnn_setup *f, struct frcnn_prop_cfg *pc, struct frcnn_nms *nms) {
    *pc = (struct frcnn_prop_cfg){6000, 300, 0.7f};
    *nms = (struct frcnn_nms){0.0001f, 0.3f, 100};
    if (!f->loaded) return;
    const struct deft_frcnn_inference_config *ic = &f->cfg.inference_config;
    *pc = f->infer_prop;
    *nms = (struct frcnn_nms){(float)ic->object_confidence_thres, (float)ic->classifier_nms_overlap_threshold,
                              ic->classifier_nms_max_boxes > 0 ? ic->classifier_nms_max_boxes : 100};
}

/* The two tails: the host proposal step (mid) and the detections after the head. */
static enum deft_status tails(const struct det_export_opts *o, const struct frcnn_model *fm, int R,
                              const struct frcnn_prop_cfg *pc, const struct frcnn_nms *nms,
                              struct deft_onnx_tail **mid, struct deft_onnx_tail **tail) {
    const char *name[4];
    for (int i = 0; i < 4; i++) name[i] = deft_graph_value(fm->g, fm->out[i])->name;
    enum deft_status s;
    if (o->nms == DET_NMS_TRT)
        return (s = frcnn_export_proposals_trt(fm, pc, name[0], name[1], mid))
                   ? s
                   : frcnn_export_detections_trt(&fm->p, R, nms, name[2], name[3], tail);
    return (s = frcnn_export_proposals(&fm->p, pc, name[0], name[1], mid))
               ? s
               : frcnn_export_detections(&fm->p, R, nms, name[2], name[3], tail);
}

/* OUT.onnx, and with amax (int8) its activation list in info and the --qdq_file copy. */
static enum deft_status write_onnx(const struct deft_task_args *a, const struct det_export_opts *o,
                                   struct frcnn_model *fm, const struct frcnn_prop_cfg *pc,
                                   const struct frcnn_nms *nms, const float *amax, struct deft_onnx_export_info *info,
                                   FILE *out, struct export_files *w) {
    struct deft_graph *g = fm->g;
    bool trt = o->nms == DET_NMS_TRT;
    /* ProposalDynamic always gives post_nms_top_n rows */
    int R = trt ? pc->max_boxes : frcnn_export_rows(&fm->p, pc), N = o->static_batch > 0 ? o->static_batch : 1;
    int K = trt ? nms->max_dets : nms->max_dets < R * fm->n_classes ? nms->max_dets : R * fm->n_classes;
    struct deft_shape in = deft_shape4(N, 3, fm->net_h, fm->net_w);
    struct deft_shape rs = {.ndim = 2, .d = {(int64_t)N * R, 5}};
    enum deft_status s;
    if ((s = deft_graph_reshape_input(g, fm->in_img, &in)) || (s = deft_graph_reshape_input(g, fm->in_rois, &rs)))
        return s;
    struct deft_onnx_tail *mid = NULL, *tail = NULL;
    struct det_export_meta mt = {0};
    if (!(s = tails(o, fm, R, pc, nms, &mid, &tail))) {
        static const char *const keys[] = {"arch", "backbone", "class_names", "num_classes", "faster_rcnn"};
        for (int i = 0; i < 5; i++) det_export_meta_graph(&mt, g, keys[i]);
        if (!(s = det_export_meta_own(&mt, "preprocess", det_export_preprocess_json(&fm->pre))) &&
            !(s = det_export_meta_own(&mt, "letterbox", det_export_letterbox_json(fm->net_w, fm->net_h))) &&
            !(s = det_export_meta_own(&mt, "nms", nms_json(o->nms, pc, R, nms))))
            s = det_export_meta_own(&mt, "outputs", deft_strdup(trt ? OUTPUTS_DOC_TRT : OUTPUTS_DOC));
        struct deft_onnx_export_opts eo = {.opset = o->opset, .dynamic_batch = o->static_batch < 0,
                                           .input_name = "Input", .tail = tail, .mid = mid, .crop_plugin = trt,
                                           .mid_input = fm->in_rois, .meta = mt.kv, .n_meta = mt.n};
        if (!s && !(s = deft_mkdirs_for(a->output_file)) &&
            !(s = deft_onnx_export(a->output_file, g, fm->file->file, &eo, info))) {
            export_files_add(w, a->output_file);
            fprintf(out, "wrote %s: faster_rcnn, input Input [%s,3,%d,%d], %d proposals per image, NMS %s%s "
                    "(NMS [N,1,%d,7], NMS_1), opset %d\n", a->output_file, o->static_batch > 0 ? "" : "batch",
                    fm->net_h, fm->net_w, R, det_nms_name(o->nms),
                    trt ? " (ProposalDynamic, CropAndResizeDynamic, NMSDynamic_TRT: TensorRT only)" : "", K,
                    o->opset);
            if (amax && o->qdq_file && !(s = frcnn_export_qdq(o, fm, &eo, amax))) {
                export_files_add(w, o->qdq_file);
                fprintf(out, "wrote %s (explicit INT8: QuantizeLinear/DequantizeLinear%s)\n", o->qdq_file,
                        o->quantize_head ? ", heads included" : "; the RPN and RCNN head layers and the tails float");
            }
        }
    }
    det_export_meta_free(&mt);
    deft_onnx_tail_free(mid);
    deft_onnx_tail_free(tail);
    return s;
}

/* cal.bin (and --cal_json_file): one range per activation of the network in the ONNX. */
static enum deft_status write_cal(const struct det_export_opts *o, const struct deft_onnx_export_info *info,
                                  const float *amax, const char *cal_path, FILE *out, struct export_files *w) {
    enum deft_status s = task_calib_write_cache(cal_path, o->trt_version, o->calibrator, info, amax);
    if (s) return s;
    export_files_add(w, cal_path);
    fprintf(out, "wrote %s: %s calibration over %d x %d images through both stages (proposals on the host), %d "
            "tensors (the proposal, decode and NMS nodes stay float)\n", cal_path, deft_calibrator_name(o->calibrator),
            o->batches, o->batch_size, info->n);
    if (!o->cal_json) return DEFT_OK;
    if ((s = task_calib_write_json(o->cal_json, info, amax))) return s;
    export_files_add(w, o->cal_json);
    return DEFT_OK;
}

/* --gen_ds_config: labels.txt (background last, as TAO's Faster R-CNN) and nvinfer_config.txt. */
static enum deft_status write_ds(const struct deft_task_args *a, const struct det_export_opts *o,
                                 const struct frcnn_model *fm, const struct frcnn_nms *nms, const char *cal_path,
                                 FILE *out, struct export_files *w) {
    char dir[4200];
    export_dir_of(a->output_file, dir, sizeof dir);
    struct det_ds_opts d = {.dir = dir, .onnx = export_base_of(a->output_file),
                            .cal = o->cal_cache ? cal_path : "cal.bin",
                            .arch = "TAO's Faster R-CNN", .pre = &fm->pre, .net_w = fm->net_w, .net_h = fm->net_h,
                            .classes = (const char *const *)fm->classes, .n_classes = fm->n_classes,
                            .background_first = false, .int8 = o->int8, .fp16 = o->fp16, .conf = nms->conf,
                            .iou = nms->iou, .top_k = nms->max_dets};
    enum deft_status s = det_write_ds(&d, w);
    if (!s) fprintf(out, "wrote %slabels.txt and %snvinfer_config.txt\n", dir, dir);
    if (!s && o->fp16)
        fprintf(out, "note: fp16 is chosen when TensorRT builds the engine (DeepStream network-mode=2); the ONNX "
                "stays fp32\n");
    return s;
}

enum deft_status frcnn_export(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    struct det_export_opts o;
    enum deft_status s = parse_flags(a, &o);
    if (s) return s;
    if (!a->model || !a->output_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    if (a->threads > 0) deft_set_threads(a->threads);
    struct frcnn_setup f = {0};
    struct frcnn_model fm = {0};
    struct frcnn_prop_cfg pc;
    struct frcnn_nms nms;
    struct deft_onnx_export_info info = {0};
    float *amax = NULL;
    if (a->spec && (s = frcnn_setup_load(&f, a))) goto done;
    settings(&f, &pc, &nms);
    if (pc.max_boxes < 1 || nms.max_dets < 1) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "rpn_nms_max_boxes (%d) and classifier_nms_max_boxes (%d) must be "
                           ">= 1", pc.max_boxes, nms.max_dets);
        goto done;
    }
    /* int8: the model runs calibration batches of --batch_size images */
    if ((s = frcnn_model_open(&fm, a->model, o.int8 ? o.batch_size : 1, pc.max_boxes, a))) goto done;
    if (f.loaded && f.n_classes != fm.n_classes) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec has %d", a->model, fm.n_classes,
                           f.n_classes);
        goto done;
    }
    if (o.int8) {
        deft_runtime_free(fm.rt); /* calibration runs its own runtime; export needs none */
        fm.rt = NULL;
        if ((s = frcnn_export_calibrate(&o, &f, &fm, &pc, a, &amax))) goto done; /* before anything is written */
    }
    char dir[4200], cal_path[4200];
    export_dir_of(a->output_file, dir, sizeof dir);
    snprintf(cal_path, sizeof cal_path, "%s%s", o.cal_cache ? "" : dir, o.cal_cache ? o.cal_cache : "cal.bin");
    struct export_files w = {0};
    if (!(s = write_onnx(a, &o, &fm, &pc, &nms, amax, o.int8 ? &info : NULL, out, &w)) && o.int8)
        s = write_cal(&o, &info, amax, cal_path, out, &w);
    if (!s && o.gen_ds) s = write_ds(a, &o, &fm, &nms, cal_path, out, &w);
    if (s) export_files_remove_all(&w); /* nothing half-exported stays */
done:
    deft_free(amax);
    deft_onnx_export_info_free(&info);
    frcnn_model_close(&fm);
    frcnn_setup_free(&f);
    return s;
}

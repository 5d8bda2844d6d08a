/* frcnn_export.c - `deft faster_rcnn export`: a trained Faster R-CNN as one
 * ONNX graph (detection.md §3 Export) taking the preprocessed, letterboxed
 * image "Input" (NCHW) and giving TAO's NMS layout:
 *   --nms onnx   standard ONNX only: the proposal layer between the RPN and
 *                the crop, crop-and-resize as RoiAlign, the per-class decode
 *                and NMS (frcnn_export_tail.c); runs in onnxruntime and
 *                computes what `deft faster_rcnn inference` computes
 *   --nms trt    TAO's ProposalDynamic / CropAndResizeDynamic /
 *                NMSDynamic_TRT plugin layout: not finished (issue 20)
 * The spec's inference_config gives the proposal and NMS settings (without
 * -e: inference's defaults). A failure leaves no file. */
#include <stdio.h>
#include <string.h>
#include "tasks/faster_rcnn/frcnn_export.h"
#include "tasks/faster_rcnn/frcnn_task.h"

struct xopts {
    int opset, static_batch;
};

static enum deft_status parse_flags(const struct deft_task_args *a, struct xopts *o) {
    memset(o, 0, sizeof *o);
    const char *nms = deft_task_arg(a, "--nms"), *dt = deft_task_arg(a, "--data_type");
    if (!nms || !strcmp(nms, "trt"))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "faster_rcnn export --nms trt (TAO's ProposalDynamic, "
                              "CropAndResizeDynamic and NMSDynamic_TRT plugins): %s; use --nms onnx",
                              DEFT_FRCNN_NOT_FINISHED);
    if (strcmp(nms, "onnx"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--nms '%s': use onnx (standard ONNX, onnxruntime) or trt", nms);
    if (dt && strcmp(dt, "fp32") && strcmp(dt, "fp16"))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "faster_rcnn export --data_type %s: %s", dt,
                              DEFT_FRCNN_NOT_FINISHED);
    enum deft_status s;
    if ((s = deft_task_arg_int(a, "--opset", 16, 17, 16, &o->opset)) ||
        (s = deft_task_arg_int(a, "--static_batch_size", -1, 4096, -1, &o->static_batch)))
        return s;
    if (o->static_batch == 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--static_batch_size is -1 (dynamic batch) or a batch size >= 1");
    return DEFT_OK;
}

static char *nms_json(const struct frcnn_prop_cfg *pc, int rows, const struct frcnn_nms *n) {
    char buf[768];
    snprintf(buf, sizeof buf,
             "{\"mode\":\"onnx\",\"rpn_pre_nms_top_N\":%d,\"rpn_nms_max_boxes\":%d,\"rpn_nms_overlap_threshold\":%g,"
             "\"proposal_rows\":%d,\"object_confidence_thres\":%g,\"classifier_nms_overlap_threshold\":%g,"
             "\"classifier_nms_max_boxes\":%d}",
             pc->pre_nms_top_n, pc->max_boxes, (double)pc->nms_iou, rows, (double)n->conf, (double)n->iou,
             n->max_dets);
    return deft_strdup(buf);
}

static const char OUTPUTS_DOC[] =
    "NMS float [N,1,K,7] rows (image, class, score, x1, y1, x2, y2), corners in [0,1] of the network input, best "
    "first, zeros after the count; NMS_1 int32 [N,1,1,1] the count (TAO's NMS layout)";

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

static enum deft_status write_onnx(const struct deft_task_args *a, const struct xopts *o, struct frcnn_model *fm,
                                   const struct frcnn_prop_cfg *pc, const struct frcnn_nms *nms, FILE *out) {
    struct deft_graph *g = fm->g;
    int R = frcnn_export_rows(&fm->p, pc), N = o->static_batch > 0 ? o->static_batch : 1;
    struct deft_shape in = deft_shape4(N, 3, fm->net_h, fm->net_w);
    struct deft_shape rs = {.ndim = 2, .d = {(int64_t)N * R, 5}};
    enum deft_status s;
    if ((s = deft_graph_reshape_input(g, fm->in_img, &in)) || (s = deft_graph_reshape_input(g, fm->in_rois, &rs)))
        return s;
    struct deft_onnx_tail *mid = NULL, *tail = NULL;
    char *nj = NULL;
    const char *name[4];
    for (int i = 0; i < 4; i++) name[i] = deft_graph_value(g, fm->out[i])->name;
    if (!(s = frcnn_export_proposals(&fm->p, pc, name[0], name[1], &mid)) &&
        !(s = frcnn_export_detections(&fm->p, R, nms, name[2], name[3], &tail))) {
        nj = nms_json(pc, R, nms);
        struct deft_kv kv[8];
        int n = 0;
        static const char *const keys[] = {"arch", "backbone", "class_names", "num_classes", "faster_rcnn"};
        for (int i = 0; i < 5; i++) {
            const char *v = deft_graph_get_meta(g, keys[i]);
            if (v) kv[n++] = (struct deft_kv){keys[i], v};
        }
        kv[n++] = (struct deft_kv){"nms", nj ? nj : "{}"};
        kv[n++] = (struct deft_kv){"outputs", OUTPUTS_DOC};
        struct deft_onnx_export_opts eo = {.opset = o->opset, .dynamic_batch = o->static_batch < 0,
                                           .input_name = "Input", .tail = tail, .mid = mid,
                                           .mid_input = fm->in_rois, .meta = kv, .n_meta = n};
        if (!nj) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        if (!s && !(s = deft_mkdirs_for(a->output_file)) &&
            !(s = deft_onnx_export(a->output_file, g, fm->file->file, &eo, NULL)))
            fprintf(out, "wrote %s: faster_rcnn, input Input [%s,3,%d,%d], %d proposals per image, NMS onnx "
                    "(NMS [N,1,%d,7], NMS_1), opset %d\n", a->output_file, o->static_batch > 0 ? "" : "batch",
                    fm->net_h, fm->net_w, R, nms->max_dets < R * fm->n_classes ? nms->max_dets : R * fm->n_classes,
                    o->opset);
    }
    deft_free(nj);
    deft_onnx_tail_free(mid);
    deft_onnx_tail_free(tail);
    return s;
}

enum deft_status frcnn_export(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    struct xopts o;
    enum deft_status s = parse_flags(a, &o);
    if (s) return s;
    if (!a->model || !a->output_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    if (a->threads > 0) deft_set_threads(a->threads);
    struct frcnn_setup f = {0};
    struct frcnn_model fm = {0};
    struct frcnn_prop_cfg pc;
    struct frcnn_nms nms;
    if (a->spec && (s = frcnn_setup_load(&f, a))) goto done;
    settings(&f, &pc, &nms);
    if (pc.max_boxes < 1 || nms.max_dets < 1) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "rpn_nms_max_boxes (%d) and classifier_nms_max_boxes (%d) must be "
                           ">= 1", pc.max_boxes, nms.max_dets);
        goto done;
    }
    if ((s = frcnn_model_open(&fm, a->model, 1, pc.max_boxes, a))) goto done;
    if (f.loaded && f.n_classes != fm.n_classes) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec has %d", a->model, fm.n_classes,
                           f.n_classes);
        goto done;
    }
    s = write_onnx(a, &o, &fm, &pc, &nms, out);
done:
    frcnn_model_close(&fm);
    frcnn_setup_free(&f);
    return s;
}

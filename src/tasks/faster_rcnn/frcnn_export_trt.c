/* frcnn_export_trt.c - `deft faster_rcnn export --nms trt`: TAO's Faster
 * R-CNN plugin layout for TensorRT (OSS plugins):
 *   ProposalDynamic (TensorRT's proposalPlugin fields) on the RPN outputs
 *     [N, A, h, w] (sigmoid) and [N, 4A, h, w] -> rois [N, R, 4, 1], R the
 *     spec's rpn_nms_max_boxes (post_nms_top_n), y1 x1 y2 x2 in [0, 1];
 *   CropAndResizeDynamic (crop_width, crop_height): written by the exporter
 *     in place of the crop node (deft_onnx_export_opts.crop_plugin);
 *   NMSDynamic_TRT "NMS" on TAO's NmsInputs: per class boxes decoded against
 *     the proposals with classifier_regr_std and clipped, normalised,
 *     background (last class) zero, as loc_data with a zero prior (CORNER
 *     code, variance in the target: box = prior + loc), softmax as conf_data.
 * Outputs NMS [N, 1, keepTopK, 7] and NMS_1 [N, 1, 1, 1] (TAO's layout). */
#include <string.h>
#include "tasks/common/det_export_tail.h"
#include "tasks/faster_rcnn/frcnn_export.h"

#define TRT_MAX_TOPK 4096 /* TensorRT's NMS sorts at most 4096 boxes per class */

enum deft_status frcnn_export_proposals_trt(const struct frcnn_model *fm, const struct frcnn_prop_cfg *c,
                                            const char *rpn_cls, const char *rpn_regr, struct deft_onnx_tail **out) {
    *out = NULL;
    if (fm->p.rpn_std != 1.0f)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "--nms trt: ProposalDynamic decodes with an RPN std of 1.0 but "
                              "this model has %g; use --nms onnx", (double)fm->p.rpn_std);
    if (fm->n_scales < 1 || fm->n_ratios < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--nms trt: the model has no anchor scales or ratios");
    struct deft_onnx_tail *t = deft_onnx_tail_create("proposal/");
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    float sizes[64], ratios[64];
    int ns = fm->n_scales < 64 ? fm->n_scales : 64, nr = fm->n_ratios < 64 ? fm->n_ratios : 64;
    for (int i = 0; i < ns; i++) sizes[i] = (float)fm->scales[i];
    for (int i = 0; i < nr; i++) ratios[i] = (float)fm->ratios[i];
    static const char *const outs[1] = {FRCNN_X_TRT_ROIS};
    deft_onnx_tail_node_n(t, "ProposalDynamic", "proposal", (const char *[]){rpn_cls, rpn_regr}, 2, outs, 1);
    deft_onnx_tail_attr_i(t, "input_height", fm->net_h);
    deft_onnx_tail_attr_i(t, "input_width", fm->net_w);
    deft_onnx_tail_attr_i(t, "rpn_stride", fm->net_w / fm->p.fmap_w);
    deft_onnx_tail_attr_f(t, "roi_min_size", 1.0f); /* frcnn_proposals drops boxes under 1 pixel */
    deft_onnx_tail_attr_f(t, "nms_iou_threshold", c->nms_iou);
    deft_onnx_tail_attr_i(t, "pre_nms_top_n", c->pre_nms_top_n);
    deft_onnx_tail_attr_i(t, "post_nms_top_n", c->max_boxes);
    deft_onnx_tail_attr_floats(t, "anchor_sizes", ns, sizes);
    deft_onnx_tail_attr_floats(t, "anchor_ratios", nr, ratios);
    deft_onnx_tail_output(t, FRCNN_X_TRT_ROIS, DEFT_ONNX_FLOAT, 4, (int64_t[]){-1, c->max_boxes, 4, 1});
    enum deft_status s = deft_onnx_tail_status(t);
    if (s) {
        deft_onnx_tail_free(t);
        return s;
    }
    *out = t;
    return DEFT_OK;
}

/* TAO's NmsInputs: loc_data [N, R*(C+1)*4, 1, 1], conf_data [N, R*(C+1), 1, 1]. */
static void nms_inputs(struct deft_onnx_tail *t, const struct frcnn_params *p, int64_t R, const char *cls,
                       const char *regr, const char **loc, const char **conf) {
    int64_t C = p->n_classes;
    const float wh[4] = {(float)p->net_w, (float)p->net_h, (float)p->net_w, (float)p->net_h};
    const float inv[4] = {1.0f / wh[0], 1.0f / wh[1], 1.0f / wh[2], 1.0f / wh[3]};
    const char *r4 = det_tail_reshape(t, FRCNN_X_TRT_ROIS, 3, (int64_t[]){-1, R, 4}); /* y1 x1 y2 x2 */
    const char *xy = det_tail_op2(t, "Gather", r4, det_tail_i64(t, 4, (int64_t[]){1, 0, 3, 2}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 2);
    const char *px = det_tail_op2(t, "Mul", xy, deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){4}, wh),
                                  NULL); /* network pixels */
    const char *ref = det_tail_unsqueeze(t, px, 2);   /* [N, R, 1, 4] */
    const char *lo = det_tail_slice(t, ref, 3, 0, 2), *sz = det_tail_op2(t, "Sub", det_tail_slice(t, ref, 3, 2, 4), lo, NULL);
    const char *ctr = det_tail_op2(t, "Add", lo, det_tail_op2(t, "Mul", det_tail_scalar_f(t, 0.5f), sz, NULL), NULL);
    const char *d = det_tail_reshape(t, regr, 4, (int64_t[]){-1, R, C, 4});
    const char *box = frcnn_tail_clip_boxes(t, frcnn_tail_decode(t, sz, ctr, d, 3, p->regr_std), p->net_w, p->net_h);
    const char *nb = det_tail_op2(t, "Mul", box, deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){4}, inv),
                                  NULL); /* [N, R, C, 4] in [0, 1] */
    const char *bg = det_tail_op2(t, "Mul", det_tail_slice(t, nb, 2, 0, 1), det_tail_scalar_f(t, 0.0f), NULL);
    const char *all = det_tail_concat(t, (const char *[]){nb, bg}, 2, 2, NULL); /* background last */
    *loc = det_tail_op2(t, "Reshape", all, det_tail_i64(t, 4, (int64_t[]){0, R * (C + 1) * 4, 1, 1}), "loc_data");
    const char *prob = det_tail_op1(t, "Softmax", det_tail_reshape(t, cls, 3, (int64_t[]){-1, R, C + 1}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 2);
    *conf = det_tail_op2(t, "Reshape", prob, det_tail_i64(t, 4, (int64_t[]){-1, R * (C + 1), 1, 1}), "conf_data");
}

enum deft_status frcnn_export_detections_trt(const struct frcnn_params *p, int R, const struct frcnn_nms *nms,
                                             const char *cls, const char *regr, struct deft_onnx_tail **out) {
    *out = NULL;
    struct deft_onnx_tail *t = deft_onnx_tail_create("detect/");
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    const char *loc, *conf;
    nms_inputs(t, p, R, cls, regr, &loc, &conf);
    /* priors then variances [1, 2, R*4, 1]: zero boxes (CORNER adds loc), variances 1 */
    float *prior = deft_calloc((size_t)R * 8, sizeof *prior);
    if (!prior) {
        deft_onnx_tail_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 4 * R; i < 8 * R; i++) prior[i] = 1.0f;
    const char *pd = deft_onnx_tail_const(t, "prior_data", DEFT_ONNX_FLOAT, 4, (int64_t[]){1, 2, (int64_t)R * 4, 1},
                                          prior);
    deft_free(prior);
    static const char *const outs[2] = {FRCNN_X_NMS, FRCNN_X_COUNT};
    deft_onnx_tail_node_n(t, "NMSDynamic_TRT", "NMS", (const char *[]){loc, conf, pd}, 3, outs, 2);
    deft_onnx_tail_attr_i(t, "shareLocation", 0);
    deft_onnx_tail_attr_i(t, "varianceEncodedInTarget", 1);
    deft_onnx_tail_attr_i(t, "backgroundLabelId", p->n_classes); /* background last */
    deft_onnx_tail_attr_i(t, "numClasses", p->n_classes + 1);
    deft_onnx_tail_attr_i(t, "topK", R < TRT_MAX_TOPK ? R : TRT_MAX_TOPK);
    deft_onnx_tail_attr_i(t, "keepTopK", nms->max_dets);
    deft_onnx_tail_attr_f(t, "confidenceThreshold", nms->conf);
    deft_onnx_tail_attr_f(t, "nmsThreshold", nms->iou);
    deft_onnx_tail_attr_ints(t, "inputOrder", 3, (int64_t[]){0, 1, 2}); /* loc, conf, priors */
    deft_onnx_tail_attr_i(t, "confSigmoid", 0);
    deft_onnx_tail_attr_i(t, "isNormalized", 1);
    deft_onnx_tail_attr_i(t, "codeType", 1); /* CORNER: the boxes are decoded already */
    deft_onnx_tail_output(t, FRCNN_X_NMS, DEFT_ONNX_FLOAT, 4, (int64_t[]){-1, 1, nms->max_dets, 7});
    deft_onnx_tail_output(t, FRCNN_X_COUNT, DEFT_ONNX_INT32, 4, (int64_t[]){-1, 1, 1, 1});
    enum deft_status s = deft_onnx_tail_status(t);
    if (s) {
        deft_onnx_tail_free(t);
        return s;
    }
    *out = t;
    return DEFT_OK;
}

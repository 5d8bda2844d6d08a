/* frcnn_impl.h (internal) - Faster R-CNN's host steps: RPN targets, the
 * proposal layer, RoI sampling, the four losses and the detections, shared by
 * training, evaluation, inference and the tests. Boxes are corners (x1, y1,
 * x2, y2) in network-input pixels. */
#ifndef DEFT_TASKS_FRCNN_IMPL_H
#define DEFT_TASKS_FRCNN_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include "deft/core.h"

/* The proposal layer's settings (TAO's rpn_pre_nms_top_N, rpn_nms_max_boxes,
 * rpn_nms_overlap_threshold: training_config's or inference/evaluation's). */
struct frcnn_prop_cfg {
    int pre_nms_top_n, max_boxes;
    float nms_iou;
};

struct frcnn_params {
    int net_w, net_h, fmap_w, fmap_h, n_cell_anchors, n_classes; /* n_classes without background */
    const float *anchors;     /* fmap_h * fmap_w * n_cell_anchors boxes (deft_frcnn_anchors' order) */
    long n_anchors;
    float rpn_std;            /* std_scaling: RPN delta weight */
    float regr_std[4];        /* classifier_regr_std x, y, w, h */
    float rpn_min_overlap, rpn_max_overlap;
    int rpn_mini_batch;
    float cls_min_overlap, cls_max_overlap;
    int rois_per_image;       /* roi_mini_batch */
    bool gt_as_roi;
    double lambda_rpn_class, lambda_rpn_regr, lambda_cls_class, lambda_cls_regr;
};

/* TAO's sampling: at most this fraction of the sampled RoIs are positives. */
#define FRCNN_ROI_POSITIVE_RATIO 0.25

/* RPN targets of one image: label[i] 1 (object), 0 (background) or -1 (not
 * sampled) for every anchor, deltas[4i..] the encoded box of a positive.
 * Positive: IoU >= rpn_max_overlap, or the best anchor of a ground-truth box;
 * negative: best IoU < rpn_min_overlap; then rpn_mini_batch sampled, at most
 * half positive (draws: deft_rng_u64(seed, stream, ...)). */
enum deft_status frcnn_rpn_targets(const struct frcnn_params *p, const float *gt, int n_gt, uint64_t seed,
                                   uint64_t stream, int8_t *label, float *deltas);

/* The proposal layer of one image: objectness logits cls [A, h, w] and deltas
 * regr [4A, h, w] -> boxes decoded (weights rpn_std), clipped to the input,
 * boxes under 1 pixel dropped, the pre_nms_top_n best, NMS (torchvision's),
 * the max_boxes best kept: out (room for max_boxes * 4 floats), *n. scores
 * (room for max_boxes, may be NULL) gets their sigmoid. */
enum deft_status frcnn_proposals(const struct frcnn_params *p, const struct frcnn_prop_cfg *c, const float *cls,
                                 const float *regr, float *out, float *scores, int *n);

/* RoI sampling of one image (TAO's proposal target): candidates = the
 * proposals (and the ground truth with gt_as_roi); best IoU >=
 * cls_max_overlap: the box's class, in [cls_min_overlap, max): background
 * (label n_classes), below: not used. rois_per_image drawn, at most
 * FRCNN_ROI_POSITIVE_RATIO positive, repeated when too few: rois (4 per row),
 * label, deltas (4 per row, weights regr_std; positives only). */
enum deft_status frcnn_sample_rois(const struct frcnn_params *p, const float *props, int n_props, const float *gt,
                                   const int *gt_cls, int n_gt, uint64_t seed, uint64_t stream, float *rois,
                                   int *label, float *deltas);

/* The targets of a batch for the loss. */
struct frcnn_targets {
    int batch;
    int8_t *rpn_label;        /* [batch * n_anchors] */
    float *rpn_deltas;        /* [batch * n_anchors * 4] */
    int *roi_label;           /* [batch * rois_per_image] */
    float *roi_deltas;        /* [batch * rois_per_image * 4] */
};

struct frcnn_loss_terms {
    double rpn_class, rpn_regr, cls_class, cls_regr, total;
};

/* TAO's four losses on the outputs of a batch, lambdas applied:
 *   rpn_class: sigmoid BCE over the sampled anchors / their count
 *   rpn_regr:  smooth L1 (sigma 3) over the positives' 4 deltas / (4 x positives)
 *   cls_class: softmax CE over the RoIs / their count
 *   cls_regr:  smooth L1 (sigma 1) over the positives' deltas of their class / (4 x positives)
 * (a count of 0 divides by 1). grads (4 arrays shaped as the outputs) may be
 * NULL; when given they receive d(total)/d(output). */
enum deft_status frcnn_loss(const struct frcnn_params *p, const struct frcnn_targets *t, const float *const *outs,
                            float *const *grads, struct frcnn_loss_terms *terms);

/* Detections of one image from its RoIs' outputs (cls logits [n, C+1], regr
 * [n, 4C]): per class and RoI with softmax score >= conf, the RoI decoded with
 * regr_std, clipped to the input; NMS per class at nms_iou (torchvision's
 * batched_nms), the max_dets best. Boxes are deft_box in network pixels
 * (*boxes deft_malloc'ed). */
struct deft_box;
enum deft_status frcnn_detect(const struct frcnn_params *p, const float *cls, const float *regr, const float *rois,
                              int n, float conf, float nms_iou, int max_dets, struct deft_box **boxes, int *n_boxes);

/* IoU of corners a and b (no +1), 0 when they do not overlap. */
static inline float frcnn_iou(const float *a, const float *b) {
    float iw = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    float ih = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    float in = iw * ih, u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - in;
    return u > 0 ? in / u : 0;
}

#endif

/* deft/det_ops.h - detection building blocks with a PyTorch/TAO peer each:
 * torchvision's NMS and batched NMS, box coding (Faster R-CNN / torchvision
 * BoxCoder, SSD centre-size with variances) and SSD hard-negative mining.
 *
 * Boxes are corners (x1, y1, x2, y2), 4 floats per box, row-major. These are
 * host functions on float arrays (post-processing and target generation run
 * on the CPU, as in TAO and torchvision); arithmetic is float, in the peers'
 * order, so results match them to the last bit where they are deterministic.
 *
 * deft_nms_per_class (deft/yolo.h) is TF's combined NMS that TAO's exports
 * use (corners put in order, empty boxes overlap nothing, top-k, clipping);
 * deft_nms_tv / deft_batched_nms_tv are torchvision.ops.nms / batched_nms.
 */
#ifndef DEFT_DET_OPS_H
#define DEFT_DET_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* torchvision.ops.nms: boxes by descending score (equal scores: lower index
 * first, torchvision's stable sort), a box is dropped when its IoU with a kept
 * one is > iou_threshold (IoU = inter / (area_a + area_b - inter) in float,
 * corners taken as given: a box with x2 < x1 has a negative area; 0/0 is NaN,
 * which suppresses nothing). keep[] (room for n) gets the kept indices in that
 * order, *n_keep their count. */
DEFT_API DEFT_NODISCARD enum deft_status deft_nms_tv(const float *boxes, const float *scores, int n,
                                                    double iou_threshold, int *keep, int *n_keep);
/* torchvision.ops.batched_nms: NMS within each class (classes[i] >= 0) only.
 * Up to 4000 boxes it is torchvision's coordinate trick to the bit (every box
 * shifted by class * (max coordinate + 1) in float, one NMS); above, NMS per
 * class, kept indices merged by descending score (ties: lower index first). */
DEFT_API DEFT_NODISCARD enum deft_status deft_batched_nms_tv(const float *boxes, const float *scores,
                                                            const int *classes, int n, double iou_threshold,
                                                            int *keep, int *n_keep);

/* ---- box coding (box_coding.c) ----
 * Faster R-CNN / torchvision BoxCoder with weights (wx, wy, ww, wh): TAO's
 * classifier_regr_std (10, 10, 5, 5) are these weights (RPN: 1, 1, 1, 1).
 *   encode: dx = wx (gcx - acx) / aw, dy = wy (gcy - acy) / ah,
 *           dw = ww log(gw / aw),    dh = wh log(gh / ah)      (w = x2 - x1)
 *   decode: dw, dh clamped to at most `clip` (torchvision: log(1000/16)),
 *           cx = dx / wx * aw + acx, w = exp(dw / ww) * aw, corners cx -+ w/2. */
#define DEFT_BBOX_XFORM_CLIP 4.135166556742356f /* log(1000 / 16) */
DEFT_API void deft_box_encode(const float weights[4], const float *gt, const float *anchors, int n,
                              float *deltas);
DEFT_API void deft_box_decode(const float weights[4], float clip, const float *deltas, const float *anchors,
                              int n, float *boxes);
/* SSD (TAO's encoder, centre-size with variances):
 *   encode: (gcx - acx) / aw / v0, (gcy - acy) / ah / v1, log(gw / aw) / v2, log(gh / ah) / v3
 *   decode: cx = d0 v0 aw + acx, w = exp(d2 v2) aw (no clamp, as TAO). */
DEFT_API void deft_ssd_encode(const float variances[4], const float *gt, const float *anchors, int n,
                              float *deltas);
DEFT_API void deft_ssd_decode(const float variances[4], const float *deltas, const float *anchors, int n,
                              float *boxes);

/* ---- SSD hard-negative mining (hard_negatives.c) ----
 * loss[b * n_boxes + i]: the classification loss of prior i of image b;
 * label: 1 positive, 0 negative (background), -1 ignored. mask gets 1 for
 * every positive and every kept negative.
 *   per image (batch_wide false, torchvision's SSD compute_loss): image b keeps
 *     its neg_pos_ratio * n_pos(b) highest-loss negatives (all, if fewer;
 *     none without positives; ignored priors are never negatives);
 *   batch wide (true, TAO's SSD loss): k = min(max(neg_pos_ratio * n_pos over
 *     the batch, n_neg_min), negatives with a nonzero loss) highest-loss
 *     negatives over the whole batch; n_neg_min keeps negatives in a batch
 *     without positives.
 * Equal losses: lower index first (tf.nn.top_k's order). */
struct deft_hnm_opts {
    float neg_pos_ratio; /* 3 in torchvision and TAO */
    int n_neg_min;       /* batch wide only */
    bool batch_wide;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_hard_negatives(const float *loss, const int8_t *label, int batch,
                                                            int n_boxes, const struct deft_hnm_opts *o,
                                                            uint8_t *mask);

#ifdef __cplusplus
}
#endif
#endif

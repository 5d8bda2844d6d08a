/* deft/yolo.h - YOLOv4 / YOLOv4-tiny target matching, loss (value and
 * gradient), decoding and per-class NMS, with TAO's semantics
 * (../shared/reference/detection.md §2). Plain C over host buffers: the
 * trainer calls deft_yolo_loss() as a host callback on the raw head outputs.
 *
 * Head output layout: head i is float [batch, A_i*(5+C), gh, gw] (NCHW);
 * channel a*(5+C)+k holds, for anchor a, k = 0 tx, 1 ty, 2 tw, 3 th,
 * 4 objectness logit, 5.. class logits. Heads are given big (stride 32)
 * first, then mid (16), then small (8); YOLOv4-tiny has two heads.
 *
 * Coordinates are normalised to the network input: a box x1 y1 x2 y2 in
 * [0, 1] (the loader letterboxes), anchors (w, h) are TAO's pixel anchors
 * divided by the output width / height.
 *
 *     struct deft_yolo_head heads[3] = {{13, 13, 3, big, 0.05f}, ...};
 *     struct deft_yolo_loss_config cfg = deft_yolo_loss_config_default(n_classes);
 *     struct deft_yolo_loss_terms t;
 *     deft_yolo_loss(&cfg, heads, 3, batch, outs, gt, n_gt, grads, &t);
 *     deft_yolo_decode(heads, 3, n_classes, outs, b, 0.001f, &boxes, &n);
 *     deft_nms_per_class(boxes, n, 0.5f, 200, 200, true, &n);
 *
 * Every function is thread-safe (no globals) and uses O(anchors) memory.
 */
#ifndef DEFT_YOLO_H
#define DEFT_YOLO_H

#include <stdbool.h>
#include "deft/core.h"
#include "deft/detection.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One output head. */
struct deft_yolo_head {
    int gh, gw;             /* grid rows and columns (input size / stride) */
    int n_anchors;          /* A */
    const float *anchors;   /* [A][2]: (w, h) normalised to the network input */
    float xy_extend;        /* TAO's *_grid_xy_extend: xy = sigmoid(t)*s - (s-1)/2, s = 1 + e */
};

/* The loss settings (yolov4_config, class_weighting_config). */
struct deft_yolo_loss_config {
    int n_classes;
    float box_matching_iou;     /* anchors with shape IoU > this also take the GT (TAO 0.25) */
    float neutral_box_iou;      /* matching_neutral_box_iou: predictions whose decoded box has
                                   IoU >= this with a GT are neither positive nor negative */
    float loc_weight;           /* loss_loc_weight */
    float neg_obj_weight;       /* loss_neg_obj_weights */
    float cls_weight;           /* loss_class_weights */
    float label_smoothing;      /* s: targets y(1-s) + s/2 (objectness and classes) */
    float focal_alpha, focal_gamma; /* focal BCE only when both > 0 */
    const float *class_weights; /* [n_classes] (class_weighting_config), NULL = all 1 */
};

/* The loss, each term already multiplied by its weight and averaged over the
 * batch, so total = loc + obj + noobj + cls. n_pos / n_neg: counts over the
 * batch (for logs). */
struct deft_yolo_loss_terms {
    double loc, obj, noobj, cls, total;
    long n_pos, n_neg;
};

/* TAO's defaults: matching 0.25, neutral 0.5, weights 1, no smoothing, no focal. */
DEFT_API struct deft_yolo_loss_config deft_yolo_loss_config_default(int n_classes);

/* Number of prediction slots (sum of A*gh*gw) of the heads. Slot order:
 * head, then anchor, then row, then column (the NCHW plane order). */
DEFT_API long deft_yolo_n_slots(const struct deft_yolo_head *heads, int n_heads);

/* TAO's matching for one image: assign[slot] = index of the GT the slot
 * predicts, or -1. Shape-only IoU (both boxes centred at the origin) against
 * every anchor of every head; each anchor with IoU > match_iou takes the GT
 * in the cell of its head holding the GT centre, competing GTs -> higher IoU
 * wins (the earlier GT on a tie); then each GT's best anchor (first on a
 * tie) takes it unconditionally - when two GTs share a best slot the later
 * one wins, as in TAO's encoder. GTs with a non-finite coordinate or w or
 * h <= 0 are skipped. assign has deft_yolo_n_slots() entries. */
DEFT_API DEFT_NODISCARD enum deft_status deft_yolo_match(const struct deft_yolo_head *heads,
                                                        int n_heads, float match_iou,
                                                        const struct deft_box *gt, int n_gt,
                                                        int *assign);

/* The loss over a batch. outs[i]: head i's raw output (layout above); gt[b],
 * n_gt[b]: image b's ground truth (normalised x1y1x2y2, cls; difficult boxes
 * are used as given: filter them before when include_difficult_in_training
 * is off). grads: NULL for the value only, else grads[i] receives
 * d(total)/d(outs[i]) (same layout, overwritten). terms may be NULL. */
DEFT_API DEFT_NODISCARD enum deft_status
deft_yolo_loss(const struct deft_yolo_loss_config *cfg, const struct deft_yolo_head *heads,
               int n_heads, int batch, const float *const *outs,
               const struct deft_box *const *gt, const int *n_gt, float *const *grads,
               struct deft_yolo_loss_terms *terms);

/* Decode image b of the batch: one candidate per (slot, class) with score =
 * sigmoid(obj)*sigmoid(cls) > conf_threshold (TAO's multi-label scores), box
 * normalised x1y1x2y2 (unclipped), cls, score; difficult false. *boxes is
 * allocated (deft_free it; NULL when *n_boxes is 0). Candidates come in slot
 * order, classes ascending within a slot. */
DEFT_API DEFT_NODISCARD enum deft_status deft_yolo_decode(const struct deft_yolo_head *heads,
                                                         int n_heads, int n_classes,
                                                         const float *const *outs, int b,
                                                         float conf_threshold,
                                                         struct deft_box **boxes, int *n_boxes);

/* Per-class greedy NMS in place (TF's combined_non_max_suppression, which
 * TAO's nms_config drives): within each class, boxes by descending score
 * (input order on ties) suppress later ones with IoU > iou_threshold; at most
 * top_k_per_class kept per class; then all kept boxes sorted by descending
 * score (class, then input order on ties), cut to top_k_total, and clipped to
 * [0, 1] when clip. A top_k <= 0 means no limit. *n_out <= n. */
DEFT_API DEFT_NODISCARD enum deft_status deft_nms_per_class(struct deft_box *boxes, int n,
                                                           float iou_threshold,
                                                           int top_k_per_class, int top_k_total,
                                                           bool clip, int *n_out);

#ifdef __cplusplus
}
#endif
#endif

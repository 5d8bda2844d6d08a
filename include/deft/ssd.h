/* deft/ssd.h - TAO's SSD targets, loss and decoding on the network's raw
 * outputs (include/deft/ssd_model.h), host side.
 *
 *     struct deft_ssd_map maps[6] = {{38, 38, 6}, ...};        // from the spec's layers
 *     struct deft_ssd_loss_config c = deft_ssd_loss_config_default();
 *     struct deft_ssd_loss_terms t;
 *     deft_ssd_loss(&c, maps, 6, n_classes, priors, batch, outs, gt, n_gt, grads, &t);
 *     deft_ssd_decode(maps, 6, n_classes, outs, b, priors, 0.01f, &boxes, &n);
 *
 * Classes: n_classes counts the background, class 0 (TAO's n_classes); a
 * ground-truth box's cls k (0-based object class) is network class k + 1 and
 * a detection's cls is the object class again. Priors: deft_ssd_priors' 8
 * floats each (x1 y1 x2 y2 normalised to the input, then the 4 variances),
 * ground truth normalised the same way (the loader's boxes).
 *
 * Matching (TAO's SSDInputEncoder): IoU of every ground truth with every prior;
 * bipartite first - repeatedly the highest IoU pair of a still unmatched
 * ground truth and prior (ties: lower ground truth, then lower prior) - so
 * every box has a prior; then every other prior takes the ground truth of
 * its highest IoU when that is >= pos_iou; priors left whose highest IoU is
 * >= neg_iou are neutral (out of the loss), the rest background.
 * Targets: deft_ssd_encode (centre-size with the prior's variances).
 *
 * Loss (TAO's SSDLoss): per prior the softmax cross-entropy with the
 * probability clamped at 1e-15 (no gradient below) and the smooth-L1 of the 4
 * offsets (|d| < 1: d^2/2, else |d| - 1/2); hard negatives batch-wide
 * (deft_hard_negatives: k = min(max(neg_pos_ratio * n_pos, n_neg_min),
 * negatives with a nonzero loss)); total = (sum CE over positives and kept
 * negatives + alpha * sum smooth-L1 over positives) / max(1, n_pos), n_pos
 * over the whole batch. terms: cls (the CE part) + loc (alpha included) = total.
 */
#ifndef DEFT_SSD_H
#define DEFT_SSD_H

#include <stdint.h>
#include "deft/core.h"
#include "deft/detection.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_ssd_map {
    int h, w, boxes;  /* feature map size, priors per cell */
};
DEFT_API long deft_ssd_map_priors(const struct deft_ssd_map *m, int n_maps);

/* Image b's outputs in prior order: conf [P, n_classes] logits, loc [P, 4].
 * outs: conf_0..conf_{n-1}, loc_0..loc_{n-1}, each [batch, boxes*K, h, w]. */
DEFT_API void deft_ssd_gather(const struct deft_ssd_map *m, int n_maps, int n_classes, const float *const *outs,
                              int b, float *conf, float *loc);

/* The inverse of deft_ssd_gather: image b's rows (either may be NULL) into the outputs. */
DEFT_API void deft_ssd_scatter(const struct deft_ssd_map *m, int n_maps, int n_classes, const float *conf,
                               const float *loc, int b, float *const *outs);

/* label[P]: -1 neutral, 0 background, k + 1 matched to a box of class k;
 * target[P*4] the encoded offsets of the positives (others 0). Degenerate
 * boxes (w or h <= 0) are skipped. */
DEFT_API DEFT_NODISCARD enum deft_status deft_ssd_match(const float *priors, long n_priors, const struct deft_box *gt,
                                                       int n_gt, float pos_iou, float neg_iou, int *label,
                                                       float *target);

struct deft_ssd_loss_config {
    float alpha;          /* 1 */
    float neg_pos_ratio;  /* 3 */
    int n_neg_min;        /* 0 */
    float pos_iou;        /* 0.5 */
    float neg_iou;        /* 0.5 */
};
DEFT_API struct deft_ssd_loss_config deft_ssd_loss_config_default(void);

struct deft_ssd_loss_terms {
    double total, cls, loc;
    long n_pos, n_neg, n_neutral;
};

/* grads (may be NULL): d total / d output, same layout as outs. */
DEFT_API DEFT_NODISCARD enum deft_status deft_ssd_loss(const struct deft_ssd_loss_config *c,
                                                      const struct deft_ssd_map *m, int n_maps, int n_classes,
                                                      const float *priors, int batch, const float *const *outs,
                                                      const struct deft_box *const *gt, const int *n_gt,
                                                      float *const *grads, struct deft_ssd_loss_terms *t);

/* Image b's candidates: softmax, then for every prior and object class with
 * probability >= conf_threshold a box (decoded with deft_ssd_decode, corners
 * normalised, not clipped), in prior order, classes ascending. *boxes is
 * deft_malloc'ed (NULL when *n is 0); deft_nms_per_class finishes the job. */
DEFT_API DEFT_NODISCARD enum deft_status deft_ssd_decode_image(const struct deft_ssd_map *m, int n_maps,
                                                              int n_classes, const float *const *outs, int b,
                                                              const float *priors, float conf_threshold,
                                                              struct deft_box **boxes, int *n);

/* ---- RetinaNet (TAO's cv/retinanet), on the same outputs, maps and priors ----
 *
 * Matching: deft_ssd_match with pos_iou / neg_iou (TAO: 0.5 / 0.4).
 * Loss (TAO's FocalLoss): per non-neutral prior and object class k = 1..K-1
 * (the background column gets no loss, as in TAO) the sigmoid focal loss of
 * logit z with target y = (label == k): p = sigmoid(z), p_t = y ? p : 1 - p,
 * -a_t (1 - p_t)^gamma log(max(p_t, 1e-18)), a_t = y ? alpha : 1 - alpha
 * (torchvision.ops.sigmoid_focal_loss, with TAO's clamp); plus loc_weight *
 * smooth-L1 over the positives; both over max(1, n_pos) of the batch.
 * terms: cls + loc (loc_weight included) = total; n_neg counts the background
 * priors (all of them enter the loss). */
struct deft_retinanet_loss_config {
    float loc_weight;     /* 1 */
    float alpha, gamma;   /* 0.25, 2 */
    float pos_iou;        /* 0.5 */
    float neg_iou;        /* 0.4 */
};
DEFT_API struct deft_retinanet_loss_config deft_retinanet_loss_config_default(void);
DEFT_API DEFT_NODISCARD enum deft_status deft_retinanet_loss(const struct deft_retinanet_loss_config *c,
                                                            const struct deft_ssd_map *m, int n_maps, int n_classes,
                                                            const float *priors, int batch, const float *const *outs,
                                                            const struct deft_box *const *gt, const int *n_gt,
                                                            float *const *grads, struct deft_ssd_loss_terms *t);
/* deft_ssd_decode_image with sigmoid class scores (each object class on its own). */
DEFT_API DEFT_NODISCARD enum deft_status deft_retinanet_decode_image(const struct deft_ssd_map *m, int n_maps,
                                                                    int n_classes, const float *const *outs, int b,
                                                                    const float *priors, float conf_threshold,
                                                                    struct deft_box **boxes, int *n);

#ifdef __cplusplus
}
#endif
#endif

/* deft/det_priors.h - the fixed boxes two-stage and single-shot detectors
 * predict offsets from, as pure functions of the spec and the feature-map
 * sizes, and the check that every ground-truth box can be matched by one.
 *
 *     // Faster R-CNN (TAO): scale x ratio at every stride-16 cell
 *     double sc[] = {64, 128, 256}, ra[] = {1, 0.5, 2};
 *     long n = deft_frcnn_anchor_count(3, 3, 24, 78);
 *     float *a = malloc(n * 4 * sizeof *a);
 *     deft_frcnn_anchors(sc, 3, ra, 3, 16, 24, 78, a, n, &n);   // x1 y1 x2 y2, input pixels
 *
 *     // SSD (TAO's AnchorBoxes layer): one struct per predictor layer
 *     struct deft_ssd_layer_params L[6] = {...};
 *     long m = deft_ssd_prior_count(L, 6, true);
 *     float *p = malloc(m * 8 * sizeof *p);
 *     deft_ssd_priors(L, 6, 300, 300, true, false, var, p, m, &m); // x1 y1 x2 y2 (0-1), 4 variances
 *
 * Definitions (../shared/reference/detection.md §3, §5):
 *  - Faster R-CNN: w = s*sqrt(r), h = s/sqrt(r), centred at stride*(i + 0.5);
 *    order row, column, scale, ratio (TAO's make_anchors: scales outer).
 *  - SSD, per layer: size = min(img_w, img_h); aspect 1: w = h = scale*size
 *    and, with two_boxes_for_ar1, a second box sqrt(scale*next_scale)*size;
 *    aspect a: w = scale*size*sqrt(a), h = scale*size/sqrt(a), in the
 *    order the aspects are written; centres (offset + i)*step with step =
 *    img/fmap unless given; clip_boxes: a coordinate >= the image side
 *    becomes side - 1 and one < 0 becomes 0 (TAO's rule, in pixels); then
 *    normalised by the image width/height; order row, column, box.
 * Everything here is arithmetic on its arguments: no allocation, no I/O.
 */
#ifndef DEFT_DET_PRIORS_H
#define DEFT_DET_PRIORS_H

#include <stdbool.h>
#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

DEFT_API long deft_frcnn_anchor_count(int n_scales, int n_ratios, int fmap_h, int fmap_w);
/* Anchors in input pixels into out (4 floats each, cap anchors room); *n the
 * count. DEFT_ERR_INVALID_ARG on a non-positive size, ratio, stride or map,
 * or too little room. */
DEFT_API DEFT_NODISCARD enum deft_status deft_frcnn_anchors(const double *scales, int n_scales, const double *ratios,
                                                           int n_ratios, int stride, int fmap_h, int fmap_w,
                                                           float *out, long cap, long *n);

struct deft_ssd_layer_params {
    int fmap_h, fmap_w;          /* predictor feature-map size */
    double scale, next_scale;    /* fractions of min(img_w, img_h) */
    const double *ar;            /* aspect ratios (w/h) of this layer, in order */
    int n_ar;
    double step_h, step_w;       /* pixels between centres; <= 0: img / fmap */
    double offset_h, offset_w;   /* first centre, as a fraction of the step */
    int n_octaves;               /* RetinaNet's n_anchor_levels (0 or 1: SSD): every box again at
                                    2^(j/n) times its size, j = 0..n-1, sub-octave outer (0..8) */
};

/* Boxes per cell: the aspects, plus one when 1 is among them and two_boxes_for_ar1
 * (RetinaNet: times n_octaves). */
DEFT_API int deft_ssd_boxes_per_cell(const double *ar, int n_ar, bool two_boxes_for_ar1);
DEFT_API long deft_ssd_prior_count(const struct deft_ssd_layer_params *layers, int n_layers, bool two_boxes_for_ar1);
/* Priors of every layer, in layer order: 8 floats each (x1, y1, x2, y2
 * normalised to the input, then the 4 variances). */
DEFT_API DEFT_NODISCARD enum deft_status deft_ssd_priors(const struct deft_ssd_layer_params *layers, int n_layers,
                                                        int img_w, int img_h, bool two_boxes_for_ar1,
                                                        bool clip_boxes, const double variances[4], float *out,
                                                        long cap, long *n);

/* For each ground-truth box gt[g] (x1 y1 x2 y2, same units as the anchors,
 * which are `stride` floats apart), best_iou[g] = the highest IoU over the
 * anchors; returns how many are below pos_iou (no positive match there). */
DEFT_API long deft_det_best_anchor_iou(const float *anchors, long n_anchors, int stride, const float *gt, long n_gt,
                                      float pos_iou, float *best_iou);

#ifdef __cplusplus
}
#endif
#endif

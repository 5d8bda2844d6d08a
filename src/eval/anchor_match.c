/* anchor_match.c - can every ground-truth box be matched by an anchor or
 * prior at the positive IoU threshold? (deft/det_priors.h) A box that no
 * anchor reaches only trains through the forced best-anchor rule, and boxes
 * of that size are in practice never detected: the spec check says which. */
#include "deft/det_priors.h"

static float iou(const float *a, const float *b) {
    float iw = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    float ih = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    float in = iw * ih, u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - in;
    return u > 0 ? in / u : 0;
}

long deft_det_best_anchor_iou(const float *anchors, long n_anchors, int stride, const float *gt, long n_gt,
                              float pos_iou, float *best_iou) {
    long below = 0;
    for (long g = 0; g < n_gt; g++) {
        float best = 0;
        for (long k = 0; k < n_anchors; k++) {
            float v = iou(anchors + k * stride, gt + 4 * g);
            if (v > best) best = v;
        }
        best_iou[g] = best;
        below += best < pos_iou;
    }
    return below;
}

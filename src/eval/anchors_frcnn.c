/* anchors_frcnn.c - Faster R-CNN's RPN anchors (deft/det_priors.h): every
 * scale x ratio pair at every cell of the stride-16 map, TAO's definition. */
#include <math.h>
#include "deft/det_priors.h"

long deft_frcnn_anchor_count(int n_scales, int n_ratios, int fmap_h, int fmap_w) {
    if (n_scales <= 0 || n_ratios <= 0 || fmap_h <= 0 || fmap_w <= 0) return 0;
    return (long)n_scales * n_ratios * fmap_h * fmap_w;
}

enum deft_status deft_frcnn_anchors(const double *scales, int n_scales, const double *ratios, int n_ratios,
                                    int stride, int fmap_h, int fmap_w, float *out, long cap, long *n) {
    *n = 0;
    long need = deft_frcnn_anchor_count(n_scales, n_ratios, fmap_h, fmap_w);
    if (need == 0 || stride <= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "anchors: %d scales, %d ratios, map %dx%d, stride %d: all must be > 0",
                              n_scales, n_ratios, fmap_h, fmap_w, stride);
    if (cap < need) return deft_set_error(DEFT_ERR_INVALID_ARG, "anchors: room for %ld, need %ld", cap, need);
    for (int i = 0; i < n_scales; i++)
        if (!(scales[i] > 0)) return deft_set_error(DEFT_ERR_INVALID_ARG, "anchors: scale %g is not > 0", scales[i]);
    for (int i = 0; i < n_ratios; i++)
        if (!(ratios[i] > 0)) return deft_set_error(DEFT_ERR_INVALID_ARG, "anchors: ratio %g is not > 0", ratios[i]);
    float *o = out;
    for (int y = 0; y < fmap_h; y++)
        for (int x = 0; x < fmap_w; x++) {
            double cx = stride * (x + 0.5), cy = stride * (y + 0.5);
            for (int s = 0; s < n_scales; s++)
                for (int r = 0; r < n_ratios; r++) {
                    double q = sqrt(ratios[r]), w = scales[s] * q, h = scales[s] / q;
                    *o++ = (float)(cx - w / 2);
                    *o++ = (float)(cy - h / 2);
                    *o++ = (float)(cx + w / 2);
                    *o++ = (float)(cy + h / 2);
                }
        }
    *n = need;
    return DEFT_OK;
}

/* box_coding.c - box regression targets and their inverse: torchvision's
 * BoxCoder (Faster R-CNN, TAO's classifier_regr_std as weights) and TAO's SSD
 * centre-size coding with variances. Float arithmetic in the peers' order. */
#include <math.h>
#include "deft/det_ops.h"

struct csz { float cx, cy, w, h; };

static struct csz centre(const float *b) {
    float w = b[2] - b[0], h = b[3] - b[1];
    return (struct csz){b[0] + 0.5f * w, b[1] + 0.5f * h, w, h};
}

static void corners(float cx, float cy, float w, float h, float *out) {
    float hw = 0.5f * w, hh = 0.5f * h;
    out[0] = cx - hw, out[1] = cy - hh, out[2] = cx + hw, out[3] = cy + hh;
}

void deft_box_encode(const float wt[4], const float *gt, const float *anchors, int n, float *d) {
    for (int i = 0; i < n; i++) {
        struct csz a = centre(anchors + 4 * (size_t)i), g = centre(gt + 4 * (size_t)i);
        float *o = d + 4 * (size_t)i;
        o[0] = wt[0] * (g.cx - a.cx) / a.w;
        o[1] = wt[1] * (g.cy - a.cy) / a.h;
        o[2] = wt[2] * logf(g.w / a.w);
        o[3] = wt[3] * logf(g.h / a.h);
    }
}

void deft_box_decode(const float wt[4], float clip, const float *d, const float *anchors, int n, float *boxes) {
    for (int i = 0; i < n; i++) {
        struct csz a = centre(anchors + 4 * (size_t)i);
        const float *r = d + 4 * (size_t)i;
        float dx = r[0] / wt[0], dy = r[1] / wt[1], dw = r[2] / wt[2], dh = r[3] / wt[3];
        dw = fminf(dw, clip), dh = fminf(dh, clip); /* torch.clamp(max=): NaN stays NaN */
        if (isnan(r[2] / wt[2])) dw = NAN;
        if (isnan(r[3] / wt[3])) dh = NAN;
        corners(dx * a.w + a.cx, dy * a.h + a.cy, expf(dw) * a.w, expf(dh) * a.h, boxes + 4 * (size_t)i);
    }
}

void deft_ssd_encode(const float v[4], const float *gt, const float *anchors, int n, float *d) {
    for (int i = 0; i < n; i++) {
        struct csz a = centre(anchors + 4 * (size_t)i), g = centre(gt + 4 * (size_t)i);
        float *o = d + 4 * (size_t)i;
        o[0] = (g.cx - a.cx) / a.w / v[0];
        o[1] = (g.cy - a.cy) / a.h / v[1];
        o[2] = logf(g.w / a.w) / v[2];
        o[3] = logf(g.h / a.h) / v[3];
    }
}

void deft_ssd_decode(const float v[4], const float *d, const float *anchors, int n, float *boxes) {
    for (int i = 0; i < n; i++) {
        struct csz a = centre(anchors + 4 * (size_t)i);
        const float *r = d + 4 * (size_t)i;
        corners(r[0] * v[0] * a.w + a.cx, r[1] * v[1] * a.h + a.cy, expf(r[2] * v[2]) * a.w,
                expf(r[3] * v[3]) * a.h, boxes + 4 * (size_t)i);
    }
}

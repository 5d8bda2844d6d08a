/* roi_align.h (internal) - the sampling geometry of DEFT_OP_ROI_ALIGN, shared
 * by the backends so that every one of them samples the same points with the
 * same bilinear weights (semantics: struct deft_roi_attr in deft/graph.h).
 *
 * Coordinates are float as in torchvision's CPU kernel (T = float) and in
 * TF's crop_and_resize, so that the number of adaptive samples, ceil(roi /
 * bins), and the sample points are the peers' own; only the sums may be
 * accumulated in higher precision. */
#ifndef DEFT_BACKEND_ROI_ALIGN_H
#define DEFT_BACKEND_ROI_ALIGN_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include "deft/graph.h"

#define ROI_MAX_GRID 4096 /* adaptive samples per bin side: beyond it a box is nonsense */

struct roi_geom {
    int64_t b;          /* image of the batch */
    float y0, x0;       /* ALIGN: RoI start; CROP: first sample */
    float bin_h, bin_w; /* ALIGN: bin size; CROP: step between samples */
    int gh, gw;         /* samples per bin side (CROP: 1; <= 0: none) */
    float count;        /* ALIGN: max(gh * gw, 1), the bin's divisor; CROP: 1 */
    bool crop;
};

/* Geometry of box row `box` (batch index, x1, y1, x2, y2). Returns false with
 * *why set when the row cannot be sampled (not finite, batch index outside
 * [0, n), adaptive grid beyond ROI_MAX_GRID). */
static inline bool roi_geom_init(const struct deft_roi_attr *a, const float *box, int64_t n,
                                 int64_t h, int64_t w, struct roi_geom *g, const char **why) {
    for (int i = 0; i < 5; i++)
        if (!isfinite(box[i])) {
            *why = "a coordinate is not finite";
            return false;
        }
    if (!(box[0] >= 0.0f && box[0] < (float)n)) {
        *why = "batch index outside the batch";
        return false;
    }
    g->b = (int64_t)box[0]; /* truncated, as torchvision's int cast */
    g->crop = a->mode == DEFT_ROI_CROP_RESIZE;
    if (g->crop) { /* tf.image.crop_and_resize of box / (image - 1) */
        float y1 = box[2] / (float)(a->image_h - 1), y2 = box[4] / (float)(a->image_h - 1);
        float x1 = box[1] / (float)(a->image_w - 1), x2 = box[3] / (float)(a->image_w - 1);
        float fh = (float)(h - 1), fw = (float)(w - 1);
        g->bin_h = a->out_h > 1 ? (y2 - y1) * fh / (float)(a->out_h - 1) : 0.0f;
        g->bin_w = a->out_w > 1 ? (x2 - x1) * fw / (float)(a->out_w - 1) : 0.0f;
        g->y0 = a->out_h > 1 ? y1 * fh : 0.5f * (y1 + y2) * fh;
        g->x0 = a->out_w > 1 ? x1 * fw : 0.5f * (x1 + x2) * fw;
        g->gh = g->gw = 1;
        g->count = 1.0f;
        return true;
    }
    float off = a->aligned ? 0.5f : 0.0f, s = a->spatial_scale;
    g->x0 = box[1] * s - off;
    g->y0 = box[2] * s - off;
    float rw = box[3] * s - off - g->x0, rh = box[4] * s - off - g->y0;
    if (!a->aligned) { /* legacy: force malformed RoIs to 1x1 */
        rw = fmaxf(rw, 1.0f);
        rh = fmaxf(rh, 1.0f);
    }
    g->bin_h = rh / (float)a->out_h;
    g->bin_w = rw / (float)a->out_w;
    float gh = a->sampling_ratio > 0 ? (float)a->sampling_ratio : ceilf(rh / (float)a->out_h);
    float gw = a->sampling_ratio > 0 ? (float)a->sampling_ratio : ceilf(rw / (float)a->out_w);
    if (!(gh <= ROI_MAX_GRID && gw <= ROI_MAX_GRID)) {
        *why = "box too large for adaptive sampling";
        return false;
    }
    g->gh = gh > 0 ? (int)gh : 0;
    g->gw = gw > 0 ? (int)gw : 0;
    int cnt = (int)gh * (int)gw;
    g->count = (float)(cnt > 1 ? cnt : 1);
    return true;
}

/* Sample iy (of gh) in output row ph; the same form for columns. */
static inline float roi_sample_y(const struct roi_geom *g, int ph, int iy) {
    if (g->crop) return g->y0 + (float)ph * g->bin_h;
    return g->y0 + (float)ph * g->bin_h + (float)(iy + 0.5f) * g->bin_h / (float)g->gh;
}
static inline float roi_sample_x(const struct roi_geom *g, int pw, int ix) {
    if (g->crop) return g->x0 + (float)pw * g->bin_w;
    return g->x0 + (float)pw * g->bin_w + (float)(ix + 0.5f) * g->bin_w / (float)g->gw;
}

/* Bilinear taps of point (y, x) in an h x w plane: offsets o[4] and weights
 * wt[4] (top-left, top-right, bottom-left, bottom-right). false: the point
 * contributes nothing (ALIGN: outside [-1, h] x [-1, w], torchvision clamps
 * the rest to the border; CROP: outside [0, h-1] x [0, w-1], TF's
 * extrapolation value 0). */
static inline bool roi_bilinear(bool crop, float y, float x, int64_t h, int64_t w, int64_t o[4],
                                float wt[4]) {
    int64_t yl, yh, xl, xh;
    float ly, lx;
    if (crop) {
        if (!(y >= 0.0f && y <= (float)(h - 1) && x >= 0.0f && x <= (float)(w - 1))) return false;
        float ty = floorf(y), tx = floorf(x);
        yl = (int64_t)ty, yh = (int64_t)ceilf(y), ly = y - ty;
        xl = (int64_t)tx, xh = (int64_t)ceilf(x), lx = x - tx;
    } else {
        if (!(y >= -1.0f && y <= (float)h && x >= -1.0f && x <= (float)w)) return false;
        if (y <= 0) y = 0;
        if (x <= 0) x = 0;
        yl = (int64_t)y, xl = (int64_t)x;
        if (yl >= h - 1) yh = yl = h - 1, y = (float)yl;
        else yh = yl + 1;
        if (xl >= w - 1) xh = xl = w - 1, x = (float)xl;
        else xh = xl + 1;
        ly = y - (float)yl, lx = x - (float)xl;
    }
    float hy = 1.0f - ly, hx = 1.0f - lx;
    o[0] = yl * w + xl, o[1] = yl * w + xh, o[2] = yh * w + xl, o[3] = yh * w + xh;
    wt[0] = hy * hx, wt[1] = hy * lx, wt[2] = ly * hx, wt[3] = ly * lx;
    return true;
}

#endif

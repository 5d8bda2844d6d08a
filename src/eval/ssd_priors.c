/* ssd_priors.c - SSD's default boxes (deft/det_priors.h), as TAO's
 * AnchorBoxes layer builds them: sizes from the layer's scale and aspect
 * ratios, centres on the layer's grid, optional clipping, variances; and
 * RetinaNet's (TAO's RetinaAnchorBoxes): the same per sub-octave level. */
#include <math.h>
#include "deft/det_priors.h"

static bool has_ar1(const double *ar, int n) {
    for (int i = 0; i < n; i++)
        if (ar[i] == 1.0) return true; /* TAO compares exactly (1 in aspect_ratios) */
    return false;
}

int deft_ssd_boxes_per_cell(const double *ar, int n_ar, bool two_boxes_for_ar1) {
    return n_ar + (two_boxes_for_ar1 && has_ar1(ar, n_ar) ? 1 : 0);
}

/* Sub-octave levels of a layer (RetinaNet's n_anchor_levels); 0 means SSD's one. */
static int octaves(const struct deft_ssd_layer_params *l) { return l->n_octaves > 1 ? l->n_octaves : 1; }

long deft_ssd_prior_count(const struct deft_ssd_layer_params *L, int n_layers, bool two_boxes_for_ar1) {
    long n = 0;
    for (int k = 0; k < n_layers; k++)
        n += (long)L[k].fmap_h * L[k].fmap_w * octaves(&L[k]) *
             deft_ssd_boxes_per_cell(L[k].ar, L[k].n_ar, two_boxes_for_ar1);
    return n;
}

/* Box sizes of one cell, in pixels, in TAO's order (sub-octave level
 * 2^(j/n) outer, aspects inner); returns their count. */
static int cell_sizes(const struct deft_ssd_layer_params *l, double size, bool two, double *w, double *h) {
    int m = 0, no = octaves(l);
    for (int j = 0; j < no; j++) {
        double f = pow(2.0, (double)j / no) * size;
        for (int i = 0; i < l->n_ar; i++) {
            double a = l->ar[i];
            if (a == 1.0) {
                w[m] = h[m] = l->scale * f, m++;
                if (two) w[m] = h[m] = sqrt(l->scale * l->next_scale) * f, m++;
            } else {
                w[m] = l->scale * f * sqrt(a);
                h[m] = l->scale * f / sqrt(a);
                m++;
            }
        }
    }
    return m;
}

static double clip_px(double v, int side) { return v >= side ? side - 1 : v < 0 ? 0 : v; }

enum deft_status deft_ssd_priors(const struct deft_ssd_layer_params *L, int n_layers, int img_w, int img_h,
                                 bool two_boxes_for_ar1, bool clip_boxes, const double variances[4], float *out,
                                 long cap, long *n) {
    *n = 0;
    if (img_w <= 0 || img_h <= 0 || n_layers <= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "priors: input %dx%d, %d layers", img_w, img_h, n_layers);
    for (int k = 0; k < n_layers; k++) {
        const struct deft_ssd_layer_params *l = &L[k];
        if (l->fmap_h <= 0 || l->fmap_w <= 0 || l->n_ar <= 0 || l->n_ar > 64 || !(l->scale > 0) || l->next_scale < 0 ||
            l->n_octaves < 0 || l->n_octaves > 8 || octaves(l) * (l->n_ar + 1) > 256)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "priors: layer %d: map %dx%d, %d aspect ratios, scale %g, next "
                                  "%g, %d sub-octave levels", k, l->fmap_h, l->fmap_w, l->n_ar, l->scale, l->next_scale,
                                  l->n_octaves);
        for (int i = 0; i < l->n_ar; i++)
            if (!(l->ar[i] > 0))
                return deft_set_error(DEFT_ERR_INVALID_ARG, "priors: layer %d: aspect ratio %g is not > 0", k, l->ar[i]);
    }
    long need = deft_ssd_prior_count(L, n_layers, two_boxes_for_ar1);
    if (cap < need) return deft_set_error(DEFT_ERR_INVALID_ARG, "priors: room for %ld, need %ld", cap, need);
    double size = img_w < img_h ? img_w : img_h, w[260], h[260];
    float *o = out;
    for (int k = 0; k < n_layers; k++) {
        const struct deft_ssd_layer_params *l = &L[k];
        int m = cell_sizes(l, size, two_boxes_for_ar1, w, h);
        double sh = l->step_h > 0 ? l->step_h : (double)img_h / l->fmap_h;
        double sw = l->step_w > 0 ? l->step_w : (double)img_w / l->fmap_w;
        for (int y = 0; y < l->fmap_h; y++)
            for (int x = 0; x < l->fmap_w; x++) {
                double cy = (l->offset_h + y) * sh, cx = (l->offset_w + x) * sw;
                for (int b = 0; b < m; b++) {
                    double x1 = cx - w[b] / 2, y1 = cy - h[b] / 2, x2 = cx + w[b] / 2, y2 = cy + h[b] / 2;
                    if (clip_boxes) {
                        x1 = clip_px(x1, img_w), x2 = clip_px(x2, img_w);
                        y1 = clip_px(y1, img_h), y2 = clip_px(y2, img_h);
                    }
                    *o++ = (float)(x1 / img_w);
                    *o++ = (float)(y1 / img_h);
                    *o++ = (float)(x2 / img_w);
                    *o++ = (float)(y2 / img_h);
                    for (int v = 0; v < 4; v++) *o++ = (float)variances[v];
                }
            }
    }
    *n = need;
    return DEFT_OK;
}

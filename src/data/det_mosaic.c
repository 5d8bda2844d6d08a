/* det_mosaic.c - the layout of TAO's YOLOv4 mosaic: a split point uniform
 * in [r, 1 - r] of the canvas (integers, both ends included) and, per
 * quadrant, a random crop of the image with the quadrant's aspect ratio
 * covering a fraction U(1 - jitter, 1) of the image's limiting side,
 * resized into the quadrant. Quadrants: 0 top-left, 1 top-right,
 * 2 bottom-left, 3 bottom-right. */
#include <math.h>
#include "det_geom.h"

static int rand_incl(uint64_t seed, uint64_t stream, uint64_t k, int lo, int hi) {
    if (hi <= lo) return lo;
    return lo + (int)(deft_rng_u64(seed, stream, k) % (uint64_t)(hi - lo + 1));
}

void det_mosaic_border(const struct deft_det_transform *t, int cw, int ch, uint64_t seed, uint64_t stream,
                       int *xb, int *yb) {
    double r = t->aug.mosaic_min_ratio;
    if (!(r > 0 && r < 0.5)) r = 0.2; /* validated by the loader; keep the layout sane anyway */
    *xb = rand_incl(seed, stream, DET_K_BORDER, (int)(cw * r), (int)(cw * (1.0 - r)));
    *yb = rand_incl(seed, stream, DET_K_BORDER + 1, (int)(ch * r), (int)(ch * (1.0 - r)));
    if (*xb < 1) *xb = 1;
    if (*xb > cw - 1) *xb = cw - 1;
    if (*yb < 1) *yb = 1;
    if (*yb > ch - 1) *yb = ch - 1;
}

void det_mosaic_window(const struct deft_det_transform *t, int W, int H, int qw, int qh, uint64_t seed,
                       uint64_t stream, int j, struct det_place *p) {
    uint64_t k = DET_K_PIECE + (uint64_t)DET_K_PIECE_STRIDE * (uint64_t)j + DET_KP_WINDOW;
    double ar = (double)qw / qh, min_ratio = 1.0 - t->aug.jitter;
    if (min_ratio > 1) min_ratio = 1;
    if (min_ratio < 0.05) min_ratio = 0.05;
    double ratio = min_ratio + (1.0 - min_ratio) * deft_rng_uniform(seed, stream, k);
    int cw, ch;
    if ((double)W / H > ar) { /* height limits */
        ch = (int)lround(H * ratio);
        cw = (int)lround(ch * ar);
    } else {
        cw = (int)lround(W * ratio);
        ch = (int)lround(cw / ar);
    }
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    if (cw > W) cw = W;
    if (ch > H) ch = H;
    p->sy = rand_incl(seed, stream, k + 1, 0, H - ch);
    p->sx = rand_incl(seed, stream, k + 2, 0, W - cw);
    p->sw = cw;
    p->sh = ch;
}

/* det_geom.h - internal pieces of the detection transforms: a placement
 * (source window of an image -> destination rectangle of the canvas) and
 * the draw indices every transform file agrees on. */
#ifndef DEFT_DATA_DET_GEOM_H
#define DEFT_DATA_DET_GEOM_H

#include "deft/det_loader.h"

/* Draw indices k of deft_rng_*(seed, stream, k) inside a sample's stream. */
enum {
    DET_K_MOSAIC = 0,   /* mosaic or not */
    DET_K_BORDER = 1,   /* x, y split point (2 draws) */
    DET_K_PARTNER = 3,  /* the 3 other mosaic images (loader, 3 draws) */
    DET_K_PIECE = 16,   /* piece j uses DET_K_PIECE + DET_K_PIECE_STRIDE * j + ... */
    DET_K_PIECE_STRIDE = 16,
    DET_KP_HUE = 0, DET_KP_SAT = 1, DET_KP_SAT_INV = 2, DET_KP_VAL = 3, DET_KP_VAL_INV = 4,
    DET_KP_VFLIP = 5, DET_KP_HFLIP = 6, DET_KP_WINDOW = 7, /* 4 draws */
};
#define DET_STREAM_SHAPE (1ull << 59)

/* Image window (original pixels, may reach outside the image) resampled
 * into canvas rectangle [dx, dx+dw) x [dy, dy+dh), mirrored inside it when
 * flipped. */
struct det_place {
    double sx, sy, sw, sh;
    int dx, dy, dw, dh;
    bool hflip, vflip;
};

/* Window for the mosaic piece j of an W x H image into a qw x qh quadrant
 * (TAO's random crop of at least (1 - jitter) of the image, aspect qw/qh). */
void det_mosaic_window(const struct deft_det_transform *t, int W, int H, int qw, int qh, uint64_t seed,
                       uint64_t stream, int j, struct det_place *p);
/* Split point of a mosaic on a cw x ch canvas. */
void det_mosaic_border(const struct deft_det_transform *t, int cw, int ch, uint64_t seed, uint64_t stream,
                       int *xb, int *yb);
/* The draw-dependent placements of a sample (n = 1 or 4) whose inputs are
 * W[j] x H[j] original pixels, on a cw x ch canvas. */
void det_plan(const struct deft_det_transform *t, bool mosaic, const int *W, const int *H, int cw, int ch,
              uint64_t seed, uint64_t stream, struct det_place *places);

#endif

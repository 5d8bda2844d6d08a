/* yolo_impl.h - what yolo_match.c, yolo_loss.c and yolo_decode.c share:
 * head checks, slot addressing and the decoded prediction of one slot. */
#ifndef DEFT_YOLO_IMPL_H
#define DEFT_YOLO_IMPL_H

#include <math.h>
#include "deft/yolo.h"

/* TAO caps the w/h logit at 8 before exp (exp(8) ~ 2981, "more than enough"). */
#define YOLO_WH_LOGIT_MAX 8.0

static inline double yolo_sigmoid(double t) {
    if (t >= 0) return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

/* Checks the head descriptors (sizes positive, anchors finite and > 0). */
enum deft_status yolo_check_heads(const struct deft_yolo_head *heads, int n_heads);

/* Value of channel k of anchor a at cell (y, x) of image b's block `o`
 * (o points at head's [b] plane block: A*(5+C) planes of gh*gw). */
static inline size_t yolo_at(const struct deft_yolo_head *h, int n_classes, int a, int k, int y,
                             int x) {
    size_t c = (size_t)a * (size_t)(5 + n_classes) + (size_t)k;
    return (c * (size_t)h->gh + (size_t)y) * (size_t)h->gw + (size_t)x;
}

/* Decoded centre and size of one prediction, normalised to the input, with
 * the derivatives of each w.r.t. its own logit (TAO's anchor layer: the cell's
 * top-left corner plus one cell times the extended sigmoid; anchor times
 * exp(min(t, 8)), capped at 1e18). */
struct yolo_pred {
    double cx, cy, w, h;
    double dcx, dcy, dw, dh; /* d cx / d tx, ... */
};

static inline struct yolo_pred yolo_decode_one(const struct deft_yolo_head *h, int a, int y,
                                               int x, double tx, double ty, double tw,
                                               double th) {
    struct yolo_pred p;
    double s = 1.0 + (double)h->xy_extend;
    double sx = yolo_sigmoid(tx), sy = yolo_sigmoid(ty);
    p.cx = ((double)x + sx * s - (s - 1.0) / 2.0) / (double)h->gw;
    p.cy = ((double)y + sy * s - (s - 1.0) / 2.0) / (double)h->gh;
    p.dcx = s * sx * (1.0 - sx) / (double)h->gw;
    p.dcy = s * sy * (1.0 - sy) / (double)h->gh;
    /* min(t, 8): the gradient passes while t <= 8 (TF gives ties to the first argument) */
    double ew = exp(tw <= YOLO_WH_LOGIT_MAX ? tw : YOLO_WH_LOGIT_MAX);
    double eh = exp(th <= YOLO_WH_LOGIT_MAX ? th : YOLO_WH_LOGIT_MAX);
    p.w = (double)h->anchors[2 * a] * ew;
    p.h = (double)h->anchors[2 * a + 1] * eh;
    p.dw = tw <= YOLO_WH_LOGIT_MAX ? p.w : 0.0;
    p.dh = th <= YOLO_WH_LOGIT_MAX ? p.h : 0.0;
    if (p.w > 1e18) p.w = 1e18, p.dw = 0.0;
    if (p.h > 1e18) p.h = 1e18, p.dh = 0.0;
    return p;
}

#endif

/* frcnn_targets.c - Faster R-CNN's host steps before the losses: RPN anchor
 * targets, the proposal layer and the RoI sampling (frcnn_impl.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"
#include "tasks/faster_rcnn/frcnn_impl.h"

/* Keep k of the n indices in idx[] at random (a partial Fisher-Yates shuffle). */
static void choose(int *idx, int n, int k, uint64_t seed, uint64_t stream, uint64_t salt) {
    for (int i = 0; i < k && i < n - 1; i++) {
        int j = i + (int)(deft_rng_u64(seed, stream, salt + (uint64_t)i) % (uint64_t)(n - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

enum deft_status frcnn_rpn_targets(const struct frcnn_params *p, const float *gt, int n_gt, uint64_t seed,
                                   uint64_t stream, int8_t *label, float *deltas) {
    long na = p->n_anchors;
    float *best = malloc((size_t)na * sizeof *best), *gbest = calloc((size_t)(n_gt ? n_gt : 1), sizeof *gbest);
    int *arg = malloc((size_t)na * sizeof *arg), *pos = malloc((size_t)na * sizeof *pos), *neg = malloc((size_t)na * sizeof *neg);
    if (!best || !gbest || !arg || !pos || !neg) {
        free(best), free(gbest), free(arg), free(pos), free(neg);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory for the RPN targets");
    }
    for (long i = 0; i < na; i++) {
        best[i] = 0, arg[i] = -1;
        for (int g = 0; g < n_gt; g++) {
            float u = frcnn_iou(p->anchors + 4 * i, gt + 4 * g);
            if (u > best[i]) best[i] = u, arg[i] = g;
            if (u > gbest[g]) gbest[g] = u;
        }
        label[i] = best[i] >= p->rpn_max_overlap ? 1 : best[i] < p->rpn_min_overlap ? 0 : -1;
    }
    /* every box gets its best anchors (ties included), as TAO's calc_rpn */
    for (long i = 0; i < na; i++)
        for (int g = 0; g < n_gt; g++)
            if (gbest[g] > 0 && frcnn_iou(p->anchors + 4 * i, gt + 4 * g) == gbest[g]) {
                label[i] = 1;
                if (arg[i] != g && best[i] <= gbest[g]) arg[i] = g;
            }
    int np = 0, nn = 0;
    for (long i = 0; i < na; i++) {
        if (label[i] == 1) pos[np++] = (int)i;
        else if (label[i] == 0) neg[nn++] = (int)i;
    }
    int want_pos = np < p->rpn_mini_batch / 2 ? np : p->rpn_mini_batch / 2;
    int want_neg = p->rpn_mini_batch - want_pos < nn ? p->rpn_mini_batch - want_pos : nn;
    choose(pos, np, want_pos, seed, stream, 0);
    choose(neg, nn, want_neg, seed, stream, 1u << 30);
    for (int i = want_pos; i < np; i++) label[pos[i]] = -1;
    for (int i = want_neg; i < nn; i++) label[neg[i]] = -1;
    const float w[4] = {p->rpn_std, p->rpn_std, p->rpn_std, p->rpn_std};
    memset(deltas, 0, (size_t)na * 4 * sizeof *deltas);
    for (int k = 0; k < want_pos; k++) {
        int i = pos[k];
        deft_box_encode(w, gt + 4 * arg[i], p->anchors + 4 * (long)i, 1, deltas + 4 * (long)i);
    }
    free(best), free(gbest), free(arg), free(pos), free(neg);
    return DEFT_OK;
}

struct scored { float s; int i; };
static int by_score(const void *a, const void *b) {
    const struct scored *x = a, *y = b;
    return x->s > y->s ? -1 : x->s < y->s ? 1 : (x->i > y->i) - (x->i < y->i);
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

enum deft_status frcnn_proposals(const struct frcnn_params *p, const struct frcnn_prop_cfg *c, const float *cls,
                                 const float *regr, float *out, float *scores, int *n) {
    *n = 0;
    long na = p->n_anchors, hw = (long)p->fmap_h * p->fmap_w;
    int A = p->n_cell_anchors;
    float *boxes = malloc((size_t)na * 4 * sizeof *boxes), *d = malloc((size_t)na * 4 * sizeof *d);
    struct scored *sc = malloc((size_t)na * sizeof *sc);
    if (!boxes || !d || !sc) {
        free(boxes), free(d), free(sc);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory for the proposals");
    }
    for (long cell = 0; cell < hw; cell++)
        for (int a = 0; a < A; a++) {
            long i = cell * A + a;
            for (int k = 0; k < 4; k++) d[4 * i + k] = regr[(long)(4 * a + k) * hw + cell];
            sc[i] = (struct scored){cls[(long)a * hw + cell], (int)i};
        }
    const float w[4] = {p->rpn_std, p->rpn_std, p->rpn_std, p->rpn_std};
    deft_box_decode(w, DEFT_BBOX_XFORM_CLIP, d, p->anchors, (int)na, boxes);
    long m = 0;
    for (long i = 0; i < na; i++) {
        float *b = boxes + 4 * i;
        b[0] = clampf(b[0], 0, (float)p->net_w), b[2] = clampf(b[2], 0, (float)p->net_w);
        b[1] = clampf(b[1], 0, (float)p->net_h), b[3] = clampf(b[3], 0, (float)p->net_h);
        if (b[2] - b[0] >= 1 && b[3] - b[1] >= 1 && isfinite(sc[i].s)) sc[m++] = sc[i];
    }
    qsort(sc, (size_t)m, sizeof *sc, by_score);
    if (c->pre_nms_top_n > 0 && m > c->pre_nms_top_n) m = c->pre_nms_top_n;
    float *cb = d, *cs = malloc((size_t)(m ? m : 1) * sizeof *cs); /* d is free again */
    int *keep = malloc((size_t)(m ? m : 1) * sizeof *keep);
    enum deft_status s = cs && keep ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory for the proposals");
    for (long k = 0; !s && k < m; k++) {
        memcpy(cb + 4 * k, boxes + 4 * (long)sc[k].i, 4 * sizeof *cb);
        cs[k] = sc[k].s;
    }
    int nk = 0;
    if (!s && m) s = deft_nms_tv(cb, cs, (int)m, c->nms_iou, keep, &nk);
    if (!s) {
        if (nk > c->max_boxes) nk = c->max_boxes;
        for (int k = 0; k < nk; k++) {
            memcpy(out + 4 * k, cb + 4 * (long)keep[k], 4 * sizeof *out);
            if (scores) scores[k] = 1.0f / (1.0f + expf(-cs[keep[k]]));
        }
        *n = nk;
    }
    free(boxes), free(d), free(sc), free(cs), free(keep);
    return s;
}

enum deft_status frcnn_sample_rois(const struct frcnn_params *p, const float *props, int n_props, const float *gt,
                                   const int *gt_cls, int n_gt, uint64_t seed, uint64_t stream, float *rois,
                                   int *label, float *deltas) {
    int nc = n_props + (p->gt_as_roi ? n_gt : 0), R = p->rois_per_image;
    float *cand = malloc((size_t)(nc ? nc : 1) * 4 * sizeof *cand);
    int *arg = malloc((size_t)(nc ? nc : 1) * sizeof *arg), *pos = malloc((size_t)(nc ? nc : 1) * sizeof *pos),
        *neg = malloc((size_t)(nc ? nc : 1) * sizeof *neg);
    if (!cand || !arg || !pos || !neg) {
        free(cand), free(arg), free(pos), free(neg);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory for the RoI sampling");
    }
    memcpy(cand, props, (size_t)n_props * 4 * sizeof *cand);
    if (p->gt_as_roi) memcpy(cand + 4 * (long)n_props, gt, (size_t)n_gt * 4 * sizeof *cand);
    int np = 0, nn = 0;
    for (int i = 0; i < nc; i++) {
        float best = -1;
        arg[i] = -1;
        for (int g = 0; g < n_gt; g++) {
            float u = frcnn_iou(cand + 4 * i, gt + 4 * g);
            if (u > best) best = u, arg[i] = g;
        }
        if (n_gt == 0) best = 0;
        if (best >= p->cls_max_overlap) pos[np++] = i;
        else if (best >= p->cls_min_overlap) neg[nn++] = i;
    }
    int want_pos = (int)(R * FRCNN_ROI_POSITIVE_RATIO);
    if (want_pos > np) want_pos = np;
    if (nn == 0) want_pos = np < R ? np : R; /* nothing else to fill with */
    choose(pos, np, want_pos, seed, stream, 2u << 30);
    choose(neg, nn, R - want_pos < nn ? R - want_pos : nn, seed, stream, 3u << 30);
    int have_neg = R - want_pos < nn ? R - want_pos : nn;
    memset(deltas, 0, (size_t)R * 4 * sizeof *deltas);
    for (int r = 0; r < R; r++) {
        int i, cls;
        if (want_pos + have_neg == 0) { /* no candidate at all: a whole-image background RoI */
            const float whole[4] = {0, 0, (float)p->net_w, (float)p->net_h};
            memcpy(rois + 4 * r, whole, sizeof whole);
            label[r] = p->n_classes;
            continue;
        }
        int k = r % (want_pos + have_neg); /* too few: repeat, as TAO pads */
        if (k < want_pos) i = pos[k], cls = gt_cls[arg[i]];
        else i = neg[k - want_pos], cls = p->n_classes;
        memcpy(rois + 4 * r, cand + 4 * i, 4 * sizeof *rois);
        label[r] = cls;
        if (cls < p->n_classes) deft_box_encode(p->regr_std, gt + 4 * arg[i], cand + 4 * i, 1, deltas + 4 * r);
    }
    free(cand), free(arg), free(pos), free(neg);
    return DEFT_OK;
}

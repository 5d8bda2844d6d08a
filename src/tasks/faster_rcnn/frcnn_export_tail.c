/* frcnn_export_tail.c - Faster R-CNN's host steps written as standard ONNX
 * nodes, so an exported model computes what `deft faster_rcnn inference`
 * computes (frcnn_proposals and frcnn_detect, frcnn_impl.h).
 *
 * Proposals ("mid": between the RPN outputs and the RoI crop, where the host
 * step runs in deft): the RPN maps in (cell, anchor) order, decoded against
 * the anchors (a constant) with rpn_std, clipped to the input, boxes under 1
 * pixel masked to -inf, TopK pre_nms_top_n, NonMaxSuppression, the kept ones
 * in score order compacted to a fixed R = min(max_boxes, pre_nms_top_n) rows
 * per image, zero boxes after the kept ones (TAO's proposal plugin pads
 * so); rows (image, x1, y1, x2, y2) feed the crop.
 *
 * Detections (after the RCNN head): softmax, per class and RoI the RoI
 * decoded with classifier_regr_std and clipped; candidates score >= conf on a
 * kept (not padding) row; torchvision's batched_nms trick (boxes shifted by
 * class x (max coordinate + 1), one NonMaxSuppression), the max_dets best;
 * output TAO's NMS layout. */
#include <math.h>
#include <string.h>
#include "tasks/common/det_export_tail.h"
#include "tasks/faster_rcnn/frcnn_export.h"

/* Clamp corners [..., 4] to [0, w] x [0, h] (clampf's order: low, then high). */
const char *frcnn_tail_clip_boxes(struct deft_onnx_tail *t, const char *b, int w, int h) {
    const float lim[4] = {(float)w, (float)h, (float)w, (float)h};
    const char *l = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){4}, lim);
    return det_tail_op2(t, "Min", det_tail_op2(t, "Max", b, det_tail_scalar_f(t, 0.0f), NULL), l, NULL);
}
/* torchvision's BoxCoder decode (deft_box_decode): ref corners and deltas
 * [..., 4] broadcast; the last axis is `axis`. */
const char *frcnn_tail_decode(struct deft_onnx_tail *t, const char *ref_wh, const char *ref_c, const char *d,
                          int64_t axis, const float wt[4]) {
    const char *wxy = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){2}, wt);
    const char *wwh = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){2}, wt + 2);
    const char *dxy = det_tail_op2(t, "Div", det_tail_slice(t, d, axis, 0, 2), wxy, NULL);
    const char *dwh = det_tail_op2(t, "Min", det_tail_op2(t, "Div", det_tail_slice(t, d, axis, 2, 4), wwh, NULL), det_tail_scalar_f(t, DEFT_BBOX_XFORM_CLIP),
                          NULL);
    const char *cxy = det_tail_op2(t, "Add", det_tail_op2(t, "Mul", dxy, ref_wh, NULL), ref_c, NULL);
    const char *half = det_tail_op2(t, "Mul", det_tail_scalar_f(t, 0.5f), det_tail_op2(t, "Mul", det_tail_op1(t, "Exp", dwh, NULL), ref_wh, NULL), NULL);
    return det_tail_concat(t, (const char *[]){det_tail_op2(t, "Sub", cxy, half, NULL), det_tail_op2(t, "Add", cxy, half, NULL)}, 2, axis, NULL);
}

/* The anchors' centres and sizes [na, 2] as box_coding.c's centre() computes them. */
static enum deft_status anchor_consts(struct deft_onnx_tail *t, const struct frcnn_params *p, const char **wh,
                                      const char **c) {
    float *a = deft_malloc((size_t)p->n_anchors * 4 * sizeof *a);
    if (!a) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (long i = 0; i < p->n_anchors; i++) {
        const float *b = p->anchors + 4 * i;
        float w = b[2] - b[0], h = b[3] - b[1];
        a[2 * i] = w, a[2 * i + 1] = h;
        a[2 * p->n_anchors + 2 * i] = b[0] + 0.5f * w, a[2 * p->n_anchors + 2 * i + 1] = b[1] + 0.5f * h;
    }
    int64_t d[2] = {p->n_anchors, 2};
    *wh = deft_onnx_tail_const(t, "proposal/anchor_wh", DEFT_ONNX_FLOAT, 2, d, a);
    *c = deft_onnx_tail_const(t, "proposal/anchor_centre", DEFT_ONNX_FLOAT, 2, d, a + 2 * p->n_anchors);
    deft_free(a);
    return deft_onnx_tail_status(t);
}

int frcnn_export_rows(const struct frcnn_params *p, const struct frcnn_prop_cfg *c) {
    long k = c->pre_nms_top_n > 0 && c->pre_nms_top_n < p->n_anchors ? c->pre_nms_top_n : p->n_anchors;
    return (int)(c->max_boxes < k ? c->max_boxes : k);
}

enum deft_status frcnn_export_proposals(const struct frcnn_params *p, const struct frcnn_prop_cfg *c,
                                        const char *rpn_cls, const char *rpn_regr, struct deft_onnx_tail **out) {
    *out = NULL;
    struct deft_onnx_tail *t = deft_onnx_tail_create("proposal/");
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int64_t A = p->n_cell_anchors, hw = (int64_t)p->fmap_h * p->fmap_w, na = p->n_anchors;
    int64_t k = c->pre_nms_top_n > 0 && c->pre_nms_top_n < na ? c->pre_nms_top_n : na, R = frcnn_export_rows(p, c);
    const char *awh = NULL, *ac = NULL;
    enum deft_status s = anchor_consts(t, p, &awh, &ac);
    if (s) {
        deft_onnx_tail_free(t);
        return s;
    }
    /* scores [N, na] and deltas [N, na, 4] in frcnn_proposals' (cell, anchor) order */
    const char *sc = det_tail_reshape(t, det_tail_transpose(t, rpn_cls, 4, (int64_t[]){0, 2, 3, 1}), 2, (int64_t[]){0, na});
    const char *d = det_tail_reshape(t, det_tail_transpose(t, det_tail_reshape(t, rpn_regr, 4, (int64_t[]){0, A, 4, hw}), 4,
                                         (int64_t[]){0, 3, 1, 2}), 3, (int64_t[]){0, na, 4});
    const float w[4] = {p->rpn_std, p->rpn_std, p->rpn_std, p->rpn_std};
    const char *b = frcnn_tail_clip_boxes(t, frcnn_tail_decode(t, awh, ac, d, 2, w), p->net_w, p->net_h);
    const char *bw = det_tail_op2(t, "Sub", det_tail_slice(t, b, 2, 2, 3), det_tail_slice(t, b, 2, 0, 1), NULL);
    const char *bh = det_tail_op2(t, "Sub", det_tail_slice(t, b, 2, 3, 4), det_tail_slice(t, b, 2, 1, 2), NULL);
    const char *big = det_tail_op2(t, "And", det_tail_op2(t, "GreaterOrEqual", bw, det_tail_scalar_f(t, 1.0f), NULL),
                          det_tail_op2(t, "GreaterOrEqual", bh, det_tail_scalar_f(t, 1.0f), NULL), NULL);
    const char *ok = det_tail_reshape(t, big, 2, (int64_t[]){0, na});
    const char *masked = deft_onnx_tail_node(t, "Where", NULL, (const char *[]){ok, sc, det_tail_scalar_f(t, -INFINITY)}, 3, NULL);
    const char *ti, *tv = det_tail_topk(t, masked, k, &ti);
    const char *bk = det_tail_gather_rows(t, b, ti); /* [N, k, 4] */
    int64_t one = 1;
    float iou = c->nms_iou, lowest = -3.402823466e38f;
    const char *sel = deft_onnx_tail_node(
        t, "NonMaxSuppression", "proposal/NonMaxSuppression",
        (const char *[]){bk, det_tail_unsqueeze(t, tv, 1), det_tail_i64(t, 1, (int64_t[]){c->max_boxes}),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &iou),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &lowest)},
        5, NULL); /* the -inf (too small) boxes score under the threshold */
    deft_onnx_tail_attr_i(t, "center_point_box", 0);
    /* kept positions in order: key k - pos where kept, -1 elsewhere; TopK R */
    const char *at = det_tail_op2(t, "Gather", sel, det_tail_i64(t, 2, (int64_t[]){0, 2}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    float zero = 0, one_f = 1;
    const char *zeros = det_tail_op2(t, "Expand", deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 2, (int64_t[]){1, 1}, &zero),
                            det_tail_op1(t, "Shape", tv, NULL), NULL);
    const char *col = det_tail_op2(t, "Gather", sel, det_tail_scalar_i64(t, 2), NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    const char *ones = det_tail_op2(t, "Expand", deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &one_f),
                           det_tail_op1(t, "Shape", col, NULL), NULL);
    const char *kept = deft_onnx_tail_node(t, "ScatterND", NULL, (const char *[]){zeros, at, ones}, 3, NULL);
    float *rank = deft_malloc((size_t)k * sizeof *rank);
    if (!rank) {
        deft_onnx_tail_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < k; i++) rank[i] = (float)(k - i + 1);
    const char *rk = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 2, (int64_t[]){1, k}, rank);
    deft_free(rank);
    const char *key = det_tail_op2(t, "Sub", det_tail_op2(t, "Mul", kept, rk, NULL), det_tail_scalar_f(t, 1.0f), NULL);
    const char *ri, *rv = det_tail_topk(t, key, R, &ri);
    const char *valid = det_tail_op1(t, "Cast", det_tail_op2(t, "Greater", rv, det_tail_scalar_f(t, 0.0f), NULL), FRCNN_X_VALID);
    deft_onnx_tail_attr_i(t, "to", DEFT_ONNX_FLOAT); /* [N, R]: 1 on a proposal, 0 on padding */
    det_tail_op2(t, "Mul", det_tail_gather_rows(t, bk, ri), det_tail_unsqueeze(t, valid, 2), FRCNN_X_BOXES); /* [N, R, 4] */
    /* rows (image, box) [N * R, 5] */
    const char *img = det_tail_batch_range(t, rpn_cls);
    const char *imgc = det_tail_op2(t, "Expand", det_tail_reshape(t, det_tail_cast(t, img, DEFT_ONNX_FLOAT), 3, (int64_t[]){-1, 1, 1}),
                           det_tail_i64(t, 3, (int64_t[]){1, R, 1}), NULL);
    const char *rows = det_tail_concat(t, (const char *[]){imgc, FRCNN_X_BOXES}, 2, 2, NULL);
    det_tail_op2(t, "Reshape", rows, det_tail_i64(t, 2, (int64_t[]){-1, 5}), FRCNN_X_ROIS);
    deft_onnx_tail_output(t, FRCNN_X_ROIS, DEFT_ONNX_FLOAT, 2, (int64_t[]){-1, 5});
    s = deft_onnx_tail_status(t);
    if (s) {
        deft_onnx_tail_free(t);
        return s;
    }
    *out = t;
    return DEFT_OK;
}

enum deft_status frcnn_export_detections(const struct frcnn_params *p, int R, const struct frcnn_nms *nms,
                                         const char *cls, const char *regr, struct deft_onnx_tail **out) {
    *out = NULL;
    struct deft_onnx_tail *t = deft_onnx_tail_create("detect/");
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int64_t C = p->n_classes, RC = (int64_t)R * C, K = nms->max_dets < RC ? nms->max_dets : RC;
    const char *prob = det_tail_op1(t, "Softmax", det_tail_reshape(t, cls, 3, (int64_t[]){-1, R, C + 1}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 2);
    const char *pc = det_tail_slice(t, prob, 2, 0, C); /* [N, R, C] */
    const char *d = det_tail_reshape(t, regr, 4, (int64_t[]){-1, R, C, 4});
    const char *ref = det_tail_unsqueeze(t, FRCNN_X_BOXES, 2); /* [N, R, 1, 4] */
    const char *lo = det_tail_slice(t, ref, 3, 0, 2), *wh = det_tail_op2(t, "Sub", det_tail_slice(t, ref, 3, 2, 4), lo, NULL);
    const char *ctr = det_tail_op2(t, "Add", lo, det_tail_op2(t, "Mul", det_tail_scalar_f(t, 0.5f), wh, NULL), NULL);
    const char *box = det_tail_reshape(t, frcnn_tail_clip_boxes(t, frcnn_tail_decode(t, wh, ctr, d, 3, p->regr_std), p->net_w, p->net_h), 3,
                              (int64_t[]){0, RC, 4}); /* [N, R*C, 4], row r*C + c as frcnn_detect walks */
    const char *cand = det_tail_op2(t, "And", det_tail_op2(t, "GreaterOrEqual", pc, det_tail_scalar_f(t, nms->conf), NULL),
                           det_tail_cast(t, det_tail_unsqueeze(t, FRCNN_X_VALID, 2), DEFT_ONNX_BOOL), NULL);
    const char *scores = det_tail_reshape(t, deft_onnx_tail_node(t, "Where", NULL, (const char *[]){cand, pc, det_tail_scalar_f(t, -1.0f)},
                                                        3, NULL),
                                 2, (int64_t[]){0, RC}); /* [N, R*C] */
    /* batched_nms: every box shifted by class * (max candidate coordinate + 1) */
    const char *candf = det_tail_reshape(t, det_tail_cast(t, cand, DEFT_ONNX_FLOAT), 3, (int64_t[]){0, RC, 1});
    const char *mx = det_tail_op1(t, "ReduceMax", det_tail_op2(t, "Mul", box, candf, NULL), NULL);
    deft_onnx_tail_attr_ints(t, "axes", 2, (int64_t[]){1, 2});
    deft_onnx_tail_attr_i(t, "keepdims", 1);
    float *klass = deft_malloc((size_t)RC * sizeof *klass);
    if (!klass) {
        deft_onnx_tail_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < RC; i++) klass[i] = (float)(i % C);
    const char *kc = deft_onnx_tail_const(t, "detect/class_of_row", DEFT_ONNX_FLOAT, 3, (int64_t[]){1, RC, 1}, klass);
    deft_free(klass);
    const char *shifted = det_tail_op2(t, "Add", box, det_tail_op2(t, "Mul", kc, det_tail_op2(t, "Add", mx, det_tail_scalar_f(t, 1.0f), NULL), NULL), NULL);
    int64_t one = 1;
    float iou = nms->iou, thr = -0.5f; /* candidates score >= conf >= 0, the rest -1 */
    const char *sel = deft_onnx_tail_node(
        t, "NonMaxSuppression", "detect/NonMaxSuppression",
        (const char *[]){shifted, det_tail_unsqueeze(t, scores, 1), det_tail_i64(t, 1, (int64_t[]){nms->max_dets}),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &iou),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &thr)},
        5, NULL);
    deft_onnx_tail_attr_i(t, "center_point_box", 0);
    /* kept scores scattered into [N, R*C] (-1 elsewhere); TopK K keeps NMS's order (score, then row) */
    const char *at = det_tail_op2(t, "Gather", sel, det_tail_i64(t, 2, (int64_t[]){0, 2}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    const char *kept_sc = det_tail_op2(t, "GatherND", scores, at, NULL);
    float m1 = -1.0f;
    const char *fill = det_tail_op2(t, "Expand", deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 2, (int64_t[]){1, 1}, &m1),
                           det_tail_op1(t, "Shape", scores, NULL), NULL);
    const char *map = deft_onnx_tail_node(t, "ScatterND", NULL, (const char *[]){fill, at, kept_sc}, 3, NULL);
    const char *ti, *tv = det_tail_topk(t, map, K, &ti);
    const char *valid = det_tail_op2(t, "Greater", tv, det_tail_scalar_f(t, -0.5f), NULL);
    const char *vf = det_tail_cast(t, valid, DEFT_ONNX_FLOAT);
    const float scale[4] = {1.0f / (float)p->net_w, 1.0f / (float)p->net_h, 1.0f / (float)p->net_w,
                            1.0f / (float)p->net_h};
    const char *nb = det_tail_op2(t, "Mul", det_tail_gather_rows(t, box, ti),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){4}, scale), NULL);
    const char *label = det_tail_cast(t, det_tail_op2(t, "Mod", ti, det_tail_i64(t, 1, &C), NULL), DEFT_ONNX_FLOAT);
    const char *img = det_tail_batch_range(t, tv);
    const char *imgc = det_tail_op2(t, "Expand", det_tail_reshape(t, det_tail_cast(t, img, DEFT_ONNX_FLOAT), 3, (int64_t[]){-1, 1, 1}),
                           det_tail_i64(t, 3, (int64_t[]){1, K, 1}), NULL);
    const char *row = det_tail_concat(t, (const char *[]){imgc, det_tail_unsqueeze(t, label, 2), det_tail_unsqueeze(t, tv, 2), nb}, 4, 2, NULL);
    const char *dets = det_tail_op2(t, "Mul", row, det_tail_unsqueeze(t, vf, 2), NULL); /* rows past the count: zeros */
    det_tail_op2(t, "Unsqueeze", dets, det_tail_i64(t, 1, &one), FRCNN_X_NMS);
    const char *cnt = det_tail_op2(t, "ReduceSum", det_tail_cast(t, valid, DEFT_ONNX_INT32), det_tail_i64(t, 1, &one), NULL);
    deft_onnx_tail_attr_i(t, "keepdims", 1);
    det_tail_op2(t, "Reshape", cnt, det_tail_i64(t, 4, (int64_t[]){-1, 1, 1, 1}), FRCNN_X_COUNT);
    deft_onnx_tail_output(t, FRCNN_X_NMS, DEFT_ONNX_FLOAT, 4, (int64_t[]){-1, 1, K, 7});
    deft_onnx_tail_output(t, FRCNN_X_COUNT, DEFT_ONNX_INT32, 4, (int64_t[]){-1, 1, 1, 1});
    enum deft_status s = deft_onnx_tail_status(t);
    if (s) {
        deft_onnx_tail_free(t);
        return s;
    }
    *out = t;
    return DEFT_OK;
}

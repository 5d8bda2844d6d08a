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
#include "tasks/faster_rcnn/frcnn_export.h"

static const char *c_i64(struct deft_onnx_tail *t, int n, const int64_t *v) {
    return deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 1, (int64_t[]){n}, v);
}
static const char *c_f(struct deft_onnx_tail *t, float v) {
    return deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 0, NULL, &v);
}
static const char *op1(struct deft_onnx_tail *t, const char *op, const char *a, const char *out) {
    return deft_onnx_tail_node(t, op, NULL, &a, 1, out);
}
static const char *op2(struct deft_onnx_tail *t, const char *op, const char *a, const char *b, const char *out) {
    return deft_onnx_tail_node(t, op, NULL, (const char *[]){a, b}, 2, out);
}
static const char *reshape(struct deft_onnx_tail *t, const char *x, int n, const int64_t *d) {
    return op2(t, "Reshape", x, c_i64(t, n, d), NULL);
}
static const char *transpose(struct deft_onnx_tail *t, const char *x, int n, const int64_t *perm) {
    const char *r = op1(t, "Transpose", x, NULL);
    deft_onnx_tail_attr_ints(t, "perm", n, perm);
    return r;
}
/* x[..., lo:hi] along axis. */
static const char *slice(struct deft_onnx_tail *t, const char *x, int64_t axis, int64_t lo, int64_t hi) {
    return deft_onnx_tail_node(t, "Slice", NULL,
                               (const char *[]){x, c_i64(t, 1, &lo), c_i64(t, 1, &hi), c_i64(t, 1, &axis)}, 4, NULL);
}
static const char *unsqueeze(struct deft_onnx_tail *t, const char *x, int64_t axis) {
    return op2(t, "Unsqueeze", x, c_i64(t, 1, &axis), NULL);
}
static const char *concat(struct deft_onnx_tail *t, const char *const *x, int n, int64_t axis, const char *out) {
    const char *r = deft_onnx_tail_node(t, "Concat", NULL, x, n, out);
    deft_onnx_tail_attr_i(t, "axis", axis);
    return r;
}
static const char *cast(struct deft_onnx_tail *t, const char *x, enum deft_onnx_dtype to) {
    const char *r = op1(t, "Cast", x, NULL);
    deft_onnx_tail_attr_i(t, "to", to);
    return r;
}
/* x [N, B, ...] rows idx [N, K] -> [N, K, ...]. */
static const char *gather_rows(struct deft_onnx_tail *t, const char *x, const char *idx) {
    const char *r = op2(t, "GatherND", x, unsqueeze(t, idx, 2), NULL);
    deft_onnx_tail_attr_i(t, "batch_dims", 1);
    return r;
}
static const char *topk(struct deft_onnx_tail *t, const char *x, int64_t k, const char **idx) {
    deft_onnx_tail_node_n(t, "TopK", NULL, (const char *[]){x, c_i64(t, 1, &k)}, 2, NULL, 2);
    deft_onnx_tail_attr_i(t, "axis", 1);
    deft_onnx_tail_attr_i(t, "largest", 1);
    deft_onnx_tail_attr_i(t, "sorted", 1);
    *idx = deft_onnx_tail_out(t, 1);
    return deft_onnx_tail_out(t, 0);
}
/* Clamp corners [..., 4] to [0, w] x [0, h] (clampf's order: low, then high). */
static const char *clip_boxes(struct deft_onnx_tail *t, const char *b, int w, int h) {
    const float lim[4] = {(float)w, (float)h, (float)w, (float)h};
    const char *l = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){4}, lim);
    return op2(t, "Min", op2(t, "Max", b, c_f(t, 0.0f), NULL), l, NULL);
}
/* torchvision's BoxCoder decode (deft_box_decode): ref corners and deltas
 * [..., 4] broadcast; the last axis is `axis`. */
static const char *decode(struct deft_onnx_tail *t, const char *ref_wh, const char *ref_c, const char *d,
                          int64_t axis, const float wt[4]) {
    const char *wxy = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){2}, wt);
    const char *wwh = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){2}, wt + 2);
    const char *dxy = op2(t, "Div", slice(t, d, axis, 0, 2), wxy, NULL);
    const char *dwh = op2(t, "Min", op2(t, "Div", slice(t, d, axis, 2, 4), wwh, NULL), c_f(t, DEFT_BBOX_XFORM_CLIP),
                          NULL);
    const char *cxy = op2(t, "Add", op2(t, "Mul", dxy, ref_wh, NULL), ref_c, NULL);
    const char *half = op2(t, "Mul", c_f(t, 0.5f), op2(t, "Mul", op1(t, "Exp", dwh, NULL), ref_wh, NULL), NULL);
    return concat(t, (const char *[]){op2(t, "Sub", cxy, half, NULL), op2(t, "Add", cxy, half, NULL)}, 2, axis, NULL);
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
    const char *sc = reshape(t, transpose(t, rpn_cls, 4, (int64_t[]){0, 2, 3, 1}), 2, (int64_t[]){0, na});
    const char *d = reshape(t, transpose(t, reshape(t, rpn_regr, 4, (int64_t[]){0, A, 4, hw}), 4,
                                         (int64_t[]){0, 3, 1, 2}), 3, (int64_t[]){0, na, 4});
    const float w[4] = {p->rpn_std, p->rpn_std, p->rpn_std, p->rpn_std};
    const char *b = clip_boxes(t, decode(t, awh, ac, d, 2, w), p->net_w, p->net_h);
    const char *bw = op2(t, "Sub", slice(t, b, 2, 2, 3), slice(t, b, 2, 0, 1), NULL);
    const char *bh = op2(t, "Sub", slice(t, b, 2, 3, 4), slice(t, b, 2, 1, 2), NULL);
    const char *big = op2(t, "And", op2(t, "GreaterOrEqual", bw, c_f(t, 1.0f), NULL),
                          op2(t, "GreaterOrEqual", bh, c_f(t, 1.0f), NULL), NULL);
    const char *ok = reshape(t, big, 2, (int64_t[]){0, na});
    const char *masked = deft_onnx_tail_node(t, "Where", NULL, (const char *[]){ok, sc, c_f(t, -INFINITY)}, 3, NULL);
    const char *ti, *tv = topk(t, masked, k, &ti);
    const char *bk = gather_rows(t, b, ti); /* [N, k, 4] */
    int64_t one = 1;
    float iou = c->nms_iou, lowest = -3.402823466e38f;
    const char *sel = deft_onnx_tail_node(
        t, "NonMaxSuppression", "proposal/NonMaxSuppression",
        (const char *[]){bk, unsqueeze(t, tv, 1), c_i64(t, 1, (int64_t[]){c->max_boxes}),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &iou),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &lowest)},
        5, NULL); /* the -inf (too small) boxes score under the threshold */
    deft_onnx_tail_attr_i(t, "center_point_box", 0);
    /* kept positions in order: key k - pos where kept, -1 elsewhere; TopK R */
    const char *at = op2(t, "Gather", sel, c_i64(t, 2, (int64_t[]){0, 2}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    float zero = 0, one_f = 1;
    const char *zeros = op2(t, "Expand", deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 2, (int64_t[]){1, 1}, &zero),
                            op1(t, "Shape", tv, NULL), NULL);
    const char *col = op2(t, "Gather", sel, deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL, (int64_t[]){2}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    const char *ones = op2(t, "Expand", deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &one_f),
                           op1(t, "Shape", col, NULL), NULL);
    const char *kept = deft_onnx_tail_node(t, "ScatterND", NULL, (const char *[]){zeros, at, ones}, 3, NULL);
    float *rank = deft_malloc((size_t)k * sizeof *rank);
    if (!rank) {
        deft_onnx_tail_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < k; i++) rank[i] = (float)(k - i + 1);
    const char *rk = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 2, (int64_t[]){1, k}, rank);
    deft_free(rank);
    const char *key = op2(t, "Sub", op2(t, "Mul", kept, rk, NULL), c_f(t, 1.0f), NULL);
    const char *ri, *rv = topk(t, key, R, &ri);
    const char *valid = op1(t, "Cast", op2(t, "Greater", rv, c_f(t, 0.0f), NULL), FRCNN_X_VALID);
    deft_onnx_tail_attr_i(t, "to", DEFT_ONNX_FLOAT); /* [N, R]: 1 on a proposal, 0 on padding */
    op2(t, "Mul", gather_rows(t, bk, ri), unsqueeze(t, valid, 2), FRCNN_X_BOXES); /* [N, R, 4] */
    /* rows (image, box) [N * R, 5] */
    const char *n = op2(t, "Gather", op1(t, "Shape", rpn_cls, NULL),
                        deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL, (int64_t[]){0}), NULL);
    const char *img = deft_onnx_tail_node(t, "Range", NULL,
                                          (const char *[]){deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL,
                                                                                (int64_t[]){0}),
                                                           n, deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL,
                                                                                   (int64_t[]){1})},
                                          3, NULL);
    const char *imgc = op2(t, "Expand", reshape(t, cast(t, img, DEFT_ONNX_FLOAT), 3, (int64_t[]){-1, 1, 1}),
                           c_i64(t, 3, (int64_t[]){1, R, 1}), NULL);
    const char *rows = concat(t, (const char *[]){imgc, FRCNN_X_BOXES}, 2, 2, NULL);
    op2(t, "Reshape", rows, c_i64(t, 2, (int64_t[]){-1, 5}), FRCNN_X_ROIS);
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
    const char *prob = op1(t, "Softmax", reshape(t, cls, 3, (int64_t[]){-1, R, C + 1}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 2);
    const char *pc = slice(t, prob, 2, 0, C); /* [N, R, C] */
    const char *d = reshape(t, regr, 4, (int64_t[]){-1, R, C, 4});
    const char *ref = unsqueeze(t, FRCNN_X_BOXES, 2); /* [N, R, 1, 4] */
    const char *lo = slice(t, ref, 3, 0, 2), *wh = op2(t, "Sub", slice(t, ref, 3, 2, 4), lo, NULL);
    const char *ctr = op2(t, "Add", lo, op2(t, "Mul", c_f(t, 0.5f), wh, NULL), NULL);
    const char *box = reshape(t, clip_boxes(t, decode(t, wh, ctr, d, 3, p->regr_std), p->net_w, p->net_h), 3,
                              (int64_t[]){0, RC, 4}); /* [N, R*C, 4], row r*C + c as frcnn_detect walks */
    const char *cand = op2(t, "And", op2(t, "GreaterOrEqual", pc, c_f(t, nms->conf), NULL),
                           cast(t, unsqueeze(t, FRCNN_X_VALID, 2), DEFT_ONNX_BOOL), NULL);
    const char *scores = reshape(t, deft_onnx_tail_node(t, "Where", NULL, (const char *[]){cand, pc, c_f(t, -1.0f)},
                                                        3, NULL),
                                 2, (int64_t[]){0, RC}); /* [N, R*C] */
    /* batched_nms: every box shifted by class * (max candidate coordinate + 1) */
    const char *candf = reshape(t, cast(t, cand, DEFT_ONNX_FLOAT), 3, (int64_t[]){0, RC, 1});
    const char *mx = op1(t, "ReduceMax", op2(t, "Mul", box, candf, NULL), NULL);
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
    const char *shifted = op2(t, "Add", box, op2(t, "Mul", kc, op2(t, "Add", mx, c_f(t, 1.0f), NULL), NULL), NULL);
    int64_t one = 1;
    float iou = nms->iou, thr = -0.5f; /* candidates score >= conf >= 0, the rest -1 */
    const char *sel = deft_onnx_tail_node(
        t, "NonMaxSuppression", "detect/NonMaxSuppression",
        (const char *[]){shifted, unsqueeze(t, scores, 1), c_i64(t, 1, (int64_t[]){nms->max_dets}),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &iou),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, &one, &thr)},
        5, NULL);
    deft_onnx_tail_attr_i(t, "center_point_box", 0);
    /* kept scores scattered into [N, R*C] (-1 elsewhere); TopK K keeps NMS's order (score, then row) */
    const char *at = op2(t, "Gather", sel, c_i64(t, 2, (int64_t[]){0, 2}), NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    const char *kept_sc = op2(t, "GatherND", scores, at, NULL);
    float m1 = -1.0f;
    const char *fill = op2(t, "Expand", deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 2, (int64_t[]){1, 1}, &m1),
                           op1(t, "Shape", scores, NULL), NULL);
    const char *map = deft_onnx_tail_node(t, "ScatterND", NULL, (const char *[]){fill, at, kept_sc}, 3, NULL);
    const char *ti, *tv = topk(t, map, K, &ti);
    const char *valid = op2(t, "Greater", tv, c_f(t, -0.5f), NULL);
    const char *vf = cast(t, valid, DEFT_ONNX_FLOAT);
    const float scale[4] = {1.0f / (float)p->net_w, 1.0f / (float)p->net_h, 1.0f / (float)p->net_w,
                            1.0f / (float)p->net_h};
    const char *nb = op2(t, "Mul", gather_rows(t, box, ti),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){4}, scale), NULL);
    const char *label = cast(t, op2(t, "Mod", ti, c_i64(t, 1, &C), NULL), DEFT_ONNX_FLOAT);
    const char *n = op2(t, "Gather", op1(t, "Shape", tv, NULL),
                        deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL, (int64_t[]){0}), NULL);
    const char *img = deft_onnx_tail_node(t, "Range", NULL,
                                          (const char *[]){deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL,
                                                                                (int64_t[]){0}),
                                                           n, deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL,
                                                                                   (int64_t[]){1})},
                                          3, NULL);
    const char *imgc = op2(t, "Expand", reshape(t, cast(t, img, DEFT_ONNX_FLOAT), 3, (int64_t[]){-1, 1, 1}),
                           c_i64(t, 3, (int64_t[]){1, K, 1}), NULL);
    const char *row = concat(t, (const char *[]){imgc, unsqueeze(t, label, 2), unsqueeze(t, tv, 2), nb}, 4, 2, NULL);
    const char *dets = op2(t, "Mul", row, unsqueeze(t, vf, 2), NULL); /* rows past the count: zeros */
    op2(t, "Unsqueeze", dets, c_i64(t, 1, &one), FRCNN_X_NMS);
    const char *cnt = op2(t, "ReduceSum", cast(t, valid, DEFT_ONNX_INT32), c_i64(t, 1, &one), NULL);
    deft_onnx_tail_attr_i(t, "keepdims", 1);
    op2(t, "Reshape", cnt, c_i64(t, 4, (int64_t[]){-1, 1, 1, 1}), FRCNN_X_COUNT);
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

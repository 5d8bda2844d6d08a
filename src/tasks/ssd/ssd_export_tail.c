/* ssd_export_tail.c - what ssd_detect_image computes on the twelve head
 * outputs, as ONNX nodes after them, so the exported graph carries TAO's
 * tensors instead of deft's host-side gather:
 *   mbox_conf / mbox_loc [N, P, K|4]: each map [N, boxes*K, h, w] transposed
 *   to NHWC and reshaped to rows in (y, x, box) order, the six concatenated
 *   (deft_ssd_gather's prior order); mbox_conf_softmax over the K classes
 *   (background 0).
 * trt (TAO's SSD export): loc_data = mbox_loc as [N, P*4, 1, 1], conf_data =
 *   the softmax (RetinaNet: the logits, confSigmoid 1) as [N, P*K, 1, 1], anchor_data a constant [1, 2, P*4, 1]
 *   (plane 0 the prior corners, plane 1 their variances), and the
 *   NMSDynamic_TRT node "NMS" with TAO's attributes: outputs NMS [N, 1,
 *   keepTopK, 7] (image, label, conf, x1, y1, x2, y2) and NMS_1 the count.
 * onnx/none: the centre-size decode with the variances (deft_ssd_decode's
 *   float operations in its order) -> boxes [N, P, 4], scores = the softmax
 *   without the background [N, P, C]; onnx adds det_export_nms_onnx. */
#include <string.h>
#include "tasks/common/det_export_tail.h"
#include "tasks/ssd/ssd_task.h"

#define TRT_MAX_TOPK 4096 /* TensorRT's NMS sorts at most 4096 boxes per class */

/* Rows [N, P, K] of the maps outs[0..n_maps). */
static const char *rows(struct deft_onnx_tail *t, const struct ssd_geom *g, const char *const *outs, int K,
                        const char *name) {
    const char *parts[DEFT_SSD_LAYERS];
    for (int l = 0; l < g->n_maps; l++) {
        const struct deft_ssd_map *m = &g->maps[l];
        const char *tr = det_tail_op1(t, "Transpose", outs[l], NULL);
        deft_onnx_tail_attr_ints(t, "perm", 4, (int64_t[]){0, 2, 3, 1});
        int64_t n = (int64_t)m->h * m->w * m->boxes;
        parts[l] = det_tail_op2(t, "Reshape", tr, det_tail_i64(t, 3, (int64_t[]){0, n, K}), NULL);
    }
    const char *c = deft_onnx_tail_node(t, "Concat", NULL, parts, g->n_maps, name);
    deft_onnx_tail_attr_i(t, "axis", 1);
    return c;
}

/* TAO's plugin node on the scores and the offsets: SSD's softmax, or
 * RetinaNet's logits that the plugin passes through a sigmoid (TAO's
 * retinanet onnx_exporter feeds mbox_conf with confSigmoid 1). */
static void nms_trt(struct deft_onnx_tail *t, const struct ssd_tail_opts *o, const char *loc, const char *conf,
                    const float *anchor) {
    const struct ssd_geom *g = o->geom;
    int64_t P = g->n_priors, K = g->n_classes;
    const char *ld = det_tail_op2(t, "Reshape", loc, det_tail_i64(t, 4, (int64_t[]){0, P * 4, 1, 1}), "loc_data");
    const char *cd = det_tail_op2(t, "Reshape", conf, det_tail_i64(t, 4, (int64_t[]){0, P * K, 1, 1}), "conf_data");
    const char *ad = deft_onnx_tail_const(t, "anchor_data", DEFT_ONNX_FLOAT, 4, (int64_t[]){1, 2, P * 4, 1}, anchor);
    static const char *const outs[2] = {"NMS", "NMS_1"};
    deft_onnx_tail_node_n(t, "NMSDynamic_TRT", "NMS", (const char *[]){ad, ld, cd}, 3, outs, 2);
    deft_onnx_tail_attr_i(t, "shareLocation", 1);
    deft_onnx_tail_attr_i(t, "varianceEncodedInTarget", 0);
    deft_onnx_tail_attr_i(t, "backgroundLabelId", 0);
    deft_onnx_tail_attr_f(t, "confidenceThreshold", o->nms.conf);
    deft_onnx_tail_attr_f(t, "nmsThreshold", o->nms.iou);
    deft_onnx_tail_attr_i(t, "topK", ssd_trt_topk(o->nms.top_k));
    deft_onnx_tail_attr_i(t, "codeType", 1); /* CENTER_SIZE */
    deft_onnx_tail_attr_i(t, "keepTopK", o->nms.top_k);
    deft_onnx_tail_attr_i(t, "numClasses", K);
    deft_onnx_tail_attr_ints(t, "inputOrder", 3, (int64_t[]){1, 2, 0}); /* loc, conf, priors among the inputs */
    deft_onnx_tail_attr_i(t, "confSigmoid", g->sigmoid ? 1 : 0); /* RetinaNet: the plugin applies the sigmoid */
    deft_onnx_tail_attr_i(t, "isNormalized", 1);
    deft_onnx_tail_attr_i(t, "scoreBits", o->score_bits); /* the spec's, as TAO writes it */
    deft_onnx_tail_output(t, outs[0], DEFT_ONNX_FLOAT, 4, (int64_t[]){-1, 1, o->nms.top_k, 7});
    deft_onnx_tail_output(t, outs[1], DEFT_ONNX_INT32, 4, (int64_t[]){-1, 1, 1, 1});
}

int ssd_trt_topk(int top_k) { return 2 * top_k < TRT_MAX_TOPK ? 2 * top_k : TRT_MAX_TOPK; }

/* Per prior: width/height, centre, variances 0-1 and 2-3, as deft_ssd_decode computes them. */
struct prior_consts {
    float *wh, *c, *v01, *v23, *anchor;
};

static enum deft_status prior_consts(const struct ssd_geom *g, struct prior_consts *p) {
    size_t P = (size_t)g->n_priors;
    p->wh = deft_malloc(P * 2 * sizeof(float));
    p->c = deft_malloc(P * 2 * sizeof(float));
    p->v01 = deft_malloc(P * 2 * sizeof(float));
    p->v23 = deft_malloc(P * 2 * sizeof(float));
    p->anchor = deft_malloc(P * 8 * sizeof(float));
    if (!p->wh || !p->c || !p->v01 || !p->v23 || !p->anchor) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < P; i++) {
        const float *q = g->priors + 8 * i;
        float w = q[2] - q[0], h = q[3] - q[1];
        p->wh[2 * i] = w, p->wh[2 * i + 1] = h;
        p->c[2 * i] = q[0] + 0.5f * w, p->c[2 * i + 1] = q[1] + 0.5f * h;
        p->v01[2 * i] = q[4], p->v01[2 * i + 1] = q[5];
        p->v23[2 * i] = q[6], p->v23[2 * i + 1] = q[7];
        memcpy(p->anchor + 4 * i, q, 4 * sizeof(float));          /* plane 0: corners */
        memcpy(p->anchor + 4 * (P + i), q + 4, 4 * sizeof(float)); /* plane 1: variances */
    }
    return DEFT_OK;
}

static void prior_consts_free(struct prior_consts *p) {
    deft_free(p->wh), deft_free(p->c), deft_free(p->v01), deft_free(p->v23), deft_free(p->anchor);
}

/* boxes [N, P, 4]: centre = loc*v*wh + c, size = exp(loc*v)*wh, corners centre -+ size/2. */
static const char *decode(struct deft_onnx_tail *t, const char *loc, const struct prior_consts *pc, int64_t P,
                          const char *name) {
    int64_t d2[2] = {P, 2};
    const char *wh = deft_onnx_tail_const(t, "decode/prior_wh", DEFT_ONNX_FLOAT, 2, d2, pc->wh);
    const char *c = deft_onnx_tail_const(t, "decode/prior_centre", DEFT_ONNX_FLOAT, 2, d2, pc->c);
    const char *v01 = deft_onnx_tail_const(t, "decode/variance_xy", DEFT_ONNX_FLOAT, 2, d2, pc->v01);
    const char *v23 = deft_onnx_tail_const(t, "decode/variance_wh", DEFT_ONNX_FLOAT, 2, d2, pc->v23);
    const char *xy = det_tail_op2(
        t, "Add", det_tail_op2(t, "Mul", det_tail_op2(t, "Mul", det_tail_slice2(t, loc, 0, 2), v01, NULL), wh, NULL),
        c, NULL);
    const char *size =
        det_tail_op2(t, "Mul", det_tail_op1(t, "Exp", det_tail_op2(t, "Mul", det_tail_slice2(t, loc, 2, 4), v23, NULL),
                                            NULL),
                     wh, NULL);
    const char *half = det_tail_op2(t, "Mul", size, det_tail_scalar_f(t, 0.5f), NULL);
    const char *corners[2] = {det_tail_op2(t, "Sub", xy, half, NULL), det_tail_op2(t, "Add", xy, half, NULL)};
    const char *b = deft_onnx_tail_node(t, "Concat", NULL, corners, 2, name);
    deft_onnx_tail_attr_i(t, "axis", 2);
    return b;
}

enum deft_status ssd_export_tail(const struct ssd_tail_opts *o, struct deft_onnx_tail **out) {
    *out = NULL;
    const struct ssd_geom *g = o->geom;
    int64_t P = g->n_priors, K = g->n_classes;
    struct deft_onnx_tail *t = deft_onnx_tail_create("decode/");
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    struct prior_consts pc = {0};
    enum deft_status s = prior_consts(g, &pc);
    if (!s) {
        const char *conf = rows(t, g, o->out_names, (int)K, "mbox_conf");
        const char *loc = rows(t, g, o->out_names + g->n_maps, 4, "mbox_loc");
        if (o->mode == DET_NMS_TRT && g->sigmoid) {
            nms_trt(t, o, loc, conf, pc.anchor); /* TAO's RetinaNet: the logits, confSigmoid 1 */
        } else if (o->mode == DET_NMS_TRT) {
            const char *soft = det_tail_op1(t, "Softmax", conf, "mbox_conf_softmax");
            deft_onnx_tail_attr_i(t, "axis", 2);
            nms_trt(t, o, loc, soft, pc.anchor);
        } else {
            /* RetinaNet: TAO's mbox_conf_sigmoid, each class on its own */
            const char *soft = g->sigmoid ? det_tail_op1(t, "Sigmoid", conf, "mbox_conf_sigmoid")
                                          : det_tail_op1(t, "Softmax", conf, "mbox_conf_softmax");
            if (!g->sigmoid) deft_onnx_tail_attr_i(t, "axis", 2);
            bool plain = o->mode == DET_NMS_NONE;
            const char *boxes = decode(t, loc, &pc, P, plain ? "boxes" : "decode/boxes");
            const char *scores = det_tail_slice2(t, soft, 1, K); /* the object classes */
            if (plain) {
                scores = det_tail_op1(t, "Identity", scores, "scores");
                deft_onnx_tail_output(t, boxes, DEFT_ONNX_FLOAT, 3, (int64_t[]){-1, P, 4});
                deft_onnx_tail_output(t, scores, DEFT_ONNX_FLOAT, 3, (int64_t[]){-1, P, K - 1});
            } else {
                det_export_nms_onnx(t, boxes, scores, (int)P, (int)K - 1, o->nms.conf, o->nms.iou, o->nms.top_k);
            }
        }
        s = deft_onnx_tail_status(t);
    }
    prior_consts_free(&pc);
    if (s) {
        deft_onnx_tail_free(t);
        return s;
    }
    *out = t;
    return DEFT_OK;
}

/* yolo_export_tail.c - yolo_decode.c and nms.c written as ONNX nodes after
 * the exported head maps, so a deployed model computes what `deft yolo_v4
 * evaluate|inference` computes.
 *
 * Decode (every head, then concatenated): head [N, A*(5+C), gh, gw] ->
 * rows [N, A*gh*gw, 5+C] in (anchor, y, x) order, the order yolo_decode.c
 * walks (so equal scores break ties the same way). Per row, constants hold
 * what depends on the cell: centre = sigmoid(t_xy) * s/g + (cell - (s-1)/2)/g
 * (s = 1 + grid_xy_extend, g = grid size), size = anchor * exp(min(t_wh, 8)),
 * corners centre -+ size/2, score = sigmoid(obj) * sigmoid(cls). Boxes are
 * x1,y1,x2,y2 normalised to the network input, as TAO's plugin takes them.
 *
 * NMS "onnx": nms.c exactly (det_export_nms_onnx, src/tasks/common).
 * NMS "trt": TAO's BatchedNMSDynamic_TRT node; "none": boxes and scores. */
#include <stdio.h>
#include <string.h>
#include "tasks/common/det_export_tail.h"
#include "tasks/yolo_v4/yolo_task.h"

#define TRT_MAX_TOPK 4096 /* TensorRT's BatchedNMS sorts at most 4096 boxes per class */

int yolo_trt_topk(int num_boxes) { return num_boxes < TRT_MAX_TOPK ? num_boxes : TRT_MAX_TOPK; }

/* Rows of every head, concatenated: [N, B, 5+C]. */
static const char *rows(struct deft_onnx_tail *t, const struct yolo_tail_opts *o, int per) {
    const char *parts[DEFT_YOLO_HEADS];
    for (int i = 0; i < o->heads->n; i++) {
        const struct deft_yolo_head *h = &o->heads->head[i];
        int64_t cells = (int64_t)h->gh * h->gw, a = h->n_anchors;
        const char *r =
            det_tail_op2(t, "Reshape", o->head_names[i], det_tail_i64(t, 4, (int64_t[]){0, a, per, cells}), NULL);
        const char *tr = det_tail_op1(t, "Transpose", r, NULL);
        deft_onnx_tail_attr_ints(t, "perm", 4, (int64_t[]){0, 1, 3, 2});
        parts[i] = det_tail_op2(t, "Reshape", tr, det_tail_i64(t, 3, (int64_t[]){0, a * cells, per}), NULL);
    }
    if (o->heads->n == 1) return parts[0];
    const char *c = deft_onnx_tail_node(t, "Concat", NULL, parts, o->heads->n, NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    return c;
}

/* Per-row constants [B, 2]: slope s/g, offset (cell - (s-1)/2)/g, anchor. */
static enum deft_status row_constants(const struct yolo_heads *hs, int nb, float **slope, float **off, float **anc) {
    *slope = deft_malloc((size_t)nb * 2 * sizeof **slope);
    *off = deft_malloc((size_t)nb * 2 * sizeof **off);
    *anc = deft_malloc((size_t)nb * 2 * sizeof **anc);
    if (!*slope || !*off || !*anc) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int r = 0;
    for (int i = 0; i < hs->n; i++) {
        const struct deft_yolo_head *h = &hs->head[i];
        double s = 1.0 + (double)h->xy_extend;
        for (int a = 0; a < h->n_anchors; a++)
            for (int y = 0; y < h->gh; y++)
                for (int x = 0; x < h->gw; x++, r++) {
                    (*slope)[2 * r] = (float)(s / h->gw);
                    (*slope)[2 * r + 1] = (float)(s / h->gh);
                    (*off)[2 * r] = (float)(((double)x - (s - 1.0) / 2.0) / h->gw);
                    (*off)[2 * r + 1] = (float)(((double)y - (s - 1.0) / 2.0) / h->gh);
                    (*anc)[2 * r] = h->anchors[2 * a];
                    (*anc)[2 * r + 1] = h->anchors[2 * a + 1];
                }
    }
    return DEFT_OK;
}

/* boxes [N, B, 4] and scores [N, B, C] from the rows. */
static void decode(struct deft_onnx_tail *t, const char *p, int nb, int nc, const float *slope, const float *off,
                   const float *anc, const char *boxes_name, const char *scores_name, const char **boxes,
                   const char **scores) {
    int64_t d2[2] = {nb, 2};
    const char *sl = deft_onnx_tail_const(t, "decode/xy_slope", DEFT_ONNX_FLOAT, 2, d2, slope);
    const char *of = deft_onnx_tail_const(t, "decode/xy_offset", DEFT_ONNX_FLOAT, 2, d2, off);
    const char *an = deft_onnx_tail_const(t, "decode/anchors", DEFT_ONNX_FLOAT, 2, d2, anc);
    const char *cxy = det_tail_op2(
        t, "Add", det_tail_op2(t, "Mul", det_tail_op1(t, "Sigmoid", det_tail_slice2(t, p, 0, 2), NULL), sl, NULL), of,
        NULL);
    const char *twh =
        det_tail_op2(t, "Min", det_tail_slice2(t, p, 2, 4), det_tail_scalar_f(t, 8.0f), NULL); /* TAO's cap */
    const char *half = det_tail_op2(t, "Mul", det_tail_op2(t, "Mul", det_tail_op1(t, "Exp", twh, NULL), an, NULL),
                                    det_tail_scalar_f(t, 0.5f), NULL);
    const char *corners[2] = {det_tail_op2(t, "Sub", cxy, half, NULL), det_tail_op2(t, "Add", cxy, half, NULL)};
    *boxes = deft_onnx_tail_node(t, "Concat", NULL, corners, 2, boxes_name);
    deft_onnx_tail_attr_i(t, "axis", 2);
    const char *obj = det_tail_op1(t, "Sigmoid", det_tail_slice2(t, p, 4, 5), NULL);
    const char *cls = det_tail_op1(t, "Sigmoid", det_tail_slice2(t, p, 5, 5 + (int64_t)nc), NULL);
    *scores = det_tail_op2(t, "Mul", obj, cls, scores_name);
}

/* TAO's plugin: boxes [N, B, 1, 4] (one box for all classes), scores [N, B, C]. */
static void nms_trt(struct deft_onnx_tail *t, const struct yolo_tail_opts *o, const char *boxes, const char *scores,
                    int nb) {
    int k = o->cfg.top_k < yolo_trt_topk(nb) ? o->cfg.top_k : yolo_trt_topk(nb);
    const char *b4 = det_tail_op2(t, "Reshape", boxes, det_tail_i64(t, 4, (int64_t[]){0, nb, 1, 4}), YOLO_OUT_BOXES);
    static const char *const outs[4] = {"BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3"};
    deft_onnx_tail_node_n(t, "BatchedNMSDynamic_TRT", "BatchedNMS_N", (const char *[]){b4, scores}, 2, outs, 4);
    deft_onnx_tail_attr_i(t, "shareLocation", 1);
    deft_onnx_tail_attr_i(t, "backgroundLabelId", -1);
    deft_onnx_tail_attr_i(t, "numClasses", o->n_classes);
    /* every candidate enters NMS (up to the plugin's 4096), as in nms.c; TAO writes 2 * top_k */
    deft_onnx_tail_attr_i(t, "topK", yolo_trt_topk(nb));
    deft_onnx_tail_attr_i(t, "keepTopK", k);
    deft_onnx_tail_attr_f(t, "scoreThreshold", o->cfg.conf);
    deft_onnx_tail_attr_f(t, "iouThreshold", o->cfg.iou);
    deft_onnx_tail_attr_i(t, "isNormalized", 1);
    deft_onnx_tail_attr_i(t, "clipBoxes", 1);
    if (o->score_bits > 0) deft_onnx_tail_attr_i(t, "scoreBits", o->score_bits);
    deft_onnx_tail_attr_s(t, "plugin_version", "1");
    deft_onnx_tail_output(t, outs[0], DEFT_ONNX_INT32, 2, (int64_t[]){-1, 1});
    deft_onnx_tail_output(t, outs[1], DEFT_ONNX_FLOAT, 3, (int64_t[]){-1, k, 4});
    deft_onnx_tail_output(t, outs[2], DEFT_ONNX_FLOAT, 2, (int64_t[]){-1, k});
    deft_onnx_tail_output(t, outs[3], DEFT_ONNX_FLOAT, 2, (int64_t[]){-1, k});
}

enum deft_status yolo_export_tail(const struct yolo_tail_opts *o, struct deft_onnx_tail **out, int *num_boxes) {
    *out = NULL;
    int nb = 0, nc = o->n_classes;
    for (int i = 0; i < o->heads->n; i++)
        nb += o->heads->head[i].n_anchors * o->heads->head[i].gh * o->heads->head[i].gw;
    *num_boxes = nb;
    struct deft_onnx_tail *t = deft_onnx_tail_create("decode/");
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    float *slope = NULL, *off = NULL, *anc = NULL;
    enum deft_status s = row_constants(o->heads, nb, &slope, &off, &anc);
    if (!s) {
        const char *boxes, *scores;
        const char *p = rows(t, o, 5 + nc);
        bool plain = o->nms == DET_NMS_NONE;
        decode(t, p, nb, nc, slope, off, anc, plain ? YOLO_OUT_BOXES : "decode/boxes",
               YOLO_OUT_SCORES, &boxes, &scores);
        if (plain) {
            deft_onnx_tail_output(t, boxes, DEFT_ONNX_FLOAT, 3, (int64_t[]){-1, nb, 4});
            deft_onnx_tail_output(t, scores, DEFT_ONNX_FLOAT, 3, (int64_t[]){-1, nb, nc});
        } else if (o->nms == DET_NMS_TRT) {
            nms_trt(t, o, boxes, scores, nb);
        } else {
            det_export_nms_onnx(t, boxes, scores, nb, nc, o->cfg.conf, o->cfg.iou, o->cfg.top_k);
        }
        s = deft_onnx_tail_status(t);
    }
    deft_free(slope);
    deft_free(off);
    deft_free(anc);
    if (s) {
        deft_onnx_tail_free(t);
        return s;
    }
    *out = t;
    return DEFT_OK;
}

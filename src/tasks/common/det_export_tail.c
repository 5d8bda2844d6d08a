/* det_export_tail.c - ONNX node helpers of the detectors' export tails and
 * nms.c as standard ONNX nodes: NonMaxSuppression per class (score > conf,
 * IoU > iou suppresses, at most top_k per class); the kept scores are
 * scattered into a dense [N, C*B] map (-1 elsewhere) so one TopK per image
 * takes the best top_k over all classes, ties to the lower class then the
 * lower box, the order nms.c sorts by; boxes gathered and clipped to [0, 1]. */
#include "tasks/common/det_export_tail.h"

const char *det_tail_i64(struct deft_onnx_tail *t, int n, const int64_t *v) {
    return deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 1, (int64_t[]){n}, v);
}
const char *det_tail_scalar_i64(struct deft_onnx_tail *t, int64_t v) {
    return deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 0, NULL, &v);
}
const char *det_tail_scalar_f(struct deft_onnx_tail *t, float v) {
    return deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 0, NULL, &v);
}
const char *det_tail_op1(struct deft_onnx_tail *t, const char *op, const char *a, const char *out) {
    return deft_onnx_tail_node(t, op, NULL, &a, 1, out);
}
const char *det_tail_op2(struct deft_onnx_tail *t, const char *op, const char *a, const char *b, const char *out) {
    return deft_onnx_tail_node(t, op, NULL, (const char *[]){a, b}, 2, out);
}
/* x[..., lo:hi] of a rank-3 tensor. */
const char *det_tail_slice2(struct deft_onnx_tail *t, const char *x, int64_t lo, int64_t hi) {
    return deft_onnx_tail_node(
        t, "Slice", NULL,
        (const char *[]){x, det_tail_i64(t, 1, &lo), det_tail_i64(t, 1, &hi), det_tail_i64(t, 1, (int64_t[]){2})}, 4,
        NULL);
}
const char *det_tail_unsqueeze(struct deft_onnx_tail *t, const char *x, int64_t axis) {
    return det_tail_op2(t, "Unsqueeze", x, det_tail_i64(t, 1, &axis), NULL);
}
const char *det_tail_slice(struct deft_onnx_tail *t, const char *x, int64_t axis, int64_t lo, int64_t hi) {
    return deft_onnx_tail_node(
        t, "Slice", NULL,
        (const char *[]){x, det_tail_i64(t, 1, &lo), det_tail_i64(t, 1, &hi), det_tail_i64(t, 1, &axis)}, 4, NULL);
}
const char *det_tail_reshape(struct deft_onnx_tail *t, const char *x, int n, const int64_t *d) {
    return det_tail_op2(t, "Reshape", x, det_tail_i64(t, n, d), NULL);
}
const char *det_tail_transpose(struct deft_onnx_tail *t, const char *x, int n, const int64_t *perm) {
    const char *r = det_tail_op1(t, "Transpose", x, NULL);
    deft_onnx_tail_attr_ints(t, "perm", n, perm);
    return r;
}
const char *det_tail_concat(struct deft_onnx_tail *t, const char *const *x, int n, int64_t axis, const char *out) {
    const char *r = deft_onnx_tail_node(t, "Concat", NULL, x, n, out);
    deft_onnx_tail_attr_i(t, "axis", axis);
    return r;
}
const char *det_tail_cast(struct deft_onnx_tail *t, const char *x, enum deft_onnx_dtype to) {
    const char *r = det_tail_op1(t, "Cast", x, NULL);
    deft_onnx_tail_attr_i(t, "to", to);
    return r;
}
const char *det_tail_gather_rows(struct deft_onnx_tail *t, const char *x, const char *idx) {
    const char *r = det_tail_op2(t, "GatherND", x, det_tail_unsqueeze(t, idx, 2), NULL);
    deft_onnx_tail_attr_i(t, "batch_dims", 1);
    return r;
}
const char *det_tail_topk(struct deft_onnx_tail *t, const char *x, int64_t k, const char **idx) {
    deft_onnx_tail_node_n(t, "TopK", NULL, (const char *[]){x, det_tail_i64(t, 1, &k)}, 2, NULL, 2);
    deft_onnx_tail_attr_i(t, "axis", 1);
    deft_onnx_tail_attr_i(t, "largest", 1);
    deft_onnx_tail_attr_i(t, "sorted", 1);
    *idx = deft_onnx_tail_out(t, 1);
    return deft_onnx_tail_out(t, 0);
}
const char *det_tail_batch_range(struct deft_onnx_tail *t, const char *x) {
    const char *n = det_tail_op2(t, "Gather", det_tail_op1(t, "Shape", x, NULL), det_tail_scalar_i64(t, 0), NULL);
    return deft_onnx_tail_node(t, "Range", NULL,
                               (const char *[]){det_tail_scalar_i64(t, 0), n, det_tail_scalar_i64(t, 1)}, 3, NULL);
}
/* Gather column k of a [K, 3] index table -> [K]. */
static const char *column(struct deft_onnx_tail *t, const char *x, int64_t k) {
    const char *g = det_tail_op2(t, "Gather", x, det_tail_scalar_i64(t, k), NULL);
    deft_onnx_tail_attr_i(t, "axis", 1);
    return g;
}

/* ONNX's NonMaxSuppression and a per-image TopK: nms.c's result, padded to K. */
void det_export_nms_onnx(struct deft_onnx_tail *t, const char *boxes, const char *scores, int nb, int nc, float conf,
                         float iou, int top_k) {
    int64_t total = (int64_t)nc * nb, k = top_k < total ? top_k : total;
    const char *sct = det_tail_op1(t, "Transpose", scores, NULL); /* [N, C, B] */
    deft_onnx_tail_attr_ints(t, "perm", 3, (int64_t[]){0, 2, 1});
    int64_t top = top_k;
    const char *sel = deft_onnx_tail_node(
        t, "NonMaxSuppression", "nms/NonMaxSuppression",
        (const char *[]){boxes, sct, det_tail_i64(t, 1, &top),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){1}, &iou),
                         deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 1, (int64_t[]){1}, &conf)},
        5, NULL); /* [K, 3]: image, class, box */
    deft_onnx_tail_attr_i(t, "center_point_box", 0);
    const char *nbc = det_tail_scalar_i64(t, nb);
    const char *flat =
        det_tail_op2(t, "Add", det_tail_op2(t, "Mul", column(t, sel, 1), nbc, NULL), column(t, sel, 2), NULL);
    const char *where_at[2] = {det_tail_unsqueeze(t, column(t, sel, 0), 1), det_tail_unsqueeze(t, flat, 1)};
    const char *at = deft_onnx_tail_node(t, "Concat", NULL, where_at, 2, NULL); /* [K, 2]: image, class*B+box */
    deft_onnx_tail_attr_i(t, "axis", 1);
    const char *kept_scores = det_tail_op2(t, "GatherND", sct, sel, NULL);
    const char *dense = det_tail_op2(t, "Reshape", sct, det_tail_i64(t, 2, (int64_t[]){0, total}), NULL);
    float minus1 = -1.0f;
    const char *fill =
        det_tail_op2(t, "Expand", deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 2, (int64_t[]){1, 1}, &minus1),
                     det_tail_op1(t, "Shape", dense, NULL), NULL);
    const char *map = deft_onnx_tail_node(t, "ScatterND", NULL, (const char *[]){fill, at, kept_scores}, 3, NULL);
    deft_onnx_tail_node_n(t, "TopK", "nms/TopK", (const char *[]){map, det_tail_i64(t, 1, &k)}, 2, NULL, 2);
    deft_onnx_tail_attr_i(t, "axis", 1);
    deft_onnx_tail_attr_i(t, "largest", 1);
    deft_onnx_tail_attr_i(t, "sorted", 1);
    const char *tv = deft_onnx_tail_out(t, 0), *ti = deft_onnx_tail_out(t, 1);
    const char *valid = det_tail_op2(t, "Greater", tv, det_tail_scalar_f(t, conf), NULL); /* padding is -1 */
    const char *vf = det_tail_op1(t, "Cast", valid, NULL);
    deft_onnx_tail_attr_i(t, "to", DEFT_ONNX_FLOAT);
    const char *vi = det_tail_op1(t, "Cast", valid, NULL);
    deft_onnx_tail_attr_i(t, "to", DEFT_ONNX_INT32);
    det_tail_op2(t, "ReduceSum", vi, det_tail_i64(t, 1, (int64_t[]){1}), "num_detections");
    deft_onnx_tail_attr_i(t, "keepdims", 1);
    det_tail_op2(t, "Mul", tv, vf, "detection_scores");
    const char *cls = det_tail_op1(t, "Cast", det_tail_op2(t, "Div", ti, nbc, NULL), NULL);
    deft_onnx_tail_attr_i(t, "to", DEFT_ONNX_INT32);
    int32_t none = -1;
    deft_onnx_tail_node(t, "Where", NULL,
                        (const char *[]){valid, cls, deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT32, 0, NULL, &none)},
                        3, "detection_classes");
    const char *box_at = det_tail_unsqueeze(t, det_tail_op2(t, "Mod", ti, nbc, NULL), 2); /* [N, K, 1] */
    const char *g = det_tail_op2(t, "GatherND", boxes, box_at, NULL);
    deft_onnx_tail_attr_i(t, "batch_dims", 1);
    const char *clipped = deft_onnx_tail_node(
        t, "Clip", NULL, (const char *[]){g, det_tail_scalar_f(t, 0.0f), det_tail_scalar_f(t, 1.0f)}, 3,
        NULL); /* nms.c clips the kept boxes */
    det_tail_op2(t, "Mul", clipped, det_tail_unsqueeze(t, vf, 2), "detection_boxes");
    deft_onnx_tail_output(t, "num_detections", DEFT_ONNX_INT32, 2, (int64_t[]){-1, 1});
    deft_onnx_tail_output(t, "detection_boxes", DEFT_ONNX_FLOAT, 3, (int64_t[]){-1, k, 4});
    deft_onnx_tail_output(t, "detection_scores", DEFT_ONNX_FLOAT, 2, (int64_t[]){-1, k});
    deft_onnx_tail_output(t, "detection_classes", DEFT_ONNX_INT32, 2, (int64_t[]){-1, k});
}


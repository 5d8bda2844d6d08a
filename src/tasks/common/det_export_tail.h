/* det_export_tail.h (internal) - ONNX node helpers for the detectors' export
 * tails, and nms.c's per-class NMS as standard ONNX nodes (the portable
 * `--nms onnx` of yolo_v4 and ssd). */
#ifndef DEFT_TASKS_DET_EXPORT_TAIL_H
#define DEFT_TASKS_DET_EXPORT_TAIL_H

#include "deft/io.h"

const char *det_tail_i64(struct deft_onnx_tail *t, int n, const int64_t *v);
const char *det_tail_scalar_i64(struct deft_onnx_tail *t, int64_t v);
const char *det_tail_scalar_f(struct deft_onnx_tail *t, float v);
const char *det_tail_op1(struct deft_onnx_tail *t, const char *op, const char *a, const char *out);
const char *det_tail_op2(struct deft_onnx_tail *t, const char *op, const char *a, const char *b, const char *out);
const char *det_tail_unsqueeze(struct deft_onnx_tail *t, const char *x, int64_t axis);
/* x[..., lo:hi] of a rank-3 tensor. */
const char *det_tail_slice2(struct deft_onnx_tail *t, const char *x, int64_t lo, int64_t hi);
/* x[lo:hi] along axis. */
const char *det_tail_slice(struct deft_onnx_tail *t, const char *x, int64_t axis, int64_t lo, int64_t hi);
const char *det_tail_reshape(struct deft_onnx_tail *t, const char *x, int n, const int64_t *d);
const char *det_tail_transpose(struct deft_onnx_tail *t, const char *x, int n, const int64_t *perm);
const char *det_tail_concat(struct deft_onnx_tail *t, const char *const *x, int n, int64_t axis, const char *out);
const char *det_tail_cast(struct deft_onnx_tail *t, const char *x, enum deft_onnx_dtype to);
/* x [N, B, ...] rows idx [N, K] -> [N, K, ...]. */
const char *det_tail_gather_rows(struct deft_onnx_tail *t, const char *x, const char *idx);
/* The k largest along axis 1, sorted: values, and *idx the indices. */
const char *det_tail_topk(struct deft_onnx_tail *t, const char *x, int64_t k, const char **idx);
/* [0, 1, ..., N-1] for N = dim 0 of x (the batch), int64. */
const char *det_tail_batch_range(struct deft_onnx_tail *t, const char *x);

/* boxes [N, B, 4] (x1,y1,x2,y2 normalised) and scores [N, B, C] -> the graph
 * outputs num_detections int32 [N,1], detection_boxes [N,K,4] (clipped to
 * [0,1]), detection_scores [N,K], detection_classes int32 [N,K] (-1 padding):
 * deft_nms_per_class with (iou, top_k per class and per image) on the
 * candidates scoring above conf. */
void det_export_nms_onnx(struct deft_onnx_tail *t, const char *boxes, const char *scores, int nb, int nc, float conf,
                         float iou, int top_k);
#endif

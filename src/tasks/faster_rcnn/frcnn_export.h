/* frcnn_export.h (internal) - `deft faster_rcnn export`: the host steps as
 * ONNX nodes (frcnn_export_tail.c) and the action (frcnn_export.c). */
#ifndef DEFT_TASKS_FRCNN_EXPORT_H
#define DEFT_TASKS_FRCNN_EXPORT_H

#include "deft/det_ops.h"
#include "deft/io.h"
#include "tasks/common/det_export.h"
#include "tasks/faster_rcnn/frcnn_run.h"

/* Tensor names the two tails share, and the model's outputs (TAO's NMS layout). */
#define FRCNN_X_ROIS "proposal/rois"   /* [N * R, 5] (image, x1, y1, x2, y2): the crop's boxes */
#define FRCNN_X_BOXES "proposal/boxes" /* [N, R, 4] proposals in network pixels, zeros after the kept */
#define FRCNN_X_VALID "proposal/valid" /* [N, R] 1 on a kept proposal, 0 on padding */
#define FRCNN_X_NMS "NMS"              /* [N, 1, K, 7] (image, label, conf, x1, y1, x2, y2 in [0, 1]) */
#define FRCNN_X_COUNT "NMS_1"          /* [N, 1, 1, 1] int32 detections kept */

/* Proposal rows per image in the exported graph: min(max_boxes, pre_nms_top_n, anchors). */
int frcnn_export_rows(const struct frcnn_params *p, const struct frcnn_prop_cfg *c);
/* frcnn_proposals as nodes from the RPN outputs rpn_cls [N, A, h, w] and
 * rpn_regr [N, 4A, h, w]: declares FRCNN_X_ROIS (the mid tail's output). */
enum deft_status frcnn_export_proposals(const struct frcnn_params *p, const struct frcnn_prop_cfg *c,
                                        const char *rpn_cls, const char *rpn_regr, struct deft_onnx_tail **out);
/* frcnn_detect as nodes from the RCNN outputs cls [N*R, C+1], regr [N*R, 4C]
 * (and the proposal tail's boxes and mask): outputs FRCNN_X_NMS, FRCNN_X_COUNT. */
enum deft_status frcnn_export_detections(const struct frcnn_params *p, int R, const struct frcnn_nms *nms,
                                         const char *cls, const char *regr, struct deft_onnx_tail **out);

/* Shared by both tails: corners [..., 4] clamped to [0, w] x [0, h]; torchvision's
 * BoxCoder decode of deltas d against ref sizes and centres (last axis `axis`). */
const char *frcnn_tail_clip_boxes(struct deft_onnx_tail *t, const char *b, int w, int h);
const char *frcnn_tail_decode(struct deft_onnx_tail *t, const char *ref_wh, const char *ref_c, const char *d,
                              int64_t axis, const float wt[4]);

/* --nms trt (frcnn_export_trt.c), TAO's plugin layout. The RPN outputs into
 * ProposalDynamic: FRCNN_X_TRT_ROIS [N, R, 4, 1] (y1, x1, y2, x2 in [0, 1]),
 * R = max_boxes, the rois CropAndResizeDynamic reads. */
#define FRCNN_X_TRT_ROIS "proposal/rois_trt"
enum deft_status frcnn_export_proposals_trt(const struct frcnn_model *fm, const struct frcnn_prop_cfg *c,
                                            const char *rpn_cls, const char *rpn_regr, struct deft_onnx_tail **out);
/* The RCNN outputs as NMSDynamic_TRT's loc_data (per class boxes decoded
 * against the proposals, background last and zero), conf_data (softmax) and
 * a zero prior (CORNER code: box = prior + loc): outputs FRCNN_X_NMS, FRCNN_X_COUNT. */
enum deft_status frcnn_export_detections_trt(const struct frcnn_params *p, int R, const struct frcnn_nms *nms,
                                             const char *cls, const char *regr, struct deft_onnx_tail **out);

/* --data_type int8 (frcnn_export_int8.c): activation ranges (one per value of
 * fm->g) over --batches x --batch_size calibration images run through both
 * node ranges with the host proposals between them, fm opened at batch
 * --batch_size; and the QDQ copy of the export eo, the four head layers float
 * unless --quantize_head. */
enum deft_status frcnn_export_calibrate(const struct det_export_opts *o, const struct frcnn_setup *f,
                                        struct frcnn_model *fm, const struct frcnn_prop_cfg *pc,
                                        const struct deft_task_args *a, float **amax);
enum deft_status frcnn_export_qdq(const struct det_export_opts *o, const struct frcnn_model *fm,
                                  const struct deft_onnx_export_opts *eo, const float *amax);

enum deft_status frcnn_export(const struct deft_task_args *a);
#endif

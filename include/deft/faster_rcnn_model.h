/* deft/faster_rcnn_model.h - TAO's Faster R-CNN as one graph with two inputs:
 *
 *   image [B,3,H,W] -> backbone to stride 16 -> RPN: 3x3 conv 512 + ReLU,
 *                      1x1 conv A (objectness logits), 1x1 conv 4A (deltas)
 *   rois  [B*R,5]   -> crop-and-resize of the stride-16 map (TAO's CropAndResize,
 *                      pool_size, or 2 x pool_size with pool_size_2x) -> the RCNN
 *                      body (resnet: layer4, as TAO runs the backbone's last block
 *                      on the RoIs; other backbones: average pool + fc 1024 + ReLU)
 *                      -> average pool -> dense_class_td [B*R, C+1] (logits,
 *                      background last) and dense_regress_td [B*R, 4C]
 *
 * The RoIs are computed on the host from the RPN outputs (proposals, and
 * during training their sampling against the ground truth) and set between
 * the two node ranges: the first node reading the "rois" input starts the
 * second range (deft_trainer_opts.mid_forward). Rows of rois are (batch
 * index, x1, y1, x2, y2) in input pixels; image b owns rows [b*R, (b+1)*R).
 *
 * Outputs in role order: rpn_out_class [B,A,H/16,W/16] (logits: the sigmoid is
 * the loss's and the proposal layer's), rpn_out_regress [B,4A,H/16,W/16]
 * (anchor a's deltas at channels 4a..4a+3, anchors ordered as
 * deft_frcnn_anchors: row, column, scale, ratio), dense_class_td, dense_regress_td.
 */
#ifndef DEFT_FASTER_RCNN_MODEL_H
#define DEFT_FASTER_RCNN_MODEL_H

#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_FRCNN_ROLE_ROIS "rois"
#define DEFT_FRCNN_ROLE_RPN_CLS "rpn_out_class"
#define DEFT_FRCNN_ROLE_RPN_REGR "rpn_out_regress"
#define DEFT_FRCNN_ROLE_CLS "dense_class_td"
#define DEFT_FRCNN_ROLE_REGR "dense_regress_td"
#define DEFT_FRCNN_STRIDE 16

struct deft_frcnn_model_opts {
    const char *arch;          /* "resnet" + n_layers, or a registry name ("resnet18", "mobilenet_v2") */
    int n_layers;
    int num_classes;           /* object classes, without the background */
    int n_anchors;             /* anchors per cell (scales x ratios) */
    int height, width;         /* input, multiples of 16 */
    int batch, rois_per_image; /* rois input rows = batch * rois_per_image */
    int pool_size;             /* crop size (TAO 7) */
    bool pool_size_2x;         /* crop 2 x pool_size, the RCNN body's first block at stride 2 */
    bool training, freeze_bn;
    const int *freeze_blocks;  /* TAO's block ids frozen (resnet: 0 = conv1, i = layer i) */
    int n_freeze_blocks;
};

/* Build the graph into *out (free with deft_graph_free). Bad sizes, class or
 * anchor counts give DEFT_ERR_INVALID_ARG; a backbone without a stride-16
 * layout DEFT_ERR_UNSUPPORTED. */
DEFT_API DEFT_NODISCARD enum deft_status deft_frcnn_model_build(const struct deft_frcnn_model_opts *o,
                                                               struct deft_graph **out);

#ifdef __cplusplus
}
#endif
#endif

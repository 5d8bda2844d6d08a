/* deft/ssd_model.h - TAO's SSD network (cv/ssd: ssd_backbones.py + ssd_arch.py).
 *
 *     struct deft_ssd_model_opts o = {.arch = "resnet", .nlayers = 18, .num_classes = 4,  // + background
 *                                     .boxes_per_cell = {6,6,6,6,6,6}, .height = 300, .width = 300,
 *                                     .batch = 8, .training = true};
 *     struct deft_graph *g;
 *     if (deft_ssd_model_build(&o, &g)) puts(deft_last_error());
 *     // input "Input" [8, 3, 300, 300]; 12 outputs (DEFT_VF_OUTPUT, in this order):
 *     //   ssd_conf_0..5 [8, nb*num_classes, h_l, w_l], ssd_loc_0..5 [8, nb*4, h_l, w_l]
 *
 * Channel layout (TAO's Permute(2,3,1) + Reshape(-1, C)): prior (y, x, b) of layer l takes
 * conf channels b*C .. b*C+C-1 and loc channels b*4 .. b*4+3 (cx, cy, w, h offsets) at (y, x);
 * priors enumerate layer by layer, row, column, box - deft_ssd_priors' order.
 *
 * Topology: the backbone (deft_backbone_build, TAO's detection layout: output stride 16,
 * force_relu) gives the first predictor map (resnet: layer2's output at stride 8, TAO's
 * block_2b_relu; darknet: stride 8 and 16); TAO's expansion blocks on its last map give the
 * rest, each a 1x1 conv with bias + ReLU then a 3x3 conv (stride 1 for block 0, else 2) + BN +
 * ReLU ("ssd_expand_block_B_conv_K", "_bn_K", "_relu_K"):
 *   resnet18/34 (mid)   256/256, 128/256, 64/128, 64/128, 64/128
 *   resnet50/101 (large) 512/512, 256/512, 128/256, 128/256, 128/256
 *   resnet10, mobilenet_v2 (small): no block 0 (the backbone's last map is map 1), 64/128 x 4
 *   darknet19 (mid) / darknet53 (large): two backbone maps, blocks 0..3
 * Heads: 3x3 convs with bias, "ssd_conf_l" and "ssd_loc_l". Softmax, decoding and NMS are the
 * task's (host side, and the export's ONNX tail).
 * Graph metadata: "arch" "\"ssd\"", "backbone", "num_classes" (with background), "input_shape",
 * "boxes_per_cell" ("[6,6,6,6,6,6]").
 */
#ifndef DEFT_SSD_MODEL_H
#define DEFT_SSD_MODEL_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_SSD_MAPS 6

struct deft_ssd_model_opts {
    const char *arch;            /* TAO's "resnet" (+ nlayers), "mobilenet_v2", "darknet", or "resnet18" */
    int nlayers;
    int num_classes;             /* including background (TAO's n_classes) >= 2 */
    int boxes_per_cell[DEFT_SSD_MAPS];
    int channels;                /* 0 -> 3 */
    int height, width;           /* 0 -> 300; >= 32 */
    int batch;                   /* 0 -> 1 */
    bool freeze_bn;              /* backbone BN frozen */
    const int *freeze_blocks;
    int n_freeze_blocks;
    bool training;
};

/* Errors: DEFT_ERR_UNSUPPORTED (a backbone TAO's SSD has but deft has no taps for, named),
 * DEFT_ERR_INVALID_ARG (classes, boxes, sizes). */
DEFT_API DEFT_NODISCARD enum deft_status deft_ssd_model_build(const struct deft_ssd_model_opts *o,
                                                             struct deft_graph **out);

#ifdef __cplusplus
}
#endif
#endif

/* deft/retinanet_model.h - TAO's RetinaNet network (cv/retinanet: models/fpn.py
 * and architecture/retinanet.py).
 *
 *     struct deft_retinanet_model_opts o = {.arch = "resnet", .nlayers = 18, .num_classes = 4, // + background
 *                                           .boxes_per_cell = 9, .n_kernels = 2, .feature_size = 256,
 *                                           .height = 512, .width = 512, .batch = 8, .training = true};
 *     struct deft_graph *g;
 *     if (deft_retinanet_model_build(&o, &g)) puts(deft_last_error());
 *     // input "Input" [8, 3, 512, 512]; 10 outputs (DEFT_VF_OUTPUT, in this order):
 *     //   conf of P3..P7 [8, nb*num_classes, h_l, w_l], then loc of P3..P7 [8, nb*4, h_l, w_l]
 *
 * The outputs have SSD's layout (deft/ssd_model.h), so SSD's gather, matching,
 * decoding and export tails read them unchanged; the logits are sigmoid ones.
 *
 * Topology (TAO's FPN): C3 = the backbone's stride-8 map, C4 = its last map
 * (stride 16, TAO's detection layout, no forced ReLU); C5 = "expand_conv1"
 * (3x3 stride 2) + "expand1_relu"; P5 = "C5_reduced" (1x1) -> "P5" (3x3) +
 * "P5_relu"; P4 = "C4_reduced"(C4) + "P5_upsampled" ("P4_merged") -> "P4" (3x3)
 * + "P4_relu"; P3 likewise from C3 and "P4_upsampled"; "P6" = 3x3 stride 2 on
 * C5 + "P6_relu"; "P7" = 3x3 stride 2 on that + "P7_relu". Every FPN conv has
 * feature_size channels and a bias (he_normal). Subnets, their weights shared
 * by the five levels (level 0 owns them; level l's nodes are "<name>.l<l>"):
 * n_kernels x ("retinanet_class_subn_k" 3x3 + ReLU) then
 * "retinanet_conf_regressor" (nb * num_classes, bias -log(99): TAO's prior
 * probability 0.01), and "retinanet_loc_subn_k" ... "retinanet_loc_regressor"
 * (nb * 4); subnet kernels N(0, 0.01), biases zero.
 * Graph metadata: "arch" "\"retinanet\"", "backbone", "num_classes", "input_shape",
 * "boxes_per_cell".
 */
#ifndef DEFT_RETINANET_MODEL_H
#define DEFT_RETINANET_MODEL_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_RETINANET_MAPS 5

struct deft_retinanet_model_opts {
    const char *arch;            /* TAO's "resnet" (+ nlayers), "mobilenet_v2", ... or "resnet18" */
    int nlayers;
    int num_classes;             /* including background (TAO's n_classes) >= 2 */
    int boxes_per_cell;          /* the same on every level (TAO: n_anchor_levels x aspects) */
    int n_kernels;               /* 0..16 */
    int feature_size;            /* 0 -> 256 */
    int channels;                /* 0 -> 3 */
    int height, width;           /* multiples of 32, >= 64 */
    int batch;                   /* 0 -> 1 */
    bool freeze_bn;
    const int *freeze_blocks;
    int n_freeze_blocks;
    bool training;
};

/* Errors: DEFT_ERR_UNSUPPORTED (a backbone without stride-8 and stride-16 maps),
 * DEFT_ERR_INVALID_ARG (classes, boxes, sizes). */
DEFT_API DEFT_NODISCARD enum deft_status deft_retinanet_model_build(const struct deft_retinanet_model_opts *o,
                                                                   struct deft_graph **out);

#ifdef __cplusplus
}
#endif
#endif

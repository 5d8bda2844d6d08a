/* deft/yolo_model.h - the YOLOv4 and YOLOv4-tiny networks (TAO's yolo_v4 topology).
 *
 *     struct deft_yolo_v4_opts o = {.arch = "resnet", .nlayers = 18, .num_classes = 3,
 *                                   .batch = 8, .training = true};
 *     struct deft_graph *g;
 *     if (deft_yolo_v4_build(&o, &g) != DEFT_OK) puts(deft_last_error());
 *     // input "input_1" [8, 3, 416, 416]
 *     // outputs (DEFT_VF_OUTPUT, in this order): "head_s32" [8, 3*(5+3), 13, 13],
 *     //   "head_s16" [.., 26, 26], "head_s8" [.., 52, 52]   (tiny: head_s32, head_s16)
 *
 * Each head channel block a*(5+C) .. holds anchor a's raw (tx, ty, tw, th, obj, classes...);
 * decoding and the loss are the detection task's business.
 *
 * Topology (TAO's cv/yolo_v4 base_model.py + yolo_arch.py; names are TAO's layer names):
 *  - backbone (deft_backbone_build, torchvision / timm parameter names, so a deft classification
 *    model's backbone loads by name): resnet and mobilenet_v2 in TAO's detection layout
 *    (output stride 16), darknets and cspdarknet_tiny as classified. freeze_bn freezes the
 *    backbone's BN only, freeze_blocks are the classification model's blocks.
 *  - neck (all but tiny): yolo_neck_1 1x1 512, yolo_neck_2 3x3 1024, yolo_neck_3 1x1 512 on the
 *    last backbone map, SPP (max pools 5/9/13, stride 1, same padding; concat [p5, p9, p13, x]),
 *    yolo_spp_conv 1x1 512; resnet / mobilenet_v2 then yolo_expand_conv1 3x3/2 (512; 1024 for
 *    resnet50; 96 for mobilenet_v2) to reach stride 32.
 *  - PAN (YOLO_FCN): top-down with nearest 2x upsampling and concat [up, 1x1 branch of the
 *    backbone tap], bottom-up with 3x3/2 convs and concat; widths from TAO's map sizes
 *    (resnet 128/64, mobilenet_v2 32/16, darknets 256/128).
 *  - every neck conv is conv (no bias) + BN + leaky ReLU 0.1 (force_relu: ReLU), modules
 *    "<name>.conv", "<name>.bn", "<name>.act"; heads are 1x1 convs with bias (no BN, no
 *    activation) "head_s32", "head_s16", "head_s8" (TAO's conv_big/mid/sm_object).
 *  - tiny (YOLO_FCN_Tiny): yolo_conv1_1 1x1 256 on stages.3, yolo_conv1_6 3x3 512 -> head_s32;
 *    yolo_conv2 1x1 128, upsample, concat [up, stages.2.conv3], yolo_conv3_6 3x3 256 -> head_s16.
 * Stride-2 convs pad 1 on every side (PyTorch's convention; TF's "same" pads bottom/right only).
 *
 * Graph metadata: "arch" ("\"yolo_v4\"" / "\"yolo_v4_tiny\""), "backbone" ("\"resnet18\""),
 * "num_classes", "input_shape", "anchors_per_head" ("[3,3,3]").
 */
#ifndef DEFT_YOLO_MODEL_H
#define DEFT_YOLO_MODEL_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_yolo_v4_opts {
    /* TAO's arch: "resnet", "cspdarknet", "cspdarknet_tiny", "mobilenet_v2", "darknet"
     * (with nlayers), or a registry name ("resnet18", "cspdarknet53"). */
    const char *arch;
    int nlayers;
    int num_classes;         /* required, >= 1 */
    int anchors[3];          /* anchors per head (stride 32, 16, 8); 0 -> 3; tiny has no [2] */
    int channels;            /* 0 -> 3 */
    int height, width;       /* 0 -> 416; multiples of 32 */
    int batch;               /* 0 -> 1 */
    /* backbone activation of cspdarknet / cspdarknet_tiny (TAO's yolov4_config.activation):
     * NULL or "leaky_relu" (TAO's default), "mish", "relu" */
    const char *activation;
    bool force_relu;         /* every LeakyReLU / Mish becomes ReLU */
    bool freeze_bn;          /* backbone BN in DEFT_BN_FROZEN (training graphs) */
    const int *freeze_blocks;
    int n_freeze_blocks;
    bool training;           /* BN batch statistics (else every BN uses running stats) */
};

/* Build the network. *out owns the new graph (deft_graph_free); NULL on error.
 * Errors: DEFT_ERR_NOT_FOUND (unknown arch, with the known ones), DEFT_ERR_INVALID_ARG
 * (num_classes, sizes not multiples of 32, anchors, freeze block out of range),
 * DEFT_ERR_UNSUPPORTED (an arch TAO's YOLOv4 does not take). */
DEFT_API DEFT_NODISCARD enum deft_status deft_yolo_v4_build(const struct deft_yolo_v4_opts *o,
                                                           struct deft_graph **out);

#ifdef __cplusplus
}
#endif
#endif

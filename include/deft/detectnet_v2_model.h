/* deft/detectnet_v2_model.h - TAO's DetectNet_v2 network (GridboxModel).
 *
 *     struct deft_dnv2_model_opts o = {.arch = "resnet", .num_layers = 18, .num_classes = 3,
 *                                      .height = 384, .width = 1248, .batch = 4, .training = true};
 *     struct deft_graph *g;
 *     if (deft_dnv2_model_build(&o, &g) != DEFT_OK) puts(deft_last_error());
 *     // input "input_1" [4, 3, 384, 1248]
 *     // outputs (DEFT_VF_OUTPUT, roles "output_cov" then "output_bbox"):
 *     //   "output_cov/Sigmoid"  [4, 3, 24, 78]   coverage per class, sigmoid
 *     //   "output_bbox/BiasAdd" [4, 12, 24, 78]  (L, T, R, B) per class, linear
 *
 * Topology (TAO model/detectnet_model.py, objectives/base_objective.py): the
 * backbone of deft_backbone_build in TAO's detection layout (output stride 16:
 * resnet's layer4 and mobilenet_v2's last stages at stride 1), parameter names
 * as deft's classifiers (a deft classification model's backbone weights load by
 * name: pretrained_model_file), then two 1x1 convolutions with bias on its last
 * map: "output_cov" (K channels) + sigmoid and "output_bbox" (4K channels),
 * glorot-uniform weights, zero bias. The output values are named as TAO's
 * TensorFlow graph names them, so an ONNX export has output_cov/Sigmoid and
 * output_bbox/BiasAdd. Class k's channels: cov k, bbox 4k..4k+3 (TAO's order =
 * cost_function_config.target_classes).
 *
 * Graph metadata: "arch" "\"detectnet_v2\"", "backbone" ("\"resnet18\""),
 * "num_classes", "input_shape" "[C,H,W]", "stride" 16.
 */
#ifndef DEFT_DETECTNET_V2_MODEL_H
#define DEFT_DETECTNET_V2_MODEL_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_DNV2_STRIDE 16
#define DEFT_DNV2_ROLE_COV "output_cov"
#define DEFT_DNV2_ROLE_BBOX "output_bbox"

struct deft_dnv2_model_opts {
    const char *arch;        /* TAO's model_config.arch: "resnet" (with num_layers) or "mobilenet_v2";
                                or a registry name ("resnet18") */
    int num_layers;
    int num_classes;         /* required, >= 1 */
    int channels;            /* 0 -> 3 */
    int height, width;       /* required: multiples of 16 */
    int batch;               /* 0 -> 1 */
    bool freeze_bn;          /* backbone BN in DEFT_BN_FROZEN (training graphs) */
    const int *freeze_blocks;/* the classification model's blocks */
    int n_freeze_blocks;
    bool freeze_backbone;    /* TAO freeze_pretrained_layers: every backbone param fixed */
    bool training;           /* BN batch statistics (else running statistics) */
};

/* Build the network. *out owns the new graph (deft_graph_free); NULL on error.
 * Errors: DEFT_ERR_NOT_FOUND (unknown arch), DEFT_ERR_UNSUPPORTED (a backbone
 * without a stride-16 layout: vgg, efficientnet, darknet ...), DEFT_ERR_INVALID_ARG
 * (classes, sizes, freeze blocks). */
DEFT_API DEFT_NODISCARD enum deft_status deft_dnv2_model_build(const struct deft_dnv2_model_opts *o,
                                                              struct deft_graph **out);

#ifdef __cplusplus
}
#endif
#endif

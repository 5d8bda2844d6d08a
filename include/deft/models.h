/* deft/models.h - model builders: an architecture name in, a graph out.
 *
 * A builder only describes the network (nodes, parameter names and shapes,
 * initializers); it allocates no tensor data. Parameter names are exactly
 * torchvision's state_dict keys, so a torchvision checkpoint loads by name:
 *
 *     struct deft_model_opts o = {
 *         .arch = "resnet18",
 *         .num_classes = 10,
 *         .batch = 32,                 // channels/height/width default to 3x224x224
 *         .training = true,            // BN uses batch statistics, dropout is active
 *         .seed = 42,
 *     };
 *     struct deft_graph *g;
 *     int input, logits;
 *     if (deft_model_build(&o, &g, &input, &logits) != DEFT_OK) {
 *         fprintf(stderr, "%s\n", deft_last_error());  // e.g. unknown architecture 'resnt18'
 *         return 1;                                       //  (known: ...); did you mean 'resnet18'?
 *     }
 *     // input  = the value "input_1"  [32, 3, 224, 224] (TAO's input name)
 *     // logits = the value "fc"       [32, 10], flagged DEFT_VF_OUTPUT
 *     // params: "conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", ..., "fc.bias"
 *     ...
 *     deft_graph_free(g);
 *
 * Node names are torchvision's module names ("layer1.0.conv1", "layer1.0.bn1",
 * "layer1.0.downsample.0", "features.0.0", "classifier.1"); nodes that are
 * functional calls in torchvision get descriptive names ("layer1.0.relu1",
 * "layer1.0.add", "maxpool", "avgpool", "flatten", "features.3.add").
 *
 * Initializers follow torchvision: resnet and mobilenet_v2 convolutions are
 * kaiming-normal (fan_out), BN weight 1 / bias 0, resnet's fc keeps PyTorch's
 * Linear default (uniform, fan_in), mobilenet_v2's classifier is N(0, 0.01)
 * with zero bias. deft_init_param() (graph.h) fills them.
 *
 * The graph metadata carries "arch" ("\"resnet18\""), "num_classes" ("10")
 * and "input_shape" ("[3,224,224]"), as JSON text.
 *
 * Architectures (deft_model_arch_names() lists them):
 *   resnet10                 BasicBlock x [1,1,1,1] (TAO's resnet10; no torchvision peer)
 *   resnet18, resnet34       BasicBlock x [2,2,2,2], [3,4,6,3]
 *   resnet50/101/152         Bottleneck (v1.5: stride on the 3x3) x [3,4,6,3], [3,4,23,3], [3,8,36,3]
 *   mobilenet_v2             torchvision layout, ReLU6, optional width multiplier
 */
#ifndef DEFT_MODELS_H
#define DEFT_MODELS_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Zero means "default" for every numeric field, so designated initializers
 * only name what differs. */
struct deft_model_opts {
    const char *arch;          /* required: "resnet18", ... (case-insensitive) */
    int num_classes;           /* 0 -> 1000 */
    int batch;                 /* 0 -> 1 */
    int channels;              /* input channels, 0 -> 3 */
    int height, width;         /* 0 -> 224 */
    /* BN mode of a training graph: DEFT_BN_TRAIN (default) or DEFT_BN_FROZEN
     * (freeze_bn). Inference graphs (training == false) always use DEFT_BN_EVAL. */
    enum deft_bn_mode bn_mode;
    /* Dropout probability before the classifier: 0 -> the architecture's
     * default (mobilenet_v2 0.2, resnet none), < 0 -> none. The dropout node
     * ("classifier.0" / "dropout") only exists in training graphs;
     * deft_graph_set_training(g, false) turns it off for evaluation. */
    float dropout;
    float width_mult;          /* mobilenet_v2 channel multiplier, 0 -> 1.0 */
    bool training;             /* training graph (BN batch stats, dropout) or inference */
    /* Stop after the last feature map (no pooling, no classifier): *logits is
     * then that feature map ("layer4.1.relu2", "features.18.2"), for
     * detection/segmentation heads and feature extraction. */
    bool features_only;
    uint64_t seed;             /* dropout mask seed */
};

/* Build the network described by *o. On success *out owns a new graph (free
 * with deft_graph_free), *input is the index of the input value "input_1"
 * [batch, channels, height, width] and *logits the index of the output value
 * ([batch, num_classes], DEFT_VF_OUTPUT). input/logits may be NULL.
 * Errors: DEFT_ERR_NOT_FOUND for an unknown arch (message lists the known ones
 * and suggests the closest), DEFT_ERR_INVALID_ARG for bad sizes, DEFT_ERR_SHAPE
 * when the input is too small for the network; *out is then NULL. */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_build(const struct deft_model_opts *o,
                                                         struct deft_graph **out, int *input,
                                                         int *logits);

/* NULL-terminated list of the architecture names deft_model_build accepts. */
DEFT_API const char *const *deft_model_arch_names(void);

/* True when deft_model_build knows `arch` (case-insensitive). */
DEFT_API bool deft_model_arch_known(const char *arch);

#ifdef __cplusplus
}
#endif
#endif

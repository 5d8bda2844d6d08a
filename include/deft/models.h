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
 * Architectures (deft_model_arch_names() lists them; params at 1000 classes):
 *   resnet10                 BasicBlock x [1,1,1,1] (TAO's resnet10; no torchvision peer)   5.42M
 *   resnet18, resnet34       BasicBlock x [2,2,2,2], [3,4,6,3]                       11.69M, 21.80M
 *   resnet50/101/152         Bottleneck (v1.5: stride on the 3x3) x [3,4,6,3], [3,4,23,3], [3,8,36,3]
 *   mobilenet_v2             torchvision layout, ReLU6, optional width multiplier            3.50M
 *   vgg16, vgg19             torchvision (no BN; conv bias; classifier 4096-4096 with
 *                            dropout 0.5; AdaptiveAvgPool 7x7 done exactly at any size)  138.36M, 143.67M
 *   vgg16_bn, vgg19_bn       torchvision with BN after every conv                      138.37M, 143.68M
 *   mobilenet_v1             no torchvision peer: Keras/TAO layout, width 1.0, ReLU6.
 *                            features.0 (.0 conv 3x3/2 32, .1 bn, .2 relu6), features.1..13
 *                            depthwise-separable blocks (.0.{0,1,2} depthwise conv/bn/relu6,
 *                            .1.{0,1,2} pointwise), avgpool, classifier.0 dropout 0.2,
 *                            classifier.1 linear                                            4.23M
 *   efficientnet_b0..b3      torchvision layout (features.N.M.block.K..., SiLU, squeeze-
 *                            excitation, classifier.0 dropout 0.2/0.2/0.3/0.3); default input
 *                            224/240/260/300. Stochastic depth is omitted: it is the
 *                            identity at inference, so eval outputs match torchvision, but
 *                            training runs without it (a little less regularization).
 *                                                                    5.29M, 7.79M, 9.11M, 12.23M
 *   googlenet                torchvision with aux_logits=False, transform_input=False (BN eps
 *                            1e-3 in every BasicConv2d, "conv1.conv"/"conv1.bn"/"conv1.relu";
 *                            inception branches joined by concat "inception3a.cat")        6.62M
 *   squeezenet1_0, 1_1       torchvision (fire modules "features.3.squeeze"... joined by concat
 *                            "features.3.cat"; classifier.0 dropout 0.5, classifier.1 conv,
 *                            classifier.2 relu, classifier.3 global avg pool, flatten)  1.25M, 1.24M
 *   darknet19                no torchvision peer: YOLO9000's classifier (conv+BN+leaky 0.1,
 *                            5 maxpool stages), named like timm's cspnet family below:
 *                            stem.conv1.{conv,bn,act}, stages.S.pool, stages.S.blocks.J.{conv,bn,act},
 *                            head.fc (avg pool + linear, equal to darknet's 1x1 conv + avg pool)
 *                                                                                         20.84M
 *   darknet53, cspdarknet53  no torchvision peer: timm's cspnet.py layout and names
 *                            (stem.conv1.conv/.bn, stages.S.conv_down, stages.S.blocks.J.conv1/
 *                            conv2, cspdarknet's conv_exp / conv_transition_b / conv_transition,
 *                            head.fc), so timm state_dicts load by name; leaky ReLU slope 0.1
 *                            (darknet's; timm uses 0.01), BN weights all 1 (timm zero-inits the
 *                            last BN of each block).                               41.61M, 27.64M
 *   cspdarknet_tiny          YOLOv4-tiny's backbone (TAO's cspdarknet_tiny), darknet.c's scheme:
 *                            stem.conv0/conv1, stages.0..2 (CSP tiny blocks), stages.3, head.fc
 *
 * TAO's names: arch "resnet"/"vgg"/"darknet"/"cspdarknet" with n_layers ("resnet" + 18 ->
 * resnet18), "squeezenet" (-> squeezenet1_0, TAO's fire2..fire9 layout), "mobilenet_v1",
 * "mobilenet_v2", "googlenet", "efficientnet_b0" as they are.
 *
 * Initializers the architectures add: vgg convs kaiming-normal (fan_out) with zero bias and
 * N(0, 0.01) linears; squeezenet kaiming-uniform (a=0: U(+-sqrt(6/fan_in))), final conv
 * N(0, 0.01), zero biases; googlenet N(0, 0.01) (torchvision's trunc_normal at +-2 is the
 * same to float precision), fc bias PyTorch's default; efficientnet kaiming-normal convs,
 * linear U(+-1/sqrt(out_features)) with zero bias; mobilenet_v1 / darknets as mobilenet_v2.
 * (A value's fan_in/fan_out fields are the initializer's parameters: where torchvision's
 * rule is not one of enum deft_init's, they are set so that the formula gives it.)
 *
 * Freeze blocks (TAO's freeze_blocks; deft_model_freeze_blocks): block 0 is the stem, block
 * i the i-th stage, as follows (deft_model_block_prefixes lists the param prefixes):
 *   resnet*          0 conv1+bn1, 1..4 layer1..layer4                          (TAO's definition)
 *   vgg*             0 nothing (no stem), 1..5 the convs of conv block 1..5 (TAO's block_1..5)
 *   mobilenet_v1     0 stem, 1..13 the depthwise-separable blocks              (features.i)
 *   mobilenet_v2     0 stem, 1..17 the inverted residual blocks, 18 the last 1x1 conv (features.i)
 *   efficientnet_b*  0 stem, 1..7 the MBConv stages, 8 the last 1x1 conv          (features.i)
 *   googlenet        0 conv1..conv3, 1..9 inception3a, 3b, 4a..4e, 5a, 5b
 *   squeezenet*      0 the first conv, 1..8 the fire modules in order (fire2..fire9)
 *   darknet*         0 stem, 1..5 stages.0..stages.4
 *   cspdarknet_tiny  0 stem.conv0, 1 stem.conv1, 2..4 stages.0..2, 5 stages.3 (TAO's conv_0..conv_5)
 * Classifier heads belong to no block.
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
    /* Data parallel (sync_bn): training BN statistics over the global batch,
     * all-reduced across the ranks (PyTorch SyncBatchNorm); false: per rank. */
    bool sync_bn;
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
    /* TAO's n_layers: 0 = use arch as is; with a family name ("resnet", "vgg",
     * "darknet", "cspdarknet") it picks the depth ("resnet" + 18 -> resnet18);
     * with a full name it must agree ("resnet18" + 50 is an error). */
    int n_layers;
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

/* The registry name for TAO's arch + n_layers ("resnet", 18 -> "resnet18";
 * "squeezenet", 0 -> "squeezenet1_0"; "ResNet50", 0 -> "resnet50"). *name is a
 * static string (NULL on error). Errors as deft_model_build's, plus
 * DEFT_ERR_INVALID_ARG for a family without n_layers or a contradiction. */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_resolve_arch(const char *arch, int n_layers,
                                                                const char **name);

/* Freeze blocks (see the table above). Number of blocks of arch (valid indices
 * 0..n-1), or -1 for an unknown arch (error set). */
DEFT_API int deft_model_num_blocks(const char *arch);
/* The param-name prefixes of a block, comma-separated into buf ("conv1.,bn1.";
 * truncated to cap, may be NULL): returns their number (0 for vgg's block 0),
 * -1 for an unknown arch or a block out of range (error set). */
DEFT_API int deft_model_block_prefixes(const char *arch, int block, char *buf, size_t cap);
/* Freeze (DEFT_VF_FROZEN) every param of the listed blocks (deft_graph_freeze
 * by prefix; BN running stats are state, not params). arch NULL = the graph's
 * "arch" metadata. Returns the number of params newly frozen, or -1 (error
 * set, graph unchanged) for an unknown arch or a block out of range. */
DEFT_API int deft_model_freeze_blocks(struct deft_graph *g, const char *arch, const int *blocks,
                                      int n);

/* ---- backbones with feature taps (detection / segmentation necks) ------- */

struct deft_backbone_opts {
    const char *arch;        /* registry name or TAO family ("resnet" + n_layers 18) */
    int n_layers;
    bool training;           /* BN mode bn_mode (training) or DEFT_BN_EVAL */
    enum deft_bn_mode bn_mode;
    /* TAO's detection layout: resnet's layer4 and mobilenet_v2's last stages run at
     * stride 1 (output stride 16, as TAO's YOLO/SSD backbones); no effect on darknets. */
    bool detection_layout;
    /* darknet family only: NULL/"leaky_relu" (0.1, TAO's default), "mish", "relu";
     * force_relu (TAO's) turns it into ReLU whatever activation says. */
    const char *activation;
    bool force_relu;
    float width_mult;        /* mobilenet_v2, 0 -> 1.0 */
    /* TAO's Faster R-CNN layout (resnet only): the image part stops after layer3
     * (`last` at stride 16); layer4 is the RCNN head, built on the RoI features
     * by deft_backbone_build_rcnn_head. */
    bool rcnn_layout;
};
struct deft_backbone_taps {
    int s8, s16, s32;        /* value indices of the maps at strides 8/16/32, -1 when absent */
    int s2, s4;              /* resnet: the stem's ReLU ("relu") and layer1's output (segmentation skips) */
    int last;                /* the last feature map (stride last_stride) */
    int last_stride;         /* 32, or 16 in the detection layout of resnet / mobilenet_v2 */
    const char *arch;        /* the registry name built ("resnet18"), static */
};
/* Build arch's feature extractor (no pooling, no classifier) on value x of g, with the
 * parameter names deft_model_build gives the same arch (so a deft classification
 * model's backbone weights load by name). The taps' names are
 * deft_graph_value(g, taps->s8)->name ...:
 *   resnet*        layer2.N.relu2 (s8), layer3.N.relu2 (s16), layer4.N.relu2 (s32)
 *                  (relu3 for bottlenecks; layer4 is `last` at s16 in the detection layout)
 *   mobilenet_v2   features.6.add (s8), features.13.add (s16), features.18.2 (s32 / last)
 *   darknet19/53, cspdarknet53  the end of stages.2 / .3 / .4
 *   cspdarknet_tiny             stages.1.conv3.act (s8), stages.2.conv3.act (s16), stages.3.act
 * Errors (sticky in g as well): unknown arch, an arch without taps (DEFT_ERR_UNSUPPORTED). */
DEFT_API DEFT_NODISCARD enum deft_status deft_backbone_build(struct deft_graph *g, int x,
                                                            const struct deft_backbone_opts *o,
                                                            struct deft_backbone_taps *taps);

/* Faster R-CNN's RCNN head of a resnet (TAO): layer4, with the parameter names
 * deft_model_build gives it ("layer4.*"), on RoI features x [R, C, h, w], its
 * first block at `stride` (1; 2 after pool_size_2x's 14x14 crops); *out the
 * block's output [R, C4, h/stride, w/stride]. DEFT_ERR_UNSUPPORTED for other
 * families. */
DEFT_API DEFT_NODISCARD enum deft_status deft_backbone_build_rcnn_head(struct deft_graph *g, int x,
                                                                      const struct deft_backbone_opts *o,
                                                                      int stride, int *out);

/* ---- pretrained weights catalogue (deft model download NAME) ---------- */
struct deft_pretrained {
    const char *name;   /* "resnet18" */
    const char *arch;   /* the deft architecture the weights load into */
    const char *file;   /* "resnet18-f37072fd.pth": ends in its SHA-256's first 8 hex digits */
    const char *about;  /* accuracy and size, one line */
};
/* The catalogue, terminated by an entry with name NULL. */
DEFT_API const struct deft_pretrained *deft_pretrained_all(void);
/* By name (case-insensitive), or NULL. */
DEFT_API const struct deft_pretrained *deft_pretrained_find(const char *name);
/* Its URL: https://download.pytorch.org/models/<file>, or under $DEFT_MODEL_MIRROR. */
DEFT_API void deft_pretrained_url(const struct deft_pretrained *p, char *url, size_t n);
/* The cache `deft model download` puts files in: $DEFT_CACHE_DIR, else
 * $XDG_CACHE_HOME/deft/models, else ~/.cache/deft/models. */
DEFT_API void deft_pretrained_cache_dir(char *dir, size_t n);
/* The SHA-256 prefix its file name carries (8 hex digits). */
DEFT_API void deft_pretrained_sha256_prefix(const struct deft_pretrained *p, char out[9]);

#ifdef __cplusplus
}
#endif
#endif

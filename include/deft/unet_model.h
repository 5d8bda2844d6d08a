/* deft/unet_model.h - TAO's UNet family as deft graphs (semantic segmentation).
 *
 *     struct deft_unet_opts o = {.arch = "resnet", .nlayers = 18, .num_classes = 2,
 *                                .channels = 1, .height = 320, .width = 320, .batch = 3,
 *                                .training = true};
 *     struct deft_graph *g;
 *     if (deft_unet_build(&o, &g) != DEFT_OK) puts(deft_last_error());
 *     // input "input_1" [3, 1, 320, 320] (role "image"), output "logits" [3, 2, 320, 320]
 *     // (role "logits", DEFT_VF_OUTPUT): per-pixel class scores before softmax/sigmoid
 *
 * Topology (TAO's cv/unet model builders; a deft departure is marked "deft:"):
 *  - resnet (10/18/34/50): the encoder is deft's ResNet as a backbone (torchvision's layout and
 *    parameter names, so ImageNet / deft classification weights load by name) at TAO's UNet
 *    strides: the stem at /2 (skip 1), layer1 at /4 (skip 2), layer2 at /8 (skip 3), layer3 at /16,
 *    layer4 kept at /16 (stride 1, the detection layout). deft: TAO's own ResNet template has no
 *    max pool and strides block 1 instead; the strides and widths are the same, the weights are
 *    torchvision's. The encoder keeps its batch norm; use_batch_norm acts on the decoder.
 *    Decoder: four blocks "up1".."up4" of 256, 128, 64, 64 channels, each a 4x4/2 transposed conv
 *    ("upN.deconv"), concat with the skip of that stride (none for up4), [BN "upN.bn1"], ReLU,
 *    3x3 conv ("upN.conv"), [BN "upN.bn2"], ReLU; then a 3x3 conv to the classes ("logits").
 *  - vanilla_unet_dynamic (and vanilla_unet, deft: built the same, with padded convs, so the
 *    output has the input's size): five encoder blocks "enc0".."enc4" of 32..512 channels (two 3x3
 *    convs with [BN] and ReLU, then 2x2 max pool), a centre block "center" of 1024, five decoder
 *    blocks "dec4".."dec0" (2x2/2 transposed conv, concat [skip, up], [BN], ReLU, two 3x3 convs
 *    with [BN] and ReLU) and a 1x1 conv to the classes ("logits"). Input sides: multiples of 32.
 *  - vgg (16/19; TAO's vgg_unet.py over its VggNet template): the encoder is torchvision's VGG
 *    ("features.N", so ImageNet / deft vgg16, vgg19 (_bn) weights load by name); use_batch_norm
 *    gives the _bn encoder (BN after every encoder conv, as TAO's template) and the decoder has
 *    no BN. Skips: block 1's first conv + ReLU (stride 1, 64) and the max pools after blocks 1-4
 *    (strides 2, 4, 8, 16: 64, 128, 256, 512 channels). The encoder ends at block 5's third conv
 *    for both depths (TAO's tap list is shared by 16 and 19, so VGG-19's fourth block-5 conv,
 *    torchvision's features.34, is not in the network), then a 2x2 max pool ("pool5", /32).
 *    Decoder: five blocks "up1".."up5", each a 4x4/2 transposed conv to the width of its skip
 *    (512, 256, 128, 64, 64), concat [up, skip], two 3x3 convs ("upN.conv1", "upN.conv2") of
 *    that width. As in TAO, the decoder has no activation at all (its Keras layers take none);
 *    then a 1x1 conv to the classes ("logits"). The decoder's weights start Glorot-uniform
 *    (TAO's default; the ReLU-gain init of the other decoders would blow up a linear stack of
 *    ten convs). Input sides: multiples of 32.
 *  - efficientnet_b0 (TAO's efficientnet_unet.py): deft's EfficientNet-B0 ("features.0".."8",
 *    torchvision's names and weights; deft: torchvision's symmetric padding where Keras pads
 *    stride-2 convs bottom/right, and no stochastic depth) to its last 1x1 conv (1280, /32).
 *    TAO asks its template for stride 16 but that switch has no effect there, so the encoder
 *    is at /32. Skips: the output (project BN) of the first block of stages 1, 2, 3, 5 (TAO's
 *    block1a/2a/3a/5a_project_bn; strides 2, 4, 8, 16; 16, 24, 40, 112 channels). Decoder:
 *    five blocks "up1".."up5" of 512, 256, 128, 64, 32 channels, each a 2x2/2 transposed conv
 *    ("upN.deconv"), concat [up, skip] (none for up5), 3x3 conv ("upN.conv1", no bias), BN
 *    ("upN.bn1": always there, TAO's block ignores use_batch_norm for it), ReLU, 3x3 conv
 *    ("upN.conv2", no bias even without BN, as TAO), [BN "upN.bn2"], ReLU; then a 1x1 conv to
 *    the classes ("logits"). Input sides: multiples of 32.
 *  - shufflenet (TAO's shufflenet_unet.py over its core/templates/shufflenet.py, built with the
 *    template's defaults: groups 1, bottleneck 1/4, width scale 1, 3 + 7 + 3 repeats): "conv1"
 *    3x3/2 to 24 channels with ReLU and neither bias nor BN, "maxpool1" 3x3/2 (/4), then stages
 *    2, 3, 4 of 4, 8, 4 shuffle units ("stageS.blockB") with 144, 288, 576 channels (/8, /16,
 *    /32). A unit: 1x1 conv to a quarter of its output width ("gconv1"), BN, ReLU, the channel
 *    shuffle, 3x3 depthwise conv ("dwconv", stride 2 in block 1), BN, 1x1 conv ("gconv2"), BN;
 *    block 1 concatenates a 3x3/2 average pool of its input after that (so gconv2 gives the
 *    output width less the input's), the others add their input; then ReLU. With groups 1 the
 *    shuffle is the identity and every 1x1 conv dense (the template's grouped path cannot run
 *    and the UNet passes no groups), so deft builds no shuffle. Stride-2 convs and pools pad as
 *    Keras "same" does (bottom/right only); the average pool counts only cells inside the map.
 *    A 1x1 conv with bias ("score_fr") maps stage 4 to the classes. Decoder (FCN-8s style, on
 *    class maps; no skips are concatenated): "upscore" 4x4/2 transposed conv + BN (eps 1e-2)
 *    added to "score_feed1" (1x1 conv of stage 3 + BN + ReLU), "upscore4" + BN added to
 *    "score_feed2" (1x1 conv of stage 2 + BN + ReLU), then a 16x16/8 transposed conv
 *    ("logits") back to the input size. BN eps is Keras' 1e-3 (1e-2 in the upscores; deft's
 *    momentum 0.1 everywhere); weights start Glorot-uniform, biases zero (Keras' defaults: no
 *    pretrained weights exist for this layout). TAO ignores use_batch_norm (the decoder's BN is
 *    always there), freeze_bn and freeze_blocks for this arch; deft: freeze_bn freezes the
 *    encoder's BN and freeze_blocks are 1 conv1, 2-4 the stages. Input sides: multiples of 32.
 * Elsewhere, freeze_blocks are the classification model's blocks (resnet: 0 stem, 1-4 layers;
 * vgg: 1-5; efficientnet_b0: 0 stem, 1-7 stages, 8 last conv); freeze_bn freezes the encoder's BN.
 * Convolutions carry a bias where no BN follows them, except the EfficientNet decoder's, and
 * also before BN in ShuffleNet's decoder (TAO's transposed and 1x1 convs keep Keras' bias). */
#ifndef DEFT_UNET_MODEL_H
#define DEFT_UNET_MODEL_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_unet_opts {
    const char *arch;        /* "resnet" / "vgg" (with nlayers) or "resnet18", "vgg16_bn"..; "efficientnet_b0";
                              * "shufflenet"; "vanilla_unet", "vanilla_unet_dynamic" */
    int nlayers;
    int num_classes;         /* output channels (1 for TAO's sigmoid binary case), >= 1 */
    int channels;            /* input channels, 0 -> 3 (1: grayscale) */
    int height, width;       /* 0 -> 320; multiples of 16 (resnet) or 32 (the others) */
    int batch;               /* 0 -> 1 */
    bool use_batch_norm;     /* BN in the decoder (resnet, efficientnet_b0) / the encoder (vgg) / everywhere
                              * (vanilla); none on shufflenet (as TAO) */
    bool freeze_bn;          /* encoder BN frozen (training graphs) */
    const int *freeze_blocks;/* encoder blocks to freeze (the classification model's blocks) */
    int n_freeze_blocks;
    bool training;
};

/* Build the network; *out owns the new graph (deft_graph_free), NULL on error.
 * Errors: DEFT_ERR_NOT_FOUND (unknown arch), DEFT_ERR_UNSUPPORTED (an arch TAO's
 * UNet has that deft does not build yet), DEFT_ERR_INVALID_ARG (sizes, classes). */
DEFT_API DEFT_NODISCARD enum deft_status deft_unet_build(const struct deft_unet_opts *o, struct deft_graph **out);

#ifdef __cplusplus
}
#endif
#endif

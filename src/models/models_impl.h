/* models_impl.h (internal) - what the architecture families share: a build
 * context, the name formatter, and conv/BN/head helpers with torchvision's
 * initializers. Each family (resnet.c, mobilenet_v2.c) builds on these; the
 * registry in models.c maps names to families. */
#ifndef DEFT_MODELS_IMPL_H
#define DEFT_MODELS_IMPL_H

#include "deft/models.h"

#define DEFT_MODEL_NAME_MAX 128
#define DEFT_MODEL_NAME_RING 8

/* Options resolved (defaults applied) plus the graph being built. */
struct deft_model_ctx {
    struct deft_graph *g;
    const char *arch;         /* canonical registry name */
    int num_classes;
    enum deft_bn_mode bn;     /* the mode every BN node gets */
    float dropout;            /* resolved probability, 0 = no dropout node */
    float width_mult;
    bool training, features_only;
    uint64_t seed;
    /* Backbone mode (deft_backbone_build): families record their feature
     * maps at strides 8, 16, 32, 2, 4 here (value indices, -1 = none) ... */
    int taps[5];
    /* ... and, with det_layout, build TAO's detection layout: resnet's layer4
     * and mobilenet_v2's 160/320 stages at stride 1 (output stride 16). */
    bool det_layout;
    /* Faster R-CNN (resnet): 1 = the image part (no layer4), 2 = layer4 alone on
     * RoI features x, its first block at stride rcnn_stride */
    int rcnn_part, rcnn_stride;
    /* darknet family activation (leaky ReLU 0.1 unless a YOLO spec says otherwise) */
    enum deft_act_kind act;
    float act_alpha;
    /* Why a ring: names are formatted right where a builder needs them, and a
     * builder copies its name, so a few live buffers are enough. */
    char names[DEFT_MODEL_NAME_RING][DEFT_MODEL_NAME_MAX];
    int next_name;
};

/* A family builder: reads input value x, returns the output value (logits,
 * or the last feature map when features_only), -1 on error (sticky in m->g). */
typedef int (*deft_model_family_fn)(struct deft_model_ctx *m, int x, const void *cfg);

/* The start of a detector/segmenter builder: a context (arch, BN in train or
 * eval mode, no taps, ReLU) and its new graph, m->g. On failure neither is left. */
enum deft_status deft_model_ctx_new(const char *arch, bool training, struct deft_model_ctx **m, struct deft_graph **g);
/* Its end: frees m; on success *out = g, else the error (s) gets "building NET
 * (ARCH) for input [n, c, h, w]" and g is freed. Returns s. */
enum deft_status deft_model_ctx_finish(struct deft_model_ctx *m, struct deft_graph *g, enum deft_status s,
                                       const char *net, int n, int c, int h, int w, struct deft_graph **out);

/* printf-style node name in a ring buffer (valid for the next few calls). */
const char *deft_model_name(struct deft_model_ctx *m, const char *fmt, ...) DEFT_PRINTF(2, 3);

/* Conv without bias, square kernel, symmetric padding, weight initialized
 * kaiming-normal with PyTorch's fan_out (out_channels * kh * kw). */
int deft_model_conv(struct deft_model_ctx *m, const char *name, int x, int out_ch, int kernel,
                    int stride, int pad, int groups);
/* BN in the context's mode (eps 1e-5, momentum 0.1). */
int deft_model_bn(struct deft_model_ctx *m, const char *name, int x);
/* Classifier head: global average pool "avgpool", "flatten", dropout named
 * `dropout_name` (training graphs with p > 0 only), linear `fc_name`.
 * normal_init: N(0, 0.01) weight and zero bias (mobilenet) instead of
 * PyTorch's Linear default (resnet). */
int deft_model_head(struct deft_model_ctx *m, int x, const char *dropout_name,
                    const char *fc_name, bool normal_init);

/* Conv with bias (torchvision: kaiming-normal fan_out weight, zero bias):
 * vgg, squeeze-excitation. */
int deft_model_conv_bias(struct deft_model_ctx *m, const char *name, int x, int out_ch, int kernel,
                         int stride, int pad);
/* BN in the context's mode with another eps (googlenet 1e-3). */
int deft_model_bn_eps(struct deft_model_ctx *m, const char *name, int x, float eps);
/* The params (slot 1 weight, slot 2 bias) of the node that produced y, or
 * NULL: builders adjust initializers through these. */
struct deft_value *deft_model_weight_of(struct deft_model_ctx *m, int y);
struct deft_value *deft_model_bias_of(struct deft_model_ctx *m, int y);
/* torch.nn.AdaptiveAvgPool2d((oh, ow)): nothing when the map already has that
 * size, one avg pool when it divides evenly, else PyTorch's exact bins built
 * from slices, global average pools and concats (nodes "<name>.r<i>c<j>"...). */
int deft_model_adaptive_avgpool(struct deft_model_ctx *m, const char *name, int x, int oh, int ow);

/* Record y as the feature map at `stride` (8, 16 or 32; others are ignored). */
static inline void deft_model_tap(struct deft_model_ctx *m, int stride, int y) {
    int i = stride == 8 ? 0 : stride == 16 ? 1 : stride == 32 ? 2 : stride == 2 ? 3 : stride == 4 ? 4 : -1;
    if (i >= 0) m->taps[i] = y;
}

/* Freeze blocks: a family writes the param-name prefixes of block `block`
 * (each ending in '.') into out[0..max) and returns how many, or -1 when the
 * block index is out of range for the architecture. */
#define DEFT_MODEL_PREFIX_MAX 48
typedef int (*deft_model_blocks_fn)(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                    int max);

/* families */
struct deft_resnet_cfg { bool bottleneck; int blocks[4]; };
int deft_model_resnet(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_resnet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX], int max);
int deft_model_mobilenet_v2(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_mobilenet_v2_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                   int max);
int deft_model_mobilenet_v1(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_mobilenet_v1_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                   int max);
struct deft_vgg_cfg { int depth; bool bn; };
int deft_model_vgg(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_vgg_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX], int max);
struct deft_squeezenet_cfg { int version; /* 10 = 1_0, 11 = 1_1 */ };
int deft_model_squeezenet(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_squeezenet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                 int max);
int deft_model_googlenet(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_googlenet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                int max);
struct deft_efficientnet_cfg { double width, depth; };
int deft_model_efficientnet(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_efficientnet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                   int max);
enum deft_darknet_kind { DEFT_DARKNET19, DEFT_DARKNET53, DEFT_CSPDARKNET53, DEFT_CSPDARKNET_TINY };
struct deft_darknet_cfg { enum deft_darknet_kind kind; };
int deft_model_darknet(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_darknet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                              int max);

#endif

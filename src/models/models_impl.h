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
    /* Why a ring: names are formatted right where a builder needs them, and a
     * builder copies its name, so a few live buffers are enough. */
    char names[DEFT_MODEL_NAME_RING][DEFT_MODEL_NAME_MAX];
    int next_name;
};

/* A family builder: reads input value x, returns the output value (logits,
 * or the last feature map when features_only), -1 on error (sticky in m->g). */
typedef int (*deft_model_family_fn)(struct deft_model_ctx *m, int x, const void *cfg);

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

/* families */
struct deft_resnet_cfg { bool bottleneck; int blocks[4]; };
int deft_model_resnet(struct deft_model_ctx *m, int x, const void *cfg);
int deft_model_mobilenet_v2(struct deft_model_ctx *m, int x, const void *cfg);

#endif

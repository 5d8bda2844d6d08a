/* unet_shufflenet.c - TAO's ShuffleNet UNet (arch "shufflenet"): TAO's ShuffleNet template
 * (groups 1, three stages of 4, 8, 4 units, 144/288/576 channels, a 1x1 "score_fr" conv to the
 * classes at /32) and its FCN-8s-style decoder (score maps of stages 3 and 2 added to 2x
 * upsampled scores, then one 16x16/8 transposed conv). Topology in include/deft/unet_model.h.
 * No pretrained ShuffleNet exists for this layout, so names follow TAO's layers ("stage2.
 * block1.gconv1") and every layer starts as TAO's Keras defaults (Glorot uniform, zero bias). */
#include <stdio.h>
#include "models/unet_impl.h"

/* Keras "same" padding of a 3x3 stride-2 window on an even side: one row/column at the
 * bottom/right only (top, left, bottom, right) */
#define SAME_S2 {0, 0, 1, 1}

/* Keras' default initializers: Glorot-uniform weight, zero bias. Returns y. */
static int keras_init(struct deft_model_ctx *m, int y) {
    struct deft_value *w = deft_model_weight_of(m, y), *b = deft_model_bias_of(m, y);
    if (w) w->init = DEFT_INIT_XAVIER_UNIFORM;
    if (b) b->init = DEFT_INIT_ZEROS;
    return y;
}

static int conv(struct deft_model_ctx *m, const char *name, int x, int out, int k, int stride, int groups,
                bool bias) {
    struct deft_conv_attr a = {.stride = {stride, stride}, .pad = {k / 2, k / 2, k / 2, k / 2},
                               .dilation = {1, 1}, .groups = groups};
    if (stride == 2) a = (struct deft_conv_attr){.stride = {2, 2}, .pad = SAME_S2, .dilation = {1, 1},
                                                  .groups = groups};
    return keras_init(m, deft_conv2d(m->g, name, x, out, k, k, &a, bias));
}

/* Keras BatchNormalization (eps 1e-3 unless given; deft's momentum 0.1) */
static int bn(struct deft_model_ctx *m, const char *name, int x, float eps) {
    return deft_model_bn_eps(m, name, x, eps);
}

/* TAO's shuffle unit "stageS.blockB": 1x1 conv to out/4, BN, ReLU, [channel shuffle: the
 * identity with groups 1], 3x3 depthwise conv (stride 1 or 2), BN, 1x1 conv, BN; stride 1:
 * add the input; stride 2: concat [that, 3x3/2 average pool of the input]; ReLU. */
static int shuffle_unit(struct deft_model_ctx *m, int stage, int block, int x, int out, int stride) {
    const char *p = deft_model_name(m, "stage%d.block%d", stage, block);
    char pre[32];
    snprintf(pre, sizeof pre, "%s", p);
    int in = (int)deft_graph_value(m->g, x)->shape.d[1], mid = out / 4;
    int y = conv(m, deft_model_name(m, "%s.gconv1", pre), x, mid, 1, 1, 1, false);
    y = bn(m, deft_model_name(m, "%s.bn_gconv1", pre), y, 1e-3f);
    y = deft_act(m->g, deft_model_name(m, "%s.relu_gconv1", pre), y, DEFT_ACT_RELU, 0);
    y = conv(m, deft_model_name(m, "%s.dwconv", pre), y, mid, 3, stride, mid, false);
    y = bn(m, deft_model_name(m, "%s.bn_dwconv", pre), y, 1e-3f);
    y = conv(m, deft_model_name(m, "%s.gconv2", pre), y, stride == 1 ? out : out - in, 1, 1, 1, false);
    y = bn(m, deft_model_name(m, "%s.bn_gconv2", pre), y, 1e-3f);
    if (stride == 1) {
        y = deft_add(m->g, deft_model_name(m, "%s.add", pre), y, x);
    } else {
        /* TF's "same" average pool divides by the window's cells inside the map */
        int a = deft_pool(m->g, deft_model_name(m, "%s.avg_pool", pre), x,
                          &(struct deft_pool_attr){.kind = DEFT_POOL_AVG, .kernel = {3, 3}, .stride = {2, 2},
                                                   .pad = SAME_S2, .count_include_pad = false});
        y = deft_concat(m->g, deft_model_name(m, "%s.concat", pre), (int[]){y, a}, 2, 1);
    }
    return deft_act(m->g, deft_model_name(m, "%s.relu_out", pre), y, DEFT_ACT_RELU, 0);
}

/* TAO's convTranspose2D_bn: 4x4/2 transposed conv (bias), BN with eps 1e-2, no activation */
static int upscore(struct deft_model_ctx *m, const char *name, int x, int classes) {
    int y = keras_init(m, deft_unet_up2(m, name, x, classes, 4));
    return bn(m, deft_model_name(m, "%s_bn", name), y, 1e-2f);
}

/* TAO's conv2D_bn with a 1x1 kernel: conv (bias), BN, ReLU */
static int score_feed(struct deft_model_ctx *m, const char *name, int x, int classes) {
    int y = conv(m, name, x, classes, 1, 1, 1, true);
    y = bn(m, deft_model_name(m, "%s_bn", name), y, 1e-3f);
    return deft_act(m->g, deft_model_name(m, "%s_relu", name), y, DEFT_ACT_RELU, 0);
}

/* freeze_blocks (TAO's template takes none; deft's numbering): 1 conv1, 2-4 the stages */
static enum deft_status freeze(struct deft_graph *g, const struct deft_unet_opts *o) {
    for (int i = 0; i < o->n_freeze_blocks; i++)
        if (o->freeze_blocks[i] < 1 || o->freeze_blocks[i] > 4)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "unet: freeze_blocks out of range for shufflenet (1..4: "
                                  "conv1, stages 2-4)");
    for (int i = 0; i < o->n_freeze_blocks; i++) {
        char pre[16];
        if (o->freeze_blocks[i] == 1) snprintf(pre, sizeof pre, "conv1.");
        else snprintf(pre, sizeof pre, "stage%d.", o->freeze_blocks[i]);
        (void)deft_graph_freeze(g, pre, true);
    }
    return DEFT_OK;
}

enum deft_status deft_unet_build_shufflenet(struct deft_model_ctx *m, const struct deft_unet_opts *o, int x,
                                            int *out) {
    /* TAO's template defaults: groups 1 (144 channels after stage 2), bottleneck 1/4, scale 1 */
    static const int units[3] = {4, 8, 4}, widths[3] = {144, 288, 576};
    const int k = o->num_classes;
    enum deft_bn_mode dec_bn = m->bn;
    if (o->freeze_bn && m->training) m->bn = DEFT_BN_FROZEN;
    int y = conv(m, "conv1", x, 24, 3, 2, 1, false); /* Keras: ReLU, no BN */
    y = deft_act(m->g, "conv1_relu", y, DEFT_ACT_RELU, 0);
    y = deft_pool(m->g, "maxpool1", y,
                  &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {3, 3}, .stride = {2, 2},
                                           .pad = SAME_S2});
    int stage_out[3];
    for (int s = 0; s < 3; s++) {
        for (int b = 0; b < units[s]; b++) y = shuffle_unit(m, s + 2, b + 1, y, widths[s], b ? 1 : 2);
        stage_out[s] = y;
    }
    m->bn = dec_bn;
    y = conv(m, "score_fr", y, k, 1, 1, 1, true); /* /32 */
    /* the decoder's BN is always there: TAO's call passes use_batchnorm=True, freeze_bn=False */
    y = deft_add(m->g, "fuse_feed1", upscore(m, "upscore", y, k), score_feed(m, "score_feed1", stage_out[1], k));
    y = deft_add(m->g, "fuse_feed2", upscore(m, "upscore4", y, k), score_feed(m, "score_feed2", stage_out[0], k));
    /* 16x16/8, Keras "same": 4 rows/columns of padding on each side */
    *out = keras_init(m, deft_conv_transpose2d(m->g, "logits", y, k, 16, 16,
                                               &(struct deft_conv_attr){.stride = {8, 8}, .pad = {4, 4, 4, 4},
                                                                        .dilation = {1, 1}, .groups = 1},
                                               true));
    enum deft_status s = deft_graph_status(m->g);
    if (!s && o->n_freeze_blocks > 0) s = freeze(m->g, o);
    return s;
}

/* tv_ssd.c - torchvision's ssd300_vgg16 as a graph (names of its state_dict):
 *
 *   backbone.features.0..22   VGG16 up to conv4_3 + ReLU (features.16, pool 3, in ceil mode)
 *   backbone.extra.0          pool 4, conv5_1..5_3, .7: pool 3x3/1/1, fc6 (3x3, dilation 6), fc7 (1x1)
 *   backbone.extra.1..4       1x1 conv + ReLU, 3x3 conv + ReLU (stride 2, 2, 1, 1; pad 1, 1, 0, 0)
 *   head.{classification,regression}_head.module_list.L   3x3 convs on the six maps
 *
 * F.normalize (L2 over channels) has no graph op: conv4_3's ReLU is an output
 * (role tv_l2_src), the host normalises it into the input tv_l2_in, and the
 * rest (x scale_weight, the level-0 head convs) comes last, so the graph runs
 * in two ranges split at node "backbone.scale_weight.view". */
#include "models/tv_detection/tv_det_impl.h"

#define POOL 0
static const int vgg_cfg[] = {64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512};
static const int anchors_per_level[6] = {4, 6, 6, 6, 4, 4};

static int maxpool(struct deft_model_ctx *m, const char *name, int x, int k, int s, int p, bool ceil) {
    return deft_pool(m->g, name, x, &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {k, k},
                                                             .stride = {s, s}, .pad = {p, p, p, p},
                                                             .ceil_mode = ceil});
}

static int conv_relu(struct deft_model_ctx *m, const char *prefix, int idx, int x, int ch, int k, int s,
                     int p, int dil) {
    x = deft_tv_conv(m, deft_model_name(m, "%s.%d", prefix, idx), x, ch, k, s, p, dil);
    return deft_act(m->g, deft_model_name(m, "%s.%d", prefix, idx + 1), x, DEFT_ACT_RELU, 0);
}

static void heads(struct deft_model_ctx *m, int level, int x, int ch) {
    int a = anchors_per_level[level];
    int c = deft_tv_conv(m, deft_model_name(m, "head.classification_head.module_list.%d", level), x,
                         a * m->num_classes, 3, 1, 1, 1);
    deft_tv_output(m, deft_model_name(m, "tv_cls_%d", level), c);
    int r = deft_tv_conv(m, deft_model_name(m, "head.regression_head.module_list.%d", level), x, a * 4, 3, 1,
                         1, 1);
    deft_tv_output(m, deft_model_name(m, "tv_reg_%d", level), r);
    (void)ch;
}

int deft_tv_build_ssd300_vgg16(struct deft_model_ctx *m, int x) {
    int idx = 0, pools = 0;
    for (size_t i = 0; i < sizeof vgg_cfg / sizeof *vgg_cfg; i++) {
        if (vgg_cfg[i] == POOL) {
            /* torchvision patches maxpool3 (the third) to ceil mode: 75 -> 38 */
            x = maxpool(m, deft_model_name(m, "backbone.features.%d", idx++), x, 2, 2, 0, ++pools == 3);
            continue;
        }
        x = conv_relu(m, "backbone.features", idx, x, vgg_cfg[i], 3, 1, 1, 1);
        idx += 2;
    }
    int conv4_3 = x;
    deft_tv_output(m, "tv_l2_src", conv4_3);
    /* extra.0: maxpool4, conv5_x, then the fc block */
    x = maxpool(m, "backbone.extra.0.0", x, 2, 2, 0, false);
    for (int j = 0; j < 3; j++) x = conv_relu(m, "backbone.extra.0", 1 + 2 * j, x, 512, 3, 1, 1, 1);
    x = maxpool(m, "backbone.extra.0.7.0", x, 3, 1, 1, false);
    x = conv_relu(m, "backbone.extra.0.7", 1, x, 1024, 3, 1, 6, 6);
    x = conv_relu(m, "backbone.extra.0.7", 3, x, 1024, 1, 1, 0, 1);
    heads(m, 1, x, 1024);
    static const int mid[4] = {256, 128, 128, 128}, out[4] = {512, 256, 256, 256};
    static const int stride[4] = {2, 2, 1, 1}, pad[4] = {1, 1, 0, 0};
    for (int b = 0; b < 4; b++) {
        char pre[32];
        snprintf(pre, sizeof pre, "backbone.extra.%d", b + 1);
        x = conv_relu(m, pre, 0, x, mid[b], 1, 1, 0, 1);
        x = conv_relu(m, pre, 2, x, out[b], 3, stride[b], pad[b], 1);
        heads(m, b + 2, x, out[b]);
    }
    /* stage 2: rescaled conv4_3 = scale_weight * normalize(conv4_3) -> level-0 heads */
    if (conv4_3 < 0) return -1;
    struct deft_shape s = deft_graph_value(m->g, conv4_3)->shape;
    int l2 = deft_input(m->g, "tv_l2_in", s);
    deft_tv_output(m, "tv_l2_in", l2);
    int sw = deft_param(m->g, "backbone.scale_weight", deft_shape_make(1, (int64_t[]){512}), DEFT_INIT_ONES);
    int sv = deft_reshape(m->g, "backbone.scale_weight.view", sw, deft_shape4(1, 512, 1, 1));
    int r = deft_mul(m->g, "backbone.rescale", l2, sv);
    heads(m, 0, r, 512);
    return r;
}

/* resnet.c - ResNet v1.5 exactly as torchvision lays it out (stride on the
 * 3x3 conv of Bottleneck), so torchvision state_dicts load by name; plus
 * TAO's resnet10 (BasicBlock x [1,1,1,1]).
 *
 *   conv1 7x7/2 - bn1 - relu - maxpool 3x3/2 - layer1..layer4 - avgpool - flatten - fc
 *
 * Feature taps: layer2 (stride 8), layer3 (16), layer4 (32; in the detection
 * layout layer4 runs at stride 1, as TAO's YOLO backbone, and is not a tap).
 */
#include <stdio.h>
#include "models/models_impl.h"

/* BasicBlock: conv3x3(stride) bn relu conv3x3 bn (+ shortcut) relu */
static int basic_block(struct deft_model_ctx *m, const char *p, int x, int in_ch, int planes,
                       int stride) {
    int y = deft_model_conv(m, deft_model_name(m, "%s.conv1", p), x, planes, 3, stride, 1, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn1", p), y);
    y = deft_act(m->g, deft_model_name(m, "%s.relu1", p), y, DEFT_ACT_RELU, 0);
    y = deft_model_conv(m, deft_model_name(m, "%s.conv2", p), y, planes, 3, 1, 1, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn2", p), y);
    int sc = x;
    if (stride != 1 || in_ch != planes) {
        sc = deft_model_conv(m, deft_model_name(m, "%s.downsample.0", p), x, planes, 1, stride, 0, 1);
        sc = deft_model_bn(m, deft_model_name(m, "%s.downsample.1", p), sc);
    }
    y = deft_add(m->g, deft_model_name(m, "%s.add", p), y, sc);
    return deft_act(m->g, deft_model_name(m, "%s.relu2", p), y, DEFT_ACT_RELU, 0);
}

/* Bottleneck: conv1x1 bn relu conv3x3(stride) bn relu conv1x1(4x) bn (+ shortcut) relu */
static int bottleneck(struct deft_model_ctx *m, const char *p, int x, int in_ch, int planes,
                      int stride) {
    int out_ch = planes * 4;
    int y = deft_model_conv(m, deft_model_name(m, "%s.conv1", p), x, planes, 1, 1, 0, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn1", p), y);
    y = deft_act(m->g, deft_model_name(m, "%s.relu1", p), y, DEFT_ACT_RELU, 0);
    y = deft_model_conv(m, deft_model_name(m, "%s.conv2", p), y, planes, 3, stride, 1, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn2", p), y);
    y = deft_act(m->g, deft_model_name(m, "%s.relu2", p), y, DEFT_ACT_RELU, 0);
    y = deft_model_conv(m, deft_model_name(m, "%s.conv3", p), y, out_ch, 1, 1, 0, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn3", p), y);
    int sc = x;
    if (stride != 1 || in_ch != out_ch) {
        sc = deft_model_conv(m, deft_model_name(m, "%s.downsample.0", p), x, out_ch, 1, stride, 0, 1);
        sc = deft_model_bn(m, deft_model_name(m, "%s.downsample.1", p), sc);
    }
    y = deft_add(m->g, deft_model_name(m, "%s.add", p), y, sc);
    return deft_act(m->g, deft_model_name(m, "%s.relu3", p), y, DEFT_ACT_RELU, 0);
}

/* layer l+1 (planes 64 << l), its first block at stride `first`. */
static int stage(struct deft_model_ctx *m, const struct deft_resnet_cfg *c, int l, int y, int *in_ch, int first) {
    int planes = 64 << l, expansion = c->bottleneck ? 4 : 1;
    for (int b = 0; b < c->blocks[l]; b++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "layer%d.%d", l + 1, b);
        int stride = b == 0 ? first : 1;
        y = c->bottleneck ? bottleneck(m, prefix, y, *in_ch, planes, stride)
                          : basic_block(m, prefix, y, *in_ch, planes, stride);
        *in_ch = planes * expansion;
    }
    return y;
}

int deft_model_resnet(struct deft_model_ctx *m, int x, const void *cfg) {
    const struct deft_resnet_cfg *c = cfg;
    if (m->rcnn_part == 2) { /* Faster R-CNN's head: layer4 on the RoI features */
        int in_ch = (int)deft_graph_value(m->g, x)->shape.d[1];
        return stage(m, c, 3, x, &in_ch, m->rcnn_stride);
    }
    int y = deft_model_conv(m, "conv1", x, 64, 7, 2, 3, 1);
    y = deft_model_bn(m, "bn1", y);
    y = deft_act(m->g, "relu", y, DEFT_ACT_RELU, 0);
    deft_model_tap(m, 2, y);
    y = deft_pool(m->g, "maxpool", y, &(struct deft_pool_attr){
                      .kind = DEFT_POOL_MAX, .kernel = {3, 3}, .stride = {2, 2},
                      .pad = {1, 1, 1, 1}});
    int in_ch = 64, total = 4;
    for (int l = 0; l < 4; l++) {
        if (l == 3 && m->rcnn_part == 1) break; /* layer4 runs on the RoIs */
        /* TAO's detection ResNet keeps layer4 at stride 1 (last_stride 1). */
        int first = l == 0 || (l == 3 && m->det_layout) ? 1 : 2;
        y = stage(m, c, l, y, &in_ch, first);
        total *= first;
        if (!(l == 3 && m->det_layout)) deft_model_tap(m, total, y); /* layer1/2/3/4 -> 4/8/16/32 */
    }
    if (m->features_only) return y;
    return deft_model_head(m, y, "dropout", "fc", false);
}

/* TAO: block 0 = conv1 (+ its BN), block i = layer i. */
int deft_model_resnet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX], int max) {
    (void)cfg;
    if (block < 0 || block > 4 || max < 2) return -1;
    if (block == 0) {
        snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "conv1.");
        snprintf(out[1], DEFT_MODEL_PREFIX_MAX, "bn1.");
        return 2;
    }
    snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "layer%d.", block);
    return 1;
}

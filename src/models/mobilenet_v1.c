/* mobilenet_v1.c - MobileNet v1 (Howard et al. 2017), width 1.0, in the Keras/TAO layout
 * (BN after every conv, ReLU6). No torchvision peer: names follow this repo's torchvision
 * style (mobilenet_v2):
 *
 *   features.0          conv 3x3/2 32 (".0"), bn (".1"), relu6 (".2")
 *   features.1..13      depthwise-separable blocks: ".0" = depthwise 3x3 (".0.0" conv,
 *                       ".0.1" bn, ".0.2" relu6), ".1" = pointwise 1x1 (".1.0", ".1.1", ".1.2")
 *   avgpool - flatten - classifier.0 dropout - classifier.1 linear
 *
 * Params at 1000 classes: 3,206,976 in the features + 1,025,000 in the classifier =
 * 4,231,976 (Keras MobileNet(alpha=1.0) lists the same trainable count).
 */
#include <stdio.h>
#include "models/models_impl.h"

static int conv_bn_relu6(struct deft_model_ctx *m, const char *p, int x, int out, int k, int stride,
                         int groups) {
    int y = deft_model_conv(m, deft_model_name(m, "%s.0", p), x, out, k, stride, (k - 1) / 2, groups);
    y = deft_model_bn(m, deft_model_name(m, "%s.1", p), y);
    return deft_act(m->g, deft_model_name(m, "%s.2", p), y, DEFT_ACT_RELU6, 0);
}

/* output channels and stride of the 13 blocks */
static const int blocks[13][2] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},
                                  {512, 2}, {512, 1}, {512, 1}, {512, 1}, {512, 1},
                                  {512, 1}, {1024, 2}, {1024, 1}};

int deft_model_mobilenet_v1(struct deft_model_ctx *m, int x, const void *cfg) {
    (void)cfg;
    int y = conv_bn_relu6(m, "features.0", x, 32, 3, 2, 1), in = 32;
    for (int i = 0; i < 13; i++) {
        char p[48];
        snprintf(p, sizeof p, "features.%d.0", i + 1);
        y = conv_bn_relu6(m, p, y, in, 3, blocks[i][1], in);
        snprintf(p, sizeof p, "features.%d.1", i + 1);
        y = conv_bn_relu6(m, p, y, blocks[i][0], 1, 1, 1);
        in = blocks[i][0];
    }
    if (m->features_only) return y;
    return deft_model_head(m, y, "classifier.0", "classifier.1", true);
}

/* Block i = features.i: 0 the stem conv, 1..13 the depthwise-separable blocks (TAO's). */
int deft_model_mobilenet_v1_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                   int max) {
    (void)cfg;
    if (block < 0 || block > 13 || max < 1) return -1;
    snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "features.%d.", block);
    return 1;
}

/* mobilenet_v2.c - MobileNetV2 exactly as torchvision lays it out:
 *
 *   features.0      Conv2dNormActivation 3x3/2 -> 32 (".0" conv, ".1" bn, ".2" relu6)
 *   features.1..17  InvertedResidual: [expand 1x1 (conv.0.*)] depthwise 3x3
 *                   (conv.{0|1}.*) project 1x1 (conv.{1|2}) bn (conv.{2|3}), + input
 *                   when stride 1 and channels match
 *   features.18     Conv2dNormActivation 1x1 -> 1280
 *   avgpool - flatten - classifier.0 (dropout 0.2) - classifier.1 (linear)
 *
 * Feature taps: features.6 (stride 8, 32 ch), features.13 (16, 96 ch), features.18 (32);
 * the detection layout runs features.14..18 at stride 16 (TAO's stride=16 MobileNetV2).
 */
#include <stdio.h>
#include "models/models_impl.h"

/* torchvision's _make_divisible: round to a multiple of 8, never down by more than 10%. */
static int make_divisible(double v, int divisor) {
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < divisor) nv = divisor;
    if (nv < 0.9 * v) nv += divisor;
    return nv;
}

/* Conv2dNormActivation: conv (no bias) "<p>.0", bn "<p>.1", relu6 "<p>.2". */
static int conv_bn_relu6(struct deft_model_ctx *m, const char *p, int x, int out_ch, int kernel,
                         int stride, int groups) {
    int y = deft_model_conv(m, deft_model_name(m, "%s.0", p), x, out_ch, kernel, stride,
                            (kernel - 1) / 2, groups);
    y = deft_model_bn(m, deft_model_name(m, "%s.1", p), y);
    return deft_act(m->g, deft_model_name(m, "%s.2", p), y, DEFT_ACT_RELU6, 0);
}

static int inverted_residual(struct deft_model_ctx *m, int idx, int x, int in_ch, int out_ch,
                             int stride, int expand) {
    char p[64], sub[80];
    snprintf(p, sizeof p, "features.%d", idx);
    int hidden = in_ch * expand, j = 0, y = x;
    if (expand != 1) {
        snprintf(sub, sizeof sub, "%s.conv.%d", p, j++);
        y = conv_bn_relu6(m, sub, y, hidden, 1, 1, 1);
    }
    snprintf(sub, sizeof sub, "%s.conv.%d", p, j++);
    y = conv_bn_relu6(m, sub, y, hidden, 3, stride, hidden); /* depthwise */
    y = deft_model_conv(m, deft_model_name(m, "%s.conv.%d", p, j), y, out_ch, 1, 1, 0, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.conv.%d", p, j + 1), y);
    if (stride == 1 && in_ch == out_ch) /* linear bottleneck: no activation after the add */
        y = deft_add(m->g, deft_model_name(m, "%s.add", p), y, x);
    return y;
}

int deft_model_mobilenet_v2(struct deft_model_ctx *m, int x, const void *cfg) {
    (void)cfg;
    /* t (expansion), c (channels), n (repeats), s (first stride) */
    static const int setting[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                      {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
    double wm = m->width_mult;
    int in_ch = make_divisible(32 * wm, 8);
    int last_ch = make_divisible(1280 * (wm > 1.0 ? wm : 1.0), 8);
    int y = conv_bn_relu6(m, "features.0", x, in_ch, 3, 2, 1);
    int idx = 1, total = 2;
    for (int i = 0; i < 7; i++) {
        int out_ch = make_divisible(setting[i][1] * wm, 8);
        /* TAO's detection MobileNetV2 has output stride 16: the 160 stage keeps stride 1 */
        int first = i == 5 && m->det_layout ? 1 : setting[i][3];
        if (setting[i][3] == 2) deft_model_tap(m, total, y); /* the map before each downsampling */
        for (int r = 0; r < setting[i][2]; r++) {
            y = inverted_residual(m, idx++, y, in_ch, out_ch, r == 0 ? first : 1, setting[i][0]);
            in_ch = out_ch;
        }
        total *= first;
    }
    char p[32];
    snprintf(p, sizeof p, "features.%d", idx);
    y = conv_bn_relu6(m, p, y, last_ch, 1, 1, 1);
    if (!m->det_layout) deft_model_tap(m, 32, y);
    if (m->features_only) return y;
    return deft_model_head(m, y, "classifier.0", "classifier.1", true);
}

/* Block i = features.i: 0 the stem, 1..17 the inverted residual blocks, 18 the last 1x1 conv. */
int deft_model_mobilenet_v2_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                   int max) {
    (void)cfg;
    if (block < 0 || block > 18 || max < 1) return -1;
    snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "features.%d.", block);
    return 1;
}

/* efficientnet.c - EfficientNet-B0..B3 exactly as torchvision lays them out:
 *
 *   features.0      Conv2dNormActivation 3x3/2 (".0" conv, ".1" bn, ".2" silu)
 *   features.1..7   stages of MBConv "features.S.I": block.0 expand 1x1 (when the ratio
 *                   is not 1), block.{0|1} depthwise kxk, block.{1|2} squeeze-excitation
 *                   (avgpool, fc1 1x1 conv + bias, activation silu, fc2, scale_activation
 *                   sigmoid, and "mul": the broadcast product with the block's features),
 *                   block.{2|3} project 1x1 + bn (".0", ".1"), then "features.S.I.add" with
 *                   the input when stride 1 and channels match
 *   features.8      Conv2dNormActivation 1x1 -> 4x the last stage's channels
 *   avgpool - flatten - classifier.0 dropout - classifier.1 linear
 *
 * B1..B3 scale channels (torchvision's _make_divisible(c * width, 8)) and repeats
 * (ceil(n * depth)). Stochastic depth (torchvision: drop whole rows of the residual branch
 * with p up to 0.2 in training) is omitted: it is the identity at inference, so eval
 * outputs equal torchvision's; training graphs regularize a little less.
 */
#include <math.h>
#include <stdio.h>
#include "models/models_impl.h"

static int make_divisible(double v, int divisor) {
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < divisor) nv = divisor;
    if (nv < 0.9 * v) nv += divisor;
    return nv;
}

/* expand ratio, kernel, stride, in, out, repeats (B0) */
static const int stages[7][6] = {{1, 3, 1, 32, 16, 1},   {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
                                 {6, 3, 2, 40, 80, 3},   {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
                                 {6, 3, 1, 192, 320, 1}};

/* Conv2dNormActivation: conv "<p>.0", bn "<p>.1", silu "<p>.2" (act false: none). */
static int conv_bn_act(struct deft_model_ctx *m, const char *p, int x, int out, int k, int stride,
                       int groups, bool act) {
    int y = deft_model_conv(m, deft_model_name(m, "%s.0", p), x, out, k, stride, (k - 1) / 2, groups);
    y = deft_model_bn(m, deft_model_name(m, "%s.1", p), y);
    return act ? deft_act(m->g, deft_model_name(m, "%s.2", p), y, DEFT_ACT_SWISH, 0) : y;
}

static int squeeze_excitation(struct deft_model_ctx *m, const char *p, int x, int squeeze) {
    int64_t ch = x >= 0 ? deft_graph_value(m->g, x)->shape.d[1] : 1;
    int s = deft_global_avgpool(m->g, deft_model_name(m, "%s.avgpool", p), x);
    s = deft_model_conv_bias(m, deft_model_name(m, "%s.fc1", p), s, squeeze, 1, 1, 0);
    s = deft_act(m->g, deft_model_name(m, "%s.activation", p), s, DEFT_ACT_SWISH, 0);
    s = deft_model_conv_bias(m, deft_model_name(m, "%s.fc2", p), s, (int)ch, 1, 1, 0);
    s = deft_act(m->g, deft_model_name(m, "%s.scale_activation", p), s, DEFT_ACT_SIGMOID, 0);
    return deft_mul(m->g, deft_model_name(m, "%s.mul", p), x, s);
}

static int mbconv(struct deft_model_ctx *m, int stage, int i, int x, int in, int out, int k,
                  int stride, int expand) {
    char p[48], sub[64];
    snprintf(p, sizeof p, "features.%d.%d", stage, i);
    int hidden = make_divisible((double)in * expand, 8), j = 0, y = x;
    if (hidden != in) {
        snprintf(sub, sizeof sub, "%s.block.%d", p, j++);
        y = conv_bn_act(m, sub, y, hidden, 1, 1, 1, true);
    }
    snprintf(sub, sizeof sub, "%s.block.%d", p, j++);
    y = conv_bn_act(m, sub, y, hidden, k, stride, hidden, true);
    snprintf(sub, sizeof sub, "%s.block.%d", p, j++);
    y = squeeze_excitation(m, sub, y, in / 4 > 1 ? in / 4 : 1);
    snprintf(sub, sizeof sub, "%s.block.%d", p, j++);
    y = conv_bn_act(m, sub, y, out, 1, 1, 1, false);
    if (stride == 1 && in == out) y = deft_add(m->g, deft_model_name(m, "%s.add", p), y, x);
    return y;
}

int deft_model_efficientnet(struct deft_model_ctx *m, int x, const void *cfg) {
    const struct deft_efficientnet_cfg *c = cfg;
    int in = make_divisible(stages[0][3] * c->width, 8);
    int y = conv_bn_act(m, "features.0", x, in, 3, 2, 1, true);
    for (int s = 0; s < 7; s++) {
        int out = make_divisible(stages[s][4] * c->width, 8);
        int reps = (int)ceil(stages[s][5] * c->depth);
        for (int i = 0; i < reps; i++) {
            y = mbconv(m, s + 1, i, y, in, out, stages[s][1], i == 0 ? stages[s][2] : 1, stages[s][0]);
            in = out;
        }
    }
    y = conv_bn_act(m, "features.8", y, 4 * in, 1, 1, 1, true);
    if (m->features_only) return y;
    y = deft_model_head(m, y, "classifier.0", "classifier.1", false);
    /* torchvision: U(+-1/sqrt(out_features)), zero bias */
    struct deft_value *w = deft_model_weight_of(m, y), *b = deft_model_bias_of(m, y);
    if (w) {
        w->init = DEFT_INIT_UNIFORM_FAN_IN;
        w->fan_in = m->num_classes;
    }
    if (b) b->init = DEFT_INIT_ZEROS;
    return y;
}

/* Block i = features.i: 0 the stem, 1..7 the MBConv stages, 8 the last 1x1 conv. */
int deft_model_efficientnet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                   int max) {
    (void)cfg;
    if (block < 0 || block > 8 || max < 1) return -1;
    snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "features.%d.", block);
    return 1;
}

/* googlenet.c - GoogLeNet (Inception v1) exactly as torchvision lays it out with
 * aux_logits=False and transform_input=False:
 *
 *   conv1 7x7/2 64 - maxpool1 3x3/2 (ceil) - conv2 1x1 64 - conv3 3x3 192 - maxpool2
 *   inception3a, 3b - maxpool3 - inception4a..4e - maxpool4 2x2/2 (ceil) - inception5a, 5b
 *   avgpool - flatten - dropout 0.2 - fc
 *
 * BasicConv2d "<p>": "<p>.conv" (no bias), "<p>.bn" (eps 1e-3), "<p>.relu".
 * Inception "<p>": branch1 (1x1), branch2.0/.1 (1x1, 3x3), branch3.0/.1 (1x1, 3x3: torchvision
 * keeps a 3x3 where the paper has 5x5), branch4.0 maxpool 3x3/1 pad 1 + branch4.1 (1x1),
 * joined by the concat "<p>.cat".
 *
 * Initializers: convs and fc N(0, 0.01) (torchvision: trunc_normal_ std 0.01 cut at +-2,
 * i.e. +-200 sigma: the same), BN 1/0, fc bias PyTorch's Linear default.
 */
#include <stdio.h>
#include "models/models_impl.h"

static int basic_conv(struct deft_model_ctx *m, const char *p, int x, int out, int k, int stride,
                      int pad) {
    struct deft_conv_attr a = {.stride = {stride, stride}, .pad = {pad, pad, pad, pad},
                               .dilation = {1, 1}, .groups = 1};
    int y = deft_conv2d(m->g, deft_model_name(m, "%s.conv", p), x, out, k, k, &a, false);
    struct deft_value *w = deft_model_weight_of(m, y);
    if (w) w->init = DEFT_INIT_NORMAL_001;
    y = deft_model_bn_eps(m, deft_model_name(m, "%s.bn", p), y, 1e-3f);
    return deft_act(m->g, deft_model_name(m, "%s.relu", p), y, DEFT_ACT_RELU, 0);
}

static int maxpool(struct deft_model_ctx *m, const char *name, int x, int k, int stride, int pad) {
    return deft_pool(m->g, name, x, &(struct deft_pool_attr){
                         .kind = DEFT_POOL_MAX, .kernel = {k, k}, .stride = {stride, stride},
                         .pad = {pad, pad, pad, pad}, .ceil_mode = true});
}

struct inception_cfg { const char *name; int ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj; };
static const struct inception_cfg inceptions[9] = {
    {"inception3a", 64, 96, 128, 16, 32, 32},    {"inception3b", 128, 128, 192, 32, 96, 64},
    {"inception4a", 192, 96, 208, 16, 48, 64},   {"inception4b", 160, 112, 224, 24, 64, 64},
    {"inception4c", 128, 128, 256, 24, 64, 64},  {"inception4d", 112, 144, 288, 32, 64, 64},
    {"inception4e", 256, 160, 320, 32, 128, 128}, {"inception5a", 256, 160, 320, 32, 128, 128},
    {"inception5b", 384, 192, 384, 48, 128, 128},
};

static int inception(struct deft_model_ctx *m, const struct inception_cfg *c, int x) {
    char p[64], q[80];
    snprintf(p, sizeof p, "%s", c->name);
    int b[4];
    snprintf(q, sizeof q, "%s.branch1", p);
    b[0] = basic_conv(m, q, x, c->ch1x1, 1, 1, 0);
    snprintf(q, sizeof q, "%s.branch2.0", p);
    b[1] = basic_conv(m, q, x, c->ch3x3red, 1, 1, 0);
    snprintf(q, sizeof q, "%s.branch2.1", p);
    b[1] = basic_conv(m, q, b[1], c->ch3x3, 3, 1, 1);
    snprintf(q, sizeof q, "%s.branch3.0", p);
    b[2] = basic_conv(m, q, x, c->ch5x5red, 1, 1, 0);
    snprintf(q, sizeof q, "%s.branch3.1", p);
    b[2] = basic_conv(m, q, b[2], c->ch5x5, 3, 1, 1);
    b[3] = maxpool(m, deft_model_name(m, "%s.branch4.0", p), x, 3, 1, 1);
    snprintf(q, sizeof q, "%s.branch4.1", p);
    b[3] = basic_conv(m, q, b[3], c->pool_proj, 1, 1, 0);
    for (int i = 0; i < 4; i++)
        if (b[i] < 0) return -1;
    return deft_concat(m->g, deft_model_name(m, "%s.cat", p), b, 4, 1);
}

int deft_model_googlenet(struct deft_model_ctx *m, int x, const void *cfg) {
    (void)cfg;
    int y = basic_conv(m, "conv1", x, 64, 7, 2, 3);
    y = maxpool(m, "maxpool1", y, 3, 2, 0);
    y = basic_conv(m, "conv2", y, 64, 1, 1, 0);
    y = basic_conv(m, "conv3", y, 192, 3, 1, 1);
    y = maxpool(m, "maxpool2", y, 3, 2, 0);
    y = inception(m, &inceptions[0], y);
    y = inception(m, &inceptions[1], y);
    y = maxpool(m, "maxpool3", y, 3, 2, 0);
    for (int i = 2; i < 7; i++) y = inception(m, &inceptions[i], y);
    y = maxpool(m, "maxpool4", y, 2, 2, 0);
    y = inception(m, &inceptions[7], y);
    y = inception(m, &inceptions[8], y);
    if (m->features_only) return y;
    y = deft_model_head(m, y, "dropout", "fc", false);
    struct deft_value *w = deft_model_weight_of(m, y);
    if (w) w->init = DEFT_INIT_NORMAL_001;
    return y;
}

/* Block 0 = conv1..conv3 (the stem), 1..9 = inception3a, 3b, 4a..4e, 5a, 5b. */
int deft_model_googlenet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                int max) {
    (void)cfg;
    if (block < 0 || block > 9 || max < 3) return -1;
    if (block == 0) {
        for (int i = 0; i < 3; i++) snprintf(out[i], DEFT_MODEL_PREFIX_MAX, "conv%d.", i + 1);
        return 3;
    }
    snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "%s.", inceptions[block - 1].name);
    return 1;
}

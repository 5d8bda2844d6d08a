/* vgg.c - VGG-16/19 (optionally with BN) exactly as torchvision lays it out:
 *
 *   features.i   conv 3x3 (bias) [bn] relu ... maxpool 2x2/2 after each of the 5 conv blocks
 *                (indices count every module: conv, [bn,] relu, pool)
 *   avgpool      AdaptiveAvgPool2d(7x7): nothing at 224x224 (the map is 7x7 already)
 *   flatten - classifier.0 linear 4096, .1 relu, .2 dropout, .3 linear 4096, .4 relu,
 *             .5 dropout, .6 linear num_classes
 */
#include <stdio.h>
#include "models/models_impl.h"

#define POOL 0
static const int cfg16[] = {64,  64,  POOL, 128, 128, POOL, 256, 256, 256, POOL,
                            512, 512, 512,  POOL, 512, 512, 512, POOL};
static const int cfg19[] = {64,  64,  POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512,
                            512, 512, 512,  POOL, 512, 512, 512, 512, POOL};

static const int *layers(const struct deft_vgg_cfg *c, int *n) {
    *n = c->depth == 19 ? (int)(sizeof cfg19 / sizeof *cfg19) : (int)(sizeof cfg16 / sizeof *cfg16);
    return c->depth == 19 ? cfg19 : cfg16;
}

/* torchvision's vgg classifier linears: N(0, 0.01) weight, zero bias */
static int linear(struct deft_model_ctx *m, const char *name, int x, int out) {
    int y = deft_linear(m->g, name, x, out, true);
    struct deft_value *w = deft_model_weight_of(m, y), *b = deft_model_bias_of(m, y);
    if (w) w->init = DEFT_INIT_NORMAL_001;
    if (b) b->init = DEFT_INIT_ZEROS;
    return y;
}

int deft_model_vgg(struct deft_model_ctx *m, int x, const void *cfg) {
    const struct deft_vgg_cfg *c = cfg;
    int n, idx = 0, y = x;
    const int *l = layers(c, &n);
    for (int i = 0; i < n; i++) {
        if (l[i] == POOL) {
            y = deft_pool(m->g, deft_model_name(m, "features.%d", idx++), y,
                          &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2},
                                                   .stride = {2, 2}});
            continue;
        }
        y = deft_model_conv_bias(m, deft_model_name(m, "features.%d", idx++), y, l[i], 3, 1, 1);
        if (c->bn) y = deft_model_bn(m, deft_model_name(m, "features.%d", idx++), y);
        y = deft_act(m->g, deft_model_name(m, "features.%d", idx++), y, DEFT_ACT_RELU, 0);
    }
    if (m->features_only) return y;
    y = deft_model_adaptive_avgpool(m, "avgpool", y, 7, 7);
    y = deft_flatten(m->g, "flatten", y);
    bool drop = m->training && m->dropout > 0;
    y = linear(m, "classifier.0", y, 4096);
    y = deft_act(m->g, "classifier.1", y, DEFT_ACT_RELU, 0);
    if (drop) y = deft_dropout(m->g, "classifier.2", y, m->dropout, true, m->seed);
    y = linear(m, "classifier.3", y, 4096);
    y = deft_act(m->g, "classifier.4", y, DEFT_ACT_RELU, 0);
    if (drop) y = deft_dropout(m->g, "classifier.5", y, m->dropout, true, m->seed + 1);
    return linear(m, "classifier.6", y, m->num_classes);
}

/* TAO's vgg: block_1..block_5 are the conv blocks (1-based); there is no stem,
 * so block 0 names nothing. */
int deft_model_vgg_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX], int max) {
    const struct deft_vgg_cfg *c = cfg;
    if (block < 0 || block > 5) return -1;
    int n, idx = 0, cur = 1, k = 0;
    const int *l = layers(c, &n);
    for (int i = 0; i < n; i++) {
        if (l[i] == POOL) {
            idx++;
            cur++;
            continue;
        }
        for (int j = 0; j < (c->bn ? 2 : 1); j++) {
            if (cur == block && k < max) snprintf(out[k++], DEFT_MODEL_PREFIX_MAX, "features.%d.", idx);
            idx++;
        }
        idx++; /* relu */
    }
    return k;
}

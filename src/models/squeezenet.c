/* squeezenet.c - SqueezeNet 1.0 / 1.1 exactly as torchvision lays them out:
 *
 *   1_0: features.0 conv 7x7/2 96, .1 relu, .2 maxpool 3x3/2 (ceil), .3-.5 fire, .6 maxpool,
 *        .7-.10 fire, .11 maxpool, .12 fire
 *   1_1: features.0 conv 3x3/2 64, .1 relu, .2 maxpool, .3-.4 fire, .5 maxpool, .6-.7 fire,
 *        .8 maxpool, .9-.12 fire
 *   Fire "features.i": squeeze 1x1 + squeeze_activation, expand1x1 + expand1x1_activation,
 *        expand3x3 (pad 1) + expand3x3_activation, concat "features.i.cat"
 *   classifier.0 dropout 0.5, .1 conv 1x1 num_classes, .2 relu, .3 global avg pool, flatten
 *
 * torchvision initializes the convs kaiming_uniform_ (a=0: U(+-sqrt(6/fan_in))), the final
 * conv N(0, 0.01), every bias 0. deft has no a=0 kaiming-uniform initializer: XAVIER_UNIFORM
 * (U(+-sqrt(6/(fan_in+fan_out)))) with fan_in - 1 and fan_out 1 is exactly that bound.
 */
#include <stdio.h>
#include "models/models_impl.h"

#define POOL (-1)
/* squeeze channels per fire module (expand = 4x squeeze each), POOL = maxpool */
static const int fires10[] = {16, 16, 32, POOL, 32, 48, 48, 64, POOL, 64};
static const int fires11[] = {16, 16, POOL, 32, 32, POOL, 48, 48, 64, 64};
#define N_FIRES 10

static int conv(struct deft_model_ctx *m, const char *name, int x, int out, int k, int stride,
                int pad) {
    struct deft_conv_attr a = {.stride = {stride, stride}, .pad = {pad, pad, pad, pad},
                               .dilation = {1, 1}, .groups = 1};
    int y = deft_conv2d(m->g, name, x, out, k, k, &a, true);
    struct deft_value *w = deft_model_weight_of(m, y), *b = deft_model_bias_of(m, y);
    if (w) {
        int fan_in = w->fan_in; /* (in_ch / groups) * k * k */
        w->init = DEFT_INIT_XAVIER_UNIFORM;
        w->fan_in = fan_in - 1;
        w->fan_out = 1;
    }
    if (b) b->init = DEFT_INIT_ZEROS;
    return y;
}

static int maxpool(struct deft_model_ctx *m, const char *name, int x) {
    return deft_pool(m->g, name, x, &(struct deft_pool_attr){
                         .kind = DEFT_POOL_MAX, .kernel = {3, 3}, .stride = {2, 2}, .ceil_mode = true});
}

static int fire(struct deft_model_ctx *m, int idx, int x, int squeeze) {
    char p[32];
    snprintf(p, sizeof p, "features.%d", idx);
    int s = conv(m, deft_model_name(m, "%s.squeeze", p), x, squeeze, 1, 1, 0);
    s = deft_act(m->g, deft_model_name(m, "%s.squeeze_activation", p), s, DEFT_ACT_RELU, 0);
    int e[2];
    e[0] = conv(m, deft_model_name(m, "%s.expand1x1", p), s, 4 * squeeze, 1, 1, 0);
    e[0] = deft_act(m->g, deft_model_name(m, "%s.expand1x1_activation", p), e[0], DEFT_ACT_RELU, 0);
    e[1] = conv(m, deft_model_name(m, "%s.expand3x3", p), s, 4 * squeeze, 3, 1, 1);
    e[1] = deft_act(m->g, deft_model_name(m, "%s.expand3x3_activation", p), e[1], DEFT_ACT_RELU, 0);
    if (e[0] < 0 || e[1] < 0) return -1;
    return deft_concat(m->g, deft_model_name(m, "%s.cat", p), e, 2, 1);
}

int deft_model_squeezenet(struct deft_model_ctx *m, int x, const void *cfg) {
    const struct deft_squeezenet_cfg *c = cfg;
    bool v10 = c->version == 10;
    const int *f = v10 ? fires10 : fires11;
    int y = v10 ? conv(m, "features.0", x, 96, 7, 2, 0) : conv(m, "features.0", x, 64, 3, 2, 0);
    y = deft_act(m->g, "features.1", y, DEFT_ACT_RELU, 0);
    y = maxpool(m, "features.2", y);
    for (int i = 0, idx = 3; i < N_FIRES; i++, idx++)
        y = f[i] == POOL ? maxpool(m, deft_model_name(m, "features.%d", idx), y)
                         : fire(m, idx, y, f[i]);
    if (m->features_only) return y;
    if (m->training && m->dropout > 0)
        y = deft_dropout(m->g, "classifier.0", y, m->dropout, true, m->seed);
    y = conv(m, "classifier.1", y, m->num_classes, 1, 1, 0);
    struct deft_value *w = deft_model_weight_of(m, y);
    if (w) w->init = DEFT_INIT_NORMAL_001;
    y = deft_act(m->g, "classifier.2", y, DEFT_ACT_RELU, 0);
    y = deft_global_avgpool(m->g, "classifier.3", y);
    return deft_flatten(m->g, "flatten", y);
}

/* Block 0 = features.0 (the first conv), 1..8 = the fire modules in order. */
int deft_model_squeezenet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX],
                                 int max) {
    const struct deft_squeezenet_cfg *c = cfg;
    const int *f = c->version == 10 ? fires10 : fires11;
    if (block < 0 || block > 8 || max < 1) return -1;
    if (block == 0) {
        snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "features.0.");
        return 1;
    }
    for (int i = 0, k = 0; i < N_FIRES; i++) {
        if (f[i] == POOL) continue;
        if (++k == block) {
            snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "features.%d.", i + 3);
            return 1;
        }
    }
    return -1;
}

/* unet_vgg.c - TAO's VGG UNet (arch "vgg", num_layers 16 or 19): a VGG encoder with
 * torchvision's parameter names and TAO's linear decoder. The topology and TAO's
 * quirks are described in include/deft/unet_model.h. */
#include <string.h>
#include "models/unet_impl.h"

/* 3x3 convs per block (VGG-16 / VGG-19) and their widths */
static const int convs16[5] = {2, 2, 3, 3, 3}, convs19[5] = {2, 2, 4, 4, 4};
static const int widths[5] = {64, 128, 256, 512, 512};

/* Glorot-uniform weight, zero bias (TAO's Keras defaults) for the decoder's layers: with no
 * activation between them, the ReLU-gain init of deft's other decoders would multiply the
 * logits' scale by ~180 over the ten convs. Returns y. */
static int glorot(struct deft_model_ctx *m, int y) {
    struct deft_value *w = deft_model_weight_of(m, y), *b = deft_model_bias_of(m, y);
    if (w) w->init = DEFT_INIT_XAVIER_UNIFORM; /* fan_in + fan_out: (in + out) * kh * kw */
    if (b) b->init = DEFT_INIT_ZEROS;
    return y;
}

/* TAO's decoder block: 4x4/2 transposed conv to the skip's width, concat [up, skip], two
 * 3x3 convs with bias and no activation (TAO's Keras layers take none). */
static int vgg_up(struct deft_model_ctx *m, int i, int x, int skip) {
    int c = skip >= 0 ? (int)deft_graph_value(m->g, skip)->shape.d[1] : 1;
    int y = glorot(m, deft_unet_up2(m, deft_model_name(m, "up%d.deconv", i), x, c, 4));
    y = deft_concat(m->g, deft_model_name(m, "up%d.concat", i), (int[]){y, skip}, 2, 1);
    y = glorot(m, deft_model_conv_bias(m, deft_model_name(m, "up%d.conv1", i), y, c, 3, 1, 1));
    return glorot(m, deft_model_conv_bias(m, deft_model_name(m, "up%d.conv2", i), y, c, 3, 1, 1));
}

enum deft_status deft_unet_build_vgg(struct deft_model_ctx *m, const struct deft_unet_opts *o, const char *arch,
                                     int x, int *out) {
    bool bn = strstr(arch, "_bn") != NULL;
    const int *convs = strncmp(arch, "vgg19", 5) ? convs16 : convs19;
    enum deft_bn_mode dec_bn = m->bn;
    if (o->freeze_bn && m->training) m->bn = DEFT_BN_FROZEN;
    /* skip[0]: block 1's first ReLU (stride 1); skip[1..4]: the pools after blocks 1..4 */
    int skip[5] = {-1, -1, -1, -1, -1}, idx = 0, y = x;
    for (int b = 0; b < 5; b++) {
        for (int i = 0; i < convs[b]; i++) {
            /* TAO taps block 5 at its third conv for both depths: VGG-19's fourth is not built
             * (its torchvision weights, features.34, stay unused), the indices still count it */
            if (b < 4 || i < 3) {
                y = deft_model_conv_bias(m, deft_model_name(m, "features.%d", idx), y, widths[b], 3, 1, 1);
                if (bn) y = deft_model_bn(m, deft_model_name(m, "features.%d", idx + 1), y);
                y = deft_act(m->g, deft_model_name(m, "features.%d", idx + 1 + bn), y, DEFT_ACT_RELU, 0);
                if (b == 0 && i == 0) skip[0] = y;
            }
            idx += bn ? 3 : 2;
        }
        if (b < 4) {
            y = deft_pool(m->g, deft_model_name(m, "features.%d", idx), y,
                          &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2}, .stride = {2, 2}});
            skip[b + 1] = y;
        }
        idx++;
    }
    m->bn = dec_bn;
    /* TAO's UNet (not its VGG template) adds the fifth pool, so the decoder starts at /32 */
    y = deft_pool(m->g, "pool5", y,
                  &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2}, .stride = {2, 2}});
    for (int i = 0; i < 5; i++) y = vgg_up(m, i + 1, y, skip[4 - i]);
    *out = glorot(m, deft_model_conv_bias(m, "logits", y, o->num_classes, 1, 1, 0));
    enum deft_status s = deft_graph_status(m->g);
    if (!s && o->n_freeze_blocks > 0 && deft_model_freeze_blocks(m->g, arch, o->freeze_blocks, o->n_freeze_blocks) < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "unet: freeze_blocks out of range for %s (1..5)", arch);
    return s;
}

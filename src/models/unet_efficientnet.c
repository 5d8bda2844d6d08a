/* unet_efficientnet.c - TAO's EfficientNet-B0 UNet: deft's EfficientNet-B0 (torchvision's
 * layout and names) as the encoder, skips from the first block of stages 1, 2, 3 and 5,
 * and TAO's decoder of five transposed-conv blocks. Topology in include/deft/unet_model.h. */
#include <string.h>
#include "models/unet_impl.h"

/* TAO's Conv2DTranspose_block: 2x2/2 transposed conv (bias), [concat skip], conv 3x3 (no
 * bias), BN (always: TAO's first BN ignores use_batch_norm), ReLU, conv 3x3 (no bias),
 * [BN], ReLU. */
static int eff_up(struct deft_model_ctx *m, bool bn, int i, int x, int skip, int out) {
    int y = deft_unet_up2(m, deft_model_name(m, "up%d.deconv", i), x, out, 2);
    if (skip >= 0) y = deft_concat(m->g, deft_model_name(m, "up%d.concat", i), (int[]){y, skip}, 2, 1);
    y = deft_model_conv(m, deft_model_name(m, "up%d.conv1", i), y, out, 3, 1, 1, 1);
    y = deft_model_bn(m, deft_model_name(m, "up%d.bn1", i), y);
    y = deft_act(m->g, deft_model_name(m, "up%d.relu1", i), y, DEFT_ACT_RELU, 0);
    y = deft_model_conv(m, deft_model_name(m, "up%d.conv2", i), y, out, 3, 1, 1, 1);
    if (bn) y = deft_model_bn(m, deft_model_name(m, "up%d.bn2", i), y);
    return deft_act(m->g, deft_model_name(m, "up%d.relu2", i), y, DEFT_ACT_RELU, 0);
}

enum deft_status deft_unet_build_efficientnet(struct deft_model_ctx *m, const struct deft_unet_opts *o,
                                              const char *arch, int x, int *out) {
    static const struct deft_efficientnet_cfg b0 = {1.0, 1.0};
    /* TAO's block1a/2a/3a/5a_project_bn: the first block's output of stages 1, 2, 3, 5
     * (strides 2, 4, 8, 16; none adds a residual) */
    static const char *const taps[4] = {"features.1.0.block.2.1", "features.2.0.block.3.1",
                                        "features.3.0.block.3.1", "features.5.0.block.3.1"};
    static const int filters[5] = {512, 256, 128, 64, 32};
    enum deft_bn_mode dec_bn = m->bn;
    if (o->freeze_bn && m->training) m->bn = DEFT_BN_FROZEN;
    m->features_only = true;
    int y = deft_model_efficientnet(m, x, &b0), skip[4];
    m->features_only = false;
    m->bn = dec_bn;
    enum deft_status s = deft_graph_status(m->g);
    if (s) return s;
    for (int i = 0; i < 4; i++)
        if ((skip[i] = deft_graph_find_value(m->g, taps[i])) < 0)
            return deft_set_error(DEFT_ERR_NOT_FOUND, "unet: %s has no value %s", arch, taps[i]);
    /* the encoder stays at stride 32: TAO asks its template for stride 16, but the template's
     * stride-16 switch changes nothing (it rebinds a local list) */
    for (int i = 0; i < 5; i++) y = eff_up(m, o->use_batch_norm, i + 1, y, i < 4 ? skip[3 - i] : -1, filters[i]);
    *out = deft_model_conv_bias(m, "logits", y, o->num_classes, 1, 1, 0);
    s = deft_graph_status(m->g);
    if (!s && o->n_freeze_blocks > 0 && deft_model_freeze_blocks(m->g, arch, o->freeze_blocks, o->n_freeze_blocks) < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "unet: freeze_blocks out of range for %s (0..8)", arch);
    return s;
}

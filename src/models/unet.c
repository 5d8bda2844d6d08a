/* unet.c - TAO's UNet family: the options resolved, a ResNet encoder with TAO's resnet-UNet
 * decoder, and the vanilla (dynamic) UNet; the VGG, EfficientNet-B0 and ShuffleNet UNets are
 * in unet_vgg.c, unet_efficientnet.c and unet_shufflenet.c. The topology is described in
 * include/deft/unet_model.h. */
#include <stdio.h>
#include <string.h>
#include "models/unet_impl.h"

/* 3x3 conv, then BN when the context uses batch norm (conv without bias) or a
 * bias (no BN), then ReLU: "<name>", "<name>_bn", "<name>_relu". */
static int conv_bn_relu(struct deft_model_ctx *m, bool bn, const char *name, int x, int out) {
    int y = bn ? deft_model_conv(m, name, x, out, 3, 1, 1, 1) : deft_model_conv_bias(m, name, x, out, 3, 1, 1);
    if (bn) y = deft_model_bn(m, deft_model_name(m, "%s_bn", name), y);
    return deft_act(m->g, deft_model_name(m, "%s_relu", name), y, DEFT_ACT_RELU, 0);
}

/* the transposed conv of every UNet decoder (unet_impl.h) */
int deft_unet_up2(struct deft_model_ctx *m, const char *name, int x, int out, int k) {
    int p = (k - 2) / 2;
    return deft_conv_transpose2d(m->g, name, x, out, k, k,
                                 &(struct deft_conv_attr){.stride = {2, 2}, .pad = {p, p, p, p},
                                                          .dilation = {1, 1}, .groups = 1},
                                 true);
}

/* TAO's resnet-UNet decoder block: up, [concat skip], [BN], ReLU, conv, [BN], ReLU. */
static int resnet_up(struct deft_model_ctx *m, bool bn, int i, int x, int skip, int out) {
    int y = deft_unet_up2(m, deft_model_name(m, "up%d.deconv", i), x, out, 4);
    if (skip >= 0) y = deft_concat(m->g, deft_model_name(m, "up%d.concat", i), (int[]){y, skip}, 2, 1);
    if (bn) y = deft_model_bn(m, deft_model_name(m, "up%d.bn1", i), y);
    y = deft_act(m->g, deft_model_name(m, "up%d.relu1", i), y, DEFT_ACT_RELU, 0);
    y = bn ? deft_model_conv(m, deft_model_name(m, "up%d.conv", i), y, out, 3, 1, 1, 1)
           : deft_model_conv_bias(m, deft_model_name(m, "up%d.conv", i), y, out, 3, 1, 1);
    if (bn) y = deft_model_bn(m, deft_model_name(m, "up%d.bn2", i), y);
    return deft_act(m->g, deft_model_name(m, "up%d.relu2", i), y, DEFT_ACT_RELU, 0);
}

static enum deft_status build_resnet(struct deft_model_ctx *m, const struct deft_unet_opts *o, const char *arch,
                                     int x, int *out) {
    struct deft_backbone_opts bo = {.arch = arch, .training = o->training,
                                    .bn_mode = o->freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                    .detection_layout = true};
    struct deft_backbone_taps t;
    enum deft_status s = deft_backbone_build(m->g, x, &bo, &t);
    if (s) return s;
    if (t.s2 < 0 || t.s4 < 0 || t.s8 < 0 || t.last_stride != 16)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "unet: encoder %s has no skips at strides 2/4/8", arch);
    static const int widths[4] = {256, 128, 64, 64};
    const int skips[4] = {t.s8, t.s4, t.s2, -1};
    int y = t.last;
    for (int i = 0; i < 4; i++) y = resnet_up(m, o->use_batch_norm, i + 1, y, skips[i], widths[i]);
    *out = deft_model_conv_bias(m, "logits", y, o->num_classes, 3, 1, 1);
    if (o->n_freeze_blocks > 0 && deft_model_freeze_blocks(m->g, arch, o->freeze_blocks, o->n_freeze_blocks) < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "unet: freeze_blocks out of range for %s", arch);
    return deft_graph_status(m->g);
}

/* Two 3x3 convs with [BN] and ReLU: "<name>.conv1", "<name>.conv2". */
static int double_conv(struct deft_model_ctx *m, bool bn, const char *name, int x, int out) {
    char n1[64];
    snprintf(n1, sizeof n1, "%s.conv1", name);
    int y = conv_bn_relu(m, bn, n1, x, out);
    snprintf(n1, sizeof n1, "%s.conv2", name);
    return conv_bn_relu(m, bn, n1, y, out);
}

static enum deft_status build_vanilla(struct deft_model_ctx *m, const struct deft_unet_opts *o, int x, int *out) {
    bool bn = o->use_batch_norm;
    int skip[5], y = x;
    for (int i = 0; i < 5; i++) {
        skip[i] = double_conv(m, bn, deft_model_name(m, "enc%d", i), y, 32 << i);
        y = deft_pool(m->g, deft_model_name(m, "enc%d.pool", i), skip[i],
                      &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2}, .stride = {2, 2}});
    }
    y = double_conv(m, bn, "center", y, 1024);
    for (int i = 4; i >= 0; i--) {
        int up = deft_unet_up2(m, deft_model_name(m, "dec%d.deconv", i), y, 32 << i, 2);
        y = deft_concat(m->g, deft_model_name(m, "dec%d.concat", i), (int[]){skip[i], up}, 2, 1);
        if (bn) y = deft_model_bn(m, deft_model_name(m, "dec%d.bn", i), y);
        y = deft_act(m->g, deft_model_name(m, "dec%d.relu", i), y, DEFT_ACT_RELU, 0);
        y = double_conv(m, bn, deft_model_name(m, "dec%d", i), y, 32 << i);
    }
    *out = deft_model_conv_bias(m, "logits", y, o->num_classes, 1, 1, 0);
    return deft_graph_status(m->g);
}

static enum deft_status set_meta(struct deft_graph *g, const char *arch, const struct deft_unet_opts *o, int c, int h,
                                 int w) {
    char buf[96];
    snprintf(buf, sizeof buf, "\"%s\"", arch);
    enum deft_status s = deft_graph_set_meta(g, "arch", "\"unet\"");
    if (!s) s = deft_graph_set_meta(g, "backbone", buf);
    snprintf(buf, sizeof buf, "%d", o->num_classes);
    if (!s) s = deft_graph_set_meta(g, "num_classes", buf);
    snprintf(buf, sizeof buf, "[%d,%d,%d]", c, h, w);
    if (!s) s = deft_graph_set_meta(g, "input_shape", buf);
    return s;
}

enum unet_kind { UNET_RESNET, UNET_VANILLA, UNET_VGG, UNET_EFFICIENTNET, UNET_SHUFFLENET };

/* Which builder, and the registry name of its encoder in *arch (vgg with use_batch_norm:
 * "vgg16_bn", TAO's VGG template puts BN after every encoder conv). */
static enum deft_status resolve(const struct deft_unet_opts *o, enum unet_kind *kind, const char **arch) {
    *kind = UNET_RESNET;
    if (!o->arch || !o->arch[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "unet: no arch");
    if (!strcmp(o->arch, "vanilla_unet") || !strcmp(o->arch, "vanilla_unet_dynamic")) {
        *kind = UNET_VANILLA;
        *arch = o->arch;
        return DEFT_OK;
    }
    if (!strcmp(o->arch, "shufflenet")) { /* TAO's own template, not a classifier of deft's registry */
        *kind = UNET_SHUFFLENET;
        *arch = o->arch;
        return DEFT_OK;
    }
    enum deft_status s = deft_model_resolve_arch(o->arch, o->nlayers, arch);
    if (s) return deft_wrap_error(s, "unet arch");
    if (!strncmp(*arch, "resnet", 6)) return DEFT_OK;
    if (!strncmp(*arch, "vgg", 3)) {
        *kind = UNET_VGG;
        if (o->use_batch_norm && !strstr(*arch, "_bn")) *arch = !strcmp(*arch, "vgg19") ? "vgg19_bn" : "vgg16_bn";
        return DEFT_OK;
    }
    if (!strcmp(*arch, "efficientnet_b0")) {
        *kind = UNET_EFFICIENTNET;
        return DEFT_OK;
    }
    return deft_set_error(DEFT_ERR_UNSUPPORTED, "unet: arch %s is not built (resnet 10/18/34/50, vgg 16/19, "
                          "efficientnet_b0, shufflenet, vanilla_unet, vanilla_unet_dynamic are)", *arch);
}

enum deft_status deft_unet_build(const struct deft_unet_opts *o, struct deft_graph **out) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_unet_build: out is NULL");
    *out = NULL;
    if (!o) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_unet_build: opts is NULL");
    enum unet_kind kind;
    const char *arch;
    enum deft_status s = resolve(o, &kind, &arch);
    if (s) return s;
    int c = o->channels ? o->channels : 3, h = o->height ? o->height : 320, w = o->width ? o->width : 320;
    /* resnet's encoder stops at /16; the others pool to /32 */
    int n = o->batch ? o->batch : 1, mult = kind == UNET_RESNET ? 16 : 32;
    if (o->num_classes < 1 || o->num_classes > 4096 || c < 1 || c > 64 || n < 1 || n > (1 << 16))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "unet: bad classes %d, channels %d or batch %d", o->num_classes,
                              c, n);
    if (h < mult || w < mult || h % mult || w % mult || h > 8192 || w > 8192)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "unet (%s): input %dx%d must be multiples of %d", arch, w, h,
                              mult);
    struct deft_model_ctx *m;
    struct deft_graph *g;
    if ((s = deft_model_ctx_new(arch, o->training, &m, &g))) return s;
    int x = deft_input(g, "input_1", deft_shape4(n, c, h, w)), y = -1;
    if (x < 0) s = deft_graph_status(g);
    else if (kind == UNET_VANILLA) s = build_vanilla(m, o, x, &y);
    else if (kind == UNET_VGG) s = deft_unet_build_vgg(m, o, arch, x, &y);
    else if (kind == UNET_EFFICIENTNET) s = deft_unet_build_efficientnet(m, o, arch, x, &y);
    else if (kind == UNET_SHUFFLENET) s = deft_unet_build_shufflenet(m, o, x, &y);
    else s = build_resnet(m, o, arch, x, &y);
    if (!s && y >= 0) deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
    if (!s) s = deft_graph_set_role(g, DEFT_ROLE_IMAGE, x);
    if (!s) s = deft_graph_set_role(g, DEFT_ROLE_LOGITS, y);
    if (!s) s = set_meta(g, arch, o, c, h, w);
    return deft_model_ctx_finish(m, g, s, "unet", n, c, h, w, out);
}

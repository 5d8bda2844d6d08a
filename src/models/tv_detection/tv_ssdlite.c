/* tv_ssdlite.c - torchvision's ssdlite320_mobilenet_v3_large as a graph
 * (names of its state_dict; BatchNorm2d eps 1e-3 everywhere):
 *
 *   backbone.features.0 / .1   mobilenet_v3_large split at C4's expansion
 *                              (tv_mobilenet_v3.c): level 0 = features[13].block[0]
 *                              (672 ch, stride 16), level 1 = the last conv (stride 32)
 *   backbone.extra.0..3        1x1 + BN + ReLU6 to out/2, depthwise 3x3/2 + BN + ReLU6,
 *                              1x1 + BN + ReLU6 to out (512, 256, 256, 128)
 *   head.{classification,regression}_head.module_list.L
 *                              .0 depthwise 3x3 + BN + ReLU6, .1 1x1 conv with bias
 * Six anchors per cell on every level; reduced_tail (torchvision's default
 * when no ImageNet backbone is loaded, and its COCO weights) from the options. */
#include "models/tv_detection/tv_det_impl.h"

#define EPS 1e-3f

static void heads(struct deft_model_ctx *m, int level, int x, int ch) {
    static const char *const names[2] = {"classification_head", "regression_head"};
    for (int h = 0; h < 2; h++) {
        const char *p = deft_model_name(m, "head.%s.module_list.%d.0", names[h], level);
        int y = deft_tv_conv_bn_act(m, p, x, ch, 3, 1, ch, DEFT_ACT_RELU6, EPS);
        y = deft_tv_conv(m, deft_model_name(m, "head.%s.module_list.%d.1", names[h], level), y,
                         6 * (h ? 4 : m->num_classes), 1, 1, 0, 1);
        deft_tv_output(m, deft_model_name(m, h ? "tv_reg_%d" : "tv_cls_%d", level), y);
    }
}

static int extra_block(struct deft_model_ctx *m, int b, int x, int out) {
    x = deft_tv_conv_bn_act(m, deft_model_name(m, "backbone.extra.%d.0", b), x, out / 2, 1, 1, 1, DEFT_ACT_RELU6, EPS);
    x = deft_tv_conv_bn_act(m, deft_model_name(m, "backbone.extra.%d.1", b), x, out / 2, 3, 2, out / 2,
                            DEFT_ACT_RELU6, EPS);
    return deft_tv_conv_bn_act(m, deft_model_name(m, "backbone.extra.%d.2", b), x, out, 1, 1, 1, DEFT_ACT_RELU6, EPS);
}

int deft_tv_build_ssdlite320_mobilenet_v3_large(struct deft_model_ctx *m, int x) {
    struct tv_mbv3_taps t;
    struct tv_mbv3_opts o = {.layout = TV_MBV3_SSDLITE, .reduced_tail = deft_tv_reduced_tail(m), .bn_eps = EPS};
    x = deft_tv_mobilenet_v3_large(m, x, &o, &t);
    heads(m, 0, t.c4_expand, t.c4_expand_ch);
    heads(m, 1, x, t.last_ch);
    static const int out[4] = {512, 256, 256, 128};
    for (int b = 0; b < 4; b++) {
        x = extra_block(m, b, x, out[b]);
        heads(m, b + 2, x, out[b]);
    }
    return x;
}

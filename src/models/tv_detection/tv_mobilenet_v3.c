/* tv_mobilenet_v3.c - torchvision's mobilenet_v3_large features (width 1.0,
 * not dilated) for its detectors: features.0 conv 3x3/2 + BN + hardswish,
 * features.1..15 inverted residuals (expand 1x1, depthwise kxk, squeeze-
 * excitation: avgpool, fc1 + ReLU, fc2 + hardsigmoid, x * scale; project 1x1,
 * residual when stride 1 and in == out), features.16 conv 1x1 + BN +
 * hardswish. reduced_tail halves the channels from C4 (features.13) on.
 *
 * Parameter names are the caller's layout: fasterrcnn's IntermediateLayerGetter
 * ("backbone.body.<i>.block.<j>") or ssdlite's split at C4's expansion
 * ("backbone.features.0.<i>", "backbone.features.0.13" = features.13.block.0,
 * "backbone.features.1.0.<j>" = features.13.block.<j>, "backbone.features.1.<i-13>"). */
#include <stdio.h>
#include "models/tv_detection/tv_det_impl.h"

struct ir_cfg { int in, k, exp, out, se, hs, stride; };
static const struct ir_cfg large[15] = {
    {16, 3, 16, 16, 0, 0, 1},     {16, 3, 64, 24, 0, 0, 2},     {24, 3, 72, 24, 0, 0, 1},
    {24, 5, 72, 40, 1, 0, 2},     {40, 5, 120, 40, 1, 0, 1},    {40, 5, 120, 40, 1, 0, 1},
    {40, 3, 240, 80, 0, 1, 2},    {80, 3, 200, 80, 0, 1, 1},    {80, 3, 184, 80, 0, 1, 1},
    {80, 3, 184, 80, 0, 1, 1},    {80, 3, 480, 112, 1, 1, 1},   {112, 3, 672, 112, 1, 1, 1},
    {112, 5, 672, 160, 1, 1, 2},  {160, 5, 960, 160, 1, 1, 1},  {160, 5, 960, 160, 1, 1, 1},
};

/* torchvision's _make_divisible(v, 8) */
static int make_divisible(int v) {
    int n = (v + 4) / 8 * 8;
    if (n < 8) n = 8;
    return n < 0.9 * v ? n + 8 : n;
}

/* The module prefix of features[i] (block j, or the whole Conv2dNormActivation when j < 0). */
static const char *prefix(struct deft_model_ctx *m, enum tv_mbv3_layout l, int i, int j) {
    if (l == TV_MBV3_BODY)
        return j < 0 ? deft_model_name(m, "backbone.body.%d", i) : deft_model_name(m, "backbone.body.%d.block.%d", i, j);
    if (i < 13)
        return j < 0 ? deft_model_name(m, "backbone.features.0.%d", i)
                     : deft_model_name(m, "backbone.features.0.%d.block.%d", i, j);
    if (i == 13) return j == 0 ? "backbone.features.0.13" : deft_model_name(m, "backbone.features.1.0.%d", j);
    if (i == 16) return "backbone.features.1.3";
    return deft_model_name(m, "backbone.features.1.%d.block.%d", i - 13, j);
}

int deft_tv_conv_bn_act(struct deft_model_ctx *m, const char *p, int x, int out, int k, int stride, int groups,
                       int act, float eps) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s", p); /* p may live in the name ring */
    x = deft_model_conv(m, deft_model_name(m, "%s.0", buf), x, out, k, stride, (k - 1) / 2, groups);
    x = deft_model_bn_eps(m, deft_model_name(m, "%s.1", buf), x, eps);
    return act < 0 ? x : deft_act(m->g, deft_model_name(m, "%s.2", buf), x, (enum deft_act_kind)act, 0);
}

/* SqueezeExcitation with hardsigmoid scale. */
static int squeeze_excite(struct deft_model_ctx *m, const char *p, int x, int ch) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s", p);
    int s = deft_global_avgpool(m->g, deft_model_name(m, "%s.avgpool", buf), x);
    s = deft_tv_conv(m, deft_model_name(m, "%s.fc1", buf), s, make_divisible(ch / 4), 1, 1, 0, 1);
    s = deft_act(m->g, deft_model_name(m, "%s.activation", buf), s, DEFT_ACT_RELU, 0);
    s = deft_tv_conv(m, deft_model_name(m, "%s.fc2", buf), s, ch, 1, 1, 0, 1);
    s = deft_act(m->g, deft_model_name(m, "%s.scale_activation", buf), s, DEFT_ACT_HARDSIGMOID, 0);
    return deft_mul(m->g, deft_model_name(m, "%s.mul", buf), x, s);
}

static int inverted_residual(struct deft_model_ctx *m, const struct tv_mbv3_opts *o, int i, const struct ir_cfg *c,
                             int x, int *expanded) {
    int act = c->hs ? DEFT_ACT_HARDSWISH : DEFT_ACT_RELU, j = 0, y = x;
    if (c->exp != c->in) y = deft_tv_conv_bn_act(m, prefix(m, o->layout, i, j++), y, c->exp, 1, 1, 1, act, o->bn_eps);
    if (expanded) *expanded = y;
    y = deft_tv_conv_bn_act(m, prefix(m, o->layout, i, j++), y, c->exp, c->k, c->stride, c->exp, act, o->bn_eps);
    if (c->se) y = squeeze_excite(m, prefix(m, o->layout, i, j++), y, c->exp);
    y = deft_tv_conv_bn_act(m, prefix(m, o->layout, i, j), y, c->out, 1, 1, 1, -1, o->bn_eps);
    if (c->stride == 1 && c->in == c->out) y = deft_add(m->g, deft_model_name(m, "%s.add", prefix(m, o->layout, i, -1)), y, x);
    return y;
}

int deft_tv_mobilenet_v3_large(struct deft_model_ctx *m, int x, const struct tv_mbv3_opts *o, struct tv_mbv3_taps *t) {
    int div = o->reduced_tail ? 2 : 1;
    x = deft_tv_conv_bn_act(m, prefix(m, o->layout, 0, -1), x, 16, 3, 2, 1, DEFT_ACT_HARDSWISH, o->bn_eps);
    for (int i = 0; i < 15; i++) {
        struct ir_cfg c = large[i];
        if (i >= 12) { /* C4 on: 160 // divider, 960 // divider */
            if (i > 12) c.in /= div, c.exp /= div;
            c.out /= div;
        }
        x = inverted_residual(m, o, i + 1, &c, x, i == 12 ? &t->c4_expand : NULL);
        if (i == 12) t->c4 = x;
    }
    t->last = deft_tv_conv_bn_act(m, prefix(m, o->layout, 16, -1), x, 6 * (160 / div), 1, 1, 1, DEFT_ACT_HARDSWISH,
                          o->bn_eps);
    t->last_ch = 6 * (160 / div), t->c4_ch = 160 / div, t->c4_expand_ch = 672;
    return t->last;
}

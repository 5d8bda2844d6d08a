/* retinanet.c - TAO's RetinaNet: its FPN (P3-P7) on a tapped backbone and the
 * class / box subnets shared by the five levels. The topology is described
 * in include/deft/retinanet_model.h. */
#include <stdio.h>
#include <string.h>
#include "deft/models.h"
#include "deft/retinanet_model.h"
#include "models/models_impl.h"

/* Keras he_normal is N(0, sqrt(2 / fan_in)): the kaiming-normal rule given n = fan_in. */
static int fpn_conv(struct deft_model_ctx *m, const char *name, int x, int ch, int k, int stride) {
    int y = deft_model_conv_bias(m, name, x, ch, k, stride, k / 2);
    struct deft_value *w = y < 0 ? NULL : deft_model_weight_of(m, y);
    if (w) w->fan_out = (int)deft_graph_value(m->g, x)->shape.d[1] * k * k;
    return y;
}

static int relu(struct deft_model_ctx *m, const char *name, int x) {
    return deft_act(m->g, name, x, DEFT_ACT_RELU, 0);
}

static int up2(struct deft_model_ctx *m, const char *name, int x) {
    if (x < 0) return -1;
    const struct deft_shape *s = &deft_graph_value(m->g, x)->shape;
    return deft_upsample(m->g, name, x, s->d[2] * 2, s->d[3] * 2, DEFT_UPSAMPLE_NEAREST, false);
}

/* P3..P7 from C3 (stride 8) and C4 (stride 16), TAO's fpn.py. */
static void fpn(struct deft_model_ctx *m, int c3, int c4, int fs, int p[DEFT_RETINANET_MAPS]) {
    int c5 = relu(m, "expand1_relu", fpn_conv(m, "expand_conv1", c4, fs, 3, 2));
    int p5 = fpn_conv(m, "C5_reduced", c5, fs, 1, 1);
    int p5u = up2(m, "P5_upsampled", p5);
    p[2] = relu(m, "P5_relu", fpn_conv(m, "P5", p5, fs, 3, 1));
    int p4 = deft_add(m->g, "P4_merged", p5u, fpn_conv(m, "C4_reduced", c4, fs, 1, 1));
    int p4u = up2(m, "P4_upsampled", p4);
    p[1] = relu(m, "P4_relu", fpn_conv(m, "P4", p4, fs, 3, 1));
    int p3 = deft_add(m->g, "P3_merged", p4u, fpn_conv(m, "C3_reduced", c3, fs, 1, 1));
    p[0] = relu(m, "P3_relu", fpn_conv(m, "P3", p3, fs, 3, 1));
    int p6 = relu(m, "P6_relu", fpn_conv(m, "P6", c5, fs, 3, 2));
    p[3] = p6;
    p[4] = relu(m, "P7_relu", fpn_conv(m, "P7", p6, fs, 3, 2));
}

/* A 3x3 conv whose weights level 0 creates and the other levels reuse. */
static int shared_conv(struct deft_model_ctx *m, const char *name, int level, int x, int out_ch, enum deft_init bias) {
    if (x < 0) return -1;
    if (level == 0) {
        int y = deft_model_conv_bias(m, name, x, out_ch, 3, 1, 1);
        struct deft_value *w = y < 0 ? NULL : deft_model_weight_of(m, y), *b = y < 0 ? NULL : deft_model_bias_of(m, y);
        if (w) w->init = DEFT_INIT_NORMAL_001;
        if (b) b->init = bias;
        return y;
    }
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int in[3] = {x, deft_graph_find_value(m->g, wn), deft_graph_find_value(m->g, bn)};
    struct deft_attr a = {.conv = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1},
                          .has_bias = true};
    if (in[1] < 0 || in[2] < 0) return -1;
    int n = deft_graph_add_node(m->g, DEFT_OP_CONV2D, deft_model_name(m, "%s.l%d", name, level), in, 3, &a);
    return n < 0 ? -1 : deft_graph_node(m->g, n)->out[0];
}

/* One subnet on one level: n_kernels 3x3 + ReLU, then the regressor (an output). */
static int subnet(struct deft_model_ctx *m, const char *kind, const char *reg, int level, int x, int nk, int fs,
                  int out_ch, enum deft_init bias) {
    for (int k = 0; k < nk; k++) {
        char nm[96];
        snprintf(nm, sizeof nm, "retinanet_%s_subn_%d", kind, k);
        x = shared_conv(m, nm, level, x, fs, DEFT_INIT_ZEROS);
        x = relu(m, level ? deft_model_name(m, "%s_relu.l%d", nm, level) : deft_model_name(m, "%s_relu", nm), x);
    }
    int y = shared_conv(m, reg, level, x, out_ch, bias);
    if (y >= 0) deft_graph_value_mut(m->g, y)->flags |= DEFT_VF_OUTPUT;
    return y;
}

static enum deft_status check_opts(const struct deft_retinanet_model_opts *o, int *c, int *h, int *w, int *n) {
    if (o->num_classes < 2 || o->num_classes > 4096)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "retinanet: num_classes %d (with background: 2..4096)",
                              o->num_classes);
    if (o->boxes_per_cell < 1 || o->boxes_per_cell > 256)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "retinanet: %d boxes per cell (1..256)", o->boxes_per_cell);
    if (o->n_kernels < 0 || o->n_kernels > 16 || o->feature_size < 0 || o->feature_size > 4096)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "retinanet: n_kernels %d (0..16), feature_size %d (1..4096)",
                              o->n_kernels, o->feature_size);
    *c = o->channels ? o->channels : 3;
    *h = o->height ? o->height : 512;
    *w = o->width ? o->width : 512;
    *n = o->batch ? o->batch : 1;
    if (*c < 1 || *c > 64 || *n < 1 || *n > (1 << 16) || *h < 64 || *w < 64 || *h > 8192 || *w > 8192 || *h % 32 ||
        *w % 32)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "retinanet: input [%d, %d, %d, %d] (sides 64..8192, multiples of "
                              "32)", *n, *c, *h, *w);
    return DEFT_OK;
}

static enum deft_status set_meta(struct deft_graph *g, const char *bb, const struct deft_retinanet_model_opts *o,
                                 int c, int h, int w) {
    char buf[128];
    enum deft_status s = deft_graph_set_meta(g, "arch", "\"retinanet\"");
    snprintf(buf, sizeof buf, "\"%s\"", bb);
    if (!s) s = deft_graph_set_meta(g, "backbone", buf);
    snprintf(buf, sizeof buf, "%d", o->num_classes);
    if (!s) s = deft_graph_set_meta(g, "num_classes", buf);
    snprintf(buf, sizeof buf, "[%d,%d,%d]", c, h, w);
    if (!s) s = deft_graph_set_meta(g, "input_shape", buf);
    snprintf(buf, sizeof buf, "%d", o->boxes_per_cell);
    if (!s) s = deft_graph_set_meta(g, "boxes_per_cell", buf);
    return s;
}

static enum deft_status build_into(struct deft_graph *g, struct deft_model_ctx *m, const char *name,
                                   const struct deft_retinanet_model_opts *o, int x) {
    struct deft_backbone_opts bo = {.arch = name, .training = o->training,
                                    .bn_mode = o->freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                    .detection_layout = true};
    struct deft_backbone_taps t;
    enum deft_status s = deft_backbone_build(g, x, &bo, &t);
    if (s) return s;
    if (t.s8 < 0 || t.last < 0 || t.last_stride != 16)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "retinanet: backbone %s has no stride-8 and stride-16 maps for "
                              "TAO's FPN (resnet 10/18/34/50/101, mobilenet_v2)", name);
    int fs = o->feature_size ? o->feature_size : 256, p[DEFT_RETINANET_MAPS];
    fpn(m, t.s8, t.last, fs, p);
    /* conf subnets of every level first, then loc: the outputs' order */
    for (int l = 0; l < DEFT_RETINANET_MAPS; l++)
        subnet(m, "class", "retinanet_conf_regressor", l, p[l], o->n_kernels, fs, o->boxes_per_cell * o->num_classes,
               DEFT_INIT_PRIOR_PROB_001);
    for (int l = 0; l < DEFT_RETINANET_MAPS; l++)
        subnet(m, "loc", "retinanet_loc_regressor", l, p[l], o->n_kernels, fs, o->boxes_per_cell * 4, DEFT_INIT_ZEROS);
    if ((s = deft_graph_status(g))) return s;
    if ((s = deft_graph_set_role(g, DEFT_ROLE_IMAGE, x))) return s;
    if (o->n_freeze_blocks > 0 && deft_model_freeze_blocks(g, name, o->freeze_blocks, o->n_freeze_blocks) < 0)
        return deft_wrap_error(DEFT_ERR_INVALID_ARG, "retinanet freeze_blocks");
    return DEFT_OK;
}

enum deft_status deft_retinanet_model_build(const struct deft_retinanet_model_opts *o, struct deft_graph **out) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_retinanet_model_build: out is NULL");
    *out = NULL;
    if (!o) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_retinanet_model_build: opts is NULL");
    const char *name;
    enum deft_status s = deft_model_resolve_arch(o->arch, o->nlayers, &name);
    if (s) return deft_wrap_error(s, "retinanet arch");
    int c = 0, h = 0, w = 0, n = 0;
    if ((s = check_opts(o, &c, &h, &w, &n))) return s;
    struct deft_model_ctx *m;
    struct deft_graph *g;
    if ((s = deft_model_ctx_new(name, o->training, &m, &g))) return s;
    int x = deft_input(g, "Input", deft_shape4(n, c, h, w));
    s = x < 0 ? deft_graph_status(g) : build_into(g, m, name, o, x);
    if (!s) s = set_meta(g, name, o, c, h, w);
    return deft_model_ctx_finish(m, g, s, "retinanet", n, c, h, w, out);
}

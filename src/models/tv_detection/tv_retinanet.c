/* tv_retinanet.c - torchvision's retinanet_resnet50_fpn as a graph (names of
 * its state_dict):
 *
 *   backbone.body.*                  ResNet-50 (deft_backbone_build, names prefixed;
 *                                    FrozenBatchNorm2d = eval-mode BN)
 *   backbone.fpn.inner_blocks.i.0    1x1 laterals on C3..C5; top-down nearest x2 + add
 *   backbone.fpn.layer_blocks.i.0    3x3 outputs P3..P5
 *   backbone.fpn.extra_blocks.p6/p7  LastLevelP6P7 from P5 (p7 after a ReLU)
 *   head.{classification,regression}_head.conv.k.0   4 x (3x3 conv + ReLU), shared by the levels
 *   head.classification_head.cls_logits, head.regression_head.bbox_reg
 *
 * The head's weights are shared: level 0 creates them, the other levels' nodes
 * ("<name>.l<level>") read the same params. */
#include <stdio.h>
#include <string.h>
#include "models/tv_detection/tv_det_impl.h"

/* Prefix the names of values [v0, end) and nodes [n0, end) with "backbone.body.". */
static void prefix_names(struct deft_graph *g, int v0, int n0) {
    for (int v = v0; v < deft_graph_num_values(g); v++) {
        struct deft_value *val = deft_graph_value_mut(g, v);
        char buf[256];
        snprintf(buf, sizeof buf, "backbone.body.%s", val->name);
        char *nm = deft_strdup(buf);
        if (!nm) continue;
        deft_free(val->name);
        val->name = nm;
    }
    for (int n = n0; n < deft_graph_num_nodes(g); n++) {
        struct deft_node *nd = deft_graph_node_mut(g, n);
        char buf[256];
        snprintf(buf, sizeof buf, "backbone.body.%s", nd->name);
        char *nm = deft_strdup(buf);
        if (!nm) continue;
        deft_free(nd->name);
        nd->name = nm;
    }
}

/* A 3x3 conv (pad 1) of the head: new params at level 0, else level 0's. */
static int shared_conv(struct deft_model_ctx *m, const char *name, int level, int x, int out_ch) {
    if (level == 0) return deft_tv_conv(m, name, x, out_ch, 3, 1, 1, 1);
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int in[3] = {x, deft_graph_find_value(m->g, wn), deft_graph_find_value(m->g, bn)};
    struct deft_attr a = {.conv = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1},
                          .has_bias = true};
    if (x < 0 || in[1] < 0 || in[2] < 0) return -1;
    int n = deft_graph_add_node(m->g, DEFT_OP_CONV2D, deft_model_name(m, "%s.l%d", name, level), in, 3, &a);
    return n < 0 ? -1 : deft_graph_node(m->g, n)->out[0];
}

static int head_branch(struct deft_model_ctx *m, const char *head, const char *last, int level, int x, int out_ch) {
    char nm[128];
    for (int k = 0; k < 4; k++) {
        snprintf(nm, sizeof nm, "head.%s.conv.%d.0", head, k);
        x = shared_conv(m, nm, level, x, 256);
        x = deft_act(m->g, deft_model_name(m, "head.%s.conv.%d.1.l%d", head, k, level), x, DEFT_ACT_RELU, 0);
    }
    snprintf(nm, sizeof nm, "head.%s.%s", head, last);
    return shared_conv(m, nm, level, x, out_ch);
}

int deft_tv_build_retinanet_resnet50_fpn(struct deft_model_ctx *m, int x) {
    struct deft_graph *g = m->g;
    int v0 = deft_graph_num_values(g), n0 = deft_graph_num_nodes(g);
    struct deft_backbone_taps t;
    if (deft_backbone_build(g, x, &(struct deft_backbone_opts){.arch = "resnet50"}, &t)) return -1;
    prefix_names(g, v0, n0);
    int c[3] = {t.s8, t.s16, t.s32}, p[5];
    int inner = deft_tv_conv(m, "backbone.fpn.inner_blocks.2.0", c[2], 256, 1, 1, 0, 1);
    p[2] = deft_tv_conv(m, "backbone.fpn.layer_blocks.2.0", inner, 256, 3, 1, 1, 1);
    for (int i = 1; i >= 0; i--) {
        int lat = deft_tv_conv(m, deft_model_name(m, "backbone.fpn.inner_blocks.%d.0", i), c[i], 256, 1, 1, 0, 1);
        if (lat < 0 || inner < 0) return -1;
        const struct deft_shape *s = &deft_graph_value(g, lat)->shape;
        int up = deft_upsample(g, deft_model_name(m, "backbone.fpn.upsample.%d", i), inner, s->d[2], s->d[3],
                               DEFT_UPSAMPLE_NEAREST, false);
        inner = deft_add(g, deft_model_name(m, "backbone.fpn.add.%d", i), lat, up);
        p[i] = deft_tv_conv(m, deft_model_name(m, "backbone.fpn.layer_blocks.%d.0", i), inner, 256, 3, 1, 1, 1);
    }
    p[3] = deft_tv_conv(m, "backbone.fpn.extra_blocks.p6", p[2], 256, 3, 2, 1, 1);
    int r6 = deft_act(g, "backbone.fpn.extra_blocks.relu", p[3], DEFT_ACT_RELU, 0);
    p[4] = deft_tv_conv(m, "backbone.fpn.extra_blocks.p7", r6, 256, 3, 2, 1, 1);
    int last = -1;
    for (int l = 0; l < 5; l++) {
        int cl = head_branch(m, "classification_head", "cls_logits", l, p[l], 9 * m->num_classes);
        deft_tv_output(m, deft_model_name(m, "tv_cls_%d", l), cl);
        last = head_branch(m, "regression_head", "bbox_reg", l, p[l], 9 * 4);
        deft_tv_output(m, deft_model_name(m, "tv_reg_%d", l), last);
    }
    return last;
}

/* tv_resnet_fpn.c - torchvision's resnet_fpn_backbone (ResNet-50 with
 * FrozenBatchNorm2d = eval-mode BN, FeaturePyramidNetwork) shared by
 * retinanet_resnet50_fpn (C3..C5) and fasterrcnn_resnet50_fpn (C2..C5):
 *
 *   backbone.body.*                  ResNet-50 (deft_backbone_build, names prefixed)
 *   backbone.fpn.inner_blocks.i.0    1x1 laterals; top-down nearest x2 (to the lateral's size) + add
 *   backbone.fpn.layer_blocks.i.0    3x3 outputs
 * The extra blocks (LastLevelP6P7, LastLevelMaxPool) are the callers'. deft_tv_fpn
 * is the FPN alone (fasterrcnn_mobilenet_v3_large_fpn's too). */
#include <stdio.h>
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

int deft_tv_resnet50_fpn(struct deft_model_ctx *m, int x, int first, int p[4]) {
    struct deft_graph *g = m->g;
    int v0 = deft_graph_num_values(g), n0 = deft_graph_num_nodes(g);
    struct deft_backbone_taps t;
    if (first < 1 || first > 2 || deft_backbone_build(g, x, &(struct deft_backbone_opts){.arch = "resnet50"}, &t))
        return -1;
    prefix_names(g, v0, n0);
    const int all[4] = {t.s4, t.s8, t.s16, t.s32};
    return deft_tv_fpn(m, all + (first - 1), 5 - first, p);
}

int deft_tv_fpn(struct deft_model_ctx *m, const int *c, int n, int *p) {
    struct deft_graph *g = m->g;
    int top = n - 1;
    int inner = deft_tv_conv(m, deft_model_name(m, "backbone.fpn.inner_blocks.%d.0", top), c[top], 256, 1, 1, 0, 1);
    p[top] = deft_tv_conv(m, deft_model_name(m, "backbone.fpn.layer_blocks.%d.0", top), inner, 256, 3, 1, 1, 1);
    for (int i = top - 1; i >= 0; i--) {
        int lat = deft_tv_conv(m, deft_model_name(m, "backbone.fpn.inner_blocks.%d.0", i), c[i], 256, 1, 1, 0, 1);
        if (lat < 0 || inner < 0) return -1;
        const struct deft_shape *s = &deft_graph_value(g, lat)->shape;
        int up = deft_upsample(g, deft_model_name(m, "backbone.fpn.upsample.%d", i), inner, s->d[2], s->d[3],
                               DEFT_UPSAMPLE_NEAREST, false);
        inner = deft_add(g, deft_model_name(m, "backbone.fpn.add.%d", i), lat, up);
        p[i] = deft_tv_conv(m, deft_model_name(m, "backbone.fpn.layer_blocks.%d.0", i), inner, 256, 3, 1, 1, 1);
    }
    return n;
}

/* tv_retinanet.c - torchvision's retinanet_resnet50_fpn as a graph (names of
 * its state_dict):
 *
 *   backbone.body.*, backbone.fpn.*  ResNet-50 + FPN on C3..C5 -> P3..P5 (tv_resnet_fpn.c)
 *   backbone.fpn.extra_blocks.p6/p7  LastLevelP6P7 from P5 (p7 after a ReLU)
 *   head.{classification,regression}_head.conv.k.0   4 x (3x3 conv + ReLU), shared by the levels
 *   head.classification_head.cls_logits, head.regression_head.bbox_reg
 *
 * The head's weights are shared: level 0 creates them, the other levels' nodes
 * ("<name>.l<level>") read the same params. */
#include <stdio.h>
#include "models/tv_detection/tv_det_impl.h"

static int head_branch(struct deft_model_ctx *m, const char *head, const char *last, int level, int x, int out_ch) {
    char nm[128];
    for (int k = 0; k < 4; k++) {
        snprintf(nm, sizeof nm, "head.%s.conv.%d.0", head, k);
        x = deft_tv_shared_conv(m, nm, level, x, 256, 3);
        x = deft_act(m->g, deft_model_name(m, "head.%s.conv.%d.1.l%d", head, k, level), x, DEFT_ACT_RELU, 0);
    }
    snprintf(nm, sizeof nm, "head.%s.%s", head, last);
    return deft_tv_shared_conv(m, nm, level, x, out_ch, 3);
}

int deft_tv_build_retinanet_resnet50_fpn(struct deft_model_ctx *m, int x) {
    struct deft_graph *g = m->g;
    int p[5];
    if (deft_tv_resnet50_fpn(m, x, 2, p) != 3) return -1;
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

/* tv_fasterrcnn.c - torchvision's fasterrcnn_resnet50_fpn and
 * fasterrcnn_mobilenet_v3_large_fpn (at the end) as graphs (names of their state_dict):
 *
 *   backbone.body.*, backbone.fpn.*    ResNet-50 + FPN on C2..C5 -> P2..P5 (tv_resnet_fpn.c),
 *                                      LastLevelMaxPool: "pool" = max_pool2d(P5, 1, 2)
 *   rpn.head.conv.0.0                  3x3 conv + ReLU, shared by the five levels
 *   rpn.head.cls_logits, .bbox_pred    1x1 convs: 3 anchors' objectness and deltas
 *   roi_heads.box_roi_pool             MultiScaleRoIAlign: roi_align 7x7, sampling 2,
 *                                      aligned=False on P2..P5 (scales 1/4..1/32)
 *   roi_heads.box_head.fc6, .fc7       TwoMLPHead (flatten, Linear + ReLU twice)
 *   roi_heads.box_predictor.cls_score, .bbox_pred   FastRCNNPredictor
 *
 * The graph runs in three ranges with the host in between (the proposals and
 * the per-box level choice are data dependent): [0, "roi_heads.box_roi_pool.l0")
 * gives the RPN's outputs (roles tv_cls_<l>, tv_reg_<l>); the host writes the
 * proposals into the input "tv_rois" [TV_FRCNN_ROIS, 5]; up to
 * "roi_heads.box_head.flatten" every proposal is pooled on each of P2..P5
 * (roles tv_roi_<l>); the host keeps each one's own level in the input
 * "tv_box_feat" and the rest gives tv_box_cls, tv_box_reg. */
#include "models/tv_detection/tv_det_impl.h"

static int rpn_level(struct deft_model_ctx *m, int level, int x, int anchors) {
    x = deft_tv_shared_conv(m, "rpn.head.conv.0.0", level, x, 256, 3);
    x = deft_act(m->g, deft_model_name(m, "rpn.head.conv.0.1.l%d", level), x, DEFT_ACT_RELU, 0);
    int c = deft_tv_shared_conv(m, "rpn.head.cls_logits", level, x, anchors, 1);
    deft_tv_output(m, deft_model_name(m, "tv_cls_%d", level), c);
    int r = deft_tv_shared_conv(m, "rpn.head.bbox_pred", level, x, 4 * anchors, 1);
    deft_tv_output(m, deft_model_name(m, "tv_reg_%d", level), r);
    return r;
}

static int box_head(struct deft_model_ctx *m) {
    struct deft_graph *g = m->g;
    int x = deft_input(g, "tv_box_feat", deft_shape4(TV_FRCNN_ROIS, 256, 7, 7));
    deft_tv_output(m, "tv_box_feat", x);
    x = deft_flatten(g, "roi_heads.box_head.flatten", x);
    x = deft_linear(g, "roi_heads.box_head.fc6", x, 1024, true);
    x = deft_act(g, "roi_heads.box_head.relu6", x, DEFT_ACT_RELU, 0);
    x = deft_linear(g, "roi_heads.box_head.fc7", x, 1024, true);
    x = deft_act(g, "roi_heads.box_head.relu7", x, DEFT_ACT_RELU, 0);
    deft_tv_output(m, "tv_box_cls", deft_linear(g, "roi_heads.box_predictor.cls_score", x, m->num_classes, true));
    int r = deft_linear(g, "roi_heads.box_predictor.bbox_pred", x, 4 * (int64_t)m->num_classes, true);
    deft_tv_output(m, "tv_box_reg", r);
    return r;
}

/* FPN maps p[0..n_fpn) + LastLevelMaxPool, the RPN on all of them, RoIAlign on the
 * first n_roi (spatial scales 1 / stride0, 1 / (2 stride0), ...), the box head. */
static int rcnn(struct deft_model_ctx *m, int *p, int n_fpn, int anchors, int n_roi, int stride0) {
    struct deft_graph *g = m->g;
    p[n_fpn] = deft_pool(g, "backbone.fpn.extra_blocks.pool", p[n_fpn - 1],
                         &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {1, 1}, .stride = {2, 2}});
    for (int l = 0; l <= n_fpn; l++) rpn_level(m, l, p[l], anchors);
    int rois = deft_input(g, "tv_rois", deft_shape_make(2, (int64_t[]){TV_FRCNN_ROIS, 5}));
    deft_tv_output(m, "tv_rois", rois);
    for (int l = 0; l < n_roi; l++) {
        /* _infer_scale: 2^round(log2(feature / image)) is 1/stride for any image the transform makes */
        struct deft_roi_attr a = {.mode = DEFT_ROI_ALIGN, .out_h = 7, .out_w = 7,
                                  .spatial_scale = 1.0f / (float)(stride0 << l), .sampling_ratio = 2};
        int y = deft_roi_align(g, deft_model_name(m, "roi_heads.box_roi_pool.l%d", l), p[l], rois, &a);
        deft_tv_output(m, deft_model_name(m, "tv_roi_%d", l), y);
    }
    return box_head(m);
}

int deft_tv_build_fasterrcnn_resnet50_fpn(struct deft_model_ctx *m, int x) {
    int p[5];
    if (deft_tv_resnet50_fpn(m, x, 1, p) != 4) return -1;
    return rcnn(m, p, 4, 3, 4, 4);
}

/* mobilenet_v3_large (BatchNorm2d eps 1e-5) with the FPN on features[13] and
 * features[16] (returned_layers [4, 5], both 1/32); 5 sizes x 3 ratios per
 * cell; MultiScaleRoIAlign's LevelMapper(5, 5) only ever picks map "0". */
int deft_tv_build_fasterrcnn_mobilenet_v3_large_fpn(struct deft_model_ctx *m, int x) {
    struct tv_mbv3_taps t;
    struct tv_mbv3_opts o = {.layout = TV_MBV3_BODY, .reduced_tail = deft_tv_reduced_tail(m), .bn_eps = 1e-5f};
    int p[3];
    if (deft_tv_mobilenet_v3_large(m, x, &o, &t) < 0 || deft_tv_fpn(m, (int[]){t.c4, t.last}, 2, p) != 2) return -1;
    return rcnn(m, p, 2, 15, 1, 32);
}

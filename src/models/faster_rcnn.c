/* faster_rcnn.c - TAO's Faster R-CNN graph: backbone to stride 16, the RPN,
 * crop-and-resize of the host's RoIs and the RCNN head (see
 * include/deft/faster_rcnn_model.h). */
#include <stdio.h>
#include <string.h>
#include "deft/faster_rcnn_model.h"
#include "deft/models.h"

/* conv with bias, N(0, 0.01) weight and zero bias (TAO's RPN and head layers) */
static int head_conv(struct deft_graph *g, const char *name, int x, int out_ch, int k) {
    struct deft_conv_attr a = {.stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
    a.pad[0] = a.pad[1] = a.pad[2] = a.pad[3] = k / 2;
    int y = deft_conv2d(g, name, x, out_ch, k, k, &a, true);
    if (y < 0) return -1;
    const struct deft_node *n = deft_graph_node(g, deft_graph_value(g, y)->producer);
    deft_graph_value_mut(g, n->in[1])->init = DEFT_INIT_NORMAL_001;
    deft_graph_value_mut(g, n->in[2])->init = DEFT_INIT_ZEROS;
    return y;
}

static int dense(struct deft_graph *g, const char *name, int x, int m) {
    int y = deft_linear(g, name, x, m, true);
    if (y < 0) return -1;
    const struct deft_node *n = deft_graph_node(g, deft_graph_value(g, y)->producer);
    deft_graph_value_mut(g, n->in[1])->init = DEFT_INIT_NORMAL_001;
    deft_graph_value_mut(g, n->in[2])->init = DEFT_INIT_ZEROS;
    return y;
}

static enum deft_status check(const struct deft_frcnn_model_opts *o) {
    if (o->num_classes < 1 || o->num_classes > 4096)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn: %d classes (want 1..4096)", o->num_classes);
    if (o->n_anchors < 1 || o->n_anchors > 256)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn: %d anchors per cell (want 1..256)", o->n_anchors);
    if (o->height < 32 || o->width < 32 || o->height % 16 || o->width % 16)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn: input %dx%d (width x height) must be multiples of "
                              "16, at least 32", o->width, o->height);
    if (o->batch < 1 || o->rois_per_image < 1 || (long)o->batch * o->rois_per_image > 1 << 20)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn: batch %d x %d RoIs", o->batch, o->rois_per_image);
    if (o->pool_size < 1 || o->pool_size > 64)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn: pool_size %d (want 1..64)", o->pool_size);
    return DEFT_OK;
}

static enum deft_status set_meta(struct deft_graph *g, const struct deft_frcnn_model_opts *o, const char *bb) {
    char buf[128];
    enum deft_status s = deft_graph_set_meta(g, "arch", "\"faster_rcnn\"");
    snprintf(buf, sizeof buf, "\"%s\"", bb);
    if (!s) s = deft_graph_set_meta(g, "backbone", buf);
    snprintf(buf, sizeof buf, "%d", o->num_classes);
    if (!s) s = deft_graph_set_meta(g, "num_classes", buf);
    snprintf(buf, sizeof buf, "[3,%d,%d]", o->height, o->width);
    if (!s) s = deft_graph_set_meta(g, "input_shape", buf);
    return s;
}

static enum deft_status freeze_blocks(struct deft_graph *g, const struct deft_frcnn_model_opts *o, const char *arch) {
    for (int i = 0; i < o->n_freeze_blocks; i++)
        if (deft_model_freeze_blocks(g, arch, &o->freeze_blocks[i], 1) < 0)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn: freeze_blocks %d does not exist in %s",
                                  o->freeze_blocks[i], arch);
    return DEFT_OK;
}

/* The RCNN body on the RoI crops: resnet's layer4, else average pool + fc 1024. */
static int rcnn_body(struct deft_graph *g, const struct deft_backbone_opts *bo, bool resnet, int crops, int stride) {
    if (resnet) {
        int y;
        if (deft_backbone_build_rcnn_head(g, crops, bo, stride, &y)) return -1;
        return deft_flatten(g, "rcnn_flatten", deft_global_avgpool(g, "rcnn_avgpool", y));
    }
    int y = deft_flatten(g, "rcnn_flatten", deft_global_avgpool(g, "rcnn_avgpool", crops));
    y = dense(g, "rcnn_fc", y, 1024);
    return deft_act(g, "rcnn_fc_relu", y, DEFT_ACT_RELU, 0);
}

static enum deft_status build(struct deft_graph *g, const struct deft_frcnn_model_opts *o) {
    int x = deft_input(g, "input_image", deft_shape4(o->batch, 3, o->height, o->width));
    bool resnet = !strncmp(o->arch, "resnet", 6);
    struct deft_backbone_opts bo = {.arch = o->arch, .n_layers = o->n_layers, .training = o->training,
                                    .bn_mode = o->freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                    .detection_layout = !resnet, .rcnn_layout = resnet};
    struct deft_backbone_taps t;
    enum deft_status s = deft_backbone_build(g, x, &bo, &t);
    if (s) return s;
    if (t.last_stride != DEFT_FRCNN_STRIDE)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "faster_rcnn: backbone %s has output stride %d; Faster R-CNN "
                              "needs 16 (resnet, mobilenet_v2)", t.arch, t.last_stride);
    int a = o->n_anchors;
    int r = deft_act(g, "rpn_conv1_relu", head_conv(g, "rpn_conv1", t.last, 512, 3), DEFT_ACT_RELU, 0);
    int rc = head_conv(g, DEFT_FRCNN_ROLE_RPN_CLS, r, a, 1);
    int rr = head_conv(g, DEFT_FRCNN_ROLE_RPN_REGR, r, 4 * a, 1);
    int rois = deft_input(g, "input_rois", (struct deft_shape){.ndim = 2, .d = {(int64_t)o->batch * o->rois_per_image, 5}});
    int crop = o->pool_size_2x ? 2 * o->pool_size : o->pool_size;
    struct deft_roi_attr ra = {.mode = DEFT_ROI_CROP_RESIZE, .out_h = crop, .out_w = crop,
                               .image_h = o->height, .image_w = o->width};
    int crops = deft_roi_align(g, "crop_and_resize", t.last, rois, &ra);
    if ((s = deft_graph_status(g))) return s;
    int body = rcnn_body(g, &bo, resnet, crops, o->pool_size_2x ? 2 : 1);
    if ((s = deft_graph_status(g))) return s;
    int cls = dense(g, DEFT_FRCNN_ROLE_CLS, body, o->num_classes + 1);
    int regr = dense(g, DEFT_FRCNN_ROLE_REGR, body, 4 * o->num_classes);
    if ((s = deft_graph_status(g))) return s;
    const int outs[4] = {rc, rr, cls, regr};
    static const char *const roles[4] = {DEFT_FRCNN_ROLE_RPN_CLS, DEFT_FRCNN_ROLE_RPN_REGR, DEFT_FRCNN_ROLE_CLS,
                                         DEFT_FRCNN_ROLE_REGR};
    if ((s = deft_graph_set_role(g, DEFT_ROLE_IMAGE, x))) return s;
    for (int i = 0; i < 4 && !s; i++) {
        deft_graph_value_mut(g, outs[i])->flags |= DEFT_VF_OUTPUT;
        s = deft_graph_set_role(g, roles[i], outs[i]);
    }
    if (!s) s = deft_graph_set_role(g, DEFT_FRCNN_ROLE_ROIS, rois);
    if (!s) s = freeze_blocks(g, o, t.arch);
    if (!s) s = set_meta(g, o, t.arch);
    return s;
}

enum deft_status deft_frcnn_model_build(const struct deft_frcnn_model_opts *o, struct deft_graph **out) {
    if (!o || !out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_frcnn_model_build: NULL argument");
    *out = NULL;
    enum deft_status s = check(o);
    if (s) return s;
    if (!o->arch || !o->arch[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn: no backbone arch");
    struct deft_graph *g = NULL;
    if ((s = deft_graph_create(&g))) return s;
    if ((s = build(g, o))) {
        deft_graph_free(g);
        return s;
    }
    *out = g;
    return DEFT_OK;
}

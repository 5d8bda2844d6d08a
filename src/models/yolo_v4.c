/* yolo_v4.c - YOLOv4 / YOLOv4-tiny on a tapped backbone: TAO's neck (SPP), PAN and heads.
 * The topology and its sources are described in include/deft/yolo_model.h. */
#include <stdio.h>
#include <string.h>
#include "deft/yolo_model.h"
#include "models/models_impl.h"

/* What differs per backbone (TAO base_model.py: map_size and additional_conv). */
struct yolo_arch {
    const char *name;
    int c0, c1;       /* PAN widths ("map_size") */
    int expand;       /* yolo_expand_conv1 channels after the SPP, 0 = the SPP map is stride 32 */
    bool det_layout;  /* backbone output stride 16 */
    bool tiny;
};

static const struct yolo_arch yolo_archs[] = {
    {"resnet10", 128, 64, 512, true, false},    {"resnet18", 128, 64, 512, true, false},
    {"resnet34", 128, 64, 512, true, false},    {"resnet50", 256, 128, 1024, true, false},
    {"mobilenet_v2", 32, 16, 96, true, false},  {"darknet19", 256, 128, 0, false, false},
    {"darknet53", 256, 128, 0, false, false},   {"cspdarknet53", 256, 128, 0, false, false},
    {"cspdarknet_tiny", 128, 0, 0, false, true},
};

/* conv (no bias) + BN + activation: "<name>.conv", "<name>.bn", "<name>.act". */
static int cba(struct deft_model_ctx *m, const char *name, int x, int out, int k, int stride) {
    int y = deft_model_conv(m, deft_model_name(m, "%s.conv", name), x, out, k, stride, (k - 1) / 2, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn", name), y);
    return deft_act(m->g, deft_model_name(m, "%s.act", name), y, m->act, m->act_alpha);
}

static int cat2(struct deft_model_ctx *m, const char *name, int a, int b) {
    if (a < 0 || b < 0) return -1;
    return deft_concat(m->g, name, (int[]){a, b}, 2, 1);
}

static int up2(struct deft_model_ctx *m, const char *name, int x) {
    if (x < 0) return -1;
    const struct deft_shape *s = &deft_graph_value(m->g, x)->shape;
    return deft_upsample(m->g, name, x, 2 * s->d[2], 2 * s->d[3], DEFT_UPSAMPLE_NEAREST, false);
}

/* yolo_neck_1..3, SPP (max pools 5/9/13 stride 1 'same', concat [p5, p9, p13, x]), spp conv. */
static int spp_neck(struct deft_model_ctx *m, int x) {
    x = cba(m, "yolo_neck_1", x, 512, 1, 1);
    x = cba(m, "yolo_neck_2", x, 1024, 3, 1);
    x = cba(m, "yolo_neck_3", x, 512, 1, 1);
    int parts[4];
    for (int i = 0; i < 3; i++) {
        int k = 5 + 4 * i;
        parts[i] = deft_pool(m->g, deft_model_name(m, "yolo_spp_pool_%d", i + 1), x,
                             &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {k, k},
                                                      .stride = {1, 1},
                                                      .pad = {k / 2, k / 2, k / 2, k / 2}});
        if (parts[i] < 0) return -1;
    }
    parts[3] = x;
    if (x < 0) return -1;
    x = deft_concat(m->g, "yolo_spp_concat", parts, 4, 1);
    return cba(m, "yolo_spp_conv", x, 512, 1, 1);
}

/* TAO's YOLO_FCN: the PAN over (big s32, mid s16, small s8); writes the three maps the
 * heads read into pre[0..2] (s32, s16, s8). */
static void pan(struct deft_model_ctx *m, const struct yolo_arch *a, int big, int mid, int small,
                int pre[3]) {
    const int c0 = a->c0, c1 = a->c1;
    int x = cba(m, "yolo_conv1_2", big, 4 * c0, 3, 1);
    x = cba(m, "yolo_conv1_3", x, 2 * c0, 1, 1);
    x = cba(m, "yolo_conv2", x, c0, 1, 1);
    int branch0 = x;
    x = cat2(m, "yolo_concat0", up2(m, "upsample0", x), cba(m, "yolo_x_branch", mid, c0, 1, 1));
    x = cba(m, "yolo_conv3_1", x, c0, 1, 1);
    x = cba(m, "yolo_conv3_2", x, 2 * c0, 3, 1);
    x = cba(m, "yolo_conv3_3", x, c0, 1, 1);
    x = cba(m, "yolo_conv3_4", x, 2 * c0, 3, 1);
    int next = cba(m, "yolo_conv3_5", x, c0, 1, 1);
    x = cba(m, "yolo_conv4", next, c1, 1, 1);
    x = cat2(m, "yolo_concat1", up2(m, "upsample1", x), cba(m, "yolo_x_branch_2", small, c1, 1, 1));
    x = cba(m, "yolo_conv5_1", x, c1, 1, 1);
    x = cba(m, "yolo_conv5_2", x, 2 * c1, 3, 1);
    x = cba(m, "yolo_conv5_3", x, c1, 1, 1);
    x = cba(m, "yolo_conv5_4", x, 2 * c1, 3, 1);
    int sm_branch = cba(m, "yolo_conv5_5", x, c1, 1, 1);
    pre[2] = cba(m, "yolo_conv5_6", sm_branch, 2 * c1, 3, 1);
    /* bottom-up */
    x = cat2(m, "yolo_concat2", next, cba(m, "yolo_sm_branch_conv", sm_branch, c0, 3, 2));
    x = cba(m, "yolo_conv3_5_1", x, c0, 1, 1);
    x = cba(m, "yolo_conv3_4_2", x, 2 * c0, 3, 1);
    x = cba(m, "yolo_conv3_5_1_1", x, c0, 1, 1);
    x = cba(m, "yolo_conv3_6", x, 2 * c0, 3, 1);
    int md = cba(m, "md_leaky_conv512", x, 256, 1, 1);
    int md_down = cba(m, "md_leaky_conv512_down", md, 512, 3, 2);
    pre[1] = cba(m, "md_leaky_conv1024", md, 512, 3, 1);
    x = cat2(m, "yolo_concat3", branch0, md_down);
    x = cba(m, "yolo_conv1_3_1", x, 2 * c0, 1, 1);
    x = cba(m, "yolo_conv1_4", x, 4 * c0, 3, 1);
    x = cba(m, "yolo_conv1_5", x, 2 * c0, 1, 1);
    x = cba(m, "yolo_conv1_6", x, 4 * c0, 3, 1);
    x = cba(m, "bg_leaky_conv512", x, 512, 1, 1);
    pre[0] = cba(m, "bg_leaky_conv1024", x, 1024, 3, 1);
}

/* TAO's YOLO_FCN_Tiny with two heads. */
static void pan_tiny(struct deft_model_ctx *m, const struct yolo_arch *a, int last, int mid,
                     int pre[3]) {
    const int c0 = a->c0;
    int x = cba(m, "yolo_conv1_1", last, 2 * c0, 1, 1);
    pre[0] = cba(m, "yolo_conv1_6", x, 4 * c0, 3, 1);
    x = cba(m, "yolo_conv2", x, c0, 1, 1);
    x = cat2(m, "yolo_concat0", up2(m, "upsample0", x), mid);
    pre[1] = cba(m, "yolo_conv3_6", x, 2 * c0, 3, 1);
    pre[2] = -1;
}

static const struct yolo_arch *find_yolo_arch(const char *name) {
    for (size_t i = 0; i < sizeof yolo_archs / sizeof yolo_archs[0]; i++)
        if (strcmp(yolo_archs[i].name, name) == 0) return &yolo_archs[i];
    return NULL;
}

static enum deft_status check_opts(const struct deft_yolo_v4_opts *o, const struct yolo_arch *a,
                                   int anchors[3], int *c, int *h, int *w, int *n) {
    if (o->num_classes < 1 || o->num_classes > (1 << 20))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo_v4: num_classes %d must be >= 1",
                              o->num_classes);
    *c = o->channels ? o->channels : 3;
    *h = o->height ? o->height : 416;
    *w = o->width ? o->width : 416;
    *n = o->batch ? o->batch : 1;
    if (*c < 1 || *c > 64 || *n < 1 || *n > (1 << 16))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo_v4: bad channels %d or batch %d", *c, *n);
    if (*h < 32 || *w < 32 || *h % 32 || *w % 32 || *h > 8192 || *w > 8192)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "yolo_v4: input %dx%d must be multiples of 32 (32..8192), as TAO's "
                              "output_height/output_width", *h, *w);
    for (int i = 0; i < 3; i++) {
        anchors[i] = o->anchors[i] ? o->anchors[i] : (a->tiny && i == 2 ? 0 : 3);
        if (anchors[i] < 0 || anchors[i] > 64)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo_v4: %d anchors for head %d", anchors[i], i);
    }
    if (a->tiny && anchors[2])
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "yolo_v4: cspdarknet_tiny has two heads; small anchors must be empty");
    return DEFT_OK;
}

static enum deft_status set_meta(struct deft_graph *g, const struct yolo_arch *a, int classes,
                                 const int anchors[3], int c, int h, int w) {
    char buf[96];
    enum deft_status s = deft_graph_set_meta(g, "arch", a->tiny ? "\"yolo_v4_tiny\"" : "\"yolo_v4\"");
    snprintf(buf, sizeof buf, "\"%s\"", a->name);
    if (!s) s = deft_graph_set_meta(g, "backbone", buf);
    snprintf(buf, sizeof buf, "%d", classes);
    if (!s) s = deft_graph_set_meta(g, "num_classes", buf);
    snprintf(buf, sizeof buf, "[%d,%d,%d]", c, h, w);
    if (!s) s = deft_graph_set_meta(g, "input_shape", buf);
    if (a->tiny)
        snprintf(buf, sizeof buf, "[%d,%d]", anchors[0], anchors[1]);
    else
        snprintf(buf, sizeof buf, "[%d,%d,%d]", anchors[0], anchors[1], anchors[2]);
    if (!s) s = deft_graph_set_meta(g, "anchors_per_head", buf);
    return s;
}

/* Backbone, neck and heads into g (errors sticky in g). */
static enum deft_status build_into(struct deft_graph *g, struct deft_model_ctx *m,
                                   const struct deft_yolo_v4_opts *o, const struct yolo_arch *a,
                                   const int anchors[3], int x) {
    struct deft_backbone_opts bo = {
        .arch = a->name, .training = o->training,
        .bn_mode = o->freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
        .detection_layout = a->det_layout, .activation = o->activation, .force_relu = o->force_relu};
    struct deft_backbone_taps t;
    enum deft_status s = deft_backbone_build(g, x, &bo, &t);
    if (s) return s;
    int pre[3];
    if (a->tiny) {
        pan_tiny(m, a, t.last, t.s16, pre);
    } else {
        int f = spp_neck(m, t.last);
        int big = a->expand ? cba(m, "yolo_expand_conv1", f, a->expand, 3, 2) : f;
        pan(m, a, big, t.s16, t.s8, pre);
    }
    /* heads last and in stride order, so outputs enumerate as s32, s16, s8 */
    static const char *const names[3] = {"head_s32", "head_s16", "head_s8"};
    for (int i = 0; i < (a->tiny ? 2 : 3); i++) {
        int y = deft_model_conv_bias(m, names[i], pre[i], anchors[i] * (5 + o->num_classes), 1, 1, 0);
        if (y >= 0) deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
    }
    if ((s = deft_graph_status(g))) return s;
    if (o->n_freeze_blocks > 0 &&
        deft_model_freeze_blocks(g, a->name, o->freeze_blocks, o->n_freeze_blocks) < 0)
        return deft_wrap_error(DEFT_ERR_INVALID_ARG, "yolo_v4 freeze_blocks");
    return DEFT_OK;
}

enum deft_status deft_yolo_v4_build(const struct deft_yolo_v4_opts *o, struct deft_graph **out) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_yolo_v4_build: out is NULL");
    *out = NULL;
    if (!o) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_yolo_v4_build: opts is NULL");
    const char *name;
    enum deft_status s = deft_model_resolve_arch(o->arch, o->nlayers, &name);
    if (s) return deft_wrap_error(s, "yolo_v4 arch");
    const struct yolo_arch *a = find_yolo_arch(name);
    if (!a)
        return deft_set_error(DEFT_ERR_UNSUPPORTED,
                              "yolo_v4: backbone %s not supported (resnet 10/18/34/50, darknet "
                              "19/53, cspdarknet 53, cspdarknet_tiny, mobilenet_v2)", name);
    int anchors[3], c = 0, h = 0, w = 0, n = 0;
    if ((s = check_opts(o, a, anchors, &c, &h, &w, &n))) return s;

    /* the neck's context: BN always trains with the graph (TAO: freeze_bn is the backbone's) */
    struct deft_model_ctx *m;
    struct deft_graph *g;
    if ((s = deft_model_ctx_new(a->name, o->training, &m, &g))) return s;
    m->act = o->force_relu ? DEFT_ACT_RELU : DEFT_ACT_LEAKY_RELU;
    m->act_alpha = o->force_relu ? 0.0f : 0.1f;
    int x = deft_input(g, "input_1", deft_shape4(n, c, h, w));
    s = x < 0 ? deft_graph_status(g) : build_into(g, m, o, a, anchors, x);
    if (!s) s = set_meta(g, a, o->num_classes, anchors, c, h, w);
    return deft_model_ctx_finish(m, g, s, "yolo_v4", n, c, h, w, out);
}

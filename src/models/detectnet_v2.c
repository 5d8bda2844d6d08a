/* detectnet_v2.c - TAO's GridboxModel on a tapped backbone: output stride 16,
 * a coverage head and a box head. The topology and its sources are described
 * in include/deft/detectnet_v2_model.h. */
#include <stdio.h>
#include <string.h>
#include "deft/detectnet_v2_model.h"
#include "models/models_impl.h"

/* 1x1 conv with bias, glorot-uniform weight and zero bias (TAO's objective heads). */
static int head(struct deft_graph *g, const char *name, int x, int out_ch) {
    struct deft_conv_attr a = {.stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
    int y = deft_conv2d(g, name, x, out_ch, 1, 1, &a, true);
    if (y < 0) return -1;
    const struct deft_node *n = deft_graph_node(g, deft_graph_value(g, y)->producer);
    struct deft_value *w = deft_graph_value_mut(g, n->in[1]), *b = deft_graph_value_mut(g, n->in[2]);
    w->init = DEFT_INIT_XAVIER_UNIFORM;
    w->fan_in = (int)deft_graph_value(g, x)->shape.d[1];
    w->fan_out = out_ch;
    b->init = DEFT_INIT_ZEROS;
    return y;
}

/* Give value v TAO's TensorFlow tensor name (the ONNX output name). */
static enum deft_status rename_value(struct deft_graph *g, int v, const char *name) {
    if (deft_graph_find_value(g, name) >= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2: a value is already named '%s'", name);
    char *d = deft_strdup(name);
    if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    struct deft_value *val = deft_graph_value_mut(g, v);
    deft_free(val->name);
    val->name = d;
    return DEFT_OK;
}

static enum deft_status set_meta(struct deft_graph *g, const char *backbone, int classes, int c, int h, int w) {
    char buf[96];
    enum deft_status s = deft_graph_set_meta(g, "arch", "\"detectnet_v2\"");
    snprintf(buf, sizeof buf, "\"%s\"", backbone);
    if (!s) s = deft_graph_set_meta(g, "backbone", buf);
    snprintf(buf, sizeof buf, "%d", classes);
    if (!s) s = deft_graph_set_meta(g, "num_classes", buf);
    snprintf(buf, sizeof buf, "[%d,%d,%d]", c, h, w);
    if (!s) s = deft_graph_set_meta(g, "input_shape", buf);
    if (!s) s = deft_graph_set_meta(g, "stride", "16");
    return s;
}

static enum deft_status check_opts(const struct deft_dnv2_model_opts *o) {
    if (o->num_classes < 1 || o->num_classes > 4096)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2: num_classes %d (want 1..4096)", o->num_classes);
    if (o->height < 16 || o->width < 16 || o->height % 16 || o->width % 16)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2: input %dx%d (width x height) must be multiples "
                              "of 16, at least 16", o->width, o->height);
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2: %d input channels (1 or 3)", o->channels);
    if (o->batch < 0) return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2: batch %d", o->batch);
    return DEFT_OK;
}

static enum deft_status build_into(struct deft_graph *g, const struct deft_dnv2_model_opts *o, const char *name,
                                   int x) {
    struct deft_backbone_opts bo = {.arch = name, .training = o->training,
                                    .bn_mode = o->freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                    .detection_layout = true};
    struct deft_backbone_taps t;
    enum deft_status s = deft_backbone_build(g, x, &bo, &t);
    if (s) return s;
    if (t.last_stride != DEFT_DNV2_STRIDE)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "detectnet_v2: backbone %s has output stride %d; DetectNet_v2 "
                              "needs 16 (resnet, mobilenet_v2)", name, t.last_stride);
    if (o->freeze_backbone) deft_graph_freeze(g, NULL, true); /* before the heads exist: the backbone only */
    int cov = head(g, "output_cov", t.last, o->num_classes);
    int sig = cov < 0 ? -1 : deft_act(g, "output_cov/Sigmoid", cov, DEFT_ACT_SIGMOID, 0);
    int bbox = head(g, "output_bbox", t.last, 4 * o->num_classes);
    if ((s = deft_graph_status(g))) return s;
    if ((s = rename_value(g, bbox, "output_bbox/BiasAdd"))) return s;
    deft_graph_value_mut(g, sig)->flags |= DEFT_VF_OUTPUT;
    deft_graph_value_mut(g, bbox)->flags |= DEFT_VF_OUTPUT;
    if ((s = deft_graph_set_role(g, DEFT_ROLE_IMAGE, x)) || (s = deft_graph_set_role(g, DEFT_DNV2_ROLE_COV, sig)) ||
        (s = deft_graph_set_role(g, DEFT_DNV2_ROLE_BBOX, bbox)))
        return s;
    if (o->n_freeze_blocks > 0 && deft_model_freeze_blocks(g, name, o->freeze_blocks, o->n_freeze_blocks) < 0)
        return deft_wrap_error(DEFT_ERR_INVALID_ARG, "detectnet_v2 freeze_blocks");
    return DEFT_OK;
}

enum deft_status deft_dnv2_model_build(const struct deft_dnv2_model_opts *o, struct deft_graph **out) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_dnv2_model_build: out is NULL");
    *out = NULL;
    if (!o) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_dnv2_model_build: opts is NULL");
    const char *name;
    enum deft_status s = deft_model_resolve_arch(o->arch, o->num_layers, &name);
    if (s) return deft_wrap_error(s, "detectnet_v2 arch");
    if ((s = check_opts(o))) return s;
    int n = o->batch ? o->batch : 1, c = o->channels ? o->channels : 3;
    struct deft_graph *g = NULL;
    if ((s = deft_graph_create(&g))) return s;
    int x = deft_input(g, "input_1", deft_shape4(n, c, o->height, o->width));
    s = x < 0 ? deft_graph_status(g) : build_into(g, o, name, x);
    if (!s) s = set_meta(g, name, o->num_classes, c, o->height, o->width);
    if (s) {
        deft_wrap_error(s, "building detectnet_v2 (%s) for input [%d, %d, %d, %d]", name, n, c, o->height, o->width);
        deft_graph_free(g);
        return s;
    }
    *out = g;
    return DEFT_OK;
}

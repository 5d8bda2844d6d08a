/* ssd.c - TAO's SSD on a tapped backbone: expansion blocks and 3x3 conf/loc
 * heads on six maps. The topology is described in include/deft/ssd_model.h. */
#include <stdio.h>
#include <string.h>
#include "deft/ssd_model.h"
#include "models/models_impl.h"

/* One expansion block: 1x1 width a (bias, ReLU), 3x3 width b (stride, BN, ReLU). */
struct ssd_block { int a, b; };

struct ssd_arch {
    const char *name;
    int n_taps;                   /* backbone maps predicted from (s8, then s16) */
    bool skip_block0;             /* TAO's sm_net_expansion: block 0 is empty */
    int n_blocks;                 /* expansion blocks used */
    const struct ssd_block *blocks;
};

static const struct ssd_block mid[5] = {{256, 256}, {128, 256}, {64, 128}, {64, 128}, {64, 128}};
static const struct ssd_block large[5] = {{512, 512}, {256, 512}, {128, 256}, {128, 256}, {128, 256}};
static const struct ssd_block small[5] = {{0, 0}, {64, 128}, {64, 128}, {64, 128}, {64, 128}};

static const struct ssd_arch ssd_archs[] = {
    {"resnet10", 1, true, 5, small},  {"resnet18", 1, false, 5, mid},  {"resnet34", 1, false, 5, mid},
    {"resnet50", 1, false, 5, large}, {"resnet101", 1, false, 5, large}, {"mobilenet_v2", 1, true, 5, small},
    {"darknet19", 2, false, 4, mid},  {"darknet53", 2, false, 4, large},
};

static const struct ssd_arch *find_arch(const char *name) {
    for (size_t i = 0; i < sizeof ssd_archs / sizeof ssd_archs[0]; i++)
        if (!strcmp(ssd_archs[i].name, name)) return &ssd_archs[i];
    return NULL;
}

static int expand_block(struct deft_model_ctx *m, int b, const struct ssd_block *k, int stride, int x) {
    int y = deft_model_conv_bias(m, deft_model_name(m, "ssd_expand_block_%d_conv_0", b), x, k->a, 1, 1, 0);
    y = deft_act(m->g, deft_model_name(m, "ssd_expand_block_%d_relu_0", b), y, DEFT_ACT_RELU, 0);
    y = deft_model_conv(m, deft_model_name(m, "ssd_expand_block_%d_conv_1", b), y, k->b, 3, stride, 1, 1);
    y = deft_model_bn(m, deft_model_name(m, "ssd_expand_block_%d_bn_1", b), y);
    return deft_act(m->g, deft_model_name(m, "ssd_expand_block_%d_relu_1", b), y, DEFT_ACT_RELU, 0);
}

/* The six predictor maps into maps[]. */
static enum deft_status feature_maps(struct deft_graph *g, struct deft_model_ctx *m, const struct ssd_arch *a,
                                     const struct deft_ssd_model_opts *o, int x, int maps[DEFT_SSD_MAPS]) {
    struct deft_backbone_opts bo = {.arch = a->name, .training = o->training,
                                    .bn_mode = o->freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                    .detection_layout = true, .force_relu = true};
    struct deft_backbone_taps t;
    enum deft_status s = deft_backbone_build(g, x, &bo, &t);
    if (s) return s;
    int n = 0;
    maps[n++] = t.s8;
    if (a->n_taps == 2) maps[n++] = t.s16;
    int y = t.last;
    if (a->skip_block0) maps[n++] = y;
    for (int b = a->skip_block0 ? 1 : 0; b < a->n_blocks && n < DEFT_SSD_MAPS; b++) {
        y = expand_block(m, b, &a->blocks[b], b == 0 ? 1 : 2, y);
        maps[n++] = y;
    }
    if ((s = deft_graph_status(g))) return s;
    if (n != DEFT_SSD_MAPS || maps[0] < 0)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "ssd: backbone %s gives %d predictor maps, not 6", a->name, n);
    return DEFT_OK;
}

static int head(struct deft_model_ctx *m, const char *name, int x, int out_ch) {
    int y = deft_model_conv_bias(m, name, x, out_ch, 3, 1, 1);
    struct deft_value *w = y < 0 ? NULL : deft_model_weight_of(m, y);
    if (w) { /* Keras he_normal N(0, sqrt(2 / fan_in)): the kaiming-normal rule given n = fan_in */
        w->init = DEFT_INIT_KAIMING_NORMAL_FAN_OUT;
        w->fan_out = (int)deft_graph_value(m->g, x)->shape.d[1] * 9;
    }
    if (y >= 0) deft_graph_value_mut(m->g, y)->flags |= DEFT_VF_OUTPUT;
    return y;
}

static enum deft_status set_meta(struct deft_graph *g, const char *bb, const struct deft_ssd_model_opts *o, int c,
                                 int h, int w) {
    char buf[128];
    enum deft_status s = deft_graph_set_meta(g, "arch", "\"ssd\"");
    snprintf(buf, sizeof buf, "\"%s\"", bb);
    if (!s) s = deft_graph_set_meta(g, "backbone", buf);
    snprintf(buf, sizeof buf, "%d", o->num_classes);
    if (!s) s = deft_graph_set_meta(g, "num_classes", buf);
    snprintf(buf, sizeof buf, "[%d,%d,%d]", c, h, w);
    if (!s) s = deft_graph_set_meta(g, "input_shape", buf);
    const int *k = o->boxes_per_cell;
    snprintf(buf, sizeof buf, "[%d,%d,%d,%d,%d,%d]", k[0], k[1], k[2], k[3], k[4], k[5]);
    if (!s) s = deft_graph_set_meta(g, "boxes_per_cell", buf);
    return s;
}

static enum deft_status check_opts(const struct deft_ssd_model_opts *o, int *c, int *h, int *w, int *n) {
    if (o->num_classes < 2 || o->num_classes > 4096)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ssd: num_classes %d (with background: 2..4096)", o->num_classes);
    for (int l = 0; l < DEFT_SSD_MAPS; l++)
        if (o->boxes_per_cell[l] < 1 || o->boxes_per_cell[l] > 64)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "ssd: %d boxes per cell on map %d", o->boxes_per_cell[l], l);
    *c = o->channels ? o->channels : 3;
    *h = o->height ? o->height : 300;
    *w = o->width ? o->width : 300;
    *n = o->batch ? o->batch : 1;
    if (*c < 1 || *c > 64 || *n < 1 || *n > (1 << 16) || *h < 32 || *w < 32 || *h > 8192 || *w > 8192)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ssd: input [%d, %d, %d, %d] (sizes 32..8192)", *n, *c, *h, *w);
    return DEFT_OK;
}

static enum deft_status build_into(struct deft_graph *g, struct deft_model_ctx *m, const struct ssd_arch *a,
                                   const struct deft_ssd_model_opts *o, int x) {
    int maps[DEFT_SSD_MAPS];
    enum deft_status s = feature_maps(g, m, a, o, x, maps);
    if (s) return s;
    /* conf heads first, then loc: TAO's raw model outputs (conf_list + loc_list) */
    for (int l = 0; l < DEFT_SSD_MAPS; l++)
        head(m, deft_model_name(m, "ssd_conf_%d", l), maps[l], o->boxes_per_cell[l] * o->num_classes);
    for (int l = 0; l < DEFT_SSD_MAPS; l++)
        head(m, deft_model_name(m, "ssd_loc_%d", l), maps[l], o->boxes_per_cell[l] * 4);
    if ((s = deft_graph_status(g))) return s;
    if ((s = deft_graph_set_role(g, DEFT_ROLE_IMAGE, x))) return s;
    if (o->n_freeze_blocks > 0 && deft_model_freeze_blocks(g, a->name, o->freeze_blocks, o->n_freeze_blocks) < 0)
        return deft_wrap_error(DEFT_ERR_INVALID_ARG, "ssd freeze_blocks");
    return DEFT_OK;
}

enum deft_status deft_ssd_model_build(const struct deft_ssd_model_opts *o, struct deft_graph **out) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_ssd_model_build: out is NULL");
    *out = NULL;
    if (!o) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_ssd_model_build: opts is NULL");
    const char *name;
    enum deft_status s = deft_model_resolve_arch(o->arch, o->nlayers, &name);
    if (s) return deft_wrap_error(s, "ssd arch");
    const struct ssd_arch *a = find_arch(name);
    if (!a)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "ssd: backbone %s is not built by deft yet (resnet 10/18/34/50/101, "
                              "mobilenet_v2, darknet 19/53)", name);
    int c = 0, h = 0, w = 0, n = 0;
    if ((s = check_opts(o, &c, &h, &w, &n))) return s;
    struct deft_model_ctx *m;
    struct deft_graph *g;
    if ((s = deft_model_ctx_new(name, o->training, &m, &g))) return s;
    int x = deft_input(g, "Input", deft_shape4(n, c, h, w));
    s = x < 0 ? deft_graph_status(g) : build_into(g, m, a, o, x);
    if (!s) s = set_meta(g, name, o, c, h, w);
    return deft_model_ctx_finish(m, g, s, "ssd", n, c, h, w, out);
}

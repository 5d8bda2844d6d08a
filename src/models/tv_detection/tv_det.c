/* tv_det.c - the registry of torchvision's detectors (tv_detection.h): names,
 * default sizes, the build entry point and what the builders share. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "models/tv_detection/tv_det_impl.h"

struct tv_arch {
    const char *name;
    int (*build)(struct deft_model_ctx *m, int x);
    int fixed_size;  /* SSD's fixed input side, 0: GeneralizedRCNNTransform resizing */
};
static const struct tv_arch archs[] = {
    {"ssd300_vgg16", deft_tv_build_ssd300_vgg16, 300},
    {"retinanet_resnet50_fpn", deft_tv_build_retinanet_resnet50_fpn, 0},
    {"fasterrcnn_resnet50_fpn", deft_tv_build_fasterrcnn_resnet50_fpn, 0},
    {"ssdlite320_mobilenet_v3_large", deft_tv_build_ssdlite320_mobilenet_v3_large, 320},
    {"fasterrcnn_mobilenet_v3_large_fpn", deft_tv_build_fasterrcnn_mobilenet_v3_large_fpn, 0},
};
static const char *const names[] = {"ssd300_vgg16", "retinanet_resnet50_fpn", "fasterrcnn_resnet50_fpn",
                                    "ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_fpn", NULL};

const char *const *deft_tv_det_arch_names(void) { return names; }

static const struct tv_arch *find(const char *arch) {
    for (size_t i = 0; arch && i < sizeof archs / sizeof *archs; i++)
        if (!strcasecmp(archs[i].name, arch)) return &archs[i];
    return NULL;
}

bool deft_tv_det_known(const char *arch) { return find(arch) != NULL; }

int deft_tv_conv(struct deft_model_ctx *m, const char *name, int x, int out_ch, int k, int stride, int pad,
                 int dilation) {
    struct deft_conv_attr a = {.stride = {stride, stride}, .pad = {pad, pad, pad, pad},
                               .dilation = {dilation, dilation}, .groups = 1};
    return deft_conv2d(m->g, name, x, out_ch, k, k, &a, true);
}

int deft_tv_shared_conv(struct deft_model_ctx *m, const char *name, int level, int x, int out_ch, int k) {
    if (level == 0) return deft_tv_conv(m, name, x, out_ch, k, 1, k / 2, 1);
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int in[3] = {x, deft_graph_find_value(m->g, wn), deft_graph_find_value(m->g, bn)};
    int p = k / 2;
    struct deft_attr a = {.conv = {.stride = {1, 1}, .pad = {p, p, p, p}, .dilation = {1, 1}, .groups = 1},
                          .has_bias = true};
    if (x < 0 || in[1] < 0 || in[2] < 0) return -1;
    int n = deft_graph_add_node(m->g, DEFT_OP_CONV2D, deft_model_name(m, "%s.l%d", name, level), in, 3, &a);
    return n < 0 ? -1 : deft_graph_node(m->g, n)->out[0];
}

/* The outputs a builder declares, given their roles once the graph is built. */
#define MAX_OUTPUTS 32
struct tv_ctx {
    struct deft_model_ctx m; /* first: builders see only this */
    char role[MAX_OUTPUTS][16];
    int val[MAX_OUTPUTS], n;
    bool reduced_tail;
};

bool deft_tv_reduced_tail(const struct deft_model_ctx *m) { return ((const struct tv_ctx *)m)->reduced_tail; }

void deft_tv_output(struct deft_model_ctx *m, const char *role, int y) {
    struct tv_ctx *t = (struct tv_ctx *)m;
    if (y < 0 || t->n == MAX_OUTPUTS) return;
    deft_graph_value_mut(m->g, y)->flags |= DEFT_VF_OUTPUT;
    snprintf(t->role[t->n], sizeof t->role[0], "%s", role);
    t->val[t->n++] = y;
}

static enum deft_status set_meta(struct deft_graph *g, const struct tv_arch *a, const struct deft_tv_det_opts *o,
                                 int nc) {
    char buf[256];
    snprintf(buf, sizeof buf, "\"%s\"", a->name);
    enum deft_status s = deft_graph_set_meta(g, "arch", buf);
    snprintf(buf, sizeof buf, "%d", nc);
    if (!s) s = deft_graph_set_meta(g, "num_classes", buf);
    snprintf(buf, sizeof buf, "{\"fixed_size\": %d, \"min_size\": %d, \"max_size\": %d, \"reduced_tail\": %d}",
             a->fixed_size, o->min_size > 0 ? o->min_size : 800, o->max_size > 0 ? o->max_size : 1333,
             o->reduced_tail ? 1 : 0);
    if (!s) s = deft_graph_set_meta(g, "tv_det", buf);
    return s;
}

enum deft_status deft_tv_det_build(const struct deft_tv_det_opts *o, struct deft_graph **out) {
    *out = NULL;
    const struct tv_arch *a = find(o ? o->arch : NULL);
    if (!a) {
        char known[256] = "";
        for (int i = 0; names[i]; i++) snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                                                i ? ", " : "", names[i]);
        return deft_set_error(DEFT_ERR_NOT_FOUND, "unknown torchvision detector '%s' (known: %s)",
                              o && o->arch ? o->arch : "(none)", known);
    }
    int nc = o->num_classes > 0 ? o->num_classes : 91;
    if (nc < 2 || nc > 100000)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: num_classes %d (2..100000, background included)", a->name,
                              nc);
    int h = a->fixed_size ? a->fixed_size : (o->height > 0 ? o->height : 512);
    int w = a->fixed_size ? a->fixed_size : (o->width > 0 ? o->width : 512);
    struct tv_ctx t = {.m = {.arch = a->name, .num_classes = nc, .bn = DEFT_BN_EVAL},
                       .reduced_tail = o->reduced_tail};
    enum deft_status s = deft_graph_create(&t.m.g);
    if (s) return s;
    struct deft_graph *g = t.m.g;
    int x = deft_input(g, "images", deft_shape4(1, 3, h, w));
    a->build(&t.m, x);
    s = deft_graph_status(g);
    if (!s) s = deft_graph_set_role(g, DEFT_ROLE_IMAGE, x);
    for (int i = 0; !s && i < t.n; i++) s = deft_graph_set_role(g, t.role[i], t.val[i]);
    if (!s) s = set_meta(g, a, o, nc);
    if (s) {
        deft_graph_free(g);
        return s;
    }
    *out = g;
    return DEFT_OK;
}

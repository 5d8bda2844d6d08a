/* test_detectnet_v2_model.c - TAO's GridboxModel: resnet18 at 3x384x1248 gives
 * output_cov/Sigmoid [N, K, 24, 78] and output_bbox/BiasAdd [N, 4K, 24, 78]
 * (TAO's tensor names, roles output_cov / output_bbox), a BCCD-sized input
 * (640x480) a 40x30 grid, mobilenet_v2 stride 16 too; the heads are 1x1 convs
 * with glorot-uniform weights and zero bias; every other parameter and BN
 * state has the name and shape of the resnet18 classifier's (so a deft
 * classification model's backbone weights load by name), and those are all
 * of the classifier's but its fc; freeze options; backbones without a
 * stride-16 layout and bad sizes are refused. */
#include <string.h>
#include "deft_test.h"
#include "deft/detectnet_v2_model.h"
#include "deft/models.h"

static void check_outputs(const char *arch, int nl, int k, int h, int w, int batch) {
    struct deft_dnv2_model_opts o = {.arch = arch, .num_layers = nl, .num_classes = k, .height = h, .width = w,
                                     .batch = batch, .training = true};
    struct deft_graph *g = NULL;
    enum deft_status s = deft_dnv2_model_build(&o, &g);
    CHECK(s == DEFT_OK, "%s%d %dx%d builds: %s", arch, nl, w, h, deft_last_error());
    if (s) return;
    int cov = deft_graph_find_role(g, DEFT_DNV2_ROLE_COV), bbox = deft_graph_find_role(g, DEFT_DNV2_ROLE_BBOX);
    CHECK(cov >= 0 && !strcmp(deft_graph_value(g, cov)->name, "output_cov/Sigmoid"), "cov output name");
    CHECK(bbox >= 0 && !strcmp(deft_graph_value(g, bbox)->name, "output_bbox/BiasAdd"), "bbox output name");
    if (cov >= 0 && bbox >= 0) {
        const struct deft_shape *a = &deft_graph_value(g, cov)->shape, *b = &deft_graph_value(g, bbox)->shape;
        CHECK(a->ndim == 4 && a->d[0] == batch && a->d[1] == k && a->d[2] == h / 16 && a->d[3] == w / 16,
              "%s%d: cov [%lld, %lld, %lld, %lld] (want [%d, %d, %d, %d])", arch, nl, (long long)a->d[0],
              (long long)a->d[1], (long long)a->d[2], (long long)a->d[3], batch, k, h / 16, w / 16);
        CHECK(b->ndim == 4 && b->d[0] == batch && b->d[1] == 4 * k && b->d[2] == h / 16 && b->d[3] == w / 16,
              "%s%d: bbox [%lld, %lld, %lld, %lld]", arch, nl, (long long)b->d[0], (long long)b->d[1],
              (long long)b->d[2], (long long)b->d[3]);
        CHECK(deft_graph_value(g, cov)->flags & DEFT_VF_OUTPUT && deft_graph_value(g, bbox)->flags & DEFT_VF_OUTPUT,
              "both are graph outputs");
        int outs[4], n = deft_graph_outputs(g, outs, 4);
        CHECK(n == 2 && outs[0] == cov && outs[1] == bbox, "outputs in role order: cov, bbox (%d)", n);
    }
    CHECK(!strcmp(deft_graph_get_meta(g, "arch"), "\"detectnet_v2\"") && !strcmp(deft_graph_get_meta(g, "stride"), "16"),
          "metadata");
    deft_graph_free(g);
}

static void check_names_and_init(void) {
    struct deft_dnv2_model_opts o = {.arch = "resnet", .num_layers = 18, .num_classes = 3, .height = 384,
                                     .width = 1248, .batch = 1, .training = true};
    struct deft_graph *g = NULL, *cls = NULL;
    if (deft_dnv2_model_build(&o, &g) ||
        deft_model_build(&(struct deft_model_opts){.arch = "resnet18", .num_classes = 1000, .training = true}, &cls,
                         NULL, NULL)) {
        CHECK(0, "build: %s", deft_last_error());
        deft_graph_free(g);
        return;
    }
    int matched = 0, heads = 0, bad = 0;
    for (int i = 0; i < deft_graph_num_values(g); i++) {
        const struct deft_value *v = deft_graph_value(g, i);
        if (v->kind != DEFT_VALUE_PARAM && v->kind != DEFT_VALUE_STATE) continue;
        if (!strncmp(v->name, "output_", 7)) {
            heads++;
            bool w = strstr(v->name, ".weight") != NULL;
            CHECK(v->init == (w ? DEFT_INIT_XAVIER_UNIFORM : DEFT_INIT_ZEROS), "%s: init %d", v->name, v->init);
            if (w) CHECK(v->fan_in == 512 && v->fan_out == (int)v->shape.d[0], "%s fans %d/%d", v->name, v->fan_in,
                         v->fan_out);
            continue;
        }
        int c = deft_graph_find_value(cls, v->name);
        const struct deft_value *cv = c >= 0 ? deft_graph_value(cls, c) : NULL;
        bool same = cv && cv->shape.ndim == v->shape.ndim;
        for (int d = 0; same && d < v->shape.ndim; d++) same = cv->shape.d[d] == v->shape.d[d];
        if (same) matched++;
        else if (bad++ < 5) printf("  %s: not in the classifier with this shape\n", v->name);
    }
    int cls_params = 0;
    for (int i = 0; i < deft_graph_num_values(cls); i++) {
        const struct deft_value *v = deft_graph_value(cls, i);
        if ((v->kind == DEFT_VALUE_PARAM || v->kind == DEFT_VALUE_STATE) && strncmp(v->name, "fc.", 3)) cls_params++;
    }
    CHECK(bad == 0 && matched == cls_params && heads == 4,
          "backbone params/states by name: %d matched of the classifier's %d (fc excluded), %d missing, %d head params",
          matched, cls_params, bad, heads);
    printf("resnet18 backbone: %d named tensors shared with the classifier, 4 head tensors\n", matched);
    deft_graph_free(g);
    deft_graph_free(cls);
    /* freeze_backbone: everything but the heads */
    o.freeze_backbone = true;
    if (deft_dnv2_model_build(&o, &g) == DEFT_OK) {
        int frozen = 0, free_heads = 0, other = 0;
        for (int i = 0; i < deft_graph_num_values(g); i++) {
            const struct deft_value *v = deft_graph_value(g, i);
            if (v->kind != DEFT_VALUE_PARAM) continue;
            bool h = !strncmp(v->name, "output_", 7), f = v->flags & DEFT_VF_FROZEN;
            if (h && !f) free_heads++;
            else if (!h && f) frozen++;
            else other++;
        }
        CHECK(free_heads == 4 && frozen > 0 && other == 0, "freeze_backbone: %d frozen, heads free %d, other %d",
              frozen, free_heads, other);
        deft_graph_free(g);
    }
}

static void check_refusals(void) {
    struct deft_graph *g = NULL;
    struct { const char *arch; int nl, w, h, k; enum deft_status want; } cases[] = {
        {"vgg16", 0, 1248, 384, 3, DEFT_ERR_UNSUPPORTED},
        {"darknet", 53, 1248, 384, 3, DEFT_ERR_UNSUPPORTED},
        {"resnet", 18, 1250, 384, 3, DEFT_ERR_INVALID_ARG},
        {"resnet", 18, 1248, 384, 0, DEFT_ERR_INVALID_ARG},
        {"resnt", 18, 1248, 384, 3, DEFT_ERR_NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct deft_dnv2_model_opts o = {.arch = cases[i].arch, .num_layers = cases[i].nl,
                                         .num_classes = cases[i].k, .height = cases[i].h, .width = cases[i].w};
        enum deft_status s = deft_dnv2_model_build(&o, &g);
        CHECK(s == cases[i].want && g == NULL, "%s%d %dx%d k=%d: %s (%s)", cases[i].arch, cases[i].nl, cases[i].w,
              cases[i].h, cases[i].k, deft_status_str(s), deft_last_error());
        deft_graph_free(g);
        g = NULL;
    }
    int blocks[] = {0, 1};
    struct deft_dnv2_model_opts o = {.arch = "resnet18", .num_classes = 2, .height = 480, .width = 640,
                                     .freeze_blocks = blocks, .n_freeze_blocks = 2, .training = true};
    CHECK(deft_dnv2_model_build(&o, &g) == DEFT_OK, "freeze_blocks 0,1: %s", deft_last_error());
    if (g) {
        int c1 = deft_graph_find_value(g, "conv1.weight"), l4 = deft_graph_find_value(g, "layer4.0.conv1.weight");
        CHECK(c1 >= 0 && (deft_graph_value(g, c1)->flags & DEFT_VF_FROZEN) && l4 >= 0 &&
              !(deft_graph_value(g, l4)->flags & DEFT_VF_FROZEN), "block 0 frozen, layer4 not");
    }
    deft_graph_free(g);
}

int main(void) {
    check_outputs("resnet", 18, 3, 384, 1248, 2); /* TAO's KITTI spec: 78 x 24 grid */
    check_outputs("resnet", 18, 3, 480, 640, 1);  /* BCCD's 640x480 images: 40 x 30 */
    check_outputs("resnet", 10, 1, 256, 256, 1);
    check_outputs("resnet", 50, 2, 384, 1248, 1);
    check_outputs("mobilenet_v2", 0, 3, 384, 1248, 1);
    check_names_and_init();
    check_refusals();
    return test_summary();
}

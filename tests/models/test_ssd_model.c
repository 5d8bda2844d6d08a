/* test_ssd_model.c - TAO's SSD network: resnet18 at 3x300x300 gives the six
 * maps of TAO's sample spec (38, 19, 10, 5, 3, 2, i.e. 11658 priors at 6
 * boxes per cell) as ssd_conf_0..5 [N, 6K, h, w] (K with background) then ssd_loc_0..5 [N, 24, h, w];
 * a 416x320 input the maps deft's ssd spec resolves; resnet10 / mobilenet_v2
 * (TAO's small expansion: no block 0) and darknet53 (two backbone maps) give
 * six maps too; the expansion widths of resnet18 are TAO's mid config; the
 * backbone keeps the classifier's parameter names; a backbone without taps
 * and bad options are refused. */
#include <string.h>
#include "deft_test.h"
#include "deft/models.h"
#include "deft/ssd_model.h"

static struct deft_graph *build(const char *arch, int nl, int k, int h, int w, int batch, enum deft_status *st) {
    struct deft_ssd_model_opts o = {.arch = arch, .nlayers = nl, .num_classes = k, .boxes_per_cell = {6, 6, 6, 6, 6, 6},
                                    .height = h, .width = w, .batch = batch, .training = true};
    struct deft_graph *g = NULL;
    *st = deft_ssd_model_build(&o, &g);
    return g;
}

static void check_maps(const char *arch, int nl, int h, int w, const int want[6][2]) {
    enum deft_status s;
    struct deft_graph *g = build(arch, nl, 5, h, w, 2, &s);
    CHECK(s == DEFT_OK, "%s%d %dx%d builds: %s", arch, nl, w, h, deft_last_error());
    if (s) return;
    int outs[16], n = deft_graph_outputs(g, outs, 16);
    CHECK(n == 12, "%s%d: 12 outputs (%d)", arch, nl, n);
    long priors = 0;
    for (int i = 0; i < n && i < 12; i++) {
        const struct deft_value *v = deft_graph_value(g, outs[i]);
        char name[32];
        snprintf(name, sizeof name, "ssd_%s_%d", i < 6 ? "conf" : "loc", i % 6);
        const int64_t *d = v->shape.d;
        CHECK(!strcmp(v->name, name) && v->shape.ndim == 4 && d[0] == 2 && d[1] == (i < 6 ? 30 : 24) &&
                  d[2] == want[i % 6][0] && d[3] == want[i % 6][1],
              "%s%d output %d: %s [%lld, %lld, %lld, %lld], want %s [2, %d, %d, %d]", arch, nl, i, v->name,
              (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3], name, i < 6 ? 30 : 24, want[i % 6][0],
              want[i % 6][1]);
        if (i < 6) priors += d[2] * d[3] * 6;
    }
    if (!strcmp(arch, "resnet") && nl == 18 && h == 300) CHECK(priors == 11658, "TAO's sample: 11658 priors (%ld)", priors);
    CHECK(!strcmp(deft_graph_get_meta(g, "arch"), "\"ssd\"") &&
              !strcmp(deft_graph_get_meta(g, "boxes_per_cell"), "[6,6,6,6,6,6]"), "metadata");
    deft_graph_free(g);
}

int main(void) {
    static const int tao300[6][2] = {{38, 38}, {19, 19}, {10, 10}, {5, 5}, {3, 3}, {2, 2}};
    static const int bccd[6][2] = {{40, 52}, {20, 26}, {10, 13}, {5, 7}, {3, 4}, {2, 2}};
    check_maps("resnet", 18, 300, 300, tao300);
    check_maps("resnet", 18, 320, 416, bccd);
    check_maps("resnet", 10, 300, 300, tao300);
    check_maps("mobilenet_v2", 0, 300, 300, tao300);
    check_maps("darknet", 53, 320, 416, bccd);
    enum deft_status s;
    struct deft_graph *g = build("resnet", 18, 4, 300, 300, 1, &s);
    if (!s) {
        /* TAO's mid expansion for resnet18: 1x1 widths 256/128/64/64/64, 3x3 widths 256/256/128/128/128 */
        static const int a[5] = {256, 128, 64, 64, 64}, b[5] = {256, 256, 128, 128, 128};
        for (int k = 0; k < 5; k++) {
            char n0[64], n1[64];
            snprintf(n0, sizeof n0, "ssd_expand_block_%d_conv_0", k);
            snprintf(n1, sizeof n1, "ssd_expand_block_%d_conv_1", k);
            int v0 = deft_graph_find_value(g, n0), v1 = deft_graph_find_value(g, n1);
            CHECK(v0 >= 0 && v1 >= 0 && deft_graph_value(g, v0)->shape.d[1] == a[k] &&
                      deft_graph_value(g, v1)->shape.d[1] == b[k], "expansion block %d widths %d/%d", k, a[k], b[k]);
        }
        CHECK(deft_graph_find_value(g, "layer2.1.relu2") >= 0 && deft_graph_find_value(g, "layer4.1.relu2") >= 0,
              "the backbone keeps the classifier's names (layer2.1 ... layer4.1)");
        deft_graph_free(g);
    }
    g = build("vgg", 16, 4, 300, 300, 1, &s);
    CHECK(s == DEFT_ERR_UNSUPPORTED && !g && strstr(deft_last_error(), "vgg16"), "vgg16 refused, named: %s",
          deft_last_error());
    g = build("resnet", 18, 1, 300, 300, 1, &s);
    CHECK(s == DEFT_ERR_INVALID_ARG && !g, "one class (no background) refused");
    g = build("resnet", 18, 4, 16, 300, 1, &s);
    CHECK(s == DEFT_ERR_INVALID_ARG && !g, "a 16-pixel input refused");
    return test_summary();
}

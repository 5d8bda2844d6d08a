/* test_retinanet_spec.c - TAO's retinanet spec: the fields of TAO's sample
 * (default_spec.txt's retinanet_config) read as written, TAO's defaults for
 * those left out (pos 0.5 / neg 0.4, n_anchor_levels 3, focal 0.25 / 2,
 * feature_size 256), five layers of sub-octave anchors; a typo, a sixth
 * aspect list, an input not a multiple of 32 and ssd_config each exit 2
 * naming file:line and the field. */
#include <math.h>
#include <string.h>
#include "deft_test.h"
#include "deft/ssd_spec.h"

#define TAIL                                                                                                      \
    "training_config { batch_size_per_gpu: 16 num_epochs: 2 learning_rate { soft_start_annealing_schedule { "     \
    "min_learning_rate: 5e-5 max_learning_rate: 4e-2 soft_start: 0.01 annealing: 0.3 } } }\n"                      \
    "eval_config { average_precision_mode: SAMPLE batch_size: 16 matching_iou_threshold: 0.5 }\n"                 \
    "nms_config { confidence_threshold: 0.01 clustering_iou_threshold: 0.8 top_k: 200 }\n"                          \
    "augmentation_config { output_width: %d output_height: 512 output_channel: 3 }\n"                              \
    "dataset_config { data_sources: { image_directory_path: \"/i\" label_directory_path: \"/l\" }\n"                \
    "  target_class_mapping { key: \"car\" value: \"car\" } target_class_mapping { key: \"person\" value: \"person\" } }\n"

static enum deft_status parse(const char *net, int width, struct deft_ssd_config *c) {
    char text[4096];
    snprintf(text, sizeof text, "random_seed: 42\n%s" TAIL, net, width);
    return deft_retinanet_config_parse(text, strlen(text), "r.txt", DEFT_SPEC_FORMAT_AUTO, NULL, 0, c);
}

static const char *tao_net =
    "retinanet_config {\n"
    "  aspect_ratios_global: \"[1.0, 2.0, 0.5]\"\n"
    "  scales: \"[0.045, 0.09, 0.2, 0.4, 0.55, 0.7]\"\n"
    "  two_boxes_for_ar1: false\n"
    "  clip_boxes: false\n"
    "  loss_loc_weight: 0.8\n"
    "  focal_loss_alpha: 0.3\n"
    "  focal_loss_gamma: 1.5\n"
    "  variances: \"[0.1, 0.1, 0.2, 0.2]\"\n"
    "  arch: \"resnet\"\n"
    "  nlayers: 18\n"
    "  n_kernels: 1\n"
    "  feature_size: 128\n"
    "  freeze_bn: true\n"
    "  freeze_blocks: 0\n"
    "  freeze_blocks: 1\n"
    "  n_anchor_levels: 2\n"
    "}\n";

static void as_written(void) {
    struct deft_ssd_config c;
    if (parse(tao_net, 512, &c)) {
        CHECK(0, "TAO's fields load: %s", deft_last_error());
        return;
    }
    const struct deft_ssd_net_config *n = &c.ssd_config;
    CHECK(c.is_retinanet && c.n_layers == 5 && !strcmp(n->arch, "resnet") && n->nlayers == 18 && n->n_kernels == 1 &&
              n->feature_size == 128 && n->n_anchor_levels == 2 && n->loss_loc_weight == 0.8 &&
              n->focal_loss_alpha == 0.3 && n->focal_loss_gamma == 1.5 && n->freeze_bn && n->n_freeze_blocks == 2,
          "retinanet_config as written");
    CHECK(n->pos_iou_thresh == 0.5 && n->neg_iou_thresh == 0.4, "TAO's IoU defaults 0.5 / 0.4 (%g / %g)",
          n->pos_iou_thresh, n->neg_iou_thresh);
    static const int maps[5] = {64, 32, 16, 8, 4};
    static const double sc[6] = {0.045, 0.09, 0.2, 0.4, 0.55, 0.7};
    long np = 0;
    for (int l = 0; l < 5; l++) {
        CHECK(c.layers[l].fmap_h == maps[l] && c.layers[l].stride == 8 << l && c.layers[l].scale == sc[l] &&
                  c.layers[l].boxes_per_cell == 6, "layer %d: map %d, scale %g, 2 x 3 boxes (%d)", l,
              c.layers[l].fmap_h, c.layers[l].scale, c.layers[l].boxes_per_cell);
        np += (long)maps[l] * maps[l] * 6;
    }
    CHECK(c.n_priors == np, "prior count %ld == %ld", c.n_priors, np);
    deft_ssd_config_free(&c);
    const char *minimal = "retinanet_config { aspect_ratios_global: \"[1.0, 2.0, 0.5]\" min_scale: 0.1 max_scale: 0.9 "
                          "arch: \"resnet\" nlayers: 18 }\n";
    if (parse(minimal, 256, &c)) {
        CHECK(0, "minimal spec: %s", deft_last_error());
        return;
    }
    n = &c.ssd_config;
    CHECK(n->n_anchor_levels == 3 && n->feature_size == 256 && n->n_kernels == 2 && n->focal_loss_alpha == 0.25 &&
              n->focal_loss_gamma == 2.0 && n->loss_loc_weight == 1.0 && c.layers[0].boxes_per_cell == 9 &&
              fabs(c.layers[4].scale - 0.74) < 1e-9,
          "defaults: 3 levels, 256 features, 2 subnet convs, focal 0.25/2, scales from min/max (%g)",
          c.layers[4].scale);
    deft_ssd_config_free(&c);
}

static void refused(const char *name, const char *net, int width, const char *want) {
    struct deft_ssd_config c;
    enum deft_status s = parse(net, width, &c);
    CHECK(s == DEFT_ERR_INVALID_ARG || s == DEFT_ERR_PARSE, "%s: refused (%d)", name, (int)s);
    CHECK(strstr(deft_last_error(), want) != NULL, "%s: '%s' in: %s", name, want, deft_last_error());
    if (!s) deft_ssd_config_free(&c);
}

int main(void) {
    as_written();
    char typo[2048];
    snprintf(typo, sizeof typo, "%s", tao_net);
    char *p = strstr(typo, "n_kernels");
    memcpy(p, "n_kernals", 9);
    refused("typo", typo, 512, "r.txt:13:");
    refused("typo named", typo, 512, "n_kernals");
    refused("width", tao_net, 500, "multiples of 32");
    refused("ssd_config", "ssd_config { aspect_ratios_global: \"[1.0]\" min_scale: 0.1 max_scale: 0.9 arch: \"resnet\" "
            "nlayers: 18 }\n", 512, "ssd_config");
    refused("six aspect lists", "retinanet_config { aspect_ratios: \"[[1],[1],[1],[1],[1],[1]]\" min_scale: 0.1 "
            "max_scale: 0.9 arch: \"resnet\" nlayers: 18 }\n", 512, "five lists");
    refused("seven scales", "retinanet_config { aspect_ratios_global: \"[1.0]\" scales: \"[.1,.2,.3,.4,.5,.6,.7]\" "
            "arch: \"resnet\" nlayers: 18 }\n", 512, "needs six numbers");
    return test_summary();
}

/* test_ssd_spec.c - the SSD spec: TAO's ssd sample spec (../shared/tao_specs,
 * read as it is) gives the values written in it and TAO's six layers; the
 * list evaluator computes arithmetic exactly and refuses anything else; a
 * YAML spec with the same fields gives the same priors; alternatives given
 * together, bad lists and DSSD; every error exits 2 naming the field. */
#include <math.h>
#include <string.h>
#include "deft_test.h"
#include "deft/ssd_spec.h"

static void eval_list(void) {
    struct deft_spec_list_item it[16];
    int n = 0, at = 0;
    CHECK_OK(deft_spec_eval_list("[1.0, 2.0, 0.5, 3.0, 1.0/3.0]", it, 16, &n, &at));
    CHECK(n == 5 && it[4].v[0] == 1.0 / 3.0 && !it[4].is_seq, "1.0/3.0 evaluates to 1/3 exactly (%.17g)", it[4].v[0]);
    CHECK_OK(deft_spec_eval_list("[[1, 2], (8, 16), -(2 - 3) * 4 + 1e-1, ((2))]", it, 16, &n, &at));
    CHECK(n == 4 && it[0].is_seq && it[0].n == 2 && it[1].is_seq && it[1].v[1] == 16 && fabs(it[2].v[0] - 4.1) < 1e-12 &&
              it[3].v[0] == 2, "nested lists, tuples, unary minus, precedence");
    static const char *const badv[] = {"[__import__('os')]", "[1/0]", "[1, 2", "[1 2]", "[]", "[1e999*10]",
                                       "[[1, [2]]]", "[2**3]", "[1] x"};
    for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
        enum deft_status s = deft_spec_eval_list(badv[i], it, 16, &n, &at);
        CHECK(s == DEFT_ERR_INVALID_ARG, "'%s' refused: %s", badv[i], deft_last_error());
    }
}

static void tao_sample(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/tao_specs/ssd_train_resnet18_kitti.txt", test_shared_dir());
    struct deft_ssd_config c;
    if (deft_ssd_config_load(p, NULL, 0, &c)) {
        CHECK(0, "TAO sample loads: %s", deft_last_error());
        return;
    }
    CHECK(!c.is_dssd && !strcmp(c.ssd_config.arch, "resnet") && c.ssd_config.nlayers == 18 &&
              c.ssd_config.two_boxes_for_ar1 && !c.ssd_config.clip_boxes, "ssd_config as written");
    static const int maps[6] = {38, 19, 10, 5, 3, 2};
    static const double sc[7] = {0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85};
    for (int l = 0; l < 6; l++)
        CHECK(c.layers[l].fmap_h == maps[l] && c.layers[l].scale == sc[l] && c.layers[l].next_scale == sc[l + 1] &&
                  c.layers[l].n_ar == 5 && c.layers[l].boxes_per_cell == 6 && c.layers[l].offset_h == 0.5,
              "layer %d: map %d, scale %g, 6 boxes", l, c.layers[l].fmap_h, c.layers[l].scale);
    CHECK(c.n_priors == 11658 && c.variances[2] == 0.2, "11658 priors, variances");
    CHECK(c.training_config.batch_size_per_gpu == 16 && c.training_config.num_epochs == 80 &&
              c.training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate == 2e-2 &&
              c.training_config.regularizer.type == DEFT_YOLO_REG_L1 && c.training_config.optimizer.has_sgd,
          "training_config (shared table) as written, SGD when no optimizer block");
    CHECK(c.eval_config.validation_period_during_training == 10 && c.nms_config.clustering_iou_threshold == 0.6 &&
              c.nms_config.top_k == 200 && c.augmentation_config.output_width == 300, "eval, nms, augmentation");
    CHECK(c.dataset_config.n_classes == 3 && !strcmp(c.dataset_config.class_names[0], "car"), "classes sorted");
    deft_ssd_config_free(&c);
}

static const char *const yaml =
    "ssd_config:\n  arch: resnet\n  nlayers: 10\n  aspect_ratios: \"[[1.0, 2.0], [1.0, 2.0, 0.5], [1.0], [1.0], [1.0], [3.0]]\"\n"
    "  min_scale: 0.1\n  max_scale: 0.7\n  two_boxes_for_ar1: true\n  steps: \"[8, 16, 32, 64, (100, 150), 300]\"\n"
    "  offsets: \"[0.5, 0.5, 0.5, 0.5, 0.5, (0.25, 0.75)]\"\n"
    "training_config:\n  batch_size_per_gpu: 2\n  num_epochs: 1\n"
    "  learning_rate: {soft_start_annealing_schedule: {min_learning_rate: 1e-5, max_learning_rate: 1e-3, soft_start: 0.1, "
    "annealing: 0.5}}\n"
    "augmentation_config: {output_width: 320, output_height: 256}\n"
    "dataset_config:\n  data_sources:\n    - {label_directory_path: l, image_directory_path: i}\n"
    "  target_class_mapping: {car: car}\n";

static void yaml_form(void) {
    struct deft_ssd_config c;
    if (deft_ssd_config_parse(yaml, strlen(yaml), "x.yaml", DEFT_SPEC_FORMAT_AUTO, NULL, 0, &c)) {
        CHECK(0, "yaml: %s", deft_last_error());
        return;
    }
    CHECK(c.layers[0].n_ar == 2 && c.layers[0].boxes_per_cell == 3 && c.layers[5].boxes_per_cell == 1 &&
              fabs(c.layers[1].scale - 0.2) < 1e-12 && fabs(c.layers[5].next_scale - 0.7) < 1e-12,
          "per-layer aspects, min/max scale interpolated");
    CHECK(c.layers[4].step_h == 100 && c.layers[4].step_w == 150 && c.layers[5].offset_w == 0.75 &&
              c.layers[0].fmap_h == 32 && c.layers[0].fmap_w == 40, "steps/offsets pairs, 320x256 maps");
    deft_ssd_config_free(&c);
    static const struct { const char *set, *want; } bad[] = {
        {"ssd_config.aspect_ratios_global=\"[1.0]\"", "ssd_config.aspect_ratios and ssd_config.aspect_ratios_global"},
        {"ssd_config.scales=\"[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]\"", "ssd_config.scales and ssd_config.min_scale"},
        {"ssd_config.steps=\"[8, 16]\"", "ssd_config.steps: needs six items"},
        {"ssd_config.variances=\"[0.1, 0.1, 0.2]\"", "ssd_config.variances: needs four"},
        {"ssd_config.offsets=\"[0.5, 0.5, 0.5, 0.5, 0.5, 1.5]\"", "offsets must be in (0, 1)"},
        {"ssd_config.arch=resnet50", "is not an SSD backbone"},
        {"ssd_config.nlayers=12", "ssd_config.nlayers 12 is not a depth"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *ov[1] = {bad[i].set};
        enum deft_status s = deft_ssd_config_parse(yaml, strlen(yaml), "x.yaml", DEFT_SPEC_FORMAT_AUTO, ov, 1, &c);
        CHECK(deft_status_exit_code(s) == 2 && strstr(deft_last_error(), bad[i].want), "%s -> exit 2, '%s': %s",
              bad[i].set, bad[i].want, deft_last_error());
    }
    char dssd[4096];
    snprintf(dssd, sizeof dssd, "d%s", yaml);
    CHECK(deft_ssd_config_parse(dssd, strlen(dssd), "d.yaml", DEFT_SPEC_FORMAT_AUTO, NULL, 0, &c) == DEFT_OK && c.is_dssd,
          "dssd_config is read into the same fields: %s", deft_last_error());
    deft_ssd_config_free(&c);
}

int main(void) {
    eval_list();
    tao_sample();
    yaml_form();
    return test_summary();
}

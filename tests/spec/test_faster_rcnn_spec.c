/* test_faster_rcnn_spec.c - the Faster R-CNN spec: TAO's faster_rcnn sample
 * (../shared/tao_specs, read as it is) gives the values written in it, the
 * class list with background last, the anchor grid; TAO's checks and the
 * alternatives given together exit 2 naming the fields (size_min with
 * size_height_width in a file: tests/cli/test_frcnn_ssd_spec.sh, as --set switches a oneof); the IoU range
 * gives numpy.arange's list. */
#include <math.h>
#include <string.h>
#include "deft_test.h"
#include "deft/faster_rcnn_spec.h"

static char path[600];

static void sample(void) {
    struct deft_frcnn_config c;
    if (deft_frcnn_config_load(path, NULL, 0, &c)) {
        CHECK(0, "TAO sample loads: %s", deft_last_error());
        return;
    }
    const struct deft_frcnn_model_config *m = &c.model_config;
    CHECK(!strcmp(c.backbone, "resnet") && c.nlayers == 18 && c.input_w == 1248 && c.input_h == 384 &&
              m->anchor_box_config.n_scale == 3 && m->anchor_box_config.ratio[1] == 0.5 && m->rpn_stride == 16 &&
              m->roi_pooling_config.pool_size == 7 && m->n_freeze_blocks == 2 && m->all_projections,
          "model_config as written");
    CHECK(c.fmap_w == 78 && c.fmap_h == 24 && c.n_anchors == 16848, "anchor grid 24x78x9 = %ld", c.n_anchors);
    const struct deft_frcnn_training_config *t = &c.training_config;
    CHECK(t->regr_std[0] == 10 && t->regr_std[3] == 5 && t->rpn_pre_nms_top_N == 12000 && t->rpn_nms_max_boxes == 2000 &&
              t->optimizer.has_sgd && t->optimizer.sgd.momentum == 0.9 && t->learning_rate.has_soft_start &&
              t->learning_rate.soft_start.n_annealing_points == 2 && t->regularizer.type == DEFT_FRCNN_L2 &&
              t->batch_size_per_gpu == 8 && t->num_epochs == 12, "training_config as written");
    CHECK(c.evaluation_config.n_ious == 1 && c.evaluation_config.ious[0] == 0.5 &&
              c.inference_config.classifier_nms_max_boxes == 100, "evaluation / inference");
    CHECK(c.dataset_config.n_classes == 4 && !strcmp(c.dataset_config.class_names[3], "background") &&
              !strcmp(c.dataset_config.class_names[2], "person"), "classes: car, cyclist, person, background");
    deft_frcnn_config_free(&c);
    const char *ov2[4] = {"evaluation_config.gt_matching_iou_threshold=0",
                          "evaluation_config.gt_matching_iou_threshold_range.start=0.5",
                          "evaluation_config.gt_matching_iou_threshold_range.step=0.05",
                          "evaluation_config.gt_matching_iou_threshold_range.end=1.0"};
    if (deft_frcnn_config_load(path, ov2, 4, &c) == DEFT_OK) {
        CHECK(c.evaluation_config.n_ious == 10 && fabs(c.evaluation_config.ious[9] - 0.95) < 1e-9,
              "range 0.5:0.05:1.0 gives 10 IoUs (arange), last %g", c.evaluation_config.ious[9]);
        deft_frcnn_config_free(&c);
    } else {
        CHECK(0, "IoU range: %s", deft_last_error());
    }
}

static void errors(void) {
    static const struct { const char *set, *want; } bad[] = {
        {"model_config.arch=resnet:19", "is not a Faster R-CNN backbone"},
        {"model_config.rpn_stride=8", "rpn_stride"},
        {"training_config.rpn_min_overlap=0.8", "rpn_min_overlap: must be below rpn_max_overlap"},
        {"training_config.rpn_nms_max_boxes=20000", "rpn_nms_max_boxes: must be below rpn_pre_nms_top_N"},
        {"inference_config.rpn_nms_max_boxes=7000", "inference_config.rpn_nms_max_boxes"},
        {"augmentation_config.preprocessing.output_image_width=1240", "differs from model_config's input width"},
        {"model_config.freeze_blocks=[7]", "freeze_blocks: block 7"},
        {"dataset_config.image_extension=bmp", "image_extension: must be jpg, jpeg or png"},
        {"training_config.classifier_regr_std.x=0", "classifier_regr_std"},
        {"evaluation_config.gt_matching_iou_threshold_range.start=0.5", "are alternatives, both are set"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct deft_frcnn_config c;
        const char *ov[1] = {bad[i].set};
        enum deft_status s = deft_frcnn_config_load(path, ov, 1, &c);
        CHECK(deft_status_exit_code(s) == 2 && strstr(deft_last_error(), bad[i].want), "%s -> exit 2, '%s': %s",
              bad[i].set, bad[i].want, deft_last_error());
        if (!s) deft_frcnn_config_free(&c);
    }
}

int main(void) {
    snprintf(path, sizeof path, "%s/tao_specs/faster_rcnn_train_resnet18_kitti.txt", test_shared_dir());
    sample();
    errors();
    return test_summary();
}

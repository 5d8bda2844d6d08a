/* deft/faster_rcnn_spec.h - the Faster R-CNN experiment spec: TAO's
 * faster_rcnn Experiment (protobuf text as TAO writes it, or the same fields
 * as deft YAML) into one typed, validated config, with TAO's checks
 * (spec_wrapper.py) and the RPN anchors resolved.
 *
 *     struct deft_frcnn_config cfg;
 *     if (deft_frcnn_config_load("faster_rcnn_train_resnet18_kitti.txt", NULL, 0, &cfg)) ...
 *     deft_frcnn_config_summary(&cfg, stdout);          // --dry_run: input, anchors, counts
 *     deft_frcnn_config_free(&cfg);
 *
 * dataset_config and augmentation_config are DetectNet_v2's protos, as in
 * TAO (data sources with tfrecords_path; deft adds label_directory_path,
 * KITTI labels read directly). Alternatives given together (size_min and
 * size_height_width; gt_matching_iou_threshold and its _range;
 * validation_fold and validation_data_source) are refused naming both.
 * Errors: exit status 2 with "file:line:col: ..." naming the field.
 */
#ifndef DEFT_FASTER_RCNN_SPEC_H
#define DEFT_FASTER_RCNN_SPEC_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_frcnn_size_min { int min; };
struct deft_frcnn_size_hw { int height, width; };
enum deft_frcnn_image_type { DEFT_FRCNN_RGB = 0, DEFT_FRCNN_GRAY_SCALE };
struct deft_frcnn_input_image {
    enum deft_frcnn_image_type image_type;
    bool has_size_min, has_size_height_width;
    struct deft_frcnn_size_min size_min;
    struct deft_frcnn_size_hw size_height_width;
    char *image_channel_order;
    struct deft_spec_kv *image_channel_mean;
    int n_image_channel_mean;
    double image_scaling_factor;
    int max_objects_num_per_image;
};
struct deft_frcnn_anchor_box { double *scale; int n_scale; double *ratio; int n_ratio; };
struct deft_frcnn_roi_pooling { int pool_size; bool pool_size_2x; };
struct deft_frcnn_activation { char *activation_type; struct deft_spec_kv *activation_parameters; int n_activation_parameters; };
struct deft_frcnn_model_config {
    struct deft_frcnn_input_image input_image_config;
    char *arch;
    struct deft_frcnn_anchor_box anchor_box_config;
    int roi_mini_batch, rpn_stride;
    bool freeze_bn;
    double dropout_rate, drop_connect_rate;
    char *rpn_cls_activation_type;
    double *freeze_blocks;
    int n_freeze_blocks;
    bool use_bias;
    struct deft_frcnn_roi_pooling roi_pooling_config;
    bool rfcn_mode, tf_proposal_layer, all_projections, use_pooling;
    struct deft_frcnn_activation activation;
};

struct deft_frcnn_adam { double lr, beta_1, beta_2, epsilon, decay; bool amsgrad; };
struct deft_frcnn_sgd { double lr, momentum, decay; bool nesterov; };
struct deft_frcnn_rmsprop { double lr; };
struct deft_frcnn_optimizer {
    bool has_adam, has_sgd, has_rmsprop;
    struct deft_frcnn_adam adam;
    struct deft_frcnn_sgd sgd;
    struct deft_frcnn_rmsprop rmsprop;
};
struct deft_frcnn_soft_start { double base_lr, start_lr, soft_start; double *annealing_points; int n_annealing_points;
                               double annealing_divider; };
struct deft_frcnn_step_lr { double base_lr, gamma, step_size; };
struct deft_frcnn_lr { bool has_soft_start, has_step; struct deft_frcnn_soft_start soft_start; struct deft_frcnn_step_lr step; };
enum deft_frcnn_reg_type { DEFT_FRCNN_NO_REG = 0, DEFT_FRCNN_L1, DEFT_FRCNN_L2 };
struct deft_frcnn_regularizer { enum deft_frcnn_reg_type type; double weight; };
struct deft_frcnn_early_stopping { char *monitor; double min_delta; int patience; };
struct deft_frcnn_visualizer { bool enabled; int num_images; };

struct deft_frcnn_training_config {
    bool enable_augmentation;
    char *retrain_pruned_model, *pretrained_weights, *resume_from_model;
    double rpn_min_overlap, rpn_max_overlap, classifier_min_overlap, classifier_max_overlap;
    bool gt_as_roi;
    double std_scaling;
    struct deft_spec_kv *classifier_regr_std;
    int n_classifier_regr_std;
    int batch_size_per_gpu, num_epochs, checkpoint_interval;
    int rpn_pre_nms_top_N, rpn_mini_batch, rpn_nms_max_boxes;
    double rpn_nms_overlap_threshold;
    struct deft_frcnn_regularizer regularizer;
    struct deft_frcnn_optimizer optimizer;
    struct deft_frcnn_lr learning_rate;
    double lambda_rpn_regr, lambda_rpn_class, lambda_cls_regr, lambda_cls_class;
    bool enable_qat;
    double *model_parallelism;
    int n_model_parallelism;
    bool has_early_stopping;
    struct deft_frcnn_early_stopping early_stopping;
    struct deft_frcnn_visualizer visualizer;
    /* resolved: classifier_regr_std x, y, w, h */
    double regr_std[4];
};

struct deft_frcnn_trt { char *trt_engine; };
struct deft_frcnn_inference_config {
    char *images_dir, *model;
    int batch_size, rpn_pre_nms_top_N, rpn_nms_max_boxes;
    double rpn_nms_overlap_threshold, bbox_visualize_threshold, object_confidence_thres;
    int classifier_nms_max_boxes;
    double classifier_nms_overlap_threshold;
    char *detection_image_output_dir;
    bool bbox_caption_on;
    char *labels_dump_dir;
    bool has_trt_inference;
    struct deft_frcnn_trt trt_inference;
    int nms_score_bits;
};
struct deft_frcnn_iou_range { double start, end, step; };
struct deft_frcnn_evaluation_config {
    char *model;
    int rpn_pre_nms_top_N, rpn_nms_max_boxes;
    double rpn_nms_overlap_threshold;
    int classifier_nms_max_boxes;
    double classifier_nms_overlap_threshold, object_confidence_thres;
    bool use_voc07_11point_metric;
    int validation_period_during_training, batch_size;
    bool has_trt_evaluation;
    struct deft_frcnn_trt trt_evaluation;
    bool has_gt_matching_iou_threshold_range;
    struct deft_frcnn_iou_range gt_matching_iou_threshold_range;
    double gt_matching_iou_threshold;
    bool visualize_pr_curve;
    /* resolved: the IoUs evaluation averages over (start, start+step, ... < end) */
    double ious[64];
    int n_ious;
};

/* DetectNet_v2's DataSource and DatasetConfig (TAO's faster_rcnn reads them). */
struct deft_frcnn_data_source { char *tfrecords_path, *image_directory_path; double source_weight;
                                char *label_directory_path; /* deft: KITTI labels instead of TFRecords */
                                char *split_list_path;      /* deft: image stems selecting this split */ };
struct deft_frcnn_dataset_config {
    struct deft_frcnn_data_source *data_sources;
    int n_data_sources;
    char *image_extension;
    struct deft_spec_str_kv *target_class_mapping;
    int n_target_class_mapping;
    int validation_fold;
    bool has_validation_data_source;
    struct deft_frcnn_data_source validation_data_source;
    /* resolved: sorted lower-cased target names, then "background" last (TAO's ids) */
    char **class_names;
    int n_classes;
};
struct deft_frcnn_preprocessing {
    int output_image_width, output_image_height, output_image_min, output_image_max;
    bool enable_auto_resize;
    int output_image_channel, crop_left, crop_top, crop_right, crop_bottom;
    double min_bbox_width, min_bbox_height, scale_width, scale_height;
};
struct deft_frcnn_spatial { double hflip_probability, vflip_probability, zoom_min, zoom_max, translate_max_x,
                            translate_max_y, rotate_rad_max, rotate_probability; };
struct deft_frcnn_color { double color_shift_stddev, hue_rotation_max, saturation_shift_max, contrast_scale_max,
                          contrast_center; };
struct deft_frcnn_augmentation_config {
    struct deft_frcnn_preprocessing preprocessing;
    struct deft_frcnn_spatial spatial_augmentation;
    struct deft_frcnn_color color_augmentation;
};

struct deft_frcnn_config {
    int random_seed;
    bool verbose;
    char *enc_key;
    struct deft_frcnn_dataset_config dataset_config;
    struct deft_frcnn_augmentation_config augmentation_config;
    struct deft_frcnn_model_config model_config;
    struct deft_frcnn_training_config training_config;
    struct deft_frcnn_inference_config inference_config;
    struct deft_frcnn_evaluation_config evaluation_config;
    char *results_dir;
    /* resolved */
    char *backbone;            /* "resnet", "vgg", ... */
    int nlayers;               /* 18 for resnet:18; 0 when none */
    int input_w, input_h;      /* 0 with size_min (the short side is size_min.min) */
    int fmap_w, fmap_h;        /* RPN map: input / rpn_stride, rounded up */
    long n_anchors;
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;
};

DEFT_API DEFT_NODISCARD enum deft_status deft_frcnn_config_load(const char *path, const char *const *overrides,
                                                               int n_overrides, struct deft_frcnn_config *out);
DEFT_API DEFT_NODISCARD enum deft_status deft_frcnn_config_parse(const char *text, size_t n, const char *name,
                                                                enum deft_spec_format fmt,
                                                                const char *const *overrides, int n_overrides,
                                                                struct deft_frcnn_config *out);
DEFT_API void deft_frcnn_config_free(struct deft_frcnn_config *cfg);
DEFT_API void deft_frcnn_config_print(const struct deft_frcnn_config *cfg, FILE *f);
DEFT_API void deft_frcnn_config_help(FILE *f);
DEFT_API void deft_frcnn_config_summary(const struct deft_frcnn_config *cfg, FILE *f);

#ifdef __cplusplus
}
#endif
#endif

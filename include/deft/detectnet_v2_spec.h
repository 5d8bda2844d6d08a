/* deft/detectnet_v2_spec.h - TAO's DetectNet_v2 specs (protobuf text exactly
 * as TAO writes them, or the same fields as deft YAML) into typed, checked
 * configs. Three top-level schemas, as TAO has:
 *
 *   - the experiment (train / evaluate / prune / export): TAO's Experiment
 *     message, every field of detectnet_v2/proto/experiment.proto;
 *   - the inference spec: inferencer_config + bbox_handler_config;
 *   - the dataset_convert spec: kitti_config | coco_config + image_directory_path
 *     (TAO's DatasetExportConfig).
 *
 *     struct deft_dnv2_config cfg;
 *     const char *sets[] = {"training_config.num_epochs=5"};
 *     enum deft_status s = deft_dnv2_config_load("detectnet_v2_train_resnet18_kitti.txt", sets, 1, &cfg);
 *     if (s) { fprintf(stderr, "deft: %s\n", deft_last_error()); return deft_status_exit_code(s); }
 *     deft_dnv2_config_summary(&cfg, stdout);             // --dry_run
 *     ... cfg.class_names[k] (cost_function_config order = the network's channel order) ...
 *     deft_dnv2_config_free(&cfg);
 *
 * TAO's checks (spec_handler/constants.py) are made, plus class consistency:
 * every class of cost_function_config.target_classes needs an entry in
 * bbox_rasterizer_config and postprocessing_config (and no entry there may name
 * another class); objectives are "cov" and "bbox", each once per class.
 *
 * What deft does not do is refused (DEFT_ERR_UNSUPPORTED, exit 2) with
 * "file:line:col: field: why and what to write instead": a backbone deft has no
 * stride-16 feature extractor for, use_batch_norm: false, all_projections:
 * true, loss_mask_label_filter, clustering_algorithm HYBRID, a confidence model
 * file, inference through tensorrt_config, coco_config conversion. Fields that
 * change nothing deft computes (visualizer, cost_scaling and FLOAT16
 * training_precision under fp32 training, dataloader_mode, num_shards,
 * bbox_color ...) are accepted and listed in ignored_fields, logged once.
 *
 * Errors: DEFT_ERR_PARSE (not protobuf text / YAML) and DEFT_ERR_INVALID_ARG
 * (unknown key with "did you mean", wrong type, out of range, missing field,
 * inconsistent classes): exit 2, message "file:line:col: ...". Strings are
 * never NULL ("" when unset); all memory belongs to the struct.
 */
#ifndef DEFT_DETECTNET_V2_SPEC_H
#define DEFT_DETECTNET_V2_SPEC_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dataset_config ---------------------------------------------------------- */

/* TAO: tfrecords_path (a glob of TFRecords) + image_directory_path (the root the
 * TFRecords' frame ids are relative to). deft reads the KITTI images and labels
 * themselves: tfrecords_path is resolved to what `deft detectnet_v2
 * dataset_convert` wrote there (see dnv2_dataset.c), or image_directory_path to
 * an image folder with a sibling labels folder. */
struct deft_dnv2_data_source {
    char *tfrecords_path, *image_directory_path;
    double source_weight;
};

enum deft_dnv2_dataloader_mode { DEFT_DNV2_LOADER_MULTISOURCE = 0, DEFT_DNV2_LOADER_LEGACY, DEFT_DNV2_LOADER_DEFAULT };
enum deft_dnv2_sampling_mode { DEFT_DNV2_SAMPLE_USER_DEFINED = 0, DEFT_DNV2_SAMPLE_PROPORTIONAL,
                               DEFT_DNV2_SAMPLE_UNIFORM };

struct deft_dnv2_dataset_config {
    struct deft_dnv2_data_source *data_sources;
    int n_data_sources;
    char *image_extension;                          /* "png" (TAO writes it without the dot) */
    struct deft_spec_str_kv *target_class_mapping;  /* label name -> class name */
    int n_target_class_mapping;
    /* oneof dataset_split_type */
    bool has_validation_fold, has_validation_data_source;
    int validation_fold;
    struct deft_dnv2_data_source validation_data_source;
    enum deft_dnv2_dataloader_mode dataloader_mode;  /* TAO (ignored) */
    enum deft_dnv2_sampling_mode sampling_mode;
};

/* ---- augmentation_config ------------------------------------------------------ */

struct deft_dnv2_preprocessing {
    int output_image_width, output_image_height;  /* multiples of 16 */
    int output_image_min, output_image_max;
    bool enable_auto_resize;
    int output_image_channel;                     /* 1 or 3 */
    int crop_left, crop_top, crop_right, crop_bottom;
    double min_bbox_width, min_bbox_height;
    double scale_width, scale_height;
};
struct deft_dnv2_spatial_aug {
    double hflip_probability, vflip_probability, zoom_min, zoom_max;
    double translate_max_x, translate_max_y, rotate_rad_max, rotate_probability;
};
struct deft_dnv2_color_aug {
    double color_shift_stddev, hue_rotation_max, saturation_shift_max, contrast_scale_max, contrast_center;
};
struct deft_dnv2_augmentation_config {
    struct deft_dnv2_preprocessing preprocessing;
    struct deft_dnv2_spatial_aug spatial_augmentation;
    struct deft_dnv2_color_aug color_augmentation;
};

/* ---- model_config -------------------------------------------------------------- */

struct deft_dnv2_activation {
    char *activation_type;                        /* "" / relu (TAO's default) */
    struct deft_spec_kv *activation_parameters;
    int n_activation_parameters;
};
struct deft_dnv2_bbox_objective { char *input; double scale, offset; };
struct deft_dnv2_cov_objective { char *input; };
struct deft_dnv2_objective_set {
    bool has_bbox, has_cov;
    struct deft_dnv2_bbox_objective bbox;
    struct deft_dnv2_cov_objective cov;
};
enum deft_dnv2_floatx { DEFT_DNV2_FLOAT32 = 0, DEFT_DNV2_FLOAT16, DEFT_DNV2_FLOATX_INVALID };
struct deft_dnv2_training_precision { enum deft_dnv2_floatx backend_floatx; };

struct deft_dnv2_model_config {
    char *pretrained_model_file;
    bool freeze_pretrained_layers, allow_loaded_model_modification;
    int num_layers;
    bool use_pooling, use_batch_norm;
    double dropout_rate;
    struct deft_dnv2_activation activation;
    struct deft_dnv2_objective_set objective_set;
    struct deft_dnv2_training_precision training_precision;
    bool freeze_bn;
    double *freeze_blocks;                        /* TAO: repeated float; whole numbers checked */
    int n_freeze_blocks;
    char *arch;
    bool load_graph;                              /* pretrained_model_file is a pruned model */
    bool all_projections;
};

/* ---- rasterizer, post-processing, cost function ------------------------------------ */

struct deft_dnv2_raster_class { double cov_center_x, cov_center_y, cov_radius_x, cov_radius_y, bbox_min_radius; };
struct deft_dnv2_raster_entry { char *key; struct deft_dnv2_raster_class value; };
struct deft_dnv2_bbox_rasterizer_config {
    struct deft_dnv2_raster_entry *target_class_config;
    int n_target_class_config;
    double deadzone_radius;
};

enum deft_dnv2_clustering { DEFT_DNV2_DBSCAN = 0, DEFT_DNV2_NMS, DEFT_DNV2_HYBRID };
struct deft_dnv2_clustering_config {
    double coverage_threshold;
    int minimum_bounding_box_height;
    enum deft_dnv2_clustering clustering_algorithm;
    double dbscan_eps;
    int dbscan_min_samples;                       /* TAO uses max(min_samples, 1) */
    int neighborhood_size;
    double dbscan_confidence_threshold;
    double nms_iou_threshold, nms_confidence_threshold;
};
struct deft_dnv2_confidence_config {
    double confidence_threshold;
    char *confidence_model_filename, *normalization_mode;
};
struct deft_dnv2_postproc_class {
    struct deft_dnv2_clustering_config clustering_config;
    struct deft_dnv2_confidence_config confidence_config;
};
struct deft_dnv2_postproc_entry { char *key; struct deft_dnv2_postproc_class value; };
struct deft_dnv2_postprocessing_config {
    struct deft_dnv2_postproc_entry *target_class_config;
    int n_target_class_config;
};

struct deft_dnv2_objective { char *name; double initial_weight, weight_target; };
struct deft_dnv2_target_class {
    char *name;
    double class_weight, coverage_foreground_weight;
    struct deft_dnv2_objective *objectives;
    int n_objectives;
};
struct deft_dnv2_cost_function_config {
    struct deft_dnv2_target_class *target_classes; /* order = output channel order */
    int n_target_classes;
    bool enable_autoweighting;
    double max_objective_weight, min_objective_weight;
};

/* ---- training_config ------------------------------------------------------------------ */

/* Soft-start annealing (TAO): over progress p in [0, 1], exponential ramp
 * min -> max until soft_start, hold, exponential decay to min from annealing. */
struct deft_dnv2_lr_anneal { double min_learning_rate, max_learning_rate, soft_start, annealing; };
struct deft_dnv2_lr_early_stop {
    double min_learning_rate, max_learning_rate;
    int soft_start_epochs, annealing_epochs, patience_steps;
};
enum deft_dnv2_lr_kind { DEFT_DNV2_LR_SOFT_START_ANNEALING = 0, DEFT_DNV2_LR_EARLY_STOPPING };
struct deft_dnv2_lr_config {
    enum deft_dnv2_lr_kind kind;                  /* resolved */
    bool has_soft_start_annealing_schedule, has_early_stopping_annealing_schedule;
    struct deft_dnv2_lr_anneal soft_start_annealing_schedule;
    struct deft_dnv2_lr_early_stop early_stopping_annealing_schedule;
};
enum deft_dnv2_reg_type { DEFT_DNV2_REG_NONE = 0, DEFT_DNV2_REG_L1, DEFT_DNV2_REG_L2 };
struct deft_dnv2_regularizer { enum deft_dnv2_reg_type type; double weight; };
struct deft_dnv2_adam { double epsilon, beta1, beta2; };
struct deft_dnv2_optimizer_config { bool has_adam; struct deft_dnv2_adam adam; };
struct deft_dnv2_cost_scaling { bool enabled; double initial_exponent, increment, decrement; };
struct deft_dnv2_vis_class { double coverage_threshold; };
struct deft_dnv2_vis_entry { char *key; struct deft_dnv2_vis_class value; };
struct deft_dnv2_visualizer {
    bool enabled;
    int num_images, scalar_logging_frequency, infrequent_logging_frequency;
    struct deft_dnv2_vis_entry *target_class_config;
    int n_target_class_config;
};

struct deft_dnv2_training_config {
    int batch_size_per_gpu, num_epochs;
    struct deft_dnv2_lr_config learning_rate;
    struct deft_dnv2_regularizer regularizer;
    struct deft_dnv2_optimizer_config optimizer;
    struct deft_dnv2_cost_scaling cost_scaling;   /* TAO mixed precision (ignored: deft trains fp32) */
    int checkpoint_interval;
    bool enable_qat;
    struct deft_dnv2_visualizer visualizer;       /* TAO (ignored) */
};

/* ---- evaluation_config ------------------------------------------------------------------ */

struct deft_dnv2_eval_box { int minimum_height, maximum_height, minimum_width, maximum_width; };
struct deft_dnv2_eval_box_entry { char *key; struct deft_dnv2_eval_box value; };
enum deft_dnv2_ap_mode { DEFT_DNV2_AP_SAMPLE = 0, DEFT_DNV2_AP_INTEGRATE };
struct deft_dnv2_evaluation_config {
    int validation_period_during_training, first_validation_epoch, early_stopping_patience_steps;
    struct deft_spec_kv *minimum_detection_ground_truth_overlap; /* class -> IoU */
    int n_minimum_detection_ground_truth_overlap;
    struct deft_dnv2_eval_box_entry *evaluation_box_config;
    int n_evaluation_box_config;
    enum deft_dnv2_ap_mode average_precision_mode; /* SAMPLE = 11 recall points, INTEGRATE = area */
};

/* ---- dataset_convert spec (also the experiment's dataset_export_config) -------------------- */

struct deft_dnv2_kitti_config {
    char *root_directory_path, *image_dir_name, *label_dir_name;
    char *point_clouds_dir, *calibrations_dir;    /* TAO 3-D extras (ignored) */
    char *kitti_sequence_to_frames_file;          /* partition_mode sequence: JSON {sequence: [frame ids]} */
    char *image_extension;                        /* ".png" (TAO writes the dot here) */
    int num_partitions, num_shards;               /* shards: TFRecords files per fold (ignored) */
    char *partition_mode;                         /* "random" or "sequence" */
    double val_split;                             /* percent of the images in fold 0 (random mode) */
};
struct deft_dnv2_coco_config {
    char *root_directory_path;
    char **img_dir_names, **annotation_files;
    int n_img_dir_names, n_annotation_files;
    int num_partitions;
    int *num_shards;
    int n_num_shards;
};
struct deft_dnv2_sample_modifier {
    char **filter_samples_containing_only, **dominant_target_classes;
    int n_filter_samples_containing_only, n_dominant_target_classes;
    struct deft_spec_kv *minimum_target_class_imbalance;
    int n_minimum_target_class_imbalance;
    int num_duplicates, max_training_samples;
    struct deft_spec_str_kv *source_to_target_class_mapping;
    int n_source_to_target_class_mapping;
};
struct deft_dnv2_convert_config {
    bool has_kitti_config, has_coco_config;
    struct deft_dnv2_kitti_config kitti_config;
    struct deft_dnv2_coco_config coco_config;
    struct deft_dnv2_sample_modifier sample_modifier_config;
    char *image_directory_path;
    struct deft_spec_str_kv *target_class_mapping;
    int n_target_class_mapping;
    /* where it came from (not part of the spec) */
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;
};

/* ---- the experiment --------------------------------------------------------------------------- */

struct deft_dnv2_config {
    int random_seed;
    struct deft_dnv2_dataset_config dataset_config;
    struct deft_dnv2_augmentation_config augmentation_config;
    struct deft_dnv2_postprocessing_config postprocessing_config;
    struct deft_dnv2_model_config model_config;
    struct deft_dnv2_evaluation_config evaluation_config;
    struct deft_dnv2_cost_function_config cost_function_config;
    struct deft_dnv2_training_config training_config;
    struct deft_dnv2_bbox_rasterizer_config bbox_rasterizer_config;
    bool has_loss_mask_label_filter;              /* refused when given */
    struct deft_dnv2_convert_config *dataset_export_config; /* TAO (ignored by train) */
    int n_dataset_export_config;
    char *results_dir;                            /* deft: default results directory (-r wins) */
    /* resolved: the classes in cost_function_config order (output channel k) */
    char **class_names;
    int n_classes;
    /* per class k, the entry of each map (index into its array) */
    int *raster_of, *postproc_of;
    /* where it came from (not part of the spec) */
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;                         /* TAO fields met that deft does not act on ("" none) */
};

DEFT_API DEFT_NODISCARD enum deft_status deft_dnv2_config_load(const char *path, const char *const *overrides,
                                                              int n_overrides, struct deft_dnv2_config *out);
DEFT_API DEFT_NODISCARD enum deft_status deft_dnv2_config_parse(const char *text, size_t n, const char *name,
                                                               enum deft_spec_format fmt,
                                                               const char *const *overrides, int n_overrides,
                                                               struct deft_dnv2_config *out);
DEFT_API void deft_dnv2_config_free(struct deft_dnv2_config *cfg);
/* The resolved config as deft YAML. */
DEFT_API void deft_dnv2_config_print(const struct deft_dnv2_config *cfg, FILE *f);
/* `--help-spec`: the three schemas, every field with type, default, range and meaning. */
DEFT_API void deft_dnv2_config_help(FILE *f);
/* `--dry_run`: network, input and grid, classes with their rasterizer, clustering and
 * cost settings, training, evaluation, data sources. */
DEFT_API void deft_dnv2_config_summary(const struct deft_dnv2_config *cfg, FILE *f);

/* ---- the inference spec ------------------------------------------------------------------------ */

struct deft_dnv2_tlt_config { char *model; };
struct deft_dnv2_calibrator_config { char *calibration_cache, *calibration_tensorfile; int n_batches; };
enum deft_dnv2_trt_parser { DEFT_DNV2_PARSER_ETLT = 0, DEFT_DNV2_PARSER_UFF, DEFT_DNV2_PARSER_CAFFE };
enum deft_dnv2_trt_dtype { DEFT_DNV2_TRT_FP32 = 0, DEFT_DNV2_TRT_FP16, DEFT_DNV2_TRT_INT8 };
struct deft_dnv2_tensorrt_config {
    enum deft_dnv2_trt_parser parser;
    char *caffemodel, *prototxt, *uff_model, *etlt_model;
    enum deft_dnv2_trt_dtype backend_data_type;
    bool save_engine;
    char *trt_engine;
    struct deft_dnv2_calibrator_config calibrator_config;
};
struct deft_dnv2_inferencer_config {
    bool has_tlt_config, has_tensorrt_config;
    struct deft_dnv2_tlt_config tlt_config;
    struct deft_dnv2_tensorrt_config tensorrt_config;
    char **input_nodes, **output_nodes;
    int n_input_nodes, n_output_nodes;
    int batch_size, image_height, image_width, image_channels, gpu_index;
    char **target_classes;                        /* the network's class order */
    int n_target_classes;
    int stride;                                   /* 0 = 16 */
};
struct deft_dnv2_bbox_color { int R, G, B; };
struct deft_dnv2_classwise_bbox {
    struct deft_dnv2_clustering_config clustering_config;
    char *confidence_model;                       /* "aggregate_cov" (sum of the cluster's coverage) or "mean_cov" */
    char *output_map;                             /* label written for this class ("" = the class name) */
    struct deft_dnv2_bbox_color bbox_color;
};
struct deft_dnv2_classwise_entry { char *key; struct deft_dnv2_classwise_bbox value; };
struct deft_dnv2_bbox_handler_config {
    bool kitti_dump, disable_overlay;
    int overlay_linewidth;
    struct deft_dnv2_classwise_entry *classwise_bbox_handler_config; /* "default" applies to unlisted classes */
    int n_classwise_bbox_handler_config;
    char **postproc_classes;
    int n_postproc_classes;
};
struct deft_dnv2_infer_config {
    struct deft_dnv2_inferencer_config inferencer_config;
    struct deft_dnv2_bbox_handler_config bbox_handler_config;
    /* resolved: per target class k, its classwise entry ("default" when not listed) */
    int *handler_of;
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;
};

DEFT_API DEFT_NODISCARD enum deft_status deft_dnv2_infer_config_load(const char *path,
                                                                    const char *const *overrides, int n_overrides,
                                                                    struct deft_dnv2_infer_config *out);
DEFT_API DEFT_NODISCARD enum deft_status deft_dnv2_infer_config_parse(const char *text, size_t n, const char *name,
                                                                     enum deft_spec_format fmt,
                                                                     const char *const *overrides, int n_overrides,
                                                                     struct deft_dnv2_infer_config *out);
DEFT_API void deft_dnv2_infer_config_free(struct deft_dnv2_infer_config *cfg);
DEFT_API void deft_dnv2_infer_config_summary(const struct deft_dnv2_infer_config *cfg, FILE *f);

/* ---- the dataset_convert spec ------------------------------------------------------------------ */

DEFT_API DEFT_NODISCARD enum deft_status deft_dnv2_convert_config_load(const char *path,
                                                                      const char *const *overrides, int n_overrides,
                                                                      struct deft_dnv2_convert_config *out);
DEFT_API DEFT_NODISCARD enum deft_status deft_dnv2_convert_config_parse(const char *text, size_t n,
                                                                       const char *name, enum deft_spec_format fmt,
                                                                       const char *const *overrides,
                                                                       int n_overrides,
                                                                       struct deft_dnv2_convert_config *out);
DEFT_API void deft_dnv2_convert_config_free(struct deft_dnv2_convert_config *cfg);

/* Which of the three a file holds, from its first top-level key (inferencer_config /
 * bbox_handler_config: inference; kitti_config / coco_config: convert; else experiment). */
enum deft_dnv2_spec_kind { DEFT_DNV2_SPEC_EXPERIMENT = 0, DEFT_DNV2_SPEC_INFERENCE, DEFT_DNV2_SPEC_CONVERT };
DEFT_API enum deft_dnv2_spec_kind deft_dnv2_spec_kind_of(const char *text, size_t n);

#ifdef __cplusplus
}
#endif
#endif

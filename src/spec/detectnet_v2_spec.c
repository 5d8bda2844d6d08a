/* detectnet_v2_spec.c - TAO's DetectNet_v2 specs (spec module): schema
 * tables for the experiment, the inference spec and the dataset_convert spec
 * (protobuf text and deft YAML share them), TAO's value checks, class
 * consistency between the per-class blocks, and what deft refuses. The
 * summaries and --help-spec are in detectnet_v2_spec_print.c. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "deft/detectnet_v2_spec.h"
#include "spec/detectnet_v2_spec_impl.h"
#include "spec/spec_fields.h"

/* ---- dataset_config ---------------------------------------------------------------- */

#define T struct deft_dnv2_data_source
static const struct deft_spec_field src_fields[] = {
    F_STR(T, tfrecords_path, NULL, 0, "TAO's TFRecords glob; deft reads what `deft detectnet_v2 dataset_convert` "
          "wrote there (no TFRecords)"),
    F_STR(T, image_directory_path, NULL, 0, "root of the images (TAO: the dataset_convert root_directory_path)"),
    F_FLT(T, source_weight, NULL, 0, 0, GE, "loss weight of this source's frames"),
};
#undef T
static const struct deft_spec_schema src_schema = SCHEMA(struct deft_dnv2_data_source, "DataSource", src_fields);

static const struct deft_spec_enum_val loader_vals[] = {
    {"MULTISOURCE", DEFT_DNV2_LOADER_MULTISOURCE}, {"LEGACY", DEFT_DNV2_LOADER_LEGACY},
    {"DEFAULT", DEFT_DNV2_LOADER_DEFAULT}, {NULL, 0}};
static const struct deft_spec_enum_val sampling_vals[] = {
    {"USER_DEFINED", DEFT_DNV2_SAMPLE_USER_DEFINED}, {"PROPORTIONAL", DEFT_DNV2_SAMPLE_PROPORTIONAL},
    {"UNIFORM", DEFT_DNV2_SAMPLE_UNIFORM}, {NULL, 0}};

#define T struct deft_dnv2_dataset_config
static const struct deft_spec_field ds_fields[] = {
    F_LIST(T, data_sources, n_data_sources, src_schema, REQ, "training data (repeated)"),
    F_STR(T, image_extension, "\"png\"", 0, "image file extension"),
    F_SMAP(T, target_class_mapping, n_target_class_mapping, REQ,
           "label name -> class name (labels are read lower-cased, as TAO's converter writes them)"),
    F_INT(T, validation_fold, NULL, 0, 0, GE, "fold of the converted data used for validation (random mode: 0); "
          "one of validation_fold / validation_data_source"),
    F_OPT(T, validation_data_source, has_validation_data_source, src_schema, 0,
          "separate validation data (one of validation_fold / validation_data_source)"),
    F_ENUM(T, dataloader_mode, "MULTISOURCE", loader_vals, IGN, "TAO data loader flavour"),
    F_ENUM(T, sampling_mode, "USER_DEFINED", sampling_vals, 0, "how frames of several sources are drawn"),
};
#undef T
static const struct deft_spec_schema ds_schema = SCHEMA(struct deft_dnv2_dataset_config, "DatasetConfig", ds_fields);

/* ---- augmentation_config --------------------------------------------------------------- */

#define T struct deft_dnv2_preprocessing
static const struct deft_spec_field pre_fields[] = {
    F_INT(T, output_image_width, NULL, 16, 16384, GE | LE | REQ, "network input width (multiple of 16)"),
    F_INT(T, output_image_height, NULL, 16, 16384, GE | LE | REQ, "network input height (multiple of 16)"),
    F_INT(T, output_image_min, NULL, 0, 0, GE, "enable_auto_resize: shorter side"),
    F_INT(T, output_image_max, NULL, 0, 0, GE, "enable_auto_resize: longer side"),
    F_BOOL(T, enable_auto_resize, NULL, 0, "resize every image to the input size (else: crop/pad)"),
    F_INT(T, output_image_channel, "3", 1, 3, GE | LE, "input channels: 3 or 1"),
    F_INT(T, crop_left, NULL, 0, 0, GE, "crop before scaling (pixels)"),
    F_INT(T, crop_top, NULL, 0, 0, GE, "crop before scaling"),
    F_INT(T, crop_right, NULL, 0, 0, GE, "crop before scaling (0 = none)"),
    F_INT(T, crop_bottom, NULL, 0, 0, GE, "crop before scaling (0 = none)"),
    F_FLT(T, min_bbox_width, NULL, 0, 0, GE, "boxes narrower than this are dropped from training"),
    F_FLT(T, min_bbox_height, NULL, 0, 0, GE, "boxes lower than this are dropped from training"),
    F_FLT(T, scale_width, NULL, 0, 0, GE, "scale after the crop (0 = 1)"),
    F_FLT(T, scale_height, NULL, 0, 0, GE, "scale after the crop (0 = 1)"),
};
#undef T
#define T struct deft_dnv2_spatial_aug
static const struct deft_spec_field spatial_fields[] = {
    F_FLT(T, hflip_probability, NULL, 0, 1, GE | LE, "horizontal flip probability"),
    F_FLT(T, vflip_probability, NULL, 0, 1, GE | LE, "vertical flip probability"),
    F_FLT(T, zoom_min, "1", 0, 0, GE, "smallest zoom (deft default 1: no zoom)"),
    F_FLT(T, zoom_max, "1", 0, 0, GE, "largest zoom"),
    F_FLT(T, translate_max_x, NULL, 0, 0, GE, "largest horizontal shift (pixels)"),
    F_FLT(T, translate_max_y, NULL, 0, 0, GE, "largest vertical shift (pixels)"),
    F_FLT(T, rotate_rad_max, NULL, 0, 0, GE, "largest rotation (radians)"),
    F_FLT(T, rotate_probability, NULL, 0, 1, GE | LE, "rotation probability"),
};
#undef T
#define T struct deft_dnv2_color_aug
static const struct deft_spec_field color_fields[] = {
    F_FLT(T, color_shift_stddev, NULL, 0, 1, GE | LE, "per-channel colour shift standard deviation"),
    F_FLT(T, hue_rotation_max, NULL, 0, 0, GE, "largest hue rotation (degrees)"),
    F_FLT(T, saturation_shift_max, NULL, 0, 1, GE | LE, "largest saturation shift"),
    F_FLT(T, contrast_scale_max, NULL, 0, 1, GE | LE, "largest contrast scale (0: off)"),
    F_FLT(T, contrast_center, "0.5", 0, 1, GE | LE, "contrast centre"),
};
#undef T
static const struct deft_spec_schema pre_schema = SCHEMA(struct deft_dnv2_preprocessing, "Preprocessing", pre_fields);
static const struct deft_spec_schema spatial_schema =
    SCHEMA(struct deft_dnv2_spatial_aug, "SpatialAugmentation", spatial_fields);
static const struct deft_spec_schema color_schema = SCHEMA(struct deft_dnv2_color_aug, "ColorAugmentation", color_fields);
#define T struct deft_dnv2_augmentation_config
static const struct deft_spec_field aug_fields[] = {
    F_MSG(T, preprocessing, pre_schema, REQ, "input size, crops, minimum box size"),
    F_MSG(T, spatial_augmentation, spatial_schema, 0, "flips, zoom, translation, rotation"),
    F_MSG(T, color_augmentation, color_schema, 0, "hue, saturation, contrast, colour shift"),
};
#undef T
static const struct deft_spec_schema aug_schema = SCHEMA(struct deft_dnv2_augmentation_config, "AugmentationConfig", aug_fields);

/* ---- model_config ----------------------------------------------------------------------- */

#define T struct deft_dnv2_activation
static const struct deft_spec_field act_fields[] = {
    F_STR(T, activation_type, NULL, 0, "backbone activation: relu (TAO's default when empty)"),
    F_MAPR(T, activation_parameters, n_activation_parameters, 0, 0, 0, "activation parameters"),
};
#undef T
#define T struct deft_dnv2_bbox_objective
static const struct deft_spec_field bbox_obj_fields[] = {
    F_STR(T, input, NULL, 0, "layer feeding the head (\"\": the backbone's last map)"),
    F_FLT(T, scale, "35", 0, 0, GT, "box distances are divided by this (pixels)"),
    F_FLT(T, offset, "0.5", 0, 0, GE, "cell centre offset: centre = (i + offset) * stride"),
};
#undef T
#define T struct deft_dnv2_cov_objective
static const struct deft_spec_field cov_obj_fields[] = {
    F_STR(T, input, NULL, 0, "layer feeding the head (\"\": the backbone's last map)"),
};
#undef T
static const struct deft_spec_schema bbox_obj_schema = SCHEMA(struct deft_dnv2_bbox_objective, "BboxObjective", bbox_obj_fields);
static const struct deft_spec_schema cov_obj_schema = SCHEMA(struct deft_dnv2_cov_objective, "CovObjective", cov_obj_fields);
#define T struct deft_dnv2_objective_set
static const struct deft_spec_field objset_fields[] = {
    F_OPT(T, bbox, has_bbox, bbox_obj_schema, REQ, "box head output_bbox (4 channels a class)"),
    F_OPT(T, cov, has_cov, cov_obj_schema, REQ, "coverage head output_cov (1 channel a class, sigmoid)"),
};
#undef T
static const struct deft_spec_schema objset_schema = SCHEMA(struct deft_dnv2_objective_set, "ObjectiveSet", objset_fields);
static const struct deft_spec_enum_val floatx_vals[] = {
    {"FLOAT32", DEFT_DNV2_FLOAT32}, {"FLOAT16", DEFT_DNV2_FLOAT16}, {"INVALID", DEFT_DNV2_FLOATX_INVALID}, {NULL, 0}};
#define T struct deft_dnv2_training_precision
static const struct deft_spec_field prec_fields[] = {
    F_ENUM(T, backend_floatx, "FLOAT32", floatx_vals, 0, "FLOAT16: TAO mixed precision (deft: --use_amp)"),
};
#undef T
static const struct deft_spec_schema prec_schema = SCHEMA(struct deft_dnv2_training_precision, "TrainingPrecision", prec_fields);
static const struct deft_spec_schema act_schema = SCHEMA(struct deft_dnv2_activation, "Activation", act_fields);

#define T struct deft_dnv2_model_config
static const struct deft_spec_field model_fields[] = {
    F_STR(T, pretrained_model_file, NULL, 0, "weights to start from: a deft classification model (backbone "
          "weights by name), a deft detectnet_v2 model, .pth/.onnx/.safetensors"),
    F_BOOL(T, freeze_pretrained_layers, NULL, 0, "keep the weights loaded from pretrained_model_file fixed"),
    F_BOOL(T, allow_loaded_model_modification, NULL, IGN, "TAO: add missing heads to a loaded model"),
    F_INT(T, num_layers, NULL, 0, 1000, GE | LE, "depth: resnet 10/18/34/50/101"),
    F_BOOL(T, use_pooling, NULL, IGN, "TAO resnet stem: max pool (true) or strided conv; deft's resnet keeps "
           "torchvision's max-pool stem, same output stride"),
    F_BOOL(T, use_batch_norm, NULL, 0, "batch norm in the backbone (deft's backbones have it: true)"),
    F_FLT(T, dropout_rate, NULL, 0, 1, GE | LE | IGN, "dropout fraction (deft's detection backbones have no dropout)"),
    F_MSG(T, activation, act_schema, 0, "backbone activation"),
    F_MSG(T, objective_set, objset_schema, REQ, "the heads: bbox and cov"),
    F_MSG(T, training_precision, prec_schema, 0, "training float type"),
    F_BOOL(T, freeze_bn, NULL, 0, "keep batch-norm statistics and parameters fixed"),
    F_FLIST(T, freeze_blocks, n_freeze_blocks, 0, 0, GE, "backbone blocks whose weights stay fixed (repeated)"),
    F_STR(T, arch, NULL, REQ, "backbone: resnet (deft also mobilenet_v2)"),
    F_BOOL(T, load_graph, NULL, 0, "pretrained_model_file is a pruned model: take its graph too"),
    F_BOOL(T, all_projections, NULL, 0, "1x1 projection on every resnet shortcut (deft: false only)"),
};
#undef T
static const struct deft_spec_schema model_schema = SCHEMA(struct deft_dnv2_model_config, "ModelConfig", model_fields);

/* ---- bbox_rasterizer_config ------------------------------------------------------------------ */

#define T struct deft_dnv2_raster_class
static const struct deft_spec_field raster_class_fields[] = {
    F_FLT(T, cov_center_x, NULL, 0, 1, GE | LE | REQ, "coverage centre across the box (0.5: middle)"),
    F_FLT(T, cov_center_y, NULL, 0, 1, GE | LE | REQ, "coverage centre down the box"),
    F_FLT(T, cov_radius_x, NULL, 0, 1, GE | LE | REQ, "coverage ellipse radius, fraction of the half width"),
    F_FLT(T, cov_radius_y, NULL, 0, 1, GE | LE | REQ, "coverage ellipse radius, fraction of the half height"),
    F_FLT(T, bbox_min_radius, NULL, 0, 1, GE | LE | REQ, "smallest coverage radius (output cells)"),
};
#undef T
static const struct deft_spec_schema raster_class_schema =
    SCHEMA(struct deft_dnv2_raster_class, "BboxRasterizerConfig.TargetClassConfig", raster_class_fields);
#define T struct deft_dnv2_raster_entry
static const struct deft_spec_field raster_entry_fields[] = {
    F_STR(T, key, NULL, REQ, "class name"),
    F_MSG(T, value, raster_class_schema, REQ, "its rasterizer settings"),
};
#undef T
static const struct deft_spec_schema raster_entry_schema = SCHEMA(struct deft_dnv2_raster_entry, "map entry", raster_entry_fields);
#define T struct deft_dnv2_bbox_rasterizer_config
static const struct deft_spec_field raster_fields[] = {
    F_LIST(T, target_class_config, n_target_class_config, raster_entry_schema, REQ,
           "per class (map: key class, value settings)"),
    F_FLT(T, deadzone_radius, NULL, 0, 1, GE | LE, "blank band between overlapping objects"),
};
#undef T
static const struct deft_spec_schema raster_schema = SCHEMA(struct deft_dnv2_bbox_rasterizer_config, "BboxRasterizerConfig", raster_fields);

/* ---- postprocessing_config ----------------------------------------------------------------- */

static const struct deft_spec_enum_val cluster_vals[] = {
    {"DBSCAN", DEFT_DNV2_DBSCAN}, {"NMS", DEFT_DNV2_NMS}, {"HYBRID", DEFT_DNV2_HYBRID}, {NULL, 0}};
#define T struct deft_dnv2_clustering_config
static const struct deft_spec_field cluster_fields[] = {
    F_FLT(T, coverage_threshold, NULL, 0, 1, GE | LE | REQ, "cells with coverage at or below this are ignored"),
    F_INT(T, minimum_bounding_box_height, NULL, 0, 0, GE, "clusters lower than this (pixels) are dropped"),
    F_ENUM(T, clustering_algorithm, "DBSCAN", cluster_vals, 0, "DBSCAN or NMS (HYBRID: TAO's enum only)"),
    F_FLT(T, dbscan_eps, NULL, 0, 1, GE | LE, "DBSCAN neighbourhood: 1 - IoU <= eps"),
    F_INT(T, dbscan_min_samples, NULL, 0, 0, GE, "DBSCAN core size (coverage-weighted; max(n, 1))"),
    F_INT(T, neighborhood_size, NULL, 0, 0, GE, "TAO (unused by its DBSCAN)"),
    F_FLT(T, dbscan_confidence_threshold, NULL, 0, 0, GE, "clusters whose summed coverage is below this are dropped"),
    F_FLT(T, nms_iou_threshold, "0.2", 0, 1, GE | LE, "NMS: overlap that suppresses"),
    F_FLT(T, nms_confidence_threshold, NULL, 0, 1, GE | LE, "NMS: boxes below this are dropped"),
};
#undef T
static const struct deft_spec_schema cluster_schema = SCHEMA(struct deft_dnv2_clustering_config, "ClusteringConfig", cluster_fields);
#define T struct deft_dnv2_confidence_config
static const struct deft_spec_field conf_fields[] = {
    F_FLT(T, confidence_threshold, NULL, 0, 1, GE | LE, "confidence threshold of the class"),
    F_STR(T, confidence_model_filename, NULL, 0, "TAO's learned confidence model (deft: not supported)"),
    F_STR(T, normalization_mode, NULL, IGN, "its input normalization"),
};
#undef T
static const struct deft_spec_schema conf_schema = SCHEMA(struct deft_dnv2_confidence_config, "ConfidenceConfig", conf_fields);
#define T struct deft_dnv2_postproc_class
static const struct deft_spec_field pp_class_fields[] = {
    F_MSG(T, clustering_config, cluster_schema, REQ, "how cells become boxes"),
    F_MSG(T, confidence_config, conf_schema, 0, "confidence model (TAO)"),
};
#undef T
static const struct deft_spec_schema pp_class_schema =
    SCHEMA(struct deft_dnv2_postproc_class, "PostProcessingConfig.TargetClassConfig", pp_class_fields);
#define T struct deft_dnv2_postproc_entry
static const struct deft_spec_field pp_entry_fields[] = {
    F_STR(T, key, NULL, REQ, "class name"),
    F_MSG(T, value, pp_class_schema, REQ, "its post-processing"),
};
#undef T
static const struct deft_spec_schema pp_entry_schema = SCHEMA(struct deft_dnv2_postproc_entry, "map entry", pp_entry_fields);
#define T struct deft_dnv2_postprocessing_config
static const struct deft_spec_field pp_fields[] = {
    F_LIST(T, target_class_config, n_target_class_config, pp_entry_schema, REQ, "per class (map)"),
};
#undef T
static const struct deft_spec_schema pp_schema = SCHEMA(struct deft_dnv2_postprocessing_config, "PostProcessingConfig", pp_fields);

/* ---- cost_function_config ---------------------------------------------------------------------- */

#define T struct deft_dnv2_objective
static const struct deft_spec_field objective_fields[] = {
    F_STR(T, name, NULL, REQ, "cov or bbox"),
    F_FLT(T, initial_weight, NULL, 0, 0, GE, "starting weight (normalised over the objectives)"),
    F_FLT(T, weight_target, NULL, 0, 0, GE, "autoweighting target"),
};
#undef T
static const struct deft_spec_schema objective_schema = SCHEMA(struct deft_dnv2_objective, "Objective", objective_fields);
#define T struct deft_dnv2_target_class
static const struct deft_spec_field tc_fields[] = {
    F_STR(T, name, NULL, REQ, "class name; the order of target_classes is the output channel order"),
    F_FLT(T, class_weight, NULL, 0, 0, GE, "weight of the class (normalised over the classes)"),
    F_FLT(T, coverage_foreground_weight, NULL, 0, 1, GE | LE, "BCE weight of cells with coverage > 0.5 "
          "(background: 1 - w)"),
    F_LIST(T, objectives, n_objectives, objective_schema, REQ, "cov and bbox (repeated)"),
};
#undef T
static const struct deft_spec_schema tc_schema = SCHEMA(struct deft_dnv2_target_class, "TargetClass", tc_fields);
#define T struct deft_dnv2_cost_function_config
static const struct deft_spec_field cost_fields[] = {
    F_LIST(T, target_classes, n_target_classes, tc_schema, REQ, "the classes (repeated, in output order)"),
    F_BOOL(T, enable_autoweighting, NULL, 0, "re-weight the objectives at each epoch end"),
    F_FLT(T, max_objective_weight, NULL, 0, 0, GE, "autoweighting clamp"),
    F_FLT(T, min_objective_weight, NULL, 0, 0, GE, "autoweighting clamp"),
};
#undef T
static const struct deft_spec_schema cost_schema = SCHEMA(struct deft_dnv2_cost_function_config, "CostFunctionConfig", cost_fields);

/* ---- training_config ------------------------------------------------------------------------------ */

#define T struct deft_dnv2_lr_anneal
static const struct deft_spec_field anneal_fields[] = {
    F_FLT(T, min_learning_rate, NULL, 0, 0, GT | REQ, "lr at the start and the end"),
    F_FLT(T, max_learning_rate, NULL, 0, 0, GT | REQ, "lr between soft_start and annealing"),
    F_FLT(T, soft_start, NULL, 0, 1, GE | REQ, "fraction of the run spent ramping up, in [0, 1)"),
    F_FLT(T, annealing, NULL, 0, 1, GE | REQ, "fraction of the run where the lr starts to fall, in [0, 1)"),
};
#undef T
#define T struct deft_dnv2_lr_early_stop
static const struct deft_spec_field es_fields[] = {
    F_FLT(T, min_learning_rate, NULL, 0, 0, GT | REQ, "lr at the start and the end"),
    F_FLT(T, max_learning_rate, NULL, 0, 0, GT | REQ, "lr in the middle"),
    F_INT(T, soft_start_epochs, NULL, 0, 0, GE | REQ, "epochs to reach max_learning_rate"),
    F_INT(T, annealing_epochs, NULL, 0, 0, GE | REQ, "epoch from which the lr may drop"),
    F_INT(T, patience_steps, NULL, 0, 0, GE | REQ, "validations without progress before the lr drops / stop"),
};
#undef T
static const struct deft_spec_schema anneal_schema = SCHEMA(struct deft_dnv2_lr_anneal, "SoftStartAnnealingScheduleConfig", anneal_fields);
static const struct deft_spec_schema es_schema = SCHEMA(struct deft_dnv2_lr_early_stop, "EarlyStoppingAnnealingScheduleConfig", es_fields);
#define T struct deft_dnv2_lr_config
static const struct deft_spec_field lr_fields[] = {
    F_ONEOF(T, soft_start_annealing_schedule, has_soft_start_annealing_schedule, anneal_schema, "learning_rate", REQ,
            "ramp up, hold, anneal"),
    F_ONEOF(T, early_stopping_annealing_schedule, has_early_stopping_annealing_schedule, es_schema, "learning_rate",
            REQ, "ramp up, then drop the lr / stop on validation loss"),
};
#undef T
static const struct deft_spec_schema lr_schema = SCHEMA(struct deft_dnv2_lr_config, "LearningRateConfig", lr_fields);
static const struct deft_spec_enum_val reg_vals[] = {
    {"NO_REG", DEFT_DNV2_REG_NONE}, {"L1", DEFT_DNV2_REG_L1}, {"L2", DEFT_DNV2_REG_L2}, {NULL, 0}};
#define T struct deft_dnv2_regularizer
static const struct deft_spec_field reg_fields[] = {
    F_ENUM(T, type, "NO_REG", reg_vals, 0, "weight regularizer"),
    F_FLT(T, weight, NULL, 0, 0, GE, "strength (L1: loss += weight * sum|w|, L2: weight * sum w^2)"),
};
#undef T
static const struct deft_spec_schema reg_schema = SCHEMA(struct deft_dnv2_regularizer, "RegularizerConfig", reg_fields);
#define T struct deft_dnv2_adam
static const struct deft_spec_field adam_fields[] = {
    F_FLT(T, epsilon, "1e-08", 0, 0, GT, "denominator epsilon"),
    F_FLT(T, beta1, "0.9", 0, 1, GT | LE, "first-moment decay"),
    F_FLT(T, beta2, "0.999", 0, 1, GT | LE, "second-moment decay"),
};
#undef T
static const struct deft_spec_schema adam_schema = SCHEMA(struct deft_dnv2_adam, "AdamOptimizerConfig", adam_fields);
#define T struct deft_dnv2_optimizer_config
static const struct deft_spec_field optim_fields[] = {
    F_ONEOF(T, adam, has_adam, adam_schema, "optimizer", REQ, "Adam (TAO's only DetectNet_v2 optimizer)"),
};
#undef T
static const struct deft_spec_schema optim_schema = SCHEMA(struct deft_dnv2_optimizer_config, "OptimizerConfig", optim_fields);
#define T struct deft_dnv2_cost_scaling
static const struct deft_spec_field cs_fields[] = {
    F_BOOL(T, enabled, NULL, 0, "loss scaling for mixed precision"),
    F_FLT(T, initial_exponent, NULL, 0, 0, GE, "initial log2 scale"),
    F_FLT(T, increment, NULL, 0, 0, GE, "scale increment"),
    F_FLT(T, decrement, NULL, 0, 0, GE, "scale decrement"),
};
#undef T
static const struct deft_spec_schema cs_schema = SCHEMA(struct deft_dnv2_cost_scaling, "CostScalingConfig", cs_fields);
#define T struct deft_dnv2_vis_class
static const struct deft_spec_field vis_class_fields[] = {
    F_FLT(T, coverage_threshold, NULL, 0, 1, GE | LE, "coverage threshold of the drawn boxes"),
};
#undef T
static const struct deft_spec_schema vis_class_schema = SCHEMA(struct deft_dnv2_vis_class, "VisualizerConfig.TargetClassConfig", vis_class_fields);
#define T struct deft_dnv2_vis_entry
static const struct deft_spec_field vis_entry_fields[] = {
    F_STR(T, key, NULL, REQ, "class name"),
    F_MSG(T, value, vis_class_schema, REQ, "its settings"),
};
#undef T
static const struct deft_spec_schema vis_entry_schema = SCHEMA(struct deft_dnv2_vis_entry, "map entry", vis_entry_fields);
#define T struct deft_dnv2_visualizer
static const struct deft_spec_field vis_fields[] = {
    F_BOOL(T, enabled, NULL, 0, "TensorBoard images"),
    F_INT(T, num_images, "3", 1, 0, GE, "images per summary"),
    F_INT(T, scalar_logging_frequency, NULL, 0, 0, GE, "steps between scalar summaries"),
    F_INT(T, infrequent_logging_frequency, NULL, 0, 0, GE, "epochs between image summaries"),
    F_LIST(T, target_class_config, n_target_class_config, vis_entry_schema, 0, "per class (map)"),
    F_ANY("wandb_config", "Weights & Biases settings (TAO)"),
    F_ANY("clearml_config", "ClearML settings (TAO)"),
};
#undef T
static const struct deft_spec_schema vis_schema = SCHEMA(struct deft_dnv2_visualizer, "VisualizerConfig", vis_fields);

#define T struct deft_dnv2_training_config
static const struct deft_spec_field train_fields[] = {
    F_INT(T, batch_size_per_gpu, "4", 1, 65536, GE | LE, "images per batch"),
    F_INT(T, num_epochs, NULL, 1, 1000000, GE | LE | REQ, "passes over the training set"),
    F_MSG(T, learning_rate, lr_schema, REQ, "learning-rate schedule"),
    F_MSG(T, regularizer, reg_schema, 0, "weight regularizer"),
    F_MSG(T, optimizer, optim_schema, REQ, "adam"),
    F_MSG(T, cost_scaling, cs_schema, IGN, "mixed-precision loss scaling (deft trains fp32: not needed)"),
    F_INT(T, checkpoint_interval, "10", 1, 0, GE, "save a checkpoint every N epochs"),
    F_BOOL(T, enable_qat, NULL, 0, "quantization-aware training"),
    F_MSG(T, visualizer, vis_schema, IGN, "TAO TensorBoard visualizer"),
};
#undef T
static const struct deft_spec_schema train_schema = SCHEMA(struct deft_dnv2_training_config, "TrainingConfig", train_fields);

/* ---- evaluation_config ----------------------------------------------------------------------------- */

#define T struct deft_dnv2_eval_box
static const struct deft_spec_field ebox_fields[] = {
    F_INT(T, minimum_height, NULL, 0, 0, GE, "ground truth and detections lower than this are not scored"),
    F_INT(T, maximum_height, "9999", 1, 0, GE, "... higher than this"),
    F_INT(T, minimum_width, NULL, 0, 0, GE, "... narrower than this"),
    F_INT(T, maximum_width, "9999", 1, 0, GE, "... wider than this"),
};
#undef T
static const struct deft_spec_schema ebox_schema = SCHEMA(struct deft_dnv2_eval_box, "EvaluationBoxConfig", ebox_fields);
#define T struct deft_dnv2_eval_box_entry
static const struct deft_spec_field ebox_entry_fields[] = {
    F_STR(T, key, NULL, REQ, "class name"),
    F_MSG(T, value, ebox_schema, REQ, "its size filter"),
};
#undef T
static const struct deft_spec_schema ebox_entry_schema = SCHEMA(struct deft_dnv2_eval_box_entry, "map entry", ebox_entry_fields);
static const struct deft_spec_enum_val ap_vals[] = {
    {"SAMPLE", DEFT_DNV2_AP_SAMPLE}, {"INTEGRATE", DEFT_DNV2_AP_INTEGRATE}, {NULL, 0}};
#define T struct deft_dnv2_evaluation_config
static const struct deft_spec_field eval_fields[] = {
    F_INT(T, validation_period_during_training, "10", 1, 0, GE, "validate every N epochs"),
    F_INT(T, first_validation_epoch, "30", 1, 0, GE, "first epoch validated"),
    F_INT(T, early_stopping_patience_steps, NULL, 0, 0, GE, "validations without progress before stopping (0: off)"),
    F_MAPR(T, minimum_detection_ground_truth_overlap, n_minimum_detection_ground_truth_overlap, 0, 1, GE | LE | REQ,
          "class -> IoU a detection needs to match a ground truth"),
    F_LIST(T, evaluation_box_config, n_evaluation_box_config, ebox_entry_schema, REQ, "class -> box size filter"),
    F_ENUM(T, average_precision_mode, "SAMPLE", ap_vals, 0, "SAMPLE = 11 recall points, INTEGRATE = area"),
};
#undef T
static const struct deft_spec_schema eval_schema = SCHEMA(struct deft_dnv2_evaluation_config, "EvaluationConfig", eval_fields);

/* ---- dataset_convert spec ------------------------------------------------------------------------------ */

#define T struct deft_dnv2_kitti_config
static const struct deft_spec_field kitti_fields[] = {
    F_STR(T, root_directory_path, NULL, REQ, "dataset root"),
    F_STR(T, image_dir_name, NULL, REQ, "image folder under the root"),
    F_STR(T, label_dir_name, NULL, REQ, "KITTI label folder under the root"),
    F_STR(T, point_clouds_dir, NULL, IGN, "TAO 3-D extra"),
    F_STR(T, calibrations_dir, NULL, IGN, "TAO 3-D extra"),
    F_STR(T, kitti_sequence_to_frames_file, NULL, 0, "partition_mode sequence: JSON {sequence: [frame ids]} "
          "under the root"),
    F_STR(T, image_extension, "\".png\"", 0, "image extension (with or without the dot)"),
    F_INT(T, num_partitions, "2", 1, 1000, GE | LE, "folds (random mode: 2, fold 0 = validation)"),
    F_INT(T, num_shards, NULL, 0, 0, GE | IGN, "TFRecords files per fold (deft writes none)"),
    F_STR(T, partition_mode, "\"random\"", 0, "random (sorted images, first val_split% to fold 0) or sequence"),
    F_FLT(T, val_split, NULL, 0, 100, GE, "percent of the images in the validation fold, in [0, 100)"),
};
#undef T
static const struct deft_spec_schema kitti_schema = SCHEMA(struct deft_dnv2_kitti_config, "KITTIConfig", kitti_fields);
#define T struct deft_dnv2_coco_config
static const struct deft_spec_field coco_fields[] = {
    F_STR(T, root_directory_path, NULL, 0, "dataset root"),
    F_SLIST(T, img_dir_names, n_img_dir_names, NULL, 0, "image folders, one a partition"),
    F_SLIST(T, annotation_files, n_annotation_files, NULL, 0, "COCO JSON files, one a partition"),
    F_INT(T, num_partitions, NULL, 0, 0, GE, "partitions"),
    F_ILIST(T, num_shards, n_num_shards, 0, 0, GE, "shards per partition"),
};
#undef T
static const struct deft_spec_schema coco_schema = SCHEMA(struct deft_dnv2_coco_config, "COCOConfig", coco_fields);
#define T struct deft_dnv2_sample_modifier
static const struct deft_spec_field sm_fields[] = {
    F_SLIST(T, filter_samples_containing_only, n_filter_samples_containing_only, NULL, 0, "drop frames with only these classes"),
    F_SLIST(T, dominant_target_classes, n_dominant_target_classes, NULL, 0, "classes that decide duplication"),
    F_MAPR(T, minimum_target_class_imbalance, n_minimum_target_class_imbalance, 0, 0, 0, "duplicate above this ratio"),
    F_INT(T, num_duplicates, NULL, 0, 0, GE, "copies added"),
    F_INT(T, max_training_samples, NULL, 0, 0, GE, "cap on training frames"),
    F_SMAP(T, source_to_target_class_mapping, n_source_to_target_class_mapping, 0, "mapping used by the filters"),
};
#undef T
static const struct deft_spec_schema sm_schema = SCHEMA(struct deft_dnv2_sample_modifier, "SampleModifierConfig", sm_fields);
#define T struct deft_dnv2_convert_config
static const struct deft_spec_field convert_fields[] = {
    F_ONEOF(T, kitti_config, has_kitti_config, kitti_schema, "convert_config_type", REQ, "a KITTI folder"),
    F_ONEOF(T, coco_config, has_coco_config, coco_schema, "convert_config_type", REQ, "COCO JSON (deft: not here)"),
    F_MSG(T, sample_modifier_config, sm_schema, 0, "frame filtering and duplication (deft: not supported)"),
    F_STR(T, image_directory_path, NULL, 0, "root the frame ids are relative to (training's image_directory_path)"),
    F_SMAP(T, target_class_mapping, n_target_class_mapping, IGN, "TAO: class indices of DALI records"),
};
#undef T
static const struct deft_spec_schema convert_schema = SCHEMA(struct deft_dnv2_convert_config, "DatasetExportConfig", convert_fields);

/* ---- the experiment ------------------------------------------------------------------------------------ */

#define T struct deft_dnv2_config
static const struct deft_spec_field top_fields[] = {
    F_INT(T, random_seed, NULL, 0, 0, GE, "seed for initialization, shuffling and augmentation"),
    F_MSG(T, dataset_config, ds_schema, REQ, "data sources, classes, validation split"),
    F_MSG(T, augmentation_config, aug_schema, REQ, "input size and augmentation"),
    F_MSG(T, postprocessing_config, pp_schema, REQ, "per-class clustering of the grid into boxes"),
    F_MSG(T, model_config, model_schema, REQ, "the GridboxModel: backbone and heads"),
    F_MSG(T, evaluation_config, eval_schema, REQ, "validation and AP"),
    F_MSG(T, cost_function_config, cost_schema, REQ, "classes (output order) and loss weights"),
    F_MSG(T, training_config, train_schema, REQ, "training"),
    F_MSG(T, bbox_rasterizer_config, raster_schema, REQ, "ground-truth rasterization per class"),
    F_ANY("loss_mask_label_filter", "TAO loss-mask label filters (deft: not supported)"),
    F_LIST(T, dataset_export_config, n_dataset_export_config, convert_schema, IGN,
           "dataset_convert settings (used by dataset_convert, not by train)"),
    F_STR(T, results_dir, NULL, EXT, "default results directory (-r wins)"),
};
#undef T
static const struct deft_spec_schema dnv2_schema = SCHEMA(struct deft_dnv2_config, "Experiment", top_fields);

/* ---- the inference spec ------------------------------------------------------------------------------- */

#define T struct deft_dnv2_tlt_config
static const struct deft_spec_field tlt_fields[] = {
    F_STR(T, model, NULL, REQ, "the model: a deft detectnet_v2 model (.safetensors) or its ONNX export"),
};
#undef T
static const struct deft_spec_schema tlt_schema = SCHEMA(struct deft_dnv2_tlt_config, "TLTConfig", tlt_fields);
#define T struct deft_dnv2_calibrator_config
static const struct deft_spec_field calib_fields[] = {
    F_STR(T, calibration_cache, NULL, 0, "INT8 cache"),
    F_STR(T, calibration_tensorfile, NULL, 0, "calibration tensors"),
    F_INT(T, n_batches, NULL, 0, 0, GE, "calibration batches"),
};
#undef T
static const struct deft_spec_schema calib_schema = SCHEMA(struct deft_dnv2_calibrator_config, "CalibratorConfig", calib_fields);
static const struct deft_spec_enum_val parser_vals[] = {
    {"ETLT", DEFT_DNV2_PARSER_ETLT}, {"UFF", DEFT_DNV2_PARSER_UFF}, {"CAFFE", DEFT_DNV2_PARSER_CAFFE}, {NULL, 0}};
static const struct deft_spec_enum_val trt_dtype_vals[] = {
    {"FP32", DEFT_DNV2_TRT_FP32}, {"FP16", DEFT_DNV2_TRT_FP16}, {"INT8", DEFT_DNV2_TRT_INT8}, {NULL, 0}};
#define T struct deft_dnv2_tensorrt_config
static const struct deft_spec_field trt_fields[] = {
    F_ENUM(T, parser, "ETLT", parser_vals, 0, "model format"),
    F_STR(T, caffemodel, NULL, 0, "Caffe weights"),
    F_STR(T, prototxt, NULL, 0, "Caffe graph"),
    F_STR(T, uff_model, NULL, 0, "UFF model"),
    F_STR(T, etlt_model, NULL, 0, "encrypted TAO model"),
    F_ENUM(T, backend_data_type, "FP32", trt_dtype_vals, 0, "engine precision"),
    F_BOOL(T, save_engine, NULL, 0, "keep the engine"),
    F_STR(T, trt_engine, NULL, 0, "engine file"),
    F_MSG(T, calibrator_config, calib_schema, 0, "INT8 calibration"),
};
#undef T
static const struct deft_spec_schema trt_schema = SCHEMA(struct deft_dnv2_tensorrt_config, "TensorRTConfig", trt_fields);
#define T struct deft_dnv2_inferencer_config
static const struct deft_spec_field inferencer_fields[] = {
    F_ONEOF(T, tlt_config, has_tlt_config, tlt_schema, "model_config_type", REQ, "run a deft model"),
    F_ONEOF(T, tensorrt_config, has_tensorrt_config, trt_schema, "model_config_type", REQ,
            "run a TensorRT engine (deft: not supported; use tlt_config)"),
    F_SLIST(T, input_nodes, n_input_nodes, NULL, IGN, "TAO: input node names"),
    F_SLIST(T, output_nodes, n_output_nodes, NULL, IGN, "TAO: output node names"),
    F_INT(T, batch_size, "1", 1, 65536, GE | LE, "images per batch"),
    F_INT(T, image_height, NULL, 16, 16384, GE | LE | REQ, "network input height (multiple of 16)"),
    F_INT(T, image_width, NULL, 16, 16384, GE | LE | REQ, "network input width (multiple of 16)"),
    F_INT(T, image_channels, "3", 1, 3, GE | LE, "input channels: 3 or 1"),
    F_INT(T, gpu_index, NULL, 0, 0, GE | IGN, "TAO: GPU (deft: --gpu_index)"),
    F_SLIST(T, target_classes, n_target_classes, NULL, REQ, "class names in the network's output order"),
    F_INT(T, stride, NULL, 0, 64, GE | LE, "output stride (0 or 16)"),
};
#undef T
static const struct deft_spec_schema inferencer_schema = SCHEMA(struct deft_dnv2_inferencer_config, "InferencerConfig", inferencer_fields);
#define T struct deft_dnv2_bbox_color
static const struct deft_spec_field color_rgb_fields[] = {
    F_INT(T, R, NULL, 0, 255, GE | LE, "red"),
    F_INT(T, G, NULL, 0, 255, GE | LE, "green"),
    F_INT(T, B, NULL, 0, 255, GE | LE, "blue"),
};
#undef T
static const struct deft_spec_schema color_rgb_schema = SCHEMA(struct deft_dnv2_bbox_color, "BboxColor", color_rgb_fields);
#define T struct deft_dnv2_classwise_bbox
static const struct deft_spec_field cw_fields[] = {
    F_MSG(T, clustering_config, cluster_schema, REQ, "how cells become boxes"),
    F_STR(T, confidence_model, "\"aggregate_cov\"", 0, "aggregate_cov (sum of the cluster's coverage) or mean_cov"),
    F_STR(T, output_map, NULL, 0, "label written for this class (\"\": the class name)"),
    F_MSG(T, bbox_color, color_rgb_schema, 0, "overlay colour"),
};
#undef T
static const struct deft_spec_schema cw_schema = SCHEMA(struct deft_dnv2_classwise_bbox, "ClasswiseBboxHandlerConfig", cw_fields);
#define T struct deft_dnv2_classwise_entry
static const struct deft_spec_field cw_entry_fields[] = {
    F_STR(T, key, NULL, REQ, "class name, or \"default\" for the others"),
    F_MSG(T, value, cw_schema, REQ, "its settings"),
};
#undef T
static const struct deft_spec_schema cw_entry_schema = SCHEMA(struct deft_dnv2_classwise_entry, "map entry", cw_entry_fields);
#define T struct deft_dnv2_bbox_handler_config
static const struct deft_spec_field handler_fields[] = {
    F_BOOL(T, kitti_dump, NULL, 0, "write KITTI label files with the confidence as a 16th field"),
    F_BOOL(T, disable_overlay, NULL, 0, "do not write annotated images"),
    F_INT(T, overlay_linewidth, "2", 0, 100, GE | LE, "box line width in the overlays"),
    F_LIST(T, classwise_bbox_handler_config, n_classwise_bbox_handler_config, cw_entry_schema, REQ,
           "per class (map; \"default\" for unlisted classes)"),
    F_SLIST(T, postproc_classes, n_postproc_classes, NULL, 0, "classes to post-process (empty: all)"),
    F_ANY("wandb_config", "Weights & Biases settings (TAO)"),
};
#undef T
static const struct deft_spec_schema handler_schema = SCHEMA(struct deft_dnv2_bbox_handler_config, "BboxHandlerConfig", handler_fields);
#define T struct deft_dnv2_infer_config
static const struct deft_spec_field infer_fields[] = {
    F_MSG(T, inferencer_config, inferencer_schema, REQ, "the model, input size and classes"),
    F_MSG(T, bbox_handler_config, handler_schema, REQ, "clustering and outputs"),
};
#undef T
static const struct deft_spec_schema infer_schema = SCHEMA(struct deft_dnv2_infer_config, "Inference", infer_fields);

const struct deft_spec_schema *deft_dnv2_schema(enum deft_dnv2_spec_kind k) {
    return k == DEFT_DNV2_SPEC_INFERENCE ? &infer_schema : k == DEFT_DNV2_SPEC_CONVERT ? &convert_schema : &dnv2_schema;
}

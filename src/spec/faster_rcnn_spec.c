/* faster_rcnn_spec.c - the Faster R-CNN spec (spec module): schema tables
 * for TAO's faster_rcnn Experiment (its dataset and augmentation blocks are
 * DetectNet_v2's), TAO's checks (spec_wrapper.py validate_*), alternatives
 * given together refused, the class list (background last), the IoU list
 * of evaluation and the RPN anchor grid; YAML print, --help-spec, summary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "deft/faster_rcnn_spec.h"
#include "deft/det_priors.h"
#include "spec/det_spec_common.h"

#define HELP_CMD "deft faster_rcnn --help-spec"

/* ---- dataset_config / augmentation_config (DetectNet_v2's protos) ---------- */

#define T struct deft_frcnn_data_source
static const struct deft_spec_field src_fields[] = {
    F_STR(T, tfrecords_path, NULL, 0, "TAO TFRecords (deft reads KITTI labels: give label_directory_path)"),
    F_STR(T, image_directory_path, NULL, 0, "the images"),
    F_FLT(T, source_weight, NULL, 0, 0, GE | IGN, "loss weight of this source's frames"),
    F_STR(T, label_directory_path, NULL, EXT, "KITTI label files (one .txt per image)"),
    F_STR(T, split_list_path, NULL, EXT, "file of image stems (one a line) selecting this split"),
};
#undef T
static const struct deft_spec_schema src_schema = SCHEMA(struct deft_frcnn_data_source, "DataSource", src_fields);

#define T struct deft_frcnn_dataset_config
static const struct deft_spec_field ds_fields[] = {
    F_LIST(T, data_sources, n_data_sources, src_schema, REQ, "training data (repeated)"),
    F_STR(T, image_extension, "\"png\"", 0, "image file extension: jpg, jpeg or png"),
    F_SMAP(T, target_class_mapping, n_target_class_mapping, REQ, "label name -> class name"),
    F_INT(T, validation_fold, NULL, 0, 0, GE | IGN, "TFRecords fold used for validation"),
    F_OPT(T, validation_data_source, has_validation_data_source, src_schema, 0, "validation data"),
    F_ANY("dataloader_mode", "TAO loader selection (ignored)"),
    F_ANY("sampling_mode", "TAO multi-source sampling (ignored)"),
};
#undef T
static const struct deft_spec_schema ds_schema = SCHEMA(struct deft_frcnn_dataset_config, "DatasetConfig", ds_fields);

#define T struct deft_frcnn_preprocessing
static const struct deft_spec_field pre_fields[] = {
    F_INT(T, output_image_width, NULL, 0, 16384, GE | LE, "network input width (must equal size_height_width.width)"),
    F_INT(T, output_image_height, NULL, 0, 16384, GE | LE, "network input height"),
    F_INT(T, output_image_min, NULL, 0, 16384, GE | LE, "shorter side (with size_min)"),
    F_INT(T, output_image_max, NULL, 0, 16384, GE | LE, "longer side limit (with size_min)"),
    F_BOOL(T, enable_auto_resize, NULL, 0, "resize images to the input size"),
    F_INT(T, output_image_channel, "3", 1, 3, GE | LE, "input channels (3 RGB, 1 grayscale)"),
    F_INT(T, crop_left, NULL, 0, 0, GE, "crop before resizing"),
    F_INT(T, crop_top, NULL, 0, 0, GE, "crop before resizing"),
    F_INT(T, crop_right, NULL, 0, 0, GE, "crop before resizing"),
    F_INT(T, crop_bottom, NULL, 0, 0, GE, "crop before resizing"),
    F_FLT(T, min_bbox_width, NULL, 0, 0, GE, "boxes narrower than this are dropped"),
    F_FLT(T, min_bbox_height, NULL, 0, 0, GE, "boxes lower than this are dropped"),
    F_FLT(T, scale_width, NULL, 0, 0, GE, "resize factor after the crop"),
    F_FLT(T, scale_height, NULL, 0, 0, GE, "resize factor after the crop"),
};
#undef T
#define T struct deft_frcnn_spatial
static const struct deft_spec_field spa_fields[] = {
    F_FLT(T, hflip_probability, NULL, 0, 1, GE | LE, "horizontal flip probability"),
    F_FLT(T, vflip_probability, NULL, 0, 1, GE | LE, "vertical flip probability"),
    F_FLT(T, zoom_min, "1.0", 0, 0, GT, "smallest zoom"),
    F_FLT(T, zoom_max, "1.0", 0, 0, GT, "largest zoom"),
    F_FLT(T, translate_max_x, NULL, 0, 0, GE, "largest shift in pixels"),
    F_FLT(T, translate_max_y, NULL, 0, 0, GE, "largest shift in pixels"),
    F_FLT(T, rotate_rad_max, NULL, 0, 0, GE, "largest rotation (radians)"),
    F_FLT(T, rotate_probability, NULL, 0, 1, GE | LE, "rotation probability"),
};
#undef T
#define T struct deft_frcnn_color
static const struct deft_spec_field col_fields[] = {
    F_FLT(T, color_shift_stddev, NULL, 0, 0, GE, "colour shift standard deviation"),
    F_FLT(T, hue_rotation_max, NULL, 0, 360, GE | LE, "hue rotation up to +-this many degrees"),
    F_FLT(T, saturation_shift_max, NULL, 0, 1, GE | LE, "saturation shift"),
    F_FLT(T, contrast_scale_max, NULL, 0, 1, GE | LE, "contrast scale (0: off)"),
    F_FLT(T, contrast_center, "0.5", 0, 1, GE | LE, "contrast centre"),
};
#undef T
static const struct deft_spec_schema pre_schema = SCHEMA(struct deft_frcnn_preprocessing, "Preprocessing", pre_fields);
static const struct deft_spec_schema spa_schema = SCHEMA(struct deft_frcnn_spatial, "SpatialAugmentation", spa_fields);
static const struct deft_spec_schema col_schema = SCHEMA(struct deft_frcnn_color, "ColorAugmentation", col_fields);
#define T struct deft_frcnn_augmentation_config
static const struct deft_spec_field aug_fields[] = {
    F_MSG(T, preprocessing, pre_schema, 0, "input size, crop, minimum boxes"),
    F_MSG(T, spatial_augmentation, spa_schema, 0, "flips, zoom, shifts"),
    F_MSG(T, color_augmentation, col_schema, 0, "colour jitter"),
};
#undef T
static const struct deft_spec_schema aug_schema = SCHEMA(struct deft_frcnn_augmentation_config, "AugmentationConfig", aug_fields);

/* ---- model_config ------------------------------------------------------------- */

#define T struct deft_frcnn_size_min
static const struct deft_spec_field smin_fields[] = {F_INT(T, min, NULL, 160, 16384, GE | LE | REQ, "shorter side (>= 160)")};
#undef T
#define T struct deft_frcnn_size_hw
static const struct deft_spec_field shw_fields[] = {
    F_INT(T, height, NULL, 160, 16384, GE | LE | REQ, "input height (>= 160)"),
    F_INT(T, width, NULL, 160, 16384, GE | LE | REQ, "input width (>= 160)"),
};
#undef T
static const struct deft_spec_schema smin_schema = SCHEMA(struct deft_frcnn_size_min, "ImageSizeConfigMin", smin_fields);
static const struct deft_spec_schema shw_schema = SCHEMA(struct deft_frcnn_size_hw, "ImageSizeConfigHeightWidth", shw_fields);
static const struct deft_spec_enum_val itype_vals[] = {{"RGB", DEFT_FRCNN_RGB}, {"GRAY_SCALE", DEFT_FRCNN_GRAY_SCALE}, {NULL, 0}};
#define T struct deft_frcnn_input_image
static const struct deft_spec_field img_fields[] = {
    F_ENUM(T, image_type, "RGB", itype_vals, 0, "RGB or GRAY_SCALE"),
    F_ONEOF(T, size_min, has_size_min, smin_schema, "image_size_config", REQ, "resize so the shorter side is min"),
    F_ONEOF(T, size_height_width, has_size_height_width, shw_schema, "image_size_config", REQ, "fixed input size"),
    F_STR(T, image_channel_order, "\"bgr\"", 0, "bgr, rgb or l"),
    F_MAP(T, image_channel_mean, n_image_channel_mean, 0, 0, "per-channel mean {r, g, b} or {l} (0-255)"),
    F_FLT(T, image_scaling_factor, "1.0", 0, 0, GT, "pixel values are multiplied by this after the mean"),
    F_INT(T, max_objects_num_per_image, "100", 1, 100000, GE | LE, "ground-truth boxes kept per image"),
};
#undef T
static const struct deft_spec_schema img_schema = SCHEMA(struct deft_frcnn_input_image, "InputImageConfig", img_fields);
#define T struct deft_frcnn_anchor_box
static const struct deft_spec_field anc_fields[] = {
    F_FLIST(T, scale, n_scale, 0, 0, GT, "anchor sizes in input pixels (repeated)"),
    F_FLIST(T, ratio, n_ratio, 0, 0, GT, "anchor aspect ratios w/h (repeated): w = s*sqrt(r), h = s/sqrt(r)"),
};
#undef T
static const struct deft_spec_schema anc_schema = SCHEMA(struct deft_frcnn_anchor_box, "AnchorBoxConfig", anc_fields);
#define T struct deft_frcnn_roi_pooling
static const struct deft_spec_field roi_fields[] = {
    F_INT(T, pool_size, "7", 1, 64, GE | LE, "crop-and-resize output size"),
    F_BOOL(T, pool_size_2x, NULL, 0, "crop at 2 x pool_size, then downsample"),
};
#undef T
static const struct deft_spec_schema roi_schema = SCHEMA(struct deft_frcnn_roi_pooling, "RoiPoolingConfig", roi_fields);
#define T struct deft_frcnn_activation
static const struct deft_spec_field act_fields[] = {
    F_STR(T, activation_type, NULL, 0, "relu (default), relu6, swish, ..."),
    F_MAP(T, activation_parameters, n_activation_parameters, 0, 0, "parameters of the activation"),
};
#undef T
static const struct deft_spec_schema act_schema = SCHEMA(struct deft_frcnn_activation, "Activation", act_fields);
#define T struct deft_frcnn_model_config
static const struct deft_spec_field model_fields[] = {
    F_MSG(T, input_image_config, img_schema, REQ, "input size, channel order, means"),
    F_STR(T, arch, NULL, REQ, "backbone: resnet:10/18/34/50/101, vgg:16/19, vgg16, googlenet, mobilenet_v1, "
          "mobilenet_v2, darknet:19/53, resnet101, efficientnet:b0..b7"),
    F_MSG(T, anchor_box_config, anc_schema, REQ, "anchor scales and ratios"),
    F_INT(T, roi_mini_batch, "256", 1, 100000, GE | LE, "RoIs sampled per image for the RCNN head"),
    F_INT(T, rpn_stride, "16", 16, 16, GE | LE, "RPN stride (TAO: 16 only)"),
    F_BOOL(T, freeze_bn, NULL, 0, "keep batch-norm statistics and parameters fixed"),
    F_FLT(T, dropout_rate, NULL, 0, 1, GE | LE, "dropout in the RCNN head"),
    F_FLT(T, drop_connect_rate, NULL, 0, 1, GE | LE, "drop-connect (EfficientNet)"),
    F_STR(T, rpn_cls_activation_type, NULL, 0, "RPN objectness activation (sigmoid when empty)"),
    F_FLIST(T, freeze_blocks, n_freeze_blocks, 0, 0, GE, "backbone blocks whose weights stay fixed (repeated)"),
    F_BOOL(T, use_bias, NULL, 0, "convolutions have biases"),
    F_MSG(T, roi_pooling_config, roi_schema, 0, "RoI crop-and-resize"),
    F_BOOL(T, rfcn_mode, NULL, IGN, "R-FCN head (not supported)"),
    F_BOOL(T, tf_proposal_layer, NULL, IGN, "TensorFlow proposal layer"),
    F_BOOL(T, all_projections, NULL, 0, "1x1 projection on every shortcut"),
    F_BOOL(T, use_pooling, NULL, 0, "max pooling instead of strided convolutions"),
    F_MSG(T, activation, act_schema, 0, "activation function"),
};
#undef T
static const struct deft_spec_schema model_schema = SCHEMA(struct deft_frcnn_model_config, "ModelConfig", model_fields);

/* ---- training_config ------------------------------------------------------------ */

#define T struct deft_frcnn_adam
static const struct deft_spec_field adam_fields[] = {
    F_FLT(T, lr, NULL, 0, 0, GE, "learning rate (the schedule sets it)"), F_FLT(T, beta_1, "0.9", 0, 1, GE | LE, "beta 1"),
    F_FLT(T, beta_2, "0.999", 0, 1, GE | LE, "beta 2"), F_FLT(T, epsilon, "1e-07", 0, 0, GT, "epsilon"),
    F_FLT(T, decay, NULL, 0, 0, GE, "Keras lr decay"), F_BOOL(T, amsgrad, NULL, 0, "AMSGrad"),
};
#undef T
#define T struct deft_frcnn_sgd
static const struct deft_spec_field sgd_fields[] = {
    F_FLT(T, lr, NULL, 0, 0, GE, "learning rate (the schedule sets it)"), F_FLT(T, momentum, NULL, 0, 1, GE | LE, "momentum"),
    F_FLT(T, decay, NULL, 0, 0, GE, "Keras lr decay"), F_BOOL(T, nesterov, NULL, 0, "Nesterov momentum"),
};
#undef T
#define T struct deft_frcnn_rmsprop
static const struct deft_spec_field rms_fields[] = {F_FLT(T, lr, NULL, 0, 0, GE, "learning rate")};
#undef T
static const struct deft_spec_schema adam_schema = SCHEMA(struct deft_frcnn_adam, "AdamOptimizerConfig", adam_fields);
static const struct deft_spec_schema sgd_schema = SCHEMA(struct deft_frcnn_sgd, "SgdOptimizerConfig", sgd_fields);
static const struct deft_spec_schema rms_schema = SCHEMA(struct deft_frcnn_rmsprop, "RmspropOptimizerConfig", rms_fields);
#define T struct deft_frcnn_optimizer
static const struct deft_spec_field opt_fields[] = {
    F_ONEOF(T, adam, has_adam, adam_schema, "optim", REQ, "Adam"),
    F_ONEOF(T, sgd, has_sgd, sgd_schema, "optim", REQ, "SGD"),
    F_ONEOF(T, rmsprop, has_rmsprop, rms_schema, "optim", REQ, "RMSProp"),
};
#undef T
static const struct deft_spec_schema opt_schema = SCHEMA(struct deft_frcnn_optimizer, "OptimizerConfig", opt_fields);
#define T struct deft_frcnn_soft_start
static const struct deft_spec_field ss_fields[] = {
    F_FLT(T, base_lr, NULL, 0, 0, GT | REQ, "lr after the soft start"),
    F_FLT(T, start_lr, NULL, 0, 0, GT | REQ, "lr at the start"),
    F_FLT(T, soft_start, NULL, 0, 1, GE | LE, "fraction of the run spent ramping up"),
    F_FLIST(T, annealing_points, n_annealing_points, 0, 1, GE | LE, "fractions of the run where lr /= divider"),
    F_FLT(T, annealing_divider, "10.0", 0, 0, GT, "lr divider at each annealing point"),
};
#undef T
#define T struct deft_frcnn_step_lr
static const struct deft_spec_field step_fields[] = {
    F_FLT(T, base_lr, NULL, 0, 0, GT | REQ, "initial lr"), F_FLT(T, gamma, "0.1", 0, 0, GT, "factor per step"),
    F_FLT(T, step_size, NULL, 0, 0, GT | REQ, "iterations per step"),
};
#undef T
static const struct deft_spec_schema ss_schema = SCHEMA(struct deft_frcnn_soft_start, "SoftStartAnnealingConfig", ss_fields);
static const struct deft_spec_schema step_schema = SCHEMA(struct deft_frcnn_step_lr, "StepLrConfig", step_fields);
#define T struct deft_frcnn_lr
static const struct deft_spec_field lr_fields[] = {
    F_ONEOF(T, soft_start, has_soft_start, ss_schema, "lr_config", REQ, "ramp up, then divide at annealing points"),
    F_ONEOF(T, step, has_step, step_schema, "lr_config", REQ, "step decay"),
};
#undef T
static const struct deft_spec_schema lr_schema = SCHEMA(struct deft_frcnn_lr, "LRConfig", lr_fields);
static const struct deft_spec_enum_val reg_vals[] = {
    {"NO_REG", DEFT_FRCNN_NO_REG}, {"L1", DEFT_FRCNN_L1}, {"L2", DEFT_FRCNN_L2}, {NULL, 0}};
#define T struct deft_frcnn_regularizer
static const struct deft_spec_field reg_fields[] = {
    F_ENUM(T, type, "NO_REG", reg_vals, 0, "weight regularizer"), F_FLT(T, weight, NULL, 0, 1, GE | LE, "strength in (0, 1)"),
};
#undef T
static const struct deft_spec_schema reg_schema = SCHEMA(struct deft_frcnn_regularizer, "RegularizerConfig", reg_fields);
#define T struct deft_frcnn_early_stopping
static const struct deft_spec_field es_fields[] = {
    F_STR(T, monitor, "\"loss\"", 0, "quantity watched (TAO: only 'loss')"),
    F_FLT(T, min_delta, NULL, 0, 0, GE, "smallest change that counts"),
    F_INT(T, patience, NULL, 1, 0, GE | REQ, "epochs without progress before stopping"),
};
#undef T
static const struct deft_spec_schema es_schema = SCHEMA(struct deft_frcnn_early_stopping, "EarlyStopping", es_fields);
#define T struct deft_frcnn_visualizer
static const struct deft_spec_field vis_fields[] = {
    F_BOOL(T, enabled, NULL, 0, "TensorBoard images"), F_INT(T, num_images, "3", 0, 0, GE, "images per summary"),
    F_ANY("weight_histograms", "TAO"), F_ANY("wandb_config", "TAO"), F_ANY("clearml_config", "TAO"),
};
#undef T
static const struct deft_spec_schema vis_schema = SCHEMA(struct deft_frcnn_visualizer, "VisualizerConfig", vis_fields);
#define T struct deft_frcnn_training_config
static const struct deft_spec_field train_fields[] = {
    F_BOOL(T, enable_augmentation, NULL, 0, "apply augmentation_config while training"),
    F_STR(T, retrain_pruned_model, NULL, 0, "a pruned model to retrain"),
    F_STR(T, pretrained_weights, NULL, 0, "weights to start from"),
    F_STR(T, resume_from_model, NULL, 0, "checkpoint to resume"),
    F_FLT(T, rpn_min_overlap, "0.3", 0, 1, GT | LE, "RPN: anchors below this IoU are negative"),
    F_FLT(T, rpn_max_overlap, "0.7", 0, 1, GT | LE, "RPN: anchors at or above this IoU are positive"),
    F_FLT(T, classifier_min_overlap, NULL, 0, 1, GE | LE, "RCNN: RoIs in [min, max) IoU are negative"),
    F_FLT(T, classifier_max_overlap, "0.5", 0, 1, GT | LE, "RCNN: RoIs at or above this IoU are positive"),
    F_BOOL(T, gt_as_roi, NULL, 0, "add the ground-truth boxes to the RoIs"),
    F_FLT(T, std_scaling, "1.0", 0, 0, GT, "scale of the RPN box deltas"),
    F_MAP(T, classifier_regr_std, n_classifier_regr_std, 0, 0, "RCNN box-delta scales {x, y, w, h} (10, 10, 5, 5)"),
    F_INT(T, batch_size_per_gpu, "8", 1, 65536, GE | LE, "images per batch"),
    F_INT(T, num_epochs, "12", 1, 1000000, GE | LE, "passes over the training set"),
    F_INT(T, checkpoint_interval, "1", 0, 0, GE, "save a checkpoint every N epochs (0: 1)"),
    F_INT(T, rpn_pre_nms_top_N, "12000", 1, 1000000, GE | LE, "proposals kept before NMS"),
    F_INT(T, rpn_mini_batch, "256", 1, 100000, GE | LE, "anchors sampled per image for the RPN loss"),
    F_INT(T, rpn_nms_max_boxes, "2000", 1, 1000000, GE | LE, "proposals kept after NMS (< rpn_pre_nms_top_N)"),
    F_FLT(T, rpn_nms_overlap_threshold, "0.7", 0, 1, GT, "proposal NMS IoU in (0, 1)"),
    F_MSG(T, regularizer, reg_schema, 0, "weight regularizer"),
    F_MSG(T, optimizer, opt_schema, REQ, "one of adam / sgd / rmsprop"),
    F_MSG(T, learning_rate, lr_schema, REQ, "learning-rate schedule"),
    F_FLT(T, lambda_rpn_regr, "1.0", 0, 0, GT, "weight of the RPN box loss"),
    F_FLT(T, lambda_rpn_class, "1.0", 0, 0, GT, "weight of the RPN objectness loss"),
    F_FLT(T, lambda_cls_regr, "1.0", 0, 0, GT, "weight of the RCNN box loss"),
    F_FLT(T, lambda_cls_class, "1.0", 0, 0, GT, "weight of the RCNN class loss"),
    F_BOOL(T, enable_qat, NULL, 0, "quantization-aware training"),
    F_FLIST(T, model_parallelism, n_model_parallelism, 0, 1, GE | LE | IGN, "TAO multi-GPU model split"),
    F_OPT(T, early_stopping, has_early_stopping, es_schema, 0, "stop when the loss stops improving"),
    F_MSG(T, visualizer, vis_schema, IGN, "TAO TensorBoard visualizer"),
};
#undef T
static const struct deft_spec_schema train_schema = SCHEMA(struct deft_frcnn_training_config, "TrainingConfig", train_fields);

/* ---- inference / evaluation --------------------------------------------------------- */

#define T struct deft_frcnn_trt
static const struct deft_spec_field trt_fields[] = {F_STR(T, trt_engine, NULL, 0, "TensorRT engine (deft: not used)")};
#undef T
static const struct deft_spec_schema trt_schema = SCHEMA(struct deft_frcnn_trt, "TrtInference", trt_fields);
#define T struct deft_frcnn_inference_config
static const struct deft_spec_field inf_fields[] = {
    F_STR(T, images_dir, NULL, 0, "images to run on"), F_STR(T, model, NULL, 0, "model file"),
    F_INT(T, batch_size, "1", 1, 65536, GE | LE, "images per batch"),
    F_INT(T, rpn_pre_nms_top_N, "6000", 1, 1000000, GE | LE, "proposals before NMS"),
    F_INT(T, rpn_nms_max_boxes, "300", 1, 1000000, GE | LE, "proposals after NMS (< rpn_pre_nms_top_N)"),
    F_FLT(T, rpn_nms_overlap_threshold, "0.7", 0, 1, GT, "proposal NMS IoU in (0, 1)"),
    F_FLT(T, bbox_visualize_threshold, "0.6", 0, 1, GT, "boxes drawn at or above this score"),
    F_FLT(T, object_confidence_thres, "0.0001", 0, 1, GT, "detections kept at or above this score"),
    F_INT(T, classifier_nms_max_boxes, "100", 1, 100000, GE | LE, "detections per image"),
    F_FLT(T, classifier_nms_overlap_threshold, "0.3", 0, 1, GT, "detection NMS IoU in (0, 1)"),
    F_STR(T, detection_image_output_dir, NULL, 0, "annotated images"),
    F_BOOL(T, bbox_caption_on, NULL, 0, "class and score on drawn boxes"),
    F_STR(T, labels_dump_dir, NULL, 0, "KITTI predictions"),
    F_OPT(T, trt_inference, has_trt_inference, trt_schema, IGN, "TensorRT inference (TAO)"),
    F_INT(T, nms_score_bits, NULL, 0, 32, GE | LE, "TensorRT NMS score bits"),
};
#undef T
static const struct deft_spec_schema inf_schema = SCHEMA(struct deft_frcnn_inference_config, "InferenceConfig", inf_fields);
#define T struct deft_frcnn_iou_range
static const struct deft_spec_field rng_fields[] = {
    F_FLT(T, start, NULL, 0, 1, GT | LE | REQ, "first IoU"), F_FLT(T, end, NULL, 0, 1, GT | LE | REQ, "end (exclusive)"),
    F_FLT(T, step, NULL, 0, 1, GT | REQ, "IoU step in (0, 1)"),
};
#undef T
static const struct deft_spec_schema rng_schema = SCHEMA(struct deft_frcnn_iou_range, "IoUThresholdRange", rng_fields);
#define T struct deft_frcnn_evaluation_config
static const struct deft_spec_field eval_fields[] = {
    F_STR(T, model, NULL, 0, "model file"),
    F_INT(T, rpn_pre_nms_top_N, "6000", 1, 1000000, GE | LE, "proposals before NMS"),
    F_INT(T, rpn_nms_max_boxes, "300", 1, 1000000, GE | LE, "proposals after NMS (< rpn_pre_nms_top_N)"),
    F_FLT(T, rpn_nms_overlap_threshold, "0.7", 0, 1, GT, "proposal NMS IoU in (0, 1)"),
    F_INT(T, classifier_nms_max_boxes, "100", 1, 100000, GE | LE, "detections per image"),
    F_FLT(T, classifier_nms_overlap_threshold, "0.3", 0, 1, GT, "detection NMS IoU in (0, 1)"),
    F_FLT(T, object_confidence_thres, "0.0001", 0, 1, GT, "detections kept at or above this score"),
    F_BOOL(T, use_voc07_11point_metric, NULL, 0, "AP as VOC2007's 11-point interpolation"),
    F_INT(T, validation_period_during_training, "1", 0, 0, GE, "validate every N epochs (0: 1)"),
    F_INT(T, batch_size, "1", 0, 65536, GE | LE, "images per batch (0: 1)"),
    F_OPT(T, trt_evaluation, has_trt_evaluation, trt_schema, IGN, "TensorRT evaluation (TAO)"),
    F_OPT(T, gt_matching_iou_threshold_range, has_gt_matching_iou_threshold_range, rng_schema, 0,
          "COCO-style: AP averaged over IoUs start, start+step, ... < end"),
    F_FLT(T, gt_matching_iou_threshold, NULL, 0, 1, GE | LE, "IoU for a detection to match a GT (0, 1)"),
    F_BOOL(T, visualize_pr_curve, NULL, 0, "plot the precision-recall curves"),
};
#undef T
static const struct deft_spec_schema eval_schema = SCHEMA(struct deft_frcnn_evaluation_config, "EvaluationConfig", eval_fields);

#define T struct deft_frcnn_config
static const struct deft_spec_field top_fields[] = {
    F_INT(T, random_seed, NULL, 0, 0, GE, "seed"),
    F_BOOL(T, verbose, NULL, 0, "more logging"),
    F_STR(T, enc_key, NULL, IGN, "NGC model key (deft models are not encrypted)"),
    F_MSG(T, dataset_config, ds_schema, REQ, "data sources and classes"),
    F_MSG(T, augmentation_config, aug_schema, 0, "preprocessing and augmentation"),
    F_MSG(T, model_config, model_schema, REQ, "the network and its anchors"),
    F_MSG(T, training_config, train_schema, REQ, "training"),
    F_MSG(T, inference_config, inf_schema, 0, "inference"),
    F_MSG(T, evaluation_config, eval_schema, 0, "evaluation"),
    F_STR(T, results_dir, NULL, EXT, "default results directory (-r wins)"),
};
#undef T
static const struct deft_spec_schema frcnn_schema = SCHEMA(struct deft_frcnn_config, "Experiment", top_fields);

/* ---- checks ------------------------------------------------------------------------- */

static enum deft_status bad(const struct deft_spec_origin *o, const char *path, const char *fmt, double a, double b) {
    char at[300], msg[300];
    deft_spec_origin_where_or(o, path, strchr(path, '.') ? "" : path, at, sizeof at);
    snprintf(msg, sizeof msg, fmt, a, b);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: %s", *at ? at : o->file, path, msg);
}

static enum deft_status both(const struct deft_spec_origin *o, const char *a, const char *b) {
    char at[300];
    deft_spec_origin_where(o, b, at, sizeof at);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s and %s are alternatives, both are set: keep one", at, a, b);
}

static const char *const backbones[] = {
    "resnet:10", "resnet:18", "resnet:34", "resnet:50", "resnet:101", "vgg16", "vgg:16", "vgg:19", "googlenet",
    "mobilenet_v1", "mobilenet_v2", "darknet:19", "darknet:53", "resnet101", "efficientnet:b0", "efficientnet:b1",
    "efficientnet:b2", "efficientnet:b3", "efficientnet:b4", "efficientnet:b5", "efficientnet:b6", "efficientnet:b7"};

static enum deft_status check_model(struct deft_frcnn_config *c, const struct deft_spec_origin *o) {
    struct deft_frcnn_model_config *m = &c->model_config;
    struct deft_frcnn_input_image *im = &m->input_image_config;
    char at[300];
    int found = -1;
    for (int i = 0; i < N_OF(backbones); i++)
        if (!strcmp(backbones[i], m->arch)) found = i;
    if (found < 0) {
        deft_spec_origin_where(o, "model_config.arch", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.arch '%.40s' is not a Faster R-CNN backbone "
                              "(resnet:18, resnet:34, resnet:50, resnet:101, vgg:16, vgg16, mobilenet_v2, "
                              "efficientnet:b0, ... as TAO writes them)", at, m->arch);
    }
    const char *colon = strchr(m->arch, ':');
    c->backbone = deft_strdup(m->arch);
    if (!c->backbone) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (colon) c->backbone[colon - m->arch] = 0, c->nlayers = atoi(colon + 1);
    const char *ord = im->image_channel_order;
    if (strcmp(ord, "bgr") && strcmp(ord, "rgb") && strcmp(ord, "l"))
        return bad(o, "model_config.input_image_config.image_channel_order", "must be bgr, rgb or l", 0, 0);
    bool gray = im->image_type == DEFT_FRCNN_GRAY_SCALE;
    const char *need[3] = {"r", "g", "b"};
    for (int k = 0; k < (gray ? 1 : 3); k++) {
        const char *key = gray ? "l" : need[k];
        bool have = false;
        for (int i = 0; i < im->n_image_channel_mean; i++)
            if (!strcmp(im->image_channel_mean[i].key, key)) {
                have = true;
                double v = im->image_channel_mean[i].value;
                if (!(v > 0 && v < 255))
                    return bad(o, "model_config.input_image_config.image_channel_mean", "values must be in (0, 255), "
                               "got %g", v, 0);
            }
        if (!have)
            return bad(o, "model_config.input_image_config.image_channel_mean",
                       gray ? "needs key 'l' for grayscale input" : "needs keys 'r', 'g' and 'b' for RGB input", 0, 0);
    }
    const struct deft_frcnn_anchor_box *ab = &m->anchor_box_config;
    if (ab->n_scale == 0) return bad(o, "model_config.anchor_box_config.scale", "give at least one anchor scale", 0, 0);
    if (ab->n_ratio == 0) return bad(o, "model_config.anchor_box_config.ratio", "give at least one anchor ratio", 0, 0);
    if (im->has_size_height_width) {
        c->input_w = im->size_height_width.width, c->input_h = im->size_height_width.height;
        c->fmap_w = (c->input_w + m->rpn_stride - 1) / m->rpn_stride;
        c->fmap_h = (c->input_h + m->rpn_stride - 1) / m->rpn_stride;
        c->n_anchors = deft_frcnn_anchor_count(ab->n_scale, ab->n_ratio, c->fmap_h, c->fmap_w);
    }
    static const struct { const char *p; int hi; } fz[] = {{"resnet", 3}, {"vgg", 5}, {"googlenet", 7},
                                                          {"mobilenet_v1", 11}, {"mobilenet_v2", 13}, {"darknet", 5}};
    for (int i = 0; i < m->n_freeze_blocks; i++)
        for (int k = 0; k < N_OF(fz); k++)
            if (!strncmp(m->arch, fz[k].p, strlen(fz[k].p)) &&
                (m->freeze_blocks[i] != floor(m->freeze_blocks[i]) || m->freeze_blocks[i] > fz[k].hi ||
                 (fz[k].hi != 5 && m->freeze_blocks[i] < 0) || (k == 1 && m->freeze_blocks[i] < 1)))
                return bad(o, "model_config.freeze_blocks", "block %g is not a block of this backbone (0..%g)",
                           m->freeze_blocks[i], fz[k].hi);
    return DEFT_OK;
}

static enum deft_status check_training(struct deft_frcnn_config *c, const struct deft_spec_origin *o) {
    struct deft_frcnn_training_config *t = &c->training_config;
    if (!(t->classifier_min_overlap < t->classifier_max_overlap))
        return bad(o, "training_config.classifier_min_overlap", "must be below classifier_max_overlap (%g >= %g)",
                   t->classifier_min_overlap, t->classifier_max_overlap);
    if (!(t->rpn_min_overlap < t->rpn_max_overlap))
        return bad(o, "training_config.rpn_min_overlap", "must be below rpn_max_overlap (%g >= %g)", t->rpn_min_overlap,
                   t->rpn_max_overlap);
    static const char *const k4[4] = {"x", "y", "w", "h"};
    static const double d4[4] = {10, 10, 5, 5};
    for (int k = 0; k < 4; k++) {
        t->regr_std[k] = t->n_classifier_regr_std ? 0 : d4[k];
        for (int i = 0; i < t->n_classifier_regr_std; i++)
            if (!strcmp(t->classifier_regr_std[i].key, k4[k])) t->regr_std[k] = t->classifier_regr_std[i].value;
        if (!(t->regr_std[k] > 0))
            return bad(o, "training_config.classifier_regr_std", "needs x, y, w and h, each > 0 (TAO: 10, 10, 5, 5)", 0, 0);
    }
    if (!(t->rpn_nms_max_boxes < t->rpn_pre_nms_top_N))
        return bad(o, "training_config.rpn_nms_max_boxes", "must be below rpn_pre_nms_top_N (%g >= %g)",
                   t->rpn_nms_max_boxes, t->rpn_pre_nms_top_N);
    if (t->rpn_nms_overlap_threshold >= 1) return bad(o, "training_config.rpn_nms_overlap_threshold", "must be < 1", 0, 0);
    if (t->regularizer.type != DEFT_FRCNN_NO_REG && !(t->regularizer.weight > 0 && t->regularizer.weight < 1))
        return bad(o, "training_config.regularizer.weight", "must be in (0, 1), got %g", t->regularizer.weight, 0);
    int given = !!*t->retrain_pruned_model + !!*t->pretrained_weights + !!*t->resume_from_model;
    if (*t->retrain_pruned_model && *t->resume_from_model)
        return both(o, "training_config.retrain_pruned_model", "training_config.resume_from_model");
    (void)given;
    if (t->has_early_stopping && strcmp(t->early_stopping.monitor, "loss"))
        return bad(o, "training_config.early_stopping.monitor", "only 'loss' is supported", 0, 0);
    return DEFT_OK;
}

static enum deft_status check_nms(const struct deft_spec_origin *o, const char *blk, int pre, int post, double rpn_iou,
                                  double cls_iou, double conf) {
    char p[96];
    snprintf(p, sizeof p, "%s.rpn_nms_max_boxes", blk);
    if (!(post < pre)) return bad(o, p, "must be below rpn_pre_nms_top_N (%g >= %g)", post, pre);
    snprintf(p, sizeof p, "%s.rpn_nms_overlap_threshold", blk);
    if (rpn_iou >= 1) return bad(o, p, "must be < 1", 0, 0);
    snprintf(p, sizeof p, "%s.classifier_nms_overlap_threshold", blk);
    if (cls_iou >= 1) return bad(o, p, "must be < 1", 0, 0);
    snprintf(p, sizeof p, "%s.object_confidence_thres", blk);
    if (conf >= 1) return bad(o, p, "must be < 1", 0, 0);
    return DEFT_OK;
}

static enum deft_status check_eval(struct deft_frcnn_config *c, const struct deft_spec_origin *o) {
    struct deft_frcnn_evaluation_config *e = &c->evaluation_config;
    const struct deft_frcnn_inference_config *in = &c->inference_config;
    enum deft_status s = check_nms(o, "evaluation_config", e->rpn_pre_nms_top_N, e->rpn_nms_max_boxes,
                                   e->rpn_nms_overlap_threshold, e->classifier_nms_overlap_threshold,
                                   e->object_confidence_thres);
    if (!s) s = check_nms(o, "inference_config", in->rpn_pre_nms_top_N, in->rpn_nms_max_boxes,
                          in->rpn_nms_overlap_threshold, in->classifier_nms_overlap_threshold,
                          in->object_confidence_thres);
    if (s) return s;
    if (in->bbox_visualize_threshold >= 1) return bad(o, "inference_config.bbox_visualize_threshold", "must be < 1", 0, 0);
    if (e->has_gt_matching_iou_threshold_range && e->gt_matching_iou_threshold > 0)
        return both(o, "evaluation_config.gt_matching_iou_threshold_range", "evaluation_config.gt_matching_iou_threshold");
    if (e->has_gt_matching_iou_threshold_range) {
        const struct deft_frcnn_iou_range *r = &e->gt_matching_iou_threshold_range;
        if (!(r->start < r->end) || r->step >= 1)
            return bad(o, "evaluation_config.gt_matching_iou_threshold_range", "needs 0 < start < end <= 1 and 0 < step "
                       "< 1 (start %g, end %g)", r->start, r->end);
        e->n_ious = 0;
        for (int i = 0; e->n_ious < 64; i++) { /* numpy.arange(start, end, step) */
            double v = r->start + i * r->step;
            if (v >= r->end) break;
            e->ious[e->n_ious++] = v;
        }
    } else {
        if (e->gt_matching_iou_threshold <= 0 || e->gt_matching_iou_threshold >= 1)
            return bad(o, "evaluation_config.gt_matching_iou_threshold", "give an IoU in (0, 1), or "
                       "gt_matching_iou_threshold_range", 0, 0);
        e->ious[0] = e->gt_matching_iou_threshold, e->n_ious = 1;
    }
    return DEFT_OK;
}

static enum deft_status check_aug(struct deft_frcnn_config *c, const struct deft_spec_origin *o) {
    const struct deft_frcnn_preprocessing *p = &c->augmentation_config.preprocessing;
    int ch = c->model_config.input_image_config.image_type == DEFT_FRCNN_GRAY_SCALE ? 1 : 3;
    if (c->input_w && p->output_image_width && p->output_image_width != c->input_w)
        return bad(o, "augmentation_config.preprocessing.output_image_width", "%g differs from model_config's input "
                   "width %g", p->output_image_width, c->input_w);
    if (c->input_h && p->output_image_height && p->output_image_height != c->input_h)
        return bad(o, "augmentation_config.preprocessing.output_image_height", "%g differs from model_config's input "
                   "height %g", p->output_image_height, c->input_h);
    if (p->output_image_channel != ch)
        return bad(o, "augmentation_config.preprocessing.output_image_channel", "%g differs from the image_type's %g "
                   "channels", p->output_image_channel, ch);
    const struct deft_frcnn_spatial *sp = &c->augmentation_config.spatial_augmentation;
    if (sp->zoom_min > sp->zoom_max)
        return bad(o, "augmentation_config.spatial_augmentation.zoom_min", "is above zoom_max (%g > %g)", sp->zoom_min,
                   sp->zoom_max);
    return DEFT_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_classes(struct deft_frcnn_dataset_config *d) {
    for (int i = 0; d->class_names && i < d->n_classes; i++) deft_free(d->class_names[i]);
    deft_free(d->class_names);
    d->class_names = NULL, d->n_classes = 0;
}

/* TAO: sorted(set(values)) + ['background']; no class may be called background. */
static enum deft_status check_dataset(struct deft_frcnn_config *c, const struct deft_spec_origin *o) {
    struct deft_frcnn_dataset_config *d = &c->dataset_config;
    const char *ext = d->image_extension;
    if (strcasecmp(ext, "jpg") && strcasecmp(ext, "jpeg") && strcasecmp(ext, "png"))
        return bad(o, "dataset_config.image_extension", "must be jpg, jpeg or png", 0, 0);
    if (d->n_data_sources == 0) return bad(o, "dataset_config.data_sources", "give at least one data source", 0, 0);
    if (d->has_validation_data_source && d->validation_fold > 0)
        return both(o, "dataset_config.validation_fold", "dataset_config.validation_data_source");
    int n = d->n_target_class_mapping;
    d->class_names = deft_calloc((size_t)n + 1, sizeof *d->class_names);
    if (!d->class_names) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (!strcasecmp(d->target_class_mapping[i].key, "background") ||
            !strcasecmp(d->target_class_mapping[i].value, "background"))
            return bad(o, "dataset_config.target_class_mapping", "must not name a 'background' class (it is added "
                       "last, as TAO does)", 0, 0);
        char *l = deft_strdup(d->target_class_mapping[i].value);
        if (!l) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        for (char *p = l; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        bool dup = false;
        for (int j = 0; j < d->n_classes && !dup; j++) dup = !strcmp(d->class_names[j], l);
        if (dup) deft_free(l);
        else d->class_names[d->n_classes++] = l;
    }
    qsort(d->class_names, (size_t)d->n_classes, sizeof *d->class_names, cmp_str);
    d->class_names[d->n_classes] = deft_strdup("background");
    if (!d->class_names[d->n_classes]) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    d->n_classes++;
    return DEFT_OK;
}

static enum deft_status resolve(void *obj, const struct deft_spec_origin *o) {
    struct deft_frcnn_config *c = obj;
    enum deft_status s = check_model(c, o);
    if (!s) s = check_training(c, o);
    if (!s) s = check_eval(c, o);
    if (!s) s = check_aug(c, o);
    if (!s) s = check_dataset(c, o);
    return s;
}

/* ---- load / free / print ---------------------------------------------------------------- */

void deft_frcnn_config_free(struct deft_frcnn_config *c) {
    if (!c) return;
    free_classes(&c->dataset_config);
    deft_spec_release(&frcnn_schema, c);
    deft_free(c->backbone);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

enum deft_status deft_frcnn_config_parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                                         const char *const *overrides, int n_overrides, struct deft_frcnn_config *out) {
    memset(out, 0, sizeof *out);
    enum deft_status s = deft_spec_parse_resolved(&frcnn_schema, out, text, n, name, fmt, overrides, n_overrides, HELP_CMD,
                                                  resolve, &out->source_path, &out->ignored_fields, &out->format);
    if (s) {
        deft_frcnn_config_free(out);
        return s;
    }
    return DEFT_OK;
}

enum deft_status deft_frcnn_config_load(const char *path, const char *const *overrides, int n_overrides,
                                        struct deft_frcnn_config *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t n = 0;
    enum deft_status s = deft_spec_read_file(path, &text, &n);
    if (s) return s;
    s = deft_frcnn_config_parse(text, n, path, DEFT_SPEC_FORMAT_AUTO, overrides, n_overrides, out);
    deft_free(text);
    return s;
}

void deft_frcnn_config_print(const struct deft_frcnn_config *c, FILE *f) {
    fprintf(f, "# deft faster_rcnn spec, resolved%s%s\n", c->source_path ? " from " : "",
            c->source_path ? c->source_path : "");
    struct deft_frcnn_config d;
    memset(&d, 0, sizeof d);
    bool have_d = deft_spec_defaults(&frcnn_schema, &d) == DEFT_OK;
    deft_spec_print(&frcnn_schema, c, have_d ? &d : NULL, f, 0);
    deft_spec_release(&frcnn_schema, &d);
}

void deft_frcnn_config_help(FILE *f) {
    fprintf(f, "Faster R-CNN spec fields (TAO faster_rcnn names; .txt = TAO protobuf text, .yaml = the same fields).\n\n");
    fprintf(f, "%-48s %-12s %-12s %s\n", "field", "type", "default", "meaning");
    deft_spec_help(&frcnn_schema, f, "");
}

void deft_frcnn_config_summary(const struct deft_frcnn_config *c, FILE *f) {
    const struct deft_frcnn_model_config *m = &c->model_config;
    const struct deft_frcnn_training_config *t = &c->training_config;
    const struct deft_frcnn_evaluation_config *e = &c->evaluation_config;
    const struct deft_frcnn_dataset_config *d = &c->dataset_config;
    fprintf(f, "Faster R-CNN experiment from %s (%s)\n", c->source_path ? c->source_path : "memory",
            deft_spec_format_name(c->format));
    fprintf(f, "  %-13s: %s%s%s%s, RoI crop %d%s\n", "network", m->arch, m->freeze_bn ? ", freeze_bn" : "",
            m->all_projections ? ", all_projections" : "", m->use_pooling ? ", pooling" : "",
            m->roi_pooling_config.pool_size, m->roi_pooling_config.pool_size_2x ? " (2x then pooled)" : "");
    if (c->input_w)
        fprintf(f, "  %-13s: %d x %d, %s, scaling %g\n", "input", c->input_w, c->input_h,
                m->input_image_config.image_channel_order, m->input_image_config.image_scaling_factor);
    else
        fprintf(f, "  %-13s: shorter side %d, %s\n", "input", m->input_image_config.size_min.min,
                m->input_image_config.image_channel_order);
    fprintf(f, "  %-13s: stride %d, per cell %d (scales", "anchors", m->rpn_stride,
            m->anchor_box_config.n_scale * m->anchor_box_config.n_ratio);
    for (int i = 0; i < m->anchor_box_config.n_scale; i++) fprintf(f, " %g", m->anchor_box_config.scale[i]);
    fprintf(f, " x ratios");
    for (int i = 0; i < m->anchor_box_config.n_ratio; i++) fprintf(f, " %g", m->anchor_box_config.ratio[i]);
    fprintf(f, ")");
    if (c->n_anchors) fprintf(f, ", map %dx%d, %ld anchors", c->fmap_h, c->fmap_w, c->n_anchors);
    fputc('\n', f);
    fprintf(f, "  %-13s: w x h:", "anchor shapes");
    for (int i = 0; i < m->anchor_box_config.n_scale; i++)
        for (int k = 0; k < m->anchor_box_config.n_ratio; k++) {
            double q = sqrt(m->anchor_box_config.ratio[k]);
            fprintf(f, " %.0fx%.0f", m->anchor_box_config.scale[i] * q, m->anchor_box_config.scale[i] / q);
        }
    fputc('\n', f);
    fprintf(f, "  %-13s: %d:", "classes", d->n_classes);
    for (int i = 0; i < d->n_classes; i++) fprintf(f, "%s %s", i ? "," : "", d->class_names[i]);
    fputc('\n', f);
    fprintf(f, "  %-13s: RPN positive IoU >= %g, negative < %g, %d anchors/image; RCNN positive >= %g, negative "
            "[%g, %g), %d RoIs/image; regr std %g %g %g %g\n", "targets", t->rpn_max_overlap, t->rpn_min_overlap,
            t->rpn_mini_batch, t->classifier_max_overlap, t->classifier_min_overlap, t->classifier_max_overlap,
            m->roi_mini_batch, t->regr_std[0], t->regr_std[1], t->regr_std[2], t->regr_std[3]);
    fprintf(f, "  %-13s: train pre-NMS %d -> NMS %g -> %d\n", "proposals", t->rpn_pre_nms_top_N,
            t->rpn_nms_overlap_threshold, t->rpn_nms_max_boxes);
    fprintf(f, "  %-13s: batch %d, %d epochs, lambdas rpn %g/%g, rcnn %g/%g%s\n", "training", t->batch_size_per_gpu,
            t->num_epochs, t->lambda_rpn_regr, t->lambda_rpn_class, t->lambda_cls_regr, t->lambda_cls_class,
            t->enable_qat ? ", QAT" : "");
    fprintf(f, "  %-13s: %s, IoU", "evaluation", e->use_voc07_11point_metric ? "VOC07 11-point AP" : "all-point AP");
    for (int i = 0; i < e->n_ious; i++) fprintf(f, " %g", e->ious[i]);
    fputc('\n', f);
    for (int i = 0; i < d->n_data_sources; i++)
        fprintf(f, "  %-13s: %s%s, images %s\n", i ? "" : "train data",
                *d->data_sources[i].label_directory_path ? "labels " : "TFRecords ",
                *d->data_sources[i].label_directory_path ? d->data_sources[i].label_directory_path
                                                          : d->data_sources[i].tfrecords_path,
                d->data_sources[i].image_directory_path);
    if (c->ignored_fields && *c->ignored_fields) fprintf(f, "  %-13s: %s\n", "not used yet", c->ignored_fields);
}

/* deft/yolo_spec.h - the YOLOv4 / YOLOv4-tiny experiment spec: TAO's
 * yolo_v4 Experiment (protobuf text, exactly as TAO writes it) or the same
 * fields as deft YAML, into one typed, validated config.
 *
 *     struct deft_yolo_config cfg;
 *     const char *sets[] = {"training_config.num_epochs=5"};   // --set, after the file
 *     enum deft_status s = deft_yolo_config_load("yolo_v4_train_resnet18_kitti.txt", sets, 1, &cfg);
 *     if (s) { fprintf(stderr, "deft: %s\n", deft_last_error()); return deft_status_exit_code(s); }
 *     deft_yolo_config_summary(&cfg, stdout);                    // --dry_run
 *     ... cfg.yolov4_config.anchors[DEFT_YOLO_BIG][i].w, cfg.dataset_config.class_names ...
 *     deft_yolo_config_free(&cfg);
 *
 * The YAML form uses the same names and nesting:
 *
 *     yolov4_config:
 *       arch: resnet
 *       nlayers: 18
 *       big_anchor_shape: "[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]"
 *       mid_anchor_shape: "[(42.99, 31.91), (79.57, 31.75), (56.80, 56.93)]"
 *       small_anchor_shape: "[(15.60, 13.88), (30.25, 20.25), (20.67, 49.63)]"
 *     training_config:
 *       batch_size_per_gpu: 8
 *       num_epochs: 80
 *       learning_rate:
 *         soft_start_cosine_annealing_schedule: {min_learning_rate: 1e-7, max_learning_rate: 1e-4, soft_start: 0.3}
 *       optimizer:
 *         adam: {epsilon: 1e-7, beta1: 0.9, beta2: 0.999}
 *     augmentation_config: {output_width: 416, output_height: 416}
 *     dataset_config:
 *       data_sources:
 *         - {label_directory_path: data/train/labels, image_directory_path: data/train/images}
 *       validation_data_sources:
 *         - {label_directory_path: data/labels, image_directory_path: data/images,
 *            split_list_path: data/ImageSets/Main/val.txt}       # deft: a split as a list of stems
 *       target_class_mapping: {car: car, van: car, pedestrian: pedestrian}
 *
 * Defaults: a field TAO's checks accept at proto3's zero keeps that zero (the
 * same spec means the same training in both); a field TAO rejects at zero
 * (box_matching_iou, saturation, output sizes, batch sizes, NMS IoU, ...)
 * defaults to the value of TAO's sample specs. `--help-spec` lists them.
 *
 * Errors: DEFT_ERR_PARSE (not protobuf text / YAML) and DEFT_ERR_INVALID_ARG
 * (unknown key with "did you mean", wrong type, out of range, bad anchors,
 * missing field, TFRecords-only data source, ...): exit status 2, message
 * "file:line:col: ..." (or "--set 'k=v': ...") naming the key and the fix.
 * Strings are never NULL ("" when unset); all memory belongs to the struct.
 */
#ifndef DEFT_YOLO_SPEC_H
#define DEFT_YOLO_SPEC_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Heads: big anchors go to the stride-32 output, mid to 16, small to 8. */
enum { DEFT_YOLO_BIG = 0, DEFT_YOLO_MID = 1, DEFT_YOLO_SMALL = 2, DEFT_YOLO_HEADS = 3 };
#define DEFT_YOLO_MAX_ANCHORS 16 /* per head */

/* An anchor in network-input pixels (TAO divides by output_width/height). */
struct deft_yolo_anchor { double w, h; };

struct deft_yolo_v4_config {
    char *big_anchor_shape, *mid_anchor_shape, *small_anchor_shape; /* "[(w, h), ...]" as written */
    double matching_neutral_box_iou; /* ignore threshold: no negative loss above this IoU */
    double box_matching_iou;         /* an anchor with shape IoU above this also takes the GT */
    char *arch;                      /* resnet, cspdarknet, cspdarknet_tiny, mobilenet_v2, ... */
    int nlayers;                     /* depth for families (resnet 18, cspdarknet 53, ...) */
    int arch_conv_blocks;            /* 0..2 (read by YOLOv3 only) */
    double loss_loc_weight, loss_neg_obj_weights, loss_class_weights;
    double *freeze_blocks;           /* TAO: repeated float; whole numbers checked */
    int n_freeze_blocks;
    bool freeze_bn, force_relu;
    char *activation;                /* "" / leaky_relu (default), relu, mish */
    double focal_loss_alpha, focal_loss_gamma; /* focal loss when both > 0 */
    double label_smoothing;
    double big_grid_xy_extend, mid_grid_xy_extend, small_grid_xy_extend;
    /* resolved */
    int n_heads;                     /* 2 for cspdarknet_tiny, else 3 */
    bool is_tiny;                    /* cspdarknet_tiny or cspdarknet_tiny_3l */
    int n_anchors[DEFT_YOLO_HEADS];
    struct deft_yolo_anchor anchors[DEFT_YOLO_HEADS][DEFT_YOLO_MAX_ANCHORS];
};

enum deft_yolo_lr_kind { DEFT_YOLO_LR_SOFT_START_ANNEALING = 0, DEFT_YOLO_LR_SOFT_START_COSINE };
/* Progress p in [0, 1] over the whole run. Soft-start annealing: exponential
 * ramp min -> max until soft_start, hold, then down to min from annealing.
 * Cosine: ramp until soft_start, then cosine from max to min. */
struct deft_yolo_lr_anneal { double min_learning_rate, max_learning_rate, soft_start, annealing; };
struct deft_yolo_lr_cosine { double max_learning_rate, soft_start, min_learning_rate; };
struct deft_yolo_lr_config {
    enum deft_yolo_lr_kind kind; /* resolved from the block given */
    bool has_soft_start_annealing_schedule, has_soft_start_cosine_annealing_schedule;
    struct deft_yolo_lr_anneal soft_start_annealing_schedule;
    struct deft_yolo_lr_cosine soft_start_cosine_annealing_schedule;
};

enum deft_yolo_optim_kind { DEFT_YOLO_OPTIM_ADAM = 0, DEFT_YOLO_OPTIM_SGD, DEFT_YOLO_OPTIM_RMSPROP };
struct deft_yolo_adam { double epsilon, beta1, beta2; bool amsgrad; };
struct deft_yolo_sgd { double momentum; bool nesterov; };
struct deft_yolo_rmsprop { double rho, momentum, epsilon; bool centered; };
struct deft_yolo_optimizer_config {
    enum deft_yolo_optim_kind kind; /* resolved */
    bool has_adam, has_sgd, has_rmsprop;
    struct deft_yolo_adam adam;
    struct deft_yolo_sgd sgd;
    struct deft_yolo_rmsprop rmsprop;
};

enum deft_yolo_reg_type { DEFT_YOLO_REG_NONE = 0, DEFT_YOLO_REG_L1, DEFT_YOLO_REG_L2 };
/* Keras semantics: L1 adds weight * sum|w| to the loss, L2 weight * sum w^2. */
struct deft_yolo_regularizer { enum deft_yolo_reg_type type; double weight; };
struct deft_yolo_cost_scaling { bool enabled; double initial_exponent, increment, decrement; };
struct deft_yolo_early_stopping { char *monitor; double min_delta; int patience; };
struct deft_yolo_visualizer { bool enabled; int num_images; bool weight_histograms; };

struct deft_yolo_training_config {
    int batch_size_per_gpu, num_epochs;
    struct deft_yolo_lr_config learning_rate;
    struct deft_yolo_regularizer regularizer;
    struct deft_yolo_optimizer_config optimizer;
    struct deft_yolo_cost_scaling cost_scaling; /* TAO mixed precision (ignored) */
    int checkpoint_interval;
    bool enable_qat;
    char *resume_model_path, *pretrain_model_path, *pruned_model_path; /* at most one */
    char *pretrained_model_path;  /* deft: alias of pretrain_model_path (folded into it) */
    int max_queue_size, n_workers;
    bool use_multiprocessing;
    bool has_early_stopping;
    struct deft_yolo_early_stopping early_stopping;
    struct deft_yolo_visualizer visualizer; /* TAO (ignored) */
    bool model_ema;
    /* deft: quantization-aware training details (enable_qat) */
    double qat_ema_decay;
    bool qat_freeze_bn, qat_fusion;
    char **qat_exclude;           /* layer-name patterns kept float (default: the head convs) */
    int n_qat_exclude;
};

enum deft_yolo_ap_mode { DEFT_YOLO_AP_SAMPLE = 0, DEFT_YOLO_AP_INTEGRATE };
struct deft_yolo_eval_config {
    enum deft_yolo_ap_mode average_precision_mode; /* SAMPLE = VOC 11-point, INTEGRATE = all-point */
    int batch_size;
    double matching_iou_threshold;
    bool visualize_pr_curve;
};

struct deft_yolo_nms_config {
    double confidence_threshold, clustering_iou_threshold;
    int top_k;
    int infer_nms_score_bits;
    bool force_on_cpu;
};

struct deft_yolo_augmentation_config {
    double hue, saturation, exposure, vertical_flip, horizontal_flip, jitter;
    int output_width, output_height, output_channel, output_depth;
    int randomize_input_shape_period;
    double mosaic_prob, mosaic_min_ratio;
    struct deft_spec_kv *image_mean; /* keys r, g, b (or l); 0-255 units */
    int n_image_mean;
};

/* One data source: KITTI labels in label_directory_path for the images in
 * image_directory_path (deft reads labels directly; tfrecords_path alone is
 * refused). split_list_path (deft) names a file of image stems, one a line,
 * that selects this split from the two directories. */
struct deft_yolo_data_source {
    char *label_directory_path, *tfrecords_path, *image_directory_path, *root_path;
    double source_weight;
    char *split_list_path;
};

struct deft_yolo_dataset_config {
    struct deft_yolo_data_source *data_sources;
    int n_data_sources;
    struct deft_spec_str_kv *target_class_mapping; /* label name -> class name, as written */
    int n_target_class_mapping;
    int validation_fold;          /* TAO TFRecords folds (ignored) */
    struct deft_yolo_data_source *validation_data_sources;
    int n_validation_data_sources;
    bool include_difficult_in_training;
    char *type;                   /* "" or kitti (deft: coco, voc) */
    char *image_extension;        /* "" = any of jpg/jpeg/png/bmp */
    bool is_monochrome;
    /* resolved: sorted, unique, lower-cased target names (TAO's class order) */
    char **class_names;
    int n_classes;
};

struct deft_yolo_class_weighting_config {
    struct deft_spec_kv *class_weighting; /* class name -> weight */
    int n_class_weighting;
    bool enable_auto;             /* TAO placeholder (ignored) */
};

struct deft_yolo_config {
    struct deft_yolo_v4_config yolov4_config;
    struct deft_yolo_training_config training_config;
    struct deft_yolo_eval_config eval_config;
    struct deft_yolo_nms_config nms_config;
    bool has_nms_config;          /* the spec has an nms_config block (export needs one) */
    struct deft_yolo_augmentation_config augmentation_config;
    struct deft_yolo_dataset_config dataset_config;
    struct deft_yolo_class_weighting_config class_weighting_config;
    int random_seed;
    char *results_dir;            /* deft: default results directory (-r wins) */
    /* where it came from (not part of the spec) */
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;         /* TAO fields met that deft does not act on ("" none) */
};

/* Read, check and resolve a spec; overrides "key.path=value" apply after the
 * file in order (repeated blocks by index: dataset_config.data_sources.0.
 * image_directory_path=...). On failure *out is zeroed and needs no free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_yolo_config_load(const char *path,
                                                              const char *const *overrides,
                                                              int n_overrides,
                                                              struct deft_yolo_config *out);
/* Same from memory; `name` is used in messages and, with fmt AUTO, its
 * extension picks the flavour. */
DEFT_API DEFT_NODISCARD enum deft_status deft_yolo_config_parse(const char *text, size_t n,
                                                               const char *name,
                                                               enum deft_spec_format fmt,
                                                               const char *const *overrides,
                                                               int n_overrides,
                                                               struct deft_yolo_config *out);
DEFT_API void deft_yolo_config_free(struct deft_yolo_config *cfg);
/* The resolved config as deft YAML (it loads back to the same config). */
DEFT_API void deft_yolo_config_print(const struct deft_yolo_config *cfg, FILE *f);
/* `--help-spec`: every field with type, default, range and meaning. */
DEFT_API void deft_yolo_config_help(FILE *f);
/* `--dry_run`: network, input, anchors per head in pixels, classes, batch,
 * epochs, optimizer, LR schedule, data sources, NMS and evaluation. */
DEFT_API void deft_yolo_config_summary(const struct deft_yolo_config *cfg, FILE *f);

/* Anchor text "[(w, h), (w, h)]" (brackets optional; "" = none) into out[]:
 * *n anchors. On failure DEFT_ERR_INVALID_ARG with deft_last_error() saying
 * what is wrong and *err_at the byte offset in text. Sizes must be > 0. */
DEFT_API DEFT_NODISCARD enum deft_status deft_yolo_parse_anchors(const char *text,
                                                                struct deft_yolo_anchor *out, int max,
                                                                int *n, int *err_at);

/* Check that the directories and files the spec names for `train` exist
 * (data sources, split lists, the model to start from). strict: the first
 * missing one is DEFT_ERR_NOT_FOUND naming its field; otherwise warnings and
 * still DEFT_ERR_NOT_FOUND (a dry run's verdict). */
DEFT_API DEFT_NODISCARD enum deft_status deft_yolo_config_validate_paths(const struct deft_yolo_config *cfg,
                                                                        bool strict);

#ifdef __cplusplus
}
#endif
#endif

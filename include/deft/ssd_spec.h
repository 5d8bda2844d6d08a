/* deft/ssd_spec.h - the SSD / DSSD and RetinaNet experiment specs: TAO's ssd
 * and retinanet Experiments (protobuf text as TAO writes it, or the same
 * fields as deft YAML) into one typed, validated config with the priors
 * resolved per predictor layer. RetinaNet's spec is SSD's with
 * retinanet_config in place of ssd_config (five layers P3-P7, sub-octave
 * anchors, focal loss); deft_retinanet_config_load reads it into the same
 * struct (is_retinanet, n_layers 5, retinanet_config's fields in ssd_config).
 *
 *     struct deft_ssd_config cfg;
 *     if (deft_ssd_config_load("ssd_train_resnet18_kitti.txt", NULL, 0, &cfg)) ...deft_last_error()...
 *     deft_ssd_config_summary(&cfg, stdout);            // --dry_run: layers, priors, count
 *     deft_ssd_config_free(&cfg);
 *
 * training_config, nms_config and dataset_config are TAO's common protos,
 * shared with yolo_v4 (struct deft_yolo_*, one schema table each). The list
 * fields (aspect_ratios, aspect_ratios_global, scales, steps, offsets,
 * variances) are strings holding Python lists, as in TAO; arithmetic in
 * them ("1.0/3.0") is evaluated by deft_spec_eval_list (numbers, + - * /,
 * parentheses: nothing else). A spec giving both of two alternatives
 * (aspect_ratios and aspect_ratios_global, scales and min_scale/max_scale)
 * is refused naming both; TAO would silently use one.
 * Errors: exit status 2 (DEFT_ERR_PARSE / DEFT_ERR_INVALID_ARG) with
 * "file:line:col: ..." naming the field.
 */
#ifndef DEFT_SSD_SPEC_H
#define DEFT_SSD_SPEC_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/spec.h"
#include "deft/yolo_spec.h"
#include "deft/det_priors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_SSD_LAYERS 6   /* TAO's SSD always predicts from six feature maps (RetinaNet: five) */
#define DEFT_RETINANET_LAYERS 5
#define DEFT_SSD_MAX_AR 16  /* aspect ratios per layer */

/* One element of a spec list: a number, or a list/tuple of numbers. */
struct deft_spec_list_item {
    bool is_seq;
    int n;                  /* numbers in v (1 for a number) */
    double v[DEFT_SSD_MAX_AR];
};
/* Evaluate the Python list in `text` ("[1.0, 2.0, 1.0/3.0]", "[[1,2],[0.5]]",
 * "[(8, 8), 16]"; brackets optional). Numbers, + - * /, unary minus and
 * parentheses; one level of nested lists or tuples. *n items into out (max).
 * DEFT_ERR_INVALID_ARG with *err_at the byte offset on anything else
 * (names, calls, division by zero, non-finite results). */
DEFT_API DEFT_NODISCARD enum deft_status deft_spec_eval_list(const char *text, struct deft_spec_list_item *out,
                                                            int max, int *n, int *err_at);

struct deft_ssd_net_config {
    char *aspect_ratios, *aspect_ratios_global, *scales;
    double min_scale, max_scale;
    bool two_boxes_for_ar1;
    char *steps;
    bool clip_boxes;
    char *variances, *offsets, *mean_color;
    char *arch;
    int nlayers, pred_num_channels;
    double alpha, neg_pos_ratio, pos_iou_thresh, neg_iou_thresh;
    double *freeze_blocks;
    int n_freeze_blocks;
    bool freeze_bn;
    /* retinanet_config only */
    double loss_loc_weight, focal_loss_alpha, focal_loss_gamma;
    int n_kernels, feature_size, n_anchor_levels;
};

/* A predictor layer, resolved (sizes for the spec's input). */
struct deft_ssd_layer {
    int stride;                      /* nominal backbone stride (8, 16, ... 256) */
    int fmap_h, fmap_w;
    double scale, next_scale;
    double ar[DEFT_SSD_MAX_AR];
    int n_ar;
    double step_h, step_w;           /* 0: input / map */
    double offset_h, offset_w;
    int boxes_per_cell;
};

struct deft_ssd_augmentation_config {
    int output_width, output_height, output_channel;
    double random_crop_min_scale, random_crop_max_scale, random_crop_min_ar, random_crop_max_ar;
    double zoom_out_min_scale, zoom_out_max_scale;
    int brightness;
    double contrast, saturation;
    int hue;
    double random_flip;
    struct deft_spec_kv *image_mean;
    int n_image_mean;
};

struct deft_ssd_eval_config {
    int validation_period_during_training;
    enum deft_yolo_ap_mode average_precision_mode;
    int batch_size;
    double matching_iou_threshold;
    bool visualize_pr_curve;
};

struct deft_ssd_config {
    struct deft_ssd_net_config ssd_config, dssd_config; /* oneof: the one given is copied into ssd_config */
    bool has_ssd_config, has_dssd_config;
    bool is_dssd;
    struct deft_ssd_net_config retinanet_config; /* retinanet specs: copied into ssd_config */
    bool is_retinanet;
    int n_layers;                                /* predictor layers: 6 (SSD), 5 (RetinaNet) */
    struct deft_yolo_training_config training_config;
    struct deft_ssd_eval_config eval_config;
    struct deft_yolo_nms_config nms_config;
    bool has_nms_config;
    struct deft_ssd_augmentation_config augmentation_config;
    struct deft_yolo_dataset_config dataset_config;
    int random_seed;
    char *results_dir;
    /* resolved */
    struct deft_ssd_layer layers[DEFT_SSD_LAYERS];
    double variances[4];
    long n_priors;
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;
};

DEFT_API DEFT_NODISCARD enum deft_status deft_ssd_config_load(const char *path, const char *const *overrides,
                                                             int n_overrides, struct deft_ssd_config *out);
DEFT_API DEFT_NODISCARD enum deft_status deft_ssd_config_parse(const char *text, size_t n, const char *name,
                                                              enum deft_spec_format fmt,
                                                              const char *const *overrides, int n_overrides,
                                                              struct deft_ssd_config *out);
/* TAO's retinanet Experiment (retinanet_config). */
DEFT_API DEFT_NODISCARD enum deft_status deft_retinanet_config_load(const char *path, const char *const *overrides,
                                                                   int n_overrides, struct deft_ssd_config *out);
DEFT_API DEFT_NODISCARD enum deft_status deft_retinanet_config_parse(const char *text, size_t n, const char *name,
                                                                    enum deft_spec_format fmt,
                                                                    const char *const *overrides, int n_overrides,
                                                                    struct deft_ssd_config *out);
DEFT_API void deft_retinanet_config_help(FILE *f);
DEFT_API void deft_ssd_config_free(struct deft_ssd_config *cfg);
DEFT_API void deft_ssd_config_print(const struct deft_ssd_config *cfg, FILE *f);
DEFT_API void deft_ssd_config_help(FILE *f);
/* --dry_run: network, input, each predictor layer (map, scale, aspects,
 * boxes per cell, priors), the prior count, classes, training, NMS, eval. */
DEFT_API void deft_ssd_config_summary(const struct deft_ssd_config *cfg, FILE *f);
/* The layers as deft_ssd_priors takes them (l[cfg->n_layers]). */
DEFT_API void deft_ssd_config_layers(const struct deft_ssd_config *cfg, struct deft_ssd_layer_params *l);

#ifdef __cplusplus
}
#endif
#endif

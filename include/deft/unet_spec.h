/* deft/unet_spec.h - the UNet (semantic segmentation) experiment spec:
 * TAO's unet Experiment (protobuf text, exactly as TAO writes it) or the same
 * fields as deft YAML, into one typed, validated config.
 *
 *     struct deft_unet_config cfg;
 *     const char *sets[] = {"training_config.epochs=5"};      // --set, after the file
 *     enum deft_status s = deft_unet_config_load("unet_train_resnet_unet_isbi.txt", sets, 1, &cfg);
 *     if (s) { fprintf(stderr, "deft: %s\n", deft_last_error()); return deft_status_exit_code(s); }
 *     deft_unet_config_summary(&cfg, stdout);                   // --dry_run
 *     s = deft_unet_config_validate_paths(&cfg, true);          // train: missing folders stop it
 *     ... cfg.dataset_config.classes[k].name, cfg.dataset_config.label_to_class[pixel] ...
 *     deft_unet_config_free(&cfg);
 *
 * The YAML form uses the same names and nesting:
 *
 *     random_seed: 42
 *     model_config:
 *       arch: resnet
 *       num_layers: 18
 *       model_input_width: 320
 *       model_input_height: 320
 *       model_input_channels: 1
 *       all_projections: true
 *     training_config:
 *       batch_size: 3
 *       epochs: 50
 *       loss: cross_dice_sum
 *       learning_rate: 1e-4
 *       lr_scheduler:
 *         cosine_decay: {alpha: 0.01, decay_steps: 5000}
 *       regularizer: {type: L2, weight: 2e-5}
 *       optimizer:
 *         adam: {epsilon: 1e-8, beta1: 0.9, beta2: 0.999}
 *     dataset_config:
 *       input_image_type: grayscale
 *       augment: true
 *       augmentation_config:
 *         spatial_augmentation: {hflip_probability: 0.5, vflip_probability: 0.5}
 *       train_images_path: data/images/train        # relative: to the spec's folder
 *       train_masks_path: data/masks/train
 *       val_data_sources:                           # or TAO's list files
 *         data_source:
 *           - {image_path: val_images.txt, masks_path: val_masks.txt}
 *       data_class_config:
 *         ignore_label_id: 11                       # deft: pixels left out of loss and metrics
 *         target_classes:
 *           - {name: foreground, mapping_class: foreground, label_id: 0}
 *           - {name: background, mapping_class: background, label_id: 1, class_weight: 0.5}
 *
 * Classes (dataset_config.classes, the network's output channels). TAO turns
 * data_class_config into train ids this way, and deft does the same: every
 * target class takes the label_id of the entry *named* like its
 * mapping_class; the distinct ids so found, sorted ascending, are the classes
 * 0, 1, 2, ... So {person 1 -> person, background 0 -> background, bag 2 ->
 * background, face 3 -> person} gives classes [background, person], and the
 * label ids 0, 2 -> class 0 and 1, 3 -> class 1. Where TAO would stop with a
 * KeyError (a mapping_class that no entry is named), deft takes the smallest
 * label_id mapped to it. A class's weight is the class_weight of the entry
 * that gave its id (1 when unset: TAO's loss has no class weights). Every
 * label_id of the table maps to its class; ignore_label_id (deft; -1 = none)
 * maps to DEFT_UNET_LABEL_IGNORE, and entries with that label_id are left
 * out before the classes are made (so CamVid's {Unlabelled, 11} entry may
 * stay in a TAO spec: it is no class). Any other pixel value is
 * DEFT_UNET_LABEL_UNKNOWN: the mask reader reports it (TAO silently trains it
 * as class 0). With input_image_type grayscale, TAO reads masks as 0/255
 * images and thresholds them at 128 into label ids 0 and 1 (masks_binary).
 *
 * Defaults: a field TAO replaces when it is zero takes TAO's replacement
 * (batch_size 1, learning_rate 1e-4, num_layers 18, checkpoint_interval 1,
 * log_summary_steps 1, loss cross_entropy, activation softmax, resize_method
 * BILINEAR, input_image_type color, flip/crop probabilities 0.5, brightness
 * delta 0.2); a field TAO rejects at zero (input sizes, epochs) takes the
 * value of TAO's ISBI sample spec; any other field keeps proto3's zero (the
 * same spec means the same training in both). `--help-spec` lists them.
 *
 * Errors: DEFT_ERR_PARSE (not protobuf text / YAML) and DEFT_ERR_INVALID_ARG
 * (unknown key with "did you mean", wrong type, out of range, unknown arch /
 * loss / resize_method with the accepted values, num_layers not a depth of
 * the arch, input_image_type against model_input_channels, sigmoid with more
 * than 2 classes, duplicate or out-of-range label_id, no data_class_config,
 * ...): exit status 2, message "file:line:col: ..." (or "--set 'k=v': ...")
 * naming the key and the fix. Strings are never NULL ("" when unset); all
 * memory belongs to the struct.
 */
#ifndef DEFT_UNET_SPEC_H
#define DEFT_UNET_SPEC_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_UNET_MAX_LABEL_ID 255 /* masks are 8-bit PNGs: label ids 0..255 */
enum { DEFT_UNET_LABEL_UNKNOWN = -1, DEFT_UNET_LABEL_IGNORE = -2 }; /* label_to_class[] besides classes */

enum deft_unet_arch {
    DEFT_UNET_ARCH_RESNET = 0,      /* num_layers 10, 18, 34, 50, 101 */
    DEFT_UNET_ARCH_VGG,             /* num_layers 16, 19 */
    DEFT_UNET_ARCH_VANILLA,         /* vanilla_unet: 572x572 in, 388x388 out (TAO forces the size) */
    DEFT_UNET_ARCH_VANILLA_DYNAMIC, /* vanilla_unet_dynamic: any size, multiple of 16 */
    DEFT_UNET_ARCH_EFFICIENTNET_B0,
    DEFT_UNET_ARCH_SHUFFLENET,
};
enum deft_unet_activation { DEFT_UNET_SOFTMAX = 0, DEFT_UNET_SIGMOID }; /* sigmoid: 2 classes, one output */
enum deft_unet_loss { DEFT_UNET_LOSS_CE = 0, DEFT_UNET_LOSS_DICE, DEFT_UNET_LOSS_CE_DICE };
enum deft_unet_floatx { DEFT_UNET_FLOATX_INVALID = 0, DEFT_UNET_FLOAT16, DEFT_UNET_FLOAT32 };
enum deft_unet_initializer { DEFT_UNET_GLOROT_UNIFORM = 0, DEFT_UNET_HE_NORMAL, DEFT_UNET_HE_UNIFORM };
enum deft_unet_reg_type { DEFT_UNET_REG_NONE = 0, DEFT_UNET_REG_L1, DEFT_UNET_REG_L2 };
enum deft_unet_lr_kind { DEFT_UNET_LR_CONSTANT = 0, DEFT_UNET_LR_EXPONENTIAL, DEFT_UNET_LR_COSINE };
enum deft_unet_resize { DEFT_UNET_RESIZE_BILINEAR = 0, DEFT_UNET_RESIZE_NEAREST, DEFT_UNET_RESIZE_BICUBIC,
                        DEFT_UNET_RESIZE_AREA };
/* Colour input scaling (grayscale input is always x/127.5 - 1, as TAO). */
enum deft_unet_preprocess { DEFT_UNET_PRE_MINUS1_1 = 0, DEFT_UNET_PRE_0_1, DEFT_UNET_PRE_DIV_255 };

struct deft_unet_training_precision { int backend_floatx; /* enum deft_unet_floatx; deft trains float32 */ };

struct deft_unet_model_config {
    char *arch;                  /* as written; resolved in arch_kind */
    int num_layers;              /* resnet / vgg depth */
    int model_input_width, model_input_height, model_input_channels; /* channels 1 or 3 */
    bool all_projections;        /* resnet: 1x1 projection on every shortcut */
    bool use_batch_norm;
    bool freeze_bn;
    double *freeze_blocks;       /* TAO: repeated float; whole numbers checked */
    int n_freeze_blocks;
    char *activation;            /* softmax (default) | sigmoid */
    bool enable_qat;
    bool load_graph;             /* TAO: the pretrained file carries its graph (deft models always do) */
    struct deft_unet_training_precision training_precision;
    int initializer;             /* enum deft_unet_initializer */
    char *pretrained_model_file; /* weights to start from */
    char *pruned_model_path;     /* a pruned model to retrain */
    /* accepted, not used by deft yet */
    bool freeze_pretrained_layers, allow_loaded_model_modification, use_pooling, remove_head;
    char *byom_model;
    double dropout_rate;
    /* resolved */
    enum deft_unet_arch arch_kind;
    enum deft_unet_activation activation_kind;
};

struct deft_unet_cosine_decay { double alpha; int decay_steps; };      /* TF cosine_decay */
struct deft_unet_exponential_decay { double decay_rate; int decay_steps; }; /* staircase, as TAO */
struct deft_unet_lr_scheduler {
    bool has_exponential_decay, has_cosine_decay; /* oneof */
    struct deft_unet_exponential_decay exponential_decay;
    struct deft_unet_cosine_decay cosine_decay;
};

struct deft_unet_adam { double epsilon, beta1, beta2; };
struct deft_unet_optimizer { bool has_adam; struct deft_unet_adam adam; }; /* adam is TAO's only optimizer */
/* TAO: loss += weight * sum w^2 / 2 (L2) or weight * sum |w| (L1) over
 * weights that are not batch norm or bias. */
struct deft_unet_regularizer { int type; /* enum deft_unet_reg_type */ double weight; };
struct deft_unet_visualizer { bool enabled; int save_summary_steps, infrequent_save_summary_steps; };

struct deft_unet_training_config {
    int batch_size, epochs;
    int log_summary_steps, checkpoint_interval;
    char *loss;                  /* cross_entropy (default) | dice | cross_dice_sum */
    double learning_rate;
    bool has_lr_scheduler;       /* none: constant learning_rate */
    struct deft_unet_lr_scheduler lr_scheduler;
    struct deft_unet_regularizer regularizer;
    struct deft_unet_optimizer optimizer;
    int warmup_steps;
    bool weights_monitor;
    struct deft_unet_visualizer visualizer;
    /* accepted, not used by deft yet (TAO reads `epochs`, not num_epochs) */
    int num_epochs, max_steps, buffer_size;
    bool augment, use_xla, use_amp, use_trt, crossvalidation_idx, data_options;
    double weight_decay;
    /* resolved */
    enum deft_unet_loss loss_kind;
    enum deft_unet_lr_kind lr_kind;
};

struct deft_unet_spatial_augmentation {
    double hflip_probability, vflip_probability, crop_and_resize_prob, crop_and_resize_ratio;
};
struct deft_unet_brightness_augmentation { double delta; };
struct deft_unet_augmentation_config {
    struct deft_unet_spatial_augmentation spatial_augmentation;
    struct deft_unet_brightness_augmentation brightness_augmentation;
};

/* TAO's list-file form: image_path and masks_path are text files naming one
 * image (mask) per line, line i of one matching line i of the other. */
struct deft_unet_data_source { char *image_path, *masks_path; };
struct deft_unet_data_sources { struct deft_unet_data_source *data_source; int n_data_source; };

struct deft_unet_target_class {
    char *name, *mapping_class;
    int label_id;                /* pixel value in the masks, 0..255 */
    double class_weight;         /* loss weight (default 1) */
};
struct deft_unet_data_class_config {
    struct deft_unet_target_class *target_classes;
    int n_target_classes;
    int ignore_label_id;         /* deft: label id left out of loss and metrics (-1: none) */
};

/* One class of the network output (see "Classes" above). */
struct deft_unet_class {
    char *name;                  /* the mapping_class */
    int label_id;                /* the id that ranks it */
    double weight;
};

struct deft_unet_dataset_config {
    char *dataset;               /* TAO: "custom" (not used) */
    char *input_image_type;      /* color (default) | grayscale */
    bool augment;
    struct deft_unet_augmentation_config augmentation_config;
    bool resize_padding;         /* keep the aspect ratio, pad to the input size */
    char *resize_method;         /* BILINEAR (default), NEAREST_NEIGHBOR, BICUBIC, AREA (images; masks: nearest) */
    char *preprocess;            /* colour: min_max_-1_1 (default), min_max_0_1, div_by_255 */
    bool filter_data;            /* list files: skip pairs whose image or mask is missing */
    char *train_images_path, *train_masks_path, *val_images_path, *val_masks_path;
    char *test_images_path, *test_masks_path;
    struct deft_unet_data_sources train_data_sources, val_data_sources, test_data_sources;
    bool has_data_class_config;
    struct deft_unet_data_class_config data_class_config;
    char *dataloader;            /* TAO (not used) */
    /* resolved */
    bool grayscale;              /* input_image_type grayscale */
    bool masks_binary;           /* masks are 0/255: >= 128 is label id 1, else 0 (TAO's grayscale rule) */
    enum deft_unet_resize resize_kind;
    enum deft_unet_preprocess preprocess_kind;
    struct deft_unet_class *classes;
    int n_classes;
    int label_to_class[DEFT_UNET_MAX_LABEL_ID + 1]; /* class index, or DEFT_UNET_LABEL_IGNORE / _UNKNOWN */
};

struct deft_unet_config {
    int random_seed;
    struct deft_unet_model_config model_config;
    struct deft_unet_training_config training_config;
    struct deft_unet_dataset_config dataset_config;
    char *results_dir;           /* deft: default results directory (-r wins) */
    /* where it came from (not part of the spec) */
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;        /* TAO fields met that deft does not act on ("" none) */
};

/* Read, check and resolve a spec; overrides "key.path=value" apply after the
 * file in order (repeated blocks by index: dataset_config.data_class_config.
 * target_classes.0.class_weight=2). Relative paths move to the spec's folder
 * when they exist there. On failure *out is zeroed and needs no free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_unet_config_load(const char *path, const char *const *overrides,
                                                              int n_overrides, struct deft_unet_config *out);
/* Same from memory; `name` is used in messages and, with fmt AUTO, its
 * extension picks the flavour. Paths stay as written. */
DEFT_API DEFT_NODISCARD enum deft_status deft_unet_config_parse(const char *text, size_t n, const char *name,
                                                               enum deft_spec_format fmt,
                                                               const char *const *overrides, int n_overrides,
                                                               struct deft_unet_config *out);
DEFT_API void deft_unet_config_free(struct deft_unet_config *cfg);
/* The resolved config as deft YAML (it loads back to the same config). */
DEFT_API void deft_unet_config_print(const struct deft_unet_config *cfg, FILE *f);
/* `--help-spec`: every field with type, default, range and meaning. */
DEFT_API void deft_unet_config_help(FILE *f);
/* `--dry_run`: network and input, classes with their label ids and weights,
 * loss, batch, epochs, optimizer, LR schedule, augmentation, data. */
DEFT_API void deft_unet_config_summary(const struct deft_unet_config *cfg, FILE *f);
/* Check that the image and mask folders / list files the spec names exist
 * (train and val; test images too), and the model to start from.
 * for_training: the first missing one is DEFT_ERR_NOT_FOUND naming its field
 * and the spec line; otherwise a warning each and still DEFT_ERR_NOT_FOUND
 * (a dry run's verdict). No training data at all: DEFT_ERR_INVALID_ARG
 * (dry run: after the warnings). */
DEFT_API DEFT_NODISCARD enum deft_status deft_unet_config_validate_paths(const struct deft_unet_config *cfg,
                                                                        bool for_training);

#ifdef __cplusplus
}
#endif
#endif

/* unet_spec.c - the UNet spec (spec module): schema tables for TAO's unet
 * Experiment (protobuf text and deft YAML share them), then the checks TAO
 * makes plus deft's own (arch and depth, input size and channels, loss,
 * resize method, data sources, the class table from data_class_config), and
 * the config read back as YAML, --help-spec and the --dry_run summary. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "deft/unet_spec.h"
#include "spec/spec_fields.h"

#define HELP_CMD "deft unet --help-spec"

/* ---- model_config ----------------------------------------------------------------- */

static const struct deft_spec_enum_val floatx_vals[] = {
    {"INVALID", DEFT_UNET_FLOATX_INVALID}, {"FLOAT16", DEFT_UNET_FLOAT16}, {"FLOAT32", DEFT_UNET_FLOAT32}, {NULL, 0}};
#define T struct deft_unet_training_precision
static const struct deft_spec_field prec_fields[] = {
    F_ENUM(T, backend_floatx, NULL, floatx_vals, 0, "TAO's Keras float type (deft trains in float32)"),
};
#undef T
static const struct deft_spec_schema prec_schema =
    SCHEMA(struct deft_unet_training_precision, "TrainingPrecision", prec_fields);

static const struct deft_spec_enum_val init_vals[] = {{"GLOROT_UNIFORM", DEFT_UNET_GLOROT_UNIFORM},
                                                      {"HE_NORMAL", DEFT_UNET_HE_NORMAL},
                                                      {"HE_UNIFORM", DEFT_UNET_HE_UNIFORM},
                                                      {NULL, 0}};
#define T struct deft_unet_model_config
static const struct deft_spec_field model_fields[] = {
    F_STR(T, arch, "resnet", 0, "backbone: resnet, vgg, vanilla_unet, vanilla_unet_dynamic, efficientnet_b0, shufflenet"),
    F_INT(T, num_layers, "18", 0, 1000, GE | LE, "depth: resnet 10/18/34/50/101, vgg 16/19 (others: not used)"),
    F_INT(T, model_input_width, "320", 16, 16384, GE | LE, "network input width (multiple of 16; vanilla_unet: 572)"),
    F_INT(T, model_input_height, "320", 16, 16384, GE | LE, "network input height (multiple of 16; vanilla_unet: 572)"),
    F_INT(T, model_input_channels, NULL, 0, 3, GE | LE,
          "1 (grayscale) or 3 (color); 0: from dataset_config.input_image_type"),
    F_BOOL(T, all_projections, NULL, 0, "resnet: 1x1 projection convolutions on every shortcut"),
    F_BOOL(T, use_batch_norm, NULL, 0, "batch norm after the convolutions"),
    F_BOOL(T, freeze_bn, NULL, 0, "keep batch-norm statistics and parameters fixed"),
    F_FLIST(T, freeze_blocks, n_freeze_blocks, 0, 0, GE, "encoder blocks whose weights stay fixed (repeated)"),
    F_STR(T, activation, "softmax", 0, "output: softmax, or sigmoid (2 classes only: one output channel)"),
    F_BOOL(T, enable_qat, NULL, 0, "quantization-aware training (int8 fake quantization)"),
    F_BOOL(T, load_graph, NULL, IGN, "load the pretrained model's graph (deft models always carry theirs)"),
    F_MSG(T, training_precision, prec_schema, IGN, "TAO float precision"),
    F_ENUM(T, initializer, "GLOROT_UNIFORM", init_vals, 0, "kernel initializer of layers not loaded"),
    F_STR(T, pretrained_model_file, NULL, 0, "weights to start from: a deft model or .pth/.onnx/.safetensors"),
    F_STR(T, pruned_model_path, NULL, 0, "a pruned model to retrain (its graph and weights)"),
    F_BOOL(T, freeze_pretrained_layers, NULL, IGN, "freeze every pretrained layer"),
    F_BOOL(T, allow_loaded_model_modification, NULL, IGN, "let a loaded model gain missing heads"),
    F_BOOL(T, use_pooling, NULL, IGN, "pooling in the encoder (TAO's UNet encoders use strides)"),
    F_BOOL(T, remove_head, NULL, IGN, "drop the head of the loaded model"),
    F_STR(T, byom_model, NULL, IGN, "bring-your-own-model file"),
    F_FLT(T, dropout_rate, NULL, 0, 1, GE | LE | IGN, "dropout fraction"),
};
#undef T
static const struct deft_spec_schema model_schema = SCHEMA(struct deft_unet_model_config, "ModelConfig", model_fields);

/* ---- training_config ---------------------------------------------------------------- */

#define T struct deft_unet_exponential_decay
static const struct deft_spec_field expdecay_fields[] = {
    F_FLT(T, decay_rate, NULL, 0, 1, GT | LE | REQ, "lr *= decay_rate every decay_steps steps (staircase)"),
    F_INT(T, decay_steps, NULL, 1, 0, GE | REQ, "steps per decay"),
};
#undef T
#define T struct deft_unet_cosine_decay
static const struct deft_spec_field cosdecay_fields[] = {
    F_FLT(T, alpha, NULL, 0, 1, GE | LE, "final lr as a fraction of learning_rate"),
    F_INT(T, decay_steps, NULL, 1, 0, GE | REQ, "steps from learning_rate down to alpha * learning_rate"),
};
#undef T
static const struct deft_spec_schema expdecay_schema =
    SCHEMA(struct deft_unet_exponential_decay, "ExponentialDecayConfig", expdecay_fields);
static const struct deft_spec_schema cosdecay_schema =
    SCHEMA(struct deft_unet_cosine_decay, "CosineDecayConfig", cosdecay_fields);

#define T struct deft_unet_lr_scheduler
static const struct deft_spec_field sched_fields[] = {
    F_ONEOF(T, exponential_decay, has_exponential_decay, expdecay_schema, "lr_scheduler", REQ, "step-wise exponential decay"),
    F_ONEOF(T, cosine_decay, has_cosine_decay, cosdecay_schema, "lr_scheduler", REQ, "cosine decay"),
};
#undef T
static const struct deft_spec_schema sched_schema = SCHEMA(struct deft_unet_lr_scheduler, "LRSchedulerConfig", sched_fields);

#define T struct deft_unet_adam
static const struct deft_spec_field adam_fields[] = {
    F_FLT(T, epsilon, "1e-08", 0, 0, GT, "denominator epsilon"),
    F_FLT(T, beta1, "0.9", 0, 1, GE | LE, "first-moment decay"),
    F_FLT(T, beta2, "0.999", 0, 1, GE | LE, "second-moment decay"),
};
#undef T
static const struct deft_spec_schema adam_schema = SCHEMA(struct deft_unet_adam, "AdamOptimizerConfig", adam_fields);
#define T struct deft_unet_optimizer
static const struct deft_spec_field optim_fields[] = {
    F_OPT(T, adam, has_adam, adam_schema, 0, "Adam (TAO's only optimizer; used when absent too)"),
};
#undef T
static const struct deft_spec_schema optim_schema = SCHEMA(struct deft_unet_optimizer, "OptimizerConfig", optim_fields);

static const struct deft_spec_enum_val reg_vals[] = {
    {"NO_REG", DEFT_UNET_REG_NONE}, {"L1", DEFT_UNET_REG_L1}, {"L2", DEFT_UNET_REG_L2}, {NULL, 0}};
#define T struct deft_unet_regularizer
static const struct deft_spec_field reg_fields[] = {
    F_ENUM(T, type, "NO_REG", reg_vals, 0, "weight regularizer (not on batch norm or biases)"),
    F_FLT(T, weight, NULL, 0, 0, GE, "strength (L2: loss += weight * sum w^2 / 2, L1: weight * sum|w|)"),
};
#undef T
static const struct deft_spec_schema reg_schema = SCHEMA(struct deft_unet_regularizer, "RegularizerConfig", reg_fields);

#define T struct deft_unet_visualizer
static const struct deft_spec_field vis_fields[] = {
    F_BOOL(T, enabled, NULL, 0, "TensorBoard images"),
    F_INT(T, save_summary_steps, NULL, 0, 0, GE, "steps between scalar summaries"),
    F_INT(T, infrequent_save_summary_steps, NULL, 0, 0, GE, "steps between image summaries"),
    F_ANY("wandb_config", "Weights & Biases settings (TAO)"),
    F_ANY("clearml_config", "ClearML settings (TAO)"),
};
#undef T
static const struct deft_spec_schema vis_schema = SCHEMA(struct deft_unet_visualizer, "VisualizerConfig", vis_fields);

#define T struct deft_unet_training_config
static const struct deft_spec_field train_fields[] = {
    F_INT(T, batch_size, "1", 1, 65536, GE | LE, "images per batch"),
    F_INT(T, epochs, "50", 1, 1000000, GE | LE, "passes over the training set"),
    F_INT(T, log_summary_steps, "1", 1, 0, GE, "steps between training log lines"),
    F_INT(T, checkpoint_interval, "1", 1, 0, GE, "save a checkpoint (and validate) every N epochs"),
    F_STR(T, loss, "cross_entropy", 0, "cross_entropy, dice (1 - soft Dice) or cross_dice_sum (their sum)"),
    F_FLT(T, learning_rate, "0.0001", 0, 0, GT, "initial learning rate"),
    F_OPT(T, lr_scheduler, has_lr_scheduler, sched_schema, 0, "learning-rate decay (none: constant)"),
    F_MSG(T, regularizer, reg_schema, 0, "weight regularizer"),
    F_MSG(T, optimizer, optim_schema, 0, "optimizer"),
    F_INT(T, warmup_steps, NULL, 0, 0, GE, "steps of linear learning-rate warm-up"),
    F_BOOL(T, weights_monitor, NULL, 0, "check weights for NaN/Inf and log their histograms"),
    F_MSG(T, visualizer, vis_schema, IGN, "TAO TensorBoard visualizer"),
    F_INT(T, num_epochs, NULL, 0, 0, GE | IGN, "TAO reads `epochs`"),
    F_INT(T, max_steps, NULL, 0, 0, GE | IGN, "TAO derives it from epochs"),
    F_INT(T, buffer_size, NULL, 0, 0, GE | IGN, "shuffle buffer"),
    F_BOOL(T, augment, NULL, IGN, "TAO reads dataset_config.augment"),
    F_BOOL(T, use_xla, NULL, IGN, "XLA compilation"),
    F_BOOL(T, use_amp, NULL, IGN, "automatic mixed precision"),
    F_BOOL(T, use_trt, NULL, IGN, "TensorRT"),
    F_BOOL(T, crossvalidation_idx, NULL, IGN, "cross-validation fold"),
    F_BOOL(T, data_options, NULL, IGN, "tf.data options"),
    F_FLT(T, weight_decay, NULL, 0, 0, GE | IGN, "TAO reads regularizer.weight"),
};
#undef T
static const struct deft_spec_schema train_schema = SCHEMA(struct deft_unet_training_config, "TrainingConfig", train_fields);

/* ---- dataset_config ------------------------------------------------------------------- */

#define T struct deft_unet_spatial_augmentation
static const struct deft_spec_field spatial_fields[] = {
    F_FLT(T, hflip_probability, "0.5", 0, 1, GE | LE, "horizontal flip probability (TAO reads 0 as 0.5)"),
    F_FLT(T, vflip_probability, "0.5", 0, 1, GE | LE, "vertical flip probability (TAO reads 0 as 0.5)"),
    F_FLT(T, crop_and_resize_prob, "0.5", 0, 1, GE | LE, "probability of a random crop resized back (TAO reads 0 as 0.5)"),
    F_FLT(T, crop_and_resize_ratio, NULL, 0, 0.5, GE | LE, "each side cropped by up to this fraction"),
};
#undef T
#define T struct deft_unet_brightness_augmentation
static const struct deft_spec_field bright_fields[] = {
    F_FLT(T, delta, "0.2", 0, 1, GE | LE, "brightness shift up to +-delta (images only; TAO reads 0 as 0.2)"),
};
#undef T
static const struct deft_spec_schema spatial_schema =
    SCHEMA(struct deft_unet_spatial_augmentation, "SpatialAugmentation", spatial_fields);
static const struct deft_spec_schema bright_schema =
    SCHEMA(struct deft_unet_brightness_augmentation, "BrightnessAugmentation", bright_fields);
#define T struct deft_unet_augmentation_config
static const struct deft_spec_field aug_fields[] = {
    F_MSG(T, spatial_augmentation, spatial_schema, 0, "flips and crop-and-resize (masks follow, nearest neighbour)"),
    F_MSG(T, brightness_augmentation, bright_schema, 0, "brightness"),
};
#undef T
static const struct deft_spec_schema aug_schema = SCHEMA(struct deft_unet_augmentation_config, "AugmentationConfig", aug_fields);

#define T struct deft_unet_data_source
static const struct deft_spec_field src_fields[] = {
    F_STR(T, image_path, NULL, 0, "text file: one image path a line"),
    F_STR(T, masks_path, NULL, 0, "text file: the mask of line i on line i"),
};
#undef T
static const struct deft_spec_schema src_schema = SCHEMA(struct deft_unet_data_source, "DataSource", src_fields);
#define T struct deft_unet_data_sources
static const struct deft_spec_field srcs_fields[] = {
    F_LIST(T, data_source, n_data_source, src_schema, 0, "list files (repeated)"),
};
#undef T
static const struct deft_spec_schema srcs_schema = SCHEMA(struct deft_unet_data_sources, "DataSources", srcs_fields);

#define T struct deft_unet_target_class
static const struct deft_spec_field tc_fields[] = {
    F_STR(T, name, NULL, REQ, "name of this label"),
    F_STR(T, mapping_class, NULL, REQ, "class it is trained as (the name of an entry)"),
    F_INT(T, label_id, NULL, 0, DEFT_UNET_MAX_LABEL_ID, GE | LE, "pixel value in the masks (0..255)"),
    F_FLT(T, class_weight, "1", 0, 0, GE, "loss weight of the class (when this entry defines it)"),
};
#undef T
static const struct deft_spec_schema tc_schema = SCHEMA(struct deft_unet_target_class, "TargetClass", tc_fields);
#define T struct deft_unet_data_class_config
static const struct deft_spec_field dcc_fields[] = {
    F_LIST(T, target_classes, n_target_classes, tc_schema, REQ, "label ids and the classes they train (repeated)"),
    F_INT(T, ignore_label_id, "-1", -1, DEFT_UNET_MAX_LABEL_ID, GE | LE | EXT,
          "label id left out of loss and metrics (-1: none; e.g. CamVid's Unlabelled 11)"),
};
#undef T
static const struct deft_spec_schema dcc_schema = SCHEMA(struct deft_unet_data_class_config, "DataClassConfig", dcc_fields);

#define T struct deft_unet_dataset_config
static const struct deft_spec_field ds_fields[] = {
    F_STR(T, dataset, NULL, IGN, "TAO dataset kind (\"custom\")"),
    F_STR(T, input_image_type, "color", 0, "color or grayscale (must agree with model_input_channels)"),
    F_BOOL(T, augment, NULL, 0, "augment the training images (augmentation_config)"),
    F_MSG(T, augmentation_config, aug_schema, 0, "augmentation when augment is true"),
    F_BOOL(T, resize_padding, NULL, 0, "keep the aspect ratio and pad to the input size"),
    F_STR(T, resize_method, "BILINEAR", 0, "image resize: BILINEAR, NEAREST_NEIGHBOR, BICUBIC, AREA (masks: nearest)"),
    F_STR(T, preprocess, "min_max_-1_1", 0, "colour scaling: min_max_-1_1, min_max_0_1 or div_by_255"),
    F_BOOL(T, filter_data, NULL, 0, "list files: skip pairs whose image or mask is missing"),
    F_STR(T, train_images_path, NULL, 0, "folder of training images"),
    F_STR(T, train_masks_path, NULL, 0, "folder of training masks (same file stems)"),
    F_STR(T, val_images_path, NULL, 0, "folder of validation images"),
    F_STR(T, val_masks_path, NULL, 0, "folder of validation masks"),
    F_STR(T, test_images_path, NULL, 0, "folder of images for inference"),
    F_STR(T, test_masks_path, NULL, 0, "folder of test masks"),
    F_MSG(T, train_data_sources, srcs_schema, 0, "training list files (instead of the folders)"),
    F_MSG(T, val_data_sources, srcs_schema, 0, "validation list files"),
    F_MSG(T, test_data_sources, srcs_schema, 0, "inference list files"),
    F_OPT(T, data_class_config, has_data_class_config, dcc_schema, 0, "label ids and classes"),
    F_STR(T, dataloader, NULL, IGN, "TAO data loader"),
};
#undef T
static const struct deft_spec_schema ds_schema = SCHEMA(struct deft_unet_dataset_config, "DatasetConfig", ds_fields);

#define T struct deft_unet_config
static const struct deft_spec_field top_fields[] = {
    F_INT(T, random_seed, NULL, 0, 0, GE, "seed for initialization, shuffling and augmentation"),
    F_MSG(T, model_config, model_schema, REQ, "the network"),
    F_MSG(T, training_config, train_schema, REQ, "training"),
    F_MSG(T, dataset_config, ds_schema, REQ, "data and classes"),
    F_ANY("evaluation_config", "TAO detection-style evaluation settings"),
    F_ANY("data_class_config", "TAO reads dataset_config.data_class_config"),
    F_STR(T, results_dir, NULL, EXT, "default results directory (-r wins)"),
};
#undef T
static const struct deft_spec_schema unet_schema = SCHEMA(struct deft_unet_config, "Experiment", top_fields);

/* ---- where a value came from ----------------------------------------------------------- */

#define TC_LIST "dataset_config.data_class_config.target_classes"

/* ---- named choices ------------------------------------------------------------------------ */

/* Edit distance ignoring case (names of at most 63 bytes; longer: far). */
static int ci_distance(const char *a, const char *b) {
    char x[64], y[64];
    if (strlen(a) >= sizeof x || strlen(b) >= sizeof y) return 99;
    for (size_t i = 0; i <= strlen(a); i++) x[i] = (char)(a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i]);
    for (size_t i = 0; i <= strlen(b); i++) y[i] = (char)(b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 32 : b[i]);
    return deft_spec_edit_distance(x, y);
}

/* Index of v among names (case-insensitive when ci), or an error at `path`
 * listing the choices and the closest one. */
static enum deft_status pick(const char *v, const char *const *names, int n, bool ci, const char *path,
                             const char *what, const struct deft_spec_origin *o, int *out) {
    for (int i = 0; i < n; i++)
        if (ci ? strcasecmp(v, names[i]) == 0 : strcmp(v, names[i]) == 0) {
            *out = i;
            return DEFT_OK;
        }
    char list[300] = "", sug[100] = "", at[300];
    size_t u = 0;
    int best = 99;
    for (int i = 0; i < n; i++) {
        int w = snprintf(list + u, sizeof list - u, "%s%s", u ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sizeof list - u) u += (size_t)w;
        int d = ci ? ci_distance(v, names[i]) : deft_spec_edit_distance(v, names[i]);
        if (d < best && d <= 3) best = d, snprintf(sug, sizeof sug, "; did you mean '%s'?", names[i]);
    }
    deft_spec_origin_where(o, path, at, sizeof at);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s '%.40s' is not %s (one of: %s)%s", at, path, v, what, list, sug);
}

/* ---- model checks -------------------------------------------------------------------------- */

static const char *const arch_names[] = {"resnet", "vgg", "vanilla_unet", "vanilla_unet_dynamic",
                                         "efficientnet_b0", "shufflenet"};
static const int arch_depths[][6] = {{10, 18, 34, 50, 101, 0}, {16, 19, 0}, {0}, {0}, {0}, {0}};

static enum deft_status check_depth(const struct deft_unet_model_config *m, const struct deft_spec_origin *o) {
    const int *d = arch_depths[m->arch_kind];
    if (!d[0]) return DEFT_OK;
    char list[64] = "", at[300];
    size_t u = 0;
    for (int i = 0; d[i]; i++) {
        if (d[i] == m->num_layers) return DEFT_OK;
        int w = snprintf(list + u, sizeof list - u, "%s%d", u ? ", " : "", d[i]);
        if (w > 0 && (size_t)w < sizeof list - u) u += (size_t)w;
    }
    deft_spec_origin_where_or(o, "model_config.num_layers", "model_config.arch", at, sizeof at);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.num_layers %d is not a depth of '%s': use one of %s",
                          at, m->num_layers, m->arch, list);
}

static enum deft_status check_input_size(struct deft_unet_model_config *m, const struct deft_spec_origin *o) {
    char at[300];
    if (m->arch_kind == DEFT_UNET_ARCH_VANILLA) {
        /* TAO builds vanilla_unet for 572x572 whatever the spec says */
        if (m->model_input_width != 572 || m->model_input_height != 572) {
            deft_spec_origin_where(o, "model_config.model_input_width", at, sizeof at);
            deft_log(DEFT_LOG_WARN, "%s: vanilla_unet takes 572 x 572 input (388 x 388 output), as in TAO: "
                     "model_input_width/height %d x %d become 572 x 572", at, m->model_input_width,
                     m->model_input_height);
            m->model_input_width = m->model_input_height = 572;
        }
        return DEFT_OK;
    }
    /* the vgg, efficientnet_b0 and shufflenet UNets reach /32 before their decoder */
    bool by32 = m->arch_kind == DEFT_UNET_ARCH_VGG || m->arch_kind == DEFT_UNET_ARCH_EFFICIENTNET_B0 ||
                m->arch_kind == DEFT_UNET_ARCH_SHUFFLENET;
    int k = by32 ? 32 : 16;
    const char *bad = m->model_input_width % k ? "model_input_width" : m->model_input_height % k ? "model_input_height"
                                                                                                  : NULL;
    if (!bad) return DEFT_OK;
    int v = m->model_input_width % k ? m->model_input_width : m->model_input_height;
    char path[64];
    snprintf(path, sizeof path, "model_config.%s", bad);
    deft_spec_origin_where(o, path, at, sizeof at);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s = %d must be a multiple of %d (the encoder's stride): use %d "
                          "or %d", at, path, v, k, v / k * k < k ? k : v / k * k, (v / k + 1) * k);
}

static enum deft_status check_model(struct deft_unet_model_config *m, const struct deft_spec_origin *o) {
    int k = 0;
    enum deft_status s = pick(m->arch, arch_names, N_OF(arch_names), false, "model_config.arch", "a UNet backbone",
                              o, &k);
    if (s) return s;
    m->arch_kind = (enum deft_unet_arch)k;
    if ((s = check_depth(m, o)) || (s = check_input_size(m, o))) return s;
    static const char *const acts[] = {"softmax", "sigmoid"};
    if (!*m->activation) m->activation_kind = DEFT_UNET_SOFTMAX;
    else if ((s = pick(m->activation, acts, 2, false, "model_config.activation", "an output activation", o, &k)))
        return s;
    else m->activation_kind = (enum deft_unet_activation)k;
    char at[300];
    for (int i = 0; i < m->n_freeze_blocks; i++)
        if (m->freeze_blocks[i] != (double)(int)m->freeze_blocks[i]) {
            deft_spec_origin_where(o, "model_config.freeze_blocks", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.freeze_blocks: %g is not a block index "
                                  "(write whole numbers)", at, m->freeze_blocks[i]);
        }
    if (*m->pretrained_model_file && *m->pruned_model_path) {
        deft_spec_origin_where(o, "model_config.pruned_model_path", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config: pretrained_model_file and pruned_model_path are "
                              "alternatives: keep one", at);
    }
    return DEFT_OK;
}

/* ---- training checks ------------------------------------------------------------------------ */

static enum deft_status check_training(struct deft_unet_training_config *t, const struct deft_spec_origin *o) {
    static const char *const losses[] = {"cross_entropy", "dice", "cross_dice_sum"};
    int k = 0;
    if (*t->loss) {
        enum deft_status s = pick(t->loss, losses, N_OF(losses), false, "training_config.loss", "a UNet loss", o, &k);
        if (s) return s;
    }
    t->loss_kind = (enum deft_unet_loss)k;
    t->lr_kind = !t->has_lr_scheduler                          ? DEFT_UNET_LR_CONSTANT
                 : t->lr_scheduler.has_exponential_decay ? DEFT_UNET_LR_EXPONENTIAL
                                                         : DEFT_UNET_LR_COSINE;
    if (t->regularizer.type != DEFT_UNET_REG_NONE && t->regularizer.weight == 0)
        deft_log(DEFT_LOG_WARN, "%s: training_config.regularizer: type %s with weight 0 regularizes nothing",
                 o->file, t->regularizer.type == DEFT_UNET_REG_L1 ? "L1" : "L2");
    return DEFT_OK;
}

/* ---- dataset checks -------------------------------------------------------------------------- */

static enum deft_status check_image_type(struct deft_unet_config *c, const struct deft_spec_origin *o) {
    struct deft_unet_dataset_config *d = &c->dataset_config;
    struct deft_unet_model_config *m = &c->model_config;
    static const char *const types[] = {"color", "grayscale"};
    int k = 0;
    if (*d->input_image_type) {
        enum deft_status s = pick(d->input_image_type, types, 2, false, "dataset_config.input_image_type",
                                  "an image type", o, &k);
        if (s) return s;
    }
    d->grayscale = k == 1;
    d->masks_binary = d->grayscale; /* TAO: grayscale experiments read masks as 0/255 */
    if (m->model_input_channels == 0) m->model_input_channels = d->grayscale ? 1 : 3;
    char at[300];
    if (m->model_input_channels != 1 && m->model_input_channels != 3) {
        deft_spec_origin_where(o, "model_config.model_input_channels", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.model_input_channels must be 1 (grayscale) or 3 "
                              "(color), got %d", at, m->model_input_channels);
    }
    if ((m->model_input_channels == 1) != d->grayscale) {
        bool from_type = deft_spec_node_at(o->tree, "dataset_config.input_image_type") != NULL ||
                         deft_spec_override_of(o, "dataset_config.input_image_type");
        deft_spec_origin_where(o, from_type ? "dataset_config.input_image_type" : "model_config.model_input_channels",
                               at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.input_image_type is '%s' but "
                              "model_config.model_input_channels is %d: use input_image_type \"%s\" with %d channel%s",
                              at, types[k], m->model_input_channels, m->model_input_channels == 1 ? "grayscale" : "color",
                              m->model_input_channels, m->model_input_channels == 1 ? "" : "s");
    }
    return DEFT_OK;
}

static enum deft_status check_resize(struct deft_unet_dataset_config *d, const struct deft_spec_origin *o) {
    static const char *const methods[] = {"BILINEAR", "NEAREST_NEIGHBOR", "BICUBIC", "AREA"};
    static const char *const pre[] = {"min_max_-1_1", "min_max_0_1", "div_by_255"};
    int k = 0;
    enum deft_status s = DEFT_OK;
    if (*d->resize_method) /* TAO upper-cases it */
        s = pick(d->resize_method, methods, N_OF(methods), true, "dataset_config.resize_method", "a resize method", o, &k);
    if (s) return s;
    d->resize_kind = (enum deft_unet_resize)k;
    k = 0;
    if (*d->preprocess) s = pick(d->preprocess, pre, N_OF(pre), false, "dataset_config.preprocess", "a preprocessing", o, &k);
    d->preprocess_kind = (enum deft_unet_preprocess)k;
    return s;
}

static enum deft_status check_sources(const struct deft_unet_data_sources *src, const char *list, bool masks,
                                      const struct deft_spec_origin *o) {
    char at[300];
    for (int i = 0; i < src->n_data_source; i++) {
        const struct deft_unet_data_source *s = &src->data_source[i];
        const char *missing = !*s->image_path ? "image_path" : masks && !*s->masks_path ? "masks_path" : NULL;
        if (!missing) continue;
        deft_spec_origin_where_element(o, list, i, NULL, at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d] needs %s (a text file of %s, one a line)", at, list, i,
                              missing, strcmp(missing, "image_path") ? "mask paths" : "image paths");
    }
    return DEFT_OK;
}

/* A split given both as folders and as list files: TAO takes the lists. */
static void note_both(const struct deft_unet_data_sources *src, const char *dir, const char *split,
                      const struct deft_spec_origin *o) {
    if (src->n_data_source && *dir)
        deft_log(DEFT_LOG_WARN, "%s: dataset_config gives %s both as folders and as %s_data_sources: the list files "
                 "are used (as in TAO)", o->file, split, split);
}

static enum deft_status check_data(struct deft_unet_dataset_config *d, const struct deft_spec_origin *o) {
    enum deft_status s = check_sources(&d->train_data_sources, "dataset_config.train_data_sources.data_source", true, o);
    if (!s) s = check_sources(&d->val_data_sources, "dataset_config.val_data_sources.data_source", true, o);
    if (!s) s = check_sources(&d->test_data_sources, "dataset_config.test_data_sources.data_source", false, o);
    if (s) return s;
    char at[300];
    const struct { const char *img, *msk, *ik, *mk; } pairs[2] = {
        {d->train_images_path, d->train_masks_path, "train_images_path", "train_masks_path"},
        {d->val_images_path, d->val_masks_path, "val_images_path", "val_masks_path"}};
    for (int i = 0; i < 2; i++)
        if (!*pairs[i].img != !*pairs[i].msk) {
            char path[80];
            snprintf(path, sizeof path, "dataset_config.%s", *pairs[i].img ? pairs[i].ik : pairs[i].mk);
            deft_spec_origin_where(o, path, at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config gives %s without %s: give both folders",
                                  at, *pairs[i].img ? pairs[i].ik : pairs[i].mk, *pairs[i].img ? pairs[i].mk : pairs[i].ik);
        }
    note_both(&d->train_data_sources, d->train_images_path, "train", o);
    note_both(&d->val_data_sources, d->val_images_path, "val", o);
    note_both(&d->test_data_sources, d->test_images_path, "test", o);
    return DEFT_OK;
}

/* ---- classes ---------------------------------------------------------------------------------- */

static void free_classes(struct deft_unet_dataset_config *d) {
    for (int i = 0; d->classes && i < d->n_classes; i++) deft_free(d->classes[i].name);
    deft_free(d->classes);
    d->classes = NULL;
    d->n_classes = 0;
}

/* Names set, label ids unique per class, names not used for two classes. */
static enum deft_status check_entries(const struct deft_unet_data_class_config *dc, const struct deft_spec_origin *o) {
    const struct deft_unet_target_class *tc = dc->target_classes;
    char at[300];
    for (int i = 0; i < dc->n_target_classes; i++) {
        const char *empty = !*tc[i].name ? "name" : !*tc[i].mapping_class ? "mapping_class" : NULL;
        if (empty) {
            deft_spec_origin_where_element(o, TC_LIST, i, empty, at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d].%s is empty: every target class needs a name and "
                                  "the mapping_class it trains as", at, TC_LIST, i, empty);
        }
        for (int j = 0; j < i; j++) {
            bool same_id = tc[i].label_id == tc[j].label_id, same_name = strcmp(tc[i].name, tc[j].name) == 0;
            if (!(same_id || same_name) || strcmp(tc[i].mapping_class, tc[j].mapping_class) == 0) continue;
            deft_spec_origin_where_element(o, TC_LIST, i, same_id ? "label_id" : "name", at, sizeof at);
            if (same_id)
                return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d].label_id %d is also the label_id of '%.40s' "
                                      "(entry %d) but maps to '%.40s', not '%.40s': a label id trains one class",
                                      at, TC_LIST, i, tc[i].label_id, tc[j].name, j, tc[i].mapping_class,
                                      tc[j].mapping_class);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d].name '%.40s' is given twice with different "
                                  "mapping_class ('%.40s', '%.40s'): rename one", at, TC_LIST, i, tc[i].name,
                                  tc[j].mapping_class, tc[i].mapping_class);
        }
    }
    return DEFT_OK;
}

/* The entry that gives class `m` its id: the last one named m (TAO's name ->
 * label_id table keeps the last), else the smallest label_id mapped to m.
 * Entries with the ignore id do not count. -1 when none. */
static int defining_entry(const struct deft_unet_data_class_config *dc, const char *m) {
    int by_name = -1, by_id = -1;
    for (int i = 0; i < dc->n_target_classes; i++) {
        const struct deft_unet_target_class *t = &dc->target_classes[i];
        if (t->label_id == dc->ignore_label_id) continue;
        if (strcmp(t->name, m) == 0) by_name = i;
        if (strcmp(t->mapping_class, m) == 0 && (by_id < 0 || t->label_id < dc->target_classes[by_id].label_id))
            by_id = i;
    }
    return by_name >= 0 ? by_name : by_id;
}

static int cmp_class(const void *a, const void *b) {
    const struct deft_unet_class *x = a, *y = b;
    return (x->label_id > y->label_id) - (x->label_id < y->label_id);
}

static int class_index(const struct deft_unet_dataset_config *d, const char *name) {
    for (int k = 0; k < d->n_classes; k++)
        if (strcmp(d->classes[k].name, name) == 0) return k;
    return -1;
}

/* One class per distinct mapping_class, ranked by the label id of its
 * defining entry (TAO's train ids); then the label id -> class table. */
static enum deft_status build_classes(struct deft_unet_dataset_config *d, const struct deft_spec_origin *o) {
    const struct deft_unet_data_class_config *dc = &d->data_class_config;
    free_classes(d);
    d->classes = deft_calloc((size_t)dc->n_target_classes + 1, sizeof *d->classes);
    if (!d->classes) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < dc->n_target_classes; i++) {
        const struct deft_unet_target_class *t = &dc->target_classes[i];
        if (t->label_id == dc->ignore_label_id || class_index(d, t->mapping_class) >= 0) continue;
        int e = defining_entry(dc, t->mapping_class);
        struct deft_unet_class *k = &d->classes[d->n_classes];
        if (!(k->name = deft_strdup(t->mapping_class))) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        k->label_id = dc->target_classes[e].label_id;
        k->weight = dc->target_classes[e].class_weight;
        d->n_classes++;
    }
    qsort(d->classes, (size_t)d->n_classes, sizeof *d->classes, cmp_class);
    char at[300];
    for (int k = 1; k < d->n_classes; k++)
        if (d->classes[k].label_id == d->classes[k - 1].label_id) {
            deft_spec_origin_where(o, TC_LIST, at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: classes '%.40s' and '%.40s' both take label_id %d "
                                  "(the label_id of the entry named like each): give each class its own entry",
                                  at, TC_LIST, d->classes[k - 1].name, d->classes[k].name, d->classes[k].label_id);
        }
    for (int v = 0; v <= DEFT_UNET_MAX_LABEL_ID; v++) d->label_to_class[v] = DEFT_UNET_LABEL_UNKNOWN;
    for (int i = 0; i < dc->n_target_classes; i++) {
        const struct deft_unet_target_class *t = &dc->target_classes[i];
        if (t->label_id != dc->ignore_label_id) d->label_to_class[t->label_id] = class_index(d, t->mapping_class);
    }
    if (dc->ignore_label_id >= 0) d->label_to_class[dc->ignore_label_id] = DEFT_UNET_LABEL_IGNORE;
    return DEFT_OK;
}

static enum deft_status check_classes(struct deft_unet_config *c, const struct deft_spec_origin *o) {
    struct deft_unet_dataset_config *d = &c->dataset_config;
    char at[300];
    if (!d->has_data_class_config || d->data_class_config.n_target_classes == 0) {
        bool top = o->tree && deft_spec_node_at(o->tree, "data_class_config");
        deft_spec_origin_where(o, d->has_data_class_config ? "dataset_config.data_class_config" : "dataset_config", at,
                               sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config needs data_class_config { target_classes { name: "
                              "\"background\" mapping_class: \"background\" label_id: 0 } ... }%s", at,
                              top ? " (the top-level data_class_config is not read, by TAO either: move it into "
                                    "dataset_config)" : "");
    }
    enum deft_status s = check_entries(&d->data_class_config, o);
    if (!s) s = build_classes(d, o);
    if (s) return s;
    if (d->n_classes < 2) {
        deft_spec_origin_where(o, TC_LIST, at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: data_class_config gives %d class%s: segmentation needs at least "
                              "2 (the background is a class too)", at, d->n_classes, d->n_classes == 1 ? "" : "es");
    }
    if (c->model_config.activation_kind == DEFT_UNET_SIGMOID && d->n_classes != 2) {
        deft_spec_origin_where(o, "model_config.activation", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.activation sigmoid is for binary segmentation (2 "
                              "classes) but data_class_config gives %d: use softmax", at, d->n_classes);
    }
    if (d->masks_binary && d->n_classes != 2)
        deft_log(DEFT_LOG_WARN, "%s: input_image_type grayscale reads masks as 0/255 (label ids 0 and 1, as TAO) but "
                 "data_class_config gives %d classes", o->file, d->n_classes);
    return DEFT_OK;
}

/* TAO reads an augmentation probability of 0 as 0.5 (delta: 0.2); deft
 * takes an explicit 0 at its word, and says so. */
static void note_zero_augmentation(const struct deft_unet_config *c, const struct deft_spec_origin *o) {
    const struct deft_unet_augmentation_config *a = &c->dataset_config.augmentation_config;
    const struct { const char *path; double v; } f[] = {
        {"dataset_config.augmentation_config.spatial_augmentation.hflip_probability", a->spatial_augmentation.hflip_probability},
        {"dataset_config.augmentation_config.spatial_augmentation.vflip_probability", a->spatial_augmentation.vflip_probability},
        {"dataset_config.augmentation_config.spatial_augmentation.crop_and_resize_prob",
         a->spatial_augmentation.crop_and_resize_prob},
        {"dataset_config.augmentation_config.brightness_augmentation.delta", a->brightness_augmentation.delta}};
    if (!c->dataset_config.augment) return;
    for (int i = 0; i < N_OF(f); i++)
        if (f[i].v == 0)
            deft_log(DEFT_LOG_WARN, "%s: %s is 0: deft does not apply it; TAO would use %s", o->file, f[i].path,
                     i == 3 ? "0.2" : "0.5");
}

static enum deft_status resolve(void *obj, const struct deft_spec_origin *o) {
    struct deft_unet_config *c = obj;
    enum deft_status s = check_model(&c->model_config, o);
    if (!s) s = check_training(&c->training_config, o);
    if (!s) s = check_image_type(c, o);
    if (!s) s = check_resize(&c->dataset_config, o);
    if (!s) s = check_data(&c->dataset_config, o);
    if (!s) s = check_classes(c, o);
    if (!s) note_zero_augmentation(c, o);
    return s;
}

/* ---- load / free ------------------------------------------------------------------------------- */

void deft_unet_config_free(struct deft_unet_config *c) {
    if (!c) return;
    free_classes(&c->dataset_config);
    deft_spec_release(&unet_schema, c);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

enum deft_status deft_unet_config_parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                                        const char *const *overrides, int n_overrides,
                                        struct deft_unet_config *out) {
    memset(out, 0, sizeof *out);
    enum deft_status s = deft_spec_parse_resolved(&unet_schema, out, text, n, name, fmt, overrides, n_overrides, HELP_CMD,
                                                  resolve, &out->source_path, &out->ignored_fields, &out->format);
    if (s) {
        deft_unet_config_free(out);
        return s;
    }
    if (*out->ignored_fields)
        deft_log(DEFT_LOG_INFO, "%s: accepted but not used by deft yet: %s", out->source_path, out->ignored_fields);
    return DEFT_OK;
}

/* Every path field, for deft_spec_resolve_paths (spec-relative paths). */
static enum deft_status resolve_paths(struct deft_unet_config *c, const char *path, const char *text) {
    struct deft_unet_dataset_config *d = &c->dataset_config;
    struct deft_unet_data_sources *srcs[3] = {&d->train_data_sources, &d->val_data_sources, &d->test_data_sources};
    int n = 8 + 2 * (srcs[0]->n_data_source + srcs[1]->n_data_source + srcs[2]->n_data_source), k = 0;
    char ***f = deft_calloc((size_t)n, sizeof *f);
    const char **nm = deft_calloc((size_t)n, sizeof *nm);
    enum deft_status s = DEFT_OK;
    if (!f || !nm) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) {
        f[k] = &d->train_images_path, nm[k++] = "train_images_path";
        f[k] = &d->train_masks_path, nm[k++] = "train_masks_path";
        f[k] = &d->val_images_path, nm[k++] = "val_images_path";
        f[k] = &d->val_masks_path, nm[k++] = "val_masks_path";
        f[k] = &d->test_images_path, nm[k++] = "test_images_path";
        f[k] = &d->test_masks_path, nm[k++] = "test_masks_path";
        f[k] = &c->model_config.pretrained_model_file, nm[k++] = "pretrained_model_file";
        f[k] = &c->model_config.pruned_model_path, nm[k++] = "pruned_model_path";
        for (int v = 0; v < 3; v++)
            for (int i = 0; i < srcs[v]->n_data_source; i++) {
                f[k] = &srcs[v]->data_source[i].image_path, nm[k++] = "image_path";
                f[k] = &srcs[v]->data_source[i].masks_path, nm[k++] = "masks_path";
            }
        s = deft_spec_resolve_paths((char **const *)f, nm, k, path, text);
    }
    deft_free(f);
    deft_free(nm);
    return s;
}

enum deft_status deft_unet_config_load(const char *path, const char *const *overrides, int n_overrides,
                                       struct deft_unet_config *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t n = 0;
    enum deft_status s = deft_spec_read_file(path, &text, &n);
    if (s) return s;
    s = deft_unet_config_parse(text, n, path, DEFT_SPEC_FORMAT_AUTO, overrides, n_overrides, out);
    if (!s && (s = resolve_paths(out, path, text))) deft_unet_config_free(out);
    deft_free(text);
    return s;
}

/* ---- print / help ------------------------------------------------------------------------------ */

void deft_unet_config_print(const struct deft_unet_config *c, FILE *f) {
    fprintf(f, "# deft unet spec, resolved%s%s%s%s\n", c->source_path ? " from " : "", c->source_path ? c->source_path : "",
            c->source_path ? " as " : "", c->source_path ? deft_spec_format_name(c->format) : "");
    struct deft_unet_config d;
    memset(&d, 0, sizeof d);
    bool have_d = deft_spec_defaults(&unet_schema, &d) == DEFT_OK;
    deft_spec_print(&unet_schema, c, have_d ? &d : NULL, f, 0);
    deft_spec_release(&unet_schema, &d);
}

void deft_unet_config_help(FILE *f) {
    fprintf(f,
            "UNet spec fields (TAO unet names; .txt = TAO protobuf text, .yaml = the same fields as YAML,\n"
            "repeated blocks as lists). Override any field with --set path=value (lists as [a, b]; repeated\n"
            "blocks by index: dataset_config.data_class_config.target_classes.0.class_weight=2).\n"
            "Defaults: where TAO replaces a zero, its replacement; where TAO rejects a zero, its ISBI sample\n"
            "value; otherwise 0. Classes: one per distinct mapping_class, ordered by the label_id of the entry\n"
            "named like it (TAO's train ids); label ids absent from target_classes are an error in the masks.\n\n");
    fprintf(f, "%-48s %-12s %-12s %s\n", "field", "type", "default", "meaning");
    deft_spec_help(&unet_schema, f, "");
}

/* ---- summary ------------------------------------------------------------------------------------- */

static void print_split(FILE *f, const char *title, const char *img, const char *msk,
                        const struct deft_unet_data_sources *src) {
    if (src->n_data_source == 0 && !*img) {
        fprintf(f, "  %-13s: none\n", title);
        return;
    }
    if (src->n_data_source == 0) {
        fprintf(f, "  %-13s: images %s%s%s\n", title, img, *msk ? ", masks " : "", msk);
        return;
    }
    for (int i = 0; i < src->n_data_source; i++) {
        const struct deft_unet_data_source *s = &src->data_source[i];
        fprintf(f, "  %-13s: image list %s%s%s\n", i ? "" : title, s->image_path, *s->masks_path ? ", mask list " : "",
                s->masks_path);
    }
}

static void print_classes(const struct deft_unet_dataset_config *d, FILE *f) {
    fprintf(f, "  %-13s: %d:", "classes", d->n_classes);
    for (int k = 0; k < d->n_classes; k++)
        fprintf(f, "%s %d %s (label_id %d, weight %g)", k ? "," : "", k, d->classes[k].name, d->classes[k].label_id,
                d->classes[k].weight);
    fprintf(f, "\n  %-13s:", "label ids");
    bool first = true;
    for (int v = 0; v <= DEFT_UNET_MAX_LABEL_ID; v++) {
        int k = d->label_to_class[v];
        if (k == DEFT_UNET_LABEL_UNKNOWN) continue;
        fprintf(f, "%s %d -> %s", first ? "" : ",", v, k == DEFT_UNET_LABEL_IGNORE ? "ignored" : d->classes[k].name);
        first = false;
    }
    fprintf(f, "; any other value in a mask is an error\n");
    fprintf(f, "  %-13s: %s\n", "masks", d->masks_binary ? "0/255 images (grayscale experiment, as TAO): >= 128 is "
            "label id 1, else 0" : "8-bit label ids");
}

static void print_network(const struct deft_unet_config *c, FILE *f) {
    const struct deft_unet_model_config *m = &c->model_config;
    static const char *const inits[] = {"GLOROT_UNIFORM", "HE_NORMAL", "HE_UNIFORM"};
    fprintf(f, "  %-13s: arch %s", "network", m->arch);
    if (m->arch_kind == DEFT_UNET_ARCH_RESNET || m->arch_kind == DEFT_UNET_ARCH_VGG)
        fprintf(f, ", num_layers %d", m->num_layers);
    fprintf(f, ", batch norm %s%s%s, activation %s, initializer %s (deft: PyTorch's defaults)",
            m->use_batch_norm ? "on" : "off",
            m->all_projections && m->arch_kind == DEFT_UNET_ARCH_RESNET ? ", all projections" : "",
            m->freeze_bn ? ", freeze_bn" : "", m->activation_kind == DEFT_UNET_SIGMOID ? "sigmoid" : "softmax",
            inits[m->initializer >= 0 && m->initializer < 3 ? m->initializer : 0]);
    for (int i = 0; i < m->n_freeze_blocks; i++)
        fprintf(f, "%s%d", i ? ", " : ", frozen blocks ", (int)m->freeze_blocks[i]);
    fprintf(f, "%s\n", m->enable_qat ? ", QAT" : "");
    const struct deft_unet_dataset_config *d = &c->dataset_config;
    static const char *const pre[] = {"x/127.5 - 1", "x/255", "x/255"};
    static const char *const methods[] = {"BILINEAR", "NEAREST_NEIGHBOR", "BICUBIC", "AREA"};
    fprintf(f, "  %-13s: %d x %d x %d (width x height x channels), %s (%s), resize %s%s\n", "input",
            m->model_input_width, m->model_input_height, m->model_input_channels,
            d->grayscale ? "grayscale" : "color RGB (TAO: BGR; deft keeps RGB for torchvision weights)",
            d->grayscale ? pre[0] : pre[d->preprocess_kind], methods[d->resize_kind],
            d->resize_padding ? " keeping the aspect ratio, padded (black image, mask ignored)" : "");
}

static void print_training(const struct deft_unet_config *c, FILE *f) {
    const struct deft_unet_training_config *t = &c->training_config;
    static const char *const losses[] = {"cross_entropy", "dice (1 - soft Dice)", "cross_dice_sum (cross entropy + dice)"};
    fprintf(f, "  %-13s: %s\n", "loss", losses[t->loss_kind]);
    fprintf(f, "  %-13s: batch %d, %d epoch%s, checkpoint every %d, log every %d step%s, seed %d", "training",
            t->batch_size, t->epochs, t->epochs == 1 ? "" : "s", t->checkpoint_interval, t->log_summary_steps,
            t->log_summary_steps == 1 ? "" : "s", c->random_seed);
    if (t->warmup_steps) fprintf(f, ", warm-up %d steps", t->warmup_steps);
    fputc('\n', f);
    const struct deft_unet_adam *a = &t->optimizer.adam;
    fprintf(f, "  %-13s: adam (beta1 %g, beta2 %g, epsilon %g)", "optimizer", a->beta1, a->beta2, a->epsilon);
    static const char *const reg[] = {"no regularizer", "L1", "L2"};
    int rt = t->regularizer.type >= 0 && t->regularizer.type < 3 ? t->regularizer.type : 0;
    if (rt == DEFT_UNET_REG_NONE) fprintf(f, ", %s\n", reg[0]);
    else fprintf(f, ", %s regularizer %g (not on batch norm or biases)\n", reg[rt], t->regularizer.weight);
    if (t->lr_kind == DEFT_UNET_LR_EXPONENTIAL)
        fprintf(f, "  %-13s: %g, times %g every %d steps\n", "learning rate", t->learning_rate,
                t->lr_scheduler.exponential_decay.decay_rate, t->lr_scheduler.exponential_decay.decay_steps);
    else if (t->lr_kind == DEFT_UNET_LR_COSINE)
        fprintf(f, "  %-13s: %g, cosine down to %g over %d steps\n", "learning rate", t->learning_rate,
                t->learning_rate * t->lr_scheduler.cosine_decay.alpha, t->lr_scheduler.cosine_decay.decay_steps);
    else fprintf(f, "  %-13s: %g (constant)\n", "learning rate", t->learning_rate);
}

void deft_unet_config_summary(const struct deft_unet_config *c, FILE *f) {
    const struct deft_unet_dataset_config *d = &c->dataset_config;
    const struct deft_unet_model_config *m = &c->model_config;
    fprintf(f, "UNet experiment from %s (%s)\n", c->source_path ? c->source_path : "memory",
            deft_spec_format_name(c->format));
    print_network(c, f);
    print_classes(d, f);
    print_training(c, f);
    const struct deft_unet_augmentation_config *a = &d->augmentation_config;
    if (d->augment)
        fprintf(f, "  %-13s: hflip %g, vflip %g, crop-and-resize %g (ratio %g), brightness %g\n", "augmentation",
                a->spatial_augmentation.hflip_probability, a->spatial_augmentation.vflip_probability,
                a->spatial_augmentation.crop_and_resize_prob, a->spatial_augmentation.crop_and_resize_ratio,
                a->brightness_augmentation.delta);
    else fprintf(f, "  %-13s: off\n", "augmentation");
    print_split(f, "train data", d->train_images_path, d->train_masks_path, &d->train_data_sources);
    print_split(f, "val data", d->val_images_path, d->val_masks_path, &d->val_data_sources);
    print_split(f, "test data", d->test_images_path, d->test_masks_path, &d->test_data_sources);
    if (*m->pretrained_model_file) fprintf(f, "  %-13s: pretrained %s\n", "start from", m->pretrained_model_file);
    else if (*m->pruned_model_path) fprintf(f, "  %-13s: pruned %s\n", "start from", m->pruned_model_path);
    else fprintf(f, "  %-13s: scratch\n", "start from");
    if (c->ignored_fields && *c->ignored_fields) fprintf(f, "  %-13s: %s\n", "not used yet", c->ignored_fields);
}

/* ---- paths ------------------------------------------------------------------------------------- */

/* `value` in a line as a whole value: after a quote, ':' or blank and
 * before a quote, ',', '}', blank or the line end (so "a" is not in "arch"). */
static bool holds_value(const char *line, const char *value) {
    size_t n = strlen(value);
    for (const char *p = strstr(line, value); p; p = strstr(p + 1, value)) {
        char before = p == line ? ' ' : p[-1], after = p[n];
        if (strchr("\"': \t", before) && strchr("\"',} \t\r\n", after)) return true;
    }
    return false;
}

/* Line of the spec file holding `value` (0 when it is not written there). */
static int line_of_value(const char *file, const char *value) {
    FILE *f = file && *value ? fopen(file, "r") : NULL;
    if (!f) return 0;
    char buf[4096];
    int line = 0, found = 0;
    while (!found && fgets(buf, sizeof buf, f)) {
        line++;
        if (holds_value(buf, value)) found = line;
    }
    fclose(f);
    return found;
}

struct path_check { const char *field, *path; };

/* The paths to check, in spec order; *n of them. */
static int collect_paths(const struct deft_unet_config *c, bool for_training, struct path_check *p, int cap) {
    const struct deft_unet_dataset_config *d = &c->dataset_config;
    int n = 0;
#define ADD(f_, p_) do { if (n < cap && *(p_)) p[n].field = (f_), p[n++].path = (p_); } while (0)
    const struct deft_unet_data_sources *srcs[3] = {&d->train_data_sources, &d->val_data_sources,
                                                    &d->test_data_sources};
    static const char *const img_f[3] = {"dataset_config.train_data_sources.data_source.image_path",
                                         "dataset_config.val_data_sources.data_source.image_path",
                                         "dataset_config.test_data_sources.data_source.image_path"};
    static const char *const msk_f[3] = {"dataset_config.train_data_sources.data_source.masks_path",
                                         "dataset_config.val_data_sources.data_source.masks_path",
                                         "dataset_config.test_data_sources.data_source.masks_path"};
    for (int v = 0; v < (for_training ? 2 : 3); v++)
        for (int i = 0; i < srcs[v]->n_data_source; i++) {
            ADD(img_f[v], srcs[v]->data_source[i].image_path);
            ADD(msk_f[v], srcs[v]->data_source[i].masks_path);
        }
    if (!d->train_data_sources.n_data_source) {
        ADD("dataset_config.train_images_path", d->train_images_path);
        ADD("dataset_config.train_masks_path", d->train_masks_path);
    }
    if (!d->val_data_sources.n_data_source) {
        ADD("dataset_config.val_images_path", d->val_images_path);
        ADD("dataset_config.val_masks_path", d->val_masks_path);
    }
    if (!for_training && !d->test_data_sources.n_data_source) {
        ADD("dataset_config.test_images_path", d->test_images_path);
        ADD("dataset_config.test_masks_path", d->test_masks_path);
    }
    ADD("model_config.pretrained_model_file", c->model_config.pretrained_model_file);
    ADD("model_config.pruned_model_path", c->model_config.pruned_model_path);
#undef ADD
    return n;
}

enum deft_status deft_unet_config_validate_paths(const struct deft_unet_config *c, bool for_training) {
    const struct deft_unet_dataset_config *d = &c->dataset_config;
    const char *src = c->source_path ? c->source_path : "spec";
    char at[4200];
    enum deft_status st = DEFT_OK;
    if (!d->train_data_sources.n_data_source && !*d->train_images_path) {
        const char *msg = "dataset_config gives no training data: set train_images_path and train_masks_path (or "
                          "train_data_sources)";
        if (for_training) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s", src, msg);
        deft_log(DEFT_LOG_WARN, "%s: %s", src, msg);
        st = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s", src, msg); /* a dry run's verdict too */
    }
    struct path_check p[64];
    int n = collect_paths(c, for_training, p, N_OF(p));
    for (int i = 0; i < n; i++) {
        struct stat sb;
        if (stat(p[i].path, &sb) == 0) continue;
        int line = line_of_value(c->source_path, p[i].path);
        if (line) snprintf(at, sizeof at, "%s:%d", src, line);
        else snprintf(at, sizeof at, "%s", src);
        if (for_training)
            return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: '%s' does not exist (fix the path in the spec or use "
                                  "--set)", at, p[i].field, p[i].path);
        deft_log(DEFT_LOG_WARN, "%s: %s: '%s' does not exist", at, p[i].field, p[i].path);
        if (!st) st = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: '%s' does not exist", at, p[i].field, p[i].path);
    }
    return st;
}

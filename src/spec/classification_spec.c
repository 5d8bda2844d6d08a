/* classification_spec.c - the classification spec (spec module): schema
 * tables for TAO's makenet Experiment (TF1 protobuf text and deft's native
 * YAML share them) plus deft extensions, the TAO PyTorch classification YAML
 * mapped onto the same struct, flavour detection, --set, resolution and
 * semantic checks, printing, --help-spec and the input-path list. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "spec/spec_impl.h"

#define NO_OFF DEFT_SPEC_NO_OFFSET
#define REQ DEFT_SPEC_REQUIRED
#define IGN DEFT_SPEC_IGNORED
#define EXT DEFT_SPEC_DEFT
#define GE DEFT_SPEC_MIN
#define LE DEFT_SPEC_MAX
#define GT DEFT_SPEC_MIN_EXCL
#define HELP_CMD "deft classification --help-spec"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define F_STR(T, m, def, fl, help) {#m, DEFT_SPEC_T_STRING, offsetof(T, m), NO_OFF, def, 0, 0, fl, help, NULL, NULL, NULL}
#define F_INT(T, m, def, lo, hi, fl, help) {#m, DEFT_SPEC_T_INT, offsetof(T, m), NO_OFF, def, lo, hi, fl, help, NULL, NULL, NULL}
#define F_FLT(T, m, def, lo, hi, fl, help) {#m, DEFT_SPEC_T_FLOAT, offsetof(T, m), NO_OFF, def, lo, hi, fl, help, NULL, NULL, NULL}
#define F_BOOL(T, m, def, fl, help) {#m, DEFT_SPEC_T_BOOL, offsetof(T, m), NO_OFF, def, 0, 0, fl, help, NULL, NULL, NULL}
#define F_ENUM(T, m, def, vals, fl, help) {#m, DEFT_SPEC_T_ENUM, offsetof(T, m), NO_OFF, def, 0, 0, fl, help, NULL, vals, NULL}
#define F_LIST(ty, T, m, cnt, def, lo, hi, fl, help) {#m, ty, offsetof(T, m), offsetof(T, cnt), def, lo, hi, fl, help, NULL, NULL, NULL}
#define F_MAP(T, m, cnt, fl, help) {#m, DEFT_SPEC_T_FLOAT_MAP, offsetof(T, m), offsetof(T, cnt), NULL, 0, 0, fl, help, NULL, NULL, NULL}
#define F_MSG(T, m, sub, fl, help) {#m, DEFT_SPEC_T_MSG, offsetof(T, m), NO_OFF, NULL, 0, 0, fl, help, &sub, NULL, NULL}
#define F_ONEOF(T, m, has, sub, group, fl, help) {#m, DEFT_SPEC_T_MSG, offsetof(T, m), offsetof(T, has), NULL, 0, 0, fl, help, &sub, NULL, group}
#define F_ANY(key, help) {key, DEFT_SPEC_T_ANY, 0, NO_OFF, NULL, 0, 0, IGN, help, NULL, NULL, NULL}
#define SCHEMA(name, fields) {name, fields, N_OF(fields)}

/* ---- enums ---------------------------------------------------------------- */

static const struct deft_spec_enum_val interp_vals[] = {
    {"BILINEAR", DEFT_CLS_INTERP_BILINEAR}, {"BICUBIC", DEFT_CLS_INTERP_BICUBIC}, {NULL, 0}};
static const struct deft_spec_enum_val reg_vals[] = {
    {"NO_REG", DEFT_CLS_REG_NONE}, {"None", DEFT_CLS_REG_NONE}, {"", DEFT_CLS_REG_NONE},
    {"L1", DEFT_CLS_REG_L1},       {"L2", DEFT_CLS_REG_L2},     {NULL, 0}};
static const struct deft_spec_enum_val prep_vals[] = {
    {"caffe", DEFT_CLS_PREPROCESS_CAFFE}, {"", DEFT_CLS_PREPROCESS_CAFFE},
    {"torch", DEFT_CLS_PREPROCESS_TORCH}, {"tf", DEFT_CLS_PREPROCESS_TF},
    {"custom", DEFT_CLS_PREPROCESS_CUSTOM}, {NULL, 0}};

/* ---- model_config -------------------------------------------------------- */

#define T struct deft_cls_bn_config
static const struct deft_spec_field bn_fields[] = {
    F_FLT(T, momentum, "0.9", 0, 1, GE | LE, "moving-average momentum of batch-norm statistics"),
    F_FLT(T, epsilon, "0.001", 0, 1, GT | LE, "batch-norm epsilon"),
};
#undef T
static const struct deft_spec_schema bn_schema = SCHEMA("BatchNormConfig", bn_fields);

#define T struct deft_cls_activation
static const struct deft_spec_field act_fields[] = {
    F_STR(T, activation_type, NULL, IGN, "activation name (TAO; deft uses the architecture's)"),
    F_MAP(T, activation_parameters, n_activation_parameters, IGN, "activation parameters"),
};
#undef T
static const struct deft_spec_schema act_schema = SCHEMA("Activation", act_fields);

#define T struct deft_cls_model_config
static const struct deft_spec_field model_fields[] = {
    F_STR(T, arch, NULL, REQ, "backbone: resnet, vgg, mobilenet_v1, mobilenet_v2, efficientnet_b0, ..."),
    F_STR(T, input_image_size, "\"3,224,224\"", 0, "input size \"C,H,W\" (C 1 or 3, H and W >= 16)"),
    F_ENUM(T, resize_interpolation_method, "BILINEAR", interp_vals, 0, "resize filter"),
    F_INT(T, n_layers, "0", 0, 1000, GE | LE, "depth for family names (resnet 10/18/34/50/101, vgg 16/19, ...); 0 = the arch name is complete"),
    F_BOOL(T, retain_head, NULL, 0, "keep the pretrained classifier head (same classes)"),
    F_BOOL(T, use_batch_norm, "true", 0, "batch normalization after convolutions"),
    F_BOOL(T, use_bias, NULL, 0, "convolutions have biases"),
    F_BOOL(T, use_pooling, NULL, 0, "max-pool in the stem (else strided convolution)"),
    F_BOOL(T, all_projections, NULL, 0, "projection shortcuts in every residual block"),
    F_BOOL(T, freeze_bn, NULL, 0, "keep batch-norm statistics and affine parameters fixed"),
    F_BOOL(T, sync_bn, NULL, EXT, "data parallel (mpirun, --gpus N): batch-norm statistics over the global batch, "
           "all-reduced across the ranks (PyTorch SyncBatchNorm); off: each rank's own batch"),
    F_LIST(DEFT_SPEC_T_INT_LIST, T, freeze_blocks, n_freeze_blocks, NULL, 0, 0, GE,
           "blocks whose weights stay fixed (repeated: freeze_blocks: 0 freeze_blocks: 1)"),
    F_FLT(T, dropout, NULL, 0, 1, GE | DEFT_SPEC_MAX, "dropout before the classifier (0 off)"),
    F_MSG(T, batch_norm_config, bn_schema, 0, "batch-norm momentum and epsilon"),
    F_MSG(T, activation, act_schema, IGN, "activation override (TAO)"),
    F_STR(T, byom_model, NULL, IGN, "TAO bring-your-own-model file"),
    F_INT(T, num_classes, NULL, 0, 100000, GE | LE | EXT, "number of classes (0: from the dataset folders)"),
    F_BOOL(T, freeze_backbone, NULL, EXT, "train only the classifier head"),
    F_BOOL(T, load_graph, NULL, EXT, "use the graph of pretrained_model_path (retraining a pruned model; "
           "automatic for pruned deft models)"),
};
#undef T
static const struct deft_spec_schema model_schema = SCHEMA("ModelConfig", model_fields);

/* ---- optimizer ------------------------------------------------------------ */

#define T struct deft_cls_sgd
static const struct deft_spec_field sgd_fields[] = {
    F_FLT(T, lr, "0.01", 0, 0, GT, "learning rate (a lr_config schedule overrides it)"),
    F_FLT(T, decay, NULL, 0, 0, GE, "Keras per-iteration decay: lr / (1 + decay * t)"),
    F_FLT(T, momentum, "0.9", 0, 1, GE | LE, "momentum"),
    F_BOOL(T, nesterov, NULL, 0, "Nesterov momentum"),
};
#undef T
#define T struct deft_cls_adam
static const struct deft_spec_field adam_fields[] = {
    F_FLT(T, lr, "0.001", 0, 0, GT, "learning rate"),
    F_FLT(T, beta_1, "0.9", 0, 1, GE | DEFT_SPEC_MAX, "first-moment decay"),
    F_FLT(T, beta_2, "0.999", 0, 1, GE | DEFT_SPEC_MAX, "second-moment decay"),
    F_FLT(T, epsilon, "1e-07", 0, 0, GT, "denominator epsilon"),
    F_FLT(T, decay, NULL, 0, 0, GE, "Keras per-iteration decay"),
};
#undef T
#define T struct deft_cls_rmsprop
static const struct deft_spec_field rmsprop_fields[] = {
    F_FLT(T, lr, "0.001", 0, 0, GT, "learning rate"),
    F_FLT(T, rho, "0.9", 0, 1, GE | DEFT_SPEC_MAX, "squared-gradient decay"),
    F_FLT(T, epsilon, "1e-07", 0, 0, GT, "denominator epsilon"),
    F_FLT(T, decay, NULL, 0, 0, GE, "Keras per-iteration decay"),
};
#undef T
#define T struct deft_cls_adamw
static const struct deft_spec_field adamw_fields[] = {
    F_FLT(T, lr, "0.001", 0, 0, GT, "learning rate"),
    F_FLT(T, beta_1, "0.9", 0, 1, GE | DEFT_SPEC_MAX, "first-moment decay"),
    F_FLT(T, beta_2, "0.999", 0, 1, GE | DEFT_SPEC_MAX, "second-moment decay"),
    F_FLT(T, epsilon, "1e-08", 0, 0, GT, "denominator epsilon"),
    F_FLT(T, weight_decay, "0.01", 0, 0, GE, "decoupled weight decay (PyTorch AdamW)"),
};
#undef T
static const struct deft_spec_schema sgd_schema = SCHEMA("SgdOptimizerConfig", sgd_fields);
static const struct deft_spec_schema adam_schema = SCHEMA("AdamOptimizerConfig", adam_fields);
static const struct deft_spec_schema rmsprop_schema = SCHEMA("RmspropOptimizerConfig", rmsprop_fields);
static const struct deft_spec_schema adamw_schema = SCHEMA("AdamWOptimizerConfig", adamw_fields);

#define T struct deft_cls_optimizer_config
static const struct deft_spec_field optim_fields[] = {
    F_ONEOF(T, sgd, has_sgd, sgd_schema, "optim", 0, "SGD with momentum (default when none is given)"),
    F_ONEOF(T, adam, has_adam, adam_schema, "optim", 0, "Adam"),
    F_ONEOF(T, rmsprop, has_rmsprop, rmsprop_schema, "optim", 0, "RMSProp"),
    F_ONEOF(T, adamw, has_adamw, adamw_schema, "optim", EXT, "AdamW (decoupled weight decay)"),
};
#undef T
static const struct deft_spec_schema optim_schema = SCHEMA("OptimizerConfig", optim_fields);

#define T struct deft_cls_reg_config
static const struct deft_spec_field reg_fields[] = {
    F_ENUM(T, type, "NO_REG", reg_vals, 0, "regularizer"),
    F_STR(T, scope, "\"Conv2D,Dense\"", 0, "layer kinds regularized (comma-separated)"),
    F_FLT(T, weight_decay, NULL, 0, 0, GE, "strength (Keras: loss += wd * sum(w^2) for L2)"),
};
#undef T
static const struct deft_spec_schema reg_schema = SCHEMA("RegConfig", reg_fields);

/* ---- lr_config ------------------------------------------------------------ */

#define T struct deft_cls_lr_step
static const struct deft_spec_field step_fields[] = {
    F_FLT(T, learning_rate, "0.01", 0, 0, GT, "base learning rate"),
    F_INT(T, step_size, "10", 1, 0, GE, "epochs between decays"),
    F_FLT(T, gamma, "0.1", 0, 1, GT | LE, "decay factor"),
};
#undef T
#define T struct deft_cls_lr_soft_anneal
static const struct deft_spec_field anneal_fields[] = {
    F_FLT(T, learning_rate, "0.01", 0, 0, GT, "maximum learning rate"),
    F_FLT(T, soft_start, "0.05", 0, 1, GE | DEFT_SPEC_MAX, "fraction of the run spent ramping up"),
    F_FLT(T, annealing_divider, "10.0", 1, 0, GE, "lr is divided by this at each annealing point"),
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, annealing_points, n_annealing_points, "[0.3, 0.6, 0.8]", 0, 1,
           GE | LE, "fractions of the run where the lr drops (repeated)"),
};
#undef T
#define T struct deft_cls_lr_cosine
static const struct deft_spec_field cosine_fields[] = {
    F_FLT(T, learning_rate, "0.01", 0, 0, GT, "maximum learning rate"),
    F_FLT(T, min_lr_ratio, "0.001", 0, 1, GE | LE, "final lr as a fraction of learning_rate"),
    F_FLT(T, soft_start, NULL, 0, 1, GE | DEFT_SPEC_MAX, "fraction of the run spent ramping up"),
};
#undef T
#define T struct deft_cls_lr_linear
static const struct deft_spec_field linear_fields[] = {
    F_FLT(T, learning_rate, "0.01", 0, 0, GT, "starting learning rate"),
    F_FLT(T, min_lr_ratio, NULL, 0, 1, GE | LE, "final lr as a fraction of learning_rate"),
};
#undef T
static const struct deft_spec_schema step_schema = SCHEMA("StepLrConfig", step_fields);
static const struct deft_spec_schema anneal_schema = SCHEMA("SoftAnnealLrConfig", anneal_fields);
static const struct deft_spec_schema cosine_schema = SCHEMA("CosineLrConfig", cosine_fields);
static const struct deft_spec_schema linear_schema = SCHEMA("LinearLrConfig", linear_fields);

#define T struct deft_cls_lr_config
static const struct deft_spec_field lr_fields[] = {
    F_ONEOF(T, step, has_step, step_schema, "lr_scheduler", 0, "step decay"),
    F_ONEOF(T, soft_anneal, has_soft_anneal, anneal_schema, "lr_scheduler", 0, "soft start + annealing"),
    F_ONEOF(T, cosine, has_cosine, cosine_schema, "lr_scheduler", 0, "soft start + cosine decay"),
    F_ONEOF(T, linear, has_linear, linear_schema, "lr_scheduler", EXT, "linear decay"),
    F_FLT(T, warmup_epochs, NULL, 0, 0, GE | EXT, "linear warmup length in epochs"),
};
#undef T
static const struct deft_spec_schema lr_schema = SCHEMA("LRConfig", lr_fields);

/* ---- train_config ----------------------------------------------------------- */

#define T struct deft_cls_visualizer
static const struct deft_spec_field vis_fields[] = {
    F_BOOL(T, enabled, NULL, 0, "TensorBoard images"),
    F_INT(T, num_images, "3", 0, 0, GE, "images per summary"),
    F_BOOL(T, weight_histograms, NULL, 0, "weight histograms"),
    F_ANY("wandb_config", "Weights & Biases settings (TAO)"),
    F_ANY("clearml_config", "ClearML settings (TAO)"),
};
#undef T
static const struct deft_spec_schema vis_schema = SCHEMA("VisualizerConfig", vis_fields);

#define T struct deft_cls_augmentation
static const struct deft_spec_field aug_fields[] = {
    F_FLT(T, scale_min, "0.08", 0, 1, GT | LE, "random-resized-crop: smallest area fraction"),
    F_FLT(T, scale_max, "1.0", 0, 1, GT | LE, "random-resized-crop: largest area fraction"),
    F_FLT(T, ratio_min, "0.75", 0, 0, GT, "random-resized-crop: smallest aspect ratio"),
    F_FLT(T, ratio_max, "1.3333333333333333", 0, 0, GT, "random-resized-crop: largest aspect ratio"),
    F_FLT(T, hflip_prob, "0.5", 0, 1, GE | LE, "horizontal flip probability"),
    F_FLT(T, vflip_prob, NULL, 0, 1, GE | LE, "vertical flip probability"),
    F_FLT(T, rotation_degrees, NULL, 0, 180, GE | LE, "random rotation in [-deg, deg] (0 off)"),
    F_FLT(T, rotate_prob, NULL, 0, 1, GE | LE, "probability of rotating by one of rotate_angles"),
    F_LIST(DEFT_SPEC_T_INT_LIST, T, rotate_angles, n_rotate_angles, NULL, -360, 360, GE | LE,
           "angles for rotate_prob, e.g. [90, 180, 270]"),
    F_FLT(T, brightness, NULL, 0, 0, GE, "color jitter brightness"),
    F_FLT(T, contrast, NULL, 0, 0, GE, "color jitter contrast"),
    F_FLT(T, saturation, NULL, 0, 0, GE, "color jitter saturation"),
    F_FLT(T, hue, NULL, 0, 0.5, GE | LE, "color jitter hue"),
};
#undef T
static const struct deft_spec_schema aug_schema = SCHEMA("Augmentation", aug_fields);

#define T struct deft_cls_train_config
static const struct deft_spec_field train_fields[] = {
    F_STR(T, train_dataset_path, NULL, REQ, "training images: <dir>/<class>/<image>"),
    F_STR(T, val_dataset_path, NULL, 0, "validation images, same layout (\"\": none)"),
    F_STR(T, pretrained_model_path, NULL, 0, "weights to start from (\"\": from scratch)"),
    F_STR(T, pruned_model_path, NULL, EXT, "a pruned deft model to retrain (its graph and weights)"),
    F_MSG(T, optimizer, optim_schema, 0, "one of sgd / adam / rmsprop / adamw"),
    F_INT(T, batch_size_per_gpu, "64", 1, 65536, GE | LE | REQ, "images per batch (per device)"),
    F_INT(T, n_epochs, "80", 1, 1000000, GE | LE | REQ, "passes over the training set"),
    F_INT(T, n_workers, "8", 0, 1024, GE | LE, "image decoding threads"),
    F_MSG(T, reg_config, reg_schema, 0, "weight regularizer"),
    F_MSG(T, lr_config, lr_schema, 0, "learning-rate schedule: step / soft_anneal / cosine / linear"),
    F_INT(T, random_seed, "42", 0, 0, GE, "seed for initialization, shuffling and augmentation"),
    F_BOOL(T, enable_random_crop, NULL, 0, "random-resized crop while training"),
    F_BOOL(T, enable_center_crop, NULL, 0, "center crop for validation"),
    F_BOOL(T, enable_color_augmentation, NULL, 0, "color jitter while training"),
    F_FLT(T, label_smoothing, NULL, 0, 1, GE | DEFT_SPEC_MAX, "label smoothing epsilon"),
    F_ENUM(T, preprocess_mode, "caffe", prep_vals, 0, "input normalization"),
    F_FLT(T, mixup_alpha, NULL, 0, 0, GE, "mixup Beta(alpha, alpha) (0 off)"),
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, model_parallelism, n_model_parallelism, NULL, 0, 0, IGN,
           "TAO model-parallel split"),
    F_MAP(T, image_mean, n_image_mean, 0, "caffe-mode mean: {r, g, b} or {l} (0-255 units)"),
    F_BOOL(T, disable_horizontal_flip, NULL, 0, "no horizontal flips"),
    F_MSG(T, visualizer, vis_schema, IGN, "TAO TensorBoard visualizer"),
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, custom_mean, n_custom_mean, NULL, 0, 1, GE | LE | EXT,
           "preprocess_mode custom: mean per channel (0-1 units, RGB)"),
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, custom_std, n_custom_std, NULL, 0, 0, GT | EXT,
           "preprocess_mode custom: std per channel (0-1 units, RGB)"),
    F_MSG(T, augmentation, aug_schema, EXT, "training augmentation details"),
    F_INT(T, val_every, "1", 0, 0, GE | EXT, "validate every N epochs (0 never)"),
    F_INT(T, checkpoint_interval, "1", 1, 0, GE | EXT, "save a checkpoint every N epochs"),
    F_INT(T, keep_checkpoints, NULL, 0, 0, GE | EXT, "keep the newest N epoch checkpoints (0 all)"),
    F_BOOL(T, save_best, "true", EXT, "keep best.safetensors by validation accuracy"),
    F_INT(T, threads, NULL, 0, 4096, GE | LE | EXT, "CPU threads (0 all; --threads wins)"),
    F_FLT(T, clip_grad_norm, NULL, 0, 0, GE | EXT, "clip the global gradient norm (0 off)"),
    F_INT(T, skip_nonfinite_batches, NULL, 0, 0, GE | EXT,
          "batches with a NaN/Inf loss to skip (counted, no update) before stopping (0 stop at once)"),
    F_BOOL(T, enable_qat, NULL, EXT, "quantization-aware training (TAO's field of the detection specs): int8 "
           "fake quantization where the INT8 export quantizes (weights per output channel, activations per "
           "tensor with moving-average ranges, straight-through gradients); the learned ranges are saved "
           "with the model and `export --data_type int8` needs no calibration images"),
    F_FLT(T, qat_ema_decay, "0.999", 0, 0.99999, GT | DEFT_SPEC_MAX | EXT,
          "enable_qat: decay of the moving average of each activation's max|x| (TAO's 0.999)"),
    F_BOOL(T, qat_freeze_bn, "true", EXT, "enable_qat: batch norm uses its running statistics (the ones the "
           "export folds into the convolutions), so training sees the deployed activations"),
    F_BOOL(T, qat_fusion, NULL, EXT, "enable_qat: also quantize residual-add and pooling inputs "
           "(TensorRT's fusion placement, export --qdq_fusion)"),
    F_LIST(DEFT_SPEC_T_STRING_LIST, T, qat_exclude, n_qat_exclude, NULL, 0, 0, EXT,
           "enable_qat: layers kept float (layer-name patterns, e.g. [\"fc\"])"),
};
#undef T
static const struct deft_spec_schema train_schema = SCHEMA("TrainConfig", train_fields);

#define T struct deft_cls_eval_config
static const struct deft_spec_field eval_fields[] = {
    F_STR(T, eval_dataset_path, NULL, 0, "evaluation images: <dir>/<class>/<image>"),
    F_STR(T, model_path, NULL, 0, "model to evaluate (-m wins)"),
    F_INT(T, top_k, "5", 1, 1000, GE | LE, "report top-k accuracy too"),
    F_INT(T, batch_size, "64", 1, 65536, GE | LE, "images per batch"),
    F_INT(T, n_workers, "8", 0, 1024, GE | LE, "image decoding threads"),
    F_BOOL(T, enable_center_crop, NULL, 0, "center crop before resizing"),
};
#undef T
static const struct deft_spec_schema eval_schema = SCHEMA("EvalConfig", eval_fields);

#define T struct deft_cls_config
static const struct deft_spec_field top_fields[] = {
    F_MSG(T, model_config, model_schema, REQ, "the network"),
    F_MSG(T, train_config, train_schema, REQ, "training"),
    F_MSG(T, eval_config, eval_schema, 0, "evaluation"),
    F_STR(T, results_dir, NULL, EXT, "default results directory (-r wins)"),
};
#undef T
static const struct deft_spec_schema cls_schema = SCHEMA("Experiment", top_fields);

/* ---- TAO PyTorch classification YAML (TAO 6 ExperimentConfig subset) ----- */

struct pyt_flip { double vflip_probability, hflip_probability; bool enable; };
struct pyt_rotate { double rotate_probability; int *angle_list; int n_angle_list; bool enable; };
struct pyt_color { double brightness, contrast, saturation, hue; bool enable; };
struct pyt_scale_crop { double *scale_range; int n_scale_range; bool enable; };
struct pyt_aug {
    struct pyt_flip random_flip;
    struct pyt_rotate random_rotate;
    struct pyt_color random_color;
    struct pyt_scale_crop with_scale_random_crop;
    bool with_random_crop, with_random_blur;
    double *mean, *std;
    int n_mean, n_std;
};
struct pyt_split { char *images_dir; };
struct pyt_dataset {
    char *dataset, *root_dir, *classes_file;
    int batch_size, workers, num_classes, img_size;
    bool shuffle;
    struct pyt_aug augmentation;
    struct pyt_split train_dataset, val_dataset, test_dataset;
};
struct pyt_backbone { char *type, *pretrained_backbone_path; bool freeze_backbone, freeze_norm; };
struct pyt_loss { char *type; double label_smooth_val; };
struct pyt_head { char *type; bool binary; int in_channels; int *topk; int n_topk; struct pyt_loss loss; };
struct pyt_model { struct pyt_backbone backbone; struct pyt_head head; };
enum { PYT_SGD, PYT_ADAM, PYT_ADAMW };
enum { PYT_LINEAR, PYT_STEP, PYT_COSINE, PYT_MULTISTEP };
struct pyt_optim {
    int optim, policy;
    double lr, weight_decay, momentum, eps, warmup_epochs, min_lr, lr_decay;
    double *betas;
    int n_betas, lr_step_size;
    int *lr_steps;
    int n_lr_steps;
};
struct pyt_train {
    bool enable_ema;
    double ema_decay, clip_grad_norm;
    int seed, num_nodes, num_gpus, validation_interval, checkpoint_interval, num_epochs;
    int *gpu_ids;
    int n_gpu_ids;
    char *resume_training_checkpoint_path, *precision, *results_dir, *checkpoint_interval_unit;
    struct pyt_optim optim;
};
struct pyt_eval {
    char *checkpoint, *trt_engine, *results_dir;
    int num_gpus, num_nodes, batch_size;
    int *gpu_ids;
    int n_gpu_ids;
};
struct pyt_cfg {
    char *results_dir, *encryption_key, *model_name;
    struct pyt_model model;
    struct pyt_dataset dataset;
    struct pyt_train train;
    struct pyt_eval evaluate;
};

#define T struct pyt_flip
static const struct deft_spec_field pflip_fields[] = {
    F_FLT(T, vflip_probability, NULL, 0, 1, GE | LE, "vertical flip probability"),
    F_FLT(T, hflip_probability, "0.5", 0, 1, GE | LE, "horizontal flip probability"),
    F_BOOL(T, enable, "true", 0, "use random flips"),
};
#undef T
#define T struct pyt_rotate
static const struct deft_spec_field prot_fields[] = {
    F_FLT(T, rotate_probability, "0.5", 0, 1, GE | LE, "rotation probability"),
    F_LIST(DEFT_SPEC_T_INT_LIST, T, angle_list, n_angle_list, "[90, 180, 270]", -360, 360, GE | LE,
           "angles to pick from"),
    F_BOOL(T, enable, NULL, 0, "use random rotations"),
};
#undef T
#define T struct pyt_color
static const struct deft_spec_field pcolor_fields[] = {
    F_FLT(T, brightness, "0.4", 0, 0, GE, "brightness jitter"),
    F_FLT(T, contrast, "0.4", 0, 0, GE, "contrast jitter"),
    F_FLT(T, saturation, "0.4", 0, 0, GE, "saturation jitter"),
    F_FLT(T, hue, NULL, 0, 0.5, GE | LE, "hue jitter"),
    F_BOOL(T, enable, NULL, 0, "use color jitter"),
};
#undef T
#define T struct pyt_scale_crop
static const struct deft_spec_field pcrop_fields[] = {
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, scale_range, n_scale_range, "[0.08, 1.0]", 0, 1, GT | LE,
           "area fraction range"),
    F_BOOL(T, enable, NULL, 0, "random-resized crop"),
};
#undef T
static const struct deft_spec_schema pflip_schema = SCHEMA("random_flip", pflip_fields);
static const struct deft_spec_schema prot_schema = SCHEMA("random_rotate", prot_fields);
static const struct deft_spec_schema pcolor_schema = SCHEMA("random_color", pcolor_fields);
static const struct deft_spec_schema pcrop_schema = SCHEMA("with_scale_random_crop", pcrop_fields);

#define T struct pyt_aug
static const struct deft_spec_field paug_fields[] = {
    F_MSG(T, random_flip, pflip_schema, 0, "flips"),
    F_MSG(T, random_rotate, prot_schema, 0, "rotations"),
    F_MSG(T, random_color, pcolor_schema, 0, "color jitter"),
    F_MSG(T, with_scale_random_crop, pcrop_schema, 0, "random-resized crop"),
    F_BOOL(T, with_random_crop, NULL, 0, "random crop"),
    F_BOOL(T, with_random_blur, NULL, IGN, "random blur"),
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, mean, n_mean, "[0.485, 0.456, 0.406]", 0, 1, GE | LE, "normalization mean"),
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, std, n_std, "[0.229, 0.224, 0.225]", 0, 0, GT, "normalization std"),
    F_ANY("random_erase", "random erasing"),
    F_ANY("random_aug", "RandAugment"),
    F_ANY("mixup_cutmix", "mixup / cutmix"),
};
#undef T
static const struct deft_spec_schema paug_schema = SCHEMA("augmentation", paug_fields);

#define T struct pyt_split
static const struct deft_spec_field psplit_fields[] = {
    F_STR(T, images_dir, NULL, 0, "images: <dir>/<class>/<image>"),
};
#undef T
static const struct deft_spec_schema psplit_schema = SCHEMA("split", psplit_fields);

#define T struct pyt_dataset
static const struct deft_spec_field pds_fields[] = {
    F_STR(T, dataset, "\"CLDataset\"", IGN, "dataset class"),
    F_STR(T, root_dir, NULL, IGN, "dataset root (classes.txt)"),
    F_STR(T, classes_file, NULL, IGN, "class list file"),
    F_INT(T, batch_size, "64", 1, 65536, GE | LE, "batch size"),
    F_INT(T, workers, "8", 0, 1024, GE | LE, "loader workers"),
    F_INT(T, num_classes, NULL, 0, 100000, GE | LE, "number of classes"),
    F_INT(T, img_size, "224", 16, 8192, GE | LE, "square input size"),
    F_BOOL(T, shuffle, "true", IGN, "shuffle"),
    F_MSG(T, augmentation, paug_schema, 0, "augmentation"),
    F_MSG(T, train_dataset, psplit_schema, 0, "training split"),
    F_MSG(T, val_dataset, psplit_schema, 0, "validation split"),
    F_MSG(T, test_dataset, psplit_schema, 0, "test split"),
    F_ANY("train_nolabel", "unlabeled images"),
    F_ANY("quant_calibration_dataset", "calibration images"),
};
#undef T
static const struct deft_spec_schema pds_schema = SCHEMA("dataset", pds_fields);

#define T struct pyt_backbone
static const struct deft_spec_field pbb_fields[] = {
    F_STR(T, type, NULL, REQ, "backbone name"),
    F_STR(T, pretrained_backbone_path, NULL, 0, "pretrained weights"),
    F_BOOL(T, freeze_backbone, NULL, 0, "train the head only"),
    F_BOOL(T, freeze_norm, NULL, 0, "freeze normalization layers"),
};
#undef T
#define T struct pyt_loss
static const struct deft_spec_field ploss_fields[] = {
    F_STR(T, type, "\"CrossEntropyLoss\"", IGN, "loss"),
    F_FLT(T, label_smooth_val, NULL, 0, 1, GE | DEFT_SPEC_MAX, "label smoothing"),
};
#undef T
static const struct deft_spec_schema ploss_schema = SCHEMA("loss", ploss_fields);
#define T struct pyt_head
static const struct deft_spec_field phead_fields[] = {
    F_STR(T, type, "\"TAOLinearClsHead\"", IGN, "head"),
    F_BOOL(T, binary, NULL, IGN, "binary head"),
    F_INT(T, in_channels, NULL, 0, 0, GE | IGN, "head input channels"),
    F_LIST(DEFT_SPEC_T_INT_LIST, T, topk, n_topk, "[1]", 1, 1000, GE | LE, "top-k accuracies to report"),
    F_MSG(T, loss, ploss_schema, 0, "loss"),
};
#undef T
static const struct deft_spec_schema pbb_schema = SCHEMA("backbone", pbb_fields);
static const struct deft_spec_schema phead_schema = SCHEMA("head", phead_fields);
#define T struct pyt_model
static const struct deft_spec_field pmodel_fields[] = {
    F_MSG(T, backbone, pbb_schema, REQ, "backbone"),
    F_MSG(T, head, phead_schema, 0, "classifier head"),
};
#undef T
static const struct deft_spec_schema pmodel_schema = SCHEMA("model", pmodel_fields);

static const struct deft_spec_enum_val poptim_vals[] = {
    {"adamw", PYT_ADAMW}, {"adam", PYT_ADAM}, {"sgd", PYT_SGD}, {NULL, 0}};
static const struct deft_spec_enum_val ppolicy_vals[] = {
    {"linear", PYT_LINEAR}, {"step", PYT_STEP}, {"cosine", PYT_COSINE}, {"multistep", PYT_MULTISTEP}, {NULL, 0}};
#define T struct pyt_optim
static const struct deft_spec_field poptim_fields[] = {
    F_ENUM(T, optim, "adamw", poptim_vals, 0, "optimizer"),
    F_ENUM(T, policy, "linear", ppolicy_vals, 0, "lr policy"),
    F_FLT(T, lr, "0.001", 0, 0, GT, "learning rate"),
    F_FLT(T, weight_decay, "0.05", 0, 0, GE, "weight decay"),
    F_FLT(T, momentum, "0.9", 0, 1, GE | LE, "SGD momentum"),
    F_LIST(DEFT_SPEC_T_FLOAT_LIST, T, betas, n_betas, "[0.9, 0.999]", 0, 1, GE | DEFT_SPEC_MAX, "Adam betas"),
    F_FLT(T, eps, "1e-08", 0, 0, GT, "Adam epsilon"),
    F_FLT(T, warmup_epochs, NULL, 0, 0, GE, "warmup epochs"),
    F_FLT(T, min_lr, NULL, 0, 0, GE, "final learning rate"),
    F_FLT(T, lr_decay, "0.1", 0, 1, GT | LE, "step decay factor"),
    F_INT(T, lr_step_size, "10", 1, 0, GE, "step policy: epochs between decays"),
    F_LIST(DEFT_SPEC_T_INT_LIST, T, lr_steps, n_lr_steps, NULL, 0, 0, GE, "multistep milestones"),
};
#undef T
static const struct deft_spec_schema poptim_schema = SCHEMA("optim", poptim_fields);
#define T struct pyt_train
static const struct deft_spec_field ptrain_fields[] = {
    F_BOOL(T, enable_ema, NULL, IGN, "exponential moving average of weights"),
    F_FLT(T, ema_decay, "0.998", 0, 1, GE | LE | IGN, "EMA decay"),
    F_FLT(T, clip_grad_norm, NULL, 0, 0, GE, "gradient clipping"),
    F_INT(T, seed, "1234", -1, 0, GE, "random seed (< 0: not fixed)"),
    F_INT(T, num_nodes, "1", 1, 0, GE | IGN, "nodes"),
    F_INT(T, num_gpus, "1", 1, 0, GE | IGN, "GPUs"),
    F_LIST(DEFT_SPEC_T_INT_LIST, T, gpu_ids, n_gpu_ids, "[0]", 0, 0, GE | IGN, "GPU ids"),
    F_INT(T, validation_interval, "1", 1, 0, GE, "validate every N epochs"),
    F_INT(T, checkpoint_interval, "1", 1, 0, GE, "checkpoint every N epochs"),
    F_STR(T, checkpoint_interval_unit, "\"epoch\"", IGN, "checkpoint unit"),
    F_INT(T, num_epochs, "10", 1, 1000000, GE | LE, "epochs"),
    F_STR(T, resume_training_checkpoint_path, NULL, IGN, "resume checkpoint"),
    F_STR(T, precision, "\"fp32\"", IGN, "precision"),
    F_STR(T, results_dir, NULL, 0, "results directory"),
    F_MSG(T, optim, poptim_schema, 0, "optimizer and schedule"),
    F_ANY("tensorboard", "TensorBoard settings"),
    F_ANY("cudnn", "cuDNN settings"),
    F_ANY("checkpointer", "best-checkpoint settings"),
};
#undef T
static const struct deft_spec_schema ptrain_schema = SCHEMA("train", ptrain_fields);
#define T struct pyt_eval
static const struct deft_spec_field peval_fields[] = {
    F_STR(T, checkpoint, NULL, 0, "model to evaluate"),
    F_STR(T, trt_engine, NULL, IGN, "TensorRT engine"),
    F_STR(T, results_dir, NULL, IGN, "results"),
    F_INT(T, num_gpus, "1", 1, 0, GE | IGN, "GPUs"),
    F_INT(T, num_nodes, "1", 1, 0, GE | IGN, "nodes"),
    F_LIST(DEFT_SPEC_T_INT_LIST, T, gpu_ids, n_gpu_ids, "[0]", 0, 0, GE | IGN, "GPU ids"),
    F_INT(T, batch_size, "-1", -1, 0, GE, "batch size (-1: dataset.batch_size)"),
};
#undef T
static const struct deft_spec_schema peval_schema = SCHEMA("evaluate", peval_fields);
#define T struct pyt_cfg
static const struct deft_spec_field ptop_fields[] = {
    F_STR(T, results_dir, NULL, 0, "results directory"),
    F_STR(T, encryption_key, NULL, IGN, "TAO model key"),
    F_STR(T, model_name, NULL, IGN, "model name"),
    F_MSG(T, model, pmodel_schema, REQ, "model"),
    F_MSG(T, dataset, pds_schema, REQ, "dataset"),
    F_MSG(T, train, ptrain_schema, 0, "training"),
    F_MSG(T, evaluate, peval_schema, 0, "evaluation"),
    F_ANY("wandb", "Weights & Biases"),
    F_ANY("inference", "inference settings"),
    F_ANY("export", "export settings"),
    F_ANY("gen_trt_engine", "TensorRT settings"),
    F_ANY("distill", "distillation settings"),
    F_ANY("quantize", "quantization settings"),
};
#undef T
static const struct deft_spec_schema pyt_schema = SCHEMA("ExperimentConfig", ptop_fields);

/* ---- helpers ---------------------------------------------------------------- */

const char *deft_spec_format_name(enum deft_spec_format f) {
    switch (f) {
    case DEFT_SPEC_FORMAT_PROTOTXT: return "TAO protobuf text";
    case DEFT_SPEC_FORMAT_YAML: return "deft YAML";
    case DEFT_SPEC_FORMAT_TAO_PYT: return "TAO PyTorch YAML";
    default: return "auto";
    }
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return false;
    for (size_t i = 0; i < b; i++) {
        char c = s[a - b + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != suf[i]) return false;
    }
    return true;
}

/* Protobuf text when the first field is `name {` / `name: {` / `name <`. */
static bool looks_prototxt(const char *t, size_t n) {
    size_t i = 0;
    for (;;) {
        while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n')) i++;
        if (i < n && t[i] == '#') {
            while (i < n && t[i] != '\n') i++;
            continue;
        }
        break;
    }
    size_t s = i;
    while (i < n && ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
                     (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
        i++;
    if (i == s) return false;
    while (i < n && (t[i] == ' ' || t[i] == '\t')) i++;
    if (i < n && t[i] == ':') {
        i++;
        while (i < n && (t[i] == ' ' || t[i] == '\t')) i++;
    }
    return i < n && (t[i] == '{' || t[i] == '<');
}

static enum deft_spec_format detect(const char *name, const char *text, size_t n) {
    if (ends_with(name, ".txt") || ends_with(name, ".prototxt") || ends_with(name, ".pbtxt") ||
        ends_with(name, ".cfg") || ends_with(name, ".spec") || ends_with(name, ".pb.txt"))
        return DEFT_SPEC_FORMAT_PROTOTXT;
    if (ends_with(name, ".yaml") || ends_with(name, ".yml")) return DEFT_SPEC_FORMAT_YAML;
    return looks_prototxt(text, n) ? DEFT_SPEC_FORMAT_PROTOTXT : DEFT_SPEC_FORMAT_YAML;
}

/* TAO PyTorch flavour: `model:` plus `dataset:` or `train:` at the top, and
 * none of deft's native block names. */
static bool is_pyt_tree(const struct deft_spec_node *root) {
    if (deft_spec_map_get(root, "model_config") || deft_spec_map_get(root, "train_config") ||
        deft_spec_map_get(root, "eval_config"))
        return false;
    return deft_spec_map_get(root, "model") &&
           (deft_spec_map_get(root, "dataset") || deft_spec_map_get(root, "train"));
}

static const struct deft_spec_node *node_at(const struct deft_spec_node *root, const char *path) {
    char key[64];
    const struct deft_spec_node *n = root;
    while (n && *path) {
        const char *dot = strchr(path, '.');
        size_t l = dot ? (size_t)(dot - path) : strlen(path);
        if (l >= sizeof key) return NULL;
        memcpy(key, path, l);
        key[l] = 0;
        n = deft_spec_map_get(n, key);
        path = dot ? dot + 1 : path + l;
    }
    return n;
}

/* "file:line:col" of a field's value when the file gave it, else the file. */
static void where_of(const struct deft_spec_node *root, const char *file, const char *path, char *buf,
                     size_t n) {
    const struct deft_spec_node *v = root ? node_at(root, path) : NULL;
    if (v && v->line > 0)
        snprintf(buf, n, "%s:%d:%d", v->file, v->line, v->col);
    else
        snprintf(buf, n, "%s", file);
}

static enum deft_status set_str(char **dst, const char *s) {
    char *d = deft_strdup(s ? s : "");
    if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    deft_free(*dst);
    *dst = d;
    return DEFT_OK;
}

static enum deft_status set_doubles(double **dst, int *n, const double *v, int k) {
    double *d = k ? deft_malloc((size_t)k * sizeof *d) : NULL;
    if (k && !d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (k) memcpy(d, v, (size_t)k * sizeof *d);
    deft_free(*dst);
    *dst = d;
    *n = k;
    return DEFT_OK;
}

static enum deft_status set_ints(int **dst, int *n, const int *v, int k) {
    int *d = k ? deft_malloc((size_t)k * sizeof *d) : NULL;
    if (k && !d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (k) memcpy(d, v, (size_t)k * sizeof *d);
    deft_free(*dst);
    *dst = d;
    *n = k;
    return DEFT_OK;
}

/* ---- PyTorch flavour -> native struct ---------------------------------------- */

static enum deft_status map_pyt(const struct pyt_cfg *p, const struct deft_spec_node *root,
                                const char *file, struct deft_cls_config *c) {
    enum deft_status s;
    struct deft_cls_model_config *m = &c->model_config;
    struct deft_cls_train_config *t = &c->train_config;
    struct deft_cls_eval_config *e = &c->eval_config;
    char where[300], buf[64];

    /* model */
    const char *type = p->model.backbone.type;
    int layers = 0;
    size_t tl = strlen(type);
    const char *fam[] = {"resnet", "vgg"};
    size_t famlen = 0;
    for (int i = 0; i < 2; i++) {
        size_t fl = strlen(fam[i]);
        if (strncmp(type, fam[i], fl) == 0) famlen = fl;
    }
    if (famlen) {
        size_t i = famlen;
        if (i < tl && type[i] == '_') i++;
        long long v;
        if (i < tl && deft_spec_parse_int(type + i, &v) && v > 0 && v < 1000) layers = (int)v;
    }
    if (layers) {
        char a[16];
        memcpy(a, type, famlen);
        a[famlen] = 0;
        if ((s = set_str(&m->arch, a))) return s;
        m->n_layers = layers;
    } else if ((s = set_str(&m->arch, type))) {
        return s;
    }
    if ((s = set_str(&t->pretrained_model_path, p->model.backbone.pretrained_backbone_path))) return s;
    m->freeze_backbone = p->model.backbone.freeze_backbone;
    m->freeze_bn = p->model.backbone.freeze_norm;
    m->num_classes = p->dataset.num_classes;
    snprintf(buf, sizeof buf, "3,%d,%d", p->dataset.img_size, p->dataset.img_size);
    if ((s = set_str(&m->input_image_size, buf))) return s;
    int topk = 1;
    for (int i = 0; i < p->model.head.n_topk; i++)
        if (p->model.head.topk[i] > topk) topk = p->model.head.topk[i];
    e->top_k = topk;
    t->label_smoothing = p->model.head.loss.label_smooth_val;

    /* dataset */
    if ((s = set_str(&t->train_dataset_path, p->dataset.train_dataset.images_dir)) ||
        (s = set_str(&t->val_dataset_path, p->dataset.val_dataset.images_dir)) ||
        (s = set_str(&e->eval_dataset_path, p->dataset.test_dataset.images_dir)))
        return s;
    t->batch_size_per_gpu = p->dataset.batch_size;
    e->batch_size = p->evaluate.batch_size > 0 ? p->evaluate.batch_size : p->dataset.batch_size;
    t->n_workers = e->n_workers = p->dataset.workers;
    const struct pyt_aug *a = &p->dataset.augmentation;
    struct deft_cls_augmentation *g = &t->augmentation;
    g->hflip_prob = a->random_flip.enable ? a->random_flip.hflip_probability : 0;
    g->vflip_prob = a->random_flip.enable ? a->random_flip.vflip_probability : 0;
    g->rotate_prob = a->random_rotate.enable ? a->random_rotate.rotate_probability : 0;
    if ((s = set_ints(&g->rotate_angles, &g->n_rotate_angles, a->random_rotate.angle_list,
                      a->random_rotate.n_angle_list)))
        return s;
    t->enable_color_augmentation = a->random_color.enable;
    g->brightness = a->random_color.brightness;
    g->contrast = a->random_color.contrast;
    g->saturation = a->random_color.saturation;
    g->hue = a->random_color.hue;
    t->enable_random_crop = a->with_scale_random_crop.enable || a->with_random_crop;
    if (a->with_scale_random_crop.n_scale_range == 2) {
        g->scale_min = a->with_scale_random_crop.scale_range[0];
        g->scale_max = a->with_scale_random_crop.scale_range[1];
    } else if (a->with_scale_random_crop.n_scale_range != 0) {
        where_of(root, file, "dataset.augmentation.with_scale_random_crop.scale_range", where, sizeof where);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: scale_range needs two numbers [min, max]", where);
    }
    t->preprocess_mode = DEFT_CLS_PREPROCESS_CUSTOM;
    if ((s = set_doubles(&t->custom_mean, &t->n_custom_mean, a->mean, a->n_mean)) ||
        (s = set_doubles(&t->custom_std, &t->n_custom_std, a->std, a->n_std)))
        return s;

    /* train */
    t->random_seed = p->train.seed < 0 ? 0 : p->train.seed;
    t->n_epochs = p->train.num_epochs;
    t->val_every = p->train.validation_interval;
    t->checkpoint_interval = p->train.checkpoint_interval;
    t->clip_grad_norm = p->train.clip_grad_norm;
    const struct pyt_optim *o = &p->train.optim;
    double b1 = o->n_betas > 0 ? o->betas[0] : 0.9, b2 = o->n_betas > 1 ? o->betas[1] : 0.999;
    if (o->n_betas != 0 && o->n_betas != 2) {
        where_of(root, file, "train.optim.betas", where, sizeof where);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: betas needs two numbers [beta1, beta2]", where);
    }
    struct deft_cls_optimizer_config *oc = &t->optimizer;
    oc->has_sgd = oc->has_adam = oc->has_rmsprop = oc->has_adamw = false;
    if (o->optim == PYT_SGD) {
        oc->has_sgd = true;
        oc->sgd.lr = o->lr;
        oc->sgd.momentum = o->momentum;
    } else if (o->optim == PYT_ADAM) {
        oc->has_adam = true;
        oc->adam = (struct deft_cls_adam){o->lr, b1, b2, o->eps, 0};
    } else {
        oc->has_adamw = true;
        oc->adamw = (struct deft_cls_adamw){o->lr, b1, b2, o->eps, o->weight_decay};
    }
    if (o->optim != PYT_ADAMW && o->weight_decay > 0) {
        t->reg_config.type = DEFT_CLS_REG_L2;
        t->reg_config.weight_decay = o->weight_decay / 2;
    }
    struct deft_cls_lr_config *lc = &t->lr_config;
    lc->warmup_epochs = o->warmup_epochs;
    double ratio = o->lr > 0 ? o->min_lr / o->lr : 0;
    if (ratio > 1) ratio = 1;
    switch (o->policy) {
    case PYT_COSINE:
        lc->has_cosine = true;
        lc->cosine = (struct deft_cls_lr_cosine){o->lr, ratio, 0};
        break;
    case PYT_STEP:
        lc->has_step = true;
        lc->step = (struct deft_cls_lr_step){o->lr, o->lr_step_size, o->lr_decay};
        break;
    case PYT_LINEAR:
        lc->has_linear = true;
        lc->linear = (struct deft_cls_lr_linear){o->lr, ratio};
        break;
    default:
        where_of(root, file, "train.optim.policy", where, sizeof where);
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: lr policy 'multistep' is not supported by deft yet: use cosine, step or linear",
                              where);
    }

    /* evaluate, results */
    if ((s = set_str(&e->model_path, p->evaluate.checkpoint))) return s;
    const char *rd = *p->results_dir ? p->results_dir : p->train.results_dir;
    return set_str(&c->results_dir, rd);
}

/* ---- resolution and cross-field checks ------------------------------------- */

/* Augmentation fields that act only with a switch on: a value set while the
 * switch is off would be ignored without a word, so say it (issue 24 #6). */
static void warn_gated(const struct deft_cls_config *c, const struct deft_spec_node *root, const char *file) {
    const struct deft_cls_train_config *t = &c->train_config;
    const struct deft_cls_augmentation *g = &t->augmentation;
    const struct {
        const char *key;
        bool set, on;
        const char *sw;
    } f[] = {
        {"brightness", g->brightness != 0, t->enable_color_augmentation, "enable_color_augmentation"},
        {"contrast", g->contrast != 0, t->enable_color_augmentation, "enable_color_augmentation"},
        {"saturation", g->saturation != 0, t->enable_color_augmentation, "enable_color_augmentation"},
        {"hue", g->hue != 0, t->enable_color_augmentation, "enable_color_augmentation"},
        {"scale_min", g->scale_min != 0.08, t->enable_random_crop, "enable_random_crop"},
        {"scale_max", g->scale_max != 1.0, t->enable_random_crop, "enable_random_crop"},
        {"ratio_min", g->ratio_min != 0.75, t->enable_random_crop, "enable_random_crop"},
        {"ratio_max", fabs(g->ratio_max - 4.0 / 3.0) > 1e-9, t->enable_random_crop, "enable_random_crop"},
        {"rotate_prob", g->rotate_prob != 0 && g->rotation_degrees <= 0, true, NULL},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!f[i].set || (f[i].on && f[i].sw)) continue;
        char key[96], where[300];
        snprintf(key, sizeof key, "train_config.augmentation.%s", f[i].key);
        where_of(root, file, key, where, sizeof where);
        if (f[i].sw)
            deft_log(DEFT_LOG_WARN, "%s: %s has no effect while train_config.%s is false (set it to true, or remove "
                     "the field)", where, key, f[i].sw);
        else
            deft_log(DEFT_LOG_WARN, "%s: %s has no effect while rotation_degrees is 0", where, key);
    }
}

static enum deft_status resolve(struct deft_cls_config *c, const struct deft_spec_node *root,
                                const char *file) {
    char where[300];
    struct deft_cls_model_config *m = &c->model_config;
    struct deft_cls_train_config *t = &c->train_config;

    /* input_image_size "C,H,W" */
    long long v[3] = {0, 0, 0};
    int k = 0;
    const char *p = m->input_image_size;
    bool ok = true;
    while (ok && k < 3) {
        char num[24];
        size_t l = 0;
        while (*p == ' ') p++;
        while (*p && *p != ',' && l + 1 < sizeof num) num[l++] = *p++;
        while (l && num[l - 1] == ' ') l--;
        num[l] = 0;
        ok = deft_spec_parse_int(num, &v[k]);
        k++;
        if (k < 3) {
            if (*p != ',') ok = false;
            else p++;
        }
    }
    if (!ok || *p || (v[0] != 1 && v[0] != 3) || v[1] < 16 || v[2] < 16 || v[1] > 16384 || v[2] > 16384) {
        where_of(root, file, "model_config.input_image_size", where, sizeof where);
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: model_config.input_image_size \"%.40s\" must be \"C,H,W\" with C 1 or 3 "
                              "and H, W >= 16 (e.g. \"3,224,224\")",
                              where, m->input_image_size);
    }
    m->input_channels = (int)v[0];
    m->input_height = (int)v[1];
    m->input_width = (int)v[2];

    /* image_mean: r,g,b (3 channels) or l (1 channel) */
    if (t->n_image_mean) {
        bool gray = m->input_channels == 1;
        bool good = t->n_image_mean == (gray ? 1 : 3);
        for (int i = 0; good && i < t->n_image_mean; i++) {
            const char *key = t->image_mean[i].key;
            good = gray ? strcmp(key, "l") == 0
                        : (strcmp(key, "r") == 0 || strcmp(key, "g") == 0 || strcmp(key, "b") == 0);
        }
        if (!good) {
            where_of(root, file, "train_config.image_mean", where, sizeof where);
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "%s: train_config.image_mean needs keys %s for %d-channel input", where,
                                  gray ? "'l'" : "'r', 'g' and 'b'", m->input_channels);
        }
    }
    if (t->preprocess_mode == DEFT_CLS_PREPROCESS_CUSTOM) {
        bool good = (t->n_custom_mean == 1 || t->n_custom_mean == m->input_channels) &&
                    (t->n_custom_std == 1 || t->n_custom_std == m->input_channels);
        if (!good) {
            where_of(root, file, "train_config.preprocess_mode", where, sizeof where);
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "%s: preprocess_mode custom needs custom_mean and custom_std with 1 or %d "
                                  "values each",
                                  where, m->input_channels);
        }
    }
    struct deft_cls_augmentation *g = &t->augmentation;
    if (g->scale_min > g->scale_max || g->ratio_min > g->ratio_max) {
        where_of(root, file, "train_config.augmentation", where, sizeof where);
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: train_config.augmentation: scale_min/ratio_min must not exceed "
                              "scale_max/ratio_max",
                              where);
    }
    const struct deft_cls_lr_soft_anneal *sa = &t->lr_config.soft_anneal;
    for (int i = 1; t->lr_config.has_soft_anneal && i < sa->n_annealing_points; i++)
        if (sa->annealing_points[i] < sa->annealing_points[i - 1]) {
            where_of(root, file, "train_config.lr_config.soft_anneal.annealing_points", where, sizeof where);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: annealing_points must be increasing", where);
        }
    if (t->disable_horizontal_flip) g->hflip_prob = 0;
    warn_gated(c, root, file);

    struct deft_cls_optimizer_config *o = &t->optimizer;
    if (!o->has_sgd && !o->has_adam && !o->has_rmsprop && !o->has_adamw) o->has_sgd = true;
    o->kind = o->has_sgd ? DEFT_CLS_OPTIM_SGD : o->has_adam ? DEFT_CLS_OPTIM_ADAM
              : o->has_rmsprop ? DEFT_CLS_OPTIM_RMSPROP : DEFT_CLS_OPTIM_ADAMW;
    struct deft_cls_lr_config *l = &t->lr_config;
    l->kind = l->has_step ? DEFT_CLS_LR_STEP : l->has_soft_anneal ? DEFT_CLS_LR_SOFT_ANNEAL
              : l->has_cosine ? DEFT_CLS_LR_COSINE : l->has_linear ? DEFT_CLS_LR_LINEAR
              : DEFT_CLS_LR_CONSTANT;
    return DEFT_OK;
}

/* ---- load ----------------------------------------------------------------------- */

void deft_cls_config_free(struct deft_cls_config *c) {
    if (!c) return;
    deft_spec_release(&cls_schema, c);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

enum deft_status deft_cls_config_parse(const char *text, size_t n, const char *name,
                                       enum deft_spec_format fmt, const char *const *overrides,
                                       int n_overrides, struct deft_cls_config *out) {
    memset(out, 0, sizeof *out);
    if (n_overrides < 0 || (n_overrides > 0 && !overrides))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "bad override list");
    enum deft_status s = DEFT_OK;
    struct deft_spec_node *tree = NULL;
    struct deft_spec_node **otrees = NULL;
    char **opaths = NULL, **olabels = NULL;
    struct pyt_cfg pyt;
    bool have_pyt = false;
    struct deft_spec_ctx ctx = {.help_cmd = HELP_CMD};
    char *file = deft_strdup(name ? name : "spec");
    if (!file) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");

    /* overrides first: syntax errors early, and their paths satisfy required fields */
    if (n_overrides > 0) {
        otrees = deft_calloc((size_t)n_overrides, sizeof *otrees);
        opaths = deft_calloc((size_t)n_overrides, sizeof *opaths);
        olabels = deft_calloc((size_t)n_overrides, sizeof *olabels);
        if (!otrees || !opaths || !olabels) {
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    for (int i = 0; i < n_overrides; i++) {
        const char *arg = overrides[i] ? overrides[i] : "";
        size_t l = strlen(arg);
        if (l > 4096) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "--set #%d: argument too long", i + 1);
            goto done;
        }
        olabels[i] = deft_malloc(l + 16);
        if (!olabels[i]) {
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            goto done;
        }
        snprintf(olabels[i], l + 16, "--set '%s'", arg);
        if ((s = deft_spec_override_tree(arg, i + 1, olabels[i], &otrees[i], &opaths[i]))) goto done;
    }

    if (fmt == DEFT_SPEC_FORMAT_AUTO) fmt = detect(file, text, n);
    if (fmt == DEFT_SPEC_FORMAT_PROTOTXT)
        s = deft_spec_parse_prototxt(text, n, file, &tree);
    else
        s = deft_spec_parse_yaml(text, n, file, &tree);
    if (s) goto done;
    if (fmt == DEFT_SPEC_FORMAT_YAML && is_pyt_tree(tree)) fmt = DEFT_SPEC_FORMAT_TAO_PYT;
    out->format = fmt;
    if ((s = deft_spec_defaults(&cls_schema, out))) goto done;

    if (fmt == DEFT_SPEC_FORMAT_TAO_PYT) {
        memset(&pyt, 0, sizeof pyt);
        have_pyt = true;
        if ((s = deft_spec_defaults(&pyt_schema, &pyt))) goto done;
        if ((s = deft_spec_apply(&pyt_schema, &pyt, tree, "", &ctx))) goto done;
        if ((s = map_pyt(&pyt, tree, file, out))) goto done;
    } else {
        ctx.pending = (const char *const *)opaths;
        ctx.n_pending = n_overrides;
        if ((s = deft_spec_apply(&cls_schema, out, tree, "", &ctx))) goto done;
    }
    for (int i = 0; i < n_overrides; i++) {
        struct deft_spec_ctx octx = {.skip_required = true, .help_cmd = HELP_CMD, .ignored = ctx.ignored};
        s = deft_spec_apply(&cls_schema, out, otrees[i], "", &octx);
        ctx.ignored = octx.ignored;
        if (s) goto done;
        deft_spec_override_oneofs(&cls_schema, out, otrees[i]);
    }
    if ((s = resolve(out, fmt == DEFT_SPEC_FORMAT_TAO_PYT ? NULL : tree, file))) goto done;
    out->source_path = file;
    file = NULL;
    out->ignored_fields = ctx.ignored ? ctx.ignored : deft_strdup("");
    if (!out->ignored_fields) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    ctx.ignored = NULL;
    if (*out->ignored_fields)
        deft_log(DEFT_LOG_INFO, "%s: accepted but not used by deft yet: %s", out->source_path,
                 out->ignored_fields);

done:
    if (have_pyt) deft_spec_release(&pyt_schema, &pyt);
    deft_spec_node_free(tree);
    for (int i = 0; i < n_overrides; i++) {
        if (otrees) deft_spec_node_free(otrees[i]);
        if (opaths) deft_free(opaths[i]);
        if (olabels) deft_free(olabels[i]);
    }
    deft_free(otrees);
    deft_free(opaths);
    deft_free(olabels);
    deft_free(ctx.ignored);
    deft_free(file);
    if (s) deft_cls_config_free(out);
    return s;
}

enum deft_status deft_cls_config_load(const char *path, const char *const *overrides, int n_overrides,
                                      struct deft_cls_config *out) {
    memset(out, 0, sizeof *out);
    if (!path) return deft_set_error(DEFT_ERR_INVALID_ARG, "no spec file given (-e spec.yaml)");
    FILE *f = fopen(path, "rb");
    if (!f && (errno == ENOENT || errno == ENOTDIR)) /* a wrong -e path is bad input (exit 2) */
        return deft_set_error(DEFT_ERR_NOT_FOUND, "spec file '%s' does not exist (check the -e path)", path);
    if (!f) return deft_set_error(DEFT_ERR_IO, "cannot open spec file '%s': %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = deft_malloc(cap);
    enum deft_status s = buf ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    while (!s) {
        if (n == cap) {
            if (cap >= DEFT_SPEC_MAX_BYTES) {
                s = deft_set_error(DEFT_ERR_PARSE, "%s: spec file too large (over %u bytes)", path,
                                   DEFT_SPEC_MAX_BYTES);
                break;
            }
            char *nb = deft_realloc(buf, cap * 2);
            if (!nb) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) s = deft_set_error(DEFT_ERR_IO, "cannot read spec file '%s'", path);
            break;
        }
    }
    fclose(f);
    if (!s) s = deft_cls_config_parse(buf, n, path, DEFT_SPEC_FORMAT_AUTO, overrides, n_overrides, out);
    if (!s) {
        char **const f[] = {&out->train_config.train_dataset_path, &out->train_config.val_dataset_path,
                            &out->train_config.pretrained_model_path, &out->train_config.pruned_model_path,
                            &out->eval_config.eval_dataset_path, &out->eval_config.model_path};
        const char *const nm[] = {"train_dataset_path", "val_dataset_path", "pretrained_model_path",
                                  "pruned_model_path", "eval_dataset_path", "model_path"};
        char *text = deft_malloc(n + 1);
        if (!text) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        else {
            memcpy(text, buf, n);
            text[n] = 0;
            s = deft_spec_resolve_paths(f, nm, 6, path, text);
            deft_free(text);
        }
        if (s) deft_cls_config_free(out);
    }
    deft_free(buf);
    return s;
}

/* ---- print / help / paths ------------------------------------------------------- */

void deft_cls_config_print(const struct deft_cls_config *c, FILE *f) {
    fprintf(f, "# deft classification spec, resolved%s%s%s%s\n", c->source_path ? " from " : "",
            c->source_path ? c->source_path : "", c->source_path ? " as " : "",
            c->source_path ? deft_spec_format_name(c->format) : "");
    struct deft_cls_config d;
    memset(&d, 0, sizeof d);
    bool have_d = deft_spec_defaults(&cls_schema, &d) == DEFT_OK;
    deft_spec_print(&cls_schema, c, have_d ? &d : NULL, f, 0);
    deft_spec_release(&cls_schema, &d);
}

void deft_cls_config_help(FILE *f) {
    fprintf(f,
            "Classification spec fields (TAO classification_tf1 names; .txt = TAO protobuf text,\n"
            ".yaml = the same fields as YAML; TAO PyTorch YAML is also read). Override any field\n"
            "with --set path=value (lists as [a, b]).\n\n");
    fprintf(f, "%-48s %-12s %-12s %s\n", "field", "type", "default", "meaning");
    deft_spec_help(&cls_schema, f, "");
}

int deft_cls_config_paths(const struct deft_cls_config *c, unsigned which, const char **paths,
                          const char **names, int max) {
    struct { const char *name, *path; unsigned set; } all[] = {
        {"train_config.train_dataset_path", c->train_config.train_dataset_path, DEFT_CLS_PATHS_TRAIN},
        {"train_config.val_dataset_path", c->train_config.val_dataset_path, DEFT_CLS_PATHS_TRAIN},
        {"train_config.pretrained_model_path", c->train_config.pretrained_model_path, DEFT_CLS_PATHS_TRAIN},
        {"train_config.pruned_model_path", c->train_config.pruned_model_path, DEFT_CLS_PATHS_TRAIN},
        {"eval_config.eval_dataset_path", c->eval_config.eval_dataset_path, DEFT_CLS_PATHS_EVAL},
        {"eval_config.model_path", c->eval_config.model_path, DEFT_CLS_PATHS_EVAL},
    };
    int k = 0;
    for (int i = 0; i < N_OF(all); i++) {
        if (!(all[i].set & which) || !all[i].path || !*all[i].path) continue;
        if (k < max) {
            if (paths) paths[k] = all[i].path;
            if (names) names[k] = all[i].name;
        }
        k++;
    }
    return k;
}

/* The line of the spec file that holds a path value, for "file:line:" in
 * messages (0 when the value is not written there, e.g. it came from --set). */
static int line_of_value(const char *file, const char *value) {
    FILE *f = file ? fopen(file, "r") : NULL;
    if (!f) return 0;
    char buf[4096];
    int line = 0, found = 0;
    while (!found && fgets(buf, sizeof buf, f)) {
        line++;
        if (strstr(buf, value)) found = line;
    }
    fclose(f);
    return found;
}

enum deft_status deft_cls_config_validate_paths(const struct deft_cls_config *c, unsigned which,
                                                bool strict) {
    const char *paths[8], *names[8];
    int n = deft_cls_config_paths(c, which, paths, names, 8);
    enum deft_status s = DEFT_OK;
    const char *src = c->source_path ? c->source_path : "spec";
    for (int i = 0; i < n && i < 8; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0) continue;
        char where[4200];
        int line = line_of_value(c->source_path, paths[i]);
        if (line) snprintf(where, sizeof where, "%s:%d", src, line);
        else snprintf(where, sizeof where, "%s", src);
        if (strict) {
            if (!s)
                s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: '%s' does not exist (fix the path in the spec "
                                   "or use --set %s=...)", where, names[i], paths[i], names[i]);
            else
                deft_log(DEFT_LOG_ERROR, "%s: %s: '%s' does not exist", where, names[i], paths[i]);
        } else { /* each one a warning; the status says that something is missing */
            deft_log(DEFT_LOG_WARN, "%s: %s: '%s' does not exist", where, names[i], paths[i]);
            if (!s) s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: '%s' does not exist", where, names[i], paths[i]);
        }
    }
    return s;
}

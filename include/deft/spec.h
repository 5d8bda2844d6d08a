/* deft/spec.h - experiment spec files -> typed, validated config structs.
 *
 * A spec is read from one of three flavours, detected from the file:
 *
 *   1. TAO TF1 protobuf text (.txt/.prototxt/.pbtxt/.cfg, or any file whose
 *      first field opens a `name {` block): the classification_tf1 specs
 *      exactly as TAO writes them (model_config / train_config / eval_config).
 *   2. deft's native YAML (.yaml/.yml with model_config:/train_config:/...):
 *      the same fields with the same names, written as YAML. Example:
 *
 *          model_config:
 *            arch: resnet
 *            n_layers: 18
 *            use_batch_norm: true
 *            freeze_blocks: [0, 1]
 *            input_image_size: "3,224,224"
 *          train_config:
 *            train_dataset_path: data/split/train
 *            val_dataset_path: data/split/val
 *            pretrained_model_path: resnet_18.safetensors
 *            batch_size_per_gpu: 64
 *            n_epochs: 80
 *            optimizer:
 *              sgd: {lr: 0.01, momentum: 0.9}
 *            reg_config: {type: L2, scope: "Conv2D,Dense", weight_decay: 5e-5}
 *            lr_config:
 *              step: {learning_rate: 0.006, step_size: 10, gamma: 0.1}
 *            preprocess_mode: caffe
 *            mixup_alpha: 0.1
 *            augmentation: {hflip_prob: 0.5, brightness: 0.2}   # deft extension
 *          eval_config:
 *            eval_dataset_path: data/split/test
 *            model_path: runs/exp1/weights/best.safetensors
 *            top_k: 3
 *
 *   3. TAO's PyTorch classification YAML (classification_pyt, TAO 6: top-level
 *      model:/dataset:/train:), mapped onto the same struct (see
 *      deft_cls_config_load for the table).
 *
 * Usage (the CLI's `train`):
 *
 *     struct deft_cls_config cfg;
 *     const char *sets[] = {"train_config.n_epochs=5"};     // --set, applied after the file
 *     enum deft_status s = deft_cls_config_load("spec.txt", sets, 1, &cfg);
 *     if (s) { fprintf(stderr, "deft: %s\n", deft_last_error()); return deft_status_exit_code(s); }
 *     s = deft_cls_config_validate_paths(&cfg, DEFT_CLS_PATHS_TRAIN, true);
 *     ...
 *     deft_cls_config_print(&cfg, stdout);                   // resolved config, native YAML
 *     deft_cls_config_free(&cfg);
 *
 * Errors: DEFT_ERR_PARSE for text that is not valid protobuf text / YAML,
 * DEFT_ERR_INVALID_ARG for well-formed specs with bad content (unknown key,
 * wrong type, out-of-range value, missing required field, two alternatives of
 * a oneof); both map to exit status 2. deft_last_error() starts with
 * "file:line:col: " (for --set: "--set 'key=value': ") and says how to fix it,
 * with a "did you mean 'x'?" for misspelt keys.
 *
 * TAO fields that deft parses but does not act on yet (e.g. model_parallelism,
 * visualizer, byom_model, PyTorch EMA) are listed in cfg.ignored_fields and
 * logged once at INFO level; `--help-spec` marks them.
 *
 * Strings in the struct are never NULL ("" when unset). All memory belongs to
 * the struct and is released by deft_cls_config_free.
 */
#ifndef DEFT_SPEC_H
#define DEFT_SPEC_H

#include <stdio.h>
#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One entry of a proto map<string, float> (image_mean, activation_parameters). */
struct deft_spec_kv {
    char *key;
    double value;
};

enum deft_spec_format {
    DEFT_SPEC_FORMAT_AUTO = 0,   /* detect from extension and content */
    DEFT_SPEC_FORMAT_PROTOTXT,   /* TAO TF1 protobuf text */
    DEFT_SPEC_FORMAT_YAML,       /* deft native YAML */
    DEFT_SPEC_FORMAT_TAO_PYT,    /* TAO PyTorch (Hydra) YAML */
};
DEFT_API const char *deft_spec_format_name(enum deft_spec_format f);

/* ---- classification config (TAO makenet Experiment + deft extensions) ---- */

enum deft_cls_interp { DEFT_CLS_INTERP_BILINEAR = 0, DEFT_CLS_INTERP_BICUBIC };
enum deft_cls_optimizer_kind {
    DEFT_CLS_OPTIM_SGD = 0, DEFT_CLS_OPTIM_ADAM, DEFT_CLS_OPTIM_RMSPROP, DEFT_CLS_OPTIM_ADAMW
};
enum deft_cls_lr_kind {
    DEFT_CLS_LR_CONSTANT = 0,  /* no lr_config block: the optimizer's lr throughout */
    DEFT_CLS_LR_STEP,          /* learning_rate * gamma^floor(epoch / step_size) */
    DEFT_CLS_LR_SOFT_ANNEAL,   /* TAO soft start, then /annealing_divider at each point */
    DEFT_CLS_LR_COSINE,        /* TAO: soft start, then cosine down to lr * min_lr_ratio */
    DEFT_CLS_LR_LINEAR,        /* deft (TAO PyTorch "linear"): linear decay to lr * min_lr_ratio */
};
enum deft_cls_reg_type { DEFT_CLS_REG_NONE = 0, DEFT_CLS_REG_L1, DEFT_CLS_REG_L2 };
enum deft_cls_preprocess {
    DEFT_CLS_PREPROCESS_CAFFE = 0, /* RGB->BGR, minus mean (image_mean or 103.939,116.779,123.68) */
    DEFT_CLS_PREPROCESS_TORCH,     /* x/255, minus (0.485,0.456,0.406), over 0.224 (TAO's std) */
    DEFT_CLS_PREPROCESS_TF,        /* x/127.5 - 1 */
    DEFT_CLS_PREPROCESS_CUSTOM,    /* deft: x/255, minus custom_mean, over custom_std (RGB) */
};

struct deft_cls_bn_config { double momentum, epsilon; };
struct deft_cls_activation {
    char *activation_type;        /* "relu" ... */
    struct deft_spec_kv *activation_parameters;
    int n_activation_parameters;
};
struct deft_cls_visualizer { bool enabled; int num_images; bool weight_histograms; };

struct deft_cls_model_config {
    char *arch;                   /* "resnet", "vgg", "mobilenet_v2", ... (required) */
    char *input_image_size;       /* "C,H,W" as written, e.g. "3,224,224" */
    int input_channels, input_height, input_width; /* parsed from input_image_size */
    enum deft_cls_interp resize_interpolation_method;
    int n_layers;                 /* depth for resnet/vgg/... */
    bool retain_head, use_batch_norm, use_bias, use_pooling, all_projections, freeze_bn;
    bool sync_bn;                 /* data parallel: BN statistics over all ranks */
    int *freeze_blocks;           /* block indices whose weights stay fixed */
    int n_freeze_blocks;
    double dropout;
    struct deft_cls_bn_config batch_norm_config;
    struct deft_cls_activation activation; /* TAO (ignored) */
    char *byom_model;             /* TAO BYOM (ignored) */
    /* deft extensions */
    int num_classes;              /* 0: from the dataset's class folders */
    bool freeze_backbone;         /* train the head only (TAO PyTorch freeze_backbone) */
    bool load_graph;              /* TAO: take the graph of pretrained_model_path (a pruned model) */
};

struct deft_cls_sgd { double lr, decay, momentum; bool nesterov; };
struct deft_cls_adam { double lr, beta_1, beta_2, epsilon, decay; };
struct deft_cls_rmsprop { double lr, rho, epsilon, decay; };
struct deft_cls_adamw { double lr, beta_1, beta_2, epsilon, weight_decay; }; /* deft (PyTorch AdamW) */

/* `decay` is Keras' per-iteration lr decay: lr / (1 + decay * iteration). */
struct deft_cls_optimizer_config {
    enum deft_cls_optimizer_kind kind; /* resolved: which block was given (sgd when none) */
    bool has_sgd, has_adam, has_rmsprop, has_adamw; /* exactly one is true after load */
    struct deft_cls_sgd sgd;
    struct deft_cls_adam adam;
    struct deft_cls_rmsprop rmsprop;
    struct deft_cls_adamw adamw;
};

/* Keras semantics (TAO TF1): L2 adds weight_decay * sum(w^2) to the loss
 * (gradient 2*weight_decay*w); L1 adds weight_decay * sum|w|. `scope` lists
 * the layer kinds regularized ("Conv2D,Dense"). A PyTorch weight_decay wd
 * (gradient wd*w) maps to L2 with weight_decay = wd / 2. */
struct deft_cls_reg_config {
    enum deft_cls_reg_type type;
    char *scope;
    double weight_decay;
};

struct deft_cls_lr_step { double learning_rate; int step_size; double gamma; }; /* step_size in epochs */
struct deft_cls_lr_soft_anneal {
    double learning_rate, soft_start, annealing_divider; /* soft_start: fraction of the run */
    double *annealing_points;     /* fractions of the run, increasing */
    int n_annealing_points;
};
struct deft_cls_lr_cosine { double learning_rate, min_lr_ratio, soft_start; };
struct deft_cls_lr_linear { double learning_rate, min_lr_ratio; };

/* The schedule's learning_rate is the base rate; the optimizer's lr is used
 * only with DEFT_CLS_LR_CONSTANT (as in TAO, where the schedule wins). */
struct deft_cls_lr_config {
    enum deft_cls_lr_kind kind;   /* resolved from which block was given */
    bool has_step, has_soft_anneal, has_cosine, has_linear;
    struct deft_cls_lr_step step;
    struct deft_cls_lr_soft_anneal soft_anneal;
    struct deft_cls_lr_cosine cosine;
    struct deft_cls_lr_linear linear;
    double warmup_epochs;         /* deft: linear warmup from 0 (TAO PyTorch warmup_epochs) */
};

/* deft extension: training-time augmentation (applied when the matching TAO
 * switch allows it: random crop when enable_random_crop, color jitter when
 * enable_color_augmentation). */
struct deft_cls_augmentation {
    double scale_min, scale_max;  /* random-resized-crop area fraction */
    double ratio_min, ratio_max;  /* random-resized-crop aspect ratio */
    double hflip_prob, vflip_prob;/* hflip_prob is forced to 0 by disable_horizontal_flip */
    double rotation_degrees;      /* uniform in [-deg, +deg] (0: off) */
    double rotate_prob;           /* probability of a rotation by one of rotate_angles */
    int *rotate_angles;           /* e.g. [90, 180, 270] (TAO PyTorch angle_list) */
    int n_rotate_angles;
    double brightness, contrast, saturation, hue; /* color jitter strengths (torchvision) */
};

struct deft_cls_train_config {
    char *train_dataset_path;     /* <dir>/<class>/<image> (required) */
    char *val_dataset_path;
    char *pretrained_model_path;  /* "" = train from scratch */
    char *pruned_model_path;      /* TAO (YOLO/SSD): a pruned model, graph and weights */
    struct deft_cls_optimizer_config optimizer;
    int batch_size_per_gpu, n_epochs, n_workers;
    struct deft_cls_reg_config reg_config;
    struct deft_cls_lr_config lr_config;
    int random_seed;
    bool enable_random_crop, enable_center_crop, enable_color_augmentation;
    double label_smoothing;
    enum deft_cls_preprocess preprocess_mode;
    double mixup_alpha;           /* 0: no mixup */
    double *model_parallelism;    /* TAO (ignored) */
    int n_model_parallelism;
    struct deft_spec_kv *image_mean; /* caffe mode: keys r,g,b (or l for grayscale) */
    int n_image_mean;
    bool disable_horizontal_flip;
    struct deft_cls_visualizer visualizer; /* TAO (ignored) */
    /* deft extensions */
    double *custom_mean, *custom_std; /* preprocess_mode custom: 1 or 3 values in [0,1] units */
    int n_custom_mean, n_custom_std;
    struct deft_cls_augmentation augmentation;
    int val_every;                /* validate every N epochs (0: never) */
    int checkpoint_interval;      /* save weights/..._epoch_NNN every N epochs */
    int keep_checkpoints;         /* keep the newest N epoch checkpoints (0: all) */
    bool save_best;               /* also keep best.safetensors (by validation accuracy) */
    int threads;                  /* 0: all cores (the CLI's --threads wins) */
    double clip_grad_norm;        /* > 0: clip the global gradient norm */
    int skip_nonfinite_batches;   /* 0: stop at a NaN/Inf loss; N: skip up to N such batches */
    bool enable_qat;              /* quantization-aware training (TAO's detection field) */
    double qat_ema_decay;
    bool qat_freeze_bn, qat_fusion;
    char **qat_exclude;           /* layer-name patterns kept float */
    int n_qat_exclude;
};

struct deft_cls_eval_config {
    char *eval_dataset_path, *model_path;
    int top_k, batch_size, n_workers;
    bool enable_center_crop;
};

struct deft_cls_config {
    struct deft_cls_model_config model_config;
    struct deft_cls_train_config train_config;
    struct deft_cls_eval_config eval_config;
    char *results_dir;            /* deft: default results dir ("" = use -r) */
    /* where it came from (not part of the spec) */
    char *source_path;
    enum deft_spec_format format;
    char *ignored_fields;         /* "train_config.visualizer, ..." ("" when none) */
};

/* Read and validate a classification spec; overrides ("key.path=value",
 * native field names whatever the file's flavour; lists as "[0, 1]") are
 * applied after the file, in order. On failure *out is zeroed and needs no
 * free. TAO PyTorch YAML maps as follows:
 *   model.backbone.type -> model_config.arch (+n_layers for resnet_18 style names),
 *   .pretrained_backbone_path -> train_config.pretrained_model_path,
 *   .freeze_backbone/.freeze_norm -> model_config.freeze_backbone/freeze_bn,
 *   model.head.topk -> eval_config.top_k (largest), head.loss.label_smooth_val -> label_smoothing,
 *   dataset.{train,val,test}_dataset.images_dir -> train/val/eval dataset paths,
 *   dataset.batch_size/workers -> batch_size_per_gpu, n_workers (train and eval),
 *   dataset.num_classes -> model_config.num_classes, img_size S -> "3,S,S",
 *   dataset.augmentation.{random_flip,random_rotate,random_color,with_scale_random_crop,
 *     with_random_crop,mean,std} -> train_config.augmentation / preprocess custom,
 *   train.{seed,num_epochs,validation_interval,checkpoint_interval,clip_grad_norm},
 *   train.optim {optim sgd|adam|adamw, lr, momentum, betas, eps, weight_decay} -> optimizer
 *     (+ reg_config L2 wd/2 for sgd/adam), policy cosine|step|linear + warmup_epochs -> lr_config,
 *   evaluate.checkpoint/batch_size -> eval_config, results_dir -> results_dir. */
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_config_load(const char *path,
                                                             const char *const *overrides,
                                                             int n_overrides,
                                                             struct deft_cls_config *out);
/* Same from memory; `name` is used in messages, `fmt` may be AUTO (then
 * `name`'s extension and the text decide). */
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_config_parse(const char *text, size_t n,
                                                              const char *name,
                                                              enum deft_spec_format fmt,
                                                              const char *const *overrides,
                                                              int n_overrides,
                                                              struct deft_cls_config *out);
DEFT_API void deft_cls_config_free(struct deft_cls_config *cfg);
/* The resolved config as native YAML (it loads back to an identical config). */
DEFT_API void deft_cls_config_print(const struct deft_cls_config *cfg, FILE *f);
/* `--help-spec`: every field with type, default, range and meaning. */
DEFT_API void deft_cls_config_help(FILE *f);

enum {
    DEFT_CLS_PATHS_TRAIN = 1u << 0, /* train/val dataset, pretrained model */
    DEFT_CLS_PATHS_EVAL = 1u << 1,  /* eval dataset, model */
    DEFT_CLS_PATHS_ALL = 3u,
};
/* Non-empty input paths the spec names (for --dry_run): up to `max` into
 * paths[] (and their field names into names[] when not NULL). Returns how
 * many there are (may exceed max). Pointers stay valid while cfg lives. */
DEFT_API int deft_cls_config_paths(const struct deft_cls_config *cfg, unsigned which,
                                   const char **paths, const char **names, int max);
/* Check that those paths exist. strict: DEFT_ERR_NOT_FOUND naming the first
 * missing one (all are logged as errors); otherwise a warning per missing path
 * and still DEFT_ERR_NOT_FOUND naming the first (a dry run's verdict). */
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_config_validate_paths(const struct deft_cls_config *cfg,
                                                                       unsigned which, bool strict);

/* ---- shared by other specs (YOLOv4 and later detectors; see deft/yolo_spec.h) ---- */

/* One entry of a proto map<string, string> (target_class_mapping). */
struct deft_spec_str_kv {
    char *key;
    char *value;
};

#ifdef __cplusplus
}
#endif
#endif

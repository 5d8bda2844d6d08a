/* det_spec_common.c - the detector spec blocks TAO shares between yolo_v4,
 * ssd (and retinanet): training_config, nms_config and the detection-sequence
 * dataset_config, one table each, with their checks (see det_spec_common.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "spec/det_spec_common.h"

/* ---- training_config --------------------------------------------------------- */

#define T struct deft_yolo_lr_anneal
static const struct deft_spec_field anneal_fields[] = {
    F_FLT(T, min_learning_rate, NULL, 0, 0, GE, "lr at the start and the end"),
    F_FLT(T, max_learning_rate, NULL, 0, 0, GT | REQ, "lr between soft_start and annealing"),
    F_FLT(T, soft_start, NULL, 0, 1, GE | LE, "fraction of the run spent ramping up"),
    F_FLT(T, annealing, NULL, 0, 1, GE | LE, "fraction of the run where the lr starts to fall"),
};
#undef T
#define T struct deft_yolo_lr_cosine
static const struct deft_spec_field cosine_fields[] = {
    F_FLT(T, max_learning_rate, NULL, 0, 0, GT | REQ, "lr reached at soft_start"),
    F_FLT(T, soft_start, NULL, 0, 1, GE | LE, "fraction of the run spent ramping up"),
    F_FLT(T, min_learning_rate, NULL, 0, 0, GE, "lr at the start and the end"),
};
#undef T
static const struct deft_spec_schema anneal_schema =
    SCHEMA(struct deft_yolo_lr_anneal, "SoftStartAnnealingScheduleConfig", anneal_fields);
static const struct deft_spec_schema cosine_schema =
    SCHEMA(struct deft_yolo_lr_cosine, "SoftStartCosineAnnealingScheduleConfig", cosine_fields);

#define T struct deft_yolo_lr_config
static const struct deft_spec_field lr_fields[] = {
    F_ONEOF(T, soft_start_annealing_schedule, has_soft_start_annealing_schedule, anneal_schema, "learning_rate",
            REQ, "ramp up, hold, anneal"),
    F_ONEOF(T, soft_start_cosine_annealing_schedule, has_soft_start_cosine_annealing_schedule, cosine_schema,
            "learning_rate", REQ, "ramp up, then cosine decay"),
};
#undef T
static const struct deft_spec_schema lr_schema = SCHEMA(struct deft_yolo_lr_config, "LearningRateConfig", lr_fields);

#define T struct deft_yolo_adam
static const struct deft_spec_field adam_fields[] = {
    F_FLT(T, epsilon, "1e-07", 0, 0, GT, "denominator epsilon"),
    F_FLT(T, beta1, "0.9", 0, 1, GE | LE, "first-moment decay"),
    F_FLT(T, beta2, "0.999", 0, 1, GE | LE, "second-moment decay"),
    F_BOOL(T, amsgrad, NULL, 0, "AMSGrad variant"),
};
#undef T
#define T struct deft_yolo_sgd
static const struct deft_spec_field sgd_fields[] = {
    F_FLT(T, momentum, NULL, 0, 1, GE | LE, "momentum"),
    F_BOOL(T, nesterov, NULL, 0, "Nesterov momentum"),
};
#undef T
#define T struct deft_yolo_rmsprop
static const struct deft_spec_field rmsprop_fields[] = {
    F_FLT(T, rho, "0.9", 0, 1, GE | LE, "squared-gradient decay"),
    F_FLT(T, momentum, NULL, 0, 1, GE | LE, "momentum"),
    F_FLT(T, epsilon, "1e-07", 0, 0, GT, "denominator epsilon"),
    F_BOOL(T, centered, NULL, 0, "centered RMSProp"),
};
#undef T
static const struct deft_spec_schema adam_schema = SCHEMA(struct deft_yolo_adam, "AdamOptimizerConfig", adam_fields);
static const struct deft_spec_schema sgd_schema = SCHEMA(struct deft_yolo_sgd, "SGDOptimizerConfig", sgd_fields);
static const struct deft_spec_schema rmsprop_schema =
    SCHEMA(struct deft_yolo_rmsprop, "RMSpropOptimizerConfig", rmsprop_fields);

#define T struct deft_yolo_optimizer_config
static const struct deft_spec_field optim_fields[] = {
    F_ONEOF(T, adam, has_adam, adam_schema, "optimizer", REQ, "Adam"),
    F_ONEOF(T, sgd, has_sgd, sgd_schema, "optimizer", REQ, "SGD"),
    F_ONEOF(T, rmsprop, has_rmsprop, rmsprop_schema, "optimizer", REQ, "RMSProp"),
};
#undef T
static const struct deft_spec_schema optim_schema = SCHEMA(struct deft_yolo_optimizer_config, "OptimizerConfig", optim_fields);

static const struct deft_spec_enum_val reg_vals[] = {
    {"NO_REG", DEFT_YOLO_REG_NONE}, {"L1", DEFT_YOLO_REG_L1}, {"L2", DEFT_YOLO_REG_L2}, {NULL, 0}};
#define T struct deft_yolo_regularizer
static const struct deft_spec_field reg_fields[] = {
    F_ENUM(T, type, "NO_REG", reg_vals, 0, "weight regularizer"),
    F_FLT(T, weight, NULL, 0, 0, GE, "strength (L1: loss += weight * sum|w|, L2: weight * sum w^2)"),
};
#undef T
static const struct deft_spec_schema reg_schema = SCHEMA(struct deft_yolo_regularizer, "RegularizerConfig", reg_fields);

#define T struct deft_yolo_cost_scaling
static const struct deft_spec_field cost_fields[] = {
    F_BOOL(T, enabled, NULL, 0, "loss scaling for mixed precision"),
    F_FLT(T, initial_exponent, NULL, 0, 0, 0, "initial log2 scale"),
    F_FLT(T, increment, NULL, 0, 0, 0, "scale increment"),
    F_FLT(T, decrement, NULL, 0, 0, 0, "scale decrement"),
};
#undef T
static const struct deft_spec_schema cost_schema = SCHEMA(struct deft_yolo_cost_scaling, "CostScalingConfig", cost_fields);

#define T struct deft_yolo_early_stopping
static const struct deft_spec_field es_fields[] = {
    F_STR(T, monitor, "\"loss\"", 0, "quantity watched (TAO: only 'loss')"),
    F_FLT(T, min_delta, NULL, 0, 0, GE, "smallest change that counts as progress"),
    F_INT(T, patience, NULL, 1, 0, GE | REQ, "epochs without progress before stopping"),
};
#undef T
static const struct deft_spec_schema es_schema = SCHEMA(struct deft_yolo_early_stopping, "EarlyStopping", es_fields);

#define T struct deft_yolo_visualizer
static const struct deft_spec_field vis_fields[] = {
    F_BOOL(T, enabled, NULL, 0, "TensorBoard images"),
    F_INT(T, num_images, "3", 0, 0, GE, "images per summary"),
    F_BOOL(T, weight_histograms, NULL, 0, "weight histograms"),
    F_ANY("wandb_config", "Weights & Biases settings (TAO)"),
    F_ANY("clearml_config", "ClearML settings (TAO)"),
};
#undef T
static const struct deft_spec_schema vis_schema = SCHEMA(struct deft_yolo_visualizer, "VisualizerConfig", vis_fields);

#define T struct deft_yolo_training_config
static const struct deft_spec_field train_fields[] = {
    F_INT(T, batch_size_per_gpu, "8", 1, 65536, GE | LE | REQ, "images per batch"),
    F_INT(T, num_epochs, "80", 1, 1000000, GE | LE | REQ, "passes over the training set"),
    F_MSG(T, learning_rate, lr_schema, REQ, "learning-rate schedule"),
    F_MSG(T, regularizer, reg_schema, 0, "weight regularizer"),
    F_MSG(T, optimizer, optim_schema, 0, "one of adam / sgd / rmsprop (yolo_v4: required)"),
    F_MSG(T, cost_scaling, cost_schema, IGN, "mixed-precision loss scaling (TAO)"),
    F_INT(T, checkpoint_interval, "10", 1, 0, GE, "save a checkpoint (and validate) every N epochs"),
    F_BOOL(T, enable_qat, NULL, 0, "quantization-aware training: int8 fake quantization where the INT8 "
           "export quantizes (weights per output channel, activations per tensor with moving-average "
           "ranges, straight-through gradients); the learned ranges are saved with the model"),
    F_STR(T, resume_model_path, NULL, 0, "checkpoint to resume (one of the three model paths)"),
    F_STR(T, pretrain_model_path, NULL, 0, "weights to start from: a deft classification model or .pth/.onnx/.safetensors"),
    F_STR(T, pruned_model_path, NULL, 0, "a pruned model to retrain (its graph and weights)"),
    F_STR(T, pretrained_model_path, NULL, EXT, "alias of pretrain_model_path"),
    F_INT(T, max_queue_size, NULL, 0, 0, GE | IGN, "Keras loader queue length"),
    F_INT(T, n_workers, NULL, 0, 1024, GE | LE, "image decoding threads (0: one per core)"),
    F_BOOL(T, use_multiprocessing, NULL, IGN, "Keras loader processes"),
    F_OPT(T, early_stopping, has_early_stopping, es_schema, 0, "stop when the loss stops improving"),
    F_MSG(T, visualizer, vis_schema, IGN, "TAO TensorBoard visualizer"),
    F_BOOL(T, model_ema, NULL, 0, "keep an exponential moving average of the weights for evaluation"),
    F_FLT(T, qat_ema_decay, "0.999", 0, 0.99999, GT | DEFT_SPEC_MAX | EXT,
          "enable_qat: decay of the moving average of each activation's max|x| (TAO's 0.999)"),
    F_BOOL(T, qat_freeze_bn, "true", EXT, "enable_qat: batch norm uses its running statistics (the ones the "
           "export folds into the convolutions), so training sees the deployed activations"),
    F_BOOL(T, qat_fusion, NULL, EXT, "enable_qat: also quantize residual-add and pooling inputs "
           "(TensorRT's fusion placement, export --qdq_fusion)"),
    F_SLIST(T, qat_exclude, n_qat_exclude, "[\"head_s*\"]", EXT,
            "enable_qat: layers kept float (name patterns; default: the head output convolutions)"),
};
#undef T
const struct deft_spec_schema deft_det_train_schema = SCHEMA(struct deft_yolo_training_config, "TrainingConfig", train_fields);

#define T struct deft_yolo_nms_config
static const struct deft_spec_field nms_fields[] = {
    F_FLT(T, confidence_threshold, NULL, 0, 1, GE | LE, "drop boxes scoring below this"),
    F_FLT(T, clustering_iou_threshold, "0.5", 0, 1, GT | LE, "NMS IoU: a box overlapping a better one more is dropped"),
    F_INT(T, top_k, "200", 1, 100000, GE | LE, "boxes kept per image"),
    F_INT(T, infer_nms_score_bits, NULL, 0, 32, GE | LE, "score bits of TensorRT's NMS plugin (export)"),
    F_BOOL(T, force_on_cpu, NULL, IGN, "TAO: NMS on the CPU (deft always is)"),
};
#undef T
const struct deft_spec_schema deft_det_nms_schema = SCHEMA(struct deft_yolo_nms_config, "NMSConfig", nms_fields);

#define T struct deft_yolo_data_source
static const struct deft_spec_field src_fields[] = {
    F_STR(T, label_directory_path, NULL, 0, "KITTI label files (one .txt per image)"),
    F_STR(T, tfrecords_path, NULL, 0, "TAO TFRecords (deft reads labels directly: give label_directory_path)"),
    F_STR(T, image_directory_path, NULL, 0, "the images"),
    F_STR(T, root_path, NULL, 0, "prefix for relative paths of this source"),
    F_FLT(T, source_weight, NULL, 0, 0, GE, "sampling weight of this source"),
    F_STR(T, split_list_path, NULL, EXT, "file of image stems (one a line) selecting this split"),
};
#undef T
static const struct deft_spec_schema src_schema = SCHEMA(struct deft_yolo_data_source, "YOLOv3DataSource", src_fields);

#define T struct deft_yolo_dataset_config
static const struct deft_spec_field ds_fields[] = {
    F_LIST(T, data_sources, n_data_sources, src_schema, REQ, "training data (repeated)"),
    F_SMAP(T, target_class_mapping, n_target_class_mapping, REQ,
           "label name -> class name; several names may map to one class"),
    F_INT(T, validation_fold, NULL, 0, 0, GE | IGN, "TFRecords fold used for validation"),
    F_LIST(T, validation_data_sources, n_validation_data_sources, src_schema, 0, "validation data (repeated)"),
    F_BOOL(T, include_difficult_in_training, NULL, 0, "train on boxes marked difficult (KITTI occluded != 0)"),
    F_STR(T, type, NULL, 0, "label format: kitti (default), coco; deft also voc"),
    F_STR(T, image_extension, NULL, 0, "image file extension (\"\": jpg, jpeg, png, bmp)"),
    F_BOOL(T, is_monochrome, NULL, 0, "grayscale images"),
};
#undef T
const struct deft_spec_schema deft_det_dataset_schema = SCHEMA(struct deft_yolo_dataset_config, "YOLOv3DatasetConfig", ds_fields);

enum deft_status deft_det_check_training(struct deft_yolo_training_config *t, const struct deft_spec_origin *o,
                                         bool need_optimizer) {
    char at[300];
    const struct deft_yolo_optimizer_config *opt = &t->optimizer;
    if (!opt->has_adam && !opt->has_sgd && !opt->has_rmsprop) {
        if (need_optimizer && !deft_spec_override_of(o, "training_config.optimizer")) {
            deft_spec_origin_where(o, "training_config", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: training_config is missing required field 'optimizer' "
                                  "(one of adam / sgd / rmsprop); add 'optimizer { ... }' here", at);
        }
        t->optimizer.has_sgd = true; /* no optimizer block: SGD, momentum 0.9 (deft's default) */
        t->optimizer.sgd.momentum = 0.9;
    }
    if (*t->pretrained_model_path) {
        if (*t->pretrain_model_path && strcmp(t->pretrain_model_path, t->pretrained_model_path)) {
            deft_spec_origin_where(o, "training_config.pretrained_model_path", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: training_config gives both pretrain_model_path and "
                                  "pretrained_model_path (its alias): keep one", at);
        }
        char *d = deft_strdup(t->pretrained_model_path);
        if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        deft_free(t->pretrain_model_path);
        t->pretrain_model_path = d;
        d = deft_strdup("");
        if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        deft_free(t->pretrained_model_path);
        t->pretrained_model_path = d;
    }
    int given = !!*t->resume_model_path + !!*t->pretrain_model_path + !!*t->pruned_model_path;
    if (given > 1) {
        deft_spec_origin_where(
            o, *t->pruned_model_path ? "training_config.pruned_model_path" : "training_config.pretrain_model_path", at,
            sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: resume_model_path, pretrain_model_path and pruned_model_path "
                              "are alternatives in training_config: keep only one", at);
    }
    const struct deft_yolo_lr_anneal *an = &t->learning_rate.soft_start_annealing_schedule;
    if (t->learning_rate.has_soft_start_annealing_schedule && an->annealing < an->soft_start) {
        deft_spec_origin_where(o, "training_config.learning_rate.soft_start_annealing_schedule.annealing", at,
                               sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: soft_start_annealing_schedule: annealing (%g) must not come "
                              "before soft_start (%g)", at, an->annealing, an->soft_start);
    }
    double mx = t->learning_rate.has_soft_start_annealing_schedule ? an->max_learning_rate
                : t->learning_rate.soft_start_cosine_annealing_schedule.max_learning_rate;
    double mn = t->learning_rate.has_soft_start_annealing_schedule ? an->min_learning_rate
                : t->learning_rate.soft_start_cosine_annealing_schedule.min_learning_rate;
    if (mn > mx) {
        deft_spec_origin_where(o, "training_config.learning_rate", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: training_config.learning_rate: min_learning_rate (%g) is above "
                              "max_learning_rate (%g)", at, mn, mx);
    }
    if (t->has_early_stopping && strcmp(t->early_stopping.monitor, "loss") != 0) {
        deft_spec_origin_where(o, "training_config.early_stopping.monitor", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: training_config.early_stopping.monitor: only 'loss' is "
                              "supported, got '%.40s'", at, t->early_stopping.monitor);
    }
    t->learning_rate.kind = t->learning_rate.has_soft_start_annealing_schedule ? DEFT_YOLO_LR_SOFT_START_ANNEALING
                                                                                : DEFT_YOLO_LR_SOFT_START_COSINE;
    const struct deft_yolo_optimizer_config *op = &t->optimizer;
    t->optimizer.kind = op->has_adam ? DEFT_YOLO_OPTIM_ADAM : op->has_sgd ? DEFT_YOLO_OPTIM_SGD : DEFT_YOLO_OPTIM_RMSPROP;
    return DEFT_OK;
}

/* Label format of one source; "" when it names none. */
static const char *source_kind(const struct deft_yolo_data_source *s) {
    return *s->label_directory_path ? "label_directory_path" : *s->tfrecords_path ? "tfrecords_path" : "";
}

static enum deft_status check_sources(const struct deft_yolo_data_source *src, int n, const char *list,
                                      const struct deft_spec_origin *o) {
    char at[300];
    for (int i = 0; i < n; i++) {
        const struct deft_yolo_data_source *s = &src[i];
        if (*s->label_directory_path && *s->tfrecords_path) {
            deft_spec_origin_where_element(o, list, i, "tfrecords_path", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d]: label_directory_path and tfrecords_path are "
                                  "alternatives: keep label_directory_path (deft reads the labels directly)", at, list, i);
        }
        if (!*source_kind(s)) {
            deft_spec_origin_where_element(o, list, i, NULL, at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d] needs label_directory_path (KITTI labels) and "
                                  "image_directory_path", at, list, i);
        }
        if (*s->label_directory_path && !*s->image_directory_path) {
            deft_spec_origin_where_element(o, list, i, "label_directory_path", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d] needs image_directory_path beside "
                                  "label_directory_path", at, list, i);
        }
        if (strcmp(source_kind(s), source_kind(&src[0])) != 0) {
            deft_spec_origin_where_element(o, list, i, NULL, at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s[%d] uses %s but %s[0] uses %s: every source of a "
                                  "split must use the same label format", at, list, i, source_kind(s), list,
                                  source_kind(&src[0]));
        }
    }
    return DEFT_OK;
}

static char *lower_dup(const char *s) {
    char *d = deft_strdup(s);
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    return d;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void deft_det_free_classes(struct deft_yolo_dataset_config *d) {
    for (int i = 0; d->class_names && i < d->n_classes; i++) deft_free(d->class_names[i]);
    deft_free(d->class_names);
    d->class_names = NULL;
    d->n_classes = 0;
}

/* Class list: lower-cased targets, sorted, unique (TAO's order). Names that
 * differ only in case become one class, which TAO does silently: say so. */
static enum deft_status build_classes(struct deft_yolo_dataset_config *d, const struct deft_spec_origin *o) {
    const struct deft_spec_str_kv *m = d->target_class_mapping;
    char at[300];
    for (int i = 0; i < d->n_target_class_mapping; i++) {
        if (!*m[i].key || !*m[i].value) {
            deft_spec_origin_where(o, "dataset_config.target_class_mapping", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.target_class_mapping: empty %s in entry "
                                  "'%.40s' -> '%.40s'", at, *m[i].key ? "class name" : "label name", m[i].key, m[i].value);
        }
        for (int j = 0; j < i; j++) {
            if (strcasecmp(m[i].key, m[j].key) != 0) continue;
            deft_spec_origin_where(o, "dataset_config.target_class_mapping", at, sizeof at);
            if (strcasecmp(m[i].value, m[j].value) != 0)
                return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.target_class_mapping: labels '%.40s' and "
                                      "'%.40s' are the same name once lower-cased (labels are read lower-cased) but map "
                                      "to '%.40s' and '%.40s': keep one", at, m[j].key, m[i].key, m[j].value, m[i].value);
            deft_log(DEFT_LOG_WARN, "%s: target_class_mapping keys '%s' and '%s' differ only in case: labels are read "
                     "lower-cased, so they are one entry", at, m[j].key, m[i].key);
        }
        for (int j = 0; j < i; j++)
            if (strcmp(m[i].value, m[j].value) != 0 && strcasecmp(m[i].value, m[j].value) == 0) {
                deft_spec_origin_where(o, "dataset_config.target_class_mapping", at, sizeof at);
                deft_log(DEFT_LOG_WARN, "%s: class names '%s' and '%s' differ only in case: they are one class "
                         "('%s' after lower-casing, as TAO does)", at, m[j].value, m[i].value, m[i].value);
            }
    }
    deft_det_free_classes(d);
    int n = d->n_target_class_mapping;
    d->class_names = n ? deft_calloc((size_t)n, sizeof *d->class_names) : NULL;
    if (n && !d->class_names) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        char *l = lower_dup(m[i].value);
        if (!l) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        bool dup = false;
        for (int j = 0; j < d->n_classes && !dup; j++) dup = strcmp(d->class_names[j], l) == 0;
        if (dup) deft_free(l);
        else d->class_names[d->n_classes++] = l;
    }
    if (d->n_classes > 1) qsort(d->class_names, (size_t)d->n_classes, sizeof *d->class_names, cmp_str);
    return DEFT_OK;
}

enum deft_status deft_det_check_dataset(struct deft_yolo_dataset_config *d, const struct deft_spec_origin *o) {
    char at[300];
    if (d->n_data_sources == 0) {
        deft_spec_origin_where(o, "dataset_config", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config needs at least one data_sources block "
                              "{ label_directory_path: ... image_directory_path: ... }", at);
    }
    enum deft_status s = check_sources(d->data_sources, d->n_data_sources, "dataset_config.data_sources", o);
    if (!s) s = check_sources(d->validation_data_sources, d->n_validation_data_sources,
                              "dataset_config.validation_data_sources", o);
    if (s) return s;
    if (*d->type && strcmp(d->type, "kitti") && strcmp(d->type, "coco") && strcmp(d->type, "voc")) {
        deft_spec_origin_where(o, "dataset_config.type", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.type '%.40s' is not one of: kitti, coco, voc",
                              at, d->type);
    }
    if (strchr(d->image_extension, '/')) {
        deft_spec_origin_where(o, "dataset_config.image_extension", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.image_extension '%.40s' is not an extension "
                              "(e.g. \"png\")", at, d->image_extension);
    }
    if (d->n_target_class_mapping == 0) {
        deft_spec_origin_where(o, "dataset_config", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config needs target_class_mapping entries "
                              "{ key: \"label name\" value: \"class name\" }", at);
    }
    return build_classes(d, o);
}

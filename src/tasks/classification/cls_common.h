/* cls_common.h (internal) - pieces shared by the classification actions:
 * spec -> transform, model metadata (classes, preprocessing), LR schedules. */
#ifndef DEFT_CLS_COMMON_H
#define DEFT_CLS_COMMON_H

#include "deft/data.h"
#include "deft/graph.h"
#include "deft/spec.h"

/* Transform for training (augmentation per spec) or evaluation. */
enum deft_status cls_transform_from_config(const struct deft_cls_config *c, bool train,
                                           struct deft_transform *t);
/* JSON for the model metadata "preprocess" entry, and back. */
char *cls_preprocess_to_json(const struct deft_transform *t);
enum deft_status cls_transform_from_meta(const struct deft_graph *g, const char *model_path,
                                         struct deft_transform *t);
char *cls_class_names_to_json(char *const *names, int n);
/* Class names from the model metadata (*names freed with deft_string_list_free). */
enum deft_status cls_class_names_from_meta(const struct deft_graph *g, const char *model_path,
                                           char ***names, int *n);

/* Learning rate at an optimizer step, TAO semantics (see cls_common.c). */
struct cls_lr_ctx {
    const struct deft_cls_config *cfg;
    int64_t steps_per_epoch, total_steps;
};
double cls_lr_at(const void *ctx, int64_t step);

/* deft_cls_evaluate, also returning the top-1 accuracy (top1 may be NULL). */
struct deft_cls_args;
enum deft_status cls_evaluate(const struct deft_cls_args *a, double *top1);

/* train --data DIR [--val DIR] [--arch A] [--pretrained F|NAME] [--epochs N]
 * [--batch N] [--size N] [--lr X] [--grayscale]: a deft YAML spec (free() it) with
 * fine-tuning defaults; a missing or empty folder, an unknown arch or a bad
 * number is DEFT_ERR_INVALID_ARG / NOT_FOUND naming the flag. */
struct deft_task_args;
enum deft_status cls_quick_spec(const struct deft_task_args *t, char **yaml);

/* mkdir -p */
enum deft_status cls_mkdirs(const char *path);

#endif

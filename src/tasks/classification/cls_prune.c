/* cls_prune.c - `deft classification prune`: the task-neutral prune action
 * (src/prune/prune_run.c) scored with validation top-1. */
#include <stdio.h>
#include "deft/classification.h"
#include "deft/prune.h"
#include "tasks/classification/cls_common.h"

/* Validation top-1 of a model file on the spec's evaluation set, quietly. */
static enum deft_status eval_top1(void *ctx, const char *model, double *top1) {
    const struct deft_cls_prune_args *a = ctx;
    FILE *null = fopen("/dev/null", "w");
    struct deft_cls_args ea = {.spec = a->spec, .model = model, .overrides = a->overrides,
                               .n_overrides = a->n_overrides, .threads = a->threads,
                               .backend = a->backend ? a->backend : "cpu", .out = null ? null : stderr};
    enum deft_status s = cls_evaluate(&ea, top1);
    if (null) fclose(null);
    return s;
}

enum deft_status deft_cls_prune(const struct deft_cls_prune_args *a) {
    struct deft_prune_run_args r = {.model = a->model, .output = a->output, .results_dir = a->results_dir,
                                    .opts = a->opts, .target_ratio = a->target_ratio,
                                    .target_flops = a->target_flops, .sweep = a->sweep,
                                    .sensitivity = a->sensitivity, .threads = a->threads,
                                    .eval = a->spec ? eval_top1 : NULL, .eval_ctx = (void *)a,
                                    .metric_name = "val_top1", .metric_label = "val top-1", .out = a->out};
    return deft_prune_run(&r);
}

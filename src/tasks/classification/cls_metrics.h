/* cls_metrics.h (internal) - classification metrics: top-1/top-k accuracy,
 * confusion matrix, per-class precision/recall/F1, results.json. */
#ifndef DEFT_CLS_METRICS_H
#define DEFT_CLS_METRICS_H

#include <stdint.h>
#include "deft/core.h"

struct cls_metrics {
    int n_classes, top_k;
    int64_t *confusion;   /* [true][predicted] */
    int64_t total, top1, topk;
};

enum deft_status cls_metrics_init(struct cls_metrics *m, int n_classes, int top_k);
void cls_metrics_release(struct cls_metrics *m);
/* Add n predictions: logits [n, C], labels [n] class ids. */
void cls_metrics_add(struct cls_metrics *m, const float *logits, const float *labels, int n);
/* Data parallel: sum every rank's counts into every rank (a no-op alone). */
enum deft_status cls_metrics_reduce(struct cls_metrics *m);
double cls_metrics_top1(const struct cls_metrics *m);
double cls_metrics_topk(const struct cls_metrics *m);
/* Fraction of predictions that went to the most predicted class (1.0 = collapse). */
double cls_metrics_majority_share(const struct cls_metrics *m);
/* Write results.json (atomic) with top1/topk as fractions, per-class
 * precision/recall/F1/support and the confusion matrix; confusion.csv beside it. */
enum deft_status cls_metrics_write(const struct cls_metrics *m, const char *dir,
                                   const char *const *class_names);
void cls_metrics_print(const struct cls_metrics *m, const char *const *class_names, FILE *f);

#endif

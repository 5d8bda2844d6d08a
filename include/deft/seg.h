/* deft/seg.h - semantic segmentation: TAO UNet's losses on NCHW logits and
 * the pixel metrics over a whole set (../shared/reference/detection.md §7).
 *
 * Losses (host side, for a trainer host-loss callback, deft/trainer.h):
 *
 *     struct deft_seg_loss_opts o = {.kind = DEFT_SEG_LOSS_CROSS_DICE_SUM, .n_classes = 12,
 *                                    .class_weights = w, .ignore_id = 11};
 *     struct deft_seg_loss_terms t;
 *     deft_seg_loss(&o, logits, target, n, h, w, &t, grad);  // grad: d(t.total)/d(logits)
 *
 * Metrics (one confusion matrix accumulated over every image of the set):
 *
 *     struct deft_seg_confusion c;
 *     deft_seg_confusion_init(&c, n_classes);
 *     for each batch: deft_seg_argmax(logits, n, C, h, w, pred);
 *                     deft_seg_confusion_add(&c, pred, truth, n * h * w, ignore_id);
 *     struct deft_seg_metrics m;
 *     deft_seg_metrics_compute(&c, &m);
 *     deft_seg_metrics_print(stdout, &m, names);
 *     deft_seg_metrics_write_json("evaluate/metrics.json", &m, names);
 *     deft_seg_confusion_plot("plots/confusion", &c, names);   // .svg + .png
 *     deft_seg_metrics_free(&m); deft_seg_confusion_free(&c);
 *
 * Layouts: logits [n, C, h, w] f32 (C = n_classes for softmax, 1 for the
 * binary sigmoid head); class ids [n, h, w] int32.
 */
#ifndef DEFT_SEG_H
#define DEFT_SEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- losses ----------------------------------------------------------------
 *
 * Let V be the pixels whose target is not ignore_id (targets must lie in
 * [0, n_classes) otherwise). Softmax head, p = softmax over the C channels:
 *
 *   cross_entropy  sum_{i in V} w[y_i] * -log p_i[y_i]  /  sum_{i in V} w[y_i]
 *                  (PyTorch's F.cross_entropy(weight=w, ignore_index=ignore_id,
 *                  reduction='mean'); w = 1 when class_weights is NULL, which is
 *                  TAO's mean of softmax_cross_entropy_with_logits)
 *   dice           mean_{i in V} (1 - d_i),  d_i = 2 sum_c p_ic t_ic / sum_c (p_ic^2 + t_ic^2)
 *                  with t the one-hot target: d_i = 2 p_i[y_i] / (sum_c p_ic^2 + 1).
 *                  This is TAO's dice_coef exactly: its sums run over axis 1 of
 *                  NCHW, the class axis, so the Dice is per pixel, then averaged
 *                  over the batch and the pixels; smoothing eps = 0 (the
 *                  denominator is >= 1 with a one-hot target). No class weights.
 *   cross_dice_sum cross_entropy + dice
 *
 * Sigmoid head (sigmoid = true): 1 logit channel, n_classes must be 2 (target
 * 0 background, 1 foreground), p = sigmoid(x), t = y:
 *   cross_entropy  weighted mean over V of BCE-with-logits, weights w[y_i] as above
 *   dice           mean_{i in V} (1 - d_i), d_i = 2 p t / (p^2 + t^2): TAO's formula on
 *                  one channel, so d_i = 2p/(p^2+1) at foreground pixels and 0 (loss 1,
 *                  no gradient) at background pixels, where TAO's 0/p^2 is 0 too.
 *
 * Ignored pixels: no loss, zero gradient, and not counted in any mean (TAO
 * one-hot-encodes them to zeros, which counts them with loss 0 in its CE and
 * 1 in its Dice; deft leaves them out). A batch with every pixel ignored (or
 * all of whose weights are 0) gives loss 0 and a zero gradient, where PyTorch
 * would give NaN.
 */
enum deft_seg_loss_kind {
    DEFT_SEG_LOSS_CROSS_ENTROPY = 0, /* TAO's "cross_entropy" (its default) */
    DEFT_SEG_LOSS_DICE = 1,          /* TAO's "dice" */
    DEFT_SEG_LOSS_CROSS_DICE_SUM = 2 /* TAO's "cross_dice_sum" */
};

/* "cross_entropy", "dice", "cross_dice_sum" (TAO's training_config.loss);
 * unknown: DEFT_ERR_INVALID_ARG naming the choices. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_loss_kind_parse(const char *s, enum deft_seg_loss_kind *out);
DEFT_API const char *deft_seg_loss_kind_name(enum deft_seg_loss_kind k);

struct deft_seg_loss_opts {
    enum deft_seg_loss_kind kind;
    int n_classes;              /* softmax: = channels C >= 2; sigmoid: 2 */
    const float *class_weights; /* [n_classes] >= 0, or NULL (all 1); cross entropy only */
    int ignore_id;              /* target id with no loss; any value outside [0, n_classes),
                                   e.g. -1 or 255, also works as "no ignore id" */
    bool sigmoid;               /* binary head: 1 logit channel, sigmoid activation */
};

struct deft_seg_loss_terms {
    double total;   /* the loss the kind asks for */
    double ce;      /* cross entropy (computed for every kind) */
    double dice;    /* 1 - mean Dice (computed for every kind) */
    int64_t pixels; /* pixels not ignored */
};

/* Loss of logits [n, C, h, w] against target [n, h, w]; grad (NULL: none)
 * receives d(terms.total)/d(logits), same layout, every element written.
 * A target id outside [0, n_classes) that is not ignore_id, a negative or
 * non-finite class weight, or bad sizes: DEFT_ERR_INVALID_ARG naming the
 * value and the pixel (nothing written). A non-finite logit gives a
 * non-finite loss (the trainer's NaN handling catches it). */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_loss(const struct deft_seg_loss_opts *o, const float *logits,
                                                      const int32_t *target, int n, int h, int w,
                                                      struct deft_seg_loss_terms *terms, float *grad);

/* A deft_host_loss_fn (deft/trainer.h) over the model's first output
 * [n, C, h, w]: user = const struct deft_seg_loss_opts *, targets = the
 * batch's class ids, const int32_t [n, h, w]; terms[0] = cross entropy,
 * terms[1] = 1 - Dice. */
struct deft_shape;
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_host_loss(void *user, int n_outputs, const float *const *outputs,
                                                           const struct deft_shape *shapes, const void *targets,
                                                           float *const *grads, double *loss, double *terms);

/* ---- predictions ----------------------------------------------------------- */

/* Class map [n, h, w] from logits [n, C, h, w]: the first channel of maximal
 * value (NaN never wins); C == 1 is the sigmoid head: 1 where logit > 0
 * (probability > 0.5, TAO's threshold), else 0. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_argmax(const float *logits, int n, int C, int h, int w,
                                                        int32_t *out);

/* ---- metrics --------------------------------------------------------------- */

struct deft_seg_confusion {
    int n_classes;
    int64_t *counts; /* [n_classes * n_classes], counts[truth * n_classes + pred] */
};

DEFT_API DEFT_NODISCARD enum deft_status deft_seg_confusion_init(struct deft_seg_confusion *c, int n_classes);
DEFT_API void deft_seg_confusion_free(struct deft_seg_confusion *c);
DEFT_API void deft_seg_confusion_reset(struct deft_seg_confusion *c);
/* Count n pixels. A pixel whose truth is ignore_id or outside [0, n_classes)
 * is not counted; a prediction outside [0, n_classes) at a counted pixel is
 * DEFT_ERR_INVALID_ARG naming it (nothing counted then). */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_confusion_add(struct deft_seg_confusion *c, const int32_t *pred,
                                                               const int32_t *truth, size_t n, int ignore_id);
/* dst += src (workers, processes); class counts must match. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_confusion_merge(struct deft_seg_confusion *dst,
                                                                 const struct deft_seg_confusion *src);

/* Per class, from the matrix (TAO's evaluate): TP = diagonal, FP = column sum
 * - TP, FN = row sum - TP;
 *   IoU = TP/(TP+FP+FN), precision = TP/(TP+FP), recall = TP/(TP+FN),
 *   F1 = 2TP/(2TP+FP+FN) (= 2PR/(P+R));
 * a zero denominator gives NaN: IoU and F1 are NaN only for a class absent
 * from both truth and prediction, precision for a class never predicted,
 * recall for a class absent from the truth. The means skip NaN (TAO's
 * getScoreAverage); all NaN -> NaN. TAO computes F1 as 2PR/(P+R), NaN also
 * where TP = 0; deft's F1 is 0 there, so its mean F1 counts such classes. */
struct deft_seg_class_metrics {
    double iou, precision, recall, f1;
    int64_t tp, fp, fn;
    int64_t support;   /* pixels of the class in the truth (TP + FN) */
    int64_t predicted; /* pixels predicted as the class (TP + FP) */
};

struct deft_seg_metrics {
    int n_classes;
    struct deft_seg_class_metrics *classes;
    double miou, mean_precision, mean_recall, mean_f1; /* over classes, NaN skipped */
    int n_classes_in_miou;                             /* classes with a finite IoU */
    double pixel_accuracy;                             /* trace / total (NaN when no pixel) */
    int64_t pixels;                                    /* counted pixels */
};

DEFT_API DEFT_NODISCARD enum deft_status deft_seg_metrics_compute(const struct deft_seg_confusion *c,
                                                                 struct deft_seg_metrics *out);
DEFT_API void deft_seg_metrics_free(struct deft_seg_metrics *m);
/* A table: one row per class (IoU, precision, recall, F1, support), then the
 * means and the pixel accuracy. names may be NULL (indices are used). */
DEFT_API void deft_seg_metrics_print(FILE *f, const struct deft_seg_metrics *m, const char *const *names);
/* metrics.json (atomic): {"mIoU", "mean_precision", "mean_recall", "mean_f1",
 * "pixel_accuracy", "pixels", "classes": {name: {"iou", "precision", "recall",
 * "f1", "support", "predicted", "tp", "fp", "fn"}}}; NaN is null. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_metrics_to_json(const struct deft_seg_metrics *m,
                                                                 const char *const *names, char **out);
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_metrics_write_json(const char *path, const struct deft_seg_metrics *m,
                                                                    const char *const *names);
/* The pixel confusion matrix as <path_base>.svg and .png (deft_plot_confusion:
 * rows truth, columns prediction, colour = share of the row). */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_confusion_plot(const char *path_base, const struct deft_seg_confusion *c,
                                                                const char *const *names);

#ifdef __cplusplus
}
#endif

#endif

/* seg_metrics.c - semantic segmentation: class maps from logits, the pixel
 * confusion matrix over a set, and TAO's per-class metrics from it. */
#include <math.h>
#include <string.h>
#include "deft/seg.h"

#define SEG_MAX_CLASSES 65536 /* counts are n^2 int64: keep the matrix sane */
#define SEG_BLOCK 256         /* pixels per block: the running maxima stay in L1 */

/* Pixels j0..j0+m of one image: channel-outer loops keep the reads
 * contiguous; '>' keeps the first maximum, and a NaN never wins (it loses
 * every comparison, and a NaN in channel 0 is replaced by any number). */
static void argmax_block(const float *x, size_t hw, int C, size_t j0, size_t m, int32_t *o) {
    float best[SEG_BLOCK];
    for (size_t j = 0; j < m; j++) {
        best[j] = x[j0 + j];
        o[j0 + j] = 0;
    }
    for (int c = 1; c < C; c++) {
        const float *xc = x + (size_t)c * hw + j0;
        for (size_t j = 0; j < m; j++)
            if (xc[j] > best[j] || (isnan(best[j]) && !isnan(xc[j]))) {
                best[j] = xc[j];
                o[j0 + j] = c;
            }
    }
}

enum deft_status deft_seg_argmax(const float *logits, int n, int C, int h, int w, int32_t *out) {
    if (!logits || !out || n < 0 || C < 1 || h < 0 || w < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg argmax: bad arguments (n %d, C %d, %dx%d)", n, C, h, w);
    size_t hw = (size_t)h * (size_t)w;
    for (int b = 0; b < n; b++) {
        const float *x = logits + (size_t)b * (size_t)C * hw;
        int32_t *o = out + (size_t)b * hw;
        if (C == 1) { /* sigmoid head: p > 0.5 <=> logit > 0 */
            for (size_t j = 0; j < hw; j++) o[j] = x[j] > 0.0f;
            continue;
        }
        for (size_t j0 = 0; j0 < hw; j0 += SEG_BLOCK) argmax_block(x, hw, C, j0, j0 + SEG_BLOCK < hw ? SEG_BLOCK : hw - j0, o);
    }
    return DEFT_OK;
}

enum deft_status deft_seg_confusion_init(struct deft_seg_confusion *c, int n_classes) {
    c->n_classes = 0;
    c->counts = NULL;
    if (n_classes < 1 || n_classes > SEG_MAX_CLASSES)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg confusion: %d classes (1..%d)", n_classes, SEG_MAX_CLASSES);
    c->counts = deft_calloc((size_t)n_classes * (size_t)n_classes, sizeof *c->counts);
    if (!c->counts) return deft_set_error(DEFT_ERR_NOMEM, "seg confusion: out of memory (%d classes)", n_classes);
    c->n_classes = n_classes;
    return DEFT_OK;
}

void deft_seg_confusion_free(struct deft_seg_confusion *c) {
    if (!c) return;
    deft_free(c->counts);
    c->counts = NULL;
    c->n_classes = 0;
}

void deft_seg_confusion_reset(struct deft_seg_confusion *c) {
    if (c && c->counts) memset(c->counts, 0, (size_t)c->n_classes * (size_t)c->n_classes * sizeof *c->counts);
}

static bool counted(int32_t truth, int ignore_id, int k) {
    return truth != ignore_id && truth >= 0 && truth < k;
}

enum deft_status deft_seg_confusion_add(struct deft_seg_confusion *c, const int32_t *pred, const int32_t *truth,
                                        size_t n, int ignore_id) {
    if (!c || !c->counts || (n && (!pred || !truth)))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg confusion: not initialized or NULL masks");
    int k = c->n_classes;
    /* validate first so a bad batch leaves the matrix as it was */
    for (size_t i = 0; i < n; i++)
        if (counted(truth[i], ignore_id, k) && (pred[i] < 0 || pred[i] >= k))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "seg confusion: prediction %d at pixel %zu is outside [0, %d)",
                                  (int)pred[i], i, k);
    for (size_t i = 0; i < n; i++)
        if (counted(truth[i], ignore_id, k)) c->counts[(size_t)truth[i] * (size_t)k + (size_t)pred[i]]++;
    return DEFT_OK;
}

enum deft_status deft_seg_confusion_merge(struct deft_seg_confusion *dst, const struct deft_seg_confusion *src) {
    if (!dst || !src || !dst->counts || !src->counts || dst->n_classes != src->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg confusion merge: %d vs %d classes", dst ? dst->n_classes : -1,
                              src ? src->n_classes : -1);
    size_t nn = (size_t)dst->n_classes * (size_t)dst->n_classes;
    for (size_t i = 0; i < nn; i++) dst->counts[i] += src->counts[i];
    return DEFT_OK;
}

static double ratio(int64_t num, int64_t den) {
    return den > 0 ? (double)num / (double)den : NAN;
}

/* TAO's getScoreAverage: mean of the finite entries, NaN when none. */
static double mean_skip_nan(const struct deft_seg_class_metrics *cl, int k, size_t field, int *n_used) {
    double sum = 0;
    int used = 0;
    for (int i = 0; i < k; i++) {
        double v = *(const double *)((const char *)&cl[i] + field);
        if (isnan(v)) continue;
        sum += v;
        used++;
    }
    if (n_used) *n_used = used;
    return used ? sum / used : NAN;
}

static void class_metrics(const struct deft_seg_confusion *c, int i, struct deft_seg_class_metrics *m) {
    int k = c->n_classes;
    int64_t tp = c->counts[(size_t)i * k + i], row = 0, col = 0;
    for (int j = 0; j < k; j++) {
        row += c->counts[(size_t)i * k + j];
        col += c->counts[(size_t)j * k + i];
    }
    m->tp = tp;
    m->fn = row - tp;
    m->fp = col - tp;
    m->support = row;
    m->predicted = col;
    m->iou = ratio(tp, tp + m->fp + m->fn);
    m->precision = ratio(tp, col);
    m->recall = ratio(tp, row);
    m->f1 = ratio(2 * tp, 2 * tp + m->fp + m->fn);
}

enum deft_status deft_seg_metrics_compute(const struct deft_seg_confusion *c, struct deft_seg_metrics *out) {
    memset(out, 0, sizeof *out);
    if (!c || !c->counts || c->n_classes < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg metrics: confusion matrix not initialized");
    int k = c->n_classes;
    out->classes = deft_calloc((size_t)k, sizeof *out->classes);
    if (!out->classes) return deft_set_error(DEFT_ERR_NOMEM, "seg metrics: out of memory");
    out->n_classes = k;
    int64_t trace = 0;
    for (int i = 0; i < k; i++) {
        class_metrics(c, i, &out->classes[i]);
        trace += out->classes[i].tp;
        out->pixels += out->classes[i].support;
    }
    const struct deft_seg_class_metrics *cl = out->classes;
    out->miou = mean_skip_nan(cl, k, offsetof(struct deft_seg_class_metrics, iou), &out->n_classes_in_miou);
    out->mean_precision = mean_skip_nan(cl, k, offsetof(struct deft_seg_class_metrics, precision), NULL);
    out->mean_recall = mean_skip_nan(cl, k, offsetof(struct deft_seg_class_metrics, recall), NULL);
    out->mean_f1 = mean_skip_nan(cl, k, offsetof(struct deft_seg_class_metrics, f1), NULL);
    out->pixel_accuracy = ratio(trace, out->pixels);
    return DEFT_OK;
}

void deft_seg_metrics_free(struct deft_seg_metrics *m) {
    if (!m) return;
    deft_free(m->classes);
    m->classes = NULL;
    m->n_classes = 0;
}

/* seg_report.c - segmentation metrics out: a table, metrics.json (cJSON,
 * written atomically) and the confusion-matrix plot. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "deft/report.h"
#include "deft/seg.h"

static cJSON *num(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static bool add(cJSON *o, const char *k, cJSON *v) {
    if (!v) return false;
    if (cJSON_AddItemToObject(o, k, v)) return true;
    cJSON_Delete(v);
    return false;
}

static const char *class_name(const char *const *names, int k, char *buf, size_t n) {
    if (names && names[k]) return names[k];
    snprintf(buf, n, "%d", k);
    return buf;
}

static cJSON *class_json(const struct deft_seg_class_metrics *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    bool ok = add(o, "iou", num(c->iou)) && add(o, "precision", num(c->precision)) &&
              add(o, "recall", num(c->recall)) && add(o, "f1", num(c->f1)) &&
              add(o, "support", cJSON_CreateNumber((double)c->support)) &&
              add(o, "predicted", cJSON_CreateNumber((double)c->predicted)) &&
              add(o, "tp", cJSON_CreateNumber((double)c->tp)) && add(o, "fp", cJSON_CreateNumber((double)c->fp)) &&
              add(o, "fn", cJSON_CreateNumber((double)c->fn));
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

static cJSON *metrics_json(const struct deft_seg_metrics *m, const char *const *names) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON *classes = cJSON_CreateObject();
    bool ok = add(root, "mIoU", num(m->miou)) && add(root, "mean_precision", num(m->mean_precision)) &&
              add(root, "mean_recall", num(m->mean_recall)) && add(root, "mean_f1", num(m->mean_f1)) &&
              add(root, "pixel_accuracy", num(m->pixel_accuracy)) &&
              add(root, "pixels", cJSON_CreateNumber((double)m->pixels)) &&
              add(root, "classes_in_mIoU", cJSON_CreateNumber(m->n_classes_in_miou));
    if (!add(root, "classes", classes)) ok = false; /* always attached or freed: no leak */
    for (int k = 0; ok && k < m->n_classes; k++) {
        char idx[24];
        ok = add(classes, class_name(names, k, idx, sizeof idx), class_json(&m->classes[k]));
    }
    if (ok) return root;
    cJSON_Delete(root);
    return NULL;
}

enum deft_status deft_seg_metrics_to_json(const struct deft_seg_metrics *m, const char *const *names, char **out) {
    *out = NULL;
    cJSON *root = metrics_json(m, names);
    char *txt = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!txt) return deft_set_error(DEFT_ERR_NOMEM, "segmentation metrics JSON: out of memory");
    size_t n = strlen(txt);
    *out = deft_malloc(n + 2);
    if (*out) memcpy(*out, txt, n), (*out)[n] = '\n', (*out)[n + 1] = 0;
    cJSON_free(txt);
    return *out ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "segmentation metrics JSON: out of memory");
}

enum deft_status deft_seg_metrics_write_json(const char *path, const struct deft_seg_metrics *m,
                                             const char *const *names) {
    char *txt;
    enum deft_status s = deft_seg_metrics_to_json(m, names, &txt);
    if (s) return s;
    s = deft_file_write_atomic(path, txt, strlen(txt));
    deft_free(txt);
    return s;
}

static void fig(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, " %9.4f", v);
    else fprintf(f, " %9s", "-");
}

void deft_seg_metrics_print(FILE *f, const struct deft_seg_metrics *m, const char *const *names) {
    fprintf(f, "Segmentation metrics (pixel confusion matrix over the set, %lld pixels)\n", (long long)m->pixels);
    fprintf(f, "%-20s %9s %9s %9s %9s %12s\n", "class", "IoU", "precision", "recall", "F1", "support");
    for (int k = 0; k < m->n_classes; k++) {
        const struct deft_seg_class_metrics *c = &m->classes[k];
        char idx[24];
        fprintf(f, "%-20s", class_name(names, k, idx, sizeof idx));
        fig(f, c->iou);
        fig(f, c->precision);
        fig(f, c->recall);
        fig(f, c->f1);
        fprintf(f, " %12lld%s\n", (long long)c->support, isnan(c->iou) ? "   (absent: not in the means)" : "");
    }
    fprintf(f, "%-20s", "mean (NaN skipped)");
    fig(f, m->miou);
    fig(f, m->mean_precision);
    fig(f, m->mean_recall);
    fig(f, m->mean_f1);
    fprintf(f, "\nmIoU:");
    fig(f, m->miou);
    fprintf(f, "   (%d of %d classes)\npixel accuracy:", m->n_classes_in_miou, m->n_classes);
    fig(f, m->pixel_accuracy);
    fprintf(f, "\n");
}

enum deft_status deft_seg_confusion_plot(const char *path_base, const struct deft_seg_confusion *c,
                                         const char *const *names) {
    if (!c || !c->counts) return deft_set_error(DEFT_ERR_INVALID_ARG, "seg confusion plot: matrix not initialized");
    return deft_plot_confusion(path_base, "Pixel confusion matrix (rows: truth, columns: prediction)", names,
                               c->n_classes, c->counts);
}

/* det_report.c - detection metrics out: metrics.json (cJSON), a table that
 * names the definition beside each figure, and the PR-curve plot. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "deft/report.h"
#include "eval/eval_impl.h"

static cJSON *num(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static bool add(cJSON *o, const char *k, cJSON *v) {
    return v && cJSON_AddItemToObject(o, k, v);
}

static bool class_json(cJSON *classes, const struct deft_det_class_metrics *c, const char *name) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return false;
    bool ok = add(o, "AP", num(c->ap)) && add(o, "precision", num(c->precision)) &&
              add(o, "recall", num(c->recall)) && add(o, "gt", cJSON_CreateNumber((double)c->n_gt)) &&
              add(o, "detections", cJSON_CreateNumber((double)c->n_det)) &&
              add(o, "tp", cJSON_CreateNumber((double)c->tp)) && add(o, "fp", cJSON_CreateNumber((double)c->fp));
    if (ok && isfinite(c->ap50)) ok = add(o, "AP50", num(c->ap50)) && add(o, "AP75", num(c->ap75));
    if (!cJSON_AddItemToObject(classes, name, o)) {
        cJSON_Delete(o);
        return false;
    }
    return ok;
}

static cJSON *metrics_json(const struct deft_det_metrics *m, const char *const *names) {
    cJSON *root = cJSON_CreateObject(), *classes = cJSON_CreateObject();
    if (!root || !classes) {
        cJSON_Delete(root);
        cJSON_Delete(classes);
        return NULL;
    }
    bool ok = add(root, "ap_mode", cJSON_CreateString(deft_ap_mode_name(m->mode))) &&
              add(root, "definition", cJSON_CreateString(deft_ap_mode_describe(m->mode))) &&
              add(root, "iou", cJSON_CreateNumber(m->iou)) &&
              add(root, "conf_threshold", cJSON_CreateNumber(m->conf_threshold)) && add(root, "mAP", num(m->map));
    if (!cJSON_AddItemToObject(root, "classes", classes)) {
        cJSON_Delete(classes);
        ok = false;
    }
    for (int k = 0; ok && k < m->n_classes; k++) {
        char idx[24];
        snprintf(idx, sizeof idx, "%d", k);
        ok = class_json(classes, &m->classes[k], names && names[k] ? names[k] : idx);
    }
    if (ok && m->mode == DEFT_AP_COCO) {
        cJSON *c = cJSON_CreateObject();
        ok = c && add(c, "AP", num(m->map)) && add(c, "AP50", num(m->coco_ap50)) && add(c, "AP75", num(m->coco_ap75)) &&
             add(c, "APs", num(m->coco_ap_small)) && add(c, "APm", num(m->coco_ap_medium)) &&
             add(c, "APl", num(m->coco_ap_large)) && add(c, "AR", num(m->coco_ar));
        if (c && !cJSON_AddItemToObject(root, "coco", c)) {
            cJSON_Delete(c);
            ok = false;
        }
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

enum deft_status deft_det_metrics_to_json(const struct deft_det_metrics *m, const char *const *names, char **out) {
    *out = NULL;
    cJSON *root = metrics_json(m, names);
    char *txt = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!txt) return deft_set_error(DEFT_ERR_NOMEM, "metrics JSON: out of memory");
    size_t n = strlen(txt);
    *out = deft_malloc(n + 2);
    if (*out) memcpy(*out, txt, n), (*out)[n] = '\n', (*out)[n + 1] = 0;
    cJSON_free(txt);
    return *out ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "metrics JSON: out of memory");
}

enum deft_status deft_det_metrics_write_json(const char *path, const struct deft_det_metrics *m,
                                             const char *const *names) {
    char *txt;
    enum deft_status s = deft_det_metrics_to_json(m, names, &txt);
    if (s) return s;
    s = deft_file_write_atomic(path, txt, strlen(txt));
    deft_free(txt);
    return s;
}

static void fig(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, " %9.4f", v);
    else fprintf(f, " %9s", "-");
}

/* "IoU>=0.50" / "IoU>0.50" / "IoU .50:.95" for the header. */
static void iou_text(const struct deft_det_metrics *m, char *b, size_t n) {
    if (m->mode == DEFT_AP_COCO) snprintf(b, n, "IoU .50:.05:.95, P/R at IoU>=%.2f", m->iou);
    else snprintf(b, n, "IoU%s%.2f", m->mode <= DEFT_AP_VOC ? ">" : ">=", m->iou);
}

void deft_det_metrics_print(FILE *f, const struct deft_det_metrics *m, const char *const *names) {
    char iou[64];
    iou_text(m, iou, sizeof iou);
    const char *mode = deft_ap_mode_name(m->mode);
    fprintf(f, "Detection metrics: %s [%s], %s, score >= %g\n", deft_ap_mode_describe(m->mode), mode, iou,
            m->conf_threshold);
    fprintf(f, "%-20s %9s %9s %9s %9s %10s\n", "class", "AP", "precision", "recall", "gt", "detections");
    for (int k = 0; k < m->n_classes; k++) {
        const struct deft_det_class_metrics *c = &m->classes[k];
        char idx[24];
        snprintf(idx, sizeof idx, "%d", k);
        fprintf(f, "%-20s", names && names[k] ? names[k] : idx);
        fig(f, c->ap);
        fig(f, c->precision);
        fig(f, c->recall);
        fprintf(f, " %9lld %10lld%s\n", (long long)c->n_gt, (long long)c->n_det,
                isnan(c->ap) ? "   (no GT: not in mAP)" : "");
    }
    fprintf(f, "mAP [%s, %s]:", mode, iou);
    fig(f, m->map);
    fprintf(f, "   (%d of %d classes)\n", m->n_classes_in_map, m->n_classes);
    if (m->mode != DEFT_AP_COCO) return;
    fprintf(f, "COCO AP50 [coco, 101-point, IoU>=0.50]:");
    fig(f, m->coco_ap50);
    fprintf(f, "\nCOCO AP75 [coco, 101-point, IoU>=0.75]:");
    fig(f, m->coco_ap75);
    fprintf(f, "\nCOCO AP small / medium / large [coco, area <32^2 / 32^2-96^2 / >96^2]:");
    fig(f, m->coco_ap_small);
    fig(f, m->coco_ap_medium);
    fig(f, m->coco_ap_large);
    fprintf(f, "\nCOCO AR [coco, max %d detections per image and class]:", m->max_dets);
    fig(f, m->coco_ar);
    fprintf(f, "\n");
}

enum deft_status deft_det_metrics_plot_pr(const char *path, const struct deft_det_metrics *m,
                                          const char *const *names) {
    struct deft_plot_series *s = deft_calloc((size_t)m->n_classes + 1, sizeof *s);
    char (*label)[96] = deft_calloc((size_t)m->n_classes + 1, sizeof *label);
    if (!s || !label) {
        deft_free(s);
        deft_free(label);
        return deft_set_error(DEFT_ERR_NOMEM, "PR plot: out of memory");
    }
    int n = 0;
    for (int k = 0; k < m->n_classes; k++) {
        const struct deft_det_class_metrics *c = &m->classes[k];
        if (!c->n_pr) continue;
        char idx[24];
        snprintf(idx, sizeof idx, "%d", k);
        snprintf(label[n], sizeof label[n], "%s (AP %.3f)", names && names[k] ? names[k] : idx, c->ap);
        s[n] = (struct deft_plot_series){label[n], c->pr_recall, c->pr_precision, c->n_pr};
        n++;
    }
    char iou[64], title[192];
    iou_text(m, iou, sizeof iou);
    snprintf(title, sizeof title, "Precision-recall [%s, %s]", deft_ap_mode_name(m->mode), iou);
    enum deft_status st = deft_plot_lines(path, title, "recall", "precision", s, n);
    deft_free(s);
    deft_free(label);
    return st;
}

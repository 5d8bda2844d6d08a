/* cls_metrics.c - classification metrics and their files. */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "deft/dist.h"
#include "tasks/classification/cls_metrics.h"

enum deft_status cls_metrics_init(struct cls_metrics *m, int n_classes, int top_k) {
    memset(m, 0, sizeof *m);
    if (n_classes < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "metrics need at least one class");
    m->n_classes = n_classes;
    m->top_k = top_k < 1 ? 1 : top_k > n_classes ? n_classes : top_k;
    m->confusion = deft_calloc((size_t)n_classes * (size_t)n_classes, sizeof *m->confusion);
    if (!m->confusion) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    return DEFT_OK;
}

void cls_metrics_release(struct cls_metrics *m) {
    deft_free(m->confusion);
    m->confusion = NULL;
}

void cls_metrics_add(struct cls_metrics *m, const float *logits, const float *labels, int n) {
    int c = m->n_classes;
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * (size_t)c;
        int y = (int)labels[i], best = 0;
        for (int j = 1; j < c; j++)
            if (l[j] > l[best]) best = j;
        /* rank of the true class: classes scoring strictly higher (ties favour the truth) */
        int higher = 0;
        if (y >= 0 && y < c)
            for (int j = 0; j < c; j++) higher += l[j] > l[y];
        if (y < 0 || y >= c) continue;
        m->confusion[(size_t)y * (size_t)c + (size_t)best]++;
        m->total++;
        m->top1 += best == y;
        m->topk += higher < m->top_k;
    }
}

double cls_metrics_top1(const struct cls_metrics *m) { return m->total ? (double)m->top1 / (double)m->total : 0; }
double cls_metrics_topk(const struct cls_metrics *m) { return m->total ? (double)m->topk / (double)m->total : 0; }

double cls_metrics_majority_share(const struct cls_metrics *m) {
    int64_t best = 0;
    for (int p = 0; p < m->n_classes; p++) {
        int64_t col = 0;
        for (int t = 0; t < m->n_classes; t++) col += m->confusion[(size_t)t * (size_t)m->n_classes + (size_t)p];
        if (col > best) best = col;
    }
    return m->total ? (double)best / (double)m->total : 0;
}

static void class_prf(const struct cls_metrics *m, int k, double *p, double *r, double *f, int64_t *support) {
    int c = m->n_classes;
    int64_t tp = m->confusion[(size_t)k * (size_t)c + (size_t)k], pred = 0, truth = 0;
    for (int j = 0; j < c; j++) {
        pred += m->confusion[(size_t)j * (size_t)c + (size_t)k];
        truth += m->confusion[(size_t)k * (size_t)c + (size_t)j];
    }
    *p = pred ? (double)tp / (double)pred : 0;
    *r = truth ? (double)tp / (double)truth : 0;
    *f = *p + *r > 0 ? 2 * *p * *r / (*p + *r) : 0;
    *support = truth;
}

void cls_metrics_print(const struct cls_metrics *m, const char *const *names, FILE *f) {
    fprintf(f, "top-1 accuracy: %.4f (%lld/%lld)", cls_metrics_top1(m), (long long)m->top1, (long long)m->total);
    if (m->top_k > 1) fprintf(f, "   top-%d: %.4f", m->top_k, cls_metrics_topk(m));
    fprintf(f, "\n%-20s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support");
    for (int k = 0; k < m->n_classes; k++) {
        double p, r, f1;
        int64_t s;
        class_prf(m, k, &p, &r, &f1, &s);
        fprintf(f, "%-20s %9.4f %9.4f %9.4f %9lld\n", names ? names[k] : "?", p, r, f1, (long long)s);
    }
}

enum deft_status cls_metrics_write(const struct cls_metrics *m, const char *dir, const char *const *names) {
    int c = m->n_classes;
    cJSON *root = cJSON_CreateObject(), *per = cJSON_CreateArray(), *conf = cJSON_CreateArray();
    if (!root || !per || !conf) goto nomem;
    cJSON_AddNumberToObject(root, "top1", cls_metrics_top1(m));
    cJSON_AddNumberToObject(root, "top_k", m->top_k);
    cJSON_AddNumberToObject(root, "topk", cls_metrics_topk(m));
    cJSON_AddNumberToObject(root, "num_images", (double)m->total);
    for (int k = 0; k < c; k++) {
        double p, r, f1;
        int64_t s;
        class_prf(m, k, &p, &r, &f1, &s);
        cJSON *o = cJSON_CreateObject(), *row = cJSON_CreateArray();
        if (!o || !row) goto nomem;
        cJSON_AddStringToObject(o, "class", names ? names[k] : "");
        cJSON_AddNumberToObject(o, "precision", p);
        cJSON_AddNumberToObject(o, "recall", r);
        cJSON_AddNumberToObject(o, "f1", f1);
        cJSON_AddNumberToObject(o, "support", (double)s);
        cJSON_AddItemToArray(per, o);
        for (int j = 0; j < c; j++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)m->confusion[(size_t)k * (size_t)c + (size_t)j]));
        cJSON_AddItemToArray(conf, row);
    }
    cJSON_AddItemToObject(root, "per_class", per);
    per = NULL;
    cJSON_AddItemToObject(root, "confusion_matrix", conf);
    conf = NULL;
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/results.json", dir);
    enum deft_status s = deft_file_write_atomic(path, text, strlen(text));
    cJSON_free(text);
    if (s) return s;
    /* confusion.csv: header row of predicted classes, one row per true class */
    size_t cap = 64 + (size_t)c * (size_t)c * 24 + (size_t)c * 8, len = 0;
    for (int k = 0; names && k < c; k++) cap += 2 * strlen(names[k]); /* exact bound: no truncation */
    char *csv = deft_malloc(cap);
    if (!csv) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(csv + len, cap - len, "true\\predicted");
    for (int j = 0; j < c; j++) len += (size_t)snprintf(csv + len, cap - len, ",%s", names ? names[j] : "");
    len += (size_t)snprintf(csv + len, cap - len, "\n");
    for (int k = 0; k < c; k++) {
        len += (size_t)snprintf(csv + len, cap - len, "%s", names ? names[k] : "");
        for (int j = 0; j < c; j++)
            len += (size_t)snprintf(csv + len, cap - len, ",%lld", (long long)m->confusion[(size_t)k * (size_t)c + (size_t)j]);
        len += (size_t)snprintf(csv + len, cap - len, "\n");
    }
    snprintf(path, sizeof path, "%s/confusion.csv", dir);
    s = deft_file_write_atomic(path, csv, len);
    deft_free(csv);
    return s;
nomem:
    cJSON_Delete(root);
    cJSON_Delete(per);
    cJSON_Delete(conf);
    return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
}

enum deft_status cls_metrics_reduce(struct cls_metrics *m) {
    int64_t counts[3] = {m->total, m->top1, m->topk};
    enum deft_status s = deft_dist_allreduce_i64(counts, 3, DEFT_DIST_SUM);
    if (!s) s = deft_dist_allreduce_i64(m->confusion, (size_t)m->n_classes * (size_t)m->n_classes, DEFT_DIST_SUM);
    m->total = counts[0], m->top1 = counts[1], m->topk = counts[2];
    return s;
}

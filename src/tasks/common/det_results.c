/* det_results.c - what every detection task does with its detections: keep
 * them per image, score them against the ground truth in a named AP
 * definition, and carry the class names in a model's metadata. */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/graph.h"
#include "tasks/common/det_results.h"

enum deft_status det_dets_alloc(struct det_dets *d, int n) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->boxes = deft_calloc((size_t)(n > 0 ? n : 1), sizeof *d->boxes);
    d->n_boxes = deft_calloc((size_t)(n > 0 ? n : 1), sizeof *d->n_boxes);
    if (d->boxes && d->n_boxes) return DEFT_OK;
    det_dets_free(d);
    return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
}

void det_dets_free(struct det_dets *d) {
    for (int i = 0; d->boxes && i < d->n; i++) deft_free(d->boxes[i]);
    deft_free(d->boxes);
    deft_free(d->n_boxes);
    memset(d, 0, sizeof *d);
}

enum deft_status det_score(const struct deft_det_dataset *gt, const struct det_dets *d, enum deft_ap_mode mode,
                            double iou, double conf, struct deft_det_metrics **out) {
    struct deft_det_eval_image *im = deft_calloc((size_t)(gt->n ? gt->n : 1), sizeof *im);
    if (!im) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < gt->n; i++) {
        im[i].gt = gt->samples[i].boxes;
        im[i].n_gt = gt->samples[i].n_boxes;
        im[i].det = i < d->n ? d->boxes[i] : NULL;
        im[i].n_det = i < d->n ? d->n_boxes[i] : 0;
    }
    struct deft_det_eval_options o;
    deft_det_eval_options_init(&o, mode);
    if (mode != DEFT_AP_COCO && iou > 0) o.iou = iou;
    o.conf_threshold = conf;
    enum deft_status s = deft_det_eval(im, gt->n, gt->n_classes, &o, out);
    deft_free(im);
    return s;
}

void det_class_names_free(char **names, int n) {
    for (int i = 0; names && i < n; i++) deft_free(names[i]);
    deft_free(names);
}

enum deft_status det_class_names_from_meta(const struct deft_graph *g, const char *path, char ***names, int *n) {
    const char *j = deft_graph_get_meta(g, "class_names");
    cJSON *a = j ? cJSON_Parse(j) : NULL;
    *names = NULL;
    *n = 0;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1) {
        cJSON_Delete(a);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: no class names in the model's metadata", path);
    }
    int k = cJSON_GetArraySize(a);
    *names = deft_calloc((size_t)k, sizeof **names);
    if (!*names) {
        cJSON_Delete(a);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < k; i++) {
        const cJSON *s = cJSON_GetArrayItem(a, i);
        (*names)[i] = deft_strdup(cJSON_IsString(s) ? s->valuestring : "?");
        if (!(*names)[i]) {
            cJSON_Delete(a);
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        }
        *n = i + 1;
    }
    cJSON_Delete(a);
    return DEFT_OK;
}

char *det_class_names_json(char *const *names, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    char *txt = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    char *out = txt ? deft_strdup(txt) : NULL;
    free(txt);
    return out;
}

/* ---- preprocessing metadata ---- */

void det_preprocess_to_json(cJSON *o, const struct deft_preprocess *p) {
    cJSON *pre = cJSON_AddObjectToObject(o, "preprocess");
    cJSON_AddBoolToObject(pre, "bgr", p->bgr);
    cJSON_AddNumberToObject(pre, "divisor", p->divisor);
    cJSON *m = cJSON_AddArrayToObject(pre, "mean"), *sd = cJSON_AddArrayToObject(pre, "std");
    for (int c = 0; c < 3; c++) {
        cJSON_AddItemToArray(m, cJSON_CreateNumber(p->mean[c]));
        cJSON_AddItemToArray(sd, cJSON_CreateNumber(p->std[c]));
    }
    cJSON_AddNumberToObject(o, "mode", p->mode);
}

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

void det_preprocess_from_json(const cJSON *o, const struct deft_preprocess *dflt, struct deft_preprocess *pre) {
    *pre = *dflt;
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(o, "preprocess");
    if (!cJSON_IsObject(pp)) return;
    pre->mode = (enum deft_preprocess_mode)(int)num(o, "mode", pre->mode);
    pre->bgr = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pp, "bgr"));
    pre->divisor = (float)num(pp, "divisor", pre->divisor);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(pp, "mean"), *sd = cJSON_GetObjectItemCaseSensitive(pp, "std");
    for (int c = 0; c < 3; c++) {
        if (cJSON_IsNumber(cJSON_GetArrayItem(m, c))) pre->mean[c] = (float)cJSON_GetArrayItem(m, c)->valuedouble;
        if (cJSON_IsNumber(cJSON_GetArrayItem(sd, c))) pre->std[c] = (float)cJSON_GetArrayItem(sd, c)->valuedouble;
    }
}

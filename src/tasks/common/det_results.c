/* det_results.c - what every detection task does with its detections: keep
 * them per image, score them against the ground truth in a named AP
 * definition, and carry the class names in a model's metadata. */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/graph.h"
#include "tasks/common/det_results.h"

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

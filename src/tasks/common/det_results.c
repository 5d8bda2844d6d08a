/* det_results.c - what the detection tasks share after their networks:
 * per-image detections of a dataset and their score against the ground
 * truth, class names from a model's metadata, the images of an inference
 * input, annotated images and JSON detections. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "deft/data.h"
#include "deft/report.h"
#include "deft/graph.h"
#include "tasks/common/det_results.h"

static bool is_dir(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
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

const char *det_base_stem(const char *path, char *buf, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, n, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

static bool image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    if (!dot || n[0] == '.') return false;
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (!strcasecmp(dot, ext[i])) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Images of a directory (sorted) or one image, as a dataset without boxes. */
enum deft_status det_images_dataset(const char *in, struct deft_det_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    char **paths = NULL;
    int n = 0, cap = 0;
    if (is_dir(in)) {
        DIR *dir = opendir(in);
        if (!dir) return deft_set_error(DEFT_ERR_IO, "%s: %s", in, strerror(errno));
        for (struct dirent *e; (e = readdir(dir));) {
            if (!image_name(e->d_name)) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                char **np = deft_realloc(paths, (size_t)cap * sizeof *np);
                if (!np) break;
                paths = np;
            }
            size_t len = strlen(in) + strlen(e->d_name) + 2;
            if (!(paths[n] = deft_malloc(len))) break;
            snprintf(paths[n++], len, "%s/%s", in, e->d_name);
        }
        closedir(dir);
        qsort(paths, (size_t)n, sizeof *paths, cmp_str);
    } else {
        struct stat st;
        if (stat(in, &st)) return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no such image or directory (-i)", in);
        paths = deft_malloc(sizeof *paths);
        if (paths && (paths[0] = deft_strdup(in))) n = 1;
    }
    if (n == 0) {
        deft_free(paths);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no .jpg/.jpeg/.png/.bmp images", in);
    }
    ds->samples = deft_calloc((size_t)n, sizeof *ds->samples);
    if (!ds->samples) {
        for (int i = 0; i < n; i++) deft_free(paths[i]);
        deft_free(paths);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) ds->samples[i].image = paths[i];
    ds->n = n;
    deft_free(paths);
    return DEFT_OK;
}

enum deft_status det_write_annotated(const char *img_path, const char *dst, const struct deft_box *boxes, int n,
                                     char *const *classes, int n_classes) {
    struct deft_image im = {0};
    enum deft_status s = deft_image_load(img_path, NULL, &im);
    if (s) return s;
    deft_image_draw_boxes(&im, boxes, n, (const char *const *)classes, n_classes);
    s = deft_image_save_png(&im, dst);
    deft_image_free(&im);
    return s;
}

void det_json_dets(cJSON *arr, const char *image, const struct deft_box *b, int n, char *const *classes,
                   int n_classes) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", image);
    cJSON *ds = cJSON_AddArrayToObject(o, "detections");
    for (int i = 0; i < n; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "class", b[i].cls >= 0 && b[i].cls < n_classes ? classes[b[i].cls] : "?");
        cJSON_AddNumberToObject(d, "score", b[i].score);
        cJSON *bb = cJSON_AddArrayToObject(d, "bbox");
        const float v[4] = {b[i].x1, b[i].y1, b[i].x2, b[i].y2};
        for (int k = 0; k < 4; k++) cJSON_AddItemToArray(bb, cJSON_CreateNumber(v[k]));
        cJSON_AddItemToArray(ds, d);
    }
    cJSON_AddItemToArray(arr, o);
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

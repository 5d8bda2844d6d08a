/* det_infer_io.c - inference's inputs and outputs shared by the detection
 * tasks: the images of a folder as a dataset, annotated PNGs, JSON, and the
 * network input dumped for checking an exported model. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "deft/data.h"
#include "deft/io.h"
#include "deft/report.h"
#include "tasks/common/det_infer_io.h"

static bool is_dir(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *det_base_stem(const char *path, char *buf, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, n, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

/* --dump_input: image i's network input as dir/<stem>.npy [1,3,h,w] and its
 * letterbox as dir/<stem>.json, so an exported model can be fed exactly what
 * deft ran. */
enum deft_status det_dump_input(const char *dir, const char *image, const float *x, int h, int w,
                                   const struct deft_letterbox *lb) {
    char stem[1024], p[4200], js[512];
    det_base_stem(image, stem, sizeof stem);
    struct deft_shape sh = deft_shape4(1, 3, h, w);
    struct deft_tensor t = deft_tensor_view(DEFT_F32, &sh, (void *)x);
    snprintf(p, sizeof p, "%s/%s.npy", dir, stem);
    enum deft_status s = deft_npy_write(p, &t);
    if (s) return s;
    int n = deft_letterbox_to_json(lb, js, sizeof js - 1);
    if (n < 0 || n >= (int)sizeof js - 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "letterbox JSON too long");
    js[n++] = '\n';
    snprintf(p, sizeof p, "%s/%s.json", dir, stem);
    return deft_file_write_atomic(p, js, (size_t)n);
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


/* seg_dataset.c - data module: segmentation pairs (images and masks by stem)
 * and masks read as class maps (include/deft/seg_data.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "deft/data.h"
#include "deft/seg_data.h"

static bool image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    return n[0] != '.' && dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
                                  !strcasecmp(dot, ".bmp"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The image file names of dir, sorted (deft_malloc'ed list of deft_malloc'ed names). */
static enum deft_status list_images(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return deft_set_error(errno == ENOENT ? DEFT_ERR_NOT_FOUND : DEFT_ERR_IO, "%s: %s", dir, strerror(errno));
    int cap = 0;
    enum deft_status s = DEFT_OK;
    struct dirent *e;
    while (!s && (e = readdir(d))) {
        if (!image_name(e->d_name)) continue;
        if (*n == cap) {
            char **nn = deft_realloc(*names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *nn);
            if (!nn) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                break;
            }
            *names = nn;
        }
        if (!((*names)[*n] = deft_strdup(e->d_name))) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        else (*n)++;
    }
    closedir(d);
    if (!s && *n) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return s;
}

static char *join(const char *dir, const char *name, int stem_len, const char *ext) {
    size_t len = strlen(dir) + (size_t)stem_len + strlen(ext) + 2;
    char *p = deft_malloc(len);
    if (p) snprintf(p, len, "%s/%.*s%s", dir, stem_len, name, ext);
    return p;
}

/* The mask of image `name`: <stem>.png, else <stem> with the image's own extension. */
static char *find_mask(const char *masks, const char *name) {
    const char *dot = strrchr(name, '.');
    int stem = (int)(dot - name);
    const char *exts[2] = {".png", dot};
    for (int i = 0; i < 2; i++) {
        char *p = join(masks, name, stem, exts[i]);
        struct stat st;
        if (p && !stat(p, &st) && S_ISREG(st.st_mode)) return p;
        deft_free(p);
    }
    return NULL;
}

enum deft_status deft_seg_dataset_open(const char *images_dir, const char *masks_dir, struct deft_seg_dataset *out) {
    memset(out, 0, sizeof *out);
    char **names = NULL;
    int n = 0;
    enum deft_status s = list_images(images_dir, &names, &n);
    if (!s && n && !(out->samples = deft_calloc((size_t)n, sizeof *out->samples)))
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) {
        char *mask = masks_dir ? find_mask(masks_dir, names[i]) : NULL;
        if (masks_dir && !mask) {
            if (!out->missing_masks++)
                deft_log(DEFT_LOG_WARN, "%s/%s has no mask in %s: skipped (and any other image without one)",
                         images_dir, names[i], masks_dir);
            continue;
        }
        struct deft_seg_sample *sm = &out->samples[out->n];
        sm->mask = mask;
        if (!(sm->image = join(images_dir, names[i], (int)strlen(names[i]), ""))) {
            deft_free(mask);
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        } else {
            out->n++;
        }
    }
    for (int i = 0; i < n; i++) deft_free(names[i]);
    deft_free(names);
    if (!s && out->n == 0)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, masks_dir ? "no image of %s has a mask in %s" : "no images in %s%.0s",
                           images_dir, masks_dir ? masks_dir : "");
    if (s) deft_seg_dataset_free(out);
    return s;
}

/* The non-blank lines of a list file, each resolved against the list's folder. */
static enum deft_status read_list(const char *path, char ***lines, int *n) {
    *lines = NULL;
    *n = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    enum deft_status s = deft_read_file(path, (size_t)64 << 20, &data, &len);
    if (s) return s;
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) : 0, cap = 0;
    for (size_t i = 0; i < len && !s;) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        size_t b = i, f = e;
        while (b < f && (data[b] == ' ' || data[b] == '\t')) b++;
        while (f > b && (data[f - 1] == '\r' || data[f - 1] == ' ' || data[f - 1] == '\t')) f--;
        i = e + 1;
        if (f == b) continue;
        if (memchr(data + b, 0, f - b)) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: not a text file (a NUL byte)", path);
            break;
        }
        if (*n == cap) {
            char **nl = deft_realloc(*lines, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *nl);
            if (!nl) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                break;
            }
            *lines = nl;
        }
        bool rel = data[b] != '/' && dir_len > 0;
        size_t need = (rel ? (size_t)dir_len + 1 : 0) + (f - b) + 1;
        char *p = deft_malloc(need);
        if (!p) {
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(p, need, "%.*s%s%.*s", rel ? dir_len : 0, path, rel ? "/" : "", (int)(f - b), (const char *)data + b);
        (*lines)[(*n)++] = p;
    }
    deft_free(data);
    if (s) {
        for (int k = 0; k < *n; k++) deft_free((*lines)[k]);
        deft_free(*lines);
        *lines = NULL;
        *n = 0;
    }
    return s;
}

static bool is_file(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

enum deft_status deft_seg_dataset_add_lists(struct deft_seg_dataset *d, const char *image_list, const char *mask_list,
                                            bool filter) {
    char **im = NULL, **mk = NULL;
    int ni = 0, nm = 0;
    enum deft_status s = read_list(image_list, &im, &ni);
    if (!s && mask_list) s = read_list(mask_list, &mk, &nm);
    if (!s && mask_list && nm != ni)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s lists %d images but %s %d masks: the lists pair line by line",
                           image_list, ni, mask_list, nm);
    struct deft_seg_sample *grown = s ? NULL : deft_realloc(d->samples, (size_t)(d->n + ni + 1) * sizeof *grown);
    if (!s && !grown) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (grown) d->samples = grown;
    for (int i = 0; !s && i < ni; i++) {
        const char *bad = !is_file(im[i]) ? im[i] : mk && !is_file(mk[i]) ? mk[i] : NULL;
        if (bad && !filter) {
            s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s line %d: %s does not exist (filter_data: true skips such "
                               "pairs)", !is_file(im[i]) ? image_list : mask_list, i + 1, bad);
            break;
        }
        if (bad) {
            d->missing_masks++;
            continue;
        }
        d->samples[d->n++] = (struct deft_seg_sample){im[i], mk ? mk[i] : NULL};
        im[i] = NULL;
        if (mk) mk[i] = NULL;
    }
    for (int i = 0; i < ni; i++) deft_free(im[i]);
    for (int i = 0; i < nm; i++) deft_free(mk[i]);
    deft_free(im);
    deft_free(mk);
    return s;
}

void deft_seg_dataset_free(struct deft_seg_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        deft_free(d->samples[i].image);
        deft_free(d->samples[i].mask);
    }
    deft_free(d->samples);
    memset(d, 0, sizeof *d);
}

void deft_seg_label_map_init(struct deft_seg_label_map *m) {
    for (int i = 0; i < 256; i++) m->class_of[i] = -2;
    m->n_classes = 0;
    m->binary = false;
}

enum deft_status deft_seg_mask_load(const char *path, const struct deft_seg_label_map *m, int32_t **out, int *w,
                                    int *h) {
    *out = NULL;
    uint8_t *data = NULL;
    size_t n = 0;
    enum deft_status s = deft_read_file(path, (size_t)512 << 20, &data, &n);
    if (!s) s = deft_seg_mask_decode(data, n, path, NULL, m, out, w, h);
    deft_free(data);
    return s;
}

enum deft_status deft_seg_mask_decode(const uint8_t *data, size_t size, const char *path,
                                      const struct deft_decode_opts *o, const struct deft_seg_label_map *m,
                                      int32_t **out, int *w, int *h) {
    *out = NULL;
    *w = *h = 0;
    struct deft_image im = {0};
    enum deft_status s = deft_image_decode(data, size, o, &im);
    if (s) return deft_wrap_error(s, "%s", path);
    size_t n = (size_t)im.w * (size_t)im.h;
    int32_t *c = deft_malloc(n * sizeof *c);
    if (!c) {
        deft_image_free(&im);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && !s; i++) {
        int v = im.rgb[3 * i];
        if (m->binary) v = v >= 128;
        int k = m->class_of[v];
        if (k == -2)
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: pixel (%zu, %zu) has value %d, which data_class_config does not "
                               "list (give it a class, or make it the ignore id)", path, i % (size_t)im.w,
                               i / (size_t)im.w, v);
        c[i] = k;
    }
    *w = im.w;
    *h = im.h;
    deft_image_free(&im);
    if (s) {
        deft_free(c);
        return s;
    }
    *out = c;
    return DEFT_OK;
}

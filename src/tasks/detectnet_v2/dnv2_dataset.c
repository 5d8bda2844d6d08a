/* dnv2_dataset.c - DetectNet_v2's data sources resolved to KITTI folders:
 * TAO's tfrecords_path names the folder dataset_convert wrote into, where
 * deft finds its manifest (the image and label folders and the fold lists)
 * instead of TFRecords; image_directory_path alone works when the labels
 * sit in a KITTI folder beside or inside it. */
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "tasks/detectnet_v2/dnv2_task.h"

static bool is_dir(const char *p) {
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

void dnv2_manifest_free(struct dnv2_manifest *m) {
    for (int i = 0; m->folds && i < m->n_folds; i++) deft_free(m->folds[i]);
    deft_free(m->folds);
    deft_free(m->images);
    deft_free(m->labels);
    deft_free(m->image_extension);
    memset(m, 0, sizeof *m);
}

static char *json_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? deft_strdup(v->valuestring) : NULL;
}

enum deft_status dnv2_manifest_read(const char *path, struct dnv2_manifest *m) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: cannot open the dataset_convert manifest", path);
    char *buf = deft_malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    buf[n] = 0;
    cJSON *o = cJSON_Parse(buf);
    deft_free(buf);
    const cJSON *folds = o ? cJSON_GetObjectItemCaseSensitive(o, "folds") : NULL;
    if (!o || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "deft_dataset_convert")) || !cJSON_IsArray(folds)) {
        cJSON_Delete(o);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a deft dataset_convert manifest", path);
    }
    m->images = json_str(o, "images");
    m->labels = json_str(o, "labels");
    m->image_extension = json_str(o, "image_extension");
    m->n_folds = cJSON_GetArraySize(folds);
    m->folds = deft_calloc((size_t)(m->n_folds ? m->n_folds : 1), sizeof *m->folds);
    enum deft_status s = m->images && m->labels && m->image_extension && m->folds
                             ? DEFT_OK : deft_set_error(DEFT_ERR_FORMAT, "%s: manifest lacks images/labels", path);
    for (int i = 0; !s && i < m->n_folds; i++) {
        const cJSON *v = cJSON_GetArrayItem(folds, i);
        if (!cJSON_IsString(v) || !(m->folds[i] = deft_strdup(v->valuestring)))
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: folds[%d] is not a path", path, i);
    }
    cJSON_Delete(o);
    if (s) dnv2_manifest_free(m);
    return s;
}

static const char *own(struct dnv2_split *s, const char *text) {
    if (s->n_owned >= (int)(sizeof s->owned / sizeof s->owned[0])) return NULL;
    char *d = deft_strdup(text);
    if (d) s->owned[s->n_owned++] = d;
    return d;
}

void dnv2_split_free(struct dnv2_split *s) {
    for (int i = 0; i < s->n_owned; i++) deft_free(s->owned[i]);
    memset(s, 0, sizeof *s);
}

static void note(struct dnv2_split *s, const char *fmt, const char *a, const char *b, const char *c) {
    size_t u = strlen(s->how);
    snprintf(s->how + u, sizeof s->how - u, fmt, a, b, c);
}

static enum deft_status add(struct dnv2_split *s, const char *images, const char *labels, const char *list) {
    if (s->n >= (int)(sizeof s->src / sizeof s->src[0]))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "more than %d data folds / sources", s->n);
    const char *i = own(s, images), *l = own(s, labels), *k = list ? own(s, list) : NULL;
    if (!i || !l || (list && !k)) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    s->src[s->n++] = (struct deft_det_source){DEFT_DET_KITTI, i, l, k};
    return DEFT_OK;
}

/* The manifest a tfrecords_path leads to: its glob's *.deft.json, or PREFIX.deft.json. */
static bool find_manifest(const char *tf, char *out, size_t cap) {
    glob_t g;
    bool found = false;
    if (glob(tf, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && !found; i++)
            if (ends_with(g.gl_pathv[i], DNV2_MANIFEST_SUFFIX)) found = snprintf(out, cap, "%s", g.gl_pathv[i]) > 0;
        globfree(&g);
    }
    if (!found && snprintf(out, cap, "%s%s", tf, ends_with(tf, DNV2_MANIFEST_SUFFIX) ? "" : DNV2_MANIFEST_SUFFIX) > 0)
        found = is_file(out);
    return found;
}

/* KITTI folders for an image_directory_path: inside (image_2/label_2, images/labels) or a labels folder beside. */
static bool kitti_folders(const char *dir, char *images, char *labels, size_t cap) {
    static const char *const pairs[][2] = {{"image_2", "label_2"}, {"images", "labels"}};
    for (int i = 0; i < 2; i++) {
        snprintf(images, cap, "%s/%s", dir, pairs[i][0]);
        snprintf(labels, cap, "%s/%s", dir, pairs[i][1]);
        if (is_dir(images) && is_dir(labels)) return true;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t l = strlen(parent);
    while (l > 1 && parent[l - 1] == '/') parent[--l] = 0;
    char *slash = strrchr(parent, '/');
    if (slash) *slash = 0;
    else snprintf(parent, sizeof parent, ".");
    for (int i = 0; i < 2; i++) {
        snprintf(labels, cap, "%s/%s", *parent ? parent : "/", pairs[i][1]);
        if (is_dir(dir) && is_dir(labels)) {
            snprintf(images, cap, "%s", dir);
            return true;
        }
    }
    return false;
}

static enum deft_status resolve_source(const struct deft_dnv2_config *c, const struct deft_dnv2_data_source *d,
                                       const char *name, int fold, bool validation, struct dnv2_split *s) {
    char mpath[4096], images[4096], labels[4096];
    if (*d->tfrecords_path && find_manifest(d->tfrecords_path, mpath, sizeof mpath)) {
        struct dnv2_manifest m;
        enum deft_status st = dnv2_manifest_read(mpath, &m);
        if (st) return st;
        if (fold >= m.n_folds) {
            st = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.validation_fold %d but %s has %d folds",
                                c->source_path, fold, mpath, m.n_folds);
        }
        int added = 0;
        for (int i = 0; !st && i < m.n_folds; i++) {
            bool val = i == fold;
            if (val != validation) continue;
            st = add(s, m.images, m.labels, m.folds[i]);
            added++;
        }
        if (!st)
            note(s, "%s: tfrecords_path -> %s (deft reads the KITTI images and labels listed there, no TFRecords)",
                 name, mpath, "");
        if (!st && added == 0) note(s, "; no fold for this split%s%s\n", "", "", "");
        else if (!st) note(s, "\n", "", "", "");
        dnv2_manifest_free(&m);
        return st;
    }
    if (*d->image_directory_path && kitti_folders(d->image_directory_path, images, labels, sizeof images)) {
        if (fold >= 0 && validation) { /* folds are dataset_convert's lists: none here */
            note(s, "%s: validation_fold needs dataset_convert's folds; image_directory_path %s has none: no "
                 "validation data from it\n", name, d->image_directory_path, "");
            return DEFT_OK;
        }
        if (*d->tfrecords_path)
            note(s, "%s: deft reads KITTI images and labels directly (no TFRecords); tfrecords_path %s has no deft "
                 "dataset_convert output, so ", name, d->tfrecords_path, "");
        else note(s, "%s: ", name, "", "");
        note(s, "images %s, labels %s\n", images, labels, "");
        return add(s, images, labels, NULL);
    }
    if (*d->tfrecords_path)
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: deft reads KITTI images and labels directly, not TFRecords, "
                              "and tfrecords_path '%s' matches no deft dataset_convert output (*%s): run `deft "
                              "detectnet_v2 dataset_convert -d CONVERT_SPEC -o PREFIX` with PREFIX in that folder, "
                              "or give image_directory_path a KITTI folder (image_2 + label_2, or images + labels)",
                              c->source_path, name, d->tfrecords_path, DNV2_MANIFEST_SUFFIX);
    return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: image_directory_path '%s' has no KITTI labels inside it "
                          "(image_2 + label_2, images + labels) or beside it (../labels, ../label_2)",
                          c->source_path, name, d->image_directory_path);
}

enum deft_status dnv2_resolve_split(const struct deft_dnv2_config *c, bool validation, struct dnv2_split *out) {
    memset(out, 0, sizeof *out);
    const struct deft_dnv2_dataset_config *d = &c->dataset_config;
    char name[96];
    if (validation && d->has_validation_data_source)
        return resolve_source(c, &d->validation_data_source, "dataset_config.validation_data_source", -1, false, out);
    if (validation && !d->has_validation_fold) return DEFT_OK;
    int fold = d->has_validation_fold ? d->validation_fold : -1;
    for (int i = 0; i < d->n_data_sources; i++) {
        snprintf(name, sizeof name, "dataset_config.data_sources[%d]", i);
        enum deft_status s = resolve_source(c, &d->data_sources[i], name, fold, validation, out);
        if (s) return s;
    }
    return DEFT_OK;
}

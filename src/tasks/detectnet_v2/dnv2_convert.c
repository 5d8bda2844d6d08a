/* dnv2_convert.c - `deft detectnet_v2 dataset_convert -d SPEC -o PREFIX`:
 * TAO's kitti_config partitioning (random: the sorted images, the first
 * val_split% to fold 0; sequence: whole sequences dealt round-robin, largest
 * first, folds reversed, as TAO's KITTIConverter), written as fold lists and a
 * manifest (dnv2_task.h) instead of TFRecords. Labels are counted lower-cased,
 * as TAO's converter writes them, with the names that change said aloud. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "tasks/detectnet_v2/dnv2_task.h"

struct strv { char **v; int n, cap; };

static enum deft_status strv_push(struct strv *s, const char *t, size_t len) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        char **nv = deft_realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        s->v = nv, s->cap = cap;
    }
    char *d = deft_malloc(len + 1);
    if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    memcpy(d, t, len);
    d[len] = 0;
    s->v[s->n++] = d;
    return DEFT_OK;
}

static void strv_free(struct strv *s) {
    for (int i = 0; i < s->n; i++) deft_free(s->v[i]);
    deft_free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Stems of the images of dir whose names end in ext (TAO: imfile.endswith(extension)), sorted. */
static enum deft_status list_images(const char *dir, const char *ext, struct strv *out) {
    DIR *d = opendir(dir);
    if (!d) return deft_set_error(DEFT_ERR_NOT_FOUND, "image folder '%s': %s", dir, strerror(errno));
    enum deft_status s = DEFT_OK;
    struct dirent *e;
    size_t el = strlen(ext);
    while (!s && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= el || strcmp(e->d_name + l - el, ext)) continue;
        const char *dot = strrchr(e->d_name, '.');
        s = strv_push(out, e->d_name, dot ? (size_t)(dot - e->d_name) : l);
    }
    closedir(d);
    if (!s && out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return s;
}

/* TAO's sequence mode: the map's sequences sorted by (-frames, name), dealt round-robin, folds reversed. */
static enum deft_status sequence_folds(const char *json_path, int p, struct strv *folds) {
    FILE *f = fopen(json_path, "rb");
    if (!f) return deft_set_error(DEFT_ERR_NOT_FOUND, "kitti_sequence_to_frames_file '%s' does not exist", json_path);
    char *buf = deft_malloc(64 << 20);
    size_t n = buf ? fread(buf, 1, (64 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    buf[n] = 0;
    cJSON *o = cJSON_Parse(buf);
    deft_free(buf);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a JSON object {sequence: [frame ids]}", json_path);
    }
    int ns = cJSON_GetArraySize(o);
    const cJSON **seq = deft_calloc((size_t)(ns ? ns : 1), sizeof *seq);
    if (!seq) {
        cJSON_Delete(o);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    int k = 0;
    for (const cJSON *c = o->child; c; c = c->next) seq[k++] = c;
    for (int i = 1; i < ns; i++) /* insertion sort by (-len, name) */
        for (int j = i; j > 0; j--) {
            int la = cJSON_GetArraySize(seq[j - 1]), lb = cJSON_GetArraySize(seq[j]);
            if (la > lb || (la == lb && strcmp(seq[j - 1]->string, seq[j]->string) <= 0)) break;
            const cJSON *t = seq[j];
            seq[j] = seq[j - 1];
            seq[j - 1] = t;
        }
    enum deft_status s = DEFT_OK;
    for (int i = 0; !s && i < ns; i++) {
        int fold = p - 1 - i % p; /* reversed */
        for (const cJSON *fr = seq[i]->child; !s && fr; fr = fr->next) {
            if (!cJSON_IsString(fr)) {
                s = deft_set_error(DEFT_ERR_FORMAT, "%s: sequence '%s' holds a frame id that is not a string",
                                   json_path, seq[i]->string);
                break;
            }
            s = strv_push(&folds[fold], fr->valuestring, strlen(fr->valuestring));
        }
    }
    deft_free(seq);
    cJSON_Delete(o);
    for (int i = 0; !s && i < p; i++)
        if (folds[i].n > 1) qsort(folds[i].v, (size_t)folds[i].n, sizeof *folds[i].v, cmp_str);
    return s;
}

static char *lower_dup(const char *s) {
    char *d = deft_strdup(s);
    for (char *q = d; q && *q; q++)
        if (*q >= 'A' && *q <= 'Z') *q = (char)(*q + 32);
    return d;
}

/* Boxes per label name as written (raw read of every fold), into the manifest and out. */
static enum deft_status count_classes(const char *images, const char *labels, const char *ext, char *const *lists,
                                      int n, cJSON *man, FILE *out) {
    struct deft_det_source *src = deft_calloc((size_t)n, sizeof *src);
    if (!src) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) src[i] = (struct deft_det_source){DEFT_DET_KITTI, images, labels, lists[i]};
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    o.raw = true;
    o.probe_sizes = false;
    o.image_extension = ext;
    struct deft_det_dataset ds;
    enum deft_status s = deft_det_read(src, n, &o, &ds);
    deft_free(src);
    if (s) {
        deft_det_dataset_free(&ds);
        return s;
    }
    int64_t *cnt = deft_calloc((size_t)(ds.n_classes ? ds.n_classes : 1), sizeof *cnt);
    if (!cnt) {
        deft_det_dataset_free(&ds);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < ds.n; i++)
        for (int b = 0; b < ds.samples[i].n_boxes; b++) cnt[ds.samples[i].boxes[b].cls]++;
    cJSON *cls = cJSON_AddObjectToObject(man, "classes"), *names = cJSON_AddObjectToObject(man, "label_names");
    fprintf(out, "objects per class (names lower-cased, as TAO's converter writes them):\n");
    for (int k = 0; k < ds.n_classes; k++) {
        char *l = lower_dup(ds.class_names[k]);
        if (!l) continue;
        cJSON *prev = cJSON_GetObjectItemCaseSensitive(cls, l);
        double total = (prev ? prev->valuedouble : 0) + (double)cnt[k];
        if (prev) cJSON_SetNumberValue(prev, total);
        else cJSON_AddNumberToObject(cls, l, total);
        cJSON_AddStringToObject(names, ds.class_names[k], l);
        fprintf(out, "  %-20s %8lld%s%s%s\n", l, (long long)cnt[k], strcmp(l, ds.class_names[k]) ? "   (written '" : "",
                strcmp(l, ds.class_names[k]) ? ds.class_names[k] : "", strcmp(l, ds.class_names[k]) ? "')" : "");
        deft_free(l);
    }
    fprintf(out, "  (%lld images, %lld boxes; target_class_mapping keys must be these lower-case names)\n",
            (long long)ds.n, (long long)ds.stats.boxes);
    deft_free(cnt);
    deft_det_dataset_free(&ds);
    return DEFT_OK;
}

static enum deft_status write_list(const char *path, const struct strv *v) {
    FILE *f = fopen(path, "w");
    if (!f) return deft_set_error(DEFT_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    for (int i = 0; i < v->n; i++) fprintf(f, "%s\n", v->v[i]);
    return fclose(f) ? deft_set_error(DEFT_ERR_IO, "cannot write '%s'", path) : DEFT_OK;
}

static char *abs_path(const char *p) {
    char *r = realpath(p, NULL);
    char *d = deft_strdup(r ? r : p);
    free(r);
    return d;
}

struct convert {
    const struct deft_dnv2_kitti_config *k;
    char images[4096], labels[4096], ext[64], prefix[4096];
    int p;
    struct strv folds[1000];
    char *lists[1000];
};

static enum deft_status partition(struct convert *cv) {
    const struct deft_dnv2_kitti_config *k = cv->k;
    if (!strcmp(k->partition_mode, "sequence")) {
        char json[8192];
        snprintf(json, sizeof json, "%s/%s", k->root_directory_path, k->kitti_sequence_to_frames_file);
        return sequence_folds(json, cv->p, cv->folds);
    }
    struct strv all = {0};
    enum deft_status s = list_images(cv->images, cv->ext, &all);
    if (!s && all.n == 0)
        s = deft_set_error(DEFT_ERR_NOT_FOUND, "no '*%s' images in %s (kitti_config.image_extension)", cv->ext,
                           cv->images);
    int nval = (int)(k->val_split / 100.0 * all.n); /* TAO: int(val_split * total) */
    for (int i = 0; !s && i < all.n; i++) s = strv_push(&cv->folds[i < nval ? 0 : 1], all.v[i], strlen(all.v[i]));
    strv_free(&all);
    return s;
}

static enum deft_status write_outputs(struct convert *cv, FILE *out) {
    enum deft_status s = DEFT_OK;
    cJSON *man = cJSON_CreateObject();
    cJSON *folds = cJSON_CreateArray(), *sizes = cJSON_CreateArray();
    char *ai = abs_path(cv->images), *al = abs_path(cv->labels);
    if (!man || !folds || !sizes || !ai || !al) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < cv->p; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s-fold-%03d-of-%03d.txt", cv->prefix, i, cv->p);
        if ((s = write_list(path, &cv->folds[i]))) break;
        cv->lists[i] = abs_path(path);
        if (!cv->lists[i]) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        else cJSON_AddItemToArray(folds, cJSON_CreateString(cv->lists[i]));
        cJSON_AddItemToArray(sizes, cJSON_CreateNumber(cv->folds[i].n));
        fprintf(out, "fold %d%s: %d images -> %s\n", i, !strcmp(cv->k->partition_mode, "random")
                ? (i == 0 ? " (validation)" : " (training)") : "", cv->folds[i].n, path);
    }
    if (!s) {
        cJSON_AddNumberToObject(man, "deft_dataset_convert", 1);
        cJSON_AddStringToObject(man, "images", ai);
        cJSON_AddStringToObject(man, "labels", al);
        cJSON_AddStringToObject(man, "image_extension", cv->ext);
        cJSON_AddStringToObject(man, "partition_mode", cv->k->partition_mode);
        cJSON_AddNumberToObject(man, "val_split", cv->k->val_split);
        cJSON_AddItemToObject(man, "folds", folds);
        cJSON_AddItemToObject(man, "fold_sizes", sizes);
        folds = sizes = NULL;
        s = count_classes(cv->images, cv->labels, cv->ext, cv->lists, cv->p, man, out);
    }
    if (!s) {
        char path[4200];
        snprintf(path, sizeof path, "%s%s", cv->prefix, DNV2_MANIFEST_SUFFIX);
        char *txt = cJSON_Print(man);
        FILE *f = txt ? fopen(path, "w") : NULL;
        if (!f || fputs(txt, f) < 0) s = deft_set_error(DEFT_ERR_IO, "cannot write '%s'", path);
        if (f && fclose(f) && !s) s = deft_set_error(DEFT_ERR_IO, "cannot write '%s'", path);
        free(txt);
        if (!s)
            fprintf(out, "manifest: %s\nno TFRecords: deft reads these images and labels directly. In the training "
                    "spec, data_sources { tfrecords_path: \"%s*\" } (a glob of this folder, as TAO's) finds it; "
                    "validation_fold: 0 is the validation fold.\n", path, cv->prefix);
    }
    if (s) /* nothing half-written stays */
        for (int i = 0; i < cv->p; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s-fold-%03d-of-%03d.txt", cv->prefix, i, cv->p);
            unlink(path);
        }
    cJSON_Delete(man);
    cJSON_Delete(folds);
    cJSON_Delete(sizes);
    deft_free(ai);
    deft_free(al);
    return s;
}

enum deft_status dnv2_dataset_convert(const struct deft_task_args *a) {
    const char *spec = deft_task_arg(a, "--dataset_export_spec");
    if (!spec) spec = a->spec;
    if (!spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "dataset_convert: give the conversion spec with -d SPEC");
    if (!a->output_file || !*a->output_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "dataset_convert: give the output prefix with -o PREFIX (e.g. "
                              "data/tfrecords/kitti_trainval/kitti_trainval)");
    struct deft_dnv2_convert_config c;
    enum deft_status s = deft_dnv2_convert_config_load(spec, a->overrides, a->n_overrides, &c);
    if (s) return s;
    FILE *out = a->out ? a->out : stdout;
    struct convert *cv = deft_calloc(1, sizeof *cv);
    if (!cv) {
        deft_dnv2_convert_config_free(&c);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    const struct deft_dnv2_kitti_config *k = cv->k = &c.kitti_config;
    cv->p = !strcmp(k->partition_mode, "random") ? 2 : k->num_partitions;
    snprintf(cv->images, sizeof cv->images, "%s/%s", k->root_directory_path, k->image_dir_name);
    snprintf(cv->labels, sizeof cv->labels, "%s/%s", k->root_directory_path, k->label_dir_name);
    snprintf(cv->ext, sizeof cv->ext, "%s%s", k->image_extension[0] == '.' ? "" : ".", k->image_extension);
    snprintf(cv->prefix, sizeof cv->prefix, "%s", a->output_file);
    struct stat st;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", cv->prefix);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (stat(cv->images, &st) || !S_ISDIR(st.st_mode))
        s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: kitti_config: image folder '%s' (root_directory_path + "
                           "image_dir_name) does not exist", c.source_path, cv->images);
    else if (stat(cv->labels, &st) || !S_ISDIR(st.st_mode))
        s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: kitti_config: label folder '%s' (root_directory_path + "
                           "label_dir_name) does not exist", c.source_path, cv->labels);
    else if (*dir && (stat(dir, &st) || !S_ISDIR(st.st_mode)))
        s = deft_set_error(DEFT_ERR_NOT_FOUND, "-o %s: folder '%s' does not exist (create it first, as for TAO)",
                           cv->prefix, dir);
    if (!s && a->dry_run) {
        fprintf(out, "dataset_convert %s: images %s, labels %s, partition %s into %d folds (dry run: nothing "
                "written)\n", spec, cv->images, cv->labels, k->partition_mode, cv->p);
    } else if (!s) {
        fprintf(out, "dataset_convert %s: images %s, labels %s, %s partition into %d folds%s\n", spec, cv->images,
                cv->labels, k->partition_mode, cv->p, k->num_shards ? " (num_shards: no TFRecords shards in deft)" : "");
        s = partition(cv);
        if (!s) s = write_outputs(cv, out);
    }
    for (int i = 0; i < cv->p && i < 1000; i++) {
        strv_free(&cv->folds[i]);
        deft_free(cv->lists[i]);
    }
    deft_free(cv);
    deft_dnv2_convert_config_free(&c);
    return s;
}

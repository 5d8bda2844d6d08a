/* det_coco.c - COCO detection JSON (src/data): "images" {id, file_name,
 * width, height}, "annotations" {image_id, category_id, bbox [x, y, w, h],
 * iscrowd}, "categories" {id, name}. cJSON keeps no line numbers, so a
 * problem is located by its array index ("annotations[12]"); the raw box's
 * line is that index + 1. iscrowd marks the box difficult. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "data/det_impl.h"

struct id_index {
    double id;
    int index;
};

static int cmp_id(const void *a, const void *b) {
    double x = ((const struct id_index *)a)->id, y = ((const struct id_index *)b)->id;
    return x < y ? -1 : x > y;
}

static int find_id(const struct id_index *v, int n, double id) {
    struct id_index key = {id, 0};
    const struct id_index *p = n ? bsearch(&key, v, (size_t)n, sizeof *v, cmp_id) : NULL;
    return p ? p->index : -1;
}

static bool get_int(const cJSON *o, const char *key, double *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble != floor(j->valuedouble) ||
        fabs(j->valuedouble) > 9007199254740992.0)
        return false;
    *out = j->valuedouble;
    return true;
}

/* Image size field: absent or null -> 0 (probed later); else a positive int. */
static bool get_size(const cJSON *o, const char *key, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = 0;
    if (!j || cJSON_IsNull(j)) return true;
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0 && j->valuedouble <= 1e6) ||
        j->valuedouble != floor(j->valuedouble))
        return false;
    *out = (int)j->valuedouble;
    return true;
}

struct coco_ctx {
    struct det_raw *r;
    const char *path;
    struct id_index *img_ids, *cat_ids;
    int n_img, n_cat;
    const char **cat_names;
    int *raw_of; /* images[] index -> r->img index, -1 when not kept */
};

/* Sort the ids once; a repeated id is malformed (the later entry is dropped). */
static enum deft_status sort_ids(struct coco_ctx *c, struct id_index *v, int *n, const char *what) {
    if (*n > 1) qsort(v, (size_t)*n, sizeof *v, cmp_id);
    int k = 0;
    for (int i = 0; i < *n; i++) {
        if (k && v[k - 1].id == v[i].id) {
            enum deft_status st = det_bad(c->r, c->path, 0, "%s: id %.0f appears twice", what, v[i].id);
            if (st) return st;
            continue;
        }
        v[k++] = v[i];
    }
    *n = k;
    return DEFT_OK;
}

static enum deft_status read_categories(struct coco_ctx *c, const cJSON *cats) {
    int n = cJSON_GetArraySize(cats);
    c->cat_ids = deft_malloc(((size_t)n + 1) * sizeof *c->cat_ids);
    c->cat_names = deft_malloc(((size_t)n + 1) * sizeof *c->cat_names);
    if (!c->cat_ids || !c->cat_names) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cats) {
        double id;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        enum deft_status st = DEFT_OK;
        if (!get_int(e, "id", &id))
            st = det_bad(c->r, c->path, 0, "categories[%d]: no integer \"id\"", i);
        else if (!cJSON_IsString(nm) || !nm->valuestring[0])
            st = det_bad(c->r, c->path, 0, "categories[%d]: no \"name\" string", i);
        else {
            c->cat_names[c->n_cat] = nm->valuestring;
            c->cat_ids[c->n_cat] = (struct id_index){id, c->n_cat};
            c->n_cat++;
        }
        if (st) return st;
        i++;
    }
    return sort_ids(c, c->cat_ids, &c->n_cat, "categories");
}

static enum deft_status add_image(struct coco_ctx *c, const cJSON *e, int i,
                                  const char *images_dir, bool (*keep)(const char *, void *),
                                  void *user) {
    double id;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(e, "file_name");
    int w, h;
    if (!get_int(e, "id", &id)) return det_bad(c->r, c->path, 0, "images[%d]: no integer \"id\"", i);
    if (!cJSON_IsString(fn) || !fn->valuestring[0])
        return det_bad(c->r, c->path, 0, "images[%d]: no \"file_name\" string", i);
    if (!get_size(e, "width", &w) || !get_size(e, "height", &h))
        return det_bad(c->r, c->path, 0, "images[%d]: width/height must be integers in [0, 1e6]", i);
    char *stem = det_stem(fn->valuestring);
    if (!stem) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (keep && !keep(stem, user)) {
        deft_free(stem);
        c->img_ids[c->n_img++] = (struct id_index){id, i};
        return DEFT_OK;
    }
    struct det_rimage *im = det_raw_add(c->r);
    if (!im) {
        deft_free(stem);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    im->stem = stem;
    im->image = images_dir ? det_join(images_dir, fn->valuestring) : deft_strdup(fn->valuestring);
    im->label = deft_strdup(c->path);
    im->width = w;
    im->height = h;
    if (!im->image || !im->label) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    c->raw_of[i] = c->r->n - 1;
    c->img_ids[c->n_img++] = (struct id_index){id, i};
    return DEFT_OK;
}

static enum deft_status add_annotation(struct coco_ctx *c, const cJSON *e, int i) {
    double img_id, cat_id, v[4];
    if (!get_int(e, "image_id", &img_id))
        return det_bad(c->r, c->path, i + 1, "annotations[%d]: no integer \"image_id\"", i);
    if (!get_int(e, "category_id", &cat_id))
        return det_bad(c->r, c->path, i + 1, "annotations[%d]: no integer \"category_id\"", i);
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(e, "bbox");
    if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4)
        return det_bad(c->r, c->path, i + 1, "annotations[%d]: \"bbox\" must be [x, y, w, h]", i);
    for (int k = 0; k < 4; k++) {
        const cJSON *x = cJSON_GetArrayItem(bb, k);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 1e9)
            return det_bad(c->r, c->path, i + 1, "annotations[%d]: bbox[%d] is not a number in "
                           "[-1e9, 1e9]", i, k);
        v[k] = x->valuedouble;
    }
    const cJSON *crowd = cJSON_GetObjectItemCaseSensitive(e, "iscrowd");
    if (crowd && !cJSON_IsNumber(crowd) && !cJSON_IsBool(crowd))
        return det_bad(c->r, c->path, i + 1, "annotations[%d]: \"iscrowd\" must be 0 or 1", i);
    bool difficult = crowd && (cJSON_IsTrue(crowd) || (cJSON_IsNumber(crowd) && crowd->valuedouble != 0));
    int ii = find_id(c->img_ids, c->n_img, img_id);
    if (ii < 0)
        return det_bad(c->r, c->path, i + 1, "annotations[%d]: image_id %.0f is not in \"images\"",
                       i, img_id);
    int ci = find_id(c->cat_ids, c->n_cat, cat_id);
    if (ci < 0)
        return det_bad(c->r, c->path, i + 1, "annotations[%d]: category_id %.0f is not in "
                       "\"categories\"", i, cat_id);
    if (c->raw_of[ii] < 0) return DEFT_OK; /* image not in the split */
    double xyxy[4] = {v[0], v[1], v[0] + v[2], v[1] + v[3]};
    const char *nm = c->cat_names[ci];
    return det_rimage_add_box(&c->r->img[c->raw_of[ii]], nm, strlen(nm), xyxy, difficult, 1.0f,
                              i + 1);
}

enum deft_status det_coco_parse(struct det_raw *r, const char *text, size_t len, const char *path,
                                const char *images_dir, bool (*keep)(const char *, void *),
                                void *user) {
    const char *at = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &at, false);
    if (!root) {
        int line = 1;
        if (at && at >= text && at <= text + len)
            for (const char *p = text; p < at; p++) line += *p == '\n';
        return det_bad(r, path, line, "not valid JSON");
    }
    struct coco_ctx c = {r, path, NULL, NULL, 0, 0, NULL, NULL};
    enum deft_status st = DEFT_OK;
    const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(root, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(root, "categories");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(imgs)) {
        st = det_bad(r, path, 0, "no \"images\" array: not a COCO detection file");
        goto done;
    }
    if (anns && !cJSON_IsArray(anns)) {
        st = det_bad(r, path, 0, "\"annotations\" is not an array");
        goto done;
    }
    if (cats && !cJSON_IsArray(cats)) {
        st = det_bad(r, path, 0, "\"categories\" is not an array");
        goto done;
    }
    int ni = cJSON_GetArraySize(imgs);
    c.img_ids = deft_malloc(((size_t)ni + 1) * sizeof *c.img_ids);
    c.raw_of = deft_malloc(((size_t)ni + 1) * sizeof *c.raw_of);
    if (!c.img_ids || !c.raw_of) {
        st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (cats && (st = read_categories(&c, cats))) goto done;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, imgs) {
        c.raw_of[i] = -1;
        if ((st = add_image(&c, e, i, images_dir, keep, user))) goto done;
        i++;
    }
    if ((st = sort_ids(&c, c.img_ids, &c.n_img, "images"))) goto done;
    i = 0;
    if (anns) cJSON_ArrayForEach(e, anns) {
        if ((st = add_annotation(&c, e, i))) goto done;
        i++;
    }
done:
    deft_free(c.img_ids);
    deft_free(c.cat_ids);
    deft_free(c.cat_names);
    deft_free(c.raw_of);
    cJSON_Delete(root);
    return st;
}

/* ---- writing --------------------------------------------------------------- */

/* A float as the shortest decimal that reads back to it, as a JSON number. */
static double tidy(float v) {
    char b[32];
    det_fmt_float(b, sizeof b, v, false);
    return strtod(b, NULL);
}

/* w = x2 - x1 such that (float)(x1 + w) == x2 for the x1 the reader sees. */
static double extent(double x1, float x2) {
    double w = tidy((float)((double)x2 - x1));
    if ((float)(x1 + w) == x2) return w;
    return (double)x2 - x1; /* exact: both are short decimals of floats */
}

static cJSON *num(double v) { return cJSON_CreateNumber(v); }

static bool add_image_json(cJSON *images, const struct deft_det_sample *s, int id) {
    char stem[1024];
    const char *fn = s->image ? strrchr(s->image, '/') : NULL;
    fn = fn ? fn + 1 : s->image;
    if (!fn) {
        deft_det_sample_stem(s, stem, sizeof stem);
        size_t l = strlen(stem);
        if (l + 5 < sizeof stem) memcpy(stem + l, ".jpg", 5);
        fn = stem;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) return false;
    cJSON_AddItemToArray(images, o);
    return cJSON_AddItemToObject(o, "id", num(id)) &&
           cJSON_AddStringToObject(o, "file_name", fn) &&
           cJSON_AddItemToObject(o, "width", num(s->width)) &&
           cJSON_AddItemToObject(o, "height", num(s->height));
}

static bool add_box_json(cJSON *anns, const struct deft_box *b, int id, int image_id) {
    cJSON *o = cJSON_CreateObject(), *bb = cJSON_CreateArray();
    if (!o || !bb) {
        cJSON_Delete(o);
        cJSON_Delete(bb);
        return false;
    }
    cJSON_AddItemToArray(anns, o);
    cJSON_AddItemToObject(o, "bbox", bb);
    double x = tidy(b->x1), y = tidy(b->y1);
    double w = extent(x, b->x2), h = extent(y, b->y2);
    cJSON_AddItemToArray(bb, num(x));
    cJSON_AddItemToArray(bb, num(y));
    cJSON_AddItemToArray(bb, num(w));
    cJSON_AddItemToArray(bb, num(h));
    return cJSON_GetArraySize(bb) == 4 && cJSON_AddItemToObject(o, "id", num(id)) &&
           cJSON_AddItemToObject(o, "image_id", num(image_id)) &&
           cJSON_AddItemToObject(o, "category_id", num(b->cls + 1)) &&
           cJSON_AddItemToObject(o, "area", num(w * h)) &&
           cJSON_AddItemToObject(o, "iscrowd", num(b->difficult ? 1 : 0));
}

enum deft_status det_coco_write(const struct deft_det_dataset *d, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON *images = cJSON_AddArrayToObject(root, "images");
    cJSON *anns = cJSON_AddArrayToObject(root, "annotations");
    cJSON *cats = cJSON_AddArrayToObject(root, "categories");
    bool ok = root && images && anns && cats;
    int ann_id = 1;
    enum deft_status st = DEFT_OK;
    for (int i = 0; ok && i < d->n; i++) {
        const struct deft_det_sample *s = &d->samples[i];
        if (s->width <= 0 || s->height <= 0) {
            char stem[1024];
            st = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: image size unknown (COCO needs width "
                                "and height: give the image directory)",
                                deft_det_sample_stem(s, stem, sizeof stem));
            break;
        }
        ok = add_image_json(images, s, i + 1);
        for (int k = 0; ok && k < s->n_boxes; k++) {
            if (s->boxes[k].cls < 0 || s->boxes[k].cls >= d->n_classes) {
                st = deft_set_error(DEFT_ERR_INVALID_ARG, "sample %d: box class out of range", i);
                break;
            }
            ok = add_box_json(anns, &s->boxes[k], ann_id++, i + 1);
        }
        if (st) break;
    }
    for (int c = 0; ok && !st && c < d->n_classes; c++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(cats, o) && cJSON_AddItemToObject(o, "id", num(c + 1)) &&
             cJSON_AddStringToObject(o, "name", d->class_names[c]);
    }
    char *text = ok && !st ? cJSON_Print(root) : NULL;
    if (!st && !text) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory writing %s", path);
    if (!st) st = det_mkdirs_for(path);
    if (!st) st = deft_file_write_atomic(path, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(root);
    return st;
}

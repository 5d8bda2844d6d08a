/* det_dataset.c - detection datasets (src/data): sources (image directory,
 * label directory or COCO file, split list) into raw records, then TAO's
 * rules (class mapping, degenerate boxes, clipping, tiny boxes; see
 * deft/det_data.h) into a struct deft_det_dataset. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "deft/io.h"
#include "data/det_impl.h"

#define LABEL_MAX_BYTES ((size_t)64 << 20)
#define COCO_MAX_BYTES ((size_t)2 << 30)

void deft_det_read_opts_init(struct deft_det_read_opts *o) {
    memset(o, 0, sizeof *o);
    o->probe_sizes = true;
}

enum deft_status deft_det_format_parse(const char *name, enum deft_det_format *out) {
    for (int f = 0; f < DEFT_DET_FORMAT_COUNT; f++)
        if (name && !strcasecmp(name, deft_det_format_name((enum deft_det_format)f))) {
            *out = (enum deft_det_format)f;
            return DEFT_OK;
        }
    return deft_set_error(DEFT_ERR_INVALID_ARG, "unknown dataset format '%s' (kitti, coco or voc)",
                          name ? name : "");
}

const char *deft_det_format_name(enum deft_det_format f) {
    switch (f) {
    case DEFT_DET_KITTI: return "kitti";
    case DEFT_DET_COCO: return "coco";
    case DEFT_DET_VOC: return "voc";
    default: return "?";
    }
}

const char *deft_det_sample_stem(const struct deft_det_sample *s, char *buf, size_t cap) {
    const char *p = s->image ? s->image : s->label ? s->label : "unnamed";
    const char *b = strrchr(p, '/');
    b = b ? b + 1 : p;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    if (cap == 0) return buf;
    if (n >= cap) n = cap - 1;
    memcpy(buf, b, n);
    buf[n] = 0;
    return buf;
}

void deft_det_dataset_free(struct deft_det_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n_classes; i++) deft_free(d->class_names[i]);
    deft_free(d->class_names);
    for (int i = 0; i < d->n; i++) {
        deft_free(d->samples[i].image);
        deft_free(d->samples[i].label);
        deft_free(d->samples[i].boxes);
    }
    deft_free(d->samples);
    memset(d, 0, sizeof *d);
}

/* ---- sources ----------------------------------------------------------------- */

enum deft_status det_parse_label_file(struct det_raw *r, struct det_rimage *im,
                                      enum deft_det_format f) {
    void *buf;
    size_t len;
    enum deft_status st = deft_file_read(im->label, LABEL_MAX_BYTES, &buf, &len);
    if (st) return r->rep ? det_bad(r, im->label, 0, "%s", deft_last_error()) : st;
    st = f == DEFT_DET_KITTI ? det_kitti_parse(r, im, buf, len, im->label)
                             : det_voc_parse(r, im, buf, len, im->label);
    deft_free(buf);
    return st;
}

/* One sample of a per-file format (KITTI, VOC): stem, image, label. */
static enum deft_status add_file_sample(struct det_raw *r, const struct deft_det_source *s,
                                        const char *stem, char *image, const char *suffix) {
    struct det_rimage *im = det_raw_add(r);
    if (!im) {
        deft_free(image);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    im->image = image;
    im->stem = deft_strdup(stem);
    size_t l = strlen(stem) + strlen(suffix) + 1;
    char *name = deft_malloc(l);
    if (!name || !im->stem) {
        deft_free(name);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    snprintf(name, l, "%s%s", stem, suffix);
    im->label = det_join(s->labels, name);
    deft_free(name);
    if (!im->label) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!det_is_file(im->label)) {
        deft_free(im->label);
        im->label = NULL; /* a background image */
    }
    return DEFT_OK;
}

static enum deft_status list_file_samples(struct det_raw *r, const struct deft_det_source *s,
                                          const struct deft_det_read_opts *o, const char *suffix) {
    enum deft_status st = DEFT_OK;
    if (s->split) {
        char **stems;
        int *lines, n;
        if ((st = det_read_split(s->split, &stems, &lines, &n))) return st;
        for (int i = 0; !st && i < n; i++) {
            char *image = s->images ? det_find_image(s->images, stems[i], o->image_extension) : NULL;
            if (s->images && !image)
                st = deft_set_error(DEFT_ERR_NOT_FOUND, "%s:%d: no image '%s.%s' in %s (check the "
                                    "list, the image directory or image_extension)", s->split,
                                    lines[i], stems[i], o->image_extension ? o->image_extension
                                    : "{jpg,jpeg,png,bmp}", s->images);
            else
                st = add_file_sample(r, s, stems[i], image, suffix);
        }
        det_free_strings(stems, n);
        deft_free(lines);
        return st;
    }
    char **names;
    int n;
    const char *dir = s->images ? s->images : s->labels;
    if ((st = det_list(dir, s->images ? NULL : suffix, o->image_extension, &names, &n))) return st;
    for (int i = 0; !st && i < n; i++) {
        char *stem = det_stem(names[i]);
        char *image = s->images ? det_join(s->images, names[i]) : NULL;
        if (!stem || (s->images && !image)) {
            deft_free(stem);
            deft_free(image);
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            break;
        }
        st = add_file_sample(r, s, stem, image, suffix);
        deft_free(stem);
    }
    det_free_strings(names, n);
    return st;
}

struct split_set {
    char **stems;
    int n;
    bool *seen;
};

static bool in_split(const char *stem, void *user) {
    struct split_set *s = user;
    const char *key = stem;
    char **p = bsearch(&key, s->stems, (size_t)s->n, sizeof *s->stems, det_cmp_str);
    if (p) s->seen[p - s->stems] = true;
    return p != NULL;
}

static enum deft_status read_coco(struct det_raw *r, const struct deft_det_source *s) {
    struct split_set set = {0};
    int *lines = NULL;
    enum deft_status st = DEFT_OK;
    if (s->split) {
        if ((st = det_read_split(s->split, &set.stems, &lines, &set.n))) return st;
        set.seen = deft_calloc((size_t)set.n + 1, 1);
        if (!set.seen) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        /* sort stems with their line numbers kept aside for messages */
        if (!st && set.n > 1) qsort(set.stems, (size_t)set.n, sizeof *set.stems, det_cmp_str);
    }
    void *buf = NULL;
    size_t len = 0;
    if (!st) st = deft_file_read(s->labels, COCO_MAX_BYTES, &buf, &len);
    if (!st) st = det_coco_parse(r, buf, len, s->labels, s->images, s->split ? in_split : NULL, &set);
    for (int i = 0; !st && i < set.n; i++)
        if (!set.seen[i])
            st = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: image '%s' is not in %s", s->split,
                                set.stems[i], s->labels);
    deft_free(buf);
    det_free_strings(set.stems, set.n);
    deft_free(set.seen);
    deft_free(lines);
    return st;
}

enum deft_status det_read_source(const struct deft_det_source *s, const struct deft_det_read_opts *o,
                                 struct det_raw *r) {
    if (!s->labels)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "a detection source needs its labels "
                              "(label_directory_path, or the COCO .json file)");
    if (s->images && !det_is_dir(s->images))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "image directory %s does not exist", s->images);
    int first = r->n;
    enum deft_status st;
    if (s->format == DEFT_DET_COCO) {
        if (!det_is_file(s->labels))
            return deft_set_error(DEFT_ERR_NOT_FOUND, "COCO annotation file %s does not exist",
                                  s->labels);
        st = read_coco(r, s);
    } else if (s->format == DEFT_DET_KITTI || s->format == DEFT_DET_VOC) {
        if (!det_is_dir(s->labels))
            return deft_set_error(DEFT_ERR_NOT_FOUND, "label directory %s does not exist",
                                  s->labels);
        st = list_file_samples(r, s, o, s->format == DEFT_DET_KITTI ? ".txt" : ".xml");
        for (int i = first; !st && i < r->n; i++)
            if (r->img[i].label) st = det_parse_label_file(r, &r->img[i], s->format);
    } else {
        return deft_set_error(DEFT_ERR_INVALID_ARG, "unknown dataset format %d", (int)s->format);
    }
    int unreadable = 0;
    for (int i = first; !st && o->probe_sizes && i < r->n; i++) {
        struct det_rimage *im = &r->img[i];
        if ((im->width > 0 && im->height > 0) || !im->image || !det_is_file(im->image)) continue;
        if (!det_probe(im->image, &im->width, &im->height)) unreadable++;
    }
    if (unreadable)
        deft_log(DEFT_LOG_WARN, "%s: %d image%s whose size could not be read from the header: "
                 "their boxes are not clipped", s->labels, unreadable, unreadable > 1 ? "s" : "");
    return st;
}

/* ---- TAO's rules ----------------------------------------------------------------- */

static char *lower_dup(const char *s) {
    char *d = deft_strdup(s);
    if (d)
        for (char *p = d; *p; p++) *p = (char)tolower((unsigned char)*p);
    return d;
}

/* Sorted unique copies of the strings v[0..n) (v itself is left as it is). */
static enum deft_status unique_sorted(char *const *v, int n, char ***out, int *m) {
    char **t = deft_malloc(((size_t)n + 1) * sizeof *t);
    *out = deft_calloc((size_t)n + 1, sizeof **out);
    *m = 0;
    if (!t || !*out) {
        deft_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    if (n) memcpy(t, v, (size_t)n * sizeof *t);
    if (n > 1) qsort(t, (size_t)n, sizeof *t, det_cmp_str);
    enum deft_status st = DEFT_OK;
    for (int i = 0; i < n; i++) {
        if (*m && !strcmp((*out)[*m - 1], t[i])) continue;
        if (!((*out)[*m] = deft_strdup(t[i]))) {
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            break;
        }
        (*m)++;
    }
    deft_free(t);
    return st;
}

static int find_str(char *const *v, int n, const char *key) {
    char *const *p = n ? bsearch(&key, v, (size_t)n, sizeof *v, det_cmp_str) : NULL;
    return p ? (int)(p - v) : -1;
}

struct classing {
    char **spell;  /* unique names as written (sorted) */
    int n_spell;
    int *cls;      /* spelling -> class index, -1 unmapped */
    int64_t *unmapped;
};

static enum deft_status mapping_classes(const struct deft_det_read_opts *o,
                                        struct deft_det_dataset *out) {
    char **t = deft_calloc((size_t)o->n_mapping + 1, sizeof *t);
    enum deft_status st = t ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < o->n_mapping; i++) {
        const struct deft_det_class_map *m = &o->mapping[i];
        if (!m->source || !m->target || !m->source[0] || !m->target[0])
            st = deft_set_error(DEFT_ERR_INVALID_ARG, "target_class_mapping entry %d has an empty "
                                "name", i + 1);
        for (int j = 0; !st && j < i; j++)
            if (!strcasecmp(o->mapping[j].source, m->source) &&
                strcasecmp(o->mapping[j].target, m->target))
                st = deft_set_error(DEFT_ERR_INVALID_ARG, "target_class_mapping maps '%s' to both "
                                    "'%s' and '%s'", m->source, o->mapping[j].target, m->target);
        if (!st && !(t[i] = lower_dup(m->target))) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    if (!st) st = unique_sorted(t, o->n_mapping, &out->class_names, &out->n_classes);
    for (int i = 0; t && i < o->n_mapping; i++) deft_free(t[i]);
    deft_free(t);
    return st;
}

/* Spellings found, the class list, and which class each spelling is. */
static enum deft_status make_classes(const struct det_raw *r, const struct deft_det_read_opts *o,
                                     struct classing *c, struct deft_det_dataset *out) {
    int64_t total = 0;
    for (int i = 0; i < r->n; i++) total += r->img[i].n;
    if (total > (1 << 30)) return deft_set_error(DEFT_ERR_INVALID_ARG, "more than 2^30 boxes");
    char **all = deft_malloc(((size_t)total + 1) * sizeof *all);
    if (!all) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < r->n; i++)
        for (int j = 0; j < r->img[i].n; j++) all[k++] = r->img[i].boxes[j].name;
    enum deft_status st = unique_sorted(all, k, &c->spell, &c->n_spell);
    deft_free(all);
    if (st) return st;
    c->cls = deft_malloc(((size_t)c->n_spell + 1) * sizeof *c->cls);
    c->unmapped = deft_calloc((size_t)c->n_spell + 1, sizeof *c->unmapped);
    char **keys = deft_calloc((size_t)c->n_spell + 1, sizeof *keys);
    if (!c->cls || !c->unmapped || !keys) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < c->n_spell; i++)
        if (!(keys[i] = o->raw ? deft_strdup(c->spell[i]) : lower_dup(c->spell[i])))
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    bool mapped = o->n_mapping > 0 && !o->raw;
    if (!st)
        st = mapped ? mapping_classes(o, out)
                    : unique_sorted(keys, c->n_spell, &out->class_names, &out->n_classes);
    for (int i = 0; !st && i < c->n_spell; i++) {
        const char *key = keys[i];
        c->cls[i] = -1;
        if (!mapped) {
            c->cls[i] = find_str(out->class_names, out->n_classes, key);
            continue;
        }
        for (int m = 0; m < o->n_mapping; m++)
            if (!strcasecmp(o->mapping[m].source, key)) {
                char *tl = lower_dup(o->mapping[m].target);
                if (!tl) {
                    st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                    break;
                }
                c->cls[i] = find_str(out->class_names, out->n_classes, tl);
                deft_free(tl);
                break;
            }
    }
    for (int i = 0; keys && i < c->n_spell; i++) deft_free(keys[i]);
    deft_free(keys);
    return st;
}

/* TAO's trap: names that differ only in case merge into one class; say so. */
static void warn_case(const struct classing *c) {
    for (int i = 0; i < c->n_spell; i++)
        for (int j = i + 1; j < c->n_spell && j < i + 64; j++)
            if (!strcasecmp(c->spell[i], c->spell[j]))
                deft_log(DEFT_LOG_WARN, "class names '%s' and '%s' differ only in case: both are "
                         "read as one class, lower-cased (check the labels; TAO's 0-mAP trap)",
                         c->spell[i], c->spell[j]);
}

static void warn_unmapped(const struct classing *c, int64_t total) {
    if (!total) return;
    char list[512] = "";
    size_t p = 0;
    for (int i = 0; i < c->n_spell && p < sizeof list - 64; i++)
        if (c->unmapped[i])
            p += (size_t)snprintf(list + p, sizeof list - p, "%s'%s' (%lld)", p ? ", " : "",
                                  c->spell[i], (long long)c->unmapped[i]);
    deft_log(DEFT_LOG_WARN, "%lld box%s of classes not in target_class_mapping skipped: %s",
             (long long)total, total > 1 ? "es" : "", list);
}

/* One raw box through the rules; false when dropped. */
static bool apply_rules(const struct det_rimage *im, const struct det_rbox *rb, struct deft_box *b,
                        struct deft_det_read_stats *stats) {
    double x1 = rb->x1, y1 = rb->y1, x2 = rb->x2, y2 = rb->y2;
    if (trunc(x1) >= trunc(x2) || trunc(y1) >= trunc(y2)) {
        stats->dropped_small++;
        return false;
    }
    if (im->width > 0 && im->height > 0) {
        double W = im->width, H = im->height;
        double c1 = fmin(fmax(x1, 0), W), c2 = fmin(fmax(x2, 0), W);
        double d1 = fmin(fmax(y1, 0), H), d2 = fmin(fmax(y2, 0), H);
        if (c1 != x1 || c2 != x2 || d1 != y1 || d2 != y2) stats->clipped++;
        x1 = c1, x2 = c2, y1 = d1, y2 = d2;
        if ((x2 - x1) / W <= 1e-3 || (y2 - y1) / H <= 1e-3) {
            stats->dropped_small++;
            return false;
        }
    }
    b->x1 = (float)x1, b->y1 = (float)y1, b->x2 = (float)x2, b->y2 = (float)y2;
    if (b->x1 >= b->x2 || b->y1 >= b->y2) { /* distinct doubles, one float (huge values) */
        stats->dropped_small++;
        return false;
    }
    return true;
}

static enum deft_status build(struct det_raw *r, const struct deft_det_read_opts *o,
                              struct deft_det_dataset *out) {
    struct classing c = {0};
    enum deft_status st = make_classes(r, o, &c, out);
    if (!st && !o->raw) warn_case(&c);
    if (!st) {
        out->samples = deft_calloc((size_t)r->n + 1, sizeof *out->samples);
        if (!out->samples) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    struct deft_det_read_stats *stats = &out->stats;
    for (int i = 0; !st && i < r->n; i++) {
        struct det_rimage *im = &r->img[i];
        struct deft_det_sample *s = &out->samples[out->n++];
        s->image = im->image, s->label = im->label; /* moved */
        im->image = im->label = NULL;
        s->width = im->width, s->height = im->height;
        s->boxes = deft_malloc(((size_t)im->n + 1) * sizeof *s->boxes);
        if (!s->boxes) {
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            break;
        }
        stats->images++;
        if (!s->label) stats->background_images++;
        for (int j = 0; j < im->n; j++) {
            const struct det_rbox *rb = &im->boxes[j];
            int sp = find_str(c.spell, c.n_spell, rb->name);
            int cls = sp >= 0 ? c.cls[sp] : -1;
            if (cls < 0) {
                stats->unmapped++;
                if (sp >= 0) c.unmapped[sp]++;
                continue;
            }
            struct deft_box b = {rb->x1, rb->y1, rb->x2, rb->y2, cls, rb->difficult, rb->score};
            if (!o->raw && !apply_rules(im, rb, &b, stats)) continue;
            s->boxes[s->n_boxes++] = b;
            stats->boxes++;
            stats->difficult += b.difficult;
        }
    }
    stats->bad_lines += r->bad_lines;
    if (!st) warn_unmapped(&c, stats->unmapped);
    det_free_strings(c.spell, c.n_spell);
    deft_free(c.cls);
    deft_free(c.unmapped);
    return st;
}

enum deft_status deft_det_read(const struct deft_det_source *src, int n,
                               const struct deft_det_read_opts *o, struct deft_det_dataset *out) {
    memset(out, 0, sizeof *out);
    struct deft_det_read_opts def;
    if (!o) {
        deft_det_read_opts_init(&def);
        o = &def;
    }
    if (!src || n <= 0) return deft_set_error(DEFT_ERR_INVALID_ARG, "no detection data source");
    struct det_raw r = {.skip_bad = o->skip_bad_lines, .with_score = o->with_score};
    enum deft_status st = DEFT_OK;
    for (int i = 0; !st && i < n; i++) st = det_read_source(&src[i], o, &r);
    if (!st) st = build(&r, o, out);
    det_raw_free(&r);
    return st;
}

enum deft_status deft_det_parse(enum deft_det_format f, const char *text, size_t len,
                                const char *name, const struct deft_det_read_opts *o,
                                struct deft_det_dataset *out) {
    memset(out, 0, sizeof *out);
    struct deft_det_read_opts def;
    if (!o) {
        deft_det_read_opts_init(&def);
        o = &def;
    }
    if (!name) name = "labels";
    struct det_raw r = {.skip_bad = o->skip_bad_lines, .with_score = o->with_score};
    enum deft_status st = DEFT_OK;
    if (f == DEFT_DET_COCO) {
        st = det_coco_parse(&r, text, len, name, NULL, NULL, NULL);
    } else if (f == DEFT_DET_KITTI || f == DEFT_DET_VOC) {
        struct det_rimage *im = det_raw_add(&r);
        if (!im || !(im->label = deft_strdup(name)) || !(im->stem = det_stem(name)))
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        else
            st = f == DEFT_DET_KITTI ? det_kitti_parse(&r, im, text, len, name)
                                     : det_voc_parse(&r, im, text, len, name);
    } else {
        st = deft_set_error(DEFT_ERR_INVALID_ARG, "unknown dataset format %d", (int)f);
    }
    if (!st) st = build(&r, o, out);
    det_raw_free(&r);
    return st;
}

enum deft_status deft_det_write(enum deft_det_format f, const struct deft_det_dataset *d,
                                const char *dst) {
    if (!d || !dst) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_det_write: NULL argument");
    switch (f) {
    case DEFT_DET_KITTI: return det_kitti_write(d, dst);
    case DEFT_DET_COCO: return det_coco_write(d, dst);
    case DEFT_DET_VOC: return det_voc_write(d, dst);
    default: return deft_set_error(DEFT_ERR_INVALID_ARG, "unknown dataset format %d", (int)f);
    }
}

/* det_validate.c - `deft detection dataset_validate` (src/data): reads a
 * KITTI / VOC / COCO dataset without applying any rule and reports what
 * would hurt training or scoring, each finding at file:line: malformed
 * lines, zero-area boxes, boxes outside the image, boxes TAO's loader
 * drops, class names differing only in case, labels without images,
 * images without labels, declared sizes that disagree with the image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "deft/report.h"
#include "data/det_impl.h"

struct first_seen {
    const char *file; /* owned by the raw records, valid while validating */
    int line;
};

struct vctx {
    struct deft_det_report *rep;
    struct det_raw r;
    int cap_classes;
    struct first_seen *first;
    int last; /* class index of the previous box (names repeat) */
};

static enum deft_status nomem(void) { return deft_set_error(DEFT_ERR_NOMEM, "out of memory validating"); }

/* ---- enumerating the files --------------------------------------------------- */

static enum deft_status add_sample(struct vctx *v, const char *stem, char *image, char *label) {
    struct det_rimage *im = det_raw_add(&v->r);
    if (!im) {
        deft_free(image);
        deft_free(label);
        return nomem();
    }
    im->stem = deft_strdup(stem);
    im->image = image;
    im->label = label;
    return im->stem ? DEFT_OK : nomem();
}

static char *label_path(const char *dir, const char *stem, const char *suffix) {
    char name[1100];
    snprintf(name, sizeof name, "%s%s", stem, suffix);
    return det_join(dir, name);
}

static enum deft_status enum_split(struct vctx *v, const struct deft_det_source *s,
                                   const char *suffix) {
    char **stems;
    int *lines, n;
    enum deft_status st = det_read_split(s->split, &stems, &lines, &n);
    for (int i = 0; !st && i < n; i++) {
        char *label = label_path(s->labels, stems[i], suffix);
        char *image = s->images ? det_find_image(s->images, stems[i], NULL) : NULL;
        if (!label) {
            deft_free(image);
            st = nomem();
            break;
        }
        bool has_label = det_is_file(label);
        if (!has_label && s->images && !image)
            st = det_finding(v->rep, DEFT_DET_ERROR, "missing", s->split, lines[i],
                             "'%s' has neither a label file nor an image", stems[i]);
        else if (!has_label)
            st = det_finding(v->rep, DEFT_DET_NOTE, "image_without_label", s->split, lines[i],
                             "'%s' has no label file (a background image)", stems[i]);
        else if (s->images && !image)
            st = det_finding(v->rep, DEFT_DET_WARNING, "label_without_image", s->split, lines[i],
                             "'%s' has no image in %s", stems[i], s->images);
        if (!has_label) {
            deft_free(label);
            label = NULL;
        }
        if (!st) st = add_sample(v, stems[i], image, label);
        else {
            deft_free(image);
            deft_free(label);
        }
    }
    det_free_strings(stems, n);
    deft_free(lines);
    return st;
}

static enum deft_status enum_dirs(struct vctx *v, const struct deft_det_source *s,
                                  const char *suffix) {
    char **labels = NULL, **images = NULL;
    int nl = 0, ni = 0;
    enum deft_status st = det_list(s->labels, suffix, NULL, &labels, &nl);
    if (!st && s->images) st = det_list(s->images, NULL, NULL, &images, &ni);
    v->rep->n_label_files = nl;
    for (int i = 0; !st && i < nl; i++) {
        char *stem = det_stem(labels[i]);
        char *label = det_join(s->labels, labels[i]);
        char *image = stem && s->images ? det_find_image(s->images, stem, NULL) : NULL;
        if (!stem || !label) {
            deft_free(stem);
            deft_free(label);
            deft_free(image);
            st = nomem();
            break;
        }
        if (s->images && !image)
            st = det_finding(v->rep, DEFT_DET_WARNING, "label_without_image", label, 0,
                             "no image '%s.*' in %s", stem, s->images);
        if (!st) st = add_sample(v, stem, image, label);
        else {
            deft_free(image);
            deft_free(label);
        }
        deft_free(stem);
    }
    for (int i = 0; !st && i < ni; i++) {
        char *stem = det_stem(images[i]);
        char *label = stem ? label_path(s->labels, stem, suffix) : NULL;
        char *image = det_join(s->images, images[i]);
        if (!stem || !label || !image) st = nomem();
        else if (!det_is_file(label)) {
            st = det_finding(v->rep, DEFT_DET_NOTE, "image_without_label", image, 0,
                             "no label file %s (a background image)", label);
            if (!st) {
                st = add_sample(v, stem, image, NULL);
                image = NULL;
            }
        }
        deft_free(stem);
        deft_free(label);
        deft_free(image);
    }
    det_free_strings(labels, nl);
    det_free_strings(images, ni);
    return st;
}

static enum deft_status enum_coco(struct vctx *v, const struct deft_det_source *s) {
    void *buf;
    size_t len;
    enum deft_status st = deft_file_read(s->labels, (size_t)2 << 30, &buf, &len);
    if (st) return st;
    v->rep->n_label_files = 1;
    st = det_coco_parse(&v->r, buf, len, s->labels, s->images, NULL, NULL);
    deft_free(buf);
    for (int i = 0; !st && i < v->r.n; i++) {
        struct det_rimage *im = &v->r.img[i];
        if (s->images && !det_is_file(im->image))
            st = det_finding(v->rep, DEFT_DET_WARNING, "label_without_image", s->labels, 0,
                             "images[%d] '%s' does not exist", i, im->image);
        else if (!im->n)
            st = det_finding(v->rep, DEFT_DET_NOTE, "image_without_label", s->labels, 0,
                             "images[%d] '%s' has no annotation (a background image)", i,
                             im->image);
    }
    if (st || !s->images) return st;
    /* images on disk that the file does not list */
    char **names, **stems;
    int n;
    if ((st = det_list(s->images, NULL, NULL, &names, &n))) return st;
    stems = deft_calloc((size_t)v->r.n + 1, sizeof *stems);
    if (!stems) st = nomem();
    for (int i = 0; !st && i < v->r.n; i++) stems[i] = v->r.img[i].stem;
    if (!st && v->r.n > 1) qsort(stems, (size_t)v->r.n, sizeof *stems, det_cmp_str);
    for (int i = 0; !st && i < n; i++) {
        char *stem = det_stem(names[i]);
        if (!stem) st = nomem();
        else if (!bsearch(&stem, stems, (size_t)v->r.n, sizeof *stems, det_cmp_str))
            st = det_finding(v->rep, DEFT_DET_NOTE, "image_without_label", s->labels, 0,
                             "image %s/%s is not in the file", s->images, names[i]);
        deft_free(stem);
    }
    deft_free(stems);
    det_free_strings(names, n);
    return st;
}

/* ---- per box ------------------------------------------------------------------- */

static int class_of(struct vctx *v, const struct det_rbox *b, const char *file) {
    struct deft_det_report *rep = v->rep;
    if (v->last >= 0 && !strcmp(rep->classes[v->last].name, b->name)) return v->last;
    for (int i = 0; i < rep->n_classes; i++)
        if (!strcmp(rep->classes[i].name, b->name)) return v->last = i;
    if (rep->n_classes == v->cap_classes) {
        int cap = v->cap_classes ? v->cap_classes * 2 : 16;
        struct deft_det_class_count *c = deft_realloc(rep->classes, (size_t)cap * sizeof *c);
        if (!c) return -1;
        rep->classes = c;
        struct first_seen *f = deft_realloc(v->first, (size_t)cap * sizeof *f);
        if (!f) return -1;
        v->first = f;
        v->cap_classes = cap;
    }
    struct deft_det_class_count *c = &rep->classes[rep->n_classes];
    memset(c, 0, sizeof *c);
    if (!(c->name = deft_strdup(b->name))) return -1;
    v->first[rep->n_classes] = (struct first_seen){file, b->line};
    return v->last = rep->n_classes++;
}

static int size_bin(double side) {
    int k = 0;
    for (double edge = 4; k < DEFT_DET_SIZE_BINS - 1 && side >= edge; edge *= 2) k++;
    return k;
}

static enum deft_status check_box(struct vctx *v, const struct det_rimage *im,
                                  const struct det_rbox *b) {
    struct deft_det_report *rep = v->rep;
    const char *f = im->label;
    int ci = class_of(v, b, f);
    if (ci < 0) return nomem();
    double w = b->x2 - b->x1, h = b->y2 - b->y1, area = w > 0 && h > 0 ? w * h : 0;
    struct deft_det_class_count *c = &rep->classes[ci];
    c->boxes++;
    c->difficult += b->difficult;
    c->size_hist[size_bin(sqrt(area))]++;
    rep->n_boxes++;
    if (area > 0) {
        if (area < 32 * 32) rep->coco_small++;
        else if (area < 96 * 96) rep->coco_medium++;
        else rep->coco_large++;
    }
    if (w <= 0 || h <= 0)
        return det_finding(rep, DEFT_DET_ERROR, "zero_area", f, b->line,
                           "'%s' box (%g, %g, %g, %g) has %s area", b->name, b->x1, b->y1, b->x2,
                           b->y2, w < 0 || h < 0 ? "negative" : "zero");
    int W = im->width, H = im->height;
    if (W > 0 && H > 0 && (b->x1 < 0 || b->y1 < 0 || b->x2 > W || b->y2 > H)) {
        enum deft_status st = det_finding(rep, DEFT_DET_WARNING, "outside_image", f, b->line,
                                          "'%s' box (%g, %g, %g, %g) leaves the %dx%d image "
                                          "(the reader clips it)", b->name, b->x1, b->y1, b->x2,
                                          b->y2, W, H);
        if (st) return st;
    }
    if (trunc(b->x1) >= trunc(b->x2) || trunc(b->y1) >= trunc(b->y2))
        return det_finding(rep, DEFT_DET_WARNING, "tao_drops", f, b->line,
                           "'%s' box (%g, %g, %g, %g): int(x1) >= int(x2) or int(y1) >= int(y2), "
                           "TAO's loader drops it", b->name, b->x1, b->y1, b->x2, b->y2);
    if (W > 0 && H > 0) {
        double cw = fmin(b->x2, W) - fmax(b->x1, 0), ch = fmin(b->y2, H) - fmax(b->y1, 0);
        if (cw / W <= 1e-3 || ch / H <= 1e-3)
            return det_finding(rep, DEFT_DET_WARNING, "tao_drops", f, b->line,
                               "'%s' box (%g, %g, %g, %g) is at most 0.1%% of the image wide or "
                               "high after clipping: dropped", b->name, b->x1, b->y1, b->x2, b->y2);
    }
    return DEFT_OK;
}

/* Image size: probed from the file; compared with what VOC/COCO declare. */
static enum deft_status check_image(struct vctx *v, struct det_rimage *im, enum deft_det_format f) {
    if (!im->image || !det_is_file(im->image)) return DEFT_OK;
    int w, h;
    if (!det_probe(im->image, &w, &h))
        return det_finding(v->rep, DEFT_DET_ERROR, "unreadable_image", im->image, 0,
                           "not a readable JPEG/PNG/BMP header");
    if (f != DEFT_DET_KITTI && im->width > 0 && (im->width != w || im->height != h)) {
        enum deft_status st =
            det_finding(v->rep, DEFT_DET_WARNING, "size_mismatch", im->label,
                        f == DEFT_DET_VOC ? im->size_line : 0,
                        "declared size %dx%d, but %s is %dx%d", im->width, im->height, im->image,
                        w, h);
        if (st) return st;
    }
    im->width = w;
    im->height = h;
    return DEFT_OK;
}

static int cmp_class(const void *a, const void *b) {
    return strcmp(((const struct deft_det_class_count *)a)->name,
                  ((const struct deft_det_class_count *)b)->name);
}

static enum deft_status check_case(struct vctx *v) {
    struct deft_det_report *rep = v->rep;
    for (int i = 0; i < rep->n_classes; i++)
        for (int j = i + 1; j < rep->n_classes; j++) {
            if (strcasecmp(rep->classes[i].name, rep->classes[j].name)) continue;
            enum deft_status st = det_finding(
                rep, DEFT_DET_ERROR, "case_clash", v->first[j].file, v->first[j].line,
                "class '%s' (%lld boxes) differs from '%s' (%lld boxes, first at %s:%d) only in "
                "case: TAO lower-cases names, so a target_class_mapping written with one spelling "
                "silently scores 0 AP; use one spelling", rep->classes[j].name,
                (long long)rep->classes[j].boxes, rep->classes[i].name,
                (long long)rep->classes[i].boxes, v->first[i].file, v->first[i].line);
            if (st) return st;
        }
    return DEFT_OK;
}

enum deft_status deft_det_validate(const struct deft_det_source *s, struct deft_det_report **out) {
    *out = NULL;
    if (!s || !s->labels) return deft_set_error(DEFT_ERR_INVALID_ARG, "dataset_validate: no labels");
    bool coco = s->format == DEFT_DET_COCO;
    if (coco ? !det_is_file(s->labels) : !det_is_dir(s->labels))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s %s does not exist", coco ? "COCO file"
                              : "label directory", s->labels);
    if (s->images && !det_is_dir(s->images))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "image directory %s does not exist", s->images);
    struct deft_det_report *rep = deft_calloc(1, sizeof *rep);
    if (!rep) return nomem();
    struct vctx v = {rep, {.skip_bad = true}, 0, NULL, -1};
    v.r.rep = rep;
    rep->format = s->format;
    rep->labels = deft_strdup(s->labels);
    rep->images = s->images ? deft_strdup(s->images) : NULL;
    enum deft_status st = rep->labels && (rep->images || !s->images) ? DEFT_OK : nomem();
    const char *suffix = s->format == DEFT_DET_KITTI ? ".txt" : ".xml";
    if (!st)
        st = coco ? enum_coco(&v, s) : s->split ? enum_split(&v, s, suffix) : enum_dirs(&v, s, suffix);
    if (!st && s->split && !coco) rep->n_label_files = 0;
    for (int i = 0; !st && i < v.r.n; i++) {
        struct det_rimage *im = &v.r.img[i];
        if (!coco && im->label) {
            if (s->split) rep->n_label_files++;
            st = det_parse_label_file(&v.r, im, s->format);
        }
        if (!st) st = check_image(&v, im, s->format);
        for (int k = 0; !st && k < im->n; k++) st = check_box(&v, im, &im->boxes[k]);
    }
    rep->n_images = v.r.n;
    if (!st) st = check_case(&v);
    if (!st && rep->n_classes > 1)
        qsort(rep->classes, (size_t)rep->n_classes, sizeof *rep->classes, cmp_class);
    deft_free(v.first);
    det_raw_free(&v.r);
    if (st) {
        deft_det_report_free(rep);
        return st;
    }
    *out = rep;
    return DEFT_OK;
}

void deft_det_report_free(struct deft_det_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_classes; i++) deft_free(r->classes[i].name);
    deft_free(r->classes);
    for (int i = 0; i < r->n_findings; i++) {
        deft_free(r->findings[i].file);
        deft_free(r->findings[i].message);
    }
    deft_free(r->findings);
    deft_free(r->labels);
    deft_free(r->images);
    deft_free(r);
}

/* ---- output ----------------------------------------------------------------------- */

static const char *const sev_name[3] = {"note", "warning", "error"};

static void bin_label(int k, char *b, size_t cap) {
    if (k == 0) snprintf(b, cap, "<4");
    else if (k == DEFT_DET_SIZE_BINS - 1) snprintf(b, cap, ">=%d", 2 << k);
    else snprintf(b, cap, "%d-%d", 2 << k, 4 << k);
}

void deft_det_report_print(const struct deft_det_report *r, FILE *f, int max_findings) {
    fprintf(f, "format %s, labels %s, images %s\n", deft_det_format_name(r->format), r->labels,
            r->images ? r->images : "(not given: sizes and existence of images not checked)");
    fprintf(f, "%lld images, %lld label files, %lld boxes, %d classes\n", (long long)r->n_images,
            (long long)r->n_label_files, (long long)r->n_boxes, r->n_classes);
    fprintf(f, "\n  %-24s %10s %10s\n", "class", "boxes", "difficult");
    for (int i = 0; i < r->n_classes; i++)
        fprintf(f, "  %-24s %10lld %10lld\n", r->classes[i].name, (long long)r->classes[i].boxes,
                (long long)r->classes[i].difficult);
    fprintf(f, "\n  boxes by size, sqrt(w*h) in pixels:\n  %-24s", "class");
    for (int k = 0; k < DEFT_DET_SIZE_BINS; k++) {
        char b[16];
        bin_label(k, b, sizeof b);
        fprintf(f, " %8s", b);
    }
    fputc('\n', f);
    for (int i = 0; i < r->n_classes; i++) {
        fprintf(f, "  %-24s", r->classes[i].name);
        for (int k = 0; k < DEFT_DET_SIZE_BINS; k++)
            fprintf(f, " %8lld", (long long)r->classes[i].size_hist[k]);
        fputc('\n', f);
    }
    fprintf(f, "  COCO areas: small (< 32^2) %lld, medium %lld, large (>= 96^2) %lld\n\n",
            (long long)r->coco_small, (long long)r->coco_medium, (long long)r->coco_large);
    fprintf(f, "findings: %lld errors, %lld warnings, %lld notes\n", (long long)r->by_severity[2],
            (long long)r->by_severity[1], (long long)r->by_severity[0]);
    /* errors first, then warnings, then notes */
    int shown = 0;
    for (int sev = DEFT_DET_ERROR; sev >= DEFT_DET_NOTE; sev--)
        for (int i = 0; i < r->n_findings; i++) {
            const struct deft_det_finding *x = &r->findings[i];
            if ((int)x->severity != sev) continue;
            if (max_findings >= 0 && shown >= max_findings) continue;
            shown++;
            if (x->line > 0)
                fprintf(f, "  %s: %s:%d: %s [%s]\n", sev_name[sev], x->file, x->line, x->message, x->kind);
            else
                fprintf(f, "  %s: %s: %s [%s]\n", sev_name[sev], x->file, x->message, x->kind);
        }
    if (shown < r->n_findings)
        fprintf(f, "  ... %d more (all of them in the JSON report, -o)\n", r->n_findings - shown);
}

enum deft_status deft_det_report_write_json(const struct deft_det_report *r, const char *path) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    ok = ok && cJSON_AddStringToObject(root, "format", deft_det_format_name(r->format));
    ok = ok && cJSON_AddStringToObject(root, "labels", r->labels);
    ok = ok && (r->images ? cJSON_AddStringToObject(root, "images", r->images) != NULL
                          : cJSON_AddNullToObject(root, "images") != NULL);
    ok = ok && cJSON_AddNumberToObject(root, "images_count", (double)r->n_images);
    ok = ok && cJSON_AddNumberToObject(root, "label_files", (double)r->n_label_files);
    ok = ok && cJSON_AddNumberToObject(root, "boxes", (double)r->n_boxes);
    cJSON *edges = ok ? cJSON_AddArrayToObject(root, "size_bin_edges") : NULL;
    for (int k = 0; edges && k < DEFT_DET_SIZE_BINS; k++)
        cJSON_AddItemToArray(edges, cJSON_CreateNumber(k ? 2 << k : 0));
    cJSON *classes = ok ? cJSON_AddObjectToObject(root, "classes") : NULL;
    ok = ok && edges && classes;
    for (int i = 0; ok && i < r->n_classes; i++) {
        const struct deft_det_class_count *c = &r->classes[i];
        cJSON *o = cJSON_AddObjectToObject(classes, c->name);
        cJSON *h = o ? cJSON_AddArrayToObject(o, "size_histogram") : NULL;
        ok = h && cJSON_AddNumberToObject(o, "boxes", (double)c->boxes) &&
             cJSON_AddNumberToObject(o, "difficult", (double)c->difficult);
        for (int k = 0; ok && k < DEFT_DET_SIZE_BINS; k++)
            ok = cJSON_AddItemToArray(h, cJSON_CreateNumber((double)c->size_hist[k]));
    }
    cJSON *areas = ok ? cJSON_AddObjectToObject(root, "coco_areas") : NULL;
    ok = areas && cJSON_AddNumberToObject(areas, "small", (double)r->coco_small) &&
         cJSON_AddNumberToObject(areas, "medium", (double)r->coco_medium) &&
         cJSON_AddNumberToObject(areas, "large", (double)r->coco_large);
    cJSON *sev = ok ? cJSON_AddObjectToObject(root, "severity_counts") : NULL;
    for (int k = 0; sev && ok && k < 3; k++)
        ok = cJSON_AddNumberToObject(sev, sev_name[k], (double)r->by_severity[k]) != NULL;
    cJSON *fs = ok && sev ? cJSON_AddArrayToObject(root, "findings") : NULL;
    ok = ok && fs;
    for (int i = 0; ok && i < r->n_findings; i++) {
        const struct deft_det_finding *x = &r->findings[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(fs, o) && cJSON_AddStringToObject(o, "severity", sev_name[x->severity]) &&
             cJSON_AddStringToObject(o, "kind", x->kind) && cJSON_AddStringToObject(o, "file", x->file) &&
             cJSON_AddNumberToObject(o, "line", x->line) &&
             cJSON_AddStringToObject(o, "message", x->message);
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return deft_set_error(DEFT_ERR_NOMEM, "out of memory writing %s", path);
    size_t n = strlen(text);
    enum deft_status st = det_mkdirs_for(path);
    if (!st) st = deft_file_write_atomic(path, text, n);
    cJSON_free(text);
    return st;
}

enum deft_status deft_det_report_plot(const struct deft_det_report *r, const char *path) {
    int n = r->n_classes;
    double xs[DEFT_DET_SIZE_BINS];
    for (int k = 0; k < DEFT_DET_SIZE_BINS; k++) xs[k] = k + 1; /* bin k: [2^(k+1), 2^(k+2)) */
    double *ys = deft_malloc(((size_t)n + 1) * DEFT_DET_SIZE_BINS * sizeof *ys);
    struct deft_plot_series *s = deft_calloc((size_t)n + 1, sizeof *s);
    if (!ys || !s) {
        deft_free(ys);
        deft_free(s);
        return nomem();
    }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < DEFT_DET_SIZE_BINS; k++)
            ys[i * DEFT_DET_SIZE_BINS + k] = (double)r->classes[i].size_hist[k];
        s[i] = (struct deft_plot_series){r->classes[i].name, xs, ys + i * DEFT_DET_SIZE_BINS,
                                         DEFT_DET_SIZE_BINS};
    }
    enum deft_status st = deft_plot_lines(path, "Boxes per size, by class",
                                          "log2 sqrt(box area in px) (1: under 4 px)", "boxes", s,
                                          n);
    deft_free(ys);
    deft_free(s);
    return st;
}

/* det_kitti.c - KITTI 2-D labels (src/data): one text file per image, one
 * object per line: type truncated occluded alpha left top right bottom
 * h w l x y z rotation_y [score]. TAO's YOLO/SSD loaders need >= 9 fields
 * and read the box from fields 5-8; predictions append the score (16th). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/io.h"
#include "data/det_impl.h"

#define KITTI_MIN_FIELDS 9
#define KITTI_MAX_FIELDS 16

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* A token [a, b) as a finite double. */
static bool parse_num(const char *a, const char *b, double *out) {
    char tmp[64];
    size_t n = (size_t)(b - a);
    if (n == 0 || n >= sizeof tmp) return false;
    memcpy(tmp, a, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (*end || end == tmp || !isfinite(v)) return false;
    *out = v;
    return true;
}

static const char *const field_names[KITTI_MAX_FIELDS] = {
    "type", "truncated", "occluded", "alpha", "left", "top", "right", "bottom",
    "height", "width", "length", "x", "y", "z", "rotation_y", "score"};

/* One non-blank line: tokens, checks, a raw box. */
static enum deft_status parse_line(struct det_raw *r, struct det_rimage *im, const char *a,
                                   const char *e, const char *path, int line) {
    const char *tb[KITTI_MAX_FIELDS + 1], *te[KITTI_MAX_FIELDS + 1];
    int nf = 0;
    for (const char *p = a; p < e;) {
        while (p < e && is_space(*p)) p++;
        if (p == e) break;
        if (nf == KITTI_MAX_FIELDS + 1) {
            nf++;
            break;
        }
        tb[nf] = p;
        while (p < e && !is_space(*p)) p++;
        te[nf++] = p;
    }
    if (nf > KITTI_MAX_FIELDS)
        return det_bad(r, path, line, "more than %d fields (KITTI has 15, 16 with a score)",
                       KITTI_MAX_FIELDS);
    if (nf < KITTI_MIN_FIELDS)
        return det_bad(r, path, line, "%d field%s, a KITTI line needs at least %d (type truncated "
                       "occluded alpha left top right bottom ...)", nf, nf == 1 ? "" : "s",
                       KITTI_MIN_FIELDS);
    if (r->with_score && nf != KITTI_MAX_FIELDS)
        return det_bad(r, path, line, "%d fields, a KITTI prediction needs 16 (the score last)", nf);
    double v[KITTI_MAX_FIELDS] = {0};
    for (int i = 1; i < nf; i++) {
        if (!parse_num(tb[i], te[i], &v[i])) {
            int n = (int)(te[i] - tb[i]);
            return det_bad(r, path, line, "field %d (%s) '%.*s' is not a finite number%s", i + 1,
                           field_names[i], n > 40 ? 40 : n, tb[i],
                           i == 1 ? " (a class name with a space?)" : "");
        }
    }
    for (int i = 4; i < 8; i++)
        if (fabs(v[i]) > 1e9)
            return det_bad(r, path, line, "field %d (%s) %g is beyond +-1e9 pixels", i + 1,
                           field_names[i], v[i]);
    double xyxy[4] = {v[4], v[5], v[6], v[7]};
    float score = r->with_score ? (float)v[15] : 1.0f;
    if (r->with_score && !isfinite(score)) /* finite double, too big for a float */
        return det_bad(r, path, line, "the score does not fit a float");
    return det_rimage_add_box(im, tb[0], (size_t)(te[0] - tb[0]), xyxy, v[2] != 0, score, line);
}

enum deft_status det_kitti_parse(struct det_raw *r, struct det_rimage *im, const char *text,
                                 size_t len, const char *path) {
    const char *t = text, *end = text + len;
    int line = 0;
    while (t < end) {
        const char *nl = memchr(t, '\n', (size_t)(end - t));
        const char *le = nl ? nl : end;
        line++;
        const char *a = t;
        t = nl ? nl + 1 : end;
        while (a < le && is_space(*a)) a++;
        if (a == le) continue;
        if (memchr(a, 0, (size_t)(le - a))) {
            enum deft_status st = det_bad(r, path, line, "a NUL byte (not a text file?)");
            if (st) return st;
            continue;
        }
        enum deft_status st = parse_line(r, im, a, le, path, line);
        if (st) return st;
    }
    return DEFT_OK;
}

/* ---- writing --------------------------------------------------------------- */

static enum deft_status check_name(const char *name, const char *where) {
    if (!name[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: an empty class name", where);
    for (const char *p = name; *p; p++)
        if (is_space(*p) || *p == '\n')
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "%s: class name '%s' has white space, which KITTI cannot hold "
                                  "(rename it, e.g. with an underscore)", where, name);
    return DEFT_OK;
}

/* Lines of n boxes into an open memstream. */
static enum deft_status put_boxes(FILE *f, const struct deft_box *b, int n,
                                  const char *const *names, int n_classes, bool with_score,
                                  const char *where) {
    for (int i = 0; i < n; i++) {
        if (b[i].cls < 0 || b[i].cls >= n_classes)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: box %d has class %d of %d", where, i,
                                  b[i].cls, n_classes);
        enum deft_status st = check_name(names[b[i].cls], where);
        if (st) return st;
        char c[4][32];
        const float xy[4] = {b[i].x1, b[i].y1, b[i].x2, b[i].y2};
        for (int k = 0; k < 4; k++) det_fmt_float(c[k], sizeof c[k], xy[k], true);
        fprintf(f, "%s 0.00 %d 0.00 %s %s %s %s 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
                names[b[i].cls], b[i].difficult ? 1 : 0, c[0], c[1], c[2], c[3]);
        if (with_score) {
            char s[32];
            det_fmt_float(s, sizeof s, b[i].score, false);
            fprintf(f, " %s", s);
        }
        fputc('\n', f);
    }
    return DEFT_OK;
}

static enum deft_status write_boxes(const char *path, const struct deft_box *b, int n,
                                    const char *const *names, int n_classes, bool with_score) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return deft_set_error(DEFT_ERR_NOMEM, "out of memory writing %s", path);
    enum deft_status st = put_boxes(f, b, n, names, n_classes, with_score, path);
    if (fclose(f) != 0 && !st) st = deft_set_error(DEFT_ERR_NOMEM, "out of memory writing %s", path);
    if (!st) st = deft_file_write_atomic(path, buf ? buf : "", len);
    free(buf);
    return st;
}

enum deft_status det_kitti_write(const struct deft_det_dataset *d, const char *dir) {
    enum deft_status st = det_mkdirs(dir);
    for (int i = 0; !st && i < d->n; i++) {
        char stem[1024], name[1100];
        deft_det_sample_stem(&d->samples[i], stem, sizeof stem);
        snprintf(name, sizeof name, "%s.txt", stem);
        char *path = det_join(dir, name);
        if (!path) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        st = write_boxes(path, d->samples[i].boxes, d->samples[i].n_boxes,
                         (const char *const *)d->class_names, d->n_classes, false);
        deft_free(path);
    }
    return st;
}

enum deft_status deft_det_write_kitti_predictions(const char *path, const struct deft_box *boxes,
                                                  int n, const char *const *class_names,
                                                  int n_classes) {
    if (!path || (n > 0 && (!boxes || !class_names)) || n < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "KITTI predictions: a NULL argument");
    return write_boxes(path, boxes, n, class_names, n_classes, true);
}

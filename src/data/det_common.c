/* det_common.c - detection data (src/data): raw records, findings and the
 * small file helpers the KITTI, COCO and VOC readers share. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "deft/data.h"
#include "deft/io.h"
#include "data/det_impl.h"

#define MAX_BOXES_PER_IMAGE (1 << 20)
#define MAX_IMAGES (1 << 26)

struct det_rimage *det_raw_add(struct det_raw *r) {
    if (r->n == r->cap) {
        if (r->cap >= MAX_IMAGES) return NULL;
        int cap = r->cap ? r->cap * 2 : 64;
        struct det_rimage *p = deft_realloc(r->img, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        r->img = p;
        r->cap = cap;
    }
    struct det_rimage *im = &r->img[r->n++];
    memset(im, 0, sizeof *im);
    return im;
}

enum deft_status det_rimage_add_box(struct det_rimage *im, const char *name, size_t name_len,
                                    const double xyxy[4], bool difficult, float score, int line) {
    if (im->n == im->cap) {
        if (im->cap >= MAX_BOXES_PER_IMAGE)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: more than %d boxes in one image",
                                  im->label ? im->label : "labels", MAX_BOXES_PER_IMAGE);
        int cap = im->cap ? im->cap * 2 : 16;
        struct det_rbox *p = deft_realloc(im->boxes, (size_t)cap * sizeof *p);
        if (!p) return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading labels");
        im->boxes = p;
        im->cap = cap;
    }
    char *nm = deft_malloc(name_len + 1);
    if (!nm) return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading labels");
    memcpy(nm, name, name_len);
    nm[name_len] = 0;
    struct det_rbox *b = &im->boxes[im->n++];
    *b = (struct det_rbox){nm, xyxy[0], xyxy[1], xyxy[2], xyxy[3], difficult, score, line};
    return DEFT_OK;
}

void det_rimage_release(struct det_rimage *im) {
    for (int i = 0; i < im->n; i++) deft_free(im->boxes[i].name);
    deft_free(im->boxes);
    deft_free(im->stem);
    deft_free(im->image);
    deft_free(im->label);
    memset(im, 0, sizeof *im);
}

void det_raw_free(struct det_raw *r) {
    for (int i = 0; i < r->n; i++) det_rimage_release(&r->img[i]);
    deft_free(r->img);
    r->img = NULL;
    r->n = r->cap = 0;
}

static char *vfmt(const char *fmt, va_list ap) {
    char tmp[512];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    return deft_strdup(tmp);
}

enum deft_status det_finding(struct deft_det_report *rep, enum deft_det_severity sev,
                             const char *kind, const char *file, int line, const char *fmt, ...) {
    if (rep->n_findings % 64 == 0) {
        struct deft_det_finding *p =
            deft_realloc(rep->findings, (size_t)(rep->n_findings + 64) * sizeof *p);
        if (!p) return deft_set_error(DEFT_ERR_NOMEM, "out of memory validating");
        rep->findings = p;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = vfmt(fmt, ap);
    va_end(ap);
    char *f = deft_strdup(file ? file : "");
    if (!msg || !f) {
        deft_free(msg);
        deft_free(f);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory validating");
    }
    rep->findings[rep->n_findings++] = (struct deft_det_finding){sev, kind, f, line, msg};
    rep->by_severity[sev]++;
    return DEFT_OK;
}

enum deft_status det_bad(struct det_raw *r, const char *file, int line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->bad_lines++;
    if (r->rep) return det_finding(r->rep, DEFT_DET_ERROR, "malformed", file, line, "%s", msg);
    if (r->skip_bad) return DEFT_OK;
    if (line > 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s:%d: %s (fix the line, or set skip_bad_lines to "
                              "skip and count such lines)", file, line, msg);
    return deft_set_error(DEFT_ERR_FORMAT, "%s: %s", file, msg);
}

char *det_join(const char *dir, const char *name) {
    size_t la = strlen(dir), lb = strlen(name);
    char *s = deft_malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, dir, la);
    size_t p = la;
    if (la && dir[la - 1] != '/') s[p++] = '/';
    memcpy(s + p, name, lb + 1);
    return s;
}

char *det_stem(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char *s = deft_malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, b, n);
    s[n] = 0;
    return s;
}

bool det_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool det_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int det_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void det_free_strings(char **v, int n) {
    for (int i = 0; i < n; i++) deft_free(v[i]);
    deft_free(v);
}

static bool ends_with(const char *name, const char *suffix) {
    size_t n = strlen(name), e = strlen(suffix);
    return n > e && !strcasecmp(name + n - e, suffix);
}

bool det_is_image_name(const char *name, const char *ext) {
    if (ext) {
        if (*ext == '.') ext++;
        size_t n = strlen(name), e = strlen(ext);
        return n > e + 1 && name[n - e - 1] == '.' && !strcasecmp(name + n - e, ext);
    }
    static const char *const known[] = {".jpg", ".jpeg", ".png", ".bmp"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (ends_with(name, known[i])) return true;
    return false;
}

enum deft_status det_list(const char *dir, const char *suffix, const char *ext, char ***names,
                          int *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return deft_set_error(errno == ENOENT ? DEFT_ERR_NOT_FOUND : DEFT_ERR_IO,
                              "cannot open directory %s: %s", dir, strerror(errno));
    char **v = NULL;
    int cnt = 0, cap = 0;
    enum deft_status st = DEFT_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (suffix ? !ends_with(e->d_name, suffix) : !det_is_image_name(e->d_name, ext)) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 256;
            char **p = deft_realloc(v, (size_t)cap * sizeof *p);
            if (!p) {
                st = deft_set_error(DEFT_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            v = p;
        }
        if (!(v[cnt] = deft_strdup(e->d_name))) {
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        cnt++;
    }
    closedir(d);
    if (st) {
        det_free_strings(v, cnt);
        return st;
    }
    if (cnt > 1) qsort(v, (size_t)cnt, sizeof *v, det_cmp_str);
    *names = v;
    *n = cnt;
    return DEFT_OK;
}

char *det_find_image(const char *dir, const char *stem, const char *ext) {
    static const char *const known[] = {"jpg", "jpeg", "png", "bmp", "JPG", "JPEG", "PNG", "BMP"};
    const char *const *list = known;
    size_t nk = sizeof known / sizeof known[0];
    if (ext) {
        if (*ext == '.') ext++;
        list = &ext;
        nk = 1;
    }
    size_t ld = strlen(dir), ls = strlen(stem);
    for (size_t i = 0; i < nk; i++) {
        size_t le = strlen(list[i]);
        char *p = deft_malloc(ld + ls + le + 3);
        if (!p) return NULL;
        snprintf(p, ld + ls + le + 3, "%s%s%s.%s", dir, ld && dir[ld - 1] != '/' ? "/" : "", stem,
                 list[i]);
        if (det_is_file(p)) return p;
        deft_free(p);
    }
    return NULL;
}

enum deft_status det_read_split(const char *path, char ***stems, int **lines, int *n) {
    *stems = NULL;
    *lines = NULL;
    *n = 0;
    void *buf;
    size_t len;
    enum deft_status st = deft_file_read(path, (size_t)256 << 20, &buf, &len);
    if (st) return deft_wrap_error(st, "split list");
    const char *t = buf, *end = t + len;
    int cnt = 0, cap = 0, lineno = 0;
    char **v = NULL;
    int *ln = NULL;
    while (t < end) {
        const char *nl = memchr(t, '\n', (size_t)(end - t));
        const char *le = nl ? nl : end;
        lineno++;
        const char *a = t, *b = le;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r')) b--;
        t = nl ? nl + 1 : end;
        if (a == b || *a == '#') continue;
        if (memchr(a, 0, (size_t)(b - a))) {
            st = deft_set_error(DEFT_ERR_FORMAT, "%s:%d: a NUL byte in the list", path, lineno);
            break;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 256;
            char **p = deft_realloc(v, (size_t)cap * sizeof *p);
            int *q = p ? deft_realloc(ln, (size_t)cap * sizeof *q) : NULL;
            if (p) v = p;
            if (q) ln = q;
            if (!p || !q) {
                st = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", path);
                break;
            }
        }
        /* a VOC list line may carry a flag after the stem ("000005 -1"): keep the stem */
        const char *sp = a;
        while (sp < b && *sp != ' ' && *sp != '\t') sp++;
        v[cnt] = deft_malloc((size_t)(sp - a) + 1);
        if (!v[cnt]) {
            st = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", path);
            break;
        }
        memcpy(v[cnt], a, (size_t)(sp - a));
        v[cnt][sp - a] = 0;
        ln[cnt++] = lineno;
    }
    deft_free(buf);
    if (st) {
        det_free_strings(v, cnt);
        deft_free(ln);
        return st;
    }
    *stems = v;
    *lines = ln;
    *n = cnt;
    return DEFT_OK;
}

bool det_probe(const char *path, int *w, int *h) {
    uint8_t *data;
    size_t n;
    *w = *h = 0;
    if (deft_read_file(path, (size_t)512 << 20, &data, &n)) {
        deft_clear_error();
        return false;
    }
    enum deft_image_format f;
    enum deft_status st = deft_image_probe(data, n, &f, w, h);
    deft_free(data);
    if (st) {
        deft_clear_error();
        *w = *h = 0;
        return false;
    }
    return true;
}

void det_fmt_float(char *buf, size_t cap, float v, bool kitti_style) {
    if (kitti_style) {
        snprintf(buf, cap, "%.2f", (double)v);
        if (strtof(buf, NULL) == v) return;
    }
    if (fabsf(v) < 1e7f) /* plain decimals where they are short enough: "260", "12.5" */
        for (int d = 0; d <= 9; d++) {
            snprintf(buf, cap, "%.*f", d, (double)v);
            if (strtof(buf, NULL) == v) return;
        }
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

enum deft_status det_mkdirs(const char *dir) {
    if (!dir[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "an empty directory name");
    char *p = deft_strdup(dir);
    if (!p) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == 0) {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                enum deft_status st = deft_set_error(DEFT_ERR_IO, "cannot create directory %s: %s",
                                                     p, strerror(errno));
                deft_free(p);
                return st;
            }
            *s = c;
        }
        if (!c) break;
    }
    deft_free(p);
    if (!det_is_dir(dir))
        return deft_set_error(DEFT_ERR_IO, "%s exists and is not a directory", dir);
    return DEFT_OK;
}

enum deft_status det_mkdirs_for(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return DEFT_OK;
    char *dir = deft_strdup(path);
    if (!dir) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    dir[slash - path] = 0;
    enum deft_status st = det_is_dir(dir) ? DEFT_OK : det_mkdirs(dir);
    deft_free(dir);
    return st;
}

/* dataset.c - class-per-folder datasets (<root>/<class>/<images>), the TAO
 * classification layout: class order = sorted folder names or an explicit
 * list (classes.txt); samples sorted, so the list is deterministic. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "deft/data.h"

struct strvec {
    char **v;
    int n, cap;
};

static enum deft_status sv_push(struct strvec *s, char *str) {
    if (!str) return deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        char **nv = deft_realloc(s->v, sizeof(char *) * (size_t)nc);
        if (!nv) {
            deft_free(str);
            return deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
        }
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = str;
    return DEFT_OK;
}

void deft_string_list_free(char **list, int n) {
    if (!list) return;
    for (int i = 0; i < n; i++) deft_free(list[i]);
    deft_free(list);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = deft_malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    size_t p = la;
    if (la && a[la - 1] != '/') s[p++] = '/';
    memcpy(s + p, b, lb + 1);
    return s;
}

static bool is_image_name(const char *name) {
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && !strcasecmp(name + n - e, ext[i])) return true;
    }
    return false;
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Names in dir (not hidden), sorted; dirs_only selects folders or files. */
static enum deft_status list_dir(const char *dir, int want_dirs, struct strvec *out) {
    DIR *d = opendir(dir);
    if (!d) return deft_set_error(DEFT_ERR_INVALID_ARG, "cannot open directory %s: %s", dir, strerror(errno));
    struct dirent *e;
    enum deft_status st = DEFT_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = join(dir, e->d_name);
        if (!full) {
            st = deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
            break;
        }
        struct stat sb;
        int ok = stat(full, &sb) == 0;
        deft_free(full);
        if (!ok) continue;
        bool dir_entry = S_ISDIR(sb.st_mode);
        if (want_dirs ? !dir_entry : !(dir_entry || S_ISREG(sb.st_mode))) continue;
        if ((st = sv_push(out, deft_strdup(e->d_name))) != DEFT_OK) break;
    }
    closedir(d);
    if (st == DEFT_OK && out->n > 1) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
    return st;
}

/* Image files under dir (recursively, sorted by relative path). */
static enum deft_status collect_images(const char *dir, int depth, struct strvec *out) {
    if (depth > 16) return DEFT_OK;
    struct strvec names = {0};
    enum deft_status st = list_dir(dir, 0, &names);
    for (int i = 0; st == DEFT_OK && i < names.n; i++) {
        char *full = join(dir, names.v[i]);
        if (!full) {
            st = deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
            break;
        }
        if (is_dir(full)) {
            st = collect_images(full, depth + 1, out);
            deft_free(full);
        } else if (is_image_name(names.v[i])) {
            st = sv_push(out, full);
        } else {
            deft_free(full);
        }
    }
    deft_string_list_free(names.v, names.n);
    return st;
}

void deft_dataset_free(struct deft_dataset *ds) {
    if (!ds) return;
    deft_free(ds->root);
    deft_string_list_free(ds->classes, ds->num_classes);
    deft_string_list_free(ds->paths, ds->num_samples);
    deft_free(ds->labels);
    deft_free(ds);
}

enum deft_status deft_dataset_open(const char *root, const char *const *classes, int num_classes,
                                   struct deft_dataset **out) {
    *out = NULL;
    if (!root || !*root) return deft_set_error(DEFT_ERR_INVALID_ARG, "dataset: no root directory given");
    if (!is_dir(root))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "dataset root %s does not exist or is not a directory", root);
    struct deft_dataset *ds = deft_calloc(1, sizeof *ds);
    if (!ds) return deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
    enum deft_status st = DEFT_OK;
    struct strvec cls = {0}, paths = {0}, folders = {0};
    int *labels = NULL;
    if (!(ds->root = deft_strdup(root))) {
        st = deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    if ((st = list_dir(root, 1, &folders)) != DEFT_OK) goto fail;
    if (classes) {
        for (int i = 0; i < num_classes; i++) {
            if (!classes[i] || !*classes[i] || strchr(classes[i], '/')) {
                st = deft_set_error(DEFT_ERR_INVALID_ARG, "dataset %s: invalid class name '%s' (entry %d)",
                                    root, classes[i] ? classes[i] : "(null)", i);
                goto fail;
            }
            for (int j = 0; j < i; j++)
                if (!strcmp(classes[i], classes[j])) {
                    st = deft_set_error(DEFT_ERR_INVALID_ARG, "dataset %s: class '%s' listed twice", root, classes[i]);
                    goto fail;
                }
            if ((st = sv_push(&cls, deft_strdup(classes[i]))) != DEFT_OK) goto fail;
        }
    } else {
        cls = folders;
        folders.v = NULL;
        folders.n = folders.cap = 0;
    }
    if (cls.n == 0) {
        st = deft_set_error(DEFT_ERR_INVALID_ARG, "dataset %s: no class folders (expected <root>/<class>/<images>)", root);
        goto fail;
    }
    for (int c = 0; c < cls.n; c++) {
        char *dir = join(root, cls.v[c]);
        if (!dir) {
            st = deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
            goto fail;
        }
        if (!is_dir(dir)) {
            st = deft_set_error(DEFT_ERR_INVALID_ARG, "dataset %s: class folder '%s' does not exist", root, cls.v[c]);
            deft_free(dir);
            goto fail;
        }
        int before = paths.n;
        st = collect_images(dir, 0, &paths);
        deft_free(dir);
        if (st != DEFT_OK) goto fail;
        if (paths.n == before) {
            st = deft_set_error(DEFT_ERR_INVALID_ARG,
                                "dataset %s: class folder '%s' holds no images (.jpg/.jpeg/.png/.bmp)", root, cls.v[c]);
            goto fail;
        }
        int *nl = deft_realloc(labels, sizeof(int) * (size_t)(paths.cap ? paths.cap : 1));
        if (!nl) {
            st = deft_set_error(DEFT_ERR_NOMEM, "dataset: out of memory");
            goto fail;
        }
        labels = nl;
        for (int i = before; i < paths.n; i++) labels[i] = c;
    }
    for (int f = 0; classes && f < folders.n; f++) {
        int found = 0;
        for (int i = 0; i < num_classes && !found; i++) found = !strcmp(folders.v[f], classes[i]);
        if (!found) deft_log(DEFT_LOG_WARN, "dataset %s: folder '%s' is not a listed class; ignored", root, folders.v[f]);
    }
    ds->num_classes = cls.n;
    ds->classes = cls.v;
    ds->num_samples = paths.n;
    ds->paths = paths.v;
    ds->labels = labels;
    deft_string_list_free(folders.v, folders.n);
    *out = ds;
    return DEFT_OK;
fail:
    deft_string_list_free(cls.v, cls.n);
    deft_string_list_free(paths.v, paths.n);
    deft_string_list_free(folders.v, folders.n);
    deft_free(labels);
    deft_dataset_free(ds);
    return st;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first name listed twice, or NULL (sorted copy: O(n log n) for long lists). */
static const char *find_duplicate(char *const *v, int n, enum deft_status *st) {
    *st = DEFT_OK;
    if (n < 2) return NULL;
    char **s = deft_malloc((size_t)n * sizeof *s);
    if (!s) {
        *st = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_name);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(s[i - 1], s[i])) dup = s[i];
    deft_free(s);
    return dup;
}

enum deft_status deft_class_list_parse(const char *text, size_t len, const char *name, char ***names,
                                       int *num) {
    *names = NULL;
    *num = 0;
    if (memchr(text, 0, len))
        return deft_set_error(DEFT_ERR_PARSE, "%s: a NUL byte: not a text file of class names", name);
    struct strvec v = {0};
    enum deft_status st = DEFT_OK;
    int line = 0;
    for (const char *p = text, *end = text + len; p < end && st == DEFT_OK;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end, *s = p;
        line++;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
        p = nl ? nl + 1 : end;
        if (e == s) continue;
        if (v.n == DEFT_MAX_CLASSES) {
            st = deft_set_error(DEFT_ERR_PARSE, "%s:%d: more than %d class names", name, line,
                                DEFT_MAX_CLASSES);
            break;
        }
        char *cls = deft_malloc((size_t)(e - s) + 1);
        if (cls) {
            memcpy(cls, s, (size_t)(e - s));
            cls[e - s] = 0;
        }
        st = sv_push(&v, cls);
    }
    if (st == DEFT_OK && v.n == 0) st = deft_set_error(DEFT_ERR_PARSE, "%s: no class names", name);
    if (st == DEFT_OK) {
        const char *dup = find_duplicate(v.v, v.n, &st);
        if (dup) st = deft_set_error(DEFT_ERR_PARSE, "%s: class '%s' listed twice", name, dup);
    }
    if (st != DEFT_OK) {
        deft_string_list_free(v.v, v.n);
        return st;
    }
    *names = v.v;
    *num = v.n;
    return DEFT_OK;
}

enum deft_status deft_read_class_list(const char *path, char ***names, int *num) {
    *names = NULL;
    *num = 0;
    uint8_t *data;
    size_t n;
    enum deft_status st = deft_read_file(path, (size_t)16 << 20, &data, &n);
    if (st != DEFT_OK) return st;
    st = deft_class_list_parse((const char *)data, n, path, names, num);
    deft_free(data);
    return st;
}

static bool has_class(const struct deft_dataset *d, const char *name) {
    for (int i = 0; i < d->num_classes; i++)
        if (!strcmp(d->classes[i], name)) return true;
    return false;
}

/* Append to a fixed buffer, truncating with "..." when full. */
static void append(char *buf, size_t cap, const char *s) {
    size_t l = strlen(buf), n = strlen(s);
    if (l + n + 4 >= cap) {
        if (l + 4 < cap && !strstr(buf, "...")) memcpy(buf + l, "...", 4);
        return;
    }
    memcpy(buf + l, s, n + 1);
}

enum deft_status deft_dataset_check_classes(const struct deft_dataset *a, const char *a_name,
                                            const struct deft_dataset *b, const char *b_name) {
    bool same = a->num_classes == b->num_classes;
    for (int i = 0; same && i < a->num_classes; i++) same = !strcmp(a->classes[i], b->classes[i]);
    if (same) return DEFT_OK;
    char only_a[512] = "", only_b[512] = "";
    for (int i = 0; i < a->num_classes; i++)
        if (!has_class(b, a->classes[i])) {
            append(only_a, sizeof only_a, only_a[0] ? ", " : "");
            append(only_a, sizeof only_a, a->classes[i]);
        }
    for (int i = 0; i < b->num_classes; i++)
        if (!has_class(a, b->classes[i])) {
            append(only_b, sizeof only_b, only_b[0] ? ", " : "");
            append(only_b, sizeof only_b, b->classes[i]);
        }
    if (!only_a[0] && !only_b[0])
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s and %s have the same classes in a different order",
                              a_name, b_name);
    return deft_set_error(DEFT_ERR_INVALID_ARG,
                          "class lists differ: only in %s: [%s]; only in %s: [%s]", a_name,
                          only_a, b_name, only_b);
}

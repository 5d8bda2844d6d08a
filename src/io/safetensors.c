/* safetensors.c - io module: the safetensors format (huggingface/safetensors).
 *
 *   u64 LE N | N bytes JSON header (may be right-padded with spaces) | data
 *   header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
 *            ..., "__metadata__": {"k": "v"}}
 *
 * The reader validates everything the reference reader does: N within the
 * file and the limit, a JSON object, known dtypes, numel * itemsize equal to
 * the offsets span, offsets covering the data section exactly (no holes, no
 * overlaps), unique names, string-only metadata. Files are streamed from
 * disk into tensors (no whole-file copy). The writer sorts names and pads the
 * header to a multiple of 8 bytes with spaces, as the reference writer does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "io_impl.h"

static const struct {
    const char *name;
    enum deft_dtype dt;
} st_dtypes[] = {
    {"F32", DEFT_F32}, {"F16", DEFT_F16}, {"BF16", DEFT_BF16}, {"I8", DEFT_I8},
    {"U8", DEFT_U8},   {"I32", DEFT_I32}, {"I64", DEFT_I64},   {"F64", DEFT_F64},
    {"BOOL", DEFT_U8}, /* one byte, 0/1: read as u8 */
};

static const char *st_dtype_name(enum deft_dtype dt) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dt == dt) return st_dtypes[i].name;
    return NULL;
}

/* ---- reading ------------------------------------------------------------ */

/* Where tensor bytes come from: a memory image or an open file. */
struct st_src {
    const unsigned char *mem; /* whole file image, or NULL */
    FILE *f;
    uint64_t data_start;      /* 8 + N */
};

struct st_entry {
    const char *name;         /* points into the cJSON tree */
    enum deft_dtype dtype;
    struct deft_shape shape;
    uint64_t begin, end;
};

static void st_free_partial(struct deft_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) {
        deft_free(st->tensors[i].name);
        deft_tensor_free(st->tensors[i].tensor);
    }
    for (int i = 0; i < st->n_meta; i++) {
        deft_free((void *)st->meta[i].key);
        deft_free((void *)st->meta[i].value);
    }
    deft_free(st->tensors);
    deft_free(st->meta);
    deft_free(st);
}

void deft_safetensors_free(struct deft_safetensors *st) { st_free_partial(st); }

enum deft_status deft_io_tensor_list_new(const char *format, struct deft_safetensors **out) {
    *out = NULL;
    struct deft_safetensors *st = deft_calloc(1, sizeof *st);
    if (st) st->tensors = deft_calloc(1, sizeof *st->tensors);
    if (st) st->meta = deft_calloc(1, sizeof *st->meta);
    if (st && st->tensors && st->meta) {
        st->meta[0].key = deft_strdup("source_format");
        st->meta[0].value = deft_strdup(format);
        st->n_meta = 1;
    }
    if (!st || !st->tensors || !st->meta || !st->meta[0].key || !st->meta[0].value) {
        deft_safetensors_free(st);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    *out = st;
    return DEFT_OK;
}

enum deft_status deft_io_tensor_list_add(struct deft_safetensors *st, const char *name,
                                         struct deft_tensor *t) {
    /* the capacity is the next power of two above n: grow when n reaches one */
    int n = st->n_tensors;
    if (n && (n & (n - 1)) == 0) {
        struct deft_named_tensor *nt = deft_realloc(st->tensors, (size_t)n * 2 * sizeof *nt);
        if (!nt) {
            deft_tensor_free(t);
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        }
        st->tensors = nt;
    }
    char *nm = deft_strdup(name);
    if (!nm) {
        deft_tensor_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    st->tensors[st->n_tensors++] = (struct deft_named_tensor){nm, t};
    return DEFT_OK;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum deft_status deft_io_check_unique_names(const struct deft_safetensors *st, const char *file,
                                            const char *note) {
    if (st->n_tensors < 2) return DEFT_OK;
    const char **names = deft_malloc((size_t)st->n_tensors * sizeof *names);
    if (!names) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", file);
    for (int i = 0; i < st->n_tensors; i++) names[i] = st->tensors[i].name;
    qsort(names, (size_t)st->n_tensors, sizeof *names, cmp_str_ptr);
    enum deft_status s = DEFT_OK;
    for (int i = 1; i < st->n_tensors && !s; i++)
        if (!strcmp(names[i - 1], names[i]))
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: two tensors are named '%s'%s", file, names[i],
                               note ? note : "");
    deft_free(names);
    return s;
}

/* A JSON number that is an exact non-negative integer <= 2^53. */
static bool json_u53(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

static enum deft_status fmt_err(const char *name, const char *tensor, const char *msg) {
    if (tensor)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s': %s", name, tensor, msg);
    return deft_set_error(DEFT_ERR_FORMAT, "%s: %s", name, msg);
}

static enum deft_status parse_entry(const cJSON *j, const char *name, struct st_entry *e) {
    const char *tn = j->string;
    if (!cJSON_IsObject(j)) return fmt_err(name, tn, "header entry is not an object");
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *f;
    cJSON_ArrayForEach(f, j) {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &dtype
                             : !strcmp(f->string, "shape")        ? &shape
                             : !strcmp(f->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot) {
            char m[160];
            snprintf(m, sizeof m, "unknown field '%.100s'", f->string);
            return fmt_err(name, tn, m);
        }
        if (*slot) return fmt_err(name, tn, "duplicate field");
        *slot = f;
    }
    if (!cJSON_IsString(dtype)) return fmt_err(name, tn, "missing or non-string 'dtype'");
    bool known = false;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(dtype->valuestring, st_dtypes[i].name)) {
            e->dtype = st_dtypes[i].dt;
            known = true;
        }
    if (!known)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: tensor '%s': dtype '%.40s' is not supported",
                              name, tn, dtype->valuestring);
    if (!cJSON_IsArray(shape)) return fmt_err(name, tn, "missing or non-array 'shape'");
    int nd = cJSON_GetArraySize(shape);
    if (nd > DEFT_MAX_DIMS) return fmt_err(name, tn, "too many dimensions");
    e->shape.ndim = 0;
    cJSON_ArrayForEach(f, shape) {
        uint64_t d;
        if (!json_u53(f, &d)) return fmt_err(name, tn, "shape holds a non-integer or negative value");
        e->shape.d[e->shape.ndim++] = (int64_t)d;
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_u53(cJSON_GetArrayItem(offs, 0), &e->begin) ||
        !json_u53(cJSON_GetArrayItem(offs, 1), &e->end))
        return fmt_err(name, tn, "'data_offsets' must be two non-negative integers");
    if (e->end < e->begin) return fmt_err(name, tn, "data_offsets end before they begin");
    uint64_t nbytes;
    if (!deft_io_shape_bytes(&e->shape, deft_dtype_size(e->dtype), &nbytes))
        return fmt_err(name, tn, "shape is too large (size overflows)");
    if (nbytes != e->end - e->begin) {
        char m[160];
        snprintf(m, sizeof m, "shape x dtype size is %llu bytes but data_offsets span %llu",
                 (unsigned long long)nbytes, (unsigned long long)(e->end - e->begin));
        return fmt_err(name, tn, m);
    }
    e->name = tn;
    return DEFT_OK;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const struct st_entry *)a)->name, ((const struct st_entry *)b)->name);
}
static int cmp_by_offset(const void *a, const void *b) {
    const struct st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static enum deft_status parse_meta(const cJSON *j, const char *name, struct deft_safetensors *st) {
    if (!cJSON_IsObject(j)) return fmt_err(name, NULL, "__metadata__ is not an object");
    int n = cJSON_GetArraySize(j);
    st->meta = deft_calloc((size_t)n ? (size_t)n : 1, sizeof *st->meta);
    if (!st->meta) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
    const cJSON *f;
    cJSON_ArrayForEach(f, j) {
        if (!cJSON_IsString(f)) {
            char m[160];
            snprintf(m, sizeof m, "__metadata__ value of '%.100s' is not a string", f->string);
            return fmt_err(name, NULL, m);
        }
        for (int i = 0; i < st->n_meta; i++)
            if (!strcmp(st->meta[i].key, f->string)) {
                char m[160];
                snprintf(m, sizeof m, "duplicate __metadata__ key '%.100s'", f->string);
                return fmt_err(name, NULL, m);
            }
        char *k = deft_strdup(f->string), *v = deft_strdup(f->valuestring);
        if (!k || !v) {
            deft_free(k);
            deft_free(v);
            return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
        }
        st->meta[st->n_meta].key = k;
        st->meta[st->n_meta].value = v;
        st->n_meta++;
    }
    return DEFT_OK;
}

static enum deft_status read_data(const struct st_src *src, uint64_t off, void *dst, size_t n,
                                  const char *name) {
    if (n == 0) return DEFT_OK;
    if (src->mem) {
        memcpy(dst, src->mem + src->data_start + off, n);
        return DEFT_OK;
    }
    if (fseeko(src->f, (off_t)(src->data_start + off), SEEK_SET) != 0 ||
        fread(dst, 1, n, src->f) != n)
        return deft_set_error(ferror(src->f) ? DEFT_ERR_IO : DEFT_ERR_FORMAT,
                              "%s: cannot read tensor data: %s", name,
                              ferror(src->f) ? strerror(errno) : "file is truncated");
    return DEFT_OK;
}

/* Parse and validate header bytes h[0..hlen), then load every tensor. */
static enum deft_status st_load(const char *h, size_t hlen, uint64_t data_len,
                                const struct st_src *src, const char *name,
                                struct deft_safetensors **out) {
    enum deft_status s = DEFT_OK;
    struct st_entry *ents = NULL;
    struct deft_safetensors *st = NULL;
    if (hlen == 0 || h[0] != '{') return fmt_err(name, NULL, "header does not start with '{'");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, hlen, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long pos = at && at >= h && at <= h + hlen ? (long)(at - h) : -1;
        return deft_set_error(DEFT_ERR_FORMAT, "%s: header is not valid JSON (near byte %ld)",
                              name, pos + 8);
    }
    for (const char *p = end; p && p < h + hlen; p++)
        if (*p != ' ') {
            s = fmt_err(name, NULL, "junk after the JSON header");
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        s = fmt_err(name, NULL, "header is not a JSON object");
        goto done;
    }
    int n_items = cJSON_GetArraySize(root), n = 0;
    st = deft_calloc(1, sizeof *st);
    ents = deft_calloc((size_t)n_items + 1, sizeof *ents);
    if (!st || !ents) {
        s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    bool have_meta = false;
    const cJSON *j;
    cJSON_ArrayForEach(j, root) {
        if (!strcmp(j->string, "__metadata__")) {
            if (have_meta) {
                s = fmt_err(name, NULL, "duplicate __metadata__");
                goto done;
            }
            have_meta = true;
            if ((s = parse_meta(j, name, st))) goto done;
            continue;
        }
        if ((s = parse_entry(j, name, &ents[n]))) goto done;
        n++;
    }
    /* unique names */
    qsort(ents, (size_t)n, sizeof *ents, cmp_by_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(ents[i - 1].name, ents[i].name)) {
            s = fmt_err(name, ents[i].name, "duplicate tensor name");
            goto done;
        }
    /* offsets: inside the data section, covering it exactly */
    qsort(ents, (size_t)n, sizeof *ents, cmp_by_offset);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        char m[200];
        if (ents[i].end > data_len) {
            snprintf(m, sizeof m, "data_offsets [%llu, %llu] lie beyond the data section (%llu bytes)",
                     (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end,
                     (unsigned long long)data_len);
            s = fmt_err(name, ents[i].name, m);
            goto done;
        }
        if (ents[i].begin != pos) {
            snprintf(m, sizeof m, "data_offsets [%llu, %llu] %s (expected to start at %llu)",
                     (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end,
                     ents[i].begin < pos ? "overlap another tensor" : "leave a hole",
                     (unsigned long long)pos);
            s = fmt_err(name, ents[i].name, m);
            goto done;
        }
        pos = ents[i].end;
    }
    if (pos != data_len) {
        char m[160];
        snprintf(m, sizeof m, "tensors cover %llu bytes but the data section has %llu",
                 (unsigned long long)pos, (unsigned long long)data_len);
        s = fmt_err(name, NULL, m);
        goto done;
    }
    st->tensors = deft_calloc((size_t)n + 1, sizeof *st->tensors);
    if (!st->tensors) {
        s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        struct deft_named_tensor *nt = &st->tensors[i];
        nt->name = deft_strdup(ents[i].name);
        if (!nt->name) {
            s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
            goto done;
        }
        st->n_tensors++;
        if ((s = deft_tensor_create(ents[i].dtype, &ents[i].shape, &nt->tensor))) {
            s = deft_wrap_error(s, "%s: tensor '%s'", name, ents[i].name);
            goto done;
        }
        if ((s = read_data(src, ents[i].begin, nt->tensor->data,
                           (size_t)(ents[i].end - ents[i].begin), name)))
            goto done;
    }
    *out = st;
    st = NULL;
done:
    cJSON_Delete(root);
    deft_free(ents);
    st_free_partial(st);
    return s;
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static enum deft_status check_header_len(uint64_t n, uint64_t file_len, const char *name) {
    if (n > DEFT_SAFETENSORS_MAX_HEADER || n > file_len - 8) {
        char m[160];
        snprintf(m, sizeof m, "header length %llu is beyond the file size (%llu bytes)%s",
                 (unsigned long long)n, (unsigned long long)file_len,
                 n > DEFT_SAFETENSORS_MAX_HEADER ? " or the 100 MB limit" : "");
        return fmt_err(name, NULL, m);
    }
    return DEFT_OK;
}

enum deft_status deft_safetensors_parse(const void *buf, size_t len, const char *name,
                                        struct deft_safetensors **out) {
    *out = NULL;
    if (!name) name = "<safetensors>";
    const unsigned char *p = buf;
    if (len < 8) return fmt_err(name, NULL, "file is too short for a safetensors header");
    uint64_t n = le64(p);
    enum deft_status s = check_header_len(n, len, name);
    if (s) return s;
    struct st_src src = {.mem = p, .data_start = 8 + n};
    return st_load((const char *)p + 8, (size_t)n, len - 8 - n, &src, name, out);
}

enum deft_status deft_safetensors_read(const char *path, struct deft_safetensors **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) /* a missing file is the user's input error (exit 2), not a runtime failure */
        return deft_set_error(errno == ENOENT ? DEFT_ERR_NOT_FOUND : DEFT_ERR_IO, "cannot open %s: %s", path,
                              strerror(errno));
    enum deft_status s;
    char *h = NULL;
    unsigned char pre[8];
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        s = deft_set_error(DEFT_ERR_IO, "cannot read %s: not a regular file", path);
        goto done;
    }
    uint64_t flen = (uint64_t)sb.st_size;
    if (flen < 8 || fread(pre, 1, 8, f) != 8) {
        s = fmt_err(path, NULL, "file is too short for a safetensors header");
        goto done;
    }
    uint64_t n = le64(pre);
    if ((s = check_header_len(n, flen, path))) goto done;
    h = deft_malloc((size_t)n + 1);
    if (!h) {
        s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                           (unsigned long long)n);
        goto done;
    }
    if (fread(h, 1, (size_t)n, f) != n) {
        s = fmt_err(path, NULL, "truncated header");
        goto done;
    }
    h[n] = 0;
    struct st_src src = {.f = f, .data_start = 8 + n};
    s = st_load(h, (size_t)n, flen - 8 - n, &src, path, out);
done:
    deft_free(h);
    fclose(f);
    return s;
}

struct deft_tensor *deft_safetensors_find(const struct deft_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return st->tensors[i].tensor;
    return NULL;
}

const char *deft_safetensors_meta(const struct deft_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[i].key, key)) return st->meta[i].value;
    return NULL;
}

/* ---- writing ------------------------------------------------------------ */

/* Growable text buffer; `failed` makes appends no-ops after an OOM. */
struct sbuf {
    char *p;
    size_t n, cap;
    bool failed;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = deft_realloc(b->p, nc);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* JSON string literal; UTF-8 passes through, control bytes are escaped. */
static void sb_json_str(struct sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int cmp_nt_by_name(const void *a, const void *b) {
    return strcmp(((const struct deft_named_tensor *)a)->name,
                  ((const struct deft_named_tensor *)b)->name);
}

enum deft_status deft_safetensors_write(const char *path, const struct deft_named_tensor *t,
                                        int n, const struct deft_kv *meta, int n_meta) {
    if (n < 0 || n_meta < 0 || (n && !t) || (n_meta && !meta))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "writing %s: bad tensor or metadata list", path);
    enum deft_status s = DEFT_OK;
    struct sbuf b = {0};
    void *tmp = NULL;
    struct deft_atomic_file *w = NULL;
    /* a sorted copy of the list: names in order, data written in that order */
    struct deft_named_tensor *srt = deft_malloc(((size_t)n + 1) * sizeof *srt);
    size_t *sizes = deft_malloc(((size_t)n + 1) * sizeof *sizes);
    if (!srt || !sizes) {
        s = deft_set_error(DEFT_ERR_NOMEM, "writing %s: out of memory", path);
        goto done;
    }
    size_t max_strided = 0;
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !strcmp(t[i].name, "__metadata__")) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "writing %s: tensor %d has a missing or "
                               "reserved name", path, i);
            goto done;
        }
        srt[i] = t[i];
    }
    qsort(srt, (size_t)n, sizeof *srt, cmp_nt_by_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(srt[i - 1].name, srt[i].name)) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "writing %s: duplicate tensor name '%s'",
                               path, srt[i].name);
            goto done;
        }
    for (int i = 0; i < n; i++) {
        char what[512];
        snprintf(what, sizeof what, "writing %s: tensor '%s'", path, srt[i].name);
        if ((s = deft_io_tensor_bytes(srt[i].tensor, what, &sizes[i]))) goto done;
        if (!st_dtype_name(srt[i].tensor->dtype)) {
            s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: dtype not supported", what);
            goto done;
        }
        if (!deft_tensor_is_contiguous(srt[i].tensor) && sizes[i] > max_strided)
            max_strided = sizes[i];
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "writing %s: metadata entry %d is NULL", path, i);
            goto done;
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(meta[k].key, meta[i].key)) {
                s = deft_set_error(DEFT_ERR_INVALID_ARG, "writing %s: duplicate metadata key '%s'",
                                   path, meta[i].key);
                goto done;
            }
    }
    /* header JSON */
    sb_put(&b, "{", 1);
    if (n_meta) {
        sb_str(&b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_put(&b, ",", 1);
            sb_json_str(&b, meta[i].key);
            sb_put(&b, ":", 1);
            sb_json_str(&b, meta[i].value);
        }
        sb_put(&b, "}", 1);
    }
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const struct deft_named_tensor *nt = &srt[k];
        char num[64];
        if (k || n_meta) sb_put(&b, ",", 1);
        sb_json_str(&b, nt->name);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, st_dtype_name(nt->tensor->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < nt->tensor->shape.ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)nt->tensor->shape.d[d]);
            sb_str(&b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + sizes[k]));
        sb_str(&b, num);
        off += sizes[k];
    }
    sb_put(&b, "}", 1);
    while (!b.failed && b.n % 8) sb_put(&b, " ", 1);
    if (b.failed) {
        s = deft_set_error(DEFT_ERR_NOMEM, "writing %s: out of memory for the header", path);
        goto done;
    }
    if (b.n > DEFT_SAFETENSORS_MAX_HEADER) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "writing %s: header exceeds 100 MB", path);
        goto done;
    }
    if (max_strided && !(tmp = deft_malloc(max_strided))) {
        s = deft_set_error(DEFT_ERR_NOMEM, "writing %s: out of memory", path);
        goto done;
    }
    unsigned char pre[8];
    for (int i = 0; i < 8; i++) pre[i] = (unsigned char)((uint64_t)b.n >> (8 * i));
    if ((s = deft_atomic_open(path, &w))) goto done;
    if ((s = deft_atomic_write(w, pre, 8)) || (s = deft_atomic_write(w, b.p, b.n))) goto done;
    for (int k = 0; k < n; k++) {
        const struct deft_tensor *tt = srt[k].tensor;
        size_t nb = sizes[k];
        if (!nb) continue;
        const void *src = tt->data;
        if (!deft_tensor_is_contiguous(tt)) {
            deft_io_gather(tt, tmp);
            src = tmp;
        }
        if ((s = deft_atomic_write(w, src, nb))) goto done;
    }
    s = deft_atomic_commit(w);
    w = NULL;
done:
    deft_atomic_abort(w);
    deft_free(tmp);
    deft_free(b.p);
    deft_free(srt);
    deft_free(sizes);
    return s;
}

/* npy.c - io module: NumPy .npy files (format versions 1.0, 2.0, 3.0).
 *
 *   "\x93NUMPY" major minor  header_len (u16 LE for 1.x, u32 LE for 2.x/3.x)
 *   header: a Python dict literal {'descr': '<f4', 'fortran_order': False,
 *           'shape': (2, 3), } padded with spaces and ending in '\n'
 *   data:   numel * itemsize bytes, C order
 *
 * The header is parsed by a small strict parser (no eval): exactly the three
 * keys, each once. Every failure is one line naming the file and the problem.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "io_impl.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20) /* numpy itself refuses > 10000 by default */

struct npy_info {
    enum deft_dtype dtype;
    struct deft_shape shape;
    size_t header_total; /* magic + version + length field + header */
    uint64_t data_bytes;
};

static enum deft_status npy_err(const char *name, const char *fmt, const char *detail) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    return deft_set_error(DEFT_ERR_FORMAT, "%s: %s", name, msg);
}

/* Reads magic, version and header length from the first bytes. */
static enum deft_status parse_prefix(const unsigned char *p, size_t avail, const char *name,
                                     size_t *hdr_start, size_t *hdr_len) {
    if (avail < 10 || memcmp(p, NPY_MAGIC, 6) != 0)
        return npy_err(name, "not a .npy file (bad magic)%s", NULL);
    unsigned major = p[6], minor = p[7];
    if (minor != 0 || major < 1 || major > 3) {
        char v[32];
        snprintf(v, sizeof v, "%u.%u", major, minor);
        return npy_err(name, "unsupported .npy format version %s", v);
    }
    if (major == 1) {
        *hdr_len = (size_t)p[8] | (size_t)p[9] << 8;
        *hdr_start = 10;
    } else {
        if (avail < 12) return npy_err(name, "truncated header%s", NULL);
        *hdr_len = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        *hdr_start = 12;
    }
    if (*hdr_len > NPY_MAX_HEADER) return npy_err(name, "header too large%s", NULL);
    return DEFT_OK;
}

/* ---- header dict parser ---- */
struct cur {
    const char *p, *end;
};

static void skip_ws(struct cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* A quoted Python string without escapes (all npy keys and descrs are plain). */
static bool parse_str(struct cur *c, char *out, size_t cap) {
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return false;
    c->p++;
    out[n] = 0;
    return true;
}

static bool parse_word(struct cur *c, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return false;
    c->p += n;
    return true;
}

static enum deft_status parse_shape(struct cur *c, const char *name, struct deft_shape *s) {
    s->ndim = 0;
    if (c->p >= c->end || *c->p != '(') return npy_err(name, "'shape' is not a tuple%s", NULL);
    c->p++;
    for (;;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            return DEFT_OK;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return npy_err(name, "'shape' holds something other than non-negative integers%s", NULL);
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int d = *c->p++ - '0';
            if (v > (INT64_MAX - d) / 10) return npy_err(name, "shape dimension overflows%s", NULL);
            v = v * 10 + d;
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 longs */
        if (s->ndim >= DEFT_MAX_DIMS) {
            char m[16];
            snprintf(m, sizeof m, "%d", DEFT_MAX_DIMS);
            return npy_err(name, "more than %s dimensions", m);
        }
        s->d[s->ndim++] = v;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
        } else if (c->p < c->end && *c->p == ')') {
            if (s->ndim == 1) return npy_err(name, "malformed 'shape' tuple%s", NULL);
        } else {
            return npy_err(name, "malformed 'shape' tuple%s", NULL);
        }
    }
}

static enum deft_status parse_descr(const char *d, const char *name, enum deft_dtype *dt) {
    size_t n = strlen(d);
    if (n < 2) return npy_err(name, "unsupported dtype '%s'", d);
    char order = d[0];
    const char *code = d + 1;
    bool one_byte = !strcmp(code, "u1") || !strcmp(code, "i1") || !strcmp(code, "b1");
    if (order == '>' && !one_byte)
        return npy_err(name, "big-endian dtype '%s' is not supported (save with '<' byte order)", d);
    if (order != '<' && order != '|' && order != '=' && order != '>')
        return npy_err(name, "unsupported dtype '%s'", d);
    if (order == '|' && !one_byte) return npy_err(name, "unsupported dtype '%s'", d);
    if (!strcmp(code, "f4")) *dt = DEFT_F32;
    else if (!strcmp(code, "f8")) *dt = DEFT_F64;
    else if (!strcmp(code, "f2")) *dt = DEFT_F16;
    else if (!strcmp(code, "i8")) *dt = DEFT_I64;
    else if (!strcmp(code, "i4")) *dt = DEFT_I32;
    else if (!strcmp(code, "u1") || !strcmp(code, "b1")) *dt = DEFT_U8;
    else if (!strcmp(code, "i1")) *dt = DEFT_I8;
    else
        return npy_err(name, "unsupported dtype '%s' (use float32, float64, float16, int64, "
                             "int32, int8 or uint8)", d);
    return DEFT_OK;
}

static enum deft_status parse_dict(const char *h, size_t n, const char *name,
                                   struct npy_info *info) {
    struct cur c = {h, h + n};
    bool have_descr = false, have_fortran = false, have_shape = false;
    enum deft_status s;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') return npy_err(name, "header is not a dict%s", NULL);
    c.p++;
    for (;;) {
        skip_ws(&c);
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        char key[32], val[64];
        if (!parse_str(&c, key, sizeof key)) return npy_err(name, "malformed header dict%s", NULL);
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') return npy_err(name, "malformed header dict%s", NULL);
        c.p++;
        skip_ws(&c);
        if (!strcmp(key, "descr")) {
            if (have_descr) return npy_err(name, "duplicate key 'descr'%s", NULL);
            have_descr = true;
            if (c.p < c.end && *c.p == '[')
                return npy_err(name, "structured dtypes are not supported%s", NULL);
            if (!parse_str(&c, val, sizeof val)) return npy_err(name, "malformed 'descr'%s", NULL);
            if ((s = parse_descr(val, name, &info->dtype))) return s;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran) return npy_err(name, "duplicate key 'fortran_order'%s", NULL);
            have_fortran = true;
            if (parse_word(&c, "True"))
                return npy_err(name, "fortran_order True is not supported (save a C-contiguous "
                                     "array, e.g. np.ascontiguousarray)%s", NULL);
            if (!parse_word(&c, "False")) return npy_err(name, "malformed 'fortran_order'%s", NULL);
        } else if (!strcmp(key, "shape")) {
            if (have_shape) return npy_err(name, "duplicate key 'shape'%s", NULL);
            have_shape = true;
            if ((s = parse_shape(&c, name, &info->shape))) return s;
        } else {
            return npy_err(name, "unexpected header key '%s'", key);
        }
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
        } else if (!(c.p < c.end && *c.p == '}')) {
            return npy_err(name, "malformed header dict%s", NULL);
        }
    }
    skip_ws(&c);
    for (; c.p < c.end; c.p++)
        if (*c.p != 0) return npy_err(name, "junk after the header dict%s", NULL);
    if (!have_descr || !have_fortran || !have_shape)
        return npy_err(name, "header lacks %s", !have_descr ? "'descr'"
                                                 : !have_fortran ? "'fortran_order'" : "'shape'");
    if (!deft_io_shape_bytes(&info->shape, deft_dtype_size(info->dtype), &info->data_bytes))
        return npy_err(name, "shape is too large (size overflows)%s", NULL);
    return DEFT_OK;
}

/* Checks the data size against what the file holds. */
static enum deft_status check_size(const struct npy_info *info, uint64_t have, const char *name) {
    if (have < info->data_bytes) {
        char m[96];
        snprintf(m, sizeof m, "%llu of %llu bytes", (unsigned long long)have,
                 (unsigned long long)info->data_bytes);
        return npy_err(name, "truncated data (%s)", m);
    }
    if (have > info->data_bytes) {
        char m[64];
        snprintf(m, sizeof m, "%llu", (unsigned long long)(have - info->data_bytes));
        return npy_err(name, "%s unexpected bytes after the data", m);
    }
    return DEFT_OK;
}

/* Replaces *t by an f32 copy when asked. */
static enum deft_status maybe_to_f32(struct deft_tensor **t, unsigned flags, const char *name) {
    if (!(flags & DEFT_NPY_TO_F32) || (*t)->dtype == DEFT_F32) return DEFT_OK;
    struct deft_tensor *f;
    enum deft_status s = deft_tensor_create(DEFT_F32, &(*t)->shape, &f);
    if (s) return deft_wrap_error(s, "%s", name);
    s = deft_tensor_to_f32(*t, f->data);
    deft_tensor_free(*t);
    *t = NULL;
    if (s) {
        deft_tensor_free(f);
        return deft_wrap_error(s, "%s", name);
    }
    *t = f;
    return DEFT_OK;
}

enum deft_status deft_npy_parse(const void *buf, size_t len, const char *name, unsigned flags,
                                struct deft_tensor **out) {
    *out = NULL;
    if (!name) name = "<npy>";
    const unsigned char *p = buf;
    size_t hs, hl;
    struct npy_info info = {0};
    enum deft_status s = parse_prefix(p, len, name, &hs, &hl);
    if (s) return s;
    if (len - hs < hl) return npy_err(name, "truncated header%s", NULL);
    if ((s = parse_dict((const char *)p + hs, hl, name, &info))) return s;
    info.header_total = hs + hl;
    if ((s = check_size(&info, len - info.header_total, name))) return s;
    struct deft_tensor *t;
    if ((s = deft_tensor_create(info.dtype, &info.shape, &t))) return deft_wrap_error(s, "%s", name);
    if (info.data_bytes) memcpy(t->data, p + info.header_total, (size_t)info.data_bytes);
    if ((s = maybe_to_f32(&t, flags, name))) return s;
    *out = t;
    return DEFT_OK;
}

/* The file reader streams the data straight into the tensor (no second copy). */
static enum deft_status npy_read_file(const char *path, unsigned flags, struct deft_tensor **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) /* a missing file is the user's input error (exit 2), not a runtime failure */
        return deft_set_error(errno == ENOENT ? DEFT_ERR_NOT_FOUND : DEFT_ERR_IO, "cannot open %s: %s", path,
                              strerror(errno));
    enum deft_status s = DEFT_OK;
    char *hdr = NULL;
    struct deft_tensor *t = NULL;
    unsigned char pre[12];
    size_t got = fread(pre, 1, sizeof pre, f), hs, hl;
    struct npy_info info = {0};
    struct stat st;
    if ((s = parse_prefix(pre, got, path, &hs, &hl))) goto done;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        s = deft_set_error(DEFT_ERR_IO, "cannot read %s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)st.st_size < hs + hl) {
        s = npy_err(path, "truncated header%s", NULL);
        goto done;
    }
    hdr = deft_malloc(hl + 1);
    if (!hdr) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", path);
        goto done;
    }
    if (fseek(f, (long)hs, SEEK_SET) != 0 || fread(hdr, 1, hl, f) != hl) {
        s = npy_err(path, "truncated header%s", NULL);
        goto done;
    }
    if ((s = parse_dict(hdr, hl, path, &info))) goto done;
    info.header_total = hs + hl;
    if ((s = check_size(&info, (uint64_t)st.st_size - info.header_total, path))) goto done;
    if ((s = deft_tensor_create(info.dtype, &info.shape, &t))) {
        s = deft_wrap_error(s, "%s", path);
        goto done;
    }
    if (info.data_bytes && fread(t->data, 1, (size_t)info.data_bytes, f) != info.data_bytes) {
        s = ferror(f) ? deft_set_error(DEFT_ERR_IO, "cannot read %s: %s", path, strerror(errno))
                      : npy_err(path, "truncated data%s", NULL);
        goto done;
    }
    if ((s = maybe_to_f32(&t, flags, path))) goto done;
    *out = t;
    t = NULL;
done:
    deft_tensor_free(t);
    deft_free(hdr);
    fclose(f);
    return s;
}

enum deft_status deft_npy_read(const char *path, struct deft_tensor **out) {
    return npy_read_file(path, 0, out);
}

enum deft_status deft_npy_read_f32(const char *path, struct deft_tensor **out) {
    return npy_read_file(path, DEFT_NPY_TO_F32, out);
}

static const char *npy_descr(enum deft_dtype dt) {
    switch (dt) {
    case DEFT_F32: return "<f4";
    case DEFT_F64: return "<f8";
    case DEFT_F16: return "<f2";
    case DEFT_I8: return "|i1";
    case DEFT_U8: return "|u1";
    case DEFT_I32: return "<i4";
    case DEFT_I64: return "<i8";
    default: return NULL;
    }
}

enum deft_status deft_npy_write(const char *path, const struct deft_tensor *t) {
    size_t nbytes;
    enum deft_status s = deft_io_tensor_bytes(t, path, &nbytes);
    if (s) return s;
    const char *descr = npy_descr(t->dtype);
    if (!descr)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: .npy cannot hold dtype %s", path,
                              deft_dtype_name(t->dtype));
    /* header dict, then pad with spaces so data starts on a 64-byte boundary */
    char h[512];
    size_t n = (size_t)snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int i = 0; i < t->shape.ndim; i++)
        n += (size_t)snprintf(h + n, sizeof h - n, "%s%lld", i ? ", " : "",
                              (long long)t->shape.d[i]);
    n += (size_t)snprintf(h + n, sizeof h - n, "%s), }", t->shape.ndim == 1 ? "," : "");
    size_t total = 10 + n + 1;
    total = (total + 63) / 64 * 64;
    size_t hl = total - 10;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    memset(h + n, ' ', hl - 1 - n);
    h[hl - 1] = '\n';

    void *tmp = NULL;
    const void *data = t->data;
    if (nbytes && !deft_tensor_is_contiguous(t)) {
        tmp = deft_malloc(nbytes);
        if (!tmp) return deft_set_error(DEFT_ERR_NOMEM, "out of memory writing %s", path);
        deft_io_gather(t, tmp);
        data = tmp;
    }
    struct deft_atomic_file *w;
    if ((s = deft_atomic_open(path, &w))) goto done;
    if ((s = deft_atomic_write(w, pre, sizeof pre)) || (s = deft_atomic_write(w, h, hl)) ||
        (nbytes && (s = deft_atomic_write(w, data, nbytes)))) {
        deft_atomic_abort(w);
        goto done;
    }
    s = deft_atomic_commit(w);
done:
    deft_free(tmp);
    return s;
}

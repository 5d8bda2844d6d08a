/* schema.c - schema-table driven mapping of a spec tree onto a config struct
 * (spec module): defaults, type/range/required/oneof validation with
 * file:line:col messages and "did you mean", --set overrides, YAML printing
 * and --help-spec. The tables are plain data (see spec_impl.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "spec/spec_impl.h"

#define PATH_MAX_LEN 256

/* ---- scalar conversions ------------------------------------------------- */

bool deft_spec_parse_double(const char *s, double *out) {
    if (!s || !*s) return false;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    /* no hex floats, no "infinity"/"nan": specs want finite decimals */
    if (!((*p >= '0' && *p <= '9') || *p == '.')) return false;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s) return false;
    if (*end == 'f' || *end == 'F') end++; /* protobuf float suffix */
    if (*end || errno == ERANGE || !isfinite(v)) return false;
    *out = v;
    return true;
}

bool deft_spec_parse_int(const char *s, long long *out) {
    if (!s || !*s) return false;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!(*p >= '0' && *p <= '9')) return false;
    int base = (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) ? 16 : 10;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (end == s || *end || errno == ERANGE) return false;
    *out = v;
    return true;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static bool ieq(const char *a, const char *b) {
    while (*a && *b && lower((unsigned char)*a) == lower((unsigned char)*b)) a++, b++;
    return !*a && !*b;
}

bool deft_spec_parse_bool(const char *s, bool *out) {
    static const char *const t[] = {"true", "yes", "on", "1", "t"};
    static const char *const f[] = {"false", "no", "off", "0", "f"};
    for (int i = 0; i < 5; i++) {
        if (ieq(s, t[i])) return *out = true, true;
        if (ieq(s, f[i])) return *out = false, true;
    }
    return false;
}

void deft_spec_format_double(double v, char *buf, size_t n) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        char *end = NULL;
        if (strtod(buf, &end) == v) break;
    }
    /* keep it a float to a YAML reader: "1" -> "1.0" */
    if (!strpbrk(buf, ".eEn")) {
        size_t l = strlen(buf);
        if (l + 3 <= n) memcpy(buf + l, ".0", 3);
    }
}

/* ---- small helpers ------------------------------------------------------ */

static void *at_off(void *obj, size_t off) { return (char *)obj + off; }
static const void *at_coff(const void *obj, size_t off) { return (const char *)obj + off; }

/* "file:line:col" of a node (the key when `key` and it is a map member). */
static void loc(const struct deft_spec_node *n, bool key, char *buf, size_t sz) {
    /* list items have no key: fall back to the value's position */
    bool k = key && n->key_line > 0;
    int line = k ? n->key_line : n->line, col = k ? n->key_col : n->col;
    if (line <= 0)
        snprintf(buf, sz, "%s", n->file ? n->file : "?");
    else
        snprintf(buf, sz, "%s:%d:%d", n->file ? n->file : "?", line, col);
}

static void join(char *out, const char *path, const char *key) {
    if (path && *path)
        snprintf(out, PATH_MAX_LEN, "%s.%s", path, key);
    else
        snprintf(out, PATH_MAX_LEN, "%s", key);
}

static const char *type_name(const struct deft_spec_field *f) {
    switch (f->type) {
    case DEFT_SPEC_T_STRING: return "string";
    case DEFT_SPEC_T_INT: return "int";
    case DEFT_SPEC_T_FLOAT: return "float";
    case DEFT_SPEC_T_BOOL: return "bool";
    case DEFT_SPEC_T_ENUM: return "enum";
    case DEFT_SPEC_T_INT_LIST: return "[int]";
    case DEFT_SPEC_T_FLOAT_LIST: return "[float]";
    case DEFT_SPEC_T_STRING_LIST: return "[string]";
    case DEFT_SPEC_T_FLOAT_MAP: return "{key: float}";
    case DEFT_SPEC_T_MSG: return "block";
    case DEFT_SPEC_T_ANY: return "any";
    case DEFT_SPEC_T_STRING_MAP: return "{key: string}";
    case DEFT_SPEC_T_MSG_LIST: return "[block]";
    }
    return "?";
}

static const char *expect_text(enum deft_spec_type t) {
    switch (t) {
    case DEFT_SPEC_T_INT: case DEFT_SPEC_T_INT_LIST: return "an integer (e.g. 10)";
    case DEFT_SPEC_T_FLOAT: case DEFT_SPEC_T_FLOAT_LIST: case DEFT_SPEC_T_FLOAT_MAP:
        return "a number (e.g. 0.01)";
    case DEFT_SPEC_T_BOOL: return "true or false";
    case DEFT_SPEC_T_STRING: case DEFT_SPEC_T_STRING_LIST: case DEFT_SPEC_T_STRING_MAP:
        return "a string";
    default: return "a value";
    }
}

static void enum_choices(const struct deft_spec_enum_val *e, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    int last = -1;
    for (; e && e->name; e++) {
        if (e->value == last) continue; /* aliases */
        last = e->value;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", e->name);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
}

static const char *enum_name(const struct deft_spec_enum_val *e, int v) {
    for (; e && e->name; e++)
        if (e->value == v) return e->name;
    return "?";
}

static enum deft_status append_ignored(struct deft_spec_ctx *ctx, const char *path) {
    if (!ctx) return DEFT_OK;
    size_t old = ctx->ignored ? strlen(ctx->ignored) : 0, pl = strlen(path);
    if (ctx->ignored) { /* already listed? */
        const char *p = ctx->ignored;
        while ((p = strstr(p, path))) {
            bool start = p == ctx->ignored || p[-1] == ' ';
            bool end = p[pl] == 0 || p[pl] == ',';
            if (start && end) return DEFT_OK;
            p += pl;
        }
    }
    char *n = deft_realloc(ctx->ignored, old + pl + 3);
    if (!n) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (old) {
        memcpy(n + old, ", ", 2);
        memcpy(n + old + 2, path, pl + 1);
    } else {
        memcpy(n, path, pl + 1);
    }
    ctx->ignored = n;
    return DEFT_OK;
}

static bool pending_covers(const struct deft_spec_ctx *ctx, const char *path) {
    if (!ctx) return false;
    size_t pl = strlen(path);
    for (int i = 0; i < ctx->n_pending; i++) {
        const char *q = ctx->pending[i];
        if (q && strncmp(q, path, pl) == 0 && (q[pl] == 0 || q[pl] == '.')) return true;
    }
    return false;
}

/* Decode one UTF-8 sequence at p (strict: no overlong forms, no surrogates);
 * returns its length, 0 when invalid. */
static int utf8_next(const unsigned char *p, unsigned *cp) {
    if (p[0] < 0x80) return *cp = p[0], 1;
    int n = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!n) return 0;
    unsigned v = p[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return n;
}

static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned cp;
    while (*p) {
        int n = utf8_next(p, &cp);
        if (!n) return false;
        p += n;
    }
    return true;
}

/* ---- one scalar -> typed element --------------------------------------- */

union elem {
    long long i;
    double d;
    bool b;
    char *s;
};

static enum deft_status range_check(const struct deft_spec_field *f, const struct deft_spec_node *v,
                                    const char *path, double x) {
    char where[300], lim[64] = "", num[40];
    bool bad = false;
    if ((f->flags & DEFT_SPEC_MIN) && x < f->min) bad = true;
    if ((f->flags & DEFT_SPEC_MIN_EXCL) && x <= f->min) bad = true;
    if ((f->flags & DEFT_SPEC_MAX) && x > f->max) bad = true;
    if (!bad) return DEFT_OK;
    char a[32], b[32];
    deft_spec_format_double(f->min, a, sizeof a);
    deft_spec_format_double(f->max, b, sizeof b);
    if (f->type == DEFT_SPEC_T_INT || f->type == DEFT_SPEC_T_INT_LIST) {
        snprintf(a, sizeof a, "%lld", (long long)f->min);
        snprintf(b, sizeof b, "%lld", (long long)f->max);
    }
    if ((f->flags & (DEFT_SPEC_MIN | DEFT_SPEC_MIN_EXCL)) && (f->flags & DEFT_SPEC_MAX))
        snprintf(lim, sizeof lim, "%s %s and <= %s", (f->flags & DEFT_SPEC_MIN_EXCL) ? ">" : ">=", a, b);
    else if (f->flags & (DEFT_SPEC_MIN | DEFT_SPEC_MIN_EXCL))
        snprintf(lim, sizeof lim, "%s %s", (f->flags & DEFT_SPEC_MIN_EXCL) ? ">" : ">=", a);
    else
        snprintf(lim, sizeof lim, "<= %s", b);
    loc(v, false, where, sizeof where);
    snprintf(num, sizeof num, "%s", v->text ? v->text : "");
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s = %s is out of range: it must be %s", where, path,
                          num, lim);
}

static enum deft_status to_elem(const struct deft_spec_field *f, enum deft_spec_type t,
                                const struct deft_spec_node *v, const char *path, union elem *out) {
    char where[300];
    loc(v, false, where, sizeof where);
    if (v->kind == DEFT_SPEC_MAP || v->kind == DEFT_SPEC_LIST)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: expected %s, got a %s", where, path,
                              t == DEFT_SPEC_T_ENUM ? "a name" : expect_text(t),
                              v->kind == DEFT_SPEC_MAP ? "block" : "list");
    const char *text = v->kind == DEFT_SPEC_NULL ? "" : v->text;
    switch (t) {
    case DEFT_SPEC_T_STRING:
    case DEFT_SPEC_T_STRING_LIST:
    case DEFT_SPEC_T_STRING_MAP:
        if (!utf8_valid(text))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: the string is not valid UTF-8", where, path);
        out->s = deft_strdup(text);
        if (!out->s) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        return DEFT_OK;
    case DEFT_SPEC_T_INT:
    case DEFT_SPEC_T_INT_LIST: {
        long long x;
        if (v->quoted || !deft_spec_parse_int(text, &x)) {
            double d;
            const char *hint = v->quoted ? ": remove the quotes"
                               : deft_spec_parse_double(text, &d) ? ": write a whole number" : "";
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: expected %s, got %s'%.60s'%s", where,
                                  path, expect_text(t), v->quoted ? "the quoted string " : "", text, hint);
        }
        if (x < -2147483647LL || x > 2147483647LL)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s = %.40s is too large for an integer",
                                  where, path, text);
        enum deft_status s = range_check(f, v, path, (double)x);
        if (s) return s;
        out->i = x;
        return DEFT_OK;
    }
    case DEFT_SPEC_T_FLOAT:
    case DEFT_SPEC_T_FLOAT_LIST:
    case DEFT_SPEC_T_FLOAT_MAP: {
        double x;
        if (v->quoted || !deft_spec_parse_double(text, &x))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: expected %s, got %s'%.60s'%s", where,
                                  path, expect_text(t), v->quoted ? "the quoted string " : "", text,
                                  v->quoted ? ": remove the quotes" : "");
        enum deft_status s = range_check(f, v, path, x);
        if (s) return s;
        out->d = x;
        return DEFT_OK;
    }
    case DEFT_SPEC_T_BOOL: {
        bool b;
        if (v->quoted || !deft_spec_parse_bool(text, &b))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: expected true or false, got %s'%.60s'%s",
                                  where, path, v->quoted ? "the quoted string " : "", text,
                                  v->quoted ? ": remove the quotes" : "");
        out->b = b;
        return DEFT_OK;
    }
    case DEFT_SPEC_T_ENUM: {
        for (const struct deft_spec_enum_val *e = f->enums; e && e->name; e++)
            if (ieq(e->name, text)) {
                out->i = e->value;
                return DEFT_OK;
            }
        char choices[256], sug[96] = "";
        enum_choices(f->enums, choices, sizeof choices);
        int best = 99;
        const char *bn = NULL;
        for (const struct deft_spec_enum_val *e = f->enums; e && e->name; e++) {
            int dd = deft_spec_edit_distance(text, e->name);
            if (dd < best) best = dd, bn = e->name;
        }
        if (bn && best <= 2) snprintf(sug, sizeof sug, "; did you mean '%s'?", bn);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: '%.60s' is not one of: %s%s", where, path,
                              text, choices, sug);
    }
    default: return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: unsupported field type", where, path);
    }
}

/* ---- defaults / release -------------------------------------------------- */

static enum deft_status value_node(const char *text, const char *file, int line, int col,
                                   struct deft_spec_node **out);
static enum deft_status store(const struct deft_spec_field *f, void *obj,
                              const struct deft_spec_node *v, const char *path,
                              struct deft_spec_ctx *ctx);

static void release_field(const struct deft_spec_field *f, void *obj) {
    void *p = at_off(obj, f->offset);
    switch (f->type) {
    case DEFT_SPEC_T_STRING:
        deft_free(*(char **)p);
        *(char **)p = NULL;
        break;
    case DEFT_SPEC_T_INT_LIST:
    case DEFT_SPEC_T_FLOAT_LIST:
        deft_free(*(void **)p);
        *(void **)p = NULL;
        *(int *)at_off(obj, f->count_offset) = 0;
        break;
    case DEFT_SPEC_T_STRING_LIST: {
        char **l = *(char ***)p;
        int n = *(int *)at_off(obj, f->count_offset);
        for (int i = 0; l && i < n; i++) deft_free(l[i]);
        deft_free(l);
        *(char ***)p = NULL;
        *(int *)at_off(obj, f->count_offset) = 0;
        break;
    }
    case DEFT_SPEC_T_FLOAT_MAP: {
        struct deft_spec_kv *kv = *(struct deft_spec_kv **)p;
        int n = *(int *)at_off(obj, f->count_offset);
        for (int i = 0; kv && i < n; i++) deft_free(kv[i].key);
        deft_free(kv);
        *(struct deft_spec_kv **)p = NULL;
        *(int *)at_off(obj, f->count_offset) = 0;
        break;
    }
    case DEFT_SPEC_T_STRING_MAP: {
        struct deft_spec_str_kv *kv = *(struct deft_spec_str_kv **)p;
        int n = *(int *)at_off(obj, f->count_offset);
        for (int i = 0; kv && i < n; i++) deft_free(kv[i].key), deft_free(kv[i].value);
        deft_free(kv);
        *(struct deft_spec_str_kv **)p = NULL;
        *(int *)at_off(obj, f->count_offset) = 0;
        break;
    }
    case DEFT_SPEC_T_MSG_LIST: {
        char *arr = *(char **)p;
        int n = *(int *)at_off(obj, f->count_offset);
        for (int i = 0; arr && i < n; i++) deft_spec_release(f->sub, arr + (size_t)i * f->sub->size);
        deft_free(arr);
        *(char **)p = NULL;
        *(int *)at_off(obj, f->count_offset) = 0;
        break;
    }
    case DEFT_SPEC_T_MSG: deft_spec_release(f->sub, p); break;
    default: break;
    }
}

void deft_spec_release(const struct deft_spec_schema *s, void *obj) {
    if (!obj) return;
    for (int i = 0; i < s->n_fields; i++) release_field(&s->fields[i], obj);
}

enum deft_status deft_spec_defaults(const struct deft_spec_schema *s, void *obj) {
    for (int i = 0; i < s->n_fields; i++) {
        const struct deft_spec_field *f = &s->fields[i];
        if (f->type == DEFT_SPEC_T_ANY) continue;
        if (f->type == DEFT_SPEC_T_MSG) {
            if (f->count_offset != DEFT_SPEC_NO_OFFSET) *(bool *)at_off(obj, f->count_offset) = false;
            enum deft_status st = deft_spec_defaults(f->sub, at_off(obj, f->offset));
            if (st) return st;
            continue;
        }
        const char *def = f->def;
        if (!def) {
            switch (f->type) {
            case DEFT_SPEC_T_STRING: def = "\"\""; break;
            case DEFT_SPEC_T_INT: def = "0"; break;
            case DEFT_SPEC_T_FLOAT: def = "0.0"; break;
            case DEFT_SPEC_T_BOOL: def = "false"; break;
            case DEFT_SPEC_T_ENUM: def = f->enums && f->enums->name ? f->enums->name : ""; break;
            default: def = "[]"; break;
            }
        }
        struct deft_spec_node *v = NULL;
        enum deft_status st = value_node(def, "(default)", 0, 0, &v);
        if (!st) {
            struct deft_spec_field nf = *f;
            nf.flags &= ~(unsigned)(DEFT_SPEC_MIN | DEFT_SPEC_MAX | DEFT_SPEC_MIN_EXCL | DEFT_SPEC_IGNORED);
            st = store(&nf, obj, v, f->key, NULL);
        }
        deft_spec_node_free(v);
        if (st) return st;
    }
    return DEFT_OK;
}

/* ---- apply a tree -------------------------------------------------------- */

static enum deft_status store_list(const struct deft_spec_field *f, void *obj,
                                   const struct deft_spec_node *v, const char *path) {
    enum deft_spec_type t = f->type;
    int n = v->kind == DEFT_SPEC_LIST ? v->n : v->kind == DEFT_SPEC_NULL ? 0 : 1;
    size_t esz = t == DEFT_SPEC_T_INT_LIST ? sizeof(int) : t == DEFT_SPEC_T_FLOAT_LIST ? sizeof(double)
                                                                                       : sizeof(char *);
    void *arr = NULL;
    if (n > 0) {
        arr = deft_calloc((size_t)n, esz);
        if (!arr) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const struct deft_spec_node *item = v->kind == DEFT_SPEC_LIST ? v->kids[i] : v;
        union elem e;
        char ip[PATH_MAX_LEN];
        snprintf(ip, sizeof ip, "%s[%d]", path, i);
        enum deft_status s = to_elem(f, t, item, ip, &e);
        if (s) {
            if (t == DEFT_SPEC_T_STRING_LIST)
                for (int k = 0; k < i; k++) deft_free(((char **)arr)[k]);
            deft_free(arr);
            return s;
        }
        if (t == DEFT_SPEC_T_INT_LIST) ((int *)arr)[i] = (int)e.i;
        else if (t == DEFT_SPEC_T_FLOAT_LIST) ((double *)arr)[i] = e.d;
        else ((char **)arr)[i] = e.s;
    }
    release_field(f, obj);
    *(void **)at_off(obj, f->offset) = arr;
    *(int *)at_off(obj, f->count_offset) = n;
    return DEFT_OK;
}

/* Working entry of either map type (proto map<string, float|string>). */
struct any_kv {
    char *key;
    double d;
    char *s;
};

static void free_any_kv(struct any_kv *kv, int n) {
    for (int j = 0; kv && j < n; j++) deft_free(kv[j].key), deft_free(kv[j].s);
    deft_free(kv);
}

/* The old entries of a map field as working entries (copies). */
static enum deft_status old_entries(const struct deft_spec_field *f, void *obj, struct any_kv *kv) {
    int old_n = *(int *)at_off(obj, f->count_offset);
    bool str = f->type == DEFT_SPEC_T_STRING_MAP;
    for (int i = 0; i < old_n; i++) {
        const char *key, *sv = NULL;
        if (str) {
            const struct deft_spec_str_kv *o = &(*(struct deft_spec_str_kv **)at_off(obj, f->offset))[i];
            key = o->key, sv = o->value;
        } else {
            const struct deft_spec_kv *o = &(*(struct deft_spec_kv **)at_off(obj, f->offset))[i];
            key = o->key, kv[i].d = o->value;
        }
        kv[i].key = deft_strdup(key);
        kv[i].s = sv ? deft_strdup(sv) : NULL;
        if (!kv[i].key || (sv && !kv[i].s)) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    return DEFT_OK;
}

/* Move working entries into the field (its own array type); kv is consumed. */
static enum deft_status commit_entries(const struct deft_spec_field *f, void *obj, struct any_kv *kv,
                                       int used) {
    void *arr = NULL;
    if (f->type == DEFT_SPEC_T_STRING_MAP) {
        struct deft_spec_str_kv *o = used ? deft_calloc((size_t)used, sizeof *o) : NULL;
        if (used && !o) return free_any_kv(kv, used), deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        for (int j = 0; j < used; j++) o[j].key = kv[j].key, o[j].value = kv[j].s;
        arr = o;
    } else {
        struct deft_spec_kv *o = used ? deft_calloc((size_t)used, sizeof *o) : NULL;
        if (used && !o) return free_any_kv(kv, used), deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        for (int j = 0; j < used; j++) o[j].key = kv[j].key, o[j].value = kv[j].d, deft_free(kv[j].s);
        arr = o;
    }
    deft_free(kv);
    release_field(f, obj);
    *(void **)at_off(obj, f->offset) = arr;
    *(int *)at_off(obj, f->count_offset) = used;
    return DEFT_OK;
}

static enum deft_status store_map(const struct deft_spec_field *f, void *obj,
                                  const struct deft_spec_node *v, const char *path) {
    char where[300];
    bool str = f->type == DEFT_SPEC_T_STRING_MAP;
    loc(v, false, where, sizeof where);
    /* entries: a plain map {r: 1, g: 2}, or protobuf map entries {key: "r" value: 1} (one, or a list) */
    const struct deft_spec_node *const *items = NULL;
    const struct deft_spec_node *one = v;
    int n = 0;
    bool entries = false;
    if (v->kind == DEFT_SPEC_LIST) {
        items = (const struct deft_spec_node *const *)v->kids;
        n = v->n;
        entries = true;
    } else if (v->kind == DEFT_SPEC_MAP && deft_spec_map_get(v, "key") && deft_spec_map_get(v, "value") &&
               v->n == 2) {
        items = &one;
        n = 1;
        entries = true;
    } else if (v->kind == DEFT_SPEC_MAP) {
        items = (const struct deft_spec_node *const *)v->kids;
        n = v->n;
    } else if (v->kind != DEFT_SPEC_NULL) {
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: expected a mapping like %s, got '%.40s'", where,
                              path, str ? "{van: car, car: car}" : "{r: 103.9, g: 116.8, b: 123.7}",
                              v->text ? v->text : "");
    }
    /* merge into the entries already there (defaults, or the file under a --set) */
    int old_n = *(int *)at_off(obj, f->count_offset);
    struct any_kv *kv = old_n + n ? deft_calloc((size_t)(old_n + n), sizeof *kv) : NULL;
    if (old_n + n && !kv) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = old_entries(f, obj, kv);
    int used = old_n, fresh = old_n; /* kv[0..fresh) untouched old keys, kv[fresh..used) given here */
    for (int i = 0; !s && i < n; i++) {
        const struct deft_spec_node *it = items[i], *val = it;
        const char *key = it->key;
        char ip[PATH_MAX_LEN];
        if (entries) {
            const struct deft_spec_node *k = it->kind == DEFT_SPEC_MAP ? deft_spec_map_get(it, "key") : NULL;
            val = it->kind == DEFT_SPEC_MAP ? deft_spec_map_get(it, "value") : NULL;
            if (!k || !val || k->kind != DEFT_SPEC_SCALAR || it->n != 2) {
                loc(it, false, where, sizeof where);
                s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: each entry needs 'key: \"name\"' and 'value: %s'",
                                   where, path, str ? "\"name\"" : "number");
                break;
            }
            key = k->text;
        }
        if (!utf8_valid(key)) {
            loc(it, !entries, where, sizeof where);
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: key is not valid UTF-8", where, path);
            break;
        }
        int slot = -1;
        for (int j = 0; j < used; j++)
            if (strcmp(kv[j].key, key) == 0) slot = j;
        if (slot >= fresh) {
            loc(it, !entries, where, sizeof where);
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: key '%.40s' given twice", where, path, key);
            break;
        }
        union elem e;
        join(ip, path, key);
        s = to_elem(f, f->type, val, ip, &e);
        if (s) break;
        if (slot < 0) {
            kv[used].key = deft_strdup(key);
            if (!kv[used].key) {
                if (str) deft_free(e.s);
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                break;
            }
            slot = used++;
        } else { /* an old key given again: move it into the "given here" part */
            struct any_kv tmp = kv[slot];
            memmove(kv + slot, kv + slot + 1, (size_t)(used - slot - 1) * sizeof *kv);
            kv[used - 1] = tmp;
            fresh--;
            slot = used - 1;
        }
        if (str) {
            deft_free(kv[slot].s);
            kv[slot].s = e.s;
        } else {
            kv[slot].d = e.d;
        }
    }
    if (s) {
        free_any_kv(kv, old_n + n);
        return s;
    }
    return commit_entries(f, obj, kv, used);
}

static enum deft_status store_msg_list(const struct deft_spec_field *f, void *obj,
                                       const struct deft_spec_node *v, const char *path,
                                       struct deft_spec_ctx *ctx);

static enum deft_status store(const struct deft_spec_field *f, void *obj,
                              const struct deft_spec_node *v, const char *path,
                              struct deft_spec_ctx *ctx) {
    char where[300];
    if (f->flags & DEFT_SPEC_IGNORED) {
        enum deft_status s = append_ignored(ctx, path);
        if (s) return s;
    }
    if (f->type == DEFT_SPEC_T_ANY) return DEFT_OK;
    bool scalar_type = f->type == DEFT_SPEC_T_STRING || f->type == DEFT_SPEC_T_INT ||
                       f->type == DEFT_SPEC_T_FLOAT || f->type == DEFT_SPEC_T_BOOL ||
                       f->type == DEFT_SPEC_T_ENUM;
    if ((scalar_type || f->type == DEFT_SPEC_T_MSG) && v->kind == DEFT_SPEC_LIST && v->repeated) {
        loc(v, true, where, sizeof where);
        int last = v->n ? v->kids[v->n - 1]->key_line : 0;
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: '%s' is given %d times (last at line %d) but takes one value: keep one",
                              where, path, v->n, last);
    }
    switch (f->type) {
    case DEFT_SPEC_T_STRING: {
        union elem e;
        enum deft_status s = to_elem(f, f->type, v, path, &e);
        if (s) return s;
        char **dst = at_off(obj, f->offset);
        deft_free(*dst);
        *dst = e.s;
        return DEFT_OK;
    }
    case DEFT_SPEC_T_INT:
    case DEFT_SPEC_T_ENUM: {
        union elem e;
        enum deft_status s = to_elem(f, f->type, v, path, &e);
        if (s) return s;
        *(int *)at_off(obj, f->offset) = (int)e.i;
        return DEFT_OK;
    }
    case DEFT_SPEC_T_FLOAT: {
        union elem e;
        enum deft_status s = to_elem(f, f->type, v, path, &e);
        if (s) return s;
        *(double *)at_off(obj, f->offset) = e.d;
        return DEFT_OK;
    }
    case DEFT_SPEC_T_BOOL: {
        union elem e;
        enum deft_status s = to_elem(f, f->type, v, path, &e);
        if (s) return s;
        *(bool *)at_off(obj, f->offset) = e.b;
        return DEFT_OK;
    }
    case DEFT_SPEC_T_INT_LIST:
    case DEFT_SPEC_T_FLOAT_LIST:
    case DEFT_SPEC_T_STRING_LIST:
        if (v->kind == DEFT_SPEC_MAP) {
            loc(v, false, where, sizeof where);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: expected a list like [0, 1], got a block",
                                  where, path);
        }
        return store_list(f, obj, v, path);
    case DEFT_SPEC_T_FLOAT_MAP:
    case DEFT_SPEC_T_STRING_MAP: return store_map(f, obj, v, path);
    case DEFT_SPEC_T_MSG_LIST: return store_msg_list(f, obj, v, path, ctx);
    case DEFT_SPEC_T_MSG: {
        if (v->kind == DEFT_SPEC_SCALAR || v->kind == DEFT_SPEC_LIST) {
            loc(v, false, where, sizeof where);
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "%s: '%s' is a block: write '%s { ... }' (protobuf text) or '%s:' "
                                  "followed by indented keys (YAML)",
                                  where, path, f->key, f->key);
        }
        if (f->count_offset != DEFT_SPEC_NO_OFFSET) *(bool *)at_off(obj, f->count_offset) = true;
        if (v->kind == DEFT_SPEC_NULL) return DEFT_OK;
        return deft_spec_apply(f->sub, at_off(obj, f->offset), v, path, ctx);
    }
    default: return DEFT_OK;
    }
}

static const struct deft_spec_field *find_field(const struct deft_spec_schema *s, const char *key) {
    for (int i = 0; i < s->n_fields; i++)
        if (strcmp(s->fields[i].key, key) == 0) return &s->fields[i];
    return NULL;
}

/* Element i of a repeated block: a fresh defaulted struct filled from `item`
 * (a block, or null for all defaults). */
static enum deft_status fill_element(const struct deft_spec_field *f, void *el,
                                     const struct deft_spec_node *item, const char *path,
                                     struct deft_spec_ctx *ctx) {
    char where[300];
    enum deft_status s = deft_spec_defaults(f->sub, el);
    if (s) return s;
    if (item->kind == DEFT_SPEC_NULL) return DEFT_OK;
    if (item->kind != DEFT_SPEC_MAP) {
        loc(item, false, where, sizeof where);
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: '%s' is a block: write '%s { ... }' once per entry (protobuf text) or a "
                              "list of blocks (YAML)",
                              where, path, f->key);
    }
    return deft_spec_apply(f->sub, el, item, path, ctx);
}

static bool all_digits(const char *k) {
    if (!k || !*k || strlen(k) > 6) return false;
    for (; *k; k++)
        if (*k < '0' || *k > '9') return false;
    return true;
}

/* --set into a repeated block: `.N.field=...` edits entry N (N = count appends
 * one); `.field=...` edits the only entry. */
static enum deft_status override_msg_list(const struct deft_spec_field *f, void *obj,
                                          const struct deft_spec_node *v, const char *path,
                                          struct deft_spec_ctx *ctx) {
    char where[300], ip[PATH_MAX_LEN];
    int *cnt = at_off(obj, f->count_offset);
    char **arr = at_off(obj, f->offset);
    size_t sz = f->sub->size;
    loc(v, false, where, sizeof where);
    if (v->kind != DEFT_SPEC_MAP || v->n == 0 || !all_digits(v->kids[0]->key)) {
        if (*cnt != 1)
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "%s: %s has %d entries: pick one by its index, e.g. %s.0.<field>=...", where,
                                  path, *cnt, path);
        snprintf(ip, sizeof ip, "%s[0]", path);
        return deft_spec_apply(f->sub, *arr, v, ip, ctx);
    }
    const struct deft_spec_node *kid = v->kids[0];
    int idx = atoi(kid->key);
    if (idx > *cnt)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s has %d entries: index %d is out of range (0..%d)",
                              where, path, *cnt, idx, *cnt);
    snprintf(ip, sizeof ip, "%s[%d]", path, idx);
    if (idx == *cnt) { /* append */
        char *na = deft_realloc(*arr, (size_t)(*cnt + 1) * sz);
        if (!na) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        *arr = na;
        memset(na + (size_t)idx * sz, 0, sz);
        (*cnt)++;
        enum deft_status s = deft_spec_defaults(f->sub, na + (size_t)idx * sz);
        if (s) return s;
    }
    if (kid->kind != DEFT_SPEC_MAP)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s is a block: set one of its fields (%s.%d.<field>=...)",
                              where, ip, path, idx);
    return deft_spec_apply(f->sub, *arr + (size_t)idx * sz, kid, ip, ctx);
}

static enum deft_status store_msg_list(const struct deft_spec_field *f, void *obj,
                                       const struct deft_spec_node *v, const char *path,
                                       struct deft_spec_ctx *ctx) {
    char ip[PATH_MAX_LEN];
    if (ctx && ctx->skip_required && v->kind == DEFT_SPEC_MAP) return override_msg_list(f, obj, v, path, ctx);
    int n = v->kind == DEFT_SPEC_LIST ? v->n : v->kind == DEFT_SPEC_NULL ? 0 : 1;
    size_t sz = f->sub->size;
    char *arr = n ? deft_calloc((size_t)n, sz) : NULL;
    if (n && !arr) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = DEFT_OK;
    int done = 0;
    for (int i = 0; !s && i < n; i++) {
        snprintf(ip, sizeof ip, "%s[%d]", path, i);
        s = fill_element(f, arr + (size_t)i * sz, v->kind == DEFT_SPEC_LIST ? v->kids[i] : v, ip, ctx);
        done = i + 1; /* a failed element may be half-filled: release it too */
    }
    if (s) {
        for (int i = 0; i < done; i++) deft_spec_release(f->sub, arr + (size_t)i * sz);
        deft_free(arr);
        return s;
    }
    release_field(f, obj);
    *(char **)at_off(obj, f->offset) = arr;
    *(int *)at_off(obj, f->count_offset) = n;
    return DEFT_OK;
}

enum deft_status deft_spec_apply(const struct deft_spec_schema *s, void *obj,
                                 const struct deft_spec_node *map, const char *path,
                                 struct deft_spec_ctx *ctx) {
    char where[300], fp[PATH_MAX_LEN];
    if (map->kind != DEFT_SPEC_MAP) {
        loc(map, false, where, sizeof where);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: expected a block of 'key: value' fields",
                              where, *path ? path : "spec");
    }
    for (int i = 0; i < map->n; i++) {
        const struct deft_spec_node *kid = map->kids[i];
        const struct deft_spec_field *f = find_field(s, kid->key);
        if (!f) {
            int best = 99;
            const char *bn = NULL;
            for (int k = 0; k < s->n_fields; k++) {
                int d = deft_spec_edit_distance(kid->key, s->fields[k].key);
                if (d < best) best = d, bn = s->fields[k].key;
            }
            size_t kl = strlen(kid->key);
            int lim = kl <= 4 ? 1 : kl <= 8 ? 2 : 3;
            char sug[128] = "", hint[160] = "";
            if (bn && best <= lim) snprintf(sug, sizeof sug, "; did you mean '%s'?", bn);
            if (ctx && ctx->help_cmd) snprintf(hint, sizeof hint, " ('%s' lists every field)", ctx->help_cmd);
            loc(kid, true, where, sizeof where);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: unknown key '%.60s' %s%s%s%s", where, kid->key,
                                  *path ? "in " : "at the top level", path, sug, hint);
        }
        join(fp, path, f->key);
        enum deft_status st = store(f, obj, kid, fp, ctx);
        if (st) return st;
    }
    /* oneof groups: at most one member; one required when a member is REQUIRED */
    for (int i = 0; i < s->n_fields; i++) {
        const struct deft_spec_field *f = &s->fields[i];
        if (!f->oneof) continue;
        bool first = true;
        for (int k = 0; k < i; k++)
            if (s->fields[k].oneof && strcmp(s->fields[k].oneof, f->oneof) == 0) first = false;
        if (!first) continue;
        const struct deft_spec_node *seen = NULL;
        bool required = false;
        char names[200] = "";
        size_t used = 0;
        for (int k = i; k < s->n_fields; k++) {
            const struct deft_spec_field *g = &s->fields[k];
            if (!g->oneof || strcmp(g->oneof, f->oneof) != 0) continue;
            if (g->flags & DEFT_SPEC_REQUIRED) required = true;
            int w = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", g->key);
            if (w > 0 && (size_t)w < sizeof names - used) used += (size_t)w;
            const struct deft_spec_node *m = deft_spec_map_get(map, g->key);
            if (!m) continue;
            if (seen) {
                loc(m, true, where, sizeof where);
                return deft_set_error(DEFT_ERR_INVALID_ARG,
                                      "%s: '%s' and '%s' (line %d) are alternatives in %s: keep only one",
                                      where, g->key, seen->key, seen->key_line, *path ? path : "the spec");
            }
            seen = m;
        }
        if (!seen && required && !(ctx && ctx->skip_required)) {
            bool covered = false;
            for (int k = i; k < s->n_fields && !covered; k++) {
                const struct deft_spec_field *g = &s->fields[k];
                if (!g->oneof || strcmp(g->oneof, f->oneof) != 0) continue;
                join(fp, path, g->key);
                covered = pending_covers(ctx, fp);
            }
            if (!covered) {
                loc(map, true, where, sizeof where);
                return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s needs one of: %s; add one such block",
                                      where, *path ? path : "the spec", names);
            }
        }
    }
    if (ctx && ctx->skip_required) return DEFT_OK;
    for (int i = 0; i < s->n_fields; i++) {
        const struct deft_spec_field *f = &s->fields[i];
        if (!(f->flags & DEFT_SPEC_REQUIRED) || f->oneof) continue;
        if (deft_spec_map_get(map, f->key)) continue;
        join(fp, path, f->key);
        if (pending_covers(ctx, fp)) continue;
        loc(map, true, where, sizeof where);
        const char *how = f->type == DEFT_SPEC_T_MSG ? "{ ... }" : ": <value>";
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: %s is missing required field '%s' (%s: %s); add '%s%s%s' here",
                              where, *path ? path : "the spec", f->key, type_name(f),
                              f->help ? f->help : "", f->key, f->type == DEFT_SPEC_T_MSG ? " " : "", how);
    }
    return DEFT_OK;
}

/* ---- --set --------------------------------------------------------------- */

static char *dup_range(const char *a, const char *b) {
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    char *d = deft_malloc((size_t)(b - a) + 1);
    if (!d) return NULL;
    memcpy(d, a, (size_t)(b - a));
    d[b - a] = 0;
    return d;
}

/* A scalar node from [a, b): quotes stripped (and remembered). */
static enum deft_status scalar_from(const char *a, const char *b, const char *file, int line, int col,
                                    struct deft_spec_node **out) {
    *out = NULL;
    struct deft_spec_node *n = deft_spec_node_new(DEFT_SPEC_SCALAR, file, line, col);
    if (!n) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    n->text = dup_range(a, b);
    if (!n->text) {
        deft_spec_node_free(n);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    size_t l = strlen(n->text);
    if (l >= 2 && (n->text[0] == '"' || n->text[0] == '\'') && n->text[l - 1] == n->text[0]) {
        memmove(n->text, n->text + 1, l - 2);
        n->text[l - 2] = 0;
        n->quoted = true;
    }
    *out = n;
    return DEFT_OK;
}

/* "[a, b]" -> LIST, otherwise a SCALAR. */
static enum deft_status value_node(const char *text, const char *file, int line, int col,
                                   struct deft_spec_node **out) {
    const char *a = text, *b = text + strlen(text);
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    if (b - a >= 2 && *a == '[' && b[-1] == ']') {
        struct deft_spec_node *l = deft_spec_node_new(DEFT_SPEC_LIST, file, line, col);
        if (!l) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        const char *p = a + 1, *end = b - 1;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        while (p < end) {
            const char *q = p;
            while (q < end && *q != ',') q++;
            struct deft_spec_node *it = NULL;
            enum deft_status s = scalar_from(p, q, file, line, col, &it);
            if (!s) s = deft_spec_node_push(l, it);
            if (s) {
                deft_spec_node_free(l);
                return s;
            }
            p = q < end ? q + 1 : q;
        }
        *out = l;
        return DEFT_OK;
    }
    return scalar_from(a, b, file, line, col, out);
}

enum deft_status deft_spec_override_tree(const char *arg, int index, const char *label,
                                         struct deft_spec_node **out, char **path_out) {
    *out = NULL;
    *path_out = NULL;
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: --set expects key.path=value (e.g. train_config.n_epochs=5)", label);
    for (const char *p = arg; p < eq; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '_' || *p == '.';
        if (!ok || (*p == '.' && (p == arg || p[1] == '.' || p + 1 == eq)))
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "%s: bad key path '%.*s': use names joined by dots (train_config.n_epochs)",
                                  label, (int)(eq - arg), arg);
    }
    char *path = dup_range(arg, eq);
    if (!path) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    struct deft_spec_node *root = deft_spec_node_new(DEFT_SPEC_MAP, label, 0, 0), *cur = root;
    enum deft_status s = root ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    const char *p = path;
    while (!s) {
        const char *dot = strchr(p, '.');
        const char *e = dot ? dot : p + strlen(p);
        struct deft_spec_node *kid = NULL;
        if (dot) {
            kid = deft_spec_node_new(DEFT_SPEC_MAP, label, 0, 0);
            if (!kid) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        } else {
            s = value_node(eq + 1, label, 0, 0, &kid);
        }
        if (s) break;
        kid->key = dup_range(p, e);
        if (!kid->key) {
            deft_spec_node_free(kid);
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            break;
        }
        kid->key_line = kid->key_col = 0;
        s = deft_spec_node_push(cur, kid);
        if (s || !dot) break;
        cur = kid;
        p = dot + 1;
    }
    (void)index;
    if (s) {
        deft_spec_node_free(root);
        deft_free(path);
        return s;
    }
    *out = root;
    *path_out = path;
    return DEFT_OK;
}

void deft_spec_override_oneofs(const struct deft_spec_schema *s, void *obj,
                               const struct deft_spec_node *tree) {
    if (!tree || tree->kind != DEFT_SPEC_MAP) return;
    for (int i = 0; i < tree->n; i++) {
        const struct deft_spec_field *f = find_field(s, tree->kids[i]->key);
        if (!f || f->type != DEFT_SPEC_T_MSG) continue;
        if (f->oneof)
            for (int k = 0; k < s->n_fields; k++) {
                const struct deft_spec_field *g = &s->fields[k];
                if (g != f && g->oneof && strcmp(g->oneof, f->oneof) == 0 &&
                    g->count_offset != DEFT_SPEC_NO_OFFSET)
                    *(bool *)at_off(obj, g->count_offset) = false;
            }
        deft_spec_override_oneofs(f->sub, at_off(obj, f->offset), tree->kids[i]);
    }
}

/* ---- printing ------------------------------------------------------------ */

/* YAML double-quoted string; characters YAML does not allow raw (C0/C1
 * controls, U+FFFE/U+FFFF) or reads as line breaks (U+2028/U+2029) are escaped, so the text reads back to the same bytes. */
static void print_string(FILE *f, const char *s) {
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned cp;
        int n = utf8_next(p, &cp);
        if (!n) { /* cannot happen: strings are checked on the way in */
            fprintf(f, "\\x%02x", *p);
            p++;
            continue;
        }
        if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (int)cp);
        else if (cp == '\n') fputs("\\n", f);
        else if (cp == '\t') fputs("\\t", f);
        else if (cp == '\r') fputs("\\r", f);
        else if (cp < 0x20 || cp == 0x7f) fprintf(f, "\\x%02x", cp);
        else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff ||
                 cp == 0xfffe || cp == 0xffff) /* U+2028/9: YAML line breaks, folded if raw */
            fprintf(f, "\\u%04x", cp);
        else fwrite(p, 1, (size_t)n, f);
        p += n;
    }
    fputc('"', f);
}

static void print_double(FILE *f, double v) {
    char b[40];
    deft_spec_format_double(v, b, sizeof b);
    fputs(b, f);
}

/* Same value in a and b (field f of two structs of one schema)? */
static bool field_equal(const struct deft_spec_field *fd, const void *a, const void *b);

static bool msg_equal(const struct deft_spec_schema *s, const void *a, const void *b) {
    for (int i = 0; i < s->n_fields; i++)
        if (!field_equal(&s->fields[i], a, b)) return false;
    return true;
}

static bool field_equal(const struct deft_spec_field *fd, const void *a, const void *b) {
    const void *pa = at_coff(a, fd->offset), *pb = at_coff(b, fd->offset);
    int na = 0, nb = 0;
    if (fd->type >= DEFT_SPEC_T_INT_LIST && fd->type <= DEFT_SPEC_T_FLOAT_MAP) {
        na = *(const int *)at_coff(a, fd->count_offset);
        nb = *(const int *)at_coff(b, fd->count_offset);
        if (na != nb) return false;
    }
    switch (fd->type) {
    case DEFT_SPEC_T_STRING: return strcmp(*(char *const *)pa, *(char *const *)pb) == 0;
    case DEFT_SPEC_T_INT: case DEFT_SPEC_T_ENUM: return *(const int *)pa == *(const int *)pb;
    case DEFT_SPEC_T_FLOAT: return *(const double *)pa == *(const double *)pb;
    case DEFT_SPEC_T_BOOL: return *(const bool *)pa == *(const bool *)pb;
    case DEFT_SPEC_T_INT_LIST:
        return na == 0 || memcmp(*(int *const *)pa, *(int *const *)pb, (size_t)na * sizeof(int)) == 0;
    case DEFT_SPEC_T_FLOAT_LIST:
        for (int k = 0; k < na; k++)
            if ((*(double *const *)pa)[k] != (*(double *const *)pb)[k]) return false;
        return true;
    case DEFT_SPEC_T_STRING_LIST:
        for (int k = 0; k < na; k++)
            if (strcmp((*(char **const *)pa)[k], (*(char **const *)pb)[k]) != 0) return false;
        return true;
    case DEFT_SPEC_T_FLOAT_MAP:
        for (int k = 0; k < na; k++) {
            const struct deft_spec_kv *x = &(*(struct deft_spec_kv *const *)pa)[k];
            const struct deft_spec_kv *y = &(*(struct deft_spec_kv *const *)pb)[k];
            if (strcmp(x->key, y->key) != 0 || x->value != y->value) return false;
        }
        return true;
    case DEFT_SPEC_T_MSG:
        if (fd->count_offset != DEFT_SPEC_NO_OFFSET &&
            *(const bool *)at_coff(a, fd->count_offset) != *(const bool *)at_coff(b, fd->count_offset))
            return false;
        return msg_equal(fd->sub, pa, pb);
    case DEFT_SPEC_T_STRING_MAP:
    case DEFT_SPEC_T_MSG_LIST: {
        na = *(const int *)at_coff(a, fd->count_offset);
        nb = *(const int *)at_coff(b, fd->count_offset);
        if (na != nb) return false;
        for (int k = 0; k < na; k++) {
            if (fd->type == DEFT_SPEC_T_MSG_LIST) {
                size_t off = (size_t)k * fd->sub->size;
                if (!msg_equal(fd->sub, *(char *const *)pa + off, *(char *const *)pb + off)) return false;
                continue;
            }
            const struct deft_spec_str_kv *x = &(*(struct deft_spec_str_kv *const *)pa)[k];
            const struct deft_spec_str_kv *y = &(*(struct deft_spec_str_kv *const *)pb)[k];
            if (strcmp(x->key, y->key) != 0 || strcmp(x->value, y->value) != 0) return false;
        }
        return true;
    }
    default: return true;
    }
}

void deft_spec_print(const struct deft_spec_schema *s, const void *obj, const void *defaults, FILE *f,
                     int indent) {
    for (int i = 0; i < s->n_fields; i++) {
        const struct deft_spec_field *fd = &s->fields[i];
        const void *p = at_coff(obj, fd->offset);
        if (fd->type == DEFT_SPEC_T_ANY) continue;
        if ((fd->flags & DEFT_SPEC_IGNORED) && defaults && field_equal(fd, obj, defaults)) continue;
        if (fd->type == DEFT_SPEC_T_MSG && fd->count_offset != DEFT_SPEC_NO_OFFSET &&
            !*(const bool *)at_coff(obj, fd->count_offset))
            continue;
        fprintf(f, "%*s%s:", indent, "", fd->key);
        int n = (fd->type >= DEFT_SPEC_T_INT_LIST && fd->type <= DEFT_SPEC_T_FLOAT_MAP)
                    ? *(const int *)at_coff(obj, fd->count_offset)
                    : 0;
        switch (fd->type) {
        case DEFT_SPEC_T_STRING: fputc(' ', f); print_string(f, *(char *const *)p); break;
        case DEFT_SPEC_T_INT: fprintf(f, " %d", *(const int *)p); break;
        case DEFT_SPEC_T_FLOAT: fputc(' ', f); print_double(f, *(const double *)p); break;
        case DEFT_SPEC_T_BOOL: fputs(*(const bool *)p ? " true" : " false", f); break;
        case DEFT_SPEC_T_ENUM: fprintf(f, " %s", enum_name(fd->enums, *(const int *)p)); break;
        case DEFT_SPEC_T_INT_LIST:
            fputs(" [", f);
            for (int k = 0; k < n; k++) fprintf(f, "%s%d", k ? ", " : "", (*(int *const *)p)[k]);
            fputc(']', f);
            break;
        case DEFT_SPEC_T_FLOAT_LIST:
            fputs(" [", f);
            for (int k = 0; k < n; k++) {
                if (k) fputs(", ", f);
                print_double(f, (*(double *const *)p)[k]);
            }
            fputc(']', f);
            break;
        case DEFT_SPEC_T_STRING_LIST:
            fputs(" [", f);
            for (int k = 0; k < n; k++) {
                if (k) fputs(", ", f);
                print_string(f, (*(char **const *)p)[k]);
            }
            fputc(']', f);
            break;
        case DEFT_SPEC_T_FLOAT_MAP:
            fputs(" {", f);
            for (int k = 0; k < n; k++) {
                const struct deft_spec_kv *kv = &(*(struct deft_spec_kv *const *)p)[k];
                if (k) fputs(", ", f);
                print_string(f, kv->key);
                fputs(": ", f);
                print_double(f, kv->value);
            }
            fputc('}', f);
            break;
        case DEFT_SPEC_T_MSG:
            fputc('\n', f);
            deft_spec_print(fd->sub, p, defaults ? at_coff(defaults, fd->offset) : NULL, f, indent + 2);
            continue;
        case DEFT_SPEC_T_STRING_MAP: {
            int m = *(const int *)at_coff(obj, fd->count_offset);
            fputs(" {", f);
            for (int k = 0; k < m; k++) {
                const struct deft_spec_str_kv *kv = &(*(struct deft_spec_str_kv *const *)p)[k];
                if (k) fputs(", ", f);
                print_string(f, kv->key);
                fputs(": ", f);
                print_string(f, kv->value);
            }
            fputc('}', f);
            break;
        }
        case DEFT_SPEC_T_MSG_LIST: {
            /* a block list: "-" then the element's fields indented below it */
            int m = *(const int *)at_coff(obj, fd->count_offset);
            if (!m) {
                fputs(" []\n", f);
                continue;
            }
            fputc('\n', f);
            for (int k = 0; k < m; k++) {
                fprintf(f, "%*s-\n", indent + 2, "");
                deft_spec_print(fd->sub, *(char *const *)p + (size_t)k * fd->sub->size, NULL, f, indent + 4);
            }
            continue;
        }
        default: break;
        }
        fputc('\n', f);
    }
}

void deft_spec_help(const struct deft_spec_schema *s, FILE *f, const char *prefix) {
    char fp[PATH_MAX_LEN];
    for (int i = 0; i < s->n_fields; i++) {
        const struct deft_spec_field *fd = &s->fields[i];
        join(fp, prefix, fd->key);
        char def[96] = "", range[96] = "", tags[160] = "";
        if (fd->type == DEFT_SPEC_T_MSG || fd->type == DEFT_SPEC_T_ANY)
            snprintf(def, sizeof def, "-");
        else if (fd->def)
            snprintf(def, sizeof def, "%s", fd->def);
        else
            snprintf(def, sizeof def, "%s", fd->type == DEFT_SPEC_T_STRING ? "\"\""
                                          : fd->type == DEFT_SPEC_T_BOOL  ? "false"
                                          : fd->type == DEFT_SPEC_T_ENUM  ? enum_name(fd->enums, 0)
                                          : fd->type == DEFT_SPEC_T_FLOAT_MAP ? "{}"
                                          : fd->type == DEFT_SPEC_T_STRING_MAP ? "{}"
                                          : fd->type >= DEFT_SPEC_T_INT_LIST ? "[]"
                                                                            : "0");
        char a[32], b[32];
        deft_spec_format_double(fd->min, a, sizeof a);
        deft_spec_format_double(fd->max, b, sizeof b);
        if (fd->type == DEFT_SPEC_T_INT || fd->type == DEFT_SPEC_T_INT_LIST) {
            snprintf(a, sizeof a, "%lld", (long long)fd->min);
            snprintf(b, sizeof b, "%lld", (long long)fd->max);
        }
        bool lo = fd->flags & (DEFT_SPEC_MIN | DEFT_SPEC_MIN_EXCL), hi = fd->flags & DEFT_SPEC_MAX;
        const char *op = (fd->flags & DEFT_SPEC_MIN_EXCL) ? ">" : ">=";
        if (lo && hi) snprintf(range, sizeof range, " [%s %s, <= %s]", op, a, b);
        else if (lo) snprintf(range, sizeof range, " [%s %s]", op, a);
        else if (hi) snprintf(range, sizeof range, " [<= %s]", b);
        if (fd->type == DEFT_SPEC_T_ENUM) {
            char ch[200];
            enum_choices(fd->enums, ch, sizeof ch);
            snprintf(range, sizeof range, " {%s}", ch);
        }
        snprintf(tags, sizeof tags, "%s%s%s%s%s",
                 (fd->flags & DEFT_SPEC_REQUIRED) ? (fd->oneof ? " (one of the group required)" : " (required)") : "",
                 fd->oneof ? " (alternative: " : "", fd->oneof ? fd->oneof : "", fd->oneof ? ")" : "",
                 (fd->flags & DEFT_SPEC_IGNORED) ? " (accepted, not used by deft yet)"
                 : (fd->flags & DEFT_SPEC_DEFT) ? " (deft extension)" : "");
        fprintf(f, "%-48s %-12s %-12s %s%s%s\n", fp, type_name(fd), def, fd->help ? fd->help : "", range, tags);
        if (fd->type == DEFT_SPEC_T_MSG) deft_spec_help(fd->sub, f, fp);
        if (fd->type == DEFT_SPEC_T_MSG_LIST) {
            char ep[PATH_MAX_LEN];
            snprintf(ep, sizeof ep, "%s[]", fp);
            deft_spec_help(fd->sub, f, ep);
        }
    }
}

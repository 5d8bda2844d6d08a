/* spec_load.c - the load path every spec shares (spec module): read the file,
 * detect its flavour, check and apply --set overrides around the schema
 * mapping, and find where a field was written for later messages. The
 * classification spec predates it and keeps its own copy for now. */
#include <errno.h>
#include <string.h>
#include "spec/spec_impl.h"

enum deft_status deft_spec_read_file(const char *path, char **text, size_t *n_out) {
    *text = NULL;
    *n_out = 0;
    if (!path) return deft_set_error(DEFT_ERR_INVALID_ARG, "no spec file given (-e spec.txt)");
    FILE *f = fopen(path, "rb");
    if (!f && (errno == ENOENT || errno == ENOTDIR))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "spec file '%s' does not exist (check the -e path)", path);
    if (!f) return deft_set_error(DEFT_ERR_IO, "cannot open spec file '%s': %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = deft_malloc(cap);
    enum deft_status s = buf ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    while (!s) {
        if (n + 1 >= cap) { /* +1: room for the NUL */
            if (cap >= DEFT_SPEC_MAX_BYTES) {
                s = deft_set_error(DEFT_ERR_PARSE, "%s: spec file too large (over %u bytes)", path,
                                   DEFT_SPEC_MAX_BYTES);
                break;
            }
            char *nb = deft_realloc(buf, cap * 2);
            if (!nb) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) s = deft_set_error(DEFT_ERR_IO, "cannot read spec file '%s'", path);
            break;
        }
    }
    fclose(f);
    if (s) {
        deft_free(buf);
        return s;
    }
    buf[n] = 0;
    *text = buf;
    *n_out = n;
    return DEFT_OK;
}

static bool ends_with_ci(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return false;
    for (size_t i = 0; i < b; i++) {
        char c = s[a - b + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != suf[i]) return false;
    }
    return true;
}

/* Protobuf text when the first field is `name {` / `name: {` / `name <`. */
static bool first_field_opens_block(const char *t, size_t n) {
    size_t i = 0;
    for (;;) {
        while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n')) i++;
        if (i < n && t[i] == '#') {
            while (i < n && t[i] != '\n') i++;
            continue;
        }
        break;
    }
    size_t st = i;
    while (i < n && ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
                     (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
        i++;
    if (i == st) return false;
    while (i < n && (t[i] == ' ' || t[i] == '\t')) i++;
    if (i < n && t[i] == ':') {
        i++;
        while (i < n && (t[i] == ' ' || t[i] == '\t')) i++;
    }
    return i < n && (t[i] == '{' || t[i] == '<');
}

enum deft_spec_format deft_spec_detect_format(const char *name, const char *text, size_t n) {
    static const char *const proto_ext[] = {".txt", ".prototxt", ".pbtxt", ".cfg", ".spec"};
    for (size_t i = 0; name && i < sizeof proto_ext / sizeof *proto_ext; i++)
        if (ends_with_ci(name, proto_ext[i])) return DEFT_SPEC_FORMAT_PROTOTXT;
    if (name && (ends_with_ci(name, ".yaml") || ends_with_ci(name, ".yml"))) return DEFT_SPEC_FORMAT_YAML;
    return first_field_opens_block(text, n) ? DEFT_SPEC_FORMAT_PROTOTXT : DEFT_SPEC_FORMAT_YAML;
}

const struct deft_spec_node *deft_spec_node_at(const struct deft_spec_node *root, const char *path) {
    char key[128];
    const struct deft_spec_node *n = root;
    while (n && *path) {
        const char *dot = strchr(path, '.');
        size_t l = dot ? (size_t)(dot - path) : strlen(path);
        if (l >= sizeof key) return NULL;
        memcpy(key, path, l);
        key[l] = 0;
        n = deft_spec_map_get(n, key);
        path = dot ? dot + 1 : path + l;
    }
    return n;
}

void deft_spec_where(const struct deft_spec_node *root, const char *file, const char *path, char *buf,
                     size_t n) {
    const struct deft_spec_node *v = root ? deft_spec_node_at(root, path) : NULL;
    if (v && v->kind == DEFT_SPEC_LIST && v->n > 0) v = v->kids[0]; /* repeated field: its first line */
    if (v && v->line > 0)
        snprintf(buf, n, "%s:%d:%d", v->file, v->line, v->col);
    else
        snprintf(buf, n, "%s", file ? file : "spec");
}

/* Overrides parsed up front: syntax errors before the file, and their paths
 * tell the mapper which required fields are still to come. */
struct overrides {
    int n;
    struct deft_spec_node **trees;
    char **paths, **labels;
};

static void overrides_free(struct overrides *o) {
    for (int i = 0; i < o->n; i++) {
        if (o->trees) deft_spec_node_free(o->trees[i]);
        if (o->paths) deft_free(o->paths[i]);
        if (o->labels) deft_free(o->labels[i]);
    }
    deft_free(o->trees);
    deft_free(o->paths);
    deft_free(o->labels);
    memset(o, 0, sizeof *o);
}

static enum deft_status overrides_parse(const char *const *ov, int n, struct overrides *o) {
    memset(o, 0, sizeof *o);
    if (n <= 0) return DEFT_OK;
    o->trees = deft_calloc((size_t)n, sizeof *o->trees);
    o->paths = deft_calloc((size_t)n, sizeof *o->paths);
    o->labels = deft_calloc((size_t)n, sizeof *o->labels);
    o->n = n;
    if (!o->trees || !o->paths || !o->labels) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *arg = ov[i] ? ov[i] : "";
        size_t l = strlen(arg);
        if (l > 4096) return deft_set_error(DEFT_ERR_INVALID_ARG, "--set #%d: argument too long", i + 1);
        o->labels[i] = deft_malloc(l + 16);
        if (!o->labels[i]) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        snprintf(o->labels[i], l + 16, "--set '%s'", arg);
        enum deft_status s = deft_spec_override_tree(arg, i + 1, o->labels[i], &o->trees[i], &o->paths[i]);
        if (s) return s;
    }
    return DEFT_OK;
}

enum deft_status deft_spec_load_into(const struct deft_spec_schema *sch, void *obj, const char *text,
                                     size_t n, const char *file, enum deft_spec_format fmt,
                                     const char *const *ov, int n_ov, const char *help_cmd,
                                     struct deft_spec_node **tree_out, char **ignored_out,
                                     enum deft_spec_format *fmt_out) {
    *tree_out = NULL;
    *ignored_out = NULL;
    if (n_ov < 0 || (n_ov > 0 && !ov)) return deft_set_error(DEFT_ERR_INVALID_ARG, "bad override list");
    struct overrides o;
    struct deft_spec_node *tree = NULL;
    struct deft_spec_ctx ctx = {.help_cmd = help_cmd};
    enum deft_status s = overrides_parse(ov, n_ov, &o);
    if (!s) {
        if (fmt == DEFT_SPEC_FORMAT_AUTO || fmt == DEFT_SPEC_FORMAT_TAO_PYT)
            fmt = deft_spec_detect_format(file, text, n);
        s = fmt == DEFT_SPEC_FORMAT_PROTOTXT ? deft_spec_parse_prototxt(text, n, file, &tree)
                                             : deft_spec_parse_yaml(text, n, file, &tree);
    }
    if (!s) s = deft_spec_defaults(sch, obj);
    if (!s) {
        ctx.pending = (const char *const *)o.paths;
        ctx.n_pending = o.n;
        s = deft_spec_apply(sch, obj, tree, "", &ctx);
    }
    for (int i = 0; !s && i < o.n; i++) {
        struct deft_spec_ctx octx = {.skip_required = true, .help_cmd = help_cmd, .ignored = ctx.ignored};
        s = deft_spec_apply(sch, obj, o.trees[i], "", &octx);
        ctx.ignored = octx.ignored;
        if (!s) deft_spec_override_oneofs(sch, obj, o.trees[i]);
    }
    if (!s && !ctx.ignored) {
        ctx.ignored = deft_strdup("");
        if (!ctx.ignored) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    overrides_free(&o);
    if (s) {
        deft_spec_node_free(tree);
        deft_free(ctx.ignored);
        return s;
    }
    *tree_out = tree;
    *ignored_out = ctx.ignored;
    if (fmt_out) *fmt_out = fmt;
    return DEFT_OK;
}

enum deft_status deft_spec_parse_resolved(const struct deft_spec_schema *sch, void *obj, const char *text, size_t n,
                                          const char *name, enum deft_spec_format fmt, const char *const *ov,
                                          int n_ov, const char *help_cmd, deft_spec_resolve_fn resolve,
                                          char **file_out, char **ignored_out, enum deft_spec_format *fmt_out) {
    char *file = deft_strdup(name ? name : "spec");
    if (!file) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    struct deft_spec_node *tree = NULL;
    char *ignored = NULL;
    enum deft_spec_format got = DEFT_SPEC_FORMAT_AUTO;
    enum deft_status s = deft_spec_load_into(sch, obj, text ? text : "", text ? n : 0, file, fmt, ov, n_ov, help_cmd,
                                             &tree, &ignored, &got);
    if (!s) {
        struct deft_spec_origin o = {tree, file, ov, n_ov};
        s = resolve(obj, &o);
    }
    deft_spec_node_free(tree);
    if (s) {
        deft_free(ignored);
        deft_free(file);
        return s;
    }
    *file_out = file;
    *ignored_out = ignored;
    *fmt_out = got;
    return DEFT_OK;
}

/* spec_origin.c - where a spec value came from, for messages: the last --set
 * that wrote it, else its place in the file (shared by the task specs'
 * semantic checks, which run after the schema has filled the struct). */
#include <string.h>
#include "spec/spec_impl.h"

/* A --set path of length sl touches `path` when one is a dotted prefix of the other. */
static bool path_overlaps(const char *set, size_t sl, const char *path) {
    size_t pl = strlen(path), m = sl < pl ? sl : pl;
    if (strncmp(set, path, m) != 0) return false;
    return sl == pl || (sl < pl && path[sl] == '.') || (pl < sl && set[pl] == '.');
}

const char *deft_spec_override_of(const struct deft_spec_origin *o, const char *path) {
    for (int i = o->n_ov - 1; i >= 0; i--) {
        const char *a = o->ov[i] ? o->ov[i] : "", *eq = strchr(a, '=');
        if (eq && path_overlaps(a, (size_t)(eq - a), path)) return a;
    }
    return NULL;
}

void deft_spec_origin_where(const struct deft_spec_origin *o, const char *path, char *buf, size_t n) {
    const char *a = deft_spec_override_of(o, path);
    if (a) snprintf(buf, n, "--set '%.200s'", a);
    else deft_spec_where(o->tree, o->file, path, buf, n);
}

void deft_spec_origin_where_or(const struct deft_spec_origin *o, const char *path, const char *fallback, char *buf,
                               size_t n) {
    bool given = (o->tree && deft_spec_node_at(o->tree, path)) || deft_spec_override_of(o, path);
    deft_spec_origin_where(o, given ? path : fallback, buf, n);
}

/* Element i of a repeated block (a lone block is element 0), or its member `key`. */
static const struct deft_spec_node *element_node(const struct deft_spec_node *tree, const char *list, int i,
                                                 const char *key) {
    const struct deft_spec_node *l = tree ? deft_spec_node_at(tree, list) : NULL, *e = NULL;
    if (l && l->kind == DEFT_SPEC_LIST) e = i < l->n ? l->kids[i] : NULL;
    else if (l && i == 0) e = l;
    if (e && key && e->kind == DEFT_SPEC_MAP) {
        const struct deft_spec_node *k = deft_spec_map_get(e, key);
        if (k) e = k;
    }
    return e;
}

void deft_spec_origin_where_element(const struct deft_spec_origin *o, const char *list, int i, const char *key,
                                    char *buf, size_t n) {
    char path[200];
    snprintf(path, sizeof path, "%s.%d", list, i);
    const char *a = deft_spec_override_of(o, path);
    if (!a) a = deft_spec_override_of(o, list); /* --set replacing the whole list */
    if (a) {
        snprintf(buf, n, "--set '%.200s'", a);
        return;
    }
    const struct deft_spec_node *e = element_node(o->tree, list, i, key);
    if (e && e->line > 0) snprintf(buf, n, "%s:%d:%d", e->file, e->line, e->col);
    else if (e && e->key_line > 0) snprintf(buf, n, "%s:%d:%d", e->file, e->key_line, e->key_col);
    else deft_spec_origin_where(o, list, buf, n);
}

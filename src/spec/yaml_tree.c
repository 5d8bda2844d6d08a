/* yaml_tree.c - YAML (libyaml event API) -> spec tree.
 *
 * One document, maps with scalar keys, lists, scalars. Plain `null`, `~` and
 * empty values become NULL nodes; quoted scalars are flagged so "5" stays a
 * string. Duplicate keys, aliases, complex keys, several documents and
 * nesting deeper than DEFT_SPEC_MAX_DEPTH are errors with file:line:col.
 * libyaml allocates with malloc itself (outside deft's fault injection); the
 * tree uses deft_malloc. */
#include <string.h>
#include <yaml.h>
#include "spec/spec_impl.h"

struct frame {
    struct deft_spec_node *node;
    char *key; /* pending key of a MAP frame */
    int key_line, key_col;
};

static enum deft_status at(const char *file, const yaml_mark_t *m, const char *fmt, const char *a,
                           const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    return deft_set_error(DEFT_ERR_PARSE, "%s:%d:%d: %s", file, (int)m->line + 1, (int)m->column + 1,
                          msg);
}

static bool is_null_text(const char *s) {
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

enum deft_status deft_spec_parse_yaml(const char *text, size_t n, const char *file,
                                      struct deft_spec_node **out) {
    *out = NULL;
    if (n > DEFT_SPEC_MAX_BYTES)
        return deft_set_error(DEFT_ERR_PARSE, "%s: spec file too large (%zu bytes)", file, n);
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp)) return deft_set_error(DEFT_ERR_NOMEM, "out of memory (libyaml)");
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, n);

    struct frame stack[DEFT_SPEC_MAX_DEPTH + 1];
    int depth = 0, docs = 0;
    struct deft_spec_node *root = NULL;
    enum deft_status s = DEFT_OK;
    bool done = false;

    while (!done && !s) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&yp, &ev)) {
            char ctx[160] = "";
            if (yp.context) snprintf(ctx, sizeof ctx, " (%s, from line %d)", yp.context,
                                     (int)yp.context_mark.line + 1);
            if (yp.error == YAML_MEMORY_ERROR)
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory parsing %s", file);
            else
                s = at(file, &yp.problem_mark, "invalid YAML: %s%s",
                       yp.problem ? yp.problem : "syntax error", ctx);
            break;
        }
        const yaml_mark_t *m = &ev.start_mark;
        struct deft_spec_node *node = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) s = at(file, m, "several YAML documents ('---') in one spec: keep one%s%s",
                                   NULL, NULL);
            break;
        case YAML_ALIAS_EVENT:
            s = at(file, m, "YAML aliases (*%s) are not supported in specs: write the value out%s",
                   (const char *)ev.data.alias.anchor, NULL);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            if (depth > 0) {
                depth--;
                deft_free(stack[depth].key);
                stack[depth].key = NULL;
            }
            break;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            size_t len = ev.data.scalar.length;
            if (memchr(v, 0, len)) {
                s = at(file, m, "NUL byte in a value%s%s", NULL, NULL);
                break;
            }
            bool plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (depth > 0 && stack[depth - 1].node->kind == DEFT_SPEC_MAP && !stack[depth - 1].key) {
                struct frame *f = &stack[depth - 1];
                f->key = deft_malloc(len + 1);
                if (!f->key) {
                    s = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", file);
                    break;
                }
                memcpy(f->key, v, len + 1);
                f->key_line = (int)m->line + 1;
                f->key_col = (int)m->column + 1;
                break;
            }
            bool null = plain && is_null_text(v);
            node = deft_spec_node_new(null ? DEFT_SPEC_NULL : DEFT_SPEC_SCALAR, file, (int)m->line + 1,
                                      (int)m->column + 1);
            if (!node) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", file);
                break;
            }
            if (!null) {
                node->text = deft_malloc(len + 1);
                if (!node->text) {
                    deft_spec_node_free(node);
                    node = NULL;
                    s = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", file);
                    break;
                }
                memcpy(node->text, v, len + 1);
                node->quoted = !plain;
            }
            break;
        }
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth > 0 && stack[depth - 1].node->kind == DEFT_SPEC_MAP && !stack[depth - 1].key) {
                s = at(file, m, "a key must be a plain name, not a %s%s",
                       ev.type == YAML_MAPPING_START_EVENT ? "mapping" : "list", NULL);
                break;
            }
            if (depth >= DEFT_SPEC_MAX_DEPTH) {
                s = at(file, m, "nested too deeply (limit 64 levels)%s%s", NULL, NULL);
                break;
            }
            node = deft_spec_node_new(ev.type == YAML_MAPPING_START_EVENT ? DEFT_SPEC_MAP : DEFT_SPEC_LIST,
                                      file, (int)m->line + 1, (int)m->column + 1);
            if (!node) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", file);
            break;
        default: break;
        }
        if (node) {
            /* attach */
            if (depth == 0) {
                if (root) { /* cannot happen with one document; be safe */
                    deft_spec_node_free(node);
                    node = NULL;
                    s = at(file, m, "unexpected value after the document%s%s", NULL, NULL);
                } else {
                    root = node;
                }
            } else {
                struct frame *f = &stack[depth - 1];
                if (f->node->kind == DEFT_SPEC_MAP) {
                    const struct deft_spec_node *dup = deft_spec_map_get(f->node, f->key);
                    if (dup) {
                        char pos[32];
                        snprintf(pos, sizeof pos, "%d", dup->key_line);
                        yaml_mark_t km = {0, (size_t)f->key_line - 1, (size_t)f->key_col - 1};
                        s = at(file, &km, "duplicate key '%s' (first given at line %s): keep one",
                               f->key, pos);
                        deft_spec_node_free(node);
                        node = NULL;
                    } else if (f->node->n >= 10000) {
                        s = at(file, m, "too many keys in one mapping%s%s", NULL, NULL);
                        deft_spec_node_free(node);
                        node = NULL;
                    } else {
                        node->key = f->key;
                        node->key_line = f->key_line;
                        node->key_col = f->key_col;
                        f->key = NULL;
                        s = deft_spec_node_push(f->node, node);
                        if (s) node = NULL;
                    }
                } else {
                    s = deft_spec_node_push(f->node, node);
                    if (s) node = NULL;
                }
            }
            if (node && !s && (node->kind == DEFT_SPEC_MAP || node->kind == DEFT_SPEC_LIST)) {
                stack[depth].node = node;
                stack[depth].key = NULL;
                depth++;
            }
        }
        yaml_event_delete(&ev);
    }
    for (int i = 0; i < depth; i++) deft_free(stack[i].key);
    yaml_parser_delete(&yp);
    if (s) {
        deft_spec_node_free(root);
        return s;
    }
    if (!root) {
        root = deft_spec_node_new(DEFT_SPEC_MAP, file, 1, 1);
        if (!root) return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", file);
    }
    if (root->kind == DEFT_SPEC_NULL) {
        root->kind = DEFT_SPEC_MAP;
    } else if (root->kind != DEFT_SPEC_MAP) {
        int l = root->line, c = root->col;
        deft_spec_node_free(root);
        return deft_set_error(DEFT_ERR_PARSE,
                              "%s:%d:%d: a spec must be a mapping of 'key: value' lines at the top", file,
                              l, c);
    }
    *out = root;
    return DEFT_OK;
}

/* tree.c - the generic spec tree (spec module): nodes, ownership, lookup,
 * and the edit distance behind "did you mean". Depth is bounded by the
 * parsers (DEFT_SPEC_MAX_DEPTH), so recursive frees are safe. */
#include <string.h>
#include "spec/spec_impl.h"

struct deft_spec_node *deft_spec_node_new(enum deft_spec_kind kind, const char *file, int line,
                                          int col) {
    struct deft_spec_node *n = deft_calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->file = file;
    n->line = n->key_line = line;
    n->col = n->key_col = col;
    return n;
}

void deft_spec_node_free(struct deft_spec_node *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) deft_spec_node_free(n->kids[i]);
    deft_free(n->kids);
    deft_free(n->key);
    deft_free(n->text);
    deft_free(n);
}

enum deft_status deft_spec_node_push(struct deft_spec_node *parent, struct deft_spec_node *kid) {
    if (parent->n == parent->cap) {
        int cap = parent->cap ? parent->cap * 2 : 4;
        struct deft_spec_node **k = deft_realloc(parent->kids, (size_t)cap * sizeof *k);
        if (!k) {
            deft_spec_node_free(kid);
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", parent->file);
        }
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return DEFT_OK;
}

const struct deft_spec_node *deft_spec_map_get(const struct deft_spec_node *map, const char *key) {
    if (!map || map->kind != DEFT_SPEC_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (map->kids[i]->key && strcmp(map->kids[i]->key, key) == 0) return map->kids[i];
    return NULL;
}

int deft_spec_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            int m = sub < del ? sub : del;
            cur[j] = m < ins ? m : ins;
        }
        memcpy(prev, cur, sizeof prev);
    }
    return prev[lb] > 99 ? 99 : prev[lb];
}

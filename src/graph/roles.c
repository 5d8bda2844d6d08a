/* roles.c - what a graph's values mean to a task: the image input, the logits,
 * a detector's head outputs. Roles are kept in the graph metadata as
 * "roles": {"<role>": "<value name>"}, so they follow the graph through clone,
 * model files and pruning (value names survive all three). Graphs written
 * before roles existed get the old conventions as fallbacks. */
#include <string.h>
#include <cjson/cJSON.h>
#include "graph/graph_impl.h"

#define ROLES_KEY "roles"

static cJSON *roles_parse(const struct deft_graph *g) {
    const char *js = deft_graph_get_meta(g, ROLES_KEY);
    cJSON *o = js ? cJSON_Parse(js) : NULL;
    if (o && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

enum deft_status deft_graph_set_role(struct deft_graph *g, const char *role, int v) {
    if (!g || !role || !*role)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_graph_set_role: no graph or empty role name");
    if (v < 0 || v >= g->n_values)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_graph_set_role: role '%s': value %d out of range",
                              role, v);
    cJSON *o = roles_parse(g);
    if (!o) o = cJSON_CreateObject();
    if (!o) return deft_set_error(DEFT_ERR_NOMEM, "out of memory setting role '%s'", role);
    cJSON *name = cJSON_CreateString(g->values[v].name);
    enum deft_status s = DEFT_OK;
    if (!name) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory setting role '%s'", role);
    } else if (cJSON_GetObjectItemCaseSensitive(o, role)) {
        cJSON_ReplaceItemInObjectCaseSensitive(o, role, name);
    } else if (!cJSON_AddItemToObject(o, role, name)) {
        cJSON_Delete(name);
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory setting role '%s'", role);
    }
    char *txt = s ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s && !txt) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory setting role '%s'", role);
    if (!s) s = deft_graph_set_meta(g, ROLES_KEY, txt);
    cJSON_free(txt);
    return s;
}

int deft_graph_declared_role(const struct deft_graph *g, const char *role) {
    if (!g || !role) return -1;
    cJSON *o = roles_parse(g);
    const cJSON *it = o ? cJSON_GetObjectItemCaseSensitive(o, role) : NULL;
    int v = cJSON_IsString(it) ? deft_graph_find_value(g, it->valuestring) : -1;
    cJSON_Delete(o);
    return v;
}

static int fallback_image(const struct deft_graph *g) {
    int v = deft_graph_find_value(g, "input_1");
    if (v >= 0 && g->values[v].kind == DEFT_VALUE_INPUT) return v;
    for (v = 0; v < g->n_values; v++)
        if (g->values[v].kind == DEFT_VALUE_INPUT && g->values[v].shape.ndim == 4) return v;
    return -1;
}

static int fallback_logits(const struct deft_graph *g) {
    for (int v = g->n_values - 1; v >= 0; v--)
        if ((g->values[v].flags & DEFT_VF_OUTPUT) && g->values[v].grad_of < 0) return v;
    return -1;
}

int deft_graph_find_role(const struct deft_graph *g, const char *role) {
    if (!g || !role) return -1;
    int v = deft_graph_declared_role(g, role);
    if (v >= 0) return v;
    if (!strcmp(role, DEFT_ROLE_IMAGE)) return fallback_image(g);
    if (!strcmp(role, DEFT_ROLE_LOGITS)) return fallback_logits(g);
    return -1;
}

static bool is_output(const struct deft_value *val) {
    return (val->flags & DEFT_VF_OUTPUT) && val->grad_of < 0 && val->kind == DEFT_VALUE_NODE;
}

int deft_graph_outputs(const struct deft_graph *g, int *out, int max) {
    if (!g) return 0;
    bool *seen = deft_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *seen);
    if (!seen) return -1;
    int n = 0;
    cJSON *o = roles_parse(g);
    const cJSON *it;
    cJSON_ArrayForEach(it, o) { /* declared roles first, in the order they were set */
        int v = cJSON_IsString(it) ? deft_graph_find_value(g, it->valuestring) : -1;
        if (v < 0 || seen[v] || !is_output(&g->values[v])) continue;
        seen[v] = true;
        if (n < max) out[n] = v;
        n++;
    }
    cJSON_Delete(o);
    for (int v = 0; v < g->n_values; v++) {
        if (seen[v] || !is_output(&g->values[v])) continue;
        if (n < max) out[n] = v;
        n++;
    }
    deft_free(seen);
    return n;
}

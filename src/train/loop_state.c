/* loop_state.c - the training loop's resume state as JSON (loop_state.h).
 * Numbers print so they read back bit for bit (cJSON tries %.15g, then
 * %.17g); NaN is stored as null. */
#include <math.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "train/loop_state.h"

#define LOOP_STATE_VERSION 1

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *num_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, num(v[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

char *loop_state_to_json(const struct loop_state *s) {
    cJSON *o = cJSON_CreateObject(), *h = cJSON_CreateArray();
    bool ok = o && h;
    if (ok) ok = cJSON_AddNumberToObject(o, "version", LOOP_STATE_VERSION) &&
                 cJSON_AddItemToObject(o, "best", num(s->best)) &&
                 cJSON_AddNumberToObject(o, "best_epoch", s->best_epoch) &&
                 cJSON_AddItemToObject(o, "time", num(s->time)) &&
                 cJSON_AddNumberToObject(o, "skipped", s->skipped) &&
                 cJSON_AddNumberToObject(o, "width", s->width);
    for (int e = 0; ok && e < s->epochs_done; e++) {
        cJSON *row = num_array(s->hist + (size_t)e * (size_t)s->width, s->width);
        ok = row && cJSON_AddItemToArray(h, row);
        if (!ok) cJSON_Delete(row);
    }
    if (ok) {
        ok = cJSON_AddItemToObject(o, "history", h);
        if (ok) h = NULL;
    }
    cJSON *p = ok ? num_array(s->partial, s->n_partial) : NULL;
    if (ok) ok = p && cJSON_AddItemToObject(o, "partial", p);
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    char *out = txt ? deft_strdup(txt) : NULL;
    cJSON_free(txt);
    cJSON_Delete(h);
    cJSON_Delete(o);
    return out;
}

/* A number or null (NaN); false for anything else. */
static bool get_num(const cJSON *j, double *v) {
    if (cJSON_IsNull(j)) *v = NAN;
    else if (cJSON_IsNumber(j)) *v = j->valuedouble;
    else return false;
    return true;
}

static bool get_int(const cJSON *o, const char *key, int lo, int hi, int *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || j->valuedouble < lo || j->valuedouble > hi || j->valuedouble != floor(j->valuedouble))
        return false;
    *v = (int)j->valuedouble;
    return true;
}

static bool get_row(const cJSON *a, double *dst, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return false;
    int i = 0;
    for (const cJSON *j = a->child; j; j = j->next)
        if (!get_num(j, &dst[i++])) return false;
    return true;
}

static enum deft_status parse(const cJSON *o, int max_epochs, struct loop_state *s) {
    int version = 0, width = 0;
    if (!get_int(o, "version", 1, LOOP_STATE_VERSION, &version) || !get_int(o, "width", 0, 1 << 16, &width))
        return deft_set_error(DEFT_ERR_FORMAT, "run state: no version or width");
    if (width != s->width)
        return deft_set_error(DEFT_ERR_FORMAT, "run state: %d figures per epoch, this run has %d", width, s->width);
    if (!get_num(cJSON_GetObjectItemCaseSensitive(o, "best"), &s->best) ||
        !get_num(cJSON_GetObjectItemCaseSensitive(o, "time"), &s->time) ||
        !get_int(o, "best_epoch", 0, max_epochs, &s->best_epoch) || !get_int(o, "skipped", 0, 1 << 30, &s->skipped))
        return deft_set_error(DEFT_ERR_FORMAT, "run state: bad best, best_epoch, time or skipped");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "history");
    if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) > max_epochs)
        return deft_set_error(DEFT_ERR_FORMAT, "run state: history missing or longer than %d epochs", max_epochs);
    s->epochs_done = 0;
    for (const cJSON *row = h->child; row; row = row->next, s->epochs_done++)
        if (!get_row(row, s->hist + (size_t)s->epochs_done * (size_t)width, width))
            return deft_set_error(DEFT_ERR_FORMAT, "run state: epoch %d's row is not %d numbers", s->epochs_done + 1,
                                  width);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "partial");
    int np = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : -1;
    if (np < 0 || np > LOOP_STATE_MAX_PARTIAL || !get_row(p, s->partial, np))
        return deft_set_error(DEFT_ERR_FORMAT, "run state: bad partial sums");
    s->n_partial = np;
    return DEFT_OK;
}

enum deft_status loop_state_from_json(const char *json, int max_epochs, struct loop_state *s) {
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return deft_set_error(DEFT_ERR_FORMAT, "run state: not a JSON object");
    }
    enum deft_status st = parse(o, max_epochs, s);
    cJSON_Delete(o);
    return st;
}

/* metrics.c - report module: status.json (one JSON object per line) and
 * metrics.csv (header once, one row per epoch). Both files are append-only;
 * see deft/report.h for what a crash can leave behind. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deft/report.h"
#include "report/report_impl.h"

/* A finite non-integer: a value that is exactly a float (the learning rate,
 * losses summed in float) in the fewest digits that read back to that float
 * (1e-4f is 0.0001, not 9.999999747e-05); others with 10 digits. */
static void finite_num(struct rp_sbuf *b, double v) {
    if ((double)(float)v == v)
        for (int digits = 6; digits < 9; digits++) {
            char t[40];
            snprintf(t, sizeof t, "%.*g", digits, v);
            if ((float)strtod(t, NULL) == (float)v) {
                rp_sb_str(b, t);
                return;
            }
        }
    rp_sb_printf(b, (double)(float)v == v ? "%.9g" : "%.10g", v);
}

/* Numbers: integers print as integers, others as finite_num. Non-finite: JSON null. */
static void json_num(struct rp_sbuf *b, double v) {
    if (!isfinite(v)) rp_sb_str(b, "null");
    else if (v == floor(v) && fabs(v) < 1e15) rp_sb_printf(b, "%.0f", v);
    else finite_num(b, v);
}

static void csv_num(struct rp_sbuf *b, double v) {
    if (isnan(v)) rp_sb_str(b, "nan");
    else if (isinf(v)) rp_sb_str(b, v > 0 ? "inf" : "-inf");
    else if (v == floor(v) && fabs(v) < 1e15) rp_sb_printf(b, "%.0f", v);
    else finite_num(b, v);
}

static enum deft_status check_record(const char *fn, const char *path, const struct deft_epoch_record *r) {
    if (!path || !r) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: NULL argument", fn);
    if ((r->n_extra && !r->extra) || (r->n_val && !r->val) || r->n_extra < 0 || r->n_val < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: bad metric list", fn);
    for (int i = 0; i < r->n_extra; i++)
        if (!r->extra[i].name || !r->extra[i].name[0])
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: extra metric %d has no name", fn, i);
    for (int i = 0; i < r->n_val; i++)
        if (!r->val[i].name || !r->val[i].name[0])
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: val metric %d has no name", fn, i);
    return DEFT_OK;
}

enum deft_status deft_status_json_append(const char *path, const struct deft_epoch_record *r) {
    enum deft_status s = check_record("deft_status_json_append", path, r);
    if (s) return s;
    struct rp_sbuf b = {0};
    rp_sb_printf(&b, "{\"epoch\":%d,\"step\":%lld,\"loss\":", r->epoch, (long long)r->step);
    json_num(&b, r->loss);
    rp_sb_str(&b, ",\"lr\":");
    json_num(&b, r->lr);
    for (int i = 0; i < r->n_extra; i++) {
        rp_sb_put(&b, ",", 1);
        rp_sb_json_str(&b, r->extra[i].name);
        rp_sb_put(&b, ":", 1);
        json_num(&b, r->extra[i].value);
    }
    if (r->n_val) {
        rp_sb_str(&b, ",\"val\":{");
        for (int i = 0; i < r->n_val; i++) {
            if (i) rp_sb_put(&b, ",", 1);
            rp_sb_json_str(&b, r->val[i].name);
            rp_sb_put(&b, ":", 1);
            json_num(&b, r->val[i].value);
        }
        rp_sb_put(&b, "}", 1);
    }
    rp_sb_str(&b, ",\"time\":");
    json_num(&b, r->time);
    if (r->max_epoch > 0) {
        rp_sb_printf(&b, ",\"max_epoch\":%d,\"time_per_epoch\":", r->max_epoch);
        json_num(&b, r->time_per_epoch);
        rp_sb_str(&b, ",\"eta\":");
        json_num(&b, r->eta);
    }
    rp_sb_str(&b, "}\n");
    if (b.failed) {
        rp_sb_free(&b);
        return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
    }
    s = rp_append_line(path, NULL, b.p, b.n);
    rp_sb_free(&b);
    return s;
}

enum deft_status deft_status_json_end(const char *path, const struct deft_run_end *r) {
    if (!path || !r || !r->status) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_status_json_end: NULL argument");
    struct rp_sbuf b = {0};
    rp_sb_str(&b, "{\"status\":");
    rp_sb_json_str(&b, r->status);
    rp_sb_printf(&b, ",\"epoch\":%d,\"max_epoch\":%d,\"time\":", r->epoch, r->max_epoch);
    json_num(&b, r->time);
    if (r->best_epoch > 0 && r->metric) {
        rp_sb_str(&b, ",\"best\":{");
        rp_sb_json_str(&b, r->metric);
        rp_sb_put(&b, ":", 1);
        json_num(&b, r->best);
        rp_sb_printf(&b, ",\"epoch\":%d}", r->best_epoch);
    }
    if (r->message) {
        rp_sb_str(&b, ",\"message\":");
        rp_sb_json_str(&b, r->message);
    }
    rp_sb_str(&b, "}\n");
    enum deft_status s = b.failed ? deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path)
                                  : rp_append_line(path, NULL, b.p, b.n);
    rp_sb_free(&b);
    return s;
}

/* CSV field: quoted when it holds a comma, quote, CR or LF (RFC 4180). */
static void csv_field(struct rp_sbuf *b, const char *prefix, const char *name) {
    bool quote = strpbrk(name, ",\"\r\n") != NULL;
    if (quote) rp_sb_put(b, "\"", 1);
    rp_sb_str(b, prefix);
    for (const char *p = name; *p; p++) {
        if (*p == '"') rp_sb_put(b, "\"\"", 2);
        else rp_sb_put(b, p, 1);
    }
    if (quote) rp_sb_put(b, "\"", 1);
}

enum deft_status deft_metrics_csv_append(const char *path, const struct deft_epoch_record *r) {
    enum deft_status s = check_record("deft_metrics_csv_append", path, r);
    if (s) return s;
    struct rp_sbuf h = {0}, row = {0};
    rp_sb_str(&h, "epoch,step,loss,lr,time");
    for (int i = 0; i < r->n_extra; i++) {
        rp_sb_put(&h, ",", 1);
        csv_field(&h, "", r->extra[i].name);
    }
    for (int i = 0; i < r->n_val; i++) {
        rp_sb_put(&h, ",", 1);
        csv_field(&h, "val_", r->val[i].name);
    }
    rp_sb_printf(&row, "%d,%lld,", r->epoch, (long long)r->step);
    csv_num(&row, r->loss);
    rp_sb_put(&row, ",", 1);
    csv_num(&row, r->lr);
    rp_sb_put(&row, ",", 1);
    csv_num(&row, r->time);
    for (int i = 0; i < r->n_extra; i++) {
        rp_sb_put(&row, ",", 1);
        csv_num(&row, r->extra[i].value);
    }
    for (int i = 0; i < r->n_val; i++) {
        rp_sb_put(&row, ",", 1);
        csv_num(&row, r->val[i].value);
    }
    rp_sb_put(&row, "\n", 1);
    if (h.failed || row.failed) s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
    else s = rp_append_line(path, h.p, row.p, row.n);
    rp_sb_free(&h);
    rp_sb_free(&row);
    return s;
}

enum deft_status deft_report_epoch(const char *dir, const struct deft_epoch_record *r) {
    if (!dir) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_report_epoch: NULL directory");
    struct rp_sbuf p = {0};
    rp_sb_printf(&p, "%s/status.json", dir);
    if (p.failed) return deft_set_error(DEFT_ERR_NOMEM, "deft_report_epoch: out of memory");
    enum deft_status s = deft_status_json_append(p.p, r);
    if (!s) {
        p.n = 0;
        rp_sb_printf(&p, "%s/metrics.csv", dir);
        if (p.failed) s = deft_set_error(DEFT_ERR_NOMEM, "deft_report_epoch: out of memory");
        else s = deft_metrics_csv_append(p.p, r);
    }
    rp_sb_free(&p);
    return s;
}

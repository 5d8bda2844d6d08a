/* prune_run.c - TAO's prune action for any task (tao.md §2.8): load, prune at
 * a threshold or a searched target, write the model and report; plus the
 * sweep and the per-layer sensitivity table, scored with the task's own
 * validation metric (top-1, mAP) through a callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "deft/prune.h"
#include "deft/quant.h"
#include "deft/report.h"

static void print_layers(const struct deft_prune_plan *p, FILE *out) {
    fprintf(out, "%-40s %-10s %8s    %-8s\n", "layer", "type", "before", "after");
    for (int i = 0; i < deft_prune_num_layers(p); i++) {
        struct deft_prune_layer l;
        deft_prune_layer_info(p, i, &l);
        fprintf(out, "%-40s %-10s %8d -> %-8d%s\n", l.name, l.type, l.before, l.after, l.excluded ? " (kept whole)" : "");
    }
}

static cJSON *layers_json(const struct deft_prune_plan *p) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < deft_prune_num_layers(p); i++) {
        struct deft_prune_layer l;
        deft_prune_layer_info(p, i, &l);
        cJSON *o = cJSON_CreateObject(), *r = cJSON_CreateArray();
        if (!o || !r) {
            cJSON_Delete(o);
            cJSON_Delete(r);
            cJSON_Delete(arr);
            return NULL;
        }
        for (int k = 0; k < l.after; k++) cJSON_AddItemToArray(r, cJSON_CreateNumber(l.retained ? l.retained[k] : k));
        cJSON_AddStringToObject(o, "name", l.name);
        cJSON_AddStringToObject(o, "type", l.type);
        cJSON_AddNumberToObject(o, "before", l.before);
        cJSON_AddNumberToObject(o, "after", l.after);
        cJSON_AddItemToObject(o, "retained", r);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static enum deft_status write_json(const char *path, cJSON *root) {
    char *txt = root ? cJSON_Print(root) : NULL;
    enum deft_status s = txt ? deft_file_write_atomic(path, txt, strlen(txt)) : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    cJSON_free(txt);
    return s;
}

static enum deft_status write_report(const struct deft_prune_plan *p, const struct deft_prune_counts *c,
                                     float threshold, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/report.json", dir);
    cJSON *root = cJSON_CreateObject();
    if (!root) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(root, "pruning_ratio", (double)c->params_after / (double)c->params_before);
    cJSON_AddNumberToObject(root, "threshold", threshold);
    cJSON_AddNumberToObject(root, "params_before", (double)c->params_before);
    cJSON_AddNumberToObject(root, "params_after", (double)c->params_after);
    cJSON_AddNumberToObject(root, "flops_before", (double)c->flops_before);
    cJSON_AddNumberToObject(root, "flops_after", (double)c->flops_after);
    cJSON *l = layers_json(p);
    if (l) cJSON_AddItemToObject(root, "layers", l);
    enum deft_status s = l ? write_json(path, root) : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    cJSON_Delete(root);
    return s;
}

/* Save the candidate at the plan's current decision. */
static enum deft_status save_pruned(struct deft_prune_plan *p, const struct deft_model *m, const char *path) {
    struct deft_graph *g2;
    struct deft_named_tensor *t;
    int n;
    enum deft_status s = deft_prune_apply(p, m->file, &g2, &t, &n);
    if (s) return s;
    s = deft_model_save(path, g2, &(struct deft_model_save_opts){.tensors = t, .n_tensors = n});
    deft_prune_tensors_free(t, n);
    deft_graph_free(g2);
    return s;
}

static enum deft_status eval_candidate(const struct deft_prune_run_args *a, struct deft_prune_plan *p,
                                       const struct deft_model *m, const char *tmp, double *metric) {
    enum deft_status s = save_pruned(p, m, tmp);
    if (s) return s;
    s = a->eval(a->eval_ctx, tmp, metric);
    unlink(tmp);
    return s;
}

/* Thresholds from 0 through the quantiles of the filter scores. */
static enum deft_status sweep(const struct deft_prune_run_args *a, struct deft_prune_plan *p,
                              const struct deft_model *m, const char *dir, FILE *out) {
    enum { N = 21 };
    double th[N], pr[N], fr[N], acc[N];
    float tq[N];
    int nt = deft_prune_sweep_thresholds(p, tq, N);
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/.sweep_candidate.safetensors", dir);
    enum deft_status s = DEFT_OK;
    for (int i = 0; i < nt && !s; i++) {
        struct deft_prune_counts c;
        th[i] = tq[i];
        acc[i] = NAN;
        if ((s = deft_prune_decide(p, (float)th[i])) || (s = deft_prune_counts(p, &c))) break;
        pr[i] = (double)c.params_after / (double)c.params_before;
        fr[i] = (double)c.flops_after / (double)c.flops_before;
        if (a->eval && (s = eval_candidate(a, p, m, tmp, &acc[i]))) break;
        if (i == 0) /* after the first score: a bad spec fails before any table */
            fprintf(out, "%-10s %-12s %-12s %s\n", "threshold", "param_ratio", "flops_ratio", a->eval ? a->metric_name : "");
        fprintf(out, "%-10.4f %-12.4f %-12.4f", th[i], pr[i], fr[i]);
        if (a->eval) fprintf(out, " %.4f", acc[i]);
        fprintf(out, "\n");
        fflush(out);
    }
    if (s) return s;
    snprintf(path, sizeof path, "%s/sweep.csv", dir);
    char csv[N * 96 + 128];
    size_t len = (size_t)snprintf(csv, sizeof csv, "threshold,param_ratio,flops_ratio,%s\n", a->metric_name);
    for (int i = 0; i < nt; i++)
        len += (size_t)snprintf(csv + len, sizeof csv - len, "%.6g,%.6f,%.6f,%.6f\n", th[i], pr[i], fr[i], acc[i]);
    if ((s = deft_file_write_atomic(path, csv, len))) return s;
    snprintf(path, sizeof path, "%s/sweep", dir);
    char label[96];
    snprintf(label, sizeof label, "%s (no retraining)", a->metric_label);
    struct deft_plot_series ser[3] = {{"parameter ratio", th, pr, nt}, {"FLOPs ratio", th, fr, nt},
                                      {label, th, acc, a->eval ? nt : 0}};
    if ((s = deft_plot_lines(path, "Pruning sweep", "threshold", "ratio / accuracy", ser, a->eval ? 3 : 2))) return s;
    fprintf(out, "sweep: %s/sweep.csv, sweep.svg, sweep.png\n", dir);
    return DEFT_OK;
}

/* Each prunable group alone at three keep fractions: how much it saves and,
 * with an eval callback, what it costs in the task metric before retraining. A group is reported
 * under its first layer, with the number of layers tied to it. */
static enum deft_status sensitivity(const struct deft_prune_run_args *a, struct deft_prune_plan *p,
                                    const struct deft_model *m, const char *dir, FILE *out) {
    static const double keep[] = {0.75, 0.5, 0.25};
    char tmp[4200], path[4200], label[256];
    double base = NAN;
    int nl = deft_prune_num_layers(p);
    enum deft_status s = DEFT_OK;
    snprintf(tmp, sizeof tmp, "%s/.sensitivity_candidate.safetensors", dir);
    if (a->eval) {
        if ((s = a->eval(a->eval_ctx, a->model, &base))) return s;
        fprintf(out, "unpruned %s: %.4f\n", a->metric_label, base);
    }
    char *csv = NULL;
    size_t len = 0;
    FILE *cf = open_memstream(&csv, &len);
    int *group = deft_malloc((size_t)(nl ? nl : 1) * sizeof *group);
    if (!cf || !group) {
        if (cf) fclose(cf);
        free(csv);
        deft_free(group);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nl; i++) group[i] = deft_prune_layer_group(p, i);
    fprintf(cf, "layer,tied_layers,keep,before,after,param_ratio,flops_ratio,%s\n", a->metric_name);
    fprintf(out, "%-44s %-5s %-13s %-12s %-12s %s%s\n", "layer", "keep", "filters", "param_ratio", "flops_ratio",
            a->eval ? a->metric_name : "", a->eval ? " (drop)" : "");
    for (int i = 0; i < nl && !s; i++) {
        int g = group[i], tied = 0, first = i;
        for (int j = 0; j < nl; j++) {
            tied += group[j] == g;
            if (group[j] == g && j < first) first = j;
        }
        if (g < 0 || first != i) continue; /* kept whole, or reported with an earlier layer */
        for (int k = 0; k < 3 && !s; k++) {
            struct deft_prune_counts c;
            struct deft_prune_layer l;
            double metric = NAN;
            if ((s = deft_prune_decide_layer(p, i, keep[k])) || (s = deft_prune_counts(p, &c))) break;
            deft_prune_layer_info(p, i, &l);
            if (a->eval && (s = eval_candidate(a, p, m, tmp, &metric))) break;
            double pr = (double)c.params_after / (double)c.params_before;
            double fr = (double)c.flops_after / (double)c.flops_before;
            char filt[32];
            snprintf(filt, sizeof filt, "%d -> %d", l.before, l.after);
            snprintf(label, sizeof label, tied > 1 ? "%s (+%d tied)" : "%s", l.name, tied - 1);
            fprintf(out, "%-44s %-5.2f %-13s %-12.4f %-12.4f", label, keep[k], filt, pr, fr);
            if (a->eval) fprintf(out, " %.4f (%+.4f)", metric, metric - base);
            fprintf(out, "\n");
            fflush(out);
            fprintf(cf, "%s,%d,%.2f,%d,%d,%.6f,%.6f,%.6f\n", l.name, tied, keep[k], l.before, l.after, pr, fr, metric);
        }
    }
    deft_free(group);
    if (fclose(cf) && !s) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) {
        snprintf(path, sizeof path, "%s/sensitivity.csv", dir);
        s = deft_file_write_atomic(path, csv, len);
        if (!s) fprintf(out, "sensitivity: %s (no retraining: a layer that costs little here is a safe one to prune; "
                        "-el the costly ones)\n", path);
    }
    free(csv);
    return s;
}

static enum deft_status choose(const struct deft_prune_run_args *a, struct deft_prune_plan *p, float *th, FILE *out) {
    *th = a->opts.threshold;
    if (!(a->target_ratio > 0 || a->target_flops > 0)) return deft_prune_decide(p, *th);
    bool fl = a->target_flops > 0;
    double target = fl ? a->target_flops : a->target_ratio;
    enum deft_status s = deft_prune_search(p, target, fl, th);
    if (!s) fprintf(out, "threshold found for a %s ratio of %.4f: %.6g\n", fl ? "FLOPs" : "parameter", target, *th);
    return s;
}

enum deft_status deft_prune_run(const struct deft_prune_run_args *a) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->model) return deft_set_error(DEFT_ERR_INVALID_ARG, "prune needs -m MODEL");
    if (!a->output && !a->sweep && !a->sensitivity)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "prune needs -o OUT (or --sweep / --sensitivity)");
    if (a->threads > 0) deft_set_threads(a->threads);
    char dir[4096];
    if (a->results_dir && a->results_dir[0]) {
        snprintf(dir, sizeof dir, "%s/prune", a->results_dir);
    } else { /* beside the output */
        const char *o = a->output ? a->output : a->model, *sl = strrchr(o, '/');
        snprintf(dir, sizeof dir, "%.*s/prune", sl ? (int)(sl - o) : 1, sl ? o : ".");
    }
    struct deft_model *m = NULL;
    struct deft_prune_plan *p = NULL;
    enum deft_status s = deft_model_load(a->model, &m);
    if (s) return s;
    if (deft_qat_enabled(m->graph)) { /* TAO's order is prune, retrain, QAT: prune the float graph */
        struct deft_graph *fg = NULL;
        struct deft_qat_range *r = NULL;
        if ((s = deft_qat_strip(m->graph, &fg, &r))) goto done;
        deft_free(r);
        deft_graph_free(m->graph);
        m->graph = fg;
        fprintf(out, "note: %s is quantization-aware; its float graph is pruned and the learned ranges are "
                "dropped (retrain the pruned model with enable_qat)\n", a->model);
    }
    fprintf(out, "Exploring graph for retainable indices\n");
    if ((s = deft_prune_analyze(m->graph, m->file, &a->opts, &p))) {
        s = deft_wrap_error(s, "%s", a->model);
        goto done;
    }
    if ((s = deft_mkdirs(dir))) goto done;
    if (a->sweep && (s = sweep(a, p, m, dir, out))) goto done;
    if (a->sensitivity && (s = sensitivity(a, p, m, dir, out))) goto done;
    if (!a->output) goto done;
    float th;
    struct deft_prune_counts c;
    if ((s = choose(a, p, &th, out)) || (s = deft_prune_counts(p, &c))) goto done;
    fprintf(out, "Pruning model and appending pruned nodes to new graph\n");
    print_layers(p, out);
    if ((s = save_pruned(p, m, a->output))) goto done;
    struct deft_model *check = NULL; /* what we wrote must load back */
    if ((s = deft_model_load(a->output, &check))) {
        s = deft_wrap_error(s, "the pruned model does not reload (a bug: please report)");
        unlink(a->output);
        goto done;
    }
    deft_model_free(check);
    if ((s = write_report(p, &c, th, dir))) goto done;
    fprintf(out, "params %lld -> %lld, FLOPs %.4g G -> %.4g G (ratio %.4f)\n", (long long)c.params_before,
            (long long)c.params_after, (double)c.flops_before * 1e-9, (double)c.flops_after * 1e-9,
            (double)c.flops_after / (double)c.flops_before);
    fprintf(out, "Pruning ratio (pruned model / original model): %.6f\n", (double)c.params_after / (double)c.params_before);
    fprintf(out, "pruned model: %s; report: %s/report.json\n", a->output, dir);
done:
    deft_prune_plan_free(p);
    deft_model_free(m);
    return s;
}

/* dnv2_setup.c - the detectnet_v2 actions that read a spec: the experiment
 * loaded with --seed and --set, the dry runs of train / evaluate / inference
 * (the resolved spec, its data sources resolved to KITTI folders, the files
 * it names checked), and the actions whose engine is not built yet. */
#include <string.h>
#include <sys/stat.h>
#include "tasks/detectnet_v2/dnv2_task.h"

enum deft_status dnv2_not_finished(const char *action) {
    return deft_set_error(DEFT_ERR_UNSUPPORTED, "detectnet_v2 %s: not finished yet (issue 20); --dry_run checks "
                          "the spec", action);
}

/* --seed first, so an explicit --set of random_seed wins. */
static int with_seed(const struct deft_task_args *a, const char **sets, char *seed, size_t cap) {
    int n = 0;
    if (a->seed_set) {
        snprintf(seed, cap, "random_seed=%lld", a->seed);
        sets[n++] = seed;
    }
    for (int i = 0; i < a->n_overrides && n < DEFT_TASK_MAX_SETS + 1; i++) sets[n++] = a->overrides[i];
    return n;
}

enum deft_status dnv2_load(const struct deft_task_args *a, struct deft_dnv2_config *cfg) {
    if (!a->spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the experiment spec with -e SPEC");
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64];
    int n = with_seed(a, sets, seed, sizeof seed);
    return deft_dnv2_config_load(a->spec, sets, n, cfg);
}

static bool exists(const char *p) {
    struct stat st;
    return p && *p && stat(p, &st) == 0;
}

/* "file:line" of the spec line holding value, else "file". */
static void at_value(const char *file, const char *value, char *buf, size_t cap) {
    FILE *f = file ? fopen(file, "r") : NULL;
    char line[4096];
    int n = 0, found = 0;
    while (f && !found && fgets(line, sizeof line, f)) n++, found = strstr(line, value) ? n : 0;
    if (f) fclose(f);
    if (found) snprintf(buf, cap, "%s:%d", file, found);
    else snprintf(buf, cap, "%s", file ? file : "spec");
}

/* A path a run needs: a warning (at its spec line when the spec wrote it) when missing; true then. */
static bool missing(const char *spec, const char *what, const char *path) {
    if (!path || !*path || exists(path)) return false;
    char at[4200];
    at_value(spec, path, at, sizeof at);
    deft_log(DEFT_LOG_WARN, "%s: %s: '%s' does not exist", at, what, path);
    return true;
}

/* One split resolved and read (image and box counts), or a warning. */
static bool check_split(const struct deft_dnv2_config *c, bool validation, FILE *out) {
    struct dnv2_split sp;
    enum deft_status s = dnv2_resolve_split(c, validation, &sp);
    const char *what = validation ? "validation data" : "training data";
    if (s) {
        deft_log(DEFT_LOG_WARN, "%s: %s", what, deft_last_error());
        dnv2_split_free(&sp);
        return true;
    }
    fputs(sp.how, out);
    bool stop = false;
    if (sp.n > 0) {
        const struct deft_dnv2_dataset_config *d = &c->dataset_config;
        struct deft_det_class_map map[256];
        int nm = d->n_target_class_mapping < 256 ? d->n_target_class_mapping : 256;
        for (int i = 0; i < nm; i++) map[i] = (struct deft_det_class_map){d->target_class_mapping[i].key,
                                                                          d->target_class_mapping[i].value};
        struct deft_det_read_opts o;
        deft_det_read_opts_init(&o);
        o.mapping = map;
        o.n_mapping = nm;
        o.probe_sizes = false;
        if (*d->image_extension) o.image_extension = d->image_extension;
        struct deft_det_dataset ds;
        s = deft_det_read(sp.src, sp.n, &o, &ds);
        if (s) {
            deft_log(DEFT_LOG_WARN, "%s: %s", what, deft_last_error());
            stop = true;
        } else {
            fprintf(out, "%s: %d images, %lld boxes\n", what, ds.n, (long long)ds.stats.boxes);
            stop = !validation && ds.n == 0;
            if (stop) deft_log(DEFT_LOG_WARN, "%s: no images", what);
        }
        deft_det_dataset_free(&ds);
    } else if (!validation) {
        deft_log(DEFT_LOG_WARN, "training data: the data sources give no images");
        stop = true;
    } else {
        fprintf(out, "validation data: none\n");
    }
    dnv2_split_free(&sp);
    return stop;
}

/* train / evaluate --dry_run: the summary, the data, the files; exit 0 only when they are all there. */
enum deft_status dnv2_experiment_dry_run(const struct deft_task_args *a, const char *action) {
    struct deft_dnv2_config c;
    enum deft_status s = dnv2_load(a, &c);
    if (s) return s;
    FILE *out = a->out ? a->out : stdout;
    deft_dnv2_config_summary(&c, out);
    bool stop = false;
    if (!strcmp(action, "train")) {
        stop |= check_split(&c, false, out);
        stop |= missing(c.source_path, "model_config.pretrained_model_file", c.model_config.pretrained_model_file);
    } else {
        stop |= check_split(&c, true, out);
        stop |= missing(NULL, "-m", a->model);
    }
    deft_dnv2_config_free(&c);
    return deft_dry_run_verdict(stop);
}

enum deft_status dnv2_inference_dry_run(const struct deft_task_args *a) {
    if (!a->spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "inference: give the inference spec with -e SPEC");
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64];
    int n = with_seed(a, sets, seed, sizeof seed);
    struct deft_dnv2_infer_config c;
    enum deft_status s = deft_dnv2_infer_config_load(a->spec, sets, n, &c);
    if (s) return s;
    FILE *out = a->out ? a->out : stdout;
    deft_dnv2_infer_config_summary(&c, out);
    bool stop = missing(a->model ? NULL : c.source_path, a->model ? "-m" : "inferencer_config.tlt_config.model",
                        a->model ? a->model : c.inferencer_config.tlt_config.model);
    stop |= missing(NULL, "-i", a->input);
    deft_dnv2_infer_config_free(&c);
    return deft_dry_run_verdict(stop);
}

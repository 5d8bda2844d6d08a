/* cmd_prune.c - `deft <task> prune` for every task (TAO's flag names and
 * defaults: -pth 0.1, -n max, -eq union, -pg 8, -nf 16, -el ...); the sweep
 * and sensitivity tables score with the task's validate hook. */
#include <stdio.h>
#include <string.h>
#include "deft/prune.h"
#include "deft/task.h"
#include "cli/args.h"
#include "cli/cli.h"

static int prune_usage(FILE *f, const struct deft_task *t) {
    const char *m = t->metric.label;
    fprintf(f,
            "usage: deft %s prune -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|intersection|\n"
            "           arithmetic_mean|geometric_mean] [-pg 8] [-nf 16] [-el LAYER ...] [-r DIR]\n"
            "           [--target_ratio R | --target_flops R] [--sweep [-e SPEC]] [--sensitivity [-e SPEC]]\n"
            "           [--threads N]\n\n"
            "TAO's min_weight pruning: filters ranked by kernel L2 norm, normalized per layer; a layer keeps the\n"
            "filters above the threshold (at least -nf, a multiple of -pg); layers joined by add/mul keep the same.\n"
            "  --target_ratio R  find the threshold leaving R of the parameters (--target_flops: of the FLOPs)\n"
            "  --sweep           parameter/FLOPs ratio per threshold (-e SPEC: validation %s too, no retraining)\n"
            "  --sensitivity     per layer: the ratios (and -e: %s) with that layer alone kept at 3/4, 1/2, 1/4\n"
            "                    of its filters; the layers that lose little are the ones to prune, -el the rest\n"
            "Layers whose channels reach a model output (a classifier's last layer, a detector's head output\n"
            "convs) keep all their filters. Writes OUT (a deft model; retrain it with %s) and\n"
            "DIR/prune/report.json (DIR defaults to OUT's directory); on an error nothing is written.\n",
            t->name, m, m,
            !strcmp(t->name, "classification") ? "train_config.pretrained_model_path: OUT"
            : !strcmp(t->name, "unet")         ? "model_config.pruned_model_path: OUT"
            : !strcmp(t->name, "faster_rcnn")  ? "training_config.retrain_pruned_model: OUT"
            : !strcmp(t->name, "detectnet_v2") ? "model_config { pretrained_model_file: OUT load_graph: true }"
                                               : "training_config.pruned_model_path: OUT");
    return f == stdout ? 0 : 2;
}

/* The task's validation metric of a candidate model, with the command's spec and overrides, quietly. */
struct prune_eval {
    const struct deft_task *task;
    struct deft_task_args args;
};

static enum deft_status eval_metric(void *ctx, const char *model, double *metric) {
    struct prune_eval *e = ctx;
    struct deft_task_args a = e->args;
    FILE *null = fopen("/dev/null", "w");
    a.model = model;
    a.out = null ? null : stderr;
    enum deft_status s = e->task->validate(&a, metric);
    if (null) fclose(null);
    return s;
}

static bool parse_float_in(const char *flag, const char *v, double lo, double hi, double *out) {
    if (!arg_parse_float(flag, v, out)) return false;
    if (!(*out >= lo && *out <= hi)) {
        fprintf(stderr, "deft: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, v);
        return false;
    }
    return true;
}

int cmd_task_prune(int argc, char **argv) {
    const struct deft_task *t = deft_task_find(argv[0]);
    if (!t) return 2;
    struct deft_prune_run_args a = {.out = stdout};
    struct prune_eval ev = {.task = t, .args = {.backend = "cpu"}};
    const char *spec = NULL, *pth = "0.1", *norm = "max", *eq = "union", *pg = "8", *nf = "16", *tr = NULL, *tf = NULL,
               *threads = NULL, *val;
    const char *excluded[256], *sets[64];
    int n_ex = 0;
    bool err = false;
    for (int i = 2; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-m", "--model", &a.model, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &a.output, &err) ||
            arg_str(argc, argv, &i, "-r", "--results_dir", &a.results_dir, &err) ||
            arg_str(argc, argv, &i, "-e", "--experiment_spec_file", &spec, &err) ||
            arg_str(argc, argv, &i, "-pth", "--pruning_threshold", &pth, &err) ||
            arg_str(argc, argv, &i, "-n", "--normalizer", &norm, &err) ||
            arg_str(argc, argv, &i, "-eq", "--equalization_criterion", &eq, &err) ||
            arg_str(argc, argv, &i, "-pg", "--pruning_granularity", &pg, &err) ||
            arg_str(argc, argv, &i, "-nf", "--min_num_filters", &nf, &err) ||
            arg_str(argc, argv, &i, NULL, "--target_ratio", &tr, &err) ||
            arg_str(argc, argv, &i, NULL, "--target_flops", &tf, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err) ||
            arg_str(argc, argv, &i, NULL, "--backend", &ev.args.backend, &err)) {
            if (err) return 2;
            continue;
        }
        if (arg_str(argc, argv, &i, NULL, "--set", &val, &err)) {
            if (err) return 2;
            if (ev.args.n_overrides == 64) {
                fprintf(stderr, "deft: at most 64 --set overrides\n");
                return 2;
            }
            sets[ev.args.n_overrides++] = val;
            continue;
        }
        if (!strcmp(argv[i], "-el") || !strcmp(argv[i], "--excluded_layers")) {
            /* TAO takes a list: every following argument that is not a flag */
            int before = n_ex;
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (n_ex == 256) {
                    fprintf(stderr, "deft: at most 256 excluded layers\n");
                    return 2;
                }
                excluded[n_ex++] = argv[++i];
            }
            if (n_ex == before) {
                fprintf(stderr, "deft: %s needs at least one layer name\n", argv[i]);
                return 2;
            }
            continue;
        }
        if (arg_str(argc, argv, &i, "-k", "--key", &val, &err)) {
            if (err) return 2;
            fprintf(stderr, "deft: note: -k/--key ignored (deft models are not encrypted)\n");
            continue;
        }
        if (!strcmp(argv[i], "--sweep")) a.sweep = true;
        else if (!strcmp(argv[i], "--sensitivity")) a.sensitivity = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return prune_usage(stdout, t);
        else {
            fprintf(stderr, "deft %s prune: unknown flag '%s' (see --help)\n", t->name, argv[i]);
            return 2;
        }
    }
    ev.args.overrides = sets;
    a.opts.excluded = excluded;
    a.opts.n_excluded = n_ex;
    double d;
    long long v;
    if (!parse_float_in("-pth", pth, 0, 1e9, &d)) return 2;
    a.opts.threshold = (float)d;
    int nm = deft_prune_norm_from_name(norm), e = deft_prune_eq_from_name(eq);
    if (nm < 0 || nm == DEFT_PRUNE_NORM_OFF) {
        fprintf(stderr, "deft: -n expects max or L2, got '%s'\n", norm);
        return 2;
    }
    if (e < 0) {
        fprintf(stderr, "deft: -eq expects union, intersection, arithmetic_mean or geometric_mean, got '%s'\n", eq);
        return 2;
    }
    a.opts.norm = (enum deft_prune_norm)nm;
    a.opts.eq = (enum deft_prune_eq)e;
    if (!arg_parse_int("-pg", pg, 1, 1 << 20, &v)) return 2;
    a.opts.granularity = (int)v;
    if (!arg_parse_int("-nf", nf, 0, 1 << 20, &v)) return 2;
    a.opts.min_num_filters = v ? (int)v : -1; /* 0 means none here; the library reads 0 as its default */
    if (tr && !parse_float_in("--target_ratio", tr, 1e-6, 1, &a.target_ratio)) return 2;
    if (tf && !parse_float_in("--target_flops", tf, 1e-6, 1, &a.target_flops)) return 2;
    if (tr && tf) {
        fprintf(stderr, "deft: give --target_ratio or --target_flops, not both\n");
        return 2;
    }
    if (threads) {
        if (!arg_parse_int("--threads", threads, 1, 1024, &v)) return 2;
        a.threads = ev.args.threads = (int)v;
    }
    if (!a.model) {
        fprintf(stderr, "deft %s prune: -m MODEL is required\n", t->name);
        return 2;
    }
    if (!a.output && !a.sweep && !a.sensitivity) {
        fprintf(stderr, "deft %s prune: -o OUT is required (or --sweep / --sensitivity to only look)\n", t->name);
        return 2;
    }
    if (spec && !t->validate) {
        fprintf(stderr, "deft %s prune: -e cannot score this task's models yet\n", t->name);
        return 2;
    }
    char metric_name[64], metric_label[64];
    snprintf(metric_name, sizeof metric_name, "val_%s", t->metric.name);
    snprintf(metric_label, sizeof metric_label, "val %s", t->metric.label);
    ev.args.spec = spec;
    a.eval = spec ? eval_metric : NULL;
    a.eval_ctx = &ev;
    a.metric_name = metric_name;
    a.metric_label = metric_label;
    enum deft_status s = deft_prune_run(&a);
    return s ? cli_fail(s, NULL) : 0;
}

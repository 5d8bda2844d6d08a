/* args.c - flag parsing helpers shared by the commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "deft/core.h"
#include "deft/runtime.h"
#include "deft/task.h"
#include "deft/dist.h"
#include "cli/args.h"

bool arg_str(int argc, char **argv, int *i, const char *short_name, const char *long_name,
             const char **val, bool *err) {
    const char *a = argv[*i];
    const char *names[2] = {short_name, long_name};
    for (int k = 0; k < 2; k++) {
        const char *nm = names[k];
        if (!nm) continue;
        size_t l = strlen(nm);
        if (strncmp(a, nm, l) != 0) continue;
        if (a[l] == '=') {
            *val = a + l + 1;
            return true;
        }
        if (a[l] != 0) continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "deft: %s needs a value\n", nm);
            *err = true;
            return true;
        }
        *val = argv[++*i];
        return true;
    }
    return false;
}

bool arg_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "deft: %s expects an integer in [%lld, %lld], got '%s'\n", flag, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool arg_parse_float(const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "deft: %s expects a number, got '%s'\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}

int cli_fail(int status, const char *what) {
    const char *msg = deft_last_error();
    if (what && msg[0])
        fprintf(stderr, "deft: %s: %s\n", what, msg);
    else
        fprintf(stderr, "deft: %s\n", msg[0] ? msg : (what ? what : deft_status_str(status)));
    return deft_status_exit_code(status);
}

double cli_peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0;
}

bool arg_amp(int argc, char **argv, int *i, int *amp, bool *err) {
    if (strcmp(argv[*i], "--use_amp")) return false;
    *amp = DEFT_AMP_BF16;
    if (*i + 1 >= argc || argv[*i + 1][0] == '-') return true;
    const char *mode = argv[++*i];
    if (!strcmp(mode, "fp16")) *amp = DEFT_AMP_FP16;
    else if (strcmp(mode, "bf16")) {
        fprintf(stderr, "deft: --use_amp takes bf16 or fp16, got '%s'\n", mode);
        *err = true;
    }
    return true;
}

/* An action's own flag at argv[*i]: stored in a->extra_*. */
static bool action_flag(const struct deft_task_action *act, int argc, char **argv, int *i,
                        struct deft_task_args *a, bool *err) {
    for (const struct deft_task_flag *f = act->flags; f && f->long_name; f++) {
        const char *val = NULL;
        if (f->takes_value) {
            if (!arg_str(argc, argv, i, f->short_name, f->long_name, &val, err)) continue;
            if (*err) return true;
        } else if (!strcmp(argv[*i], f->long_name) || (f->short_name && !strcmp(argv[*i], f->short_name))) {
            val = "1";
        } else {
            continue;
        }
        if (a->n_extra == DEFT_TASK_MAX_EXTRA) {
            fprintf(stderr, "deft: at most %d action flags\n", DEFT_TASK_MAX_EXTRA);
            *err = true;
            return true;
        }
        a->extra_name[a->n_extra] = f->long_name;
        a->extra_value[a->n_extra++] = val;
        return true;
    }
    return false;
}

/* TAO's common flags at argv[*i]: 1 taken, 0 not one of them, -1 error (printed). */
static int common_flag(int argc, char **argv, int *i, struct deft_task_args *a, const char **sets,
                       const char **threads, const char **seed) {
    bool err = false;
    const char *val;
    if (arg_str(argc, argv, i, "-e", "--experiment_spec_file", &a->spec, &err) ||
        arg_str(argc, argv, i, "-r", "--results_dir", &a->results_dir, &err) ||
        arg_str(argc, argv, i, "-m", "--model", &a->model, &err) ||
        arg_str(argc, argv, i, "-i", "--input", &a->input, &err) ||
        arg_str(argc, argv, i, "-o", "--output_file", &a->output_file, &err) ||
        arg_str(argc, argv, i, NULL, "--resume_from", &a->resume_from, &err) ||
        arg_str(argc, argv, i, NULL, "--threads", threads, &err) ||
        arg_str(argc, argv, i, NULL, "--seed", seed, &err) ||
        arg_str(argc, argv, i, NULL, "--backend", &a->backend, &err) ||
        arg_str(argc, argv, i, NULL, "--log_file", &a->log_file, &err))
        return err ? -1 : 1;
    if (arg_str(argc, argv, i, NULL, "--set", &val, &err)) {
        if (err) return -1;
        if (a->n_overrides == DEFT_TASK_MAX_SETS) {
            fprintf(stderr, "deft: at most %d --set overrides\n", DEFT_TASK_MAX_SETS);
            return -1;
        }
        sets[a->n_overrides++] = val;
        return 1;
    }
    if (arg_str(argc, argv, i, "-k", "--key", &val, &err)) {
        if (err) return -1;
        fprintf(stderr, "deft: note: -k/--key ignored (deft models are not encrypted)\n");
        return 1;
    }
    if (arg_str(argc, argv, i, NULL, "--gpus", &val, &err)) {
        if (err) return -1;
        /* N > 1 was started under mpirun (launch.c) and matches the job */
        if (strcmp(val, "1") && atoi(val) != deft_dist_size()) {
            fprintf(stderr, "deft: --gpus %s: one process per GPU: give it to `train` (it starts mpirun -np %s), or "
                    "run mpirun -np %s deft ... yourself\n", val, val, val);
            return -1;
        }
        return 1;
    }
    if (arg_str(argc, argv, i, NULL, "--num_processes", &val, &err)) {
        if (err) return -1;
        if (strcmp(val, "1") && atoi(val) != deft_dist_size()) {
            fprintf(stderr, "deft: --num_processes %s: give it to `train` (it starts mpirun -np %s)\n", val, val);
            return -1;
        }
        return 1;
    }
    if (arg_str(argc, argv, i, NULL, "--gpu_index", &val, &err)) {
        long long gi;
        if (err || !arg_parse_int("--gpu_index", val, 0, 1024, &gi)) return -1;
        a->gpu_index = (int)gi;
        return 1;
    }
    if (arg_amp(argc, argv, i, &a->amp, &err)) return err ? -1 : 1;
    if (!strcmp(argv[*i], "--dry_run")) a->dry_run = true;
    else if (!strcmp(argv[*i], "--resume")) a->resume = true;
    else if (!strcmp(argv[*i], "--overwrite")) a->overwrite = true;
    else if (!strcmp(argv[*i], "--fatal_corrupt")) a->fatal_corrupt = true;
    else return 0;
    return 1;
}

int cli_parse_task_args(const struct deft_task *t, const struct deft_task_action *act, int argc, char **argv,
                        int first, struct deft_task_args *a, const char **sets) {
    *a = (struct deft_task_args){.backend = "cpu", .overrides = sets};
    const char *threads = NULL, *seed = NULL;
    for (int i = first; i < argc; i++) {
        bool err = false;
        int c = common_flag(argc, argv, &i, a, sets, &threads, &seed);
        if (c < 0) return 2;
        if (c > 0) continue;
        if (action_flag(act, argc, argv, &i, a, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (act->print_help) act->print_help(stdout);
            else deft_task_print_usage(t, stdout);
            return 0;
        }
        fprintf(stderr, "deft %s %s: unknown flag '%s' (see --help)\n", t->name, act->name, argv[i]);
        return 2;
    }
    if (a->amp && strncmp(a->backend, "cuda", 4))
        fprintf(stderr, "deft: note: --use_amp applies to --backend cuda; the %s backend computes in fp32\n",
                a->backend);
    long long v;
    if (threads) {
        if (!arg_parse_int("--threads", threads, 1, 1024, &v)) return 2;
        a->threads = (int)v;
    }
    if (seed) {
        if (!arg_parse_int("--seed", seed, 0, (1LL << 62), &a->seed)) return 2;
        a->seed_set = true;
    }
    if (act->needs_spec && !a->spec) {
        fprintf(stderr, "deft %s %s: -e SPEC is required\n", t->name, act->name);
        return 2;
    }
    return -1;
}

/* deft/task.h - one struct per network (task), as curl has one protocol
 * handler per scheme: the CLI's command table, its actions and their flags,
 * and the hooks the shared training loop (deft/loop.h) calls all come from
 * here. Adding a network is one struct and one line in the registry
 * (src/tasks/registry.c):
 *
 *     static const struct deft_task_action yolo_actions[] = {
 *         {"train", "-e SPEC -r DIR [--resume]", "train a detector", NULL, true, true, yolo_train},
 *         {"kmeans", "-l LABELS -i IMAGES -x W -y H -n 9", "anchor shapes",
 *          (const struct deft_task_flag[]){{"-l", "--label_folders", true}, {"-n", "--num_clusters", true},
 *                                         {NULL, NULL, false}}, false, false, yolo_kmeans},
 *     };
 *     const struct deft_task deft_task_yolo_v4 = {.name = "yolo_v4", .summary = "YOLOv4 detector",
 *         .actions = yolo_actions, .n_actions = 2, .spec_help = yolo_spec_help,
 *         .loss_terms = (const char *const[]){"loss_loc", "loss_obj", "loss_cls"}, .n_loss_terms = 3,
 *         .metric = {"mAP", "mAP", true}};
 *
 * TAO's common flags (-e -r -m -o -k -i --gpus --gpu_index --use_amp --log_file
 * --threads --seed --set --dry_run --resume ...) are parsed once, by the CLI
 * (src/cli/args.c), into struct deft_task_args; an action's own flags are
 * listed in its `flags` and read back with deft_task_arg().
 */
#ifndef DEFT_TASK_H
#define DEFT_TASK_H

#include <signal.h>
#include <stdio.h>
#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An action-specific flag ("--top_k", "-l"). */
struct deft_task_flag {
    const char *short_name;   /* "-l" or NULL */
    const char *long_name;    /* "--label_folders": the key for deft_task_arg */
    bool takes_value;         /* false: a switch, read back as "1" */
};

#define DEFT_TASK_MAX_EXTRA 32
#define DEFT_TASK_MAX_SETS 64

/* The parsed command line of one action (TAO's names). */
struct deft_task_args {
    const char *spec;                  /* -e, --experiment_spec_file */
    const char *spec_text;             /* train --data: the spec built from flags, instead of -e */
    const char *results_dir;           /* -r, --results_dir */
    const char *model;                 /* -m, --model */
    const char *input;                 /* -i, --input (image, directory, list) */
    const char *output_file;           /* -o, --output_file */
    const char *resume_from;           /* --resume_from CKPT */
    const char *backend;               /* --backend (default "cpu") */
    const char *log_file;              /* --log_file: train copies DIR/deft.log there */
    const char *const *overrides;      /* --set key.path=value, repeatable */
    int n_overrides;
    int threads;                       /* --threads, 0: spec / all cores */
    int gpu_index;                     /* --gpu_index */
    int amp;                           /* --use_amp [bf16|fp16]: enum deft_amp */
    long long seed;                    /* --seed, when seed_set */
    bool seed_set;
    bool dry_run, resume, fatal_corrupt;
    bool overwrite;                    /* --overwrite: train into a folder holding a run, clearing it */
    int argc;                          /* the command line after "deft" (for command.txt) */
    char *const *argv;
    volatile sig_atomic_t *stop;       /* set by SIGINT: checkpoint and stop */
    FILE *out;                         /* progress and tables */
    /* the action's own flags, by long name, in command-line order */
    int n_extra;
    const char *extra_name[DEFT_TASK_MAX_EXTRA], *extra_value[DEFT_TASK_MAX_EXTRA];
};

/* The value of an action flag (by its long name), the last one given, or NULL. */
DEFT_API const char *deft_task_arg(const struct deft_task_args *a, const char *long_name);
/* An integer action flag in [lo, hi] into *out, dflt when it is not given;
 * DEFT_ERR_INVALID_ARG naming the flag and the range otherwise. */
DEFT_API DEFT_NODISCARD enum deft_status deft_task_arg_int(const struct deft_task_args *a, const char *long_name,
                                                           long lo, long hi, int dflt, int *out);

struct deft_task_action {
    const char *name;                  /* TAO's action name: "train", "evaluate", "kmeans" */
    const char *usage;                 /* flags, for --help */
    const char *help;                  /* one line */
    const struct deft_task_flag *flags;/* its own flags, ended by a NULL long_name; NULL: none */
    bool needs_spec;                   /* -e is required */
    bool traps_sigint;                 /* Ctrl-C sets args.stop instead of killing (train) */
    /* NULL: the CLI implements the action with its own flag parser
     * (classification's export and prune, see src/cli/commands.c). */
    enum deft_status (*run)(const struct deft_task_args *a);
    /* `deft <task> <action> --help`; NULL: the task's help */
    void (*print_help)(FILE *f);
};

/* The figure a task selects its best model on. */
struct deft_task_metric {
    const char *name;                  /* key in status.json's "val" and metrics.csv: "top1", "mAP" */
    const char *label;                 /* for people: "top-1", "mAP" */
    bool maximize;                     /* higher is better */
};

struct deft_task {
    const char *name;                  /* TAO's network name: the CLI command */
    const char *summary;               /* one line for `deft --help` */
    const struct deft_task_action *actions;
    int n_actions;
    /* spec schema: every field with type, default and meaning (--help-spec) */
    void (*spec_help)(FILE *f);
    /* `deft <task> --help` in the task's own words; NULL: generated from the actions */
    void (*print_help)(FILE *f);
    /* training: named parts of the loss beyond the total, as reported by the
     * trainer's host loss (deft_trainer_loss_terms), written to status.json,
     * metrics.csv and TensorBoard; none for classification */
    const char *const *loss_terms;
    int n_loss_terms;
    struct deft_task_metric metric;    /* best-model selection (validation) */
    /* `metric` of the model file a->model on the spec a->spec's validation
     * data, printing nothing to stdout (a->out): what pruning's sweep and
     * sensitivity tables score; NULL: the task cannot be scored this way */
    enum deft_status (*validate)(const struct deft_task_args *a, double *metric);
};

/* Registry: the task of this name, or NULL. */
DEFT_API const struct deft_task *deft_task_find(const char *name);
/* All tasks, NULL-terminated, in registry order. */
DEFT_API const struct deft_task *const *deft_task_list(void);
/* The action of this name, or NULL. */
DEFT_API const struct deft_task_action *deft_task_action(const struct deft_task *t, const char *name);
/* `--dry_run`'s status: DEFT_OK when nothing would stop a real run, otherwise an
 * invalid-input error (exit 2) pointing at the warnings it printed. */
DEFT_API enum deft_status deft_dry_run_verdict(bool would_stop);
/* Print `deft <task> --help`. */
DEFT_API void deft_task_print_usage(const struct deft_task *t, FILE *f);

#ifdef __cplusplus
}
#endif
#endif

/* deft/loop.h - the one training loop every task uses: epochs, resume
 * position, checkpoints (latest / best / every N epochs), non-finite losses
 * (skip_nonfinite_batches), Ctrl-C (checkpoint and stop), the progress line,
 * status.json, metrics.csv, TensorBoard scalars, loss and metric plots,
 * validation every N epochs and best-model selection on the task's metric.
 * A resumed run continues the interrupted one: latest.safetensors carries the
 * best score, every finished epoch's figures and the elapsed time, so
 * best.safetensors, metrics.csv, status.json and the plots come out as an
 * uninterrupted run's (time column aside). status.json ends with a
 * {"status": "finished"|"interrupted"|"failed", ...} line.
 *
 * The task owns its data and its trainer step; the loop calls it through hooks:
 *
 *     struct deft_loop lp = {.trainer = t, .network = "classification", .arch = "resnet18",
 *         .dir = "runs/x", .epochs = 10, .steps_per_epoch = spe, .batch = 32, .lr = &sched,
 *         .metric = task->metric, .ctx = run, .start_epoch = ..., .next_batch = ...,
 *         .train_step = ..., .validate = ...};
 *     deft_loop_run(&lp, start_step);   // lp.best: the best validation figure
 */
#ifndef DEFT_LOOP_H
#define DEFT_LOOP_H

#include <signal.h>
#include <stdio.h>
#include "deft/report.h"
#include "deft/task.h"
#include "deft/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_LOOP_MAX_METRICS 16

/* A figure of an epoch: key in status.json / metrics.csv / TensorBoard, and
 * the words of the epoch line ("train top-1"). */
struct deft_loop_metric {
    const char *key;
    const char *label;
    double value;
};

struct deft_loop {
    /* what runs */
    struct deft_trainer *trainer;
    const char *network, *arch;         /* checkpoint names: <network>_<arch>_epoch_NNN.safetensors */
    const char *dir;                    /* results directory (weights/ and plots/ exist) */
    int epochs, steps_per_epoch, batch;
    const struct deft_lr_schedule *lr;  /* for the lr column (the trainer's schedule) */
    int val_every;                      /* validate every N epochs (and after the last); <1: 1 */
    int checkpoint_interval;            /* epoch checkpoints every N epochs; 0: none */
    int keep_checkpoints;               /* keep the newest N epoch checkpoints; 0: all */
    bool no_best;                       /* do not write best.safetensors (save_best: false) */
    int skip_nonfinite;                 /* non-finite batches to skip before stopping */
    const char *skip_key;               /* the spec key that sets it, for messages */
    struct deft_task_metric metric;     /* validation figure for best.safetensors */
    const char *const *loss_terms;      /* names of the trainer's loss terms, averaged per epoch */
    int n_loss_terms;
    /* The epoch's figures, in the order of status.json, metrics.csv and the
     * epoch line (fixed for a run; NaN when not computed): training figures
     * (e.g. {"train_top1", "train top-1"}) and validation figures, which
     * must include the metric's name (and "loss" for the loss plot). */
    struct deft_loop_metric *train_metrics;
    int n_train_metrics;
    struct deft_loop_metric *val_metrics;
    int n_val_metrics;
    /* a plot of the metric: plots/<metric_plot> titled metric_plot_title, the
     * validation figure against the training figure of train_metric_key (or none) */
    const char *metric_plot, *metric_plot_title, *train_metric_key;
    struct deft_events *events;
    volatile sig_atomic_t *stop;
    FILE *out;
    /* hooks (ctx is the task's run) */
    void *ctx;
    enum deft_status (*start_epoch)(void *ctx, int epoch);
    /* load the next training batch; *n = 0 at the end of the epoch */
    enum deft_status (*next_batch)(void *ctx, int *n);
    /* fill the loaded images with NaN (DEFT_FAULT_NAN_STEP, tests) */
    void (*poison_batch)(void *ctx);
    /* one trainer step on the loaded batch of n; the task keeps its training figures */
    enum deft_status (*train_step)(void *ctx, int n, float *loss);
    /* the epoch is over: set train_metrics[].value and reset for the next */
    void (*end_epoch)(void *ctx);
    /* validation: set val_metrics[].value and *score (the metric's value) */
    enum deft_status (*validate)(void *ctx, int epoch, double *score);
    /* optional: the running sums behind train_metrics (counts, not ratios),
     * saved with a checkpoint taken mid-epoch and given back after the
     * resumed epoch's start_epoch, so its figures match an uninterrupted run */
    int (*partial_save)(void *ctx, double *v, int cap);
    void (*partial_restore)(void *ctx, const double *v, int n);
    /* results, kept across --resume (the checkpoint carries them) */
    double best;                        /* best validation score; NAN: none */
    bool have_best;
    int best_epoch;                     /* 1-based; 0: none */
};

/* The results folder of a training run. */
struct deft_run_dir_opts {
    const char *network;      /* runs/<network>/trainN when requested is empty */
    const char *requested;    /* -r, else the spec's results_dir; NULL or "": automatic */
    bool resume;              /* --resume: the folder's latest checkpoint must exist */
    const char *resume_from;  /* --resume_from (or the spec's resume path): may write into a run's folder */
    bool overwrite;           /* --overwrite: clear a previous run's files first */
    FILE *out;                /* says what --overwrite removed; NULL: quiet */
};
/* Resolve the folder into dir: -r / results_dir, else runs/<network>/train,
 * train2, ... (the first free one; with --resume the last one). A folder
 * holding a run (weights, status.json, metrics.csv) is refused unless the run
 * continues or --overwrite is given (DEFT_ERR_INVALID_ARG naming the files);
 * --resume with no latest checkpoint: DEFT_ERR_NOT_FOUND. Creates weights/
 * and plots/, removes temporaries left by a killed writer, and takes the
 * folder's lock (below): a folder that a live run holds is refused naming
 * its pid (DEFT_ERR_INVALID_ARG). */
DEFT_API DEFT_NODISCARD enum deft_status deft_run_dir_open(const struct deft_run_dir_opts *o, char *dir, size_t cap);
/* Record the run in its folder: command.txt gains the command line (one
 * line per invocation, shell-quoted, so a resume adds one), spec.yaml is the
 * resolved spec (after --set; it loads back to the same configuration). */
DEFT_API DEFT_NODISCARD enum deft_status deft_run_dir_record(const char *dir, int argc, char *const *argv,
                                                            const char *spec_yaml);
/* The same with spec.yaml written by print(cfg, f): each task's config printer. */
typedef void (*deft_spec_print_fn)(const void *cfg, FILE *f);
DEFT_API DEFT_NODISCARD enum deft_status deft_run_dir_record_spec(const char *dir, int argc, char *const *argv,
                                                                 deft_spec_print_fn print, const void *cfg);
/* deft.log: open <dir>/deft.log (and log_file, --log_file, when set) for
 * appending; deft_run_log_stream gives a stream that prints to out and to
 * the logs (progress-bar updates only to out), and warnings logged until
 * deft_run_log_close go to the logs too. One at a time per process. */
struct deft_run_log;
DEFT_API DEFT_NODISCARD enum deft_status deft_run_log_open(const char *dir, const char *log_file, FILE *out,
                                                          struct deft_run_log **lg);
DEFT_API FILE *deft_run_log_stream(struct deft_run_log *lg);
/* Data parallel, ranks other than 0: their warnings and errors (and the
 * error that stops them, at close) appended to rank 0's <dir>/deft.log,
 * each line prefixed "rank N: "; what they print stays out of it. */
DEFT_API DEFT_NODISCARD enum deft_status deft_run_log_open_rank(const char *dir, int rank, struct deft_run_log **lg);
/* Whether f is the open run log's stream over a terminal (the progress bar asks). */
DEFT_API bool deft_run_log_is_tty(FILE *f);
/* Close; a run that failed (s not OK, not cancelled) gets its error as the
 * log's last line (the terminal gets it from the caller). */
DEFT_API void deft_run_log_close(struct deft_run_log *lg, enum deft_status s);
/* The model evaluate and inference take when -m is not given: the run's
 * weights/best.safetensors, else weights/latest.safetensors (written into
 * buf); NULL when dir is NULL/empty or holds neither. */
DEFT_API const char *deft_run_dir_model(const char *dir, char *buf, size_t n);
/* The lock deft_run_dir_open takes (<dir>/.deft.lock, the pid of the run):
 * a second run into a folder whose lock names a live process is refused
 * with its pid; a lock whose process is gone (kill -9) is taken over.
 * Release it when the run ends (deft_run_dir_close does too). */
DEFT_API void deft_run_dir_unlock(const char *dir);
/* After a run that stopped early: remove weights/, plots/ and the folder if
 * they are empty (a failed start leaves nothing behind). */
DEFT_API void deft_run_dir_close(const char *dir);

/* Run from optimizer step start_step (0, or a resumed checkpoint's) to the
 * last epoch. Returns DEFT_ERR_CANCELLED after a Ctrl-C checkpoint. */
DEFT_API DEFT_NODISCARD enum deft_status deft_loop_run(struct deft_loop *lp, int64_t start_step);

#ifdef __cplusplus
}
#endif
#endif

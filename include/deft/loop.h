/* deft/loop.h - the one training loop every task uses: epochs, resume
 * position, checkpoints (latest / best / every N epochs), non-finite losses
 * (skip_nonfinite_batches), Ctrl-C (checkpoint and stop), the progress line,
 * status.json, metrics.csv, TensorBoard scalars, loss and metric plots,
 * validation every N epochs and best-model selection on the task's metric.
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
    /* results */
    double best;                        /* best validation score this run; NAN: none */
    bool have_best;
};

/* Run from optimizer step start_step (0, or a resumed checkpoint's) to the
 * last epoch. Returns DEFT_ERR_CANCELLED after a Ctrl-C checkpoint. */
DEFT_API DEFT_NODISCARD enum deft_status deft_loop_run(struct deft_loop *lp, int64_t start_step);

#ifdef __cplusplus
}
#endif
#endif

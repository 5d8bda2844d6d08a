/* det_train_loop.h (internal) - what every detector's `train` shares (ssd and
 * retinanet, yolo_v4, faster_rcnn, detectnet_v2): the results folder and its
 * log, the loaders, the trainer's common options and checkpoint metadata, the
 * weights to start from, the shared loop's hooks (src/train/loop.c) and
 * settings, the closing line. What differs is a network's struct
 * det_train_net (as curl's per-protocol handler): targets and loss (the
 * trainer's host loss and mid-forward step), the validation metric, a step
 * at each epoch's start, and the words of a few lines.
 *
 *     struct run { struct det_train dt; ...the network's own... };
 *     det_train_init(&r.dt, a, &ssd_net, "ssd", &r);   // hooks get &r
 *     det_train_open_dir(...); det_train_loaders(...); det_train_trainer_opts(...);
 *     det_train_create(...); det_train_weights(...); det_train_record(...);
 *     det_train_run_loop(...); det_train_release(...); det_train_finish(...);
 */
#ifndef DEFT_TASKS_COMMON_DET_TRAIN_LOOP_H
#define DEFT_TASKS_COMMON_DET_TRAIN_LOOP_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "deft/det_eval.h"
#include "deft/det_loader.h"
#include "deft/loop.h"
#include "deft/trainer.h"

/* A network's part (user: the network's run, given to det_train_init). */
struct det_train_net {
    const char *const *loss_terms;              /* the host loss's terms, in its order */
    int n_loss_terms;
    struct deft_loop_metric val_metrics[2];     /* key and label of the two validation figures */
    deft_host_loss_fn host_loss;                /* targets and loss of a batch */
    deft_mid_forward_fn mid_forward;            /* optional: a two-stage network's host step */
    const char *mid_input_role;
    /* optional: before each epoch's batches (DetectNet_v2's auto-weighting) */
    void (*epoch_start)(void *user);
    /* the validation metric: the two figures in det_train.val_m and *score */
    enum deft_status (*validate)(void *user, int epoch, double *score);
    const char *no_val;                         /* "done (<no_val>); weights in ..." */
    const char *resume_note;                    /* after "resumed from X at step N"; NULL: none */
    bool resume_epoch;                          /* "resumed ... (epoch E)" */
    bool says_finished;                         /* a resumed run that had finished says so */
};

/* The shared state of a detector's training run. */
struct det_train {
    const struct deft_task_args *a;
    const struct det_train_net *net;
    void *user;
    const char *network;                        /* results folder and checkpoint names */
    FILE *out;                                  /* through the run log once the folder is open */
    FILE *quiet;                                /* data parallel, ranks above 0: out is /dev/null */
    struct deft_det_dataset train_ds, val_ds;
    bool have_val;                              /* validate (val_ld is open) */
    struct deft_det_loader *train_ld, *val_ld;
    struct deft_det_batch batch;                /* the loaded training batch */
    struct deft_trainer *t;
    struct deft_events *ev;
    struct deft_run_log *log;
    int bs, spe, epochs;
    char dir[2048], wdir[2100], arch[64];
    bool dir_opened;
    struct deft_loop_metric val_m[2];
};

void det_train_init(struct det_train *dt, const struct deft_task_args *a, const struct det_train_net *net,
                    const char *network, void *user);
/* The results folder (-r, else results_dir), its log (out prints through it),
 * weights/ and the thread count. */
enum deft_status det_train_open_dir(struct det_train *dt, const char *results_dir, const char *resume_from);
/* The loaders of train_ds and (have_val) val_ds: batches of batch (at most
 * the training images; dt->bs), shuffled, the last partial one dropped;
 * validation in order, all of it. dt->spe: batches per epoch. */
enum deft_status det_train_loaders(struct det_train *dt, int batch, int workers, uint64_t seed,
                                   const struct deft_det_transform *train_tf, const struct deft_det_transform *val_tf);
/* The options every detector's trainer shares: the model at dt->bs x h x w
 * in training mode, backend, device, amp, seed, the net's loss; the caller
 * sets graph, optim, lr and qat. */
void det_train_trainer_opts(const struct det_train *dt, int h, int w, bool freeze_bn, uint64_t seed,
                            struct deft_trainer_opts *to);
/* The trainer of graph g (freed here), and the checkpoint metadata: key =
 * meta (deft_malloc'ed JSON, freed here), class_names, network. */
enum deft_status det_train_create(struct det_train *dt, struct deft_trainer_opts *to, struct deft_graph *g,
                                  const char *key, char *meta, char *const *class_names, int n_classes);
/* dt->arch from the graph's "backbone" metadata. */
void det_train_arch(struct det_train *dt, const struct deft_graph *g);
/* n output buffers of the trainer's output shapes (validation). */
enum deft_status det_train_alloc_outs(const struct det_train *dt, int n, float **outs);
/* Weights to start from: --resume (the folder's latest checkpoint), else from
 * (a checkpoint to resume), else pretrained, else pruned (each may be NULL or
 * ""). *start: the step to go on from. */
enum deft_status det_train_weights(struct det_train *dt, const char *from, const char *pretrained,
                                   const char *pruned, int64_t *start);
/* command.txt, spec.yaml and the TensorBoard events. */
enum deft_status det_train_record(struct det_train *dt, deft_spec_print_fn print, const void *cfg);
/* The shared loop from step start with the net's hooks, then the closing
 * line (ap: the words of the validation mAP's definition). */
struct det_train_loop_opts {
    const struct deft_lr_schedule *lr;
    int val_every, checkpoint_interval;
    const char *ap;
};
enum deft_status det_train_run_loop(struct det_train *dt, int64_t start, const struct det_train_loop_opts *o);
/* Frees the events, trainer, loaders and datasets. */
void det_train_release(struct det_train *dt);
/* A validation's "  AP (<mode>): <class> <ap> ..." on dt->out, without the line's end
 * (the caller may add a figure of its own). */
void det_train_print_ap(const struct det_train *dt, const char *mode, const struct deft_det_metrics *m,
                        char *const *class_names);
/* Closes the log and the folder (removed after a failed run). */
void det_train_finish(struct det_train *dt, enum deft_status s);
#endif

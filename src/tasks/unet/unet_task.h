/* unet_task.h (internal) - the unet task: what its actions share. The spec
 * (deft/unet_spec.h) is resolved once into a unet_setup: the model options,
 * the label map, the loss, the loaders' options and the training schedule. */
#ifndef DEFT_UNET_TASK_H
#define DEFT_UNET_TASK_H

#include <stdio.h>
#include "deft/optim.h"
#include "deft/seg.h"
#include "deft/seg_data.h"
#include "deft/task.h"
#include "deft/unet_model.h"
#include "deft/unet_spec.h"

struct unet_setup {
    struct deft_unet_config cfg;
    bool cfg_loaded;
    struct deft_unet_opts model;          /* batch, size, channels, classes (outputs) */
    int freeze_blocks[32];                /* model.freeze_blocks points here */
    int n_classes;                        /* classes of the metrics (2 for a sigmoid head) */
    const char *class_names[256];         /* cfg's, n_classes */
    float class_weights[256];
    struct deft_seg_label_map labels;
    int ignore_id;                        /* DEFT_SEG_IGNORE */
    struct deft_seg_loss_opts loss;
    struct deft_seg_loader_opts train_lo, val_lo;
    int batch, epochs, checkpoint_interval;
    uint64_t seed;
    struct deft_optim_config optim;
    double lr, lr_decay_rate;             /* base lr; exponential decay rate (0: none) */
    int64_t lr_decay_steps, warmup_steps;
    bool cosine;                          /* cosine decay to 0 over the run */
    const char *train_images, *train_masks, *val_images, *val_masks, *test_images;
    const char *pretrained;               /* training_config / model_config weights to start from, or NULL */
};

/* -e SPEC (with --set, --seed) into u; the caller frees it with unet_setup_free. */
enum deft_status unet_setup_load(struct unet_setup *u, const struct deft_task_args *a);
void unet_setup_free(struct unet_setup *u);
/* The training (val false) or validation pairs: the spec's folders, or its list files
 * (TAO's data_source, filter_data); *what names the source for messages. */
bool unet_has_split(const struct unet_setup *u, bool val);
enum deft_status unet_open_split(const struct unet_setup *u, bool val, struct deft_seg_dataset *ds, const char **what);
/* The learning rate at a step (warm-up, then constant / exponential / cosine). */
double unet_lr_at(const void *ctx, int64_t step);
/* "class_names" and "unet" metadata (JSON, deft_free) a saved model carries, so
 * evaluate and inference need only the model and the spec's data paths. */
char *unet_meta_json(const struct unet_setup *u);
/* TAO's resize_method as the image's enum deft_resample_filter. */
int unet_resample_filter(enum deft_unet_resize k);

enum deft_status unet_train(const struct deft_task_args *a);
enum deft_status unet_evaluate(const struct deft_task_args *a);
/* evaluate's mIoU of a->model (the prune action's score) */
enum deft_status unet_validate(const struct deft_task_args *a, double *miou);
enum deft_status unet_inference(const struct deft_task_args *a);
enum deft_status unet_export(const struct deft_task_args *a);

#endif

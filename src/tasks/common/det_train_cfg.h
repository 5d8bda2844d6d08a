/* det_train_cfg.h (internal) - learning rate and optimizer of TAO's training_config. */
#ifndef DEFT_TASKS_COMMON_DET_TRAIN_CFG_H
#define DEFT_TASKS_COMMON_DET_TRAIN_CFG_H
#include <stdint.h>
#include "deft/optim.h"
#include "deft/yolo_spec.h"

struct det_lr_ctx {
    const struct deft_yolo_lr_config *c;
    int64_t total; /* steps of the whole run */
};
/* The schedule's rate at a step (a DEFT_LR_CALLBACK; ctx is a struct det_lr_ctx). */
double det_lr_at(const void *ctx, int64_t step);
void det_optim_from_config(const struct deft_yolo_training_config *tc, struct deft_optim_config *o);
/* TAO's soft_start_annealing_schedule at progress p in [0, 1]: exponential
 * ramp min -> max until soft_start, max until annealing, exponential decay
 * back to min (yolo_v4's, ssd's and detectnet_v2's schedule). */
double det_lr_soft_start_anneal(double min_lr, double max_lr, double soft_start, double annealing, double p);
#endif

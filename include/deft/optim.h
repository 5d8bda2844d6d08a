/* deft/optim.h - optimizers and learning-rate schedules.
 *
 * An optimizer updates a runtime's trainable-parameter block from its
 * gradient block (same offsets), so one step is a loop over contiguous
 * memory. Semantics follow PyTorch's torch.optim (so results can be compared
 * step by step), with TAO's options on top:
 *
 *     struct deft_optim *opt;
 *     deft_optim_create(&(struct deft_optim_config){.kind = DEFT_OPTIM_SGD, .momentum = 0.9f,
 *                       .weight_decay = 1e-4f}, rt, &opt);
 *     for (...) { deft_runtime_run(rt); deft_optim_step(opt, deft_lr_at(&sched, step)); }
 */
#ifndef DEFT_OPTIM_H
#define DEFT_OPTIM_H

#include "deft/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

enum deft_optim_kind { DEFT_OPTIM_SGD = 0, DEFT_OPTIM_ADAM, DEFT_OPTIM_ADAMW, DEFT_OPTIM_RMSPROP, DEFT_OPTIM_COUNT };

struct deft_optim_config {
    enum deft_optim_kind kind;
    float momentum;       /* SGD, RMSProp */
    bool nesterov;        /* SGD */
    float beta1, beta2;   /* Adam(W); 0 means the defaults 0.9, 0.999 */
    float eps;            /* Adam(W) 1e-8, RMSProp 1e-8 when 0 */
    float rho;            /* RMSProp smoothing (PyTorch alpha), 0.99 when 0 */
    float weight_decay;   /* L2 added to the gradient (SGD/Adam/RMSProp) or decoupled (AdamW) */
    float l1;             /* L1 regularization: l1 * sign(w) added to the gradient */
    bool decay_all;       /* also decay params flagged NO_DECAY (BN, biases), as PyTorch does */
    float clip_grad_norm; /* > 0: scale gradients so their global L2 norm is at most this */
};

struct deft_optim;

DEFT_API DEFT_NODISCARD enum deft_status deft_optim_create(const struct deft_optim_config *c,
                                                          struct deft_runtime *rt,
                                                          struct deft_optim **out);
DEFT_API void deft_optim_free(struct deft_optim *o);
/* One update with learning rate lr. Fails with DEFT_ERR_NUMERIC (and leaves
 * the parameters untouched) if any gradient is NaN/Inf. */
DEFT_API DEFT_NODISCARD enum deft_status deft_optim_step(struct deft_optim *o, float lr);
/* The same with gradients that carry a loss scale: each is multiplied by
 * grad_scale (1/loss_scale) first (clipping sees the unscaled norm). */
DEFT_API DEFT_NODISCARD enum deft_status deft_optim_step_scaled(struct deft_optim *o, float lr, float grad_scale);
DEFT_API int64_t deft_optim_steps(const struct deft_optim *o);
/* Optimizer state for checkpoints: i-th buffer (0..count-1), parallel to the
 * param block. deft_optim_set_steps restores the step counter. */
DEFT_API int deft_optim_state_count(const struct deft_optim *o);
DEFT_API float *deft_optim_state(struct deft_optim *o, int i, const char **name, size_t *n);
DEFT_API void deft_optim_set_steps(struct deft_optim *o, int64_t steps);
DEFT_API const char *deft_optim_name(enum deft_optim_kind k);
DEFT_API int deft_optim_from_name(const char *name); /* -1 if unknown */

enum deft_lr_kind {
    DEFT_LR_CONSTANT = 0,
    DEFT_LR_STEP,          /* lr * gamma^(floor(step / step_size)) */
    DEFT_LR_EXPONENTIAL,   /* lr * gamma^(step / step_size) */
    DEFT_LR_COSINE,        /* min + (lr - min) * (1 + cos(pi * t)) / 2 */
    DEFT_LR_SOFT_START_ANNEALING, /* TAO: exp ramp min->lr until soft_start, hold, exp decay to min from annealing_start */
    DEFT_LR_CALLBACK,      /* fn(ctx, step): schedules defined by a task (TAO's per-network ones) */
    DEFT_LR_COUNT
};

struct deft_lr_schedule {
    enum deft_lr_kind kind;
    float lr;              /* base / maximum learning rate */
    float min_lr;          /* cosine floor, soft-start start and end */
    int64_t total_steps;   /* length of the run (cosine, soft start) */
    int64_t warmup_steps;  /* linear warmup from 0 to the schedule's value */
    int64_t step_size;     /* step / exponential */
    float gamma;
    float soft_start;      /* fraction of the run */
    float annealing_start; /* fraction of the run */
    double (*fn)(const void *ctx, int64_t step); /* DEFT_LR_CALLBACK */
    const void *ctx;
};

DEFT_API float deft_lr_at(const struct deft_lr_schedule *s, int64_t step);
DEFT_API const char *deft_lr_name(enum deft_lr_kind k);

#ifdef __cplusplus
}
#endif
#endif

/* schedule.c - learning-rate schedules, including TAO's soft-start annealing
 * (exponential ramp from min_lr to lr over the first `soft_start` fraction of
 * the run, flat, then exponential decay back to min_lr from `annealing_start`). */
#include <math.h>
#include "deft/optim.h"

static const char *const lr_names[] = {"constant", "step", "exponential", "cosine",
                                       "soft_start_annealing", "callback"};
_Static_assert(sizeof lr_names / sizeof lr_names[0] == DEFT_LR_COUNT, "lr names");

const char *deft_lr_name(enum deft_lr_kind k) { return (unsigned)k < DEFT_LR_COUNT ? lr_names[k] : "?"; }

static double base_lr(const struct deft_lr_schedule *s, int64_t step) {
    double t = s->total_steps > 0 ? (double)step / (double)s->total_steps : 0;
    if (t > 1) t = 1;
    double step_size = s->step_size > 0 ? (double)s->step_size : 1;
    switch (s->kind) {
    case DEFT_LR_STEP: return s->lr * pow(s->gamma, floor((double)step / step_size));
    case DEFT_LR_EXPONENTIAL: return s->lr * pow(s->gamma, (double)step / step_size);
    case DEFT_LR_COSINE: return s->min_lr + (s->lr - s->min_lr) * 0.5 * (1 + cos(M_PI * t));
    case DEFT_LR_SOFT_START_ANNEALING: {
        double lo = s->min_lr > 0 ? s->min_lr : s->lr * 1e-2;
        if (t < s->soft_start) return lo * pow(s->lr / lo, t / s->soft_start);
        if (t < s->annealing_start) return s->lr;
        double span = 1.0 - s->annealing_start;
        return s->lr * pow(lo / s->lr, span > 0 ? (t - s->annealing_start) / span : 1.0);
    }
    case DEFT_LR_CALLBACK: return s->fn ? s->fn(s->ctx, step) : s->lr;
    default: return s->lr;
    }
}

float deft_lr_at(const struct deft_lr_schedule *s, int64_t step) {
    double lr = base_lr(s, step);
    if (s->warmup_steps > 0 && step < s->warmup_steps) lr *= (double)(step + 1) / (double)s->warmup_steps;
    return (float)lr;
}

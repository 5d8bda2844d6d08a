/* det_train_cfg.c - TAO's common training_config (yolo_v4, ssd) as deft's
 * learning-rate schedule and optimizer settings. */
#include <math.h>
#include <string.h>
#include "tasks/common/det_train_cfg.h"

double det_lr_soft_start_anneal(double min_lr, double max_lr, double soft_start, double annealing, double p) {
    if (p > 1) p = 1;
    double t = 1;
    if (soft_start > 0 && p < soft_start) t = p / soft_start;
    if (annealing < 1 && p > annealing) t = (1 - p) / (1 - annealing);
    return exp(log(min_lr) + t * (log(max_lr) - log(min_lr)));
}

/* TAO's soft-start cosine: linear from min to max over the soft start, then
 * cosine from max to min (its SoftStartCosineAnnealingScheduler). */
double det_lr_at(const void *ctx, int64_t step) {
    const struct det_lr_ctx *l = ctx;
    double p = l->total > 0 ? (double)step / (double)l->total : 1;
    if (p > 1) p = 1;
    if (l->c->kind == DEFT_YOLO_LR_SOFT_START_COSINE) {
        const struct deft_yolo_lr_cosine *c = &l->c->soft_start_cosine_annealing_schedule;
        if (p < c->soft_start) return c->min_learning_rate + (c->max_learning_rate - c->min_learning_rate) * p / c->soft_start;
        double q = c->soft_start < 1 ? (p - c->soft_start) / (1 - c->soft_start) : 1;
        return c->min_learning_rate + (c->max_learning_rate - c->min_learning_rate) * 0.5 * (1 + cos(M_PI * q));
    }
    const struct deft_yolo_lr_anneal *a = &l->c->soft_start_annealing_schedule;
    return det_lr_soft_start_anneal(a->min_learning_rate, a->max_learning_rate, a->soft_start, a->annealing, p);
}

void det_optim_from_config(const struct deft_yolo_training_config *tc, struct deft_optim_config *o) {
    memset(o, 0, sizeof *o);
    const struct deft_yolo_optimizer_config *oc = &tc->optimizer;
    switch (oc->kind) {
    case DEFT_YOLO_OPTIM_SGD:
        o->kind = DEFT_OPTIM_SGD;
        o->momentum = (float)oc->sgd.momentum;
        o->nesterov = oc->sgd.nesterov;
        break;
    case DEFT_YOLO_OPTIM_RMSPROP:
        o->kind = DEFT_OPTIM_RMSPROP;
        o->rho = (float)oc->rmsprop.rho;
        o->momentum = (float)oc->rmsprop.momentum;
        o->eps = (float)oc->rmsprop.epsilon;
        break;
    default:
        o->kind = DEFT_OPTIM_ADAM;
        o->beta1 = (float)oc->adam.beta1;
        o->beta2 = (float)oc->adam.beta2;
        o->eps = (float)oc->adam.epsilon;
    }
    /* Keras kernel regularizers: L2 w*sum(k^2) -> gradient 2*w*k; L1 w*sum|k| -> w*sign(k) */
    if (tc->regularizer.type == DEFT_YOLO_REG_L2) o->weight_decay = (float)(2 * tc->regularizer.weight);
    if (tc->regularizer.type == DEFT_YOLO_REG_L1) o->l1 = (float)tc->regularizer.weight;
}


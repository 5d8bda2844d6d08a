/* dnv2_cost.c - DetectNet_v2 cost (tao.md §3.3): per class, a weighted
 * binary cross-entropy on coverage and an L1 on the bbox distances weighted
 * by cov_norm, each masked and averaged; classes and objectives combined by
 * normalised weights, the objective weights auto-adjusted at epoch ends.
 * Sums are in double; values and gradients are returned together so a
 * training step runs the cost once. */
#include <math.h>
#include <string.h>
#include "tasks/detectnet_v2/dnv2_post.h"

#define DNV2_EPS 1e-5 /* TAO's EPSILON inside both logs */

enum deft_status dnv2_cost_state_init(struct dnv2_cost_state *s,
                                      const struct dnv2_cost_config *c) {
    if (!s || !c || c->n_classes <= 0 || !c->cls)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2 cost: no classes given");
    memset(s, 0, sizeof *s);
    double csum = 0;
    for (int k = 0; k < c->n_classes; k++) {
        const struct dnv2_cost_class *p = &c->cls[k];
        float v[6] = {p->class_weight, p->coverage_foreground_weight, p->initial_weight[0],
                      p->initial_weight[1], p->weight_target[0], p->weight_target[1]};
        for (int i = 0; i < 6; i++)
            if (!isfinite(v[i]) || v[i] < 0)
                return deft_set_error(DEFT_ERR_INVALID_ARG,
                                      "detectnet_v2 cost: class %d weights must be finite and "
                                      ">= 0", k);
        csum += p->class_weight;
    }
    if (!(csum > 0))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2 cost: the class weights sum to 0");
    if (!isfinite(c->min_objective_weight) || !isfinite(c->max_objective_weight) ||
        (c->enable_autoweighting && c->min_objective_weight > c->max_objective_weight))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2 cost: min_objective_weight %g above "
                              "max_objective_weight %g", (double)c->min_objective_weight,
                              (double)c->max_objective_weight);
    size_t k = (size_t)c->n_classes;
    s->n_classes = c->n_classes;
    s->class_w = deft_calloc(k, sizeof *s->class_w);
    s->obj_w = deft_calloc(k * DNV2_N_OBJ, sizeof *s->obj_w);
    s->cost_sum = deft_calloc(k * DNV2_N_OBJ, sizeof *s->cost_sum);
    if (!s->class_w || !s->obj_w || !s->cost_sum) {
        dnv2_cost_state_free(s);
        return deft_set_error(DEFT_ERR_NOMEM, "detectnet_v2 cost: %d classes", c->n_classes);
    }
    for (int i = 0; i < c->n_classes; i++) {
        const struct dnv2_cost_class *p = &c->cls[i];
        s->class_w[i] = (float)(p->class_weight / csum);
        double osum = (double)p->initial_weight[0] + p->initial_weight[1];
        for (int o = 0; o < DNV2_N_OBJ; o++)
            s->obj_w[i * DNV2_N_OBJ + o] = osum > 0 ? (float)(p->initial_weight[o] / osum) : 0;
    }
    return DEFT_OK;
}

void dnv2_cost_state_free(struct dnv2_cost_state *s) {
    if (!s) return;
    deft_free(s->class_w), deft_free(s->obj_w), deft_free(s->cost_sum);
    memset(s, 0, sizeof *s);
}

static double sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* Sum over one class plane of all n images of the masked weighted BCE; its
 * gradient times `scale` into g (if any). */
static double cov_cost(const struct dnv2_cost_config *c, int k, int n, size_t plane,
                       const float *pred, const struct dnv2_targets *t, double scale,
                       float *g) {
    size_t K = (size_t)c->n_classes;
    double fw = c->cls[k].coverage_foreground_weight, sum = 0;
    for (int b = 0; b < n; b++) {
        size_t base = ((size_t)b * K + (size_t)k) * plane;
        for (size_t p = base; p < base + plane; p++) {
            double x = pred[p], tv = t->cov[p], m = t->mask ? t->mask[p] : 1.0;
            double pr = c->cov_is_logits ? sigmoid(x) : x;
            double w = tv > 0.5 ? fw : 1.0 - fw;
            sum += m * w * -(tv * log(pr + DNV2_EPS) + (1.0 - tv) * log(1.0 - pr + DNV2_EPS));
            if (!g) continue;
            double d = m * w * (-tv / (pr + DNV2_EPS) + (1.0 - tv) / (1.0 - pr + DNV2_EPS));
            if (c->cov_is_logits) d *= pr * (1.0 - pr);
            g[p] = (float)(d * scale);
        }
    }
    return sum;
}

/* The same for |pred - target| * cov_norm over class k's 4 bbox planes. */
static double bbox_cost(const struct dnv2_cost_config *c, int k, int n, size_t plane,
                        const float *pred, const struct dnv2_targets *t, double scale,
                        float *g) {
    size_t K = (size_t)c->n_classes;
    double sum = 0;
    for (int b = 0; b < n; b++) {
        size_t cbase = ((size_t)b * K + (size_t)k) * plane;
        for (int q = 0; q < 4; q++) {
            size_t base = ((size_t)b * 4 * K + 4 * (size_t)k + (size_t)q) * plane;
            for (size_t p = 0; p < plane; p++) {
                double m = t->mask ? t->mask[cbase + p] : 1.0;
                double wn = m * t->cov_norm[cbase + p];
                double d = (double)pred[base + p] - t->bbox[base + p];
                sum += wn * fabs(d);
                if (g) g[base + p] = (float)(wn * (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) * scale);
            }
        }
    }
    return sum;
}

enum deft_status dnv2_cost(const struct dnv2_cost_state *s, const struct dnv2_cost_config *c,
                           int n, int gh, int gw, const float *pred_cov, const float *pred_bbox,
                           const struct dnv2_targets *t, float *grad_cov, float *grad_bbox,
                           struct dnv2_cost_terms *terms) {
    if (!s || !c || !s->class_w || s->n_classes != c->n_classes || n <= 0 || gh <= 0 ||
        gw <= 0 || !pred_cov || !pred_bbox || !t || !t->cov || !t->cov_norm || !t->bbox ||
        !terms)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2 cost: state, config (%d classes), %d images of "
                              "%dx%d, predictions and targets are required",
                              c ? c->n_classes : 0, n, gw, gh);
    size_t plane = (size_t)gh * (size_t)gw;
    double cells = (double)n * (double)plane;
    terms->total = 0;
    for (int k = 0; k < c->n_classes; k++) {
        double cw = s->class_w[k];
        const float *ow = s->obj_w + (size_t)k * DNV2_N_OBJ;
        double mc = cov_cost(c, k, n, plane, pred_cov, t, cw * ow[0] / cells, grad_cov) / cells;
        double mb = bbox_cost(c, k, n, plane, pred_bbox, t, cw * ow[1] / (4 * cells), grad_bbox) /
                    (4 * cells);
        terms->total += cw * (ow[0] * mc + ow[1] * mb);
        if (terms->mean) terms->mean[k * DNV2_N_OBJ] = mc, terms->mean[k * DNV2_N_OBJ + 1] = mb;
    }
    if (!isfinite(terms->total))
        return deft_set_error(DEFT_ERR_NUMERIC,
                              "detectnet_v2 cost: not finite (a prediction or target is NaN or "
                              "a probability lies outside [0, 1])");
    return DEFT_OK;
}

void dnv2_cost_accumulate(struct dnv2_cost_state *s, const double *mean) {
    if (!s || !mean) return;
    for (int i = 0; i < s->n_classes * DNV2_N_OBJ; i++) s->cost_sum[i] += mean[i];
}

void dnv2_cost_epoch_end(struct dnv2_cost_state *s, const struct dnv2_cost_config *c) {
    if (!s || !c || s->n_classes != c->n_classes) return;
    for (int k = 0; c->enable_autoweighting && k < c->n_classes; k++) {
        double w[DNV2_N_OBJ], sum = 0;
        for (int o = 0; o < DNV2_N_OBJ; o++) {
            double cs = s->cost_sum[k * DNV2_N_OBJ + o];
            w[o] = c->cls[k].weight_target[o] * (cs == 0 ? 0.0 : 1.0 / cs);
            sum += w[o];
        }
        if (sum == 0) continue; /* nothing learned about this class: keep its weights */
        for (int o = 0; o < DNV2_N_OBJ; o++) {
            double v = fmax(w[o] / sum, c->min_objective_weight);
            s->obj_w[k * DNV2_N_OBJ + o] = (float)fmin(v, c->max_objective_weight);
        }
    }
    memset(s->cost_sum, 0, (size_t)s->n_classes * DNV2_N_OBJ * sizeof *s->cost_sum);
}

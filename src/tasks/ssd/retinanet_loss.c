/* retinanet_loss.c - TAO's RetinaNet loss on the raw head outputs: sigmoid
 * focal loss over the non-neutral priors' object classes + loc_weight *
 * smooth-L1 over the positives, normalised by the batch's positives;
 * gradients scattered back to the ten NCHW outputs (include/deft/ssd.h). */
#include <math.h>
#include <string.h>
#include "deft/ssd.h"

#define FOCAL_PROB_FLOOR 1e-18 /* TAO clamps p_t before the log */

struct deft_retinanet_loss_config deft_retinanet_loss_config_default(void) {
    return (struct deft_retinanet_loss_config){1.0f, 0.25f, 2.0f, 0.5f, 0.4f};
}

/* Focal loss of one logit and its derivative (nothing through the clamp). */
static double focal(float z, bool y, double alpha, double gamma, double *dz) {
    double p = 1.0 / (1.0 + exp(-(double)z));
    double pt = y ? p : 1.0 - p, at = y ? alpha : 1.0 - alpha, sgn = y ? 1.0 : -1.0;
    double q = 1.0 - pt, mod = gamma == 0 ? 1.0 : pow(q, gamma);
    bool clamped = pt < FOCAL_PROB_FLOOR;
    double ce = -log(clamped ? FOCAL_PROB_FLOOR : pt);
    /* d/dz of -a_t q^g log p_t with dp_t/dz = sgn p_t q: -a_t sgn q^g (g p_t ce + q) */
    *dz = clamped ? -at * sgn * gamma * mod * pt * ce : -at * sgn * mod * (gamma * pt * ce + q);
    return at * mod * ce;
}

static double smooth_l1(float d, float *g) {
    float a = fabsf(d);
    if (a < 1.0f) {
        *g = d;
        return 0.5 * (double)d * (double)d;
    }
    *g = d > 0 ? 1.0f : -1.0f;
    return (double)a - 0.5;
}

struct work {
    float *conf, *loc, *tgt, *gconf, *gloc;
    int *label;
};

static void work_free(struct work *w) {
    deft_free(w->conf), deft_free(w->loc), deft_free(w->tgt), deft_free(w->gconf), deft_free(w->gloc);
    deft_free(w->label);
}

static enum deft_status work_alloc(struct work *w, long np, int K) {
    size_t n = (size_t)np;
    memset(w, 0, sizeof *w);
    w->conf = deft_malloc(n * (size_t)K * sizeof(float));
    w->loc = deft_malloc(n * 4 * sizeof(float));
    w->tgt = deft_malloc(n * 4 * sizeof(float));
    w->gconf = deft_malloc(n * (size_t)K * sizeof(float));
    w->gloc = deft_malloc(n * 4 * sizeof(float));
    w->label = deft_malloc(n * sizeof(int));
    if (w->conf && w->loc && w->tgt && w->gconf && w->gloc && w->label) return DEFT_OK;
    work_free(w);
    return deft_set_error(DEFT_ERR_NOMEM, "out of memory (retinanet loss over %zu priors)", n);
}

static enum deft_status check(const struct deft_retinanet_loss_config *c, const struct deft_ssd_map *m, int n_maps,
                              int K, const float *priors, int batch, const float *const *outs) {
    if (!c || !m || n_maps < 1 || K < 2 || !priors || batch < 1 || !outs)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_retinanet_loss: bad arguments");
    for (int l = 0; l < n_maps; l++)
        if (m[l].h < 1 || m[l].w < 1 || m[l].boxes < 1 || !outs[l] || !outs[n_maps + l])
            return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_retinanet_loss: map %d is %dx%d with %d boxes", l,
                                  m[l].h, m[l].w, m[l].boxes);
    if (!(c->loc_weight >= 0) || !(c->alpha >= 0 && c->alpha <= 1) || !(c->gamma >= 0))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_retinanet_loss: loc_weight %g, alpha %g, gamma %g",
                              (double)c->loc_weight, (double)c->alpha, (double)c->gamma);
    return DEFT_OK;
}

/* Image b's sums (cls, loc) and un-normalised gradients into w. */
static void image_loss(const struct deft_retinanet_loss_config *c, int K, long np, struct work *w, double *cls,
                       double *loc) {
    for (long i = 0; i < np; i++) {
        const float *z = w->conf + (size_t)i * (size_t)K;
        float *gz = w->gconf + (size_t)i * (size_t)K;
        memset(gz, 0, (size_t)K * sizeof *gz);
        memset(w->gloc + 4 * (size_t)i, 0, 4 * sizeof(float));
        int y = w->label[i];
        if (y < 0) continue; /* neutral */
        for (int k = 1; k < K; k++) {
            double d;
            *cls += focal(z[k], k == y, c->alpha, c->gamma, &d);
            gz[k] = (float)d;
        }
        if (y == 0) continue;
        for (int k = 0; k < 4; k++) {
            float g;
            *loc += smooth_l1(w->loc[4 * (size_t)i + (size_t)k] - w->tgt[4 * (size_t)i + (size_t)k], &g);
            w->gloc[4 * (size_t)i + (size_t)k] = g;
        }
    }
}

static void scale(float *v, size_t n, double f) {
    for (size_t i = 0; i < n; i++) v[i] = (float)(v[i] * f);
}

enum deft_status deft_retinanet_loss(const struct deft_retinanet_loss_config *c, const struct deft_ssd_map *m,
                                     int n_maps, int K, const float *priors, int batch, const float *const *outs,
                                     const struct deft_box *const *gt, const int *n_gt, float *const *grads,
                                     struct deft_ssd_loss_terms *t) {
    enum deft_status s = check(c, m, n_maps, K, priors, batch, outs);
    if (s) return s;
    long np = deft_ssd_map_priors(m, n_maps);
    memset(t, 0, sizeof *t);
    /* positives first: the normaliser is the whole batch's */
    int *labels = deft_malloc((size_t)batch * (size_t)np * sizeof(int));
    float *tgts = deft_malloc((size_t)batch * (size_t)np * 4 * sizeof(float));
    struct work w;
    if (!labels || !tgts) {
        deft_free(labels), deft_free(tgts);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory (retinanet loss)");
    }
    for (int b = 0; b < batch && !s; b++)
        s = deft_ssd_match(priors, np, gt ? gt[b] : NULL, gt && n_gt ? n_gt[b] : 0, c->pos_iou, c->neg_iou,
                           labels + (size_t)b * (size_t)np, tgts + (size_t)b * (size_t)np * 4);
    for (size_t i = 0; !s && i < (size_t)batch * (size_t)np; i++) {
        t->n_pos += labels[i] > 0;
        t->n_neg += labels[i] == 0;
        t->n_neutral += labels[i] < 0;
    }
    if (!s) s = work_alloc(&w, np, K);
    if (s) {
        deft_free(labels), deft_free(tgts);
        return s;
    }
    double norm = t->n_pos > 1 ? (double)t->n_pos : 1.0, cls = 0, loc = 0;
    for (int b = 0; b < batch; b++) {
        deft_ssd_gather(m, n_maps, K, outs, b, w.conf, w.loc);
        memcpy(w.label, labels + (size_t)b * (size_t)np, (size_t)np * sizeof(int));
        memcpy(w.tgt, tgts + (size_t)b * (size_t)np * 4, (size_t)np * 4 * sizeof(float));
        image_loss(c, K, np, &w, &cls, &loc);
        if (!grads) continue;
        scale(w.gconf, (size_t)np * (size_t)K, 1.0 / norm);
        scale(w.gloc, (size_t)np * 4, c->loc_weight / norm);
        deft_ssd_scatter(m, n_maps, K, w.gconf, w.gloc, b, grads);
    }
    t->cls = cls / norm;
    t->loc = c->loc_weight * loc / norm;
    t->total = t->cls + t->loc;
    work_free(&w);
    deft_free(labels), deft_free(tgts);
    return DEFT_OK;
}

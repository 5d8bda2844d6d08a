/* ssd_loss.c - TAO's SSD loss on the raw head outputs: softmax CE with
 * batch-wide 3:1 hard-negative mining + alpha * smooth-L1 over the positives,
 * normalised by the batch's positives; gradients scattered back to the
 * twelve NCHW outputs (include/deft/ssd.h). */
#include <math.h>
#include <string.h>
#include "deft/det_ops.h"
#include "deft/ssd.h"

#define SSD_PROB_FLOOR 1e-15 /* TAO clamps the softmax before the log */

long deft_ssd_map_priors(const struct deft_ssd_map *m, int n) {
    long p = 0;
    for (int l = 0; l < n; l++) p += (long)m[l].h * m[l].w * m[l].boxes;
    return p;
}

struct deft_ssd_loss_config deft_ssd_loss_config_default(void) {
    return (struct deft_ssd_loss_config){1.0f, 3.0f, 0, 0.5f, 0.5f};
}

/* Index of (prior channel k of K, image b) in map l's NCHW output, for each prior of the map. */
#define SSD_AT(m, b, K, box, k, y, x) \
    ((((size_t)(b) * (size_t)((m)->boxes * (K)) + (size_t)((box) * (K) + (k))) * (size_t)(m)->h + (size_t)(y)) * \
         (size_t)(m)->w + (size_t)(x))

/* Copy between image b's flat prior-order rows (K values each) and the
 * maps' NCHW outputs maps[0..n_maps): to_flat gathers, else scatters. */
static void transfer(const struct deft_ssd_map *m, int n_maps, int K, int b, float *flat, float *const *maps,
                     bool to_flat) {
    size_t p = 0;
    for (int l = 0; l < n_maps; l++) {
        const struct deft_ssd_map *ml = &m[l];
        for (int y = 0; y < ml->h; y++)
            for (int x = 0; x < ml->w; x++)
                for (int box = 0; box < ml->boxes; box++, p++)
                    for (int k = 0; k < K; k++) {
                        float *v = &maps[l][SSD_AT(ml, b, K, box, k, y, x)];
                        float *f = &flat[p * (size_t)K + (size_t)k];
                        if (to_flat)
                            *f = *v;
                        else
                            *v = *f;
                    }
    }
}

void deft_ssd_scatter(const struct deft_ssd_map *m, int n_maps, int n_classes, const float *conf, const float *loc,
                      int b, float *const *outs) {
    if (conf) transfer(m, n_maps, n_classes, b, (float *)conf, outs, false);
    if (loc) transfer(m, n_maps, 4, b, (float *)loc, outs + n_maps, false);
}

void deft_ssd_gather(const struct deft_ssd_map *m, int n_maps, int n_classes, const float *const *outs, int b,
                     float *conf, float *loc) {
    /* read only: transfer writes the maps only when scattering */
    if (conf) transfer(m, n_maps, n_classes, b, conf, (float *const *)outs, true);
    if (loc) transfer(m, n_maps, 4, b, loc, (float *const *)outs + n_maps, true);
}

/* Log-softmax of one row; p gets the probabilities. */
static void softmax_row(const float *z, int K, double *p) {
    double mx = z[0];
    for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    double s = 0;
    for (int k = 0; k < K; k++) s += (p[k] = exp((double)z[k] - mx));
    for (int k = 0; k < K; k++) p[k] /= s;
}

struct work {
    float *conf, *loc, *tgt, *ce, *gconf, *gloc;
    int *label;
    int8_t *hl;
    uint8_t *keep;
    double *prob;
};

static void work_free(struct work *w) {
    deft_free(w->conf), deft_free(w->loc), deft_free(w->tgt), deft_free(w->ce), deft_free(w->gconf);
    deft_free(w->gloc), deft_free(w->label), deft_free(w->hl), deft_free(w->keep), deft_free(w->prob);
}

static enum deft_status work_alloc(struct work *w, int batch, long np, int K) {
    size_t n = (size_t)batch * (size_t)np;
    memset(w, 0, sizeof *w);
    w->conf = deft_malloc(n * (size_t)K * sizeof(float));
    w->loc = deft_malloc(n * 4 * sizeof(float));
    w->tgt = deft_malloc(n * 4 * sizeof(float));
    w->ce = deft_malloc(n * sizeof(float));
    w->gconf = deft_calloc(n * (size_t)K, sizeof(float));
    w->gloc = deft_calloc(n * 4, sizeof(float));
    w->label = deft_malloc(n * sizeof(int));
    w->hl = deft_malloc(n);
    w->keep = deft_malloc(n);
    w->prob = deft_malloc(n * (size_t)K * sizeof(double));
    if (w->conf && w->loc && w->tgt && w->ce && w->gconf && w->gloc && w->label && w->hl && w->keep && w->prob)
        return DEFT_OK;
    work_free(w);
    return deft_set_error(DEFT_ERR_NOMEM, "out of memory (ssd loss over %zu priors)", n);
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

static enum deft_status check(const struct deft_ssd_loss_config *c, const struct deft_ssd_map *m, int n_maps,
                              int K, const float *priors, int batch, const float *const *outs) {
    if (!c || !m || n_maps < 1 || K < 2 || !priors || batch < 1 || !outs)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_ssd_loss: bad arguments");
    for (int l = 0; l < n_maps; l++)
        if (m[l].h < 1 || m[l].w < 1 || m[l].boxes < 1 || !outs[l] || !outs[n_maps + l])
            return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_ssd_loss: map %d is %dx%d with %d boxes", l, m[l].h,
                                  m[l].w, m[l].boxes);
    if (!(c->alpha >= 0) || !(c->neg_pos_ratio >= 0) || c->n_neg_min < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_ssd_loss: alpha %g, neg_pos_ratio %g, n_neg_min %d",
                              (double)c->alpha, (double)c->neg_pos_ratio, c->n_neg_min);
    return DEFT_OK;
}

enum deft_status deft_ssd_loss(const struct deft_ssd_loss_config *c, const struct deft_ssd_map *m, int n_maps, int K,
                               const float *priors, int batch, const float *const *outs,
                               const struct deft_box *const *gt, const int *n_gt, float *const *grads,
                               struct deft_ssd_loss_terms *t) {
    enum deft_status s = check(c, m, n_maps, K, priors, batch, outs);
    if (s) return s;
    long np = deft_ssd_map_priors(m, n_maps);
    struct work w;
    if ((s = work_alloc(&w, batch, np, K))) return s;
    memset(t, 0, sizeof *t);
    for (int b = 0; b < batch && !s; b++) {
        size_t o = (size_t)b * (size_t)np;
        deft_ssd_gather(m, n_maps, K, outs, b, w.conf + o * (size_t)K, w.loc + o * 4);
        s = deft_ssd_match(priors, np, gt ? gt[b] : NULL, gt && n_gt ? n_gt[b] : 0, c->pos_iou, c->neg_iou,
                           w.label + o, w.tgt + o * 4);
    }
    size_t n = (size_t)batch * (size_t)np;
    for (size_t i = 0; i < n && !s; i++) {
        double *p = w.prob + i * (size_t)K;
        softmax_row(w.conf + i * (size_t)K, K, p);
        int y = w.label[i] < 0 ? 0 : w.label[i];
        double py = p[y] > SSD_PROB_FLOOR ? p[y] : SSD_PROB_FLOOR;
        w.ce[i] = (float)-log(py);
        w.hl[i] = (int8_t)(w.label[i] > 0 ? 1 : w.label[i] == 0 ? 0 : -1);
        t->n_pos += w.label[i] > 0;
        t->n_neutral += w.label[i] < 0;
    }
    struct deft_hnm_opts ho = {c->neg_pos_ratio, c->n_neg_min, true};
    if (!s) s = deft_hard_negatives(w.ce, w.hl, batch, (int)np, &ho, w.keep);
    double norm = t->n_pos > 1 ? (double)t->n_pos : 1.0, cls = 0, loc = 0;
    for (size_t i = 0; i < n && !s; i++) {
        if (!w.keep[i]) continue;
        double *p = w.prob + i * (size_t)K;
        int y = w.label[i] > 0 ? w.label[i] : 0;
        t->n_neg += w.label[i] == 0;
        cls += w.ce[i];
        if (p[y] > SSD_PROB_FLOOR) /* d(-log p_y)/dz = p - onehot; nothing through the clamp */
            for (int k = 0; k < K; k++) w.gconf[i * (size_t)K + (size_t)k] = (float)((p[k] - (k == y)) / norm);
        if (w.label[i] > 0)
            for (int k = 0; k < 4; k++) {
                float g;
                loc += smooth_l1(w.loc[i * 4 + (size_t)k] - w.tgt[i * 4 + (size_t)k], &g);
                w.gloc[i * 4 + (size_t)k] = (float)(c->alpha * g / norm);
            }
    }
    if (!s) {
        t->cls = cls / norm;
        t->loc = c->alpha * loc / norm;
        t->total = t->cls + t->loc;
    }
    for (int b = 0; !s && grads && b < batch; b++) {
        size_t o = (size_t)b * (size_t)np;
        transfer(m, n_maps, K, b, w.gconf + o * (size_t)K, grads, false);
        transfer(m, n_maps, 4, b, w.gloc + o * 4, grads + n_maps, false);
    }
    work_free(&w);
    return s;
}

/* Class probabilities of one row: softmax (SSD) or independent sigmoids (RetinaNet). */
static void probs_row(const float *z, int K, bool sigmoid, double *p) {
    if (!sigmoid) {
        softmax_row(z, K, p);
        return;
    }
    for (int k = 0; k < K; k++) p[k] = 1.0 / (1.0 + exp(-(double)z[k]));
}

static enum deft_status decode_image(const struct deft_ssd_map *m, int n_maps, int K, const float *const *outs, int b,
                                     const float *priors, float conf, bool sigmoid, struct deft_box **boxes, int *n) {
    *boxes = NULL;
    *n = 0;
    if (!m || n_maps < 1 || K < 2 || !outs || !priors || b < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_ssd_decode_image: bad arguments");
    long np = deft_ssd_map_priors(m, n_maps);
    float *cf = deft_malloc((size_t)np * (size_t)K * sizeof *cf), *lc = deft_malloc((size_t)np * 4 * sizeof *lc);
    double *p = deft_malloc((size_t)K * sizeof *p);
    int cap = 0;
    enum deft_status s = cf && lc && p ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) deft_ssd_gather(m, n_maps, K, outs, b, cf, lc);
    for (long i = 0; i < np && !s; i++) {
        probs_row(cf + (size_t)i * (size_t)K, K, sigmoid, p);
        float box[4];
        bool decoded = false;
        for (int k = 1; k < K && !s; k++) {
            if (!((float)p[k] >= conf)) continue;
            if (!decoded) {
                const float *pr = priors + 8 * i;
                float a[4] = {pr[0], pr[1], pr[2], pr[3]};
                deft_ssd_decode(pr + 4, lc + 4 * (size_t)i, a, 1, box);
                decoded = true;
            }
            if (*n == cap) {
                cap = cap ? 2 * cap : 256;
                struct deft_box *nb = deft_realloc(*boxes, (size_t)cap * sizeof *nb);
                if (!nb) {
                    s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                    break;
                }
                *boxes = nb;
            }
            (*boxes)[(*n)++] = (struct deft_box){box[0], box[1], box[2], box[3], k - 1, false, (float)p[k]};
        }
    }
    deft_free(cf);
    deft_free(lc);
    deft_free(p);
    if (s) {
        deft_free(*boxes);
        *boxes = NULL;
        *n = 0;
    }
    return s;
}

enum deft_status deft_ssd_decode_image(const struct deft_ssd_map *m, int n_maps, int K, const float *const *outs,
                                       int b, const float *priors, float conf, struct deft_box **boxes, int *n) {
    return decode_image(m, n_maps, K, outs, b, priors, conf, false, boxes, n);
}

enum deft_status deft_retinanet_decode_image(const struct deft_ssd_map *m, int n_maps, int K,
                                             const float *const *outs, int b, const float *priors, float conf,
                                             struct deft_box **boxes, int *n) {
    return decode_image(m, n_maps, K, outs, b, priors, conf, true, boxes, n);
}

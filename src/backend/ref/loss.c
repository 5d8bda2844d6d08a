/* loss.c - reference losses (mean reduction, output loss[1]) and their gradient
 * LOSS_BWD (x, target, dloss[1]) -> dx, scaled by dloss[0]. PyTorch semantics:
 *
 *   SOFTMAX_CE  nn.CrossEntropyLoss(label_smoothing=e) over x[n, c, *]. Target
 *               either class ids [n, *] stored as floats (ids outside [0, c) are
 *               ignored and not counted, like ignore_index) or probabilities of
 *               x's shape. Smoothing mixes the target with uniform e/c.
 *   BCE_LOGITS  nn.BCEWithLogitsLoss: max(x,0) - x*t + log(1 + exp(-|x|)).
 *   FOCAL       torchvision.ops.sigmoid_focal_loss(reduction="mean"): the BCE
 *               term times (1 - p_t)^gamma, times alpha_t when alpha >= 0.
 *   L1, SMOOTH_L1 (beta; beta = 0 is L1), L2 (nn.MSELoss).
 *
 * Sums run serially in double so the value never depends on the thread count.
 */
#include <math.h>
#include "backend/ref/ref_impl.h"

/* Geometry of softmax CE: rows = n * spatial, each row strided by `spatial`. */
struct ce_geom {
    int64_t n, c, spatial;
    bool probs; /* target has x's shape */
};

static enum deft_status ce_geom(const struct deft_graph *g, const struct deft_node *nd,
                                struct ce_geom *G) {
    const struct deft_shape *xs = ref_shape(g, nd->in[0]), *ts = ref_shape(g, nd->in[1]);
    if (xs->ndim < 1)
        return deft_set_error(DEFT_ERR_SHAPE, "ref softmax_ce %s: x has no class axis", nd->name);
    G->n = xs->ndim >= 2 ? xs->d[0] : 1;
    G->c = xs->ndim >= 2 ? xs->d[1] : xs->d[0];
    G->spatial = 1;
    for (int i = 2; i < xs->ndim; i++) G->spatial *= xs->d[i];
    G->probs = deft_shape_equal(xs, ts);
    if (!G->probs && deft_shape_numel(ts) != G->n * G->spatial)
        return deft_set_error(DEFT_ERR_SHAPE, "ref softmax_ce %s: target shape does not fit",
                              nd->name);
    return DEFT_OK;
}

/* log-sum-exp of one row (elements x[j*stride], j < c). */
static double row_lse(const float *x, int64_t c, int64_t stride) {
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < c; j++) mx = fmax(mx, x[j * stride]);
    for (int64_t j = 0; j < c; j++) sum += exp(x[j * stride] - mx);
    return mx + log(sum);
}

/* Class id of a float target, or -1 when outside [0, c) (ignored). */
static int64_t class_id(float t, int64_t c) {
    if (!(t >= 0) || t >= (float)c) return -1;
    return (int64_t)t;
}

/* Softmax CE: loss (forward) and, when dx != NULL, its gradient times `scale`
 * divided by the count (backward). Returns the mean loss. */
static double softmax_ce(const struct ce_geom *G, float eps, const float *x, const float *t,
                         float *dx, double scale) {
    const int64_t c = G->c, sp = G->spatial, rows = G->n * sp;
    double total = 0;
    int64_t count = 0;
    /* Pass 1: loss and the count of contributing rows (needed to scale dx). */
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = (r / sp) * c * sp + r % sp;
        const double lse = row_lse(x + base, c, sp);
        if (G->probs) {
            double l = 0;
            for (int64_t j = 0; j < c; j++) {
                double tj = (1.0 - eps) * t[base + j * sp] + (double)eps / (double)c;
                l -= tj * (x[base + j * sp] - lse);
            }
            total += l;
            count++;
        } else {
            int64_t y = class_id(t[r], c);
            if (y < 0) continue;
            double sum_logp = 0;
            for (int64_t j = 0; j < c; j++) sum_logp += x[base + j * sp] - lse;
            total += -(1.0 - eps) * (x[base + y * sp] - lse) - (double)eps / (double)c * sum_logp;
            count++;
        }
    }
    if (!dx) return count > 0 ? total / (double)count : 0.0;
    /* Pass 2: d/dx_j = p_j * sum(q) - q_j with q the smoothed target. */
    const double k = count > 0 ? scale / (double)count : 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = (r / sp) * c * sp + r % sp;
        const double lse = row_lse(x + base, c, sp);
        const int64_t y = G->probs ? 0 : class_id(t[r], c);
        double qsum = 1.0; /* sum of the smoothed target: 1 for class ids */
        if (G->probs) {
            qsum = 0;
            for (int64_t j = 0; j < c; j++)
                qsum += (1.0 - eps) * t[base + j * sp] + (double)eps / (double)c;
        }
        for (int64_t j = 0; j < c; j++) {
            const int64_t i = base + j * sp;
            if (y < 0) {
                dx[i] = 0.0f;
                continue;
            }
            const double p = exp(x[i] - lse);
            const double q = G->probs ? (1.0 - eps) * t[i] + (double)eps / (double)c
                                      : (j == y ? 1.0 - eps : 0.0) + (double)eps / (double)c;
            dx[i] = (float)(k * (p * qsum - q));
        }
    }
    return count > 0 ? total / (double)count : 0.0;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Element loss and its derivative for the element-wise kinds. */
static void elem_loss(const struct deft_loss_attr *a, double x, double t, double *l, double *d) {
    switch (a->kind) {
    case DEFT_LOSS_BCE_LOGITS:
        *l = fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
        *d = sigmoid(x) - t;
        return;
    case DEFT_LOSS_FOCAL: {
        const double p = sigmoid(x), ce = fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
        const double pt = p * t + (1 - p) * (1 - t), mod = 1 - pt, gm = a->gamma;
        const double at = a->alpha >= 0 ? a->alpha * t + (1 - a->alpha) * (1 - t) : 1.0;
        const double dmod = -(2 * t - 1) * p * (1 - p); /* d(1 - p_t)/dx */
        const double modg = pow(mod, gm);
        /* d(mod^gamma)/dx; the limit at mod = 0 is 0 for gamma > 1 and taken as 0 otherwise. */
        const double dmodg = gm != 0 && mod > 0 ? gm * pow(mod, gm - 1) * dmod : 0.0;
        *l = at * ce * modg;
        *d = at * ((p - t) * modg + ce * dmodg);
        return;
    }
    case DEFT_LOSS_L1: {
        const double df = x - t;
        *l = fabs(df);
        *d = df > 0 ? 1.0 : (df < 0 ? -1.0 : 0.0);
        return;
    }
    case DEFT_LOSS_SMOOTH_L1: {
        const double df = x - t, ad = fabs(df), beta = a->beta;
        if (ad < beta) {
            *l = 0.5 * df * df / beta;
            *d = df / beta;
        } else {
            *l = ad - 0.5 * beta;
            *d = df > 0 ? 1.0 : (df < 0 ? -1.0 : 0.0);
        }
        return;
    }
    case DEFT_LOSS_L2:
    default: {
        const double df = x - t;
        *l = df * df;
        *d = 2 * df;
        return;
    }
    }
}

static enum deft_status check_kind(const struct deft_node *nd) {
    if ((unsigned)nd->attr.loss.kind >= DEFT_LOSS_COUNT)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "ref loss %s: unknown kind %d", nd->name,
                              (int)nd->attr.loss.kind);
    return DEFT_OK;
}

/* Shared forward/backward: returns the mean loss; fills dx (times scale) when non-NULL. */
static enum deft_status loss_run(const struct deft_graph *g, const struct deft_node *nd,
                                 void *const *ptr, float *dx, double scale, double *loss) {
    enum deft_status st = check_kind(nd);
    if (st) return st;
    const struct deft_loss_attr *a = &nd->attr.loss;
    const float *x = ref_in(nd, ptr, 0), *t = ref_in(nd, ptr, 1);
    if (a->kind == DEFT_LOSS_SOFTMAX_CE) {
        struct ce_geom G = {0};
        st = ce_geom(g, nd, &G);
        if (st) return st;
        *loss = softmax_ce(&G, a->label_smoothing, x, t, dx, scale);
        return DEFT_OK;
    }
    const int64_t cnt = ref_numel(g, nd->in[0]);
    if (ref_numel(g, nd->in[1]) != cnt)
        return deft_set_error(DEFT_ERR_SHAPE, "ref loss %s: target shape differs from x",
                              nd->name);
    double total = 0;
    const double k = cnt > 0 ? scale / (double)cnt : 0.0;
    for (int64_t i = 0; i < cnt; i++) {
        double l, d;
        elem_loss(a, x[i], t[i], &l, &d);
        total += l;
        if (dx) dx[i] = (float)(d * k);
    }
    *loss = cnt > 0 ? total / (double)cnt : 0.0;
    return DEFT_OK;
}

/* LOSS: in x, target; out loss[1]. */
enum deft_status deft_ref_loss(const struct deft_graph *g, int n, void *const *ptr,
                               const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    double loss = 0;
    enum deft_status st = loss_run(g, nd, ptr, NULL, 0.0, &loss);
    if (st) return st;
    ref_out(nd, ptr, 0)[0] = (float)loss;
    return DEFT_OK;
}

/* LOSS_BWD: in x, target, dloss[1]; out dx. */
enum deft_status deft_ref_loss_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const float *dl = ref_in(nd, ptr, 2);
    double loss;
    return loss_run(g, nd, ptr, ref_out(nd, ptr, 0), dl ? dl[0] : 1.0, &loss);
}

/* dnv2_cluster.c - DetectNet_v2 post-processing (tao.md §3.4): per class,
 * cells above the coverage threshold are decoded to boxes and clustered,
 * by DBSCAN on 1 - IoU with coverage as sample weight (sklearn's algorithm:
 * core points, cluster order, border points) or by TAO's NMS. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tasks/detectnet_v2/dnv2_post.h"

enum deft_status dnv2_grid_check(const struct dnv2_grid *g) {
    if (!g) return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2: no grid given");
    if (g->in_w <= 0 || g->in_h <= 0 || g->gw <= 0 || g->gh <= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2: input %dx%d and grid %dx%d must be positive",
                              g->in_w, g->in_h, g->gw, g->gh);
    if (!(g->scale > 0) || !isfinite(g->scale) || !isfinite(g->offset))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2: bbox scale %g must be > 0 and offset %g finite",
                              (double)g->scale, (double)g->offset);
    return DEFT_OK;
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

void dnv2_decode_cell(const struct dnv2_grid *g, int i, int j, float l, float t, float r,
                      float b, double box[4]) {
    double cx = (double)i * ((double)g->in_w / g->gw) + g->offset;
    double cy = (double)j * ((double)g->in_h / g->gh) + g->offset;
    double s = g->scale;
    box[0] = clampd(cx - (double)l * s, 0.0, g->in_w);
    box[1] = clampd(cy - (double)t * s, 0.0, g->in_h);
    box[2] = clampd(cx + (double)r * s, box[0], g->in_w);
    box[3] = clampd(cy + (double)b * s, box[1], g->in_h);
}

/* TAO's compute_iou: the 1e-5 keeps 0/0 (two empty boxes) finite. */
static double iou_eps(const double *a, const double *b) {
    double iw = fmax(0.0, fmin(a[2], b[2]) - fmax(a[0], b[0]));
    double ih = fmax(0.0, fmin(a[3], b[3]) - fmax(a[1], b[1]));
    double inter = iw * ih;
    double uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return inter / (uni + 1e-5);
}

static bool bit_get(const uint64_t *m, size_t k) { return (m[k >> 6] >> (k & 63)) & 1u; }
static void bit_set(uint64_t *m, size_t k) { m[k >> 6] |= (uint64_t)1 << (k & 63); }

/* sklearn's dbscan_inner: clusters grow from core points in index order,
 * depth first; a border point takes the first cluster that reaches it. */
static int dbscan_expand(const uint64_t *nb, const bool *core, int n, int *labels,
                         int *stack, bool *queued) {
    int n_clusters = 0;
    for (int s = 0; s < n; s++) {
        if (labels[s] != -1 || !core[s]) continue;
        int top = 0, i = s;
        for (;;) {
            if (labels[i] == -1) {
                labels[i] = n_clusters;
                /* sklearn may stack a point twice; once is enough, it joins
                 * this cluster either way */
                for (int j = 0; core[i] && j < n; j++)
                    if (bit_get(nb, (size_t)i * (size_t)n + (size_t)j) && labels[j] == -1 &&
                        !queued[j])
                        stack[top++] = j, queued[j] = true;
            }
            if (top == 0) break;
            i = stack[--top];
        }
        n_clusters++;
    }
    return n_clusters;
}

enum deft_status dnv2_dbscan(const double *boxes, const float *w, int n, double eps,
                             double min_samples, int *labels, int *n_clusters) {
    if (n < 0 || (n > 0 && (!boxes || !w || !labels)))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "dbscan: %d points without data", n);
    if (n_clusters) *n_clusters = 0;
    if (n == 0) return DEFT_OK;
    size_t words = ((size_t)n * (size_t)n + 63) / 64;
    uint64_t *nb = deft_calloc(words, sizeof *nb);
    bool *core = deft_calloc(2 * (size_t)n, sizeof *core), *queued = core + n;
    int *stack = deft_malloc((size_t)n * sizeof *stack);
    if (!nb || !core || !stack) {
        deft_free(nb), deft_free(core), deft_free(stack);
        return deft_set_error(DEFT_ERR_NOMEM, "dbscan: %d points", n);
    }
    for (int i = 0; i < n; i++) {
        double wsum = 0;
        for (int j = 0; j < n; j++) /* the diagonal too: an empty box is not its own neighbour */
            if (1.0 - iou_eps(boxes + 4 * i, boxes + 4 * j) <= eps) {
                bit_set(nb, (size_t)i * (size_t)n + (size_t)j);
                wsum += w[j];
            }
        core[i] = wsum >= min_samples;
        labels[i] = -1;
    }
    int k = dbscan_expand(nb, core, n, labels, stack, queued);
    if (n_clusters) *n_clusters = k;
    deft_free(nb), deft_free(core), deft_free(stack);
    return DEFT_OK;
}

/* One class's candidates: cells with cov > threshold, at most cap of them
 * (highest coverage, ties by grid order), returned in grid order. */
struct cands {
    int n;
    double *box; /* [n][4] */
    float *w;
};

struct cell {
    float cov;
    int idx;
};

static int cmp_cov_desc(const void *a, const void *b) {
    const struct cell *x = a, *y = b;
    if (x->cov != y->cov) return x->cov > y->cov ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int cmp_int(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    return (i > j) - (i < j);
}

static enum deft_status gather(const struct dnv2_grid *g, const float *cov, const float *bbox,
                               float thr, int cap, struct cands *cd) {
    int plane = g->gw * g->gh, n = 0;
    int *idx = deft_malloc((size_t)plane * sizeof *idx);
    if (!idx) return deft_set_error(DEFT_ERR_NOMEM, "detectnet_v2 clustering: %d cells", plane);
    for (int p = 0; p < plane; p++)
        if (cov[p] > thr) idx[n++] = p;
    if (n > cap) {
        struct cell *cs = deft_malloc((size_t)n * sizeof *cs);
        if (!cs) {
            deft_free(idx);
            return deft_set_error(DEFT_ERR_NOMEM, "detectnet_v2 clustering: %d cells", n);
        }
        for (int k = 0; k < n; k++) cs[k] = (struct cell){cov[idx[k]], idx[k]};
        qsort(cs, (size_t)n, sizeof *cs, cmp_cov_desc);
        n = cap;
        for (int k = 0; k < n; k++) idx[k] = cs[k].idx;
        deft_free(cs);
        qsort(idx, (size_t)n, sizeof *idx, cmp_int);
    }
    cd->n = n;
    cd->box = deft_malloc(((size_t)n * 4 + 1) * sizeof *cd->box);
    cd->w = deft_malloc(((size_t)n + 1) * sizeof *cd->w);
    if (!cd->box || !cd->w) {
        deft_free(idx);
        return deft_set_error(DEFT_ERR_NOMEM, "detectnet_v2 clustering: %d candidates", n);
    }
    for (int k = 0; k < n; k++) {
        int p = idx[k], i = p % g->gw, j = p / g->gw;
        const float *b = bbox + p;
        dnv2_decode_cell(g, i, j, b[0], b[(size_t)plane], b[2 * (size_t)plane],
                         b[3 * (size_t)plane], cd->box + 4 * k);
        cd->w[k] = cov[p];
    }
    deft_free(idx);
    return DEFT_OK;
}

/* A growing detection list. */
struct dets {
    struct deft_box *box;
    struct dnv2_cluster_stats *st;
    int n, cap;
};

static enum deft_status push(struct dets *d, const double b[4], int cls, double score,
                             struct dnv2_cluster_stats st) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 16;
        struct deft_box *nb = deft_realloc(d->box, (size_t)cap * sizeof *nb);
        if (nb) d->box = nb;
        struct dnv2_cluster_stats *ns = deft_realloc(d->st, (size_t)cap * sizeof *ns);
        if (ns) d->st = ns;
        if (!nb || !ns) return deft_set_error(DEFT_ERR_NOMEM, "detectnet_v2: %d detections", cap);
        d->cap = cap;
    }
    d->box[d->n] = (struct deft_box){(float)b[0], (float)b[1], (float)b[2], (float)b[3],
                                     cls, false, (float)score};
    d->st[d->n++] = st;
    return DEFT_OK;
}

/* TAO's create_detection for the members of cluster `label`. */
static void cluster_summary(const struct cands *cd, const int *labels, int label, double mean[4],
                            double *conf, struct dnv2_cluster_stats *st) {
    double sw = 0;
    int n = 0;
    for (int k = 0; k < cd->n; k++)
        if (labels[k] == label) sw += cd->w[k], n++;
    for (int c = 0; c < 4; c++) mean[c] = 0;
    for (int k = 0; k < cd->n; k++)
        if (labels[k] == label)
            for (int c = 0; c < 4; c++) mean[c] += cd->box[4 * k + c] * (cd->w[k] / sw);
    double var = 0;
    for (int k = 0; k < cd->n; k++)
        if (labels[k] == label)
            for (int c = 0; c < 4; c++) {
                double d = cd->box[4 * k + c] - mean[c];
                var += (cd->w[k] / sw) * d * d;
            }
    double area = fmax((mean[2] - mean[0]) * (mean[3] - mean[1]), 0.001);
    *conf = sw;
    *st = (struct dnv2_cluster_stats){(float)(sw / n), (float)sqrt(var / 4.0 / area), n};
}

static enum deft_status class_dbscan(const struct cands *cd, const struct dnv2_cluster_class *p,
                                     int cls, struct dets *d) {
    int *labels = deft_malloc(((size_t)cd->n + 1) * sizeof *labels), nc = 0;
    if (!labels) return deft_set_error(DEFT_ERR_NOMEM, "dbscan: %d labels", cd->n);
    double ms = floor(p->dbscan_min_samples);
    enum deft_status s = dnv2_dbscan(cd->box, cd->w, cd->n, p->dbscan_eps, ms < 1 ? 1 : ms,
                                     labels, &nc);
    for (int c = 0; s == DEFT_OK && c < nc; c++) {
        double mean[4], conf;
        struct dnv2_cluster_stats st;
        cluster_summary(cd, labels, c, mean, &conf, &st);
        if (mean[3] - mean[1] <= p->minimum_bounding_box_height) continue;
        if (conf < p->dbscan_confidence_threshold) continue;
        s = push(d, mean, cls, conf, st);
    }
    deft_free(labels);
    return s;
}

/* IoU with TAO's NMS +1 pixel convention. */
static double iou_plus1(const double *a, const double *b) {
    double iw = fmax(0.0, fmin(a[2], b[2]) - fmax(a[0], b[0]) + 1);
    double ih = fmax(0.0, fmin(a[3], b[3]) - fmax(a[1], b[1]) + 1);
    double inter = iw * ih;
    double aa = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), ab = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
    return inter / (aa + ab - inter);
}

/* TAO's get_keep_indices (method 4): at step i the highest remaining score
 * is swapped into place (the first of equal maxima, the current one if not
 * lower) and zeroes every later score it overlaps by more than the
 * threshold; kept are the scores left above the confidence threshold.
 * TAO then reads each kept box's confidence from the permuted score array
 * at the box's original index, which is another box's score whenever a swap
 * happened; here each box keeps its own coverage. TAO does not apply
 * minimum_bounding_box_height in this mode, neither is it applied here. */
static enum deft_status class_nms(const struct cands *cd, const struct dnv2_cluster_class *p,
                                  int cls, struct dets *d) {
    int n = cd->n;
    int *ord = deft_malloc(((size_t)n + 1) * sizeof *ord);
    double *sc = deft_malloc(((size_t)n + 1) * sizeof *sc);
    if (!ord || !sc) {
        deft_free(ord), deft_free(sc);
        return deft_set_error(DEFT_ERR_NOMEM, "detectnet_v2 NMS: %d candidates", n);
    }
    for (int k = 0; k < n; k++) ord[k] = k, sc[k] = cd->w[k];
    for (int i = 0; i < n; i++) {
        int m = i + 1;
        for (int k = i + 2; k < n; k++)
            if (sc[k] > sc[m]) m = k;
        if (m < n && sc[i] < sc[m]) {
            int to = ord[i];
            double ts = sc[i];
            ord[i] = ord[m], sc[i] = sc[m];
            ord[m] = to, sc[m] = ts;
        }
        for (int k = i + 1; k < n; k++)
            if (iou_plus1(cd->box + 4 * ord[i], cd->box + 4 * ord[k]) > p->nms_iou_threshold)
                sc[k] = 0;
    }
    enum deft_status s = DEFT_OK;
    for (int k = 0; s == DEFT_OK && k < n; k++)
        if (sc[k] > p->nms_confidence_threshold) {
            int o = ord[k];
            s = push(d, cd->box + 4 * o, cls, cd->w[o], (struct dnv2_cluster_stats){cd->w[o], 0, 1});
        }
    deft_free(ord), deft_free(sc);
    return s;
}

static enum deft_status check_class(const struct dnv2_cluster_class *p, int k) {
    if (p->algo == DNV2_CLUSTER_HYBRID)
        return deft_set_error(DEFT_ERR_UNSUPPORTED,
                              "detectnet_v2 class %d: clustering_algorithm HYBRID is not "
                              "supported (DBSCAN or NMS)", k);
    if (p->algo != DNV2_CLUSTER_DBSCAN && p->algo != DNV2_CLUSTER_NMS)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detectnet_v2 class %d: unknown algorithm %d",
                              k, (int)p->algo);
    float v[7] = {p->coverage_threshold, p->minimum_bounding_box_height, p->dbscan_eps,
                  p->dbscan_min_samples, p->dbscan_confidence_threshold, p->nms_iou_threshold,
                  p->nms_confidence_threshold};
    for (int i = 0; i < 7; i++)
        if (!isfinite(v[i]))
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "detectnet_v2 class %d: clustering parameters must be finite", k);
    return DEFT_OK;
}

/* Stable sort of detections [from, to) by score descending (insertion: few per class). */
static void sort_desc(struct dets *d, int from) {
    for (int i = from + 1; i < d->n; i++) {
        struct deft_box b = d->box[i];
        struct dnv2_cluster_stats s = d->st[i];
        int j = i;
        for (; j > from && d->box[j - 1].score < b.score; j--)
            d->box[j] = d->box[j - 1], d->st[j] = d->st[j - 1];
        d->box[j] = b, d->st[j] = s;
    }
}

enum deft_status dnv2_cluster(const struct dnv2_grid *g, const struct dnv2_cluster_config *c,
                              const float *cov, const float *bbox, struct deft_box **out,
                              struct dnv2_cluster_stats **stats, int *n_out) {
    if (out) *out = NULL;
    if (stats) *stats = NULL;
    if (n_out) *n_out = 0;
    enum deft_status s = dnv2_grid_check(g);
    if (s) return s;
    if (!c || c->n_classes <= 0 || !c->cls || !cov || !bbox || !out || !n_out)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2 clustering: classes, maps and outputs are required");
    int cap = c->max_candidates > 0 ? c->max_candidates : DNV2_MAX_CANDIDATES;
    if (cap > 65536)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2 clustering: max_candidates %d over 65536", cap);
    for (int k = 0; k < c->n_classes; k++)
        if ((s = check_class(&c->cls[k], k))) return s;
    size_t plane = (size_t)g->gw * (size_t)g->gh;
    struct dets d = {0};
    for (int k = 0; s == DEFT_OK && k < c->n_classes; k++) {
        const struct dnv2_cluster_class *p = &c->cls[k];
        struct cands cd = {0};
        s = gather(g, cov + (size_t)k * plane, bbox + 4 * (size_t)k * plane,
                   p->coverage_threshold, cap, &cd);
        int from = d.n;
        if (s == DEFT_OK && cd.n > 0)
            s = p->algo == DNV2_CLUSTER_NMS ? class_nms(&cd, p, k, &d)
                                            : class_dbscan(&cd, p, k, &d);
        sort_desc(&d, from);
        deft_free(cd.box), deft_free(cd.w);
    }
    if (s) {
        deft_free(d.box), deft_free(d.st);
        return s;
    }
    *out = d.box, *n_out = d.n;
    if (stats) *stats = d.st;
    else deft_free(d.st);
    return DEFT_OK;
}

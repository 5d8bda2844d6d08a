/* coco_eval.c - the COCO definition (pycocotools cocoeval semantics,
 * detection.md §6): IoU 0.50:0.05:0.95, 101 recall points, max_dets per image
 * and class, area ranges, crowd and ignored GTs. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "eval/eval_impl.h"

enum { N_IOU = 10, N_REC = 101, N_AREA = 4 };
static const double AREA_LO[N_AREA] = {0.0, 0.0, 32.0 * 32.0, 96.0 * 96.0};
static const double AREA_HI[N_AREA] = {1e10, 32.0 * 32.0, 96.0 * 96.0, 1e10};

/* The thresholds as numpy's linspace(.5, .95, 10) computes them, bit for bit. */
static double iou_thr(int t) {
    return t == N_IOU - 1 ? 0.95 : t * ((0.95 - 0.5) / (N_IOU - 1)) + 0.5;
}

/* State of one detection at one IoU threshold and area range. */
enum { ST_MATCHED = 1, ST_IGNORED = 2 };

static double box_area(const struct deft_box *b) {
    return ((double)b->x2 - (double)b->x1) * ((double)b->y2 - (double)b->y1);
}

/* pycocotools' box IoU on x y w h; a crowd GT divides by the detection's area. */
static double iou_coco(const struct deft_box *d, const struct deft_box *g, bool crowd) {
    double dx = d->x1, dy = d->y1, dw = (double)d->x2 - dx, dh = (double)d->y2 - dy;
    double gx = g->x1, gy = g->y1, gw = (double)g->x2 - gx, gh = (double)g->y2 - gy;
    double w = fmin(dx + dw, gx + gw) - fmax(dx, gx);
    if (w <= 0) return 0.0;
    double h = fmin(dy + dh, gy + gh) - fmax(dy, gy);
    if (h <= 0) return 0.0;
    double i = w * h, u = crowd ? dw * dh : dw * dh + gw * gh - i;
    return i / u;
}

struct coco_scratch {
    double *iou;            /* [max_nd * max_ng] */
    unsigned char *ig, *gtm, *crowd;
    int *perm;              /* GT order: not ignored first */
    struct ev_rec *recs;
    unsigned char *st;      /* [N_AREA][N_IOU][n_recs] */
    double *rc, *pr;
};

/* evaluateImg for one image, class and area: states of the image's kept
 * detections (positions pos0 ...) at every threshold; returns the count of
 * GTs that are not ignored. */
static int64_t match_image(const struct ev_class_view *v, int nd, int a, size_t n_total, int pos0,
                           struct coco_scratch *w) {
    int ng = v->ng, n_reg = 0, p = 0;
    for (int g = 0; g < ng; g++) {
        const struct deft_box *b = &v->gt[v->gi[g]];
        double ar = box_area(b);
        w->crowd[g] = v->crowd && v->crowd[v->gi[g]];
        w->ig[g] = w->crowd[g] || b->difficult || ar < AREA_LO[a] || ar > AREA_HI[a];
        n_reg += !w->ig[g];
    }
    for (int g = 0; g < ng; g++)
        if (!w->ig[g]) w->perm[p++] = g;
    for (int g = 0; g < ng; g++)
        if (w->ig[g]) w->perm[p++] = g;
    for (int t = 0; t < N_IOU; t++) {
        memset(w->gtm, 0, (size_t)ng);
        unsigned char *st = w->st + ((size_t)a * N_IOU + (size_t)t) * n_total + (size_t)pos0;
        for (int d = 0; d < nd; d++) {
            double best = fmin(iou_thr(t), 1 - 1e-10);
            int m = -1;
            for (int q = 0; q < ng; q++) {
                int g = w->perm[q];
                if (w->gtm[g] && !w->crowd[g]) continue;
                if (m > -1 && !w->ig[m] && w->ig[g]) break;
                double o = w->iou[(size_t)d * (size_t)ng + (size_t)g];
                if (o < best) continue;
                best = o; /* ties: the later GT wins, as in pycocotools */
                m = g;
            }
            if (m < 0) {
                double ar = box_area(&v->det[v->di[d]]);
                st[d] = (ar < AREA_LO[a] || ar > AREA_HI[a]) ? ST_IGNORED : 0;
            } else {
                st[d] = ST_MATCHED | (w->ig[m] ? ST_IGNORED : 0);
                w->gtm[m] = 1;
            }
        }
    }
    return n_reg;
}

/* accumulate for one area and threshold over the sorted records: fills
 * rc/pr (n_out points, raw), returns the mean of the 101 sampled precisions;
 * *recall_end gets the final recall. */
static double accumulate(const struct coco_scratch *w, size_t n_total, int a, int t, int64_t npig,
                         int *n_out, double *recall_end, int64_t *tp_out, int64_t *fp_out) {
    const unsigned char *st = w->st + ((size_t)a * N_IOU + (size_t)t) * n_total;
    int64_t tp = 0, fp = 0;
    int n = 0;
    for (size_t j = 0; j < n_total; j++) {
        unsigned char s = st[w->recs[j].tag];
        if (s & ST_IGNORED) continue; /* moves neither count */
        if (s & ST_MATCHED) tp++;
        else fp++;
        w->rc[n] = (double)tp / (double)npig;
        w->pr[n] = (double)tp / ((double)(fp + tp) + DBL_EPSILON);
        n++;
    }
    *n_out = n;
    *recall_end = n ? w->rc[n - 1] : 0.0;
    *tp_out = tp;
    *fp_out = fp;
    for (int i = n - 1; i > 0; i--)
        if (w->pr[i] > w->pr[i - 1]) w->pr[i - 1] = w->pr[i];
    double sum = 0;
    int i = 0;
    for (int r = 0; r < N_REC; r++) {
        double thr = r == N_REC - 1 ? 1.0 : r * (1.0 / (N_REC - 1));
        while (i < n && w->rc[i] < thr) i++;
        if (i < n) sum += w->pr[i];
    }
    return sum / N_REC;
}

struct coco_sums {
    double ap50, ap75, area[N_AREA], ar;
    int n50, n_area[N_AREA];
};

static enum deft_status coco_class(const struct ev_index *x, const struct deft_det_eval_image *im, int k,
                                   const struct deft_det_eval_options *o, int t_pr, struct coco_scratch *w,
                                   struct deft_det_class_metrics *c, struct coco_sums *sums) {
    size_t n = 0;
    for (int i = 0; i < x->n_images; i++) { /* records: each image's best max_dets */
        struct ev_class_view v;
        ev_view(x, im, i, k, &v);
        int nd = v.nd < o->max_dets ? v.nd : o->max_dets;
        for (int d = 0; d < nd; d++, n++) w->recs[n] = (struct ev_rec){v.det[v.di[d]].score, i, v.di[d], (int)n};
    }
    int64_t npig[N_AREA] = {0};
    size_t pos = 0;
    for (int i = 0; i < x->n_images; i++) {
        struct ev_class_view v;
        ev_view(x, im, i, k, &v);
        int nd = v.nd < o->max_dets ? v.nd : o->max_dets;
        for (int d = 0; d < nd; d++)
            for (int g = 0; g < v.ng; g++)
                w->iou[(size_t)d * (size_t)v.ng + (size_t)g] =
                    iou_coco(&v.det[v.di[d]], &v.gt[v.gi[g]], v.crowd && v.crowd[v.gi[g]]);
        for (int a = 0; a < N_AREA; a++) npig[a] += match_image(&v, nd, a, n, (int)pos, w);
        pos += (size_t)nd;
    }
    ev_sort_recs(w->recs, n);
    c->n_gt = npig[0];
    c->n_det = (int64_t)n;
    c->ap = c->ap50 = c->ap75 = NAN;
    c->fp = (int64_t)n; /* a class without GT: every detection is a false positive */
    for (int a = 0; a < N_AREA; a++) {
        if (npig[a] == 0) continue; /* pycocotools: precision -1, out of every mean */
        double ap = 0, ar = 0;
        for (int t = 0; t < N_IOU; t++) {
            int np;
            double rend;
            int64_t tp, fp;
            double q = accumulate(w, n, a, t, npig[a], &np, &rend, &tp, &fp);
            ap += q / N_IOU;
            ar += rend / N_IOU;
            if (a != 0) continue;
            if (t == 0) c->ap50 = q;
            if (t == 5) c->ap75 = q;
            if (t == t_pr) { /* the per-class figures and curve at the chosen IoU (raw precision) */
                c->tp = tp;
                c->fp = fp;
                c->recall = rend;
                c->precision = tp + fp ? (double)tp / (double)(tp + fp) : 0.0;
                c->n_pr = np;
                int64_t tp2 = 0, fp2 = 0;
                const unsigned char *st = w->st + (size_t)t * n;
                for (size_t j = 0, m = 0; j < n; j++) {
                    unsigned char s = st[w->recs[j].tag];
                    if (s & ST_IGNORED) continue;
                    (s & ST_MATCHED) ? tp2++ : fp2++;
                    c->pr_recall[m] = (double)tp2 / (double)npig[0];
                    c->pr_precision[m++] = (double)tp2 / (double)(tp2 + fp2);
                }
            }
        }
        sums->area[a] += ap;
        sums->n_area[a]++;
        if (a == 0) {
            c->ap = ap;
            sums->ap50 += c->ap50;
            sums->ap75 += c->ap75;
            sums->ar += ar;
            sums->n50++;
        }
    }
    return DEFT_OK;
}

static void scratch_free(struct coco_scratch *w) {
    deft_free(w->iou);
    deft_free(w->ig);
    deft_free(w->gtm);
    deft_free(w->crowd);
    deft_free(w->perm);
    deft_free(w->recs);
    deft_free(w->st);
    deft_free(w->rc);
    deft_free(w->pr);
}

enum deft_status ev_coco_eval(const struct ev_index *x, const struct deft_det_eval_image *im,
                              const struct deft_det_eval_options *o, struct deft_det_metrics *m) {
    int t_pr = -1;
    for (int t = 0; t < N_IOU; t++)
        if (fabs(iou_thr(t) - o->iou) < 1e-9) t_pr = t;
    if (t_pr < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "COCO metrics: --iou %g is not one of 0.50, 0.55, ..., 0.95 (the IoU of the per-class "
                              "precision, recall and PR curve)", o->iou);
    size_t max_ng = 0, max_nd = 0, n_all = 0;
    for (int i = 0; i < x->n_images; i++) {
        if ((size_t)im[i].n_gt > max_ng) max_ng = (size_t)im[i].n_gt;
        size_t nd = (size_t)im[i].n_det < (size_t)o->max_dets ? (size_t)im[i].n_det : (size_t)o->max_dets;
        if (nd > max_nd) max_nd = nd;
        n_all += (size_t)im[i].n_det;
    }
    struct coco_scratch w = {0};
    w.iou = deft_malloc(max_nd * max_ng * sizeof(double) + 8);
    w.ig = deft_malloc(max_ng + 1);
    w.gtm = deft_malloc(max_ng + 1);
    w.crowd = deft_malloc(max_ng + 1);
    w.perm = deft_malloc((max_ng + 1) * sizeof(int));
    w.recs = deft_malloc((n_all + 1) * sizeof *w.recs);
    w.st = deft_malloc((size_t)N_AREA * N_IOU * (n_all + 1));
    w.rc = deft_malloc((n_all + 1) * sizeof(double));
    w.pr = deft_malloc((n_all + 1) * sizeof(double));
    enum deft_status s = DEFT_OK;
    if (!w.iou || !w.ig || !w.gtm || !w.crowd || !w.perm || !w.recs || !w.st || !w.rc || !w.pr)
        s = deft_set_error(DEFT_ERR_NOMEM, "COCO metrics: out of memory");
    struct coco_sums sums = {0};
    for (int k = 0; !s && k < m->n_classes; k++) {
        struct deft_det_class_metrics *c = &m->classes[k];
        c->pr_recall = deft_malloc((n_all + 1) * sizeof(double));
        c->pr_precision = deft_malloc((n_all + 1) * sizeof(double));
        if (!c->pr_recall || !c->pr_precision) s = deft_set_error(DEFT_ERR_NOMEM, "COCO metrics: out of memory");
        else s = coco_class(x, im, k, o, t_pr, &w, c, &sums);
    }
    scratch_free(&w);
    if (s) return s;
    m->coco_ap50 = sums.n50 ? sums.ap50 / sums.n50 : NAN;
    m->coco_ap75 = sums.n50 ? sums.ap75 / sums.n50 : NAN;
    m->coco_ar = sums.n50 ? sums.ar / sums.n50 : NAN;
    m->coco_ap_small = sums.n_area[1] ? sums.area[1] / sums.n_area[1] : NAN;
    m->coco_ap_medium = sums.n_area[2] ? sums.area[2] / sums.n_area[2] : NAN;
    m->coco_ap_large = sums.n_area[3] ? sums.area[3] / sums.n_area[3] : NAN;
    return DEFT_OK;
}

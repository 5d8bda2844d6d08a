/* det_match.c - grouping boxes by image and class, and the VOC and TAO
 * matching rules (detection.md §6). COCO's matching lives in coco_eval.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eval/eval_impl.h"

static enum deft_status check_box(const struct deft_box *b, int img, int j, bool det, int n_classes) {
    const char *what = det ? "detection" : "ground truth";
    if (b->cls < 0 || b->cls >= n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "image %d, %s %d: class %d outside [0, %d)", img, what, j,
                              b->cls, n_classes);
    if (!isfinite(b->x1) || !isfinite(b->y1) || !isfinite(b->x2) || !isfinite(b->y2) || (det && !isfinite(b->score)))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "image %d, %s %d: non-finite coordinate or score", img, what, j);
    if (b->x2 < b->x1 || b->y2 < b->y1)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "image %d, %s %d: inverted box (%g %g %g %g); boxes are x1 y1 x2 y2 with x2 >= x1, y2 >= y1",
                              img, what, j, b->x1, b->y1, b->x2, b->y2);
    return DEFT_OK;
}

struct score_idx {
    float score;
    int idx;
};
static int score_idx_cmp(const void *pa, const void *pb) {
    const struct score_idx *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static enum deft_status check_image(const struct deft_det_eval_image *m, int i, int n_classes) {
    if (m->n_gt < 0 || m->n_det < 0 || (m->n_gt && !m->gt) || (m->n_det && !m->det))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "image %d: negative box count or NULL box array", i);
    for (int j = 0; j < m->n_gt; j++) {
        enum deft_status s = check_box(&m->gt[j], i, j, false, n_classes);
        if (s) return s;
    }
    for (int j = 0; j < m->n_det; j++) {
        enum deft_status s = check_box(&m->det[j], i, j, true, n_classes);
        if (s) return s;
    }
    return DEFT_OK;
}

/* Counting sort of one image's boxes by class into idx[start[c] .. start[c+1]). */
static void group(const struct deft_box *b, int n, const bool *keep, int n_classes, int base, int *start, int *idx) {
    for (int c = 0; c <= n_classes; c++) start[c] = 0;
    for (int j = 0; j < n; j++)
        if (!keep || keep[j]) start[b[j].cls + 1]++;
    start[0] = base;
    for (int c = 1; c <= n_classes; c++) start[c] += start[c - 1];
    /* start[c] is class c's cursor while filling; it ends at class c+1's start */
    for (int j = 0; j < n; j++)
        if (!keep || keep[j]) idx[start[b[j].cls]++] = j;
    for (int c = n_classes; c > 0; c--) start[c] = start[c - 1];
    start[0] = base;
}

enum deft_status ev_index_build(const struct deft_det_eval_image *im, int n_images, int n_classes,
                                double conf_threshold, struct ev_index *x) {
    memset(x, 0, sizeof *x);
    if (n_images < 0 || n_classes <= 0 || (n_images && !im))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection metrics: %d images, %d classes (need >= 0 and >= 1)",
                              n_images, n_classes);
    size_t tg = 0, td = 0, maxd = 0;
    for (int i = 0; i < n_images; i++) {
        enum deft_status s = check_image(&im[i], i, n_classes);
        if (s) return s;
        tg += (size_t)im[i].n_gt;
        td += (size_t)im[i].n_det;
        if ((size_t)im[i].n_det > maxd) maxd = (size_t)im[i].n_det;
    }
    if (tg > INT32_MAX || td > INT32_MAX)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection metrics: more than 2^31 boxes");
    size_t ns = (size_t)n_images * (size_t)(n_classes + 1);
    x->n_images = n_images;
    x->n_classes = n_classes;
    x->gt_start = deft_malloc((ns + 1) * sizeof(int));
    x->det_start = deft_malloc((ns + 1) * sizeof(int));
    x->gt_idx = deft_malloc((tg + 1) * sizeof(int));
    x->det_idx = deft_malloc((td + 1) * sizeof(int));
    bool *keep = deft_malloc(maxd + 1);
    struct score_idx *tmp = deft_malloc((maxd + 1) * sizeof *tmp);
    if (!x->gt_start || !x->det_start || !x->gt_idx || !x->det_idx || !keep || !tmp) {
        deft_free(keep);
        deft_free(tmp);
        ev_index_release(x);
        return deft_set_error(DEFT_ERR_NOMEM, "detection metrics: out of memory");
    }
    int gbase = 0, dbase = 0;
    for (int i = 0; i < n_images; i++) {
        const struct deft_det_eval_image *m = &im[i];
        int *gs = x->gt_start + (size_t)i * (size_t)(n_classes + 1);
        int *ds = x->det_start + (size_t)i * (size_t)(n_classes + 1);
        group(m->gt, m->n_gt, NULL, n_classes, gbase, gs, x->gt_idx);
        for (int j = 0; j < m->n_det; j++) keep[j] = m->det[j].score >= conf_threshold;
        group(m->det, m->n_det, keep, n_classes, dbase, ds, x->det_idx);
        gbase = gs[n_classes];
        dbase = ds[n_classes];
        for (int c = 0; c < n_classes; c++) { /* each class's detections by score, ties by index */
            int a = ds[c], nd = ds[c + 1] - a;
            if (nd < 2) continue;
            for (int j = 0; j < nd; j++) tmp[j] = (struct score_idx){m->det[x->det_idx[a + j]].score, x->det_idx[a + j]};
            qsort(tmp, (size_t)nd, sizeof *tmp, score_idx_cmp);
            for (int j = 0; j < nd; j++) x->det_idx[a + j] = tmp[j].idx;
        }
    }
    deft_free(keep);
    deft_free(tmp);
    return DEFT_OK;
}

void ev_index_release(struct ev_index *x) {
    deft_free(x->gt_start);
    deft_free(x->gt_idx);
    deft_free(x->det_start);
    deft_free(x->det_idx);
    memset(x, 0, sizeof *x);
}

void ev_view(const struct ev_index *x, const struct deft_det_eval_image *im, int img, int cls,
             struct ev_class_view *v) {
    size_t o = (size_t)img * (size_t)(x->n_classes + 1) + (size_t)cls;
    v->gt = im[img].gt;
    v->det = im[img].det;
    v->crowd = im[img].gt_crowd;
    v->gi = x->gt_idx + x->gt_start[o];
    v->ng = x->gt_start[o + 1] - x->gt_start[o];
    v->di = x->det_idx + x->det_start[o];
    v->nd = x->det_start[o + 1] - x->det_start[o];
}

/* py-faster-rcnn's overlap: inclusive pixel coordinates (+1). */
static double iou_voc(const struct deft_box *d, const struct deft_box *g) {
    double iw = fmax(fmin((double)g->x2, (double)d->x2) - fmax((double)g->x1, (double)d->x1) + 1.0, 0.0);
    double ih = fmax(fmin((double)g->y2, (double)d->y2) - fmax((double)g->y1, (double)d->y1) + 1.0, 0.0);
    double inter = iw * ih;
    double uni = ((double)d->x2 - (double)d->x1 + 1.0) * ((double)d->y2 - (double)d->y1 + 1.0) +
                 ((double)g->x2 - (double)g->x1 + 1.0) * ((double)g->y2 - (double)g->y1 + 1.0) - inter;
    return inter / uni;
}

/* Plain IoU (TAO, no +1); 0 when both boxes are empty. */
static double iou_plain(const struct deft_box *d, const struct deft_box *g) {
    double iw = fmax(fmin((double)g->x2, (double)d->x2) - fmax((double)g->x1, (double)d->x1), 0.0);
    double ih = fmax(fmin((double)g->y2, (double)d->y2) - fmax((double)g->y1, (double)d->y1), 0.0);
    double inter = iw * ih;
    double uni = ((double)d->x2 - (double)d->x1) * ((double)d->y2 - (double)d->y1) +
                 ((double)g->x2 - (double)g->x1) * ((double)g->y2 - (double)g->y1) - inter;
    return uni > 0 ? inter / uni : 0.0;
}

void ev_match_voc(const struct ev_class_view *v, double thr, unsigned char *matched, unsigned char *label) {
    memset(matched, 0, (size_t)v->ng);
    for (int j = 0; j < v->nd; j++) {
        const struct deft_box *d = &v->det[v->di[j]];
        double best = -INFINITY;
        int jmax = -1;
        for (int g = 0; g < v->ng; g++) { /* over ALL GTs, matched ones included; first maximum */
            double o = iou_voc(d, &v->gt[v->gi[g]]);
            if (o > best) best = o, jmax = g;
        }
        if (jmax < 0 || !(best > thr)) label[j] = EV_FP;
        else if (v->gt[v->gi[jmax]].difficult) label[j] = EV_IGNORE;
        else if (matched[jmax]) label[j] = EV_FP;
        else label[j] = EV_TP, matched[jmax] = 1;
    }
}

void ev_match_tao(const struct ev_class_view *v, double thr, unsigned char *matched, unsigned char *label) {
    memset(matched, 0, (size_t)v->ng);
    for (int j = 0; j < v->nd; j++) {
        const struct deft_box *d = &v->det[v->di[j]];
        double best = -1.0;
        int jmax = -1;
        for (int g = 0; g < v->ng; g++) { /* best still-unmatched GT; first maximum */
            double o = matched[g] ? 0.0 : iou_plain(d, &v->gt[v->gi[g]]);
            if (o > best) best = o, jmax = g;
        }
        if (jmax < 0 || !(best >= thr)) {
            label[j] = EV_FP;
            continue;
        }
        matched[jmax] = 1;
        label[j] = v->gt[v->gi[jmax]].difficult ? EV_IGNORE : EV_TP;
    }
}

int ev_rec_cmp(const void *pa, const void *pb) {
    const struct ev_rec *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->img != b->img) return a->img < b->img ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

void ev_sort_recs(struct ev_rec *r, size_t n) {
    if (n > 1) qsort(r, n, sizeof *r, ev_rec_cmp);
}

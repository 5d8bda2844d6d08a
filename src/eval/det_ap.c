/* det_ap.c - deft_det_eval: the VOC and TAO definitions (matching in
 * det_match.c), AP from the PR curve, mode names. COCO: coco_eval.c. */
#include <math.h>
#include <string.h>
#include <strings.h>
#include "eval/eval_impl.h"

static const char *const MODE_NAMES[DEFT_AP_MODE_COUNT] = {"voc07", "voc", "sample", "integrate", "coco"};
static const char *const MODE_DESCR[DEFT_AP_MODE_COUNT] = {
    "VOC07 11-point (py-faster-rcnn voc_eval, +1 px IoU > thr)",
    "VOC all-point (py-faster-rcnn voc_eval, +1 px IoU > thr)",
    "TAO SAMPLE 11-point (IoU >= thr)",
    "TAO INTEGRATE all-point (IoU >= thr)",
    "COCO AP@[.50:.95] 101-point (pycocotools)",
};

enum deft_status deft_ap_mode_parse(const char *s, enum deft_ap_mode *out) {
    for (int i = 0; s && i < DEFT_AP_MODE_COUNT; i++)
        if (!strcasecmp(s, MODE_NAMES[i])) {
            *out = (enum deft_ap_mode)i;
            return DEFT_OK;
        }
    return deft_set_error(DEFT_ERR_INVALID_ARG, "unknown AP mode '%s': use sample, integrate, coco, voc07 or voc",
                          s ? s : "(null)");
}

const char *deft_ap_mode_name(enum deft_ap_mode m) {
    return (unsigned)m < DEFT_AP_MODE_COUNT ? MODE_NAMES[m] : "?";
}

const char *deft_ap_mode_describe(enum deft_ap_mode m) {
    return (unsigned)m < DEFT_AP_MODE_COUNT ? MODE_DESCR[m] : "?";
}

void deft_det_eval_options_init(struct deft_det_eval_options *o, enum deft_ap_mode mode) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->iou = 0.5;
    o->max_dets = 100;
}

/* Max precision at recall >= t for t = 0, 0.1, ..., 1 (VOC2007), averaged. */
double ev_ap_11point(const double *rec, const double *prec, int n) {
    double ap = 0.0;
    for (int i = 0; i <= 10; i++) {
        double t = i * 0.1, p = 0.0;
        for (int j = 0; j < n; j++)
            if (rec[j] >= t && prec[j] > p) p = prec[j];
        ap += p / 11.0;
    }
    return ap;
}

/* Area under the precision envelope with sentinels (0,0) and (1,0), summed
 * where recall changes (VOC2010+). */
double ev_ap_allpoint(const double *rec, const double *prec, int n) {
    double ap = 0.0, env = 0.0; /* envelope from the right, starting at the (1, 0) sentinel */
    double r_next = 1.0;
    for (int j = n - 1; j >= -1; j--) {
        double r = j >= 0 ? rec[j] : 0.0;
        if (r != r_next) ap += (r_next - r) * env;
        if (j >= 0 && prec[j] > env) env = prec[j];
        r_next = r;
    }
    return ap;
}

static void free_class(struct deft_det_class_metrics *c) {
    deft_free(c->pr_recall);
    deft_free(c->pr_precision);
}

void deft_det_metrics_free(struct deft_det_metrics *m) {
    if (!m) return;
    for (int k = 0; m->classes && k < m->n_classes; k++) free_class(&m->classes[k]);
    deft_free(m->classes);
    deft_free(m);
}

/* One class under VOC or TAO: match per image, merge by score, PR curve, AP. */
static enum deft_status voc_tao_class(const struct ev_index *x, const struct deft_det_eval_image *im, int k,
                                      const struct deft_det_eval_options *o, struct ev_rec *recs,
                                      unsigned char *matched, unsigned char *label,
                                      struct deft_det_class_metrics *c) {
    bool voc = o->mode == DEFT_AP_VOC07 || o->mode == DEFT_AP_VOC;
    size_t n = 0;
    int64_t npos = 0, ndet = 0;
    for (int i = 0; i < x->n_images; i++) {
        struct ev_class_view v;
        ev_view(x, im, i, k, &v);
        for (int g = 0; g < v.ng; g++) npos += !v.gt[v.gi[g]].difficult;
        if (!v.nd) continue;
        ndet += v.nd;
        if (voc) ev_match_voc(&v, o->iou, matched, label);
        else ev_match_tao(&v, o->iou, matched, label);
        for (int j = 0; j < v.nd; j++)
            if (label[j] != EV_IGNORE) /* ignored detections move neither precision nor recall */
                recs[n++] = (struct ev_rec){v.det[v.di[j]].score, i, v.di[j], label[j]};
    }
    ev_sort_recs(recs, n);
    c->n_gt = npos;
    c->n_det = ndet;
    c->n_pr = (int)n;
    c->pr_recall = deft_malloc((n + 1) * sizeof(double));
    c->pr_precision = deft_malloc((n + 1) * sizeof(double));
    if (!c->pr_recall || !c->pr_precision) return deft_set_error(DEFT_ERR_NOMEM, "detection metrics: out of memory");
    int64_t tp = 0, fp = 0;
    for (size_t j = 0; j < n; j++) {
        if (recs[j].tag == EV_TP) tp++;
        else fp++;
        c->pr_precision[j] = (double)tp / (double)(tp + fp);
        c->pr_recall[j] = npos > 0 ? (double)tp / (double)npos : 0.0;
    }
    c->tp = tp;
    c->fp = fp;
    c->precision = n ? c->pr_precision[n - 1] : 0.0;
    c->recall = npos > 0 ? (double)tp / (double)npos : 0.0;
    c->ap50 = c->ap75 = NAN;
    if (npos == 0) c->ap = voc ? NAN : 0.0; /* TAO: AP 0, in the mean; VOC: out of the mean */
    else if (o->mode == DEFT_AP_VOC07 || o->mode == DEFT_AP_SAMPLE) c->ap = ev_ap_11point(c->pr_recall, c->pr_precision, (int)n);
    else c->ap = ev_ap_allpoint(c->pr_recall, c->pr_precision, (int)n);
    return DEFT_OK;
}

static enum deft_status voc_tao_eval(const struct ev_index *x, const struct deft_det_eval_image *im,
                                     const struct deft_det_eval_options *o, struct deft_det_metrics *m) {
    size_t maxn = 0;
    int max_ng = 0, max_nd = 0;
    for (int i = 0; i < x->n_images; i++) {
        maxn += (size_t)im[i].n_det;
        if (im[i].n_gt > max_ng) max_ng = im[i].n_gt;
        if (im[i].n_det > max_nd) max_nd = im[i].n_det;
    }
    struct ev_rec *recs = deft_malloc((maxn + 1) * sizeof *recs);
    unsigned char *matched = deft_malloc((size_t)max_ng + 1), *label = deft_malloc((size_t)max_nd + 1);
    enum deft_status s = DEFT_OK;
    if (!recs || !matched || !label) s = deft_set_error(DEFT_ERR_NOMEM, "detection metrics: out of memory");
    for (int k = 0; !s && k < m->n_classes; k++)
        s = voc_tao_class(x, im, k, o, recs, matched, label, &m->classes[k]);
    deft_free(recs);
    deft_free(matched);
    deft_free(label);
    return s;
}

static enum deft_status check_options(const struct deft_det_eval_options *o, struct deft_det_eval_options *out) {
    *out = *o;
    if ((unsigned)o->mode >= DEFT_AP_MODE_COUNT)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection metrics: invalid AP mode %d", (int)o->mode);
    if (out->iou == 0) out->iou = 0.5;
    if (!(out->iou > 0 && out->iou <= 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection metrics: IoU threshold %g outside (0, 1]", o->iou);
    if (!isfinite(out->conf_threshold))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection metrics: confidence threshold is not finite");
    if (out->max_dets == 0) out->max_dets = 100;
    if (out->max_dets < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection metrics: max_dets %d < 0", o->max_dets);
    return DEFT_OK;
}

enum deft_status deft_det_eval(const struct deft_det_eval_image *images, int n_images, int n_classes,
                               const struct deft_det_eval_options *opt, struct deft_det_metrics **out) {
    if (!out || !opt) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_det_eval: NULL argument");
    *out = NULL;
    struct deft_det_eval_options o;
    enum deft_status s = check_options(opt, &o);
    if (s) return s;
    struct ev_index x;
    s = ev_index_build(images, n_images, n_classes, o.conf_threshold, &x);
    if (s) return s;
    struct deft_det_metrics *m = deft_calloc(1, sizeof *m);
    if (m) m->classes = deft_calloc((size_t)n_classes, sizeof *m->classes);
    if (!m || !m->classes) {
        deft_free(m);
        ev_index_release(&x);
        return deft_set_error(DEFT_ERR_NOMEM, "detection metrics: out of memory");
    }
    m->mode = o.mode;
    m->iou = o.iou;
    m->conf_threshold = o.conf_threshold;
    m->max_dets = o.max_dets;
    m->n_classes = n_classes;
    m->coco_ap50 = m->coco_ap75 = m->coco_ap_small = m->coco_ap_medium = m->coco_ap_large = m->coco_ar = NAN;
    s = o.mode == DEFT_AP_COCO ? ev_coco_eval(&x, images, &o, m) : voc_tao_eval(&x, images, &o, m);
    ev_index_release(&x);
    if (s) {
        deft_det_metrics_free(m);
        return s;
    }
    double sum = 0;
    for (int k = 0; k < n_classes; k++)
        if (!isnan(m->classes[k].ap)) sum += m->classes[k].ap, m->n_classes_in_map++;
    m->map = m->n_classes_in_map ? sum / m->n_classes_in_map : NAN;
    *out = m;
    return DEFT_OK;
}

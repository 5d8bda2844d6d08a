/* dnv2_metric.c - TAO's DetectNet_v2 evaluation (evaluation/compute_metrics.py),
 * which differs from TAO's common AP evaluator (deft_det_eval's sample /
 * integrate): per-class IoU thresholds, evaluation_box_config size filters
 * on ground truth and detections, boxes rounded to whole pixels, the
 * border-inclusive IoU, VOC-style matching against every GT of the image,
 * and its own INTEGRATE sum. See dnv2_task.h for the rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tasks/detectnet_v2/dnv2_task.h"

const char *dnv2_metric_describe(bool integrate) {
    return integrate ? "TAO DetectNet_v2 INTEGRATE (compute_metrics.py: area over unique recalls, per-class IoU, "
                       "+1-pixel IoU, evaluation_box_config filters)"
                     : "TAO DetectNet_v2 SAMPLE (compute_metrics.py: 11 recall points, per-class IoU, +1-pixel "
                       "IoU, evaluation_box_config filters)";
}

enum deft_status dnv2_eval_classes(const struct deft_dnv2_config *c, struct dnv2_eval_class **out) {
    const struct deft_dnv2_evaluation_config *e = &c->evaluation_config;
    struct dnv2_eval_class *k = deft_calloc((size_t)(c->n_classes > 0 ? c->n_classes : 1), sizeof *k);
    if (!k) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n_classes; i++) {
        k[i].iou = 0.5; /* TAO refuses a class without one; 0.5 is its sample value for the others */
        for (int j = 0; j < e->n_minimum_detection_ground_truth_overlap; j++)
            if (!strcasecmp(e->minimum_detection_ground_truth_overlap[j].key, c->class_names[i]))
                k[i].iou = e->minimum_detection_ground_truth_overlap[j].value;
        for (int j = 0; j < e->n_evaluation_box_config; j++)
            if (!strcasecmp(e->evaluation_box_config[j].key, c->class_names[i])) {
                const struct deft_dnv2_eval_box *b = &e->evaluation_box_config[j].value;
                k[i].min_h = b->minimum_height, k[i].max_h = b->maximum_height;
                k[i].min_w = b->minimum_width, k[i].max_w = b->maximum_width;
            }
    }
    *out = k;
    return DEFT_OK;
}

/* _check_if_bbox_is_valid (a maximum of 0 means the spec set none) */
static bool in_box_config(const struct dnv2_eval_class *c, const struct deft_box *b) {
    double w = b->x2 - b->x1, h = b->y2 - b->y1;
    return h >= c->min_h && w >= c->min_w && (c->max_h <= 0 || h <= c->max_h) && (c->max_w <= 0 || w <= c->max_w);
}

struct pred {
    int image, seq;
    float conf;
    double box[4];
};

static int by_conf_desc(const void *a, const void *b) {
    const struct pred *x = a, *y = b;
    if (x->conf != y->conf) return x->conf < y->conf ? 1 : -1;
    return x->seq - y->seq; /* stable (TAO: numpy argsort): qsort is not, so input order breaks ties */
}

/* border_pixels 'include': +1 on every side length */
static double iou_incl(const double *a, const double *b) {
    double iw = fmax(0, fmin(a[2], b[2]) - fmax(a[0], b[0]) + 1), ih = fmax(0, fmin(a[3], b[3]) - fmax(a[1], b[1]) + 1);
    double inter = iw * ih;
    double ua = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter;
    return ua > 0 ? inter / ua : 0;
}

/* Python's round(): halves to even, as rint in the default rounding mode */
static void rounded(const struct deft_box *b, double *o) {
    o[0] = rint(b->x1), o[1] = rint(b->y1), o[2] = rint(b->x2), o[3] = rint(b->y2);
}

static double ap_sample(const double *prec, const double *rec, int n) {
    double ap = 0;
    for (int t = 0; t <= 10; t++) {
        double p = 0;
        for (int i = 0; i < n; i++)
            if (rec[i] >= t * 0.1 && prec[i] > p) p = prec[i]; /* np.linspace: i * 0.1, so 0.30000000000000004 */
        ap += p;
    }
    return ap / 11;
}

/* TAO's INTEGRATE: unique recalls ascending; rectangle i spans [r_i, r_{i+1}) with the
 * highest precision at recall >= r_i; nothing before the first recall or after the last. */
static double ap_integrate(const double *prec, const double *rec, int n) {
    double ap = 0, best = 0;
    int end = n; /* recalls are non-decreasing: the runs of equal recall, walked from the back */
    while (end > 0) {
        int begin = end - 1;
        while (begin > 0 && rec[begin - 1] == rec[end - 1]) begin--;
        if (end < n) { /* the last run adds no width, and TAO's running maximum starts after it */
            for (int i = begin; i < end; i++) best = fmax(best, prec[i]);
            ap += best * (rec[end] - rec[begin]);
        }
        end = begin;
    }
    return ap;
}

static enum deft_status score_class(const struct deft_det_dataset *gt, const struct det_dets *d, int k,
                                    const struct dnv2_eval_class *c, double conf, struct deft_det_class_metrics *m) {
    int np = 0, cap = 0;
    for (int i = 0; i < d->n; i++) cap += d->n_boxes[i];
    struct pred *p = deft_malloc((size_t)(cap > 0 ? cap : 1) * sizeof *p);
    int *first = deft_calloc((size_t)gt->n + 1, sizeof *first);
    if (!p || !first) {
        deft_free(p);
        deft_free(first);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < d->n && i < gt->n; i++)
        for (int j = 0; j < d->n_boxes[i]; j++) {
            const struct deft_box *b = &d->boxes[i][j];
            if (b->cls != k || b->score < conf || !in_box_config(c, b)) continue;
            p[np] = (struct pred){i, np, b->score, {0}};
            rounded(b, p[np++].box);
        }
    qsort(p, (size_t)np, sizeof *p, by_conf_desc);
    int64_t n_gt = 0; /* first[i]: image i's first GT of class k in the matched flags */
    for (int i = 0; i < gt->n; i++) {
        first[i] = (int)n_gt;
        for (int j = 0; j < gt->samples[i].n_boxes; j++)
            n_gt += gt->samples[i].boxes[j].cls == k && in_box_config(c, &gt->samples[i].boxes[j]);
    }
    m->pr_recall = deft_malloc((size_t)(np ? np : 1) * sizeof(double));
    m->pr_precision = deft_malloc((size_t)(np ? np : 1) * sizeof(double));
    unsigned char *used = deft_calloc((size_t)(n_gt ? n_gt : 1), 1);
    enum deft_status s = m->pr_recall && m->pr_precision && used ? DEFT_OK
                                                                 : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int64_t tp = 0, fp = 0;
    for (int i = 0; !s && i < np; i++) {
        const struct deft_det_sample *sm = &gt->samples[p[i].image];
        double best = -1;
        int at = -1;
        for (int j = 0, q = 0; j < sm->n_boxes; j++) {
            if (sm->boxes[j].cls != k || !in_box_config(c, &sm->boxes[j])) continue;
            double g[4];
            rounded(&sm->boxes[j], g);
            double v = iou_incl(g, p[i].box);
            if (v > best) best = v, at = q; /* np.argmax: the first of equal overlaps */
            q++;
        }
        unsigned char *u = used + first[p[i].image];
        if (at >= 0 && best >= c->iou && !u[at]) tp++, u[at] = 1;
        else fp++;
        m->pr_precision[i] = (double)tp / (double)(tp + fp);
        m->pr_recall[i] = n_gt ? (double)tp / (double)n_gt : NAN;
    }
    m->n_pr = np;
    m->n_gt = n_gt;
    m->n_det = np;
    m->tp = tp, m->fp = fp;
    m->precision = np ? (double)tp / (double)np : 0;
    m->recall = n_gt ? (double)tp / (double)n_gt : 0;
    m->ap50 = m->ap75 = NAN;
    m->ap = 0; /* TAO: NaN (no GT) becomes 0 and counts in the mean */
    deft_free(used);
    deft_free(p);
    deft_free(first);
    return s;
}

enum deft_status dnv2_metric(const struct deft_det_dataset *gt, const struct det_dets *d,
                             const struct dnv2_eval_class *cls, bool integrate, double conf,
                             struct deft_det_metrics **out) {
    *out = NULL;
    struct deft_det_metrics *m = deft_calloc(1, sizeof *m);
    if (m) m->classes = deft_calloc((size_t)(gt->n_classes ? gt->n_classes : 1), sizeof *m->classes);
    if (!m || !m->classes) {
        deft_det_metrics_free(m);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    m->mode = integrate ? DEFT_AP_INTEGRATE : DEFT_AP_SAMPLE;
    m->iou = cls[0].iou;
    m->conf_threshold = conf;
    m->n_classes = gt->n_classes;
    m->coco_ap50 = m->coco_ap75 = m->coco_ap_small = m->coco_ap_medium = m->coco_ap_large = m->coco_ar = NAN;
    double sum = 0;
    for (int k = 0; k < gt->n_classes; k++) {
        struct deft_det_class_metrics *c = &m->classes[k];
        enum deft_status s = score_class(gt, d, k, &cls[k], conf, c);
        if (s) {
            deft_det_metrics_free(m);
            return s;
        }
        if (c->n_gt && c->n_pr)
            c->ap = integrate ? ap_integrate(c->pr_precision, c->pr_recall, c->n_pr)
                              : ap_sample(c->pr_precision, c->pr_recall, c->n_pr);
        sum += c->ap;
    }
    m->n_classes_in_map = gt->n_classes;
    m->map = gt->n_classes ? sum / gt->n_classes : NAN;
    *out = m;
    return DEFT_OK;
}

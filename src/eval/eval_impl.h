/* eval_impl.h - detection-metrics internals shared by det_match.c, det_ap.c,
 * coco_eval.c and det_report.c. */
#ifndef DEFT_EVAL_IMPL_H
#define DEFT_EVAL_IMPL_H

#include "deft/det_eval.h"

/* One image's boxes of one class, as indices into the image's arrays;
 * detections in score order (descending, ties by index). */
struct ev_class_view {
    const struct deft_box *gt, *det;
    const bool *crowd;
    int *gi, ng;   /* GT indices of the class */
    int *di, nd;   /* detection indices of the class, sorted */
};

/* Per image: GT and kept detections grouped by class (counting sort), each
 * class's detections sorted by score. Built once, used by every definition. */
struct ev_index {
    int n_images, n_classes;
    int *gt_start;   /* [n_images * (n_classes + 1)] offsets into gt_idx */
    int *gt_idx;
    int *det_start;  /* [n_images * (n_classes + 1)] offsets into det_idx */
    int *det_idx;
};
enum deft_status ev_index_build(const struct deft_det_eval_image *im, int n_images, int n_classes,
                                double conf_threshold, struct ev_index *x);
void ev_index_release(struct ev_index *x);
void ev_view(const struct ev_index *x, const struct deft_det_eval_image *im, int img, int cls,
             struct ev_class_view *v);

/* Labels a matcher gives each detection. */
enum { EV_FP = 0, EV_TP = 1, EV_IGNORE = 2 };

/* VOC (py-faster-rcnn) and TAO matching of one image and class: label[j] for
 * v->di[j]. matched: scratch of v->ng bytes. */
void ev_match_voc(const struct ev_class_view *v, double thr, unsigned char *matched, unsigned char *label);
void ev_match_tao(const struct ev_class_view *v, double thr, unsigned char *matched, unsigned char *label);

/* A scored detection of one class across images. */
struct ev_rec {
    double score;
    int img, idx;
    int tag; /* caller's payload (a label, a position) */
};
/* Sort by score descending, then image, then index (a total order: stable). */
void ev_sort_recs(struct ev_rec *r, size_t n);
int ev_rec_cmp(const void *a, const void *b);

/* AP from a PR curve (recall ascending along score order). */
double ev_ap_11point(const double *rec, const double *prec, int n);
double ev_ap_allpoint(const double *rec, const double *prec, int n);

/* COCO (coco_eval.c): fills m->classes and the COCO summary. */
enum deft_status ev_coco_eval(const struct ev_index *x, const struct deft_det_eval_image *im,
                              const struct deft_det_eval_options *o, struct deft_det_metrics *m);

#endif

/* deft/det_eval.h - detection metrics (mAP under three named definitions)
 * and YOLO anchor selection by k-medians.
 *
 *     struct deft_det_eval_image im[n];      // per image: GT and detections
 *     im[i] = (struct deft_det_eval_image){.gt = gt, .n_gt = ng, .det = dt, .n_det = nd};
 *     struct deft_det_eval_options o;
 *     deft_det_eval_options_init(&o, DEFT_AP_INTEGRATE);   // or deft_ap_mode_parse("coco", &o.mode)
 *     struct deft_det_metrics *m;
 *     deft_det_eval(im, n, n_classes, &o, &m);
 *     deft_det_metrics_print(stdout, m, class_names);      // definition named beside each figure
 *     deft_det_metrics_write_json("metrics.json", m, class_names);
 *     deft_det_metrics_plot_pr("plots/pr_curve", m, class_names);  // .svg + .png
 *     deft_det_metrics_free(m);
 *
 * Boxes are struct deft_box (deft/detection.h), pixels x1 y1 x2 y2, class in
 * [0, n_classes). GT: `difficult` marks a box to ignore. Detections: `score`.
 *
 * The definitions (../shared/reference/detection.md §6):
 *   voc07, voc   py-faster-rcnn voc_eval: IoU with the +1 pixel convention,
 *                each detection takes the GT of maximal IoU among ALL the
 *                image's GTs of its class; IoU > thr (strict): difficult GT ->
 *                detection ignored, unmatched GT -> TP, matched GT -> FP.
 *                voc07: 11-point AP; voc: all-point AP (VOC2010+).
 *   sample,      TAO's evaluator: IoU >= thr, no +1, each detection takes
 *   integrate    the best still-unmatched GT; matched to a difficult GT ->
 *                ignored. sample: 11-point AP; integrate: all-point AP.
 *   coco         pycocotools: IoU 0.50:0.05:0.95, 101 recall points, at most
 *                max_dets detections per image and class, areas all / small
 *                (< 32^2) / medium / large (> 96^2), crowd GTs (gt_crowd).
 *                A difficult GT is an ignored (non-crowd) GT here.
 * Detections with score < conf_threshold are dropped first (every mode).
 * Ties in score are broken by input order (image index, then position in
 * the image's array) everywhere, i.e. stable sorting as pycocotools does.
 *
 * A class without (non-ignored) GT: TAO modes give it AP 0 and include it in
 * the mean (as TAO does); voc/voc07/coco report AP NaN (JSON null) and
 * leave it out of the mean.
 *
 * Anchors (TAO's kmeans): see deft_anchor_kmeans at the end.
 */
#ifndef DEFT_DET_EVAL_H
#define DEFT_DET_EVAL_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/detection.h"

#ifdef __cplusplus
extern "C" {
#endif

enum deft_ap_mode {
    DEFT_AP_VOC07 = 0,     /* "voc07": VOC matching, 11-point AP */
    DEFT_AP_VOC = 1,       /* "voc": VOC matching, all-point AP */
    DEFT_AP_SAMPLE = 2,    /* "sample": TAO matching, 11-point AP */
    DEFT_AP_INTEGRATE = 3, /* "integrate": TAO matching, all-point AP */
    DEFT_AP_COCO = 4,      /* "coco": mAP@[.50:.05:.95], 101-point */
    DEFT_AP_MODE_COUNT
};

/* "voc07", "voc", "sample", "integrate", "coco" (case-insensitive; also
 * TAO's "SAMPLE"/"INTEGRATE"). Unknown: DEFT_ERR_INVALID_ARG naming the choices. */
DEFT_API DEFT_NODISCARD enum deft_status deft_ap_mode_parse(const char *s, enum deft_ap_mode *out);
/* The short name above ("integrate"); "?" for an invalid mode. */
DEFT_API const char *deft_ap_mode_name(enum deft_ap_mode m);
/* A one-line description naming the definition, e.g.
 * "TAO INTEGRATE (all-point AP, IoU>=0.50)" or "COCO AP@[.50:.95] (101-point)". */
DEFT_API const char *deft_ap_mode_describe(enum deft_ap_mode m);

/* One image: its ground truth and its detections (all classes mixed). */
struct deft_det_eval_image {
    const struct deft_box *gt;
    int n_gt;
    const struct deft_box *det;
    int n_det;
    const bool *gt_crowd; /* COCO iscrowd per GT, NULL: none (other modes ignore it) */
};

struct deft_det_eval_options {
    enum deft_ap_mode mode;
    double iou;            /* VOC/TAO matching threshold (0 -> 0.5); COCO: the IoU of the
                              per-class precision/recall/PR curve (0 -> 0.5, must be one of
                              0.50, 0.55, ..., 0.95) */
    double conf_threshold; /* detections with score < this are dropped (default 0) */
    int max_dets;          /* COCO: per image and class (0 -> 100) */
};
DEFT_API void deft_det_eval_options_init(struct deft_det_eval_options *o, enum deft_ap_mode mode);

struct deft_det_class_metrics {
    double ap;             /* NaN: no GT, left out of the mean (see above) */
    double precision;      /* TP / (TP + FP) and TP / n_gt at the end of the PR curve, */
    double recall;         /* i.e. at conf_threshold (COCO: at the IoU in options) */
    int64_t n_gt;          /* GT that count (non-difficult, non-crowd) */
    int64_t n_det;         /* detections scored (after conf_threshold / max_dets) */
    int64_t tp, fp;        /* at the end of the PR curve */
    int n_pr;              /* PR curve, one point per scored detection in score order */
    double *pr_recall, *pr_precision;
    double ap50, ap75;     /* COCO only (NaN otherwise) */
};

struct deft_det_metrics {
    enum deft_ap_mode mode;
    double iou;
    double conf_threshold;
    int max_dets;          /* COCO */
    int n_classes;
    double map;            /* mean AP over the classes that enter the mean (NaN if none) */
    int n_classes_in_map;
    struct deft_det_class_metrics *classes;
    /* COCO summary (NaN in other modes; NaN where no class has GT in the range) */
    double coco_ap50, coco_ap75, coco_ap_small, coco_ap_medium, coco_ap_large, coco_ar;
};

/* Score `images` with the definition in `opt`. Bad input (class out of range,
 * non-finite or inverted boxes, n < 0) -> DEFT_ERR_INVALID_ARG naming the image
 * and box. Free the result with deft_det_metrics_free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_eval(const struct deft_det_eval_image *images,
                                                      int n_images, int n_classes,
                                                      const struct deft_det_eval_options *opt,
                                                      struct deft_det_metrics **out);
DEFT_API void deft_det_metrics_free(struct deft_det_metrics *m);

/* Score a prediction dataset (boxes with scores, e.g. KITTI with a 16th field)
 * against a ground-truth dataset, for `deft detection score`: samples pair by
 * file stem (of the label file, else the image); a GT image without a
 * prediction file has no detections; a prediction file without a GT file is
 * DEFT_ERR_INVALID_ARG naming it. Prediction classes map to the GT class list
 * by name; a class the GT does not have is DEFT_ERR_INVALID_ARG naming it.
 * The metrics use gt->class_names (n_classes = gt->n_classes). */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_eval_datasets(const struct deft_det_dataset *gt,
                                                               const struct deft_det_dataset *pred,
                                                               const struct deft_det_eval_options *opt,
                                                               struct deft_det_metrics **out);

/* metrics.json (written atomically):
 * {"ap_mode": "integrate", "definition": "...", "iou": 0.5, "conf_threshold": 0,
 *  "mAP": x, "classes": {"<name>": {"AP": x, "precision": x, "recall": x,
 *  "gt": n, "detections": n}}, ["coco": {"AP": x, "AP50": .., "AP75": ..,
 *  "APs": .., "APm": .., "APl": .., "AR": ..}]}
 * NaN figures are written as null. names may be NULL (class indices used). */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_metrics_write_json(const char *path,
                                                                    const struct deft_det_metrics *m,
                                                                    const char *const *names);
/* The same as a string (free with deft_free), for embedding. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_metrics_to_json(const struct deft_det_metrics *m,
                                                                 const char *const *names, char **out);
/* A table: one row per class, the definition named in the header and beside mAP. */
DEFT_API void deft_det_metrics_print(FILE *f, const struct deft_det_metrics *m, const char *const *names);
/* Precision-recall curves of every class with detections: <path>.svg and <path>.png. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_metrics_plot_pr(const char *path,
                                                                 const struct deft_det_metrics *m,
                                                                 const char *const *names);

/* ---- anchors: TAO's kmeans (k-medians on 1 - IoU of corner-aligned boxes) ----
 *
 *     double *wh; int n;               // (w, h) of every box / its image's (w, h)
 *     deft_anchor_boxes_from_dataset(&dataset, 416, 416, 0, 0, &wh, &n);  // -x -y --min_x --min_y
 *     double anchors[2 * 9];
 *     struct deft_anchor_kmeans_options ko;
 *     deft_anchor_kmeans_options_init(&ko);  ko.seed = 42;  ko.net_w = ko.net_h = 416;
 *     deft_anchor_kmeans(wh, n, 9, &ko, anchors, NULL);   // network pixels, by area
 *     char *spec; deft_anchor_spec_strings(anchors, 9, false, &spec);  // big/mid/small lines
 *     deft_free(spec); deft_free(wh);
 *
 * Algorithm: k distinct boxes drawn from the seed are the initial centres;
 * each box goes to the centre of highest IoU (first on ties; assignments
 * start all 0); each centre moves to the median w and median h of its boxes
 * (an empty cluster keeps its centre); stop when no assignment changes or
 * after max_steps. Output sorted by area (stable). */
struct deft_anchor_kmeans_options {
    uint64_t seed;        /* initial centres (default 0) */
    int max_steps;        /* default 10000 (TAO's --max_steps) */
    const int *init_idx;  /* k box indices to start from instead of the seed (tests), or NULL */
    int net_w, net_h;     /* > 0: centres come out multiplied by these (network pixels) */
};
DEFT_API void deft_anchor_kmeans_options_init(struct deft_anchor_kmeans_options *o);
/* The k distinct indices in [0, n) that the seed picks (what deft_anchor_kmeans starts from). */
DEFT_API DEFT_NODISCARD enum deft_status deft_anchor_kmeans_init(int n, int k, uint64_t seed, int *idx);
/* The normalised (w, h) of every box of a dataset, each divided by its own
 * image's size (samples need width/height probed, else DEFT_ERR_INVALID_ARG
 * naming the image), keeping those with w > min_x / net_w and h > min_y / net_h
 * as TAO does. *wh: 2 * *n doubles, deft_free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_anchor_boxes_from_dataset(const struct deft_det_dataset *d,
                                                                       int net_w, int net_h, int min_x, int min_y,
                                                                       double **wh, int *n);
/* wh: n (w, h) pairs, finite and > 0; k < n required (TAO's rule).
 * centres: 2k doubles out, sorted by w*h ascending (times net_w/net_h when
 * set). steps (may be NULL): the iterations run. */
DEFT_API DEFT_NODISCARD enum deft_status deft_anchor_kmeans(const double *wh, int n, int k,
                                                           const struct deft_anchor_kmeans_options *o,
                                                           double *centres, int *steps);
/* Mean over the boxes of the best IoU with any centre (quality figure to
 * print). net_w/net_h > 0: centres are in network pixels (as deft_anchor_kmeans
 * gives them with net_w/net_h set) and are divided back first. */
DEFT_API double deft_anchor_mean_iou(const double *wh, int n, const double *centres, int k, int net_w, int net_h);
/* Spec lines from k anchors in network pixels sorted by area ascending:
 *   big_anchor_shape: "[(w, h), (w, h), (w, h)]"
 *   mid_anchor_shape: "[...]"
 *   small_anchor_shape: "[...]"
 * The largest third goes to big, the next to mid, the smallest to small
 * (tiny: halves to big and mid, no small line); when k does not divide, the
 * larger heads get one more. Values "%.2f". *out: deft_free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_anchor_spec_strings(const double *anchors_px, int k,
                                                                 bool tiny, char **out);

#ifdef __cplusplus
}
#endif
#endif

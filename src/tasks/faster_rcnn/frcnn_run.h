/* frcnn_run.h (internal) - what the faster_rcnn actions share: the spec
 * resolved (input size, classes, anchors, host-step parameters,
 * preprocessing), its datasets, and a model ready to run with the host
 * proposal step between its two node ranges. */
#ifndef DEFT_TASKS_FRCNN_RUN_H
#define DEFT_TASKS_FRCNN_RUN_H

#include "deft/det_data.h"
#include "deft/det_eval.h"
#include "deft/det_loader.h"
#include "deft/faster_rcnn_spec.h"
#include "deft/io.h"
#include "deft/runtime.h"
#include "deft/task.h"
#include "tasks/common/det_infer_io.h"
#include "tasks/common/det_results.h"
#include "tasks/faster_rcnn/frcnn_impl.h"

struct frcnn_setup {
    struct deft_frcnn_config cfg;
    bool loaded;
    int net_w, net_h;
    int n_classes;                  /* object classes (the spec's list without "background") */
    float *anchors;
    struct frcnn_params p;
    struct deft_preprocess pre;
    struct frcnn_prop_cfg train_prop, eval_prop, infer_prop;
};
enum deft_status frcnn_setup_load(struct frcnn_setup *f, const struct deft_task_args *a);
void frcnn_setup_free(struct frcnn_setup *f);
/* The training (validation false) or validation source(s) of the spec. */
enum deft_status frcnn_read_split(const struct frcnn_setup *f, bool validation, struct deft_det_dataset *ds);
void frcnn_transform(const struct frcnn_setup *f, bool train, struct deft_det_transform *t);
/* "faster_rcnn" metadata: input, anchors, std, preprocessing (deft_malloc'ed JSON). */
char *frcnn_meta_json(const struct frcnn_setup *f);
/* AP definition of the spec: use_voc07_11point_metric -> SAMPLE, else INTEGRATE. */
enum deft_ap_mode frcnn_ap_mode(const struct frcnn_setup *f);

/* A model ready to run (evaluation, inference, validation during training). */
struct frcnn_model {
    struct deft_model *file;        /* opened from a file (NULL: from a trainer's graph) */
    struct deft_graph *g;
    struct deft_runtime *rt;
    struct frcnn_params p;
    float *anchors;
    double *scales, *ratios;
    int n_scales, n_ratios;
    char **classes;                 /* object classes */
    int n_classes, batch, rois, net_w, net_h, split;
    int in_img, in_rois, out[4];
    struct deft_preprocess pre;
    float *outs[4], *roi_buf, *props;
    int *n_props;
    long recall_hits, recall_gt;    /* RPN recall at IoU 0.5 over the images run with ground truth */
};
/* From a model file (metadata "faster_rcnn"), batch images, rois proposals per image. */
enum deft_status frcnn_model_open(struct frcnn_model *fm, const char *path, int batch, int rois,
                                  const struct deft_task_args *a);
/* From a training graph and setup (validation): weights by frcnn_model_sync. */
enum deft_status frcnn_model_from_graph(struct frcnn_model *fm, const struct deft_graph *g,
                                        const struct frcnn_setup *f, int batch, int rois, const char *backend);
/* Params and state by name from another runtime (the trainer's). */
enum deft_status frcnn_model_sync(struct frcnn_model *fm, struct deft_runtime *from);
/* Run n <= batch images: the first range, proposals (c), the RoIs, the rest.
 * gt (optional, network pixels, per image) counts RPN recall. */
enum deft_status frcnn_model_run(struct frcnn_model *fm, const float *images, int n, const struct frcnn_prop_cfg *c,
                                 const struct deft_det_batch *gt);
/* The same on another runtime of fm->g (calibration's, which keeps every activation). */
enum deft_status frcnn_model_run_on(struct frcnn_model *fm, struct deft_runtime *rt, const float *images, int n,
                                    const struct frcnn_prop_cfg *c, const struct deft_det_batch *gt);
/* Detections of image b of the last run, in the image's pixels. */
enum deft_status frcnn_model_detect(const struct frcnn_model *fm, int b, float conf, float nms_iou, int max_dets,
                                    const struct deft_letterbox *lb, struct deft_box **boxes, int *n);
void frcnn_model_close(struct frcnn_model *fm);
void frcnn_eval_loader_opts(const struct frcnn_model *fm, int threads, struct deft_det_loader_opts *lo);

/* Every detection of a dataset (evaluate, validation, inference); dump_dir
 * (may be NULL): each network input and letterbox there (det_dump_input). */
struct frcnn_nms { float conf, iou; int max_dets; };
enum deft_status frcnn_detect_all(struct frcnn_model *fm, const struct deft_det_dataset *ds,
                                  const struct frcnn_prop_cfg *c, const struct frcnn_nms *nms, int threads,
                                  const char *dump_dir, struct det_dets *d, FILE *progress);
/* mAP under mode, averaged over the spec's IoU list (one IoU unless a range). */
enum deft_status frcnn_score(const struct frcnn_setup *f, const struct deft_det_dataset *gt, const struct det_dets *d,
                             enum deft_ap_mode mode, double conf, double *map, struct deft_det_metrics **first);

enum deft_status frcnn_train_run(const struct deft_task_args *a);
enum deft_status frcnn_evaluate(const struct deft_task_args *a);
enum deft_status frcnn_validate(const struct deft_task_args *a, double *map);
enum deft_status frcnn_inference(const struct deft_task_args *a);
#endif

/* dnv2_task.h (internal) - what the detectnet_v2 actions share: the spec
 * loaded with --set / --seed, the data sources resolved to KITTI folders
 * (deft reads images and labels directly, never TFRecords), and the files
 * `dataset_convert` writes in place of TFRecords. */
#ifndef DEFT_TASKS_DNV2_TASK_H
#define DEFT_TASKS_DNV2_TASK_H

#include <stdio.h>
#include "deft/det_data.h"
#include "deft/detectnet_v2_spec.h"
#include "deft/det_eval.h"
#include "deft/det_loader.h"
#include "deft/detectnet_v2_model.h"
#include "deft/io.h"
#include "deft/runtime.h"
#include "deft/task.h"
#include "tasks/common/det_infer_io.h"
#include "tasks/common/det_results.h"
#include "tasks/common/det_train_cfg.h"
#include "tasks/detectnet_v2/dnv2_post.h"

/* ---- dataset_convert's output (dnv2_dataset.c) -------------------------------
 * For `-o PREFIX` TAO writes TFRecords PREFIX-fold-000-of-002-shard-00000-of-00010 ...;
 * deft writes, in the same folder so that the training spec's tfrecords_path
 * glob (".../kitti_trainval/ *", no space) still finds it:
 *   PREFIX-fold-NNN-of-MMM.txt   the image stems of fold NNN, one a line, sorted
 *                                (the split lists deft's KITTI reader takes)
 *   PREFIX.deft.json             the manifest: {"deft_dataset_convert": 1,
 *                                "images": DIR, "labels": DIR, "image_extension": ".png",
 *                                "partition_mode", "val_split", "folds": [list files],
 *                                "fold_sizes": [...], "classes": {lower-cased name: boxes},
 *                                "label_names": {name as written: lower-cased}} */
#define DNV2_MANIFEST_SUFFIX ".deft.json"

struct dnv2_manifest {
    char *images, *labels, *image_extension;
    int n_folds;
    char **folds;        /* absolute list files */
};
enum deft_status dnv2_manifest_read(const char *path, struct dnv2_manifest *m);
void dnv2_manifest_free(struct dnv2_manifest *m);

/* One split of the experiment as sources for deft_det_read. */
struct dnv2_split {
    int n;
    struct deft_det_source src[64];
    char *owned[192];    /* strings the sources point at */
    int n_owned;
    char how[1024];      /* what each data source resolved to, for people */
};
/* Training (validation = false) or validation data of the spec: tfrecords_path
 * -> the dataset_convert manifest it matches (folds other than validation_fold
 * for training, that fold for validation); else image_directory_path with
 * KITTI label folders (image_2/label_2, images/labels inside it, or a
 * labels folder beside it). No validation data: out->n = 0. Errors name the
 * data source and say what to run. */
enum deft_status dnv2_resolve_split(const struct deft_dnv2_config *c, bool validation, struct dnv2_split *out);
void dnv2_split_free(struct dnv2_split *s);


/* ---- the experiment resolved for the engines (dnv2_resolve.c) ---------------------
 * The spec's per-class maps as the plain structs of dnv2_post.h, in the
 * network's class order (cost_function_config.target_classes). */
struct dnv2_setup {
    struct deft_dnv2_config cfg;
    bool cfg_loaded;
    int n_classes, net_w, net_h;
    struct dnv2_grid grid;
    struct dnv2_raster_class *rcls;
    struct dnv2_raster_config raster;
    struct dnv2_cost_class *ccls;
    struct dnv2_cost_config cost;
    struct dnv2_cluster_class *kcls;
    struct dnv2_cluster_config cluster;
    struct deft_preprocess pre;
};
enum deft_status dnv2_setup_load(struct dnv2_setup *d, const struct deft_task_args *a);
void dnv2_setup_free(struct dnv2_setup *d);
/* TAO's clustering_config as dnv2_cluster's. */
void dnv2_cluster_class_from_spec(const struct deft_dnv2_clustering_config *c, struct dnv2_cluster_class *k);
/* Training (validation = false) or validation images of the spec, class ids
 * in the network's order (boxes of other classes dropped), no box difficult
 * (TAO's DetectNet_v2 has no neutral boxes). No validation data: ds->n = 0. */
enum deft_status dnv2_read_split(const struct dnv2_setup *d, bool validation, struct deft_det_dataset *ds);
/* augmentation_config on deft's detection transform (one letterbox everywhere). */
void dnv2_transform(const struct dnv2_setup *d, bool train, struct deft_det_transform *t);
/* Graph metadata "detectnet_v2": input, grid coding, preprocessing (deft_malloc'ed JSON). */
char *dnv2_meta_json(const struct dnv2_setup *d);

/* ---- a saved model (dnv2_model.c) --------------------------------------------------- */
struct dnv2_model {
    struct deft_model *m;
    struct deft_runtime *rt;
    char **classes;
    int n_classes, batch, net_w, net_h, input, out_cov, out_bbox;
    struct dnv2_grid grid;
    struct deft_preprocess pre;
    float *cov, *bbox;  /* host copies of the two outputs, whole batch */
};
/* The graph, classes and coding of a deft DetectNet_v2 model, without a runtime (export). */
enum deft_status dnv2_model_read(struct dnv2_model *dm, const char *path, int batch);
enum deft_status dnv2_model_open(struct dnv2_model *dm, const char *path, int batch, const struct deft_task_args *a);
void dnv2_model_close(struct dnv2_model *dm);
/* Run n <= batch preprocessed images; outputs land in dm->cov / dm->bbox. */
enum deft_status dnv2_model_run(struct dnv2_model *dm, const float *images, int n);
void dnv2_eval_loader_opts(const struct dnv2_model *dm, int threads, struct deft_det_loader_opts *lo);
/* Detections of image b of a batch's outputs (cov [N,K,gh,gw], bbox [N,4K,gh,gw]),
 * clustered per class and put back into the image's pixels. */
enum deft_status dnv2_detect_image(const struct dnv2_grid *g, const struct dnv2_cluster_config *c, int n_classes,
                                   const float *cov, const float *bbox, int b, const struct deft_letterbox *lb,
                                   struct deft_box **boxes, int *n);

/* ---- TAO's DetectNet_v2 metric (dnv2_metric.c) ---------------------------------------
 * evaluation/compute_metrics.py: ground truth and detections outside the
 * class's evaluation_box_config dropped, boxes rounded to whole pixels,
 * VOC-style matching (each detection takes the GT of highest IoU among all
 * of the image's GT of its class, matched or not; a GT matched twice makes
 * the second a false positive) with the border-inclusive IoU (+1 pixel)
 * >= the class's minimum_detection_ground_truth_overlap, and SAMPLE (11
 * recall points) or INTEGRATE (TAO's sum over unique recalls) AP. */
struct dnv2_eval_class {
    double iou;
    double min_h, max_h, min_w, max_w; /* evaluation_box_config; max 0: none */
};
enum deft_status dnv2_metric(const struct deft_det_dataset *gt, const struct det_dets *d,
                             const struct dnv2_eval_class *cls, bool integrate, double conf,
                             struct deft_det_metrics **out);
/* The spec's evaluation_config per class (in the network's order), deft_malloc'ed. */
enum deft_status dnv2_eval_classes(const struct deft_dnv2_config *c, struct dnv2_eval_class **out);
/* One line naming the definition, for beside the figures. */
const char *dnv2_metric_describe(bool integrate);

/* ---- actions ---------------------------------------------------------------------- */

/* The experiment with --seed and --set applied (a->spec required). */
enum deft_status dnv2_load(const struct deft_task_args *a, struct deft_dnv2_config *cfg);
enum deft_status dnv2_train(const struct deft_task_args *a);
/* train --dry_run / evaluate --dry_run (dnv2_setup.c) */
enum deft_status dnv2_experiment_dry_run(const struct deft_task_args *a, const char *action);
enum deft_status dnv2_inference_dry_run(const struct deft_task_args *a);
enum deft_status dnv2_evaluate(const struct deft_task_args *a);
/* dnv2_evaluate, also returning mAP (map may be NULL): the task's validate hook. */
enum deft_status dnv2_validate(const struct deft_task_args *a, double *map);
enum deft_status dnv2_inference(const struct deft_task_args *a);
enum deft_status dnv2_dataset_convert(const struct deft_task_args *a);
/* "detectnet_v2 <action>: not finished yet (issue 20)", exit 2. */
enum deft_status dnv2_not_finished(const char *action);

#endif

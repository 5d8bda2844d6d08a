/* dnv2_task.h (internal) - what the detectnet_v2 actions share: the spec
 * loaded with --set / --seed, the data sources resolved to KITTI folders
 * (deft reads images and labels directly, never TFRecords), and the files
 * `dataset_convert` writes in place of TFRecords. */
#ifndef DEFT_TASKS_DNV2_TASK_H
#define DEFT_TASKS_DNV2_TASK_H

#include <stdio.h>
#include "deft/det_data.h"
#include "deft/detectnet_v2_spec.h"
#include "deft/task.h"

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

/* ---- actions ---------------------------------------------------------------------- */

/* The experiment with --seed and --set applied (a->spec required). */
enum deft_status dnv2_load(const struct deft_task_args *a, struct deft_dnv2_config *cfg);
enum deft_status dnv2_train(const struct deft_task_args *a);
enum deft_status dnv2_evaluate(const struct deft_task_args *a);
enum deft_status dnv2_inference(const struct deft_task_args *a);
enum deft_status dnv2_dataset_convert(const struct deft_task_args *a);
/* "detectnet_v2 <action>: not finished yet (issue 20)", exit 2. */
enum deft_status dnv2_not_finished(const char *action);

#endif

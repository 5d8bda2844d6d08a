/* det_task.h (internal) - what the detector tasks (yolo_v4, detectnet_v2)
 * share around their own decode: per-image detections of a dataset and
 * their score against its ground truth, the class names in a model's
 * metadata, the images of an inference folder and the annotated copies. */
#ifndef DEFT_TASKS_DET_TASK_H
#define DEFT_TASKS_DET_TASK_H

#include <stddef.h>
#include "deft/data.h"
#include "deft/det_data.h"
#include "deft/det_eval.h"
#include "deft/graph.h"

/* Per-image detections of a whole dataset (evaluation). */
struct det_dets {
    int n;
    struct deft_box **boxes;
    int *n_boxes;
};
/* n images without detections yet (calloc'ed arrays). */
enum deft_status det_dets_alloc(struct det_dets *d, int n);
void det_dets_free(struct det_dets *d);

/* Score detections against the dataset's ground truth (deft_det_eval):
 * iou > 0 replaces the mode's threshold (not in COCO mode). */
enum deft_status det_score(const struct deft_det_dataset *gt, const struct det_dets *d, enum deft_ap_mode mode,
                           double iou, double conf, struct deft_det_metrics **out);

/* ["name", ...] as JSON text (deft_malloc'ed), the "class_names" metadata; NULL: out of memory. */
char *det_class_names_json(char *const *names, int n);
/* The "class_names" metadata of a model graph (path names it in errors). */
enum deft_status det_class_names_from_meta(const struct deft_graph *g, const char *path, char ***names, int *n);
void det_class_names_free(char **names, int n);

/* Images of a directory (sorted; .jpg .jpeg .png .bmp) or one image, as a dataset without boxes. */
enum deft_status det_images_dataset(const char *in, struct deft_det_dataset *ds);
/* The file name of path without its folder and extension, into buf. */
const char *det_base_stem(const char *path, char *buf, size_t n);
/* img_path with the boxes drawn, as a PNG at dst. */
enum deft_status det_write_annotated(const char *img_path, const char *dst, const struct deft_box *boxes, int n,
                                     char *const *classes, int n_classes);


/* The preprocessing as model metadata: parent."preprocess" {bgr, divisor, mean, std} and
 * parent."mode" (what yolo_v4 models have always recorded). */
struct cJSON;
void det_preprocess_to_json(struct cJSON *parent, const struct deft_preprocess *p);
/* Back from what det_preprocess_to_json wrote; without "preprocess": *p = dflt. */
void det_preprocess_from_json(const struct cJSON *parent, const struct deft_preprocess *dflt, struct deft_preprocess *p);

/* TAO's soft_start_annealing_schedule at progress p in [0, 1]: exponential
 * ramp min -> max until soft_start, max until annealing, exponential decay
 * back to min (yolo_v4's and detectnet_v2's schedule). */
double det_lr_soft_start_anneal(double min_lr, double max_lr, double soft_start, double annealing, double p);

#endif

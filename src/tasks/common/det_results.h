/* det_results.h (internal) - what the detection tasks (yolo_v4, faster_rcnn)
 * share after their networks: a dataset's detections, their score, class
 * names from a model's metadata, inference inputs and outputs. */
#ifndef DEFT_TASKS_COMMON_DET_RESULTS_H
#define DEFT_TASKS_COMMON_DET_RESULTS_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "deft/det_data.h"
#include "deft/det_eval.h"
#include "deft/graph.h"

/* Per-image detections of a whole dataset (evaluation). */
struct det_dets {
    int n;
    struct deft_box **boxes;
    int *n_boxes;
};
void det_dets_free(struct det_dets *d);
/* Score detections against the dataset's ground truth with the AP mode. */
enum deft_status det_score(const struct deft_det_dataset *gt, const struct det_dets *d, enum deft_ap_mode mode,
                           double iou, double conf, struct deft_det_metrics **out);
/* The "class_names" metadata of a model graph (*names: deft_malloc'ed strings). */
enum deft_status det_class_names_from_meta(const struct deft_graph *g, const char *path, char ***names, int *n);
/* ["name", ...] as JSON text (deft_malloc'ed): the "class_names" metadata. */
char *det_class_names_json(char *const *names, int n);
/* The file name of path without directory and extension, in buf. */
const char *det_base_stem(const char *path, char *buf, size_t n);
/* Images of a directory (sorted) or one image, as a dataset without boxes. */
enum deft_status det_images_dataset(const char *in, struct deft_det_dataset *ds);
/* The image with the boxes drawn, as a PNG at dst. */
enum deft_status det_write_annotated(const char *img_path, const char *dst, const struct deft_box *boxes, int n,
                                     char *const *classes, int n_classes);
/* {"image": ..., "detections": [{"class", "score", "bbox"}]} appended to arr. */
void det_json_dets(cJSON *arr, const char *image, const struct deft_box *b, int n, char *const *classes,
                   int n_classes);
#endif

/* det_results.h (internal) - per-image detections, their score, class names in metadata. */
#ifndef DEFT_TASKS_COMMON_DET_RESULTS_H
#define DEFT_TASKS_COMMON_DET_RESULTS_H
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
/* Score detections against the dataset's ground truth (iou <= 0: the mode's default). */
enum deft_status det_score(const struct deft_det_dataset *gt, const struct det_dets *d, enum deft_ap_mode mode,
                           double iou, double conf, struct deft_det_metrics **out);
/* ["name", ...] as JSON text (deft_malloc'ed), the "class_names" metadata. */
char *det_class_names_json(char *const *names, int n);
/* The "class_names" metadata of g (path names the model in errors). */
enum deft_status det_class_names_from_meta(const struct deft_graph *g, const char *path, char ***names, int *n);
#endif

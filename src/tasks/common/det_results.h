/* det_results.h (internal) - per-image detections, their score, class names and preprocessing in a model's metadata. */
#ifndef DEFT_TASKS_COMMON_DET_RESULTS_H
#define DEFT_TASKS_COMMON_DET_RESULTS_H
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
/* Score detections against the dataset's ground truth (iou <= 0: the mode's default). */
enum deft_status det_score(const struct deft_det_dataset *gt, const struct det_dets *d, enum deft_ap_mode mode,
                           double iou, double conf, struct deft_det_metrics **out);
/* ["name", ...] as JSON text (deft_malloc'ed), the "class_names" metadata. */
char *det_class_names_json(char *const *names, int n);
/* The "class_names" metadata of g (path names the model in errors). */
enum deft_status det_class_names_from_meta(const struct deft_graph *g, const char *path, char ***names, int *n);
void det_class_names_free(char **names, int n);

/* The preprocessing as model metadata: parent."preprocess" {bgr, divisor, mean, std} and
 * parent."mode" (what yolo_v4 models have always recorded). */
struct cJSON;
void det_preprocess_to_json(struct cJSON *parent, const struct deft_preprocess *p);
/* Back from what det_preprocess_to_json wrote; without "preprocess": *p = dflt. */
void det_preprocess_from_json(const struct cJSON *parent, const struct deft_preprocess *dflt, struct deft_preprocess *p);
#endif

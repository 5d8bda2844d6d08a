/* det_split.h (internal) - a detection spec's data sources as a dataset. */
#ifndef DEFT_TASKS_COMMON_DET_SPLIT_H
#define DEFT_TASKS_COMMON_DET_SPLIT_H
#include "deft/det_data.h"
#include "deft/yolo_spec.h"

/* data_sources (validation false) or validation_data_sources of d, KITTI
 * labels read directly; the classes must be the spec's (sorted lower-case
 * targets). spec_path names the spec in errors. */
enum deft_status det_spec_read_split(const struct deft_yolo_dataset_config *d, const char *spec_path, bool validation,
                                struct deft_det_dataset *ds);
#endif

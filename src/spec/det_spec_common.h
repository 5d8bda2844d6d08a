/* det_spec_common.h (internal to deft) - the spec blocks TAO's detectors share
 * (cv/common/proto: training_config, nms_config, the detection-sequence
 * dataset_config) as one set of schema tables and checks, used by the
 * yolo_v4 and ssd specs; and the table macros every task spec writes with. */
#ifndef DEFT_DET_SPEC_COMMON_H
#define DEFT_DET_SPEC_COMMON_H

#include <stddef.h>
#include "deft/yolo_spec.h"
#include "spec/spec_fields.h"

/* TrainingConfig, NMSConfig and the YOLOv3/SSD DatasetConfig (TAO's common protos). */
extern const struct deft_spec_schema deft_det_train_schema;
extern const struct deft_spec_schema deft_det_nms_schema;
extern const struct deft_spec_schema deft_det_dataset_schema;

/* TAO's training checks (one model path, schedule order, early stopping) and
 * the resolved optimizer / schedule kinds. need_optimizer: an optimizer block is
 * required (yolo_v4); otherwise its absence means SGD with momentum 0.9. */
DEFT_NODISCARD enum deft_status deft_det_check_training(struct deft_yolo_training_config *t,
                                                       const struct deft_spec_origin *o, bool need_optimizer);
/* Data sources (labels, not TFRecords-only beside labels), type, extension,
 * target_class_mapping, then the class list (sorted, lower-cased, unique). */
DEFT_NODISCARD enum deft_status deft_det_check_dataset(struct deft_yolo_dataset_config *d,
                                                      const struct deft_spec_origin *o);
void deft_det_free_classes(struct deft_yolo_dataset_config *d);

#endif

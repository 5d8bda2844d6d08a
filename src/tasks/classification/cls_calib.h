/* cls_calib.h (internal) - INT8 post-training calibration of a classifier on
 * images, for `deft classification export --data_type int8` (the shared
 * part: tasks/common/calib.h). */
#ifndef DEFT_CLS_CALIB_H
#define DEFT_CLS_CALIB_H

#include <stdio.h>
#include "deft/data.h"
#include "deft/io.h"
#include "deft/quant.h"
#include "tasks/common/calib.h"

/* Run the model (inference graph, weights in m->file) over o->batches x
 * o->batch_size images drawn at random (seed) from paths, preprocessed with
 * tf, and pick a range for every activation value: *amax gets one float per
 * value of m->graph (0 for params and values not computed). The graph's
 * input batch is changed to batch_size. Fewer readable images than needed is
 * DEFT_ERR_INVALID_ARG. */
enum deft_status cls_calibrate(struct deft_model *m, int input, const struct deft_transform *tf,
                               char *const *paths, int n_paths, const struct task_calib_opts *o,
                               uint64_t seed, float **amax);

#endif

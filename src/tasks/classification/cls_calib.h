/* cls_calib.h (internal) - INT8 post-training calibration of a model on
 * images, for `deft classification export --data_type int8`. */
#ifndef DEFT_CLS_CALIB_H
#define DEFT_CLS_CALIB_H

#include <stdio.h>
#include "deft/data.h"
#include "deft/io.h"
#include "deft/quant.h"

struct cls_calib_opts {
    int batches, batch_size;
    enum deft_calibrator calibrator;
    double percentile;
    uint64_t seed;
    FILE *out;
};

/* Image files under dir: its own images and those of its sub-folders (class
 * folders), sorted. DEFT_ERR_NOT_FOUND when there are none. */
enum deft_status cls_calib_list_images(const char *dir, char ***paths, int *n);

/* Run the model (inference graph, weights in m->file) over batches x
 * batch_size images drawn at random (seed) from paths, preprocessed with tf,
 * and pick a range for every activation value: *amax gets one float per
 * value of m->graph (0 for params and values not computed). The graph's
 * input batch is changed to batch_size. Fewer readable images than needed is
 * DEFT_ERR_INVALID_ARG. */
enum deft_status cls_calibrate(struct deft_model *m, int input, const struct deft_transform *tf,
                               char *const *paths, int n_paths, const struct cls_calib_opts *o,
                               float **amax);

#endif

/* calib.h (internal) - INT8 post-training calibration shared by the tasks'
 * exports (classification, yolo_v4): the calibration images, a seeded pick
 * among them, the activation ranges of a model over preprocessed batches
 * (two passes: max|x|, then histograms for the calibrator, deft/quant.h),
 * and the files that carry the ranges: TensorRT's cal.bin and TAO's
 * calib.json, one entry per activation tensor of the exported ONNX. How the
 * images are preprocessed is each task's own (classification's transform,
 * the detectors' letterbox). */
#ifndef DEFT_TASKS_CALIB_H
#define DEFT_TASKS_CALIB_H

#include <stdio.h>
#include "deft/io.h"
#include "deft/quant.h"
#include "deft/runtime.h"

struct task_calib_opts {
    int batches, batch_size;
    enum deft_calibrator calibrator;
    double percentile;           /* DEFT_CALIB_PERCENTILE, 0 -> 99.99 */
    FILE *out;                   /* progress lines, or NULL */
    /* Runs one batch of bs images x on rt (NULL: set the input, run the
     * graph): a model with a host step between two node ranges (Faster
     * R-CNN's proposals) runs both ranges and the step here. */
    enum deft_status (*run)(void *ctx, struct deft_runtime *rt, const float *x, int bs);
    void *run_ctx;
};

/* Image files under dir: its own images and those of its sub-folders (class
 * folders), sorted. DEFT_ERR_NOT_FOUND when there are none. */
enum deft_status task_calib_list_images(const char *dir, char ***paths, int *n);

/* A seeded permutation of [0, n) (Fisher-Yates on deft's counter RNG), so the
 * images drawn do not depend on anything but the seed. deft_free it. */
enum deft_status task_calib_shuffle(int n, uint64_t seed, int **order);

/* Run m (inference graph, weights in m->file) over o->batches batches of
 * o->batch_size images taken in order from x ([batches * batch_size, C, h,
 * w], preprocessed; C the input's channels) and pick a range for every activation: *amax gets one
 * float per value of m->graph (0 for params and values not computed). The
 * graph's input batch is changed to batch_size. */
enum deft_status task_calib_ranges(struct deft_model *m, int input, int h, int w, const float *x,
                                   const struct task_calib_opts *o, float **amax);

/* The range of one exported tensor (a deft value's, or one implied by it). */
float task_calib_ref_amax(const struct deft_onnx_tensor_ref *r, const float *amax);
/* cal.bin: every tensor of info, scale = amax / 127; the header names
 * EntropyCalibration2 (what TensorRT and DeepStream accept) unless the
 * ranges are min-max. trt_version 0 -> 8601. */
enum deft_status task_calib_write_cache(const char *path, int trt_version, enum deft_calibrator c,
                                        const struct deft_onnx_export_info *info, const float *amax);
/* TAO's calib.json: {"tensor_scales": {"<tensor>": amax, ...}}. */
enum deft_status task_calib_write_json(const char *path, const struct deft_onnx_export_info *info,
                                       const float *amax);

#endif

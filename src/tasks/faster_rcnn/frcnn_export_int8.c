/* frcnn_export_int8.c - `deft faster_rcnn export --data_type int8`: the
 * activation ranges of the whole two-stage forward over the calibration
 * images, and the QDQ copy of the model.
 *
 * The model is one graph with two inputs (image, RoIs); the proposal layer
 * runs on the host between its two node ranges. Calibration runs exactly
 * what inference runs (frcnn_model_run_on): backbone and RPN, the proposals
 * of each image, the RoIs set, the crop and the RCNN body on the crops, on a
 * runtime that keeps every activation, so the ranges cover the RCNN body as
 * it sees real proposals. The proposal, decode and NMS nodes the export adds
 * around the network have no deft value and stay float in TensorRT (as
 * SSD's and YOLO's tails). */
#include <stdio.h>
#include "tasks/common/calib.h"
#include "tasks/faster_rcnn/frcnn_export.h"

/* Calibration images: --cal_image_dir, else the spec's training images. */
static enum deft_status cal_paths(const struct det_export_opts *o, const struct frcnn_setup *f, char ***paths,
                                  int *n) {
    *paths = NULL;
    *n = 0;
    if (o->cal_image_dir) return task_calib_list_images(o->cal_image_dir, paths, n);
    if (!f->loaded)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--data_type int8 needs calibration images: --cal_image_dir DIR, "
                              "or -e SPEC (its training images)");
    struct deft_det_dataset ds;
    enum deft_status s = frcnn_read_split(f, false, &ds);
    return s ? s : det_export_take_paths(&ds, paths, n);
}

struct run_ctx {
    struct frcnn_model *fm;
    const struct frcnn_prop_cfg *pc;
};

/* One calibration batch: both node ranges with the host proposals between. */
static enum deft_status run_two_stage(void *ctx, struct deft_runtime *rt, const float *x, int bs) {
    const struct run_ctx *c = ctx;
    return frcnn_model_run_on(c->fm, rt, x, bs, c->pc, NULL);
}

enum deft_status frcnn_export_calibrate(const struct det_export_opts *o, const struct frcnn_setup *f,
                                        struct frcnn_model *fm, const struct frcnn_prop_cfg *pc,
                                        const struct deft_task_args *a, float **amax) {
    char **paths = NULL;
    int n_paths = 0, need = o->batches * o->batch_size;
    float *x = NULL;
    *amax = NULL;
    enum deft_status s = cal_paths(o, f, &paths, &n_paths);
    if (!s && n_paths < need)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches %d x --batch_size %d) but "
                           "only %d were found", need, o->batches, o->batch_size, n_paths);
    if (!s && fm->batch != o->batch_size)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration: the model runs %d images, --batch_size is %d",
                           fm->batch, o->batch_size);
    if (!s && !(x = deft_malloc((size_t)need * 3 * (size_t)fm->net_h * (size_t)fm->net_w * sizeof *x)))
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration images)");
    if (!s) {
        struct deft_det_loader_opts lo;
        frcnn_eval_loader_opts(fm, a->threads, &lo); /* letterboxed as evaluation and inference */
        struct run_ctx rc = {fm, pc};
        struct task_calib_opts co = {.batches = o->batches, .batch_size = o->batch_size,
                                     .calibrator = o->calibrator, .percentile = o->percentile,
                                     .out = a->out ? a->out : stdout, .run = run_two_stage, .run_ctx = &rc};
        struct deft_model m = {fm->g, fm->file->file};
        uint64_t seed = a->seed_set ? (uint64_t)a->seed : 0;
        if (!(s = det_export_cal_images(&lo, paths, n_paths, need, seed, fm->net_w, fm->net_h, x)))
            s = task_calib_ranges(&m, fm->in_img, fm->net_h, fm->net_w, x, &co, amax);
    }
    deft_free(x);
    deft_string_list_free(paths, n_paths);
    return s;
}

enum deft_status frcnn_export_qdq(const struct det_export_opts *o, const struct frcnn_model *fm,
                                  const struct deft_onnx_export_opts *eo, const float *amax) {
    bool *float_nodes = deft_calloc((size_t)deft_graph_num_nodes(fm->g), sizeof *float_nodes);
    if (!float_nodes) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !o->quantize_head && i < 4; i++) float_nodes[deft_graph_value(fm->g, fm->out[i])->producer] = true;
    struct deft_onnx_export_opts q = *eo;
    q.act_amax = amax;
    q.qdq_fusion = o->qdq_fusion;
    q.float_nodes = float_nodes;
    enum deft_status s = deft_onnx_export(o->qdq_file, fm->g, fm->file->file, &q, NULL);
    deft_free(float_nodes);
    return s;
}

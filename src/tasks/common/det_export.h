/* det_export.h (internal) - what the detectors' exports share (yolo_v4,
 * ssd): the export flags, the metadata a consumer needs to feed "Input" as
 * deft's evaluation does, and the calibration images letterboxed by the
 * evaluation loader. */
#ifndef DEFT_TASKS_DET_EXPORT_H
#define DEFT_TASKS_DET_EXPORT_H

#include <stdint.h>
#include "deft/data.h"
#include "deft/det_loader.h"
#include "deft/graph.h"
#include "deft/io.h"
#include "deft/quant.h"
#include "deft/task.h"

/* trt: TAO's TensorRT plugin; onnx: ONNX NonMaxSuppression; none: raw boxes and scores. */
enum det_nms_mode { DET_NMS_TRT = 0, DET_NMS_ONNX, DET_NMS_NONE };
const char *det_nms_name(enum det_nms_mode m);

struct det_export_opts {
    enum det_nms_mode nms;
    bool int8, fp16, gen_ds, quantize_head, qdq_fusion;
    const char *cal_image_dir, *cal_cache, *cal_json, *qdq_file;
    enum deft_calibrator calibrator;
    double percentile;
    int batches, batch_size, opset, trt_version, static_batch;
};
/* The export flags; trt_plugin and ds_parser name the network's plugin and
 * DeepStream parser in the messages. */
enum deft_status det_export_parse_flags(const struct deft_task_args *a, const char *trt_plugin, const char *ds_parser,
                                        struct det_export_opts *o);

/* JSON of the preprocessing and of the letterbox rule (deft_malloc'ed, NULL: out of memory). */
char *det_export_preprocess_json(const struct deft_preprocess *p);
char *det_export_letterbox_json(int net_w, int net_h);

#define DET_EXPORT_MAX_META 12
/* metadata_props of the export: some borrowed from the graph, some owned. */
struct det_export_meta {
    struct deft_kv kv[DET_EXPORT_MAX_META];
    char *owned[DET_EXPORT_MAX_META];
    int n, n_owned;
};
void det_export_meta_graph(struct det_export_meta *m, const struct deft_graph *g, const char *key);
/* Takes v (NULL: out of memory). */
enum deft_status det_export_meta_own(struct det_export_meta *m, const char *key, char *v);
void det_export_meta_free(struct det_export_meta *m);

/* need images from a seeded shuffle of paths, loaded by lo (the evaluation
 * loader's options, its batch size the calibration's) into x; unreadable
 * ones are skipped for the next. */
enum deft_status det_export_cal_images(const struct deft_det_loader_opts *lo, char **paths, int n_paths, int need,
                                       uint64_t seed, int net_w, int net_h, float *x);
/* Calibration from the spec's training set: moves ds's image paths into *paths
 * (n of them) and frees ds, also on failure. */
enum deft_status det_export_take_paths(struct deft_det_dataset *ds, char ***paths, int *n);
#endif

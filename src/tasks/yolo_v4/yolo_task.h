/* yolo_task.h (internal) - what the yolo_v4 / yolo_v4_tiny actions share:
 * the spec resolved into heads, loss settings, transforms and datasets; a
 * saved model opened for evaluation/inference; detections of a batch put
 * back into image pixels. */
#ifndef DEFT_TASKS_YOLO_TASK_H
#define DEFT_TASKS_YOLO_TASK_H

#include <stdio.h>
#include "deft/det_data.h"
#include "deft/det_eval.h"
#include "deft/det_loader.h"
#include "deft/io.h"
#include "deft/runtime.h"
#include "deft/task.h"
#include "deft/yolo.h"
#include "deft/yolo_spec.h"
#include "tasks/common/det_export.h"
#include "tasks/common/det_results.h"

/* Heads and anchors, normalised to the network input (TAO divides the
 * spec's pixel anchors by output_width/height). */
struct yolo_heads {
    int n;
    struct deft_yolo_head head[DEFT_YOLO_HEADS];
    float anchors[DEFT_YOLO_HEADS][DEFT_YOLO_MAX_ANCHORS][2];
};

struct yolo_setup {
    struct deft_yolo_config cfg;
    bool cfg_loaded;
    const char *network;             /* "yolo_v4" / "yolo_v4_tiny" */
    int net_w, net_h;
    struct yolo_heads heads;
    struct deft_yolo_loss_config loss;
    float *class_weights;            /* per class, NULL = all 1 */
    struct deft_preprocess pre;
};

/* Load the spec (with --set and --seed), check it fits the network, resolve heads. */
enum deft_status yolo_setup_load(struct yolo_setup *y, const struct deft_task_args *a, const char *network);
void yolo_setup_free(struct yolo_setup *y);
/* Training (validation = false) or validation sources of the spec, read with TAO's rules. */
enum deft_status yolo_read_split(const struct yolo_setup *y, bool validation, struct deft_det_dataset *ds);
void yolo_transform(const struct yolo_setup *y, bool train, struct deft_det_transform *t);
/* Heads of a given input size (grid = size / stride) from normalised anchors. */
void yolo_heads_resize(struct yolo_heads *h, int net_w, int net_h);
/* Graph metadata: class names, heads, input, preprocessing ("yolo" key). */
char *yolo_meta_json(const struct yolo_setup *y);
enum deft_status yolo_heads_from_meta(const char *json, const char *path, struct yolo_heads *h, int *net_w,
                                      int *net_h, struct deft_preprocess *pre);

/* NMS settings shared by validation, evaluate and inference. */
struct yolo_nms {
    float conf, iou;
    int top_k;
};

/* Detections of image b of a batch (outputs of the whole batch, per head),
 * in the image's own pixels. *boxes is deft_malloc'ed. */
enum deft_status yolo_detect_image(const struct yolo_heads *h, int n_classes, const float *const *outs, int b,
                                   const struct deft_letterbox *lb, const struct yolo_nms *nms,
                                   struct deft_box **boxes, int *n);

/* A saved model ready to run (evaluate, inference). */
struct yolo_model {
    struct deft_model *m;
    struct deft_runtime *rt;
    struct yolo_heads heads;
    struct deft_preprocess pre;
    char **classes;
    int n_classes, batch, net_w, net_h, input;
    int out[DEFT_YOLO_HEADS];
    float *outs[DEFT_YOLO_HEADS];    /* host copies of the outputs, whole batch */
};
enum deft_status yolo_model_open(struct yolo_model *ym, const char *path, int batch, const struct deft_task_args *a);
/* The model's graph (inference mode, input batch set), classes, heads and
 * outputs, without a runtime (export). Closed with yolo_model_close. */
enum deft_status yolo_model_read(struct yolo_model *ym, const char *path, int batch);
/* Loader options of evaluation for this model: its letterbox and preprocessing, batch ym->batch. */
void yolo_eval_loader_opts(const struct yolo_model *ym, int threads, struct deft_det_loader_opts *lo);
/* Run a batch of n <= batch images (plain NCHW); outputs land in ym->outs. */
enum deft_status yolo_model_run(struct yolo_model *ym, const float *images, int n);
void yolo_model_close(struct yolo_model *ym);

/* ---- export ------------------------------------------------------------------ */

/* the NMS modes: enum det_nms_mode (tasks/common/det_export.h) */

/* Outputs of each NMS mode (yolo_export_tail.c). */
#define YOLO_OUT_BOXES "boxes"
#define YOLO_OUT_SCORES "scores"

/* The decode (and NMS) after the head outputs, as ONNX nodes. */
struct yolo_tail_opts {
    const struct yolo_heads *heads;
    int n_classes;
    const char *const *head_names; /* head i's output tensor in the ONNX graph */
    enum det_nms_mode nms;
    struct yolo_nms cfg;           /* thresholds and top_k (trt, onnx) */
    int score_bits;                /* trt: scoreBits, 0 = the plugin's default */
};
/* *out is freed with deft_onnx_tail_free; *num_boxes = candidate boxes per image. */
enum deft_status yolo_export_tail(const struct yolo_tail_opts *o, struct deft_onnx_tail **out, int *num_boxes);
/* TensorRT's BatchedNMS topK (boxes per class entering NMS) for num_boxes candidates. */
int yolo_trt_topk(int num_boxes);

struct export_files;
/* --gen_ds_config: labels.txt and nvinfer_config.txt in dir (yolo_export_ds.c);
 * fp32_layers: layer-device-precision value or NULL. */
enum deft_status yolo_write_ds(const char *dir, const char *onnx, const char *cal, const struct yolo_model *ym,
                               bool int8, bool fp16, const struct yolo_nms *nms, const char *fp32_layers,
                               struct export_files *w);
/* "head_s32:fp32:gpu;...": the head convolutions and the decode nodes of t (NULL: out of memory). */
char *yolo_fp32_layers(const struct yolo_model *ym, const struct deft_onnx_tail *t);

/* actions */
enum deft_status yolo_export(const struct deft_task_args *a, const char *network);
enum deft_status yolo_train(const struct deft_task_args *a, const char *network);
enum deft_status yolo_evaluate(const struct deft_task_args *a, const char *network);
/* yolo_evaluate, also returning mAP under the spec's AP mode (map may be NULL). */
enum deft_status yolo_validate(const struct deft_task_args *a, const char *network, double *map);
enum deft_status yolo_inference(const struct deft_task_args *a, const char *network);
enum deft_status yolo_kmeans(const struct deft_task_args *a);
/* train --data DIR [--val DIR] [--arch A] [--pretrained F] [--epochs N]
 * [--batch N] [--size W[xH]] [--lr X]: a TAO yolo_v4 spec (protobuf text,
 * free() it) for the dataset folder, with anchors by k-means on its boxes;
 * a missing folder, an unknown layout or a bad number is an error naming the flag. */
enum deft_status yolo_quick_spec(const struct deft_task_args *t, const char *network, char **text);

#endif

/* yolo_tasks.c - yolo_v4 and yolo_v4_tiny as tasks: TAO's actions and flags
 * for the CLI's command table, the loss terms and mAP for the shared loop. */
#include <stdio.h>
#include "deft/task.h"
#include "deft/yolo_spec.h"
#include "tasks/yolo_v4/yolo_task.h"

static void help(FILE *f, const char *net) {
    fprintf(f,
            "usage: deft %s <action> [flags]\n\n"
            "actions:\n"
            "  train      -e SPEC [-r DIR] [--resume | --resume_from CKPT | --overwrite] [--dry_run] [--set k=v]\n"
            "  train      --data DIR [--val DIR] [--arch resnet18|cspdarknet_tiny|...] [--pretrained FILE]\n"
            "             [--epochs 80] [--batch 8] [--size 416|WxH] [--lr 0.002]   no spec: DIR is a KITTI\n"
            "             (images/ + labels/), VOC (JPEGImages/ + Annotations/) or COCO (images/ +\n"
            "             annotations.json) folder; its train.txt/val.txt lists (or ImageSets/Main/) split it\n"
            "             when --val is not given; classes from the labels, anchors by k-means on the\n"
            "             training boxes; the spec is printed and saved as DIR/spec.yaml\n"
            "  evaluate   -e SPEC [-m MODEL] [-r DIR] [--ap_mode sample|integrate|coco|voc|voc07] [--threshold C]\n"
            "             without -m: DIR's weights/best.safetensors (the run's best model)\n"
            "             mAP on the spec's validation_data_sources (definition printed beside each figure);\n"
            "             with -r: DIR/evaluate/results.json and a PR-curve plot\n"
            "  inference  -m MODEL -i IMAGE_DIR|IMAGE [-e SPEC] [-o ANNOTATED_DIR] [-l LABEL_DIR] [--json FILE]\n"
            "             [--threshold C]   annotated PNGs, KITTI labels with the score as a 16th field, JSON\n"
            "             [--dump_input DIR]  also each image's network input (DIR/<stem>.npy) and\n"
            "             letterbox (DIR/<stem>.json), to feed an exported model exactly that input\n"
            "  export     -m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx|none] [--data_type fp32|fp16|int8]\n"
            "             [--gen_ds_config] ...  ONNX with the decode and NMS, INT8 cal.bin / QDQ ONNX,\n"
            "             DeepStream config (deft %s export --help for every flag)\n"
            "  kmeans     -l LABEL_DIR[,..] -i IMAGE_DIR[,..] [-x 416] [-y 416] [-n 9] [--max_steps 10000]\n"
            "             [--min_x 0] [--min_y 0] [--seed 42]   anchor shapes as spec lines\n"
            "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-pg 8] [-nf 16] [-el LAYER ...]\n"
            "             [-r DIR] [--target_ratio R | --target_flops R] [--sweep | --sensitivity [-e SPEC]]\n"
            "             TAO's pruning; the head output convs stay whole; retrain with\n"
            "             training_config.pruned_model_path: OUT  (deft %s prune --help)\n\n"
            "common flags:\n"
            "  -e, --experiment_spec_file SPEC  TAO's yolo_v4 protobuf text (.txt) or the same fields in YAML\n"
            "  -r, --results_dir DIR            weights/, status.json, metrics.csv, TensorBoard events, plots/\n"
            "                                   (default: the spec's results_dir, else runs/%s/trainN)\n"
            "  --overwrite                      train into a folder holding a run, deleting its results\n"
            "  --set key.path=value             override a spec field (repeatable)\n"
            "  --threads N, --backend cpu|ref|cuda|cuda-emu, --seed N, --help-spec\n\n"
            "Labels are KITTI text files read directly (no TFRecords): give label_directory_path and\n"
            "image_directory_path in each data source (split_list_path: a list of image stems).\n"
            "Ctrl-C during training writes a checkpoint and stops; --resume continues exactly.\n",
            net, net, net, net);
}

static void export_help(FILE *f, const char *net) {
    fprintf(f,
        "usage: deft %s export -m MODEL -o OUT.onnx [-e SPEC] [flags]\n\n"
        "  The detector as one ONNX file (opset 13, IR 7: TensorRT 8.x/10.x, onnxruntime): batch-norm\n"
        "  folded, input 'Input' [batch,3,H,W] (NCHW float: the image letterboxed and preprocessed as\n"
        "  deft's evaluate does - centred, mean-padded, BGR minus the means for TAO's specs), then the\n"
        "  network, then TAO's decode written in ONNX ops (centre = sigmoid(t)*s - (s-1)/2 in the cell\n"
        "  with s = 1 + grid_xy_extend, size = anchor*exp(min(t,8)), score = sigmoid(obj)*sigmoid(cls))\n"
        "  and the NMS. Boxes are x1,y1,x2,y2 normalised to the network input. metadata_props record the\n"
        "  class names, heads and anchors, the preprocessing and the letterbox rule, the NMS settings\n"
        "  and what each output holds, so another runtime can reproduce `deft %s evaluate`.\n\n"
        "  --nms trt      (default) TAO's layout: a BatchedNMSDynamic_TRT node (TensorRT plugin;\n"
        "                 shareLocation 1, backgroundLabelId -1, isNormalized 1, clipBoxes 1, scoreThreshold,\n"
        "                 iouThreshold and keepTopK from nms_config, topK = every candidate up to 4096 so\n"
        "                 nothing deft keeps is dropped, scoreBits = infer_nms_score_bits when set) fed with\n"
        "                 'boxes' [N,B,1,4] and 'scores' [N,B,C]; outputs BatchedNMS int32 [N,1] (count),\n"
        "                 BatchedNMS_1 [N,K,4] boxes, BatchedNMS_2 [N,K] scores, BatchedNMS_3 [N,K] classes\n"
        "                 (float). onnxruntime and onnx.checker do not know the plugin.\n"
        "  --nms onnx     standard ONNX NonMaxSuppression (per class) + TopK, runs anywhere and gives what\n"
        "                 `deft %s inference` gives: num_detections int32 [N,1], detection_boxes [N,K,4]\n"
        "                 (clipped to [0,1]), detection_scores [N,K], detection_classes int32 [N,K]; best\n"
        "                 first, padded with zeros and class -1. K = top_k.\n"
        "  --nms none     the decoded 'boxes' [N,B,4] (not clipped) and 'scores' [N,B,C], no NMS.\n"
        "                 NMS settings come from the spec's nms_config (confidence_threshold,\n"
        "                 clustering_iou_threshold, top_k): trt and onnx need -e SPEC with that block.\n"
        "  -e SPEC        the spec (NMS settings, calibration images, class check); --set key=value applies\n"
        "  --data_type fp32|fp16|int8\n"
        "                 fp16: the ONNX stays fp32, TensorRT picks fp16 when it builds the engine\n"
        "                 (the DeepStream config says network-mode=2). int8: post-training calibration\n"
        "                 on images letterboxed like evaluation, writing TensorRT's cache for every\n"
        "                 activation of the network; the decode after the head stays float.\n"
        "  --cal_image_dir DIR  calibration images (a folder or its sub-folders); default: the spec's\n"
        "                 training images (validation ones when it has none)\n"
        "  --batches N --batch_size N   calibration images = N x N, drawn at random (--seed) (10 x 16)\n"
        "  --calibrator entropy|minmax|percentile  (entropy: TensorRT's KL method) [--percentile P]\n"
        "  --cal_cache_file F   the cache (default: cal.bin beside OUT.onnx)\n"
        "  --cal_json_file F    the ranges as TAO's calib.json {\"tensor_scales\": {...}}\n"
        "  --qdq_file F   also the explicitly quantized ONNX (QuantizeLinear/DequantizeLinear, int8\n"
        "                 per-channel weights) for onnxruntime and TensorRT; the detection head convolutions\n"
        "                 and the decode stay float, as TAO and DeepStream keep them\n"
        "  --quantize_head      quantize the head convolutions too (with --qdq_file)\n"
        "  --qdq_fusion         Q/DQ also on Add and pooling inputs (TensorRT's fusion placement)\n"
        "  --gen_ds_config      labels.txt and nvinfer_config.txt beside OUT.onnx for DeepStream's TAO\n"
        "                 parser (NvDsInferParseCustomBatchedNMSTLT, --nms trt): offsets, model-color-format\n"
        "                 and net-scale-factor as the preprocessing is, maintain-aspect-ratio=1,\n"
        "                 symmetric-padding=1, cluster-mode=4 (NMS is in the model), int8: the head and the\n"
        "                 decode forced to fp32 (layer-device-precision)\n"
        "  --static_batch_size N  fixed batch (default -1: dynamic 'batch' dimension, as TAO)\n"
        "  --opset N      13..17 (default 13)    --trt_version V  cal.bin header (default 8601)\n"
        "  --threads N --seed N\n\n"
        "  Nothing is written until every check and the calibration passed; if a write fails, the\n"
        "  files already written are removed. Bad input exits 2.\n",
        net, net, net);
}
static void export_help_v4(FILE *f) { export_help(f, "yolo_v4"); }
static void export_help_tiny(FILE *f) { export_help(f, "yolo_v4_tiny"); }
static void help_v4(FILE *f) { help(f, "yolo_v4"); }
static void help_tiny(FILE *f) { help(f, "yolo_v4_tiny"); }

static const struct deft_task_flag train_flags[] = {
    {NULL, "--data", true},   {NULL, "--val", true},   {NULL, "--arch", true}, {NULL, "--pretrained", true},
    {NULL, "--epochs", true}, {NULL, "--batch", true}, {NULL, "--size", true}, {NULL, "--lr", true},
    {NULL, NULL, false}};
static const struct deft_task_flag eval_flags[] = {
    {NULL, "--ap_mode", true}, {NULL, "--threshold", true}, {NULL, NULL, false}};
static const struct deft_task_flag infer_flags[] = {
    {"-l", "--label_dir", true}, {NULL, "--json", true}, {NULL, "--threshold", true},
    {NULL, "--dump_input", true}, {NULL, NULL, false}};
static const struct deft_task_flag export_flags[] = {
    {NULL, "--nms", true},           {NULL, "--data_type", true},      {NULL, "--cal_image_dir", true},
    {NULL, "--cal_cache_file", true}, {NULL, "--cal_json_file", true}, {NULL, "--batches", true},
    {NULL, "--batch_size", true},    {NULL, "--calibrator", true},     {NULL, "--percentile", true},
    {NULL, "--qdq_file", true},      {NULL, "--quantize_head", false}, {NULL, "--qdq_fusion", false},
    {NULL, "--gen_ds_config", false}, {NULL, "--static_batch_size", true}, {NULL, "--opset", true},
    {NULL, "--trt_version", true},   {NULL, NULL, false}};
static const struct deft_task_flag kmeans_flags[] = {
    {"-l", "--label_folders", true}, {NULL, "--image_folders", true}, {"-x", "--size_x", true},
    {"-y", "--size_y", true},        {"-n", "--num_clusters", true},   {NULL, "--max_steps", true},
    {NULL, "--min_x", true},         {NULL, "--min_y", true},          {NULL, NULL, false}};

#define NET_ACTIONS(fn, net)                                                                       \
    static enum deft_status fn##_train(const struct deft_task_args *a) { return yolo_train(a, net); }       \
    static enum deft_status fn##_evaluate(const struct deft_task_args *a) { return yolo_evaluate(a, net); } \
    static enum deft_status fn##_inference(const struct deft_task_args *a) { return yolo_inference(a, net); } \
    static enum deft_status fn##_validate(const struct deft_task_args *a, double *map) { return yolo_validate(a, net, map); } \
    static enum deft_status fn##_export(const struct deft_task_args *a) { return yolo_export(a, net); }
NET_ACTIONS(v4, "yolo_v4")
NET_ACTIONS(tiny, "yolo_v4_tiny")

#define ACTIONS(fn)                                                                                          \
    {                                                                                                        \
        {"train", "-e SPEC | --data DIR [--val DIR] [--arch A] ...  [-r DIR] [--resume | --overwrite] [--dry_run]",  \
         "train a detector from the spec, or from a dataset folder", train_flags, false, true,                \
         fn##_train},                                                                                        \
        {"evaluate", "-e SPEC [-m MODEL] [-r DIR] [--ap_mode M]", "mAP, per-class AP/precision/recall",        \
         eval_flags, true, false, fn##_evaluate},                                                            \
        {"inference", "-m MODEL -i IMAGES [-o DIR] [-l DIR] [--json F]", "detect objects in images",        \
         infer_flags, false, false, fn##_inference},                                                         \
        {"export", "-m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx|none] [--data_type D]",                  \
         "ONNX with decode + NMS, INT8 cache / QDQ, DeepStream config", export_flags, false, false,           \
         fn##_export, export_help_##fn},                                                                     \
        {"kmeans", "-l LABELS -i IMAGES [-x W -y H -n K]", "anchor shapes for the spec", kmeans_flags, false, \
         false, yolo_kmeans},                                                                                \
        {"prune", "-m MODEL -o OUT [-pth 0.1] ... [--target_ratio R]", "remove channels by weight magnitude", NULL, \
         false, false, NULL},                                                                                \
    }

static const struct deft_task_action v4_actions[] = ACTIONS(v4);
static const struct deft_task_action tiny_actions[] = ACTIONS(tiny);
static const char *const loss_terms[] = {"loss_loc", "loss_obj", "loss_noobj", "loss_cls"};

const struct deft_task deft_task_yolo_v4 = {
    .name = "yolo_v4",
    .summary = "YOLOv4 detector (resnet, cspdarknet, mobilenet_v2, darknet backbones)",
    .actions = v4_actions,
    .n_actions = (int)(sizeof v4_actions / sizeof v4_actions[0]),
    .spec_help = deft_yolo_config_help,
    .print_help = help_v4,
    .loss_terms = loss_terms,
    .n_loss_terms = 4,
    .metric = {"mAP", "mAP", true},
    .validate = v4_validate,
};

const struct deft_task deft_task_yolo_v4_tiny = {
    .name = "yolo_v4_tiny",
    .summary = "YOLOv4-tiny detector (cspdarknet_tiny backbone)",
    .actions = tiny_actions,
    .n_actions = (int)(sizeof tiny_actions / sizeof tiny_actions[0]),
    .spec_help = deft_yolo_config_help,
    .print_help = help_tiny,
    .loss_terms = loss_terms,
    .n_loss_terms = 4,
    .metric = {"mAP", "mAP", true},
    .validate = tiny_validate,
};

/* frcnn_tasks.c - faster_rcnn as a task: TAO's actions and flags, the loss
 * terms and mAP for the shared loop. train, evaluate and inference run
 * (frcnn_train.c, frcnn_eval.c); export --nms trt|onnx runs (frcnn_export.c);
 * with --data_type int8 cal.bin and the QDQ copy (frcnn_export_int8.c);
 * prune is the CLI's shared action (cmd_prune.c). */
#include <stdio.h>
#include "deft/faster_rcnn_spec.h"
#include "deft/task.h"
#include "tasks/faster_rcnn/frcnn_export.h"
#include "tasks/faster_rcnn/frcnn_run.h"
#include "tasks/faster_rcnn/frcnn_task.h"

static void help(FILE *f) {
    fprintf(f, "usage: deft faster_rcnn <action> [flags]\n\n"
               "actions:\n"
               "  train      -e SPEC [-r DIR] [--resume | --resume_from CKPT | --overwrite] [--dry_run] [--set k=v]\n"
               "             --dry_run: the resolved spec, the RPN anchor grid and its size, and a check that every\n"
               "             training box has an anchor at rpn_max_overlap (sizes of those that have none); exit 0/2\n"
               "  evaluate   -e SPEC [-m MODEL] [-r DIR] [--ap_mode sample|integrate|coco|voc|voc07] [--threshold C]\n"
               "             mAP on validation_data_source: TAO's definition (11-point with\n"
               "             use_voc07_11point_metric, averaged over gt_matching_iou_threshold_range), per-class AP,\n"
               "             precision, recall, and the RPN recall; without -m: DIR's weights/best.safetensors\n"
               "  inference  -m MODEL -i IMAGE_DIR|IMAGE [-e SPEC] [-o ANNOTATED_DIR] [-l LABEL_DIR] [--json FILE]\n"
               "             [--threshold C] [--dump_input DIR]   KITTI labels with the score as a 16th field,\n"
               "             overlays at bbox_visualize_threshold; proposal/NMS settings from the spec's\n"
               "             inference_config; --dump_input: each network input (DIR/<stem>.npy) and its\n"
               "             letterbox (DIR/<stem>.json), to feed an exported model exactly that input\n"
               "  export     -m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx] [--data_type fp32|fp16|int8]\n"
               "             [--gen_ds_config] [--opset 16|17] [--static_batch_size N]   one ONNX graph, input Input\n"
               "             (the preprocessed letterboxed image; metadata 'preprocess' and 'letterbox'), outputs\n"
               "             NMS [N,1,K,7] (image, class, score, x1,y1,x2,y2 in [0,1]) and NMS_1 (count); settings\n"
               "             from the spec's inference_config.\n"
               "             --nms trt (default): TAO's TensorRT plugins ProposalDynamic, CropAndResizeDynamic and\n"
               "             NMSDynamic_TRT 'NMS' (TensorRT only);\n"
               "             --nms onnx: the proposal layer, crop-and-resize (RoiAlign), per-class decode and NMS in\n"
               "             standard ONNX (onnxruntime; opset 16+);\n"
               "             --gen_ds_config (with trt): labels.txt (background last) and nvinfer_config.txt for\n"
               "             DeepStream's NvDsInferParseCustomNMSTLT.\n"
               "             --data_type int8: cal.bin (TensorRT's calibration cache) for every activation of the\n"
               "             network, calibrated through both stages (the proposals on the host, as inference):\n"
               "             --cal_image_dir DIR (default: the spec's training images), --cal_cache_file F (default:\n"
               "             cal.bin next to OUT.onnx), --cal_json_file F (TAO's calib.json), --batches N (10)\n"
               "             --batch_size N (16), --calibrator entropy|minmax|percentile --percentile P,\n"
               "             --trt_version V (8601); --qdq_file F: the model explicitly quantized\n"
               "             (QuantizeLinear/DequantizeLinear), the RPN and RCNN head layers float unless\n"
               "             --quantize_head; --qdq_fusion\n"
               "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-pg 8] [-nf 16] [-el LAYER ...]\n"
               "             TAO's pruning; the RPN and RCNN output layers stay whole; retrain with\n"
               "             training_config.retrain_pruned_model: OUT  (deft faster_rcnn prune --help)\n\n"
               "  -e SPEC: TAO's faster_rcnn protobuf text (.txt) or the same fields as YAML; --help-spec lists them.\n"
               "  Labels are KITTI text files read directly (no TFRecords): give label_directory_path (deft) beside\n"
               "  image_directory_path in each data source.\n");
}

static enum deft_status validate(const struct deft_task_args *a, double *map) { return frcnn_validate(a, map); }
static enum deft_status export_(const struct deft_task_args *a) { return frcnn_export(a); }

static const struct deft_task_flag eval_flags[] = {
    {NULL, "--ap_mode", true}, {NULL, "--threshold", true}, {NULL, NULL, false}};
static const struct deft_task_flag infer_flags[] = {
    {"-l", "--label_dir", true}, {NULL, "--json", true}, {NULL, "--threshold", true}, {NULL, "--dump_input", true},
    {NULL, NULL, false}};
static const struct deft_task_flag export_flags[] = {
    {NULL, "--nms", true},           {NULL, "--data_type", true},      {NULL, "--cal_image_dir", true},
    {NULL, "--cal_cache_file", true}, {NULL, "--cal_json_file", true}, {NULL, "--batches", true},
    {NULL, "--batch_size", true},    {NULL, "--calibrator", true},     {NULL, "--percentile", true},
    {NULL, "--qdq_file", true},      {NULL, "--quantize_head", false}, {NULL, "--qdq_fusion", false},
    {NULL, "--gen_ds_config", false}, {NULL, "--static_batch_size", true}, {NULL, "--opset", true},
    {NULL, "--trt_version", true},   {NULL, NULL, false}};
static const char *const loss_terms[] = {"loss_rpn_class", "loss_rpn_regr", "loss_cls_class", "loss_cls_regr"};

static const struct deft_task_action actions[] = {
    {"train", "-e SPEC [-r DIR] [--resume | --overwrite] [--dry_run]", "train a Faster R-CNN detector", NULL, true,
     true, frcnn_train, NULL},
    {"evaluate", "-e SPEC [-m MODEL] [-r DIR] [--ap_mode M]", "mAP, per-class AP/precision/recall, RPN recall",
     eval_flags, true, false, frcnn_evaluate, NULL},
    {"inference", "-m MODEL -i IMAGES [-o DIR] [-l DIR] [--json F]", "detect objects in images", infer_flags, false,
     false, frcnn_inference, NULL},
    {"prune", "-m MODEL -o OUT [-pth 0.1] ...", "remove channels by weight magnitude", NULL, false, false, NULL, NULL},
    {"export", "-m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx]", "ONNX: TAO's TensorRT plugins or standard ONNX",
     export_flags, false, false, export_, NULL},
};

const struct deft_task deft_task_faster_rcnn = {
    .name = "faster_rcnn",
    .summary = "Faster R-CNN detector (resnet 10/18/34/50/101, mobilenet_v2)",
    .actions = actions,
    .n_actions = (int)(sizeof actions / sizeof actions[0]),
    .spec_help = deft_frcnn_config_help,
    .print_help = help,
    .loss_terms = loss_terms,
    .n_loss_terms = 4,
    .metric = {"mAP", "mAP", true},
    .validate = validate,
};

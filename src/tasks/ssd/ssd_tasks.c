/* ssd_tasks.c - ssd as a task: TAO's actions and flags, the loss terms and
 * mAP for the shared loop; prune is the CLI's shared action (cmd_prune.c). */
#include <stdio.h>
#include "deft/ssd_spec.h"
#include "deft/task.h"
#include "tasks/ssd/ssd_task.h"

static void help(FILE *f) {
    fprintf(f, "usage: deft ssd <action> [flags]\n\n"
               "actions:\n"
               "  train      -e SPEC [-r DIR] [--resume | --resume_from CKPT | --overwrite] [--dry_run] [--set k=v]\n"
               "             TAO's SSD (softmax CE with 3:1 hard negatives + alpha * smooth-L1); weights/,\n"
               "             status.json, metrics.csv (loss_cls, loss_loc, val_loss, val_mAP) in the results folder;\n"
               "             --dry_run: the resolved spec, the six predictor layers with their priors and the\n"
               "             total, and a check that every training box has a prior at pos_iou_thresh; exit 0/2\n"
               "  evaluate   -e SPEC [-m MODEL] [-r DIR] [--ap_mode sample|integrate|coco|voc|voc07] [--threshold C]\n"
               "             mAP on the validation sources (TAO's definition by default, named beside each figure)\n"
               "  inference  -m MODEL -i IMAGE_DIR|IMAGE [-e SPEC] [-o ANNOTATED_DIR] [-l LABEL_DIR] [--json FILE]\n"
               "             [--threshold C] [--dump_input DIR]   KITTI labels with the score as a 16th field\n"
               "  export     -m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx|none] [--data_type fp32|fp16|int8]\n"
               "             [--gen_ds_config]   ONNX with TAO's NMSDynamic_TRT node or a portable NMS, cal.bin,\n"
               "             DeepStream config (deft ssd export --help for every flag)\n"
               "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-pg 8] [-nf 16] [-el LAYER ...]\n"
               "             TAO's pruning; the twelve head convs stay whole; retrain with\n"
               "             training_config.pruned_model_path: OUT  (deft ssd prune --help)\n"
               "  dssd_config: " DEFT_SSD_NOT_FINISHED "\n\n"
               "  -e SPEC: TAO's ssd protobuf text (.txt) or the same fields as YAML; --help-spec lists them.\n"
               "  Labels are KITTI text files read directly (no TFRecords): give label_directory_path and\n"
               "  image_directory_path in each data source.\n");
}

static enum deft_status validate(const struct deft_task_args *a, double *map) { return ssd_validate(a, map); }

static void export_help(FILE *f) {
    fprintf(f,
        "usage: deft ssd export -m MODEL -o OUT.onnx [-e SPEC] [flags]\n\n"
        "  Input 'Input' [batch,3,H,W]: the image letterboxed and preprocessed as deft's evaluation does\n"
        "  (metadata_props 'preprocess' and 'letterbox' say how). The twelve head outputs become TAO's\n"
        "  mbox_conf / mbox_loc [N, priors, K|4] (Transpose/Reshape/Concat) and mbox_conf_softmax.\n"
        "  --nms trt        (default) TAO's layout: loc_data, conf_data, the priors as the constant anchor_data\n"
        "                   and the NMSDynamic_TRT node 'NMS' (shareLocation 1, backgroundLabelId 0, codeType 1,\n"
        "                   keepTopK = nms_config.top_k, topK = 2 * top_k); outputs NMS [N,1,keepTopK,7] and\n"
        "                   NMS_1 (the count). TensorRT only.\n"
        "  --nms onnx       ONNX NonMaxSuppression (runs in onnxruntime): num_detections, detection_boxes,\n"
        "                   detection_scores, detection_classes = deft ssd inference's detections\n"
        "  --nms none       decoded boxes [N,P,4] and scores [N,P,C], no NMS\n"
        "  -e SPEC          nms_config (needed for trt and onnx), training images for calibration\n"
        "  --data_type fp32|fp16|int8   int8 writes cal.bin (TensorRT's calibration cache):\n"
        "  --cal_image_dir DIR  calibration images (default: the spec's training images)\n"
        "  --cal_cache_file F   where cal.bin goes (default: next to OUT.onnx)\n"
        "  --cal_json_file F    TAO's calib.json too\n"
        "  --batches N (10) --batch_size N (16) --calibrator entropy|minmax|percentile --percentile P\n"
        "  --qdq_file F     int8: the model explicitly quantized (QuantizeLinear/DequantizeLinear), heads float\n"
        "  --quantize_head  ... heads quantized too;  --qdq_fusion\n"
        "  --gen_ds_config  labels.txt (background first) and nvinfer_config.txt for DeepStream's\n"
        "                   NvDsInferParseCustomNMSTLT (needs --nms trt)\n"
        "  --static_batch_size N (-1: dynamic)  --opset 13..17  --trt_version V (8601)\n");
}

/* the flags and loss terms of ssd and retinanet (one engine, ssd_task.h) */
const struct deft_task_flag ssd_eval_flags[] = {
    {NULL, "--ap_mode", true}, {NULL, "--threshold", true}, {NULL, NULL, false}};
const struct deft_task_flag ssd_infer_flags[] = {
    {"-l", "--label_dir", true}, {NULL, "--json", true}, {NULL, "--threshold", true},
    {NULL, "--dump_input", true}, {NULL, NULL, false}};
const struct deft_task_flag ssd_export_flags[] = {
    {NULL, "--nms", true},           {NULL, "--data_type", true},      {NULL, "--cal_image_dir", true},
    {NULL, "--cal_cache_file", true}, {NULL, "--cal_json_file", true}, {NULL, "--batches", true},
    {NULL, "--batch_size", true},    {NULL, "--calibrator", true},     {NULL, "--percentile", true},
    {NULL, "--qdq_file", true},      {NULL, "--quantize_head", false}, {NULL, "--qdq_fusion", false},
    {NULL, "--gen_ds_config", false}, {NULL, "--static_batch_size", true}, {NULL, "--opset", true},
    {NULL, "--trt_version", true},   {NULL, NULL, false}};
const char *const ssd_loss_terms[2] = {"loss_cls", "loss_loc"};

static const struct deft_task_action actions[] = {
    {"train", "-e SPEC [-r DIR] [--resume | --overwrite] [--dry_run]", "train an SSD from the spec", NULL, false, true,
     ssd_train, NULL},
    {"evaluate", "-e SPEC [-m MODEL] [-r DIR] [--ap_mode M]", "mAP, per-class AP/precision/recall", ssd_eval_flags, true,
     false, ssd_evaluate, NULL},
    {"inference", "-m MODEL -i IMAGES [-o DIR] [-l DIR] [--json F]", "detect objects in images", ssd_infer_flags, false,
     false, ssd_inference, NULL},
    {"prune", "-m MODEL -o OUT [-pth 0.1] ...", "remove channels by weight magnitude", NULL, false, false, NULL, NULL},
    {"export", "-m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx|none] [--data_type D]",
     "ONNX (TAO's NMS plugin or portable NMS), cal.bin, DeepStream config", ssd_export_flags, false, false, ssd_export,
     export_help},
};

const struct deft_task deft_task_ssd = {
    .name = "ssd",
    .summary = "SSD detector (resnet, mobilenet_v2, darknet backbones; DSSD not finished)",
    .actions = actions,
    .n_actions = (int)(sizeof actions / sizeof actions[0]),
    .spec_help = deft_ssd_config_help,
    .print_help = help,
    .loss_terms = ssd_loss_terms,
    .n_loss_terms = 2,
    .metric = {"mAP", "mAP", true},
    .validate = validate,
};

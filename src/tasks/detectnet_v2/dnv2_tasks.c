/* dnv2_tasks.c - TAO's detectnet_v2 network as a task: its actions (TAO's:
 * dataset_convert, train, evaluate, inference, prune, export,
 * calibration_tensorfile), their flags and help. */
#include <stdio.h>
#include "deft/detectnet_v2_spec.h"
#include "deft/task.h"
#include "tasks/detectnet_v2/dnv2_export.h"
#include "tasks/detectnet_v2/dnv2_task.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: deft detectnet_v2 <action> [flags]\n\n"
            "TAO's DetectNet_v2 (GridboxModel): a stride-16 backbone with a coverage head (output_cov,\n"
            "sigmoid, one channel a class) and a box head (output_bbox, four a class), boxes from the\n"
            "grid by DBSCAN clustering. Specs are TAO's protobuf text (or the same fields in YAML).\n\n"
            "actions:\n"
            "  dataset_convert -d SPEC -o PREFIX   TAO's kitti_config partitioning, written as fold lists\n"
            "             PREFIX-fold-NNN-of-MMM.txt (image stems) and PREFIX.deft.json (image and label\n"
            "             folders, folds, objects per lower-cased class) - no TFRecords: deft reads the\n"
            "             KITTI images and labels directly. A training spec whose tfrecords_path glob\n"
            "             matches PREFIX.deft.json uses them (validation_fold: 0 = the val_split fold).\n"
            "  train      -e SPEC [-r DIR] [--resume | --resume_from CKPT | --overwrite] [--dry_run]\n"
            "             targets rasterized per batch (bbox_rasterizer_config), TAO's cost with its class and\n"
            "             objective weights (auto-weighting at each epoch's end), soft_start_annealing_schedule,\n"
            "             Adam, the regularizer, freeze_blocks / freeze_bn / freeze_pretrained_layers,\n"
            "             pretrained_model_file (load_graph: a pruned model), enable_qat; validation mAP every\n"
            "             validation_period_during_training epochs from first_validation_epoch on\n"
            "  evaluate   -e SPEC [-m MODEL] [-r DIR] [--ap_mode sample|integrate|voc|voc07|coco]\n"
            "             default: TAO's DetectNet_v2 metric (evaluation_config: per-class\n"
            "             minimum_detection_ground_truth_overlap, evaluation_box_config filters,\n"
            "             average_precision_mode); --ap_mode: that definition at IoU 0.5 instead\n"
            "  inference  -e INFERENCE_SPEC|SPEC -i IMAGES [-m MODEL] -o OUT [-l LABEL_DIR]\n"
            "             clustering from bbox_handler_config (or the experiment's postprocessing_config):\n"
            "             OUT/labels/*.txt (kitti_dump: KITTI with the score as a 16th field) and\n"
            "             OUT/images_annotated/*.png (unless disable_overlay); --dump_input DIR: each network\n"
            "             input (DIR/<stem>.npy) and its letterbox (.json); --dump_raw DIR: the raw outputs\n"
            "             DIR/<stem>_cov.npy [1,K,h,w] and DIR/<stem>_bbox.npy [1,4K,h,w]\n"
            "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-pg 8] [-nf 16] [-el LAYER ...]\n"
            "             TAO's pruning; output_cov and output_bbox stay whole; retrain with model_config\n"
            "             { pretrained_model_file: OUT load_graph: true }  (deft detectnet_v2 prune --help)\n"
            "  export     -m MODEL -o OUT.onnx [-e SPEC] [--data_type int8] [--gen_ds_config]\n"
            "             ONNX with TAO's names (input_1, output_cov/Sigmoid, output_bbox/BiasAdd), cal.bin,\n"
            "             DeepStream nvinfer config  (deft detectnet_v2 export --help)\n"
            "  calibration_tensorfile\n\n"
            "Not finished (issue 20): calibration_tensorfile (it exits 2 saying so);\n"
            "early_stopping_annealing_schedule; color_shift_stddev and rotation augmentation.\n\n"
            "common flags: -e SPEC, -r DIR, -m MODEL, -o FILE, --set key.path=value, --seed N, --dry_run,\n"
            "  --threads N, --help-spec (the experiment, inference and dataset_convert fields)\n");
}

static void export_help(FILE *f) {
    fprintf(f,
        "usage: deft detectnet_v2 export -m MODEL -o OUT.onnx [-e SPEC] [flags]\n\n"
        "  TAO's tensor names: input input_1 [batch,3,H,W] (RGB 0..1, letterboxed as deft's evaluation:\n"
        "  metadata_props 'preprocess' and 'letterbox'), outputs output_cov/Sigmoid [N,K,H/16,W/16] and\n"
        "  output_bbox/BiasAdd [N,4K,H/16,W/16]; the clustering stays outside the model.\n"
        "  -e SPEC          class check, training images for calibration, postprocessing_config for DeepStream\n"
        "  --data_type fp32|fp16|int8   int8 writes cal.bin (TensorRT's calibration cache):\n"
        "  --cal_image_dir DIR  calibration images (default: the spec's training images)\n"
        "  --cal_cache_file F   where cal.bin goes (default: next to OUT.onnx)\n"
        "  --cal_json_file F    TAO's calib.json too\n"
        "  --batches N (10) --batch_size N (16) --calibrator entropy|minmax|percentile --percentile P\n"
        "  --gen_ds_config  labels.txt and nvinfer_config.txt (needs -e SPEC): output-blob-names\n"
        "                   output_cov/Sigmoid;output_bbox/BiasAdd, cluster-mode 1 (DBSCAN) or 2 (NMS), one\n"
        "                   [class-attrs-N] a class from postprocessing_config\n"
        "  --static_batch_size N (-1: dynamic)  --opset 13..17  --trt_version V (8601)\n");
}

static const struct deft_task_flag convert_flags[] = {
    {"-d", "--dataset_export_spec", true}, {"-v", "--validation_fold", true}, {NULL, NULL, false}};
static const struct deft_task_flag export_flags[] = {
    {NULL, "--gen_ds_config", false}, {NULL, "--data_type", true},       {NULL, "--cal_image_dir", true},
    {NULL, "--cal_cache_file", true}, {NULL, "--cal_json_file", true},   {NULL, "--batches", true},
    {NULL, "--batch_size", true},     {NULL, "--calibrator", true},      {NULL, "--percentile", true},
    {NULL, "--static_batch_size", true}, {NULL, "--opset", true},        {NULL, "--trt_version", true},
    {NULL, NULL, false}};
static const struct deft_task_flag eval_flags[] = {{NULL, "--ap_mode", true}, {NULL, NULL, false}};
static const struct deft_task_flag infer_flags[] = {
    {"-l", "--label_dir", true}, {NULL, "--dump_input", true}, {NULL, "--dump_raw", true}, {NULL, NULL, false}};
static const struct deft_task_flag calib_flags[] = {
    {NULL, "--max_batches", true}, {NULL, "--use_validation_set", false}, {NULL, NULL, false}};

static enum deft_status calib(const struct deft_task_args *a) {
    (void)a;
    return dnv2_not_finished("calibration_tensorfile");
}

static const struct deft_task_action actions[] = {
    {"dataset_convert", "-d SPEC -o PREFIX", "KITTI folds as image lists (no TFRecords)", convert_flags, false, false,
     dnv2_dataset_convert},
    {"train", "-e SPEC [-r DIR] [--resume | --overwrite] [--dry_run]", "train a DetectNet_v2", NULL, true, true,
     dnv2_train},
    {"evaluate", "-e SPEC [-m MODEL] [-r DIR] [--ap_mode M] [--dry_run]", "TAO's DetectNet_v2 AP per class",
     eval_flags, true, false, dnv2_evaluate},
    {"inference", "-e INFERENCE_SPEC -i IMAGES [-m MODEL] -o OUT [--dry_run]", "detect objects: KITTI labels, overlays",
     infer_flags, true, false, dnv2_inference},
    {"prune", "-m MODEL -o OUT [-pth 0.1] ...", "remove channels by weight magnitude", NULL, false, false, NULL},
    {"export", "-m MODEL -o OUT.onnx [-e SPEC] [--data_type D] [--gen_ds_config]",
     "ONNX (TAO's names), INT8 cache, DeepStream config", export_flags, false, false, dnv2_export, export_help},
    {"calibration_tensorfile", "-e SPEC -o OUT [--max_batches N]", "INT8 calibration tensors (not finished)",
     calib_flags, false, false, calib},
};

static const char *const loss_terms[] = {"loss_cov", "loss_bbox"};

const struct deft_task deft_task_detectnet_v2 = {
    .name = "detectnet_v2",
    .summary = "DetectNet_v2 grid detector (resnet, mobilenet_v2 backbones)",
    .actions = actions,
    .n_actions = (int)(sizeof actions / sizeof actions[0]),
    .spec_help = deft_dnv2_config_help,
    .print_help = help,
    .loss_terms = loss_terms,
    .n_loss_terms = 2,
    .metric = {"mAP", "mAP", true},
    .validate = dnv2_validate,
};

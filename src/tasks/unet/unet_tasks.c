/* unet_tasks.c - TAO's unet network as a task: its actions, flags and help. */
#include <stdio.h>
#include "deft/task.h"
#include "deft/unet_spec.h"
#include "tasks/unet/unet_task.h"

static void unet_help(FILE *f) {
    fprintf(f,
            "usage: deft unet <action> [flags]\n\n"
            "actions:\n"
            "  train      -e SPEC [-r DIR] [--resume | --resume_from CKPT | --overwrite] [--dry_run] [--set k=v]\n"
            "             TAO's unet spec (model_config, training_config, dataset_config); images and masks\n"
            "             paired by file stem; validation mIoU picks best.safetensors\n"
            "  evaluate   -e SPEC [-m MODEL] [-r DIR]   on dataset_config.val_images_path / val_masks_path:\n"
            "             per-class IoU, precision, recall, F1, mIoU (classes absent from truth and\n"
            "             prediction skipped, as TAO), pixel accuracy; with -r: DIR/evaluate/metrics.json\n"
            "             and confusion.png (without -m: DIR's best model)\n"
            "  inference  -m MODEL -e SPEC -i IMAGE_DIR -o OUT_DIR   OUT_DIR/masks/<stem>.png (8-bit class\n"
            "             index per pixel, at the image's own size) and OUT_DIR/overlays/<stem>.png\n"
            "  export     -m MODEL -o OUT.onnx [--output softmax|logits|argmax] [--opset 13]   float ONNX;\n"
            "             the output: the activation (softmax over the class axis, sigmoid for a binary\n"
            "             head: TAO's export), the logits, or the class map (int64 ArgMax)\n"
            "             [--data_type int8 --cal_image_dir DIR [--batches 10] [--batch_size 4] [--calibrator\n"
            "             entropy|minmax|percentile] [--cal_cache_file F] [--cal_json_file F] [--qdq_file Q.onnx]]\n"
            "             INT8: ranges from the images (as training preprocessed them) into TensorRT's cal.bin\n"
            "             (default beside OUT), TAO's calib.json, an explicitly quantized ONNX\n"
            "             [--gen_ds_config]  DeepStream nvinfer_config.txt (network-type=2) and labels.txt\n"
            "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] ... [--target_ratio R] [--sweep|--sensitivity -e SPEC]\n"
            "             TAO's pruning (deft unet prune --help); retrain with model_config.pruned_model_path: OUT\n\n"
            "common flags:\n"
            "  -e, --experiment_spec_file SPEC  TAO's unet protobuf text (.txt) or the same fields in YAML\n"
            "  -r, --results_dir DIR            weights/, status.json, metrics.csv, TensorBoard events, plots/\n"
            "                                   (default runs/unet/trainN)\n"
            "  --overwrite                      train into a folder holding a run, deleting its results\n"
            "  --set key.path=value             override a spec field (repeatable)\n"
            "  --threads N, --backend cpu|ref|cuda|cuda-emu, --seed N, --help-spec\n\n"
            "Not finished (issue 21): TAO's ISBI membrane F1 goal (0.799 of 0.80; bench/unet_isbi.sh), a DeepStream run.\n"
            "Ctrl-C during training writes a checkpoint and stops; --resume continues exactly.\n");
}

static const struct deft_task_flag export_flags[] = {
    {NULL, "--output", true},        {NULL, "--opset", true},          {NULL, "--data_type", true},
    {NULL, "--cal_image_dir", true}, {NULL, "--cal_cache_file", true}, {NULL, "--cal_json_file", true},
    {NULL, "--qdq_file", true},      {NULL, "--batches", true},        {NULL, "--batch_size", true},
    {NULL, "--calibrator", true},    {NULL, "--percentile", true},     {NULL, "--gen_ds_config", false},
    {NULL, NULL, false}};

static const struct deft_task_action unet_actions[] = {
    {"train", "-e SPEC [-r DIR] [--resume | --overwrite] [--dry_run]", "train a UNet from the spec", NULL, true, true,
     unet_train},
    {"evaluate", "-e SPEC [-m MODEL] [-r DIR]", "mIoU, per-class IoU/precision/recall/F1, pixel accuracy", NULL, true,
     false, unet_evaluate},
    {"inference", "-m MODEL -e SPEC -i IMAGE_DIR -o OUT_DIR", "a class mask and an overlay per image", NULL, true,
     false, unet_inference},
    {"export", "-m MODEL -o OUT.onnx [--output softmax|logits|argmax] [--opset 13]", "ONNX for deployment", export_flags,
     false, false, unet_export},
    {"prune", "-m MODEL -o OUT [-pth 0.1] ... [--target_ratio R]", "remove channels by weight magnitude", NULL, false,
     false, NULL},
};

const struct deft_task deft_task_unet = {
    .name = "unet",
    .summary = "UNet semantic segmentation (resnet, vgg, efficientnet_b0, shufflenet encoders, vanilla UNet)",
    .actions = unet_actions,
    .n_actions = (int)(sizeof unet_actions / sizeof unet_actions[0]),
    .spec_help = deft_unet_config_help,
    .print_help = unet_help,
    .metric = {"mIoU", "mIoU", true},
    .validate = unet_validate,
};

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
            "  train      -e SPEC -r DIR [--resume | --resume_from CKPT] [--dry_run] [--set key=value]\n"
            "  evaluate   -e SPEC -m MODEL [-r DIR] [--ap_mode sample|integrate|coco|voc|voc07] [--threshold C]\n"
            "             mAP on the spec's validation_data_sources (definition printed beside each figure);\n"
            "             with -r: DIR/evaluate/results.json and a PR-curve plot\n"
            "  inference  -m MODEL -i IMAGE_DIR|IMAGE [-e SPEC] [-o ANNOTATED_DIR] [-l LABEL_DIR] [--json FILE]\n"
            "             [--threshold C]   annotated PNGs, KITTI labels with the score as a 16th field, JSON\n"
            "  kmeans     -l LABEL_DIR[,..] -i IMAGE_DIR[,..] [-x 416] [-y 416] [-n 9] [--max_steps 10000]\n"
            "             [--min_x 0] [--min_y 0] [--seed 42]   anchor shapes as spec lines\n"
            "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-pg 8] [-nf 16] [-el LAYER ...]\n"
            "             [-r DIR] [--target_ratio R | --target_flops R] [--sweep | --sensitivity [-e SPEC]]\n"
            "             TAO's pruning; the head output convs stay whole; retrain with\n"
            "             training_config.pruned_model_path: OUT  (deft %s prune --help)\n\n"
            "common flags:\n"
            "  -e, --experiment_spec_file SPEC  TAO's yolo_v4 protobuf text (.txt) or the same fields in YAML\n"
            "  -r, --results_dir DIR            weights/, status.json, metrics.csv, TensorBoard events, plots/\n"
            "  --set key.path=value             override a spec field (repeatable)\n"
            "  --threads N, --backend cpu|ref|cuda|cuda-emu, --seed N, --help-spec\n\n"
            "Labels are KITTI text files read directly (no TFRecords): give label_directory_path and\n"
            "image_directory_path in each data source (split_list_path: a list of image stems).\n"
            "Ctrl-C during training writes a checkpoint and stops; --resume continues exactly.\n",
            net, net);
}
static void help_v4(FILE *f) { help(f, "yolo_v4"); }
static void help_tiny(FILE *f) { help(f, "yolo_v4_tiny"); }

static const struct deft_task_flag eval_flags[] = {
    {NULL, "--ap_mode", true}, {NULL, "--threshold", true}, {NULL, NULL, false}};
static const struct deft_task_flag infer_flags[] = {
    {"-l", "--label_dir", true}, {NULL, "--json", true}, {NULL, "--threshold", true}, {NULL, NULL, false}};
static const struct deft_task_flag kmeans_flags[] = {
    {"-l", "--label_folders", true}, {NULL, "--image_folders", true}, {"-x", "--size_x", true},
    {"-y", "--size_y", true},        {"-n", "--num_clusters", true},   {NULL, "--max_steps", true},
    {NULL, "--min_x", true},         {NULL, "--min_y", true},          {NULL, NULL, false}};

#define NET_ACTIONS(fn, net)                                                                       \
    static enum deft_status fn##_train(const struct deft_task_args *a) { return yolo_train(a, net); }       \
    static enum deft_status fn##_evaluate(const struct deft_task_args *a) { return yolo_evaluate(a, net); } \
    static enum deft_status fn##_inference(const struct deft_task_args *a) { return yolo_inference(a, net); } \
    static enum deft_status fn##_validate(const struct deft_task_args *a, double *map) { return yolo_validate(a, net, map); }
NET_ACTIONS(v4, "yolo_v4")
NET_ACTIONS(tiny, "yolo_v4_tiny")

#define ACTIONS(fn)                                                                                          \
    {                                                                                                        \
        {"train", "-e SPEC -r DIR [--resume] [--dry_run]", "train a detector from the spec", NULL, true, true, \
         fn##_train},                                                                                        \
        {"evaluate", "-e SPEC -m MODEL [-r DIR] [--ap_mode M]", "mAP, per-class AP/precision/recall",        \
         eval_flags, true, false, fn##_evaluate},                                                            \
        {"inference", "-m MODEL -i IMAGES [-o DIR] [-l DIR] [--json F]", "detect objects in images",        \
         infer_flags, false, false, fn##_inference},                                                         \
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

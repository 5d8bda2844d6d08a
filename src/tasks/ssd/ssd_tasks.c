/* ssd_tasks.c - ssd as a task: TAO's actions and flags, the loss terms and
 * mAP for the shared loop. prune and export are not finished (issue 20). */
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
               "  prune, export, and dssd_config: " DEFT_SSD_NOT_FINISHED "\n\n"
               "  -e SPEC: TAO's ssd protobuf text (.txt) or the same fields as YAML; --help-spec lists them.\n"
               "  Labels are KITTI text files read directly (no TFRecords): give label_directory_path and\n"
               "  image_directory_path in each data source.\n");
}

static enum deft_status validate(const struct deft_task_args *a, double *map) { return ssd_validate(a, map); }
static enum deft_status prune(const struct deft_task_args *a) { return ssd_not_finished(a, "prune"); }
static enum deft_status export_(const struct deft_task_args *a) { return ssd_not_finished(a, "export"); }

static const struct deft_task_flag eval_flags[] = {
    {NULL, "--ap_mode", true}, {NULL, "--threshold", true}, {NULL, NULL, false}};
static const struct deft_task_flag infer_flags[] = {
    {"-l", "--label_dir", true}, {NULL, "--json", true}, {NULL, "--threshold", true},
    {NULL, "--dump_input", true}, {NULL, NULL, false}};
static const char *const loss_terms[] = {"loss_cls", "loss_loc"};

static const struct deft_task_action actions[] = {
    {"train", "-e SPEC [-r DIR] [--resume | --overwrite] [--dry_run]", "train an SSD from the spec", NULL, false, true,
     ssd_train, NULL},
    {"evaluate", "-e SPEC [-m MODEL] [-r DIR] [--ap_mode M]", "mAP, per-class AP/precision/recall", eval_flags, true,
     false, ssd_evaluate, NULL},
    {"inference", "-m MODEL -i IMAGES [-o DIR] [-l DIR] [--json F]", "detect objects in images", infer_flags, false,
     false, ssd_inference, NULL},
    {"prune", "-m MODEL -o OUT", DEFT_SSD_NOT_FINISHED, NULL, false, false, prune, NULL},
    {"export", "-m MODEL -o OUT.onnx", DEFT_SSD_NOT_FINISHED, NULL, false, false, export_, NULL},
};

const struct deft_task deft_task_ssd = {
    .name = "ssd",
    .summary = "SSD detector (resnet, mobilenet_v2, darknet backbones; export and DSSD not finished)",
    .actions = actions,
    .n_actions = (int)(sizeof actions / sizeof actions[0]),
    .spec_help = deft_ssd_config_help,
    .print_help = help,
    .loss_terms = loss_terms,
    .n_loss_terms = 2,
    .metric = {"mAP", "mAP", true},
    .validate = validate,
};

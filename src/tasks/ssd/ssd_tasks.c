/* ssd_tasks.c - ssd as a task: TAO's actions and flags. The spec, its
 * priors and the dry run are done (ssd_setup.c); the engine actions say
 * they are not finished (issue 20). */
#include <stdio.h>
#include "deft/ssd_spec.h"
#include "deft/task.h"
#include "tasks/ssd/ssd_task.h"

static void help(FILE *f) {
    fprintf(f, "usage: deft ssd <action> [flags]\n\n"
               "actions:\n"
               "  train      -e SPEC [-r DIR] [--dry_run] [--set k=v]   --dry_run: the resolved spec, the six\n"
               "             predictor layers with their priors and the total, and a check that every training\n"
               "             box has a prior at pos_iou_thresh (sizes of those that have none); exit 0/2\n"
               "  evaluate, inference, prune, export: " DEFT_SSD_NOT_FINISHED "\n\n"
               "  -e SPEC: TAO's ssd protobuf text (.txt) or the same fields as YAML; --help-spec lists them.\n"
               "  Labels are KITTI text files read directly (no TFRecords): give label_directory_path and\n"
               "  image_directory_path in each data source.\n");
}

static enum deft_status evaluate(const struct deft_task_args *a) { return ssd_not_finished(a, "evaluate"); }
static enum deft_status inference(const struct deft_task_args *a) { return ssd_not_finished(a, "inference"); }
static enum deft_status prune(const struct deft_task_args *a) { return ssd_not_finished(a, "prune"); }
static enum deft_status export_(const struct deft_task_args *a) { return ssd_not_finished(a, "export"); }

static const struct deft_task_action actions[] = {
    {"train", "-e SPEC [-r DIR] [--dry_run]", "check the spec and priors (training: " DEFT_SSD_NOT_FINISHED ")", NULL,
     false, true, ssd_train, NULL},
    {"evaluate", "-e SPEC -m MODEL", DEFT_SSD_NOT_FINISHED, NULL, false, false, evaluate, NULL},
    {"inference", "-m MODEL -i IMAGES", DEFT_SSD_NOT_FINISHED, NULL, false, false, inference, NULL},
    {"prune", "-m MODEL -o OUT", DEFT_SSD_NOT_FINISHED, NULL, false, false, prune, NULL},
    {"export", "-m MODEL -o OUT.onnx", DEFT_SSD_NOT_FINISHED, NULL, false, false, export_, NULL},
};

const struct deft_task deft_task_ssd = {
    .name = "ssd",
    .summary = "SSD / DSSD detector (spec, priors and dry run; training not finished, issue 20)",
    .actions = actions,
    .n_actions = (int)(sizeof actions / sizeof actions[0]),
    .spec_help = deft_ssd_config_help,
    .print_help = help,
    .metric = {"mAP", "mAP", true},
};

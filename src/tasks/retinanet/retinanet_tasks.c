/* retinanet_tasks.c - TAO's retinanet as a task. Its spec is SSD's with
 * retinanet_config, its outputs have SSD's layout, so every action is the ssd
 * task's (src/tasks/ssd) run with retina = true: the FPN model, sub-octave
 * anchors, the focal loss and sigmoid scores are what differ. Prune is the
 * CLI's shared action (cmd_prune.c). */
#include <stdio.h>
#include "deft/ssd_spec.h"
#include "deft/task.h"
#include "tasks/ssd/ssd_task.h"

static void help(FILE *f) {
    fprintf(f, "usage: deft retinanet <action> [flags]\n\n"
               "actions:\n"
               "  train      -e SPEC [-r DIR] [--resume | --resume_from CKPT | --overwrite] [--dry_run] [--set k=v]\n"
               "             TAO's RetinaNet (backbone + FPN P3-P7, class/box subnets shared by the levels, sigmoid\n"
               "             focal loss + loss_loc_weight * smooth-L1); weights/, status.json, metrics.csv\n"
               "             (loss_cls, loss_loc, val_loss, val_mAP); --dry_run: the resolved spec, the five levels\n"
               "             with their anchors, and a check that every training box has an anchor; exit 0/2\n"
               "  evaluate   -e SPEC [-m MODEL] [-r DIR] [--ap_mode sample|integrate|coco|voc|voc07] [--threshold C]\n"
               "  inference  -m MODEL -i IMAGE_DIR|IMAGE [-e SPEC] [-o ANNOTATED_DIR] [-l LABEL_DIR] [--json FILE]\n"
               "             [--threshold C] [--dump_input DIR]   KITTI labels with the score as a 16th field\n"
               "  export     -m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx|none] [--data_type fp32|fp16|int8]\n"
               "             [--gen_ds_config]   as deft ssd export (deft ssd export --help); trt: TAO's\n"
               "             retinanet plugin node (conf_data = the mbox_conf logits, confSigmoid 1);\n"
               "             onnx/none: mbox_conf_sigmoid\n"
               "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-el LAYER ...]\n"
               "             [--target_ratio R]   a subnet conv shared by the five levels is one layer (each\n"
               "             level loses the same filters; P3-P7 equalized as its inputs); regressors whole\n\n"
               "  -e SPEC: TAO's retinanet protobuf text (.txt) or the same fields as YAML; --help-spec lists them.\n"
               "  Labels are KITTI text files read directly (no TFRecords). class_weighting_config: not read yet.\n");
}

static enum deft_status train(const struct deft_task_args *a) { return ssd_train_net(a, true); }
static enum deft_status evaluate(const struct deft_task_args *a) { return ssd_validate_net(a, true, NULL); }
static enum deft_status validate(const struct deft_task_args *a, double *map) { return ssd_validate_net(a, true, map); }
static enum deft_status inference(const struct deft_task_args *a) { return ssd_inference_net(a, true); }
static enum deft_status export_(const struct deft_task_args *a) { return ssd_export_net(a, true); }


static const struct deft_task_action actions[] = {
    {"train", "-e SPEC [-r DIR] [--resume | --overwrite] [--dry_run]", "train a RetinaNet from the spec", NULL, false,
     true, train, NULL},
    {"evaluate", "-e SPEC [-m MODEL] [-r DIR] [--ap_mode M]", "mAP, per-class AP/precision/recall", ssd_eval_flags, true,
     false, evaluate, NULL},
    {"inference", "-m MODEL -i IMAGES [-o DIR] [-l DIR] [--json F]", "detect objects in images", ssd_infer_flags, false,
     false, inference, NULL},
    {"prune", "-m MODEL -o OUT [-pth 0.1] ...", "remove channels by weight magnitude", NULL, false, false, NULL, NULL},
    {"export", "-m MODEL -o OUT.onnx [-e SPEC] [--nms trt|onnx|none] [--data_type D]",
     "ONNX (TAO's NMS plugin or portable NMS), cal.bin, DeepStream config", ssd_export_flags, false, false, export_, NULL},
};

const struct deft_task deft_task_retinanet = {
    .name = "retinanet",
    .summary = "RetinaNet detector (TAO's FPN and focal loss; resnet, mobilenet_v2 backbones)",
    .actions = actions,
    .n_actions = (int)(sizeof actions / sizeof actions[0]),
    .spec_help = deft_retinanet_config_help,
    .print_help = help,
    .loss_terms = ssd_loss_terms,
    .n_loss_terms = 2,
    .metric = {"mAP", "mAP", true},
    .validate = validate,
};

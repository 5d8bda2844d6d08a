/* cls_task.c - classification as a task: its actions, flags and help for the
 * CLI's command table, its metric for best-model selection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/classification.h"
#include "deft/spec.h"
#include "deft/task.h"
#include "tasks/classification/cls_common.h"

static void cls_help(FILE *f) {
    fprintf(f,
            "usage: deft classification <action> [flags]\n\n"
            "actions:\n"
            "  train      -e SPEC [-r DIR] [--resume | --resume_from CKPT | --overwrite] [--dry_run]\n"
            "  train      --data DIR [--val DIR] [--arch resnet18] [--pretrained FILE|NAME] [--epochs 10]\n"
            "             [--batch 16] [--size 224] [--lr 0.01] [--grayscale]   no spec: fine-tuning\n"
            "             defaults, printed and saved as DIR/spec.yaml (DIR: one folder of images per class);\n"
            "             NAME: from `deft model list`, downloaded first with `deft model download NAME`;\n"
            "             --grayscale: one grey input channel (input_image_size \"1,S,S\")\n"
            "  evaluate   -e SPEC [-m MODEL] [-r DIR]   (no -m: eval_config.model_path, else DIR's best model)\n"
            "  inference  -m MODEL -i IMAGE|DIR|LIST.txt [-o OUT.csv] [--top_k K] [-r DIR]\n"
            "             evaluate and inference take --arch A [--class_names FILE|a,b,c] to run foreign\n"
            "             weights directly (-m x.pth, .h5, .safetensors; as `deft model import` reads them),\n"
            "             and --class_names alone to name an ONNX model's outputs\n"
            "  export     -m MODEL -o OUT.onnx [--data_type int8 --cal_image_dir DIR] [--qdq_file F]\n"
            "             [--gen_ds_config]  (deft classification export --help)\n"
            "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-pg 8] [-nf 16] [-el LAYER ...]\n"
            "             [-r DIR] [--target_ratio R | --target_flops R] [--sweep | --sensitivity [-e SPEC]]  (prune --help)\n"
            "  (-m of evaluate/inference may be an ONNX file deft exported)\n\n"
            "common flags:\n"
            "  -e, --experiment_spec_file SPEC  TAO protobuf-text (.txt), TAO PyTorch YAML or deft YAML\n"
            "  -r, --results_dir DIR            where weights, logs and plots go (default: the spec's\n"
            "                                   results_dir, else runs/classification/trainN, a new N)\n"
            "  --overwrite                      train into a folder holding a run, deleting its results\n"
            "  --set key.path=value             override a spec field (repeatable)\n"
            "  --threads N, --backend cpu|ref|cuda|cuda-emu, --fatal_corrupt (stop on a corrupt image)\n"
            "  --gpu_index I                    which GPU (--backend cuda; builds with make CUDA=1)\n"
            "  --use_amp [bf16|fp16]            mixed precision on the GPU: 16-bit products, fp32 weights;\n"
            "                                   fp16 adds dynamic loss scaling (default bf16)\n"
            "  --log_file F                     also write the run's log there (it is always in DIR/deft.log)\n"
            "  --gpus N, --num_processes N     train on N processes (mpirun -np N; MPI build); -k KEY accepted for TAO\n"
            "  --seed N                         the same as --set train_config.random_seed=N\n"
            "  --help-spec                      every spec field with type, default and meaning\n\n"
            "Ctrl-C during training writes a checkpoint and stops; --resume continues exactly.\n");
}

/* The task's flags onto classification's own argument struct. */
static enum deft_status to_cls_args(const struct deft_task_args *t, struct deft_cls_args *a, const char **sets,
                                    char *seed_set, size_t seed_len) {
    *a = (struct deft_cls_args){.spec = t->spec, .results_dir = t->results_dir, .model = t->model,
                                .dry_run = t->dry_run, .resume = t->resume, .resume_from = t->resume_from,
                                .overwrite = t->overwrite, .log_file = t->log_file, .argc = t->argc, .argv = t->argv,
                                .threads = t->threads, .backend = t->backend, .gpu_index = t->gpu_index,
                                .amp = t->amp, .stop = t->stop, .out = t->out, .input = t->input,
                                .output_file = t->output_file, .fatal_corrupt = t->fatal_corrupt};
    a->arch = deft_task_arg(t, "--arch");
    a->class_names = deft_task_arg(t, "--class_names");
    int n = 0;
    if (t->seed_set) { /* first, so an explicit --set of the same key wins */
        snprintf(seed_set, seed_len, "train_config.random_seed=%lld", t->seed);
        sets[n++] = seed_set;
    }
    for (int i = 0; i < t->n_overrides && n < DEFT_TASK_MAX_SETS + 1; i++) sets[n++] = t->overrides[i];
    a->overrides = sets;
    a->n_overrides = n;
    return deft_task_arg_int(t, "--top_k", 1, 1000, a->top_k, &a->top_k);
}

#define CLS_ACTION(fn)                                                                     \
    static enum deft_status fn##_action(const struct deft_task_args *t) {                  \
        struct deft_cls_args a;                                                            \
        const char *sets[DEFT_TASK_MAX_SETS + 1];                                          \
        char seed[64];                                                                     \
        enum deft_status s = to_cls_args(t, &a, sets, seed, sizeof seed);                  \
        return s ? s : fn(&a);                                                             \
    }

/* train: from -e SPEC, or from --data and friends without one */
static enum deft_status train_action(const struct deft_task_args *t) {
    struct deft_cls_args a;
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64], *yaml = NULL;
    enum deft_status s = to_cls_args(t, &a, sets, seed, sizeof seed);
    if (s) return s;
    static const char *const quick[] = {"--data", "--val", "--arch", "--pretrained", "--epochs", "--batch", "--size",
                                        "--lr", "--grayscale"};
    for (size_t i = 0; t->spec && i < sizeof quick / sizeof quick[0]; i++)
        if (deft_task_arg(t, quick[i]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s builds a spec: give it without -e (or set the field in "
                                  "the spec)", quick[i]);
    if (!t->spec) {
        if ((s = cls_quick_spec(t, &yaml))) return s;
        a.spec_text = yaml;
        fprintf(a.out ? a.out : stdout, "%s# (this spec is saved as spec.yaml in the results folder)\n", yaml);
    }
    s = deft_cls_train(&a);
    free(yaml);
    return s;
}
CLS_ACTION(deft_cls_evaluate)
CLS_ACTION(deft_cls_inference)

static enum deft_status cls_validate(const struct deft_task_args *t, double *top1) {
    struct deft_cls_args a;
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64];
    enum deft_status s = to_cls_args(t, &a, sets, seed, sizeof seed);
    return s ? s : cls_evaluate(&a, top1);
}

static const struct deft_task_flag cls_flags[] = {
    {NULL, "--top_k", true}, {NULL, "--arch", true}, {NULL, "--class_names", true},
    {NULL, NULL, false},
};

static const struct deft_task_flag train_flags[] = {
    {NULL, "--data", true}, {NULL, "--val", true},   {NULL, "--arch", true}, {NULL, "--pretrained", true},
    {NULL, "--epochs", true}, {NULL, "--batch", true}, {NULL, "--size", true}, {NULL, "--lr", true},
    {NULL, "--grayscale", false}, {NULL, NULL, false},
};

static const struct deft_task_action cls_actions[] = {
    {"train", "-e SPEC | --data DIR [--val DIR] [--arch A] ...  [-r DIR] [--resume | --overwrite] [--dry_run]",
     "fine-tune or train a classifier", train_flags, false, true, train_action},
    {"evaluate", "-e SPEC [-m MODEL [--arch A] [--class_names F]] [-r DIR]", "top-1/top-k, per-class figures, confusion matrix", cls_flags, true,
     false, deft_cls_evaluate_action},
    {"inference", "-m MODEL [--arch A] [--class_names F] -i IMAGE|DIR|LIST.txt [-o OUT.csv] [--top_k K] [-r DIR]",
     "classify images", cls_flags,
     false, false, deft_cls_inference_action},
    {"export", "-m MODEL -o OUT.onnx [--data_type int8 ...]", "ONNX, INT8 calibration, DeepStream files", NULL,
     false, false, NULL},
    {"prune", "-m MODEL -o OUT [-pth 0.1] ...", "remove channels by weight magnitude", NULL, false, false, NULL},
};

const struct deft_task deft_task_classification = {
    .name = "classification",
    .summary = "image classifiers (resnet, vgg, mobilenet, efficientnet, ...)",
    .actions = cls_actions,
    .n_actions = (int)(sizeof cls_actions / sizeof cls_actions[0]),
    .spec_help = deft_cls_config_help,
    .print_help = cls_help,
    .metric = {"top1", "top-1", true},
    .validate = cls_validate,
};

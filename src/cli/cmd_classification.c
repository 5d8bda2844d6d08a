/* cmd_classification.c - `deft classification train|evaluate|inference`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/classification.h"
#include "deft/spec.h"
#include "deft/runtime.h"
#include "cli/args.h"
#include "cli/cli.h"

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig) {
    (void)sig;
    if (stop_requested) signal(SIGINT, SIG_DFL); /* a second Ctrl-C kills at once */
    stop_requested = 1;
}

static int usage(FILE *f) {
    fprintf(f,
            "usage: deft classification <action> [flags]\n\n"
            "actions:\n"
            "  train      -e SPEC -r DIR [--resume | --resume_from CKPT] [--dry_run]\n"
            "  evaluate   -e SPEC [-m MODEL] [-r DIR]\n"
            "  inference  -m MODEL -i IMAGE|DIR|LIST.txt [-o OUT.csv] [--top_k K] [-r DIR]\n"
            "  export     -m MODEL -o OUT.onnx [--data_type int8 --cal_image_dir DIR] [--qdq_file F]\n"
            "             [--gen_ds_config]  (deft classification export --help)\n"
            "  prune      -m MODEL -o OUT [-pth 0.1] [-n max|L2] [-eq union|...] [-pg 8] [-nf 16] [-el LAYER ...]\n"
            "             [-r DIR] [--target_ratio R | --target_flops R] [--sweep | --sensitivity [-e SPEC]]  (prune --help)\n"
            "  (-m of evaluate/inference may be an ONNX file deft exported)\n\n"
            "common flags:\n"
            "  -e, --experiment_spec_file SPEC  TAO protobuf-text (.txt), TAO PyTorch YAML or deft YAML\n"
            "  -r, --results_dir DIR            where weights, logs and plots go\n"
            "  --set key.path=value             override a spec field (repeatable)\n"
            "  --threads N, --backend cpu|ref|cuda|cuda-emu, --fatal_corrupt (stop on a corrupt image)\n"
            "  --gpu_index I                    which GPU (--backend cuda; builds with make CUDA=1)\n"
            "  --use_amp [bf16|fp16]            mixed precision on the GPU: 16-bit products, fp32 weights;\n"
            "                                   fp16 adds dynamic loss scaling (default bf16)\n"
            "  --gpus N                         1 (one GPU per process); -k KEY, --log_file F accepted for TAO\n"
            "  --help-spec                      every spec field with type, default and meaning\n\n"
            "Ctrl-C during training writes a checkpoint and stops; --resume continues exactly.\n");
    return f == stdout ? 0 : 2;
}

int cmd_classification(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(argc < 2 ? stderr : stdout);
    if (!strcmp(argv[1], "--help-spec")) {
        deft_cls_config_help(stdout);
        return 0;
    }
    const char *action = argv[1];
    if (!strcmp(action, "export")) return cmd_cls_export(argc - 1, argv + 1);
    if (!strcmp(action, "prune")) return cmd_classification_prune(argc, argv);
    if (strcmp(action, "train") && strcmp(action, "evaluate") && strcmp(action, "inference")) {
        fprintf(stderr, "deft classification: unknown action '%s' (train, evaluate, inference, export, prune)\n", action);
        return 2;
    }
    struct deft_cls_args a = {.out = stdout, .backend = "cpu", .stop = &stop_requested};
    const char *sets[64];
    const char *threads = NULL, *topk = NULL, *val;
    bool err = false;
    for (int i = 2; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-e", "--experiment_spec_file", &a.spec, &err) ||
            arg_str(argc, argv, &i, "-r", "--results_dir", &a.results_dir, &err) ||
            arg_str(argc, argv, &i, "-m", "--model", &a.model, &err) ||
            arg_str(argc, argv, &i, "-i", "--input", &a.input, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &a.output_file, &err) ||
            arg_str(argc, argv, &i, NULL, "--resume_from", &a.resume_from, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err) ||
            arg_str(argc, argv, &i, NULL, "--top_k", &topk, &err) ||
            arg_str(argc, argv, &i, NULL, "--backend", &a.backend, &err)) {
            if (err) return 2;
            continue;
        }
        if (arg_str(argc, argv, &i, NULL, "--set", &val, &err)) {
            if (err) return 2;
            if (a.n_overrides == 64) {
                fprintf(stderr, "deft: at most 64 --set overrides\n");
                return 2;
            }
            sets[a.n_overrides++] = val;
            continue;
        }
        if (arg_str(argc, argv, &i, "-k", "--key", &val, &err)) {
            if (err) return 2;
            fprintf(stderr, "deft: note: -k/--key ignored (deft models are not encrypted)\n");
            continue;
        }
        if (arg_str(argc, argv, &i, NULL, "--gpus", &val, &err)) {
            if (err) return 2;
            if (strcmp(val, "1")) {
                fprintf(stderr, "deft: --gpus %s: deft drives one GPU per process; pick it with --gpu_index\n", val);
                return 2;
            }
            continue;
        }
        if (arg_str(argc, argv, &i, NULL, "--gpu_index", &val, &err)) {
            long long gi;
            if (err || !arg_parse_int("--gpu_index", val, 0, 1024, &gi)) return 2;
            a.gpu_index = (int)gi;
            continue;
        }
        if (arg_str(argc, argv, &i, NULL, "--log_file", &val, &err)) {
            if (err) return 2;
            continue;
        }
        if (arg_amp(argc, argv, &i, &a.amp, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--dry_run")) a.dry_run = true;
        else if (!strcmp(argv[i], "--resume")) a.resume = true;
        else if (!strcmp(argv[i], "--fatal_corrupt")) a.fatal_corrupt = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout);
        else {
            fprintf(stderr, "deft classification %s: unknown flag '%s' (see --help)\n", action, argv[i]);
            return 2;
        }
    }
    if (a.amp && strncmp(a.backend, "cuda", 4))
        fprintf(stderr, "deft: note: --use_amp applies to --backend cuda; the %s backend computes in fp32\n",
                a.backend);
    a.overrides = sets;
    long long v;
    if (threads) {
        if (!arg_parse_int("--threads", threads, 1, 1024, &v)) return 2;
        a.threads = (int)v;
    }
    if (topk) {
        if (!arg_parse_int("--top_k", topk, 1, 1000, &v)) return 2;
        a.top_k = (int)v;
    }
    enum deft_status s;
    if (!strcmp(action, "inference")) {
        s = deft_cls_inference(&a);
    } else {
        if (!a.spec) {
            fprintf(stderr, "deft classification %s: -e SPEC is required\n", action);
            return 2;
        }
        if (!strcmp(action, "train")) {
            signal(SIGINT, on_sigint);
            signal(SIGTERM, on_sigint);
            s = deft_cls_train(&a);
        } else {
            s = deft_cls_evaluate(&a);
        }
    }
    if (s == DEFT_ERR_CANCELLED) return 130;
    return s ? cli_fail(s, NULL) : 0;
}

/* deft/classification.h - the classification workflow: train, evaluate and
 * inference actions driven by a spec file (TAO TF1 protobuf text, TAO
 * PyTorch YAML or deft's native YAML; see deft/spec.h).
 *
 *     deft classification train    -e spec.yaml -r runs/exp1 [--resume]
 *     deft classification evaluate -e spec.yaml [-m MODEL] -r runs/exp1
 *     deft classification inference -m MODEL -i image|dir|list.txt [-o out.csv]
 *
 * Results directory (design.md §3): status.json, metrics.csv,
 * events.out.tfevents.*, weights/{classification_<arch>_epoch_NNN,latest,best}.safetensors,
 * plots/{loss,accuracy}.{png,svg}, evaluate/results.json, inference/results.csv.
 * A saved model records its class names ("class_names") and preprocessing
 * ("preprocess") in its metadata, so evaluate and inference need no spec to
 * preprocess images the way training did.
 */
#ifndef DEFT_CLASSIFICATION_H
#define DEFT_CLASSIFICATION_H

#include <signal.h>
#include <stdio.h>
#include "deft/core.h"
#include "deft/prune.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_cls_args {
    const char *spec;                  /* -e */
    const char *results_dir;           /* -r */
    const char *model;                 /* -m (evaluate/inference) */
    const char *arch;                  /* --arch: -m is foreign weights (.pth, .h5, ...) of this architecture */
    const char *class_names;           /* --class_names FILE or a,b,c: the model's class names */
    const char *const *overrides;      /* --set key=value */
    int n_overrides;
    bool dry_run;                      /* parse, print, list paths; touch nothing */
    bool resume;                       /* continue from <results_dir>/weights/latest.safetensors */
    const char *resume_from;           /* or from this checkpoint */
    bool overwrite;                    /* train into a folder holding a run, clearing it first */
    const char *log_file;              /* --log_file: a copy of deft.log */
    const char *spec_text;             /* train: the spec as deft YAML text instead of the file -e */
    int argc;                          /* the command line after "deft" (command.txt) */
    char *const *argv;
    int threads;                       /* 0: spec / all cores */
    const char *backend;               /* "cpu" (default), "ref", "cuda", "cuda-emu" */
    int gpu_index;                     /* --gpu_index */
    int amp;                           /* --use_amp: enum deft_amp */
    volatile sig_atomic_t *stop;       /* set asynchronously (SIGINT): checkpoint and stop */
    FILE *out;                         /* progress and tables (stdout) */
    /* inference */
    const char *input;                 /* image, directory or .txt list of paths */
    const char *output_file;           /* CSV (default <results_dir>/inference/results.csv) */
    int top_k;
    bool fatal_corrupt;                /* corrupt image: stop instead of skip */
};

/* `deft classification export`: the model as ONNX for deployment, with
 * INT8 post-training calibration (cal.bin for TensorRT's implicit
 * quantization, a QDQ ONNX for explicit quantization) and DeepStream files. */
struct deft_cls_export_args {
    const char *model;          /* -m: deft model file (or an ONNX file) */
    const char *output_file;    /* -o OUT.onnx: the float graph */
    const char *spec;           /* -e: calibration images from its train_dataset_path */
    const char *const *overrides;
    int n_overrides;
    const char *data_type;      /* "fp32" (default), "fp16", "int8" */
    const char *cal_image_dir;  /* calibration images: flat or class folders */
    const char *cal_cache_file; /* default <dir of -o>/cal.bin */
    const char *cal_json_file;  /* optional {"tensor_scales": {name: amax}} (TAO's calib.json) */
    const char *qdq_file;       /* optional explicitly quantized ONNX */
    const char *calibrator;     /* entropy (default), minmax, percentile */
    double percentile;          /* 0 -> 99.99 */
    int batches, batch_size;    /* 0 -> 10 x 16 (TAO's defaults) */
    int opset;                  /* 0 -> 13 */
    int trt_version;            /* cal.bin header, 0 -> 8601 (TensorRT 8.6.1) */
    bool dynamic_batch, logits, relu6_as_relu, gen_ds_config;
    bool qdq_fusion;            /* Q/DQ also on Add and pooling inputs (TensorRT fusion) */
    int threads;
    uint64_t seed;
    FILE *out;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_export(const struct deft_cls_export_args *a);

/* `deft classification prune` (deft/prune.h has the rules): load -m, prune
 * at opts.threshold (or at the threshold found for target_ratio /
 * target_flops), print TAO's log line and a per-layer table, write the
 * pruned model to output and <results_dir>/prune/report.json. With sweep, a
 * table (and prune/sweep.{csv,json,svg,png}) of parameter ratio, FLOPs ratio
 * and, with a spec, validation top-1 without retraining, per threshold.
 * With sensitivity, the same per layer: each prunable group alone kept at
 * 3/4, 1/2 and 1/4 of its filters (prune/sensitivity.csv). */
struct deft_cls_prune_args {
    const char *model, *output, *results_dir;
    const char *spec;                  /* -e: the sweep's validation set */
    const char *const *overrides;
    int n_overrides;
    struct deft_prune_opts opts;
    double target_ratio, target_flops; /* 0: off */
    bool sweep, sensitivity;
    int threads;
    const char *backend;
    FILE *out;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_prune(const struct deft_cls_prune_args *a);

/* DEFT_ERR_CANCELLED when stopped by *stop (a checkpoint was written first). */
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_train(const struct deft_cls_args *a);
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_evaluate(const struct deft_cls_args *a);
DEFT_API DEFT_NODISCARD enum deft_status deft_cls_inference(const struct deft_cls_args *a);

#ifdef __cplusplus
}
#endif
#endif

/* cmd_export.c - `deft classification export` flags (TAO's names) onto
 * deft_cls_export. */
#include <stdio.h>
#include <string.h>
#include "deft/classification.h"
#include "cli/args.h"
#include "cli/cli.h"

static int export_usage(FILE *f) {
    fprintf(f,
        "usage: deft classification export -m MODEL -o OUT.onnx [flags]\n\n"
        "  The model as ONNX (opset 13, IR 7: TensorRT 8.x/10.x, onnxruntime, OpenCV DNN):\n"
        "  batch-norm folded into convolutions, dropout removed, input 'input_1', output\n"
        "  'predictions' (softmax probabilities, as TAO's classifiers; DeepStream's classifier\n"
        "  threshold applies to them). Class names and preprocessing go into the ONNX\n"
        "  metadata, so `deft classification evaluate|inference -m OUT.onnx` works too.\n\n"
        "  --data_type fp32|fp16|int8  int8 calibrates (post-training quantization) and writes\n"
        "                              TensorRT's calibration cache; fp16 needs nothing here\n"
        "  --cal_image_dir DIR         calibration images (flat, or class folders)\n"
        "  -e SPEC                     or: the spec's training set (train_dataset_path)\n"
        "  --batches N --batch_size N  calibration images = N x N, drawn at random (10 x 16)\n"
        "  --calibrator entropy|minmax|percentile  (entropy: TensorRT's KL method) [--percentile P]\n"
        "  --cal_cache_file cal.bin    TensorRT cache (default: beside OUT.onnx)\n"
        "  --cal_json_file F           the ranges as TAO's calib.json {\"tensor_scales\": {...}}\n"
        "  --qdq_file OUT_qdq.onnx     also an explicitly quantized ONNX (QuantizeLinear/\n"
        "                              DequantizeLinear, int8 per-channel weights) for onnxruntime\n"
        "                              and TensorRT: Q/DQ on the inputs of Conv and Gemm\n"
        "  --qdq_fusion                also on Add and pooling inputs, TensorRT's fusion placement\n"
        "  --trt_version V             cal.bin header (NV_TENSORRT_VERSION, default 8601)\n"
        "  --gen_ds_config             labels.txt and nvinfer_config.txt beside OUT.onnx\n"
        "  --opset N                   11..17 (default 13)\n"
        "  --dynamic_batch             symbolic batch dimension (default: batch 1)\n"
        "  --logits                    output raw 'logits' instead of softmax 'predictions'\n"
        "  --relu6 clip|relu           ReLU6 as Clip(0,6) (default; TensorRT and onnxruntime\n"
        "                              fuse it) or Relu(x)-Relu(x-6), which OpenCV DNN 4.6 reads\n"
        "  --threads N --seed N\n");
    return f == stdout ? 0 : 2;
}

int cmd_cls_export(int argc, char **argv) {
    struct deft_cls_export_args a = {.out = stdout};
    const char *sets[64], *v = NULL, *batches = NULL, *bs = NULL, *opset = NULL, *trt = NULL,
               *threads = NULL, *seed = NULL, *pct = NULL, *relu6 = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-m", "--model", &a.model, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &a.output_file, &err) ||
            arg_str(argc, argv, &i, "-e", "--experiment_spec_file", &a.spec, &err) ||
            arg_str(argc, argv, &i, NULL, "--data_type", &a.data_type, &err) ||
            arg_str(argc, argv, &i, NULL, "--cal_image_dir", &a.cal_image_dir, &err) ||
            arg_str(argc, argv, &i, NULL, "--cal_cache_file", &a.cal_cache_file, &err) ||
            arg_str(argc, argv, &i, NULL, "--cal_json_file", &a.cal_json_file, &err) ||
            arg_str(argc, argv, &i, NULL, "--qdq_file", &a.qdq_file, &err) ||
            arg_str(argc, argv, &i, NULL, "--calibrator", &a.calibrator, &err) ||
            arg_str(argc, argv, &i, NULL, "--percentile", &pct, &err) ||
            arg_str(argc, argv, &i, NULL, "--batches", &batches, &err) ||
            arg_str(argc, argv, &i, NULL, "--batch_size", &bs, &err) ||
            arg_str(argc, argv, &i, NULL, "--opset", &opset, &err) ||
            arg_str(argc, argv, &i, NULL, "--trt_version", &trt, &err) ||
            arg_str(argc, argv, &i, NULL, "--relu6", &relu6, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err) ||
            arg_str(argc, argv, &i, NULL, "--seed", &seed, &err)) {
            if (err) return 2;
            continue;
        }
        if (arg_str(argc, argv, &i, NULL, "--set", &v, &err)) {
            if (err) return 2;
            if (a.n_overrides == 64) {
                fprintf(stderr, "deft: at most 64 --set overrides\n");
                return 2;
            }
            sets[a.n_overrides++] = v;
            continue;
        }
        if (arg_str(argc, argv, &i, "-k", "--key", &v, &err)) {
            if (err) return 2;
            fprintf(stderr, "deft: note: -k/--key ignored (deft models are not encrypted)\n");
            continue;
        }
        if (!strcmp(argv[i], "--gen_ds_config")) a.gen_ds_config = true;
        else if (!strcmp(argv[i], "--dynamic_batch")) a.dynamic_batch = true;
        else if (!strcmp(argv[i], "--logits")) a.logits = true;
        else if (!strcmp(argv[i], "--qdq_fusion")) a.qdq_fusion = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return export_usage(stdout);
        else {
            fprintf(stderr, "deft classification export: unknown flag '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    a.overrides = sets;
    if (!a.model || !a.output_file) {
        fprintf(stderr, "deft classification export: -m MODEL and -o OUT.onnx are required\n");
        return 2;
    }
    long long n;
    double d;
    if (batches) { if (!arg_parse_int("--batches", batches, 1, 100000, &n)) return 2; a.batches = (int)n; }
    if (bs) { if (!arg_parse_int("--batch_size", bs, 1, 4096, &n)) return 2; a.batch_size = (int)n; }
    if (opset) { if (!arg_parse_int("--opset", opset, 11, 17, &n)) return 2; a.opset = (int)n; }
    if (trt) { if (!arg_parse_int("--trt_version", trt, 1000, 999999, &n)) return 2; a.trt_version = (int)n; }
    if (threads) { if (!arg_parse_int("--threads", threads, 1, 1024, &n)) return 2; a.threads = (int)n; }
    if (seed) { if (!arg_parse_int("--seed", seed, 0, (long long)1 << 62, &n)) return 2; a.seed = (uint64_t)n; }
    if (pct) {
        if (!arg_parse_float("--percentile", pct, &d)) return 2;
        if (!(d > 0 && d <= 100)) {
            fprintf(stderr, "deft: --percentile is in (0, 100], got %s\n", pct);
            return 2;
        }
        a.percentile = d;
    }
    if (relu6) {
        if (strcmp(relu6, "clip") && strcmp(relu6, "relu")) {
            fprintf(stderr, "deft: --relu6 is clip or relu, not '%s'\n", relu6);
            return 2;
        }
        a.relu6_as_relu = !strcmp(relu6, "relu");
    }
    enum deft_status s = deft_cls_export(&a);
    return s ? cli_fail(s, NULL) : 0;
}

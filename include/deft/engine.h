/* deft/engine.h - deployment engines: a model converted for inference, and
 * the small C API that embeds it.
 *
 *     // once per process
 *     struct deft_engine *e;
 *     if (deft_engine_load("resnet18.engine", &e)) { puts(deft_last_error()); return 1; }
 *     struct deft_engine_info info;
 *     deft_engine_get_info(e, &info);                 // batch, input/output shapes
 *     // once per thread that runs it
 *     struct deft_engine_context *c;
 *     deft_engine_context_create(e, &c);
 *     deft_engine_run(c, input, info.input_numel, output, info.output_numel);
 *     deft_engine_context_free(c);
 *     deft_engine_free(e);                             // after every context
 *
 * Threads: the engine is read-only after loading; each context owns its
 * runtime (prepared weights, activation memory), so deft_engine_run on
 * different contexts may run at the same time from different threads. One
 * context must not be used by two threads at once.
 *
 * Engine file (format version DEFT_ENGINE_FORMAT_VERSION): a deft model file
 * (design §4: safetensors, the graph as JSON, the weights as f32) whose
 * graph is the inference graph - batch norm in eval mode, dropout off, the
 * batch fixed - plus one `__metadata__` entry "engine", a JSON object:
 *
 *     {"engine_format": 1, "precision": "fp32", "batch": 1,
 *      "input": "input_1", "input_shape": [1, 3, 224, 224],
 *      "output": "predictions", "output_shape": [1, 1000],
 *      "cpu": "x86_64 avx2 fma avx512f ...", "deft_version": "0.1.0"}
 *
 * An int8 engine ("precision": "int8") adds "act_scales": {"<value>": s},
 * the per-tensor scale s = amax / 127 of every calibrated activation
 * (TensorRT's symmetric convention; every convolution input must have
 * one). Its weights stay f32 in the file and are quantized to s8 per
 * output channel (s_w = max|w| / 127, symmetric) when a context prepares
 * them: batch norm is folded into the weights at that moment, for the CPU
 * it runs on, and the per-channel scales must be those of the folded
 * weights; the price is a file 4x larger than int8 weights would make it.
 * The cpu backend runs every convolution in int8 (oneDNN: u8/s8 source,
 * s8 weights, fused ReLU/ReLU6 and residual add, requantized so int8 flows
 * from convolution to convolution) and the rest (pooling, the head) in
 * f32; the ref backend runs an int8 engine in f32. oneDNN picks the int8
 * kernels for this CPU (VNNI, AMX; plain AVX2/SSE4.1 kernels elsewhere:
 * slower, same results up to rounding).
 *
 * A bf16 engine ("precision": "bf16") is the fp32 file; where oneDNN has
 * bf16 convolutions (AVX512-BF16, AMX) each convolution chain runs with bf16
 * source, weights and outputs between chains, f32 accumulation and bias
 * (measured 2x the f32 speed of a 3x3 64->64 convolution on Zen 4/5 with
 * oneDNN 2.6's brgconv, nhwc); elsewhere it runs in fp32 and says so.
 *
 * "cpu" lists the features of the CPU it was converted on; weights are
 * prepared for the CPU the engine runs on (oneDNN picks its kernels at load,
 * batch norm is folded and weights reordered once per context), so an
 * engine runs on any CPU and says when this one differs. A reader refuses
 * a newer engine_format, a precision it does not know, a truncated file and
 * sizes that do not match the graph, with one-line errors.
 */
#ifndef DEFT_ENGINE_H
#define DEFT_ENGINE_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: engines with several outputs ("more_outputs"); one-output engines are
 * still written as 1, so older readers keep reading them. */
#define DEFT_ENGINE_FORMAT_VERSION 2
#define DEFT_ENGINE_MAX_OUTPUTS 8
#define DEFT_ENGINE_MAX_BATCH 65536

struct deft_engine;
struct deft_engine_context;

struct deft_engine_convert_opts {
    const char *precision;  /* "fp32" (the default), "int8" or "bf16" */
    int batch;              /* fixed batch size; 0 = the model's */
    int height, width;      /* input size; 0 = the model's */
    int channels;           /* 0, or the channel count the caller expects (checked) */
    /* int8: the activation ranges, from a TensorRT calibration cache (names
     * = the graph's values, as deft's export writes them) or from
     * calibrating on the images under cal_image_dir (entropy, TensorRT's;
     * cal_batches x cal_batch_size images drawn at random, default 10 x 16) */
    const char *cal_cache, *cal_image_dir;
    int cal_batches, cal_batch_size;
    const char *calibrator; /* cal_image_dir: "entropy" (NULL), "minmax" or "percentile" */
    double percentile;      /* percentile: 0 -> 99.99 */
    FILE *progress;         /* calibration progress lines, or NULL */
};

struct deft_engine_info {
    int format_version;
    const char *precision;  /* "fp32", "int8", "bf16" */
    int batch;
    struct deft_shape input_shape, output_shape;
    size_t input_numel, output_numel;  /* floats per run (whole batch) */
    const char *input_name, *output_name;
    /* Every output, in the order deft_engine_run_outputs takes them; the
     * output_* fields above are outputs[0]'s. A classifier has one (its
     * logits); a detector one per head (YOLOv4: one per stride). */
    int num_outputs;
    const char *output_names[DEFT_ENGINE_MAX_OUTPUTS];
    struct deft_shape output_shapes[DEFT_ENGINE_MAX_OUTPUTS];
    size_t output_numels[DEFT_ENGINE_MAX_OUTPUTS];
    const char *cpu;        /* features of the CPU it was converted on */
    bool cpu_differs;       /* ... and they are not this CPU's */
    const char *layout;     /* fp32: "nhwc" or "blocked" convolution chains (timed at convert;
                               DEFT_ENGINE_LAYOUT overrides); NULL for int8/bf16 */
    const struct deft_graph *graph; /* meta: class_names, preprocess (deft_graph_get_meta) */
};

/* Features of this CPU as the engine records them ("x86_64 avx2 fma ..."). */
DEFT_API const char *deft_engine_cpu_features(void);
/* The instruction set oneDNN runs the engine with here ("avx512_core_vnni",
 * "avx512_core_amx", "avx2" ...; ONEDNN_MAX_CPU_ISA caps it), and whether
 * its int8 convolutions have native int8 dot products (VNNI or AMX). */
DEFT_API const char *deft_engine_cpu_isa(void);
DEFT_API bool deft_engine_int8_native(void);
/* ... and whether it has bf16 convolutions (AVX512-BF16 or AMX): a bf16
 * engine runs its convolutions in bf16 only then, in fp32 elsewhere. */
DEFT_API bool deft_engine_bf16_native(void);

/* Convert a model (a deft model file or an ONNX file) into an engine file,
 * written atomically. */
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_convert(const char *model_path, const char *engine_path,
                                                            const struct deft_engine_convert_opts *o);

/* Read and check an engine file (deft_engine_parse: the same from memory;
 * buf stays the caller's). */
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_load(const char *path, struct deft_engine **out);
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_parse(const void *buf, size_t len, const char *name,
                                                          struct deft_engine **out);
DEFT_API void deft_engine_free(struct deft_engine *e);
/* True when path is a deft model file carrying the "engine" entry. */
DEFT_API bool deft_engine_is_engine_file(const char *path);
DEFT_API void deft_engine_get_info(const struct deft_engine *e, struct deft_engine_info *out);

/* A context: one runtime with the engine's weights prepared (backend "cpu"
 * unless backend names another). Free every context before its engine. */
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_context_create(const struct deft_engine *e,
                                                                   struct deft_engine_context **out);
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_context_create_on(const struct deft_engine *e,
                                                                      const char *backend,
                                                                      struct deft_engine_context **out);
DEFT_API void deft_engine_context_free(struct deft_engine_context *c);
/* One inference: n_in floats (plain NCHW, info.input_numel) in, n_out
 * floats (info.output_numel) out; for an engine with one output (else an
 * error: use deft_engine_run_outputs). */
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_run(struct deft_engine_context *c, const float *input,
                                                        size_t n_in, float *output, size_t n_out);
/* The same for every output: n_outputs must be info.num_outputs, outputs[i]
 * holds n_out[i] = info.output_numels[i] floats. */
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_run_outputs(struct deft_engine_context *c, const float *input,
                                                                size_t n_in, float *const *outputs,
                                                                const size_t *n_out, int n_outputs);
/* Decode an image file (JPEG, PNG, BMP) and preprocess it as the model
 * records it ("preprocess" metadata: resize/crop, channel order, mean, std)
 * into dst: one item of the input, C*H*W floats (info.input_numel / batch). */
DEFT_API DEFT_NODISCARD enum deft_status deft_engine_preprocess_image(const struct deft_engine *e,
                                                                     const char *path, float *dst);
/* Class names recorded with the model: their count (0 when none) and
 * name i (NULL when out of range). */
DEFT_API int deft_engine_num_classes(const struct deft_engine *e);
DEFT_API const char *deft_engine_class_name(const struct deft_engine *e, int i);
/* The context's runtime (profiling, statistics). */
DEFT_API struct deft_runtime *deft_engine_context_runtime(struct deft_engine_context *c);

#ifdef __cplusplus
}
#endif
#endif

/* deft/quant.h - INT8 quantization: activation histograms, the calibrators
 * that pick a clipping range from them, TensorRT's calibration cache
 * (cal.bin), and the graph rewrite for quantization-aware training.
 *
 *     struct deft_histogram h;
 *     deft_hist_init(&h, amax_seen);            // pass 1 found max|x| over the set
 *     deft_hist_add(&h, x, n);                  // pass 2, every batch
 *     float amax = deft_calib_amax(&h, DEFT_CALIB_ENTROPY, 0);
 *     // scale = amax / 127, symmetric: TensorRT's INT8 convention
 *     deft_hist_release(&h);
 */
#ifndef DEFT_QUANT_H
#define DEFT_QUANT_H

#include "deft/core.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_HIST_BINS 2048  /* TensorRT's / pytorch-quantization's histogram size */

/* |x| histogram on [0, range) in DEFT_HIST_BINS equal bins; values at or
 * above range land in the last bin. */
struct deft_histogram {
    double *counts;
    float range;     /* max|x| over the calibration set (bin width = range / bins) */
    int64_t total;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_hist_init(struct deft_histogram *h, float range);
DEFT_API void deft_hist_add(struct deft_histogram *h, const float *x, size_t n);
DEFT_API void deft_hist_release(struct deft_histogram *h);

enum deft_calibrator {
    DEFT_CALIB_ENTROPY = 0, /* TensorRT's KL-divergence search (EntropyCalibration2) */
    DEFT_CALIB_MINMAX,      /* amax = max|x| */
    DEFT_CALIB_PERCENTILE,  /* amax = the given percentile of |x| */
};
/* "entropy", "minmax", "percentile" -> enum; DEFT_ERR_INVALID_ARG otherwise. */
DEFT_API DEFT_NODISCARD enum deft_status deft_calibrator_parse(const char *name,
                                                              enum deft_calibrator *out);
DEFT_API const char *deft_calibrator_name(enum deft_calibrator c);
/* The clipping range the calibrator picks (0 for an all-zero tensor).
 * percentile is used by DEFT_CALIB_PERCENTILE only (e.g. 99.99). */
DEFT_API float deft_calib_amax(const struct deft_histogram *h, enum deft_calibrator c,
                               double percentile);

/* ---- TensorRT calibration cache ------------------------------------------ */
/* Text: "TRT-<version>-<algorithm>\n" then "<tensor>: <hex>\n" per tensor,
 * hex = the IEEE-754 bits of scale = amax / 127, lowercase, no 0x (formats.md
 * §2.1). trt_version: NV_TENSORRT_VERSION of the target (8601 = 8.6.1). */
struct deft_calib_entry {
    const char *name;
    float scale;
};
/* Written atomically. algorithm: "EntropyCalibration2", "MinMaxCalibration". */
DEFT_API DEFT_NODISCARD enum deft_status deft_calib_cache_write(const char *path, int trt_version,
                                                               const char *algorithm,
                                                               const struct deft_calib_entry *e,
                                                               int n);
/* Read one: every entry as written (scales unchecked: the caller judges
 * them); a line that is not '<tensor>: <hex>' is DEFT_ERR_FORMAT naming the
 * line. Free with deft_calib_cache_free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_calib_cache_read(const char *path, struct deft_calib_entry **e,
                                                              int *n);
DEFT_API void deft_calib_cache_free(struct deft_calib_entry *e, int n);

/* ---- quantization-aware training (qat.c) --------------------------------- */
/* deft_qat_insert rewrites any model graph (classifier, detector) for
 * quantization-aware training, placing fake quantization exactly where the
 * QDQ export (deft_onnx_export with act_amax) puts QuantizeLinear/
 * DequantizeLinear, so what is trained is what is deployed:
 *   - every activation entering a Conv, ConvTranspose or Linear (and, with
 *     `fusion`, an Add or a pooling: export --qdq_fusion) goes through one
 *     per-tensor FAKE_QUANT node "<value>.quant" with its range in the STATE
 *     value "<value>.quant.amax" (saved in checkpoints and model files);
 *   - the weights of those layers go through a per-output-channel FAKE_QUANT
 *     "<weight>.quant" (axis 0; 1 for a non-grouped ConvTranspose, as the
 *     export quantizes them);
 *   - every other activation the export names (a calibration-cache entry)
 *     gets an OBSERVE node "<value>.observe" tracking its range only, so
 *     cal.bin needs no calibration images either. A convolution output that
 *     only feeds a batch norm is folded by the export and is not observed.
 * Layers whose name matches an `exclude` pattern (fnmatch) stay float
 * (inputs and weights). The options are recorded in the metadata key "qat".
 * Batch norm: the export folds it into the convolution with the running
 * statistics, w' = w * gamma / sqrt(var + eps) per output channel. Symmetric
 * per-channel quantization is equivariant under a positive (or negative)
 * per-channel scale: q(w * s) = q(w) * s, grid and clipping included, so
 * fake-quantizing the unfolded weight trains exactly the int8 weights the
 * export writes, whatever the statistics. What BN statistics change is the
 * activations; the trainer's callers freeze them under QAT
 * (qat_freeze_bn, on by default) so the training forward is the deployed one
 * and the learned ranges are the deployed ranges. */
struct deft_qat_opts {
    float ema_decay;              /* range moving average; 0 -> 0.999 (TAO's QDQ layer) */
    bool fusion;                  /* also Add and pooling inputs (TensorRT's fusion placement) */
    const char *const *exclude;   /* NULL-terminated layer-name patterns kept float, or NULL */
};
DEFT_API DEFT_NODISCARD enum deft_status deft_qat_insert(const struct deft_graph *g,
                                                        const struct deft_qat_opts *o,
                                                        struct deft_graph **out);
/* Does g hold fake-quantization nodes (a quantization-aware model)? */
DEFT_API bool deft_qat_enabled(const struct deft_graph *g);
/* The float graph of a quantization-aware one (fake-quant and observe nodes
 * and their range states removed, every value and parameter keeping its
 * name) and, per value of that float graph, where its learned range lives:
 * ranges[v].state is the index in g of the STATE value holding amax (-1:
 * none), ranges[v].quantized tells a fake-quantized tensor (QDQ in the
 * export) from an observed one. Free *ranges with deft_free. */
struct deft_qat_range { int state; bool quantized; };
DEFT_API DEFT_NODISCARD enum deft_status deft_qat_strip(const struct deft_graph *g, struct deft_graph **out,
                                                       struct deft_qat_range **ranges);

#ifdef __cplusplus
}
#endif
#endif

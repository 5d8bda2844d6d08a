/* deft/quant.h - post-training INT8 quantization: activation histograms,
 * the calibrators that pick a clipping range from them, and TensorRT's
 * calibration cache (cal.bin).
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

#ifdef __cplusplus
}
#endif
#endif

/* calib.c - activation histograms and the calibrators that choose an INT8
 * clipping range from them (formats.md §2.3).
 *
 * The entropy calibrator follows NVIDIA's published description of
 * TensorRT's EntropyCalibration2 (and their open pytorch-quantization code):
 * for every candidate number of kept bins i in [128, 2048], P is the
 * histogram's first i bins with everything beyond clipped into bin i-1, Q is
 * those i bins merged into 128 levels and spread back evenly over the bins
 * that were non-zero; the i with the smallest KL(P||Q) wins, amax = i * bin
 * width. Like pytorch-quantization, bin 0 takes bin 1's count first, so the
 * spike of exact zeros after a ReLU does not decide the range. */
#include <math.h>
#include <string.h>
#include "deft/quant.h"

#define QUANT_LEVELS 128 /* symmetric int8: 128 magnitudes */

enum deft_status deft_hist_init(struct deft_histogram *h, float range) {
    memset(h, 0, sizeof *h);
    h->counts = deft_calloc(DEFT_HIST_BINS, sizeof *h->counts);
    if (!h->counts) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    h->range = range > 0 && isfinite(range) ? range : 0;
    return DEFT_OK;
}

void deft_hist_add(struct deft_histogram *h, const float *x, size_t n) {
    if (!(h->range > 0)) { /* an all-zero tensor: everything in bin 0 */
        h->counts[0] += (double)n;
        h->total += (int64_t)n;
        return;
    }
    double per = DEFT_HIST_BINS / (double)h->range;
    for (size_t i = 0; i < n; i++) {
        double a = fabs((double)x[i]) * per;
        int b = a >= DEFT_HIST_BINS || a != a ? DEFT_HIST_BINS - 1 : (int)a;
        h->counts[b] += 1;
    }
    h->total += (int64_t)n;
}

void deft_hist_release(struct deft_histogram *h) {
    deft_free(h->counts);
    memset(h, 0, sizeof *h);
}

enum deft_status deft_calibrator_parse(const char *name, enum deft_calibrator *out) {
    static const char *const names[] = {"entropy", "minmax", "percentile"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (enum deft_calibrator)i;
            return DEFT_OK;
        }
    return deft_set_error(DEFT_ERR_INVALID_ARG, "calibrator '%s': use entropy, minmax or percentile",
                          name);
}

const char *deft_calibrator_name(enum deft_calibrator c) {
    return c == DEFT_CALIB_MINMAX ? "minmax" : c == DEFT_CALIB_PERCENTILE ? "percentile" : "entropy";
}

/* KL(P||Q) for keeping the first i bins of hist; +inf when Q misses mass P has. */
static double kl_for(const double *hist, int i, double total) {
    double outliers = 0;
    for (int j = i; j < DEFT_HIST_BINS; j++) outliers += hist[j];
    double q[DEFT_HIST_BINS];
    for (int g = 0; g < QUANT_LEVELS; g++) {
        int lo = (int)((int64_t)g * i / QUANT_LEVELS), hi = (int)((int64_t)(g + 1) * i / QUANT_LEVELS);
        double sum = 0;
        int nz = 0;
        for (int j = lo; j < hi; j++) {
            sum += hist[j];
            nz += hist[j] != 0;
        }
        for (int j = lo; j < hi; j++) q[j] = hist[j] != 0 ? sum / nz : 0;
    }
    double kl = 0, qsum = 0;
    for (int j = 0; j < i; j++) qsum += q[j];
    if (!(qsum > 0)) return INFINITY;
    for (int j = 0; j < i; j++) {
        double p = hist[j] + (j == i - 1 ? outliers : 0);
        if (p <= 0) continue;
        if (q[j] <= 0) return INFINITY;
        double pn = p / total, qn = q[j] / qsum;
        kl += pn * log(pn / qn);
    }
    return kl;
}

static float amax_entropy(const struct deft_histogram *h) {
    double hist[DEFT_HIST_BINS];
    memcpy(hist, h->counts, sizeof hist);
    hist[0] = hist[1];
    double total = 0;
    for (int j = 0; j < DEFT_HIST_BINS; j++) total += hist[j];
    if (!(total > 0)) return h->range;
    int best = DEFT_HIST_BINS;
    double best_kl = INFINITY;
    for (int i = QUANT_LEVELS; i <= DEFT_HIST_BINS; i++) {
        double kl = kl_for(hist, i, total);
        if (kl <= best_kl) { /* ties: the larger range, as pytorch-quantization */
            best_kl = kl;
            best = i;
        }
    }
    return (float)((double)best * h->range / DEFT_HIST_BINS);
}

static float amax_percentile(const struct deft_histogram *h, double pct) {
    if (!(pct > 0 && pct <= 100)) pct = 99.99;
    double total = 0, c = 0;
    for (int j = 0; j < DEFT_HIST_BINS; j++) total += h->counts[j];
    for (int j = 0; j < DEFT_HIST_BINS; j++) {
        c += h->counts[j];
        if (c >= total * pct / 100.0) return (float)((double)(j + 1) * h->range / DEFT_HIST_BINS);
    }
    return h->range;
}

float deft_calib_amax(const struct deft_histogram *h, enum deft_calibrator c, double percentile) {
    if (!(h->range > 0) || !h->counts) return 0;
    switch (c) {
    case DEFT_CALIB_MINMAX: return h->range;
    case DEFT_CALIB_PERCENTILE: return amax_percentile(h, percentile);
    default: return amax_entropy(h);
    }
}

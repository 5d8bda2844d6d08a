/* batchnorm.c - reference batch normalization forward and backward (PyTorch
 * BatchNorm1d/2d semantics) over x[n, c, *]: statistics per channel c over the
 * batch and every trailing (spatial) position.
 *
 * Modes: TRAIN normalizes with the batch mean and biased variance and updates
 * the running statistics in place (running_var with the unbiased variance, as
 * PyTorch does); EVAL and FROZEN normalize with the running statistics.
 * save_mean/save_var receive the statistics used (batch or running), which is
 * what the backward node reads.
 */
#include <math.h>
#include "backend/ref/ref_impl.h"

/* sync_bn: per-channel sums of this rank in buf[0..c), its element count in
 * buf[c], then the same summed over the ranks. */
static enum deft_status sum_ranks(const struct deft_run_ctx *rc, double *buf, int64_t c, const char *name) {
    enum deft_status s = rc->allreduce(buf, (size_t)c + 1, rc->allreduce_user);
    if (s) return deft_wrap_error(s, "sync_bn %s", name);
    return DEFT_OK;
}

/* TRAIN with sync_bn: the statistics of the global batch, two passes as
 * below (the mean over all ranks first, then the squares around it). */
static enum deft_status sync_fwd(const struct deft_node *nd, const float *x, const float *gamma, const float *beta,
                                 float *rmean, float *rvar, float *y, float *smean, float *svar, int64_t nb,
                                 int64_t c, int64_t plane, const struct deft_run_ctx *rc) {
    const struct deft_bn_attr *a = &nd->attr.bn;
    double *mean = deft_malloc(((size_t)c + 1) * sizeof *mean), *sq = deft_malloc(((size_t)c + 1) * sizeof *sq);
    enum deft_status s = DEFT_OK;
    if (!mean || !sq) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory in sync_bn %s", nd->name);
        goto done;
    }
    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        double sum = 0;
        for (int64_t ni = 0; ni < nb; ni++)
            for (int64_t j = 0; j < plane; j++) sum += x[(ni * c + ci) * plane + j];
        mean[ci] = sum;
    }
    mean[c] = (double)(nb * plane);
    if ((s = sum_ranks(rc, mean, c, nd->name))) goto done;
    const double m = mean[c];
    for (int64_t ci = 0; ci < c; ci++) mean[ci] = m > 0 ? mean[ci] / m : 0.0;
    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        double acc = 0;
        for (int64_t ni = 0; ni < nb; ni++)
            for (int64_t j = 0; j < plane; j++) {
                double d = x[(ni * c + ci) * plane + j] - mean[ci];
                acc += d * d;
            }
        sq[ci] = acc;
    }
    sq[c] = 0;
    if ((s = sum_ranks(rc, sq, c, nd->name))) goto done;
    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        double var = m > 0 ? sq[ci] / m : 0.0;
        if (rmean && rvar) {
            double unbiased = m > 1 ? sq[ci] / (m - 1) : var, mom = a->momentum;
            rmean[ci] = (float)((1.0 - mom) * rmean[ci] + mom * mean[ci]);
            rvar[ci] = (float)((1.0 - mom) * rvar[ci] + mom * unbiased);
        }
        if (smean) smean[ci] = (float)mean[ci];
        if (svar) svar[ci] = (float)var;
        const double invstd = 1.0 / sqrt(var + (double)a->eps);
        const double scale = (gamma ? gamma[ci] : 1.0) * invstd, shift = (beta ? beta[ci] : 0.0) - mean[ci] * scale;
        for (int64_t ni = 0; ni < nb; ni++)
            for (int64_t j = 0; j < plane; j++) {
                int64_t i = (ni * c + ci) * plane + j;
                y[i] = (float)(x[i] * scale + shift);
            }
    }
done:
    deft_free(mean);
    deft_free(sq);
    return s;
}

/* BATCHNORM: in x, gamma, beta, running_mean, running_var; out y, save_mean, save_var. */
enum deft_status deft_ref_batchnorm(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_bn_attr *a = &nd->attr.bn;
    const float *x = ref_in(nd, ptr, 0), *gamma = ref_in(nd, ptr, 1), *beta = ref_in(nd, ptr, 2);
    float *rmean = ref_in(nd, ptr, 3), *rvar = ref_in(nd, ptr, 4);
    float *y = ref_out(nd, ptr, 0), *smean = ref_out(nd, ptr, 1), *svar = ref_out(nd, ptr, 2);
    int64_t nb, c, plane;
    view_channels(ref_shape(g, nd->in[0]), &nb, &c, &plane);
    const int64_t m = nb * plane;
    const bool train = a->mode == DEFT_BN_TRAIN;
    if (!train && (!rmean || !rvar))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ref batchnorm %s: running stats missing",
                              nd->name);
    if (train && a->sync && rc && rc->allreduce)
        return sync_fwd(nd, x, gamma, beta, rmean, rvar, y, smean, svar, nb, c, plane, rc);

    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        double mean, var;
        if (train) {
            double sum = 0;
            for (int64_t ni = 0; ni < nb; ni++) {
                const float *xp = x + (ni * c + ci) * plane;
                for (int64_t j = 0; j < plane; j++) sum += xp[j];
            }
            mean = m > 0 ? sum / (double)m : 0.0;
            /* Two-pass variance: exact enough to serve as the oracle. */
            double sq = 0;
            for (int64_t ni = 0; ni < nb; ni++) {
                const float *xp = x + (ni * c + ci) * plane;
                for (int64_t j = 0; j < plane; j++) sq += (xp[j] - mean) * (xp[j] - mean);
            }
            var = m > 0 ? sq / (double)m : 0.0;
            if (rmean && rvar) {
                /* PyTorch refuses m == 1 in training; use the biased value then. */
                double unbiased = m > 1 ? sq / (double)(m - 1) : var;
                double mom = a->momentum;
                rmean[ci] = (float)((1.0 - mom) * rmean[ci] + mom * mean);
                rvar[ci] = (float)((1.0 - mom) * rvar[ci] + mom * unbiased);
            }
        } else {
            mean = rmean[ci];
            var = rvar[ci];
        }
        if (smean) smean[ci] = (float)mean;
        if (svar) svar[ci] = (float)var;
        const double invstd = 1.0 / sqrt(var + (double)a->eps);
        const double gm = gamma ? gamma[ci] : 1.0, bt = beta ? beta[ci] : 0.0;
        const double scale = gm * invstd, shift = bt - mean * scale;
        for (int64_t ni = 0; ni < nb; ni++) {
            const float *xp = x + (ni * c + ci) * plane;
            float *yp = y + (ni * c + ci) * plane;
            for (int64_t j = 0; j < plane; j++) yp[j] = (float)(xp[j] * scale + shift);
        }
    }
    return DEFT_OK;
}

/* TRAIN with sync_bn: sum(dy) and sum(dy*xhat) over all ranks in dx; this
 * rank's own sums as dgamma/dbeta (the gradient all-reduce averages them,
 * as DDP does with SyncBatchNorm). */
static enum deft_status sync_bwd(const struct deft_node *nd, const float *dy, const float *x, const float *gamma,
                                 const float *smean, const float *svar, float *dx, float *dgamma, float *dbeta,
                                 int64_t nb, int64_t c, int64_t plane, const struct deft_run_ctx *rc) {
    const struct deft_bn_attr *a = &nd->attr.bn;
    double *sum = deft_malloc((2 * (size_t)c + 1) * sizeof *sum);
    if (!sum) return deft_set_error(DEFT_ERR_NOMEM, "out of memory in sync_bn %s", nd->name);
    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        const double mean = smean[ci], invstd = 1.0 / sqrt((double)svar[ci] + (double)a->eps);
        double sdy = 0, sdyx = 0;
        for (int64_t ni = 0; ni < nb; ni++)
            for (int64_t j = 0; j < plane; j++) {
                int64_t i = (ni * c + ci) * plane + j;
                sdy += dy[i];
                sdyx += dy[i] * ((x[i] - mean) * invstd);
            }
        if (dgamma) dgamma[ci] = (float)sdyx;
        if (dbeta) dbeta[ci] = (float)sdy;
        sum[ci] = sdy;
        sum[c + ci] = sdyx;
    }
    sum[2 * c] = (double)(nb * plane);
    enum deft_status s = rc->allreduce(sum, 2 * (size_t)c + 1, rc->allreduce_user);
    if (s) {
        deft_free(sum);
        return deft_wrap_error(s, "sync_bn %s", nd->name);
    }
    const double m = sum[2 * c];
    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        if (!dx || m <= 0) continue;
        const double mean = smean[ci], invstd = 1.0 / sqrt((double)svar[ci] + (double)a->eps);
        const double k = (gamma ? gamma[ci] : 1.0) * invstd / m;
        for (int64_t ni = 0; ni < nb; ni++)
            for (int64_t j = 0; j < plane; j++) {
                int64_t i = (ni * c + ci) * plane + j;
                double xhat = (x[i] - mean) * invstd;
                dx[i] = (float)(k * (m * dy[i] - sum[ci] - xhat * sum[c + ci]));
            }
    }
    deft_free(sum);
    return DEFT_OK;
}

/* BATCHNORM_BWD: in dy, x, gamma, save_mean, save_var; out dx, [dgamma], [dbeta].
 * TRAIN: the statistics depend on x, so dx carries the two extra terms
 *   dx = gamma*invstd/m * (m*dy - sum(dy) - xhat*sum(dy*xhat)).
 * EVAL/FROZEN: the statistics are constants, dx = dy*gamma*invstd. */
enum deft_status deft_ref_batchnorm_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                        const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_bn_attr *a = &nd->attr.bn;
    const float *dy = ref_in(nd, ptr, 0), *x = ref_in(nd, ptr, 1), *gamma = ref_in(nd, ptr, 2);
    const float *smean = ref_in(nd, ptr, 3), *svar = ref_in(nd, ptr, 4);
    float *dx = ref_out(nd, ptr, 0), *dgamma = ref_out(nd, ptr, 1), *dbeta = ref_out(nd, ptr, 2);
    int64_t nb, c, plane;
    view_channels(ref_shape(g, nd->in[1]), &nb, &c, &plane);
    const int64_t m = nb * plane;
    const bool train = a->mode == DEFT_BN_TRAIN;
    if (train && a->sync && rc && rc->allreduce)
        return sync_bwd(nd, dy, x, gamma, smean, svar, dx, dgamma, dbeta, nb, c, plane, rc);

    #pragma omp parallel for
    for (int64_t ci = 0; ci < c; ci++) {
        const double mean = smean[ci], invstd = 1.0 / sqrt((double)svar[ci] + (double)a->eps);
        double sdy = 0, sdyx = 0;
        for (int64_t ni = 0; ni < nb; ni++) {
            const float *xp = x + (ni * c + ci) * plane, *dyp = dy + (ni * c + ci) * plane;
            for (int64_t j = 0; j < plane; j++) {
                sdy += dyp[j];
                sdyx += dyp[j] * ((xp[j] - mean) * invstd);
            }
        }
        if (dgamma) dgamma[ci] = (float)sdyx;
        if (dbeta) dbeta[ci] = (float)sdy;
        if (!dx) continue;
        const double gm = gamma ? gamma[ci] : 1.0;
        for (int64_t ni = 0; ni < nb; ni++) {
            const float *xp = x + (ni * c + ci) * plane, *dyp = dy + (ni * c + ci) * plane;
            float *dxp = dx + (ni * c + ci) * plane;
            if (train && m > 0) {
                const double k = gm * invstd / (double)m;
                for (int64_t j = 0; j < plane; j++) {
                    double xhat = (xp[j] - mean) * invstd;
                    dxp[j] = (float)(k * ((double)m * dyp[j] - sdy - xhat * sdyx));
                }
            } else {
                for (int64_t j = 0; j < plane; j++) dxp[j] = (float)(dyp[j] * gm * invstd);
            }
        }
    }
    return DEFT_OK;
}

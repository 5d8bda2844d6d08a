/* cuda_bodies.h (internal) - the per-item bodies of every CUDA kernel.
 *
 * Each body computes item i of its kernel (see cuda_dev.h) and writes only
 * that item's outputs. This header is compiled twice: by nvcc inside
 * __global__ grid-stride loops (cuda_real.cu) and by the C compiler inside
 * host loops (cuda_emu.c), so the index arithmetic the GPU runs is the
 * arithmetic the host tests check against the reference backend.
 * Semantics follow src/backend/ref (PyTorch's); sums over many terms are in
 * double, as the reference's are.
 */
#ifndef DEFT_CUDA_BODIES_H
#define DEFT_CUDA_BODIES_H

#include <math.h>
#include "backend/cuda/cuda_dev.h"

#ifdef __CUDACC__
#define CUDA_HD __host__ __device__ static inline
#else
#define CUDA_HD static inline
#endif

/* Must equal src/core/rng.c (dropout masks are the same on every backend). */
CUDA_HD uint64_t ck_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
CUDA_HD float ck_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t r = ck_mix64(ck_mix64(seed ^ ck_mix64(stream)) + index);
    return (float)(r >> 40) * (1.0f / 16777216.0f);
}
CUDA_HD int64_t ck_min(int64_t a, int64_t b) { return a < b ? a : b; }
CUDA_HD int64_t ck_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- activations (kinds as enum deft_act_kind) ---- */
CUDA_HD double ck_act_value(int kind, double alpha, double x) {
    if (x != x) return x;
    switch (kind) {
    case 0: return x > 0 ? x : 0.0;                          /* relu */
    case 1: return x < 0 ? 0.0 : (x > 6 ? 6.0 : x);          /* relu6 */
    case 2: return x > 0 ? x : alpha * x;                    /* leaky */
    case 3: return 1.0 / (1.0 + exp(-x));                    /* sigmoid */
    case 4: return tanh(x);
    case 5: return x / (1.0 + exp(-x));                      /* swish */
    case 6: { double r = x + 3 < 0 ? 0.0 : (x + 3 > 6 ? 6.0 : x + 3); return x * r / 6.0; }
    case 7: return x * tanh(x > 30 ? x : log1p(exp(x)));    /* mish */
    case 8: return x <= -3 ? 0.0 : (x >= 3 ? 1.0 : x / 6.0 + 0.5); /* hardsigmoid */
    case 9: return exp(x);
    case 10: return log(x);
    case 11: return sqrt(x);
    case 12: return fabs(x);
    case 13: return -x;
    case 14: return 1.0 / x;                                 /* reciprocal */
    case 15: return x > 30 ? x : log1p(exp(x));              /* softplus */
    case 16: return x / (1.0 + fabs(x));                     /* softsign */
    case 17: return x > 0 ? x : alpha * expm1(x);            /* elu */
    case 18: return erf(x);
    default: return x;
    }
}
CUDA_HD double ck_act_grad(int kind, double alpha, double t, int from_y) {
    if (from_y) {
        switch (kind) {
        case 0: return t > 0 ? 1.0 : 0.0;
        case 1: return t > 0 && t < 6 ? 1.0 : 0.0;
        case 2: return t > 0 ? 1.0 : alpha;
        case 3: return t * (1 - t);
        case 4: return 1 - t * t;
        case 9: return t;                                    /* exp */
        case 11: return 0.5 / t;                             /* sqrt */
        default: return 1.0;
        }
    }
    switch (kind) {
    case 0: return t > 0 ? 1.0 : 0.0;
    case 1: return t > 0 && t < 6 ? 1.0 : 0.0;
    case 2: return t > 0 ? 1.0 : alpha;
    case 3: { double s = 1.0 / (1.0 + exp(-t)); return s * (1 - s); }
    case 4: { double h = tanh(t); return 1 - h * h; }
    case 5: { double s = 1.0 / (1.0 + exp(-t)); return s * (1 + t * (1 - s)); }
    case 6: return t < -3 ? 0.0 : (t < 3 ? t / 3.0 + 0.5 : 1.0);
    case 7: {
        double h = tanh(t > 30 ? t : log1p(exp(t))), s = 1.0 / (1.0 + exp(-t));
        return h + t * s * (1 - h * h);
    }
    case 8: return t > -3 && t < 3 ? 1.0 / 6.0 : 0.0;
    case 9: return exp(t);
    case 10: return 1.0 / t;
    case 11: return 0.5 / sqrt(t);
    case 12: return t > 0 ? 1.0 : (t < 0 ? -1.0 : 0.0);
    case 13: return -1.0;
    case 14: return -1.0 / (t * t);
    case 15: return 1.0 / (1.0 + exp(-t));
    case 16: { double d = 1.0 + fabs(t); return 1.0 / (d * d); }
    case 17: return t > 0 ? 1.0 : alpha * exp(t);
    case 18: return 1.1283791670955126 * exp(-t * t);
    default: return 1.0;
    }
}
CUDA_HD void ck_act_fwd(int64_t i, const struct ck_act *a) {
    a->y[i] = (float)ck_act_value(a->kind, a->alpha, a->x[i]);
}
/* x holds the forward input or output (from_y). */
CUDA_HD void ck_act_bwd(int64_t i, const struct ck_act *a) {
    a->y[i] = (float)(a->dy[i] * ck_act_grad(a->kind, a->alpha, a->x[i], a->from_y));
}

/* ---- broadcasting binary ops and their adjoint ---- */
CUDA_HD void ck_binary_body(int64_t i, const struct ck_binary *a) {
    int64_t r = i, oa = 0, ob = 0;
    for (int d = a->ndim - 1; d >= 0; d--) {
        int64_t c = r % a->yd[d];
        r /= a->yd[d];
        oa += c * a->sa[d];
        ob += c * a->sb[d];
    }
    a->y[i] = a->mul ? a->a[oa] * a->b[ob] : a->a[oa] + a->b[ob];
}
/* Item j: one element of y; loops over the reduced coordinates of x. */
CUDA_HD void ck_reduce_to(int64_t j, const struct ck_reduce *a) {
    int64_t yc[CK_MAX_DIMS], r = j, cnt = 1;
    for (int d = a->ndim - 1; d >= 0; d--) {
        yc[d] = r % a->yd[d];
        r /= a->yd[d];
        if (a->yd[d] == 1) cnt *= a->xd[d];
    }
    double acc = 0;
    for (int64_t k = 0; k < cnt; k++) {
        int64_t rem = k, off = 0, st = 1;
        for (int d = a->ndim - 1; d >= 0; d--) {
            int64_t c = yc[d];
            if (a->yd[d] == 1) {
                c = rem % a->xd[d];
                rem /= a->xd[d];
            }
            off += c * st;
            st *= a->xd[d];
        }
        acc += a->x[off];
    }
    a->y[j] = (float)acc;
}

/* ---- region copy (concat, slice, pad) ---- */
CUDA_HD void ck_copy_body(int64_t i, const struct ck_copy *a) {
    int64_t r = i, oo = a->obase, io = 0;
    int inside = 1;
    for (int d = a->ndim - 1; d >= 0; d--) {
        int64_t c = r % a->rd[d];
        r /= a->rd[d];
        int64_t ic = c + a->istart[d];
        if (ic < 0 || ic >= a->id[d]) inside = 0;
        oo += c * a->os[d];
        io += ic * a->is[d];
    }
    a->y[oo] = inside ? a->x[io] : 0.0f;
}

/* ---- pooling (ref/pool.c semantics: first maximum wins, NaN wins) ---- */
/* Average window of output (p, q) clipped to the image, and its divisor (the
 * window clipped to the padded image with count_include_pad). */
CUDA_HD int64_t ck_avg_window(const struct ck_pool *a, int64_t p, int64_t q, int64_t *hs, int64_t *he,
                              int64_t *ws, int64_t *we) {
    *hs = p * a->sh - a->pt;
    *ws = q * a->sw - a->pl;
    *he = ck_min(*hs + a->kh, a->h + a->pb);
    *we = ck_min(*ws + a->kw, a->w + a->pr);
    const int64_t padded = (*he - *hs) * (*we - *ws);
    *hs = ck_max(*hs, 0);
    *ws = ck_max(*ws, 0);
    *he = ck_min(*he, a->h);
    *we = ck_min(*we, a->w);
    return a->include_pad ? padded : ck_max(*he - *hs, 0) * ck_max(*we - *ws, 0);
}
CUDA_HD void ck_pool_fwd(int64_t i, const struct ck_pool *a) {
    const int64_t pq = a->p * a->q, pl = i / pq, p = (i % pq) / a->q, q = i % a->q;
    const float *xp = a->x + pl * a->h * a->w;
    if (a->max) {
        int64_t hs = p * a->sh - a->pt, ws = q * a->sw - a->pl;
        int64_t he = ck_min(hs + a->kh, a->h), we = ck_min(ws + a->kw, a->w);
        hs = ck_max(hs, 0);
        ws = ck_max(ws, 0);
        float best = -INFINITY;
        int64_t idx = -1;
        if (hs < he && ws < we) {
            idx = hs * a->w + ws;
            for (int64_t ih = hs; ih < he; ih++)
                for (int64_t iw = ws; iw < we; iw++) {
                    float v = xp[ih * a->w + iw];
                    if (v > best || v != v) {
                        best = v;
                        idx = ih * a->w + iw;
                    }
                }
        }
        a->y[i] = best;
        if (a->ws_out) a->ws_out[i] = (int32_t)idx;
        return;
    }
    int64_t hs, he, ws, we;
    const int64_t cnt = ck_avg_window(a, p, q, &hs, &he, &ws, &we);
    double sum = 0;
    for (int64_t ih = hs; ih < he; ih++)
        for (int64_t iw = ws; iw < we; iw++) sum += xp[ih * a->w + iw];
    a->y[i] = cnt > 0 ? (float)(sum / (double)cnt) : 0.0f;
}
/* Item i: one input element; gathers from every window that contains it. */
CUDA_HD void ck_pool_bwd(int64_t i, const struct ck_pool *a) {
    const int64_t hw = a->h * a->w, pl = i / hw, ih = (i % hw) / a->w, iw = i % a->w;
    const float *dyp = a->dy + pl * a->p * a->q;
    /* Windows p with p*sh - pt <= ih < p*sh - pt + kh. */
    int64_t p0 = ih + a->pt - a->kh + 1, q0 = iw + a->pl - a->kw + 1;
    p0 = p0 > 0 ? (p0 + a->sh - 1) / a->sh : 0;
    q0 = q0 > 0 ? (q0 + a->sw - 1) / a->sw : 0;
    const int64_t p1 = ck_min((ih + a->pt) / a->sh, a->p - 1), q1 = ck_min((iw + a->pl) / a->sw, a->q - 1);
    double acc = 0;
    for (int64_t p = p0; p <= p1; p++)
        for (int64_t q = q0; q <= q1; q++) {
            const int64_t o = p * a->q + q;
            if (a->max) {
                if (a->ws_in[pl * a->p * a->q + o] == (int32_t)(ih * a->w + iw)) acc += dyp[o];
                continue;
            }
            int64_t hs, he, ws, we;
            const int64_t cnt = ck_avg_window(a, p, q, &hs, &he, &ws, &we);
            if (cnt > 0 && ih >= hs && ih < he && iw >= ws && iw < we) acc += dyp[o] / (double)cnt;
        }
    a->y[i] = (float)acc;
}
CUDA_HD void ck_gap_fwd(int64_t i, const struct ck_gap *a) {
    double s = 0;
    for (int64_t j = 0; j < a->plane; j++) s += a->x[i * a->plane + j];
    a->y[i] = a->plane > 0 ? (float)(s / (double)a->plane) : 0.0f;
}
/* x = dy [planes], y = dx [planes * plane] */
CUDA_HD void ck_gap_bwd(int64_t i, const struct ck_gap *a) {
    a->y[i] = (float)((double)a->x[i / a->plane] / (double)a->plane);
}

/* ---- per-channel sums in parts (batch norm, bias gradients) ---- */
/* Item i = channel * parts + j; chunk j covers elements [j*m/parts, (j+1)*m/parts)
 * of the channel's m = outer * inner elements. */
CUDA_HD void ck_chsum_body(int64_t i, const struct ck_chsum *a) {
    const int64_t c = i / a->parts, j = i % a->parts, m = a->outer * a->inner;
    const int64_t lo = j * m / a->parts, hi = (j + 1) * m / a->parts;
    double s = 0, s2 = 0;
    double mean = 0, istd = 0;
    if (a->mode == CK_CHSUM_SQDEV) { /* the mean from the first pass's parts */
        for (int64_t k = 0; k < a->parts; k++) mean += a->sum_part[c * a->parts + k];
        mean = m > 0 ? mean / (double)m : 0.0;
    } else if (a->mode == CK_CHSUM_BN_BWD) {
        mean = a->mean[c];
        istd = 1.0 / sqrt((double)a->var[c] + (double)a->eps);
    }
    for (int64_t e = lo; e < hi; e++) {
        const int64_t off = ((e / a->inner) * a->ch + c) * a->inner + e % a->inner;
        const double v = a->x[off];
        if (a->mode == CK_CHSUM_SUM) {
            s += v;
        } else if (a->mode == CK_CHSUM_SQDEV) {
            s += (v - mean) * (v - mean);
        } else { /* x = dy, x2 = forward input */
            s += v;
            s2 += v * ((a->x2[off] - mean) * istd);
        }
    }
    a->part[i] = s;
    if (a->part2) a->part2[i] = s2;
}
CUDA_HD void ck_parts_sum(int64_t c, const struct ck_parts *a) {
    double s = 0;
    for (int64_t j = 0; j < a->parts; j++) s += a->part[c * a->parts + j];
    a->out[c] = (float)s;
}
CUDA_HD void ck_bn_finish(int64_t c, const struct ck_bn *a) {
    const int64_t m = a->outer * a->inner;
    double mean, var;
    if (a->train) {
        double s = 0, sq = 0;
        for (int64_t j = 0; j < a->parts; j++) s += a->part[c * a->parts + j];
        for (int64_t j = 0; j < a->parts; j++) sq += a->part2[c * a->parts + j];
        mean = m > 0 ? s / (double)m : 0.0;
        var = m > 0 ? sq / (double)m : 0.0;
        if (a->has_running) {
            const double unbiased = m > 1 ? sq / (double)(m - 1) : var, mom = a->momentum;
            a->rmean[c] = (float)((1.0 - mom) * a->rmean[c] + mom * mean);
            a->rvar[c] = (float)((1.0 - mom) * a->rvar[c] + mom * unbiased);
        }
    } else {
        mean = a->rmean[c];
        var = a->rvar[c];
    }
    if (a->smean) a->smean[c] = (float)mean;
    if (a->svar) a->svar[c] = (float)var;
    const double invstd = 1.0 / sqrt(var + (double)a->eps);
    const double gm = a->gamma ? a->gamma[c] : 1.0, bt = a->beta ? a->beta[c] : 0.0;
    a->coef[c * 3] = (float)(gm * invstd);
    a->coef[c * 3 + 1] = (float)(bt - mean * gm * invstd);
}
CUDA_HD void ck_bn_apply(int64_t i, const struct ck_bn *a) {
    const int64_t c = (i / a->inner) % a->ch;
    a->y[i] = (float)((double)a->x[i] * a->coef[c * 3] + a->coef[c * 3 + 1]);
}
/* part = sum(dy), part2 = sum(dy * xhat); coef = (k, sdy, sdyx) per channel. */
CUDA_HD void ck_bn_bwd_finish(int64_t c, const struct ck_bn *a) {
    double sdy = 0, sdyx = 0;
    for (int64_t j = 0; j < a->parts; j++) sdy += a->part[c * a->parts + j];
    for (int64_t j = 0; j < a->parts; j++) sdyx += a->part2[c * a->parts + j];
    if (a->dgamma) a->dgamma[c] = (float)sdyx;
    if (a->dbeta) a->dbeta[c] = (float)sdy;
    const double invstd = 1.0 / sqrt((double)a->svar_in[c] + (double)a->eps);
    const double gm = a->gamma ? a->gamma[c] : 1.0;
    a->coef[c * 3] = (float)(gm * invstd);
    a->coef[c * 3 + 1] = (float)sdy;
    a->coef[c * 3 + 2] = (float)sdyx;
}
CUDA_HD void ck_bn_bwd_apply(int64_t i, const struct ck_bn *a) {
    const int64_t c = (i / a->inner) % a->ch, m = a->outer * a->inner;
    const double k = a->coef[c * 3];
    if (a->train && m > 0) {
        const double invstd = 1.0 / sqrt((double)a->svar_in[c] + (double)a->eps);
        const double xhat = ((double)a->x[i] - a->smean_in[c]) * invstd;
        a->dx[i] = (float)(k / (double)m *
                           ((double)m * a->dy[i] - a->coef[c * 3 + 1] - xhat * a->coef[c * 3 + 2]));
    } else {
        a->dx[i] = (float)(a->dy[i] * k);
    }
}

/* ---- convolution by im2col ---- */
/* Item i over nimg * c*r*s * p*q: col[img][(ci*r + ri)*s + si][pi*q + qi]. */
CUDA_HD void ck_im2col_body(int64_t i, const struct ck_im2col *a) {
    const int64_t pq = a->p * a->q, crs = a->c * a->r * a->s;
    const int64_t img = i / (crs * pq), row = (i / pq) % crs, o = i % pq;
    const int64_t ci = row / (a->r * a->s), ri = (row / a->s) % a->r, si = row % a->s;
    const int64_t ih = (o / a->q) * a->sh - a->ph + ri * a->dh, iw = (o % a->q) * a->sw - a->pw + si * a->dw;
    float v = 0.0f;
    if (ih >= 0 && ih < a->h && iw >= 0 && iw < a->w)
        v = a->x[(((a->img0 + img) * a->c + ci) * a->h + ih) * a->w + iw];
    a->col[i] = v;
}
/* Item i over nimg * c*h*w: dx element = sum of the col entries that read it. */
CUDA_HD void ck_col2im_body(int64_t i, const struct ck_im2col *a) {
    const int64_t hw = a->h * a->w, pq = a->p * a->q, rs = a->r * a->s;
    const int64_t img = i / (a->c * hw), ci = (i / hw) % a->c, ih = (i % hw) / a->w, iw = i % a->w;
    const float *col = a->col_in + (img * a->c + ci) * rs * pq;
    double acc = 0;
    for (int64_t ri = 0; ri < a->r; ri++) {
        const int64_t t = ih + a->ph - ri * a->dh; /* = p * sh */
        if (t < 0 || t % a->sh) continue;
        const int64_t p = t / a->sh;
        if (p >= a->p) continue;
        for (int64_t si = 0; si < a->s; si++) {
            const int64_t u = iw + a->pw - si * a->dw;
            if (u < 0 || u % a->sw) continue;
            const int64_t q = u / a->sw;
            if (q >= a->q) continue;
            acc += col[(ri * a->s + si) * pq + p * a->q + q];
        }
    }
    a->dx[(a->img0 * a->c) * hw + i] = (float)acc;
}
CUDA_HD void ck_bias_body(int64_t i, const struct ck_bias *a) {
    a->y[i] += a->bias[(i / a->inner) % a->ch];
}

/* ---- dropout (ref/dropout.c: mask from (seed, node, step*numel + i)) ---- */
CUDA_HD void ck_dropout_fwd(int64_t i, const struct ck_dropout *a) {
    float mk = 1.0f;
    uint64_t k = a->world > 1 ? ((uint64_t)(i / a->per) * a->world + a->rank) * (uint64_t)a->per + (uint64_t)(i % a->per)
                              : (uint64_t)i; /* deft_dropout_counter */
    if (a->active) mk = ck_uniform(a->seed, a->stream, a->base + k) >= a->p ? a->scale : 0.0f;
    if (a->mask) a->mask[i] = mk;
    a->y[i] = a->x[i] * mk;
}
CUDA_HD void ck_dropout_bwd(int64_t i, const struct ck_dropout *a) {
    a->y[i] = a->mask_in ? a->x[i] * a->mask_in[i] : a->x[i];
}

/* ---- softmax over lines (outer, dim, inner): item = line ---- */
CUDA_HD void ck_softmax_fwd(int64_t l, const struct ck_softmax *a) {
    const int64_t base = (l / a->inner) * a->dim * a->inner + l % a->inner;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < a->dim; j++) mx = fmax(mx, (double)a->x[base + j * a->inner]);
    for (int64_t j = 0; j < a->dim; j++) sum += exp(a->x[base + j * a->inner] - mx);
    for (int64_t j = 0; j < a->dim; j++)
        a->y[base + j * a->inner] = (float)(exp(a->x[base + j * a->inner] - mx) / sum);
}
/* x = forward output y, dy = incoming gradient, y = dx */
CUDA_HD void ck_softmax_bwd(int64_t l, const struct ck_softmax *a) {
    const int64_t base = (l / a->inner) * a->dim * a->inner + l % a->inner;
    double dot = 0;
    for (int64_t j = 0; j < a->dim; j++) dot += (double)a->dy[base + j * a->inner] * a->x[base + j * a->inner];
    for (int64_t j = 0; j < a->dim; j++) {
        const int64_t k = base + j * a->inner;
        a->y[k] = (float)(a->x[k] * (a->dy[k] - dot));
    }
}

/* ---- losses (ref/loss.c) ---- */
CUDA_HD double ck_row_lse(const float *x, int64_t c, int64_t stride) {
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < c; j++) mx = fmax(mx, (double)x[j * stride]);
    for (int64_t j = 0; j < c; j++) sum += exp(x[j * stride] - mx);
    return mx + log(sum);
}
CUDA_HD int64_t ck_class_id(float t, int64_t c) {
    if (!(t >= 0) || t >= (float)c) return -1;
    return (int64_t)t;
}
CUDA_HD double ck_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
/* Element loss l and derivative d for kinds 1.. (bce, focal, l1, smooth_l1, l2). */
CUDA_HD void ck_elem_loss(const struct ck_loss *a, double x, double t, double *l, double *d) {
    switch (a->kind) {
    case 1:
        *l = fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
        *d = ck_sigmoid(x) - t;
        return;
    case 2: {
        const double p = ck_sigmoid(x), ce = fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
        const double pt = p * t + (1 - p) * (1 - t), mod = 1 - pt, gm = a->gamma;
        const double at = a->alpha >= 0 ? a->alpha * t + (1 - a->alpha) * (1 - t) : 1.0;
        const double dmod = -(2 * t - 1) * p * (1 - p);
        const double modg = pow(mod, gm);
        const double dmodg = gm != 0 && mod > 0 ? gm * pow(mod, gm - 1) * dmod : 0.0;
        *l = at * ce * modg;
        *d = at * ((p - t) * modg + ce * dmodg);
        return;
    }
    case 3: {
        const double df = x - t;
        *l = fabs(df);
        *d = df > 0 ? 1.0 : (df < 0 ? -1.0 : 0.0);
        return;
    }
    case 4: {
        const double df = x - t, ad = fabs(df), beta = a->beta;
        if (ad < beta) {
            *l = 0.5 * df * df / beta;
            *d = df / beta;
        } else {
            *l = ad - 0.5 * beta;
            *d = df > 0 ? 1.0 : (df < 0 ? -1.0 : 0.0);
        }
        return;
    }
    default: {
        const double df = x - t;
        *l = df * df;
        *d = 2 * df;
        return;
    }
    }
}
/* Item: a row (softmax CE, kind 0) or an element (the rest): part = its loss,
 * count = 1 when it contributes. */
CUDA_HD void ck_loss_part(int64_t r, const struct ck_loss *a) {
    if (a->kind != 0) {
        double l, d;
        ck_elem_loss(a, a->x[r], a->t[r], &l, &d);
        a->part[r] = l;
        a->count[r] = 1;
        return;
    }
    const int64_t c = a->c, sp = a->sp, base = (r / sp) * c * sp + r % sp;
    const double lse = ck_row_lse(a->x + base, c, sp), eps = a->eps;
    double l = 0;
    if (a->probs) {
        for (int64_t j = 0; j < c; j++) {
            const double tj = (1.0 - eps) * a->t[base + j * sp] + eps / (double)c;
            l -= tj * (a->x[base + j * sp] - lse);
        }
        a->count[r] = 1;
    } else {
        const int64_t y = ck_class_id(a->t[r], c);
        if (y < 0) {
            a->part[r] = 0;
            a->count[r] = 0;
            return;
        }
        double sum_logp = 0;
        for (int64_t j = 0; j < c; j++) sum_logp += a->x[base + j * sp] - lse;
        l = -(1.0 - eps) * (a->x[base + y * sp] - lse) - eps / (double)c * sum_logp;
        a->count[r] = 1;
    }
    a->part[r] = l;
}
/* One item: sums the parts in order (loss[0] = mean; count[0] = contributing rows). */
CUDA_HD void ck_loss_finish(int64_t i, const struct ck_loss *a) {
    double total = 0, cnt = 0;
    for (int64_t r = 0; r < a->rows; r++) {
        total += a->part[r];
        cnt += a->count[r];
    }
    if (a->loss) a->loss[0] = cnt > 0 ? (float)(total / cnt) : 0.0f;
    a->count[0] = cnt; /* row 0's own flag is no longer needed */
}
/* Item: a row (softmax CE) or an element; count[0] holds the total count. */
CUDA_HD void ck_loss_bwd(int64_t r, const struct ck_loss *a) {
    const double scale = a->dloss[0], cnt = a->count[0];
    const double k = cnt > 0 ? scale / cnt : 0.0;
    if (a->kind != 0) {
        double l, d;
        ck_elem_loss(a, a->x[r], a->t[r], &l, &d);
        a->dx[r] = (float)(d * k);
        return;
    }
    const int64_t c = a->c, sp = a->sp, base = (r / sp) * c * sp + r % sp;
    const double lse = ck_row_lse(a->x + base, c, sp), eps = a->eps;
    const int64_t y = a->probs ? 0 : ck_class_id(a->t[r], c);
    double qsum = 1.0;
    if (a->probs) {
        qsum = 0;
        for (int64_t j = 0; j < c; j++) qsum += (1.0 - eps) * a->t[base + j * sp] + eps / (double)c;
    }
    for (int64_t j = 0; j < c; j++) {
        const int64_t i = base + j * sp;
        if (y < 0) {
            a->dx[i] = 0.0f;
            continue;
        }
        const double p = exp(a->x[i] - lse);
        const double q = a->probs ? (1.0 - eps) * a->t[i] + eps / (double)c
                                  : (j == y ? 1.0 - eps : 0.0) + eps / (double)c;
        a->dx[i] = (float)(k * (p * qsum - q));
    }
}

/* ---- optimizers (src/optim/optim.c, term by term) ---- */
CUDA_HD float ck_reg_grad(const struct ck_optim *o, float g, float p) {
    if (!o->decay) return g;
    if (o->kind != 2 && o->wd > 0) g += o->wd * p;
    if (o->l1 > 0) g += o->l1 * (float)((p > 0) - (p < 0));
    return g;
}
CUDA_HD void ck_optim_body(int64_t i, const struct ck_optim *o) {
    float *p = o->p;
    if (o->kind == 0) { /* sgd */
        float g = ck_reg_grad(o, o->g[i] * o->gscale, p[i]);
        if (o->has_b0) {
            o->b0[i] = o->first ? g : o->momentum * o->b0[i] + g;
            g = o->nesterov ? g + o->momentum * o->b0[i] : o->b0[i];
        }
        p[i] -= o->lr * g;
    } else if (o->kind == 1 || o->kind == 2) { /* adam, adamw */
        if (o->decoupled) p[i] *= 1.0f - o->lr * o->wd;
        float g = ck_reg_grad(o, o->g[i] * o->gscale, p[i]);
        o->b0[i] = o->beta1 * o->b0[i] + (1 - o->beta1) * g;
        o->b1[i] = o->beta2 * o->b1[i] + (1 - o->beta2) * g * g;
        float denom = sqrtf(o->b1[i]) / o->bc2s + o->eps;
        p[i] -= (o->lr / o->bc1) * o->b0[i] / denom;
    } else { /* rmsprop */
        float g = ck_reg_grad(o, o->g[i] * o->gscale, p[i]);
        o->b0[i] = o->rho * o->b0[i] + (1 - o->rho) * g * g;
        float avg = sqrtf(o->b0[i]) + o->eps;
        if (o->has_b1) {
            o->b1[i] = o->momentum * o->b1[i] + g / avg;
            p[i] -= o->lr * o->b1[i];
        } else {
            p[i] -= o->lr * g / avg;
        }
    }
}
CUDA_HD void ck_gstat_body(int64_t j, const struct ck_gstat *a) {
    const int64_t lo = j * a->n / a->parts, hi = (j + 1) * a->n / a->parts;
    double s = 0, bad = 0;
    for (int64_t i = lo; i < hi; i++) {
        const float g = a->g[i];
        if (g - g != 0) bad += 1; /* NaN or Inf */
        s += (double)g * g;
    }
    a->part[j] = s;
    a->part2[j] = bad;
}

#endif

/* seg_loss.c - TAO UNet's training losses on host NCHW logits: softmax cross
 * entropy (PyTorch's weighted mean with an ignore id), TAO's per-pixel soft
 * Dice, their sum, and the binary sigmoid head. Definitions: deft/seg.h.
 *
 * One validation pass over the int32 targets finds the normalizers (sum of
 * weights, count of valid pixels), so the main pass writes final gradients
 * in one sweep: per block of pixels, channel-outer loops over contiguous
 * memory, the softmax exponentials parked in the gradient buffer and
 * rescaled in place. Work is split in fixed chunks whose partial sums are
 * added in order, so the loss does not depend on the thread count. */
#include <math.h>
#include <string.h>
#include <strings.h>
#include "deft/seg.h"
#include "deft/tensor.h"

#define SEG_BLOCK 256  /* pixels per inner block: per-pixel scalars on the stack */
#define SEG_CHUNK 4096 /* pixels per parallel task (fixed: deterministic sums) */

static const char *const kind_names[] = {"cross_entropy", "dice", "cross_dice_sum"};

enum deft_status deft_seg_loss_kind_parse(const char *s, enum deft_seg_loss_kind *out) {
    for (int k = 0; s && k < 3; k++)
        if (!strcasecmp(s, kind_names[k])) {
            *out = (enum deft_seg_loss_kind)k;
            return DEFT_OK;
        }
    return deft_set_error(DEFT_ERR_INVALID_ARG, "unknown segmentation loss '%s' (cross_entropy, dice, cross_dice_sum)",
                          s ? s : "(null)");
}

const char *deft_seg_loss_kind_name(enum deft_seg_loss_kind k) {
    return (unsigned)k < 3 ? kind_names[k] : "?";
}

/* Everything a chunk needs; ce_scale/dice_scale fold the loss kind and the
 * normalizers (1 / sum of weights, 1 / valid pixels) into the gradient. */
struct seg_ctx {
    const struct deft_seg_loss_opts *o;
    const float *logits;
    const int32_t *target;
    float *grad;
    size_t hw;
    int C;
    double ce_scale, dice_scale;
};

struct seg_part {
    double ce;   /* sum of w[y] * -log p[y] */
    double dice; /* sum of 1 - d */
};

static double weight_of(const struct deft_seg_loss_opts *o, int y) {
    return o->class_weights ? (double)o->class_weights[y] : 1.0;
}

static bool valid_id(const struct deft_seg_loss_opts *o, int32_t y) {
    return y != o->ignore_id && y >= 0 && y < o->n_classes;
}

static enum deft_status check_opts(const struct deft_seg_loss_opts *o, const float *logits, const int32_t *target,
                                   int n, int h, int w) {
    if (!o || !logits || !target || n < 1 || h < 1 || w < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg loss: bad arguments (batch %d, %dx%d)", n, h, w);
    if ((unsigned)o->kind > DEFT_SEG_LOSS_CROSS_DICE_SUM)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg loss: unknown loss kind %d", (int)o->kind);
    if (o->sigmoid ? o->n_classes != 2 : o->n_classes < 2)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "seg loss: %d classes with a %s head (%s)", o->n_classes,
                              o->sigmoid ? "sigmoid" : "softmax", o->sigmoid ? "binary: 2" : "at least 2");
    for (int c = 0; o->class_weights && c < o->n_classes; c++)
        if (!isfinite(o->class_weights[c]) || o->class_weights[c] < 0)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "seg loss: class weight %d is %g (must be finite and >= 0)", c,
                                  (double)o->class_weights[c]);
    return DEFT_OK;
}

/* The normalizers, and every target checked before anything is written. */
static enum deft_status scan_targets(const struct deft_seg_loss_opts *o, const int32_t *t, size_t total, int h, int w,
                                     double *wsum, int64_t *valid) {
    double ws = 0;
    int64_t nv = 0;
    for (size_t i = 0; i < total; i++) {
        int32_t y = t[i];
        if (y == o->ignore_id) continue;
        if (y < 0 || y >= o->n_classes) {
            size_t hw = (size_t)h * (size_t)w;
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "seg loss: target id %d at pixel %zu (image %zu, row %zu, column %zu) is outside "
                                  "[0, %d) and is not the ignore id %d",
                                  (int)y, i, i / hw, i % hw / (size_t)w, i % (size_t)w, o->n_classes, o->ignore_id);
        }
        ws += weight_of(o, y);
        nv++;
    }
    *wsum = ws;
    *valid = nv;
    return DEFT_OK;
}

/* Per-pixel results of the softmax block: gradient coefficients such that
 * d(loss)/d(x_c) = p_c (alpha + beta p_c) - [c == y] delta. */
struct seg_block {
    float max[SEG_BLOCK];
    double sum[SEG_BLOCK], sq[SEG_BLOCK];
    double inv_sum[SEG_BLOCK], alpha[SEG_BLOCK], beta[SEG_BLOCK], delta[SEG_BLOCK];
    int32_t y[SEG_BLOCK]; /* -1: ignored */
};

/* Pass 1 and 2: running max, then sum of e = exp(x - max) and of e^2 (so
 * sum p^2 = sq / sum^2); e is parked in the gradient buffer for pass 3. */
static void softmax_sums(const struct seg_ctx *x, const float *lg, float *g, size_t m, struct seg_block *b) {
    memcpy(b->max, lg, m * sizeof *lg);
    for (int c = 1; c < x->C; c++) {
        const float *xc = lg + (size_t)c * x->hw;
        for (size_t j = 0; j < m; j++) b->max[j] = xc[j] > b->max[j] ? xc[j] : b->max[j];
    }
    for (size_t j = 0; j < m; j++) b->sum[j] = b->sq[j] = 0;
    for (int c = 0; c < x->C; c++) {
        const float *xc = lg + (size_t)c * x->hw;
        float *gc = g ? g + (size_t)c * x->hw : NULL;
        for (size_t j = 0; j < m; j++) {
            float e = expf(xc[j] - b->max[j]);
            b->sum[j] += e;
            b->sq[j] += (double)e * e;
            if (gc) gc[j] = e;
        }
    }
}

/* One pixel's losses and gradient coefficients. With p = p[y] and
 * S = sum p^2 + 1 the Dice is d = 2p/S; its derivative through the softmax
 * is p_c (g_c - G) with g_c = dl/dp_c = -2[c==y]/S + 4 p p_c / S^2 and
 * G = sum_c p_c g_c = -2p/S + 4p(S-1)/S^2. */
static void softmax_pixel(const struct seg_ctx *x, const float *lg, size_t j, int32_t y, struct seg_block *b,
                          struct seg_part *part) {
    if (!valid_id(x->o, y)) {
        b->y[j] = -1;
        return;
    }
    double wy = weight_of(x->o, y);
    double logp = (double)lg[(size_t)y * x->hw + j] - b->max[j] - log(b->sum[j]);
    double p = exp(logp), inv = 1.0 / b->sum[j];
    double S = b->sq[j] * inv * inv + 1.0;
    part->ce -= wy * logp;
    part->dice += 1.0 - 2.0 * p / S;
    double a_ce = x->ce_scale * wy, a_d = x->dice_scale;
    double G = -2.0 * p / S + 4.0 * p * (S - 1.0) / (S * S);
    b->y[j] = y;
    b->inv_sum[j] = inv;
    b->alpha[j] = a_ce - a_d * G;
    b->beta[j] = a_d * 4.0 * p / (S * S);
    b->delta[j] = a_ce + a_d * 2.0 * p / S;
}

/* Pass 3: gradients from the parked exponentials. */
static void softmax_grad(const struct seg_ctx *x, float *g, size_t m, const struct seg_block *b) {
    for (int c = 0; c < x->C; c++) {
        float *gc = g + (size_t)c * x->hw;
        for (size_t j = 0; j < m; j++) {
            if (b->y[j] < 0) {
                gc[j] = 0.0f;
                continue;
            }
            double p = gc[j] * b->inv_sum[j];
            double v = p * (b->alpha[j] + b->beta[j] * p) - (c == b->y[j] ? b->delta[j] : 0.0);
            gc[j] = (float)v;
        }
    }
}

static void softmax_block(const struct seg_ctx *x, size_t img, size_t j0, size_t m, struct seg_part *part) {
    struct seg_block b;
    size_t off = img * (size_t)x->C * x->hw + j0;
    const float *lg = x->logits + off;
    float *g = x->grad ? x->grad + off : NULL;
    const int32_t *t = x->target + img * x->hw + j0;
    softmax_sums(x, lg, g, m, &b);
    for (size_t j = 0; j < m; j++) softmax_pixel(x, lg, j, t[j], &b, part);
    if (g) softmax_grad(x, g, m, &b);
}

/* Binary head, one pixel: BCE with logits (stable form) and TAO's one-channel
 * Dice d = 2pt/(p^2+t^2): 2p/(p^2+1) at t = 1, 0 (no gradient) at t = 0. */
static float sigmoid_pixel(const struct seg_ctx *x, float logit, int32_t y, struct seg_part *part) {
    if (!valid_id(x->o, y)) return 0.0f;
    double z = logit, t = y, wy = weight_of(x->o, y);
    double e = exp(-fabs(z));
    double p = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    part->ce += wy * (fmax(z, 0.0) - z * t + log1p(e));
    double g = x->ce_scale * wy * (p - t);
    if (y == 1) {
        double den = p * p + 1.0;
        part->dice += 1.0 - 2.0 * p / den;
        g -= x->dice_scale * 2.0 * (1.0 - p * p) / (den * den) * p * (1.0 - p);
    } else {
        part->dice += 1.0;
    }
    return (float)g;
}

static void sigmoid_block(const struct seg_ctx *x, size_t img, size_t j0, size_t m, struct seg_part *part) {
    size_t off = img * x->hw + j0;
    for (size_t j = 0; j < m; j++) {
        float g = sigmoid_pixel(x, x->logits[off + j], x->target[off + j], part);
        if (x->grad) x->grad[off + j] = g;
    }
}

static void run_chunk(const struct seg_ctx *x, size_t img, size_t j0, size_t j1, struct seg_part *part) {
    for (size_t j = j0; j < j1; j += SEG_BLOCK) {
        size_t m = j1 - j < SEG_BLOCK ? j1 - j : SEG_BLOCK;
        if (x->o->sigmoid) sigmoid_block(x, img, j, m, part);
        else softmax_block(x, img, j, m, part);
    }
}

enum deft_status deft_seg_loss(const struct deft_seg_loss_opts *o, const float *logits, const int32_t *target, int n,
                               int h, int w, struct deft_seg_loss_terms *terms, float *grad) {
    enum deft_status s = check_opts(o, logits, target, n, h, w);
    if (s) return s;
    size_t hw = (size_t)h * (size_t)w;
    double wsum = 0;
    int64_t valid = 0;
    s = scan_targets(o, target, (size_t)n * hw, h, w, &wsum, &valid);
    if (s) return s;
    bool use_ce = o->kind != DEFT_SEG_LOSS_DICE, use_dice = o->kind != DEFT_SEG_LOSS_CROSS_ENTROPY;
    struct seg_ctx x = {o, logits, target, grad, hw, o->sigmoid ? 1 : o->n_classes,
                        use_ce && wsum > 0 ? 1.0 / wsum : 0.0, use_dice && valid > 0 ? 1.0 / (double)valid : 0.0};
    size_t per_img = (hw + SEG_CHUNK - 1) / SEG_CHUNK, n_chunks = (size_t)n * per_img;
    struct seg_part *parts = deft_calloc(n_chunks, sizeof *parts);
    if (!parts) return deft_set_error(DEFT_ERR_NOMEM, "seg loss: out of memory");
    #pragma omp parallel for schedule(dynamic, 1) if (n_chunks > 1)
    for (long k = 0; k < (long)n_chunks; k++) {
        size_t img = (size_t)k / per_img, j0 = (size_t)k % per_img * SEG_CHUNK;
        run_chunk(&x, img, j0, j0 + SEG_CHUNK < hw ? j0 + SEG_CHUNK : hw, &parts[k]);
    }
    double ce = 0, dice = 0;
    for (size_t k = 0; k < n_chunks; k++) ce += parts[k].ce, dice += parts[k].dice;
    deft_free(parts);
    struct deft_seg_loss_terms t = {0};
    t.ce = wsum > 0 ? ce / wsum : 0.0;
    t.dice = valid > 0 ? dice / (double)valid : 0.0;
    t.total = (use_ce ? t.ce : 0.0) + (use_dice ? t.dice : 0.0);
    t.pixels = valid;
    if (terms) *terms = t;
    return DEFT_OK;
}

enum deft_status deft_seg_host_loss(void *user, int n_outputs, const float *const *outputs,
                                    const struct deft_shape *shapes, const void *targets, float *const *grads,
                                    double *loss, double *terms) {
    const struct deft_seg_loss_opts *o = user;
    if (!o || n_outputs < 1 || shapes[0].ndim != 4)
        return deft_set_error(DEFT_ERR_SHAPE, "seg loss: the model must give one [n, C, h, w] output");
    const int64_t *d = shapes[0].d;
    int64_t want = o->sigmoid ? 1 : o->n_classes;
    if (d[1] != want)
        return deft_set_error(DEFT_ERR_SHAPE, "seg loss: the model gives %lld channels for %d classes (%s head: %lld)",
                              (long long)d[1], o->n_classes, o->sigmoid ? "sigmoid" : "softmax", (long long)want);
    if (d[0] > INT32_MAX || d[2] > INT32_MAX || d[3] > INT32_MAX)
        return deft_set_error(DEFT_ERR_SHAPE, "seg loss: output too large");
    struct deft_seg_loss_terms t;
    enum deft_status s = deft_seg_loss(o, outputs[0], targets, (int)d[0], (int)d[2], (int)d[3], &t, grads[0]);
    if (s) return s;
    *loss = t.total;
    if (terms) terms[0] = t.ce, terms[1] = t.dice;
    return DEFT_OK;
}

/* augment.c - the per-sample transform: crop box selection (torchvision
 * RandomResizedCrop, TAO makenet random/center crop, plain resize), flips,
 * rotation, color jitter (torchvision semantics) and preprocessing.
 *
 * Random draws: deft_rng_uniform(seed, stream, k) with a fixed k range per
 * augmentation, so enabling one augmentation never shifts another's draws. */
#include <math.h>
#include <string.h>
#include "deft/data.h"
#include "color.h"

enum { /* draw index bases */
    K_CROP = 0,       /* RandomResizedCrop: 10 tries x 4 draws; TAO random: 3 */
    K_HFLIP = 100,
    K_VFLIP = 101,
    K_ROT = 110,      /* prob, angle */
    K_JITTER = 120,   /* order (4), factors (4), enable */
    K_BETA = 1000,    /* beta sampling uses k >= 1000 */
};

static float U(uint64_t seed, uint64_t stream, uint64_t k) { return deft_rng_uniform(seed, stream, k); }

void deft_augment_defaults(struct deft_augment *a) {
    memset(a, 0, sizeof *a);
    a->crop = DEFT_CROP_NONE;
    a->scale_min = 0.08f;
    a->scale_max = 1.0f;
    a->ratio_min = 3.0f / 4.0f;
    a->ratio_max = 4.0f / 3.0f;
}

void deft_transform_defaults(struct deft_transform *t) {
    memset(t, 0, sizeof *t);
    t->out_w = t->out_h = 224;
    t->resize = DEFT_RESIZE_PLAIN;
    t->crop_padding = 32;
    t->dct_scaling = true;
    deft_augment_defaults(&t->aug);
    deft_preprocess_init(&t->pre, DEFT_PREPROCESS_CAFFE);
}

/* Python's random.randint(0, n) style: uniform integer in [0, n]. */
static int rand_int_incl(uint64_t seed, uint64_t stream, uint64_t k, int n) {
    if (n <= 0) return 0;
    uint64_t r = deft_rng_u64(seed, stream, k);
    return (int)(r % (uint64_t)(n + 1));
}

void deft_random_resized_crop_box(int W, int H, const struct deft_augment *a, uint64_t seed,
                                  uint64_t stream, int box[4]) {
    double area = (double)W * H;
    double lr0 = log(a->ratio_min), lr1 = log(a->ratio_max);
    for (int t = 0; t < 10; t++) {
        uint64_t k = K_CROP + 4 * (uint64_t)t;
        double target = area * (a->scale_min + (a->scale_max - a->scale_min) * (double)U(seed, stream, k));
        double ar = exp(lr0 + (lr1 - lr0) * (double)U(seed, stream, k + 1));
        int w = (int)nearbyint(sqrt(target * ar));
        int h = (int)nearbyint(sqrt(target / ar));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            box[1] = rand_int_incl(seed, stream, k + 2, H - h);
            box[0] = rand_int_incl(seed, stream, k + 3, W - w);
            box[2] = w;
            box[3] = h;
            return;
        }
    }
    /* Fallback: central crop with the ratio clamped into range. */
    double in_ratio = (double)W / H;
    int w, h;
    if (in_ratio < a->ratio_min) {
        w = W;
        h = (int)nearbyint(w / a->ratio_min);
    } else if (in_ratio > a->ratio_max) {
        h = H;
        w = (int)nearbyint(h * a->ratio_max);
    } else {
        w = W;
        h = H;
    }
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    if (w > W) w = W;
    if (h > H) h = H;
    box[0] = (W - w) / 2;
    box[1] = (H - h) / 2;
    box[2] = w;
    box[3] = h;
}

/* Source box (full-resolution coordinates) for an image of W x H. */
static void choose_box(const struct deft_transform *t, int W, int H, uint64_t seed, uint64_t stream,
                       struct deft_resample *r) {
    int tw = t->out_w, th = t->out_h;
    r->clamp_to_box = false;
    switch (t->aug.crop) {
    case DEFT_CROP_RANDOM_RESIZED: {
        int b[4];
        deft_random_resized_crop_box(W, H, &t->aug, seed, stream, b);
        r->x = (float)b[0];
        r->y = (float)b[1];
        r->w = (float)b[2];
        r->h = (float)b[3];
        r->clamp_to_box = true; /* torchvision crops, then resizes */
        return;
    }
    case DEFT_CROP_TAO_RANDOM: {
        /* makenet preprocess_crop.py "random": resize (aspect kept) to cover
         * (tw, th) / U(0.45, 1), then a random tw x th window. */
        double cf = 0.45 + 0.55 * (double)U(seed, stream, K_CROP);
        double ratio = fmax(tw / cf / W, th / cf / H);
        int rw = (int)(W * ratio), rh = (int)(H * ratio);
        if (rw < tw) rw = tw;
        if (rh < th) rh = th;
        int left = rand_int_incl(seed, stream, K_CROP + 1, rw - tw);
        int top = rand_int_incl(seed, stream, K_CROP + 2, rh - th);
        double sx = (double)W / rw, sy = (double)H / rh;
        r->x = (float)(left * sx);
        r->y = (float)(top * sy);
        r->w = (float)(tw * sx);
        r->h = (float)(th * sy);
        return;
    }
    default:
        break;
    }
    if (t->resize == DEFT_RESIZE_CENTER_CROP) {
        /* makenet "center": cover (tw + pad, th + pad), then center crop. */
        int pad = t->crop_padding;
        double ratio = fmax((double)(tw + pad) / W, (double)(th + pad) / H);
        int rw = (int)(W * ratio), rh = (int)(H * ratio);
        if (rw < tw) rw = tw;
        if (rh < th) rh = th;
        int left = (int)nearbyint(rw / 2.0) - (int)nearbyint(tw / 2.0);
        int top = (int)nearbyint(rh / 2.0) - (int)nearbyint(th / 2.0);
        double sx = (double)W / rw, sy = (double)H / rh;
        r->x = (float)(left * sx);
        r->y = (float)(top * sy);
        r->w = (float)(tw * sx);
        r->h = (float)(th * sy);
        return;
    }
    r->x = 0;
    r->y = 0;
    r->w = (float)W;
    r->h = (float)H;
}

/* ---- pixel ops on CHW 0..255 floats --------------------------------------- */

void deft_augment_hflip(float *chw, int h, int w) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++) {
            float *row = chw + ((size_t)c * h + y) * w;
            for (int x = 0; x < w / 2; x++) {
                float t = row[x];
                row[x] = row[w - 1 - x];
                row[w - 1 - x] = t;
            }
        }
}

void deft_augment_vflip(float *chw, int h, int w) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h / 2; y++) {
            float *a = chw + ((size_t)c * h + y) * w, *b = chw + ((size_t)c * h + h - 1 - y) * w;
            for (int x = 0; x < w; x++) {
                float t = a[x];
                a[x] = b[x];
                b[x] = t;
            }
        }
}

void deft_augment_rotate(float *chw, int h, int w, float deg, float *scratch) {
    size_t plane = (size_t)h * w;
    memcpy(scratch, chw, sizeof(float) * 3 * plane);
    double th = deg * 3.14159265358979323846 / 180.0, cs = cos(th), sn = sin(th);
    double cx = w * 0.5, cy = h * 0.5;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
            /* inverse map of a counter-clockwise rotation (y axis down) */
            double sx = cs * dx - sn * dy + cx - 0.5;
            double sy = sn * dx + cs * dy + cy - 0.5;
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            double fx = sx - x0, fy = sy - y0;
            double wt[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
            int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
            for (int c = 0; c < 3; c++) {
                const float *s = scratch + c * plane;
                double acc = 0;
                for (int k = 0; k < 4; k++)
                    if (xs[k] >= 0 && xs[k] < w && ys[k] >= 0 && ys[k] < h)
                        acc += wt[k] * s[(size_t)ys[k] * w + xs[k]]; /* outside: fill 0 */
                chw[c * plane + (size_t)y * w + x] = (float)acc;
            }
        }
}

static float clamp255(float v) { return v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v); }

void deft_adjust_brightness(float *chw, int h, int w, float f) {
    size_t n = (size_t)3 * h * w;
    for (size_t i = 0; i < n; i++) chw[i] = clamp255(chw[i] * f);
}

static float gray(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

void deft_adjust_contrast(float *chw, int h, int w, float f) {
    size_t plane = (size_t)h * w;
    double sum = 0;
    for (size_t i = 0; i < plane; i++) sum += gray(chw[i], chw[plane + i], chw[2 * plane + i]);
    float mean = (float)(sum / (double)plane);
    for (size_t i = 0; i < 3 * plane; i++) chw[i] = clamp255(f * chw[i] + (1.0f - f) * mean);
}

void deft_adjust_saturation(float *chw, int h, int w, float f) {
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++) {
        float g = gray(chw[i], chw[plane + i], chw[2 * plane + i]);
        for (int c = 0; c < 3; c++) chw[c * plane + i] = clamp255(f * chw[c * plane + i] + (1.0f - f) * g);
    }
}

void deft_adjust_hue(float *chw, int h, int w, float shift) {
    /* torchvision's rgb->hsv->rgb with the hue in sixths of a turn, kept in
     * 0..255 units (HSV is linear in V): p = min, q/t interpolate. */
    size_t plane = (size_t)h * w;
    float *R = chw, *G = chw + plane, *B = chw + 2 * plane;
    float sh6 = 6.0f * shift;
    for (size_t i = 0; i < plane; i++) {
        float r = R[i], g = G[i], b = B[i];
        float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
        float cr = maxc - minc;
        if (cr == 0.0f) continue; /* gray: hue shift is a no-op */
        float h6 = deft_rgb_hue6(r, g, b, maxc, cr) + sh6;
        while (h6 < 0.0f) h6 += 6.0f;
        while (h6 >= 6.0f) h6 -= 6.0f;
        deft_hue6_to_rgb(h6, maxc, minc, cr, &r, &g, &b);
        R[i] = r;
        G[i] = g;
        B[i] = b;
    }
}

/* gray: saturation and hue leave a grey image as it is (torchvision and PIL
 * skip them on one channel); the draws are made all the same. */
static void color_jitter(const struct deft_augment *a, float *chw, int h, int w, bool gray, uint64_t seed,
                         uint64_t stream) {
    int order[4] = {0, 1, 2, 3};
    if (!a->jitter_fixed_order) /* Fisher-Yates, like torch.randperm(4) in spirit */
        for (int i = 3; i > 0; i--) {
            int j = (int)(deft_rng_u64(seed, stream, K_JITTER + (uint64_t)i) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    for (int i = 0; i < 4; i++) {
        float u = U(seed, stream, K_JITTER + 4 + (uint64_t)order[i]);
        switch (order[i]) {
        case 0:
            if (a->brightness > 0) {
                float lo = fmaxf(0.0f, 1.0f - a->brightness), hi = 1.0f + a->brightness;
                deft_adjust_brightness(chw, h, w, lo + (hi - lo) * u);
            }
            break;
        case 1:
            if (a->contrast > 0) {
                float lo = fmaxf(0.0f, 1.0f - a->contrast), hi = 1.0f + a->contrast;
                deft_adjust_contrast(chw, h, w, lo + (hi - lo) * u);
            }
            break;
        case 2:
            if (a->saturation > 0 && !gray) {
                float lo = fmaxf(0.0f, 1.0f - a->saturation), hi = 1.0f + a->saturation;
                deft_adjust_saturation(chw, h, w, lo + (hi - lo) * u);
            }
            break;
        default:
            if (a->hue > 0 && !gray) {
                float hmax = fminf(a->hue, 0.5f);
                deft_adjust_hue(chw, h, w, -hmax + 2.0f * hmax * u);
            }
            break;
        }
    }
}

/* Everything after the resample: flips, rotation, jitter, preprocessing, on
 * the three planes of out (a grey image: three equal planes, the first kept). */
static enum deft_status finish(const struct deft_transform *t, uint64_t seed, uint64_t stream, float *out) {
    const struct deft_augment *a = &t->aug;
    int h = t->out_h, w = t->out_w;
    if (a->hflip_prob > 0 && U(seed, stream, K_HFLIP) < a->hflip_prob) deft_augment_hflip(out, h, w);
    if (a->vflip_prob > 0 && U(seed, stream, K_VFLIP) < a->vflip_prob) deft_augment_vflip(out, h, w);
    if (a->rotate_deg > 0 && a->rotate_prob > 0 && U(seed, stream, K_ROT) < a->rotate_prob) {
        float deg = a->rotate_deg * (2.0f * U(seed, stream, K_ROT + 1) - 1.0f);
        float *scratch = deft_malloc(sizeof(float) * 3 * (size_t)h * w);
        if (!scratch) return deft_set_error(DEFT_ERR_NOMEM, "rotate: out of memory");
        deft_augment_rotate(out, h, w, deg, scratch);
        deft_free(scratch);
    }
    if (a->brightness > 0 || a->contrast > 0 || a->saturation > 0 || a->hue > 0)
        color_jitter(a, out, h, w, deft_preprocess_channels(&t->pre) == 1, seed, stream);
    deft_preprocess_apply(&t->pre, out, h, w);
    return DEFT_OK;
}

static enum deft_status check_transform(const struct deft_transform *t) {
    if (t->out_w <= 0 || t->out_h <= 0 || t->out_w > DEFT_IMAGE_MAX_SIDE || t->out_h > DEFT_IMAGE_MAX_SIDE)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "transform: bad output size %dx%d", t->out_w, t->out_h);
    const struct deft_augment *a = &t->aug;
    if (a->crop == DEFT_CROP_RANDOM_RESIZED &&
        !(a->scale_min > 0 && a->scale_min <= a->scale_max && a->ratio_min > 0 && a->ratio_min <= a->ratio_max))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "random resized crop: need 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max");
    if (a->brightness < 0 || a->contrast < 0 || a->saturation < 0 || a->hue < 0 || a->hue > 0.5f)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "color jitter: factors must be >= 0 and hue <= 0.5");
    return DEFT_OK;
}

/* The three planes the pipeline works on: out itself, or for a grey model a
 * scratch buffer whose first plane goes to out at the end (gray_done). */
static float *work_planes(const struct deft_transform *t, float *out) {
    if (deft_preprocess_channels(&t->pre) == 3) return out;
    float *w = deft_malloc(sizeof(float) * 3 * (size_t)t->out_h * (size_t)t->out_w);
    if (!w) deft_set_error(DEFT_ERR_NOMEM, "transform: out of memory");
    return w;
}

static enum deft_status gray_done(const struct deft_transform *t, float *work, float *out, enum deft_status st) {
    if (work == out) return st;
    if (st == DEFT_OK) memcpy(out, work, sizeof(float) * (size_t)t->out_h * (size_t)t->out_w);
    deft_free(work);
    return st;
}

/* A copy of img made grey (PIL 'L') when the model takes one channel. */
static enum deft_status gray_copy(const struct deft_image *img, struct deft_image *g) {
    size_t n = (size_t)img->w * (size_t)img->h * 3;
    g->w = img->w;
    g->h = img->h;
    if (!(g->rgb = deft_malloc(n))) return deft_set_error(DEFT_ERR_NOMEM, "transform: out of memory");
    memcpy(g->rgb, img->rgb, n);
    deft_image_to_gray(g);
    return DEFT_OK;
}

enum deft_status deft_transform_apply(const struct deft_transform *t, const struct deft_image *img,
                                      uint64_t seed, uint64_t stream, float *out) {
    enum deft_status st = check_transform(t);
    if (st != DEFT_OK) return st;
    struct deft_image grey = {0};
    if (deft_preprocess_channels(&t->pre) == 1) {
        if ((st = gray_copy(img, &grey))) return st;
        img = &grey;
    }
    float *work = work_planes(t, out);
    if (!work) st = DEFT_ERR_NOMEM;
    struct deft_resample r;
    choose_box(t, img->w, img->h, seed, stream, &r);
    if (!st) st = deft_image_resample_chw(img, &r, t->out_w, t->out_h, work);
    if (!st) st = finish(t, seed, stream, work);
    deft_image_free(&grey);
    return work ? gray_done(t, work, out, st) : st;
}

enum deft_status deft_transform_bytes(const struct deft_transform *t, const uint8_t *data, size_t n,
                                      uint64_t seed, uint64_t stream, float *out) {
    enum deft_status st = check_transform(t);
    if (st != DEFT_OK) return st;
    enum deft_image_format fmt;
    int W, H;
    if ((st = deft_image_probe(data, n, &fmt, &W, &H)) != DEFT_OK) return st;
    struct deft_resample r;
    choose_box(t, W, H, seed, stream, &r);
    struct deft_decode_opts o = t->decode;
    o.min_w = o.min_h = 0;
    if (t->dct_scaling && fmt == DEFT_IMAGE_JPEG) {
        /* The decoded image must keep at least out/box resolution. */
        o.min_w = (int)ceil((double)t->out_w * W / r.w);
        o.min_h = (int)ceil((double)t->out_h * H / r.h);
    }
    struct deft_image img;
    if ((st = deft_image_decode(data, n, &o, &img)) != DEFT_OK) return st;
    if (img.w != W || img.h != H) { /* DCT-scaled: map the box */
        double sx = (double)img.w / W, sy = (double)img.h / H;
        r.x = (float)(r.x * sx);
        r.w = (float)(r.w * sx);
        r.y = (float)(r.y * sy);
        r.h = (float)(r.h * sy);
    }
    if (deft_preprocess_channels(&t->pre) == 1) deft_image_to_gray(&img);
    float *work = work_planes(t, out);
    st = work ? deft_image_resample_chw(&img, &r, t->out_w, t->out_h, work) : DEFT_ERR_NOMEM;
    deft_image_free(&img);
    if (!st) st = finish(t, seed, stream, work);
    return work ? gray_done(t, work, out, st) : st;
}

/* ---- Beta sampling (mixup) ----------------------------------------------- */

/* Marsaglia-Tsang Gamma(a, 1) from the counter stream; k advances per draw. */
static double gamma_draw(uint64_t seed, uint64_t stream, uint64_t *k, double a) {
    double boost = 1.0;
    if (a < 1.0) { /* Gamma(a) = Gamma(a+1) * U^(1/a) */
        double u = (double)U(seed, stream, (*k)++);
        if (u < 1e-12) u = 1e-12;
        boost = pow(u, 1.0 / a);
        a += 1.0;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (int it = 0; it < 1000; it++) {
        double x = (double)deft_rng_normal(seed, stream, (*k)++);
        double v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = (double)U(seed, stream, (*k)++);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u + 1e-300) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * boost;
    }
    return d * boost; /* not reached in practice */
}

double deft_rng_beta(uint64_t seed, uint64_t stream, double a, double b) {
    uint64_t k = K_BETA;
    double x = gamma_draw(seed, stream, &k, a);
    double y = gamma_draw(seed, stream ^ 0x9e3779b97f4a7c15ull, &k, b);
    if (x + y <= 0) return 0.5;
    return x / (x + y);
}

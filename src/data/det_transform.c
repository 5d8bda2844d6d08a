/* det_transform.c - box-aware detection transforms: the letterbox, TAO's
 * YOLOv4 jitter and flips, HSV, the random input shape, and the renderer
 * that pastes placements (det_geom.h) onto a mean-padded canvas and moves
 * boxes and masks with the pixels. Mosaic layout: det_mosaic.c.
 *
 * TAO [yolo_v4 data sequence]: HSV, flips, then jitter (non-mosaic) or a
 * random crop per quadrant (mosaic), then a plain resize. Here HSV runs on
 * the resampled piece (same distribution, 4-16x fewer pixels) and padding
 * is the preprocessing mean (TAO pads jitter with the image mean), so
 * padded pixels are exactly 0 after preprocessing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "color.h"
#include "det_geom.h"

static float U(uint64_t seed, uint64_t stream, uint64_t k) { return deft_rng_uniform(seed, stream, k); }

void deft_det_augment_defaults(struct deft_det_augment *a) {
    memset(a, 0, sizeof *a);
    a->saturation = 1.0f;
    a->exposure = 1.0f;
    a->mosaic_min_ratio = 0.2f;
}

void deft_det_transform_defaults(struct deft_det_transform *t) {
    memset(t, 0, sizeof *t);
    t->net_w = t->net_h = 416;
    deft_det_augment_defaults(&t->aug);
    deft_preprocess_init(&t->pre, DEFT_PREPROCESS_CAFFE);
    t->dct_scaling = true;
    t->mask_pad = 255;
}

/* ---- letterbox ------------------------------------------------------------- */

enum deft_status deft_letterbox_make(int img_w, int img_h, int net_w, int net_h, struct deft_letterbox *lb) {
    if (img_w <= 0 || img_h <= 0 || net_w <= 0 || net_h <= 0 || img_w > DEFT_IMAGE_MAX_SIDE ||
        img_h > DEFT_IMAGE_MAX_SIDE || net_w > DEFT_IMAGE_MAX_SIDE || net_h > DEFT_IMAGE_MAX_SIDE)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "letterbox: bad sizes (image %dx%d, network %dx%d)", img_w,
                              img_h, net_w, net_h);
    double r = fmin((double)net_w / img_w, (double)net_h / img_h);
    int cw = (int)lround(r * img_w), ch = (int)lround(r * img_h);
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    if (cw > net_w) cw = net_w;
    if (ch > net_h) ch = net_h;
    lb->net_w = net_w;
    lb->net_h = net_h;
    lb->img_w = img_w;
    lb->img_h = img_h;
    lb->content_w = cw;
    lb->content_h = ch;
    lb->scale_x = (float)((double)cw / img_w);
    lb->scale_y = (float)((double)ch / img_h);
    lb->off_x = (float)((net_w - cw) / 2);
    lb->off_y = (float)((net_h - ch) / 2);
    return DEFT_OK;
}

void deft_letterbox_box_to_net(const struct deft_letterbox *lb, struct deft_box *b) {
    b->x1 = b->x1 * lb->scale_x + lb->off_x;
    b->x2 = b->x2 * lb->scale_x + lb->off_x;
    b->y1 = b->y1 * lb->scale_y + lb->off_y;
    b->y2 = b->y2 * lb->scale_y + lb->off_y;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void deft_letterbox_box_to_image(const struct deft_letterbox *lb, struct deft_box *b) {
    float W = (float)lb->img_w, H = (float)lb->img_h;
    b->x1 = clampf((b->x1 - lb->off_x) / lb->scale_x, 0, W);
    b->x2 = clampf((b->x2 - lb->off_x) / lb->scale_x, 0, W);
    b->y1 = clampf((b->y1 - lb->off_y) / lb->scale_y, 0, H);
    b->y2 = clampf((b->y2 - lb->off_y) / lb->scale_y, 0, H);
}

int deft_letterbox_to_json(const struct deft_letterbox *lb, char *buf, size_t n) {
    const char *head = "{\"type\":\"letterbox\",\"align\":\"center\",\"pad\":\"mean\",\"resize\":\"bilinear\"";
    if (lb->img_w <= 0)
        return snprintf(buf, n, "%s,\"net_w\":%d,\"net_h\":%d}", head, lb->net_w, lb->net_h);
    return snprintf(buf, n,
                    "%s,\"net_w\":%d,\"net_h\":%d,\"img_w\":%d,\"img_h\":%d,\"scale_x\":%.9g,"
                    "\"scale_y\":%.9g,\"off_x\":%.9g,\"off_y\":%.9g}",
                    head, lb->net_w, lb->net_h, lb->img_w, lb->img_h, (double)lb->scale_x, (double)lb->scale_y,
                    (double)lb->off_x, (double)lb->off_y);
}

/* Integer member `key` of a flat JSON object (no nesting in ours). */
static bool json_int(const char *js, const char *key, int *v) {
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (!p) return false;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    if (*p++ != ':') return false;
    char *end;
    long x = strtol(p, &end, 10);
    if (end == p || x < -(1L << 30) || x > (1L << 30)) return false;
    *v = (int)x;
    return true;
}

enum deft_status deft_letterbox_from_json(const char *js, struct deft_letterbox *lb) {
    if (!js || !strstr(js, "\"letterbox\""))
        return deft_set_error(DEFT_ERR_FORMAT, "letterbox JSON: missing \"type\":\"letterbox\"");
    if (strstr(js, "\"center\"") == NULL || strstr(js, "\"mean\"") == NULL)
        return deft_set_error(DEFT_ERR_UNSUPPORTED,
                              "letterbox JSON: only centred, mean-padded letterboxes are supported");
    int nw, nh, iw = 0, ih = 0;
    if (!json_int(js, "net_w", &nw) || !json_int(js, "net_h", &nh))
        return deft_set_error(DEFT_ERR_FORMAT, "letterbox JSON: net_w and net_h must be integers");
    bool per_image = json_int(js, "img_w", &iw);
    if (per_image != json_int(js, "img_h", &ih))
        return deft_set_error(DEFT_ERR_FORMAT, "letterbox JSON: img_w and img_h go together");
    if (!per_image) {
        if (nw <= 0 || nh <= 0 || nw > DEFT_IMAGE_MAX_SIDE || nh > DEFT_IMAGE_MAX_SIDE)
            return deft_set_error(DEFT_ERR_FORMAT, "letterbox JSON: bad network size %dx%d", nw, nh);
        memset(lb, 0, sizeof *lb);
        lb->net_w = nw;
        lb->net_h = nh;
        return DEFT_OK;
    }
    enum deft_status st = deft_letterbox_make(iw, ih, nw, nh, lb);
    if (st != DEFT_OK) return deft_wrap_error(DEFT_ERR_FORMAT, "letterbox JSON");
    return DEFT_OK;
}

/* ---- HSV ------------------------------------------------------------------- */

void deft_det_adjust_hsv(float *chw, int h, int w, float hue_deg, float sat, float val) {
    size_t plane = (size_t)h * w;
    float *R = chw, *G = chw + plane, *B = chw + 2 * plane;
    float sh6 = hue_deg / 60.0f;
    for (size_t i = 0; i < plane; i++) {
        float r = R[i], g = G[i], b = B[i];
        float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
        float cr = maxc - minc;
        float h6 = cr > 0 ? deft_rgb_hue6(r, g, b, maxc, cr) + sh6 : 0.0f;
        float s = maxc > 0 ? cr / maxc : 0.0f;
        h6 = fmodf(h6, 6.0f);
        if (h6 < 0) h6 += 6.0f;
        if (h6 >= 6.0f) h6 = 0.0f;
        float v = clampf(maxc * val, 0.0f, 255.0f);
        s = clampf(s * sat, 0.0f, 1.0f);
        float c = v * s;
        deft_hue6_to_rgb(h6, v, v - c, c, &r, &g, &b);
        R[i] = r;
        G[i] = g;
        B[i] = b;
    }
}

/* TAO's factor: 1 + U*(s-1), inverted with probability 1/2. */
static float sv_factor(float s, uint64_t seed, uint64_t stream, uint64_t k) {
    float f = 1.0f + U(seed, stream, k) * (s - 1.0f);
    return U(seed, stream, k + 1) < 0.5f ? f : 1.0f / f;
}

/* ---- random input shape ------------------------------------------------------ */

static void shape_range(int base, int *lo, int *hi) {
    *lo = (int)ceil(0.6 * base / 32.0);
    *hi = (int)floor(1.5 * base / 32.0);
    if (*lo < 1) *lo = 1;
    if (*hi < *lo) *hi = *lo;
}

void deft_det_input_size(const struct deft_det_transform *t, uint64_t seed, int64_t batch, int *w, int *h) {
    *w = t->net_w;
    *h = t->net_h;
    int period = t->aug.randomize_input_shape_period;
    if (!t->train || period <= 0 || batch < 0) return;
    int lo, hi;
    shape_range(t->net_w, &lo, &hi);
    uint64_t q = (uint64_t)(batch / period);
    int m = lo + (int)(deft_rng_u64(seed, DET_STREAM_SHAPE ^ q, 0) % (uint64_t)(hi - lo + 1));
    *w = 32 * m;
    int hm = (int)lround((double)t->net_h * m / t->net_w); /* aspect kept */
    *h = 32 * (hm < 1 ? 1 : hm);
}

void deft_det_max_input_size(const struct deft_det_transform *t, int *w, int *h) {
    *w = t->net_w;
    *h = t->net_h;
    if (!t->train || t->aug.randomize_input_shape_period <= 0) return;
    int lo, hi;
    shape_range(t->net_w, &lo, &hi);
    int hm = (int)lround((double)t->net_h * hi / t->net_w);
    if (32 * hi > *w) *w = 32 * hi;
    if (32 * (hm < 1 ? 1 : hm) > *h) *h = 32 * (hm < 1 ? 1 : hm);
}

/* ---- planning ----------------------------------------------------------------- */

/* TAO's jitter (own code from its description): each side moves by
 * U(-j, j) of the side (> 0 crops, < 0 pads; at most 0.8, opposite sides
 * together at most 0.8 of crop), then the window grows symmetrically along
 * its short axis to the canvas aspect ratio (a letterbox of the window). */
static void jitter_window(const struct deft_det_transform *t, int W, int H, int cw, int ch, uint64_t seed,
                          uint64_t stream, uint64_t k, struct det_place *p) {
    double d[4] = {0, 0, 0, 0}; /* left, top, right, bottom */
    float j = t->aug.jitter;
    if (j > 0)
        for (int i = 0; i < 4; i++) d[i] = fmin((U(seed, stream, k + (uint64_t)i) - 0.5) * 2.0 * j, 0.8);
    if (d[0] + d[2] > 0.8) d[0] = fmin(d[0], 0.4), d[2] = fmin(d[2], 0.4);
    if (d[1] + d[3] > 0.8) d[1] = fmin(d[1], 0.4), d[3] = fmin(d[3], 0.4);
    double x0 = d[0] * W, y0 = d[1] * H, ww = W * (1.0 - d[0] - d[2]), wh = H * (1.0 - d[1] - d[3]);
    double ar = (double)cw / ch;
    if (ww / wh > ar) { /* too wide: taller window */
        double nh = ww / ar;
        y0 -= (nh - wh) / 2;
        wh = nh;
    } else {
        double nw = wh * ar;
        x0 -= (nw - ww) / 2;
        ww = nw;
    }
    p->sx = x0;
    p->sy = y0;
    p->sw = ww;
    p->sh = wh;
    p->dx = p->dy = 0;
    p->dw = cw;
    p->dh = ch;
}

static void letterbox_place(int W, int H, int cw, int ch, struct det_place *p) {
    struct deft_letterbox lb;
    if (deft_letterbox_make(W, H, cw, ch, &lb) != DEFT_OK) {
        memset(p, 0, sizeof *p);
        return;
    }
    p->sx = p->sy = 0;
    p->sw = W;
    p->sh = H;
    p->dx = (int)lb.off_x;
    p->dy = (int)lb.off_y;
    p->dw = lb.content_w;
    p->dh = lb.content_h;
    p->hflip = p->vflip = false;
}

void det_plan(const struct deft_det_transform *t, bool mosaic, const int *W, const int *H, int cw, int ch,
              uint64_t seed, uint64_t stream, struct det_place *places) {
    if (!t->train) {
        letterbox_place(W[0], H[0], cw, ch, &places[0]);
        return;
    }
    int n = mosaic ? 4 : 1;
    int xb = cw, yb = ch;
    if (mosaic) det_mosaic_border(t, cw, ch, seed, stream, &xb, &yb);
    for (int j = 0; j < n; j++) {
        struct det_place *p = &places[j];
        uint64_t kp = DET_K_PIECE + (uint64_t)DET_K_PIECE_STRIDE * (uint64_t)j;
        if (mosaic) {
            int qx = (j & 1) ? xb : 0, qy = (j & 2) ? yb : 0;
            int qw = (j & 1) ? cw - xb : xb, qh = (j & 2) ? ch - yb : yb;
            det_mosaic_window(t, W[j], H[j], qw, qh, seed, stream, j, p);
            p->dx = qx;
            p->dy = qy;
            p->dw = qw;
            p->dh = qh;
        } else {
            jitter_window(t, W[j], H[j], cw, ch, seed, stream, kp + DET_KP_WINDOW, p);
        }
        p->vflip = t->aug.vflip_prob > 0 && U(seed, stream, kp + DET_KP_VFLIP) < t->aug.vflip_prob;
        p->hflip = t->aug.hflip_prob > 0 && U(seed, stream, kp + DET_KP_HFLIP) < t->aug.hflip_prob;
    }
}

bool deft_det_wants_mosaic(const struct deft_det_transform *t, uint64_t seed, uint64_t stream) {
    return t->train && t->aug.mosaic_prob > 0 && U(seed, stream, DET_K_MOSAIC) < t->aug.mosaic_prob;
}

/* ---- rendering ------------------------------------------------------------------ */

struct visible { int x0, y0, x1, y1; }; /* canvas pixels before mirroring */

/* Canvas rectangle covered by image pixels: the window clipped to the image. */
static bool visible_rect(const struct det_place *p, int W, int H, struct visible *v) {
    double fx = p->dw / p->sw, fy = p->dh / p->sh;
    double ix0 = fmax(p->sx, 0), ix1 = fmin(p->sx + p->sw, W);
    double iy0 = fmax(p->sy, 0), iy1 = fmin(p->sy + p->sh, H);
    if (ix1 <= ix0 || iy1 <= iy0) return false;
    long x0 = lround(p->dx + (ix0 - p->sx) * fx), x1 = lround(p->dx + (ix1 - p->sx) * fx);
    long y0 = lround(p->dy + (iy0 - p->sy) * fy), y1 = lround(p->dy + (iy1 - p->sy) * fy);
    if (x0 < p->dx) x0 = p->dx;
    if (y0 < p->dy) y0 = p->dy;
    if (x1 > p->dx + p->dw) x1 = p->dx + p->dw;
    if (y1 > p->dy + p->dh) y1 = p->dy + p->dh;
    v->x0 = (int)x0, v->x1 = (int)x1, v->y0 = (int)y0, v->y1 = (int)y1;
    return x1 > x0 && y1 > y0;
}

static int mirror_x(const struct det_place *p, int x) { return p->hflip ? 2 * p->dx + p->dw - 1 - x : x; }
static int mirror_y(const struct det_place *p, int y) { return p->vflip ? 2 * p->dy + p->dh - 1 - y : y; }

static enum deft_status render_pixels(const struct deft_det_transform *t, const struct deft_det_input *in,
                                      const struct det_place *p, const struct visible *v, int cw, int ch,
                                      float *canvas, uint64_t seed, uint64_t stream, int j) {
    int W = in->orig_w > 0 ? in->orig_w : in->img->w, H = in->orig_h > 0 ? in->orig_h : in->img->h;
    double fx = p->sw / p->dw, fy = p->sh / p->dh;
    double kx = (double)in->img->w / W, ky = (double)in->img->h / H; /* DCT-scaled decode */
    int pw = v->x1 - v->x0, ph = v->y1 - v->y0;
    struct deft_resample r = {(float)((p->sx + (v->x0 - p->dx) * fx) * kx),
                              (float)((p->sy + (v->y0 - p->dy) * fy) * ky), (float)(pw * fx * kx),
                              (float)(ph * fy * ky), false};
    size_t pp = (size_t)pw * ph;
    float *tmp = deft_malloc(sizeof(float) * 3 * pp);
    if (!tmp) return deft_set_error(DEFT_ERR_NOMEM, "detection transform: out of memory");
    enum deft_status st = deft_image_resample_chw(in->img, &r, pw, ph, tmp);
    if (st != DEFT_OK) {
        deft_free(tmp);
        return st;
    }
    const struct deft_det_augment *a = &t->aug;
    if (t->train && (a->hue > 0 || a->saturation > 1 || a->exposure > 1)) {
        uint64_t kp = DET_K_PIECE + (uint64_t)DET_K_PIECE_STRIDE * (uint64_t)j;
        float hue = (2.0f * U(seed, stream, kp + DET_KP_HUE) - 1.0f) * a->hue * 180.0f;
        float s = a->saturation > 1 ? sv_factor(a->saturation, seed, stream, kp + DET_KP_SAT) : 1.0f;
        float e = a->exposure > 1 ? sv_factor(a->exposure, seed, stream, kp + DET_KP_VAL) : 1.0f;
        deft_det_adjust_hsv(tmp, ph, pw, hue, s, e);
    }
    size_t plane = (size_t)cw * ch;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < ph; y++) {
            const float *src = tmp + c * pp + (size_t)y * pw;
            float *dst = canvas + c * plane + (size_t)mirror_y(p, v->y0 + y) * cw;
            if (!p->hflip) {
                memcpy(dst + v->x0, src, sizeof(float) * pw);
            } else {
                for (int x = 0; x < pw; x++) dst[mirror_x(p, v->x0 + x)] = src[x];
            }
        }
    deft_free(tmp);
    return DEFT_OK;
}

/* Nearest neighbour: canvas pixel centre -> source pixel. */
static void render_mask(const struct deft_det_input *in, const struct det_place *p, const struct visible *v,
                        int cw, uint8_t *mask) {
    int W = in->orig_w > 0 ? in->orig_w : in->img->w, H = in->orig_h > 0 ? in->orig_h : in->img->h;
    double fx = p->sw / p->dw, fy = p->sh / p->dh;
    for (int y = v->y0; y < v->y1; y++) {
        long sy = (long)floor(p->sy + (y + 0.5 - p->dy) * fy);
        sy = sy < 0 ? 0 : (sy >= H ? H - 1 : sy);
        uint8_t *dst = mask + (size_t)mirror_y(p, y) * cw;
        for (int x = v->x0; x < v->x1; x++) {
            long sx = (long)floor(p->sx + (x + 0.5 - p->dx) * fx);
            sx = sx < 0 ? 0 : (sx >= W ? W - 1 : sx);
            dst[mirror_x(p, x)] = in->mask[(size_t)sy * W + sx];
        }
    }
}

/* Map, clip to the visible part, filter (training), mirror. */
static int render_boxes(const struct deft_det_transform *t, const struct deft_det_input *in,
                        const struct det_place *p, const struct visible *v, int cw, int ch,
                        struct deft_box *out, int cap) {
    double fx = p->dw / p->sw, fy = p->dh / p->sh;
    int n = 0;
    for (int i = 0; i < in->n_boxes && n < cap; i++) {
        struct deft_box b = in->boxes[i];
        if (t->train && b.difficult && !t->aug.include_difficult) continue;
        float x1 = (float)(p->dx + (b.x1 - p->sx) * fx), x2 = (float)(p->dx + (b.x2 - p->sx) * fx);
        float y1 = (float)(p->dy + (b.y1 - p->sy) * fy), y2 = (float)(p->dy + (b.y2 - p->sy) * fy);
        x1 = clampf(x1, (float)v->x0, (float)v->x1);
        x2 = clampf(x2, (float)v->x0, (float)v->x1);
        y1 = clampf(y1, (float)v->y0, (float)v->y1);
        y2 = clampf(y2, (float)v->y0, (float)v->y1);
        if (t->train && ((x2 - x1) / cw <= 1e-3f || (y2 - y1) / ch <= 1e-3f)) continue;
        if (p->hflip) {
            float m = (float)(2 * p->dx + p->dw);
            float a = m - x2;
            x2 = m - x1;
            x1 = a;
        }
        if (p->vflip) {
            float m = (float)(2 * p->dy + p->dh);
            float a = m - y2;
            y2 = m - y1;
            y1 = a;
        }
        b.x1 = x1, b.y1 = y1, b.x2 = x2, b.y2 = y2;
        out[n++] = b;
    }
    return n;
}

/* Canvas filled with the value that preprocessing turns into 0. */
static void fill_pad(const struct deft_preprocess *pre, float *canvas, int cw, int ch) {
    size_t plane = (size_t)cw * ch;
    for (int c = 0; c < 3; c++) {
        int src = pre->bgr ? 2 - c : c; /* output channel c reads input channel src */
        float v = pre->mean[c] * pre->divisor;
        float *dst = canvas + (size_t)src * plane;
        for (size_t i = 0; i < plane; i++) dst[i] = v;
    }
}

static bool input_ok(const struct deft_det_input *in) {
    if (!in || !in->img || !in->img->rgb || in->img->w <= 0 || in->img->h <= 0 || in->n_boxes < 0) return false;
    if (in->n_boxes > 0 && !in->boxes) return false;
    if ((in->orig_w > 0) != (in->orig_h > 0)) return false;
    return true;
}

enum deft_status deft_det_transform_apply(const struct deft_det_transform *t, const struct deft_det_input *in,
                                          int n_in, int net_w, int net_h, uint64_t seed, uint64_t stream,
                                          float *out, uint8_t *mask_out, struct deft_box *boxes_out,
                                          int max_boxes, int *n_boxes_out, struct deft_letterbox *lb) {
    *n_boxes_out = 0;
    if (!t || !out || (n_in != 1 && n_in != 4) || net_w <= 0 || net_h <= 0 || net_w > DEFT_IMAGE_MAX_SIDE ||
        net_h > DEFT_IMAGE_MAX_SIDE || max_boxes < 0 || (max_boxes > 0 && !boxes_out))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection transform: bad arguments");
    bool mosaic = n_in == 4;
    if (mosaic && !t->train)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection transform: mosaic needs train mode");
    int W[4], H[4];
    for (int j = 0; j < n_in; j++) {
        if (!input_ok(&in[j]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "detection transform: bad input %d", j);
        W[j] = in[j].orig_w > 0 ? in[j].orig_w : in[j].img->w;
        H[j] = in[j].orig_h > 0 ? in[j].orig_h : in[j].img->h;
    }
    struct deft_letterbox lb0;
    enum deft_status st = deft_letterbox_make(W[0], H[0], net_w, net_h, &lb0);
    if (st != DEFT_OK) return st;
    if (lb) *lb = lb0;
    struct det_place places[4];
    det_plan(t, mosaic, W, H, net_w, net_h, seed, stream, places);
    fill_pad(&t->pre, out, net_w, net_h);
    if (mask_out) memset(mask_out, t->mask_pad, (size_t)net_w * net_h);
    int nb = 0;
    for (int j = 0; j < n_in; j++) {
        struct visible v;
        if (places[j].dw <= 0 || places[j].dh <= 0 || !visible_rect(&places[j], W[j], H[j], &v)) continue;
        if ((st = render_pixels(t, &in[j], &places[j], &v, net_w, net_h, out, seed, stream, j)) != DEFT_OK)
            return st;
        if (mask_out && in[j].mask) render_mask(&in[j], &places[j], &v, net_w, mask_out);
        nb += render_boxes(t, &in[j], &places[j], &v, net_w, net_h, boxes_out + nb, max_boxes - nb);
    }
    deft_preprocess_apply(&t->pre, out, net_h, net_w);
    *n_boxes_out = nb;
    return DEFT_OK;
}

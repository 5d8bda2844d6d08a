/* image_grid.c - report module: what the network saw, as pictures: an input
 * tensor turned back into RGB (undoing the preprocessing), and several
 * images tiled into one, for the validation predictions TensorBoard shows. */
#include <math.h>
#include <string.h>
#include "deft/data.h"
#include "deft/report.h"

static unsigned char to_u8(float v) {
    return v <= 0 ? 0 : v >= 255 ? 255 : (unsigned char)lrintf(v);
}

enum deft_status deft_image_from_input(const float *chw, int h, int w, const struct deft_preprocess *p, int max_side,
                                       struct deft_image *out) {
    memset(out, 0, sizeof *out);
    if (!chw || !p || h < 1 || w < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_image_from_input: no tensor or bad size %dx%d", w, h);
    int f = 1; /* integer box filter: the longer side down to max_side */
    while (max_side > 0 && (h > w ? h : w) / f > max_side) f++;
    int oh = h / f, ow = w / f;
    if (oh < 1 || ow < 1) f = 1, oh = h, ow = w;
    out->rgb = deft_malloc((size_t)oh * (size_t)ow * 3);
    if (!out->rgb) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    out->w = ow;
    out->h = oh;
    size_t plane = (size_t)h * (size_t)w;
    bool gray = deft_preprocess_channels(p) == 1;
    for (int c = 0; c < 3; c++) {
        /* input channel c holds RGB channel c, or 2 - c when the model takes BGR;
         * a grey input's one plane fills all three */
        int dst = p->bgr && !gray ? 2 - c : c;
        const float *x = chw + (gray ? 0 : (size_t)c * plane);
        for (int y = 0; y < oh; y++)
            for (int xo = 0; xo < ow; xo++) {
                double sum = 0;
                for (int dy = 0; dy < f; dy++)
                    for (int dx = 0; dx < f; dx++) sum += x[(size_t)(y * f + dy) * (size_t)w + (size_t)(xo * f + dx)];
                double v = sum / (f * f);
                out->rgb[((size_t)y * (size_t)ow + (size_t)xo) * 3 + (size_t)dst] =
                    to_u8((float)((v * p->std[c] + p->mean[c]) * p->divisor));
            }
    }
    return DEFT_OK;
}

enum deft_status deft_image_grid(const struct deft_image *ims, int n, int cols, struct deft_image *out) {
    memset(out, 0, sizeof *out);
    if (n < 1 || cols < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_image_grid: no images");
    int tw = 0, th = 0;
    for (int i = 0; i < n; i++) {
        tw = ims[i].w > tw ? ims[i].w : tw;
        th = ims[i].h > th ? ims[i].h : th;
    }
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols, gap = 2;
    out->w = cols * tw + (cols - 1) * gap;
    out->h = rows * th + (rows - 1) * gap;
    out->rgb = deft_calloc((size_t)out->w * (size_t)out->h, 3);
    if (!out->rgb) {
        memset(out, 0, sizeof *out);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int x0 = (i % cols) * (tw + gap), y0 = (i / cols) * (th + gap);
        for (int y = 0; y < ims[i].h; y++)
            memcpy(out->rgb + ((size_t)(y0 + y) * (size_t)out->w + (size_t)x0) * 3,
                   ims[i].rgb + (size_t)y * (size_t)ims[i].w * 3, (size_t)ims[i].w * 3);
    }
    return DEFT_OK;
}

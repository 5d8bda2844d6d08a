/* annotate.c - report module: detections drawn onto an image (box outlines,
 * "class score" captions in the 5x7 font) and saved as PNG, for inference
 * output a person looks at. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "deft/io.h"
#include "deft/report.h"
#include "deft/data.h"
#include "deft/detection.h"
#include "report/font5x7.h"
#include "report/report_impl.h"

/* A palette of distinct, saturated colours: class k gets palette[k % n]. */
static const unsigned char palette[][3] = {
    {230, 25, 75}, {60, 180, 75}, {0, 130, 200}, {245, 130, 48}, {145, 30, 180},
    {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 212}, {0, 128, 128},
};
#define N_PALETTE (int)(sizeof palette / sizeof palette[0])

static void put(const struct deft_image *im, int x, int y, const unsigned char *c) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(im->rgb + ((size_t)y * (size_t)im->w + (size_t)x) * 3, c, 3);
}

static void fill(const struct deft_image *im, int x1, int y1, int x2, int y2, const unsigned char *c) {
    for (int y = y1; y <= y2; y++)
        for (int x = x1; x <= x2; x++) put(im, x, y, c);
}

static void rect(const struct deft_image *im, int x1, int y1, int x2, int y2, int t, const unsigned char *c) {
    fill(im, x1, y1, x2, y1 + t - 1, c);
    fill(im, x1, y2 - t + 1, x2, y2, c);
    fill(im, x1, y1, x1 + t - 1, y2, c);
    fill(im, x2 - t + 1, y1, x2, y2, c);
}

/* Text with its top-left corner at (x, y), each font pixel scale x scale. */
static void text(const struct deft_image *im, int x, int y, const char *t, int scale, const unsigned char *c) {
    for (int k = 0; t[k]; k++) {
        unsigned ch = (unsigned char)t[k] >= 32 && (unsigned char)t[k] < 127 ? (unsigned char)t[k] : '?';
        const unsigned char *g = rp_font5x7[ch - 32];
        int drop = rp_font_descends(ch) ? 2 : 0;
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g[row] >> (4 - col) & 1)
                    fill(im, x + (k * 6 + col) * scale, y + (row + drop) * scale,
                         x + (k * 6 + col) * scale + scale - 1, y + (row + drop) * scale + scale - 1, c);
    }
}

void deft_image_draw_boxes(struct deft_image *im, const struct deft_box *boxes, int n,
                           const char *const *class_names, int n_classes) {
    static const unsigned char white[3] = {255, 255, 255};
    int side = im->w < im->h ? im->w : im->h;
    int t = side >= 800 ? 3 : side >= 400 ? 2 : 1;   /* line width and font scale follow the image */
    for (int i = 0; i < n; i++) {
        const struct deft_box *b = &boxes[i];
        const unsigned char *c = palette[(b->cls < 0 ? 0 : b->cls) % N_PALETTE];
        int x1 = (int)lroundf(b->x1), y1 = (int)lroundf(b->y1), x2 = (int)lroundf(b->x2), y2 = (int)lroundf(b->y2);
        rect(im, x1, y1, x2, y2, t, c);
        char cap[96];
        const char *name = b->cls >= 0 && b->cls < n_classes && class_names ? class_names[b->cls] : "?";
        snprintf(cap, sizeof cap, "%s %.2f", name, (double)b->score);
        int tw = (int)strlen(cap) * 6 * t, th = 9 * t;
        int ty = y1 - th - 1 >= 0 ? y1 - th - 1 : y1 + t;  /* caption above the box, inside at the top edge */
        fill(im, x1, ty, x1 + tw + t, ty + th, c);
        text(im, x1 + t, ty + t, cap, t, white);
    }
}

enum deft_status deft_image_save_png(const struct deft_image *im, const char *path) {
    struct rp_sbuf png = {0};
    enum deft_status s = rp_encode_png(im->w, im->h, im->rgb, &png, path);
    if (!s) s = deft_file_write_atomic(path, png.p, png.n);
    rp_sb_free(&png);
    return s;
}

void deft_image_draw_frame(struct deft_image *im, int x1, int y1, int x2, int y2, const char *caption,
                           const unsigned char rgb[3]) {
    static const unsigned char white[3] = {255, 255, 255};
    int side = im->w < im->h ? im->w : im->h;
    int t = side >= 800 ? 3 : side >= 400 ? 2 : 1;
    rect(im, x1, y1, x2, y2, t, rgb);
    if (!caption || !*caption) return;
    int tw = (int)strlen(caption) * 6 * t, th = 9 * t;
    fill(im, x1, y1, x1 + tw + t, y1 + th, rgb);
    text(im, x1 + t, y1 + t, caption, t, white);
}

enum deft_status deft_events_image_rgb(struct deft_events *w, const char *tag, int64_t step,
                                       const struct deft_image *im) {
    struct rp_sbuf png = {0};
    enum deft_status s = rp_encode_png(im->w, im->h, im->rgb, &png, tag);
    if (!s) s = deft_events_image(w, tag, step, png.p, png.n, im->h, im->w, 3);
    rp_sb_free(&png);
    return s;
}

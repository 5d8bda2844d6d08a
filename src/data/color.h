/* color.h - RGB <-> HSV pieces shared by the classification hue jitter
 * (augment.c) and the detection HSV augmentation (det_transform.c).
 * Internal; values stay in 0..255 units (HSV is linear in V). */
#ifndef DEFT_DATA_COLOR_H
#define DEFT_DATA_COLOR_H

/* Hue in sixths of a turn, [-1, 6), of a pixel with max maxc and chroma
 * cr = max - min > 0 (torchvision's / OpenCV's sector formulas). */
static inline float deft_rgb_hue6(float r, float g, float b, float maxc, float cr) {
    if (maxc == r) return (g - b) / cr;
    if (maxc == g) return 2.0f + (b - r) / cr;
    return 4.0f + (r - g) / cr;
}

/* Back to RGB from hue h6 in [0, 6), value v, minimum p = v - cr, chroma cr. */
static inline void deft_hue6_to_rgb(float h6, float v, float p, float cr, float *r, float *g, float *b) {
    int sec = (int)h6;
    if (sec > 5) sec = 5;
    if (sec < 0) sec = 0;
    float f = h6 - (float)sec;
    float q = v - cr * f, t = v - cr * (1.0f - f);
    switch (sec) {
    case 0: *r = v, *g = t, *b = p; break;
    case 1: *r = q, *g = v, *b = p; break;
    case 2: *r = p, *g = v, *b = t; break;
    case 3: *r = p, *g = q, *b = v; break;
    case 4: *r = t, *g = p, *b = v; break;
    default: *r = v, *g = p, *b = q; break;
    }
}

#endif

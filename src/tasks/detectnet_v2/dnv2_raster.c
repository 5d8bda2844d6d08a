/* dnv2_raster.c - DetectNet_v2 ground truth (tao.md §3.2): each GT box
 * becomes a coverage ellipse inside a larger dead-zone ellipse in grid
 * space, supersampled 4x4 per cell; boxes are drawn back to front (ymax
 * ascending) so a nearer box clears the cells its dead zone dominates and
 * overlapping objects get a blank band between them.
 *
 * The ellipse geometry and the sample tests are float, in TAO's operation
 * order (rasterize_bbox.h), so which samples fall inside is the same as
 * TAO's; the bbox distances are the closed form in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tasks/detectnet_v2/dnv2_post.h"

/* One box in grid space (TAO's bbox_from_rumpy_params). */
struct ell {
    float cx, cy;     /* centre, grid units */
    float m0, m4;     /* 1 / dead-zone radii */
    float m6, m7;     /* -centre / dead-zone radii */
    float icrx, icry; /* dead-zone radius / coverage radius */
    float inv_area;   /* 1 / max(4 csx csy, 1) */
    float dsx, dsy;
    double x1, y1, x2, y2; /* the box, input pixels */
    float ymax;            /* sort key, grid units */
    int idx;
};

static struct ell make_ell(const struct dnv2_grid *g, const struct dnv2_raster_class *p,
                           float dz, const struct deft_box *b) {
    struct ell e;
    /* TAO: output / input as a Python float, applied to float32 coordinates */
    float kx = (float)((double)g->gw / g->in_w), ky = (float)((double)g->gh / g->in_h);
    float xmin = b->x1 * kx, ymin = b->y1 * ky, xmax = b->x2 * kx, ymax = b->y2 * ky;
    float cx = xmin + p->cov_center_x * (xmax - xmin);
    float cy = ymin + p->cov_center_y * (ymax - ymin);
    float sx = p->cov_center_x < 0.5f ? cx - xmin : xmax - cx;
    float sy = p->cov_center_y < 0.5f ? cy - ymin : ymax - cy;
    float csx = fmaxf(p->cov_radius_x * sx, 0.1f), csy = fmaxf(p->cov_radius_y * sy, 0.1f);
    float mr = p->bbox_min_radius, rx, ry;
    /* at least bbox_min_radius on x, then on y, keeping the aspect ratio */
    rx = fmaxf(csx, mr), ry = csx < mr ? mr * csy / csx : csy;
    csx = rx, csy = ry;
    rx = csy < mr ? mr * csx / csy : csx, ry = fmaxf(csy, mr);
    csx = rx, csy = ry;
    float dsx = fmaxf((1.0f - dz) * csx + dz * sx, csx);
    float dsy = fmaxf((1.0f - dz) * csy + dz * sy, csy);
    e.cx = cx, e.cy = cy, e.dsx = dsx, e.dsy = dsy;
    e.m0 = 1.0f / dsx, e.m4 = 1.0f / dsy;
    e.m6 = -cx * e.m0, e.m7 = -cy * e.m4;
    e.icrx = 1.0f / (csx * e.m0), e.icry = 1.0f / (csy * e.m4);
    e.inv_area = 1.0f / fmaxf(csx * csy * 4.0f, 1.0f);
    e.x1 = b->x1, e.y1 = b->y1, e.x2 = b->x2, e.y2 = b->y2;
    e.ymax = ymax;
    return e;
}

/* Fractions of the 4x4 samples of cell (px, py) inside the dead zone (*a)
 * and the coverage ellipse (*c). */
static void coverage(const struct ell *e, int px, int py, float *a, float *c) {
    const float step = 0.25f, w = 1.0f / 16.0f;
    float fy = (float)py + 0.125f;
    *a = 0, *c = 0;
    for (int sy = 0; sy < 4; sy++, fy += step) {
        float fx = (float)px + 0.125f;
        for (int sx = 0; sx < 4; sx++, fx += step) {
            float tx = fx * e->m0 + fy * 0.0f + e->m6;
            float ty = fx * 0.0f + fy * e->m4 + e->m7;
            float txc = tx * e->icrx, tyc = ty * e->icry;
            if (txc * txc + tyc * tyc < 1.0f) *c += w;
            if (tx * tx + ty * ty < 1.0f) *a += w;
        }
    }
}

static int cmp_ymax(const void *pa, const void *pb) {
    const struct ell *a = pa, *b = pb;
    if (a->ymax != b->ymax) return a->ymax < b->ymax ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static enum deft_status check(const struct dnv2_grid *g, const struct dnv2_raster_config *c,
                              const struct deft_box *boxes, int n_boxes,
                              const struct deft_box *mask_boxes, int n_mask,
                              const struct dnv2_targets *out) {
    enum deft_status s = dnv2_grid_check(g);
    if (s) return s;
    if (!c || c->n_classes <= 0 || !c->cls || !out || !out->cov || !out->cov_norm ||
        !out->bbox || !out->mask || n_boxes < 0 || n_mask < 0 || (n_boxes && !boxes) ||
        (n_mask && !mask_boxes))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2 rasterizer: classes, boxes and target buffers are "
                              "required");
    if (!isfinite(c->deadzone_radius) || !isfinite(c->mask_multiplier))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detectnet_v2 rasterizer: deadzone_radius and mask multiplier "
                              "must be finite");
    for (int k = 0; k < c->n_classes; k++) {
        const struct dnv2_raster_class *p = &c->cls[k];
        float v[5] = {p->cov_center_x, p->cov_center_y, p->cov_radius_x, p->cov_radius_y,
                      p->bbox_min_radius};
        for (int i = 0; i < 5; i++)
            if (!isfinite(v[i]))
                return deft_set_error(DEFT_ERR_INVALID_ARG,
                                      "detectnet_v2 rasterizer: class %d parameters must be "
                                      "finite", k);
    }
    for (int i = 0; i < n_boxes + n_mask; i++) {
        const struct deft_box *b = i < n_boxes ? &boxes[i] : &mask_boxes[i - n_boxes];
        bool mask = i >= n_boxes;
        if (b->cls >= c->n_classes || (!mask && b->cls < 0))
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "detectnet_v2 rasterizer: %s box %d has class %d, not in "
                                  "[0, %d)", mask ? "mask" : "ground-truth",
                                  mask ? i - n_boxes : i, b->cls, c->n_classes);
        if (!isfinite(b->x1) || !isfinite(b->y1) || !isfinite(b->x2) || !isfinite(b->y2))
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "detectnet_v2 rasterizer: box %d is not finite", i);
    }
    return DEFT_OK;
}

/* v clamped to [-1, n] as an int (no overflow for far-away boxes). */
static int window(float v, int n) {
    v = floorf(v);
    return v < -1.0f ? -1 : v > (float)n ? n : (int)v;
}

/* Draws one box into class plane k: clears where its dead zone is at least
 * the best coverage so far, writes where its coverage is. */
static void draw(const struct dnv2_grid *g, const struct ell *e, float *maxc, float *cov,
                 float *cov_norm, float *bbox) {
    size_t plane = (size_t)g->gw * (size_t)g->gh;
    double stx = (double)g->in_w / g->gw, sty = (double)g->in_h / g->gh, s = g->scale;
    /* cells beyond the dead zone's extent (plus a cell for rounding) see nothing */
    int x0 = window(e->cx - e->dsx - 1, g->gw), x1 = window(e->cx + e->dsx + 1, g->gw);
    int y0 = window(e->cy - e->dsy - 1, g->gh), y1 = window(e->cy + e->dsy + 1, g->gh);
    for (int py = y0 < 0 ? 0 : y0; py <= y1 && py < g->gh; py++)
        for (int px = x0 < 0 ? 0 : x0; px <= x1 && px < g->gw; px++) {
            size_t p = (size_t)py * (size_t)g->gw + (size_t)px;
            float a, c;
            coverage(e, px, py, &a, &c);
            if (a >= maxc[p] && a > 0) {
                maxc[p] = 0, cov[p] = 0, cov_norm[p] = 0;
                for (int q = 0; q < 4; q++) bbox[q * plane + p] = 0;
            }
            if (c >= maxc[p] && c > 0) {
                double cx = px * stx + g->offset, cy = py * sty + g->offset;
                maxc[p] = c, cov[p] = c, cov_norm[p] = e->inv_area * c;
                bbox[p] = (float)((cx - e->x1) / s);
                bbox[plane + p] = (float)((cy - e->y1) / s);
                bbox[2 * plane + p] = (float)((e->x2 - cx) / s);
                bbox[3 * plane + p] = (float)((e->y2 - cy) / s);
            }
        }
}

static void apply_mask(const struct dnv2_grid *g, const struct dnv2_raster_config *c,
                       const struct deft_box *mb, int n_mask, const struct dnv2_targets *out) {
    size_t plane = (size_t)g->gw * (size_t)g->gh;
    double kx = (double)g->gw / g->in_w, ky = (double)g->gh / g->in_h;
    for (int i = 0; i < n_mask; i++)
        for (int k = 0; k < c->n_classes; k++) {
            if (mb[i].cls >= 0 && mb[i].cls != k) continue;
            for (int py = 0; py < g->gh; py++)
                for (int px = 0; px < g->gw; px++) {
                    double x = px + 0.5, y = py + 0.5;
                    if (x < mb[i].x1 * kx || x >= mb[i].x2 * kx || y < mb[i].y1 * ky ||
                        y >= mb[i].y2 * ky)
                        continue;
                    size_t p = k * plane + (size_t)py * (size_t)g->gw + (size_t)px;
                    if (c->preserve_ground_truth && out->cov[p] > 0) continue;
                    out->mask[p] = c->mask_multiplier;
                }
        }
}

enum deft_status dnv2_rasterize(const struct dnv2_grid *g, const struct dnv2_raster_config *c,
                                const struct deft_box *boxes, int n_boxes,
                                const struct deft_box *mask_boxes, int n_mask,
                                const struct dnv2_targets *out) {
    enum deft_status s = check(g, c, boxes, n_boxes, mask_boxes, n_mask, out);
    if (s) return s;
    size_t plane = (size_t)g->gw * (size_t)g->gh, kp = (size_t)c->n_classes * plane;
    struct ell *e = deft_malloc(((size_t)n_boxes + 1) * sizeof *e);
    float *maxc = deft_malloc(plane * sizeof *maxc);
    if (!e || !maxc) {
        deft_free(e), deft_free(maxc);
        return deft_set_error(DEFT_ERR_NOMEM, "detectnet_v2 rasterizer: %d boxes", n_boxes);
    }
    memset(out->cov, 0, kp * sizeof(float));
    memset(out->cov_norm, 0, kp * sizeof(float));
    memset(out->bbox, 0, 4 * kp * sizeof(float));
    for (size_t i = 0; i < kp; i++) out->mask[i] = 1.0f;
    for (int k = 0; k < c->n_classes; k++) {
        int n = 0;
        for (int i = 0; i < n_boxes; i++)
            if (boxes[i].cls == k) {
                e[n] = make_ell(g, &c->cls[k], c->deadzone_radius, &boxes[i]);
                e[n++].idx = i;
            }
        qsort(e, (size_t)n, sizeof *e, cmp_ymax);
        memset(maxc, 0, plane * sizeof *maxc);
        for (int i = 0; i < n; i++)
            draw(g, &e[i], maxc, out->cov + k * plane, out->cov_norm + k * plane,
                 out->bbox + 4 * k * plane);
    }
    apply_mask(g, c, mask_boxes, n_mask, out);
    deft_free(e), deft_free(maxc);
    return DEFT_OK;
}

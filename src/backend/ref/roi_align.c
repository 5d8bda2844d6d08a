/* roi_align.c - reference RoIAlign / crop-and-resize (DEFT_OP_ROI_ALIGN) and
 * its backward to the feature map: naive loops over boxes, channels, bins and
 * samples, sums in double. The geometry is backend/roi_align.h's. */
#include <string.h>
#include "backend/ref/ref_impl.h"
#include "backend/roi_align.h"

struct roi_dims { int64_t n, c, h, w, r, ph, pw; };

static enum deft_status roi_dims_of(const struct deft_graph *g, const struct deft_node *nd, int x,
                                    struct roi_dims *d) {
    const struct deft_shape *xs = ref_shape(g, x), *bs = ref_shape(g, nd->in[1]);
    *d = (struct roi_dims){xs->d[0], xs->d[1], xs->d[2], xs->d[3], bs->d[0], nd->attr.roi.out_h,
                           nd->attr.roi.out_w};
    if (d->n < 1 || d->h < 1 || d->w < 1)
        return deft_set_error(DEFT_ERR_SHAPE, "roi_align %s: empty feature map", nd->name);
    return DEFT_OK;
}

static enum deft_status bad_box(const struct deft_node *nd, int64_t r, const float *box, const char *why) {
    return deft_set_error(DEFT_ERR_INVALID_ARG,
                          "roi_align %s: box %lld (%g, %g, %g, %g, %g): %s", nd->name, (long long)r,
                          (double)box[0], (double)box[1], (double)box[2], (double)box[3],
                          (double)box[4], why);
}

/* in: x, boxes; out: y[R, C, ph, pw] */
enum deft_status deft_ref_roi_align(const struct deft_graph *g, int n, void *const *ptr,
                                    const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_roi_attr *a = &nd->attr.roi;
    struct roi_dims d;
    enum deft_status s = roi_dims_of(g, nd, nd->in[0], &d);
    if (s) return s;
    const float *x = ref_in(nd, ptr, 0), *boxes = ref_in(nd, ptr, 1);
    float *y = ref_out(nd, ptr, 0);
    for (int64_t r = 0; r < d.r; r++) {
        struct roi_geom geo;
        const char *why = NULL;
        if (!roi_geom_init(a, boxes + r * 5, d.n, d.h, d.w, &geo, &why)) return bad_box(nd, r, boxes + r * 5, why);
        for (int64_t c = 0; c < d.c; c++) {
            const float *plane = x + (geo.b * d.c + c) * d.h * d.w;
            for (int ph = 0; ph < d.ph; ph++)
                for (int pw = 0; pw < d.pw; pw++) {
                    double acc = 0;
                    for (int iy = 0; iy < geo.gh; iy++)
                        for (int ix = 0; ix < geo.gw; ix++) {
                            int64_t o[4];
                            float wt[4];
                            if (!roi_bilinear(geo.crop, roi_sample_y(&geo, ph, iy), roi_sample_x(&geo, pw, ix),
                                              d.h, d.w, o, wt))
                                continue;
                            for (int k = 0; k < 4; k++) acc += (double)wt[k] * plane[o[k]];
                        }
                    y[((r * d.c + c) * d.ph + ph) * d.pw + pw] = (float)(acc / geo.count);
                }
        }
    }
    return DEFT_OK;
}

/* in: dy[R, C, ph, pw], boxes; out: dx (the feature map's shape) */
enum deft_status deft_ref_roi_align_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                        const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_roi_attr *a = &nd->attr.roi;
    struct roi_dims d;
    enum deft_status s = roi_dims_of(g, nd, nd->out[0], &d);
    if (s) return s;
    const float *dy = ref_in(nd, ptr, 0), *boxes = ref_in(nd, ptr, 1);
    float *dx = ref_out(nd, ptr, 0);
    const int64_t total = d.n * d.c * d.h * d.w;
    double *acc = deft_calloc((size_t)total, sizeof *acc);
    if (!acc) return deft_set_error(DEFT_ERR_NOMEM, "roi_align_bwd %s: out of memory", nd->name);
    for (int64_t r = 0; r < d.r && !s; r++) {
        struct roi_geom geo;
        const char *why = NULL;
        if (!roi_geom_init(a, boxes + r * 5, d.n, d.h, d.w, &geo, &why)) {
            s = bad_box(nd, r, boxes + r * 5, why);
            break;
        }
        for (int64_t c = 0; c < d.c; c++) {
            double *plane = acc + (geo.b * d.c + c) * d.h * d.w;
            for (int ph = 0; ph < d.ph; ph++)
                for (int pw = 0; pw < d.pw; pw++) {
                    double gv = dy[((r * d.c + c) * d.ph + ph) * d.pw + pw] / (double)geo.count;
                    for (int iy = 0; iy < geo.gh; iy++)
                        for (int ix = 0; ix < geo.gw; ix++) {
                            int64_t o[4];
                            float wt[4];
                            if (!roi_bilinear(geo.crop, roi_sample_y(&geo, ph, iy), roi_sample_x(&geo, pw, ix),
                                              d.h, d.w, o, wt))
                                continue;
                            for (int k = 0; k < 4; k++) plane[o[k]] += gv * wt[k];
                        }
                }
        }
    }
    for (int64_t i = 0; i < total; i++) dx[i] = (float)acc[i];
    deft_free(acc);
    return s;
}

/* upsample.c - reference resize of the last two dimensions, x[n, c, h, w] ->
 * y[n, c, p, q] (sizes from the graph), nearest or bilinear, and backward.
 *
 * Index and weight computations copy PyTorch 1.13's CPU kernels (F.interpolate
 * with size=...), including their float arithmetic, so the oracle picks the
 * same source pixels as PyTorch even where dst*in/out is a rounding boundary:
 *   nearest:  src = min(floorf(dst * (float)in/out), in-1) (exact copy / 2x shortcuts)
 *   bilinear: align_corners: src = dst * (in-1)/(out-1); otherwise
 *             src = max((dst + 0.5) * in/out - 0.5, 0); i0 = (int)src,
 *             i1 = i0 + (i0 < in-1), l1 = src - i0, l0 = 1 - l1.
 */
#include <math.h>
#include "backend/ref/ref_impl.h"

/* Source indices and weights along one axis: out[o] = in[i0[o]]*l0[o] + in[i1[o]]*l1[o]. */
struct axis_map {
    int64_t *i0, *i1;
    float *l0, *l1;
};

static void axis_map_free(struct axis_map *m) {
    deft_free(m->i0);
    deft_free(m->i1);
    deft_free(m->l0);
    deft_free(m->l1);
}

static enum deft_status axis_map_make(int64_t in, int64_t out, const struct deft_upsample_attr *a,
                                      struct axis_map *m) {
    size_t cnt = (size_t)(out > 0 ? out : 1);
    m->i0 = deft_malloc(cnt * sizeof(int64_t));
    m->i1 = deft_malloc(cnt * sizeof(int64_t));
    m->l0 = deft_malloc(cnt * sizeof(float));
    m->l1 = deft_malloc(cnt * sizeof(float));
    if (!m->i0 || !m->i1 || !m->l0 || !m->l1) {
        axis_map_free(m);
        return deft_set_error(DEFT_ERR_NOMEM, "ref upsample: out of memory");
    }
    for (int64_t o = 0; o < out; o++) {
        int64_t i0, i1;
        float l0, l1;
        if (a->mode == DEFT_UPSAMPLE_NEAREST) {
            if (out == in) {
                i0 = o;
            } else if (out == 2 * in) {
                i0 = o >> 1;
            } else {
                float scale = (float)in / (float)out;
                i0 = (int64_t)floorf((float)o * scale);
                if (i0 > in - 1) i0 = in - 1;
            }
            i1 = i0;
            l0 = 1.0f;
            l1 = 0.0f;
        } else if (out == in) {
            i0 = i1 = o;
            l0 = 1.0f;
            l1 = 0.0f;
        } else {
            float src;
            if (a->align_corners) {
                float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
                src = scale * (float)o;
            } else {
                float scale = (float)in / (float)out;
                src = scale * ((float)o + 0.5f) - 0.5f;
                if (src < 0) src = 0;
            }
            i0 = (int64_t)src;
            i1 = i0 + (i0 < in - 1 ? 1 : 0);
            l1 = src - (float)i0;
            if (l1 < 0) l1 = 0;
            if (l1 > 1) l1 = 1;
            l0 = 1.0f - l1;
        }
        m->i0[o] = i0;
        m->i1[o] = i1;
        m->l0[o] = l0;
        m->l1[o] = l1;
    }
    return DEFT_OK;
}

/* Shared setup: plane count and both axis maps. x side = (h, w), y side = (p, q). */
static enum deft_status setup(const struct deft_shape *xs, const struct deft_shape *ys,
                              const struct deft_upsample_attr *a, int64_t *planes,
                              struct axis_map *mh, struct axis_map *mw) {
    if (xs->ndim != 4 || ys->ndim != 4)
        return deft_set_error(DEFT_ERR_SHAPE, "ref upsample: expected 4-D tensors");
    *planes = xs->d[0] * xs->d[1];
    *mh = (struct axis_map){0};
    *mw = (struct axis_map){0};
    enum deft_status st = axis_map_make(xs->d[2], ys->d[2], a, mh);
    if (st) return st;
    st = axis_map_make(xs->d[3], ys->d[3], a, mw);
    if (st) axis_map_free(mh);
    return st;
}

/* UPSAMPLE: in x; out y. */
enum deft_status deft_ref_upsample(const struct deft_graph *g, int n, void *const *ptr,
                                   const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->in[0]), *ys = ref_shape(g, nd->out[0]);
    struct axis_map mh, mw;
    int64_t planes;
    enum deft_status st = setup(xs, ys, &nd->attr.upsample, &planes, &mh, &mw);
    if (st) return st;
    const int64_t h = xs->d[2], w = xs->d[3], p = ys->d[2], q = ys->d[3];
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    #pragma omp parallel for
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * h * w;
        float *yp = y + pl * p * q;
        for (int64_t i = 0; i < p; i++) {
            const float *r0 = xp + mh.i0[i] * w, *r1 = xp + mh.i1[i] * w;
            const double a0 = mh.l0[i], a1 = mh.l1[i];
            for (int64_t j = 0; j < q; j++) {
                const int64_t c0 = mw.i0[j], c1 = mw.i1[j];
                const double b0 = mw.l0[j], b1 = mw.l1[j];
                yp[i * q + j] = (float)(a0 * (b0 * r0[c0] + b1 * r0[c1]) +
                                        a1 * (b0 * r1[c0] + b1 * r1[c1]));
            }
        }
    }
    axis_map_free(&mh);
    axis_map_free(&mw);
    return DEFT_OK;
}

/* UPSAMPLE_BWD: in dy[n, c, p, q]; out dx (attr.shape = x's shape): scatter dy with
 * the forward weights. */
enum deft_status deft_ref_upsample_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                       const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const struct deft_shape *xs = ref_shape(g, nd->out[0]), *ys = ref_shape(g, nd->in[0]);
    struct axis_map mh, mw;
    int64_t planes;
    enum deft_status st = setup(xs, ys, &nd->attr.upsample, &planes, &mh, &mw);
    if (st) return st;
    const int64_t h = xs->d[2], w = xs->d[3], p = ys->d[2], q = ys->d[3];
    const float *dy = ref_in(nd, ptr, 0);
    float *dx = ref_out(nd, ptr, 0);
    const int nthr = ref_max_threads();
    double *accs = deft_malloc((size_t)nthr * (size_t)(h * w > 0 ? h * w : 1) * sizeof(double));
    if (!accs) {
        axis_map_free(&mh);
        axis_map_free(&mw);
        return deft_set_error(DEFT_ERR_NOMEM, "ref upsample_bwd: out of memory");
    }
    #pragma omp parallel for
    for (int64_t pl = 0; pl < planes; pl++) {
        double *acc = accs + (int64_t)ref_thread_num() * h * w;
        for (int64_t j = 0; j < h * w; j++) acc[j] = 0.0;
        const float *dyp = dy + pl * p * q;
        for (int64_t i = 0; i < p; i++) {
            double *r0 = acc + mh.i0[i] * w, *r1 = acc + mh.i1[i] * w;
            const double a0 = mh.l0[i], a1 = mh.l1[i];
            for (int64_t j = 0; j < q; j++) {
                const int64_t c0 = mw.i0[j], c1 = mw.i1[j];
                const double b0 = mw.l0[j], b1 = mw.l1[j], d = dyp[i * q + j];
                r0[c0] += a0 * b0 * d;
                r0[c1] += a0 * b1 * d;
                r1[c0] += a1 * b0 * d;
                r1[c1] += a1 * b1 * d;
            }
        }
        float *dxp = dx + pl * h * w;
        for (int64_t j = 0; j < h * w; j++) dxp[j] = (float)acc[j];
    }
    deft_free(accs);
    axis_map_free(&mh);
    axis_map_free(&mw);
    return DEFT_OK;
}

/* cpu_roi_align.c - RoIAlign / crop-and-resize and its backward on plain
 * tensors with OpenMP (oneDNN has no RoI primitive).
 *
 * The forward runs in parallel over (box, output row): every output element
 * is written by one thread. The backward scatters into the feature-map
 * gradient; it runs in parallel over channel ranges, each thread walking all
 * boxes for its own channels, so no two threads ever add to the same element
 * (no atomics) and each element is summed in the same order at any thread
 * count. The bilinear taps of a sample are computed once per sample and used
 * for every channel. Geometry and semantics: backend/roi_align.h. */
#include <string.h>
#include "backend/cpu/cpu_impl.h"
#include "backend/roi_align.h"
#ifdef _OPENMP
#include <omp.h>
#endif

struct roi_priv { int node; };

/* Geometry of every box, checked before the parallel loops (an error cannot
 * leave an OpenMP loop). The caller frees *out. */
static enum deft_status geoms_of(const struct deft_node *node, const float *boxes, int64_t r, int64_t n,
                                 int64_t h, int64_t w, struct roi_geom **out) {
    struct roi_geom *g = deft_malloc((size_t)r * sizeof *g);
    if (!g) return deft_set_error(DEFT_ERR_NOMEM, "roi_align %s: out of memory", node->name);
    for (int64_t i = 0; i < r; i++) {
        const char *why = NULL;
        if (!roi_geom_init(&node->attr.roi, boxes + i * 5, n, h, w, &g[i], &why)) {
            const float *b = boxes + i * 5;
            deft_free(g);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "roi_align %s: box %lld (%g, %g, %g, %g, %g): %s",
                                  node->name, (long long)i, (double)b[0], (double)b[1], (double)b[2],
                                  (double)b[3], (double)b[4], why);
        }
    }
    *out = g;
    return DEFT_OK;
}

/* imem: x, boxes, y */
static enum deft_status roi_fwd(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const struct deft_node *node = deft_graph_node(p->g, ((struct roi_priv *)nd->priv)->node);
    const struct deft_shape *xs = &cpu_val(p, node->in[0])->shape;
    const int64_t n = xs->d[0], c = xs->d[1], h = xs->d[2], w = xs->d[3];
    const int64_t r = cpu_val(p, node->in[1])->shape.d[0];
    const int ph = node->attr.roi.out_h, pw = node->attr.roi.out_w;
    const float *x = cpu_mem_ptr(nd, s->imem[0], ptr, scratch), *boxes = cpu_mem_ptr(nd, s->imem[1], ptr, scratch);
    float *y = cpu_mem_ptr(nd, s->imem[2], ptr, scratch);
    struct roi_geom *geo;
    enum deft_status st = geoms_of(node, boxes, r, n, h, w, &geo);
    if (st) return st;
    const int64_t hw = h * w, pq = (int64_t)ph * pw;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < r; i++)
        for (int oy = 0; oy < ph; oy++) {
            const struct roi_geom *g = &geo[i];
            const float *xb = x + g->b * c * hw;
            float *yr = y + i * c * pq + (int64_t)oy * pw;
            for (int ox = 0; ox < pw; ox++) {
                for (int64_t k = 0; k < c; k++) yr[k * pq + ox] = 0.0f;
                for (int iy = 0; iy < g->gh; iy++)
                    for (int ix = 0; ix < g->gw; ix++) {
                        int64_t o[4];
                        float wt[4];
                        if (!roi_bilinear(g->crop, roi_sample_y(g, oy, iy), roi_sample_x(g, ox, ix), h, w, o, wt))
                            continue;
                        for (int64_t k = 0; k < c; k++) {
                            const float *pl = xb + k * hw;
                            yr[k * pq + ox] += wt[0] * pl[o[0]] + wt[1] * pl[o[1]] + wt[2] * pl[o[2]] + wt[3] * pl[o[3]];
                        }
                    }
                for (int64_t k = 0; k < c; k++) yr[k * pq + ox] /= g->count;
            }
        }
    deft_free(geo);
    return DEFT_OK;
}

/* imem: dy, boxes, dx */
static enum deft_status roi_bwd(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    const struct deft_node *node = deft_graph_node(p->g, ((struct roi_priv *)nd->priv)->node);
    const struct deft_shape *xs = &cpu_val(p, node->out[0])->shape;
    const int64_t n = xs->d[0], c = xs->d[1], h = xs->d[2], w = xs->d[3];
    const int64_t r = cpu_val(p, node->in[1])->shape.d[0];
    const int ph = node->attr.roi.out_h, pw = node->attr.roi.out_w;
    const float *dy = cpu_mem_ptr(nd, s->imem[0], ptr, scratch), *boxes = cpu_mem_ptr(nd, s->imem[1], ptr, scratch);
    float *dx = cpu_mem_ptr(nd, s->imem[2], ptr, scratch);
    struct roi_geom *geo;
    enum deft_status st = geoms_of(node, boxes, r, n, h, w, &geo);
    if (st) return st;
    const int64_t hw = h * w, pq = (int64_t)ph * pw;
    memset(dx, 0, (size_t)(n * c * hw) * sizeof *dx);
    #pragma omp parallel
    {
        int64_t t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
        const int64_t c0 = c * t / nt, c1 = c * (t + 1) / nt; /* this thread's channels */
        for (int64_t i = 0; i < r && c0 < c1; i++) {
            const struct roi_geom *g = &geo[i];
            float *db = dx + g->b * c * hw;
            const float *dyr = dy + i * c * pq;
            for (int oy = 0; oy < ph; oy++)
                for (int ox = 0; ox < pw; ox++)
                    for (int iy = 0; iy < g->gh; iy++)
                        for (int ix = 0; ix < g->gw; ix++) {
                            int64_t o[4];
                            float wt[4];
                            if (!roi_bilinear(g->crop, roi_sample_y(g, oy, iy), roi_sample_x(g, ox, ix), h, w, o, wt))
                                continue;
                            for (int64_t k = c0; k < c1; k++) {
                                float gv = dyr[k * pq + (int64_t)oy * pw + ox] / g->count;
                                float *pl = db + k * hw;
                                pl[o[0]] += gv * wt[0], pl[o[1]] += gv * wt[1];
                                pl[o[2]] += gv * wt[2], pl[o[3]] += gv * wt[3];
                            }
                        }
        }
    }
    deft_free(geo);
    return DEFT_OK;
}

enum deft_status cpu_compile_roi_align(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    struct roi_priv *pr = deft_malloc(sizeof *pr);
    if (!pr) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling for cpu");
    pr->node = n;
    nd->priv = pr;
    int m[3], out = node->out[0];
    dnnl_memory_desc_t pin0, pin1, pout;
    deft_dnnl_md_plain(&pin0, &cpu_val(p, node->in[0])->shape);
    deft_dnnl_md_plain(&pin1, &cpu_val(p, node->in[1])->shape);
    deft_dnnl_md_plain(&pout, &cpu_val(p, out)->shape);
    p->md[out] = pout; /* plain: the next op reorders if it wants blocks */
    p->md_set[out] = true;
    enum deft_status st;
    if ((st = cpu_bind_in(p, nd, node->in[0], &pin0, &m[0])) || (st = cpu_bind_in(p, nd, node->in[1], &pin1, &m[1])) ||
        (st = cpu_mem_value(p, nd, out, &pout, &m[2])))
        return st;
    return cpu_add_fn(p, nd, node->op == DEFT_OP_ROI_ALIGN ? roi_fwd : roi_bwd, m[0], m[1], m[2], -1);
}

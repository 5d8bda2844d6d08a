/* cpu_deconv_phase.c - the forward of a stride-2 transposed convolution with
 * a kernel 2P+2 wide and padding P (UNet's 4x4/2 pad 1, the vanilla UNet's
 * 2x2/2 pad 0) as four stride-1 convolutions, one per output phase, whose
 * outputs are interleaved into the nChw16c output.
 *
 * Output pixel (2a+py, 2b+px) only meets the kernel taps of one parity per
 * axis, so phase (py, px) is an ordinary T x T convolution (T = K/2) of the
 * input with those taps, flipped, padded P - (py+P)/2 before and the rest
 * after. The products are the transposed convolution's, summed in another
 * order (float rounding only). oneDNN 2.6 runs a transposed forward as a
 * strided backward-data kernel at about half its forward-convolution speed:
 * 223 ms against 111 ms for the four phases of the CamVid UNet's 64->64
 * 120x160 -> 240x320 layer at batch 8 on one AVX-512 core. The backward
 * passes stay on oneDNN's transposed kernels (they run at forward speed).
 * DEFT_DECONV=direct turns this path off. */
#include <stdlib.h>
#include <string.h>
#include "backend/cpu/cpu_impl.h"

#define BLK 16 /* nChw16c */

struct phase_priv {
    int w, wplain[4], wblk[4], out[4], y;
    int64_t n, ic, oc, ih, iw, kh, kw, th, tw, py, px; /* py, px: the padding P per axis */
};

static bool phase_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("DEFT_DECONV");
        on = !(v && strcmp(v, "direct") == 0);
    }
    return on;
}

static bool phase_geometry(const struct conv_geom *cg) {
    return cg->transposed && cg->g == 1 && cg->stride[0] == 2 && cg->stride[1] == 2 && cg->dil[0] == 0 &&
           cg->dil[1] == 0 && cg->pad_l[0] == cg->pad_r[0] && cg->pad_l[1] == cg->pad_r[1] &&
           cg->pad_l[0] >= 0 && cg->pad_l[1] >= 0 && cg->r == 2 * cg->pad_l[0] + 2 &&
           cg->s == 2 * cg->pad_l[1] + 2 && cg->dst[2] == 2 * cg->src[2] && cg->dst[3] == 2 * cg->src[3];
}

/* Padding before phase q (0/1) on an axis with padding P and kernel 2T. */
static int64_t pad_before(int64_t P, int q) { return P - (q + P) / 2; }

/* The forward pd of phase (py, px); src: the layout to read the input in. */
static dnnl_status_t phase_pd(struct cpu_prog *p, const struct conv_geom *cg, const dnnl_memory_desc_t *src,
                              bool bias, int py, int px, const char *name, dnnl_primitive_desc_t *pd) {
    int64_t T0 = cg->r / 2, T1 = cg->s / 2;
    dnnl_memory_desc_t w, dst;
    dnnl_dims_t wd = {cg->dst[1], cg->src[1], T0, T1}, dd = {cg->src[0], cg->dst[1], cg->src[2], cg->src[3]};
    dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_aBcd16b);
    dnnl_dims_t st = {1, 1}, pl = {pad_before(cg->pad_l[0], py), pad_before(cg->pad_l[1], px)};
    dnnl_dims_t pr = {T0 - 1 - pl[0], T1 - 1 - pl[1]};
    dnnl_convolution_desc_t d;
    dnnl_status_t s = dnnl_convolution_forward_desc_init(&d, cpu_fwd_prop(p), dnnl_convolution_direct, src, &w,
                                                         bias ? &cg->b_plain : NULL, &dst, st, pl, pr);
    if (s == dnnl_success) s = deft_dnnl_pd_create(pd, &d, p->eng, NULL, name, "deconv phase", false);
    if (s == dnnl_success && (strstr(deft_dnnl_pd_impl(*pd), "ref") || strstr(deft_dnnl_pd_impl(*pd), "gemm"))) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
        s = dnnl_unimplemented; /* the transposed kernel is the better slow path */
    }
    return s;
}

/* The four pds, reading the input in its own layout when a JIT kernel takes it, else nChw16c. */
static dnnl_status_t phase_pds(struct cpu_prog *p, const struct conv_geom *cg, int x, bool bias, const char *name,
                               dnnl_primitive_desc_t pd[4]) {
    dnnl_memory_desc_t blk;
    dnnl_dims_t sd = {cg->src[0], cg->src[1], cg->src[2], cg->src[3]};
    dnnl_memory_desc_init_by_tag(&blk, 4, sd, dnnl_f32, dnnl_aBcd16b);
    const dnnl_memory_desc_t *tries[2] = {x >= 0 && p->md_set[x] ? &p->md[x] : &blk, &blk};
    dnnl_status_t s = dnnl_unimplemented;
    memset(pd, 0, 4 * sizeof *pd);
    for (int t = 0; t < 2 && s != dnnl_success; t++) {
        s = dnnl_success;
        for (int q = 0; q < 4 && s == dnnl_success; q++) s = phase_pd(p, cg, tries[t], bias, q >> 1, q & 1, name, &pd[q]);
        if (s != dnnl_success)
            for (int q = 0; q < 4; q++)
                if (pd[q]) dnnl_primitive_desc_destroy(pd[q]), pd[q] = NULL;
    }
    return s;
}

/* Plain [IC, OC, KH, KW] transposed weights -> four plain [OC, IC, TH, TW] phase kernels. */
static enum deft_status split_weights(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                      void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    (void)p; (void)s; (void)rc;
    const struct phase_priv *f = nd->priv;
    const float *w = cpu_mem_ptr(nd, f->w, ptr, scratch);
    for (int q = 0; q < 4; q++) {
        float *o = cpu_mem_ptr(nd, f->wplain[q], ptr, scratch);
        int64_t ry = (q / 2 + f->py) % 2, rx = (q % 2 + f->px) % 2;
        for (int64_t co = 0; co < f->oc; co++)
            for (int64_t ci = 0; ci < f->ic; ci++)
                for (int64_t ty = 0; ty < f->th; ty++)
                    for (int64_t tx = 0; tx < f->tw; tx++) {
                        int64_t ky = 2 * (f->th - 1 - ty) + ry, kx = 2 * (f->tw - 1 - tx) + rx;
                        o[((co * f->ic + ci) * f->th + ty) * f->tw + tx] = w[((ci * f->oc + co) * f->kh + ky) * f->kw + kx];
                    }
    }
    return DEFT_OK;
}

/* Four nChw16c phase outputs [N, OC, IH, IW] -> the nChw16c output [N, OC, 2IH, 2IW]. */
static enum deft_status interleave(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                   void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    (void)p; (void)s; (void)rc;
    const struct phase_priv *f = nd->priv;
    const float *ph[4];
    for (int q = 0; q < 4; q++) ph[q] = cpu_mem_ptr(nd, f->out[q], ptr, scratch);
    float *y = cpu_mem_ptr(nd, f->y, ptr, scratch);
    const int64_t rows = f->n * ((f->oc + BLK - 1) / BLK) * f->ih, iw = f->iw;
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) /* r: (n, channel block, input row a) */
        for (int py = 0; py < 2; py++) {
            float *yr = y + ((r / f->ih) * 2 * f->ih + 2 * (r % f->ih) + py) * 2 * iw * BLK;
            const float *a = ph[2 * py] + r * iw * BLK, *b = ph[2 * py + 1] + r * iw * BLK;
            for (int64_t x = 0; x < iw; x++) {
                memcpy(yr + 2 * x * BLK, a + x * BLK, BLK * sizeof(float));
                memcpy(yr + (2 * x + 1) * BLK, b + x * BLK, BLK * sizeof(float));
            }
        }
    return DEFT_OK;
}

/* Weights: split then reordered per phase; in an inference program they are
 * prepared once per parameter version (the node's leading prep steps). */
static enum deft_status bind_weights(struct cpu_prog *p, struct cpu_node *nd, const struct conv_geom *cg,
                                     dnnl_primitive_desc_t pd[4], struct phase_priv *f, int w) {
    bool once = p->inference && cpu_val(p, w)->kind != DEFT_VALUE_NODE;
    enum deft_status (*buf)(struct cpu_prog *, struct cpu_node *, const dnnl_memory_desc_t *, int *) =
        once ? cpu_mem_owned : cpu_mem_temp;
    dnnl_memory_desc_t plain;
    dnnl_dims_t wd = {cg->dst[1], cg->src[1], cg->r / 2, cg->s / 2};
    dnnl_memory_desc_init_by_tag(&plain, 4, wd, dnnl_f32, dnnl_abcd);
    enum deft_status st = cpu_mem_value(p, nd, w, &cg->w_plain, &f->w);
    for (int q = 0; q < 4 && !st; q++) st = buf(p, nd, &plain, &f->wplain[q]);
    if (!st) st = cpu_add_fn(p, nd, split_weights, -1, -1, -1, -1);
    for (int q = 0; q < 4 && !st; q++) {
        const dnnl_memory_desc_t *want = deft_dnnl_pd_md(pd[q], dnnl_query_weights_md, 0);
        if (deft_dnnl_md_equal(want, &plain)) f->wblk[q] = f->wplain[q];
        else if (!(st = buf(p, nd, want, &f->wblk[q]))) st = cpu_add_reorder(p, nd, f->wplain[q], f->wblk[q]);
    }
    if (!st && once) nd->nprep = nd->nsteps;
    return st;
}

enum deft_status cpu_compile_deconv_phase(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd,
                                          const struct conv_geom *cg) {
    if (!phase_enabled() || !phase_geometry(cg) || node->n_out < 1) return DEFT_ERR_UNSUPPORTED;
    int x = node->in[0], w = node->in[1], b = node->n_in > 2 ? node->in[2] : -1, y = node->out[0];
    dnnl_primitive_desc_t pd[4];
    if (phase_pds(p, cg, x, b >= 0, node->name, pd) != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    struct phase_priv *f = deft_calloc(1, sizeof *f);
    enum deft_status st = f ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling %s", node->name);
    if (f) {
        nd->priv = f;
        *f = (struct phase_priv){.n = cg->src[0], .ic = cg->src[1], .oc = cg->dst[1], .ih = cg->src[2],
                                 .iw = cg->src[3], .kh = cg->r, .kw = cg->s, .th = cg->r / 2, .tw = cg->s / 2,
                                 .py = cg->pad_l[0], .px = cg->pad_l[1]};
    }
    int mx = -1, mb = -1;
    if (!st) st = bind_weights(p, nd, cg, pd, f, w);
    if (!st && b >= 0) st = cpu_mem_value(p, nd, b, &cg->b_plain, &mb);
    if (!st) st = cpu_bind_in(p, nd, x, deft_dnnl_pd_md(pd[0], dnnl_query_src_md, 0), &mx);
    for (int q = 0; q < 4 && !st; q++) {
        st = cpu_mem_temp(p, nd, deft_dnnl_pd_md(pd[q], dnnl_query_dst_md, 0), &f->out[q]);
        int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        int mems[4] = {mx, f->wblk[q], mb, f->out[q]};
        if (!st) st = cpu_add_prim(p, nd, pd[q], 4, args, mems);
    }
    dnnl_memory_desc_t ymd;
    dnnl_dims_t yd = {cg->dst[0], cg->dst[1], cg->dst[2], cg->dst[3]};
    dnnl_memory_desc_init_by_tag(&ymd, 4, yd, dnnl_f32, dnnl_aBcd16b);
    if (!st) st = cpu_bind_out(p, nd, y, &ymd, &f->y);
    if (!st) st = cpu_add_fn(p, nd, interleave, -1, -1, -1, -1);
    for (int i = 0; i < nd->npending && !st; i++) st = cpu_add_reorder(p, nd, nd->pending[i][0], nd->pending[i][1]);
    nd->npending = 0;
    for (int q = 0; q < 4; q++) dnnl_primitive_desc_destroy(pd[q]);
    if (!st) deft_log(DEFT_LOG_DEBUG, "cpu: %s: transposed conv as 4 phase convolutions", node->name);
    return st;
}

/* cuda_conv.c - convolution and fully connected layers on the CUDA backend:
 * im2col (a kernel) then one strided-batched GEMM per group (cuBLAS), the
 * data gradient as GEMM then col2im, the weight gradient as one GEMM per
 * image accumulating into dw. Images go through in chunks whose column
 * buffer fits CONV_COL_LIMIT, so scratch stays bounded at any batch size.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/shape_views.h"

#define CONV_COL_LIMIT ((int64_t)32 << 20) /* floats of the column buffer (128 MiB) */

/* Convolution seen as x[n, c, h, w] -> y[n, k, p, q] with w[k, c/g, r, s]. */
struct conv_geom {
    int64_t n, c, h, w, k, p, q, r, s, groups;
    int64_t sh, sw, ph, pw, dh, dw;
};

static void conv_geom(const struct deft_graph *g, const struct deft_node *nd, int xv, int wv, int yv,
                      struct conv_geom *G) {
    const struct deft_shape *xs = &deft_graph_value(g, xv)->shape, *ws = &deft_graph_value(g, wv)->shape;
    const struct deft_shape *ys = &deft_graph_value(g, yv)->shape;
    const struct deft_conv_attr *a = &nd->attr.conv;
    *G = (struct conv_geom){
        .n = xs->d[0], .c = xs->d[1], .h = xs->d[2], .w = xs->d[3],
        .k = ys->d[1], .p = ys->d[2], .q = ys->d[3], .r = ws->d[2], .s = ws->d[3],
        .groups = a->groups > 0 ? a->groups : 1,
        .sh = a->stride[0] > 0 ? a->stride[0] : 1, .sw = a->stride[1] > 0 ? a->stride[1] : 1,
        .ph = a->pad[0], .pw = a->pad[1],
        .dh = a->dilation[0] > 0 ? a->dilation[0] : 1, .dw = a->dilation[1] > 0 ? a->dilation[1] : 1,
    };
}

static int64_t col_per_image(const struct conv_geom *G) { return G->c * G->r * G->s * G->p * G->q; }
static int64_t chunk_images(const struct conv_geom *G) {
    int64_t per = col_per_image(G), nb = per > 0 ? CONV_COL_LIMIT / per : G->n;
    if (nb < 1) nb = 1;
    return nb < G->n ? nb : G->n;
}

static union ck_args im2col_args(const struct conv_geom *G, int64_t img0, int64_t nimg) {
    return (union ck_args){.im2col = {
        .img0 = img0, .nimg = nimg, .c = G->c, .h = G->h, .w = G->w, .p = G->p, .q = G->q,
        .r = G->r, .s = G->s, .sh = G->sh, .sw = G->sw, .ph = G->ph, .pw = G->pw, .dh = G->dh, .dw = G->dw}};
}

/* y = conv(x, w) (+ bias). */
static enum deft_status conv_fwd(struct deft_program *p, const struct conv_geom *G, const float *x,
                                 const float *w, const float *bias, float *y, float *col) {
    const int64_t pq = G->p * G->q, kg = G->k / G->groups, crsg = G->c / G->groups * G->r * G->s;
    const int64_t step = chunk_images(G);
    for (int64_t i0 = 0; i0 < G->n; i0 += step) {
        const int64_t nb = G->n - i0 < step ? G->n - i0 : step;
        union ck_args a = im2col_args(G, i0, nb);
        a.im2col.x = x;
        a.im2col.col = col;
        enum deft_status s = cuda_launch(p, CK_IM2COL, nb * col_per_image(G), &a);
        if (s) return s;
        for (int64_t gi = 0; gi < G->groups; gi++)
            CUDA_TRY(p, p->api->gemm(p->ctx, false, false, kg, pq, crsg, 1.0f, w + gi * kg * crsg, crsg, 0,
                                     col + gi * crsg * pq, pq, col_per_image(G), 0.0f,
                                     y + (i0 * G->k + gi * kg) * pq, pq, G->k * pq, nb),
                     "conv GEMM");
    }
    if (!bias) return DEFT_OK;
    union ck_args b = {.bias = {.y = y, .bias = bias, .inner = pq, .ch = G->k}};
    return cuda_launch(p, CK_BIAS, G->n * G->k * pq, &b);
}

/* dx = conv^T(dy, w). */
static enum deft_status conv_bwd_data(struct deft_program *p, const struct conv_geom *G, const float *dy,
                                      const float *w, float *dx, float *col) {
    const int64_t pq = G->p * G->q, kg = G->k / G->groups, crsg = G->c / G->groups * G->r * G->s;
    const int64_t step = chunk_images(G);
    for (int64_t i0 = 0; i0 < G->n; i0 += step) {
        const int64_t nb = G->n - i0 < step ? G->n - i0 : step;
        for (int64_t gi = 0; gi < G->groups; gi++)
            CUDA_TRY(p, p->api->gemm(p->ctx, true, false, crsg, pq, kg, 1.0f, w + gi * kg * crsg, crsg, 0,
                                     dy + (i0 * G->k + gi * kg) * pq, pq, G->k * pq, 0.0f,
                                     col + gi * crsg * pq, pq, col_per_image(G), nb),
                     "conv data-gradient GEMM");
        union ck_args a = im2col_args(G, i0, nb);
        a.im2col.col_in = col;
        a.im2col.dx = dx;
        enum deft_status s = cuda_launch(p, CK_COL2IM, nb * G->c * G->h * G->w, &a);
        if (s) return s;
    }
    return DEFT_OK;
}

/* dw = sum over images of dy col(x)^T; db = channel sums of dy. */
static enum deft_status conv_bwd_weights(struct deft_program *p, const struct conv_geom *G, const float *dy,
                                         const float *x, float *dw, float *db, float *col, char *parts) {
    const int64_t pq = G->p * G->q, kg = G->k / G->groups, crsg = G->c / G->groups * G->r * G->s;
    const int64_t step = chunk_images(G);
    if (G->n == 0) CUDA_TRY(p, p->api->memset0(p->ctx, dw, (size_t)(G->k * crsg) * sizeof(float)), "memset");
    for (int64_t i0 = 0; i0 < G->n; i0 += step) {
        const int64_t nb = G->n - i0 < step ? G->n - i0 : step;
        union ck_args a = im2col_args(G, i0, nb);
        a.im2col.x = x;
        a.im2col.col = col;
        enum deft_status s = cuda_launch(p, CK_IM2COL, nb * col_per_image(G), &a);
        if (s) return s;
        for (int64_t j = 0; j < nb; j++)
            for (int64_t gi = 0; gi < G->groups; gi++)
                CUDA_TRY(p, p->api->gemm(p->ctx, false, true, kg, crsg, pq, 1.0f,
                                         dy + ((i0 + j) * G->k + gi * kg) * pq, pq, 0,
                                         col + j * col_per_image(G) + gi * crsg * pq, pq, 0,
                                         i0 + j == 0 ? 0.0f : 1.0f, dw + gi * kg * crsg, crsg, 0, 1),
                         "conv weight-gradient GEMM");
    }
    if (!db) return DEFT_OK;
    return cuda_channel_sum(p, dy, G->n, G->k, pq, db, parts);
}

enum deft_status cuda_channel_sum(struct deft_program *p, const float *x, int64_t outer, int64_t ch,
                                  int64_t inner, float *out, char *scratch) {
    const int64_t parts = cuda_parts(outer * inner);
    double *part = (double *)scratch;
    union ck_args a = {.chsum = {.x = x, .part = part, .outer = outer, .ch = ch, .inner = inner,
                                 .parts = parts, .mode = CK_CHSUM_SUM}};
    enum deft_status s = cuda_launch(p, CK_CHSUM, ch * parts, &a);
    if (s) return s;
    union ck_args f = {.parts = {.part = part, .out = out, .parts = parts}};
    return cuda_launch(p, CK_PARTS_SUM, ch, &f);
}

/* Scratch of a conv node: [bias part sums (doubles) | coef][column buffer]. */
static size_t col_offset(int64_t k, int64_t per_channel) {
    size_t head = (size_t)(k * cuda_parts(per_channel)) * sizeof(double) + (size_t)k * 3 * sizeof(float);
    return (head + 255) / 256 * 256;
}
static float *col_buffer(char *scratch, int64_t k, int64_t per_channel) {
    return (float *)(scratch + col_offset(k, per_channel));
}

size_t cuda_conv_scratch(const struct deft_graph *g, const struct deft_node *nd) {
    int xv, wv, yv;
    switch (nd->op) {
    case DEFT_OP_CONV2D: xv = nd->in[0], wv = nd->in[1], yv = nd->out[0]; break;
    case DEFT_OP_CONV2D_BWD_DATA: xv = nd->out[0], wv = nd->in[1], yv = nd->in[0]; break;
    case DEFT_OP_CONV2D_BWD_WEIGHTS: xv = nd->in[1], wv = nd->out[0], yv = nd->in[0]; break;
    case DEFT_OP_LINEAR_BWD_WEIGHTS: {
        int64_t rows, m;
        view_rows(&deft_graph_value(g, nd->in[0])->shape, &rows, &m);
        return (size_t)(m * cuda_parts(rows)) * sizeof(double) + (size_t)m * 3 * sizeof(float) + 256;
    }
    default: return 0;
    }
    struct conv_geom G;
    conv_geom(g, nd, xv, wv, yv, &G);
    return col_offset(G.k, G.n * G.p * G.q) + (size_t)(chunk_images(&G) * col_per_image(&G)) * sizeof(float);
}

/* The conv of node nd (x, w, y: its input, weight and output values in the
 * forward view); false unless x is 4-D. */
static bool node_geom(const struct deft_program *p, const struct deft_node *nd, int xv, int wv, int yv,
                      struct conv_geom *G) {
    if (deft_graph_value(p->g, xv)->shape.ndim != 4) return false;
    conv_geom(p->g, nd, xv, wv, yv, G);
    return true;
}
static float *conv_col(char *scratch, const struct conv_geom *G) {
    return col_buffer(scratch, G->k, G->n * G->p * G->q);
}

/* CONV2D: in x, w, [b]; out y. */
enum deft_status cuda_conv2d(struct deft_program *p, const struct deft_node *nd, int n,
                             void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    struct conv_geom G;
    if (!node_geom(p, nd, nd->in[0], nd->in[1], nd->out[0], &G)) return DEFT_ERR_UNSUPPORTED;
    const float *b = nd->n_in > 2 && nd->in[2] >= 0 ? ptr[nd->in[2]] : NULL;
    return conv_fwd(p, &G, ptr[nd->in[0]], ptr[nd->in[1]], b, ptr[nd->out[0]], conv_col(scratch, &G));
}

/* CONV2D_BWD_DATA: in dy, w; out dx. */
enum deft_status cuda_conv2d_bwd_data(struct deft_program *p, const struct deft_node *nd, int n,
                                      void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    struct conv_geom G;
    if (!node_geom(p, nd, nd->out[0], nd->in[1], nd->in[0], &G)) return DEFT_ERR_UNSUPPORTED;
    return conv_bwd_data(p, &G, ptr[nd->in[0]], ptr[nd->in[1]], ptr[nd->out[0]], conv_col(scratch, &G));
}

/* CONV2D_BWD_WEIGHTS: in dy, x; out dw, [db]. */
enum deft_status cuda_conv2d_bwd_weights(struct deft_program *p, const struct deft_node *nd, int n,
                                         void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    struct conv_geom G;
    if (!node_geom(p, nd, nd->in[1], nd->out[0], nd->in[0], &G)) return DEFT_ERR_UNSUPPORTED;
    float *db = nd->n_out > 1 && nd->out[1] >= 0 ? ptr[nd->out[1]] : NULL;
    return conv_bwd_weights(p, &G, ptr[nd->in[0]], ptr[nd->in[1]], ptr[nd->out[0]], db, conv_col(scratch, &G),
                            scratch);
}

/* x viewed as [rows, k] (k = last dim), w [m, k]. */
static void linear_dims(const struct deft_graph *g, int xv, int wv, int64_t *rows, int64_t *k, int64_t *m) {
    view_rows(&deft_graph_value(g, xv)->shape, rows, k);
    *m = deft_graph_value(g, wv)->shape.d[0];
}

enum deft_status cuda_linear(struct deft_program *p, const struct deft_node *nd, int n,
                             void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    int64_t rows, k, m;
    linear_dims(p->g, nd->in[0], nd->in[1], &rows, &k, &m);
    float *y = ptr[nd->out[0]];
    CUDA_TRY(p, p->api->gemm(p->ctx, false, true, rows, m, k, 1.0f, ptr[nd->in[0]], k, 0, ptr[nd->in[1]], k, 0,
                             0.0f, y, m, 0, 1), "linear GEMM");
    if (nd->n_in < 3 || nd->in[2] < 0) return DEFT_OK;
    union ck_args b = {.bias = {.y = y, .bias = ptr[nd->in[2]], .inner = 1, .ch = m}};
    return cuda_launch(p, CK_BIAS, rows * m, &b);
}

/* LINEAR_BWD_DATA: in dy, w; out dx = dy w. */
enum deft_status cuda_linear_bwd_data(struct deft_program *p, const struct deft_node *nd, int n,
                                      void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    int64_t rows, k, m;
    linear_dims(p->g, nd->out[0], nd->in[1], &rows, &k, &m);
    CUDA_TRY(p, p->api->gemm(p->ctx, false, false, rows, k, m, 1.0f, ptr[nd->in[0]], m, 0, ptr[nd->in[1]], k, 0,
                             0.0f, ptr[nd->out[0]], k, 0, 1), "linear data-gradient GEMM");
    return DEFT_OK;
}

/* LINEAR_BWD_WEIGHTS: in dy, x; out dw = dy^T x, [db]. */
enum deft_status cuda_linear_bwd_weights(struct deft_program *p, const struct deft_node *nd, int n,
                                         void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    int64_t rows, k, m;
    linear_dims(p->g, nd->in[1], nd->out[0], &rows, &k, &m);
    const float *dy = ptr[nd->in[0]];
    CUDA_TRY(p, p->api->gemm(p->ctx, true, false, m, k, rows, 1.0f, dy, m, 0, ptr[nd->in[1]], k, 0, 0.0f,
                             ptr[nd->out[0]], k, 0, 1), "linear weight-gradient GEMM");
    if (nd->n_out < 2 || nd->out[1] < 0) return DEFT_OK;
    return cuda_channel_sum(p, dy, rows, m, 1, ptr[nd->out[1]], scratch);
}

/* linear.c - reference fully connected layer: y[rows, m] = x[rows, k] w[m, k]^T + b[m]
 * (rows = every leading dimension of x), and its data and weight gradients.
 */
#include "backend/ref/ref_impl.h"

/* x viewed as [rows, k] where k is x's last dimension. */
static void linear_dims(const struct deft_graph *g, int x, int64_t *rows, int64_t *k) {
    view_rows(ref_shape(g, x), rows, k);
}

static double *alloc_acc(int64_t len) {
    double *a = deft_malloc((size_t)ref_max_threads() * (size_t)(len > 0 ? len : 1) *
                            sizeof(double));
    if (!a) deft_set_error(DEFT_ERR_NOMEM, "ref linear: out of memory");
    return a;
}

/* LINEAR: in x, w, [b]; out y. */
enum deft_status deft_ref_linear(const struct deft_graph *g, int n, void *const *ptr,
                                 const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    int64_t rows, k;
    linear_dims(g, nd->in[0], &rows, &k);
    const int64_t m = ref_shape(g, nd->in[1])->d[0];
    const float *x = ref_in(nd, ptr, 0), *w = ref_in(nd, ptr, 1);
    const float *b = nd->attr.has_bias ? ref_in(nd, ptr, 2) : NULL;
    float *y = ref_out(nd, ptr, 0);
    const int64_t rm = rows * m;
    #pragma omp parallel for
    for (int64_t i = 0; i < rm; i++) {
        const float *xr = x + (i / m) * k, *wr = w + (i % m) * k;
        double sum = b ? b[i % m] : 0.0;
        for (int64_t j = 0; j < k; j++) sum += (double)xr[j] * wr[j];
        y[i] = (float)sum;
    }
    return DEFT_OK;
}

/* LINEAR_BWD_DATA: in dy[rows, m], w[m, k]; out dx[rows, k] = dy w. */
enum deft_status deft_ref_linear_bwd_data(const struct deft_graph *g, int n, void *const *ptr,
                                          const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    int64_t rows, k;
    linear_dims(g, nd->out[0], &rows, &k);
    const int64_t m = ref_shape(g, nd->in[1])->d[0];
    const float *dy = ref_in(nd, ptr, 0), *w = ref_in(nd, ptr, 1);
    float *dx = ref_out(nd, ptr, 0);
    double *accs = alloc_acc(k);
    if (!accs) return DEFT_ERR_NOMEM;
    #pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        double *acc = accs + (int64_t)ref_thread_num() * k;
        for (int64_t j = 0; j < k; j++) acc[j] = 0.0;
        for (int64_t mi = 0; mi < m; mi++) {
            const double d = dy[r * m + mi];
            const float *wr = w + mi * k;
            for (int64_t j = 0; j < k; j++) acc[j] += d * wr[j];
        }
        for (int64_t j = 0; j < k; j++) dx[r * k + j] = (float)acc[j];
    }
    deft_free(accs);
    return DEFT_OK;
}

/* LINEAR_BWD_WEIGHTS: in dy[rows, m], x[rows, k]; out dw[m, k] = dy^T x, [db[m] = sum dy]. */
enum deft_status deft_ref_linear_bwd_weights(const struct deft_graph *g, int n, void *const *ptr,
                                             const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    int64_t rows, k;
    linear_dims(g, nd->in[1], &rows, &k);
    const struct deft_shape *dys = ref_shape(g, nd->in[0]);
    const int64_t m = dys->ndim > 0 ? dys->d[dys->ndim - 1] : 1;
    const float *dy = ref_in(nd, ptr, 0), *x = ref_in(nd, ptr, 1);
    float *dw = ref_out(nd, ptr, 0), *db = nd->attr.has_bias ? ref_out(nd, ptr, 1) : NULL;
    double *accs = alloc_acc(k);
    if (!accs) return DEFT_ERR_NOMEM;
    #pragma omp parallel for
    for (int64_t mi = 0; mi < m; mi++) {
        double *acc = accs + (int64_t)ref_thread_num() * k;
        double bsum = 0;
        for (int64_t j = 0; j < k; j++) acc[j] = 0.0;
        for (int64_t r = 0; r < rows; r++) {
            const double d = dy[r * m + mi];
            const float *xr = x + r * k;
            bsum += d;
            for (int64_t j = 0; j < k; j++) acc[j] += d * xr[j];
        }
        if (dw)
            for (int64_t j = 0; j < k; j++) dw[mi * k + j] = (float)acc[j];
        if (db) db[mi] = (float)bsum;
    }
    deft_free(accs);
    return DEFT_OK;
}

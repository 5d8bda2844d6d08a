/* anchors_kmeans.c - YOLO anchors as TAO's kmeans action picks them
 * (detection.md §2): k-medians over normalised (w, h) with the distance
 * 1 - IoU of boxes aligned at a corner, and the spec lines they go into. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_eval.h"

void deft_anchor_kmeans_options_init(struct deft_anchor_kmeans_options *o) {
    memset(o, 0, sizeof *o);
    o->max_steps = 10000;
}

enum deft_status deft_anchor_kmeans_init(int n, int k, uint64_t seed, int *idx) {
    if (k < 1 || n <= k)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "kmeans: %d boxes for %d clusters (need more boxes than clusters)", n, k);
    int *perm = deft_malloc((size_t)n * sizeof *perm);
    if (!perm) return deft_set_error(DEFT_ERR_NOMEM, "kmeans: out of memory");
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = 0; i < k; i++) { /* partial Fisher-Yates: k distinct boxes */
        int j = i + (int)(deft_rng_u64(seed, 0x6b6d65616e73ull, (uint64_t)i) % (uint64_t)(n - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        idx[i] = perm[i];
    }
    deft_free(perm);
    return DEFT_OK;
}

/* IoU of two boxes sharing a corner. */
static double wh_iou(double w0, double h0, double w1, double h1) {
    double inter = fmin(w0, w1) * fmin(h0, h1);
    return inter / (w0 * h0 + w1 * h1 - inter);
}

static int best_centre(double w, double h, const double *c, int k, double *best_iou) {
    int best = 0;
    double b = wh_iou(w, h, c[0], c[1]);
    for (int j = 1; j < k; j++) {
        double o = wh_iou(w, h, c[2 * j], c[2 * j + 1]);
        if (o > b) b = o, best = j; /* first maximum, as argmax */
    }
    if (best_iou) *best_iou = b;
    return best;
}

static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v); the mean of the two middle values when n is even. */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, dcmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Move each centre to the median w and h of its boxes; empty clusters stay. */
static void update_centres(const double *wh, int n, const int *assign, int k, double *c, double *buf_w, double *buf_h) {
    for (int j = 0; j < k; j++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (assign[i] == j) buf_w[m] = wh[2 * i], buf_h[m++] = wh[2 * i + 1];
        if (!m) continue;
        c[2 * j] = median(buf_w, m);
        c[2 * j + 1] = median(buf_h, m);
    }
}

static void sort_by_area(double *c, int k) {
    for (int i = 1; i < k; i++) { /* insertion sort: stable */
        double w = c[2 * i], h = c[2 * i + 1];
        int j = i - 1;
        while (j >= 0 && c[2 * j] * c[2 * j + 1] > w * h) {
            c[2 * j + 2] = c[2 * j];
            c[2 * j + 3] = c[2 * j + 1];
            j--;
        }
        c[2 * j + 2] = w;
        c[2 * j + 3] = h;
    }
}

enum deft_status deft_anchor_kmeans(const double *wh, int n, int k, const struct deft_anchor_kmeans_options *o,
                                    double *centres, int *steps) {
    if (k < 1 || n <= k)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "kmeans: %d boxes for %d clusters (need more boxes than clusters; check -l/-i and --min_x/--min_y)",
                              n, k);
    for (int i = 0; i < n; i++)
        if (!(wh[2 * i] > 0 && wh[2 * i + 1] > 0) || !isfinite(wh[2 * i]) || !isfinite(wh[2 * i + 1]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "kmeans: box %d has size (%g, %g); widths and heights must be > 0",
                                  i, wh[2 * i], wh[2 * i + 1]);
    struct deft_anchor_kmeans_options def;
    if (!o) deft_anchor_kmeans_options_init(&def), o = &def;
    int *idx = deft_malloc((size_t)k * sizeof *idx), *assign = deft_calloc((size_t)n, sizeof *assign);
    double *bw = deft_malloc((size_t)n * sizeof *bw), *bh = deft_malloc((size_t)n * sizeof *bh);
    enum deft_status s = DEFT_OK;
    if (!idx || !assign || !bw || !bh) s = deft_set_error(DEFT_ERR_NOMEM, "kmeans: out of memory");
    if (!s && o->init_idx) {
        for (int j = 0; j < k; j++) {
            if (o->init_idx[j] < 0 || o->init_idx[j] >= n) {
                s = deft_set_error(DEFT_ERR_INVALID_ARG, "kmeans: initial centre index %d outside [0, %d)", o->init_idx[j], n);
                break;
            }
            idx[j] = o->init_idx[j];
        }
    } else if (!s) {
        s = deft_anchor_kmeans_init(n, k, o->seed, idx);
    }
    int step = 0;
    if (!s) {
        for (int j = 0; j < k; j++) centres[2 * j] = wh[2 * idx[j]], centres[2 * j + 1] = wh[2 * idx[j] + 1];
        while (step < o->max_steps) {
            step++;
            bool changed = false;
            for (int i = 0; i < n; i++) {
                int a = best_centre(wh[2 * i], wh[2 * i + 1], centres, k, NULL);
                changed |= a != assign[i];
                assign[i] = a;
            }
            if (!changed) break;
            update_centres(wh, n, assign, k, centres, bw, bh);
        }
        sort_by_area(centres, k);
        for (int j = 0; o->net_w > 0 && o->net_h > 0 && j < k; j++)
            centres[2 * j] *= o->net_w, centres[2 * j + 1] *= o->net_h;
    }
    if (steps) *steps = step;
    deft_free(idx);
    deft_free(assign);
    deft_free(bw);
    deft_free(bh);
    return s;
}

enum deft_status deft_anchor_boxes_from_dataset(const struct deft_det_dataset *d, int net_w, int net_h, int min_x,
                                                int min_y, double **wh, int *n) {
    *wh = NULL;
    *n = 0;
    if (net_w <= 0 || net_h <= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "kmeans: network size %dx%d (-x/-y must be > 0)", net_w, net_h);
    size_t total = 0;
    for (int i = 0; i < d->n; i++) total += d->samples[i].n_boxes > 0 ? (size_t)d->samples[i].n_boxes : 0;
    double *out = deft_malloc(2 * (total + 1) * sizeof *out);
    if (!out) return deft_set_error(DEFT_ERR_NOMEM, "kmeans: out of memory");
    double mx = (double)min_x / net_w, my = (double)min_y / net_h;
    int m = 0;
    for (int i = 0; i < d->n; i++) {
        const struct deft_det_sample *s = &d->samples[i];
        if (s->n_boxes <= 0) continue;
        if (s->width <= 0 || s->height <= 0) {
            deft_free(out);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "kmeans: %s: image size unknown (read the dataset with sizes probed)",
                                  s->image ? s->image : "(unnamed image)");
        }
        for (int j = 0; j < s->n_boxes; j++) {
            const struct deft_box *b = &s->boxes[j];
            double w = (double)b->x2 / s->width - (double)b->x1 / s->width;
            double h = (double)b->y2 / s->height - (double)b->y1 / s->height;
            if (w > mx && h > my && isfinite(w) && isfinite(h)) out[2 * m] = w, out[2 * m + 1] = h, m++;
        }
    }
    *wh = out;
    *n = m;
    return DEFT_OK;
}

double deft_anchor_mean_iou(const double *wh, int n, const double *centres, int k, int net_w, int net_h) {
    if (n <= 0 || k <= 0) return NAN;
    double *c = deft_malloc(2 * (size_t)k * sizeof *c);
    if (!c) return NAN;
    bool px = net_w > 0 && net_h > 0;
    for (int j = 0; j < k; j++) c[2 * j] = px ? centres[2 * j] / net_w : centres[2 * j],
                                c[2 * j + 1] = px ? centres[2 * j + 1] / net_h : centres[2 * j + 1];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double b;
        best_centre(wh[2 * i], wh[2 * i + 1], c, k, &b);
        sum += b;
    }
    deft_free(c);
    return sum / n;
}

enum deft_status deft_anchor_spec_strings(const double *a, int k, bool tiny, char **out) {
    static const char *const HEAD[3] = {"big", "mid", "small"};
    int g = tiny ? 2 : 3;
    *out = NULL;
    if (k < g)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "anchors: %d clusters for %d heads (use -n %d or more)", k, g, g);
    for (int j = 0; j < 2 * k; j++)
        if (!(a[j] >= 0 && a[j] < 1e9))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "anchors: value %g is not a size in pixels", a[j]);
    int count[3], base = k / g, extra = k % g;
    for (int h = 0; h < g; h++) count[h] = base + (h < extra); /* the larger heads get the extra ones */
    size_t cap = 64 * (size_t)k + 128;
    char *s = deft_malloc(cap);
    if (!s) return deft_set_error(DEFT_ERR_NOMEM, "anchors: out of memory");
    size_t len = 0;
    int end = k; /* anchors ascend by area: big takes the last ones */
    for (int h = 0; h < g; h++) {
        int start = end - count[h];
        len += (size_t)snprintf(s + len, cap - len, "%s_anchor_shape: \"[", HEAD[h]);
        for (int j = start; j < end; j++)
            len += (size_t)snprintf(s + len, cap - len, "%s(%.2f, %.2f)", j > start ? ", " : "", a[2 * j], a[2 * j + 1]);
        len += (size_t)snprintf(s + len, cap - len, "]\"\n");
        end = start;
    }
    *out = s;
    return DEFT_OK;
}

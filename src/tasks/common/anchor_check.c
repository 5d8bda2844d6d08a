/* anchor_check.c - which training boxes no anchor or prior matches at the
 * positive IoU (see anchor_check.h); the sizes are printed so the spec's
 * scales / ratios can be fixed before hours of training. */
#include <math.h>
#include <stdlib.h>
#include "deft/det_priors.h"
#include "tasks/common/anchor_check.h"

struct miss { float w, h, iou; };

static int by_area(const void *a, const void *b) {
    const struct miss *x = a, *y = b;
    float d = x->w * x->h - y->w * y->h;
    return d < 0 ? -1 : d > 0;
}

/* The sizes of the nm boxes in m (sorted by area), one line. */
static void report_sizes(const struct miss *m, long nm, FILE *out) {
    float wmin = m[0].w, wmax = m[0].w, hmin = m[0].h, hmax = m[0].h;
    for (long i = 1; i < nm; i++) {
        wmin = fminf(wmin, m[i].w), wmax = fmaxf(wmax, m[i].w);
        hmin = fminf(hmin, m[i].h), hmax = fmaxf(hmax, m[i].h);
    }
    fprintf(out, "  box sizes (w x h, input pixels) from %.0f..%.0f x %.0f..%.0f; e.g.", wmin, wmax, hmin, hmax);
    long step = nm > 8 ? nm / 8 : 1;
    for (long i = 0; i < nm; i += step) fprintf(out, " %.0fx%.0f (best IoU %.2f)", m[i].w, m[i].h, m[i].iou);
    fprintf(out, "\n");
}

static void report(struct miss *m, long n_weak, long nb, const struct anchor_check *c, FILE *out, long *n_unmatched) {
    fprintf(out, "anchor check : %ld of %ld training boxes have no anchor at IoU >= %g (%s)%s\n", n_weak, nb,
            c->pos_iou, c->pos_field, n_weak ? ":" : "");
    /* the hopeless ones (best IoU under neg_iou) first, then the weak ones */
    long nu = 0;
    for (long i = 0; i < n_weak; i++)
        if (m[i].iou < c->neg_iou) {
            struct miss t = m[nu];
            m[nu++] = m[i];
            m[i] = t;
        }
    qsort(m, (size_t)nu, sizeof *m, by_area);
    qsort(m + nu, (size_t)(n_weak - nu), sizeof *m, by_area);
    *n_unmatched = nu;
    if (nu) {
        fprintf(out, "  %ld of them not even at IoU >= %g (%s): their best anchor is background, they cannot be "
                "learnt:\n", nu, c->neg_iou, c->neg_field);
        report_sizes(m, nu, out);
    }
    if (n_weak > nu) {
        fprintf(out, "  %ld train only through the forced best-anchor match (IoU %g..%g); scales/ratios of these "
                "sizes would help:\n", n_weak - nu, c->neg_iou, c->pos_iou);
        report_sizes(m + nu, n_weak - nu, out);
    }
}

enum deft_status anchor_check_dataset(const struct deft_det_source *src, int n_src, const struct deft_det_read_opts *ro,
                                      const struct anchor_check *c, FILE *out, long *n_boxes, long *n_weak, long *n_unmatched) {
    struct deft_det_dataset ds;
    *n_boxes = *n_weak = *n_unmatched = 0;
    enum deft_status s = deft_det_read(src, n_src, ro, &ds);
    if (s) {
        deft_det_dataset_free(&ds);
        return s;
    }
    long nb = 0;
    for (int i = 0; i < ds.n; i++) nb += ds.samples[i].n_boxes;
    float *gt = malloc((size_t)(nb ? nb : 1) * 4 * sizeof *gt), *best = malloc((size_t)(nb ? nb : 1) * sizeof *best);
    struct miss *m = malloc((size_t)(nb ? nb : 1) * sizeof *m);
    if (!gt || !best || !m) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    long k = 0;
    for (int i = 0; !s && i < ds.n; i++) {
        const struct deft_det_sample *sm = &ds.samples[i];
        if (sm->width <= 0 || sm->height <= 0) continue; /* size unknown: cannot scale */
        float sx = (float)c->net_w / sm->width, sy = (float)c->net_h / sm->height;
        for (int b = 0; b < sm->n_boxes; b++, k++) {
            const struct deft_box *bx = &sm->boxes[b];
            float v[4] = {bx->x1 * sx, bx->y1 * sy, bx->x2 * sx, bx->y2 * sy};
            for (int j = 0; j < 4; j++) gt[4 * k + j] = c->normalized ? v[j] / (j % 2 ? c->net_h : c->net_w) : v[j];
        }
    }
    if (!s) {
        long nm = deft_det_best_anchor_iou(c->anchors, c->n_anchors, c->stride, gt, k, c->pos_iou, best), j = 0;
        for (long g = 0; g < k; g++) {
            if (best[g] >= c->pos_iou) continue;
            float w = gt[4 * g + 2] - gt[4 * g], h = gt[4 * g + 3] - gt[4 * g + 1];
            if (c->normalized) w *= c->net_w, h *= c->net_h;
            m[j++] = (struct miss){w, h, best[g]};
        }
        report(m, nm, k, c, out, n_unmatched);
        *n_boxes = k;
        *n_weak = nm;
    }
    free(gt);
    free(best);
    free(m);
    deft_det_dataset_free(&ds);
    return s;
}

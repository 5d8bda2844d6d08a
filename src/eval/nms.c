/* nms.c - per-class greedy non-maximum suppression with TF's
 * combined_non_max_suppression semantics (what TAO's nms_config drives):
 * per class, highest score first, a box is dropped when its IoU with an
 * already kept box of its class is > the threshold; at most top_k per class;
 * the kept boxes of all classes sorted by score and cut to top_k; boxes
 * clipped to [0, 1] after the selection. Every sort has a total order (score,
 * class, input index), so equal scores give the same output every run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/yolo.h"

struct cand {
    float score; /* NaN mapped to -inf so the order stays total */
    int cls, idx;
};

static int by_class_score(const void *pa, const void *pb) {
    const struct cand *a = pa, *b = pb;
    if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int by_score(const void *pa, const void *pb) {
    const struct cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* IoU as TF's NMS kernel: corners put in order, an empty box overlaps nothing. */
static double iou(const struct deft_box *a, const struct deft_box *b) {
    double ax1 = fmin(a->x1, a->x2), ax2 = fmax(a->x1, a->x2);
    double ay1 = fmin(a->y1, a->y2), ay2 = fmax(a->y1, a->y2);
    double bx1 = fmin(b->x1, b->x2), bx2 = fmax(b->x1, b->x2);
    double by1 = fmin(b->y1, b->y2), by2 = fmax(b->y1, b->y2);
    double area_a = (ax2 - ax1) * (ay2 - ay1), area_b = (bx2 - bx1) * (by2 - by1);
    if (area_a <= 0 || area_b <= 0) return 0.0;
    double iw = fmin(ax2, bx2) - fmax(ax1, bx1), ih = fmin(ay2, by2) - fmax(ay1, by1);
    double inter = fmax(iw, 0.0) * fmax(ih, 0.0);
    return inter / (area_a + area_b - inter);
}

static struct cand cand_of(const struct deft_box *b, int idx) {
    return (struct cand){isnan(b->score) ? -INFINITY : b->score, b->cls, idx};
}

static float clip01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

enum deft_status deft_nms_per_class(struct deft_box *boxes, int n, float iou_threshold,
                                    int top_k_per_class, int top_k_total, bool clip,
                                    int *n_out) {
    if (!n_out || n < 0 || (n > 0 && !boxes))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "nms: %d boxes without a box array", n);
    *n_out = 0;
    if (n == 0) return DEFT_OK;
    struct cand *c = deft_malloc((size_t)n * sizeof *c);
    int *kept = deft_malloc((size_t)n * sizeof *kept);
    struct deft_box *out = deft_malloc((size_t)n * sizeof *out);
    if (!c || !kept || !out) {
        deft_free(c), deft_free(kept), deft_free(out);
        return deft_set_error(DEFT_ERR_NOMEM, "nms: out of memory for %d boxes", n);
    }
    for (int i = 0; i < n; i++) c[i] = cand_of(&boxes[i], i);
    qsort(c, (size_t)n, sizeof *c, by_class_score);
    int n_kept = 0;
    for (int i = 0; i < n;) {
        int cls = c[i].cls, first = n_kept, j = i;
        for (; j < n && c[j].cls == cls; j++) {
            if (top_k_per_class > 0 && n_kept - first >= top_k_per_class) continue;
            bool keep = true;
            for (int k = first; k < n_kept && keep; k++)
                keep = !(iou(&boxes[c[j].idx], &boxes[kept[k]]) > (double)iou_threshold);
            if (keep) kept[n_kept++] = c[j].idx;
        }
        i = j;
    }
    for (int k = 0; k < n_kept; k++) c[k] = cand_of(&boxes[kept[k]], kept[k]);
    qsort(c, (size_t)n_kept, sizeof *c, by_score);
    if (top_k_total > 0 && n_kept > top_k_total) n_kept = top_k_total;
    for (int k = 0; k < n_kept; k++) {
        out[k] = boxes[c[k].idx];
        if (clip) {
            out[k].x1 = clip01(out[k].x1), out[k].y1 = clip01(out[k].y1);
            out[k].x2 = clip01(out[k].x2), out[k].y2 = clip01(out[k].y2);
        }
    }
    memcpy(boxes, out, (size_t)n_kept * sizeof *out);
    *n_out = n_kept;
    deft_free(c), deft_free(kept), deft_free(out);
    return DEFT_OK;
}

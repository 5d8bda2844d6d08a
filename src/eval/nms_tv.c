/* nms_tv.c - torchvision.ops.nms and batched_nms, float arithmetic in
 * torchvision's order (its CPU kernel), so the kept indices are its own. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"

struct ord { float score; int idx; };

/* descending score, ties by index: torchvision's stable descending sort */
static int by_score(const void *pa, const void *pb) {
    const struct ord *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static float score_key(float s) { return isnan(s) ? -INFINITY : s; } /* a total order */

static enum deft_status check_args(const float *boxes, const float *scores, int n, const int *keep,
                                   const int *n_keep) {
    if (!n_keep || n < 0 || (n > 0 && (!boxes || !scores || !keep)))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "nms: %d boxes without their arrays", n);
    return DEFT_OK;
}

enum deft_status deft_nms_tv(const float *boxes, const float *scores, int n, double iou_threshold, int *keep,
                             int *n_keep) {
    enum deft_status s = check_args(boxes, scores, n, keep, n_keep);
    if (s) return s;
    *n_keep = 0;
    if (n == 0) return DEFT_OK;
    struct ord *o = deft_malloc((size_t)n * sizeof *o);
    float *area = deft_malloc((size_t)n * sizeof *area);
    unsigned char *sup = deft_calloc((size_t)n, 1);
    if (!o || !area || !sup) {
        deft_free(o), deft_free(area), deft_free(sup);
        return deft_set_error(DEFT_ERR_NOMEM, "nms: out of memory for %d boxes", n);
    }
    for (int i = 0; i < n; i++) {
        o[i] = (struct ord){score_key(scores[i]), i};
        const float *b = boxes + 4 * (size_t)i;
        area[i] = (b[2] - b[0]) * (b[3] - b[1]);
    }
    qsort(o, (size_t)n, sizeof *o, by_score);
    int k = 0;
    for (int a = 0; a < n; a++) {
        int i = o[a].idx;
        if (sup[i]) continue;
        keep[k++] = i;
        const float *bi = boxes + 4 * (size_t)i;
        for (int c = a + 1; c < n; c++) {
            int j = o[c].idx;
            if (sup[j]) continue;
            const float *bj = boxes + 4 * (size_t)j;
            float xx1 = fmaxf(bi[0], bj[0]), yy1 = fmaxf(bi[1], bj[1]);
            float xx2 = fminf(bi[2], bj[2]), yy2 = fminf(bi[3], bj[3]);
            float w = fmaxf(0.0f, xx2 - xx1), h = fmaxf(0.0f, yy2 - yy1), inter = w * h;
            float ovr = inter / (area[i] + area[j] - inter);
            if ((double)ovr > iou_threshold) sup[j] = 1;
        }
    }
    *n_keep = k;
    deft_free(o), deft_free(area), deft_free(sup);
    return DEFT_OK;
}

/* Above 4000 boxes: NMS class by class, merged by score. */
static enum deft_status batched_by_class(const float *boxes, const float *scores, const int *classes, int n,
                                         double thr, int *keep, int *n_keep) {
    int *idx = deft_malloc((size_t)n * sizeof *idx), *kk = deft_malloc((size_t)n * sizeof *kk);
    float *bb = deft_malloc((size_t)n * 4 * sizeof *bb), *ss = deft_malloc((size_t)n * sizeof *ss);
    unsigned char *done = deft_calloc((size_t)n, 1);
    enum deft_status s = DEFT_OK;
    if (!idx || !kk || !bb || !ss || !done) s = deft_set_error(DEFT_ERR_NOMEM, "batched_nms: out of memory");
    int total = 0;
    for (int i = 0; i < n && !s; i++) {
        if (done[i]) continue;
        int m = 0;
        for (int j = i; j < n; j++)
            if (!done[j] && classes[j] == classes[i]) {
                done[j] = 1;
                idx[m] = j;
                memcpy(bb + 4 * (size_t)m, boxes + 4 * (size_t)j, 4 * sizeof *bb);
                ss[m++] = scores[j];
            }
        int nk = 0;
        if ((s = deft_nms_tv(bb, ss, m, thr, kk, &nk))) break;
        for (int k = 0; k < nk; k++) keep[total++] = idx[kk[k]];
    }
    if (!s) {
        struct ord *o = (struct ord *)bb; /* n * 4 floats hold n ords */
        for (int k = 0; k < total; k++) o[k] = (struct ord){score_key(scores[keep[k]]), keep[k]};
        qsort(o, (size_t)total, sizeof *o, by_score);
        for (int k = 0; k < total; k++) keep[k] = o[k].idx;
        *n_keep = total;
    }
    deft_free(idx), deft_free(kk), deft_free(bb), deft_free(ss), deft_free(done);
    return s;
}

enum deft_status deft_batched_nms_tv(const float *boxes, const float *scores, const int *classes, int n,
                                     double iou_threshold, int *keep, int *n_keep) {
    enum deft_status s = check_args(boxes, scores, n, keep, n_keep);
    if (s) return s;
    if (n > 0 && !classes) return deft_set_error(DEFT_ERR_INVALID_ARG, "batched_nms: no classes");
    *n_keep = 0;
    if (n == 0) return DEFT_OK;
    if (n > 4000) return batched_by_class(boxes, scores, classes, n, iou_threshold, keep, n_keep);
    float mx = -INFINITY;
    for (int i = 0; i < 4 * n; i++) mx = fmaxf(mx, boxes[i]);
    float *shifted = deft_malloc((size_t)n * 4 * sizeof *shifted);
    if (!shifted) return deft_set_error(DEFT_ERR_NOMEM, "batched_nms: out of memory");
    for (int i = 0; i < n; i++) {
        float off = (float)classes[i] * (mx + 1.0f);
        for (int k = 0; k < 4; k++) shifted[4 * (size_t)i + k] = boxes[4 * (size_t)i + k] + off;
    }
    s = deft_nms_tv(shifted, scores, n, iou_threshold, keep, n_keep);
    deft_free(shifted);
    return s;
}

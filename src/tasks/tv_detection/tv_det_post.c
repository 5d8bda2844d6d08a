/* tv_det_post.c - post-processing steps torchvision's detectors share:
 * clipping, top-k order, batched NMS, boxes back to the original image. */
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"
#include "tasks/tv_detection/tv_det_impl.h"

void deft_tv_clip_boxes(float *b, int n, int h, int w) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            float hi = (float)(k & 1 ? h : w), v = b[4 * i + k];
            b[4 * i + k] = v < 0 ? 0 : v > hi ? hi : v; /* clamp(min=0, max=side) */
        }
}

void deft_tv_resize_boxes(float *b, int n, const struct tv_frame *f) {
    /* resize_boxes: ratio = new / old as float32 tensors */
    float rh = (float)f->orig_h / (float)f->img_h, rw = (float)f->orig_w / (float)f->img_w;
    for (int i = 0; i < n; i++) {
        b[4 * i] *= rw, b[4 * i + 2] *= rw;
        b[4 * i + 1] *= rh, b[4 * i + 3] *= rh;
    }
}

static const float *sort_key;
static int by_score_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = sort_key[i], y = sort_key[j];
    if (x != y) return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

void deft_tv_sort_desc(const float *score, int *idx, int n) {
    sort_key = score; /* qsort has no context argument; post-processing runs on one thread */
    qsort(idx, (size_t)n, sizeof *idx, by_score_desc);
}

enum deft_status deft_tv_nms_into(const float *boxes, const float *scores, const int *labels, int n, float iou,
                                  int max_det, const struct tv_frame *f, struct deft_tv_det_result *res) {
    int *keep = deft_malloc((size_t)(n ? n : 1) * sizeof *keep), nk = 0;
    if (!keep) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = n ? deft_batched_nms_tv(boxes, scores, labels, n, iou, keep, &nk) : DEFT_OK;
    if (nk > max_det) nk = max_det;
    if (!s) {
        res->boxes = deft_malloc((size_t)(nk ? nk : 1) * 4 * sizeof(float));
        res->scores = deft_malloc((size_t)(nk ? nk : 1) * sizeof(float));
        res->labels = deft_malloc((size_t)(nk ? nk : 1) * sizeof(int));
        if (!res->boxes || !res->scores || !res->labels) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; !s && i < nk; i++) {
        memcpy(res->boxes + 4 * i, boxes + 4 * keep[i], 4 * sizeof(float));
        res->scores[i] = scores[keep[i]];
        res->labels[i] = labels[keep[i]];
    }
    if (!s) {
        res->n_det = nk;
        deft_tv_resize_boxes(res->boxes, nk, f);
    }
    deft_free(keep);
    return s;
}

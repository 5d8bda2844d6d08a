/* hard_negatives.c - SSD's 3:1 hard-negative mining: torchvision's per-image
 * rule and TAO's batch-wide one (see deft/det_ops.h). */
#include <math.h>
#include <stdlib.h>
#include "deft/det_ops.h"

struct cand { float loss; int64_t idx; };

/* highest loss first, ties by index (tf.nn.top_k) */
static int by_loss(const void *pa, const void *pb) {
    const struct cand *a = pa, *b = pb;
    if (a->loss != b->loss) return a->loss > b->loss ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Keep the k highest-loss negatives among [lo, hi) (all if fewer). */
static void keep_top(const float *loss, const int8_t *label, int64_t lo, int64_t hi, int64_t k, bool nonzero,
                     struct cand *c, uint8_t *mask) {
    int64_t m = 0;
    for (int64_t i = lo; i < hi; i++)
        if (label[i] == 0 && (!nonzero || loss[i] != 0.0f))
            c[m++] = (struct cand){isnan(loss[i]) ? INFINITY : loss[i], i};
    qsort(c, (size_t)m, sizeof *c, by_loss);
    for (int64_t j = 0; j < m && j < k; j++) mask[c[j].idx] = 1;
}

enum deft_status deft_hard_negatives(const float *loss, const int8_t *label, int batch, int n_boxes,
                                     const struct deft_hnm_opts *o, uint8_t *mask) {
    if (!loss || !label || !mask || !o || batch < 0 || n_boxes < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "hard negative mining: bad arguments");
    if (!(o->neg_pos_ratio >= 0) || o->n_neg_min < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "hard negative mining: neg_pos_ratio and n_neg_min must be >= 0");
    const int64_t total = (int64_t)batch * n_boxes;
    struct cand *c = deft_malloc((size_t)(total > 0 ? total : 1) * sizeof *c);
    if (!c) return deft_set_error(DEFT_ERR_NOMEM, "hard negative mining: out of memory");
    int64_t n_pos_all = 0;
    for (int64_t i = 0; i < total; i++) {
        mask[i] = label[i] > 0;
        n_pos_all += label[i] > 0;
    }
    if (o->batch_wide) {
        int64_t k = (int64_t)(o->neg_pos_ratio * (float)n_pos_all); /* TAO: ratio * to_int32(n_positive) */
        if (k < o->n_neg_min) k = o->n_neg_min;
        keep_top(loss, label, 0, total, k, true, c, mask); /* only negatives with a nonzero loss count */
    } else {
        for (int b = 0; b < batch; b++) {
            int64_t lo = (int64_t)b * n_boxes, hi = lo + n_boxes, n_pos = 0;
            for (int64_t i = lo; i < hi; i++) n_pos += label[i] > 0;
            keep_top(loss, label, lo, hi, (int64_t)(o->neg_pos_ratio * (float)n_pos), false, c, mask);
        }
    }
    deft_free(c);
    return DEFT_OK;
}

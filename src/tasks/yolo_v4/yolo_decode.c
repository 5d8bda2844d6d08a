/* yolo_decode.c - raw head outputs to scored boxes (TAO's decode and
 * bbox post-processing layers, detection.md §2 Decode): centre = cell corner
 * + one cell * (sigmoid(t)*s - (s-1)/2), size = anchor * exp(min(t, 8)),
 * score of class c = sigmoid(obj) * sigmoid(cls_c), one candidate per class
 * above the threshold (TAO feeds every class score to combined NMS). */
#include <string.h>
#include "tasks/yolo_v4/yolo_impl.h"

static enum deft_status push(struct deft_box **boxes, int *n, int *cap, struct deft_box b) {
    if (*n == *cap) {
        if (*cap > (1 << 29))
            return deft_set_error(DEFT_ERR_NOMEM, "yolo decode: too many boxes");
        int nc = *cap ? *cap * 2 : 256;
        struct deft_box *nb = deft_realloc(*boxes, (size_t)nc * sizeof *nb);
        if (!nb)
            return deft_set_error(DEFT_ERR_NOMEM, "yolo decode: out of memory for %d boxes", nc);
        *boxes = nb;
        *cap = nc;
    }
    (*boxes)[(*n)++] = b;
    return DEFT_OK;
}

enum deft_status deft_yolo_decode(const struct deft_yolo_head *heads, int n_heads, int n_classes,
                                  const float *const *outs, int b, float conf_threshold,
                                  struct deft_box **boxes, int *n_boxes) {
    if (!boxes || !n_boxes) return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo decode: no output");
    *boxes = NULL;
    *n_boxes = 0;
    enum deft_status s = yolo_check_heads(heads, n_heads);
    if (s != DEFT_OK) return s;
    if (n_classes < 1 || b < 0 || !outs)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "yolo decode: %d classes, image %d: need >= 1 class and outputs",
                              n_classes, b);
    int cap = 0, per = 5 + n_classes;
    for (int i = 0; i < n_heads && s == DEFT_OK; i++) {
        const struct deft_yolo_head *h = &heads[i];
        if (!outs[i]) s = deft_set_error(DEFT_ERR_INVALID_ARG, "yolo decode: head %d is NULL", i);
        size_t blk = (size_t)h->n_anchors * (size_t)per * (size_t)h->gh * (size_t)h->gw;
        const float *o = outs[i] ? outs[i] + (size_t)b * blk : NULL;
        for (int a = 0; a < h->n_anchors && s == DEFT_OK; a++)
            for (int y = 0; y < h->gh && s == DEFT_OK; y++)
                for (int x = 0; x < h->gw && s == DEFT_OK; x++) {
                    double obj = yolo_sigmoid(o[yolo_at(h, n_classes, a, 4, y, x)]);
                    if (!(obj > (double)conf_threshold)) continue; /* score <= obj */
                    struct yolo_pred p = yolo_decode_one(
                        h, a, y, x, o[yolo_at(h, n_classes, a, 0, y, x)],
                        o[yolo_at(h, n_classes, a, 1, y, x)], o[yolo_at(h, n_classes, a, 2, y, x)],
                        o[yolo_at(h, n_classes, a, 3, y, x)]);
                    for (int c = 0; c < n_classes && s == DEFT_OK; c++) {
                        double sc = obj * yolo_sigmoid(o[yolo_at(h, n_classes, a, 5 + c, y, x)]);
                        if (!(sc > (double)conf_threshold)) continue;
                        struct deft_box bx = {.x1 = (float)(p.cx - p.w / 2),
                                              .y1 = (float)(p.cy - p.h / 2),
                                              .x2 = (float)(p.cx + p.w / 2),
                                              .y2 = (float)(p.cy + p.h / 2),
                                              .cls = c,
                                              .score = (float)sc};
                        s = push(boxes, n_boxes, &cap, bx);
                    }
                }
    }
    if (s != DEFT_OK) {
        deft_free(*boxes);
        *boxes = NULL;
        *n_boxes = 0;
    }
    return s;
}

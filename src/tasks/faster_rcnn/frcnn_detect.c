/* frcnn_detect.c - the RCNN head's outputs of one image into detections:
 * softmax scores per class, the RoIs decoded with classifier_regr_std and
 * clipped, NMS per class (frcnn_impl.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"
#include "deft/detection.h"
#include "tasks/faster_rcnn/frcnn_impl.h"

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

enum deft_status frcnn_detect(const struct frcnn_params *p, const float *cls, const float *regr, const float *rois,
                              int n, float conf, float nms_iou, int max_dets, struct deft_box **boxes, int *n_boxes) {
    int C = p->n_classes, K = C + 1;
    *boxes = NULL;
    *n_boxes = 0;
    size_t cap = (size_t)(n > 0 ? n : 1) * (size_t)C;
    float *bx = malloc(cap * 4 * sizeof *bx), *sc = malloc(cap * sizeof *sc);
    int *cl = malloc(cap * sizeof *cl), *keep = malloc(cap * sizeof *keep);
    enum deft_status s = bx && sc && cl && keep ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int m = 0;
    for (int r = 0; !s && r < n; r++) {
        const float *z = cls + (size_t)r * K;
        double mx = z[0], sum = 0;
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < K; k++) sum += exp(z[k] - mx);
        for (int c = 0; c < C; c++) {
            float prob = (float)(exp(z[c] - mx) / sum);
            if (!(prob >= conf)) continue;
            float *b = bx + 4 * (size_t)m;
            deft_box_decode(p->regr_std, DEFT_BBOX_XFORM_CLIP, regr + (size_t)r * 4 * C + 4 * c, rois + 4 * (size_t)r, 1, b);
            b[0] = clampf(b[0], 0, (float)p->net_w), b[2] = clampf(b[2], 0, (float)p->net_w);
            b[1] = clampf(b[1], 0, (float)p->net_h), b[3] = clampf(b[3], 0, (float)p->net_h);
            sc[m] = prob;
            cl[m++] = c;
        }
    }
    int nk = 0;
    if (!s && m) s = deft_batched_nms_tv(bx, sc, cl, m, nms_iou, keep, &nk);
    if (!s && nk > max_dets) nk = max_dets;
    if (!s && nk && !(*boxes = deft_malloc((size_t)nk * sizeof **boxes))) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int k = 0; !s && k < nk; k++) {
        const float *b = bx + 4 * (size_t)keep[k];
        (*boxes)[k] = (struct deft_box){b[0], b[1], b[2], b[3], cl[keep[k]], false, sc[keep[k]]};
    }
    if (!s) *n_boxes = nk;
    free(bx), free(sc), free(cl), free(keep);
    return s;
}

/* tv_retinanet_post.c - torchvision RetinaNet's AnchorGenerator (sizes
 * 32..512 x 2^(0, 1/3, 2/3) x ratios 0.5, 1, 2 on P3-P7) and
 * postprocess_detections: sigmoid, per level score > 0.05 and top 1000 of
 * anchor x class, BoxCoder (1, 1, 1, 1) decode, clipping, batched NMS 0.5,
 * 300 detections. Float arithmetic in torchvision's order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"
#include "tasks/tv_detection/tv_det_impl.h"

/* generate_anchors: round([-w, -h, w, h] / 2), w = s / sqrt(r), h = s * sqrt(r), ratios outer. */
static void cell_anchors(int level, float out[9][4]) {
    static const float ratios[3] = {0.5f, 1.0f, 2.0f};
    int base = 32 << level;
    /* int(x * 2 ** (k / 3)) in Python doubles */
    int sc[3] = {base, (int)(base * pow(2.0, 1.0 / 3)), (int)(base * pow(2.0, 2.0 / 3))};
    for (int r = 0; r < 3; r++) {
        float hr = sqrtf(ratios[r]), wr = 1 / hr;
        for (int k = 0; k < 3; k++) {
            float ws = wr * (float)sc[k], hs = hr * (float)sc[k];
            float *o = out[r * 3 + k];
            o[0] = rintf(-ws / 2), o[1] = rintf(-hs / 2), o[2] = rintf(ws / 2), o[3] = rintf(hs / 2);
        }
    }
}

static enum deft_status anchors(const struct tv_heads *h, const struct tv_frame *f, float *out) {
    for (int l = 0; l < h->n_levels; l++) {
        float ca[9][4];
        cell_anchors(l, ca);
        if (h->start[l + 1] - h->start[l] != 9 * h->fh[l] * h->fw[l])
            return deft_set_error(DEFT_ERR_FORMAT, "retinanet: level %d anchors", l);
        long sy = f->in_h / h->fh[l], sx = f->in_w / h->fw[l]; /* image_size // grid */
        float *o = out + 4 * (size_t)h->start[l];
        for (int i = 0; i < h->fh[l]; i++)
            for (int j = 0; j < h->fw[l]; j++)
                for (int a = 0; a < 9; a++, o += 4) {
                    float x = (float)(j * sx), y = (float)(i * sy);
                    o[0] = x + ca[a][0], o[1] = y + ca[a][1], o[2] = x + ca[a][2], o[3] = y + ca[a][3];
                }
    }
    return DEFT_OK;
}

enum deft_status deft_tv_retinanet_post(const struct tv_heads *h, const struct tv_frame *f,
                                        struct deft_tv_det_result *res) {
    int na = h->start[h->n_levels], nc = h->n_cls, cap = 1000 * h->n_levels;
    float *anc = deft_malloc((size_t)na * 4 * sizeof *anc);
    res->raw_boxes = deft_malloc((size_t)na * 4 * sizeof(float));
    res->raw_scores = deft_malloc((size_t)na * nc * sizeof(float));
    float *cb = deft_malloc((size_t)cap * 4 * sizeof *cb), *cs = deft_malloc((size_t)cap * sizeof *cs);
    int *cl = deft_malloc((size_t)cap * sizeof *cl), *idx = deft_malloc((size_t)na * nc * sizeof *idx);
    enum deft_status s = anc && res->raw_boxes && res->raw_scores && cb && cs && cl && idx
                             ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = anchors(h, f, anc);
    int n = 0;
    if (!s) {
        res->n_raw = na, res->n_cls = nc;
        static const float w[4] = {1, 1, 1, 1};
        deft_box_decode(w, DEFT_BBOX_XFORM_CLIP, h->reg, anc, na, res->raw_boxes);
        deft_tv_clip_boxes(res->raw_boxes, na, f->img_h, f->img_w);
        for (size_t i = 0; i < (size_t)na * nc; i++) res->raw_scores[i] = 1.0f / (1.0f + expf(-h->cls[i]));
        for (int l = 0; l < h->n_levels; l++) {
            const float *sc = res->raw_scores + (size_t)h->start[l] * nc;
            int m = 0, len = (h->start[l + 1] - h->start[l]) * nc;
            for (int i = 0; i < len; i++)
                if (sc[i] > 0.05f) idx[m++] = i;
            deft_tv_sort_desc(sc, idx, m);
            for (int t = 0; t < m && t < 1000; t++, n++) {
                int a = h->start[l] + idx[t] / nc;
                memcpy(cb + 4 * (size_t)n, res->raw_boxes + 4 * (size_t)a, 4 * sizeof(float));
                cs[n] = sc[idx[t]];
                cl[n] = idx[t] % nc;
            }
        }
    }
    if (!s) s = deft_tv_nms_into(cb, cs, cl, n, 0.5f, 300, f, res);
    deft_free(anc);
    deft_free(cb);
    deft_free(cs);
    deft_free(cl);
    deft_free(idx);
    return s;
}

/* tv_ssd_post.c - torchvision SSD's DefaultBoxGenerator (ssd300_vgg16's
 * aspect ratios, scales and steps) and postprocess_detections: softmax, per
 * class score > 0.01 and top 400, batched NMS 0.45, 200 detections. Float
 * arithmetic in torchvision's order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"
#include "tasks/tv_detection/tv_det_impl.h"

static const double scales[7] = {0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05};
static const int steps[6] = {8, 16, 32, 64, 100, 300};
static const int n_ar[6] = {1, 2, 2, 2, 1, 1}; /* [[2], [2, 3], [2, 3], [2, 3], [2], [2]] */

/* The (w, h) pairs of level k (as floats, clamped to [0, 1]): s_k, sqrt(s_k s_k+1), then
 * (s_k sqrt(ar), s_k / sqrt(ar)) and its transpose per ratio. */
static int wh_pairs(int k, float wh[][2]) {
    double s = scales[k], sp = sqrt(scales[k] * scales[k + 1]);
    double p[6][2] = {{s, s}, {sp, sp}};
    int n = 2;
    for (int a = 0; a < n_ar[k]; a++) {
        double sq = sqrt((double)(2 + a));
        p[n][0] = s * sq, p[n][1] = s / sq, n++;
        p[n][0] = s / sq, p[n][1] = s * sq, n++;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            float v = (float)p[i][j];
            wh[i][j] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    return n;
}

static enum deft_status anchors(const struct tv_heads *h, const struct tv_frame *f, float *out) {
    int o = 0;
    for (int k = 0; k < h->n_levels; k++) {
        float wh[6][2];
        int n = wh_pairs(k, wh);
        if (h->start[k + 1] - h->start[k] != n * h->fh[k] * h->fw[k])
            return deft_set_error(DEFT_ERR_FORMAT, "ssd300_vgg16: level %d has %d boxes, want %d", k,
                                  h->start[k + 1] - h->start[k], n * h->fh[k] * h->fw[k]);
        double xf = (double)f->in_w / steps[k], yf = (double)f->in_h / steps[k];
        for (int i = 0; i < h->fh[k]; i++)
            for (int j = 0; j < h->fw[k]; j++)
                for (int q = 0; q < n; q++, o++) {
                    float cx = (float)(((float)j + 0.5f) / (float)xf), cy = (float)(((float)i + 0.5f) / (float)yf);
                    float *b = out + 4 * (size_t)o;
                    b[0] = (cx - 0.5f * wh[q][0]) * (float)f->in_w;
                    b[1] = (cy - 0.5f * wh[q][1]) * (float)f->in_h;
                    b[2] = (cx + 0.5f * wh[q][0]) * (float)f->in_w;
                    b[3] = (cy + 0.5f * wh[q][1]) * (float)f->in_h;
                }
    }
    return DEFT_OK;
}

static void softmax_rows(float *x, int n, int c) {
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * c, m = r[0], s = 0;
        for (int k = 1; k < c; k++) m = r[k] > m ? r[k] : m;
        for (int k = 0; k < c; k++) s += r[k] = expf(r[k] - m);
        for (int k = 0; k < c; k++) r[k] /= s;
    }
}

enum deft_status deft_tv_ssd_post(const struct tv_heads *h, const struct tv_frame *f, struct deft_tv_det_result *res) {
    int na = h->start[h->n_levels], nc = h->n_cls;
    float *anc = deft_malloc((size_t)na * 4 * sizeof *anc);
    res->raw_boxes = deft_malloc((size_t)na * 4 * sizeof(float));
    res->raw_scores = deft_malloc((size_t)na * nc * sizeof(float));
    int cap = 400 * (nc - 1) + 1;
    float *cb = deft_malloc((size_t)cap * 4 * sizeof *cb), *cs = deft_malloc((size_t)cap * sizeof *cs);
    int *cl = deft_malloc((size_t)cap * sizeof *cl), *idx = deft_malloc((size_t)na * sizeof *idx);
    enum deft_status s = anc && res->raw_boxes && res->raw_scores && cb && cs && cl && idx
                             ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = anchors(h, f, anc);
    int n = 0;
    if (!s) {
        res->n_raw = na, res->n_cls = nc;
        static const float w[4] = {10, 10, 5, 5};
        deft_box_decode(w, DEFT_BBOX_XFORM_CLIP, h->reg, anc, na, res->raw_boxes);
        deft_tv_clip_boxes(res->raw_boxes, na, f->img_h, f->img_w);
        memcpy(res->raw_scores, h->cls, (size_t)na * nc * sizeof(float));
        softmax_rows(res->raw_scores, na, nc);
        for (int label = 1; label < nc; label++) {
            int m = 0;
            for (int i = 0; i < na; i++)
                if (res->raw_scores[(size_t)i * nc + label] > 0.01f) idx[m++] = i;
            float *col = deft_malloc((size_t)na * sizeof *col);
            if (!col) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                break;
            }
            for (int i = 0; i < na; i++) col[i] = res->raw_scores[(size_t)i * nc + label];
            deft_tv_sort_desc(col, idx, m);
            for (int t = 0; t < m && t < 400; t++, n++) {
                memcpy(cb + 4 * (size_t)n, res->raw_boxes + 4 * (size_t)idx[t], 4 * sizeof(float));
                cs[n] = col[idx[t]];
                cl[n] = label;
            }
            deft_free(col);
        }
    }
    if (!s) s = deft_tv_nms_into(cb, cs, cl, n, 0.45f, 200, f, res);
    deft_free(anc);
    deft_free(cb);
    deft_free(cs);
    deft_free(cl);
    deft_free(idx);
    return s;
}

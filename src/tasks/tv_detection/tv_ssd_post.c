/* tv_ssd_post.c - torchvision SSD's DefaultBoxGenerator and
 * postprocess_detections (softmax, per class score > thresh and top k,
 * batched NMS, detections per image) with the settings of ssd300_vgg16
 * (its aspect ratios, scales and steps; 0.01, 400, 0.45, 200) and
 * ssdlite320_mobilenet_v3_large (ratios 2, 3 everywhere, scales 0.2..0.95,
 * steps from the maps; 0.001, 300, 0.55, 300). Float arithmetic in
 * torchvision's order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"
#include "tasks/tv_detection/tv_det_impl.h"

/* torchvision's DefaultBoxGenerator and SSD post-processing settings per model. */
struct ssd_cfg {
    double scales[7];
    int steps[6];              /* 0: the feature map's size (steps=None) */
    int n_ar[6], ar[6][2];     /* aspect ratios per level */
    float score_thresh, nms;
    int topk, max_det;
};
static const struct ssd_cfg ssd300 = {
    .scales = {0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05}, .steps = {8, 16, 32, 64, 100, 300},
    .n_ar = {1, 2, 2, 2, 1, 1}, .ar = {{2}, {2, 3}, {2, 3}, {2, 3}, {2}, {2}},
    .score_thresh = 0.01f, .nms = 0.45f, .topk = 400, .max_det = 200};

/* ssdlite320: min_ratio 0.2, max_ratio 0.95 over six maps (Python doubles), then 1.0 */
static struct ssd_cfg ssdlite_cfg(void) {
    struct ssd_cfg c = {.score_thresh = 0.001f, .nms = 0.55f, .topk = 300, .max_det = 300};
    for (int k = 0; k < 6; k++) {
        double range = 0.95 - 0.2;
        c.scales[k] = 0.2 + range * k / (6 - 1.0);
        c.n_ar[k] = 2, c.ar[k][0] = 2, c.ar[k][1] = 3;
    }
    c.scales[6] = 1.0;
    return c;
}

/* The (w, h) pairs of level k (as floats, clamped to [0, 1]): s_k, sqrt(s_k s_k+1), then
 * (s_k sqrt(ar), s_k / sqrt(ar)) and its transpose per ratio. */
static int wh_pairs(const struct ssd_cfg *c, int k, float wh[][2]) {
    double s = c->scales[k], sp = sqrt(c->scales[k] * c->scales[k + 1]);
    double p[6][2] = {{s, s}, {sp, sp}};
    int n = 2;
    for (int a = 0; a < c->n_ar[k]; a++) {
        double sq = sqrt((double)c->ar[k][a]);
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

static enum deft_status anchors(const struct ssd_cfg *c, const struct tv_heads *h, const struct tv_frame *f,
                                float *out) {
    int o = 0;
    for (int k = 0; k < h->n_levels && k < 6; k++) {
        float wh[6][2];
        int n = wh_pairs(c, k, wh);
        if (h->start[k + 1] - h->start[k] != n * h->fh[k] * h->fw[k])
            return deft_set_error(DEFT_ERR_FORMAT, "ssd: level %d has %d boxes, want %d", k,
                                  h->start[k + 1] - h->start[k], n * h->fh[k] * h->fw[k]);
        double xf = c->steps[k] ? (double)f->in_w / c->steps[k] : h->fw[k];
        double yf = c->steps[k] ? (double)f->in_h / c->steps[k] : h->fh[k];
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

static enum deft_status ssd_post(const struct ssd_cfg *c, const struct tv_heads *h, const struct tv_frame *f,
                                 struct deft_tv_det_result *res) {
    int na = h->start[h->n_levels], nc = h->n_cls;
    float *anc = deft_malloc((size_t)na * 4 * sizeof *anc);
    res->raw_boxes = deft_malloc((size_t)na * 4 * sizeof(float));
    res->raw_scores = deft_malloc((size_t)na * nc * sizeof(float));
    int cap = c->topk * (nc - 1) + 1;
    float *cb = deft_malloc((size_t)cap * 4 * sizeof *cb), *cs = deft_malloc((size_t)cap * sizeof *cs);
    int *cl = deft_malloc((size_t)cap * sizeof *cl), *idx = deft_malloc((size_t)na * sizeof *idx);
    enum deft_status s = anc && res->raw_boxes && res->raw_scores && cb && cs && cl && idx
                             ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = anchors(c, h, f, anc);
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
                if (res->raw_scores[(size_t)i * nc + label] > c->score_thresh) idx[m++] = i;
            float *col = deft_malloc((size_t)na * sizeof *col);
            if (!col) {
                s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
                break;
            }
            for (int i = 0; i < na; i++) col[i] = res->raw_scores[(size_t)i * nc + label];
            deft_tv_sort_desc(col, idx, m);
            for (int t = 0; t < m && t < c->topk; t++, n++) {
                memcpy(cb + 4 * (size_t)n, res->raw_boxes + 4 * (size_t)idx[t], 4 * sizeof(float));
                cs[n] = col[idx[t]];
                cl[n] = label;
            }
            deft_free(col);
        }
    }
    if (!s) s = deft_tv_nms_into(cb, cs, cl, n, c->nms, c->max_det, f, res);
    deft_free(anc);
    deft_free(cb);
    deft_free(cs);
    deft_free(cl);
    deft_free(idx);
    return s;
}

enum deft_status deft_tv_ssd_post(const struct tv_heads *h, const struct tv_frame *f, struct deft_tv_det_result *res) {
    return ssd_post(&ssd300, h, f, res);
}

enum deft_status deft_tv_ssdlite_post(const struct tv_heads *h, const struct tv_frame *f,
                                      struct deft_tv_det_result *res) {
    struct ssd_cfg c = ssdlite_cfg();
    return ssd_post(&c, h, f, res);
}

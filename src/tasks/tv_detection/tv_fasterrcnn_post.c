/* tv_fasterrcnn_post.c - the host side of torchvision's fasterrcnn_resnet50_fpn
 * between and after the graph's ranges (tv_fasterrcnn.c):
 *   RPN: AnchorGenerator (32..512, one size per level, ratios 0.5, 1, 2),
 *     BoxCoder (1, 1, 1, 1), filter_proposals: per level top 1000 objectness
 *     logits, sigmoid, clipping, remove_small_boxes(1e-3), score >= 0, NMS 0.7
 *     per level, as many proposals as the graph's input "tv_rois" has rows (1000);
 *   MultiScaleRoIAlign's LevelMapper: level floor(4 + log2(sqrt(area) / 224) +
 *     1e-6) clamped to 2..5;
 *   RoIHeads.postprocess_detections: BoxCoder (10, 10, 5, 5) per class,
 *     clipping, softmax, background dropped, score > 0.05, remove_small_boxes
 *     (1e-2), batched NMS 0.5, 100 detections.
 * fasterrcnn_mobilenet_v3_large_fpn (struct deft_tv_frcnn_cfg): sizes 32..512 x 3
 * ratios on each of its three levels, RPN score >= 0.05, one RoI level (both FPN
 * maps are 1/32: LevelMapper(5, 5)).
 * Float arithmetic in torchvision's order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_ops.h"
#include "deft/runtime.h"
#include "tasks/tv_detection/tv_det_impl.h"

/* generate_anchors: round([-w, -h, w, h] / 2), w = s / sqrt(r), h = s * sqrt(r), ratios outer;
 * resnet50_fpn: one size per level (32 << level), mobilenet_v3_large_fpn: 32..512 on every level. */
static int cell_anchors(const struct deft_tv_frcnn_cfg *c, int level, float out[15][4]) {
    static const float ratios[3] = {0.5f, 1.0f, 2.0f};
    int ns = c->all_sizes ? 5 : 1;
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < ns; k++) {
            float s = (float)(32 << (c->all_sizes ? k : level));
            float hr = sqrtf(ratios[r]), wr = 1 / hr, ws = wr * s, hs = hr * s;
            float *o = out[r * ns + k];
            o[0] = rintf(-ws / 2), o[1] = rintf(-hs / 2), o[2] = rintf(ws / 2), o[3] = rintf(hs / 2);
        }
    return 3 * ns;
}

static enum deft_status anchors(const struct deft_tv_frcnn_cfg *c, const struct tv_heads *h, const struct tv_frame *f,
                                float *out) {
    for (int l = 0; l < h->n_levels; l++) {
        float ca[15][4];
        int na = cell_anchors(c, l, ca);
        if (h->start[l + 1] - h->start[l] != na * h->fh[l] * h->fw[l])
            return deft_set_error(DEFT_ERR_FORMAT, "fasterrcnn: level %d anchors", l);
        long sy = f->in_h / h->fh[l], sx = f->in_w / h->fw[l]; /* image_size // grid */
        float *o = out + 4 * (size_t)h->start[l];
        for (int i = 0; i < h->fh[l]; i++)
            for (int j = 0; j < h->fw[l]; j++)
                for (int a = 0; a < na; a++, o += 4) {
                    float x = (float)(j * sx), y = (float)(i * sy);
                    o[0] = x + ca[a][0], o[1] = y + ca[a][1], o[2] = x + ca[a][2], o[3] = y + ca[a][3];
                }
    }
    return DEFT_OK;
}

static bool big_enough(const float *b, float min) { return b[2] - b[0] >= min && b[3] - b[1] >= min; }

/* filter_proposals into props (up to rois_n boxes), *np their count; res gets the raw RPN output. */
static enum deft_status proposals(const struct deft_tv_frcnn_cfg *c, const struct tv_heads *h, const struct tv_frame *f, struct deft_tv_det_result *res,
                                  float *props, int rois_n, int *np) {
    int na = h->start[h->n_levels], cap = 1000 * h->n_levels;
    float *anc = deft_malloc((size_t)na * 4 * sizeof *anc);
    float *cb = deft_malloc((size_t)cap * 4 * sizeof *cb), *cs = deft_malloc((size_t)cap * sizeof *cs);
    int *cl = deft_malloc((size_t)cap * sizeof *cl), *idx = deft_malloc((size_t)na * sizeof *idx);
    int *keep = deft_malloc((size_t)cap * sizeof *keep);
    res->raw_boxes = deft_malloc((size_t)na * 4 * sizeof(float));
    res->raw_scores = deft_malloc((size_t)na * sizeof(float));
    enum deft_status s = anc && cb && cs && cl && idx && keep && res->raw_boxes && res->raw_scores
                             ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = anchors(c, h, f, anc);
    int n = 0, nk = 0;
    if (!s) {
        res->n_raw = na, res->n_cls = 1;
        static const float w[4] = {1, 1, 1, 1};
        deft_box_decode(w, DEFT_BBOX_XFORM_CLIP, h->reg, anc, na, res->raw_boxes);
        deft_tv_clip_boxes(res->raw_boxes, na, f->img_h, f->img_w);
        for (int i = 0; i < na; i++) res->raw_scores[i] = 1.0f / (1.0f + expf(-h->cls[i]));
        for (int l = 0; l < h->n_levels; l++) {
            int m = h->start[l + 1] - h->start[l];
            for (int i = 0; i < m; i++) idx[i] = h->start[l] + i;
            deft_tv_sort_desc(h->cls, idx, m); /* topk of the logits */
            for (int t = 0; t < m && t < 1000; t++) {
                const float *b = res->raw_boxes + 4 * (size_t)idx[t];
                float sc = res->raw_scores[idx[t]];
                if (!big_enough(b, 1e-3f) || !(sc >= c->rpn_score_thresh)) continue;
                memcpy(cb + 4 * (size_t)n, b, 4 * sizeof(float));
                cs[n] = sc, cl[n++] = l;
            }
        }
        s = n ? deft_batched_nms_tv(cb, cs, cl, n, 0.7, keep, &nk) : DEFT_OK;
    }
    if (nk > rois_n) nk = rois_n;
    for (int i = 0; !s && i < nk; i++) memcpy(props + 4 * (size_t)i, cb + 4 * (size_t)keep[i], 4 * sizeof(float));
    *np = s ? 0 : nk;
    deft_free(anc);
    deft_free(cb);
    deft_free(cs);
    deft_free(cl);
    deft_free(idx);
    deft_free(keep);
    return s;
}

/* LevelMapper: 0..n_roi-1 for levels k_min.., float32 as torch computes it. */
static int roi_level(const struct deft_tv_frcnn_cfg *c, const float *b) {
    float s = sqrtf((b[2] - b[0]) * (b[3] - b[1]));
    float k = floorf(4.0f + log2f(s / 224.0f) + 1e-6f);
    float lo = (float)c->roi_k_min, hi = (float)(c->roi_k_min + c->n_roi - 1);
    k = k < lo ? lo : k > hi ? hi : k;
    return (int)k - c->roi_k_min;
}

static int role(const struct deft_graph *g, const char *r) { return deft_graph_find_role(g, r); }

/* MultiScaleRoIAlign: every proposal pooled on every level by the graph, each one's own level kept. */
static enum deft_status pool_rois(const struct deft_tv_frcnn_cfg *c, struct deft_runtime *rt, const struct deft_graph *g, const float *props, int np,
                                  int rois_n, int first, int last, float *feat) {
    float *rois = deft_calloc((size_t)rois_n * 5, sizeof *rois);
    const size_t row = 256 * 7 * 7;
    float *tmp = deft_malloc((size_t)rois_n * row * sizeof *tmp);
    enum deft_status s = rois && tmp ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < np; i++) memcpy(rois + 5 * (size_t)i + 1, props + 4 * (size_t)i, 4 * sizeof(float));
    if (!s) s = deft_runtime_set_input(rt, role(g, "tv_rois"), rois, (size_t)rois_n * 5);
    if (!s) s = deft_runtime_run_range(rt, first, last);
    memset(feat, 0, (size_t)rois_n * row * sizeof *feat);
    for (int l = 0; !s && l < c->n_roi; l++) {
        char r[16] = "tv_roi_0";
        r[7] = (char)('0' + l);
        s = deft_runtime_read(rt, role(g, r), tmp, (size_t)rois_n * row);
        for (int i = 0; !s && i < np; i++)
            if (roi_level(c, props + 4 * (size_t)i) == l)
                memcpy(feat + i * row, tmp + i * row, row * sizeof *feat);
    }
    deft_free(rois);
    deft_free(tmp);
    return s;
}

static void softmax_rows(float *x, int n, int c) {
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * c, m = r[0], s = 0;
        for (int k = 1; k < c; k++) m = r[k] > m ? r[k] : m;
        for (int k = 0; k < c; k++) s += r[k] = expf(r[k] - m);
        for (int k = 0; k < c; k++) r[k] /= s;
    }
}

/* postprocess_detections on the box head's outputs for the np proposals. */
static enum deft_status detections(const float *cls, const float *reg, const float *props, int np, int nc,
                                   const struct tv_frame *f, struct deft_tv_det_result *res) {
    size_t nb = (size_t)(np ? np : 1) * nc;
    float *anc = deft_malloc(nb * 4 * sizeof *anc), *box = deft_malloc(nb * 4 * sizeof *box);
    float *sc = deft_malloc(nb * sizeof *sc), *cb = deft_malloc(nb * 4 * sizeof *cb), *cs = deft_malloc(nb * sizeof *cs);
    int *cl = deft_malloc(nb * sizeof *cl), n = 0;
    enum deft_status s = anc && box && sc && cb && cs && cl ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) {
        for (int i = 0; i < np; i++)
            for (int c = 0; c < nc; c++) memcpy(anc + 4 * ((size_t)i * nc + c), props + 4 * (size_t)i, 4 * sizeof(float));
        static const float w[4] = {10, 10, 5, 5};
        deft_box_decode(w, DEFT_BBOX_XFORM_CLIP, reg, anc, np * nc, box);
        deft_tv_clip_boxes(box, np * nc, f->img_h, f->img_w);
        memcpy(sc, cls, (size_t)np * nc * sizeof *sc);
        softmax_rows(sc, np, nc);
        for (int i = 0; i < np; i++)
            for (int c = 1; c < nc; c++) {
                size_t k = (size_t)i * nc + c;
                if (!(sc[k] > 0.05f) || !big_enough(box + 4 * k, 1e-2f)) continue;
                memcpy(cb + 4 * (size_t)n, box + 4 * k, 4 * sizeof(float));
                cs[n] = sc[k], cl[n++] = c;
            }
        s = deft_tv_nms_into(cb, cs, cl, n, 0.5f, 100, f, res);
    }
    deft_free(anc);
    deft_free(box);
    deft_free(sc);
    deft_free(cb);
    deft_free(cs);
    deft_free(cl);
    return s;
}

enum deft_status deft_tv_fasterrcnn_post(const struct deft_tv_frcnn_cfg *c, struct deft_runtime *rt, const struct deft_graph *g, const struct tv_heads *h,
                                         const struct tv_frame *f, struct deft_tv_det_result *res) {
    int pool0 = deft_graph_find_node(g, "roi_heads.box_roi_pool.l0");
    int head0 = deft_graph_find_node(g, "roi_heads.box_head.flatten");
    int vc = role(g, "tv_box_cls"), vr = role(g, "tv_box_reg"), vf = role(g, "tv_box_feat");
    if (pool0 < 0 || head0 < 0 || vc < 0 || vr < 0 || vf < 0 || role(g, "tv_rois") < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "fasterrcnn graph: no RoI stage");
    /* the graph's proposal count (rpn_post_nms_top_n_test) */
    int rois_n = (int)deft_graph_value(g, role(g, "tv_rois"))->shape.d[0], np = 0;
    int nc = (int)deft_graph_value(g, vc)->shape.d[1];
    if (rois_n < 1 || deft_graph_value(g, vf)->shape.d[0] != rois_n)
        return deft_set_error(DEFT_ERR_FORMAT, "fasterrcnn graph: RoI stage shapes");
    const size_t row = 256 * 7 * 7;
    float *props = deft_malloc((size_t)rois_n * 4 * sizeof *props);
    float *feat = deft_malloc((size_t)rois_n * row * sizeof *feat);
    float *cls = deft_malloc((size_t)rois_n * nc * sizeof *cls);
    float *reg = deft_malloc((size_t)rois_n * nc * 4 * sizeof *reg);
    enum deft_status s = props && feat && cls && reg ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = proposals(c, h, f, res, props, rois_n, &np);
    if (!s) s = pool_rois(c, rt, g, props, np, rois_n, pool0, head0, feat);
    if (!s) s = deft_runtime_set_input(rt, vf, feat, (size_t)rois_n * row);
    if (!s) s = deft_runtime_run_range(rt, head0, deft_graph_num_nodes(g));
    if (!s) s = deft_runtime_read(rt, vc, cls, (size_t)rois_n * nc);
    if (!s) s = deft_runtime_read(rt, vr, reg, (size_t)rois_n * nc * 4);
    if (!s) s = detections(cls, reg, props, np, nc, f, res);
    deft_free(props);
    deft_free(feat);
    deft_free(cls);
    deft_free(reg);
    return s;
}

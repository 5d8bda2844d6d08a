/* ssd_match.c - TAO's SSD prior matching: bipartite, then per prior at
 * pos_iou, neutral between neg_iou and the positives (include/deft/ssd.h). */
#include <math.h>
#include <string.h>
#include "deft/det_ops.h"
#include "deft/ssd.h"

static float iou(const float *a, const float *b) {
    float iw = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), ih = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    float in = iw * ih;
    float u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - in;
    return u > 0 ? in / u : 0;
}

/* TF's greedy bipartite match: the best remaining (gt, prior) pair, n_gt times. */
static void bipartite(float *sim, int n_gt, long np, const bool *valid, long *match) {
    bool *used_gt = (bool *)deft_calloc((size_t)n_gt + 1, 1);
    for (int g = 0; g < n_gt; g++) match[g] = -1;
    for (int round = 0; used_gt && round < n_gt; round++) {
        float best = -1;
        int bg = -1;
        long bp = -1;
        for (int g = 0; g < n_gt; g++) {
            if (used_gt[g] || !valid[g]) continue;
            const float *row = sim + (size_t)g * (size_t)np;
            for (long p = 0; p < np; p++)
                if (row[p] > best) best = row[p], bg = g, bp = p;
        }
        if (bg < 0) break;
        used_gt[bg] = true;
        match[bg] = bp;
        for (int g = 0; g < n_gt; g++) sim[(size_t)g * (size_t)np + (size_t)bp] = -1; /* prior taken */
    }
    deft_free(used_gt);
}

static void encode(const float *prior, const struct deft_box *g, float *t) {
    float a[4] = {prior[0], prior[1], prior[2], prior[3]}, b[4] = {g->x1, g->y1, g->x2, g->y2};
    deft_ssd_encode(prior + 4, b, a, 1, t);
}

enum deft_status deft_ssd_match(const float *priors, long np, const struct deft_box *gt, int n_gt, float pos_iou,
                                float neg_iou, int *label, float *target) {
    if (!priors || np < 1 || (n_gt > 0 && !gt) || !label || !target || n_gt < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_ssd_match: bad arguments");
    for (long p = 0; p < np; p++) label[p] = 0;
    memset(target, 0, (size_t)np * 4 * sizeof *target);
    if (n_gt == 0) return DEFT_OK;
    float *sim = deft_malloc((size_t)n_gt * (size_t)np * sizeof *sim);
    float *best = deft_malloc((size_t)np * sizeof *best);
    long *bm = deft_malloc((size_t)n_gt * sizeof *bm);
    bool *valid = deft_malloc((size_t)n_gt);
    int *arg = deft_malloc((size_t)np * sizeof *arg);
    enum deft_status s = sim && best && bm && valid && arg ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) {
        for (int g = 0; g < n_gt; g++) {
            const float b[4] = {gt[g].x1, gt[g].y1, gt[g].x2, gt[g].y2};
            valid[g] = b[2] > b[0] && b[3] > b[1];
            for (long p = 0; p < np; p++) sim[(size_t)g * (size_t)np + (size_t)p] = valid[g] ? iou(b, priors + 8 * p) : 0;
        }
        /* per prior: its best ground truth (first on ties), before the bipartite step marks priors */
        for (long p = 0; p < np; p++) {
            best[p] = -1;
            arg[p] = -1;
            for (int g = 0; g < n_gt; g++)
                if (valid[g] && sim[(size_t)g * (size_t)np + (size_t)p] > best[p])
                    best[p] = sim[(size_t)g * (size_t)np + (size_t)p], arg[p] = g;
        }
        bipartite(sim, n_gt, np, valid, bm);
        for (long p = 0; p < np; p++) { /* multi match, then neutral */
            if (arg[p] >= 0 && best[p] >= pos_iou) {
                label[p] = gt[arg[p]].cls + 1;
                encode(priors + 8 * p, &gt[arg[p]], target + 4 * p);
            } else if (best[p] >= neg_iou) {
                label[p] = -1;
            }
        }
        for (int g = 0; g < n_gt; g++) /* the bipartite matches win their prior */
            if (bm[g] >= 0) {
                label[bm[g]] = gt[g].cls + 1;
                encode(priors + 8 * bm[g], &gt[g], target + 4 * bm[g]);
            }
    }
    deft_free(sim);
    deft_free(best);
    deft_free(bm);
    deft_free(valid);
    deft_free(arg);
    return s;
}

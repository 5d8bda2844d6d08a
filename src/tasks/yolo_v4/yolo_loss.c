/* yolo_loss.c - TAO's YOLOv4 loss and its gradient on host buffers
 * (detection.md §2, Loss; TAO losses/yolo_loss.py and common/losses/base_loss.py).
 *
 * Per image, over every prediction slot (the matched GT from deft_yolo_match):
 *   positive: loc_weight * CIoU * (2 - w_g*h_g) * class_weight
 *             + BCE(obj, 1') + cls_weight * class_weight * sum_c BCE(cls_c, onehot')
 *   negative: neg_obj_weight * BCE(obj, 0')
 * where ' is label smoothing y(1-s) + s/2. Each term is summed over slots and
 * averaged over the batch. Choices taken from TAO's source where the doc is
 * silent:
 * - class_weight multiplies the class term too, not only the CIoU term;
 * - BCE is on sigmoid(logit) with each log floored at log(1e-18) (its
 *   gradient is 0 where the floor holds); the floor is applied in exact
 *   arithmetic (log sigmoid via softplus), not at float32's saturation;
 * - focal (alpha, gamma both > 0) replaces BCE on objectness (positives and
 *   negatives) and classes: (1-p_t)^gamma * (y alpha + (1-y)(1-alpha)) * BCE
 *   with p_t = y p + (1-y)(1-p) on the smoothed y; the gradient flows through
 *   the modulating factor;
 * - negatives: not positive and the decoded box's IoU (corner boxes, 0 when
 *   they do not overlap) with every GT that holds at least one slot after
 *   matching is < neutral_box_iou (strict); with no such GT every
 *   non-positive slot is negative. The negative mask carries no gradient.
 * - the positive objectness term has weight 1. */
#include <math.h>
#include <string.h>
#include "tasks/yolo_v4/yolo_ciou.h"
#include "tasks/yolo_v4/yolo_impl.h"

#define LOG_FLOOR (-41.44653167389282) /* log(1e-18) */

struct deft_yolo_loss_config deft_yolo_loss_config_default(int n_classes) {
    return (struct deft_yolo_loss_config){.n_classes = n_classes,
                                          .box_matching_iou = 0.25f,
                                          .neutral_box_iou = 0.5f,
                                          .loc_weight = 1.0f,
                                          .neg_obj_weight = 1.0f,
                                          .cls_weight = 1.0f};
}

/* (Focal) BCE of logit t against the smoothed target y; *g = d loss / d t. */
static double bce(const struct deft_yolo_loss_config *cfg, double t, double y, double *g) {
    /* log p = -softplus(-t), log(1-p) = -softplus(t), from one exp and one log1p */
    double e = exp(-fabs(t)), l1 = log1p(e);
    double p = t >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    double lp = -(fmax(-t, 0.0) + l1), ln = -(fmax(t, 0.0) + l1);
    double dlp = 1.0 - p, dln = -p;
    if (lp < LOG_FLOOR) lp = LOG_FLOOR, dlp = 0;
    if (ln < LOG_FLOOR) ln = LOG_FLOOR, dln = 0;
    double l = -(y * lp + (1.0 - y) * ln);
    double dl = -(y * dlp + (1.0 - y) * dln);
    if (!(cfg->focal_alpha > 0 && cfg->focal_gamma > 0)) {
        *g = dl;
        return l;
    }
    double gam = cfg->focal_gamma, al = cfg->focal_alpha;
    double q = y * (1.0 - p) + (1.0 - y) * p; /* 1 - p_t */
    double wf = y * al + (1.0 - y) * (1.0 - al);
    double mod = pow(q, gam);
    double dq = (1.0 - 2.0 * y) * p * (1.0 - p);
    double dmod = q > 0 ? gam * pow(q, gam - 1.0) * dq : 0.0;
    *g = wf * (dmod * l + mod * dl);
    return wf * mod * l;
}

/* IoU of corner boxes as TAO's ssd box_utils.iou: 0 without overlap. */
static double box_iou(const double a[4], const double b[4]) {
    double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]);
    double ih = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    double inter = fmax(iw, 0.0) * fmax(ih, 0.0);
    if (inter == 0.0) return 0.0;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

struct img_ctx {
    const struct deft_yolo_loss_config *cfg;
    const struct deft_box *gt;
    const int *assign;
    const double *valid; /* [n_valid][4] corner boxes of GTs holding a slot */
    int n_valid;
    double inv_batch;
    double smooth_pos, smooth_neg; /* smoothed 1 and 0 */
    struct deft_yolo_loss_terms *acc;
};

/* A positive slot: CIoU, objectness 1 and classes; writes the slot's gradient. */
static void positive(const struct img_ctx *c, const struct deft_yolo_head *h, const float *o,
                     float *go, int a, int y, int x) {
    const struct deft_yolo_loss_config *cfg = c->cfg;
    int nc = cfg->n_classes;
    const struct deft_box *g = &c->gt[c->assign[0]];
    double t[4];
    for (int k = 0; k < 4; k++) t[k] = o[yolo_at(h, nc, a, k, y, x)];
    struct yolo_pred p = yolo_decode_one(h, a, y, x, t[0], t[1], t[2], t[3]);
    double gw = (double)g->x2 - g->x1, gh = (double)g->y2 - g->y1;
    double gb[4] = {((double)g->x1 + g->x2) / 2, ((double)g->y1 + g->y2) / 2, gw, gh};
    double pb[4] = {p.cx, p.cy, p.w, p.h}, dp[4];
    double cw = cfg->class_weights ? (double)cfg->class_weights[g->cls] : 1.0;
    double wl = (double)cfg->loc_weight * (2.0 - gw * gh) * cw;
    c->acc->loc += wl * yolo_ciou(gb, pb, dp) * c->inv_batch;
    double dobj;
    c->acc->obj += bce(cfg, o[yolo_at(h, nc, a, 4, y, x)], c->smooth_pos, &dobj) * c->inv_batch;
    double wc = (double)cfg->cls_weight * cw, cls = 0;
    for (int k = 0; k < nc; k++) {
        double dk;
        size_t at = yolo_at(h, nc, a, 5 + k, y, x);
        cls += bce(cfg, o[at], k == g->cls ? c->smooth_pos : c->smooth_neg, &dk);
        if (go) go[at] = (float)(wc * dk * c->inv_batch);
    }
    c->acc->cls += wc * cls * c->inv_batch;
    c->acc->n_pos++;
    if (!go) return;
    double s = wl * c->inv_batch;
    go[yolo_at(h, nc, a, 0, y, x)] = (float)(s * dp[0] * p.dcx);
    go[yolo_at(h, nc, a, 1, y, x)] = (float)(s * dp[1] * p.dcy);
    go[yolo_at(h, nc, a, 2, y, x)] = (float)(s * dp[2] * p.dw);
    go[yolo_at(h, nc, a, 3, y, x)] = (float)(s * dp[3] * p.dh);
    go[yolo_at(h, nc, a, 4, y, x)] = (float)(dobj * c->inv_batch);
}

/* A non-positive slot: objectness 0 unless its box overlaps a GT enough. */
static void negative(const struct img_ctx *c, const struct deft_yolo_head *h, const float *o,
                     float *go, int a, int y, int x) {
    const struct deft_yolo_loss_config *cfg = c->cfg;
    int nc = cfg->n_classes;
    struct yolo_pred p =
        yolo_decode_one(h, a, y, x, o[yolo_at(h, nc, a, 0, y, x)], o[yolo_at(h, nc, a, 1, y, x)],
                        o[yolo_at(h, nc, a, 2, y, x)], o[yolo_at(h, nc, a, 3, y, x)]);
    double pb[4] = {p.cx - p.w / 2, p.cy - p.h / 2, p.cx + p.w / 2, p.cy + p.h / 2};
    for (int v = 0; v < c->n_valid; v++)
        if (box_iou(pb, c->valid + 4 * v) >= (double)cfg->neutral_box_iou) return;
    double d;
    size_t at = yolo_at(h, nc, a, 4, y, x);
    double w = (double)cfg->neg_obj_weight;
    c->acc->noobj += w * bce(cfg, o[at], c->smooth_neg, &d) * c->inv_batch;
    c->acc->n_neg++;
    if (go) go[at] = (float)(w * d * c->inv_batch);
}

static enum deft_status check_args(const struct deft_yolo_loss_config *cfg, int n_heads,
                                   int batch, const float *const *outs,
                                   const struct deft_box *const *gt, const int *n_gt) {
    if (!cfg || cfg->n_classes < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo loss: n_classes must be >= 1");
    if (batch < 1 || !outs || !n_gt || !gt)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "yolo loss: batch %d needs outputs and ground truth arrays", batch);
    if (!(cfg->label_smoothing >= 0 && cfg->label_smoothing <= 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "yolo loss: label_smoothing %g must be in [0, 1] (TAO: [0, 0.3])",
                              (double)cfg->label_smoothing);
    for (int i = 0; i < n_heads; i++)
        if (!outs[i])
            return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo loss: head %d output is NULL", i);
    for (int b = 0; b < batch; b++) {
        if (n_gt[b] < 0 || (n_gt[b] > 0 && !gt[b]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo loss: image %d has %d boxes", b,
                                  n_gt[b]);
        for (int g = 0; g < n_gt[b]; g++)
            if (gt[b][g].cls < 0 || gt[b][g].cls >= cfg->n_classes)
                return deft_set_error(DEFT_ERR_INVALID_ARG,
                                      "yolo loss: image %d box %d has class %d, outside 0..%d", b,
                                      g, gt[b][g].cls, cfg->n_classes - 1);
    }
    return DEFT_OK;
}

/* One image: match, collect the GTs that hold a slot, walk every slot. */
static enum deft_status one_image(struct img_ctx *c, const struct deft_yolo_head *heads,
                                  int n_heads, int b, const float *const *outs, int n_gt,
                                  float *const *grads, int *assign, double *valid) {
    enum deft_status s =
        deft_yolo_match(heads, n_heads, c->cfg->box_matching_iou, c->gt, n_gt, assign);
    if (s != DEFT_OK) return s;
    long n_slots = deft_yolo_n_slots(heads, n_heads);
    c->n_valid = 0;
    for (int g = 0; g < n_gt; g++) valid[4 * g] = 0; /* first: a "holds a slot" flag */
    for (long i = 0; i < n_slots; i++)
        if (assign[i] >= 0) valid[4 * assign[i]] = 1;
    for (int g = 0; g < n_gt; g++) {
        if (valid[4 * g] == 0) continue;
        double *v = valid + 4 * c->n_valid++; /* c->n_valid <= g: packs in place */
        v[0] = c->gt[g].x1, v[1] = c->gt[g].y1, v[2] = c->gt[g].x2, v[3] = c->gt[g].y2;
    }
    c->valid = valid;
    const int *slot = assign;
    int per = 5 + c->cfg->n_classes;
    for (int i = 0; i < n_heads; i++) {
        const struct deft_yolo_head *h = &heads[i];
        size_t blk = (size_t)h->n_anchors * (size_t)per * (size_t)h->gh * (size_t)h->gw;
        const float *o = outs[i] + (size_t)b * blk;
        float *go = grads ? grads[i] + (size_t)b * blk : NULL;
        for (int a = 0; a < h->n_anchors; a++)
            for (int y = 0; y < h->gh; y++)
                for (int x = 0; x < h->gw; x++, slot++) {
                    if (*slot >= 0) {
                        c->assign = slot;
                        positive(c, h, o, go, a, y, x);
                    } else {
                        negative(c, h, o, go, a, y, x);
                    }
                }
    }
    return DEFT_OK;
}

enum deft_status deft_yolo_loss(const struct deft_yolo_loss_config *cfg,
                                const struct deft_yolo_head *heads, int n_heads, int batch,
                                const float *const *outs, const struct deft_box *const *gt,
                                const int *n_gt, float *const *grads,
                                struct deft_yolo_loss_terms *terms) {
    enum deft_status s = yolo_check_heads(heads, n_heads);
    if (s == DEFT_OK) s = check_args(cfg, n_heads, batch, outs, gt, n_gt);
    if (s != DEFT_OK) return s;
    int per = 5 + cfg->n_classes, max_gt = 0;
    for (int b = 0; b < batch; b++) max_gt = n_gt[b] > max_gt ? n_gt[b] : max_gt;
    long n_slots = deft_yolo_n_slots(heads, n_heads);
    int *assign = deft_malloc((size_t)n_slots * sizeof *assign);
    double *valid = deft_malloc((size_t)(max_gt > 0 ? max_gt : 1) * 4 * sizeof *valid);
    if (!assign || !valid) {
        deft_free(assign);
        deft_free(valid);
        return deft_set_error(DEFT_ERR_NOMEM, "yolo loss: out of memory for %ld slots", n_slots);
    }
    if (grads)
        for (int i = 0; i < n_heads; i++)
            memset(grads[i], 0,
                   (size_t)batch * (size_t)heads[i].n_anchors * (size_t)per *
                       (size_t)heads[i].gh * (size_t)heads[i].gw * sizeof(float));
    struct deft_yolo_loss_terms acc = {0};
    double sm = cfg->label_smoothing;
    struct img_ctx c = {.cfg = cfg,
                        .inv_batch = 1.0 / batch,
                        .smooth_pos = 1.0 - sm / 2,
                        .smooth_neg = sm / 2,
                        .acc = &acc};
    for (int b = 0; b < batch && s == DEFT_OK; b++) {
        c.gt = gt[b];
        s = one_image(&c, heads, n_heads, b, outs, n_gt[b], grads, assign, valid);
    }
    deft_free(assign);
    deft_free(valid);
    if (s != DEFT_OK) return s;
    acc.total = acc.loc + acc.obj + acc.noobj + acc.cls;
    if (terms) *terms = acc;
    return DEFT_OK;
}

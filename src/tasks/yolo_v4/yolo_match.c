/* yolo_match.c - TAO's YOLOv4 target matching (detection.md §2, Matching).
 *
 * TAO's encoder walks the GTs in order; for each it first offers every
 * anchor with shape IoU > box_matching_iou (a slot goes to whichever GT has
 * the higher IoU, and a slot taken as some GT's best anchor is locked), then
 * writes the GT into its best anchor's slot unconditionally and locks it.
 * The result equals two passes - all threshold offers, then all best anchors
 * in GT order - which is what is done here: no per-slot IoU array, the IoU
 * of the slot's current holder is recomputed when needed. */
#include <math.h>
#include <string.h>
#include "tasks/yolo_v4/yolo_impl.h"

enum deft_status yolo_check_heads(const struct deft_yolo_head *heads, int n_heads) {
    if (!heads || n_heads < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo: no output heads given");
    for (int i = 0; i < n_heads; i++) {
        const struct deft_yolo_head *h = &heads[i];
        if (h->gh < 1 || h->gw < 1 || h->n_anchors < 1 || !h->anchors)
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "yolo: head %d has grid %dx%d and %d anchors; each head needs "
                                  "a grid of at least 1x1 and one anchor",
                                  i, h->gh, h->gw, h->n_anchors);
        if (!isfinite(h->xy_extend) || h->xy_extend < 0)
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "yolo: head %d grid_xy_extend %g must be finite and >= 0", i,
                                  (double)h->xy_extend);
        for (int a = 0; a < 2 * h->n_anchors; a++)
            if (!(h->anchors[a] > 0) || !isfinite(h->anchors[a]))
                return deft_set_error(DEFT_ERR_INVALID_ARG,
                                      "yolo: head %d anchor %d has a size %g; anchor w and h must "
                                      "be positive (pixels / output size)",
                                      i, a / 2, (double)h->anchors[a]);
    }
    return DEFT_OK;
}

long deft_yolo_n_slots(const struct deft_yolo_head *heads, int n_heads) {
    long n = 0;
    for (int i = 0; heads && i < n_heads; i++)
        n += (long)heads[i].n_anchors * heads[i].gh * heads[i].gw;
    return n;
}

/* IoU of two boxes that share their centre: only the shapes count. */
static double shape_iou(double w, double h, double aw, double ah) {
    double inter = fmin(w, aw) * fmin(h, ah);
    double uni = w * h + aw * ah - inter;
    return uni > 0 ? inter / uni : 0.0;
}

static bool gt_usable(const struct deft_box *g) {
    return isfinite(g->x1) && isfinite(g->y1) && isfinite(g->x2) && isfinite(g->y2) &&
           g->x2 > g->x1 && g->y2 > g->y1;
}

/* Cell of a centre on a grid of n cells: floor(clip(c*n, 0, n - 1e-3)) (TAO). */
static int cell_of(double c, int n) {
    double v = c * (double)n;
    if (v > (double)n - 1e-3) v = (double)n - 1e-3;
    if (v < 0) v = 0;
    return (int)floor(v);
}

/* Slot of anchor `a` (global index over all heads) for a GT centred at (cx, cy). */
static long slot_of(const struct deft_yolo_head *heads, int n_heads, int a, double cx,
                    double cy, const struct deft_yolo_head **head, int *local) {
    long off = 0;
    for (int i = 0; i < n_heads; i++) {
        const struct deft_yolo_head *h = &heads[i];
        if (a < h->n_anchors) {
            *head = h;
            *local = a;
            return off + ((long)a * h->gh + cell_of(cy, h->gh)) * h->gw + cell_of(cx, h->gw);
        }
        a -= h->n_anchors;
        off += (long)h->n_anchors * h->gh * h->gw;
    }
    return -1; /* unreachable for a valid anchor index */
}

enum deft_status deft_yolo_match(const struct deft_yolo_head *heads, int n_heads,
                                 float match_iou, const struct deft_box *gt, int n_gt,
                                 int *assign) {
    enum deft_status s = yolo_check_heads(heads, n_heads);
    if (s != DEFT_OK) return s;
    if (n_gt < 0 || (n_gt > 0 && !gt) || !assign)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "yolo match: %d boxes without a box array",
                              n_gt);
    long n_slots = deft_yolo_n_slots(heads, n_heads);
    for (long i = 0; i < n_slots; i++) assign[i] = -1;
    int n_anchor = 0;
    for (int i = 0; i < n_heads; i++) n_anchor += heads[i].n_anchors;

    /* pass 1: every anchor above the threshold, higher IoU wins */
    for (int g = 0; g < n_gt; g++) {
        if (!gt_usable(&gt[g])) continue;
        double w = (double)gt[g].x2 - gt[g].x1, h = (double)gt[g].y2 - gt[g].y1;
        double cx = ((double)gt[g].x1 + gt[g].x2) / 2, cy = ((double)gt[g].y1 + gt[g].y2) / 2;
        for (int a = 0; a < n_anchor; a++) {
            const struct deft_yolo_head *hd;
            int la;
            long sl = slot_of(heads, n_heads, a, cx, cy, &hd, &la);
            double iou = shape_iou(w, h, hd->anchors[2 * la], hd->anchors[2 * la + 1]);
            if (!(iou > (double)match_iou)) continue;
            double held = 0.0; /* TAO's empty slot compares against 0 */
            if (assign[sl] >= 0) {
                const struct deft_box *o = &gt[assign[sl]];
                held = shape_iou((double)o->x2 - o->x1, (double)o->y2 - o->y1,
                                 hd->anchors[2 * la], hd->anchors[2 * la + 1]);
            }
            if (iou > held) assign[sl] = g;
        }
    }
    /* pass 2: each GT's best anchor (first on ties), later GTs win a shared slot */
    for (int g = 0; g < n_gt; g++) {
        if (!gt_usable(&gt[g])) continue;
        double w = (double)gt[g].x2 - gt[g].x1, h = (double)gt[g].y2 - gt[g].y1;
        double cx = ((double)gt[g].x1 + gt[g].x2) / 2, cy = ((double)gt[g].y1 + gt[g].y2) / 2;
        long best = -1;
        double best_iou = -1;
        for (int a = 0; a < n_anchor; a++) {
            const struct deft_yolo_head *hd;
            int la;
            long sl = slot_of(heads, n_heads, a, cx, cy, &hd, &la);
            double iou = shape_iou(w, h, hd->anchors[2 * la], hd->anchors[2 * la + 1]);
            if (iou > best_iou) best_iou = iou, best = sl;
        }
        if (best >= 0) assign[best] = g;
    }
    return DEFT_OK;
}

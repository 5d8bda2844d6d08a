/* frcnn_loss.c - TAO's four Faster R-CNN losses with their gradients
 * (frcnn_impl.h): RPN sigmoid BCE + smooth L1 (sigma 3), RCNN softmax CE +
 * smooth L1 (sigma 1), each normalised by its count and weighted by its lambda. */
#include <math.h>
#include <string.h>
#include "tasks/faster_rcnn/frcnn_impl.h"

/* smooth L1 of x = target - pred with sigma; *d = d loss / d pred */
static double smooth_l1(double x, double sigma2, double *d) {
    double ax = fabs(x);
    if (ax <= 1.0 / sigma2) {
        *d = -sigma2 * x;
        return 0.5 * sigma2 * x * x;
    }
    *d = x > 0 ? -1.0 : 1.0;
    return ax - 0.5 / sigma2;
}

/* BCE with logits, stable: max(z,0) - z y + log(1 + exp(-|z|)) */
static double bce_logits(double z, double y, double *d) {
    double sg = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
    *d = sg - y;
    return (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
}

static void rpn_losses(const struct frcnn_params *p, const struct frcnn_targets *t, const float *cls,
                       const float *regr, float *gcls, float *gregr, struct frcnn_loss_terms *o) {
    long na = p->n_anchors, hw = (long)p->fmap_h * p->fmap_w;
    int A = p->n_cell_anchors;
    double lc = 0, lr = 0;
    long nv = 0, npos = 0;
    for (long i = 0; i < (long)t->batch * na; i++) nv += t->rpn_label[i] >= 0, npos += t->rpn_label[i] == 1;
    double dc = nv ? (double)nv : 1.0, dr = npos ? 4.0 * (double)npos : 1.0;
    for (int b = 0; b < t->batch; b++)
        for (long cell = 0; cell < hw; cell++)
            for (int a = 0; a < A; a++) {
                long i = (long)b * na + cell * A + a;
                int8_t y = t->rpn_label[i];
                if (y < 0) continue;
                long ci = ((long)b * A + a) * hw + cell;
                double d;
                lc += bce_logits(cls[ci], y, &d);
                if (gcls) gcls[ci] = (float)(p->lambda_rpn_class * d / dc);
                if (y != 1) continue;
                for (int k = 0; k < 4; k++) {
                    long ri = ((long)b * 4 * A + 4 * a + k) * hw + cell;
                    lr += smooth_l1((double)t->rpn_deltas[4 * i + k] - regr[ri], 9.0, &d);
                    if (gregr) gregr[ri] = (float)(p->lambda_rpn_regr * d / dr);
                }
            }
    o->rpn_class = p->lambda_rpn_class * lc / dc;
    o->rpn_regr = p->lambda_rpn_regr * lr / dr;
}

static void rcnn_losses(const struct frcnn_params *p, const struct frcnn_targets *t, const float *cls,
                        const float *regr, float *gcls, float *gregr, struct frcnn_loss_terms *o) {
    int C = p->n_classes, K = C + 1;
    long nr = (long)t->batch * p->rois_per_image, npos = 0;
    for (long r = 0; r < nr; r++) npos += t->roi_label[r] < C;
    double dc = nr ? (double)nr : 1.0, dr = npos ? 4.0 * (double)npos : 1.0, lc = 0, lr = 0;
    for (long r = 0; r < nr; r++) {
        const float *z = cls + r * K;
        int y = t->roi_label[r];
        double mx = z[0], sum = 0;
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < K; k++) sum += exp(z[k] - mx);
        lc += mx + log(sum) - z[y];
        for (int k = 0; gcls && k < K; k++)
            gcls[r * K + k] = (float)(p->lambda_cls_class * (exp(z[k] - mx) / sum - (k == y)) / dc);
        if (y >= C) continue;
        for (int k = 0; k < 4; k++) {
            double d;
            long ri = r * 4 * C + 4 * y + k;
            lr += smooth_l1((double)t->roi_deltas[4 * r + k] - regr[ri], 1.0, &d);
            if (gregr) gregr[ri] = (float)(p->lambda_cls_regr * d / dr);
        }
    }
    o->cls_class = p->lambda_cls_class * lc / dc;
    o->cls_regr = p->lambda_cls_regr * lr / dr;
}

enum deft_status frcnn_loss(const struct frcnn_params *p, const struct frcnn_targets *t, const float *const *outs,
                            float *const *grads, struct frcnn_loss_terms *terms) {
    if (!p || !t || !outs || !terms) return deft_set_error(DEFT_ERR_INVALID_ARG, "frcnn_loss: NULL argument");
    for (long r = 0; r < (long)t->batch * p->rois_per_image; r++)
        if (t->roi_label[r] < 0 || t->roi_label[r] > p->n_classes)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "frcnn_loss: RoI %ld has class %d of %d", r, t->roi_label[r],
                                  p->n_classes);
    memset(terms, 0, sizeof *terms);
    rpn_losses(p, t, outs[0], outs[1], grads ? grads[0] : NULL, grads ? grads[1] : NULL, terms);
    rcnn_losses(p, t, outs[2], outs[3], grads ? grads[2] : NULL, grads ? grads[3] : NULL, terms);
    terms->total = terms->rpn_class + terms->rpn_regr + terms->cls_class + terms->cls_regr;
    return DEFT_OK;
}

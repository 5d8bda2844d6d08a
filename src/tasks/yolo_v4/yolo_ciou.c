/* yolo_ciou.c - the CIoU loss of one predicted box against its GT, and its
 * gradient w.r.t. the prediction's centre and size.
 *
 * TAO's formula [losses/yolo_loss.py, l_ciou], reproduced with its small
 * constants: iou = I / (U + 1e-18); L = 1 - iou + rho^2 / (c^2 + 1e-18) +
 * alpha*v with v = 4/pi^2 (atan2(w_g, h_g + 1e-18) - atan2(w, h + 1e-18))^2
 * and alpha = v / (1 - iou + v + 1e-18). The gradient flows through alpha as
 * well (TAO does not stop it), and through min/max only to the prediction
 * when the prediction strictly wins (TF's tie rule, where the GT comes first). */
#include <math.h>
#include "tasks/yolo_v4/yolo_ciou.h"

#define EPS 1e-18

double yolo_ciou(const double g[4], const double p[4], double grad[4]) {
    const double pi = 3.14159265358979323846, k = 4.0 / (pi * pi);
    double gx1 = g[0] - g[2] / 2, gx2 = g[0] + g[2] / 2;
    double gy1 = g[1] - g[3] / 2, gy2 = g[1] + g[3] / 2;
    double px1 = p[0] - p[2] / 2, px2 = p[0] + p[2] / 2;
    double py1 = p[1] - p[3] / 2, py2 = p[1] + p[3] / 2;

    double iw_raw = fmin(gx2, px2) - fmax(gx1, px1);
    double ih_raw = fmin(gy2, py2) - fmax(gy1, py1);
    double iw = iw_raw > 0 ? iw_raw : 0, ih = ih_raw > 0 ? ih_raw : 0;
    double inter = iw * ih, ap = p[2] * p[3];
    double uni = g[2] * g[3] + ap - inter + EPS;
    double iou = inter / uni;

    double ew = fmax(gx2, px2) - fmin(gx1, px1);
    double eh = fmax(gy2, py2) - fmin(gy1, py1);
    double c2 = ew * ew + eh * eh + EPS;
    double dx = g[0] - p[0], dy = g[1] - p[1];
    double rho2 = dx * dx + dy * dy;

    double hp = p[3] + EPS;
    double ang = atan2(g[2], g[3] + EPS) - atan2(p[2], hp);
    double v = k * ang * ang;
    double den = 1.0 - iou + v + EPS;
    double loss = 1.0 - iou + rho2 / c2 + v * v / den;
    if (!grad) return loss;

    /* d loss / d (iou, v, rho2, c2); alpha*v = v^2 / den */
    double g_iou = -1.0 + v * v / (den * den);
    double g_v = 2.0 * v / den - v * v / (den * den);
    double g_rho2 = 1.0 / c2;
    double g_c2 = -rho2 / (c2 * c2);

    double g_inter = g_iou * (1.0 / uni + inter / (uni * uni));
    double g_ap = g_iou * (-inter / (uni * uni));
    double g_iw = iw_raw > 0 ? g_inter * ih : 0, g_ih = ih_raw > 0 ? g_inter * iw : 0;
    double gpx1 = 0, gpx2 = 0, gpy1 = 0, gpy2 = 0;
    if (px2 < gx2) gpx2 += g_iw;
    if (px1 > gx1) gpx1 -= g_iw;
    if (py2 < gy2) gpy2 += g_ih;
    if (py1 > gy1) gpy1 -= g_ih;
    double g_ew = g_c2 * 2 * ew, g_eh = g_c2 * 2 * eh;
    if (px2 > gx2) gpx2 += g_ew;
    if (px1 < gx1) gpx1 -= g_ew;
    if (py2 > gy2) gpy2 += g_eh;
    if (py1 < gy1) gpy1 -= g_eh;

    double gcx = gpx1 + gpx2 - 2.0 * dx * g_rho2;
    double gcy = gpy1 + gpy2 - 2.0 * dy * g_rho2;
    double gw = (gpx2 - gpx1) / 2 + g_ap * p[3];
    double gh = (gpy2 - gpy1) / 2 + g_ap * p[2];
    /* v's angle term: d atan2(w, h) = (h dw - w dh) / (w^2 + h^2), v = k ang^2 */
    double g_ang = g_v * k * 2.0 * ang * -1.0;
    double r = p[2] * p[2] + hp * hp;
    gw += g_ang * hp / r;
    gh += g_ang * -p[2] / r;
    grad[0] = gcx, grad[1] = gcy, grad[2] = gw, grad[3] = gh;
    return loss;
}

/* yolo_ciou.h - CIoU loss of one box pair (yolo_ciou.c). */
#ifndef DEFT_YOLO_CIOU_H
#define DEFT_YOLO_CIOU_H

/* g, p: (cx, cy, w, h) of the GT and the prediction. Returns the CIoU loss;
 * grad (may be NULL) receives d loss / d p. */
double yolo_ciou(const double g[4], const double p[4], double grad[4]);

#endif

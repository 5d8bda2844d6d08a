/* anchor_check.h (internal) - the dry runs of the anchor-based detectors
 * (faster_rcnn, ssd): read the training boxes, put them in network-input
 * units and report the ground truth no anchor/prior reaches at the positive
 * IoU (deft/det_priors.h), with the box sizes concerned. */
#ifndef DEFT_TASKS_ANCHOR_CHECK_H
#define DEFT_TASKS_ANCHOR_CHECK_H

#include <stdio.h>
#include "deft/det_data.h"

struct anchor_check {
    const float *anchors;   /* x1 y1 x2 y2 first, `stride` floats apart */
    long n_anchors;
    int stride;
    bool normalized;        /* anchors in 0-1 of the input (SSD) instead of input pixels */
    int net_w, net_h;       /* images are resized to this input (no letterbox: TAO's ssd and faster_rcnn) */
    float pos_iou;
    const char *pos_field;  /* the spec field of pos_iou, named in the report */
    /* Below pos_iou a box still trains through its best anchor (TAO's
     * matchers force one); below neg_iou that anchor is background too, so
     * the box cannot be learnt: the case a dry run stops on. */
    float neg_iou;
    const char *neg_field;
};

/* Reads `src`, checks and prints to out. *n_boxes is the count of boxes,
 * *n_weak those under pos_iou, *n_unmatched those under neg_iou; DEFT_OK
 * also when some are unmatched (the caller decides). */
enum deft_status anchor_check_dataset(const struct deft_det_source *src, int n_src,
                                      const struct deft_det_read_opts *ro, const struct anchor_check *c, FILE *out,
                                      long *n_boxes, long *n_weak, long *n_unmatched);

#endif

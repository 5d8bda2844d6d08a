/* deft/detection.h - the types every detection network shares: boxes,
 * labelled samples, datasets. Readers (KITTI, COCO, VOC), augmentation,
 * matching, losses, decoders and metrics all speak these.
 *
 * Coordinates: pixels of the image the box belongs to, x1 y1 x2 y2 with
 * x2 > x1, y2 > y1, no +1 convention (TAO's and COCO's). Normalised boxes
 * (targets for a network) use the same struct divided by the network input
 * size and say so where they are used.
 */
#ifndef DEFT_DETECTION_H
#define DEFT_DETECTION_H

#include <stdbool.h>
#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One box: a ground truth (score unused, 1) or a detection (difficult false). */
struct deft_box {
    float x1, y1, x2, y2;
    int cls;         /* index into the dataset's class list */
    bool difficult;  /* ground truth: KITTI occluded != 0 / VOC <difficult>1 */
    float score;     /* detection confidence */
};

/* One image and its ground truth. */
struct deft_det_sample {
    char *image;         /* path of the image file */
    char *label;         /* path of the label file it came from, NULL for background images */
    int width, height;   /* image size in pixels (0 when not probed) */
    int n_boxes;
    struct deft_box *boxes;
};

/* What reading a dataset found and did, so nothing changes results silently. */
struct deft_det_read_stats {
    int64_t boxes, images, background_images;
    int64_t clipped;          /* boxes that stuck out of the image and were clipped */
    int64_t dropped_small;    /* normalised w or h <= 1e-3, or x1 >= x2 / y1 >= y2 */
    int64_t unmapped;         /* boxes whose class is not in the mapping (skipped) */
    int64_t bad_lines;        /* malformed lines skipped (only with skip_bad_lines) */
    int64_t difficult;
};

/* A set of samples and the class list (sorted lower-case target names, TAO's order). */
struct deft_det_dataset {
    int n_classes;
    char **class_names;
    int n;
    struct deft_det_sample *samples;
    struct deft_det_read_stats stats;
};

DEFT_API void deft_det_dataset_free(struct deft_det_dataset *d);

#ifdef __cplusplus
}
#endif
#endif

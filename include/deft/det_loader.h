/* deft/det_loader.h - box-aware transforms (letterbox, TAO YOLOv4
 * augmentation: HSV, jitter, flips, mosaic, random input shape) and a
 * threaded, deterministic detection batch loader.
 *
 *     struct deft_det_loader_opts o;
 *     deft_det_loader_opts_defaults(&o);          // 416x416, eval mode, caffe BGR
 *     o.transform.train = true;                   // TAO augmentation on
 *     o.transform.aug.mosaic_prob = 0.5f; ...
 *     deft_det_loader_create(&o, &dataset, &l);
 *     for (epoch...) {
 *         deft_det_loader_start_epoch(l, epoch);
 *         struct deft_det_batch b;
 *         while (deft_det_loader_next(l, &b) == DEFT_OK && b.n > 0) {
 *             // b.images [n,3,b.h,b.w]; image i owns b.boxes[b.box_start[i] ..
 *             //   + b.n_boxes[i]), normalised to the network input
 *         }
 *     }
 *
 * Geometry. Every output is a canvas of the network size filled with the
 * preprocessing mean (0 after preprocessing) onto which one image (or four,
 * for mosaic) is pasted: a source window of the image (may reach outside it;
 * outside is padding) resampled into a destination rectangle of the canvas,
 * optionally mirrored. Boxes go through the same map, are clipped to the
 * visible part, and are dropped in training when their normalised w or h
 * is <= 1e-3 or (unless include_difficult) when difficult. A mask (uint8
 * class ids) follows the same map with nearest-neighbour sampling.
 *
 * Determinism: every draw is deft_rng_*(seed, stream, k) with the loader's
 * stream = (epoch, position, attempt), so batches do not depend on the
 * number of worker threads.
 */
#ifndef DEFT_DET_LOADER_H
#define DEFT_DET_LOADER_H

#include "deft/data.h"
#include "deft/detection.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- letterbox ------------------------------------------------------------ */

/* An img_w x img_h image resized (aspect kept) to content_w x content_h =
 * round(img * min(net_w / img_w, net_h / img_h)) and centred in net_w x
 * net_h at (off_x, off_y) = ((net_w - content_w) / 2, (net_h - content_h) / 2)
 * (integer division), the rest padded with the preprocessing mean.
 * Image pixel coordinates map to network pixels as net = img * scale + off
 * (scale_x = content_w / img_w, scale_y = content_h / img_h; equal up to
 * rounding). One letterbox everywhere: training (eval mode), evaluation,
 * inference, export. */
struct deft_letterbox {
    int net_w, net_h, img_w, img_h;
    int content_w, content_h;
    float scale_x, scale_y;
    float off_x, off_y;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_letterbox_make(int img_w, int img_h, int net_w, int net_h,
                                                            struct deft_letterbox *lb);
/* Box in image pixels -> network pixels (not clipped). */
DEFT_API void deft_letterbox_box_to_net(const struct deft_letterbox *lb, struct deft_box *b);
/* Box in network pixels -> image pixels, clipped to the image (detections). */
DEFT_API void deft_letterbox_box_to_image(const struct deft_letterbox *lb, struct deft_box *b);
/* {"type":"letterbox","align":"center","pad":"mean","resize":"bilinear",
 *  "net_w":..,"net_h":..[,"img_w":..,"img_h":..,"scale_x":..,"scale_y":..,
 *  "off_x":..,"off_y":..]} (per-image fields only when img_w > 0). Returns
 * the length snprintf would write (output truncated to n). */
DEFT_API int deft_letterbox_to_json(const struct deft_letterbox *lb, char *buf, size_t n);
/* Parse what deft_letterbox_to_json wrote (per-image fields optional; when
 * present the letterbox is recomputed from the sizes and must agree). */
DEFT_API DEFT_NODISCARD enum deft_status deft_letterbox_from_json(const char *json, struct deft_letterbox *lb);

/* ---- augmentation ---------------------------------------------------------- */

/* TAO's YOLOv4 augmentation_config. Defaults: everything off (factors 1). */
struct deft_det_augment {
    float hue;        /* hue shifted by U(-1,1) * hue * 180 degrees, hue in [0, 1] */
    float saturation; /* S scaled by f in [1/s, s] (f = 1 + U*(s-1), inverted with prob 1/2), s >= 1 */
    float exposure;   /* V scaled the same way */
    float jitter;     /* [0, 1): each side cropped (>0) or padded (<0) by U(-j, j) of the side,
                         window pushed toward the network aspect ratio, then resized */
    float hflip_prob, vflip_prob;
    float mosaic_prob;      /* chance of a 4-image mosaic */
    float mosaic_min_ratio; /* split point uniform in [r, 1 - r] of the size, 0 < r < 0.5 */
    int randomize_input_shape_period; /* N > 0: the input size is redrawn every N batches */
    bool include_difficult;           /* include_difficult_in_training */
};
DEFT_API void deft_det_augment_defaults(struct deft_det_augment *a);

struct deft_det_transform {
    int net_w, net_h;    /* base network input size, multiples of 32 for randomised shapes */
    bool train;          /* false: letterbox only, boxes kept (difficult flagged) */
    struct deft_det_augment aug;
    struct deft_preprocess pre; /* default DEFT_PREPROCESS_CAFFE: RGB->BGR, minus (103.939,116.779,123.68) */
    bool dct_scaling;    /* training: decode JPEGs at the smallest DCT scale that keeps the needed
                          * resolution; evaluation (train false) always decodes at full size, as a
                          * deployment does, so its mAP is the deployed one */
    struct deft_decode_opts decode; /* limits */
    uint8_t mask_pad;    /* mask value of padded pixels (default 255 = ignore) */
};
/* 416x416, eval, augmentation off, caffe preprocessing, DCT scaling on. */
DEFT_API void deft_det_transform_defaults(struct deft_det_transform *t);

/* One input of a (mosaic) sample: a decoded image, its boxes in image
 * pixels, optionally its mask (class ids, row major). When the image was
 * decoded smaller (JPEG DCT scaling), orig_w x orig_h is the size the boxes
 * and the mask refer to; 0 means img's own size. */
struct deft_det_input {
    const struct deft_image *img;
    const struct deft_box *boxes;
    int n_boxes;
    const uint8_t *mask;
    int orig_w, orig_h;
};

/* Does this sample become a mosaic? (train mode, draw < mosaic_prob) */
DEFT_API bool deft_det_wants_mosaic(const struct deft_det_transform *t, uint64_t seed, uint64_t stream);

/* Transform a sample into out (3*net_h*net_w floats, preprocessed) and its
 * boxes in network pixels (at most the sum of the inputs' n_boxes; capacity
 * max_boxes). n_in is 1, or 4 for a mosaic (in[0] top-left, then top-right,
 * bottom-left, bottom-right). Eval mode (t->train false) letterboxes in[0]
 * and *lb is that letterbox; in training *lb is the letterbox in[0] would
 * get (informational). mask_out (net_h*net_w) may be NULL. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_transform_apply(
    const struct deft_det_transform *t, const struct deft_det_input *in, int n_in, int net_w, int net_h,
    uint64_t seed, uint64_t stream, float *out, uint8_t *mask_out, struct deft_box *boxes_out, int max_boxes,
    int *n_boxes_out, struct deft_letterbox *lb);

/* HSV adjustment on a CHW RGB 0..255 image, in the convention of OpenCV's
 * float conversion (H in degrees, S in [0,1], V in 0..255): H += hue_deg
 * (mod 360), S *= sat and V *= val, each clipped to its range. */
DEFT_API void deft_det_adjust_hsv(float *chw, int h, int w, float hue_deg, float sat, float val);

/* Network input size for global batch index `batch` (epoch * batches per
 * epoch + batch in epoch): the base size when the period is 0, else every
 * `period` batches a factor is drawn (seed-keyed) and width/height become
 * multiples of 32 within [0.6, 1.5] x base (aspect kept, at least 32). */
DEFT_API void deft_det_input_size(const struct deft_det_transform *t, uint64_t seed, int64_t batch, int *w,
                                  int *h);
/* Largest size deft_det_input_size can return. */
DEFT_API void deft_det_max_input_size(const struct deft_det_transform *t, int *w, int *h);

/* ---- loader ---------------------------------------------------------------- */

struct deft_det_loader_opts {
    int batch_size;   /* > 0 */
    int num_threads;  /* >= 1 */
    int prefetch;     /* ring slots, 0 = 2*threads+1 */
    bool shuffle;     /* default: on in train mode, ignored (off) in eval mode */
    bool drop_last;   /* train mode only; eval always keeps the last partial batch */
    bool strict;      /* a corrupt image is an error instead of skipped */
    uint64_t seed;
    struct deft_det_transform transform;
    /* Data parallel (training, drop_last): this loader is rank `rank` of
     * `world` (0: one process). Local position q is global position
     * q * world + rank of an epoch cut to whole global batches of
     * batch_size * world, and every draw is keyed by the global position,
     * so the ranks' batch b together are batch b of one process with the
     * global batch. */
    int rank, world;
};
/* batch 8, 2 threads, shuffle, seed 0, deft_det_transform_defaults. */
DEFT_API void deft_det_loader_opts_defaults(struct deft_det_loader_opts *o);

/* A batch; arrays are owned by the loader and valid until the next call. */
struct deft_det_batch {
    int n;                /* images (0: the epoch is over) */
    int h, w;             /* network input size of this batch */
    int64_t batch;        /* index in the epoch */
    float *images;        /* [n,3,h,w] preprocessed */
    int *n_boxes;         /* [n] */
    int *box_start;       /* [n] offset of image i's boxes in boxes */
    int total_boxes;
    struct deft_box *boxes; /* x1 y1 x2 y2 in [0,1] of the network input, cls, difficult */
    struct deft_letterbox *lb; /* [n] (eval: the letterbox used; train: informational) */
    int *index;           /* [n] dataset sample (train mosaic: the top-left one) */
    bool *corrupt;        /* [n] eval only: unreadable image, canvas is padding and no boxes */
};

struct deft_det_loader;
/* ds must outlive the loader; sample images are read from ds->samples[i].image. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_loader_create(const struct deft_det_loader_opts *o,
                                                               const struct deft_det_dataset *ds,
                                                               struct deft_det_loader **out);
DEFT_API DEFT_NODISCARD enum deft_status deft_det_loader_start_epoch(struct deft_det_loader *l, int epoch);
DEFT_API DEFT_NODISCARD enum deft_status deft_det_loader_next(struct deft_det_loader *l,
                                                             struct deft_det_batch *b);
DEFT_API int deft_det_loader_num_batches(const struct deft_det_loader *l);
DEFT_API void deft_det_loader_get_stats(const struct deft_det_loader *l, struct deft_loader_stats *s);
DEFT_API void deft_det_loader_free(struct deft_det_loader *l);

#ifdef __cplusplus
}
#endif
#endif

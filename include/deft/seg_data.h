/* deft/seg_data.h - semantic segmentation data: image + mask pairs, masks as
 * class maps, and batches with the spatial augmentation applied to both.
 *
 *     struct deft_seg_dataset ds;
 *     deft_seg_dataset_open("isbi/images/train", "isbi/masks/train", &ds);   // pairs by stem
 *     struct deft_seg_label_map lm;
 *     deft_seg_label_map_init(&lm);  lm.class_of[0] = 0;  lm.class_of[1] = 1;   // label_id -> class
 *     struct deft_seg_loader_opts o = {.batch = 4, .width = 320, .height = 320, .channels = 1,
 *                                      .labels = &lm, .hflip = 0.5f, .seed = 42};
 *     deft_seg_loader_create(&o, &ds, &ld);
 *     deft_seg_loader_start_epoch(ld, epoch);
 *     while (!deft_seg_loader_next(ld, images, masks, &n) && n) ...  // images [n,C,H,W], masks [n,H,W]
 *
 * Masks: 8-bit PNG (or any image deft decodes; the first channel is the id), one value per
 * pixel, a label_id mapped through the label map to a class index, or to ignore_id. A value
 * the map does not know is an error naming the file and the value. Binary 0/255 masks (ISBI,
 * label map `binary`): a value >= 128 reads as id 1, else 0 (TAO's rule for grayscale sets).
 * Images: RGB, or gray (channels 1: the mean of R, G, B). Values: x / 127.5 - 1 (TAO's UNet
 * default), or x / 255 with zero_one.
 * Augmentation (training): horizontal / vertical flips, TAO's crop-and-resize (each side of the
 * box moves in by U(0, crop_ratio) of the image, independently; the box is resized back),
 * brightness (U(-delta, delta) added to the normalized image, TAO's random_brightness). The
 * image resizes with the filter of TAO's resize_method (deft's antialiased bilinear by default),
 * the mask by nearest neighbour from the same source box; resize_padding keeps the aspect ratio. Random draws
 * depend on (seed, epoch, sample) only, so a resumed run sees the same batches. */
#ifndef DEFT_SEG_DATA_H
#define DEFT_SEG_DATA_H

#include <stdint.h>
#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_seg_sample {
    char *image, *mask; /* mask NULL: an image without a mask (inference sets) */
};
struct deft_seg_dataset {
    int n;
    struct deft_seg_sample *samples; /* sorted by image name */
    int missing_masks;               /* images without a mask (skipped when masks were asked for) */
};
/* Images of images_dir (jpg, jpeg, png, bmp) paired by stem with masks_dir/<stem>.png (or the
 * same extension as the image); masks_dir NULL: images only. An image without a mask is
 * skipped and counted (a warning names the first); a mask without an image is ignored; no
 * pair at all is DEFT_ERR_INVALID_ARG naming both folders. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_dataset_open(const char *images_dir, const char *masks_dir,
                                                              struct deft_seg_dataset *out);
/* TAO's list-file sources, appended to d (zeroed first by the caller, or a dataset already
 * opened): image_list holds one image path a line, mask_list (NULL: images only) the masks in
 * the same order; relative paths are relative to the list's folder, blank lines and CRs are
 * ignored. A line count that differs, or a missing image or mask, is an error naming the list
 * and the line, unless filter (TAO's filter_data): such pairs are then skipped and counted in
 * d->missing_masks. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_dataset_add_lists(struct deft_seg_dataset *d, const char *image_list,
                                                                   const char *mask_list, bool filter);
DEFT_API void deft_seg_dataset_free(struct deft_seg_dataset *d);

#define DEFT_SEG_IGNORE (-1)
struct deft_seg_label_map {
    int16_t class_of[256]; /* label_id -> class index, DEFT_SEG_IGNORE (ignored pixel), or -2 unknown */
    int n_classes;
    bool binary;           /* 0/255 masks (TAO's grayscale experiments): a value >= 128 is id 1, else 0 */
};
/* Every id unknown (-2). */
DEFT_API void deft_seg_label_map_init(struct deft_seg_label_map *m);
/* A mask file as class indices (int32, w*h, deft_malloc'ed); *w, *h its size. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_mask_load(const char *path, const struct deft_seg_label_map *m,
                                                           int32_t **out, int *w, int *h);
/* The same on a file's bytes (`path` names it in messages; o: decode limits, may be NULL). */
struct deft_decode_opts;
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_mask_decode(const uint8_t *data, size_t size, const char *path,
                                                             const struct deft_decode_opts *o,
                                                             const struct deft_seg_label_map *m, int32_t **out,
                                                             int *w, int *h);

struct deft_seg_loader_opts {
    int batch, width, height, channels;  /* the network input */
    const struct deft_seg_label_map *labels;
    bool shuffle, drop_last;
    float hflip, vflip;                  /* probabilities */
    float crop_and_resize;               /* probability of a random crop resized back */
    float crop_ratio;                    /* each side moves in by up to this fraction (<= 0.5), 0 -> 0.1 */
    float brightness;                    /* +- delta in normalized units (TAO's brightness delta) */
    bool zero_one;                       /* values x / 255 instead of x / 127.5 - 1 */
    int filter;                          /* the image's enum deft_resample_filter (0: AUTO); masks: nearest */
    bool pad;                            /* TAO's resize_padding: keep the aspect ratio, centre, pad */
    uint64_t seed;
    int rank, world;                     /* data parallel (drop_last only): local position q reads
                                            global position q * world + rank (0: one process) */
};
/* Where a w x h image (or crop) lands in the network input: with o->pad, scaled to fit and
 * centred as TensorFlow's resize_with_pad places it (the rest is black image and ignored mask);
 * without, the whole input. */
struct deft_seg_place {
    int x, y, w, h;
};
DEFT_API struct deft_seg_place deft_seg_place_of(const struct deft_seg_loader_opts *o, double w, double h);
struct deft_seg_loader;
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_loader_create(const struct deft_seg_loader_opts *o,
                                                               const struct deft_seg_dataset *ds,
                                                               struct deft_seg_loader **out);
DEFT_API void deft_seg_loader_free(struct deft_seg_loader *l);
DEFT_API int deft_seg_loader_num_batches(const struct deft_seg_loader *l);
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_loader_start_epoch(struct deft_seg_loader *l, int epoch);
/* The next batch: images [n, C, H, W] (x / 127.5 - 1), masks [n, H, W] class indices or
 * DEFT_SEG_IGNORE; index[i] (may be NULL) the dataset index of each. *n = 0 at the end. A
 * corrupt image or mask, or a mask of another size than its image, is an error naming the file. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_loader_next(struct deft_seg_loader *l, float *images,
                                                             int32_t *masks, int *index, int *n);
/* One image (and its mask, when mask is not NULL) as the validation transform gives it. */
DEFT_API DEFT_NODISCARD enum deft_status deft_seg_load_pair(const struct deft_seg_loader_opts *o,
                                                           const struct deft_seg_sample *s, float *image,
                                                           int32_t *mask);

#ifdef __cplusplus
}
#endif
#endif

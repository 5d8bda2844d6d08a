/* deft/data.h - image decode, class-folder datasets, preprocessing,
 * augmentation and a threaded prefetching loader.
 *
 * Pipeline for one sample (deft_transform_*):
 *   bytes -> decode (JPEG with DCT scaling / PNG / BMP) -> RGB8 HWC
 *         -> grey (PIL's 'L') when the model takes one channel
 *         -> crop box (random resized crop, TAO random crop, TAO center crop
 *            or plain resize) -> bilinear resample into float CHW, 0..255
 *         -> flips -> rotation -> color jitter -> preprocess (caffe/torch/tf/...)
 * Batches (deft_loader_*) add the epoch shuffle and mixup.
 *
 * Determinism: every random draw comes from deft_rng_* keyed by (seed, epoch,
 * position of the sample in the epoch), so a batch is a pure function of
 * (seed, epoch, batch index) whatever the number of worker threads, and
 * restarting at epoch k reproduces epoch k exactly.
 */
#ifndef DEFT_DATA_H
#define DEFT_DATA_H

#include "deft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- images --------------------------------------------------------------- */

/* An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC). */
struct deft_image {
    int w, h;
    uint8_t *rgb; /* w*h*3 bytes, deft_malloc'ed; free with deft_image_free */
};

enum deft_image_format { DEFT_IMAGE_UNKNOWN = 0, DEFT_IMAGE_JPEG, DEFT_IMAGE_PNG, DEFT_IMAGE_BMP };

#define DEFT_IMAGE_MAX_SIDE 16384
#define DEFT_IMAGE_MAX_PIXELS 100000000LL

/* Decode options; a zeroed struct (or NULL) means full size and default limits. */
struct deft_decode_opts {
    /* Size hint: "I need at least min_w x min_h". JPEGs are then decoded with
     * libjpeg DCT scaling at the smallest scale n/8 (n = 1..8) whose output is
     * at least min_w wide and min_h high (never upscaled). 0 = no constraint on
     * that axis; both 0 = full size. Other formats ignore the hint. */
    int min_w, min_h;
    /* Limits on the dimensions the file declares, checked before any pixel
     * buffer is allocated (decompression-bomb guard). 0 = default
     * (DEFT_IMAGE_MAX_SIDE per side, DEFT_IMAGE_MAX_PIXELS in all, or the
     * environment's DEFT_MAX_IMAGE_SIDE / DEFT_MAX_IMAGE_PIXELS). */
    int max_w, max_h;
    int64_t max_pixels;
};

/* Format from the first bytes (magic), never from a file name. */
DEFT_API enum deft_image_format deft_image_detect(const uint8_t *data, size_t n);
DEFT_API const char *deft_image_format_name(enum deft_image_format f); /* "jpeg" ... */

/* Read the declared size (full resolution) without decoding pixels. */
DEFT_API DEFT_NODISCARD enum deft_status deft_image_probe(const uint8_t *data, size_t n,
                                                         enum deft_image_format *fmt,
                                                         int *w, int *h);

/* Decode JPEG (baseline/progressive, gray/YCbCr/CMYK), PNG (any bit depth,
 * gray/palette/RGB, alpha dropped, 16-bit keeps the high byte, interlaced) or
 * BMP (uncompressed 8/24/32-bit) into RGB8. Corrupt, truncated or oversized
 * input gives DEFT_ERR_FORMAT (DEFT_ERR_UNSUPPORTED for valid but unsupported
 * variants, DEFT_ERR_INVALID_ARG for exceeded limits) and leaves *out empty. */
DEFT_API DEFT_NODISCARD enum deft_status deft_image_decode(const uint8_t *data, size_t n,
                                                          const struct deft_decode_opts *o,
                                                          struct deft_image *out);
/* Read a whole file (at most 512 MiB) and decode it; errors name the path. */
DEFT_API DEFT_NODISCARD enum deft_status deft_image_load(const char *path,
                                                        const struct deft_decode_opts *o,
                                                        struct deft_image *out);
/* Read a file into a deft_malloc'ed buffer (used by the loader). */
DEFT_API DEFT_NODISCARD enum deft_status deft_read_file(const char *path, size_t max_bytes,
                                                       uint8_t **data, size_t *n);
DEFT_API void deft_image_free(struct deft_image *img);
/* In place, every pixel to its grey level in all three channels, as PIL's
 * convert('L') computes it (ITU-R 601 luma, L = R*299/1000 + G*587/1000 +
 * B*114/1000, in PIL's 16-bit fixed point with rounding). */
DEFT_API void deft_image_to_gray(struct deft_image *img);

/* Resampling of a source box into a float CHW (RGB, values 0..255) output.
 * Output pixel (ox, oy) samples source x = x + (ox + 0.5) * w / out_w - 0.5
 * (half-pixel centers, PyTorch align_corners=False). The filter, per axis:
 *  AUTO      when the box shrinks by more than 2x an antialiased triangle of width
 *            = the scale (PyTorch antialias=True / PIL), else plain 2-tap bilinear
 *            (F.interpolate antialias=False);
 *  BILINEAR  always 2-tap bilinear (TensorFlow's resize, F.interpolate antialias=False);
 *  NEAREST   the source pixel under the output pixel's centre (PyTorch nearest-exact);
 *  BICUBIC   4-tap Keys cubic, a = -0.75 (PyTorch bicubic, TensorFlow 1's resize_bicubic);
 *  AREA      each output pixel the mean of the source area it covers, fractional pixels
 *            weighted by their overlap (OpenCV INTER_AREA when shrinking).
 * Taps are clamped to the box (clamp_to_box, like cropping first as torchvision does) or
 * to the image. */
enum deft_resample_filter {
    DEFT_RESAMPLE_AUTO = 0,
    DEFT_RESAMPLE_BILINEAR,
    DEFT_RESAMPLE_NEAREST,
    DEFT_RESAMPLE_BICUBIC,
    DEFT_RESAMPLE_AREA
};
struct deft_resample {
    float x, y, w, h; /* source box in pixels (may be fractional) */
    bool clamp_to_box;
    enum deft_resample_filter filter; /* 0: AUTO */
};
DEFT_API DEFT_NODISCARD enum deft_status deft_image_resample_chw(const struct deft_image *img,
                                                                const struct deft_resample *r,
                                                                int out_w, int out_h,
                                                                float *out);
/* Whole image to out_w x out_h (aspect not kept). */
DEFT_API DEFT_NODISCARD enum deft_status deft_image_resize_chw(const struct deft_image *img,
                                                              int out_w, int out_h, float *out);

/* ---- preprocessing (values in, in place) ---------------------------------- */

enum deft_preprocess_mode {
    /* TAO makenet "caffe": RGB->BGR, 0..255, subtract BGR mean
     * [103.939, 116.779, 123.68], no scaling. */
    DEFT_PREPROCESS_CAFFE = 0,
    /* TAO makenet "torch": x/255, mean [0.485, 0.456, 0.406], std
     * [0.224, 0.224, 0.224] (TAO's own std, see tao.md 4.1). */
    DEFT_PREPROCESS_TORCH,
    /* TAO makenet "tf": x/127.5 - 1. */
    DEFT_PREPROCESS_TF,
    /* torchvision / TAO PyTorch classification: x/255, mean [0.485, 0.456,
     * 0.406], std [0.229, 0.224, 0.225]. */
    DEFT_PREPROCESS_TORCHVISION,
    /* Whatever is in the struct. */
    DEFT_PREPROCESS_CUSTOM,
};

/* out[c] = (in[src(c)] / divisor - mean[c]) / std[c], where src(c) reverses
 * the channels when bgr is set; mean/std are in OUTPUT channel order.
 * channels 1 (grey input): the image is made grey as PIL's convert('L') does
 * (deft_image_to_gray) before anything else, and the network takes one plane,
 * normalized with mean[0] and std[0]. 0 or 3: three planes (RGB or BGR). */
struct deft_preprocess {
    enum deft_preprocess_mode mode;
    bool bgr;
    float divisor;
    float mean[3], std[3];
    int channels;
};
DEFT_API void deft_preprocess_init(struct deft_preprocess *p, enum deft_preprocess_mode mode);
/* One grey channel with the mode's grey constants: caffe mean 117.3786 and
 * torch 0.449 / std 0.224 (TAO makenet's, tao.md 4.1); torchvision the mean
 * of its three means and stds (0.449 / 0.226); tf unchanged; custom keeps
 * mean[0] and std[0]. */
DEFT_API void deft_preprocess_set_gray(struct deft_preprocess *p);
/* Planes of the network input: 1 or 3. */
DEFT_API int deft_preprocess_channels(const struct deft_preprocess *p);
/* "caffe", "torch", "tf", "torchvision" (case-insensitive). */
DEFT_API DEFT_NODISCARD enum deft_status deft_preprocess_parse(const char *name,
                                                              enum deft_preprocess_mode *mode);
/* In place on a CHW RGB 0..255 image of h*w pixels; with channels 1, on its
 * first plane only (the grey one). */
DEFT_API void deft_preprocess_apply(const struct deft_preprocess *p, float *chw, int h, int w);

/* ---- augmentation --------------------------------------------------------- */

enum deft_crop_mode {
    DEFT_CROP_NONE = 0,        /* use the transform's resize policy */
    DEFT_CROP_RANDOM_RESIZED,  /* torchvision RandomResizedCrop (10 tries, then center fallback) */
    DEFT_CROP_TAO_RANDOM,      /* TAO makenet "bilinear:random": cover (W,H)/U(0.45,1), random window */
};

struct deft_augment {
    enum deft_crop_mode crop;
    float scale_min, scale_max; /* RandomResizedCrop area range, default 0.08..1 */
    float ratio_min, ratio_max; /* aspect range w/h, default 3/4..4/3 */
    float hflip_prob, vflip_prob;
    float rotate_prob;          /* probability of a rotation */
    float rotate_deg;           /* angle ~ U(-deg, deg), counter-clockwise, bilinear, fill 0 */
    /* ColorJitter (torchvision semantics, on 0..255 floats without rounding):
     * brightness b: factor U(max(0,1-b), 1+b), x*f; contrast c: blend with the
     * mean gray level; saturation s: blend with per-pixel gray
     * (0.2989/0.587/0.114); hue h in [0,0.5]: HSV hue shift U(-h,h) turns.
     * Results clamp to 0..255 after each step. The four are applied in a
     * random order (like torchvision), or b,c,s,h when jitter_fixed_order. */
    float brightness, contrast, saturation, hue;
    bool jitter_fixed_order;
};
/* Defaults: no crop, RRC ranges set, everything else off. */
DEFT_API void deft_augment_defaults(struct deft_augment *a);

enum deft_resize_policy {
    DEFT_RESIZE_PLAIN = 0,   /* squash the whole image to out_w x out_h */
    /* TAO makenet "bilinear:center": scale (aspect kept) to cover
     * (out_w + crop_padding) x (out_h + crop_padding), then center crop
     * out_w x out_h. Padding 32 at 224 is the classic 0.875 crop. */
    DEFT_RESIZE_CENTER_CROP,
};

struct deft_transform {
    int out_w, out_h;
    enum deft_resize_policy resize; /* when aug.crop == DEFT_CROP_NONE */
    int crop_padding;               /* default 32 */
    bool dct_scaling;               /* decode JPEGs at reduced scale when enough */
    struct deft_augment aug;
    struct deft_preprocess pre;
    struct deft_decode_opts decode; /* limits (min_w/min_h are set internally) */
};
/* Defaults: 224x224, plain resize, padding 32, DCT scaling on, no augmentation, caffe. */
DEFT_API void deft_transform_defaults(struct deft_transform *t);

/* Transform one decoded image into out (C*out_h*out_w floats, C =
 * deft_preprocess_channels(&t->pre)). Random draws use
 * deft_rng_*(seed, stream, k); the loader derives stream from (epoch, position). */
DEFT_API DEFT_NODISCARD enum deft_status deft_transform_apply(const struct deft_transform *t,
                                                             const struct deft_image *img,
                                                             uint64_t seed, uint64_t stream,
                                                             float *out);
/* Probe, pick the crop from the full-resolution size, decode with the DCT
 * hint that crop allows, then transform: same result (up to DCT scaling) as
 * decode + deft_transform_apply with the same (seed, stream). */
DEFT_API DEFT_NODISCARD enum deft_status deft_transform_bytes(const struct deft_transform *t,
                                                             const uint8_t *data, size_t n,
                                                             uint64_t seed, uint64_t stream,
                                                             float *out);

/* Individual steps on a CHW 0..255 float image (exposed for tests/tools). */
DEFT_API void deft_augment_hflip(float *chw, int h, int w);
DEFT_API void deft_augment_vflip(float *chw, int h, int w);
/* Rotate by deg counter-clockwise about the center; scratch: 3*h*w floats. */
DEFT_API void deft_augment_rotate(float *chw, int h, int w, float deg, float *scratch);
DEFT_API void deft_adjust_brightness(float *chw, int h, int w, float f);
DEFT_API void deft_adjust_contrast(float *chw, int h, int w, float f);
DEFT_API void deft_adjust_saturation(float *chw, int h, int w, float f);
DEFT_API void deft_adjust_hue(float *chw, int h, int w, float shift); /* shift in turns, [-0.5,0.5] */
/* RandomResizedCrop box (x, y, w, h in pixels) for an img_w x img_h image. */
DEFT_API void deft_random_resized_crop_box(int img_w, int img_h, const struct deft_augment *a,
                                           uint64_t seed, uint64_t stream, int box[4]);
/* Sample Beta(a, b) (a, b > 0) from counter-based draws (seed, stream, k...). */
DEFT_API double deft_rng_beta(uint64_t seed, uint64_t stream, double a, double b);

/* ---- class-folder datasets ------------------------------------------------ */

/* <root>/<class>/<image files> (TAO / Keras flow_from_directory layout).
 * Samples are sorted by (class index, relative path); images are files ending
 * in .jpg/.jpeg/.png/.bmp (any case), found recursively; hidden entries and
 * other files are ignored. */
struct deft_dataset {
    char *root;
    int num_classes;
    char **classes;   /* class index -> name */
    int num_samples;
    char **paths;     /* full paths */
    int *labels;      /* class index per sample */
};

/* classes == NULL: sorted folder names. Otherwise exactly these folders in
 * this order (folders not listed are ignored with a warning).
 * DEFT_ERR_INVALID_ARG for a missing root, no classes, a missing or empty
 * class folder, duplicate class names. */
DEFT_API DEFT_NODISCARD enum deft_status deft_dataset_open(const char *root,
                                                          const char *const *classes,
                                                          int num_classes,
                                                          struct deft_dataset **out);
/* classes.txt: one name per line (index = line), blank lines and
 * surrounding whitespace ignored; *names is an array of num strings, free
 * with deft_string_list_free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_read_class_list(const char *path, char ***names,
                                                             int *num);
/* The same on text in memory (len bytes, no NUL needed); `name` is used in
 * messages. At most DEFT_MAX_CLASSES names; a NUL byte is refused. */
#define DEFT_MAX_CLASSES 100000
DEFT_API DEFT_NODISCARD enum deft_status deft_class_list_parse(const char *text, size_t len,
                                                              const char *name, char ***names,
                                                              int *num);
DEFT_API void deft_string_list_free(char **list, int n);
DEFT_API void deft_dataset_free(struct deft_dataset *ds);
/* DEFT_ERR_INVALID_ARG, naming the classes that differ, unless a and b have
 * the same classes in the same order. */
DEFT_API DEFT_NODISCARD enum deft_status deft_dataset_check_classes(const struct deft_dataset *a,
                                                                   const char *a_name,
                                                                   const struct deft_dataset *b,
                                                                   const char *b_name);

/* ---- loader --------------------------------------------------------------- */

struct deft_loader_opts {
    int batch_size;           /* > 0 */
    int num_threads;          /* worker threads, >= 1 */
    int prefetch;             /* batch slots in the ring (>= 1), default 2*threads+1 when 0 */
    bool shuffle;             /* permutation from (seed, epoch) */
    bool drop_last;           /* drop a final partial batch */
    bool strict;              /* a corrupt image is an error instead of skipped */
    bool one_hot;             /* labels as [B, C] even without mixup */
    uint64_t seed;
    float mixup_alpha;        /* > 0: TAO mixup, labels become [B, C] soft */
    struct deft_transform transform;
    /* Data parallel (distributed sampler): world > 1 ranks share each epoch's
     * order (the same (seed, epoch) shuffle) without overlap: this rank takes
     * positions rank, rank+world, ... so global batch b of world x batch_size
     * is the union of every rank's batch b, and each sample is augmented as
     * at its global position (the batches of 1 process x world*batch_size).
     * drop_last drops the last partial global batch on every rank. Mixup
     * pairs items within the rank's batch. 0 / 0: one process. */
    int rank, world;
};
/* batch 32, 2 threads, shuffle on, seed 0, deft_transform_defaults. */
DEFT_API void deft_loader_opts_defaults(struct deft_loader_opts *o);

struct deft_loader_stats {
    int64_t images_loaded;    /* samples decoded successfully */
    int64_t corrupt_skipped;  /* corrupt/unreadable images replaced */
    int64_t batches;          /* batches handed out */
    double worker_seconds;    /* summed over workers: read + decode + augment */
    double wait_seconds;      /* consumer time blocked in deft_loader_next */
};

/* One consumer thread drives a loader (create/start_epoch/next/free); the
 * workers are internal. */
struct deft_loader;
/* The loader keeps a pointer to ds: it must outlive the loader. */
DEFT_API DEFT_NODISCARD enum deft_status deft_loader_create(const struct deft_loader_opts *o,
                                                           const struct deft_dataset *ds,
                                                           struct deft_loader **out);
/* Begin epoch `epoch` (any order; restarting k reproduces k). Abandons the
 * batches of the current epoch. deft_loader_next starts epoch 0 by itself
 * when no epoch was started. */
DEFT_API DEFT_NODISCARD enum deft_status deft_loader_start_epoch(struct deft_loader *l, int epoch);
/* Next batch of the epoch into images [B,3,H,W] ([B,1,H,W] for a grey
 * transform) and labels ([B] class ids as floats, or [B,C] when mixup or
 * one_hot). *n_in_batch = samples written (the last batch may be short
 * unless drop_last); 0 means the epoch is over.
 * Errors: strict mode corrupt image, or too many corrupt images in a row. */
DEFT_API DEFT_NODISCARD enum deft_status deft_loader_next(struct deft_loader *l, float *images,
                                                         float *labels, int *n_in_batch);
DEFT_API int deft_loader_num_batches(const struct deft_loader *l);
DEFT_API bool deft_loader_soft_labels(const struct deft_loader *l);
DEFT_API void deft_loader_get_stats(const struct deft_loader *l, struct deft_loader_stats *s);
DEFT_API void deft_loader_free(struct deft_loader *l);

#ifdef __cplusplus
}
#endif
#endif

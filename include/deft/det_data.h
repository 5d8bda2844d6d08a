/* deft/det_data.h - detection datasets: KITTI, COCO JSON and Pascal VOC XML
 * readers, writers (conversion between the three, KITTI predictions) and a
 * validator. The types they fill are in deft/detection.h.
 *
 *     struct deft_det_read_opts o;
 *     deft_det_read_opts_init(&o);
 *     struct deft_det_class_map map[] = {{"car", "vehicle"}, {"van", "vehicle"}};
 *     o.mapping = map; o.n_mapping = 2;            // TAO's target_class_mapping
 *     struct deft_det_source src = {DEFT_DET_KITTI, "data/images", "data/labels", NULL};
 *     struct deft_det_dataset ds;
 *     if (deft_det_read(&src, 1, &o, &ds)) puts(deft_last_error());  // "labels/000012.txt:3: ..."
 *     ... ds.samples[i].boxes ... ds.stats.clipped ...
 *     deft_det_dataset_free(&ds);
 *
 * Reading applies TAO's rules (../shared/reference/detection.md §1) in this
 * order, each counted in ds.stats so nothing changes results silently:
 *   1. class names are lower-cased and mapped through the mapping (source
 *      names compared case-insensitively; several sources may share a
 *      target); a class not in the mapping is skipped, counted (unmapped)
 *      and reported in one warning; the class list is the sorted lower-cased
 *      target names (no mapping: the sorted lower-cased names found);
 *   2. a box with int(x1) >= int(x2) or int(y1) >= int(y2) is dropped
 *      (dropped_small);
 *   3. a box sticking out of the image is clipped to [0, W] x [0, H] (clipped);
 *   4. a box whose w/W or h/H is <= 1e-3 after clipping is dropped
 *      (dropped_small);
 *   5. difficult = KITTI occluded != 0, VOC <difficult> != 0, COCO iscrowd;
 *      difficult boxes are always kept, flagged (the trainer filters them
 *      unless include_difficult_in_training).
 * Steps 3-4 need the image size: probed from the image header (no decoding)
 * for KITTI, declared in the file for VOC and COCO (probed when absent).
 * opts.raw skips steps 1-4 (names as written, boxes untouched): what the
 * converter uses so that a round trip is exact.
 *
 * Sources: an image directory and a label location (KITTI: a directory of
 * <stem>.txt; VOC: a directory of <stem>.xml; COCO: the JSON file), and an
 * optional split list (one image stem per line, as the .txt files of VOC's ImageSets/Main)
 * selecting images. Several sources are appended into one dataset. For KITTI
 * and VOC the samples are the images of the image directory (or the stems of
 * the list), sorted by name; an image without a label file is a background
 * image (no boxes). Without an image directory the label files are the
 * samples. COCO's samples are its "images" in file order.
 *
 * Errors: a malformed label line/record stops reading with
 * "file:line: what is wrong" and DEFT_ERR_FORMAT, unless skip_bad_lines (then
 * it is skipped and counted in stats.bad_lines; a VOC file that is not
 * well-formed XML counts as one bad line and gives no boxes). COCO has no
 * line numbers through cJSON: its messages name the record
 * ("annotations[12]"). A list file naming a missing image gives
 * DEFT_ERR_NOT_FOUND with list:line. include_difficult is not used by the
 * reader: difficult boxes are kept, flagged, either way.
 */
#ifndef DEFT_DET_DATA_H
#define DEFT_DET_DATA_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/detection.h"

#ifdef __cplusplus
extern "C" {
#endif

enum deft_det_format { DEFT_DET_KITTI = 0, DEFT_DET_COCO, DEFT_DET_VOC, DEFT_DET_FORMAT_COUNT };

/* "kitti", "coco", "voc" (case-insensitive) -> format; DEFT_ERR_INVALID_ARG otherwise. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_format_parse(const char *name,
                                                              enum deft_det_format *out);
DEFT_API const char *deft_det_format_name(enum deft_det_format f);

/* One target_class_mapping entry: boxes named `source` become class `target`. */
struct deft_det_class_map {
    const char *source;
    const char *target;
};

struct deft_det_read_opts {
    const struct deft_det_class_map *mapping; /* NULL / 0: every class found, lower-cased */
    int n_mapping;
    bool include_difficult; /* recorded for the trainer; difficult boxes are kept either way */
    bool skip_bad_lines;    /* skip and count malformed lines instead of failing */
    bool with_score;        /* KITTI predictions: a 16th field holds the score (required) */
    bool raw;               /* no rules: names as written, boxes untouched (conversion) */
    bool probe_sizes;       /* read image sizes from image headers (default true) */
    const char *image_extension; /* "jpg" or ".png"; NULL: jpg, jpeg, png, bmp (any case) */
};
DEFT_API void deft_det_read_opts_init(struct deft_det_read_opts *o);

struct deft_det_source {
    enum deft_det_format format;
    const char *images; /* image directory, or NULL */
    const char *labels; /* KITTI/VOC: label directory; COCO: the .json file */
    const char *split;  /* list file of image stems, or NULL */
};

/* Read and append n sources into *out (zeroed first; free with
 * deft_det_dataset_free, also after a failure). Class indices refer to the
 * one class list of the whole dataset. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_read(const struct deft_det_source *src, int n,
                                                      const struct deft_det_read_opts *o,
                                                      struct deft_det_dataset *out);

/* Parse one file held in memory (`name` is used in messages and as the
 * label path): KITTI and VOC give one sample, COCO one per image. The KITTI
 * sample's size is unknown (0), so steps 3-4 are skipped for it. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_parse(enum deft_det_format f, const char *text,
                                                       size_t len, const char *name,
                                                       const struct deft_det_read_opts *o,
                                                       struct deft_det_dataset *out);

/* ---- writers -------------------------------------------------------------- */

/* Write a dataset:
 *   KITTI: dst is a directory (created); <stem>.txt per sample (an empty file
 *          for a background image), 15 fields, occluded = difficult ? 1 : 0;
 *   COCO:  dst is the .json file; image ids 1..n in sample order, category ids
 *          1..C in class order, bbox [x, y, w, h], iscrowd = difficult;
 *   VOC:   dst is a directory (created); <stem>.xml per sample.
 * Numbers are written with as few digits as read back to the same float, so
 * KITTI -> COCO -> VOC -> KITTI is exact. COCO and VOC need image sizes:
 * a sample with width or height 0 is an error naming it. Files are written
 * atomically (temporary file + rename). */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_write(enum deft_det_format f,
                                                       const struct deft_det_dataset *d,
                                                       const char *dst);

/* One KITTI prediction file: each box as a 16-field line with its score last
 * (TAO's inference output). class_names[box.cls] names each box. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_write_kitti_predictions(
    const char *path, const struct deft_box *boxes, int n, const char *const *class_names,
    int n_classes);

/* Stem of a sample (image file name, else label file name, without directory
 * and extension) into buf; returns buf. */
DEFT_API const char *deft_det_sample_stem(const struct deft_det_sample *s, char *buf, size_t cap);

/* ---- validation ----------------------------------------------------------- */

enum deft_det_severity { DEFT_DET_NOTE = 0, DEFT_DET_WARNING, DEFT_DET_ERROR };

/* One problem, where it is ("labels/x.txt", line 3; line 0 = the whole file). */
struct deft_det_finding {
    enum deft_det_severity severity;
    const char *kind; /* "malformed", "zero_area", "outside_image", "tao_drops", "case_clash",
                         "label_without_image", "image_without_label", "size_mismatch",
                         "unknown_image", "unknown_category", "unreadable_image" */
    char *file;
    int line;
    char *message;
};

#define DEFT_DET_SIZE_BINS 10
/* Box size histogram bins over sqrt(w*h) in pixels: [0,4) [4,8) ... [1024,inf). */
struct deft_det_class_count {
    char *name;   /* as written in the labels (case kept) */
    int64_t boxes, difficult;
    int64_t size_hist[DEFT_DET_SIZE_BINS];
};

struct deft_det_report {
    enum deft_det_format format;
    char *labels, *images; /* what was checked (images NULL when unknown) */
    int64_t n_images, n_label_files, n_boxes;
    int64_t coco_small, coco_medium, coco_large; /* area < 32^2, < 96^2, else */
    int n_classes;
    struct deft_det_class_count *classes; /* sorted by name */
    int n_findings;
    struct deft_det_finding *findings;
    int64_t by_severity[3];
};

/* Check a dataset without applying any rule (every line is looked at as
 * written). Reading problems become findings, not errors; only an
 * unreadable source (missing directory, unparsable JSON/XML file as a
 * whole for COCO) fails. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_validate(const struct deft_det_source *src,
                                                          struct deft_det_report **out);
DEFT_API void deft_det_report_free(struct deft_det_report *r);
/* Human-readable summary and the findings (at most max_findings; <0 = all). */
DEFT_API void deft_det_report_print(const struct deft_det_report *r, FILE *f, int max_findings);
/* The report as JSON (atomic write). */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_report_write_json(const struct deft_det_report *r,
                                                                   const char *path);
/* Box size histogram plot, one line per class: <path>.svg and <path>.png. */
DEFT_API DEFT_NODISCARD enum deft_status deft_det_report_plot(const struct deft_det_report *r,
                                                             const char *path);

#ifdef __cplusplus
}
#endif
#endif

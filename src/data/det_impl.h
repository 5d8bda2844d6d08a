/* det_impl.h (internal to src/data) - the raw records the detection readers
 * produce before TAO's rules are applied (det_dataset.c) or the validator
 * looks at them (det_validate.c): names as written, boxes as written, the
 * line each came from. */
#ifndef DEFT_DET_IMPL_H
#define DEFT_DET_IMPL_H

#include <stdarg.h>
#include "deft/det_data.h"

struct det_rbox {
    char *name;
    double x1, y1, x2, y2;
    bool difficult;
    float score;
    int line; /* 1-based line in the label file; COCO: annotation index + 1 */
};

struct det_rimage {
    char *stem;        /* sort key and output file name */
    char *image;       /* image path, or NULL */
    char *label;       /* label path, or NULL (background image) */
    int width, height; /* 0 when unknown */
    int size_line;     /* VOC: line of <size> */
    int n, cap;
    struct det_rbox *boxes;
};

struct det_raw {
    int n, cap;
    struct det_rimage *img;
    int64_t bad_lines;
    bool skip_bad;
    bool with_score;
    struct deft_det_report *rep; /* validation: malformed input becomes findings */
};

/* ---- raw records (det_common.c) ---- */
struct det_rimage *det_raw_add(struct det_raw *r);
enum deft_status det_rimage_add_box(struct det_rimage *im, const char *name, size_t name_len,
                                    const double xyxy[4], bool difficult, float score, int line);
void det_rimage_release(struct det_rimage *im);
void det_raw_free(struct det_raw *r);
/* Malformed input at file:line. Reading: DEFT_ERR_FORMAT "file:line: msg"
 * (or, with skip_bad, counted and DEFT_OK); validating: a finding and DEFT_OK. */
enum deft_status det_bad(struct det_raw *r, const char *file, int line, const char *fmt, ...)
    DEFT_PRINTF(4, 5);
enum deft_status det_finding(struct deft_det_report *rep, enum deft_det_severity sev,
                             const char *kind, const char *file, int line, const char *fmt, ...)
    DEFT_PRINTF(6, 7);

/* ---- small helpers (det_common.c) ---- */
char *det_join(const char *dir, const char *name);
char *det_stem(const char *path); /* basename without the last extension */
bool det_is_file(const char *path);
bool det_is_dir(const char *path);
/* Files in dir (sorted names) whose name ends with suffix (case-insensitive),
 * or, with suffix NULL, that are images (ext: the image_extension option). */
enum deft_status det_list(const char *dir, const char *suffix, const char *ext, char ***names,
                          int *n);
bool det_is_image_name(const char *name, const char *ext);
/* dir/stem.<ext> that exists (ext NULL: jpg jpeg png bmp in both cases), or NULL. */
char *det_find_image(const char *dir, const char *stem, const char *ext);
/* Stems of a list file, one per line (blank lines and '#' comments skipped);
 * lines[i] is the line number of stems[i]. */
enum deft_status det_read_split(const char *path, char ***stems, int **lines, int *n);
/* Image size from its header; false (no error set) when unreadable. */
bool det_probe(const char *path, int *w, int *h);
/* Shortest decimal text that reads back (strtof) as v; kitti_style tries
 * "%.2f" first (KITTI's usual look). */
void det_fmt_float(char *buf, size_t cap, float v, bool kitti_style);
enum deft_status det_mkdirs(const char *dir);
/* The directory path is in (created when missing). */
enum deft_status det_mkdirs_for(const char *path);
int det_cmp_str(const void *a, const void *b);
void det_free_strings(char **v, int n);

/* ---- format parsers: append to r ---- */
enum deft_status det_kitti_parse(struct det_raw *r, struct det_rimage *im, const char *text,
                                 size_t len, const char *path);
/* keep(stem, user) selects images (NULL: all). */
enum deft_status det_coco_parse(struct det_raw *r, const char *text, size_t len, const char *path,
                                const char *images_dir, bool (*keep)(const char *, void *),
                                void *user);
enum deft_status det_voc_parse(struct det_raw *r, struct det_rimage *im, const char *text,
                               size_t len, const char *path);

/* ---- writers ---- */
enum deft_status det_kitti_write(const struct deft_det_dataset *d, const char *dir);
enum deft_status det_coco_write(const struct deft_det_dataset *d, const char *path);
enum deft_status det_voc_write(const struct deft_det_dataset *d, const char *dir);

/* ---- reading a source into raw records (det_dataset.c) ---- */
/* Read and parse im->label (KITTI or VOC). */
enum deft_status det_parse_label_file(struct det_raw *r, struct det_rimage *im,
                                      enum deft_det_format f);
enum deft_status det_read_source(const struct deft_det_source *s, const struct deft_det_read_opts *o,
                                 struct det_raw *r);

#endif

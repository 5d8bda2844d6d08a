/* export_files.h (internal) - the files one export writes, so a failure
 * part-way removes those already written (an export leaves all its files or
 * none), and the path helpers the exports share. */
#ifndef DEFT_TASKS_EXPORT_FILES_H
#define DEFT_TASKS_EXPORT_FILES_H

#include <stddef.h>
#include "deft/data.h"

#define EXPORT_FILES_MAX 8

struct export_files {
    char path[EXPORT_FILES_MAX][4200];
    int n;
};

/* Record a file just written. */
void export_files_add(struct export_files *w, const char *path);
/* Remove every recorded file (after a failure). */
void export_files_remove_all(struct export_files *w);
/* Directory of path with a trailing '/' ("" for a bare file name). */
void export_dir_of(const char *path, char *out, size_t n);
/* The file name part of path. */
const char *export_base_of(const char *path);

/* deft's preprocessing (x / divisor - mean) / std as DeepStream nvinfer's
 * y = net-scale-factor * (x - offsets[c]): offsets = mean * divisor, scale =
 * 1 / (divisor * std), std averaged when the channels differ (nvinfer has one
 * scale factor; std_note says so in the config's comment). */
struct ds_preprocess {
    double scale, offsets[3];
    char offsets_text[96]; /* the offsets= value: three, or one for a grey model */
    int channels;          /* 3, or 1 for a grey model */
    int color_format;      /* model-color-format: 0 RGB, 1 BGR, 2 GRAY */
    const char *color;     /* "RGB" / "BGR" / "GRAY" */
    const char *std_note;  /* "" or the averaging note */
};
void ds_preprocess_from(const struct deft_preprocess *p, struct ds_preprocess *d);

#endif

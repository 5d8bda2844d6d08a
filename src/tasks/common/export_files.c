/* export_files.c - the files one export wrote, removed together on failure. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tasks/common/export_files.h"

void export_files_add(struct export_files *w, const char *path) {
    if (w->n < EXPORT_FILES_MAX) snprintf(w->path[w->n++], sizeof w->path[0], "%s", path);
}

void export_files_remove_all(struct export_files *w) {
    for (int i = 0; i < w->n; i++) unlink(w->path[i]);
    w->n = 0;
}

void export_dir_of(const char *path, char *out, size_t n) {
    const char *sl = strrchr(path, '/');
    snprintf(out, n, "%.*s", sl ? (int)(sl - path + 1) : 0, path);
}

const char *export_base_of(const char *path) {
    const char *sl = strrchr(path, '/');
    return sl ? sl + 1 : path;
}

void ds_preprocess_from(const struct deft_preprocess *p, struct ds_preprocess *d) {
    double sd = (p->std[0] + p->std[1] + p->std[2]) / 3.0;
    bool same_std = fabsf(p->std[0] - p->std[1]) < 1e-6f && fabsf(p->std[1] - p->std[2]) < 1e-6f;
    d->scale = 1.0 / ((double)p->divisor * (same_std ? p->std[0] : sd));
    for (int c = 0; c < 3; c++) d->offsets[c] = (double)p->mean[c] * p->divisor;
    d->channels = deft_preprocess_channels(p);
    d->color_format = d->channels == 1 ? 2 : p->bgr ? 1 : 0;
    d->color = d->channels == 1 ? "GRAY" : p->bgr ? "BGR" : "RGB";
    d->std_note = same_std ? "" : " (per-channel std averaged: nvinfer has one scale factor)";
    if (d->channels == 1) /* nvinfer converts the frame to grey itself and takes one offset */
        snprintf(d->offsets_text, sizeof d->offsets_text, "%.7g", d->offsets[0]);
    else
        snprintf(d->offsets_text, sizeof d->offsets_text, "%.7g;%.7g;%.7g", d->offsets[0], d->offsets[1], d->offsets[2]);
}

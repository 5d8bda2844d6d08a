/* cls_calib.c - a classifier's calibration images, preprocessed as the
 * model records it (the transform), then the shared range computation
 * (tasks/common/calib.c). 160 images of 224x224 are 96 MB in memory. */
#include <string.h>
#include "tasks/classification/cls_calib.h"

/* Preprocess `need` images taken from a seeded shuffle of paths into x;
 * unreadable images are skipped (with a warning) for the next ones. */
static enum deft_status load_images(const struct deft_transform *tf, char *const *paths, int n_paths,
                                    int need, uint64_t seed, float *x, size_t per) {
    int *order;
    enum deft_status s = task_calib_shuffle(n_paths, seed, &order);
    if (s) return s;
    int got = 0, bad = 0;
    for (int k = 0; k < n_paths && got < need && !s; k++) {
        void *buf;
        size_t len;
        const char *p = paths[order[k]];
        enum deft_status e = deft_file_read(p, 256u << 20, &buf, &len);
        if (!e) {
            e = deft_transform_bytes(tf, buf, len, 0, 0, x + (size_t)got * per);
            deft_free(buf);
        }
        if (e == DEFT_ERR_NOMEM) s = e;
        else if (e) {
            deft_log(DEFT_LOG_WARN, "calibration: skipping %s: %s", p, deft_last_error());
            bad++;
        } else {
            got++;
        }
    }
    deft_free(order);
    if (!s && got < need)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches x "
                           "--batch_size) but only %d%s could be read; give more images or fewer "
                           "batches", need, got, bad ? " (others corrupt)" : "");
    return s;
}

enum deft_status cls_calibrate(struct deft_model *m, int input, const struct deft_transform *tf,
                               char *const *paths, int n_paths, const struct task_calib_opts *o,
                               uint64_t seed, float **amax) {
    *amax = NULL;
    int need = o->batches * o->batch_size;
    if (n_paths < need)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches %d x "
                              "--batch_size %d) but only %d were found", need, o->batches, o->batch_size,
                              n_paths);
    size_t per = (size_t)deft_preprocess_channels(&tf->pre) * (size_t)tf->out_h * (size_t)tf->out_w;
    float *x = deft_malloc((size_t)need * per * sizeof *x);
    if (!x) return deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration images)");
    enum deft_status s = load_images(tf, paths, n_paths, need, seed, x, per);
    if (!s) s = task_calib_ranges(m, input, tf->out_h, tf->out_w, x, o, amax);
    deft_free(x);
    return s;
}

/* det_detect_all.h (internal) - every detection of a dataset with a loaded
 * detector: the evaluation loader, the network run a batch at a time, each
 * image's decode, progress and the corrupt-image count. One loop for every
 * detection task; the network comes in as hooks. */
#ifndef DEFT_TASKS_COMMON_DET_DETECT_ALL_H
#define DEFT_TASKS_COMMON_DET_DETECT_ALL_H
#include <stdio.h>
#include "deft/det_loader.h"
#include "tasks/common/det_results.h"

struct det_detector {
    void *ctx;
    /* The network on batch b (its images; some networks also read its letterboxes). */
    enum deft_status (*run)(void *ctx, const struct deft_det_batch *b);
    /* Item i's detections (original image coordinates) into *boxes / *n. */
    enum deft_status (*detect)(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n);
    /* Optional, after item i's detections: the task's own dumps (image: its file). */
    enum deft_status (*after)(void *ctx, const struct deft_det_batch *b, int i, const char *image);
};

/* d is allocated here (ds->n images; det_dets_free it, also on failure). dump_dir: each network
 * input as --dump_input writes it (NULL: none). progress: "\r  k/n images" lines (NULL: quiet). */
enum deft_status det_detect_all(const struct deft_det_loader_opts *lo, const struct deft_det_dataset *ds,
                                const struct det_detector *net, const char *dump_dir, struct det_dets *d,
                                FILE *progress);
/* The same pass over an open loader of ds (restarted at epoch 0): training's validation loader. */
enum deft_status det_detect_loader(struct deft_det_loader *ld, const struct deft_det_dataset *ds,
                                   const struct det_detector *net, const char *dump_dir, struct det_dets *d,
                                   FILE *progress);
#endif

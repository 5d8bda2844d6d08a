/* det_detect_all.c - the evaluation pass shared by the detection tasks. */
#include "tasks/common/det_detect_all.h"
#include <string.h>
#include "tasks/common/det_infer_io.h"

static enum deft_status batch_items(const struct deft_det_dataset *ds, const struct det_detector *net,
                                    const char *dump_dir, const struct deft_det_batch *b, struct det_dets *d) {
    enum deft_status s = DEFT_OK;
    for (int i = 0; i < b->n && !s; i++) {
        int k = b->index[i];
        if (k < 0 || k >= d->n || b->corrupt[i]) continue;
        const char *image = ds->samples[k].image;
        const float *x = b->images + (size_t)i * 3 * (size_t)b->h * (size_t)b->w;
        if (dump_dir && (s = det_dump_input(dump_dir, image, x, b->h, b->w, &b->lb[i]))) break;
        s = net->detect(net->ctx, b, i, &d->boxes[k], &d->n_boxes[k]);
        if (!s && net->after) s = net->after(net->ctx, b, i, image);
    }
    return s;
}

enum deft_status det_detect_loader(struct deft_det_loader *ld, const struct deft_det_dataset *ds,
                                   const struct det_detector *net, const char *dump_dir, struct det_dets *d,
                                   FILE *progress) {
    enum deft_status s = det_dets_alloc(d, ds->n);
    if (!s) s = deft_det_loader_start_epoch(ld, 0);
    int done = 0;
    struct deft_det_batch b;
    while (!s) {
        if ((s = deft_det_loader_next(ld, &b)) || b.n == 0) break;
        if ((s = net->run(net->ctx, &b)) || (s = batch_items(ds, net, dump_dir, &b, d))) break;
        done += b.n;
        if (progress) fprintf(progress, "\r  %d/%d images", done, ds->n), fflush(progress);
    }
    if (progress) fprintf(progress, "\n");
    return s;
}

enum deft_status det_detect_all(const struct deft_det_loader_opts *lo, const struct deft_det_dataset *ds,
                                const struct det_detector *net, const char *dump_dir, struct det_dets *d,
                                FILE *progress) {
    memset(d, 0, sizeof *d);
    struct deft_det_loader *ld = NULL;
    enum deft_status s = deft_det_loader_create(lo, ds, &ld);
    if (s) return s;
    s = det_detect_loader(ld, ds, net, dump_dir, d, progress);
    struct deft_loader_stats st;
    deft_det_loader_get_stats(ld, &st);
    if (st.corrupt_skipped)
        deft_log(DEFT_LOG_WARN, "%lld corrupt or unreadable images had no detections", (long long)st.corrupt_skipped);
    deft_det_loader_free(ld);
    return s;
}

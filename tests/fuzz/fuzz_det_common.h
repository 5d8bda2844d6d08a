/* fuzz_det_common.h - shared body of the detection label fuzz targets
 * (fuzz_kitti.c, fuzz_coco.c, fuzz_voc.c): the reader on arbitrary bytes
 * under several option sets gives a status, never a crash or a leak; on
 * success every box has a valid class and finite coordinates, the TAO rules
 * leave x1 < x2 and y1 < y2, and the statistics add up. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/det_data.h"

static void check_dataset(const struct deft_det_dataset *d, bool raw) {
    int64_t boxes = 0, difficult = 0;
    if (d->n_classes < 0 || d->n < 0) abort();
    for (int c = 0; c < d->n_classes; c++) {
        if (!d->class_names[c] || !d->class_names[c][0]) abort();
        if (c && strcmp(d->class_names[c - 1], d->class_names[c]) >= 0) abort(); /* sorted, unique */
    }
    for (int i = 0; i < d->n; i++) {
        const struct deft_det_sample *s = &d->samples[i];
        for (int k = 0; k < s->n_boxes; k++) {
            const struct deft_box *b = &s->boxes[k];
            if (b->cls < 0 || b->cls >= d->n_classes) abort();
            if (!isfinite(b->x1) || !isfinite(b->y1) || !isfinite(b->x2) || !isfinite(b->y2)) abort();
            if (!raw && (b->x1 >= b->x2 || b->y1 >= b->y2)) abort();
            if (!raw && s->width > 0 && s->height > 0 &&
                (b->x1 < 0 || b->y1 < 0 || b->x2 > s->width || b->y2 > s->height))
                abort();
            difficult += b->difficult;
        }
        boxes += s->n_boxes;
    }
    if (boxes != d->stats.boxes || difficult != d->stats.difficult || d->n != d->stats.images) abort();
}

static int fuzz_det(enum deft_det_format f, const unsigned char *data, size_t size) {
    static const struct deft_det_class_map map[] = {{"car", "vehicle"}, {"Van", "vehicle"},
                                                    {"person", "Pedestrian"}};
    long live = deft_alloc_live();
    deft_log_set_level(DEFT_LOG_ERROR);
    for (int mode = 0; mode < 4; mode++) {
        struct deft_det_read_opts o;
        deft_det_read_opts_init(&o);
        o.skip_bad_lines = mode & 1;
        o.raw = mode == 2;
        o.with_score = mode == 3;
        if (mode == 1 || mode == 3) {
            o.mapping = map;
            o.n_mapping = 3;
        }
        struct deft_det_dataset d;
        if (deft_det_parse(f, (const char *)data, size, "fuzz", &o, &d) == DEFT_OK)
            check_dataset(&d, o.raw);
        deft_det_dataset_free(&d);
    }
    if (deft_alloc_live() != live) abort();
    return 0;
}

/* frcnn_setup.c - `deft faster_rcnn train --dry_run`: the spec loaded and
 * checked, the anchor grid built, the data sources checked (KITTI labels,
 * not TFRecords) and, when the labels are readable, every training box
 * checked for an anchor at rpn_max_overlap. Exit 0 only when nothing in
 * the spec or the data would stop a real run. Without --dry_run: the
 * training engine (frcnn_train.c). */
#include <stdlib.h>
#include <sys/stat.h>
#include "deft/det_priors.h"
#include "deft/faster_rcnn_spec.h"
#include "tasks/common/anchor_check.h"
#include "tasks/faster_rcnn/frcnn_run.h"
#include "tasks/faster_rcnn/frcnn_task.h"

static bool is_dir(const char *p) {
    struct stat sb;
    return p && *p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool sources_ok(const struct deft_frcnn_dataset_config *d, const char *file) {
    bool ok = true;
    for (int i = 0; i < d->n_data_sources; i++) {
        const struct deft_frcnn_data_source *s = &d->data_sources[i];
        if (!*s->label_directory_path) {
            deft_log(DEFT_LOG_WARN, "%s: dataset_config.data_sources[%d].tfrecords_path: deft does not read TFRecords; "
                     "give label_directory_path (KITTI labels) beside image_directory_path", file, i);
            ok = false;
        } else if (!is_dir(s->label_directory_path) || !is_dir(s->image_directory_path)) {
            deft_log(DEFT_LOG_WARN, "%s: dataset_config.data_sources[%d]: '%s' or '%s' is not a directory", file, i,
                     s->label_directory_path, s->image_directory_path);
            ok = false;
        }
    }
    return ok;
}

static enum deft_status check_anchors(const struct deft_frcnn_config *c, FILE *out, bool *stop) {
    if (!c->n_anchors) { /* size_min: the input size depends on each image */
        fprintf(out, "anchor check : skipped (size_min: the input size follows each image)\n");
        return DEFT_OK;
    }
    const struct deft_frcnn_anchor_box *ab = &c->model_config.anchor_box_config;
    float *an = malloc((size_t)c->n_anchors * 4 * sizeof *an);
    if (!an) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    long n = 0;
    enum deft_status s = deft_frcnn_anchors(ab->scale, ab->n_scale, ab->ratio, ab->n_ratio, c->model_config.rpn_stride,
                                            c->fmap_h, c->fmap_w, an, c->n_anchors, &n);
    const struct deft_frcnn_dataset_config *d = &c->dataset_config;
    if (!s && sources_ok(d, c->source_path)) {
        struct deft_det_source *src = calloc((size_t)d->n_data_sources, sizeof *src);
        struct deft_det_class_map *map = calloc((size_t)d->n_target_class_mapping + 1, sizeof *map);
        if (!src || !map) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        for (int i = 0; !s && i < d->n_data_sources; i++)
            src[i] = (struct deft_det_source){DEFT_DET_KITTI, d->data_sources[i].image_directory_path,
                                              d->data_sources[i].label_directory_path, NULL};
        for (int i = 0; map && i < d->n_target_class_mapping; i++)
            map[i] = (struct deft_det_class_map){d->target_class_mapping[i].key, d->target_class_mapping[i].value};
        struct deft_det_read_opts ro;
        deft_det_read_opts_init(&ro);
        ro.mapping = map;
        ro.n_mapping = d->n_target_class_mapping;
        ro.skip_bad_lines = true;
        ro.image_extension = d->image_extension;
        struct anchor_check ac = {an, n, 4, false, c->input_w, c->input_h, (float)c->training_config.rpn_max_overlap,
                                  "training_config.rpn_max_overlap", (float)c->training_config.rpn_min_overlap,
                                  "training_config.rpn_min_overlap"};
        long nb = 0, nw = 0, nm = 0;
        if (!s) s = anchor_check_dataset(src, d->n_data_sources, &ro, &ac, out, &nb, &nw, &nm);
        if (!s && nm) {
            deft_log(DEFT_LOG_WARN, "%s: %ld training boxes get no anchor even at IoU >= %g: change "
                     "model_config.anchor_box_config (sizes above)", c->source_path, nm,
                     c->training_config.rpn_min_overlap);
            *stop = true;
        }
        free(src);
        free(map);
    } else if (!s) {
        *stop = true;
    }
    free(an);
    return s;
}

enum deft_status frcnn_train(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "faster_rcnn train needs -e SPEC");
    struct deft_frcnn_config c;
    enum deft_status s = deft_frcnn_config_load(a->spec, a->overrides, a->n_overrides, &c);
    if (s) return s;
    if (a->dry_run) {
        deft_frcnn_config_summary(&c, out);
        bool stop = false;
        s = check_anchors(&c, out, &stop);
        if (!s) s = deft_dry_run_verdict(stop);
        deft_frcnn_config_free(&c);
        return s;
    }
    deft_frcnn_config_free(&c);
    return frcnn_train_run(a);
}

/* ssd_setup.c - `deft ssd train --dry_run`: the spec loaded and checked, the
 * priors built, the data sources checked (deft reads KITTI labels, not
 * TFRecords) and, when the training labels are readable, every box checked
 * for a prior at pos_iou_thresh. Exit 0 only when a real run could start.
 * (A run resolves the spec in ssd_resolve.c.) */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/ssd_spec.h"
#include "deft/task.h"
#include "tasks/common/anchor_check.h"
#include "tasks/ssd/ssd_task.h"

static bool is_dir(const char *p) {
    struct stat sb;
    return p && *p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Sources deft can read; false (with a warning naming the field) otherwise. */
static bool sources_ok(const struct deft_yolo_dataset_config *d, const char *file) {
    bool ok = true;
    for (int i = 0; i < d->n_data_sources; i++) {
        const struct deft_yolo_data_source *s = &d->data_sources[i];
        if (!*s->label_directory_path) {
            deft_log(DEFT_LOG_WARN, "%s: dataset_config.data_sources[%d].tfrecords_path: deft does not read TFRecords; "
                     "give label_directory_path (KITTI labels) and image_directory_path instead", file, i);
            ok = false;
        } else if (!is_dir(s->label_directory_path) || !is_dir(s->image_directory_path)) {
            deft_log(DEFT_LOG_WARN, "%s: dataset_config.data_sources[%d]: '%s' or '%s' is not a directory", file, i,
                     s->label_directory_path, s->image_directory_path);
            ok = false;
        }
    }
    return ok;
}

static enum deft_status check_priors(const struct deft_ssd_config *c, FILE *out, bool *stop) {
    struct deft_ssd_layer_params p[DEFT_SSD_LAYERS];
    deft_ssd_config_layers(c, p);
    float *pr = malloc((size_t)c->n_priors * 8 * sizeof *pr);
    if (!pr) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    long n = 0;
    enum deft_status s = deft_ssd_priors(p, c->n_layers, c->augmentation_config.output_width,
                                         c->augmentation_config.output_height, c->ssd_config.two_boxes_for_ar1,
                                         c->ssd_config.clip_boxes, c->variances, pr, c->n_priors, &n);
    const struct deft_yolo_dataset_config *d = &c->dataset_config;
    if (!s && sources_ok(d, c->source_path)) {
        struct deft_det_source *src = calloc((size_t)d->n_data_sources, sizeof *src);
        struct deft_det_class_map *map = calloc((size_t)d->n_target_class_mapping + 1, sizeof *map);
        if (!src || !map) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        for (int i = 0; !s && i < d->n_data_sources; i++)
            src[i] = (struct deft_det_source){DEFT_DET_KITTI, d->data_sources[i].image_directory_path,
                                              d->data_sources[i].label_directory_path,
                                              *d->data_sources[i].split_list_path ? d->data_sources[i].split_list_path
                                                                                  : NULL};
        for (int i = 0; map && i < d->n_target_class_mapping; i++)
            map[i] = (struct deft_det_class_map){d->target_class_mapping[i].key, d->target_class_mapping[i].value};
        struct deft_det_read_opts ro;
        deft_det_read_opts_init(&ro);
        ro.mapping = map;
        ro.n_mapping = d->n_target_class_mapping;
        ro.skip_bad_lines = true;
        if (*d->image_extension) ro.image_extension = d->image_extension;
        const char *blk = c->is_retinanet ? "retinanet_config" : c->is_dssd ? "dssd_config" : "ssd_config";
        char pk[64], nk[64];
        snprintf(pk, sizeof pk, "%s.pos_iou_thresh", blk);
        snprintf(nk, sizeof nk, "%s.neg_iou_thresh", blk);
        struct anchor_check ac = {pr, n, 8, true, c->augmentation_config.output_width,
                                  c->augmentation_config.output_height, (float)c->ssd_config.pos_iou_thresh, pk,
                                  (float)c->ssd_config.neg_iou_thresh, nk};
        long nb = 0, nw = 0, nm = 0;
        if (!s) s = anchor_check_dataset(src, d->n_data_sources, &ro, &ac, out, &nb, &nw, &nm);
        if (!s && nm) {
            deft_log(DEFT_LOG_WARN, "%s: %ld training boxes get no prior even at IoU >= %g: change the scales / "
                     "aspect ratios (sizes above)", c->source_path, nm, c->ssd_config.neg_iou_thresh);
            *stop = true;
        }
        free(src);
        free(map);
    } else if (!s) {
        *stop = true;
    }
    free(pr);
    return s;
}

enum deft_status ssd_dry_run(const struct deft_task_args *a) { return ssd_dry_run_net(a, false); }

enum deft_status ssd_dry_run_net(const struct deft_task_args *a, bool retina) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s train needs -e SPEC", ssd_net_name(retina));
    struct deft_ssd_config c;
    enum deft_status s = retina ? deft_retinanet_config_load(a->spec, a->overrides, a->n_overrides, &c)
                                : deft_ssd_config_load(a->spec, a->overrides, a->n_overrides, &c);
    if (s) return s;
    deft_ssd_config_summary(&c, out);
    bool stop = false;
    s = check_priors(&c, out, &stop);
    if (!s && c.is_dssd) {
        deft_log(DEFT_LOG_WARN, "%s: dssd_config: DSSD %s", c.source_path, DEFT_SSD_NOT_FINISHED);
        stop = true;
    }
    if (!s) s = deft_dry_run_verdict(stop);
    deft_ssd_config_free(&c);
    return s;
}

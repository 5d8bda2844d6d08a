/* det_split.c - the training or validation sources of a detection spec
 * (TAO's common dataset_config: yolo_v4, ssd) read with TAO's rules. */
#include <string.h>
#include "tasks/common/det_split.h"

enum deft_status det_spec_read_split(const struct deft_yolo_dataset_config *d, const char *spec_path, bool validation,
                                struct deft_det_dataset *ds) {
    const struct deft_yolo_data_source *src = validation ? d->validation_data_sources : d->data_sources;
    int n = validation ? d->n_validation_data_sources : d->n_data_sources;
    memset(ds, 0, sizeof *ds);
    if (n == 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config has no %s", spec_path,
                              validation ? "validation_data_sources" : "data_sources");
    enum deft_det_format fmt = DEFT_DET_KITTI;
    if (d->type && d->type[0] && deft_det_format_parse(d->type, &fmt))
        return deft_wrap_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.type", spec_path);
    struct deft_det_source *ss = deft_calloc((size_t)n, sizeof *ss);
    struct deft_det_class_map *map = deft_calloc((size_t)d->n_target_class_mapping + 1, sizeof *map);
    enum deft_status s = ss && map ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !s; i++) {
        if (!src[i].label_directory_path[0])
            s = deft_set_error(DEFT_ERR_INVALID_ARG,
                               "%s: dataset_config.%s %d has no label_directory_path: deft reads KITTI label "
                               "files directly (no TFRecords); give label_directory_path and image_directory_path",
                               spec_path, validation ? "validation_data_sources" : "data_sources", i);
        else
            ss[i] = (struct deft_det_source){fmt, src[i].image_directory_path[0] ? src[i].image_directory_path : NULL,
                                             src[i].label_directory_path,
                                             src[i].split_list_path[0] ? src[i].split_list_path : NULL};
    }
    if (!s) {
        for (int i = 0; i < d->n_target_class_mapping; i++)
            map[i] = (struct deft_det_class_map){d->target_class_mapping[i].key, d->target_class_mapping[i].value};
        struct deft_det_read_opts o;
        deft_det_read_opts_init(&o);
        o.mapping = map;
        o.n_mapping = d->n_target_class_mapping;
        o.include_difficult = d->include_difficult_in_training;
        if (d->image_extension[0]) o.image_extension = d->image_extension;
        s = deft_det_read(ss, n, &o, ds);
    }
    deft_free(ss);
    deft_free(map);
    if (s) return s;
    /* the reader's class list must be the spec's (sorted lower-case targets) */
    if (ds->n_classes != d->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the data has %d classes but the spec maps to %d",
                              spec_path, ds->n_classes, d->n_classes);
    for (int k = 0; k < d->n_classes; k++)
        if (strcmp(ds->class_names[k], d->class_names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: class %d is '%s' in the data but '%s' in the spec",
                                  spec_path, k, ds->class_names[k], d->class_names[k]);
    return DEFT_OK;
}

/* dnv2_export.h (internal) - `deft detectnet_v2 export` (dnv2_export.c) and
 * its DeepStream files (dnv2_export_ds.c). */
#ifndef DEFT_TASKS_DNV2_EXPORT_H
#define DEFT_TASKS_DNV2_EXPORT_H

#include "tasks/common/export_files.h"
#include "tasks/detectnet_v2/dnv2_task.h"

enum deft_status dnv2_export(const struct deft_task_args *a);

struct dnv2_ds_opts {
    const char *dir;  /* where the files go, "" or ending in '/' */
    const char *onnx; /* the ONNX file name, relative to dir */
    const char *cal;  /* int8-calib-file */
    bool int8, fp16;
};
/* labels.txt (the classes in the network's order, no background) and
 * nvinfer_config.txt for DeepStream's built-in DetectNet_v2 parser: the
 * preprocessing of dm, the clustering of d's postprocessing_config. */
enum deft_status dnv2_write_ds(const struct dnv2_ds_opts *o, const struct dnv2_model *dm, const struct dnv2_setup *d,
                               struct export_files *w);
#endif

/* det_export_ds.h (internal) - the DeepStream files of a detector export
 * with TAO's NMS layout (`--gen_ds_config`): labels.txt and an nvinfer config
 * for TAO's parser of the NMS outputs (NvDsInferParseCustomNMSTLT). */
#ifndef DEFT_TASKS_DET_EXPORT_DS_H
#define DEFT_TASKS_DET_EXPORT_DS_H

#include <stdbool.h>
#include "deft/data.h"
#include "tasks/common/export_files.h"

struct det_ds_opts {
    const char *dir, *onnx, *cal;   /* the output folder ("" or ending in '/'), ONNX file name, cal.bin */
    const char *arch;               /* the network, in the config's comment */
    const struct deft_preprocess *pre;
    int net_w, net_h;
    const char *const *classes;     /* object classes */
    int n_classes;
    bool background_first;          /* TAO's SSD: background, then classes; Faster R-CNN: background last */
    bool int8, fp16;
    float conf, iou;
    int top_k;
};
/* Writes dir/labels.txt and dir/nvinfer_config.txt, each added to w. */
enum deft_status det_write_ds(const struct det_ds_opts *o, struct export_files *w);
#endif

/* ssd_export_ds.c - the DeepStream files of `deft ssd export
 * --gen_ds_config` (formats.md §3): labels.txt with TAO's background first
 * (num-detected-classes counts it), and nvinfer_config.txt for TAO's parser
 * of the NMS outputs (NvDsInferParseCustomNMSTLT), with deft's evaluation
 * preprocessing (ds_preprocess_from) and its letterbox. */
#include <stdio.h>
#include <string.h>
#include "tasks/common/export_files.h"
#include "tasks/ssd/ssd_task.h"

static enum deft_status write_labels(const char *dir, const struct ssd_model *sm, struct export_files *w) {
    char path[4200];
    size_t cap = 64, len = 0;
    for (int i = 0; i < sm->n_classes; i++) cap += strlen(sm->classes[i]) + 1;
    char *lab = deft_malloc(cap);
    if (!lab) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(lab, cap, "background\n");
    for (int i = 0; i < sm->n_classes; i++) len += (size_t)snprintf(lab + len, cap - len, "%s\n", sm->classes[i]);
    snprintf(path, sizeof path, "%slabels.txt", dir);
    enum deft_status s = deft_file_write_atomic(path, lab, len);
    deft_free(lab);
    if (!s) export_files_add(w, path);
    return s;
}

enum deft_status ssd_write_ds(const char *dir, const char *onnx, const char *cal, const struct ssd_model *sm,
                              bool int8, bool fp16, const struct ssd_nms *nms, struct export_files *w) {
    enum deft_status s = write_labels(dir, sm, w);
    if (s) return s;
    struct ds_preprocess d;
    ds_preprocess_from(&sm->pre, &d);
    char b[4096], path[4200];
    int len = snprintf(b, sizeof b,
        "# DeepStream nvinfer config written by deft %s for %s\n"
        "# preprocessing: y = net-scale-factor * (pixel - offsets[c]), %s input%s, letterboxed as deft's\n"
        "# evaluation (maintain-aspect-ratio + symmetric-padding: centred, padded with the offsets)\n"
        "[property]\n"
        "gpu-id=0\n"
        "onnx-file=%s\n"
        "labelfile-path=labels.txt\n"
        "%s%s%s"
        "net-scale-factor=%.9g\n"
        "offsets=%s\n"
        "model-color-format=%d\n"
        "infer-dims=%d;%d;%d\n"
        "maintain-aspect-ratio=1\n"
        "symmetric-padding=1\n"
        "batch-size=1\n"
        "network-mode=%d\n"
        "network-type=0\n"
        "# background (class 0) included, as TAO's SSD labels\n"
        "num-detected-classes=%d\n"
        "# the model ends in TAO's NMS already: no clustering on top of it\n"
        "cluster-mode=4\n"
        "output-blob-names=NMS\n"
        "parse-bbox-func-name=NvDsInferParseCustomNMSTLT\n"
        "# from NVIDIA-AI-IOT/deepstream_tao_apps (post_processor): give its path\n"
        "custom-lib-path=libnvds_infercustomparser_tao.so\n"
        "process-mode=1\n"
        "gie-unique-id=1\n\n"
        "[class-attrs-all]\n"
        "# the spec's nms_config (NMS ran in the model with these)\n"
        "pre-cluster-threshold=%g\n"
        "nms-iou-threshold=%g\n"
        "topk=%d\n",
        DEFT_VERSION_STRING, onnx, d.color, d.std_note, onnx, int8 ? "int8-calib-file=" : "", int8 ? cal : "",
        int8 ? "\n" : "", d.scale, d.offsets_text, d.color_format, d.channels, sm->geom.net_h, sm->geom.net_w,
        int8 ? 1 : fp16 ? 2 : 0, sm->n_classes + 1, (double)nms->conf, (double)nms->iou, nms->top_k);
    if (len < 0 || len >= (int)sizeof b) return deft_set_error(DEFT_ERR_INVALID_ARG, "nvinfer config too long");
    snprintf(path, sizeof path, "%snvinfer_config.txt", dir);
    if ((s = deft_file_write_atomic(path, b, (size_t)len))) return s;
    export_files_add(w, path);
    return DEFT_OK;
}

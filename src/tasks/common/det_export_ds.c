/* det_export_ds.c - labels.txt (the background counted, as TAO's labels:
 * num-detected-classes includes it) and nvinfer_config.txt for TAO's NMS
 * parser, with deft's evaluation preprocessing (ds_preprocess_from) and its
 * letterbox (centred, padded with the offsets). */
#include <stdio.h>
#include <string.h>
#include "deft/io.h"
#include "tasks/common/det_export_ds.h"

static enum deft_status write_labels(const struct det_ds_opts *o, struct export_files *w) {
    char path[4200];
    size_t cap = 64, len = 0;
    for (int i = 0; i < o->n_classes; i++) cap += strlen(o->classes[i]) + 1;
    char *lab = deft_malloc(cap);
    if (!lab) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    lab[0] = 0;
    if (o->background_first) len += (size_t)snprintf(lab, cap, "background\n");
    for (int i = 0; i < o->n_classes; i++) len += (size_t)snprintf(lab + len, cap - len, "%s\n", o->classes[i]);
    if (!o->background_first) len += (size_t)snprintf(lab + len, cap - len, "background\n");
    snprintf(path, sizeof path, "%slabels.txt", o->dir);
    enum deft_status s = deft_file_write_atomic(path, lab, len);
    deft_free(lab);
    if (!s) export_files_add(w, path);
    return s;
}

enum deft_status det_write_ds(const struct det_ds_opts *o, struct export_files *w) {
    enum deft_status s = write_labels(o, w);
    if (s) return s;
    struct ds_preprocess d;
    ds_preprocess_from(o->pre, &d);
    char b[4096], path[4200];
    int len = snprintf(b, sizeof b,
        "# DeepStream nvinfer config written by deft %s for %s (%s)\n"
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
        "# background included (%s), as TAO's labels\n"
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
        "# the settings the model's NMS ran with\n"
        "pre-cluster-threshold=%g\n"
        "nms-iou-threshold=%g\n"
        "topk=%d\n",
        DEFT_VERSION_STRING, o->onnx, o->arch, d.color, d.std_note, o->onnx, o->int8 ? "int8-calib-file=" : "",
        o->int8 ? o->cal : "", o->int8 ? "\n" : "", d.scale, d.offsets_text, d.color_format, d.channels, o->net_h,
        o->net_w, o->int8 ? 1 : o->fp16 ? 2 : 0, o->background_first ? "first" : "last", o->n_classes + 1,
        (double)o->conf, (double)o->iou, o->top_k);
    if (len < 0 || len >= (int)sizeof b) return deft_set_error(DEFT_ERR_INVALID_ARG, "nvinfer config too long");
    snprintf(path, sizeof path, "%snvinfer_config.txt", o->dir);
    if ((s = deft_file_write_atomic(path, b, (size_t)len))) return s;
    export_files_add(w, path);
    return DEFT_OK;
}

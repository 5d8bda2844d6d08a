/* yolo_export_ds.c - the DeepStream files of `deft yolo_v4 export
 * --gen_ds_config` (formats.md §3): labels.txt, one class a line in output
 * order, and nvinfer_config.txt for TAO's parser of the BatchedNMS outputs
 * (NvDsInferParseCustomBatchedNMSTLT) with the preprocessing deft's
 * evaluation uses: nvinfer computes y = net-scale-factor * (x - offsets[c]),
 * deft (x / divisor - mean) / std, the same with offsets = mean * divisor and
 * scale = 1 / (divisor * std) when std is one value. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "deft/graph.h"
#include "tasks/common/export_files.h"
#include "tasks/yolo_v4/yolo_task.h"

/* labels.txt (one class a line) and nvinfer_config.txt for TAO's parser. */
enum deft_status yolo_write_ds(const char *dir, const char *onnx, const char *cal, const struct yolo_model *ym,
                               bool int8, bool fp16, const struct yolo_nms *nms, const char *fp32_layers,
                               struct export_files *w) {
    char path[4200];
    size_t cap = 256, len = 0;
    for (int i = 0; i < ym->n_classes; i++) cap += strlen(ym->classes[i]) + 1;
    char *lab = deft_malloc(cap);
    if (!lab) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ym->n_classes; i++) len += (size_t)snprintf(lab + len, cap - len, "%s\n", ym->classes[i]);
    snprintf(path, sizeof path, "%slabels.txt", dir);
    enum deft_status s = deft_file_write_atomic(path, lab, len);
    deft_free(lab);
    if (s) return s;
    export_files_add(w, path);
    const struct deft_preprocess *p = &ym->pre;
    struct ds_preprocess d;
    ds_preprocess_from(p, &d);
    size_t bcap = 4096 + (fp32_layers ? strlen(fp32_layers) : 0);
    char *b = deft_malloc(bcap);
    if (!b) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    len = (size_t)snprintf(b, bcap,
        "# DeepStream nvinfer config written by deft %s for %s\n"
        "# preprocessing: y = net-scale-factor * (pixel - offsets[c]), %s input%s, letterboxed as deft's\n"
        "# evaluation (maintain-aspect-ratio + symmetric-padding: centred, padded with the offsets)\n"
        "[property]\n"
        "gpu-id=0\n"
        "onnx-file=%s\n"
        "labelfile-path=labels.txt\n"
        "%s%s%s"
        "net-scale-factor=%.9g\n"
        "offsets=%.7g;%.7g;%.7g\n"
        "model-color-format=%d\n"
        "infer-dims=3;%d;%d\n"
        "maintain-aspect-ratio=1\n"
        "symmetric-padding=1\n"
        "batch-size=1\n"
        "network-mode=%d\n"
        "network-type=0\n"
        "num-detected-classes=%d\n"
        "# the model ends in TAO's NMS already: no clustering on top of it (TAO's samples use 3)\n"
        "cluster-mode=4\n"
        "output-blob-names=BatchedNMS\n"
        "parse-bbox-func-name=NvDsInferParseCustomBatchedNMSTLT\n"
        "# from NVIDIA-AI-IOT/deepstream_tao_apps (post_processor): give its path\n"
        "custom-lib-path=libnvds_infercustomparser_tao.so\n"
        "%s%s%s%s"
        "process-mode=1\n"
        "gie-unique-id=1\n\n"
        "[class-attrs-all]\n"
        "# the spec's nms_config (NMS ran in the model with these)\n"
        "pre-cluster-threshold=%g\n"
        "nms-iou-threshold=%g\n"
        "topk=%d\n",
        DEFT_VERSION_STRING, onnx, d.color, d.std_note, onnx,
        int8 ? "int8-calib-file=" : "", int8 ? cal : "", int8 ? "\n" : "",
        d.scale, d.offsets[0], d.offsets[1], d.offsets[2], d.color_format, ym->net_h, ym->net_w,
        int8 ? 1 : fp16 ? 2 : 0, ym->n_classes,
        fp32_layers ? "# INT8: the detection head and the decode stay fp32 (TAO does the same)\n" : "",
        fp32_layers ? "layer-device-precision=" : "", fp32_layers ? fp32_layers : "", fp32_layers ? "\n" : "",
        (double)nms->conf, (double)nms->iou, nms->top_k);
    snprintf(path, sizeof path, "%snvinfer_config.txt", dir);
    s = len < bcap ? deft_file_write_atomic(path, b, len) : deft_set_error(DEFT_ERR_INVALID_ARG, "nvinfer config too long");
    deft_free(b);
    if (s) return s;
    export_files_add(w, path);
    return DEFT_OK;
}

/* "head_s32:fp32:gpu;...": the head convolutions and the decode nodes before the plugin. */
char *yolo_fp32_layers(const struct yolo_model *ym, const struct deft_onnx_tail *t) {
    const struct deft_graph *g = ym->m->graph;
    size_t cap = 64;
    int nt = deft_onnx_tail_num_nodes(t);
    for (int i = 0; i < ym->heads.n; i++)
        cap += strlen(deft_graph_node(g, deft_graph_value(g, ym->out[i])->producer)->name) + 10;
    for (int i = 0; i < nt; i++) cap += strlen(deft_onnx_tail_node_name(t, i)) + 10;
    char *b = deft_malloc(cap);
    if (!b) return NULL;
    size_t len = 0;
    b[0] = 0;
    for (int i = 0; i < ym->heads.n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s%s:fp32:gpu", len ? ";" : "",
                                deft_graph_node(g, deft_graph_value(g, ym->out[i])->producer)->name);
    for (int i = 0; i < nt; i++) {
        const char *n = deft_onnx_tail_node_name(t, i);
        if (!strcmp(n, "BatchedNMS_N")) continue; /* the plugin picks its own precision */
        len += (size_t)snprintf(b + len, cap - len, ";%s:fp32:gpu", n);
    }
    return b;
}

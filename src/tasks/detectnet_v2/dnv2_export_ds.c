/* dnv2_export_ds.c - the DeepStream files of `deft detectnet_v2 export
 * --gen_ds_config` (formats.md §3): labels.txt (the classes, no background)
 * and nvinfer_config.txt for nvinfer's built-in DetectNet_v2 parser
 * (output-blob-names output_cov/Sigmoid;output_bbox/BiasAdd, network-type 0)
 * with deft's evaluation preprocessing and letterbox, and the spec's
 * postprocessing_config as cluster-mode and one [class-attrs-N] a class. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "tasks/detectnet_v2/dnv2_export.h"

#define DS_CAP 16384

static enum deft_status write_labels(const char *dir, const struct dnv2_model *dm, struct export_files *w) {
    char path[4200];
    size_t cap = 16, len = 0;
    for (int i = 0; i < dm->n_classes; i++) cap += strlen(dm->classes[i]) + 1;
    char *lab = deft_malloc(cap);
    if (!lab) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    lab[0] = 0;
    for (int i = 0; i < dm->n_classes; i++) len += (size_t)snprintf(lab + len, cap - len, "%s\n", dm->classes[i]);
    snprintf(path, sizeof path, "%slabels.txt", dir);
    enum deft_status s = deft_file_write_atomic(path, lab, len);
    deft_free(lab);
    if (!s) export_files_add(w, path);
    return s;
}

/* nvinfer has one cluster-mode for all classes: the one most classes use
 * (ties: DBSCAN); *mixed says whether some class differs. */
static int cluster_mode(const struct dnv2_setup *d, bool *mixed) {
    int nms = 0;
    for (int k = 0; k < d->n_classes; k++) nms += d->kcls[k].algo == DNV2_CLUSTER_NMS;
    *mixed = nms > 0 && nms < d->n_classes;
    return 2 * nms > d->n_classes ? 2 : 1;
}

static int append(char *b, int len, const char *fmt, ...) DEFT_PRINTF(3, 4);
static int append(char *b, int len, const char *fmt, ...) {
    if (len < 0 || len >= DS_CAP) return DS_CAP;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b + len, (size_t)(DS_CAP - len), fmt, ap);
    va_end(ap);
    return n < 0 ? DS_CAP : len + n;
}

/* [class-attrs-N]: TAO's clustering_config of class k in nvinfer's keys. */
static int class_attrs(char *b, int len, const struct dnv2_model *dm, const struct dnv2_cluster_class *c, int k) {
    int min_boxes = (int)c->dbscan_min_samples > 1 ? (int)c->dbscan_min_samples : 1; /* TAO: max(int(it), 1) */
    len = append(b, len, "\n[class-attrs-%d]\n# %s: clustering_algorithm %s\n", k, dm->classes[k],
                 c->algo == DNV2_CLUSTER_NMS ? "NMS" : "DBSCAN");
    len = append(b, len, "pre-cluster-threshold=%g\n", (double)c->coverage_threshold);
    len = append(b, len, "eps=%g\nminBoxes=%d\ndbscan-min-score=%g\n", (double)c->dbscan_eps, min_boxes,
                 (double)c->dbscan_confidence_threshold);
    len = append(b, len, "nms-iou-threshold=%g\n", (double)c->nms_iou_threshold);
    if (c->algo == DNV2_CLUSTER_NMS)
        len = append(b, len, "post-cluster-threshold=%g\n", (double)c->nms_confidence_threshold);
    return append(b, len, "detected-min-h=%g\n", (double)c->minimum_bounding_box_height);
}

static int property(char *b, const struct dnv2_ds_opts *o, const struct dnv2_model *dm, int mode, bool mixed) {
    struct ds_preprocess p;
    ds_preprocess_from(&dm->pre, &p);
    int len = append(b, 0,
        "# DeepStream nvinfer config written by deft %s for %s\n"
        "# preprocessing: y = net-scale-factor * (pixel - offsets[c]), %s input%s, letterboxed as deft's\n"
        "# evaluation (maintain-aspect-ratio + symmetric-padding: centred, padded with the offsets)\n"
        "[property]\ngpu-id=0\nonnx-file=%s\nlabelfile-path=labels.txt\n",
        DEFT_VERSION_STRING, o->onnx, p.color, p.std_note, o->onnx);
    if (o->int8) len = append(b, len, "int8-calib-file=%s\n", o->cal);
    len = append(b, len,
        "net-scale-factor=%.9g\noffsets=%s\nmodel-color-format=%d\ninfer-dims=%d;%d;%d\n"
        "maintain-aspect-ratio=1\nsymmetric-padding=1\nbatch-size=1\nnetwork-mode=%d\nnetwork-type=0\n"
        "num-detected-classes=%d\n"
        "# nvinfer's built-in DetectNet_v2 parser (no custom library); it decodes the boxes with TAO's\n"
        "# bbox scale 35 and offset 0.5%s\n"
        "output-blob-names=output_cov/Sigmoid;output_bbox/BiasAdd\n",
        p.scale, p.offsets_text, p.color_format, p.channels, dm->net_h, dm->net_w,
        o->int8 ? 1 : o->fp16 ? 2 : 0, dm->n_classes,
        dm->grid.scale == 35.0f && dm->grid.offset == 0.5f ? "" : " (this model's differ: see the ONNX metadata "
        "'outputs', and parse the raw outputs yourself)");
    if (mixed)
        len = append(b, len, "# the spec mixes DBSCAN and NMS classes; nvinfer has one cluster-mode for all\n");
    return append(b, len, "# 1: DBSCAN, 2: NMS (postprocessing_config clustering_algorithm)\ncluster-mode=%d\n"
                  "process-mode=1\ngie-unique-id=1\n", mode);
}

enum deft_status dnv2_write_ds(const struct dnv2_ds_opts *o, const struct dnv2_model *dm, const struct dnv2_setup *d,
                               struct export_files *w) {
    if (!d->cfg_loaded || d->n_classes != dm->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--gen_ds_config needs the experiment spec (-e) of the model");
    enum deft_status s = write_labels(o->dir, dm, w);
    if (s) return s;
    bool mixed;
    int mode = cluster_mode(d, &mixed);
    if (mixed)
        deft_log(DEFT_LOG_WARN, "%s: postprocessing_config mixes DBSCAN and NMS classes; DeepStream's cluster-mode "
                 "is one for all classes: %s is written", d->cfg.source_path, mode == 2 ? "NMS (2)" : "DBSCAN (1)");
    char *b = deft_malloc(DS_CAP);
    if (!b) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int len = property(b, o, dm, mode, mixed);
    for (int k = 0; k < dm->n_classes; k++) len = class_attrs(b, len, dm, &d->kcls[k], k);
    char path[4200];
    snprintf(path, sizeof path, "%snvinfer_config.txt", o->dir);
    if (len >= DS_CAP) s = deft_set_error(DEFT_ERR_INVALID_ARG, "nvinfer config too long (%d classes)", dm->n_classes);
    else if (!(s = deft_file_write_atomic(path, b, (size_t)len))) export_files_add(w, path);
    deft_free(b);
    return s;
}

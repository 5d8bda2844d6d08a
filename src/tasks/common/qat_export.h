/* qat_export.h (internal) - exporting a quantization-aware model, shared by
 * the tasks' exports (classification, yolo_v4): its float graph (what the
 * ONNX files are written from) and the ranges it learned, which replace
 * calibration images: every exported tensor's for cal.bin / calib.json, the
 * fake-quantized tensors' for the QDQ file (Q/DQ exactly where training
 * quantized, in the placement it trained with). */
#ifndef DEFT_TASKS_QAT_EXPORT_H
#define DEFT_TASKS_QAT_EXPORT_H

#include <stdio.h>
#include "deft/io.h"
#include "deft/quant.h"

struct task_qat {
    struct deft_graph *g;   /* the float graph (owned until taken) */
    float *amax;            /* per value of g: the learned range, 0 none */
    float *amax_q;          /* the same, fake-quantized tensors only */
    int ranged;             /* values with a range */
    bool fusion;            /* trained with add/pool inputs quantized too */
};

/* m->graph must be quantization-aware (deft_qat_enabled). A model with no
 * learned range at all (never trained) is DEFT_ERR_INVALID_ARG. */
enum deft_status task_qat_load(const struct deft_model *m, const char *path, struct task_qat *q);
/* Put q's float graph in place of m's (q->g is taken). */
void task_qat_swap_graph(struct task_qat *q, struct deft_model *m);
/* The notes when a QAT model is given calibration images, or a QDQ file is
 * asked with another --qdq_fusion than it trained with. */
void task_qat_notes(const struct task_qat *q, const char *path, bool cal_images, bool qdq_file, bool qdq_fusion,
                    FILE *out);
void task_qat_free(struct task_qat *q);

#endif

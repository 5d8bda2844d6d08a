/* qat_export.c - a quantization-aware model's float graph and learned
 * ranges for the exports (qat_export.h). */
#include <math.h>
#include <string.h>
#include "tasks/common/qat_export.h"

enum deft_status task_qat_load(const struct deft_model *m, const char *path, struct task_qat *q) {
    memset(q, 0, sizeof *q);
    struct deft_qat_range *r = NULL;
    enum deft_status s = deft_qat_strip(m->graph, &q->g, &r);
    if (s) return deft_wrap_error(s, "%s", path);
    int nv = deft_graph_num_values(q->g);
    q->amax = deft_calloc((size_t)nv + 1, sizeof *q->amax);
    q->amax_q = deft_calloc((size_t)nv + 1, sizeof *q->amax_q);
    if (!q->amax || !q->amax_q) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int v = 0; !s && v < nv; v++) {
        if (r[v].state < 0) continue;
        const char *name = deft_graph_value(m->graph, r[v].state)->name;
        const struct deft_tensor *t = deft_safetensors_find(m->file, name);
        float a;
        if (!t || deft_tensor_numel(t) != 1 || deft_tensor_to_f32(t, &a)) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: the range '%s' is missing", path, name);
            break;
        }
        q->amax[v] = a > 0 && isfinite(a) ? a : 0;
        if (r[v].quantized) q->amax_q[v] = q->amax[v];
        q->ranged += q->amax[v] > 0;
    }
    deft_free(r);
    const char *meta = deft_graph_get_meta(m->graph, "qat");
    q->fusion = meta && strstr(meta, "\"fusion\": true");
    if (!s && q->ranged == 0)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: quantization-aware, but no range was learned (trained for "
                           "no step?)", path);
    if (s) task_qat_free(q);
    return s;
}

void task_qat_swap_graph(struct task_qat *q, struct deft_model *m) {
    deft_graph_free(m->graph);
    m->graph = q->g;
    q->g = NULL;
}

void task_qat_notes(const struct task_qat *q, const char *path, bool cal_images, bool qdq_file, bool qdq_fusion,
                    FILE *out) {
    if (cal_images)
        fprintf(out, "note: %s is quantization-aware: its learned ranges are used, not calibration images\n", path);
    if (qdq_file && qdq_fusion != q->fusion)
        fprintf(out, "note: %s was trained with Q/DQ on %s inputs; the QDQ file keeps that placement\n", path,
                q->fusion ? "conv/gemm, add and pooling" : "conv/gemm");
}

void task_qat_free(struct task_qat *q) {
    deft_graph_free(q->g);
    deft_free(q->amax);
    deft_free(q->amax_q);
    memset(q, 0, sizeof *q);
}

/* yolo_detect.c - from head outputs to boxes in image pixels (decode, per-class
 * NMS, the letterbox undone), a saved model opened to produce them, and
 * scoring against ground truth. Validation during training, evaluate and
 * inference all go through here, so they cannot disagree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "deft/graph.h"
#include "tasks/yolo_v4/yolo_task.h"

enum deft_status yolo_detect_image(const struct yolo_heads *h, int n_classes, const float *const *outs, int b,
                                   const struct deft_letterbox *lb, const struct yolo_nms *nms,
                                   struct deft_box **boxes, int *n) {
    *boxes = NULL;
    *n = 0;
    enum deft_status s = deft_yolo_decode(h->head, h->n, n_classes, outs, b, nms->conf, boxes, n);
    if (s) return s;
    int kept = 0;
    /* top_k per class and overall, as TAO's combined NMS keeps them */
    if ((s = deft_nms_per_class(*boxes, *n, nms->iou, nms->top_k, nms->top_k, true, &kept))) {
        deft_free(*boxes);
        *boxes = NULL;
        *n = 0;
        return s;
    }
    for (int i = 0; i < kept; i++) {
        struct deft_box *bx = &(*boxes)[i];
        bx->x1 *= (float)lb->net_w;
        bx->x2 *= (float)lb->net_w;
        bx->y1 *= (float)lb->net_h;
        bx->y2 *= (float)lb->net_h;
        deft_letterbox_box_to_image(lb, bx);
    }
    *n = kept;
    return DEFT_OK;
}

/* ---- a saved model ------------------------------------------------------------ */

enum deft_status yolo_model_read(struct yolo_model *ym, const char *path, int batch) {
    memset(ym, 0, sizeof *ym);
    if (!path || !path[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the model with -m MODEL");
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) /* bad input (exit 2), not an I/O failure */
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no such model file (-m)", path);
    enum deft_status s = deft_model_load(path, &ym->m);
    if (s) return s;
    struct deft_graph *g = ym->m->graph;
    if ((s = det_class_names_from_meta(g, path, &ym->classes, &ym->n_classes))) return s;
    if ((s = yolo_heads_from_meta(deft_graph_get_meta(g, "yolo"), path, &ym->heads, &ym->net_w, &ym->net_h, &ym->pre)))
        return s;
    ym->input = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    int outs[8];
    int no = deft_graph_outputs(g, outs, 8);
    if (ym->input < 0 || no != ym->heads.n)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the graph has %d outputs for %d YOLO heads", path, no, ym->heads.n);
    deft_graph_set_training(g, false);
    struct deft_shape in = deft_shape4(batch, 3, ym->net_h, ym->net_w);
    if ((s = deft_graph_reshape_input(g, ym->input, &in))) return deft_wrap_error(s, "%s", path);
    for (int i = 0; i < no; i++) {
        ym->out[i] = outs[i];
        const struct deft_value *v = deft_graph_value(g, outs[i]);
        int64_t want = (int64_t)ym->heads.head[i].n_anchors * (5 + ym->n_classes);
        if (v->shape.ndim != 4 || v->shape.d[1] != want || v->shape.d[2] != ym->heads.head[i].gh ||
            v->shape.d[3] != ym->heads.head[i].gw)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: output %d does not fit head %d (%d anchors, %d classes)", path,
                                  i, i, ym->heads.head[i].n_anchors, ym->n_classes);
    }
    ym->batch = batch;
    return DEFT_OK;
}

enum deft_status yolo_model_open(struct yolo_model *ym, const char *path, int batch, const struct deft_task_args *a) {
    enum deft_status s = yolo_model_read(ym, path, batch);
    if (s) return s;
    struct deft_graph *g = ym->m->graph;
    for (int i = 0; i < ym->heads.n; i++) {
        ym->outs[i] = deft_malloc((size_t)deft_shape_numel(&deft_graph_value(g, ym->out[i])->shape) * sizeof(float));
        if (!ym->outs[i]) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    if ((s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = a->backend, .device_index = a->gpu_index,
                                                             .amp = a->amp}, &ym->rt)) ||
        (s = deft_model_copy_to_runtime(ym->m->file, ym->rt, 0, NULL)))
        return deft_wrap_error(s, "%s", path);
    return DEFT_OK;
}

void yolo_eval_loader_opts(const struct yolo_model *ym, int threads, struct deft_det_loader_opts *lo) {
    deft_det_loader_opts_defaults(lo);
    lo->batch_size = ym->batch;
    lo->num_threads = threads > 0 ? threads : 2;
    lo->shuffle = false;
    lo->drop_last = false;
    deft_det_transform_defaults(&lo->transform);
    lo->transform.net_w = ym->net_w;
    lo->transform.net_h = ym->net_h;
    lo->transform.train = false;
    lo->transform.pre = ym->pre;
}

enum deft_status yolo_model_run(struct yolo_model *ym, const float *images, int n) {
    size_t per = (size_t)3 * (size_t)ym->net_h * (size_t)ym->net_w;
    float *in = deft_runtime_data(ym->rt, ym->input);
    if (!in) return deft_set_error(DEFT_ERR_SHAPE, "the model's input buffer is not addressable");
    memcpy(in, images, (size_t)n * per * sizeof(float));
    for (int i = n; i < ym->batch; i++) memcpy(in + (size_t)i * per, images, per * sizeof(float));
    enum deft_status s = deft_runtime_run(ym->rt);
    for (int i = 0; !s && i < ym->heads.n; i++) {
        const struct deft_value *v = deft_graph_value(deft_runtime_graph(ym->rt), ym->out[i]);
        s = deft_runtime_read(ym->rt, ym->out[i], ym->outs[i], (size_t)deft_shape_numel(&v->shape));
    }
    return s;
}

void yolo_model_close(struct yolo_model *ym) {
    deft_runtime_free(ym->rt);
    deft_model_free(ym->m);
    for (int i = 0; ym->classes && i < ym->n_classes; i++) deft_free(ym->classes[i]);
    deft_free(ym->classes);
    for (int i = 0; i < DEFT_YOLO_HEADS; i++) deft_free(ym->outs[i]);
    memset(ym, 0, sizeof *ym);
}

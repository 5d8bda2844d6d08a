/* frcnn_model.c - a Faster R-CNN graph run with its host step: the backbone
 * and RPN nodes, the proposal layer on the host, the RoIs set, the RCNN
 * nodes; detections per image; a whole dataset detected and scored.
 * Validation during training, evaluate and inference all run through here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "deft/det_priors.h"
#include "deft/faster_rcnn_model.h"
#include "tasks/common/det_detect_all.h"
#include "tasks/faster_rcnn/frcnn_run.h"

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int nums(const cJSON *o, const char *k, double **out) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    *out = n > 0 && n <= 64 ? deft_malloc((size_t)n * sizeof **out) : NULL;
    if (!*out) return 0;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        (*out)[i] = cJSON_IsNumber(v) ? v->valuedouble : 0;
    }
    return n;
}

/* Anchors and the host-step parameters of a saved model from its metadata. */
static enum deft_status params_from_meta(struct frcnn_model *fm, const char *json, const char *path) {
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!o) return deft_set_error(DEFT_ERR_FORMAT, "%s: not a deft Faster R-CNN model (no \"faster_rcnn\" metadata)", path);
    fm->net_w = (int)num(o, "net_w", 0);
    fm->net_h = (int)num(o, "net_h", 0);
    fm->n_scales = nums(o, "scales", &fm->scales);
    fm->n_ratios = nums(o, "ratios", &fm->ratios);
    double *rs = NULL;
    int nrs = nums(o, "regr_std", &rs);
    fm->p.rpn_std = (float)num(o, "rpn_std", 1);
    for (int k = 0; k < 4; k++) fm->p.regr_std[k] = nrs == 4 ? (float)rs[k] : k < 2 ? 10.0f : 5.0f;
    deft_free(rs);
    deft_preprocess_init(&fm->pre, DEFT_PREPROCESS_CAFFE);
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(o, "preprocess");
    if (cJSON_IsObject(pp)) {
        fm->pre.mode = (enum deft_preprocess_mode)(int)num(pp, "mode", fm->pre.mode);
        fm->pre.bgr = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pp, "bgr"));
        fm->pre.divisor = (float)num(pp, "divisor", fm->pre.divisor);
        double *m = NULL, *sd = NULL;
        if (nums(pp, "mean", &m) == 3)
            for (int c = 0; c < 3; c++) fm->pre.mean[c] = (float)m[c];
        if (nums(pp, "std", &sd) == 3)
            for (int c = 0; c < 3; c++) fm->pre.std[c] = (float)sd[c];
        deft_free(m);
        deft_free(sd);
    }
    cJSON_Delete(o);
    if (fm->net_w < 32 || fm->net_h < 32 || fm->net_w % 16 || fm->net_h % 16 || !fm->n_scales || !fm->n_ratios)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: Faster R-CNN metadata gives a %dx%d input, %d scales, %d ratios",
                              path, fm->net_w, fm->net_h, fm->n_scales, fm->n_ratios);
    return DEFT_OK;
}

static enum deft_status make_anchors(struct frcnn_model *fm) {
    int fw = fm->net_w / DEFT_FRCNN_STRIDE, fh = fm->net_h / DEFT_FRCNN_STRIDE;
    long na = deft_frcnn_anchor_count(fm->n_scales, fm->n_ratios, fh, fw);
    if (na < 1 || !(fm->anchors = deft_malloc((size_t)na * 4 * sizeof(float))))
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory for the anchors");
    enum deft_status s = deft_frcnn_anchors(fm->scales, fm->n_scales, fm->ratios, fm->n_ratios, DEFT_FRCNN_STRIDE, fh,
                                            fw, fm->anchors, na, &na);
    fm->p.net_w = fm->net_w, fm->p.net_h = fm->net_h, fm->p.fmap_w = fw, fm->p.fmap_h = fh;
    fm->p.n_cell_anchors = fm->n_scales * fm->n_ratios;
    fm->p.anchors = fm->anchors, fm->p.n_anchors = na;
    fm->p.n_classes = fm->n_classes;
    return s;
}

/* Inference mode, inputs at batch x rois, the split node, buffers, runtime. */
static enum deft_status prepare(struct frcnn_model *fm, int batch, int rois, const char *backend, int gpu, int amp) {
    struct deft_graph *g = fm->g;
    deft_graph_set_training(g, false);
    fm->in_img = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    fm->in_rois = deft_graph_find_role(g, DEFT_FRCNN_ROLE_ROIS);
    static const char *const roles[4] = {DEFT_FRCNN_ROLE_RPN_CLS, DEFT_FRCNN_ROLE_RPN_REGR, DEFT_FRCNN_ROLE_CLS,
                                         DEFT_FRCNN_ROLE_REGR};
    for (int i = 0; i < 4; i++)
        if ((fm->out[i] = deft_graph_find_role(g, roles[i])) < 0)
            return deft_set_error(DEFT_ERR_FORMAT, "not a Faster R-CNN graph: no '%s' output", roles[i]);
    if (fm->in_img < 0 || fm->in_rois < 0) return deft_set_error(DEFT_ERR_FORMAT, "not a Faster R-CNN graph: no rois input");
    enum deft_status s;
    struct deft_shape in = deft_shape4(batch, 3, fm->net_h, fm->net_w);
    struct deft_shape rs = {.ndim = 2, .d = {(int64_t)batch * rois, 5}};
    if ((s = deft_graph_reshape_input(g, fm->in_img, &in)) || (s = deft_graph_reshape_input(g, fm->in_rois, &rs)))
        return s;
    const struct deft_value *rc = deft_graph_value(g, fm->out[0]);
    if (rc->shape.d[1] != fm->p.n_cell_anchors || rc->shape.d[2] != fm->p.fmap_h || rc->shape.d[3] != fm->p.fmap_w ||
        deft_graph_value(g, fm->out[2])->shape.d[1] != fm->n_classes + 1)
        return deft_set_error(DEFT_ERR_FORMAT, "the Faster R-CNN graph does not fit its anchors or %d classes", fm->n_classes);
    fm->split = -1;
    for (int n = 0; n < deft_graph_num_nodes(g) && fm->split < 0; n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        for (int i = 0; i < nd->n_in; i++)
            if (nd->in[i] == fm->in_rois) fm->split = n;
    }
    fm->batch = batch, fm->rois = rois;
    for (int i = 0; i < 4; i++)
        if (!(fm->outs[i] = deft_malloc((size_t)deft_shape_numel(&deft_graph_value(g, fm->out[i])->shape) * sizeof(float))))
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    fm->roi_buf = deft_malloc((size_t)batch * rois * 5 * sizeof(float));
    fm->props = deft_malloc((size_t)batch * rois * 4 * sizeof(float));
    fm->n_props = deft_calloc((size_t)batch, sizeof(int));
    if (!fm->roi_buf || !fm->props || !fm->n_props) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    return deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend, .device_index = gpu, .amp = amp},
                               &fm->rt);
}

enum deft_status frcnn_model_open(struct frcnn_model *fm, const char *path, int batch, int rois,
                                  const struct deft_task_args *a) {
    memset(fm, 0, sizeof *fm);
    struct stat st;
    if (!path || stat(path, &st) || !S_ISREG(st.st_mode))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no such model file (-m)", path ? path : "(none)");
    enum deft_status s = deft_model_load(path, &fm->file);
    if (s) return s;
    if ((s = deft_graph_clone(fm->file->graph, &fm->g))) return s;
    if ((s = det_class_names_from_meta(fm->g, path, &fm->classes, &fm->n_classes))) return s;
    if ((s = params_from_meta(fm, deft_graph_get_meta(fm->g, "faster_rcnn"), path)) || (s = make_anchors(fm)))
        return s;
    if ((s = prepare(fm, batch, rois, a->backend, a->gpu_index, a->amp))) return deft_wrap_error(s, "%s", path);
    return deft_model_copy_to_runtime(fm->file->file, fm->rt, 0, NULL);
}

enum deft_status frcnn_model_from_graph(struct frcnn_model *fm, const struct deft_graph *g,
                                        const struct frcnn_setup *f, int batch, int rois, const char *backend) {
    memset(fm, 0, sizeof *fm);
    enum deft_status s = deft_graph_clone(g, &fm->g);
    if (s) return s;
    fm->net_w = f->net_w, fm->net_h = f->net_h, fm->n_classes = f->n_classes, fm->pre = f->pre;
    fm->p = f->p;
    const struct deft_frcnn_anchor_box *ab = &f->cfg.model_config.anchor_box_config;
    fm->n_scales = ab->n_scale, fm->n_ratios = ab->n_ratio;
    fm->scales = deft_malloc((size_t)ab->n_scale * sizeof(double));
    fm->ratios = deft_malloc((size_t)ab->n_ratio * sizeof(double));
    fm->classes = deft_calloc((size_t)f->n_classes, sizeof *fm->classes);
    if (!fm->scales || !fm->ratios || !fm->classes) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    memcpy(fm->scales, ab->scale, (size_t)ab->n_scale * sizeof(double));
    memcpy(fm->ratios, ab->ratio, (size_t)ab->n_ratio * sizeof(double));
    for (int k = 0; k < f->n_classes; k++)
        if (!(fm->classes[k] = deft_strdup(f->cfg.dataset_config.class_names[k])))
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if ((s = make_anchors(fm))) return s;
    return prepare(fm, batch, rois, backend, 0, 0);
}

enum deft_status frcnn_model_sync(struct frcnn_model *fm, struct deft_runtime *from) {
    const struct deft_graph *gf = deft_runtime_graph(from);
    for (int v = 0; v < deft_graph_num_values(fm->g); v++) {
        const struct deft_value *val = deft_graph_value(fm->g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        const float *src = deft_runtime_data(from, deft_graph_find_value(gf, val->name));
        float *dst = deft_runtime_data(fm->rt, v);
        if (!src || !dst) return deft_set_error(DEFT_ERR_INVALID_ARG, "validation: no weights for '%s'", val->name);
        memcpy(dst, src, (size_t)deft_shape_numel(&val->shape) * sizeof(float));
    }
    deft_runtime_params_changed(fm->rt);
    return DEFT_OK;
}

/* RPN recall: ground-truth boxes of image i with a proposal at IoU >= 0.5. */
static void count_recall(struct frcnn_model *fm, int i, const struct deft_det_batch *gt) {
    for (int k = 0; k < gt->n_boxes[i]; k++) {
        const struct deft_box *b = &gt->boxes[gt->box_start[i] + k];
        const float g[4] = {b->x1 * fm->net_w, b->y1 * fm->net_h, b->x2 * fm->net_w, b->y2 * fm->net_h};
        bool hit = false;
        for (int r = 0; r < fm->n_props[i] && !hit; r++) hit = frcnn_iou(fm->props + ((size_t)i * fm->rois + r) * 4, g) >= 0.5f;
        fm->recall_hits += hit;
        fm->recall_gt++;
    }
}

enum deft_status frcnn_model_run_on(struct frcnn_model *fm, struct deft_runtime *rt, const float *images, int n,
                                    const struct frcnn_prop_cfg *c, const struct deft_det_batch *gt) {
    size_t per = (size_t)3 * fm->net_h * fm->net_w;
    if (n < 1 || n > fm->batch) return deft_set_error(DEFT_ERR_INVALID_ARG, "%d images for a batch of %d", n, fm->batch);
    float *in = deft_runtime_data(rt, fm->in_img);
    if (!in) return deft_set_error(DEFT_ERR_SHAPE, "the model's input buffer is not addressable");
    memcpy(in, images, (size_t)n * per * sizeof(float));
    for (int i = n; i < fm->batch; i++) memcpy(in + (size_t)i * per, images, per * sizeof(float));
    enum deft_status s = deft_runtime_run_range(rt, 0, fm->split);
    for (int i = 0; !s && i < 2; i++)
        s = deft_runtime_read(rt, fm->out[i], fm->outs[i],
                              (size_t)deft_shape_numel(&deft_graph_value(fm->g, fm->out[i])->shape));
    struct frcnn_prop_cfg pc = *c;
    if (pc.max_boxes > fm->rois) pc.max_boxes = fm->rois;
    size_t hw = (size_t)fm->p.fmap_h * fm->p.fmap_w, A = (size_t)fm->p.n_cell_anchors;
    for (int b = 0; !s && b < fm->batch; b++) {
        float *pb = fm->props + (size_t)b * fm->rois * 4;
        s = frcnn_proposals(&fm->p, &pc, fm->outs[0] + b * A * hw, fm->outs[1] + b * 4 * A * hw, pb, NULL, &fm->n_props[b]);
        for (int r = 0; !s && r < fm->rois; r++) { /* rows past the proposals: the whole input, ignored */
            float *row = fm->roi_buf + ((size_t)b * fm->rois + r) * 5;
            const float whole[4] = {0, 0, (float)fm->net_w, (float)fm->net_h};
            row[0] = (float)b;
            memcpy(row + 1, r < fm->n_props[b] ? pb + 4 * r : whole, 4 * sizeof(float));
        }
        if (!s && gt && b < n && b < gt->n) count_recall(fm, b, gt);
    }
    if (!s) s = deft_runtime_set_input(rt, fm->in_rois, fm->roi_buf, (size_t)fm->batch * fm->rois * 5);
    if (!s) s = deft_runtime_run_range(rt, fm->split, deft_graph_num_nodes(fm->g));
    for (int i = 2; !s && i < 4; i++)
        s = deft_runtime_read(rt, fm->out[i], fm->outs[i],
                              (size_t)deft_shape_numel(&deft_graph_value(fm->g, fm->out[i])->shape));
    return s;
}

enum deft_status frcnn_model_run(struct frcnn_model *fm, const float *images, int n, const struct frcnn_prop_cfg *c,
                                 const struct deft_det_batch *gt) {
    return frcnn_model_run_on(fm, fm->rt, images, n, c, gt);
}

enum deft_status frcnn_model_detect(const struct frcnn_model *fm, int b, float conf, float nms_iou, int max_dets,
                                    const struct deft_letterbox *lb, struct deft_box **boxes, int *n) {
    size_t r0 = (size_t)b * fm->rois, C = (size_t)fm->n_classes;
    enum deft_status s = frcnn_detect(&fm->p, fm->outs[2] + r0 * (C + 1), fm->outs[3] + r0 * 4 * C,
                                      fm->props + r0 * 4, fm->n_props[b], conf, nms_iou, max_dets, boxes, n);
    for (int i = 0; !s && lb && i < *n; i++) deft_letterbox_box_to_image(lb, &(*boxes)[i]);
    return s;
}

void frcnn_model_close(struct frcnn_model *fm) {
    deft_runtime_free(fm->rt);
    deft_graph_free(fm->g);
    deft_model_free(fm->file);
    for (int i = 0; fm->classes && i < fm->n_classes; i++) deft_free(fm->classes[i]);
    deft_free(fm->classes);
    for (int i = 0; i < 4; i++) deft_free(fm->outs[i]);
    deft_free(fm->roi_buf), deft_free(fm->props), deft_free(fm->n_props);
    deft_free(fm->anchors), deft_free(fm->scales), deft_free(fm->ratios);
    memset(fm, 0, sizeof *fm);
}

void frcnn_eval_loader_opts(const struct frcnn_model *fm, int threads, struct deft_det_loader_opts *lo) {
    deft_det_loader_opts_defaults(lo);
    lo->batch_size = fm->batch;
    lo->num_threads = threads > 0 ? threads : 2;
    lo->shuffle = false;
    lo->drop_last = false;
    deft_det_transform_defaults(&lo->transform);
    lo->transform.net_w = fm->net_w;
    lo->transform.net_h = fm->net_h;
    lo->transform.train = false;
    lo->transform.pre = fm->pre;
}

/* The model, proposal and NMS settings behind det_detect_all's hooks. */
struct frcnn_det { struct frcnn_model *fm; const struct frcnn_prop_cfg *c; const struct frcnn_nms *nms; };
static enum deft_status run_batch(void *ctx, const struct deft_det_batch *b) {
    const struct frcnn_det *e = ctx;
    return frcnn_model_run(e->fm, b->images, b->n, e->c, b);
}
static enum deft_status detect_item(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n) {
    const struct frcnn_det *e = ctx;
    return frcnn_model_detect(e->fm, i, e->nms->conf, e->nms->iou, e->nms->max_dets, &b->lb[i], boxes, n);
}

enum deft_status frcnn_detect_all(struct frcnn_model *fm, const struct deft_det_dataset *ds,
                                  const struct frcnn_prop_cfg *c, const struct frcnn_nms *nms, int threads,
                                  const char *dump_dir, struct det_dets *d, FILE *progress) {
    struct deft_det_loader_opts lo;
    frcnn_eval_loader_opts(fm, threads, &lo);
    fm->recall_hits = fm->recall_gt = 0;
    struct frcnn_det e = {fm, c, nms};
    struct det_detector net = {.ctx = &e, .run = run_batch, .detect = detect_item};
    return det_detect_all(&lo, ds, &net, dump_dir, d, progress);
}

enum deft_status frcnn_score(const struct frcnn_setup *f, const struct deft_det_dataset *gt, const struct det_dets *d,
                             enum deft_ap_mode mode, double conf, double *map, struct deft_det_metrics **first) {
    const struct deft_frcnn_evaluation_config *ec = &f->cfg.evaluation_config;
    int n = mode == DEFT_AP_COCO || ec->n_ious < 1 ? 1 : ec->n_ious;
    double sum = 0;
    *first = NULL;
    for (int i = 0; i < n; i++) {
        double iou = ec->n_ious >= 1 ? ec->ious[i] : ec->gt_matching_iou_threshold > 0 ? ec->gt_matching_iou_threshold : 0.5;
        struct deft_det_metrics *m = NULL;
        enum deft_status s = det_score(gt, d, mode, iou, conf, &m);
        if (s) return s;
        sum += m->map;
        if (i == 0) *first = m;
        else deft_det_metrics_free(m);
    }
    *map = sum / n;
    return DEFT_OK;
}

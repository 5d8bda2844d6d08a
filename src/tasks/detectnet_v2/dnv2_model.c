/* dnv2_model.c - a saved DetectNet_v2 opened to run (evaluate, inference),
 * and one image's outputs clustered into boxes in its own pixels. Validation
 * during training, evaluate and inference all cluster through
 * dnv2_detect_image, so they cannot disagree. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "deft/graph.h"
#include "tasks/detectnet_v2/dnv2_task.h"

enum deft_status dnv2_detect_image(const struct dnv2_grid *g, const struct dnv2_cluster_config *c, int n_classes,
                                   const float *cov, const float *bbox, int b, const struct deft_letterbox *lb,
                                   struct deft_box **boxes, int *n) {
    size_t plane = (size_t)g->gh * (size_t)g->gw;
    enum deft_status s = dnv2_cluster(g, c, cov + (size_t)b * (size_t)n_classes * plane,
                                      bbox + (size_t)b * 4 * (size_t)n_classes * plane, boxes, NULL, n);
    if (s) return s;
    for (int i = 0; i < *n; i++) deft_letterbox_box_to_image(lb, &(*boxes)[i]);
    return DEFT_OK;
}

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static enum deft_status coding_from_meta(struct dnv2_model *dm, const char *path) {
    const char *json = deft_graph_get_meta(dm->m->graph, "detectnet_v2");
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a trained deft DetectNet_v2 model (no \"detectnet_v2\" "
                              "metadata)", path);
    }
    dm->net_w = (int)num(o, "net_w", 0);
    dm->net_h = (int)num(o, "net_h", 0);
    int stride = (int)num(o, "stride", DEFT_DNV2_STRIDE);
    dm->grid = (struct dnv2_grid){dm->net_w, dm->net_h, stride > 0 ? dm->net_w / stride : 0,
                                  stride > 0 ? dm->net_h / stride : 0, (float)num(o, "scale", 35.0),
                                  (float)num(o, "offset", 0.5)};
    struct deft_preprocess dflt;
    deft_preprocess_init(&dflt, DEFT_PREPROCESS_CUSTOM);
    det_preprocess_from_json(o, &dflt, &dm->pre);
    cJSON_Delete(o);
    enum deft_status s = dnv2_grid_check(&dm->grid);
    return s ? deft_wrap_error(s, "%s: DetectNet_v2 metadata", path) : DEFT_OK;
}

/* The two outputs by role, their shapes checked against the classes and grid. */
static enum deft_status find_outputs(struct dnv2_model *dm, const char *path) {
    struct deft_graph *g = dm->m->graph;
    dm->out_cov = deft_graph_find_role(g, DEFT_DNV2_ROLE_COV);
    dm->out_bbox = deft_graph_find_role(g, DEFT_DNV2_ROLE_BBOX);
    int outs[4];
    if ((dm->out_cov < 0 || dm->out_bbox < 0) && deft_graph_outputs(g, outs, 4) == 2) /* roles lost: builder order */
        dm->out_cov = outs[0], dm->out_bbox = outs[1];
    if (dm->out_cov < 0 || dm->out_bbox < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the graph has no output_cov / output_bbox outputs", path);
    const int want[2] = {dm->n_classes, 4 * dm->n_classes}, v[2] = {dm->out_cov, dm->out_bbox};
    for (int i = 0; i < 2; i++) {
        const struct deft_shape *sh = &deft_graph_value(g, v[i])->shape;
        if (sh->ndim != 4 || sh->d[1] != want[i] || sh->d[2] != dm->grid.gh || sh->d[3] != dm->grid.gw)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: %s is not [N, %d, %d, %d] for %d classes", path,
                                  i ? "output_bbox" : "output_cov", want[i], dm->grid.gh, dm->grid.gw, dm->n_classes);
    }
    return DEFT_OK;
}

enum deft_status dnv2_model_read(struct dnv2_model *dm, const char *path, int batch) {
    memset(dm, 0, sizeof *dm);
    dm->out_cov = dm->out_bbox = -1;
    if (!path || !path[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the model with -m MODEL");
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no such model file (-m)", path);
    enum deft_status s = deft_model_load(path, &dm->m);
    if (s) return s;
    struct deft_graph *g = dm->m->graph;
    if ((s = det_class_names_from_meta(g, path, &dm->classes, &dm->n_classes)) || (s = coding_from_meta(dm, path)))
        return s;
    dm->input = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    if (dm->input < 0) return deft_set_error(DEFT_ERR_FORMAT, "%s: the graph has no image input", path);
    deft_graph_set_training(g, false);
    struct deft_shape in = deft_shape4(batch, 3, dm->net_h, dm->net_w);
    if ((s = deft_graph_reshape_input(g, dm->input, &in))) return deft_wrap_error(s, "%s", path);
    dm->batch = batch;
    return find_outputs(dm, path);
}

enum deft_status dnv2_model_open(struct dnv2_model *dm, const char *path, int batch, const struct deft_task_args *a) {
    enum deft_status s = dnv2_model_read(dm, path, batch);
    if (s) return s;
    size_t plane = (size_t)batch * (size_t)dm->n_classes * (size_t)dm->grid.gh * (size_t)dm->grid.gw;
    dm->cov = deft_malloc(plane * sizeof(float));
    dm->bbox = deft_malloc(4 * plane * sizeof(float));
    if (!dm->cov || !dm->bbox) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if ((s = deft_runtime_create(dm->m->graph, &(struct deft_runtime_opts){.backend = a->backend,
                                                                        .device_index = a->gpu_index, .amp = a->amp},
                                 &dm->rt)) ||
        (s = deft_model_copy_to_runtime(dm->m->file, dm->rt, 0, NULL)))
        return deft_wrap_error(s, "%s", path);
    return DEFT_OK;
}

void dnv2_eval_loader_opts(const struct dnv2_model *dm, int threads, struct deft_det_loader_opts *lo) {
    deft_det_loader_opts_defaults(lo);
    lo->batch_size = dm->batch;
    lo->num_threads = threads > 0 ? threads : 2;
    lo->shuffle = false;
    lo->drop_last = false;
    deft_det_transform_defaults(&lo->transform);
    lo->transform.net_w = dm->net_w;
    lo->transform.net_h = dm->net_h;
    lo->transform.train = false;
    lo->transform.pre = dm->pre;
}

enum deft_status dnv2_model_run(struct dnv2_model *dm, const float *images, int n) {
    size_t per = (size_t)3 * (size_t)dm->net_h * (size_t)dm->net_w;
    float *in = deft_runtime_data(dm->rt, dm->input);
    if (!in) return deft_set_error(DEFT_ERR_SHAPE, "the model's input buffer is not addressable");
    memcpy(in, images, (size_t)n * per * sizeof(float));
    for (int i = n; i < dm->batch; i++) memcpy(in + (size_t)i * per, images, per * sizeof(float));
    size_t plane = (size_t)dm->batch * (size_t)dm->n_classes * (size_t)dm->grid.gh * (size_t)dm->grid.gw;
    enum deft_status s = deft_runtime_run(dm->rt);
    if (!s) s = deft_runtime_read(dm->rt, dm->out_cov, dm->cov, plane);
    if (!s) s = deft_runtime_read(dm->rt, dm->out_bbox, dm->bbox, 4 * plane);
    return s;
}

void dnv2_model_close(struct dnv2_model *dm) {
    deft_runtime_free(dm->rt);
    deft_model_free(dm->m);
    det_class_names_free(dm->classes, dm->n_classes);
    deft_free(dm->cov);
    deft_free(dm->bbox);
    memset(dm, 0, sizeof *dm);
}

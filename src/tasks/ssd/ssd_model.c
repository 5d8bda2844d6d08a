/* ssd_model.c - a saved SSD model opened for evaluation and inference: its
 * classes, priors and preprocessing from the metadata, a runtime, and the
 * twelve head outputs copied to the host after each batch. */
#include <string.h>
#include <sys/stat.h>
#include "deft/graph.h"
#include "tasks/ssd/ssd_task.h"

static enum deft_status check_outputs(struct ssd_model *sm, const char *path, const int *outs, int no) {
    int L = sm->geom.n_maps;
    if (sm->input < 0 || no != 2 * L)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the graph has %d outputs, %s has %d (conf and loc x %d)", path, no,
                              sm->geom.sigmoid ? "a RetinaNet" : "an SSD", 2 * L, L);
    struct deft_graph *g = sm->m->graph;
    for (int i = 0; i < no; i++) {
        const struct deft_ssd_map *m = &sm->geom.maps[i % L];
        const struct deft_value *v = deft_graph_value(g, outs[i]);
        int64_t want = (int64_t)m->boxes * (i < L ? sm->geom.n_classes : 4);
        if (v->shape.ndim != 4 || v->shape.d[1] != want || v->shape.d[2] != m->h || v->shape.d[3] != m->w)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: output %d (%s) does not fit map %d (%dx%d, %d boxes)", path, i,
                                  v->name, i % L, m->h, m->w, m->boxes);
        sm->out[i] = outs[i];
    }
    return DEFT_OK;
}

enum deft_status ssd_model_read(struct ssd_model *sm, const char *path, int batch) {
    memset(sm, 0, sizeof *sm);
    if (!path || !path[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the model with -m MODEL");
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no such model file (-m)", path);
    enum deft_status s = deft_model_load(path, &sm->m);
    if (s) return s;
    struct deft_graph *g = sm->m->graph;
    if ((s = det_class_names_from_meta(g, path, &sm->classes, &sm->n_classes))) return s;
    if ((s = ssd_geom_from_meta(deft_graph_get_meta(g, "ssd"), path, sm->n_classes, &sm->geom, &sm->pre))) return s;
    sm->input = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    deft_graph_set_training(g, false);
    struct deft_shape in = deft_shape4(batch, 3, sm->geom.net_h, sm->geom.net_w);
    if (sm->input >= 0 && (s = deft_graph_reshape_input(g, sm->input, &in))) return deft_wrap_error(s, "%s", path);
    int outs[16];
    int no = deft_graph_outputs(g, outs, 16);
    if ((s = check_outputs(sm, path, outs, no))) return s;
    sm->batch = batch;
    return DEFT_OK;
}

enum deft_status ssd_model_open(struct ssd_model *sm, const char *path, int batch, const struct deft_task_args *a) {
    enum deft_status s = ssd_model_read(sm, path, batch);
    if (s) return s;
    struct deft_graph *g = sm->m->graph;
    for (int i = 0; i < 2 * sm->geom.n_maps; i++) {
        sm->outs[i] = deft_malloc((size_t)deft_shape_numel(&deft_graph_value(g, sm->out[i])->shape) * sizeof(float));
        if (!sm->outs[i]) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    if ((s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = a->backend, .device_index = a->gpu_index,
                                                             .amp = a->amp}, &sm->rt)) ||
        (s = deft_model_copy_to_runtime(sm->m->file, sm->rt, 0, NULL)))
        return deft_wrap_error(s, "%s", path);
    return DEFT_OK;
}

enum deft_status ssd_model_run(struct ssd_model *sm, const float *images, int n) {
    size_t per = (size_t)3 * (size_t)sm->geom.net_h * (size_t)sm->geom.net_w;
    float *in = deft_runtime_data(sm->rt, sm->input);
    if (!in) return deft_set_error(DEFT_ERR_SHAPE, "the model's input buffer is not addressable");
    memcpy(in, images, (size_t)n * per * sizeof(float));
    for (int i = n; i < sm->batch; i++) memcpy(in + (size_t)i * per, images, per * sizeof(float));
    enum deft_status s = deft_runtime_run(sm->rt);
    for (int i = 0; !s && i < 2 * sm->geom.n_maps; i++) {
        const struct deft_value *v = deft_graph_value(deft_runtime_graph(sm->rt), sm->out[i]);
        s = deft_runtime_read(sm->rt, sm->out[i], sm->outs[i], (size_t)deft_shape_numel(&v->shape));
    }
    return s;
}

void ssd_model_close(struct ssd_model *sm) {
    deft_runtime_free(sm->rt);
    deft_model_free(sm->m);
    for (int i = 0; sm->classes && i < sm->n_classes; i++) deft_free(sm->classes[i]);
    deft_free(sm->classes);
    for (int i = 0; i < 2 * sm->geom.n_maps; i++) deft_free(sm->outs[i]);
    ssd_geom_free(&sm->geom);
    memset(sm, 0, sizeof *sm);
}

enum deft_status ssd_model_check_net(const struct ssd_model *sm, const char *path, bool retina) {
    if (sm->geom.sigmoid == retina) return DEFT_OK;
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s is a %s model: run it with deft %s", path,
                          sm->geom.sigmoid ? "RetinaNet" : "SSD", ssd_net_name(sm->geom.sigmoid));
}

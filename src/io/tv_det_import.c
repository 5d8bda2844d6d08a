/* tv_det_import.c - io module: a torchvision detection state dict into the
 * matching deft graph (tv_detection.h). Every PARAM/STATE of the graph must
 * be in the file under torchvision's name with the same shape; the class count
 * comes from the classification head. */
#include <stdio.h>
#include <string.h>
#include "deft/io.h"
#include "deft/tv_detection.h"
#include "io_impl.h"

/* The classification head's first layer and the anchors per cell it serves. */
static const struct { const char *arch, *tensor; int anchors; } heads[] = {
    {"ssd300_vgg16", "head.classification_head.module_list.0.weight", 4},
    {"retinanet_resnet50_fpn", "head.classification_head.cls_logits.weight", 9},
    {"fasterrcnn_resnet50_fpn", "roi_heads.box_predictor.cls_score.weight", 1}, /* Linear [classes, 1024] */
    {"ssdlite320_mobilenet_v3_large", "head.classification_head.module_list.0.1.weight", 6},
    {"fasterrcnn_mobilenet_v3_large_fpn", "roi_heads.box_predictor.cls_score.weight", 1},
};

/* mobilenet_v3 detectors: the last conv's width says reduced_tail (480) or not (960). */
static const struct { const char *arch, *tensor; } last_convs[] = {
    {"ssdlite320_mobilenet_v3_large", "backbone.features.1.3.0.weight"},
    {"fasterrcnn_mobilenet_v3_large_fpn", "backbone.body.16.0.weight"},
};

static bool reduced_tail(const char *arch, const struct deft_safetensors *st) {
    for (size_t i = 0; arch && i < sizeof last_convs / sizeof *last_convs; i++) {
        if (strcmp(last_convs[i].arch, arch)) continue;
        const struct deft_tensor *t = deft_safetensors_find(st, last_convs[i].tensor);
        return t && t->shape.ndim == 4 && t->shape.d[0] == 480;
    }
    return false;
}

int deft_tv_det_num_classes(const char *arch, const struct deft_safetensors *st) {
    for (size_t i = 0; arch && i < sizeof heads / sizeof *heads; i++) {
        if (strcmp(heads[i].arch, arch)) continue;
        const struct deft_tensor *t = deft_safetensors_find(st, heads[i].tensor);
        if (!t || (t->shape.ndim != 4 && t->shape.ndim != 2) || t->shape.d[0] % heads[i].anchors) return 0;
        return (int)(t->shape.d[0] / heads[i].anchors);
    }
    return 0;
}

/* The graph's weights from st, converted to f32, into a new tensor list. */
static enum deft_status take_weights(const struct deft_graph *g, const struct deft_safetensors *st, const char *name,
                                     struct deft_safetensors **out) {
    enum deft_status s = deft_io_tensor_list_new("deft", out);
    for (int v = 0; !s && v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        const struct deft_tensor *t = deft_safetensors_find(st, val->name);
        char a[64], b[64];
        if (!t) {
            s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no tensor '%s' (not a %s state dict?)", name, val->name,
                               deft_graph_get_meta(g, "arch"));
            break;
        }
        if (!deft_shape_equal(&t->shape, &val->shape)) {
            s = deft_set_error(DEFT_ERR_SHAPE, "%s: tensor '%s' is %s, the model wants %s", name, val->name,
                               deft_shape_str(&t->shape, a, sizeof a), deft_shape_str(&val->shape, b, sizeof b));
            break;
        }
        struct deft_tensor *f = NULL;
        if ((s = deft_tensor_create(DEFT_F32, &val->shape, &f))) break;
        if ((s = deft_tensor_to_f32(t, f->data))) {
            deft_tensor_free(f);
            break;
        }
        s = deft_io_tensor_list_add(*out, val->name, f);
    }
    for (int i = 0; !s && i < st->n_tensors; i++) {
        const char *nm = st->tensors[i].name;
        size_t l = strlen(nm);
        if (deft_graph_find_value(g, nm) < 0 && !(l >= 19 && !strcmp(nm + l - 19, "num_batches_tracked")))
            deft_log(DEFT_LOG_WARN, "%s: tensor '%s' is not used", name, nm);
    }
    if (s) {
        deft_safetensors_free(*out);
        *out = NULL;
    }
    return s;
}

enum deft_status deft_tv_det_import(const struct deft_safetensors *st, const char *name,
                                    const struct deft_tv_det_opts *o, struct deft_model **out) {
    *out = NULL;
    struct deft_tv_det_opts b = *o;
    if (!b.num_classes) b.num_classes = deft_tv_det_num_classes(o->arch, st);
    b.reduced_tail = reduced_tail(o->arch, st);
    if (b.num_classes < 2)
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no %s classification head found", name, o->arch);
    struct deft_model *m = deft_calloc(1, sizeof *m);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = deft_tv_det_build(&b, &m->graph);
    if (!s) s = deft_model_set_class_names(m->graph, NULL, b.num_classes);
    if (!s) s = take_weights(m->graph, st, name, &m->file);
    if (s) {
        deft_model_free(m);
        return s;
    }
    *out = m;
    return DEFT_OK;
}

/* yolo_setup.c - a yolo_v4 spec resolved into what training and evaluation
 * need: heads with normalised anchors, the loss settings, the transforms
 * (one letterbox and one preprocessing everywhere) and the datasets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "tasks/common/det_split.h"
#include "tasks/yolo_v4/yolo_task.h"

static const int head_stride[DEFT_YOLO_HEADS] = {32, 16, 8};

void yolo_heads_resize(struct yolo_heads *h, int net_w, int net_h) {
    for (int i = 0; i < h->n; i++) {
        h->head[i].gw = net_w / head_stride[i];
        h->head[i].gh = net_h / head_stride[i];
        h->head[i].anchors = &h->anchors[i][0][0];
    }
}

static enum deft_status check_network(const struct yolo_setup *y) {
    const struct deft_yolo_v4_config *c = &y->cfg.yolov4_config;
    bool want_tiny = !strcmp(y->network, "yolo_v4_tiny");
    if (want_tiny && !c->is_tiny)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: yolov4_config.arch is '%s' but yolo_v4_tiny takes arch: \"cspdarknet_tiny\" "
                              "(or run `deft yolo_v4` with this spec)", y->cfg.source_path, c->arch);
    if (!want_tiny && c->is_tiny)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: yolov4_config.arch is '%s': run `deft yolo_v4_tiny` with this spec, as TAO does",
                              y->cfg.source_path, c->arch);
    return DEFT_OK;
}

static void resolve_heads(struct yolo_setup *y) {
    const struct deft_yolo_v4_config *c = &y->cfg.yolov4_config;
    const double ext[DEFT_YOLO_HEADS] = {c->big_grid_xy_extend, c->mid_grid_xy_extend, c->small_grid_xy_extend};
    struct yolo_heads *h = &y->heads;
    h->n = c->n_heads;
    for (int i = 0; i < h->n; i++) {
        h->head[i].n_anchors = c->n_anchors[i];
        h->head[i].xy_extend = (float)ext[i];
        for (int k = 0; k < c->n_anchors[i]; k++) {
            h->anchors[i][k][0] = (float)(c->anchors[i][k].w / y->net_w);
            h->anchors[i][k][1] = (float)(c->anchors[i][k].h / y->net_h);
        }
    }
    yolo_heads_resize(h, y->net_w, y->net_h);
}

static enum deft_status resolve_loss(struct yolo_setup *y) {
    const struct deft_yolo_v4_config *c = &y->cfg.yolov4_config;
    const struct deft_yolo_dataset_config *d = &y->cfg.dataset_config;
    y->loss = deft_yolo_loss_config_default(d->n_classes);
    y->loss.box_matching_iou = (float)c->box_matching_iou;
    y->loss.neutral_box_iou = (float)c->matching_neutral_box_iou;
    y->loss.loc_weight = (float)c->loss_loc_weight;
    y->loss.neg_obj_weight = (float)c->loss_neg_obj_weights;
    y->loss.cls_weight = (float)c->loss_class_weights;
    y->loss.label_smoothing = (float)c->label_smoothing;
    y->loss.focal_alpha = (float)c->focal_loss_alpha;
    y->loss.focal_gamma = (float)c->focal_loss_gamma;
    const struct deft_yolo_class_weighting_config *cw = &y->cfg.class_weighting_config;
    if (cw->n_class_weighting == 0) return DEFT_OK;
    y->class_weights = deft_malloc((size_t)d->n_classes * sizeof(float));
    if (!y->class_weights) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < d->n_classes; k++) y->class_weights[k] = 1.0f;
    for (int i = 0; i < cw->n_class_weighting; i++)
        for (int k = 0; k < d->n_classes; k++)
            if (!strcasecmp(cw->class_weighting[i].key, d->class_names[k]))
                y->class_weights[k] = (float)cw->class_weighting[i].value;
    y->loss.class_weights = y->class_weights;
    return DEFT_OK;
}

/* TAO's YOLOv4 preprocessing: BGR, minus the ImageNet means, no scaling;
 * augmentation_config.image_mean (keys r, g, b) replaces the means. */
static void resolve_preprocess(struct yolo_setup *y) {
    deft_preprocess_init(&y->pre, DEFT_PREPROCESS_CAFFE);
    const struct deft_yolo_augmentation_config *ac = &y->cfg.augmentation_config;
    for (int i = 0; i < ac->n_image_mean; i++) {
        const char *k = ac->image_mean[i].key;
        int ch = !strcmp(k, "b") ? 0 : !strcmp(k, "g") ? 1 : !strcmp(k, "r") ? 2 : -1;
        if (ch >= 0) y->pre.mean[ch] = (float)ac->image_mean[i].value;
    }
}

enum deft_status yolo_setup_load(struct yolo_setup *y, const struct deft_task_args *a, const char *network) {
    memset(y, 0, sizeof *y);
    y->network = network;
    if (!a->spec && !a->spec_text) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the experiment spec with -e SPEC");
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64];
    int n = 0;
    if (a->seed_set) { /* first, so an explicit --set of the same key wins */
        snprintf(seed, sizeof seed, "random_seed=%lld", a->seed);
        sets[n++] = seed;
    }
    for (int i = 0; i < a->n_overrides && n < DEFT_TASK_MAX_SETS + 1; i++) sets[n++] = a->overrides[i];
    enum deft_status s = a->spec ? deft_yolo_config_load(a->spec, sets, n, &y->cfg)
                                 : deft_yolo_config_parse(a->spec_text, strlen(a->spec_text), "(train --data)",
                                                          DEFT_SPEC_FORMAT_PROTOTXT, sets, n, &y->cfg);
    if (s) return s;
    y->cfg_loaded = true;
    if ((s = check_network(y))) return s;
    y->net_w = y->cfg.augmentation_config.output_width;
    y->net_h = y->cfg.augmentation_config.output_height;
    resolve_heads(y);
    resolve_preprocess(y);
    return resolve_loss(y);
}

void yolo_setup_free(struct yolo_setup *y) {
    if (y->cfg_loaded) deft_yolo_config_free(&y->cfg);
    deft_free(y->class_weights);
    memset(y, 0, sizeof *y);
}

enum deft_status yolo_read_split(const struct yolo_setup *y, bool validation, struct deft_det_dataset *ds) {
    return det_spec_read_split(&y->cfg.dataset_config, y->cfg.source_path, validation, ds);
}

void yolo_transform(const struct yolo_setup *y, bool train, struct deft_det_transform *t) {
    const struct deft_yolo_augmentation_config *ac = &y->cfg.augmentation_config;
    deft_det_transform_defaults(t);
    t->net_w = y->net_w;
    t->net_h = y->net_h;
    t->train = train;
    t->pre = y->pre;
    t->aug.hue = (float)ac->hue;
    t->aug.saturation = (float)ac->saturation;
    t->aug.exposure = (float)ac->exposure;
    t->aug.jitter = (float)ac->jitter;
    t->aug.hflip_prob = (float)ac->horizontal_flip;
    t->aug.vflip_prob = (float)ac->vertical_flip;
    t->aug.mosaic_prob = (float)ac->mosaic_prob;
    t->aug.mosaic_min_ratio = (float)ac->mosaic_min_ratio;
    /* the trainer's graph has one input size: a changing size is not trained yet (README) */
    t->aug.randomize_input_shape_period = 0;
    t->aug.include_difficult = y->cfg.dataset_config.include_difficult_in_training;
}

/* ---- model metadata ---------------------------------------------------------- */

char *yolo_meta_json(const struct yolo_setup *y) {
    cJSON *o = cJSON_CreateObject();
    cJSON *heads = cJSON_AddArrayToObject(o, "heads");
    for (int i = 0; i < y->heads.n; i++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "stride", head_stride[i]);
        cJSON_AddNumberToObject(h, "xy_extend", y->heads.head[i].xy_extend);
        cJSON *an = cJSON_AddArrayToObject(h, "anchors");
        for (int k = 0; k < y->heads.head[i].n_anchors; k++) {
            cJSON *p = cJSON_CreateArray();
            cJSON_AddItemToArray(p, cJSON_CreateNumber(y->heads.anchors[i][k][0]));
            cJSON_AddItemToArray(p, cJSON_CreateNumber(y->heads.anchors[i][k][1]));
            cJSON_AddItemToArray(an, p);
        }
        cJSON_AddItemToArray(heads, h);
    }
    cJSON_AddNumberToObject(o, "net_w", y->net_w);
    cJSON_AddNumberToObject(o, "net_h", y->net_h);
    cJSON_AddStringToObject(o, "resize", "letterbox");
    det_preprocess_to_json(o, &y->pre);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = txt ? deft_strdup(txt) : NULL;
    free(txt);
    return out;
}

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

enum deft_status yolo_heads_from_meta(const char *json, const char *path, struct yolo_heads *h, int *net_w,
                                      int *net_h, struct deft_preprocess *pre) {
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    const cJSON *heads = o ? cJSON_GetObjectItemCaseSensitive(o, "heads") : NULL;
    memset(h, 0, sizeof *h);
    if (!cJSON_IsArray(heads) || cJSON_GetArraySize(heads) < 1 || cJSON_GetArraySize(heads) > DEFT_YOLO_HEADS) {
        cJSON_Delete(o);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a deft YOLOv4 model (no \"yolo\" heads in its metadata)", path);
    }
    h->n = cJSON_GetArraySize(heads);
    for (int i = 0; i < h->n; i++) {
        const cJSON *hd = cJSON_GetArrayItem(heads, i);
        const cJSON *an = cJSON_GetObjectItemCaseSensitive(hd, "anchors");
        int na = cJSON_IsArray(an) ? cJSON_GetArraySize(an) : 0;
        if (na < 1 || na > DEFT_YOLO_MAX_ANCHORS) {
            cJSON_Delete(o);
            return deft_set_error(DEFT_ERR_FORMAT, "%s: head %d of the YOLO metadata has %d anchors", path, i, na);
        }
        h->head[i].n_anchors = na;
        h->head[i].xy_extend = (float)num(hd, "xy_extend", 0);
        for (int k = 0; k < na; k++) {
            const cJSON *p = cJSON_GetArrayItem(an, k);
            h->anchors[i][k][0] = (float)(cJSON_IsNumber(cJSON_GetArrayItem(p, 0)) ? cJSON_GetArrayItem(p, 0)->valuedouble : 0);
            h->anchors[i][k][1] = (float)(cJSON_IsNumber(cJSON_GetArrayItem(p, 1)) ? cJSON_GetArrayItem(p, 1)->valuedouble : 0);
        }
    }
    *net_w = (int)num(o, "net_w", 416);
    *net_h = (int)num(o, "net_h", 416);
    struct deft_preprocess caffe;
    deft_preprocess_init(&caffe, DEFT_PREPROCESS_CAFFE);
    det_preprocess_from_json(o, &caffe, pre);
    cJSON_Delete(o);
    if (*net_w < 32 || *net_h < 32 || *net_w % 32 || *net_h % 32)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: YOLO metadata gives a %dx%d input", path, *net_w, *net_h);
    yolo_heads_resize(h, *net_w, *net_h);
    return DEFT_OK;
}

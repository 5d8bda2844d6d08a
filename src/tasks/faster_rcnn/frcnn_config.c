/* frcnn_config.c - a faster_rcnn spec resolved into what training,
 * evaluation and inference need: input size, classes, the RPN anchors, the
 * host steps' parameters, the preprocessing, the datasets and the model
 * metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/det_priors.h"
#include "deft/faster_rcnn_model.h"
#include "tasks/faster_rcnn/frcnn_run.h"

static struct frcnn_prop_cfg prop(int top_n, int max_boxes, double iou) {
    return (struct frcnn_prop_cfg){top_n > 0 ? top_n : 6000, max_boxes > 0 ? max_boxes : 300,
                                   (float)(iou > 0 ? iou : 0.7)};
}

/* TAO's preprocessing: BGR (image_channel_order 'bgr') minus image_channel_mean. */
static enum deft_status resolve_preprocess(struct frcnn_setup *f) {
    const struct deft_frcnn_input_image *ii = &f->cfg.model_config.input_image_config;
    deft_preprocess_init(&f->pre, DEFT_PREPROCESS_CAFFE);
    f->pre.bgr = !ii->image_channel_order || strcmp(ii->image_channel_order, "rgb") != 0;
    for (int i = 0; i < ii->n_image_channel_mean; i++) {
        const char *k = ii->image_channel_mean[i].key;
        int ch = !strcmp(k, "b") ? 0 : !strcmp(k, "g") ? 1 : !strcmp(k, "r") ? 2 : -1;
        if (ch >= 0) f->pre.mean[f->pre.bgr ? ch : 2 - ch] = (float)ii->image_channel_mean[i].value;
    }
    if (ii->image_scaling_factor != 0 && ii->image_scaling_factor != 1.0)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: model_config.input_image_config.image_scaling_factor %g: "
                              "deft's Faster R-CNN takes 1.0 only (not finished)", f->cfg.source_path,
                              ii->image_scaling_factor);
    if (ii->image_type == DEFT_FRCNN_GRAY_SCALE)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: image_type GRAY_SCALE: deft's Faster R-CNN takes RGB only "
                              "(not finished)", f->cfg.source_path);
    return DEFT_OK;
}

static enum deft_status resolve_sizes(struct frcnn_setup *f) {
    const struct deft_frcnn_config *c = &f->cfg;
    if (!c->input_w || !c->input_h)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: size_min: deft's Faster R-CNN trains at one input size "
                              "(give size_height_width; not finished)", c->source_path);
    if (c->input_w % DEFT_FRCNN_STRIDE || c->input_h % DEFT_FRCNN_STRIDE || c->model_config.rpn_stride != DEFT_FRCNN_STRIDE)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: input %dx%d and rpn_stride %d: deft's Faster R-CNN needs "
                              "rpn_stride 16 and sizes that are multiples of 16", c->source_path, c->input_w,
                              c->input_h, c->model_config.rpn_stride);
    f->net_w = c->input_w;
    f->net_h = c->input_h;
    int n = c->dataset_config.n_classes;
    if (n < 2 || strcmp(c->dataset_config.class_names[n - 1], "background"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no object classes in target_class_mapping", c->source_path);
    f->n_classes = n - 1;
    return DEFT_OK;
}

static enum deft_status resolve_params(struct frcnn_setup *f) {
    const struct deft_frcnn_config *c = &f->cfg;
    const struct deft_frcnn_anchor_box *ab = &c->model_config.anchor_box_config;
    const struct deft_frcnn_training_config *tc = &c->training_config;
    int fw = f->net_w / DEFT_FRCNN_STRIDE, fh = f->net_h / DEFT_FRCNN_STRIDE;
    long na = deft_frcnn_anchor_count(ab->n_scale, ab->n_ratio, fh, fw);
    if (na < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no anchors (anchor_box_config)", c->source_path);
    if (!(f->anchors = deft_malloc((size_t)na * 4 * sizeof(float)))) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = deft_frcnn_anchors(ab->scale, ab->n_scale, ab->ratio, ab->n_ratio, DEFT_FRCNN_STRIDE, fh, fw,
                                            f->anchors, na, &na);
    if (s) return s;
    struct frcnn_params *p = &f->p;
    *p = (struct frcnn_params){.net_w = f->net_w, .net_h = f->net_h, .fmap_w = fw, .fmap_h = fh,
                               .n_cell_anchors = ab->n_scale * ab->n_ratio, .n_classes = f->n_classes,
                               .anchors = f->anchors, .n_anchors = na,
                               .rpn_std = (float)(tc->std_scaling > 0 ? tc->std_scaling : 1.0),
                               .rpn_min_overlap = (float)tc->rpn_min_overlap, .rpn_max_overlap = (float)tc->rpn_max_overlap,
                               .rpn_mini_batch = tc->rpn_mini_batch > 0 ? tc->rpn_mini_batch : 256,
                               .cls_min_overlap = (float)tc->classifier_min_overlap,
                               .cls_max_overlap = (float)tc->classifier_max_overlap,
                               .rois_per_image = c->model_config.roi_mini_batch > 0 ? c->model_config.roi_mini_batch : 256,
                               .gt_as_roi = tc->gt_as_roi, .lambda_rpn_class = tc->lambda_rpn_class,
                               .lambda_rpn_regr = tc->lambda_rpn_regr, .lambda_cls_class = tc->lambda_cls_class,
                               .lambda_cls_regr = tc->lambda_cls_regr};
    for (int k = 0; k < 4; k++) p->regr_std[k] = (float)(tc->regr_std[k] > 0 ? tc->regr_std[k] : k < 2 ? 10 : 5);
    f->train_prop = prop(tc->rpn_pre_nms_top_N, tc->rpn_nms_max_boxes, tc->rpn_nms_overlap_threshold);
    const struct deft_frcnn_evaluation_config *ec = &c->evaluation_config;
    f->eval_prop = prop(ec->rpn_pre_nms_top_N, ec->rpn_nms_max_boxes, ec->rpn_nms_overlap_threshold);
    const struct deft_frcnn_inference_config *ic = &c->inference_config;
    f->infer_prop = prop(ic->rpn_pre_nms_top_N, ic->rpn_nms_max_boxes, ic->rpn_nms_overlap_threshold);
    return DEFT_OK;
}

enum deft_status frcnn_setup_load(struct frcnn_setup *f, const struct deft_task_args *a) {
    memset(f, 0, sizeof *f);
    if (!a->spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the experiment spec with -e SPEC");
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64];
    int n = 0;
    if (a->seed_set) {
        snprintf(seed, sizeof seed, "random_seed=%lld", a->seed);
        sets[n++] = seed;
    }
    for (int i = 0; i < a->n_overrides && n < DEFT_TASK_MAX_SETS + 1; i++) sets[n++] = a->overrides[i];
    enum deft_status s = deft_frcnn_config_load(a->spec, sets, n, &f->cfg);
    if (s) return s;
    f->loaded = true;
    if ((s = resolve_sizes(f)) || (s = resolve_preprocess(f))) return s;
    return resolve_params(f);
}

void frcnn_setup_free(struct frcnn_setup *f) {
    if (f->loaded) deft_frcnn_config_free(&f->cfg);
    deft_free(f->anchors);
    memset(f, 0, sizeof *f);
}

enum deft_status frcnn_read_split(const struct frcnn_setup *f, bool validation, struct deft_det_dataset *ds) {
    const struct deft_frcnn_dataset_config *d = &f->cfg.dataset_config;
    const struct deft_frcnn_data_source *src = validation ? &d->validation_data_source : d->data_sources;
    int n = validation ? (d->has_validation_data_source ? 1 : 0) : d->n_data_sources;
    memset(ds, 0, sizeof *ds);
    if (n == 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config has no %s (validation_fold needs TAO's "
                              "TFRecords: give validation_data_source)", f->cfg.source_path,
                              validation ? "validation_data_source" : "data_sources");
    struct deft_det_source *ss = deft_calloc((size_t)n, sizeof *ss);
    struct deft_det_class_map *map = deft_calloc((size_t)d->n_target_class_mapping + 1, sizeof *map);
    enum deft_status s = ss && map ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !s; i++) {
        if (!src[i].label_directory_path[0])
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: dataset_config.%s %d has no label_directory_path: deft "
                               "reads KITTI label files directly (no TFRecords)", f->cfg.source_path,
                               validation ? "validation_data_source" : "data_sources", i);
        else
            ss[i] = (struct deft_det_source){DEFT_DET_KITTI, src[i].image_directory_path[0] ? src[i].image_directory_path : NULL,
                                             src[i].label_directory_path,
                                             src[i].split_list_path[0] ? src[i].split_list_path : NULL};
    }
    if (!s) {
        for (int i = 0; i < d->n_target_class_mapping; i++)
            map[i] = (struct deft_det_class_map){d->target_class_mapping[i].key, d->target_class_mapping[i].value};
        struct deft_det_read_opts o;
        deft_det_read_opts_init(&o);
        o.mapping = map;
        o.n_mapping = d->n_target_class_mapping;
        o.include_difficult = true;
        if (d->image_extension[0]) o.image_extension = d->image_extension;
        s = deft_det_read(ss, n, &o, ds);
    }
    deft_free(ss);
    deft_free(map);
    if (s) return s;
    if (ds->n_classes != f->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the data has %d classes but the spec maps to %d",
                              f->cfg.source_path, ds->n_classes, f->n_classes);
    for (int k = 0; k < f->n_classes; k++)
        if (strcmp(ds->class_names[k], f->cfg.dataset_config.class_names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: class %d is '%s' in the data but '%s' in the spec",
                                  f->cfg.source_path, k, ds->class_names[k], f->cfg.dataset_config.class_names[k]);
    return DEFT_OK;
}

void frcnn_transform(const struct frcnn_setup *f, bool train, struct deft_det_transform *t) {
    const struct deft_frcnn_spatial *sp = &f->cfg.augmentation_config.spatial_augmentation;
    deft_det_transform_defaults(t);
    t->net_w = f->net_w;
    t->net_h = f->net_h;
    t->train = train;
    t->pre = f->pre;
    if (train && f->cfg.training_config.enable_augmentation) {
        t->aug.hflip_prob = (float)sp->hflip_probability;
        t->aug.vflip_prob = (float)sp->vflip_probability;
    }
    t->aug.include_difficult = true;
}

enum deft_ap_mode frcnn_ap_mode(const struct frcnn_setup *f) {
    return f->cfg.evaluation_config.use_voc07_11point_metric ? DEFT_AP_SAMPLE : DEFT_AP_INTEGRATE;
}

static void add_nums(cJSON *o, const char *k, const double *v, int n) {
    cJSON *a = cJSON_AddArrayToObject(o, k);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
}

char *frcnn_meta_json(const struct frcnn_setup *f) {
    cJSON *o = cJSON_CreateObject();
    const struct deft_frcnn_anchor_box *ab = &f->cfg.model_config.anchor_box_config;
    cJSON_AddNumberToObject(o, "net_w", f->net_w);
    cJSON_AddNumberToObject(o, "net_h", f->net_h);
    add_nums(o, "scales", ab->scale, ab->n_scale);
    add_nums(o, "ratios", ab->ratio, ab->n_ratio);
    cJSON_AddNumberToObject(o, "rpn_std", f->p.rpn_std);
    const double rs[4] = {f->p.regr_std[0], f->p.regr_std[1], f->p.regr_std[2], f->p.regr_std[3]};
    add_nums(o, "regr_std", rs, 4);
    cJSON_AddStringToObject(o, "resize", "letterbox");
    cJSON *pre = cJSON_AddObjectToObject(o, "preprocess");
    cJSON_AddBoolToObject(pre, "bgr", f->pre.bgr);
    cJSON_AddNumberToObject(pre, "divisor", f->pre.divisor);
    const double m[3] = {f->pre.mean[0], f->pre.mean[1], f->pre.mean[2]}, sd[3] = {f->pre.std[0], f->pre.std[1], f->pre.std[2]};
    add_nums(pre, "mean", m, 3);
    add_nums(pre, "std", sd, 3);
    cJSON_AddNumberToObject(pre, "mode", f->pre.mode);
    cJSON *pr = cJSON_AddObjectToObject(o, "proposals");
    cJSON_AddNumberToObject(pr, "rpn_pre_nms_top_N", f->infer_prop.pre_nms_top_n);
    cJSON_AddNumberToObject(pr, "rpn_nms_max_boxes", f->infer_prop.max_boxes);
    cJSON_AddNumberToObject(pr, "rpn_nms_overlap_threshold", f->infer_prop.nms_iou);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = txt ? deft_strdup(txt) : NULL;
    free(txt);
    return out;
}

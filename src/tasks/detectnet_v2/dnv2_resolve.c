/* dnv2_resolve.c - a detectnet_v2 experiment resolved for the engines: the
 * spec's per-class rasterizer, cost and clustering maps as dnv2_post.h's
 * structs in the network's class order, TAO's preprocessing (RGB / 255),
 * its augmentation fields on deft's detection transform, and the data read
 * with class ids in that order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include "tasks/detectnet_v2/dnv2_task.h"

void dnv2_cluster_class_from_spec(const struct deft_dnv2_clustering_config *c, struct dnv2_cluster_class *k) {
    k->algo = c->clustering_algorithm == DEFT_DNV2_NMS      ? DNV2_CLUSTER_NMS
              : c->clustering_algorithm == DEFT_DNV2_HYBRID ? DNV2_CLUSTER_HYBRID
                                                            : DNV2_CLUSTER_DBSCAN;
    k->coverage_threshold = (float)c->coverage_threshold;
    k->minimum_bounding_box_height = (float)c->minimum_bounding_box_height;
    k->dbscan_eps = (float)c->dbscan_eps;
    k->dbscan_min_samples = (float)c->dbscan_min_samples;
    k->dbscan_confidence_threshold = (float)c->dbscan_confidence_threshold;
    k->nms_iou_threshold = (float)c->nms_iou_threshold;
    k->nms_confidence_threshold = (float)c->nms_confidence_threshold;
}

static void resolve_raster(struct dnv2_setup *d) {
    const struct deft_dnv2_config *c = &d->cfg;
    for (int k = 0; k < d->n_classes; k++) {
        const struct deft_dnv2_raster_class *r = &c->bbox_rasterizer_config.target_class_config[c->raster_of[k]].value;
        d->rcls[k] = (struct dnv2_raster_class){(float)r->cov_center_x, (float)r->cov_center_y, (float)r->cov_radius_x,
                                                (float)r->cov_radius_y, (float)r->bbox_min_radius};
    }
    d->raster = (struct dnv2_raster_config){.n_classes = d->n_classes, .cls = d->rcls,
                                            .deadzone_radius = (float)c->bbox_rasterizer_config.deadzone_radius,
                                            .mask_multiplier = 1.0f};
}

static void resolve_cost(struct dnv2_setup *d) {
    const struct deft_dnv2_cost_function_config *cf = &d->cfg.cost_function_config;
    for (int k = 0; k < d->n_classes; k++) {
        const struct deft_dnv2_target_class *t = &cf->target_classes[k];
        struct dnv2_cost_class *cc = &d->ccls[k];
        cc->class_weight = (float)t->class_weight;
        cc->coverage_foreground_weight = (float)t->coverage_foreground_weight;
        for (int o = 0; o < t->n_objectives; o++) {
            int i = !strcmp(t->objectives[o].name, "bbox") ? DNV2_OBJ_BBOX : DNV2_OBJ_COV;
            cc->initial_weight[i] = (float)t->objectives[o].initial_weight;
            cc->weight_target[i] = (float)t->objectives[o].weight_target;
        }
    }
    d->cost = (struct dnv2_cost_config){.n_classes = d->n_classes, .cls = d->ccls,
                                        .enable_autoweighting = cf->enable_autoweighting,
                                        .min_objective_weight = (float)cf->min_objective_weight,
                                        .max_objective_weight = (float)cf->max_objective_weight,
                                        .cov_is_logits = false};
}

static void resolve_cluster(struct dnv2_setup *d) {
    const struct deft_dnv2_config *c = &d->cfg;
    for (int k = 0; k < d->n_classes; k++)
        dnv2_cluster_class_from_spec(
            &c->postprocessing_config.target_class_config[c->postproc_of[k]].value.clustering_config, &d->kcls[k]);
    d->cluster = (struct dnv2_cluster_config){.n_classes = d->n_classes, .cls = d->kcls};
}

/* What the engines do not do yet, refused before anything runs. */
static enum deft_status check_supported(const struct dnv2_setup *d) {
    const struct deft_dnv2_config *c = &d->cfg;
    if (c->augmentation_config.preprocessing.output_image_channel == 1)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: augmentation_config.preprocessing.output_image_channel: 1 "
                              "(grey input) is not finished yet for detectnet_v2 (issue 20): use 3",
                              c->source_path);
    for (int k = 0; k < d->n_classes; k++)
        if (d->kcls[k].algo == DNV2_CLUSTER_HYBRID)
            return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: postprocessing_config %s: clustering_algorithm HYBRID "
                                  "is an enum value TAO never implemented: use DBSCAN or NMS", c->source_path,
                                  c->class_names[k]);
    return DEFT_OK;
}

enum deft_status dnv2_setup_load(struct dnv2_setup *d, const struct deft_task_args *a) {
    memset(d, 0, sizeof *d);
    enum deft_status s = dnv2_load(a, &d->cfg);
    if (s) return s;
    d->cfg_loaded = true;
    const struct deft_dnv2_config *c = &d->cfg;
    d->n_classes = c->n_classes;
    d->net_w = c->augmentation_config.preprocessing.output_image_width;
    d->net_h = c->augmentation_config.preprocessing.output_image_height;
    const struct deft_dnv2_bbox_objective *bo = &c->model_config.objective_set.bbox;
    d->grid = (struct dnv2_grid){d->net_w, d->net_h, d->net_w / DEFT_DNV2_STRIDE, d->net_h / DEFT_DNV2_STRIDE,
                                 (float)(bo->scale > 0 ? bo->scale : 35.0), (float)bo->offset};
    if ((s = dnv2_grid_check(&d->grid)))
        return deft_wrap_error(s, "%s: augmentation_config.preprocessing / model_config.objective_set.bbox",
                               c->source_path);
    size_t k = (size_t)(d->n_classes > 0 ? d->n_classes : 1);
    d->rcls = deft_calloc(k, sizeof *d->rcls);
    d->ccls = deft_calloc(k, sizeof *d->ccls);
    d->kcls = deft_calloc(k, sizeof *d->kcls);
    if (!d->rcls || !d->ccls || !d->kcls) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    resolve_raster(d);
    resolve_cost(d);
    resolve_cluster(d);
    /* TAO's DetectNet_v2 input: RGB, 0..1 (detectnet_v2/export/exporter.py: scale 1/255, no means) */
    deft_preprocess_init(&d->pre, DEFT_PREPROCESS_CUSTOM);
    d->pre.bgr = false;
    d->pre.divisor = 255.0f;
    for (int i = 0; i < 3; i++) d->pre.mean[i] = 0.0f, d->pre.std[i] = 1.0f;
    d->pre.channels = 3;
    return check_supported(d);
}

void dnv2_setup_free(struct dnv2_setup *d) {
    if (d->cfg_loaded) deft_dnv2_config_free(&d->cfg);
    deft_free(d->rcls);
    deft_free(d->ccls);
    deft_free(d->kcls);
    memset(d, 0, sizeof *d);
}

/* The dataset's class ids moved to the network's order; other classes' boxes dropped. */
static enum deft_status to_network_classes(const struct dnv2_setup *d, struct deft_det_dataset *ds) {
    int map[256];
    for (int j = 0; j < ds->n_classes && j < 256; j++) {
        map[j] = -1;
        for (int k = 0; k < d->n_classes; k++)
            if (!strcasecmp(ds->class_names[j], d->cfg.class_names[k])) map[j] = k;
    }
    if (ds->n_classes > 256) return deft_set_error(DEFT_ERR_INVALID_ARG, "more than 256 classes in the data");
    for (int i = 0; i < ds->n; i++) {
        struct deft_det_sample *sm = &ds->samples[i];
        int kept = 0;
        for (int b = 0; b < sm->n_boxes; b++) {
            struct deft_box x = sm->boxes[b];
            if (x.cls < 0 || x.cls >= ds->n_classes || map[x.cls] < 0) continue;
            x.cls = map[x.cls];
            x.difficult = false;
            sm->boxes[kept++] = x;
        }
        sm->n_boxes = kept;
    }
    char **names = deft_calloc((size_t)d->n_classes, sizeof *names);
    if (!names) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < d->n_classes; k++)
        if (!(names[k] = deft_strdup(d->cfg.class_names[k]))) {
            det_class_names_free(names, k);
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        }
    det_class_names_free(ds->class_names, ds->n_classes);
    ds->class_names = names;
    ds->n_classes = d->n_classes;
    return DEFT_OK;
}

enum deft_status dnv2_read_split(const struct dnv2_setup *d, bool validation, struct deft_det_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    struct dnv2_split sp;
    enum deft_status s = dnv2_resolve_split(&d->cfg, validation, &sp);
    if (!s && sp.n == 0 && !validation)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the data sources give no training images", d->cfg.source_path);
    if (s || sp.n == 0) {
        dnv2_split_free(&sp);
        return s;
    }
    const struct deft_dnv2_dataset_config *dc = &d->cfg.dataset_config;
    struct deft_det_class_map map[256];
    int nm = dc->n_target_class_mapping < 256 ? dc->n_target_class_mapping : 256;
    for (int i = 0; i < nm; i++)
        map[i] = (struct deft_det_class_map){dc->target_class_mapping[i].key, dc->target_class_mapping[i].value};
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    o.mapping = nm ? map : NULL;
    o.n_mapping = nm;
    o.include_difficult = true; /* TAO's DetectNet_v2 trains on every box */
    if (*dc->image_extension) o.image_extension = dc->image_extension;
    s = deft_det_read(sp.src, sp.n, &o, ds);
    dnv2_split_free(&sp);
    return s ? s : to_network_classes(d, ds);
}

void dnv2_transform(const struct dnv2_setup *d, bool train, struct deft_det_transform *t) {
    const struct deft_dnv2_augmentation_config *ac = &d->cfg.augmentation_config;
    const struct deft_dnv2_spatial_aug *sa = &ac->spatial_augmentation;
    const struct deft_dnv2_color_aug *ca = &ac->color_augmentation;
    deft_det_transform_defaults(t);
    t->net_w = d->net_w;
    t->net_h = d->net_h;
    t->train = train;
    t->pre = d->pre;
    t->aug.include_difficult = true;
    t->aug.hflip_prob = (float)sa->hflip_probability;
    t->aug.vflip_prob = (float)sa->vflip_probability;
    /* TAO zooms by U(zoom_min, zoom_max) and translates by up to translate_max pixels; deft's
     * jitter moves each side by up to that fraction: half the zoom range plus the translation */
    double zoom = fmax(fabs(1.0 - (sa->zoom_min > 0 ? sa->zoom_min : 1.0)), fabs((sa->zoom_max > 0 ? sa->zoom_max : 1.0) - 1.0));
    double shift = fmax(sa->translate_max_x / d->net_w, sa->translate_max_y / d->net_h);
    t->aug.jitter = (float)fmin(0.5, zoom / 2 + shift);
    /* hue_rotation_max is in degrees, deft's hue a fraction of 180; saturation and contrast
     * become scale ranges [1/(1+x), 1+x] */
    t->aug.hue = (float)fmin(1.0, ca->hue_rotation_max / 180.0);
    t->aug.saturation = (float)(1.0 + ca->saturation_shift_max);
    t->aug.exposure = (float)(1.0 + ca->contrast_scale_max);
}

char *dnv2_meta_json(const struct dnv2_setup *d) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "net_w", d->net_w);
    cJSON_AddNumberToObject(o, "net_h", d->net_h);
    cJSON_AddNumberToObject(o, "stride", DEFT_DNV2_STRIDE);
    cJSON_AddNumberToObject(o, "scale", d->grid.scale);
    cJSON_AddNumberToObject(o, "offset", d->grid.offset);
    cJSON_AddStringToObject(o, "resize", "letterbox");
    det_preprocess_to_json(o, &d->pre);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = txt ? deft_strdup(txt) : NULL;
    free(txt);
    return out;
}

/* ssd_resolve.c - an ssd spec resolved for a run (maps, priors, loss,
 * preprocessing, transforms), the same geometry written into and read back
 * from a model's metadata, and the detections of one image in its pixels.
 * Validation, evaluate and inference all decode through ssd_detect_image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/det_ops.h"
#include "deft/yolo.h"
#include "tasks/ssd/ssd_task.h"

void ssd_geom_free(struct ssd_geom *g) {
    deft_free(g->priors);
    memset(g, 0, sizeof *g);
}

/* Priors of layers p (g->n_maps of them) for the input; maps from the same layers. */
static enum deft_status geom_build(struct ssd_geom *g, const struct deft_ssd_layer_params *p, bool two_boxes,
                                   bool clip, const double var[4]) {
    for (int l = 0; l < g->n_maps; l++)
        g->maps[l] = (struct deft_ssd_map){p[l].fmap_h, p[l].fmap_w,
                                           (p[l].n_octaves > 1 ? p[l].n_octaves : 1) *
                                               deft_ssd_boxes_per_cell(p[l].ar, p[l].n_ar, two_boxes)};
    long n = deft_ssd_prior_count(p, g->n_maps, two_boxes);
    g->priors = deft_malloc((size_t)(n > 0 ? n : 1) * 8 * sizeof(float));
    if (!g->priors) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    return deft_ssd_priors(p, g->n_maps, g->net_w, g->net_h, two_boxes, clip, var, g->priors, n, &g->n_priors);
}

/* TAO's SSD preprocessing: BGR minus the ImageNet means; image_mean (r, g, b) replaces them. */
static void resolve_preprocess(struct ssd_setup *s) {
    deft_preprocess_init(&s->pre, DEFT_PREPROCESS_CAFFE);
    const struct deft_ssd_augmentation_config *ac = &s->cfg.augmentation_config;
    for (int i = 0; i < ac->n_image_mean; i++) {
        const char *k = ac->image_mean[i].key;
        int ch = !strcmp(k, "b") ? 0 : !strcmp(k, "g") ? 1 : !strcmp(k, "r") ? 2 : -1;
        if (ch >= 0) s->pre.mean[ch] = (float)ac->image_mean[i].value;
    }
}

enum deft_status ssd_setup_load(struct ssd_setup *s, const struct deft_task_args *a, bool retina) {
    memset(s, 0, sizeof *s);
    if (!a->spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the experiment spec with -e SPEC");
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64];
    int n = 0;
    if (a->seed_set) { /* first, so an explicit --set of the same key wins */
        snprintf(seed, sizeof seed, "random_seed=%lld", a->seed);
        sets[n++] = seed;
    }
    for (int i = 0; i < a->n_overrides && n < DEFT_TASK_MAX_SETS + 1; i++) sets[n++] = a->overrides[i];
    enum deft_status st = retina ? deft_retinanet_config_load(a->spec, sets, n, &s->cfg)
                                 : deft_ssd_config_load(a->spec, sets, n, &s->cfg);
    if (st) return st;
    s->cfg_loaded = true;
    s->retina = retina;
    if (s->cfg.is_dssd)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: dssd_config: DSSD is %s (give ssd_config)", s->cfg.source_path,
                              DEFT_SSD_NOT_FINISHED);
    const struct deft_ssd_net_config *nc = &s->cfg.ssd_config;
    s->geom.net_w = s->cfg.augmentation_config.output_width;
    s->geom.net_h = s->cfg.augmentation_config.output_height;
    s->geom.n_classes = s->cfg.dataset_config.n_classes + 1;
    s->geom.n_maps = s->cfg.n_layers;
    s->geom.sigmoid = retina;
    struct deft_ssd_layer_params p[DEFT_SSD_LAYERS];
    deft_ssd_config_layers(&s->cfg, p);
    if ((st = geom_build(&s->geom, p, nc->two_boxes_for_ar1, nc->clip_boxes, s->cfg.variances))) return st;
    s->loss = deft_ssd_loss_config_default();
    s->loss.alpha = (float)nc->alpha;
    s->loss.neg_pos_ratio = (float)nc->neg_pos_ratio;
    s->loss.pos_iou = (float)nc->pos_iou_thresh;
    s->loss.neg_iou = (float)nc->neg_iou_thresh;
    s->focal = (struct deft_retinanet_loss_config){(float)nc->loss_loc_weight, (float)nc->focal_loss_alpha,
                                                   (float)nc->focal_loss_gamma, (float)nc->pos_iou_thresh,
                                                   (float)nc->neg_iou_thresh};
    resolve_preprocess(s);
    return DEFT_OK;
}

void ssd_setup_free(struct ssd_setup *s) {
    if (s->cfg_loaded) deft_ssd_config_free(&s->cfg);
    ssd_geom_free(&s->geom);
    memset(s, 0, sizeof *s);
}

/* TAO's SSD photometric and geometric augmentation mapped onto deft's
 * detection loader: flip, hue (degrees), saturation [1-s, 1+s] as the
 * loader's [1/(1+s), 1+s], brightness as an exposure factor; the random crop
 * and zoom-out (expand) are approximated by the loader's jitter (0.3). */
void ssd_transform(const struct ssd_setup *s, bool train, struct deft_det_transform *t) {
    const struct deft_ssd_augmentation_config *ac = &s->cfg.augmentation_config;
    deft_det_transform_defaults(t);
    t->net_w = s->geom.net_w;
    t->net_h = s->geom.net_h;
    t->train = train;
    t->pre = s->pre;
    t->aug.hue = (float)ac->hue / 180.0f;
    t->aug.saturation = 1.0f + (float)ac->saturation;
    t->aug.exposure = 1.0f + (float)ac->brightness / 255.0f;
    t->aug.jitter = 0.3f;
    t->aug.hflip_prob = (float)ac->random_flip;
    t->aug.include_difficult = s->cfg.dataset_config.include_difficult_in_training;
}

/* ---- metadata --------------------------------------------------------------- */

char *ssd_meta_json(const struct ssd_setup *s) {
    const struct deft_ssd_net_config *nc = &s->cfg.ssd_config;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "net_w", s->geom.net_w);
    cJSON_AddNumberToObject(o, "net_h", s->geom.net_h);
    cJSON_AddBoolToObject(o, "two_boxes_for_ar1", nc->two_boxes_for_ar1);
    cJSON_AddBoolToObject(o, "clip_boxes", nc->clip_boxes);
    cJSON_AddItemToObject(o, "variances", cJSON_CreateDoubleArray(s->cfg.variances, 4));
    if (s->retina) { /* RetinaNet: five layers of sub-octave anchors, sigmoid scores */
        cJSON_AddBoolToObject(o, "sigmoid", true);
        cJSON_AddNumberToObject(o, "n_anchor_levels", nc->n_anchor_levels);
    }
    cJSON *ls = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < s->cfg.n_layers; l++) {
        const struct deft_ssd_layer *L = &s->cfg.layers[l];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "h", L->fmap_h);
        cJSON_AddNumberToObject(j, "w", L->fmap_w);
        cJSON_AddNumberToObject(j, "scale", L->scale);
        cJSON_AddNumberToObject(j, "next_scale", L->next_scale);
        cJSON_AddItemToObject(j, "ar", cJSON_CreateDoubleArray(L->ar, L->n_ar));
        const double sv[4] = {L->step_h, L->step_w, L->offset_h, L->offset_w};
        cJSON_AddItemToObject(j, "step_offset", cJSON_CreateDoubleArray(sv, 4));
        cJSON_AddItemToArray(ls, j);
    }
    cJSON_AddStringToObject(o, "resize", "letterbox");
    cJSON *pre = cJSON_AddObjectToObject(o, "preprocess");
    cJSON_AddBoolToObject(pre, "bgr", s->pre.bgr);
    cJSON_AddNumberToObject(pre, "divisor", s->pre.divisor);
    const double m[3] = {s->pre.mean[0], s->pre.mean[1], s->pre.mean[2]}, sd[3] = {s->pre.std[0], s->pre.std[1], s->pre.std[2]};
    cJSON_AddItemToObject(pre, "mean", cJSON_CreateDoubleArray(m, 3));
    cJSON_AddItemToObject(pre, "std", cJSON_CreateDoubleArray(sd, 3));
    cJSON_AddNumberToObject(pre, "mode", s->pre.mode);
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

static int doubles(const cJSON *a, double *out, int max) {
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    for (int i = 0; i < n && i < max; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        out[i] = cJSON_IsNumber(v) ? v->valuedouble : 0;
    }
    return n;
}

enum deft_status ssd_geom_from_meta(const char *json, const char *path, int n_classes, struct ssd_geom *g,
                                    struct deft_preprocess *pre) {
    memset(g, 0, sizeof *g);
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    const cJSON *ls = o ? cJSON_GetObjectItemCaseSensitive(o, "layers") : NULL;
    double ar[DEFT_SSD_LAYERS][DEFT_SSD_MAX_AR], var[4] = {0.1, 0.1, 0.2, 0.2};
    struct deft_ssd_layer_params p[DEFT_SSD_LAYERS];
    enum deft_status s = DEFT_OK;
    g->sigmoid = o && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sigmoid"));
    g->n_maps = g->sigmoid ? DEFT_RETINANET_LAYERS : DEFT_SSD_LAYERS;
    int oct = g->sigmoid ? (int)num(o, "n_anchor_levels", 1) : 1;
    if (!cJSON_IsArray(ls) || cJSON_GetArraySize(ls) != g->n_maps || oct < 1 || oct > 8)
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: not a deft SSD or RetinaNet model (no \"ssd\" layers in its metadata)",
                           path);
    for (int l = 0; !s && l < g->n_maps; l++) {
        const cJSON *j = cJSON_GetArrayItem(ls, l);
        double so[4] = {0, 0, 0.5, 0.5};
        int na = doubles(cJSON_GetObjectItemCaseSensitive(j, "ar"), ar[l], DEFT_SSD_MAX_AR);
        doubles(cJSON_GetObjectItemCaseSensitive(j, "step_offset"), so, 4);
        p[l] = (struct deft_ssd_layer_params){(int)num(j, "h", 0), (int)num(j, "w", 0), num(j, "scale", 0),
                                              num(j, "next_scale", 0), ar[l], na, so[0], so[1], so[2], so[3], oct};
        if (na < 1 || na > DEFT_SSD_MAX_AR || p[l].fmap_h < 1 || p[l].fmap_w < 1)
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: SSD metadata layer %d is malformed", path, l);
    }
    if (!s) {
        g->net_w = (int)num(o, "net_w", 0);
        g->net_h = (int)num(o, "net_h", 0);
        g->n_classes = n_classes + 1;
        doubles(cJSON_GetObjectItemCaseSensitive(o, "variances"), var, 4);
        if (g->net_w < 32 || g->net_h < 32)
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: SSD metadata gives a %dx%d input", path, g->net_w, g->net_h);
    }
    if (!s)
        s = geom_build(g, p, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "two_boxes_for_ar1")),
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "clip_boxes")), var);
    deft_preprocess_init(pre, DEFT_PREPROCESS_CAFFE);
    const cJSON *pp = o ? cJSON_GetObjectItemCaseSensitive(o, "preprocess") : NULL;
    if (!s && cJSON_IsObject(pp)) {
        pre->mode = (enum deft_preprocess_mode)(int)num(pp, "mode", pre->mode);
        pre->bgr = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pp, "bgr"));
        pre->divisor = (float)num(pp, "divisor", pre->divisor);
        double m[3] = {pre->mean[0], pre->mean[1], pre->mean[2]}, sd[3] = {pre->std[0], pre->std[1], pre->std[2]};
        doubles(cJSON_GetObjectItemCaseSensitive(pp, "mean"), m, 3);
        doubles(cJSON_GetObjectItemCaseSensitive(pp, "std"), sd, 3);
        for (int c = 0; c < 3; c++) pre->mean[c] = (float)m[c], pre->std[c] = (float)sd[c];
    }
    cJSON_Delete(o);
    if (s) ssd_geom_free(g);
    return s;
}

/* ---- detections ---------------------------------------------------------------- */

enum deft_status ssd_detect_image(const struct ssd_geom *g, const float *const *outs, int b,
                                  const struct deft_letterbox *lb, const struct ssd_nms *nms, struct deft_box **boxes,
                                  int *n) {
    enum deft_status s = g->sigmoid ? deft_retinanet_decode_image(g->maps, g->n_maps, g->n_classes, outs, b, g->priors,
                                                                  nms->conf, boxes, n)
                                    : deft_ssd_decode_image(g->maps, g->n_maps, g->n_classes, outs, b, g->priors,
                                                            nms->conf, boxes, n);
    if (s) return s;
    int kept = 0;
    /* TAO's decoder: NMS per class, the best top_k overall; boxes clipped to the input */
    if ((s = deft_nms_per_class(*boxes, *n, nms->iou, nms->top_k, nms->top_k, true, &kept))) {
        deft_free(*boxes);
        *boxes = NULL;
        *n = 0;
        return s;
    }
    for (int i = 0; i < kept; i++) {
        struct deft_box *bx = &(*boxes)[i];
        bx->x1 *= (float)lb->net_w, bx->x2 *= (float)lb->net_w;
        bx->y1 *= (float)lb->net_h, bx->y2 *= (float)lb->net_h;
        deft_letterbox_box_to_image(lb, bx);
    }
    *n = kept;
    return DEFT_OK;
}

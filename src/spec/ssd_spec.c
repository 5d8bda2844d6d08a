/* ssd_spec.c - the SSD / DSSD and RetinaNet specs (spec module): TAO's ssd
 * and retinanet Experiment tables (training, nms and dataset blocks shared with yolo_v4 through
 * det_spec_common.c), TAO's checks plus deft's (alternatives given
 * together, list strings evaluated safely), the six predictor layers and
 * their priors resolved, YAML print, --help-spec and the --dry_run summary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/ssd_spec.h"
#include "spec/det_spec_common.h"

#define HELP_CMD "deft ssd --help-spec"

#define T struct deft_ssd_net_config
static const struct deft_spec_field net_fields[] = {
    F_STR(T, aspect_ratios, NULL, 0, "per-layer aspect ratios (w/h), six lists: \"[[1.0, 2.0, 0.5], ...]\""),
    F_STR(T, aspect_ratios_global, NULL, 0, "aspect ratios of every layer: \"[1.0, 2.0, 0.5, 3.0, 1.0/3.0]\""),
    F_STR(T, scales, NULL, 0, "seven prior scales (fractions of the shorter input side): \"[0.05, 0.1, ...]\""),
    F_FLT(T, min_scale, NULL, 0, 1, GE | LE, "smallest scale, with max_scale: seven scales evenly spaced"),
    F_FLT(T, max_scale, NULL, 0, 0, GE, "largest scale (used when scales is not given)"),
    F_BOOL(T, two_boxes_for_ar1, NULL, 0, "aspect 1 also gets a box of scale sqrt(s_k * s_k+1)"),
    F_STR(T, steps, NULL, 0, "six centre spacings in pixels (number or (h, w)); empty: input / map"),
    F_BOOL(T, clip_boxes, NULL, 0, "clip the priors to the image"),
    F_STR(T, variances, "\"[0.1, 0.1, 0.2, 0.2]\"", 0, "box-coding variances of x, y, w, h (four numbers > 0)"),
    F_STR(T, offsets, NULL, 0, "six first-centre offsets as fractions of the step (number or (h, w)); empty: 0.5"),
    F_STR(T, mean_color, NULL, IGN, "unused by TAO's SSD"),
    F_STR(T, arch, NULL, REQ, "backbone: resnet, vgg, darknet, mobilenet_v1, mobilenet_v2, squeezenet, googlenet, "
          "efficientnet_b0, efficientnet_b1"),
    F_INT(T, nlayers, NULL, 0, 1000, GE | LE, "depth: resnet 10/18/34/50/101, vgg 16/19, darknet 19/53"),
    F_INT(T, pred_num_channels, NULL, 0, 4096, GE | LE, "DSSD: channels of the prediction modules"),
    F_FLT(T, alpha, "1.0", 0, 0, GT, "weight of the smooth-L1 box loss"),
    F_FLT(T, neg_pos_ratio, "3.0", 0, 0, GT, "hard-negative mining: negatives per positive"),
    F_FLT(T, pos_iou_thresh, "0.5", 0, 1, GT | LE, "a prior is positive at IoU >= this with a box"),
    F_FLT(T, neg_iou_thresh, "0.5", 0, 1, GT | LE, "a prior is negative below this IoU"),
    F_FLIST(T, freeze_blocks, n_freeze_blocks, 0, 0, GE, "backbone blocks whose weights stay fixed (repeated)"),
    F_BOOL(T, freeze_bn, NULL, 0, "keep batch-norm statistics and parameters fixed"),
};
#undef T
static const struct deft_spec_schema net_schema = SCHEMA(struct deft_ssd_net_config, "SSDConfig", net_fields);

/* TAO's RetinaNetConfig: SSD's prior fields over five layers, FPN and subnet sizes, focal loss. */
#define T struct deft_ssd_net_config
static const struct deft_spec_field retina_fields[] = {
    F_STR(T, aspect_ratios, NULL, 0, "per-layer aspect ratios (w/h), five lists: \"[[1.0, 2.0, 0.5], ...]\""),
    F_STR(T, aspect_ratios_global, NULL, 0, "aspect ratios of every layer: \"[1.0, 2.0, 0.5]\""),
    F_STR(T, scales, NULL, 0, "six anchor scales (fractions of the shorter input side): \"[0.045, 0.09, ...]\""),
    F_FLT(T, min_scale, NULL, 0, 1, GE | LE, "smallest scale, with max_scale: six scales evenly spaced"),
    F_FLT(T, max_scale, NULL, 0, 0, GE, "largest scale (used when scales is not given)"),
    F_BOOL(T, two_boxes_for_ar1, NULL, 0, "aspect 1 also gets a box of scale sqrt(s_k * s_k+1)"),
    F_STR(T, steps, NULL, 0, "five centre spacings in pixels (number or (h, w)); empty: input / map"),
    F_BOOL(T, clip_boxes, NULL, 0, "clip the anchors to the image"),
    F_STR(T, variances, "\"[0.1, 0.1, 0.2, 0.2]\"", 0, "box-coding variances of x, y, w, h (four numbers > 0)"),
    F_STR(T, offsets, NULL, 0, "five first-centre offsets as fractions of the step (number or (h, w)); empty: 0.5"),
    F_STR(T, mean_color, NULL, IGN, "unused by TAO's RetinaNet"),
    F_STR(T, arch, NULL, REQ, "backbone: resnet, vgg, darknet, mobilenet_v1, mobilenet_v2, squeezenet, googlenet, "
          "efficientnet_b0"),
    F_INT(T, nlayers, NULL, 0, 1000, GE | LE, "depth: resnet 10/18/34/50/101, vgg 16/19, darknet 19/53"),
    F_FLT(T, loss_loc_weight, "1.0", 0, 0, GE, "weight of the smooth-L1 box loss"),
    F_FLT(T, focal_loss_alpha, "0.25", 0, 1, GE | LE, "focal loss: weight of the positive class"),
    F_FLT(T, focal_loss_gamma, "2.0", 0, 0, GE, "focal loss: focusing exponent"),
    F_FLIST(T, freeze_blocks, n_freeze_blocks, 0, 0, GE, "backbone blocks whose weights stay fixed (repeated)"),
    F_BOOL(T, freeze_bn, NULL, 0, "keep batch-norm statistics and parameters fixed"),
    F_INT(T, n_kernels, "2", 0, 16, GE | LE, "3x3 conv + ReLU layers in each subnet before its regressor"),
    F_INT(T, feature_size, "256", 1, 4096, GE | LE, "channels of the FPN maps and the subnets"),
    F_FLT(T, pos_iou_thresh, "0.5", 0, 1, GT | LE, "an anchor is positive at IoU >= this with a box"),
    F_FLT(T, neg_iou_thresh, "0.4", 0, 1, GT | LE, "an anchor is negative below this IoU (between: ignored)"),
    F_INT(T, n_anchor_levels, "3", 1, 8, GE | LE, "sub-octave anchor sizes per aspect: 2^(j/n), j < n"),
};
#undef T
static const struct deft_spec_schema retina_net_schema =
    SCHEMA(struct deft_ssd_net_config, "RetinaNetConfig", retina_fields);

#define T struct deft_ssd_augmentation_config
static const struct deft_spec_field aug_fields[] = {
    F_INT(T, output_width, NULL, 33, 16384, GE | LE | REQ, "network input width (> 32)"),
    F_INT(T, output_height, NULL, 33, 16384, GE | LE | REQ, "network input height (> 32)"),
    F_INT(T, output_channel, "3", 1, 3, GE | LE, "input channels: 3 or 1"),
    F_FLT(T, random_crop_min_scale, "0.3", 0, 1, GT | LE, "random crop: smallest side fraction (TAO's 0.3 when 0)"),
    F_FLT(T, random_crop_max_scale, "1.0", 0, 1, GT | LE, "random crop: largest side fraction"),
    F_FLT(T, random_crop_min_ar, "0.5", 0, 0, GT, "random crop: smallest aspect ratio"),
    F_FLT(T, random_crop_max_ar, "2.0", 0, 0, GT, "random crop: largest aspect ratio"),
    F_FLT(T, zoom_out_min_scale, "1.0", 1, 0, GE, "zoom out (expand): smallest canvas factor"),
    F_FLT(T, zoom_out_max_scale, "4.0", 1, 0, GE, "zoom out: largest canvas factor"),
    F_INT(T, brightness, "32", 0, 255, GE | LE, "brightness shift up to +-this (0-255)"),
    F_FLT(T, contrast, "0.5", 0, 1, GE | LE, "contrast factor in [1-c, 1+c]"),
    F_FLT(T, saturation, "0.5", 0, 1, GE | LE, "saturation factor in [1-s, 1+s]"),
    F_INT(T, hue, "18", 0, 180, GE | LE, "hue rotation up to +-this many degrees"),
    F_FLT(T, random_flip, "0.5", 0, 1, GE | LE, "horizontal flip probability"),
    F_MAP(T, image_mean, n_image_mean, 0, 0, "per-channel mean to subtract: {r, g, b} or {l} (0-255)"),
};
#undef T
static const struct deft_spec_schema aug_schema = SCHEMA(struct deft_ssd_augmentation_config, "AugmentationConfig", aug_fields);

static const struct deft_spec_enum_val ap_vals[] = {
    {"SAMPLE", DEFT_YOLO_AP_SAMPLE}, {"INTEGRATE", DEFT_YOLO_AP_INTEGRATE}, {NULL, 0}};
#define T struct deft_ssd_eval_config
static const struct deft_spec_field eval_fields[] = {
    F_INT(T, validation_period_during_training, "10", 1, 1000000, GE | LE, "validate every N epochs"),
    F_ENUM(T, average_precision_mode, "SAMPLE", ap_vals, 0, "AP: SAMPLE = VOC 11-point, INTEGRATE = all-point area"),
    F_INT(T, batch_size, "16", 1, 65536, GE | LE, "images per batch"),
    F_FLT(T, matching_iou_threshold, "0.5", 0, 1, GT | LE, "IoU for a detection to match a GT"),
    F_BOOL(T, visualize_pr_curve, NULL, 0, "plot the precision-recall curves"),
};
#undef T
static const struct deft_spec_schema eval_schema = SCHEMA(struct deft_ssd_eval_config, "EvalConfig", eval_fields);

#define T struct deft_ssd_config
static const struct deft_spec_field top_fields[] = {
    F_INT(T, random_seed, NULL, 0, 0, GE, "seed for initialization, shuffling and augmentation"),
    F_MSG(T, dataset_config, deft_det_dataset_schema, REQ, "data sources and classes"),
    F_MSG(T, augmentation_config, aug_schema, REQ, "input size and augmentation"),
    F_MSG(T, training_config, deft_det_train_schema, REQ, "training"),
    F_MSG(T, eval_config, eval_schema, 0, "evaluation"),
    F_OPT(T, nms_config, has_nms_config, deft_det_nms_schema, 0, "non-maximum suppression"),
    F_ONEOF(T, ssd_config, has_ssd_config, net_schema, "network", REQ, "the SSD network and its priors"),
    F_ONEOF(T, dssd_config, has_dssd_config, net_schema, "network", REQ, "DSSD: the same fields, deconvolution module"),
    F_STR(T, results_dir, NULL, EXT, "default results directory (-r wins)"),
};
#undef T
static const struct deft_spec_schema ssd_schema = SCHEMA(struct deft_ssd_config, "Experiment", top_fields);

#define T struct deft_ssd_config
static const struct deft_spec_field retina_top_fields[] = {
    F_INT(T, random_seed, NULL, 0, 0, GE, "seed for initialization, shuffling and augmentation"),
    F_MSG(T, dataset_config, deft_det_dataset_schema, REQ, "data sources and classes"),
    F_MSG(T, augmentation_config, aug_schema, REQ, "input size (multiples of 32) and augmentation"),
    F_MSG(T, training_config, deft_det_train_schema, REQ, "training"),
    F_MSG(T, eval_config, eval_schema, 0, "evaluation"),
    F_OPT(T, nms_config, has_nms_config, deft_det_nms_schema, 0, "non-maximum suppression"),
    F_MSG(T, retinanet_config, retina_net_schema, REQ, "the RetinaNet network, its anchors and loss"),
    F_STR(T, results_dir, NULL, EXT, "default results directory (-r wins)"),
};
#undef T
static const struct deft_spec_schema retina_schema = SCHEMA(struct deft_ssd_config, "Experiment", retina_top_fields);

static const struct deft_spec_schema *schema_of(const struct deft_ssd_config *c) {
    return c->is_retinanet ? &retina_schema : &ssd_schema;
}

/* ---- checks ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int depths[5];
} archs[] = {{"resnet", {10, 18, 34, 50, 101}}, {"vgg", {16, 19}},          {"darknet", {19, 53}},
             {"mobilenet_v1", {0}},             {"mobilenet_v2", {0}},      {"squeezenet", {0}},
             {"googlenet", {0}},                {"efficientnet_b0", {0}},   {"efficientnet_b1", {0}}};

static enum deft_status check_arch(const struct deft_ssd_net_config *n, const char *blk, const struct deft_spec_origin *o) {
    char at[300], path[64];
    int a = -1;
    for (int i = 0; i < N_OF(archs); i++)
        if (!strcmp(archs[i].name, n->arch)) a = i;
    snprintf(path, sizeof path, "%s.arch", blk);
    if (a < 0) {
        deft_spec_origin_where(o, path, at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s '%.40s' is not an SSD backbone (resnet, vgg, darknet, "
                              "mobilenet_v1, mobilenet_v2, squeezenet, googlenet, efficientnet_b0, efficientnet_b1)",
                              at, path, n->arch);
    }
    if (!archs[a].depths[0]) return DEFT_OK;
    for (int i = 0; i < 5 && archs[a].depths[i]; i++)
        if (archs[a].depths[i] == n->nlayers) return DEFT_OK;
    snprintf(path, sizeof path, "%s.nlayers", blk);
    deft_spec_origin_where_or(o, path, blk, at, sizeof at);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s %d is not a depth of '%s'", at, path, n->nlayers, n->arch);
}

/* A list field evaluated into items; messages point into the string. */
static enum deft_status eval_field(const char *blk, const char *key, const char *text, struct deft_spec_list_item *it,
                                   int max, int *n, const struct deft_spec_origin *o) {
    int err = 0;
    char path[96], at[300];
    if (!deft_spec_eval_list(text, it, max, n, &err)) return DEFT_OK;
    char why[200];
    snprintf(why, sizeof why, "%s", deft_last_error());
    snprintf(path, sizeof path, "%s.%s", blk, key);
    const struct deft_spec_node *v = o->tree ? deft_spec_node_at(o->tree, path) : NULL;
    deft_spec_origin_where(o, path, at, sizeof at);
    if (v && v->kind == DEFT_SPEC_SCALAR && v->line > 0 && !strstr(at, "--set"))
        snprintf(at, sizeof at, "%s:%d:%d", v->file, v->line, v->col + (v->quoted ? 1 : 0) + err);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s \"%.80s\": %s", at, path, text, why);
}

static enum deft_status bad(const struct deft_spec_origin *o, const char *blk, const char *key, const char *msg) {
    char at[300], path[96];
    snprintf(path, sizeof path, "%s.%s", blk, key);
    deft_spec_origin_where_or(o, path, blk, at, sizeof at);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s: %s", at, path, msg);
}

/* Both of two alternatives given: name both (TAO would silently pick one). */
static enum deft_status both(const struct deft_spec_origin *o, const char *blk, const char *a, const char *b,
                             const char *keep) {
    char at[300], path[96];
    snprintf(path, sizeof path, "%s.%s", blk, b);
    deft_spec_origin_where_or(o, path, blk, at, sizeof at);
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s.%s and %s.%s are alternatives, both are set: %s", at, blk, a,
                          blk, b, keep);
}

static int halve(int v, int stride) {
    for (int s = stride; s > 1; s /= 2) v = (v + 1) / 2;
    return v;
}

static enum deft_status resolve_aspects(struct deft_ssd_config *c, const char *blk, const struct deft_spec_origin *o) {
    const struct deft_ssd_net_config *n = &c->ssd_config;
    struct deft_spec_list_item it[DEFT_SSD_MAX_AR];
    int k = 0;
    enum deft_status s;
    if (*n->aspect_ratios && *n->aspect_ratios_global)
        return both(o, blk, "aspect_ratios", "aspect_ratios_global", "keep aspect_ratios (six lists, one per layer) or "
                    "aspect_ratios_global (one list for all)");
    if (!*n->aspect_ratios && !*n->aspect_ratios_global)
        return bad(o, blk, "aspect_ratios_global", "give aspect_ratios_global (\"[1.0, 2.0, 0.5]\") or aspect_ratios");
    if (*n->aspect_ratios) {
        if ((s = eval_field(blk, "aspect_ratios", n->aspect_ratios, it, DEFT_SSD_MAX_AR, &k, o))) return s;
        if (k != c->n_layers) return bad(o, blk, "aspect_ratios", c->n_layers == 6 ? "needs six lists, one per predictor "
                                         "layer" : "needs five lists, one per predictor layer");
    } else {
        if ((s = eval_field(blk, "aspect_ratios_global", n->aspect_ratios_global, it, DEFT_SSD_MAX_AR, &k, o))) return s;
        int m = 0;
        for (int i = 0; i < k; i++) {
            if (it[i].is_seq) return bad(o, blk, "aspect_ratios_global", "is one flat list of numbers");
            it[0].v[m++] = it[i].v[0];
        }
        it[0].n = m;
        for (int l = 1; l < c->n_layers; l++) it[l] = it[0];
    }
    int oct = c->is_retinanet ? n->n_anchor_levels : 1;
    for (int l = 0; l < c->n_layers; l++) {
        struct deft_ssd_layer *L = &c->layers[l];
        L->n_ar = it[l].n;
        for (int i = 0; i < it[l].n; i++) {
            if (!(it[l].v[i] > 0))
                return bad(o, blk, *n->aspect_ratios ? "aspect_ratios" : "aspect_ratios_global",
                           "aspect ratios must be > 0");
            L->ar[i] = it[l].v[i];
        }
        L->boxes_per_cell = oct * deft_ssd_boxes_per_cell(L->ar, L->n_ar, n->two_boxes_for_ar1);
    }
    return DEFT_OK;
}

static enum deft_status resolve_scales(struct deft_ssd_config *c, const char *blk, const struct deft_spec_origin *o) {
    const struct deft_ssd_net_config *n = &c->ssd_config;
    struct deft_spec_list_item it[DEFT_SSD_MAX_AR];
    int k = 0;
    double sc[DEFT_SSD_LAYERS + 1];
    bool minmax = n->min_scale > 0 || n->max_scale > 0;
    if (*n->scales && minmax)
        return both(o, blk, "scales", n->min_scale > 0 ? "min_scale" : "max_scale",
                    c->n_layers == 6 ? "keep scales (seven values) or min_scale and max_scale"
                                     : "keep scales (six values) or min_scale and max_scale");
    if (*n->scales) {
        enum deft_status s = eval_field(blk, "scales", n->scales, it, DEFT_SSD_MAX_AR, &k, o);
        if (s) return s;
        if (k != c->n_layers + 1)
            return bad(o, blk, "scales", c->n_layers == 6 ? "needs seven numbers (six layers and one more for the "
                       "second aspect-1 box of the last layer)" : "needs six numbers (five layers and one more for "
                       "the second aspect-1 box of the last layer)");
        for (int i = 0; i < k; i++) {
            if (it[i].is_seq || !(it[i].v[0] > 0)) return bad(o, blk, "scales", "needs numbers > 0");
            sc[i] = it[i].v[0];
        }
    } else {
        if (!(n->min_scale > 0) || !(n->max_scale > n->min_scale))
            return bad(o, blk, "min_scale", "give scales, or 0 < min_scale < max_scale");
        for (int i = 0; i <= c->n_layers; i++)
            sc[i] = n->min_scale + (n->max_scale - n->min_scale) * i / c->n_layers;
    }
    if (sc[0] > 1) return bad(o, blk, "scales", "the first scale must be <= 1 (a fraction of the shorter side)");
    for (int l = 0; l < c->n_layers; l++) c->layers[l].scale = sc[l], c->layers[l].next_scale = sc[l + 1];
    return DEFT_OK;
}

/* steps or offsets: one item per layer, each a number or a (h, w) pair. */
static enum deft_status resolve_pairs(struct deft_ssd_config *c, const char *blk, const char *key, const char *text,
                                      bool offsets, const struct deft_spec_origin *o) {
    struct deft_spec_list_item it[DEFT_SSD_MAX_AR];
    int k = 0;
    if (!*text) return DEFT_OK;
    enum deft_status s = eval_field(blk, key, text, it, DEFT_SSD_MAX_AR, &k, o);
    if (s) return s;
    if (k != c->n_layers)
        return bad(o, blk, key, c->n_layers == 6 ? "needs six items, one per predictor layer"
                                                 : "needs five items, one per predictor layer");
    for (int l = 0; l < c->n_layers; l++) {
        if (it[l].n > 2) return bad(o, blk, key, "each item is a number or a (height, width) pair");
        double h = it[l].v[0], w = it[l].n == 2 ? it[l].v[1] : h;
        if (!(h > 0) || !(w > 0) || (offsets && (h >= 1 || w >= 1)))
            return bad(o, blk, key, offsets ? "offsets must be in (0, 1)" : "steps must be > 0");
        if (offsets) c->layers[l].offset_h = h, c->layers[l].offset_w = w;
        else c->layers[l].step_h = h, c->layers[l].step_w = w;
    }
    return DEFT_OK;
}

static enum deft_status resolve_net(struct deft_ssd_config *c, const struct deft_spec_origin *o) {
    if (c->has_dssd_config) { /* oneof: DSSD's block becomes ssd_config, as TAO copies it */
        struct deft_ssd_net_config t = c->ssd_config;
        c->ssd_config = c->dssd_config;
        c->dssd_config = t;
        c->is_dssd = true;
    }
    if (c->is_retinanet) { /* the same fields: one resolution for both networks */
        struct deft_ssd_net_config t = c->ssd_config;
        c->ssd_config = c->retinanet_config;
        c->retinanet_config = t;
    }
    c->n_layers = c->is_retinanet ? DEFT_RETINANET_LAYERS : DEFT_SSD_LAYERS;
    const char *blk = c->is_retinanet ? "retinanet_config" : c->is_dssd ? "dssd_config" : "ssd_config";
    struct deft_ssd_net_config *n = &c->ssd_config;
    enum deft_status s = check_arch(n, blk, o);
    for (int l = 0; l < c->n_layers; l++) {
        c->layers[l].offset_h = c->layers[l].offset_w = 0.5;
        c->layers[l].step_h = c->layers[l].step_w = 0;
    }
    if (!s) s = resolve_aspects(c, blk, o);
    if (!s) s = resolve_scales(c, blk, o);
    if (!s) s = resolve_pairs(c, blk, "steps", n->steps, false, o);
    if (!s) s = resolve_pairs(c, blk, "offsets", n->offsets, true, o);
    if (s) return s;
    struct deft_spec_list_item it[DEFT_SSD_MAX_AR];
    int k = 0;
    if ((s = eval_field(blk, "variances", n->variances, it, DEFT_SSD_MAX_AR, &k, o))) return s;
    if (k != 4) return bad(o, blk, "variances", "needs four numbers > 0");
    for (int i = 0; i < 4; i++) {
        if (it[i].is_seq || !(it[i].v[0] > 0)) return bad(o, blk, "variances", "needs four numbers > 0");
        c->variances[i] = it[i].v[0];
    }
    if (n->neg_iou_thresh > n->pos_iou_thresh)
        return bad(o, blk, "neg_iou_thresh", "must not be above pos_iou_thresh");
    const struct deft_ssd_augmentation_config *a = &c->augmentation_config;
    /* TAO's FPN adds P5 upsampled x2 to C4 (stride 16) and P4 to C3: sizes must halve exactly */
    if (c->is_retinanet && (a->output_width % 32 || a->output_height % 32))
        return bad(o, "augmentation_config", a->output_width % 32 ? "output_width" : "output_height",
                   "RetinaNet's FPN needs an input width and height that are multiples of 32");
    for (int l = 0; l < c->n_layers; l++) {
        struct deft_ssd_layer *L = &c->layers[l];
        L->stride = 8 << l; /* TAO's backbones: stride 8 map, then maps each halving (SSD 6, RetinaNet P3-P7) */
        L->fmap_h = halve(a->output_height, L->stride);
        L->fmap_w = halve(a->output_width, L->stride);
    }
    struct deft_ssd_layer_params p[DEFT_SSD_LAYERS];
    deft_ssd_config_layers(c, p);
    c->n_priors = deft_ssd_prior_count(p, c->n_layers, n->two_boxes_for_ar1);
    return DEFT_OK;
}

static enum deft_status check_rest(struct deft_ssd_config *c, const struct deft_spec_origin *o) {
    const struct deft_ssd_augmentation_config *a = &c->augmentation_config;
    if (a->output_channel != 1 && a->output_channel != 3)
        return bad(o, "augmentation_config", "output_channel", "must be 1 or 3");
    if (a->random_crop_min_scale > a->random_crop_max_scale)
        return bad(o, "augmentation_config", "random_crop_min_scale", "is above random_crop_max_scale");
    if (a->random_crop_min_ar > a->random_crop_max_ar)
        return bad(o, "augmentation_config", "random_crop_min_ar", "is above random_crop_max_ar");
    if (a->zoom_out_min_scale > a->zoom_out_max_scale)
        return bad(o, "augmentation_config", "zoom_out_min_scale", "is above zoom_out_max_scale");
    const struct deft_yolo_lr_config *lr = &c->training_config.learning_rate;
    if (!lr->has_soft_start_annealing_schedule)
        return bad(o, "training_config", "learning_rate", c->is_retinanet ? "TAO's RetinaNet takes "
                   "soft_start_annealing_schedule" : "TAO's SSD takes soft_start_annealing_schedule");
    return DEFT_OK;
}

static enum deft_status resolve(void *obj, const struct deft_spec_origin *o) {
    struct deft_ssd_config *c = obj;
    enum deft_status s = resolve_net(c, o);
    if (!s) s = check_rest(c, o);
    if (!s) s = deft_det_check_training(&c->training_config, o, false);
    if (!s) s = deft_det_check_dataset(&c->dataset_config, o);
    return s;
}

void deft_ssd_config_layers(const struct deft_ssd_config *c, struct deft_ssd_layer_params *p) {
    for (int l = 0; l < c->n_layers; l++) {
        const struct deft_ssd_layer *L = &c->layers[l];
        p[l] = (struct deft_ssd_layer_params){L->fmap_h, L->fmap_w, L->scale, L->next_scale, L->ar, L->n_ar,
                                              L->step_h, L->step_w, L->offset_h, L->offset_w,
                                              c->is_retinanet ? c->ssd_config.n_anchor_levels : 1};
    }
}

/* ---- load / free ------------------------------------------------------------ */

void deft_ssd_config_free(struct deft_ssd_config *c) {
    if (!c) return;
    deft_det_free_classes(&c->dataset_config);
    if (c->is_retinanet && c->n_layers) { /* undo resolve_net's swap: the schema owns retinanet_config */
        struct deft_ssd_net_config t = c->ssd_config;
        c->ssd_config = c->retinanet_config;
        c->retinanet_config = t;
    }
    deft_spec_release(schema_of(c), c);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

static enum deft_status parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                              const char *const *overrides, int n_overrides, bool retina, struct deft_ssd_config *out) {
    memset(out, 0, sizeof *out);
    out->is_retinanet = retina;
    const struct deft_spec_schema *schema = schema_of(out);
    const char *help = retina ? "deft retinanet --help-spec" : HELP_CMD;
    enum deft_status s = deft_spec_parse_resolved(schema, out, text, n, name, fmt, overrides, n_overrides, help, resolve,
                                                  &out->source_path, &out->ignored_fields, &out->format);
    if (s) {
        deft_ssd_config_free(out);
        return s;
    }
    return DEFT_OK;
}

enum deft_status deft_ssd_config_parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                                       const char *const *overrides, int n_overrides, struct deft_ssd_config *out) {
    return parse(text, n, name, fmt, overrides, n_overrides, false, out);
}

enum deft_status deft_retinanet_config_parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                                             const char *const *overrides, int n_overrides,
                                             struct deft_ssd_config *out) {
    return parse(text, n, name, fmt, overrides, n_overrides, true, out);
}

static enum deft_status load(const char *path, const char *const *overrides, int n_overrides, bool retina,
                             struct deft_ssd_config *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t n = 0;
    enum deft_status s = deft_spec_read_file(path, &text, &n);
    if (s) return s;
    s = parse(text, n, path, DEFT_SPEC_FORMAT_AUTO, overrides, n_overrides, retina, out);
    deft_free(text);
    return s;
}

enum deft_status deft_ssd_config_load(const char *path, const char *const *overrides, int n_overrides,
                                      struct deft_ssd_config *out) {
    return load(path, overrides, n_overrides, false, out);
}

enum deft_status deft_retinanet_config_load(const char *path, const char *const *overrides, int n_overrides,
                                            struct deft_ssd_config *out) {
    return load(path, overrides, n_overrides, true, out);
}

/* ---- print / help / summary --------------------------------------------------- */

void deft_ssd_config_print(const struct deft_ssd_config *c, FILE *f) {
    fprintf(f, "# deft %s spec, resolved%s%s\n", c->is_retinanet ? "retinanet" : "ssd", c->source_path ? " from " : "",
            c->source_path ? c->source_path : "");
    const struct deft_spec_schema *sc = schema_of(c);
    struct deft_ssd_config d, v = *c;
    memset(&d, 0, sizeof d);
    bool have_d = deft_spec_defaults(sc, &d) == DEFT_OK;
    if (c->is_retinanet) v.retinanet_config = c->ssd_config; /* printed under the name the schema knows */
    deft_spec_print(sc, &v, have_d ? &d : NULL, f, 0);
    deft_spec_release(sc, &d);
}

void deft_retinanet_config_help(FILE *f) {
    fprintf(f, "RetinaNet spec fields (TAO retinanet names; .txt = TAO protobuf text, .yaml = the same fields as "
               "YAML).\nList fields are strings holding Python lists; + - * / and parentheses are evaluated.\n\n");
    fprintf(f, "%-48s %-12s %-12s %s\n", "field", "type", "default", "meaning");
    deft_spec_help(&retina_schema, f, "");
}

void deft_ssd_config_help(FILE *f) {
    fprintf(f, "SSD / DSSD spec fields (TAO ssd names; .txt = TAO protobuf text, .yaml = the same fields as YAML).\n"
               "List fields are strings holding Python lists; + - * / and parentheses are evaluated (1.0/3.0).\n\n");
    fprintf(f, "%-48s %-12s %-12s %s\n", "field", "type", "default", "meaning");
    deft_spec_help(&ssd_schema, f, "");
}

void deft_ssd_config_summary(const struct deft_ssd_config *c, FILE *f) {
    const struct deft_ssd_net_config *n = &c->ssd_config;
    const struct deft_ssd_augmentation_config *a = &c->augmentation_config;
    const struct deft_yolo_dataset_config *d = &c->dataset_config;
    const struct deft_yolo_training_config *t = &c->training_config;
    fprintf(f, "%s experiment from %s (%s)\n", c->is_retinanet ? "RetinaNet" : c->is_dssd ? "DSSD" : "SSD",
            c->source_path ? c->source_path : "memory",
            deft_spec_format_name(c->format));
    fprintf(f, "  %-13s: arch %s", "network", n->arch);
    if (n->nlayers) fprintf(f, ", nlayers %d", n->nlayers);
    if (c->is_retinanet) fprintf(f, ", FPN P3-P7 of %d channels, %d subnet convs", n->feature_size, n->n_kernels);
    fprintf(f, "%s\n", n->freeze_bn ? ", freeze_bn" : "");
    fprintf(f, "  %-13s: %d x %d x %d (width x height x channels)\n", "input", a->output_width, a->output_height,
            a->output_channel);
    fprintf(f, "  %-13s: two_boxes_for_ar1 %s, clip_boxes %s, variances [%g, %g, %g, %g]\n", "priors",
            n->two_boxes_for_ar1 ? "on" : "off", n->clip_boxes ? "on" : "off", c->variances[0], c->variances[1],
            c->variances[2], c->variances[3]);
    if (c->is_retinanet) fprintf(f, "  %-13s: %d sub-octave sizes per aspect\n", "anchor levels", n->n_anchor_levels);
    for (int l = 0; l < c->n_layers; l++) {
        const struct deft_ssd_layer *L = &c->layers[l];
        fprintf(f, "  layer %d      : stride %3d, map %3dx%-3d, scale %.4g (next %.4g), %d boxes/cell, %ld priors; "
                "aspects", l, L->stride, L->fmap_h, L->fmap_w, L->scale, L->next_scale, L->boxes_per_cell,
                (long)L->fmap_h * L->fmap_w * L->boxes_per_cell);
        for (int i = 0; i < L->n_ar; i++) fprintf(f, " %.4g", L->ar[i]);
        if (L->step_h > 0) fprintf(f, "; step %gx%g", L->step_h, L->step_w);
        if (L->offset_h != 0.5 || L->offset_w != 0.5) fprintf(f, "; offset %gx%g", L->offset_h, L->offset_w);
        fputc('\n', f);
    }
    fprintf(f, "  %-13s: %ld\n", "priors total", c->n_priors);
    if (c->is_retinanet)
        fprintf(f, "  %-13s: positive IoU >= %g, negative < %g, focal alpha %g gamma %g, loc weight %g\n",
                "matching/loss", n->pos_iou_thresh, n->neg_iou_thresh, n->focal_loss_alpha, n->focal_loss_gamma,
                n->loss_loc_weight);
    else
        fprintf(f, "  %-13s: positive IoU >= %g, negative < %g, %g:1 hard negatives, alpha %g\n", "matching/loss",
                n->pos_iou_thresh, n->neg_iou_thresh, n->neg_pos_ratio, n->alpha);
    fprintf(f, "  %-13s: %d:", "classes", d->n_classes);
    for (int i = 0; i < d->n_classes; i++) fprintf(f, "%s %s", i ? "," : "", d->class_names[i]);
    fprintf(f, " (+ background)\n");
    fprintf(f, "  %-13s: batch %d, %d epochs, seed %d, optimizer %s\n", "training", t->batch_size_per_gpu,
            t->num_epochs, c->random_seed, t->optimizer.has_adam ? "adam" : t->optimizer.has_rmsprop ? "rmsprop" : "sgd");
    const struct deft_yolo_lr_anneal *l = &t->learning_rate.soft_start_annealing_schedule;
    fprintf(f, "  %-13s: soft start %g -> %g over %g%% of the run, hold, anneal to %g from %g%%\n", "lr schedule",
            l->min_learning_rate, l->max_learning_rate, l->soft_start * 100, l->min_learning_rate, l->annealing * 100);
    for (int i = 0; i < d->n_data_sources; i++)
        fprintf(f, "  %-13s: %s%s, images %s\n", i ? "" : "train data",
                *d->data_sources[i].label_directory_path ? "labels " : "TFRecords ",
                *d->data_sources[i].label_directory_path ? d->data_sources[i].label_directory_path
                                                          : d->data_sources[i].tfrecords_path,
                d->data_sources[i].image_directory_path);
    fprintf(f, "  %-13s: confidence %g, IoU %g, top_k %d\n", "nms", c->nms_config.confidence_threshold,
            c->nms_config.clustering_iou_threshold, c->nms_config.top_k);
    fprintf(f, "  %-13s: %s at IoU %g, every %d epochs\n", "evaluation",
            c->eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE ? "SAMPLE (VOC 11-point AP)"
                                                                         : "INTEGRATE (all-point AP)",
            c->eval_config.matching_iou_threshold, c->eval_config.validation_period_during_training);
    if (c->ignored_fields && *c->ignored_fields) fprintf(f, "  %-13s: %s\n", "not used yet", c->ignored_fields);
}

/* yolo_v4_spec.c - the YOLOv4 / YOLOv4-tiny spec (spec module): schema
 * tables for TAO's yolo_v4 Experiment (protobuf text and deft YAML share
 * them), then the checks TAO's spec loader makes plus deft's own (anchors,
 * arch/nlayers, tiny heads, sizes, data sources, class list), and the config
 * read back as YAML, --help-spec and the --dry_run summary. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "deft/yolo_spec.h"
#include "spec/spec_impl.h"
#include "spec/det_spec_common.h"

#define HELP_CMD "deft yolo_v4 --help-spec"

/* ---- yolov4_config --------------------------------------------------------- */

#define T struct deft_yolo_v4_config
static const struct deft_spec_field v4_fields[] = {
    F_STR(T, big_anchor_shape, NULL, 0, "anchors of the stride-32 head, \"[(w, h), ...]\" in input pixels"),
    F_STR(T, mid_anchor_shape, NULL, 0, "anchors of the stride-16 head"),
    F_STR(T, small_anchor_shape, NULL, 0, "anchors of the stride-8 head (empty for cspdarknet_tiny)"),
    F_FLT(T, matching_neutral_box_iou, "0.5", 0.25, 1, GT | LE,
          "predictions overlapping a GT above this IoU get no 'no object' loss"),
    F_FLT(T, box_matching_iou, "0.25", 0, 1, GT | LE, "anchors whose shape IoU with a GT exceeds this also take it"),
    F_STR(T, arch, NULL, REQ, "backbone: resnet, cspdarknet, cspdarknet_tiny, mobilenet_v2, darknet, vgg, ..."),
    F_INT(T, nlayers, NULL, 0, 1000, GE | LE, "depth for resnet (10/18/34/50/101), cspdarknet/darknet (19/53), vgg (16/19)"),
    F_INT(T, arch_conv_blocks, NULL, 0, 2, GE | LE, "extra conv blocks (read by YOLOv3 only)"),
    F_FLT(T, loss_loc_weight, NULL, 0, 0, GE, "weight of the CIoU box loss (0: off, as in TAO)"),
    F_FLT(T, loss_neg_obj_weights, NULL, 0, 0, GE, "weight of the 'no object' loss (0: off, as in TAO)"),
    F_FLT(T, loss_class_weights, NULL, 0, 0, GE, "weight of the class loss (0: off, as in TAO)"),
    F_FLIST(T, freeze_blocks, n_freeze_blocks, 0, 0, GE, "backbone blocks whose weights stay fixed (repeated)"),
    F_BOOL(T, freeze_bn, NULL, 0, "keep batch-norm statistics and parameters fixed"),
    F_BOOL(T, force_relu, NULL, 0, "ReLU instead of LeakyReLU / Mish everywhere"),
    F_STR(T, activation, NULL, 0, "leaky_relu (default when empty), relu or mish"),
    F_FLT(T, focal_loss_alpha, NULL, 0, 1, GE | LE, "focal loss alpha in [0, 1) (focal loss when alpha and gamma > 0)"),
    F_FLT(T, focal_loss_gamma, NULL, 0, 0, GE, "focal loss gamma"),
    F_FLT(T, label_smoothing, NULL, 0, 0.3, GE | LE, "objectness/class target smoothing s: y(1-s) + s/2"),
    F_FLT(T, big_grid_xy_extend, NULL, 0, 0.3, GE | LE, "stride-32 head: xy = sigmoid(t)(1+e) - e/2"),
    F_FLT(T, mid_grid_xy_extend, NULL, 0, 0.3, GE | LE, "stride-16 head grid extension"),
    F_FLT(T, small_grid_xy_extend, NULL, 0, 0.3, GE | LE, "stride-8 head grid extension (0 for cspdarknet_tiny)"),
};
#undef T
static const struct deft_spec_schema v4_schema = SCHEMA(struct deft_yolo_v4_config, "YOLOv4Config", v4_fields);


/* ---- eval, nms, augmentation ------------------------------------------------------ */

static const struct deft_spec_enum_val ap_vals[] = {
    {"SAMPLE", DEFT_YOLO_AP_SAMPLE}, {"INTEGRATE", DEFT_YOLO_AP_INTEGRATE}, {NULL, 0}};
#define T struct deft_yolo_eval_config
static const struct deft_spec_field eval_fields[] = {
    F_ENUM(T, average_precision_mode, "SAMPLE", ap_vals, 0, "AP: SAMPLE = VOC 11-point, INTEGRATE = all-point area"),
    F_INT(T, batch_size, "8", 1, 65536, GE | LE, "images per batch"),
    F_FLT(T, matching_iou_threshold, "0.5", 0, 1, GT | LE, "IoU for a detection to match a GT"),
    F_BOOL(T, visualize_pr_curve, NULL, 0, "plot the precision-recall curves"),
};
#undef T
static const struct deft_spec_schema eval_schema = SCHEMA(struct deft_yolo_eval_config, "EvalConfig", eval_fields);


#define T struct deft_yolo_augmentation_config
static const struct deft_spec_field aug_fields[] = {
    F_FLT(T, hue, NULL, 0, 1, GE | LE, "hue shift up to +-hue*180 degrees"),
    F_FLT(T, saturation, "1.5", 1, 0, GE, "saturation factor in [1/s, s]"),
    F_FLT(T, exposure, "1.5", 1, 0, GE, "exposure factor in [1/e, e]"),
    F_FLT(T, vertical_flip, NULL, 0, 1, GE | LE, "vertical flip probability"),
    F_FLT(T, horizontal_flip, NULL, 0, 1, GE | LE, "horizontal flip probability"),
    F_FLT(T, jitter, NULL, 0, 1, GE | LE, "crop/pad each side by up to +-jitter of the size"),
    F_INT(T, output_width, NULL, 32, 16384, GE | LE | REQ, "network input width (multiple of 32)"),
    F_INT(T, output_height, NULL, 32, 16384, GE | LE | REQ, "network input height (multiple of 32)"),
    F_INT(T, output_channel, "3", 1, 3, GE | LE, "input channels: 3 (BGR) or 1"),
    F_INT(T, output_depth, NULL, 0, 16, GE | LE, "bits per channel: 8 (0 = 8), or 16 for grayscale PNG"),
    F_INT(T, randomize_input_shape_period, NULL, 0, 0, GE, "every N batches redraw the input size in 0.6-1.5x (0: off)"),
    F_FLT(T, mosaic_prob, NULL, 0, 1, GE | LE, "chance of a 4-image mosaic"),
    F_FLT(T, mosaic_min_ratio, "0.2", 0, 0.5, GT, "mosaic split point in [ratio, 1 - ratio], ratio in (0, 0.5)"),
    F_MAP(T, image_mean, n_image_mean, 0, 0, "per-channel mean to subtract: {r, g, b} or {l} (0-255)"),
};
#undef T
static const struct deft_spec_schema aug_schema = SCHEMA(struct deft_yolo_augmentation_config, "AugmentationConfig", aug_fields);

/* ---- dataset_config, class weighting, top --------------------------------------------- */


#define T struct deft_yolo_class_weighting_config
static const struct deft_spec_field cw_fields[] = {
    F_MAP(T, class_weighting, n_class_weighting, 0, 0, "class name -> loss weight (1 when absent)"),
    F_BOOL(T, enable_auto, NULL, IGN, "TAO placeholder"),
};
#undef T
static const struct deft_spec_schema cw_schema =
    SCHEMA(struct deft_yolo_class_weighting_config, "ClassWeightingConfig", cw_fields);

#define T struct deft_yolo_config
static const struct deft_spec_field top_fields[] = {
    F_MSG(T, yolov4_config, v4_schema, REQ, "the network, anchors, matching and loss"),
    F_MSG(T, training_config, deft_det_train_schema, REQ, "training"),
    F_MSG(T, eval_config, eval_schema, 0, "evaluation"),
    F_OPT(T, nms_config, has_nms_config, deft_det_nms_schema, 0, "non-maximum suppression"),
    F_MSG(T, augmentation_config, aug_schema, REQ, "input size and augmentation"),
    F_MSG(T, dataset_config, deft_det_dataset_schema, REQ, "data sources and classes"),
    F_MSG(T, class_weighting_config, cw_schema, 0, "per-class loss weights"),
    F_INT(T, random_seed, NULL, 0, 0, GE, "seed for initialization, shuffling and augmentation"),
    F_STR(T, results_dir, NULL, EXT, "default results directory (-r wins)"),
};
#undef T
static const struct deft_spec_schema yolo_schema = SCHEMA(struct deft_yolo_config, "Experiment", top_fields);

/* ---- anchors ------------------------------------------------------------------------ */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* A positive finite number at *pp (advanced past it). */
static bool read_number(const char **pp, double *out) {
    const char *p = *pp, *st = p;
    if (*p == '+' || *p == '-') p++;
    while ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
           ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
        p++;
    char buf[48];
    size_t l = (size_t)(p - st);
    if (l == 0 || l >= sizeof buf) return false;
    memcpy(buf, st, l);
    buf[l] = 0;
    if (!deft_spec_parse_double(buf, out)) return false;
    *pp = p;
    return true;
}

enum deft_status deft_yolo_parse_anchors(const char *text, struct deft_yolo_anchor *out, int max, int *n,
                                         int *err_at) {
    *n = 0;
    *err_at = 0;
    const char *p = skip_ws(text ? text : "");
    if (!*p) return DEFT_OK;
    bool bracket = *p == '[';
    if (bracket) p = skip_ws(p + 1);
#define FAIL(...) (*err_at = (int)(p - text), deft_set_error(DEFT_ERR_INVALID_ARG, __VA_ARGS__))
    for (;;) {
        if (bracket && *p == ']' && *n == 0) return FAIL("the anchor list is empty");
        if (*p != '(') return FAIL("expected '(' to start an anchor \"(w, h)\"");
        p = skip_ws(p + 1);
        double w, h;
        if (!read_number(&p, &w)) return FAIL("expected the anchor width (a number)");
        p = skip_ws(p);
        if (*p != ',') return FAIL("expected ',' between anchor width and height");
        p = skip_ws(p + 1);
        if (!read_number(&p, &h)) return FAIL("expected the anchor height (a number)");
        p = skip_ws(p);
        if (*p != ')') return FAIL("expected ')' after the anchor height");
        if (!(w > 0) || !(h > 0)) return FAIL("anchor (%g, %g): width and height must be > 0", w, h);
        if (*n >= max) return FAIL("more than %d anchors for one head", max);
        out[*n].w = w;
        out[*n].h = h;
        (*n)++;
        p = skip_ws(p + 1);
        if (*p == ',') {
            p = skip_ws(p + 1);
            if ((bracket && *p == ']') || (!bracket && !*p)) break; /* trailing comma, as Python allows */
            continue;
        }
        break;
    }
    if (bracket) {
        if (*p != ']') return FAIL("expected ',' or ']' after an anchor");
        p = skip_ws(p + 1);
    }
    if (*p) return FAIL("unexpected text after the anchors");
#undef FAIL
    return DEFT_OK;
}

/* ---- resolution and checks --------------------------------------------------------- */

struct arch_info {
    const char *name;
    int depths[5]; /* allowed nlayers (0-terminated); none: nlayers is not used */
};
static const struct arch_info archs[] = {
    {"resnet", {10, 18, 34, 50, 101}}, {"vgg", {16, 19}},          {"darknet", {19, 53}},
    {"cspdarknet", {19, 53}},          {"cspdarknet_tiny", {0}},    {"cspdarknet_tiny_3l", {0}},
    {"mobilenet_v1", {0}},             {"mobilenet_v2", {0}},       {"googlenet", {0}},
    {"squeezenet", {0}},               {"efficientnet_b0", {0}},
};

static enum deft_status check_arch(struct deft_yolo_v4_config *y, const struct deft_spec_origin *o) {
    char at[300];
    const struct arch_info *a = NULL;
    for (int i = 0; i < N_OF(archs); i++)
        if (strcmp(archs[i].name, y->arch) == 0) a = &archs[i];
    if (!a) {
        char list[300] = "", sug[80] = "";
        size_t u = 0;
        int best = 99;
        for (int i = 0; i < N_OF(archs); i++) {
            int w = snprintf(list + u, sizeof list - u, "%s%s", u ? ", " : "", archs[i].name);
            if (w > 0 && (size_t)w < sizeof list - u) u += (size_t)w;
            int d = deft_spec_edit_distance(y->arch, archs[i].name);
            if (d < best && d <= 3) best = d, snprintf(sug, sizeof sug, "; did you mean '%s'?", archs[i].name);
        }
        deft_spec_origin_where(o, "yolov4_config.arch", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: yolov4_config.arch '%.40s' is not a YOLOv4 backbone (%s)%s",
                              at, y->arch, list, sug);
    }
    if (a->depths[0]) {
        bool ok = false;
        char list[64] = "";
        size_t u = 0;
        for (int i = 0; i < 5 && a->depths[i]; i++) {
            ok |= a->depths[i] == y->nlayers;
            int w = snprintf(list + u, sizeof list - u, "%s%d", u ? ", " : "", a->depths[i]);
            if (w > 0 && (size_t)w < sizeof list - u) u += (size_t)w;
        }
        if (!ok) {
            deft_spec_origin_where(o, y->nlayers ? "yolov4_config.nlayers" : "yolov4_config.arch", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: yolov4_config.nlayers %d is not a depth of '%s': use one of %s",
                                  at, y->nlayers, a->name, list);
        }
    }
    y->is_tiny = strncmp(a->name, "cspdarknet_tiny", 15) == 0;
    y->n_heads = strcmp(a->name, "cspdarknet_tiny") == 0 ? 2 : 3;
    if (*y->activation && strcmp(y->activation, "leaky_relu") && strcmp(y->activation, "relu") &&
        strcmp(y->activation, "mish")) {
        deft_spec_origin_where(o, "yolov4_config.activation", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: yolov4_config.activation '%.40s' is not one of: leaky_relu, relu, mish "
                              "(TAO would silently use leaky_relu)",
                              at, y->activation);
    }
    for (int i = 0; i < y->n_freeze_blocks; i++)
        if (y->freeze_blocks[i] != (double)(int)y->freeze_blocks[i]) {
            deft_spec_origin_where(o, "yolov4_config.freeze_blocks", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: yolov4_config.freeze_blocks: %g is not a block index "
                                  "(write whole numbers)", at, y->freeze_blocks[i]);
        }
    return DEFT_OK;
}

static enum deft_status check_anchors(struct deft_yolo_v4_config *y, const struct deft_spec_origin *o) {
    static const char *const keys[DEFT_YOLO_HEADS] = {"big_anchor_shape", "mid_anchor_shape", "small_anchor_shape"};
    const char *texts[DEFT_YOLO_HEADS] = {y->big_anchor_shape, y->mid_anchor_shape, y->small_anchor_shape};
    char at[300], path[64];
    for (int h = 0; h < DEFT_YOLO_HEADS; h++) {
        snprintf(path, sizeof path, "yolov4_config.%s", keys[h]);
        int err = 0;
        enum deft_status s = deft_yolo_parse_anchors(texts[h], y->anchors[h], DEFT_YOLO_MAX_ANCHORS,
                                                     &y->n_anchors[h], &err);
        if (s) {
            char why[200];
            snprintf(why, sizeof why, "%s", deft_last_error());
            const struct deft_spec_node *v = o->tree ? deft_spec_node_at(o->tree, path) : NULL;
            deft_spec_origin_where(o, path, at, sizeof at);
            if (v && v->kind == DEFT_SPEC_SCALAR && v->line > 0 && !strstr(at, "--set"))
                snprintf(at, sizeof at, "%s:%d:%d", v->file, v->line, v->col + (v->quoted ? 1 : 0) + err);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s \"%.80s\": %s (write \"[(w, h), (w, h), ...]\" in "
                                  "input pixels)", at, path, texts[h], why);
        }
    }
    if (y->n_anchors[DEFT_YOLO_BIG] == 0 || y->n_anchors[DEFT_YOLO_MID] == 0) {
        const char *k = y->n_anchors[DEFT_YOLO_BIG] == 0 ? "big_anchor_shape" : "mid_anchor_shape";
        snprintf(path, sizeof path, "yolov4_config.%s", k);
        deft_spec_origin_where(o, "yolov4_config", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: yolov4_config.%s is missing or empty: give the anchors as "
                              "\"[(w, h), ...]\" (deft yolo_v4 kmeans prints them)", at, k);
    }
    if (y->n_heads == 2) {
        if (y->n_anchors[DEFT_YOLO_SMALL]) {
            deft_spec_origin_where(o, "yolov4_config.small_anchor_shape", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: yolov4_config.small_anchor_shape: cspdarknet_tiny has "
                                  "two heads (big, mid): remove the small anchors", at);
        }
        if (y->small_grid_xy_extend != 0) {
            deft_spec_origin_where(o, "yolov4_config.small_grid_xy_extend", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: yolov4_config.small_grid_xy_extend: cspdarknet_tiny has "
                                  "no small head: remove it (or set 0)", at);
        }
    } else if (y->n_anchors[DEFT_YOLO_SMALL] == 0) {
        deft_spec_origin_where(o, "yolov4_config", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: yolov4_config.small_anchor_shape is missing or empty: '%s' "
                              "has three heads; give the stride-8 anchors as \"[(w, h), ...]\"", at, y->arch);
    }
    return DEFT_OK;
}

static enum deft_status check_augmentation(struct deft_yolo_config *c, const struct deft_spec_origin *o) {
    struct deft_yolo_augmentation_config *a = &c->augmentation_config;
    char at[300];
    const char *bad = a->output_width % 32 ? "output_width" : a->output_height % 32 ? "output_height" : NULL;
    if (bad) {
        char path[64];
        snprintf(path, sizeof path, "augmentation_config.%s", bad);
        int v = a->output_width % 32 ? a->output_width : a->output_height;
        deft_spec_origin_where(o, path, at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s = %d must be a multiple of 32 (the network's largest "
                              "stride): use %d or %d", at, path, v, v / 32 * 32 < 32 ? 32 : v / 32 * 32, (v / 32 + 1) * 32);
    }
    if (a->output_channel != 1 && a->output_channel != 3) {
        deft_spec_origin_where(o, "augmentation_config.output_channel", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: augmentation_config.output_channel must be 1 or 3", at);
    }
    int depth = a->output_depth ? a->output_depth : 8;
    if (depth != 8 && !(depth == 16 && a->output_channel == 1)) {
        deft_spec_origin_where(o, "augmentation_config.output_depth", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: augmentation_config.output_depth: 8 bits, or 16 for "
                              "1-channel images", at);
    }
    if (a->mosaic_min_ratio >= 0.5) {
        deft_spec_origin_where(o, "augmentation_config.mosaic_min_ratio", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: augmentation_config.mosaic_min_ratio must be in (0, 0.5)", at);
    }
    if (a->n_image_mean) {
        bool gray = a->output_channel == 1, good = a->n_image_mean == (gray ? 1 : 3);
        for (int i = 0; good && i < a->n_image_mean; i++) {
            const char *k = a->image_mean[i].key;
            good = gray ? strcmp(k, "l") == 0 : (!strcmp(k, "r") || !strcmp(k, "g") || !strcmp(k, "b"));
        }
        if (!good) {
            deft_spec_origin_where(o, "augmentation_config.image_mean", at, sizeof at);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: augmentation_config.image_mean needs keys %s for "
                                  "%d-channel input", at, gray ? "'l'" : "'r', 'g' and 'b'", a->output_channel);
        }
    }
    return DEFT_OK;
}


static enum deft_status check_dataset(struct deft_yolo_config *c, const struct deft_spec_origin *o) {
    struct deft_yolo_dataset_config *d = &c->dataset_config;
    char at[300];
    enum deft_status s = deft_det_check_dataset(d, o);
    if (s) return s;
    /* class weights name classes */
    const struct deft_yolo_class_weighting_config *w = &c->class_weighting_config;
    for (int i = 0; i < w->n_class_weighting; i++) {
        bool known = false;
        int best = 99;
        const char *bn = NULL;
        for (int k = 0; k < d->n_classes; k++) {
            if (strcasecmp(d->class_names[k], w->class_weighting[i].key) == 0) known = true;
            int dd = deft_spec_edit_distance(w->class_weighting[i].key, d->class_names[k]);
            if (dd < best) best = dd, bn = d->class_names[k];
        }
        if (known) continue;
        char sug[100] = "";
        if (bn && best <= 2) snprintf(sug, sizeof sug, "; did you mean '%s'?", bn);
        deft_spec_origin_where(o, "class_weighting_config.class_weighting", at, sizeof at);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: class_weighting_config: '%.40s' is not a class of "
                              "target_class_mapping%s", at, w->class_weighting[i].key, sug);
    }
    return DEFT_OK;
}

static enum deft_status resolve(void *obj, const struct deft_spec_origin *o) {
    struct deft_yolo_config *c = obj;
    enum deft_status s = check_arch(&c->yolov4_config, o);
    if (!s) s = check_anchors(&c->yolov4_config, o);
    if (!s) s = check_augmentation(c, o);
    if (!s) s = deft_det_check_training(&c->training_config, o, true);
    if (!s) s = check_dataset(c, o);
    if (s) return s;
    const struct deft_yolo_v4_config *y = &c->yolov4_config;
    if (y->loss_loc_weight == 0 || y->loss_class_weights == 0 || y->loss_neg_obj_weights == 0)
        deft_log(DEFT_LOG_WARN, "%s: yolov4_config: a loss weight is 0 (loc %g, neg_obj %g, class %g): that term is "
                 "off, as in TAO when the field is absent", o->file, y->loss_loc_weight, y->loss_neg_obj_weights,
                 y->loss_class_weights);
    return DEFT_OK;
}

/* ---- load / free ---------------------------------------------------------------------- */

void deft_yolo_config_free(struct deft_yolo_config *c) {
    if (!c) return;
    deft_det_free_classes(&c->dataset_config);
    deft_spec_release(&yolo_schema, c);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

enum deft_status deft_yolo_config_parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                                        const char *const *overrides, int n_overrides,
                                        struct deft_yolo_config *out) {
    memset(out, 0, sizeof *out);
    enum deft_status s = deft_spec_parse_resolved(&yolo_schema, out, text, n, name, fmt, overrides, n_overrides, HELP_CMD,
                                                  resolve, &out->source_path, &out->ignored_fields, &out->format);
    if (s) {
        deft_yolo_config_free(out);
        return s;
    }
    if (*out->ignored_fields)
        deft_log(DEFT_LOG_INFO, "%s: accepted but not used by deft yet: %s", out->source_path, out->ignored_fields);
    return DEFT_OK;
}

/* Every path field, for deft_spec_resolve_paths (spec-relative paths). */
static enum deft_status resolve_paths(struct deft_yolo_config *c, const char *path, const char *text) {
    struct deft_yolo_dataset_config *d = &c->dataset_config;
    int n = 3 * (d->n_data_sources + d->n_validation_data_sources) + 3, k = 0;
    char ***f = deft_calloc((size_t)n, sizeof *f);
    const char **nm = deft_calloc((size_t)n, sizeof *nm);
    enum deft_status s = DEFT_OK;
    if (!f || !nm) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int v = 0; !s && v < 2; v++) {
        struct deft_yolo_data_source *src = v ? d->validation_data_sources : d->data_sources;
        int ns = v ? d->n_validation_data_sources : d->n_data_sources;
        const char *what = v ? "validation_data_sources" : "data_sources";
        for (int i = 0; i < ns; i++) {
            f[k] = &src[i].label_directory_path, nm[k++] = what;
            f[k] = &src[i].image_directory_path, nm[k++] = what;
            f[k] = &src[i].split_list_path, nm[k++] = what;
        }
    }
    if (!s) {
        struct deft_yolo_training_config *t = &c->training_config;
        f[k] = &t->resume_model_path, nm[k++] = "resume_model_path";
        f[k] = &t->pretrain_model_path, nm[k++] = "pretrain_model_path";
        f[k] = &t->pruned_model_path, nm[k++] = "pruned_model_path";
        s = deft_spec_resolve_paths((char **const *)f, nm, k, path, text);
    }
    deft_free(f);
    deft_free(nm);
    return s;
}

enum deft_status deft_yolo_config_load(const char *path, const char *const *overrides, int n_overrides,
                                       struct deft_yolo_config *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t n = 0;
    enum deft_status s = deft_spec_read_file(path, &text, &n);
    if (s) return s;
    s = deft_yolo_config_parse(text, n, path, DEFT_SPEC_FORMAT_AUTO, overrides, n_overrides, out);
    if (!s && (s = resolve_paths(out, path, text))) deft_yolo_config_free(out);
    deft_free(text);
    return s;
}

/* ---- print / help / summary ------------------------------------------------------------ */

void deft_yolo_config_print(const struct deft_yolo_config *c, FILE *f) {
    fprintf(f, "# deft yolo_v4 spec, resolved%s%s%s%s\n", c->source_path ? " from " : "",
            c->source_path ? c->source_path : "", c->source_path ? " as " : "",
            c->source_path ? deft_spec_format_name(c->format) : "");
    struct deft_yolo_config d;
    memset(&d, 0, sizeof d);
    bool have_d = deft_spec_defaults(&yolo_schema, &d) == DEFT_OK;
    deft_spec_print(&yolo_schema, c, have_d ? &d : NULL, f, 0);
    deft_spec_release(&yolo_schema, &d);
}

void deft_yolo_config_help(FILE *f) {
    fprintf(f,
            "YOLOv4 / YOLOv4-tiny spec fields (TAO yolo_v4 names; .txt = TAO protobuf text, .yaml = the\n"
            "same fields as YAML, repeated blocks as lists). Override any field with --set path=value\n"
            "(lists as [a, b]; repeated blocks by index: dataset_config.data_sources.0.label_directory_path=DIR).\n"
            "Defaults: a field TAO accepts at 0 keeps 0; a field TAO rejects at 0 takes TAO's sample value.\n\n");
    fprintf(f, "%-48s %-12s %-12s %s\n", "field", "type", "default", "meaning");
    deft_spec_help(&yolo_schema, f, "");
}

static void print_sources(FILE *f, const char *title, const struct deft_yolo_data_source *s, int n) {
    if (n == 0) fprintf(f, "  %-13s: none\n", title);
    for (int i = 0; i < n; i++) {
        fprintf(f, "  %-13s: ", i ? "" : title);
        if (*s[i].label_directory_path)
            fprintf(f, "labels %s, images %s", s[i].label_directory_path, s[i].image_directory_path);
        else
            fprintf(f, "TFRecords %s (deft needs label_directory_path: training will stop)", s[i].tfrecords_path);
        if (*s[i].split_list_path) fprintf(f, ", split list %s", s[i].split_list_path);
        if (s[i].source_weight > 0) fprintf(f, ", weight %g", s[i].source_weight);
        fputc('\n', f);
    }
}

void deft_yolo_config_summary(const struct deft_yolo_config *c, FILE *f) {
    const struct deft_yolo_v4_config *y = &c->yolov4_config;
    const struct deft_yolo_training_config *t = &c->training_config;
    const struct deft_yolo_augmentation_config *a = &c->augmentation_config;
    const struct deft_yolo_dataset_config *d = &c->dataset_config;
    static const char *const head_name[DEFT_YOLO_HEADS] = {"big", "mid", "small"};
    static const int stride[DEFT_YOLO_HEADS] = {32, 16, 8};
    const double ext[DEFT_YOLO_HEADS] = {y->big_grid_xy_extend, y->mid_grid_xy_extend, y->small_grid_xy_extend};
    fprintf(f, "%s experiment from %s (%s)\n", y->is_tiny ? "YOLOv4-tiny" : "YOLOv4",
            c->source_path ? c->source_path : "memory", deft_spec_format_name(c->format));
    fprintf(f, "  %-13s: arch %s", "network", y->arch);
    if (y->nlayers) fprintf(f, ", nlayers %d", y->nlayers);
    fprintf(f, ", %d heads, activation %s%s", y->n_heads,
            y->force_relu ? "relu (force_relu)" : *y->activation ? y->activation : "leaky_relu",
            y->freeze_bn ? ", freeze_bn" : "");
    for (int i = 0; i < y->n_freeze_blocks; i++)
        fprintf(f, "%s%d", i ? ", " : ", frozen blocks ", (int)y->freeze_blocks[i]);
    fputc('\n', f);
    fprintf(f, "  %-13s: %d x %d x %d (width x height x channels)", "input", a->output_width, a->output_height,
            a->output_channel);
    if (a->randomize_input_shape_period)
        fprintf(f, ", size redrawn in 0.6-1.5x every %d batches", a->randomize_input_shape_period);
    fputc('\n', f);
    for (int h = 0; h < y->n_heads; h++) {
        fprintf(f, "  %-13s%s %-5s (stride %2d, grid %dx%d, xy extend %g):", h ? "" : "anchors (px)", h ? " " : ":",
                head_name[h],
                stride[h], a->output_width / stride[h], a->output_height / stride[h], ext[h]);
        for (int i = 0; i < y->n_anchors[h]; i++) fprintf(f, " (%g, %g)", y->anchors[h][i].w, y->anchors[h][i].h);
        fputc('\n', f);
    }
    fprintf(f, "  %-13s: %d:", "classes", d->n_classes);
    for (int i = 0; i < d->n_classes; i++) fprintf(f, "%s %s", i ? "," : "", d->class_names[i]);
    fputc('\n', f);
    fprintf(f, "  %-13s:", "mapping");
    for (int i = 0; i < d->n_target_class_mapping; i++)
        fprintf(f, "%s %s -> %s", i ? "," : "", d->target_class_mapping[i].key, d->target_class_mapping[i].value);
    fputc('\n', f);
    fprintf(f, "  %-13s: batch %d, %d epoch%s, checkpoint every %d, seed %d, model_ema %s\n", "training",
            t->batch_size_per_gpu, t->num_epochs, t->num_epochs == 1 ? "" : "s", t->checkpoint_interval,
            c->random_seed, t->model_ema ? "on" : "off");
    if (t->enable_qat) {
        fprintf(f, "  %-13s: int8 fake quantization, range decay %g%s%s, float:", "QAT", t->qat_ema_decay,
                t->qat_freeze_bn ? ", BN on running statistics" : "", t->qat_fusion ? ", add/pool inputs too" : "");
        for (int i = 0; i < t->n_qat_exclude; i++) fprintf(f, " %s", t->qat_exclude[i]);
        fprintf(f, "%s\n", t->n_qat_exclude ? "" : " nothing");
    }
    const struct deft_yolo_optimizer_config *op = &t->optimizer;
    if (op->kind == DEFT_YOLO_OPTIM_ADAM)
        fprintf(f, "  %-13s: adam (beta1 %g, beta2 %g, epsilon %g%s)", "optimizer", op->adam.beta1, op->adam.beta2,
                op->adam.epsilon, op->adam.amsgrad ? ", amsgrad" : "");
    else if (op->kind == DEFT_YOLO_OPTIM_SGD)
        fprintf(f, "  %-13s: sgd (momentum %g%s)", "optimizer", op->sgd.momentum, op->sgd.nesterov ? ", nesterov" : "");
    else
        fprintf(f, "  %-13s: rmsprop (rho %g, momentum %g, epsilon %g%s)", "optimizer", op->rmsprop.rho,
                op->rmsprop.momentum, op->rmsprop.epsilon, op->rmsprop.centered ? ", centered" : "");
    static const char *const reg[] = {"no regularizer", "L1", "L2"};
    if (t->regularizer.type == DEFT_YOLO_REG_NONE) fprintf(f, ", %s\n", reg[0]);
    else fprintf(f, ", %s regularizer %g\n", reg[t->regularizer.type], t->regularizer.weight);
    if (t->learning_rate.kind == DEFT_YOLO_LR_SOFT_START_COSINE) {
        const struct deft_yolo_lr_cosine *l = &t->learning_rate.soft_start_cosine_annealing_schedule;
        fprintf(f, "  %-13s: soft start %g -> %g over %g%% of the run, then cosine down to %g\n", "lr schedule",
                l->min_learning_rate, l->max_learning_rate, l->soft_start * 100, l->min_learning_rate);
    } else {
        const struct deft_yolo_lr_anneal *l = &t->learning_rate.soft_start_annealing_schedule;
        fprintf(f, "  %-13s: soft start %g -> %g over %g%% of the run, hold, anneal to %g from %g%%\n",
                "lr schedule", l->min_learning_rate, l->max_learning_rate, l->soft_start * 100, l->min_learning_rate,
                l->annealing * 100);
    }
    const char *from = *t->resume_model_path ? "resume" : *t->pretrain_model_path ? "pretrained"
                       : *t->pruned_model_path ? "pruned" : NULL;
    fprintf(f, "  %-13s: %s%s%s\n", "start from", from ? from : "scratch", from ? " " : "",
            *t->resume_model_path ? t->resume_model_path : *t->pretrain_model_path ? t->pretrain_model_path
                                                                                 : t->pruned_model_path);
    fprintf(f, "  %-13s: box_matching_iou %g, neutral IoU %g; loss weights loc %g, neg_obj %g, class %g; "
            "label smoothing %g", "matching/loss", y->box_matching_iou, y->matching_neutral_box_iou,
            y->loss_loc_weight, y->loss_neg_obj_weights, y->loss_class_weights, y->label_smoothing);
    if (y->focal_loss_alpha > 0 && y->focal_loss_gamma > 0)
        fprintf(f, "; focal alpha %g gamma %g", y->focal_loss_alpha, y->focal_loss_gamma);
    fputc('\n', f);
    fprintf(f, "  %-13s: hue %g, saturation %g, exposure %g, hflip %g, vflip %g, jitter %g, mosaic %g (min ratio %g)\n",
            "augmentation", a->hue, a->saturation, a->exposure, a->horizontal_flip, a->vertical_flip, a->jitter,
            a->mosaic_prob, a->mosaic_min_ratio);
    print_sources(f, "train data", d->data_sources, d->n_data_sources);
    print_sources(f, "val data", d->validation_data_sources, d->n_validation_data_sources);
    fprintf(f, "  %-13s: extension %s, difficult boxes %s training%s\n", "images",
            *d->image_extension ? d->image_extension : "any", d->include_difficult_in_training ? "in" : "out of",
            d->is_monochrome ? ", monochrome" : "");
    fprintf(f, "  %-13s: confidence %g, IoU %g, top_k %d\n", "nms", c->nms_config.confidence_threshold,
            c->nms_config.clustering_iou_threshold, c->nms_config.top_k);
    fprintf(f, "  %-13s: %s at IoU %g, batch %d\n", "evaluation",
            c->eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE ? "SAMPLE (VOC 11-point AP)"
                                                                         : "INTEGRATE (all-point AP)",
            c->eval_config.matching_iou_threshold, c->eval_config.batch_size);
    if (c->ignored_fields && *c->ignored_fields)
        fprintf(f, "  %-13s: %s\n", "not used yet", c->ignored_fields);
}

/* ---- paths --------------------------------------------------------------------------- */

/* Line of the spec file holding `value` (0 when it is not written there). */
static int line_of_value(const char *file, const char *value) {
    FILE *f = file && *value ? fopen(file, "r") : NULL;
    if (!f) return 0;
    char buf[4096];
    int line = 0, found = 0;
    while (!found && fgets(buf, sizeof buf, f)) {
        line++;
        if (strstr(buf, value)) found = line;
    }
    fclose(f);
    return found;
}

static void at_value(const struct deft_yolo_config *c, const char *value, char *buf, size_t n) {
    const char *src = c->source_path ? c->source_path : "spec";
    int line = line_of_value(c->source_path, value);
    if (line) snprintf(buf, n, "%s:%d", src, line);
    else snprintf(buf, n, "%s", src);
}

enum deft_status deft_yolo_config_validate_paths(const struct deft_yolo_config *c, bool strict) {
    const struct deft_yolo_dataset_config *d = &c->dataset_config;
    char at[4200], name[160];
    /* deft reads labels, not TFRecords: say how to fix the spec */
    for (int v = 0; v < 2; v++) {
        const struct deft_yolo_data_source *s = v ? d->validation_data_sources : d->data_sources;
        int n = v ? d->n_validation_data_sources : d->n_data_sources;
        for (int i = 0; i < n; i++)
            if (!*s[i].label_directory_path && *s[i].tfrecords_path) {
                at_value(c, s[i].tfrecords_path, at, sizeof at);
                return deft_set_error(DEFT_ERR_INVALID_ARG,
                                      "%s: dataset_config.%s[%d] gives only tfrecords_path: deft reads KITTI labels "
                                      "directly, so add label_directory_path (and image_directory_path) naming the "
                                      "folders the TFRecords were made from",
                                      at, v ? "validation_data_sources" : "data_sources", i);
            }
    }
    enum deft_status st = DEFT_OK;
    const struct deft_yolo_training_config *t = &c->training_config;
    for (int v = 0; v < 3; v++) {
        const struct deft_yolo_data_source *s = v == 0 ? d->data_sources : d->validation_data_sources;
        int n = v == 0 ? d->n_data_sources : v == 1 ? d->n_validation_data_sources : 1;
        for (int i = 0; i < n; i++) {
            struct { const char *field, *path; } p[3] = {{"label_directory_path", NULL}, {"image_directory_path", NULL},
                                                         {"split_list_path", NULL}};
            if (v < 2) {
                p[0].path = s[i].label_directory_path;
                p[1].path = s[i].image_directory_path;
                p[2].path = s[i].split_list_path;
            } else {
                p[0].field = *t->resume_model_path ? "resume_model_path" : *t->pruned_model_path ? "pruned_model_path"
                                                                                               : "pretrain_model_path";
                p[0].path = *t->resume_model_path ? t->resume_model_path : *t->pruned_model_path ? t->pruned_model_path
                                                                                               : t->pretrain_model_path;
            }
            for (int k = 0; k < 3; k++) {
                struct stat sb;
                if (!p[k].path || !*p[k].path || stat(p[k].path, &sb) == 0) continue;
                if (v < 2)
                    snprintf(name, sizeof name, "dataset_config.%s[%d].%s", v ? "validation_data_sources" : "data_sources",
                             i, p[k].field);
                else
                    snprintf(name, sizeof name, "training_config.%s", p[k].field);
                at_value(c, p[k].path, at, sizeof at);
                if (strict && !st)
                    st = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: '%s' does not exist (fix the path in the spec "
                                        "or use --set)", at, name, p[k].path);
                else
                    deft_log(strict ? DEFT_LOG_ERROR : DEFT_LOG_WARN, "%s: %s: '%s' does not exist", at, name, p[k].path);
                if (!strict && !st) /* lenient: warnings, and the status still says a run would stop */
                    st = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: %s: '%s' does not exist", at, name, p[k].path);
            }
        }
    }
    return st;
}

/* tv_det_run.c - running an imported torchvision detector on one image:
 * torchvision's transform (normalise, bilinear resize, zero padding to /32),
 * the graph (two ranges for SSD's L2 norm), the heads flattened as
 * torchvision flattens them, then the architecture's post-processing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/data.h"
#include "deft/io.h"
#include "deft/runtime.h"
#include "tasks/tv_detection/tv_det_impl.h"

enum tv_kind { TV_SSD, TV_SSDLITE, TV_RETINANET, TV_FRCNN };

struct deft_tv_detector {
    struct deft_graph *g; /* own copy, then the graph at the current input size */
    const struct deft_safetensors *w;
    struct deft_runtime *rt;
    int rt_h, rt_w; /* the input size rt was made for */
    enum tv_kind kind;
    char arch[64];
    int fixed, min_size, max_size, n_levels;
    struct deft_tv_frcnn_cfg frcnn;
    bool reduced_tail;
    float mean[3], std[3];
};

static int meta_int(const cJSON *o, const char *k, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : def;
}

static enum deft_status read_config(struct deft_tv_detector *d) {
    const char *arch = deft_graph_get_meta(d->g, "arch"), *cfg = deft_graph_get_meta(d->g, "tv_det");
    if (!arch || !cfg) return deft_set_error(DEFT_ERR_FORMAT, "not a torchvision detector (no tv_det metadata)");
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    snprintf(d->arch, sizeof d->arch, "%.*s", (int)strlen(arch) - 2 > 0 ? (int)strlen(arch) - 2 : 0, arch + 1);
    if (!strcmp(arch, "\"ssd300_vgg16\"")) {
        d->kind = TV_SSD;
        d->n_levels = 6;
        const float m[3] = {0.48235f, 0.45882f, 0.40784f};
        for (int c = 0; c < 3; c++) d->mean[c] = m[c], d->std[c] = (float)(1.0 / 255.0);
    } else if (!strcmp(arch, "\"ssdlite320_mobilenet_v3_large\"")) {
        d->kind = TV_SSDLITE;
        d->n_levels = 6;
        for (int c = 0; c < 3; c++) d->mean[c] = 0.5f, d->std[c] = 0.5f;
    } else if (!strcmp(arch, "\"retinanet_resnet50_fpn\"") || !strcmp(arch, "\"fasterrcnn_resnet50_fpn\"")) {
        d->kind = strstr(arch, "retinanet") ? TV_RETINANET : TV_FRCNN;
        d->n_levels = 5;
        d->frcnn = (struct deft_tv_frcnn_cfg){.n_roi = 4, .roi_k_min = 2};
        memcpy(d->mean, imagenet_mean, sizeof d->mean);
        memcpy(d->std, imagenet_std, sizeof d->std);
    } else if (!strcmp(arch, "\"fasterrcnn_mobilenet_v3_large_fpn\"")) {
        d->kind = TV_FRCNN;
        d->n_levels = 3;
        d->frcnn = (struct deft_tv_frcnn_cfg){.all_sizes = true, .rpn_score_thresh = 0.05f, .n_roi = 1, .roi_k_min = 5};
        memcpy(d->mean, imagenet_mean, sizeof d->mean);
        memcpy(d->std, imagenet_std, sizeof d->std);
    } else {
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "torchvision detector %s: not supported", arch);
    }
    cJSON *o = cJSON_Parse(cfg);
    if (!o) return deft_set_error(DEFT_ERR_FORMAT, "tv_det metadata is not JSON");
    d->fixed = meta_int(o, "fixed_size", 0);
    d->min_size = meta_int(o, "min_size", 800);
    d->max_size = meta_int(o, "max_size", 1333);
    d->reduced_tail = meta_int(o, "reduced_tail", 0) != 0;
    cJSON_Delete(o);
    if (d->min_size < 1 || d->max_size < 1 || d->fixed < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "tv_det metadata: bad sizes");
    return DEFT_OK;
}

enum deft_status deft_tv_detector_create(const struct deft_graph *g, const struct deft_safetensors *w,
                                         struct deft_tv_detector **out) {
    *out = NULL;
    struct deft_tv_detector *d = deft_calloc(1, sizeof *d);
    if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    d->w = w;
    enum deft_status s = deft_graph_clone(g, &d->g);
    if (!s) s = read_config(d);
    if (s) {
        deft_tv_detector_free(d);
        return s;
    }
    *out = d;
    return DEFT_OK;
}

void deft_tv_detector_free(struct deft_tv_detector *d) {
    if (!d) return;
    deft_runtime_free(d->rt);
    deft_graph_free(d->g);
    deft_free(d);
}

void deft_tv_det_result_free(struct deft_tv_det_result *r) {
    if (!r) return;
    deft_free(r->raw_boxes);
    deft_free(r->raw_scores);
    deft_free(r->boxes);
    deft_free(r->scores);
    deft_free(r->labels);
    memset(r, 0, sizeof *r);
}

/* GeneralizedRCNNTransform's output size: scale = min(min_size / short side,
 * max_size / long side) in float, where python-float / tensor is computed as
 * reciprocal(tensor) * python-float (Tensor.__rtruediv__: 320 / 400 gives
 * 0.79999998, so 400 px become 319); size = floor(side * scale) in double. */
static void frame_of(const struct deft_tv_detector *d, int h, int w, struct tv_frame *f) {
    f->orig_h = h, f->orig_w = w;
    if (d->fixed) {
        f->img_h = f->img_w = f->in_h = f->in_w = d->fixed;
        return;
    }
    float mn = (float)(h < w ? h : w), mx = (float)(h < w ? w : h);
    float a = (1.0f / mn) * (float)d->min_size, b = (1.0f / mx) * (float)d->max_size;
    double scale = a < b ? a : b;
    f->img_h = (int)floor((double)h * scale);
    f->img_w = (int)floor((double)w * scale);
    f->in_h = (f->img_h + 31) / 32 * 32;
    f->in_w = (f->img_w + 31) / 32 * 32;
}

/* PyTorch's upsample_bilinear2d (align_corners=False) source index and weights. */
static void linear_taps(int in, int out, int i, int *i0, int *i1, float *l0, float *l1) {
    float scale = (float)in / (float)out;
    float real = scale * ((float)i + 0.5f) - 0.5f;
    if (real < 0) real = 0;
    int k = (int)real;
    float lam = real - (float)k;
    if (lam < 0) lam = 0;
    if (lam > 1) lam = 1;
    *i0 = k;
    *i1 = k + (k < in - 1 ? 1 : 0);
    *l1 = lam;
    *l0 = 1.0f - lam;
}

/* normalize (x/255 - mean) / std at full size, bilinear resize to the frame,
 * zero padding right and bottom: torchvision's order. */
static enum deft_status preprocess(const struct deft_tv_detector *d, const struct deft_image *img,
                                   const struct tv_frame *f, float *x) {
    size_t plane = (size_t)img->w * (size_t)img->h;
    float *src = deft_malloc(plane * 3 * sizeof *src);
    if (!src) return deft_set_error(DEFT_ERR_NOMEM, "out of memory (%dx%d image)", img->w, img->h);
    for (int c = 0; c < 3; c++)
        for (size_t p = 0; p < plane; p++)
            src[c * plane + p] = ((float)img->rgb[3 * p + c] / 255.0f - d->mean[c]) / d->std[c];
    memset(x, 0, (size_t)f->in_h * (size_t)f->in_w * 3 * sizeof *x);
    for (int oy = 0; oy < f->img_h; oy++) {
        int y0, y1;
        float ly0, ly1;
        linear_taps(img->h, f->img_h, oy, &y0, &y1, &ly0, &ly1);
        for (int ox = 0; ox < f->img_w; ox++) {
            int x0, x1;
            float lx0, lx1;
            linear_taps(img->w, f->img_w, ox, &x0, &x1, &lx0, &lx1);
            for (int c = 0; c < 3; c++) {
                const float *s = src + c * plane;
                float v = ly0 * (lx0 * s[(size_t)y0 * img->w + x0] + lx1 * s[(size_t)y0 * img->w + x1]) +
                          ly1 * (lx0 * s[(size_t)y1 * img->w + x0] + lx1 * s[(size_t)y1 * img->w + x1]);
                x[((size_t)c * f->in_h + oy) * f->in_w + ox] = v;
            }
        }
    }
    deft_free(src);
    return DEFT_OK;
}

/* A runtime for this input size: the graph built again at that size (its
 * upsampling sizes are fixed at build time), the weights copied by name. */
static enum deft_status runtime_for(struct deft_tv_detector *d, int h, int w) {
    if (d->rt && d->rt_h == h && d->rt_w == w) return DEFT_OK;
    deft_runtime_free(d->rt);
    d->rt = NULL;
    const char *nc = deft_graph_get_meta(d->g, "num_classes");
    struct deft_graph *g = NULL;
    struct deft_tv_det_opts o = {.arch = d->arch, .num_classes = nc ? atoi(nc) : 0, .min_size = d->min_size,
                                 .max_size = d->max_size, .height = h, .width = w,
                                 .reduced_tail = d->reduced_tail};
    enum deft_status st = deft_tv_det_build(&o, &g);
    if (st) return st;
    deft_graph_free(d->g);
    d->g = g;
    if (!st) st = deft_runtime_create(d->g, &(struct deft_runtime_opts){0}, &d->rt);
    if (!st) st = deft_model_copy_to_runtime(d->w, d->rt, 0, NULL);
    if (st) {
        deft_runtime_free(d->rt);
        d->rt = NULL;
        return st;
    }
    d->rt_h = h, d->rt_w = w;
    return DEFT_OK;
}

/* SSD: F.normalize(conv4_3) (L2 over channels, eps 1e-12) into the second range's input. */
static enum deft_status ssd_l2norm(struct deft_tv_detector *d) {
    int src = deft_graph_find_role(d->g, "tv_l2_src"), dst = deft_graph_find_role(d->g, "tv_l2_in");
    int split = deft_graph_find_node(d->g, "backbone.scale_weight.view");
    if (src < 0 || dst < 0 || split < 0) return deft_set_error(DEFT_ERR_FORMAT, "ssd300_vgg16 graph: no L2 norm split");
    const struct deft_shape *s = &deft_graph_value(d->g, src)->shape;
    size_t c = (size_t)s->d[1], hw = (size_t)(s->d[2] * s->d[3]);
    float *v = deft_malloc(c * hw * sizeof *v);
    if (!v) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status st = deft_runtime_run_range(d->rt, 0, split);
    if (!st) st = deft_runtime_read(d->rt, src, v, c * hw);
    for (size_t p = 0; !st && p < hw; p++) {
        double ss = 0;
        for (size_t k = 0; k < c; k++) ss += (double)v[k * hw + p] * v[k * hw + p];
        float n = (float)sqrt(ss);
        if (n < 1e-12f) n = 1e-12f;
        for (size_t k = 0; k < c; k++) v[k * hw + p] /= n;
    }
    if (!st) st = deft_runtime_set_input(d->rt, dst, v, c * hw);
    if (!st) st = deft_runtime_run_range(d->rt, split, deft_graph_num_nodes(d->g));
    deft_free(v);
    return st;
}

/* Faster R-CNN: the first range, up to the RoI pooling (backbone, FPN, RPN head). */
static enum deft_status rpn_range(struct deft_tv_detector *d) {
    int split = deft_graph_find_node(d->g, "roi_heads.box_roi_pool.l0");
    if (split < 0) return deft_set_error(DEFT_ERR_FORMAT, "fasterrcnn graph: no RoI pooling");
    return deft_runtime_run_range(d->rt, 0, split);
}

/* Level outputs (N=1, A*K, H, W) -> rows (h, w, a) of K values, as SSDScoringHead / RetinaNet's heads. */
static void flatten_level(const float *y, int ak, int k, int h, int w, float *out) {
    int a = ak / k;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
            for (int q = 0; q < a; q++)
                for (int r = 0; r < k; r++)
                    out[(((size_t)i * w + j) * a + q) * k + r] = y[((size_t)(q * k + r) * h + i) * w + j];
}

static enum deft_status read_heads(struct deft_tv_detector *d, struct tv_heads *hd) {
    memset(hd, 0, sizeof *hd);
    hd->n_levels = d->n_levels;
    int cls[TV_MAX_LEVELS], reg[TV_MAX_LEVELS], na = 0, nc = 0;
    for (int l = 0; l < d->n_levels; l++) {
        char r1[16], r2[16];
        snprintf(r1, sizeof r1, "tv_cls_%d", l);
        snprintf(r2, sizeof r2, "tv_reg_%d", l);
        cls[l] = deft_graph_find_role(d->g, r1), reg[l] = deft_graph_find_role(d->g, r2);
        if (cls[l] < 0 || reg[l] < 0) return deft_set_error(DEFT_ERR_FORMAT, "detector graph: no head output %s", r1);
        const struct deft_shape *c = &deft_graph_value(d->g, cls[l])->shape;
        const struct deft_shape *r = &deft_graph_value(d->g, reg[l])->shape;
        int a = (int)r->d[1] / 4;
        if (a < 1 || c->d[1] % a) return deft_set_error(DEFT_ERR_FORMAT, "detector graph: head %d shapes", l);
        if (l == 0) nc = (int)(c->d[1] / a);
        if (c->d[1] / a != nc) return deft_set_error(DEFT_ERR_FORMAT, "detector graph: head %d classes", l);
        hd->fh[l] = (int)c->d[2], hd->fw[l] = (int)c->d[3];
        hd->start[l] = na;
        na += a * hd->fh[l] * hd->fw[l];
    }
    hd->start[d->n_levels] = na;
    hd->n_cls = nc;
    hd->cls = deft_malloc((size_t)na * nc * sizeof(float));
    hd->reg = deft_malloc((size_t)na * 4 * sizeof(float));
    float *tmp = NULL;
    enum deft_status s = hd->cls && hd->reg ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int l = 0; !s && l < d->n_levels; l++) {
        for (int q = 0; !s && q < 2; q++) {
            int v = q ? reg[l] : cls[l], k = q ? 4 : nc;
            const struct deft_shape *sh = &deft_graph_value(d->g, v)->shape;
            size_t n = (size_t)deft_shape_numel(sh);
            float *t = deft_realloc(tmp, n * sizeof *t);
            if (!t) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            else tmp = t;
            if (!s) s = deft_runtime_read(d->rt, v, tmp, n);
            if (!s)
                flatten_level(tmp, (int)sh->d[1], k, hd->fh[l], hd->fw[l],
                              (q ? hd->reg : hd->cls) + (size_t)hd->start[l] * k);
        }
    }
    deft_free(tmp);
    return s;
}

enum deft_status deft_tv_detector_run(struct deft_tv_detector *d, const struct deft_image *img,
                                      struct deft_tv_det_result *res) {
    memset(res, 0, sizeof *res);
    if (!img || !img->rgb || img->w < 1 || img->h < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "empty image");
    struct tv_frame f;
    frame_of(d, img->h, img->w, &f);
    if (f.img_h < 1 || f.img_w < 1 || f.in_h > 8192 || f.in_w > 8192)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "image %dx%d resizes to %dx%d", img->w, img->h, f.img_w, f.img_h);
    enum deft_status s = runtime_for(d, f.in_h, f.in_w);
    if (s) return s;
    float *x = deft_malloc((size_t)f.in_h * f.in_w * 3 * sizeof *x);
    if (!x) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    s = preprocess(d, img, &f, x);
    int xv = deft_graph_find_role(d->g, DEFT_ROLE_IMAGE);
    if (!s) s = deft_runtime_set_input(d->rt, xv, x, (size_t)f.in_h * f.in_w * 3);
    deft_free(x);
    if (!s) s = d->kind == TV_SSD ? ssd_l2norm(d) : d->kind == TV_FRCNN ? rpn_range(d) : deft_runtime_run(d->rt);
    struct tv_heads hd = {0};
    if (!s) s = read_heads(d, &hd);
    if (!s)
        s = d->kind == TV_SSD       ? deft_tv_ssd_post(&hd, &f, res)
            : d->kind == TV_SSDLITE ? deft_tv_ssdlite_post(&hd, &f, res)
            : d->kind == TV_FRCNN   ? deft_tv_fasterrcnn_post(&d->frcnn, d->rt, d->g, &hd, &f, res)
                                    : deft_tv_retinanet_post(&hd, &f, res);
    deft_free(hd.cls);
    deft_free(hd.reg);
    if (s) deft_tv_det_result_free(res);
    return s;
}

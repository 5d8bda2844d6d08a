/* unet_eval.c - `deft unet evaluate` (the pixel confusion matrix over the
 * validation set: per-class IoU, precision, recall, F1, mIoU, pixel accuracy,
 * metrics.json and a plot) and `deft unet inference` (a class-id mask and a
 * colour overlay per image, at the image's own size). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/data.h"
#include "deft/io.h"
#include "deft/loop.h"
#include "deft/report.h"
#include "deft/runtime.h"
#include "tasks/unet/unet_task.h"

/* A saved model run at a fixed batch on the spec's input size. */
struct net {
    struct deft_model *m;
    struct deft_runtime *rt;
    int input, logits, batch, classes;
};

static void net_close(struct net *n) {
    deft_runtime_free(n->rt);
    deft_model_free(n->m);
    memset(n, 0, sizeof *n);
}

static enum deft_status net_open(struct net *n, const char *path, const struct unet_setup *u, int batch,
                                 const struct deft_task_args *a) {
    memset(n, 0, sizeof *n);
    enum deft_status s = deft_model_load(path, &n->m);
    if (s) return s;
    struct deft_graph *g = n->m->graph;
    n->input = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    n->logits = deft_graph_find_role(g, DEFT_ROLE_LOGITS);
    if (n->input < 0 || n->logits < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a segmentation model (no image input or no output)", path);
    const struct deft_shape *in = &deft_graph_value(g, n->input)->shape, *lo = &deft_graph_value(g, n->logits)->shape;
    if (in->ndim != 4 || lo->ndim != 4 || in->d[1] != u->model.channels || in->d[2] != u->model.height ||
        in->d[3] != u->model.width || lo->d[1] != u->model.num_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s takes [%lld, %lld, %lld] images to %lld classes but the spec "
                              "says [%d, %d, %d] and %d", path, (long long)in->d[1], (long long)in->d[2],
                              (long long)in->d[3], (long long)lo->d[1], u->model.channels, u->model.height,
                              u->model.width, u->model.num_classes);
    deft_graph_set_training(g, false);
    struct deft_shape b = deft_shape4(batch, in->d[1], in->d[2], in->d[3]);
    if ((s = deft_graph_reshape_input(g, n->input, &b)) ||
        (s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = a->backend, .device_index = a->gpu_index},
                                 &n->rt)) ||
        (s = deft_model_copy_to_runtime(n->m->file, n->rt, 0, NULL)))
        return deft_wrap_error(s, "%s", path);
    n->batch = batch;
    n->classes = (int)lo->d[1];
    return DEFT_OK;
}

/* k <= batch images in, k logit maps out. */
static enum deft_status net_run(struct net *n, const float *images, int k, size_t per_image, float *logits,
                                size_t per_logits) {
    float *in = deft_runtime_data(n->rt, n->input);
    memcpy(in, images, (size_t)k * per_image * sizeof(float));
    for (int i = k; i < n->batch; i++) memcpy(in + (size_t)i * per_image, images, per_image * sizeof(float));
    enum deft_status s = deft_runtime_run(n->rt);
    if (s) return s;
    float *all = deft_malloc((size_t)n->batch * per_logits * sizeof(float));
    if (!all) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    s = deft_runtime_read(n->rt, n->logits, all, (size_t)n->batch * per_logits);
    if (!s) memcpy(logits, all, (size_t)k * per_logits * sizeof(float));
    deft_free(all);
    return s;
}

static const char *model_path(const struct deft_task_args *a, char *buf, size_t n, FILE *out) {
    if (a->model) return a->model;
    const char *m = a->results_dir && a->results_dir[0] ? deft_run_dir_model(a->results_dir, buf, n) : NULL;
    if (m) fprintf(out, "model: %s (give -m to choose another)\n", m);
    return m;
}

enum deft_status unet_evaluate(const struct deft_task_args *a) { return unet_validate(a, NULL); }

enum deft_status unet_validate(const struct deft_task_args *a, double *miou) {
    FILE *out = a->out ? a->out : stdout;
    struct unet_setup u;
    struct deft_seg_dataset ds = {0};
    struct deft_seg_loader *ld = NULL;
    struct net n = {0};
    struct deft_seg_confusion c = {0};
    struct deft_seg_metrics m = {0};
    float *images = NULL, *logits = NULL;
    int32_t *masks = NULL, *pred = NULL;
    char buf[2400];
    enum deft_status s = unet_setup_load(&u, a);
    if (s) return s;
    const char *model = model_path(a, buf, sizeof buf, out);
    if (!model) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "no model: give -m MODEL, or -r RUN holding weights/best.safetensors");
        goto done;
    }
    if (!unet_has_split(&u, true)) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no dataset_config.val_images_path (or val_data_sources) to "
                           "evaluate on", u.cfg.source_path);
        goto done;
    }
    if (a->threads > 0) deft_set_threads(a->threads);
    const char *what;
    if ((s = unet_open_split(&u, true, &ds, &what))) goto done;
    int batch = u.batch < ds.n ? u.batch : ds.n;
    u.val_lo.batch = batch;
    size_t plane = (size_t)u.model.width * (size_t)u.model.height, per = (size_t)u.model.channels * plane,
           per_l = (size_t)u.model.num_classes * plane;
    images = deft_malloc((size_t)batch * per * sizeof *images);
    logits = deft_malloc((size_t)batch * per_l * sizeof *logits);
    masks = deft_malloc((size_t)batch * plane * sizeof *masks);
    pred = deft_malloc((size_t)batch * plane * sizeof *pred);
    if (!images || !logits || !masks || !pred) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((s = net_open(&n, model, &u, batch, a)) || (s = deft_seg_loader_create(&u.val_lo, &ds, &ld)) ||
        (s = deft_seg_confusion_init(&c, u.n_classes)))
        goto done;
    fprintf(out, "evaluating %s on %d images of %s at %dx%dx%d\n", model, ds.n, what, u.model.channels,
            u.model.height, u.model.width);
    int k = 0;
    while (!(s = deft_seg_loader_next(ld, images, masks, NULL, &k)) && k) {
        if ((s = net_run(&n, images, k, per, logits, per_l)) ||
            (s = deft_seg_argmax(logits, k, u.model.num_classes, u.model.height, u.model.width, pred)) ||
            (s = deft_seg_confusion_add(&c, pred, masks, (size_t)k * plane, u.ignore_id)))
            break;
    }
    if (s || (s = deft_seg_metrics_compute(&c, &m))) goto done;
    deft_seg_metrics_print(out, &m, u.class_names);
    if (miou) *miou = m.miou;
    if (a->results_dir && a->results_dir[0]) {
        char p[4096];
        snprintf(p, sizeof p, "%s/evaluate", a->results_dir);
        if ((s = deft_mkdirs(p))) goto done;
        snprintf(p, sizeof p, "%s/evaluate/metrics.json", a->results_dir);
        if ((s = deft_seg_metrics_write_json(p, &m, u.class_names))) goto done;
        snprintf(p, sizeof p, "%s/evaluate/confusion", a->results_dir);
        if ((s = deft_seg_confusion_plot(p, &c, u.class_names))) goto done;
        fprintf(out, "results: %s/evaluate/metrics.json, confusion.png\n", a->results_dir);
    }
done:
    deft_seg_metrics_free(&m);
    deft_seg_confusion_free(&c);
    deft_free(images);
    deft_free(logits);
    deft_free(masks);
    deft_free(pred);
    deft_seg_loader_free(ld);
    deft_seg_dataset_free(&ds);
    net_close(&n);
    unet_setup_free(&u);
    return s;
}

/* ---- inference ---- */

static const unsigned char palette[][3] = {
    {230, 25, 75}, {60, 180, 75}, {0, 130, 200}, {245, 130, 48}, {145, 30, 180}, {70, 240, 240},
    {240, 50, 230}, {210, 245, 60}, {250, 190, 212}, {0, 128, 128}, {220, 190, 255}, {170, 110, 40},
};
#define N_PALETTE (int)(sizeof palette / sizeof palette[0])

/* The class map at network size resampled (nearest) to the image's w x h, and written as an
 * 8-bit grey PNG of class ids and as the image under a half-transparent colour per class.
 * With resize_padding only the image's place in the input maps back. */
static enum deft_status write_outputs(const char *dir, const char *stem, const int32_t *pred,
                                      const struct deft_seg_loader_opts *lo, const char *image_path) {
    int pw = lo->width, ph = lo->height;
    struct deft_image im = {0};
    enum deft_status s = deft_image_load(image_path, NULL, &im);
    if (s) return s;
    struct deft_image mask = {im.w, im.h, deft_malloc((size_t)im.w * im.h * 3)};
    if (!mask.rgb) {
        deft_image_free(&im);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    struct deft_seg_place pl = deft_seg_place_of(lo, im.w, im.h);
    for (int y = 0; y < im.h; y++) {
        int sy = pl.y + (int)(((double)y + 0.5) * pl.h / im.h);
        for (int x = 0; x < im.w; x++) {
            int sx = pl.x + (int)(((double)x + 0.5) * pl.w / im.w);
            int c = pred[(size_t)(sy < ph ? sy : ph - 1) * pw + (sx < pw ? sx : pw - 1)];
            uint8_t *px = mask.rgb + ((size_t)y * im.w + x) * 3, *ip = im.rgb + ((size_t)y * im.w + x) * 3;
            px[0] = px[1] = px[2] = (uint8_t)(c < 0 ? 255 : c > 254 ? 254 : c);
            const unsigned char *col = palette[(c < 0 ? 0 : c) % N_PALETTE];
            for (int k = 0; k < 3; k++) ip[k] = (uint8_t)((ip[k] + col[k]) / 2);
        }
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/masks/%s.png", dir, stem);
    s = deft_image_save_png(&mask, p);
    snprintf(p, sizeof p, "%s/overlays/%s.png", dir, stem);
    if (!s) s = deft_image_save_png(&im, p);
    deft_image_free(&mask);
    deft_image_free(&im);
    return s;
}

static void stem_of(const char *path, char *buf, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    snprintf(buf, n, "%.*s", dot ? (int)(dot - b) : (int)strlen(b), b);
}

enum deft_status unet_inference(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->model || !a->input || !a->output_file)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "inference needs -m MODEL -e SPEC -i IMAGE_DIR -o OUT_DIR");
    struct unet_setup u;
    struct deft_seg_dataset ds = {0};
    struct net n = {0};
    float *image = NULL, *logits = NULL;
    int32_t *pred = NULL;
    enum deft_status s = unet_setup_load(&u, a);
    if (s) return s;
    if (a->threads > 0) deft_set_threads(a->threads);
    size_t plane = (size_t)u.model.width * (size_t)u.model.height;
    image = deft_malloc((size_t)u.model.channels * plane * sizeof *image);
    logits = deft_malloc((size_t)u.model.num_classes * plane * sizeof *logits);
    pred = deft_malloc(plane * sizeof *pred);
    char p[4096];
    if (!image || !logits || !pred) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = deft_seg_dataset_open(a->input, NULL, &ds);
    if (!s) s = net_open(&n, a->model, &u, 1, a);
    snprintf(p, sizeof p, "%s/masks", a->output_file);
    if (!s) s = deft_mkdirs(p);
    snprintf(p, sizeof p, "%s/overlays", a->output_file);
    if (!s) s = deft_mkdirs(p);
    int done_n = 0, skipped = 0;
    for (int i = 0; i < ds.n && !s; i++) {
        char stem[1024];
        stem_of(ds.samples[i].image, stem, sizeof stem);
        s = deft_seg_load_pair(&u.val_lo, &ds.samples[i], image, NULL);
        if (!s) s = net_run(&n, image, 1, (size_t)u.model.channels * plane, logits, (size_t)u.model.num_classes * plane);
        if (!s) s = deft_seg_argmax(logits, 1, u.model.num_classes, u.model.height, u.model.width, pred);
        if (!s) s = write_outputs(a->output_file, stem, pred, &u.val_lo, ds.samples[i].image);
        if (s == DEFT_ERR_FORMAT && !a->fatal_corrupt) { /* a corrupt image: said, skipped */
            deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
            s = DEFT_OK;
            skipped++;
            continue;
        }
        if (!s) done_n++;
    }
    if (!s)
        fprintf(out, "%d image%s segmented%s -> %s/masks (class ids) and %s/overlays\n", done_n, done_n == 1 ? "" : "s",
                skipped ? " (corrupt ones skipped)" : "", a->output_file, a->output_file);
    deft_free(image);
    deft_free(logits);
    deft_free(pred);
    deft_seg_dataset_free(&ds);
    net_close(&n);
    unet_setup_free(&u);
    return s;
}

/* ssd_eval.c - `deft ssd evaluate` (mAP of a saved model on the spec's
 * validation data, TAO's definition by default, the others by --ap_mode) and
 * `inference` (annotated images, KITTI labels with the score as a 16th
 * field, JSON), both through ssd_detect_image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/loop.h"
#include "deft/report.h"
#include "tasks/common/det_detect_all.h"
#include "tasks/common/det_infer_io.h"
#include "tasks/common/det_split.h"
#include "tasks/ssd/ssd_task.h"

/* The model and NMS settings behind det_detect_all's hooks. */
struct ssd_det { struct ssd_model *sm; const struct ssd_nms *nms; };
static enum deft_status run_batch(void *ctx, const struct deft_det_batch *b) {
    return ssd_model_run(((struct ssd_det *)ctx)->sm, b->images, b->n);
}
static enum deft_status detect_item(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n) {
    const struct ssd_det *e = ctx;
    return ssd_detect_image(&e->sm->geom, (const float *const *)e->sm->outs, i, &b->lb[i], e->nms, boxes, n);
}

/* Every detection of a dataset with a loaded model (evaluation transform: its letterbox). */
static enum deft_status detect_all(struct ssd_model *sm, const struct deft_det_dataset *ds, const struct ssd_nms *nms,
                                   int threads, const char *dump_dir, struct det_dets *d, FILE *out) {
    struct deft_det_loader_opts lo;
    deft_det_loader_opts_defaults(&lo);
    lo.batch_size = sm->batch;
    lo.num_threads = threads > 0 ? threads : 2;
    lo.shuffle = false;
    lo.drop_last = false;
    deft_det_transform_defaults(&lo.transform);
    lo.transform.net_w = sm->geom.net_w;
    lo.transform.net_h = sm->geom.net_h;
    lo.transform.pre = sm->pre;
    struct ssd_det e = {sm, nms};
    struct det_detector net = {.ctx = &e, .run = run_batch, .detect = detect_item};
    return det_detect_all(&lo, ds, &net, dump_dir, d, out);
}

static enum deft_status nms_from_args(const struct deft_task_args *a, const struct ssd_setup *ss, struct ssd_nms *nms) {
    *nms = (struct ssd_nms){0.01f, 0.6f, 200}; /* TAO's SSD sample nms_config */
    if (ss && ss->cfg_loaded)
        *nms = (struct ssd_nms){(float)ss->cfg.nms_config.confidence_threshold,
                                (float)ss->cfg.nms_config.clustering_iou_threshold, ss->cfg.nms_config.top_k};
    const char *t = deft_task_arg(a, "--threshold");
    if (t) {
        char *end;
        errno = 0;
        double v = strtod(t, &end);
        if (errno || end == t || *end || !(v >= 0 && v <= 1))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "--threshold expects a confidence in [0, 1], got '%s'", t);
        nms->conf = (float)v;
    }
    return DEFT_OK;
}

static enum deft_status same_classes(const struct ssd_model *sm, const struct deft_det_dataset *ds, const char *model) {
    if (sm->n_classes != ds->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec's data has %d", model, sm->n_classes,
                              ds->n_classes);
    for (int k = 0; k < ds->n_classes; k++)
        if (strcmp(sm->classes[k], ds->class_names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "class %d is '%s' in %s but '%s' in the spec's data", k,
                                  sm->classes[k], model, ds->class_names[k]);
    return DEFT_OK;
}

static enum deft_status write_results(const char *dir, const struct deft_det_metrics *m, char *const *names, FILE *out) {
    char p[4096];
    snprintf(p, sizeof p, "%s/evaluate", dir);
    enum deft_status s = deft_mkdirs(p);
    snprintf(p, sizeof p, "%s/evaluate/results.json", dir);
    if (!s) s = deft_det_metrics_write_json(p, m, (const char *const *)names);
    if (!s) fprintf(out, "wrote %s\n", p);
    snprintf(p, sizeof p, "%s/evaluate/pr_curve", dir);
    if (!s) s = deft_det_metrics_plot_pr(p, m, (const char *const *)names);
    return s;
}

enum deft_status ssd_evaluate(const struct deft_task_args *a) { return ssd_validate_net(a, false, NULL); }
enum deft_status ssd_validate(const struct deft_task_args *a, double *map) { return ssd_validate_net(a, false, map); }

enum deft_status ssd_validate_net(const struct deft_task_args *a, bool retina, double *map) {
    FILE *out = a->out ? a->out : stdout;
    struct ssd_setup ss;
    struct ssd_model sm = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    enum deft_status s = ssd_setup_load(&ss, a, retina);
    if (s) goto done;
    const struct deft_ssd_config *c = &ss.cfg;
    enum deft_ap_mode mode = c->eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE ? DEFT_AP_SAMPLE
                                                                                        : DEFT_AP_INTEGRATE;
    const char *am = deft_task_arg(a, "--ap_mode");
    if (am && (s = deft_ap_mode_parse(am, &mode))) goto done;
    struct ssd_nms nms;
    if ((s = nms_from_args(a, &ss, &nms))) goto done;
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = det_spec_read_split(&c->dataset_config, c->source_path, c->dataset_config.n_validation_data_sources > 0,
                                 &ds)))
        goto done;
    char run_model[2400];
    const char *model = a->model ? a->model
                                 : deft_run_dir_model(a->results_dir && a->results_dir[0] ? a->results_dir : c->results_dir,
                                                      run_model, sizeof run_model);
    if (!model) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "no model: give -m MODEL, or -r RUN holding weights/best.safetensors");
        goto done;
    }
    int batch = c->eval_config.batch_size > 0 ? c->eval_config.batch_size : 8;
    if ((s = ssd_model_open(&sm, model, batch > 64 ? 64 : batch, a)) || (s = ssd_model_check_net(&sm, model, retina)) ||
        (s = same_classes(&sm, &ds, model)))
        goto done;
    fprintf(out, "evaluating %s on %d images (%dx%d letterbox, NMS conf %g IoU %g top %d)\n", model, ds.n,
            sm.geom.net_w, sm.geom.net_h, (double)nms.conf, (double)nms.iou, nms.top_k);
    if ((s = detect_all(&sm, &ds, &nms, a->threads, NULL, &d, out))) goto done;
    if ((s = det_score(&ds, &d, mode, c->eval_config.matching_iou_threshold, nms.conf, &m))) goto done;
    deft_det_metrics_print(out, m, (const char *const *)ds.class_names);
    if (map) *map = m->map;
    if (a->results_dir && a->results_dir[0]) s = write_results(a->results_dir, m, ds.class_names, out);
done:
    deft_det_metrics_free(m);
    det_dets_free(&d);
    deft_det_dataset_free(&ds);
    ssd_model_close(&sm);
    ssd_setup_free(&ss);
    return s;
}

/* The outputs of image i: annotated PNG, KITTI label file, JSON entry. */
static enum deft_status write_image(const struct ssd_model *sm, const char *image, const struct deft_box *b, int n,
                                    const char *annotated, const char *labels, cJSON *js) {
    char stem[1024], p[4096];
    det_base_stem(image, stem, sizeof stem);
    enum deft_status s = DEFT_OK;
    if (annotated) {
        snprintf(p, sizeof p, "%s/%s.png", annotated, stem);
        s = det_write_annotated(image, p, b, n, sm->classes, sm->n_classes);
        if (s == DEFT_ERR_FORMAT || s == DEFT_ERR_IO || s == DEFT_ERR_NOT_FOUND) { /* unreadable: said, skipped */
            deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
            s = DEFT_OK;
        }
    }
    if (!s && labels) {
        snprintf(p, sizeof p, "%s/%s.txt", labels, stem);
        s = deft_det_write_kitti_predictions(p, b, n, (const char *const *)sm->classes, sm->n_classes);
    }
    if (!s && js) det_json_dets(js, image, b, n, sm->classes, sm->n_classes);
    return s;
}

enum deft_status ssd_inference(const struct deft_task_args *a) { return ssd_inference_net(a, false); }

enum deft_status ssd_inference_net(const struct deft_task_args *a, bool retina) {
    FILE *out = a->out ? a->out : stdout;
    struct ssd_setup ss = {0};
    struct ssd_model sm = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets d = {0};
    cJSON *js = NULL;
    enum deft_status s = DEFT_OK;
    const char *labels = deft_task_arg(a, "--label_dir"), *json = deft_task_arg(a, "--json");
    const char *dump = deft_task_arg(a, "--dump_input"), *annotated = a->output_file;
    if (!a->input) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "give the images with -i IMAGE_DIR (or one image)");
        goto done;
    }
    if (!annotated && !labels && !json && !dump) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "say where results go: -o ANNOTATED_DIR, -l LABEL_DIR (KITTI + "
                           "score), --json FILE and/or --dump_input DIR");
        goto done;
    }
    if (a->spec && (s = ssd_setup_load(&ss, a, retina))) goto done;
    struct ssd_nms nms;
    if ((s = nms_from_args(a, &ss, &nms))) goto done;
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = det_images_dataset(a->input, &ds))) goto done;
    if ((s = ssd_model_open(&sm, a->model, ds.n < 8 ? ds.n : 8, a)) || (s = ssd_model_check_net(&sm, a->model, retina)))
        goto done;
    fprintf(out, "inference: %s on %d images (conf >= %g, NMS IoU %g)\n", a->model, ds.n, (double)nms.conf,
            (double)nms.iou);
    if (dump && (s = deft_mkdirs(dump))) goto done;
    if ((s = detect_all(&sm, &ds, &nms, a->threads, dump, &d, out))) goto done;
    if ((annotated && (s = deft_mkdirs(annotated))) || (labels && (s = deft_mkdirs(labels)))) goto done;
    if (json && !(js = cJSON_CreateArray())) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    long long total = 0;
    for (int i = 0; i < ds.n && !s; i++) {
        total += d.n_boxes[i];
        s = write_image(&sm, ds.samples[i].image, d.boxes[i], d.n_boxes[i], annotated, labels, js);
    }
    if (!s && js) {
        char *txt = cJSON_Print(js);
        s = txt ? deft_file_write_atomic(json, txt, strlen(txt)) : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        free(txt);
    }
    if (!s)
        fprintf(out, "%lld detections%s%s%s%s%s%s\n", total, annotated ? "; annotated images in " : "",
                annotated ? annotated : "", labels ? "; KITTI labels in " : "", labels ? labels : "",
                json ? "; JSON in " : "", json ? json : "");
done:
    cJSON_Delete(js);
    det_dets_free(&d);
    deft_det_dataset_free(&ds);
    ssd_model_close(&sm);
    ssd_setup_free(&ss);
    return s;
}

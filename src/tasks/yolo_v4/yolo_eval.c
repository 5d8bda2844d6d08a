/* yolo_eval.c - `deft yolo_v4 evaluate` (mAP of a saved model on the spec's
 * validation data, in the named definition) and `inference` (annotated
 * images, KITTI label files with the score as a 16th field, JSON). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "deft/loop.h"
#include "deft/data.h"
#include "deft/report.h"
#include "tasks/common/det_detect_all.h"
#include "tasks/common/det_infer_io.h"
#include "tasks/yolo_v4/yolo_task.h"

/* The model and NMS settings behind det_detect_all's hooks. */
struct yolo_det { struct yolo_model *ym; const struct yolo_nms *nms; };
static enum deft_status run_batch(void *ctx, const struct deft_det_batch *b) {
    return yolo_model_run(((struct yolo_det *)ctx)->ym, b->images, b->n);
}
static enum deft_status detect_item(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n) {
    const struct yolo_det *y = ctx;
    return yolo_detect_image(&y->ym->heads, y->ym->n_classes, (const float *const *)y->ym->outs, i, &b->lb[i], y->nms,
                             boxes, n);
}

/* Every detection of a dataset with a loaded model (eval transform: the model's letterbox). */
static enum deft_status detect_all(struct yolo_model *ym, const struct deft_det_dataset *ds, const struct yolo_nms *nms,
                                   int threads, const char *dump_dir, struct det_dets *d, FILE *out) {
    struct deft_det_loader_opts lo;
    yolo_eval_loader_opts(ym, threads, &lo);
    struct yolo_det y = {ym, nms};
    struct det_detector net = {.ctx = &y, .run = run_batch, .detect = detect_item};
    return det_detect_all(&lo, ds, &net, dump_dir, d, out);
}

static enum deft_status nms_from_args(const struct deft_task_args *a, const struct yolo_setup *y, struct yolo_nms *nms) {
    *nms = (struct yolo_nms){0.001f, 0.5f, 200};
    if (y && y->cfg_loaded)
        *nms = (struct yolo_nms){(float)y->cfg.nms_config.confidence_threshold,
                                 (float)y->cfg.nms_config.clustering_iou_threshold, y->cfg.nms_config.top_k};
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

static int eval_batch(const struct yolo_setup *y) {
    int b = y->cfg.eval_config.batch_size > 0 ? y->cfg.eval_config.batch_size : 8;
    return b > 64 ? 64 : b;
}

enum deft_status yolo_evaluate(const struct deft_task_args *a, const char *network) {
    return yolo_validate(a, network, NULL);
}

enum deft_status yolo_validate(const struct deft_task_args *a, const char *network, double *map) {
    FILE *out = a->out ? a->out : stdout;
    struct yolo_setup y;
    struct yolo_model ym = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    enum deft_status s = yolo_setup_load(&y, a, network);
    if (s) goto done;
    enum deft_ap_mode mode = y.cfg.eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE ? DEFT_AP_SAMPLE
                                                                                               : DEFT_AP_INTEGRATE;
    const char *am = deft_task_arg(a, "--ap_mode");
    if (am && (s = deft_ap_mode_parse(am, &mode))) goto done;
    struct yolo_nms nms;
    if ((s = nms_from_args(a, &y, &nms))) goto done;
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = yolo_read_split(&y, y.cfg.dataset_config.n_validation_data_sources > 0, &ds))) goto done;
    char run_model[2400];
    const char *model = a->model ? a->model
                                 : deft_run_dir_model(a->results_dir && a->results_dir[0] ? a->results_dir
                                                                                          : y.cfg.results_dir,
                                                      run_model, sizeof run_model);
    if (!model) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "no model: give -m MODEL, or -r RUN holding weights/best.safetensors");
        goto done;
    }
    if (!a->model) fprintf(out, "model: %s (give -m to choose another)\n", model);
    if ((s = yolo_model_open(&ym, model, eval_batch(&y), a))) goto done;
    if (ym.n_classes != ds.n_classes) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec's data has %d", model, ym.n_classes,
                           ds.n_classes);
        goto done;
    }
    for (int k = 0; k < ds.n_classes; k++)
        if (strcmp(ym.classes[k], ds.class_names[k])) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "class %d is '%s' in %s but '%s' in the spec's data", k,
                               ym.classes[k], model, ds.class_names[k]);
            goto done;
        }
    fprintf(out, "evaluating %s on %d images (%dx%d letterbox, NMS conf %g IoU %g top %d)\n", model, ds.n, ym.net_w,
            ym.net_h, (double)nms.conf, (double)nms.iou, nms.top_k);
    if ((s = detect_all(&ym, &ds, &nms, a->threads, NULL, &d, out))) goto done;
    if ((s = det_score(&ds, &d, mode, y.cfg.eval_config.matching_iou_threshold, nms.conf, &m))) goto done;
    deft_det_metrics_print(out, m, (const char *const *)ds.class_names);
    if (map) *map = m->map;
    if (a->results_dir && a->results_dir[0]) {
        char p[4096];
        snprintf(p, sizeof p, "%s/evaluate", a->results_dir);
        if ((s = deft_mkdirs(p))) goto done;
        snprintf(p, sizeof p, "%s/evaluate/results.json", a->results_dir);
        if ((s = deft_det_metrics_write_json(p, m, (const char *const *)ds.class_names))) goto done;
        fprintf(out, "wrote %s\n", p);
        snprintf(p, sizeof p, "%s/evaluate/pr_curve", a->results_dir);
        if ((s = deft_det_metrics_plot_pr(p, m, (const char *const *)ds.class_names))) goto done;
    }
done:
    deft_det_metrics_free(m);
    det_dets_free(&d);
    deft_det_dataset_free(&ds);
    yolo_model_close(&ym);
    yolo_setup_free(&y);
    return s;
}

/* ---- inference ---- */

enum deft_status yolo_inference(const struct deft_task_args *a, const char *network) {
    FILE *out = a->out ? a->out : stdout;
    struct yolo_setup y = {0};
    struct yolo_model ym = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets d = {0};
    cJSON *js = NULL;
    enum deft_status s = DEFT_OK;
    const char *labels = deft_task_arg(a, "--label_dir"), *json = deft_task_arg(a, "--json");
    const char *dump = deft_task_arg(a, "--dump_input");
    const char *annotated = a->output_file;
    if (!a->input) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "give the images with -i IMAGE_DIR (or one image)");
        goto done;
    }
    if (!annotated && !labels && !json && !dump) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG,
                           "say where results go: -o ANNOTATED_DIR, -l LABEL_DIR (KITTI + score), --json FILE "
                           "and/or --dump_input DIR");
        goto done;
    }
    if (a->spec && (s = yolo_setup_load(&y, a, network))) goto done;
    struct yolo_nms nms;
    if ((s = nms_from_args(a, &y, &nms))) goto done;
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = det_images_dataset(a->input, &ds))) goto done;
    if ((s = yolo_model_open(&ym, a->model, ds.n < 8 ? ds.n : 8, a))) goto done;
    fprintf(out, "inference: %s on %d images (conf >= %g, NMS IoU %g)\n", a->model, ds.n, (double)nms.conf,
            (double)nms.iou);
    if (dump && (s = deft_mkdirs(dump))) goto done;
    if ((s = detect_all(&ym, &ds, &nms, a->threads, dump, &d, out))) goto done;
    if (annotated && (s = deft_mkdirs(annotated))) goto done;
    if (labels && (s = deft_mkdirs(labels))) goto done;
    if (json && !(js = cJSON_CreateArray())) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    long long total = 0;
    for (int i = 0; i < ds.n && !s; i++) {
        char stem[1024], p[4096];
        det_base_stem(ds.samples[i].image, stem, sizeof stem);
        total += d.n_boxes[i];
        if (annotated) {
            snprintf(p, sizeof p, "%s/%s.png", annotated, stem);
            s = det_write_annotated(ds.samples[i].image, p, d.boxes[i], d.n_boxes[i], ym.classes, ym.n_classes);
            if (s == DEFT_ERR_FORMAT || s == DEFT_ERR_IO || s == DEFT_ERR_NOT_FOUND) { /* unreadable: said, skipped */
                deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
                s = DEFT_OK;
            }
        }
        if (!s && labels) {
            snprintf(p, sizeof p, "%s/%s.txt", labels, stem);
            s = deft_det_write_kitti_predictions(p, d.boxes[i], d.n_boxes[i], (const char *const *)ym.classes,
                                                 ym.n_classes);
        }
        if (!s && js) det_json_dets(js, ds.samples[i].image, d.boxes[i], d.n_boxes[i], ym.classes, ym.n_classes);
    }
    if (!s && js) {
        char *txt = cJSON_Print(js);
        s = txt ? deft_file_write_atomic(json, txt, strlen(txt)) : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        free(txt);
    }
    if (!s)
        fprintf(out, "%lld detections%s%s%s%s%s%s%s%s\n", total, annotated ? "; annotated images in " : "",
                annotated ? annotated : "", labels ? "; KITTI labels in " : "", labels ? labels : "",
                json ? "; JSON in " : "", json ? json : "", dump ? "; network inputs in " : "", dump ? dump : "");
done:
    cJSON_Delete(js);
    det_dets_free(&d);
    deft_det_dataset_free(&ds);
    yolo_model_close(&ym);
    yolo_setup_free(&y);
    return s;
}

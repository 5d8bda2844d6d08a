/* frcnn_eval.c - `deft faster_rcnn evaluate` (mAP of a saved model on the
 * spec's validation data: TAO's definition, 11-point with
 * use_voc07_11point_metric, averaged over gt_matching_iou_threshold_range;
 * --ap_mode for the others; RPN recall) and `inference` (annotated images,
 * KITTI labels with the score as a 16th field, JSON). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/data.h"
#include "deft/loop.h"
#include "deft/report.h"
#include "tasks/faster_rcnn/frcnn_run.h"

static enum deft_status threshold_arg(const struct deft_task_args *a, float *conf) {
    const char *t = deft_task_arg(a, "--threshold");
    if (!t) return DEFT_OK;
    char *end;
    errno = 0;
    double v = strtod(t, &end);
    if (errno || end == t || *end || !(v >= 0 && v <= 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--threshold expects a confidence in [0, 1], got '%s'", t);
    *conf = (float)v;
    return DEFT_OK;
}

static enum deft_status check_classes(const struct frcnn_model *fm, const struct deft_det_dataset *ds, const char *model) {
    if (fm->n_classes != ds->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but the spec's data has %d", model, fm->n_classes,
                              ds->n_classes);
    for (int k = 0; k < ds->n_classes; k++)
        if (strcmp(fm->classes[k], ds->class_names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "class %d is '%s' in %s but '%s' in the spec's data", k,
                                  fm->classes[k], model, ds->class_names[k]);
    return DEFT_OK;
}

static enum deft_status write_results(const char *dir, const struct deft_det_metrics *m, char *const *names,
                                      FILE *out) {
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

enum deft_status frcnn_evaluate(const struct deft_task_args *a) { return frcnn_validate(a, NULL); }

enum deft_status frcnn_validate(const struct deft_task_args *a, double *map_out) {
    FILE *out = a->out ? a->out : stdout;
    struct frcnn_setup f;
    struct frcnn_model fm = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    enum deft_status s = frcnn_setup_load(&f, a);
    if (s) goto done;
    enum deft_ap_mode mode = frcnn_ap_mode(&f);
    const char *am = deft_task_arg(a, "--ap_mode");
    if (am && (s = deft_ap_mode_parse(am, &mode))) goto done;
    const struct deft_frcnn_evaluation_config *ec = &f.cfg.evaluation_config;
    struct frcnn_nms nms = {(float)ec->object_confidence_thres, (float)ec->classifier_nms_overlap_threshold,
                            ec->classifier_nms_max_boxes > 0 ? ec->classifier_nms_max_boxes : 100};
    if ((s = threshold_arg(a, &nms.conf))) goto done;
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = frcnn_read_split(&f, f.cfg.dataset_config.has_validation_data_source, &ds))) goto done;
    char run_model[2400];
    const char *model = a->model ? a->model : ec->model[0] ? ec->model
                                 : deft_run_dir_model(a->results_dir && a->results_dir[0] ? a->results_dir : f.cfg.results_dir,
                                                      run_model, sizeof run_model);
    if (!model) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "no model: give -m MODEL, or -r RUN holding weights/best.safetensors");
        goto done;
    }
    int bs = ec->batch_size > 0 ? (ec->batch_size > 8 ? 8 : ec->batch_size) : 1;
    if ((s = frcnn_model_open(&fm, model, bs, f.eval_prop.max_boxes, a)) || (s = check_classes(&fm, &ds, model))) goto done;
    fprintf(out, "evaluating %s on %d images (%dx%d letterbox; proposals: top %d, NMS %g, keep %d; detections: conf %g, "
            "NMS %g, keep %d)\n", model, ds.n, fm.net_w, fm.net_h, f.eval_prop.pre_nms_top_n, (double)f.eval_prop.nms_iou,
            f.eval_prop.max_boxes, (double)nms.conf, (double)nms.iou, nms.max_dets);
    if ((s = frcnn_detect_all(&fm, &ds, &f.eval_prop, &nms, a->threads, NULL, &d, out))) goto done;
    double map = 0;
    if ((s = frcnn_score(&f, &ds, &d, mode, nms.conf, &map, &m))) goto done;
    deft_det_metrics_print(out, m, (const char *const *)ds.class_names);
    if (mode != DEFT_AP_COCO && ec->n_ious > 1)
        fprintf(out, "mAP averaged over IoU %g..%g (%d thresholds): %.4f\n", ec->ious[0], ec->ious[ec->n_ious - 1],
                ec->n_ious, map);
    fprintf(out, "RPN recall (a proposal at IoU >= 0.5): %.4f (%ld of %ld boxes)\n",
            fm.recall_gt ? (double)fm.recall_hits / (double)fm.recall_gt : 0.0, fm.recall_hits, fm.recall_gt);
    if (map_out) *map_out = map;
    if (a->results_dir && a->results_dir[0]) s = write_results(a->results_dir, m, ds.class_names, out);
done:
    deft_det_metrics_free(m);
    det_dets_free(&d);
    deft_det_dataset_free(&ds);
    frcnn_model_close(&fm);
    frcnn_setup_free(&f);
    return s;
}

/* ---- inference ---- */

static enum deft_status write_outputs(const struct deft_task_args *a, const struct deft_det_dataset *ds,
                                      const struct det_dets *d, const struct frcnn_model *fm, float vis, FILE *out) {
    const char *labels = deft_task_arg(a, "--label_dir"), *json = deft_task_arg(a, "--json"), *ann = a->output_file;
    enum deft_status s = DEFT_OK;
    cJSON *js = NULL;
    if (ann && (s = deft_mkdirs(ann))) return s;
    if (labels && (s = deft_mkdirs(labels))) return s;
    if (json && !(js = cJSON_CreateArray())) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    long long total = 0;
    for (int i = 0; i < ds->n && !s; i++) {
        char stem[1024], p[4096];
        det_base_stem(ds->samples[i].image, stem, sizeof stem);
        total += d->n_boxes[i];
        if (ann) { /* the overlay shows boxes at bbox_visualize_threshold and above */
            struct deft_box *keep = deft_malloc((size_t)(d->n_boxes[i] ? d->n_boxes[i] : 1) * sizeof *keep);
            int nk = 0;
            for (int k = 0; keep && k < d->n_boxes[i]; k++)
                if (d->boxes[i][k].score >= vis) keep[nk++] = d->boxes[i][k];
            snprintf(p, sizeof p, "%s/%s.png", ann, stem);
            s = keep ? det_write_annotated(ds->samples[i].image, p, keep, nk, fm->classes, fm->n_classes)
                     : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            deft_free(keep);
            if (s == DEFT_ERR_FORMAT || s == DEFT_ERR_IO || s == DEFT_ERR_NOT_FOUND) {
                deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
                s = DEFT_OK;
            }
        }
        if (!s && labels) {
            snprintf(p, sizeof p, "%s/%s.txt", labels, stem);
            s = deft_det_write_kitti_predictions(p, d->boxes[i], d->n_boxes[i], (const char *const *)fm->classes,
                                                 fm->n_classes);
        }
        if (!s && js) det_json_dets(js, ds->samples[i].image, d->boxes[i], d->n_boxes[i], fm->classes, fm->n_classes);
    }
    if (!s && js) {
        char *txt = cJSON_Print(js);
        s = txt ? deft_file_write_atomic(json, txt, strlen(txt)) : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        free(txt);
    }
    cJSON_Delete(js);
    if (!s)
        fprintf(out, "%lld detections%s%s%s%s%s%s\n", total, ann ? "; annotated images in " : "", ann ? ann : "",
                labels ? "; KITTI labels in " : "", labels ? labels : "", json ? "; JSON in " : "", json ? json : "");
    return s;
}

enum deft_status frcnn_inference(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    struct frcnn_setup f = {0};
    struct frcnn_model fm = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets d = {0};
    enum deft_status s = DEFT_OK;
    if (!a->input) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the images with -i IMAGE_DIR (or one image)");
    if (!a->output_file && !deft_task_arg(a, "--label_dir") && !deft_task_arg(a, "--json") &&
        !deft_task_arg(a, "--dump_input"))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "say where results go: -o ANNOTATED_DIR, -l LABEL_DIR (KITTI + "
                              "score), --json FILE and/or --dump_input DIR");
    struct frcnn_prop_cfg pc = {6000, 300, 0.7f};
    struct frcnn_nms nms = {0.0001f, 0.3f, 100};
    float vis = 0.6f;
    if (a->spec) {
        if ((s = frcnn_setup_load(&f, a))) goto done;
        const struct deft_frcnn_inference_config *ic = &f.cfg.inference_config;
        pc = f.infer_prop;
        nms = (struct frcnn_nms){(float)ic->object_confidence_thres, (float)ic->classifier_nms_overlap_threshold,
                                 ic->classifier_nms_max_boxes > 0 ? ic->classifier_nms_max_boxes : 100};
        if (ic->bbox_visualize_threshold > 0) vis = (float)ic->bbox_visualize_threshold;
    }
    if ((s = threshold_arg(a, &nms.conf))) goto done;
    if (deft_task_arg(a, "--threshold")) vis = nms.conf;
    if (a->threads > 0) deft_set_threads(a->threads);
    const char *model = a->model ? a->model : f.loaded && f.cfg.inference_config.model[0] ? f.cfg.inference_config.model : NULL;
    if (!model) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "give the model with -m MODEL");
        goto done;
    }
    if ((s = det_images_dataset(a->input, &ds))) goto done;
    if ((s = frcnn_model_open(&fm, model, 1, pc.max_boxes, a))) goto done;
    fprintf(out, "inference: %s on %d images (proposals %d, conf >= %g, NMS IoU %g, overlays at >= %g)\n", model, ds.n,
            pc.max_boxes, (double)nms.conf, (double)nms.iou, (double)vis);
    const char *dump = deft_task_arg(a, "--dump_input");
    if (dump && (s = deft_mkdirs(dump))) goto done;
    if ((s = frcnn_detect_all(&fm, &ds, &pc, &nms, a->threads, dump, &d, out))) goto done;
    s = write_outputs(a, &ds, &d, &fm, vis, out);
done:
    det_dets_free(&d);
    deft_det_dataset_free(&ds);
    frcnn_model_close(&fm);
    frcnn_setup_free(&f);
    return s;
}

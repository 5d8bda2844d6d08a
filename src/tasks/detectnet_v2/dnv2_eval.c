/* dnv2_eval.c - `deft detectnet_v2 evaluate` (TAO's DetectNet_v2 metric of a
 * saved model on the spec's validation data, or another definition with
 * --ap_mode) and `inference` (clustering from the inference spec's
 * bbox_handler_config or the experiment's postprocessing_config; KITTI
 * labels with the score as a 16th field and annotated images, as TAO's
 * kitti_dump and overlay). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "deft/data.h"
#include "deft/loop.h"
#include "deft/report.h"
#include "tasks/common/det_detect_all.h"
#include "tasks/detectnet_v2/dnv2_task.h"

/* The model and clustering (evaluate) or the inference plan (inference) behind det_detect_all's hooks. */
struct dnv2_det {
    struct dnv2_model *dm;
    const struct dnv2_cluster_config *cc; /* evaluate */
    const struct infer_plan *plan;        /* inference */
    const char *raw_dir;                  /* inference's --dump_raw (NULL: none) */
};
static enum deft_status run_batch(void *ctx, const struct deft_det_batch *b) {
    return dnv2_model_run(((struct dnv2_det *)ctx)->dm, b->images, b->n);
}
static enum deft_status detect_item(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n) {
    const struct dnv2_det *e = ctx;
    return dnv2_detect_image(&e->dm->grid, e->cc, e->dm->n_classes, e->dm->cov, e->dm->bbox, i, &b->lb[i], boxes, n);
}

/* Every detection of a dataset with a loaded model (eval transform: the model's letterbox). */
static enum deft_status detect_all(struct dnv2_model *dm, const struct dnv2_cluster_config *cc,
                                   const struct deft_det_dataset *ds, int threads, struct det_dets *d, FILE *out) {
    struct deft_det_loader_opts lo;
    dnv2_eval_loader_opts(dm, threads, &lo);
    struct dnv2_det e = {.dm = dm, .cc = cc};
    struct det_detector net = {.ctx = &e, .run = run_batch, .detect = detect_item};
    return det_detect_all(&lo, ds, &net, NULL, d, out);
}

static enum deft_status same_classes(const struct dnv2_model *dm, char *const *names, int n, const char *model,
                                     const char *what) {
    if (dm->n_classes != n)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s has %d classes but %s has %d", model, dm->n_classes, what, n);
    for (int k = 0; k < n; k++)
        if (strcasecmp(dm->classes[k], names[k]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "class %d is '%s' in %s but '%s' in %s", k, dm->classes[k],
                                  model, names[k], what);
    return DEFT_OK;
}

static void print_metric(FILE *out, const struct deft_det_metrics *m, char *const *names, const char *definition) {
    fprintf(out, "Detection metrics: %s\n", definition);
    fprintf(out, "%-20s %8s %10s %8s %8s %8s\n", "class", "AP", "precision", "recall", "gt", "dets");
    for (int k = 0; k < m->n_classes; k++) {
        const struct deft_det_class_metrics *c = &m->classes[k];
        fprintf(out, "%-20s %8.4f %10.4f %8.4f %8lld %8lld\n", names[k], c->ap, c->precision, c->recall,
                (long long)c->n_gt, (long long)c->n_det);
    }
    fprintf(out, "mAP [detectnet_v2]: %.4f\n", m->map);
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

enum deft_status dnv2_evaluate(const struct deft_task_args *a) {
    if (a->dry_run) return dnv2_experiment_dry_run(a, "evaluate");
    return dnv2_validate(a, NULL);
}

enum deft_status dnv2_validate(const struct deft_task_args *a, double *map) {
    FILE *out = a->out ? a->out : stdout;
    struct dnv2_setup d;
    struct dnv2_model dm = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets dets = {0};
    struct deft_det_metrics *m = NULL;
    struct dnv2_eval_class *ec = NULL;
    enum deft_status s = dnv2_setup_load(&d, a);
    const char *am = deft_task_arg(a, "--ap_mode");
    enum deft_ap_mode mode = DEFT_AP_INTEGRATE;
    if (!s && am) s = deft_ap_mode_parse(am, &mode);
    if (!s && a->threads > 0) deft_set_threads(a->threads);
    if (!s) s = dnv2_read_split(&d, true, &ds);
    if (!s && ds.n == 0) {
        deft_det_dataset_free(&ds);
        s = dnv2_read_split(&d, false, &ds); /* no validation split: TAO evaluates the data sources */
    }
    char run_model[2400];
    const char *model = a->model ? a->model
                                 : deft_run_dir_model(a->results_dir && a->results_dir[0] ? a->results_dir
                                                                                          : d.cfg.results_dir,
                                                      run_model, sizeof run_model);
    if (!s && !model)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "no model: give -m MODEL, or -r RUN holding weights/best.safetensors");
    if (!s && !a->model) fprintf(out, "model: %s (give -m to choose another)\n", model);
    int batch = d.cfg.training_config.batch_size_per_gpu > 0 ? d.cfg.training_config.batch_size_per_gpu : 4;
    if (!s) s = dnv2_model_open(&dm, model, batch < 16 ? batch : 16, a);
    if (!s) s = same_classes(&dm, ds.class_names, ds.n_classes, model, "the spec");
    if (!s) fprintf(out, "evaluating %s on %d images (%dx%d letterbox, grid %dx%d)\n", model, ds.n, dm.net_w,
                    dm.net_h, dm.grid.gw, dm.grid.gh);
    if (!s) s = detect_all(&dm, &d.cluster, &ds, a->threads, &dets, out);
    bool integ = d.cfg_loaded && d.cfg.evaluation_config.average_precision_mode == DEFT_DNV2_AP_INTEGRATE;
    if (!s && !am) {
        if (!(s = dnv2_eval_classes(&d.cfg, &ec)) && !(s = dnv2_metric(&ds, &dets, ec, integ, 0, &m)))
            print_metric(out, m, ds.class_names, dnv2_metric_describe(integ));
    } else if (!s) {
        if (!(s = det_score(&ds, &dets, mode, 0.5, 0, &m))) deft_det_metrics_print(out, m, (const char *const *)ds.class_names);
    }
    if (!s && map) *map = m->map;
    if (!s && a->results_dir && a->results_dir[0]) s = write_results(a->results_dir, m, ds.class_names, out);
    deft_free(ec);
    deft_det_metrics_free(m);
    det_dets_free(&dets);
    deft_det_dataset_free(&ds);
    dnv2_model_close(&dm);
    dnv2_setup_free(&d);
    return s;
}

/* ---- inference ---- */

/* What inference clusters with and writes, from either kind of spec. */
struct infer_plan {
    struct dnv2_cluster_class *kcls;
    struct dnv2_cluster_config cc;
    bool *mean_cov;        /* confidence_model "mean_cov" per class */
    char **label_of;       /* output_map per class (NULL entries: the class name) */
    bool kitti_dump, overlay;
    char *model;           /* tlt_config.model, when the spec names it */
};

static void plan_free(struct infer_plan *p, int n) {
    deft_free(p->kcls);
    deft_free(p->mean_cov);
    det_class_names_free(p->label_of, n);
    deft_free(p->model);
    memset(p, 0, sizeof *p);
}

static enum deft_status plan_alloc(struct infer_plan *p, int n) {
    p->kcls = deft_calloc((size_t)n, sizeof *p->kcls);
    p->mean_cov = deft_calloc((size_t)n, sizeof *p->mean_cov);
    p->label_of = deft_calloc((size_t)n, sizeof *p->label_of);
    p->cc = (struct dnv2_cluster_config){.n_classes = n, .cls = p->kcls};
    return p->kcls && p->mean_cov && p->label_of ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
}

static enum deft_status plan_from_inference_spec(const struct deft_task_args *a, const struct dnv2_model *dm,
                                                 const char *const *sets, int n_sets, struct infer_plan *p) {
    struct deft_dnv2_infer_config c;
    enum deft_status s = deft_dnv2_infer_config_load(a->spec, sets, n_sets, &c);
    if (s) return s;
    const struct deft_dnv2_inferencer_config *ic = &c.inferencer_config;
    if (ic->has_tensorrt_config && !ic->has_tlt_config)
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: inferencer_config.tensorrt_config: deft runs its own model "
                           "(tlt_config { model } or -m), not a TensorRT engine", c.source_path);
    if (!s && ic->n_target_classes) s = same_classes(dm, ic->target_classes, ic->n_target_classes, "the model",
                                                     "inferencer_config.target_classes");
    if (!s) s = plan_alloc(p, dm->n_classes);
    for (int k = 0; !s && k < dm->n_classes; k++) {
        const struct deft_dnv2_classwise_bbox *h = &c.bbox_handler_config.classwise_bbox_handler_config[c.handler_of[k]].value;
        dnv2_cluster_class_from_spec(&h->clustering_config, &p->kcls[k]);
        p->mean_cov[k] = !strcmp(h->confidence_model, "mean_cov");
        if (h->output_map[0] && !(p->label_of[k] = deft_strdup(h->output_map)))
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    p->kitti_dump = c.bbox_handler_config.kitti_dump;
    p->overlay = !c.bbox_handler_config.disable_overlay;
    if (!s && ic->tlt_config.model[0] && !(p->model = deft_strdup(ic->tlt_config.model)))
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    deft_dnv2_infer_config_free(&c);
    return s;
}

static enum deft_status plan_from_experiment(const struct deft_task_args *a, const struct dnv2_model *dm,
                                             struct infer_plan *p) {
    struct dnv2_setup d;
    enum deft_status s = dnv2_setup_load(&d, a);
    if (!s) s = same_classes(dm, d.cfg.class_names, d.n_classes, "the model", "the spec");
    if (!s) s = plan_alloc(p, dm->n_classes);
    if (!s) memcpy(p->kcls, d.kcls, (size_t)d.n_classes * sizeof *p->kcls);
    p->kitti_dump = p->overlay = true;
    dnv2_setup_free(&d);
    return s;
}

static enum deft_status make_plan(const struct deft_task_args *a, const struct dnv2_model *dm, struct infer_plan *p) {
    FILE *f = fopen(a->spec, "rb");
    if (!f) return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: cannot open the spec (-e)", a->spec);
    static char head[1 << 16];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (deft_dnv2_spec_kind_of(head, n) != DEFT_DNV2_SPEC_INFERENCE) return plan_from_experiment(a, dm, p);
    const char *sets[DEFT_TASK_MAX_SETS];
    int ns = 0;
    for (int i = 0; i < a->n_overrides && ns < DEFT_TASK_MAX_SETS; i++) sets[ns++] = a->overrides[i];
    return plan_from_inference_spec(a, dm, sets, ns, p);
}

/* mean_cov classes: the cluster's mean coverage as its confidence (TAO's confidence_model). */
static enum deft_status detect_image_plan(const struct dnv2_model *dm, const struct infer_plan *p, int b,
                                          const struct deft_letterbox *lb, struct deft_box **boxes, int *n) {
    size_t plane = (size_t)dm->grid.gh * (size_t)dm->grid.gw;
    struct dnv2_cluster_stats *st = NULL;
    enum deft_status s = dnv2_cluster(&dm->grid, &p->cc, dm->cov + (size_t)b * (size_t)dm->n_classes * plane,
                                      dm->bbox + (size_t)b * 4 * (size_t)dm->n_classes * plane, boxes, &st, n);
    for (int i = 0; !s && i < *n; i++) {
        struct deft_box *x = &(*boxes)[i];
        if (x->cls >= 0 && x->cls < dm->n_classes && p->mean_cov[x->cls]) x->score = st[i].cov_mean;
        deft_letterbox_box_to_image(lb, x);
    }
    deft_free(st);
    return s;
}

/* --dump_raw: image b's output_cov and output_bbox as dir/<stem>_cov.npy and dir/<stem>_bbox.npy. */
static enum deft_status dump_raw(const char *dir, const char *image, const struct dnv2_model *dm, int b) {
    char stem[1024], path[4200];
    det_base_stem(image, stem, sizeof stem);
    size_t plane = (size_t)dm->grid.gh * (size_t)dm->grid.gw * (size_t)dm->n_classes;
    struct deft_shape sc = deft_shape4(1, dm->n_classes, dm->grid.gh, dm->grid.gw);
    struct deft_shape sb = deft_shape4(1, 4 * dm->n_classes, dm->grid.gh, dm->grid.gw);
    struct deft_tensor tc = deft_tensor_view(DEFT_F32, &sc, dm->cov + (size_t)b * plane);
    struct deft_tensor tb = deft_tensor_view(DEFT_F32, &sb, dm->bbox + (size_t)b * 4 * plane);
    snprintf(path, sizeof path, "%s/%s_cov.npy", dir, stem);
    enum deft_status s = deft_npy_write(path, &tc);
    if (s) return s;
    snprintf(path, sizeof path, "%s/%s_bbox.npy", dir, stem);
    return deft_npy_write(path, &tb);
}

struct infer_dumps {
    const char *input, *raw; /* --dump_input, --dump_raw (NULL: none) */
};

static enum deft_status detect_item_plan(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes,
                                         int *n) {
    const struct dnv2_det *e = ctx;
    return detect_image_plan(e->dm, e->plan, i, &b->lb[i], boxes, n);
}
static enum deft_status dump_raw_item(void *ctx, const struct deft_det_batch *b, int i, const char *image) {
    (void)b;
    const struct dnv2_det *e = ctx;
    return e->raw_dir ? dump_raw(e->raw_dir, image, e->dm, i) : DEFT_OK;
}

static enum deft_status infer_all(struct dnv2_model *dm, const struct infer_plan *p, const struct deft_det_dataset *ds,
                                  int threads, const struct infer_dumps *du, struct det_dets *d, FILE *out) {
    struct deft_det_loader_opts lo;
    dnv2_eval_loader_opts(dm, threads, &lo);
    struct dnv2_det e = {.dm = dm, .plan = p, .raw_dir = du->raw};
    struct det_detector net = {.ctx = &e, .run = run_batch, .detect = detect_item_plan, .after = dump_raw_item};
    return det_detect_all(&lo, ds, &net, du->input, d, out);
}

static enum deft_status write_outputs(const struct dnv2_model *dm, const struct infer_plan *p,
                                      const struct deft_det_dataset *ds, const struct det_dets *d, const char *labels,
                                      const char *annotated) {
    char **names = deft_calloc((size_t)dm->n_classes, sizeof *names);
    if (!names) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < dm->n_classes; k++) names[k] = p->label_of[k] ? p->label_of[k] : dm->classes[k];
    enum deft_status s = DEFT_OK;
    for (int i = 0; i < ds->n && !s; i++) {
        char stem[1024], path[4200];
        det_base_stem(ds->samples[i].image, stem, sizeof stem);
        if (labels) {
            snprintf(path, sizeof path, "%s/%s.txt", labels, stem);
            s = deft_det_write_kitti_predictions(path, d->boxes[i], d->n_boxes[i], (const char *const *)names,
                                                 dm->n_classes);
        }
        if (!s && annotated) {
            snprintf(path, sizeof path, "%s/%s.png", annotated, stem);
            s = det_write_annotated(ds->samples[i].image, path, d->boxes[i], d->n_boxes[i], names, dm->n_classes);
            if (s == DEFT_ERR_FORMAT || s == DEFT_ERR_IO || s == DEFT_ERR_NOT_FOUND) { /* unreadable: said, skipped */
                deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
                s = DEFT_OK;
            }
        }
    }
    deft_free(names);
    return s;
}

enum deft_status dnv2_inference(const struct deft_task_args *a) {
    if (a->dry_run) return dnv2_inference_dry_run(a);
    FILE *out = a->out ? a->out : stdout;
    struct dnv2_model dm = {0};
    struct infer_plan p = {0};
    struct deft_det_dataset ds = {0};
    struct det_dets d = {0};
    const char *labels_flag = deft_task_arg(a, "--label_dir");
    enum deft_status s = DEFT_OK;
    if (!a->spec) s = deft_set_error(DEFT_ERR_INVALID_ARG, "inference: give the inference spec (or the experiment "
                                     "spec) with -e SPEC");
    else if (!a->input) s = deft_set_error(DEFT_ERR_INVALID_ARG, "inference: give the images with -i IMAGE_DIR");
    else if (!a->output_file && !labels_flag)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "inference: say where results go with -o OUT_DIR (TAO's layout: "
                           "OUT_DIR/images_annotated, OUT_DIR/labels)");
    struct infer_plan probe = {0};
    const char *model = a->model;
    if (!s && !model) { /* the inference spec's tlt_config.model */
        struct deft_dnv2_infer_config c;
        if (!deft_dnv2_infer_config_load(a->spec, NULL, 0, &c)) {
            if (c.inferencer_config.tlt_config.model[0]) probe.model = deft_strdup(c.inferencer_config.tlt_config.model);
            deft_dnv2_infer_config_free(&c);
        }
        deft_clear_error();
        model = probe.model;
        if (!model) s = deft_set_error(DEFT_ERR_INVALID_ARG, "inference: give the model with -m MODEL (or "
                                       "inferencer_config.tlt_config.model)");
    }
    if (!s && a->threads > 0) deft_set_threads(a->threads);
    if (!s) s = det_images_dataset(a->input, &ds);
    if (!s) s = dnv2_model_open(&dm, model, ds.n < 8 ? ds.n : 8, a);
    if (!s) s = make_plan(a, &dm, &p);
    char labels[4200] = "", annotated[4200] = "";
    if (!s && labels_flag) snprintf(labels, sizeof labels, "%s", labels_flag);
    else if (!s && p.kitti_dump) snprintf(labels, sizeof labels, "%s/labels", a->output_file);
    if (!s && a->output_file && p.overlay) snprintf(annotated, sizeof annotated, "%s/images_annotated", a->output_file);
    if (!s) fprintf(out, "inference: %s on %d images\n", model, ds.n);
    struct infer_dumps du = {deft_task_arg(a, "--dump_input"), deft_task_arg(a, "--dump_raw")};
    if (!s && du.input) s = deft_mkdirs(du.input);
    if (!s && du.raw) s = deft_mkdirs(du.raw);
    if (!s) s = infer_all(&dm, &p, &ds, a->threads, &du, &d, out);
    if (!s && *labels) s = deft_mkdirs(labels);
    if (!s && *annotated) s = deft_mkdirs(annotated);
    if (!s) s = write_outputs(&dm, &p, &ds, &d, *labels ? labels : NULL, *annotated ? annotated : NULL);
    long long total = 0;
    for (int i = 0; !s && i < d.n; i++) total += d.n_boxes[i];
    if (!s) fprintf(out, "%lld detections%s%s%s%s\n", total, *labels ? "; KITTI labels in " : "", labels,
                    *annotated ? "; annotated images in " : "", annotated);
    int nk = dm.n_classes;
    det_dets_free(&d);
    deft_det_dataset_free(&ds);
    dnv2_model_close(&dm);
    plan_free(&p, nk);
    deft_free(probe.model);
    return s;
}

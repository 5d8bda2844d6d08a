/* ssd_train.c - `deft ssd train` and `deft retinanet train`: the spec's data
 * through the detection loader, TAO's SSD or RetinaNet graph, TAO's SSD loss
 * or RetinaNet focal loss as the trainer's host loss, and the
 * shared training loop (src/train/loop.c) with validation mAP every
 * eval_config.validation_period_during_training epochs. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "deft/dist.h"
#include "deft/loop.h"
#include "deft/models.h"
#include "deft/report.h"
#include "deft/retinanet_model.h"
#include "deft/trainer.h"
#include "tasks/common/det_split.h"
#include "tasks/common/det_train_cfg.h"
#include "tasks/common/pruned_graph.h"
#include "tasks/ssd/ssd_task.h"

enum { TERM_CLS = 0, TERM_LOC, N_TERMS };
static const char *const term_names[N_TERMS] = {"loss_cls", "loss_loc"};
#define NO (2 * DEFT_SSD_LAYERS)
#define MAX_BATCH 512

struct run {
    const struct deft_task_args *a;
    FILE *out;
    struct ssd_setup s;
    struct deft_det_dataset train_ds, val_ds;
    bool have_val;
    struct deft_det_loader *train_ld, *val_ld;
    struct deft_det_batch batch;
    struct deft_trainer *t;
    struct deft_events *ev;
    struct det_lr_ctx lr;
    int bs, spe, epochs;
    char dir[2048], arch[64];
    struct deft_run_log *log;
    float *outs[NO];
    struct deft_loop_metric val_m[2];
};

static void batch_gt(const struct deft_det_batch *b, int n, const struct deft_box **gt, int *n_gt) {
    for (int i = 0; i < n; i++) {
        gt[i] = i < b->n ? b->boxes + b->box_start[i] : NULL;
        n_gt[i] = i < b->n ? b->n_boxes[i] : 0;
    }
}

/* SSD's CE + hard negatives or RetinaNet's focal loss, on the same outputs. */
static enum deft_status net_loss(const struct ssd_setup *s, int n, const float *const *outputs,
                                 const struct deft_box *const *gt, const int *n_gt, float *const *grads,
                                 struct deft_ssd_loss_terms *t) {
    const struct ssd_geom *g = &s->geom;
    return s->retina ? deft_retinanet_loss(&s->focal, g->maps, g->n_maps, g->n_classes, g->priors, n, outputs, gt, n_gt,
                                           grads, t)
                     : deft_ssd_loss(&s->loss, g->maps, g->n_maps, g->n_classes, g->priors, n, outputs, gt, n_gt, grads,
                                     t);
}

static enum deft_status host_loss(void *user, int n_outputs, const float *const *outputs,
                                  const struct deft_shape *shapes, const void *targets, float *const *grads,
                                  double *loss, double *terms) {
    struct run *r = user;
    int n = (int)shapes[0].d[0];
    const struct ssd_geom *g = &r->s.geom;
    if (n_outputs != 2 * g->n_maps)
        return deft_set_error(DEFT_ERR_SHAPE, "the model has %d outputs, %s %d", n_outputs, ssd_net_name(r->s.retina),
                              2 * g->n_maps);
    if (n > MAX_BATCH) return deft_set_error(DEFT_ERR_INVALID_ARG, "batch of %d is over %d", n, MAX_BATCH);
    const struct deft_box *gt[MAX_BATCH];
    int n_gt[MAX_BATCH];
    batch_gt(targets, n, gt, n_gt);
    struct deft_ssd_loss_terms t;
    enum deft_status s = net_loss(&r->s, n, outputs, gt, n_gt, grads, &t);
    if (s) return s;
    *loss = t.total;
    terms[TERM_CLS] = t.cls;
    terms[TERM_LOC] = t.loc;
    return DEFT_OK;
}

static enum deft_status open_data(struct run *r) {
    const struct deft_ssd_config *c = &r->s.cfg;
    enum deft_status s = det_spec_read_split(&c->dataset_config, c->source_path, false, &r->train_ds);
    if (s) return s;
    const struct deft_det_read_stats *st = &r->train_ds.stats;
    fprintf(r->out, "train: %d images (%lld background), %lld boxes (%lld difficult, %lld clipped, %lld of unmapped "
            "classes)\n", r->train_ds.n, (long long)st->background_images, (long long)st->boxes,
            (long long)st->difficult, (long long)st->clipped, (long long)st->unmapped);
    if (r->train_ds.n < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the training data has no images", c->source_path);
    r->have_val = c->dataset_config.n_validation_data_sources > 0;
    if (r->have_val) {
        if ((s = det_spec_read_split(&c->dataset_config, c->source_path, true, &r->val_ds))) return s;
        fprintf(r->out, "val:   %d images, %lld boxes\n", r->val_ds.n, (long long)r->val_ds.stats.boxes);
    }
    r->bs = c->training_config.batch_size_per_gpu;
    if (r->bs > r->train_ds.n) r->bs = r->train_ds.n;
    struct deft_det_loader_opts lo;
    deft_det_loader_opts_defaults(&lo);
    lo.batch_size = r->bs;
    lo.num_threads = c->training_config.n_workers > 0 ? c->training_config.n_workers : 2;
    lo.shuffle = true;
    lo.drop_last = true;
    lo.strict = r->a->fatal_corrupt;
    lo.seed = (uint64_t)c->random_seed;
    ssd_transform(&r->s, true, &lo.transform);
    if ((s = deft_det_loader_create(&lo, &r->train_ds, &r->train_ld))) return s;
    r->spe = deft_det_loader_num_batches(r->train_ld);
    if (r->have_val) {
        lo.shuffle = false;
        lo.drop_last = false;
        ssd_transform(&r->s, false, &lo.transform);
        if ((s = deft_det_loader_create(&lo, &r->val_ds, &r->val_ld))) return s;
    }
    return DEFT_OK;
}

static enum deft_status build_from_spec(struct run *r, struct deft_graph **g) {
    const struct deft_ssd_net_config *c = &r->s.cfg.ssd_config;
    int fb[64], nfb = 0;
    for (int i = 0; i < c->n_freeze_blocks && nfb < 64; i++) fb[nfb++] = (int)c->freeze_blocks[i];
    if (r->s.retina) {
        struct deft_retinanet_model_opts ro = {
            .arch = c->arch, .nlayers = c->nlayers, .num_classes = r->s.geom.n_classes,
            .boxes_per_cell = r->s.geom.maps[0].boxes, .n_kernels = c->n_kernels, .feature_size = c->feature_size,
            .height = r->s.geom.net_h, .width = r->s.geom.net_w, .batch = r->bs, .freeze_bn = c->freeze_bn,
            .freeze_blocks = nfb ? fb : NULL, .n_freeze_blocks = nfb, .training = true};
        for (int l = 1; l < r->s.geom.n_maps; l++)
            if (r->s.geom.maps[l].boxes != ro.boxes_per_cell)
                return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: retinanet_config.aspect_ratios: the subnets are shared "
                                      "by the five levels, so every level needs the same number of aspect ratios",
                                      r->s.cfg.source_path);
        enum deft_status s = deft_retinanet_model_build(&ro, g);
        return s ? deft_wrap_error(s, "%s: retinanet_config", r->s.cfg.source_path) : DEFT_OK;
    }
    struct deft_ssd_model_opts o = {.arch = c->arch, .nlayers = c->nlayers, .num_classes = r->s.geom.n_classes,
                                    .height = r->s.geom.net_h, .width = r->s.geom.net_w, .batch = r->bs,
                                    .freeze_bn = c->freeze_bn, .freeze_blocks = nfb ? fb : NULL,
                                    .n_freeze_blocks = nfb, .training = true};
    for (int l = 0; l < DEFT_SSD_LAYERS; l++) o.boxes_per_cell[l] = r->s.geom.maps[l].boxes;
    enum deft_status s = deft_ssd_model_build(&o, g);
    return s ? deft_wrap_error(s, "%s: ssd_config", r->s.cfg.source_path) : DEFT_OK;
}

/* The spec's graph, or training_config.pruned_model_path's (a pruned model trained as it is). */
static enum deft_status build_model(struct run *r, struct deft_graph **g) {
    const char *pruned = r->s.cfg.training_config.pruned_model_path;
    enum deft_status s = pruned[0] ? det_pruned_graph(pruned, r->s.cfg.source_path, "training_config.pruned_model_path",
                                                      r->out, g)
                                   : build_from_spec(r, g);
    if (s) return s;
    /* the spec's priors assume TAO's map sizes: the graph must give exactly those */
    int outs[NO];
    int no = deft_graph_outputs(*g, outs, NO);
    if (no != 2 * r->s.geom.n_maps)
        return deft_set_error(DEFT_ERR_SHAPE, "%s: the graph has %d outputs, not %d", ssd_net_name(r->s.retina), no,
                              2 * r->s.geom.n_maps);
    for (int l = 0; l < r->s.geom.n_maps; l++) {
        const struct deft_shape *sh = &deft_graph_value(*g, outs[l])->shape;
        if (sh->d[2] != r->s.geom.maps[l].h || sh->d[3] != r->s.geom.maps[l].w)
            return deft_set_error(DEFT_ERR_SHAPE, "%s: predictor map %d of %s is %lldx%lld, the priors expect %dx%d",
                                  ssd_net_name(r->s.retina), l, r->s.cfg.ssd_config.arch, (long long)sh->d[2],
                                  (long long)sh->d[3], r->s.geom.maps[l].h, r->s.geom.maps[l].w);
    }
    const char *bb = deft_graph_get_meta(*g, "backbone");
    snprintf(r->arch, sizeof r->arch, "%.*s", bb && strlen(bb) > 2 ? (int)strlen(bb) - 2 : 7,
             bb && strlen(bb) > 2 ? bb + 1 : "unknown");
    return DEFT_OK;
}

static enum deft_status make_trainer(struct run *r) {
    const struct deft_ssd_config *c = &r->s.cfg;
    struct deft_graph *g = NULL;
    enum deft_status s = build_model(r, &g);
    if (s) {
        deft_graph_free(g);
        return s;
    }
    struct deft_trainer_opts to = {0};
    to.graph = g;
    to.model = (struct deft_model_opts){.batch = r->bs, .height = r->s.geom.net_h, .width = r->s.geom.net_w,
                                        .bn_mode = c->ssd_config.freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                        .training = true, .seed = (uint64_t)c->random_seed};
    det_optim_from_config(&c->training_config, &to.optim);
    r->epochs = c->training_config.num_epochs;
    r->lr = (struct det_lr_ctx){&c->training_config.learning_rate, (int64_t)r->spe * r->epochs};
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = det_lr_at, .ctx = &r->lr};
    to.backend = r->a->backend;
    to.device_index = r->a->gpu_index;
    to.amp = r->a->amp;
    to.seed = (uint64_t)c->random_seed;
    to.host_loss = host_loss;
    to.host_loss_user = r;
    s = deft_trainer_create(&to, &r->t);
    deft_graph_free(g);
    if (s) return s;
    char *meta = ssd_meta_json(&r->s);
    char *names = det_class_names_json(c->dataset_config.class_names, c->dataset_config.n_classes);
    if (!meta || !names) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = deft_trainer_set_meta(r->t, "ssd", meta);
    if (!s) s = deft_trainer_set_meta(r->t, "class_names", names);
    if (!s) s = deft_trainer_set_meta(r->t, "network", r->s.retina ? "\"retinanet\"" : "\"ssd\"");
    deft_free(meta);
    deft_free(names);
    for (int i = 0; i < 2 * r->s.geom.n_maps && !s; i++) {
        const struct deft_shape *sh = deft_trainer_output_shape(r->t, i);
        r->outs[i] = deft_malloc((size_t)deft_shape_numel(sh) * sizeof(float));
        if (!r->outs[i]) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    return s;
}

/* ---- hooks of the shared loop ---- */

static enum deft_status hook_start_epoch(void *ctx, int epoch) {
    struct run *r = ctx;
    return deft_det_loader_start_epoch(r->train_ld, epoch);
}

static enum deft_status hook_next_batch(void *ctx, int *n) {
    struct run *r = ctx;
    enum deft_status s = deft_det_loader_next(r->train_ld, &r->batch);
    *n = s ? 0 : r->batch.n;
    return s;
}

static void hook_poison(void *ctx) {
    struct run *r = ctx;
    size_t n = (size_t)r->batch.n * 3 * (size_t)r->batch.h * (size_t)r->batch.w;
    for (size_t i = 0; i < n; i++) r->batch.images[i] = NAN;
}

static enum deft_status hook_train_step(void *ctx, int n, float *loss) {
    struct run *r = ctx;
    (void)n;
    return deft_trainer_step_targets(r->t, r->batch.images, &r->batch, loss);
}

/* Detections of every validation image and the validation loss. */
static enum deft_status run_validation(struct run *r, struct det_dets *d, double *vloss) {
    const struct deft_ssd_config *c = &r->s.cfg;
    const struct ssd_geom *g = &r->s.geom;
    struct ssd_nms nms = {(float)c->nms_config.confidence_threshold, (float)c->nms_config.clustering_iou_threshold,
                          c->nms_config.top_k};
    d->n = r->val_ds.n;
    d->boxes = deft_calloc((size_t)(d->n ? d->n : 1), sizeof *d->boxes);
    d->n_boxes = deft_calloc((size_t)(d->n ? d->n : 1), sizeof *d->n_boxes);
    if (!d->boxes || !d->n_boxes) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = deft_det_loader_start_epoch(r->val_ld, 0);
    double lsum = 0;
    int seen = 0;
    struct deft_det_batch b;
    while (!s) {
        if ((s = deft_det_loader_next(r->val_ld, &b)) || b.n == 0) break;
        if ((s = deft_trainer_predict_outputs(r->t, b.images, b.n, r->outs))) break;
        const struct deft_box *gt[MAX_BATCH];
        int n_gt[MAX_BATCH];
        batch_gt(&b, b.n, gt, n_gt);
        struct deft_ssd_loss_terms t;
        if (!net_loss(&r->s, b.n, (const float *const *)r->outs, gt, n_gt, NULL, &t))
            lsum += t.total * b.n, seen += b.n;
        for (int i = 0; i < b.n && !s; i++) {
            int k = b.index[i];
            if (k < 0 || k >= d->n || b.corrupt[i]) continue;
            s = ssd_detect_image(g, (const float *const *)r->outs, i, &b.lb[i], &nms, &d->boxes[k], &d->n_boxes[k]);
        }
    }
    *vloss = seen ? lsum / seen : NAN;
    return s;
}

static enum deft_ap_mode ap_mode(const struct deft_ssd_config *c) {
    return c->eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE ? DEFT_AP_SAMPLE : DEFT_AP_INTEGRATE;
}

static enum deft_status hook_validate(void *ctx, int epoch, double *score) {
    struct run *r = ctx;
    const struct deft_ssd_config *c = &r->s.cfg;
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    double vl = NAN;
    (void)epoch;
    enum deft_status s = run_validation(r, &d, &vl);
    if (!s) s = det_score(&r->val_ds, &d, ap_mode(c), c->eval_config.matching_iou_threshold,
                          c->nms_config.confidence_threshold, &m);
    if (!s) {
        r->val_m[0].value = vl;
        r->val_m[1].value = *score = m->map;
        fprintf(r->out, "  AP (%s):", deft_ap_mode_describe(ap_mode(c)));
        for (int k = 0; k < m->n_classes; k++) fprintf(r->out, " %s %.4f", c->dataset_config.class_names[k], m->classes[k].ap);
        fprintf(r->out, "\n");
    }
    deft_det_metrics_free(m);
    det_dets_free(&d);
    return s;
}

static enum deft_status train_loop(struct run *r, int64_t start, double *best, int *best_epoch) {
    r->val_m[0] = (struct deft_loop_metric){"loss", "val loss", NAN};
    r->val_m[1] = (struct deft_loop_metric){"mAP", "val mAP", NAN};
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = det_lr_at, .ctx = &r->lr};
    const struct deft_ssd_config *c = &r->s.cfg;
    int every = c->eval_config.validation_period_during_training;
    struct deft_loop lp = {
        .trainer = r->t, .network = ssd_net_name(r->s.retina), .arch = r->arch, .dir = r->dir, .epochs = r->epochs,
        .steps_per_epoch = r->spe, .batch = r->bs, .lr = &lr, .val_every = every > 0 ? every : 1,
        .checkpoint_interval = c->training_config.checkpoint_interval, .skip_nonfinite = 0,
        .skip_key = "training_config", .metric = {"mAP", "mAP", true},
        .loss_terms = term_names, .n_loss_terms = N_TERMS,
        .val_metrics = r->val_m, .n_val_metrics = 2, .metric_plot = "map", .metric_plot_title = "Validation mAP",
        .events = r->ev, .stop = r->a->stop, .out = r->out, .ctx = r,
        .start_epoch = hook_start_epoch, .next_batch = hook_next_batch, .poison_batch = hook_poison,
        .train_step = hook_train_step, .validate = r->have_val ? hook_validate : NULL};
    enum deft_status s = deft_loop_run(&lp, start);
    *best = lp.have_best ? lp.best : -1;
    *best_epoch = lp.best_epoch;
    return s;
}

static void print_spec(const void *cfg, FILE *f) { deft_ssd_config_print(cfg, f); }

static void run_free(struct run *r) {
    if (r->ev && deft_events_close(r->ev)) deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
    deft_trainer_free(r->t);
    deft_det_loader_free(r->train_ld);
    deft_det_loader_free(r->val_ld);
    deft_det_dataset_free(&r->train_ds);
    deft_det_dataset_free(&r->val_ds);
    for (int i = 0; i < NO; i++) deft_free(r->outs[i]);
    ssd_setup_free(&r->s);
}

/* Weights to start from: --resume / resume_model_path, else pretrain_model_path, else the pruned model's. */
static enum deft_status start_weights(struct run *r, const char *resume_from, int64_t *start) {
    char ck[2400];
    snprintf(ck, sizeof ck, "%s/weights/latest.safetensors", r->dir);
    const char *from = r->a->resume ? ck : resume_from;
    const char *pre = r->s.cfg.training_config.pretrain_model_path;
    enum deft_status s = DEFT_OK;
    *start = 0;
    if (from) {
        if ((s = deft_trainer_resume(r->t, from))) return s;
        *start = deft_trainer_steps(r->t);
        fprintf(r->out, "resumed from %s at step %lld\n", from, (long long)*start);
    } else if (pre[0]) {
        s = deft_trainer_load_pretrained(r->t, pre, r->out);
    } else if (r->s.cfg.training_config.pruned_model_path[0]) {
        s = deft_trainer_load_pretrained(r->t, r->s.cfg.training_config.pruned_model_path, r->out);
    }
    return s;
}

enum deft_status ssd_train(const struct deft_task_args *a) { return ssd_train_net(a, false); }

enum deft_status ssd_train_net(const struct deft_task_args *a, bool retina) {
    if (a->dry_run) return ssd_dry_run_net(a, retina);
    struct run r = {.a = a, .out = a->out ? a->out : stdout};
    double best = -1;
    int best_epoch = 0;
    bool dir_opened = false;
    enum deft_status s = ssd_setup_load(&r.s, a, retina);
    if (s) goto done;
    if (r.s.cfg.training_config.enable_qat) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: training_config.enable_qat: %s %s", r.s.cfg.source_path,
                           ssd_net_name(retina), DEFT_SSD_NOT_FINISHED);
        goto done;
    }
    if (deft_dist_size() > 1) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "data-parallel training is classification's for now: train %s in one "
                           "process", ssd_net_name(retina));
        goto done;
    }
    const char *tc_resume = r.s.cfg.training_config.resume_model_path;
    const char *resume_from = a->resume_from ? a->resume_from : !a->resume && tc_resume[0] ? tc_resume : NULL;
    if ((s = deft_run_dir_open(&(struct deft_run_dir_opts){
             .network = ssd_net_name(retina), .requested = a->results_dir && a->results_dir[0] ? a->results_dir : r.s.cfg.results_dir,
             .resume = a->resume, .resume_from = resume_from, .overwrite = a->overwrite, .out = r.out},
             r.dir, sizeof r.dir)))
        goto done;
    dir_opened = true;
    if ((s = deft_run_log_open(r.dir, a->log_file, r.out, &r.log))) goto done;
    r.out = deft_run_log_stream(r.log);
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = open_data(&r)) || (s = make_trainer(&r))) goto done;
    int64_t start = 0;
    if ((s = start_weights(&r, resume_from, &start))) goto done;
    if ((s = deft_run_dir_record_spec(r.dir, a->argc, a->argv, print_spec, &r.s.cfg))) goto done;
    if ((s = deft_events_open(r.dir, &r.ev))) goto done;
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r.t), &gs);
    fprintf(r.out, "augmentation: flip %g, hue +-%d deg, saturation, brightness; TAO's random crop / zoom-out are "
            "approximated by a 0.3 jitter\n", r.s.cfg.augmentation_config.random_flip, r.s.cfg.augmentation_config.hue);
    fprintf(r.out, "training %s-%s (%lld params, %.2f GFLOPs/image, %ld priors) on %d images of %d class%s, %d epoch%s "
            "x %d steps of %d at %dx%d, %d threads -> %s\n", ssd_net_name(retina), r.arch, (long long)gs.params, (double)gs.flops / 1e9 / r.bs,
            r.s.geom.n_priors, r.train_ds.n, r.train_ds.n_classes, r.train_ds.n_classes == 1 ? "" : "es", r.epochs,
            r.epochs == 1 ? "" : "s", r.spe, r.bs, r.s.geom.net_w, r.s.geom.net_h, deft_get_threads(), r.dir);
    s = train_loop(&r, start, &best, &best_epoch);
    if (!s && best < 0) fprintf(r.out, "done (no validation); weights in %s/weights\n", r.dir);
    else if (!s) fprintf(r.out, "done: best val mAP %.4f (%s, epoch %d, best.safetensors); weights in %s/weights\n", best,
                         deft_ap_mode_describe(ap_mode(&r.s.cfg)), best_epoch, r.dir);
done:
    run_free(&r);
    deft_run_log_close(r.log, s);
    if (dir_opened) deft_run_dir_unlock(r.dir);
    if (s && dir_opened) deft_run_dir_close(r.dir);
    return s;
}

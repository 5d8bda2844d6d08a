/* ssd_train.c - `deft ssd train` and `deft retinanet train`: the spec's data
 * through the detection loader, TAO's SSD or RetinaNet graph, TAO's SSD loss
 * or RetinaNet focal loss as the trainer's host loss, and the
 * shared training loop (src/train/loop.c) with validation mAP every
 * eval_config.validation_period_during_training epochs. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "deft/loop.h"
#include "deft/models.h"
#include "deft/report.h"
#include "deft/retinanet_model.h"
#include "deft/trainer.h"
#include "tasks/common/det_split.h"
#include "tasks/common/det_train_cfg.h"
#include "tasks/common/det_detect_all.h"
#include "tasks/common/det_train_loop.h"
#include "tasks/common/pruned_graph.h"
#include "tasks/ssd/ssd_task.h"

enum { TERM_CLS = 0, TERM_LOC, N_TERMS };
static const char *const term_names[N_TERMS] = {"loss_cls", "loss_loc"};
#define NO (2 * DEFT_SSD_LAYERS)
#define MAX_BATCH 512

struct run {
    struct det_train dt;
    struct ssd_setup s;
    struct det_lr_ctx lr;
    float *outs[NO];
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
    enum deft_status s = det_spec_read_split(&c->dataset_config, c->source_path, false, &r->dt.train_ds);
    if (s) return s;
    const struct deft_det_read_stats *st = &r->dt.train_ds.stats;
    fprintf(r->dt.out, "train: %d images (%lld background), %lld boxes (%lld difficult, %lld clipped, %lld of unmapped "
            "classes)\n", r->dt.train_ds.n, (long long)st->background_images, (long long)st->boxes,
            (long long)st->difficult, (long long)st->clipped, (long long)st->unmapped);
    if (r->dt.train_ds.n < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the training data has no images", c->source_path);
    r->dt.have_val = c->dataset_config.n_validation_data_sources > 0;
    if (r->dt.have_val) {
        if ((s = det_spec_read_split(&c->dataset_config, c->source_path, true, &r->dt.val_ds))) return s;
        fprintf(r->dt.out, "val:   %d images, %lld boxes\n", r->dt.val_ds.n, (long long)r->dt.val_ds.stats.boxes);
    }
    struct deft_det_transform tt, vt;
    ssd_transform(&r->s, true, &tt);
    ssd_transform(&r->s, false, &vt);
    return det_train_loaders(&r->dt, c->training_config.batch_size_per_gpu,
                             c->training_config.n_workers > 0 ? c->training_config.n_workers : 2,
                             (uint64_t)c->random_seed, &tt, &vt);
}

static enum deft_status build_from_spec(struct run *r, struct deft_graph **g) {
    const struct deft_ssd_net_config *c = &r->s.cfg.ssd_config;
    int fb[64], nfb = 0;
    for (int i = 0; i < c->n_freeze_blocks && nfb < 64; i++) fb[nfb++] = (int)c->freeze_blocks[i];
    if (r->s.retina) {
        struct deft_retinanet_model_opts ro = {
            .arch = c->arch, .nlayers = c->nlayers, .num_classes = r->s.geom.n_classes,
            .boxes_per_cell = r->s.geom.maps[0].boxes, .n_kernels = c->n_kernels, .feature_size = c->feature_size,
            .height = r->s.geom.net_h, .width = r->s.geom.net_w, .batch = r->dt.bs, .freeze_bn = c->freeze_bn,
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
                                    .height = r->s.geom.net_h, .width = r->s.geom.net_w, .batch = r->dt.bs,
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
                                                      r->dt.out, g)
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
    det_train_arch(&r->dt, *g);
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
    det_train_trainer_opts(&r->dt, r->s.geom.net_h, r->s.geom.net_w, c->ssd_config.freeze_bn,
                           (uint64_t)c->random_seed, &to);
    det_optim_from_config(&c->training_config, &to.optim);
    r->dt.epochs = c->training_config.num_epochs;
    r->lr = (struct det_lr_ctx){&c->training_config.learning_rate, (int64_t)r->dt.spe * r->dt.epochs};
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = det_lr_at, .ctx = &r->lr};
    s = det_train_create(&r->dt, &to, g, "ssd", ssd_meta_json(&r->s), c->dataset_config.class_names,
                         c->dataset_config.n_classes);
    return s ? s : det_train_alloc_outs(&r->dt, 2 * r->s.geom.n_maps, r->outs);
}

/* The validation pass's hooks: the network through the trainer, the loss summed per batch. */
struct val_pass { struct run *r; struct ssd_nms nms; double lsum; int seen; };
static enum deft_status val_run(void *ctx, const struct deft_det_batch *b) {
    struct val_pass *v = ctx;
    enum deft_status s = deft_trainer_predict_outputs(v->r->dt.t, b->images, b->n, v->r->outs);
    if (s) return s;
    const struct deft_box *gt[MAX_BATCH];
    int n_gt[MAX_BATCH];
    batch_gt(b, b->n, gt, n_gt);
    struct deft_ssd_loss_terms t;
    if (!net_loss(&v->r->s, b->n, (const float *const *)v->r->outs, gt, n_gt, NULL, &t))
        v->lsum += t.total * b->n, v->seen += b->n;
    return DEFT_OK;
}
static enum deft_status val_detect(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n) {
    const struct val_pass *v = ctx;
    return ssd_detect_image(&v->r->s.geom, (const float *const *)v->r->outs, i, &b->lb[i], &v->nms, boxes, n);
}

/* Detections of every validation image and the validation loss. */
static enum deft_status run_validation(struct run *r, struct det_dets *d, double *vloss) {
    const struct deft_ssd_config *c = &r->s.cfg;
    struct val_pass v = {r, {(float)c->nms_config.confidence_threshold, (float)c->nms_config.clustering_iou_threshold,
                             c->nms_config.top_k}, 0, 0};
    struct det_detector net = {.ctx = &v, .run = val_run, .detect = val_detect};
    enum deft_status s = det_detect_loader(r->dt.val_ld, &r->dt.val_ds, &net, NULL, d, NULL);
    *vloss = v.seen ? v.lsum / v.seen : NAN;
    return s;
}

static enum deft_ap_mode ap_mode(const struct deft_ssd_config *c) {
    return c->eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE ? DEFT_AP_SAMPLE : DEFT_AP_INTEGRATE;
}

static enum deft_status validate(void *user, int epoch, double *score) {
    struct run *r = user;
    const struct deft_ssd_config *c = &r->s.cfg;
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    double vl = NAN;
    (void)epoch;
    enum deft_status s = run_validation(r, &d, &vl);
    if (!s) s = det_score(&r->dt.val_ds, &d, ap_mode(c), c->eval_config.matching_iou_threshold,
                          c->nms_config.confidence_threshold, &m);
    if (!s) {
        r->dt.val_m[0].value = vl;
        r->dt.val_m[1].value = *score = m->map;
        det_train_print_ap(&r->dt, deft_ap_mode_describe(ap_mode(c)), m, c->dataset_config.class_names);
        fprintf(r->dt.out, "\n");
    }
    deft_det_metrics_free(m);
    det_dets_free(&d);
    return s;
}

static void print_spec(const void *cfg, FILE *f) { deft_ssd_config_print(cfg, f); }

static void run_free(struct run *r) {
    det_train_release(&r->dt);
    for (int i = 0; i < NO; i++) deft_free(r->outs[i]);
    ssd_setup_free(&r->s);
}

enum deft_status ssd_train(const struct deft_task_args *a) { return ssd_train_net(a, false); }

static const struct det_train_net ssd_net = {
    .loss_terms = term_names, .n_loss_terms = N_TERMS, .val_metrics = {{"loss", "val loss"}, {"mAP", "val mAP"}},
    .host_loss = host_loss, .validate = validate, .no_val = "no validation"};

enum deft_status ssd_train_net(const struct deft_task_args *a, bool retina) {
    if (a->dry_run) return ssd_dry_run_net(a, retina);
    struct run r = {0};
    det_train_init(&r.dt, a, &ssd_net, ssd_net_name(retina), &r);
    enum deft_status s = ssd_setup_load(&r.s, a, retina);
    if (s) goto done;
    if (r.s.cfg.training_config.enable_qat) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: training_config.enable_qat: %s %s", r.s.cfg.source_path,
                           ssd_net_name(retina), DEFT_SSD_NOT_FINISHED);
        goto done;
    }
    const char *tc_resume = r.s.cfg.training_config.resume_model_path;
    const char *resume_from = a->resume_from ? a->resume_from : !a->resume && tc_resume[0] ? tc_resume : NULL;
    if ((s = det_train_open_dir(&r.dt, r.s.cfg.results_dir, resume_from))) goto done;
    if ((s = open_data(&r)) || (s = make_trainer(&r))) goto done;
    int64_t start = 0;
    const struct deft_yolo_training_config *tc = &r.s.cfg.training_config;
    if ((s = det_train_weights(&r.dt, resume_from, tc->pretrain_model_path, tc->pruned_model_path, &start)) ||
        (s = det_train_record(&r.dt, print_spec, &r.s.cfg)))
        goto done;
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r.dt.t), &gs);
    fprintf(r.dt.out, "augmentation: flip %g, hue +-%d deg, saturation, brightness; TAO's random crop / zoom-out are "
            "approximated by a 0.3 jitter\n", r.s.cfg.augmentation_config.random_flip, r.s.cfg.augmentation_config.hue);
    fprintf(r.dt.out, "training %s-%s (%lld params, %.2f GFLOPs/image, %ld priors) on %d images of %d class%s, %d "
            "epoch%s x %d steps of %d at %dx%d, %d threads -> %s\n", ssd_net_name(retina), r.dt.arch,
            (long long)gs.params, (double)gs.flops / 1e9 / r.dt.bs, r.s.geom.n_priors, r.dt.train_ds.n,
            r.dt.train_ds.n_classes, r.dt.train_ds.n_classes == 1 ? "" : "es", r.dt.epochs,
            r.dt.epochs == 1 ? "" : "s", r.dt.spe, r.dt.bs, r.s.geom.net_w, r.s.geom.net_h, deft_get_threads(),
            r.dt.dir);
    int every = r.s.cfg.eval_config.validation_period_during_training;
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = det_lr_at, .ctx = &r.lr};
    s = det_train_run_loop(&r.dt, start, &(struct det_train_loop_opts){
        .lr = &lr, .val_every = every > 0 ? every : 1, .checkpoint_interval = tc->checkpoint_interval,
        .ap = deft_ap_mode_describe(ap_mode(&r.s.cfg))});
done:
    run_free(&r);
    det_train_finish(&r.dt, s);
    return s;
}

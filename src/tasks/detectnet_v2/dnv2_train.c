/* dnv2_train.c - `deft detectnet_v2 train`: the spec's KITTI data through the
 * detection loader, the GridboxModel, TAO's targets rasterized per batch on
 * the host and its cost as the trainer's host loss (auto-weighting at each
 * epoch's end), TAO's soft-start annealing, Adam and the regularizer, and the
 * shared training loop with TAO's DetectNet_v2 validation mAP. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "deft/dist.h"
#include "deft/loop.h"
#include "deft/models.h"
#include "deft/report.h"
#include "deft/trainer.h"
#include "tasks/common/pruned_graph.h"
#include "tasks/detectnet_v2/dnv2_task.h"

enum { TERM_COV = 0, TERM_BBOX, N_TERMS };
static const char *const term_names[N_TERMS] = {"loss_cov", "loss_bbox"};

struct run {
    const struct deft_task_args *a;
    FILE *out;
    struct dnv2_setup d;
    struct deft_det_dataset train_ds, val_ds;
    struct deft_det_loader *train_ld, *val_ld;
    struct deft_det_batch batch;
    struct deft_trainer *t;
    struct deft_events *ev;
    struct deft_run_log *log;
    const struct deft_dnv2_lr_anneal *lr;
    int64_t lr_total;
    int bs, spe, epochs, batches_since_reweight;
    char dir[2048], wdir[2100], arch[64];
    struct dnv2_cost_state cost;
    struct dnv2_targets tg;           /* targets of a whole batch, back to back */
    double *mean;                     /* [K][DNV2_N_OBJ] of the last batch */
    struct deft_box *px;              /* one image's boxes in network pixels */
    int px_cap;
    float *outs[2];                   /* validation outputs: cov, bbox */
    struct dnv2_eval_class *ecls;
    struct deft_loop_metric val_m[2];
};

static double lr_at(const void *ctx, int64_t step) {
    const struct run *r = ctx;
    double p = r->lr_total > 0 ? (double)step / (double)r->lr_total : 1;
    return det_lr_soft_start_anneal(r->lr->min_learning_rate, r->lr->max_learning_rate, r->lr->soft_start,
                                    r->lr->annealing, p);
}

static void optim_from_config(const struct deft_dnv2_training_config *tc, struct deft_optim_config *o) {
    memset(o, 0, sizeof *o);
    o->kind = DEFT_OPTIM_ADAM; /* TAO's only DetectNet_v2 optimizer */
    const struct deft_dnv2_adam *ad = &tc->optimizer.adam;
    o->beta1 = tc->optimizer.has_adam ? (float)ad->beta1 : 0.9f;
    o->beta2 = tc->optimizer.has_adam ? (float)ad->beta2 : 0.999f;
    o->eps = tc->optimizer.has_adam && ad->epsilon > 0 ? (float)ad->epsilon : 1e-8f;
    /* Keras kernel regularizers: L2 w*sum(k^2) -> gradient 2*w*k; L1 w*sum|k| -> w*sign(k) */
    if (tc->regularizer.type == DEFT_DNV2_REG_L2) o->weight_decay = (float)(2 * tc->regularizer.weight);
    if (tc->regularizer.type == DEFT_DNV2_REG_L1) o->l1 = (float)tc->regularizer.weight;
}

/* Rasterizes image i of a batch (boxes normalised to the input) into slot i of r->tg. */
static enum deft_status raster_image(struct run *r, const struct deft_det_batch *b, int i, int slot) {
    const struct dnv2_grid *g = &r->d.grid;
    int n = i < b->n ? b->n_boxes[i] : 0;
    if (n > r->px_cap) {
        struct deft_box *p = deft_realloc(r->px, (size_t)n * sizeof *p);
        if (!p) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        r->px = p, r->px_cap = n;
    }
    for (int j = 0; j < n; j++) {
        struct deft_box x = b->boxes[b->box_start[i] + j];
        x.x1 *= (float)g->in_w, x.x2 *= (float)g->in_w, x.y1 *= (float)g->in_h, x.y2 *= (float)g->in_h;
        r->px[j] = x;
    }
    size_t plane = (size_t)r->d.n_classes * (size_t)g->gh * (size_t)g->gw;
    struct dnv2_targets t = {r->tg.cov + slot * plane, r->tg.cov_norm + slot * plane, r->tg.bbox + 4 * slot * plane,
                             r->tg.mask + slot * plane};
    return dnv2_rasterize(g, &r->d.raster, r->px, n, NULL, 0, &t);
}

/* loss_cov / loss_bbox: each objective's weighted share of the total. */
static void weighted_terms(const struct run *r, const double *mean, double *terms) {
    terms[TERM_COV] = terms[TERM_BBOX] = 0;
    for (int k = 0; k < r->d.n_classes; k++)
        for (int o = 0; o < DNV2_N_OBJ; o++)
            terms[o] += r->cost.class_w[k] * r->cost.obj_w[k * DNV2_N_OBJ + o] * mean[k * DNV2_N_OBJ + o];
}

static enum deft_status batch_cost(struct run *r, int n, const struct deft_det_batch *b, const float *cov,
                                   const float *bbox, float *gcov, float *gbbox, double *loss, double *terms) {
    if (n > r->bs) return deft_set_error(DEFT_ERR_SHAPE, "batch of %d over the %d the targets hold", n, r->bs);
    enum deft_status s = DEFT_OK;
    for (int i = 0; i < n && !s; i++) s = raster_image(r, b, i, i);
    if (s) return s;
    struct dnv2_cost_terms ct = {.mean = r->mean};
    s = dnv2_cost(&r->cost, &r->d.cost, n, r->d.grid.gh, r->d.grid.gw, cov, bbox, &r->tg, gcov, gbbox, &ct);
    if (s) return s;
    *loss = ct.total;
    if (terms) weighted_terms(r, r->mean, terms);
    return DEFT_OK;
}

static enum deft_status host_loss(void *user, int n_outputs, const float *const *outputs,
                                  const struct deft_shape *shapes, const void *targets, float *const *grads,
                                  double *loss, double *terms) {
    struct run *r = user;
    int K = r->d.n_classes;
    if (n_outputs != 2 || shapes[0].d[1] != K || shapes[1].d[1] != 4 * K)
        return deft_set_error(DEFT_ERR_SHAPE, "the model's outputs are not output_cov [N,%d,..] and output_bbox "
                              "[N,%d,..]", K, 4 * K);
    enum deft_status s = batch_cost(r, (int)shapes[0].d[0], targets, outputs[0], outputs[1], grads[0], grads[1],
                                    loss, terms);
    if (s) return s;
    dnv2_cost_accumulate(&r->cost, r->mean);
    r->batches_since_reweight++;
    return DEFT_OK;
}

static enum deft_status alloc_targets(struct run *r) {
    size_t plane = (size_t)r->bs * (size_t)r->d.n_classes * (size_t)r->d.grid.gh * (size_t)r->d.grid.gw;
    r->tg.cov = deft_malloc(plane * sizeof(float));
    r->tg.cov_norm = deft_malloc(plane * sizeof(float));
    r->tg.mask = deft_malloc(plane * sizeof(float));
    r->tg.bbox = deft_malloc(4 * plane * sizeof(float));
    r->mean = deft_calloc((size_t)r->d.n_classes * DNV2_N_OBJ, sizeof(double));
    r->outs[0] = deft_malloc(plane * sizeof(float));
    r->outs[1] = deft_malloc(4 * plane * sizeof(float));
    if (!r->tg.cov || !r->tg.cov_norm || !r->tg.mask || !r->tg.bbox || !r->mean || !r->outs[0] || !r->outs[1])
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    return dnv2_cost_state_init(&r->cost, &r->d.cost);
}

static enum deft_status open_data(struct run *r) {
    const struct deft_dnv2_config *c = &r->d.cfg;
    enum deft_status s = dnv2_read_split(&r->d, false, &r->train_ds);
    if (s) return s;
    const struct deft_det_read_stats *st = &r->train_ds.stats;
    fprintf(r->out, "train: %d images, %lld boxes (%lld clipped, %lld dropped as tiny, %lld of unmapped classes)\n",
            r->train_ds.n, (long long)st->boxes, (long long)st->clipped, (long long)st->dropped_small,
            (long long)st->unmapped);
    if (r->train_ds.n < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the training data has no images", c->source_path);
    if ((s = dnv2_read_split(&r->d, true, &r->val_ds))) return s;
    if (r->val_ds.n) fprintf(r->out, "val:   %d images, %lld boxes\n", r->val_ds.n, (long long)r->val_ds.stats.boxes);
    r->bs = c->training_config.batch_size_per_gpu;
    if (r->bs > r->train_ds.n) r->bs = r->train_ds.n;
    struct deft_det_loader_opts lo;
    deft_det_loader_opts_defaults(&lo);
    lo.batch_size = r->bs;
    lo.num_threads = 2;
    lo.shuffle = true;
    lo.drop_last = true;
    lo.strict = r->a->fatal_corrupt;
    lo.seed = (uint64_t)c->random_seed;
    dnv2_transform(&r->d, true, &lo.transform);
    if ((s = deft_det_loader_create(&lo, &r->train_ds, &r->train_ld))) return s;
    r->spe = deft_det_loader_num_batches(r->train_ld);
    if (r->val_ds.n) {
        lo.shuffle = false;
        lo.drop_last = false;
        dnv2_transform(&r->d, false, &lo.transform);
        if ((s = deft_det_loader_create(&lo, &r->val_ds, &r->val_ld))) return s;
    }
    return DEFT_OK;
}

static enum deft_status build_from_spec(struct run *r, struct deft_graph **g) {
    const struct deft_dnv2_model_config *mc = &r->d.cfg.model_config;
    int fb[64], nfb = 0;
    for (int i = 0; i < mc->n_freeze_blocks && nfb < 64; i++) fb[nfb++] = (int)mc->freeze_blocks[i];
    struct deft_dnv2_model_opts o = {.arch = mc->arch, .num_layers = mc->num_layers, .num_classes = r->d.n_classes,
                                     .height = r->d.net_h, .width = r->d.net_w, .batch = r->bs,
                                     .freeze_bn = mc->freeze_bn, .freeze_blocks = nfb ? fb : NULL,
                                     .n_freeze_blocks = nfb, .freeze_backbone = mc->freeze_pretrained_layers,
                                     .training = true};
    enum deft_status s = deft_dnv2_model_build(&o, g);
    return s ? deft_wrap_error(s, "%s: model_config", r->d.cfg.source_path) : DEFT_OK;
}

static enum deft_status set_meta(struct run *r) {
    char *meta = dnv2_meta_json(&r->d);
    char *names = det_class_names_json(r->d.cfg.class_names, r->d.n_classes);
    enum deft_status s = meta && names ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = deft_trainer_set_meta(r->t, "detectnet_v2", meta);
    if (!s) s = deft_trainer_set_meta(r->t, "class_names", names);
    if (!s) s = deft_trainer_set_meta(r->t, "network", "\"detectnet_v2\"");
    deft_free(meta);
    deft_free(names);
    return s;
}

static enum deft_status make_trainer(struct run *r) {
    const struct deft_dnv2_config *c = &r->d.cfg;
    const struct deft_dnv2_training_config *tc = &c->training_config;
    struct deft_graph *g = NULL;
    enum deft_status s = c->model_config.load_graph
                             ? det_pruned_graph(c->model_config.pretrained_model_file, c->source_path,
                                                "model_config.pretrained_model_file (load_graph)", r->out, &g)
                             : build_from_spec(r, &g);
    if (s) {
        deft_graph_free(g);
        return s;
    }
    const char *bb = deft_graph_get_meta(g, "backbone");
    snprintf(r->arch, sizeof r->arch, "%.*s", bb && strlen(bb) > 2 ? (int)strlen(bb) - 2 : 7,
             bb && strlen(bb) > 2 ? bb + 1 : "unknown");
    static const char *const excl[] = {"output_cov", "output_bbox", NULL};
    struct deft_qat_opts qo = {.exclude = excl};
    struct deft_trainer_opts to = {0};
    if (tc->enable_qat) {
        to.qat = &qo; /* the shared trainer rewrites the graph, as for classification and yolo_v4 */
        fprintf(r->out, "quantization-aware training: int8 weights per output channel, activations per tensor; "
                "output_cov and output_bbox kept float\n");
    }
    to.graph = g;
    to.model = (struct deft_model_opts){.batch = r->bs, .height = r->d.net_h, .width = r->d.net_w,
                                        .bn_mode = c->model_config.freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                        .training = true, .seed = (uint64_t)c->random_seed};
    optim_from_config(tc, &to.optim);
    r->epochs = tc->num_epochs;
    r->lr = &tc->learning_rate.soft_start_annealing_schedule;
    r->lr_total = (int64_t)r->spe * r->epochs;
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = r};
    to.backend = r->a->backend;
    to.device_index = r->a->gpu_index;
    to.amp = r->a->amp;
    to.seed = (uint64_t)c->random_seed;
    to.host_loss = host_loss;
    to.host_loss_user = r;
    s = deft_trainer_create(&to, &r->t);
    deft_graph_free(g);
    return s ? s : set_meta(r);
}

/* ---- hooks of the shared loop ---- */

/* Auto-weighting at the end of each epoch (here: before the next one starts). */
static enum deft_status hook_start_epoch(void *ctx, int epoch) {
    struct run *r = ctx;
    if (r->batches_since_reweight > 0) {
        dnv2_cost_epoch_end(&r->cost, &r->d.cost);
        r->batches_since_reweight = 0;
    }
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

static enum deft_status run_validation(struct run *r, struct det_dets *d, double *vloss) {
    enum deft_status s = det_dets_alloc(d, r->val_ds.n);
    if (!s) s = deft_det_loader_start_epoch(r->val_ld, 0);
    double lsum = 0;
    int seen = 0;
    struct deft_det_batch b;
    while (!s) {
        if ((s = deft_det_loader_next(r->val_ld, &b)) || b.n == 0) break;
        if ((s = deft_trainer_predict_outputs(r->t, b.images, b.n, r->outs))) break;
        double l;
        if (!batch_cost(r, b.n, &b, r->outs[0], r->outs[1], NULL, NULL, &l, NULL)) lsum += l * b.n, seen += b.n;
        for (int i = 0; i < b.n && !s; i++) {
            int k = b.index[i];
            if (k < 0 || k >= d->n || b.corrupt[i]) continue;
            s = dnv2_detect_image(&r->d.grid, &r->d.cluster, r->d.n_classes, r->outs[0], r->outs[1], i, &b.lb[i],
                                  &d->boxes[k], &d->n_boxes[k]);
        }
    }
    *vloss = seen ? lsum / seen : NAN;
    return s;
}

static bool integrate(const struct deft_dnv2_config *c) {
    return c->evaluation_config.average_precision_mode == DEFT_DNV2_AP_INTEGRATE;
}

static enum deft_status hook_validate(void *ctx, int epoch, double *score) {
    struct run *r = ctx;
    const struct deft_dnv2_evaluation_config *e = &r->d.cfg.evaluation_config;
    *score = NAN;
    r->val_m[0].value = r->val_m[1].value = NAN;
    if (epoch + 1 < e->first_validation_epoch && epoch + 1 < r->epochs) return DEFT_OK; /* TAO's first_validation_epoch */
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    double vl = NAN;
    enum deft_status s = run_validation(r, &d, &vl);
    if (!s) s = dnv2_metric(&r->val_ds, &d, r->ecls, integrate(&r->d.cfg), 0, &m);
    if (!s) {
        r->val_m[0].value = vl;
        r->val_m[1].value = *score = m->map;
        fprintf(r->out, "  AP (%s):", integrate(&r->d.cfg) ? "TAO DetectNet_v2 INTEGRATE" : "TAO DetectNet_v2 SAMPLE");
        for (int k = 0; k < m->n_classes; k++) fprintf(r->out, " %s %.4f", r->d.cfg.class_names[k], m->classes[k].ap);
        fprintf(r->out, "\n");
    }
    deft_det_metrics_free(m);
    det_dets_free(&d);
    return s;
}

static enum deft_status train_loop(struct run *r, int64_t start, double *best, int *best_epoch) {
    r->val_m[0] = (struct deft_loop_metric){"loss", "val loss", NAN};
    r->val_m[1] = (struct deft_loop_metric){"mAP", "val mAP", NAN};
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = r};
    const struct deft_dnv2_config *c = &r->d.cfg;
    struct deft_loop lp = {
        .trainer = r->t, .network = "detectnet_v2", .arch = r->arch, .dir = r->dir, .epochs = r->epochs,
        .steps_per_epoch = r->spe, .batch = r->bs, .lr = &lr,
        .val_every = c->evaluation_config.validation_period_during_training,
        .checkpoint_interval = c->training_config.checkpoint_interval, .skip_key = "training_config",
        .metric = {"mAP", "mAP", true}, .loss_terms = term_names, .n_loss_terms = N_TERMS,
        .val_metrics = r->val_m, .n_val_metrics = 2, .metric_plot = "map", .metric_plot_title = "Validation mAP",
        .events = r->ev, .stop = r->a->stop, .out = r->out, .ctx = r,
        .start_epoch = hook_start_epoch, .next_batch = hook_next_batch, .poison_batch = hook_poison,
        .train_step = hook_train_step, .validate = r->val_ds.n ? hook_validate : NULL};
    enum deft_status s = deft_loop_run(&lp, start);
    *best = lp.have_best ? lp.best : -1;
    *best_epoch = lp.best_epoch;
    return s;
}

static void print_spec(const void *cfg, FILE *f) { deft_dnv2_config_print(cfg, f); }

static void run_free(struct run *r) {
    if (r->ev && deft_events_close(r->ev)) deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
    deft_trainer_free(r->t);
    deft_det_loader_free(r->train_ld);
    deft_det_loader_free(r->val_ld);
    deft_det_dataset_free(&r->train_ds);
    deft_det_dataset_free(&r->val_ds);
    dnv2_cost_state_free(&r->cost);
    deft_free(r->tg.cov), deft_free(r->tg.cov_norm), deft_free(r->tg.mask), deft_free(r->tg.bbox);
    deft_free(r->mean), deft_free(r->px), deft_free(r->outs[0]), deft_free(r->outs[1]), deft_free(r->ecls);
    dnv2_setup_free(&r->d);
}

/* What training needs beyond the spec's checks. */
static enum deft_status check_trainable(const struct dnv2_setup *d) {
    const struct deft_dnv2_config *c = &d->cfg;
    if (c->training_config.learning_rate.kind != DEFT_DNV2_LR_SOFT_START_ANNEALING)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: training_config.learning_rate: "
                              "early_stopping_annealing_schedule is not finished yet (issue 20): use "
                              "soft_start_annealing_schedule", c->source_path);
    if (deft_dist_size() > 1)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "data-parallel training (mpirun, --gpus N) is classification's "
                              "for now: train this network in one process");
    const struct deft_dnv2_model_config *mc = &c->model_config;
    if (mc->load_graph && !mc->pretrained_model_file[0])
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.load_graph needs pretrained_model_file (the "
                              "pruned model)", c->source_path);
    return DEFT_OK;
}

static enum deft_status start_run(struct run *r) {
    const struct deft_task_args *a = r->a;
    enum deft_status s;
    if ((s = deft_run_log_open(r->dir, a->log_file, r->out, &r->log))) return s;
    r->out = deft_run_log_stream(r->log);
    snprintf(r->wdir, sizeof r->wdir, "%s/weights", r->dir);
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = open_data(r)) || (s = alloc_targets(r)) || (s = make_trainer(r)) ||
        (s = dnv2_eval_classes(&r->d.cfg, &r->ecls)))
        return s;
    const char *pre = r->d.cfg.model_config.pretrained_model_file;
    char ck[2400];
    snprintf(ck, sizeof ck, "%s/latest.safetensors", r->wdir);
    const char *from = a->resume ? ck : a->resume_from;
    if (from) {
        if ((s = deft_trainer_resume(r->t, from))) return s;
        fprintf(r->out, "resumed from %s at step %lld (the auto-weighting restarts from the initial weights)\n", from,
                (long long)deft_trainer_steps(r->t));
    } else if (pre[0] && (s = deft_trainer_load_pretrained(r->t, pre, r->out))) {
        return deft_wrap_error(s, "%s: model_config.pretrained_model_file", r->d.cfg.source_path);
    }
    if ((s = deft_run_dir_record_spec(r->dir, a->argc, a->argv, print_spec, &r->d.cfg))) return s;
    return deft_events_open(r->dir, &r->ev);
}

static enum deft_status train_run(struct run *r) {
    enum deft_status s = start_run(r);
    if (s) return s;
    int64_t start = deft_trainer_steps(r->t);
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r->t), &gs);
    fprintf(r->out, "training detectnet_v2-%s (%lld params, %.2f GFLOPs/image) on %d images of %d class%s, %d epoch%s "
            "x %d step%s of %d at %dx%d (grid %dx%d), %d threads -> %s\n", r->arch, (long long)gs.params,
            (double)gs.flops / 1e9 / r->bs, r->train_ds.n, r->d.n_classes, r->d.n_classes == 1 ? "" : "es",
            r->epochs, r->epochs == 1 ? "" : "s", r->spe, r->spe == 1 ? "" : "s", r->bs, r->d.net_w, r->d.net_h,
            r->d.grid.gw, r->d.grid.gh, deft_get_threads(), r->dir);
    double best = -1;
    int best_epoch = 0;
    s = train_loop(r, start, &best, &best_epoch);
    if (!s && best < 0) fprintf(r->out, "done (no validation figure); weights in %s\n", r->wdir);
    else if (!s) fprintf(r->out, "done: best val mAP %.4f (%s, epoch %d, best.safetensors); weights in %s\n", best,
                         dnv2_metric_describe(integrate(&r->d.cfg)), best_epoch, r->wdir);
    return s;
}

enum deft_status dnv2_train(const struct deft_task_args *a) {
    if (a->dry_run) return dnv2_experiment_dry_run(a, "train");
    struct run r = {.a = a, .out = a->out ? a->out : stdout};
    bool dir_opened = false;
    enum deft_status s = dnv2_setup_load(&r.d, a);
    if (!s) s = check_trainable(&r.d);
    if (!s) s = deft_run_dir_open(&(struct deft_run_dir_opts){
                                      .network = "detectnet_v2",
                                      .requested = a->results_dir && a->results_dir[0] ? a->results_dir
                                                                                       : r.d.cfg.results_dir,
                                      .resume = a->resume, .resume_from = a->resume_from, .overwrite = a->overwrite,
                                      .out = r.out},
                                  r.dir, sizeof r.dir);
    dir_opened = !s;
    if (!s) s = train_run(&r);
    run_free(&r);
    deft_run_log_close(r.log, s);
    if (dir_opened) deft_run_dir_unlock(r.dir);
    if (s && dir_opened) deft_run_dir_close(r.dir);
    return s;
}

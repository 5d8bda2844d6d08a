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
#include "tasks/common/det_detect_all.h"
#include "tasks/common/det_train_loop.h"
#include "tasks/common/pruned_graph.h"
#include "tasks/detectnet_v2/dnv2_task.h"

enum { TERM_COV = 0, TERM_BBOX, N_TERMS };
static const char *const term_names[N_TERMS] = {"loss_cov", "loss_bbox"};

struct run {
    struct det_train dt;
    struct dnv2_setup d;
    const struct deft_dnv2_lr_anneal *lr;
    int64_t lr_total;
    int batches_since_reweight;
    struct dnv2_cost_state cost;
    struct dnv2_targets tg;           /* targets of a whole batch, back to back */
    double *mean;                     /* [K][DNV2_N_OBJ] of the last batch */
    struct deft_box *px;              /* one image's boxes in network pixels */
    int px_cap;
    float *outs[2];                   /* validation outputs: cov, bbox */
    struct dnv2_eval_class *ecls;
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
    if (n > r->dt.bs) return deft_set_error(DEFT_ERR_SHAPE, "batch of %d over the %d the targets hold", n, r->dt.bs);
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
    size_t plane = (size_t)r->dt.bs * (size_t)r->d.n_classes * (size_t)r->d.grid.gh * (size_t)r->d.grid.gw;
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
    enum deft_status s = dnv2_read_split(&r->d, false, &r->dt.train_ds);
    if (s) return s;
    const struct deft_det_read_stats *st = &r->dt.train_ds.stats;
    fprintf(r->dt.out, "train: %d images, %lld boxes (%lld clipped, %lld dropped as tiny, %lld of unmapped classes)\n",
            r->dt.train_ds.n, (long long)st->boxes, (long long)st->clipped, (long long)st->dropped_small,
            (long long)st->unmapped);
    if (r->dt.train_ds.n < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the training data has no images", c->source_path);
    if ((s = dnv2_read_split(&r->d, true, &r->dt.val_ds))) return s;
    r->dt.have_val = r->dt.val_ds.n > 0;
    if (r->dt.have_val)
        fprintf(r->dt.out, "val:   %d images, %lld boxes\n", r->dt.val_ds.n, (long long)r->dt.val_ds.stats.boxes);
    struct deft_det_transform tt, vt;
    dnv2_transform(&r->d, true, &tt);
    dnv2_transform(&r->d, false, &vt);
    return det_train_loaders(&r->dt, c->training_config.batch_size_per_gpu, 2, (uint64_t)c->random_seed, &tt, &vt);
}

static enum deft_status build_from_spec(struct run *r, struct deft_graph **g) {
    const struct deft_dnv2_model_config *mc = &r->d.cfg.model_config;
    int fb[64], nfb = 0;
    for (int i = 0; i < mc->n_freeze_blocks && nfb < 64; i++) fb[nfb++] = (int)mc->freeze_blocks[i];
    struct deft_dnv2_model_opts o = {.arch = mc->arch, .num_layers = mc->num_layers, .num_classes = r->d.n_classes,
                                     .height = r->d.net_h, .width = r->d.net_w, .batch = r->dt.bs,
                                     .freeze_bn = mc->freeze_bn, .freeze_blocks = nfb ? fb : NULL,
                                     .n_freeze_blocks = nfb, .freeze_backbone = mc->freeze_pretrained_layers,
                                     .training = true};
    enum deft_status s = deft_dnv2_model_build(&o, g);
    return s ? deft_wrap_error(s, "%s: model_config", r->d.cfg.source_path) : DEFT_OK;
}

static enum deft_status make_trainer(struct run *r) {
    const struct deft_dnv2_config *c = &r->d.cfg;
    const struct deft_dnv2_training_config *tc = &c->training_config;
    struct deft_graph *g = NULL;
    enum deft_status s = c->model_config.load_graph
                             ? det_pruned_graph(c->model_config.pretrained_model_file, c->source_path,
                                                "model_config.pretrained_model_file (load_graph)", r->dt.out, &g)
                             : build_from_spec(r, &g);
    if (s) {
        deft_graph_free(g);
        return s;
    }
    det_train_arch(&r->dt, g);
    static const char *const excl[] = {"output_cov", "output_bbox", NULL};
    struct deft_qat_opts qo = {.exclude = excl};
    struct deft_trainer_opts to = {0};
    if (tc->enable_qat) {
        to.qat = &qo; /* the shared trainer rewrites the graph, as for classification and yolo_v4 */
        fprintf(r->dt.out, "quantization-aware training: int8 weights per output channel, activations per tensor; "
                "output_cov and output_bbox kept float\n");
    }
    det_train_trainer_opts(&r->dt, r->d.net_h, r->d.net_w, c->model_config.freeze_bn, (uint64_t)c->random_seed, &to);
    optim_from_config(tc, &to.optim);
    r->dt.epochs = tc->num_epochs;
    r->lr = &tc->learning_rate.soft_start_annealing_schedule;
    r->lr_total = (int64_t)r->dt.spe * r->dt.epochs;
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = r};
    return det_train_create(&r->dt, &to, g, "detectnet_v2", dnv2_meta_json(&r->d), r->d.cfg.class_names,
                            r->d.n_classes);
}

/* Auto-weighting at the end of each epoch (here: before the next one starts). */
static void epoch_start(void *user) {
    struct run *r = user;
    if (r->batches_since_reweight > 0) {
        dnv2_cost_epoch_end(&r->cost, &r->d.cost);
        r->batches_since_reweight = 0;
    }
}

/* The validation pass's hooks: the network through the trainer, the cost summed per batch. */
struct val_pass { struct run *r; double lsum; int seen; };
static enum deft_status val_run(void *ctx, const struct deft_det_batch *b) {
    struct val_pass *v = ctx;
    struct run *r = v->r;
    enum deft_status s = deft_trainer_predict_outputs(r->dt.t, b->images, b->n, r->outs);
    if (s) return s;
    double l;
    if (!batch_cost(r, b->n, b, r->outs[0], r->outs[1], NULL, NULL, &l, NULL)) v->lsum += l * b->n, v->seen += b->n;
    return DEFT_OK;
}
static enum deft_status val_detect(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n) {
    const struct run *r = ((const struct val_pass *)ctx)->r;
    return dnv2_detect_image(&r->d.grid, &r->d.cluster, r->d.n_classes, r->outs[0], r->outs[1], i, &b->lb[i], boxes,
                             n);
}

static enum deft_status run_validation(struct run *r, struct det_dets *d, double *vloss) {
    struct val_pass v = {r, 0, 0};
    struct det_detector net = {.ctx = &v, .run = val_run, .detect = val_detect};
    enum deft_status s = det_detect_loader(r->dt.val_ld, &r->dt.val_ds, &net, NULL, d, NULL);
    *vloss = v.seen ? v.lsum / v.seen : NAN;
    return s;
}

static bool integrate(const struct deft_dnv2_config *c) {
    return c->evaluation_config.average_precision_mode == DEFT_DNV2_AP_INTEGRATE;
}

static enum deft_status validate(void *user, int epoch, double *score) {
    struct run *r = user;
    const struct deft_dnv2_evaluation_config *e = &r->d.cfg.evaluation_config;
    *score = NAN;
    r->dt.val_m[0].value = r->dt.val_m[1].value = NAN;
    if (epoch + 1 < e->first_validation_epoch && epoch + 1 < r->dt.epochs) /* TAO's first_validation_epoch */
        return DEFT_OK;
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    double vl = NAN;
    enum deft_status s = run_validation(r, &d, &vl);
    if (!s) s = dnv2_metric(&r->dt.val_ds, &d, r->ecls, integrate(&r->d.cfg), 0, &m);
    if (!s) {
        r->dt.val_m[0].value = vl;
        r->dt.val_m[1].value = *score = m->map;
        det_train_print_ap(&r->dt, integrate(&r->d.cfg) ? "TAO DetectNet_v2 INTEGRATE" : "TAO DetectNet_v2 SAMPLE",
                           m, r->d.cfg.class_names);
        fprintf(r->dt.out, "\n");
    }
    deft_det_metrics_free(m);
    det_dets_free(&d);
    return s;
}

static void print_spec(const void *cfg, FILE *f) { deft_dnv2_config_print(cfg, f); }

static void run_free(struct run *r) {
    det_train_release(&r->dt);
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
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "data-parallel training (mpirun, --gpus N) of DetectNet_v2 is not "
                              "finished (its cost auto-weighting is each process's own): train it in one process");
    const struct deft_dnv2_model_config *mc = &c->model_config;
    if (mc->load_graph && !mc->pretrained_model_file[0])
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.load_graph needs pretrained_model_file (the "
                              "pruned model)", c->source_path);
    return DEFT_OK;
}

static enum deft_status start_run(struct run *r) {
    const struct deft_task_args *a = r->dt.a;
    enum deft_status s;
    if ((s = open_data(r)) || (s = alloc_targets(r)) || (s = make_trainer(r)) ||
        (s = dnv2_eval_classes(&r->d.cfg, &r->ecls)))
        return s;
    int64_t start;
    s = det_train_weights(&r->dt, a->resume_from, r->d.cfg.model_config.pretrained_model_file, NULL, &start);
    if (s && !a->resume && !a->resume_from) /* the pretrained model's */
        return deft_wrap_error(s, "%s: model_config.pretrained_model_file", r->d.cfg.source_path);
    return s ? s : det_train_record(&r->dt, print_spec, &r->d.cfg);
}

static enum deft_status train_run(struct run *r) {
    enum deft_status s = start_run(r);
    if (s) return s;
    int64_t start = deft_trainer_steps(r->dt.t);
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r->dt.t), &gs);
    fprintf(r->dt.out, "training detectnet_v2-%s (%lld params, %.2f GFLOPs/image) on %d images of %d class%s, %d epoch%s "
            "x %d step%s of %d at %dx%d (grid %dx%d), %d threads -> %s\n", r->dt.arch, (long long)gs.params,
            (double)gs.flops / 1e9 / r->dt.bs, r->dt.train_ds.n, r->d.n_classes, r->d.n_classes == 1 ? "" : "es",
            r->dt.epochs, r->dt.epochs == 1 ? "" : "s", r->dt.spe, r->dt.spe == 1 ? "" : "s", r->dt.bs, r->d.net_w, r->d.net_h,
            r->d.grid.gw, r->d.grid.gh, deft_get_threads(), r->dt.dir);
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = r};
    const struct deft_dnv2_config *c = &r->d.cfg;
    return det_train_run_loop(&r->dt, start, &(struct det_train_loop_opts){
        .lr = &lr, .val_every = c->evaluation_config.validation_period_during_training,
        .checkpoint_interval = c->training_config.checkpoint_interval,
        .ap = dnv2_metric_describe(integrate(c))});
}

static const struct det_train_net dnv2_net = {
    .loss_terms = term_names, .n_loss_terms = N_TERMS, .val_metrics = {{"loss", "val loss"}, {"mAP", "val mAP"}},
    .host_loss = host_loss, .epoch_start = epoch_start, .validate = validate, .no_val = "no validation figure",
    .resume_note = " (the auto-weighting restarts from the initial weights)"};

enum deft_status dnv2_train(const struct deft_task_args *a) {
    if (a->dry_run) return dnv2_experiment_dry_run(a, "train");
    struct run r = {0};
    det_train_init(&r.dt, a, &dnv2_net, "detectnet_v2", &r);
    enum deft_status s = dnv2_setup_load(&r.d, a);
    if (!s) s = check_trainable(&r.d);
    if (!s) s = det_train_open_dir(&r.dt, r.d.cfg.results_dir, a->resume_from);
    if (!s) s = train_run(&r);
    run_free(&r);
    det_train_finish(&r.dt, s);
    return s;
}

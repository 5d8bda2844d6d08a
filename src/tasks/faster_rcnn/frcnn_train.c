/* frcnn_train.c - `deft faster_rcnn train`: the spec's data through the
 * detection loader, the Faster R-CNN graph, the proposal layer and the RoI
 * sampling as the trainer's mid-forward host step, TAO's four losses as its
 * host loss, and the shared training loop with validation mAP. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/faster_rcnn_model.h"
#include "deft/loop.h"
#include "deft/report.h"
#include "deft/trainer.h"
#include "tasks/common/pruned_graph.h"
#include "tasks/faster_rcnn/frcnn_run.h"

enum { T_RPN_CLASS = 0, T_RPN_REGR, T_CLS_CLASS, T_CLS_REGR, N_TERMS };
static const char *const term_names[N_TERMS] = {"loss_rpn_class", "loss_rpn_regr", "loss_cls_class", "loss_cls_regr"};

struct run {
    const struct deft_task_args *a;
    FILE *out;
    struct frcnn_setup f;
    struct deft_det_dataset train_ds, val_ds;
    bool have_val;
    struct deft_det_loader *train_ld;
    struct deft_det_batch batch;
    struct deft_trainer *t;
    struct deft_events *ev;
    int bs, spe, epochs;
    int64_t total_steps, host_calls;
    char dir[2048], wdir[2100], arch[64];
    struct deft_run_log *log;
    struct frcnn_targets tg;
    float *rpn_out[2], *props, *rois5, *rois4;
    struct frcnn_model val;
    bool val_ready;
    struct deft_loop_metric val_m[3];
};

/* TAO's soft start: start_lr to base_lr exponentially over soft_start, then
 * base_lr divided by annealing_divider at each annealing point; or step. */
static double lr_at(const void *ctx, int64_t step) {
    const struct run *r = ctx;
    const struct deft_frcnn_lr *l = &r->f.cfg.training_config.learning_rate;
    double p = r->total_steps > 0 ? (double)step / (double)r->total_steps : 1;
    if (l->has_step) {
        const struct deft_frcnn_step_lr *s = &l->step;
        double k = s->step_size > 0 ? floor(p / s->step_size) : 0;
        return s->base_lr * pow(s->gamma > 0 ? s->gamma : 1, k);
    }
    const struct deft_frcnn_soft_start *s = &l->soft_start;
    if (s->soft_start > 0 && p < s->soft_start && s->start_lr > 0)
        return s->start_lr * pow(s->base_lr / s->start_lr, p / s->soft_start);
    double lr = s->base_lr;
    for (int i = 0; i < s->n_annealing_points; i++)
        if (p >= s->annealing_points[i]) lr /= s->annealing_divider > 0 ? s->annealing_divider : 1;
    return lr;
}

static void optim_from_config(const struct deft_frcnn_training_config *tc, struct deft_optim_config *o) {
    memset(o, 0, sizeof *o);
    const struct deft_frcnn_optimizer *oc = &tc->optimizer;
    if (oc->has_sgd) {
        o->kind = DEFT_OPTIM_SGD;
        o->momentum = (float)oc->sgd.momentum;
        o->nesterov = oc->sgd.nesterov;
    } else if (oc->has_rmsprop) {
        o->kind = DEFT_OPTIM_RMSPROP;
        o->rho = 0.9f;
        o->eps = 1e-7f;
    } else {
        o->kind = DEFT_OPTIM_ADAM;
        o->beta1 = (float)(oc->has_adam && oc->adam.beta_1 > 0 ? oc->adam.beta_1 : 0.9);
        o->beta2 = (float)(oc->has_adam && oc->adam.beta_2 > 0 ? oc->adam.beta_2 : 0.999);
        o->eps = (float)(oc->has_adam && oc->adam.epsilon > 0 ? oc->adam.epsilon : 1e-7);
    }
    /* Keras kernel regularizers: L2 w*sum(k^2) -> gradient 2*w*k; L1 w*sum|k| -> w*sign(k) */
    if (tc->regularizer.type == DEFT_FRCNN_L2) o->weight_decay = (float)(2 * tc->regularizer.weight);
    if (tc->regularizer.type == DEFT_FRCNN_L1) o->l1 = (float)tc->regularizer.weight;
}

/* Ground truth of image i of the batch in network pixels. */
static int batch_gt(const struct run *r, const struct deft_det_batch *b, int i, float *gt, int *cls, int cap) {
    int n = 0;
    for (int k = 0; i < b->n && k < b->n_boxes[i] && n < cap; k++) {
        const struct deft_box *bx = &b->boxes[b->box_start[i] + k];
        float g[4] = {bx->x1 * r->f.net_w, bx->y1 * r->f.net_h, bx->x2 * r->f.net_w, bx->y2 * r->f.net_h};
        if (g[2] - g[0] < 1 || g[3] - g[1] < 1) continue;
        memcpy(gt + 4 * n, g, sizeof g);
        cls[n++] = bx->cls;
    }
    return n;
}

/* The mid-forward host step: proposals from the RPN outputs, RPN targets and
 * RoI sampling against the batch's boxes, the RoIs into the graph. */
static enum deft_status mid_forward(void *user, struct deft_runtime *rt, const struct deft_graph *g,
                                    const void *targets) {
    struct run *r = user;
    const struct deft_det_batch *b = targets;
    const struct frcnn_params *p = &r->f.p;
    size_t hw = (size_t)p->fmap_h * p->fmap_w, A = (size_t)p->n_cell_anchors;
    const char *roles[2] = {DEFT_FRCNN_ROLE_RPN_CLS, DEFT_FRCNN_ROLE_RPN_REGR};
    enum deft_status s = DEFT_OK;
    for (int i = 0; i < 2 && !s; i++)
        s = deft_runtime_read(rt, deft_graph_find_role(g, roles[i]), r->rpn_out[i], (size_t)r->bs * (i ? 4 : 1) * A * hw);
    enum { CAP = 1024 };
    float gt[CAP * 4];
    int cls[CAP];
    uint64_t seed = (uint64_t)r->f.cfg.random_seed, stream = (uint64_t)r->host_calls++ * 1024;
    int R = p->rois_per_image;
    for (int i = 0; i < r->bs && !s; i++) {
        int ng = batch_gt(r, b, i, gt, cls, CAP), np = 0;
        s = frcnn_rpn_targets(p, gt, ng, seed, stream + (uint64_t)i, r->tg.rpn_label + (size_t)i * p->n_anchors,
                              r->tg.rpn_deltas + (size_t)i * p->n_anchors * 4);
        if (!s) s = frcnn_proposals(p, &r->f.train_prop, r->rpn_out[0] + i * A * hw, r->rpn_out[1] + i * 4 * A * hw,
                                    r->props, NULL, &np);
        if (!s) s = frcnn_sample_rois(p, r->props, np, gt, cls, ng, seed, stream + 512 + (uint64_t)i,
                                      r->rois4 + (size_t)i * R * 4, r->tg.roi_label + (size_t)i * R,
                                      r->tg.roi_deltas + (size_t)i * R * 4);
        for (int k = 0; !s && k < R; k++) {
            float *row = r->rois5 + ((size_t)i * R + k) * 5;
            row[0] = (float)i;
            memcpy(row + 1, r->rois4 + ((size_t)i * R + k) * 4, 4 * sizeof(float));
        }
    }
    if (!s) s = deft_runtime_set_input(rt, deft_graph_find_role(g, DEFT_FRCNN_ROLE_ROIS), r->rois5, (size_t)r->bs * R * 5);
    return s;
}

static enum deft_status host_loss(void *user, int n_outputs, const float *const *outputs,
                                  const struct deft_shape *shapes, const void *targets, float *const *grads,
                                  double *loss, double *terms) {
    struct run *r = user;
    (void)shapes, (void)targets;
    if (n_outputs != 4) return deft_set_error(DEFT_ERR_SHAPE, "the Faster R-CNN graph has %d outputs, not 4", n_outputs);
    struct frcnn_loss_terms t;
    enum deft_status s = frcnn_loss(&r->f.p, &r->tg, outputs, grads, &t);
    if (s) return s;
    *loss = t.total;
    terms[T_RPN_CLASS] = t.rpn_class, terms[T_RPN_REGR] = t.rpn_regr;
    terms[T_CLS_CLASS] = t.cls_class, terms[T_CLS_REGR] = t.cls_regr;
    return DEFT_OK;
}

static enum deft_status open_data(struct run *r) {
    enum deft_status s = frcnn_read_split(&r->f, false, &r->train_ds);
    if (s) return s;
    fprintf(r->out, "train: %d images, %lld boxes\n", r->train_ds.n, (long long)r->train_ds.stats.boxes);
    if (r->train_ds.n < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the training data has no images", r->f.cfg.source_path);
    r->have_val = r->f.cfg.dataset_config.has_validation_data_source;
    if (r->have_val) {
        if ((s = frcnn_read_split(&r->f, true, &r->val_ds))) return s;
        fprintf(r->out, "val:   %d images, %lld boxes\n", r->val_ds.n, (long long)r->val_ds.stats.boxes);
    } else {
        fprintf(r->out, "no validation_data_source: no validation mAP (validation_fold needs TAO's TFRecords)\n");
    }
    r->bs = r->f.cfg.training_config.batch_size_per_gpu > 0 ? r->f.cfg.training_config.batch_size_per_gpu : 1;
    if (r->bs > r->train_ds.n) r->bs = r->train_ds.n;
    struct deft_det_loader_opts lo;
    deft_det_loader_opts_defaults(&lo);
    lo.batch_size = r->bs;
    lo.num_threads = 2;
    lo.shuffle = true;
    lo.drop_last = true;
    lo.strict = r->a->fatal_corrupt;
    lo.seed = (uint64_t)r->f.cfg.random_seed;
    frcnn_transform(&r->f, true, &lo.transform);
    if ((s = deft_det_loader_create(&lo, &r->train_ds, &r->train_ld))) return s;
    r->spe = deft_det_loader_num_batches(r->train_ld);
    return DEFT_OK;
}

static enum deft_status alloc_targets(struct run *r) {
    const struct frcnn_params *p = &r->f.p;
    size_t na = (size_t)p->n_anchors, R = (size_t)p->rois_per_image, B = (size_t)r->bs;
    size_t hw = (size_t)p->fmap_h * p->fmap_w, A = (size_t)p->n_cell_anchors;
    r->tg.batch = r->bs;
    r->tg.rpn_label = deft_malloc(B * na);
    r->tg.rpn_deltas = deft_malloc(B * na * 4 * sizeof(float));
    r->tg.roi_label = deft_malloc(B * R * sizeof(int));
    r->tg.roi_deltas = deft_malloc(B * R * 4 * sizeof(float));
    r->rpn_out[0] = deft_malloc(B * A * hw * sizeof(float));
    r->rpn_out[1] = deft_malloc(B * 4 * A * hw * sizeof(float));
    int mb = r->f.train_prop.max_boxes;
    r->props = deft_malloc((size_t)(mb > 0 ? mb : 1) * 4 * sizeof(float));
    r->rois5 = deft_malloc(B * R * 5 * sizeof(float));
    r->rois4 = deft_malloc(B * R * 4 * sizeof(float));
    if (!r->tg.rpn_label || !r->tg.rpn_deltas || !r->tg.roi_label || !r->tg.roi_deltas || !r->rpn_out[0] ||
        !r->rpn_out[1] || !r->props || !r->rois5 || !r->rois4)
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory for the Faster R-CNN targets");
    return DEFT_OK;
}

/* training_config.retrain_pruned_model: the pruned file's graph, in training mode, its
 * inputs at this run's batch and RoIs per image. */
static enum deft_status pruned_graph(struct run *r, struct deft_graph **g) {
    enum deft_status s = det_pruned_graph(r->f.cfg.training_config.retrain_pruned_model, r->f.cfg.source_path,
                                          "training_config.retrain_pruned_model", r->out, g);
    if (s) return s;
    deft_graph_set_training(*g, true);
    int img = deft_graph_find_role(*g, DEFT_ROLE_IMAGE), rois = deft_graph_find_role(*g, DEFT_FRCNN_ROLE_ROIS);
    if (img < 0 || rois < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: training_config.retrain_pruned_model: not a Faster R-CNN model "
                              "(no image or rois input)", r->f.cfg.source_path);
    struct deft_shape in = deft_shape4(r->bs, 3, r->f.net_h, r->f.net_w);
    struct deft_shape rs = {.ndim = 2, .d = {(int64_t)r->bs * r->f.p.rois_per_image, 5}};
    if (!(s = deft_graph_reshape_input(*g, img, &in))) s = deft_graph_reshape_input(*g, rois, &rs);
    return s;
}

static enum deft_status build_graph(struct run *r, struct deft_graph **g) {
    if (r->f.cfg.training_config.retrain_pruned_model[0]) {
        enum deft_status s = pruned_graph(r, g);
        if (s) return s;
        const char *bb = deft_graph_get_meta(*g, "backbone");
        snprintf(r->arch, sizeof r->arch, "%.*s", bb && strlen(bb) > 2 ? (int)strlen(bb) - 2 : 7,
                 bb && strlen(bb) > 2 ? bb + 1 : "unknown");
        return DEFT_OK;
    }
    const struct deft_frcnn_model_config *mc = &r->f.cfg.model_config;
    int fb[64], nfb = 0;
    for (int i = 0; i < mc->n_freeze_blocks && nfb < 64; i++) fb[nfb++] = (int)mc->freeze_blocks[i];
    struct deft_frcnn_model_opts o = {.arch = r->f.cfg.backbone, .n_layers = r->f.cfg.nlayers,
                                      .num_classes = r->f.n_classes, .n_anchors = r->f.p.n_cell_anchors,
                                      .height = r->f.net_h, .width = r->f.net_w, .batch = r->bs,
                                      .rois_per_image = r->f.p.rois_per_image,
                                      .pool_size = mc->roi_pooling_config.pool_size > 0 ? mc->roi_pooling_config.pool_size : 7,
                                      .pool_size_2x = mc->roi_pooling_config.pool_size_2x, .training = true,
                                      .freeze_bn = mc->freeze_bn, .freeze_blocks = nfb ? fb : NULL, .n_freeze_blocks = nfb};
    enum deft_status s = deft_frcnn_model_build(&o, g);
    if (s) return deft_wrap_error(s, "%s: model_config", r->f.cfg.source_path);
    const char *bb = deft_graph_get_meta(*g, "backbone");
    snprintf(r->arch, sizeof r->arch, "%.*s", bb && strlen(bb) > 2 ? (int)strlen(bb) - 2 : 7, bb && strlen(bb) > 2 ? bb + 1 : "unknown");
    return DEFT_OK;
}

static enum deft_status make_trainer(struct run *r) {
    struct deft_graph *g = NULL;
    enum deft_status s = build_graph(r, &g);
    if (!s) s = alloc_targets(r);
    if (s) {
        deft_graph_free(g);
        return s;
    }
    const struct deft_frcnn_config *c = &r->f.cfg;
    struct deft_trainer_opts to = {0};
    to.graph = g;
    to.model = (struct deft_model_opts){.batch = r->bs, .height = r->f.net_h, .width = r->f.net_w,
                                        .bn_mode = c->model_config.freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                        .training = true, .seed = (uint64_t)c->random_seed};
    optim_from_config(&c->training_config, &to.optim);
    r->epochs = c->training_config.num_epochs > 0 ? c->training_config.num_epochs : 1;
    r->total_steps = (int64_t)r->spe * r->epochs;
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = r};
    to.backend = r->a->backend;
    to.device_index = r->a->gpu_index;
    to.amp = r->a->amp;
    to.seed = (uint64_t)c->random_seed;
    to.host_loss = host_loss;
    to.host_loss_user = r;
    to.mid_forward = mid_forward;
    to.mid_forward_user = r;
    to.mid_input_role = DEFT_FRCNN_ROLE_ROIS;
    s = deft_trainer_create(&to, &r->t);
    deft_graph_free(g);
    if (s) return s;
    char *meta = frcnn_meta_json(&r->f);
    char *names = det_class_names_json(c->dataset_config.class_names, r->f.n_classes);
    if (!meta || !names) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = deft_trainer_set_meta(r->t, "faster_rcnn", meta);
    if (!s) s = deft_trainer_set_meta(r->t, "class_names", names);
    if (!s) s = deft_trainer_set_meta(r->t, "network", "\"faster_rcnn\"");
    deft_free(meta);
    deft_free(names);
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

static enum deft_status hook_validate(void *ctx, int epoch, double *score) {
    struct run *r = ctx;
    const struct deft_frcnn_evaluation_config *ec = &r->f.cfg.evaluation_config;
    (void)epoch;
    enum deft_status s = DEFT_OK;
    if (!r->val_ready) {
        int vb = ec->batch_size > 0 ? ec->batch_size : 1;
        s = frcnn_model_from_graph(&r->val, deft_trainer_model_graph(r->t), &r->f, vb > 8 ? 8 : vb,
                                   r->f.eval_prop.max_boxes, r->a->backend);
        if (s) return s;
        r->val_ready = true;
    }
    if ((s = frcnn_model_sync(&r->val, deft_trainer_runtime(r->t)))) return s;
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    struct frcnn_nms nms = {(float)ec->object_confidence_thres, (float)ec->classifier_nms_overlap_threshold,
                            ec->classifier_nms_max_boxes > 0 ? ec->classifier_nms_max_boxes : 100};
    double map = 0;
    s = frcnn_detect_all(&r->val, &r->val_ds, &r->f.eval_prop, &nms, 2, NULL, &d, NULL);
    if (!s) s = frcnn_score(&r->f, &r->val_ds, &d, frcnn_ap_mode(&r->f), nms.conf, &map, &m);
    if (!s) {
        double recall = r->val.recall_gt ? (double)r->val.recall_hits / (double)r->val.recall_gt : NAN;
        r->val_m[0].value = *score = map;
        r->val_m[1].value = recall;
        fprintf(r->out, "  AP (%s):", deft_ap_mode_describe(frcnn_ap_mode(&r->f)));
        for (int k = 0; k < m->n_classes; k++)
            fprintf(r->out, " %s %.4f", r->f.cfg.dataset_config.class_names[k], m->classes[k].ap);
        fprintf(r->out, "; RPN recall@0.5 %.4f\n", recall);
    }
    deft_det_metrics_free(m);
    det_dets_free(&d);
    return s;
}

static enum deft_status train_loop(struct run *r, int64_t start, double *best, int *best_epoch) {
    r->val_m[0] = (struct deft_loop_metric){"mAP", "val mAP", NAN};
    r->val_m[1] = (struct deft_loop_metric){"rpn_recall", "RPN recall", NAN};
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = r};
    const struct deft_frcnn_config *c = &r->f.cfg;
    int ve = c->evaluation_config.validation_period_during_training;
    struct deft_loop lp = {
        .trainer = r->t, .network = "faster_rcnn", .arch = r->arch, .dir = r->dir, .epochs = r->epochs,
        .steps_per_epoch = r->spe, .batch = r->bs, .lr = &lr, .val_every = ve > 0 ? ve : 1,
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

static void print_spec(const void *cfg, FILE *f) { deft_frcnn_config_print(cfg, f); }

static void run_free(struct run *r) {
    if (r->ev && deft_events_close(r->ev)) deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
    if (r->val_ready) frcnn_model_close(&r->val);
    deft_trainer_free(r->t);
    deft_det_loader_free(r->train_ld);
    deft_det_dataset_free(&r->train_ds);
    deft_det_dataset_free(&r->val_ds);
    deft_free(r->tg.rpn_label), deft_free(r->tg.rpn_deltas), deft_free(r->tg.roi_label), deft_free(r->tg.roi_deltas);
    deft_free(r->rpn_out[0]), deft_free(r->rpn_out[1]), deft_free(r->props), deft_free(r->rois5), deft_free(r->rois4);
    frcnn_setup_free(&r->f);
}

static enum deft_status start_weights(struct run *r, int64_t *start) {
    const struct deft_frcnn_training_config *tc = &r->f.cfg.training_config;
    char ck[2400];
    snprintf(ck, sizeof ck, "%s/latest.safetensors", r->wdir);
    const char *from = r->a->resume ? ck : r->a->resume_from ? r->a->resume_from : tc->resume_from_model[0] ? tc->resume_from_model : NULL;
    enum deft_status s = DEFT_OK;
    *start = 0;
    if (from) {
        if ((s = deft_trainer_resume(r->t, from))) return s;
        *start = deft_trainer_steps(r->t);
        fprintf(r->out, "resumed from %s at step %lld\n", from, (long long)*start);
    } else if (tc->pretrained_weights[0]) {
        s = deft_trainer_load_pretrained(r->t, tc->pretrained_weights, r->out);
    } else if (tc->retrain_pruned_model[0]) {
        s = deft_trainer_load_pretrained(r->t, tc->retrain_pruned_model, r->out);
    }
    return s;
}

enum deft_status frcnn_train_run(const struct deft_task_args *a) {
    struct run r = {.a = a, .out = a->out ? a->out : stdout};
    double best = -1;
    int best_epoch = 0;
    bool dir_opened = false;
    enum deft_status s = frcnn_setup_load(&r.f, a);
    if (s) goto done;
    if (r.f.cfg.training_config.enable_qat) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: training_config.enable_qat: not finished yet for faster_rcnn "
                           "(issue 20)", r.f.cfg.source_path);
        goto done;
    }
    if ((s = deft_run_dir_open(&(struct deft_run_dir_opts){
             .network = "faster_rcnn", .requested = a->results_dir && a->results_dir[0] ? a->results_dir : r.f.cfg.results_dir,
             .resume = a->resume, .resume_from = a->resume_from, .overwrite = a->overwrite, .out = r.out},
             r.dir, sizeof r.dir)))
        goto done;
    dir_opened = true;
    if ((s = deft_run_log_open(r.dir, a->log_file, r.out, &r.log))) goto done;
    r.out = deft_run_log_stream(r.log);
    snprintf(r.wdir, sizeof r.wdir, "%s/weights", r.dir);
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = open_data(&r)) || (s = make_trainer(&r))) goto done;
    int64_t start = 0;
    if ((s = start_weights(&r, &start))) goto done;
    if ((s = deft_run_dir_record_spec(r.dir, a->argc, a->argv, print_spec, &r.f.cfg))) goto done;
    if ((s = deft_events_open(r.dir, &r.ev))) goto done;
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r.t), &gs);
    fprintf(r.out, "training faster_rcnn-%s (%lld params) on %d images of %d classes, %d epochs x %d steps of %d at "
            "%dx%d, %ld anchors, %d RoIs per image, %d threads -> %s\n", r.arch, (long long)gs.params, r.train_ds.n,
            r.f.n_classes, r.epochs, r.spe, r.bs, r.f.net_w, r.f.net_h, r.f.p.n_anchors, r.f.p.rois_per_image,
            deft_get_threads(), r.dir);
    s = train_loop(&r, start, &best, &best_epoch);
    if (!s && best < 0) fprintf(r.out, "done (no validation set); weights in %s\n", r.wdir);
    else if (!s) fprintf(r.out, "done: best val mAP %.4f (%s, epoch %d, best.safetensors); weights in %s\n", best,
                         deft_ap_mode_describe(frcnn_ap_mode(&r.f)), best_epoch, r.wdir);
done:
    run_free(&r);
    deft_run_log_close(r.log, s);
    if (dir_opened) deft_run_dir_unlock(r.dir);
    if (s && dir_opened) deft_run_dir_close(r.dir);
    return s;
}

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
#include "tasks/common/det_train_loop.h"
#include "tasks/common/pruned_graph.h"
#include "tasks/faster_rcnn/frcnn_run.h"

enum { T_RPN_CLASS = 0, T_RPN_REGR, T_CLS_CLASS, T_CLS_REGR, N_TERMS };
static const char *const term_names[N_TERMS] = {"loss_rpn_class", "loss_rpn_regr", "loss_cls_class", "loss_cls_regr"};

struct run {
    struct det_train dt;
    struct frcnn_setup f;
    int64_t total_steps, host_calls;
    struct frcnn_targets tg;
    float *rpn_out[2], *props, *rois5, *rois4;
    struct frcnn_model val;
    bool val_ready;
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
        s = deft_runtime_read(rt, deft_graph_find_role(g, roles[i]), r->rpn_out[i],
                              (size_t)r->dt.bs * (i ? 4 : 1) * A * hw);
    enum { CAP = 1024 };
    float gt[CAP * 4];
    int cls[CAP];
    uint64_t seed = (uint64_t)r->f.cfg.random_seed, stream = (uint64_t)r->host_calls++ * 1024;
    int R = p->rois_per_image;
    for (int i = 0; i < r->dt.bs && !s; i++) {
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
    if (!s)
        s = deft_runtime_set_input(rt, deft_graph_find_role(g, DEFT_FRCNN_ROLE_ROIS), r->rois5, (size_t)r->dt.bs * R * 5);
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
    enum deft_status s = frcnn_read_split(&r->f, false, &r->dt.train_ds);
    if (s) return s;
    fprintf(r->dt.out, "train: %d images, %lld boxes\n", r->dt.train_ds.n, (long long)r->dt.train_ds.stats.boxes);
    if (r->dt.train_ds.n < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the training data has no images", r->f.cfg.source_path);
    r->dt.have_val = r->f.cfg.dataset_config.has_validation_data_source;
    if (r->dt.have_val) {
        if ((s = frcnn_read_split(&r->f, true, &r->dt.val_ds))) return s;
        fprintf(r->dt.out, "val:   %d images, %lld boxes\n", r->dt.val_ds.n, (long long)r->dt.val_ds.stats.boxes);
    } else {
        fprintf(r->dt.out, "no validation_data_source: no validation mAP (validation_fold needs TAO's TFRecords)\n");
    }
    int bs = r->f.cfg.training_config.batch_size_per_gpu;
    struct deft_det_transform tt;
    frcnn_transform(&r->f, true, &tt); /* validation runs the evaluation's own path (frcnn_detect_all) */
    return det_train_loaders(&r->dt, bs > 0 ? bs : 1, 2, (uint64_t)r->f.cfg.random_seed, &tt, NULL);
}

static enum deft_status alloc_targets(struct run *r) {
    const struct frcnn_params *p = &r->f.p;
    size_t na = (size_t)p->n_anchors, R = (size_t)p->rois_per_image, B = (size_t)r->dt.bs;
    size_t hw = (size_t)p->fmap_h * p->fmap_w, A = (size_t)p->n_cell_anchors;
    r->tg.batch = r->dt.bs;
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
                                          "training_config.retrain_pruned_model", r->dt.out, g);
    if (s) return s;
    deft_graph_set_training(*g, true);
    int img = deft_graph_find_role(*g, DEFT_ROLE_IMAGE), rois = deft_graph_find_role(*g, DEFT_FRCNN_ROLE_ROIS);
    if (img < 0 || rois < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: training_config.retrain_pruned_model: not a Faster R-CNN model "
                              "(no image or rois input)", r->f.cfg.source_path);
    struct deft_shape in = deft_shape4(r->dt.bs, 3, r->f.net_h, r->f.net_w);
    struct deft_shape rs = {.ndim = 2, .d = {(int64_t)r->dt.bs * r->f.p.rois_per_image, 5}};
    if (!(s = deft_graph_reshape_input(*g, img, &in))) s = deft_graph_reshape_input(*g, rois, &rs);
    return s;
}

static enum deft_status build_graph(struct run *r, struct deft_graph **g) {
    if (r->f.cfg.training_config.retrain_pruned_model[0]) {
        enum deft_status s = pruned_graph(r, g);
        if (!s) det_train_arch(&r->dt, *g);
        return s;
    }
    const struct deft_frcnn_model_config *mc = &r->f.cfg.model_config;
    int fb[64], nfb = 0;
    for (int i = 0; i < mc->n_freeze_blocks && nfb < 64; i++) fb[nfb++] = (int)mc->freeze_blocks[i];
    struct deft_frcnn_model_opts o = {.arch = r->f.cfg.backbone, .n_layers = r->f.cfg.nlayers,
                                      .num_classes = r->f.n_classes, .n_anchors = r->f.p.n_cell_anchors,
                                      .height = r->f.net_h, .width = r->f.net_w, .batch = r->dt.bs,
                                      .rois_per_image = r->f.p.rois_per_image,
                                      .pool_size = mc->roi_pooling_config.pool_size > 0 ? mc->roi_pooling_config.pool_size : 7,
                                      .pool_size_2x = mc->roi_pooling_config.pool_size_2x, .training = true,
                                      .freeze_bn = mc->freeze_bn, .freeze_blocks = nfb ? fb : NULL, .n_freeze_blocks = nfb};
    enum deft_status s = deft_frcnn_model_build(&o, g);
    if (s) return deft_wrap_error(s, "%s: model_config", r->f.cfg.source_path);
    det_train_arch(&r->dt, *g);
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
    det_train_trainer_opts(&r->dt, r->f.net_h, r->f.net_w, c->model_config.freeze_bn, (uint64_t)c->random_seed, &to);
    optim_from_config(&c->training_config, &to.optim);
    r->dt.epochs = c->training_config.num_epochs > 0 ? c->training_config.num_epochs : 1;
    r->total_steps = (int64_t)r->dt.spe * r->dt.epochs;
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = r};
    return det_train_create(&r->dt, &to, g, "faster_rcnn", frcnn_meta_json(&r->f), c->dataset_config.class_names,
                            r->f.n_classes);
}

static enum deft_status validate(void *user, int epoch, double *score) {
    struct run *r = user;
    const struct deft_frcnn_evaluation_config *ec = &r->f.cfg.evaluation_config;
    (void)epoch;
    enum deft_status s = DEFT_OK;
    if (!r->val_ready) {
        int vb = ec->batch_size > 0 ? ec->batch_size : 1;
        s = frcnn_model_from_graph(&r->val, deft_trainer_model_graph(r->dt.t), &r->f, vb > 8 ? 8 : vb,
                                   r->f.eval_prop.max_boxes, r->dt.a->backend);
        if (s) return s;
        r->val_ready = true;
    }
    if ((s = frcnn_model_sync(&r->val, deft_trainer_runtime(r->dt.t)))) return s;
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    struct frcnn_nms nms = {(float)ec->object_confidence_thres, (float)ec->classifier_nms_overlap_threshold,
                            ec->classifier_nms_max_boxes > 0 ? ec->classifier_nms_max_boxes : 100};
    double map = 0;
    s = frcnn_detect_all(&r->val, &r->dt.val_ds, &r->f.eval_prop, &nms, 2, NULL, &d, NULL);
    if (!s) s = frcnn_score(&r->f, &r->dt.val_ds, &d, frcnn_ap_mode(&r->f), nms.conf, &map, &m);
    if (!s) {
        double recall = r->val.recall_gt ? (double)r->val.recall_hits / (double)r->val.recall_gt : NAN;
        r->dt.val_m[0].value = *score = map;
        r->dt.val_m[1].value = recall;
        det_train_print_ap(&r->dt, deft_ap_mode_describe(frcnn_ap_mode(&r->f)), m, r->f.cfg.dataset_config.class_names);
        fprintf(r->dt.out, "; RPN recall@0.5 %.4f\n", recall);
    }
    deft_det_metrics_free(m);
    det_dets_free(&d);
    return s;
}

static void print_spec(const void *cfg, FILE *f) { deft_frcnn_config_print(cfg, f); }

static void run_free(struct run *r) {
    if (r->val_ready) frcnn_model_close(&r->val);
    det_train_release(&r->dt);
    deft_free(r->tg.rpn_label), deft_free(r->tg.rpn_deltas), deft_free(r->tg.roi_label), deft_free(r->tg.roi_deltas);
    deft_free(r->rpn_out[0]), deft_free(r->rpn_out[1]), deft_free(r->props), deft_free(r->rois5), deft_free(r->rois4);
    frcnn_setup_free(&r->f);
}

static const struct det_train_net frcnn_net = {
    .loss_terms = term_names, .n_loss_terms = N_TERMS,
    .val_metrics = {{"mAP", "val mAP"}, {"rpn_recall", "RPN recall"}}, .host_loss = host_loss,
    .mid_forward = mid_forward, .mid_input_role = DEFT_FRCNN_ROLE_ROIS, .validate = validate,
    .no_val = "no validation set"};

enum deft_status frcnn_train_run(const struct deft_task_args *a) {
    struct run r = {0};
    det_train_init(&r.dt, a, &frcnn_net, "faster_rcnn", &r);
    enum deft_status s = frcnn_setup_load(&r.f, a);
    if (s) goto done;
    if (r.f.cfg.training_config.enable_qat) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: training_config.enable_qat: not finished yet for faster_rcnn "
                           "(issue 20)", r.f.cfg.source_path);
        goto done;
    }
    if ((s = det_train_open_dir(&r.dt, r.f.cfg.results_dir, a->resume_from))) goto done;
    if ((s = open_data(&r)) || (s = make_trainer(&r))) goto done;
    const struct deft_frcnn_training_config *tc = &r.f.cfg.training_config;
    const char *from = a->resume_from ? a->resume_from : tc->resume_from_model[0] ? tc->resume_from_model : NULL;
    int64_t start = 0;
    if ((s = det_train_weights(&r.dt, from, tc->pretrained_weights, tc->retrain_pruned_model, &start)) ||
        (s = det_train_record(&r.dt, print_spec, &r.f.cfg)))
        goto done;
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r.dt.t), &gs);
    fprintf(r.dt.out, "training faster_rcnn-%s (%lld params) on %d images of %d classes, %d epochs x %d steps of %d "
            "at %dx%d, %ld anchors, %d RoIs per image, %d threads -> %s\n", r.dt.arch, (long long)gs.params,
            r.dt.train_ds.n, r.f.n_classes, r.dt.epochs, r.dt.spe, r.dt.bs, r.f.net_w, r.f.net_h, r.f.p.n_anchors,
            r.f.p.rois_per_image, deft_get_threads(), r.dt.dir);
    int ve = r.f.cfg.evaluation_config.validation_period_during_training;
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = lr_at, .ctx = &r};
    s = det_train_run_loop(&r.dt, start, &(struct det_train_loop_opts){
        .lr = &lr, .val_every = ve > 0 ? ve : 1, .checkpoint_interval = tc->checkpoint_interval,
        .ap = deft_ap_mode_describe(frcnn_ap_mode(&r.f))});
done:
    run_free(&r);
    det_train_finish(&r.dt, s);
    return s;
}

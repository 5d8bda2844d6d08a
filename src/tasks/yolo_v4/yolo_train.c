/* yolo_train.c - `deft yolo_v4 train` / `deft yolo_v4_tiny train`: the spec's
 * data through the detection loader, the YOLOv4 graph, TAO's loss as the
 * trainer's host loss, and the shared training loop (src/train/loop.c) with
 * validation mAP as the best-model figure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/loop.h"
#include "deft/models.h"
#include "deft/report.h"
#include "deft/trainer.h"
#include "deft/yolo_model.h"
#include "tasks/common/det_train_cfg.h"
#include "tasks/common/det_detect_all.h"
#include "tasks/common/det_train_loop.h"
#include "tasks/common/pruned_graph.h"
#include "tasks/yolo_v4/yolo_task.h"

enum { TERM_LOC = 0, TERM_OBJ, TERM_NOOBJ, TERM_CLS, N_TERMS };
static const char *const term_names[N_TERMS] = {"loss_loc", "loss_obj", "loss_noobj", "loss_cls"};

struct run {
    struct det_train dt;
    struct yolo_setup y;
    struct det_lr_ctx lr;
    float *outs[DEFT_YOLO_HEADS];
};

/* The host loss: TAO's YOLOv4 loss over every head, targets = the batch's boxes. */
static enum deft_status host_loss(void *user, int n_outputs, const float *const *outputs,
                                  const struct deft_shape *shapes, const void *targets, float *const *grads,
                                  double *loss, double *terms) {
    struct run *r = user;
    const struct deft_det_batch *b = targets;
    int n = (int)shapes[0].d[0];
    if (n_outputs != r->y.heads.n)
        return deft_set_error(DEFT_ERR_SHAPE, "the model has %d outputs for %d heads", n_outputs, r->y.heads.n);
    const struct deft_box *gt[512];
    int n_gt[512];
    if (n > 512) return deft_set_error(DEFT_ERR_INVALID_ARG, "batch of %d is over 512", n);
    for (int i = 0; i < n; i++) {
        gt[i] = i < b->n ? b->boxes + b->box_start[i] : NULL;
        n_gt[i] = i < b->n ? b->n_boxes[i] : 0;
    }
    struct deft_yolo_loss_terms t;
    enum deft_status s = deft_yolo_loss(&r->y.loss, r->y.heads.head, r->y.heads.n, n, outputs, gt, n_gt, grads, &t);
    if (s) return s;
    *loss = t.total;
    terms[TERM_LOC] = t.loc;
    terms[TERM_OBJ] = t.obj;
    terms[TERM_NOOBJ] = t.noobj;
    terms[TERM_CLS] = t.cls;
    return DEFT_OK;
}

static enum deft_status open_data(struct run *r) {
    const struct deft_yolo_config *c = &r->y.cfg;
    enum deft_status s = yolo_read_split(&r->y, false, &r->dt.train_ds);
    if (s) return s;
    const struct deft_det_read_stats *st = &r->dt.train_ds.stats;
    fprintf(r->dt.out, "train: %d images (%lld background), %lld boxes (%lld difficult, %lld clipped, %lld dropped as tiny, "
            "%lld of unmapped classes)\n", r->dt.train_ds.n, (long long)st->background_images, (long long)st->boxes,
            (long long)st->difficult, (long long)st->clipped, (long long)st->dropped_small, (long long)st->unmapped);
    if (r->dt.train_ds.n < 1)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: the training data has no images", c->source_path);
    r->dt.have_val = c->dataset_config.n_validation_data_sources > 0;
    if (r->dt.have_val) {
        if ((s = yolo_read_split(&r->y, true, &r->dt.val_ds))) return s;
        fprintf(r->dt.out, "val:   %d images, %lld boxes\n", r->dt.val_ds.n, (long long)r->dt.val_ds.stats.boxes);
    }
    struct deft_det_transform tt, vt;
    yolo_transform(&r->y, true, &tt);
    yolo_transform(&r->y, false, &vt);
    return det_train_loaders(&r->dt, c->training_config.batch_size_per_gpu,
                             c->training_config.n_workers > 0 ? c->training_config.n_workers : 2,
                             (uint64_t)c->random_seed, &tt, &vt);
}

static enum deft_status build_from_spec(struct run *r, struct deft_graph **g) {
    const struct deft_yolo_v4_config *c = &r->y.cfg.yolov4_config;
    int fb[64], nfb = 0;
    for (int i = 0; i < c->n_freeze_blocks && nfb < 64; i++) fb[nfb++] = (int)c->freeze_blocks[i];
    struct deft_yolo_v4_opts o = {.arch = c->arch, .nlayers = c->nlayers, .num_classes = r->y.cfg.dataset_config.n_classes,
                                  .anchors = {c->n_anchors[0], c->n_anchors[1], c->n_anchors[2]},
                                  .height = r->y.net_h, .width = r->y.net_w, .batch = r->dt.bs,
                                  .activation = c->activation[0] ? c->activation : NULL, .force_relu = c->force_relu,
                                  .freeze_bn = c->freeze_bn, .freeze_blocks = nfb ? fb : NULL, .n_freeze_blocks = nfb,
                                  .training = true};
    enum deft_status s = deft_yolo_v4_build(&o, g);
    return s ? deft_wrap_error(s, "%s: yolov4_config", r->y.cfg.source_path) : DEFT_OK;
}

static enum deft_status build_model(struct run *r, struct deft_graph **g) {
    enum deft_status s = r->y.cfg.training_config.pruned_model_path[0]
                             ? det_pruned_graph(r->y.cfg.training_config.pruned_model_path, r->y.cfg.source_path,
                                                "training_config.pruned_model_path", r->dt.out, g)
                             : build_from_spec(r, g);
    if (s) return s;
    static const char *const roles[DEFT_YOLO_HEADS] = {"head_s32", "head_s16", "head_s8"};
    for (int i = 0; i < r->y.heads.n && !s; i++) {
        int v = deft_graph_find_value(*g, roles[i]);
        s = v < 0 ? deft_set_error(DEFT_ERR_SHAPE, "the YOLO graph has no %s", roles[i]) : deft_graph_set_role(*g, roles[i], v);
    }
    det_train_arch(&r->dt, *g);
    return s;
}

static enum deft_status make_trainer(struct run *r) {
    const struct deft_yolo_config *c = &r->y.cfg;
    struct deft_graph *g = NULL;
    enum deft_status s = build_model(r, &g);
    if (s) {
        deft_graph_free(g);
        return s;
    }
    struct deft_trainer_opts to = {0};
    const struct deft_yolo_training_config *tc = &c->training_config;
    bool qat_bn = tc->enable_qat && tc->qat_freeze_bn;
    const char *excl[65];
    int ne = 0;
    for (int i = 0; i < tc->n_qat_exclude && ne < 64; i++) excl[ne++] = tc->qat_exclude[i];
    excl[ne] = NULL;
    struct deft_qat_opts qo = {.ema_decay = (float)tc->qat_ema_decay, .fusion = tc->qat_fusion, .exclude = excl};
    if (tc->enable_qat) {
        to.qat = &qo; /* the shared trainer rewrites the graph, as for classification */
        fprintf(r->dt.out, "quantization-aware training: int8 weights per output channel, activations per tensor "
                "(moving-average ranges, decay %g)%s; kept float:", tc->qat_ema_decay,
                qat_bn ? ", batch norm on its running statistics" : "");
        for (int i = 0; i < ne; i++) fprintf(r->dt.out, " %s", excl[i]);
        fprintf(r->dt.out, "%s\n", ne ? "" : " nothing");
    }
    det_train_trainer_opts(&r->dt, r->y.net_h, r->y.net_w, c->yolov4_config.freeze_bn || qat_bn,
                           (uint64_t)c->random_seed, &to);
    det_optim_from_config(&c->training_config, &to.optim);
    r->dt.epochs = c->training_config.num_epochs;
    r->lr = (struct det_lr_ctx){&c->training_config.learning_rate, (int64_t)r->dt.spe * r->dt.epochs};
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = det_lr_at, .ctx = &r->lr};
    s = det_train_create(&r->dt, &to, g, "yolo", yolo_meta_json(&r->y), c->dataset_config.class_names,
                         c->dataset_config.n_classes);
    return s ? s : det_train_alloc_outs(&r->dt, r->y.heads.n, r->outs);
}

/* The validation pass's hooks: the network through the trainer, the loss summed per batch. */
struct val_pass { struct run *r; struct yolo_nms nms; double lsum; int seen; };
static enum deft_status val_run(void *ctx, const struct deft_det_batch *b) {
    struct val_pass *v = ctx;
    struct run *r = v->r;
    enum deft_status s = deft_trainer_predict_outputs(r->dt.t, b->images, b->n, r->outs);
    if (s) return s;
    const struct deft_box *gt[512];
    int n_gt[512];
    for (int i = 0; i < b->n && i < 512; i++) {
        gt[i] = b->boxes + b->box_start[i];
        n_gt[i] = b->n_boxes[i];
    }
    struct deft_yolo_loss_terms t;
    if (!deft_yolo_loss(&r->y.loss, r->y.heads.head, r->y.heads.n, b->n, (const float *const *)r->outs, gt, n_gt,
                        NULL, &t))
        v->lsum += t.total * b->n, v->seen += b->n;
    return DEFT_OK;
}
static enum deft_status val_detect(void *ctx, const struct deft_det_batch *b, int i, struct deft_box **boxes, int *n) {
    const struct val_pass *v = ctx;
    return yolo_detect_image(&v->r->y.heads, v->r->y.cfg.dataset_config.n_classes, (const float *const *)v->r->outs, i,
                             &b->lb[i], &v->nms, boxes, n);
}

/* Detections for every validation image and the validation loss. */
static enum deft_status run_validation(struct run *r, struct det_dets *d, double *vloss) {
    const struct deft_yolo_config *c = &r->y.cfg;
    struct val_pass v = {r, {(float)c->nms_config.confidence_threshold, (float)c->nms_config.clustering_iou_threshold,
                             c->nms_config.top_k}, 0, 0};
    struct det_detector net = {.ctx = &v, .run = val_run, .detect = val_detect};
    enum deft_status s = det_detect_loader(r->dt.val_ld, &r->dt.val_ds, &net, NULL, d, NULL);
    *vloss = v.seen ? v.lsum / v.seen : NAN;
    return s;
}

/* TensorBoard's val/predictions: the first validation images with the boxes
 * predicted at confidence >= 0.3, JPEGs decoded at a reduced scale. */
#define VAL_IMAGES 4
static enum deft_status val_images(struct run *r, const struct det_dets *d) {
    struct deft_image tiles[VAL_IMAGES] = {{0}}, grid = {0};
    int k = 0;
    enum deft_status s = DEFT_OK;
    for (int i = 0; i < d->n && k < VAL_IMAGES && !s; i++) {
        const struct deft_det_sample *sm = &r->dt.val_ds.samples[i];
        struct deft_decode_opts o = {.min_w = 320};
        if (sm->width <= 0 || sm->height <= 0 || deft_image_load(sm->image, &o, &tiles[k])) {
            deft_clear_error(); /* a corrupt image was reported by the loader */
            continue;
        }
        struct deft_box b[64];
        int nb = 0;
        float sx = (float)tiles[k].w / (float)sm->width, sy = (float)tiles[k].h / (float)sm->height;
        for (int j = 0; j < d->n_boxes[i] && nb < 64; j++) {
            if (d->boxes[i][j].score < 0.3f) continue;
            b[nb] = d->boxes[i][j];
            b[nb].x1 *= sx, b[nb].x2 *= sx, b[nb].y1 *= sy, b[nb].y2 *= sy;
            nb++;
        }
        deft_image_draw_boxes(&tiles[k], b, nb, (const char *const *)r->y.cfg.dataset_config.class_names,
                              r->y.cfg.dataset_config.n_classes);
        k++;
    }
    if (k) s = deft_image_grid(tiles, k, 2, &grid);
    if (k && !s) s = deft_events_image_rgb(r->dt.ev, "val/predictions", deft_trainer_steps(r->dt.t), &grid);
    for (int i = 0; i < k; i++) deft_image_free(&tiles[i]);
    deft_image_free(&grid);
    return s;
}

static enum deft_ap_mode ap_mode(const struct deft_yolo_config *c) {
    return c->eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE ? DEFT_AP_SAMPLE : DEFT_AP_INTEGRATE;
}

static enum deft_status validate(void *user, int epoch, double *score) {
    struct run *r = user;
    const struct deft_yolo_config *c = &r->y.cfg;
    struct det_dets d = {0};
    struct deft_det_metrics *m = NULL;
    double vl = NAN;
    (void)epoch;
    enum deft_status s = run_validation(r, &d, &vl);
    if (!s && r->dt.ev && val_images(r, &d)) /* a picture is not worth stopping the run */
        deft_log(DEFT_LOG_WARN, "TensorBoard validation images: %s", deft_last_error());
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

/* command.txt and the resolved spec.yaml in the results folder */
static void print_spec(const void *cfg, FILE *f) { deft_yolo_config_print(cfg, f); }

static enum deft_status dry_run(struct run *r) {
    deft_yolo_config_summary(&r->y.cfg, r->dt.out);
    fprintf(r->dt.out, "network: %s, input %dx%d, %d heads\n", r->y.network, r->y.net_w, r->y.net_h, r->y.heads.n);
    enum deft_status s = deft_yolo_config_validate_paths(&r->y.cfg, false);
    /* missing paths were each warned about; a TFRecords-only source was not */
    if (s && s != DEFT_ERR_NOT_FOUND) deft_log(DEFT_LOG_WARN, "%s (a real run stops here)", deft_last_error());
    return deft_dry_run_verdict(s != DEFT_OK);
}

static void run_free(struct run *r) {
    det_train_release(&r->dt);
    for (int i = 0; i < DEFT_YOLO_HEADS; i++) deft_free(r->outs[i]);
    yolo_setup_free(&r->y);
}

static enum deft_status yolo_train_spec(const struct deft_task_args *a, const char *network);

/* train: from -e SPEC, or from --data and friends without one */
enum deft_status yolo_train(const struct deft_task_args *a, const char *network) {
    static const char *const quick[] = {"--data", "--val", "--arch", "--pretrained", "--epochs", "--batch", "--size",
                                        "--lr"};
    for (size_t i = 0; a->spec && i < sizeof quick / sizeof quick[0]; i++)
        if (deft_task_arg(a, quick[i]))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s builds a spec: give it without -e (or set the field in "
                                  "the spec)", quick[i]);
    if (a->spec) return yolo_train_spec(a, network);
    char *text = NULL;
    enum deft_status s = yolo_quick_spec(a, network, &text);
    if (s) return s;
    fprintf(a->out ? a->out : stdout, "%s# (this spec is saved as spec.yaml in the results folder)\n", text);
    struct deft_task_args with = *a;
    with.spec_text = text;
    s = yolo_train_spec(&with, network);
    free(text);
    return s;
}

static const struct det_train_net yolo_net = {
    .loss_terms = term_names, .n_loss_terms = N_TERMS, .val_metrics = {{"loss", "val loss"}, {"mAP", "val mAP"}},
    .host_loss = host_loss, .validate = validate, .no_val = "no validation set", .resume_epoch = true,
    .says_finished = true};

static enum deft_status yolo_train_spec(const struct deft_task_args *a, const char *network) {
    struct run r = {0};
    det_train_init(&r.dt, a, &yolo_net, network, &r);
    enum deft_status s = yolo_setup_load(&r.y, a, network);
    if (s) goto done;
    if (a->dry_run) {
        s = dry_run(&r);
        goto done;
    }
    if ((s = deft_yolo_config_validate_paths(&r.y.cfg, true))) goto done;
    const struct deft_yolo_training_config *tc = &r.y.cfg.training_config;
    const char *resume_from = a->resume_from ? a->resume_from : !a->resume && tc->resume_model_path[0]
                                                                    ? tc->resume_model_path : NULL;
    if ((s = det_train_open_dir(&r.dt, r.y.cfg.results_dir, resume_from))) goto done;
    if ((s = open_data(&r)) || (s = make_trainer(&r))) goto done;
    int64_t start = 0;
    if ((s = det_train_weights(&r.dt, resume_from, tc->pretrain_model_path, tc->pruned_model_path, &start)) ||
        (s = det_train_record(&r.dt, print_spec, &r.y.cfg)))
        goto done;
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r.dt.t), &gs);
    fprintf(r.dt.out, "training %s-%s (%lld params, %.2f GFLOPs/image) on %d images of %d class%s, %d epoch%s x %d "
            "step%s of %d at %dx%d, %d threads -> %s\n", r.y.network, r.dt.arch, (long long)gs.params,
            (double)gs.flops / 1e9 / r.dt.bs, r.dt.train_ds.n, r.dt.train_ds.n_classes,
            r.dt.train_ds.n_classes == 1 ? "" : "es", r.dt.epochs, r.dt.epochs == 1 ? "" : "s", r.dt.spe,
            r.dt.spe == 1 ? "" : "s", r.dt.bs, r.y.net_w, r.y.net_h, deft_get_threads(), r.dt.dir);
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = det_lr_at, .ctx = &r.lr};
    s = det_train_run_loop(&r.dt, start, &(struct det_train_loop_opts){
        .lr = &lr, .val_every = 1, .checkpoint_interval = tc->checkpoint_interval,
        .ap = deft_ap_mode_describe(ap_mode(&r.y.cfg))});
done:
    run_free(&r);
    det_train_finish(&r.dt, s);
    return s;
}

/* cls_train.c - `deft classification train`: spec -> data loaders -> trainer,
 * with the shared training loop (src/train/loop.c: validation, checkpoints,
 * resume, status.json, metrics.csv, TensorBoard, plots, SIGINT) driven
 * through the hooks below, and classification's collapse warnings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/classification.h"
#include "deft/data.h"
#include "deft/dist.h"
#include "deft/io.h"
#include "deft/loop.h"
#include "deft/report.h"
#include "deft/spec.h"
#include "deft/trainer.h"
#include "deft/task.h"
#include "tasks/classification/cls_common.h"
#include "tasks/classification/cls_metrics.h"

struct run {
    const struct deft_cls_args *a;
    struct deft_cls_config cfg;
    bool cfg_loaded;
    const char *arch;                 /* registry name */
    const char *graph_from;           /* model file whose graph is trained (pruned), or NULL */
    struct deft_dataset *train_ds, *val_ds;
    struct deft_loader *train_ld, *val_ld;
    struct deft_trainer *t;
    struct deft_events *ev;
    struct cls_lr_ctx lr;
    int batch, classes, epochs, spe;  /* spe: steps per epoch */
    size_t img_n;                     /* floats per batch of images */
    float *images, *labels, *logits;
    char dir[2048], wdir[2100];
    struct deft_run_log *log;         /* deft.log and --log_file; out prints through it */
    int64_t correct, seen;            /* training top-1 of the epoch so far */
    struct deft_loop_metric train_m[1], val_m[2];
    struct deft_transform val_tf;     /* what validation images went through (to draw them back) */
    FILE *out;
    FILE *quiet;                      /* ranks other than 0 print into /dev/null */
};

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static enum deft_status open_data(struct run *r) {
    const struct deft_cls_train_config *tc = &r->cfg.train_config;
    enum deft_status s = deft_dataset_open(tc->train_dataset_path, NULL, 0, &r->train_ds);
    if (s) return deft_wrap_error(s, "train_dataset_path");
    if (tc->val_dataset_path && tc->val_dataset_path[0]) {
        if ((s = deft_dataset_open(tc->val_dataset_path, NULL, 0, &r->val_ds))) return deft_wrap_error(s, "val_dataset_path");
        if ((s = deft_dataset_check_classes(r->train_ds, "train", r->val_ds, "val"))) return s;
    }
    r->classes = r->train_ds->num_classes;
    if (r->cfg.model_config.num_classes && r->cfg.model_config.num_classes != r->classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.num_classes is %d but %s has %d class folders",
                              r->cfg.source_path, r->cfg.model_config.num_classes, tc->train_dataset_path, r->classes);
    r->batch = tc->batch_size_per_gpu;
    int world = deft_dist_size();
    if (r->train_ds->num_samples < r->batch * world)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %d training images, fewer than batch_size_per_gpu %d x %d "
                              "rank%s", tc->train_dataset_path, r->train_ds->num_samples, r->batch, world,
                              world == 1 ? "" : "s");
    struct deft_loader_opts lo;
    deft_loader_opts_defaults(&lo);
    lo.batch_size = r->batch;
    lo.num_threads = tc->n_workers < 1 ? 1 : tc->n_workers > 4 ? 4 : tc->n_workers;
    lo.shuffle = true;
    lo.drop_last = true; /* a fixed batch keeps BN statistics and the plan stable */
    lo.strict = r->a->fatal_corrupt;
    lo.seed = (uint64_t)tc->random_seed;
    lo.mixup_alpha = (float)tc->mixup_alpha;
    lo.rank = deft_dist_rank(); /* each rank its share of every epoch, validation too */
    lo.world = world;
    if ((s = cls_transform_from_config(&r->cfg, true, &lo.transform))) return s;
    if ((s = deft_loader_create(&lo, r->train_ds, &r->train_ld))) return s;
    if (r->val_ds) {
        lo.shuffle = false;
        lo.drop_last = false;
        lo.mixup_alpha = 0;
        if ((s = cls_transform_from_config(&r->cfg, false, &lo.transform))) return s;
        r->val_tf = lo.transform;
        if ((s = deft_loader_create(&lo, r->val_ds, &r->val_ld))) return s;
    }
    r->spe = deft_loader_num_batches(r->train_ld);
    return DEFT_OK;
}

static void optim_from_config(const struct deft_cls_config *c, struct deft_optim_config *o) {
    const struct deft_cls_optimizer_config *oc = &c->train_config.optimizer;
    const struct deft_cls_reg_config *rg = &c->train_config.reg_config;
    memset(o, 0, sizeof *o);
    switch (oc->kind) {
    case DEFT_CLS_OPTIM_ADAM:
        o->kind = DEFT_OPTIM_ADAM;
        o->beta1 = (float)oc->adam.beta_1, o->beta2 = (float)oc->adam.beta_2, o->eps = (float)oc->adam.epsilon;
        break;
    case DEFT_CLS_OPTIM_ADAMW:
        o->kind = DEFT_OPTIM_ADAMW;
        o->beta1 = (float)oc->adamw.beta_1, o->beta2 = (float)oc->adamw.beta_2, o->eps = (float)oc->adamw.epsilon;
        o->weight_decay = (float)oc->adamw.weight_decay;
        break;
    case DEFT_CLS_OPTIM_RMSPROP:
        o->kind = DEFT_OPTIM_RMSPROP;
        o->rho = (float)oc->rmsprop.rho, o->eps = (float)oc->rmsprop.epsilon;
        break;
    default:
        o->kind = DEFT_OPTIM_SGD;
        o->momentum = (float)oc->sgd.momentum;
        o->nesterov = oc->sgd.nesterov;
    }
    /* Keras regularizers on Conv2D/Dense kernels: L2 wd*sum(w^2) -> gradient 2*wd*w */
    if (rg->type == DEFT_CLS_REG_L2 && o->kind != DEFT_OPTIM_ADAMW) o->weight_decay = (float)(2 * rg->weight_decay);
    if (rg->type == DEFT_CLS_REG_L1) o->l1 = (float)rg->weight_decay;
    o->clip_grad_norm = (float)c->train_config.clip_grad_norm;
}

/* Pretrained weights by name (deft_trainer_load_pretrained: TAO's per-layer table). */
static enum deft_status load_pretrained(struct run *r, const char *path) {
    return deft_trainer_load_pretrained(r->t, path, r->out);
}

/* The model file whose graph training starts from (a pruned model), or NULL:
 * train_config.pruned_model_path, or pretrained_model_path with load_graph
 * or holding a pruned deft model (its graph cannot be rebuilt from arch). */
static const char *graph_source(const struct deft_cls_config *c) {
    const struct deft_cls_train_config *tc = &c->train_config;
    if (tc->pruned_model_path && tc->pruned_model_path[0]) return tc->pruned_model_path;
    const char *pre = tc->pretrained_model_path;
    if (!pre || !pre[0]) return NULL;
    if (c->model_config.load_graph) return pre;
    struct deft_safetensors *st = NULL;
    const char *fmt;
    if (deft_weights_format(pre, &fmt) || strcmp(fmt, "safetensors") || deft_safetensors_read(pre, &st)) return NULL;
    const char *meta = deft_safetensors_meta(st, "meta");
    bool pruned = meta && strstr(meta, "\"pruned\"") && deft_safetensors_meta(st, "graph");
    deft_safetensors_free(st);
    return pruned ? pre : NULL;
}

static enum deft_status make_trainer(struct run *r) {
    const struct deft_cls_config *c = &r->cfg;
    struct deft_trainer_opts to = {0};
    struct deft_model *gm = NULL;
    r->graph_from = graph_source(c);
    if (r->graph_from) {
        enum deft_status s = deft_model_load(r->graph_from, &gm);
        if (s) return deft_wrap_error(s, "%s: the model to retrain", c->source_path);
        to.graph = gm->graph;
        fprintf(r->out, "training the graph of %s (pruned or loaded model)\n", r->graph_from);
    }
    const struct deft_cls_train_config *tc = &c->train_config;
    bool qat_bn = tc->enable_qat && tc->qat_freeze_bn;
    to.model = (struct deft_model_opts){.arch = r->arch, .num_classes = r->classes, .batch = r->batch,
                                        .channels = c->model_config.input_channels,
                                        .height = c->model_config.input_height, .width = c->model_config.input_width,
                                        .bn_mode = c->model_config.freeze_bn || qat_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN,
                                        .sync_bn = c->model_config.sync_bn,
                                        .dropout = (float)c->model_config.dropout, .training = true,
                                        .seed = (uint64_t)c->train_config.random_seed};
    optim_from_config(c, &to.optim);
    r->lr = (struct cls_lr_ctx){.cfg = &r->cfg, .steps_per_epoch = r->spe, .total_steps = (int64_t)r->spe * r->epochs};
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = cls_lr_at, .ctx = &r->lr};
    to.loss = (struct deft_loss_attr){.kind = DEFT_LOSS_SOFTMAX_CE, .label_smoothing = (float)c->train_config.label_smoothing};
    to.backend = r->a->backend;
    /* one GPU per rank on a node: --gpu_index is the first */
    to.device_index = r->a->gpu_index + (deft_dist_size() > 1 ? deft_dist_local_rank() : 0);
    to.amp = r->a->amp;
    to.seed = (uint64_t)c->train_config.random_seed;
    to.soft_targets = deft_loader_soft_labels(r->train_ld);
    /* freeze_blocks -> name prefixes; freeze_backbone -> everything but the head */
    char prefixes[8192] = "";
    size_t used = 0;
    for (int i = 0; i < c->model_config.n_freeze_blocks; i++) {
        int n = deft_model_block_prefixes(r->arch, c->model_config.freeze_blocks[i], prefixes + used,
                                          sizeof prefixes - used - 1);
        if (n < 0) return deft_wrap_error(DEFT_ERR_INVALID_ARG, "%s: model_config.freeze_blocks", c->source_path);
        used = strlen(prefixes);
        if (n > 0 && used + 1 < sizeof prefixes) prefixes[used++] = ',', prefixes[used] = 0;
    }
    const char *list[256];
    int nl = 0;
    for (char *p = prefixes; *p && nl < 255;) { /* split the comma-separated prefixes in place */
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        if (*p) list[nl++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    list[nl] = NULL;
    to.freeze_prefixes = nl ? list : NULL;
    /* QAT: the spec's patterns, NULL-terminated */
    const char *excl[65];
    int ne = 0;
    for (int i = 0; i < tc->n_qat_exclude && ne < 64; i++) excl[ne++] = tc->qat_exclude[i];
    excl[ne] = NULL;
    struct deft_qat_opts qo = {.ema_decay = (float)tc->qat_ema_decay, .fusion = tc->qat_fusion, .exclude = excl};
    if (tc->enable_qat) {
        to.qat = &qo;
        fprintf(r->out, "quantization-aware training: int8 weights per output channel, activations per tensor "
                "(moving-average ranges, decay %g)%s%s\n", tc->qat_ema_decay, qat_bn ? ", batch norm on its "
                "running statistics" : "", tc->qat_fusion ? ", add/pool inputs too" : "");
        if (qat_bn && !(tc->pretrained_model_path && tc->pretrained_model_path[0]) && !r->graph_from)
            deft_log(DEFT_LOG_WARN, "enable_qat without pretrained_model_path: batch norm keeps its initial "
                     "statistics (qat_freeze_bn); QAT is meant to fine-tune a trained model");
    }
    enum deft_status s = deft_trainer_create(&to, &r->t);
    deft_model_free(gm);
    if (s) return r->graph_from ? deft_wrap_error(s, "%s", r->graph_from) : s;
    r->epochs = c->train_config.n_epochs;
    char *cn = cls_class_names_to_json(r->train_ds->classes, r->classes);
    char *pp = cls_preprocess_to_json(&(struct deft_transform){0});
    struct deft_transform et;
    if (!(s = cls_transform_from_config(c, false, &et))) {
        deft_free(pp);
        pp = cls_preprocess_to_json(&et);
    }
    if (!s && (!cn || !pp)) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = deft_trainer_set_meta(r->t, "class_names", cn);
    if (!s) s = deft_trainer_set_meta(r->t, "preprocess", pp);
    if (!s) s = deft_trainer_set_meta(r->t, "network", "\"classification\"");
    deft_free(cn);
    deft_free(pp);
    return s;
}

static void softmax_ce(const float *logits, const float *labels, int n, int c, double *loss_sum) {
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * (size_t)c;
        double m = l[0], z = 0;
        for (int j = 1; j < c; j++) m = l[j] > m ? l[j] : m;
        for (int j = 0; j < c; j++) z += exp(l[j] - m);
        int y = (int)labels[i];
        if (y >= 0 && y < c) *loss_sum += log(z) + m - l[y];
    }
}

/* TensorBoard's val/predictions: the first validation images as the network
 * saw them, framed green when predicted right, red with the true class when not. */
#define VAL_IMAGES 8
static enum deft_status val_images(struct run *r, int n) {
    struct deft_image tiles[VAL_IMAGES] = {{0}}, grid = {0};
    int k = n < VAL_IMAGES ? n : VAL_IMAGES, h = r->val_tf.out_h, w = r->val_tf.out_w;
    enum deft_status s = DEFT_OK;
    for (int i = 0; i < k && !s; i++) {
        size_t per = (size_t)deft_preprocess_channels(&r->val_tf.pre) * (size_t)h * (size_t)w;
        s = deft_image_from_input(r->images + (size_t)i * per, h, w, &r->val_tf.pre, 128, &tiles[i]);
        if (s) break;
        const float *l = r->logits + (size_t)i * (size_t)r->classes;
        int best = 0, y = (int)r->labels[i];
        double z = 0;
        for (int j = 1; j < r->classes; j++) best = l[j] > l[best] ? j : best;
        for (int j = 0; j < r->classes; j++) z += exp((double)l[j] - l[best]);
        char cap[160];
        bool right = best == y;
        snprintf(cap, sizeof cap, right ? "%.40s %.2f" : "%.40s %.2f (%.40s)", r->train_ds->classes[best], 1.0 / z,
                 y >= 0 && y < r->classes ? r->train_ds->classes[y] : "?");
        static const unsigned char green[3] = {40, 170, 60}, red[3] = {220, 40, 40};
        deft_image_draw_frame(&tiles[i], 0, 0, tiles[i].w - 1, tiles[i].h - 1, cap, right ? green : red);
    }
    if (!s) s = deft_image_grid(tiles, k, 4, &grid);
    if (!s) s = deft_events_image_rgb(r->ev, "val/predictions", deft_trainer_steps(r->t), &grid);
    for (int i = 0; i < k; i++) deft_image_free(&tiles[i]);
    deft_image_free(&grid);
    return s;
}

static enum deft_status validate_set(struct run *r, int epoch, struct cls_metrics *m, double *loss) {
    enum deft_status s = cls_metrics_init(m, r->classes, 1);
    if (s) return s;
    if ((s = deft_loader_start_epoch(r->val_ld, 0))) return s;
    double lsum = 0;
    for (bool first = true;; first = false) {
        int n = 0;
        if ((s = deft_loader_next(r->val_ld, r->images, r->labels, &n))) return s;
        if (n == 0) break;
        if ((s = deft_trainer_predict(r->t, r->images, n, r->logits))) return s;
        if (first && r->ev && val_images(r, n)) /* a picture is not worth stopping the run */
            deft_log(DEFT_LOG_WARN, "TensorBoard validation images: %s", deft_last_error());
        cls_metrics_add(m, r->logits, r->labels, n);
        softmax_ce(r->logits, r->labels, n, r->classes, &lsum);
    }
    /* every rank validated its share: the sums of all of them */
    if ((s = cls_metrics_reduce(m)) || (s = deft_dist_allreduce_f64(&lsum, 1, DEFT_DIST_SUM))) return s;
    *loss = m->total ? lsum / (double)m->total : NAN;
    (void)epoch;
    return DEFT_OK;
}

static void collapse_warnings(struct run *r, const struct cls_metrics *m, int epoch) {
    if (deft_dist_rank() != 0) return; /* the figures are every rank's: said once */
    if (r->classes > 1 && m->total > 1 && cls_metrics_majority_share(m) >= 0.999) {
        int cls = 0;
        int64_t best = -1;
        for (int p = 0; p < r->classes; p++) {
            int64_t col = 0;
            for (int t = 0; t < r->classes; t++) col += m->confusion[(size_t)t * (size_t)r->classes + (size_t)p];
            if (col > best) best = col, cls = p;
        }
        deft_log(DEFT_LOG_WARN, "epoch %d: every validation image is predicted as '%s': training has collapsed. "
                 "Likely causes: a learning rate too high for this network (try 10x lower), or no gradient reaching "
                 "the head (dead ReLUs).", epoch + 1, r->train_ds->classes[cls]);
    }
    double gn = deft_trainer_head_grad_norm(r->t);
    if (gn >= 0 && gn < 1e-12)
        deft_log(DEFT_LOG_WARN, "epoch %d: no gradient reaches the classifier (norm %.1e): the ReLU before it is "
                 "dead (SqueezeNet does this at too high a learning rate); lower the learning rate and retrain.",
                 epoch + 1, gn);
}

/* ---- hooks of the shared training loop ---- */

static enum deft_status hook_start_epoch(void *ctx, int epoch) {
    struct run *r = ctx;
    r->correct = r->seen = 0;
    return deft_loader_start_epoch(r->train_ld, epoch);
}

static enum deft_status hook_next_batch(void *ctx, int *n) {
    struct run *r = ctx;
    return deft_loader_next(r->train_ld, r->images, r->labels, n);
}

static void hook_poison(void *ctx) {
    struct run *r = ctx;
    for (size_t i = 0; i < r->img_n; i++) r->images[i] = NAN;
}

/* The step, then the batch's training top-1 from its logits. */
static enum deft_status hook_train_step(void *ctx, int n, float *loss) {
    struct run *r = ctx;
    enum deft_status s = deft_trainer_step(r->t, r->images, r->labels, loss);
    if (s) return s;
    if (!deft_loader_soft_labels(r->train_ld) && !deft_trainer_logits(r->t, r->logits, (size_t)r->batch * (size_t)r->classes)) {
        for (int i = 0; i < n; i++) {
            const float *l = r->logits + (size_t)i * (size_t)r->classes;
            int best = 0;
            for (int j = 1; j < r->classes; j++) best = l[j] > l[best] ? j : best;
            r->correct += best == (int)r->labels[i];
        }
        r->seen += n;
    }
    return DEFT_OK;
}

static void hook_end_epoch(void *ctx) {
    struct run *r = ctx;
    int64_t c[2] = {r->correct, r->seen};
    if (deft_dist_allreduce_i64(c, 2, DEFT_DIST_SUM))
        deft_log(DEFT_LOG_WARN, "training top-1 of this rank only: %s", deft_last_error());
    else r->correct = c[0], r->seen = c[1];
    r->train_m[0].value = r->seen ? (double)r->correct / (double)r->seen : NAN;
}

static int hook_partial_save(void *ctx, double *v, int cap) {
    struct run *r = ctx;
    if (cap < 2) return 0;
    v[0] = (double)r->correct;
    v[1] = (double)r->seen;
    return 2;
}

static void hook_partial_restore(void *ctx, const double *v, int n) {
    struct run *r = ctx;
    if (n < 2) return;
    r->correct = (int64_t)v[0];
    r->seen = (int64_t)v[1];
}

static enum deft_status hook_validate(void *ctx, int epoch, double *score) {
    struct run *r = ctx;
    struct cls_metrics m = {0};
    double vl = NAN;
    enum deft_status s = validate_set(r, epoch, &m, &vl);
    if (!s) {
        r->val_m[0].value = vl;
        r->val_m[1].value = *score = cls_metrics_top1(&m);
        collapse_warnings(r, &m, epoch);
    }
    cls_metrics_release(&m);
    return s;
}

static enum deft_status train_loop(struct run *r, int64_t start_step, double *best, int *best_epoch) {
    r->train_m[0] = (struct deft_loop_metric){"train_top1", "train top-1", NAN};
    r->val_m[0] = (struct deft_loop_metric){"loss", "val loss", NAN};
    r->val_m[1] = (struct deft_loop_metric){"top1", "val top-1", NAN};
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = cls_lr_at, .ctx = &r->lr};
    const struct deft_task_metric metric = {"top1", "top-1", true};
    struct deft_loop lp = {
        .trainer = r->t, .network = "classification", .arch = r->arch, .dir = r->dir, .epochs = r->epochs,
        .steps_per_epoch = r->spe, .batch = r->batch, .lr = &lr, .val_every = r->cfg.train_config.val_every,
        .checkpoint_interval = r->cfg.train_config.checkpoint_interval,
        .keep_checkpoints = r->cfg.train_config.keep_checkpoints, .no_best = !r->cfg.train_config.save_best,
        .skip_nonfinite = r->cfg.train_config.skip_nonfinite_batches,
        .skip_key = "train_config.skip_nonfinite_batches", .metric = metric,
        .train_metrics = r->train_m, .n_train_metrics = 1, .val_metrics = r->val_m, .n_val_metrics = 2,
        .metric_plot = "accuracy", .metric_plot_title = "Accuracy", .train_metric_key = "train_top1",
        .events = r->ev, .stop = r->a->stop, .out = r->out, .ctx = r,
        .start_epoch = hook_start_epoch, .next_batch = hook_next_batch, .poison_batch = hook_poison,
        .train_step = hook_train_step, .end_epoch = hook_end_epoch, .validate = r->val_ld ? hook_validate : NULL,
        .partial_save = hook_partial_save, .partial_restore = hook_partial_restore};
    enum deft_status s = deft_loop_run(&lp, start_step);
    *best = lp.have_best ? lp.best : -1;
    *best_epoch = lp.best_epoch;
    return s;
}

/* command.txt and the resolved spec.yaml in the results folder */
static void print_spec(const void *cfg, FILE *f) { deft_cls_config_print(cfg, f); }

static enum deft_status record_run(struct run *r) {
    return deft_run_dir_record_spec(r->dir, r->a->argc, r->a->argv, print_spec, &r->cfg);
}

static enum deft_status dry_run(struct run *r) {
    fprintf(r->out, "# resolved configuration (%s, %s)\n", r->cfg.source_path, deft_spec_format_name(r->cfg.format));
    deft_cls_config_print(&r->cfg, r->out);
    const char *paths[16], *names[16];
    int n = deft_cls_config_paths(&r->cfg, DEFT_CLS_PATHS_TRAIN, paths, names, 16);
    fprintf(r->out, "# paths it would read:\n");
    for (int i = 0; i < n && i < 16; i++)
        fprintf(r->out, "#   %-36s %s%s\n", names[i], paths[i], file_exists(paths[i]) ? "" : "   (missing)");
    fprintf(r->out, "# architecture: %s\n", r->arch);
    return deft_cls_config_validate_paths(&r->cfg, DEFT_CLS_PATHS_TRAIN, false);
}

enum deft_status deft_cls_train(const struct deft_cls_args *a) {
    struct run r = {.a = a, .out = a->out ? a->out : stdout};
    double best = -1;
    int best_epoch = 0;
    bool would_stop = false; /* in a dry run: the arch or a path stops a real run */
    bool dir_opened = false;
    enum deft_status s = a->spec_text ? deft_cls_config_parse(a->spec_text, strlen(a->spec_text), "(train --data)",
                                                              DEFT_SPEC_FORMAT_YAML, a->overrides, a->n_overrides,
                                                              &r.cfg)
                                      : deft_cls_config_load(a->spec, a->overrides, a->n_overrides, &r.cfg);
    if (s) return s;
    r.cfg_loaded = true;
    if ((s = deft_model_resolve_arch(r.cfg.model_config.arch, r.cfg.model_config.n_layers, &r.arch))) {
        deft_wrap_error(s, "%s: model_config.arch", a->spec);
        if (!a->dry_run) goto done;
        /* a dry run reports the spec as parsed; the real run stops here */
        deft_log(DEFT_LOG_WARN, "%s (a real run stops here)", deft_last_error());
        r.arch = r.cfg.model_config.arch;
        s = DEFT_OK;
        would_stop = true;
    }
    if (a->dry_run) {
        if (dry_run(&r)) would_stop = true;
        s = deft_dry_run_verdict(would_stop);
        goto done;
    }
    if ((s = deft_cls_config_validate_paths(&r.cfg, DEFT_CLS_PATHS_TRAIN, true))) goto done;
    bool writer = deft_dist_rank() == 0; /* rank 0 alone writes the results folder and prints */
    if (!writer) {
        if ((r.quiet = fopen("/dev/null", "w"))) r.out = r.quiet;
    } else if ((s = deft_run_dir_open(&(struct deft_run_dir_opts){
             .network = "classification", .requested = a->results_dir && a->results_dir[0] ? a->results_dir
                                                                                           : r.cfg.results_dir,
             .resume = a->resume, .resume_from = a->resume_from, .overwrite = a->overwrite, .out = r.out},
             r.dir, sizeof r.dir)))
        goto done;
    dir_opened = writer;
    if (writer && (s = deft_run_log_open(r.dir, a->log_file, r.out, &r.log))) goto done;
    if (writer) r.out = deft_run_log_stream(r.log);
    if ((s = deft_dist_broadcast(r.dir, sizeof r.dir, 0))) goto done; /* the automatic trainN of rank 0 */
    if (!writer && (s = deft_run_log_open_rank(r.dir, deft_dist_rank(), &r.log))) goto done;
    snprintf(r.wdir, sizeof r.wdir, "%s/weights", r.dir);
    if (a->threads > 0) deft_set_threads(a->threads);
    else if (r.cfg.train_config.threads > 0) deft_set_threads(r.cfg.train_config.threads);
    if ((s = open_data(&r))) goto done;
    r.epochs = r.cfg.train_config.n_epochs;
    if ((s = make_trainer(&r))) goto done;
    r.img_n = (size_t)r.batch * (size_t)r.cfg.model_config.input_channels * (size_t)r.cfg.model_config.input_height *
              (size_t)r.cfg.model_config.input_width;
    r.images = deft_malloc(r.img_n * sizeof(float));
    r.labels = deft_malloc((size_t)r.batch * (size_t)r.classes * sizeof(float));
    r.logits = deft_malloc((size_t)r.batch * (size_t)r.classes * sizeof(float));
    if (!r.images || !r.labels || !r.logits) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory for a batch of %d images", r.batch);
        goto done;
    }
    int64_t start = 0;
    char ck[2400];
    snprintf(ck, sizeof ck, "%s/latest.safetensors", r.wdir);
    const char *from = a->resume_from ? a->resume_from : a->resume ? ck : NULL;
    if (from) {
        if ((s = deft_trainer_resume(r.t, from))) goto done;
        start = deft_trainer_steps(r.t);
        fprintf(r.out, "resumed from %s at step %lld (epoch %lld)\n", from, (long long)start, (long long)(start / r.spe) + 1);
    } else {
        const char *pre = r.graph_from ? r.graph_from : r.cfg.train_config.pretrained_model_path;
        if (pre && pre[0] && (s = load_pretrained(&r, pre))) goto done;
    }
    if ((s = deft_trainer_broadcast(r.t))) goto done; /* every rank starts from rank 0's weights */
    if (writer && ((s = record_run(&r)) || (s = deft_events_open(r.dir, &r.ev)))) goto done;
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r.t), &gs);
    fprintf(r.out, "training %s (%lld params, %lld trainable) on %d images of %d classes, %d epoch%s x %d step%s of %d, "
            "%d threads -> %s\n", r.arch, (long long)gs.params, (long long)gs.trainable_params, r.train_ds->num_samples,
            r.classes, r.epochs, r.epochs == 1 ? "" : "s", r.spe, r.spe == 1 ? "" : "s", r.batch, deft_get_threads(), r.dir);
    if (deft_dist_size() > 1)
        fprintf(r.out, "data parallel: %d ranks x batch %d = global batch %d, %d threads per rank; the learning rate "
                "is the spec's, not scaled (the gradient averaged over the ranks is the gradient of one process "
                "with the global batch)\n", deft_dist_size(), r.batch, r.batch * deft_dist_size(), deft_get_threads());
    double t_train = deft_time_now();
    s = train_loop(&r, start, &best, &best_epoch);
    if (!s && deft_dist_size() > 1) {
        double wall = deft_time_now() - t_train, comm = deft_dist_comm_seconds();
        double exposed = deft_dist_exposed_seconds(); /* what backward did not hide */
        fprintf(r.out, "data parallel: all-reduce %.1f s of %.1f s on rank 0 (%.1f%%), %.1f s of it not hidden "
                "behind backward\n", comm, wall, wall > 0 ? 100 * comm / wall : 0, exposed);
    }
    struct deft_loader_stats ls;
    deft_loader_get_stats(r.train_ld, &ls);
    if (ls.corrupt_skipped)
        deft_log(DEFT_LOG_WARN, "corrupt or unreadable images were skipped %lld times (see the warnings above)",
                 (long long)ls.corrupt_skipped);
    if (!s && start >= (int64_t)r.epochs * r.spe)
        fprintf(r.out, "done: the run had already finished its %d epoch%s; weights in %s\n", r.epochs,
                r.epochs == 1 ? "" : "s", r.wdir);
    else if (!s && best < 0) fprintf(r.out, "done (no validation set); weights in %s\n", r.wdir);
    else if (!s) fprintf(r.out, "done: best val top-1 %.4f (epoch %d, best.safetensors); weights in %s\n", best,
                           best_epoch, r.wdir);
done:
    if (r.ev && deft_events_close(r.ev)) deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
    deft_run_log_close(r.log, s);
    if (dir_opened) deft_run_dir_unlock(r.dir);
    if (s && dir_opened) deft_run_dir_close(r.dir);
    if (r.quiet) fclose(r.quiet);
    deft_trainer_free(r.t);
    deft_loader_free(r.train_ld);
    deft_loader_free(r.val_ld);
    deft_dataset_free(r.train_ds);
    deft_dataset_free(r.val_ds);
    deft_free(r.images);
    deft_free(r.labels);
    deft_free(r.logits);
    if (r.cfg_loaded) deft_cls_config_free(&r.cfg);
    return s;
}

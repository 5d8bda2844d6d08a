/* unet_train.c - `deft unet train`: TAO's UNet on the shared training loop
 * (checkpoints, resume, results folder, reports), with the segmentation loss
 * on the host and per-class IoU on the validation set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/dist.h"
#include "deft/io.h"
#include "deft/loop.h"
#include "deft/report.h"
#include "deft/trainer.h"
#include "tasks/unet/unet_task.h"

struct run {
    const struct deft_task_args *a;
    FILE *out;
    FILE *quiet;                       /* data parallel, ranks above 0: out is /dev/null */
    struct unet_setup u;
    struct deft_seg_dataset train_ds, val_ds;
    bool have_val;
    struct deft_seg_loader *train_ld, *val_ld;
    struct deft_trainer *t;
    struct deft_events *ev;
    float *images, *logits;
    int32_t *masks;
    int spe;
    char dir[2048], wdir[2100], arch[64];
    struct deft_run_log *log;
    struct deft_loop_metric val_m[4];
};

static enum deft_status open_data(struct run *r) {
    struct unet_setup *u = &r->u;
    const char *what;
    enum deft_status s = unet_open_split(u, false, &r->train_ds, &what);
    if (s) return s;
    fprintf(r->out, "train: %d image/mask pairs from %s%s\n", r->train_ds.n, what,
            r->train_ds.missing_masks ? " (pairs without an image or mask skipped)" : "");
    if (u->batch > r->train_ds.n) u->batch = r->train_ds.n;
    u->train_lo.batch = u->val_lo.batch = u->batch;
    u->train_lo.rank = deft_dist_rank(); /* each rank its share of every epoch */
    u->train_lo.world = deft_dist_size();
    if ((s = deft_seg_loader_create(&u->train_lo, &r->train_ds, &r->train_ld))) return s;
    r->spe = deft_seg_loader_num_batches(r->train_ld);
    r->have_val = unet_has_split(u, true);
    if (r->have_val && deft_dist_rank() == 0) { /* rank 0 validates on the whole set */
        if ((s = unet_open_split(u, true, &r->val_ds, &what))) return s;
        fprintf(r->out, "val:   %d image/mask pairs from %s\n", r->val_ds.n, what);
        if ((s = deft_seg_loader_create(&u->val_lo, &r->val_ds, &r->val_ld))) return s;
    }
    size_t plane = (size_t)u->model.width * (size_t)u->model.height;
    r->images = deft_malloc((size_t)u->batch * (size_t)u->model.channels * plane * sizeof(float));
    r->masks = deft_malloc((size_t)u->batch * plane * sizeof(int32_t));
    r->logits = deft_malloc((size_t)u->batch * (size_t)u->model.num_classes * plane * sizeof(float));
    if (!r->images || !r->masks || !r->logits) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    return DEFT_OK;
}

/* model_config.pruned_model_path (TAO's retrain of a pruned model): the spec's
 * arch cannot rebuild it, so the file's graph is trained. */
static enum deft_status pruned_graph(struct run *r, const char *path, struct deft_graph **g) {
    struct deft_model *m = NULL;
    enum deft_status s = deft_model_load(path, &m);
    if (s) return deft_wrap_error(s, "%s: model_config.pruned_model_path", r->u.cfg.source_path);
    s = deft_graph_clone(m->graph, g);
    deft_model_free(m);
    if (!s) fprintf(r->out, "training the graph of %s (pruned model)\n", path);
    return s;
}

static enum deft_status make_trainer(struct run *r) {
    struct unet_setup *u = &r->u;
    struct deft_graph *g = NULL;
    struct deft_unet_opts mo = u->model;
    mo.batch = u->batch;
    mo.training = true;
    const char *pruned = u->cfg.model_config.pruned_model_path;
    enum deft_status s = pruned && pruned[0] ? pruned_graph(r, pruned, &g) : deft_unet_build(&mo, &g);
    if (s) {
        deft_graph_free(g);
        return pruned && pruned[0] ? s : deft_wrap_error(s, "%s: model_config", u->cfg.source_path);
    }
    const char *bb = deft_graph_get_meta(g, "backbone");
    snprintf(r->arch, sizeof r->arch, "%.*s", bb && strlen(bb) > 2 ? (int)strlen(bb) - 2 : 4,
             bb && strlen(bb) > 2 ? bb + 1 : "unet");
    struct deft_trainer_opts to = {0};
    to.graph = g;
    to.model = (struct deft_model_opts){.batch = u->batch, .height = mo.height, .width = mo.width,
                                        .bn_mode = mo.freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN, .training = true,
                                        .seed = u->seed};
    to.optim = u->optim;
    to.lr = (struct deft_lr_schedule){.kind = DEFT_LR_CALLBACK, .fn = unet_lr_at, .ctx = u};
    to.backend = r->a->backend;
    to.device_index = r->a->gpu_index;
    to.amp = r->a->amp;
    to.seed = u->seed;
    to.host_loss = deft_seg_host_loss;
    to.host_loss_user = &u->loss;
    s = deft_trainer_create(&to, &r->t);
    deft_graph_free(g);
    if (s) return s;
    char *meta = unet_meta_json(u);
    if (!meta) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    s = deft_trainer_set_meta(r->t, "unet", meta);
    deft_free(meta);
    if (!s) s = deft_trainer_set_meta(r->t, "network", "\"unet\"");
    return s;
}

/* ---- hooks of the shared loop ---- */

static enum deft_status hook_start_epoch(void *ctx, int epoch) {
    struct run *r = ctx;
    return deft_seg_loader_start_epoch(r->train_ld, epoch);
}

static enum deft_status hook_next_batch(void *ctx, int *n) {
    struct run *r = ctx;
    return deft_seg_loader_next(r->train_ld, r->images, r->masks, NULL, n);
}

static void hook_poison(void *ctx) {
    struct run *r = ctx;
    size_t n = (size_t)r->u.batch * (size_t)r->u.model.channels * (size_t)r->u.model.width * (size_t)r->u.model.height;
    for (size_t i = 0; i < n; i++) r->images[i] = NAN;
}

static enum deft_status hook_train_step(void *ctx, int n, float *loss) {
    struct run *r = ctx;
    (void)n;
    return deft_trainer_step_targets(r->t, r->images, r->masks, loss);
}

/* The validation set's confusion matrix and mean loss. */
static enum deft_status validate_set(struct run *r, struct deft_seg_confusion *c, double *vloss) {
    struct unet_setup *u = &r->u;
    size_t plane = (size_t)u->model.width * (size_t)u->model.height;
    int32_t *pred = deft_malloc((size_t)u->batch * plane * sizeof *pred);
    enum deft_status s = pred ? deft_seg_confusion_init(c, u->n_classes) : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = deft_seg_loader_start_epoch(r->val_ld, 0);
    double lsum = 0;
    int64_t px = 0;
    int n = 0;
    while (!s && !(s = deft_seg_loader_next(r->val_ld, r->images, r->masks, NULL, &n)) && n) {
        float *outs[1] = {r->logits};
        if ((s = deft_trainer_predict_outputs(r->t, r->images, n, outs))) break;
        struct deft_seg_loss_terms t;
        if ((s = deft_seg_loss(&u->loss, r->logits, r->masks, n, u->model.height, u->model.width, &t, NULL))) break;
        lsum += t.total * (double)t.pixels, px += t.pixels;
        if ((s = deft_seg_argmax(r->logits, n, u->model.num_classes, u->model.height, u->model.width, pred))) break;
        s = deft_seg_confusion_add(c, pred, r->masks, (size_t)n * plane, u->ignore_id);
    }
    *vloss = px ? lsum / (double)px : NAN;
    deft_free(pred);
    return s;
}

/* Data parallel: the others take rank 0's figures (every rank needs the same score). */
static enum deft_status share_validation(struct run *r, enum deft_status s, double *score) {
    if (deft_dist_size() < 2) return s;
    double fig[6] = {s ? 1 : 0, *score, r->val_m[0].value, r->val_m[1].value, r->val_m[2].value, r->val_m[3].value};
    enum deft_status b = deft_dist_broadcast(fig, sizeof fig, 0);
    if (s || b) return s ? s : b;
    if (fig[0] != 0) return deft_set_error(DEFT_ERR_BACKEND, "rank 0's validation failed (its log says why)");
    *score = fig[1];
    for (int i = 0; i < 4; i++) r->val_m[i].value = fig[2 + i];
    return DEFT_OK;
}

static enum deft_status hook_validate(void *ctx, int epoch, double *score) {
    struct run *r = ctx;
    struct deft_seg_confusion c = {0};
    struct deft_seg_metrics m = {0};
    double vl = NAN;
    (void)epoch;
    if (deft_dist_rank() != 0) return share_validation(r, DEFT_OK, score);
    enum deft_status s = validate_set(r, &c, &vl);
    if (!s) s = deft_seg_metrics_compute(&c, &m);
    if (!s) {
        r->val_m[0].value = vl;
        r->val_m[1].value = *score = m.miou;
        r->val_m[2].value = m.mean_f1;
        r->val_m[3].value = m.pixel_accuracy;
        fprintf(r->out, "  IoU:");
        for (int k = 0; k < m.n_classes; k++) fprintf(r->out, " %s %.4f", r->u.class_names[k], m.classes[k].iou);
        fprintf(r->out, "\n");
    }
    deft_seg_metrics_free(&m);
    deft_seg_confusion_free(&c);
    return share_validation(r, s, score);
}

static enum deft_status train_loop(struct run *r, int64_t start, double *best, int *best_epoch) {
    r->val_m[0] = (struct deft_loop_metric){"loss", "val loss", NAN};
    r->val_m[1] = (struct deft_loop_metric){"mIoU", "val mIoU", NAN};
    r->val_m[2] = (struct deft_loop_metric){"mean_f1", "val F1", NAN};
    r->val_m[3] = (struct deft_loop_metric){"pixel_accuracy", "val pixel acc", NAN};
    static const char *const terms[] = {"loss_ce", "loss_dice"};
    struct deft_lr_schedule lr = {.kind = DEFT_LR_CALLBACK, .fn = unet_lr_at, .ctx = &r->u};
    struct deft_loop lp = {
        .trainer = r->t, .network = "unet", .arch = r->arch, .dir = r->dir, .epochs = r->u.epochs,
        .steps_per_epoch = r->spe, .batch = r->u.batch, .lr = &lr, .val_every = r->u.checkpoint_interval,
        .checkpoint_interval = r->u.checkpoint_interval, .metric = {"mIoU", "mIoU", true},
        .loss_terms = terms, .n_loss_terms = 2, .val_metrics = r->val_m, .n_val_metrics = 4,
        .metric_plot = "miou", .metric_plot_title = "Validation mIoU", .events = r->ev, .stop = r->a->stop,
        .out = r->out, .ctx = r, .start_epoch = hook_start_epoch, .next_batch = hook_next_batch,
        .poison_batch = hook_poison, .train_step = hook_train_step, .validate = r->have_val ? hook_validate : NULL};
    enum deft_status s = deft_loop_run(&lp, start);
    *best = lp.have_best ? lp.best : -1;
    *best_epoch = lp.best_epoch;
    return s;
}

/* command.txt and the resolved spec.yaml in the results folder */
static void print_spec(const void *cfg, FILE *f) { deft_unet_config_print(cfg, f); }

static enum deft_status record_run(struct run *r) {
    return deft_run_dir_record_spec(r->dir, r->a->argc, r->a->argv, print_spec, &r->u.cfg);
}

static enum deft_status dry_run(struct run *r) {
    deft_unet_config_summary(&r->u.cfg, r->out);
    /* the network is built too (no weights): an arch, input size or freeze_blocks the
     * builder refuses stops here, as it would stop a real run */
    const char *pruned = r->u.cfg.model_config.pruned_model_path;
    if (!pruned || !pruned[0]) {
        struct deft_unet_opts mo = r->u.model;
        mo.batch = 1;
        mo.training = true;
        struct deft_graph *g = NULL;
        enum deft_status b = deft_unet_build(&mo, &g);
        if (b) return deft_wrap_error(b, "%s: model_config", r->u.cfg.source_path);
        struct deft_graph_stats st;
        deft_graph_stats(g, &st);
        const char *bb = deft_graph_get_meta(g, "backbone");
        fprintf(r->out, "  %-13s: unet-%.*s, %.2fM parameters (%.2fM trainable)\n", "model",
                bb && strlen(bb) > 2 ? (int)strlen(bb) - 2 : 0, bb && strlen(bb) > 2 ? bb + 1 : "", st.params / 1e6,
                st.trainable_params / 1e6);
        deft_graph_free(g);
    }
    enum deft_status s = deft_unet_config_validate_paths(&r->u.cfg, false);
    if (s && s != DEFT_ERR_NOT_FOUND) deft_log(DEFT_LOG_WARN, "%s (a real run stops here)", deft_last_error());
    return deft_dry_run_verdict(s != DEFT_OK);
}

static void run_free(struct run *r) {
    if (r->ev && deft_events_close(r->ev)) deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
    deft_trainer_free(r->t);
    deft_seg_loader_free(r->train_ld);
    deft_seg_loader_free(r->val_ld);
    deft_seg_dataset_free(&r->train_ds);
    deft_seg_dataset_free(&r->val_ds);
    deft_free(r->images);
    deft_free(r->masks);
    deft_free(r->logits);
    unet_setup_free(&r->u);
}

enum deft_status unet_train(const struct deft_task_args *a) {
    struct run r = {.a = a, .out = a->out ? a->out : stdout};
    double best = -1;
    int best_epoch = 0;
    bool dir_opened = false;
    enum deft_status s = unet_setup_load(&r.u, a);
    if (s) goto done;
    if (a->dry_run) {
        s = dry_run(&r);
        goto done;
    }
    if ((s = deft_unet_config_validate_paths(&r.u.cfg, true))) goto done;
    bool writer = deft_dist_rank() == 0; /* rank 0 alone writes the results folder, prints and validates */
    if (!writer) {
        if ((r.quiet = fopen("/dev/null", "w"))) r.out = r.quiet;
    } else if ((s = deft_run_dir_open(&(struct deft_run_dir_opts){
                    .network = "unet", .requested = a->results_dir && a->results_dir[0] ? a->results_dir : NULL,
                    .resume = a->resume, .resume_from = a->resume_from, .overwrite = a->overwrite, .out = r.out},
                    r.dir, sizeof r.dir))) {
        goto done;
    }
    dir_opened = writer;
    if (writer && (s = deft_run_log_open(r.dir, a->log_file, r.out, &r.log))) goto done;
    if (writer) r.out = deft_run_log_stream(r.log);
    if (deft_dist_size() > 1 && (s = deft_dist_broadcast(r.dir, sizeof r.dir, 0))) goto done;
    if (!writer && (s = deft_run_log_open_rank(r.dir, deft_dist_rank(), &r.log))) goto done;
    snprintf(r.wdir, sizeof r.wdir, "%s/weights", r.dir);
    if (a->threads > 0) deft_set_threads(a->threads);
    if ((s = open_data(&r)) || (s = make_trainer(&r))) goto done;
    int64_t start = 0;
    char ck[2400];
    snprintf(ck, sizeof ck, "%s/latest.safetensors", r.wdir);
    const char *from = a->resume ? ck : a->resume_from;
    if (from) {
        if ((s = deft_trainer_resume(r.t, from))) goto done;
        start = deft_trainer_steps(r.t);
        fprintf(r.out, "resumed from %s at step %lld (epoch %lld)\n", from, (long long)start,
                (long long)(start / r.spe) + 1);
    } else if (r.u.pretrained && (s = deft_trainer_load_pretrained(r.t, r.u.pretrained, r.out))) {
        goto done;
    } else if (r.u.cfg.model_config.pruned_model_path && r.u.cfg.model_config.pruned_model_path[0] &&
               (s = deft_trainer_load_pretrained(r.t, r.u.cfg.model_config.pruned_model_path, r.out))) {
        goto done;
    }
    if (deft_dist_size() > 1 && (s = deft_trainer_broadcast(r.t))) goto done; /* rank 0's weights everywhere */
    if (writer && ((s = record_run(&r)) || (s = deft_events_open(r.dir, &r.ev)))) goto done;
    struct deft_graph_stats gs;
    deft_graph_stats(deft_trainer_model_graph(r.t), &gs);
    fprintf(r.out, "training unet-%s (%lld params, %.2f GFLOPs/image) on %d images of %d classes, %d epoch%s x %d "
            "step%s of %d at %dx%dx%d, %s loss, %d threads -> %s\n", r.arch, (long long)gs.params,
            (double)gs.flops / 1e9 / r.u.batch, r.train_ds.n, r.u.n_classes, r.u.epochs, r.u.epochs == 1 ? "" : "s",
            r.spe, r.spe == 1 ? "" : "s", r.u.batch, r.u.model.channels, r.u.model.height, r.u.model.width,
            deft_seg_loss_kind_name(r.u.loss.kind), deft_get_threads(), r.dir);
    if (deft_dist_size() > 1)
        fprintf(r.out, "data parallel: %d ranks x batch %d = global batch %d, %d threads per rank; the learning rate "
                "is the spec's, not scaled; rank 0 validates\n", deft_dist_size(), r.u.batch,
                r.u.batch * deft_dist_size(), deft_get_threads());
    double t_train = deft_time_now();
    s = train_loop(&r, start, &best, &best_epoch);
    if (!s && deft_dist_size() > 1) {
        double wall = deft_time_now() - t_train, comm = deft_dist_comm_seconds();
        fprintf(r.out, "data parallel: all-reduce %.1f s of %.1f s on rank 0 (%.1f%%), %.1f s of it not hidden "
                "behind backward\n", comm, wall, wall > 0 ? 100 * comm / wall : 0, deft_dist_exposed_seconds());
    }
    if (!s && best < 0) fprintf(r.out, "done (no validation set); weights in %s\n", r.wdir);
    else if (!s) fprintf(r.out, "done: best val mIoU %.4f (epoch %d, best.safetensors); weights in %s\n", best,
                         best_epoch, r.wdir);
done:
    run_free(&r);
    deft_run_log_close(r.log, s);
    if (dir_opened) deft_run_dir_unlock(r.dir);
    if (s && dir_opened) deft_run_dir_close(r.dir);
    if (r.quiet) fclose(r.quiet);
    return s;
}

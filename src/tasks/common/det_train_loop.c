/* det_train_loop.c - the detectors' shared training run: see det_train_loop.h. */
#include "tasks/common/det_train_loop.h"
#include <math.h>
#include <string.h>
#include "tasks/common/det_results.h"
#include "deft/dist.h"
#include "deft/models.h"

/* Data parallel: rank 0 alone writes the results folder, prints and validates. */
static bool writer(void) { return deft_dist_rank() == 0; }

void det_train_init(struct det_train *dt, const struct deft_task_args *a, const struct det_train_net *net,
                    const char *network, void *user) {
    *dt = (struct det_train){.a = a, .net = net, .user = user, .network = network, .out = a->out ? a->out : stdout};
}

enum deft_status det_train_open_dir(struct det_train *dt, const char *results_dir, const char *resume_from) {
    const struct deft_task_args *a = dt->a;
    enum deft_status s = DEFT_OK;
    if (!writer()) {
        if ((dt->quiet = fopen("/dev/null", "w"))) dt->out = dt->quiet;
    } else {
        s = deft_run_dir_open(
            &(struct deft_run_dir_opts){.network = dt->network,
                                        .requested = a->results_dir && a->results_dir[0] ? a->results_dir
                                                                                         : results_dir,
                                        .resume = a->resume, .resume_from = resume_from, .overwrite = a->overwrite,
                                        .out = dt->out},
            dt->dir, sizeof dt->dir);
        if (s) return s;
        dt->dir_opened = true;
        if ((s = deft_run_log_open(dt->dir, a->log_file, dt->out, &dt->log))) return s;
        dt->out = deft_run_log_stream(dt->log);
    }
    if (deft_dist_size() > 1) {
        if ((s = deft_dist_broadcast(dt->dir, sizeof dt->dir, 0))) return s; /* the automatic trainN of rank 0 */
        if (!writer() && (s = deft_run_log_open_rank(dt->dir, deft_dist_rank(), &dt->log))) return s;
    }
    snprintf(dt->wdir, sizeof dt->wdir, "%s/weights", dt->dir);
    if (a->threads > 0) deft_set_threads(a->threads);
    return DEFT_OK;
}

enum deft_status det_train_loaders(struct det_train *dt, int batch, int workers, uint64_t seed,
                                   const struct deft_det_transform *train_tf, const struct deft_det_transform *val_tf) {
    dt->bs = batch > dt->train_ds.n ? dt->train_ds.n : batch;
    struct deft_det_loader_opts lo;
    deft_det_loader_opts_defaults(&lo);
    lo.batch_size = dt->bs;
    lo.num_threads = workers;
    lo.shuffle = true;
    lo.drop_last = true;
    lo.strict = dt->a->fatal_corrupt;
    lo.seed = seed;
    lo.transform = *train_tf;
    lo.rank = deft_dist_rank(); /* each rank its share of every epoch */
    lo.world = deft_dist_size();
    enum deft_status s = deft_det_loader_create(&lo, &dt->train_ds, &dt->train_ld);
    if (s) return s;
    dt->spe = deft_det_loader_num_batches(dt->train_ld);
    if (!dt->have_val || !val_tf || !writer()) return DEFT_OK; /* rank 0 validates on the whole set */
    lo.rank = lo.world = 0;
    lo.shuffle = false;
    lo.drop_last = false;
    lo.transform = *val_tf;
    return deft_det_loader_create(&lo, &dt->val_ds, &dt->val_ld);
}

void det_train_trainer_opts(const struct det_train *dt, int h, int w, bool freeze_bn, uint64_t seed,
                            struct deft_trainer_opts *to) {
    to->model = (struct deft_model_opts){.batch = dt->bs, .height = h, .width = w,
                                         .bn_mode = freeze_bn ? DEFT_BN_FROZEN : DEFT_BN_TRAIN, .training = true,
                                         .seed = seed};
    to->backend = dt->a->backend;
    to->device_index = dt->a->gpu_index;
    to->amp = dt->a->amp;
    to->seed = seed;
    to->host_loss = dt->net->host_loss;
    to->host_loss_user = dt->user;
    if (dt->net->mid_forward) {
        to->mid_forward = dt->net->mid_forward;
        to->mid_forward_user = dt->user;
        to->mid_input_role = dt->net->mid_input_role;
    }
}

/* class_names and network follow the network's own key, in that order. */
static enum deft_status set_meta(struct det_train *dt, const char *key, char *meta, char *const *class_names,
                                 int n_classes) {
    char *names = det_class_names_json(class_names, n_classes);
    char net[80];
    snprintf(net, sizeof net, "\"%s\"", dt->network);
    enum deft_status s = meta && names ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = deft_trainer_set_meta(dt->t, key, meta);
    if (!s) s = deft_trainer_set_meta(dt->t, "class_names", names);
    if (!s) s = deft_trainer_set_meta(dt->t, "network", net);
    deft_free(names);
    return s;
}

enum deft_status det_train_create(struct det_train *dt, struct deft_trainer_opts *to, struct deft_graph *g,
                                  const char *key, char *meta, char *const *class_names, int n_classes) {
    to->graph = g;
    enum deft_status s = deft_trainer_create(to, &dt->t);
    deft_graph_free(g);
    if (!s) s = set_meta(dt, key, meta, class_names, n_classes);
    deft_free(meta);
    return s;
}

void det_train_arch(struct det_train *dt, const struct deft_graph *g) {
    const char *bb = deft_graph_get_meta(g, "backbone"); /* "\"resnet18\"": the quotes go */
    snprintf(dt->arch, sizeof dt->arch, "%.*s", bb && strlen(bb) > 2 ? (int)strlen(bb) - 2 : 7,
             bb && strlen(bb) > 2 ? bb + 1 : "unknown");
}

enum deft_status det_train_alloc_outs(const struct det_train *dt, int n, float **outs) {
    for (int i = 0; i < n; i++) {
        const struct deft_shape *sh = deft_trainer_output_shape(dt->t, i);
        outs[i] = deft_malloc((size_t)deft_shape_numel(sh) * sizeof(float));
        if (!outs[i]) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    return DEFT_OK;
}

enum deft_status det_train_weights(struct det_train *dt, const char *from, const char *pretrained,
                                   const char *pruned, int64_t *start) {
    char ck[2400];
    snprintf(ck, sizeof ck, "%s/latest.safetensors", dt->wdir);
    if (dt->a->resume) from = ck;
    *start = 0;
    enum deft_status s = DEFT_OK;
    if (from) {
        if ((s = deft_trainer_resume(dt->t, from))) return s;
        *start = deft_trainer_steps(dt->t);
        fprintf(dt->out, "resumed from %s at step %lld", from, (long long)*start);
        if (dt->net->resume_epoch) fprintf(dt->out, " (epoch %lld)", (long long)(*start / dt->spe) + 1);
        fprintf(dt->out, "%s\n", dt->net->resume_note ? dt->net->resume_note : "");
    } else if (pretrained && pretrained[0]) {
        s = deft_trainer_load_pretrained(dt->t, pretrained, dt->out);
    } else if (pruned && pruned[0]) {
        s = deft_trainer_load_pretrained(dt->t, pruned, dt->out);
    }
    if (!s && deft_dist_size() > 1) s = deft_trainer_broadcast(dt->t); /* every rank starts from rank 0's weights */
    return s;
}

enum deft_status det_train_record(struct det_train *dt, deft_spec_print_fn print, const void *cfg) {
    if (!writer()) return DEFT_OK;
    enum deft_status s = deft_run_dir_record_spec(dt->dir, dt->a->argc, dt->a->argv, print, cfg);
    return s ? s : deft_events_open(dt->dir, &dt->ev);
}

/* ---- hooks of the shared loop (ctx: the struct det_train) ---- */

static enum deft_status hook_start_epoch(void *ctx, int epoch) {
    struct det_train *dt = ctx;
    if (dt->net->epoch_start) dt->net->epoch_start(dt->user);
    return deft_det_loader_start_epoch(dt->train_ld, epoch);
}

static enum deft_status hook_next_batch(void *ctx, int *n) {
    struct det_train *dt = ctx;
    enum deft_status s = deft_det_loader_next(dt->train_ld, &dt->batch);
    *n = s ? 0 : dt->batch.n;
    return s;
}

static void hook_poison(void *ctx) {
    struct det_train *dt = ctx;
    size_t n = (size_t)dt->batch.n * 3 * (size_t)dt->batch.h * (size_t)dt->batch.w;
    for (size_t i = 0; i < n; i++) dt->batch.images[i] = NAN;
}

static enum deft_status hook_train_step(void *ctx, int n, float *loss) {
    struct det_train *dt = ctx;
    (void)n;
    return deft_trainer_step_targets(dt->t, dt->batch.images, &dt->batch, loss);
}

/* Data parallel: rank 0 validates on the whole validation set while the
 * others wait for its figures (every rank needs the same score). */
static enum deft_status hook_validate(void *ctx, int epoch, double *score) {
    struct det_train *dt = ctx;
    enum deft_status s = writer() ? dt->net->validate(dt->user, epoch, score) : DEFT_OK;
    if (deft_dist_size() < 2) return s;
    double fig[4] = {s ? 1 : 0, *score, dt->val_m[0].value, dt->val_m[1].value};
    enum deft_status b = deft_dist_broadcast(fig, sizeof fig, 0);
    if (s || b) return s ? s : b;
    if (fig[0] != 0) return deft_set_error(DEFT_ERR_BACKEND, "rank 0's validation failed (its log says why)");
    *score = fig[1];
    dt->val_m[0].value = fig[2];
    dt->val_m[1].value = fig[3];
    return DEFT_OK;
}

static void say_done(const struct det_train *dt, int64_t start, const struct deft_loop *lp, const char *ap) {
    if (dt->net->says_finished && start >= (int64_t)dt->epochs * dt->spe)
        fprintf(dt->out, "done: the run had already finished its %d epoch%s; weights in %s\n", dt->epochs,
                dt->epochs == 1 ? "" : "s", dt->wdir);
    else if (!lp->have_best || lp->best < 0)
        fprintf(dt->out, "done (%s); weights in %s\n", dt->net->no_val, dt->wdir);
    else
        fprintf(dt->out, "done: best val mAP %.4f (%s, epoch %d, best.safetensors); weights in %s\n", lp->best, ap,
                lp->best_epoch, dt->wdir);
}

enum deft_status det_train_run_loop(struct det_train *dt, int64_t start, const struct det_train_loop_opts *o) {
    const struct det_train_net *net = dt->net;
    for (int i = 0; i < 2; i++) dt->val_m[i] = net->val_metrics[i], dt->val_m[i].value = NAN;
    struct deft_loop lp = {
        .trainer = dt->t, .network = dt->network, .arch = dt->arch, .dir = dt->dir, .epochs = dt->epochs,
        .steps_per_epoch = dt->spe, .batch = dt->bs, .lr = o->lr, .val_every = o->val_every,
        .checkpoint_interval = o->checkpoint_interval, .skip_nonfinite = 0, .skip_key = "training_config",
        .metric = {"mAP", "mAP", true}, .loss_terms = net->loss_terms, .n_loss_terms = net->n_loss_terms,
        .val_metrics = dt->val_m, .n_val_metrics = 2, .metric_plot = "map", .metric_plot_title = "Validation mAP",
        .events = dt->ev, .stop = dt->a->stop, .out = dt->out, .ctx = dt,
        .start_epoch = hook_start_epoch, .next_batch = hook_next_batch, .poison_batch = hook_poison,
        .train_step = hook_train_step, .validate = dt->have_val && net->validate ? hook_validate : NULL};
    int world = deft_dist_size();
    if (world > 1)
        fprintf(dt->out, "data parallel: %d ranks x batch %d = global batch %d, %d threads per rank; the learning "
                "rate is the spec's, not scaled; rank 0 validates\n", world, dt->bs, dt->bs * world,
                deft_get_threads());
    double t0 = deft_time_now();
    enum deft_status s = deft_loop_run(&lp, start);
    if (!s && world > 1) {
        double wall = deft_time_now() - t0, comm = deft_dist_comm_seconds();
        fprintf(dt->out, "data parallel: all-reduce %.1f s of %.1f s on rank 0 (%.1f%%), %.1f s of it not hidden "
                "behind backward\n", comm, wall, wall > 0 ? 100 * comm / wall : 0, deft_dist_exposed_seconds());
    }
    if (!s) say_done(dt, start, &lp, o->ap);
    return s;
}

void det_train_print_ap(const struct det_train *dt, const char *mode, const struct deft_det_metrics *m,
                        char *const *class_names) {
    fprintf(dt->out, "  AP (%s):", mode);
    for (int k = 0; k < m->n_classes; k++) fprintf(dt->out, " %s %.4f", class_names[k], m->classes[k].ap);
}

void det_train_release(struct det_train *dt) {
    if (dt->ev && deft_events_close(dt->ev)) deft_log(DEFT_LOG_WARN, "%s", deft_last_error());
    dt->ev = NULL;
    deft_trainer_free(dt->t);
    dt->t = NULL;
    deft_det_loader_free(dt->train_ld);
    deft_det_loader_free(dt->val_ld);
    dt->train_ld = dt->val_ld = NULL;
    deft_det_dataset_free(&dt->train_ds);
    deft_det_dataset_free(&dt->val_ds);
}

void det_train_finish(struct det_train *dt, enum deft_status s) {
    deft_run_log_close(dt->log, s);
    dt->log = NULL;
    if (dt->quiet) fclose(dt->quiet);
    dt->quiet = NULL;
    if (dt->dir_opened) deft_run_dir_unlock(dt->dir);
    if (s && dt->dir_opened) deft_run_dir_close(dt->dir);
}

/* loop.c - the training loop every task uses (deft/loop.h): epochs, the
 * resume position, Ctrl-C, non-finite batches, progress, reports,
 * checkpoints and best-model selection. Moved out of classification's
 * cls_train.c; the task reaches it through hooks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/loop.h"
#include "tasks/common/progress.h"

/* per epoch: train loss, loss terms, training figures, validation figures */
struct hist {
    double *v;
    int width;
};

static double *hist_row(struct hist *h, int e) { return h->v + (size_t)e * (size_t)h->width; }

static enum deft_status save_ckpt(struct deft_loop *lp, const char *name) {
    char path[2400];
    snprintf(path, sizeof path, "%s/weights/%s", lp->dir, name);
    return deft_trainer_save(lp->trainer, path);
}

/* DEFT_FAULT_NAN_STEP=k (tests): batch k (0-based over the whole run) is
 * filled with NaN, so the real detection path sees a non-finite loss. */
static int64_t fault_nan_step(void) {
    const char *v = getenv("DEFT_FAULT_NAN_STEP");
    return v && *v ? strtoll(v, NULL, 10) : -1;
}

/* A non-finite loss: skip the batch while the spec allows, else stop. */
static enum deft_status on_nonfinite(struct deft_loop *lp, struct progress *pg, int e, int b, int *skipped) {
    int allowed = lp->skip_nonfinite;
    const char *key = lp->skip_key ? lp->skip_key : "skip_nonfinite_batches";
    if (*skipped < allowed) {
        ++*skipped;
        deft_log(DEFT_LOG_WARN, "epoch %d, step %d: %s; batch skipped (%d of %d allowed by %s)", e + 1, b + 1,
                 deft_last_error(), *skipped, allowed, key);
        deft_clear_error();
        deft_trainer_skip_step(lp->trainer);
        return DEFT_OK;
    }
    progress_end(pg);
    return deft_wrap_error(DEFT_ERR_NUMERIC, "epoch %d, step %d%s%s%s (the last good checkpoint is "
                           "%s/weights/latest.safetensors)", e + 1, b + 1,
                           allowed ? ", after the batches " : "", allowed ? key : "", allowed ? " allows" : "", lp->dir);
}

static int find_metric(const struct deft_loop_metric *m, int n, const char *key) {
    for (int i = 0; key && i < n; i++)
        if (!strcmp(m[i].key, key)) return i;
    return -1;
}

static void write_plots(struct deft_loop *lp, struct hist *h, int n_epochs) {
    int n = n_epochs < 4096 ? n_epochs : 4096;
    int nt = lp->n_loss_terms, ntr = lp->n_train_metrics, nv = lp->n_val_metrics;
    double *buf = malloc((size_t)n * 4 * sizeof(double) + 1);
    if (!buf) return;
    double *tl = buf, *vl = buf + n, *tm = buf + 2 * n, *vm = buf + 3 * n;
    int vli = find_metric(lp->val_metrics, nv, "loss"), vmi = find_metric(lp->val_metrics, nv, lp->metric.name);
    int tmi = find_metric(lp->train_metrics, ntr, lp->train_metric_key);
    for (int e = 0; e < n; e++) {
        double *r = hist_row(h, e);
        tl[e] = r[0];
        vl[e] = vli >= 0 ? r[1 + nt + ntr + vli] : NAN;
        tm[e] = tmi >= 0 ? r[1 + nt + tmi] : NAN;
        vm[e] = vmi >= 0 ? r[1 + nt + ntr + vmi] : NAN;
    }
    char path[2300];
    struct deft_plot_series ls[2] = {{"train loss", NULL, tl, n}, {"val loss", NULL, vl, n}};
    snprintf(path, sizeof path, "%s/plots/loss", lp->dir);
    if (deft_plot_lines(path, "Loss", "epoch", "loss", ls, vli >= 0 ? 2 : 1))
        deft_log(DEFT_LOG_WARN, "plot: %s", deft_last_error());
    if (lp->metric_plot && vmi >= 0) {
        struct deft_plot_series ms[2], *p = ms;
        if (tmi >= 0) *p++ = (struct deft_plot_series){lp->train_metrics[tmi].label, NULL, tm, n};
        *p++ = (struct deft_plot_series){lp->val_metrics[vmi].label, NULL, vm, n};
        snprintf(path, sizeof path, "%s/plots/%s", lp->dir, lp->metric_plot);
        if (deft_plot_lines(path, lp->metric_plot_title ? lp->metric_plot_title : lp->metric.label, "epoch",
                            lp->metric.label, ms, (int)(p - ms)))
            deft_log(DEFT_LOG_WARN, "plot: %s", deft_last_error());
    }
    free(buf);
}

/* status.json, metrics.csv and TensorBoard for one epoch. */
static enum deft_status report(struct deft_loop *lp, int e, int64_t step, double lr, double elapsed,
                               const double *row, bool did_val) {
    int nt = lp->n_loss_terms, ntr = lp->n_train_metrics, nv = lp->n_val_metrics;
    struct deft_metric extra[DEFT_MAX_LOSS_TERMS + DEFT_LOOP_MAX_METRICS], val[DEFT_LOOP_MAX_METRICS];
    int ne = 0;
    for (int i = 0; i < nt; i++) extra[ne++] = (struct deft_metric){lp->loss_terms[i], row[1 + i]};
    for (int i = 0; i < ntr; i++) extra[ne++] = (struct deft_metric){lp->train_metrics[i].key, row[1 + nt + i]};
    for (int i = 0; i < nv; i++) val[i] = (struct deft_metric){lp->val_metrics[i].key, row[1 + nt + ntr + i]};
    struct deft_epoch_record rec = {.epoch = e + 1, .step = step, .loss = row[0], .lr = lr, .time = elapsed,
                                    .extra = extra, .n_extra = ne, .val = val, .n_val = nv};
    enum deft_status s = deft_report_epoch(lp->dir, &rec);
    if (s || !lp->events) return s;
    if ((s = deft_events_scalar(lp->events, "loss", step, (float)row[0])) ||
        (s = deft_events_scalar(lp->events, "lr", step, (float)lr)))
        return s;
    for (int i = 0; i < ne; i++)
        if ((s = deft_events_scalar(lp->events, extra[i].name, step, (float)extra[i].value))) return s;
    for (int i = 0; did_val && i < nv; i++) {
        char tag[128];
        snprintf(tag, sizeof tag, "val_%s", val[i].name);
        if ((s = deft_events_scalar(lp->events, tag, step, (float)val[i].value))) return s;
    }
    return deft_events_flush(lp->events);
}

static void epoch_line(struct deft_loop *lp, int e, const double *row, double lr, double elapsed) {
    int nt = lp->n_loss_terms, ntr = lp->n_train_metrics, nv = lp->n_val_metrics;
    fprintf(lp->out, "epoch %d/%d: loss %.4f", e + 1, lp->epochs, row[0]);
    for (int i = 0; i < nt; i++) fprintf(lp->out, "  %s %.4f", lp->loss_terms[i], row[1 + i]);
    for (int i = 0; i < ntr; i++) fprintf(lp->out, "  %s %.4f", lp->train_metrics[i].label, row[1 + nt + i]);
    for (int i = 0; i < nv; i++) fprintf(lp->out, "  %s %.4f", lp->val_metrics[i].label, row[1 + nt + ntr + i]);
    fprintf(lp->out, "  lr %.2e  %.0fs\n", lr, elapsed);
    fflush(lp->out);
}

static bool better(const struct deft_loop *lp, double score) {
    if (isnan(score)) return false;
    if (!lp->have_best) return true;
    return lp->metric.maximize ? score > lp->best : score < lp->best;
}

static enum deft_status end_of_epoch(struct deft_loop *lp, struct hist *h, int e, double t0, double lsum,
                                     const double *tsum, int64_t steps) {
    enum deft_status s;
    int nt = lp->n_loss_terms, ntr = lp->n_train_metrics, nv = lp->n_val_metrics;
    int64_t step = deft_trainer_steps(lp->trainer);
    double lr = deft_lr_at(lp->lr, step - 1);
    if (lp->end_epoch) lp->end_epoch(lp->ctx);
    double *row = hist_row(h, e);
    row[0] = steps ? lsum / (double)steps : NAN;
    for (int i = 0; i < nt; i++) row[1 + i] = steps ? tsum[i] / (double)steps : NAN;
    for (int i = 0; i < ntr; i++) row[1 + nt + i] = lp->train_metrics[i].value;
    int val_every = lp->val_every > 0 ? lp->val_every : 1;
    bool do_val = lp->validate && ((e + 1) % val_every == 0 || e + 1 == lp->epochs);
    double score = NAN;
    for (int i = 0; i < nv; i++) lp->val_metrics[i].value = NAN;
    if (do_val && (s = lp->validate(lp->ctx, e, &score))) return s;
    for (int i = 0; i < nv; i++) row[1 + nt + ntr + i] = lp->val_metrics[i].value;
    double elapsed = deft_time_now() - t0;
    epoch_line(lp, e, row, lr, elapsed);
    if ((s = report(lp, e, step, lr, elapsed, row, do_val))) return s;
    write_plots(lp, h, e + 1);
    if ((s = save_ckpt(lp, "latest.safetensors"))) return s;
    int every = lp->checkpoint_interval;
    if (every > 0 && ((e + 1) % every == 0 || e + 1 == lp->epochs)) {
        char name[256];
        snprintf(name, sizeof name, "%s_%s_epoch_%03d.safetensors", lp->network, lp->arch, e + 1);
        if ((s = save_ckpt(lp, name))) return s;
    }
    if (do_val && better(lp, score)) {
        lp->best = score;
        lp->have_best = true;
        if ((s = save_ckpt(lp, "best.safetensors"))) return s;
    }
    return DEFT_OK;
}

static enum deft_status interrupted(struct deft_loop *lp, struct progress *pg, int e, int b) {
    enum deft_status s;
    progress_end(pg);
    if ((s = save_ckpt(lp, "latest.safetensors"))) return s;
    fprintf(lp->out, "interrupted at epoch %d step %d: checkpoint written to %s/weights/latest.safetensors "
            "(resume with --resume)\n", e + 1, b + 1, lp->dir);
    return deft_set_error(DEFT_ERR_CANCELLED, "training interrupted");
}

static enum deft_status run_epochs(struct deft_loop *lp, struct hist *h, int64_t start_step) {
    enum deft_status s = DEFT_OK;
    int64_t nan_at = fault_nan_step();
    int skipped = 0, spe = lp->steps_per_epoch, nt = lp->n_loss_terms;
    struct progress pg;
    progress_init(&pg, lp->out, (int64_t)spe * lp->epochs, start_step);
    int start_epoch = (int)(start_step / spe), skip = (int)(start_step % spe);
    double t0 = deft_time_now();
    for (int e = start_epoch; e < lp->epochs; e++) {
        if ((s = lp->start_epoch(lp->ctx, e))) return s;
        double lsum = 0, tsum[DEFT_MAX_LOSS_TERMS] = {0};
        int64_t steps = 0;
        double te = deft_time_now();
        for (int b = 0;; b++) {
            int n = 0;
            if ((s = lp->next_batch(lp->ctx, &n))) return s;
            if (n == 0) break;
            if (e == start_epoch && b < skip) continue;
            float loss;
            if ((int64_t)e * spe + b == nan_at && lp->poison_batch) lp->poison_batch(lp->ctx);
            s = lp->train_step(lp->ctx, n, &loss);
            if (s == DEFT_ERR_NUMERIC) {
                if ((s = on_nonfinite(lp, &pg, e, b, &skipped))) return s;
                continue;
            }
            if (s) return s;
            lsum += loss;
            const double *terms = deft_trainer_loss_terms(lp->trainer);
            for (int i = 0; i < nt; i++) tsum[i] += terms[i];
            steps++;
            int64_t done = (int64_t)e * spe + b + 1;
            char label[64], tail[160];
            snprintf(label, sizeof label, "epoch %d/%d", e + 1, lp->epochs);
            snprintf(tail, sizeof tail, "step %d/%d loss %.4f lr %.2e %.1f img/s", b + 1, spe, lsum / (double)steps,
                     deft_lr_at(lp->lr, done - 1), (double)(steps * lp->batch) / (deft_time_now() - te));
            progress_update(&pg, label, done, tail, false);
            if (lp->stop && *lp->stop) return interrupted(lp, &pg, e, b);
        }
        progress_end(&pg);
        if ((s = end_of_epoch(lp, h, e, t0, lsum, tsum, steps))) return s;
    }
    return DEFT_OK;
}

enum deft_status deft_loop_run(struct deft_loop *lp, int64_t start_step) {
    if (!lp || !lp->trainer || !lp->start_epoch || !lp->next_batch || !lp->train_step || !lp->lr ||
        lp->steps_per_epoch < 1 || lp->epochs < 0 || lp->n_loss_terms < 0 || lp->n_loss_terms > DEFT_MAX_LOSS_TERMS ||
        lp->n_train_metrics < 0 || lp->n_train_metrics > DEFT_LOOP_MAX_METRICS || lp->n_val_metrics < 0 ||
        lp->n_val_metrics > DEFT_LOOP_MAX_METRICS)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_loop_run: incomplete loop description");
    if (!lp->out) lp->out = stdout;
    lp->best = NAN;
    lp->have_best = false;
    /* epochs before a resume are unknown here: NaN leaves them out of the plots */
    struct hist h = {.width = 1 + lp->n_loss_terms + lp->n_train_metrics + lp->n_val_metrics};
    size_t n = (size_t)(lp->epochs + 1) * (size_t)h.width;
    h.v = deft_malloc(n * sizeof(double));
    if (!h.v) return deft_set_error(DEFT_ERR_NOMEM, "out of memory for the training history");
    for (size_t i = 0; i < n; i++) h.v[i] = NAN;
    enum deft_status s = run_epochs(lp, &h, start_step);
    deft_free(h.v);
    return s;
}

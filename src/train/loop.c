/* loop.c - the training loop every task uses (deft/loop.h): epochs, the
 * resume position, Ctrl-C, non-finite batches, progress, reports,
 * checkpoints and best-model selection. Moved out of classification's
 * cls_train.c; the task reaches it through hooks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/dist.h"
#include "deft/io.h"
#include "deft/loop.h"
#include "tasks/common/progress.h"
#include "train/loop_state.h"

/* Per epoch: train loss, loss terms, training figures, validation figures,
 * then the optimizer step, lr, elapsed time and whether it validated. */
struct hist {
    double *v;
    int width;
};

enum { TAIL_STEP, TAIL_LR, TAIL_TIME, TAIL_DID_VAL, N_TAIL };

static int hist_width(const struct deft_loop *lp) {
    return 1 + lp->n_loss_terms + lp->n_train_metrics + lp->n_val_metrics + N_TAIL;
}
static double *hist_row(struct hist *h, int e) { return h->v + (size_t)e * (size_t)h->width; }
static double *row_tail(struct hist *h, int e) { return hist_row(h, e) + h->width - N_TAIL; }

/* The running state of a run, saved in latest.safetensors. */
struct run {
    struct hist h;
    double t0;                 /* deft_time_now() at the run's (virtual) start */
    int skipped;               /* non-finite batches skipped */
    /* the unfinished epoch */
    double lsum, tsum[DEFT_MAX_LOSS_TERMS];
    int64_t steps;
};

static char *state_json(struct deft_loop *lp, struct run *r, int epochs_done, bool partial) {
    struct loop_state st = {.best = lp->have_best ? lp->best : NAN, .best_epoch = lp->best_epoch,
                            .time = deft_time_now() - r->t0, .skipped = r->skipped, .epochs_done = epochs_done,
                            .width = r->h.width, .hist = r->h.v};
    if (partial) {
        int nt = lp->n_loss_terms, k = 0;
        st.partial[k++] = r->lsum;
        st.partial[k++] = (double)r->steps;
        for (int i = 0; i < nt; i++) st.partial[k++] = r->tsum[i];
        if (lp->partial_save) k += lp->partial_save(lp->ctx, st.partial + k, LOOP_STATE_MAX_PARTIAL - k);
        st.n_partial = k;
    }
    return loop_state_to_json(&st);
}

/* Data parallel: rank 0 alone writes checkpoints, reports and plots. */
static bool writer(void) { return deft_dist_rank() == 0; }

/* weights/<name>; with the run state when state is set (latest, epoch files):
 * best.safetensors holds none, so it depends on the weights alone. */
static enum deft_status save_ckpt(struct deft_loop *lp, const char *name, const char *state) {
    if (!writer()) return DEFT_OK;
    char path[2400];
    snprintf(path, sizeof path, "%s/weights/%s", lp->dir, name);
    return deft_trainer_save_run(lp->trainer, path, state);
}

static enum deft_status save_latest(struct deft_loop *lp, struct run *r, int epochs_done, bool partial,
                                    const char *epoch_file) {
    char *js = state_json(lp, r, epochs_done, partial);
    if (!js) return deft_set_error(DEFT_ERR_NOMEM, "out of memory saving the run state");
    enum deft_status s = save_ckpt(lp, "latest.safetensors", js);
    if (!s && epoch_file && writer()) {
        /* the epoch file holds latest's bytes: a second name for them instead of a
         * second ~3x-the-parameters write and fsync (a copy where links fail) */
        char from[2400], to[2400];
        snprintf(from, sizeof from, "%s/weights/latest.safetensors", lp->dir);
        snprintf(to, sizeof to, "%s/weights/%s", lp->dir, epoch_file);
        if (deft_file_link_atomic(from, to)) s = save_ckpt(lp, epoch_file, js);
    }
    deft_free(js);
    return s;
}

/* DEFT_FAULT_NAN_STEP=k (tests): batch k (0-based over the whole run) is
 * filled with NaN, so the real detection path sees a non-finite loss. */
static int64_t fault_nan_step(void) {
    const char *v = getenv("DEFT_FAULT_NAN_STEP");
    return v && *v ? strtoll(v, NULL, 10) : -1;
}

/* DEFT_FAULT_TRACE_STEPS=1 (fault tests): every rank says on stderr when it
 * has finished an optimizer step, so bench/dist_faults.sh can kill a chosen
 * rank at a chosen step from outside (rank 1 prints nothing else). */
static bool trace_steps(void) {
    const char *v = getenv("DEFT_FAULT_TRACE_STEPS");
    return v && *v && strcmp(v, "0");
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
    if (!writer()) return;
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
static enum deft_status report(struct deft_loop *lp, struct hist *h, int e, bool events) {
    if (!writer()) return DEFT_OK;
    const double *row = hist_row(h, e), *tail = row_tail(h, e);
    int64_t step = (int64_t)tail[TAIL_STEP];
    double lr = tail[TAIL_LR], elapsed = tail[TAIL_TIME];
    bool did_val = tail[TAIL_DID_VAL] > 0;
    int nt = lp->n_loss_terms, ntr = lp->n_train_metrics, nv = lp->n_val_metrics;
    struct deft_metric extra[DEFT_MAX_LOSS_TERMS + DEFT_LOOP_MAX_METRICS], val[DEFT_LOOP_MAX_METRICS];
    int ne = 0;
    for (int i = 0; i < nt; i++) extra[ne++] = (struct deft_metric){lp->loss_terms[i], row[1 + i]};
    for (int i = 0; i < ntr; i++) extra[ne++] = (struct deft_metric){lp->train_metrics[i].key, row[1 + nt + i]};
    for (int i = 0; i < nv; i++) val[i] = (struct deft_metric){lp->val_metrics[i].key, row[1 + nt + ntr + i]};
    double per_epoch = elapsed / (double)(e + 1);
    struct deft_epoch_record rec = {.epoch = e + 1, .step = step, .loss = row[0], .lr = lr, .time = elapsed,
                                    .extra = extra, .n_extra = ne, .val = val, .n_val = nv, .max_epoch = lp->epochs,
                                    .time_per_epoch = per_epoch, .eta = per_epoch * (double)(lp->epochs - e - 1)};
    enum deft_status s = deft_report_epoch(lp->dir, &rec);
    if (s || !lp->events || !events) return s;
    /* grouped tags (TensorBoard's sections): train/... and val/... per epoch, step/... per step */
    char tag[160];
    if ((s = deft_events_scalar(lp->events, "train/loss", step, (float)row[0])) ||
        (s = deft_events_scalar(lp->events, "train/lr", step, (float)lr)))
        return s;
    for (int i = 0; i < ne; i++) {
        const char *nm = extra[i].name;
        snprintf(tag, sizeof tag, "train/%s", strncmp(nm, "train_", 6) ? nm : nm + 6);
        if ((s = deft_events_scalar(lp->events, tag, step, (float)extra[i].value))) return s;
    }
    for (int i = 0; did_val && i < nv; i++) {
        snprintf(tag, sizeof tag, "val/%s", val[i].name);
        if ((s = deft_events_scalar(lp->events, tag, step, (float)val[i].value))) return s;
    }
    return deft_events_flush(lp->events);
}

static void epoch_line(struct deft_loop *lp, int e, const double *row, double lr, double elapsed) {
    int nt = lp->n_loss_terms, ntr = lp->n_train_metrics, nv = lp->n_val_metrics;
    fprintf(lp->out, "epoch %d/%d: loss %.4f", e + 1, lp->epochs, row[0]);
    for (int i = 0; i < nt; i++) fprintf(lp->out, "  %s %.4f", lp->loss_terms[i], row[1 + i]);
    for (int i = 0; i < ntr; i++) fprintf(lp->out, "  %s %.4f", lp->train_metrics[i].label, row[1 + nt + i]);
    /* NaN: no validation this epoch (validation_period / checkpoint_interval): say nothing */
    for (int i = 0; i < nv; i++)
        if (!isnan(row[1 + nt + ntr + i]))
            fprintf(lp->out, "  %s %.4f", lp->val_metrics[i].label, row[1 + nt + ntr + i]);
    fprintf(lp->out, "  lr %.2e  %.0fs\n", lr, elapsed);
    fflush(lp->out);
}

static bool better(const struct deft_loop *lp, double score) {
    if (isnan(score)) return false;
    if (!lp->have_best) return true;
    return lp->metric.maximize ? score > lp->best : score < lp->best;
}

/* keep_checkpoints: the epoch file keep_checkpoints files before this one goes */
static void drop_old_checkpoint(struct deft_loop *lp, int epoch) {
    int every = lp->checkpoint_interval, keep = lp->keep_checkpoints;
    if (keep <= 0 || every <= 0 || !writer()) return;
    int old = (epoch / every - keep) * every;
    if (old < 1) return;
    char path[2600];
    snprintf(path, sizeof path, "%s/weights/%s_%s_epoch_%03d.safetensors", lp->dir, lp->network, lp->arch, old);
    remove(path);
}

static enum deft_status end_of_epoch(struct deft_loop *lp, struct run *r, int e) {
    enum deft_status s;
    struct hist *h = &r->h;
    int nt = lp->n_loss_terms, ntr = lp->n_train_metrics, nv = lp->n_val_metrics;
    int64_t step = deft_trainer_steps(lp->trainer);
    double lr = deft_lr_at(lp->lr, step - 1);
    if (lp->end_epoch) lp->end_epoch(lp->ctx);
    double *row = hist_row(h, e), *tail = row_tail(h, e);
    row[0] = r->steps ? r->lsum / (double)r->steps : NAN;
    for (int i = 0; i < nt; i++) row[1 + i] = r->steps ? r->tsum[i] / (double)r->steps : NAN;
    for (int i = 0; i < ntr; i++) row[1 + nt + i] = lp->train_metrics[i].value;
    int val_every = lp->val_every > 0 ? lp->val_every : 1;
    bool do_val = lp->validate && ((e + 1) % val_every == 0 || e + 1 == lp->epochs);
    double score = NAN;
    for (int i = 0; i < nv; i++) lp->val_metrics[i].value = NAN;
    /* validation on rank 0's batch-norm statistics on every rank (DDP's buffers) */
    if (do_val && ((s = deft_trainer_broadcast_state(lp->trainer)) || (s = lp->validate(lp->ctx, e, &score))))
        return s;
    for (int i = 0; i < nv; i++) row[1 + nt + ntr + i] = lp->val_metrics[i].value;
    tail[TAIL_STEP] = (double)step;
    tail[TAIL_LR] = lr;
    tail[TAIL_TIME] = deft_time_now() - r->t0;
    tail[TAIL_DID_VAL] = do_val;
    epoch_line(lp, e, row, lr, tail[TAIL_TIME]);
    if ((s = report(lp, h, e, true))) return s;
    write_plots(lp, h, e + 1);
    bool new_best = do_val && better(lp, score);
    if (new_best) {
        lp->best = score;
        lp->have_best = true;
        lp->best_epoch = e + 1;
    }
    int every = lp->checkpoint_interval;
    char name[256];
    bool epoch_file = every > 0 && ((e + 1) % every == 0 || e + 1 == lp->epochs);
    if (epoch_file) snprintf(name, sizeof name, "%s_%s_epoch_%03d.safetensors", lp->network, lp->arch, e + 1);
    /* best before latest: after a kill between the two, the resumed run
     * redoes this epoch from the old latest, finds the same score better
     * than the old best and writes the same best.safetensors again */
    if (new_best && !lp->no_best && (s = save_ckpt(lp, "best.safetensors", NULL))) return s;
    if ((s = save_latest(lp, r, e + 1, false, epoch_file ? name : NULL))) return s;
    if (epoch_file) drop_old_checkpoint(lp, e + 1);
    return DEFT_OK;
}

/* Ctrl-C: every rank stops at the same step when any rank was asked to. */
static bool stop_requested(struct deft_loop *lp) {
    int64_t stop = lp->stop && *lp->stop;
    if (deft_dist_size() > 1 && deft_dist_allreduce_i64(&stop, 1, DEFT_DIST_MAX)) return true;
    return stop != 0;
}

static enum deft_status interrupted(struct deft_loop *lp, struct run *r, struct progress *pg, int e, int b) {
    enum deft_status s;
    progress_end(pg);
    if ((s = save_latest(lp, r, e, true, NULL))) return s;
    fprintf(lp->out, "interrupted at epoch %d step %d: checkpoint written to %s/weights/latest.safetensors "
            "(resume with --resume)\n", e + 1, b + 1, lp->dir);
    return deft_set_error(DEFT_ERR_CANCELLED, "training interrupted");
}

/* Restore the unfinished epoch's sums after its start_epoch hook. */
static void restore_partial(struct deft_loop *lp, struct run *r, const struct loop_state *st) {
    int nt = lp->n_loss_terms;
    if (st->n_partial < 2 + nt) return;
    r->lsum = st->partial[0];
    r->steps = (int64_t)st->partial[1];
    for (int i = 0; i < nt; i++) r->tsum[i] = st->partial[2 + i];
    if (lp->partial_restore) lp->partial_restore(lp->ctx, st->partial + 2 + nt, st->n_partial - 2 - nt);
}

static enum deft_status run_epochs(struct deft_loop *lp, struct run *r, int64_t start_step,
                                   const struct loop_state *resumed) {
    enum deft_status s = DEFT_OK;
    int64_t nan_at = fault_nan_step();
    bool trace = trace_steps();
    int spe = lp->steps_per_epoch, nt = lp->n_loss_terms;
    struct progress pg;
    progress_init(&pg, lp->out, (int64_t)spe * lp->epochs, start_step);
    int start_epoch = (int)(start_step / spe), skip = (int)(start_step % spe);
    for (int e = start_epoch; e < lp->epochs; e++) {
        if ((s = lp->start_epoch(lp->ctx, e))) return s;
        r->lsum = 0;
        memset(r->tsum, 0, sizeof r->tsum);
        r->steps = 0;
        if (e == start_epoch && skip && resumed) restore_partial(lp, r, resumed);
        double te = deft_time_now();
        int64_t steps_here = 0;
        for (int b = 0;; b++) {
            int n = 0;
            if ((s = lp->next_batch(lp->ctx, &n))) return s;
            if (n == 0) break;
            if (e == start_epoch && b < skip) continue;
            float loss;
            if ((int64_t)e * spe + b == nan_at && lp->poison_batch) lp->poison_batch(lp->ctx);
            s = lp->train_step(lp->ctx, n, &loss);
            if (s == DEFT_ERR_NUMERIC) {
                if ((s = on_nonfinite(lp, &pg, e, b, &r->skipped))) return s;
                continue;
            }
            if (s) return s;
            r->lsum += loss;
            const double *terms = deft_trainer_loss_terms(lp->trainer);
            for (int i = 0; i < nt; i++) r->tsum[i] += terms[i];
            r->steps++;
            steps_here++;
            int64_t done = (int64_t)e * spe + b + 1;
            if (trace) fprintf(stderr, "deft: rank %d: step %lld done\n", deft_dist_rank(), (long long)done);
            if (lp->events && ((s = deft_events_scalar(lp->events, "step/loss", done, loss)) ||
                               (s = deft_events_scalar(lp->events, "step/lr", done, (float)deft_lr_at(lp->lr, done - 1)))))
                return s;
            char label[64], tail[160];
            snprintf(label, sizeof label, "epoch %d/%d", e + 1, lp->epochs);
            snprintf(tail, sizeof tail, "step %d/%d loss %.4f lr %.2e %.1f img/s", b + 1, spe,
                     r->lsum / (double)r->steps, deft_lr_at(lp->lr, done - 1),
                     (double)(steps_here * lp->batch) / (deft_time_now() - te));
            progress_update(&pg, label, done, tail, false);
            if (stop_requested(lp)) return interrupted(lp, r, &pg, e, b);
        }
        progress_end(&pg);
        if ((s = end_of_epoch(lp, r, e))) return s;
    }
    return DEFT_OK;
}

/* A resumed checkpoint's run state: the finished epochs' rows, the best
 * score, the elapsed time; status.json and metrics.csv are rewritten from
 * them (they may hold epochs the checkpoint does not, after a kill -9). */
static enum deft_status restore(struct deft_loop *lp, struct run *r, int64_t start_step, struct loop_state *st,
                                bool *have) {
    *have = false;
    const char *js = deft_trainer_resumed_run_state(lp->trainer);
    if (!start_step) return DEFT_OK;
    int done = (int)(start_step / lp->steps_per_epoch);
    if (!js) {
        deft_log(DEFT_LOG_WARN, "the checkpoint has no run history (an older deft, or a best.safetensors): the best "
                 "model, metrics.csv and the plots cover epochs %d to %d only", done + 1, lp->epochs);
        return DEFT_OK;
    }
    *st = (struct loop_state){.width = r->h.width, .hist = r->h.v};
    if (loop_state_from_json(js, lp->epochs, st) || st->epochs_done != (done < lp->epochs ? done : lp->epochs)) {
        deft_log(DEFT_LOG_WARN, "the checkpoint's run history does not fit this run (%s): the best model, "
                 "metrics.csv and the plots cover epochs %d to %d only",
                 deft_last_error()[0] ? deft_last_error() : "another epoch count", done + 1, lp->epochs);
        deft_clear_error();
        for (size_t i = 0; i < (size_t)(lp->epochs + 1) * (size_t)r->h.width; i++) r->h.v[i] = NAN;
        return DEFT_OK;
    }
    *have = true;
    lp->have_best = st->best_epoch > 0 && !isnan(st->best);
    lp->best = lp->have_best ? st->best : NAN;
    lp->best_epoch = lp->have_best ? st->best_epoch : 0;
    r->skipped = st->skipped;
    r->t0 = deft_time_now() - (isfinite(st->time) ? st->time : 0);
    char path[2300];
    const char *files[] = {"status.json", "metrics.csv"};
    for (int i = 0; i < 2 && writer(); i++) {
        snprintf(path, sizeof path, "%s/%s", lp->dir, files[i]);
        remove(path);
    }
    enum deft_status s;
    for (int e = 0; e < st->epochs_done; e++)
        if ((s = report(lp, &r->h, e, false))) return s;
    if (st->epochs_done) write_plots(lp, &r->h, st->epochs_done);
    return DEFT_OK;
}

/* rewritten: restore() rewrote status.json from the checkpoint's history, so a
 * resumed run that had already finished (a kill after its last checkpoint)
 * needs its end line again; without a history the old file kept its own. */
static void write_end(struct deft_loop *lp, struct run *r, enum deft_status s, int64_t start_step, bool rewritten) {
    int done = (int)(deft_trainer_steps(lp->trainer) / lp->steps_per_epoch);
    bool nothing_ran = start_step >= (int64_t)lp->epochs * lp->steps_per_epoch;
    if ((s == DEFT_OK && nothing_ran && !rewritten) || !writer()) return;
    struct deft_run_end end = {.status = s == DEFT_OK ? "finished" : s == DEFT_ERR_CANCELLED ? "interrupted" : "failed",
                               .message = s == DEFT_OK || s == DEFT_ERR_CANCELLED ? NULL : deft_last_error(),
                               .epoch = done < lp->epochs ? done : lp->epochs, .max_epoch = lp->epochs,
                               .time = deft_time_now() - r->t0, .metric = lp->metric.name, .best = lp->best,
                               .best_epoch = lp->have_best ? lp->best_epoch : 0};
    char path[2300], msg[1024] = "";
    if (s) snprintf(msg, sizeof msg, "%s", deft_last_error()); /* the append below may set another error */
    if (end.message) end.message = msg;
    snprintf(path, sizeof path, "%s/status.json", lp->dir);
    if (deft_status_json_end(path, &end)) {
        deft_log(DEFT_LOG_WARN, "status.json: %s", deft_last_error());
        if (s) deft_set_error(s, "%s", msg);
    }
}

enum deft_status deft_loop_run(struct deft_loop *lp, int64_t start_step) {
    if (!lp || !lp->trainer || !lp->start_epoch || !lp->next_batch || !lp->train_step || !lp->lr ||
        lp->steps_per_epoch < 1 || lp->epochs < 0 || lp->n_loss_terms < 0 || lp->n_loss_terms > DEFT_MAX_LOSS_TERMS ||
        lp->n_train_metrics < 0 || lp->n_train_metrics > DEFT_LOOP_MAX_METRICS || lp->n_val_metrics < 0 ||
        lp->n_val_metrics > DEFT_LOOP_MAX_METRICS || start_step < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_loop_run: incomplete loop description");
    if (!lp->out) lp->out = stdout;
    lp->best = NAN;
    lp->have_best = false;
    lp->best_epoch = 0;
    struct run r = {.h = {.width = hist_width(lp)}, .t0 = deft_time_now()};
    size_t n = (size_t)(lp->epochs + 1) * (size_t)r.h.width;
    r.h.v = deft_malloc(n * sizeof(double));
    if (!r.h.v) return deft_set_error(DEFT_ERR_NOMEM, "out of memory for the training history");
    for (size_t i = 0; i < n; i++) r.h.v[i] = NAN;
    struct loop_state st;
    bool have = false;
    enum deft_status s = restore(lp, &r, start_step, &st, &have);
    if (!s) s = run_epochs(lp, &r, start_step, have ? &st : NULL);
    write_end(lp, &r, s, start_step, have);
    deft_free(r.h.v);
    return s;
}

/* test_train_loop.c - the shared training loop with a host loss of two named
 * terms (as detection's) and a minimized validation metric: status.json and
 * metrics.csv carry the per-epoch means of the terms (recomputed here from the
 * values the hook saw), best.safetensors follows the lowest score, and
 * epoch checkpoints are named <network>_<arch>_epoch_NNN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft_test.h"
#include "deft/loop.h"

enum { B = 2, EPOCHS = 3, SPE = 4 };

struct run {
    struct deft_trainer *t;
    float x[B * 3 * 8 * 8];
    int b;
    double term_sum[EPOCHS][2];
    int epoch;
    struct deft_loop_metric val[2];
};

static enum deft_status host(void *user, int n, const float *const *outs, const struct deft_shape *shapes,
                             const void *targets, float *const *grads, double *loss, double *terms) {
    struct run *r = user;
    (void)targets;
    *loss = 0;
    for (int i = 0; i < n; i++) {
        size_t m = (size_t)deft_shape_numel(&shapes[i]);
        double s = 0;
        for (size_t k = 0; k < m; k++) {
            s += (double)outs[i][k] * outs[i][k];
            grads[i][k] = (float)(2.0 * outs[i][k] / (double)m);
        }
        terms[i] = s / (double)m;
        *loss += terms[i];
        r->term_sum[r->epoch][i] += terms[i];
    }
    return DEFT_OK;
}

static enum deft_status start_epoch(void *ctx, int e) {
    struct run *r = ctx;
    r->b = 0;
    r->epoch = e;
    return DEFT_OK;
}
static enum deft_status next_batch(void *ctx, int *n) {
    struct run *r = ctx;
    *n = r->b < SPE ? B : 0;
    for (size_t i = 0; i < sizeof r->x / sizeof r->x[0]; i++)
        r->x[i] = deft_rng_normal(5, (uint64_t)(r->epoch * SPE + r->b), (uint64_t)i);
    r->b++;
    return DEFT_OK;
}
static enum deft_status train_step(void *ctx, int n, float *loss) {
    struct run *r = ctx;
    (void)n;
    return deft_trainer_step_targets(r->t, r->x, NULL, loss);
}
/* score: 5, 3, 4 -> best after epoch 2 (minimized) */
static enum deft_status validate(void *ctx, int e, double *score) {
    struct run *r = ctx;
    static const double sc[EPOCHS] = {5, 3, 4};
    r->val[0].value = 0.5;
    r->val[1].value = *score = sc[e];
    return DEFT_OK;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 16);
    size_t n = fread(b, 1, (1 << 16) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

int main(void) {
    struct run r = {0};
    struct deft_graph *g = NULL;
    CHECK_OK(deft_graph_create(&g));
    struct deft_conv_attr c = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int x = deft_input(g, "images", deft_shape4(B, 3, 8, 8));
    int a = deft_conv2d(g, "a", x, 2, 3, 3, &c, true), b = deft_conv2d(g, "b", x, 3, 3, 3, &c, true);
    deft_graph_value_mut(g, a)->flags |= DEFT_VF_OUTPUT;
    deft_graph_value_mut(g, b)->flags |= DEFT_VF_OUTPUT;
    struct deft_lr_schedule lr = {.lr = 0.01f};
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){.model = {.batch = B}, .optim = {.kind = DEFT_OPTIM_SGD},
                                                             .lr = lr, .seed = 1, .graph = g, .host_loss = host,
                                                             .host_loss_user = &r}, &r.t));
    if (!r.t) return test_summary();
    const char *dir = test_tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/weights", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/plots", dir);
    mkdir(p, 0777);
    static const char *const terms[] = {"loss_a", "loss_b"};
    r.val[0] = (struct deft_loop_metric){"loss", "val loss", 0};
    r.val[1] = (struct deft_loop_metric){"mAP_err", "val err", 0};
    FILE *out = fopen("/dev/null", "w");
    struct deft_loop lp = {.trainer = r.t, .network = "yolo_v4", .arch = "tiny", .dir = dir, .epochs = EPOCHS,
                           .steps_per_epoch = SPE, .batch = B, .lr = &lr, .checkpoint_interval = 2,
                           .metric = {"mAP_err", "err", false}, .loss_terms = terms, .n_loss_terms = 2,
                           .val_metrics = r.val, .n_val_metrics = 2, .metric_plot = "err", .out = out, .ctx = &r,
                           .start_epoch = start_epoch, .next_batch = next_batch, .train_step = train_step,
                           .validate = validate};
    CHECK_OK(deft_loop_run(&lp, 0));
    fclose(out);
    CHECK(lp.have_best && lp.best == 3, "best (minimized) score 3, got %g", lp.best);

    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    char *csv = slurp(p);
    CHECK(csv && !strncmp(csv, "epoch,step,loss,lr,time,loss_a,loss_b,val_loss,val_mAP_err\n", 59),
          "metrics.csv header: %.80s", csv ? csv : "(none)");
    int rows = 0;
    for (char *l = csv ? strchr(csv, '\n') : NULL; l && l[1]; l = strchr(l + 1, '\n')) {
        int e;
        long long st;
        double loss, lrv, tm, la, lb;
        if (sscanf(l + 1, "%d,%lld,%lf,%lf,%lf,%lf,%lf", &e, &st, &loss, &lrv, &tm, &la, &lb) == 7 && e >= 1 &&
            e <= EPOCHS) {
            rows++;
            double ea = r.term_sum[e - 1][0] / SPE, eb = r.term_sum[e - 1][1] / SPE;
            CHECK(fabs(la - ea) <= 1e-5 * fabs(ea) + 1e-9 && fabs(lb - eb) <= 1e-5 * fabs(eb) + 1e-9,
                  "epoch %d terms %g %g, expected %g %g", e, la, lb, ea, eb);
            CHECK(fabs(loss - (ea + eb)) <= 1e-4 * (ea + eb), "epoch %d loss %g = sum of terms %g", e, loss, ea + eb);
            CHECK(st == (long long)e * SPE, "step column");
        }
    }
    CHECK(rows == EPOCHS, "%d rows", rows);
    snprintf(p, sizeof p, "%s/status.json", dir);
    char *js = slurp(p);
    CHECK(js && strstr(js, "\"loss_a\"") && strstr(js, "\"mAP_err\""), "status.json has the terms and the metric");
    struct stat st;
    snprintf(p, sizeof p, "%s/weights/best.safetensors", dir);
    CHECK(stat(p, &st) == 0, "best.safetensors");
    snprintf(p, sizeof p, "%s/weights/yolo_v4_tiny_epoch_002.safetensors", dir);
    CHECK(stat(p, &st) == 0, "epoch checkpoint named after network and arch");
    free(csv);
    free(js);
    deft_trainer_free(r.t);
    deft_graph_free(g);
    return test_summary();
}

/* test_gradcheck.c - every op's gradient, end to end through autograd.
 *
 * Each case is a tiny graph built with the public builders: random INPUT
 * value(s) -> one op -> (unless the op is itself a loss) an L2 loss against a
 * random target INPUT, so every output element gets a nonzero gradient.
 * deft_autograd (with input_grads) appends the backward graph and a runtime
 * runs it with loss_grad = 1. Besides every op (conv2d with stride, 4-sided
 * padding, dilation, groups, depthwise and bias; conv_transpose2d; batchnorm
 * train / eval / frozen; the activations; pooling; add / mul with broadcasting;
 * concat, slice, pad, reshape, flatten, transpose; upsample; linear; dropout; softmax; the
 * losses) there are cases with frozen params (only the data gradient is made)
 * and with a value used twice (mul(a, a): gradients summed by an ADD node).
 *
 *  (a) Finite differences, "ref" backend: for up to FD_MAX coordinates of
 *      every input and trainable param, the central difference
 *      (L(x+h) - L(x-h)) / 2h from forward-only runs (nodes [0, n_forward))
 *      against the analytic gradient. The error is relative to the tensor's
 *      gradient scale, |fd - an| / max(max|an|, |fd|) <= FD_TOL. Coordinates
 *      within 2h of a kink are skipped (relu/leaky at 0, relu6 at 0 and 6,
 *      hardswish at +-3, L1 at x = t, smooth-L1 at x - t = +-beta); max-pool
 *      inputs are distinct values spaced wider than 2h so no window has a
 *      near-tie. Dropout's mask is a function of the step counter, fixed here,
 *      so it is the same in every run.
 *  (b) PyTorch (tests/ref/gen_autograd.py, float64, one process for all cases,
 *      the same inputs/params/target as .npy): the op's output and the loss
 *      (max rel err <= 1e-4) and the gradient of every input and param
 *      (<= 1e-3), on both the "ref" and the "cpu" (oneDNN) backend.
 *  (c) The checker itself: deliberately wrong backward rules (sigmoid's
 *      ACT_BWD computing tanh's derivative, a train-mode BATCHNORM_BWD run as
 *      FROZEN, leaky relu's ACT_BWD with a doubled slope) must make (a) report
 *      mismatches.
 *
 * One line per op label is printed: worst forward / backward error against
 * PyTorch on each backend, worst FD error, and FD coordinates checked/skipped.
 */
#include <stdarg.h>
#include <string.h>
#include "deft_test.h"
#include "deft/autograd.h"

#define TOL_FWD 1e-4
#define TOL_BWD 1e-3
#define FD_TOL 1e-2
#define FD_MAX 30       /* coordinates per tensor */
#define FD_STEP 5e-3    /* h = FD_STEP * max(1, |x|) */
#define MAX_DIFF 8
#define MAX_CASES 96
#define RUN_STEP 3      /* runtime step counter (fixes the dropout mask) */
#define NB 2

static const char *const BACKENDS[NB] = {"ref", "cpu"};

enum kink { K_NONE = 0, K_X, K_XMT, K_MAXPOOL };

struct gcase {
    char name[48], label[32], op[24], args[320];
    struct deft_graph *g;
    int n_fwd;                       /* forward nodes (the loss included) */
    int fwd_node, y, loss, target, nv;
    float **host;                    /* data of every INPUT / PARAM / STATE value */
    int ndiff, diff[MAX_DIFF], grad[MAX_DIFF]; /* values with gradients, their gradients */
    enum kink kink;                  /* kinks of the op in coordinates of kink_v */
    int kink_v, nkinks;
    float kinks[4];
    float *aux;                      /* extra reference input (dropout mask) */
    char aux_key[16];
    bool ok, ran[NB];
    float *res_y[NB], *res_loss[NB], *res_grad[NB][MAX_DIFF];
};

static struct gcase *cases[MAX_CASES];
static int n_cases;
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

/* Uniform in [-1, 1). */
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* ---- per-op statistics ---------------------------------------------------- */

static struct {
    char label[32];
    int cases;
    double fwd[NB], bwd[NB], fd;
    bool torch[NB];
    int fd_checked, fd_skipped;
} stats[64];
static int n_stats;

static int stat_of(const char *label) {
    int i;
    for (i = 0; i < n_stats; i++)
        if (strcmp(stats[i].label, label) == 0) return i;
    if (n_stats == (int)(sizeof stats / sizeof stats[0])) return 0;
    memset(&stats[i], 0, sizeof stats[i]);
    snprintf(stats[i].label, sizeof stats[i].label, "%s", label);
    n_stats++;
    return i;
}

static double worse(double a, double b) { return (b > a || b != b) ? b : a; }

/* ---- case plumbing -------------------------------------------------------- */

static const struct deft_value *V(const struct gcase *c, int v) { return deft_graph_value(c->g, v); }
static int64_t numel(const struct gcase *c, int v) { return deft_shape_numel(&V(c, v)->shape); }
static float *H(struct gcase *c, int v) { return c->host[v]; }
static int fwd_in(const struct gcase *c, int i) { return deft_graph_node(c->g, c->fwd_node)->in[i]; }

static void gc_free(struct gcase *c) {
    if (!c) return;
    for (int v = 0; c->host && v < c->nv; v++) free(c->host[v]);
    free(c->host);
    for (int b = 0; b < NB; b++) {
        free(c->res_y[b]);
        free(c->res_loss[b]);
        for (int k = 0; k < MAX_DIFF; k++) free(c->res_grad[b][k]);
    }
    free(c->aux);
    deft_graph_free(c->g);
    free(c);
}

static struct gcase *gc_new(const char *name, const char *label, const char *op) {
    struct gcase *c = calloc(1, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->label, sizeof c->label, "%s", label);
    snprintf(c->op, sizeof c->op, "%s", op);
    c->y = c->loss = c->target = c->fwd_node = c->kink_v = -1;
    enum deft_status s = deft_graph_create(&c->g);
    CHECK(s == DEFT_OK, "%s: graph_create: %s", name, deft_last_error());
    if (s) {
        free(c);
        return NULL;
    }
    return c;
}

static void gc_args(struct gcase *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->args, sizeof c->args, fmt, ap);
    va_end(ap);
}

static void gc_kinks(struct gcase *c, enum kink k, int v, int n, const float *at) {
    c->kink = k;
    c->kink_v = v;
    c->nkinks = n;
    for (int i = 0; i < n && i < 4; i++) c->kinks[i] = at[i];
}

/* After the op's builder: the L2 loss (unless y is a loss), autograd, random
 * data for every input / param / state. Returns NULL (and frees) on failure. */
static struct gcase *gc_finish(struct gcase *c, int y) {
    if (!c) return NULL;
    struct deft_graph *g = c->g;
    if (deft_graph_status(g) || y < 0) {
        CHECK(0, "%s: building the graph: %s", c->name, deft_last_error());
        gc_free(c);
        return NULL;
    }
    c->y = y;
    c->fwd_node = V(c, y)->producer;
    if (deft_graph_node(g, c->fwd_node)->op == DEFT_OP_LOSS) {
        c->loss = y;
    } else {
        c->target = deft_input(g, "target", V(c, y)->shape);
        c->loss = deft_loss(g, "l2", y, c->target, &(struct deft_loss_attr){.kind = DEFT_LOSS_L2});
    }
    if (deft_graph_status(g)) {
        CHECK(0, "%s: adding the loss: %s", c->name, deft_last_error());
        gc_free(c);
        return NULL;
    }
    /* readable after the whole forward + backward run */
    deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
    deft_graph_value_mut(g, c->loss)->flags |= DEFT_VF_OUTPUT;
    c->n_fwd = deft_graph_num_nodes(g);
    int nv0 = deft_graph_num_values(g);
    enum deft_status s = deft_autograd(g, c->loss, &(struct deft_autograd_opts){.input_grads = true});
    CHECK(s == DEFT_OK, "%s: autograd: %s", c->name, deft_last_error());
    if (s) {
        gc_free(c);
        return NULL;
    }
    for (int v = 0; v < nv0; v++) {
        const struct deft_value *val = V(c, v);
        if (val->kind != DEFT_VALUE_INPUT && val->kind != DEFT_VALUE_PARAM) continue;
        int gv = deft_grad_of(g, v);
        if (gv < 0) continue;
        if (c->ndiff == MAX_DIFF) break;
        c->diff[c->ndiff] = v;
        c->grad[c->ndiff++] = gv;
    }
    CHECK(c->ndiff > 0, "%s: autograd made no gradients", c->name);
    c->nv = deft_graph_num_values(g);
    c->host = calloc((size_t)c->nv, sizeof *c->host);
    for (int v = 0; v < c->nv; v++) {
        const struct deft_value *val = V(c, v);
        if (val->kind == DEFT_VALUE_NODE) continue;
        int64_t n = numel(c, v);
        c->host[v] = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
        bool var = strstr(val->name, "running_var") != NULL;
        for (int64_t i = 0; i < n; i++) {
            float u = frand();
            c->host[v][i] = strcmp(val->name, "loss_grad") == 0 ? 1.0f
                            : var                               ? 1.0f + 0.5f * u
                                                                : u;
        }
    }
    c->ok = c->ndiff > 0;
    return c;
}

static struct deft_runtime *gc_runtime(struct gcase *c, const char *backend) {
    struct deft_runtime *rt = NULL;
    enum deft_status s =
        deft_runtime_create(c->g, &(struct deft_runtime_opts){.backend = backend}, &rt);
    CHECK(s == DEFT_OK, "%s [%s]: runtime_create: %s", c->name, backend, deft_last_error());
    if (rt) deft_runtime_set_step(rt, RUN_STEP);
    return rt;
}

/* Copy every input / param / state into the runtime (BN in train mode updates
 * its running statistics on each forward; reloading keeps runs identical). */
static bool gc_load(struct gcase *c, struct deft_runtime *rt) {
    for (int v = 0; v < c->nv; v++) {
        if (!c->host[v]) continue;
        size_t n = (size_t)numel(c, v);
        if (V(c, v)->kind == DEFT_VALUE_INPUT) {
            enum deft_status s = deft_runtime_set_input(rt, v, c->host[v], n);
            CHECK(s == DEFT_OK, "%s: set_input %s: %s", c->name, V(c, v)->name, deft_last_error());
            if (s) return false;
        } else {
            float *d = deft_runtime_data(rt, v);
            CHECK(d != NULL, "%s: no data for %s", c->name, V(c, v)->name);
            if (!d) return false;
            memcpy(d, c->host[v], n * sizeof(float));
        }
    }
    return true;
}

/* Loss after running only the forward nodes. */
static bool gc_forward_loss(struct gcase *c, struct deft_runtime *rt, double *loss) {
    float l = NAN;
    if (!gc_load(c, rt)) return false;
    enum deft_status s = deft_runtime_run_range(rt, 0, c->n_fwd);
    if (!s) s = deft_runtime_read(rt, c->loss, &l, 1);
    CHECK(s == DEFT_OK, "%s: forward: %s", c->name, deft_last_error());
    *loss = l;
    return s == DEFT_OK;
}

/* Full forward + backward run; the gradients into grads[k] (numel of diff[k]). */
static bool gc_run_full(struct gcase *c, struct deft_runtime *rt, float **grads) {
    if (!gc_load(c, rt)) return false;
    enum deft_status s = deft_runtime_run(rt);
    CHECK(s == DEFT_OK, "%s: run: %s", c->name, deft_last_error());
    if (s) return false;
    for (int k = 0; k < c->ndiff; k++) {
        int v = c->diff[k];
        size_t n = (size_t)numel(c, v);
        if (V(c, v)->kind == DEFT_VALUE_PARAM) {
            const float *gp = deft_runtime_grad(rt, v);
            CHECK(gp != NULL, "%s: no gradient block for %s", c->name, V(c, v)->name);
            if (!gp) return false;
            memcpy(grads[k], gp, n * sizeof(float));
        } else {
            s = deft_runtime_read(rt, c->grad[k], grads[k], n);
            CHECK(s == DEFT_OK, "%s: read %s: %s", c->name, V(c, c->grad[k])->name,
                  deft_last_error());
            if (s) return false;
        }
    }
    return true;
}

/* ---- (a) the finite-difference checker ------------------------------------- */

struct fd_result { double worst; int checked, skipped, bad; };

/* Is coordinate i of value v within 2h of a kink of the op? */
static bool fd_skip(const struct gcase *c, int v, int64_t i, double h) {
    if (v != c->kink_v) return false;
    const float *x = c->host[v];
    double xv = x[i];
    switch (c->kink) {
    case K_X:
        for (int k = 0; k < c->nkinks; k++)
            if (fabs(xv - c->kinks[k]) < 2 * h) return true;
        return false;
    case K_XMT: {
        double d = xv - c->host[c->target][i];
        for (int k = 0; k < c->nkinks; k++)
            if (fabs(d - c->kinks[k]) < 2 * h) return true;
        return false;
    }
    case K_MAXPOOL: { /* a near-tie with any element of the same plane */
        const struct deft_shape *s = &V(c, v)->shape;
        int64_t plane = s->d[2] * s->d[3], base = i / plane * plane;
        for (int64_t j = base; j < base + plane; j++)
            if (j != i && fabs((double)x[j] - xv) < 2 * h) return true;
        return false;
    }
    default: return false;
    }
}

/* Central differences of the loss for up to FD_MAX coordinates of every value
 * with a gradient, against the analytic gradients an[k]. Returns the number of
 * coordinates that disagree (0 = the gradients are right). */
static int fd_check(struct gcase *c, struct deft_runtime *rt, float *const *an,
                    struct fd_result *r, bool verbose) {
    memset(r, 0, sizeof *r);
    uint64_t pick = 0x9e3779b97f4a7c15ull;
    for (const char *p = c->name; *p; p++) pick = (pick ^ (uint64_t)*p) * 0x100000001b3ull;
    for (int k = 0; k < c->ndiff; k++) {
        int v = c->diff[k];
        int64_t n = numel(c, v);
        double gscale = 0;
        for (int64_t i = 0; i < n; i++) gscale = fmax(gscale, fabs((double)an[k][i]));
        int64_t cnt = n < FD_MAX ? n : FD_MAX;
        for (int64_t j = 0; j < cnt; j++) {
            int64_t i = j;
            if (n > FD_MAX) { /* one random coordinate from each of FD_MAX equal buckets */
                int64_t lo = j * n / FD_MAX, hi = (j + 1) * n / FD_MAX;
                pick = pick * 6364136223846793005ull + 1442695040888963407ull;
                i = lo + (int64_t)((pick >> 33) % (uint64_t)(hi - lo));
            }
            float x0 = c->host[v][i];
            double h = FD_STEP * fmax(1.0, fabs((double)x0));
            if (fd_skip(c, v, i, h)) {
                r->skipped++;
                continue;
            }
            float xp = (float)(x0 + h), xm = (float)(x0 - h);
            double lp = 0, lm = 0;
            c->host[v][i] = xp;
            bool ok = gc_forward_loss(c, rt, &lp);
            c->host[v][i] = xm;
            ok = ok && gc_forward_loss(c, rt, &lm);
            c->host[v][i] = x0;
            if (!ok) {
                r->bad++;
                return r->bad;
            }
            double fd = (lp - lm) / ((double)xp - (double)xm);
            double denom = fmax(fmax(gscale, fabs(fd)), 1e-30);
            double err = fabs(fd - (double)an[k][i]) / denom;
            r->worst = worse(r->worst, err);
            r->checked++;
            if (!(err <= FD_TOL)) {
                r->bad++;
                if (verbose && r->bad <= 4)
                    printf("  %s: d loss / d %s[%lld]: finite difference %.6g, analytic %.6g "
                           "(err %.3g of scale %.3g)\n",
                           c->name, V(c, v)->name, (long long)i, fd, (double)an[k][i], err,
                           gscale);
            }
        }
    }
    return r->bad;
}

/* ---- running a case -------------------------------------------------------- */

static void save_npy(struct gcase *c, const char *key, const float *data,
                     const struct deft_shape *s) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s.npy", test_tmpdir(), c->name, key);
    CHECK(test_npy_write(path, data, s->d, s->ndim) == 0, "cannot write %s", path);
}

/* Both backends: forward output, loss and gradients (kept for the PyTorch
 * comparison); the FD check on ref; the inputs as .npy + a manifest line. */
static void gc_run(struct gcase *c, FILE *manifest) {
    if (!c->ok) return;
    int st = stat_of(c->label);
    stats[st].cases++;
    for (int b = 0; b < NB; b++) {
        struct deft_runtime *rt = gc_runtime(c, BACKENDS[b]);
        if (!rt) continue;
        c->res_y[b] = malloc((size_t)numel(c, c->y) * sizeof(float));
        c->res_loss[b] = malloc(sizeof(float));
        for (int k = 0; k < c->ndiff; k++)
            c->res_grad[b][k] = malloc((size_t)numel(c, c->diff[k]) * sizeof(float));
        bool ok = gc_run_full(c, rt, c->res_grad[b]);
        if (ok) {
            enum deft_status s = deft_runtime_read(rt, c->y, c->res_y[b], (size_t)numel(c, c->y));
            if (!s) s = deft_runtime_read(rt, c->loss, c->res_loss[b], 1);
            CHECK(s == DEFT_OK, "%s [%s]: read: %s", c->name, BACKENDS[b], deft_last_error());
            ok = s == DEFT_OK;
        }
        c->ran[b] = ok;
        if (ok && b == 0) {
            struct fd_result r;
            int bad = fd_check(c, rt, c->res_grad[0], &r, true);
            CHECK(bad == 0, "%s: %d of %d coordinates disagree with finite differences", c->name,
                  bad, r.checked);
            stats[st].fd = worse(stats[st].fd, r.worst);
            stats[st].fd_checked += r.checked;
            stats[st].fd_skipped += r.skipped;
        }
        deft_runtime_free(rt);
    }
    if (!manifest) return;
    for (int v = 0; v < c->nv; v++)
        if (c->host[v] && strcmp(V(c, v)->name, "loss_grad") != 0)
            save_npy(c, V(c, v)->name, c->host[v], &V(c, v)->shape);
    if (c->aux) save_npy(c, c->aux_key, c->aux, &V(c, c->y)->shape);
    fprintf(manifest, "%s %s grads=", c->name, c->op);
    for (int k = 0; k < c->ndiff; k++) fprintf(manifest, "%s%s", k ? "," : "", V(c, c->diff[k])->name);
    fprintf(manifest, " %s\n", c->args);
}

/* ---- (b) against PyTorch ---------------------------------------------------- */

static float *read_ref(struct gcase *c, const char *key, int64_t want) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.ref.%s.npy", test_tmpdir(), c->name, key);
    int64_t shape[8];
    int nd = 0;
    float *ref = test_npy_read(path, shape, &nd);
    CHECK(ref != NULL, "%s: no reference %s (see gen_autograd.py's output)", c->name, key);
    if (!ref) return NULL;
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    CHECK(n == want, "%s.%s: %lld elements, reference has %lld", c->name, key, (long long)want,
          (long long)n);
    if (n != want) {
        free(ref);
        return NULL;
    }
    return ref;
}

static double cmp_one(struct gcase *c, int b, const char *what, const float *ours,
                      const float *ref, int64_t n, double tol) {
    double err = test_max_rel_err(ours, ref, (size_t)n);
    CHECK(err <= tol, "%s [%s] %s: max rel err %.3g vs PyTorch > %.0e", c->name, BACKENDS[b], what,
          err, tol);
    if (!(err <= tol)) {
        int64_t wi = 0;
        double wd = -1;
        for (int64_t j = 0; j < n; j++) {
            double d = fabs((double)ours[j] - (double)ref[j]);
            if (d > wd || d != d) wd = d, wi = j;
        }
        printf("    worst at [%lld]: ours %.9g, torch %.9g\n", (long long)wi, (double)ours[wi],
               (double)ref[wi]);
    }
    return err;
}

static void gc_compare(struct gcase *c) {
    if (!c->ok) return;
    int st = stat_of(c->label);
    int64_t ny = numel(c, c->y);
    float *ry = read_ref(c, "y", ny), *rl = read_ref(c, "loss", 1);
    float *rg[MAX_DIFF] = {0};
    for (int k = 0; k < c->ndiff; k++) {
        char key[80];
        snprintf(key, sizeof key, "grad.%s", V(c, c->diff[k])->name);
        rg[k] = read_ref(c, key, numel(c, c->diff[k]));
    }
    for (int b = 0; b < NB; b++) {
        if (!c->ran[b]) continue;
        double fwd = 0, bwd = 0;
        if (ry) fwd = worse(fwd, cmp_one(c, b, "output", c->res_y[b], ry, ny, TOL_FWD));
        if (rl) fwd = worse(fwd, cmp_one(c, b, "loss", c->res_loss[b], rl, 1, TOL_FWD));
        for (int k = 0; k < c->ndiff; k++) {
            if (!rg[k]) {
                bwd = INFINITY;
                continue;
            }
            char what[80];
            snprintf(what, sizeof what, "d loss / d %s", V(c, c->diff[k])->name);
            bwd = worse(bwd, cmp_one(c, b, what, c->res_grad[b][k], rg[k], numel(c, c->diff[k]),
                                     TOL_BWD));
        }
        if (!ry || !rl) fwd = INFINITY;
        stats[st].fwd[b] = worse(stats[st].fwd[b], fwd);
        stats[st].bwd[b] = worse(stats[st].bwd[b], bwd);
        stats[st].torch[b] = true;
    }
    free(ry);
    free(rl);
    for (int k = 0; k < c->ndiff; k++) free(rg[k]);
}

/* ---- cases ------------------------------------------------------------------- */

static struct deft_conv_attr CA(int sh, int sw, int pt, int pl, int pb, int pr, int dh, int dw,
                                int groups) {
    return (struct deft_conv_attr){.stride = {sh, sw}, .pad = {pt, pl, pb, pr},
                                   .dilation = {dh, dw}, .groups = groups};
}

static struct gcase *case_conv(const char *name, bool transposed, struct deft_shape xs, int k,
                               int r, int s, struct deft_conv_attr a, bool bias) {
    const char *op = transposed ? "conv_transpose2d" : "conv2d";
    struct gcase *c = gc_new(name, op, op);
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    int y = transposed ? deft_conv_transpose2d(c->g, "conv", x, k, r, s, &a, bias)
                       : deft_conv2d(c->g, "conv", x, k, r, s, &a, bias);
    const struct deft_shape *ys = y >= 0 ? &V(c, y)->shape : &xs;
    gc_args(c, "stride=%d,%d pad=%d,%d,%d,%d dil=%d,%d groups=%d opad=%d,%d out=%lld,%lld",
            a.stride[0], a.stride[1], a.pad[0], a.pad[1], a.pad[2], a.pad[3], a.dilation[0],
            a.dilation[1], a.groups, a.output_padding[0], a.output_padding[1],
            (long long)ys->d[2], (long long)ys->d[3]);
    return gc_finish(c, y);
}

static struct gcase *case_bn(const char *name, struct deft_shape xs, enum deft_bn_mode mode,
                             float eps, float momentum) {
    static const char *const label[] = {"batchnorm_train", "batchnorm_eval", "batchnorm_frozen"};
    struct gcase *c = gc_new(name, label[mode], "batchnorm");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    int y = deft_batchnorm_ex(c->g, "bn", x,
                              &(struct deft_bn_attr){.eps = eps, .momentum = momentum, .mode = mode});
    gc_args(c, "mode=%d eps=%.9g momentum=%.9g", (int)mode, (double)eps, (double)momentum);
    if (!(c = gc_finish(c, y))) return NULL;
    for (int64_t i = 0; i < numel(c, x); i++) H(c, x)[i] = 2.0f * H(c, x)[i] + 0.5f;
    int gamma = fwd_in(c, 1), rmean = fwd_in(c, 3);
    for (int64_t i = 0; i < numel(c, gamma); i++) {
        H(c, gamma)[i] = 1.0f + 0.5f * H(c, gamma)[i];
        H(c, rmean)[i] = 0.5f * H(c, rmean)[i] + 0.5f;
    }
    return c;
}

static struct gcase *case_act(enum deft_act_kind kind) {
    const char *nm = deft_act_name(kind);
    struct gcase *c = gc_new(nm, nm, "act");
    if (!c) return NULL;
    float alpha = kind == DEFT_ACT_LEAKY_RELU ? 0.1f : kind == DEFT_ACT_ELU ? 1.0f : 0.0f;
    int x = deft_input(c->g, "x", deft_shape4(2, 3, 4, 5));
    int y = deft_act(c->g, "act", x, kind, alpha);
    gc_args(c, "kind=%d alpha=%.9g", (int)kind, (double)alpha);
    if (!(c = gc_finish(c, y))) return NULL;
    /* relu6 and hardswish: span their kinks at 6 and +-3 */
    float scale = kind == DEFT_ACT_RELU6 || kind == DEFT_ACT_HARDSWISH ? 8.0f : 4.0f;
    for (int64_t i = 0; i < numel(c, x); i++) H(c, x)[i] *= scale;
    if (kind == DEFT_ACT_LOG || kind == DEFT_ACT_SQRT || kind == DEFT_ACT_RECIPROCAL) /* their domain */
        for (int64_t i = 0; i < numel(c, x); i++) H(c, x)[i] = fabsf(H(c, x)[i]) + 0.5f;
    if (kind == DEFT_ACT_EXP) /* e^4 would dominate the loss's scale */
        for (int64_t i = 0; i < numel(c, x); i++) H(c, x)[i] *= 0.5f;
    switch (kind) {
    case DEFT_ACT_RELU:
    case DEFT_ACT_LEAKY_RELU: gc_kinks(c, K_X, x, 1, (float[]){0}); break;
    case DEFT_ACT_RELU6: gc_kinks(c, K_X, x, 2, (float[]){0, 6}); break;
    case DEFT_ACT_HARDSWISH: gc_kinks(c, K_X, x, 2, (float[]){-3, 3}); break;
    case DEFT_ACT_ABS:
    case DEFT_ACT_ELU: gc_kinks(c, K_X, x, 1, (float[]){0}); break;
    default: break;
    }
    return c;
}

static struct deft_pool_attr PA(enum deft_pool_kind kind, int kh, int kw, int sh, int sw, int ph,
                                int pw, bool cip, bool ceil) {
    return (struct deft_pool_attr){.kind = kind, .kernel = {kh, kw}, .stride = {sh, sw},
                                   .pad = {ph, pw, ph, pw}, .count_include_pad = cip,
                                   .ceil_mode = ceil};
}

static struct gcase *case_pool(const char *name, struct deft_shape xs, struct deft_pool_attr a) {
    bool max = a.kind == DEFT_POOL_MAX;
    struct gcase *c = gc_new(name, max ? "maxpool" : "avgpool", "pool");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    int y = deft_pool(c->g, "pool", x, &a);
    gc_args(c, "kind=%d kernel=%d,%d stride=%d,%d pad=%d,%d,%d,%d cip=%d ceil=%d", (int)a.kind,
            a.kernel[0], a.kernel[1], a.stride[0], a.stride[1], a.pad[0], a.pad[1], a.pad[2],
            a.pad[3], (int)a.count_include_pad, (int)a.ceil_mode);
    if (!(c = gc_finish(c, y)) || !max) return c;
    /* Max pooling: each plane holds a random permutation of values 0.05 apart,
     * so no window has a near-tie that a step of h could flip. */
    int64_t plane = xs.d[2] * xs.d[3];
    for (int64_t p = 0; p < numel(c, x) / plane; p++) {
        float *xp = H(c, x) + p * plane;
        for (int64_t i = 0; i < plane; i++) xp[i] = 0.05f * (float)(i - plane / 2);
        for (int64_t i = plane - 1; i > 0; i--) {
            int64_t j = (int64_t)((frand() + 1.0f) * 0.5f * (float)(i + 1));
            if (j > i) j = i;
            float t = xp[i];
            xp[i] = xp[j];
            xp[j] = t;
        }
    }
    gc_kinks(c, K_MAXPOOL, x, 0, NULL);
    return c;
}

static struct gcase *case_gap(void) {
    struct gcase *c = gc_new("global_avgpool", "global_avgpool", "global_avgpool");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", deft_shape4(2, 3, 5, 7));
    return gc_finish(c, deft_global_avgpool(c->g, "gap", x));
}

static struct gcase *case_binary(const char *name, bool mul, struct deft_shape as,
                                 struct deft_shape bs) {
    struct gcase *c = gc_new(name, mul ? "mul" : "add", mul ? "mul" : "add");
    if (!c) return NULL;
    int a = deft_input(c->g, "a", as), b = deft_input(c->g, "b", bs);
    return gc_finish(c, mul ? deft_mul(c->g, "op", a, b) : deft_add(c->g, "op", a, b));
}

static struct gcase *case_concat(const char *name, int axis, const struct deft_shape *xs, int n) {
    struct gcase *c = gc_new(name, "concat", "concat");
    if (!c) return NULL;
    int in[8];
    for (int i = 0; i < n; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", i);
        in[i] = deft_input(c->g, nm, xs[i]);
    }
    gc_args(c, "n=%d axis=%d", n, axis);
    return gc_finish(c, deft_concat(c->g, "cat", in, n, axis));
}

static void fmt_list(char *buf, size_t n, const int64_t *v, int cnt) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < cnt && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)v[i]);
}

/* A slice along one axis (the builder) or along several (a SLICE node). */
static struct gcase *case_slice(const char *name, struct deft_shape xs, const int64_t *start,
                                const int64_t *end, int axis) {
    struct gcase *c = gc_new(name, "slice", "slice");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    int y = -1;
    if (axis >= 0) {
        y = deft_slice(c->g, "slice", x, axis, start[axis], end[axis]);
    } else {
        struct deft_attr at = {0};
        for (int d = 0; d < xs.ndim; d++) at.slice.start[d] = start[d], at.slice.end[d] = end[d];
        int n = deft_graph_add_node(c->g, DEFT_OP_SLICE, "slice", &x, 1, &at);
        y = n >= 0 ? deft_graph_node(c->g, n)->out[0] : -1;
    }
    char s0[64], s1[64];
    fmt_list(s0, sizeof s0, start, xs.ndim);
    fmt_list(s1, sizeof s1, end, xs.ndim);
    gc_args(c, "start=%s end=%s", s0, s1);
    return gc_finish(c, y);
}

static struct gcase *case_pad(const char *name, struct deft_shape xs, struct deft_pad_attr pa) {
    struct gcase *c = gc_new(name, "pad", "pad");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    char s0[64], s1[64];
    fmt_list(s0, sizeof s0, pa.before, xs.ndim);
    fmt_list(s1, sizeof s1, pa.after, xs.ndim);
    gc_args(c, "before=%s after=%s", s0, s1);
    return gc_finish(c, deft_pad(c->g, "pad", x, &pa));
}

/* flatten (ndim < 0) or reshape to `to` */
static struct gcase *case_reshape(const char *name, struct deft_shape xs, struct deft_shape to) {
    bool flat = to.ndim <= 0;
    struct gcase *c = gc_new(name, flat ? "flatten" : "reshape", "reshape");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    int y = flat ? deft_flatten(c->g, "flat", x) : deft_reshape(c->g, "reshape", x, to);
    if (y >= 0) {
        char s[64];
        fmt_list(s, sizeof s, V(c, y)->shape.d, V(c, y)->shape.ndim);
        gc_args(c, "shape=%s", s);
    }
    return gc_finish(c, y);
}

static struct gcase *case_transpose(const char *name, struct deft_shape xs, const int *perm) {
    struct gcase *c = gc_new(name, "transpose", "transpose");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    int64_t p[DEFT_MAX_DIMS];
    for (int i = 0; i < xs.ndim; i++) p[i] = perm[i];
    char s[64];
    fmt_list(s, sizeof s, p, xs.ndim);
    gc_args(c, "perm=%s", s);
    return gc_finish(c, deft_transpose(c->g, "transpose", x, perm, xs.ndim));
}

static struct gcase *case_upsample(const char *name, struct deft_shape xs, int64_t oh, int64_t ow,
                                   enum deft_upsample_mode mode, bool align) {
    bool nn = mode == DEFT_UPSAMPLE_NEAREST;
    struct gcase *c = gc_new(name, nn ? "upsample_nearest" : "upsample_bilinear", "upsample");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    gc_args(c, "mode=%d align=%d size=%lld,%lld", (int)mode, (int)align, (long long)oh,
            (long long)ow);
    return gc_finish(c, deft_upsample(c->g, "up", x, oh, ow, mode, align));
}

static struct gcase *case_linear(const char *name, int64_t n, int64_t k, int64_t m, bool bias) {
    struct gcase *c = gc_new(name, "linear", "linear");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", deft_shape_make(2, (int64_t[]){n, k}));
    return gc_finish(c, deft_linear(c->g, "fc", x, m, bias));
}

static struct gcase *case_dropout(const char *name, float p, bool training) {
    struct gcase *c = gc_new(name, "dropout", "dropout");
    if (!c) return NULL;
    const uint64_t seed = 77;
    int x = deft_input(c->g, "x", deft_shape4(2, 4, 5, 6));
    if (!(c = gc_finish(c, deft_dropout(c->g, "drop", x, p, training, seed)))) return NULL;
    /* deft's mask, by its documented formula: u(seed, node, step * numel + i) >= p */
    int64_t n = numel(c, c->y);
    c->aux = malloc((size_t)n * sizeof(float));
    snprintf(c->aux_key, sizeof c->aux_key, "mask");
    float scale = (float)(1.0 / (1.0 - (double)p));
    for (int64_t i = 0; i < n; i++) {
        float u = deft_rng_uniform(seed, (uint64_t)c->fwd_node, RUN_STEP * (uint64_t)n + (uint64_t)i);
        c->aux[i] = !training ? 1.0f : (u >= p ? scale : 0.0f);
    }
    return c;
}

static struct gcase *case_softmax(const char *name, struct deft_shape xs, int axis) {
    struct gcase *c = gc_new(name, "softmax", "softmax");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", xs);
    gc_args(c, "axis=%d", axis);
    if (!(c = gc_finish(c, deft_softmax(c->g, "sm", x, axis)))) return NULL;
    for (int64_t i = 0; i < numel(c, x); i++) H(c, x)[i] *= 3.0f;
    return c;
}

enum target_kind { T_IDS, T_IDS_IGNORE, T_PROBS, T_UNIT, T_BINARY, T_RANDOM };

/* Loss over logits x of shape xs ([N, C] or [N, C, H, W]); class-id targets
 * have x's shape without the class axis. */
static struct gcase *case_loss_ex(const char *name, struct deft_loss_attr la, struct deft_shape xs,
                                  enum target_kind tk) {
    char label[32];
    snprintf(label, sizeof label, "loss_%s", deft_loss_name(la.kind));
    struct gcase *c = gc_new(name, label, "loss");
    if (!c) return NULL;
    bool ids = tk == T_IDS || tk == T_IDS_IGNORE;
    struct deft_shape ts = xs;
    if (ids) { /* drop the class axis */
        for (int d = 1; d + 1 < xs.ndim; d++) ts.d[d] = xs.d[d + 1];
        ts.ndim = xs.ndim - 1;
    }
    const int64_t cl = xs.d[1], inner = deft_shape_numel(&xs) / (xs.d[0] * cl);
    int x = deft_input(c->g, "x", xs);
    int tg = deft_input(c->g, "target", ts);
    int l = deft_loss(c->g, "loss", x, tg, &la);
    gc_args(c, "kind=%d smoothing=%.9g alpha=%.9g gamma=%.9g beta=%.9g", (int)la.kind,
            (double)la.label_smoothing, (double)la.alpha, (double)la.gamma, (double)la.beta);
    if (!(c = gc_finish(c, l))) return NULL;
    c->target = tg;
    float *tp = H(c, tg), *xp = H(c, x);
    for (int64_t i = 0; i < numel(c, x); i++) xp[i] *= 2.0f;
    for (int64_t i = 0; i < numel(c, tg); i++) {
        float u = 0.5f * (frand() + 1.0f);
        switch (tk) {
        case T_IDS: tp[i] = (float)(int64_t)(u * (float)cl); break;
        case T_IDS_IGNORE: /* PyTorch's default ignore_index */
            tp[i] = i % 3 == 1 ? -100.0f : (float)(int64_t)(u * (float)cl);
            break;
        case T_PROBS: tp[i] = expf(2.0f * frand()); break;
        case T_UNIT: tp[i] = u; break;
        case T_BINARY: tp[i] = u < 0.3f ? 1.0f : 0.0f; break;
        case T_RANDOM: tp[i] = 2.0f * frand(); break;
        }
    }
    if (tk == T_PROBS) /* probabilities over the class axis sum to one */
        for (int64_t r = 0; r < xs.d[0] * inner; r++) {
            float *row = tp + (r / inner) * cl * inner + r % inner;
            double sum = 0;
            for (int64_t j = 0; j < cl; j++) sum += row[j * inner];
            for (int64_t j = 0; j < cl; j++) row[j * inner] = (float)(row[j * inner] / sum);
        }
    if (la.kind == DEFT_LOSS_L1) gc_kinks(c, K_XMT, x, 1, (float[]){0});
    if (la.kind == DEFT_LOSS_SMOOTH_L1) gc_kinks(c, K_XMT, x, 2, (float[]){-la.beta, la.beta});
    return c;
}

static struct gcase *case_loss(const char *name, struct deft_loss_attr la, int64_t n, int64_t cl,
                               enum target_kind tk) {
    return case_loss_ex(name, la, deft_shape_make(2, (int64_t[]){n, cl}), tk);
}

/* Params frozen (DEFT_VF_FROZEN): autograd leaves out their gradients, only
 * the data gradient remains (BN_BWD without dgamma/dbeta, conv with only
 * BWD_DATA, linear with only BWD_DATA). */
static struct gcase *case_frozen(const char *name, const char *what) {
    bool bn = strcmp(what, "bn") == 0, conv = strcmp(what, "conv") == 0;
    struct gcase *c = gc_new(name, bn ? "batchnorm_train" : conv ? "conv2d" : "linear",
                             bn ? "batchnorm" : conv ? "conv2d" : "linear");
    if (!c) return NULL;
    int x, y;
    if (bn) {
        x = deft_input(c->g, "x", deft_shape4(2, 4, 3, 5));
        y = deft_batchnorm(c->g, "bn", x, DEFT_BN_TRAIN);
        gc_args(c, "mode=0 eps=1e-05 momentum=0.1");
    } else if (conv) {
        x = deft_input(c->g, "x", deft_shape4(2, 3, 6, 6));
        struct deft_conv_attr a = CA(2, 2, 1, 1, 1, 1, 1, 1, 1);
        y = deft_conv2d(c->g, "conv", x, 4, 3, 3, &a, true);
        gc_args(c, "stride=2,2 pad=1,1,1,1 dil=1,1 groups=1");
    } else {
        x = deft_input(c->g, "x", deft_shape_make(2, (int64_t[]){3, 8}));
        y = deft_linear(c->g, "fc", x, 5, true);
    }
    int nf = deft_graph_freeze(c->g, bn ? "bn." : conv ? "conv." : "fc.", true);
    CHECK(nf == 2, "%s: froze %d params", name, nf);
    if (!(c = gc_finish(c, y))) return NULL;
    CHECK(c->ndiff == 1 && c->diff[0] == x, "%s: %d gradients, expected only the input's", name,
          c->ndiff);
    return c;
}

/* RoIAlign / crop-and-resize: boxes over the 6x7 map (scale 1), some partly
 * outside it; the boxes are an input without a gradient. */
static struct gcase *case_roi(const char *name, struct deft_roi_attr a) {
    struct gcase *c = gc_new(name, a.mode == DEFT_ROI_ALIGN ? "roi_align" : "crop_and_resize", "roi_align");
    if (!c) return NULL;
    int x = deft_input(c->g, "x", deft_shape4(2, 3, 6, 7));
    int bx = deft_input(c->g, "boxes", deft_shape_make(2, (int64_t[]){4, 5}));
    gc_args(c, "mode=%d out=%d,%d scale=%.9g sr=%d aligned=%d image=%d,%d", (int)a.mode, a.out_h, a.out_w,
            (double)a.spatial_scale, a.sampling_ratio, (int)a.aligned, a.image_h, a.image_w);
    if (!(c = gc_finish(c, deft_roi_align(c->g, "roi", x, bx, &a)))) return NULL;
    static const float boxes[4][5] = {
        {0, 0.5f, 1.0f, 5.5f, 4.0f}, {1, -1.5f, 2.2f, 3.1f, 7.5f}, {1, 2.3f, 0.2f, 2.9f, 0.9f}, {0, 4.0f, 3.0f, 8.5f, 5.2f}};
    memcpy(c->host[bx], boxes, sizeof boxes);
    return c;
}

static void add(struct gcase *c) {
    if (!c) return;
    if (n_cases == MAX_CASES) {
        CHECK(0, "too many cases");
        gc_free(c);
        return;
    }
    cases[n_cases++] = c;
}

static void build_cases(void) {
    /* conv2d: stride, asymmetric padding, dilation, groups, depthwise, bias */
    add(case_conv("conv_3x3_bias", false, deft_shape4(2, 3, 7, 6), 4, 3, 3,
                  CA(1, 1, 1, 1, 1, 1, 1, 1, 1), true));
    add(case_conv("conv_s2_asym_g2", false, deft_shape4(2, 4, 9, 8), 6, 3, 2,
                  CA(2, 1, 0, 1, 2, 0, 1, 2, 2), true));
    add(case_conv("conv_dil2", false, deft_shape4(1, 3, 9, 9), 4, 3, 3,
                  CA(1, 1, 2, 2, 2, 2, 2, 2, 1), false));
    add(case_conv("conv_depthwise_s2", false, deft_shape4(2, 6, 7, 7), 6, 3, 3,
                  CA(2, 2, 1, 1, 1, 1, 1, 1, 6), true));
    add(case_conv("conv_dw_mult2", false, deft_shape4(1, 4, 6, 5), 8, 3, 3,
                  CA(1, 1, 1, 1, 1, 1, 1, 1, 4), false));
    add(case_conv("conv_1x1", false, deft_shape4(2, 5, 5, 5), 3, 1, 1,
                  CA(1, 1, 0, 0, 0, 0, 1, 1, 1), true));
    /* conv_transpose2d */
    struct deft_conv_attr a = CA(2, 2, 1, 1, 1, 1, 1, 1, 1);
    a.output_padding[0] = a.output_padding[1] = 1;
    add(case_conv("convt_s2_opad", true, deft_shape4(2, 4, 4, 5), 3, 3, 3, a, true));
    a = CA(2, 3, 1, 0, 2, 1, 1, 2, 2);
    a.output_padding[1] = 2;
    add(case_conv("convt_asym_g2", true, deft_shape4(1, 4, 4, 5), 6, 4, 3, a, true));
    add(case_conv("convt_depthwise", true, deft_shape4(2, 6, 5, 5), 6, 3, 3,
                  CA(1, 1, 1, 1, 1, 1, 1, 1, 6), false));
    add(case_conv("convt_k2s2", true, deft_shape4(1, 3, 4, 3), 5, 2, 2,
                  CA(2, 2, 0, 0, 0, 0, 1, 1, 1), true));

    /* batchnorm */
    add(case_bn("bn_train", deft_shape4(2, 3, 5, 4), DEFT_BN_TRAIN, 1e-5f, 0.1f));
    add(case_bn("bn_train_2d", deft_shape_make(2, (int64_t[]){6, 5}), DEFT_BN_TRAIN, 1e-3f, 0.3f));
    add(case_bn("bn_eval", deft_shape4(2, 4, 3, 5), DEFT_BN_EVAL, 1e-5f, 0.1f));
    add(case_bn("bn_frozen", deft_shape4(3, 4, 3, 3), DEFT_BN_FROZEN, 1e-3f, 0.1f));

    /* activations */
    for (int k = 0; k < DEFT_ACT_COUNT; k++) add(case_act((enum deft_act_kind)k));

    /* pooling */
    add(case_pool("maxpool_3s2p1", deft_shape4(2, 3, 9, 9), PA(DEFT_POOL_MAX, 3, 3, 2, 2, 1, 1, 0, 0)));
    add(case_pool("maxpool_2s2_ceil", deft_shape4(1, 2, 7, 7), PA(DEFT_POOL_MAX, 2, 2, 2, 2, 0, 0, 0, 1)));
    add(case_pool("maxpool_rect", deft_shape4(1, 3, 6, 5), PA(DEFT_POOL_MAX, 3, 2, 2, 1, 1, 1, 0, 0)));
    add(case_pool("avgpool_cip", deft_shape4(2, 3, 8, 9), PA(DEFT_POOL_AVG, 3, 3, 2, 2, 1, 1, 1, 0)));
    add(case_pool("avgpool_nocip_ceil", deft_shape4(1, 2, 8, 8),
                  PA(DEFT_POOL_AVG, 3, 3, 2, 2, 1, 1, 0, 1)));
    add(case_pool("avgpool_rect", deft_shape4(1, 2, 7, 6), PA(DEFT_POOL_AVG, 2, 3, 1, 2, 1, 1, 1, 1)));
    add(case_gap());

    /* add / mul with broadcasting */
    struct deft_shape s4 = deft_shape4(2, 3, 4, 5);
    for (int m = 0; m < 2; m++) {
        char nm[48];
        const char *p = m ? "mul" : "add";
        snprintf(nm, sizeof nm, "%s_same", p);
        add(case_binary(nm, m, s4, s4));
        snprintf(nm, sizeof nm, "%s_chan", p);
        add(case_binary(nm, m, s4, deft_shape4(1, 3, 1, 1)));
        snprintf(nm, sizeof nm, "%s_both", p);
        add(case_binary(nm, m, deft_shape_make(3, (int64_t[]){3, 1, 5}), deft_shape4(2, 3, 4, 1)));
    }
    /* a value used twice: autograd sums the two gradients (an ADD node) */
    struct gcase *sq = gc_new("mul_self", "mul", "mul_self");
    if (sq) {
        int a = deft_input(sq->g, "a", s4);
        if ((sq = gc_finish(sq, deft_mul(sq->g, "op", a, a)))) {
            bool summed = false;
            for (int n = sq->n_fwd; n < deft_graph_num_nodes(sq->g); n++)
                summed |= deft_graph_node(sq->g, n)->op == DEFT_OP_ADD;
            CHECK(summed, "mul_self: no gradient accumulation node");
        }
        add(sq);
    }

    /* concat / slice / pad / reshape */
    struct deft_shape c1[3] = {deft_shape4(2, 3, 4, 5), deft_shape4(2, 2, 4, 5),
                               deft_shape4(2, 1, 4, 5)};
    add(case_concat("concat_c", 1, c1, 3));
    struct deft_shape c2[2] = {deft_shape4(2, 3, 4, 1), deft_shape4(2, 3, 4, 2)};
    add(case_concat("concat_w", 3, c2, 2));
    add(case_slice("slice_c", deft_shape4(2, 5, 4, 3), (int64_t[]){0, 1, 0, 0},
                   (int64_t[]){2, 4, 4, 3}, 1));
    add(case_slice("slice_multi", deft_shape4(2, 5, 6, 7), (int64_t[]){1, 0, 2, 3},
                   (int64_t[]){2, 5, 5, 7}, -1));
    add(case_pad("pad", deft_shape4(2, 3, 4, 5),
                 (struct deft_pad_attr){.before = {0, 1, 2, 0}, .after = {1, 0, 1, 3}}));
    add(case_reshape("flatten", deft_shape4(2, 3, 4, 5), (struct deft_shape){0}));
    add(case_reshape("reshape", deft_shape4(2, 3, 4, 5), deft_shape_make(3, (int64_t[]){4, 5, 6})));
    add(case_transpose("transpose_nhwc", deft_shape4(2, 3, 4, 5), (int[]){0, 2, 3, 1}));
    add(case_transpose("transpose_3d", deft_shape_make(3, (int64_t[]){3, 4, 5}), (int[]){2, 0, 1}));

    /* upsample */
    struct deft_shape us = deft_shape4(2, 3, 4, 5);
    const enum deft_upsample_mode NN = DEFT_UPSAMPLE_NEAREST, BL = DEFT_UPSAMPLE_BILINEAR;
    add(case_upsample("up_nearest_x2", us, 8, 10, NN, false));
    add(case_upsample("up_nearest_odd", us, 7, 9, NN, false));
    add(case_upsample("up_bilinear_x2", us, 8, 10, BL, false));
    add(case_upsample("up_bilinear_odd_ac", us, 7, 9, BL, true));
    add(case_upsample("up_bilinear_down", us, 3, 7, BL, false));

    /* linear, dropout, softmax */
    add(case_linear("linear_bias", 4, 7, 5, true));
    add(case_linear("linear_nobias", 3, 9, 6, false));
    add(case_dropout("dropout_train", 0.3f, true));
    add(case_dropout("dropout_eval", 0.3f, false));
    add(case_softmax("softmax_2d", deft_shape_make(2, (int64_t[]){3, 7}), 1));
    add(case_softmax("softmax_4d", deft_shape4(2, 3, 4, 5), 1));
    add(case_softmax("softmax_last", deft_shape4(2, 3, 2, 6), 3));

    /* frozen params: only the data gradient */
    add(case_frozen("bn_frozen_affine", "bn"));
    add(case_frozen("conv_frozen", "conv"));
    add(case_frozen("linear_frozen", "linear"));

    /* losses */
    const enum deft_loss_kind CE = DEFT_LOSS_SOFTMAX_CE;
    add(case_loss("ce_ids", (struct deft_loss_attr){.kind = CE}, 6, 5, T_IDS));
    add(case_loss("ce_ids_ls", (struct deft_loss_attr){.kind = CE, .label_smoothing = 0.1f}, 7, 4,
                  T_IDS));
    add(case_loss("ce_ignore_ls", (struct deft_loss_attr){.kind = CE, .label_smoothing = 0.15f}, 8,
                  5, T_IDS_IGNORE));
    add(case_loss("ce_probs_ls", (struct deft_loss_attr){.kind = CE, .label_smoothing = 0.2f}, 5, 6,
                  T_PROBS));
    add(case_loss("bce_logits", (struct deft_loss_attr){.kind = DEFT_LOSS_BCE_LOGITS}, 4, 6, T_UNIT));
    add(case_loss("focal", (struct deft_loss_attr){.kind = DEFT_LOSS_FOCAL, .alpha = 0.25f,
                                                   .gamma = 2.0f}, 4, 6, T_BINARY));
    add(case_loss("focal_noalpha", (struct deft_loss_attr){.kind = DEFT_LOSS_FOCAL, .alpha = -1.0f,
                                                           .gamma = 1.5f}, 3, 5, T_UNIT));
    add(case_loss("l1", (struct deft_loss_attr){.kind = DEFT_LOSS_L1}, 4, 5, T_RANDOM));
    add(case_loss("smooth_l1", (struct deft_loss_attr){.kind = DEFT_LOSS_SMOOTH_L1, .beta = 0.5f},
                  5, 6, T_RANDOM));
    add(case_loss("l2", (struct deft_loss_attr){.kind = DEFT_LOSS_L2}, 4, 5, T_RANDOM));

    add(case_roi("roi_align_adapt", (struct deft_roi_attr){.mode = DEFT_ROI_ALIGN, .out_h = 3, .out_w = 4,
                 .spatial_scale = 1.0f, .sampling_ratio = -1, .aligned = true}));
    add(case_roi("roi_align_sr2", (struct deft_roi_attr){.mode = DEFT_ROI_ALIGN, .out_h = 2, .out_w = 2,
                 .spatial_scale = 1.0f, .sampling_ratio = 2, .aligned = false}));
    add(case_roi("crop_and_resize", (struct deft_roi_attr){.mode = DEFT_ROI_CROP_RESIZE, .out_h = 3, .out_w = 3,
                 .image_h = 6, .image_w = 7}));
}

/* ---- (c) the checker must catch wrong gradients ------------------------------ */

/* Corrupt the first backward node with op `op` after autograd, then run the FD
 * checker on the ref backend: it must report mismatches. */
static void selftest(const char *what, struct gcase *c, enum deft_op op,
                     void (*corrupt)(struct deft_node *)) {
    CHECK(c != NULL, "self-test %s: case not built", what);
    if (!c) return;
    int found = -1;
    for (int n = c->n_fwd; n < deft_graph_num_nodes(c->g) && found < 0; n++)
        if (deft_graph_node(c->g, n)->op == op) found = n;
    CHECK(found >= 0, "self-test %s: no %s node", what, deft_op_name(op));
    if (found >= 0) {
        corrupt(deft_graph_node_mut(c->g, found));
        struct deft_runtime *rt = gc_runtime(c, "ref");
        float *an[MAX_DIFF] = {0};
        for (int k = 0; k < c->ndiff; k++) an[k] = malloc((size_t)numel(c, c->diff[k]) * sizeof(float));
        if (rt && gc_run_full(c, rt, an)) {
            struct fd_result r;
            int bad = fd_check(c, rt, an, &r, false);
            CHECK(bad > 0, "self-test %s: the gradient checker did not notice the wrong gradient",
                  what);
            printf("self-test: %-46s -> checker reports %3d of %3d coordinates wrong "
                   "(worst err %.3g): %s\n",
                   what, bad, r.checked, r.worst, bad > 0 ? "caught" : "MISSED");
        }
        for (int k = 0; k < c->ndiff; k++) free(an[k]);
        deft_runtime_free(rt);
    }
    gc_free(c);
}

static void to_tanh(struct deft_node *n) { n->attr.act.kind = DEFT_ACT_TANH; }
static void to_frozen(struct deft_node *n) { n->attr.bn.mode = DEFT_BN_FROZEN; }
static void double_slope(struct deft_node *n) { n->attr.act.alpha *= 2.0f; }

int main(void) {
    double t0 = deft_time_now();
    deft_log_set_level(DEFT_LOG_ERROR); /* no "slow oneDNN implementation" notes for tiny convs */
    bool torch = test_have_torch();
    if (!torch) test_skip_part("python3 with torch not available: the PyTorch comparison is not run");
    FILE *manifest = NULL;
    char path[512];
    if (torch) {
        snprintf(path, sizeof path, "%s/manifest.txt", test_tmpdir());
        manifest = fopen(path, "w");
        CHECK(manifest != NULL, "cannot create %s", path);
    }

    build_cases();
    for (int i = 0; i < n_cases; i++) gc_run(cases[i], manifest);
    double t_fd = deft_time_now();
    printf("%d cases: both backends + finite differences in %.1f s\n", n_cases, t_fd - t0);

    if (manifest) {
        fclose(manifest);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/gen_autograd.py' '%s' '%s'",
                 test_source_dir(), path, test_tmpdir());
        int rc = system(cmd);
        CHECK(rc == 0, "gen_autograd.py failed (%d)", rc);
        printf("gen_autograd.py: %d cases in %.1f s\n", n_cases, deft_time_now() - t_fd);
        for (int i = 0; i < n_cases; i++) gc_compare(cases[i]);
    }

    printf("\n%-20s %5s | %-19s | %-19s | %9s %6s %4s\n", "", "", "  fwd vs torch", "  bwd vs torch",
           "FD", "FD", "FD");
    printf("%-20s %5s | %9s %9s | %9s %9s | %9s %6s %4s\n", "op", "cases", "ref", "cpu", "ref",
           "cpu", "worst", "coords", "skip");
    for (int i = 0; i < n_stats; i++) {
        char e[4][16];
        for (int b = 0; b < NB; b++) {
            if (stats[i].torch[b]) {
                snprintf(e[b], sizeof e[b], "%.2e", stats[i].fwd[b]);
                snprintf(e[2 + b], sizeof e[2 + b], "%.2e", stats[i].bwd[b]);
            } else {
                snprintf(e[b], sizeof e[b], "-");
                snprintf(e[2 + b], sizeof e[2 + b], "-");
            }
        }
        printf("%-20s %5d | %9s %9s | %9s %9s | %9.2e %6d %4d\n", stats[i].label, stats[i].cases,
               e[0], e[1], e[2], e[3], stats[i].fd, stats[i].fd_checked, stats[i].fd_skipped);
    }
    printf("tolerances: fwd %.0e, bwd %.0e (max|ours - torch| / max|torch|), FD %.0e\n\n", TOL_FWD,
           TOL_BWD, FD_TOL);
    for (int i = 0; i < n_cases; i++) gc_free(cases[i]);

    /* (c) the checker on deliberately wrong backward rules */
    selftest("sigmoid ACT_BWD computing tanh's derivative", case_act(DEFT_ACT_SIGMOID),
             DEFT_OP_ACT_BWD, to_tanh);
    selftest("train-mode BATCHNORM_BWD run as FROZEN",
             case_bn("bn_selftest", deft_shape4(2, 3, 4, 4), DEFT_BN_TRAIN, 1e-5f, 0.1f),
             DEFT_OP_BATCHNORM_BWD, to_frozen);
    selftest("leaky relu ACT_BWD with its slope doubled", case_act(DEFT_ACT_LEAKY_RELU),
             DEFT_OP_ACT_BWD, double_slope);

    printf("total %.1f s\n", deft_time_now() - t0);
    if (!torch) {
        if (n_cases == 0 && !test_failed) test_skip("python3 with torch not available, no cases ran");
        printf("SKIP (PyTorch part): python3 with torch not available\n");
    }
    return test_summary();
}

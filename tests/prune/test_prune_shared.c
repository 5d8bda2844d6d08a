/* test_prune_shared.c - a weight read by several convs (RetinaNet's subnets,
 * shared by the five FPN levels) is one group of filters. On a tiny graph:
 *
 *     x -> A (3x3, 8) -> relu -> S -> relu -> C (1x1, 4, output)
 *     x -> B (3x3 /2, 8) -> relu -> S.l1 -> relu -> C.l1 (output)
 *
 * S.l1 and C.l1 read S's and C's weights. Checks: S and C appear once in the
 * layer table; A and B (the producers of S's two inputs) form one
 * equalization group whose retained filters are TAO's rule on their
 * max-normalized norms combined by union, recomputed here; S keeps the top
 * filters of its own kernel; C (an output) stays whole; the pruned graph
 * gives the original graph's outputs with the dropped filters (weights and
 * biases) zeroed; -el on the second use keeps S whole; an input that cannot
 * be cut keeps the other use's producer whole; a shared transposed conv is
 * refused with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/prune.h"
#include "deft_test.h"

enum { N = 2, H = 12, F = 8, K = 4 };
static const struct deft_conv_attr c3 = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};

/* A second use of conv `name`'s weight and bias on x. */
static int reuse(struct deft_graph *g, const char *name, const char *use, int x, const struct deft_conv_attr *a) {
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int in[3] = {x, deft_graph_find_value(g, wn), deft_graph_find_value(g, bn)};
    struct deft_attr at = {.conv = *a, .has_bias = true};
    int n = deft_graph_add_node(g, DEFT_OP_CONV2D, use, in, 3, &at);
    return n < 0 ? -1 : deft_graph_node(g, n)->out[0];
}

static int relu(struct deft_graph *g, const char *name, int x) { return deft_act(g, name, x, DEFT_ACT_RELU, 0); }

static struct deft_graph *tiny(int cin, bool b_from_image) {
    struct deft_graph *g = NULL;
    if (deft_graph_create(&g)) return NULL;
    struct deft_conv_attr s2 = c3, c1 = {.stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
    s2.stride[0] = s2.stride[1] = 2;
    int x = deft_input(g, "x", deft_shape4(N, cin, H, H));
    int a = relu(g, "A_relu", deft_conv2d(g, "A", x, F, 3, 3, &c3, true));
    int b = b_from_image ? x : relu(g, "B_relu", deft_conv2d(g, "B", x, F, 3, 3, &s2, true));
    int r0 = relu(g, "S_relu", deft_conv2d(g, "S", a, F, 3, 3, &c3, true));
    int r1 = relu(g, "S_relu.l1", reuse(g, "S", "S.l1", b, &c3));
    int y0 = deft_conv2d(g, "C", r0, K, 1, 1, &c1, true), y1 = reuse(g, "C", "C.l1", r1, &c1);
    if (deft_graph_status(g)) {
        printf("building the tiny graph: %s\n", deft_last_error());
        deft_graph_free(g);
        return NULL;
    }
    deft_graph_value_mut(g, y0)->flags |= DEFT_VF_OUTPUT;
    deft_graph_value_mut(g, y1)->flags |= DEFT_VF_OUTPUT;
    return g;
}

/* The runtime's params as a safetensors view (names = value names). */
static struct deft_safetensors *weights_of(const struct deft_graph *g, struct deft_runtime *rt,
                                           struct deft_tensor **views) {
    int nv = deft_graph_num_values(g), k = 0;
    struct deft_safetensors *st = calloc(1, sizeof *st);
    st->tensors = calloc((size_t)nv, sizeof *st->tensors);
    *views = calloc((size_t)nv, sizeof **views);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        (*views)[k] = deft_tensor_view(DEFT_F32, &val->shape, deft_runtime_data(rt, v));
        st->tensors[k].name = val->name;
        st->tensors[k].tensor = &(*views)[k];
        k++;
    }
    st->n_tensors = k;
    return st;
}

static float *param(struct deft_runtime *rt, const struct deft_graph *g, const char *name) {
    return deft_runtime_data(rt, deft_graph_find_value(g, name));
}

/* Filter f of conv `name` (weight [F, per]) scaled by scale[f]. */
static void scale_filters(struct deft_runtime *rt, const struct deft_graph *g, const char *name, const float *scale) {
    char wn[64];
    snprintf(wn, sizeof wn, "%s.weight", name);
    const struct deft_value *v = deft_graph_value(g, deft_graph_find_value(g, wn));
    int64_t per = deft_shape_numel(&v->shape) / v->shape.d[0];
    float *w = param(rt, g, wn);
    for (int f = 0; f < v->shape.d[0]; f++)
        for (int64_t i = 0; i < per; i++) w[f * per + i] *= scale[f];
}

static void norms(struct deft_runtime *rt, const struct deft_graph *g, const char *name, float *s) {
    char wn[64];
    snprintf(wn, sizeof wn, "%s.weight", name);
    const struct deft_value *v = deft_graph_value(g, deft_graph_find_value(g, wn));
    int64_t per = deft_shape_numel(&v->shape) / v->shape.d[0];
    const float *w = param(rt, g, wn);
    float mx = 0;
    for (int f = 0; f < v->shape.d[0]; f++) {
        double a = 0;
        for (int64_t i = 0; i < per; i++) a += (double)w[f * per + i] * w[f * per + i];
        s[f] = (float)sqrt(a);
        mx = s[f] > mx ? s[f] : mx;
    }
    for (int f = 0; f < v->shape.d[0]; f++) s[f] /= mx;
}

/* TAO's rule with granularity 1, min_num_filters 1: the scores above t. */
static int expected(const float *s, float t, int *keep) {
    int k = 0;
    for (int f = 0; f < F; f++)
        if (s[f] > t) keep[k++] = f;
    return k;
}

static const struct deft_prune_layer *find_layer(const struct deft_prune_plan *p, const char *name,
                                                 struct deft_prune_layer *l) {
    for (int i = 0; i < deft_prune_num_layers(p); i++) {
        deft_prune_layer_info(p, i, l);
        if (!strcmp(l->name, name)) return l;
    }
    return NULL;
}

static bool same_list(const struct deft_prune_layer *l, const int *keep, int k) {
    if (!l || l->after != k) return false;
    for (int i = 0; i < k; i++)
        if (l->retained[i] != keep[i]) return false;
    return true;
}

/* Zero conv `name`'s filters not in keep (weights and bias). */
static void zero_dropped(struct deft_runtime *rt, const struct deft_graph *g, const char *name, const int *keep,
                         int k) {
    float z[F];
    for (int f = 0; f < F; f++) {
        z[f] = 0;
        for (int i = 0; i < k; i++) z[f] = keep[i] == f ? 1.0f : z[f];
    }
    scale_filters(rt, g, name, z);
    char bn[64];
    snprintf(bn, sizeof bn, "%s.bias", name);
    float *b = param(rt, g, bn);
    for (int f = 0; f < F; f++) b[f] *= z[f];
}

static void run_outputs(struct deft_runtime *rt, const struct deft_graph *g, const float *x, float *y0, float *y1,
                        size_t n0, size_t n1) {
    CHECK_OK(deft_runtime_set_input(rt, deft_graph_find_value(g, "x"), x, (size_t)N * 3 * H * H));
    CHECK_OK(deft_runtime_run(rt));
    CHECK_OK(deft_runtime_read(rt, deft_graph_find_value(g, "C"), y0, n0));
    CHECK_OK(deft_runtime_read(rt, deft_graph_find_value(g, "C.l1"), y1, n1));
}

static void grouping(void) {
    struct deft_graph *g = tiny(3, false), *g2 = NULL;
    struct deft_runtime *rt = NULL, *rt2 = NULL;
    struct deft_prune_plan *p = NULL;
    struct deft_named_tensor *w2 = NULL;
    struct deft_tensor *views = NULL;
    int n2 = 0;
    if (!g) {
        CHECK(0, "tiny graph");
        return;
    }
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){0}, &rt));
    CHECK_OK(deft_runtime_init_params(rt, 11));
    const float sa[F] = {1.0f, 0.2f, 0.9f, 0.3f, 0.8f, 0.25f, 0.1f, 0.35f};
    const float sb[F] = {0.2f, 0.3f, 0.25f, 1.0f, 0.1f, 0.9f, 0.15f, 0.3f};
    const float ss[F] = {0.3f, 1.0f, 0.2f, 0.9f, 0.25f, 0.35f, 0.8f, 0.1f};
    scale_filters(rt, g, "A", sa);
    scale_filters(rt, g, "B", sb);
    scale_filters(rt, g, "S", ss);
    struct deft_safetensors *st = weights_of(g, rt, &views);
    const float t = 0.6f;
    CHECK_OK(deft_prune_analyze(g, st, &(struct deft_prune_opts){.threshold = t, .granularity = 1,
                                                                 .min_num_filters = 1}, &p));
    if (!p) goto done;
    /* the reference: union = element-wise max of the normalized norms */
    float na[F], nb[F], ns[F], un[F];
    int kab[F], ks[F];
    norms(rt, g, "A", na);
    norms(rt, g, "B", nb);
    norms(rt, g, "S", ns);
    for (int f = 0; f < F; f++) un[f] = na[f] > nb[f] ? na[f] : nb[f];
    int nab = expected(un, t, kab), nsk = expected(ns, t, ks);
    struct deft_prune_layer la, lb, ls, lc, tmp;
    CHECK(deft_prune_num_layers(p) == 4, "layers: A, B, S, C once each (%d)", deft_prune_num_layers(p));
    CHECK(!find_layer(p, "S.l1", &tmp) && !find_layer(p, "C.l1", &tmp), "a shared weight's later uses are no layers");
    bool fa = find_layer(p, "A", &la), fb = find_layer(p, "B", &lb), fs = find_layer(p, "S", &ls),
         fc = find_layer(p, "C", &lc);
    CHECK(fa && fb && fs && fc, "A, B, S, C in the layer table");
    if (!fa || !fb || !fs || !fc) goto done;
    CHECK(nab > 0 && nab < F && same_list(&la, kab, nab) && same_list(&lb, kab, nab),
          "A and B (S's two inputs) keep the same %d filters: union of their scores (A %d, B %d kept)", nab, la.after,
          lb.after);
    CHECK(deft_prune_layer_group(p, 0) >= 0 && deft_prune_layer_group(p, 0) == deft_prune_layer_group(p, 1),
          "A and B are one equalization group");
    CHECK(nsk > 0 && nsk < F && same_list(&ls, ks, nsk), "S keeps its %d best filters (%d)", nsk, ls.after);
    CHECK(lc.after == K && lc.excluded, "C (an output) kept whole");
    printf("A, B keep %d of %d filters, S %d of %d, C %d of %d\n", la.after, F, ls.after, F, lc.after, K);
    /* the pruned graph == the original with the dropped filters zeroed */
    CHECK_OK(deft_prune_apply(p, st, &g2, &w2, &n2));
    if (!g2) goto done;
    CHECK_OK(deft_graph_validate(g2));
    const struct deft_value *sw = deft_graph_value(g2, deft_graph_find_value(g2, "S.weight"));
    CHECK(sw->shape.d[0] == nsk && sw->shape.d[1] == nab, "S.weight [%lld, %lld, 3, 3]", (long long)sw->shape.d[0],
          (long long)sw->shape.d[1]);
    CHECK_OK(deft_runtime_create(g2, &(struct deft_runtime_opts){0}, &rt2));
    struct deft_safetensors st2 = {.n_tensors = n2, .tensors = w2};
    if (rt2) CHECK_OK(deft_model_copy_to_runtime(&st2, rt2, 0, NULL));
    size_t nx = (size_t)N * 3 * H * H, n0 = (size_t)N * K * H * H, n1 = (size_t)N * K * (H / 2) * (H / 2);
    float *x = malloc(nx * sizeof *x), *a0 = calloc(n0, 4), *a1 = calloc(n1, 4);
    float *b0 = calloc(n0, 4), *b1 = calloc(n1, 4);
    for (size_t i = 0; i < nx; i++) x[i] = deft_rng_normal(3, 0, i);
    if (rt2) run_outputs(rt2, g2, x, b0, b1, n0, n1);
    run_outputs(rt, g, x, a0, a1, n0, n1); /* unpruned: the dropped filters did matter */
    double d = 0, m = 0;
    for (size_t i = 0; i < n0; i++) d = fmax(d, fabs(a0[i] - b0[i]));
    CHECK(d > 1e-3, "the unpruned graph differs from the pruned one (%.3g)", d);
    zero_dropped(rt, g, "A", kab, nab);
    zero_dropped(rt, g, "B", kab, nab);
    zero_dropped(rt, g, "S", ks, nsk);
    deft_runtime_params_changed(rt);
    run_outputs(rt, g, x, a0, a1, n0, n1);
    d = 0;
    for (size_t i = 0; i < n0; i++) d = fmax(d, fabs(a0[i] - b0[i])), m = fmax(m, fabs(a0[i]));
    for (size_t i = 0; i < n1; i++) d = fmax(d, fabs(a1[i] - b1[i])), m = fmax(m, fabs(a1[i]));
    CHECK(rt2 && m > 0 && d <= 1e-5 * fmax(1, m), "pruned outputs (both levels) == original with dropped filters "
          "zeroed: max diff %.3g (scale %.3g)", d, m);
    printf("pruned vs zeroed original: max |diff| %.3g over outputs up to %.3g\n", d, m);
    free(x), free(a0), free(a1), free(b0), free(b1);
    /* -el on the second use keeps the shared weight whole */
    deft_prune_plan_free(p);
    p = NULL;
    const char *el[] = {"S.l1"};
    CHECK_OK(deft_prune_analyze(g, st, &(struct deft_prune_opts){.threshold = t, .granularity = 1, .min_num_filters = 1,
                                                                 .excluded = el, .n_excluded = 1}, &p));
    CHECK(p && find_layer(p, "S", &ls) && ls.after == F && ls.excluded, "-el S.l1 keeps S whole");
done:
    deft_prune_tensors_free(w2, n2);
    deft_runtime_free(rt2);
    deft_graph_free(g2);
    deft_prune_plan_free(p);
    free(views);
    if (st) free(st->tensors);
    free(st);
    deft_runtime_free(rt);
    deft_graph_free(g);
}

/* S.l1 reads the image: its channels cannot go, so A (S's other input) keeps all. */
static void uncuttable_input(void) {
    struct deft_graph *g = tiny(F, true);
    struct deft_runtime *rt = NULL;
    struct deft_prune_plan *p = NULL;
    struct deft_tensor *views = NULL;
    if (!g) {
        CHECK(0, "tiny graph");
        return;
    }
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){0}, &rt));
    CHECK_OK(deft_runtime_init_params(rt, 12));
    const float sa[F] = {1.0f, 0.2f, 0.9f, 0.3f, 0.8f, 0.25f, 0.1f, 0.35f};
    scale_filters(rt, g, "A", sa);
    scale_filters(rt, g, "S", sa);
    struct deft_safetensors *st = weights_of(g, rt, &views);
    CHECK_OK(deft_prune_analyze(g, st, &(struct deft_prune_opts){.threshold = 0.6f, .granularity = 1,
                                                                 .min_num_filters = 1}, &p));
    struct deft_prune_layer la, ls;
    CHECK(p && find_layer(p, "A", &la) && la.after == F && la.excluded, "A kept whole: the other use reads the image");
    CHECK(p && find_layer(p, "S", &ls) && ls.after < F, "S itself is still pruned");
    deft_prune_plan_free(p);
    free(views);
    free(st->tensors);
    free(st);
    deft_runtime_free(rt);
    deft_graph_free(g);
}

/* A transposed conv's shared weight is refused, naming the layer. */
static void refused(void) {
    struct deft_graph *g = NULL;
    if (deft_graph_create(&g)) {
        CHECK(0, "graph");
        return;
    }
    int x = deft_input(g, "x", deft_shape4(1, 4, 6, 6));
    struct deft_conv_attr a = {.stride = {2, 2}, .dilation = {1, 1}, .groups = 1};
    int y = deft_conv_transpose2d(g, "T", x, 4, 2, 2, &a, false);
    int in[2] = {y, deft_graph_find_value(g, "T.weight")};
    deft_graph_add_node(g, DEFT_OP_CONV_TRANSPOSE2D, "T.l1", in, 2, &(struct deft_attr){.conv = a});
    CHECK_OK(deft_graph_status(g));
    struct deft_runtime *rt = NULL;
    struct deft_tensor *views = NULL;
    struct deft_prune_plan *p = NULL;
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){0}, &rt));
    CHECK_OK(deft_runtime_init_params(rt, 1));
    struct deft_safetensors *st = rt ? weights_of(g, rt, &views) : NULL;
    enum deft_status s = st ? deft_prune_analyze(g, st, &(struct deft_prune_opts){.threshold = 0.1f}, &p) : DEFT_OK;
    CHECK(s == DEFT_ERR_UNSUPPORTED && !p && strstr(deft_last_error(), "'T.l1' (conv_transpose2d) shares a weight"),
          "a shared transposed conv: %s", deft_last_error());
    deft_prune_plan_free(p);
    free(views);
    if (st) free(st->tensors);
    free(st);
    deft_runtime_free(rt);
    deft_graph_free(g);
}

int main(void) {
    grouping();
    uncuttable_input();
    refused();
    return test_summary();
}

/* test_prune_archs.c - pruning works on every classification architecture:
 * each is built with random weights, pruned hard (so every kind of layer
 * loses channels: residual groups, depthwise, concat, squeeze-excitation),
 * and the pruned graph must be consistent, smaller, and run to finite
 * logits of the same shape; at threshold 0 nothing may change. (VGG's 138M
 * parameters, and deeper/wider variants of the same blocks, are left out for time; the flatten into its classifier is the
 * same rule resnet's and squeezenet's flatten use, checked against a torch
 * reference in test_prune_ref.sh.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/prune.h"
#include "deft_test.h"

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

static void prune_arch(const char *arch) {
    struct deft_graph *g = NULL, *g2 = NULL;
    struct deft_runtime *rt = NULL, *rt2 = NULL;
    struct deft_prune_plan *p = NULL;
    struct deft_named_tensor *w2 = NULL;
    struct deft_tensor *views = NULL;
    int in, out, n2 = 0, size = 64;
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 10, .height = size,
                                                        .width = size}, &g, &in, &out));
    if (!g) return;
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){0}, &rt));
    CHECK_OK(deft_runtime_init_params(rt, 5));
    struct deft_safetensors *st = weights_of(g, rt, &views);
    /* kaiming-initialized filters have norms within a few % of each other */
    CHECK_OK(deft_prune_analyze(g, st, &(struct deft_prune_opts){.threshold = 0.97f, .granularity = 4,
                                                                 .min_num_filters = 4}, &p));
    if (!p) goto done;
    struct deft_prune_counts c;
    CHECK_OK(deft_prune_counts(p, &c));
    int pruned = 0, layers = deft_prune_num_layers(p);
    for (int i = 0; i < layers; i++) {
        struct deft_prune_layer l;
        deft_prune_layer_info(p, i, &l);
        pruned += l.after < l.before;
        for (int k = 1; k < l.after; k++) CHECK(l.retained[k] > l.retained[k - 1], "%s: retained not ascending", l.name);
    }
    CHECK(c.params_after < c.params_before && c.flops_after < c.flops_before && pruned > layers / 3,
          "%s: params %lld -> %lld, %d of %d layers pruned", arch, (long long)c.params_before,
          (long long)c.params_after, pruned, layers);
    CHECK_OK(deft_prune_apply(p, st, &g2, &w2, &n2));
    if (!g2) goto done;
    CHECK_OK(deft_graph_validate(g2));
    CHECK_OK(deft_runtime_create(g2, &(struct deft_runtime_opts){0}, &rt2));
    struct deft_safetensors st2 = {.n_tensors = n2, .tensors = w2};
    if (rt2) CHECK_OK(deft_model_copy_to_runtime(&st2, rt2, 0, NULL));
    size_t n = (size_t)3 * size * size;
    float *x = malloc(n * sizeof *x), y[10];
    for (size_t i = 0; i < n; i++) x[i] = deft_rng_normal(3, 0, i);
    bool finite = false;
    if (rt2 && !deft_runtime_set_input(rt2, in, x, n) && !deft_runtime_run(rt2) && !deft_runtime_read(rt2, out, y, 10)) {
        finite = true;
        for (int i = 0; i < 10; i++) finite &= isfinite(y[i]);
    }
    CHECK(finite, "%s: the pruned graph runs to finite logits", arch);
    printf("%-16s %3d/%3d layers pruned, params %.3fM -> %.3fM\n", arch, pruned, layers, c.params_before * 1e-6,
           (double)c.params_after * 1e-6);
    /* threshold 0 with every filter above it: the same parameter count */
    CHECK_OK(deft_prune_decide(p, 0.0f));
    CHECK_OK(deft_prune_counts(p, &c));
    CHECK(c.params_after == c.params_before, "%s: threshold 0 keeps everything", arch);
    free(x);
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

int main(void) {
    for (const char *const *a = deft_model_arch_names(); *a; a++) {
        /* the same block structures at other depths/widths are left out for time */
        if (!strncmp(*a, "vgg", 3) || !strcmp(*a, "resnet34") || !strcmp(*a, "resnet101") || !strcmp(*a, "resnet152") ||
            !strcmp(*a, "efficientnet_b1") || !strcmp(*a, "efficientnet_b2") || !strcmp(*a, "darknet53"))
            continue;
        prune_arch(*a);
    }
    return test_summary();
}

/* test_freeze_accum.c - parameter freezing by name prefix, frozen BN, and
 * gradient accumulation: two micro-batches accumulated give the same update
 * as one step on their mean gradient (the same micro-batch twice == once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/trainer.h"

enum { B = 4, S = 32, C = 3 };

static struct deft_trainer *make(int accum, const char *const *freeze, enum deft_bn_mode bn) {
    struct deft_trainer *t = NULL;
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.arch = "resnet10", .num_classes = C, .batch = B, .height = S, .width = S, .bn_mode = bn},
        .optim = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f}, .lr = {.lr = 0.05f}, .seed = 3,
        .accum_steps = accum, .freeze_prefixes = freeze}, &t));
    return t;
}

static void batch(float *x, float *y, int s) {
    for (int i = 0; i < B * 3 * S * S; i++) x[i] = deft_rng_normal(4, (uint64_t)s, (uint64_t)i);
    for (int i = 0; i < B; i++) y[i] = (float)(i % C);
}

static float *snapshot(struct deft_trainer *t, const char *name) {
    struct deft_runtime *rt = deft_trainer_runtime(t);
    const struct deft_graph *g = deft_runtime_graph(rt);
    int v = deft_graph_find_value(g, name);
    size_t n = (size_t)deft_shape_numel(&deft_graph_value(g, v)->shape);
    float *c = malloc(n * sizeof(float));
    memcpy(c, deft_runtime_data(rt, v), n * sizeof(float));
    return c;
}

static bool same(struct deft_trainer *t, const char *name, const float *ref) {
    struct deft_runtime *rt = deft_trainer_runtime(t);
    const struct deft_graph *g = deft_runtime_graph(rt);
    int v = deft_graph_find_value(g, name);
    size_t n = (size_t)deft_shape_numel(&deft_graph_value(g, v)->shape);
    return memcmp(deft_runtime_data(rt, v), ref, n * sizeof(float)) == 0;
}

int main(void) {
    float x[B * 3 * S * S], y[B], loss;
    /* freezing: the stem and layer1 stay fixed, the rest moves */
    const char *const freeze[] = {"conv1.", "bn1.", "layer1.", NULL};
    struct deft_trainer *f = make(1, freeze, DEFT_BN_TRAIN);
    float *w0 = snapshot(f, "layer1.0.conv1.weight"), *c0 = snapshot(f, "conv1.weight"),
          *w2 = snapshot(f, "layer2.0.conv1.weight");
    for (int s = 0; s < 3; s++) {
        batch(x, y, s);
        CHECK_OK(deft_trainer_step(f, x, y, &loss));
    }
    CHECK(same(f, "layer1.0.conv1.weight", w0) && same(f, "conv1.weight", c0), "frozen params changed");
    CHECK(!same(f, "layer2.0.conv1.weight", w2), "trainable params did not change");
    CHECK(deft_graph_find_node(deft_runtime_graph(deft_trainer_runtime(f)), "layer1.0.conv1.bwd_weights") < 0,
          "a weight-gradient node was generated for a frozen conv");
    printf("freeze: conv1/layer1 unchanged after 3 steps, layer2 moved\n");
    free(w0), free(c0), free(w2);
    deft_trainer_free(f);

    /* frozen BN: running statistics stay fixed while training */
    f = make(1, NULL, DEFT_BN_FROZEN);
    float *rm = snapshot(f, "layer2.0.bn1.running_mean");
    batch(x, y, 0);
    CHECK_OK(deft_trainer_step(f, x, y, &loss));
    CHECK(same(f, "layer2.0.bn1.running_mean", rm), "frozen BN statistics changed");
    free(rm);
    deft_trainer_free(f);

    /* accumulation: the same micro-batch twice with accum 2 == one plain step */
    struct deft_trainer *a = make(2, NULL, DEFT_BN_TRAIN), *b = make(1, NULL, DEFT_BN_TRAIN);
    for (int s = 0; s < 2; s++) {
        batch(x, y, s);
        CHECK_OK(deft_trainer_step(a, x, y, &loss));
        CHECK_OK(deft_trainer_step(a, x, y, &loss));
        CHECK_OK(deft_trainer_step(b, x, y, &loss));
    }
    CHECK(deft_trainer_steps(a) == 2 && deft_trainer_steps(b) == 2, "optimizer step counts");
    size_t n;
    float *pa = deft_runtime_param_block(deft_trainer_runtime(a), &n);
    float *pb = deft_runtime_param_block(deft_trainer_runtime(b), &n);
    CHECK(test_max_rel_err(pa, pb, n) < 1e-6, "accumulated update differs: %.2e", test_max_rel_err(pa, pb, n));
    printf("accumulation: 2 x micro-batch vs 1 step, max relative difference %.2e\n", test_max_rel_err(pa, pb, n));
    deft_trainer_free(a);
    deft_trainer_free(b);
    return test_summary();
}

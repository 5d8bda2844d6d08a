/* test_determinism.c - the same seed and thread count give bit-identical
 * weights after 20 steps, and a run stopped after a checkpoint and resumed
 * in a fresh trainer ends bit-identical to an uninterrupted one (params, BN
 * statistics, optimizer state and step counter all restored). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/trainer.h"

enum { B = 8, S = 32, C = 4 };

static struct deft_trainer *make(const char *arch, enum deft_optim_kind k) {
    struct deft_trainer *t = NULL;
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.arch = arch, .num_classes = C, .batch = B, .height = S, .width = S},
        .optim = {.kind = k, .momentum = 0.9f, .weight_decay = 1e-4f},
        .lr = {.kind = DEFT_LR_COSINE, .lr = 0.01f, .total_steps = 20, .warmup_steps = 3}, .seed = 7}, &t));
    return t;
}

static void run(struct deft_trainer *t, int from, int to) {
    float x[B * 3 * S * S], y[B], loss;
    for (int s = from; s < to; s++) {
        for (int i = 0; i < B * 3 * S * S; i++) x[i] = deft_rng_normal(9, (uint64_t)s, (uint64_t)i);
        for (int i = 0; i < B; i++) y[i] = (float)(deft_rng_u64(9, (uint64_t)s, (uint64_t)i) % C);
        CHECK_OK(deft_trainer_step(t, x, y, &loss));
    }
}

/* FNV-1a over every param and state tensor */
static uint64_t digest(struct deft_trainer *t) {
    struct deft_runtime *rt = deft_trainer_runtime(t);
    const struct deft_graph *g = deft_runtime_graph(rt);
    uint64_t h = 1469598103934665603ull;
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        const unsigned char *p = (const unsigned char *)deft_runtime_data(rt, v);
        size_t n = (size_t)deft_shape_numel(&val->shape) * sizeof(float);
        for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

static void check_arch(const char *arch, enum deft_optim_kind k) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s_%s.safetensors", test_tmpdir(), arch, deft_optim_name(k));
    struct deft_trainer *a = make(arch, k), *b = make(arch, k), *c = make(arch, k);
    if (!a || !b || !c) return;
    run(a, 0, 20);
    run(b, 0, 20);
    uint64_t da = digest(a), db = digest(b);
    CHECK(da == db, "%s/%s: two identical runs differ", arch, deft_optim_name(k));
    /* interrupted run: 10 steps, checkpoint, a new trainer resumes */
    run(c, 0, 10);
    CHECK_OK(deft_trainer_save(c, path));
    deft_trainer_free(c);
    c = make(arch, k);
    CHECK_OK(deft_trainer_resume(c, path));
    CHECK(deft_trainer_steps(c) == 10, "resumed step counter %lld", (long long)deft_trainer_steps(c));
    run(c, 10, 20);
    uint64_t dc = digest(c);
    CHECK(dc == da, "%s/%s: resumed run differs from the uninterrupted one", arch, deft_optim_name(k));
    printf("%s/%s: 20 steps digest %016llx, rerun %016llx, resumed-at-10 %016llx\n", arch, deft_optim_name(k),
           (unsigned long long)da, (unsigned long long)db, (unsigned long long)dc);
    deft_trainer_free(a);
    deft_trainer_free(b);
    deft_trainer_free(c);
}

int main(void) {
    check_arch("resnet10", DEFT_OPTIM_SGD);
    check_arch("mobilenet_v2", DEFT_OPTIM_ADAMW);
    return test_summary();
}

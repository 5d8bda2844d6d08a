/* test_train_smoke.c - autograd + runtime + SGD on a small conv net learn a
 * generated task on every backend (ref, cpu, and the CUDA backend's host
 * emulation, whose optimizer update runs as device kernels), and the
 * generated backward graph has no data-gradient node for the first
 * convolution. cuda-emu must also end with the reference's weights, and its
 * fp16 AMP run (16-bit products, dynamic loss scaling) must still learn.
 * The trainer's loss scaling: a scale too large for fp16 makes the first
 * steps overflow; each is skipped (weights untouched) and halves the scale. */
#include <string.h>
#include "deft_test.h"
#include <math.h>
#include "deft/optim.h"

static int build(struct deft_graph **out, int *x, int *t, int *loss) {
    struct deft_graph *g;
    if (deft_graph_create(&g)) return -1;
    *x = deft_input(g, "input_1", deft_shape4(8, 3, 12, 12));
    *t = deft_input(g, "target", (struct deft_shape){.ndim = 1, .d = {8}});
    struct deft_conv_attr c = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int y = deft_conv2d(g, "conv1", *x, 8, 3, 3, &c, false);
    y = deft_batchnorm(g, "bn1", y, DEFT_BN_TRAIN);
    y = deft_act(g, "relu", y, DEFT_ACT_RELU, 0);
    y = deft_pool(g, "pool", y, &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2}, .stride = {2, 2}});
    y = deft_global_avgpool(g, "gap", y);
    y = deft_flatten(g, "flatten", y);
    y = deft_linear(g, "fc", y, 2, true);
    *loss = deft_loss(g, "loss", y, *t, &(struct deft_loss_attr){.kind = DEFT_LOSS_SOFTMAX_CE});
    *out = g;
    return deft_graph_status(g) ? -1 : 0;
}

static void batch(float *x, float *t, int step) {
    /* class 1: bright centre; class 0: dark centre */
    for (int n = 0; n < 8; n++) {
        int cls = (n + step) % 2;
        t[n] = (float)cls;
        for (int i = 0; i < 3 * 144; i++) {
            int p = i % 144, r = p / 12, c = p % 12;
            bool centre = r >= 4 && r < 8 && c >= 4 && c < 8;
            x[n * 432 + i] = (centre ? (cls ? 1.0f : -1.0f) : 0.0f) +
                             0.3f * deft_rng_normal(1, (uint64_t)step, (uint64_t)(n * 432 + i));
        }
    }
}

static float params_after[4][1024];
static size_t n_params;

static double train(const char *backend, int steps, enum deft_amp amp, int slot) {
    struct deft_graph *g;
    int x, t, loss;
    if (build(&g, &x, &t, &loss)) return 1e9;
    CHECK_OK(deft_autograd(g, loss, NULL));
    int conv_bwd_data = deft_graph_find_node(g, "conv1.bwd_data");
    CHECK(conv_bwd_data < 0, "first conv must get no data gradient");
    struct deft_runtime *rt;
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend, .amp = amp}, &rt));
    CHECK_OK(deft_runtime_init_params(rt, 42));
    float one = 1.0f;
    CHECK_OK(deft_runtime_set_input(rt, deft_graph_find_value(g, "loss_grad"), &one, 1));
    struct deft_optim *opt;
    CHECK_OK(deft_optim_create(&(struct deft_optim_config){.kind = DEFT_OPTIM_SGD, .momentum = 0.9f}, rt, &opt));
    float xb[8 * 432], tb[8], l = 0, first = 0;
    for (int s = 0; s < steps; s++) {
        batch(xb, tb, s);
        CHECK_OK(deft_runtime_set_input(rt, x, xb, 8 * 432));
        CHECK_OK(deft_runtime_set_input(rt, t, tb, 8));
        CHECK_OK(deft_runtime_run(rt));
        CHECK_OK(deft_runtime_read(rt, loss, &l, 1));
        if (s == 0) first = l;
        /* fp16: the trainer's loss scaling, by hand (the seed carries the scale) */
        float scale = amp == DEFT_AMP_FP16 ? 1024.0f : 1.0f;
        CHECK_OK(deft_runtime_set_input(rt, deft_graph_find_value(g, "loss_grad"), &scale, 1));
        CHECK_OK(deft_optim_step_scaled(opt, 0.1f, 1.0f / scale));
    }
    size_t np;
    const float *pb = deft_runtime_param_block(rt, &np);
    n_params = np < 1024 ? np : 1024;
    memcpy(params_after[slot], pb, n_params * sizeof(float));
    struct deft_runtime_stats st;
    deft_runtime_stats(rt, &st);
    printf("%s: loss %.4f -> %.4f over %d steps; arena %zu B (naive %zu B)\n", backend, first, l, steps,
           st.arena_bytes, st.naive_bytes);
    CHECK(st.arena_bytes <= st.naive_bytes, "planner made things worse");
    deft_optim_free(opt);
    deft_runtime_free(rt);
    deft_graph_free(g);
    return l / first;
}

#include "deft/trainer.h"
static void loss_scaling(void) {
    struct deft_trainer *t;
    const float start = 1099511627776.0f; /* 2^40: products overflow fp16's 65504 */
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.arch = "resnet10", .num_classes = 2, .batch = 2, .height = 16, .width = 16},
        .optim = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f}, .lr = {.lr = 0.01f}, .backend = "cuda-emu",
        .amp = DEFT_AMP_FP16, .loss_scale = start, .seed = 1}, &t));
    if (!t) return;
    float x[2 * 3 * 16 * 16], y[2] = {0, 1}, l = 0;
    for (int i = 0; i < 2 * 3 * 16 * 16; i++) x[i] = deft_rng_normal(3, 0, (uint64_t)i);
    int calls = 0;
    while (deft_trainer_loss_scale(t) == start && calls < 10) {
        CHECK_OK(deft_trainer_step(t, x, y, &l));
        calls++;
    }
    const int64_t skipped = calls - deft_trainer_steps(t);
    printf("fp16 loss scaling: scale 2^40 -> %g after %d calls, %lld skipped, loss %.4f\n",
           deft_trainer_loss_scale(t), calls, (long long)skipped, l);
    CHECK(deft_trainer_loss_scale(t) == start / 2, "an overflow halves the scale (now %g)", deft_trainer_loss_scale(t));
    CHECK(skipped == 1 && deft_trainer_steps(t) == 0, "the overflowing step was skipped (%lld steps)",
          (long long)deft_trainer_steps(t));
    for (int i = 0; i < 60 && deft_trainer_steps(t) < 3; i++) CHECK_OK(deft_trainer_step(t, x, y, &l));
    CHECK(deft_trainer_steps(t) > 0 && isfinite(l), "training resumes once the scale fits (%lld steps, loss %g)",
          (long long)deft_trainer_steps(t), l);
    size_t np;
    const float *pb = deft_runtime_param_block(deft_trainer_runtime(t), &np);
    bool finite = true;
    for (size_t i = 0; i < np; i++) finite = finite && isfinite(pb[i]);
    CHECK(finite, "weights stay finite through the skipped steps");
    printf("  then scale %g, %lld optimizer steps\n", deft_trainer_loss_scale(t), (long long)deft_trainer_steps(t));
    deft_trainer_free(t);
}

int main(void) {
    long live0 = deft_alloc_live();
    double r_ref = train("ref", 30, DEFT_AMP_OFF, 0);
    CHECK(r_ref < 0.5, "ref backend: loss ratio %.3f should fall below 0.5", r_ref);
    double r_cpu = train("cpu", 30, DEFT_AMP_OFF, 1);
    CHECK(r_cpu < 0.5, "cpu backend: loss ratio %.3f should fall below 0.5", r_cpu);
    double r_emu = train("cuda-emu", 30, DEFT_AMP_OFF, 2);
    CHECK(r_emu < 0.5, "cuda-emu backend: loss ratio %.3f should fall below 0.5", r_emu);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n_params; i++) {
        worst = fmax(worst, fabs((double)params_after[2][i] - params_after[0][i]));
        scale = fmax(scale, fabs((double)params_after[0][i]));
    }
    printf("cuda-emu vs ref after 30 steps: max |dw| %.3g (weights up to %.3g)\n", worst, scale);
    CHECK(worst <= 1e-4 * (scale > 1 ? scale : 1), "cuda-emu weights differ from ref by %.3g", worst);
    double r_fp16 = train("cuda-emu", 30, DEFT_AMP_FP16, 3);
    CHECK(r_fp16 < 0.5, "cuda-emu fp16 AMP: loss ratio %.3f should fall below 0.5", r_fp16);
    loss_scaling();
    CHECK(deft_alloc_live() == live0, "leaked %ld blocks", deft_alloc_live() - live0);
    return test_summary();
}

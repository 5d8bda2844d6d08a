/* bench_cpu_ops.c - training-step throughput of the cpu backend.
 *
 *     bench_cpu_ops [arch] [batch] [steps]     (default resnet18 16 5)
 *
 * arch "chain" is a ResNet-like stack of four 3x3 64->64 conv+bn+relu layers
 * at 56x56 (3.7 GFLOP per conv forward at batch 16), for per-op timings.
 *
 * Builds the training graph (forward, softmax cross-entropy, autograd),
 * compiles it for the oneDNN backend and times full forward+backward steps
 * (no optimizer update), then prints images/s and the per-op profile.
 * Thread count: OMP_NUM_THREADS (PyTorch's peer numbers use 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/models.h"

int main(int argc, char **argv) {
    const char *arch = argc > 1 ? argv[1] : "resnet18";
    int batch = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 16;
    int steps = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 5;
    const char *backend = getenv("DEFT_BACKEND") ? getenv("DEFT_BACKEND") : "cpu";
    struct deft_graph *g;
    int input, logits, target, loss;
    size_t nin, ntarget;
    if (strcmp(arch, "chain") == 0) {
        if (deft_graph_create(&g)) return 1;
        input = deft_input(g, "input_1", deft_shape4(batch, 64, 56, 56));
        struct deft_conv_attr c = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
        int y = input;
        for (int i = 0; i < 4; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "conv%d", i);
            y = deft_conv2d(g, nm, y, 64, 3, 3, &c, false);
            snprintf(nm, sizeof nm, "bn%d", i);
            y = deft_batchnorm(g, nm, y, DEFT_BN_TRAIN);
            snprintf(nm, sizeof nm, "relu%d", i);
            y = deft_act(g, nm, y, DEFT_ACT_RELU, 0);
        }
        logits = deft_global_avgpool(g, "gap", y);
        logits = deft_flatten(g, "flatten", logits);
        target = deft_input(g, "target", deft_graph_value(g, logits)->shape);
        loss = deft_loss(g, "loss", logits, target, &(struct deft_loss_attr){.kind = DEFT_LOSS_L2});
        nin = (size_t)batch * 64 * 56 * 56;
        ntarget = (size_t)batch * 64;
    } else {
        struct deft_model_opts o = {.arch = arch, .num_classes = 1000, .batch = batch, .training = true};
        if (deft_model_build(&o, &g, &input, &logits)) {
            fprintf(stderr, "%s\n", deft_last_error());
            return 1;
        }
        target = deft_input(g, "target", (struct deft_shape){.ndim = 1, .d = {batch}});
        loss = deft_loss(g, "loss", logits, target, &(struct deft_loss_attr){.kind = DEFT_LOSS_SOFTMAX_CE});
        nin = (size_t)batch * 3 * 224 * 224;
        ntarget = (size_t)batch;
    }
    if (deft_graph_status(g) || deft_autograd(g, loss, NULL)) {
        fprintf(stderr, "%s\n", deft_last_error());
        return 1;
    }
    double t0 = deft_time_now();
    struct deft_runtime *rt;
    if (deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend}, &rt)) {
        fprintf(stderr, "%s\n", deft_last_error());
        return 1;
    }
    double t_compile = deft_time_now() - t0;
    if (deft_runtime_init_params(rt, 1)) return 1;
    float *x = malloc(nin * sizeof *x), *t = malloc(ntarget * sizeof *t), one = 1.0f;
    for (size_t i = 0; i < nin; i++) x[i] = deft_rng_normal(7, 0, i);
    for (size_t i = 0; i < ntarget; i++) t[i] = (float)(i % 1000);
    if (deft_runtime_set_input(rt, input, x, nin) || deft_runtime_set_input(rt, target, t, ntarget) ||
        deft_runtime_set_input(rt, deft_graph_find_value(g, "loss_grad"), &one, 1)) {
        fprintf(stderr, "%s\n", deft_last_error());
        return 1;
    }
    if (deft_runtime_run(rt)) { /* warm-up */
        fprintf(stderr, "%s\n", deft_last_error());
        return 1;
    }
    double best = 1e30, total = 0;
    for (int s = 0; s < steps; s++) {
        double a = deft_time_now();
        if (deft_runtime_run(rt)) {
            fprintf(stderr, "%s\n", deft_last_error());
            return 1;
        }
        double d = deft_time_now() - a;
        total += d;
        if (d < best) best = d;
    }
    float l = 0;
    if (deft_runtime_read(rt, loss, &l, 1)) return 1;
    struct deft_runtime_stats st;
    deft_runtime_stats(rt, &st);
    printf("%s batch %d threads %d backend %s: compile %.0f ms, step best %.1f ms mean %.1f ms, "
           "%.1f img/s (best), loss %.3f, arena %.0f MiB, scratch %.1f MiB\n",
           arch, batch, deft_get_threads(), backend, t_compile * 1e3, best * 1e3, total / steps * 1e3,
           batch / best, l, st.arena_bytes / 1048576.0, st.scratch_bytes / 1048576.0);
    deft_runtime_print_profile(rt, stdout);
    deft_runtime_free(rt);
    deft_graph_free(g);
    free(x);
    free(t);
    return 0;
}

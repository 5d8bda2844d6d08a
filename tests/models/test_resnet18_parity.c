/* test_resnet18_parity.c - a whole ResNet-18 training step (forward, loss,
 * backward, SGD) matches PyTorch's loss and every parameter gradient on the
 * same weights and batch (weights passed through safetensors), and 10 SGD
 * steps track PyTorch's loss curve within 1e-3 relative.
 *
 * The run repeats one batch with lr 0.0005 so the loss falls ~10x in 10 steps
 * while staying well-conditioned: ReLU networks amplify float32 rounding, and
 * with larger learning rates or fresh random-label batches PyTorch's own
 * float32 and float64 runs already differ by 1-4% after 10 steps (measured),
 * so no float32 implementation could track them within 1e-3.
 *
 * The reference is PyTorch in float64. Its float32 run is measured in the same
 * script, and the bound is 1e-3 or twice PyTorch's own float32 error,
 * whichever is larger: on some CPUs (an AMD EPYC, torch 1.13) PyTorch's float32
 * lands 7e-2 (gradient) and 5e-3 (loss curve) from float64 on this batch, where
 * on an Intel Xeon it stayed within 1e-3. A wrong kernel is off by O(1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/io.h"
#include "deft/trainer.h"

enum { B = 8, S = 64, CLASSES = 10, STEPS = 10, NB = 1 };

static enum deft_status save_weights(struct deft_trainer *t, const char *path) {
    struct deft_runtime *rt = deft_trainer_runtime(t);
    const struct deft_graph *g = deft_runtime_graph(rt);
    int nv = deft_graph_num_values(g), n = 0;
    struct deft_named_tensor *nt = calloc((size_t)nv, sizeof *nt);
    struct deft_tensor *tv = calloc((size_t)nv, sizeof *tv);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        tv[n] = deft_tensor_view(DEFT_F32, &val->shape, deft_runtime_data(rt, v));
        nt[n] = (struct deft_named_tensor){val->name, &tv[n]};
        n++;
    }
    enum deft_status s = deft_safetensors_write(path, nt, n, NULL, 0);
    free(nt);
    free(tv);
    return s;
}

int main(void) {
    if (!test_have_torch()) test_skip("python3-torch not available");
    const char *dir = test_tmpdir();
    char path[512], cmd[1024];
    struct deft_trainer *t;
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.arch = "resnet18", .num_classes = CLASSES, .batch = B, .height = S, .width = S},
        .optim = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f, .decay_all = true},
        .lr = {.lr = 0.0005f}, .seed = 3, .backend = getenv("DEFT_TEST_BACKEND")}, &t));
    if (test_failed) return test_summary();
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    CHECK_OK(save_weights(t, path));
    size_t xn = (size_t)NB * B * 3 * S * S;
    float *x = malloc(xn * sizeof(float)), y[NB * B];
    for (size_t i = 0; i < xn; i++) x[i] = deft_rng_normal(5, 0, i);
    for (int i = 0; i < NB * B; i++) y[i] = (float)(deft_rng_u64(5, 1, (uint64_t)i) % CLASSES);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    test_npy_write(path, x, (int64_t[]){NB, B, 3, S, S}, 5);
    snprintf(path, sizeof path, "%s/y.npy", dir);
    test_npy_write(path, y, (int64_t[]){NB, B}, 2);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/resnet_parity.py %s %d", test_source_dir(), dir, STEPS);
    CHECK(system(cmd) == 0, "reference script failed: %s", cmd);

    int64_t eshape[8];
    int end;
    snprintf(path, sizeof path, "%s/torch32_err.npy", dir);
    float *t32 = test_npy_read(path, eshape, &end);
    CHECK(t32 && eshape[0] == 2, "no measure of PyTorch's float32 error");
    double gtol = 1e-3, ltol = 1e-3;
    if (t32) {
        gtol = fmax(gtol, 2.0 * t32[0]);
        ltol = fmax(ltol, 2.0 * t32[1]);
        printf("PyTorch float32 vs float64: gradient %.2e, loss curve %.2e -> bounds %.2e, %.2e\n", t32[0], t32[1],
               gtol, ltol);
        free(t32);
    }
    float losses[STEPS];
    for (int s = 0; s < STEPS; s++) {
        CHECK_OK(deft_trainer_step(t, x + (size_t)(s % NB) * B * 3 * S * S, y + (s % NB) * B, &losses[s]));
        if (s != 0) continue;
        /* step 0: compare every parameter gradient */
        struct deft_runtime *rt = deft_trainer_runtime(t);
        const struct deft_graph *g = deft_runtime_graph(rt);
        double worst = 0;
        const char *worst_name = "";
        int compared = 0;
        for (int v = 0; v < deft_graph_num_values(g); v++) {
            const struct deft_value *val = deft_graph_value(g, v);
            if (val->kind != DEFT_VALUE_PARAM) continue;
            int64_t shape[8];
            int nd;
            snprintf(path, sizeof path, "%s/grad.%s.npy", dir, val->name);
            float *ref = test_npy_read(path, shape, &nd);
            CHECK(ref != NULL, "no PyTorch gradient for %s", val->name);
            if (!ref) continue;
            double e = test_max_rel_err(deft_runtime_grad(rt, v), ref, (size_t)deft_shape_numel(&val->shape));
            if (e > worst) { worst = e; worst_name = val->name; }
            compared++;
            free(ref);
        }
        printf("step 0: %d parameter gradients compared, worst max relative error %.2e (%s)\n", compared,
               worst, worst_name);
        CHECK(compared == 62, "expected 62 parameter tensors, compared %d", compared);
        CHECK(worst <= gtol, "gradient error %.2e above %.2e (%s)", worst, gtol, worst_name);
    }
    int64_t shape[8];
    int nd;
    snprintf(path, sizeof path, "%s/losses.npy", dir);
    float *ref = test_npy_read(path, shape, &nd);
    CHECK(ref && shape[0] == STEPS, "no reference loss curve");
    if (ref) {
        double worst = 0;
        for (int s = 0; s < STEPS; s++) {
            double e = fabs(losses[s] - ref[s]) / fabs(ref[s]);
            printf("step %2d: deft loss %.6f  torch loss %.6f  rel %.1e\n", s, losses[s], ref[s], e);
            if (e > worst) worst = e;
        }
        CHECK(fabs(losses[0] - ref[0]) / fabs(ref[0]) <= 1e-4, "step-0 loss differs by more than 1e-4");
        CHECK(worst <= ltol, "loss curve differs by %.2e (> %.2e relative)", worst, ltol);
        free(ref);
    }
    free(x);
    deft_trainer_free(t);
    return test_summary();
}

/* test_model_forward.c - the architectures run:
 *  - every architecture beyond resnet/mobilenet_v2 builds, compiles and runs a forward
 *    pass on the cpu backend at 64x64 (inference graph, initialized weights), giving
 *    finite logits of the right shape;
 *  - a training step (forward + backward + SGD) of the ones with new ops in their
 *    backward pass (squeeze-excitation's broadcast mul, cspdarknet's slices, concats)
 *    at 32x32 (the smallest input every one of them takes);
 *  - the exact adaptive average pool (vgg's AdaptiveAvgPool2d(7x7) at sizes that do not
 *    divide) against a direct computation of PyTorch's bins;
 *  - squeezenet1_0, efficientnet_b0 and googlenet against torchvision on the same weights
 *    and input (tests/ref/model_forward.py writes them as .npy), eval mode, logits within
 *    1e-4 of the output scale. Without torch that part reports SKIP. */
#include <math.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/models.h"
#include "deft/runtime.h"
#include "deft/trainer.h"
#include "models/models_impl.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *backend(void) {
    const char *b = getenv("DEFT_TEST_BACKEND");
    return b ? b : "cpu";
}

/* Weights for a smoke run, fast: deft_runtime_init_params draws vgg's 138M normals in
 * seconds; here BN is the identity and weights are uniform with variance 2/fan_in
 * (activations keep their scale), from a 64-bit LCG. */
static void fast_fill(const struct deft_graph *g, struct deft_runtime *rt) {
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        float *d = deft_runtime_data(rt, v);
        int64_t n = deft_shape_numel(&val->shape);
        const char *dot = strrchr(val->name, '.');
        bool ones = val->init == DEFT_INIT_ONES || (dot && strcmp(dot, ".running_var") == 0);
        bool zeros = !ones && (val->init == DEFT_INIT_ZEROS || val->kind == DEFT_VALUE_STATE);
        float a = (float)sqrt(6.0 / (val->fan_in > 0 ? val->fan_in : 1));
        for (int64_t i = 0; i < n; i++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            d[i] = ones ? 1.0f : zeros ? 0.0f : a * ((float)(s >> 40) / (float)(1u << 24) * 2 - 1);
        }
    }
}

static void forward_smoke(const char *arch, int size) {
    struct deft_graph *g = NULL;
    struct deft_runtime *rt = NULL;
    int in, out;
    double t0 = now();
    struct deft_model_opts o = {.arch = arch, .num_classes = 10, .height = size, .width = size};
    CHECK_OK(deft_model_build(&o, &g, &in, &out));
    if (!g) return;
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend()}, &rt));
    if (!rt) goto done;
    fast_fill(g, rt);
    size_t n = (size_t)3 * size * size;
    float *x = malloc(n * sizeof *x), y[10];
    for (size_t i = 0; i < n; i++) x[i] = deft_rng_normal(3, 0, i);
    CHECK_OK(deft_runtime_set_input(rt, in, x, n));
    CHECK_OK(deft_runtime_run(rt));
    CHECK_OK(deft_runtime_read(rt, out, y, 10));
    bool finite = true, nonzero = false;
    for (int i = 0; i < 10; i++) {
        finite &= isfinite(y[i]);
        nonzero |= y[i] != 0;
    }
    CHECK(finite && nonzero, "%s at %d: logits %g %g ...", arch, size, y[0], y[1]);
    printf("forward %-16s at %dx%d: %.2f s\n", arch, size, size, now() - t0);
    free(x);
done:
    deft_runtime_free(rt);
    deft_graph_free(g);
}

static void train_step(const char *arch, int size) {
    struct deft_trainer *t = NULL;
    double t0 = now();
    enum { B = 2 };
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.arch = arch, .num_classes = 5, .batch = B, .height = size, .width = size},
        .optim = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f}, .lr = {.lr = 0.01f}, .seed = 2,
        .backend = backend()}, &t));
    if (!t) return;
    size_t n = (size_t)B * 3 * size * size;
    float *x = malloc(n * sizeof *x), lab[B] = {1, 3}, loss[2] = {0, 0};
    for (size_t i = 0; i < n; i++) x[i] = deft_rng_normal(4, 0, i);
    CHECK_OK(deft_trainer_step(t, x, lab, &loss[0]));
    CHECK(isfinite(loss[0]) && loss[0] > 0, "%s training loss %g", arch, loss[0]);
    printf("train   %-16s at %dx%d: 1 step, %.2f s\n", arch, size, size, now() - t0);
    free(x);
    deft_trainer_free(t);
}

/* PyTorch's AdaptiveAvgPool2d, directly. */
static void adaptive_ref(const float *x, int c, int h, int w, int oh, int ow, float *y) {
    for (int k = 0; k < c; k++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int r0 = i * h / oh, r1 = ((i + 1) * h + oh - 1) / oh;
                int c0 = j * w / ow, c1 = ((j + 1) * w + ow - 1) / ow;
                double s = 0;
                for (int r = r0; r < r1; r++)
                    for (int q = c0; q < c1; q++) s += x[(k * h + r) * w + q];
                y[(k * oh + i) * ow + j] = (float)(s / ((r1 - r0) * (c1 - c0)));
            }
}

static void check_adaptive_pool(void) {
    const int sizes[][2] = {{2, 2}, {1, 1}, {5, 3}, {14, 14}, {10, 7}, {9, 20}};
    for (int t = 0; t < 6; t++) {
        int c = 3, h = sizes[t][0], w = sizes[t][1];
        struct deft_model_ctx *m = calloc(1, sizeof *m);
        struct deft_runtime *rt = NULL;
        CHECK_OK(deft_graph_create(&m->g));
        int x = deft_input(m->g, "x", deft_shape4(2, c, h, w));
        int y = deft_model_adaptive_avgpool(m, "avgpool", x, 7, 7);
        CHECK(deft_graph_status(m->g) == DEFT_OK && y >= 0, "adaptive pool %dx%d: %s", h, w, deft_last_error());
        if (y < 0 || y == x) {
            if (y == x) CHECK(h == 7 && w == 7, "identity only at 7x7");
            goto next;
        }
        deft_graph_value_mut(m->g, y)->flags |= DEFT_VF_OUTPUT;
        CHECK_OK(deft_runtime_create(m->g, &(struct deft_runtime_opts){.backend = backend()}, &rt));
        if (!rt) goto next;
        size_t n = (size_t)2 * c * h * w;
        float *xd = malloc(n * sizeof *xd), got[2 * 3 * 49], want[2 * 3 * 49];
        for (size_t i = 0; i < n; i++) xd[i] = deft_rng_normal(9, 0, i);
        CHECK_OK(deft_runtime_set_input(rt, x, xd, n));
        CHECK_OK(deft_runtime_run(rt));
        CHECK_OK(deft_runtime_read(rt, y, got, 2 * 3 * 49));
        for (int b = 0; b < 2; b++) adaptive_ref(xd + (size_t)b * c * h * w, c, h, w, 7, 7, want + b * c * 49);
        double e = test_max_abs_diff(got, want, 2 * 3 * 49);
        CHECK(e < 1e-5, "adaptive avg pool %dx%d -> 7x7: max diff %g", h, w, e);
        free(xd);
    next:
        deft_runtime_free(rt);
        deft_graph_free(m->g);
        free(m);
    }
}

/* Same weights and input as torchvision (eval mode): logits agree. */
static void against_torchvision(const char *dir, const char *arch, int classes, int size) {
    char path[1024];
    struct deft_graph *g = NULL;
    struct deft_runtime *rt = NULL;
    int in, out;
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = classes, .batch = 2,
                                                        .height = size, .width = size},
                              &g, &in, &out));
    if (!g) return;
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend()}, &rt));
    if (!rt) goto done;
    int loaded = 0, bad = 0;
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        int64_t shape[8];
        int nd = 0;
        snprintf(path, sizeof path, "%s/%s/%s.npy", dir, arch, val->name);
        float *t = test_npy_read(path, shape, &nd);
        int64_t numel = 1;
        for (int i = 0; i < nd; i++) numel *= shape[i];
        if (!t || numel != deft_shape_numel(&val->shape)) {
            if (!bad++) CHECK(false, "%s: no torchvision tensor %s of the right size", arch, val->name);
            free(t);
            continue;
        }
        memcpy(deft_runtime_data(rt, v), t, (size_t)numel * sizeof(float));
        free(t);
        loaded++;
    }
    int64_t shape[8];
    int nd;
    snprintf(path, sizeof path, "%s/%s/x.npy", dir, arch);
    float *x = test_npy_read(path, shape, &nd);
    snprintf(path, sizeof path, "%s/%s/y.npy", dir, arch);
    float *ref = test_npy_read(path, shape, &nd);
    CHECK(x && ref && nd == 2 && shape[0] == 2 && shape[1] == classes, "%s: reference files", arch);
    if (x && ref && !bad) {
        float *y = malloc((size_t)2 * classes * sizeof *y);
        CHECK_OK(deft_runtime_set_input(rt, in, x, (size_t)2 * 3 * size * size));
        CHECK_OK(deft_runtime_run(rt));
        CHECK_OK(deft_runtime_read(rt, out, y, (size_t)2 * classes));
        double scale = 0;
        for (int i = 0; i < 2 * classes; i++) scale = fmax(scale, fabs(ref[i]));
        double e = test_max_abs_diff(y, ref, (size_t)2 * classes);
        printf("%-16s %d tensors loaded, logits max |diff| %.3g (scale %.3g)\n", arch, loaded, e, scale);
        CHECK(scale > 0 && e <= 1e-4 * scale, "%s: logits differ from torchvision by %g (scale %g)", arch, e,
              scale);
        free(y);
    }
    free(x);
    free(ref);
done:
    deft_runtime_free(rt);
    deft_graph_free(g);
}

int main(void) {
    const char *archs[] = {"vgg16",        "vgg19",           "vgg16_bn",        "mobilenet_v1",
                           "efficientnet_b0", "efficientnet_b3", "googlenet",     "squeezenet1_0",
                           "squeezenet1_1", "darknet19",       "darknet53",       "cspdarknet53"};
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) forward_smoke(archs[i], 64);
    train_step("efficientnet_b0", 32);
    train_step("cspdarknet53", 32);
    train_step("googlenet", 32);
    train_step("squeezenet1_1", 32);
    check_adaptive_pool();
    if (test_failed) return test_summary();
    if (!test_have_torch()) test_skip("python3 with torch/torchvision not found: torchvision forward not compared");
    const char *dir = test_tmpdir();
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/ref/model_forward.py' '%s' squeezenet1_0:10:96 "
             "efficientnet_b0:10:96 googlenet:10:96",
             test_source_dir(), dir);
    CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    against_torchvision(dir, "squeezenet1_0", 10, 96);
    against_torchvision(dir, "efficientnet_b0", 10, 96);
    against_torchvision(dir, "googlenet", 10, 96);
    return test_summary();
}

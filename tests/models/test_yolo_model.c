/* test_yolo_model.c - the YOLOv4 / YOLOv4-tiny graphs and the backbone feature taps.
 *
 *  - shapes for every backbone (fast): input "input_1", outputs head_s32 / head_s16 / head_s8
 *    in that order with A*(5+C) channels at H/32, H/16, H/8; bad options rejected;
 *    freeze_bn / freeze_blocks / force_relu / mish reach the right nodes;
 *  - feature taps of the classification backbones: names, strides, and parameter names that
 *    are a subset of the classifier's (so its weights load by name);
 *  - parity: deft's randomly initialised weights (BN statistics randomised too) written as
 *    safetensors and loaded by name into an independent PyTorch definition
 *    (tests/ref/yolo_v4_torch.py, float64, eval mode): every head equal within
 *    1e-4 * max(1, max |out|), parameter names, shapes and counts equal. YOLOv4-resnet18 and
 *    YOLOv4-tiny at 416x416, YOLOv4-mobilenet_v2 and YOLOv4-tiny with Mish at 128x128.
 *    (cspdarknet53 agrees as well, 2.4e-6 relative, but its 64M parameters cost ~40 s here.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/io.h"
#include "deft/models.h"
#include "deft/runtime.h"
#include "deft/yolo_model.h"

static const char *backend(void) {
    const char *b = getenv("DEFT_TEST_BACKEND");
    return b ? b : "cpu";
}

static int outputs_of(const struct deft_graph *g, int out[4]) {
    int n = 0;
    for (int v = 0; v < deft_graph_num_values(g) && n < 4; v++)
        if (deft_graph_value(g, v)->flags & DEFT_VF_OUTPUT) out[n++] = v;
    return n;
}

static void shapes(const char *arch, int nl, bool tiny) {
    enum { C = 4, N = 2, H = 416, W = 320 };
    struct deft_graph *g = NULL;
    CHECK_OK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = arch, .nlayers = nl, .num_classes = C,
                                                            .batch = N, .height = H, .width = W,
                                                            .training = true},
                                &g));
    if (!g) return;
    CHECK_OK(deft_graph_validate(g));
    int in = deft_graph_find_value(g, "input_1"), out[4];
    CHECK(in >= 0 && deft_graph_value(g, in)->kind == DEFT_VALUE_INPUT, "%s%d: no input_1", arch, nl);
    int n = outputs_of(g, out);
    CHECK(n == (tiny ? 2 : 3), "%s%d: %d outputs", arch, nl, n);
    static const char *const names[3] = {"head_s32", "head_s16", "head_s8"};
    for (int i = 0; i < n && i < 3; i++) {
        const struct deft_value *v = deft_graph_value(g, out[i]);
        int s = 32 >> i;
        CHECK(strcmp(v->name, names[i]) == 0, "%s%d: output %d is %s", arch, nl, i, v->name);
        CHECK(v->shape.ndim == 4 && v->shape.d[0] == N && v->shape.d[1] == 3 * (5 + C) &&
                  v->shape.d[2] == H / s && v->shape.d[3] == W / s,
              "%s%d: %s shape [%lld, %lld, %lld, %lld]", arch, nl, v->name, (long long)v->shape.d[0],
              (long long)v->shape.d[1], (long long)v->shape.d[2], (long long)v->shape.d[3]);
    }
    struct deft_graph_stats st;
    deft_graph_stats(g, &st);
    printf("yolo_v4 %-16s %2d: %6.2fM params, %6.1f GFLOPs at %dx%d\n", arch, nl, st.params / 1e6,
           st.flops / 1e9 / N, H, W);
    deft_graph_free(g);
}

static void bad_options(void) {
    struct deft_graph *g = NULL;
    CHECK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "resnet", .nlayers = 18, .num_classes = 2,
                                                         .height = 400},
                             &g) == DEFT_ERR_INVALID_ARG && !g,
          "height 400 accepted");
    CHECK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "resnet", .nlayers = 18}, &g) ==
              DEFT_ERR_INVALID_ARG,
          "num_classes 0 accepted");
    CHECK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "cspdarknet_tiny", .num_classes = 2,
                                                         .anchors = {3, 3, 3}},
                             &g) == DEFT_ERR_INVALID_ARG,
          "tiny with small anchors accepted");
    CHECK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "resnt", .nlayers = 18, .num_classes = 2}, &g) ==
              DEFT_ERR_NOT_FOUND,
          "unknown arch: %s", deft_last_error());
    CHECK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "vgg", .nlayers = 16, .num_classes = 2}, &g) ==
              DEFT_ERR_UNSUPPORTED,
          "vgg: %s", deft_last_error());
    CHECK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "resnet", .nlayers = 18, .num_classes = 2,
                                                         .freeze_blocks = (int[]){9}, .n_freeze_blocks = 1},
                             &g) == DEFT_ERR_INVALID_ARG && !g,
          "freeze block 9 accepted");
    CHECK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "cspdarknet", .nlayers = 53, .num_classes = 2,
                                                         .activation = "gelu"},
                             &g) == DEFT_ERR_INVALID_ARG,
          "activation gelu accepted");
}

static enum deft_act_kind act_of(const struct deft_graph *g, const char *node) {
    int n = deft_graph_find_node(g, node);
    return n >= 0 ? deft_graph_node(g, n)->attr.act.kind : DEFT_ACT_COUNT;
}

static enum deft_bn_mode bn_of(const struct deft_graph *g, const char *node) {
    int n = deft_graph_find_node(g, node);
    return n >= 0 ? deft_graph_node(g, n)->attr.bn.mode : (enum deft_bn_mode)-1;
}

/* freeze_bn is the backbone's (TAO); freeze_blocks freezes the classifier's blocks;
 * force_relu beats the activation; mish reaches the CSP backbone only. */
static void options_reach_nodes(void) {
    struct deft_graph *g = NULL;
    CHECK_OK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "resnet", .nlayers = 18, .num_classes = 2,
                                                            .height = 64, .width = 64, .training = true,
                                                            .freeze_bn = true,
                                                            .freeze_blocks = (int[]){0, 1},
                                                            .n_freeze_blocks = 2},
                                &g));
    if (g) {
        CHECK(bn_of(g, "layer3.0.bn1") == DEFT_BN_FROZEN && bn_of(g, "yolo_neck_1.bn") == DEFT_BN_TRAIN,
              "freeze_bn: backbone %d neck %d", bn_of(g, "layer3.0.bn1"), bn_of(g, "yolo_neck_1.bn"));
        const struct deft_value *w = deft_graph_value(g, deft_graph_find_value(g, "layer1.0.conv1.weight"));
        const struct deft_value *w2 = deft_graph_value(g, deft_graph_find_value(g, "layer2.0.conv1.weight"));
        CHECK((w->flags & DEFT_VF_FROZEN) && !(w2->flags & DEFT_VF_FROZEN), "freeze_blocks 0,1");
        CHECK(act_of(g, "yolo_conv2.act") == DEFT_ACT_LEAKY_RELU, "neck activation");
        deft_graph_free(g);
    }
    CHECK_OK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "cspdarknet_tiny", .num_classes = 2,
                                                            .height = 64, .width = 64, .activation = "mish"},
                                &g));
    if (g) {
        CHECK(act_of(g, "stages.1.conv2.act") == DEFT_ACT_MISH && act_of(g, "yolo_conv2.act") == DEFT_ACT_LEAKY_RELU,
              "mish: backbone %d neck %d", act_of(g, "stages.1.conv2.act"), act_of(g, "yolo_conv2.act"));
        CHECK(bn_of(g, "stem.conv0.bn") == DEFT_BN_EVAL, "inference graph BN not in eval mode");
        deft_graph_free(g);
    }
    CHECK_OK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = "cspdarknet_tiny", .num_classes = 2,
                                                            .height = 64, .width = 64, .activation = "mish",
                                                            .force_relu = true},
                                &g));
    if (g) {
        CHECK(act_of(g, "stages.1.conv2.act") == DEFT_ACT_RELU && act_of(g, "yolo_conv2.act") == DEFT_ACT_RELU,
              "force_relu");
        deft_graph_free(g);
    }
}

/* Classification-layout taps: names, strides, and params a subset of the classifier's. */
static void taps(const char *arch, const char *s8, const char *s16, const char *s32) {
    struct deft_graph *g = NULL, *cls = NULL;
    CHECK_OK(deft_graph_create(&g));
    int x = deft_input(g, "input_1", deft_shape4(1, 3, 256, 256));
    struct deft_backbone_taps t;
    CHECK_OK(deft_backbone_build(g, x, &(struct deft_backbone_opts){.arch = arch}, &t));
    const char *want[3] = {s8, s16, s32};
    int got[3] = {t.s8, t.s16, t.s32};
    for (int i = 0; i < 3; i++) {
        CHECK(got[i] >= 0, "%s: no tap at stride %d", arch, 8 << i);
        if (got[i] < 0) continue;
        const struct deft_value *v = deft_graph_value(g, got[i]);
        CHECK(strcmp(v->name, want[i]) == 0 && v->shape.d[2] == 256 / (8 << i),
              "%s: tap s%d is %s at %lld (want %s)", arch, 8 << i, v->name, (long long)v->shape.d[2], want[i]);
    }
    CHECK(t.last == t.s32 && t.last_stride == 32, "%s: last %d stride %d", arch, t.last, t.last_stride);
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 7}, &cls, NULL, NULL));
    int nparam = 0, missing = 0;
    for (int v = 0; g && cls && v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        nparam++;
        int c = deft_graph_find_value(cls, val->name);
        if (c < 0 || !deft_shape_equal(&deft_graph_value(cls, c)->shape, &val->shape)) {
            if (!missing) printf("  %s: %s not in the classifier\n", arch, val->name);
            missing++;
        }
    }
    CHECK(nparam > 0 && missing == 0, "%s: %d of %d backbone tensors not in the classifier", arch, missing,
          nparam);
    deft_graph_free(cls);
    deft_graph_free(g);
}

static enum deft_status save_weights(struct deft_runtime *rt, const char *path) {
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

/* Eval-mode BN would be the identity with fresh statistics: randomise them (and the affine
 * parameters and head biases) so the comparison sees every term. */
static int64_t randomise(struct deft_runtime *rt) {
    const struct deft_graph *g = deft_runtime_graph(rt);
    int64_t params = 0;
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        int64_t n = deft_shape_numel(&val->shape);
        if (val->kind == DEFT_VALUE_PARAM) params += n;
        const char *dot = strrchr(val->name, '.');
        if (val->shape.ndim != 1 || !dot) continue;
        float *d = deft_runtime_data(rt, v);
        for (int64_t i = 0; i < n; i++) {
            float u = deft_rng_normal(11, (uint64_t)v, (uint64_t)i);
            if (strcmp(dot, ".running_var") == 0 || strcmp(dot, ".weight") == 0)
                d[i] = 0.75f + 0.25f * tanhf(u);
            else
                d[i] = 0.1f * u;
        }
    }
    return params;
}

struct pcase {
    struct deft_graph *g;
    struct deft_runtime *rt;
    int64_t params;
    char name[64], dir[600];
    const char *act;
    int size;
};

/* Build, initialise and run deft's side; appends the reference job to cmd. */
static void parity_prepare(struct pcase *p, const char *arch, int nl, const char *act, int size, char *cmd,
                           size_t cap) {
    enum { C = 3 };
    char path[700];
    memset(p, 0, sizeof *p);
    p->size = size;
    p->act = act ? act : "leaky_relu";
    if (nl)
        snprintf(p->name, sizeof p->name, "%s%d", arch, nl);
    else
        snprintf(p->name, sizeof p->name, "%s", arch);
    snprintf(p->dir, sizeof p->dir, "%s/%s_%d_%s", test_tmpdir(), p->name, size, act ? act : "leaky");
    snprintf(path, sizeof path, "mkdir -p '%s'", p->dir);
    CHECK(system(path) == 0, "mkdir %s", p->dir);
    CHECK_OK(deft_yolo_v4_build(&(struct deft_yolo_v4_opts){.arch = arch, .nlayers = nl, .num_classes = C,
                                                            .height = size, .width = size,
                                                            .activation = act},
                                &p->g));
    if (!p->g) return;
    CHECK_OK(deft_runtime_create(p->g, &(struct deft_runtime_opts){.backend = backend()}, &p->rt));
    if (!p->rt) return;
    CHECK_OK(deft_runtime_init_params(p->rt, 7));
    p->params = randomise(p->rt);
    snprintf(path, sizeof path, "%s/weights.safetensors", p->dir);
    CHECK_OK(save_weights(p->rt, path));
    size_t xn = (size_t)3 * size * size;
    float *x = malloc(xn * sizeof *x);
    for (size_t i = 0; i < xn; i++) x[i] = deft_rng_normal(5, 0, i);
    snprintf(path, sizeof path, "%s/x.npy", p->dir);
    test_npy_write(path, x, (int64_t[]){1, 3, size, size}, 4);
    CHECK_OK(deft_runtime_set_input(p->rt, deft_graph_find_value(p->g, "input_1"), x, xn));
    CHECK_OK(deft_runtime_run(p->rt));
    free(x);
    size_t k = strlen(cmd);
    snprintf(cmd + k, cap - k, " '%s:%s:%d:%s:0'", p->dir, p->name, C,
             act && !strcmp(act, "mish") ? "mish" : "leaky");
}

static void parity_check(struct pcase *p) {
    char path[700];
    if (!p->rt) goto done;
    snprintf(path, sizeof path, "%s/nparams.txt", p->dir);
    FILE *f = fopen(path, "r");
    long long tp = -1;
    if (f) {
        if (fscanf(f, "%lld", &tp) != 1) tp = -1;
        fclose(f);
    }
    CHECK(tp == p->params, "%s: %lld params in deft, %lld in PyTorch", p->name, (long long)p->params, tp);
    int out[4], n = outputs_of(p->g, out);
    for (int i = 0; i < n; i++) {
        const struct deft_value *v = deft_graph_value(p->g, out[i]);
        int64_t shape[8], cnt = deft_shape_numel(&v->shape);
        int nd;
        snprintf(path, sizeof path, "%s/%s.npy", p->dir, v->name);
        float *ref = test_npy_read(path, shape, &nd), *y = malloc((size_t)cnt * sizeof *y);
        bool ok = ref && nd == 4 && shape[1] == v->shape.d[1] && shape[2] == v->shape.d[2] &&
                  shape[3] == v->shape.d[3];
        CHECK(ok, "%s: reference %s missing or of another shape", p->name, path);
        CHECK_OK(deft_runtime_read(p->rt, out[i], y, (size_t)cnt));
        if (ok) {
            double scale = 1, e = test_max_abs_diff(y, ref, (size_t)cnt);
            for (int64_t k = 0; k < cnt; k++) scale = fmax(scale, fabs(ref[k]));
            printf("parity %s (%s) %dx%d %s: max |diff| %.3g, scale %.3g -> %.2e relative\n", p->name, p->act, p->size,
                   p->size, v->name, e, scale, e / scale);
            CHECK(e <= 1e-4 * scale, "%s %s: max diff %g, scale %g", p->name, v->name, e, scale);
        }
        free(ref);
        free(y);
    }
done:
    deft_runtime_free(p->rt);
    deft_graph_free(p->g);
}

int main(void) {
    shapes("resnet", 10, false);
    shapes("resnet", 18, false);
    shapes("resnet", 34, false);
    shapes("resnet", 50, false);
    shapes("darknet", 19, false);
    shapes("darknet", 53, false);
    shapes("cspdarknet", 53, false);
    shapes("mobilenet_v2", 0, false);
    shapes("cspdarknet_tiny", 0, true);
    bad_options();
    options_reach_nodes();
    taps("resnet18", "layer2.1.relu2", "layer3.1.relu2", "layer4.1.relu2");
    taps("resnet50", "layer2.3.relu3", "layer3.5.relu3", "layer4.2.relu3");
    taps("mobilenet_v2", "features.6.add", "features.13.add", "features.18.2");
    taps("darknet53", "stages.2.blocks.7.add", "stages.3.blocks.7.add", "stages.4.blocks.3.add");
    taps("cspdarknet53", "stages.2.conv_transition.act", "stages.3.conv_transition.act",
         "stages.4.conv_transition.act");
    taps("darknet19", "stages.2.blocks.2.act", "stages.3.blocks.4.act", "stages.4.blocks.4.act");
    taps("cspdarknet_tiny", "stages.1.conv3.act", "stages.2.conv3.act", "stages.3.act");
    if (test_failed) return test_summary();
    if (!test_have_torch()) test_skip("python3 with torch/torchvision not found: PyTorch parity not checked");
    /* one reference process for all: torch is imported once */
    static char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/yolo_v4_torch.py'", test_source_dir());
    static struct pcase pc[4];
    parity_prepare(&pc[0], "resnet", 18, NULL, 416, cmd, sizeof cmd);
    parity_prepare(&pc[1], "cspdarknet_tiny", 0, NULL, 416, cmd, sizeof cmd);
    parity_prepare(&pc[2], "cspdarknet_tiny", 0, "mish", 128, cmd, sizeof cmd);
    parity_prepare(&pc[3], "mobilenet_v2", 0, NULL, 128, cmd, sizeof cmd);
    CHECK(system(cmd) == 0, "reference failed (names or shapes differ?): %s", cmd);
    for (int i = 0; i < 4; i++) parity_check(&pc[i]);
    return test_summary();
}

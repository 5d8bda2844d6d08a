/* test_unet_model.c - the UNet graphs (include/deft/unet_model.h).
 *
 *  - shapes: input "input_1" (role image), output "logits" (role logits) [N, classes, H, W] for
 *    resnet 10/18/34/50, vgg 16/19, efficientnet_b0, shufflenet and the vanilla UNet, grayscale
 *    and colour;
 *    bad options rejected; the encoder's parameter names are the classifier's (ImageNet
 *    weights load by name) for resnet18, vgg16, vgg19_bn and efficientnet_b0; freeze_blocks
 *    freezes the classifier's blocks (shufflenet: conv1 and its stages);
 *  - parity: deft's randomly initialised weights (BN statistics randomised too) loaded by name
 *    into an independent PyTorch definition (tests/ref/unet_torch.py, float64, eval mode):
 *    logits equal within 1e-5 * max(1, max |out|), parameter names, shapes and counts equal;
 *    resnet18 with and without the decoder's BN, grayscale and colour, vgg16, vgg19_bn,
 *    efficientnet_b0 with and without use_batch_norm, shufflenet (grayscale and colour; its
 *    parameter count is pinned too: TAO's template has no other reference), and the vanilla UNet. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/io.h"
#include "deft/models.h"
#include "deft/runtime.h"
#include "deft/unet_model.h"

static void shapes(const char *arch, int nl, int channels, int h, int w) {
    enum { C = 5, N = 2 };
    struct deft_graph *g = NULL;
    CHECK_OK(deft_unet_build(&(struct deft_unet_opts){.arch = arch, .nlayers = nl, .num_classes = C,
                                                      .channels = channels, .batch = N, .height = h, .width = w,
                                                      .use_batch_norm = true, .training = true},
                             &g));
    if (!g) return;
    CHECK_OK(deft_graph_validate(g));
    int in = deft_graph_find_role(g, DEFT_ROLE_IMAGE), out = deft_graph_find_role(g, DEFT_ROLE_LOGITS);
    CHECK(in >= 0 && out >= 0, "%s%d: roles image %d logits %d", arch, nl, in, out);
    if (in < 0 || out < 0) goto done;
    const struct deft_shape *s = &deft_graph_value(g, out)->shape;
    CHECK(s->ndim == 4 && s->d[0] == N && s->d[1] == C && s->d[2] == h && s->d[3] == w,
          "%s%d: logits [%lld, %lld, %lld, %lld]", arch, nl, (long long)s->d[0], (long long)s->d[1],
          (long long)s->d[2], (long long)s->d[3]);
    CHECK(deft_graph_value(g, in)->shape.d[1] == channels, "%s%d: %d input channels", arch, nl, channels);
    struct deft_graph_stats st;
    deft_graph_stats(g, &st);
    printf("unet %-20s %2d: %6.2fM params, %6.1f GFLOPs at %dx%dx%d\n", arch, nl, st.params / 1e6,
           st.flops / 1e9 / N, channels, h, w);
done:
    deft_graph_free(g);
}

/* The encoder's weights are the classifier's: every parameter of the UNet that is not the
 * decoder's has the classifier's name and shape. */
static void encoder_names(const char *arch, bool bn, const char *classifier, int min_params) {
    struct deft_graph *u = NULL, *c = NULL;
    CHECK_OK(deft_unet_build(&(struct deft_unet_opts){.arch = arch, .num_classes = 2, .use_batch_norm = bn,
                                                      .training = true}, &u));
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = classifier, .training = true}, &c, NULL, NULL));
    if (!u || !c) goto done;
    int enc = 0, missing = 0;
    for (int v = 0; v < deft_graph_num_values(u); v++) {
        const struct deft_value *a = deft_graph_value(u, v);
        if (a->kind != DEFT_VALUE_PARAM || !strncmp(a->name, "up", 2) || !strncmp(a->name, "logits", 6)) continue;
        int b = deft_graph_find_value(c, a->name);
        enc++;
        if (b < 0 || !deft_shape_equal(&a->shape, &deft_graph_value(c, b)->shape)) {
            if (missing++ < 3) printf("  encoder param %s: not in %s with that shape\n", a->name, classifier);
        }
    }
    CHECK(enc >= min_params && missing == 0, "%s UNet encoder: %d params, %d not %s's", arch, enc, missing,
          classifier);
done:
    deft_graph_free(u);
    deft_graph_free(c);
}

static bool frozen(const struct deft_graph *g, const char *name) {
    int v = deft_graph_find_value(g, name);
    return v >= 0 && (deft_graph_value(g, v)->flags & DEFT_VF_FROZEN);
}

/* freeze_blocks are the classifier's blocks: vgg 1-5, efficientnet 0 (stem) .. 8, shufflenet's stages */
struct freeze_case {
    const char *arch, *label;
    int nlayers, blocks[2], n_blocks;
    const char *frozen[3], *thawed[3]; /* NULL-padded */
};

static void check_freeze(const struct freeze_case *c) {
    struct deft_graph *g = NULL;
    CHECK_OK(deft_unet_build(&(struct deft_unet_opts){.arch = c->arch, .nlayers = c->nlayers, .num_classes = 2,
                                                      .height = 64, .width = 64, .freeze_blocks = c->blocks,
                                                      .n_freeze_blocks = c->n_blocks, .training = true},
                             &g));
    bool ok = g != NULL;
    for (int i = 0; ok && i < 3; i++) {
        if (c->frozen[i] && !frozen(g, c->frozen[i])) ok = false;
        if (c->thawed[i] && frozen(g, c->thawed[i])) ok = false;
    }
    CHECK(ok, "%s", c->label);
    deft_graph_free(g);
}

static void freeze_blocks(void) {
    static const struct freeze_case cases[] = {
        {"vgg", "vgg16 UNet freeze_blocks [1, 2]: blocks 1-2 frozen only", 16, {1, 2}, 2,
         {"features.0.weight", "features.7.bias"}, {"features.10.weight", "up5.conv1.weight"}},
        {"efficientnet_b0", "efficientnet_b0 UNet freeze_blocks [0]: the stem frozen only", 0, {0}, 1,
         {"features.0.0.weight", "features.0.1.weight"}, {"features.1.0.block.0.0.weight", "up1.conv1.weight"}},
        {"shufflenet", "shufflenet UNet freeze_blocks [2]: stage 2 frozen only", 0, {2}, 1,
         {"stage2.block1.gconv1.weight", "stage2.block4.bn_gconv2.bias"},
         {"conv1.weight", "stage3.block1.gconv1.weight", "score_fr.weight"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_freeze(&cases[i]);
    struct deft_graph *g = NULL;
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "shufflenet", .num_classes = 2, .height = 64, .width = 64,
                                                   .freeze_blocks = (int[]){5}, .n_freeze_blocks = 1}, &g) ==
              DEFT_ERR_INVALID_ARG && !g, "shufflenet freeze_blocks [5] refused (%s)", deft_last_error());
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "vgg19", .num_classes = 2, .height = 64, .width = 64,
                                                   .freeze_blocks = (int[]){6}, .n_freeze_blocks = 1}, &g) ==
              DEFT_ERR_INVALID_ARG && !g, "vgg19 freeze_blocks [6] refused (%s)", deft_last_error());
}

static void bad_options(void) {
    struct deft_graph *g = NULL;
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "resnet18", .num_classes = 2, .height = 100}, &g) ==
              DEFT_ERR_INVALID_ARG && !g, "height 100 (not a multiple of 16) refused");
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "vanilla_unet", .num_classes = 2, .height = 48,
                                                   .width = 64}, &g) == DEFT_ERR_INVALID_ARG && !g,
          "vanilla 48 high (not a multiple of 32) refused");
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "resnet18", .num_classes = 0}, &g) ==
              DEFT_ERR_INVALID_ARG && !g, "0 classes refused");
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "resnt", .nlayers = 18, .num_classes = 2}, &g) ==
              DEFT_ERR_NOT_FOUND && !g, "unknown arch: NOT_FOUND (%s)", deft_last_error());
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "mobilenet_v2", .num_classes = 2}, &g) ==
              DEFT_ERR_UNSUPPORTED && !g, "mobilenet_v2 UNet: UNSUPPORTED for now (%s)", deft_last_error());
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "efficientnet_b1", .num_classes = 2}, &g) ==
              DEFT_ERR_UNSUPPORTED && !g, "efficientnet_b1 UNet: UNSUPPORTED (TAO has b0 only: %s)",
          deft_last_error());
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "vgg", .nlayers = 16, .num_classes = 2, .height = 80},
                          &g) == DEFT_ERR_INVALID_ARG && !g, "vgg16 80 high (not a multiple of 32) refused");
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "shufflenet", .num_classes = 2, .height = 80}, &g) ==
              DEFT_ERR_INVALID_ARG && !g, "shufflenet 80 high (not a multiple of 32) refused");
    CHECK(deft_unet_build(&(struct deft_unet_opts){.arch = "vgg", .nlayers = 18, .num_classes = 2}, &g) ==
              DEFT_ERR_NOT_FOUND && !g, "vgg 18 refused (%s)", deft_last_error());
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

/* Eval-mode BN is nearly the identity with fresh statistics: randomise them, the affine
 * parameters and the biases so the comparison sees every term. */
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
            d[i] = !strcmp(dot, ".running_var") || !strcmp(dot, ".weight") ? 0.75f + 0.25f * tanhf(u) : 0.1f * u;
        }
    }
    return params;
}

struct pcase {
    struct deft_graph *g;
    struct deft_runtime *rt;
    int64_t params;
    char dir[600], name[64];
};

static void parity_prepare(struct pcase *p, const char *arch, int channels, bool bn, int size, char *cmd,
                           size_t cap) {
    enum { C = 3 };
    char path[700];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s_c%d_bn%d", arch, channels, bn);
    snprintf(p->dir, sizeof p->dir, "%s/%s", test_tmpdir(), p->name);
    snprintf(path, sizeof path, "mkdir -p '%s'", p->dir);
    CHECK(system(path) == 0, "mkdir %s", p->dir);
    bool vanilla = !strcmp(arch, "vanilla");
    CHECK_OK(deft_unet_build(&(struct deft_unet_opts){.arch = vanilla ? "vanilla_unet_dynamic" : arch,
                                                      .num_classes = C, .channels = channels, .height = size,
                                                      .width = size, .use_batch_norm = bn},
                             &p->g));
    if (!p->g) return;
    CHECK_OK(deft_runtime_create(p->g, &(struct deft_runtime_opts){0}, &p->rt));
    if (!p->rt) return;
    CHECK_OK(deft_runtime_init_params(p->rt, 7));
    p->params = randomise(p->rt);
    snprintf(path, sizeof path, "%s/weights.safetensors", p->dir);
    CHECK_OK(save_weights(p->rt, path));
    size_t xn = (size_t)channels * size * size;
    float *x = malloc(xn * sizeof *x);
    for (size_t i = 0; i < xn; i++) x[i] = deft_rng_normal(5, 0, i);
    snprintf(path, sizeof path, "%s/x.npy", p->dir);
    test_npy_write(path, x, (int64_t[]){1, channels, size, size}, 4);
    CHECK_OK(deft_runtime_set_input(p->rt, deft_graph_find_value(p->g, "input_1"), x, xn));
    CHECK_OK(deft_runtime_run(p->rt));
    free(x);
    size_t k = strlen(cmd);
    snprintf(cmd + k, cap - k, " '%s:%s:%d:%d:%d'", p->dir, arch, C, channels, bn ? 1 : 0);
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
    int out = deft_graph_find_role(p->g, DEFT_ROLE_LOGITS);
    const struct deft_value *v = deft_graph_value(p->g, out);
    int64_t shape[8], cnt = deft_shape_numel(&v->shape);
    int nd;
    snprintf(path, sizeof path, "%s/logits.npy", p->dir);
    float *ref = test_npy_read(path, shape, &nd), *y = malloc((size_t)cnt * sizeof *y);
    bool ok = ref && nd == 4 && shape[1] == v->shape.d[1] && shape[2] == v->shape.d[2] && shape[3] == v->shape.d[3];
    CHECK(ok, "%s: reference %s missing or of another shape", p->name, path);
    CHECK_OK(deft_runtime_read(p->rt, out, y, (size_t)cnt));
    if (ok) {
        double scale = 1, e = test_max_abs_diff(y, ref, (size_t)cnt);
        for (int64_t k = 0; k < cnt; k++) scale = fmax(scale, fabs(ref[k]));
        printf("parity %s: max |diff| %.3g, scale %.3g -> %.2e relative\n", p->name, e, scale, e / scale);
        CHECK(e <= 1e-5 * scale, "%s: max diff %g, scale %g", p->name, e, scale);
    }
    free(ref);
    free(y);
done:
    deft_runtime_free(p->rt);
    deft_graph_free(p->g);
}

int main(void) {
    shapes("resnet", 10, 3, 320, 320);
    shapes("resnet", 18, 1, 320, 320);
    shapes("resnet", 34, 3, 256, 384);
    shapes("resnet", 50, 3, 128, 128);
    shapes("vanilla_unet_dynamic", 0, 1, 320, 320);
    shapes("vanilla_unet", 0, 3, 128, 96);
    shapes("vgg", 16, 3, 320, 320);
    shapes("vgg", 19, 1, 128, 96);
    shapes("efficientnet_b0", 0, 3, 320, 320);
    shapes("efficientnet_b0", 0, 1, 96, 128);
    shapes("shufflenet", 0, 3, 320, 320);
    shapes("shufflenet", 0, 1, 96, 128);
    encoder_names("resnet18", true, "resnet18", 50);
    encoder_names("vgg16", false, "vgg16", 26);
    encoder_names("vgg19", true, "vgg19_bn", 15 * 4);
    encoder_names("efficientnet_b0", false, "efficientnet_b0", 200);
    freeze_blocks();
    bad_options();
    if (test_failed) return test_summary();
    if (!test_have_torch()) test_skip("python3 with torch/torchvision not found: PyTorch parity not checked");
    static char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/unet_torch.py'", test_source_dir());
    enum { NP = 10 };
    static struct pcase pc[NP];
    parity_prepare(&pc[0], "resnet18", 3, true, 96, cmd, sizeof cmd);
    parity_prepare(&pc[1], "resnet18", 1, false, 64, cmd, sizeof cmd);
    parity_prepare(&pc[2], "vanilla", 1, true, 64, cmd, sizeof cmd);
    parity_prepare(&pc[3], "vanilla", 3, false, 64, cmd, sizeof cmd);
    parity_prepare(&pc[4], "vgg16", 3, false, 64, cmd, sizeof cmd);
    parity_prepare(&pc[5], "vgg19", 1, true, 64, cmd, sizeof cmd);
    parity_prepare(&pc[6], "efficientnet_b0", 3, true, 64, cmd, sizeof cmd);
    parity_prepare(&pc[7], "efficientnet_b0", 1, false, 64, cmd, sizeof cmd);
    parity_prepare(&pc[8], "shufflenet", 3, true, 64, cmd, sizeof cmd);
    parity_prepare(&pc[9], "shufflenet", 1, false, 64, cmd, sizeof cmd);
    /* TAO's template has no published count: pin it (classes 3; conv1 has 9 weights per input channel x 24) */
    CHECK(pc[8].params == 960546 && pc[9].params == 960114, "shufflenet UNet params %lld / %lld, expected "
          "960546 / 960114", (long long)pc[8].params, (long long)pc[9].params);
    CHECK(system(cmd) == 0, "reference failed (names or shapes differ?): %s", cmd);
    for (int i = 0; i < NP; i++) parity_check(&pc[i]);
    return test_summary();
}

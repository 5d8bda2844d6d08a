/* test_infer_fuse.c - the cpu backend's inference path against its unfused self
 * and the reference backend.
 *
 * A forward-only runtime folds batch norm into convolutions, fuses activations
 * and residual adds as oneDNN post-ops and keeps its weights prepared between
 * runs. For several architectures (random weights and non-trivial batch-norm
 * statistics, so the fold matters), the logits of the fused cpu runtime equal
 * those of the same runtime with no_fuse and of the ref backend within 1e-4 of
 * the output scale. Writing a parameter (deft_runtime_data, or a held pointer
 * plus deft_runtime_params_changed) is seen by the next run; a value inside a
 * fused chain cannot be read (an error, not garbage). About 30 s on 2 cores. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "deft_test.h"
#include "deft/models.h"
#include "deft/runtime.h"

static float lcg(uint64_t *s) { /* uniform in [-1, 1) */
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return (float)(*s >> 40) / (float)(1u << 24) * 2 - 1;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Weights of variance 2/fan_in; BN gamma in [0.5, 1.5], beta and means in
 * [-0.1, 0.1], variances in [0.5, 1.5]; the same for every runtime. */
static void fill(const struct deft_graph *g, struct deft_runtime *rt) {
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        float *d = deft_runtime_data(rt, v);
        int64_t n = deft_shape_numel(&val->shape);
        float a = (float)sqrt(6.0 / (val->fan_in > 0 ? val->fan_in : 1));
        for (int64_t i = 0; i < n; i++) {
            float u = lcg(&s);
            if (ends_with(val->name, "running_var")) d[i] = 1.0f + 0.5f * u;
            else if (ends_with(val->name, "running_mean") || val->kind == DEFT_VALUE_STATE) d[i] = 0.1f * u;
            else if (val->init == DEFT_INIT_ONES) d[i] = 1.0f + 0.5f * u;
            else if (val->init == DEFT_INIT_ZEROS) d[i] = 0.1f * u;
            else d[i] = a * u;
        }
    }
}

struct rig {
    struct deft_runtime *rt;
    float y[2 * 10];
};

static bool run(struct rig *r, int in, int out, const float *x, size_t n) {
    enum deft_status s = deft_runtime_set_input(r->rt, in, x, n);
    if (!s) s = deft_runtime_run(r->rt);
    if (!s) s = deft_runtime_read(r->rt, out, r->y, 20);
    CHECK(s == DEFT_OK, "run: %s", deft_last_error());
    return s == DEFT_OK;
}

/* First conv weight of the graph (a PARAM read by a conv). */
static int first_conv_weight(const struct deft_graph *g) {
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (nd->op == DEFT_OP_CONV2D && deft_graph_value(g, nd->in[1])->kind == DEFT_VALUE_PARAM)
            return nd->in[1];
    }
    return -1;
}

/* A value inside a fused chain: a conv output read only by a batch norm. */
static int fused_value(const struct deft_graph *g) {
    for (int n = 0; n + 1 < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n), *next = deft_graph_node(g, n + 1);
        if (nd->op == DEFT_OP_CONV2D && next->op == DEFT_OP_BATCHNORM && next->in[0] == nd->out[0])
            return nd->out[0];
    }
    return -1;
}

static void check_arch(const char *arch, int size) {
    struct deft_graph *g = NULL;
    int in, out;
    struct deft_model_opts o = {.arch = arch, .num_classes = 10, .batch = 2, .height = size, .width = size};
    CHECK_OK(deft_model_build(&o, &g, &in, &out));
    if (!g) return;
    struct rig fused = {0}, unfused = {0}, ref = {0};
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "cpu"}, &fused.rt));
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "cpu", .no_fuse = 1}, &unfused.rt));
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "ref"}, &ref.rt));
    size_t n = (size_t)2 * 3 * size * size;
    float *x = malloc(n * sizeof *x);
    if (!fused.rt || !unfused.rt || !ref.rt || !x) goto done;
    struct deft_runtime_stats st;
    deft_runtime_stats(fused.rt, &st);
    size_t ng = 1;
    CHECK(st.grad_bytes == 0 && !deft_runtime_grad_block(fused.rt, &ng) && ng == 0 && st.param_bytes > 0,
          "%s: an inference runtime holds %zu gradient bytes", arch, st.grad_bytes);
    for (size_t i = 0; i < n; i++) x[i] = deft_rng_normal(5, 0, i);
    fill(g, fused.rt);
    fill(g, unfused.rt);
    fill(g, ref.rt);
    if (!run(&fused, in, out, x, n) || !run(&unfused, in, out, x, n) || !run(&ref, in, out, x, n)) goto done;
    double e1 = test_max_rel_err(fused.y, unfused.y, 20), e2 = test_max_rel_err(fused.y, ref.y, 20);
    CHECK(e1 <= 1e-4, "%s: fused vs unfused rel err %.2e", arch, e1);
    CHECK(e2 <= 1e-4, "%s: fused vs ref rel err %.2e", arch, e2);
    printf("%-14s %dx%d: fused vs unfused %.1e, vs ref %.1e\n", arch, size, size, e1, e2);

    /* A second run on prepared weights gives the same bits. */
    float first[20];
    memcpy(first, fused.y, sizeof first);
    if (!run(&fused, in, out, x, n)) goto done;
    CHECK(memcmp(first, fused.y, sizeof first) == 0, "%s: second run differs", arch);

    /* Params written after a run are seen by the next one. */
    int w = first_conv_weight(g);
    if (w >= 0) {
        int64_t wn = deft_shape_numel(&deft_graph_value(g, w)->shape);
        float *a = deft_runtime_data(fused.rt, w), *b = deft_runtime_data(unfused.rt, w);
        for (int64_t i = 0; i < wn; i++) a[i] = b[i] = -2 * a[i];
        if (!run(&fused, in, out, x, n) || !run(&unfused, in, out, x, n)) goto done;
        e1 = test_max_rel_err(fused.y, unfused.y, 20);
        CHECK(e1 <= 1e-4 && memcmp(first, fused.y, sizeof first) != 0,
              "%s: after deft_runtime_data write: rel err %.2e", arch, e1);
        /* through the held pointer: invisible until params_changed */
        for (int64_t i = 0; i < wn; i++) a[i] = b[i] = 0.5f * a[i];
        deft_runtime_params_changed(fused.rt);
        deft_runtime_params_changed(unfused.rt);
        if (!run(&fused, in, out, x, n) || !run(&unfused, in, out, x, n)) goto done;
        e1 = test_max_rel_err(fused.y, unfused.y, 20);
        CHECK(e1 <= 1e-4, "%s: after params_changed: rel err %.2e", arch, e1);
    }
    int fv = fused_value(g);
    if (fv >= 0) {
        int64_t vn = deft_shape_numel(&deft_graph_value(g, fv)->shape);
        float *buf = malloc((size_t)vn * sizeof *buf);
        enum deft_status s = buf ? deft_runtime_read(fused.rt, fv, buf, (size_t)vn) : DEFT_ERR_NOMEM;
        CHECK(s != DEFT_OK, "%s: a fused-away value read without error", arch);
        deft_clear_error();
        if (buf) CHECK_OK(deft_runtime_read(unfused.rt, fv, buf, (size_t)vn));
        free(buf);
    }
done:
    free(x);
    deft_runtime_free(fused.rt);
    deft_runtime_free(unfused.rt);
    deft_runtime_free(ref.rt);
    deft_graph_free(g);
}

int main(void) {
    check_arch("resnet18", 64);       /* conv+bn+relu, conv+bn+add+relu, downsample */
    check_arch("mobilenet_v2", 64);   /* depthwise, relu6, conv+bn+add without act */
    check_arch("resnet50", 64);       /* bottlenecks, 1x1 convs */
    check_arch("darknet19", 64);      /* leaky relu */
    check_arch("efficientnet_b0", 64);/* swish, squeeze-excitation: not fused, must still run */
    check_arch("squeezenet1_0", 64);  /* conv + bias + relu without batch norm, concat */
    return test_summary();
}

/* test_trainer_mid_forward.c - the trainer's mid-forward host step
 * (opts.mid_forward, as Faster R-CNN's proposals): a conv trunk whose output
 * the host reads to choose RoIs, fed back through a second input to a
 * roi_align + linear stage. N SGD steps through the trainer must give the
 * weights that the same graph with in-graph L2 losses gives when it is fed
 * the RoIs the hook chose; the hook must see the trunk output of that step;
 * a model without the role is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/autograd.h"
#include "deft/trainer.h"

enum { B = 2, C = 3, H = 8, W = 8, R = 6, STEPS = 4 };

static struct deft_graph *two_stage(bool with_role) {
    struct deft_graph *g = NULL;
    CHECK_OK(deft_graph_create(&g));
    struct deft_conv_attr c3 = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int x = deft_input(g, "images", deft_shape4(B, C, H, W));
    int f = deft_conv2d(g, "trunk", x, 4, 3, 3, &c3, true);
    int rois = deft_input(g, "rois", (struct deft_shape){.ndim = 2, .d = {R, 5}});
    struct deft_roi_attr ra = {.mode = DEFT_ROI_ALIGN, .out_h = 2, .out_w = 2, .spatial_scale = 1.0f,
                               .sampling_ratio = 2, .aligned = true};
    int y = deft_roi_align(g, "pool", f, rois, &ra);
    y = deft_flatten(g, "flat", y);
    y = deft_linear(g, "fc", y, 3, true);
    deft_graph_value_mut(g, f)->flags |= DEFT_VF_OUTPUT;
    deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
    CHECK_OK(deft_graph_set_role(g, DEFT_ROLE_IMAGE, x));
    CHECK_OK(deft_graph_set_role(g, "first", f));
    CHECK_OK(deft_graph_set_role(g, "second", y));
    if (with_role) CHECK_OK(deft_graph_set_role(g, "rois", rois));
    CHECK_OK(deft_graph_status(g));
    return g;
}

struct hook_state {
    int calls;
    float seen[B * 4 * H * W]; /* the trunk output the hook read */
    float rois[R * 5];         /* the RoIs it set */
};

/* RoIs from the trunk output: image r % B, a box whose corner follows the sign of the image's mean. */
static enum deft_status choose_rois(void *user, struct deft_runtime *rt, const struct deft_graph *g,
                                    const void *targets) {
    (void)targets;
    struct hook_state *h = user;
    h->calls++;
    enum deft_status s = deft_runtime_read(rt, deft_graph_find_role(g, "first"), h->seen, sizeof h->seen / sizeof(float));
    if (s) return s;
    for (int r = 0; r < R; r++) {
        int b = r % B;
        double m = 0;
        for (int k = 0; k < 4 * H * W; k++) m += h->seen[b * 4 * H * W + k];
        float o = m > 0 ? 0.5f : 2.0f + (float)r * 0.25f;
        float box[5] = {(float)b, o, o * 0.5f, o + 4.0f, o * 0.5f + 3.5f};
        memcpy(h->rois + r * 5, box, sizeof box);
    }
    return deft_runtime_set_input(rt, deft_graph_find_role(g, "rois"), h->rois, R * 5);
}

struct targets { const float *t[2]; };

static enum deft_status l2_host(void *user, int n, const float *const *outs, const struct deft_shape *shapes,
                                const void *targets, float *const *grads, double *loss, double *terms) {
    (void)user;
    const struct targets *tg = targets;
    *loss = 0;
    for (int i = 0; i < n; i++) {
        size_t m = (size_t)deft_shape_numel(&shapes[i]);
        double sum = 0;
        for (size_t k = 0; k < m; k++) {
            double d = (double)outs[i][k] - tg->t[i][k];
            sum += d * d;
            grads[i][k] = (float)(2.0 * d / (double)m);
        }
        terms[i] = sum / (double)m;
        *loss += terms[i];
    }
    return DEFT_OK;
}

static void fill(float *p, size_t n, uint64_t stream, uint64_t s) {
    for (size_t i = 0; i < n; i++) p[i] = deft_rng_normal(5, stream * 1000 + s, (uint64_t)i);
}

static void copy_weights(struct deft_runtime *from, struct deft_runtime *to) {
    const struct deft_graph *gf = deft_runtime_graph(from), *gt = deft_runtime_graph(to);
    for (int v = 0; v < deft_graph_num_values(gt); v++) {
        const struct deft_value *val = deft_graph_value(gt, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        float *src = deft_runtime_data(from, deft_graph_find_value(gf, val->name));
        memcpy(deft_runtime_data(to, v), src, (size_t)deft_shape_numel(&val->shape) * sizeof(float));
    }
}

static double max_diff_by_name(struct deft_runtime *a, struct deft_runtime *b) {
    const struct deft_graph *ga = deft_runtime_graph(a), *gb = deft_runtime_graph(b);
    double worst = 0;
    for (int v = 0; v < deft_graph_num_values(gb); v++) {
        const struct deft_value *val = deft_graph_value(gb, v);
        if (val->kind != DEFT_VALUE_PARAM) continue;
        double d = test_max_abs_diff(deft_runtime_data(a, deft_graph_find_value(ga, val->name)),
                                     deft_runtime_data(b, v), (size_t)deft_shape_numel(&val->shape));
        if (d > worst) worst = d;
    }
    return worst;
}

int main(void) {
    struct deft_optim_config oc = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f};
    struct hook_state hs = {0};

    /* no input with the role: refused at creation */
    struct deft_graph *norole = two_stage(false);
    struct deft_trainer *bad = NULL;
    CHECK(deft_trainer_create(&(struct deft_trainer_opts){
              .model = {.batch = B}, .optim = oc, .lr = {.lr = 0.1f}, .seed = 3, .graph = norole,
              .host_loss = l2_host, .mid_forward = choose_rois, .mid_forward_user = &hs, .mid_input_role = "rois"},
              &bad) == DEFT_ERR_INVALID_ARG, "a model without the role's input is refused");
    deft_trainer_free(bad);
    deft_graph_free(norole);

    struct deft_graph *model = two_stage(true);
    struct deft_trainer *t = NULL;
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.batch = B}, .optim = oc, .lr = {.lr = 0.1f}, .seed = 3, .graph = model, .host_loss = l2_host,
        .mid_forward = choose_rois, .mid_forward_user = &hs, .mid_input_role = "rois"}, &t));
    if (!t) return test_summary();

    /* reference: in-graph L2 on both outputs, fed the RoIs the hook chose */
    struct deft_graph *ref = NULL;
    CHECK_OK(deft_graph_clone(model, &ref));
    int f = deft_graph_find_role(ref, "first"), y = deft_graph_find_role(ref, "second");
    int tf = deft_input(ref, "target_f", deft_graph_value(ref, f)->shape);
    int ty = deft_input(ref, "target_y", deft_graph_value(ref, y)->shape);
    struct deft_loss_attr l2 = {.kind = DEFT_LOSS_L2};
    int total = deft_add(ref, "loss", deft_loss(ref, "loss_f", f, tf, &l2), deft_loss(ref, "loss_y", y, ty, &l2));
    deft_graph_value_mut(ref, total)->flags |= DEFT_VF_OUTPUT;
    CHECK_OK(deft_autograd(ref, total, NULL));
    struct deft_runtime *rrt = NULL;
    struct deft_optim *ropt = NULL;
    CHECK_OK(deft_runtime_create(ref, &(struct deft_runtime_opts){.backend = "cpu"}, &rrt));
    CHECK_OK(deft_optim_create(&oc, rrt, &ropt));
    if (!rrt || !ropt) return test_summary();
    copy_weights(deft_trainer_runtime(t), rrt);

    size_t nx = (size_t)B * C * H * W, nf = (size_t)B * 4 * H * W, ny = (size_t)R * 3;
    float *x = malloc(nx * sizeof(float)), *yf = malloc(nf * sizeof(float)), *yy = malloc(ny * sizeof(float));
    float *rf = malloc(nf * sizeof(float));
    double worst_loss = 0, worst_seen = 0;
    for (int s = 0; s < STEPS; s++) {
        fill(x, nx, 1, (uint64_t)s);
        fill(yf, nf, 2, (uint64_t)s);
        fill(yy, ny, 3, (uint64_t)s);
        struct targets tg = {.t = {yf, yy}};
        float hl = 0, rl = 0, one = 1;
        CHECK_OK(deft_trainer_step_targets(t, x, &tg, &hl));
        CHECK_OK(deft_runtime_set_input(rrt, deft_graph_find_value(ref, "images"), x, nx));
        CHECK_OK(deft_runtime_set_input(rrt, deft_graph_find_role(ref, "rois"), hs.rois, R * 5));
        CHECK_OK(deft_runtime_set_input(rrt, tf, yf, nf));
        CHECK_OK(deft_runtime_set_input(rrt, ty, yy, ny));
        CHECK_OK(deft_runtime_set_input(rrt, deft_graph_find_value(ref, "loss_grad"), &one, 1));
        CHECK_OK(deft_runtime_run(rrt));
        CHECK_OK(deft_runtime_read(rrt, total, &rl, 1));
        CHECK_OK(deft_runtime_read(rrt, f, rf, nf));
        CHECK_OK(deft_optim_step(ropt, 0.1f));
        double d = fabs((double)hl - rl) / fabs((double)rl), e = test_max_abs_diff(rf, hs.seen, nf);
        if (d > worst_loss) worst_loss = d;
        if (e > worst_seen) worst_seen = e;
    }
    double wd = max_diff_by_name(deft_trainer_runtime(t), rrt);
    printf("mid-forward hook: %d calls in %d steps; trunk seen vs reference %.3g; loss rel diff %.3g; "
           "weights max |dw| %.3g\n", hs.calls, STEPS, worst_seen, worst_loss, wd);
    CHECK(hs.calls == STEPS, "one hook call per step (%d)", hs.calls);
    CHECK(worst_seen <= 1e-6, "the hook saw the step's trunk output (%g)", worst_seen);
    CHECK(worst_loss <= 1e-5, "losses differ by %g", worst_loss);
    CHECK(wd <= 1e-5, "weights after %d steps differ by %g", STEPS, wd);
    free(x), free(yf), free(yy), free(rf);
    deft_optim_free(ropt);
    deft_runtime_free(rrt);
    deft_graph_free(ref);
    deft_trainer_free(t);
    deft_graph_free(model);
    return test_summary();
}

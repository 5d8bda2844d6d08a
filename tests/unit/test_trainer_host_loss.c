/* test_trainer_host_loss.c - training with a loss computed on the host
 * (deft_trainer_step_targets, as detection losses are) against the same loss
 * built in the graph: a small conv net with two outputs and an L2 loss on
 * each; N SGD steps through the host-loss trainer must give the weights that
 * an in-graph sum of two deft_loss L2 nodes, run through autograd and the
 * optimizer directly, gives. A NaN from the host loss leaves the weights and
 * the batch-norm statistics untouched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/autograd.h"
#include "deft/trainer.h"

enum { B = 4, C = 3, H = 8, W = 8, STEPS = 6 };

static struct deft_graph *two_headed(void) {
    struct deft_graph *g = NULL;
    CHECK_OK(deft_graph_create(&g));
    struct deft_conv_attr c3 = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    struct deft_conv_attr c3s2 = {.stride = {2, 2}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int x = deft_input(g, "images", deft_shape4(B, C, H, W));
    int y = deft_conv2d(g, "trunk", x, 6, 3, 3, &c3, false);
    y = deft_batchnorm(g, "trunk_bn", y, DEFT_BN_TRAIN);
    y = deft_act(g, "trunk_act", y, DEFT_ACT_LEAKY_RELU, 0.1f);
    int h1 = deft_conv2d(g, "head_a", y, 2, 3, 3, &c3, true);
    int h2 = deft_conv2d(g, "head_b", y, 5, 3, 3, &c3s2, true);
    deft_graph_value_mut(g, h1)->flags |= DEFT_VF_OUTPUT;
    deft_graph_value_mut(g, h2)->flags |= DEFT_VF_OUTPUT;
    /* roles declared out of index order: the outputs follow the roles */
    CHECK_OK(deft_graph_set_role(g, DEFT_ROLE_IMAGE, x));
    CHECK_OK(deft_graph_set_role(g, "head_s16", h2));
    CHECK_OK(deft_graph_set_role(g, "head_s8", h1));
    CHECK_OK(deft_graph_status(g));
    return g;
}

struct targets { const float *t[2]; bool nan; int calls; };

/* sum over outputs of mean((out - target)^2), as deft_loss L2 (nn.MSELoss) */
static enum deft_status l2_host(void *user, int n, const float *const *outs, const struct deft_shape *shapes,
                                const void *targets, float *const *grads, double *loss, double *terms) {
    const struct targets *tg = targets;
    ((struct targets *)user)->calls++;
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
    if (tg->nan) *loss = NAN;
    return DEFT_OK;
}

static void fill(float *p, size_t n, uint64_t stream, uint64_t s) {
    for (size_t i = 0; i < n; i++) p[i] = deft_rng_normal(7, stream * 1000 + s, (uint64_t)i);
}

static float *copy_block(struct deft_runtime *rt, size_t *n, bool state) {
    float *src = state ? deft_runtime_state_block(rt, n) : deft_runtime_param_block(rt, n);
    float *c = malloc(*n * sizeof(float));
    memcpy(c, src, *n * sizeof(float));
    return c;
}

/* Copy params and state by name between runtimes. */
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
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        size_t n = (size_t)deft_shape_numel(&val->shape);
        double d = test_max_abs_diff(deft_runtime_data(a, deft_graph_find_value(ga, val->name)),
                                     deft_runtime_data(b, v), n);
        if (d > worst) worst = d;
    }
    return worst;
}

int main(void) {
    struct deft_graph *model = two_headed();
    int outs[4];
    CHECK(deft_graph_outputs(model, outs, 4) == 2, "two outputs");
    CHECK(outs[0] == deft_graph_find_role(model, "head_s16") && outs[1] == deft_graph_find_role(model, "head_s8"),
          "outputs in role order");

    struct targets user = {0};
    struct deft_trainer *t = NULL;
    struct deft_optim_config oc = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f, .weight_decay = 1e-3f};
    CHECK_OK(deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.batch = B}, .optim = oc, .lr = {.lr = 0.05f}, .seed = 11, .graph = model,
        .host_loss = l2_host, .host_loss_user = &user}, &t));
    if (!t) return test_summary();
    CHECK(deft_trainer_num_outputs(t) == 2, "trainer sees two outputs");
    const struct deft_shape *s0 = deft_trainer_output_shape(t, 0), *s1 = deft_trainer_output_shape(t, 1);
    CHECK(s0 && s0->d[1] == 5 && s0->d[2] == H / 2 && s1 && s1->d[1] == 2 && s1->d[2] == H, "output shapes");
    size_t n0 = (size_t)deft_shape_numel(s0), n1 = (size_t)deft_shape_numel(s1);
    float dummy;
    CHECK(deft_trainer_step(t, NULL, NULL, &dummy) == DEFT_ERR_INVALID_ARG, "in-graph step refused");

    /* reference: the model + two in-graph L2 losses summed, autograd, optimizer */
    struct deft_graph *ref = NULL;
    CHECK_OK(deft_graph_clone(model, &ref));
    int ha = deft_graph_find_value(ref, "head_b"), hb = deft_graph_find_value(ref, "head_a");
    int ta = deft_input(ref, "target_a", deft_graph_value(ref, ha)->shape);
    int tb = deft_input(ref, "target_b", deft_graph_value(ref, hb)->shape);
    struct deft_loss_attr l2 = {.kind = DEFT_LOSS_L2};
    int la = deft_loss(ref, "loss_a", ha, ta, &l2), lb = deft_loss(ref, "loss_b", hb, tb, &l2);
    int total = deft_add(ref, "loss", la, lb);
    deft_graph_value_mut(ref, total)->flags |= DEFT_VF_OUTPUT; /* read after the run */
    CHECK_OK(deft_autograd(ref, total, NULL));
    struct deft_runtime *rrt = NULL;
    struct deft_optim *ropt = NULL;
    CHECK_OK(deft_runtime_create(ref, &(struct deft_runtime_opts){.backend = "cpu"}, &rrt));
    CHECK_OK(deft_optim_create(&oc, rrt, &ropt));
    if (!rrt || !ropt) return test_summary();
    copy_weights(deft_trainer_runtime(t), rrt);
    size_t np_init;
    float *p_init = copy_block(deft_trainer_runtime(t), &np_init, false);
    int rx = deft_graph_find_value(ref, "images"), rseed = deft_graph_find_value(ref, "loss_grad");

    size_t nx = (size_t)B * C * H * W;
    float *x = malloc(nx * sizeof(float)), *ya = malloc(n0 * sizeof(float)), *yb = malloc(n1 * sizeof(float));
    double worst_loss = 0;
    for (int s = 0; s < STEPS; s++) {
        fill(x, nx, 1, (uint64_t)s);
        fill(ya, n0, 2, (uint64_t)s);
        fill(yb, n1, 3, (uint64_t)s);
        struct targets tg = {.t = {ya, yb}};
        float hl = 0, rl = 0, one = 1;
        CHECK_OK(deft_trainer_step_targets(t, x, &tg, &hl));
        CHECK_OK(deft_runtime_set_input(rrt, rx, x, nx));
        CHECK_OK(deft_runtime_set_input(rrt, ta, ya, n0));
        CHECK_OK(deft_runtime_set_input(rrt, tb, yb, n1));
        CHECK_OK(deft_runtime_set_input(rrt, rseed, &one, 1));
        CHECK_OK(deft_runtime_run(rrt));
        CHECK_OK(deft_runtime_read(rrt, total, &rl, 1));
        CHECK_OK(deft_optim_step(ropt, 0.05f));
        double d = fabs((double)hl - rl) / fabs((double)rl);
        if (d > worst_loss) worst_loss = d;
        const double *terms = deft_trainer_loss_terms(t);
        CHECK(fabs(terms[0] + terms[1] - hl) <= 1e-5 * fabs(hl), "terms add up to the loss at step %d", s);
    }
    double wd = max_diff_by_name(deft_trainer_runtime(t), rrt);
    printf("host loss vs in-graph L2 after %d steps: max |dw| = %.3g, max rel loss diff = %.3g\n", STEPS, wd,
           worst_loss);
    CHECK(wd <= 1e-5, "weights after %d steps differ by %g", STEPS, wd);
    CHECK(worst_loss <= 1e-5, "losses differ by %g", worst_loss);
    CHECK(deft_trainer_steps(t) == STEPS, "step count");
    double moved = test_max_abs_diff(p_init, deft_runtime_param_block(deft_trainer_runtime(t), &np_init), np_init);
    printf("weights moved by up to %.3g\n", moved);
    CHECK(moved > 1e-3, "training moved the weights (%g)", moved);
    free(p_init);

    /* NaN from the host loss: weights, BN statistics and step count unchanged */
    size_t np, ns;
    float *p0 = copy_block(deft_trainer_runtime(t), &np, false), *st0 = copy_block(deft_trainer_runtime(t), &ns, true);
    struct targets bad = {.t = {ya, yb}, .nan = true};
    float nl = 0;
    CHECK(deft_trainer_step_targets(t, x, &bad, &nl) == DEFT_ERR_NUMERIC, "NaN loss is DEFT_ERR_NUMERIC");
    CHECK(isnan(nl), "NaN loss reported");
    CHECK(test_max_abs_diff(p0, deft_runtime_param_block(deft_trainer_runtime(t), &np), np) == 0,
          "weights untouched by a NaN loss");
    CHECK(test_max_abs_diff(st0, deft_runtime_state_block(deft_trainer_runtime(t), &ns), ns) == 0,
          "BN statistics untouched by a NaN loss");
    CHECK(deft_trainer_steps(t) == STEPS, "no optimizer step on NaN");

    /* multi-output inference: the same forward as the reference's eval-mode graph */
    float *pa = malloc(n0 * sizeof(float)), *pb = malloc(n1 * sizeof(float));
    float *const po[2] = {pa, pb};
    CHECK_OK(deft_trainer_predict_outputs(t, x, 2, po));
    struct deft_graph *ev = NULL;
    struct deft_runtime *ert = NULL;
    CHECK_OK(deft_graph_clone(model, &ev));
    deft_graph_set_training(ev, false);
    CHECK_OK(deft_runtime_create(ev, &(struct deft_runtime_opts){.backend = "cpu"}, &ert));
    copy_weights(deft_trainer_runtime(t), ert);
    CHECK_OK(deft_runtime_set_input(ert, deft_graph_find_role(ev, DEFT_ROLE_IMAGE), x, nx));
    CHECK_OK(deft_runtime_run(ert));
    float *ea = malloc(n0 * sizeof(float));
    CHECK_OK(deft_runtime_read(ert, deft_graph_find_role(ev, "head_s16"), ea, n0));
    CHECK(test_max_abs_diff(pa, ea, n0 / B * 2) <= 1e-5, "predict_outputs matches an eval-mode run");

    free(ea);
    free(pa);
    free(pb);
    free(p0);
    free(st0);
    free(x);
    free(ya);
    free(yb);
    deft_runtime_free(ert);
    deft_graph_free(ev);
    deft_optim_free(ropt);
    deft_runtime_free(rrt);
    deft_graph_free(ref);
    deft_trainer_free(t);
    deft_graph_free(model);
    return test_summary();
}

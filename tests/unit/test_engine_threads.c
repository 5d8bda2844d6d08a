/* test_engine_threads.c - the engine C API (deft/engine.h): a model saved,
 * converted and loaded through the library; its engine's outputs against the
 * unconverted model on the reference backend (within 1e-4 of the logits'
 * scale); two threads, each on its own context, running different inputs at
 * the same time, give bit for bit what one context gives running them in
 * turn; wrong sizes are refused; a model is not an engine. */
#include <pthread.h>
#include <string.h>
#include "deft_test.h"
#include "deft/engine.h"

#define ROUNDS 4

struct job {
    const struct deft_engine *e;
    const float *x;
    float *y;
    size_t nx, ny;
    enum deft_status s;
};

static void *run_job(void *arg) {
    struct job *j = arg;
    struct deft_engine_context *c = NULL;
    j->s = deft_engine_context_create(j->e, &c);
    /* several runs on one context: a later run must not depend on an earlier */
    for (int r = 0; !j->s && r < ROUNDS; r++) j->s = deft_engine_run(c, j->x, j->nx, j->y, j->ny);
    deft_engine_context_free(c);
    return NULL;
}

/* The unconverted model (eval mode) on the reference backend. */
static void reference(struct deft_graph *g, int in, int out, const char *model, const float *x, float *y, size_t nx,
                      size_t ny) {
    struct deft_model *m = NULL;
    struct deft_runtime *rt = NULL;
    CHECK_OK(deft_model_load(model, &m));
    if (!m) return;
    (void)g;
    deft_graph_set_training(m->graph, false);
    CHECK_OK(deft_runtime_create(m->graph, &(struct deft_runtime_opts){.backend = "ref"}, &rt));
    if (rt) {
        CHECK_OK(deft_model_copy_to_runtime(m->file, rt, 0, NULL));
        CHECK_OK(deft_runtime_set_input(rt, in, x, nx));
        CHECK_OK(deft_runtime_run(rt));
        CHECK_OK(deft_runtime_read(rt, out, y, ny));
    }
    deft_runtime_free(rt);
    deft_model_free(m);
}

int main(void) {
    char model[512], engine[512];
    snprintf(model, sizeof model, "%s/m.safetensors", test_tmpdir());
    snprintf(engine, sizeof engine, "%s/m.engine", test_tmpdir());
    struct deft_graph *g = NULL;
    struct deft_runtime *rt = NULL;
    int in = -1, out = -1;
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = "resnet18", .num_classes = 5, .batch = 2,
                                                        .height = 48, .width = 48}, &g, &in, &out));
    if (!g) return test_summary();
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "ref"}, &rt));
    CHECK_OK(deft_runtime_init_params(rt, 3));
    /* batch-norm statistics away from 0/1, so eval mode and folding matter */
    size_t ns;
    float *st = deft_runtime_state_block(rt, &ns);
    for (size_t i = 0; i < ns; i++) /* means start at 0, variances at 1 */
        st[i] = st[i] == 0 ? 0.2f * deft_rng_normal(9, 0, i) : 0.5f + deft_rng_uniform(9, 1, i);
    CHECK_OK(deft_model_save(model, g, &(struct deft_model_save_opts){.rt = rt}));
    deft_runtime_free(rt);

    struct deft_engine *e = NULL;
    CHECK(deft_engine_load(model, &e) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "not an engine"),
          "a model is not an engine: %s", deft_last_error());
    CHECK_OK(deft_engine_convert(model, engine, &(struct deft_engine_convert_opts){.batch = 2}));
    CHECK_OK(deft_engine_load(engine, &e));
    if (!e) return test_summary();
    struct deft_engine_info info;
    deft_engine_get_info(e, &info);
    CHECK(info.batch == 2 && info.input_numel == 2 * 3 * 48 * 48 && info.output_numel == 2 * 5 &&
          !strcmp(info.precision, "fp32") && info.format_version == 1 && !info.cpu_differs &&
              info.num_outputs == 1 && info.output_numels[0] == info.output_numel &&
              !strcmp(info.output_names[0], info.output_name),
          "info: batch %d, %zu in, %zu out, %s", info.batch, info.input_numel, info.output_numel, info.precision);

    size_t nx = info.input_numel, ny = info.output_numel;
    float *x[2], *one[2], *two[2], ref[2 * 5];
    for (int k = 0; k < 2; k++) {
        x[k] = malloc(nx * sizeof(float));
        one[k] = malloc(ny * sizeof(float));
        two[k] = malloc(ny * sizeof(float));
        for (size_t i = 0; i < nx; i++) x[k][i] = deft_rng_normal(11 + (uint64_t)k, 0, i);
    }
    /* one context, the inputs in turn */
    struct deft_engine_context *c = NULL;
    CHECK_OK(deft_engine_context_create(e, &c));
    for (int k = 0; c && k < 2; k++) CHECK_OK(deft_engine_run(c, x[k], nx, one[k], ny));
    CHECK(c && deft_engine_run(c, x[0], nx - 1, one[0], ny) == DEFT_ERR_SHAPE, "a short input is refused");
    {
        float *outs[2] = {one[0], one[1]};
        size_t ns[2] = {ny, ny};
        CHECK(c && deft_engine_run_outputs(c, x[0], nx, outs, ns, 2) == DEFT_ERR_INVALID_ARG &&
                  strstr(deft_last_error(), "the engine has 1 outputs"),
              "two output buffers for a one-output engine are refused: %s", deft_last_error());
        CHECK(c && !deft_engine_run_outputs(c, x[0], nx, outs, ns, 1), "run_outputs with its one output");
    }
    CHECK(c && deft_engine_run(c, x[0], nx, one[0], ny + 1) == DEFT_ERR_SHAPE, "a wrong output size is refused");
    CHECK_OK(deft_engine_run(c, x[0], nx, one[0], ny));
    deft_engine_context_free(c);
    for (int k = 0; k < 2; k++) {
        reference(g, in, out, model, x[k], ref, nx, ny);
        double err = test_max_rel_err(one[k], ref, ny);
        CHECK(err <= 1e-4, "input %d: engine vs the unconverted model on ref: rel err %.3g", k, err);
        printf("input %d: engine vs unconverted model (ref backend): max rel err %.3g (logits %.4g %.4g ...)\n", k, err,
               one[k][0], one[k][1]);
    }
    /* two threads, two contexts, at once */
    struct job jobs[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        jobs[k] = (struct job){.e = e, .x = x[k], .y = two[k], .nx = nx, .ny = ny};
        CHECK(pthread_create(&th[k], NULL, run_job, &jobs[k]) == 0, "pthread_create");
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(th[k], NULL);
        CHECK(jobs[k].s == DEFT_OK, "thread %d: %s", k, deft_status_str(jobs[k].s));
        CHECK(!memcmp(one[k], two[k], ny * sizeof(float)), "thread %d: outputs equal one context's bit for bit "
              "(max diff %.3g)", k, test_max_abs_diff(one[k], two[k], ny));
    }
    printf("two threads on two contexts x %d runs: outputs identical to one context's\n", ROUNDS);
    for (int k = 0; k < 2; k++) {
        free(x[k]);
        free(one[k]);
        free(two[k]);
    }
    deft_engine_free(e);
    deft_graph_free(g);
    return test_summary();
}

/* test_model_file.c - deft model files: save from a runtime with optimizer
 * extras and training metadata, load, rebuild a runtime that gives the same
 * output; shape/name errors name the tensor and both shapes; foreign,
 * future and corrupt files are refused; allocation failures leak nothing. */
#include <string.h>
#include <unistd.h>
#include "deft_test.h"
#include "deft/io.h"

static char path_buf[512];
static const char *tmp_path(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_tmpdir(), name);
    return path_buf;
}

static struct deft_graph *build(int classes) {
    struct deft_graph *g;
    if (deft_graph_create(&g)) return NULL;
    int x = deft_input(g, "input_1", deft_shape4(2, 3, 8, 8));
    struct deft_conv_attr c = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int y = deft_conv2d(g, "conv1", x, 4, 3, 3, &c, false);
    y = deft_batchnorm(g, "bn1", y, DEFT_BN_EVAL);
    y = deft_act(g, "relu", y, DEFT_ACT_RELU, 0);
    y = deft_global_avgpool(g, "gap", y);
    y = deft_flatten(g, "flatten", y);
    y = deft_linear(g, "fc", y, classes, true);
    if (y >= 0) deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
    if (deft_graph_set_meta(g, "arch", "\"tiny\"") ||
        deft_graph_set_meta(g, "classes", "[\"a\",\"b\",\"c\"]") || deft_graph_status(g)) {
        deft_graph_free(g);
        return NULL;
    }
    return g;
}

static void forward(struct deft_runtime *rt, const struct deft_graph *g, float *out, size_t n) {
    float x[2 * 3 * 8 * 8];
    for (int i = 0; i < 384; i++) x[i] = deft_rng_normal(5, 0, (uint64_t)i);
    CHECK_OK(deft_runtime_set_input(rt, deft_graph_find_value(g, "input_1"), x, 384));
    CHECK_OK(deft_runtime_run(rt));
    CHECK_OK(deft_runtime_read(rt, deft_graph_find_value(g, "fc"), out, n));
}

static void test_save_load(void) {
    long live0 = deft_alloc_live();
    struct deft_graph *g = build(3);
    struct deft_runtime *rt = NULL, *rt2 = NULL;
    CHECK(g != NULL, "graph");
    if (!g) return;
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "ref"}, &rt));
    if (!rt) {
        deft_graph_free(g);
        return;
    }
    CHECK_OK(deft_runtime_init_params(rt, 3));
    /* non-trivial BN statistics so STATE values matter */
    float *rv = deft_runtime_data(rt, deft_graph_find_value(g, "bn1.running_var"));
    float *rm = deft_runtime_data(rt, deft_graph_find_value(g, "bn1.running_mean"));
    for (int i = 0; i < 4; i++) rv[i] = 0.5f + (float)i, rm[i] = 0.1f * (float)i;
    float out1[6], out2[6];
    forward(rt, g, out1, 6);

    struct deft_tensor *mom;
    struct deft_shape ws = {.ndim = 2, .d = {3, 4}};
    CHECK_OK(deft_tensor_create(DEFT_F32, &ws, &mom));
    ((float *)mom->data)[5] = 42.0f;
    struct deft_named_tensor extra = {"__optim__.momentum.fc.weight", mom};
    struct deft_kv kv = {"train_state", "{\"epoch\": 7, \"step\": 1234}"};
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("model.safetensors"));
    CHECK_OK(deft_model_save(path, NULL, &(struct deft_model_save_opts){
                                             .rt = rt, .extra = &extra, .n_extra = 1,
                                             .meta = &kv, .n_meta = 1}));
    struct deft_model *m = NULL;
    CHECK_OK(deft_model_load(path, &m));
    if (m) {
        char *j1 = NULL, *j2 = NULL;
        CHECK_OK(deft_graph_to_json(g, &j1));
        CHECK_OK(deft_graph_to_json(m->graph, &j2));
        CHECK(j1 && j2 && !strcmp(j1, j2), "graph reloads identically");
        deft_free(j1);
        deft_free(j2);
        const char *ts = deft_safetensors_meta(m->file, "train_state");
        CHECK(ts && !strcmp(ts, kv.value), "train_state metadata");
        CHECK(!strcmp(deft_safetensors_meta(m->file, "deft_format"), "1"), "format version");
        const char *arch = deft_graph_get_meta(m->graph, "arch");
        CHECK(arch && !strcmp(arch, "\"tiny\""), "graph meta");
        struct deft_tensor *em = deft_safetensors_find(m->file, "__optim__.momentum.fc.weight");
        CHECK(em && ((float *)em->data)[5] == 42.0f, "optimizer extra");
        struct deft_tensor *trv = deft_safetensors_find(m->file, "bn1.running_var");
        CHECK(trv && ((float *)trv->data)[3] == 3.5f, "state saved");
        /* a fresh runtime on the loaded graph gives identical outputs */
        CHECK_OK(deft_runtime_create(m->graph, &(struct deft_runtime_opts){.backend = "ref"}, &rt2));
        if (rt2) {
            int nc = 0;
            CHECK_OK(deft_model_copy_to_runtime(m->file, rt2, 0, &nc));
            CHECK(nc == 7, "7 params/state copied (%d)", nc);
            forward(rt2, m->graph, out2, 6);
            CHECK(!memcmp(out1, out2, sizeof out1), "identical outputs after reload");
        }
    }
    deft_runtime_free(rt2);
    deft_model_free(m);

    /* save from an explicit list reproduces the same file contents */
    struct deft_model *m2 = NULL;
    CHECK_OK(deft_model_load(path, &m2));
    if (m2) {
        struct deft_named_tensor list[8];
        int n = 0;
        for (int i = 0; i < m2->file->n_tensors && n < 8; i++)
            if (strncmp(m2->file->tensors[i].name, "__optim__", 9)) list[n++] = m2->file->tensors[i];
        CHECK_OK(deft_model_save(tmp_path("explicit.safetensors"), m2->graph,
                                 &(struct deft_model_save_opts){.tensors = list, .n_tensors = n}));
        /* wrong shape: the message names the tensor and both shapes */
        struct deft_named_tensor bad[8];
        memcpy(bad, list, sizeof bad);
        struct deft_tensor *w5;
        struct deft_shape s5 = {.ndim = 2, .d = {5, 4}};
        CHECK_OK(deft_tensor_create(DEFT_F32, &s5, &w5));
        for (int i = 0; i < n; i++)
            if (!strcmp(bad[i].name, "fc.weight")) bad[i].tensor = w5;
        enum deft_status s = deft_model_save(tmp_path("bad.safetensors"), m2->graph,
                                             &(struct deft_model_save_opts){.tensors = bad, .n_tensors = n});
        CHECK(s == DEFT_ERR_SHAPE && strstr(deft_last_error(), "fc.weight") &&
                  strstr(deft_last_error(), "[5, 4]") && strstr(deft_last_error(), "[3, 4]"),
              "explicit shape mismatch: %s", deft_last_error());
        CHECK(access(tmp_path("bad.safetensors"), F_OK) != 0, "no file written on error");
        s = deft_model_save(tmp_path("bad.safetensors"), m2->graph,
                            &(struct deft_model_save_opts){.tensors = list, .n_tensors = n - 1});
        CHECK(s == DEFT_ERR_NOT_FOUND, "missing tensor: %s", deft_last_error());
        struct deft_kv res = {"graph", "{}"};
        s = deft_model_save(tmp_path("bad.safetensors"), m2->graph,
                            &(struct deft_model_save_opts){.tensors = list, .n_tensors = n,
                                                           .meta = &res, .n_meta = 1});
        CHECK(s == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "reserved"), "reserved key");
        deft_tensor_free(w5);
    }
    deft_model_free(m2);

    /* copying into a runtime of a different head: error, or skip on request */
    struct deft_graph *g5 = build(5);
    struct deft_runtime *rt5 = NULL;
    struct deft_safetensors *st = NULL;
    CHECK_OK(deft_safetensors_read(path, &st));
    if (g5 && st) CHECK_OK(deft_runtime_create(g5, &(struct deft_runtime_opts){.backend = "ref"}, &rt5));
    if (rt5) {
        enum deft_status s = deft_model_copy_to_runtime(st, rt5, 0, NULL);
        CHECK(s == DEFT_ERR_SHAPE && strstr(deft_last_error(), "'fc.weight'") &&
                  strstr(deft_last_error(), "[3, 4]") && strstr(deft_last_error(), "[5, 4]"),
              "head mismatch: %s", deft_last_error());
        int nc = -1;
        deft_log_set_level(DEFT_LOG_ERROR);
        CHECK_OK(deft_model_copy_to_runtime(st, rt5, DEFT_LOAD_SKIP_MISMATCH, &nc));
        deft_log_set_level(DEFT_LOG_INFO);
        CHECK(nc == 5, "backbone copied, head skipped (%d)", nc);
    }
    deft_runtime_free(rt5);
    deft_graph_free(g5);
    deft_safetensors_free(st);

    deft_tensor_free(mom);
    deft_runtime_free(rt);
    deft_graph_free(g);
    CHECK(deft_alloc_live() == live0, "leak %ld", deft_alloc_live() - live0);
}

static void test_refused(void) {
    /* plain safetensors without deft metadata */
    struct deft_tensor *t;
    struct deft_shape s = {.ndim = 1, .d = {2}};
    CHECK_OK(deft_tensor_create(DEFT_F32, &s, &t));
    struct deft_named_tensor nt = {"w", t};
    CHECK_OK(deft_safetensors_write(tmp_path("foreign.safetensors"), &nt, 1, NULL, 0));
    struct deft_model *m = NULL;
    CHECK(deft_model_load(tmp_path("foreign.safetensors"), &m) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "not a deft model"),
          "foreign: %s", deft_last_error());
    struct deft_kv fut[2] = {{"deft_format", "2"}, {"graph", "{}"}};
    CHECK_OK(deft_safetensors_write(tmp_path("future.safetensors"), &nt, 1, fut, 2));
    CHECK(deft_model_load(tmp_path("future.safetensors"), &m) == DEFT_ERR_UNSUPPORTED,
          "future: %s", deft_last_error());
    struct deft_kv badg[2] = {{"deft_format", "1"}, {"graph", "{\"format\":\"deft-graph\"}"}};
    CHECK_OK(deft_safetensors_write(tmp_path("badgraph.safetensors"), &nt, 1, badg, 2));
    CHECK(deft_model_load(tmp_path("badgraph.safetensors"), &m) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "badgraph.safetensors"),
          "bad graph: %s", deft_last_error());
    CHECK(m == NULL, "out stays NULL");
    deft_tensor_free(t);
}

/* A model whose tensor does not match its graph is refused on load. */
static void test_inconsistent(void) {
    struct deft_graph *g = build(3);
    if (!g) return;
    char *gj = NULL;
    CHECK_OK(deft_graph_to_json(g, &gj));
    struct deft_kv kv[2] = {{"deft_format", "1"}, {"graph", gj}};
    struct deft_tensor *t;
    struct deft_shape s = {.ndim = 1, .d = {2}};
    CHECK_OK(deft_tensor_create(DEFT_F32, &s, &t));
    struct deft_named_tensor nt = {"conv1.weight", t};
    CHECK_OK(deft_safetensors_write(tmp_path("incons.safetensors"), &nt, 1, kv, 2));
    struct deft_model *m = NULL;
    CHECK(deft_model_load(tmp_path("incons.safetensors"), &m) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "conv1.weight") && strstr(deft_last_error(), "[4, 3, 3, 3]"),
          "inconsistent: %s", deft_last_error());
    deft_tensor_free(t);
    deft_free(gj);
    deft_graph_free(g);
}

static void test_alloc_failures(void) {
    long live0 = deft_alloc_live();
    int fails = 0;
    for (long k = 1; k < 100000; k++) {
        struct deft_model *m = NULL;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_model_load(tmp_path("model.safetensors"), &m);
        deft_alloc_fail_after(0);
        deft_model_free(m);
        if (!s) break;
        fails++;
        if (s != DEFT_ERR_NOMEM && s != DEFT_ERR_FORMAT) CHECK(0, "k=%ld: %s", k, deft_status_str(s));
    }
    CHECK(fails > 20, "load fault loop ran (%d)", fails);
    struct deft_model *m = NULL;
    CHECK_OK(deft_model_load(tmp_path("model.safetensors"), &m));
    if (m) {
        struct deft_named_tensor w[16], ex[2];
        int nw = 0, ne = 0;
        for (int i = 0; i < m->file->n_tensors; i++) {
            if (!strncmp(m->file->tensors[i].name, "__optim__", 9)) {
                if (ne < 2) ex[ne++] = m->file->tensors[i];
            } else if (nw < 16) {
                w[nw++] = m->file->tensors[i];
            }
        }
        fails = 0;
        for (long k = 1; k < 100000; k++) {
            deft_alloc_fail_after(k);
            enum deft_status s = deft_model_save(tmp_path("oom.safetensors"), m->graph,
                                                 &(struct deft_model_save_opts){
                                                     .tensors = w, .n_tensors = nw,
                                                     .extra = ex, .n_extra = ne});
            deft_alloc_fail_after(0);
            if (!s) break;
            fails++;
            if (s != DEFT_ERR_NOMEM) CHECK(0, "save k=%ld: %s %s", k, deft_status_str(s), deft_last_error());
        }
        CHECK(fails > 5, "save fault loop ran (%d)", fails);
    }
    deft_model_free(m);
    CHECK(deft_alloc_live() == live0, "fault loops leak %ld", deft_alloc_live() - live0);
}

/* Save the forward graph while the runtime runs the training graph. */
static void test_forward_clone(void) {
    long live0 = deft_alloc_live();
    struct deft_graph *g = build(3), *gf = NULL;
    struct deft_runtime *rt = NULL;
    if (!g) return;
    int t = deft_input(g, "target", (struct deft_shape){.ndim = 1, .d = {2}});
    int loss = deft_loss(g, "loss", deft_graph_find_value(g, "fc"), t,
                         &(struct deft_loss_attr){.kind = DEFT_LOSS_SOFTMAX_CE});
    CHECK_OK(deft_graph_clone(g, &gf));
    CHECK_OK(deft_autograd(g, loss, NULL));
    CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "ref"}, &rt));
    if (rt && gf) {
        CHECK_OK(deft_runtime_init_params(rt, 9));
        CHECK_OK(deft_model_save(tmp_path("fwd.safetensors"), gf,
                                 &(struct deft_model_save_opts){.rt = rt}));
        struct deft_model *m = NULL;
        CHECK_OK(deft_model_load(tmp_path("fwd.safetensors"), &m));
        if (m) {
            CHECK(deft_graph_num_nodes(m->graph) == deft_graph_num_nodes(gf), "forward graph saved");
            const struct deft_tensor *w = deft_safetensors_find(m->file, "fc.weight");
            const float *src = deft_runtime_data(rt, deft_graph_find_value(g, "fc.weight"));
            CHECK(w && !memcmp(w->data, src, 12 * 4), "weights from the training runtime");
        }
        deft_model_free(m);
    }
    deft_runtime_free(rt);
    deft_graph_free(gf);
    deft_graph_free(g);
    CHECK(deft_alloc_live() == live0, "leak");
}

int main(void) {
    test_save_load();
    test_forward_clone();
    test_refused();
    test_inconsistent();
    test_alloc_failures();
    return test_summary();
}

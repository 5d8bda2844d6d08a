/* test_alloc_inject.c - allocation-failure injection over the sequences a
 * user's run goes through: parse a spec (YAML and TAO protobuf text), build a
 * network and its backward graph, plan it in a runtime, save and load a
 * checkpoint, import weights (.pth zip and legacy, Keras HDF5, ONNX,
 * safetensors). For every k, the k-th allocation of the sequence fails: the
 * sequence must return an error with a message, leak nothing (deft_alloc_live
 * is back where it was; the ASan build also sees malloc-level leaks), and
 * leave no file behind when it was writing one. Prints the number of
 * injection points exercised. */
#include <string.h>
#include <sys/stat.h>
#include "deft_test.h"
#include "deft/deft.h"
#include "deft/spec.h"

static char *g_spec_yaml, *g_spec_txt;
static size_t g_spec_yaml_n, g_spec_txt_n;
static char g_ckpt[4096], g_ckpt_out[4096];
static char g_inputs[6][4096];

static enum deft_status parse_yaml(void) {
    struct deft_cls_config c;
    const char *ov[] = {"train_config.n_epochs=3", "model_config.freeze_blocks=[0, 1]"};
    enum deft_status s = deft_cls_config_parse(g_spec_yaml, g_spec_yaml_n, "spec.yaml", DEFT_SPEC_FORMAT_YAML,
                                               ov, 2, &c);
    if (s == DEFT_OK) deft_cls_config_free(&c);
    return s;
}

static enum deft_status parse_prototxt(void) {
    struct deft_cls_config c;
    enum deft_status s =
        deft_cls_config_parse(g_spec_txt, g_spec_txt_n, "spec.txt", DEFT_SPEC_FORMAT_PROTOTXT, NULL, 0, &c);
    if (s == DEFT_OK) deft_cls_config_free(&c);
    return s;
}

/* A training graph: network, loss, autograd, and its JSON round trip. */
static enum deft_status build_train_graph(const char *arch, int size, struct deft_graph **out) {
    struct deft_graph *g = NULL;
    int x, logits;
    enum deft_status s = deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 3, .batch = 2,
                                                                    .height = size, .width = size, .training = true},
                                          &g, &x, &logits);
    if (s) return s;
    int target = deft_input(g, "target", deft_shape_make(1, (int64_t[]){2}));
    int loss = deft_loss(g, "loss", logits, target, &(struct deft_loss_attr){.kind = DEFT_LOSS_SOFTMAX_CE});
    if ((s = deft_graph_status(g)) || (s = deft_autograd(g, loss, NULL))) {
        deft_graph_free(g);
        return s;
    }
    (void)loss;
    *out = g;
    return DEFT_OK;
}

/* (graph JSON is covered by the checkpoint sequences) */
static enum deft_status build_graph(void) {
    struct deft_graph *g = NULL;
    enum deft_status s = build_train_graph("mobilenet_v2", 32, &g);
    deft_graph_free(g);
    return s;
}

static enum deft_status plan_runtime(void) {
    struct deft_graph *g = NULL;
    enum deft_status s = build_train_graph("resnet10", 32, &g);
    struct deft_runtime *rt = NULL;
    if (!s) s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "cpu"}, &rt);
    if (!s) s = deft_runtime_init_params(rt, 5);
    deft_runtime_free(rt);
    deft_graph_free(g);
    return s;
}

static enum deft_status load_checkpoint(void) {
    struct deft_model *m = NULL;
    enum deft_status s = deft_model_load(g_ckpt, &m);
    struct deft_runtime *rt = NULL;
    if (!s) s = deft_runtime_create(m->graph, &(struct deft_runtime_opts){.backend = "cpu"}, &rt);
    if (!s) s = deft_model_copy_to_runtime(m->file, rt, 0, NULL);
    deft_runtime_free(rt);
    deft_model_free(m);
    return s;
}

/* Writing: a failure must leave neither the file nor a temporary beside it. */
static enum deft_status save_checkpoint(void) {
    remove(g_ckpt_out);
    struct deft_model *m = NULL;
    enum deft_status s = deft_model_load(g_ckpt, &m);
    if (s) return s;
    struct deft_kv kv[] = {{"train_state", "{\"epoch\": 1}"}};
    struct deft_named_tensor *t = deft_malloc((size_t)m->file->n_tensors * sizeof *t);
    if (!t) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    else {
        memcpy(t, m->file->tensors, (size_t)m->file->n_tensors * sizeof *t);
        s = deft_model_save(g_ckpt_out, m->graph, &(struct deft_model_save_opts){
                                .tensors = t, .n_tensors = m->file->n_tensors, .meta = kv, .n_meta = 1});
    }
    deft_free(t);
    deft_model_free(m);
    return s;
}

static int g_which, g_failures;
static enum deft_status import_weights(void) {
    struct deft_safetensors *w = NULL;
    enum deft_status s = deft_weights_read(g_inputs[g_which], &w);
    deft_safetensors_free(w);
    return s;
}

static int dir_entries(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* Fail allocation k = 1, 2, ... until the sequence succeeds; returns the
 * number of injection points (failing k). */
static long inject(const char *what, enum deft_status (*fn)(void), const char *out_dir) {
    long live = deft_alloc_live();
    long before = deft_alloc_count();
    double t0 = deft_time_now();
    enum deft_status s = fn();
    CHECK(s == DEFT_OK, "%s: the sequence itself fails: %s", what, deft_last_error());
    if (s) return 0;
    long allocs = deft_alloc_count() - before;
    CHECK(deft_alloc_live() == live, "%s: leaks %ld blocks without injection", what, deft_alloc_live() - live);
    int files = out_dir ? dir_entries(out_dir) : 0;
    long points = 0, bad_status = 0, leaks = 0, stray = 0, silent = 0;
    for (long k = 1; k <= allocs + 1; k++) {
        deft_clear_error();
        deft_alloc_fail_after(k);
        s = fn();
        deft_alloc_fail_after(0);
        if (deft_alloc_live() != live) leaks++, live = deft_alloc_live();
        if (s == DEFT_OK) {
            if (k <= allocs && !bad_status++) /* the k-th allocation happened and failed, yet OK */
                printf("%s: allocation %ld failed, yet the sequence succeeded\n", what, k);
            continue;
        }
        points++;
        if (!deft_last_error()[0]) silent++;
        if (out_dir && dir_entries(out_dir) != files - 1) stray++;
    }
    CHECK(bad_status == 0, "%s: %ld failed allocations went unnoticed", what, bad_status);
    CHECK(leaks == 0, "%s: %ld injections leaked", what, leaks);
    CHECK(silent == 0, "%s: %ld errors without a message", what, silent);
    CHECK(stray == 0, "%s: %ld failed writes left a file behind", what, stray);
    CHECK(points > 0, "%s: no injection point", what);
    bool all = !bad_status && !leaks && !silent && !stray;
    printf("%-34s %6ld allocations, %6ld injection points, %s (%.1f s)\n", what, allocs, points,
           all ? "all handled" : "FAILURES", deft_time_now() - t0);
    g_failures += !all;
    return points;
}

static char *slurp(const char *path, size_t *n) {
    void *buf = NULL;
    if (deft_file_read(path, 1u << 24, &buf, n) != DEFT_OK) return NULL;
    return buf;
}

int main(void) {
    deft_log_set_level(DEFT_LOG_ERROR);
    const char *src = test_source_dir();
    char p[4096];
    snprintf(p, sizeof p, "%s/specs/hymenoptera_resnet18_scratch.yaml", src);
    g_spec_yaml = slurp(p, &g_spec_yaml_n);
    snprintf(p, sizeof p, "%s/tests/fuzz/corpus/prototxt/classification_tf1_train_resnet18_voc.txt", src);
    g_spec_txt = slurp(p, &g_spec_txt_n);
    CHECK(g_spec_yaml && g_spec_txt, "spec files missing under %s", src);
    if (!g_spec_yaml || !g_spec_txt) return test_summary();

    /* a small checkpoint to load and write back */
    snprintf(g_ckpt, sizeof g_ckpt, "%s/ckpt.safetensors", test_tmpdir());
    char outdir[4096];
    snprintf(outdir, sizeof outdir, "%s/out", test_tmpdir());
    mkdir(outdir, 0755);
    snprintf(g_ckpt_out, sizeof g_ckpt_out, "%s/latest.safetensors", outdir);
    {
        struct deft_graph *g = NULL;
        struct deft_runtime *rt = NULL;
        CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = "resnet10", .num_classes = 3, .height = 32,
                                                            .width = 32},
                                  &g, NULL, NULL));
        CHECK_OK(deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "cpu"}, &rt));
        CHECK_OK(deft_runtime_init_params(rt, 3));
        CHECK_OK(deft_model_save(g_ckpt, g, &(struct deft_model_save_opts){.rt = rt}));
        deft_runtime_free(rt);
        deft_graph_free(g);
    }
    const char *inputs[6] = {"pth/zip.pth", "pth/legacy.pth", "keras_h5/weights.h5", "onnx/conv_bn_relu_pool_gemm.onnx",
                             "safetensors/small.safetensors", "pth/wrapped.pth"};
    for (int i = 0; i < 6; i++) snprintf(g_inputs[i], sizeof g_inputs[i], "%s/tests/fuzz/corpus/%s", src, inputs[i]);

    long total = 0;
    total += inject("parse spec (YAML, --set)", parse_yaml, NULL);
    total += inject("parse spec (TAO prototxt)", parse_prototxt, NULL);
    total += inject("build graph + autograd", build_graph, NULL);
    total += inject("plan runtime (resnet10)", plan_runtime, NULL);
    total += inject("load checkpoint", load_checkpoint, NULL);
    total += inject("save checkpoint", save_checkpoint, outdir);
    for (g_which = 0; g_which < 6; g_which++) {
        char what[64];
        snprintf(what, sizeof what, "import %s", strchr(inputs[g_which], '/') + 1);
        total += inject(what, import_weights, NULL);
    }
    /* the Keras reader runs in a child process: its own allocations are
     * injected in-process (DEFT_SANDBOX=0), the parent's side above */
    setenv("DEFT_SANDBOX", "0", 1);
    g_which = 2;
    total += inject("import weights.h5 (reader in-process)", import_weights, NULL);
    unsetenv("DEFT_SANDBOX");
    printf("allocation-failure injection: %ld injection points over 13 sequences, %s\n", total,
           g_failures ? "some NOT handled (above)" : "all handled, 0 leaks");
    deft_free(g_spec_yaml);
    deft_free(g_spec_txt);
    return test_summary();
}

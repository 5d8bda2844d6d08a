/* test_onnx.c - the ONNX importer on the seed models of tests/fuzz/corpus/onnx
 * (small graphs covering every converted op): each converts and validates;
 * an allocation failure at every step gives an error and leaks nothing;
 * truncations and byte flips never crash or leak; the element-wise seed
 * exported back to ONNX imports as the same graph. (Numbers against
 * onnxruntime are checked by tests/cli/test_onnx_ops.sh.) */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/io.h"

static void check_seed(const char *path) {
    void *img = NULL;
    size_t len = 0;
    CHECK_OK(deft_file_read(path, (size_t)1 << 24, &img, &len));
    if (!img) return;
    long live = deft_alloc_live();
    struct deft_graph *g = NULL;
    struct deft_safetensors *w = NULL;
    CHECK_OK(deft_onnx_parse(img, len, path, &g, &w));
    if (g) {
        CHECK_OK(deft_graph_validate(g));
        int outputs = 0;
        for (int v = 0; v < deft_graph_num_values(g); v++)
            outputs += (deft_graph_value(g, v)->flags & DEFT_VF_OUTPUT) != 0;
        CHECK(outputs == 1, "%s: %d outputs", path, outputs);
        /* one f32 tensor of the right shape per PARAM/STATE value */
        int weights = 0;
        for (int v = 0; v < deft_graph_num_values(g); v++) {
            const struct deft_value *val = deft_graph_value(g, v);
            if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
            weights++;
            const struct deft_tensor *t = deft_safetensors_find(w, val->name);
            CHECK(t && t->dtype == DEFT_F32 && deft_shape_equal(&t->shape, &val->shape),
                  "%s: tensor for %s", path, val->name);
        }
        CHECK(w && w->n_tensors == weights, "%s: %d tensors for %d weights", path,
              w ? w->n_tensors : -1, weights);
    }
    deft_graph_free(g);
    deft_safetensors_free(w);
    CHECK(deft_alloc_live() == live, "%s: leak after a good parse", path);

    int fails = 0;
    for (long k = 1; k < 5000; k++) {
        g = NULL;
        w = NULL;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_onnx_parse(img, len, "oom", &g, &w);
        deft_alloc_fail_after(0);
        CHECK(s == DEFT_OK || (g == NULL && w == NULL), "%s: outputs set on failure", path);
        deft_graph_free(g);
        deft_safetensors_free(w);
        if (s == DEFT_OK) break;
        fails++;
    }
    CHECK(fails > 20 && deft_alloc_live() == live, "%s: %d allocation failures, leak %ld", path,
          fails, deft_alloc_live() - live);

    unsigned char *buf = malloc(len);
    int trunc_ok = 0;
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(buf, img, cut);
        g = NULL;
        w = NULL;
        trunc_ok += deft_onnx_parse(buf, cut, "trunc", &g, &w) == DEFT_OK;
        deft_graph_free(g);
        deft_safetensors_free(w);
    }
    int flips_ok = 0;
    for (int i = 0; i < 400; i++) {
        memcpy(buf, img, len);
        buf[(size_t)i * 7919 % len] ^= (unsigned char)(1u << (i % 8));
        g = NULL;
        w = NULL;
        flips_ok += deft_onnx_parse(buf, len, "flip", &g, &w) == DEFT_OK;
        deft_graph_free(g);
        deft_safetensors_free(w);
    }
    CHECK(deft_alloc_live() == live, "%s: corrupt inputs leak %ld blocks", path,
          deft_alloc_live() - live);
    printf("%s: %zu bytes, %d allocation failures handled, %d of %zu truncations read, "
           "%d of 400 byte flips read\n", path, len, fails, trunc_ok, len, flips_ok);
    free(buf);
    deft_free(img);
}

/* Inputs that once crashed the fuzzer (tests/fuzz/regress/onnx): a status, no leak. */
static int replay_regressions(const char *src) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/onnx", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        void *img = NULL;
        size_t len = 0;
        if (deft_file_read(path, (size_t)1 << 24, &img, &len)) continue;
        long live = deft_alloc_live();
        struct deft_graph *g = NULL;
        struct deft_safetensors *w = NULL;
        enum deft_status s = deft_onnx_parse(img, len, path, &g, &w);
        CHECK((s == DEFT_OK) == (g != NULL), "%s: status and result agree", path);
        deft_graph_free(g);
        deft_safetensors_free(w);
        CHECK(deft_alloc_live() == live, "%s: leak", path);
        printf("regression %s: %s\n", e->d_name, s ? deft_last_error() : "read");
        deft_free(img);
        n++;
    }
    closedir(d);
    return n;
}

/* Export the imported graph and import it again: the same ops, activation
 * kinds and alphas in the same order (the exporter's op names are the
 * importer's). */
static void check_roundtrip(const char *dir, const char *name) {
    char path[8192], out[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(out, sizeof out, "%s/roundtrip_%s", test_tmpdir(), name);
    void *img = NULL, *img2 = NULL;
    size_t len = 0, len2 = 0;
    struct deft_graph *g = NULL, *g2 = NULL;
    struct deft_safetensors *w = NULL, *w2 = NULL;
    CHECK_OK(deft_file_read(path, (size_t)1 << 24, &img, &len));
    if (img) CHECK_OK(deft_onnx_parse(img, len, path, &g, &w));
    if (g) CHECK_OK(deft_onnx_export(out, g, w, &(struct deft_onnx_export_opts){.opset = 13}, NULL));
    if (g) CHECK_OK(deft_file_read(out, (size_t)1 << 24, &img2, &len2));
    if (img2) CHECK_OK(deft_onnx_parse(img2, len2, out, &g2, &w2));
    if (g && g2) {
        int n = deft_graph_num_nodes(g), acts = 0;
        CHECK(deft_graph_num_nodes(g2) == n, "%s: %d nodes, %d after the round trip", name, n,
              deft_graph_num_nodes(g2));
        for (int i = 0; i < n && i < deft_graph_num_nodes(g2); i++) {
            const struct deft_node *a = deft_graph_node(g, i), *b = deft_graph_node(g2, i);
            CHECK(a->op == b->op, "%s: node %d: op %d, %d after the round trip", name, i, (int)a->op, (int)b->op);
            if (a->op != DEFT_OP_ACT || b->op != DEFT_OP_ACT) continue;
            acts++;
            CHECK(a->attr.act.kind == b->attr.act.kind && a->attr.act.alpha == b->attr.act.alpha,
                  "%s: node %d: %s(%g), %s(%g) after the round trip", name, i, deft_act_name(a->attr.act.kind),
                  (double)a->attr.act.alpha, deft_act_name(b->attr.act.kind), (double)b->attr.act.alpha);
        }
        CHECK(acts >= 1, "%s: no activation", name);
    }
    deft_graph_free(g), deft_graph_free(g2);
    deft_safetensors_free(w), deft_safetensors_free(w2);
    deft_free(img), deft_free(img2);
}

int main(void) {
    const char *src = getenv("DEFT_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/onnx", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) test_skip("tests/fuzz/corpus/onnx not found (set DEFT_SOURCE_DIR)");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".onnx")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        check_seed(path);
        n++;
    }
    closedir(d);
    CHECK(n >= 5, "%d seed models", n);
    check_roundtrip(dir, "elementwise_math.onnx");
    CHECK(replay_regressions(src) >= 2, "regression inputs replayed");
    return test_summary();
}

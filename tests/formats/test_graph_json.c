/* test_graph_json.c - graph <-> JSON: round trip of a graph using most op
 * types (forward and autograd's backward ops), then hostile JSON: wrong
 * types, unknown ops, bad references, wrong counts, random mutations and
 * allocation failures must give an error status, never a crash or a leak. */
#include <string.h>
#include "deft_test.h"
#include "deft/io.h"

static struct deft_graph *build_graph(bool with_backward) {
    struct deft_graph *g;
    if (deft_graph_create(&g)) return NULL;
    int x = deft_input(g, "input_1", deft_shape4(2, 3, 16, 16));
    int t = deft_input(g, "target", (struct deft_shape){.ndim = 1, .d = {2}});
    struct deft_conv_attr c = {.stride = {1, 1}, .pad = {1, 1, 1, 1}, .dilation = {1, 1}, .groups = 1};
    int y = deft_conv2d(g, "conv1", x, 8, 3, 3, &c, false);
    y = deft_batchnorm(g, "bn1", y, DEFT_BN_TRAIN);
    y = deft_act(g, "relu1", y, DEFT_ACT_LEAKY_RELU, 0.125f);
    int p = deft_pool(g, "pool1", y, &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2},
                                                              .stride = {2, 2}, .ceil_mode = true});
    struct deft_conv_attr c2 = {.stride = {2, 2}, .pad = {0, 0, 1, 1}, .dilation = {1, 1}, .groups = 2};
    int b = deft_conv2d(g, "conv2", y, 8, 2, 2, &c2, true);
    int cat = deft_concat(g, "cat", (int[]){p, b}, 2, 1);
    int sl = deft_slice(g, "slice", cat, 1, 2, 14);
    int pd = deft_pad(g, "pad", sl, &(struct deft_pad_attr){.before = {0, 0, 1, 0}, .after = {0, 0, 0, 1}});
    int ap = deft_pool(g, "avgpool", pd, &(struct deft_pool_attr){.kind = DEFT_POOL_AVG, .kernel = {3, 3},
                                                                  .stride = {1, 1}, .pad = {1, 1, 1, 1},
                                                                  .count_include_pad = true});
    int up = deft_upsample(g, "up", ap, 18, 18, DEFT_UPSAMPLE_BILINEAR, true);
    int sum = deft_add(g, "sum", up, deft_act(g, "sig", up, DEFT_ACT_SIGMOID, 0));
    y = deft_global_avgpool(g, "gap", sum);
    y = deft_flatten(g, "flatten", y);
    y = deft_dropout(g, "drop", y, 0.25f, true, 0xfedcba9876543210ull);
    y = deft_linear(g, "fc", y, 5, true);
    int sm = deft_softmax(g, "probs", y, 1);
    (void)sm;
    int loss = deft_loss(g, "loss", y, t, &(struct deft_loss_attr){.kind = DEFT_LOSS_SOFTMAX_CE,
                                                                    .label_smoothing = 0.1f});
    CHECK_OK(deft_graph_set_meta(g, "arch", "\"resnet_tiny\""));
    CHECK_OK(deft_graph_set_meta(g, "classes", "[\"cat\", \"dog\", \"caf\\u00e9 \\\"q\\\"\"]"));
    CHECK_OK(deft_graph_set_meta(g, "preprocess", "{\"mean\": [0.485, 0.456, 0.406], \"scale\": 1e-3}"));
    deft_graph_freeze(g, "conv1", true);
    if (with_backward) CHECK_OK(deft_autograd(g, loss, NULL));
    if (deft_graph_status(g)) {
        printf("build failed: %s\n", deft_last_error());
        deft_graph_free(g);
        return NULL;
    }
    return g;
}

static void same_graph(const struct deft_graph *a, const struct deft_graph *b) {
    CHECK(deft_graph_num_values(a) == deft_graph_num_values(b), "value count");
    CHECK(deft_graph_num_nodes(a) == deft_graph_num_nodes(b), "node count");
    if (deft_graph_num_values(a) != deft_graph_num_values(b) ||
        deft_graph_num_nodes(a) != deft_graph_num_nodes(b))
        return;
    int bad = 0;
    for (int i = 0; i < deft_graph_num_values(a); i++) {
        const struct deft_value *x = deft_graph_value(a, i), *y = deft_graph_value(b, i);
        if (strcmp(x->name, y->name) || x->kind != y->kind || x->dtype != y->dtype ||
            !deft_shape_equal(&x->shape, &y->shape) || x->flags != y->flags ||
            x->producer != y->producer || x->slot != y->slot || x->grad_of != y->grad_of ||
            (x->kind == DEFT_VALUE_PARAM && (x->init != y->init || x->fan_in != y->fan_in ||
                                             x->fan_out != y->fan_out)))
            bad++, printf("value %d (%s) differs\n", i, x->name);
    }
    for (int i = 0; i < deft_graph_num_nodes(a); i++) {
        const struct deft_node *x = deft_graph_node(a, i), *y = deft_graph_node(b, i);
        if (x->op != y->op || strcmp(x->name, y->name) || x->n_in != y->n_in ||
            x->n_out != y->n_out || x->fwd != y->fwd ||
            memcmp(x->in, y->in, sizeof(int) * (size_t)x->n_in) ||
            memcmp(x->out, y->out, sizeof(int) * (size_t)x->n_out) ||
            x->attr.has_bias != y->attr.has_bias || !deft_shape_equal(&x->attr.shape, &y->attr.shape))
            bad++, printf("node %d (%s) differs\n", i, x->name);
    }
    CHECK(bad == 0, "%d values/nodes differ", bad);
}

static void test_round_trip(bool with_backward) {
    long live0 = deft_alloc_live();
    struct deft_graph *g = build_graph(with_backward);
    CHECK(g != NULL, "graph builds");
    if (!g) return;
    char *j1 = NULL, *j2 = NULL;
    struct deft_graph *g2 = NULL;
    CHECK_OK(deft_graph_to_json(g, &j1));
    CHECK_OK(deft_graph_from_json(j1, strlen(j1), &g2));
    if (g2) {
        CHECK_OK(deft_graph_to_json(g2, &j2));
        CHECK(j2 && !strcmp(j1, j2), "to_json(from_json(to_json(g))) is identical");
        same_graph(g, g2);
        const char *cls = deft_graph_get_meta(g2, "classes");
        CHECK(cls && strstr(cls, "\"dog\""), "meta survives: %s", cls ? cls : "(null)");
        CHECK(deft_graph_validate(g2) == DEFT_OK, "rebuilt graph validates");
        /* spot checks on attrs that only the JSON carries */
        const struct deft_node *d = deft_graph_node(g2, deft_graph_find_node(g2, "drop"));
        CHECK(d && d->attr.dropout.seed == 0xfedcba9876543210ull, "64-bit dropout seed exact");
        const struct deft_node *r = deft_graph_node(g2, deft_graph_find_node(g2, "relu1"));
        CHECK(r && r->attr.act.kind == DEFT_ACT_LEAKY_RELU && r->attr.act.alpha == 0.125f, "act attr");
        const struct deft_value *w = deft_graph_value(g2, deft_graph_find_value(g2, "conv1.weight"));
        CHECK(w && (w->flags & DEFT_VF_FROZEN), "frozen flag kept");
    }
    if (with_backward && g2) {
        int nb = 0;
        for (int i = 0; i < deft_graph_num_nodes(g2); i++) nb += deft_graph_node(g2, i)->fwd >= 0;
        CHECK(nb > 5, "backward nodes with fwd links survive (%d)", nb);
        int fc_w = deft_graph_find_value(g2, "fc.weight");
        CHECK(deft_grad_of(g2, fc_w) >= 0, "grad_of links survive");
    }
    deft_free(j1);
    deft_free(j2);
    deft_graph_free(g);
    deft_graph_free(g2);
    CHECK(deft_alloc_live() == live0, "no leak in round trip (%ld)", deft_alloc_live() - live0);
}

/* from_json must fail with a FORMAT error whose message contains `want`. */
static void expect_bad(const char *json, const char *want, const char *what) {
    long live0 = deft_alloc_live();
    struct deft_graph *g = (struct deft_graph *)(uintptr_t)1;
    enum deft_status s = deft_graph_from_json(json, strlen(json), &g);
    CHECK(s == DEFT_ERR_FORMAT, "%s: expected DEFT_ERR_FORMAT, got %s (%s)", what,
          deft_status_str(s), deft_last_error());
    CHECK(g == NULL, "%s: *out is NULL on failure", what);
    if (want)
        CHECK(strstr(deft_last_error(), want) != NULL, "%s: message '%s' lacks '%s'", what,
              deft_last_error(), want);
    deft_graph_free(g);
    CHECK(deft_alloc_live() == live0, "%s: leak", what);
}

/* A small valid document, then edits of it. */
#define HDR "{\"format\":\"deft-graph\",\"version\":1,"
#define V_X "{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0}"
#define V_W "{\"name\":\"fc.weight\",\"kind\":\"param\",\"dtype\":\"f32\",\"shape\":[3,4],\"flags\":0,\"init\":\"kaiming_uniform\",\"fan_in\":4,\"fan_out\":3}"
#define V_Y "{\"name\":\"fc\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,3],\"flags\":0}"
#define N_FC(op, ins, outs, attr) "{\"op\":\"" op "\",\"name\":\"fc\",\"inputs\":" ins ",\"outputs\":" outs ",\"attr\":" attr "}"
#define DOC(vals, nodes) HDR "\"values\":[" vals "],\"nodes\":[" nodes "],\"meta\":{}}"

static void test_small_valid(void) {
    const char *ok = DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"fc\"]", "{}"));
    struct deft_graph *g = NULL;
    CHECK_OK(deft_graph_from_json(ok, strlen(ok), &g));
    if (g) CHECK(deft_graph_num_nodes(g) == 1 && deft_graph_num_values(g) == 3, "small graph");
    deft_graph_free(g);
    /* outputs renamed by a pass keep their stored names */
    const char *ren = DOC(V_X "," V_W ",{\"name\":\"logits\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,3],\"flags\":2}",
                          N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"logits\"]", "{}"));
    g = NULL;
    CHECK_OK(deft_graph_from_json(ren, strlen(ren), &g));
    if (g) {
        int v = deft_graph_find_value(g, "logits");
        CHECK(v == 2 && (deft_graph_value(g, v)->flags & DEFT_VF_OUTPUT), "renamed output");
    }
    deft_graph_free(g);
}

static void test_hostile(void) {
    expect_bad("", "not valid JSON", "empty");
    expect_bad("{", "not valid JSON", "open brace");
    expect_bad("[1,2]", "deft-graph", "array");
    expect_bad("{\"format\":\"onnx\",\"version\":1}", "deft-graph", "wrong format");
    expect_bad(HDR "\"values\":[],\"nodes\":[]}" "x", "not valid JSON", "trailing junk");
    expect_bad("{\"format\":\"deft-graph\",\"version\":2,\"values\":[],\"nodes\":[]}", "version 2", "future version");
    expect_bad("{\"format\":\"deft-graph\",\"version\":\"1\",\"values\":[],\"nodes\":[]}", "version", "string version");
    expect_bad(HDR "\"values\":{},\"nodes\":[]}", "arrays", "values not array");
    expect_bad(HDR "\"values\":[],\"nodes\":[],\"extra\":1}", "unknown field", "unknown top key");
    expect_bad(DOC("1", ""), "value 0", "value not object");
    expect_bad(DOC("{\"name\":\"\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[1],\"flags\":0}", ""), "name", "empty name");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"weird\",\"dtype\":\"f32\",\"shape\":[1],\"flags\":0}", ""), "kind", "bad kind");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f31\",\"shape\":[1],\"flags\":0}", ""), "dtype", "bad dtype");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[-1],\"flags\":0}", ""), "shape", "negative dim");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[1.5],\"flags\":0}", ""), "shape", "fractional dim");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[1,1,1,1,1,1,1],\"flags\":0}", ""), "shape", "rank 7");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[1e300],\"flags\":0}", ""), "shape", "huge dim");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[1099511627776,1099511627776],\"flags\":0}", ""), "too large", "overflowing shape");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[1],\"flags\":0,\"init\":\"zeros\"}", ""), "init", "init on input");
    expect_bad(DOC("{\"name\":\"x\",\"kind\":\"input\",\"dtype\":\"f32\",\"shape\":[1],\"flags\":0,\"name\":\"y\"}", ""), "duplicate field", "duplicate field");
    expect_bad(DOC(V_X "," V_X, ""), "duplicate value name", "duplicate value");
    expect_bad(DOC(V_X "," V_W "," V_Y, ""), "no node produces", "orphan node value");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linearr", "[\"x\",\"fc.weight\"]", "[\"fc\"]", "{}")), "unknown op", "unknown op");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"nope\"]", "[\"fc\"]", "{}")), "input 1", "unknown input");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"fc\"]", "[\"fc\"]", "{}")), "input 1", "input defined later (self)");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",3]", "[\"fc\"]", "{}")), "input 1", "numeric input");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",null]", "[\"fc\"]", "{}")), "missing", "required input null");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]", "[\"fc\"]", "{}")), "at most", "9 inputs");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"fc.weight\"]", "[]", "{}")), "outputs", "no outputs");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"fc\",\"fc:1\"]", "{}")), "outputs", "too many outputs");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"x\"]", "{}")), "next node value", "output names an input");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"fc\"]", "{\"stride\":[1,1]}")), "unknown field", "attr for another op");
    expect_bad(DOC(V_X "," V_W "," V_Y, N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"fc\"]", "[]")), "attr", "attr not object");
    expect_bad(DOC(V_X "," V_W "," V_Y, "{\"op\":\"linear\",\"name\":\"fc\",\"inputs\":[\"x\",\"fc.weight\"],\"outputs\":[\"fc\"],\"attr\":{},\"fwd\":0}"), "fwd", "fwd to itself");
    expect_bad(DOC(V_X "," V_W "," V_Y, "{\"op\":\"linear\",\"name\":\"fc\",\"inputs\":[\"x\",\"fc.weight\"],\"outputs\":[\"fc\"],\"attr\":{},\"fwd\":-7}"), "fwd", "negative fwd");
    expect_bad(DOC(V_X "," V_W ",{\"name\":\"fc\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0}",
                   N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"fc\"]", "{}")), "infers", "stored shape differs");
    expect_bad(DOC(V_X "," V_Y "," V_W, N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"fc\"]", "{}")), "input 1", "value order broken");
    expect_bad(DOC(V_X ",{\"name\":\"fc.weight\",\"kind\":\"param\",\"dtype\":\"f32\",\"shape\":[3,5],\"flags\":0,\"init\":\"zeros\",\"fan_in\":4,\"fan_out\":3}," V_Y,
                   N_FC("linear", "[\"x\",\"fc.weight\"]", "[\"fc\"]", "{}")), "features", "shape inference rejects");
    expect_bad(DOC(V_X ",{\"name\":\"c\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0}",
                   "{\"op\":\"conv2d\",\"name\":\"c\",\"inputs\":[\"x\",\"x\"],\"outputs\":[\"c\"],\"attr\":{\"stride\":[1,1],\"pad\":[0,0,0,0],\"dilation\":[1,1],\"groups\":1,\"output_padding\":[1e30,0]}}"),
               "output_padding", "huge attr int");
    expect_bad(DOC(V_X ",{\"name\":\"c\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0}",
                   "{\"op\":\"conv2d\",\"name\":\"c\",\"inputs\":[\"x\",\"x\"],\"outputs\":[\"c\"],\"attr\":{\"stride\":[0,1],\"pad\":[0,0,0,0],\"dilation\":[1,1],\"groups\":1,\"output_padding\":[0,0]}}"),
               NULL, "conv on rank-2 input / zero stride");
    expect_bad(DOC(V_X ",{\"name\":\"d\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0},{\"name\":\"d:1\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":4}",
                   "{\"op\":\"dropout\",\"name\":\"d\",\"inputs\":[\"x\"],\"outputs\":[\"d\",\"d:1\"],\"attr\":{\"p\":0.5,\"training\":true,\"seed\":\"18446744073709551616\"}}"),
               "seed", "seed overflow");
    expect_bad(DOC(V_X ",{\"name\":\"a\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0}",
                   "{\"op\":\"act\",\"name\":\"a\",\"inputs\":[\"x\"],\"outputs\":[\"a\"],\"attr\":{\"kind\":\"gelu\",\"alpha\":0}}"),
               "kind", "unknown activation");
    expect_bad(DOC(V_X ",{\"name\":\"a\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0}",
                   "{\"op\":\"act\",\"name\":\"a\",\"inputs\":[\"x\"],\"outputs\":[\"a\"],\"attr\":{\"kind\":\"relu\",\"alpha\":null}}"),
               "alpha", "null float");
    expect_bad(DOC(V_X ",{\"name\":\"g\",\"kind\":\"node\",\"dtype\":\"f32\",\"shape\":[2,4],\"flags\":0,\"grad_of\":\"zz\"}",
                   "{\"op\":\"act\",\"name\":\"g\",\"inputs\":[\"x\"],\"outputs\":[\"g\"],\"attr\":{\"kind\":\"relu\",\"alpha\":0}}"),
               "grad_of", "grad_of unknown");
    expect_bad(HDR "\"values\":[],\"nodes\":[],\"meta\":[]}", "meta", "meta not object");
}

/* Random byte edits of a real document: any status, never a crash or leak. */
static void test_mutations(void) {
    struct deft_graph *g = build_graph(true);
    char *j = NULL;
    if (!g || deft_graph_to_json(g, &j)) {
        CHECK(0, "setup");
        deft_graph_free(g);
        return;
    }
    deft_graph_free(g);
    size_t n = strlen(j);
    char *m = malloc(n + 1);
    long live0 = deft_alloc_live();
    int ok = 0, err = 0;
    static const char sub[] = "{}[],:\"0123456789-e.ntfx\\";
    for (int it = 0; it < 2000; it++) {
        memcpy(m, j, n + 1);
        int edits = 1 + (int)(deft_rng_u64(7, (uint64_t)it, 0) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = deft_rng_u64(7, (uint64_t)it, (uint64_t)(2 * e + 1)) % n;
            uint64_t r = deft_rng_u64(7, (uint64_t)it, (uint64_t)(2 * e + 2));
            m[at] = (r & 1) ? sub[(r >> 1) % (sizeof sub - 1)] : (char)(r >> 8);
            if (!m[at]) m[at] = ' ';
        }
        struct deft_graph *h = NULL;
        size_t len = it % 7 == 0 ? deft_rng_u64(9, (uint64_t)it, 0) % n : n; /* truncations too */
        enum deft_status s = deft_graph_from_json(m, len, &h);
        if (s == DEFT_OK) {
            ok++;
            CHECK(deft_graph_validate(h) == DEFT_OK, "accepted mutant validates");
        } else {
            err++;
            CHECK(h == NULL && (s == DEFT_ERR_FORMAT || s == DEFT_ERR_NOMEM),
                  "mutant %d: status %s (%s)", it, deft_status_str(s), deft_last_error());
        }
        deft_graph_free(h);
    }
    CHECK(deft_alloc_live() == live0, "mutations leak %ld blocks", deft_alloc_live() - live0);
    printf("mutations: %d accepted, %d rejected\n", ok, err);
    free(m);
    deft_free(j);
}

/* Fail the k-th allocation for every k: clean status and no leak. */
static void test_alloc_failures(void) {
    struct deft_graph *g = build_graph(true);
    char *j = NULL;
    if (!g || deft_graph_to_json(g, &j)) {
        CHECK(0, "setup");
        deft_graph_free(g);
        return;
    }
    long live0 = deft_alloc_live();
    int fails = 0;
    for (long k = 1; k < 100000; k++) {
        struct deft_graph *h = NULL;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_graph_from_json(j, strlen(j), &h);
        deft_alloc_fail_after(0);
        deft_graph_free(h);
        if (s == DEFT_OK) break;
        fails++;
        if (s != DEFT_ERR_NOMEM && s != DEFT_ERR_FORMAT) CHECK(0, "k=%ld: status %s", k, deft_status_str(s));
    }
    CHECK(fails > 10, "fault loop exercised %d failures", fails);
    CHECK(deft_alloc_live() == live0, "fault loop leaks %ld blocks", deft_alloc_live() - live0);
    for (long k = 1; k < 100000; k++) {
        char *o = NULL;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_graph_to_json(g, &o);
        deft_alloc_fail_after(0);
        deft_free(o);
        if (s == DEFT_OK) break;
        CHECK(s == DEFT_ERR_NOMEM, "to_json under OOM: %s", deft_status_str(s));
    }
    CHECK(deft_alloc_live() == live0, "to_json fault loop leaks");
    deft_free(j);
    deft_graph_free(g);
}

int main(void) {
    test_round_trip(false);
    test_round_trip(true);
    test_small_valid();
    test_hostile();
    test_mutations();
    test_alloc_failures();
    return test_summary();
}

/* test_model_builders.c - every architecture against torchvision, computed at
 * test time: each state_dict key (less num_batches_tracked) exists in the deft
 * graph as PARAM (weights/biases) or STATE (running stats) with the same shape
 * and vice versa, parameter totals are equal, every Conv2d/Linear output shape
 * and the FLOPs (2 * MACs of convs and linears) agree. One python run serves
 * all architectures (tests/ref/model_manifest.py). resnet10 has no torchvision
 * peer: it is checked by hand-counted parameters and against resnet18's names.
 * Without torch the internal checks still run and the test reports SKIP. */
#include <string.h>
#include "deft_test.h"
#include "deft/models.h"

static struct deft_graph *build(const char *arch, int classes, int batch, bool training) {
    struct deft_graph *g = NULL;
    int in = -1, out = -1;
    struct deft_model_opts o = {.arch = arch, .num_classes = classes, .batch = batch,
                                .training = training, .seed = 1};
    enum deft_status s = deft_model_build(&o, &g, &in, &out);
    CHECK(s == DEFT_OK, "build %s/%d: %s", arch, classes, deft_last_error());
    return s == DEFT_OK ? g : NULL;
}

static bool shape_is(const struct deft_shape *s, int ndim, const int64_t *d) {
    if (s->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (s->d[i] != d[i]) return false;
    return true;
}

static int count_persistent(const struct deft_graph *g) {
    int n = 0;
    for (int i = 0; i < deft_graph_num_values(g); i++) {
        enum deft_value_kind k = deft_graph_value(g, i)->kind;
        n += k == DEFT_VALUE_PARAM || k == DEFT_VALUE_STATE;
    }
    return n;
}

/* ---- torchvision comparison ------------------------------------------- */

/* Split a line into at most `max` whitespace-separated tokens (in place). */
static int split(char *line, char **tok, int max) {
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r\n", &save); t && n < max; t = strtok_r(NULL, " \t\r\n", &save))
        tok[n++] = t;
    return n;
}

static int64_t num(const char *s) { return strtoll(s, NULL, 10); }

/* Parse "<ndim> d0 d1 ..." starting at tok[0]; returns ndim or -1. */
static int parse_dims(char **tok, int ntok, int64_t *d) {
    if (ntok < 1) return -1;
    int nd = (int)num(tok[0]);
    if (nd < 0 || nd > DEFT_MAX_DIMS || ntok < 1 + nd) return -1;
    for (int i = 0; i < nd; i++) d[i] = num(tok[1 + i]);
    return nd;
}

static void compare_with_torch(void) {
    const char *reqs[] = {"resnet18:1000:flops", "resnet34:1000:flops", "resnet50:1000:flops",
                          "resnet101:1000:flops", "resnet152:1000:flops",
                          "mobilenet_v2:1000:flops", "resnet18:10", "resnet34:10", "resnet50:10",
                          "resnet101:10", "resnet152:10", "mobilenet_v2:10"};
    char cmd[4096];
    size_t k = (size_t)snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/model_manifest.py'",
                                test_source_dir());
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0] && k < sizeof cmd; i++)
        k += (size_t)snprintf(cmd + k, sizeof cmd - k, " %s", reqs[i]);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen %s", cmd);
    if (!p) return;

    char *line = NULL, arch[64] = "";
    size_t cap = 0;
    struct deft_graph *g = NULL;
    int classes = 0, matched = 0, models = 0, outs = 0;
    bool bad_once = false;
    while (getline(&line, &cap, p) > 0) {
        char *tok[12];
        int nt = split(line, tok, 12);
        if (nt < 1) continue;
        int64_t d[DEFT_MAX_DIMS];
        if (strcmp(tok[0], "model") == 0 && nt == 3) {
            snprintf(arch, sizeof arch, "%s", tok[1]);
            classes = (int)num(tok[2]);
            g = build(arch, classes, 1, true);
            matched = 0;
            models++;
        } else if (!g) {
            continue; /* build failed: reported already */
        } else if ((strcmp(tok[0], "param") == 0 || strcmp(tok[0], "state") == 0) && nt >= 3) {
            int v = deft_graph_find_value(g, tok[1]);
            int nd = parse_dims(tok + 2, nt - 2, d);
            if (v < 0) {
                CHECK(false, "%s/%d: torchvision key '%s' missing in the deft graph", arch, classes,
                      tok[1]);
                continue;
            }
            const struct deft_value *val = deft_graph_value(g, v);
            enum deft_value_kind want = tok[0][0] == 'p' ? DEFT_VALUE_PARAM : DEFT_VALUE_STATE;
            char sh[96];
            bool ok = val->kind == want && shape_is(&val->shape, nd, d);
            if (!ok && !bad_once) deft_shape_str(&val->shape, sh, sizeof sh);
            CHECK(ok, "%s/%d: '%s' kind %d shape %s, torchvision %s ndim %d d0 %lld", arch, classes,
                  tok[1], (int)val->kind, bad_once ? "?" : sh, tok[0], nd, (long long)d[0]);
            bad_once |= !ok;
            matched += ok;
        } else if (strcmp(tok[0], "out") == 0 && nt >= 3) {
            int v = deft_graph_find_value(g, tok[1]); /* a node's output 0 carries its name */
            int nd = parse_dims(tok + 2, nt - 2, d);
            CHECK(v >= 0 && deft_graph_value(g, v)->kind == DEFT_VALUE_NODE &&
                      shape_is(&deft_graph_value(g, v)->shape, nd, d),
                  "%s: output shape of '%s' differs from torchvision", arch, tok[1]);
            outs++;
        } else if (strcmp(tok[0], "total") == 0 && nt == 2) {
            struct deft_graph_stats st;
            deft_graph_stats(g, &st);
            CHECK(st.params == num(tok[1]), "%s/%d: %lld params, torchvision %lld", arch, classes,
                  (long long)st.params, (long long)num(tok[1]));
        } else if (strcmp(tok[0], "flops") == 0 && nt == 2) {
            struct deft_graph_stats st;
            deft_graph_stats(g, &st);
            CHECK(st.flops == num(tok[1]), "%s: %lld FLOPs, torchvision %lld", arch,
                  (long long)st.flops, (long long)num(tok[1]));
            if (strcmp(arch, "resnet18") == 0) /* the published figure: 1.82 GMACs */
                CHECK(fabs((double)st.flops / 3.64e9 - 1) < 0.01, "resnet18 %.4g FLOPs, expected ~3.64e9",
                      (double)st.flops);
        } else if (strcmp(tok[0], "end") == 0) {
            /* vice versa: nothing in deft that torchvision lacks */
            CHECK(matched == count_persistent(g), "%s/%d: %d keys matched, deft has %d params+state",
                  arch, classes, matched, count_persistent(g));
            CHECK_OK(deft_graph_validate(g));
            deft_graph_free(g);
            g = NULL;
        }
    }
    free(line);
    deft_graph_free(g);
    int rc = pclose(p);
    CHECK(rc == 0, "model_manifest.py exited with %d", rc);
    CHECK(models == (int)(sizeof reqs / sizeof reqs[0]), "manifest had %d models", models);
    CHECK(outs > 300, "only %d conv/linear output shapes compared", outs);
}

/* ---- internal checks (no torch needed) -------------------------------- */

static void check_resnet10(void) {
    /* By hand: conv1 9408 + bn1 128; layer1 2*36864 + 2*128; layer2 73728 + 147456 + 512
     * + downsample 8192 + 256; layer3 294912 + 589824 + 1024 + 32768 + 512; layer4
     * 1179648 + 2359296 + 2048 + 131072 + 1024 = 4905792 in the backbone, + fc. */
    struct deft_graph *g = build("resnet10", 1000, 1, true);
    struct deft_graph *g10 = build("resnet10", 10, 1, true);
    struct deft_graph *r18 = build("resnet18", 1000, 1, true);
    if (!g || !g10 || !r18) goto done;
    struct deft_graph_stats st;
    deft_graph_stats(g, &st);
    CHECK(st.params == 4905792 + 512 * 1000 + 1000, "resnet10/1000: %lld params", (long long)st.params);
    deft_graph_stats(g10, &st);
    CHECK(st.params == 4905792 + 512 * 10 + 10, "resnet10/10: %lld params", (long long)st.params);
    /* Same blocks as resnet18 minus the second of each layer: every name exists there. */
    int n10 = 0;
    for (int i = 0; i < deft_graph_num_values(g); i++) {
        const struct deft_value *v = deft_graph_value(g, i);
        if (v->kind != DEFT_VALUE_PARAM && v->kind != DEFT_VALUE_STATE) continue;
        n10++;
        int j = deft_graph_find_value(r18, v->name);
        CHECK(j >= 0 && deft_graph_value(r18, j)->kind == v->kind &&
                  deft_shape_equal(&deft_graph_value(r18, j)->shape, &v->shape),
              "resnet10 '%s' not in resnet18 with the same shape", v->name);
        CHECK(strncmp(v->name, "layer", 5) != 0 || strncmp(v->name + 6, ".0.", 3) == 0,
              "resnet10 has a second block: %s", v->name);
    }
    CHECK(n10 == 1 + 4 + 4 * (2 + 2 * 4) + 3 * 5 + 2, "resnet10 has %d params+state", n10);
    CHECK(deft_graph_find_node(g, "layer4.0.downsample.0") >= 0, "resnet10 layer4 downsample");
    CHECK(deft_graph_find_node(g, "layer1.0.downsample.0") < 0, "resnet10 layer1 has no downsample");
    CHECK_OK(deft_graph_validate(g));
done:
    deft_graph_free(g);
    deft_graph_free(g10);
    deft_graph_free(r18);
}

static void check_io_meta_init(void) {
    struct deft_graph *g = NULL;
    int in = -1, out = -1;
    struct deft_model_opts o = {.arch = "ResNet18", .num_classes = 10, .batch = 4, .height = 160,
                                .width = 96};
    CHECK_OK(deft_model_build(&o, &g, &in, &out));
    if (!g) return;
    const struct deft_value *vi = deft_graph_value(g, in), *vo = deft_graph_value(g, out);
    CHECK(strcmp(vi->name, "input_1") == 0 && vi->kind == DEFT_VALUE_INPUT &&
              shape_is(&vi->shape, 4, (int64_t[]){4, 3, 160, 96}),
          "input value '%s'", vi->name);
    CHECK(strcmp(vo->name, "fc") == 0 && shape_is(&vo->shape, 2, (int64_t[]){4, 10}) &&
              (vo->flags & DEFT_VF_OUTPUT),
          "logits value '%s'", vo->name);
    const char *m = deft_graph_get_meta(g, "arch");
    CHECK(m && strcmp(m, "\"resnet18\"") == 0, "meta arch %s", m ? m : "(null)");
    m = deft_graph_get_meta(g, "num_classes");
    CHECK(m && strcmp(m, "10") == 0, "meta num_classes %s", m ? m : "(null)");
    m = deft_graph_get_meta(g, "input_shape");
    CHECK(m && strcmp(m, "[3,160,96]") == 0, "meta input_shape %s", m ? m : "(null)");
    /* inference graph: every BN in eval mode, no dropout */
    int bns = 0, evals = 0;
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (nd->op != DEFT_OP_BATCHNORM) continue;
        bns++;
        evals += nd->attr.bn.mode == DEFT_BN_EVAL;
    }
    CHECK(bns == 20 && evals == bns, "resnet18 inference: %d BN, %d eval", bns, evals);
    const struct deft_value *w = deft_graph_value(g, deft_graph_find_value(g, "conv1.weight"));
    CHECK(w->init == DEFT_INIT_KAIMING_NORMAL_FAN_OUT && w->fan_out == 64 * 49, "conv1 init %d fan_out %d",
          (int)w->init, w->fan_out);
    w = deft_graph_value(g, deft_graph_find_value(g, "fc.weight"));
    CHECK(w->init == DEFT_INIT_KAIMING_UNIFORM && w->fan_in == 512, "fc init %d", (int)w->init);
    w = deft_graph_value(g, deft_graph_find_value(g, "layer2.0.bn1.weight"));
    CHECK(w->init == DEFT_INIT_ONES, "bn weight init");
    const char *named[] = {"relu", "maxpool", "layer1.0.relu1", "layer1.0.add", "layer1.0.relu2",
                           "layer2.0.downsample.0", "layer2.0.downsample.1", "avgpool", "flatten"};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        CHECK(deft_graph_find_node(g, named[i]) >= 0, "node %s", named[i]);
    CHECK(deft_graph_find_node(g, "dropout") < 0, "resnet has no dropout by default");
    deft_graph_free(g);

    /* training resnet with freeze_bn and an explicit dropout */
    o = (struct deft_model_opts){.arch = "resnet50", .training = true, .bn_mode = DEFT_BN_FROZEN,
                                 .dropout = 0.5f, .seed = 7};
    CHECK_OK(deft_model_build(&o, &g, NULL, NULL));
    if (g) {
        int n = deft_graph_find_node(g, "layer3.5.bn3");
        CHECK(n >= 0 && deft_graph_node(g, n)->attr.bn.mode == DEFT_BN_FROZEN, "frozen BN");
        n = deft_graph_find_node(g, "dropout");
        CHECK(n >= 0 && deft_graph_node(g, n)->attr.dropout.p == 0.5f &&
                  deft_graph_node(g, n)->attr.dropout.training && deft_graph_node(g, n)->attr.dropout.seed == 7,
              "resnet50 dropout node");
        deft_graph_free(g);
    }

    /* mobilenet_v2: dropout 0.2 in training graphs only, N(0, 0.01) head, depthwise fan_out */
    o = (struct deft_model_opts){.arch = "mobilenet_v2", .num_classes = 5, .batch = 2, .training = true};
    CHECK_OK(deft_model_build(&o, &g, &in, &out));
    if (g) {
        int n = deft_graph_find_node(g, "classifier.0");
        CHECK(n >= 0 && deft_graph_node(g, n)->op == DEFT_OP_DROPOUT &&
                  deft_graph_node(g, n)->attr.dropout.p == 0.2f,
              "mobilenet_v2 classifier.0 dropout");
        CHECK(strcmp(deft_graph_value(g, out)->name, "classifier.1") == 0 &&
                  shape_is(&deft_graph_value(g, out)->shape, 2, (int64_t[]){2, 5}),
              "mobilenet_v2 logits");
        n = deft_graph_find_node(g, "features.0.1");
        CHECK(n >= 0 && deft_graph_node(g, n)->attr.bn.mode == DEFT_BN_TRAIN, "training BN");
        n = deft_graph_find_node(g, "features.17.conv.1.2");
        CHECK(n >= 0 && deft_graph_node(g, n)->op == DEFT_OP_ACT &&
                  deft_graph_node(g, n)->attr.act.kind == DEFT_ACT_RELU6,
              "relu6");
        CHECK(deft_graph_find_node(g, "features.3.add") >= 0 && deft_graph_find_node(g, "features.2.add") < 0,
              "residual adds where torchvision has them");
        w = deft_graph_value(g, deft_graph_find_value(g, "features.2.conv.1.0.weight"));
        CHECK(w->init == DEFT_INIT_KAIMING_NORMAL_FAN_OUT && w->fan_out == 96 * 9,
              "depthwise init %d fan_out %d (PyTorch: 864)", (int)w->init, w->fan_out);
        w = deft_graph_value(g, deft_graph_find_value(g, "classifier.1.weight"));
        CHECK(w->init == DEFT_INIT_NORMAL_001, "classifier weight init");
        w = deft_graph_value(g, deft_graph_find_value(g, "classifier.1.bias"));
        CHECK(w->init == DEFT_INIT_ZEROS, "classifier bias init");
        deft_graph_free(g);
    }
    o.training = false;
    CHECK_OK(deft_model_build(&o, &g, NULL, NULL));
    if (g) {
        CHECK(deft_graph_find_node(g, "classifier.0") < 0, "no dropout in inference graphs");
        deft_graph_free(g);
    }
    /* width multiplier (torchvision mobilenet_v2(width_mult=0.5): 16 stem channels, 1280 last) */
    o = (struct deft_model_opts){.arch = "mobilenet_v2", .width_mult = 0.5f};
    CHECK_OK(deft_model_build(&o, &g, NULL, NULL));
    if (g) {
        int v = deft_graph_find_value(g, "features.0.0.weight");
        CHECK(v >= 0 && shape_is(&deft_graph_value(g, v)->shape, 4, (int64_t[]){16, 3, 3, 3}), "wm 0.5 stem");
        v = deft_graph_find_value(g, "features.18.0.weight");
        CHECK(v >= 0 && shape_is(&deft_graph_value(g, v)->shape, 4, (int64_t[]){1280, 160, 1, 1}),
              "wm 0.5 last conv");
        deft_graph_free(g);
    }
    /* features_only: the last feature map is the output */
    const char *fo[][2] = {{"resnet18", "layer4.1.relu2"}, {"resnet50", "layer4.2.relu3"},
                           {"mobilenet_v2", "features.18.2"}};
    for (int i = 0; i < 3; i++) {
        o = (struct deft_model_opts){.arch = fo[i][0], .features_only = true};
        CHECK_OK(deft_model_build(&o, &g, NULL, &out));
        if (!g) continue;
        CHECK(strcmp(deft_graph_value(g, out)->name, fo[i][1]) == 0 &&
                  deft_graph_value(g, out)->shape.d[2] == 7 &&
                  (deft_graph_value(g, out)->flags & DEFT_VF_OUTPUT) &&
                  deft_graph_find_node(g, "avgpool") < 0,
              "%s features_only output %s", fo[i][0], deft_graph_value(g, out)->name);
        deft_graph_free(g);
    }
    /* small inputs still build (torchvision accepts them too) */
    o = (struct deft_model_opts){.arch = "resnet34", .height = 32, .width = 32};
    CHECK_OK(deft_model_build(&o, &g, NULL, &out));
    if (g) {
        int v = deft_graph_find_value(g, "layer4.2.relu2");
        CHECK(v >= 0 && shape_is(&deft_graph_value(g, v)->shape, 4, (int64_t[]){1, 512, 1, 1}),
              "resnet34 at 32x32");
        deft_graph_free(g);
    }
}

static void check_errors(void) {
    struct deft_graph *g = (struct deft_graph *)1;
    int in = 123;
    struct deft_model_opts o = {.arch = "resnt18"};
    enum deft_status s = deft_model_build(&o, &g, &in, NULL);
    const char *msg = deft_last_error();
    CHECK(s == DEFT_ERR_NOT_FOUND && g == NULL && in == 123, "unknown arch -> %s", deft_status_str(s));
    CHECK(strstr(msg, "unknown architecture 'resnt18' (known: resnet10, resnet18, resnet34") &&
              strstr(msg, "mobilenet_v2)") && strstr(msg, "did you mean 'resnet18'?"),
          "message: %s", msg);
    o.arch = "mobilenetv2";
    s = deft_model_build(&o, &g, NULL, NULL);
    CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "did you mean 'mobilenet_v2'?"),
          "message: %s", deft_last_error());
    o.arch = "vgg19_bn_xyz";
    s = deft_model_build(&o, &g, NULL, NULL);
    CHECK(s == DEFT_ERR_NOT_FOUND && !strstr(deft_last_error(), "did you mean"),
          "no suggestion for a far name: %s", deft_last_error());
    o.arch = NULL;
    CHECK(deft_model_build(&o, &g, NULL, NULL) == DEFT_ERR_INVALID_ARG, "NULL arch");
    o = (struct deft_model_opts){.arch = "resnet18", .height = -5};
    s = deft_model_build(&o, &g, NULL, NULL);
    CHECK(s == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "height"), "bad height: %s",
          deft_last_error());
    o = (struct deft_model_opts){.arch = "resnet18", .num_classes = -1};
    CHECK(deft_model_build(&o, &g, NULL, NULL) == DEFT_ERR_INVALID_ARG, "bad num_classes");
    o = (struct deft_model_opts){.arch = "mobilenet_v2", .dropout = 1.0f, .training = true};
    CHECK(deft_model_build(&o, &g, NULL, NULL) == DEFT_ERR_INVALID_ARG, "dropout 1");

    const char *const *names = deft_model_arch_names();
    int n = 0;
    for (; names[n]; n++) CHECK(deft_model_arch_known(names[n]), "%s known", names[n]);
    CHECK(n == 7 && !deft_model_arch_known("resnet19") && !deft_model_arch_known(NULL), "arch list");
}

/* A model graph survives the model file's JSON exactly (names, kinds, shapes,
 * initializers with the depthwise fan_out, flags, meta). */
static void check_json_roundtrip(void) {
    struct deft_model_opts o = {.arch = "mobilenet_v2", .num_classes = 7, .training = true};
    struct deft_graph *g = NULL, *h = NULL;
    char *js = NULL;
    CHECK_OK(deft_model_build(&o, &g, NULL, NULL));
    if (!g) return;
    CHECK_OK(deft_graph_to_json(g, &js));
    if (js) CHECK_OK(deft_graph_from_json(js, strlen(js), &h));
    if (h) {
        bool same = deft_graph_num_values(g) == deft_graph_num_values(h) &&
                    deft_graph_num_nodes(g) == deft_graph_num_nodes(h);
        for (int i = 0; same && i < deft_graph_num_values(g); i++) {
            const struct deft_value *a = deft_graph_value(g, i), *b = deft_graph_value(h, i);
            same = strcmp(a->name, b->name) == 0 && a->kind == b->kind && a->flags == b->flags &&
                   deft_shape_equal(&a->shape, &b->shape) && a->init == b->init &&
                   a->fan_in == b->fan_in && a->fan_out == b->fan_out;
        }
        const char *m = deft_graph_get_meta(h, "input_shape");
        CHECK(same && m && strcmp(m, "[3,224,224]") == 0, "mobilenet_v2 JSON round trip differs");
    }
    deft_free(js);
    deft_graph_free(g);
    deft_graph_free(h);
}

/* Every allocation failure during a build gives DEFT_ERR_NOMEM and leaks nothing. */
static void check_alloc_failures(void) {
    struct deft_model_opts o = {.arch = "resnet10", .training = true};
    long live = deft_alloc_live();
    long before = deft_alloc_count();
    struct deft_graph *g = NULL;
    CHECK_OK(deft_model_build(&o, &g, NULL, NULL));
    deft_graph_free(g);
    long total = deft_alloc_count() - before;
    int bad = 0;
    for (long k = 1; k <= total + 1; k++) {
        deft_alloc_fail_after(k);
        g = NULL;
        enum deft_status s = deft_model_build(&o, &g, NULL, NULL);
        deft_alloc_fail_after(0);
        if (s == DEFT_OK) deft_graph_free(g);
        if ((s != DEFT_OK && (s != DEFT_ERR_NOMEM || g)) || deft_alloc_live() != live) {
            if (!bad++)
                CHECK(false, "fail at allocation %ld: %s, %ld blocks leaked", k, deft_status_str(s),
                      deft_alloc_live() - live);
        }
    }
    CHECK(bad == 0 && total > 10, "%d of %ld allocation failures mishandled", bad, total);
}

int main(void) {
    long live = deft_alloc_live();
    check_resnet10();
    check_io_meta_init();
    check_errors();
    check_json_roundtrip();
    check_alloc_failures();
    CHECK(deft_alloc_live() == live, "%ld blocks leaked", deft_alloc_live() - live);
    if (!test_have_torch()) {
        if (test_failed) return test_summary();
        test_skip("python3 with torch/torchvision not found: torchvision comparison not run");
    }
    compare_with_torch();
    return test_summary();
}

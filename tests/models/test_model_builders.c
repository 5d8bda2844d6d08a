/* test_model_builders.c - every architecture against torchvision, computed at
 * test time: each state_dict key (less num_batches_tracked) exists in the deft
 * graph as PARAM (weights/biases) or STATE (running stats) with the same shape
 * and vice versa, parameter totals are equal, every Conv2d/Linear output shape
 * and the FLOPs (2 * MACs of convs and linears) agree. One python run serves
 * all architectures (tests/ref/model_manifest.py): resnet18..152, mobilenet_v2,
 * vgg16/19 (+_bn), efficientnet_b0..b3, googlenet, squeezenet1_0/1_1, at 1000
 * (with FLOPs and per-layer output shapes at 224x224) and 10 classes.
 * resnet10, mobilenet_v1, darknet19/53 and cspdarknet53 have no torchvision
 * peer: they are checked by hand-counted parameters against published totals
 * and by spot-checked names. Also: TAO arch names + n_layers, freeze blocks,
 * dropout/initializer/BN-eps details, features_only outputs, JSON round trips
 * and allocation failures. Without torch the internal checks still run and the
 * test reports SKIP. */
#include <stdlib.h>
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

static struct deft_graph *build_sized(const char *arch, int classes, int batch, int size,
                                      bool training) {
    struct deft_graph *g = NULL;
    struct deft_model_opts o = {.arch = arch, .num_classes = classes, .batch = batch,
                                .height = size, .width = size, .training = training, .seed = 1};
    enum deft_status s = deft_model_build(&o, &g, NULL, NULL);
    CHECK(s == DEFT_OK, "build %s/%d at %d: %s", arch, classes, size, deft_last_error());
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
                          "resnet101:10", "resnet152:10", "mobilenet_v2:10",
                          "vgg16:1000:flops", "vgg19:1000:flops", "vgg16_bn:1000:flops",
                          "vgg19_bn:1000:flops", "vgg16:10", "vgg19:10", "vgg16_bn:10", "vgg19_bn:10",
                          "efficientnet_b0:1000:flops", "efficientnet_b1:1000:flops",
                          "efficientnet_b2:1000:flops", "efficientnet_b3:1000:flops",
                          "efficientnet_b0:10", "efficientnet_b1:10", "efficientnet_b2:10",
                          "efficientnet_b3:10", "googlenet:1000:flops", "googlenet:10",
                          "squeezenet1_0:1000:flops", "squeezenet1_1:1000:flops", "squeezenet1_0:10",
                          "squeezenet1_1:10"};
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
        if (strcmp(tok[0], "model") == 0 && nt >= 3) {
            snprintf(arch, sizeof arch, "%s", tok[1]);
            classes = (int)num(tok[2]);
            /* the manifest's input size (efficientnet_b1..b3 default to 240..300 in deft) */
            int size = nt >= 4 ? (int)num(tok[3]) : 224;
            g = build_sized(arch, classes, 1, size, true);
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
    CHECK(outs > 1000, "only %d conv/linear output shapes compared", outs);
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

/* ---- architectures without a torchvision peer: hand counts ------------- */

static const struct deft_value *value(const struct deft_graph *g, const char *name) {
    int v = deft_graph_find_value(g, name);
    return v >= 0 ? deft_graph_value(g, v) : NULL;
}

static bool param_shape(const struct deft_graph *g, const char *name, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3) {
    const struct deft_value *v = value(g, name);
    return v && v->kind == DEFT_VALUE_PARAM && shape_is(&v->shape, 4, (int64_t[]){d0, d1, d2, d3});
}

static int64_t params_of(const char *arch, int classes) {
    struct deft_graph *g = build(arch, classes, 1, true);
    if (!g) return -1;
    struct deft_graph_stats st;
    deft_graph_stats(g, &st);
    deft_graph_free(g);
    return st.params;
}

/* conv (no bias) k x k from `in` to `out` + its BN (weight, bias) */
static int64_t cbn(int64_t in, int64_t out, int k) { return in * out * k * k + 2 * out; }

static void check_hand_counted(void) {
    /* mobilenet_v1: stem 3*32*9 + 64 = 928; block (in, out): depthwise 9*in + 2*in,
     * pointwise in*out + 2*out; 13 blocks 32-64-128-128-256-256-512x6-1024-1024 make the
     * features 3,206,976; classifier 1024*C + C. Keras' MobileNet (alpha 1) trains
     * 4,231,976 params at 1000 classes. */
    int64_t mb = 928;
    const int ch[14] = {32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
    for (int i = 0; i < 13; i++) mb += 11 * ch[i] + cbn(ch[i], ch[i + 1], 1);
    CHECK(mb == 3206976, "mobilenet_v1 features by hand: %lld", (long long)mb);
    CHECK(params_of("mobilenet_v1", 1000) == 4231976, "mobilenet_v1/1000 params");
    CHECK(params_of("mobilenet_v1", 10) == mb + 10250, "mobilenet_v1/10 params");

    /* darknet19 (YOLO9000 table 6): 3x3 and 1x1 convs with BN, classifier 1024*C + C:
     * 20,842,376 at 1000 classes (published: 20.8M). */
    const int dn[19][3] = {{3, 32, 3},     {32, 64, 3},     {64, 128, 3},    {128, 64, 1},
                           {64, 128, 3},   {128, 256, 3},   {256, 128, 1},   {128, 256, 3},
                           {256, 512, 3},  {512, 256, 1},   {256, 512, 3},   {512, 256, 1},
                           {256, 512, 3},  {512, 1024, 3},  {1024, 512, 1},  {512, 1024, 3},
                           {1024, 512, 1}, {512, 1024, 3},  {0, 0, 0}};
    int64_t d19 = 0;
    for (int i = 0; dn[i][0]; i++) d19 += cbn(dn[i][0], dn[i][1], dn[i][2]);
    CHECK(d19 + 1025000 == 20842376, "darknet19 by hand: %lld", (long long)d19 + 1025000);
    CHECK(params_of("darknet19", 1000) == 20842376, "darknet19/1000 params");
    CHECK(params_of("darknet19", 10) == d19 + 10250, "darknet19/10 params");

    /* darknet53: stem 3->32; stage c = 64,128,256,512,1024 with 1,2,8,8,4 residual blocks:
     * conv_down 3x3 c/2->c, block 1x1 c->c/2 + 3x3 c/2->c. 40,584,928 + 1,025,000 =
     * 41,609,928 at 1000 classes (timm's darknet53: 41.61M). */
    const int depth[5] = {1, 2, 8, 8, 4};
    int64_t d53 = cbn(3, 32, 3);
    for (int s = 0, c = 64; s < 5; s++, c *= 2)
        d53 += cbn(c / 2, c, 3) + depth[s] * (cbn(c, c / 2, 1) + cbn(c / 2, c, 3));
    CHECK(d53 == 40584928, "darknet53 backbone by hand: %lld", (long long)d53);
    CHECK(params_of("darknet53", 1000) == d53 + 1025000, "darknet53/1000 params");
    CHECK(params_of("DarkNet53", 10) == d53 + 10250, "darknet53/10 params");

    /* cspdarknet53 (timm / YOLOv4): stage c with e = 2c (stage 0) or c: conv_down 3x3 ->c,
     * conv_exp 1x1 c->e, blocks on e/2 channels (stage 0: 64->32->64; else c/2->c/2->c/2),
     * conv_transition_b 1x1 -> e/2, conv_transition 1x1 e->c. 26,617,184 + 1,025,000 =
     * 27,642,184 at 1000 classes (published: 27.6M; timm 27.64M). */
    int64_t csp = cbn(3, 32, 3);
    for (int s = 0, c = 64; s < 5; s++, c *= 2) {
        int e = s == 0 ? 2 * c : c, bo = s == 0 ? c : c / 2;
        csp += cbn(c / 2, c, 3) + cbn(c, e, 1) + depth[s] * (cbn(e / 2, c / 2, 1) + cbn(c / 2, bo, 3)) +
               cbn(bo, e / 2, 1) + cbn(e, c, 1);
    }
    CHECK(csp == 26617184, "cspdarknet53 backbone by hand: %lld", (long long)csp);
    CHECK(params_of("cspdarknet53", 1000) == csp + 1025000, "cspdarknet53/1000 params");
    CHECK(params_of("cspdarknet53", 10) == csp + 10250, "cspdarknet53/10 params");

    /* names and shapes (timm's keys for the darknets) */
    struct deft_graph *g = build("mobilenet_v1", 1000, 1, true);
    if (g) {
        CHECK(param_shape(g, "features.0.0.weight", 32, 3, 3, 3) &&
                  param_shape(g, "features.1.0.0.weight", 32, 1, 3, 3) &&
                  param_shape(g, "features.1.1.0.weight", 64, 32, 1, 1) &&
                  param_shape(g, "features.12.0.0.weight", 512, 1, 3, 3) &&
                  param_shape(g, "features.13.1.0.weight", 1024, 1024, 1, 1) &&
                  value(g, "features.13.1.1.running_var") && value(g, "classifier.1.bias"),
              "mobilenet_v1 names");
        int n = deft_graph_find_node(g, "features.12.0.0");
        CHECK(n >= 0 && deft_graph_node(g, n)->attr.conv.stride[0] == 2 &&
                  deft_graph_node(g, n)->attr.conv.groups == 512,
              "mobilenet_v1 block 12 depthwise stride 2");
        n = deft_graph_find_node(g, "features.5.1.2");
        CHECK(n >= 0 && deft_graph_node(g, n)->attr.act.kind == DEFT_ACT_RELU6, "mobilenet_v1 relu6");
        CHECK(value(g, "features.2.0.0.weight")->fan_out == 64 * 9, "depthwise fan_out");
        CHECK(count_persistent(g) == 27 * 5 + 2, /* 27 convs + BNs, classifier */ "mobilenet_v1 has %d params+state",
              count_persistent(g));
        CHECK_OK(deft_graph_validate(g));
        deft_graph_free(g);
    }
    g = build("darknet53", 1000, 1, true);
    if (g) {
        CHECK(param_shape(g, "stem.conv1.conv.weight", 32, 3, 3, 3) &&
                  param_shape(g, "stages.0.conv_down.conv.weight", 64, 32, 3, 3) &&
                  param_shape(g, "stages.0.blocks.0.conv1.conv.weight", 32, 64, 1, 1) &&
                  param_shape(g, "stages.4.blocks.3.conv2.conv.weight", 1024, 512, 3, 3) &&
                  value(g, "stages.2.blocks.7.conv2.bn.running_mean") && value(g, "head.fc.weight"),
              "darknet53 names (timm's)");
        int n = deft_graph_find_node(g, "stages.3.blocks.5.conv1.act");
        CHECK(n >= 0 && deft_graph_node(g, n)->attr.act.kind == DEFT_ACT_LEAKY_RELU &&
                  deft_graph_node(g, n)->attr.act.alpha == 0.1f,
              "darknet leaky 0.1");
        CHECK(deft_graph_find_node(g, "stages.4.blocks.3.add") >= 0, "darknet53 residual add");
        deft_graph_free(g);
    }
    g = build("cspdarknet53", 1000, 1, true);
    if (g) {
        CHECK(param_shape(g, "stages.0.conv_exp.conv.weight", 128, 64, 1, 1) &&
                  param_shape(g, "stages.0.blocks.0.conv1.conv.weight", 32, 64, 1, 1) &&
                  param_shape(g, "stages.0.blocks.0.conv2.conv.weight", 64, 32, 3, 3) &&
                  param_shape(g, "stages.0.conv_transition_b.conv.weight", 64, 64, 1, 1) &&
                  param_shape(g, "stages.0.conv_transition.conv.weight", 64, 128, 1, 1) &&
                  param_shape(g, "stages.1.conv_exp.conv.weight", 128, 128, 1, 1) &&
                  param_shape(g, "stages.1.blocks.1.conv1.conv.weight", 64, 64, 1, 1) &&
                  param_shape(g, "stages.1.blocks.1.conv2.conv.weight", 64, 64, 3, 3) &&
                  param_shape(g, "stages.4.conv_transition.conv.weight", 1024, 1024, 1, 1),
              "cspdarknet53 names (timm's)");
        const struct deft_value *v = value(g, "stages.2.cat");
        CHECK(v && shape_is(&v->shape, 4, (int64_t[]){1, 256, 28, 28}), "cspdarknet53 stage 2 concat");
        CHECK_OK(deft_graph_validate(g));
        deft_graph_free(g);
    }
    g = build("darknet19", 1000, 1, true);
    if (g) {
        CHECK(param_shape(g, "stem.conv1.conv.weight", 32, 3, 3, 3) &&
                  param_shape(g, "stages.1.blocks.1.conv.weight", 64, 128, 1, 1) &&
                  param_shape(g, "stages.4.blocks.4.conv.weight", 1024, 512, 3, 3),
              "darknet19 names");
        const struct deft_value *v = value(g, "stages.4.blocks.4.act");
        CHECK(v && shape_is(&v->shape, 4, (int64_t[]){1, 1024, 7, 7}), "darknet19 stride 32");
        deft_graph_free(g);
    }
}

/* ---- TAO names, defaults, heads and initializers of the new families ---- */

static void check_tao_names(void) {
    const char *cases[][3] = {{"resnet", "18", "resnet18"},   {"ResNet", "10", "resnet10"},
                              {"resnet", "101", "resnet101"}, {"vgg", "16", "vgg16"},
                              {"vgg", "19", "vgg19"},         {"darknet", "19", "darknet19"},
                              {"darknet", "53", "darknet53"}, {"cspdarknet", "53", "cspdarknet53"},
                              {"squeezenet", "0", "squeezenet1_0"}, {"mobilenet_v1", "0", "mobilenet_v1"},
                              {"mobilenet_v2", "0", "mobilenet_v2"}, {"googlenet", "0", "googlenet"},
                              {"efficientnet_b0", "0", "efficientnet_b0"},
                              {"resnet18", "18", "resnet18"}, {"googlenet", "22", "googlenet"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = NULL;
        enum deft_status s = deft_model_resolve_arch(cases[i][0], atoi(cases[i][1]), &name);
        CHECK(s == DEFT_OK && name && strcmp(name, cases[i][2]) == 0, "%s + %s -> %s (%s)",
              cases[i][0], cases[i][1], name ? name : "NULL", s ? deft_last_error() : "");
    }
    const char *name = "x";
    enum deft_status s = deft_model_resolve_arch("resnet", 0, &name);
    CHECK(s == DEFT_ERR_INVALID_ARG && !name && strstr(deft_last_error(), "needs n_layers (one of 10, 18, 34, 50, 101, 152)"),
          "resnet without n_layers: %s", deft_last_error());
    s = deft_model_resolve_arch("resnet", 20, &name);
    CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "no 20-layer variant"), "resnet 20: %s",
          deft_last_error());
    s = deft_model_resolve_arch("resnet18", 50, &name);
    CHECK(s == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "contradicts"), "resnet18 + 50: %s",
          deft_last_error());
    s = deft_model_resolve_arch("vgg", 11, &name);
    CHECK(s == DEFT_ERR_NOT_FOUND, "vgg 11");
    s = deft_model_resolve_arch("restnet", 18, &name);
    CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "did you mean"), "typo: %s", deft_last_error());

    struct deft_graph *g = NULL;
    int in = -1, out = -1;
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = "resnet", .n_layers = 34}, &g, &in, &out));
    if (g) {
        const char *m = deft_graph_get_meta(g, "arch");
        CHECK(m && strcmp(m, "\"resnet34\"") == 0 && deft_graph_find_value(g, "layer3.5.conv2.weight") >= 0,
              "resnet + 34 builds resnet34 (%s)", m ? m : "");
        deft_graph_free(g);
    }
    /* efficientnet_b1..b3 default to their own resolution */
    const char *eff[][2] = {{"efficientnet_b0", "224"}, {"efficientnet_b1", "240"},
                            {"efficientnet_b2", "260"}, {"efficientnet_b3", "300"}};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = eff[i][0]}, &g, &in, NULL));
        if (!g) continue;
        int sz = atoi(eff[i][1]);
        char want[32];
        snprintf(want, sizeof want, "[3,%d,%d]", sz, sz);
        const char *m = deft_graph_get_meta(g, "input_shape");
        CHECK(shape_is(&deft_graph_value(g, in)->shape, 4, (int64_t[]){1, 3, sz, sz}) && m &&
                  strcmp(m, want) == 0,
              "%s input %s", eff[i][0], m ? m : "");
        deft_graph_free(g);
    }
}

static const struct deft_node *node(const struct deft_graph *g, const char *name) {
    int n = deft_graph_find_node(g, name);
    return n >= 0 ? deft_graph_node(g, n) : NULL;
}

static void check_heads_and_init(void) {
    struct deft_graph *g;
    int out;
    /* dropout defaults in training graphs; none in inference graphs */
    const char *drops[][3] = {{"vgg16", "classifier.2", "0.5"},      {"vgg19_bn", "classifier.5", "0.5"},
                              {"efficientnet_b0", "classifier.0", "0.2"},
                              {"efficientnet_b3", "classifier.0", "0.3"},
                              {"googlenet", "dropout", "0.2"},         {"squeezenet1_1", "classifier.0", "0.5"},
                              {"mobilenet_v1", "classifier.0", "0.2"}};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        struct deft_model_opts o = {.arch = drops[i][0], .training = true, .height = 64, .width = 64};
        CHECK_OK(deft_model_build(&o, &g, NULL, &out));
        if (!g) continue;
        const struct deft_node *nd = node(g, drops[i][1]);
        CHECK(nd && nd->op == DEFT_OP_DROPOUT && fabs(nd->attr.dropout.p - atof(drops[i][2])) < 1e-6,
              "%s dropout %s", drops[i][0], drops[i][1]);
        deft_graph_free(g);
        o.training = false;
        CHECK_OK(deft_model_build(&o, &g, NULL, &out));
        if (!g) continue;
        CHECK(!node(g, drops[i][1]), "%s: no dropout in inference", drops[i][0]);
        deft_graph_free(g);
    }
    CHECK_OK(deft_model_build(&(struct deft_model_opts){.arch = "darknet53", .training = true}, &g, NULL, NULL));
    if (g) {
        CHECK(!node(g, "head.drop"), "darknet: no dropout by default");
        deft_graph_free(g);
    }

    g = build("squeezenet1_0", 10, 2, true);
    if (g) {
        const struct deft_value *w = value(g, "features.0.weight");
        /* kaiming_uniform_(a=0): bound sqrt(6 / 147) = sqrt(6 / (146 + 1)) */
        CHECK(w && w->init == DEFT_INIT_XAVIER_UNIFORM && w->fan_in + w->fan_out == 3 * 49,
              "squeezenet conv init");
        w = value(g, "features.3.expand3x3.weight");
        CHECK(w && w->init == DEFT_INIT_XAVIER_UNIFORM && w->fan_in + w->fan_out == 16 * 9, "fire init");
        CHECK(value(g, "features.3.expand3x3.bias")->init == DEFT_INIT_ZEROS, "squeezenet bias init");
        CHECK(value(g, "classifier.1.weight")->init == DEFT_INIT_NORMAL_001, "squeezenet final conv init");
        const struct deft_node *nd = node(g, "features.2");
        CHECK(nd && nd->op == DEFT_OP_POOL && nd->attr.pool.ceil_mode, "squeezenet ceil-mode pool");
        const struct deft_value *v = value(g, "flatten");
        CHECK(v && (v->flags & DEFT_VF_OUTPUT) && shape_is(&v->shape, 2, (int64_t[]){2, 10}),
              "squeezenet logits");
        CHECK(node(g, "features.12.cat") && node(g, "classifier.2") && node(g, "classifier.3"),
              "squeezenet node names");
        deft_graph_free(g);
    }
    g = build("googlenet", 10, 1, true);
    if (g) {
        const struct deft_node *nd = node(g, "inception4e.branch2.1.bn");
        CHECK(nd && nd->attr.bn.eps == 1e-3f, "googlenet BN eps 1e-3");
        CHECK(value(g, "conv1.conv.weight")->init == DEFT_INIT_NORMAL_001 &&
                  value(g, "fc.weight")->init == DEFT_INIT_NORMAL_001 &&
                  value(g, "fc.bias")->init == DEFT_INIT_UNIFORM_FAN_IN,
              "googlenet init");
        nd = node(g, "inception3a.cat");
        CHECK(nd && nd->op == DEFT_OP_CONCAT && nd->n_in == 4 &&
                  shape_is(&deft_graph_value(g, nd->out[0])->shape, 4, (int64_t[]){1, 256, 28, 28}),
              "googlenet inception3a concat");
        deft_graph_free(g);
    }
    g = build("efficientnet_b0", 10, 1, true);
    if (g) {
        const struct deft_value *w = value(g, "classifier.1.weight");
        CHECK(w && w->init == DEFT_INIT_UNIFORM_FAN_IN && w->fan_in == 10 &&
                  value(g, "classifier.1.bias")->init == DEFT_INIT_ZEROS,
              "efficientnet classifier init U(+-1/sqrt(out))");
        CHECK(value(g, "features.2.0.block.2.fc1.bias")->init == DEFT_INIT_ZEROS &&
                  value(g, "features.2.0.block.2.fc2.weight")->init == DEFT_INIT_KAIMING_NORMAL_FAN_OUT,
              "squeeze-excitation init");
        const struct deft_node *nd = node(g, "features.2.0.block.2.mul");
        CHECK(nd && nd->op == DEFT_OP_MUL, "squeeze-excitation mul");
        nd = node(g, "features.2.0.block.2.scale_activation");
        CHECK(nd && nd->attr.act.kind == DEFT_ACT_SIGMOID, "sigmoid gate");
        nd = node(g, "features.0.2");
        CHECK(nd && nd->attr.act.kind == DEFT_ACT_SWISH, "silu");
        CHECK(node(g, "features.2.1.add") && !node(g, "features.2.0.add") && !node(g, "features.1.0.add"),
              "efficientnet residual adds where torchvision has them");
        deft_graph_free(g);
    }
    g = build("vgg16", 1000, 1, true);
    if (g) {
        CHECK(value(g, "features.28.bias")->init == DEFT_INIT_ZEROS &&
                  value(g, "features.28.weight")->init == DEFT_INIT_KAIMING_NORMAL_FAN_OUT &&
                  value(g, "classifier.3.weight")->init == DEFT_INIT_NORMAL_001,
              "vgg init");
        CHECK(!node(g, "avgpool"), "vgg at 224: the adaptive pool to 7x7 is the identity");
        deft_graph_free(g);
    }
    /* vgg at other sizes: torchvision's AdaptiveAvgPool2d(7x7) */
    const int sizes[][2] = {{448, 1}, {64, 2}, {32, 2}}; /* 1: one avg pool, 2: exact bins */
    for (int i = 0; i < 3; i++) {
        struct deft_model_opts o = {.arch = "vgg16", .height = sizes[i][0], .width = sizes[i][0]};
        CHECK_OK(deft_model_build(&o, &g, NULL, &out));
        if (!g) continue;
        const struct deft_value *v = value(g, "avgpool");
        CHECK(v && shape_is(&v->shape, 4, (int64_t[]){1, 512, 7, 7}) &&
                  (sizes[i][1] == 1) == (deft_graph_value(g, deft_graph_find_value(g, "avgpool"))->producer >= 0 &&
                                         node(g, "avgpool")->op == DEFT_OP_POOL),
              "vgg16 at %d: avgpool", sizes[i][0]);
        CHECK(shape_is(&deft_graph_value(g, out)->shape, 2, (int64_t[]){1, 1000}), "vgg16 at %d logits",
              sizes[i][0]);
        deft_graph_free(g);
    }

    /* features_only */
    const char *fo[][3] = {{"vgg16", "features.30", "7"},          {"vgg19_bn", "features.52", "7"},
                           {"mobilenet_v1", "features.13.1.2", "7"}, {"efficientnet_b0", "features.8.2", "7"},
                           {"googlenet", "inception5b.cat", "7"},   {"squeezenet1_0", "features.12.cat", "13"},
                           {"squeezenet1_1", "features.12.cat", "13"}, {"darknet19", "stages.4.blocks.4.act", "7"},
                           {"darknet53", "stages.4.blocks.3.add", "7"},
                           {"cspdarknet53", "stages.4.conv_transition.act", "7"}};
    for (size_t i = 0; i < sizeof fo / sizeof fo[0]; i++) {
        struct deft_model_opts o = {.arch = fo[i][0], .features_only = true, .height = 224, .width = 224};
        CHECK_OK(deft_model_build(&o, &g, NULL, &out));
        if (!g) continue;
        const struct deft_value *v = deft_graph_value(g, out);
        CHECK(strcmp(v->name, fo[i][1]) == 0 && v->shape.d[2] == atoi(fo[i][2]) && (v->flags & DEFT_VF_OUTPUT) &&
                  deft_graph_num_nodes(g) == deft_graph_find_node(g, fo[i][1]) + 1,
              "%s features_only output %s", fo[i][0], v->name);
        deft_graph_free(g);
    }
}

/* ---- freeze blocks ----------------------------------------------------- */

static bool frozen(const struct deft_graph *g, const char *name) {
    const struct deft_value *v = value(g, name);
    return v && (v->flags & DEFT_VF_FROZEN);
}

static int count_frozen(const struct deft_graph *g) {
    int n = 0;
    for (int i = 0; i < deft_graph_num_values(g); i++) {
        const struct deft_value *v = deft_graph_value(g, i);
        n += v->kind == DEFT_VALUE_PARAM && (v->flags & DEFT_VF_FROZEN);
    }
    return n;
}

static void check_freeze_blocks(void) {
    struct deft_graph *g = build("resnet18", 10, 1, true);
    if (g) {
        int n = deft_model_freeze_blocks(g, "resnet18", (int[]){0, 1}, 2);
        CHECK(n == 15, "resnet18 blocks 0,1 froze %d params (conv1, bn1 x2, layer1 12)", n);
        CHECK(frozen(g, "conv1.weight") && frozen(g, "bn1.bias") && frozen(g, "layer1.1.bn2.weight") &&
                  !frozen(g, "layer2.0.conv1.weight") && !frozen(g, "fc.weight"),
              "resnet18 frozen set");
        struct deft_graph_stats st;
        deft_graph_stats(g, &st);
        CHECK(st.params - st.trainable_params == 9408 + 128 + 2 * (2 * 36864 + 256), "frozen numel %lld",
              (long long)(st.params - st.trainable_params));
        /* again, with the arch from the graph's metadata and a duplicate: nothing new */
        n = deft_model_freeze_blocks(g, NULL, (int[]){1, 1, 0}, 3);
        CHECK(n == 0, "refreezing froze %d", n);
        n = deft_model_freeze_blocks(g, NULL, (int[]){4}, 1);
        CHECK(n == 2 * 6 + 3 && frozen(g, "layer4.0.downsample.1.weight"), "resnet18 block 4: %d", n);
        /* out of range: error, graph unchanged */
        int before = count_frozen(g);
        n = deft_model_freeze_blocks(g, NULL, (int[]){2, 5}, 2);
        CHECK(n == -1 && strstr(deft_last_error(), "freeze block 5 out of range (0..4)") &&
                  count_frozen(g) == before && !frozen(g, "layer2.0.conv1.weight"),
              "block 5: %s", deft_last_error());
        CHECK(deft_model_freeze_blocks(g, "resnt18", (int[]){0}, 1) == -1, "unknown arch");
        deft_graph_free(g);
    }
    char buf[256];
    struct { const char *arch; int block, count; const char *prefixes; } pre[] = {
        {"resnet50", 0, 2, "conv1.,bn1."},
        {"resnet50", 3, 1, "layer3."},
        {"vgg16", 0, 0, ""},
        {"vgg16", 1, 2, "features.0.,features.2."},
        {"vgg16", 5, 3, "features.24.,features.26.,features.28."},
        {"vgg19", 5, 4, "features.28.,features.30.,features.32.,features.34."},
        {"vgg16_bn", 1, 4, "features.0.,features.1.,features.3.,features.4."},
        {"squeezenet1_0", 4, 1, "features.7."},
        {"squeezenet1_1", 3, 1, "features.6."},
        {"squeezenet", 8, 1, "features.12."},
        {"googlenet", 0, 3, "conv1.,conv2.,conv3."},
        {"googlenet", 9, 1, "inception5b."},
        {"mobilenet_v1", 13, 1, "features.13."},
        {"mobilenet_v2", 18, 1, "features.18."},
        {"efficientnet_b2", 7, 1, "features.7."},
        {"darknet19", 0, 1, "stem."},
        {"cspdarknet53", 5, 1, "stages.4."},
    };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        int n = deft_model_block_prefixes(pre[i].arch, pre[i].block, buf, sizeof buf);
        CHECK(n == pre[i].count && strcmp(buf, pre[i].prefixes) == 0, "%s block %d: %d '%s'", pre[i].arch,
              pre[i].block, n, buf);
    }
    CHECK(deft_model_block_prefixes("vgg16", 6, buf, sizeof buf) == -1 &&
              deft_model_block_prefixes("darknet53", -1, NULL, 0) == -1,
          "block out of range");
    struct { const char *arch; int n; } nb[] = {{"resnet10", 5}, {"vgg19_bn", 6}, {"mobilenet_v1", 14},
                                                {"mobilenet_v2", 19}, {"efficientnet_b0", 9}, {"googlenet", 10},
                                                {"squeezenet1_1", 9}, {"darknet19", 6}, {"cspdarknet53", 6},
                                                {"nope", -1}};
    for (size_t i = 0; i < sizeof nb / sizeof nb[0]; i++)
        CHECK(deft_model_num_blocks(nb[i].arch) == nb[i].n, "%s has %d blocks", nb[i].arch,
              deft_model_num_blocks(nb[i].arch));

    /* Every architecture: freezing all blocks leaves exactly the classifier trainable,
     * and every block but vgg's 0 freezes something. */
    const char *const *names = deft_model_arch_names();
    for (int a = 0; names[a]; a++) {
        g = build_sized(names[a], 10, 1, 64, true);
        if (!g) continue;
        int nblocks = deft_model_num_blocks(names[a]), total = 0;
        for (int b = 0; b < nblocks; b++) {
            int n = deft_model_freeze_blocks(g, NULL, &b, 1);
            CHECK(n > 0 || (b == 0 && strncmp(names[a], "vgg", 3) == 0), "%s block %d froze %d", names[a], b, n);
            total += n > 0 ? n : 0;
        }
        int open = 0, head = 0;
        for (int i = 0; i < deft_graph_num_values(g); i++) {
            const struct deft_value *v = deft_graph_value(g, i);
            if (v->kind != DEFT_VALUE_PARAM || (v->flags & DEFT_VF_FROZEN)) continue;
            open++;
            head += strncmp(v->name, "fc.", 3) == 0 || strncmp(v->name, "classifier.", 11) == 0 ||
                    strncmp(v->name, "head.", 5) == 0;
        }
        CHECK(open == head && head >= 2 && total == count_frozen(g),
              "%s: after freezing every block %d params stay trainable, %d of them the head", names[a], open,
              head);
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
              strstr(msg, "mobilenet_v2, vgg16") && strstr(msg, "cspdarknet53, cspdarknet_tiny)") &&
              strstr(msg, "did you mean 'resnet18'?"),
          "message: %s", msg);
    o.arch = "mobilenetv2";
    s = deft_model_build(&o, &g, NULL, NULL);
    CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "did you mean 'mobilenet_v2'?"),
          "message: %s", deft_last_error());
    o.arch = "swin_transformer";
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
    CHECK(n == 23 && !deft_model_arch_known("resnet19") && !deft_model_arch_known(NULL), "arch list");
    CHECK(deft_model_arch_known("SqueezeNet") && !deft_model_arch_known("resnet"), "aliases");
}

/* A model graph survives the model file's JSON exactly (names, kinds, shapes,
 * initializers with the depthwise fan_out, flags, meta). */
static void check_json_roundtrip_of(const char *arch) {
    struct deft_model_opts o = {.arch = arch, .num_classes = 7, .training = true};
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
        for (int i = 0; same && i < deft_graph_num_nodes(g); i++) {
            const struct deft_node *a = deft_graph_node(g, i), *b = deft_graph_node(h, i);
            same = a->op == b->op && strcmp(a->name, b->name) == 0 && a->n_in == b->n_in &&
                   (a->op != DEFT_OP_BATCHNORM || a->attr.bn.eps == b->attr.bn.eps);
        }
        const char *m = deft_graph_get_meta(h, "input_shape");
        CHECK(same && m && strcmp(m, "[3,224,224]") == 0, "%s JSON round trip differs", arch);
    }
    deft_free(js);
    deft_graph_free(g);
    deft_graph_free(h);
}

static void check_json_roundtrip(void) {
    /* initializers with adjusted fans (squeezenet, efficientnet's classifier), BN eps
     * 1e-3 (googlenet), slices and concats (cspdarknet53) */
    const char *archs[] = {"mobilenet_v2", "squeezenet1_0", "efficientnet_b0", "googlenet",
                           "cspdarknet53"};
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) check_json_roundtrip_of(archs[i]);
}

/* Every allocation failure during a build gives DEFT_ERR_NOMEM and leaks nothing
 * (resnet10; squeezenet1_1 for concats; vgg16 at 64x64 for the slices and concats
 * of the exact adaptive average pool). */
static void check_alloc_failures_of(const char *arch, int size) {
    struct deft_model_opts o = {.arch = arch, .training = true, .height = size, .width = size};
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
                CHECK(false, "%s: fail at allocation %ld: %s, %ld blocks leaked", arch, k,
                      deft_status_str(s), deft_alloc_live() - live);
        }
    }
    CHECK(bad == 0 && total > 10, "%s: %d of %ld allocation failures mishandled", arch, bad, total);
}

static void check_alloc_failures(void) {
    check_alloc_failures_of("resnet10", 224);
    check_alloc_failures_of("squeezenet1_1", 224);
    check_alloc_failures_of("vgg16", 64);
}

int main(void) {
    long live = deft_alloc_live();
    check_resnet10();
    check_io_meta_init();
    check_errors();
    check_json_roundtrip();
    check_hand_counted();
    check_tao_names();
    check_heads_and_init();
    check_freeze_blocks();
    check_alloc_failures();
    CHECK(deft_alloc_live() == live, "%ld blocks leaked", deft_alloc_live() - live);
    if (!test_have_torch()) {
        if (test_failed) return test_summary();
        test_skip("python3 with torch/torchvision not found: torchvision comparison not run");
    }
    compare_with_torch();
    return test_summary();
}

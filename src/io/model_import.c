/* model_import.c - io module: foreign weights (PyTorch .pth, Keras .h5,
 * bare safetensors, ONNX initializers) put into one of deft's architectures,
 * giving a model as deft_model_load gives one: the graph with its class
 * names and preprocessing recorded, and one f32 tensor per weight.
 * `deft model import` saves it; inference and evaluate run it directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "deft/data.h"
#include "deft/models.h"
#include "deft/runtime.h"
#include "io_impl.h"

static bool is_weight(const struct deft_value *v) {
    return v->kind == DEFT_VALUE_PARAM || v->kind == DEFT_VALUE_STATE;
}

/* Build arch's graph at 1 and 2 classes (shapes only), find a weight whose
 * shape follows the class count and read that dimension from the file's
 * tensor of the same name. */
int deft_weights_num_classes(const char *arch, const struct deft_safetensors *st) {
    struct deft_graph *g1 = NULL, *g2 = NULL;
    int n = 0;
    if (deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 1}, &g1, NULL, NULL) ||
        deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 2}, &g2, NULL, NULL))
        goto done;
    for (int v = 0; v < deft_graph_num_values(g1) && !n; v++) {
        const struct deft_value *a = deft_graph_value(g1, v);
        if (a->kind != DEFT_VALUE_PARAM) continue;
        int w = deft_graph_find_value(g2, a->name);
        if (w < 0) continue;
        const struct deft_value *b = deft_graph_value(g2, w);
        if (b->shape.ndim != a->shape.ndim || deft_shape_equal(&a->shape, &b->shape)) continue;
        const struct deft_tensor *t = deft_safetensors_find(st, a->name);
        if (!t || t->shape.ndim != a->shape.ndim) continue;
        for (int k = 0; k < a->shape.ndim; k++)
            if (a->shape.d[k] != b->shape.d[k] && t->shape.d[k] >= 1 && t->shape.d[k] <= 1000000) {
                n = (int)t->shape.d[k];
                break;
            }
    }
done:
    deft_graph_free(g1);
    deft_graph_free(g2);
    deft_clear_error();
    return n;
}

/* Input channels of arch's weights in st: 1 when the file's first
 * convolution (the one reading the image) has a one-channel kernel, a model
 * trained on grey images; else 3. */
static int weights_input_channels(const char *arch, const struct deft_safetensors *st) {
    struct deft_graph *g = NULL;
    int x = -1, ch = 3;
    if (deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 1}, &g, &x, NULL)) {
        deft_clear_error();
        return 3;
    }
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (nd->op != DEFT_OP_CONV2D || nd->in[0] != x || nd->n_in < 2) continue;
        const struct deft_tensor *t = deft_safetensors_find(st, deft_graph_value(g, nd->in[1])->name);
        if (t && t->shape.ndim == 4 && t->shape.d[1] == 1) ch = 1;
        break;
    }
    deft_graph_free(g);
    return ch;
}

/* The shortest decimal that reads back as the same float ("0.485", not "0.485000014"). */
static const char *short_float(float v, char buf[32]) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

/* The "preprocess" metadata every later action (evaluate, inference,
 * calibration, DeepStream config) applies to images for this model. */
static void preprocess_json(const struct deft_preprocess *p, int h, int w, char *out, size_t n) {
    char b[7][32];
    if (deft_preprocess_channels(p) == 1) { /* a grey model: one plane, one mean and std */
        snprintf(out, n,
                 "{\"channel_order\": \"gray\", \"divisor\": %s, \"channels\": 1, \"mean\": [%s], \"std\": [%s], "
                 "\"height\": %d, \"width\": %d, \"resize\": \"center_crop\", \"crop_padding\": %d}",
                 short_float(p->divisor, b[0]), short_float(p->mean[0], b[1]), short_float(p->std[0], b[2]), h, w,
                 h >= 64 ? 32 : 0);
        return;
    }
    snprintf(out, n,
             "{\"channel_order\": \"%s\", \"divisor\": %s, \"mean\": [%s, %s, %s], "
             "\"std\": [%s, %s, %s], \"height\": %d, \"width\": %d, "
             "\"resize\": \"center_crop\", \"crop_padding\": %d}",
             p->bgr ? "bgr" : "rgb", short_float(p->divisor, b[0]), short_float(p->mean[0], b[1]),
             short_float(p->mean[1], b[2]), short_float(p->mean[2], b[3]),
             short_float(p->std[0], b[4]), short_float(p->std[1], b[5]),
             short_float(p->std[2], b[6]), h, w, h >= 64 ? 32 : 0);
}

enum deft_status deft_model_set_preprocess(struct deft_graph *g, const struct deft_preprocess *p, int h,
                                           int w) {
    char pre[512];
    preprocess_json(p, h, w, pre, sizeof pre);
    return deft_graph_set_meta(g, "preprocess", pre);
}

enum deft_status deft_model_set_class_names(struct deft_graph *g, const char *const *names, int n) {
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (int i = 0; ok && i < n; i++) {
        char nm[32];
        if (!names) snprintf(nm, sizeof nm, "class_%d", i);
        cJSON *s = cJSON_CreateString(names ? names[i] : nm);
        ok = s && cJSON_AddItemToArray(a, s);
    }
    char *txt = ok ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    enum deft_status s = txt ? deft_graph_set_meta(g, "class_names", txt)
                             : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    cJSON_free(txt);
    return s;
}

/* The runtime's weights as a list of f32 tensors by value name. */
static enum deft_status weights_of(struct deft_runtime *rt, struct deft_safetensors **out) {
    const struct deft_graph *g = deft_runtime_graph(rt);
    enum deft_status s = deft_io_tensor_list_new("deft", out);
    for (int v = 0; !s && v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (!is_weight(val)) continue;
        struct deft_tensor *t = NULL;
        if ((s = deft_tensor_create(DEFT_F32, &val->shape, &t))) break;
        if ((s = deft_runtime_read(rt, v, t->data, (size_t)deft_shape_numel(&val->shape)))) {
            deft_tensor_free(t);
            break;
        }
        s = deft_io_tensor_list_add(*out, val->name, t);
    }
    if (s) {
        deft_safetensors_free(*out);
        *out = NULL;
    }
    return s;
}

/* Warn about tensors of the file no weight took (num_batches_tracked is expected). */
static int warn_unused(const struct deft_safetensors *st, const struct deft_graph *g, const char *arch) {
    int unused = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const char *nm = st->tensors[i].name;
        size_t l = strlen(nm);
        if (deft_graph_find_value(g, nm) >= 0 || (l >= 19 && !strcmp(nm + l - 19, "num_batches_tracked")))
            continue;
        if (unused < 5) deft_log(DEFT_LOG_WARN, "tensor '%s' is not used by %s", nm, arch);
        unused++;
    }
    if (unused > 5) deft_log(DEFT_LOG_WARN, "%d more unused tensors", unused - 5);
    return unused;
}

enum deft_status deft_model_import_weights(const struct deft_safetensors *st, const char *name,
                                           const struct deft_import_opts *o, struct deft_model **out,
                                           struct deft_import_report *rep) {
    *out = NULL;
    struct deft_import_report r = {0};
    if (!o || !o->arch) return deft_set_error(DEFT_ERR_INVALID_ARG, "importing %s: no architecture", name);
    int num_classes = o->num_classes;
    if (!num_classes && o->class_names) {
        int in_file = deft_weights_num_classes(o->arch, st);
        if (in_file > 0 && in_file != o->n_class_names)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "--class_names lists %d names but %s's classifier has %d "
                                  "classes", o->n_class_names, name, in_file);
        num_classes = o->n_class_names;
    }
    if (!num_classes) {
        num_classes = deft_weights_num_classes(o->arch, st);
        r.num_classes_from_file = num_classes > 0;
    }
    if (o->class_names && num_classes != o->n_class_names)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--class_names lists %d names but the model has %d classes",
                              o->n_class_names, num_classes);
    struct deft_model *m = deft_calloc(1, sizeof *m);
    struct deft_runtime *rt = NULL;
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    int ch = weights_input_channels(o->arch, st);
    enum deft_status s = deft_model_build(
        &(struct deft_model_opts){.arch = o->arch, .num_classes = num_classes, .channels = ch, .training = false},
        &m->graph, NULL, NULL);
    if (s) goto done;
    const char *nc_meta = deft_graph_get_meta(m->graph, "num_classes");
    r.num_classes = nc_meta ? atoi(nc_meta) : num_classes;
    struct deft_preprocess pre;
    if (o->pre) pre = *o->pre;
    else deft_preprocess_init(&pre, DEFT_PREPROCESS_TORCHVISION);
    if (ch == 1 && pre.channels != 1) deft_preprocess_set_gray(&pre);
    if (ch == 1) deft_log(DEFT_LOG_INFO, "%s: a one-channel first convolution: grey input", name);
    if ((s = deft_model_set_preprocess(m->graph, &pre, 224, 224)) ||
        (s = deft_model_set_class_names(m->graph, o->class_names, r.num_classes)) ||
        (s = deft_runtime_create(m->graph, &(struct deft_runtime_opts){0}, &rt)))
        goto done;
    /* Without --skip_mismatch the copy below fills every weight or fails: a random
     * initialisation first would only cost time (seconds for VGG-16). */
    if (o->skip_mismatch && (s = deft_runtime_init_params(rt, 42))) goto done;
    s = deft_model_copy_to_runtime(st, rt, o->skip_mismatch ? DEFT_LOAD_SKIP_MISMATCH : 0, &r.copied);
    if (s) {
        s = deft_wrap_error(s, "%s", name);
        goto done;
    }
    r.unused = warn_unused(st, m->graph, o->arch);
    s = weights_of(rt, &m->file);
done:
    deft_runtime_free(rt);
    if (s) {
        deft_model_free(m);
        return s;
    }
    if (rep) *rep = r;
    *out = m;
    return DEFT_OK;
}

enum deft_status deft_model_import(const char *path, const struct deft_import_opts *o, struct deft_model **out,
                                   struct deft_import_report *rep) {
    *out = NULL;
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_weights_read(path, &st);
    if (s) return s;
    s = deft_model_import_weights(st, path, o, out, rep);
    deft_safetensors_free(st);
    return s;
}

/* text split at sep into names; an empty one is an error naming its place */
static enum deft_status split_names(const char *text, char sep, const char *what, char ***names, int *n) {
    int cnt = 1;
    for (const char *p = text; *p; p++) cnt += *p == sep;
    if (cnt > DEFT_MAX_CLASSES)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: more than %d names", what, DEFT_MAX_CLASSES);
    char **v = deft_calloc((size_t)cnt, sizeof *v);
    if (!v) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    const char *p = text;
    for (int i = 0; i < cnt; i++) {
        const char *c = strchr(p, sep);
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (!len) {
            deft_string_list_free(v, cnt);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: name %d is empty%s", what, i + 1,
                                  sep == '\n' ? " (an empty line)" : "");
        }
        if (!(v[i] = deft_malloc(len + 1))) {
            deft_string_list_free(v, cnt);
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        }
        memcpy(v[i], p, len);
        v[i][len] = 0;
        p = c ? c + 1 : p + len;
    }
    *names = v;
    *n = cnt;
    return DEFT_OK;
}

/* A file's text without CRs and final newlines into *text (deft_free it). */
static enum deft_status read_lines(const char *path, char **text) {
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return deft_set_error(DEFT_ERR_IO, "--class_names %s: cannot open it", path);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int c;
    enum deft_status s = DEFT_OK;
    while (!s && (c = fgetc(f)) != EOF) {
        if (c == '\r') continue;
        if (c == 0 || n + 2 > (16u << 20))
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "--class_names %s: %s", path,
                               c == 0 ? "not a text file" : "too large");
        else if (n + 2 > cap) {
            char *nb = deft_realloc(buf, cap = cap ? cap * 2 : 4096);
            if (nb) buf = nb;
            else s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        }
        if (!s) buf[n++] = (char)c;
    }
    fclose(f);
    if (!s && !buf && !(buf = deft_malloc(1))) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (s) {
        deft_free(buf);
        return s;
    }
    while (n && buf[n - 1] == '\n') n--;
    buf[n] = 0;
    *text = buf;
    return DEFT_OK;
}

enum deft_status deft_class_names_from_arg(const char *arg, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    struct stat st;
    if (!arg || !*arg) return deft_set_error(DEFT_ERR_INVALID_ARG, "--class_names is empty");
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        char *text = NULL;
        enum deft_status s = read_lines(arg, &text);
        if (s) return s;
        char what[1100];
        snprintf(what, sizeof what, "--class_names %.1024s", arg);
        s = text[0] ? split_names(text, '\n', what, names, n)
                                     : deft_set_error(DEFT_ERR_INVALID_ARG, "%s lists no names", what);
        deft_free(text);
        return s;
    }
    if (strchr(arg, '/') && !strchr(arg, ','))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "--class_names %s: no such file (give a file with one name per "
                              "line, or names separated by commas)", arg);
    return split_names(arg, ',', "--class_names", names, n);
}

/* A graph without preprocessing metadata (a foreign ONNX file) gets
 * torchvision's at its input size, the usual for ImageNet-style models. */
static enum deft_status default_preprocess(struct deft_graph *g, const char *path) {
    if (deft_graph_get_meta(g, "preprocess")) return DEFT_OK;
    int iv = -1;
    for (int v = 0; v < deft_graph_num_values(g) && iv < 0; v++)
        if (deft_graph_value(g, v)->kind == DEFT_VALUE_INPUT) iv = v;
    const struct deft_value *in = iv >= 0 ? deft_graph_value(g, iv) : NULL;
    if (!in || in->shape.ndim != 4 || (in->shape.d[1] != 3 && in->shape.d[1] != 1) || in->shape.d[2] < 1 ||
        in->shape.d[3] < 1 || in->shape.d[2] > 16384 || in->shape.d[3] > 16384)
        return DEFT_OK;
    struct deft_preprocess tv;
    deft_preprocess_init(&tv, DEFT_PREPROCESS_TORCHVISION);
    if (in->shape.d[1] == 1) deft_preprocess_set_gray(&tv);
    deft_log(DEFT_LOG_INFO, "%s records no preprocessing: using torchvision's (%s, ImageNet mean/std) at %dx%d",
             path, in->shape.d[1] == 1 ? "grey" : "RGB", (int)in->shape.d[3], (int)in->shape.d[2]);
    return deft_model_set_preprocess(g, &tv, (int)in->shape.d[2], (int)in->shape.d[3]);
}

enum deft_status deft_model_open(const char *path, const struct deft_model_open_opts *o, struct deft_model **out) {
    static const struct deft_model_open_opts none = {0};
    if (!o) o = &none;
    *out = NULL;
    struct deft_model *m = NULL;
    enum deft_status s;
    if (o->arch) {
        if (!deft_model_arch_known(o->arch)) {
            struct deft_graph *g = NULL; /* its error says "did you mean" */
            s = deft_model_build(&(struct deft_model_opts){.arch = o->arch}, &g, NULL, NULL);
            deft_graph_free(g);
            return s ? s : deft_set_error(DEFT_ERR_NOT_FOUND, "unknown architecture '%s'", o->arch);
        }
        s = deft_model_import(path, &(struct deft_import_opts){.arch = o->arch, .class_names = o->class_names,
                                                               .n_class_names = o->n_class_names, .pre = o->pre},
                              &m, NULL);
        if (s == DEFT_ERR_NOT_FOUND) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", deft_last_error());
            s = deft_set_error(s, "%s (not %s weights? `deft model info -m %s` names the architecture they fit)",
                               msg, o->arch, path);
        }
        if (s) return s;
    } else {
        if ((s = deft_model_load(path, &m))) return s;
        const char *nc = deft_graph_get_meta(m->graph, "num_classes");
        if (o->class_names && nc && atoi(nc) > 0 && atoi(nc) != o->n_class_names)
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "--class_names lists %d names but %s has %d classes",
                               o->n_class_names, path, atoi(nc));
        if (!s && o->class_names) s = deft_model_set_class_names(m->graph, o->class_names, o->n_class_names);
        if (!s) s = default_preprocess(m->graph, path);
        if (s) {
            deft_model_free(m);
            return s;
        }
    }
    *out = m;
    return DEFT_OK;
}

/* unet_export.c - `deft unet export`: the trained UNet as ONNX (float), its
 * output as TAO's export gives it (the activation appended: softmax over the
 * class axis, or sigmoid for the binary head), the raw logits, or the class
 * map (ArgMax over the class axis, int64 [N, 1, H, W]). */
#include <stdio.h>
#include <string.h>
#include "deft/io.h"
#include "tasks/unet/unet_task.h"

enum output_kind { OUT_ACTIVATION, OUT_LOGITS, OUT_ARGMAX };

static enum deft_status parse_output(const char *v, enum output_kind *k) {
    *k = OUT_ACTIVATION;
    if (!v || !strcmp(v, "softmax") || !strcmp(v, "sigmoid") || !strcmp(v, "activation")) return DEFT_OK;
    if (!strcmp(v, "logits")) *k = OUT_LOGITS;
    else if (!strcmp(v, "argmax")) *k = OUT_ARGMAX;
    else
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--output '%s': use softmax (sigmoid for a binary head: the "
                              "activation, TAO's default), logits or argmax", v);
    return DEFT_OK;
}

/* The nodes after the logits: Softmax(axis 1) / Sigmoid, or ArgMax(axis 1). */
static struct deft_onnx_tail *make_tail(enum output_kind k, const char *logits, const struct deft_shape *s,
                                        bool sigmoid) {
    struct deft_onnx_tail *t = deft_onnx_tail_create("post/");
    if (!t) return NULL;
    int64_t dims[4] = {-1, s->d[1], s->d[2], s->d[3]};
    if (k == OUT_ARGMAX) {
        const char *y;
        if (sigmoid) { /* one channel: class 1 where the logit is above 0 */
            const char *zero = deft_onnx_tail_const(t, NULL, DEFT_ONNX_FLOAT, 0, NULL, (float[]){0.0f});
            y = deft_onnx_tail_node(t, "Greater", NULL, (const char *[]){logits, zero}, 2, "above");
            y = deft_onnx_tail_node(t, "Cast", NULL, &y, 1, "class_map");
            deft_onnx_tail_attr_i(t, "to", DEFT_ONNX_INT64);
        } else {
            y = deft_onnx_tail_node(t, "ArgMax", NULL, &logits, 1, "class_map");
            deft_onnx_tail_attr_i(t, "axis", 1);
            deft_onnx_tail_attr_i(t, "keepdims", 1);
        }
        dims[1] = 1;
        deft_onnx_tail_output(t, y, DEFT_ONNX_INT64, 4, dims);
    } else {
        const char *y = deft_onnx_tail_node(t, sigmoid ? "Sigmoid" : "Softmax", NULL, &logits, 1, "predictions");
        if (!sigmoid) deft_onnx_tail_attr_i(t, "axis", 1);
        deft_onnx_tail_output(t, y, DEFT_ONNX_FLOAT, 4, dims);
    }
    return t;
}

enum deft_status unet_export(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->model || !a->output_file) return deft_set_error(DEFT_ERR_INVALID_ARG, "export needs -m MODEL and -o OUT.onnx");
    enum output_kind kind;
    int opset = 0;
    enum deft_status s = parse_output(deft_task_arg(a, "--output"), &kind);
    if (!s) s = deft_task_arg_int(a, "--opset", 11, 17, 13, &opset);
    if (s) return s;
    struct deft_model *m = NULL;
    struct deft_onnx_tail *t = NULL;
    if ((s = deft_model_load(a->model, &m))) return s;
    struct deft_graph *g = m->graph;
    int in = deft_graph_find_role(g, DEFT_ROLE_IMAGE), lo = deft_graph_find_role(g, DEFT_ROLE_LOGITS);
    const char *net = deft_graph_get_meta(g, "arch");
    if (in < 0 || lo < 0 || deft_graph_value(g, lo)->shape.ndim != 4 || !net || strcmp(net, "\"unet\"")) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: not a UNet model (deft unet train writes them)", a->model);
        goto done;
    }
    deft_graph_set_training(g, false);
    struct deft_shape one = deft_graph_value(g, in)->shape;
    one.d[0] = 1;
    if ((s = deft_graph_reshape_input(g, in, &one))) goto done;
    const struct deft_shape *ls = &deft_graph_value(g, lo)->shape;
    bool sigmoid = ls->d[1] == 1;
    if (kind != OUT_LOGITS && !(t = make_tail(kind, deft_graph_value(g, lo)->name, ls, sigmoid))) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    const struct deft_kv meta[] = {{"network", "\"unet\""},
                                   {"output_kind", kind == OUT_LOGITS ? "\"logits\"" : kind == OUT_ARGMAX ? "\"class_map\""
                                                                                      : "\"probabilities\""}};
    struct deft_onnx_export_opts eo = {.opset = opset, .input_name = "input_1", .tail = t, .meta = meta, .n_meta = 2};
    if ((s = deft_mkdirs_for(a->output_file)) || (s = deft_onnx_export(a->output_file, g, m->file, &eo, NULL)))
        goto done;
    static const char *const kinds[] = {"probabilities", "logits", "class map"};
    fprintf(out, "wrote %s: input_1 [1, %lld, %lld, %lld] -> %s (%s), opset %d\n", a->output_file,
            (long long)one.d[1], (long long)one.d[2], (long long)one.d[3], kinds[kind],
            kind == OUT_ACTIVATION ? (sigmoid ? "sigmoid" : "softmax over the class axis")
            : kind == OUT_ARGMAX   ? "int64 [1, 1, H, W]"
                                   : "before the activation",
            opset);
done:
    deft_onnx_tail_free(t);
    deft_model_free(m);
    return s;
}

/* pretrained.c - a trainer's weights from a pretrained file by name (any
 * format deft_weights_read knows: .pth, .pt, .onnx, .h5, .safetensors, a deft
 * model), with shape checks and a summary of what did not load: how a detector
 * takes a classification backbone, and a classifier ImageNet weights. */
#include <stdio.h>
#include "deft/io.h"
#include "deft/trainer.h"

/* The names of one outcome, up to LIST_MAX of them: the rest as a count
 * (a detector taking a classification backbone initializes hundreds). */
#define LIST_MAX 8
struct outcome {
    const char *what;
    int n;
    char names[LIST_MAX][128];
};

static void note(struct outcome *o, const char *name, const char *detail) {
    if (o->n < LIST_MAX) snprintf(o->names[o->n], sizeof o->names[0], "%s%s", name, detail);
    o->n++;
}

static void print_outcome(FILE *out, const struct outcome *o) {
    if (!o->n) return;
    fprintf(out, "  %d %s:", o->n, o->what);
    for (int i = 0; i < o->n && i < LIST_MAX; i++) fprintf(out, "%s %s", i ? "," : "", o->names[i]);
    if (o->n > LIST_MAX) fprintf(out, " ... and %d more (DEFT_LOG=debug lists every tensor)", o->n - LIST_MAX);
    fputc('\n', out);
}

/* Whether a convolution's weight input w is the param v, directly or through
 * quantization-aware training's fake quantization. */
static bool conv_weight_is(const struct deft_graph *g, int w, int v) {
    if (w == v) return true;
    int p = w >= 0 ? deft_graph_value(g, w)->producer : -1;
    const struct deft_node *nd = p >= 0 ? deft_graph_node(g, p) : NULL;
    return nd && nd->op == DEFT_OP_FAKE_QUANT && nd->in[0] == v;
}

/* Whether value v is the kernel [O,1,R,S] of a plain convolution (groups 1)
 * over a one-channel tensor, the first convolution of a grey model, and src
 * is the same kernel for RGB, [O,3,R,S]. */
static bool grey_kernel(const struct deft_graph *g, int v, const struct deft_tensor *src) {
    const struct deft_shape *w = &deft_graph_value(g, v)->shape, *f = &src->shape;
    if (w->ndim != 4 || f->ndim != 4 || w->d[1] != 1 || f->d[1] != 3 || w->d[0] != f->d[0] || w->d[2] != f->d[2] ||
        w->d[3] != f->d[3])
        return false;
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        if (nd->op == DEFT_OP_CONV2D && nd->n_in > 1 && conv_weight_is(g, nd->in[1], v) && nd->attr.conv.groups <= 1)
            return deft_graph_value(g, nd->in[0])->shape.d[1] == 1;
    }
    return false;
}

/* An RGB kernel for a grey input: summed over its three input channels, so
 * conv(sum_c w_c, x) = conv(w, [x, x, x]), what the network computed on the
 * grey image replicated into RGB. */
static enum deft_status fold_to_grey(const struct deft_tensor *src, float *dst) {
    const struct deft_shape *f = &src->shape;
    size_t o = (size_t)f->d[0], k = (size_t)f->d[2] * (size_t)f->d[3];
    float *rgb = deft_malloc(o * 3 * k * sizeof *rgb);
    if (!rgb) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = deft_tensor_to_f32(src, rgb);
    for (size_t i = 0; !s && i < o; i++)
        for (size_t j = 0; j < k; j++)
            dst[i * k + j] = rgb[(i * 3 + 0) * k + j] + rgb[(i * 3 + 1) * k + j] + rgb[(i * 3 + 2) * k + j];
    deft_free(rgb);
    return s;
}

enum deft_status deft_trainer_load_pretrained(struct deft_trainer *t, const char *path, FILE *out) {
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_weights_read(path, &st);
    if (s) return deft_wrap_error(s, "pretrained_model_path");
    struct deft_runtime *rt = deft_trainer_runtime(t);
    const struct deft_graph *g = deft_trainer_model_graph(t);
    int loaded = 0;
    struct outcome mismatch = {"re-initialized (shape mismatch)"}, missing = {"without weights in the file (initialized)"};
    for (int v = 0; v < deft_graph_num_values(g) && !s; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        struct deft_tensor *src = deft_safetensors_find(st, val->name);
        if (!src) {
            note(&missing, val->name, "");
            deft_log(DEFT_LOG_DEBUG, "pretrained: %s: no weights (initialized)", val->name);
        } else if (grey_kernel(g, v, src)) {
            const struct deft_graph *tg = deft_runtime_graph(rt);
            s = fold_to_grey(src, deft_runtime_data(rt, deft_graph_find_value(tg, val->name)));
            loaded++;
            fprintf(out, "pretrained: %s [%lld,3,%lld,%lld] summed over its input channels for the grey input\n",
                    val->name, (long long)src->shape.d[0], (long long)src->shape.d[2], (long long)src->shape.d[3]);
        } else if (!deft_shape_equal(&src->shape, &val->shape)) {
            char a[96], b[96], d[200];
            snprintf(d, sizeof d, " %s vs %s", deft_shape_str(&src->shape, a, sizeof a),
                     deft_shape_str(&val->shape, b, sizeof b));
            note(&mismatch, val->name, d);
            deft_log(DEFT_LOG_DEBUG, "pretrained: %s: shape mismatch%s", val->name, d);
        } else {
            const struct deft_graph *tg = deft_runtime_graph(rt);
            s = deft_tensor_to_f32(src, deft_runtime_data(rt, deft_graph_find_value(tg, val->name)));
            loaded++;
            deft_log(DEFT_LOG_DEBUG, "pretrained: %s: loaded", val->name);
        }
    }
    deft_safetensors_free(st);
    fprintf(out, "pretrained %s: %d loaded, %d shape mismatch, %d without weights\n", path, loaded, mismatch.n,
            missing.n);
    print_outcome(out, &mismatch);
    print_outcome(out, &missing);
    if (!s && loaded == 0)
        deft_log(DEFT_LOG_WARN, "%s: no tensor matched the model by name and shape; is it the right file?", path);
    return s;
}

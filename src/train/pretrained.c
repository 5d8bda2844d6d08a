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

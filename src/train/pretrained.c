/* pretrained.c - a trainer's weights from a pretrained file by name (any
 * format deft_weights_read knows: .pth, .pt, .onnx, .h5, .safetensors, a deft
 * model), with shape checks and TAO's per-layer status table: how a detector
 * takes a classification backbone, and a classifier ImageNet weights. */
#include <stdio.h>
#include "deft/io.h"
#include "deft/trainer.h"

enum deft_status deft_trainer_load_pretrained(struct deft_trainer *t, const char *path, FILE *out) {
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_weights_read(path, &st);
    if (s) return deft_wrap_error(s, "pretrained_model_path");
    struct deft_runtime *rt = deft_trainer_runtime(t);
    const struct deft_graph *g = deft_trainer_model_graph(t);
    int loaded = 0, mismatch = 0, missing = 0;
    fprintf(out, "loading pretrained weights from %s\n%-44s %s\n", path, "tensor", "status");
    for (int v = 0; v < deft_graph_num_values(g) && !s; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        struct deft_tensor *src = deft_safetensors_find(st, val->name);
        const char *status;
        char buf[200];
        if (!src) {
            status = "no weights (initialized)";
            missing++;
        } else if (!deft_shape_equal(&src->shape, &val->shape)) {
            char a[96], b[96];
            snprintf(buf, sizeof buf, "shape mismatch %s vs %s -> re-initialized", deft_shape_str(&src->shape, a, sizeof a),
                     deft_shape_str(&val->shape, b, sizeof b));
            status = buf;
            mismatch++;
        } else {
            const struct deft_graph *tg = deft_runtime_graph(rt);
            s = deft_tensor_to_f32(src, deft_runtime_data(rt, deft_graph_find_value(tg, val->name)));
            status = "loaded";
            loaded++;
        }
        fprintf(out, "%-44s %s\n", val->name, status);
    }
    deft_safetensors_free(st);
    fprintf(out, "pretrained: %d loaded, %d shape mismatch, %d without weights\n", loaded, mismatch, missing);
    if (!s && loaded == 0)
        deft_log(DEFT_LOG_WARN, "%s: no tensor matched the model by name and shape; is it the right file?", path);
    return s;
}


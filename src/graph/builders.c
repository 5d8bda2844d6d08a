/* builders.c - convenience constructors that create params and nodes with
 * PyTorch-style names ("<node>.weight") and PyTorch's default initializers. */
#include <stdio.h>
#include <string.h>
#include "graph/graph_impl.h"

static int node_out(struct deft_graph *g, int n) { return n < 0 ? -1 : g->nodes[n].out[0]; }

static int add(struct deft_graph *g, enum deft_op op, const char *name, const int *in, int n_in,
               const struct deft_attr *a) {
    for (int i = 0; i < n_in; i++)
        if (in[i] < 0 && !(i >= 2 && (op == DEFT_OP_CONV2D || op == DEFT_OP_LINEAR))) {
            if (!g->status) {
                deft_set_error(DEFT_ERR_INVALID_ARG, "node '%s': input %d is invalid", name, i);
                deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
            }
            return -1;
        }
    return node_out(g, deft_graph_add_node(g, op, name, in, n_in, a));
}

int deft_input(struct deft_graph *g, const char *name, struct deft_shape shape) {
    return deft_graph_add_value(g, name, DEFT_VALUE_INPUT, DEFT_F32, &shape);
}

static int param_named(struct deft_graph *g, const char *node, const char *suffix,
                       struct deft_shape shape, enum deft_init init, int fan_in, int fan_out,
                       enum deft_value_kind kind) {
    char nm[512];
    snprintf(nm, sizeof nm, "%s.%s", node, suffix);
    int v = deft_graph_add_value(g, nm, kind, DEFT_F32, &shape);
    if (v >= 0) {
        g->values[v].init = init;
        g->values[v].fan_in = fan_in;
        g->values[v].fan_out = fan_out;
    }
    return v;
}

int deft_param(struct deft_graph *g, const char *name, struct deft_shape shape, enum deft_init init) {
    int v = deft_graph_add_value(g, name, DEFT_VALUE_PARAM, DEFT_F32, &shape);
    if (v >= 0) {
        g->values[v].init = init;
        int64_t rf = 1;
        for (int i = 2; i < shape.ndim; i++) rf *= shape.d[i];
        g->values[v].fan_in = shape.ndim >= 2 ? (int)(shape.d[1] * rf) : (int)shape.d[0];
        g->values[v].fan_out = (int)(shape.d[0] * rf);
    }
    return v;
}

static int conv_common(struct deft_graph *g, enum deft_op op, const char *name, int x, int k,
                       int r, int s, const struct deft_conv_attr *a, bool bias) {
    if (g->status) return -1;
    if (x < 0 || x >= g->n_values || g->values[x].shape.ndim != 4 || k < 1 || r < 1 || s < 1 ||
        a->groups < 1) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "conv '%s': bad input or kernel", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    int64_t c = g->values[x].shape.d[1];
    int gr = a->groups;
    struct deft_shape ws;
    int fan_in, fan_out;
    if (op == DEFT_OP_CONV2D) {
        ws = deft_shape4(k, c / gr, r, s);
        fan_in = (int)(c / gr) * r * s;
        fan_out = k * r * s; /* PyTorch: weight.size(0) * receptive field, whatever the groups */
    } else {
        ws = deft_shape4(c, k / gr, r, s);
        fan_in = k / gr * r * s; /* PyTorch computes fan_in from dim 1 for transposed weights */
        fan_out = (int)c * r * s;
    }
    int in[3];
    in[0] = x;
    in[1] = param_named(g, name, "weight", ws, DEFT_INIT_KAIMING_UNIFORM, fan_in, fan_out,
                        DEFT_VALUE_PARAM);
    int n_in = 2;
    if (bias) {
        in[2] = param_named(g, name, "bias", (struct deft_shape){.ndim = 1, .d = {k}},
                            DEFT_INIT_UNIFORM_FAN_IN, fan_in, fan_out, DEFT_VALUE_PARAM);
        if (in[2] >= 0) g->values[in[2]].flags |= DEFT_VF_NO_DECAY;
        n_in = 3;
    }
    if (g->status) return -1;
    struct deft_attr at = {.conv = *a, .has_bias = bias};
    return add(g, op, name, in, n_in, &at);
}

int deft_conv2d(struct deft_graph *g, const char *name, int x, int k, int r, int s,
                const struct deft_conv_attr *a, bool bias) {
    return conv_common(g, DEFT_OP_CONV2D, name, x, k, r, s, a, bias);
}

int deft_conv_transpose2d(struct deft_graph *g, const char *name, int x, int k, int r, int s,
                          const struct deft_conv_attr *a, bool bias) {
    return conv_common(g, DEFT_OP_CONV_TRANSPOSE2D, name, x, k, r, s, a, bias);
}

int deft_batchnorm_ex(struct deft_graph *g, const char *name, int x, const struct deft_bn_attr *a) {
    if (g->status) return -1;
    if (x < 0 || x >= g->n_values || g->values[x].shape.ndim < 2) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "batchnorm '%s': bad input", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    struct deft_shape cs = {.ndim = 1, .d = {g->values[x].shape.d[1]}};
    int in[5] = {x,
                 param_named(g, name, "weight", cs, DEFT_INIT_ONES, 0, 0, DEFT_VALUE_PARAM),
                 param_named(g, name, "bias", cs, DEFT_INIT_ZEROS, 0, 0, DEFT_VALUE_PARAM),
                 param_named(g, name, "running_mean", cs, DEFT_INIT_ZEROS, 0, 0, DEFT_VALUE_STATE),
                 param_named(g, name, "running_var", cs, DEFT_INIT_ONES, 0, 0, DEFT_VALUE_STATE)};
    if (g->status) return -1;
    g->values[in[1]].flags |= DEFT_VF_NO_DECAY;
    g->values[in[2]].flags |= DEFT_VF_NO_DECAY;
    struct deft_attr at = {.bn = *a};
    return add(g, DEFT_OP_BATCHNORM, name, in, 5, &at);
}

int deft_batchnorm(struct deft_graph *g, const char *name, int x, enum deft_bn_mode mode) {
    return deft_batchnorm_ex(g, name, x, &(struct deft_bn_attr){1e-5f, 0.1f, mode});
}

int deft_act(struct deft_graph *g, const char *name, int x, enum deft_act_kind kind, float alpha) {
    struct deft_attr at = {.act = {kind, alpha}};
    return add(g, DEFT_OP_ACT, name, &x, 1, &at);
}

int deft_pool(struct deft_graph *g, const char *name, int x, const struct deft_pool_attr *a) {
    struct deft_attr at = {.pool = *a};
    return add(g, DEFT_OP_POOL, name, &x, 1, &at);
}

int deft_global_avgpool(struct deft_graph *g, const char *name, int x) {
    return add(g, DEFT_OP_GLOBAL_AVGPOOL, name, &x, 1, NULL);
}

int deft_add(struct deft_graph *g, const char *name, int a, int b) {
    int in[2] = {a, b};
    return add(g, DEFT_OP_ADD, name, in, 2, NULL);
}

int deft_mul(struct deft_graph *g, const char *name, int a, int b) {
    int in[2] = {a, b};
    return add(g, DEFT_OP_MUL, name, in, 2, NULL);
}

int deft_concat(struct deft_graph *g, const char *name, const int *xs, int n, int axis) {
    if (n < 1 || n > DEFT_MAX_INPUTS) {
        if (!g->status) {
            deft_set_error(DEFT_ERR_INVALID_ARG, "concat '%s': %d inputs (1..%d allowed)", name, n,
                           DEFT_MAX_INPUTS);
            deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
        }
        return -1;
    }
    struct deft_attr at = {.concat = {axis}};
    return add(g, DEFT_OP_CONCAT, name, xs, n, &at);
}

int deft_slice(struct deft_graph *g, const char *name, int x, int axis, int64_t start, int64_t end) {
    if (g->status) return -1;
    if (x < 0 || x >= g->n_values || axis < 0 || axis >= g->values[x].shape.ndim) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "slice '%s': bad input or axis", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    struct deft_attr at = {0};
    const struct deft_shape *s = &g->values[x].shape;
    for (int d = 0; d < s->ndim; d++) {
        at.slice.start[d] = 0;
        at.slice.end[d] = -1; /* to the end: follows batch-size changes */
    }
    at.slice.start[axis] = start;
    at.slice.end[axis] = end;
    return add(g, DEFT_OP_SLICE, name, &x, 1, &at);
}

int deft_pad(struct deft_graph *g, const char *name, int x, const struct deft_pad_attr *a) {
    struct deft_attr at = {.pad = *a};
    return add(g, DEFT_OP_PAD, name, &x, 1, &at);
}

int deft_reshape(struct deft_graph *g, const char *name, int x, struct deft_shape shape) {
    struct deft_attr at = {.shape = shape};
    return add(g, DEFT_OP_RESHAPE, name, &x, 1, &at);
}

int deft_transpose(struct deft_graph *g, const char *name, int x, const int *perm, int n) {
    struct deft_attr at = {.shape = {.ndim = n}};
    if (n < 1 || n > DEFT_MAX_DIMS) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "transpose '%s': rank %d", name ? name : "", n);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    for (int i = 0; i < n; i++) at.shape.d[i] = perm[i];
    return add(g, DEFT_OP_TRANSPOSE, name, &x, 1, &at);
}

int deft_flatten(struct deft_graph *g, const char *name, int x) {
    if (g->status) return -1;
    if (x < 0 || x >= g->n_values || g->values[x].shape.ndim < 1) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "flatten '%s': bad input", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    /* keep the batch dimension inferred (-1) so the graph follows batch changes */
    const struct deft_shape *s = &g->values[x].shape;
    int64_t rest = 1;
    for (int d = 1; d < s->ndim; d++) rest *= s->d[d];
    return deft_reshape(g, name, x, (struct deft_shape){.ndim = 2, .d = {-1, rest}});
}

int deft_upsample(struct deft_graph *g, const char *name, int x, int64_t out_h, int64_t out_w,
                  enum deft_upsample_mode mode, bool align_corners) {
    struct deft_attr at = {.upsample = {mode, align_corners},
                           .shape = {.ndim = 4, .d = {0, 0, out_h, out_w}}};
    return add(g, DEFT_OP_UPSAMPLE, name, &x, 1, &at);
}

int deft_linear(struct deft_graph *g, const char *name, int x, int64_t m, bool bias) {
    if (g->status) return -1;
    if (x < 0 || x >= g->n_values || g->values[x].shape.ndim != 2 || m < 1) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "linear '%s': input must be [N, K]", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    int k = (int)g->values[x].shape.d[1];
    int in[3] = {x,
                 param_named(g, name, "weight", (struct deft_shape){.ndim = 2, .d = {m, k}},
                             DEFT_INIT_KAIMING_UNIFORM, k, (int)m, DEFT_VALUE_PARAM),
                 -1};
    int n_in = 2;
    if (bias) {
        in[2] = param_named(g, name, "bias", (struct deft_shape){.ndim = 1, .d = {m}},
                            DEFT_INIT_UNIFORM_FAN_IN, k, (int)m, DEFT_VALUE_PARAM);
        if (in[2] >= 0) g->values[in[2]].flags |= DEFT_VF_NO_DECAY;
        n_in = 3;
    }
    if (g->status) return -1;
    struct deft_attr at = {.has_bias = bias};
    return add(g, DEFT_OP_LINEAR, name, in, n_in, &at);
}

int deft_dropout(struct deft_graph *g, const char *name, int x, float p, bool training,
                 uint64_t seed) {
    struct deft_attr at = {.dropout = {p, training, seed}};
    return add(g, DEFT_OP_DROPOUT, name, &x, 1, &at);
}

int deft_softmax(struct deft_graph *g, const char *name, int x, int axis) {
    struct deft_attr at = {.softmax = {axis}};
    return add(g, DEFT_OP_SOFTMAX, name, &x, 1, &at);
}

int deft_loss(struct deft_graph *g, const char *name, int x, int target,
              const struct deft_loss_attr *a) {
    int in[2] = {x, target};
    struct deft_attr at = {.loss = *a};
    int y = add(g, DEFT_OP_LOSS, name, in, 2, &at);
    if (y >= 0) g->values[y].flags |= DEFT_VF_OUTPUT;
    return y;
}

int deft_roi_align(struct deft_graph *g, const char *name, int x, int boxes,
                   const struct deft_roi_attr *a) {
    if (g->status) return -1;
    if (!a) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "roi_align '%s': no attributes", name);
        return deft_graph_fail(g, DEFT_ERR_INVALID_ARG);
    }
    int in[2] = {x, boxes};
    struct deft_attr at = {.roi = *a};
    return add(g, DEFT_OP_ROI_ALIGN, name, in, 2, &at);
}

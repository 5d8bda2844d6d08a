/* onnx_export.c - a deft inference graph as an ONNX ModelProto (see io.h).
 *
 * The protobuf messages are the protobuf-c structs generated from Debian's
 * onnx.proto (the importer's bindings). Every struct, string and tensor
 * payload of one export comes from a small arena freed at the end, so the
 * emitters need no cleanup paths; an allocation failure unwinds to
 * deft_onnx_export with longjmp (the arena owns everything, nothing leaks).
 *
 * Walk: nodes the outputs need, in graph order (deft's order is topological,
 * as ONNX requires). Each deft value gets at most one ONNX name (deft's
 * name); dropout aliases its input; a conv followed by its only consumer, an
 * inference batch-norm, is written once with the folded weights under the
 * batch-norm's output name. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "onnx/onnx.pb-c.h"
#include "deft/io.h"
#include "deft/deft.h"
#include "onnx_tail.h"

#define T_FLOAT ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define T_INT8 ONNX__TENSOR_PROTO__DATA_TYPE__INT8
#define T_INT64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

struct ox {
    const struct deft_graph *g;
    const struct deft_safetensors *w;
    const struct deft_onnx_export_opts *o;
    int opset;
    jmp_buf oom;
    void **blk;
    size_t n_blk, cap_blk;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    char **vname;     /* ONNX name per deft value, NULL until written */
    char **dqname;    /* QDQ: dequantized name per deft value */
    const char **cw, **cb; /* conv weight / bias initializer per param value, when several convs share it */
    int *uses;        /* consumers among the written nodes */
    int *consumer;    /* the last such consumer node */
    bool *needed;     /* node index -> written */
    int out_value;    /* the single output (renamed / softmaxed), or -1 */
    struct deft_onnx_tensor_ref *refs;
    int n_refs, cap_refs;
    bool node_float;  /* QDQ: the node being written stays float (o->float_nodes) */
    int64_t batch;    /* the input's batch size (tail outputs' fixed batch) */
    enum deft_status status; /* a conversion error (jumps are only for memory) */
};

/* ---- arena ------------------------------------------------------------------ */

static void *oa(struct ox *x, size_t n) {
    if (x->n_blk == x->cap_blk) {
        size_t cap = x->cap_blk ? 2 * x->cap_blk : 256;
        void **nb = deft_realloc(x->blk, cap * sizeof *nb);
        if (!nb) longjmp(x->oom, 1);
        x->blk = nb;
        x->cap_blk = cap;
    }
    void *p = deft_calloc(1, n ? n : 1);
    if (!p) longjmp(x->oom, 1);
    x->blk[x->n_blk++] = p;
    return p;
}

static char *ostr(struct ox *x, const char *fmt, ...) DEFT_PRINTF(2, 3);
static char *ostr(struct ox *x, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = oa(x, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Append p to a growable array of pointers. */
static void push(struct ox *x, void ***arr, size_t *n, size_t *cap, void *p) {
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **na = oa(x, c * sizeof *na);
        if (*n) memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = c;
    }
    (*arr)[(*n)++] = p;
}

/* ---- messages --------------------------------------------------------------- */

static void add_ref(struct ox *x, const char *name, int value, enum deft_onnx_range r) {
    if (x->n_refs == x->cap_refs) {
        int c = x->cap_refs ? 2 * x->cap_refs : 64;
        struct deft_onnx_tensor_ref *nr = oa(x, (size_t)c * sizeof *nr);
        if (x->n_refs) memcpy(nr, x->refs, (size_t)x->n_refs * sizeof *nr);
        x->refs = nr;
        x->cap_refs = c;
    }
    x->refs[x->n_refs++] = (struct deft_onnx_tensor_ref){(char *)name, value, r};
}

/* A node with inputs in[0..n_in) and one output; returns the node. */
static Onnx__NodeProto *node(struct ox *x, const char *op, const char *name, const char *const *in,
                             int n_in, const char *out) {
    Onnx__NodeProto *nd = oa(x, sizeof *nd);
    onnx__node_proto__init(nd);
    nd->op_type = ostr(x, "%s", op);
    nd->name = ostr(x, "%s", name);
    nd->n_input = (size_t)n_in;
    nd->input = oa(x, (size_t)(n_in ? n_in : 1) * sizeof(char *));
    for (int i = 0; i < n_in; i++) nd->input[i] = ostr(x, "%s", in[i]);
    nd->n_output = 1;
    nd->output = oa(x, sizeof(char *));
    nd->output[0] = ostr(x, "%s", out);
    nd->attribute = oa(x, 8 * sizeof *nd->attribute);
    push(x, (void ***)&x->nodes, &x->n_nodes, &x->cap_nodes, nd);
    return nd;
}

static Onnx__AttributeProto *attr(struct ox *x, Onnx__NodeProto *nd, const char *name,
                                  Onnx__AttributeProto__AttributeType t) {
    Onnx__AttributeProto *a = oa(x, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ostr(x, "%s", name);
    a->has_type = 1;
    a->type = t;
    nd->attribute[nd->n_attribute++] = a; /* at most 8 per node (the most any op here sets: 6) */
    return a;
}
static void attr_i(struct ox *x, Onnx__NodeProto *nd, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}
static void attr_f(struct ox *x, Onnx__NodeProto *nd, const char *name, float v) {
    Onnx__AttributeProto *a = attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}
static void attr_ints(struct ox *x, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v) {
    Onnx__AttributeProto *a = attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = oa(x, (size_t)n * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)n * sizeof *v);
}
static void attr_s(struct ox *x, Onnx__NodeProto *nd, const char *name, const char *v) {
    Onnx__AttributeProto *a = attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)ostr(x, "%s", v);
}

/* An initializer of raw little-endian bytes (x86/ARM hosts are little-endian). */
static const char *init_raw(struct ox *x, const char *name, int dtype, int ndim, const int64_t *dims,
                            const void *data, size_t nbytes) {
    Onnx__TensorProto *t = oa(x, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = ostr(x, "%s", name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndim;
    t->dims = oa(x, (size_t)(ndim ? ndim : 1) * sizeof *t->dims);
    if (ndim) memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = oa(x, nbytes);
    if (nbytes) memcpy(t->raw_data.data, data, nbytes);
    push(x, (void ***)&x->inits, &x->n_inits, &x->cap_inits, t);
    return t->name;
}
static const char *init_f32(struct ox *x, const char *name, int ndim, const int64_t *dims,
                            const float *v) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    return init_raw(x, name, T_FLOAT, ndim, dims, v, (size_t)n * sizeof(float));
}
static const char *init_i64(struct ox *x, const char *name, int n, const int64_t *v) {
    return init_raw(x, name, T_INT64, 1, (int64_t[]){n}, v, (size_t)n * sizeof *v);
}
static const char *init_scalar(struct ox *x, const char *name, float v) {
    return init_raw(x, name, T_FLOAT, 0, NULL, &v, sizeof v);
}

/* ---- values ----------------------------------------------------------------- */

static const struct deft_value *val(const struct ox *x, int v) { return deft_graph_value(x->g, v); }

static bool fail(struct ox *x, enum deft_status s, const char *fmt, ...) DEFT_PRINTF(3, 4);
static bool fail(struct ox *x, enum deft_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->status) x->status = deft_set_error(s, "ONNX export: %s", msg);
    return false;
}

/* A PARAM/STATE value's data as f32 (arena copy), or NULL (error set). */
static float *weight(struct ox *x, int v) {
    const struct deft_value *a = val(x, v);
    const struct deft_tensor *t = deft_safetensors_find(x->w, a->name);
    if (!t) return fail(x, DEFT_ERR_NOT_FOUND, "no tensor for '%s'", a->name), NULL;
    if (deft_tensor_numel(t) != deft_shape_numel(&a->shape))
        return fail(x, DEFT_ERR_SHAPE, "tensor '%s' has the wrong size", a->name), NULL;
    float *f = oa(x, (size_t)deft_tensor_numel(t) * sizeof *f);
    if (deft_tensor_to_f32(t, f)) return fail(x, DEFT_ERR_FORMAT, "tensor '%s'", a->name), NULL;
    return f;
}

static int shape_dims(const struct deft_shape *s, int64_t *d) {
    for (int i = 0; i < s->ndim; i++) d[i] = s->d[i];
    return s->ndim;
}

/* The ONNX name of value v as an input: an activation already written, or a
 * constant (PARAM/STATE) written as an initializer on first use. */
static const char *act_name(struct ox *x, int v) {
    if (x->vname[v]) return x->vname[v];
    const struct deft_value *a = val(x, v);
    if (a->kind != DEFT_VALUE_PARAM && a->kind != DEFT_VALUE_STATE)
        return fail(x, DEFT_ERR_FORMAT, "value '%s' is used before it is computed", a->name), NULL;
    float *f = weight(x, v);
    if (!f) return NULL;
    int64_t d[DEFT_MAX_DIMS];
    int nd = shape_dims(&a->shape, d);
    return x->vname[v] = (char *)init_f32(x, a->name, nd, d, f);
}

static float amax_of(const struct ox *x, int v) { return x->o->act_amax ? x->o->act_amax[v] : 0; }

/* Is activation v quantized (QDQ mode and a range for it)? */
static bool quantized(const struct ox *x, int v) {
    const struct deft_value *a = val(x, v);
    return x->o->act_amax && a->kind != DEFT_VALUE_PARAM && a->kind != DEFT_VALUE_STATE && amax_of(x, v) > 0;
}

/* Input name of activation v for a quantizable op: in QDQ mode a
 * QuantizeLinear/DequantizeLinear pair (made once per tensor), else the
 * tensor itself. */
static const char *qin(struct ox *x, int v) {
    const char *n = act_name(x, v);
    if (!n || x->node_float || !quantized(x, v)) return n;
    if (x->dqname[v]) return x->dqname[v];
    const char *sc = init_scalar(x, ostr(x, "%s_scale", n), amax_of(x, v) / 127.0f);
    int8_t z = 0;
    const char *zp = init_raw(x, ostr(x, "%s_zero_point", n), T_INT8, 0, NULL, &z, 1);
    const char *q = ostr(x, "%s_quantized", n), *dq = ostr(x, "%s_dequantized", n);
    node(x, "QuantizeLinear", ostr(x, "%s_QuantizeLinear", n), (const char *[]){n, sc, zp}, 3, q);
    node(x, "DequantizeLinear", ostr(x, "%s_DequantizeLinear", n), (const char *[]){q, sc, zp}, 3, dq);
    return x->dqname[v] = (char *)dq;
}

/* The ONNX name node output v gets (recorded for later uses). */
static const char *out_name(struct ox *x, int v) {
    const char *n = val(x, v)->name;
    if (v == x->out_value && !x->o->softmax && x->o->output_name) n = x->o->output_name;
    x->vname[v] = ostr(x, "%s", n);
    add_ref(x, x->vname[v], v, DEFT_ONNX_RANGE_SAME);
    return x->vname[v];
}

/* A weight initializer; when the layer's input is quantized (`quant`), int8 with
 * one scale per slice along `axis` (0: conv/gemm output channels, 1:
 * transposed-conv output channels) followed by a DequantizeLinear, whose
 * output name is returned. A layer whose input stays float (no range: a layer
 * quantization-aware training kept float) keeps float weights too. */
static const char *weight_init(struct ox *x, const char *name, const struct deft_shape *s,
                               const float *f, int axis, bool quant) {
    int64_t d[DEFT_MAX_DIMS];
    int nd = shape_dims(s, d);
    if (!quant || x->node_float) return init_f32(x, name, nd, d, f);
    int64_t n = deft_shape_numel(s), outer = 1, ch = d[axis], inner = 1;
    for (int i = 0; i < axis; i++) outer *= d[i];
    for (int i = axis + 1; i < nd; i++) inner *= d[i];
    float *scale = oa(x, (size_t)ch * sizeof *scale);
    int8_t *q = oa(x, (size_t)n), *zp = oa(x, (size_t)ch);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t i = 0; i < inner; i++) {
                float a = fabsf(f[(o * ch + c) * inner + i]);
                if (a > scale[c]) scale[c] = a;
            }
    for (int64_t c = 0; c < ch; c++) scale[c] = scale[c] > 0 ? scale[c] / 127.0f : 1.0f / 127.0f;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t k = (o * ch + c) * inner + i;
                float r = nearbyintf(f[k] / scale[c]);
                q[k] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
            }
    const char *qn = init_raw(x, ostr(x, "%s_quantized", name), T_INT8, nd, d, q, (size_t)n);
    const char *sn = init_f32(x, ostr(x, "%s_scale", name), 1, &ch, scale);
    const char *zn = init_raw(x, ostr(x, "%s_zero_point", name), T_INT8, 1, &ch, zp, (size_t)ch);
    const char *dq = ostr(x, "%s_dequantized", name);
    Onnx__NodeProto *nd_ = node(x, "DequantizeLinear", ostr(x, "%s_DequantizeLinear", name),
                                (const char *[]){qn, sn, zn}, 3, dq);
    attr_i(x, nd_, "axis", axis);
    return dq;
}

/* ---- ops -------------------------------------------------------------------- */

static void window_attrs(struct ox *x, Onnx__NodeProto *nd, const int k[2], const int st[2],
                         const int pad[4]) {
    attr_ints(x, nd, "kernel_shape", 2, (int64_t[]){k[0], k[1]});
    attr_ints(x, nd, "strides", 2, (int64_t[]){st[0] ? st[0] : 1, st[1] ? st[1] : 1});
    attr_ints(x, nd, "pads", 4, (int64_t[]){pad[0], pad[1], pad[2], pad[3]});
}

/* The batch-norm node that is conv output v's only consumer, or -1. */
static int fold_target(struct ox *x, int v) {
    if (x->uses[v] != 1 || v == x->out_value || (val(x, v)->flags & DEFT_VF_OUTPUT)) return -1;
    const struct deft_node *c = deft_graph_node(x->g, x->consumer[v]);
    return c->op == DEFT_OP_BATCHNORM && c->in[0] == v && c->attr.bn.mode != DEFT_BN_TRAIN
               ? x->consumer[v] : -1;
}

static bool emit_conv(struct ox *x, int n) {
    const struct deft_node *nd = deft_graph_node(x->g, n);
    bool tr = nd->op == DEFT_OP_CONV_TRANSPOSE2D;
    const struct deft_value *wv = val(x, nd->in[1]);
    int64_t k = tr ? wv->shape.d[1] * nd->attr.conv.groups : wv->shape.d[0];
    float *w = weight(x, nd->in[1]), *b = oa(x, (size_t)k * sizeof *b);
    if (!w) return false;
    if (nd->attr.has_bias && nd->n_in > 2 && nd->in[2] >= 0) {
        float *bb = weight(x, nd->in[2]);
        if (!bb) return false;
        memcpy(b, bb, (size_t)k * sizeof *b);
    }
    int out = nd->out[0], bn = tr ? -1 : fold_target(x, out);
    if (bn >= 0) { /* y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta */
        const struct deft_node *bd = deft_graph_node(x->g, bn);
        float *gm = weight(x, bd->in[1]), *bt = weight(x, bd->in[2]), *mu = weight(x, bd->in[3]),
              *var = weight(x, bd->in[4]);
        if (!gm || !bt || !mu || !var) return false;
        int64_t per = deft_shape_numel(&wv->shape) / k;
        for (int64_t c = 0; c < k; c++) {
            double s = (double)gm[c] / sqrt((double)var[c] + (double)bd->attr.bn.eps);
            for (int64_t i = 0; i < per; i++) w[c * per + i] = (float)(w[c * per + i] * s);
            b[c] = (float)(((double)b[c] - mu[c]) * s + bt[c]);
        }
        out = bd->out[0];
        x->needed[bn] = false; /* written here */
    }
    const char *xin = qin(x, nd->in[0]);
    if (!xin) return false;
    int axis = tr ? (nd->attr.conv.groups == 1 ? 1 : 0) : 0;
    bool has_b = nd->attr.has_bias && nd->n_in > 2 && nd->in[2] >= 0;
    /* weights shared by several convs (RetinaNet's subnets): one initializer, written by the first */
    bool share = bn < 0 && x->cw && x->cw[nd->in[1]] && (!has_b || x->cb[nd->in[2]]);
    const char *wn = share ? x->cw[nd->in[1]] : weight_init(x, wv->name, &wv->shape, w, axis, quantized(x, nd->in[0]));
    const char *bn_ = share && has_b ? x->cb[nd->in[2]]
                                     : init_f32(x, has_b ? val(x, nd->in[2])->name : ostr(x, "%s.bias", nd->name),
                                                1, &k, b);
    if (bn < 0 && x->cw) {
        x->cw[nd->in[1]] = wn;
        if (has_b) x->cb[nd->in[2]] = bn_;
    }
    Onnx__NodeProto *o = node(x, tr ? "ConvTranspose" : "Conv", nd->name,
                              (const char *[]){xin, wn, bn_}, 3, out_name(x, out));
    const struct deft_conv_attr *a = &nd->attr.conv;
    window_attrs(x, o, (int[]){(int)wv->shape.d[2], (int)wv->shape.d[3]}, a->stride, a->pad);
    attr_ints(x, o, "dilations", 2, (int64_t[]){a->dilation[0] ? a->dilation[0] : 1,
                                                a->dilation[1] ? a->dilation[1] : 1});
    attr_i(x, o, "group", a->groups ? a->groups : 1);
    if (tr) attr_ints(x, o, "output_padding", 2, (int64_t[]){a->output_padding[0], a->output_padding[1]});
    return true;
}

static bool emit_batchnorm(struct ox *x, const struct deft_node *nd) {
    const char *in[5] = {act_name(x, nd->in[0])};
    for (int i = 1; i < 5; i++) in[i] = act_name(x, nd->in[i]);
    for (int i = 0; i < 5; i++)
        if (!in[i]) return false;
    Onnx__NodeProto *o = node(x, "BatchNormalization", nd->name, in, 5, out_name(x, nd->out[0]));
    attr_f(x, o, "epsilon", nd->attr.bn.eps);
    return true;
}

static const char *shared_scalar(struct ox *x, const char *name, float v) {
    for (size_t i = 0; i < x->n_inits; i++)
        if (!strcmp(x->inits[i]->name, name)) return x->inits[i]->name;
    return init_scalar(x, name, v);
}

static bool emit_act(struct ox *x, const struct deft_node *nd) {
    const char *in = act_name(x, nd->in[0]);
    if (!in) return false;
    int v = nd->out[0];
    const char *nm = nd->name;
    switch (nd->attr.act.kind) {
    case DEFT_ACT_RELU: node(x, "Relu", nm, &in, 1, out_name(x, v)); return true;
    case DEFT_ACT_SIGMOID: node(x, "Sigmoid", nm, &in, 1, out_name(x, v)); return true;
    case DEFT_ACT_TANH: node(x, "Tanh", nm, &in, 1, out_name(x, v)); return true;
    case DEFT_ACT_LEAKY_RELU:
        attr_f(x, node(x, "LeakyRelu", nm, &in, 1, out_name(x, v)), "alpha", nd->attr.act.alpha);
        return true;
    case DEFT_ACT_RELU6:
        if (x->o->relu6_as_relu) { /* Relu(x) - Relu(x - 6) */
            const char *six = shared_scalar(x, "relu6_six", 6.0f);
            const char *a = ostr(x, "%s_relu", nm), *s = ostr(x, "%s_minus6", nm),
                       *r = ostr(x, "%s_relu_minus6", nm);
            node(x, "Relu", a, &in, 1, a);
            add_ref(x, a, nd->in[0], DEFT_ONNX_RANGE_SAME);
            node(x, "Sub", s, (const char *[]){in, six}, 2, s);
            add_ref(x, s, nd->in[0], DEFT_ONNX_RANGE_PLUS6);
            node(x, "Relu", r, (const char *[]){s}, 1, r);
            add_ref(x, r, nd->in[0], DEFT_ONNX_RANGE_SAME);
            node(x, "Sub", nm, (const char *[]){a, r}, 2, out_name(x, v));
        } else {
            node(x, "Clip", nm,
                 (const char *[]){in, shared_scalar(x, "relu6_min", 0.0f),
                                  shared_scalar(x, "relu6_max", 6.0f)},
                 3, out_name(x, v));
        }
        return true;
    case DEFT_ACT_SWISH: {
        const char *s = ostr(x, "%s_sigmoid", nm);
        node(x, "Sigmoid", s, &in, 1, s);
        add_ref(x, s, v, DEFT_ONNX_RANGE_UNIT);
        node(x, "Mul", nm, (const char *[]){in, s}, 2, out_name(x, v));
        return true;
    }
    case DEFT_ACT_HARDSWISH:
        if (x->opset >= 14) {
            node(x, "HardSwish", nm, &in, 1, out_name(x, v));
        } else { /* x * HardSigmoid(x) = x * clip(x/6 + 1/2, 0, 1) */
            const char *h = ostr(x, "%s_hardsigmoid", nm);
            Onnx__NodeProto *o = node(x, "HardSigmoid", h, &in, 1, h);
            attr_f(x, o, "alpha", 1.0f / 6.0f);
            attr_f(x, o, "beta", 0.5f);
            add_ref(x, h, v, DEFT_ONNX_RANGE_UNIT);
            node(x, "Mul", nm, (const char *[]){in, h}, 2, out_name(x, v));
        }
        return true;
    case DEFT_ACT_HARDSIGMOID: { /* ONNX's default alpha is 0.2, PyTorch's 1/6 */
        Onnx__NodeProto *o = node(x, "HardSigmoid", nm, &in, 1, out_name(x, v));
        attr_f(x, o, "alpha", 1.0f / 6.0f);
        attr_f(x, o, "beta", 0.5f);
        return true;
    }
    case DEFT_ACT_MISH: { /* ONNX has Mish from opset 18 only: x * Tanh(Softplus(x)) */
        const char *sp = ostr(x, "%s_softplus", nm), *th = ostr(x, "%s_tanh", nm);
        node(x, "Softplus", sp, &in, 1, sp);
        add_ref(x, sp, nd->in[0], DEFT_ONNX_RANGE_SAME); /* softplus(x) <= max(x, 0) + ln 2 */
        node(x, "Tanh", th, &sp, 1, th);
        add_ref(x, th, v, DEFT_ONNX_RANGE_UNIT);        /* tanh of a positive value: (0, 1) */
        node(x, "Mul", nm, (const char *[]){in, th}, 2, out_name(x, v));
        return true;
    }
    case DEFT_ACT_ELU:
        attr_f(x, node(x, "Elu", nm, &in, 1, out_name(x, v)), "alpha", nd->attr.act.alpha);
        return true;
    default: {
        static const char *const math_op[DEFT_ACT_COUNT] = {
            [DEFT_ACT_EXP] = "Exp", [DEFT_ACT_LOG] = "Log", [DEFT_ACT_SQRT] = "Sqrt", [DEFT_ACT_ABS] = "Abs",
            [DEFT_ACT_NEG] = "Neg", [DEFT_ACT_RECIPROCAL] = "Reciprocal", [DEFT_ACT_SOFTPLUS] = "Softplus",
            [DEFT_ACT_SOFTSIGN] = "Softsign", [DEFT_ACT_ERF] = "Erf"};
        enum deft_act_kind k = nd->attr.act.kind;
        if ((unsigned)k < DEFT_ACT_COUNT && math_op[k]) {
            node(x, math_op[k], nm, &in, 1, out_name(x, v));
            return true;
        }
        return fail(x, DEFT_ERR_UNSUPPORTED, "%s: activation %s", nm, deft_act_name(k));
    }
    }
}

/* Input of an op quantized only in the TensorRT-fusion placement. */
static const char *fin(struct ox *x, int v) { return x->o->qdq_fusion ? qin(x, v) : act_name(x, v); }

static bool emit_pool(struct ox *x, const struct deft_node *nd) {
    const char *in = fin(x, nd->in[0]);
    if (!in) return false;
    const struct deft_pool_attr *a = &nd->attr.pool;
    bool avg = a->kind == DEFT_POOL_AVG;
    Onnx__NodeProto *o = node(x, avg ? "AveragePool" : "MaxPool", nd->name, &in, 1,
                              out_name(x, nd->out[0]));
    window_attrs(x, o, a->kernel, a->stride, a->pad);
    attr_i(x, o, "ceil_mode", a->ceil_mode);
    if (avg) attr_i(x, o, "count_include_pad", a->count_include_pad);
    return true;
}

/* Slice over the dims whose range is not the whole dim. */
static bool emit_slice(struct ox *x, const struct deft_node *nd) {
    const char *in = act_name(x, nd->in[0]);
    if (!in) return false;
    const struct deft_shape *s = &val(x, nd->in[0])->shape;
    int64_t st[DEFT_MAX_DIMS], en[DEFT_MAX_DIMS], ax[DEFT_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < s->ndim; d++) {
        int64_t b = nd->attr.slice.start[d], e = nd->attr.slice.end[d];
        if (e > s->d[d] || e == -1) e = s->d[d];
        if (b == 0 && e == s->d[d]) continue;
        if (d == 0 && x->o->dynamic_batch)
            return fail(x, DEFT_ERR_UNSUPPORTED, "%s slices the batch: no dynamic batch", nd->name);
        st[n] = b;
        en[n] = e;
        ax[n++] = d;
    }
    if (!n) { /* the whole tensor: an Identity */
        node(x, "Identity", nd->name, &in, 1, out_name(x, nd->out[0]));
        return true;
    }
    const char *i3[4] = {in, init_i64(x, ostr(x, "%s_starts", nd->name), n, st),
                         init_i64(x, ostr(x, "%s_ends", nd->name), n, en),
                         init_i64(x, ostr(x, "%s_axes", nd->name), n, ax)};
    node(x, "Slice", nd->name, i3, 4, out_name(x, nd->out[0]));
    return true;
}

static bool emit_pad(struct ox *x, const struct deft_node *nd) {
    const char *in = act_name(x, nd->in[0]);
    if (!in) return false;
    int r = val(x, nd->in[0])->shape.ndim;
    int64_t p[2 * DEFT_MAX_DIMS];
    for (int d = 0; d < r; d++) {
        p[d] = nd->attr.pad.before[d];
        p[d + r] = nd->attr.pad.after[d];
    }
    const char *i2[2] = {in, init_i64(x, ostr(x, "%s_pads", nd->name), 2 * r, p)};
    attr_s(x, node(x, "Pad", nd->name, i2, 2, out_name(x, nd->out[0])), "mode", "constant");
    return true;
}

/* [N, ...] -> [N, rest] is a Flatten (the form every consumer reads);
 * otherwise Reshape with 0 ("keep") for the batch dimension. */
static bool emit_reshape(struct ox *x, const struct deft_node *nd) {
    const char *in = act_name(x, nd->in[0]);
    if (!in) return false;
    const struct deft_shape *is = &val(x, nd->in[0])->shape, *os = &val(x, nd->out[0])->shape;
    if (os->ndim == 2 && is->ndim >= 2 && os->d[0] == is->d[0]) {
        attr_i(x, node(x, "Flatten", nd->name, &in, 1, out_name(x, nd->out[0])), "axis", 1);
        return true;
    }
    int64_t d[DEFT_MAX_DIMS];
    for (int i = 0; i < os->ndim; i++) d[i] = os->d[i];
    if (os->d[0] == is->d[0]) d[0] = 0;
    else if (x->o->dynamic_batch)
        return fail(x, DEFT_ERR_UNSUPPORTED, "%s reshapes the batch: no dynamic batch", nd->name);
    const char *i2[2] = {in, init_i64(x, ostr(x, "%s_shape", nd->name), os->ndim, d)};
    node(x, "Reshape", nd->name, i2, 2, out_name(x, nd->out[0]));
    return true;
}

static bool emit_transpose(struct ox *x, const struct deft_node *nd) {
    const char *in = act_name(x, nd->in[0]);
    if (!in) return false;
    attr_ints(x, node(x, "Transpose", nd->name, &in, 1, out_name(x, nd->out[0])), "perm",
              nd->attr.shape.ndim, nd->attr.shape.d);
    return true;
}

static bool emit_upsample(struct ox *x, const struct deft_node *nd) {
    const char *in = act_name(x, nd->in[0]);
    if (!in) return false;
    const struct deft_shape *is = &val(x, nd->in[0])->shape, *os = &val(x, nd->out[0])->shape;
    const char *roi = x->opset < 13 ? init_raw(x, ostr(x, "%s_roi", nd->name), T_FLOAT, 1,
                                               (int64_t[]){0}, NULL, 0) : "";
    const char *i4[4] = {in, roi, "", ""};
    int n_in = 3;
    if (os->d[2] % is->d[2] == 0 && os->d[3] % is->d[3] == 0) {
        float sc[4] = {1, 1, (float)(os->d[2] / is->d[2]), (float)(os->d[3] / is->d[3])};
        i4[2] = init_f32(x, ostr(x, "%s_scales", nd->name), 1, (int64_t[]){4}, sc);
    } else {
        if (x->o->dynamic_batch)
            return fail(x, DEFT_ERR_UNSUPPORTED, "%s: a non-integer resize needs a fixed batch", nd->name);
        i4[2] = x->opset < 13 ? init_raw(x, ostr(x, "%s_scales", nd->name), T_FLOAT, 1,
                                         (int64_t[]){0}, NULL, 0) : "";
        i4[3] = init_i64(x, ostr(x, "%s_sizes", nd->name), 4, (int64_t[]){os->d[0], os->d[1], os->d[2], os->d[3]});
        n_in = 4;
    }
    Onnx__NodeProto *o = node(x, "Resize", nd->name, i4, n_in, out_name(x, nd->out[0]));
    if (nd->attr.upsample.mode == DEFT_UPSAMPLE_NEAREST) {
        attr_s(x, o, "mode", "nearest");
        attr_s(x, o, "coordinate_transformation_mode", "asymmetric");
        attr_s(x, o, "nearest_mode", "floor");
    } else {
        attr_s(x, o, "mode", "linear");
        attr_s(x, o, "coordinate_transformation_mode",
               nd->attr.upsample.align_corners ? "align_corners" : "half_pixel");
    }
    return true;
}

static bool emit_linear(struct ox *x, const struct deft_node *nd) {
    const char *in = qin(x, nd->in[0]);
    const struct deft_value *wv = val(x, nd->in[1]);
    float *w = weight(x, nd->in[1]);
    if (!in || !w) return false;
    const char *i3[3] = {in, weight_init(x, wv->name, &wv->shape, w, 0, quantized(x, nd->in[0])), NULL};
    int n_in = 2;
    if (nd->attr.has_bias && nd->n_in > 2 && nd->in[2] >= 0) {
        if (!(i3[2] = act_name(x, nd->in[2]))) return false;
        n_in = 3;
    }
    attr_i(x, node(x, "Gemm", nd->name, i3, n_in, out_name(x, nd->out[0])), "transB", 1);
    return true;
}

static bool emit_binary(struct ox *x, const struct deft_node *nd) {
    bool add = nd->op == DEFT_OP_ADD;
    /* both inputs of a residual Add are quantized, so TensorRT fuses it into the conv */
    const char *a = add ? fin(x, nd->in[0]) : act_name(x, nd->in[0]);
    const char *b = add ? fin(x, nd->in[1]) : act_name(x, nd->in[1]);
    if (!a || !b) return false;
    node(x, add ? "Add" : "Mul", nd->name, (const char *[]){a, b}, 2, out_name(x, nd->out[0]));
    return true;
}

/* Column k of deft's boxes [R, 5] -> [R, 1]. */
static const char *box_col(struct ox *x, const struct deft_node *nd, const char *bx, int64_t k) {
    const char *o = ostr(x, "%s_col%d", nd->name, (int)k);
    const char *s4[4] = {bx, init_i64(x, ostr(x, "%s_col%d_starts", nd->name, (int)k), 1, &k),
                         init_i64(x, ostr(x, "%s_col%d_ends", nd->name, (int)k), 1, (int64_t[]){k + 1}),
                         init_i64(x, ostr(x, "%s_col%d_axes", nd->name, (int)k), 1, (int64_t[]){1})};
    node(x, "Slice", o, s4, 4, o);
    return o;
}

static const char *bin_op(struct ox *x, const char *op, const char *a, const char *b, const char *out) {
    node(x, op, out, (const char *[]){a, b}, 2, out);
    return out;
}

/* Crop-and-resize along one axis (y: lo/hi columns 2, 4; x: 1, 3) as
 * roi_geom_init computes it: n = box / (image - 1), first sample y0 = n1 * f,
 * step = (n2 - n1) * f / (out - 1) (out 1: the centre, step 0), f = size - 1.
 * Gives the RoiAlign (half_pixel, one sample per bin) bounds r1, r2 whose bin
 * centres are those samples, and the samples' in-range mask [R, out] (deft
 * and TF: a sample outside [0, f] is 0, RoiAlign would clamp it). */
static void crop_axis(struct ox *x, const struct deft_node *nd, const char *bx, char ax, int lo, int out,
                      int image, int64_t size, const char **r1, const char **r2, const char **mask) {
    const char *nm = ostr(x, "%s_%c", nd->name, ax);
    float f = (float)(size - 1);
    const char *den = init_scalar(x, ostr(x, "%s_den", nm), (float)(image - 1));
    const char *fs = init_scalar(x, ostr(x, "%s_f", nm), f);
    const char *n1 = bin_op(x, "Div", box_col(x, nd, bx, lo), den, ostr(x, "%s_n1", nm));
    const char *n2 = bin_op(x, "Div", box_col(x, nd, bx, lo + 2), den, ostr(x, "%s_n2", nm));
    const char *y0, *step;
    if (out > 1) {
        y0 = bin_op(x, "Mul", n1, fs, ostr(x, "%s_y0", nm));
        const char *d = bin_op(x, "Mul", bin_op(x, "Sub", n2, n1, ostr(x, "%s_dn", nm)), fs, ostr(x, "%s_df", nm));
        step = bin_op(x, "Div", d, init_scalar(x, ostr(x, "%s_bins", nm), (float)(out - 1)), ostr(x, "%s_step", nm));
    } else {
        const char *mid = bin_op(x, "Mul", bin_op(x, "Add", n1, n2, ostr(x, "%s_sum", nm)),
                                 init_scalar(x, ostr(x, "%s_half", nm), 0.5f), ostr(x, "%s_mid", nm));
        y0 = bin_op(x, "Mul", mid, fs, ostr(x, "%s_y0", nm));
        step = bin_op(x, "Mul", y0, init_scalar(x, ostr(x, "%s_zero", nm), 0.0f), ostr(x, "%s_step", nm));
    }
    const char *half = init_scalar(x, ostr(x, "%s_h", nm), 0.5f);
    *r1 = bin_op(x, "Add", bin_op(x, "Sub", y0, bin_op(x, "Mul", step, half, ostr(x, "%s_hs", nm)),
                                  ostr(x, "%s_a", nm)), half, ostr(x, "%s_r1", nm));
    *r2 = bin_op(x, "Add", *r1, bin_op(x, "Mul", step, init_scalar(x, ostr(x, "%s_out", nm), (float)out),
                                       ostr(x, "%s_span", nm)), ostr(x, "%s_r2", nm));
    float *idx = oa(x, (size_t)out * sizeof *idx);
    for (int i = 0; i < out; i++) idx[i] = (float)i;
    const char *ph = init_f32(x, ostr(x, "%s_idx", nm), 2, (int64_t[]){1, out}, idx);
    const char *smp = bin_op(x, "Add", y0, bin_op(x, "Mul", ph, step, ostr(x, "%s_off", nm)), ostr(x, "%s_s", nm));
    const char *ge = bin_op(x, "GreaterOrEqual", smp, init_scalar(x, ostr(x, "%s_lo", nm), 0.0f), ostr(x, "%s_ge", nm));
    const char *le = bin_op(x, "LessOrEqual", smp, fs, ostr(x, "%s_le", nm));
    const char *in = bin_op(x, "And", ge, le, ostr(x, "%s_in", nm));
    *mask = ostr(x, "%s_mask", nm);
    attr_i(x, node(x, "Cast", *mask, &in, 1, *mask), "to", T_FLOAT);
}

/* Crop-and-resize (TAO's CropAndResize, no ONNX operator): RoiAlign with one
 * sample per bin whose bin centres are the crop's sample points, times the
 * crop's in-range mask (opset 16: half_pixel, no 1-pixel minimum RoI). */
static bool emit_crop_resize(struct ox *x, const struct deft_node *nd, const char *in, const char *bx,
                             const char *bi) {
    const struct deft_roi_attr *a = &nd->attr.roi;
    if (x->opset < 16)
        return fail(x, DEFT_ERR_UNSUPPORTED, "%s: crop_and_resize is written as RoiAlign (half_pixel): opset 16+",
                    nd->name);
    const struct deft_shape *fs = &val(x, nd->in[0])->shape;
    const char *y1, *y2, *x1, *x2, *my, *mx;
    crop_axis(x, nd, bx, 'y', 2, a->out_h, a->image_h, fs->d[2], &y1, &y2, &my);
    crop_axis(x, nd, bx, 'x', 1, a->out_w, a->image_w, fs->d[3], &x1, &x2, &mx);
    const char *rois = ostr(x, "%s_crop_rois", nd->name), *raw = ostr(x, "%s_align", nd->name);
    attr_i(x, node(x, "Concat", rois, (const char *[]){x1, y1, x2, y2}, 4, rois), "axis", 1);
    Onnx__NodeProto *r = node(x, "RoiAlign", raw, (const char *[]){in, rois, bi}, 3, raw);
    add_ref(x, raw, nd->out[0], DEFT_ONNX_RANGE_SAME); /* the crops before the in-range mask */
    attr_i(x, r, "output_height", a->out_h);
    attr_i(x, r, "output_width", a->out_w);
    attr_i(x, r, "sampling_ratio", 1);
    attr_f(x, r, "spatial_scale", 1.0f);
    attr_s(x, r, "mode", "avg");
    attr_s(x, r, "coordinate_transformation_mode", "half_pixel");
    const char *my4 = ostr(x, "%s_my4", nd->name), *mx4 = ostr(x, "%s_mx4", nd->name);
    node(x, "Unsqueeze", my4, (const char *[]){my, init_i64(x, ostr(x, "%s_ax13", nd->name), 2, (int64_t[]){1, 3})},
         2, my4);
    node(x, "Unsqueeze", mx4, (const char *[]){mx, init_i64(x, ostr(x, "%s_ax12", nd->name), 2, (int64_t[]){1, 2})},
         2, mx4);
    const char *m = bin_op(x, "Mul", my4, mx4, ostr(x, "%s_mask", nd->name));
    node(x, "Mul", nd->name, (const char *[]){raw, m}, 2, out_name(x, nd->out[0]));
    return true;
}

/* RoIAlign (opset 10+): deft's boxes [R, 5] split into ONNX's rois [R, 4] and
 * int64 batch_indices [R]. aligned is coordinate_transformation_mode
 * half_pixel, which exists from opset 16 (before it: output_half_pixel only).
 * Crop-and-resize: emit_crop_resize. */
/* TensorRT's CropAndResizeDynamic on rois [N, B, 4, 1]: [N, B, C, h, w] -> [N*B, C, h, w]. */
static bool emit_crop_plugin(struct ox *x, const struct deft_node *nd, const char *in, const char *bx) {
    const struct deft_roi_attr *a = &nd->attr.roi;
    const struct deft_shape *fs = &val(x, nd->in[0])->shape;
    const char *raw = ostr(x, "%s_crop", nd->name);
    Onnx__NodeProto *r = node(x, "CropAndResizeDynamic", raw, (const char *[]){in, bx}, 2, raw);
    add_ref(x, raw, nd->out[0], DEFT_ONNX_RANGE_SAME); /* the crops before the reshape: the same values */
    attr_i(x, r, "crop_width", a->out_w);
    attr_i(x, r, "crop_height", a->out_h);
    const char *shape = init_i64(x, ostr(x, "%s_crop_dims", nd->name), 4,
                                 (int64_t[]){-1, fs->d[1], a->out_h, a->out_w});
    node(x, "Reshape", nd->name, (const char *[]){raw, shape}, 2, out_name(x, nd->out[0]));
    return true;
}

static bool emit_roi_align(struct ox *x, const struct deft_node *nd) {
    const struct deft_roi_attr *a = &nd->attr.roi;
    if (a->mode == DEFT_ROI_CROP_RESIZE && x->o->crop_plugin) {
        const char *in = act_name(x, nd->in[0]), *bx = act_name(x, nd->in[1]);
        return in && bx && emit_crop_plugin(x, nd, in, bx);
    }
    if (a->aligned && x->opset < 16)
        return fail(x, DEFT_ERR_UNSUPPORTED, "%s: aligned RoIAlign (half_pixel) needs opset 16", nd->name);
    const char *in = act_name(x, nd->in[0]), *bx = act_name(x, nd->in[1]);
    if (!in || !bx) return false;
    int64_t zero = 0;
    const char *rois = ostr(x, "%s_rois", nd->name), *bi = ostr(x, "%s_batch_index", nd->name);
    const char *g2[2] = {bx, init_raw(x, ostr(x, "%s_index0", nd->name), T_INT64, 0, NULL, &zero, sizeof zero)};
    const char *bf = ostr(x, "%s_batch_index_f", nd->name);
    attr_i(x, node(x, "Gather", bf, g2, 2, bf), "axis", 1);
    attr_i(x, node(x, "Cast", bi, &bf, 1, bi), "to", T_INT64);
    if (a->mode == DEFT_ROI_CROP_RESIZE) return emit_crop_resize(x, nd, in, bx, bi);
    const char *s4[4] = {bx, init_i64(x, ostr(x, "%s_rois_starts", nd->name), 1, (int64_t[]){1}),
                         init_i64(x, ostr(x, "%s_rois_ends", nd->name), 1, (int64_t[]){5}),
                         init_i64(x, ostr(x, "%s_rois_axes", nd->name), 1, (int64_t[]){1})};
    node(x, "Slice", rois, s4, 4, rois);
    Onnx__NodeProto *r = node(x, "RoiAlign", nd->name, (const char *[]){in, rois, bi}, 3, out_name(x, nd->out[0]));
    attr_i(x, r, "output_height", a->out_h);
    attr_i(x, r, "output_width", a->out_w);
    attr_i(x, r, "sampling_ratio", a->sampling_ratio > 0 ? a->sampling_ratio : 0);
    attr_f(x, r, "spatial_scale", a->spatial_scale);
    attr_s(x, r, "mode", "avg");
    if (x->opset >= 16) attr_s(x, r, "coordinate_transformation_mode", a->aligned ? "half_pixel" : "output_half_pixel");
    return true;
}

static bool emit_node(struct ox *x, int n) {
    const struct deft_node *nd = deft_graph_node(x->g, n);
    const char *in;
    x->node_float = x->o->float_nodes && x->o->float_nodes[n];
    switch (nd->op) {
    case DEFT_OP_CONV2D: case DEFT_OP_CONV_TRANSPOSE2D: return emit_conv(x, n);
    case DEFT_OP_BATCHNORM: return emit_batchnorm(x, nd);
    case DEFT_OP_ACT: return emit_act(x, nd);
    case DEFT_OP_POOL: return emit_pool(x, nd);
    case DEFT_OP_GLOBAL_AVGPOOL:
        if (!(in = fin(x, nd->in[0]))) return false;
        node(x, "GlobalAveragePool", nd->name, &in, 1, out_name(x, nd->out[0]));
        return true;
    case DEFT_OP_ADD: case DEFT_OP_MUL: return emit_binary(x, nd);
    case DEFT_OP_CONCAT: {
        const char *ins[DEFT_MAX_INPUTS];
        for (int i = 0; i < nd->n_in; i++)
            if (!(ins[i] = act_name(x, nd->in[i]))) return false;
        attr_i(x, node(x, "Concat", nd->name, ins, nd->n_in, out_name(x, nd->out[0])), "axis",
               nd->attr.concat.axis);
        return true;
    }
    case DEFT_OP_SLICE: return emit_slice(x, nd);
    case DEFT_OP_PAD: return emit_pad(x, nd);
    case DEFT_OP_RESHAPE: return emit_reshape(x, nd);
    case DEFT_OP_TRANSPOSE: return emit_transpose(x, nd);
    case DEFT_OP_UPSAMPLE: return emit_upsample(x, nd);
    case DEFT_OP_LINEAR: return emit_linear(x, nd);
    case DEFT_OP_ROI_ALIGN: return emit_roi_align(x, nd);
    case DEFT_OP_DROPOUT: /* the identity at inference */
        if (!(in = act_name(x, nd->in[0]))) return false;
        x->vname[nd->out[0]] = (char *)in;
        return true;
    case DEFT_OP_SOFTMAX: {
        int r = val(x, nd->in[0])->shape.ndim, axis = nd->attr.softmax.axis;
        if (x->opset < 13 && axis != r - 1)
            return fail(x, DEFT_ERR_UNSUPPORTED, "%s: softmax over a middle axis needs opset 13",
                        nd->name);
        if (!(in = act_name(x, nd->in[0]))) return false;
        attr_i(x, node(x, "Softmax", nd->name, &in, 1, out_name(x, nd->out[0])), "axis", axis);
        return true;
    }
    default:
        return fail(x, DEFT_ERR_UNSUPPORTED, "node '%s': op %s has no ONNX form", nd->name,
                    deft_op_name(nd->op));
    }
}

/* ---- graph ------------------------------------------------------------------ */

static bool is_output(const struct ox *x, int v) {
    const struct deft_value *a = val(x, v);
    if (!(a->flags & DEFT_VF_OUTPUT) || a->kind != DEFT_VALUE_NODE || a->producer < 0) return false;
    return deft_op_is_forward(deft_graph_node(x->g, a->producer)->op); /* not the loss, not gradients */
}

/* Mark the nodes the outputs need; count uses. Returns the number of outputs. */
static int mark_needed(struct ox *x) {
    int nv = deft_graph_num_values(x->g), nn = deft_graph_num_nodes(x->g), n_out = 0;
    bool *live = oa(x, (size_t)nv);
    for (int v = 0; v < nv; v++)
        if (is_output(x, v)) {
            live[v] = true;
            x->out_value = v;
            n_out++;
        }
    for (int n = nn - 1; n >= 0; n--) {
        const struct deft_node *nd = deft_graph_node(x->g, n);
        bool need = false;
        for (int o = 0; o < nd->n_out; o++) need |= nd->out[o] >= 0 && live[nd->out[o]];
        if (!need) continue;
        x->needed[n] = true;
        for (int i = 0; i < nd->n_in; i++)
            if (nd->in[i] >= 0) {
                live[nd->in[i]] = true;
                x->uses[nd->in[i]]++;
                if (x->consumer[nd->in[i]] < n) x->consumer[nd->in[i]] = n;
            }
    }
    if (n_out != 1) x->out_value = -1;
    return n_out;
}

/* A typed value of ndim dims; a dim < 0 is the batch (symbolic "batch" or
 * the input's batch size). */
static Onnx__ValueInfoProto *value_info_dims(struct ox *x, const char *name, int elem, int ndim,
                                             const int64_t *dims) {
    Onnx__ValueInfoProto *vi = oa(x, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = ostr(x, "%s", name);
    Onnx__TypeProto *tp = oa(x, sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = oa(x, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    Onnx__TensorShapeProto *sp = oa(x, sizeof *sp);
    onnx__tensor_shape_proto__init(sp);
    sp->n_dim = (size_t)ndim;
    sp->dim = oa(x, (size_t)(ndim ? ndim : 1) * sizeof *sp->dim);
    for (int d = 0; d < ndim; d++) {
        Onnx__TensorShapeProto__Dimension *dm = oa(x, sizeof *dm);
        onnx__tensor_shape_proto__dimension__init(dm);
        if (dims[d] < 0 && x->o->dynamic_batch) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dm->dim_param = ostr(x, "batch");
        } else {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dm->dim_value = dims[d] < 0 ? x->batch : dims[d];
        }
        sp->dim[d] = dm;
    }
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    tt->shape = sp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    return vi;
}

/* A float graph value: dimension 0 is the batch. */
static Onnx__ValueInfoProto *value_info(struct ox *x, const char *name, const struct deft_shape *s) {
    int64_t d[DEFT_MAX_DIMS];
    int nd = shape_dims(s, d);
    if (nd && x->o->dynamic_batch) d[0] = -1;
    return value_info_dims(x, name, T_FLOAT, nd, d);
}

/* The task's nodes after the graph (deft/io.h, onnx_tail.c), with their
 * constants; its outputs are the model's. */
static enum deft_status emit_tail_nodes(struct ox *x, const struct deft_onnx_tail *t) {
    if (t->status) return t->status;
    if (t->n_out < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX export: the tail declares no output");
    for (int i = 0; i < t->n_cst; i++) {
        const struct tail_const *c = &t->cst[i];
        init_raw(x, c->name, (int)c->type, c->ndim, c->dims, c->data, c->nbytes);
    }
    for (int i = 0; i < t->n_node; i++) {
        const struct tail_node *tn = &t->node[i];
        Onnx__NodeProto *nd = oa(x, sizeof *nd);
        onnx__node_proto__init(nd);
        nd->op_type = ostr(x, "%s", tn->op);
        nd->name = ostr(x, "%s", tn->name);
        nd->n_input = (size_t)tn->n_in;
        nd->input = oa(x, (size_t)(tn->n_in ? tn->n_in : 1) * sizeof(char *));
        for (int k = 0; k < tn->n_in; k++) nd->input[k] = ostr(x, "%s", tn->in[k]);
        nd->n_output = (size_t)tn->n_out;
        nd->output = oa(x, (size_t)tn->n_out * sizeof(char *));
        for (int k = 0; k < tn->n_out; k++) nd->output[k] = ostr(x, "%s", tn->out[k]);
        nd->attribute = oa(x, (size_t)(tn->n_attr ? tn->n_attr : 1) * sizeof *nd->attribute);
        for (int k = 0; k < tn->n_attr; k++) {
            const struct tail_attr *a = &tn->attr[k];
            Onnx__AttributeProto *ap = oa(x, sizeof *ap);
            onnx__attribute_proto__init(ap);
            ap->name = ostr(x, "%s", a->name);
            ap->has_type = 1;
            switch (a->type) {
            case TAIL_ATTR_INT:
                ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
                ap->has_i = 1;
                ap->i = a->i;
                break;
            case TAIL_ATTR_FLOAT:
                ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
                ap->has_f = 1;
                ap->f = a->f;
                break;
            case TAIL_ATTR_INTS:
                ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
                ap->n_ints = (size_t)a->n_ints;
                ap->ints = oa(x, (size_t)(a->n_ints ? a->n_ints : 1) * sizeof *ap->ints);
                if (a->n_ints) memcpy(ap->ints, a->ints, (size_t)a->n_ints * sizeof *a->ints);
                break;
            case TAIL_ATTR_FLOATS:
                ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
                ap->n_floats = (size_t)a->n_floats;
                ap->floats = oa(x, (size_t)(a->n_floats ? a->n_floats : 1) * sizeof *ap->floats);
                if (a->n_floats) memcpy(ap->floats, a->floats, (size_t)a->n_floats * sizeof *a->floats);
                break;
            case TAIL_ATTR_STRING:
                ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
                ap->has_s = 1;
                ap->s.len = strlen(a->s);
                ap->s.data = (uint8_t *)ostr(x, "%s", a->s);
                break;
            }
            nd->attribute[nd->n_attribute++] = ap;
        }
        push(x, (void ***)&x->nodes, &x->n_nodes, &x->cap_nodes, nd);
    }
    return DEFT_OK;
}

static enum deft_status emit_tail(struct ox *x, const struct deft_onnx_tail *t, Onnx__GraphProto *gp) {
    enum deft_status s = emit_tail_nodes(x, t);
    if (s) return s;
    Onnx__ValueInfoProto **outs = oa(x, (size_t)t->n_out * sizeof *outs);
    for (int i = 0; i < t->n_out; i++)
        outs[i] = value_info_dims(x, t->out[i].name, (int)t->out[i].type, t->out[i].ndim, t->out[i].dims);
    gp->output = outs;
    gp->n_output = (size_t)t->n_out;
    return DEFT_OK;
}

static bool uses_value(const struct ox *x, int n, int v) {
    const struct deft_node *nd = deft_graph_node(x->g, n);
    for (int i = 0; i < nd->n_in; i++)
        if (nd->in[i] == v) return true;
    return false;
}

static enum deft_status build(struct ox *x, Onnx__ModelProto *m) {
    int nv = deft_graph_num_values(x->g), nn = deft_graph_num_nodes(x->g);
    x->vname = oa(x, (size_t)nv * sizeof *x->vname);
    x->dqname = oa(x, (size_t)nv * sizeof *x->dqname);
    x->cw = oa(x, (size_t)nv * sizeof *x->cw);
    x->cb = oa(x, (size_t)nv * sizeof *x->cb);
    x->uses = oa(x, (size_t)nv * sizeof *x->uses);
    x->consumer = oa(x, (size_t)nv * sizeof *x->consumer);
    x->needed = oa(x, (size_t)(nn ? nn : 1));
    int n_out = mark_needed(x);
    if (n_out == 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX export: the graph has no output value");
    if (x->o->softmax && (x->out_value < 0 || x->o->tail))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX export: softmax needs a single output and no tail");
    Onnx__GraphProto *gp = oa(x, sizeof *gp);
    onnx__graph_proto__init(gp);
    gp->name = ostr(x, "%s", "deft");
    Onnx__ValueInfoProto **ins = oa(x, 4 * sizeof *ins);
    const struct deft_onnx_tail *mid = x->o->mid;
    if (mid && (x->o->mid_input < 0 || x->o->mid_input >= nv || val(x, x->o->mid_input)->kind != DEFT_VALUE_INPUT))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX export: mid_input %d is not a graph input", x->o->mid_input);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *a = val(x, v);
        if (a->kind != DEFT_VALUE_INPUT || !x->uses[v] || (mid && v == x->o->mid_input)) continue;
        if (gp->n_input == 4)
            return deft_set_error(DEFT_ERR_UNSUPPORTED, "ONNX export: more than 4 graph inputs");
        const char *nm = x->o->input_name && gp->n_input == 0 ? x->o->input_name : a->name;
        if (gp->n_input == 0) x->batch = a->shape.ndim ? a->shape.d[0] : 1;
        ins[gp->n_input++] = value_info(x, nm, &a->shape);
        x->vname[v] = ostr(x, "%s", nm);
        add_ref(x, x->vname[v], v, DEFT_ONNX_RANGE_SAME);
    }
    for (int n = 0; n < nn; n++) {
        if (!x->needed[n]) continue;
        if (mid && !x->vname[x->o->mid_input] && uses_value(x, n, x->o->mid_input)) {
            enum deft_status s = emit_tail_nodes(x, mid);
            if (s) return s;
            x->vname[x->o->mid_input] = ostr(x, "%s", mid->out[0].name);
        }
        if (!emit_node(x, n))
            return x->status ? x->status : deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX export failed");
    }
    gp->input = ins;
    gp->n_node = 0; /* set below, after the tail */
    if (x->o->tail) {
        enum deft_status s = emit_tail(x, x->o->tail, gp);
        if (s) return s;
        goto nodes;
    }
    Onnx__ValueInfoProto **outs = oa(x, (size_t)n_out * sizeof *outs);
    for (int v = 0; v < nv; v++) {
        if (!is_output(x, v)) continue;
        const char *name = x->vname[v];
        if (v == x->out_value && x->o->softmax) {
            const char *on = x->o->output_name ? x->o->output_name : "predictions";
            const struct deft_value *a = val(x, v);
            attr_i(x, node(x, "Softmax", ostr(x, "%s_softmax", a->name), &name, 1, on), "axis",
                   a->shape.ndim - 1);
            add_ref(x, on, v, DEFT_ONNX_RANGE_UNIT);
            name = on;
        }
        outs[gp->n_output++] = value_info(x, name, &val(x, v)->shape);
    }
    gp->output = outs;
nodes:
    gp->n_node = x->n_nodes;
    gp->node = x->nodes;
    gp->n_initializer = x->n_inits;
    gp->initializer = x->inits;
    m->graph = gp;
    return DEFT_OK;
}

static void model_header(struct ox *x, Onnx__ModelProto *m) {
    m->has_ir_version = 1;
    m->ir_version = x->opset <= 14 ? 7 : 8; /* onnx 1.8-1.9 vs 1.10-1.12 (formats.md §1.5) */
    m->producer_name = ostr(x, "deft");
    m->producer_version = ostr(x, "%s", DEFT_VERSION_STRING);
    Onnx__OperatorSetIdProto *op = oa(x, sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = ostr(x, "%s", "");
    op->has_version = 1;
    op->version = x->opset;
    m->n_opset_import = 1;
    m->opset_import = oa(x, sizeof *m->opset_import);
    m->opset_import[0] = op;
    m->n_metadata_props = (size_t)x->o->n_meta;
    m->metadata_props = oa(x, (size_t)(x->o->n_meta + 1) * sizeof *m->metadata_props);
    for (int i = 0; i < x->o->n_meta; i++) {
        Onnx__StringStringEntryProto *e = oa(x, sizeof *e);
        onnx__string_string_entry_proto__init(e);
        e->key = ostr(x, "%s", x->o->meta[i].key);
        e->value = ostr(x, "%s", x->o->meta[i].value);
        m->metadata_props[i] = e;
    }
}

static void arena_free(struct ox *x) {
    for (size_t i = 0; i < x->n_blk; i++) deft_free(x->blk[i]);
    deft_free(x->blk);
}

/* Copy the tensor list out of the arena for the caller. */
static enum deft_status copy_info(const struct ox *x, struct deft_onnx_export_info *info) {
    info->n = 0;
    info->t = deft_calloc((size_t)(x->n_refs ? x->n_refs : 1), sizeof *info->t);
    if (!info->t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < x->n_refs; i++) {
        info->t[i] = x->refs[i];
        if (!(info->t[i].name = deft_strdup(x->refs[i].name))) {
            deft_onnx_export_info_free(info);
            return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        }
        info->n++;
    }
    return DEFT_OK;
}

void deft_onnx_export_info_free(struct deft_onnx_export_info *info) {
    if (!info) return;
    for (int i = 0; i < info->n; i++) deft_free(info->t[i].name);
    deft_free(info->t);
    info->t = NULL;
    info->n = 0;
}

enum deft_status deft_onnx_export(const char *path, const struct deft_graph *g,
                                  const struct deft_safetensors *weights,
                                  const struct deft_onnx_export_opts *o,
                                  struct deft_onnx_export_info *info) {
    static const struct deft_onnx_export_opts defaults = {0};
    if (info) *info = (struct deft_onnx_export_info){0};
    if (!o) o = &defaults;
    int opset = o->opset ? o->opset : 13;
    if (opset < 11 || opset > 17)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX export: opset %d (deft writes 11 to 17)", opset);
    if (o->act_amax && opset < 13)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "ONNX export: per-channel QuantizeLinear needs "
                              "opset 13 or later (got %d)", opset);
    enum deft_status s = deft_graph_validate(g);
    if (s) return s;
    struct ox *x = deft_calloc(1, sizeof *x);
    if (!x) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    *x = (struct ox){.g = g, .w = weights, .o = o, .opset = opset, .out_value = -1};
    uint8_t *volatile buf = NULL;
    if (setjmp(x->oom)) {
        s = deft_set_error(DEFT_ERR_NOMEM, "ONNX export: out of memory");
        goto done;
    }
    Onnx__ModelProto *m = oa(x, sizeof *m);
    onnx__model_proto__init(m);
    model_header(x, m);
    if ((s = build(x, m))) goto done;
    size_t n = onnx__model_proto__get_packed_size(m);
    if (n > ((size_t)2 << 30) - 1) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: the model is %zu bytes, over protobuf's 2 GiB "
                           "(external data is not written)", path, n);
        goto done;
    }
    if (!(buf = deft_malloc(n ? n : 1))) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    onnx__model_proto__pack(m, buf);
    if ((s = deft_file_write_atomic(path, buf, n))) goto done;
    if (info) s = copy_info(x, info);
done:
    deft_free(buf);
    arena_free(x);
    deft_free(x);
    return s;
}

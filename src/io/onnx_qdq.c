/* onnx_qdq.c - QuantizeLinear / DequantizeLinear: explicitly quantized
 * (QDQ) ONNX models, as deft's --qdq_file, PyTorch's and TAO's exports write
 * them, imported as the float graph they describe plus the int8 ranges.
 *
 * On a constant (a weight), Q and DQ are folded: the weights become the f32
 * values they dequantize to (per tensor or per channel), which a conversion
 * to int8 quantizes back exactly. On an activation, Q -> DQ is the identity
 * here and Q's scale is recorded for the value it reads: the graph's
 * "int8_act_scales" metadata ({value name: scale of a symmetric int8 step},
 * onnx_graph.c), which `deft model convert` takes as the int8 engine's
 * ranges (deft_engine_convert), so no calibration is needed. deft's int8 is
 * symmetric like TensorRT's: an activation zero point other than 0 is
 * refused. uint8 with zero point 0 (values >= 0) is a step of s*255/127. */
#include <math.h>
#include <string.h>
#include "io/io_impl.h"
#include "io/onnx_impl.h"

#define BAD(...) oi_fail(im, DEFT_ERR_UNSUPPORTED, __VA_ARGS__)

static double elem(const struct deft_tensor *t, int64_t i) {
    return t->dtype == DEFT_F32 ? ((const float *)t->data)[i] : (double)((const int64_t *)t->data)[i];
}

/* The ONNX element type of input i (initializers: their proto; else 0). */
static int input_type(const struct onnx_imp *im, int i) {
    const char *nm = im->node->input[i];
    for (size_t k = 0; k < im->gp->n_initializer; k++)
        if (im->gp->initializer[k]->name && !strcmp(im->gp->initializer[k]->name, nm))
            return im->gp->initializer[k]->data_type;
    for (size_t k = 0; k < im->gp->n_node; k++) { /* a Constant node's value */
        const Onnx__NodeProto *n = im->gp->node[k];
        if (n->op_type && !strcmp(n->op_type, "Constant") && n->n_output && !strcmp(n->output[0], nm))
            for (size_t a = 0; a < n->n_attribute; a++)
                if (n->attribute[a]->t) return n->attribute[a]->t->data_type;
    }
    return 0;
}

/* Scale (input 1) and zero point (input 2, optional) as constants. */
static enum deft_status scale_zp(struct onnx_imp *im, const struct deft_tensor **s, const struct deft_tensor **zp) {
    *zp = NULL;
    if (!(*s = oi_const(im, 1))) return im->status;
    if (oi_has_input(im, 2) && !(*zp = oi_const(im, 2))) return im->status;
    int64_t n = deft_tensor_numel(*s);
    if (n < 1 || (*zp && deft_tensor_numel(*zp) != n)) return BAD("scale and zero point sizes disagree");
    for (int64_t i = 0; i < n; i++)
        if (!(elem(*s, i) > 0) || !isfinite(elem(*s, i))) return BAD("scale %g is not a positive number", elem(*s, i));
    return DEFT_OK;
}

/* Element i's channel for a per-axis scale of n entries over shape sh. */
static int64_t channel(const struct deft_shape *sh, int axis, int64_t i) {
    int64_t inner = 1;
    for (int d = axis + 1; d < sh->ndim; d++) inner *= sh->d[d];
    return (i / inner) % sh->d[axis];
}

/* The per-axis layout check: a scalar, or one entry per slice of x along axis. */
static enum deft_status axis_of(struct onnx_imp *im, const struct deft_shape *sh, int64_t n, int *axis) {
    int64_t a = oi_attr_i(im, "axis", 1);
    if (a < 0) a += sh->ndim;
    *axis = (int)a;
    if (n == 1) return DEFT_OK;
    if (a < 0 || a >= sh->ndim || sh->d[a] != n)
        return BAD("%lld scales do not match axis %lld of a %d-D input", (long long)n, (long long)a, sh->ndim);
    return DEFT_OK;
}

/* Q or DQ of a constant, folded: y = clamp(round(x / s) + zp) or (x - zp) * s. */
static enum deft_status fold(struct onnx_imp *im, bool quantize) {
    const struct deft_tensor *x = oi_const(im, 0), *s, *zp;
    enum deft_status st;
    if (!x) return im->status;
    if ((st = scale_zp(im, &s, &zp))) return st;
    int axis, zt = oi_has_input(im, 2) ? input_type(im, 2) : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    if ((st = axis_of(im, &x->shape, deft_tensor_numel(s), &axis))) return st;
    double lo = zt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? -128 : 0, hi = lo + 255;
    struct deft_tensor *y;
    if ((st = deft_tensor_create(DEFT_F32, &x->shape, &y))) return oi_fail(im, st, "out of memory");
    float *o = y->data;
    for (int64_t i = 0, n = deft_tensor_numel(x); i < n; i++) {
        int64_t c = deft_tensor_numel(s) == 1 ? 0 : channel(&x->shape, axis, i);
        double sc = elem(s, c), z = zp ? elem(zp, c) : 0;
        if (quantize) {
            double q = nearbyint(elem(x, i) / sc) + z; /* ONNX: round half to even */
            o[i] = (float)(q < lo ? lo : q > hi ? hi : q);
        } else {
            o[i] = (float)((elem(x, i) - z) * sc);
        }
    }
    return oi_bind_const(im, y);
}

/* Q or DQ of an activation: the identity, Q's step recorded for its input. */
static enum deft_status pass(struct onnx_imp *im, bool quantize) {
    const struct deft_tensor *s, *zp;
    enum deft_status st = scale_zp(im, &s, &zp);
    if (st) return st;
    if (deft_tensor_numel(s) != 1) return BAD("per-channel quantization of an activation is not supported");
    if (zp && elem(zp, 0) != 0)
        return BAD("zero point %g: deft's int8 is symmetric (zero point 0), like TensorRT's", elem(zp, 0));
    int x = oi_act(im, 0);
    if (x < 0) return im->status ? im->status : DEFT_ERR_INVALID_ARG;
    if (quantize) {
        int zt = zp ? input_type(im, 2) : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
        double step = elem(s, 0) * (zt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? 1.0 : 255.0 / 127.0);
        if ((st = oi_record_scale(im, x, (float)step))) return st;
    }
    return oi_bind(im, x);
}

static enum deft_status op_quantize(struct onnx_imp *im) {
    return oi_input_is_const(im, 0) ? fold(im, true) : pass(im, true);
}
static enum deft_status op_dequantize(struct onnx_imp *im) {
    return oi_input_is_const(im, 0) ? fold(im, false) : pass(im, false);
}

const struct onnx_op oi_qdq_ops[] = {
    {"DequantizeLinear", op_dequantize}, {"QuantizeLinear", op_quantize}, {NULL, NULL}};

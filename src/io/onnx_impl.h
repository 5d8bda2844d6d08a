/* onnx_impl.h - ONNX importer internals shared by onnx_import.c (protobuf,
 * tensors), onnx_graph.c (values, names, the driver) and onnx_ops.c (one
 * converter per ONNX op). Not installed. */
#ifndef DEFT_ONNX_IMPL_H
#define DEFT_ONNX_IMPL_H

#include "deft/io.h"
#include "onnx/onnx.pb-c.h"

static inline const char *str_or_empty(const char *s) { return s ? s : ""; }

/* Decode a ModelProto (freed with deft_onnx_free); DEFT_ERR_FORMAT when the
 * protobuf does not decode or has no graph. */
enum deft_status deft_onnx_unpack(const void *buf, size_t len, const char *file, void **model);
void deft_onnx_free(void *model);
/* A TensorProto as a new host tensor: float types -> f32, integer types -> i64. */
enum deft_status deft_onnx_tensor(const void *tensor_proto, const char *file,
                                  struct deft_tensor **out);

/* One ONNX value name: an activation (value >= 0) or a constant (an
 * initializer or a Constant node's output, decoded on first use). */
struct oi_ent {
    char *name;
    int value;                      /* deft value, -1 until a constant is materialized */
    const Onnx__TensorProto *proto; /* constant not decoded yet */
    struct deft_tensor *constant;   /* decoded constant (owned) */
};

struct onnx_imp {
    const char *file;
    int64_t opset;                  /* of the default domain */
    const Onnx__GraphProto *gp;
    struct deft_graph *g;
    struct oi_ent *ents;
    int n_ents, cap_ents;
    int *hash;                      /* open addressing into ents, -1 = empty */
    int hash_cap;
    struct deft_safetensors *w;     /* data of every PARAM/STATE value, by value name */
    const Onnx__NodeProto *node;    /* being converted (messages, names) */
    enum deft_status status;        /* first error oi_fail reported */
    struct oi_scale { int value; float step; } *scales; /* QDQ activations (onnx_qdq.c) */
    int n_scales, cap_scales;
};

/* Errors name the file, the op and the node. */
enum deft_status oi_fail(struct onnx_imp *im, enum deft_status s, const char *fmt, ...)
    DEFT_PRINTF(3, 4);
/* Input i of the current node as a deft value (a constant becomes a STATE value). */
int oi_act(struct onnx_imp *im, int i);
/* Input i as the op's weight: a constant becomes a PARAM (kind DEFT_VALUE_PARAM)
 * or STATE value named "<module>.<suffix>" when the file's name is a
 * generated one ("onnx::Conv_191"). Computed weights are refused. */
int oi_weight(struct onnx_imp *im, int i, const char *suffix, enum deft_value_kind kind);
/* A new PARAM/STATE value from a tensor the converter made (e.g. a
 * transposed matrix); takes ownership of t. */
int oi_new_weight(struct onnx_imp *im, const char *suffix, enum deft_value_kind kind,
                  struct deft_tensor *t);
/* Input i as a constant tensor (f32 or i64), NULL with an error when it is
 * computed or absent. */
const struct deft_tensor *oi_const(struct onnx_imp *im, int i);
/* True when input i is a constant (without decoding it or failing). */
bool oi_input_is_const(struct onnx_imp *im, int i);
/* True when input i is given (present and not the empty name). */
bool oi_has_input(const struct onnx_imp *im, int i);
/* Output 0 of the current node is the deft value v. */
enum deft_status oi_bind(struct onnx_imp *im, int v);
/* Output 0 of the current node is the constant t (takes ownership). */
enum deft_status oi_bind_const(struct onnx_imp *im, struct deft_tensor *t);
/* Add a deft node for the current ONNX node; returns its output 0 value or -1. */
int oi_add_node(struct onnx_imp *im, enum deft_op op, bool has_params, const int *in, int n_in,
                const struct deft_attr *a);

/* Attributes of the current node. */
const Onnx__AttributeProto *oi_attr(const struct onnx_imp *im, const char *name);
int64_t oi_attr_i(const struct onnx_imp *im, const char *name, int64_t def);
float oi_attr_f(const struct onnx_imp *im, const char *name, float def);
/* Copies the ints into out (at most max); returns the count, 0 when absent,
 * -1 (error set) when there are more than max. */
int oi_attr_ints(struct onnx_imp *im, const char *name, int64_t *out, int max);
/* The string attribute into buf (NUL-terminated), or def. */
const char *oi_attr_s(const struct onnx_imp *im, const char *name, const char *def, char *buf,
                      size_t n);

/* Output k of the current node is the deft value v (Split's parts). */
enum deft_status oi_bind_output(struct onnx_imp *im, int k, int v);

struct onnx_op { const char *name; enum deft_status (*convert)(struct onnx_imp *im); };
/* Shape, Gather, Unsqueeze, Squeeze, ConstantOfShape, Cast, Split
 * (onnx_shape_ops.c); ends with a NULL name. */
extern const struct onnx_op oi_shape_ops[];
/* QuantizeLinear, DequantizeLinear (onnx_qdq.c); ends with a NULL name. */
extern const struct onnx_op oi_qdq_ops[];
/* Record an activation's int8 step (the first one recorded for it stands);
 * written as the graph's "int8_act_scales" metadata. */
enum deft_status oi_record_scale(struct onnx_imp *im, int value, float step);

/* Constant folding (onnx_fold.c): every given input is a constant; output 0
 * as a constant of a op b (op '+', '-', '*', '/', numpy broadcast) or the
 * inputs concatenated. */
bool oi_all_const(struct onnx_imp *im);
enum deft_status oi_fold_binary(struct onnx_imp *im, char op);
enum deft_status oi_fold_concat(struct onnx_imp *im, int64_t axis);

/* Resize and Upsample (onnx_resize.c). */
enum deft_status oi_resize(struct onnx_imp *im);

/* Convert the current node (onnx_ops.c); DEFT_ERR_UNSUPPORTED naming the op
 * when deft has no converter for it. */
enum deft_status oi_convert_node(struct onnx_imp *im);

#endif

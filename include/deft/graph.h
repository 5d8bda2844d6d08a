/* deft/graph.h - the intermediate representation every part of deft speaks.
 *
 * A graph is a DAG of nodes (ops) over values (tensors with static shapes).
 * Values are graph inputs (a batch, labels), parameters (trainable weights),
 * state (batch-norm running statistics), or node outputs. Nodes are stored in
 * a valid execution order: a node only reads values defined before it.
 *
 * Builders add nodes and infer output shapes at once:
 *
 *     struct deft_graph *g;
 *     deft_graph_create(&g);
 *     int x = deft_input(g, "input_1", deft_shape4(16, 3, 224, 224));
 *     int y = deft_conv2d(g, "conv1", x, 64, 7, 7, &(struct deft_conv_attr){
 *                           .stride = {2, 2}, .pad = {3, 3, 3, 3}, .dilation = {1, 1},
 *                           .groups = 1}, false);
 *     y = deft_batchnorm(g, "bn1", y, DEFT_BN_TRAIN);
 *     y = deft_act(g, "relu", y, DEFT_ACT_RELU, 0);
 *     if (deft_graph_status(g)) puts(deft_last_error());
 *
 * Errors are sticky (as curl's multi handle or a FILE's error flag): the first
 * failing builder records a status and message; later builders do nothing and
 * return -1; deft_graph_status() reports it. Model code therefore checks once.
 *
 * Parameters are named as PyTorch names them ("layer1.0.conv1.weight"): the
 * builder of a node named "layer1.0.conv1" creates "<node>.weight"/".bias"; BN
 * creates ".weight", ".bias", ".running_mean", ".running_var".
 *
 * Autograd (deft_autograd) appends backward nodes (the *_BWD ops below) to the
 * same graph; the runtime plans memory and runs the whole node list.
 */
#ifndef DEFT_GRAPH_H
#define DEFT_GRAPH_H

#include <stdio.h>
#include "deft/core.h"
#include "deft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEFT_MAX_INPUTS 8   /* concat takes up to 8 inputs */
#define DEFT_MAX_OUTPUTS 3

/* Stable numbering: append only. The op table in src/graph/op_table.c has a
 * static_assert on DEFT_OP_COUNT so a new op cannot miss an entry. */
enum deft_op {
    /* forward ops */
    DEFT_OP_CONV2D = 0,           /* in: x, w[K,C/g,R,S], [b[K]]      out: y */
    DEFT_OP_CONV_TRANSPOSE2D,     /* in: x, w[C,K/g,R,S], [b[K]]      out: y */
    DEFT_OP_BATCHNORM,            /* in: x, gamma, beta, rmean, rvar  out: y, save_mean, save_var */
    DEFT_OP_ACT,                  /* in: x                            out: y */
    DEFT_OP_POOL,                 /* in: x                            out: y, [workspace] */
    DEFT_OP_GLOBAL_AVGPOOL,       /* in: x[N,C,H,W]                   out: y[N,C,1,1] */
    DEFT_OP_ADD,                  /* in: a, b (broadcast)             out: y */
    DEFT_OP_MUL,                  /* in: a, b (broadcast)             out: y */
    DEFT_OP_CONCAT,               /* in: x0..xn-1                     out: y */
    DEFT_OP_SLICE,                /* in: x                            out: y */
    DEFT_OP_PAD,                  /* in: x (zero padding)             out: y */
    DEFT_OP_RESHAPE,              /* in: x                            out: y (same numel) */
    DEFT_OP_UPSAMPLE,             /* in: x                            out: y */
    DEFT_OP_LINEAR,               /* in: x[N,K], w[M,K], [b[M]]       out: y[N,M] */
    DEFT_OP_DROPOUT,              /* in: x                            out: y, mask */
    DEFT_OP_SOFTMAX,              /* in: x                            out: y (over attr axis) */
    DEFT_OP_LOSS,                 /* in: x, target                    out: loss[1] (mean) */
    /* backward ops, created by autograd (also usable directly) */
    DEFT_OP_CONV2D_BWD_DATA,      /* in: dy, w                        out: dx */
    DEFT_OP_CONV2D_BWD_WEIGHTS,   /* in: dy, x                        out: dw, [db] */
    DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA,    /* in: dy, w                out: dx */
    DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS, /* in: dy, x                out: dw, [db] */
    DEFT_OP_BATCHNORM_BWD,        /* in: dy, x, gamma, save_mean, save_var  out: dx, dgamma, dbeta */
    DEFT_OP_ACT_BWD,              /* in: dy, x_or_y (see deft_act_bwd_uses_output) out: dx */
    DEFT_OP_POOL_BWD,             /* in: dy, x, [workspace]           out: dx */
    DEFT_OP_GLOBAL_AVGPOOL_BWD,   /* in: dy                           out: dx (attr.shape) */
    DEFT_OP_REDUCE_TO,            /* in: x                            out: sum over broadcast dims to attr.shape */
    DEFT_OP_UPSAMPLE_BWD,         /* in: dy                           out: dx (attr.shape) */
    DEFT_OP_LINEAR_BWD_DATA,      /* in: dy, w                        out: dx */
    DEFT_OP_LINEAR_BWD_WEIGHTS,   /* in: dy, x                        out: dw, [db] */
    DEFT_OP_DROPOUT_BWD,          /* in: dy, mask                     out: dx */
    DEFT_OP_SOFTMAX_BWD,          /* in: dy, y                        out: dx */
    DEFT_OP_LOSS_BWD,             /* in: x, target, dloss[1]          out: dx */
    /* quantization-aware training (appended: the numbering is stable) */
    DEFT_OP_FAKE_QUANT,           /* in: x, [amax[1] STATE]           out: y (int8 grid, see deft_fq_attr) */
    DEFT_OP_FAKE_QUANT_BWD,       /* in: dy, x, [amax]                out: dx (straight-through) */
    DEFT_OP_OBSERVE,              /* in: x, amax[1] STATE             out: the range in use [1] (no quantization) */
    /* detection (appended) */
    DEFT_OP_ROI_ALIGN,            /* in: x[N,C,H,W], boxes[R,5]       out: y[R,C,out_h,out_w] (see deft_roi_attr) */
    DEFT_OP_ROI_ALIGN_BWD,        /* in: dy, boxes                    out: dx (the shape of x; boxes get none) */
    /* layout (appended) */
    DEFT_OP_TRANSPOSE,            /* in: x                            out: y, y.d[i] = x.d[perm[i]]; attr.shape holds perm */
    DEFT_OP_COUNT
};

enum deft_value_kind {
    DEFT_VALUE_INPUT = 0,   /* fed by the caller before each run */
    DEFT_VALUE_PARAM,       /* trainable (unless frozen) weight */
    DEFT_VALUE_STATE,       /* non-trainable persistent tensor (BN running stats) */
    DEFT_VALUE_NODE,        /* produced by a node (activation or gradient) */
};

/* value flags */
#define DEFT_VF_FROZEN 0x1    /* param: no gradient, no update */
#define DEFT_VF_OUTPUT 0x2    /* readable after a run: never reused by the planner */
#define DEFT_VF_OPAQUE 0x4    /* backend-defined contents (pool workspace, dropout mask) */
#define DEFT_VF_NO_DECAY 0x8  /* param excluded from weight decay (BN, bias) if the optimizer asks */

/* Parameter initializers, applied by deft_graph_init_params. */
enum deft_init {
    DEFT_INIT_ZEROS = 0,
    DEFT_INIT_ONES,
    DEFT_INIT_KAIMING_NORMAL_FAN_OUT, /* torchvision resnet convs: N(0, sqrt(2/fan_out)) */
    DEFT_INIT_KAIMING_UNIFORM,        /* PyTorch's default conv/linear: U(+-sqrt(1/fan_in)) (a=sqrt(5)) */
    DEFT_INIT_UNIFORM_FAN_IN,         /* bias default: U(+-1/sqrt(fan_in)) */
    DEFT_INIT_NORMAL_001,             /* N(0, 0.01): classifier heads */
    DEFT_INIT_XAVIER_UNIFORM,
    DEFT_INIT_PRIOR_PROB_001,         /* -log((1 - 0.01) / 0.01): focal-loss classifier bias, P(object) = 0.01 */
};

struct deft_value {
    char *name;                /* unique in the graph */
    enum deft_value_kind kind;
    enum deft_dtype dtype;
    struct deft_shape shape;
    unsigned flags;            /* DEFT_VF_* */
    enum deft_init init;       /* params only */
    int producer;              /* node index, -1 unless kind == NODE */
    int slot;                  /* output slot of the producer */
    int grad_of;               /* value whose gradient this is, or -1 */
    int fan_in, fan_out;       /* for initializers */
};

enum deft_act_kind {
    DEFT_ACT_RELU = 0, DEFT_ACT_RELU6, DEFT_ACT_LEAKY_RELU, DEFT_ACT_SIGMOID, DEFT_ACT_TANH,
    DEFT_ACT_SWISH, DEFT_ACT_HARDSWISH,
    DEFT_ACT_MISH, /* x * tanh(softplus(x)) (YOLOv4's CSPDarknet) */
    DEFT_ACT_HARDSIGMOID, /* clip(x / 6 + 1/2, 0, 1) (MobileNetV3's squeeze-excitation) */
    /* ONNX's element-wise math (imported models): */
    DEFT_ACT_EXP, DEFT_ACT_LOG, DEFT_ACT_SQRT, DEFT_ACT_ABS, DEFT_ACT_NEG,
    DEFT_ACT_RECIPROCAL,  /* 1 / x */
    DEFT_ACT_SOFTPLUS,    /* log(1 + e^x) */
    DEFT_ACT_SOFTSIGN,    /* x / (1 + |x|) */
    DEFT_ACT_ELU,         /* x > 0 ? x : alpha (e^x - 1) */
    DEFT_ACT_ERF,
    DEFT_ACT_COUNT
};
enum deft_bn_mode {
    DEFT_BN_TRAIN = 0,  /* batch statistics, running stats updated */
    DEFT_BN_EVAL,       /* running statistics, no update (inference) */
    DEFT_BN_FROZEN,     /* running statistics while training (freeze_bn): gradients use them as constants */
};
enum deft_pool_kind { DEFT_POOL_MAX = 0, DEFT_POOL_AVG };
enum deft_upsample_mode { DEFT_UPSAMPLE_NEAREST = 0, DEFT_UPSAMPLE_BILINEAR };
enum deft_loss_kind {
    DEFT_LOSS_SOFTMAX_CE = 0, /* x[N,C] logits; target [N] class ids (as f32) or [N,C] probabilities */
    DEFT_LOSS_BCE_LOGITS,     /* x, target same shape, target in [0,1] */
    DEFT_LOSS_FOCAL,          /* sigmoid focal loss (RetinaNet): alpha, gamma */
    DEFT_LOSS_L1,
    DEFT_LOSS_SMOOTH_L1,      /* beta */
    DEFT_LOSS_L2,             /* mean squared error */
    DEFT_LOSS_COUNT
};

struct deft_conv_attr {
    int stride[2];        /* h, w */
    int pad[4];           /* top, left, bottom, right */
    int dilation[2];      /* 1 = dense */
    int groups;
    int output_padding[2];/* transposed conv only */
};
struct deft_bn_attr {
    float eps, momentum;
    enum deft_bn_mode mode;
    bool sync;  /* TRAIN, data parallel (sync_bn): statistics and their gradient sums
                   all-reduced over the ranks (struct deft_run_ctx's allreduce) */
};
struct deft_act_attr { enum deft_act_kind kind; float alpha; /* leaky slope */ };
struct deft_pool_attr {
    enum deft_pool_kind kind;
    int kernel[2], stride[2], pad[4]; /* pad: top, left, bottom, right */
    bool count_include_pad;           /* avg only; PyTorch's default is true */
    bool ceil_mode;
};
struct deft_concat_attr { int axis; };
/* per dim, step 1; end -1 = to the end of the dim (so a batch-size change keeps the whole batch) */
struct deft_slice_attr { int64_t start[DEFT_MAX_DIMS], end[DEFT_MAX_DIMS]; };
struct deft_pad_attr { int64_t before[DEFT_MAX_DIMS], after[DEFT_MAX_DIMS]; };  /* zeros */
struct deft_upsample_attr { enum deft_upsample_mode mode; bool align_corners; };
struct deft_dropout_attr { float p; bool training; uint64_t seed; };
struct deft_softmax_attr { int axis; };
/* Symmetric int8 fake quantization (quantize, then dequantize, in float):
 *   PER_TENSOR  (activations) scale = amax / 127, q = clamp(round(x / scale), -128, 127):
 *               ONNX QuantizeLinear's int8 saturation, so training rounds and clips as
 *               the exported QDQ graph does. amax is a [1] STATE input: in training it
 *               tracks max|x| of each batch as an exponential moving average (TAO's QDQ
 *               layer, decay `decay`), started from the first batch's value; in
 *               inference it is read only. amax <= 0 (nothing seen yet): y = x.
 *   PER_CHANNEL (weights) scale_c = max|x_c| / 127 along `axis`, recomputed every call,
 *               q = clamp(round(x / scale_c), -127, 127) (the export's int8 weights).
 * round = round half to even; x / scale is computed as x * (1 / scale), as PyTorch's
 * fake_quantize_per_*_affine do. The backward is the straight-through estimator:
 * dx = dy where round(x / scale) lies inside the clamp range, 0 outside.
 * DEFT_OP_OBSERVE tracks amax the same way without quantizing (its output is the
 * range in use): the ranges of tensors no layer quantizes, for calibration caches. */
enum deft_fq_mode { DEFT_FQ_PER_TENSOR = 0, DEFT_FQ_PER_CHANNEL };
struct deft_fq_attr {
    enum deft_fq_mode mode;
    int axis;          /* PER_CHANNEL: the channel axis */
    float decay;       /* PER_TENSOR / OBSERVE: EMA decay of the range (TAO: 0.999) */
    bool training;     /* PER_TENSOR / OBSERVE: update the range from this batch */
};
/* RoI feature extraction. boxes[R, 5] rows are (batch index, x1, y1, x2, y2) in
 * input-image pixels; the output is [R, C, out_h, out_w].
 *   DEFT_ROI_ALIGN: torchvision.ops.roi_align (0.14) exactly: feature coordinate
 *     = box * spatial_scale (- 0.5 when aligned); each of the out_h x out_w bins
 *     averages sampling_ratio^2 bilinear samples (sampling_ratio <= 0: adaptive,
 *     ceil(roi size / bins) per side); without `aligned` a RoI is at least 1x1.
 *   DEFT_ROI_CROP_RESIZE: TAO's CropAndResize layer (tf.image.crop_and_resize of
 *     the box divided by (image_h - 1, image_w - 1)): one bilinear sample per
 *     output cell on the grid from the box's first to its last pixel row/column
 *     of the feature map, zero outside [0, H-1] x [0, W-1] (extrapolation 0).
 *     TAO's pool_size_2x is out = 2 x pool_size followed by the backbone's own
 *     downsampling (2x2 max-pool for vgg16, the stride-2 first conv of the RCNN
 *     body for ResNet/MobileNet/EfficientNet): build those with the usual ops.
 * Backward: the gradient of x (scatter of dy with the same bilinear weights);
 * the boxes get no gradient (torchvision and TF detach them too). */
enum deft_roi_mode { DEFT_ROI_ALIGN = 0, DEFT_ROI_CROP_RESIZE };
struct deft_roi_attr {
    enum deft_roi_mode mode;
    int out_h, out_w;
    float spatial_scale;  /* ALIGN: feature pixels per input pixel (1/16 at stride 16) */
    int sampling_ratio;   /* ALIGN: samples per bin side, <= 0 adaptive (torchvision -1) */
    bool aligned;         /* ALIGN: half-pixel shift (torchvision aligned=True) */
    int image_h, image_w; /* CROP_RESIZE: the network input size the boxes are in (>= 2) */
};
struct deft_loss_attr {
    enum deft_loss_kind kind;
    float label_smoothing; /* softmax CE */
    float alpha, gamma;    /* focal */
    float beta;            /* smooth L1 */
};

/* Attributes of a node; which member is valid depends on the op (a backward op
 * uses its forward op's member). `shape` is:
 *   RESHAPE: the target shape (one entry may be -1: inferred);
 *   UPSAMPLE: d[2], d[3] = output height, width;
 *   REDUCE_TO, GLOBAL_AVGPOOL_BWD, UPSAMPLE_BWD, CONV*_BWD_DATA: the output (dx) shape;
 *   CONV*_BWD_WEIGHTS: the weight shape.
 * For backward nodes with fwd >= 0 those shapes are taken from the forward
 * node's values instead, so they follow batch-size changes. */
struct deft_attr {
    union {
        struct deft_conv_attr conv;
        struct deft_bn_attr bn;
        struct deft_act_attr act;
        struct deft_pool_attr pool;
        struct deft_concat_attr concat;
        struct deft_slice_attr slice;
        struct deft_pad_attr pad;
        struct deft_upsample_attr upsample;
        struct deft_dropout_attr dropout;
        struct deft_softmax_attr softmax;
        struct deft_loss_attr loss;
        struct deft_fq_attr fq;
        struct deft_roi_attr roi;
    };
    struct deft_shape shape;
    bool has_bias;   /* conv/linear and their weight-gradient ops: bias input/output present */
};

struct deft_node {
    enum deft_op op;
    char *name;                     /* "layer1.0.conv1"; backward nodes get a suffix */
    int n_in, in[DEFT_MAX_INPUTS];  /* value indices; -1 marks an absent optional input */
    int n_out, out[DEFT_MAX_OUTPUTS];
    struct deft_attr attr;
    int fwd;                        /* backward ops: index of the forward node, else -1 */
};

struct deft_graph; /* opaque */

DEFT_API DEFT_NODISCARD enum deft_status deft_graph_create(struct deft_graph **out);
DEFT_API void deft_graph_free(struct deft_graph *g);
/* Deep copy (names, attrs, shapes; no data). */
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_clone(const struct deft_graph *g,
                                                         struct deft_graph **out);
/* Sticky builder status (DEFT_OK while no builder failed). */
DEFT_API enum deft_status deft_graph_status(const struct deft_graph *g);

DEFT_API int deft_graph_num_values(const struct deft_graph *g);
DEFT_API int deft_graph_num_nodes(const struct deft_graph *g);
/* Pointers stay valid until the next builder call (arrays may grow). */
DEFT_API const struct deft_value *deft_graph_value(const struct deft_graph *g, int v);
DEFT_API const struct deft_node *deft_graph_node(const struct deft_graph *g, int n);
DEFT_API struct deft_value *deft_graph_value_mut(struct deft_graph *g, int v);
DEFT_API struct deft_node *deft_graph_node_mut(struct deft_graph *g, int n);
/* Index of the value with this name, or -1. */
DEFT_API int deft_graph_find_value(const struct deft_graph *g, const char *name);
DEFT_API int deft_graph_find_node(const struct deft_graph *g, const char *name);

/* Metadata (architecture, class names, preprocessing ...): a JSON object kept
 * as text and written into model files. NULL when unset. */
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_set_meta(struct deft_graph *g, const char *key,
                                                            const char *json_value);
DEFT_API const char *deft_graph_get_meta(const struct deft_graph *g, const char *key);
/* The key of metadata entry i (in insertion order), NULL past the last. */
DEFT_API const char *deft_graph_meta_key(const struct deft_graph *g, int i);

/* ---- roles: what a value means to a task ----
 * A role names a value by meaning: DEFT_ROLE_IMAGE (the image input),
 * DEFT_ROLE_LOGITS (a classifier's output), or any task-defined output role
 * ("head_s32", "head_s16", "head_s8" for YOLO). Roles live in the metadata
 * ("roles": {"<role>": "<value name>"}) so they survive clone, model files
 * and pruning. Model builders set them; everything else finds values by role. */
#define DEFT_ROLE_IMAGE "image"
#define DEFT_ROLE_LOGITS "logits"
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_set_role(struct deft_graph *g, const char *role, int v);
/* The value with this role, or -1. Graphs without a declared role (older
 * model files, imported ONNX) fall back: "image" = the INPUT named "input_1",
 * else the first 4-D INPUT; "logits" = the last OUTPUT-flagged value. */
DEFT_API int deft_graph_find_role(const struct deft_graph *g, const char *role);
/* The value the graph declares for role (no fallback), or -1. */
DEFT_API int deft_graph_declared_role(const struct deft_graph *g, const char *role);
/* The model's outputs (OUTPUT-flagged node values, gradients excluded):
 * values with a declared role first, in the order the roles were set, then the
 * others by index. Writes up to max indices and returns the total count
 * (-1 when out of memory). */
DEFT_API int deft_graph_outputs(const struct deft_graph *g, int *out, int max);

/* ---- low level construction ---- */
/* Add a value; returns its index or -1 (sticky error). */
DEFT_API int deft_graph_add_value(struct deft_graph *g, const char *name, enum deft_value_kind kind,
                                  enum deft_dtype dtype, const struct deft_shape *shape);
/* Add a node reading `in` and producing n_out new values named "<name>:<i>"
 * (output 0 is named `name` itself); runs shape inference. Returns the node
 * index or -1. The created output value indices are in deft_graph_node(g, n)->out. */
DEFT_API int deft_graph_add_node(struct deft_graph *g, enum deft_op op, const char *name,
                                 const int *in, int n_in, const struct deft_attr *attr);
/* Add a backward node for forward node `fwd` (shapes of outputs then follow the
 * forward node's values, so they stay right when the batch size changes). */
DEFT_API int deft_graph_add_bwd_node(struct deft_graph *g, enum deft_op op, const char *name,
                                     const int *in, int n_in, const struct deft_attr *attr, int fwd);
/* Re-run shape inference over every node (after changing an input or param shape). */
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_infer_shapes(struct deft_graph *g);

/* ---- builders (return the output value index, -1 on error) ---- */
DEFT_API int deft_input(struct deft_graph *g, const char *name, struct deft_shape shape);
DEFT_API int deft_param(struct deft_graph *g, const char *name, struct deft_shape shape,
                        enum deft_init init);
/* Conv with new params "<name>.weight" [k, c/groups, r, s] and optional "<name>.bias". */
DEFT_API int deft_conv2d(struct deft_graph *g, const char *name, int x, int k, int r, int s,
                         const struct deft_conv_attr *a, bool bias);
DEFT_API int deft_conv_transpose2d(struct deft_graph *g, const char *name, int x, int k, int r,
                                   int s, const struct deft_conv_attr *a, bool bias);
/* eps 1e-5, momentum 0.1 (PyTorch defaults) */
DEFT_API int deft_batchnorm(struct deft_graph *g, const char *name, int x, enum deft_bn_mode mode);
DEFT_API int deft_batchnorm_ex(struct deft_graph *g, const char *name, int x,
                               const struct deft_bn_attr *a);
DEFT_API int deft_act(struct deft_graph *g, const char *name, int x, enum deft_act_kind kind,
                      float alpha);
DEFT_API int deft_pool(struct deft_graph *g, const char *name, int x, const struct deft_pool_attr *a);
DEFT_API int deft_global_avgpool(struct deft_graph *g, const char *name, int x);
DEFT_API int deft_add(struct deft_graph *g, const char *name, int a, int b);
DEFT_API int deft_mul(struct deft_graph *g, const char *name, int a, int b);
DEFT_API int deft_concat(struct deft_graph *g, const char *name, const int *xs, int n, int axis);
DEFT_API int deft_slice(struct deft_graph *g, const char *name, int x, int axis, int64_t start,
                        int64_t end);
DEFT_API int deft_pad(struct deft_graph *g, const char *name, int x, const struct deft_pad_attr *a);
DEFT_API int deft_reshape(struct deft_graph *g, const char *name, int x, struct deft_shape shape);
/* Dimensions permuted (ONNX Transpose, numpy transpose): output dimension i
 * is input dimension perm[i]; n is the input's rank. */
DEFT_API int deft_transpose(struct deft_graph *g, const char *name, int x, const int *perm, int n);
/* [N, C, H, W] -> [N, C*H*W] */
DEFT_API int deft_flatten(struct deft_graph *g, const char *name, int x);
DEFT_API int deft_upsample(struct deft_graph *g, const char *name, int x, int64_t out_h,
                           int64_t out_w, enum deft_upsample_mode mode, bool align_corners);
/* Linear with new params "<name>.weight" [m, k] and optional "<name>.bias" [m]. */
DEFT_API int deft_linear(struct deft_graph *g, const char *name, int x, int64_t m, bool bias);
DEFT_API int deft_dropout(struct deft_graph *g, const char *name, int x, float p, bool training,
                          uint64_t seed);
DEFT_API int deft_softmax(struct deft_graph *g, const char *name, int x, int axis);
DEFT_API int deft_loss(struct deft_graph *g, const char *name, int x, int target,
                       const struct deft_loss_attr *a);
/* RoIAlign / crop-and-resize of feature map x[N,C,H,W] at boxes[R,5] (see
 * struct deft_roi_attr): y[R, C, a->out_h, a->out_w]. */
DEFT_API int deft_roi_align(struct deft_graph *g, const char *name, int x, int boxes,
                            const struct deft_roi_attr *a);

/* ---- op table queries ---- */
DEFT_API const char *deft_op_name(enum deft_op op);          /* "conv2d" */
/* A forward op of a model graph: not the loss, not a backward op. */
DEFT_API bool deft_op_is_forward(enum deft_op op);
DEFT_API int deft_op_from_name(const char *name);            /* -1 if unknown */
DEFT_API const char *deft_act_name(enum deft_act_kind k);    /* "relu" */
DEFT_API const char *deft_loss_name(enum deft_loss_kind k);
/* ACT_BWD reads y (the forward output) instead of x for these activations. */
DEFT_API bool deft_act_bwd_uses_output(enum deft_act_kind k);
/* Multiply-accumulate count of a node x2 (FLOPs), 0 for cheap ops. */
DEFT_API int64_t deft_node_flops(const struct deft_graph *g, int n);

/* ---- inspection ---- */
struct deft_graph_stats { int64_t params, trainable_params, state, flops; int nodes, convs; };
DEFT_API void deft_graph_stats(const struct deft_graph *g, struct deft_graph_stats *out);
/* Table of layers: name, op, output shape, params, FLOPs. */
DEFT_API void deft_graph_print(const struct deft_graph *g, FILE *f);
DEFT_API void deft_graph_print_dot(const struct deft_graph *g, FILE *f);
/* Structural check: indices in range, nodes in order, shapes consistent. */
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_validate(const struct deft_graph *g);

/* Graph <-> JSON text (for model files). The caller frees *json with deft_free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_to_json(const struct deft_graph *g, char **json);
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_from_json(const char *json, size_t len,
                                                             struct deft_graph **out);

/* Switch batch-norm nodes between TRAIN and EVAL (FROZEN stays), dropout
 * on/off and range tracking of fake-quant/observe nodes on/off: an inference
 * graph from a training graph. */
DEFT_API void deft_graph_set_training(struct deft_graph *g, bool training);
/* Change input value v's shape (e.g. the batch size) and re-infer all shapes. */
DEFT_API DEFT_NODISCARD enum deft_status deft_graph_reshape_input(struct deft_graph *g, int v,
                                                                 const struct deft_shape *s);

/* ---- parameters ---- */
/* Freeze/unfreeze params whose name starts with prefix (NULL = all). Returns count. */
DEFT_API int deft_graph_freeze(struct deft_graph *g, const char *prefix, bool frozen);
/* Fill param/state tensors in `data` (one host tensor per value, NULL for non-params)
 * using each value's initializer and a seed. */
DEFT_API DEFT_NODISCARD enum deft_status deft_init_param(const struct deft_value *v, uint64_t seed,
                                                        float *dst);

#ifdef __cplusplus
}
#endif
#endif

/* deft/io.h - files: atomic writes, .npy, .safetensors, graph JSON, model files.
 *
 * Every function here names the file in its error message (deft_last_error())
 * and never trusts a byte it reads: sizes, offsets and shapes are checked
 * before they are used, so a truncated or hostile file gives DEFT_ERR_FORMAT
 * (or DEFT_ERR_IO when the OS refused), never a crash.
 *
 * Writes are atomic: data goes to "<path>.tmp.<pid>" in the same directory,
 * is fsync'ed, then renamed over <path> and the directory is fsync'ed. A crash
 * or a full disk leaves either the old file or the new one, never half of one.
 *
 * Model files (design §4) are one .safetensors file:
 *
 *     // save: params/state from a runtime, plus optimizer state and extra metadata
 *     struct deft_kv kv[] = {{"train_state", "{\"epoch\": 3}"}};
 *     deft_model_save("w.safetensors", g, &(struct deft_model_save_opts){
 *                         .rt = rt, .meta = kv, .n_meta = 1});
 *
 *     // load: the graph and every tensor; then fill a runtime by name
 *     struct deft_model *m;
 *     deft_model_load("w.safetensors", &m);
 *     deft_runtime_create(m->graph, &(struct deft_runtime_opts){0}, &rt);
 *     deft_model_copy_to_runtime(m->file, rt, 0, NULL);
 *     const char *ts = deft_safetensors_meta(m->file, "train_state");
 *     ...
 *     deft_runtime_free(rt);
 *     deft_model_free(m);
 */
#ifndef DEFT_IO_H
#define DEFT_IO_H

#include "deft/core.h"
#include "deft/tensor.h"
#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_runtime;

/* A named tensor. In lists the caller passes in, both stay owned by the
 * caller; in a struct deft_safetensors they are owned by it. */
struct deft_named_tensor {
    char *name;
    struct deft_tensor *tensor;
};

/* A string key/value pair (safetensors `__metadata__`, model metadata). */
struct deft_kv {
    const char *key;
    const char *value;
};

/* ---- whole files ------------------------------------------------------- */

/* Read a whole file into a new buffer (freed with deft_free). The buffer has
 * one extra NUL byte after the data (not counted in *len) so text parsers can
 * use it directly. Files larger than max_bytes give DEFT_ERR_FORMAT. */
DEFT_API DEFT_NODISCARD enum deft_status deft_file_read(const char *path, size_t max_bytes,
                                                       void **data, size_t *len);

/* Write n bytes to path atomically (see top of file). On failure the
 * temporary file is removed and an existing <path> is left untouched;
 * the message names the path and the reason ("disk full" for ENOSPC). */
DEFT_API DEFT_NODISCARD enum deft_status deft_file_write_atomic(const char *path, const void *data,
                                                               size_t n);

/* Make `to` a second name of the file `from` (a hard link placed by an
 * atomic rename, so an existing <to> is replaced whole or not at all). Fails
 * where the file system has no hard links: the caller then writes a copy. */
DEFT_API DEFT_NODISCARD enum deft_status deft_file_link_atomic(const char *from, const char *to);

/* Streaming form, for files assembled from parts (a header, then tensors):
 *     deft_atomic_open(path, &w); deft_atomic_write(w, p, n) ...; deft_atomic_commit(w);
 * commit and abort free w; after a failed write call abort (or commit, which
 * then fails and cleans up). */
struct deft_atomic_file;
DEFT_API DEFT_NODISCARD enum deft_status deft_atomic_open(const char *path,
                                                         struct deft_atomic_file **out);
DEFT_API DEFT_NODISCARD enum deft_status deft_atomic_write(struct deft_atomic_file *w,
                                                          const void *data, size_t n);
DEFT_API DEFT_NODISCARD enum deft_status deft_atomic_commit(struct deft_atomic_file *w);
/* Remove the temporary file and free w (NULL is a no-op). */
DEFT_API void deft_atomic_abort(struct deft_atomic_file *w);
/* Remove the "<name>.tmp.<pid>" files in dir whose writer is gone (killed
 * mid-write); returns how many were removed. */
DEFT_API int deft_atomic_sweep_stale(const char *dir);
/* mkdir -p: create path and its missing parents (0755). */
DEFT_API DEFT_NODISCARD enum deft_status deft_mkdirs(const char *path);
/* mkdir -p of the folder a file path names (-o newdir/model.onnx), when missing. */
DEFT_API DEFT_NODISCARD enum deft_status deft_mkdirs_for(const char *file);

/* ---- .npy (NumPy) ------------------------------------------------------ */
/* Supported dtypes: <f4 <f8 <f2 <i8 <i4 |u1 |i1 (and '=' for native little
 * endian). Rejected with a one-line message: bad magic, unknown version,
 * fortran_order True, big-endian or structured dtypes, more than
 * DEFT_MAX_DIMS dims, shape overflow, truncated data, trailing bytes. */

/* Read an .npy file keeping its dtype (*out freed with deft_tensor_free). */
DEFT_API DEFT_NODISCARD enum deft_status deft_npy_read(const char *path, struct deft_tensor **out);
/* Read an .npy file and convert any supported dtype to f32. */
DEFT_API DEFT_NODISCARD enum deft_status deft_npy_read_f32(const char *path,
                                                          struct deft_tensor **out);
/* Parse an in-memory .npy image; `name` is used in messages. flags:
 * DEFT_NPY_TO_F32 converts to f32. (Used by the readers and by fuzzers.) */
#define DEFT_NPY_TO_F32 0x1
DEFT_API DEFT_NODISCARD enum deft_status deft_npy_parse(const void *buf, size_t len,
                                                       const char *name, unsigned flags,
                                                       struct deft_tensor **out);
/* Write a host tensor (any dtype but bf16; strided tensors are written in C
 * order) as .npy version 1.0 (2.0 when the header needs it), atomically. */
DEFT_API DEFT_NODISCARD enum deft_status deft_npy_write(const char *path,
                                                       const struct deft_tensor *t);

/* ---- .safetensors ------------------------------------------------------ */
/* Reader limits: header at most DEFT_SAFETENSORS_MAX_HEADER bytes (the
 * reference reader's limit). Dtypes: F32 F16 BF16 I8 U8 I32 I64 F64. */
#define DEFT_SAFETENSORS_MAX_HEADER 100000000u

/* A loaded file. tensors[] is in file (data offset) order; meta[] holds the
 * `__metadata__` entries in file order. Everything is owned by the struct. */
struct deft_safetensors {
    int n_tensors;
    struct deft_named_tensor *tensors;
    int n_meta;
    struct deft_kv *meta;   /* key/value strings owned by the struct */
};

DEFT_API DEFT_NODISCARD enum deft_status deft_safetensors_read(const char *path,
                                                              struct deft_safetensors **out);
/* Parse an in-memory file image; `name` is used in messages. */
DEFT_API DEFT_NODISCARD enum deft_status deft_safetensors_parse(const void *buf, size_t len,
                                                               const char *name,
                                                               struct deft_safetensors **out);
DEFT_API void deft_safetensors_free(struct deft_safetensors *st);
/* Tensor by name, or NULL. */
DEFT_API struct deft_tensor *deft_safetensors_find(const struct deft_safetensors *st,
                                                  const char *name);
/* `__metadata__` value by key, or NULL. */
DEFT_API const char *deft_safetensors_meta(const struct deft_safetensors *st, const char *key);

/* Write tensors (names unique, written sorted by name, data in that order)
 * and metadata (keys unique, values any UTF-8 text) atomically. The header is
 * padded with spaces to a multiple of 8 bytes. Tensors must be host tensors;
 * strided ones are written in C order. */
DEFT_API DEFT_NODISCARD enum deft_status deft_safetensors_write(const char *path,
                                                               const struct deft_named_tensor *t,
                                                               int n, const struct deft_kv *meta,
                                                               int n_meta);

/* ---- PyTorch checkpoints (.pth / .pt) ----------------------------------- */
/* Read a torch.save file (the ZIP format of torch >= 1.6, or the legacy
 * format of older versions) WITHOUT executing anything: a restricted
 * unpickler accepts only collections.OrderedDict, torch._utils._rebuild_tensor
 * {,_v2,_v3}, _rebuild_parameter, torch.<X>Storage and torch dtypes; any other
 * Python global is refused with an error naming it (DEFT_ERR_UNSUPPORTED).
 * The dict of tensors is the value of "state_dict", "model_state_dict" or
 * "model" when that holds tensors (nested wrappers are followed), else the
 * top-level dict; other entries (epoch, optimizer, ...) are ignored and a
 * leading "module." (DataParallel) is removed from names. The result is the
 * same struct the safetensors reader gives: named contiguous host tensors in
 * the dict's order, keeping their dtype (f32, f64, f16, bf16, i64, i32, i8,
 * u8; torch int16 becomes i32 and bool u8), plus the metadata entry
 * "source_format" ("pytorch zip" / "pytorch legacy"). Views, strides and
 * shared storages are honoured (every element is checked to lie inside its
 * storage). ZIP entries must be stored (uncompressed, as torch writes them);
 * CRC-32s are verified. TorchScript archives are refused. */
DEFT_API DEFT_NODISCARD enum deft_status deft_pth_read(const char *path,
                                                      struct deft_safetensors **out);
/* The same on an in-memory file image; `name` is used in messages (fuzzers). */
DEFT_API DEFT_NODISCARD enum deft_status deft_pth_parse(const void *buf, size_t len,
                                                       const char *name,
                                                       struct deft_safetensors **out);
/* ---- ONNX ------------------------------------------------------------- */
/* Read an ONNX model (protobuf, tensors inside the file). With graph != NULL
 * the whole graph is converted into deft's IR (an inference graph: batch-norm
 * in eval mode, dropout removed, a symbolic batch dimension becomes 1 and can
 * be changed with deft_graph_reshape_input) and *weights holds one f32 tensor
 * per PARAM/STATE value, by value name, ready for deft_model_save. Tensor
 * names are the file's, except generated ones ("onnx::Conv_191"), which are
 * named after the module path in the node name ("layer1.0.conv1.weight").
 * An op deft cannot convert gives DEFT_ERR_UNSUPPORTED naming the op and
 * node. With graph == NULL, *weights holds the initializers as they are
 * (names and dtypes; floats as f32, integers as i64). */
DEFT_API DEFT_NODISCARD enum deft_status deft_onnx_read(const char *path, struct deft_graph **graph,
                                                       struct deft_safetensors **weights);
/* The same on an in-memory file image; `name` is used in messages. */
DEFT_API DEFT_NODISCARD enum deft_status deft_onnx_parse(const void *buf, size_t len,
                                                        const char *name,
                                                        struct deft_graph **graph,
                                                        struct deft_safetensors **weights);
DEFT_API DEFT_NODISCARD enum deft_status deft_onnx_weights_parse(const void *buf, size_t len,
                                                                const char *name,
                                                                struct deft_safetensors **weights);

/* ---- ONNX export ------------------------------------------------------- */
/* Write the inference part of a deft graph as an ONNX model (onnx_export.c):
 * only the nodes the graph's outputs (values flagged DEFT_VF_OUTPUT) need;
 * batch-norm folded into the convolution before it (a BN with no conv before
 * it stays a BatchNormalization); dropout dropped; value, node and
 * initializer names are deft's ("layer1.0.conv1", "layer1.0.conv1.weight"),
 * the input keeps its name ("input_1"). The default opset 13 / IR 7 is the
 * highest every TensorRT 8.x/10.x parser takes (formats.md §1.5).
 * Decompositions at that opset: relu6 -> Clip(0, 6) (or Relu(x)-Relu(x-6) with
 * relu6_as_relu, which OpenCV DNN 4.6 reads), swish -> x*Sigmoid(x),
 * hardswish -> x*HardSigmoid(x) below opset 14, mish -> x*Tanh(Softplus(x))
 * (ONNX's Mish is opset 18), upsample -> Resize.
 * weights: one tensor per PARAM/STATE value by name (a model file's).
 * With act_amax set the graph is explicitly quantized (QDQ): a
 * QuantizeLinear/DequantizeLinear pair with scale amax/127 on each activation
 * entering a Conv, ConvTranspose or Gemm (each tensor is rounded once, right
 * where it is computed in INT8) and that layer's weights int8 with
 * per-output-channel scales; a layer whose input has no range (amax <= 0:
 * quantization-aware training kept it float) stays float, weights included;
 * with qdq_fusion also on the inputs of Add and pooling, the placement
 * TensorRT needs to fuse residual adds (more rounding: slightly less
 * accurate in runtimes that do not fuse). Atomic. */
struct deft_onnx_tail;
struct deft_onnx_export_opts {
    int opset;                /* 11..17; 0 -> 13 */
    bool dynamic_batch;       /* batch dimension "batch" (symbolic) instead of fixed */
    bool softmax;             /* append Softmax over the last axis of a single output */
    const char *output_name;  /* the single output's name (NULL: the deft value's name) */
    const char *input_name;   /* the (first) input's name (NULL: the deft value's name) */
    bool relu6_as_relu;
    const float *act_amax;    /* per deft value index; <= 0: leave that tensor in float */
    bool qdq_fusion;          /* also Q/DQ the inputs of Add and pooling (TensorRT fuses them) */
    const bool *float_nodes;  /* QDQ: per deft node index, true = inputs and weights stay float */
    const struct deft_onnx_tail *tail; /* nodes after the graph; its outputs replace the graph's */
    /* nodes computing the graph input mid_input (a deft INPUT value) from
     * values before it (a host step between two node ranges, written in ONNX):
     * emitted just before mid_input's first consumer, whose input becomes the
     * mid tail's first declared output; mid_input is no graph input then */
    const struct deft_onnx_tail *mid;
    int mid_input;
    /* crop-and-resize nodes as TensorRT's CropAndResizeDynamic plugin (TAO's
     * Faster R-CNN): their rois input is [N, B, 4, 1] (y1, x1, y2, x2 in
     * [0, 1], a mid tail's output), the plugin's [N, B, C, h, w] reshaped to
     * deft's [N*B, C, h, w]; without it, standard RoiAlign (opset 16+) */
    bool crop_plugin;
    const struct deft_kv *meta; /* ModelProto.metadata_props */
    int n_meta;
};
/* What an ONNX activation tensor holds, for calibration caches: the range of
 * deft value `value` (SAME), [0, 1] (UNIT, a sigmoid inside a decomposition)
 * or the value's range shifted by 6 (PLUS6, x-6 inside relu6-as-relu). */
enum deft_onnx_range { DEFT_ONNX_RANGE_SAME = 0, DEFT_ONNX_RANGE_UNIT, DEFT_ONNX_RANGE_PLUS6 };
struct deft_onnx_tensor_ref {
    char *name;
    int value;
    enum deft_onnx_range range;
};
/* Every activation tensor of the written graph (input, node outputs) in
 * graph order; freed with deft_onnx_export_info_free. */
struct deft_onnx_export_info {
    int n;
    struct deft_onnx_tensor_ref *t;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_onnx_export(const char *path,
                                                         const struct deft_graph *g,
                                                         const struct deft_safetensors *weights,
                                                         const struct deft_onnx_export_opts *o,
                                                         struct deft_onnx_export_info *info);
DEFT_API void deft_onnx_export_info_free(struct deft_onnx_export_info *info);

/* ---- ONNX export: nodes after the graph (onnx_tail.c) ---------------------
 * A task's post-processing (box decode, NMS) written as ONNX nodes that read
 * the graph's outputs by name (a graph output is named after its deft value,
 * or output_name).
 * deft_onnx_export appends them, with their constants, after the graph, and
 * the outputs declared here become the model's outputs instead of the
 * graph's. Names are copied. Errors are sticky: after the first one every
 * call is a no-op returning "", and deft_onnx_export (or
 * deft_onnx_tail_status) reports it. Tail tensors are not in
 * deft_onnx_export_info (they have no deft value to calibrate).
 *
 *     struct deft_onnx_tail *t = deft_onnx_tail_create("post/");
 *     const char *sh = deft_onnx_tail_const(t, NULL, DEFT_ONNX_INT64, 1, (int64_t[]){3}, (int64_t[]){0, -1, 8});
 *     const char *r = deft_onnx_tail_node(t, "Reshape", NULL, (const char *[]){"head_s32", sh}, 2, "rows");
 *     const char *y = deft_onnx_tail_node(t, "Sigmoid", NULL, &r, 1, "probs");
 *     deft_onnx_tail_output(t, y, DEFT_ONNX_FLOAT, 3, (int64_t[]){-1, 390, 8});   // -1: the batch
 *     opts.tail = t;  deft_onnx_export(...);  deft_onnx_tail_free(t);
 */
enum deft_onnx_dtype { /* ONNX TensorProto.DataType codes */
    DEFT_ONNX_FLOAT = 1, DEFT_ONNX_INT8 = 3, DEFT_ONNX_INT32 = 6, DEFT_ONNX_INT64 = 7, DEFT_ONNX_BOOL = 9
};
/* prefix: prepended to generated node, output and constant names. NULL on OOM. */
DEFT_API struct deft_onnx_tail *deft_onnx_tail_create(const char *prefix);
DEFT_API void deft_onnx_tail_free(struct deft_onnx_tail *t);
DEFT_API enum deft_status deft_onnx_tail_status(const struct deft_onnx_tail *t);
/* A node with one output; name NULL: generated from the op; out NULL: the
 * node's name. Returns the output's name (owned by t). */
DEFT_API const char *deft_onnx_tail_node(struct deft_onnx_tail *t, const char *op, const char *name,
                                         const char *const *in, int n_in, const char *out);
/* A node with n_out outputs named out[i] (NULL entries: "<node>_<i>"); returns output 0. */
DEFT_API const char *deft_onnx_tail_node_n(struct deft_onnx_tail *t, const char *op, const char *name,
                                           const char *const *in, int n_in, const char *const *out,
                                           int n_out);
/* Output i of the last node. */
DEFT_API const char *deft_onnx_tail_out(const struct deft_onnx_tail *t, int i);
/* The nodes written so far (e.g. to name them in a TensorRT precision list). */
DEFT_API int deft_onnx_tail_num_nodes(const struct deft_onnx_tail *t);
DEFT_API const char *deft_onnx_tail_node_name(const struct deft_onnx_tail *t, int i);
/* Attributes of the last node. */
DEFT_API void deft_onnx_tail_attr_i(struct deft_onnx_tail *t, const char *name, int64_t v);
DEFT_API void deft_onnx_tail_attr_f(struct deft_onnx_tail *t, const char *name, float v);
DEFT_API void deft_onnx_tail_attr_ints(struct deft_onnx_tail *t, const char *name, int n, const int64_t *v);
DEFT_API void deft_onnx_tail_attr_floats(struct deft_onnx_tail *t, const char *name, int n, const float *v);
DEFT_API void deft_onnx_tail_attr_s(struct deft_onnx_tail *t, const char *name, const char *v);
/* A constant (initializer) of ndim dims (0: a scalar); data in C order, host
 * little-endian; name NULL: generated. Returns its name. */
DEFT_API const char *deft_onnx_tail_const(struct deft_onnx_tail *t, const char *name, enum deft_onnx_dtype type,
                                          int ndim, const int64_t *dims, const void *data);
/* Declare a model output (in call order); a dim < 0 is the batch ("batch"
 * with dynamic_batch, else the graph's batch size). */
DEFT_API void deft_onnx_tail_output(struct deft_onnx_tail *t, const char *name, enum deft_onnx_dtype type,
                                    int ndim, const int64_t *dims);

/* ---- Keras HDF5 -------------------------------------------------------- */
/* Read the weights of a Keras 2 .h5/.hdf5 (model.save or save_weights; TAO's
 * pretrained files) through libhdf5: layer_names / weight_names (split
 * attributes joined), fixed or variable-length strings. Tensors are named
 * "<weight directory>.<role>" ("conv1/kernel:0" -> "conv1.weight"; gamma ->
 * weight, beta -> bias, moving_mean/variance -> running_mean/var) and
 * converted to deft's layouts (conv HWIO -> OIHW, depthwise -> [C*M, 1, H, W],
 * dense [in, out] -> [out, in]), f32. Metadata source_format "keras hdf5". */
DEFT_API DEFT_NODISCARD enum deft_status deft_keras_h5_read(const char *path,
                                                           struct deft_safetensors **out);
/* The same on an in-memory file image (libhdf5's core driver); `name` is
 * used in messages. */
DEFT_API DEFT_NODISCARD enum deft_status deft_keras_h5_parse(const void *buf, size_t len,
                                                            const char *name,
                                                            struct deft_safetensors **out);

/* Weights of any supported format, detected from the file's content (not its
 * extension): ZIP -> torch.save, legacy torch magic -> legacy torch.save,
 * safetensors header -> safetensors, ONNX -> its weights (named as
 * deft_onnx_read names them; the raw initializers when the graph does not
 * convert), Keras HDF5 -> deft_keras_h5_read; anything else is
 * DEFT_ERR_FORMAT. */
DEFT_API DEFT_NODISCARD enum deft_status deft_weights_read(const char *path,
                                                          struct deft_safetensors **out);
/* The format deft_weights_read would pick: *format = "pth", "pth-legacy",
 * "safetensors", "hdf5", "onnx", "pickle" or "unknown" (static strings).
 * Fails only when the file cannot be opened. */
DEFT_API DEFT_NODISCARD enum deft_status deft_weights_format(const char *path,
                                                            const char **format);

/* ---- model files ------------------------------------------------------- */
#define DEFT_MODEL_FORMAT_VERSION "1"

struct deft_model_save_opts {
    /* Where PARAM and STATE values come from: a runtime (deft_runtime_data),
     * or, when rt is NULL, `tensors` (one f32 tensor per PARAM/STATE value,
     * by value name, shapes must match the graph). */
    struct deft_runtime *rt;
    const struct deft_named_tensor *tensors;
    int n_tensors;
    /* More tensors stored beside the weights, e.g. optimizer state named
     * "__optim__.momentum.<param name>". Names must not clash. */
    const struct deft_named_tensor *extra;
    int n_extra;
    /* More `__metadata__` entries (e.g. "train_state" JSON). The keys
     * "deft_format", "graph" and "meta" are reserved. */
    const struct deft_kv *meta;
    int n_meta;
};

/* Save a model: tensors = every PARAM and STATE value (f32, by value name)
 * plus extras; `__metadata__` = {"deft_format": "1", "graph": <graph JSON>,
 * "meta": <graph meta as a JSON object>, caller entries...}. g may be NULL
 * when opts->rt is set (the runtime's graph is used); it may also be another
 * graph than the runtime's, e.g. the forward graph cloned before autograd:
 * values are then matched by name and shape. Atomic. */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_save(const char *path,
                                                        const struct deft_graph *g,
                                                        const struct deft_model_save_opts *opts);

/* A loaded model: the rebuilt graph and the whole file (all tensors, including
 * extras, and all metadata). */
struct deft_model {
    struct deft_graph *graph;
    struct deft_safetensors *file;
};

/* Load a model file written by deft_model_save. Checks the format version,
 * rebuilds the graph and checks that every PARAM/STATE value has an f32
 * tensor of the right shape. An ONNX file loads too (deft_onnx_read: its
 * graph and weights; no preprocessing or class metadata). */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_load(const char *path, struct deft_model **out);
/* The same on a deft model file already in memory (buf stays the caller's;
 * name is used in messages). No ONNX. */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_parse(const void *buf, size_t len, const char *name,
                                                         struct deft_model **out);
DEFT_API void deft_model_free(struct deft_model *m);

/* deft_model_copy_to_runtime flags */
#define DEFT_LOAD_ALLOW_MISSING 0x1  /* a PARAM/STATE with no tensor keeps its value */
#define DEFT_LOAD_SKIP_MISMATCH 0x2  /* a tensor of another shape is skipped (warning) */

/* Copy tensors into every PARAM and STATE value of rt with the same name.
 * Tensors may be F32, F64, F16 or BF16 (converted). A missing value or a
 * shape mismatch is an error naming the tensor (and both shapes) unless the
 * flags allow it. Tensors that match no value are ignored. *n_copied (may be
 * NULL) receives the number of values filled. */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_copy_to_runtime(
    const struct deft_safetensors *st, struct deft_runtime *rt, unsigned flags, int *n_copied);

/* ---- foreign weights into a deft architecture (model_import.c) ----------- */
struct deft_preprocess;
struct deft_import_opts {
    const char *arch;                /* a deft architecture (deft_model_arch_names), required */
    int num_classes;                 /* 0: the file's classifier size, else the names' count */
    const char *const *class_names;  /* n_class_names names; NULL: class_0, class_1, ... */
    int n_class_names;
    const struct deft_preprocess *pre; /* the images' preprocessing; NULL: torchvision's */
    bool skip_mismatch;              /* a tensor of another shape keeps its fresh value */
};
struct deft_import_report {
    int copied;                      /* weights filled from the file */
    int unused;                      /* tensors of the file no weight took (each logged as a warning) */
    int num_classes;                 /* the model's class count */
    bool num_classes_from_file;      /* ... read from the file's classifier */
};
/* Weights by torchvision/Keras names (deft_weights_read) put into o->arch:
 * *out is a model as deft_model_load gives one (inference graph with
 * "class_names" and "preprocess" metadata, one f32 tensor per weight), ready
 * for deft_model_save or a runtime. A missing weight or a shape mismatch is an
 * error naming the tensor; `name` is used in messages. */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_import_weights(const struct deft_safetensors *st,
                                                                  const char *name,
                                                                  const struct deft_import_opts *o,
                                                                  struct deft_model **out,
                                                                  struct deft_import_report *rep);
/* The same on a file of any format deft_weights_read reads. */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_import(const char *path, const struct deft_import_opts *o,
                                                          struct deft_model **out,
                                                          struct deft_import_report *rep);
/* The classifier size the file's tensors imply for arch (a weight whose
 * shape follows the class count, by name), 0 when none says. */
DEFT_API int deft_weights_num_classes(const char *arch, const struct deft_safetensors *st);
/* Set a graph's "class_names" metadata (names NULL: class_0 ... class_{n-1})
 * and its "preprocess" metadata (center crop to h x w). */
DEFT_API DEFT_NODISCARD enum deft_status deft_model_set_class_names(struct deft_graph *g,
                                                                   const char *const *names, int n);
DEFT_API DEFT_NODISCARD enum deft_status deft_model_set_preprocess(struct deft_graph *g,
                                                                  const struct deft_preprocess *p, int h,
                                                                  int w);

/* --class_names ARG: a file with one name per line (blank lines ignored), or
 * names separated by commas; an empty name is DEFT_ERR_INVALID_ARG. Free
 * with deft_string_list_free. */
DEFT_API DEFT_NODISCARD enum deft_status deft_class_names_from_arg(const char *arg, char ***names, int *n);

/* What evaluate and inference run: a deft model or ONNX file as
 * deft_model_load reads it, or, with arch, any weights deft_model_import
 * reads. Class names, when given, replace the file's (their count must match
 * its classes); a graph without preprocessing metadata gets torchvision's. */
struct deft_model_open_opts {
    const char *arch;
    const char *const *class_names;
    int n_class_names;
    const struct deft_preprocess *pre; /* for arch; NULL: torchvision's */
};
DEFT_API DEFT_NODISCARD enum deft_status deft_model_open(const char *path, const struct deft_model_open_opts *o,
                                                        struct deft_model **out);

/* Convert a host tensor of any float or integer dtype to f32 (dst holds numel
 * floats). Strided tensors are read in C order. */
DEFT_API DEFT_NODISCARD enum deft_status deft_tensor_to_f32(const struct deft_tensor *t,
                                                           float *dst);

/* ---- SHA-256 and downloads ------------------------------------------------ */
struct deft_sha256 { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t n; };
DEFT_API void deft_sha256_init(struct deft_sha256 *s);
DEFT_API void deft_sha256_update(struct deft_sha256 *s, const void *data, size_t n);
/* The digest as 64 lowercase hex digits and a NUL. */
DEFT_API void deft_sha256_final(struct deft_sha256 *s, char hex[65]);
DEFT_API DEFT_NODISCARD enum deft_status deft_sha256_file(const char *path, char hex[65]);
/* hex (a full digest) starts with expected (8 to 64 hex digits, any case). */
DEFT_API bool deft_sha256_matches(const char *hex, const char *expected);

struct deft_download_opts {
    const char *sha256;      /* expected digest or a prefix of it (>= 8 hex digits); NULL: unchecked */
    long connect_timeout_s;  /* 0 -> 30 */
    /* called as bytes arrive: done so far (including a resumed part) and the
     * total (-1 when the server does not say) */
    void (*progress)(void *user, int64_t done, int64_t total);
    void *user;
};
/* Download an http(s) URL to path (see download.c): "<path>.part" is resumed
 * when present; on success it is checked (DEFT_ERR_FORMAT and removed on a
 * mismatch), fsync'ed and renamed onto path. Network failures are DEFT_ERR_IO
 * with curl's reason ("Could not resolve host") and keep the .part file. */
DEFT_API DEFT_NODISCARD enum deft_status deft_download(const char *url, const char *path,
                                                      const struct deft_download_opts *o);

#ifdef __cplusplus
}
#endif
#endif

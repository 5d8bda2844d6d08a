/* onnx_import.c - an ONNX ModelProto into deft's graph IR and named f32
 * tensors (deft_onnx_parse), or just its initializers (deft_onnx_weights).
 *
 * The protobuf is decoded by protobuf-c with bindings generated at build time
 * from Debian's onnx.proto. Nodes are converted one by one in file order
 * (ONNX requires a topological order); values are looked up by name in a hash
 * table. Constant inputs (initializers, Constant nodes) become PARAM values
 * when they are an op's weights (conv, gemm, batch-norm scale/bias) and STATE
 * values otherwise (running statistics, constant operands of add/mul), so a
 * model file keeps them all. Attribute-like inputs (Reshape's shape, Pad's
 * pads, Clip's bounds, Resize's scales) must be constants: deft's shapes are
 * static. Anything else is refused with the op and node named. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "onnx/onnx.pb-c.h"
#include "io/io_impl.h"
#include "io/onnx_impl.h"

/* protobuf-c allocates through deft's allocator (failure injection, counts) */
static _Thread_local bool pb_oom; /* an allocation failed during the last unpack */
static void *pb_alloc(void *u, size_t n) {
    (void)u;
    void *p = deft_malloc(n ? n : 1);
    if (!p) pb_oom = true;
    return p;
}
static void pb_free(void *u, void *p) { (void)u; deft_free(p); }
static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

static const char *str_or(const char *s, const char *d) { return s && *s ? s : d; }

/* ---- tensors --------------------------------------------------------------- */

static const char *onnx_type_name(int t) {
    static const char *const n[] = {"undefined", "float", "uint8", "int8", "uint16", "int16",
                                    "int32", "int64", "string", "bool", "float16", "double",
                                    "uint32", "uint64", "complex64", "complex128", "bfloat16"};
    return t >= 0 && t < (int)(sizeof n / sizeof n[0]) ? n[t] : "unknown";
}

/* TensorProto -> host tensor: floating types to f32, integer types to i64. */
enum deft_status deft_onnx_tensor(const void *tensor_proto, const char *file,
                                  struct deft_tensor **out) {
    const Onnx__TensorProto *t = tensor_proto;
    *out = NULL;
    const char *nm = str_or(t->name, "(unnamed)");
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: tensor '%s' keeps its data in an "
                              "external file; save the model with its tensors inside (onnx.save "
                              "with save_as_external_data=False)", file, nm);
    if (t->n_dims > DEFT_MAX_DIMS)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most "
                              "%d)", file, nm, t->n_dims, DEFT_MAX_DIMS);
    struct deft_shape sh = {.ndim = (int)t->n_dims};
    for (size_t i = 0; i < t->n_dims; i++) sh.d[i] = t->dims[i];
    int dt = t->has_data_type ? t->data_type : 0;
    size_t esize;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: esize = 4; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: esize = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
        esize = 2; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: esize = 1; break;
    default:
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: tensor '%s' has element type %s, which "
                              "deft does not read", file, nm, onnx_type_name(dt));
    }
    uint64_t nbytes;
    if (!deft_io_shape_bytes(&sh, 8, &nbytes))
        return deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s' has a bad shape", file, nm);
    int64_t numel = deft_shape_numel(&sh);
    bool is_float = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
                    dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    /* where the elements are: raw little-endian bytes, or one typed field */
    const uint8_t *raw = NULL;
    size_t n_typed = 0;
    if (t->has_raw_data && t->raw_data.len) {
        if (t->raw_data.len != (size_t)numel * esize)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s' holds %zu bytes for %lld "
                                  "elements of %s", file, nm, t->raw_data.len, (long long)numel,
                                  onnx_type_name(dt));
        raw = t->raw_data.data;
    } else {
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: n_typed = t->n_float_data; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: n_typed = t->n_double_data; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: n_typed = t->n_int64_data; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
            n_typed = t->n_uint64_data; break;
        default: n_typed = t->n_int32_data; break; /* int32 and narrower, float16, bfloat16 */
        }
        if (n_typed != (size_t)numel)
            return deft_set_error(DEFT_ERR_FORMAT, "%s: tensor '%s' has %zu values for %lld "
                                  "elements", file, nm, n_typed, (long long)numel);
    }
    struct deft_tensor *d;
    enum deft_status s = deft_tensor_create(is_float ? DEFT_F32 : DEFT_I64, &sh, &d);
    if (s) return deft_wrap_error(s, "%s: tensor '%s'", file, nm);
    float *f = d->data;
    int64_t *q = d->data;
    for (int64_t i = 0; i < numel; i++) {
        const uint8_t *p = raw ? raw + (size_t)i * esize : NULL;
        uint64_t bits = 0;
        if (p)
            for (size_t b = esize; b-- > 0;) bits = bits << 8 | p[b];
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
            float v;
            if (p) {
                uint32_t u = (uint32_t)bits;
                memcpy(&v, &u, 4);
            } else {
                v = t->float_data[i];
            }
            f[i] = v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            double v;
            if (p) memcpy(&v, &bits, 8); else v = t->double_data[i];
            f[i] = (float)v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
            f[i] = deft_io_f16_to_f32((uint16_t)(p ? bits : (uint64_t)t->int32_data[i]));
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
            f[i] = deft_io_bf16_to_f32((uint16_t)(p ? bits : (uint64_t)t->int32_data[i]));
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
            q[i] = p ? (int64_t)bits : t->int64_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
            q[i] = p ? (int64_t)bits : (int64_t)t->uint64_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
            q[i] = p ? (int32_t)(uint32_t)bits : t->int32_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
            q[i] = p ? (int16_t)(uint16_t)bits : t->int32_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
            q[i] = p ? (int8_t)(uint8_t)bits : t->int32_data[i];
            break;
        default: /* uint8, uint16, bool */
            q[i] = p ? (int64_t)bits : t->int32_data[i];
            break;
        }
    }
    *out = d;
    return DEFT_OK;
}

/* ---- the file ---------------------------------------------------------------- */

/* protobuf-c decodes nested messages recursively with no depth limit; a
 * hostile file nesting graphs in attributes in graphs could exhaust the stack.
 * So walk the wire format first with the generated descriptors and refuse
 * nesting deeper than this (real models nest a subgraph or two). */
#define ONNX_MAX_DEPTH 64

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* 1: fine, 0: malformed (protobuf-c will say so), -1: too deep */
static int check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                       int depth) {
    if (depth > ONNX_MAX_DEPTH) return -1;
    while (p < end) {
        uint64_t tag, n;
        if (!read_varint(&p, end, &tag)) return 0;
        switch (tag & 7) {
        case 0: if (!read_varint(&p, end, &n)) return 0; break;
        case 1: if (end - p < 8) return 0; p += 8; break;
        case 5: if (end - p < 4) return 0; p += 4; break;
        case 2: {
            if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p)) return 0;
            const ProtobufCFieldDescriptor *f =
                d ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int r = check_depth(f->descriptor, p, p + n, depth + 1);
                if (r <= 0) return r;
            }
            p += n;
            break;
        }
        default: return 0; /* groups: not in onnx.proto */
        }
    }
    return 1;
}

enum deft_status deft_onnx_unpack(const void *buf, size_t len, const char *file, void **model) {
    *model = NULL;
    if (check_depth(&onnx__model_proto__descriptor, buf, (const uint8_t *)buf + len, 0) < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: messages nested more than %d deep (not a "
                              "model deft reads)", file, ONNX_MAX_DEPTH);
    pb_oom = false;
    Onnx__ModelProto *m = onnx__model_proto__unpack(&pb_allocator, len, buf);
    if (!m)
        return pb_oom
                   ? deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory decoding ONNX", file)
                   : deft_set_error(DEFT_ERR_FORMAT, "%s: not a valid ONNX model (the protobuf "
                                    "does not decode)", file);
    if (!m->graph) {
        onnx__model_proto__free_unpacked(m, &pb_allocator);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the ONNX model has no graph", file);
    }
    *model = m;
    return DEFT_OK;
}

void deft_onnx_free(void *model) {
    if (model) onnx__model_proto__free_unpacked(model, &pb_allocator);
}

enum deft_status deft_onnx_weights_parse(const void *buf, size_t len, const char *file,
                                         struct deft_safetensors **out) {
    *out = NULL;
    void *mv;
    enum deft_status s = deft_onnx_unpack(buf, len, file, &mv);
    if (s) return s;
    Onnx__GraphProto *g = ((Onnx__ModelProto *)mv)->graph;
    struct deft_safetensors *st = NULL;
    if (g->n_initializer == 0) {
        s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: the ONNX graph has no initializers (weights)",
                           file);
        goto done;
    }
    if (g->n_initializer > INT32_MAX / 2) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: too many initializers", file);
        goto done;
    }
    if ((s = deft_io_tensor_list_new("onnx", &st))) goto done;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        const char *nm = t->name;
        if (!nm || !*nm) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: initializer %zu has no name", file, i);
            goto done;
        }
        struct deft_tensor *tt;
        if ((s = deft_onnx_tensor(t, file, &tt)) || (s = deft_io_tensor_list_add(st, nm, tt)))
            goto done;
    }
    if ((s = deft_io_check_unique_names(st, file, NULL))) goto done;
done:
    if (s) {
        deft_safetensors_free(st);
        st = NULL;
    }
    deft_onnx_free(mv);
    *out = st;
    return s;
}

enum deft_status deft_onnx_read(const char *path, struct deft_graph **graph,
                                struct deft_safetensors **weights) {
    if (graph) *graph = NULL;
    *weights = NULL;
    void *buf;
    size_t len;
    enum deft_status s = deft_file_read(path, (size_t)2 << 30, &buf, &len); /* protobuf's 2 GiB */
    if (s) return s;
    s = graph ? deft_onnx_parse(buf, len, path, graph, weights)
              : deft_onnx_weights_parse(buf, len, path, weights);
    deft_free(buf);
    return s;
}

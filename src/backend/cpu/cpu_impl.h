/* cpu_impl.h (internal) - the cpu backend's program and its node builder.
 *
 * compile() turns every node into a short list of steps: oneDNN primitives
 * (with memory objects created once and re-pointed at each run) and small C
 * functions (running statistics, bias sums, the reference fallback). Each
 * value gets one memory descriptor (its layout); an op that wants another
 * layout for an argument gets a reorder into the shared scratch buffer
 * (cpu_bind_in / cpu_bind_out do that automatically).
 *
 * Scratch layout while node n runs: [temps of n][oneDNN scratchpad of n].
 */
#ifndef DEFT_CPU_IMPL_H
#define DEFT_CPU_IMPL_H

#include "backend/backend.h"
#include "backend/cpu/dnnl_util.h"

#define CPU_MAX_ARGS 16

/* OWNED: a buffer the program keeps across runs (weights prepared once). */
enum cpu_buf { CPU_BUF_VALUE = 0, CPU_BUF_TEMP, CPU_BUF_PAD, CPU_BUF_OWNED };

struct cpu_mem {
    dnnl_memory_t mem;
    enum cpu_buf kind;
    int v;          /* CPU_BUF_VALUE: value index */
    size_t off;     /* CPU_BUF_TEMP: byte offset in scratch */
    size_t bytes;
    void *owned;    /* CPU_BUF_OWNED: the buffer (deft_malloc_aligned) */
};

struct cpu_prog;
struct cpu_node;
struct cpu_step;
typedef enum deft_status (*cpu_step_fn)(struct cpu_prog *p, struct cpu_node *nd,
                                        const struct cpu_step *s, void *const *ptr,
                                        char *scratch, const struct deft_run_ctx *rc);

struct cpu_step {
    dnnl_primitive_t prim;          /* NULL for a function step */
    int nargs;
    int arg[CPU_MAX_ARGS];          /* DNNL_ARG_* */
    int mem[CPU_MAX_ARGS];          /* index into the node's mems */
    cpu_step_fn fn;
    int imem[4];                    /* function steps: mems they read/write (-1 unused) */
};

struct cpu_node {
    struct cpu_step *steps;
    int nsteps, cap_steps;
    int nprep;                      /* steps [0, nprep) prepare weights: run only when
                                       the runtime's param_version differs from prep_ver */
    uint64_t prep_ver;
    struct cpu_mem *mems;
    int nmems, cap_mems;
    int pending[DEFT_MAX_OUTPUTS * 2][2]; /* output reorders (temp mem, value mem) */
    int npending;
    size_t temp_bytes;              /* scratch temps */
    size_t pad_bytes;               /* largest oneDNN scratchpad */
    bool fallback;
    int sub_v[DEFT_MAX_INPUTS], sub_mem[DEFT_MAX_INPUTS], nsub; /* fallback inputs */
    void *priv;                     /* op data, freed with deft_free */
};

/* An inference chain compiled as one convolution with oneDNN post-ops:
 * conv [-> batch norm, folded into the weights] [-> act] [-> add] [-> act],
 * run at the chain's last node (cpu_fuse.c). */
#define CPU_FUSE_MAX_OPS 3
struct cpu_fuse_op {
    bool add;                       /* binary add of `value`, else an eltwise */
    dnnl_alg_kind_t alg;
    float alpha, beta;
    int value;                      /* add: the other operand */
};
struct cpu_fusion {
    int conv, bn;                   /* nodes (bn -1: none) */
    int nops;
    struct cpu_fuse_op ops[CPU_FUSE_MAX_OPS];
    int out;                        /* value the chain produces */
    bool q8;                        /* int8: the conv's input has a scale (cpu_conv_q8.c);
                                       the add is a sum post-op into the output */
};

struct cpu_prog {
    const struct deft_graph *g;
    bool inference;                 /* forward-only graph (backend_opts.inference) */
    bool fuse;                      /* inference fusions on */
    bool winograd;                  /* inference: Winograd convolutions at batch >= 8 too */
    int *fused_into;                /* per node: the chain's last node, or -1 */
    struct cpu_fusion *fusion;      /* per node: valid where fusion[n].conv >= 0 (chain ends at n) */
    int *last_use;                  /* per value: read by a chain ending later (-1: no) */
    bool *fused_away;               /* per value: a chain's intermediate, never materialized */
    int *alias;                     /* per value: the value whose buffer it takes over (-1: its own) */
    const float *q8_scale;          /* int8 inference: per value, its scale (0: none); NULL: fp32 */
    bool fchain;                    /* bf16 or f32-nhwc inference: the int8 path with every scale 1 */
    dnnl_data_type_t fchain_dt;     /* ... and its data type (dnnl_bf16, dnnl_f32) */
    float *ones;                    /* fchain: q8_scale (owned) */
    bool *q8;                       /* per value: stored as u8/s8 (made and read by int8 chains only) */
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int nv, nn;
    dnnl_memory_desc_t *md;         /* layout of each value */
    bool *md_set;
    bool *native_opaque;            /* opaque value made by a oneDNN primitive */
    struct cpu_node *nodes;
    void **ptr_tmp;                 /* fallback's substituted pointer array */
    int threads;
    /* read_plain cache: one reorder for the last value read */
    int rp_v;
    dnnl_primitive_t rp_prim;
    dnnl_memory_t rp_src, rp_dst;
};

/* ---- helpers shared by the op files (cpu_backend.c) ---- */
const struct deft_value *cpu_val(const struct cpu_prog *p, int v);
/* Must value v be plain f32 (runtime-owned, param gradient, OUTPUT)? */
bool cpu_value_plain_required(const struct cpu_prog *p, int v);
/* Choose the layout of node output v: `want`, or plain when required. */
void cpu_set_md(struct cpu_prog *p, int v, const dnnl_memory_desc_t *want);
/* A memory object bound to value v's buffer, described by md (raw view). */
enum deft_status cpu_mem_value(struct cpu_prog *p, struct cpu_node *nd, int v,
                               const dnnl_memory_desc_t *md, int *mi);
/* A memory object in this node's scratch temps. */
enum deft_status cpu_mem_temp(struct cpu_prog *p, struct cpu_node *nd, const dnnl_memory_desc_t *md,
                              int *mi);
/* Input v as md `want`: the value itself, or a scratch copy reordered before
 * the next primitive. */
enum deft_status cpu_bind_in(struct cpu_prog *p, struct cpu_node *nd, int v,
                             const dnnl_memory_desc_t *want, int *mi);
/* Output v produced as md `want`: the value itself, or a scratch temp
 * reordered into v after the next primitive (cpu_add_prim). v < 0: a temp. */
enum deft_status cpu_bind_out(struct cpu_prog *p, struct cpu_node *nd, int v,
                              const dnnl_memory_desc_t *want, int *mi);
/* The same with an explicit view of v's bytes (5-D grouped weights over a
 * 4-D plain param, a transposed-conv weight's strides ...). An output view
 * requires v to be plain. */
enum deft_status cpu_bind_in_as(struct cpu_prog *p, struct cpu_node *nd, int v,
                                const dnnl_memory_desc_t *view, const dnnl_memory_desc_t *want,
                                int *mi);
enum deft_status cpu_bind_out_as(struct cpu_prog *p, struct cpu_node *nd, int v,
                                 const dnnl_memory_desc_t *view, const dnnl_memory_desc_t *want,
                                 int *mi);
/* Create the primitive of pd and append it with these args (plus the
 * scratchpad), then the pending output reorders. Does not destroy pd. */
enum deft_status cpu_add_prim(struct cpu_prog *p, struct cpu_node *nd, const_dnnl_primitive_desc_t pd,
                              int nargs, const int *args, const int *mems);
/* Append a reorder step between two mems. */
enum deft_status cpu_add_reorder(struct cpu_prog *p, struct cpu_node *nd, int from, int to);
/* A memory object over a buffer the program owns (kept across runs). */
enum deft_status cpu_mem_owned(struct cpu_prog *p, struct cpu_node *nd, const dnnl_memory_desc_t *md,
                               int *mi);
/* Forward prop kind: inference in forward-only programs (no workspaces). */
dnnl_prop_kind_t cpu_fwd_prop(const struct cpu_prog *p);
/* oneDNN eltwise alg/alpha/beta for an activation (use_dst: the backward
 * variant reading y); false when oneDNN has none. */
bool cpu_act_alg(const struct deft_act_attr *a, bool use_dst, dnnl_alg_kind_t *alg, float *alpha,
                 float *beta);
/* Plan the inference chains of the whole graph (fills fused_into, fusion, last_use). */
enum deft_status cpu_fuse_plan(struct cpu_prog *p);
/* Append a function step with up to 4 mems. */
enum deft_status cpu_add_fn(struct cpu_prog *p, struct cpu_node *nd, cpu_step_fn fn, int m0, int m1,
                            int m2, int m3);
/* Pointer of a mem for this run. */
void *cpu_mem_ptr(const struct cpu_node *nd, int mi, void *const *ptr, char *scratch);
/* Same value shape as dnnl dims. */
void cpu_dims(const struct deft_shape *s, int64_t *dims);

/* A convolution's geometry in oneDNN terms (cpu_conv.c). */
struct conv_geom {
    bool transposed;
    int64_t src[4], dst[4];  /* N, C, H, W of the conv's src/dst (deconv: its own src/dst) */
    int64_t g, r, s;
    dnnl_dims_t stride, dil, pad_l, pad_r;
    dnnl_memory_desc_t w_plain;  /* the graph's weight bytes as oneDNN logical weights */
    dnnl_memory_desc_t w_any, b_plain;
};
void cpu_conv_geom_init(struct conv_geom *cg, const struct deft_attr *a, bool transposed,
                        const struct deft_shape *x, const struct deft_shape *y, const struct deft_shape *w);
/* Would convolution node conv run as Winograd here (its geometry, batch and
 * the program's choice)? Such a chain leaves its residual add unfused. */
bool cpu_conv_node_winograd(const struct cpu_prog *p, const struct deft_node *conv);
/* A stride-2 transposed convolution's forward as four phase convolutions
 * (cpu_deconv_phase.c); DEFT_ERR_UNSUPPORTED, with nd untouched, when the
 * geometry or oneDNN does not allow it. */
enum deft_status cpu_compile_deconv_phase(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd,
                                          const struct conv_geom *cg);
/* Append a reorder from -> to that multiplies by scale (int8 (de)quantization). */
enum deft_status cpu_add_reorder_scaled(struct cpu_prog *p, struct cpu_node *nd, int from, int to, float scale);
/* The int8 chain ending at node n (cpu_conv_q8.c). */
enum deft_status cpu_compile_conv_q8(struct cpu_prog *p, const struct cpu_fusion *f, struct cpu_node *nd);

/* ---- op families: return DEFT_ERR_UNSUPPORTED to fall back to ref ---- */
enum deft_status cpu_compile_conv(struct cpu_prog *p, int n, struct cpu_node *nd);
/* The chain ending at node n as one convolution (f: p->fusion[n]). */
enum deft_status cpu_compile_conv_fused(struct cpu_prog *p, const struct cpu_fusion *f, struct cpu_node *nd);
enum deft_status cpu_compile_batchnorm(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_eltwise(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_pool(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_binary(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_linear(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_softmax(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_shape(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_fake_quant(struct cpu_prog *p, int n, struct cpu_node *nd);
enum deft_status cpu_compile_roi_align(struct cpu_prog *p, int n, struct cpu_node *nd);

#endif

/* cpu_backend.c - the fast CPU backend on oneDNN 2.6 (vtable, compile, run).
 *
 * compile() walks the nodes in order. Each op family (cpu_conv.c,
 * cpu_batchnorm.c ...) creates its primitives once and chooses the layout of
 * the values it produces: convolutions pick theirs (nChw16c on AVX-512) and
 * every memory-bound op takes its producer's layout, so activations stay
 * blocked from conv to conv. Values the runtime owns or reads (inputs,
 * params, state, param gradients, outputs) stay plain, per backend.h.
 * Ops without a native kernel run deft_ref_run_node on plain copies.
 */
#include <string.h>
#include "backend/cpu/cpu_impl.h"

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

/* ------------------------------------------------------------------------ */
/* builder helpers                                                           */

const struct deft_value *cpu_val(const struct cpu_prog *p, int v) {
    return deft_graph_value(p->g, v);
}

void cpu_dims(const struct deft_shape *s, int64_t *dims) {
    for (int i = 0; i < s->ndim; i++) dims[i] = s->d[i];
}

bool cpu_value_plain_required(const struct cpu_prog *p, int v) {
    const struct deft_value *val = cpu_val(p, v);
    if (val->kind != DEFT_VALUE_NODE) return true;
    if (val->flags & DEFT_VF_OUTPUT) return true;
    if (val->grad_of >= 0) {
        const struct deft_value *of = cpu_val(p, val->grad_of);
        if (of && of->kind == DEFT_VALUE_PARAM) return true;
    }
    return false;
}

void cpu_set_md(struct cpu_prog *p, int v, const dnnl_memory_desc_t *want) {
    if (v < 0 || p->md_set[v]) return;
    if (cpu_value_plain_required(p, v) || want->ndims == 0)
        deft_dnnl_md_plain(&p->md[v], &cpu_val(p, v)->shape);
    else
        p->md[v] = *want;
    p->md_set[v] = true;
}

static enum deft_status new_mem(struct cpu_prog *p, struct cpu_node *nd, const dnnl_memory_desc_t *md,
                                enum cpu_buf kind, int *mi) {
    if (nd->nmems == nd->cap_mems) {
        int nc = nd->cap_mems ? nd->cap_mems * 2 : 8;
        void *m = deft_realloc(nd->mems, (size_t)nc * sizeof *nd->mems);
        if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling for cpu");
        nd->mems = m;
        nd->cap_mems = nc;
    }
    struct cpu_mem *m = &nd->mems[nd->nmems];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->v = -1;
    m->bytes = deft_dnnl_md_size(md);
    DEFT_DNNL_CHECK(dnnl_memory_create(&m->mem, md, p->eng, DNNL_MEMORY_NONE));
    *mi = nd->nmems++;
    return DEFT_OK;
}

enum deft_status cpu_mem_value(struct cpu_prog *p, struct cpu_node *nd, int v,
                               const dnnl_memory_desc_t *md, int *mi) {
    enum deft_status st = new_mem(p, nd, md, CPU_BUF_VALUE, mi);
    if (st) return st;
    nd->mems[*mi].v = v;
    return DEFT_OK;
}

enum deft_status cpu_mem_owned(struct cpu_prog *p, struct cpu_node *nd, const dnnl_memory_desc_t *md,
                               int *mi) {
    enum deft_status st = new_mem(p, nd, md, CPU_BUF_OWNED, mi);
    if (st) return st;
    struct cpu_mem *m = &nd->mems[*mi];
    if (!(m->owned = deft_malloc_aligned(m->bytes ? m->bytes : 64)))
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory preparing weights (%zu bytes)", m->bytes);
    return DEFT_OK;
}

dnnl_prop_kind_t cpu_fwd_prop(const struct cpu_prog *p) {
    return p->inference ? dnnl_forward_inference : dnnl_forward_training;
}

enum deft_status cpu_mem_temp(struct cpu_prog *p, struct cpu_node *nd, const dnnl_memory_desc_t *md,
                              int *mi) {
    enum deft_status st = new_mem(p, nd, md, CPU_BUF_TEMP, mi);
    if (st) return st;
    nd->mems[*mi].off = nd->temp_bytes;
    nd->temp_bytes += ALIGN64(nd->mems[*mi].bytes);
    return DEFT_OK;
}

static enum deft_status push_step(struct cpu_node *nd, struct cpu_step **out) {
    if (nd->nsteps == nd->cap_steps) {
        int nc = nd->cap_steps ? nd->cap_steps * 2 : 4;
        void *s = deft_realloc(nd->steps, (size_t)nc * sizeof *nd->steps);
        if (!s) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling for cpu");
        nd->steps = s;
        nd->cap_steps = nc;
    }
    *out = &nd->steps[nd->nsteps++];
    memset(*out, 0, sizeof **out);
    for (int i = 0; i < 4; i++) (*out)->imem[i] = -1;
    return DEFT_OK;
}

/* A reorder step from mems[from] to mems[to] (prim is owned by the step, or destroyed on failure). */
static enum deft_status push_reorder_step(struct cpu_node *nd, dnnl_primitive_t prim, int from, int to) {
    struct cpu_step *s;
    enum deft_status st = push_step(nd, &s);
    if (st) {
        dnnl_primitive_destroy(prim);
        return st;
    }
    s->prim = prim;
    s->nargs = 2;
    s->arg[0] = DNNL_ARG_FROM;
    s->mem[0] = from;
    s->arg[1] = DNNL_ARG_TO;
    s->mem[1] = to;
    return DEFT_OK;
}

enum deft_status cpu_add_reorder(struct cpu_prog *p, struct cpu_node *nd, int from, int to) {
    const dnnl_memory_desc_t *a, *b;
    DEFT_DNNL_CHECK(dnnl_memory_get_memory_desc(nd->mems[from].mem, &a));
    DEFT_DNNL_CHECK(dnnl_memory_get_memory_desc(nd->mems[to].mem, &b));
    dnnl_primitive_t prim;
    enum deft_status st = deft_dnnl_reorder_create(&prim, p->eng, a, b);
    return st ? st : push_reorder_step(nd, prim, from, to);
}

enum deft_status cpu_add_reorder_scaled(struct cpu_prog *p, struct cpu_node *nd, int from, int to, float scale) {
    const dnnl_memory_desc_t *a, *b;
    DEFT_DNNL_CHECK(dnnl_memory_get_memory_desc(nd->mems[from].mem, &a));
    DEFT_DNNL_CHECK(dnnl_memory_get_memory_desc(nd->mems[to].mem, &b));
    dnnl_primitive_attr_t attr;
    dnnl_primitive_desc_t pd;
    DEFT_DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    dnnl_status_t ds = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale);
    if (ds == dnnl_success) ds = dnnl_reorder_primitive_desc_create(&pd, a, p->eng, b, p->eng, attr);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success) return deft_dnnl_error(ds, "scaled reorder");
    dnnl_primitive_t prim;
    ds = dnnl_primitive_create(&prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (ds != dnnl_success) return deft_dnnl_error(ds, "dnnl_primitive_create(scaled reorder)");
    return push_reorder_step(nd, prim, from, to);
}

enum deft_status cpu_bind_in_as(struct cpu_prog *p, struct cpu_node *nd, int v,
                                const dnnl_memory_desc_t *view, const dnnl_memory_desc_t *want,
                                int *mi) {
    if (deft_dnnl_md_equal(view, want)) return cpu_mem_value(p, nd, v, want, mi);
    int src;
    enum deft_status st = cpu_mem_value(p, nd, v, view, &src);
    if (!st) st = cpu_mem_temp(p, nd, want, mi);
    if (!st) st = cpu_add_reorder(p, nd, src, *mi);
    if (!st)
        deft_log(DEFT_LOG_DEBUG, "cpu: reorder input %s %s -> %s", cpu_val(p, v)->name,
                 deft_dnnl_md_name(view), deft_dnnl_md_name(want));
    return st;
}

enum deft_status cpu_bind_in(struct cpu_prog *p, struct cpu_node *nd, int v,
                             const dnnl_memory_desc_t *want, int *mi) {
    if (v < 0 || !p->md_set[v])
        return deft_set_error(DEFT_ERR_BACKEND, "cpu: input value %d has no layout yet", v);
    return cpu_bind_in_as(p, nd, v, &p->md[v], want, mi);
}

enum deft_status cpu_bind_out(struct cpu_prog *p, struct cpu_node *nd, int v,
                              const dnnl_memory_desc_t *want, int *mi) {
    if (v < 0) return cpu_mem_temp(p, nd, want, mi);
    cpu_set_md(p, v, want);
    return cpu_bind_out_as(p, nd, v, &p->md[v], want, mi);
}

enum deft_status cpu_bind_out_as(struct cpu_prog *p, struct cpu_node *nd, int v,
                                 const dnnl_memory_desc_t *view, const dnnl_memory_desc_t *want,
                                 int *mi) {
    if (v < 0) return cpu_mem_temp(p, nd, want, mi);
    if (!p->md_set[v]) {
        deft_dnnl_md_plain(&p->md[v], &cpu_val(p, v)->shape);
        p->md_set[v] = true;
    }
    if (deft_dnnl_md_equal(view, want)) return cpu_mem_value(p, nd, v, want, mi);
    int dst;
    enum deft_status st = cpu_mem_temp(p, nd, want, mi);
    if (!st) st = cpu_mem_value(p, nd, v, view, &dst);
    if (st) return st;
    if (nd->npending >= DEFT_MAX_OUTPUTS * 2)
        return deft_set_error(DEFT_ERR_BACKEND, "cpu: too many output reorders");
    nd->pending[nd->npending][0] = *mi;
    nd->pending[nd->npending][1] = dst;
    nd->npending++;
    deft_log(DEFT_LOG_DEBUG, "cpu: reorder output %s %s -> %s", cpu_val(p, v)->name,
             deft_dnnl_md_name(want), deft_dnnl_md_name(view));
    return DEFT_OK;
}

enum deft_status cpu_add_prim(struct cpu_prog *p, struct cpu_node *nd, const_dnnl_primitive_desc_t pd,
                              int nargs, const int *args, const int *mems) {
    enum deft_status st;
    int pad = -1;
    const dnnl_memory_desc_t *spmd = deft_dnnl_pd_md(pd, dnnl_query_scratchpad_md, 0);
    if (spmd->ndims > 0 && deft_dnnl_md_size(spmd) > 0) {
        if ((st = new_mem(p, nd, spmd, CPU_BUF_PAD, &pad))) return st;
        if (nd->mems[pad].bytes > nd->pad_bytes) nd->pad_bytes = nd->mems[pad].bytes;
    }
    dnnl_primitive_t prim;
    DEFT_DNNL_CHECK(dnnl_primitive_create(&prim, pd));
    struct cpu_step *s;
    if ((st = push_step(nd, &s))) {
        dnnl_primitive_destroy(prim);
        return st;
    }
    s->prim = prim;
    for (int i = 0; i < nargs; i++) {
        if (mems[i] < 0) continue; /* optional argument not present */
        s->arg[s->nargs] = args[i];
        s->mem[s->nargs++] = mems[i];
    }
    if (pad >= 0) {
        s->arg[s->nargs] = DNNL_ARG_SCRATCHPAD;
        s->mem[s->nargs++] = pad;
    }
    for (int i = 0; i < nd->npending; i++)
        if ((st = cpu_add_reorder(p, nd, nd->pending[i][0], nd->pending[i][1]))) return st;
    nd->npending = 0;
    return DEFT_OK;
}

enum deft_status cpu_add_fn(struct cpu_prog *p, struct cpu_node *nd, cpu_step_fn fn, int m0, int m1,
                            int m2, int m3) {
    (void)p;
    struct cpu_step *s;
    enum deft_status st = push_step(nd, &s);
    if (st) return st;
    s->fn = fn;
    s->imem[0] = m0;
    s->imem[1] = m1;
    s->imem[2] = m2;
    s->imem[3] = m3;
    return DEFT_OK;
}

void *cpu_mem_ptr(const struct cpu_node *nd, int mi, void *const *ptr, char *scratch) {
    const struct cpu_mem *m = &nd->mems[mi];
    switch (m->kind) {
    case CPU_BUF_VALUE: return ptr[m->v];
    case CPU_BUF_TEMP: return scratch + m->off;
    case CPU_BUF_PAD: return scratch + ALIGN64(nd->temp_bytes);
    case CPU_BUF_OWNED: return m->owned;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* reference fallback and reshape                                            */

static enum deft_status run_fallback(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                     void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    int n = s->imem[0];
    memcpy(p->ptr_tmp, ptr, (size_t)p->nv * sizeof *p->ptr_tmp);
    for (int i = 0; i < nd->nsub; i++)
        p->ptr_tmp[nd->sub_v[i]] = cpu_mem_ptr(nd, nd->sub_mem[i], ptr, scratch);
    return deft_ref_run_node(p->g, n, p->ptr_tmp, rc);
}

static enum deft_status compile_fallback(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    enum deft_status st;
    nd->fallback = true;
    for (int i = 0; i < node->n_in; i++) {
        int v = node->in[i];
        if (v < 0 || deft_dnnl_md_is_plain(&p->md[v])) continue;
        if (p->native_opaque[v])
            return deft_set_error(DEFT_ERR_UNSUPPORTED,
                                  "cpu: node '%s' cannot read '%s' made by a oneDNN primitive",
                                  node->name, cpu_val(p, v)->name);
        bool dup = false;
        for (int k = 0; k < nd->nsub; k++) dup |= nd->sub_v[k] == v;
        if (dup) continue;
        dnnl_memory_desc_t plain;
        deft_dnnl_md_plain(&plain, &cpu_val(p, v)->shape);
        int mi;
        if ((st = cpu_bind_in(p, nd, v, &plain, &mi))) return st;
        nd->sub_v[nd->nsub] = v;
        nd->sub_mem[nd->nsub++] = mi;
    }
    for (int i = 0; i < node->n_out; i++) {
        int v = node->out[i];
        if (v < 0) continue;
        deft_dnnl_md_plain(&p->md[v], &cpu_val(p, v)->shape);
        p->md_set[v] = true;
    }
    deft_log(DEFT_LOG_DEBUG, "cpu: %s (%s) runs on the reference kernels", node->name,
             deft_op_name(node->op));
    return cpu_add_fn(p, nd, run_fallback, n, -1, -1, -1);
}

/* Reshape: output plain; a blocked input is reordered straight into it (the
 * plain bytes of the input shape are the plain bytes of the output shape). */
static enum deft_status compile_reshape(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    int x = node->in[0], y = node->out[0];
    dnnl_memory_desc_t ymd, xplain;
    deft_dnnl_md_plain(&ymd, &cpu_val(p, y)->shape);
    deft_dnnl_md_plain(&xplain, &cpu_val(p, x)->shape);
    p->md[y] = ymd;
    p->md_set[y] = true;
    int mx, my;
    enum deft_status st = cpu_mem_value(p, nd, x, &p->md[x], &mx);
    if (!st) st = cpu_mem_value(p, nd, y, &xplain, &my);
    if (!st) st = cpu_add_reorder(p, nd, mx, my);
    return st;
}

/* ------------------------------------------------------------------------ */
/* vtable                                                                    */

static void free_node(struct cpu_node *nd) {
    for (int i = 0; i < nd->nsteps; i++)
        if (nd->steps[i].prim) dnnl_primitive_destroy(nd->steps[i].prim);
    for (int i = 0; i < nd->nmems; i++) {
        if (nd->mems[i].mem) dnnl_memory_destroy(nd->mems[i].mem);
        deft_free_aligned(nd->mems[i].owned);
    }
    deft_free(nd->steps);
    deft_free(nd->mems);
    deft_free(nd->priv);
    memset(nd, 0, sizeof *nd);
}

static void cpu_free_program(struct deft_program *prog) {
    struct cpu_prog *p = (struct cpu_prog *)prog;
    if (!p) return;
    if (p->nodes)
        for (int i = 0; i < p->nn; i++) free_node(&p->nodes[i]);
    if (p->rp_prim) dnnl_primitive_destroy(p->rp_prim);
    if (p->rp_src) dnnl_memory_destroy(p->rp_src);
    if (p->rp_dst) dnnl_memory_destroy(p->rp_dst);
    if (p->stream) dnnl_stream_destroy(p->stream);
    if (p->eng) dnnl_engine_destroy(p->eng);
    deft_free(p->nodes);
    deft_free(p->md);
    deft_free(p->md_set);
    deft_free(p->native_opaque);
    deft_free(p->ptr_tmp);
    deft_free(p->fused_into);
    deft_free(p->fusion);
    deft_free(p->last_use);
    deft_free(p->alias);
    deft_free(p->fused_away);
    deft_free(p->q8);
    deft_free(p->ones);
    deft_free(p);
}

/* A node folded into a chain that runs later: nothing to do here; its
 * outputs are never materialized (cpu_fuse.c). */
static enum deft_status compile_fused_away(struct cpu_prog *p, int n) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    for (int i = 0; i < node->n_out; i++) {
        int v = node->out[i];
        if (v < 0) continue;
        deft_dnnl_md_plain(&p->md[v], &cpu_val(p, v)->shape);
        p->md_set[v] = true;
        p->fused_away[v] = true;
    }
    return DEFT_OK;
}

static enum deft_status compile_node(struct cpu_prog *p, int n, struct cpu_node *nd) {
    if (p->fused_into[n] >= 0 && p->fused_into[n] != n) return compile_fused_away(p, n);
    if (p->fusion[n].conv >= 0 && p->fusion[n].q8) return cpu_compile_conv_q8(p, &p->fusion[n], nd);
    if (p->fusion[n].conv >= 0) return cpu_compile_conv_fused(p, &p->fusion[n], nd);
    switch (deft_graph_node(p->g, n)->op) {
    case DEFT_OP_CONV2D:
    case DEFT_OP_CONV2D_BWD_DATA:
    case DEFT_OP_CONV2D_BWD_WEIGHTS:
    case DEFT_OP_CONV_TRANSPOSE2D:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_DATA:
    case DEFT_OP_CONV_TRANSPOSE2D_BWD_WEIGHTS: return cpu_compile_conv(p, n, nd);
    case DEFT_OP_BATCHNORM:
    case DEFT_OP_BATCHNORM_BWD: return cpu_compile_batchnorm(p, n, nd);
    case DEFT_OP_ACT:
    case DEFT_OP_ACT_BWD: return cpu_compile_eltwise(p, n, nd);
    case DEFT_OP_POOL:
    case DEFT_OP_POOL_BWD:
    case DEFT_OP_GLOBAL_AVGPOOL:
    case DEFT_OP_GLOBAL_AVGPOOL_BWD: return cpu_compile_pool(p, n, nd);
    case DEFT_OP_ADD:
    case DEFT_OP_MUL:
    case DEFT_OP_REDUCE_TO: return cpu_compile_binary(p, n, nd);
    case DEFT_OP_LINEAR:
    case DEFT_OP_LINEAR_BWD_DATA:
    case DEFT_OP_LINEAR_BWD_WEIGHTS: return cpu_compile_linear(p, n, nd);
    case DEFT_OP_SOFTMAX:
    case DEFT_OP_SOFTMAX_BWD: return cpu_compile_softmax(p, n, nd);
    case DEFT_OP_CONCAT:
    case DEFT_OP_SLICE:
    case DEFT_OP_PAD: return cpu_compile_shape(p, n, nd);
    case DEFT_OP_RESHAPE: return compile_reshape(p, n, nd);
    case DEFT_OP_FAKE_QUANT:
    case DEFT_OP_FAKE_QUANT_BWD:
    case DEFT_OP_OBSERVE: return cpu_compile_fake_quant(p, n, nd);
    case DEFT_OP_ROI_ALIGN:
    case DEFT_OP_ROI_ALIGN_BWD: return cpu_compile_roi_align(p, n, nd);
    default: return DEFT_ERR_UNSUPPORTED;
    }
}

static enum deft_status cpu_compile(const struct deft_graph *g, const struct deft_backend_opts *o,
                                    struct deft_program **out,
                                    size_t *value_bytes, size_t *scratch_bytes) {
    *out = NULL;
    struct cpu_prog *p = deft_calloc(1, sizeof *p);
    if (!p) return deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling for cpu");
    p->g = g;
    p->nv = deft_graph_num_values(g);
    p->nn = deft_graph_num_nodes(g);
    p->rp_v = -1;
    p->threads = deft_get_threads();
    size_t nv1 = (size_t)p->nv + 1;
    p->md = deft_calloc(nv1, sizeof *p->md);
    p->md_set = deft_calloc(nv1, sizeof *p->md_set);
    p->native_opaque = deft_calloc(nv1, sizeof *p->native_opaque);
    p->ptr_tmp = deft_calloc(nv1, sizeof *p->ptr_tmp);
    p->nodes = deft_calloc((size_t)p->nn + 1, sizeof *p->nodes);
    p->fused_into = deft_malloc(((size_t)p->nn + 1) * sizeof *p->fused_into);
    p->fusion = deft_calloc((size_t)p->nn + 1, sizeof *p->fusion);
    p->last_use = deft_malloc(nv1 * sizeof *p->last_use);
    p->alias = deft_malloc(nv1 * sizeof *p->alias);
    if (p->alias)
        for (size_t v = 0; v < nv1; v++) p->alias[v] = -1;
    p->fused_away = deft_calloc(nv1, sizeof *p->fused_away);
    p->q8 = deft_calloc(nv1, sizeof *p->q8);
    p->inference = o && o->inference;
    p->fuse = p->inference && !o->no_fuse;
    p->winograd = p->inference && o->winograd;
    p->q8_scale = p->inference && o->int8_scale ? o->int8_scale : NULL;
    p->fchain = p->inference && (o->bf16 || o->f32_nhwc) && !p->q8_scale;
    p->fchain_dt = o && o->bf16 ? dnnl_bf16 : dnnl_f32;
    if (p->fchain && (p->ones = deft_malloc(nv1 * sizeof *p->ones)))
        for (size_t v = 0; v < nv1; v++) p->ones[v] = 1.0f;
    if (p->fchain) p->q8_scale = p->ones;
    enum deft_status st = DEFT_OK;
    if (!p->md || !p->md_set || !p->native_opaque || !p->ptr_tmp || !p->nodes || !p->fused_into ||
        !p->fusion || !p->last_use || !p->alias || !p->fused_away || !p->q8 || (p->fchain && !p->ones)) {
        st = deft_set_error(DEFT_ERR_NOMEM, "out of memory compiling for cpu");
        goto fail;
    }
    dnnl_status_t ds = dnnl_engine_create(&p->eng, dnnl_cpu, 0);
    if (ds == dnnl_success) ds = dnnl_stream_create(&p->stream, p->eng, dnnl_stream_default_flags);
    if (ds != dnnl_success) {
        st = deft_dnnl_error(ds, "dnnl_engine_create");
        goto fail;
    }
    for (int v = 0; v < p->nv; v++) {
        const struct deft_value *val = cpu_val(p, v);
        if (val->kind != DEFT_VALUE_NODE) {
            deft_dnnl_md_plain(&p->md[v], &val->shape);
            p->md_set[v] = true;
        }
    }
    if ((st = cpu_fuse_plan(p))) goto fail;
    size_t scratch = 0;
    for (int n = 0; n < p->nn; n++) {
        struct cpu_node *nd = &p->nodes[n];
        const struct deft_node *node = deft_graph_node(g, n);
        st = compile_node(p, n, nd);
        if (st == DEFT_ERR_UNSUPPORTED) {
            /* Undo whatever the op file set up, then run it on ref. */
            free_node(nd);
            for (int i = 0; i < node->n_out; i++)
                if (node->out[i] >= 0) {
                    p->alias[node->out[i]] = -1;
                    p->md_set[node->out[i]] = false;
                    p->native_opaque[node->out[i]] = false;
                }
            deft_clear_error();
            st = compile_fallback(p, n, nd);
        }
        if (st) {
            deft_wrap_error(st, "cpu backend, node '%s' (%s)", node->name, deft_op_name(node->op));
            goto fail;
        }
        for (int i = 0; i < node->n_out; i++) {
            int v = node->out[i];
            if (v < 0) continue;
            if (!p->md_set[v]) { /* an output the op never bound: keep it plain */
                deft_dnnl_md_plain(&p->md[v], &cpu_val(p, v)->shape);
                p->md_set[v] = true;
            }
            if (value_bytes)
                value_bytes[v] = p->fused_away[v] ? 0
                                 : nd->fallback   ? deft_ref_value_bytes(g, v)
                                                  : deft_dnnl_md_size(&p->md[v]);
        }
        size_t need = nd->pad_bytes ? ALIGN64(nd->temp_bytes) + nd->pad_bytes : nd->temp_bytes;
        if (need > scratch) scratch = need;
    }
    if (value_bytes)
        for (int v = 0; v < p->nv; v++)
            if (cpu_val(p, v)->kind != DEFT_VALUE_NODE) value_bytes[v] = 0;
    *scratch_bytes = scratch;
    *out = (struct deft_program *)p;
    return DEFT_OK;
fail:
    cpu_free_program((struct deft_program *)p);
    return st;
}

static enum deft_status cpu_run_node(struct deft_program *prog, int n, void *const *ptr, void *scratch,
                                     const struct deft_run_ctx *rc) {
    struct cpu_prog *p = (struct cpu_prog *)prog;
    if (n < 0 || n >= p->nn) return deft_set_error(DEFT_ERR_INVALID_ARG, "cpu: bad node %d", n);
    struct cpu_node *nd = &p->nodes[n];
    /* Prepared weights stay valid until the params change. */
    int first = nd->nprep > 0 && nd->prep_ver == rc->param_version ? nd->nprep : 0;
    for (int i = first; i < nd->nsteps; i++) {
        const struct cpu_step *s = &nd->steps[i];
        enum deft_status st;
        if (!s->prim) {
            if ((st = s->fn(p, nd, s, ptr, scratch, rc))) return st;
            continue;
        }
        dnnl_exec_arg_t args[CPU_MAX_ARGS];
        for (int a = 0; a < s->nargs; a++) {
            const struct cpu_mem *m = &nd->mems[s->mem[a]];
            DEFT_DNNL_CHECK(dnnl_memory_set_data_handle(m->mem, cpu_mem_ptr(nd, s->mem[a], ptr, scratch)));
            args[a].arg = s->arg[a];
            args[a].memory = m->mem;
        }
        DEFT_DNNL_CHECK(dnnl_primitive_execute(s->prim, p->stream, s->nargs, args));
    }
    DEFT_DNNL_CHECK(dnnl_stream_wait(p->stream));
    nd->prep_ver = rc->param_version;
    return DEFT_OK;
}

static int cpu_alias_of(struct deft_program *prog, int v) {
    struct cpu_prog *p = (struct cpu_prog *)prog;
    return v >= 0 && v < p->nv ? p->alias[v] : -1;
}

static int cpu_last_use(struct deft_program *prog, int v) {
    const struct cpu_prog *p = (const struct cpu_prog *)prog;
    return v >= 0 && v < p->nv ? p->last_use[v] : -1;
}

static enum deft_status cpu_read_plain(struct deft_program *prog, int v, const void *src, float *dst) {
    struct cpu_prog *p = (struct cpu_prog *)prog;
    if (v < 0 || v >= p->nv) return deft_set_error(DEFT_ERR_INVALID_ARG, "cpu: bad value %d", v);
    const struct deft_value *val = cpu_val(p, v);
    size_t n = (size_t)deft_shape_numel(&val->shape);
    if (p->fused_away[v])
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "cpu: '%s' is inside a fused inference chain and never computed "
                              "(deft_runtime_opts.no_fuse keeps it)", val->name);
    if (p->q8[v])
        return deft_set_error(DEFT_ERR_INVALID_ARG, "cpu: '%s' is stored as int8 between two int8 convolutions "
                              "and cannot be read as f32", val->name);
    if (!p->md_set[v] || deft_dnnl_md_is_plain(&p->md[v])) {
        memcpy(dst, src, n * sizeof *dst);
        return DEFT_OK;
    }
    if (val->flags & DEFT_VF_OPAQUE) {
        /* Backend-defined bytes (oneDNN pooling workspace): copy what fits. */
        size_t b = deft_dnnl_md_size(&p->md[v]);
        memset(dst, 0, n * sizeof *dst);
        memcpy(dst, src, b < n * sizeof *dst ? b : n * sizeof *dst);
        return DEFT_OK;
    }
    if (p->rp_v != v) {
        if (p->rp_prim) dnnl_primitive_destroy(p->rp_prim);
        if (p->rp_src) dnnl_memory_destroy(p->rp_src);
        if (p->rp_dst) dnnl_memory_destroy(p->rp_dst);
        p->rp_prim = NULL;
        p->rp_src = p->rp_dst = NULL;
        p->rp_v = -1;
        dnnl_memory_desc_t plain;
        deft_dnnl_md_plain(&plain, &val->shape);
        enum deft_status st = deft_dnnl_reorder_create(&p->rp_prim, p->eng, &p->md[v], &plain);
        if (st) return st;
        DEFT_DNNL_CHECK(dnnl_memory_create(&p->rp_src, &p->md[v], p->eng, DNNL_MEMORY_NONE));
        DEFT_DNNL_CHECK(dnnl_memory_create(&p->rp_dst, &plain, p->eng, DNNL_MEMORY_NONE));
        p->rp_v = v;
    }
    DEFT_DNNL_CHECK(dnnl_memory_set_data_handle(p->rp_src, (void *)src));
    DEFT_DNNL_CHECK(dnnl_memory_set_data_handle(p->rp_dst, dst));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, p->rp_src}, {DNNL_ARG_TO, p->rp_dst}};
    DEFT_DNNL_CHECK(dnnl_primitive_execute(p->rp_prim, p->stream, 2, args));
    DEFT_DNNL_CHECK(dnnl_stream_wait(p->stream));
    return DEFT_OK;
}

const struct deft_backend_vtable deft_backend_cpu = {
    .name = "cpu",
    .device = DEFT_DEVICE_CPU,
    .compile = cpu_compile,
    .run_node = cpu_run_node,
    .read_plain = cpu_read_plain,
    .free_program = cpu_free_program,
    .last_use = cpu_last_use,
    .alias_of = cpu_alias_of,
};

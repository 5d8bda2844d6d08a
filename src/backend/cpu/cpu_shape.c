/* cpu_shape.c - concat, slice and zero padding in the producers' layouts.
 *
 * Detection graphs split and join channels everywhere (CSP route groups, PAN
 * concats) and autograd turns each into the other (a slice's gradient is a
 * zero pad, a concat's is slices). On the reference fallback every one of
 * them cost a reorder of its blocked inputs to plain and another back before
 * the next convolution. Here they stay in the blocked layout:
 *   concat: oneDNN's concat primitive (in-place block copies when the
 *           channel offsets are multiples of the block);
 *   slice:  a reorder from a sub-memory view of the input;
 *   pad:    zero the output, then a reorder into a sub-memory view of it.
 * A view oneDNN refuses (a channel offset inside a 16-block) returns
 * DEFT_ERR_UNSUPPORTED and the node runs on the reference kernels.
 */
#include <string.h>
#include "backend/cpu/cpu_impl.h"

/* Output v in the layout of `like` with v's own dims (plain when v must be). */
static void set_md_like(struct cpu_prog *p, int v, const dnnl_memory_desc_t *like) {
    int64_t dims[DNNL_MAX_NDIMS];
    cpu_dims(&cpu_val(p, v)->shape, dims);
    dnnl_memory_desc_t want;
    deft_dnnl_md_like(&want, like, dims);
    cpu_set_md(p, v, &want);
}

/* A view of the `dims` box at `offsets` inside a value laid out as md. */
static bool sub_view(dnnl_memory_desc_t *sub, const dnnl_memory_desc_t *md, const struct deft_shape *box,
                     const int64_t *offsets) {
    dnnl_dims_t d = {0}, o = {0};
    for (int i = 0; i < box->ndim; i++) {
        d[i] = box->d[i];
        o[i] = offsets[i];
    }
    return dnnl_memory_desc_init_submemory(sub, md, d, o) == dnnl_success;
}

static enum deft_status compile_concat(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd) {
    int y = node->out[0], n = node->n_in;
    dnnl_memory_desc_t src[DEFT_MAX_INPUTS];
    for (int i = 0; i < n; i++) {
        if (node->in[i] < 0 || !p->md_set[node->in[i]]) return DEFT_ERR_UNSUPPORTED;
        src[i] = p->md[node->in[i]];
    }
    set_md_like(p, y, &src[0]);
    dnnl_primitive_attr_t attr;
    DEFT_DNNL_CHECK(deft_dnnl_user_scratchpad_attr(&attr));
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t ds = dnnl_concat_primitive_desc_create(&pd, &p->md[y], n, node->attr.concat.axis,
                                                         src, attr, p->eng);
    dnnl_primitive_attr_destroy(attr);
    if (ds != dnnl_success) return DEFT_ERR_UNSUPPORTED;
    int args[DEFT_MAX_INPUTS + 1], mems[DEFT_MAX_INPUTS + 1];
    enum deft_status st = cpu_mem_value(p, nd, y, &p->md[y], &mems[0]);
    args[0] = DNNL_ARG_DST;
    for (int i = 0; i < n && !st; i++) {
        args[i + 1] = DNNL_ARG_MULTIPLE_SRC + i;
        st = cpu_mem_value(p, nd, node->in[i], &src[i], &mems[i + 1]);
    }
    if (!st) st = cpu_add_prim(p, nd, pd, n + 1, args, mems);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static enum deft_status compile_slice(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd) {
    int x = node->in[0], y = node->out[0];
    if (x < 0 || !p->md_set[x]) return DEFT_ERR_UNSUPPORTED;
    dnnl_memory_desc_t sub;
    if (!sub_view(&sub, &p->md[x], &cpu_val(p, y)->shape, node->attr.slice.start))
        return DEFT_ERR_UNSUPPORTED;
    set_md_like(p, y, &p->md[x]);
    int mx, my;
    enum deft_status st = cpu_mem_value(p, nd, x, &sub, &mx);
    if (!st) st = cpu_mem_value(p, nd, y, &p->md[y], &my);
    if (!st) st = cpu_add_reorder(p, nd, mx, my);
    return st;
}

/* imem[0]: the padded output, zeroed before the interior is copied in. */
static enum deft_status zero_fill(struct cpu_prog *p, struct cpu_node *nd, const struct cpu_step *s,
                                  void *const *ptr, char *scratch, const struct deft_run_ctx *rc) {
    (void)p;
    (void)rc;
    memset(cpu_mem_ptr(nd, s->imem[0], ptr, scratch), 0, nd->mems[s->imem[0]].bytes);
    return DEFT_OK;
}

static enum deft_status compile_pad(struct cpu_prog *p, const struct deft_node *node, struct cpu_node *nd) {
    int x = node->in[0], y = node->out[0];
    if (x < 0 || !p->md_set[x]) return DEFT_ERR_UNSUPPORTED;
    set_md_like(p, y, &p->md[x]);
    dnnl_memory_desc_t sub;
    if (!sub_view(&sub, &p->md[y], &cpu_val(p, x)->shape, node->attr.pad.before))
        return DEFT_ERR_UNSUPPORTED; /* compile() forgets y's layout and falls back */
    int mx, my, msub;
    enum deft_status st = cpu_mem_value(p, nd, x, &p->md[x], &mx);
    if (!st) st = cpu_mem_value(p, nd, y, &p->md[y], &my);
    if (!st) st = cpu_mem_value(p, nd, y, &sub, &msub);
    if (!st) st = cpu_add_fn(p, nd, zero_fill, my, -1, -1, -1);
    if (!st) st = cpu_add_reorder(p, nd, mx, msub);
    return st;
}

enum deft_status cpu_compile_shape(struct cpu_prog *p, int n, struct cpu_node *nd) {
    const struct deft_node *node = deft_graph_node(p->g, n);
    switch (node->op) {
    case DEFT_OP_CONCAT: return compile_concat(p, node, nd);
    case DEFT_OP_SLICE: return compile_slice(p, node, nd);
    case DEFT_OP_PAD: return compile_pad(p, node, nd);
    default: return DEFT_ERR_UNSUPPORTED;
    }
}

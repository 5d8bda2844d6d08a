/* dnnl_util.c - oneDNN adapter: status mapping, memory descriptors,
 * primitive creation with a user scratchpad, reorders and impl logging. */
#include <string.h>
#include "backend/cpu/dnnl_util.h"

const char *deft_dnnl_status_str(dnnl_status_t st) {
    switch (st) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out_of_memory";
    case dnnl_invalid_arguments: return "invalid_arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator_ends";
    case dnnl_runtime_error: return "runtime_error";
    case dnnl_not_required: return "not_required";
    default: return "unknown";
    }
}

enum deft_status deft_dnnl_error(dnnl_status_t st, const char *what) {
    /* Keep the message short: the call text up to the first '(' names it. */
    const char *paren = strchr(what, '(');
    int len = paren ? (int)(paren - what) : (int)strlen(what);
    return deft_set_error(st == dnnl_out_of_memory ? DEFT_ERR_NOMEM : DEFT_ERR_BACKEND,
                          "oneDNN %.*s failed: %s", len, what, deft_dnnl_status_str(st));
}

static const dnnl_format_tag_t plain_tags[7] = {
    dnnl_a, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef,
};

void deft_dnnl_md_plain_dims(dnnl_memory_desc_t *md, int ndims, const int64_t *dims) {
    dnnl_dims_t d = {0};
    if (ndims <= 0) {
        d[0] = 1;
        ndims = 1;
    } else {
        for (int i = 0; i < ndims; i++) d[i] = dims[i];
    }
    dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, plain_tags[ndims]);
}

void deft_dnnl_md_plain(dnnl_memory_desc_t *md, const struct deft_shape *s) {
    deft_dnnl_md_plain_dims(md, s->ndim, s->d);
}

void deft_dnnl_md_any(dnnl_memory_desc_t *md, int ndims, const int64_t *dims) {
    dnnl_dims_t d = {0};
    for (int i = 0; i < ndims; i++) d[i] = dims[i];
    dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, dnnl_format_tag_any);
}

bool deft_dnnl_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
    return dnnl_memory_desc_equal(a, b) != 0;
}

bool deft_dnnl_md_is_plain(const dnnl_memory_desc_t *md) {
    if (md->ndims < 1 || md->ndims > 6) return false;
    dnnl_memory_desc_t p;
    dnnl_memory_desc_init_by_tag(&p, md->ndims, md->dims, dnnl_f32, plain_tags[md->ndims]);
    return deft_dnnl_md_equal(&p, md);
}

size_t deft_dnnl_md_size(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }

/* Physical formats the backend produces, per ndims; first match wins. */
static const dnnl_format_tag_t like_tags4[] = {
    dnnl_abcd, dnnl_aBcd16b, dnnl_acdb, dnnl_aBcd8b, dnnl_aBcd4b, dnnl_ABcd16a16b, dnnl_ABcd16b16a,
};
static const dnnl_format_tag_t like_tags2[] = {dnnl_ab, dnnl_ba};
static const dnnl_format_tag_t like_tags3[] = {dnnl_abc, dnnl_aBc16b, dnnl_acb, dnnl_aBc8b};
static const dnnl_format_tag_t like_tags5[] = {dnnl_abcde, dnnl_aBcde16b, dnnl_acdeb, dnnl_aBcde8b};

static dnnl_format_tag_t find_tag(const dnnl_memory_desc_t *like, const char **name) {
    static const char *n4[] = {"nchw", "nChw16c", "nhwc", "nChw8c", "nChw4c", "NChw16n16c",
                               "NChw16c16n"};
    const dnnl_format_tag_t *tags = NULL;
    int nt = 0;
    switch (like->ndims) {
    case 2: tags = like_tags2; nt = 2; break;
    case 3: tags = like_tags3; nt = 4; break;
    case 4: tags = like_tags4; nt = 7; break;
    case 5: tags = like_tags5; nt = 4; break;
    default: break;
    }
    for (int i = 0; i < nt; i++) {
        dnnl_memory_desc_t t;
        if (dnnl_memory_desc_init_by_tag(&t, like->ndims, like->dims, like->data_type, tags[i]) !=
            dnnl_success)
            continue;
        if (deft_dnnl_md_equal(&t, like)) {
            if (name) *name = like->ndims == 4 ? n4[i] : (i == 0 ? "plain" : "blocked");
            return tags[i];
        }
    }
    if (name) *name = deft_dnnl_md_is_plain(like) ? "plain" : "blocked";
    return deft_dnnl_md_is_plain(like) ? plain_tags[like->ndims] : dnnl_format_tag_undef;
}

void deft_dnnl_md_like(dnnl_memory_desc_t *md, const dnnl_memory_desc_t *like,
                       const int64_t *dims) {
    dnnl_format_tag_t tag = find_tag(like, NULL);
    dnnl_dims_t d = {0};
    for (int i = 0; i < like->ndims; i++) d[i] = dims[i];
    if (tag == dnnl_format_tag_undef ||
        dnnl_memory_desc_init_by_tag(md, like->ndims, d, dnnl_f32, tag) != dnnl_success)
        deft_dnnl_md_plain_dims(md, like->ndims, dims);
}

const char *deft_dnnl_md_name(const dnnl_memory_desc_t *md) {
    const char *name = "blocked";
    find_tag(md, &name);
    return name;
}

const dnnl_memory_desc_t *deft_dnnl_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t q, int idx) {
    static const dnnl_memory_desc_t zero_md; /* ndims == 0 */
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, idx);
    return md ? md : &zero_md;
}

const char *deft_dnnl_pd_impl(const_dnnl_primitive_desc_t pd) {
    const char *impl = "?";
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
        impl = "?";
    return impl;
}

dnnl_status_t deft_dnnl_user_scratchpad_attr(dnnl_primitive_attr_t *attr) {
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st != dnnl_success) return st;
    /* User scratchpad: one shared buffer from the runtime instead of
     * per-primitive library allocations. */
    st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (st != dnnl_success) dnnl_primitive_attr_destroy(*attr);
    return st;
}

dnnl_status_t deft_dnnl_pd_create(dnnl_primitive_desc_t *pd, const void *desc,
                                  dnnl_engine_t eng, const_dnnl_primitive_desc_t hint,
                                  const char *node_name, const char *what, bool warn_slow) {
    return deft_dnnl_pd_create_po(pd, desc, eng, hint, NULL, node_name, what, warn_slow);
}

dnnl_status_t deft_dnnl_pd_create_po(dnnl_primitive_desc_t *pd, const void *desc,
                                     dnnl_engine_t eng, const_dnnl_primitive_desc_t hint,
                                     const_dnnl_post_ops_t po, const char *node_name,
                                     const char *what, bool warn_slow) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t st = deft_dnnl_user_scratchpad_attr(&attr);
    if (st != dnnl_success) return st;
    if (po && (st = dnnl_primitive_attr_set_post_ops(attr, po)) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        *pd = NULL;
        return st;
    }
    st = dnnl_primitive_desc_create(pd, desc, attr, eng, hint);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        *pd = NULL;
        deft_log(DEFT_LOG_DEBUG, "cpu: %s %s: no oneDNN implementation (%s)", node_name, what,
                 deft_dnnl_status_str(st));
        return st;
    }
    const char *impl = deft_dnnl_pd_impl(*pd);
    deft_log(DEFT_LOG_DEBUG, "cpu: %s %s: %s", node_name, what, impl);
    if (warn_slow && (strstr(impl, "gemm") || strstr(impl, "ref")))
        deft_log(DEFT_LOG_DEBUG, "cpu: %s %s uses the slow oneDNN implementation '%s'", node_name,
                 what, impl);
    return dnnl_success;
}

enum deft_status deft_dnnl_reorder_create(dnnl_primitive_t *prim, dnnl_engine_t eng,
                                          const dnnl_memory_desc_t *a,
                                          const dnnl_memory_desc_t *b) {
    dnnl_primitive_desc_t pd;
    DEFT_DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, a, eng, b, eng, NULL));
    dnnl_status_t st = dnnl_primitive_create(prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return deft_dnnl_error(st, "dnnl_primitive_create(reorder)");
    return DEFT_OK;
}

const char *deft_dnnl_isa_name(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "generic (no JIT kernels)";
    }
}

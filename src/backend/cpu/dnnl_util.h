/* dnnl_util.h (internal) - the thin adapter around the oneDNN 2.6 C API.
 *
 * Every oneDNN call of the cpu backend goes through DEFT_DNNL_CHECK, which
 * turns a dnnl_status_t into a deft status whose message names the failing
 * call. The helpers below (memory descriptors, primitive creation with a user
 * scratchpad, reorders, implementation logging) are the parts that change
 * when moving to oneDNN 3.x, so they live in one place.
 */
#ifndef DEFT_DNNL_UTIL_H
#define DEFT_DNNL_UTIL_H

#include <dnnl.h>
#include "deft/graph.h"

/* Evaluate a oneDNN call; on failure record "<call> failed: <status>" and
 * return DEFT_ERR_BACKEND from the enclosing function. */
#define DEFT_DNNL_CHECK(call)                                                   \
    do {                                                                        \
        dnnl_status_t st_ = (call);                                             \
        if (st_ != dnnl_success) return deft_dnnl_error(st_, #call);            \
    } while (0)

enum deft_status deft_dnnl_error(dnnl_status_t st, const char *what);
const char *deft_dnnl_status_str(dnnl_status_t st);

/* Plain row-major f32 md for a deft shape (a scalar becomes {1}). */
void deft_dnnl_md_plain(dnnl_memory_desc_t *md, const struct deft_shape *s);
/* Plain row-major md with the given dims. */
void deft_dnnl_md_plain_dims(dnnl_memory_desc_t *md, int ndims, const int64_t *dims);
/* md with format_tag_any for the given dims. */
void deft_dnnl_md_any(dnnl_memory_desc_t *md, int ndims, const int64_t *dims);
/* True when md is the plain row-major layout of its dims. */
bool deft_dnnl_md_is_plain(const dnnl_memory_desc_t *md);
bool deft_dnnl_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);
size_t deft_dnnl_md_size(const dnnl_memory_desc_t *md);
/* An md with the same physical format as `like` (plain, nhwc, nChw16c ...)
 * but other dims (same ndims). Falls back to plain when the format of `like`
 * is not one of the known tags. */
void deft_dnnl_md_like(dnnl_memory_desc_t *md, const dnnl_memory_desc_t *like,
                       const int64_t *dims);
/* Short layout name for logs ("nchw", "nChw16c", "blocked"). */
const char *deft_dnnl_md_name(const dnnl_memory_desc_t *md);

/* A primitive attr asking for a user-mode scratchpad (destroy it after use). */
dnnl_status_t deft_dnnl_user_scratchpad_attr(dnnl_primitive_attr_t *attr);

/* Create a primitive descriptor for op descriptor `desc` with a user-mode
 * scratchpad, and log its implementation name at debug level (warning for a
 * gemm/ref convolution when warn_slow). Returns the raw dnnl status so the
 * caller can fall back on `unimplemented`. */
dnnl_status_t deft_dnnl_pd_create(dnnl_primitive_desc_t *pd, const void *desc,
                                  dnnl_engine_t eng, const_dnnl_primitive_desc_t hint,
                                  const char *node_name, const char *what, bool warn_slow);
/* The same with post-ops (po may be NULL). */
dnnl_status_t deft_dnnl_pd_create_po(dnnl_primitive_desc_t *pd, const void *desc,
                                     dnnl_engine_t eng, const_dnnl_primitive_desc_t hint,
                                     const_dnnl_post_ops_t po, const char *node_name,
                                     const char *what, bool warn_slow);
/* Queried md of a pd (never NULL: a zero md when the argument is unused). */
const dnnl_memory_desc_t *deft_dnnl_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t q, int idx);
const char *deft_dnnl_pd_impl(const_dnnl_primitive_desc_t pd);

/* A reorder primitive from md a to md b. */
/* The instruction set oneDNN's kernels use here ("avx512_core_vnni" ...). */
const char *deft_dnnl_isa_name(void);
enum deft_status deft_dnnl_reorder_create(dnnl_primitive_t *prim, dnnl_engine_t eng,
                                          const dnnl_memory_desc_t *a,
                                          const dnnl_memory_desc_t *b);

#endif

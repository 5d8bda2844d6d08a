/* cuda_backend.c - the CUDA backend's vtable: compile (open the device,
 * size values and scratch), run a node (its device op, or the reference
 * kernel on the host after a sync when the device lacks the op), memory,
 * sync, and the optimizer's per-element update on the device.
 *
 * Two vtables share this code: "cuda" over cuda_api_real (only in builds
 * with DEFT_CUDA) and "cuda-emu" over cuda_api_emu (always), which runs the
 * same host code and kernel bodies on the CPU for the tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_impl.h"
#include "deft/runtime.h"

enum deft_status cuda_fail(struct deft_program *p, const char *what) {
    return deft_set_error(DEFT_ERR_IO, "%s: %s: %s", p->api->name, what, p->api->error(p->ctx));
}

static enum deft_status compile_with(const struct cuda_api *api, const struct deft_graph *g,
                                     const struct deft_backend_opts *o, struct deft_program **out,
                                     size_t *value_bytes, size_t *scratch_bytes) {
    *out = NULL;
    struct deft_program *p = deft_calloc(1, sizeof *p);
    if (!p) return deft_set_error(DEFT_ERR_NOMEM, "%s backend: out of memory", api->name);
    p->g = g;
    p->api = api;
    char err[256] = "";
    const int index = o ? o->device_index : 0;
    const enum cuda_math math = o && o->amp == DEFT_AMP_FP16 ? CUDA_MATH_FP16
                              : o && o->amp == DEFT_AMP_BF16 ? CUDA_MATH_BF16 : CUDA_MATH_FP32;
    if (api->open(index, math, &p->ctx, err, sizeof err)) {
        deft_free(p);
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s", err);
    }
    /* Allocated once: the optimizer asks for gradient statistics every step. */
    p->gstat = api->alloc(2 * CUDA_GSTAT_PARTS * sizeof(double));
    if (!p->gstat) {
        api->close(p->ctx);
        deft_free(p);
        return deft_set_error(DEFT_ERR_NOMEM, "%s backend: out of memory", api->name);
    }
    const int nv = deft_graph_num_values(g), nn = deft_graph_num_nodes(g);
    for (int v = 0; v < nv; v++)
        value_bytes[v] = deft_graph_value(g, v)->kind == DEFT_VALUE_NODE ? deft_ref_value_bytes(g, v) : 0;
    size_t scratch = 0;
    for (int n = 0; n < nn; n++) {
        size_t b = cuda_node_scratch(g, n);
        if (b > scratch) scratch = b;
    }
    p->scratch_bytes = scratch;
    *scratch_bytes = scratch;
    *out = p;
    return DEFT_OK;
}

static enum deft_status run_fallback(struct deft_program *p, int n, void *const *ptr,
                                     const struct deft_run_ctx *rc) {
    char err[256] = "";
    if (p->api->sync(p->ctx, err, sizeof err))
        return deft_set_error(DEFT_ERR_IO, "%s: %s", p->api->name, err);
    p->fallback_nodes++;
    return deft_ref_run_node(p->g, n, ptr, rc);
}

static enum deft_status cuda_run_node(struct deft_program *p, int n, void *const *ptr, void *scratch,
                                      const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(p->g, n);
    if (!nd) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s backend: node %d out of range", p->api->name, n);
    cuda_op_fn fn = cuda_op_for(nd->op);
    if (!fn) return run_fallback(p, n, ptr, rc);
    enum deft_status s = deft_ref_check_buffers(p->api->name, p->g, n, ptr);
    if (s) return s;
    s = fn(p, nd, n, ptr, scratch, rc);
    if (s == DEFT_ERR_UNSUPPORTED) return run_fallback(p, n, ptr, rc);
    return s;
}

static enum deft_status cuda_sync(struct deft_program *p) {
    char err[256] = "";
    if (p->api->sync(p->ctx, err, sizeof err))
        return deft_set_error(DEFT_ERR_IO, "%s: %s", p->api->name, err);
    return DEFT_OK;
}

static enum deft_status cuda_read_plain(struct deft_program *p, int v, const void *src, float *dst) {
    /* The reference layout, once queued work is done. */
    enum deft_status s = cuda_sync(p);
    return s ? s : deft_ref_read_plain(p->g, v, src, dst);
}

static void cuda_free_program(struct deft_program *p) {
    if (!p) return;
    if (p->gstat) p->api->free(p->gstat);
    if (p->ctx) p->api->close(p->ctx);
    deft_free(p);
}

static void *cuda_alloc(struct deft_program *p, size_t bytes) { return p->api->alloc(bytes); }
static void cuda_free_mem(struct deft_program *p, void *mem) {
    if (mem) p->api->free(mem);
}

static enum deft_status cuda_optim_segment(struct deft_program *p, const struct deft_optim_seg_args *s) {
    union ck_args a = {.optim = {
        .p = s->params, .g = s->grads, .b0 = s->buf0, .b1 = s->buf1, .kind = s->kind, .decay = s->decay,
        .has_b0 = s->buf0 != NULL, .has_b1 = s->buf1 != NULL, .first = s->first, .nesterov = s->nesterov,
        .decoupled = s->decoupled, .lr = s->lr, .gscale = s->gscale, .momentum = s->momentum,
        .wd = s->weight_decay, .l1 = s->l1, .beta1 = s->beta1, .beta2 = s->beta2, .eps = s->eps,
        .rho = s->rho, .bc1 = s->bc1, .bc2s = s->bc2s}};
    return cuda_launch(p, CK_OPTIM, s->n, &a);
}

static enum deft_status cuda_grad_stats(struct deft_program *p, const float *g, size_t n, double *sumsq,
                                        bool *finite) {
    double *part = p->gstat;
    const int64_t parts = n < CUDA_GSTAT_PARTS ? (int64_t)(n ? n : 1) : CUDA_GSTAT_PARTS;
    union ck_args a = {.gstat = {.g = g, .part = part, .part2 = part + CUDA_GSTAT_PARTS, .n = (int64_t)n,
                                 .parts = parts}};
    enum deft_status s = cuda_launch(p, CK_GSTAT, parts, &a);
    if (!s) s = cuda_sync(p);
    double sq = 0, bad = 0;
    for (int64_t j = 0; !s && j < parts; j++) {
        sq += part[j];
        bad += part[CUDA_GSTAT_PARTS + j];
    }
    *sumsq = sq;
    *finite = bad == 0;
    return s;
}

#define CUDA_VTABLE(api_)                                                                          \
    .device = DEFT_DEVICE_CUDA, .run_node = cuda_run_node, .read_plain = cuda_read_plain,         \
    .free_program = cuda_free_program, .alloc = cuda_alloc, .free_mem = cuda_free_mem,            \
    .sync = cuda_sync, .optim_segment = cuda_optim_segment, .grad_stats = cuda_grad_stats

static enum deft_status emu_compile(const struct deft_graph *g, const struct deft_backend_opts *o,
                                    struct deft_program **out, size_t *value_bytes, size_t *scratch_bytes) {
    return compile_with(&cuda_api_emu, g, o, out, value_bytes, scratch_bytes);
}
const struct deft_backend_vtable deft_backend_cuda_emu = {
    .name = "cuda-emu", .compile = emu_compile, CUDA_VTABLE(cuda_api_emu),
};

#ifdef DEFT_HAVE_CUDA
static enum deft_status real_compile(const struct deft_graph *g, const struct deft_backend_opts *o,
                                     struct deft_program **out, size_t *value_bytes, size_t *scratch_bytes) {
    return compile_with(&cuda_api_real, g, o, out, value_bytes, scratch_bytes);
}
const struct deft_backend_vtable deft_backend_cuda = {
    .name = "cuda", .compile = real_compile, CUDA_VTABLE(cuda_api_real),
};
#endif

/* runtime.c - compiles a graph for a backend, plans memory, runs nodes.
 *
 * Buffers: trainable params in `params` and their gradients in `grads` (same
 * offsets, 64-byte aligned segments), frozen params + state in `state`,
 * inputs in `inputs`, everything else in the planned `arena`. */
#include <string.h>
#include "deft/runtime.h"
#include "backend/backend.h"
#include "runtime/planner.h"
#include "runtime/device.h"

struct deft_runtime {
    const struct deft_graph *g;
    const struct deft_backend_vtable *be;
    struct deft_program *prog;
    void **ptr;              /* per value */
    int64_t *param_off;      /* per value: float offset in params/grads, or -1 */
    float *params, *grads, *state, *inputs;
    size_t n_params, n_state, n_inputs;
    char *arena, *scratch;
    struct deft_runtime_stats stats;
    deft_grad_hook hook;
    void *hook_user;
    deft_node_hook node_hook;
    void *node_hook_user;
    bool *watched;           /* per node: call node_hook after it */
    deft_allreduce_fn allreduce;
    void *allreduce_user;
    uint64_t step;
    uint32_t shard_rank, shard_world;  /* data parallel: deft_runtime_set_shard */
    uint64_t param_version;  /* bumped whenever params/state may change (backend.h) */
    int grad_first_node;     /* hook runs after the last node */
    double op_time[DEFT_OP_COUNT];
    long op_calls[DEFT_OP_COUNT];
};

const struct deft_backend_vtable *deft_backend_find(const char *name) {
    if (!name || !strcmp(name, "cpu")) return &deft_backend_cpu;
    if (!strcmp(name, "ref")) return &deft_backend_ref;
    if (!strcmp(name, "cuda-emu")) return &deft_backend_cuda_emu;
#ifdef DEFT_HAVE_CUDA
    if (!strcmp(name, "cuda")) return &deft_backend_cuda;
#endif
    return NULL;
}

const char *deft_backend_names(void) {
#ifdef DEFT_HAVE_CUDA
    return "cpu, ref, cuda, cuda-emu";
#else
    return "cpu, ref, cuda-emu (cuda: build with make CUDA=1)";
#endif
}

/* Buffers the runtime owns come from the backend when it has an allocator
 * (device-reachable memory), else from the host heap. */
void *deft_runtime_device_alloc(struct deft_runtime *rt, size_t bytes) {
    if (rt->be->alloc) return rt->be->alloc(rt->prog, bytes ? bytes : 64);
    return deft_malloc_aligned(bytes ? bytes : 64);
}
void deft_runtime_device_free(struct deft_runtime *rt, void *mem) {
    if (!mem) return;
    if (rt->be->free_mem) rt->be->free_mem(rt->prog, mem);
    else deft_free_aligned(mem);
}
const struct deft_backend_vtable *deft_runtime_backend(const struct deft_runtime *rt) { return rt->be; }
struct deft_program *deft_runtime_program(const struct deft_runtime *rt) { return rt->prog; }

enum deft_status deft_runtime_sync(struct deft_runtime *rt) {
    return rt->be->sync ? rt->be->sync(rt->prog) : DEFT_OK;
}

static size_t seg(int64_t numel) { return ((size_t)numel + 15) / 16 * 16; } /* floats, 64B aligned */

static bool is_param_grad(const struct deft_graph *g, const struct deft_value *v) {
    if (v->grad_of < 0) return false;
    const struct deft_value *p = deft_graph_value(g, v->grad_of);
    return p && p->kind == DEFT_VALUE_PARAM && !(p->flags & DEFT_VF_FROZEN);
}

/* Any gradient of a trainable parameter: an inference graph (no backward) gets no gradient block. */
static bool has_param_grads(const struct deft_graph *g) {
    for (int v = 0; v < deft_graph_num_values(g); v++)
        if (is_param_grad(g, deft_graph_value(g, v))) return true;
    return false;
}

static enum deft_status layout_blocks(struct deft_runtime *rt) {
    const struct deft_graph *g = rt->g;
    int nv = deft_graph_num_values(g);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        int64_t n = deft_shape_numel(&val->shape);
        rt->param_off[v] = -1;
        if (val->dtype != DEFT_F32 && val->kind != DEFT_VALUE_NODE)
            return deft_set_error(DEFT_ERR_UNSUPPORTED, "value '%s': only f32 inputs/params are supported",
                                  val->name);
        if (val->kind == DEFT_VALUE_PARAM && !(val->flags & DEFT_VF_FROZEN)) {
            rt->param_off[v] = (int64_t)rt->n_params;
            rt->n_params += seg(n);
        } else if (val->kind == DEFT_VALUE_PARAM || val->kind == DEFT_VALUE_STATE) {
            rt->param_off[v] = (int64_t)rt->n_state;
            rt->n_state += seg(n);
        } else if (val->kind == DEFT_VALUE_INPUT) {
            rt->param_off[v] = (int64_t)rt->n_inputs;
            rt->n_inputs += seg(n);
        }
    }
    rt->params = deft_runtime_device_alloc(rt, (rt->n_params ? rt->n_params : 16) * sizeof(float));
    bool grads = has_param_grads(g);
    if (grads) rt->grads = deft_runtime_device_alloc(rt, (rt->n_params ? rt->n_params : 16) * sizeof(float));
    rt->state = deft_runtime_device_alloc(rt, (rt->n_state ? rt->n_state : 16) * sizeof(float));
    rt->inputs = deft_runtime_device_alloc(rt, (rt->n_inputs ? rt->n_inputs : 16) * sizeof(float));
    if (!rt->params || (grads && !rt->grads) || !rt->state || !rt->inputs)
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory allocating %zu parameters",
                              rt->n_params + rt->n_state);
    memset(rt->params, 0, rt->n_params * sizeof(float));
    if (grads) memset(rt->grads, 0, rt->n_params * sizeof(float));
    memset(rt->state, 0, rt->n_state * sizeof(float));
    memset(rt->inputs, 0, rt->n_inputs * sizeof(float));
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (rt->param_off[v] < 0) continue;
        if (val->kind == DEFT_VALUE_PARAM && !(val->flags & DEFT_VF_FROZEN))
            rt->ptr[v] = rt->params + rt->param_off[v];
        else if (val->kind == DEFT_VALUE_INPUT)
            rt->ptr[v] = rt->inputs + rt->param_off[v];
        else
            rt->ptr[v] = rt->state + rt->param_off[v];
    }
    rt->stats.param_bytes = rt->n_params * sizeof(float);
    rt->stats.grad_bytes = grads ? rt->n_params * sizeof(float) : 0;
    rt->stats.state_bytes = rt->n_state * sizeof(float);
    return DEFT_OK;
}

/* The value whose buffer v ends up in (v itself unless the backend writes
 * v in place over another value; -1 on a cycle). */
static int alias_root(const struct deft_runtime *rt, int v) {
    if (!rt->be->alias_of) return v;
    int nv = deft_graph_num_values(rt->g);
    for (int hops = 0; hops <= nv; hops++) {
        int a = rt->be->alias_of(rt->prog, v);
        if (a < 0) return v;
        v = a;
    }
    return -1;
}

static enum deft_status plan_arena(struct deft_runtime *rt, const size_t *value_bytes, bool no_reuse) {
    const struct deft_graph *g = rt->g;
    int nv = deft_graph_num_values(g), nn = deft_graph_num_nodes(g);
    struct deft_plan_item *items = deft_calloc((size_t)nv, sizeof *items);
    int *item_of = deft_malloc((size_t)nv * sizeof *item_of);
    enum deft_status s = DEFT_OK;
    if (!items || !item_of) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory planning activations");
        goto done;
    }
    int ni = 0;
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        item_of[v] = -1;
        if (val->kind != DEFT_VALUE_NODE || is_param_grad(g, val) || alias_root(rt, v) != v) continue;
        item_of[v] = ni;
        int last = (val->flags & DEFT_VF_OUTPUT) ? nn - 1 : val->producer;
        items[ni++] = (struct deft_plan_item){.bytes = value_bytes[v], .first = val->producer, .last = last};
        rt->stats.naive_bytes += (value_bytes[v] + 63) / 64 * 64;
    }
    /* A value written in place over another shares its item, which then
     * lives as long as either. */
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        int r = alias_root(rt, v);
        if (r == v || val->kind != DEFT_VALUE_NODE) continue;
        if (r < 0 || item_of[r] < 0 || value_bytes[v] > items[item_of[r]].bytes) {
            s = deft_set_error(DEFT_ERR_BACKEND, "runtime: value %d cannot take over value %d's buffer", v, r);
            goto done;
        }
        item_of[v] = item_of[r];
        struct deft_plan_item *it = &items[item_of[r]];
        int last = (val->flags & DEFT_VF_OUTPUT) ? nn - 1 : val->producer;
        if (last > it->last) it->last = last;
    }
    for (int n = 0; n < nn; n++) {
        const struct deft_node *nd = deft_graph_node(g, n);
        for (int i = 0; i < nd->n_in; i++) {
            int v = nd->in[i];
            if (v >= 0 && item_of[v] >= 0 && items[item_of[v]].last < n) items[item_of[v]].last = n;
        }
    }
    /* A fused chain reads its inputs at its last node. */
    if (rt->be->last_use)
        for (int v = 0; v < nv; v++) {
            if (item_of[v] < 0) continue; /* not an arena value: no item to extend */
            int l = rt->be->last_use(rt->prog, v);
            if (l > items[item_of[v]].last) items[item_of[v]].last = l;
        }
    if ((s = deft_plan_memory(items, ni, nn > 0 ? nn : 1, no_reuse, &rt->stats.arena_bytes))) goto done;
    rt->arena = deft_runtime_device_alloc(rt, rt->stats.arena_bytes);
    if (!rt->arena) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory allocating a %.1f MiB activation arena",
                           (double)rt->stats.arena_bytes / (1 << 20));
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        if (item_of[v] >= 0) rt->ptr[v] = rt->arena + items[item_of[v]].offset;
        const struct deft_value *val = deft_graph_value(g, v);
        if (is_param_grad(g, val)) rt->ptr[v] = rt->grads + rt->param_off[val->grad_of];
    }
done:
    deft_free(items);
    deft_free(item_of);
    return s;
}

/* A forward-only graph (an evaluation or deployment runtime): nothing reads
 * workspaces or pre-fusion values, so the backend may optimize for inference. */
static bool graph_is_inference(const struct deft_graph *g) {
    for (int n = 0; n < deft_graph_num_nodes(g); n++) {
        enum deft_op op = deft_graph_node(g, n)->op;
        if (!deft_op_is_forward(op) && op != DEFT_OP_LOSS) return false;
    }
    return true;
}

enum deft_status deft_runtime_create(const struct deft_graph *g, const struct deft_runtime_opts *o,
                                     struct deft_runtime **out) {
    *out = NULL;
    enum deft_status s = deft_graph_validate(g);
    if (s) return s;
    const struct deft_backend_vtable *be = deft_backend_find(o ? o->backend : NULL);
    if (!be)
        return deft_set_error(DEFT_ERR_NOT_FOUND, "unknown backend '%s' (this build has: %s)", o->backend,
                              deft_backend_names());
    struct deft_runtime *rt = deft_calloc(1, sizeof *rt);
    if (!rt) return deft_set_error(DEFT_ERR_NOMEM, "out of memory creating a runtime");
    rt->g = g;
    rt->be = be;
    int nv = deft_graph_num_values(g);
    size_t *value_bytes = deft_calloc((size_t)nv + 1, sizeof *value_bytes);
    rt->ptr = deft_calloc((size_t)nv + 1, sizeof *rt->ptr);
    rt->watched = deft_calloc((size_t)deft_graph_num_nodes(g) + 1, sizeof *rt->watched);
    rt->param_off = deft_calloc((size_t)nv + 1, sizeof *rt->param_off);
    if (!value_bytes || !rt->ptr || !rt->param_off || !rt->watched) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory creating a runtime");
        goto fail;
    }
    size_t scratch = 0;
    const struct deft_backend_opts bo = {.device_index = o ? o->device_index : 0, .amp = o ? (int)o->amp : 0,
                                         .inference = graph_is_inference(g), .no_fuse = o && (o->no_fuse || o->no_reuse),
                                         .int8_scale = o ? o->int8_scales : NULL, .bf16 = o && o->bf16,
                                         .f32_nhwc = o && o->f32_nhwc, .winograd = o && o->winograd};
    rt->param_version = 1;
    if ((s = be->compile(g, &bo, &rt->prog, value_bytes, &scratch))) {
        deft_wrap_error(s, "backend %s", be->name);
        goto fail;
    }
    if ((s = layout_blocks(rt))) goto fail;
    if ((s = plan_arena(rt, value_bytes, o && o->no_reuse))) goto fail;
    rt->stats.scratch_bytes = scratch;
    rt->scratch = deft_runtime_device_alloc(rt, scratch);
    if (!rt->scratch) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory allocating scratch");
        goto fail;
    }
    deft_free(value_bytes);
    *out = rt;
    return DEFT_OK;
fail:
    deft_free(value_bytes);
    deft_runtime_free(rt);
    return s;
}

void deft_runtime_free(struct deft_runtime *rt) {
    if (!rt) return;
    if (rt->prog) (void)deft_runtime_sync(rt);
    deft_free(rt->ptr);
    deft_free(rt->param_off);
    deft_free(rt->watched);
    deft_runtime_device_free(rt, rt->params);
    deft_runtime_device_free(rt, rt->grads);
    deft_runtime_device_free(rt, rt->state);
    deft_runtime_device_free(rt, rt->inputs);
    deft_runtime_device_free(rt, rt->arena);
    deft_runtime_device_free(rt, rt->scratch);
    if (rt->prog) rt->be->free_program(rt->prog);
    deft_free(rt);
}

const struct deft_graph *deft_runtime_graph(const struct deft_runtime *rt) { return rt->g; }

enum deft_status deft_runtime_set_input(struct deft_runtime *rt, int v, const float *data, size_t n) {
    const struct deft_value *val = deft_graph_value(rt->g, v);
    if (!val || val->kind != DEFT_VALUE_INPUT)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "value %d is not a graph input", v);
    size_t want = (size_t)deft_shape_numel(&val->shape);
    if (n != want)
        return deft_set_error(DEFT_ERR_SHAPE, "input '%s' needs %zu values, got %zu", val->name, want, n);
    memcpy(rt->ptr[v], data, n * sizeof(float));
    return DEFT_OK;
}

void deft_runtime_params_changed(struct deft_runtime *rt) { rt->param_version++; }

float *deft_runtime_data(struct deft_runtime *rt, int v) {
    const struct deft_value *val = deft_graph_value(rt->g, v);
    if (!val || (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE &&
                 val->kind != DEFT_VALUE_INPUT))
        return NULL;
    if (val->kind != DEFT_VALUE_INPUT) rt->param_version++; /* the caller may write it */
    return rt->ptr[v];
}

float *deft_runtime_grad(struct deft_runtime *rt, int param) {
    const struct deft_value *val = deft_graph_value(rt->g, param);
    if (!val || val->kind != DEFT_VALUE_PARAM || (val->flags & DEFT_VF_FROZEN) || !rt->grads) return NULL;
    return rt->grads + rt->param_off[param];
}

enum deft_status deft_runtime_init_params(struct deft_runtime *rt, uint64_t seed) {
    int nv = deft_graph_num_values(rt->g);
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(rt->g, v);
        if (val->kind != DEFT_VALUE_PARAM && val->kind != DEFT_VALUE_STATE) continue;
        enum deft_status s = deft_init_param(val, seed, rt->ptr[v]);
        if (s) return s;
    }
    rt->param_version++;
    return DEFT_OK;
}

enum deft_status deft_runtime_run_range(struct deft_runtime *rt, int first, int last) {
    int nn = deft_graph_num_nodes(rt->g);
    if (first < 0 || last > nn || first > last)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "run range [%d, %d) outside 0..%d", first, last, nn);
    struct deft_run_ctx rc = {.step = rt->step, .shard_rank = rt->shard_rank, .shard_world = rt->shard_world,
                              .param_version = rt->param_version, .allreduce = rt->allreduce,
                              .allreduce_user = rt->allreduce_user};
    for (int n = first; n < last; n++) {
        const struct deft_node *nd = deft_graph_node(rt->g, n);
        double t0 = deft_time_now();
        enum deft_status s = rt->be->run_node(rt->prog, n, rt->ptr, rt->scratch, &rc);
        rt->op_time[nd->op] += deft_time_now() - t0;
        rt->op_calls[nd->op]++;
        if (s) {
            (void)deft_runtime_sync(rt);
            return deft_wrap_error(s, "node '%s' (%s)", nd->name, deft_op_name(nd->op));
        }
        if (rt->watched[n] && rt->node_hook) {
            /* device backends: what the node wrote must reach the host first */
            if ((s = deft_runtime_sync(rt))) return s;
            rt->node_hook(n, rt->node_hook_user);
        }
    }
    /* Device backends queue work: finish it so the host may read any buffer. */
    return deft_runtime_sync(rt);
}

enum deft_status deft_runtime_run(struct deft_runtime *rt) {
    enum deft_status s = deft_runtime_run_range(rt, 0, deft_graph_num_nodes(rt->g));
    if (s) return s;
    if (rt->hook && rt->n_params && rt->grads) return rt->hook(rt->grads, rt->n_params, rt->hook_user);
    return DEFT_OK;
}

enum deft_status deft_runtime_read(struct deft_runtime *rt, int v, float *dst, size_t n) {
    const struct deft_value *val = deft_graph_value(rt->g, v);
    if (!val) return deft_set_error(DEFT_ERR_INVALID_ARG, "no value %d", v);
    size_t want = (size_t)deft_shape_numel(&val->shape);
    if (n != want)
        return deft_set_error(DEFT_ERR_SHAPE, "value '%s' has %zu elements, asked for %zu", val->name, want, n);
    if (val->kind != DEFT_VALUE_NODE || is_param_grad(rt->g, val)) {
        memcpy(dst, rt->ptr[v], n * sizeof(float));
        return DEFT_OK;
    }
    return rt->be->read_plain(rt->prog, v, rt->ptr[v], dst);
}

float *deft_runtime_param_block(struct deft_runtime *rt, size_t *n) {
    rt->param_version++;
    *n = rt->n_params;
    return rt->params;
}
float *deft_runtime_state_block(struct deft_runtime *rt, size_t *n) {
    rt->param_version++;
    *n = rt->n_state;
    return rt->state;
}
float *deft_runtime_grad_block(struct deft_runtime *rt, size_t *n) {
    *n = rt->grads ? rt->n_params : 0;
    return rt->grads;
}

int64_t deft_runtime_param_offset(const struct deft_runtime *rt, int v) {
    const struct deft_value *val = deft_graph_value(rt->g, v);
    if (!val || val->kind != DEFT_VALUE_PARAM || (val->flags & DEFT_VF_FROZEN)) return -1;
    return rt->param_off[v];
}

void deft_runtime_set_grad_hook(struct deft_runtime *rt, deft_grad_hook fn, void *user) {
    rt->hook = fn;
    rt->hook_user = user;
}
void deft_runtime_set_node_hook(struct deft_runtime *rt, deft_node_hook fn, void *user) {
    rt->node_hook = fn;
    rt->node_hook_user = user;
}
void deft_runtime_watch_node(struct deft_runtime *rt, int n, bool on) {
    if (n >= 0 && n < deft_graph_num_nodes(rt->g)) rt->watched[n] = on;
}
void deft_runtime_set_allreduce(struct deft_runtime *rt, deft_allreduce_fn fn, void *user) {
    rt->allreduce = fn;
    rt->allreduce_user = user;
}
void deft_runtime_set_step(struct deft_runtime *rt, uint64_t step) { rt->step = step; }
void deft_runtime_set_shard(struct deft_runtime *rt, int rank, int world) {
    rt->shard_rank = world > 1 && rank >= 0 && rank < world ? (uint32_t)rank : 0;
    rt->shard_world = world > 1 && rank >= 0 && rank < world ? (uint32_t)world : 1;
}
void deft_runtime_stats(const struct deft_runtime *rt, struct deft_runtime_stats *out) { *out = rt->stats; }

void deft_runtime_print_profile(const struct deft_runtime *rt, FILE *f) {
    double total = 0;
    for (int i = 0; i < DEFT_OP_COUNT; i++) total += rt->op_time[i];
    fprintf(f, "%-30s %8s %10s %6s\n", "op", "calls", "ms", "%");
    for (int i = 0; i < DEFT_OP_COUNT; i++)
        if (rt->op_calls[i])
            fprintf(f, "%-30s %8ld %10.2f %5.1f%%\n", deft_op_name(i), rt->op_calls[i], rt->op_time[i] * 1e3,
                    total > 0 ? 100 * rt->op_time[i] / total : 0);
}

/* optim.c - SGD (momentum, nesterov), Adam, AdamW, RMSProp over the runtime's
 * contiguous parameter and gradient blocks. Formulas follow torch.optim 1.13
 * term by term so parity tests can compare step by step. */
#include <math.h>
#include <string.h>
#include "deft/optim.h"
#include "runtime/device.h"

struct segment { int64_t off, n; bool decay; };

struct deft_optim {
    struct deft_optim_config c;
    float *params, *grads;
    size_t n;
    float *buf[2]; /* momentum / exp_avg / square_avg, exp_avg_sq */
    int n_buf;
    struct segment *seg;
    int n_seg;
    int64_t steps;
    struct deft_runtime *rt;  /* buffers come from its backend; updates run there when it can */
};

static const char *const optim_names[] = {"sgd", "adam", "adamw", "rmsprop"};
_Static_assert(sizeof optim_names / sizeof optim_names[0] == DEFT_OPTIM_COUNT, "optim names");

const char *deft_optim_name(enum deft_optim_kind k) {
    return (unsigned)k < DEFT_OPTIM_COUNT ? optim_names[k] : "?";
}
int deft_optim_from_name(const char *name) {
    for (int i = 0; i < DEFT_OPTIM_COUNT; i++)
        if (!strcmp(name, optim_names[i])) return i;
    return -1;
}

enum deft_status deft_optim_create(const struct deft_optim_config *c, struct deft_runtime *rt,
                                   struct deft_optim **out) {
    *out = NULL;
    if ((unsigned)c->kind >= DEFT_OPTIM_COUNT)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "unknown optimizer");
    if (c->momentum < 0 || c->weight_decay < 0 || c->l1 < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "momentum, weight decay and l1 must be >= 0");
    struct deft_optim *o = deft_calloc(1, sizeof *o);
    if (!o) return deft_set_error(DEFT_ERR_NOMEM, "out of memory creating an optimizer");
    o->c = *c;
    o->rt = rt;
    if (o->c.beta1 == 0) o->c.beta1 = 0.9f;
    if (o->c.beta2 == 0) o->c.beta2 = 0.999f;
    if (o->c.eps == 0) o->c.eps = 1e-8f;
    if (o->c.rho == 0) o->c.rho = 0.99f;
    o->params = deft_runtime_param_block(rt, &o->n);
    o->grads = deft_runtime_grad_block(rt, &o->n);
    o->n_buf = c->kind == DEFT_OPTIM_SGD ? (c->momentum > 0 ? 1 : 0)
             : c->kind == DEFT_OPTIM_RMSPROP ? (c->momentum > 0 ? 2 : 1) : 2;
    for (int i = 0; i < o->n_buf; i++) {
        o->buf[i] = deft_runtime_device_alloc(rt, (o->n ? o->n : 1) * sizeof(float));
        if (!o->buf[i]) goto nomem;
        memset(o->buf[i], 0, o->n * sizeof(float));
    }
    const struct deft_graph *g = deft_runtime_graph(rt);
    int nv = deft_graph_num_values(g);
    o->seg = deft_calloc((size_t)nv + 1, sizeof *o->seg);
    if (!o->seg) goto nomem;
    for (int v = 0; v < nv; v++) {
        int64_t off = deft_runtime_param_offset(rt, v);
        if (off < 0) continue;
        const struct deft_value *val = deft_graph_value(g, v);
        o->seg[o->n_seg++] = (struct segment){off, deft_shape_numel(&val->shape),
                                              c->decay_all || !(val->flags & DEFT_VF_NO_DECAY)};
    }
    *out = o;
    return DEFT_OK;
nomem:
    deft_optim_free(o);
    return deft_set_error(DEFT_ERR_NOMEM, "out of memory creating an optimizer");
}

void deft_optim_free(struct deft_optim *o) {
    if (!o) return;
    for (int i = 0; i < 2; i++) deft_runtime_device_free(o->rt, o->buf[i]);
    deft_free(o->seg);
    deft_free(o);
}

int64_t deft_optim_steps(const struct deft_optim *o) { return o->steps; }
void deft_optim_set_steps(struct deft_optim *o, int64_t steps) { o->steps = steps; }
int deft_optim_state_count(const struct deft_optim *o) { return o->n_buf; }

float *deft_optim_state(struct deft_optim *o, int i, const char **name, size_t *n) {
    static const char *const names[DEFT_OPTIM_COUNT][2] = {
        {"momentum_buffer", ""}, {"exp_avg", "exp_avg_sq"}, {"exp_avg", "exp_avg_sq"},
        {"square_avg", "momentum_buffer"}};
    if (i < 0 || i >= o->n_buf) return NULL;
    if (name) *name = names[o->c.kind][i];
    if (n) *n = o->n;
    return o->buf[i];
}

/* Gradient with L1/L2 terms as the coupled optimizers see it. */
static inline float reg_grad(const struct deft_optim *o, float g, float p, bool decay) {
    if (!decay) return g;
    if (o->c.kind != DEFT_OPTIM_ADAMW && o->c.weight_decay > 0) g += o->c.weight_decay * p;
    if (o->c.l1 > 0) g += o->c.l1 * (float)((p > 0) - (p < 0));
    return g;
}

static void step_segment(struct deft_optim *o, const struct segment *s, float lr, float gscale) {
    const struct deft_optim_config *c = &o->c;
    float *p = o->params + s->off, *gr = o->grads + s->off;
    float *b0 = o->buf[0] ? o->buf[0] + s->off : NULL, *b1 = o->buf[1] ? o->buf[1] + s->off : NULL;
    int64_t n = s->n;
    switch (c->kind) {
    case DEFT_OPTIM_SGD:
        for (int64_t i = 0; i < n; i++) {
            float g = reg_grad(o, gr[i] * gscale, p[i], s->decay);
            if (b0) {
                b0[i] = o->steps == 0 ? g : c->momentum * b0[i] + g;
                g = c->nesterov ? g + c->momentum * b0[i] : b0[i];
            }
            p[i] -= lr * g;
        }
        break;
    case DEFT_OPTIM_ADAM:
    case DEFT_OPTIM_ADAMW: {
        double t = (double)(o->steps + 1);
        float bc1 = (float)(1.0 - pow(c->beta1, t)), bc2s = (float)sqrt(1.0 - pow(c->beta2, t));
        float step_size = lr / bc1;
        bool decoupled = c->kind == DEFT_OPTIM_ADAMW && s->decay && c->weight_decay > 0;
        for (int64_t i = 0; i < n; i++) {
            if (decoupled) p[i] *= 1.0f - lr * c->weight_decay;
            float g = reg_grad(o, gr[i] * gscale, p[i], s->decay);
            b0[i] = c->beta1 * b0[i] + (1 - c->beta1) * g;
            b1[i] = c->beta2 * b1[i] + (1 - c->beta2) * g * g;
            float denom = sqrtf(b1[i]) / bc2s + c->eps;
            p[i] -= step_size * b0[i] / denom;
        }
        break;
    }
    case DEFT_OPTIM_RMSPROP:
        for (int64_t i = 0; i < n; i++) {
            float g = reg_grad(o, gr[i] * gscale, p[i], s->decay);
            b0[i] = c->rho * b0[i] + (1 - c->rho) * g * g;
            float avg = sqrtf(b0[i]) + c->eps;
            if (b1) {
                b1[i] = c->momentum * b1[i] + g / avg;
                p[i] -= lr * b1[i];
            } else {
                p[i] -= lr * g / avg;
            }
        }
        break;
    default: break;
    }
}

/* The same update as step_segment, by the backend where the parameters live. */
static enum deft_status device_segment(struct deft_optim *o, const struct segment *s, float lr, float gscale) {
    const struct deft_optim_config *c = &o->c;
    const struct deft_backend_vtable *be = deft_runtime_backend(o->rt);
    double t = (double)(o->steps + 1);
    struct deft_optim_seg_args a = {
        .params = o->params + s->off, .grads = o->grads + s->off, .n = s->n,
        .buf0 = o->buf[0] ? o->buf[0] + s->off : NULL, .buf1 = o->buf[1] ? o->buf[1] + s->off : NULL,
        .kind = c->kind, .decay = s->decay, .first = o->steps == 0, .nesterov = c->nesterov,
        .decoupled = c->kind == DEFT_OPTIM_ADAMW && s->decay && c->weight_decay > 0,
        .lr = lr, .gscale = gscale, .momentum = c->momentum, .weight_decay = c->weight_decay, .l1 = c->l1,
        .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps, .rho = c->rho,
        .bc1 = (float)(1.0 - pow(c->beta1, t)), .bc2s = (float)sqrt(1.0 - pow(c->beta2, t))};
    return be->optim_segment(deft_runtime_program(o->rt), &a);
}

static enum deft_status grad_stats(struct deft_optim *o, double *sumsq, bool *finite) {
    const struct deft_backend_vtable *be = deft_runtime_backend(o->rt);
    if (be->grad_stats) return be->grad_stats(deft_runtime_program(o->rt), o->grads, o->n, sumsq, finite);
    double sq = 0;
    bool fin = true;
    #pragma omp parallel for reduction(+ : sq) reduction(&& : fin)
    for (size_t i = 0; i < o->n; i++) {
        float g = o->grads[i];
        fin = fin && isfinite(g);
        sq += (double)g * g;
    }
    *sumsq = sq;
    *finite = fin;
    return DEFT_OK;
}

enum deft_status deft_optim_step(struct deft_optim *o, float lr) { return deft_optim_step_scaled(o, lr, 1.0f); }

enum deft_status deft_optim_step_scaled(struct deft_optim *o, float lr, float grad_scale) {
    double sq = 0;
    bool finite = true;
    enum deft_status st = grad_stats(o, &sq, &finite);
    if (st) return st;
    if (!finite)
        return deft_set_error(DEFT_ERR_NUMERIC, "gradient contains NaN or Inf at step %lld; parameters not updated",
                              (long long)o->steps);
    float gscale = grad_scale;
    const double norm = sqrt(sq) * grad_scale;
    if (o->c.clip_grad_norm > 0 && norm > o->c.clip_grad_norm)
        gscale = (float)(grad_scale * o->c.clip_grad_norm / (norm + 1e-6));
    if (deft_runtime_backend(o->rt)->optim_segment) {
        for (int i = 0; i < o->n_seg && !st; i++) st = device_segment(o, &o->seg[i], lr, gscale);
        if (!st) st = deft_runtime_sync(o->rt);
        if (st) return st;
    } else {
        #pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < o->n_seg; i++) step_segment(o, &o->seg[i], lr, gscale);
    }
    o->steps++;
    return DEFT_OK;
}

/* act.c - reference element-wise activations and their gradients (PyTorch
 * semantics, including the gradient at the kinks: relu'(0) = 0, relu6 has zero
 * gradient at x <= 0 and x >= 6 like hardtanh, leaky_relu'(0) = alpha,
 * hardswish' = 0 below -3, x/3 + 1/2 on [-3, 3), 1 from 3 on; hardsigmoid' = 1/6
 * strictly inside (-3, 3), 0 elsewhere; mish is smooth; abs' = sign(x), 0 at 0;
 * elu'(0) = alpha).
 *
 * ACT_BWD reads the forward output y instead of x for the kinds where
 * deft_act_bwd_uses_output() says so (the op table decides; this file follows).
 */
#include <math.h>
#include "backend/ref/ref_impl.h"

/* log(1 + e^x) without overflow (e^x is exact enough below 30 in double). */
static double softplus(double x) { return x > 30 ? x : log1p(exp(x)); }

static double act_fwd(enum deft_act_kind kind, double alpha, double x) {
    if (isnan(x)) return x; /* every activation propagates NaN, as PyTorch's do */
    switch (kind) {
    case DEFT_ACT_RELU: return x > 0 ? x : 0.0;
    case DEFT_ACT_RELU6: return x < 0 ? 0.0 : (x > 6 ? 6.0 : x);
    case DEFT_ACT_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case DEFT_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case DEFT_ACT_TANH: return tanh(x);
    case DEFT_ACT_SWISH: return x / (1.0 + exp(-x));
    case DEFT_ACT_HARDSWISH: {
        double r6 = x + 3 < 0 ? 0.0 : (x + 3 > 6 ? 6.0 : x + 3);
        return x * r6 / 6.0;
    }
    case DEFT_ACT_MISH: return x * tanh(softplus(x));
    case DEFT_ACT_HARDSIGMOID: return x <= -3 ? 0.0 : (x >= 3 ? 1.0 : x / 6.0 + 0.5);
    case DEFT_ACT_EXP: return exp(x);
    case DEFT_ACT_LOG: return log(x);
    case DEFT_ACT_SQRT: return sqrt(x);
    case DEFT_ACT_ABS: return fabs(x);
    case DEFT_ACT_NEG: return -x;
    case DEFT_ACT_RECIPROCAL: return 1.0 / x;
    case DEFT_ACT_SOFTPLUS: return softplus(x);
    case DEFT_ACT_SOFTSIGN: return x / (1.0 + fabs(x));
    case DEFT_ACT_ELU: return x > 0 ? x : alpha * expm1(x);
    case DEFT_ACT_ERF: return erf(x);
    default: return x;
    }
}

/* d act / d x, given x. */
static double act_grad_x(enum deft_act_kind kind, double alpha, double x) {
    switch (kind) {
    case DEFT_ACT_RELU: return x > 0 ? 1.0 : 0.0;
    case DEFT_ACT_RELU6: return x > 0 && x < 6 ? 1.0 : 0.0;
    case DEFT_ACT_LEAKY_RELU: return x > 0 ? 1.0 : alpha;
    case DEFT_ACT_SIGMOID: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1 - s);
    }
    case DEFT_ACT_TANH: {
        double t = tanh(x);
        return 1 - t * t;
    }
    case DEFT_ACT_SWISH: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1 + x * (1 - s));
    }
    case DEFT_ACT_HARDSWISH:
        /* At exactly x = 3 PyTorch's vectorized path gives 1 and its scalar
         * tail 1.5; we follow the vectorized path (almost every element). */
        return x < -3 ? 0.0 : (x < 3 ? x / 3.0 + 0.5 : 1.0);
    case DEFT_ACT_MISH: { /* tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)^2) */
        double t = tanh(softplus(x)), s = 1.0 / (1.0 + exp(-x));
        return t + x * s * (1 - t * t);
    }
    case DEFT_ACT_HARDSIGMOID: return x > -3 && x < 3 ? 1.0 / 6.0 : 0.0; /* PyTorch: 0 at both kinks */
    case DEFT_ACT_EXP: return exp(x);
    case DEFT_ACT_LOG: return 1.0 / x;
    case DEFT_ACT_SQRT: return 0.5 / sqrt(x);
    case DEFT_ACT_ABS: return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); /* PyTorch: sign(x) */
    case DEFT_ACT_NEG: return -1.0;
    case DEFT_ACT_RECIPROCAL: return -1.0 / (x * x);
    case DEFT_ACT_SOFTPLUS: return 1.0 / (1.0 + exp(-x));
    case DEFT_ACT_SOFTSIGN: {
        double d = 1.0 + fabs(x);
        return 1.0 / (d * d);
    }
    case DEFT_ACT_ELU: return x > 0 ? 1.0 : alpha * exp(x); /* PyTorch: alpha at 0 */
    case DEFT_ACT_ERF: return 1.1283791670955126 * exp(-x * x); /* 2 / sqrt(pi) */
    default: return 1.0;
    }
}

/* d act / d x, given y = act(x); only for invertible-enough kinds. */
static double act_grad_y(enum deft_act_kind kind, double alpha, double y) {
    switch (kind) {
    case DEFT_ACT_RELU: return y > 0 ? 1.0 : 0.0;
    case DEFT_ACT_RELU6: return y > 0 && y < 6 ? 1.0 : 0.0;
    case DEFT_ACT_LEAKY_RELU: return y > 0 ? 1.0 : alpha; /* sign(y) == sign(x) for alpha > 0 */
    case DEFT_ACT_SIGMOID: return y * (1 - y);
    case DEFT_ACT_TANH: return 1 - y * y;
    case DEFT_ACT_EXP: return y;
    case DEFT_ACT_SQRT: return 0.5 / y;
    default: return 1.0;
    }
}

/* ACT: in x; out y. */
enum deft_status deft_ref_act(const struct deft_graph *g, int n, void *const *ptr,
                              const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const enum deft_act_kind kind = nd->attr.act.kind;
    if ((unsigned)kind >= DEFT_ACT_COUNT)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "ref act %s: unknown kind %d", nd->name,
                              (int)kind);
    const double alpha = nd->attr.act.alpha;
    const float *x = ref_in(nd, ptr, 0);
    float *y = ref_out(nd, ptr, 0);
    const int64_t cnt = ref_numel(g, nd->out[0]);
    #pragma omp parallel for
    for (int64_t i = 0; i < cnt; i++) y[i] = (float)act_fwd(kind, alpha, x[i]);
    return DEFT_OK;
}

/* ACT_BWD: in dy, x or y; out dx. */
enum deft_status deft_ref_act_bwd(const struct deft_graph *g, int n, void *const *ptr,
                                  const struct deft_run_ctx *rc) {
    const struct deft_node *nd = deft_graph_node(g, n);
    const enum deft_act_kind kind = nd->attr.act.kind;
    if ((unsigned)kind >= DEFT_ACT_COUNT)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "ref act_bwd %s: unknown kind %d", nd->name,
                              (int)kind);
    const bool from_y = deft_act_bwd_uses_output(kind);
    if (from_y && (kind == DEFT_ACT_SWISH || kind == DEFT_ACT_HARDSWISH || kind == DEFT_ACT_MISH))
        return deft_set_error(DEFT_ERR_UNSUPPORTED,
                              "ref act_bwd %s: %s gradient cannot be computed from its output",
                              nd->name, deft_act_name(kind));
    const double alpha = nd->attr.act.alpha;
    const float *dy = ref_in(nd, ptr, 0), *t = ref_in(nd, ptr, 1);
    float *dx = ref_out(nd, ptr, 0);
    const int64_t cnt = ref_numel(g, nd->out[0]);
    #pragma omp parallel for
    for (int64_t i = 0; i < cnt; i++) {
        double d = from_y ? act_grad_y(kind, alpha, t[i]) : act_grad_x(kind, alpha, t[i]);
        dx[i] = (float)(dy[i] * d);
    }
    return DEFT_OK;
}

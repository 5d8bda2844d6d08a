/* deft/prune.h - structured (filter) pruning with TAO's min_weight rules.
 *
 * The rules are TAO's (TF1 core/pruning): each conv/linear output filter is
 * scored by the L2 norm of its kernel (bias and BN ignored); scores are
 * normalized per layer (`max`: s / max s; `L2`: s / ||s|| * N); a layer keeps
 * k = count(s > threshold) filters, raised to min(min_num_filters, N),
 * rounded up to a multiple of granularity and capped at N: the k best
 * scores, in ascending index order. Layers whose outputs meet in an add/mul
 * form one equalization group (groups sharing a member merge) whose members
 * keep the same channels, chosen on the members' scores combined element-wise
 * (union = max, intersection = min, arithmetic_mean, geometric_mean); a
 * depthwise conv is tied to the layer that produces its input (scores
 * combined pairwise the same way); a conv or linear weight read by several
 * nodes (RetinaNet's subnets on five FPN levels) is one layer whose filters
 * every use loses alike, and the producers of its uses' inputs form one
 * equalization group (TAO's shared Conv2D); concat offsets its inputs' channels;
 * flatten expands a channel to its H*W activations so the next linear loses
 * the matching columns; batch norm is sliced with its producer; transposed
 * convs never lose output channels. Layers whose channels reach a model
 * output, and `excluded` layers (TAO's -el), keep all their filters (their
 * inputs are still sliced); a group with such a member keeps everything.
 *
 * The analysis is generic over deft's IR (any architecture built from the
 * forward ops). A layer whose channels are sliced (a CSP split, TAO's
 * Split) or that feeds a grouped (not depthwise) conv is kept whole; patterns
 * it cannot prune (a reshape after a prunable layer, a concat in front of an
 * add ...) fail with an error that names the layers, before anything is
 * written.
 *
 *     struct deft_prune_plan *p;
 *     deft_prune_analyze(model->graph, model->file, &(struct deft_prune_opts){
 *                            .threshold = 0.1f, .granularity = 8, .min_num_filters = 16}, &p);
 *     deft_prune_decide(p, 0.1f);                 // or deft_prune_search(p, 0.3, false, &th)
 *     struct deft_graph *g2; struct deft_named_tensor *w2; int n2;
 *     deft_prune_apply(p, model->file, &g2, &w2, &n2);
 *     deft_model_save("pruned.safetensors", g2, &(struct deft_model_save_opts){
 *                         .tensors = w2, .n_tensors = n2});
 *     deft_prune_tensors_free(w2, n2); deft_graph_free(g2); deft_prune_plan_free(p);
 *
 * Parameter counts follow TAO (Keras count_params): every weight, BN running
 * statistics included. FLOPs are counted at batch 1.
 */
#ifndef DEFT_PRUNE_H
#define DEFT_PRUNE_H

#include "deft/core.h"
#include "deft/graph.h"
#include "deft/io.h"

#ifdef __cplusplus
extern "C" {
#endif

enum deft_prune_norm { DEFT_PRUNE_NORM_MAX = 0, DEFT_PRUNE_NORM_L2, DEFT_PRUNE_NORM_OFF };
enum deft_prune_eq {
    DEFT_PRUNE_EQ_UNION = 0,        /* max */
    DEFT_PRUNE_EQ_INTERSECTION,     /* min */
    DEFT_PRUNE_EQ_ARITHMETIC_MEAN,
    DEFT_PRUNE_EQ_GEOMETRIC_MEAN,
};

struct deft_prune_opts {
    float threshold;                 /* TAO -pth (CLI default 0.1) */
    enum deft_prune_norm norm;       /* -n (default max) */
    enum deft_prune_eq eq;           /* -eq (default union) */
    int granularity;                 /* -pg, 0 -> 8 */
    int min_num_filters;             /* -nf, 0 -> 16 (negative: 0) */
    const char *const *excluded;     /* -el: node names that keep all filters */
    int n_excluded;
};

/* Parse "max"/"L2"/"off" and the four criteria; -1 when unknown. */
DEFT_API int deft_prune_norm_from_name(const char *s);
DEFT_API int deft_prune_eq_from_name(const char *s);

struct deft_prune_plan;

/* Analyze g (a forward graph) with its weights (every conv/linear weight by
 * value name): channel flow, groups and per-filter scores; then decide at
 * opts->threshold. Errors name the layer: DEFT_ERR_UNSUPPORTED for a pattern
 * that cannot be pruned, DEFT_ERR_NOT_FOUND for an -el name that is no layer. */
DEFT_API DEFT_NODISCARD enum deft_status deft_prune_analyze(const struct deft_graph *g,
                                                           const struct deft_safetensors *w,
                                                           const struct deft_prune_opts *opts,
                                                           struct deft_prune_plan **out);
DEFT_API void deft_prune_plan_free(struct deft_prune_plan *p);

/* Choose the retained filters at this threshold (the other options stay). */
DEFT_API DEFT_NODISCARD enum deft_status deft_prune_decide(struct deft_prune_plan *p, float threshold);
/* For a per-layer sensitivity scan: only the equalization group of `layer`
 * (an index of deft_prune_layer_info) is pruned, keeping its best
 * ceil(fraction * N) filters by the same ranking (then raised to
 * min_num_filters and rounded up to granularity); every other layer keeps all.
 * DEFT_ERR_INVALID_ARG when that layer is kept whole. */
DEFT_API DEFT_NODISCARD enum deft_status deft_prune_decide_layer(struct deft_prune_plan *p, int layer,
                                                                double fraction);
/* The group id of a layer (layers tied by add/mul or a depthwise conv share
 * one), or -1 when the layer is kept whole. */
DEFT_API int deft_prune_layer_group(const struct deft_prune_plan *p, int layer);
/* Parameter and FLOP counts of the original and of the decided pruned graph. */
struct deft_prune_counts { int64_t params_before, params_after, flops_before, flops_after; };
DEFT_API DEFT_NODISCARD enum deft_status deft_prune_counts(struct deft_prune_plan *p,
                                                          struct deft_prune_counts *c);
/* Find the threshold whose pruned model has the ratio (params, or FLOPs when
 * flops) nearest to target without exceeding it when possible; decides at it
 * and returns it in *threshold. */
DEFT_API DEFT_NODISCARD enum deft_status deft_prune_search(struct deft_prune_plan *p, double target,
                                                          bool flops, float *threshold);
/* The largest threshold at which some layer still changes (sweeps stop there). */
DEFT_API float deft_prune_max_threshold(const struct deft_prune_plan *p);
/* Up to n thresholds for a sweep: 0, then quantiles of all filter scores, so
 * that each step prunes about as many filters (trained nets crowd their
 * scores near 1, where an even grid would skip the whole trade-off).
 * Returns how many (ascending, distinct). */
DEFT_API int deft_prune_sweep_thresholds(const struct deft_prune_plan *p, float *out, int n);

/* Per prunable layer (conv, depthwise conv, linear), in graph order. */
struct deft_prune_layer {
    const char *name;       /* node name, as the model file has it */
    const char *type;       /* "conv", "depthwise", "linear" */
    int before, after;      /* output channels */
    const int *retained;    /* `after` ascending indices */
    bool excluded;          /* kept whole: -el, a model output, or its group's */
};
DEFT_API int deft_prune_num_layers(const struct deft_prune_plan *p);
DEFT_API void deft_prune_layer_info(const struct deft_prune_plan *p, int i, struct deft_prune_layer *out);

/* The pruned graph (same names, attrs; smaller channel counts) and its
 * weights: one f32 tensor per PARAM/STATE value (free with
 * deft_prune_tensors_free). The graph keeps g's metadata plus "pruned". */
DEFT_API DEFT_NODISCARD enum deft_status deft_prune_apply(struct deft_prune_plan *p,
                                                         const struct deft_safetensors *w,
                                                         struct deft_graph **graph,
                                                         struct deft_named_tensor **tensors, int *n);
DEFT_API void deft_prune_tensors_free(struct deft_named_tensor *t, int n);

/* TAO's prune action for any task (prune_run.c): load `model`, prune at
 * opts.threshold (or at the threshold found for target_ratio / target_flops),
 * print TAO's log line and a per-layer table, write the pruned model to
 * `output` (reloaded to check it) and <results_dir>/prune/report.json
 * (results_dir NULL: beside the output). With sweep, a table and
 * prune/sweep.{csv,svg,png} of parameter ratio, FLOPs ratio and, with
 * `eval`, the task's validation metric without retraining, per threshold;
 * with sensitivity, the same per layer: each prunable group alone kept at
 * 3/4, 1/2 and 1/4 of its filters (prune/sensitivity.csv). */
typedef enum deft_status (*deft_prune_eval_fn)(void *ctx, const char *model_path, double *metric);
struct deft_prune_run_args {
    const char *model, *output, *results_dir;
    struct deft_prune_opts opts;
    double target_ratio, target_flops; /* 0: off */
    bool sweep, sensitivity;
    int threads;
    deft_prune_eval_fn eval;           /* NULL: ratios only */
    void *eval_ctx;
    const char *metric_name;           /* CSV column and table header: "val_top1", "val_mAP" */
    const char *metric_label;          /* for people: "val top-1", "val mAP" */
    FILE *out;
};
DEFT_API DEFT_NODISCARD enum deft_status deft_prune_run(const struct deft_prune_run_args *a);

#ifdef __cplusplus
}
#endif
#endif

/* prune_impl.h (internal) - the pruning plan shared by the src/prune files.
 *
 * Channel flow: every forward value with a channel axis (dim 1) gets a map,
 * one int per channel: the global id (unit base + filter index) of the
 * prunable filter that produced it, or -1 for a channel no pruning touches
 * (the image, a transposed conv's output). Pass-through ops copy maps, concat
 * joins them, flatten repeats each entry H*W times. A unit is the output of
 * one conv or linear weight (every conv reading a shared weight gives the
 * same unit's channels); add/mul, and the inputs of a shared weight's uses,
 * union units into equalization groups. */
#ifndef DEFT_PRUNE_IMPL_H
#define DEFT_PRUNE_IMPL_H

#include "deft/prune.h"

enum pr_kind { PR_CONV = 0, PR_DEPTHWISE, PR_LINEAR };

struct pr_unit {
    int node;        /* the conv/linear node (a shared weight's first use) */
    int weight;      /* its kernel's value */
    int n, base;     /* filters, first global id */
    float *stat;     /* normalized score per filter (depthwise children merged in) */
    bool full;       /* keep every filter (excluded, output, forced) */
    int parent;      /* union-find */
};

struct pr_layer {
    int node;
    enum pr_kind kind;
    int unit;        /* its unit; a depthwise conv: its parent's, -1 if none */
    int channels;    /* output channels before pruning */
};

struct deft_prune_plan {
    struct deft_graph *g;        /* clone of the analyzed graph */
    struct deft_prune_opts o;    /* excluded list not kept */
    struct pr_unit *units;
    int n_units, cap_units, total;
    struct pr_layer *layers;
    int n_layers, cap_layers;
    int **map;                   /* per value, NULL = no prunable channel */
    int *map_n;
    /* decision */
    unsigned char *keep;         /* per global id */
    int **ret;                   /* per unit root: retained indices */
    int *ret_n;
    bool decided;
    struct deft_prune_counts before;
    bool have_before;
    const char *const *excl;     /* -el names, during analysis only */
    int n_excl;
};

/* prune_rules.c: TAO's arithmetic */
void pr_normalize(float *s, int n, enum deft_prune_norm norm);
float pr_combine2(float a, float b, enum deft_prune_eq eq);
/* element-wise over m vectors of length n (rows of `stats`) into out */
void pr_combine(const float *const *stats, int m, int n, enum deft_prune_eq eq, float *out);
/* TAO's count rule: filters above threshold, raised to min(min_num_filters, n),
 * rounded up to granularity, capped at n (pr_round_count: the last three steps) */
int pr_retained_count(const float *s, int n, float threshold, int min_num_filters, int granularity);
int pr_round_count(int k, int n, int min_num_filters, int granularity);
/* the k best scores' indices (ascending) into idx; returns k, -1 out of memory */
int pr_top_k(const float *s, int n, int k, int *idx);

/* prune_analyze.c */
int pr_find(struct deft_prune_plan *p, int u);

/* prune_apply.c: the pruned graph's shapes (no weights), and counts */
enum deft_status pr_build_graph(struct deft_prune_plan *p, struct deft_graph **out,
                                int ***rows, int **nrows, int ***cols, int **ncols);
void pr_free_lists(int **l, int n);
enum deft_status pr_count(const struct deft_graph *g, int64_t *params, int64_t *flops);

#endif

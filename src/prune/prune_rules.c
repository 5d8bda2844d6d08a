/* prune_rules.c - TAO's min_weight arithmetic: normalization, equalization
 * criteria and the retained-count rule (tao.md §2.2, 2.3, 2.5). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "prune/prune_impl.h"

int deft_prune_norm_from_name(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "max")) return DEFT_PRUNE_NORM_MAX;
    if (!strcmp(s, "L2") || !strcmp(s, "l2")) return DEFT_PRUNE_NORM_L2;
    if (!strcmp(s, "off")) return DEFT_PRUNE_NORM_OFF;
    return -1;
}

int deft_prune_eq_from_name(const char *s) {
    static const char *const names[] = {"union", "intersection", "arithmetic_mean", "geometric_mean"};
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* max: relative to the layer's strongest filter; L2: s / ||s|| * N (TAO's
 * factor N makes an L2 threshold depend on the layer width). */
void pr_normalize(float *s, int n, enum deft_prune_norm norm) {
    double d = 0;
    if (norm == DEFT_PRUNE_NORM_MAX) {
        for (int i = 0; i < n; i++) d = s[i] > d ? s[i] : d;
    } else if (norm == DEFT_PRUNE_NORM_L2) {
        for (int i = 0; i < n; i++) d += (double)s[i] * s[i];
        d = sqrt(d) / n;
    } else {
        return;
    }
    if (d <= 0) return; /* an all-zero layer stays all zero */
    for (int i = 0; i < n; i++) s[i] = (float)(s[i] / d);
}

float pr_combine2(float a, float b, enum deft_prune_eq eq) {
    switch (eq) {
    case DEFT_PRUNE_EQ_INTERSECTION: return a < b ? a : b;
    case DEFT_PRUNE_EQ_ARITHMETIC_MEAN: return (a + b) / 2;
    case DEFT_PRUNE_EQ_GEOMETRIC_MEAN: return sqrtf(a * b);
    default: return a > b ? a : b;
    }
}

void pr_combine(const float *const *stats, int m, int n, enum deft_prune_eq eq, float *out) {
    for (int i = 0; i < n; i++) {
        double acc = eq == DEFT_PRUNE_EQ_UNION ? -INFINITY : eq == DEFT_PRUNE_EQ_INTERSECTION ? INFINITY : 0;
        for (int j = 0; j < m; j++) {
            double v = stats[j][i];
            switch (eq) {
            case DEFT_PRUNE_EQ_INTERSECTION: acc = v < acc ? v : acc; break;
            case DEFT_PRUNE_EQ_ARITHMETIC_MEAN: acc += v; break;
            case DEFT_PRUNE_EQ_GEOMETRIC_MEAN: acc += log(v); break;
            default: acc = v > acc ? v : acc;
            }
        }
        if (eq == DEFT_PRUNE_EQ_ARITHMETIC_MEAN) acc /= m;
        if (eq == DEFT_PRUNE_EQ_GEOMETRIC_MEAN) acc = exp(acc / m);
        out[i] = (float)acc;
    }
}

struct scored { float s; int i; };

/* descending score, then ascending index: a stable argsort of -s */
static int by_score(const void *a, const void *b) {
    const struct scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return x->i - y->i;
}

static int by_index(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int pr_retained_count(const float *s, int n, float threshold, int min_num_filters, int granularity) {
    int k = 0;
    for (int i = 0; i < n; i++) k += s[i] > threshold;
    return pr_round_count(k, n, min_num_filters, granularity);
}

int pr_round_count(int k, int n, int min_num_filters, int granularity) {
    int lo = min_num_filters < n ? min_num_filters : n;
    if (k < lo) k = lo;
    if (granularity > 1) k = (k + granularity - 1) / granularity * granularity;
    return k > n ? n : k;
}

int pr_top_k(const float *s, int n, int k, int *idx) {
    struct scored *sc = malloc((size_t)(n ? n : 1) * sizeof *sc);
    if (!sc) return -1;
    for (int i = 0; i < n; i++) sc[i] = (struct scored){s[i], i};
    qsort(sc, (size_t)n, sizeof *sc, by_score);
    for (int i = 0; i < k; i++) idx[i] = sc[i].i;
    free(sc);
    qsort(idx, (size_t)k, sizeof *idx, by_index);
    return k;
}

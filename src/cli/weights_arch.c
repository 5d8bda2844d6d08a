/* weights_arch.c - which deft architecture a file of named tensors fits:
 * the classifier size it implies, and a guess of the architecture itself
 * (for `deft model info` on a bare .pth/.safetensors). */
#include <string.h>
#include "deft/deft.h"
#include "deft/io.h"
#include "deft/models.h"
#include "cli/cli.h"

/* The classifier size the file implies for arch: build the graph at 1 and 2
 * classes (shapes only, no data), find a param whose shape follows the class
 * count and read that dimension from the file's tensor of the same name.
 * 0 when the file has no such tensor. */
int cli_infer_num_classes(const char *arch, const struct deft_safetensors *st) {
    struct deft_graph *g1 = NULL, *g2 = NULL;
    int n = 0;
    if (deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 1}, &g1, NULL, NULL) ||
        deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 2}, &g2, NULL, NULL))
        goto done;
    for (int v = 0; v < deft_graph_num_values(g1) && !n; v++) {
        const struct deft_value *a = deft_graph_value(g1, v);
        if (a->kind != DEFT_VALUE_PARAM) continue;
        int w = deft_graph_find_value(g2, a->name);
        if (w < 0) continue;
        const struct deft_value *b = deft_graph_value(g2, w);
        if (b->shape.ndim != a->shape.ndim || deft_shape_equal(&a->shape, &b->shape)) continue;
        const struct deft_tensor *t = deft_safetensors_find(st, a->name);
        if (!t || t->shape.ndim != a->shape.ndim) continue;
        for (int k = 0; k < a->shape.ndim; k++)
            if (a->shape.d[k] != b->shape.d[k] && t->shape.d[k] >= 1 && t->shape.d[k] <= 1000000) {
                n = (int)t->shape.d[k];
                break;
            }
    }
done:
    deft_graph_free(g1);
    deft_graph_free(g2);
    deft_clear_error();
    return n;
}

/* How many of arch's PARAM/STATE values st has by name with the same shape
 * (*matched), by name only (*named), out of *total. */
static void match_arch(const char *arch, int num_classes, const struct deft_safetensors *st,
                       int *matched, int *named, int *total) {
    struct deft_graph *g = NULL;
    *matched = *named = *total = 0;
    if (deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = num_classes}, &g,
                         NULL, NULL)) {
        deft_clear_error();
        deft_graph_free(g);
        return;
    }
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *a = deft_graph_value(g, v);
        if (a->kind != DEFT_VALUE_PARAM && a->kind != DEFT_VALUE_STATE) continue;
        (*total)++;
        const struct deft_tensor *t = deft_safetensors_find(st, a->name);
        if (!t) continue;
        (*named)++;
        if (deft_shape_equal(&t->shape, &a->shape)) (*matched)++;
    }
    deft_graph_free(g);
}

const char *cli_guess_arch(const struct deft_safetensors *st, int *num_classes, int *matched,
                           int *total) {
    const char *best = NULL;
    int best_m = 0, best_t = 0, best_nc = 0;
    for (const char *const *a = deft_model_arch_names(); *a; a++) {
        int nc = cli_infer_num_classes(*a, st);
        int m, nm, t;
        match_arch(*a, nc ? nc : 1000, st, &m, &nm, &t);
        /* the architecture explaining most of the file; ties go to the smaller graph */
        if (t && m == nm && (m > best_m || (m == best_m && m && t < best_t))) {
            best = *a;
            best_m = m;
            best_t = t;
            best_nc = nc ? nc : 1000;
        }
    }
    *num_classes = best_nc;
    *matched = best_m;
    *total = best_t;
    return best_m ? best : NULL;
}

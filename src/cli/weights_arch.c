/* weights_arch.c - which deft architecture a file of named tensors fits
 * (for `deft model info` on a bare .pth/.safetensors). */
#include <string.h>
#include "deft/deft.h"
#include "deft/io.h"
#include "deft/models.h"
#include "cli/cli.h"

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
        int nc = deft_weights_num_classes(*a, st);
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

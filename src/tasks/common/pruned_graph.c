/* pruned_graph.c - the graph of a pruned model file, to retrain it as it is. */
#include "tasks/common/pruned_graph.h"
#include "deft/io.h"
#include "deft/models.h"

enum deft_status det_pruned_graph(const char *path, const char *spec_path, const char *field, FILE *out,
                                  struct deft_graph **g) {
    struct deft_model *m = NULL;
    enum deft_status s = deft_model_load(path, &m);
    if (s) return deft_wrap_error(s, "%s: %s", spec_path, field);
    s = deft_graph_clone(m->graph, g);
    deft_model_free(m);
    if (!s) fprintf(out, "training the graph of %s (%s: a pruned model)\n", path, field);
    return s;
}

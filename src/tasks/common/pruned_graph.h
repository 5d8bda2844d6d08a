/* pruned_graph.h (internal) - the graph of a pruned model to retrain: the
 * spec's arch cannot rebuild it (its channel counts are the pruner's), so
 * the file's own graph is trained (TAO's pruned_model_path, load_graph,
 * retrain_pruned_model). */
#ifndef DEFT_TASKS_COMMON_PRUNED_GRAPH_H
#define DEFT_TASKS_COMMON_PRUNED_GRAPH_H
#include <stdio.h>
#include "deft/graph.h"

/* A copy of path's graph in *g; `field` (e.g. "training_config.pruned_model_path")
 * and spec_path name the setting in errors; says so on out. */
enum deft_status det_pruned_graph(const char *path, const char *spec_path, const char *field, FILE *out,
                                  struct deft_graph **g);
#endif

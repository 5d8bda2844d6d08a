/* graph_impl.h (internal) - the graph's storage and the per-op shape rules. */
#ifndef DEFT_GRAPH_IMPL_H
#define DEFT_GRAPH_IMPL_H

#include "deft/graph.h"

struct deft_meta_entry { char *key, *json; };

struct deft_graph {
    struct deft_value *values;
    int n_values, cap_values;
    struct deft_node *nodes;
    int n_nodes, cap_nodes;
    struct deft_meta_entry *meta;
    int n_meta;
    enum deft_status status; /* sticky builder error */
};

/* Infer output shapes of node n from its inputs and attrs (op_table.c). */
enum deft_status deft_op_infer(struct deft_graph *g, int n);
/* Number of outputs node op produces given its attrs and inputs. */
int deft_op_num_outputs(enum deft_op op, const struct deft_attr *a, int n_in);
/* Record a builder failure once (sticky). Returns -1 for convenient `return`. */
int deft_graph_fail(struct deft_graph *g, enum deft_status s);

#endif

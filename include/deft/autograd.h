/* deft/autograd.h - generate the backward graph from the forward graph.
 *
 * deft_autograd(g, loss, &opts) appends to g, in reverse order of the forward
 * nodes, the backward nodes (CONV2D_BWD_DATA, BATCHNORM_BWD, ...) that compute
 * d(loss)/d(p) for every trainable (non-frozen) PARAM p. It creates:
 *   - an INPUT value "loss_grad" [1] holding d(total)/d(loss) (set it to 1, or
 *     1/k when accumulating k micro-batches);
 *   - for every trainable param p, a value named "<p>.grad" with grad_of = p.
 * Gradients of a value used several times are summed with ADD nodes. Inputs
 * of the graph get no gradient unless opts.input_grads is set (tests use it).
 * Subgraphs that cannot reach a trainable param get no backward nodes
 * (e.g. no data gradient for the first convolution).
 *
 * Seeds (a loss computed outside the graph, on the host): for each value in
 * opts.seeds an INPUT value "<name>.seed" of the same shape is created and
 * fed as d(total)/d(value); loss may then be -1 (no loss node, no
 * "loss_grad"). Run the forward nodes, compute the loss and its gradient with
 * respect to the seeded values, write the seeds, run the backward nodes
 * (they start at the node count the graph had before deft_autograd).
 */
#ifndef DEFT_AUTOGRAD_H
#define DEFT_AUTOGRAD_H

#include "deft/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct deft_autograd_opts {
    bool input_grads;   /* also produce "<input>.grad" for INPUT values (float inputs only) */
    const int *seeds;   /* values whose gradient comes from an INPUT "<name>.seed" */
    int n_seeds;
};

DEFT_API DEFT_NODISCARD enum deft_status deft_autograd(struct deft_graph *g, int loss,
                                                      const struct deft_autograd_opts *o);
/* Index of the gradient value of v after deft_autograd, or -1. */
DEFT_API int deft_grad_of(const struct deft_graph *g, int v);

#ifdef __cplusplus
}
#endif
#endif

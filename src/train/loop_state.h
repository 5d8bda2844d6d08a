/* loop_state.h (internal to train/) - what the training loop must carry
 * across an interruption besides the weights: the best score and its epoch,
 * every finished epoch's figures, the elapsed time and the running sums of
 * an epoch stopped half way. Stored as JSON in latest (and epoch)
 * checkpoints' "run_state" metadata, so a resumed run selects the same best
 * model and reports every epoch as an uninterrupted run does. */
#ifndef DEFT_LOOP_STATE_H
#define DEFT_LOOP_STATE_H

#include <stdbool.h>
#include "deft/core.h"

#define LOOP_STATE_MAX_PARTIAL 64

struct loop_state {
    double best;          /* NaN: none yet */
    int best_epoch;       /* 1-based; 0: none */
    double time;          /* seconds of training before the checkpoint */
    int skipped;          /* non-finite batches skipped so far */
    int epochs_done;      /* rows in hist */
    int width;            /* numbers per row */
    double *hist;         /* epochs_done x width, NaN where not computed (owned by the caller) */
    int n_partial;        /* running sums of the unfinished epoch */
    double partial[LOOP_STATE_MAX_PARTIAL];
};

/* JSON text (deft_free it), or NULL when out of memory. */
char *loop_state_to_json(const struct loop_state *s);
/* Parse into s; s->hist (width x max_epochs) is the caller's buffer and
 * s->width must be set. DEFT_ERR_FORMAT when the text is not a state of
 * this width or holds more than max_epochs rows. */
enum deft_status loop_state_from_json(const char *json, int max_epochs, struct loop_state *s);

#endif

/* progress.h (internal) - a progress line for long work: a redrawn bar on a
 * terminal, plain periodic lines when the output is a file or pipe. */
#ifndef DEFT_PROGRESS_H
#define DEFT_PROGRESS_H

#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

struct progress {
    FILE *f;
    bool tty;
    double t0, last;
    int64_t total;        /* units of work in the whole run (for the ETA) */
    int64_t done_at_start;
};

void progress_init(struct progress *p, FILE *f, int64_t total, int64_t done_at_start);
/* Draw: label (e.g. "epoch 3/15"), done/total units, a free-form tail
 * ("loss 0.63 lr 0.01 15.2 img/s"). Plain mode prints at most every 10 s
 * unless force is set. */
void progress_update(struct progress *p, const char *label, int64_t done, const char *tail, bool force);
/* Finish the current terminal line. */
void progress_end(struct progress *p);

#endif

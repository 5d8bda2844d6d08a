/* dist_internal.h - what the gradient buckets tell dist.c. */
#ifndef DEFT_DIST_INTERNAL_H
#define DEFT_DIST_INTERNAL_H
/* The main thread waited s seconds for reductions (deft_dist_exposed_seconds). */
void deft_dist_note_exposed(double s);
#endif

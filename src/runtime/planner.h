/* planner.h (internal) - assigns arena offsets to buffers by liveness. */
#ifndef DEFT_PLANNER_H
#define DEFT_PLANNER_H

#include <stddef.h>
#include "deft/core.h"

struct deft_plan_item {
    size_t bytes;
    int first, last;   /* live over steps [first, last] inclusive */
    size_t offset;     /* result */
};

/* Best-fit placement: items whose live ranges overlap never overlap in
 * memory. Items are allocated at step `first` before items whose `last` is
 * that step are released, so a step's outputs never alias its inputs.
 * Sets each offset and *arena_bytes; alignment 64 bytes. no_reuse gives every
 * item its own range. */
enum deft_status deft_plan_memory(struct deft_plan_item *items, int n, int n_steps, bool no_reuse,
                                  size_t *arena_bytes);

#endif

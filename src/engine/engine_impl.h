/* engine_impl.h - engine module internals (not installed). */
#ifndef DEFT_ENGINE_IMPL_H
#define DEFT_ENGINE_IMPL_H

#include "deft/engine.h"

/* The value a user means by "the output" (the logits role, else the first
 * OUTPUT-flagged value, else the last node's) and "the input" (the image
 * role, else the first INPUT value); -1 when none. */
int deft_engine_pick_output(const struct deft_graph *g);
int deft_engine_pick_input(const struct deft_graph *g);

/* The name the engine was loaded under (messages). */
const char *deft_engine_path(const struct deft_engine *e);

#endif

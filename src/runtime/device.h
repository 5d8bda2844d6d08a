/* device.h (internal) - what the optimizer and tools need to know about where
 * a runtime's buffers live: memory from the runtime's backend (device-reachable
 * on a GPU), the backend itself, and a sync before the host touches buffers. */
#ifndef DEFT_RUNTIME_DEVICE_H
#define DEFT_RUNTIME_DEVICE_H

#include "deft/runtime.h"
#include "backend/backend.h"

void *deft_runtime_device_alloc(struct deft_runtime *rt, size_t bytes);
void deft_runtime_device_free(struct deft_runtime *rt, void *mem);
const struct deft_backend_vtable *deft_runtime_backend(const struct deft_runtime *rt);
struct deft_program *deft_runtime_program(const struct deft_runtime *rt);
enum deft_status deft_runtime_sync(struct deft_runtime *rt);

#endif

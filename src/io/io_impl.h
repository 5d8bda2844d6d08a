/* io_impl.h - io module internals shared by npy.c, safetensors.c and
 * model_file.c (not installed). */
#ifndef DEFT_IO_IMPL_H
#define DEFT_IO_IMPL_H

#include "deft/io.h"

/* Copy t's elements in C order into dst (numel * dtype size bytes), honouring
 * strides; a contiguous tensor is one memcpy. */
void deft_io_gather(const struct deft_tensor *t, void *dst);
/* Bytes of a host tensor as it will be written: numel * dtype size, with
 * overflow and sanity checks. `what` names the file/tensor in the message. */
enum deft_status deft_io_tensor_bytes(const struct deft_tensor *t, const char *what,
                                      size_t *nbytes);
/* Checked numel of a shape read from a file: every dim >= 0 and the byte
 * size (numel * elem) fits in int64. Returns false on overflow. */
bool deft_io_shape_bytes(const struct deft_shape *s, size_t elem, uint64_t *nbytes);
/* Tensor lists the readers build (deft_safetensors_free frees them): an empty
 * list with the metadata entry source_format = format; add takes ownership of
 * t (freed on failure) and copies name. */
enum deft_status deft_io_tensor_list_new(const char *format, struct deft_safetensors **out);
enum deft_status deft_io_tensor_list_add(struct deft_safetensors *st, const char *name,
                                         struct deft_tensor *t);
/* DEFT_ERR_FORMAT naming the first tensor name that occurs twice in st
 * ("<file>: two tensors are named 'x'<note>"). */
enum deft_status deft_io_check_unique_names(const struct deft_safetensors *st, const char *file,
                                            const char *note);
float deft_io_f16_to_f32(uint16_t h);
float deft_io_bf16_to_f32(uint16_t h);
/* The graph's meta map as one JSON object text (deft_free it); graph_json.c. */
enum deft_status deft_graph_meta_to_json(const struct deft_graph *g, char **json);

/* Run fn(ctx) in a child process with a time and memory limit and return its
 * tensors (sandbox.c): for readers built on libraries that trust their input
 * (libhdf5). input_bytes (the file's size) scales the limits; name is used in
 * messages. */
typedef enum deft_status (*deft_io_reader_fn)(void *ctx, struct deft_safetensors **out);
enum deft_status deft_io_sandboxed(const char *name, size_t input_bytes, deft_io_reader_fn fn, void *ctx,
                                   struct deft_safetensors **out);

#endif

/* fuzz_keras_h5.c - libFuzzer target: the Keras HDF5 weight loader on
 * arbitrary bytes, as deft runs it: libhdf5 and deft's walk over
 * layer_names / weight_names in a child process with a time and memory limit
 * (src/io/sandbox.c), the tensors streamed back and parsed here. A status,
 * never a crash, a hang or a leak in this process. libFuzzer sees the
 * coverage of this process only (the stream parser, the error paths); what
 * happens inside the child is contained by design, not explored. */
#include <stdlib.h>
#include "deft/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_safetensors *w = NULL;
    enum deft_status s = deft_keras_h5_parse(data, size, "fuzz.h5", &w);
    if ((s == DEFT_OK) != (w != NULL)) abort();
    if (w && w->n_tensors <= 0) abort();
    deft_safetensors_free(w);
    if (deft_alloc_live() != live) abort();
    return 0;
}

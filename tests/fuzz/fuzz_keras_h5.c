/* fuzz_keras_h5.c - libFuzzer target: the Keras HDF5 weight loader (deft's
 * walk over layer_names / weight_names, string attributes, dataset reads and
 * layout conversion) on arbitrary bytes through libhdf5's in-memory driver:
 * a status, never a crash or a leak of deft's allocations. The HDF5 library
 * underneath is Debian's; a crash inside it is reported like any other. */
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

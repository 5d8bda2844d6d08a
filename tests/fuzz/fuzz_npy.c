/* fuzz_npy.c - libFuzzer target: the .npy parser (with f32 conversion) on
 * arbitrary bytes must return a status, never crash, and leak nothing. */
#include <stdlib.h>
#include "deft/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_tensor *t = NULL;
    if (deft_npy_parse(data, size, "fuzz", DEFT_NPY_TO_F32, &t) == DEFT_OK && !t) abort();
    deft_tensor_free(t);
    if (deft_alloc_live() != live) abort();
    return 0;
}

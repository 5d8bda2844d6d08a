/* fuzz_pth.c - libFuzzer target: the PyTorch checkpoint reader (ZIP reader,
 * restricted unpickler, legacy format, tensor rebuild) on arbitrary bytes must
 * return a status, never crash or allocate absurdly, and leak nothing.
 * Seed it with small torch.save files (zip and legacy; e.g. those that
 * tests/formats/test_pth.c writes). Build like the other targets: clang
 * -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude
 * -Isrc, the .c files of src/core, src/graph and src/io except model_file.c,
 * this file, -lcjson -lm -fopenmp; add -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
 * (skips ZIP CRC checks) so mutations of a zip seed reach the unpickler. */
#include <stdlib.h>
#include <string.h>
#include "deft/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_pth_parse(data, size, "fuzz", &st);
    if ((s == DEFT_OK) != (st != NULL)) abort();
    if (st) {
        /* every tensor is a complete host tensor */
        for (int i = 0; i < st->n_tensors; i++) {
            const struct deft_tensor *t = st->tensors[i].tensor;
            if (!st->tensors[i].name || !t || !deft_tensor_is_contiguous(t)) abort();
            volatile unsigned char sink = 0;
            size_t n = deft_tensor_nbytes(t);
            if (n) sink ^= ((const unsigned char *)t->data)[n - 1];
            (void)sink;
        }
        (void)deft_safetensors_find(st, "fc.weight");
    }
    deft_safetensors_free(st);
    if (deft_alloc_live() != live) abort();
    return 0;
}

/* fuzz_safetensors.c - libFuzzer target: the safetensors parser on arbitrary
 * bytes must return a status (never crash) and free everything it allocated.
 * Build (all three targets alike): clang -std=c11 -D_GNU_SOURCE -O1 -g
 * -fsanitize=fuzzer,address,undefined -Iinclude -Isrc, the .c files of src/core,
 * src/graph and src/io except model_file.c (it needs the runtime), this file,
 * -lcjson -lm -fopenmp. */
#include <stdlib.h>
#include "deft/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_safetensors *st = NULL;
    if (deft_safetensors_parse(data, size, "fuzz", &st) == DEFT_OK)
        (void)deft_safetensors_find(st, "a");
    deft_safetensors_free(st);
    if (deft_alloc_live() != live) abort();
    return 0;
}

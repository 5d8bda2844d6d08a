/* fuzz_onnx.c - libFuzzer target: the ONNX importer (protobuf-c decode,
 * tensors, the graph converter for every op) on arbitrary bytes must return a
 * status, never crash, and leak nothing. Seeds: tests/fuzz/corpus/onnx (small
 * models written by tests/fuzz/make_onnx_seeds.py). Build and run with
 * scripts/fuzz.sh onnx SECONDS. */
#include <stdlib.h>
#include "deft/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_graph *g = NULL;
    struct deft_safetensors *w = NULL;
    enum deft_status s = deft_onnx_parse(data, size, "fuzz", &g, &w);
    if ((s == DEFT_OK) != (g != NULL && w != NULL)) abort();
    if (g && deft_graph_validate(g)) abort();
    deft_graph_free(g);
    deft_safetensors_free(w);
    s = deft_onnx_weights_parse(data, size, "fuzz", &w);
    if ((s == DEFT_OK) != (w != NULL)) abort();
    deft_safetensors_free(w);
    if (deft_alloc_live() != live) abort(); /* everything freed on every path */
    return 0;
}

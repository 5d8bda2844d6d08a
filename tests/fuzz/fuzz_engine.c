/* fuzz_engine.c - libFuzzer target: the engine file reader (deft_engine_parse:
 * safetensors, the graph, the weights against it, the "engine" entry against
 * the graph) on arbitrary bytes returns a status, never crashes, and frees
 * everything it allocated; an engine it accepts reports sizes that agree with
 * its graph. Seeds: tests/fuzz/make_engine_seeds.sh. */
#include <stdlib.h>
#include "deft/engine.h"
#include "deft/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_engine *e = NULL;
    if (deft_engine_parse(data, size, "fuzz", &e) == DEFT_OK) {
        struct deft_engine_info in;
        deft_engine_get_info(e, &in);
        int iv = deft_graph_find_value(in.graph, in.input_name);
        if (iv < 0 || in.batch < 1 || in.input_shape.d[0] != in.batch ||
            in.input_numel != (size_t)deft_shape_numel(&deft_graph_value(in.graph, iv)->shape))
            abort();
    }
    deft_engine_free(e);
    deft_clear_error();
    if (deft_alloc_live() != live) abort();
    return 0;
}

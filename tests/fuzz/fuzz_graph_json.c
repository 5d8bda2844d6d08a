/* fuzz_graph_json.c - libFuzzer target: deft_graph_from_json on arbitrary
 * text; accepted graphs must validate and serialize again. */
#include <stdlib.h>
#include "deft/deft.h"
#include "deft/io.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_graph *g = NULL;
    if (deft_graph_from_json((const char *)data, size, &g) == DEFT_OK) {
        char *j = NULL;
        if (deft_graph_validate(g) != DEFT_OK || deft_graph_to_json(g, &j) != DEFT_OK) abort();
        deft_free(j);
    }
    deft_graph_free(g);
    if (deft_alloc_live() != live) abort();
    return 0;
}

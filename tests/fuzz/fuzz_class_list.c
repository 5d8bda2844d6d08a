/* fuzz_class_list.c - libFuzzer target: the classes.txt reader on arbitrary
 * bytes: a status, never a crash or a leak; on success every name is
 * non-empty, trimmed, unique and free of newlines. */
#include <stdlib.h>
#include <string.h>
#include "deft/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    char **names = NULL;
    int n = 0;
    if (deft_class_list_parse((const char *)data, size, "fuzz.txt", &names, &n) == DEFT_OK) {
        if (n <= 0 || n > DEFT_MAX_CLASSES || !names) abort();
        for (int i = 0; i < n; i++) {
            size_t l = strlen(names[i]);
            if (!l || strchr(names[i], '\n') || names[i][0] == ' ' || names[i][l - 1] == ' ') abort();
            for (int j = 0; j < i && n < 200; j++)
                if (!strcmp(names[i], names[j])) abort();
        }
        deft_string_list_free(names, n);
    } else if (names || n) {
        abort();
    }
    if (deft_alloc_live() != live) abort();
    return 0;
}

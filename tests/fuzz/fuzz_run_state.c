/* fuzz_run_state.c - libFuzzer target: the training loop's resume state
 * (the "run_state" JSON a checkpoint carries, read by --resume) on arbitrary
 * bytes must return a status, never write past the history buffer, never
 * crash and leak nothing. */
#include <stdlib.h>
#include <string.h>
#include "deft/core.h"
#include "train/loop_state.h"

#define WIDTH 7
#define MAX_EPOCHS 16

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    double *hist = malloc(sizeof(double) * WIDTH * MAX_EPOCHS); /* exact size: ASan sees an overrun */
    struct loop_state st = {.width = WIDTH, .hist = hist};
    enum deft_status s = loop_state_from_json(text, MAX_EPOCHS, &st);
    if (s == DEFT_OK && (st.epochs_done < 0 || st.epochs_done > MAX_EPOCHS || st.n_partial < 0 ||
                         st.n_partial > LOOP_STATE_MAX_PARTIAL))
        abort();
    if (s == DEFT_OK) { /* what parses writes back and parses to the same state */
        char *again = loop_state_to_json(&st);
        struct loop_state st2 = {.width = WIDTH, .hist = malloc(sizeof(double) * WIDTH * MAX_EPOCHS)};
        if (!again || loop_state_from_json(again, MAX_EPOCHS, &st2) || st2.epochs_done != st.epochs_done ||
            st2.n_partial != st.n_partial || st2.best_epoch != st.best_epoch)
            abort();
        free(st2.hist);
        deft_free(again);
    }
    free(hist);
    free(text);
    deft_clear_error();
    if (deft_alloc_live() != live) abort();
    return 0;
}

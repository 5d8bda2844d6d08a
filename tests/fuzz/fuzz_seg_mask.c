/* fuzz_seg_mask.c - libFuzzer target: a segmentation mask's bytes through
 * decode and the label map (deft_seg_mask_decode). The first byte picks the
 * map: binary ids 0/1 (ISBI's 0/255 masks), or ids 0..11 with 11 ignored
 * (CamVid). Arbitrary bytes must give a status, never crash, and leak nothing;
 * every class of a decoded mask is in range or the ignore id. */
#include <stdlib.h>
#include "deft/data.h"
#include "deft/seg_data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size < 1) return 0;
    long live = deft_alloc_live();
    struct deft_seg_label_map m;
    deft_seg_label_map_init(&m);
    int classes = data[0] & 1 ? 2 : 11;
    for (int i = 0; i < classes; i++) m.class_of[i] = (int16_t)i;
    if (classes == 11) m.class_of[11] = DEFT_SEG_IGNORE;
    m.n_classes = classes;
    m.binary = classes == 2;
    struct deft_decode_opts o = {.max_w = 4096, .max_h = 4096, .max_pixels = 4 << 20};
    int32_t *out = NULL;
    int w = 0, h = 0;
    enum deft_status s = deft_seg_mask_decode(data + 1, size - 1, "fuzz", &o, &m, &out, &w, &h);
    if (s != DEFT_OK && out) abort();
    if (s == DEFT_OK) {
        if (!out || w <= 0 || h <= 0) abort();
        for (long i = 0; i < (long)w * h; i++)
            if (out[i] != DEFT_SEG_IGNORE && (out[i] < 0 || out[i] >= classes)) abort();
        deft_free(out);
    }
    if (deft_alloc_live() != live) abort();
    return 0;
}

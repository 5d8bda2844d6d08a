/* fuzz_image.c - libFuzzer target: image probe + decode (JPEG/PNG/BMP, with
 * and without a DCT-scaling hint) and a resample of what decodes. Arbitrary
 * bytes must give a status, never crash, and leak nothing. Build like the
 * other targets, with src/data/image.c and -ljpeg -lpng. Limits are lowered
 * so that valid-but-huge headers do not exhaust the fuzzer's memory. */
#include <stdlib.h>
#include "deft/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    long live = deft_alloc_live();
    struct deft_decode_opts o = {0};
    o.max_w = o.max_h = 4096;
    o.max_pixels = 4 << 20;
    enum deft_image_format f;
    int w = 0, h = 0;
    if (deft_image_probe(data, size, &f, &w, &h) == DEFT_OK && (w <= 0 || h <= 0)) abort();
    struct deft_image im;
    for (int pass = 0; pass < 2; pass++) {
        o.min_w = pass ? 16 : 0;
        o.min_h = pass ? 16 : 0;
        if (deft_image_decode(data, size, &o, &im) != DEFT_OK) {
            if (im.rgb || im.w || im.h) abort();
            continue;
        }
        if (!im.rgb || im.w <= 0 || im.h <= 0 || im.w > 4096 || im.h > 4096) abort();
        float out[3 * 8 * 8];
        struct deft_resample r = {0.5f, 0.5f, (float)im.w * 0.75f, (float)im.h * 0.75f, pass == 1};
        if (deft_image_resample_chw(&im, &r, 8, 8, out) != DEFT_OK) abort();
        deft_image_free(&im);
    }
    if (deft_alloc_live() != live) abort();
    return 0;
}

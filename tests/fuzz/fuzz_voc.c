/* fuzz_voc.c - libFuzzer target: the VOC reader (deft_det_parse) on
 * arbitrary bytes, strict and lenient, raw and with TAO's rules; see
 * fuzz_det_common.h for what is checked. */
#include "fuzz_det_common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    return fuzz_det(DEFT_DET_VOC, data, size);
}

/* calib_cache.c - TensorRT's INT8 calibration cache, the text file TAO calls
 * cal.bin (formats.md §2.1, tao.md §6.2): a header naming the TensorRT
 * version and calibrator, then one "<tensor>: <hex scale bits>" line per
 * activation tensor. TensorRT computes weight scales itself. */
#include <stdio.h>
#include <string.h>
#include "deft/io.h"
#include "deft/quant.h"

enum deft_status deft_calib_cache_write(const char *path, int trt_version, const char *algorithm,
                                        const struct deft_calib_entry *e, int n) {
    size_t cap = 64, len = 0;
    for (int i = 0; i < n; i++) cap += strlen(e[i].name) + 16;
    char *buf = deft_malloc(cap);
    if (!buf) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(buf, cap, "TRT-%d-%s\n", trt_version, algorithm);
    for (int i = 0; i < n; i++) {
        if (strchr(e[i].name, '\n')) {
            deft_free(buf);
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: tensor name with a newline", path);
        }
        uint32_t bits;
        memcpy(&bits, &e[i].scale, 4);
        len += (size_t)snprintf(buf + len, cap - len, "%s: %x\n", e[i].name, bits);
    }
    enum deft_status s = deft_file_write_atomic(path, buf, len);
    deft_free(buf);
    return s;
}

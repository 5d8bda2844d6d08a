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

/* One "<name>: <hex>" line; false when it is not one. The name is everything
 * before the last ": " (tensor names may hold colons). */
static bool parse_line(char *line, char **name, float *scale) {
    char *sep = NULL;
    for (char *q = strstr(line, ": "); q; q = strstr(q + 1, ": ")) sep = q;
    if (!sep || sep == line) return false;
    *sep = 0;
    const char *h = sep + 2;
    size_t nh = strspn(h, "0123456789abcdefABCDEF");
    if (nh == 0 || nh > 8 || (h[nh] && h[nh] != '\r')) return false;
    uint32_t bits = 0;
    for (size_t i = 0; i < nh; i++) {
        char c = h[i];
        bits = bits << 4 | (uint32_t)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
    }
    memcpy(scale, &bits, 4);
    *name = line;
    return true;
}

enum deft_status deft_calib_cache_read(const char *path, struct deft_calib_entry **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    void *buf;
    size_t len;
    enum deft_status s = deft_file_read(path, 64u << 20, &buf, &len);
    if (s) return s;
    char *t = deft_realloc(buf, len + 1);
    if (!t) {
        deft_free(buf);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    t[len] = 0;
    int cap = 1;
    for (size_t i = 0; i < len; i++) cap += t[i] == '\n';
    struct deft_calib_entry *e = deft_calloc((size_t)cap, sizeof *e);
    if (!e) {
        deft_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    int n = 0, lineno = 0;
    for (char *line = t, *next; line && !s; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (!*line || (lineno == 1 && !strncmp(line, "TRT-", 4))) continue;
        if (lineno == 1) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: not a TensorRT calibration cache (no 'TRT-' header)", path);
        } else if (!parse_line(line, (char **)&e[n].name, &e[n].scale)) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s:%d: expected '<tensor>: <hex scale>'", path, lineno);
        } else if (!(e[n].name = deft_strdup(e[n].name))) {
            s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        } else {
            n++;
        }
    }
    deft_free(t);
    if (s) {
        deft_calib_cache_free(e, n);
        return s;
    }
    *out = e;
    *n_out = n;
    return DEFT_OK;
}

void deft_calib_cache_free(struct deft_calib_entry *e, int n) {
    for (int i = 0; e && i < n; i++) deft_free((char *)e[i].name);
    deft_free(e);
}

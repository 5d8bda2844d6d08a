/* report_impl.h - report module internals: a growable text buffer and the
 * append-only line writer shared by metrics.c and plot.c. */
#ifndef DEFT_REPORT_IMPL_H
#define DEFT_REPORT_IMPL_H

#include "deft/core.h"

/* Growable byte buffer; `failed` is sticky after an allocation failure, so
 * callers append freely and check once. Always NUL-terminated when !failed. */
struct rp_sbuf {
    char *p;
    size_t n, cap;
    bool failed;
};
void rp_sb_put(struct rp_sbuf *b, const void *d, size_t n);
void rp_sb_str(struct rp_sbuf *b, const char *s);
void rp_sb_printf(struct rp_sbuf *b, const char *fmt, ...) DEFT_PRINTF(2, 3);
void rp_sb_free(struct rp_sbuf *b);
/* JSON string literal (with quotes). */
void rp_sb_json_str(struct rp_sbuf *b, const char *s);
/* XML text/attribute escaping. */
void rp_sb_xml(struct rp_sbuf *b, const char *s);

/* Append `n` bytes to path (created 0644 if missing) with O_APPEND: one
 * write() and an fsync. When the file is non-empty and does not end in '\n'
 * (a line torn by a crash), a '\n' is written first. When `header` is given,
 * it is written first if the file is empty; if the file is not empty its first
 * line must equal header (without '\n') or DEFT_ERR_INVALID_ARG is returned. */
/* RGB8 pixels (w*h*3, rows top down) encoded as PNG, appended to out. */
enum deft_status rp_encode_png(int w, int h, const unsigned char *px, struct rp_sbuf *out, const char *path);

enum deft_status rp_append_line(const char *path, const char *header, const char *line, size_t n);

#endif

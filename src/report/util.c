/* util.c - report module: text buffer and the append-only line writer. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report_impl.h"

static void sb_reserve(struct rp_sbuf *b, size_t extra) {
    if (b->failed) return;
    if (extra >= SIZE_MAX / 4 - b->n) {
        b->failed = true;
        return;
    }
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *np = deft_realloc(b->p, cap);
    if (!np) {
        b->failed = true;
        return;
    }
    b->p = np;
    b->cap = cap;
}

void rp_sb_put(struct rp_sbuf *b, const void *d, size_t n) {
    sb_reserve(b, n);
    if (b->failed) return;
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

void rp_sb_str(struct rp_sbuf *b, const char *s) { rp_sb_put(b, s, strlen(s)); }

void rp_sb_printf(struct rp_sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)k < sizeof tmp) {
        rp_sb_put(b, tmp, (size_t)k);
        return;
    }
    sb_reserve(b, (size_t)k);
    if (b->failed) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void rp_sb_free(struct rp_sbuf *b) {
    deft_free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

void rp_sb_json_str(struct rp_sbuf *b, const char *s) {
    rp_sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c == '"') rp_sb_put(b, "\\\"", 2);
        else if (c == '\\') rp_sb_put(b, "\\\\", 2);
        else if (c == '\n') rp_sb_put(b, "\\n", 2);
        else if (c == '\t') rp_sb_put(b, "\\t", 2);
        else if (c == '\r') rp_sb_put(b, "\\r", 2);
        else if (c < 0x20 || c == 0x7F) rp_sb_printf(b, "\\u%04x", c);
        else rp_sb_put(b, p, 1);
    }
    rp_sb_put(b, "\"", 1);
}

void rp_sb_xml(struct rp_sbuf *b, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '<': rp_sb_str(b, "&lt;"); break;
        case '>': rp_sb_str(b, "&gt;"); break;
        case '&': rp_sb_str(b, "&amp;"); break;
        case '"': rp_sb_str(b, "&quot;"); break;
        case '\'': rp_sb_str(b, "&apos;"); break;
        default:
            /* Control characters are not allowed in XML 1.0: drop them. */
            if (*p >= 0x20 || *p == '\t' || *p == '\n') rp_sb_put(b, p, 1);
            else rp_sb_put(b, "?", 1);
        }
    }
}

static enum deft_status io_err(const char *what, const char *path) {
    int e = errno;
    return deft_set_error(DEFT_ERR_IO, "cannot %s %s: %s", what, path,
                          e == ENOSPC ? "disk full" : strerror(e));
}

static bool pread_all(int fd, void *buf, size_t n, off_t off) {
    char *p = buf;
    while (n) {
        ssize_t k = pread(fd, p, n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return true;
}

enum deft_status rp_append_line(const char *path, const char *header, const char *line, size_t n) {
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return io_err("open", path);
    enum deft_status s = DEFT_OK;
    struct rp_sbuf out = {0};
    /* One writer per results directory is the rule; the lock makes two
     * processes at least not interleave lines. */
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {}
    struct stat st;
    if (fstat(fd, &st) != 0) {
        s = io_err("stat", path);
        goto done;
    }
    off_t size = st.st_size;
    if (size > 0 && header) {
        size_t hl = strlen(header);
        char *first = deft_malloc(hl + 2);
        if (!first) {
            s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        size_t want = (size_t)size < hl + 1 ? (size_t)size : hl + 1;
        if (!pread_all(fd, first, want, 0)) {
            deft_free(first);
            s = io_err("read", path);
            goto done;
        }
        bool match = want == hl + 1 && memcmp(first, header, hl) == 0 &&
                     (first[hl] == '\n' || first[hl] == '\r');
        /* The header itself torn by a crash: a strict prefix and nothing else. */
        bool torn_header = (size_t)size <= hl && memcmp(first, header, (size_t)size) == 0;
        deft_free(first);
        if (torn_header) {
            if (ftruncate(fd, 0) != 0) {
                s = io_err("truncate", path);
                goto done;
            }
            size = 0;
        } else if (!match) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG,
                               "%s: existing header differs from \"%s\" (metric names changed?)",
                               path, header);
            goto done;
        }
    }
    if (size > 0) {
        char last;
        if (!pread_all(fd, &last, 1, size - 1)) {
            s = io_err("read", path);
            goto done;
        }
        if (last != '\n') rp_sb_put(&out, "\n", 1); /* isolate a torn last line */
    } else if (header) {
        rp_sb_str(&out, header);
        rp_sb_put(&out, "\n", 1);
    }
    rp_sb_put(&out, line, n);
    if (out.failed) {
        s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    const char *p = out.p;
    size_t left = out.n;
    while (left) {
        ssize_t k = write(fd, p, left);
        if (k < 0) {
            if (errno == EINTR) continue;
            s = io_err("append to", path);
            goto done;
        }
        p += k;
        left -= (size_t)k;
    }
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) s = io_err("fsync", path);
done:
    rp_sb_free(&out);
    if (close(fd) != 0 && !s) s = io_err("close", path);
    return s;
}

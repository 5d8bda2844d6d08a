/* events.c - report module: TensorBoard event files (formats.md §4).
 *
 * A file is a sequence of TFRecord records (uint64 length, masked CRC-32C of
 * the 8 length bytes, data, masked CRC-32C of the data), each holding one
 * hand-encoded `tensorboard.Event` protobuf. The first one carries
 * file_version "brain.Event:2". Records are queued in memory and appended to
 * the file (one write() per flush, then fsync), so a crash leaves at most a
 * torn last record, which TensorBoard tolerates.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deft/io.h"
#include "deft/report.h"

/* ---- CRC-32C ------------------------------------------------------------ */

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc_init(void) {
    /* Benign race: every thread computes the same table. */
    if (__atomic_load_n(&crc_table_ready, __ATOMIC_ACQUIRE)) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
    __atomic_store_n(&crc_table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t deft_crc32c_update(uint32_t crc, const void *data, size_t n) {
    crc_init();
    const unsigned char *p = data;
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t deft_crc32c(const void *data, size_t n) { return deft_crc32c_update(0, data, n); }

uint32_t deft_crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u; }

/* ---- growable byte buffer ----------------------------------------------- */

struct buf {
    unsigned char *p;
    size_t n, cap;
    bool failed;
};

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->failed) return;
    if (extra > SIZE_MAX / 2 - b->n) {
        b->failed = true;
        return;
    }
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    unsigned char *np = deft_realloc(b->p, cap);
    if (!np) {
        b->failed = true;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void buf_put(struct buf *b, const void *d, size_t n) {
    buf_reserve(b, n);
    if (b->failed) return;
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void pb_varint(struct buf *b, uint64_t v) {
    unsigned char t[10];
    int k = 0;
    do {
        unsigned char c = v & 0x7F;
        v >>= 7;
        t[k++] = (unsigned char)(c | (v ? 0x80 : 0));
    } while (v);
    buf_put(b, t, (size_t)k);
}

static void pb_key(struct buf *b, unsigned field, unsigned wt) { pb_varint(b, (uint64_t)field << 3 | wt); }

static void pb_bytes(struct buf *b, unsigned field, const void *d, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    buf_put(b, d, n);
}

static void pb_double(struct buf *b, unsigned field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    unsigned char t[8];
    for (int i = 0; i < 8; i++) t[i] = (unsigned char)(u >> (8 * i));
    pb_key(b, field, 1);
    buf_put(b, t, 8);
}

static void pb_float(struct buf *b, unsigned field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    unsigned char t[4];
    for (int i = 0; i < 4; i++) t[i] = (unsigned char)(u >> (8 * i));
    pb_key(b, field, 5);
    buf_put(b, t, 4);
}

static void put_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Frame one serialized Event as a TFRecord record. */
static void tfrecord(struct buf *out, const struct buf *data) {
    unsigned char hdr[12];
    uint64_t len = data->n;
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)(len >> (8 * i));
    put_le32(hdr + 8, deft_crc32c_mask(deft_crc32c(hdr, 8)));
    buf_put(out, hdr, 12);
    buf_put(out, data->p, data->n);
    unsigned char t[4];
    put_le32(t, deft_crc32c_mask(deft_crc32c(data->p, data->n)));
    buf_put(out, t, 4);
}

/* ---- writer ------------------------------------------------------------- */

struct deft_events {
    int fd;
    char *path;
    struct buf pending;
};

static double wall_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static enum deft_status write_all(int fd, const unsigned char *p, size_t n, const char *path) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return deft_set_error(DEFT_ERR_IO, "%s: write failed: %s", path,
                                  errno == ENOSPC ? "disk full" : strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    return DEFT_OK;
}

const char *deft_events_path(const struct deft_events *w) { return w ? w->path : NULL; }

enum deft_status deft_events_flush(struct deft_events *w) {
    if (!w) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_events_flush: NULL writer");
    if (w->pending.failed) {
        w->pending.failed = false;
        w->pending.n = 0;
        return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory queueing events", w->path);
    }
    if (w->pending.n) {
        enum deft_status s = write_all(w->fd, w->pending.p, w->pending.n, w->path);
        w->pending.n = 0;
        if (s) return s;
    }
    if (fsync(w->fd) != 0 && errno != EINVAL && errno != EROFS)
        return deft_set_error(DEFT_ERR_IO, "%s: fsync failed: %s", w->path, strerror(errno));
    return DEFT_OK;
}

/* Queue an Event built by the caller (fields after wall_time/step). */
static enum deft_status queue_event(struct deft_events *w, const struct buf *event) {
    if (event->failed) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory encoding event", w->path);
    tfrecord(&w->pending, event);
    if (w->pending.failed) {
        w->pending.failed = false;
        w->pending.n = 0;
        return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory queueing events", w->path);
    }
    if (w->pending.n >= 65536) {
        enum deft_status s = write_all(w->fd, w->pending.p, w->pending.n, w->path);
        w->pending.n = 0;
        return s;
    }
    return DEFT_OK;
}

static void sanitize_host(char *h) {
    for (char *p = h; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) *p = '_';
    }
}

enum deft_status deft_events_open(const char *dir, struct deft_events **out) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_events_open: NULL out");
    *out = NULL;
    if (!dir || !*dir) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_events_open: empty directory");
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0]) memcpy(host, "localhost", 10);
    host[sizeof host - 1] = 0;
    sanitize_host(host);
    long long now = (long long)time(NULL);

    struct deft_events *w = deft_calloc(1, sizeof *w);
    if (!w) return deft_set_error(DEFT_ERR_NOMEM, "deft_events_open: out of memory");
    w->fd = -1;
    size_t cap = strlen(dir) + strlen(host) + 64;
    w->path = deft_malloc(cap);
    if (!w->path) {
        deft_free(w);
        return deft_set_error(DEFT_ERR_NOMEM, "deft_events_open: out of memory");
    }
    for (int attempt = 0; attempt < 1000; attempt++) {
        if (attempt == 0)
            snprintf(w->path, cap, "%s/events.out.tfevents.%010lld.%s", dir, now, host);
        else
            snprintf(w->path, cap, "%s/events.out.tfevents.%010lld.%s.%d", dir, now, host, attempt);
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (w->fd >= 0 || errno != EEXIST) break;
    }
    if (w->fd < 0) {
        enum deft_status s = deft_set_error(DEFT_ERR_IO, "cannot create %s: %s", w->path, strerror(errno));
        deft_free(w->path);
        deft_free(w);
        return s;
    }
    struct buf ev = {0};
    pb_double(&ev, 1, wall_clock());
    pb_bytes(&ev, 3, "brain.Event:2", 13);
    enum deft_status s = queue_event(w, &ev);
    deft_free(ev.p);
    if (!s) s = deft_events_flush(w);
    if (s) {
        close(w->fd);
        unlink(w->path);
        deft_free(w->pending.p);
        deft_free(w->path);
        deft_free(w);
        return s;
    }
    *out = w;
    return DEFT_OK;
}

static void event_head(struct buf *ev, int64_t step) {
    pb_double(ev, 1, wall_clock());
    pb_key(ev, 2, 0);
    pb_varint(ev, (uint64_t)step); /* negative: sign-extended, 10 bytes */
}

enum deft_status deft_events_scalar(struct deft_events *w, const char *tag, int64_t step, float value) {
    if (!w || !tag) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_events_scalar: NULL argument");
    struct buf val = {0}, sum = {0}, ev = {0};
    pb_bytes(&val, 1, tag, strlen(tag));
    pb_float(&val, 2, value);
    if (!val.failed) pb_bytes(&sum, 1, val.p, val.n);
    else sum.failed = true;
    event_head(&ev, step);
    if (!sum.failed) pb_bytes(&ev, 5, sum.p, sum.n);
    else ev.failed = true;
    enum deft_status s = queue_event(w, &ev);
    deft_free(val.p);
    deft_free(sum.p);
    deft_free(ev.p);
    return s;
}

enum deft_status deft_events_image(struct deft_events *w, const char *tag, int64_t step,
                                   const void *png, size_t n, int height, int width, int channels) {
    if (!w || !tag || (!png && n))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_events_image: NULL argument");
    if (height <= 0 || width <= 0 || channels < 1 || channels > 4)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_events_image %s: bad size %dx%dx%d", tag,
                              height, width, channels);
    struct buf img = {0}, val = {0}, sum = {0}, ev = {0};
    pb_key(&img, 1, 0);
    pb_varint(&img, (uint64_t)height);
    pb_key(&img, 2, 0);
    pb_varint(&img, (uint64_t)width);
    pb_key(&img, 3, 0);
    pb_varint(&img, (uint64_t)channels);
    pb_bytes(&img, 4, png, n);
    pb_bytes(&val, 1, tag, strlen(tag));
    if (!img.failed) pb_bytes(&val, 4, img.p, img.n);
    else val.failed = true;
    if (!val.failed) pb_bytes(&sum, 1, val.p, val.n);
    else sum.failed = true;
    event_head(&ev, step);
    if (!sum.failed) pb_bytes(&ev, 5, sum.p, sum.n);
    else ev.failed = true;
    enum deft_status s = queue_event(w, &ev);
    deft_free(img.p);
    deft_free(val.p);
    deft_free(sum.p);
    deft_free(ev.p);
    return s;
}

enum deft_status deft_events_close(struct deft_events *w) {
    if (!w) return DEFT_OK;
    enum deft_status s = deft_events_flush(w);
    if (close(w->fd) != 0 && !s)
        s = deft_set_error(DEFT_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    deft_free(w->pending.p);
    deft_free(w->path);
    deft_free(w);
    return s;
}

/* ---- reader ------------------------------------------------------------- */

struct pb {
    const unsigned char *p, *end;
};

static bool rd_varint(struct pb *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return false;
        unsigned char c = *r->p++;
        if (shift == 63 && (c & 0x7E)) return false;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Read one field: key, and for wt 2 the payload span; skips other types' values into *v. */
static bool rd_field(struct pb *r, unsigned *field, unsigned *wt, uint64_t *v, struct pb *sub) {
    uint64_t key;
    if (!rd_varint(r, &key)) return false;
    *field = (unsigned)(key >> 3);
    *wt = (unsigned)(key & 7);
    if (*field == 0) return false;
    switch (*wt) {
    case 0:
        return rd_varint(r, v);
    case 1:
    case 5: {
        size_t k = *wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < k) return false;
        uint64_t x = 0;
        for (size_t i = 0; i < k; i++) x |= (uint64_t)r->p[i] << (8 * i);
        r->p += k;
        *v = x;
        return true;
    }
    case 2: {
        uint64_t n;
        if (!rd_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return false;
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
        return true;
    }
    default:
        return false; /* groups (3, 4) are not used by event.proto */
    }
}

struct scalar_list {
    struct deft_events_data *d;
    int cap;
};

static char *dup_span(struct pb s) {
    size_t n = (size_t)(s.end - s.p);
    char *t = deft_malloc(n + 1);
    if (!t) return NULL;
    memcpy(t, s.p, n);
    t[n] = 0;
    return t;
}

/* Parse one Summary; returns DEFT_ERR_FORMAT / NOMEM with a message. */
static enum deft_status parse_summary(struct pb r, struct scalar_list *L, double wall, int64_t step,
                                      const char *name, int rec) {
    while (r.p < r.end) {
        unsigned f, wt;
        uint64_t v;
        struct pb sub;
        if (!rd_field(&r, &f, &wt, &v, &sub))
            return deft_set_error(DEFT_ERR_FORMAT, "%s: record %d: malformed Summary", name, rec);
        if (f != 1 || wt != 2) continue;
        struct pb tag = {0};
        bool have_tag = false, have_simple = false, have_image = false;
        float simple = 0;
        while (sub.p < sub.end) {
            unsigned f2, wt2;
            uint64_t v2;
            struct pb s2;
            if (!rd_field(&sub, &f2, &wt2, &v2, &s2))
                return deft_set_error(DEFT_ERR_FORMAT, "%s: record %d: malformed Summary.Value", name, rec);
            if (f2 == 1 && wt2 == 2) {
                tag = s2;
                have_tag = true;
            } else if (f2 == 2 && wt2 == 5) {
                uint32_t u = (uint32_t)v2;
                memcpy(&simple, &u, 4);
                have_simple = true;
            } else if (f2 == 4 && wt2 == 2) {
                have_image = true;
            }
        }
        if (have_image) L->d->n_images++;
        if (!have_simple) continue;
        struct deft_events_data *d = L->d;
        if (d->n_scalars == L->cap) {
            int nc = L->cap ? L->cap * 2 : 64;
            struct deft_event_scalar *ns = deft_realloc(d->scalars, (size_t)nc * sizeof *ns);
            if (!ns) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
            d->scalars = ns;
            L->cap = nc;
        }
        struct deft_event_scalar *sc = &d->scalars[d->n_scalars];
        sc->tag = have_tag ? dup_span(tag) : deft_strdup("");
        if (!sc->tag) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
        sc->step = step;
        sc->wall_time = wall;
        sc->value = simple;
        d->n_scalars++;
    }
    return DEFT_OK;
}

static enum deft_status parse_event(struct pb r, struct scalar_list *L, const char *name, int rec) {
    double wall = 0;
    int64_t step = 0;
    struct pb summaries[8];
    int n_sum = 0;
    while (r.p < r.end) {
        unsigned f, wt;
        uint64_t v;
        struct pb sub;
        if (!rd_field(&r, &f, &wt, &v, &sub))
            return deft_set_error(DEFT_ERR_FORMAT, "%s: record %d: malformed Event", name, rec);
        if (f == 1 && wt == 1) {
            memcpy(&wall, &v, 8);
        } else if (f == 2 && wt == 0) {
            step = (int64_t)v;
        } else if (f == 3 && wt == 2) {
            if (!L->d->file_version) {
                L->d->file_version = dup_span(sub);
                if (!L->d->file_version) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
            }
        } else if (f == 5 && wt == 2) {
            /* A repeated singular message field merges; keep each part. */
            if (n_sum == 8)
                return deft_set_error(DEFT_ERR_FORMAT, "%s: record %d: too many summary parts", name, rec);
            summaries[n_sum++] = sub;
        }
    }
    for (int i = 0; i < n_sum; i++) {
        enum deft_status s = parse_summary(summaries[i], L, wall, step, name, rec);
        if (s) return s;
    }
    return DEFT_OK;
}

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void deft_events_data_free(struct deft_events_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n_scalars; i++) deft_free(d->scalars[i].tag);
    deft_free(d->scalars);
    deft_free(d->file_version);
    deft_free(d);
}

enum deft_status deft_events_parse(const void *buf, size_t len, const char *name,
                                   struct deft_events_data **out) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_events_parse: NULL out");
    *out = NULL;
    if (!name) name = "<events>";
    if (!buf && len) return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: NULL buffer", name);
    struct deft_events_data *d = deft_calloc(1, sizeof *d);
    if (!d) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
    struct scalar_list L = {d, 0};
    const unsigned char *p = buf;
    size_t off = 0;
    enum deft_status s = DEFT_OK;
    while (off < len) {
        if (len - off < 12) {
            d->truncated = true;
            break;
        }
        uint64_t n = 0;
        for (int i = 0; i < 8; i++) n |= (uint64_t)p[off + i] << (8 * i);
        if (get_le32(p + off + 8) != deft_crc32c_mask(deft_crc32c(p + off, 8))) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: record %d at offset %zu: length CRC mismatch",
                               name, d->n_records, off);
            break;
        }
        if (n > len - off - 12 || len - off - 12 - n < 4) {
            d->truncated = true;
            break;
        }
        const unsigned char *data = p + off + 12;
        if (get_le32(data + n) != deft_crc32c_mask(deft_crc32c(data, (size_t)n))) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: record %d at offset %zu: data CRC mismatch",
                               name, d->n_records, off);
            break;
        }
        s = parse_event((struct pb){data, data + n}, &L, name, d->n_records);
        if (s) break;
        d->n_records++;
        off += 12 + (size_t)n + 4;
    }
    if (s) {
        deft_events_data_free(d);
        return s;
    }
    *out = d;
    return DEFT_OK;
}

enum deft_status deft_events_read(const char *path, struct deft_events_data **out) {
    if (out) *out = NULL;
    void *data = NULL;
    size_t len = 0;
    enum deft_status s = deft_file_read(path, (size_t)1 << 32, &data, &len);
    if (s) return s;
    s = deft_events_parse(data, len, path, out);
    deft_free(data);
    return s;
}

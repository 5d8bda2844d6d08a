/* zip_reader.c - io module: a minimal, strict ZIP reader for torch.save
 * archives (PKWARE APPNOTE 6.3: end of central directory, zip64 records,
 * central directory, local headers).
 *
 * Works on an in-memory image: every offset and size read from the file is
 * checked against the buffer before use. Entry data is located through the
 * *local* header (its extra field differs from the central one: torch pads
 * it to align data to 64 bytes). Only stored (method 0) entries can be read;
 * others are listed but refused with a clear message on read. CRC-32 is
 * verified on read.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pth_impl.h"

#define ZIP_MAX_ENTRIES 1000000
#define ZIP_MAX_NAME 4096

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* CRC-32 slice-by-8: crc_table[k][b] is the CRC of byte b followed by k zero
 * bytes, so eight input bytes fold in with eight lookups (several times the
 * bytewise loop's speed: a VGG-16 checkpoint is 550 MB). */
static uint32_t crc_table[8][256];
static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
}

uint32_t deft_crc32(uint32_t crc, const unsigned char *p, size_t n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        const uint32_t lo = crc ^ rd32(p), hi = rd32(p + 4);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
              crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
    }
    for (; n; n--, p++) crc = crc_table[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    return ~crc;
}

void deft_zip_free(struct deft_zip *z) {
    if (!z) return;
    for (int i = 0; i < z->n; i++) deft_free(z->e[i].name);
    deft_free(z->e);
    deft_free(z->sorted);
    deft_free(z);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp((*(struct deft_zip_entry *const *)a)->name,
                  (*(struct deft_zip_entry *const *)b)->name);
}

static enum deft_status bad(const char *what, const char *msg) {
    return deft_set_error(DEFT_ERR_FORMAT, "%s: corrupt ZIP archive: %s", what, msg);
}

/* Is [off, off+n) inside a buffer of len bytes? */
static bool in_buf(uint64_t off, uint64_t n, size_t len) { return off <= len && n <= len - off; }

enum deft_status deft_zip_open(const unsigned char *buf, size_t len, const char *what,
                               struct deft_zip **out) {
    *out = NULL;
    if (len < 22) return bad(what, "too short for an end-of-central-directory record");
    /* EOCD: scan back over at most a 64 KiB comment */
    size_t eocd = (size_t)-1;
    size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lo;) {
        if (rd32(buf + p) == 0x06054b50 && p + 22 + rd16(buf + p + 20) == len) {
            eocd = p;
            break;
        }
    }
    if (eocd == (size_t)-1) return bad(what, "no end-of-central-directory record (truncated?)");
    const unsigned char *e = buf + eocd;
    if (rd16(e + 4) != 0 || (rd16(e + 6) != 0 && rd16(e + 6) != 0xffff))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: multi-disk ZIP archives are not supported",
                              what);
    uint64_t n_ent = rd16(e + 10), cd_size = rd32(e + 12), cd_off = rd32(e + 16);
    if (n_ent == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        /* zip64: locator just before the EOCD */
        if (eocd < 20 || rd32(buf + eocd - 20) != 0x07064b50)
            return bad(what, "zip64 sizes without a zip64 locator");
        uint64_t z64 = rd64(buf + eocd - 20 + 8);
        if (!in_buf(z64, 56, eocd - 20) || rd32(buf + z64) != 0x06064b50)
            return bad(what, "bad zip64 end-of-central-directory offset");
        n_ent = rd64(buf + z64 + 32);
        cd_size = rd64(buf + z64 + 40);
        cd_off = rd64(buf + z64 + 48);
    }
    if (!in_buf(cd_off, cd_size, len)) return bad(what, "central directory lies outside the file");
    if (n_ent > ZIP_MAX_ENTRIES || n_ent * 46 > cd_size)
        return bad(what, "entry count does not fit the central directory");

    struct deft_zip *z = deft_calloc(1, sizeof *z);
    if (!z) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", what);
    if (n_ent) {
        z->e = deft_calloc((size_t)n_ent, sizeof *z->e);
        if (!z->e) {
            deft_free(z);
            return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", what);
        }
    }
    enum deft_status s = DEFT_OK;
    uint64_t p = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < n_ent; i++) {
        if (!in_buf(p, 46, end) || rd32(buf + p) != 0x02014b50) {
            s = bad(what, "bad central directory entry");
            goto fail;
        }
        const unsigned char *c = buf + p;
        unsigned flags = rd16(c + 8), method = rd16(c + 10);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), lho = rd32(c + 42);
        unsigned nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        if (!in_buf(p + 46, (uint64_t)nlen + xlen + clen, end)) {
            s = bad(what, "central directory entry runs past its end");
            goto fail;
        }
        if (nlen == 0 || nlen > ZIP_MAX_NAME || memchr(c + 46, 0, nlen)) {
            s = bad(what, "bad entry name");
            goto fail;
        }
        /* zip64 extended information: the fields that are 0xffffffff, in order */
        const unsigned char *x = c + 46 + nlen, *xe = x + xlen;
        while (xe - x >= 4) {
            unsigned id = rd16(x), sz = rd16(x + 2);
            if ((size_t)(xe - x - 4) < sz) break;
            if (id == 1) {
                const unsigned char *q = x + 4, *qe = q + sz;
                if (usize == 0xffffffffu) { if (qe - q < 8) break; usize = rd64(q); q += 8; }
                if (csize == 0xffffffffu) { if (qe - q < 8) break; csize = rd64(q); q += 8; }
                if (lho == 0xffffffffu) { if (qe - q < 8) break; lho = rd64(q); q += 8; }
            }
            x += 4 + sz;
        }
        if (flags & 1) {
            s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: encrypted ZIP entries are not supported",
                               what);
            goto fail;
        }
        /* local header */
        if (!in_buf(lho, 30, len) || rd32(buf + lho) != 0x04034b50) {
            s = bad(what, "bad local header offset");
            goto fail;
        }
        uint64_t data = lho + 30 + (uint64_t)rd16(buf + lho + 26) + rd16(buf + lho + 28);
        if (rd16(buf + lho + 26) != nlen || !in_buf(lho + 30, nlen, len) ||
            memcmp(buf + lho + 30, c + 46, nlen) != 0) {
            s = bad(what, "local header name differs from the central directory");
            goto fail;
        }
        if (!in_buf(data, csize, len) || data + csize > cd_off) {
            s = bad(what, "entry data lies outside the file (truncated?)");
            goto fail;
        }
        if (method == 0 && csize != usize) {
            s = bad(what, "stored entry with different compressed and uncompressed sizes");
            goto fail;
        }
        struct deft_zip_entry *ze = &z->e[z->n];
        ze->name = deft_malloc(nlen + 1);
        if (!ze->name) {
            s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", what);
            goto fail;
        }
        memcpy(ze->name, c + 46, nlen);
        ze->name[nlen] = 0;
        ze->method = method;
        ze->crc = rd32(c + 16);
        ze->size = usize;
        ze->csize = csize;
        ze->data = buf + data;
        z->n++;
        p += 46 + (uint64_t)nlen + xlen + clen;
    }
    z->sorted = deft_malloc((z->n ? (size_t)z->n : 1) * sizeof *z->sorted);
    if (!z->sorted) {
        s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", what);
        goto fail;
    }
    for (int i = 0; i < z->n; i++) z->sorted[i] = &z->e[i];
    qsort(z->sorted, (size_t)z->n, sizeof *z->sorted, cmp_entry);
    for (int i = 1; i < z->n; i++)
        if (!strcmp(z->sorted[i - 1]->name, z->sorted[i]->name)) {
            s = bad(what, "two entries have the same name");
            goto fail;
        }
    *out = z;
    return DEFT_OK;
fail:
    deft_zip_free(z);
    return s;
}

struct deft_zip_entry *deft_zip_find(const struct deft_zip *z, const char *name) {
    struct deft_zip_entry k = {.name = (char *)name}, *kp = &k;
    struct deft_zip_entry **f = z->n ? bsearch(&kp, z->sorted, (size_t)z->n, sizeof kp, cmp_entry)
                                     : NULL;
    return f ? *f : NULL;
}

enum deft_status deft_zip_data(struct deft_zip_entry *e, const char *what,
                               const unsigned char **data, size_t *len) {
    if (e->method != 0)
        return deft_set_error(DEFT_ERR_UNSUPPORTED,
                              "%s: ZIP entry '%s' is compressed (method %u); deft reads only "
                              "stored entries as torch.save writes them (re-save the file with "
                              "torch.save, or unzip and re-zip it with `zip -0`)",
                              what, e->name, e->method);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* fuzzers: let mutations reach the pickle */
    if (!e->crc_ok && deft_crc32(0, e->data, (size_t)e->size) != e->crc)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: ZIP entry '%s' fails its CRC-32 check "
                              "(the file is corrupt)", what, e->name);
#endif
    e->crc_ok = true;
    *data = e->data;
    *len = (size_t)e->size;
    return DEFT_OK;
}

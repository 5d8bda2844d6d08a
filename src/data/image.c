/* image.c - JPEG (libjpeg-turbo, DCT scaling), PNG (libpng) and BMP decode
 * into RGB8, with limits checked before allocation; bilinear/antialiased
 * resampling into float CHW.
 *
 * Both libraries report fatal errors by calling a handler that must not
 * return: we longjmp back into the decode function, free what we allocated
 * and turn the library's message into a deft error. Anything touched after
 * setjmp and read after the longjmp is volatile. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include "deft/data.h"

const char *deft_image_format_name(enum deft_image_format f) {
    switch (f) {
    case DEFT_IMAGE_JPEG: return "jpeg";
    case DEFT_IMAGE_PNG: return "png";
    case DEFT_IMAGE_BMP: return "bmp";
    default: return "unknown";
    }
}

enum deft_image_format deft_image_detect(const uint8_t *d, size_t n) {
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return DEFT_IMAGE_JPEG;
    if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8)) return DEFT_IMAGE_PNG;
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') return DEFT_IMAGE_BMP;
    return DEFT_IMAGE_UNKNOWN;
}

void deft_image_free(struct deft_image *img) {
    if (!img) return;
    deft_free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

struct limits {
    int max_w, max_h;
    int64_t max_pixels;
};

/* The defaults, or what DEFT_MAX_IMAGE_SIDE / DEFT_MAX_IMAGE_PIXELS say (for
 * users with legitimately huge images: aerial tiles, whole-slide scans). */
static int64_t env_limit(const char *name, int64_t def, int64_t cap) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long long x = strtoll(v, &end, 10);
    return *end || x <= 0 ? def : x > cap ? cap : x;
}

static struct limits get_limits(const struct deft_decode_opts *o) {
    int side = (int)env_limit("DEFT_MAX_IMAGE_SIDE", DEFT_IMAGE_MAX_SIDE, 1 << 20);
    struct limits l = {side, side, env_limit("DEFT_MAX_IMAGE_PIXELS", DEFT_IMAGE_MAX_PIXELS, (int64_t)1 << 40)};
    if (o && o->max_w > 0) l.max_w = o->max_w;
    if (o && o->max_h > 0) l.max_h = o->max_h;
    if (o && o->max_pixels > 0) l.max_pixels = o->max_pixels;
    return l;
}

static enum deft_status check_dims(const char *fmt, int64_t w, int64_t h, const struct limits *l) {
    if (w <= 0 || h <= 0) return deft_set_error(DEFT_ERR_FORMAT, "%s: invalid size %lldx%lld", fmt, (long long)w, (long long)h);
    if (w > l->max_w || h > l->max_h || w * h > l->max_pixels)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "%s: declared size %lldx%lld exceeds the limit (%dx%d, %lld pixels; "
                              "DEFT_MAX_IMAGE_SIDE / DEFT_MAX_IMAGE_PIXELS raise it)",
                              fmt, (long long)w, (long long)h, l->max_w, l->max_h,
                              (long long)l->max_pixels);
    return DEFT_OK;
}

/* ---- JPEG ---------------------------------------------------------------- */

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int eof_warning;
};

static void jpeg_error_exit_cb(j_common_ptr c) {
    struct jerr *e = (struct jerr *)c->err;
    longjmp(e->jb, 1);
}

static void jpeg_emit_message_cb(j_common_ptr c, int level) {
    struct jerr *e = (struct jerr *)c->err;
    if (level < 0) {
        /* A premature end of data is a truncated file: an error for us
         * (libjpeg would pad with gray and carry on). */
        if (e->pub.msg_code == JWRN_JPEG_EOF) e->eof_warning = 1;
        e->pub.num_warnings++;
    }
}

/* Progressive files can hold thousands of tiny scans (a CPU bomb). */
struct jprogress {
    struct jpeg_progress_mgr pub;
    struct jerr *err;
};
static void jpeg_progress_cb(j_common_ptr c) {
    if (c->is_decompressor) {
        j_decompress_ptr d = (j_decompress_ptr)c;
        if (d->input_scan_number > 1000) {
            ((struct jerr *)c->err)->eof_warning = 2;
            longjmp(((struct jerr *)c->err)->jb, 1);
        }
    }
}

static enum deft_status jpeg_fail(struct jerr *e, j_decompress_ptr d) {
    char msg[JMSG_LENGTH_MAX];
    if (e->eof_warning == 2)
        snprintf(msg, sizeof msg, "too many progressive scans");
    else
        e->pub.format_message((j_common_ptr)d, msg);
    return deft_set_error(DEFT_ERR_FORMAT, "jpeg: %s", msg);
}

static enum deft_status decode_jpeg(const uint8_t *data, size_t n, const struct deft_decode_opts *o,
                                    struct deft_image *out, bool header_only) {
    struct jpeg_decompress_struct d;
    struct jerr e;
    struct jprogress prog;
    uint8_t *volatile pix = NULL;
    uint8_t *volatile row = NULL;
    struct limits lim = get_limits(o);
    enum deft_status st = DEFT_OK;

    memset(&d, 0, sizeof d);
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_error_exit_cb;
    e.pub.emit_message = jpeg_emit_message_cb;
    e.eof_warning = 0;
    if (setjmp(e.jb)) {
        st = jpeg_fail(&e, &d);
        jpeg_destroy_decompress(&d);
        deft_free(pix);
        deft_free(row);
        return st;
    }
    jpeg_create_decompress(&d);
    prog.pub.progress_monitor = jpeg_progress_cb;
    prog.err = &e;
    d.progress = &prog.pub;
    /* Cap libjpeg's own working memory too (coefficient buffers of progressive files). */
    d.mem->max_memory_to_use = 1024L * 1024 * 1024;
    if (n > (size_t)0xFFFFFFFFu) {
        jpeg_destroy_decompress(&d);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "jpeg: file too large");
    }
    jpeg_mem_src(&d, (unsigned char *)data, (unsigned long)n);
    jpeg_read_header(&d, TRUE);
    if ((st = check_dims("jpeg", d.image_width, d.image_height, &lim)) != DEFT_OK) {
        jpeg_destroy_decompress(&d);
        return st;
    }
    if (header_only) {
        out->w = (int)d.image_width;
        out->h = (int)d.image_height;
        out->rgb = NULL;
        jpeg_destroy_decompress(&d);
        return DEFT_OK;
    }
    bool cmyk = d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK;
    if (d.num_components != 1 && d.num_components != 3 && !(cmyk && d.num_components == 4)) {
        jpeg_destroy_decompress(&d);
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "jpeg: %d color components", d.num_components);
    }
    d.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    d.dct_method = JDCT_ISLOW;
    /* DCT scaling: smallest n/8 giving at least min_w x min_h. */
    int min_w = o ? o->min_w : 0, min_h = o ? o->min_h : 0;
    d.scale_num = 8;
    d.scale_denom = 8;
    if (min_w > 0 || min_h > 0) {
        for (unsigned num = 1; num <= 8; num++) {
            d.scale_num = num;
            jpeg_calc_output_dimensions(&d);
            if ((int)d.output_width >= min_w && (int)d.output_height >= min_h) break;
        }
    }
    jpeg_start_decompress(&d);
    int w = (int)d.output_width, h = (int)d.output_height, oc = d.output_components;
    pix = deft_malloc((size_t)w * h * 3);
    if (oc == 4) row = deft_malloc((size_t)w * 4);
    if (!pix || (oc == 4 && !row)) {
        jpeg_destroy_decompress(&d);
        deft_free(pix);
        deft_free(row);
        return deft_set_error(DEFT_ERR_NOMEM, "jpeg: out of memory for %dx%d", w, h);
    }
    while (d.output_scanline < d.output_height) {
        int y = (int)d.output_scanline;
        JSAMPROW rp = oc == 4 ? (JSAMPROW)row : (JSAMPROW)(pix + (size_t)y * w * 3);
        if (jpeg_read_scanlines(&d, &rp, 1) != 1) break;
        if (oc == 4) {
            /* Adobe CMYK JPEGs store inverted values: R = C*K/255. */
            uint8_t *dst = pix + (size_t)y * w * 3;
            for (int x = 0; x < w; x++) {
                unsigned k = row[4 * x + 3];
                for (int c = 0; c < 3; c++) dst[3 * x + c] = (uint8_t)((row[4 * x + c] * k + 127) / 255);
            }
        }
        if (e.eof_warning) break;
    }
    if (e.eof_warning || d.output_scanline < d.output_height) {
        jpeg_destroy_decompress(&d);
        deft_free(pix);
        deft_free(row);
        return deft_set_error(DEFT_ERR_FORMAT, "jpeg: premature end of data (truncated file)");
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    deft_free(row);
    out->w = w;
    out->h = h;
    out->rgb = pix;
    return DEFT_OK;
}

/* ---- PNG ----------------------------------------------------------------- */

struct png_src {
    const uint8_t *data;
    size_t n, pos;
    char msg[256];
};

static void png_read_cb(png_structp p, png_bytep dst, png_size_t len) {
    struct png_src *s = png_get_io_ptr(p);
    if (len > s->n - s->pos) png_error(p, "unexpected end of data (truncated file)");
    memcpy(dst, s->data + s->pos, len);
    s->pos += len;
}

static void png_error_cb(png_structp p, png_const_charp msg) {
    struct png_src *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_warn_cb(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

static enum deft_status decode_png(const uint8_t *data, size_t n, const struct deft_decode_opts *o,
                                   struct deft_image *out, bool header_only) {
    struct png_src src = {data, n, 0, {0}};
    struct limits lim = get_limits(o);
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_error_cb, png_warn_cb);
    if (!p) return deft_set_error(DEFT_ERR_NOMEM, "png: out of memory");
    png_infop info = png_create_info_struct(p);
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return deft_set_error(DEFT_ERR_NOMEM, "png: out of memory");
    }
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;
    volatile enum deft_status limit_st = DEFT_OK;
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        deft_free(pix);
        deft_free(rows);
        if (limit_st != DEFT_OK) return limit_st;
        return deft_set_error(DEFT_ERR_FORMAT, "png: %s", src.msg[0] ? src.msg : "decode error");
    }
    png_set_read_fn(p, &src, png_read_cb);
    png_set_user_limits(p, 0x7fffffff, 0x7fffffff); /* our own check below, with a clear message */
    png_set_chunk_malloc_max(p, 64u * 1024 * 1024);
    png_read_info(p, info);
    png_uint_32 w32, h32;
    int depth, ctype, interlace;
    png_get_IHDR(p, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    enum deft_status st = check_dims("png", w32, h32, &lim);
    if (st != DEFT_OK) {
        png_destroy_read_struct(&p, &info, NULL);
        return st;
    }
    if (header_only) {
        out->w = (int)w32;
        out->h = (int)h32;
        out->rgb = NULL;
        png_destroy_read_struct(&p, &info, NULL);
        return DEFT_OK;
    }
    int w = (int)w32, h = (int)h32;
    if (depth == 16) png_set_strip_16(p);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(p);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(p);
    /* Alpha (including tRNS transparency) is dropped, like PIL's convert("RGB"). */
    png_set_strip_alpha(p);
    if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(p);
    png_read_update_info(p, info);
    if (png_get_rowbytes(p, info) != (size_t)w * 3 || png_get_channels(p, info) != 3) {
        src.msg[0] = 0;
        snprintf(src.msg, sizeof src.msg, "unexpected pixel layout after conversion");
        png_longjmp(p, 1);
    }
    pix = deft_malloc((size_t)w * h * 3);
    rows = deft_malloc(sizeof(png_bytep) * (size_t)h);
    if (!pix || !rows) {
        limit_st = deft_set_error(DEFT_ERR_NOMEM, "png: out of memory for %dx%d", w, h);
        png_longjmp(p, 1);
    }
    for (int y = 0; y < h; y++) rows[y] = pix + (size_t)y * w * 3;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    png_destroy_read_struct(&p, &info, NULL);
    deft_free(rows);
    out->w = w;
    out->h = h;
    out->rgb = pix;
    return DEFT_OK;
}

/* ---- BMP (uncompressed 8/24/32-bit) -------------------------------------- */

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static enum deft_status decode_bmp(const uint8_t *d, size_t n, const struct deft_decode_opts *o,
                                   struct deft_image *out, bool header_only) {
    struct limits lim = get_limits(o);
    if (n < 54) return deft_set_error(DEFT_ERR_FORMAT, "bmp: truncated header");
    uint32_t off = le32(d + 10), hsize = le32(d + 14);
    if (hsize < 40 || 14 + (size_t)hsize > n) return deft_set_error(DEFT_ERR_FORMAT, "bmp: unsupported header size %u", hsize);
    int64_t w = (int32_t)le32(d + 18), h = (int32_t)le32(d + 22);
    int bpp = le16(d + 28);
    uint32_t comp = le32(d + 30), ncolors = le32(d + 46);
    bool top_down = h < 0;
    if (top_down) h = -h;
    enum deft_status st = check_dims("bmp", w, h, &lim);
    if (st != DEFT_OK) return st;
    if (header_only) {
        out->w = (int)w;
        out->h = (int)h;
        out->rgb = NULL;
        return DEFT_OK;
    }
    if (!(comp == 0 || (comp == 3 && bpp == 32)) || (bpp != 8 && bpp != 24 && bpp != 32))
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "bmp: %d bits per pixel, compression %u", bpp, comp);
    const uint8_t *pal = d + 14 + hsize;
    if (bpp == 8) {
        if (ncolors == 0 || ncolors > 256) ncolors = 256;
        if ((size_t)(pal - d) + (size_t)ncolors * 4 > n) return deft_set_error(DEFT_ERR_FORMAT, "bmp: truncated palette");
    }
    size_t stride = ((size_t)w * bpp / 8 + 3) & ~(size_t)3;
    if (off > n || stride * (size_t)h > n - off) return deft_set_error(DEFT_ERR_FORMAT, "bmp: truncated pixel data");
    uint8_t *pix = deft_malloc((size_t)w * h * 3);
    if (!pix) return deft_set_error(DEFT_ERR_NOMEM, "bmp: out of memory");
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *s = d + off + stride * (size_t)(top_down ? y : h - 1 - y);
        uint8_t *t = pix + (size_t)y * w * 3;
        for (int64_t x = 0; x < w; x++) {
            const uint8_t *px;
            if (bpp == 8) {
                unsigned i = s[x];
                if (i >= ncolors) i = 0;
                px = pal + 4 * i;
            } else {
                px = s + x * (bpp / 8);
            }
            t[3 * x] = px[2];
            t[3 * x + 1] = px[1];
            t[3 * x + 2] = px[0];
        }
    }
    out->w = (int)w;
    out->h = (int)h;
    out->rgb = pix;
    return DEFT_OK;
}

/* ---- entry points -------------------------------------------------------- */

static enum deft_status decode_any(const uint8_t *data, size_t n, const struct deft_decode_opts *o,
                                   struct deft_image *out, bool header_only,
                                   enum deft_image_format *fmt_out) {
    out->w = out->h = 0;
    out->rgb = NULL;
    if (!data && n) return deft_set_error(DEFT_ERR_INVALID_ARG, "image: NULL data");
    enum deft_image_format f = deft_image_detect(data, n);
    if (fmt_out) *fmt_out = f;
    switch (f) {
    case DEFT_IMAGE_JPEG: return decode_jpeg(data, n, o, out, header_only);
    case DEFT_IMAGE_PNG: return decode_png(data, n, o, out, header_only);
    case DEFT_IMAGE_BMP: return decode_bmp(data, n, o, out, header_only);
    default:
        return deft_set_error(DEFT_ERR_FORMAT, "not a JPEG, PNG or BMP image (%zu bytes, unknown signature)", n);
    }
}

enum deft_status deft_image_decode(const uint8_t *data, size_t n, const struct deft_decode_opts *o,
                                   struct deft_image *out) {
    return decode_any(data, n, o, out, false, NULL);
}

enum deft_status deft_image_probe(const uint8_t *data, size_t n, enum deft_image_format *fmt,
                                  int *w, int *h) {
    struct deft_image im;
    enum deft_image_format f;
    enum deft_status st = decode_any(data, n, NULL, &im, true, &f);
    if (fmt) *fmt = f;
    if (w) *w = im.w;
    if (h) *h = im.h;
    return st;
}

enum deft_status deft_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *n) {
    *data = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return deft_set_error(DEFT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return deft_set_error(DEFT_ERR_IO, "cannot seek %s: %s", path, strerror(errno));
    }
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return deft_set_error(DEFT_ERR_IO, "cannot size %s: %s", path, strerror(errno));
    }
    if ((size_t)sz > max_bytes) {
        fclose(f);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: file too large (%ld bytes)", path, sz);
    }
    uint8_t *buf = deft_malloc((size_t)sz + 1);
    if (!buf) {
        fclose(f);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)sz) {
        deft_free(buf);
        return deft_set_error(DEFT_ERR_IO, "cannot read %s", path);
    }
    *data = buf;
    *n = got;
    return DEFT_OK;
}

enum deft_status deft_image_load(const char *path, const struct deft_decode_opts *o,
                                 struct deft_image *out) {
    uint8_t *data;
    size_t n;
    out->w = out->h = 0;
    out->rgb = NULL;
    enum deft_status st = deft_read_file(path, (size_t)512 << 20, &data, &n);
    if (st != DEFT_OK) return st;
    st = deft_image_decode(data, n, o, out);
    deft_free(data);
    if (st != DEFT_OK) return deft_wrap_error(st, "%s", path);
    return DEFT_OK;
}

/* ---- resampling ---------------------------------------------------------- */

/* Per output coordinate: first source index and ntap weights. */
struct taps {
    int *first, *count;
    float *w;
    int max_taps;
};

static void taps_free(struct taps *t) {
    deft_free(t->first);
    deft_free(t->count);
    deft_free(t->w);
}

static void tap_nearest(struct taps *t, int i, double center, int lo, int hi) {
    int c = (int)floor(center);
    t->first[i] = c < lo ? lo : c > hi ? hi : c;
    t->count[i] = 1;
    t->w[(size_t)i * t->max_taps] = 1.0f;
}

static void tap_bilinear(struct taps *t, int i, double center, int lo, int hi) {
    float *w = t->w + (size_t)i * t->max_taps;
    double s = center - 0.5;
    if (s < lo) s = lo;
    if (s > hi) s = hi;
    int a = (int)floor(s);
    double lam = s - a;
    t->first[i] = a;
    if (a + 1 <= hi) {
        t->count[i] = 2;
        w[0] = (float)(1.0 - lam);
        w[1] = (float)lam;
    } else {
        t->count[i] = 1;
        w[0] = 1.0f;
    }
}

/* Keys' cubic convolution kernel with a = -0.75 (PyTorch's and TF1's choice). */
static double keys_cubic(double x) {
    const double A = -0.75;
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

/* Four taps around the centre; taps beyond the edge fold onto the edge pixel (replicate). */
static void tap_bicubic(struct taps *t, int i, double center, int lo, int hi) {
    float *w = t->w + (size_t)i * t->max_taps;
    double s = center - 0.5;
    int a = (int)floor(s);
    int first = a - 1 < lo ? lo : a - 1 > hi ? hi : a - 1;
    int last = a + 2 > hi ? hi : a + 2 < lo ? lo : a + 2;
    for (int k = 0; k <= last - first; k++) w[k] = 0;
    for (int j = a - 1; j <= a + 2; j++) {
        int c = j < first ? first : j > last ? last : j;
        w[c - first] += (float)keys_cubic(s - j);
    }
    t->first[i] = first;
    t->count[i] = last - first + 1;
}

/* The source interval [center - scale/2, center + scale/2) averaged, pixels weighted by overlap. */
static void tap_area(struct taps *t, int i, double center, double scale, int lo, int hi) {
    float *w = t->w + (size_t)i * t->max_taps;
    double a = center - scale / 2, b = center + scale / 2;
    if (a < lo) a = lo;
    if (b > hi + 1) b = hi + 1;
    int first = (int)floor(a), cnt = 0;
    double sum = 0;
    for (int j = first; j < b && cnt < t->max_taps; j++) {
        double ov = fmin(b, j + 1.0) - fmax(a, (double)j);
        w[cnt++] = (float)(ov > 0 ? ov : 0);
        sum += ov > 0 ? ov : 0;
    }
    if (cnt == 0 || sum <= 0) {
        tap_nearest(t, i, center, lo, hi);
        return;
    }
    for (int k = 0; k < cnt; k++) w[k] = (float)(w[k] / sum);
    t->first[i] = first;
    t->count[i] = cnt;
}

/* Triangle filter of half-width `support` (PyTorch/PIL antialias). */
static void tap_triangle(struct taps *t, int i, double center, double support, int lo, int hi) {
    float *w = t->w + (size_t)i * t->max_taps;
    int a = (int)floor(center - support + 0.5);
    int b = (int)floor(center + support + 0.5);
    if (a < lo) a = lo;
    if (b > hi + 1) b = hi + 1;
    if (b - a > t->max_taps) b = a + t->max_taps;
    double sum = 0;
    int cnt = 0;
    for (int j = a; j < b; j++) {
        double v = 1.0 - fabs((j + 0.5 - center) / support);
        if (v < 0) v = 0;
        w[cnt++] = (float)v;
        sum += v;
    }
    if (cnt == 0 || sum <= 0) { /* degenerate box: nearest valid pixel */
        tap_nearest(t, i, center, lo, hi);
        return;
    }
    for (int k = 0; k < cnt; k++) w[k] = (float)(w[k] / sum);
    t->first[i] = a;
    t->count[i] = cnt;
}

/* x0, len: source box along this axis; lo..hi: valid source indices. */
static enum deft_status taps_make(struct taps *t, double x0, double len, int out, int lo, int hi,
                                  enum deft_resample_filter f) {
    double scale = len / out;
    bool aa = f == DEFT_RESAMPLE_AUTO && scale > 2.0;
    int mt = aa ? (int)ceil(scale) * 2 + 2
             : f == DEFT_RESAMPLE_BICUBIC ? 4
             : f == DEFT_RESAMPLE_AREA    ? (int)ceil(scale) + 2
                                          : 2;
    t->max_taps = mt;
    t->first = deft_malloc(sizeof(int) * out);
    t->count = deft_malloc(sizeof(int) * out);
    t->w = deft_malloc(sizeof(float) * (size_t)out * mt);
    if (!t->first || !t->count || !t->w) {
        taps_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "resize: out of memory");
    }
    for (int i = 0; i < out; i++) {
        double center = x0 + (i + 0.5) * scale;
        if (aa) tap_triangle(t, i, center, scale, lo, hi);
        else if (f == DEFT_RESAMPLE_NEAREST) tap_nearest(t, i, center, lo, hi);
        else if (f == DEFT_RESAMPLE_BICUBIC) tap_bicubic(t, i, center, lo, hi);
        else if (f == DEFT_RESAMPLE_AREA) tap_area(t, i, center, scale, lo, hi);
        else tap_bilinear(t, i, center, lo, hi);
    }
    return DEFT_OK;
}

enum deft_status deft_image_resample_chw(const struct deft_image *img, const struct deft_resample *r,
                                         int out_w, int out_h, float *out) {
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0 || out_w <= 0 || out_h <= 0 || !out)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "resize: bad arguments");
    if (!(r->w > 0) || !(r->h > 0) || !isfinite(r->x) || !isfinite(r->y))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "resize: empty source box");
    int W = img->w, H = img->h;
    int xlo = 0, xhi = W - 1, ylo = 0, yhi = H - 1;
    if (r->clamp_to_box) {
        xlo = (int)floor(r->x);
        xhi = (int)ceil(r->x + r->w) - 1;
        ylo = (int)floor(r->y);
        yhi = (int)ceil(r->y + r->h) - 1;
        if (xlo < 0) xlo = 0;
        if (ylo < 0) ylo = 0;
        if (xhi > W - 1) xhi = W - 1;
        if (yhi > H - 1) yhi = H - 1;
        if (xhi < xlo) xhi = xlo;
        if (yhi < ylo) yhi = ylo;
    }
    struct taps tx = {0}, ty = {0};
    enum deft_status st = taps_make(&tx, r->x, r->w, out_w, xlo, xhi, r->filter);
    if (st != DEFT_OK) return st;
    st = taps_make(&ty, r->y, r->h, out_h, ylo, yhi, r->filter);
    if (st != DEFT_OK) {
        taps_free(&tx);
        return st;
    }
    /* Horizontal pass over the rows the vertical taps need, then vertical. */
    int r0 = H, r1 = -1;
    for (int i = 0; i < out_h; i++) {
        if (ty.first[i] < r0) r0 = ty.first[i];
        if (ty.first[i] + ty.count[i] - 1 > r1) r1 = ty.first[i] + ty.count[i] - 1;
    }
    int nrows = r1 - r0 + 1;
    float *tmp = deft_malloc(sizeof(float) * (size_t)nrows * out_w * 3);
    if (!tmp) {
        taps_free(&tx);
        taps_free(&ty);
        return deft_set_error(DEFT_ERR_NOMEM, "resize: out of memory");
    }
    for (int y = 0; y < nrows; y++) {
        const uint8_t *src = img->rgb + (size_t)(y + r0) * W * 3;
        float *dst = tmp + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const float *w = tx.w + (size_t)x * tx.max_taps;
            const uint8_t *s = src + (size_t)tx.first[x] * 3;
            float a0 = 0, a1 = 0, a2 = 0;
            for (int k = 0; k < tx.count[x]; k++) {
                a0 += w[k] * s[3 * k];
                a1 += w[k] * s[3 * k + 1];
                a2 += w[k] * s[3 * k + 2];
            }
            dst[3 * x] = a0;
            dst[3 * x + 1] = a1;
            dst[3 * x + 2] = a2;
        }
    }
    size_t plane = (size_t)out_w * out_h;
    for (int y = 0; y < out_h; y++) {
        const float *w = ty.w + (size_t)y * ty.max_taps;
        int f = ty.first[y] - r0, cnt = ty.count[y];
        float *o0 = out + (size_t)y * out_w, *o1 = o0 + plane, *o2 = o1 + plane;
        for (int x = 0; x < out_w; x++) {
            float a0 = 0, a1 = 0, a2 = 0;
            for (int k = 0; k < cnt; k++) {
                const float *s = tmp + ((size_t)(f + k) * out_w + x) * 3;
                a0 += w[k] * s[0];
                a1 += w[k] * s[1];
                a2 += w[k] * s[2];
            }
            o0[x] = a0;
            o1[x] = a1;
            o2[x] = a2;
        }
    }
    deft_free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return DEFT_OK;
}

enum deft_status deft_image_resize_chw(const struct deft_image *img, int out_w, int out_h, float *out) {
    if (!img) return deft_set_error(DEFT_ERR_INVALID_ARG, "resize: NULL image");
    struct deft_resample r = {0, 0, (float)img->w, (float)img->h, false};
    return deft_image_resample_chw(img, &r, out_w, out_h, out);
}

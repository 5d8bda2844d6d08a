/* plot.c - report module: line plots and confusion-matrix heatmaps, written
 * as SVG and as PNG (libpng) from the same drawing calls.
 *
 * The raster side is a tiny RGB rasterizer: filled rectangles, Wu
 * anti-aliased lines (two offset passes for a 2 px stroke), anti-aliased
 * disc markers and a built-in 5x7 bitmap font (font5x7.h), optionally
 * rotated by 90 degrees. The SVG side emits the same shapes; text uses a
 * monospace font whose advance (0.6 em) matches the bitmap font's 6 px cell.
 * Both files are written atomically.
 */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deft/io.h"
#include "deft/report.h"
#include "report/font5x7.h"
#include "report/report_impl.h"

struct rgb {
    unsigned char r, g, b;
};

static const struct rgb C_WHITE = {255, 255, 255}, C_TEXT = {34, 34, 34},
                        C_GRID = {226, 226, 226}, C_AXIS = {60, 60, 60}, C_LEGEND_BORDER = {190, 190, 190};

/* matplotlib's tab10 */
static const struct rgb PALETTE[10] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};

/* ---- scene: one drawing API, two outputs -------------------------------- */

struct scene {
    int w, h;
    unsigned char *px; /* RGB, w*h*3 */
    struct rp_sbuf svg;
};

static void put_px(struct scene *s, int x, int y, struct rgb c, double a) {
    if (x < 0 || y < 0 || x >= s->w || y >= s->h || !(a > 0)) return;
    if (a > 1) a = 1;
    unsigned char *p = s->px + ((size_t)y * (size_t)s->w + (size_t)x) * 3;
    p[0] = (unsigned char)lround(p[0] + (c.r - p[0]) * a);
    p[1] = (unsigned char)lround(p[1] + (c.g - p[1]) * a);
    p[2] = (unsigned char)lround(p[2] + (c.b - p[2]) * a);
}

static void svg_color(struct rp_sbuf *b, struct rgb c) { rp_sb_printf(b, "#%02x%02x%02x", c.r, c.g, c.b); }

static void raster_rect(struct scene *s, double x, double y, double w, double h, struct rgb c) {
    int x0 = (int)lround(x), y0 = (int)lround(y), x1 = (int)lround(x + w), y1 = (int)lround(y + h);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > s->w) x1 = s->w;
    if (y1 > s->h) y1 = s->h;
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++) {
            unsigned char *p = s->px + ((size_t)yy * (size_t)s->w + (size_t)xx) * 3;
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
}

/* Filled rectangle (pixel-aligned in the raster). */
static void sc_rect(struct scene *s, double x, double y, double w, double h, struct rgb c) {
    if (!(w > 0 && h > 0)) return;
    raster_rect(s, x, y, w, h, c);
    rp_sb_printf(&s->svg, "<rect x=\"%.6g\" y=\"%.6g\" width=\"%.6g\" height=\"%.6g\" fill=\"", x, y, w, h);
    svg_color(&s->svg, c);
    rp_sb_str(&s->svg, "\"/>\n");
}

/* Outline of a rectangle, 1 px. */
static void sc_frame(struct scene *s, double x, double y, double w, double h, struct rgb c) {
    raster_rect(s, x, y, w, 1, c);
    raster_rect(s, x, y + h - 1, w, 1, c);
    raster_rect(s, x, y, 1, h, c);
    raster_rect(s, x + w - 1, y, 1, h, c);
    rp_sb_printf(&s->svg,
                 "<rect x=\"%.6g\" y=\"%.6g\" width=\"%.6g\" height=\"%.6g\" fill=\"none\" stroke=\"",
                 x + 0.5, y + 0.5, w - 1, h - 1);
    svg_color(&s->svg, c);
    rp_sb_str(&s->svg, "\" stroke-width=\"1\"/>\n");
}

static double fpart(double x) { return x - floor(x); }

/* Liang-Barsky: clip the segment to [xmin,xmax]x[ymin,ymax]; false when outside. */
static bool clip_segment(double *x0, double *y0, double *x1, double *y1, double xmin, double ymin,
                         double xmax, double ymax) {
    double t0 = 0, t1 = 1, dx = *x1 - *x0, dy = *y1 - *y0;
    double p[4] = {-dx, dx, -dy, dy}, q[4] = {*x0 - xmin, xmax - *x0, *y0 - ymin, ymax - *y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return false;
            continue;
        }
        double r = q[i] / p[i];
        if (p[i] < 0) {
            if (r > t1) return false;
            if (r > t0) t0 = r;
        } else {
            if (r < t0) return false;
            if (r < t1) t1 = r;
        }
    }
    double nx0 = *x0 + t0 * dx, ny0 = *y0 + t0 * dy, nx1 = *x0 + t1 * dx, ny1 = *y0 + t1 * dy;
    *x0 = nx0;
    *y0 = ny0;
    *x1 = nx1;
    *y1 = ny1;
    return true;
}

static void wu_plot(struct scene *s, bool steep, int x, int y, struct rgb c, double a) {
    if (steep) put_px(s, y, x, c, a);
    else put_px(s, x, y, c, a);
}

/* Xiaolin Wu's line; coordinates in pixel-centre units (pixel i spans
 * [i-0.5, i+0.5)). */
static void wu_line(struct scene *s, double x0, double y0, double x1, double y1, struct rgb c) {
    if (!clip_segment(&x0, &y0, &x1, &y1, -2, -2, s->w + 1, s->h + 1)) return;
    bool steep = fabs(y1 - y0) > fabs(x1 - x0);
    double t;
    if (steep) {
        t = x0; x0 = y0; y0 = t;
        t = x1; x1 = y1; y1 = t;
    }
    if (x0 > x1) {
        t = x0; x0 = x1; x1 = t;
        t = y0; y0 = y1; y1 = t;
    }
    double dx = x1 - x0, dy = y1 - y0, grad = dx == 0 ? 1 : dy / dx;
    double xend = round(x0), yend = y0 + grad * (xend - x0), xgap = 1 - fpart(x0 + 0.5);
    int xp1 = (int)xend, yp1 = (int)floor(yend);
    wu_plot(s, steep, xp1, yp1, c, (1 - fpart(yend)) * xgap);
    wu_plot(s, steep, xp1, yp1 + 1, c, fpart(yend) * xgap);
    double intery = yend + grad;
    xend = round(x1);
    yend = y1 + grad * (xend - x1);
    xgap = fpart(x1 + 0.5);
    int xp2 = (int)xend, yp2 = (int)floor(yend);
    if (xp2 == xp1) return;
    wu_plot(s, steep, xp2, yp2, c, (1 - fpart(yend)) * xgap);
    wu_plot(s, steep, xp2, yp2 + 1, c, fpart(yend) * xgap);
    for (int x = xp1 + 1; x < xp2; x++) {
        int iy = (int)floor(intery);
        wu_plot(s, steep, x, iy, c, 1 - fpart(intery));
        wu_plot(s, steep, x, iy + 1, c, fpart(intery));
        intery += grad;
    }
}

/* A 2 px anti-aliased stroke: two Wu lines half a pixel either side along
 * the minor axis. Input in image coordinates (pixel i spans [i, i+1)). */
static void raster_thick_line(struct scene *s, double x0, double y0, double x1, double y1, struct rgb c) {
    x0 -= 0.5; y0 -= 0.5; x1 -= 0.5; y1 -= 0.5;
    if (fabs(x1 - x0) >= fabs(y1 - y0)) {
        wu_line(s, x0, y0 - 0.5, x1, y1 - 0.5, c);
        wu_line(s, x0, y0 + 0.5, x1, y1 + 0.5, c);
    } else {
        wu_line(s, x0 - 0.5, y0, x1 - 0.5, y1, c);
        wu_line(s, x0 + 0.5, y0, x1 + 0.5, y1, c);
    }
}

static void raster_disc(struct scene *s, double cx, double cy, double r, struct rgb c) {
    int x0 = (int)floor(cx - r - 1), x1 = (int)ceil(cx + r + 1);
    int y0 = (int)floor(cy - r - 1), y1 = (int)ceil(cy + r + 1);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double d = hypot(x + 0.5 - cx, y + 0.5 - cy);
            double a = r + 0.5 - d;
            if (a > 0) put_px(s, x, y, c, a);
        }
}

static void sc_disc(struct scene *s, double cx, double cy, double r, struct rgb c) {
    raster_disc(s, cx, cy, r, c);
    rp_sb_printf(&s->svg, "<circle cx=\"%.6g\" cy=\"%.6g\" r=\"%.6g\" fill=\"", cx, cy, r);
    svg_color(&s->svg, c);
    rp_sb_str(&s->svg, "\"/>\n");
}

/* Polyline of n points, 2 px wide. */
static void sc_polyline(struct scene *s, const double *xs, const double *ys, int n, struct rgb c) {
    if (n < 2) return;
    for (int i = 0; i + 1 < n; i++) raster_thick_line(s, xs[i], ys[i], xs[i + 1], ys[i + 1], c);
    rp_sb_str(&s->svg, "<polyline fill=\"none\" stroke=\"");
    svg_color(&s->svg, c);
    rp_sb_str(&s->svg, "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"");
    for (int i = 0; i < n; i++) rp_sb_printf(&s->svg, "%s%.2f,%.2f", i ? " " : "", xs[i], ys[i]);
    rp_sb_str(&s->svg, "\"/>\n");
}

/* Text: characters are UTF-8 code points; each draws as one 5x7 glyph
 * (non-ASCII as '?'). */
static int text_chars(const char *t) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}

static double text_width(const char *t, int scale) {
    int n = text_chars(t);
    return n ? (double)(n * 6 - 1) * scale : 0;
}

/* Valid UTF-8 is copied (XML-escaped), anything else becomes '?'. */
static void svg_text_content(struct rp_sbuf *b, const char *t) {
    const unsigned char *p = (const unsigned char *)t;
    char one[2] = {0, 0};
    while (*p) {
        unsigned c = *p;
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = len > 0 && !(len == 2 && c < 0xC2) && !(len == 4 && c > 0xF4);
        for (int i = 1; ok && i < len; i++)
            if ((p[i] & 0xC0) != 0x80) ok = false;
        if (!ok) {
            rp_sb_put(b, "?", 1);
            p++;
            continue;
        }
        if (len == 1) {
            one[0] = (char)c;
            rp_sb_xml(b, one);
        } else {
            rp_sb_put(b, p, (size_t)len);
        }
        p += len;
    }
}

enum { ALIGN_LEFT = 0, ALIGN_CENTER = 1, ALIGN_RIGHT = 2 };

/* Draw text. rot 0: (ax, ay) is the anchor on the glyph tops, halign along x.
 * rot 1 (90 degrees counter-clockwise, reading upward): ax is the left edge
 * (the glyph tops), ay the anchor along the text, halign along -y. */
static void sc_text(struct scene *s, double ax, double ay, const char *t, struct rgb c, int scale,
                    int halign, int rot) {
    if (!t || !*t) return;
    double w = text_width(t, scale);
    double start = halign == ALIGN_LEFT ? 0 : halign == ALIGN_CENTER ? w / 2 : w;
    int ox = rot ? (int)lround(ax) : (int)lround(ax - start);
    int oy = rot ? (int)lround(ay + start) : (int)lround(ay);
    int k = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if ((*p & 0xC0) == 0x80) continue;
        unsigned ch = *p >= 32 && *p < 127 ? *p : '?';
        const unsigned char *g = rp_font5x7[ch - 32];
        int drop = rp_font_descends(ch) ? 2 : 0;
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++) {
                if (!(g[row] >> (4 - col) & 1)) continue;
                for (int sy = 0; sy < scale; sy++)
                    for (int sx = 0; sx < scale; sx++) {
                        int gx = (k * 6 + col) * scale + sx, gy = (row + drop) * scale + sy;
                        if (rot) put_px(s, ox + gy, oy - 1 - gx, c, 1);
                        else put_px(s, ox + gx, oy + gy, c, 1);
                    }
            }
        k++;
    }
    static const char *anchors[3] = {"start", "middle", "end"};
    rp_sb_printf(&s->svg,
                 "<text x=\"%.6g\" y=\"%.6g\" font-family=\"monospace\" font-size=\"%d\" "
                 "text-anchor=\"%s\" fill=\"",
                 ax, ay + 7.0 * scale, 10 * scale, anchors[halign]);
    svg_color(&s->svg, c);
    rp_sb_put(&s->svg, "\"", 1);
    if (rot) rp_sb_printf(&s->svg, " transform=\"rotate(-90 %.6g %.6g)\"", ax, ay);
    rp_sb_put(&s->svg, ">", 1);
    svg_text_content(&s->svg, t);
    rp_sb_str(&s->svg, "</text>\n");
}

static enum deft_status scene_init(struct scene *s, int w, int h, const char *title) {
    memset(s, 0, sizeof *s);
    s->w = w;
    s->h = h;
    s->px = deft_malloc((size_t)w * (size_t)h * 3);
    if (!s->px) return deft_set_error(DEFT_ERR_NOMEM, "plot: out of memory for a %dx%d image", w, h);
    memset(s->px, 255, (size_t)w * (size_t)h * 3);
    rp_sb_printf(&s->svg,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\">\n",
                 w, h, w, h);
    if (title && *title) {
        rp_sb_str(&s->svg, "<title>");
        svg_text_content(&s->svg, title);
        rp_sb_str(&s->svg, "</title>\n");
    }
    rp_sb_printf(&s->svg, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, h);
    return DEFT_OK;
}

static void scene_free(struct scene *s) {
    deft_free(s->px);
    rp_sb_free(&s->svg);
}

/* ---- PNG encoding --------------------------------------------------------- */

static void png_mem_write(png_structp png, png_bytep data, png_size_t n) {
    struct rp_sbuf *b = png_get_io_ptr(png);
    rp_sb_put(b, data, n);
    if (b->failed) png_error(png, "out of memory");
}

static void png_mem_flush(png_structp png) { (void)png; }

static void png_err_fn(png_structp png, png_const_charp msg) {
    (void)msg;
    png_longjmp(png, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* RGB8 rows (w*h*3) -> PNG bytes appended to out. */
enum deft_status rp_encode_png(int w, int h, const unsigned char *px, struct rp_sbuf *out, const char *path) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err_fn, png_warn_fn);
    if (!png) return deft_set_error(DEFT_ERR_NOMEM, "%s: cannot create PNG writer", path);
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return deft_set_error(DEFT_ERR_NOMEM, "%s: cannot create PNG writer", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        deft_free(rows);
        bool nomem = out->failed;
        return deft_set_error(nomem ? DEFT_ERR_NOMEM : DEFT_ERR_IO, "%s: PNG encoding failed%s", path,
                              nomem ? " (out of memory)" : "");
    }
    rows = deft_malloc((size_t)h * sizeof *rows);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)px + (size_t)y * (size_t)w * 3;
    png_set_write_fn(png, out, png_mem_write, png_mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    deft_free(rows);
    if (out->failed) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", path);
    return DEFT_OK;
}

/* Write <base>.svg and <base>.png atomically. */
static enum deft_status scene_save(struct scene *s, const char *base) {
    rp_sb_str(&s->svg, "</svg>\n");
    if (s->svg.failed) return deft_set_error(DEFT_ERR_NOMEM, "%s.svg: out of memory", base);
    struct rp_sbuf path = {0}, png = {0};
    rp_sb_printf(&path, "%s.svg", base);
    if (path.failed) return deft_set_error(DEFT_ERR_NOMEM, "plot: out of memory");
    enum deft_status st = deft_file_write_atomic(path.p, s->svg.p, s->svg.n);
    if (!st) {
        path.n = 0;
        rp_sb_printf(&path, "%s.png", base);
        if (path.failed) st = deft_set_error(DEFT_ERR_NOMEM, "plot: out of memory");
        else st = rp_encode_png(s->w, s->h, s->px, &png, path.p);
        if (!st) st = deft_file_write_atomic(path.p, png.p, png.n);
    }
    rp_sb_free(&png);
    rp_sb_free(&path);
    return st;
}

/* ---- axes ------------------------------------------------------------------ */

struct axis {
    double lo, hi;      /* mapped range */
    double ticks[64];
    int n_ticks;
    int decimals;       /* tick label precision; -1: %.*g with `sig` digits */
    int sig;
};

static double nice_step(double raw) {
    double e = floor(log10(raw)), f = raw / pow(10, e);
    double nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10, e);
}

/* Pick a range and about `target` ticks covering [mn, mx] (finite). */
static void axis_fit(struct axis *a, double mn, double mx, bool have, bool integral, int target) {
    if (!have) {
        mn = 0;
        mx = 1;
    }
    if (mn == mx) {
        double d = fabs(mn) > 0 ? fabs(mn) * 0.1 : 1;
        if (integral && d < 1) d = 1;
        mn -= d;
        mx += d;
    }
    a->n_ticks = 0;
    a->decimals = -1;
    a->sig = 3;
    double range = mx - mn;
    if (!isfinite(range) || !isfinite(mn) || !isfinite(mx) || range <= 0) {
        a->lo = mn;
        a->hi = mx;
        a->ticks[a->n_ticks++] = mn;
        a->ticks[a->n_ticks++] = mx;
        return;
    }
    double step = nice_step(range / (target - 1));
    if (integral && step < 1) step = 1;
    double lo = floor(mn / step) * step, hi = ceil(mx / step) * step;
    if (!(hi > lo) || (hi - lo) / step > 60) {
        a->lo = mn;
        a->hi = mx;
        a->ticks[a->n_ticks++] = mn;
        a->ticks[a->n_ticks++] = mx;
        return;
    }
    a->lo = lo;
    a->hi = hi;
    int n = (int)lround((hi - lo) / step);
    for (int i = 0; i <= n && a->n_ticks < 64; i++) {
        double v = lo + step * i;
        if (fabs(v) < step * 1e-9) v = 0;
        a->ticks[a->n_ticks++] = v;
    }
    double mag = fmax(fabs(lo), fabs(hi));
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (mag >= 1e6 || dec > 6) {
        /* enough significant digits to tell neighbouring ticks apart */
        int sig = mag > 0 ? (int)ceil(log10(mag / step) - 1e-9) + 1 : 3;
        a->decimals = -1;
        a->sig = sig < 3 ? 3 : sig > 17 ? 17 : sig;
    } else {
        a->decimals = dec;
    }
}

static void tick_label(char *buf, size_t cap, const struct axis *a, double v) {
    if (a->decimals >= 0) snprintf(buf, cap, "%.*f", a->decimals, v);
    else snprintf(buf, cap, "%.*g", a->sig, v);
    if (strcmp(buf, "-0") == 0 || strspn(buf, "-0.") == strlen(buf)) {
        /* "-0", "-0.00": print as zero */
        if (buf[0] == '-') memmove(buf, buf + 1, strlen(buf));
    }
}

/* ---- line plot -------------------------------------------------------------- */

#define LP_W 960
#define LP_H 600

static bool finite_pt(const struct deft_plot_series *s, int i, double *x, double *y) {
    *x = s->x ? s->x[i] : (double)(i + 1);
    *y = s->y[i];
    return isfinite(*x) && isfinite(*y);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The top of the y axis: the data's maximum, unless it lies far above the
 * rest (a loss that spiked for one epoch): then a little above the 90th
 * percentile, so the other points keep the plot's height. */
static double robust_top(const struct deft_plot_series *series, int n_series, double ymn, double ymx) {
    size_t n = 0;
    for (int k = 0; k < n_series; k++) n += (size_t)series[k].n;
    if (n < 8) return ymx;
    double *v = deft_malloc(n * sizeof *v);
    if (!v) return ymx;
    size_t m = 0;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < series[k].n; i++) {
            double x, y;
            if (finite_pt(&series[k], i, &x, &y)) v[m++] = y;
        }
    double top = ymx;
    if (m >= 8) {
        qsort(v, m, sizeof *v, cmp_double);
        double q90 = v[(m * 9) / 10], spread = q90 - ymn;
        if (spread > 0 && ymx - q90 > 4 * spread) top = q90 + 0.25 * spread;
    }
    deft_free(v);
    return top;
}

enum deft_status deft_plot_lines(const char *path, const char *title, const char *xlabel,
                                 const char *ylabel, const struct deft_plot_series *series, int n_series) {
    if (!path || !*path) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_plot_lines: empty path");
    if (n_series < 0 || (n_series && !series))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_plot_lines %s: bad series list", path);
    for (int k = 0; k < n_series; k++)
        if (series[k].n < 0 || (series[k].n && !series[k].y))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_plot_lines %s: series %d has no data", path, k);

    /* data range over finite points */
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    bool have = false, integral_x = true;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < series[k].n; i++) {
            double x, y;
            if (!finite_pt(&series[k], i, &x, &y)) continue;
            have = true;
            xmn = fmin(xmn, x);
            xmx = fmax(xmx, x);
            ymn = fmin(ymn, y);
            ymx = fmax(ymx, y);
            if (x != floor(x)) integral_x = false;
        }
    const int FS = 2; /* font scale of labels and ticks */
    char lab[64];
    struct axis ax, ay;
    double ycap = robust_top(series, n_series, ymn, ymx);
    char capped_title[256];
    if (ycap < ymx) { /* one spike would flatten every other point: cap the axis, say so */
        snprintf(capped_title, sizeof capped_title, "%s (axis cut at %.3g: larger values drawn at the top)",
                 title ? title : "", ycap);
        title = capped_title;
        ymx = ycap;
    }
    axis_fit(&ay, ymn, ymx, have, false, 7);
    /* fewer x ticks when their labels are long */
    static const int x_targets[4] = {9, 6, 4, 3};
    for (int t = 0; t < 4; t++) {
        axis_fit(&ax, xmn, xmx, have, integral_x, x_targets[t]);
        double wmax = 0;
        for (int i = 0; i < ax.n_ticks; i++) {
            tick_label(lab, sizeof lab, &ax, ax.ticks[i]);
            wmax = fmax(wmax, text_width(lab, FS));
        }
        if (ax.n_ticks * (wmax + 20) <= LP_W - 200) break;
    }
    double ytick_w = 0;
    for (int i = 0; i < ay.n_ticks; i++) {
        tick_label(lab, sizeof lab, &ay, ay.ticks[i]);
        ytick_w = fmax(ytick_w, text_width(lab, FS));
    }
    double left = 12 + (ylabel && *ylabel ? 7 * FS + 14 : 0) + ytick_w + 10;
    double top = title && *title ? 20 + 7 * 3 + 16 : 24;
    /* room for half of the last x tick label */
    tick_label(lab, sizeof lab, &ax, ax.ticks[ax.n_ticks - 1]);
    double right = LP_W - fmax(30, text_width(lab, FS) / 2 + 10);
    double bottom = LP_H - (8 + 7 * FS + 12 + (xlabel && *xlabel ? 7 * FS + 14 : 0));
    double pw = right - left, ph = bottom - top;

    struct scene s;
    enum deft_status st = scene_init(&s, LP_W, LP_H, title);
    if (st) return st;
    double *px = NULL, *py = NULL;

    if (title && *title) sc_text(&s, LP_W / 2.0, 20, title, C_TEXT, 3, ALIGN_CENTER, 0);

    /* grid, ticks, labels */
#define MAPX(v) (left + ((v) * 0.5 - ax.lo * 0.5) / (ax.hi * 0.5 - ax.lo * 0.5) * pw)
#define MAPY(v) (bottom - ((v) * 0.5 - ay.lo * 0.5) / (ay.hi * 0.5 - ay.lo * 0.5) * ph)
    for (int i = 0; i < ax.n_ticks; i++) {
        double x = floor(MAPX(ax.ticks[i]));
        if (i > 0 && i + 1 < ax.n_ticks) sc_rect(&s, x, top, 1, ph, C_GRID);
        sc_rect(&s, x, bottom, 1, 6, C_AXIS);
        tick_label(lab, sizeof lab, &ax, ax.ticks[i]);
        sc_text(&s, x + 0.5, bottom + 10, lab, C_TEXT, FS, ALIGN_CENTER, 0);
    }
    for (int i = 0; i < ay.n_ticks; i++) {
        double y = floor(MAPY(ay.ticks[i]));
        if (i > 0 && i + 1 < ay.n_ticks) sc_rect(&s, left, y, pw, 1, C_GRID);
        sc_rect(&s, left - 6, y, 6, 1, C_AXIS);
        tick_label(lab, sizeof lab, &ay, ay.ticks[i]);
        sc_text(&s, left - 10, y + 0.5 - 3.5 * FS, lab, C_TEXT, FS, ALIGN_RIGHT, 0);
    }
    sc_frame(&s, floor(left), floor(top), floor(right) - floor(left) + 1, floor(bottom) - floor(top) + 1,
             C_AXIS);
    if (xlabel && *xlabel)
        sc_text(&s, left + pw / 2, LP_H - 8 - 7 * FS, xlabel, C_TEXT, FS, ALIGN_CENTER, 0);
    if (ylabel && *ylabel) sc_text(&s, 12, top + ph / 2, ylabel, C_TEXT, FS, ALIGN_CENTER, 1);

    /* series */
    int maxn = 0;
    for (int k = 0; k < n_series; k++) maxn = series[k].n > maxn ? series[k].n : maxn;
    if (maxn) {
        px = deft_malloc((size_t)maxn * sizeof *px);
        py = deft_malloc((size_t)maxn * sizeof *py);
        if (!px || !py) {
            st = deft_set_error(DEFT_ERR_NOMEM, "deft_plot_lines %s: out of memory", path);
            goto out;
        }
    }
    for (int k = 0; k < n_series; k++) {
        const struct deft_plot_series *se = &series[k];
        struct rgb c = PALETTE[k % 10];
        bool markers = se->n <= 40;
        int run = 0;
        for (int i = 0; i <= se->n; i++) {
            double x, y;
            bool ok = i < se->n && finite_pt(se, i, &x, &y);
            if (ok) {
                px[run] = MAPX(x);
                py[run] = MAPY(fmin(y, ay.hi));
                run++;
                continue;
            }
            /* end of a run of finite points */
            sc_polyline(&s, px, py, run, c);
            if (markers || run == 1)
                for (int j = 0; j < run; j++) sc_disc(&s, px[j], py[j], 3.5, c);
            run = 0;
        }
    }

    /* legend inside the plot, in the corner that hides the fewest data */
    {
        int n_named = 0;
        double lw = 0;
        for (int k = 0; k < n_series; k++)
            if (series[k].name && *series[k].name) {
                n_named++;
                lw = fmax(lw, text_width(series[k].name, FS));
            }
        if (n_named) {
            double row = 7 * FS + 8, bw = 12 + 28 + 8 + lw + 12, bh = 8 + row * n_named;
            double cx[4] = {right - 10 - bw, right - 10 - bw, left + 10, left + 10};
            double cy[4] = {top + 10, bottom - 10 - bh, top + 10, bottom - 10 - bh};
            long hits[4] = {0, 0, 0, 0};
            for (int k = 0; k < n_series; k++) {
                double qx = 0, qy = 0;
                bool have_prev = false;
                for (int i = 0; i < series[k].n; i++) {
                    double x, y;
                    if (!finite_pt(&series[k], i, &x, &y)) {
                        have_prev = false;
                        continue;
                    }
                    double mx = MAPX(x), my = MAPY(y);
                    for (int t = have_prev ? 0 : 7; t < 8; t++) {
                        double sx = qx + (mx - qx) * (t + 1) / 8.0, sy = qy + (my - qy) * (t + 1) / 8.0;
                        for (int c = 0; c < 4; c++)
                            if (sx >= cx[c] - 4 && sx <= cx[c] + bw + 4 && sy >= cy[c] - 4 && sy <= cy[c] + bh + 4)
                                hits[c]++;
                    }
                    qx = mx;
                    qy = my;
                    have_prev = true;
                }
            }
            int best = 0;
            for (int c = 1; c < 4; c++)
                if (hits[c] < hits[best]) best = c;
            double bx = floor(cx[best]), by = floor(cy[best]);
            sc_rect(&s, bx, by, bw, bh, C_WHITE);
            sc_frame(&s, bx, by, bw, bh, C_LEGEND_BORDER);
            int j = 0;
            for (int k = 0; k < n_series; k++) {
                if (!series[k].name || !*series[k].name) continue;
                struct rgb c = PALETTE[k % 10];
                double ry = by + 8 + row * j;
                double lx[2] = {bx + 12, bx + 40}, ly[2] = {ry + 3.5 * FS, ry + 3.5 * FS};
                sc_polyline(&s, lx, ly, 2, c);
                sc_disc(&s, bx + 26, ry + 3.5 * FS, 3.5, c);
                sc_text(&s, bx + 48, ry, series[k].name, C_TEXT, FS, ALIGN_LEFT, 0);
                j++;
            }
        }
    }
#undef MAPX
#undef MAPY
    st = scene_save(&s, path);
    if (st) st = deft_wrap_error(st, "deft_plot_lines");
out:
    deft_free(px);
    deft_free(py);
    scene_free(&s);
    return st;
}

/* ---- confusion matrix --------------------------------------------------------- */

#define CM_MAX_CLASSES 4096
#define CM_NAME_CHARS 20

/* "Blues": white -> mid blue -> dark blue */
static struct rgb blues(double t) {
    static const struct rgb stops[3] = {{247, 251, 255}, {107, 174, 214}, {8, 48, 107}};
    if (!(t > 0)) return stops[0];
    if (t >= 1) return stops[2];
    int i = t < 0.5 ? 0 : 1;
    double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    struct rgb a = stops[i], b = stops[i + 1];
    return (struct rgb){(unsigned char)lround(a.r + (b.r - a.r) * u), (unsigned char)lround(a.g + (b.g - a.g) * u),
                        (unsigned char)lround(a.b + (b.b - a.b) * u)};
}

/* Class label: the name cut to CM_NAME_CHARS code points ("..." marks a cut),
 * or the index. */
static void class_label(char *buf, size_t cap, const char *const *names, int i) {
    const char *nm = names ? names[i] : NULL;
    if (!nm || !*nm) {
        snprintf(buf, cap, "%d", i);
        return;
    }
    size_t k = 0;
    int chars = 0;
    const unsigned char *p = (const unsigned char *)nm;
    while (*p && k + 8 < cap) {
        if ((*p & 0xC0) != 0x80) {
            if (chars == CM_NAME_CHARS) break;
            chars++;
        }
        buf[k++] = (char)*p++;
    }
    if (*p) {
        /* drop a partial code point, then mark the cut */
        while (k > 0 && ((unsigned char)buf[k - 1] & 0xC0) == 0x80) k--;
        if (k > 0 && (unsigned char)buf[k - 1] >= 0xC0) k--;
        if (k > 3) k -= 3;
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = 0;
}

enum deft_status deft_plot_confusion(const char *path, const char *title, const char *const *class_names,
                                     int n, const int64_t *counts) {
    if (!path || !*path) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_plot_confusion: empty path");
    if (n <= 0 || !counts)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_plot_confusion %s: no classes", path);
    if (n > CM_MAX_CLASSES)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "deft_plot_confusion %s: %d classes (at most %d)", path, n,
                              CM_MAX_CLASSES);
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++)
        if (counts[i] < 0)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_plot_confusion %s: negative count at [%zu][%zu]",
                                  path, i / (size_t)n, i % (size_t)n);

    int cell = 720 / n;
    if (cell > 56) cell = 56;
    if (cell < 1) cell = 1;
    int name_fs = cell >= 16 ? 2 : 1;
    bool names = cell >= 8;
    char lab[128];
    double name_w = 0;
    if (names)
        for (int i = 0; i < n; i++) {
            class_label(lab, sizeof lab, class_names, i);
            name_w = fmax(name_w, text_width(lab, name_fs));
        }
    const int FS = 2;
    double grid = (double)cell * n;
    double left = 12 + 7 * FS + 14 + (names ? name_w + 10 : 0);
    double top = title && *title ? 20 + 7 * 3 + 20 : 24;
    int W = (int)ceil(left + grid + 30);
    double min_w = title && *title ? text_width(title, 3) + 40 : 0;
    if (W < min_w) W = (int)ceil(min_w);
    if (W < 240) W = 240;
    int H = (int)ceil(top + grid + (names ? name_w + 10 : 0) + 7 * FS + 14 + 12);
    /* center the grid when the title made the image wider */
    double extra = W - (left + grid + 30);
    left = floor(left + (extra > 0 ? extra / 2 : 0));

    struct scene s;
    enum deft_status st = scene_init(&s, W, H, title);
    if (st) return st;
    if (title && *title) sc_text(&s, W / 2.0, 20, title, C_TEXT, 3, ALIGN_CENTER, 0);

    int64_t maxc = 0;
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) maxc = counts[i] > maxc ? counts[i] : maxc;
    int digits = 1;
    for (int64_t v = maxc; v >= 10; v /= 10) digits++;
    int count_fs = cell >= digits * 12 + 4 && cell >= 18 ? 2 : cell >= digits * 6 + 2 && cell >= 10 ? 1 : 0;

    sc_rect(&s, left, top, grid, grid, blues(0));
    for (int r = 0; r < n; r++) {
        double total = 0;
        for (int c = 0; c < n; c++) total += (double)counts[(size_t)r * n + c];
        for (int c = 0; c < n; c++) {
            int64_t v = counts[(size_t)r * n + c];
            if (v == 0) continue;
            double t = total > 0 ? (double)v / total : 0;
            double x = left + (double)c * cell, y = top + (double)r * cell;
            sc_rect(&s, x, y, cell, cell, blues(t));
            if (count_fs) {
                snprintf(lab, sizeof lab, "%lld", (long long)v);
                sc_text(&s, x + cell / 2.0, y + cell / 2.0 - 3.5 * count_fs, lab, t > 0.45 ? C_WHITE : C_TEXT,
                        count_fs, ALIGN_CENTER, 0);
            }
        }
    }
    /* zero cells on the diagonal still show their count */
    if (count_fs)
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
                if (counts[(size_t)r * n + c] == 0 && (r == c || cell >= 24))
                    sc_text(&s, left + c * cell + cell / 2.0, top + r * cell + cell / 2.0 - 3.5 * count_fs, "0",
                            C_TEXT, count_fs, ALIGN_CENTER, 0);
    sc_frame(&s, left - 1, top - 1, grid + 2, grid + 2, C_AXIS);

    if (names)
        for (int i = 0; i < n; i++) {
            class_label(lab, sizeof lab, class_names, i);
            /* rows: true class, right-aligned left of the grid */
            sc_text(&s, left - 8, top + i * cell + cell / 2.0 - 3.5 * name_fs, lab, C_TEXT, name_fs, ALIGN_RIGHT,
                    0);
            /* columns: predicted class, reading upward below the grid */
            sc_text(&s, left + i * cell + cell / 2.0 - 3.5 * name_fs, top + grid + 8, lab, C_TEXT, name_fs,
                    ALIGN_RIGHT, 1);
        }
    sc_text(&s, left + grid / 2, H - 12 - 7 * FS, "Predicted", C_TEXT, FS, ALIGN_CENTER, 0);
    sc_text(&s, 12, top + grid / 2, "True", C_TEXT, FS, ALIGN_CENTER, 1);

    st = scene_save(&s, path);
    if (st) st = deft_wrap_error(st, "deft_plot_confusion");
    scene_free(&s);
    return st;
}

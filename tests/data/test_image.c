/* test_image.c - JPEG/PNG/BMP decode against PIL's decode of the same files
 * (written at test time by tests/data/make_images.py), DCT-scaled decode,
 * and hostile input: truncated files, random bytes, bomb headers, fault
 * injection. Every path must return a status, never crash, and leak nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/data.h"

static char dir[512];

static const char *P(const char *name) {
    static char buf[4][768];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Decode `img` and compare with reference `ref` (HWC float). */
static void compare(const char *img, const char *ref, double tol, double mean_tol) {
    struct deft_image im;
    enum deft_status st = deft_image_load(P(img), NULL, &im);
    CHECK(st == DEFT_OK, "%s: %s", img, deft_last_error());
    if (st != DEFT_OK) return;
    int64_t shape[8];
    int nd = 0;
    float *r = test_npy_read(P(ref), shape, &nd);
    CHECK(r && nd == 3 && shape[0] == im.h && shape[1] == im.w && shape[2] == 3,
          "%s: size %dx%d vs reference", img, im.w, im.h);
    if (r && nd == 3 && shape[0] == im.h && shape[1] == im.w) {
        double maxd = 0, sum = 0;
        size_t n = (size_t)im.w * im.h * 3;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)im.rgb[i] - r[i]);
            if (d > maxd) maxd = d;
            sum += d;
        }
        CHECK(maxd <= tol && sum / n <= mean_tol, "%s: max diff %.1f (tol %.1f), mean %.3f", img, maxd, tol,
              sum / n);
    }
    free(r);
    deft_image_free(&im);
}

static void expect_fail(const uint8_t *d, size_t n, const char *what) {
    long live = deft_alloc_live();
    struct deft_image im = {1, 1, (uint8_t *)1};
    enum deft_status st = deft_image_decode(d, n, NULL, &im);
    CHECK(st != DEFT_OK && im.rgb == NULL && im.w == 0, "%s: expected an error, got %s", what, deft_status_str(st));
    CHECK(deft_last_error()[0] != 0, "%s: no message", what);
    CHECK(deft_alloc_live() == live, "%s: leaked %ld blocks", what, deft_alloc_live() - live);
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *d = NULL;
    if (deft_read_file(path, 1 << 28, &d, n) != DEFT_OK) return NULL;
    return d;
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/img", test_tmpdir());
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && /usr/bin/python3 '%s/tests/data/make_images.py' '%s'", dir,
             test_source_dir(), dir);
    if (system(cmd) != 0) test_skip("python3 with numpy + PIL is needed to write the test images");
    long live0 = deft_alloc_live();

    /* JPEG: same libjpeg family, but IDCT/upsampling may differ by a little. */
    compare("rgb.jpg", "rgb_jpg.npy", 4, 0.5);
    compare("prog.jpg", "prog_jpg.npy", 4, 0.5);
    compare("gray.jpg", "gray_jpg.npy", 2, 0.5);
    compare("cmyk.jpg", "cmyk_jpg.npy", 6, 1.0);
    compare("really_jpeg.png", "rgb_jpg.npy", 4, 0.5); /* content, not extension */
    /* PNG / BMP are lossless: exact. */
    compare("rgb.png", "rgb_png.npy", 0, 0);
    compare("rgba.png", "rgba_png.npy", 0, 0);
    compare("gray.png", "gray_png.npy", 0, 0);
    compare("gray_alpha.png", "gray_alpha_png.npy", 0, 0);
    compare("palette.png", "palette_png.npy", 0, 0);
    compare("bw.png", "bw_png.npy", 0, 0);
    compare("rgb16.png", "rgb16_png.npy", 0, 0);
    compare("gray16.png", "gray16_png.npy", 0, 0);
    compare("rgb.bmp", "rgb_bmp.npy", 0, 0);
    compare("palette.bmp", "palette_bmp.npy", 0, 0);

    /* Probe and detection. */
    size_t n;
    uint8_t *big = slurp(P("big.jpg"), &n);
    CHECK(big != NULL, "read big.jpg");
    if (big) {
        enum deft_image_format f;
        int w, h;
        CHECK_OK(deft_image_probe(big, n, &f, &w, &h));
        CHECK(f == DEFT_IMAGE_JPEG && w == 800 && h == 600, "probe: %s %dx%d", deft_image_format_name(f), w, h);
        /* DCT scaling: need >= 200x150 -> 1/4 scale; >= 201x150 -> 3/8 (300x225). */
        struct deft_decode_opts o = {0};
        o.min_w = 200;
        o.min_h = 150;
        struct deft_image im;
        CHECK_OK(deft_image_decode(big, n, &o, &im));
        CHECK(im.w == 200 && im.h == 150, "DCT 1/4: got %dx%d", im.w, im.h);
        int64_t shape[8];
        int nd;
        float *r = test_npy_read(P("big_draft.npy"), shape, &nd);
        if (r && im.rgb && shape[0] == 150 && shape[1] == 200) {
            double sum = 0, maxd = 0;
            for (size_t i = 0; i < 200 * 150 * 3; i++) {
                double d = fabs(im.rgb[i] - r[i]);
                sum += d;
                if (d > maxd) maxd = d;
            }
            CHECK(sum / (200 * 150 * 3) < 2.0 && maxd < 40, "DCT-scaled vs PIL draft: mean %.2f max %.0f",
                  sum / (200 * 150 * 3), maxd);
        } else {
            CHECK(0, "big_draft.npy shape");
        }
        free(r);
        deft_image_free(&im);
        o.min_w = 201;
        CHECK_OK(deft_image_decode(big, n, &o, &im));
        CHECK(im.w == 300 && im.h == 225, "DCT 3/8: got %dx%d", im.w, im.h);
        deft_image_free(&im);
        o.min_w = 5000;
        o.min_h = 0;
        CHECK_OK(deft_image_decode(big, n, &o, &im));
        CHECK(im.w == 800 && im.h == 600, "never upscaled: got %dx%d", im.w, im.h);
        deft_image_free(&im);

        /* Truncations at many points: clean error. */
        size_t cuts[] = {0, 1, 2, 3, 10, 100, n / 4, n / 2, n - 100, n - 3};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            char what[64];
            snprintf(what, sizeof what, "jpeg cut at %zu", cuts[i]);
            expect_fail(big, cuts[i], what);
        }
        /* Limits are configurable. */
        struct deft_decode_opts lim = {0};
        lim.max_pixels = 1000;
        CHECK(deft_image_decode(big, n, &lim, &im) == DEFT_ERR_INVALID_ARG, "pixel limit");
        CHECK(strstr(deft_last_error(), "exceeds") != NULL, "limit message: %s", deft_last_error());
        /* Corrupted entropy data: must not crash (libjpeg may accept it with warnings). */
        uint8_t *bad = malloc(n);
        for (int t = 0; t < 20; t++) {
            memcpy(bad, big, n);
            for (int k = 0; k < 10; k++) {
                size_t pos = 700 + (size_t)(deft_rng_u64(7, (uint64_t)t, (uint64_t)k) % (n - 700));
                bad[pos] = (uint8_t)deft_rng_u64(8, (uint64_t)t, (uint64_t)k);
            }
            long live = deft_alloc_live();
            if (deft_image_decode(bad, n, NULL, &im) == DEFT_OK) deft_image_free(&im);
            CHECK(deft_alloc_live() == live, "corrupt jpeg %d leaked", t);
        }
        free(bad);
        /* Allocation failures in the decoder. */
        for (long k = 1; k <= 3; k++) {
            long live = deft_alloc_live();
            deft_alloc_fail_after(k);
            enum deft_status st = deft_image_decode(big, n, NULL, &im);
            deft_alloc_fail_after(0);
            if (st == DEFT_OK) deft_image_free(&im);
            else CHECK(st == DEFT_ERR_NOMEM, "fault %ld: %s", k, deft_status_str(st));
            CHECK(deft_alloc_live() == live, "fault %ld leaked", k);
        }
        deft_free(big);
    }
    const char *pngs[] = {"rgb.png", "palette.png", "rgb16.png", "rgb.bmp"};
    for (int f = 0; f < 4; f++) {
        uint8_t *d = slurp(P(pngs[f]), &n);
        if (!d) continue;
        size_t cuts[] = {0, 8, 20, 33, 50, n / 2, n - 13, n - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            char what[96];
            snprintf(what, sizeof what, "%s cut at %zu", pngs[f], cuts[i]);
            expect_fail(d, cuts[i], what);
        }
        if (f < 3) { /* flipped byte in IDAT -> CRC error */
            d[n - 20] ^= 0x55;
            expect_fail(d, n, "png bad crc");
        }
        deft_free(d);
    }
    /* Random bytes, with and without a valid signature. */
    uint8_t rnd[4096];
    for (int t = 0; t < 30; t++) {
        for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)deft_rng_u64(99, (uint64_t)t, i);
        if (t % 3 == 1) memcpy(rnd, "\xFF\xD8\xFF", 3);
        if (t % 3 == 2) memcpy(rnd, "\x89PNG\r\n\x1a\n", 8);
        struct deft_image im;
        long live = deft_alloc_live();
        if (deft_image_decode(rnd, sizeof rnd, NULL, &im) == DEFT_OK) deft_image_free(&im);
        CHECK(deft_alloc_live() == live, "random %d leaked", t);
    }
    expect_fail((const uint8_t *)"hello world", 11, "text");
    /* Decompression bombs: a header claiming huge sizes fails before allocating. */
    struct deft_image im;
    CHECK(deft_image_load(P("bomb.png"), NULL, &im) == DEFT_ERR_INVALID_ARG, "png bomb: %s", deft_last_error());
    CHECK(strstr(deft_last_error(), "100000x100000") != NULL, "png bomb message: %s", deft_last_error());
    CHECK(deft_image_load(P("bomb.jpg"), NULL, &im) == DEFT_ERR_INVALID_ARG, "jpeg bomb: %s", deft_last_error());
    /* the limits are the user's to raise or lower */
    CHECK(deft_image_load(P("big.jpg"), NULL, &im) == DEFT_OK, "big.jpg loads: %s", deft_last_error());
    if (im.rgb) deft_image_free(&im);
    setenv("DEFT_MAX_IMAGE_SIDE", "8", 1);
    CHECK(deft_image_load(P("big.jpg"), NULL, &im) == DEFT_ERR_INVALID_ARG &&
              strstr(deft_last_error(), "DEFT_MAX_IMAGE_SIDE"), "DEFT_MAX_IMAGE_SIDE=8: %s", deft_last_error());
    unsetenv("DEFT_MAX_IMAGE_SIDE");
    setenv("DEFT_MAX_IMAGE_PIXELS", "100", 1);
    CHECK(deft_image_load(P("big.jpg"), NULL, &im) == DEFT_ERR_INVALID_ARG, "DEFT_MAX_IMAGE_PIXELS=100: %s",
          deft_last_error());
    unsetenv("DEFT_MAX_IMAGE_PIXELS");
    CHECK(deft_image_load(P("nope.jpg"), NULL, &im) == DEFT_ERR_IO, "missing file");
    CHECK(strstr(deft_last_error(), "nope.jpg") != NULL, "message names the file: %s", deft_last_error());

    CHECK(deft_alloc_live() == live0, "leaked %ld blocks overall", deft_alloc_live() - live0);
    return test_summary();
}

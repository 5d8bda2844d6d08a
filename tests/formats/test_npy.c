/* test_npy.c - .npy read/write: round trips of every supported dtype,
 * cross-checks with NumPy both ways (formats 1.0/2.0/3.0), handcrafted bad
 * files (each a FORMAT error naming the file and the problem), random
 * corruption and allocation failures without crashes or leaks. */
#include <string.h>
#include <stdint.h>
#include "deft_test.h"
#include "deft/io.h"

static char path_buf[512];
static const char *tmp_path(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_tmpdir(), name);
    return path_buf;
}

static bool have_numpy(void) {
    static int have = -1;
    if (have < 0) have = system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
    return have == 1;
}

static void write_raw(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

/* deft_tensor_create itself refuses what its strides cannot hold, zero dimensions included */
static void test_create_zero_dim_huge(void) {
    struct deft_tensor *t = NULL;
    struct deft_shape s = {.ndim = 3, .d = {0, 8937033706420538937LL, 4}};
    CHECK(deft_tensor_create(DEFT_F32, &s, &t) == DEFT_ERR_INVALID_ARG && t == NULL, "zero dim + huge dim refused");
    struct deft_shape e = {.ndim = 3, .d = {0, 1000, 4}};
    CHECK_OK(deft_tensor_create(DEFT_F32, &e, &t));
    if (t) CHECK(deft_tensor_numel(t) == 0 && t->stride[0] == 4000, "an empty tensor keeps its strides");
    deft_tensor_free(t);
}

static void test_round_trip_f32(void) {
    long live0 = deft_alloc_live();
    struct deft_tensor *t, *r = NULL;
    struct deft_shape s = {.ndim = 3, .d = {2, 3, 5}};
    CHECK_OK(deft_tensor_create(DEFT_F32, &s, &t));
    float *d = t->data;
    for (int i = 0; i < 30; i++) d[i] = (float)i * 0.25f - 3.0f;
    const char *p = tmp_path("rt.npy");
    CHECK_OK(deft_npy_write(p, t));
    CHECK_OK(deft_npy_read(p, &r));
    if (r) {
        CHECK(r->dtype == DEFT_F32 && deft_shape_equal(&r->shape, &s), "dtype/shape");
        CHECK(!memcmp(r->data, t->data, 30 * 4), "data");
    }
    /* the data starts on a 64-byte boundary as NumPy writes it */
    void *raw;
    size_t len;
    CHECK_OK(deft_file_read(p, 1 << 20, &raw, &len));
    CHECK(len == 128 + 120 && ((char *)raw)[127] == '\n', "64-byte aligned header (len %zu)", len);
    deft_free(raw);
    deft_tensor_free(t);
    deft_tensor_free(r);
    CHECK(deft_alloc_live() == live0, "leak");
}

static void test_dtypes(void) {
    static const enum deft_dtype dts[] = {DEFT_F64, DEFT_F16, DEFT_I64, DEFT_I32, DEFT_U8, DEFT_I8};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        struct deft_tensor *t, *r = NULL, *f = NULL;
        struct deft_shape s = {.ndim = 2, .d = {3, 4}};
        CHECK_OK(deft_tensor_create(dts[k], &s, &t));
        for (int i = 0; i < 12; i++) {
            int v = i - 5;
            switch (dts[k]) {
            case DEFT_F64: ((double *)t->data)[i] = v * 0.5; break;
            case DEFT_F16: { /* v*0.5 as half: exact small values */
                float fv = v * 0.5f;
                uint32_t b;
                memcpy(&b, &fv, 4);
                uint16_t h = (uint16_t)(((b >> 16) & 0x8000) |
                                        (fv == 0 ? 0 : ((((b >> 23) & 0xff) - 112) << 10) | ((b >> 13) & 0x3ff)));
                ((uint16_t *)t->data)[i] = h;
                break;
            }
            case DEFT_I64: ((int64_t *)t->data)[i] = v; break;
            case DEFT_I32: ((int32_t *)t->data)[i] = v; break;
            case DEFT_U8: ((uint8_t *)t->data)[i] = (uint8_t)(v + 5); break;
            case DEFT_I8: ((int8_t *)t->data)[i] = (int8_t)v; break;
            default: break;
            }
        }
        const char *p = tmp_path("dt.npy");
        CHECK_OK(deft_npy_write(p, t));
        CHECK_OK(deft_npy_read(p, &r));
        CHECK(r && r->dtype == dts[k] && !memcmp(r->data, t->data, deft_tensor_nbytes(t)),
              "%s round trip", deft_dtype_name(dts[k]));
        CHECK_OK(deft_npy_read_f32(p, &f));
        if (f) {
            float want0 = dts[k] == DEFT_U8 ? 0.0f : (dts[k] == DEFT_F64 || dts[k] == DEFT_F16) ? -2.5f : -5.0f;
            float want11 = dts[k] == DEFT_U8 ? 11.0f : (dts[k] == DEFT_F64 || dts[k] == DEFT_F16) ? 3.0f : 6.0f;
            const float *fd = f->data;
            CHECK(f->dtype == DEFT_F32 && fd[0] == want0 && fd[11] == want11,
                  "%s -> f32: %g %g", deft_dtype_name(dts[k]), fd[0], fd[11]);
        }
        deft_tensor_free(t);
        deft_tensor_free(r);
        deft_tensor_free(f);
    }
    /* bf16 has no .npy dtype */
    struct deft_tensor *b;
    struct deft_shape s1 = {.ndim = 1, .d = {2}};
    CHECK_OK(deft_tensor_create(DEFT_BF16, &s1, &b));
    CHECK(deft_npy_write(tmp_path("bf.npy"), b) == DEFT_ERR_UNSUPPORTED, "bf16 refused");
    deft_tensor_free(b);
}

static void test_shapes(void) {
    /* scalar, empty, 1-D, rank 6, and a strided (transposed) view */
    struct deft_shape shapes[] = {{0, {0}}, {.ndim = 2, .d = {0, 7}}, {.ndim = 1, .d = {5}},
                                  {.ndim = 6, .d = {1, 2, 1, 3, 1, 2}}};
    for (size_t k = 0; k < 4; k++) {
        struct deft_tensor *t, *r = NULL;
        CHECK_OK(deft_tensor_create(DEFT_F32, &shapes[k], &t));
        for (int64_t i = 0; i < deft_tensor_numel(t); i++) ((float *)t->data)[i] = (float)i + 0.5f;
        CHECK_OK(deft_npy_write(tmp_path("s.npy"), t));
        CHECK_OK(deft_npy_read(tmp_path("s.npy"), &r));
        CHECK(r && deft_shape_equal(&r->shape, &shapes[k]) &&
                  !memcmp(r->data, t->data, deft_tensor_nbytes(t)),
              "shape case %zu", k);
        deft_tensor_free(t);
        deft_tensor_free(r);
    }
    float m[6] = {1, 2, 3, 4, 5, 6}; /* [2,3] row-major; view as its transpose [3,2] */
    struct deft_shape ts = {.ndim = 2, .d = {3, 2}};
    struct deft_tensor v = deft_tensor_view(DEFT_F32, &ts, m), *r = NULL;
    v.stride[0] = 1;
    v.stride[1] = 3;
    CHECK_OK(deft_npy_write(tmp_path("tr.npy"), &v));
    CHECK_OK(deft_npy_read(tmp_path("tr.npy"), &r));
    const float want[6] = {1, 4, 2, 5, 3, 6};
    CHECK(r && !memcmp(r->data, want, sizeof want), "strided view written in C order");
    deft_tensor_free(r);
}

static void test_numpy_cross(void) {
    if (!have_numpy()) {
        printf("numpy not available: cross-checks skipped\n");
        return;
    }
    /* NumPy writes: several dtypes and format versions */
    char code[4096];
    snprintf(code, sizeof code,
             "import numpy as np\n"
             "from numpy.lib import format as F\n"
             "d='%s'\n"
             "a=(np.arange(24,dtype=np.float64).reshape(2,3,4)*0.5-3)\n"
             "np.save(d+'/np_f4.npy',a.astype('<f4'))\n"
             "np.save(d+'/np_f8.npy',a)\n"
             "np.save(d+'/np_i8.npy',(a*2).astype('<i8'))\n"
             "np.save(d+'/np_i4.npy',(a*2).astype('<i4'))\n"
             "np.save(d+'/np_u1.npy',(a*2+6).astype('|u1'))\n"
             "np.save(d+'/np_scalar.npy',np.float32(7.5))\n"
             "np.save(d+'/np_fortran.npy',np.asfortranarray(a.astype('<f4')))\n"
             "np.save(d+'/np_be.npy',a.astype('>f4'))\n"
             "np.save(d+'/np_c8.npy',a.astype('<c8'))\n"
             "[F.write_array(open(d+'/np_v%%d.npy'%%v,'wb'),a.astype('<f4'),version=(v,0)) for v in (1,2,3)]\n",
             test_tmpdir());
    char script[600];
    snprintf(script, sizeof script, "%s/gen.py", test_tmpdir());
    write_raw(script, code, strlen(code));
    char cmd[800];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s", script);
    CHECK(system(cmd) == 0, "numpy generator ran");
    static const char *const ok_files[] = {"np_f4", "np_f8", "np_i8", "np_i4", "np_u1", "np_v1",
                                           "np_v2", "np_v3"};
    for (size_t k = 0; k < sizeof ok_files / sizeof ok_files[0]; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s.npy", test_tmpdir(), ok_files[k]);
        struct deft_tensor *t = NULL;
        CHECK_OK(deft_npy_read_f32(p, &t));
        if (!t) continue;
        CHECK(t->shape.ndim == 3 && t->shape.d[0] == 2 && t->shape.d[1] == 3 && t->shape.d[2] == 4,
              "%s shape", ok_files[k]);
        const float *d = t->data;
        int bad = 0;
        for (int i = 0; i < 24; i++) {
            double a = i * 0.5 - 3;
            double want = !strcmp(ok_files[k], "np_i8") || !strcmp(ok_files[k], "np_i4") ? (double)(int64_t)(a * 2)
                          : !strcmp(ok_files[k], "np_u1") ? (double)(uint8_t)(int)(a * 2 + 6) : a;
            bad += d[i] != (float)want;
        }
        CHECK(bad == 0, "%s values (%d wrong)", ok_files[k], bad);
        deft_tensor_free(t);
    }
    struct deft_tensor *sc = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/np_scalar.npy", test_tmpdir());
    CHECK_OK(deft_npy_read(p, &sc));
    CHECK(sc && sc->shape.ndim == 0 && ((float *)sc->data)[0] == 7.5f, "numpy scalar");
    deft_tensor_free(sc);
    static const struct { const char *file, *msg; } bad[] = {
        {"np_fortran", "fortran_order"}, {"np_be", "big-endian"}, {"np_c8", "unsupported dtype"}};
    for (size_t k = 0; k < 3; k++) {
        struct deft_tensor *t = NULL;
        snprintf(p, sizeof p, "%s/%s.npy", test_tmpdir(), bad[k].file);
        enum deft_status s = deft_npy_read(p, &t);
        CHECK(s == DEFT_ERR_FORMAT && t == NULL && strstr(deft_last_error(), bad[k].msg) &&
                  strstr(deft_last_error(), p),
              "%s: %s", bad[k].file, deft_last_error());
    }
    /* NumPy reads what we write */
    struct deft_tensor *t;
    struct deft_shape s = {.ndim = 4, .d = {2, 1, 3, 2}};
    CHECK_OK(deft_tensor_create(DEFT_F32, &s, &t));
    for (int i = 0; i < 12; i++) ((float *)t->data)[i] = (float)i / 3.0f;
    CHECK_OK(deft_npy_write(tmp_path("ours_f4.npy"), t));
    deft_tensor_free(t);
    struct deft_shape s2 = {.ndim = 1, .d = {5}};
    CHECK_OK(deft_tensor_create(DEFT_I64, &s2, &t));
    for (int i = 0; i < 5; i++) ((int64_t *)t->data)[i] = (int64_t)i * 1000000000000LL;
    CHECK_OK(deft_npy_write(tmp_path("ours_i8.npy"), t));
    deft_tensor_free(t);
    snprintf(code, sizeof code,
             "import numpy as np\n"
             "d='%s'\n"
             "a=np.load(d+'/ours_f4.npy')\n"
             "assert a.dtype==np.float32 and a.shape==(2,1,3,2), (a.dtype,a.shape)\n"
             "assert (a.ravel()==(np.arange(12,dtype=np.float32)/np.float32(3))).all()\n"
             "b=np.load(d+'/ours_i8.npy')\n"
             "assert b.dtype==np.int64 and b.shape==(5,) and b[4]==4000000000000\n",
             test_tmpdir());
    write_raw(script, code, strlen(code));
    CHECK(system(cmd) == 0, "numpy reads our files");
}

/* A valid small file image to corrupt. */
static size_t make_valid(unsigned char *buf, size_t cap) {
    struct deft_tensor *t;
    struct deft_shape s = {.ndim = 2, .d = {2, 3}};
    if (deft_tensor_create(DEFT_F32, &s, &t)) return 0;
    for (int i = 0; i < 6; i++) ((float *)t->data)[i] = (float)i;
    enum deft_status st = deft_npy_write(tmp_path("valid.npy"), t);
    deft_tensor_free(t);
    if (st) return 0;
    FILE *f = fopen(tmp_path("valid.npy"), "rb");
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Write a file with a given header dict (v1.0) and `data_len` zero bytes. */
static void expect_bad_header(const char *dict, size_t data_len, const char *want, const char *what) {
    unsigned char buf[1024] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    size_t hl = strlen(dict);
    buf[8] = (unsigned char)(hl & 0xff);
    buf[9] = (unsigned char)(hl >> 8);
    memcpy(buf + 10, dict, hl);
    const char *p = tmp_path("bad.npy");
    write_raw(p, buf, 10 + hl + data_len);
    long live0 = deft_alloc_live();
    struct deft_tensor *t = NULL;
    enum deft_status s = deft_npy_read(p, &t);
    CHECK(s == DEFT_ERR_FORMAT && t == NULL, "%s: got %s", what, deft_status_str(s));
    CHECK(strstr(deft_last_error(), want) && strstr(deft_last_error(), p) &&
              !strchr(deft_last_error(), '\n'),
          "%s: message '%s' lacks '%s'", what, deft_last_error(), want);
    /* the in-memory parser agrees */
    s = deft_npy_parse(buf, 10 + hl + data_len, "mem", 0, &t);
    CHECK(s == DEFT_ERR_FORMAT && t == NULL, "%s (memory): got %s", what, deft_status_str(s));
    CHECK(deft_alloc_live() == live0, "%s: leak", what);
}

static void test_bad_files(void) {
    unsigned char valid[512];
    size_t n = make_valid(valid, sizeof valid);
    CHECK(n == 128 + 24, "valid image %zu", n);
    /* truncated at every length */
    long live0 = deft_alloc_live();
    int ok = 0;
    for (size_t len = 0; len < n; len++) {
        struct deft_tensor *t = NULL;
        ok += deft_npy_parse(valid, len, "trunc", 0, &t) == DEFT_OK;
        deft_tensor_free(t);
    }
    CHECK(ok == 0, "%d truncations accepted", ok);
    const char *p = tmp_path("trunc.npy");
    write_raw(p, valid, n - 5);
    struct deft_tensor *t = NULL;
    CHECK(deft_npy_read(p, &t) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "truncated data"),
          "truncated file: %s", deft_last_error());
    write_raw(p, valid, 50);
    CHECK(deft_npy_read(p, &t) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "truncated header"),
          "truncated header: %s", deft_last_error());
    CHECK(deft_alloc_live() == live0, "truncation leak");

    unsigned char magic[sizeof valid];
    memcpy(magic, valid, n);
    magic[1] = 'X';
    write_raw(p, magic, n);
    CHECK(deft_npy_read(p, &t) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "bad magic"),
          "bad magic: %s", deft_last_error());
    memcpy(magic, valid, n);
    magic[6] = 4;
    write_raw(p, magic, n);
    CHECK(deft_npy_read(p, &t) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "version 4.0"),
          "future version: %s", deft_last_error());
    CHECK(deft_npy_read(tmp_path("does-not-exist.npy"), &t) == DEFT_ERR_NOT_FOUND &&
              strstr(deft_last_error(), "does-not-exist.npy"),
          "missing file: %s", deft_last_error());

    expect_bad_header("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", 16, "unsupported dtype", "complex");
    expect_bad_header("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }\n", 4, "unsupported dtype", "int16");
    expect_bad_header("{'descr': 'float32', 'fortran_order': False, 'shape': (2,), }\n", 8, "unsupported dtype", "name descr");
    expect_bad_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", 16, "fortran_order", "fortran");
    expect_bad_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8, "big-endian", "big-endian");
    expect_bad_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", 8, "structured", "structured");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776, 1099511627776), }\n", 0, "too large", "huge shape");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", 0, "overflows", "dim overflow");
    /* a zero dimension makes the element count 0, but the strides still multiply the others */
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8937033706420538937, 4), }\n", 0, "too large", "zero dim, huge strides");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1), }\n", 4, "dimensions", "rank 7");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", 0, "shape", "negative dim");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }\n", 8, "truncated data", "short data");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 12, "unexpected bytes", "trailing data");
    expect_bad_header("{'descr': '<f4', 'shape': (2,), }\n", 8, "fortran_order", "missing key");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n", 8, "unexpected header key", "extra key");
    expect_bad_header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8, "duplicate", "duplicate key");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk\n", 8, "junk", "junk after dict");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }\n", 8, "tuple", "list shape");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }\n", 8, "shape", "(2) is not a tuple");
    expect_bad_header("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }\n", 8, "fortran_order", "bad bool");
    expect_bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), \n", 8, "malformed", "unclosed dict");
    expect_bad_header("", 0, "not a dict", "empty header");
    /* header length beyond the file */
    memcpy(magic, valid, n);
    magic[8] = 0xff;
    magic[9] = 0xff;
    write_raw(p, magic, n);
    CHECK(deft_npy_read(p, &t) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "truncated header"),
          "header beyond file: %s", deft_last_error());
    /* v2 header claiming 4 GB */
    unsigned char v2[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff, '{', '}', ' ', '\n'};
    CHECK(deft_npy_parse(v2, sizeof v2, "v2", 0, &t) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "header too large"),
          "v2 huge header: %s", deft_last_error());
}

static void test_random_corruption(void) {
    unsigned char valid[512], buf[512];
    size_t n = make_valid(valid, sizeof valid);
    long live0 = deft_alloc_live();
    int accepted = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(buf, valid, n);
        int flips = 1 + (int)(deft_rng_u64(3, (uint64_t)it, 0) % 3);
        for (int f = 0; f < flips; f++) {
            size_t at = deft_rng_u64(3, (uint64_t)it, (uint64_t)f + 1) % 128; /* header region */
            buf[at] ^= (unsigned char)(1u << (deft_rng_u64(3, (uint64_t)it, (uint64_t)f + 9) % 8));
        }
        struct deft_tensor *t = NULL;
        enum deft_status s = deft_npy_parse(buf, n, "flip", DEFT_NPY_TO_F32, &t);
        if (s == DEFT_OK) {
            accepted++;
            CHECK(t && (size_t)deft_tensor_nbytes(t) <= n, "accepted flip is consistent");
        } else {
            CHECK(t == NULL && s == DEFT_ERR_FORMAT, "flip %d: %s", it, deft_status_str(s));
        }
        deft_tensor_free(t);
    }
    printf("header bit flips: %d of 2000 still valid (padding bytes)\n", accepted);
    CHECK(deft_alloc_live() == live0, "corruption leak");
}

static void test_alloc_failures(void) {
    unsigned char valid[512];
    size_t n = make_valid(valid, sizeof valid);
    (void)n;
    long live0 = deft_alloc_live();
    int fails = 0;
    for (long k = 1; k < 100; k++) {
        struct deft_tensor *t = NULL;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_npy_read_f32(tmp_path("valid.npy"), &t);
        deft_alloc_fail_after(0);
        deft_tensor_free(t);
        if (!s) break;
        fails++;
        CHECK(s == DEFT_ERR_NOMEM, "k=%ld: %s", k, deft_status_str(s));
    }
    CHECK(fails >= 2, "fault loop ran (%d)", fails);
    CHECK(deft_alloc_live() == live0, "fault loop leak");
}

int main(void) {
    test_create_zero_dim_huge();
    test_round_trip_f32();
    test_dtypes();
    test_shapes();
    test_numpy_cross();
    test_bad_files();
    test_random_corruption();
    test_alloc_failures();
    return test_summary();
}

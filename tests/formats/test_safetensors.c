/* test_safetensors.c - safetensors read/write: round trip of every dtype with
 * metadata, the written file checked by an independent Python (json+struct)
 * reader, the handcrafted corrupt set (truncations, header length, bad JSON,
 * offsets out of range / overlapping / with holes, dtype-shape mismatch,
 * duplicate names, bad metadata), random byte flips, allocation failures,
 * and the atomic-write guarantees. No crash and no leak in any case. */
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "deft_test.h"
#include "deft/io.h"

static char path_buf[512];
static const char *tmp_path(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_tmpdir(), name);
    return path_buf;
}

static void write_raw(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

#define NT 6
static struct deft_tensor *tens[NT];
static const char *const names[NT] = {"layer1.0.conv1.weight", "fc.bias", "a_bf16", "z.i64",
                                      "empty", "scalar"};
static const enum deft_dtype dts[NT] = {DEFT_F32, DEFT_F64, DEFT_BF16, DEFT_I64, DEFT_U8, DEFT_F16};
static const struct deft_shape shs[NT] = {{4, {4, 3, 3, 3}}, {1, {4}}, {2, {2, 3}}, {1, {3}},
                                          {2, {0, 5}}, {0, {0}}};

static void make_tensors(void) {
    for (int i = 0; i < NT; i++) {
        if (deft_tensor_create(dts[i], &shs[i], &tens[i])) return;
        unsigned char *b = tens[i]->data;
        for (size_t k = 0; k < deft_tensor_nbytes(tens[i]); k++) b[k] = (unsigned char)(k * 7 + i);
    }
    float *w = tens[0]->data;
    for (int k = 0; k < 108; k++) w[k] = (float)k * 0.5f - 10.0f;
}

static const struct deft_kv meta[] = {
    {"format", "pt"},
    {"train_state", "{\"epoch\": 3, \"note\": \"quote \\\" backslash \\\\ tab\t nl\n caf\xc3\xa9\"}"},
};

static void test_round_trip(void) {
    long live0 = deft_alloc_live();
    struct deft_named_tensor list[NT];
    for (int i = 0; i < NT; i++) list[i] = (struct deft_named_tensor){(char *)names[i], tens[i]};
    const char *p = tmp_path("rt.safetensors");
    CHECK_OK(deft_safetensors_write(p, list, NT, meta, 2));
    struct deft_safetensors *st = NULL;
    CHECK_OK(deft_safetensors_read(p, &st));
    if (st) {
        CHECK(st->n_tensors == NT && st->n_meta == 2, "counts %d %d", st->n_tensors, st->n_meta);
        for (int i = 0; i < NT; i++) {
            struct deft_tensor *t = deft_safetensors_find(st, names[i]);
            CHECK(t && t->dtype == dts[i] && deft_shape_equal(&t->shape, &shs[i]) &&
                      !memcmp(t->data, tens[i]->data, deft_tensor_nbytes(tens[i])),
                  "tensor %s", names[i]);
        }
        CHECK(deft_safetensors_find(st, "nope") == NULL, "find missing");
        const char *ts = deft_safetensors_meta(st, "train_state");
        CHECK(ts && !strcmp(ts, meta[1].value), "metadata escapes survive: %s", ts ? ts : "");
        CHECK(deft_safetensors_meta(st, "format") && !strcmp(deft_safetensors_meta(st, "format"), "pt"), "meta");
        /* tensors come in file order, which is name order for our writer */
        for (int i = 1; i < st->n_tensors; i++)
            CHECK(strcmp(st->tensors[i - 1].name, st->tensors[i].name) < 0, "sorted");
    }
    deft_safetensors_free(st);
    /* the memory parser sees the same */
    void *img;
    size_t len;
    CHECK_OK(deft_file_read(p, 1 << 24, &img, &len));
    st = NULL;
    CHECK_OK(deft_safetensors_parse(img, len, "mem", &st));
    CHECK(st && st->n_tensors == NT, "memory parse");
    deft_safetensors_free(st);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | ((unsigned char *)img)[i];
    CHECK(hl % 8 == 0 && ((char *)img)[8 + hl - 1] != 0, "header padded to 8 (%llu)", (unsigned long long)hl);
    deft_free(img);
    /* strided source written in C order */
    float m[6] = {1, 2, 3, 4, 5, 6};
    struct deft_shape ts = {.ndim = 2, .d = {3, 2}};
    struct deft_tensor v = deft_tensor_view(DEFT_F32, &ts, m);
    v.stride[0] = 1;
    v.stride[1] = 3;
    struct deft_named_tensor one = {"t", &v};
    CHECK_OK(deft_safetensors_write(tmp_path("tr.safetensors"), &one, 1, NULL, 0));
    st = NULL;
    CHECK_OK(deft_safetensors_read(tmp_path("tr.safetensors"), &st));
    const float want[6] = {1, 4, 2, 5, 3, 6};
    CHECK(st && !memcmp(st->tensors[0].tensor->data, want, sizeof want), "strided");
    deft_safetensors_free(st);
    /* writer refuses duplicates and reserved names, leaving no file */
    struct deft_named_tensor dup[2] = {{"a", tens[1]}, {"a", tens[1]}};
    CHECK(deft_safetensors_write(tmp_path("dup.safetensors"), dup, 2, NULL, 0) == DEFT_ERR_INVALID_ARG,
          "duplicate names refused");
    CHECK(access(tmp_path("dup.safetensors"), F_OK) != 0, "no file left behind");
    struct deft_named_tensor res = {"__metadata__", tens[1]};
    CHECK(deft_safetensors_write(tmp_path("res.safetensors"), &res, 1, NULL, 0) == DEFT_ERR_INVALID_ARG,
          "reserved name refused");
    struct deft_kv dm[2] = {{"k", "1"}, {"k", "2"}};
    CHECK(deft_safetensors_write(tmp_path("dm.safetensors"), NULL, 0, dm, 2) == DEFT_ERR_INVALID_ARG,
          "duplicate metadata refused");
    CHECK(deft_alloc_live() == live0, "round trip leak");
}

/* An independent reader: Python's json + struct check our layout and values. */
static void test_python_reader(void) {
    if (system("/usr/bin/python3 -c 'import json, struct' >/dev/null 2>&1") != 0) {
        printf("python3 not available: cross-check skipped\n");
        return;
    }
    char code[4096], script[600], cmd[1300];
    snprintf(code, sizeof code,
             "import json, struct, sys\n"
             "b = open('%s/rt.safetensors','rb').read()\n"
             "n = struct.unpack('<Q', b[:8])[0]\n"
             "assert n %% 8 == 0 and 8 + n <= len(b)\n"
             "h = b[8:8+n]\n"
             "assert h[:1] == b'{' and h.rstrip(b' ') == h[:len(h.rstrip(b' '))]\n"
             "def no_dups(pairs):\n"
             "    keys = [k for k, _ in pairs]\n"
             "    assert len(keys) == len(set(keys)), keys\n"
             "    return dict(pairs)\n"
             "j = json.loads(h.decode('utf-8'), object_pairs_hook=no_dups)\n"
             "m = j.pop('__metadata__')\n"
             "assert m['format'] == 'pt' and m['train_state'].startswith('{\\\"epoch\\\": 3, ')\n"
             "assert m['train_state'].endswith('caf\\u00e9\"}')\n"
             "sizes = {'F32':4,'F64':8,'BF16':2,'F16':2,'I64':8,'U8':1}\n"
             "names = sorted(j)\n"
             "assert list(j) == names, list(j)\n"
             "pos = 0; data = b[8+n:]\n"
             "for k in names:\n"
             "    e = j[k]; s, t = e['data_offsets']\n"
             "    cnt = 1\n"
             "    for d in e['shape']: cnt *= d\n"
             "    assert s == pos and t - s == cnt * sizes[e['dtype']], (k, e)\n"
             "    pos = t\n"
             "assert pos == len(data)\n"
             "w = j['layer1.0.conv1.weight']; s, t = w['data_offsets']\n"
             "assert w['dtype'] == 'F32' and w['shape'] == [4,3,3,3]\n"
             "v = struct.unpack('<108f', data[s:t])\n"
             "assert all(v[i] == i*0.5-10 for i in range(108))\n"
             "assert j['scalar']['shape'] == [] and j['empty']['shape'] == [0,5]\n",
             test_tmpdir());
    snprintf(script, sizeof script, "%s/check.py", test_tmpdir());
    write_raw(script, code, strlen(code));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s", script);
    CHECK(system(cmd) == 0, "python json+struct reader accepts our file");
}

/* A header + data image built by hand. */
static size_t build(unsigned char *buf, const char *header, size_t data_len, uint64_t claimed) {
    size_t hl = strlen(header);
    uint64_t n = claimed ? claimed : hl;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, 0x11, data_len);
    return 8 + hl + data_len;
}

static void expect_bad(const char *header, size_t data_len, uint64_t claimed, enum deft_status want,
                       const char *msg, const char *what) {
    static unsigned char buf[8192];
    size_t n = build(buf, header, data_len, claimed);
    long live0 = deft_alloc_live();
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_safetensors_parse(buf, n, "mem.safetensors", &st);
    CHECK(s == want && st == NULL, "%s: got %s (%s)", what, deft_status_str(s), deft_last_error());
    CHECK(!msg || strstr(deft_last_error(), msg), "%s: message '%s' lacks '%s'", what,
          deft_last_error(), msg);
    const char *p = tmp_path("bad.safetensors");
    write_raw(p, buf, n);
    s = deft_safetensors_read(p, &st);
    CHECK(s == want && st == NULL && strstr(deft_last_error(), p), "%s (file): %s", what,
          deft_last_error());
    CHECK(deft_alloc_live() == live0, "%s: leak", what);
}

#define T1(extra) "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}" extra "}"

static void test_corrupt_set(void) {
    const enum deft_status F = DEFT_ERR_FORMAT;
    /* sanity: the base case is valid */
    static unsigned char buf[256];
    size_t n = build(buf, T1(""), 8, 0);
    struct deft_safetensors *st = NULL;
    CHECK_OK(deft_safetensors_parse(buf, n, "base", &st));
    deft_safetensors_free(st);

    expect_bad(T1(""), 8, 1u << 20, F, "beyond the file size", "header length beyond file");
    expect_bad(T1(""), 8, 200000000, F, "100 MB", "header length beyond limit");
    expect_bad(T1(""), 8, (uint64_t)-1, F, "beyond", "header length 2^64-1");
    expect_bad("", 0, 0, F, "does not start", "empty header");
    expect_bad("[1, 2]  ", 0, 0, F, "does not start", "array header");
    expect_bad("{\"a\":", 0, 0, F, "not valid JSON", "bad JSON");
    expect_bad("{\"a\": nul}", 0, 0, F, "not valid JSON", "bad literal");
    expect_bad(T1("") "xx", 8, 0, F, "junk", "junk after JSON");
    expect_bad(T1("") "\n", 8, 0, F, "junk", "newline padding");
    expect_bad("{\"a\":[]}", 0, 0, F, "not an object", "entry not object");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, 0, F, "data_offsets", "no offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, 0, F, "shape", "no shape");
    expect_bad("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, F, "dtype", "no dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, 0, F, "unknown field", "unknown field");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, F, "duplicate field", "duplicate field");
    expect_bad("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, DEFT_ERR_UNSUPPORTED, "Q7", "unknown dtype");
    expect_bad("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 0, DEFT_ERR_UNSUPPORTED, "F8_E4M3", "fp8");
    expect_bad("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, F, "dtype", "numeric dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, F, "shape", "negative dim");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,10]}}", 10, 0, F, "shape", "fractional dim");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, 0, F, "shape", "string dim");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, 0, F, "dimensions", "rank 7");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, 0, F, "overflows", "shape overflow");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, F, "span", "dtype/shape mismatch");
    expect_bad("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, F, "span", "dtype size mismatch");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, F, "end before", "reversed offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, F, "data_offsets", "one offset");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8, 0, F, "data_offsets", "negative offset");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1e300,1e300]}}", 8, 0, F, "data_offsets", "huge offset");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8, 0, F, "beyond the data", "offsets out of range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0, F, "beyond the data", "data truncated");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, F, "overlap", "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, F, "overlap", "same range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, 0, F, "hole", "hole");
    expect_bad(T1(""), 12, 0, F, "cover", "unused trailing data");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, 0, F, "duplicate tensor", "duplicate names");
    expect_bad(T1(",\"__metadata__\":{\"k\":1}"), 8, 0, F, "not a string", "metadata number");
    expect_bad(T1(",\"__metadata__\":[\"k\"]"), 8, 0, F, "__metadata__", "metadata array");
    expect_bad(T1(",\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}"), 8, 0, F, "duplicate __metadata__ key", "duplicate metadata key");
    expect_bad(T1(",\"__metadata__\":{},\"__metadata__\":{}"), 8, 0, F, "duplicate __metadata__", "two metadata");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, 0, F, "not valid JSON", "unclosed");
    /* deep nesting stops at cJSON's limit, no stack overflow */
    static char deep[6000];
    size_t k = 0;
    deep[k++] = '{';
    deep[k++] = '"';
    deep[k++] = 'a';
    deep[k++] = '"';
    deep[k++] = ':';
    for (int i = 0; i < 2500; i++) deep[k++] = '[';
    deep[k] = 0;
    expect_bad(deep, 0, 0, F, NULL, "deep nesting");
    expect_bad("x", 0, 0, F, "does not start", "tiny");
    /* files too short for the length field */
    for (size_t len = 0; len < 8; len++) {
        struct deft_safetensors *s2 = NULL;
        CHECK(deft_safetensors_parse("\x10\0\0\0\0\0\0\0", len, "short", &s2) == F, "len %zu", len);
    }
    CHECK(deft_safetensors_read(tmp_path("missing.safetensors"), &st) == DEFT_ERR_NOT_FOUND &&
              strstr(deft_last_error(), "missing.safetensors"),
          "missing file: %s", deft_last_error());
}

static void test_truncations_and_flips(void) {
    struct deft_named_tensor list[NT];
    for (int i = 0; i < NT; i++) list[i] = (struct deft_named_tensor){(char *)names[i], tens[i]};
    const char *p = tmp_path("valid.safetensors");
    CHECK_OK(deft_safetensors_write(p, list, NT, meta, 2));
    void *img;
    size_t len;
    CHECK_OK(deft_file_read(p, 1 << 24, &img, &len));
    unsigned char *v = img, *buf = malloc(len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | v[i];
    long live0 = deft_alloc_live();
    /* every truncation is an error (the data must cover the last tensor) */
    int accepted = 0;
    for (size_t n = 0; n < len; n++) {
        struct deft_safetensors *st = NULL;
        accepted += deft_safetensors_parse(v, n, "trunc", &st) == DEFT_OK;
        deft_safetensors_free(st);
    }
    CHECK(accepted == 0, "%d truncations accepted", accepted);
    for (size_t n = 0; n < len; n += 37) {
        write_raw(tmp_path("trunc.safetensors"), v, n);
        struct deft_safetensors *st = NULL;
        CHECK(deft_safetensors_read(tmp_path("trunc.safetensors"), &st) == DEFT_ERR_FORMAT,
              "file truncated at %zu: %s", n, deft_last_error());
    }
    /* random single-byte flips inside the length field and JSON header: a
     * flip may leave a valid file (a changed name character, a digit of
     * padding), but must never crash or leak; accepted results must be sane */
    int errors = 0, ok = 0;
    for (int it = 0; it < 200; it++) {
        memcpy(buf, v, len);
        size_t at = deft_rng_u64(11, (uint64_t)it, 0) % (8 + hl);
        unsigned char nb = (unsigned char)deft_rng_u64(11, (uint64_t)it, 1);
        if (nb == buf[at]) nb ^= 0x20;
        buf[at] = nb;
        struct deft_safetensors *st = NULL;
        enum deft_status s = deft_safetensors_parse(buf, len, "flip", &st);
        if (s == DEFT_OK) {
            ok++;
            size_t total = 0;
            for (int i = 0; i < st->n_tensors; i++) total += deft_tensor_nbytes(st->tensors[i].tensor);
            CHECK(total == len - 8 - hl, "accepted flip %d covers the data", it);
        } else {
            errors++;
            CHECK(st == NULL && (s == DEFT_ERR_FORMAT || s == DEFT_ERR_UNSUPPORTED),
                  "flip %d: %s", it, deft_status_str(s));
        }
        deft_safetensors_free(st);
    }
    printf("header byte flips: %d rejected, %d still valid\n", errors, ok);
    CHECK(errors >= 100, "most header flips rejected (%d)", errors); /* the rest hit name or metadata text */
    /* multi-byte flips anywhere (data flips are valid files) */
    for (int it = 0; it < 1000; it++) {
        memcpy(buf, v, len);
        for (int f = 0; f < 4; f++)
            buf[deft_rng_u64(12, (uint64_t)it, (uint64_t)f) % len] ^= (unsigned char)(1 + it % 255);
        struct deft_safetensors *st = NULL;
        if (deft_safetensors_parse(buf, len, "flip", &st)) deft_clear_error();
        deft_safetensors_free(st);
    }
    CHECK(deft_alloc_live() == live0, "flip/truncation leak %ld", deft_alloc_live() - live0);
    free(buf);
    deft_free(img);
}

static void test_alloc_failures(void) {
    struct deft_named_tensor list[NT];
    for (int i = 0; i < NT; i++) list[i] = (struct deft_named_tensor){(char *)names[i], tens[i]};
    const char *p = tmp_path("oom.safetensors");
    long live0 = deft_alloc_live();
    int fails = 0;
    for (long k = 1; k < 1000; k++) {
        deft_alloc_fail_after(k);
        enum deft_status s = deft_safetensors_write(p, list, NT, meta, 2);
        deft_alloc_fail_after(0);
        if (!s) break;
        fails++;
        CHECK(s == DEFT_ERR_NOMEM, "write k=%ld: %s", k, deft_status_str(s));
    }
    CHECK(fails >= 3, "write fault loop ran (%d)", fails);
    fails = 0;
    for (long k = 1; k < 1000; k++) {
        struct deft_safetensors *st = NULL;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_safetensors_read(p, &st);
        deft_alloc_fail_after(0);
        deft_safetensors_free(st);
        if (!s) break;
        fails++;
        CHECK(s == DEFT_ERR_NOMEM, "read k=%ld: %s", k, deft_status_str(s));
    }
    CHECK(fails >= 10, "read fault loop ran (%d)", fails);
    CHECK(deft_alloc_live() == live0, "fault loops leak %ld", deft_alloc_live() - live0);
}

/* Atomic writes: a failing write (file size limit -> EFBIG) leaves the old
 * file intact and no temporary behind; errors name the path. */
static void test_atomic(void) {
    char p[512];
    snprintf(p, sizeof p, "%s", tmp_path("atomic.bin"));
    char old[] = "old contents";
    CHECK_OK(deft_file_write_atomic(p, old, sizeof old));
    static char big[1 << 16];
    memset(big, 'x', sizeof big);
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        enum deft_status s = deft_file_write_atomic(p, big, sizeof big);
        setrlimit(RLIMIT_FSIZE, &saved);
        CHECK(s == DEFT_ERR_IO && strstr(deft_last_error(), p), "write past limit: %s %s",
              deft_status_str(s), deft_last_error());
        void *d;
        size_t n;
        CHECK_OK(deft_file_read(p, 1 << 20, &d, &n));
        CHECK(n == sizeof old && !memcmp(d, old, n), "old file intact");
        deft_free(d);
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
        CHECK(access(tmp, F_OK) != 0, "temporary removed");
    }
    CHECK(deft_file_write_atomic(tmp_path("no/such/dir/x.bin"), old, 4) == DEFT_ERR_IO &&
              strstr(deft_last_error(), "no/such/dir/x.bin") &&
              strstr(deft_last_error(), "No such file"),
          "missing directory: %s", deft_last_error());
    /* the size limit of the reader */
    void *d;
    size_t n;
    CHECK(deft_file_read(p, 4, &d, &n) == DEFT_ERR_FORMAT && strstr(deft_last_error(), "too large"),
          "read limit: %s", deft_last_error());
    CHECK(deft_file_read(test_tmpdir(), 4, &d, &n) == DEFT_ERR_IO, "directory refused");
    /* streaming API with abort */
    struct deft_atomic_file *w = NULL;
    CHECK_OK(deft_atomic_open(p, &w));
    if (w) {
        CHECK_OK(deft_atomic_write(w, "new", 3));
        deft_atomic_abort(w);
    }
    CHECK_OK(deft_file_read(p, 1 << 20, &d, &n));
    CHECK(n == sizeof old, "abort keeps the old file");
    deft_free(d);
    /* a pipe through the growing path */
    CHECK(deft_file_read("/proc/self/status", 1 << 20, &d, &n) == DEFT_OK && n > 0 &&
              ((char *)d)[n] == 0,
          "procfs file read (size 0 in stat)");
    deft_free(d);
}

int main(void) {
    make_tensors();
    test_round_trip();
    test_python_reader();
    test_corrupt_set();
    test_truncations_and_flips();
    test_alloc_failures();
    test_atomic();
    for (int i = 0; i < NT; i++) deft_tensor_free(tens[i]);
    return test_summary();
}

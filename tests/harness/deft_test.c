/* deft_test.c - harness implementation. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "deft_test.h"

int test_passed, test_failed;
static char tmpdir[256];

int test_summary(void) {
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

void test_skip_part(const char *why) {
    printf("SKIP (part): %s\n", why);
    const char *log = getenv("DEFT_SKIP_LOG");
    FILE *f = log && *log ? fopen(log, "a") : NULL;
    if (f) {
        fprintf(f, "%s: %s\n", program_invocation_short_name, why);
        fclose(f);
    }
}

void test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

const char *test_source_dir(void) {
    const char *s = getenv("DEFT_SOURCE_DIR");
    return s ? s : ".";
}

const char *test_shared_dir(void) {
    static char buf[1024];
    const char *e = getenv("DEFT_SHARED_DIR"); /* the one override, as sh_lib.sh's SHARED */
    if (e && *e) snprintf(buf, sizeof buf, "%s", e);
    else snprintf(buf, sizeof buf, "%s/../shared", test_source_dir());
    struct stat st;
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return buf;
    return NULL;
}

bool test_have_torch(void) {
    static int have = -1;
    if (have < 0)
        have = system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
    return have == 1;
}

const char *test_tmpdir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/deft_test_XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return tmpdir;
}

double test_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

double test_max_rel_err(const float *a, const float *b, size_t n) {
    /* error relative to the tensor's scale: max|a-b| / max|b| */
    double scale = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs((double)b[i]));
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m / (scale > 0 ? scale : 1e-30);
}

int test_npy_write(const char *path, const float *data, const int64_t *shape, int ndim) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char hdr[256], sh[128] = "";
    size_t k = 0;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        k += (size_t)snprintf(sh + k, sizeof sh - k, "%lld,%s", (long long)shape[i],
                              i + 1 < ndim ? " " : "");
        n *= (size_t)shape[i];
    }
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                      sh);
    int total = 10 + hl + 1;
    int padn = (64 - total % 64) % 64;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned short len = (unsigned short)(hl + padn + 1);
    fputc(len & 0xff, f);
    fputc(len >> 8, f);
    fwrite(hdr, 1, (size_t)hl, f);
    for (int i = 0; i < padn; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, sizeof(float), n, f);
    return fclose(f);
}

float *test_npy_read(const char *path, int64_t *shape, int *ndim) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f);
        return NULL;
    }
    size_t hl = pre[8] | (size_t)pre[9] << 8;
    char hdr[4096];
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) {
        fclose(f);
        return NULL;
    }
    hdr[hl] = 0;
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True")) {
        fclose(f);
        return NULL;
    }
    const char *p = strchr(strstr(hdr, "'shape'"), '(') + 1;
    *ndim = 0;
    size_t n = 1;
    while (*p && *p != ')') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) { p++; continue; }
        shape[(*ndim)++] = v;
        n *= (size_t)v;
        p = end;
    }
    float *d = malloc(n * sizeof(float) + 1);
    if (d && fread(d, sizeof(float), n, f) != n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    return d;
}

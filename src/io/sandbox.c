/* sandbox.c - run a weight reader that trusts its input in a child process.
 *
 * libhdf5 believes the sizes a file declares: a 12 KB file the fuzzer forged
 * makes it allocate and zero 4 GB, another loops for minutes inside its
 * metadata cache. deft cannot fix the library, so the reader runs in a
 * fork()ed child with a time limit (alarm) and an address-space limit; the
 * tensors come back through a pipe in a small stream format that the parent
 * parses with bounds checks. A child that is killed, crashes or runs out of
 * memory is a DEFT_ERR_FORMAT naming the file, never the caller's problem.
 *
 * Limits: DEFT_SANDBOX_SECONDS (default 10 + 1 s per 8 MB of input) and
 * DEFT_SANDBOX_MEMORY_MB (default: the caller's address space + 2 GB + 8x the
 * input; not applied under AddressSanitizer, whose shadow memory would
 * exceed any such limit). DEFT_SANDBOX=0 runs the reader in this process (for a
 * debugger, or to fuzz libhdf5 itself). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "io/io_impl.h"

#if defined(__SANITIZE_ADDRESS__)
#define DEFT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFT_UNDER_ASAN 1
#endif
#endif

#ifdef DEFT_UNDER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define STREAM_MAGIC 0x53354844u /* "DH5S" */

/* ---- child: serialize ------------------------------------------------------ */

static bool put(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w, n -= (size_t)w;
    }
    return true;
}
static bool put_u64(int fd, uint64_t v) { return put(fd, &v, sizeof v); }
static bool put_str(int fd, const char *s) { return put_u64(fd, strlen(s)) && put(fd, s, strlen(s)); }

static bool put_tensor(int fd, const struct deft_named_tensor *t) {
    const struct deft_tensor *x = t->tensor;
    size_t nbytes;
    if (deft_io_tensor_bytes(x, t->name, &nbytes)) return false;
    void *buf = deft_malloc(nbytes + 1);
    if (!buf) return false;
    deft_io_gather(x, buf);
    bool ok = put_str(fd, t->name) && put_u64(fd, (uint64_t)x->dtype) && put_u64(fd, (uint64_t)x->shape.ndim);
    for (int d = 0; ok && d < x->shape.ndim; d++) ok = put_u64(fd, (uint64_t)x->shape.d[d]);
    ok = ok && put_u64(fd, nbytes) && put(fd, buf, nbytes);
    deft_free(buf);
    return ok;
}

/* Stream: magic, status, then the error message (status != OK) or the
 * metadata and the tensors, in the reader's order. */
static void child_run(int fd, deft_io_reader_fn fn, void *ctx) {
    struct deft_safetensors *st = NULL;
    enum deft_status s = fn(ctx, &st);
    bool ok = put_u64(fd, STREAM_MAGIC) && put_u64(fd, (uint64_t)s);
    if (s) {
        ok = ok && put_str(fd, deft_last_error());
    } else {
        ok = ok && put_u64(fd, (uint64_t)st->n_meta);
        for (int i = 0; ok && i < st->n_meta; i++) ok = put_str(fd, st->meta[i].key) && put_str(fd, st->meta[i].value);
        ok = ok && put_u64(fd, (uint64_t)st->n_tensors);
        for (int i = 0; ok && i < st->n_tensors; i++) ok = put_tensor(fd, &st->tensors[i]);
    }
    _exit(ok ? 0 : 3); /* no atexit handlers, no flush of the parent's stdio buffers */
}

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    return v && *v && !*end && x > 0 ? x : dflt;
}

static long time_limit(size_t input_bytes) {
    return env_long("DEFT_SANDBOX_SECONDS", 10 + (long)(input_bytes >> 23));
}

/* The caller's handlers (a CLI's Ctrl-C handler, a fuzzer's crash reporter)
 * are not the child's: a crash or the alarm just ends it. */
static void child_signals(void) {
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGALRM, SIGINT, SIGTERM, SIGXFSZ};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
#ifdef DEFT_UNDER_ASAN
    __sanitizer_set_death_callback(NULL); /* ASan reports, then the child exits 1 */
    const char *reports = getenv("DEFT_SANDBOX_REPORTS"); /* scripts/fuzz.sh reads them */
    if (reports && *reports) __sanitizer_set_report_path(reports);
#endif
}

static void child_limits(size_t input_bytes) {
    alarm((unsigned)time_limit(input_bytes));
#ifndef DEFT_UNDER_ASAN
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1) pages = 0;
        fclose(f);
    }
    uint64_t dflt = (uint64_t)pages * (uint64_t)page + (2ull << 30) + 8ull * input_bytes;
    uint64_t lim = (uint64_t)env_long("DEFT_SANDBOX_MEMORY_MB", (long)(dflt >> 20)) << 20;
    struct rlimit r = {lim, lim};
    setrlimit(RLIMIT_AS, &r);
#endif
}

/* ---- parent: read and parse ------------------------------------------------ */

/* The child's pipe, read straight into the tensors (no second copy of the
 * weights); at most cap bytes in all. */
struct cursor {
    int fd;
    unsigned char buf[1 << 16];
    size_t pos, len;
    uint64_t total, cap;
    bool io_error, over;
};
static bool get(struct cursor *c, void *dst, size_t n) {
    unsigned char *d = dst;
    if (n > c->cap - c->total) {
        c->over = true;
        return false;
    }
    while (n) {
        if (c->pos == c->len) {
            ssize_t r = read(c->fd, c->buf, sizeof c->buf);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) c->io_error = true;
            if (r <= 0) return false;
            c->pos = 0, c->len = (size_t)r;
        }
        size_t k = c->len - c->pos < n ? c->len - c->pos : n;
        memcpy(d, c->buf + c->pos, k);
        c->pos += k, c->total += k, d += k, n -= k;
    }
    return true;
}
static bool at_eof(struct cursor *c) {
    unsigned char x;
    return c->pos == c->len && !get(c, &x, 1) && !c->io_error && !c->over;
}
static bool get_u64(struct cursor *c, uint64_t *v) { return get(c, v, sizeof *v); }
static char *get_str(struct cursor *c) {
    uint64_t n;
    if (!get_u64(c, &n) || n > c->cap - c->total) return NULL;
    char *s = deft_malloc((size_t)n + 1);
    if (!s) return NULL;
    if (!get(c, s, (size_t)n)) {
        deft_free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

static enum deft_status bad_stream(const char *name) {
    return deft_set_error(DEFT_ERR_FORMAT, "%s: the reader's child process sent a malformed result", name);
}

static enum deft_status get_tensor(struct cursor *c, struct deft_safetensors *st, const char *name) {
    uint64_t dtype = 0, ndim = 0, nbytes = 0;
    struct deft_shape sh = {0};
    char *tn = get_str(c);
    if (!tn) return bad_stream(name);
    bool ok = get_u64(c, &dtype) && dtype < DEFT_DTYPE_COUNT && get_u64(c, &ndim) && ndim <= DEFT_MAX_DIMS;
    sh.ndim = (int)ndim;
    for (int d = 0; ok && d < sh.ndim; d++) {
        uint64_t v = 0;
        ok = get_u64(c, &v) && v <= INT64_MAX;
        sh.d[d] = (int64_t)v;
    }
    uint64_t want = 0;
    ok = ok && deft_io_shape_bytes(&sh, deft_dtype_size((enum deft_dtype)dtype), &want) && get_u64(c, &nbytes) &&
         nbytes == want && nbytes <= c->cap - c->total;
    struct deft_tensor *t = NULL;
    enum deft_status s = ok ? deft_tensor_create((enum deft_dtype)dtype, &sh, &t) : bad_stream(name);
    if (!s && !get(c, t->data, (size_t)nbytes)) {
        deft_tensor_free(t);
        s = bad_stream(name);
    } else if (!s) {
        s = deft_io_tensor_list_add(st, tn, t);
    }
    deft_free(tn);
    return s;
}

static enum deft_status parse_stream(struct cursor *c, const char *name, struct deft_safetensors **out) {
    uint64_t magic = 0, status = 0, n = 0;
    if (!get_u64(c, &magic) || magic != STREAM_MAGIC || !get_u64(c, &status) || status >= DEFT_STATUS_COUNT)
        return bad_stream(name);
    if (status) {
        char *msg = get_str(c);
        if (!msg) return bad_stream(name);
        enum deft_status s = deft_set_error((enum deft_status)status, "%s", msg);
        deft_free(msg);
        return s;
    }
    struct deft_safetensors *st;
    enum deft_status s = deft_io_tensor_list_new("", &st);
    if (s) return s;
    /* the child's metadata replaces the placeholder entry */
    if (!get_u64(c, &n) || n > 1024) s = bad_stream(name);
    for (uint64_t i = 0; !s && i < n; i++) {
        char *k = get_str(c), *v = get_str(c);
        struct deft_kv *m = k && v ? deft_realloc(st->meta, (size_t)(i + 1) * sizeof *m) : NULL;
        if (!m) {
            deft_free(k), deft_free(v);
            s = k && v ? deft_set_error(DEFT_ERR_NOMEM, "out of memory") : bad_stream(name);
            break;
        }
        st->meta = m;
        if (i == 0) deft_free((void *)m[0].key), deft_free((void *)m[0].value);
        m[i].key = k, m[i].value = v;
        st->n_meta = (int)i + 1;
    }
    if (!s && (!get_u64(c, &n) || n > INT32_MAX)) s = bad_stream(name);
    for (uint64_t i = 0; !s && i < n; i++) s = get_tensor(c, st, name);
    if (!s && !at_eof(c)) s = bad_stream(name);
    if (s) {
        deft_safetensors_free(st);
        return s;
    }
    *out = st;
    return DEFT_OK;
}

static enum deft_status child_failed(const char *name, int wst, size_t input_bytes) {
    if (WIFSIGNALED(wst) && WTERMSIG(wst) == SIGALRM)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the file's reader ran past its time limit (%ld s): "
                              "the file is malformed (DEFT_SANDBOX_SECONDS raises the limit)", name,
                              time_limit(input_bytes));
    if (WIFSIGNALED(wst))
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the file's reader crashed (signal %d): the file is malformed, "
                              "or needs more memory than DEFT_SANDBOX_MEMORY_MB allows", name, WTERMSIG(wst));
    return deft_set_error(DEFT_ERR_FORMAT, "%s: the file's reader failed (exit %d): the file is malformed, "
                          "or needs more memory than DEFT_SANDBOX_MEMORY_MB allows", name,
                          WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
}

enum deft_status deft_io_sandboxed(const char *name, size_t input_bytes, deft_io_reader_fn fn, void *ctx,
                                   struct deft_safetensors **out) {
    *out = NULL;
    const char *mode = getenv("DEFT_SANDBOX");
    if (mode && !strcmp(mode, "0")) return fn(ctx, out); /* in-process: for a debugger */
    int fds[2];
    if (pipe(fds) != 0) return deft_set_error(DEFT_ERR_IO, "%s: cannot create a pipe: %s", name, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return deft_set_error(DEFT_ERR_IO, "%s: cannot start the reader's process: %s", name, strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        child_signals();
        child_limits(input_bytes);
        child_run(fds[1], fn, ctx);
    }
    close(fds[1]);
    /* the tensors of a legitimate file are at most a few times its size
     * (float16 widened, compression undone) */
    struct cursor *c = deft_calloc(1, sizeof *c);
    if (!c) {
        kill(pid, SIGKILL);
        close(fds[0]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", name);
    }
    c->fd = fds[0];
    c->cap = (uint64_t)256 << 20;
    if (input_bytes < (UINT64_MAX - c->cap) / 64) c->cap += (uint64_t)input_bytes * 64;
    enum deft_status s = parse_stream(c, name, out);
    bool over = c->over, io_error = c->io_error;
    uint64_t cap = c->cap;
    deft_free(c);
    if (s) kill(pid, SIGKILL); /* it may be blocked writing the rest */
    close(fds[0]);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    bool child_ok = WIFEXITED(wst) && WEXITSTATUS(wst) == 0;
    if (!s && !child_ok) s = child_failed(name, wst, input_bytes);
    else if (s && over) s = deft_set_error(DEFT_ERR_FORMAT, "%s: the file's reader produced over %llu MB of tensors",
                                           name, (unsigned long long)(cap >> 20));
    else if (s && io_error) s = deft_set_error(DEFT_ERR_IO, "%s: reading from the reader's process failed", name);
    else if (s && !child_ok && s != DEFT_ERR_NOMEM && !(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL))
        s = child_failed(name, wst, input_bytes); /* a crash mid-stream, not the error the child sent */
    if (s && *out) {
        deft_safetensors_free(*out);
        *out = NULL;
    }
    return s;
}

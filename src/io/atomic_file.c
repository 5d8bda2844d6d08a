/* atomic_file.c - io module: whole-file reads with a size limit and atomic
 * writes (temp file in the same directory, fsync, rename, fsync directory).
 *
 * Invariant: on any failure the temporary file is unlinked and the target
 * path is untouched, so a crash or a full disk never destroys a finished
 * checkpoint (design §4, §8).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "deft/io.h"

struct deft_atomic_file {
    int fd;
    char *path;  /* final name */
    char *tmp;   /* "<path>.tmp.<pid>" */
    bool failed; /* a write already failed (and reported) */
};

/* ENOSPC and EDQUOT are what users meet in practice: say so plainly. */
static const char *io_reason(int err) {
    if (err == ENOSPC) return "disk full";
#ifdef EDQUOT
    if (err == EDQUOT) return "disk quota exceeded";
#endif
    return strerror(err);
}

static enum deft_status io_error(const char *what, const char *path, int err) {
    return deft_set_error(DEFT_ERR_IO, "cannot %s %s: %s", what, path, io_reason(err));
}

enum deft_status deft_file_read(const char *path, size_t max_bytes, void **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("open", path, errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return io_error("stat", path, e);
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return deft_set_error(DEFT_ERR_IO, "cannot read %s: it is a directory", path);
    }
    /* Regular files: trust st_size as a first bound; pipes etc. grow a buffer. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size : 65536;
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return deft_set_error(DEFT_ERR_FORMAT, "%s is too large (%lld bytes, limit %zu)", path,
                              (long long)st.st_size, max_bytes);
    }
    if (cap > max_bytes) cap = max_bytes;
    char *buf = deft_malloc(cap + 1);
    if (!buf) {
        close(fd);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s (%zu bytes)", path, cap);
    }
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            /* A probe byte tells "exactly cap" (the usual case: cap == st_size)
             * from "more to come" without growing the buffer needlessly. */
            char probe;
            ssize_t r = read(fd, &probe, 1);
            if (r < 0 && errno == EINTR) continue;
            if (r == 0) break;
            if (r < 0 || cap >= max_bytes) {
                int e = errno;
                deft_free(buf);
                close(fd);
                if (r < 0) return io_error("read", path, e);
                return deft_set_error(DEFT_ERR_FORMAT, "%s is too large (limit %zu bytes)", path,
                                      max_bytes);
            }
            size_t ncap = cap < 4096 ? 4096 : cap * 2;
            if (ncap > max_bytes || ncap < cap) ncap = max_bytes;
            char *nb = deft_realloc(buf, ncap + 1);
            if (!nb) {
                deft_free(buf);
                close(fd);
                return deft_set_error(DEFT_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = nb;
            cap = ncap;
            buf[n++] = probe;
            continue;
        }
        size_t want = cap - n;
        if (want > (size_t)1 << 30) want = (size_t)1 << 30;
        ssize_t r = read(fd, buf + n, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            deft_free(buf);
            close(fd);
            return io_error("read", path, e);
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return DEFT_OK;
}

enum deft_status deft_atomic_open(const char *path, struct deft_atomic_file **out) {
    *out = NULL;
    if (!path || !path[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "empty output path");
    struct deft_atomic_file *w = deft_calloc(1, sizeof *w);
    size_t plen = strlen(path), tlen = plen + 32;
    char *p = deft_malloc(plen + 1), *t = deft_malloc(tlen);
    if (!w || !p || !t) {
        deft_free(w);
        deft_free(p);
        deft_free(t);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory opening %s", path);
    }
    memcpy(p, path, plen + 1);
    snprintf(t, tlen, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC: a stale temp from a crashed run with the same pid is ours to reuse. */
    int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        deft_free(w);
        deft_free(p);
        deft_free(t);
        return io_error("create", path, e);
    }
    w->fd = fd;
    w->path = p;
    w->tmp = t;
    *out = w;
    return DEFT_OK;
}

enum deft_status deft_atomic_write(struct deft_atomic_file *w, const void *data, size_t n) {
    if (w->failed) return DEFT_ERR_IO;
    const char *p = data;
    while (n > 0) {
        size_t chunk = n > (size_t)1 << 30 ? (size_t)1 << 30 : n;
        ssize_t r = write(w->fd, p, chunk);
        if (r < 0) {
            if (errno == EINTR) continue;
            w->failed = true;
            return io_error("write", w->path, errno);
        }
        if (r == 0) {
            w->failed = true;
            return io_error("write", w->path, ENOSPC);
        }
        p += r;
        n -= (size_t)r;
    }
    return DEFT_OK;
}

static void atomic_free(struct deft_atomic_file *w) {
    deft_free(w->path);
    deft_free(w->tmp);
    deft_free(w);
}

void deft_atomic_abort(struct deft_atomic_file *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    unlink(w->tmp);
    atomic_free(w);
}

/* fsync the directory holding path, so the rename itself is durable. */
static int fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash) {
        dir[0] = '.';
        dir[1] = 0;
    } else if (slash == path) {
        dir[0] = '/';
        dir[1] = 0;
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int rc = fsync(fd) != 0 && errno != EINVAL ? errno : 0; /* some fs refuse dir fsync */
    close(fd);
    return rc;
}

enum deft_status deft_atomic_commit(struct deft_atomic_file *w) {
    if (w->failed) {
        deft_atomic_abort(w);
        return DEFT_ERR_IO;
    }
    /* fsync before rename: otherwise a crash may leave a renamed empty file. */
    if (fsync(w->fd) != 0) {
        enum deft_status s = io_error("sync", w->path, errno);
        deft_atomic_abort(w);
        return s;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        enum deft_status s = io_error("close", w->path, errno);
        deft_atomic_abort(w);
        return s;
    }
    if (rename(w->tmp, w->path) != 0) {
        enum deft_status s = io_error("rename the temporary file onto", w->path, errno);
        deft_atomic_abort(w);
        return s;
    }
    int e = fsync_dir(w->path);
    enum deft_status s = DEFT_OK;
    if (e) s = io_error("sync the directory of", w->path, e); /* file is in place already */
    atomic_free(w);
    return s;
}

enum deft_status deft_file_write_atomic(const char *path, const void *data, size_t n) {
    struct deft_atomic_file *w;
    enum deft_status s = deft_atomic_open(path, &w);
    if (s) return s;
    s = deft_atomic_write(w, data, n);
    if (s) {
        deft_atomic_abort(w);
        return s;
    }
    return deft_atomic_commit(w);
}

/* "<name>.tmp.<pid>" of a writer that no longer runs: what SIGKILL or a power
 * cut leaves behind mid-write. A live writer's file (kill(pid, 0) succeeds,
 * or the pid is ours) is left alone. */
static bool stale_tmp(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return false;
    const char *d = t + 5;
    char *end;
    long pid = strtol(d, &end, 10);
    if (end == d || *end || pid <= 0 || pid > INT_MAX) return false;
    if ((pid_t)pid == getpid()) return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int deft_atomic_sweep_stale(const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int n = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(dp)))
        if (stale_tmp(e->d_name) && snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            unlink(path) == 0)
            n++;
    closedir(dp);
    return n;
}

enum deft_status deft_file_link_atomic(const char *from, const char *to) {
    if (!from || !to || !from[0] || !to[0]) return deft_set_error(DEFT_ERR_INVALID_ARG, "empty path to link");
    size_t tlen = strlen(to) + 32;
    char *t = deft_malloc(tlen);
    if (!t) return deft_set_error(DEFT_ERR_NOMEM, "out of memory linking %s", to);
    snprintf(t, tlen, "%s.tmp.%ld", to, (long)getpid());
    unlink(t); /* a stale temp of a crashed run with our pid */
    enum deft_status s = DEFT_OK;
    if (link(from, t) != 0) s = io_error("link", to, errno);
    else if (rename(t, to) != 0) {
        s = io_error("rename the temporary link onto", to, errno);
        unlink(t);
    } else {
        int e = fsync_dir(to);
        if (e) s = io_error("sync the directory of", to, e);
    }
    deft_free(t);
    return s;
}

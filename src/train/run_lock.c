/* run_lock.c - the lock of a results folder (deft/loop.h): <dir>/.deft.lock
 * holds the pid of the run writing the folder, so a second run started into
 * it is refused naming that pid; a lock whose process is gone (kill -9, a
 * zombie) is stale and taken over. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "deft/loop.h"
#include "train/run_lock.h"

#define LOCK_NAME ".deft.lock"

static pid_t lock_owner(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
    return pid > 0 ? (pid_t)pid : 0;
}

/* A zombie (killed, not yet reaped by its parent) holds nothing. */
static bool zombie(pid_t pid) {
    char p[64], buf[256];
    snprintf(p, sizeof p, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(p, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return rp && rp[1] == ' ' && rp[2] == 'Z';
}

/* Alive: kill(pid, 0) succeeds, or fails only for want of permission. */
static bool alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) && !zombie(pid); }

static enum deft_status in_use(const char *dir, pid_t pid) {
    return deft_set_error(DEFT_ERR_INVALID_ARG, "%s is in use by a running training (pid %ld): wait for it, stop it, "
                          "or give another -r", dir, (long)pid);
}

/* Refuse a folder that a live run holds (another process than this one). */
enum deft_status run_lock_check(const char *dir) {
    char p[2400];
    snprintf(p, sizeof p, "%s/%s", dir, LOCK_NAME);
    pid_t pid = lock_owner(p);
    return pid && pid != getpid() && alive(pid) ? in_use(dir, pid) : DEFT_OK;
}

/* Create the lock with our pid; a stale one (its process gone) is taken over. */
enum deft_status run_lock_take(const char *dir) {
    char p[2400];
    snprintf(p, sizeof p, "%s/%s", dir, LOCK_NAME);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
            bool ok = write(fd, buf, (size_t)n) == n;
            if (close(fd) || !ok) {
                remove(p);
                return deft_set_error(DEFT_ERR_IO, "cannot write %s: %s", p, strerror(errno));
            }
            return DEFT_OK;
        }
        if (errno != EEXIST) return deft_set_error(DEFT_ERR_IO, "cannot create %s: %s", p, strerror(errno));
        pid_t pid = lock_owner(p);
        if (pid == getpid()) return DEFT_OK;
        if (alive(pid)) return in_use(dir, pid);
        if (remove(p) && errno != ENOENT) return deft_set_error(DEFT_ERR_IO, "cannot remove the stale lock %s: %s", p,
                                                                strerror(errno));
        deft_log(DEFT_LOG_INFO, "took over %s from a run that is gone (pid %ld)", p, (long)pid);
    }
    return deft_set_error(DEFT_ERR_IO, "%s: another run took the lock at the same moment", p);
}

void deft_run_dir_unlock(const char *dir) {
    char p[2400];
    snprintf(p, sizeof p, "%s/%s", dir, LOCK_NAME);
    if (lock_owner(p) == getpid()) remove(p);
}


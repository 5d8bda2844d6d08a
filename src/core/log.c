/* log.c - log sink, thread count, clock. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "deft/core.h"

static deft_log_fn log_fn;
static void *log_user;
static enum deft_log_level log_level = DEFT_LOG_INFO;

void deft_log_set(deft_log_fn fn, void *user) { log_fn = fn; log_user = user; }
void deft_log_get(deft_log_fn *fn, void **user) {
    *fn = log_fn;
    *user = log_user;
}
void deft_log_set_level(enum deft_log_level level) { log_level = level; }

void deft_log_default(enum deft_log_level level, const char *msg) {
    static const char *const tag[] = {"debug: ", "", "warning: ", "error: "};
    fprintf(stderr, "%s%s\n", tag[level & 3], msg);
}

void deft_log(enum deft_log_level level, const char *fmt, ...) {
    static int env_checked;
    if (!env_checked) { /* DEFT_LOG=debug shows kernel choices and other internals */
        const char *e = getenv("DEFT_LOG");
        if (e && !strcmp(e, "debug")) log_level = DEFT_LOG_DEBUG;
        env_checked = 1;
    }
    if (level < log_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_fn) {
        log_fn(level, msg, log_user);
        return;
    }
    deft_log_default(level, msg);
}

double deft_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void deft_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int deft_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

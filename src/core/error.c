/* error.c - status names and the per-thread last-error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "deft/core.h"

static _Thread_local char last_error[1024];

static const char *const status_names[] = {
    "DEFT_OK", "DEFT_ERR_NOMEM", "DEFT_ERR_IO", "DEFT_ERR_PARSE", "DEFT_ERR_INVALID_ARG",
    "DEFT_ERR_SHAPE", "DEFT_ERR_UNSUPPORTED", "DEFT_ERR_BACKEND", "DEFT_ERR_FORMAT",
    "DEFT_ERR_CANCELLED", "DEFT_ERR_NUMERIC", "DEFT_ERR_NOT_FOUND",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == DEFT_STATUS_COUNT,
               "status_names must name every deft_status");

const char *deft_status_str(enum deft_status s) {
    if ((int)s < 0 || s >= DEFT_STATUS_COUNT) return "DEFT_ERR_UNKNOWN";
    return status_names[s];
}

enum deft_status deft_set_error(enum deft_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

enum deft_status deft_wrap_error(enum deft_status s, const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    if (old[0])
        snprintf(last_error, sizeof last_error, "%s: %s", prefix, old);
    else
        snprintf(last_error, sizeof last_error, "%s: %s", prefix, deft_status_str(s));
    return s;
}

const char *deft_last_error(void) { return last_error; }
void deft_clear_error(void) { last_error[0] = 0; }

int deft_status_exit_code(enum deft_status s) {
    switch (s) {
    case DEFT_OK: return 0;
    case DEFT_ERR_PARSE:
    case DEFT_ERR_INVALID_ARG:
    case DEFT_ERR_SHAPE:
    case DEFT_ERR_FORMAT:
    case DEFT_ERR_UNSUPPORTED: /* the input asks for what deft does not do (an ONNX op, a pickle global) */
    case DEFT_ERR_NOT_FOUND: return 2;
    default: return 1;
    }
}

void deft_assert_fail(const char *expr, const char *file, int line) {
    deft_log(DEFT_LOG_ERROR, "internal error: assertion '%s' failed at %s:%d", expr, file, line);
    __builtin_trap();
}

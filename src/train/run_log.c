/* run_log.c - a training run's deft.log (deft/loop.h): what the run prints
 * goes to the terminal as before and also, without the progress bar's
 * in-place updates, to <results>/deft.log and to --log_file; so do the
 * warnings and errors logged meanwhile. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "deft/loop.h"

#define MAX_SINKS 2

struct deft_run_log {
    FILE *out;                  /* the terminal (or whatever out was) */
    FILE *sink[MAX_SINKS];      /* deft.log, --log_file */
    int n_sinks;
    FILE *tee;                  /* what the run prints to */
    bool in_bar;                /* the last chunk was a progress-bar update */
    deft_log_fn prev_fn;        /* the log sink before, restored at close */
    void *prev_user;
    int rank;                   /* > 0: another rank's log (deft_run_log_open_rank) */
};

static struct deft_run_log *active; /* for the log sink and deft_run_log_is_tty */

static void to_sinks(struct deft_run_log *lg, const char *buf, size_t n) {
    for (int i = 0; i < lg->n_sinks; i++) {
        fwrite(buf, 1, n, lg->sink[i]);
        fflush(lg->sink[i]);
    }
}

/* A progress-bar update starts with "\r"; the newline ending the bar follows
 * it alone: neither belongs in a log file. */
static ssize_t tee_write(void *cookie, const char *buf, size_t n) {
    struct deft_run_log *lg = cookie;
    fwrite(buf, 1, n, lg->out);
    fflush(lg->out);
    bool bar = n && buf[0] == '\r';
    if (!bar && !(lg->in_bar && n == 1 && buf[0] == '\n')) to_sinks(lg, buf, n);
    lg->in_bar = bar;
    return (ssize_t)n;
}

static void log_sink(enum deft_log_level level, const char *msg, void *user) {
    struct deft_run_log *lg = user;
    if (lg->prev_fn) lg->prev_fn(level, msg, lg->prev_user);
    else deft_log_default(level, msg);
    static const char *const tag[] = {"debug: ", "", "warning: ", "error: "};
    if (lg->rank > 0 && (level & 3) < DEFT_LOG_WARN) return;
    char who[32] = "";
    if (lg->rank > 0) snprintf(who, sizeof who, "rank %d: ", lg->rank);
    for (int i = 0; i < lg->n_sinks; i++) {
        fprintf(lg->sink[i], "%s%s%s\n", who, tag[level & 3], msg);
        fflush(lg->sink[i]);
    }
}

enum deft_status deft_run_log_open(const char *dir, const char *log_file, FILE *out, struct deft_run_log **out_lg) {
    *out_lg = NULL;
    struct deft_run_log *lg = deft_calloc(1, sizeof *lg);
    if (!lg) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    lg->out = out ? out : stdout;
    char p[2400];
    snprintf(p, sizeof p, "%s/deft.log", dir);
    const char *paths[MAX_SINKS] = {p, log_file && log_file[0] ? log_file : NULL};
    for (int i = 0; i < MAX_SINKS; i++) {
        if (!paths[i]) continue;
        FILE *f = fopen(paths[i], "a");
        if (!f) {
            enum deft_status s = deft_set_error(DEFT_ERR_IO, "cannot write the log %s: %s", paths[i], strerror(errno));
            deft_run_log_close(lg, DEFT_OK);
            return s;
        }
        lg->sink[lg->n_sinks++] = f;
    }
    lg->tee = fopencookie(lg, "w", (cookie_io_functions_t){.write = tee_write});
    if (!lg->tee) {
        deft_run_log_close(lg, DEFT_OK);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    setvbuf(lg->tee, NULL, _IONBF, 0); /* one write per print: the bar filter sees whole updates */
    deft_log_get(&lg->prev_fn, &lg->prev_user);
    deft_log_set(log_sink, lg);
    active = lg;
    *out_lg = lg;
    return DEFT_OK;
}

enum deft_status deft_run_log_open_rank(const char *dir, int rank, struct deft_run_log **out_lg) {
    *out_lg = NULL;
    if (rank < 1) return deft_set_error(DEFT_ERR_INVALID_ARG, "a rank's log is for ranks above 0, not %d", rank);
    struct deft_run_log *lg = deft_calloc(1, sizeof *lg);
    if (!lg) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    lg->rank = rank;
    char p[2400];
    snprintf(p, sizeof p, "%s/deft.log", dir);
    /* appends of one line each: the lines of the ranks interleave whole */
    if (!(lg->sink[0] = fopen(p, "a"))) {
        enum deft_status s = deft_set_error(DEFT_ERR_IO, "rank %d cannot append to the log %s: %s", rank, p, strerror(errno));
        deft_free(lg);
        return s;
    }
    setvbuf(lg->sink[0], NULL, _IOLBF, 0);
    lg->n_sinks = 1;
    deft_log_get(&lg->prev_fn, &lg->prev_user);
    deft_log_set(log_sink, lg);
    active = lg;
    *out_lg = lg;
    return DEFT_OK;
}

FILE *deft_run_log_stream(struct deft_run_log *lg) { return lg ? lg->tee : NULL; }

bool deft_run_log_is_tty(FILE *f) {
    return active && f && f == active->tee && isatty(fileno(active->out));
}

void deft_run_log_close(struct deft_run_log *lg, enum deft_status s) {
    if (!lg) return;
    for (int i = 0; s && s != DEFT_ERR_CANCELLED && i < lg->n_sinks; i++) {
        if (lg->rank > 0) fprintf(lg->sink[i], "deft: rank %d: %s\n", lg->rank, deft_last_error());
        else fprintf(lg->sink[i], "deft: %s\n", deft_last_error());
    }
    if (active == lg) {
        deft_log_set(lg->prev_fn, lg->prev_user);
        active = NULL;
    }
    if (lg->tee) fclose(lg->tee);
    for (int i = 0; i < lg->n_sinks; i++) fclose(lg->sink[i]);
    deft_free(lg);
}

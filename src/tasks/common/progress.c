/* progress.c - progress bar with ETA. */
#include <unistd.h>
#include "deft/core.h"
#include "deft/loop.h"
#include "tasks/common/progress.h"

void progress_init(struct progress *p, FILE *f, int64_t total, int64_t done_at_start) {
    p->f = f;
    p->tty = f && (isatty(fileno(f)) || deft_run_log_is_tty(f));
    p->t0 = p->last = deft_time_now();
    p->total = total > 0 ? total : 1;
    p->done_at_start = done_at_start;
}

static void fmt_eta(double s, char *buf, size_t n) {
    if (s < 0 || s > 1e7) snprintf(buf, n, "--");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

void progress_update(struct progress *p, const char *label, int64_t done, const char *tail, bool force) {
    if (!p->f) return;
    double now = deft_time_now();
    if (!p->tty && !force && now - p->last < 10.0) return;
    if (p->tty && !force && now - p->last < 0.2) return;
    p->last = now;
    double frac = (double)done / (double)p->total;
    double rate = (double)(done - p->done_at_start) / (now - p->t0 + 1e-9);
    char eta[32];
    fmt_eta(rate > 0 ? (double)(p->total - done) / rate : -1, eta, sizeof eta);
    int width = 24, fill = (int)(frac * width + 0.5);
    if (fill > width) fill = width;
    if (p->tty)
        fprintf(p->f, "\r\033[K%s [%.*s%*s] %3.0f%% %s ETA %s", label, fill, "########################",
                width - fill, "", 100 * frac, tail ? tail : "", eta);
    else
        fprintf(p->f, "%s %3.0f%% %s ETA %s\n", label, 100 * frac, tail ? tail : "", eta);
    fflush(p->f);
}

void progress_end(struct progress *p) {
    if (p->f && p->tty) {
        fputc('\n', p->f);
        fflush(p->f);
    }
}

/* run_dir.c - the results folder of a training run (deft/loop.h): where it
 * is (-r, the spec's results_dir, or runs/<network>/trainN), and protection
 * of another run's results: a folder that holds them is only written with
 * --resume (continue it) or --overwrite (clear the run's files first). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "deft/io.h"
#include "deft/loop.h"
#include "train/run_lock.h"

/* The files that make a folder a run's results (weights/ first). */
static const char *const run_files[] = {"weights/latest.safetensors", "weights/best.safetensors", "status.json",
                                        "metrics.csv"};
#define N_RUN_FILES (int)(sizeof run_files / sizeof run_files[0])

static bool exists(const char *dir, const char *name) {
    char p[2400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* runs/<network>/train, train2, train3 ...: the first free one, or (resume)
 * the last one taken. */
static enum deft_status auto_dir(const char *network, bool last_taken, char *dir, size_t cap) {
    char p[1024], prev[1024] = "";
    for (int n = 1; n < 100000; n++) {
        if (n == 1) snprintf(p, sizeof p, "runs/%s/train", network);
        else snprintf(p, sizeof p, "runs/%s/train%d", network, n);
        if (!is_dir(p)) {
            if (last_taken && !prev[0])
                return deft_set_error(DEFT_ERR_NOT_FOUND, "nothing to resume: no runs/%s/train* folder here "
                                      "(give -r DIR)", network);
            snprintf(dir, cap, "%s", last_taken ? prev : p);
            return DEFT_OK;
        }
        snprintf(prev, sizeof prev, "%s", p);
    }
    return deft_set_error(DEFT_ERR_INVALID_ARG, "runs/%s holds 100000 runs: give -r DIR", network);
}

/* Delete the files a training run writes (nothing else of the folder). */
static enum deft_status clear_run(const char *dir) {
    const char *sub[] = {"weights", "plots", ""};
    for (int i = 0; i < 3; i++) {
        char p[2400];
        snprintf(p, sizeof p, "%s%s%s", dir, sub[i][0] ? "/" : "", sub[i]);
        DIR *d = opendir(p);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            const char *n = e->d_name, *dot = strrchr(n, '.');
            bool ours = i == 0 ? dot && !strcmp(dot, ".safetensors")
                      : i == 1 ? dot && (!strcmp(dot, ".png") || !strcmp(dot, ".svg"))
                               : !strcmp(n, "status.json") || !strcmp(n, "metrics.csv") || !strcmp(n, "spec.yaml") ||
                                 !strcmp(n, "command.txt") || !strcmp(n, "deft.log") ||
                                 !strncmp(n, "events.out.tfevents.", 20);
            char f[2700];
            snprintf(f, sizeof f, "%s/%s", p, n);
            if (ours && remove(f) && errno != ENOENT) {
                closedir(d);
                return deft_set_error(DEFT_ERR_IO, "--overwrite: cannot remove %s: %s", f, strerror(errno));
            }
        }
        closedir(d);
    }
    return DEFT_OK;
}

enum deft_status deft_run_dir_open(const struct deft_run_dir_opts *o, char *dir, size_t cap) {
    enum deft_status s;
    bool continues = o->resume || o->resume_from;
    if (o->resume && o->overwrite)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--resume continues a run, --overwrite starts it over: give one");
    if (o->requested && o->requested[0]) snprintf(dir, cap, "%s", o->requested);
    else if ((s = auto_dir(o->network, o->resume, dir, cap))) return s;
    if (is_dir(dir) && (s = run_lock_check(dir))) return s; /* before any other verdict on the folder */
    if (o->resume && !exists(dir, "weights/latest.safetensors"))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "nothing to resume in %s (no weights/latest.safetensors): start "
                              "the run without --resume", dir);
    if (!continues) {
        char found[512] = "";
        size_t n = 0;
        for (int i = 0; i < N_RUN_FILES; i++)
            if (exists(dir, run_files[i]) && n < sizeof found)
                n += (size_t)snprintf(found + n, sizeof found - n, "%s%s", n ? ", " : "", run_files[i]);
        if (found[0] && !o->overwrite)
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s already holds a run (%s): continue it with --resume, "
                                  "start it over with --overwrite, or give another -r", dir, found);
        if (found[0] && (s = clear_run(dir))) return s;
        if (found[0] && o->out) fprintf(o->out, "--overwrite: removed the previous run's results from %s\n", dir);
    }
    char p[2400];
    snprintf(p, sizeof p, "%s/weights", dir);
    if ((s = deft_mkdirs(p))) return s;
    int stale = deft_atomic_sweep_stale(p);
    if (stale)
        deft_log(DEFT_LOG_INFO, "removed %d temporary file%s left in %s by a run that was killed", stale,
                 stale == 1 ? "" : "s", p);
    snprintf(p, sizeof p, "%s/plots", dir);
    if ((s = deft_mkdirs(p))) return s;
    return run_lock_take(dir);
}

/* A word as the shell reads it back: bare when plain, else in single quotes. */
static void shell_word(FILE *f, const char *w) {
    bool plain = w[0] != 0;
    for (const char *p = w; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *p)) plain = false;
    if (plain) {
        fputs(w, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = w; *p; p++)
        if (*p == '\'') fputs("'\\''", f);
        else fputc(*p, f);
    fputc('\'', f);
}

enum deft_status deft_run_dir_record_spec(const char *dir, int argc, char *const *argv, deft_spec_print_fn print,
                                          const void *cfg) {
    char *yaml = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&yaml, &n);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    print(cfg, m);
    enum deft_status s = fclose(m) ? deft_set_error(DEFT_ERR_NOMEM, "out of memory")
                                   : deft_run_dir_record(dir, argc, argv, yaml);
    free(yaml);
    return s;
}

enum deft_status deft_run_dir_record(const char *dir, int argc, char *const *argv, const char *spec_yaml) {
    char p[2400];
    if (argc > 0 && argv) {
        snprintf(p, sizeof p, "%s/command.txt", dir);
        FILE *f = fopen(p, "a");
        if (!f) return deft_set_error(DEFT_ERR_IO, "cannot write %s: %s", p, strerror(errno));
        fputs("deft", f);
        for (int i = 0; i < argc; i++) {
            fputc(' ', f);
            shell_word(f, argv[i]);
        }
        fputc('\n', f);
        if (fclose(f)) return deft_set_error(DEFT_ERR_IO, "cannot write %s: %s", p, strerror(errno));
    }
    if (!spec_yaml) return DEFT_OK;
    snprintf(p, sizeof p, "%s/spec.yaml", dir);
    return deft_file_write_atomic(p, spec_yaml, strlen(spec_yaml));
}

const char *deft_run_dir_model(const char *dir, char *buf, size_t n) {
    if (!dir || !dir[0]) return NULL;
    const char *names[] = {"weights/best.safetensors", "weights/latest.safetensors"};
    for (int i = 0; i < 2; i++)
        if (exists(dir, names[i])) {
            snprintf(buf, n, "%s/%s", dir, names[i]);
            return buf;
        }
    return NULL;
}

void deft_run_dir_close(const char *dir) {
    char p[2400];
    deft_run_dir_unlock(dir);
    const char *sub[] = {"weights", "plots"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
        rmdir(p); /* only when empty */
    }
    rmdir(dir);
}

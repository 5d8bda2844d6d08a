/* onnx_conf_runner.c - deft's side of test_onnx_conformance.sh in one process.
 *
 *   onnx_conf_runner DIR < cases.txt
 *
 * For each case name read from stdin (DIR/<case>/ as written by
 * tests/ref/onnx_conformance.py prep) it does what the test's shell loop does
 * with a `deft model import` and a `deft model run` process per model: the
 * same CLI code (cmd_model: import, then run), each step in a forked child
 * (exiting as deft's main does, so ASan's leak check still runs) with stdout
 * to /dev/null and stderr to DIR/<case>/deft.err, so a crash stays one case's
 * crash and its exit status is 128 + signal. Only the exec is gone: loading
 * deft's ~60 shared libraries costs ~50 ms a process (the test's CPU time
 * 27 -> 12 s). Writes DIR/<case>/deft.rc: 0, the import's exit status (a
 * refusal), 3 (imported, the run failed) or >= 128 (crash). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/cli.h"

/* `deft model ACTION ...` in a child: its exit status, 128 + signal if it died */
static int step(char **argv, const char *err_path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 255;
    if (pid == 0) {
        int out = open("/dev/null", O_WRONLY), err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(255);
        int argc = 0;
        while (argv[argc]) argc++;
        for (const struct cli_command *c = cli_commands; c->name; c++)
            if (!strcmp(c->name, "model")) {
                exit(c->run(argc, argv)); /* exit, not _exit: ASan's leak check runs as in deft */
            }
        _exit(254);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        ;
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static int exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

/* deft_<k>.onnx one output each (several outputs), else model.onnx; the first failure ends it */
static int run_case(const char *d) {
    char m[4096], st[4096], in[4096], out[4096], err[4096];
    snprintf(st, sizeof st, "%s/m.safetensors", d);
    snprintf(in, sizeof in, "%s/in.npy", d);
    snprintf(err, sizeof err, "%s/deft.err", d);
    int rc = 0;
    for (int k = 0;; k++) {
        snprintf(m, sizeof m, "%s/deft_%d.onnx", d, k);
        int single = 0;
        if (!exists(m)) {
            if (k) break;
            snprintf(m, sizeof m, "%s/model.onnx", d);
            single = 1;
            if (!exists(m)) break;
        }
        rc = step((char *[]){"model", "import", "-i", m, "-o", st, NULL}, err);
        if (rc == 0) {
            snprintf(out, sizeof out, "%s/deft_%d.npy", d, k);
            rc = step((char *[]){"model", "run", "-m", st, "-i", in, "-o", out, NULL}, err);
            if (rc != 0 && rc < 128) rc = 3;
        }
        if (rc != 0 || single) break;
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: onnx_conf_runner DIR < cases.txt\n");
        return 2;
    }
    /* every name read before the first fork: a child's exit() moves the shared
     * offset of a buffered stdin back to what it had consumed */
    char line[1024], d[4096], rcp[4200];
    char **cases = NULL;
    int n = 0;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        char **c2 = realloc(cases, (size_t)(n + 1) * sizeof *cases);
        if (!c2 || !(c2[n] = strdup(line))) {
            fprintf(stderr, "onnx_conf_runner: out of memory\n");
            return 1;
        }
        cases = c2;
        n++;
    }
    int rc_all = 0;
    for (int i = 0; i < n && !rc_all; i++) {
        snprintf(d, sizeof d, "%s/%s", argv[1], cases[i]);
        int rc = run_case(d);
        snprintf(rcp, sizeof rcp, "%s/deft.rc", d);
        FILE *f = fopen(rcp, "w");
        if (!f || fprintf(f, "%d\n", rc) < 0 || fclose(f)) {
            fprintf(stderr, "onnx_conf_runner: cannot write %s\n", rcp);
            rc_all = 1;
        }
    }
    for (int i = 0; i < n; i++) free(cases[i]);
    free(cases);
    if (!rc_all) fprintf(stderr, "onnx_conf_runner: %d cases\n", n);
    return rc_all;
}

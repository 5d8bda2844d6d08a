/* args.c - flag parsing helpers shared by the commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "deft/core.h"
#include "deft/runtime.h"
#include "cli/args.h"

bool arg_str(int argc, char **argv, int *i, const char *short_name, const char *long_name,
             const char **val, bool *err) {
    const char *a = argv[*i];
    const char *names[2] = {short_name, long_name};
    for (int k = 0; k < 2; k++) {
        const char *nm = names[k];
        if (!nm) continue;
        size_t l = strlen(nm);
        if (strncmp(a, nm, l) != 0) continue;
        if (a[l] == '=') {
            *val = a + l + 1;
            return true;
        }
        if (a[l] != 0) continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "deft: %s needs a value\n", nm);
            *err = true;
            return true;
        }
        *val = argv[++*i];
        return true;
    }
    return false;
}

bool arg_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "deft: %s expects an integer in [%lld, %lld], got '%s'\n", flag, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool arg_parse_float(const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "deft: %s expects a number, got '%s'\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}

int cli_fail(int status, const char *what) {
    const char *msg = deft_last_error();
    if (what && msg[0])
        fprintf(stderr, "deft: %s: %s\n", what, msg);
    else
        fprintf(stderr, "deft: %s\n", msg[0] ? msg : (what ? what : deft_status_str(status)));
    return deft_status_exit_code(status);
}

double cli_peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0;
}

bool arg_amp(int argc, char **argv, int *i, int *amp, bool *err) {
    if (strcmp(argv[*i], "--use_amp")) return false;
    *amp = DEFT_AMP_BF16;
    if (*i + 1 >= argc || argv[*i + 1][0] == '-') return true;
    const char *mode = argv[++*i];
    if (!strcmp(mode, "fp16")) *amp = DEFT_AMP_FP16;
    else if (strcmp(mode, "bf16")) {
        fprintf(stderr, "deft: --use_amp takes bf16 or fp16, got '%s'\n", mode);
        *err = true;
    }
    return true;
}

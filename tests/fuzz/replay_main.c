/* replay_main.c - a main() for the libFuzzer targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line or
 * found in the directories named there (sorted, not recursive). ctest replays
 * tests/fuzz/corpus/<target> and tests/fuzz/regress/<target> this way, in the
 * normal and the ASan build, so every committed input (and every crash ever
 * found) stays covered by CI. A target aborts on a wrong result; an empty
 * replay fails too, so a lost corpus cannot pass unnoticed. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) abort();
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int replay_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0; /* a target may have no regressions yet */
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char **nn = realloc(names, (n + 1) * sizeof *names);
        if (!nn) abort();
        names = nn;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) abort();
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            int r = replay_file(names[i]);
            if (r < 0) count = -100000;
            else count += r;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv) {
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) total += replay_dir(argv[i]);
        else if (stat(argv[i], &st) == 0) total += replay_file(argv[i]);
    }
    printf("%d inputs replayed\n", total < 0 ? 0 : total);
    if (total <= 0) {
        fprintf(stderr, "replay: no inputs found (or one could not be read)\n");
        return 1;
    }
    printf("%d passed, 0 failed\n", total);
    return 0;
}

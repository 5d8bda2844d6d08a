/* cmd_download.c - `deft model download NAME|URL` and `deft model list`:
 * pretrained weights from the catalogue (or any http(s) URL) into a cache
 * directory, with a progress bar, resume and SHA-256 verification. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "deft/deft.h"
#include "deft/io.h"
#include "deft/models.h"
#include "cli/args.h"
#include "cli/cli.h"

static int download_usage(FILE *f) {
    fprintf(f,
            "usage: deft model download NAME|URL [-o DIR] [--sha256 HEX]\n\n"
            "  Download pretrained weights: NAME from the catalogue (`deft model list`), or any\n"
            "  http(s) URL. The file goes to DIR (default: the cache, $DEFT_CACHE_DIR or\n"
            "  ~/.cache/deft/models) through DIR/FILE.part: an interrupted download resumes on\n"
            "  the next run, and the file only appears once its SHA-256 is verified (catalogue\n"
            "  files carry their hash prefix in the name, as torch.hub checks; give --sha256\n"
            "  for a URL). A file already there and verified is not downloaded again.\n"
            "  $DEFT_MODEL_MIRROR replaces https://download.pytorch.org/models/ (a local mirror).\n\n"
            "  then: deft model import -i FILE -o model.safetensors --arch ARCH\n"
            "    or: pretrained_model_path: FILE in a training spec\n");
    return f == stdout ? 0 : 2;
}

static int mkdir_p(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* The file name a URL names: its last path segment, without query or
 * fragment; NULL when that is empty or not a plain name. */
static bool url_file_name(const char *url, char *out, size_t n) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *path = strchr(p, '/');
    if (!path) return false;
    size_t end = strcspn(path, "?#");
    const char *last = path;
    for (size_t i = 0; i < end; i++)
        if (path[i] == '/') last = path + i + 1;
    size_t len = (size_t)(path + end - last);
    if (len == 0 || len >= n || (len <= 2 && last[0] == '.')) return false;
    memcpy(out, last, len);
    out[len] = 0;
    for (char *c = out; *c; c++)
        if (*c == '\\' || (unsigned char)*c < 32) return false;
    return true;
}

struct bar { const char *name; double t0, last; bool tty; int last_quarter; };

static void show_progress(void *user, int64_t done, int64_t total) {
    struct bar *b = user;
    double now = deft_time_now();
    bool finished = total > 0 && done >= total;
    if (!finished && now - b->last < 0.2) return;
    b->last = now;
    double mb = 1e6, rate = done / mb / (now - b->t0 > 1e-3 ? now - b->t0 : 1e-3);
    if (!b->tty) { /* a log file: a line per quarter */
        int q = total > 0 ? (int)(4 * done / total) : 0;
        if (q <= b->last_quarter) return;
        b->last_quarter = q;
    }
    if (total > 0) {
        int pct = (int)(100 * done / total), w = 24, fill = pct * w / 100;
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        double eta = rate > 0 ? (total - done) / mb / rate : 0;
        fprintf(stderr, "%s%s [%s] %3d%% %.1f/%.1f MB %.1f MB/s ETA %dm%02ds%s", b->tty ? "\r" : "",
                b->name, bar, pct, done / mb, total / mb, rate, (int)eta / 60, (int)eta % 60,
                b->tty ? "" : "\n");
    } else {
        fprintf(stderr, "%s%s %.1f MB %.1f MB/s%s", b->tty ? "\r" : "", b->name, done / mb, rate,
                b->tty ? "" : "\n");
    }
}

int cmd_model_list(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("pretrained weights (deft model download NAME):\n");
    for (const struct deft_pretrained *p = deft_pretrained_all(); p->name; p++)
        printf("  %-16s -> --arch %-16s %s\n", p->name, p->arch, p->about);
    printf("\narchitectures (--arch, model_config.arch):\n ");
    int col = 1;
    for (const char *const *a = deft_model_arch_names(); *a; a++) {
        int l = (int)strlen(*a) + 1;
        if (col + l > 90) {
            printf("\n ");
            col = 1;
        }
        printf(" %s", *a);
        col += l;
    }
    printf("\n");
    return 0;
}

int cmd_model_download(int argc, char **argv) {
    const char *what = NULL, *dir = NULL, *sha = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-o", "--output_dir", &dir, &err) ||
            arg_str(argc, argv, &i, NULL, "--sha256", &sha, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return download_usage(stdout);
        if (argv[i][0] == '-' || what) {
            fprintf(stderr, "deft model download: unexpected '%s' (see --help)\n", argv[i]);
            return 2;
        }
        what = argv[i];
    }
    if (!what) return download_usage(stderr);
    if (sha) {
        size_t n = strlen(sha);
        if (n < 8 || n > 64 || strspn(sha, "0123456789abcdefABCDEF") != n) {
            fprintf(stderr, "deft model download: --sha256 wants 8 to 64 hex digits\n");
            return 2;
        }
    }
    char url[4096], file[1024], prefix[9], cdir[4096], path[5200];
    const struct deft_pretrained *p = NULL;
    bool is_url = strstr(what, "://") != NULL;
    if (is_url) {
        if (!url_file_name(what, file, sizeof file)) {
            fprintf(stderr, "deft model download: cannot tell a file name from %s\n", what);
            return 2;
        }
        snprintf(url, sizeof url, "%s", what);
        if (!sha)
            fprintf(stderr, "deft model download: warning: no --sha256 given; %s is not verified\n",
                    file);
    } else {
        if (!(p = deft_pretrained_find(what))) {
            fprintf(stderr, "deft model download: '%s' is not in the catalogue (deft model list "
                    "shows it); give a URL to download anything else\n", what);
            return 2;
        }
        deft_pretrained_url(p, url, sizeof url);
        snprintf(file, sizeof file, "%s", p->file);
        deft_pretrained_sha256_prefix(p, prefix);
        if (!sha) sha = prefix;
    }
    if (!dir) {
        deft_pretrained_cache_dir(cdir, sizeof cdir);
        dir = cdir;
    }
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "deft model download: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char hex[65];
    if (access(path, F_OK) == 0 && sha && !deft_sha256_file(path, hex) && deft_sha256_matches(hex, sha)) {
        printf("already downloaded and verified: %s\n", path);
    } else {
        deft_clear_error();
        struct bar b = {.name = file, .t0 = deft_time_now(), .tty = isatty(2), .last_quarter = 0};
        struct deft_download_opts o = {.sha256 = sha, .progress = show_progress, .user = &b};
        enum deft_status s = deft_download(url, path, &o);
        if (b.tty) fprintf(stderr, "\n");
        if (s) return cli_fail(s, NULL);
        printf("downloaded %s%s: %s\n", file, sha ? " (SHA-256 verified)" : "", path);
    }
    if (p)
        printf("next: deft model import -i %s -o %s.safetensors --arch %s\n", path, p->name, p->arch);
    return 0;
}

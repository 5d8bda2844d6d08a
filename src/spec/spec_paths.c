/* spec_paths.c - relative paths in a spec file (spec_impl.h): they name a
 * place relative to the spec's folder when it exists there, else relative to
 * the working directory (as TAO reads them). So specs/x.yaml can say
 * ../../shared/data/... and work from any folder. Only values written in the
 * spec text move: a --set value was typed in the shell, relative to it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "spec/spec_impl.h"

/* The spec's folder ("" for a spec in the working directory). */
static void folder_of(const char *spec_path, char *dir, size_t n) {
    const char *slash = spec_path ? strrchr(spec_path, '/') : NULL;
    size_t len = slash ? (size_t)(slash - spec_path) : 0;
    if (slash == spec_path) len = 1; /* "/x.yaml" */
    if (len >= n) len = 0;
    memcpy(dir, spec_path, len);
    dir[len] = 0;
}

enum deft_status deft_spec_resolve_paths(char **const *fields, const char *const *names, int n, const char *spec_path,
                                         const char *spec_text) {
    char dir[4096], moved[512] = "";
    folder_of(spec_path, dir, sizeof dir);
    if (!dir[0] || !spec_text) return DEFT_OK;
    size_t m = 0;
    for (int i = 0; i < n; i++) {
        char *p = *fields[i];
        if (!p || !p[0] || p[0] == '/' || !strstr(spec_text, p)) continue;
        char cand[8192];
        struct stat st;
        if (snprintf(cand, sizeof cand, "%s/%s", dir, p) >= (int)sizeof cand || stat(cand, &st)) continue;
        char *d = deft_strdup(cand);
        if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        deft_free(p);
        *fields[i] = d;
        if (m < sizeof moved && !strstr(moved, names[i]))
            m += (size_t)snprintf(moved + m, sizeof moved - m, "%s%s", m ? ", " : "", names[i]);
    }
    if (moved[0])
        deft_log(DEFT_LOG_INFO, "%s: read relative to the spec's folder %s/ (not the working directory): %s", spec_path,
                 dir, moved);
    return DEFT_OK;
}

/* fs.c - directory creation, the one helper every writer of results needs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/io.h"

enum deft_status deft_mkdirs_for(const char *file) {
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (!slash || slash == file) return DEFT_OK;
    char dir[4096];
    size_t n = (size_t)(slash - file);
    if (n >= sizeof dir) return deft_set_error(DEFT_ERR_INVALID_ARG, "path too long: %s", file);
    memcpy(dir, file, n);
    dir[n] = 0;
    struct stat st;
    return stat(dir, &st) == 0 ? DEFT_OK : deft_mkdirs(dir);
}

enum deft_status deft_mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return deft_set_error(DEFT_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST)
        return deft_set_error(DEFT_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
    return DEFT_OK;
}

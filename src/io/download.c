/* download.c - fetch a file over HTTP(S) with libcurl: into "<path>.part"
 * (resumed with a Range request when it exists), SHA-256 checked, then
 * fsync'ed and renamed onto <path>. A failed or interrupted download keeps
 * the .part file so the next call continues where it stopped; a checksum
 * mismatch removes it. Only http and https are allowed (redirects included). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "deft/io.h"

struct dl {
    CURL *c;
    FILE *f;
    int64_t resume_from;   /* bytes already in the .part file */
    bool checked_status;   /* the first write decides: append (206) or restart (200) */
    bool write_failed;
    const struct deft_download_opts *o;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_data(char *p, size_t size, size_t n, void *user) {
    struct dl *d = user;
    size_t bytes = size * n;
    if (!d->checked_status) {
        d->checked_status = true;
        long code = 0;
        curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &code);
        if (d->resume_from > 0 && code != 206) {
            /* the server ignored the range: start the file over */
            if (fflush(d->f) || ftruncate(fileno(d->f), 0) || fseek(d->f, 0, SEEK_SET)) {
                d->write_failed = true;
                return 0;
            }
            d->resume_from = 0;
        }
    }
    if (fwrite(p, 1, bytes, d->f) != bytes) {
        d->write_failed = true;
        return 0;
    }
    return bytes;
}

static int on_progress(void *user, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un) {
    (void)ut;
    (void)un;
    struct dl *d = user;
    if (d->o && d->o->progress)
        d->o->progress(d->o->user, d->resume_from + (int64_t)now,
                       total > 0 ? d->resume_from + (int64_t)total : -1);
    return 0;
}

enum deft_status deft_sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return deft_set_error(DEFT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct deft_sha256 s;
    deft_sha256_init(&s);
    static _Thread_local unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) deft_sha256_update(&s, buf, n);
    bool err = ferror(f);
    fclose(f);
    if (err) return deft_set_error(DEFT_ERR_IO, "cannot read %s", path);
    deft_sha256_final(&s, hex);
    return DEFT_OK;
}

bool deft_sha256_matches(const char *hex, const char *expected) {
    size_t n = strlen(expected);
    if (n < 8 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = expected[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (c != hex[i]) return false;
    }
    return true;
}

static enum deft_status fsync_rename(const char *from, const char *to) {
    int fd = open(from, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0) close(fd);
        return deft_set_error(DEFT_ERR_IO, "cannot sync %s: %s", from, strerror(errno));
    }
    close(fd);
    if (rename(from, to) != 0)
        return deft_set_error(DEFT_ERR_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", to);
    char *sl = strrchr(dir, '/');
    if (sl) *sl = 0; else snprintf(dir, sizeof dir, ".");
    if ((fd = open(dir, O_RDONLY)) >= 0) {
        fsync(fd);
        close(fd);
    }
    return DEFT_OK;
}

enum deft_status deft_download(const char *url, const char *path,
                               const struct deft_download_opts *o) {
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "'%s' is not an http:// or https:// URL", url);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return deft_set_error(DEFT_ERR_IO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    char part[4200];
    if (snprintf(part, sizeof part, "%s.part", path) >= (int)sizeof part)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "path too long: %s", path);
    struct dl d = {.o = o};
    if (!(d.f = fopen(part, "ab")))
        return deft_set_error(DEFT_ERR_IO, "cannot write %s: %s", part, strerror(errno));
    struct stat sb;
    d.resume_from = fstat(fileno(d.f), &sb) == 0 ? (int64_t)sb.st_size : 0;
    if (!(d.c = curl_easy_init())) {
        fclose(d.f);
        return deft_set_error(DEFT_ERR_NOMEM, "libcurl: cannot create a handle");
    }
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(d.c, CURLOPT_URL, url);
    curl_easy_setopt(d.c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(d.c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(d.c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(d.c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(d.c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(d.c, CURLOPT_USERAGENT, "deft/0.1");
    curl_easy_setopt(d.c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(d.c, CURLOPT_CONNECTTIMEOUT, o && o->connect_timeout_s ? o->connect_timeout_s : 30L);
    curl_easy_setopt(d.c, CURLOPT_LOW_SPEED_LIMIT, 1L);   /* a stalled transfer fails after */
    curl_easy_setopt(d.c, CURLOPT_LOW_SPEED_TIME, 60L);   /* a minute, and can be resumed */
    curl_easy_setopt(d.c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(d.c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(d.c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(d.c, CURLOPT_XFERINFODATA, &d);
    curl_easy_setopt(d.c, CURLOPT_NOPROGRESS, 0L);
    if (d.resume_from > 0) curl_easy_setopt(d.c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)d.resume_from);
    CURLcode rc = curl_easy_perform(d.c);
    long code = 0;
    curl_easy_getinfo(d.c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(d.c);
    bool close_failed = fclose(d.f) != 0;
    enum deft_status s = DEFT_OK;
    /* 416 on a resume: the .part file already holds the whole file */
    bool complete_before = rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && d.resume_from > 0;
    if (d.write_failed || close_failed)
        return deft_set_error(DEFT_ERR_IO, "cannot write %s: %s", part,
                              errno == ENOSPC ? "disk full" : strerror(errno));
    if (rc != CURLE_OK && !complete_before) {
        bool nothing = stat(part, &sb) == 0 && sb.st_size == 0;
        if (nothing) remove(part);
        bool offline = rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
                       rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_OPERATION_TIMEDOUT;
        return deft_set_error(DEFT_ERR_IO, "cannot download %s: %s%s%s%s%s", url,
                              curl_easy_strerror(rc), *err ? " (" : "", err, *err ? ")" : "",
                              nothing ? (offline ? "; is this machine offline? (a local mirror: "
                                                   "$DEFT_MODEL_MIRROR)" : "")
                                      : "; what arrived is kept: run again to resume");
    }
    if (o && o->sha256 && *o->sha256) {
        char hex[65];
        if ((s = deft_sha256_file(part, hex))) return s;
        if (!deft_sha256_matches(hex, o->sha256)) {
            remove(part);
            return deft_set_error(DEFT_ERR_FORMAT, "%s: checksum mismatch: SHA-256 %s, expected "
                                  "%s; the file was removed", url, hex, o->sha256);
        }
    }
    return fsync_rename(part, path);
}

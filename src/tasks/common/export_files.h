/* export_files.h (internal) - the files one export writes, so a failure
 * part-way removes those already written (an export leaves all its files or
 * none), and the path helpers the exports share. */
#ifndef DEFT_TASKS_EXPORT_FILES_H
#define DEFT_TASKS_EXPORT_FILES_H

#include <stddef.h>

#define EXPORT_FILES_MAX 8

struct export_files {
    char path[EXPORT_FILES_MAX][4200];
    int n;
};

/* Record a file just written. */
void export_files_add(struct export_files *w, const char *path);
/* Remove every recorded file (after a failure). */
void export_files_remove_all(struct export_files *w);
/* Directory of path with a trailing '/' ("" for a bare file name). */
void export_dir_of(const char *path, char *out, size_t n);
/* The file name part of path. */
const char *export_base_of(const char *path);

#endif

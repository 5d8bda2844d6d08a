/* run_lock.h (internal) - the results folder's lock (run_lock.c). */
#ifndef DEFT_RUN_LOCK_H
#define DEFT_RUN_LOCK_H

#include "deft/core.h"

/* DEFT_ERR_INVALID_ARG naming the pid when a live process other than this
 * one holds dir's lock. */
enum deft_status run_lock_check(const char *dir);
/* Take dir's lock (dir exists): ours, or a stale one taken over. */
enum deft_status run_lock_take(const char *dir);

#endif

/* alloc.c - the allocation hook: counting and fault injection (lua's
 * debug_realloc, curl's torture tests), so tests can fail the k-th allocation
 * and check that every path cleans up. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include "deft/core.h"

static atomic_long alloc_total;
static atomic_long alloc_live;
static atomic_long fail_at; /* absolute allocation number that fails, 0 = never */

static bool should_fail(void) {
    long n = atomic_fetch_add(&alloc_total, 1) + 1;
    long f = atomic_load(&fail_at);
    return f != 0 && n == f;
}

void deft_alloc_fail_after(long k) {
    atomic_store(&fail_at, k > 0 ? atomic_load(&alloc_total) + k : 0);
}
long deft_alloc_count(void) { return atomic_load(&alloc_total); }
long deft_alloc_live(void) { return atomic_load(&alloc_live); }

void *deft_malloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = malloc(n ? n : 1);
    if (p) atomic_fetch_add(&alloc_live, 1);
    return p;
}

void *deft_calloc(size_t count, size_t size) {
    if (should_fail()) return NULL;
    if (count == 0 || size == 0) count = size = 1;
    void *p = calloc(count, size);
    if (p) atomic_fetch_add(&alloc_live, 1);
    return p;
}

void *deft_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    void *q = realloc(p, n ? n : 1);
    if (q && !p) atomic_fetch_add(&alloc_live, 1);
    return q;
}

void deft_free(void *p) {
    if (!p) return;
    atomic_fetch_sub(&alloc_live, 1);
    free(p);
}

/* Buffers of this size or more (activation arenas, parameters, gradients)
 * start on a 2 MiB boundary and ask for transparent huge pages: their first
 * touch then faults once per 2 MiB instead of once per 4 KiB, which costs
 * seconds in a training run's first step under a hypervisor. */
#define HUGE_MIN ((size_t)8 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

void *deft_malloc_aligned(size_t n) {
    if (should_fail()) return NULL;
    size_t sz = (n + 63) / 64 * 64;
    bool huge = sz >= HUGE_MIN;
    if (huge) sz = (sz + HUGE_ALIGN - 1) / HUGE_ALIGN * HUGE_ALIGN;
    void *p = aligned_alloc(huge ? HUGE_ALIGN : 64, sz ? sz : 64);
    if (p) atomic_fetch_add(&alloc_live, 1);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p && huge) (void)madvise(p, sz, MADV_HUGEPAGE); /* advice only: refused, small pages serve */
#endif
    return p;
}

void deft_free_aligned(void *p) { deft_free(p); }

char *deft_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = deft_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

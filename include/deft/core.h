/* deft/core.h - status codes, error messages, allocation hooks, logging.
 *
 * Every fallible deft function returns `enum deft_status` (DEFT_OK == 0) and
 * delivers results through out-parameters. On failure the library records a
 * human-readable message (which names the file, the key, the tensor ...) in a
 * per-thread buffer read with deft_last_error(). The library never calls exit().
 *
 * Memory: all library allocations go through deft_malloc/deft_calloc/
 * deft_realloc/deft_free, so tests can inject allocation failures
 * (deft_alloc_fail_after) and count live blocks (deft_alloc_live).
 */
#ifndef DEFT_CORE_H
#define DEFT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#if defined(__FAST_MATH__)
#error "deft must not be built with -ffast-math: it breaks NaN checks and gradients"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DEFT_BUILD_SHARED)
#define DEFT_API __attribute__((visibility("default")))
#else
#define DEFT_API
#endif
#define DEFT_NODISCARD __attribute__((warn_unused_result))
#define DEFT_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define DEFT_VERSION_STRING "0.1.0"

/* Stable numbering: never renumber, only append. */
enum deft_status {
    DEFT_OK = 0,
    DEFT_ERR_NOMEM = 1,       /* allocation failed */
    DEFT_ERR_IO = 2,          /* file could not be read/written */
    DEFT_ERR_PARSE = 3,       /* malformed text input (spec, JSON, label) */
    DEFT_ERR_INVALID_ARG = 4, /* bad argument or value from the user */
    DEFT_ERR_SHAPE = 5,       /* shapes do not fit together */
    DEFT_ERR_UNSUPPORTED = 6, /* valid request this build cannot do */
    DEFT_ERR_BACKEND = 7,     /* a backend library (oneDNN, CUDA) failed */
    DEFT_ERR_FORMAT = 8,      /* malformed binary file (model, npy, image) */
    DEFT_ERR_CANCELLED = 9,   /* stopped by the user or a signal */
    DEFT_ERR_NUMERIC = 10,    /* NaN/Inf where a finite number is required */
    DEFT_ERR_NOT_FOUND = 11,  /* named thing (tensor, arch, key) does not exist */
    DEFT_STATUS_COUNT
};

/* Short name of a status code ("DEFT_ERR_IO"). Never NULL. */
DEFT_API const char *deft_status_str(enum deft_status s);

/* Record an error message for this thread and return `s` (so callers can
 * `return deft_set_error(DEFT_ERR_IO, "cannot open %s: %s", path, strerror(errno));`). */
DEFT_API enum deft_status deft_set_error(enum deft_status s, const char *fmt, ...) DEFT_PRINTF(2, 3);
/* Prefix the current message with more context ("loading model.safetensors: ..."). */
DEFT_API enum deft_status deft_wrap_error(enum deft_status s, const char *fmt, ...) DEFT_PRINTF(2, 3);
/* Last message recorded on this thread ("" when none). */
DEFT_API const char *deft_last_error(void);
DEFT_API void deft_clear_error(void);

/* Exit status the CLI uses for a status: 2 for bad input/usage, 1 otherwise, 0 for OK. */
DEFT_API int deft_status_exit_code(enum deft_status s);

/* ---- allocation -------------------------------------------------------- */
DEFT_API void *deft_malloc(size_t n);
DEFT_API void *deft_calloc(size_t count, size_t size);
DEFT_API void *deft_realloc(void *p, size_t n);
DEFT_API void deft_free(void *p);
/* 64-byte aligned allocation (oneDNN and AVX-512 like it); free with deft_free_aligned. */
DEFT_API void *deft_malloc_aligned(size_t n);
DEFT_API void deft_free_aligned(void *p);
DEFT_API char *deft_strdup(const char *s);
/* Fault injection: the k-th allocation from now fails (k >= 1); 0 disables. */
DEFT_API void deft_alloc_fail_after(long k);
/* Number of allocations performed since the process started (for fault loops). */
DEFT_API long deft_alloc_count(void);
/* Blocks currently allocated through deft_* (leak checks in tests). */
DEFT_API long deft_alloc_live(void);

/* ---- logging ----------------------------------------------------------- */
enum deft_log_level { DEFT_LOG_DEBUG = 0, DEFT_LOG_INFO, DEFT_LOG_WARN, DEFT_LOG_ERROR };
typedef void (*deft_log_fn)(enum deft_log_level level, const char *msg, void *user);
/* Install a log sink (NULL restores the default: stderr, level >= INFO). */
DEFT_API void deft_log_set(deft_log_fn fn, void *user);
/* The sink installed now (NULL: the default), to chain to it and restore it. */
DEFT_API void deft_log_get(deft_log_fn *fn, void **user);
/* Print msg as the default sink does ("warning: ..." on stderr). */
DEFT_API void deft_log_default(enum deft_log_level level, const char *msg);
DEFT_API void deft_log_set_level(enum deft_log_level level);
DEFT_API void deft_log(enum deft_log_level level, const char *fmt, ...) DEFT_PRINTF(2, 3);

/* ---- misc -------------------------------------------------------------- */
/* Monotonic wall clock in seconds. */
DEFT_API double deft_time_now(void);
/* Set the number of worker threads (OpenMP). Call before creating runtimes. */
DEFT_API void deft_set_threads(int n);
DEFT_API int deft_get_threads(void);

/* Counter-based RNG: the same (seed, stream, index) always gives the same number,
 * whatever the thread count, which keeps dropout and init reproducible. */
DEFT_API uint64_t deft_rng_u64(uint64_t seed, uint64_t stream, uint64_t index);
DEFT_API float deft_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index); /* [0,1) */
DEFT_API float deft_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* Programmer invariant (never for user input): logs and aborts through a hook. */
DEFT_API void deft_assert_fail(const char *expr, const char *file, int line);
#define DEFT_ASSERT(c) ((c) ? (void)0 : deft_assert_fail(#c, __FILE__, __LINE__))

#ifdef __cplusplus
}
#endif
#endif

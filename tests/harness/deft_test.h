/* deft_test.h - a tiny test harness (no framework dependency).
 *
 *     int main(void) {
 *         CHECK(1 + 1 == 2, "arithmetic");
 *         CHECK_NEAR(x, 1.0, 1e-6, "x");
 *         return test_summary();     // prints "N passed, N failed", exit status
 *     }
 *
 * test_skip("why") prints the reason and exits 77 (ctest SKIP_RETURN_CODE).
 */
#ifndef DEFT_TEST_H
#define DEFT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "deft/deft.h"

extern int test_passed, test_failed;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            test_passed++;                                                      \
        } else {                                                                \
            test_failed++;                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                         \
            printf(__VA_ARGS__);                                                \
            printf("\n");                                                       \
        }                                                                       \
    } while (0)
#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        enum deft_status s_ = (expr);                                           \
        CHECK(s_ == DEFT_OK, "%s -> %s: %s", #expr, deft_status_str(s_),        \
              deft_last_error());                                               \
    } while (0)
#define CHECK_NEAR(a, b, tol, ...) CHECK(fabs((double)(a) - (double)(b)) <= (tol), __VA_ARGS__)

int test_summary(void);
void test_skip(const char *why);
/* Part of the test cannot run here (a peer or ../shared missing): say why
 * and record it in $DEFT_SKIP_LOG, so the runner's summary counts the test
 * as partly skipped instead of plainly passed. The test goes on. */
void test_skip_part(const char *why);

/* Paths: the source tree and ../shared beside it (NULL when absent). */
const char *test_source_dir(void);
const char *test_shared_dir(void);
/* /usr/bin/python3 with torch importable? */
bool test_have_torch(void);
/* A fresh temporary directory (removed by test_summary). */
const char *test_tmpdir(void);

/* Comparison of float arrays: max |a-b|, and the relative error
 * max|a-b| / max|b| (relative to the tensor's scale, so entries that are
 * near zero by cancellation do not dominate). */
double test_max_abs_diff(const float *a, const float *b, size_t n);
double test_max_rel_err(const float *a, const float *b, size_t n);

/* Minimal .npy I/O for tests (f32, C order). */
int test_npy_write(const char *path, const float *data, const int64_t *shape, int ndim);
float *test_npy_read(const char *path, int64_t *shape, int *ndim); /* free() the result */

#endif

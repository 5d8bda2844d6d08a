/* prefetch.h - the ordered, threaded batch ring shared by the
 * classification loader (loader.c) and the detection loader (det_loader.c).
 * Internal to libdeft.
 *
 * Positions 0..P-1 of an epoch are claimed in order by N worker threads;
 * position p belongs to batch p / B, which lives in ring slot (p / B) % K.
 * A batch may only be claimed once the consumer has released the batch
 * that used its slot before. Workers fill items through the client's load
 * callback (outside the lock); the worker that completes a batch runs the
 * finalize callback. The consumer takes batches strictly in order, so the
 * output depends only on what the callbacks compute from (epoch, position),
 * never on the thread count. */
#ifndef DEFT_DATA_PREFETCH_H
#define DEFT_DATA_PREFETCH_H

#include "deft/data.h"

struct deft_prefetch_cfg {
    int batch_size;   /* B > 0 */
    int num_batches;  /* per epoch */
    int64_t positions;/* per epoch (<= num_batches * B) */
    int slots;        /* K >= 1 */
    int threads;      /* >= 1 */
    void *ctx;
    /* Fill item i of ring slot k (batch b) with position p of epoch. Adds the
     * corrupt images it skipped to *corrupt. Called without the lock. */
    enum deft_status (*load)(void *ctx, int k, int i, int64_t b, int epoch, int64_t p, int *corrupt);
    /* Optional: after every item of batch b (size items) is loaded. */
    void (*finalize)(void *ctx, int k, int size, int64_t b, int epoch);
    /* Optional: runs at epoch start while no worker is active (permutations). */
    void (*prepare)(void *ctx, int epoch);
};

struct deft_prefetch;

enum deft_status deft_prefetch_create(const struct deft_prefetch_cfg *c, struct deft_prefetch **out);
void deft_prefetch_free(struct deft_prefetch *pf);
/* Abandon the current epoch and begin `epoch`. */
void deft_prefetch_start_epoch(struct deft_prefetch *pf, int epoch);
bool deft_prefetch_started(const struct deft_prefetch *pf);
/* Wait for the next batch: *k its slot, *size its items (0 = epoch over,
 * nothing to release), *b its index. Errors: the first failing batch's. */
enum deft_status deft_prefetch_acquire(struct deft_prefetch *pf, int *k, int *size, int64_t *b);
/* Hand back the slot of the batch acquired last. */
void deft_prefetch_release(struct deft_prefetch *pf);
void deft_prefetch_get_stats(const struct deft_prefetch *pf, struct deft_loader_stats *s);

/* perm = 0..n-1, shuffled (Fisher-Yates keyed by (seed, epoch)) when asked:
 * the epoch order of both loaders. */
void deft_epoch_permutation(int *perm, int n, bool shuffle, uint64_t seed, int epoch);
/* Random stream of the sample at position p of epoch (attempt: replacements). */
static inline uint64_t deft_sample_stream(int epoch, int64_t p, int attempt) {
    return ((uint64_t)(uint32_t)epoch << 40) ^ ((uint64_t)p << 8) ^ (uint64_t)attempt;
}

#endif

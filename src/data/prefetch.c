/* prefetch.c - ordered threaded batch ring (see prefetch.h). Moved out of
 * loader.c so the detection loader shares the same threads and ordering. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "prefetch.h"

struct slot {
    int64_t batch;
    int size, done;
    bool ready;
};

struct deft_prefetch {
    struct deft_prefetch_cfg c;
    struct slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    pthread_t *threads;
    int nthreads;
    bool quit, started, paused;
    int epoch;
    uint64_t gen;
    int64_t next_pos, next_batch;
    int active;
    enum deft_status err;
    int64_t err_batch;
    char errmsg[1024];
    struct deft_loader_stats stats;
};

static int batch_size_of(const struct deft_prefetch *pf, int64_t b) {
    int64_t left = pf->c.positions - b * pf->c.batch_size;
    return (int)(left < pf->c.batch_size ? left : pf->c.batch_size);
}

static void *worker_main(void *arg) {
    struct deft_prefetch *pf = arg;
    const int B = pf->c.batch_size, K = pf->c.slots;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        if (pf->quit) break;
        if (!pf->started || pf->paused || pf->next_pos >= pf->c.positions ||
            pf->next_pos / B >= pf->next_batch + K) {
            pthread_cond_wait(&pf->cv_work, &pf->mu);
            continue;
        }
        int64_t p = pf->next_pos++;
        int64_t b = p / B;
        int i = (int)(p % B);
        int k = (int)(b % K);
        struct slot *sl = &pf->slots[k];
        if (i == 0) {
            sl->batch = b;
            sl->size = batch_size_of(pf, b);
            sl->done = 0;
            sl->ready = false;
        }
        int epoch = pf->epoch;
        uint64_t gen = pf->gen;
        pf->active++;
        pthread_mutex_unlock(&pf->mu);

        double t0 = deft_time_now();
        int corrupt = 0;
        enum deft_status st = pf->c.load(pf->c.ctx, k, i, b, epoch, p, &corrupt);
        char msg[sizeof pf->errmsg];
        if (st != DEFT_OK) snprintf(msg, sizeof msg, "%s", deft_last_error());
        double t1 = deft_time_now();

        pthread_mutex_lock(&pf->mu);
        pf->stats.worker_seconds += t1 - t0;
        bool complete = false;
        if (gen == pf->gen) {
            pf->stats.corrupt_skipped += corrupt;
            if (st == DEFT_OK) {
                pf->stats.images_loaded++;
            } else if (pf->err == DEFT_OK || b < pf->err_batch) {
                pf->err = st;
                pf->err_batch = b;
                memcpy(pf->errmsg, msg, sizeof msg);
            }
            complete = ++sl->done == sl->size;
        }
        if (complete) { /* finalize outside the lock; the slot is ours until ready */
            pthread_mutex_unlock(&pf->mu);
            if (pf->c.finalize) pf->c.finalize(pf->c.ctx, k, sl->size, b, epoch);
            pthread_mutex_lock(&pf->mu);
            if (gen == pf->gen) sl->ready = true;
        }
        pf->active--;
        pthread_cond_broadcast(&pf->cv_done);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

void deft_prefetch_free(struct deft_prefetch *pf) {
    if (!pf) return;
    if (pf->threads) {
        pthread_mutex_lock(&pf->mu);
        pf->quit = true;
        pthread_cond_broadcast(&pf->cv_work);
        pthread_mutex_unlock(&pf->mu);
        for (int i = 0; i < pf->nthreads; i++) pthread_join(pf->threads[i], NULL);
        deft_free(pf->threads);
        pthread_mutex_destroy(&pf->mu);
        pthread_cond_destroy(&pf->cv_work);
        pthread_cond_destroy(&pf->cv_done);
    }
    deft_free(pf->slots);
    deft_free(pf);
}

enum deft_status deft_prefetch_create(const struct deft_prefetch_cfg *c, struct deft_prefetch **out) {
    *out = NULL;
    if (!c || c->batch_size <= 0 || c->slots <= 0 || c->threads <= 0 || !c->load)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "prefetch: bad configuration");
    struct deft_prefetch *pf = deft_calloc(1, sizeof *pf);
    if (!pf) return deft_set_error(DEFT_ERR_NOMEM, "loader: out of memory");
    pf->c = *c;
    pf->slots = deft_calloc((size_t)c->slots, sizeof(struct slot));
    pf->threads = deft_calloc((size_t)c->threads, sizeof(pthread_t));
    if (!pf->slots || !pf->threads) {
        deft_free(pf->slots);
        deft_free(pf->threads);
        deft_free(pf);
        return deft_set_error(DEFT_ERR_NOMEM, "loader: out of memory");
    }
    for (int k = 0; k < c->slots; k++) pf->slots[k].batch = -1;
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv_work, NULL);
    pthread_cond_init(&pf->cv_done, NULL);
    for (int i = 0; i < c->threads; i++) {
        if (pthread_create(&pf->threads[i], NULL, worker_main, pf) != 0) {
            deft_prefetch_free(pf);
            return deft_set_error(DEFT_ERR_BACKEND, "loader: cannot start worker thread %d", i);
        }
        pf->nthreads++;
    }
    *out = pf;
    return DEFT_OK;
}

bool deft_prefetch_started(const struct deft_prefetch *pf) { return pf->started; }

void deft_prefetch_start_epoch(struct deft_prefetch *pf, int epoch) {
    pthread_mutex_lock(&pf->mu);
    pf->paused = true;
    while (pf->active > 0) pthread_cond_wait(&pf->cv_done, &pf->mu);
    pf->gen++;
    pf->epoch = epoch;
    if (pf->c.prepare) pf->c.prepare(pf->c.ctx, epoch);
    for (int k = 0; k < pf->c.slots; k++) {
        pf->slots[k].batch = -1;
        pf->slots[k].ready = false;
        pf->slots[k].done = 0;
    }
    pf->next_pos = 0;
    pf->next_batch = 0;
    pf->err = DEFT_OK;
    pf->err_batch = 0;
    pf->errmsg[0] = 0;
    pf->started = true;
    pf->paused = false;
    pthread_cond_broadcast(&pf->cv_work);
    pthread_mutex_unlock(&pf->mu);
}

enum deft_status deft_prefetch_acquire(struct deft_prefetch *pf, int *k, int *size, int64_t *b) {
    *size = 0;
    double t0 = deft_time_now();
    pthread_mutex_lock(&pf->mu);
    if (pf->next_batch >= pf->c.num_batches) {
        pthread_mutex_unlock(&pf->mu);
        return DEFT_OK;
    }
    int64_t nb = pf->next_batch;
    struct slot *sl = &pf->slots[nb % pf->c.slots];
    while (!(sl->batch == nb && sl->ready)) {
        if (pf->err != DEFT_OK && pf->err_batch <= nb) break;
        pthread_cond_wait(&pf->cv_done, &pf->mu);
    }
    pf->stats.wait_seconds += deft_time_now() - t0;
    if (pf->err != DEFT_OK && pf->err_batch <= nb) {
        enum deft_status st = pf->err;
        char msg[sizeof pf->errmsg];
        memcpy(msg, pf->errmsg, sizeof msg);
        pthread_mutex_unlock(&pf->mu);
        return deft_set_error(st, "%s", msg);
    }
    pthread_mutex_unlock(&pf->mu);
    *k = (int)(nb % pf->c.slots);
    *size = sl->size;
    *b = nb;
    return DEFT_OK;
}

void deft_prefetch_release(struct deft_prefetch *pf) {
    pthread_mutex_lock(&pf->mu);
    pf->next_batch++;
    pf->stats.batches++;
    pthread_cond_broadcast(&pf->cv_work);
    pthread_mutex_unlock(&pf->mu);
}

void deft_prefetch_get_stats(const struct deft_prefetch *pf, struct deft_loader_stats *s) {
    pthread_mutex_lock((pthread_mutex_t *)&pf->mu);
    *s = pf->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&pf->mu);
}

#define STREAM_SHUFFLE (1ull << 62)

void deft_epoch_permutation(int *perm, int n, bool shuffle, uint64_t seed, int epoch) {
    for (int i = 0; i < n; i++) perm[i] = i;
    if (!shuffle) return;
    for (int i = n - 1; i > 0; i--) {
        uint64_t r = deft_rng_u64(seed, STREAM_SHUFFLE ^ (uint64_t)(uint32_t)epoch, (uint64_t)i);
        int j = (int)(r % (uint64_t)(i + 1));
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

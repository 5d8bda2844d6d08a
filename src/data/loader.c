/* loader.c - multi-threaded prefetching batch loader.
 *
 * Sample positions 0..P-1 of an epoch are claimed in order by N worker
 * threads; position p belongs to batch p / B, which lives in ring slot
 * (p / B) % K. A batch may only be claimed once the consumer has handed out
 * the batch that used its slot before. Each worker reads, decodes and
 * transforms its sample straight into the slot; the worker that completes a
 * batch applies mixup. The consumer takes batches strictly in order.
 *
 * Everything random is keyed by (seed, epoch, position[, attempt]), so the
 * batches are identical for any thread count or prefetch depth:
 *   shuffle     permutation of the dataset from (seed, epoch)
 *   transform   stream = epoch<<40 | position<<8 | attempt
 *   replacement a corrupt sample at position p is replaced by a sample drawn
 *               from (seed, epoch, p, attempt), tried up to 32 times
 *   mixup       lambda from Beta(a, a) keyed by (epoch, position)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "deft/data.h"

#define STREAM_SHUFFLE (1ull << 62)
#define STREAM_MIXUP (1ull << 61)
#define STREAM_REPLACE (1ull << 60)
#define MAX_ATTEMPTS 32

struct slot {
    float *images;
    int *label;  /* class id per item */
    float *lam;  /* mixup lambda per item (1 without mixup) */
    int64_t batch;
    int size, done;
    bool ready;
};

struct deft_loader {
    struct deft_loader_opts o;
    const struct deft_dataset *ds;
    int n, B, C, nb, K, H, W;
    size_t sample_floats;
    int64_t positions; /* per epoch */
    bool soft;
    int *perm;
    struct slot *slots;
    atomic_uchar *bad; /* known-corrupt samples (avoid re-reading; warn once) */

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

void deft_loader_opts_defaults(struct deft_loader_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 32;
    o->num_threads = 2;
    o->shuffle = true;
    deft_transform_defaults(&o->transform);
}

static uint64_t sample_stream(int epoch, int64_t pos, int attempt) {
    return ((uint64_t)(uint32_t)epoch << 40) ^ ((uint64_t)pos << 8) ^ (uint64_t)attempt;
}

/* Load the sample at position p into out; *label, *corrupt set. */
static enum deft_status load_sample(struct deft_loader *l, int epoch, int64_t p, float *out,
                                    int *label, int *corrupt) {
    int s = l->perm[p];
    *corrupt = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (attempt > 0) {
            uint64_t r = deft_rng_u64(l->o.seed, STREAM_REPLACE ^ sample_stream(epoch, p, attempt), 0);
            s = (int)(r % (uint64_t)l->n);
        }
        if (atomic_load(&l->bad[s])) {
            (*corrupt)++;
            continue;
        }
        const char *path = l->ds->paths[s];
        uint8_t *data;
        size_t nbytes;
        enum deft_status st = deft_read_file(path, (size_t)512 << 20, &data, &nbytes);
        if (st == DEFT_OK) {
            st = deft_transform_bytes(&l->o.transform, data, nbytes, l->o.seed,
                                      sample_stream(epoch, p, attempt), out);
            deft_free(data);
            if (st != DEFT_OK) deft_wrap_error(st, "%s", path);
        }
        if (st == DEFT_OK) {
            *label = l->ds->labels[s];
            return DEFT_OK;
        }
        if (st == DEFT_ERR_NOMEM || l->o.strict) return st;
        (*corrupt)++;
        if (!atomic_exchange(&l->bad[s], 1))
            deft_log(DEFT_LOG_WARN, "skipping unreadable image: %s", deft_last_error());
    }
    return deft_set_error(DEFT_ERR_FORMAT,
                          "%d unreadable images in a row while filling position %lld of epoch %d "
                          "(is the dataset corrupt?)",
                          MAX_ATTEMPTS, (long long)p, epoch);
}

/* Mixup as TAO makenet's MixupImageDataGenerator: lambda ~ Beta(a, a),
 * lambda = max(lambda, 1 - lambda), item i mixes with item size-1-i. */
static void finalize_batch(struct deft_loader *l, struct slot *sl, int epoch) {
    for (int i = 0; i < sl->size; i++) sl->lam[i] = 1.0f;
    if (l->o.mixup_alpha <= 0) return;
    for (int i = 0; i < sl->size; i++) {
        int64_t p = sl->batch * l->B + i;
        double lam = deft_rng_beta(l->o.seed, STREAM_MIXUP ^ sample_stream(epoch, p, 0),
                                   l->o.mixup_alpha, l->o.mixup_alpha);
        if (lam < 1.0 - lam) lam = 1.0 - lam;
        sl->lam[i] = (float)lam;
    }
    size_t f = l->sample_floats;
    for (int i = 0; i < sl->size / 2; i++) {
        int j = sl->size - 1 - i;
        float li = sl->lam[i], lj = sl->lam[j];
        float *xi = sl->images + (size_t)i * f, *xj = sl->images + (size_t)j * f;
        for (size_t k = 0; k < f; k++) {
            float a = xi[k], b = xj[k];
            xi[k] = li * a + (1.0f - li) * b;
            xj[k] = lj * b + (1.0f - lj) * a;
        }
    }
}

static int batch_size_of(const struct deft_loader *l, int64_t b) {
    int64_t left = l->positions - b * l->B;
    return (int)(left < l->B ? left : l->B);
}

static void *worker_main(void *arg) {
    struct deft_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->quit) break;
        if (!l->started || l->paused || l->next_pos >= l->positions ||
            l->next_pos / l->B >= l->next_batch + l->K) {
            pthread_cond_wait(&l->cv_work, &l->mu);
            continue;
        }
        int64_t p = l->next_pos++;
        int64_t b = p / l->B;
        int i = (int)(p % l->B);
        struct slot *sl = &l->slots[b % l->K];
        if (i == 0) {
            sl->batch = b;
            sl->size = batch_size_of(l, b);
            sl->done = 0;
            sl->ready = false;
        }
        int epoch = l->epoch;
        uint64_t gen = l->gen;
        l->active++;
        pthread_mutex_unlock(&l->mu);

        double t0 = deft_time_now();
        int label = 0, corrupt = 0;
        enum deft_status st = load_sample(l, epoch, p, sl->images + (size_t)i * l->sample_floats, &label, &corrupt);
        char msg[sizeof l->errmsg];
        if (st != DEFT_OK) snprintf(msg, sizeof msg, "%s", deft_last_error());
        double t1 = deft_time_now();

        pthread_mutex_lock(&l->mu);
        l->stats.worker_seconds += t1 - t0;
        bool complete = false;
        if (gen == l->gen) {
            l->stats.corrupt_skipped += corrupt;
            if (st == DEFT_OK) {
                l->stats.images_loaded++;
            } else if (l->err == DEFT_OK || b < l->err_batch) {
                l->err = st;
                l->err_batch = b;
                memcpy(l->errmsg, msg, sizeof msg);
            }
            sl->label[i] = label;
            complete = ++sl->done == sl->size;
        }
        if (complete) { /* mixup outside the lock; the slot is ours until ready */
            pthread_mutex_unlock(&l->mu);
            finalize_batch(l, sl, epoch);
            pthread_mutex_lock(&l->mu);
            if (gen == l->gen) sl->ready = true;
        }
        l->active--;
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int deft_loader_num_batches(const struct deft_loader *l) { return l->nb; }
bool deft_loader_soft_labels(const struct deft_loader *l) { return l->soft; }

void deft_loader_get_stats(const struct deft_loader *l, struct deft_loader_stats *s) {
    pthread_mutex_lock((pthread_mutex_t *)&l->mu);
    *s = l->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
}

void deft_loader_free(struct deft_loader *l) {
    if (!l) return;
    if (l->threads) {
        pthread_mutex_lock(&l->mu);
        l->quit = true;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
        deft_free(l->threads);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv_work);
        pthread_cond_destroy(&l->cv_done);
    }
    if (l->slots)
        for (int k = 0; k < l->K; k++) {
            deft_free_aligned(l->slots[k].images);
            deft_free(l->slots[k].label);
            deft_free(l->slots[k].lam);
        }
    deft_free(l->slots);
    deft_free(l->perm);
    deft_free((void *)l->bad);
    deft_free(l);
}

enum deft_status deft_loader_create(const struct deft_loader_opts *o, const struct deft_dataset *ds,
                                    struct deft_loader **out) {
    *out = NULL;
    if (!o || !ds || ds->num_samples <= 0 || ds->num_classes <= 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "loader: empty dataset");
    if (o->batch_size <= 0 || o->num_threads <= 0 || o->num_threads > 256 || o->prefetch < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "loader: batch_size and num_threads must be > 0 (got %d, %d)",
                              o->batch_size, o->num_threads);
    if (o->mixup_alpha < 0 || o->mixup_alpha != o->mixup_alpha)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "loader: mixup_alpha must be >= 0");
    const struct deft_transform *t = &o->transform;
    if (t->out_w <= 0 || t->out_h <= 0 || t->out_w > DEFT_IMAGE_MAX_SIDE || t->out_h > DEFT_IMAGE_MAX_SIDE)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "loader: bad output size %dx%d", t->out_w, t->out_h);
    if (o->drop_last && ds->num_samples < o->batch_size)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "loader: %d samples is less than one batch of %d with drop_last",
                              ds->num_samples, o->batch_size);
    struct deft_loader *l = deft_calloc(1, sizeof *l);
    if (!l) return deft_set_error(DEFT_ERR_NOMEM, "loader: out of memory");
    l->o = *o;
    l->ds = ds;
    l->n = ds->num_samples;
    l->B = o->batch_size;
    l->C = ds->num_classes;
    l->H = t->out_h;
    l->W = t->out_w;
    l->sample_floats = (size_t)3 * l->H * l->W;
    l->nb = o->drop_last ? l->n / l->B : (l->n + l->B - 1) / l->B;
    l->positions = o->drop_last ? (int64_t)l->nb * l->B : l->n;
    l->soft = o->mixup_alpha > 0 || o->one_hot;
    l->K = o->prefetch > 0 ? o->prefetch : 2 * o->num_threads + 1;
    if (l->K > l->nb) l->K = l->nb > 0 ? l->nb : 1;
    l->perm = deft_malloc(sizeof(int) * (size_t)l->n);
    l->bad = deft_calloc((size_t)l->n, sizeof(atomic_uchar));
    l->slots = deft_calloc((size_t)l->K, sizeof(struct slot));
    if (!l->perm || !l->bad || !l->slots) goto nomem;
    for (int k = 0; k < l->K; k++) {
        struct slot *sl = &l->slots[k];
        sl->images = deft_malloc_aligned(sizeof(float) * l->sample_floats * (size_t)l->B);
        sl->label = deft_malloc(sizeof(int) * (size_t)l->B);
        sl->lam = deft_malloc(sizeof(float) * (size_t)l->B);
        sl->batch = -1;
        if (!sl->images || !sl->label || !sl->lam) goto nomem;
    }
    l->threads = deft_calloc((size_t)o->num_threads, sizeof(pthread_t));
    if (!l->threads) goto nomem;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    for (int i = 0; i < o->num_threads; i++) {
        if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
            deft_loader_free(l);
            return deft_set_error(DEFT_ERR_BACKEND, "loader: cannot start worker thread %d", i);
        }
        l->nthreads++;
    }
    *out = l;
    return DEFT_OK;
nomem:
    deft_loader_free(l);
    return deft_set_error(DEFT_ERR_NOMEM, "loader: out of memory for %d slots of %d x 3x%dx%d",
                          o->prefetch, o->batch_size, t->out_h, t->out_w);
}

enum deft_status deft_loader_start_epoch(struct deft_loader *l, int epoch) {
    if (epoch < 0) return deft_set_error(DEFT_ERR_INVALID_ARG, "loader: negative epoch %d", epoch);
    pthread_mutex_lock(&l->mu);
    l->paused = true;
    while (l->active > 0) pthread_cond_wait(&l->cv_done, &l->mu);
    l->gen++;
    l->epoch = epoch;
    for (int i = 0; i < l->n; i++) l->perm[i] = i;
    if (l->o.shuffle)
        for (int i = l->n - 1; i > 0; i--) {
            uint64_t r = deft_rng_u64(l->o.seed, STREAM_SHUFFLE ^ (uint64_t)(uint32_t)epoch, (uint64_t)i);
            int j = (int)(r % (uint64_t)(i + 1));
            int tmp = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = tmp;
        }
    for (int k = 0; k < l->K; k++) {
        l->slots[k].batch = -1;
        l->slots[k].ready = false;
        l->slots[k].done = 0;
    }
    l->next_pos = 0;
    l->next_batch = 0;
    l->err = DEFT_OK;
    l->err_batch = 0;
    l->errmsg[0] = 0;
    l->started = true;
    l->paused = false;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return DEFT_OK;
}

enum deft_status deft_loader_next(struct deft_loader *l, float *images, float *labels, int *n_in_batch) {
    *n_in_batch = 0;
    if (!l->started) {
        enum deft_status st = deft_loader_start_epoch(l, 0);
        if (st != DEFT_OK) return st;
    }
    double t0 = deft_time_now();
    pthread_mutex_lock(&l->mu);
    if (l->next_batch >= l->nb) {
        pthread_mutex_unlock(&l->mu);
        return DEFT_OK;
    }
    int64_t b = l->next_batch;
    struct slot *sl = &l->slots[b % l->K];
    while (!(sl->batch == b && sl->ready)) {
        if (l->err != DEFT_OK && l->err_batch <= b) break;
        pthread_cond_wait(&l->cv_done, &l->mu);
    }
    if (l->err != DEFT_OK && l->err_batch <= b) {
        enum deft_status st = l->err;
        char msg[sizeof l->errmsg];
        memcpy(msg, l->errmsg, sizeof msg);
        l->stats.wait_seconds += deft_time_now() - t0;
        pthread_mutex_unlock(&l->mu);
        return deft_set_error(st, "%s", msg);
    }
    l->stats.wait_seconds += deft_time_now() - t0;
    pthread_mutex_unlock(&l->mu);

    int size = sl->size;
    memcpy(images, sl->images, sizeof(float) * l->sample_floats * (size_t)size);
    if (l->soft) {
        memset(labels, 0, sizeof(float) * (size_t)size * l->C);
        for (int i = 0; i < size; i++) {
            int j = size - 1 - i;
            labels[(size_t)i * l->C + sl->label[i]] += sl->lam[i];
            labels[(size_t)i * l->C + sl->label[j]] += 1.0f - sl->lam[i];
        }
    } else {
        for (int i = 0; i < size; i++) labels[i] = (float)sl->label[i];
    }
    *n_in_batch = size;

    pthread_mutex_lock(&l->mu);
    l->next_batch++;
    l->stats.batches++;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return DEFT_OK;
}

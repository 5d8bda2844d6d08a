/* loader.c - multi-threaded prefetching batch loader.
 *
 * The threads and the ordered batch ring are prefetch.c's; this file says
 * what one item is: each worker reads, decodes and transforms its sample
 * straight into the slot; the worker that completes a batch applies mixup.
 *
 * Everything random is keyed by (seed, epoch, position[, attempt]), so the
 * batches are identical for any thread count or prefetch depth:
 *   shuffle     permutation of the dataset from (seed, epoch)
 *   transform   stream = epoch<<40 | position<<8 | attempt
 *   replacement a corrupt sample at position p is replaced by a sample drawn
 *               from (seed, epoch, p, attempt), tried up to 32 times
 *   mixup       lambda from Beta(a, a) keyed by (epoch, position)
 * A rank of a data-parallel job (o.rank, o.world) loads local position q
 * as global position q * world + rank, so the keys above are the global ones.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "deft/data.h"
#include "prefetch.h"

#define STREAM_MIXUP (1ull << 61)
#define STREAM_REPLACE (1ull << 60)
#define MAX_ATTEMPTS 32

struct slot {
    float *images;
    int *label;  /* class id per item */
    float *lam;  /* mixup lambda per item (1 without mixup) */
};

struct deft_loader {
    struct deft_loader_opts o;
    const struct deft_dataset *ds;
    int n, B, C, nb, K, H, W;
    int rank, world;   /* distributed sampler: local position q is global q*world+rank */
    size_t sample_floats;
    int64_t positions; /* per epoch */
    bool soft;
    int *perm;
    struct slot *slots;
    atomic_uchar *bad; /* known-corrupt samples (avoid re-reading; warn once) */
    struct deft_prefetch *pf;
};

void deft_loader_opts_defaults(struct deft_loader_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 32;
    o->num_threads = 2;
    o->shuffle = true;
    deft_transform_defaults(&o->transform);
}

/* Load the sample at position p into out; *label, *corrupt set. */
static int64_t global_pos(const struct deft_loader *l, int64_t q) { return q * l->world + l->rank; }

static enum deft_status load_sample(struct deft_loader *l, int epoch, int64_t p, float *out,
                                    int *label, int *corrupt) {
    p = global_pos(l, p);
    int s = l->perm[p];
    *corrupt = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (attempt > 0) {
            uint64_t r = deft_rng_u64(l->o.seed, STREAM_REPLACE ^ deft_sample_stream(epoch, p, attempt), 0);
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
                                      deft_sample_stream(epoch, p, attempt), out);
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
static void finalize_batch(void *ctx, int k, int size, int64_t batch, int epoch) {
    struct deft_loader *l = ctx;
    struct slot *sl = &l->slots[k];
    for (int i = 0; i < size; i++) sl->lam[i] = 1.0f;
    if (l->o.mixup_alpha <= 0) return;
    for (int i = 0; i < size; i++) {
        int64_t p = global_pos(l, batch * l->B + i);
        double lam = deft_rng_beta(l->o.seed, STREAM_MIXUP ^ deft_sample_stream(epoch, p, 0),
                                   l->o.mixup_alpha, l->o.mixup_alpha);
        if (lam < 1.0 - lam) lam = 1.0 - lam;
        sl->lam[i] = (float)lam;
    }
    size_t f = l->sample_floats;
    for (int i = 0; i < size / 2; i++) {
        int j = size - 1 - i;
        float li = sl->lam[i], lj = sl->lam[j];
        float *xi = sl->images + (size_t)i * f, *xj = sl->images + (size_t)j * f;
        for (size_t q = 0; q < f; q++) {
            float a = xi[q], b = xj[q];
            xi[q] = li * a + (1.0f - li) * b;
            xj[q] = lj * b + (1.0f - lj) * a;
        }
    }
}

static enum deft_status load_item(void *ctx, int k, int i, int64_t b, int epoch, int64_t p, int *corrupt) {
    (void)b;
    struct deft_loader *l = ctx;
    struct slot *sl = &l->slots[k];
    int label = 0;
    enum deft_status st = load_sample(l, epoch, p, sl->images + (size_t)i * l->sample_floats, &label, corrupt);
    sl->label[i] = label;
    return st;
}

static void prepare_epoch(void *ctx, int epoch) {
    struct deft_loader *l = ctx;
    deft_epoch_permutation(l->perm, l->n, l->o.shuffle, l->o.seed, epoch);
}

int deft_loader_num_batches(const struct deft_loader *l) { return l->nb; }
bool deft_loader_soft_labels(const struct deft_loader *l) { return l->soft; }

void deft_loader_get_stats(const struct deft_loader *l, struct deft_loader_stats *s) {
    deft_prefetch_get_stats(l->pf, s);
}

void deft_loader_free(struct deft_loader *l) {
    if (!l) return;
    deft_prefetch_free(l->pf); /* joins the workers before their buffers go */
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
    if (o->world < 0 || o->rank < 0 || (o->world > 0 && o->rank >= o->world) || (o->world == 0 && o->rank))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "loader: rank %d of a world of %d", o->rank, o->world);
    int world = o->world > 1 ? o->world : 1;
    if (o->drop_last && ds->num_samples < o->batch_size * world)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "loader: %d samples is less than one batch of %d with drop_last",
                              ds->num_samples, o->batch_size * world);
    struct deft_loader *l = deft_calloc(1, sizeof *l);
    if (!l) return deft_set_error(DEFT_ERR_NOMEM, "loader: out of memory");
    l->o = *o;
    l->ds = ds;
    l->n = ds->num_samples;
    l->B = o->batch_size;
    l->C = ds->num_classes;
    l->H = t->out_h;
    l->W = t->out_w;
    l->sample_floats = (size_t)deft_preprocess_channels(&t->pre) * l->H * l->W;
    l->rank = world > 1 ? o->rank : 0;
    l->world = world;
    /* this rank's share of the epoch's (global) positions */
    int64_t global = o->drop_last ? (int64_t)(l->n / (l->B * world)) * l->B * world : l->n;
    l->positions = global > l->rank ? (global - l->rank + world - 1) / world : 0;
    l->nb = (int)((l->positions + l->B - 1) / l->B);
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
        if (!sl->images || !sl->label || !sl->lam) goto nomem;
    }
    struct deft_prefetch_cfg pc = {
        .batch_size = l->B, .num_batches = l->nb, .positions = l->positions, .slots = l->K,
        .threads = o->num_threads, .ctx = l, .load = load_item, .finalize = finalize_batch,
        .prepare = prepare_epoch,
    };
    enum deft_status st = deft_prefetch_create(&pc, &l->pf);
    if (st != DEFT_OK) {
        deft_loader_free(l);
        return st;
    }
    *out = l;
    return DEFT_OK;
nomem:
    deft_loader_free(l);
    return deft_set_error(DEFT_ERR_NOMEM, "loader: out of memory for %d slots of %d x %dx%dx%d",
                          o->prefetch, o->batch_size, deft_preprocess_channels(&t->pre), t->out_h, t->out_w);
}

enum deft_status deft_loader_start_epoch(struct deft_loader *l, int epoch) {
    if (epoch < 0) return deft_set_error(DEFT_ERR_INVALID_ARG, "loader: negative epoch %d", epoch);
    deft_prefetch_start_epoch(l->pf, epoch);
    return DEFT_OK;
}

enum deft_status deft_loader_next(struct deft_loader *l, float *images, float *labels, int *n_in_batch) {
    *n_in_batch = 0;
    if (!deft_prefetch_started(l->pf)) {
        enum deft_status st = deft_loader_start_epoch(l, 0);
        if (st != DEFT_OK) return st;
    }
    int k = 0, size = 0;
    int64_t b = 0;
    enum deft_status st = deft_prefetch_acquire(l->pf, &k, &size, &b);
    if (st != DEFT_OK || size == 0) return st;
    struct slot *sl = &l->slots[k];
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
    deft_prefetch_release(l->pf);
    return DEFT_OK;
}

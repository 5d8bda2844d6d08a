/* det_loader.c - the detection batch loader on the shared prefetch ring.
 *
 * One item: read the sample's file (and, for a mosaic, three partners drawn
 * from (seed, epoch, position)), probe the sizes, plan the placements,
 * decode JPEGs at the smallest DCT scale the placements allow, transform
 * (det_transform.c), store the boxes normalised to the batch's input size.
 * The input size of batch b is deft_det_input_size(epoch * batches + b).
 *
 * Corrupt images: in training the item is redrawn (like the classification
 * loader: a replacement keyed by (seed, epoch, position, attempt), at most
 * 32 tries); in eval mode every image keeps its place, an unreadable one
 * gives a padded canvas without boxes and corrupt[i] set. Both are counted. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include "det_geom.h"
#include "prefetch.h"

#define STREAM_REPLACE (1ull << 60)
#define MAX_ATTEMPTS 32
#define MAX_FILE_BYTES ((size_t)512 << 20)

struct item {
    struct deft_box *boxes;
    int n, cap;
};

struct slot {
    float *images;       /* B x 3 x maxH x maxW (items packed at the batch's size) */
    struct item *items;  /* B */
    struct deft_letterbox *lb;
    int *index;
    bool *corrupt;
};

struct deft_det_loader {
    struct deft_det_loader_opts o;
    const struct deft_det_dataset *ds;
    int n, B, nb, K, maxW, maxH;
    int rank, world;     /* distributed sampler: local position q is global q*world+rank */
    int64_t positions;
    int *perm;
    atomic_uchar *bad;
    struct slot *slots;
    struct deft_prefetch *pf;
    int epoch;
    /* the batch handed out last */
    float *images;
    int *n_boxes, *box_start, *index;
    bool *corrupt;
    struct deft_letterbox *lb;
    struct deft_box *boxes;
    int box_cap;
};

void deft_det_loader_opts_defaults(struct deft_det_loader_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 8;
    o->num_threads = 2;
    o->shuffle = true;
    deft_det_transform_defaults(&o->transform);
}

/* A read file and its probed size. */
struct raw {
    uint8_t *data;
    size_t n;
    enum deft_image_format fmt;
    int w, h;
};

static enum deft_status read_probe(const char *path, struct raw *r) {
    r->data = NULL;
    enum deft_status st = deft_read_file(path, MAX_FILE_BYTES, &r->data, &r->n);
    if (st == DEFT_OK) st = deft_image_probe(r->data, r->n, &r->fmt, &r->w, &r->h);
    if (st != DEFT_OK) {
        deft_free(r->data);
        r->data = NULL;
        return deft_wrap_error(st, "%s", path);
    }
    return DEFT_OK;
}

static bool item_reserve(struct item *it, int n) {
    if (n <= it->cap) return true;
    struct deft_box *b = deft_realloc(it->boxes, sizeof *b * (size_t)n);
    if (!b) return false;
    it->boxes = b;
    it->cap = n;
    return true;
}

/* Transform the already-read inputs (1 or 4) of one item. */
static enum deft_status transform_item(struct deft_det_loader *l, struct raw *raw, const int *sidx, int n_in,
                                       int w, int h, uint64_t stream, float *out, struct item *it,
                                       struct deft_letterbox *lb) {
    const struct deft_det_transform *t = &l->o.transform;
    int W[4], H[4], total = 0;
    for (int j = 0; j < n_in; j++) {
        W[j] = raw[j].w;
        H[j] = raw[j].h;
        total += l->ds->samples[sidx[j]].n_boxes;
    }
    struct det_place places[4];
    det_plan(t, n_in == 4, W, H, w, h, l->o.seed, stream, places);
    struct deft_image img[4] = {{0}};
    struct deft_det_input in[4];
    enum deft_status st = DEFT_OK;
    int j = 0;
    for (; j < n_in && st == DEFT_OK; j++) {
        struct deft_decode_opts o = t->decode;
        o.min_w = o.min_h = 0;
        if (t->dct_scaling && t->train && raw[j].fmt == DEFT_IMAGE_JPEG && places[j].sw > 0 && places[j].sh > 0) {
            o.min_w = (int)ceil(W[j] * (double)places[j].dw / places[j].sw);
            o.min_h = (int)ceil(H[j] * (double)places[j].dh / places[j].sh);
        }
        st = deft_image_decode(raw[j].data, raw[j].n, &o, &img[j]);
        if (st != DEFT_OK) {
            deft_wrap_error(st, "%s", l->ds->samples[sidx[j]].image);
            break;
        }
        const struct deft_det_sample *s = &l->ds->samples[sidx[j]];
        in[j] = (struct deft_det_input){&img[j], s->boxes, s->n_boxes, NULL, W[j], H[j]};
    }
    if (st == DEFT_OK && !item_reserve(it, total))
        st = deft_set_error(DEFT_ERR_NOMEM, "detection loader: out of memory for %d boxes", total);
    if (st == DEFT_OK)
        st = deft_det_transform_apply(t, in, n_in, w, h, l->o.seed, stream, out, NULL, it->boxes, total, &it->n,
                                      lb);
    for (int q = 0; q < n_in; q++) deft_image_free(&img[q]);
    if (st == DEFT_OK)
        for (int q = 0; q < it->n; q++) {
            it->boxes[q].x1 /= (float)w;
            it->boxes[q].x2 /= (float)w;
            it->boxes[q].y1 /= (float)h;
            it->boxes[q].y2 /= (float)h;
        }
    return st;
}

static void mark_bad(struct deft_det_loader *l, int s) {
    if (!atomic_exchange(&l->bad[s], 1))
        deft_log(DEFT_LOG_WARN, "skipping unreadable image: %s", deft_last_error());
}

static enum deft_status load_item(void *ctx, int k, int i, int64_t b, int epoch, int64_t q, int *corrupt) {
    struct deft_det_loader *l = ctx;
    int64_t p = q * l->world + l->rank; /* the global position: what the draws are keyed by */
    const struct deft_det_transform *t = &l->o.transform;
    struct slot *sl = &l->slots[k];
    int w, h;
    deft_det_input_size(t, l->o.seed, (int64_t)epoch * l->nb + b, &w, &h);
    float *out = sl->images + (size_t)i * 3 * w * h;
    struct item *it = &sl->items[i];
    it->n = 0;
    sl->corrupt[i] = false;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        uint64_t stream = deft_sample_stream(epoch, p, attempt);
        int sidx[4];
        sidx[0] = l->perm[p];
        if (attempt > 0)
            sidx[0] = (int)(deft_rng_u64(l->o.seed, STREAM_REPLACE ^ stream, 0) % (uint64_t)l->n);
        int n_in = deft_det_wants_mosaic(t, l->o.seed, stream) ? 4 : 1;
        for (int j = 1; j < n_in; j++)
            sidx[j] = (int)(deft_rng_u64(l->o.seed, stream, DET_K_PARTNER + (uint64_t)j - 1) % (uint64_t)l->n);
        struct raw raw[4] = {{0}};
        enum deft_status st = DEFT_OK;
        int bad = -1;
        for (int j = 0; j < n_in && st == DEFT_OK; j++) {
            if (atomic_load(&l->bad[sidx[j]])) {
                st = deft_set_error(DEFT_ERR_FORMAT, "%s: unreadable (seen before)", l->ds->samples[sidx[j]].image);
                bad = sidx[j];
                break;
            }
            st = read_probe(l->ds->samples[sidx[j]].image, &raw[j]);
            if (st != DEFT_OK) bad = sidx[j];
        }
        if (st == DEFT_OK) {
            st = transform_item(l, raw, sidx, n_in, w, h, stream, out, it, &sl->lb[i]);
            if (st != DEFT_OK && st != DEFT_ERR_NOMEM) bad = sidx[0]; /* decode failure: blame conservatively */
        }
        for (int j = 0; j < n_in; j++) deft_free(raw[j].data);
        if (st == DEFT_OK) {
            sl->index[i] = sidx[0];
            return DEFT_OK;
        }
        if (st == DEFT_ERR_NOMEM || l->o.strict) return st;
        (*corrupt)++;
        if (bad >= 0) mark_bad(l, bad);
        if (!t->train) { /* eval: keep the place, report it */
            size_t plane = (size_t)w * h;
            for (int c = 0; c < 3; c++) /* padding is 0 after preprocessing */
                for (size_t q = 0; q < plane; q++) out[c * plane + q] = 0.0f;
            if (deft_letterbox_make(1, 1, w, h, &sl->lb[i]) != DEFT_OK) memset(&sl->lb[i], 0, sizeof sl->lb[i]);
            sl->index[i] = sidx[0];
            sl->corrupt[i] = true;
            return DEFT_OK;
        }
    }
    return deft_set_error(DEFT_ERR_FORMAT,
                          "%d unreadable images in a row while filling position %lld of epoch %d "
                          "(is the dataset corrupt?)",
                          MAX_ATTEMPTS, (long long)p, epoch);
}

static void prepare_epoch(void *ctx, int epoch) {
    struct deft_det_loader *l = ctx;
    l->epoch = epoch;
    deft_epoch_permutation(l->perm, l->n, l->o.shuffle && l->o.transform.train, l->o.seed, epoch);
}

static void free_slot(struct slot *sl, int B) {
    deft_free_aligned(sl->images);
    if (sl->items)
        for (int i = 0; i < B; i++) deft_free(sl->items[i].boxes);
    deft_free(sl->items);
    deft_free(sl->lb);
    deft_free(sl->index);
    deft_free(sl->corrupt);
}

void deft_det_loader_free(struct deft_det_loader *l) {
    if (!l) return;
    deft_prefetch_free(l->pf);
    if (l->slots)
        for (int k = 0; k < l->K; k++) free_slot(&l->slots[k], l->B);
    deft_free(l->slots);
    deft_free(l->perm);
    deft_free((void *)l->bad);
    deft_free_aligned(l->images);
    deft_free(l->n_boxes);
    deft_free(l->box_start);
    deft_free(l->index);
    deft_free(l->corrupt);
    deft_free(l->lb);
    deft_free(l->boxes);
    deft_free(l);
}

static enum deft_status check_opts(const struct deft_det_loader_opts *o, const struct deft_det_dataset *ds) {
    if (!o || !ds || ds->n <= 0 || !ds->samples)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection loader: empty dataset");
    if (o->batch_size <= 0 || o->num_threads <= 0 || o->num_threads > 256 || o->prefetch < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detection loader: batch_size and num_threads must be > 0 (got %d, %d)",
                              o->batch_size, o->num_threads);
    const struct deft_det_transform *t = &o->transform;
    const struct deft_det_augment *a = &t->aug;
    if (t->net_w < 32 || t->net_h < 32 || t->net_w > DEFT_IMAGE_MAX_SIDE || t->net_h > DEFT_IMAGE_MAX_SIDE)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection loader: bad input size %dx%d (at least 32)",
                              t->net_w, t->net_h);
    if (t->train && a->randomize_input_shape_period > 0 && (t->net_w % 32 || t->net_h % 32))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detection loader: randomize_input_shape_period needs an input size in multiples "
                              "of 32 (got %dx%d)",
                              t->net_w, t->net_h);
    if (!(a->hue >= 0 && a->hue <= 1) || !(a->saturation >= 1 || a->saturation == 0) ||
        !(a->exposure >= 1 || a->exposure == 0))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detection augmentation: need 0 <= hue <= 1, saturation and exposure >= 1");
    if (!(a->jitter >= 0 && a->jitter < 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection augmentation: jitter must be in [0, 1)");
    if (!(a->hflip_prob >= 0 && a->hflip_prob <= 1 && a->vflip_prob >= 0 && a->vflip_prob <= 1 &&
          a->mosaic_prob >= 0 && a->mosaic_prob <= 1))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection augmentation: probabilities must be in [0, 1]");
    if (a->mosaic_prob > 0 && !(a->mosaic_min_ratio > 0 && a->mosaic_min_ratio < 0.5))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection augmentation: mosaic_min_ratio must be in (0, 0.5)");
    if (a->randomize_input_shape_period < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection augmentation: randomize_input_shape_period >= 0");
    if (o->world < 0 || o->rank < 0 || (o->world > 0 && o->rank >= o->world) || (o->world == 0 && o->rank))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection loader: rank %d of a world of %d", o->rank, o->world);
    int world = o->world > 1 ? o->world : 1;
    if (world > 1 && !(o->drop_last && t->train))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "detection loader: only training with drop_last is sharded "
                              "over ranks");
    if (o->drop_last && t->train && ds->n < o->batch_size * world)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "detection loader: %d samples is less than one batch of %d%s with drop_last", ds->n,
                              o->batch_size * world, world > 1 ? " (the global batch of every rank)" : "");
    for (int i = 0; i < ds->n; i++) {
        const struct deft_det_sample *s = &ds->samples[i];
        if (!s->image || s->n_boxes < 0 || (s->n_boxes > 0 && !s->boxes))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "detection loader: sample %d has no image or bad boxes", i);
    }
    return DEFT_OK;
}

enum deft_status deft_det_loader_create(const struct deft_det_loader_opts *o, const struct deft_det_dataset *ds,
                                        struct deft_det_loader **out) {
    *out = NULL;
    enum deft_status st = check_opts(o, ds);
    if (st != DEFT_OK) return st;
    struct deft_det_loader *l = deft_calloc(1, sizeof *l);
    if (!l) return deft_set_error(DEFT_ERR_NOMEM, "detection loader: out of memory");
    l->o = *o;
    struct deft_det_transform *t = &l->o.transform;
    if (t->aug.saturation == 0) t->aug.saturation = 1;
    if (t->aug.exposure == 0) t->aug.exposure = 1;
    l->ds = ds;
    l->n = ds->n;
    l->B = o->batch_size;
    l->world = o->world > 1 ? o->world : 1;
    l->rank = l->world > 1 ? o->rank : 0;
    bool drop = o->drop_last && t->train;
    l->nb = drop ? l->n / (l->B * l->world) : (l->n + l->B - 1) / l->B;
    l->positions = drop ? (int64_t)l->nb * l->B : l->n;
    deft_det_max_input_size(t, &l->maxW, &l->maxH);
    l->K = o->prefetch > 0 ? o->prefetch : 2 * o->num_threads + 1;
    if (l->K > l->nb) l->K = l->nb > 0 ? l->nb : 1;
    size_t img_floats = (size_t)3 * l->maxW * l->maxH * (size_t)l->B;
    l->perm = deft_malloc(sizeof(int) * (size_t)l->n);
    l->bad = deft_calloc((size_t)l->n, sizeof(atomic_uchar));
    l->slots = deft_calloc((size_t)l->K, sizeof(struct slot));
    l->images = deft_malloc_aligned(sizeof(float) * img_floats);
    l->n_boxes = deft_malloc(sizeof(int) * (size_t)l->B);
    l->box_start = deft_malloc(sizeof(int) * (size_t)l->B);
    l->index = deft_malloc(sizeof(int) * (size_t)l->B);
    l->corrupt = deft_malloc(sizeof(bool) * (size_t)l->B);
    l->lb = deft_malloc(sizeof(struct deft_letterbox) * (size_t)l->B);
    if (!l->perm || !l->bad || !l->slots || !l->images || !l->n_boxes || !l->box_start || !l->index ||
        !l->corrupt || !l->lb)
        goto nomem;
    for (int k = 0; k < l->K; k++) {
        struct slot *sl = &l->slots[k];
        sl->images = deft_malloc_aligned(sizeof(float) * img_floats);
        sl->items = deft_calloc((size_t)l->B, sizeof(struct item));
        sl->lb = deft_calloc((size_t)l->B, sizeof(struct deft_letterbox));
        sl->index = deft_calloc((size_t)l->B, sizeof(int));
        sl->corrupt = deft_calloc((size_t)l->B, sizeof(bool));
        if (!sl->images || !sl->items || !sl->lb || !sl->index || !sl->corrupt) goto nomem;
    }
    struct deft_prefetch_cfg pc = {
        .batch_size = l->B, .num_batches = l->nb, .positions = l->positions, .slots = l->K,
        .threads = o->num_threads, .ctx = l, .load = load_item, .finalize = NULL, .prepare = prepare_epoch,
    };
    if ((st = deft_prefetch_create(&pc, &l->pf)) != DEFT_OK) {
        deft_det_loader_free(l);
        return st;
    }
    *out = l;
    return DEFT_OK;
nomem:
    deft_det_loader_free(l);
    return deft_set_error(DEFT_ERR_NOMEM, "detection loader: out of memory for batches of %d x 3x%dx%d",
                          o->batch_size, l->maxH, l->maxW);
}

enum deft_status deft_det_loader_start_epoch(struct deft_det_loader *l, int epoch) {
    if (epoch < 0) return deft_set_error(DEFT_ERR_INVALID_ARG, "detection loader: negative epoch %d", epoch);
    deft_prefetch_start_epoch(l->pf, epoch);
    return DEFT_OK;
}

enum deft_status deft_det_loader_next(struct deft_det_loader *l, struct deft_det_batch *b) {
    memset(b, 0, sizeof *b);
    if (!deft_prefetch_started(l->pf)) deft_prefetch_start_epoch(l->pf, 0);
    int k = 0, size = 0;
    int64_t bi = 0;
    enum deft_status st = deft_prefetch_acquire(l->pf, &k, &size, &bi);
    if (st != DEFT_OK || size == 0) return st;
    struct slot *sl = &l->slots[k];
    int w, h;
    deft_det_input_size(&l->o.transform, l->o.seed, (int64_t)l->epoch * l->nb + bi, &w, &h);
    int total = 0;
    for (int i = 0; i < size; i++) total += sl->items[i].n;
    if (total > l->box_cap) {
        struct deft_box *nbx = deft_realloc(l->boxes, sizeof *nbx * (size_t)total);
        if (!nbx) {
            deft_prefetch_release(l->pf);
            return deft_set_error(DEFT_ERR_NOMEM, "detection loader: out of memory for %d boxes", total);
        }
        l->boxes = nbx;
        l->box_cap = total;
    }
    memcpy(l->images, sl->images, sizeof(float) * 3 * (size_t)w * h * (size_t)size);
    int at = 0;
    for (int i = 0; i < size; i++) {
        const struct item *it = &sl->items[i];
        l->n_boxes[i] = it->n;
        l->box_start[i] = at;
        if (it->n) memcpy(l->boxes + at, it->boxes, sizeof *it->boxes * (size_t)it->n);
        at += it->n;
        l->index[i] = sl->index[i];
        l->corrupt[i] = sl->corrupt[i];
        l->lb[i] = sl->lb[i];
    }
    deft_prefetch_release(l->pf);
    *b = (struct deft_det_batch){.n = size, .h = h, .w = w, .batch = bi, .images = l->images,
                                 .n_boxes = l->n_boxes, .box_start = l->box_start, .total_boxes = total,
                                 .boxes = l->boxes, .lb = l->lb, .index = l->index, .corrupt = l->corrupt};
    return DEFT_OK;
}

int deft_det_loader_num_batches(const struct deft_det_loader *l) { return l->nb; }

void deft_det_loader_get_stats(const struct deft_det_loader *l, struct deft_loader_stats *s) {
    deft_prefetch_get_stats(l->pf, s);
}

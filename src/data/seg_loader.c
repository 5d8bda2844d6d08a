/* seg_loader.c - data module: segmentation batches, the image and its mask
 * through the same spatial transform (include/deft/seg_data.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "deft/data.h"
#include "deft/seg_data.h"
#include "prefetch.h"

/* Batches are decoded by one worker thread a batch or two ahead of the
 * trainer (prefetch.h), so JPEG/PNG decoding and resizing overlap the
 * previous step's compute; what a batch holds depends only on (seed,
 * epoch, position), as before. */
#define SEG_SLOTS 2
#define SEG_WORKERS 1

struct seg_slot {
    float *images;
    int32_t *masks;
    int *index;
};

struct deft_seg_loader {
    struct deft_seg_loader_opts o;
    const struct deft_seg_dataset *ds;
    int *order, epoch;
    struct seg_slot slots[SEG_SLOTS];
    struct deft_prefetch *pf;
};

/* Random streams of one sample's augmentation. */
enum { R_HFLIP, R_VFLIP, R_CROP, R_LEFT, R_RIGHT, R_TOP, R_BOTTOM, R_BRIGHT, R_N };

struct aug {
    bool hflip, vflip;
    float bx, by, bw, bh;   /* source box as fractions of the image */
    float bright;           /* added to 0..255 values */
};

static void draw(const struct deft_seg_loader_opts *o, int epoch, int index, struct aug *a) {
    uint64_t stream = ((uint64_t)(uint32_t)epoch << 32) | (uint32_t)index;
    float u[R_N];
    for (int i = 0; i < R_N; i++) u[i] = deft_rng_uniform(o->seed ^ 0x5e9d5e9dULL, stream, (uint64_t)i);
    *a = (struct aug){.hflip = u[R_HFLIP] < o->hflip, .vflip = u[R_VFLIP] < o->vflip, .bw = 1, .bh = 1};
    if (u[R_CROP] < o->crop_and_resize) { /* TAO: each side moves in by up to ratio, independently */
        float r = o->crop_ratio > 0 && o->crop_ratio <= 0.5f ? o->crop_ratio : 0.1f;
        a->bx = u[R_LEFT] * r;
        a->bw = 1 - u[R_RIGHT] * r - a->bx;
        a->by = u[R_TOP] * r;
        a->bh = 1 - u[R_BOTTOM] * r - a->by;
    }
    /* TAO adds U(-delta, delta) to the normalized values: delta * 127.5 (or 255) grey levels */
    if (o->brightness > 0) a->bright = (2 * u[R_BRIGHT] - 1) * o->brightness * (o->zero_one ? 255.0f : 127.5f);
}

/* The mask sampled by nearest neighbour over the image's source box into the place p of an
 * ow x oh output; outside p, ignored. */
static void mask_resample(const int32_t *m, int mw, int mh, const struct aug *a, struct deft_seg_place p, int ow,
                          int oh, int32_t *out) {
    float x0 = a->bx * mw, y0 = a->by * mh, sw = a->bw * mw / p.w, sh = a->bh * mh / p.h;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int px = x - p.x, py = y - p.y;
            if (px < 0 || py < 0 || px >= p.w || py >= p.h) {
                out[(size_t)y * ow + x] = DEFT_SEG_IGNORE;
                continue;
            }
            int sy = (int)floorf(y0 + (py + 0.5f) * sh), sx = (int)floorf(x0 + (px + 0.5f) * sw);
            sy = sy < 0 ? 0 : sy >= mh ? mh - 1 : sy;
            sx = sx < 0 ? 0 : sx >= mw ? mw - 1 : sx;
            out[(size_t)y * ow + x] = m[(size_t)sy * mw + sx];
        }
}

struct deft_seg_place deft_seg_place_of(const struct deft_seg_loader_opts *o, double w, double h) {
    struct deft_seg_place p = {0, 0, o->width, o->height};
    if (!o->pad || !(w > 0) || !(h > 0)) return p;
    /* resize_with_pad: the larger ratio decides; sizes floor, offsets floor of half the rest */
    double r = fmax(w / o->width, h / o->height);
    p.w = (int)floor(w / r + 1e-9);
    p.h = (int)floor(h / r + 1e-9);
    p.w = p.w < 1 ? 1 : p.w > o->width ? o->width : p.w;
    p.h = p.h < 1 ? 1 : p.h > o->height ? o->height : p.h;
    p.x = (o->width - p.w) / 2;
    p.y = (o->height - p.h) / 2;
    return p;
}

/* Flip [c, h, w] planes in place (one function per element type: no aliasing tricks). */
#define DEFINE_FLIP(fn, T)                                                                  \
    static void fn(T *d, int c, int h, int w, bool hflip, bool vflip) {                    \
        for (int k = 0; k < c; k++) {                                                        \
            T *pl = d + (size_t)k * h * w;                                                   \
            for (int y = 0; hflip && y < h; y++)                                             \
                for (int x = 0; x < w / 2; x++) {                                            \
                    T t = pl[(size_t)y * w + x];                                             \
                    pl[(size_t)y * w + x] = pl[(size_t)y * w + w - 1 - x];                   \
                    pl[(size_t)y * w + w - 1 - x] = t;                                       \
                }                                                                            \
            for (int y = 0; vflip && y < h / 2; y++)                                         \
                for (int x = 0; x < w; x++) {                                                \
                    T t = pl[(size_t)y * w + x];                                             \
                    pl[(size_t)y * w + x] = pl[(size_t)(h - 1 - y) * w + x];                 \
                    pl[(size_t)(h - 1 - y) * w + x] = t;                                     \
                }                                                                            \
        }                                                                                    \
    }
DEFINE_FLIP(flip_f32, float)
DEFINE_FLIP(flip_i32, int32_t)

/* Image (and mask) of one sample through the transform a. */
static enum deft_status load_one(const struct deft_seg_loader_opts *o, const struct deft_seg_sample *s,
                                 const struct aug *a, float *image, int32_t *mask) {
    const int W = o->width, H = o->height, C = o->channels;
    struct deft_image im = {0};
    int32_t *m = NULL;
    int mw = 0, mh = 0;
    float *rgb = deft_malloc((size_t)3 * W * H * sizeof *rgb);
    enum deft_status s2 = rgb ? deft_image_load(s->image, NULL, &im) : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s2 && mask && s->mask) s2 = deft_seg_mask_load(s->mask, o->labels, &m, &mw, &mh);
    if (!s2 && m && (mw != im.w || mh != im.h))
        s2 = deft_set_error(DEFT_ERR_FORMAT, "%s is %dx%d but its image %s is %dx%d", s->mask, mw, mh, s->image, im.w,
                            im.h);
    struct deft_seg_place p = {0};
    if (!s2) {
        p = deft_seg_place_of(o, (double)a->bw * im.w, (double)a->bh * im.h);
        s2 = deft_image_resample_chw(&im, &(struct deft_resample){a->bx * im.w, a->by * im.h, a->bw * im.w,
                                                                  a->bh * im.h, true, o->filter},
                                     p.w, p.h, rgb);
    }
    if (!s2) {
        size_t plane = (size_t)W * H, sub = (size_t)p.w * p.h;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                size_t i = (size_t)y * W + x, j = (size_t)(y - p.y) * p.w + (x - p.x);
                bool in = x >= p.x && y >= p.y && x < p.x + p.w && y < p.y + p.h;
                for (int c = 0; c < C; c++) {
                    float v = !in     ? 0.0f /* padding: black */
                              : C == 1 ? (rgb[j] + rgb[sub + j] + rgb[2 * sub + j]) / 3.0f
                                       : rgb[(size_t)c * sub + j];
                    v += in ? a->bright : 0.0f;
                    v = v < 0 ? 0 : v > 255 ? 255 : v;
                    image[(size_t)c * plane + i] = o->zero_one ? v / 255.0f : v / 127.5f - 1.0f;
                }
            }
        flip_f32(image, C, H, W, a->hflip, a->vflip);
        if (mask && m) {
            mask_resample(m, mw, mh, a, p, W, H, mask);
            flip_i32(mask, 1, H, W, a->hflip, a->vflip);
        } else if (mask) {
            for (size_t i = 0; i < plane; i++) mask[i] = DEFT_SEG_IGNORE;
        }
    }
    deft_free(rgb);
    deft_free(m);
    deft_image_free(&im);
    return s2;
}

enum deft_status deft_seg_load_pair(const struct deft_seg_loader_opts *o, const struct deft_seg_sample *s,
                                    float *image, int32_t *mask) {
    struct aug a = {.bw = 1, .bh = 1};
    return load_one(o, s, &a, image, mask);
}

static void order_epoch(struct deft_seg_loader *l, int epoch) {
    int n = l->ds->n;
    for (int i = 0; i < n; i++) l->order[i] = i;
    for (int i = n - 1; l->o.shuffle && i > 0; i--) { /* Fisher-Yates from (seed, epoch) */
        int j = (int)(deft_rng_u64(l->o.seed, (uint64_t)epoch, (uint64_t)i) % (uint64_t)(i + 1));
        int t = l->order[i];
        l->order[i] = l->order[j];
        l->order[j] = t;
    }
    l->epoch = epoch;
}

/* prefetch callbacks: the epoch's order (no worker active), one sample into its slot */
static void prepare_epoch(void *ctx, int epoch) { order_epoch(ctx, epoch); }

static enum deft_status load_item(void *ctx, int k, int i, int64_t b, int epoch, int64_t p, int *corrupt) {
    struct deft_seg_loader *l = ctx;
    (void)b;
    (void)corrupt;
    size_t plane = (size_t)l->o.width * l->o.height, per = (size_t)l->o.channels * plane;
    int world = l->o.world > 1 ? l->o.world : 1;
    int idx = l->order[p * world + (world > 1 ? l->o.rank : 0)]; /* draws are keyed by the sample */
    struct aug a;
    draw(&l->o, epoch, idx, &a);
    struct seg_slot *sl = &l->slots[k];
    sl->index[i] = idx;
    return load_one(&l->o, &l->ds->samples[idx], &a, sl->images + (size_t)i * per, sl->masks + (size_t)i * plane);
}

enum deft_status deft_seg_loader_create(const struct deft_seg_loader_opts *o, const struct deft_seg_dataset *ds,
                                        struct deft_seg_loader **out) {
    *out = NULL;
    if (!o || !ds || ds->n < 1 || o->batch < 1 || o->width < 1 || o->height < 1 ||
        (o->channels != 1 && o->channels != 3) || !o->labels)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "segmentation loader: bad options (batch %d, %dx%dx%d)",
                              o ? o->batch : 0, o ? o->width : 0, o ? o->height : 0, o ? o->channels : 0);
    if (o->world < 0 || o->rank < 0 || (o->world > 0 && o->rank >= o->world) || (o->world == 0 && o->rank) ||
        (o->world > 1 && !o->drop_last))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "segmentation loader: rank %d of a world of %d (sharded: "
                              "training with drop_last only)", o->rank, o->world);
    if (o->world > 1 && ds->n < o->batch * o->world)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "segmentation loader: %d samples, less than one global batch of "
                              "%d x %d ranks", ds->n, o->batch, o->world);
    struct deft_seg_loader *l = deft_calloc(1, sizeof *l);
    if (l) l->order = deft_malloc((size_t)ds->n * sizeof *l->order);
    if (!l || !l->order) {
        deft_seg_loader_free(l);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    l->o = *o;
    l->ds = ds;
    size_t plane = (size_t)o->width * o->height;
    for (int k = 0; k < SEG_SLOTS; k++) {
        struct seg_slot *sl = &l->slots[k];
        sl->images = deft_malloc_aligned((size_t)o->batch * (size_t)o->channels * plane * sizeof(float));
        sl->masks = deft_malloc_aligned((size_t)o->batch * plane * sizeof(int32_t));
        sl->index = deft_malloc((size_t)o->batch * sizeof(int));
        if (!sl->images || !sl->masks || !sl->index) {
            deft_seg_loader_free(l);
            return deft_set_error(DEFT_ERR_NOMEM, "segmentation loader: out of memory for batches of %d x %dx%dx%d",
                                  o->batch, o->channels, o->height, o->width);
        }
    }
    int nb = deft_seg_loader_num_batches(l);
    struct deft_prefetch_cfg pc = {.batch_size = o->batch, .num_batches = nb,
                                   .positions = o->drop_last ? (int64_t)nb * o->batch : ds->n, .slots = SEG_SLOTS,
                                   .threads = SEG_WORKERS, .ctx = l, .load = load_item, .prepare = prepare_epoch};
    enum deft_status st = deft_prefetch_create(&pc, &l->pf);
    if (st) {
        deft_seg_loader_free(l);
        return st;
    }
    order_epoch(l, 0);
    *out = l;
    return DEFT_OK;
}

void deft_seg_loader_free(struct deft_seg_loader *l) {
    if (!l) return;
    deft_prefetch_free(l->pf); /* joins the worker before its buffers go */
    for (int k = 0; k < SEG_SLOTS; k++) {
        deft_free_aligned(l->slots[k].images);
        deft_free_aligned(l->slots[k].masks);
        deft_free(l->slots[k].index);
    }
    deft_free(l->order);
    deft_free(l);
}

int deft_seg_loader_num_batches(const struct deft_seg_loader *l) {
    int n = l->ds->n, b = l->o.batch, world = l->o.world > 1 ? l->o.world : 1;
    return l->o.drop_last ? n / (b * world) : (n + b - 1) / b;
}

enum deft_status deft_seg_loader_start_epoch(struct deft_seg_loader *l, int epoch) {
    deft_prefetch_start_epoch(l->pf, epoch);
    return DEFT_OK;
}

enum deft_status deft_seg_loader_next(struct deft_seg_loader *l, float *images, int32_t *masks, int *index,
                                      int *n) {
    *n = 0;
    if (!deft_prefetch_started(l->pf)) deft_prefetch_start_epoch(l->pf, 0);
    int k = 0, size = 0;
    int64_t b = 0;
    enum deft_status s = deft_prefetch_acquire(l->pf, &k, &size, &b);
    if (s || size == 0) return s;
    const struct seg_slot *sl = &l->slots[k];
    size_t plane = (size_t)l->o.width * l->o.height, per = (size_t)l->o.channels * plane;
    memcpy(images, sl->images, (size_t)size * per * sizeof(float));
    if (masks) memcpy(masks, sl->masks, (size_t)size * plane * sizeof(int32_t));
    if (index) memcpy(index, sl->index, (size_t)size * sizeof(int));
    deft_prefetch_release(l->pf);
    *n = size;
    return DEFT_OK;
}

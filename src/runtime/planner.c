/* planner.c - liveness-based best-fit memory planning (the idea of ggml's
 * gallocr): walk the schedule, allocate each step's new buffers from the best
 * fitting free block, then release buffers whose last use was that step. */
#include <stdlib.h>
#include "runtime/planner.h"

#define ALIGN 64

struct block { size_t off, size; };

struct freelist {
    struct block *b;
    int n, cap;
    size_t end; /* high-water mark of the arena */
};

static size_t align_up(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static bool fl_insert(struct freelist *f, size_t off, size_t size) {
    /* keep blocks sorted by offset and merge neighbours */
    int i = 0;
    while (i < f->n && f->b[i].off < off) i++;
    if (i > 0 && f->b[i - 1].off + f->b[i - 1].size == off) {
        f->b[i - 1].size += size;
        if (i < f->n && off + size == f->b[i].off) {
            f->b[i - 1].size += f->b[i].size;
            for (int j = i; j + 1 < f->n; j++) f->b[j] = f->b[j + 1];
            f->n--;
        }
        return true;
    }
    if (i < f->n && off + size == f->b[i].off) {
        f->b[i].off = off;
        f->b[i].size += size;
        return true;
    }
    if (f->n == f->cap) {
        int nc = f->cap ? f->cap * 2 : 32;
        struct block *nb = deft_realloc(f->b, (size_t)nc * sizeof *nb);
        if (!nb) return false;
        f->b = nb;
        f->cap = nc;
    }
    for (int j = f->n; j > i; j--) f->b[j] = f->b[j - 1];
    f->b[i] = (struct block){off, size};
    f->n++;
    return true;
}

static size_t fl_alloc(struct freelist *f, size_t size) {
    int best = -1;
    for (int i = 0; i < f->n; i++)
        if (f->b[i].size >= size && (best < 0 || f->b[i].size < f->b[best].size)) best = i;
    if (best >= 0) {
        size_t off = f->b[best].off;
        f->b[best].off += size;
        f->b[best].size -= size;
        if (f->b[best].size == 0) {
            for (int j = best; j + 1 < f->n; j++) f->b[j] = f->b[j + 1];
            f->n--;
        }
        return off;
    }
    /* grow the arena; reuse a free block that touches the end */
    if (f->n > 0 && f->b[f->n - 1].off + f->b[f->n - 1].size == f->end) {
        size_t off = f->b[f->n - 1].off;
        f->n--;
        f->end = off + size;
        return off;
    }
    size_t off = f->end;
    f->end += size;
    return off;
}


enum deft_status deft_plan_memory(struct deft_plan_item *items, int n, int n_steps, bool no_reuse,
                                  size_t *arena_bytes) {
    struct freelist f = {0};
    enum deft_status s = DEFT_OK;
    if (no_reuse) {
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            items[i].offset = off;
            off += align_up(items[i].bytes);
        }
        *arena_bytes = off;
        return DEFT_OK;
    }
    /* bucket items by first and by last step */
    int *by_first = deft_malloc(sizeof(int) * (size_t)(n + 1));
    int *by_last = deft_malloc(sizeof(int) * (size_t)(n + 1));
    int *start_f = deft_calloc((size_t)n_steps + 2, sizeof(int));
    int *start_l = deft_calloc((size_t)n_steps + 2, sizeof(int));
    if (!by_first || !by_last || !start_f || !start_l) {
        s = deft_set_error(DEFT_ERR_NOMEM, "memory planner: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (items[i].first < 0 || items[i].last < items[i].first || items[i].last >= n_steps) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "memory planner: bad live range");
            goto done;
        }
        start_f[items[i].first + 1]++;
        start_l[items[i].last + 1]++;
    }
    for (int t = 0; t < n_steps; t++) {
        start_f[t + 1] += start_f[t];
        start_l[t + 1] += start_l[t];
    }
    {
        int *pf = deft_malloc(sizeof(int) * ((size_t)n_steps + 1));
        int *pl = deft_malloc(sizeof(int) * ((size_t)n_steps + 1));
        if (!pf || !pl) {
            deft_free(pf);
            deft_free(pl);
            s = deft_set_error(DEFT_ERR_NOMEM, "memory planner: out of memory");
            goto done;
        }
        for (int t = 0; t <= n_steps; t++) {
            pf[t] = start_f[t];
            pl[t] = start_l[t];
        }
        for (int i = 0; i < n; i++) {
            by_first[pf[items[i].first]++] = i;
            by_last[pl[items[i].last]++] = i;
        }
        deft_free(pf);
        deft_free(pl);
    }
    for (int t = 0; t < n_steps; t++) {
        /* larger buffers first packs better */
        for (int k = start_f[t]; k < start_f[t + 1]; k++) {
            int best = k;
            for (int j = k + 1; j < start_f[t + 1]; j++)
                if (items[by_first[j]].bytes > items[by_first[best]].bytes) best = j;
            int tmp = by_first[k];
            by_first[k] = by_first[best];
            by_first[best] = tmp;
            struct deft_plan_item *it = &items[by_first[k]];
            it->offset = fl_alloc(&f, align_up(it->bytes ? it->bytes : ALIGN));
        }
        for (int k = start_l[t]; k < start_l[t + 1]; k++) {
            struct deft_plan_item *it = &items[by_last[k]];
            if (!fl_insert(&f, it->offset, align_up(it->bytes ? it->bytes : ALIGN))) {
                s = deft_set_error(DEFT_ERR_NOMEM, "memory planner: out of memory");
                goto done;
            }
        }
    }
    *arena_bytes = f.end;
done:
    deft_free(f.b);
    deft_free(by_first);
    deft_free(by_last);
    deft_free(start_f);
    deft_free(start_l);
    return s;
}

/* grad_buckets.c - gradients all-reduced in buckets while backward runs.
 *
 * The runtime calls us after each bucket's last gradient writer (a watched
 * node); we hand the bucket to one communication thread, which sends the
 * buckets in the order they were handed over: the same order on every rank,
 * because every rank runs the same nodes in the same order. Only that thread
 * calls MPI between arm and wait (MPI_THREAD_SERIALIZED). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/dist.h"
#include "deft/graph.h"
#include "deft/runtime.h"
#include "dist/dist_internal.h"

struct bucket {
    size_t lo, hi;   /* float range of the gradient block */
    int ready;       /* the last node writing one of its gradients */
};

struct deft_dist_buckets {
    struct deft_runtime *rt;
    float *grads;
    struct bucket *b;
    int nb;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, quit, armed;
    float *accum;
    int posted, done;       /* buckets handed over / reduced in this run */
    /* a sum of doubles asked for during the run (sync_bn), made after the
     * buckets handed over before it: the same place in the order on every rank */
    double *xbuf;
    size_t xn;
    int xafter;
    bool xpending;
    enum deft_status xerr;
    enum deft_status err;   /* the thread's first error and its message */
    char msg[512];
};

/* Reduce bucket i: the accumulated micro-batches first, then the mean. */
static enum deft_status reduce(struct deft_dist_buckets *d, int i, float *accum) {
    struct bucket *b = &d->b[i];
    float *g = d->grads + b->lo;
    if (accum)
        for (size_t k = 0; k < b->hi - b->lo; k++) {
            g[k] += accum[b->lo + k];
            accum[b->lo + k] = 0;
        }
    return deft_dist_allreduce_f32(g, b->hi - b->lo, DEFT_DIST_AVG);
}

static bool bucket_due(const struct deft_dist_buckets *d) {
    return d->done < d->posted && (!d->xpending || d->done < d->xafter);
}

/* The extra sum, once the buckets before it are done. */
static void run_extra(struct deft_dist_buckets *d) {
    double *buf = d->xbuf;
    size_t n = d->xn;
    pthread_mutex_unlock(&d->mu);
    enum deft_status s = deft_dist_allreduce_f64(buf, n, DEFT_DIST_SUM);
    char msg[512] = "";
    if (s) snprintf(msg, sizeof msg, "%s", deft_last_error());
    pthread_mutex_lock(&d->mu);
    d->xerr = s;
    if (s) snprintf(d->msg, sizeof d->msg, "%s", msg);
    d->xpending = false;
    pthread_cond_broadcast(&d->cv);
}

static void *comm_thread(void *arg) {
    struct deft_dist_buckets *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->quit && !bucket_due(d) && !(d->xpending && d->done >= d->xafter))
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->quit) break;
        if (!bucket_due(d)) {
            run_extra(d);
            continue;
        }
        int i = d->done;
        float *accum = d->accum;
        bool skip = d->err != DEFT_OK; /* after an error: only count the rest */
        pthread_mutex_unlock(&d->mu);
        enum deft_status s = skip ? DEFT_OK : reduce(d, i, accum);
        pthread_mutex_lock(&d->mu);
        if (s && !d->err) {
            d->err = s;
            snprintf(d->msg, sizeof d->msg, "%s", deft_last_error());
        }
        d->done++;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Hand over every bucket whose last writer is node n (or all, n < 0). */
static void post_upto(struct deft_dist_buckets *d, int n) {
    pthread_mutex_lock(&d->mu);
    int p = d->posted;
    while (p < d->nb && (n < 0 || d->b[p].ready <= n)) p++;
    if (p != d->posted) {
        d->posted = p;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
}

static void on_node(int node, void *user) {
    struct deft_dist_buckets *d = user;
    if (d->armed) post_upto(d, node);
}

/* The last node writing each trainable parameter's gradient (-1: none). */
static int *last_writers(const struct deft_graph *g) {
    int nv = deft_graph_num_values(g);
    int *w = deft_malloc(((size_t)nv + 1) * sizeof *w);
    if (!w) return NULL;
    for (int v = 0; v < nv; v++) w[v] = -1;
    for (int v = 0; v < nv; v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->grad_of >= 0 && val->kind == DEFT_VALUE_NODE && val->producer > w[val->grad_of])
            w[val->grad_of] = val->producer;
    }
    return w;
}

static int cmp_ready(const void *a, const void *b) {
    const struct bucket *x = a, *y = b;
    return x->ready != y->ready ? (x->ready < y->ready ? -1 : 1) : (x->lo > y->lo ? -1 : x->lo < y->lo);
}

/* Parameters from the last to the first, cut every cap floats; each bucket
 * spans to where the previous one began, so the buckets tile the block. */
static enum deft_status plan(struct deft_dist_buckets *d, size_t cap, size_t n_grads) {
    const struct deft_graph *g = deft_runtime_graph(d->rt);
    int nv = deft_graph_num_values(g), nn = deft_graph_num_nodes(g);
    int *w = last_writers(g);
    d->b = deft_calloc((size_t)nv + 1, sizeof *d->b);
    if (!w || !d->b) {
        deft_free(w);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory planning gradient buckets");
    }
    /* params by descending offset: values are numbered in graph order, but
     * sort explicitly rather than rely on it */
    size_t hi = n_grads;
    struct bucket cur = {.hi = hi, .ready = -1};
    for (;;) {
        int best = -1;
        int64_t best_off = -1;
        for (int v = 0; v < nv; v++) {
            int64_t off = deft_runtime_param_offset(d->rt, v);
            if (off >= 0 && (size_t)off < hi && off > best_off) best = v, best_off = off;
        }
        if (best < 0) break;
        hi = (size_t)best_off;
        cur.lo = hi;
        if (w[best] > cur.ready) cur.ready = w[best];
        if ((cur.hi - cur.lo) * sizeof(float) >= cap) {
            d->b[d->nb++] = cur;
            cur = (struct bucket){.hi = hi, .ready = -1};
        }
    }
    if (cur.hi > 0 && cur.hi > cur.lo) d->b[d->nb++] = cur;
    if (d->nb > 0) d->b[d->nb - 1].lo = 0; /* padding before the first param, if any */
    for (int i = 0; i < d->nb; i++)
        if (d->b[i].ready < 0) d->b[i].ready = nn - 1; /* no writer: sent at the end */
    qsort(d->b, (size_t)d->nb, sizeof *d->b, cmp_ready);
    deft_free(w);
    return DEFT_OK;
}

enum deft_status deft_dist_buckets_create(struct deft_runtime *rt, size_t bucket_bytes,
                                          struct deft_dist_buckets **out) {
    *out = NULL;
    if (!bucket_bytes) {
        const char *e = getenv("DEFT_DIST_BUCKET_MB");
        double mb = e ? atof(e) : 4.0;
        bucket_bytes = (size_t)((mb > 0 ? mb : 4.0) * (1 << 20));
    }
    struct deft_dist_buckets *d = deft_calloc(1, sizeof *d);
    if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory creating gradient buckets");
    d->rt = rt;
    size_t n;
    d->grads = deft_runtime_grad_block(rt, &n);
    enum deft_status s = plan(d, bucket_bytes, n);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (!s && pthread_create(&d->thread, NULL, comm_thread, d))
        s = deft_set_error(DEFT_ERR_IO, "cannot start the gradient communication thread");
    d->started = !s;
    if (s) {
        deft_dist_buckets_free(d);
        return s;
    }
    for (int i = 0; i < d->nb; i++) deft_runtime_watch_node(rt, d->b[i].ready, true);
    deft_runtime_set_node_hook(rt, on_node, d);
    *out = d;
    return DEFT_OK;
}

void deft_dist_buckets_free(struct deft_dist_buckets *d) {
    if (!d) return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->quit = true;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        deft_runtime_set_node_hook(d->rt, NULL, NULL);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    deft_free(d->b);
    deft_free(d);
}

enum deft_status deft_dist_buckets_sum(struct deft_dist_buckets *d, double *buf, size_t n) {
    pthread_mutex_lock(&d->mu);
    d->xbuf = buf;
    d->xn = n;
    d->xafter = d->posted;
    d->xpending = true;
    pthread_cond_broadcast(&d->cv);
    while (d->xpending) pthread_cond_wait(&d->cv, &d->mu);
    enum deft_status s = d->xerr;
    pthread_mutex_unlock(&d->mu);
    if (s) return deft_set_error(s, "%s", d->msg);
    return DEFT_OK;
}

int deft_dist_buckets_count(const struct deft_dist_buckets *d) { return d ? d->nb : 0; }

void deft_dist_buckets_arm(struct deft_dist_buckets *d, float *accum) {
    pthread_mutex_lock(&d->mu);
    d->posted = d->done = 0;
    d->accum = accum;
    d->err = DEFT_OK;
    d->armed = true;
    pthread_mutex_unlock(&d->mu);
}

enum deft_status deft_dist_buckets_wait(struct deft_dist_buckets *d, bool all) {
    if (!d->armed) return DEFT_OK;
    if (all) post_upto(d, -1);
    double t0 = deft_time_now();
    pthread_mutex_lock(&d->mu);
    while (d->done < d->posted) pthread_cond_wait(&d->cv, &d->mu);
    d->armed = false;
    enum deft_status s = d->err;
    pthread_mutex_unlock(&d->mu);
    deft_dist_note_exposed(deft_time_now() - t0);
    if (s) return deft_set_error(s, "%s", d->msg);
    return DEFT_OK;
}

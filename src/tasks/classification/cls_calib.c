/* cls_calib.c - post-training calibration: images -> activation ranges.
 *
 * As TAO does, calibration images are drawn at random across the whole set
 * (a shuffled list, so every class is represented) and preprocessed exactly
 * as the model records it. Two passes over the preprocessed batches (kept in
 * memory: 160 images of 224x224 are 96 MB): the first finds max|x| of every
 * activation, the second fills 2048-bin histograms on [0, max], from which
 * the calibrator picks the range (deft/quant.h). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/runtime.h"
#include "tasks/classification/cls_calib.h"

static bool is_image(const char *n) {
    const char *d = strrchr(n, '.');
    return d && (!strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg") || !strcasecmp(d, ".png") ||
                 !strcasecmp(d, ".bmp"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

struct plist { char **p; int n, cap; };

static enum deft_status plist_add(struct plist *l, const char *s) {
    if (l->n == l->cap) {
        int c = l->cap ? 2 * l->cap : 256;
        char **np = deft_realloc(l->p, (size_t)c * sizeof *np);
        if (!np) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        l->p = np;
        l->cap = c;
    }
    if (!(l->p[l->n] = deft_strdup(s))) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    l->n++;
    return DEFT_OK;
}

static enum deft_status scan(const char *dir, int depth, struct plist *l) {
    DIR *d = opendir(dir);
    if (!d) return deft_set_error(DEFT_ERR_NOT_FOUND, "calibration images: cannot read directory %s", dir);
    enum deft_status s = DEFT_OK;
    for (struct dirent *e; !s && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st)) continue;
        if (S_ISDIR(st.st_mode) && depth == 0) s = scan(p, 1, l);
        else if (S_ISREG(st.st_mode) && is_image(e->d_name)) s = plist_add(l, p);
    }
    closedir(d);
    return s;
}

enum deft_status cls_calib_list_images(const char *dir, char ***paths, int *n) {
    struct plist l = {0};
    *paths = NULL;
    *n = 0;
    enum deft_status s = scan(dir, 0, &l);
    if (!s && l.n == 0)
        s = deft_set_error(DEFT_ERR_NOT_FOUND, "calibration images: no .jpg/.jpeg/.png/.bmp in %s "
                           "or its sub-folders", dir);
    if (s) {
        deft_string_list_free(l.p, l.n);
        return s;
    }
    qsort(l.p, (size_t)l.n, sizeof *l.p, cmp_str);
    *paths = l.p;
    *n = l.n;
    return DEFT_OK;
}

/* Preprocess `need` images taken from a seeded shuffle of paths into x;
 * unreadable images are skipped (with a warning) for the next ones. */
static enum deft_status load_images(const struct deft_transform *tf, char *const *paths, int n_paths,
                                    int need, uint64_t seed, float *x, size_t per) {
    int *order = deft_malloc((size_t)n_paths * sizeof *order);
    if (!order) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_paths; i++) order[i] = i;
    for (int i = n_paths - 1; i > 0; i--) { /* Fisher-Yates with deft's counter RNG */
        int j = (int)(deft_rng_u64(seed, 0xca1b, (uint64_t)i) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int got = 0, bad = 0;
    enum deft_status s = DEFT_OK;
    for (int k = 0; k < n_paths && got < need && !s; k++) {
        void *buf;
        size_t len;
        const char *p = paths[order[k]];
        enum deft_status e = deft_file_read(p, 256u << 20, &buf, &len);
        if (!e) {
            e = deft_transform_bytes(tf, buf, len, 0, 0, x + (size_t)got * per);
            deft_free(buf);
        }
        if (e == DEFT_ERR_NOMEM) s = e;
        else if (e) {
            deft_log(DEFT_LOG_WARN, "calibration: skipping %s: %s", p, deft_last_error());
            bad++;
        } else {
            got++;
        }
    }
    deft_free(order);
    if (!s && got < need)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches x "
                           "--batch_size) but only %d%s could be read; give more images or fewer "
                           "batches", need, got, bad ? " (others corrupt)" : "");
    return s;
}

/* Values whose range is wanted: the input and every forward node's outputs. */
static bool tracked(const struct deft_graph *g, int v) {
    const struct deft_value *a = deft_graph_value(g, v);
    if (a->kind == DEFT_VALUE_INPUT) return a->shape.ndim == 4;
    if (a->kind != DEFT_VALUE_NODE || a->producer < 0 || a->dtype != DEFT_F32 ||
        (a->flags & DEFT_VF_OPAQUE))
        return false;
    return deft_graph_node(g, a->producer)->op < DEFT_OP_LOSS;
}

enum deft_status cls_calibrate(struct deft_model *m, int input, const struct deft_transform *tf,
                               char *const *paths, int n_paths, const struct cls_calib_opts *o,
                               float **amax_out) {
    *amax_out = NULL;
    struct deft_graph *g = m->graph;
    int nv = deft_graph_num_values(g), bs = o->batch_size, need = o->batches * o->batch_size;
    if (n_paths < need)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "calibration needs %d images (--batches %d x "
                              "--batch_size %d) but only %d were found", need, o->batches, bs, n_paths);
    size_t per = (size_t)3 * (size_t)tf->out_h * (size_t)tf->out_w;
    struct deft_shape in = deft_shape4(bs, 3, tf->out_h, tf->out_w);
    enum deft_status s = deft_graph_reshape_input(g, input, &in);
    if (s) return s;
    float *x = deft_malloc((size_t)need * per * sizeof *x), *amax = deft_calloc((size_t)nv, sizeof *amax);
    struct deft_histogram *h = deft_calloc((size_t)nv, sizeof *h);
    struct deft_runtime *rt = NULL;
    float *buf = NULL;
    if (!x || !amax || !h) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration images)");
        goto done;
    }
    if ((s = load_images(tf, paths, n_paths, need, o->seed, x, per))) goto done;
    size_t maxn = 0;
    for (int v = 0; v < nv; v++)
        if (tracked(g, v) && (size_t)deft_shape_numel(&deft_graph_value(g, v)->shape) > maxn)
            maxn = (size_t)deft_shape_numel(&deft_graph_value(g, v)->shape);
    /* no_reuse: every activation survives the run, so all can be read after it */
    if (!(buf = deft_malloc(maxn * sizeof *buf))) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = "cpu", .no_reuse = 1}, &rt)) ||
        (s = deft_model_copy_to_runtime(m->file, rt, 0, NULL)))
        goto done;
    for (int pass = 0; pass < 2; pass++) {
        if (o->out) fprintf(o->out, "calibration pass %d/2 (%s) over %d images\n", pass + 1,
                            pass ? "histograms" : "ranges", need);
        for (int b = 0; b < o->batches; b++) {
            if ((s = deft_runtime_set_input(rt, input, x + (size_t)b * bs * per, (size_t)bs * per)) ||
                (s = deft_runtime_run(rt)))
                goto done;
            for (int v = 0; v < nv; v++) {
                if (!tracked(g, v)) continue;
                size_t n = (size_t)deft_shape_numel(&deft_graph_value(g, v)->shape);
                if ((s = deft_runtime_read(rt, v, buf, n))) goto done;
                if (pass == 0) {
                    for (size_t i = 0; i < n; i++) {
                        float a = buf[i] < 0 ? -buf[i] : buf[i];
                        if (a > amax[v]) amax[v] = a;
                    }
                } else {
                    deft_hist_add(&h[v], buf, n);
                }
            }
        }
        if (pass == 0)
            for (int v = 0; v < nv; v++)
                if (tracked(g, v) && (s = deft_hist_init(&h[v], amax[v]))) goto done;
    }
    for (int v = 0; v < nv; v++)
        amax[v] = tracked(g, v) ? deft_calib_amax(&h[v], o->calibrator, o->percentile) : 0;
done:
    for (int v = 0; h && v < nv; v++) deft_hist_release(&h[v]);
    deft_free(h);
    deft_free(buf);
    deft_free(x);
    deft_runtime_free(rt);
    if (s) {
        deft_free(amax);
        return s;
    }
    *amax_out = amax;
    return DEFT_OK;
}

/* calib.c - post-training calibration shared by the exports: images ->
 * activation ranges -> cal.bin / calib.json (see calib.h).
 *
 * As TAO does, calibration images are drawn at random across the whole set
 * (a seeded shuffle, so every class is represented). The preprocessed
 * batches are kept in memory and run twice: the first pass finds max|x| of
 * every activation, the second fills 2048-bin histograms on [0, max], from
 * which the calibrator picks the range (deft/quant.h). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/data.h"
#include "deft/runtime.h"
#include "tasks/common/calib.h"

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

enum deft_status task_calib_list_images(const char *dir, char ***paths, int *n) {
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

enum deft_status task_calib_shuffle(int n, uint64_t seed, int **order_out) {
    int *order = deft_malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    *order_out = NULL;
    if (!order) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(deft_rng_u64(seed, 0xca1b, (uint64_t)i) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    *order_out = order;
    return DEFT_OK;
}

/* Values whose range is wanted: the input and every forward node's outputs. */
static bool tracked(const struct deft_graph *g, int v) {
    const struct deft_value *a = deft_graph_value(g, v);
    if (a->kind == DEFT_VALUE_INPUT) return a->shape.ndim == 4;
    if (a->kind != DEFT_VALUE_NODE || a->producer < 0 || a->dtype != DEFT_F32 ||
        (a->flags & DEFT_VF_OPAQUE))
        return false;
    return deft_op_is_forward(deft_graph_node(g, a->producer)->op);
}

static enum deft_status run_batch(const struct task_calib_opts *o, struct deft_runtime *rt, int input,
                                  const float *x, size_t per) {
    if (o->run) return o->run(o->run_ctx, rt, x, o->batch_size);
    enum deft_status s = deft_runtime_set_input(rt, input, x, (size_t)o->batch_size * per);
    return s ? s : deft_runtime_run(rt);
}

enum deft_status task_calib_ranges(struct deft_model *m, int input, int h, int w, const float *x,
                                   const struct task_calib_opts *o, float **amax_out) {
    *amax_out = NULL;
    struct deft_graph *g = m->graph;
    int nv = deft_graph_num_values(g), bs = o->batch_size, need = o->batches * o->batch_size;
    int64_t c = deft_graph_value(g, input)->shape.d[1]; /* 3, or 1 for grey input */
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    struct deft_shape in = deft_shape4(bs, c, h, w);
    enum deft_status s = deft_graph_reshape_input(g, input, &in);
    if (s) return s;
    float *amax = deft_calloc((size_t)nv, sizeof *amax);
    struct deft_histogram *hist = deft_calloc((size_t)nv, sizeof *hist);
    struct deft_runtime *rt = NULL;
    float *buf = NULL;
    if (!amax || !hist) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory (calibration)");
        goto done;
    }
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
            if ((s = run_batch(o, rt, input, x + (size_t)b * bs * per, per)))
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
                    deft_hist_add(&hist[v], buf, n);
                }
            }
        }
        if (pass == 0)
            for (int v = 0; v < nv; v++)
                if (tracked(g, v) && (s = deft_hist_init(&hist[v], amax[v]))) goto done;
    }
    for (int v = 0; v < nv; v++)
        amax[v] = tracked(g, v) ? deft_calib_amax(&hist[v], o->calibrator, o->percentile) : 0;
done:
    for (int v = 0; hist && v < nv; v++) deft_hist_release(&hist[v]);
    deft_free(hist);
    deft_free(buf);
    deft_runtime_free(rt);
    if (s) {
        deft_free(amax);
        return s;
    }
    *amax_out = amax;
    return DEFT_OK;
}

float task_calib_ref_amax(const struct deft_onnx_tensor_ref *r, const float *amax) {
    switch (r->range) {
    case DEFT_ONNX_RANGE_UNIT: return 1.0f;
    case DEFT_ONNX_RANGE_PLUS6: return amax[r->value] + 6.0f;
    default: return amax[r->value];
    }
}

enum deft_status task_calib_write_cache(const char *path, int trt_version, enum deft_calibrator c,
                                        const struct deft_onnx_export_info *info, const float *amax) {
    struct deft_calib_entry *e = deft_calloc((size_t)(info->n ? info->n : 1), sizeof *e);
    if (!e) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < info->n; i++) {
        e[i].name = info->t[i].name;
        e[i].scale = task_calib_ref_amax(&info->t[i], amax) / 127.0f;
    }
    /* TensorRT and DeepStream calibrate with EntropyCalibrator2 and accept a
     * cache only under its name; min-max ranges say so in the header. */
    const char *alg = c == DEFT_CALIB_MINMAX ? "MinMaxCalibration" : "EntropyCalibration2";
    enum deft_status s = deft_calib_cache_write(path, trt_version ? trt_version : 8601, alg, e, info->n);
    deft_free(e);
    return s;
}

enum deft_status task_calib_write_json(const char *path, const struct deft_onnx_export_info *info,
                                       const float *amax) {
    size_t cap = 64, len = 0;
    for (int i = 0; i < info->n; i++) cap += strlen(info->t[i].name) * 6 + 40;
    char *b = deft_malloc(cap);
    if (!b) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(b, cap, "{\"tensor_scales\": {");
    for (int i = 0; i < info->n; i++) {
        len += (size_t)snprintf(b + len, cap - len, "%s\n  \"", i ? "," : "");
        for (const char *p = info->t[i].name; *p; p++)
            len += (size_t)snprintf(b + len, cap - len, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        len += (size_t)snprintf(b + len, cap - len, "\": %.9g", task_calib_ref_amax(&info->t[i], amax));
    }
    len += (size_t)snprintf(b + len, cap - len, "\n}}\n");
    enum deft_status s = deft_file_write_atomic(path, b, len);
    deft_free(b);
    return s;
}

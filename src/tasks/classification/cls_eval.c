/* cls_eval.c - `deft classification evaluate` and `inference`: a saved model
 * (its graph, weights, class names and preprocessing) run on a dataset or on
 * images. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/loop.h"
#include "deft/classification.h"
#include "deft/data.h"
#include "deft/io.h"
#include "deft/report.h"
#include "deft/runtime.h"
#include "deft/spec.h"
#include "tasks/classification/cls_common.h"
#include "tasks/classification/cls_metrics.h"
#include "tasks/common/progress.h"

struct model_run {
    struct deft_model *m;
    struct deft_runtime *rt;
    struct deft_transform tf;
    char **classes;
    int n_classes, batch, input, logits;
    bool probabilities; /* the output is softmax already (an ONNX deft exported) */
    size_t per_image;
};

static void model_run_free(struct model_run *mr) {
    deft_runtime_free(mr->rt);
    deft_model_free(mr->m);
    deft_string_list_free(mr->classes, mr->n_classes);
}

/* A model whose file names no classes (a foreign ONNX classifier) gets
 * class_0 ... class_{N-1} from its output size. */
static enum deft_status default_class_names(struct deft_graph *g, const char *path) {
    int lo = deft_graph_find_role(g, DEFT_ROLE_LOGITS);
    if (deft_graph_get_meta(g, "class_names") || lo < 0) return DEFT_OK;
    const struct deft_value *v = deft_graph_value(g, lo);
    if (v->shape.ndim != 2 || v->shape.d[1] < 1 || v->shape.d[1] > DEFT_MAX_CLASSES) return DEFT_OK;
    deft_log(DEFT_LOG_WARN, "%s names no classes: class_0 ... class_%lld (give --class_names FILE)", path,
             (long long)v->shape.d[1] - 1);
    return deft_model_set_class_names(g, NULL, (int)v->shape.d[1]);
}

static enum deft_status model_run_open(struct model_run *mr, const char *path, int batch,
                                       const struct deft_cls_args *a) {
    memset(mr, 0, sizeof *mr);
    char **names = NULL;
    int n_names = 0;
    enum deft_status s = a->class_names ? deft_class_names_from_arg(a->class_names, &names, &n_names) : DEFT_OK;
    if (!s) s = deft_model_open(path, &(struct deft_model_open_opts){.arch = a->arch,
                                                                     .class_names = (const char *const *)names,
                                                                     .n_class_names = n_names},
                                &mr->m);
    deft_string_list_free(names, n_names);
    if (s) return s;
    struct deft_graph *g = mr->m->graph;
    if ((s = default_class_names(g, path)) || (s = cls_class_names_from_meta(g, path, &mr->classes, &mr->n_classes)) ||
        (s = cls_transform_from_meta(g, path, &mr->tf)))
        return s;
    mr->input = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    mr->logits = deft_graph_find_role(g, DEFT_ROLE_LOGITS);
    const char *kind = deft_graph_get_meta(g, "output_kind");
    mr->probabilities = kind && !strcmp(kind, "\"probabilities\"");
    if (mr->input < 0 || mr->logits < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not a classification model (no image input or no output)", path);
    const struct deft_value *lv = deft_graph_value(g, mr->logits);
    if (a->class_names && lv->shape.ndim == 2 && lv->shape.d[1] != mr->n_classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--class_names lists %d names but %s has %lld classes",
                              mr->n_classes, path, (long long)lv->shape.d[1]);
    if (lv->shape.ndim != 2 || lv->shape.d[1] != mr->n_classes)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: %d class names but the output has shape [%lld, %lld]", path,
                              mr->n_classes, (long long)lv->shape.d[0], (long long)lv->shape.d[lv->shape.ndim - 1]);
    deft_graph_set_training(g, false);
    int ch = deft_preprocess_channels(&mr->tf.pre); /* 1 for a grey model */
    struct deft_shape in = deft_shape4(batch, ch, mr->tf.out_h, mr->tf.out_w);
    if ((s = deft_graph_reshape_input(g, mr->input, &in))) return deft_wrap_error(s, "%s", path);
    if ((s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = a->backend, .device_index = a->gpu_index,
                                                             .amp = a->amp}, &mr->rt)) ||
        (s = deft_model_copy_to_runtime(mr->m->file, mr->rt, 0, NULL)))
        return deft_wrap_error(s, "%s", path);
    mr->batch = batch;
    mr->per_image = (size_t)ch * (size_t)mr->tf.out_h * (size_t)mr->tf.out_w;
    return DEFT_OK;
}

/* Run n <= batch images (already in the input buffer's first n slots). */
static enum deft_status model_run_batch(struct model_run *mr, const float *images, int n, float *logits) {
    float *in = deft_runtime_data(mr->rt, mr->input);
    memcpy(in, images, (size_t)n * mr->per_image * sizeof(float));
    for (int i = n; i < mr->batch; i++) memcpy(in + (size_t)i * mr->per_image, images, mr->per_image * sizeof(float));
    enum deft_status s = deft_runtime_run(mr->rt);
    if (s) return s;
    size_t all = (size_t)mr->batch * (size_t)mr->n_classes;
    float *tmp = deft_malloc(all * sizeof(float));
    if (!tmp) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    s = deft_runtime_read(mr->rt, mr->logits, tmp, all);
    if (!s) memcpy(logits, tmp, (size_t)n * (size_t)mr->n_classes * sizeof(float));
    deft_free(tmp);
    return s;
}

enum deft_status deft_cls_evaluate(const struct deft_cls_args *a) { return cls_evaluate(a, NULL); }

enum deft_status cls_evaluate(const struct deft_cls_args *a, double *top1) {
    FILE *out = a->out ? a->out : stdout;
    struct deft_cls_config cfg;
    enum deft_status s = deft_cls_config_load(a->spec, a->overrides, a->n_overrides, &cfg);
    if (s) return s;
    struct model_run mr = {0};
    struct deft_dataset *ds = NULL;
    struct deft_loader *ld = NULL;
    struct cls_metrics m = {0};
    float *images = NULL, *labels = NULL, *logits = NULL;
    const char *model = a->model ? a->model : cfg.eval_config.model_path;
    char run_model[2400];
    if (!model || !model[0]) { /* -r RUN: the run's best model */
        model = deft_run_dir_model(a->results_dir && a->results_dir[0] ? a->results_dir : cfg.results_dir, run_model,
                                   sizeof run_model);
        if (model) fprintf(out, "model: %s (give -m to choose another)\n", model);
    }
    const char *data = cfg.eval_config.eval_dataset_path && cfg.eval_config.eval_dataset_path[0]
                           ? cfg.eval_config.eval_dataset_path : cfg.train_config.val_dataset_path;
    if (!model || !model[0]) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "no model: give -m MODEL, eval_config.model_path in %s, or -r RUN "
                           "holding weights/best.safetensors", a->spec);
        goto done;
    }
    if (!data || !data[0]) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no eval_config.eval_dataset_path (or val_dataset_path)", a->spec);
        goto done;
    }
    if (a->threads > 0) deft_set_threads(a->threads);
    int batch = cfg.eval_config.batch_size > 0 ? cfg.eval_config.batch_size : 32;
    if (batch > 256) batch = 256;
    if ((s = model_run_open(&mr, model, batch, a))) goto done;
    if ((s = deft_dataset_open(data, (const char *const *)mr.classes, mr.n_classes, &ds))) goto done;
    struct deft_loader_opts lo;
    deft_loader_opts_defaults(&lo);
    lo.batch_size = batch;
    lo.shuffle = false;
    lo.strict = a->fatal_corrupt;
    lo.transform = mr.tf;
    if ((s = deft_loader_create(&lo, ds, &ld))) goto done;
    int top_k = cfg.eval_config.top_k > 0 ? cfg.eval_config.top_k : 1;
    if ((s = cls_metrics_init(&m, mr.n_classes, top_k))) goto done;
    images = deft_malloc((size_t)batch * mr.per_image * sizeof(float));
    labels = deft_malloc((size_t)batch * (size_t)mr.n_classes * sizeof(float));
    logits = deft_malloc((size_t)batch * (size_t)mr.n_classes * sizeof(float));
    if (!images || !labels || !logits) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    struct progress pg;
    progress_init(&pg, out, deft_loader_num_batches(ld), 0);
    for (int b = 0;; b++) {
        int n = 0;
        if ((s = deft_loader_next(ld, images, labels, &n))) goto done;
        if (n == 0) break;
        if ((s = model_run_batch(&mr, images, n, logits))) goto done;
        cls_metrics_add(&m, logits, labels, n);
        progress_update(&pg, "evaluate", b + 1, "", false);
    }
    progress_end(&pg);
    if (top1) *top1 = cls_metrics_top1(&m);
    cls_metrics_print(&m, (const char *const *)mr.classes, out);
    if (a->results_dir && a->results_dir[0]) {
        char dir[4096], path[4200];
        snprintf(dir, sizeof dir, "%s/evaluate", a->results_dir);
        if ((s = cls_mkdirs(dir)) || (s = cls_metrics_write(&m, dir, (const char *const *)mr.classes))) goto done;
        snprintf(path, sizeof path, "%s/confusion", dir);
        if ((s = deft_plot_confusion(path, "Confusion matrix", (const char *const *)mr.classes, mr.n_classes, m.confusion)))
            goto done;
        fprintf(out, "results: %s/results.json, confusion.csv, confusion.png\n", dir);
    }
    struct deft_loader_stats st;
    deft_loader_get_stats(ld, &st);
    if (st.corrupt_skipped) deft_log(DEFT_LOG_WARN, "%lld corrupt images skipped", (long long)st.corrupt_skipped);
done:
    cls_metrics_release(&m);
    deft_free(images);
    deft_free(labels);
    deft_free(logits);
    deft_loader_free(ld);
    deft_dataset_free(ds);
    model_run_free(&mr);
    deft_cls_config_free(&cfg);
    return s;
}

/* ---- inference ---- */

static bool is_image_name(const char *n) {
    const char *d = strrchr(n, '.');
    return d && (!strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg") || !strcasecmp(d, ".png") || !strcasecmp(d, ".bmp"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Image paths from a file, a directory (sorted, not recursive) or a .txt list. */
static enum deft_status collect_inputs(const char *in, char ***paths, int *n) {
    struct stat st;
    *paths = NULL;
    *n = 0;
    if (stat(in, &st) != 0) return deft_set_error(DEFT_ERR_NOT_FOUND, "%s: no such file or directory", in);
    int cap = 64, cnt = 0;
    char **list = deft_malloc((size_t)cap * sizeof *list);
    if (!list) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    enum deft_status s = DEFT_OK;
#define PUSH(str)                                                                               \
    do {                                                                                        \
        if (cnt == cap) {                                                                       \
            char **nl = deft_realloc(list, (size_t)(cap *= 2) * sizeof *list);                  \
            if (!nl) { s = deft_set_error(DEFT_ERR_NOMEM, "out of memory"); break; }            \
            list = nl;                                                                          \
        }                                                                                       \
        if (!(list[cnt] = deft_strdup(str))) { s = deft_set_error(DEFT_ERR_NOMEM, "out of memory"); break; } \
        cnt++;                                                                                  \
    } while (0)
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(in);
        if (!d) s = deft_set_error(DEFT_ERR_IO, "cannot read directory %s", in);
        for (struct dirent *e; !s && d && (e = readdir(d));) {
            if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", in, e->d_name);
            PUSH(p);
        }
        if (d) closedir(d);
        if (!s) qsort(list, (size_t)cnt, sizeof *list, cmp_str);
    } else if (!is_image_name(in)) {
        void *buf;
        size_t len;
        if (!(s = deft_file_read(in, 64u << 20, &buf, &len))) {
            for (char *line = buf; !s && line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl) *nl = 0;
                size_t l = strlen(line);
                while (l && (line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
                if (l) PUSH(line);
                line = nl ? nl + 1 : NULL;
            }
            deft_free(buf);
        }
    } else {
        PUSH(in);
    }
#undef PUSH
    if (!s && cnt == 0) s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no images found", in);
    if (s) {
        deft_string_list_free(list, cnt);
        return s;
    }
    *paths = list;
    *n = cnt;
    return DEFT_OK;
}

enum deft_status deft_cls_inference(const struct deft_cls_args *a) {
    FILE *out = a->out ? a->out : stdout;
    if (!a->model || !a->input)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "inference needs -m MODEL and -i IMAGE|DIR|LIST.txt");
    struct model_run mr = {0};
    char **paths = NULL;
    int n = 0, skipped = 0;
    float *images = NULL, *logits = NULL;
    char *csv = NULL;
    size_t len = 0, cap = 0;
    enum deft_status s = collect_inputs(a->input, &paths, &n);
    if (s) return s;
    if (a->threads > 0) deft_set_threads(a->threads);
    int batch = n < 16 ? n : 16;
    if ((s = model_run_open(&mr, a->model, batch, a))) goto done;
    int k = a->top_k > 0 ? (a->top_k < mr.n_classes ? a->top_k : mr.n_classes) : 1;
    images = deft_malloc((size_t)batch * mr.per_image * sizeof(float));
    logits = deft_malloc((size_t)batch * (size_t)mr.n_classes * sizeof(float));
    int *idx = deft_malloc((size_t)batch * sizeof(int));
    if (!images || !logits || !idx) {
        deft_free(idx);
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    cap = 256 + (size_t)n * (64 + 48 * (size_t)k);
    for (int i = 0; i < n; i++) cap += strlen(paths[i]) * 2;
    size_t maxname = 0;
    for (int c = 0; c < mr.n_classes; c++) maxname = strlen(mr.classes[c]) > maxname ? strlen(mr.classes[c]) : maxname;
    cap += (size_t)n * (size_t)k * (maxname + 4);
    csv = deft_malloc(cap);
    if (!csv) {
        deft_free(idx);
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    len += (size_t)snprintf(csv + len, cap - len, "path,class,confidence");
    for (int j = 1; j < k; j++) len += (size_t)snprintf(csv + len, cap - len, ",class_%d,confidence_%d", j + 1, j + 1);
    len += (size_t)snprintf(csv + len, cap - len, "\n");
    for (int start = 0; start < n && !s; start += batch) {
        int m = 0;
        for (int i = start; i < n && i < start + batch; i++) {
            void *buf;
            size_t bl;
            enum deft_status e = deft_file_read(paths[i], 256u << 20, &buf, &bl);
            if (!e) {
                e = deft_transform_bytes(&mr.tf, buf, bl, 0, 0, images + (size_t)m * mr.per_image);
                deft_free(buf);
            }
            if (e) {
                if (a->fatal_corrupt) {
                    s = e;
                    break;
                }
                deft_log(DEFT_LOG_WARN, "skipping %s: %s", paths[i], deft_last_error());
                skipped++;
                continue;
            }
            idx[m++] = i;
        }
        if (s || m == 0) continue;
        if ((s = model_run_batch(&mr, images, m, logits))) break;
        for (int j = 0; j < m; j++) {
            const float *l = logits + (size_t)j * (size_t)mr.n_classes;
            double mx = l[0], z = 0;
            for (int c = 1; c < mr.n_classes; c++) mx = l[c] > mx ? l[c] : mx;
            for (int c = 0; c < mr.n_classes; c++) z += exp(l[c] - mx);
            if (mr.probabilities) { /* exp(log p - 0) / 1 = p */
                mx = 0;
                z = 1;
            }
            len += (size_t)snprintf(csv + len, cap - len, "%s", paths[idx[j]]);
            bool used[4096] = {0};
            for (int r = 0; r < k; r++) {
                int best = -1;
                for (int c = 0; c < mr.n_classes; c++)
                    if ((c >= 4096 || !used[c]) && (best < 0 || l[c] > l[best])) best = c;
                if (best < 4096) used[best] = true;
                double conf = mr.probabilities ? l[best] : exp(l[best] - mx) / z;
                len += (size_t)snprintf(csv + len, cap - len, ",%s,%.6f", mr.classes[best], conf);
            }
            len += (size_t)snprintf(csv + len, cap - len, "\n");
        }
    }
    deft_free(idx);
    if (s) goto done;
    char outp[4200];
    const char *path = a->output_file;
    if (!path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/inference", a->results_dir && a->results_dir[0] ? a->results_dir : ".");
        if ((s = cls_mkdirs(dir))) goto done;
        snprintf(outp, sizeof outp, "%s/results.csv", dir);
        path = outp;
    }
    if ((s = deft_mkdirs_for(path)) || (s = deft_file_write_atomic(path, csv, len))) goto done;
    if (n <= 20) fputs(csv, out);
    fprintf(out, "%d images classified%s -> %s\n", n - skipped, skipped ? " (some skipped, see warnings)" : "", path);
done:
    deft_free(csv);
    deft_free(images);
    deft_free(logits);
    deft_string_list_free(paths, n);
    model_run_free(&mr);
    return s;
}

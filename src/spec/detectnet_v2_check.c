/* detectnet_v2_check.c - loading the three DetectNet_v2 specs and the checks
 * after the schema: TAO's value checks the tables cannot say, class
 * consistency between the per-class blocks, and what deft refuses (exit 2 at
 * the field's file:line:col). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "spec/detectnet_v2_spec_impl.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- messages ------------------------------------------------------------------- */

/* "at: <fmt>" with status s. */
static enum deft_status fail_at(enum deft_status s, const char *at, const char *fmt, ...) DEFT_PRINTF(3, 4);
static enum deft_status fail_at(enum deft_status s, const char *at, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return deft_set_error(s, "%s: %s", at, msg);
}

/* The node at a dotted path whose numeric segments index repeated blocks
 * ("a.b.2.c"; a lone block is element 0), NULL when absent. */
static const struct deft_spec_node *node_at(const struct deft_spec_node *n, const char *path) {
    char seg[128];
    while (n && *path) {
        size_t l = strcspn(path, ".");
        if (l >= sizeof seg) return NULL;
        memcpy(seg, path, l);
        seg[l] = 0;
        path += l + (path[l] == '.');
        char *end;
        long i = strtol(seg, &end, 10);
        if (*seg && !*end) {
            if (n->kind == DEFT_SPEC_LIST) n = i >= 0 && i < n->n ? n->kids[i] : NULL;
            else if (i != 0) n = NULL;
        } else {
            if (n->kind == DEFT_SPEC_LIST && n->n > 0) n = n->kids[0];
            n = n->kind == DEFT_SPEC_MAP ? deft_spec_map_get(n, seg) : NULL;
        }
    }
    return n;
}

/* "--set '...'" or file:line:col of `path` (numeric segments allowed); else of its
 * longest written prefix; else the file. */
static void where(const struct deft_spec_origin *o, const char *path, char *buf, size_t cap) {
    const char *a = deft_spec_override_of(o, path);
    if (a) {
        snprintf(buf, cap, "--set '%.200s'", a);
        return;
    }
    char p[300];
    snprintf(p, sizeof p, "%s", path);
    for (;;) {
        const struct deft_spec_node *v = o->tree ? node_at(o->tree, p) : NULL;
        if (v && v->kind == DEFT_SPEC_LIST && v->n > 0) v = v->kids[0];
        if (v && (v->line > 0 || v->key_line > 0)) {
            bool key = v->line <= 0;
            snprintf(buf, cap, "%s:%d:%d", v->file, key ? v->key_line : v->line, key ? v->key_col : v->col);
            return;
        }
        char *dot = strrchr(p, '.');
        if (!dot) break;
        *dot = 0;
    }
    snprintf(buf, cap, "%s", o->file ? o->file : "spec");
}

static void where_or(const struct deft_spec_origin *o, const char *path, const char *fallback, char *buf, size_t n) {
    bool given = (o->tree && node_at(o->tree, path)) || deft_spec_override_of(o, path);
    where(o, given ? path : fallback, buf, n);
}

static bool written(const struct deft_spec_origin *o, const char *path) {
    return (o->tree && node_at(o->tree, path)) || deft_spec_override_of(o, path);
}

/* A class name near `name` among names[0..n) ("; did you mean 'x'?"), or "". */
static void suggest(const char *name, char *const *names, int n, char *buf, size_t cap) {
    int best = 99;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        int d = strcasecmp(name, names[i]) == 0 ? 0 : deft_spec_edit_distance(name, names[i]);
        if (d < best && d <= 2) best = d, snprintf(buf, cap, "; did you mean '%s'?", names[i]);
    }
}

static int find_name(char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

/* ---- per-class maps ----------------------------------------------------------------- */

/* One "map<string, X>" written as repeated {key, value} entries: keys unique and
 * classes of the cost function; with need_all every class has an entry
 * (TAO's GridboxModel looks each class up in it). out_of[k] = entry of class k. */
struct class_map {
    const char *path;              /* "bbox_rasterizer_config.target_class_config" */
    const char *const *keys;       /* n keys, as written */
    int n;
    bool need_all;
    const char *allow_extra;       /* a key that is not a class but allowed ("default"), or NULL */
};

static enum deft_status check_class_map(const struct class_map *m, char *const *classes, int nc, int *out_of,
                                        const struct deft_spec_origin *o, const char *class_source) {
    char at[400], sug[120];
    for (int i = 0; i < m->n; i++) {
        for (int j = 0; j < i; j++)
            if (!strcmp(m->keys[i], m->keys[j])) {
                deft_spec_origin_where_element(o, m->path, i, "key", at, sizeof at);
                return fail_at(DEFT_ERR_INVALID_ARG, at, "%s: class '%.60s' is given twice", m->path, m->keys[i]);
            }
        if (find_name(classes, nc, m->keys[i]) >= 0 || (m->allow_extra && !strcmp(m->keys[i], m->allow_extra)))
            continue;
        suggest(m->keys[i], classes, nc, sug, sizeof sug);
        deft_spec_origin_where_element(o, m->path, i, "key", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "%s: '%.60s' is not a class of %s%s", m->path, m->keys[i],
                       class_source, sug);
    }
    for (int k = 0; k < nc; k++) {
        int e = -1;
        for (int i = 0; i < m->n && e < 0; i++)
            if (!strcmp(m->keys[i], classes[k])) e = i;
        if (e < 0 && m->allow_extra)
            for (int i = 0; i < m->n && e < 0; i++)
                if (!strcmp(m->keys[i], m->allow_extra)) e = i;
        if (out_of) out_of[k] = e;
        if (e >= 0 || !m->need_all) continue;
        char parent[200];
        snprintf(parent, sizeof parent, "%s", m->path);
        char *dot = strrchr(parent, '.');
        if (dot) *dot = 0;
        where(o, written(o, m->path) ? m->path : parent, at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "%s has no entry for class '%s' (%s lists it): add "
                       "{ key: \"%s\" value { ... } }", m->path, classes[k], class_source, classes[k]);
    }
    return DEFT_OK;
}

static enum deft_status check_clustering(const struct deft_dnv2_clustering_config *c, const char *path,
                                         const struct deft_spec_origin *o) {
    char at[400], p[300];
    if (c->clustering_algorithm == DEFT_DNV2_HYBRID) {
        snprintf(p, sizeof p, "%s.clustering_algorithm", path);
        where(o, p, at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "%s: HYBRID is in TAO's enum but no TAO release implements it; "
                       "use DBSCAN or NMS", p);
    }
    if (c->clustering_algorithm == DEFT_DNV2_DBSCAN && c->dbscan_eps <= 0) {
        snprintf(p, sizeof p, "%s.dbscan_eps", path);
        where_or(o, p, path, at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "%s must be > 0 for DBSCAN (boxes within 1 - IoU <= eps "
                       "cluster; TAO's samples use 0.15-0.3)", p);
    }
    return DEFT_OK;
}

/* ---- the experiment ------------------------------------------------------------------- */

static enum deft_status check_model(struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    struct deft_dnv2_model_config *m = &c->model_config;
    char at[400];
    static const char *const tao_archs[] = {"resnet", "vgg", "darknet", "mobilenet_v1", "mobilenet_v2",
                                            "squeezenet", "googlenet", "efficientnet_b0"};
    int a = -1;
    for (int i = 0; i < N_OF(tao_archs); i++)
        if (!strcmp(m->arch, tao_archs[i])) a = i;
    where(o, "model_config.arch", at, sizeof at);
    if (a < 0) {
        char sug[120];
        suggest(m->arch, (char *const *)tao_archs, N_OF(tao_archs), sug, sizeof sug);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "model_config.arch '%.40s' is not a DetectNet_v2 backbone (resnet, "
                       "vgg, darknet, mobilenet_v1, mobilenet_v2, squeezenet, googlenet, efficientnet_b0)%s",
                       m->arch, sug);
    }
    if (strcmp(m->arch, "resnet") && strcmp(m->arch, "mobilenet_v2"))
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "model_config.arch '%s': deft builds DetectNet_v2 on resnet "
                       "(10/18/34/50/101) and mobilenet_v2 only (the backbones it has at output stride 16)", m->arch);
    if (!strcmp(m->arch, "resnet")) {
        static const int depths[] = {10, 18, 34, 50, 101};
        bool ok = false;
        for (int i = 0; i < N_OF(depths); i++) ok |= depths[i] == m->num_layers;
        if (!ok) {
            where_or(o, "model_config.num_layers", "model_config", at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "model_config.num_layers %d is not a resnet depth: use 10, 18, "
                           "34, 50 or 101", m->num_layers);
        }
    }
    if (!m->use_batch_norm) {
        where_or(o, "model_config.use_batch_norm", "model_config", at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "model_config.use_batch_norm is false%s: deft's backbones always "
                       "have batch norm; set use_batch_norm: true", written(o, "model_config.use_batch_norm") ? ""
                       : " (unset)");
    }
    if (m->all_projections) {
        where(o, "model_config.all_projections", at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "model_config.all_projections: deft's resnet projects only the "
                       "shortcuts that change shape (torchvision's layout); remove it or set false");
    }
    const char *act = m->activation.activation_type;
    if (*act && strcmp(act, "relu")) {
        where(o, "model_config.activation.activation_type", at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "model_config.activation.activation_type '%.40s': deft's resnet "
                       "and mobilenet_v2 use relu / relu6 as built; remove it or write relu", act);
    }
    for (int i = 0; i < m->n_freeze_blocks; i++)
        if (m->freeze_blocks[i] != (double)(int)m->freeze_blocks[i]) {
            where(o, "model_config.freeze_blocks", at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "model_config.freeze_blocks: %g is not a block index (write "
                           "whole numbers)", m->freeze_blocks[i]);
        }
    if ((m->load_graph || m->freeze_pretrained_layers) && !*m->pretrained_model_file) {
        const char *k = m->load_graph ? "model_config.load_graph" : "model_config.freeze_pretrained_layers";
        where(o, k, at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "%s needs model_config.pretrained_model_file", k);
    }
    if (m->training_precision.backend_floatx == DEFT_DNV2_FLOATX_INVALID) {
        where(o, "model_config.training_precision.backend_floatx", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "model_config.training_precision.backend_floatx INVALID: write "
                       "FLOAT32 (or FLOAT16)");
    }
    if (m->training_precision.backend_floatx == DEFT_DNV2_FLOAT16)
        deft_log(DEFT_LOG_INFO, "%s: training_precision FLOAT16 noted: deft trains in fp32 (mixed precision is "
                 "--use_amp on the cuda backend)", o->file);
    if (c->training_config.enable_qat && !strcmp(m->arch, "mobilenet_v2"))
        deft_log(DEFT_LOG_WARN, "%s: enable_qat with mobilenet_v2: TAO silently trains without QAT here; deft "
                 "does quantize it", o->file);
    return DEFT_OK;
}

static enum deft_status check_training(struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    struct deft_dnv2_training_config *t = &c->training_config;
    char at[400];
    struct deft_dnv2_lr_config *lr = &t->learning_rate;
    if (lr->has_soft_start_annealing_schedule) {
        const struct deft_dnv2_lr_anneal *a = &lr->soft_start_annealing_schedule;
        const char *p = "training_config.learning_rate.soft_start_annealing_schedule";
        char path[200];
        if (a->soft_start >= 1 || a->annealing >= 1) {
            snprintf(path, sizeof path, "%s.%s", p, a->soft_start >= 1 ? "soft_start" : "annealing");
            where(o, path, at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "%s must be below 1 (a fraction of the run)", path);
        }
        if (a->annealing < a->soft_start) {
            snprintf(path, sizeof path, "%s.annealing", p);
            where(o, path, at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "%s (%g) must not come before soft_start (%g)", path,
                           a->annealing, a->soft_start);
        }
        if (a->min_learning_rate > a->max_learning_rate) {
            snprintf(path, sizeof path, "%s.min_learning_rate", p);
            where(o, path, at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "%s (%g) is above max_learning_rate (%g)", path,
                           a->min_learning_rate, a->max_learning_rate);
        }
        lr->kind = DEFT_DNV2_LR_SOFT_START_ANNEALING;
    } else {
        const struct deft_dnv2_lr_early_stop *e = &lr->early_stopping_annealing_schedule;
        const char *p = "training_config.learning_rate.early_stopping_annealing_schedule";
        char path[200];
        if (e->min_learning_rate > e->max_learning_rate || e->annealing_epochs < e->soft_start_epochs) {
            bool lrs = e->min_learning_rate > e->max_learning_rate;
            snprintf(path, sizeof path, "%s.%s", p, lrs ? "min_learning_rate" : "annealing_epochs");
            where(o, path, at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "%s: %s", path, lrs ? "above max_learning_rate"
                           : "before soft_start_epochs");
        }
        lr->kind = DEFT_DNV2_LR_EARLY_STOPPING;
    }
    if (t->regularizer.type != DEFT_DNV2_REG_NONE && t->regularizer.weight == 0)
        deft_log(DEFT_LOG_WARN, "%s: training_config.regularizer has weight 0: no regularization", o->file);
    if (t->cost_scaling.enabled)
        deft_log(DEFT_LOG_INFO, "%s: training_config.cost_scaling noted: deft trains in fp32, where loss scaling "
                 "changes nothing", o->file);
    return DEFT_OK;
}

static enum deft_status check_augmentation(struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    const struct deft_dnv2_preprocessing *p = &c->augmentation_config.preprocessing;
    char at[400];
    const char *bad = p->output_image_width % 16 ? "output_image_width" : p->output_image_height % 16
                      ? "output_image_height" : NULL;
    if (bad) {
        char path[128];
        int v = p->output_image_width % 16 ? p->output_image_width : p->output_image_height;
        snprintf(path, sizeof path, "augmentation_config.preprocessing.%s", bad);
        where(o, path, at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "%s = %d must be a multiple of 16 (the output stride): use %d or %d",
                       path, v, v / 16 * 16 < 16 ? 16 : v / 16 * 16, (v / 16 + 1) * 16);
    }
    if (p->output_image_channel != 1 && p->output_image_channel != 3) {
        where(o, "augmentation_config.preprocessing.output_image_channel", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "augmentation_config.preprocessing.output_image_channel must be 1 "
                       "or 3");
    }
    const struct deft_dnv2_spatial_aug *s = &c->augmentation_config.spatial_augmentation;
    if (s->zoom_min > s->zoom_max) {
        where(o, "augmentation_config.spatial_augmentation.zoom_min", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "augmentation_config.spatial_augmentation: zoom_min (%g) is above "
                       "zoom_max (%g)", s->zoom_min, s->zoom_max);
    }
    if (p->enable_auto_resize && p->output_image_min > 0 && p->output_image_max > 0 &&
        p->output_image_min > p->output_image_max) {
        where(o, "augmentation_config.preprocessing.output_image_min", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "augmentation_config.preprocessing: output_image_min is above "
                       "output_image_max");
    }
    return DEFT_OK;
}

static enum deft_status check_source(const struct deft_dnv2_data_source *s, const char *list, int i,
                                     const struct deft_spec_origin *o) {
    char at[400];
    if (!*s->tfrecords_path && !*s->image_directory_path) {
        if (i >= 0) deft_spec_origin_where_element(o, list, i, NULL, at, sizeof at);
        else where(o, list, at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "%s needs image_directory_path (and tfrecords_path naming what "
                       "`deft detectnet_v2 dataset_convert` wrote, or labels beside the images)", list);
    }
    return DEFT_OK;
}

static enum deft_status check_dataset(struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    struct deft_dnv2_dataset_config *d = &c->dataset_config;
    char at[400];
    if (d->n_data_sources == 0) {
        where(o, "dataset_config", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "dataset_config needs at least one data_sources block");
    }
    for (int i = 0; i < d->n_data_sources; i++) {
        enum deft_status s = check_source(&d->data_sources[i], "dataset_config.data_sources", i, o);
        if (s) return s;
    }
    d->has_validation_fold = written(o, "dataset_config.validation_fold");
    if (d->has_validation_fold && d->has_validation_data_source) {
        where(o, "dataset_config.validation_data_source", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "dataset_config: validation_fold and validation_data_source are "
                       "alternatives (TAO's oneof dataset_split_type): keep one");
    }
    if (d->has_validation_data_source) {
        enum deft_status s = check_source(&d->validation_data_source, "dataset_config.validation_data_source", -1, o);
        if (s) return s;
    }
    if (strchr(d->image_extension, '/')) {
        where(o, "dataset_config.image_extension", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "dataset_config.image_extension '%.40s' is not an extension",
                       d->image_extension);
    }
    if (d->n_target_class_mapping == 0) {
        where(o, "dataset_config", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "dataset_config needs target_class_mapping entries "
                       "{ key: \"label name\" value: \"class name\" }");
    }
    return DEFT_OK;
}

static enum deft_status set_classes(struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    const struct deft_dnv2_cost_function_config *cf = &c->cost_function_config;
    char at[400], path[200];
    int n = cf->n_target_classes;
    if (n == 0) {
        where(o, "cost_function_config", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "cost_function_config needs target_classes (one a class, in the "
                       "network's output order)");
    }
    c->class_names = deft_calloc((size_t)n, sizeof *c->class_names);
    c->raster_of = deft_calloc((size_t)n, sizeof *c->raster_of);
    c->postproc_of = deft_calloc((size_t)n, sizeof *c->postproc_of);
    if (!c->class_names || !c->raster_of || !c->postproc_of) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const struct deft_dnv2_target_class *tc = &cf->target_classes[k];
        if (find_name(c->class_names, k, tc->name) >= 0) {
            deft_spec_origin_where_element(o, "cost_function_config.target_classes", k, "name", at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "cost_function_config.target_classes: class '%.60s' is given "
                           "twice", tc->name);
        }
        if (!(c->class_names[k] = deft_strdup(tc->name))) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        c->n_classes = k + 1;
        bool seen[2] = {false, false};
        snprintf(path, sizeof path, "cost_function_config.target_classes.%d.objectives", k);
        for (int j = 0; j < tc->n_objectives; j++) {
            const char *on = tc->objectives[j].name;
            int w = !strcmp(on, "cov") ? 0 : !strcmp(on, "bbox") ? 1 : -1;
            if (w < 0 || seen[w]) {
                char jp[240];
                snprintf(jp, sizeof jp, "%s.%d.name", path, j);
                where(o, jp, at, sizeof at);
                return fail_at(DEFT_ERR_INVALID_ARG, at, "class '%s': objective '%.40s' %s", tc->name, on,
                               w < 0 ? "is not one of DetectNet_v2's objectives: cov, bbox" : "is given twice");
            }
            seen[w] = true;
        }
        if (!seen[0] || !seen[1]) {
            deft_spec_origin_where_element(o, "cost_function_config.target_classes", k, NULL, at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "class '%s' has no objectives { name: \"%s\" ... } (each class "
                           "needs cov and bbox)", tc->name, seen[0] ? "bbox" : "cov");
        }
        bool upper = false;
        for (const char *p = tc->name; *p; p++) upper |= *p >= 'A' && *p <= 'Z';
        if (upper)
            deft_log(DEFT_LOG_WARN, "%s: class '%s' has capitals: labels are read lower-cased (TAO's converter "
                     "lower-cases them), so name the class in lower case or no box will reach it", o->file, tc->name);
    }
    if (cf->enable_autoweighting && cf->min_objective_weight > cf->max_objective_weight) {
        where(o, "cost_function_config.min_objective_weight", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "cost_function_config: min_objective_weight (%g) is above "
                       "max_objective_weight (%g)", cf->min_objective_weight, cf->max_objective_weight);
    }
    return DEFT_OK;
}

/* Keys of an array of {char *key; ...} entries of `size` bytes (deft_malloc'd array). */
static const char **keys_of(const void *arr, int n, size_t size) {
    const char **k = deft_calloc((size_t)(n ? n : 1), sizeof *k);
    for (int i = 0; k && i < n; i++) k[i] = *(char *const *)((const char *)arr + (size_t)i * size);
    return k;
}

static enum deft_status check_one_map(const char *path, const void *arr, int n, size_t size, bool need_all,
                                      struct deft_dnv2_config *c, int *out_of, const struct deft_spec_origin *o) {
    const char **keys = keys_of(arr, n, size);
    if (!keys) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    struct class_map m = {path, keys, n, need_all, NULL};
    enum deft_status s = check_class_map(&m, c->class_names, c->n_classes, out_of, o,
                                         "cost_function_config.target_classes");
    deft_free(keys);
    return s;
}

static enum deft_status check_class_blocks(struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    const struct deft_dnv2_bbox_rasterizer_config *r = &c->bbox_rasterizer_config;
    const struct deft_dnv2_postprocessing_config *pp = &c->postprocessing_config;
    const struct deft_dnv2_evaluation_config *ev = &c->evaluation_config;
    enum deft_status s = check_one_map("bbox_rasterizer_config.target_class_config", r->target_class_config,
                                       r->n_target_class_config, sizeof *r->target_class_config, true, c,
                                       c->raster_of, o);
    if (!s) s = check_one_map("postprocessing_config.target_class_config", pp->target_class_config,
                              pp->n_target_class_config, sizeof *pp->target_class_config, true, c, c->postproc_of, o);
    if (!s) s = check_one_map("evaluation_config.evaluation_box_config", ev->evaluation_box_config,
                              ev->n_evaluation_box_config, sizeof *ev->evaluation_box_config, false, c, NULL, o);
    if (!s) s = check_one_map("evaluation_config.minimum_detection_ground_truth_overlap",
                              ev->minimum_detection_ground_truth_overlap, ev->n_minimum_detection_ground_truth_overlap,
                              sizeof *ev->minimum_detection_ground_truth_overlap, false, c, NULL, o);
    if (s) return s;
    char path[300];
    for (int i = 0; i < pp->n_target_class_config; i++) {
        const struct deft_dnv2_postproc_class *v = &pp->target_class_config[i].value;
        snprintf(path, sizeof path, "postprocessing_config.target_class_config.%d.value.clustering_config", i);
        if ((s = check_clustering(&v->clustering_config, path, o))) return s;
        if (*v->confidence_config.confidence_model_filename) {
            char at[400];
            snprintf(path, sizeof path, "postprocessing_config.target_class_config.%d.value.confidence_config."
                     "confidence_model_filename", i);
            where(o, path, at, sizeof at);
            return fail_at(DEFT_ERR_UNSUPPORTED, at, "confidence_model_filename: TAO's learned confidence models "
                           "are not supported; remove it (confidence is the clusters' summed coverage)");
        }
    }
    /* classes the evaluation has no settings for: TAO's defaults */
    for (int k = 0; k < c->n_classes; k++) {
        bool iou = false, box = false;
        for (int i = 0; i < ev->n_minimum_detection_ground_truth_overlap; i++)
            iou |= !strcmp(ev->minimum_detection_ground_truth_overlap[i].key, c->class_names[k]);
        for (int i = 0; i < ev->n_evaluation_box_config; i++)
            box |= !strcmp(ev->evaluation_box_config[i].key, c->class_names[k]);
        if (!iou || !box)
            deft_log(DEFT_LOG_WARN, "%s: evaluation_config has no %s for class '%s': %s", o->file,
                     !iou ? "minimum_detection_ground_truth_overlap" : "evaluation_box_config", c->class_names[k],
                     !iou ? "IoU 0.5 is used" : "no size filter");
    }
    return DEFT_OK;
}

/* target_class_mapping against the classes: TAO drops what maps elsewhere, silently. */
static void check_mapping(const struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    const struct deft_dnv2_dataset_config *d = &c->dataset_config;
    for (int i = 0; i < d->n_target_class_mapping; i++) {
        const struct deft_spec_str_kv *m = &d->target_class_mapping[i];
        if (find_name(c->class_names, c->n_classes, m->value) < 0)
            deft_log(DEFT_LOG_WARN, "%s: target_class_mapping '%s' -> '%s': '%s' is not a class of "
                     "cost_function_config, so these boxes are not trained", o->file, m->key, m->value, m->value);
        bool upper = false;
        for (const char *p = m->key; *p; p++) upper |= *p >= 'A' && *p <= 'Z';
        if (upper)
            deft_log(DEFT_LOG_WARN, "%s: target_class_mapping key '%s' has capitals: labels are compared "
                     "lower-cased (TAO would match nothing: 0 mAP)", o->file, m->key);
    }
    for (int k = 0; k < c->n_classes; k++) {
        bool fed = false;
        for (int i = 0; i < d->n_target_class_mapping; i++) fed |= !strcmp(d->target_class_mapping[i].value,
                                                                              c->class_names[k]);
        if (!fed)
            deft_log(DEFT_LOG_WARN, "%s: no target_class_mapping entry maps to class '%s': it gets no boxes", o->file,
                     c->class_names[k]);
    }
}

static enum deft_status resolve_experiment(struct deft_dnv2_config *c, const struct deft_spec_origin *o) {
    char at[400];
    if (written(o, "loss_mask_label_filter")) {
        where(o, "loss_mask_label_filter", at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "loss_mask_label_filter: TAO's loss-mask label filters are not "
                       "supported by deft; remove the block");
    }
    c->has_loss_mask_label_filter = false;
    enum deft_status s = check_model(c, o);
    if (!s) s = check_training(c, o);
    if (!s) s = check_augmentation(c, o);
    if (!s) s = check_dataset(c, o);
    if (!s) s = set_classes(c, o);
    if (!s) s = check_class_blocks(c, o);
    if (s) return s;
    check_mapping(c, o);
    return DEFT_OK;
}

/* ---- the inference spec ------------------------------------------------------------- */

static enum deft_status resolve_inference(struct deft_dnv2_infer_config *c, const struct deft_spec_origin *o) {
    struct deft_dnv2_inferencer_config *ic = &c->inferencer_config;
    struct deft_dnv2_bbox_handler_config *bh = &c->bbox_handler_config;
    char at[400], sug[120], path[300];
    if (ic->has_tensorrt_config) {
        where(o, "inferencer_config.tensorrt_config", at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "inferencer_config.tensorrt_config: deft runs its own models, not "
                       "TensorRT engines; write tlt_config { model: \"MODEL\" } with a deft detectnet_v2 model "
                       "(or its ONNX export)");
    }
    const char *bad = ic->image_width % 16 ? "image_width" : ic->image_height % 16 ? "image_height" : NULL;
    if (bad) {
        snprintf(path, sizeof path, "inferencer_config.%s", bad);
        where(o, path, at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "%s must be a multiple of 16 (the output stride)", path);
    }
    if (ic->image_channels != 1 && ic->image_channels != 3) {
        where(o, "inferencer_config.image_channels", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "inferencer_config.image_channels must be 1 or 3");
    }
    if (ic->stride != 0 && ic->stride != 16) {
        where(o, "inferencer_config.stride", at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "inferencer_config.stride %d: deft's DetectNet_v2 has output stride "
                       "16", ic->stride);
    }
    if (ic->n_target_classes == 0) {
        where(o, "inferencer_config", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "inferencer_config needs target_classes (the network's classes in "
                       "output order)");
    }
    for (int k = 0; k < ic->n_target_classes; k++)
        if (find_name(ic->target_classes, k, ic->target_classes[k]) >= 0) {
            where(o, "inferencer_config.target_classes", at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "inferencer_config.target_classes: '%.60s' is given twice",
                           ic->target_classes[k]);
        }
    c->handler_of = deft_calloc((size_t)ic->n_target_classes, sizeof *c->handler_of);
    const char **keys = keys_of(bh->classwise_bbox_handler_config, bh->n_classwise_bbox_handler_config,
                                sizeof *bh->classwise_bbox_handler_config);
    if (!c->handler_of || !keys) {
        deft_free(keys);
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    struct class_map m = {"bbox_handler_config.classwise_bbox_handler_config", keys,
                          bh->n_classwise_bbox_handler_config, true, "default"};
    enum deft_status s = check_class_map(&m, ic->target_classes, ic->n_target_classes, c->handler_of, o,
                                         "inferencer_config.target_classes");
    deft_free(keys);
    if (s) return s;
    for (int i = 0; i < bh->n_classwise_bbox_handler_config; i++) {
        const struct deft_dnv2_classwise_bbox *v = &bh->classwise_bbox_handler_config[i].value;
        snprintf(path, sizeof path, "bbox_handler_config.classwise_bbox_handler_config.%d.value.clustering_config", i);
        if ((s = check_clustering(&v->clustering_config, path, o))) return s;
        if (strcmp(v->confidence_model, "aggregate_cov") && strcmp(v->confidence_model, "mean_cov")) {
            snprintf(path, sizeof path, "bbox_handler_config.classwise_bbox_handler_config.%d.value.confidence_model",
                     i);
            where(o, path, at, sizeof at);
            return fail_at(DEFT_ERR_UNSUPPORTED, at, "confidence_model '%.60s': deft computes aggregate_cov (sum of "
                           "the cluster's coverage) or mean_cov", v->confidence_model);
        }
    }
    for (int i = 0; i < bh->n_postproc_classes; i++)
        if (find_name(ic->target_classes, ic->n_target_classes, bh->postproc_classes[i]) < 0) {
            suggest(bh->postproc_classes[i], ic->target_classes, ic->n_target_classes, sug, sizeof sug);
            where(o, "bbox_handler_config.postproc_classes", at, sizeof at);
            return fail_at(DEFT_ERR_INVALID_ARG, at, "bbox_handler_config.postproc_classes: '%.60s' is not one of "
                           "inferencer_config.target_classes%s", bh->postproc_classes[i], sug);
        }
    return DEFT_OK;
}

/* ---- the dataset_convert spec -------------------------------------------------------- */

static enum deft_status resolve_convert(struct deft_dnv2_convert_config *c, const struct deft_spec_origin *o) {
    char at[400];
    if (c->has_coco_config) {
        where(o, "coco_config", at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "coco_config: deft's detectnet_v2 dataset_convert takes KITTI "
                       "folders (kitti_config); COCO JSON is read directly by deft's detection loaders");
    }
    static const char *const modifiers[] = {"filter_samples_containing_only", "dominant_target_classes",
                                            "minimum_target_class_imbalance", "num_duplicates", "max_training_samples",
                                            "source_to_target_class_mapping"};
    for (int i = 0; i < N_OF(modifiers); i++) {
        char path[160];
        snprintf(path, sizeof path, "sample_modifier_config.%s", modifiers[i]);
        if (!written(o, path)) continue;
        where(o, path, at, sizeof at);
        return fail_at(DEFT_ERR_UNSUPPORTED, at, "%s: TAO's frame filtering / duplication is not supported; remove "
                       "sample_modifier_config", path);
    }
    struct deft_dnv2_kitti_config *k = &c->kitti_config;
    bool random = !strcmp(k->partition_mode, "random"), seq = !strcmp(k->partition_mode, "sequence");
    if (!random && !seq) {
        where(o, "kitti_config.partition_mode", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "kitti_config.partition_mode '%.40s': write random or sequence",
                       k->partition_mode);
    }
    if (random && k->num_partitions != 2) {
        where(o, "kitti_config.num_partitions", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "kitti_config.num_partitions %d: the random partition mode makes "
                       "2 (fold 0 validation, fold 1 training), as TAO", k->num_partitions);
    }
    if (k->val_split >= 100) {
        where(o, "kitti_config.val_split", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "kitti_config.val_split %g: a percentage in [0, 100)", k->val_split);
    }
    if (seq && !*k->kitti_sequence_to_frames_file) {
        where(o, "kitti_config.partition_mode", at, sizeof at);
        return fail_at(DEFT_ERR_INVALID_ARG, at, "kitti_config.partition_mode sequence needs "
                       "kitti_sequence_to_frames_file (a JSON {sequence: [frame ids]} under root_directory_path)");
    }
    return DEFT_OK;
}

/* ---- loading ---------------------------------------------------------------------- */

enum deft_dnv2_spec_kind deft_dnv2_spec_kind_of(const char *text, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) i++;
        if (i < n && text[i] == '#') {
            while (i < n && text[i] != '\n') i++;
            continue;
        }
        break;
    }
    size_t st = i;
    while (i < n && (text[i] == '_' || (text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z') ||
                     (text[i] >= '0' && text[i] <= '9')))
        i++;
    size_t l = i - st;
#define IS(w) (l == sizeof(w) - 1 && !memcmp(text + st, w, l))
    if (IS("inferencer_config") || IS("bbox_handler_config")) return DEFT_DNV2_SPEC_INFERENCE;
    if (IS("kitti_config") || IS("coco_config")) return DEFT_DNV2_SPEC_CONVERT;
#undef IS
    return DEFT_DNV2_SPEC_EXPERIMENT;
}

static const char *kind_name(enum deft_dnv2_spec_kind k) {
    return k == DEFT_DNV2_SPEC_INFERENCE ? "the inference spec (inferencer_config, bbox_handler_config): use it with "
                                           "`deft detectnet_v2 inference -e`"
           : k == DEFT_DNV2_SPEC_CONVERT ? "the dataset_convert spec (kitti_config): use it with "
                                           "`deft detectnet_v2 dataset_convert -d`"
                                         : "the experiment spec (train, evaluate, export)";
}

static enum deft_status r_exp(void *c, const struct deft_spec_origin *o) { return resolve_experiment(c, o); }
static enum deft_status r_inf(void *c, const struct deft_spec_origin *o) { return resolve_inference(c, o); }
static enum deft_status r_cvt(void *c, const struct deft_spec_origin *o) { return resolve_convert(c, o); }

/* The shared path: kind check, schema, resolution. On success *file, *ignored
 * and *fmt belong to the caller. */
static enum deft_status load_kind(enum deft_dnv2_spec_kind kind, void *obj, const char *text, size_t n,
                                  const char *name, enum deft_spec_format fmt, const char *const *ov, int n_ov,
                                  char **file_out, char **ignored_out, enum deft_spec_format *fmt_out) {
    enum deft_dnv2_spec_kind got_kind = deft_dnv2_spec_kind_of(text ? text : "", text ? n : 0);
    if (got_kind != kind)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: this is DetectNet_v2's %s; %s was expected",
                              name ? name : "spec", kind_name(got_kind), kind_name(kind));
    static const deft_spec_resolve_fn fns[] = {r_exp, r_inf, r_cvt};
    enum deft_status s = deft_spec_parse_resolved(deft_dnv2_schema(kind), obj, text, n, name, fmt, ov, n_ov,
                                                  DEFT_DNV2_HELP_CMD, fns[kind], file_out, ignored_out, fmt_out);
    if (!s && **ignored_out)
        deft_log(DEFT_LOG_INFO, "%s: accepted but not used by deft: %s", *file_out, *ignored_out);
    return s;
}

static enum deft_status read_spec(const char *path, char **text, size_t *n) { return deft_spec_read_file(path, text, n); }

/* The resolved fields outside the schema. */
static void free_resolved(struct deft_dnv2_config *c) {
    for (int i = 0; c->class_names && i < c->n_classes; i++) deft_free(c->class_names[i]);
    deft_free(c->class_names);
    deft_free(c->raster_of);
    deft_free(c->postproc_of);
    c->class_names = NULL;
    c->raster_of = c->postproc_of = NULL;
    c->n_classes = 0;
}

void deft_dnv2_config_free(struct deft_dnv2_config *c) {
    if (!c) return;
    free_resolved(c);
    deft_spec_release(deft_dnv2_schema(DEFT_DNV2_SPEC_EXPERIMENT), c);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

enum deft_status deft_dnv2_config_parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                                        const char *const *ov, int n_ov, struct deft_dnv2_config *out) {
    memset(out, 0, sizeof *out);
    enum deft_status s = load_kind(DEFT_DNV2_SPEC_EXPERIMENT, out, text, n, name, fmt, ov, n_ov, &out->source_path,
                                   &out->ignored_fields, &out->format);
    if (s) deft_dnv2_config_free(out);
    return s;
}

enum deft_status deft_dnv2_config_load(const char *path, const char *const *ov, int n_ov,
                                       struct deft_dnv2_config *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t n = 0;
    enum deft_status s = read_spec(path, &text, &n);
    if (!s) s = deft_dnv2_config_parse(text, n, path, DEFT_SPEC_FORMAT_AUTO, ov, n_ov, out);
    if (!s) {
        struct deft_dnv2_dataset_config *d = &out->dataset_config;
        int k = 0, cap = 2 * d->n_data_sources + 3;
        char ***f = deft_calloc((size_t)cap, sizeof *f);
        const char **nm = deft_calloc((size_t)cap, sizeof *nm);
        s = f && nm ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        for (int i = 0; !s && i < d->n_data_sources; i++) {
            f[k] = &d->data_sources[i].tfrecords_path, nm[k++] = "tfrecords_path";
            f[k] = &d->data_sources[i].image_directory_path, nm[k++] = "image_directory_path";
        }
        if (!s && d->has_validation_data_source) {
            f[k] = &d->validation_data_source.image_directory_path, nm[k++] = "image_directory_path";
            f[k] = &d->validation_data_source.tfrecords_path, nm[k++] = "tfrecords_path";
        }
        if (!s) f[k] = &out->model_config.pretrained_model_file, nm[k++] = "pretrained_model_file";
        if (!s) s = deft_spec_resolve_paths((char **const *)f, nm, k, path, text);
        deft_free(f);
        deft_free(nm);
        if (s) deft_dnv2_config_free(out);
    }
    deft_free(text);
    return s;
}

void deft_dnv2_infer_config_free(struct deft_dnv2_infer_config *c) {
    if (!c) return;
    deft_free(c->handler_of);
    c->handler_of = NULL;
    deft_spec_release(deft_dnv2_schema(DEFT_DNV2_SPEC_INFERENCE), c);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

enum deft_status deft_dnv2_infer_config_parse(const char *text, size_t n, const char *name, enum deft_spec_format fmt,
                                              const char *const *ov, int n_ov, struct deft_dnv2_infer_config *out) {
    memset(out, 0, sizeof *out);
    enum deft_status s = load_kind(DEFT_DNV2_SPEC_INFERENCE, out, text, n, name, fmt, ov, n_ov, &out->source_path,
                                   &out->ignored_fields, &out->format);
    if (s) deft_dnv2_infer_config_free(out);
    return s;
}

enum deft_status deft_dnv2_infer_config_load(const char *path, const char *const *ov, int n_ov,
                                             struct deft_dnv2_infer_config *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t n = 0;
    enum deft_status s = read_spec(path, &text, &n);
    if (!s) s = deft_dnv2_infer_config_parse(text, n, path, DEFT_SPEC_FORMAT_AUTO, ov, n_ov, out);
    if (!s) {
        char **f[] = {&out->inferencer_config.tlt_config.model};
        const char *nm[] = {"tlt_config.model"};
        if ((s = deft_spec_resolve_paths(f, nm, 1, path, text))) deft_dnv2_infer_config_free(out);
    }
    deft_free(text);
    return s;
}

void deft_dnv2_convert_config_free(struct deft_dnv2_convert_config *c) {
    if (!c) return;
    deft_spec_release(deft_dnv2_schema(DEFT_DNV2_SPEC_CONVERT), c);
    deft_free(c->source_path);
    deft_free(c->ignored_fields);
    memset(c, 0, sizeof *c);
}

enum deft_status deft_dnv2_convert_config_parse(const char *text, size_t n, const char *name,
                                                enum deft_spec_format fmt, const char *const *ov, int n_ov,
                                                struct deft_dnv2_convert_config *out) {
    memset(out, 0, sizeof *out);
    enum deft_status s = load_kind(DEFT_DNV2_SPEC_CONVERT, out, text, n, name, fmt, ov, n_ov, &out->source_path,
                                   &out->ignored_fields, &out->format);
    if (s) deft_dnv2_convert_config_free(out);
    return s;
}

enum deft_status deft_dnv2_convert_config_load(const char *path, const char *const *ov, int n_ov,
                                               struct deft_dnv2_convert_config *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t n = 0;
    enum deft_status s = read_spec(path, &text, &n);
    if (!s) s = deft_dnv2_convert_config_parse(text, n, path, DEFT_SPEC_FORMAT_AUTO, ov, n_ov, out);
    if (!s) {
        char **f[] = {&out->kitti_config.root_directory_path, &out->image_directory_path};
        const char *nm[] = {"root_directory_path", "image_directory_path"};
        if ((s = deft_spec_resolve_paths(f, nm, 2, path, text))) deft_dnv2_convert_config_free(out);
    }
    deft_free(text);
    return s;
}

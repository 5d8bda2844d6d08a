/* cls_common.c - spec -> transform, metadata JSON, TAO learning-rate schedules. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "deft/io.h"
#include "tasks/classification/cls_common.h"

enum deft_status cls_mkdirs(const char *path) { return deft_mkdirs(path); }

/* The spec's preprocessing; input_image_size "1,H,W" makes it grey with the
 * mode's grey constants (deft_preprocess_set_gray), which caffe's image_mean
 * 'l' and custom_mean override. */
static void preprocess_from_config(const struct deft_cls_config *c, struct deft_preprocess *p) {
    const struct deft_cls_train_config *tc = &c->train_config;
    bool gray = c->model_config.input_channels == 1;
    switch (tc->preprocess_mode) {
    case DEFT_CLS_PREPROCESS_TORCH: deft_preprocess_init(p, DEFT_PREPROCESS_TORCH); break;
    case DEFT_CLS_PREPROCESS_TF: deft_preprocess_init(p, DEFT_PREPROCESS_TF); break;
    case DEFT_CLS_PREPROCESS_CUSTOM:
        deft_preprocess_init(p, DEFT_PREPROCESS_CUSTOM);
        p->bgr = false;
        p->divisor = 255.0f;
        for (int i = 0; i < 3; i++) {
            p->mean[i] = tc->n_custom_mean ? (float)tc->custom_mean[tc->n_custom_mean == 3 ? i : 0] : 0.0f;
            p->std[i] = tc->n_custom_std ? (float)tc->custom_std[tc->n_custom_std == 3 ? i : 0] : 1.0f;
        }
        break;
    default:
        deft_preprocess_init(p, DEFT_PREPROCESS_CAFFE);
        if (gray) deft_preprocess_set_gray(p);
        /* image_mean {r, g, b} overrides the ImageNet BGR mean (output order is BGR) */
        for (int i = 0; i < tc->n_image_mean; i++) {
            const char *k = tc->image_mean[i].key;
            float v = (float)tc->image_mean[i].value;
            if (!strcmp(k, "b")) p->mean[0] = v;
            else if (!strcmp(k, "g")) p->mean[1] = v;
            else if (!strcmp(k, "r")) p->mean[2] = v;
            else if (!strcmp(k, "l")) p->mean[0] = p->mean[1] = p->mean[2] = v;
        }
    }
    if (gray && p->channels != 1) deft_preprocess_set_gray(p); /* caffe did before its 'l' */
}

enum deft_status cls_transform_from_config(const struct deft_cls_config *c, bool train,
                                           struct deft_transform *t) {
    const struct deft_cls_model_config *m = &c->model_config;
    const struct deft_cls_train_config *tc = &c->train_config;
    deft_transform_defaults(t);
    t->out_w = m->input_width;
    t->out_h = m->input_height;
    preprocess_from_config(c, &t->pre);
    bool center = train ? tc->enable_center_crop : c->eval_config.enable_center_crop;
    t->resize = center ? DEFT_RESIZE_CENTER_CROP : DEFT_RESIZE_PLAIN;
    if (!train) return DEFT_OK;
    const struct deft_cls_augmentation *ag = &tc->augmentation;
    if (tc->enable_random_crop) {
        t->aug.crop = DEFT_CROP_RANDOM_RESIZED;
        t->aug.scale_min = (float)ag->scale_min;
        t->aug.scale_max = (float)ag->scale_max;
        t->aug.ratio_min = (float)ag->ratio_min;
        t->aug.ratio_max = (float)ag->ratio_max;
    }
    t->aug.hflip_prob = tc->disable_horizontal_flip ? 0.0f : (float)ag->hflip_prob;
    t->aug.vflip_prob = (float)ag->vflip_prob;
    if (ag->rotation_degrees > 0) {
        t->aug.rotate_prob = ag->rotate_prob > 0 ? (float)ag->rotate_prob : 1.0f;
        t->aug.rotate_deg = (float)ag->rotation_degrees;
    }
    if (tc->enable_color_augmentation) {
        t->aug.brightness = (float)ag->brightness;
        t->aug.contrast = (float)ag->contrast;
        t->aug.saturation = (float)ag->saturation;
        t->aug.hue = (float)ag->hue;
    }
    return DEFT_OK;
}

/* A grey model writes "channel_order": "gray", "channels": 1 and one mean and
 * std; files without "channels" (older models) take 3. */
char *cls_preprocess_to_json(const struct deft_transform *t) {
    char buf[512], ms[160];
    const struct deft_preprocess *p = &t->pre;
    bool gray = deft_preprocess_channels(p) == 1;
    if (gray)
        snprintf(ms, sizeof ms, "\"channels\": 1, \"mean\": [%.9g], \"std\": [%.9g]", p->mean[0], p->std[0]);
    else
        snprintf(ms, sizeof ms, "\"mean\": [%.9g, %.9g, %.9g], \"std\": [%.9g, %.9g, %.9g]", p->mean[0], p->mean[1],
                 p->mean[2], p->std[0], p->std[1], p->std[2]);
    snprintf(buf, sizeof buf,
             "{\"channel_order\": \"%s\", \"divisor\": %.9g, %s, \"height\": %d, \"width\": %d, "
             "\"resize\": \"%s\", \"crop_padding\": %d}",
             gray ? "gray" : p->bgr ? "bgr" : "rgb", p->divisor, ms, t->out_h, t->out_w,
             t->resize == DEFT_RESIZE_CENTER_CROP ? "center_crop" : "plain", t->crop_padding);
    return deft_strdup(buf);
}

static bool num_array(const cJSON *a, float *out, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return false;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v)) return false;
        out[i] = (float)v->valuedouble;
    }
    return true;
}

enum deft_status cls_transform_from_meta(const struct deft_graph *g, const char *model_path,
                                         struct deft_transform *t) {
    deft_transform_defaults(t);
    const char *js = deft_graph_get_meta(g, "preprocess");
    if (!js) return deft_set_error(DEFT_ERR_FORMAT, "%s: the model records no preprocessing (\"preprocess\" metadata)", model_path);
    cJSON *o = cJSON_Parse(js);
    enum deft_status s = DEFT_OK;
    const cJSON *co = cJSON_GetObjectItem(o, "channel_order"), *dv = cJSON_GetObjectItem(o, "divisor"),
                *h = cJSON_GetObjectItem(o, "height"), *w = cJSON_GetObjectItem(o, "width"),
                *rz = cJSON_GetObjectItem(o, "resize"), *cp = cJSON_GetObjectItem(o, "crop_padding");
    const cJSON *ch = cJSON_GetObjectItem(o, "channels");
    int nc = cJSON_IsNumber(ch) ? (int)ch->valuedouble : 3;
    t->pre.mode = DEFT_PREPROCESS_CUSTOM;
    if (!o || !cJSON_IsString(co) || !cJSON_IsNumber(dv) || !cJSON_IsNumber(h) || !cJSON_IsNumber(w) ||
        (nc != 1 && nc != 3) || !num_array(cJSON_GetObjectItem(o, "mean"), t->pre.mean, nc) ||
        !num_array(cJSON_GetObjectItem(o, "std"), t->pre.std, nc) || h->valuedouble < 1 || w->valuedouble < 1 ||
        h->valuedouble > 8192 || w->valuedouble > 8192 || dv->valuedouble <= 0) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: malformed \"preprocess\" metadata", model_path);
    } else {
        if (nc == 1) deft_preprocess_set_gray(&t->pre); /* custom: keeps mean[0], std[0] for every plane */
        t->pre.bgr = nc == 3 && !strcmp(co->valuestring, "bgr");
        t->pre.divisor = (float)dv->valuedouble;
        t->out_h = (int)h->valuedouble;
        t->out_w = (int)w->valuedouble;
        t->resize = cJSON_IsString(rz) && !strcmp(rz->valuestring, "center_crop") ? DEFT_RESIZE_CENTER_CROP
                                                                                  : DEFT_RESIZE_PLAIN;
        if (cJSON_IsNumber(cp) && cp->valuedouble >= 0 && cp->valuedouble < 4096) t->crop_padding = (int)cp->valuedouble;
    }
    cJSON_Delete(o);
    int in = s ? -1 : deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    const struct deft_value *iv = in >= 0 ? deft_graph_value(g, in) : NULL;
    if (iv && iv->shape.ndim == 4 && iv->shape.d[1] != nc)
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: the preprocessing metadata gives %d-channel images but the model "
                           "takes %lld channels", model_path, nc, (long long)iv->shape.d[1]);
    return s;
}

char *cls_class_names_to_json(char *const *names, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    char *txt = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    char *r = txt ? deft_strdup(txt) : NULL;
    cJSON_free(txt);
    return r;
}

enum deft_status cls_class_names_from_meta(const struct deft_graph *g, const char *model_path,
                                           char ***names, int *n) {
    *names = NULL;
    *n = 0;
    const char *js = deft_graph_get_meta(g, "class_names");
    cJSON *a = js ? cJSON_Parse(js) : NULL;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1) {
        cJSON_Delete(a);
        return deft_set_error(DEFT_ERR_FORMAT, "%s: the model records no class names (\"class_names\" metadata)",
                              model_path);
    }
    int cnt = cJSON_GetArraySize(a);
    char **out = deft_calloc((size_t)cnt, sizeof *out);
    enum deft_status s = out ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < cnt; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(v)) s = deft_set_error(DEFT_ERR_FORMAT, "%s: class name %d is not a string", model_path, i);
        else if (!(out[i] = deft_strdup(v->valuestring))) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(a);
    if (s) {
        deft_string_list_free(out, cnt);
        return s;
    }
    *names = out;
    *n = cnt;
    return DEFT_OK;
}

/* TAO makenet schedules, on the fraction p of the run done:
 *   step: lr * gamma^floor(epoch / step_size)
 *   soft_anneal: linear ramp 0 -> lr over soft_start, then lr / divider^k
 *     where k = number of annealing points passed
 *   cosine: linear ramp over soft_start, then cosine from lr to lr * min_lr_ratio
 *   linear: lr down to lr * min_lr_ratio
 *   constant: the optimizer's lr with Keras' decay, lr / (1 + decay * step)
 * warmup_epochs (deft) multiplies by a linear ramp over the first epochs. */
double cls_lr_at(const void *vctx, int64_t step) {
    const struct cls_lr_ctx *x = vctx;
    const struct deft_cls_lr_config *l = &x->cfg->train_config.lr_config;
    const struct deft_cls_optimizer_config *o = &x->cfg->train_config.optimizer;
    double p = x->total_steps > 0 ? (double)step / (double)x->total_steps : 0;
    double epoch = x->steps_per_epoch > 0 ? (double)step / (double)x->steps_per_epoch : 0, lr;
    switch (l->kind) {
    case DEFT_CLS_LR_STEP:
        lr = l->step.learning_rate * pow(l->step.gamma, floor(epoch / (l->step.step_size > 0 ? l->step.step_size : 1)));
        break;
    case DEFT_CLS_LR_SOFT_ANNEAL: {
        const struct deft_cls_lr_soft_anneal *s = &l->soft_anneal;
        if (p < s->soft_start) {
            lr = s->learning_rate * (p + 1.0 / (double)(x->total_steps + 1)) / s->soft_start;
        } else {
            int k = 0;
            for (int i = 0; i < s->n_annealing_points; i++) k += p >= s->annealing_points[i];
            lr = s->learning_rate / pow(s->annealing_divider > 0 ? s->annealing_divider : 10, k);
        }
        break;
    }
    case DEFT_CLS_LR_COSINE: {
        const struct deft_cls_lr_cosine *c = &l->cosine;
        if (p < c->soft_start) {
            lr = c->learning_rate * (p + 1.0 / (double)(x->total_steps + 1)) / c->soft_start;
        } else {
            double q = c->soft_start < 1 ? (p - c->soft_start) / (1 - c->soft_start) : 1;
            double lo = c->learning_rate * c->min_lr_ratio;
            lr = lo + (c->learning_rate - lo) * 0.5 * (1 + cos(M_PI * q));
        }
        break;
    }
    case DEFT_CLS_LR_LINEAR:
        lr = l->linear.learning_rate * (1 - p * (1 - l->linear.min_lr_ratio));
        break;
    default: {
        double base, decay;
        switch (o->kind) {
        case DEFT_CLS_OPTIM_ADAM: base = o->adam.lr; decay = o->adam.decay; break;
        case DEFT_CLS_OPTIM_RMSPROP: base = o->rmsprop.lr; decay = o->rmsprop.decay; break;
        case DEFT_CLS_OPTIM_ADAMW: base = o->adamw.lr; decay = 0; break;
        default: base = o->sgd.lr; decay = o->sgd.decay;
        }
        lr = base / (1 + decay * (double)step);
    }
    }
    double wu = l->warmup_epochs * (double)x->steps_per_epoch;
    if (wu > 0 && (double)step < wu) lr *= ((double)step + 1) / wu;
    return lr;
}

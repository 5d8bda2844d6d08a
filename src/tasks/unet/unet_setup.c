/* unet_setup.c - TAO's unet spec resolved into what the actions use: model
 * options, the label map, the loss, the loaders' options, the optimizer and
 * the learning-rate schedule (TAO's constant rate, or exponential / cosine
 * decay, after an optional linear warm-up). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/data.h"
#include "tasks/unet/unet_task.h"

static enum deft_status model_opts(struct unet_setup *u) {
    const struct deft_unet_model_config *m = &u->cfg.model_config;
    struct deft_unet_opts *o = &u->model;
    switch (m->arch_kind) {
    case DEFT_UNET_ARCH_RESNET: o->arch = "resnet"; break;
    case DEFT_UNET_ARCH_VANILLA: o->arch = "vanilla_unet"; break;
    case DEFT_UNET_ARCH_VANILLA_DYNAMIC: o->arch = "vanilla_unet_dynamic"; break;
    case DEFT_UNET_ARCH_VGG: o->arch = "vgg"; break;
    case DEFT_UNET_ARCH_EFFICIENTNET_B0: o->arch = "efficientnet_b0"; break;
    case DEFT_UNET_ARCH_SHUFFLENET: o->arch = "shufflenet"; break;
    default:
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: model_config.arch '%s' is not built by deft yet (resnet, vgg, "
                              "efficientnet_b0, shufflenet, vanilla_unet, vanilla_unet_dynamic are)", u->cfg.source_path, m->arch);
    }
    bool depth = m->arch_kind == DEFT_UNET_ARCH_RESNET || m->arch_kind == DEFT_UNET_ARCH_VGG;
    o->nlayers = depth ? m->num_layers : 0;
    bool sigmoid = m->activation_kind == DEFT_UNET_SIGMOID;
    o->num_classes = sigmoid ? 1 : u->n_classes;
    o->channels = m->model_input_channels ? m->model_input_channels : (u->cfg.dataset_config.grayscale ? 1 : 3);
    o->height = m->model_input_height;
    o->width = m->model_input_width;
    o->use_batch_norm = m->use_batch_norm;
    o->freeze_bn = m->freeze_bn;
    /* the classifier's block indices (deft_unet_build refuses one out of range) */
    int nf = m->n_freeze_blocks;
    if (nf > (int)(sizeof u->freeze_blocks / sizeof *u->freeze_blocks))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: model_config.freeze_blocks lists %d blocks (at most 32)",
                              u->cfg.source_path, nf);
    for (int i = 0; i < nf; i++) u->freeze_blocks[i] = (int)m->freeze_blocks[i];
    o->freeze_blocks = nf ? u->freeze_blocks : NULL;
    o->n_freeze_blocks = nf;
    return DEFT_OK;
}

static void labels(struct unet_setup *u) {
    const struct deft_unet_dataset_config *d = &u->cfg.dataset_config;
    deft_seg_label_map_init(&u->labels);
    for (int i = 0; i <= DEFT_UNET_MAX_LABEL_ID; i++) {
        int k = d->label_to_class[i];
        u->labels.class_of[i] = (int16_t)(k >= 0 ? k : k == DEFT_UNET_LABEL_IGNORE ? DEFT_SEG_IGNORE : -2);
    }
    u->labels.n_classes = u->n_classes;
    u->labels.binary = d->masks_binary;
}

/* TAO's resize_method as deft's image filter. BILINEAR keeps deft's antialiasing beyond a 2x
 * shrink (plain bilinear otherwise, as TensorFlow): a deliberate departure, it only removes aliasing. */
int unet_resample_filter(enum deft_unet_resize k) {
    return k == DEFT_UNET_RESIZE_NEAREST   ? DEFT_RESAMPLE_NEAREST
           : k == DEFT_UNET_RESIZE_BICUBIC ? DEFT_RESAMPLE_BICUBIC
           : k == DEFT_UNET_RESIZE_AREA    ? DEFT_RESAMPLE_AREA
                                           : DEFT_RESAMPLE_AUTO;
}

static void loaders(struct unet_setup *u) {
    const struct deft_unet_dataset_config *d = &u->cfg.dataset_config;
    const struct deft_unet_augmentation_config *ac = &d->augmentation_config;
    struct deft_seg_loader_opts base = {.batch = u->batch, .width = u->model.width, .height = u->model.height,
                                        .channels = u->model.channels, .labels = &u->labels, .seed = u->seed,
                                        .zero_one = !d->grayscale && d->preprocess_kind != DEFT_UNET_PRE_MINUS1_1,
                                        .filter = unet_resample_filter(d->resize_kind),
                                        .pad = d->resize_padding};
    u->val_lo = base;
    u->train_lo = base;
    u->train_lo.shuffle = true;
    u->train_lo.drop_last = true;
    if (d->augment) {
        u->train_lo.hflip = (float)ac->spatial_augmentation.hflip_probability;
        u->train_lo.vflip = (float)ac->spatial_augmentation.vflip_probability;
        u->train_lo.crop_and_resize = (float)ac->spatial_augmentation.crop_and_resize_prob;
        u->train_lo.crop_ratio = (float)ac->spatial_augmentation.crop_and_resize_ratio;
        u->train_lo.brightness = (float)ac->brightness_augmentation.delta;
    }
}

static void optimizer(struct unet_setup *u) {
    const struct deft_unet_training_config *t = &u->cfg.training_config;
    memset(&u->optim, 0, sizeof u->optim);
    u->optim.kind = DEFT_OPTIM_ADAM;
    u->optim.beta1 = t->optimizer.has_adam && t->optimizer.adam.beta1 > 0 ? (float)t->optimizer.adam.beta1 : 0.9f;
    u->optim.beta2 = t->optimizer.has_adam && t->optimizer.adam.beta2 > 0 ? (float)t->optimizer.adam.beta2 : 0.999f;
    u->optim.eps = t->optimizer.has_adam && t->optimizer.adam.epsilon > 0 ? (float)t->optimizer.adam.epsilon : 1e-7f;
    /* Keras kernel regularizers (not on BN or biases: the graph marks those no-decay):
     * L2 w*sum(k^2) -> gradient 2*w*k; L1 w*sum|k| -> w*sign(k) */
    if (t->regularizer.type == DEFT_UNET_REG_L2) u->optim.weight_decay = (float)(2 * t->regularizer.weight);
    if (t->regularizer.type == DEFT_UNET_REG_L1) u->optim.l1 = (float)t->regularizer.weight;
    u->lr = t->learning_rate;
    u->warmup_steps = t->warmup_steps;
    if (t->lr_kind == DEFT_UNET_LR_EXPONENTIAL) {
        u->lr_decay_rate = t->lr_scheduler.exponential_decay.decay_rate;
        u->lr_decay_steps = t->lr_scheduler.exponential_decay.decay_steps;
    }
    u->cosine = t->lr_kind == DEFT_UNET_LR_COSINE;
    u->lr_decay_steps = u->cosine ? t->lr_scheduler.cosine_decay.decay_steps : u->lr_decay_steps;
}

double unet_lr_at(const void *ctx, int64_t step) {
    const struct unet_setup *u = ctx;
    if (u->warmup_steps > 0 && step < u->warmup_steps) return u->lr * (double)(step + 1) / (double)u->warmup_steps;
    int64_t t = step - (u->warmup_steps > 0 ? u->warmup_steps : 0);
    if (u->lr_decay_rate > 0 && u->lr_decay_steps > 0) /* staircase, as TAO */
        return u->lr * pow(u->lr_decay_rate, (double)(t / u->lr_decay_steps));
    if (u->cosine && u->lr_decay_steps > 0) {
        double p = t >= u->lr_decay_steps ? 1.0 : (double)t / (double)u->lr_decay_steps;
        double alpha = u->cfg.training_config.lr_scheduler.cosine_decay.alpha;
        return u->lr * ((1 - alpha) * 0.5 * (1 + cos(M_PI * p)) + alpha);
    }
    return u->lr;
}

enum deft_status unet_setup_load(struct unet_setup *u, const struct deft_task_args *a) {
    memset(u, 0, sizeof *u);
    if (!a->spec) return deft_set_error(DEFT_ERR_INVALID_ARG, "give the experiment spec with -e SPEC");
    const char *sets[DEFT_TASK_MAX_SETS + 1];
    char seed[64];
    int n = 0;
    if (a->seed_set) { /* first, so an explicit --set of the same key wins */
        snprintf(seed, sizeof seed, "random_seed=%lld", a->seed);
        sets[n++] = seed;
    }
    for (int i = 0; i < a->n_overrides && n < DEFT_TASK_MAX_SETS + 1; i++) sets[n++] = a->overrides[i];
    enum deft_status s = deft_unet_config_load(a->spec, sets, n, &u->cfg);
    if (s) return s;
    u->cfg_loaded = true;
    const struct deft_unet_dataset_config *d = &u->cfg.dataset_config;
    const struct deft_unet_training_config *t = &u->cfg.training_config;
    u->n_classes = d->n_classes;
    if (u->n_classes < 1 || u->n_classes > 256)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %d classes", u->cfg.source_path, u->n_classes);
    for (int k = 0; k < u->n_classes; k++) {
        u->class_names[k] = d->classes[k].name;
        u->class_weights[k] = (float)d->classes[k].weight;
    }
    u->ignore_id = DEFT_SEG_IGNORE;
    u->batch = t->batch_size > 0 ? t->batch_size : 1;
    u->epochs = t->epochs > 0 ? t->epochs : 1;
    u->checkpoint_interval = t->checkpoint_interval > 0 ? t->checkpoint_interval : 1;
    u->seed = (uint64_t)u->cfg.random_seed;
    if ((s = model_opts(u))) return s;
    labels(u);
    loaders(u);
    optimizer(u);
    bool weighted = false;
    for (int k = 0; k < u->n_classes; k++) weighted |= u->class_weights[k] != 1.0f;
    u->loss = (struct deft_seg_loss_opts){
        .kind = t->loss_kind == DEFT_UNET_LOSS_DICE      ? DEFT_SEG_LOSS_DICE
                : t->loss_kind == DEFT_UNET_LOSS_CE_DICE ? DEFT_SEG_LOSS_CROSS_DICE_SUM
                                                         : DEFT_SEG_LOSS_CROSS_ENTROPY,
        .n_classes = u->n_classes, .class_weights = weighted ? u->class_weights : NULL, .ignore_id = DEFT_SEG_IGNORE,
        .sigmoid = u->model.num_classes == 1};
    u->train_images = d->train_images_path;
    u->train_masks = d->train_masks_path;
    u->val_images = d->val_images_path;
    u->val_masks = d->val_masks_path;
    u->test_images = d->test_images_path;
    const char *pre = u->cfg.model_config.pretrained_model_file;
    u->pretrained = pre && pre[0] ? pre : NULL;
    return DEFT_OK;
}

bool unet_has_split(const struct unet_setup *u, bool val) {
    const struct deft_unet_dataset_config *d = &u->cfg.dataset_config;
    const char *dir = val ? d->val_images_path : d->train_images_path;
    return (val ? d->val_data_sources : d->train_data_sources).n_data_source > 0 || (dir && dir[0]);
}

enum deft_status unet_open_split(const struct unet_setup *u, bool val, struct deft_seg_dataset *ds, const char **what) {
    const struct deft_unet_dataset_config *d = &u->cfg.dataset_config;
    const struct deft_unet_data_sources *src = val ? &d->val_data_sources : &d->train_data_sources;
    memset(ds, 0, sizeof *ds);
    *what = val ? d->val_images_path : d->train_images_path;
    if (src->n_data_source == 0) { /* the folders */
        enum deft_status s = deft_seg_dataset_open(*what, val ? d->val_masks_path : d->train_masks_path, ds);
        return s ? deft_wrap_error(s, "%s: %s_images_path", u->cfg.source_path, val ? "val" : "train") : DEFT_OK;
    }
    *what = src->data_source[0].image_path;
    for (int i = 0; i < src->n_data_source; i++) {
        const struct deft_unet_data_source *ls = &src->data_source[i];
        enum deft_status s = deft_seg_dataset_add_lists(ds, ls->image_path, ls->masks_path, d->filter_data);
        if (s) {
            deft_seg_dataset_free(ds);
            return deft_wrap_error(s, "%s: %s_data_sources", u->cfg.source_path, val ? "val" : "train");
        }
    }
    if (ds->n == 0) {
        deft_seg_dataset_free(ds);
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s: %s_data_sources list no usable image/mask pair",
                              u->cfg.source_path, val ? "val" : "train");
    }
    return DEFT_OK;
}

void unet_setup_free(struct unet_setup *u) {
    if (u->cfg_loaded) deft_unet_config_free(&u->cfg);
    memset(u, 0, sizeof *u);
}

char *unet_meta_json(const struct unet_setup *u) {
    cJSON *o = cJSON_CreateObject(), *names = cJSON_AddArrayToObject(o, "class_names");
    for (int k = 0; names && k < u->n_classes; k++) cJSON_AddItemToArray(names, cJSON_CreateString(u->class_names[k]));
    cJSON_AddNumberToObject(o, "channels", u->model.channels);
    cJSON_AddNumberToObject(o, "height", u->model.height);
    cJSON_AddNumberToObject(o, "width", u->model.width);
    cJSON_AddStringToObject(o, "activation", u->model.num_classes == 1 ? "sigmoid" : "softmax");
    cJSON_AddStringToObject(o, "input_scale", u->train_lo.zero_one ? "x/255" : "x/127.5-1");
    static const char *const filters[] = {"auto", "bilinear", "nearest", "bicubic", "area"};
    cJSON_AddStringToObject(o, "resize_method", filters[u->train_lo.filter]);
    cJSON_AddBoolToObject(o, "resize_padding", u->train_lo.pad);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = txt ? deft_strdup(txt) : NULL;
    cJSON_free(txt);
    return out;
}

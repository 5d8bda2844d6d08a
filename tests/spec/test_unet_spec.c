/* test_unet_spec.c - the UNet spec: TAO's ISBI sample spec (../shared, read
 * as it is) gives the values written in it; a deft YAML spec with the same
 * fields gives the same config; the class table follows TAO's train-id rule
 * (TAO's people-segmentation example, the fallback for an unnamed
 * mapping_class, the ignore id); --set overrides; print -> reload round
 * trip; every bad variant (typo with "did you mean", arch typo, bad depth,
 * image type against channels, sigmoid with 3 classes, unknown loss,
 * duplicate label_id, negative batch, bad resize_method, no
 * data_class_config, ...) has exit status 2 and a message naming
 * file:line:col and the field; summary and --help-spec name what they
 * should; no leaks; allocation failures are clean statuses. */
#include <string.h>
#include "deft_test.h"
#include "deft/unet_spec.h"
#include "spec/spec_impl.h"

#define N_OV(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char path_buf[512];
static const char *write_file(const char *name, const char *text) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path_buf, "wb");
    if (!f) return path_buf;
    fputs(text, f);
    fclose(f);
    return path_buf;
}

static char *to_string(void (*fn)(const struct deft_unet_config *, FILE *), const struct deft_unet_config *c,
                       bool skip_first_line) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    fn(c, f);
    fclose(f);
    char *nl = skip_first_line ? strchr(buf, '\n') : NULL;
    if (nl) memmove(buf, nl + 1, strlen(nl + 1) + 1);
    return buf;
}

static void expect_err(const char *what, enum deft_status got, const char *f1, const char *f2) {
    const char *m = deft_last_error();
    CHECK(got == DEFT_ERR_INVALID_ARG || got == DEFT_ERR_PARSE, "%s: status %s: %s", what, deft_status_str(got), m);
    CHECK(deft_status_exit_code(got) == 2, "%s: exit status %d (want 2)", what, deft_status_exit_code(got));
    CHECK(!f1 || strstr(m, f1), "%s: message has '%s': %s", what, f1, m);
    CHECK(!f2 || strstr(m, f2), "%s: message has '%s': %s", what, f2, m);
}

/* A small valid TAO-style spec that the error cases edit (TAO's
 * people-segmentation classes: two labels map onto each class). */
static const char *const base_txt =
    "random_seed: 7\n"                                                                  /* 1 */
    "model_config {\n"                                                                  /* 2 */
    "  arch: \"resnet\"\n"                                                              /* 3 */
    "  num_layers: 18\n"                                                                /* 4 */
    "  model_input_width: 256\n"                                                        /* 5 */
    "  model_input_height: 128\n"                                                       /* 6 */
    "  model_input_channels: 3\n"                                                       /* 7 */
    "  activation: \"softmax\"\n"                                                       /* 8 */
    "}\n"                                                                               /* 9 */
    "training_config {\n"                                                               /* 10 */
    "  batch_size: 4\n"                                                                 /* 11 */
    "  epochs: 3\n"                                                                     /* 12 */
    "  loss: \"cross_entropy\"\n"                                                       /* 13 */
    "  learning_rate: 0.001\n"                                                          /* 14 */
    "  optimizer { adam { epsilon: 1e-7 beta1: 0.8 beta2: 0.99 } }\n"                   /* 15 */
    "}\n"                                                                               /* 16 */
    "dataset_config {\n"                                                                /* 17 */
    "  input_image_type: \"color\"\n"                                                   /* 18 */
    "  resize_method: \"BILINEAR\"\n"                                                   /* 19 */
    "  train_images_path: \"img/train\"\n"                                              /* 20 */
    "  train_masks_path: \"msk/train\"\n"                                               /* 21 */
    "  data_class_config {\n"                                                           /* 22 */
    "    target_classes { name: \"person\" mapping_class: \"person\" label_id: 1 }\n"   /* 23 */
    "    target_classes { name: \"background\" mapping_class: \"background\" label_id: 0 }\n" /* 24 */
    "    target_classes { name: \"bag\" mapping_class: \"background\" label_id: 2 }\n"  /* 25 */
    "    target_classes { name: \"face\" mapping_class: \"person\" label_id: 3 }\n"     /* 26 */
    "  }\n"                                                                             /* 27 */
    "}\n";                                                                              /* 28 */

/* base_txt with lines first..last (1-based) replaced by `repl` (NULL: removed). */
static char *edit_lines(int first, int last, const char *repl) {
    size_t cap = strlen(base_txt) + (repl ? strlen(repl) : 0) + 4;
    char *out = malloc(cap), *o = out;
    const char *p = base_txt;
    for (int ln = 1; *p; ln++) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p + 1) : strlen(p);
        if (ln == first && repl) o += sprintf(o, "%s\n", repl);
        if (ln < first || ln > last) {
            memcpy(o, p, l);
            o += l;
        }
        p += l;
    }
    *o = 0;
    return out;
}

static enum deft_status load_edit(const char *name, int line, const char *repl) {
    char *t = edit_lines(line, line, repl);
    struct deft_unet_config c;
    enum deft_status s = deft_unet_config_load(write_file(name, t), NULL, 0, &c);
    if (!s) deft_unet_config_free(&c);
    free(t);
    return s;
}

/* Print, reload the printed YAML, print again: identical text = identical config. */
static void check_round_trip(const struct deft_unet_config *c, const char *what) {
    char *a = to_string(deft_unet_config_print, c, true);
    char name[64];
    snprintf(name, sizeof name, "rt_%s.yaml", what);
    struct deft_unet_config r;
    enum deft_status s = deft_unet_config_load(write_file(name, a), NULL, 0, &r);
    CHECK(s == DEFT_OK, "%s: printed config reloads: %s", what, deft_last_error());
    if (!s) {
        char *b = to_string(deft_unet_config_print, &r, true);
        CHECK(strcmp(a, b) == 0, "%s: round trip identical\n--- first\n%s--- second\n%s", what, a, b);
        const struct deft_unet_dataset_config *x = &c->dataset_config, *y = &r.dataset_config;
        bool same = r.format == DEFT_SPEC_FORMAT_YAML && x->n_classes == y->n_classes &&
                    memcmp(x->label_to_class, y->label_to_class, sizeof x->label_to_class) == 0 &&
                    r.model_config.arch_kind == c->model_config.arch_kind &&
                    r.training_config.loss_kind == c->training_config.loss_kind;
        for (int k = 0; same && k < x->n_classes; k++)
            same = strcmp(x->classes[k].name, y->classes[k].name) == 0 && x->classes[k].weight == y->classes[k].weight;
        CHECK(same, "%s: resolved fields survive", what);
        free(b);
        deft_unet_config_free(&r);
    }
    free(a);
}

/* ---- the real TAO spec ------------------------------------------------------------------- */

static void test_tao_spec(const char *shared) {
    char p[600];
    long live0 = deft_alloc_live();
    snprintf(p, sizeof p, "%s/tao_specs/unet_train_resnet_unet_isbi.txt", shared);
    struct deft_unet_config c;
    enum deft_status s = deft_unet_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "TAO ISBI spec loads: %s", deft_last_error());
    if (s) return;
    const struct deft_unet_model_config *m = &c.model_config;
    const struct deft_unet_training_config *t = &c.training_config;
    const struct deft_unet_dataset_config *d = &c.dataset_config;
    CHECK(c.format == DEFT_SPEC_FORMAT_PROTOTXT && c.random_seed == 42, "prototxt, seed 42");
    CHECK(m->arch_kind == DEFT_UNET_ARCH_RESNET && strcmp(m->arch, "resnet") == 0 && m->num_layers == 18,
          "resnet 18");
    CHECK(m->model_input_width == 320 && m->model_input_height == 320 && m->model_input_channels == 1, "320x320x1");
    CHECK(m->all_projections && !m->use_batch_norm && m->activation_kind == DEFT_UNET_SOFTMAX && !m->enable_qat,
          "all_projections, no batch norm, softmax");
    CHECK(m->training_precision.backend_floatx == DEFT_UNET_FLOAT32, "FLOAT32");
    CHECK(t->batch_size == 3 && t->epochs == 50 && t->log_summary_steps == 10 && t->checkpoint_interval == 1,
          "batch 3, 50 epochs, log 10, checkpoint 1");
    CHECK(t->loss_kind == DEFT_UNET_LOSS_CE && t->learning_rate == 0.0001 && t->lr_kind == DEFT_UNET_LR_CONSTANT,
          "cross entropy, lr 1e-4 constant");
    CHECK(t->regularizer.type == DEFT_UNET_REG_L2 && t->regularizer.weight == 2e-5, "L2 2e-5");
    CHECK(t->optimizer.has_adam && t->optimizer.adam.epsilon == 9.99999993923e-09 &&
              t->optimizer.adam.beta1 == 0.899999976158 && t->optimizer.adam.beta2 == 0.999000012875,
          "adam as written");
    CHECK(!d->augment && d->augmentation_config.spatial_augmentation.hflip_probability == 0.5 &&
              d->augmentation_config.spatial_augmentation.vflip_probability == 0.5 &&
              d->augmentation_config.spatial_augmentation.crop_and_resize_prob == 0.5 &&
              d->augmentation_config.brightness_augmentation.delta == 0.2,
          "augmentation values");
    CHECK(d->grayscale && d->masks_binary && d->resize_kind == DEFT_UNET_RESIZE_BILINEAR, "grayscale, binary masks");
    CHECK(strcmp(d->train_images_path, "/workspace/tao-experiments/data/isbi/images/train") == 0 &&
              strcmp(d->val_masks_path, "/workspace/tao-experiments/data/isbi/masks/val") == 0 &&
              strcmp(d->test_images_path, "/workspace/tao-experiments/data/isbi/images/test") == 0,
          "paths as written");
    CHECK(d->n_classes == 2 && strcmp(d->classes[0].name, "foreground") == 0 && d->classes[0].label_id == 0 &&
              strcmp(d->classes[1].name, "background") == 0 && d->classes[0].weight == 1,
          "classes foreground (0), background (1)");
    CHECK(d->label_to_class[0] == 0 && d->label_to_class[1] == 1 && d->label_to_class[2] == DEFT_UNET_LABEL_UNKNOWN,
          "label table");
    CHECK(strstr(c.ignored_fields, "dataset_config.dataset") && strstr(c.ignored_fields, "model_config.training_precision"),
          "unused TAO fields noted: %s", c.ignored_fields);
    char *sum = to_string(deft_unet_config_summary, &c, false);
    CHECK(strstr(sum, "arch resnet, num_layers 18") && strstr(sum, "320 x 320 x 1") && strstr(sum, "grayscale") &&
              strstr(sum, "2: 0 foreground (label_id 0, weight 1), 1 background") && strstr(sum, "batch 3, 50 epochs") &&
              strstr(sum, "adam") && strstr(sum, "L2 regularizer 2e-05") && strstr(sum, "cross_entropy") &&
              strstr(sum, "0.0001 (constant)") && strstr(sum, "isbi/images/train") && strstr(sum, "0/255"),
          "summary shows network, input, classes, batch, optimizer, LR, data:\n%s", sum);
    free(sum);
    /* the sample's /workspace folders are not here: training stops naming the field and line */
    s = deft_unet_config_validate_paths(&c, true);
    CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "unet_train_resnet_unet_isbi.txt:49") &&
              strstr(deft_last_error(), "dataset_config.train_images_path"),
          "missing train folder: %s", deft_last_error());
    CHECK(deft_unet_config_validate_paths(&c, false) == DEFT_ERR_NOT_FOUND, "dry run: warnings, still NOT_FOUND");
    check_round_trip(&c, "isbi");
    deft_unet_config_free(&c);

    /* the data pointed elsewhere with --set */
    const char *ov[] = {"dataset_config.train_images_path=/data/isbi/img", "training_config.epochs=2",
                        "dataset_config.augment=true"};
    s = deft_unet_config_load(p, ov, 3, &c);
    CHECK(s == DEFT_OK, "ISBI + --set: %s", deft_last_error());
    if (!s) {
        CHECK(strcmp(c.dataset_config.train_images_path, "/data/isbi/img") == 0 && c.training_config.epochs == 2 &&
                  c.dataset_config.augment,
              "--set applied");
        deft_unet_config_free(&c);
    }
    CHECK(deft_alloc_live() == live0, "TAO spec: no leak (%ld)", deft_alloc_live() - live0);
}

/* ---- YAML equals prototxt; the class rule ------------------------------------------------- */

static const char *const base_yaml =
    "random_seed: 7\n"
    "model_config:\n"
    "  arch: resnet\n"
    "  num_layers: 18\n"
    "  model_input_width: 256\n"
    "  model_input_height: 128\n"
    "  model_input_channels: 3\n"
    "  activation: softmax\n"
    "training_config:\n"
    "  batch_size: 4\n"
    "  epochs: 3\n"
    "  loss: cross_entropy\n"
    "  learning_rate: 0.001\n"
    "  optimizer:\n"
    "    adam: {epsilon: 1e-7, beta1: 0.8, beta2: 0.99}\n"
    "dataset_config:\n"
    "  input_image_type: color\n"
    "  resize_method: BILINEAR\n"
    "  train_images_path: img/train\n"
    "  train_masks_path: msk/train\n"
    "  data_class_config:\n"
    "    target_classes:\n"
    "      - {name: person, mapping_class: person, label_id: 1}\n"
    "      - {name: background, mapping_class: background, label_id: 0}\n"
    "      - {name: bag, mapping_class: background, label_id: 2}\n"
    "      - {name: face, mapping_class: person, label_id: 3}\n";

static void test_yaml_equivalent(void) {
    long live0 = deft_alloc_live();
    struct deft_unet_config a, b;
    enum deft_status s1 = deft_unet_config_load(write_file("base.txt", base_txt), NULL, 0, &a);
    CHECK(s1 == DEFT_OK, "base.txt loads: %s", deft_last_error());
    enum deft_status s2 = deft_unet_config_load(write_file("base.yaml", base_yaml), NULL, 0, &b);
    CHECK(s2 == DEFT_OK, "base.yaml loads: %s", deft_last_error());
    if (!s1 && !s2) {
        char *pa = to_string(deft_unet_config_print, &a, true), *pb = to_string(deft_unet_config_print, &b, true);
        CHECK(strcmp(pa, pb) == 0, "YAML and protobuf text give the same config\n--- txt\n%s--- yaml\n%s", pa, pb);
        free(pa);
        free(pb);
        CHECK(a.format == DEFT_SPEC_FORMAT_PROTOTXT && b.format == DEFT_SPEC_FORMAT_YAML, "flavours");
        /* TAO: person (1), background (0), bag -> background, face -> person: train ids by label id */
        const struct deft_unet_dataset_config *d = &b.dataset_config;
        CHECK(d->n_classes == 2 && strcmp(d->classes[0].name, "background") == 0 &&
                  strcmp(d->classes[1].name, "person") == 0,
              "classes ranked by the label id of their own entry: background, person");
        CHECK(d->label_to_class[0] == 0 && d->label_to_class[2] == 0 && d->label_to_class[1] == 1 &&
                  d->label_to_class[3] == 1 && d->label_to_class[4] == DEFT_UNET_LABEL_UNKNOWN &&
                  d->label_to_class[255] == DEFT_UNET_LABEL_UNKNOWN,
              "label table 0,2 -> background; 1,3 -> person; others unknown");
        CHECK(!d->grayscale && !d->masks_binary && b.model_config.model_input_channels == 3, "color, id masks");
        /* defaults where the spec is silent */
        const struct deft_unet_training_config *t = &b.training_config;
        CHECK(t->log_summary_steps == 1 && t->checkpoint_interval == 1 && t->regularizer.type == DEFT_UNET_REG_NONE &&
                  t->warmup_steps == 0 && b.model_config.initializer == DEFT_UNET_GLOROT_UNIFORM &&
                  d->data_class_config.ignore_label_id == -1 && d->augmentation_config.brightness_augmentation.delta == 0.2 &&
                  d->preprocess_kind == DEFT_UNET_PRE_MINUS1_1 && !d->augment,
              "defaults");
        check_round_trip(&b, "yaml");
    }
    if (!s1) deft_unet_config_free(&a);
    if (!s2) deft_unet_config_free(&b);
    CHECK(deft_alloc_live() == live0, "YAML: no leak");
}

/* A mapping_class no entry is named (TAO: KeyError) ranks by its smallest
 * label id; the ignore id leaves its entry out; weights follow the entry
 * that defines the class. */
static void test_class_rule(void) {
    long live0 = deft_alloc_live();
    const char *y =
        "model_config: {arch: vgg, num_layers: 16, model_input_width: 480, model_input_height: 352}\n"
        "training_config: {batch_size: 2, epochs: 1, loss: cross_dice_sum,\n"
        "                  lr_scheduler: {exponential_decay: {decay_rate: 0.5, decay_steps: 100}}}\n"
        "dataset_config:\n"
        "  train_data_sources:\n"
        "    data_source: [{image_path: train_img.txt, masks_path: train_msk.txt}]\n"
        "  data_class_config:\n"
        "    ignore_label_id: 11\n"
        "    target_classes:\n"
        "      - {name: car, mapping_class: vehicle, label_id: 7}\n"
        "      - {name: truck, mapping_class: vehicle, label_id: 4, class_weight: 2.5}\n"
        "      - {name: road, mapping_class: road, label_id: 6, class_weight: 0.5}\n"
        "      - {name: Unlabelled, mapping_class: Unlabelled, label_id: 11}\n";
    struct deft_unet_config c;
    enum deft_status s = deft_unet_config_load(write_file("camvid.yaml", y), NULL, 0, &c);
    CHECK(s == DEFT_OK, "class rule spec loads: %s", deft_last_error());
    if (!s) {
        const struct deft_unet_dataset_config *d = &c.dataset_config;
        CHECK(d->n_classes == 2 && strcmp(d->classes[0].name, "vehicle") == 0 && d->classes[0].label_id == 4 &&
                  d->classes[0].weight == 2.5 && strcmp(d->classes[1].name, "road") == 0 && d->classes[1].weight == 0.5,
              "vehicle (smallest id 4, weight 2.5), road (0.5); Unlabelled is no class");
        CHECK(d->label_to_class[7] == 0 && d->label_to_class[4] == 0 && d->label_to_class[6] == 1 &&
                  d->label_to_class[11] == DEFT_UNET_LABEL_IGNORE && d->label_to_class[0] == DEFT_UNET_LABEL_UNKNOWN,
              "table with the ignore id");
        CHECK(c.training_config.loss_kind == DEFT_UNET_LOSS_CE_DICE && c.training_config.lr_kind == DEFT_UNET_LR_EXPONENTIAL,
              "cross_dice_sum, exponential decay");
        CHECK(c.model_config.arch_kind == DEFT_UNET_ARCH_VGG && d->train_data_sources.n_data_source == 1 &&
                  strcmp(d->train_data_sources.data_source[0].masks_path, "train_msk.txt") == 0,
              "vgg, list-file source");
        char *sum = to_string(deft_unet_config_summary, &c, false);
        CHECK(strstr(sum, "11 -> ignored") && strstr(sum, "image list train_img.txt") && strstr(sum, "times 0.5 every 100"),
              "summary: ignore id, list files, schedule:\n%s", sum);
        free(sum);
        s = deft_unet_config_validate_paths(&c, true);
        CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "train_data_sources.data_source.image_path"),
              "missing list file named: %s", deft_last_error());
        check_round_trip(&c, "camvid");
        deft_unet_config_free(&c);
    }
    CHECK(deft_alloc_live() == live0, "class rule: no leak");
}

/* ---- --set ------------------------------------------------------------------------------------- */

static void test_overrides(void) {
    long live0 = deft_alloc_live();
    char p[512]; /* write_file's buffer is reused by the round trip */
    snprintf(p, sizeof p, "%s", write_file("ov.txt", base_txt));
    const char *ov[] = {"training_config.epochs=12",
                        "model_config.arch=vgg",
                        "model_config.num_layers=19",
                        "dataset_config.data_class_config.target_classes.4.name=sky",
                        "dataset_config.data_class_config.target_classes.4.mapping_class=sky",
                        "dataset_config.data_class_config.target_classes.4.label_id=9",
                        "dataset_config.data_class_config.target_classes.0.class_weight=3",
                        "training_config.lr_scheduler.cosine_decay.decay_steps=500",
                        "model_config.freeze_blocks=[0, 1]",
                        "dataset_config.resize_method=nearest_neighbor"};
    struct deft_unet_config c;
    enum deft_status s = deft_unet_config_load(p, ov, N_OV(ov), &c);
    CHECK(s == DEFT_OK, "overrides apply: %s", deft_last_error());
    if (!s) {
        const struct deft_unet_dataset_config *d = &c.dataset_config;
        CHECK(c.training_config.epochs == 12 && c.model_config.arch_kind == DEFT_UNET_ARCH_VGG &&
                  c.model_config.num_layers == 19,
              "epochs 12, vgg 19");
        CHECK(d->n_classes == 3 && strcmp(d->classes[2].name, "sky") == 0 && d->label_to_class[9] == 2 &&
                  d->classes[1].weight == 3,
              "class appended (sky, id 9), person weight 3");
        CHECK(c.training_config.lr_kind == DEFT_UNET_LR_COSINE && c.training_config.lr_scheduler.cosine_decay.decay_steps == 500,
              "cosine schedule");
        CHECK(c.model_config.n_freeze_blocks == 2 && d->resize_kind == DEFT_UNET_RESIZE_NEAREST, "freeze_blocks, resize");
        check_round_trip(&c, "overrides");
        deft_unet_config_free(&c);
    }
    const char *bad1[] = {"model_config.num_layer=18"};
    s = deft_unet_config_load(p, bad1, 1, &c);
    expect_err("--set typo", s, "--set 'model_config.num_layer=18'", "did you mean 'num_layers'?");
    const char *bad2[] = {"model_config.num_layers=17"};
    s = deft_unet_config_load(p, bad2, 1, &c);
    expect_err("--set bad depth", s, "--set 'model_config.num_layers=17'", "10, 18, 34, 50, 101");
    const char *bad3[] = {"model_config.activation=sigmoid", "dataset_config.data_class_config.target_classes.4.name=x",
                          "dataset_config.data_class_config.target_classes.4.mapping_class=x",
                          "dataset_config.data_class_config.target_classes.4.label_id=5"};
    s = deft_unet_config_load(p, bad3, 4, &c);
    expect_err("--set sigmoid, 3 classes", s, "--set 'model_config.activation=sigmoid'", "binary");
    CHECK(deft_alloc_live() == live0, "overrides: no leak");
}

/* ---- errors ------------------------------------------------------------------------------------ */

static void test_errors(void) {
    long live0 = deft_alloc_live();
    enum deft_status s;
    CHECK(load_edit("ok.txt", 0, NULL) == DEFT_OK, "base spec is valid: %s", deft_last_error());
    struct deft_unet_config c;
    char *t;

    s = load_edit("typo.txt", 4, "  num_layer: 18");
    expect_err("unknown field", s, "typo.txt:4:3:", "did you mean 'num_layers'?");
    s = load_edit("arch.txt", 3, "  arch: \"resnt\"");
    expect_err("arch typo", s, "arch.txt:3:9:", "model_config.arch 'resnt' is not a UNet backbone");
    CHECK(strstr(deft_last_error(), "did you mean 'resnet'?") != NULL, "arch suggestion: %s", deft_last_error());
    s = load_edit("depth.txt", 4, "  num_layers: 20");
    expect_err("bad num_layers", s, "depth.txt:4:15:", "model_config.num_layers 20 is not a depth of 'resnet'");
    s = load_edit("vggdepth.txt", 3, "  arch: \"vgg\"");
    expect_err("vgg 18", s, "vggdepth.txt:4:", "use one of 16, 19");
    t = edit_lines(3, 4, "  arch: \"vgg\"");
    s = deft_unet_config_load(write_file("vggdef.txt", t), NULL, 0, &c);
    expect_err("vgg with the default depth 18", s, "vggdef.txt:3:9:", "num_layers 18 is not a depth of 'vgg'");
    free(t);
    /* the vgg, efficientnet_b0 and shufflenet UNets reach /32: 240 (a multiple of 16) is refused */
    t = edit_lines(3, 5, "  arch: \"efficientnet_b0\"\n  num_layers: 0\n  model_input_width: 240");
    s = deft_unet_config_load(write_file("eff32.txt", t), NULL, 0, &c);
    expect_err("efficientnet_b0 240 wide", s, "eff32.txt:5:", "multiple of 32 (the encoder's stride): use 224 or 256");
    free(t);
    t = edit_lines(3, 5, "  arch: \"shufflenet\"\n  num_layers: 0\n  model_input_width: 240");
    s = deft_unet_config_load(write_file("shuf32.txt", t), NULL, 0, &c);
    expect_err("shufflenet 240 wide", s, "shuf32.txt:5:", "multiple of 32 (the encoder's stride): use 224 or 256");
    free(t);
    s = load_edit("imgtype.txt", 18, "  input_image_type: \"grayscale\"");
    expect_err("image type vs channels", s, "imgtype.txt:18:21:", "model_input_channels is 3");
    CHECK(strstr(deft_last_error(), "input_image_type") != NULL, "names input_image_type");
    s = load_edit("chan.txt", 7, "  model_input_channels: 2");
    expect_err("2 channels", s, "chan.txt:7:", "model_input_channels must be 1");
    t = edit_lines(8, 8, "  activation: \"sigmoid\"");
    char *t2 = strstr(t, "name: \"face\" mapping_class: \"person\"");
    const char *third = "name: \"face\" mapping_class: \"faces\" "; /* a third class, same length */
    memcpy(t2, third, strlen(third));
    s = deft_unet_config_load(write_file("sigmoid.txt", t), NULL, 0, &c);
    expect_err("sigmoid with 3 classes", s, "sigmoid.txt:8:15:", "model_config.activation sigmoid");
    CHECK(strstr(deft_last_error(), "gives 3") != NULL, "says 3 classes: %s", deft_last_error());
    free(t);
    s = load_edit("loss.txt", 13, "  loss: \"focal\"");
    expect_err("unknown loss", s, "loss.txt:13:9:", "training_config.loss 'focal' is not a UNet loss (one of: "
               "cross_entropy, dice, cross_dice_sum)");
    s = load_edit("dup.txt", 25, "    target_classes { name: \"bag\" mapping_class: \"background\" label_id: 1 }");
    expect_err("duplicate label_id", s, "dup.txt:25:", "label_id 1 is also the label_id of 'person'");
    s = load_edit("neg.txt", 11, "  batch_size: -2");
    expect_err("negative batch", s, "neg.txt:11:15:", "batch_size");
    CHECK(strstr(deft_last_error(), "out of range") != NULL, "range: %s", deft_last_error());
    s = load_edit("resize.txt", 19, "  resize_method: \"BILNEAR\"");
    expect_err("bad resize_method", s, "resize.txt:19:18:", "dataset_config.resize_method 'BILNEAR'");
    CHECK(strstr(deft_last_error(), "did you mean 'BILINEAR'?") != NULL, "resize suggestion: %s", deft_last_error());
    s = load_edit("resize2.txt", 19, "  resize_method: \"bicubc\"");
    expect_err("resize_method typo, lower case", s, "resize2.txt:19:18:", "did you mean 'BICUBIC'?");
    CHECK(load_edit("resize3.txt", 19, "  resize_method: \"area\"") == DEFT_OK, "resize_method in any case (TAO "
          "upper-cases it): %s", deft_last_error());
    t = edit_lines(22, 27, NULL);
    s = deft_unet_config_load(write_file("nodcc.txt", t), NULL, 0, &c);
    expect_err("missing data_class_config", s, "nodcc.txt:17:", "dataset_config needs data_class_config");
    free(t);
    t = edit_lines(22, 27, NULL);
    char *t3 = malloc(strlen(t) + 200);
    sprintf(t3, "%sdata_class_config { target_classes { name: \"a\" mapping_class: \"a\" label_id: 0 } }\n", t);
    s = deft_unet_config_load(write_file("topdcc.txt", t3), NULL, 0, &c);
    expect_err("top-level data_class_config", s, "topdcc.txt:17:", "move it into dataset_config");
    free(t);
    free(t3);
    s = load_edit("range.txt", 26, "    target_classes { name: \"face\" mapping_class: \"person\" label_id: 300 }");
    expect_err("label_id > 255", s, "range.txt:26:", "label_id");
    s = load_edit("empty.txt", 26, "    target_classes { name: \"\" mapping_class: \"person\" label_id: 3 }");
    expect_err("empty name", s, "empty.txt:26:", "name is empty");
    s = load_edit("names.txt", 26, "    target_classes { name: \"bag\" mapping_class: \"person\" label_id: 3 }");
    expect_err("same name, two classes", s, "names.txt:26:", "given twice");
    s = load_edit("one.txt", 24, "    target_classes { name: \"background\" mapping_class: \"person\" label_id: 0 }");
    CHECK(s == DEFT_OK, "background mapped to person, bag to background (ranked by bag's id): %s", deft_last_error());
    s = load_edit("w16.txt", 5, "  model_input_width: 250");
    expect_err("width not multiple of 16", s, "w16.txt:5:", "multiple of 16");
    s = load_edit("sched.txt", 14, "  learning_rate: 0.001 lr_scheduler { cosine_decay { alpha: 0.1 } }");
    expect_err("cosine without decay_steps", s, "sched.txt:14:", "decay_steps");
    s = load_edit("sched2.txt", 14, "  lr_scheduler { cosine_decay { decay_steps: 5 } exponential_decay { decay_rate: 0.5 "
                  "decay_steps: 5 } }");
    expect_err("two schedules", s, "sched2.txt:14:", "alternatives");
    s = load_edit("src.txt", 21, "  train_data_sources { data_source { image_path: \"a.txt\" } }");
    expect_err("list source without masks", s, "src.txt:", "masks_path");
    s = load_edit("masks.txt", 21, NULL);
    expect_err("images without masks", s, "masks.txt:20:", "train_masks_path");
    s = load_edit("act.txt", 8, "  activation: \"softmx\"");
    expect_err("bad activation", s, "act.txt:8:", "did you mean 'softmax'?");
    s = load_edit("type.txt", 11, "  batch_size: four");
    expect_err("wrong type", s, "type.txt:11:15:", "expected an integer");
    s = load_edit("syntax.txt", 12, "  epochs: 3 }}");
    expect_err("syntax error", s, "syntax.txt:12:", NULL);
    CHECK(s == DEFT_ERR_PARSE, "syntax error is a parse error");

    static const unsigned char garbage[] = {0x7f, 'E', 'L', 'F', 0x02, 0x00, 0xff, '{'};
    s = deft_unet_config_parse((const char *)garbage, sizeof garbage, "garbage.txt", DEFT_SPEC_FORMAT_AUTO, NULL, 0, &c);
    expect_err("garbage", s, "garbage.txt:1:", NULL);
    s = deft_unet_config_load(write_file("bad.yaml", "model_config:\n  arch: [resnet\n"), NULL, 0, &c);
    expect_err("bad YAML", s, "bad.yaml:", NULL);
    s = deft_unet_config_load("/nonexistent/spec.txt", NULL, 0, &c);
    CHECK(s == DEFT_ERR_NOT_FOUND && deft_status_exit_code(s) == 2, "missing spec file: NOT_FOUND, exit 2");
    CHECK(deft_alloc_live() == live0, "errors: no leak (%ld)", deft_alloc_live() - live0);
}

static void test_help(void) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    deft_unet_config_help(f);
    fclose(f);
    CHECK(strstr(buf, "model_config.arch") && strstr(buf, "model_config.model_input_channels") &&
              strstr(buf, "training_config.lr_scheduler.cosine_decay.decay_steps") &&
              strstr(buf, "training_config.optimizer.adam.beta1") &&
              strstr(buf, "dataset_config.data_class_config.target_classes[].mapping_class") &&
              strstr(buf, "dataset_config.train_data_sources.data_source[].masks_path") &&
              strstr(buf, "dataset_config.augmentation_config.spatial_augmentation.crop_and_resize_ratio") &&
              strstr(buf, "NO_REG, L1, L2"),
          "help lists every block:\n%s", buf);
    CHECK(strstr(buf, "(deft extension)") && strstr(buf, "not used by deft yet") && strstr(buf, "ignore_label_id"),
          "help tags");
    free(buf);
}

static void fail_loop(const char *what, const char *path, const char *const *ov, int nov) {
    long live0 = deft_alloc_live();
    int k;
    bool clean = true;
    for (k = 1; k < 100000; k++) {
        struct deft_unet_config c;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_unet_config_load(path, ov, nov, &c);
        deft_alloc_fail_after(0);
        if (s == DEFT_OK) {
            deft_unet_config_free(&c);
            break;
        }
        if (s != DEFT_ERR_NOMEM || deft_alloc_live() != live0) {
            clean = false;
            printf("  %s: fail at %d gave %s (%ld live): %s\n", what, k, deft_status_str(s), deft_alloc_live() - live0,
                   deft_last_error());
            break;
        }
    }
    CHECK(clean && k > 10 && k < 100000, "%s: %d allocation failures, all clean", what, k - 1);
}

int main(void) {
    deft_log_set_level(DEFT_LOG_ERROR);
    const char *shared = test_shared_dir();
    if (shared) test_tao_spec(shared);
    else test_skip_part("../shared not found: the TAO ISBI sample spec is not checked");
    test_yaml_equivalent();
    test_class_rule();
    test_overrides();
    test_errors();
    test_help();
    const char *ov[] = {"training_config.epochs=5", "dataset_config.data_class_config.target_classes.4.name=x",
                        "dataset_config.data_class_config.target_classes.4.mapping_class=x",
                        "dataset_config.data_class_config.target_classes.4.label_id=9"};
    fail_loop("yaml + overrides", write_file("fail.yaml", base_yaml), ov, 4);
    if (shared) {
        char p[600];
        snprintf(p, sizeof p, "%s/tao_specs/unet_train_resnet_unet_isbi.txt", shared);
        fail_loop("TAO unet", p, NULL, 0);
    }
    return test_summary();
}

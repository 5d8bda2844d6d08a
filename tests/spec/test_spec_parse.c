/* test_spec_parse.c - spec files: the real TAO classification specs (TF1
 * protobuf text and PyTorch YAML, from ../shared when present) map to the
 * right values; deft's native YAML; bad specs (unknown key with suggestion,
 * wrong type, out of range, missing field, duplicate key, unterminated block,
 * garbage, deep nesting, bad --set) give the right status and file:line;
 * --set overrides; print -> reparse round trip; no leaks; every allocation
 * failure of a parse is a clean status; random corruption never crashes. */
#include <string.h>
#include <stdint.h>
#include "deft_test.h"
#include "deft/spec.h"
#include "spec/spec_impl.h"

static char path_buf[4][512];
static const char *tmp_path(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", test_tmpdir(), name);
    return path_buf[slot];
}

static const char *write_file(const char *name, const char *text) {
    const char *p = tmp_path(0, name);
    FILE *f = fopen(p, "wb");
    if (!f) return p;
    fputs(text, f);
    fclose(f);
    return p;
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

/* Print cfg to a string (without the first comment line). */
static char *print_str(const struct deft_cls_config *c) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    deft_cls_config_print(c, f);
    fclose(f);
    char *nl = strchr(buf, '\n');
    if (nl) memmove(buf, nl + 1, strlen(nl + 1) + 1);
    return buf;
}

/* Print, reload the printed YAML, print again: identical text means identical config. */
static void check_round_trip(const struct deft_cls_config *c, const char *what) {
    char *a = print_str(c);
    char name[64];
    snprintf(name, sizeof name, "rt_%s.yaml", what);
    const char *p = write_file(name, a);
    struct deft_cls_config r;
    enum deft_status s = deft_cls_config_load(p, NULL, 0, &r);
    CHECK(s == DEFT_OK, "%s: printed config reloads: %s", what, deft_last_error());
    if (s == DEFT_OK) {
        char *b = print_str(&r);
        CHECK(strcmp(a, b) == 0, "%s: round trip identical\n--- first\n%s--- second\n%s", what, a, b);
        CHECK(r.format == DEFT_SPEC_FORMAT_YAML, "%s: printed flavour is native YAML", what);
        CHECK(r.train_config.optimizer.kind == c->train_config.optimizer.kind &&
                  r.train_config.lr_config.kind == c->train_config.lr_config.kind &&
                  r.model_config.input_width == c->model_config.input_width,
              "%s: resolved fields survive", what);
        free(b);
        deft_cls_config_free(&r);
    }
    free(a);
}

/* Expect status `want` and every fragment in the message. */
static void expect_err_cfg(const char *what, enum deft_status got, enum deft_status want, const char *f1,
                           const char *f2) {
    const char *m = deft_last_error();
    CHECK(got == want, "%s: status %s (want %s): %s", what, deft_status_str(got), deft_status_str(want), m);
    CHECK(!f1 || strstr(m, f1), "%s: message has '%s': %s", what, f1, m);
    CHECK(!f2 || strstr(m, f2), "%s: message has '%s': %s", what, f2, m);
}

static enum deft_status load_text(const char *name, const char *text, const char *const *ov, int nov) {
    struct deft_cls_config c;
    const char *p = write_file(name, text);
    enum deft_status s = deft_cls_config_load(p, ov, nov, &c);
    deft_cls_config_free(&c);
    return s;
}

/* ---- the real TAO specs ------------------------------------------------------ */

static void test_tao_tf1(const char *shared) {
    char p[600];
    snprintf(p, sizeof p, "%s/tao_specs/classification_tf1_train_resnet18_voc.txt", shared);
    struct deft_cls_config c;
    long live0 = deft_alloc_live();
    enum deft_status s = deft_cls_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "TF1 train spec loads: %s", deft_last_error());
    if (s) return;
    const struct deft_cls_model_config *m = &c.model_config;
    const struct deft_cls_train_config *t = &c.train_config;
    CHECK(c.format == DEFT_SPEC_FORMAT_PROTOTXT, "flavour prototxt");
    CHECK(strcmp(m->arch, "resnet") == 0 && m->n_layers == 18, "arch resnet 18");
    CHECK(m->use_batch_norm && m->all_projections && !m->use_pooling, "bn, projections");
    CHECK(m->n_freeze_blocks == 2 && m->freeze_blocks[0] == 0 && m->freeze_blocks[1] == 1, "freeze_blocks [0,1]");
    CHECK(m->input_channels == 3 && m->input_height == 224 && m->input_width == 224, "input 3x224x224");
    CHECK(strcmp(t->train_dataset_path, "/workspace/tao-experiments/data/split/train") == 0, "train path");
    CHECK(strcmp(t->val_dataset_path, "/workspace/tao-experiments/data/split/val") == 0, "val path");
    CHECK(strstr(t->pretrained_model_path, "resnet_18.hdf5") != NULL, "pretrained path");
    CHECK(t->optimizer.kind == DEFT_CLS_OPTIM_SGD && t->optimizer.has_sgd && !t->optimizer.has_adam, "sgd");
    CHECK_NEAR(t->optimizer.sgd.lr, 0.01, 1e-12, "sgd lr");
    CHECK_NEAR(t->optimizer.sgd.momentum, 0.9, 1e-12, "momentum");
    CHECK(t->optimizer.sgd.decay == 0 && !t->optimizer.sgd.nesterov, "decay, nesterov");
    CHECK(t->batch_size_per_gpu == 64 && t->n_epochs == 80 && t->n_workers == 16, "batch/epochs/workers");
    CHECK(t->preprocess_mode == DEFT_CLS_PREPROCESS_CAFFE, "caffe");
    CHECK(t->enable_random_crop && t->enable_center_crop, "crops");
    CHECK(t->label_smoothing == 0, "label smoothing 0");
    CHECK_NEAR(t->mixup_alpha, 0.1, 1e-12, "mixup 0.1");
    CHECK(t->reg_config.type == DEFT_CLS_REG_L2 && strcmp(t->reg_config.scope, "Conv2D,Dense") == 0, "L2 scope");
    CHECK_NEAR(t->reg_config.weight_decay, 5e-5, 1e-15, "wd 5e-5");
    CHECK(t->lr_config.kind == DEFT_CLS_LR_STEP && t->lr_config.has_step, "step schedule");
    CHECK_NEAR(t->lr_config.step.learning_rate, 0.006, 1e-12, "step lr");
    CHECK(t->lr_config.step.step_size == 10, "step size");
    CHECK_NEAR(t->lr_config.step.gamma, 0.1, 1e-12, "gamma");
    CHECK(strcmp(c.eval_config.eval_dataset_path, "/workspace/tao-experiments/data/split/test") == 0, "eval path");
    CHECK(c.eval_config.top_k == 3 && c.eval_config.batch_size == 256 && c.eval_config.n_workers == 8 &&
              c.eval_config.enable_center_crop,
          "eval config");
    CHECK(strstr(c.eval_config.model_path, "resnet_080.hdf5") != NULL, "eval model");
    const char *paths[8], *names[8];
    int n = deft_cls_config_paths(&c, DEFT_CLS_PATHS_ALL, paths, names, 8);
    CHECK(n == 5, "5 input paths, got %d", n);
    CHECK(deft_cls_config_paths(&c, DEFT_CLS_PATHS_TRAIN, NULL, NULL, 0) == 3, "3 train paths");
    /* lenient: each missing path a warning, and the status still says a run would stop (--dry_run's exit) */
    s = deft_cls_config_validate_paths(&c, DEFT_CLS_PATHS_TRAIN, false);
    CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "train_dataset_path"), "lenient: warnings, NOT_FOUND: %s",
          deft_last_error());
    s = deft_cls_config_validate_paths(&c, DEFT_CLS_PATHS_TRAIN, true);
    CHECK(s == DEFT_ERR_NOT_FOUND && strstr(deft_last_error(), "train_dataset_path"), "strict: %s",
          deft_last_error());
    check_round_trip(&c, "tf1_train");
    deft_cls_config_free(&c);

    snprintf(p, sizeof p, "%s/tao_specs/classification_tf1_retrain_resnet18_voc.txt", shared);
    s = deft_cls_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "TF1 retrain spec loads: %s", deft_last_error());
    if (!s) {
        CHECK(c.model_config.n_freeze_blocks == 0, "retrain: no frozen blocks");
        CHECK(strstr(c.train_config.pretrained_model_path, "resnet18_nopool_bn_pruned.hdf5") != NULL,
              "retrain: pruned model");
        CHECK(c.train_config.n_epochs == 80 && c.eval_config.top_k == 3, "retrain values");
        check_round_trip(&c, "tf1_retrain");
        deft_cls_config_free(&c);
    }
    CHECK(deft_alloc_live() == live0, "TF1: no leak (%ld live)", deft_alloc_live() - live0);
}

static void test_tao_pyt(const char *shared) {
    char p[600];
    snprintf(p, sizeof p, "%s/tao_specs/classification_pyt_train_cats_dogs.yaml", shared);
    struct deft_cls_config c;
    long live0 = deft_alloc_live();
    enum deft_status s = deft_cls_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "PyTorch spec loads: %s", deft_last_error());
    if (s) return;
    const struct deft_cls_model_config *m = &c.model_config;
    const struct deft_cls_train_config *t = &c.train_config;
    CHECK(c.format == DEFT_SPEC_FORMAT_TAO_PYT, "flavour TAO PyTorch");
    CHECK(strcmp(m->arch, "fan_small_12_p4_hybrid") == 0, "arch from backbone.type: %s", m->arch);
    CHECK(m->freeze_backbone && m->num_classes == 2, "freeze_backbone, 2 classes");
    CHECK(m->input_height == 224 && m->input_width == 224 && m->input_channels == 3, "img_size 224");
    CHECK(strstr(t->pretrained_model_path, "fan_hybrid_small.pth") != NULL, "pretrained path");
    CHECK(strcmp(t->train_dataset_path, "/data/cats_dogs_dataset/training_set/training_set") == 0, "train");
    CHECK(strcmp(t->val_dataset_path, "/data/cats_dogs_dataset/val_set/val_set") == 0, "val");
    CHECK(strcmp(c.eval_config.eval_dataset_path, "/data/cats_dogs_dataset/test_set/test_set") == 0, "test");
    CHECK(t->batch_size_per_gpu == 128 && t->n_workers == 8 && c.eval_config.batch_size == 128, "batch");
    CHECK(t->optimizer.kind == DEFT_CLS_OPTIM_ADAMW, "adamw");
    CHECK_NEAR(t->optimizer.adamw.lr, 0.001, 1e-12, "lr");
    CHECK_NEAR(t->optimizer.adamw.weight_decay, 0.05, 1e-12, "wd");
    CHECK(t->reg_config.type == DEFT_CLS_REG_NONE, "no Keras regularizer for adamw");
    CHECK(t->lr_config.kind == DEFT_CLS_LR_COSINE && t->lr_config.warmup_epochs == 0, "cosine");
    CHECK_NEAR(t->lr_config.cosine.learning_rate, 0.001, 1e-12, "cosine lr");
    CHECK(t->random_seed == 47 && t->n_epochs == 10 && t->val_every == 1 && t->checkpoint_interval == 1,
          "seed 47, default 10 epochs, intervals");
    CHECK_NEAR(t->augmentation.hflip_prob, 0.5, 1e-12, "hflip");
    CHECK(t->augmentation.vflip_prob == 0, "vflip");
    CHECK_NEAR(t->augmentation.rotate_prob, 0.5, 1e-12, "rotate prob");
    CHECK(t->augmentation.n_rotate_angles == 3 && t->augmentation.rotate_angles[2] == 270, "angles");
    CHECK(!t->enable_color_augmentation, "color jitter off (enable: False)");
    CHECK_NEAR(t->augmentation.brightness, 0.4, 1e-12, "brightness kept");
    CHECK(!t->enable_random_crop, "no random crop");
    CHECK_NEAR(t->label_smoothing, 0.1, 1e-12, "label smoothing");
    CHECK(c.eval_config.top_k == 1, "topk [1]");
    CHECK(t->preprocess_mode == DEFT_CLS_PREPROCESS_CUSTOM && t->n_custom_mean == 3 && t->n_custom_std == 3,
          "custom mean/std");
    CHECK_NEAR(t->custom_std[0], 0.229, 1e-12, "std[0]");
    CHECK(strcmp(c.results_dir, "/results") == 0, "results_dir");
    CHECK(strstr(c.ignored_fields, "encryption_key") && strstr(c.ignored_fields, "wandb") &&
              strstr(c.ignored_fields, "train.enable_ema"),
          "ignored fields listed: %s", c.ignored_fields);
    check_round_trip(&c, "pyt");
    deft_cls_config_free(&c);

    /* native names override the PyTorch flavour too */
    const char *ov[] = {"train_config.n_epochs=3", "train_config.optimizer.sgd.lr=0.2"};
    s = deft_cls_config_load(p, ov, 2, &c);
    CHECK(s == DEFT_OK, "PyTorch + --set: %s", deft_last_error());
    if (!s) {
        CHECK(c.train_config.n_epochs == 3, "--set epochs on pyt");
        CHECK(c.train_config.optimizer.kind == DEFT_CLS_OPTIM_SGD && !c.train_config.optimizer.has_adamw,
              "--set switches adamw -> sgd");
        CHECK_NEAR(c.train_config.optimizer.sgd.lr, 0.2, 1e-12, "sgd lr");
        deft_cls_config_free(&c);
    }
    CHECK(deft_alloc_live() == live0, "pyt: no leak");
}

/* ---- native YAML and prototxt fixtures ---------------------------------------- */

static const char *native_yaml =
    "# deft native spec\n"
    "model_config:\n"
    "  arch: resnet\n"
    "  n_layers: 34\n"
    "  freeze_blocks: [0, 1, 2]\n"
    "  input_image_size: \"1,64,96\"\n"
    "  resize_interpolation_method: BICUBIC\n"
    "train_config:\n"
    "  train_dataset_path: data/train\n"
    "  val_dataset_path: data/val\n"
    "  batch_size_per_gpu: 8\n"
    "  n_epochs: 3\n"
    "  optimizer:\n"
    "    adam: {lr: 0.0003, beta_2: 0.99}\n"
    "  reg_config: {type: L1, weight_decay: 1e-4}\n"
    "  lr_config:\n"
    "    soft_anneal:\n"
    "      learning_rate: 0.05\n"
    "      soft_start: 0.1\n"
    "      annealing_points: [0.5, 0.9]\n"
    "    warmup_epochs: 1.5\n"
    "  preprocess_mode: caffe\n"
    "  image_mean: {l: 117.3786}\n"
    "  disable_horizontal_flip: yes\n"
    "  augmentation:\n"
    "    scale_min: 0.25\n"
    "    rotation_degrees: 15\n"
    "    hue: 0.05\n"
    "  val_every: 2\n"
    "  threads: 4\n"
    "  visualizer: {enabled: true, wandb_config: {project: x, tags: [a, b]}}\n"
    "eval_config:\n"
    "  top_k: 2\n"
    "results_dir: ~\n";

static void test_native_yaml(void) {
    long live0 = deft_alloc_live();
    struct deft_cls_config c;
    const char *p = write_file("native.yaml", native_yaml);
    enum deft_status s = deft_cls_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "native YAML: %s", deft_last_error());
    if (s) return;
    const struct deft_cls_train_config *t = &c.train_config;
    CHECK(c.format == DEFT_SPEC_FORMAT_YAML, "native flavour");
    CHECK(c.model_config.n_layers == 34 && c.model_config.n_freeze_blocks == 3, "model");
    CHECK(c.model_config.input_channels == 1 && c.model_config.input_height == 64 &&
              c.model_config.input_width == 96,
          "1x64x96");
    CHECK(c.model_config.resize_interpolation_method == DEFT_CLS_INTERP_BICUBIC, "bicubic");
    CHECK(t->optimizer.kind == DEFT_CLS_OPTIM_ADAM && !t->optimizer.has_sgd, "adam only");
    CHECK_NEAR(t->optimizer.adam.lr, 3e-4, 1e-15, "adam lr");
    CHECK_NEAR(t->optimizer.adam.beta_1, 0.9, 1e-15, "beta_1 default");
    CHECK_NEAR(t->optimizer.adam.beta_2, 0.99, 1e-15, "beta_2");
    CHECK(t->reg_config.type == DEFT_CLS_REG_L1, "L1");
    CHECK(t->lr_config.kind == DEFT_CLS_LR_SOFT_ANNEAL && t->lr_config.soft_anneal.n_annealing_points == 2,
          "soft anneal");
    CHECK_NEAR(t->lr_config.soft_anneal.annealing_divider, 10.0, 1e-12, "divider default");
    CHECK_NEAR(t->lr_config.warmup_epochs, 1.5, 1e-12, "warmup");
    CHECK(t->n_image_mean == 1 && strcmp(t->image_mean[0].key, "l") == 0, "gray mean");
    CHECK(t->disable_horizontal_flip && t->augmentation.hflip_prob == 0, "no hflip");
    CHECK_NEAR(t->augmentation.scale_min, 0.25, 1e-12, "scale_min");
    CHECK_NEAR(t->augmentation.scale_max, 1.0, 1e-12, "scale_max default");
    CHECK(t->val_every == 2 && t->threads == 4 && t->checkpoint_interval == 1, "extras");
    CHECK(c.eval_config.top_k == 2 && c.eval_config.batch_size == 64, "eval defaults");
    CHECK(strcmp(c.results_dir, "") == 0 && strcmp(t->pretrained_model_path, "") == 0, "empty strings");
    CHECK(strstr(c.ignored_fields, "train_config.visualizer") != NULL, "visualizer noted: %s", c.ignored_fields);
    check_round_trip(&c, "native");
    deft_cls_config_free(&c);

    /* the same spec in protobuf text, with TAO's quirks */
    const char *txt =
        "# comment\nmodel_config {\n  arch: 'resnet', n_layers:34\n  freeze_blocks: [0, 1]\n"
        "  freeze_blocks: 2\n  input_image_size: \"1,\" \"64,96\"  # concatenated\n"
        "  resize_interpolation_method: BICUBIC\n}\n"
        "train_config: {\n  train_dataset_path: \"data/train\"\n  val_dataset_path: \"data/val\"\n"
        "  batch_size_per_gpu: 8; n_epochs: 3\n  optimizer { adam < lr: 3e-4 beta_2: 0.99 > }\n"
        "  reg_config { type: L1 weight_decay: 1e-4 }\n"
        "  lr_config { soft_anneal { learning_rate: 0.05 soft_start: 0.1 annealing_points: 0.5\n"
        "    annealing_points: 0.9 } warmup_epochs: 1.5 }\n"
        "  preprocess_mode: \"caffe\"\n  image_mean { key: \"l\" value: 117.3786 }\n"
        "  disable_horizontal_flip: True\n"
        "  augmentation { scale_min: 0.25 rotation_degrees: 15 hue: 0.05 }\n"
        "  val_every: 2 threads: 4\n  visualizer { enabled: true wandb_config { project: \"x\" } }\n}\n"
        "eval_config { top_k: 2 }\n";
    p = write_file("native_as_proto.txt", txt);
    s = deft_cls_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "prototxt twin: %s", deft_last_error());
    if (!s) {
        struct deft_cls_config y;
        CHECK_OK(deft_cls_config_load(write_file("native2.yaml", native_yaml), NULL, 0, &y));
        char *a = print_str(&c), *b = print_str(&y);
        CHECK(strcmp(a, b) == 0, "prototxt and YAML give the same config\n%s---\n%s", a, b);
        free(a);
        free(b);
        deft_cls_config_free(&y);
        deft_cls_config_free(&c);
    }
    CHECK(deft_alloc_live() == live0, "native: no leak");
}

static const char *minimal_txt =
    "model_config {\n"
    "  arch: \"resnet\"\n"
    "  n_layers: 18\n"
    "}\n"
    "train_config {\n"
    "  train_dataset_path: \"train\"\n"
    "  batch_size_per_gpu: 4\n"
    "  n_epochs: 2\n"
    "}\n";

static void test_overrides(void) {
    long live0 = deft_alloc_live();
    struct deft_cls_config c;
    const char *p = write_file("min.txt", minimal_txt);
    CHECK_OK(deft_cls_config_load(p, NULL, 0, &c));
    CHECK(c.train_config.optimizer.kind == DEFT_CLS_OPTIM_SGD && c.train_config.optimizer.has_sgd,
          "default optimizer sgd");
    CHECK(c.train_config.lr_config.kind == DEFT_CLS_LR_CONSTANT, "no schedule: constant");
    CHECK(strcmp(c.ignored_fields, "") == 0, "nothing ignored");
    deft_cls_config_free(&c);

    const char *ov[] = {"train_config.n_epochs=5", "model_config.freeze_blocks=[2, 3]",
                        "train_config.optimizer.adam.lr=0.002", "train_config.image_mean.r=1",
                        "train_config.image_mean.g=2", "train_config.image_mean.b=3", "train_config.image_mean.r=4",
                        "model_config.arch=\"vgg\"", "train_config.lr_config.cosine.min_lr_ratio=0.5",
                        "train_config.preprocess_mode=torch"};
    enum deft_status s = deft_cls_config_load(p, ov, 10, &c);
    CHECK(s == DEFT_OK, "overrides: %s", deft_last_error());
    if (!s) {
        CHECK(c.train_config.n_epochs == 5, "n_epochs overridden");
        CHECK(c.model_config.n_freeze_blocks == 2 && c.model_config.freeze_blocks[1] == 3, "list override");
        CHECK(c.train_config.optimizer.kind == DEFT_CLS_OPTIM_ADAM && !c.train_config.optimizer.has_sgd,
              "optimizer switched to adam");
        CHECK_NEAR(c.train_config.optimizer.adam.lr, 0.002, 1e-15, "adam lr");
        CHECK(c.train_config.n_image_mean == 3, "map override merges keys");
        for (int i = 0; i < c.train_config.n_image_mean; i++)
            if (strcmp(c.train_config.image_mean[i].key, "r") == 0)
                CHECK(c.train_config.image_mean[i].value == 4, "later --set wins");
        CHECK(strcmp(c.model_config.arch, "vgg") == 0, "quoted string override");
        CHECK(c.train_config.lr_config.kind == DEFT_CLS_LR_COSINE, "cosine via --set");
        CHECK(c.train_config.preprocess_mode == DEFT_CLS_PREPROCESS_TORCH, "enum override");
        deft_cls_config_free(&c);
    }
    /* a required field given only by --set */
    const char *no_epochs = "model_config { arch: \"resnet\" }\ntrain_config {\n  train_dataset_path: \"t\"\n"
                            "  batch_size_per_gpu: 4\n}\n";
    p = write_file("no_epochs.txt", no_epochs);
    s = deft_cls_config_load(p, NULL, 0, &c);
    expect_err_cfg("missing n_epochs", s, DEFT_ERR_INVALID_ARG, "no_epochs.txt:2:", "'n_epochs'");
    const char *ov2[] = {"train_config.n_epochs=7"};
    s = deft_cls_config_load(p, ov2, 1, &c);
    CHECK(s == DEFT_OK && c.train_config.n_epochs == 7, "required field from --set: %s", deft_last_error());
    deft_cls_config_free(&c);

    /* bad overrides */
    const char *b1[] = {"train_config.n_epoch=5"};
    s = deft_cls_config_load(write_file("min2.txt", minimal_txt), b1, 1, &c);
    expect_err_cfg("--set unknown key", s, DEFT_ERR_INVALID_ARG, "--set 'train_config.n_epoch=5'",
                   "did you mean 'n_epochs'");
    const char *b2[] = {"train_config.n_epochs=many"};
    s = deft_cls_config_load(write_file("min3.txt", minimal_txt), b2, 1, &c);
    expect_err_cfg("--set wrong type", s, DEFT_ERR_INVALID_ARG, "--set 'train_config.n_epochs=many'",
                   "expected an integer");
    const char *b3[] = {"train_config.n_epochs"};
    s = deft_cls_config_load(write_file("min4.txt", minimal_txt), b3, 1, &c);
    expect_err_cfg("--set without =", s, DEFT_ERR_INVALID_ARG, "key.path=value", NULL);
    const char *b4[] = {"train_config..x=1"};
    s = deft_cls_config_load(write_file("min5.txt", minimal_txt), b4, 1, &c);
    expect_err_cfg("--set bad path", s, DEFT_ERR_INVALID_ARG, "bad key path", NULL);
    const char *b5[] = {"train_config.batch_size_per_gpu=0"};
    s = deft_cls_config_load(write_file("min6.txt", minimal_txt), b5, 1, &c);
    expect_err_cfg("--set out of range", s, DEFT_ERR_INVALID_ARG, "out of range", ">= 1");
    CHECK(deft_alloc_live() == live0, "overrides: no leak");
}

/* ---- bad specs ------------------------------------------------------------------- */

static void test_bad_specs(void) {
    long live0 = deft_alloc_live();
    enum deft_status s;
    s = load_text("unknown.txt",
                  "model_config {\n  arch: \"resnet\"\n  n_layer: 18\n}\n"
                  "train_config { train_dataset_path: \"t\" batch_size_per_gpu: 1 n_epochs: 1 }\n",
                  NULL, 0);
    expect_err_cfg("unknown key", s, DEFT_ERR_INVALID_ARG, "unknown.txt:3:3:", "did you mean 'n_layers'?");
    s = load_text("unknown.yaml", "model_config:\n  arch: resnet\n  use_batchnorm: true\n", NULL, 0);
    expect_err_cfg("unknown key yaml", s, DEFT_ERR_INVALID_ARG, "unknown.yaml:3:3:", "'use_batch_norm'");
    s = load_text("unknown_top.yaml", "modelconfig:\n  arch: resnet\n", NULL, 0);
    expect_err_cfg("unknown top key", s, DEFT_ERR_INVALID_ARG, "unknown_top.yaml:1:1:", "'model_config'");

    s = load_text("type.txt",
                  "model_config {\n  arch: \"resnet\"\n  n_layers: eighteen\n}\n", NULL, 0);
    expect_err_cfg("wrong type", s, DEFT_ERR_INVALID_ARG, "type.txt:3:13:", "expected an integer");
    s = load_text("type2.yaml", "model_config:\n  arch: resnet\n  n_layers: 18.5\n", NULL, 0);
    expect_err_cfg("float for int", s, DEFT_ERR_INVALID_ARG, "type2.yaml:3:13:", "whole number");
    s = load_text("type3.yaml", "model_config:\n  arch: resnet\n  use_bias: \"true\"\n", NULL, 0);
    expect_err_cfg("quoted bool", s, DEFT_ERR_INVALID_ARG, "type3.yaml:3:13:", "remove the quotes");
    s = load_text("type4.yaml", "model_config:\n  arch: [resnet]\n", NULL, 0);
    expect_err_cfg("list for string", s, DEFT_ERR_INVALID_ARG, "type4.yaml:2:9:", "got a list");
    s = load_text("type5.txt", "model_config: 3\n", NULL, 0);
    expect_err_cfg("scalar for block", s, DEFT_ERR_INVALID_ARG, "type5.txt:1:15:", "is a block");
    s = load_text("enum.yaml",
                  "model_config: {arch: resnet}\ntrain_config:\n  preprocess_mode: cafe\n", NULL, 0);
    expect_err_cfg("bad enum", s, DEFT_ERR_INVALID_ARG, "enum.yaml:3:20:", "did you mean 'caffe'");

    s = load_text("range.txt",
                  "model_config { arch: \"resnet\" }\ntrain_config {\n  train_dataset_path: \"t\"\n"
                  "  batch_size_per_gpu: 0\n  n_epochs: 1\n}\n",
                  NULL, 0);
    expect_err_cfg("out of range", s, DEFT_ERR_INVALID_ARG, "range.txt:4:23:", "out of range");
    s = load_text("range2.yaml", "model_config: {arch: resnet, dropout: 1.5}\n", NULL, 0);
    expect_err_cfg("dropout > 1", s, DEFT_ERR_INVALID_ARG, "range2.yaml:1:", "<= 1");
    s = load_text("size.txt",
                  "model_config { arch: \"resnet\" input_image_size: \"3,8,224\" }\n"
                  "train_config { train_dataset_path: \"t\" batch_size_per_gpu: 1 n_epochs: 1 }\n",
                  NULL, 0);
    expect_err_cfg("bad image size", s, DEFT_ERR_INVALID_ARG, "size.txt:1:", "C,H,W");

    s = load_text("missing.txt",
                  "model_config {\n  n_layers: 18\n}\ntrain_config { train_dataset_path: \"t\" "
                  "batch_size_per_gpu: 1 n_epochs: 1 }\n",
                  NULL, 0);
    expect_err_cfg("missing required", s, DEFT_ERR_INVALID_ARG, "missing.txt:1:1:", "'arch'");
    s = load_text("missing2.yaml", "model_config:\n  arch: resnet\n", NULL, 0);
    expect_err_cfg("missing block", s, DEFT_ERR_INVALID_ARG, "missing2.yaml:1:1:", "'train_config'");

    s = load_text("dup.yaml", "model_config:\n  arch: resnet\n  arch: vgg\n", NULL, 0);
    expect_err_cfg("duplicate key", s, DEFT_ERR_PARSE, "dup.yaml:3:3:", "duplicate key 'arch'");
    s = load_text("dup.txt", "model_config {\n  arch: \"resnet\"\n  arch: \"vgg\"\n}\n", NULL, 0);
    expect_err_cfg("repeated singular field", s, DEFT_ERR_INVALID_ARG, "dup.txt:2:3:", "given 2 times");
    s = load_text("oneof.txt",
                  "model_config { arch: \"resnet\" }\ntrain_config {\n  train_dataset_path: \"t\"\n"
                  "  batch_size_per_gpu: 1 n_epochs: 1\n  optimizer {\n    sgd { lr: 0.1 }\n"
                  "    adam { lr: 0.1 }\n  }\n}\n",
                  NULL, 0);
    expect_err_cfg("oneof conflict", s, DEFT_ERR_INVALID_ARG, "oneof.txt:7:5:", "alternatives");

    s = load_text("unterminated.txt", "model_config {\n  arch: \"resnet\"\n", NULL, 0);
    expect_err_cfg("unterminated block", s, DEFT_ERR_PARSE, "unterminated.txt:3:1:", "missing '}'");
    s = load_text("unterminated2.txt", "model_config {\n  arch: \"resnet\n}\n", NULL, 0);
    expect_err_cfg("unterminated string", s, DEFT_ERR_PARSE, "unterminated2.txt:2:9:", "unterminated string");
    s = load_text("extra.txt", "model_config { arch: \"resnet\" } }\n", NULL, 0);
    expect_err_cfg("stray brace", s, DEFT_ERR_PARSE, "extra.txt:1:33:", "no block is open");
    s = load_text("nocolon.txt", "model_config { arch \"resnet\" }\n", NULL, 0);
    expect_err_cfg("missing colon", s, DEFT_ERR_PARSE, "nocolon.txt:1:21:", "expected ':'");
    s = load_text("badyaml.yaml", "model_config:\n  arch: [resnet\n", NULL, 0);
    expect_err_cfg("bad YAML", s, DEFT_ERR_PARSE, "badyaml.yaml:", "invalid YAML");
    s = load_text("alias.yaml", "a: &x 1\nmodel_config: *x\n", NULL, 0);
    expect_err_cfg("alias", s, DEFT_ERR_PARSE, "alias.yaml:2:", "aliases");
    s = load_text("scalar.yaml", "just text\n", NULL, 0);
    expect_err_cfg("scalar document", s, DEFT_ERR_PARSE, "scalar.yaml:1:1:", "mapping");

    static const unsigned char garbage[] = {0x7f, 'E', 'L', 'F', 0x02, 0x01, 0x00, 0xff, 0xfe, '{', '}'};
    const char *gp = tmp_path(1, "garbage.txt");
    FILE *f = fopen(gp, "wb");
    fwrite(garbage, 1, sizeof garbage, f);
    fclose(f);
    struct deft_cls_config c;
    s = deft_cls_config_load(gp, NULL, 0, &c);
    expect_err_cfg("garbage .txt", s, DEFT_ERR_PARSE, "garbage.txt:1:1:", "unexpected");
    const char *gy = tmp_path(2, "garbage.yaml");
    f = fopen(gy, "wb");
    fwrite(garbage, 1, sizeof garbage, f);
    fclose(f);
    s = deft_cls_config_load(gy, NULL, 0, &c);
    expect_err_cfg("garbage .yaml", s, DEFT_ERR_PARSE, "garbage.yaml:", NULL);
    s = deft_cls_config_load(tmp_path(1, "does_not_exist.yaml"), NULL, 0, &c);
    expect_err_cfg("missing file", s, DEFT_ERR_NOT_FOUND, "does_not_exist.yaml", NULL);

    /* deep nesting */
    char deep[2000];
    size_t k = 0;
    for (int i = 0; i < 100; i++) k += (size_t)snprintf(deep + k, sizeof deep - k, "a {");
    for (int i = 0; i < 100; i++) deep[k++] = '}';
    deep[k] = 0;
    s = load_text("deep.txt", deep, NULL, 0);
    expect_err_cfg("deep prototxt", s, DEFT_ERR_PARSE, "deep.txt:1:", "nested too deeply");
    k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "a: ");
    for (int i = 0; i < 100; i++) deep[k++] = '[';
    for (int i = 0; i < 100; i++) deep[k++] = ']';
    deep[k++] = '\n';
    deep[k] = 0;
    s = load_text("deep.yaml", deep, NULL, 0);
    expect_err_cfg("deep YAML", s, DEFT_ERR_PARSE, "deep.yaml:1:", "nested too deeply");

    /* the PyTorch flavour checks its own keys */
    s = load_text("pyt_bad.yaml",
                  "model:\n  backbone:\n    type: resnet_50\ndataset:\n  batch_sise: 4\n", NULL, 0);
    expect_err_cfg("pyt unknown key", s, DEFT_ERR_INVALID_ARG, "pyt_bad.yaml:5:3:", "'batch_size'");
    s = load_text("pyt_policy.yaml",
                  "model:\n  backbone:\n    type: resnet_50\ndataset: {}\ntrain:\n  optim:\n"
                  "    policy: multistep\n",
                  NULL, 0);
    expect_err_cfg("pyt multistep", s, DEFT_ERR_INVALID_ARG, "pyt_policy.yaml:7:13:", "multistep");
    CHECK(deft_alloc_live() == live0, "bad specs: no leak (%ld)", deft_alloc_live() - live0);
}

static void test_pyt_resnet_name(void) {
    struct deft_cls_config c;
    enum deft_status s = deft_cls_config_load(
        write_file("pyt_rn.yaml", "model:\n  backbone:\n    type: resnet_50\ndataset:\n  img_size: 160\n"
                                  "train:\n  optim: {optim: sgd, lr: 0.1, weight_decay: 1e-4, policy: step}\n"),
        NULL, 0, &c);
    CHECK(s == DEFT_OK, "pyt resnet_50: %s", deft_last_error());
    if (s) return;
    CHECK(strcmp(c.model_config.arch, "resnet") == 0 && c.model_config.n_layers == 50, "resnet_50 -> resnet 50");
    CHECK(c.model_config.input_width == 160, "img_size 160");
    CHECK(c.train_config.optimizer.kind == DEFT_CLS_OPTIM_SGD, "sgd");
    CHECK(c.train_config.reg_config.type == DEFT_CLS_REG_L2, "wd -> L2");
    CHECK_NEAR(c.train_config.reg_config.weight_decay, 5e-5, 1e-15, "wd/2");
    CHECK(c.train_config.lr_config.kind == DEFT_CLS_LR_STEP && c.train_config.lr_config.step.step_size == 10,
          "step policy");
    check_round_trip(&c, "pyt_rn");
    deft_cls_config_free(&c);
}

static void test_help(void) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    deft_cls_config_help(f);
    fclose(f);
    CHECK(strstr(buf, "train_config.n_epochs") && strstr(buf, "(required)"), "help lists fields");
    CHECK(strstr(buf, "train_config.optimizer.sgd.momentum") && strstr(buf, "0.9"), "help: nested, defaults");
    CHECK(strstr(buf, "caffe, torch, tf, custom"), "help: enum choices");
    CHECK(strstr(buf, "not used by deft yet") && strstr(buf, "deft extension"), "help: tags");
    free(buf);
}

/* ---- allocation failures, corruption -------------------------------------------- */

static void fail_loop(const char *what, const char *path, const char *const *ov, int nov) {
    long live0 = deft_alloc_live();
    int k;
    bool clean = true;
    for (k = 1; k < 100000; k++) {
        struct deft_cls_config c;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_cls_config_load(path, ov, nov, &c);
        deft_alloc_fail_after(0);
        if (s == DEFT_OK) {
            deft_cls_config_free(&c);
            break;
        }
        if (s != DEFT_ERR_NOMEM) {
            clean = false;
            printf("  %s: fail at %d gave %s: %s\n", what, k, deft_status_str(s), deft_last_error());
            break;
        }
        if (deft_alloc_live() != live0) {
            clean = false;
            printf("  %s: leak after failing allocation %d\n", what, k);
            break;
        }
    }
    CHECK(clean && k > 10 && k < 100000, "%s: %d allocation failures, all clean", what, k - 1);
    CHECK(deft_alloc_live() == live0, "%s: no leak after the loop", what);
}

static void test_alloc_failures(const char *shared) {
    const char *ov[] = {"train_config.n_epochs=5", "train_config.optimizer.adam.lr=0.01",
                        "model_config.freeze_blocks=[1]"};
    fail_loop("native yaml", write_file("fail_native.yaml", native_yaml), ov, 3);
    char p[600];
    if (shared) {
        snprintf(p, sizeof p, "%s/tao_specs/classification_tf1_train_resnet18_voc.txt", shared);
        fail_loop("TAO TF1", p, ov, 3);
        snprintf(p, sizeof p, "%s/tao_specs/classification_pyt_train_cats_dogs.yaml", shared);
        fail_loop("TAO PyTorch", p, NULL, 0);
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_corruption(const char *shared) {
    long live0 = deft_alloc_live();
    char p[600];
    const char *seeds[3] = {native_yaml, minimal_txt, NULL};
    size_t seed_n[3] = {strlen(native_yaml), strlen(minimal_txt), 0};
    char *owned = NULL;
    if (shared) {
        snprintf(p, sizeof p, "%s/tao_specs/classification_tf1_train_resnet18_voc.txt", shared);
        owned = read_all(p, &seed_n[2]);
        seeds[2] = owned;
    }
    int ok = 0, errs = 0;
    char *buf = malloc(1 << 16);
    for (int it = 0; it < 6000; it++) {
        int si = (int)(next_rand() % 3);
        if (!seeds[si]) si = 0;
        size_t n = seed_n[si];
        memcpy(buf, seeds[si], n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits && n > 0; e++) {
            size_t pos = next_rand() % n;
            switch (next_rand() % 4) {
            case 0: buf[pos] = (char)(next_rand() & 0xff); break;
            case 1: n = pos; break;                                   /* truncate */
            case 2: buf[pos] = "{}[]:,#\"'\n -"[next_rand() % 13]; break;
            default:
                if (n + 1 < (1 << 16)) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = "{}[]:\"\\\n"[next_rand() % 8];
                    n++;
                }
            }
        }
        enum deft_spec_format fmt = it % 2 ? DEFT_SPEC_FORMAT_PROTOTXT : DEFT_SPEC_FORMAT_YAML;
        struct deft_cls_config c;
        long l0 = deft_alloc_live();
        enum deft_status s = deft_cls_config_parse(buf, n, "fuzz", fmt, NULL, 0, &c);
        if (s != DEFT_OK && deft_alloc_live() != l0) {
            CHECK(0, "corruption %d leaks (%s): %s", it, deft_status_str(s), deft_last_error());
            fwrite(buf, 1, n, stdout);
            break;
        }
        if (s == DEFT_OK) {
            ok++;
            char *a = print_str(&c);
            free(a);
            deft_cls_config_free(&c);
        } else {
            errs++;
            if (s != DEFT_ERR_PARSE && s != DEFT_ERR_INVALID_ARG) {
                CHECK(0, "corruption %d: unexpected status %s: %s", it, deft_status_str(s), deft_last_error());
                break;
            }
            if (!strstr(deft_last_error(), "fuzz")) {
                CHECK(0, "corruption %d: message without the file name: %s", it, deft_last_error());
                break;
            }
        }
    }
    CHECK(ok + errs == 6000 && errs > 0, "corruption: %d parsed, %d rejected", ok, errs);
    free(buf);
    free(owned);
    CHECK(deft_alloc_live() == live0, "corruption: no leak");
}

static void test_tree_basics(void) {
    struct deft_spec_node *t = NULL;
    const char *txt = "a: 1 a: 2 a: [3, 4]\nb { c: \"x\\ty\\101\\x41\" }\nb2: { }\nneg: -1.5e-3 inf_ok: -inf\n";
    CHECK_OK(deft_spec_parse_prototxt(txt, strlen(txt), "t.txt", &t));
    if (t) {
        const struct deft_spec_node *a = deft_spec_map_get(t, "a");
        CHECK(a && a->kind == DEFT_SPEC_LIST && a->repeated && a->n == 4, "repeated a -> list of 4");
        const struct deft_spec_node *c = deft_spec_map_get(deft_spec_map_get(t, "b"), "c");
        CHECK(c && c->quoted && strcmp(c->text, "x\tyAA") == 0, "escapes: %s", c ? c->text : "");
        const struct deft_spec_node *neg = deft_spec_map_get(t, "neg");
        CHECK(neg && strcmp(neg->text, "-1.5e-3") == 0, "negative exponent number");
        double d;
        CHECK(!deft_spec_parse_double("-inf", &d) && !deft_spec_parse_double("nan", &d), "no inf/nan");
        CHECK(deft_spec_parse_double("5e-05", &d) && d == 5e-05, "parse 5e-05");
        char b[40];
        deft_spec_format_double(0.1, b, sizeof b);
        CHECK(strcmp(b, "0.1") == 0, "format 0.1 -> %s", b);
        deft_spec_format_double(3, b, sizeof b);
        CHECK(strcmp(b, "3.0") == 0, "format 3 -> %s", b);
        deft_spec_node_free(t);
    }
    CHECK(deft_spec_edit_distance("n_layer", "n_layers") == 1, "edit distance");
    const char *y = "k: [1, 'two', {x: ~}]\nq: \"5\"\n";
    t = NULL;
    CHECK_OK(deft_spec_parse_yaml(y, strlen(y), "t.yaml", &t));
    if (t) {
        const struct deft_spec_node *k = deft_spec_map_get(t, "k");
        CHECK(k && k->kind == DEFT_SPEC_LIST && k->n == 3 && k->kids[2]->kind == DEFT_SPEC_MAP, "yaml list");
        const struct deft_spec_node *q = deft_spec_map_get(t, "q");
        CHECK(q && q->quoted && q->line == 2 && q->col == 4, "quoted scalar at 2:4");
        deft_spec_node_free(t);
    }
    t = NULL;
    CHECK_OK(deft_spec_parse_yaml("", 0, "empty.yaml", &t));
    CHECK(t && t->kind == DEFT_SPEC_MAP && t->n == 0, "empty YAML -> empty map");
    deft_spec_node_free(t);
}

int main(void) {
    deft_log_set_level(DEFT_LOG_ERROR); /* keep the notices out of the test output */
    const char *shared = test_shared_dir();
    test_tree_basics();
    if (shared) {
        test_tao_tf1(shared);
        test_tao_pyt(shared);
    } else {
        test_skip_part("../shared not found: the real TAO specs are not checked");
    }
    test_native_yaml();
    test_overrides();
    test_bad_specs();
    test_pyt_resnet_name();
    test_help();
    test_alloc_failures(shared);
    test_corruption(shared);
    return test_summary();
}

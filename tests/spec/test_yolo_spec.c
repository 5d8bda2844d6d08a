/* test_yolo_spec.c - the YOLOv4 spec: TAO's yolo_v4 and yolo_v4_tiny sample
 * specs (../shared/tao_specs, read as they are) give the values written in
 * them; a deft YAML spec with the same fields gives the same config; --set
 * overrides (repeated blocks by index); print -> reload round trip; every
 * error case (typo with "did you mean", wrong type, syntax error, bad
 * anchors, tiny with small anchors, size not a multiple of 32, TFRecords
 * only, ...) has status exit 2 and a message naming file:line; the summary
 * and --help-spec name what they should; no leaks; allocation failures are
 * clean statuses. Expected values are the literals of the spec texts. */
#include <string.h>
#include "deft_test.h"
#include "deft/yolo_spec.h"
#include "spec/spec_impl.h"

static char path_buf[512];
static const char *write_file(const char *name, const char *text) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path_buf, "wb");
    if (!f) return path_buf;
    fputs(text, f);
    fclose(f);
    return path_buf;
}

static char *to_string(void (*fn)(const struct deft_yolo_config *, FILE *), const struct deft_yolo_config *c,
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

/* A small valid TAO-style spec (3 heads) that error cases edit. */
static const char *const base_txt =
    "random_seed: 7\n"                                                              /* 1 */
    "yolov4_config {\n"                                                             /* 2 */
    "  big_anchor_shape: \"[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]\"\n" /* 3 */
    "  mid_anchor_shape: \"[(42.99, 31.91), (79.57, 31.75), (56.80, 56.93)]\"\n"  /* 4 */
    "  small_anchor_shape: \"[(15.60, 13.88), (30.25, 20.25), (20.67, 49.63)]\"\n" /* 5 */
    "  arch: \"resnet\"\n"                                                          /* 6 */
    "  nlayers: 18\n"                                                               /* 7 */
    "  loss_loc_weight: 1.0\n  loss_neg_obj_weights: 1.0\n  loss_class_weights: 1.0\n" /* 8-10 */
    "}\n"                                                                           /* 11 */
    "training_config {\n"                                                           /* 12 */
    "  batch_size_per_gpu: 4\n"                                                     /* 13 */
    "  num_epochs: 3\n"                                                             /* 14 */
    "  learning_rate { soft_start_annealing_schedule { min_learning_rate: 1e-6 max_learning_rate: 1e-3 "
    "soft_start: 0.1 annealing: 0.5 } }\n"                                          /* 15 */
    "  optimizer { sgd { momentum: 0.9 } }\n"                                       /* 16 */
    "}\n"                                                                           /* 17 */
    "augmentation_config {\n"                                                       /* 18 */
    "  output_width: 416\n"                                                         /* 19 */
    "  output_height: 416\n"                                                        /* 20 */
    "}\n"                                                                           /* 21 */
    "dataset_config {\n"                                                            /* 22 */
    "  data_sources { label_directory_path: \"l\" image_directory_path: \"i\" }\n" /* 23 */
    "  target_class_mapping { key: \"RBC\" value: \"RBC\" }\n"                      /* 24 */
    "  target_class_mapping { key: \"wbc\" value: \"WBC\" }\n"                      /* 25 */
    "}\n";                                                                          /* 26 */

/* base_txt with line `line` (1-based) replaced by `repl` (NULL: removed). */
static char *edit_line(int line, const char *repl) {
    size_t cap = strlen(base_txt) + (repl ? strlen(repl) : 0) + 4;
    char *out = malloc(cap), *o = out;
    const char *p = base_txt;
    for (int ln = 1; *p; ln++) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p + 1) : strlen(p);
        if (ln == line) {
            if (repl) o += sprintf(o, "%s\n", repl);
        } else {
            memcpy(o, p, l);
            o += l;
        }
        p += l;
    }
    *o = 0;
    return out;
}

static enum deft_status load_edit(const char *name, int line, const char *repl) {
    char *t = edit_line(line, repl);
    struct deft_yolo_config c;
    enum deft_status s = deft_yolo_config_load(write_file(name, t), NULL, 0, &c);
    if (!s) deft_yolo_config_free(&c);
    free(t);
    return s;
}

/* ---- the real TAO specs ------------------------------------------------------- */

static void check_common_tao(const struct deft_yolo_config *c, const char *what) {
    const struct deft_yolo_training_config *t = &c->training_config;
    const struct deft_yolo_dataset_config *d = &c->dataset_config;
    CHECK(c->format == DEFT_SPEC_FORMAT_PROTOTXT && c->random_seed == 42, "%s: prototxt, seed 42", what);
    CHECK(t->batch_size_per_gpu == 8 && t->num_epochs == 80 && t->checkpoint_interval == 10 && !t->enable_qat,
          "%s: batch 8, 80 epochs, checkpoint 10", what);
    CHECK(t->learning_rate.kind == DEFT_YOLO_LR_SOFT_START_COSINE &&
              t->learning_rate.has_soft_start_cosine_annealing_schedule &&
              !t->learning_rate.has_soft_start_annealing_schedule,
          "%s: cosine schedule", what);
    const struct deft_yolo_lr_cosine *l = &t->learning_rate.soft_start_cosine_annealing_schedule;
    CHECK(l->min_learning_rate == 1e-7 && l->max_learning_rate == 1e-4 && l->soft_start == 0.3,
          "%s: lr 1e-7 / 1e-4 / 0.3", what);
    CHECK(t->regularizer.type == DEFT_YOLO_REG_L1 && t->regularizer.weight == 3e-5, "%s: L1 3e-5", what);
    CHECK(t->optimizer.kind == DEFT_YOLO_OPTIM_ADAM && t->optimizer.has_adam && t->optimizer.adam.epsilon == 1e-7 &&
              t->optimizer.adam.beta1 == 0.9 && t->optimizer.adam.beta2 == 0.999 && !t->optimizer.adam.amsgrad,
          "%s: adam", what);
    CHECK(strstr(t->pretrain_model_path, ".hdf5") != NULL, "%s: pretrain path", what);
    CHECK(c->eval_config.average_precision_mode == DEFT_YOLO_AP_SAMPLE && c->eval_config.batch_size == 8 &&
              c->eval_config.matching_iou_threshold == 0.5,
          "%s: eval SAMPLE, 8, 0.5", what);
    CHECK(c->nms_config.confidence_threshold == 0.001 && c->nms_config.clustering_iou_threshold == 0.5 &&
              c->nms_config.top_k == 200 && c->nms_config.force_on_cpu,
          "%s: nms 0.001 / 0.5 / 200", what);
    const struct deft_yolo_augmentation_config *a = &c->augmentation_config;
    CHECK(a->hue == 0.1 && a->saturation == 1.5 && a->exposure == 1.5 && a->vertical_flip == 0 &&
              a->horizontal_flip == 0.5 && a->jitter == 0.3 && a->mosaic_prob == 0.5 && a->mosaic_min_ratio == 0.2,
          "%s: augmentation", what);
    CHECK(a->output_width == 1248 && a->output_height == 384 && a->output_channel == 3, "%s: 1248x384x3", what);
    CHECK(d->n_data_sources == 1 && d->n_validation_data_sources == 1, "%s: one train, one val source", what);
    CHECK(strstr(d->data_sources[0].tfrecords_path, "train-fold*") && !*d->data_sources[0].label_directory_path &&
              strcmp(d->data_sources[0].image_directory_path, "/workspace/tao-experiments/data/kitti_split/training") == 0,
          "%s: train source", what);
    CHECK(strstr(d->validation_data_sources[0].tfrecords_path, "val-fold*") != NULL, "%s: val source", what);
    CHECK(d->include_difficult_in_training && strcmp(d->image_extension, "png") == 0, "%s: difficult, png", what);
    CHECK(d->n_target_class_mapping == 5 && strcmp(d->target_class_mapping[3].key, "van") == 0 &&
              strcmp(d->target_class_mapping[3].value, "car") == 0,
          "%s: 5 mapping entries in file order", what);
    CHECK(d->n_classes == 3 && strcmp(d->class_names[0], "car") == 0 && strcmp(d->class_names[1], "cyclist") == 0 &&
              strcmp(d->class_names[2], "pedestrian") == 0,
          "%s: classes car, cyclist, pedestrian (sorted)", what);
    CHECK(strstr(c->ignored_fields, "training_config.visualizer") != NULL, "%s: visualizer noted as unused: %s", what,
          c->ignored_fields);
}

/* Print, reload the printed YAML, print again: identical text = identical config. */
static void check_round_trip(const struct deft_yolo_config *c, const char *what) {
    char *a = to_string(deft_yolo_config_print, c, true);
    char name[64];
    snprintf(name, sizeof name, "rt_%s.yaml", what);
    struct deft_yolo_config r;
    enum deft_status s = deft_yolo_config_load(write_file(name, a), NULL, 0, &r);
    CHECK(s == DEFT_OK, "%s: printed config reloads: %s", what, deft_last_error());
    if (!s) {
        char *b = to_string(deft_yolo_config_print, &r, true);
        CHECK(strcmp(a, b) == 0, "%s: round trip identical\n--- first\n%s--- second\n%s", what, a, b);
        CHECK(r.format == DEFT_SPEC_FORMAT_YAML && r.dataset_config.n_classes == c->dataset_config.n_classes &&
                  r.yolov4_config.n_anchors[0] == c->yolov4_config.n_anchors[0],
              "%s: resolved fields survive", what);
        free(b);
        deft_yolo_config_free(&r);
    }
    free(a);
}

static void test_tao_specs(const char *shared) {
    char p[600];
    long live0 = deft_alloc_live();
    struct deft_yolo_config c;
    snprintf(p, sizeof p, "%s/tao_specs/yolo_v4_train_resnet18_kitti.txt", shared);
    enum deft_status s = deft_yolo_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "yolo_v4 resnet18 spec loads: %s", deft_last_error());
    if (!s) {
        const struct deft_yolo_v4_config *y = &c.yolov4_config;
        CHECK(strcmp(y->arch, "resnet") == 0 && y->nlayers == 18 && y->arch_conv_blocks == 2, "resnet 18, 2 blocks");
        CHECK(!y->is_tiny && y->n_heads == 3, "3 heads");
        CHECK(y->n_anchors[0] == 3 && y->n_anchors[1] == 3 && y->n_anchors[2] == 3, "3 anchors per head");
        CHECK(y->anchors[0][0].w == 114.94 && y->anchors[0][0].h == 60.67 && y->anchors[0][2].w == 297.59 &&
                  y->anchors[0][2].h == 176.38,
              "big anchors");
        CHECK(y->anchors[1][1].w == 79.57 && y->anchors[1][1].h == 31.75, "mid anchor 1");
        CHECK(y->anchors[2][0].w == 15.60 && y->anchors[2][2].h == 49.63, "small anchors");
        CHECK(y->box_matching_iou == 0.25 && y->matching_neutral_box_iou == 0.5, "matching 0.25 / 0.5");
        CHECK(y->loss_loc_weight == 1 && y->loss_neg_obj_weights == 1 && y->loss_class_weights == 1 &&
                  y->label_smoothing == 0,
              "loss weights");
        CHECK(y->big_grid_xy_extend == 0.05 && y->mid_grid_xy_extend == 0.1 && y->small_grid_xy_extend == 0.2,
              "grid extends");
        CHECK(!y->freeze_bn && !y->force_relu && y->n_freeze_blocks == 0, "no freezing (freeze_blocks commented out)");
        CHECK(c.training_config.model_ema, "model_ema true");
        check_common_tao(&c, "resnet18");
        char *sum = to_string(deft_yolo_config_summary, &c, false);
        CHECK(strstr(sum, "arch resnet, nlayers 18") && strstr(sum, "(114.94, 60.67)") &&
                  strstr(sum, "(15.6, 13.88)") && strstr(sum, "3: car, cyclist, pedestrian") &&
                  strstr(sum, "1248 x 384") && strstr(sum, "batch 8, 80 epochs") && strstr(sum, "adam") &&
                  strstr(sum, "cosine"),
              "summary shows arch, anchors, classes, input, batch, optimizer, LR:\n%s", sum);
        CHECK(strstr(sum, "TFRecords") && strstr(sum, "training will stop"), "summary flags TFRecords sources");
        free(sum);
        /* the sample gives only tfrecords_path: deft asks for the label folder */
        s = deft_yolo_config_validate_paths(&c, true);
        expect_err("TFRecords only", s, "yolo_v4_train_resnet18_kitti.txt:80", "label_directory_path");
        CHECK(!strchr(deft_last_error(), '\n'), "TFRecords message is one line");
        check_round_trip(&c, "resnet18");
        deft_yolo_config_free(&c);
    }

    snprintf(p, sizeof p, "%s/tao_specs/yolo_v4_tiny_train_kitti.txt", shared);
    s = deft_yolo_config_load(p, NULL, 0, &c);
    CHECK(s == DEFT_OK, "yolo_v4_tiny spec loads: %s", deft_last_error());
    if (!s) {
        const struct deft_yolo_v4_config *y = &c.yolov4_config;
        CHECK(strcmp(y->arch, "cspdarknet_tiny") == 0 && y->is_tiny && y->n_heads == 2, "tiny: 2 heads");
        CHECK(y->n_anchors[0] == 3 && y->n_anchors[1] == 3 && y->n_anchors[2] == 0, "tiny: 3 + 3 anchors");
        CHECK(y->anchors[0][0].w == 260.69 && y->anchors[0][0].h == 172.35 && y->anchors[1][2].w == 18.88 &&
                  y->anchors[1][2].h == 17.11,
              "tiny anchors");
        CHECK(y->big_grid_xy_extend == 0.05 && y->mid_grid_xy_extend == 0.05 && y->small_grid_xy_extend == 0,
              "tiny grid extends");
        CHECK(c.augmentation_config.randomize_input_shape_period == 10 && !c.training_config.model_ema,
              "tiny: shape period 10, no ema");
        check_common_tao(&c, "tiny");
        char *sum = to_string(deft_yolo_config_summary, &c, false);
        CHECK(strstr(sum, "YOLOv4-tiny") && strstr(sum, "cspdarknet_tiny") && strstr(sum, "(260.69, 172.35)") &&
                  !strstr(sum, "small"),
              "tiny summary:\n%s", sum);
        free(sum);
        /* pointing the sources at label folders with --set makes it a spec deft can train */
        deft_yolo_config_free(&c);
        const char *ov[] = {"dataset_config.data_sources.0.tfrecords_path=\"\"",
                            "dataset_config.data_sources.0.label_directory_path=/data/train/labels",
                            "dataset_config.validation_data_sources.0.tfrecords_path=\"\"",
                            "dataset_config.validation_data_sources.0.label_directory_path=/data/val/labels"};
        s = deft_yolo_config_load(p, ov, 4, &c);
        CHECK(s == DEFT_OK, "tiny + label dirs by --set: %s", deft_last_error());
        if (!s) {
            CHECK(strcmp(c.dataset_config.data_sources[0].label_directory_path, "/data/train/labels") == 0 &&
                      !*c.dataset_config.data_sources[0].tfrecords_path,
                  "--set into repeated block 0");
            s = deft_yolo_config_validate_paths(&c, true);
            expect_err("missing dirs", s == DEFT_ERR_NOT_FOUND ? DEFT_ERR_INVALID_ARG : s, "label_directory_path",
                       "/data/train/labels");
            CHECK(s == DEFT_ERR_NOT_FOUND, "missing folders: NOT_FOUND");
            CHECK(deft_yolo_config_validate_paths(&c, false) == DEFT_ERR_NOT_FOUND, "lenient: warnings, still NOT_FOUND");
            deft_yolo_config_free(&c);
        }
    }
    CHECK(deft_alloc_live() == live0, "TAO specs: no leak (%ld)", deft_alloc_live() - live0);
}

/* ---- YAML equals prototxt --------------------------------------------------------------- */

static const char *const base_yaml =
    "random_seed: 7\n"
    "yolov4_config:\n"
    "  big_anchor_shape: \"[(114.94, 60.67), (159.06, 114.59), (297.59, 176.38)]\"\n"
    "  mid_anchor_shape: \"[(42.99, 31.91), (79.57, 31.75), (56.80, 56.93)]\"\n"
    "  small_anchor_shape: \"[(15.60, 13.88), (30.25, 20.25), (20.67, 49.63)]\"\n"
    "  arch: resnet\n"
    "  nlayers: 18\n"
    "  loss_loc_weight: 1.0\n  loss_neg_obj_weights: 1.0\n  loss_class_weights: 1.0\n"
    "training_config:\n"
    "  batch_size_per_gpu: 4\n"
    "  num_epochs: 3\n"
    "  learning_rate:\n"
    "    soft_start_annealing_schedule: {min_learning_rate: 1e-6, max_learning_rate: 1e-3, soft_start: 0.1, "
    "annealing: 0.5}\n"
    "  optimizer:\n"
    "    sgd: {momentum: 0.9}\n"
    "augmentation_config: {output_width: 416, output_height: 416}\n"
    "dataset_config:\n"
    "  data_sources:\n"
    "    - label_directory_path: l\n"
    "      image_directory_path: i\n"
    "  target_class_mapping: {RBC: RBC, wbc: WBC}\n";

static void test_yaml_equivalent(void) {
    long live0 = deft_alloc_live();
    struct deft_yolo_config a, b;
    enum deft_status s1 = deft_yolo_config_load(write_file("base.txt", base_txt), NULL, 0, &a);
    CHECK(s1 == DEFT_OK, "base.txt loads: %s", deft_last_error());
    enum deft_status s2 = deft_yolo_config_load(write_file("base.yaml", base_yaml), NULL, 0, &b);
    CHECK(s2 == DEFT_OK, "base.yaml loads: %s", deft_last_error());
    if (!s1 && !s2) {
        char *pa = to_string(deft_yolo_config_print, &a, true), *pb = to_string(deft_yolo_config_print, &b, true);
        CHECK(strcmp(pa, pb) == 0, "YAML and protobuf text give the same config\n--- txt\n%s--- yaml\n%s", pa, pb);
        free(pa);
        free(pb);
        CHECK(a.format == DEFT_SPEC_FORMAT_PROTOTXT && b.format == DEFT_SPEC_FORMAT_YAML, "flavours");
        CHECK(b.dataset_config.n_classes == 2 && strcmp(b.dataset_config.class_names[0], "rbc") == 0 &&
                  strcmp(b.dataset_config.class_names[1], "wbc") == 0,
              "classes lower-cased and sorted: rbc, wbc");
        CHECK(b.training_config.optimizer.kind == DEFT_YOLO_OPTIM_SGD &&
                  b.training_config.learning_rate.kind == DEFT_YOLO_LR_SOFT_START_ANNEALING,
              "sgd, soft-start annealing");
        /* defaults where the spec is silent */
        CHECK(b.yolov4_config.box_matching_iou == 0.25 && b.yolov4_config.matching_neutral_box_iou == 0.5 &&
                  b.augmentation_config.saturation == 1.5 && b.augmentation_config.hue == 0 &&
                  b.nms_config.top_k == 200 && b.eval_config.matching_iou_threshold == 0.5 &&
                  b.training_config.checkpoint_interval == 10,
              "defaults");
        check_round_trip(&b, "yaml");
    }
    if (!s1) deft_yolo_config_free(&a);
    if (!s2) deft_yolo_config_free(&b);
    CHECK(deft_alloc_live() == live0, "YAML: no leak");
}

/* ---- --set --------------------------------------------------------------------------------- */

static void test_overrides(void) {
    long live0 = deft_alloc_live();
    const char *p = write_file("ov.txt", base_txt);
    const char *ov[] = {"training_config.num_epochs=12",
                        "yolov4_config.big_anchor_shape=\"[(100, 50), (200, 100)]\"",
                        "training_config.optimizer.adam.beta1=0.8",
                        "dataset_config.target_class_mapping.platelets=Platelets",
                        "dataset_config.data_sources.1.label_directory_path=l2",
                        "dataset_config.data_sources.1.image_directory_path=i2",
                        "dataset_config.data_sources.0.split_list_path=train.txt",
                        "yolov4_config.freeze_blocks=[0, 1]"};
    struct deft_yolo_config c;
    enum deft_status s = deft_yolo_config_load(p, ov, 8, &c);
    CHECK(s == DEFT_OK, "overrides apply: %s", deft_last_error());
    if (!s) {
        CHECK(c.training_config.num_epochs == 12, "num_epochs 12");
        CHECK(c.yolov4_config.n_anchors[0] == 2 && c.yolov4_config.anchors[0][1].w == 200, "anchors replaced");
        CHECK(c.training_config.optimizer.kind == DEFT_YOLO_OPTIM_ADAM && !c.training_config.optimizer.has_sgd &&
                  c.training_config.optimizer.adam.beta1 == 0.8 && c.training_config.optimizer.adam.beta2 == 0.999,
              "optimizer switched to adam (defaults + beta1)");
        CHECK(c.dataset_config.n_classes == 3 && strcmp(c.dataset_config.class_names[0], "platelets") == 0,
              "mapping entry added: platelets, rbc, wbc");
        CHECK(c.dataset_config.n_data_sources == 2 &&
                  strcmp(c.dataset_config.data_sources[1].image_directory_path, "i2") == 0 &&
                  strcmp(c.dataset_config.data_sources[0].split_list_path, "train.txt") == 0,
              "data source appended, split list set");
        CHECK(c.yolov4_config.n_freeze_blocks == 2 && c.yolov4_config.freeze_blocks[1] == 1, "freeze_blocks");
        check_round_trip(&c, "overrides");
        deft_yolo_config_free(&c);
    }
    const char *bad1[] = {"dataset_config.data_sources.5.label_directory_path=x"};
    s = deft_yolo_config_load(p, bad1, 1, &c);
    expect_err("--set index out of range", s, "--set 'dataset_config.data_sources.5", "out of range");
    const char *bad2[] = {"augmentation_config.output_width=100"};
    s = deft_yolo_config_load(p, bad2, 1, &c);
    expect_err("--set width not multiple of 32", s, "--set 'augmentation_config.output_width=100'", "multiple of 32");
    const char *bad3[] = {"yolov4_config.nlayer=18"};
    s = deft_yolo_config_load(p, bad3, 1, &c);
    expect_err("--set typo", s, "--set 'yolov4_config.nlayer=18'", "did you mean 'nlayers'?");
    CHECK(deft_alloc_live() == live0, "overrides: no leak");
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_errors(void) {
    long live0 = deft_alloc_live();
    enum deft_status s;
    CHECK(load_edit("ok.txt", 0, NULL) == DEFT_OK, "base spec is valid: %s", deft_last_error());

    s = load_edit("typo.txt", 7, "  nlayer: 18");
    expect_err("typo", s, "typo.txt:7:3:", "did you mean 'nlayers'?");
    s = load_edit("typo2.txt", 19, "  output_widht: 416");
    expect_err("typo 2", s, "typo2.txt:19:3:", "did you mean 'output_width'?");
    s = load_edit("type.txt", 13, "  batch_size_per_gpu: eight");
    expect_err("wrong type", s, "type.txt:13:23:", "expected an integer");
    s = load_edit("type2.txt", 6, "  arch { name: \"resnet\" }");
    expect_err("block for string", s, "type2.txt:6:", "got a block");
    s = load_edit("syntax.txt", 20, "  output_height: 416 }}");
    expect_err("syntax error", s, "syntax.txt:20:", "no block is open");
    CHECK(s == DEFT_ERR_PARSE, "syntax error is a parse error");
    s = load_edit("syntax2.txt", 6, "  arch: \"resnet");
    expect_err("unterminated string", s, "syntax2.txt:6:", "unterminated");

    s = load_edit("anch.txt", 3, "  big_anchor_shape: \"[(114.94, 60.67), (159.06 114.59)]\"");
    expect_err("bad anchors", s, "anch.txt:3:", "expected ','");
    s = load_edit("anch2.txt", 4, "  mid_anchor_shape: \"[(42.99, -31.91)]\"");
    expect_err("negative anchor", s, "anch2.txt:4:", "must be > 0");
    s = load_edit("anch3.txt", 5, NULL);
    expect_err("3 heads without small anchors", s, "anch3.txt:", "small_anchor_shape is missing");
    s = load_edit("anch4.txt", 3, "  big_anchor_shape: \"[]\"");
    expect_err("empty anchor list", s, "anch4.txt:3:", "empty");

    char *t = edit_line(6, "  arch: \"cspdarknet_tiny\"");
    struct deft_yolo_config c;
    s = deft_yolo_config_load(write_file("tiny_small.txt", t), NULL, 0, &c);
    expect_err("tiny with small anchors", s, "tiny_small.txt:5:", "remove the small anchors");
    free(t);
    s = load_edit("tiny_ok.txt", 5, "  small_grid_xy_extend: 0.1");
    /* resnet with small_grid_xy_extend and no small anchors: anchors missing first */
    expect_err("resnet without small anchors", s, "tiny_ok.txt:", "small_anchor_shape");

    s = load_edit("arch.txt", 6, "  arch: \"resnt\"");
    expect_err("unknown arch", s, "arch.txt:6:", "did you mean 'resnet'?");
    s = load_edit("depth.txt", 7, "  nlayers: 20");
    expect_err("bad depth", s, "depth.txt:7:", "10, 18, 34, 50, 101");

    s = load_edit("w32.txt", 19, "  output_width: 420");
    expect_err("width not multiple of 32", s, "w32.txt:19:", "multiple of 32");
    s = load_edit("h32.txt", 20, "  output_height: 16");
    expect_err("height below 32", s, "h32.txt:20:", "out of range");

    s = load_edit("tfr.txt", 23, "  data_sources { tfrecords_path: \"t*\" label_directory_path: \"l\" image_directory_path: \"i\" }");
    expect_err("tfrecords and labels", s, "tfr.txt:23:", "alternatives");
    s = load_edit("nosrc.txt", 23, NULL);
    expect_err("no data source", s, "nosrc.txt:", "data_sources");
    s = load_edit("noimg.txt", 23, "  data_sources { label_directory_path: \"l\" }");
    expect_err("labels without images", s, "noimg.txt:23:", "image_directory_path");
    s = load_edit("case.txt", 25, "  target_class_mapping { key: \"rbc\" value: \"wbc\" }");
    expect_err("keys equal by case, different classes", s, "case.txt:", "same name once lower-cased");
    s = load_edit("range.txt", 7, "  nlayers: 18 label_smoothing: 0.5");
    expect_err("label smoothing > 0.3", s, "range.txt:7:", "out of range");
    s = load_edit("oneof.txt", 16, "  optimizer { sgd { momentum: 0.9 } adam { } }");
    expect_err("two optimizers", s, "oneof.txt:16:", "alternatives");
    s = load_edit("nooptim.txt", 16, NULL);
    expect_err("no optimizer", s, "nooptim.txt:", "optimizer");
    s = load_edit("act.txt", 7, "  nlayers: 18 activation: \"mihs\"");
    expect_err("bad activation", s, "act.txt:7:", "leaky_relu, relu, mish");
    s = load_edit("models.txt", 16, "  optimizer { sgd { } } pretrain_model_path: \"a\" resume_model_path: \"b\"");
    expect_err("two model paths", s, "models.txt:", "alternatives");
    s = load_edit("cw.txt", 26, "}\nclass_weighting_config { class_weighting { key: \"wbcc\" value: 2 } }");
    expect_err("class weight for unknown class", s, "cw.txt:", "did you mean 'wbc'?");

    static const unsigned char garbage[] = {0x7f, 'E', 'L', 'F', 0x02, 0x00, 0xff, '{'};
    s = deft_yolo_config_parse((const char *)garbage, sizeof garbage, "garbage.txt", DEFT_SPEC_FORMAT_AUTO, NULL, 0, &c);
    expect_err("garbage", s, "garbage.txt:1:", NULL);
    s = deft_yolo_config_load(write_file("bad.yaml", "yolov4_config:\n  arch: [resnet\n"), NULL, 0, &c);
    expect_err("bad YAML", s, "bad.yaml:", NULL);
    s = deft_yolo_config_load("/nonexistent/spec.txt", NULL, 0, &c);
    CHECK(s == DEFT_ERR_NOT_FOUND && deft_status_exit_code(s) == 2, "missing spec file: NOT_FOUND, exit 2");
    CHECK(deft_alloc_live() == live0, "errors: no leak (%ld)", deft_alloc_live() - live0);
}

static void test_anchor_parser(void) {
    struct deft_yolo_anchor a[4];
    int n, at;
    CHECK(deft_yolo_parse_anchors("[(1, 2), (3.5,4e1)]", a, 4, &n, &at) == DEFT_OK && n == 2 && a[1].h == 40,
          "anchors with brackets");
    CHECK(deft_yolo_parse_anchors(" (1,2),(3,4), ", a, 4, &n, &at) == DEFT_OK && n == 2, "no brackets, trailing comma");
    CHECK(deft_yolo_parse_anchors("[(1, 2),]", a, 4, &n, &at) == DEFT_OK && n == 1, "trailing comma in brackets");
    CHECK(deft_yolo_parse_anchors("", a, 4, &n, &at) == DEFT_OK && n == 0, "empty: none");
    CHECK(deft_yolo_parse_anchors("[(1, 2)", a, 4, &n, &at) != DEFT_OK && at == 7, "missing ']' at 7 (%d)", at);
    CHECK(deft_yolo_parse_anchors("[(1, 2)] x", a, 4, &n, &at) != DEFT_OK && at == 9, "trailing text at 9 (%d)", at);
    CHECK(deft_yolo_parse_anchors("(1,1),(1,1),(1,1),(1,1),(1,1)", a, 4, &n, &at) != DEFT_OK, "too many anchors");
    CHECK(deft_yolo_parse_anchors("[(nan, 1)]", a, 4, &n, &at) != DEFT_OK, "nan refused");
    CHECK(deft_yolo_parse_anchors("[(0, 1)]", a, 4, &n, &at) != DEFT_OK, "zero refused");
}

static void test_help(void) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    deft_yolo_config_help(f);
    fclose(f);
    CHECK(strstr(buf, "yolov4_config.big_anchor_shape") && strstr(buf, "yolov4_config.small_grid_xy_extend") &&
              strstr(buf, "training_config.learning_rate.soft_start_cosine_annealing_schedule.max_learning_rate") &&
              strstr(buf, "dataset_config.data_sources[].label_directory_path") &&
              strstr(buf, "dataset_config.target_class_mapping") && strstr(buf, "nms_config.top_k") &&
              strstr(buf, "augmentation_config.mosaic_min_ratio") && strstr(buf, "class_weighting_config") &&
              strstr(buf, "eval_config.average_precision_mode") && strstr(buf, "SAMPLE, INTEGRATE"),
          "help lists every block");
    CHECK(strstr(buf, "(deft extension)") && strstr(buf, "not used by deft yet") && strstr(buf, "(required)"),
          "help tags");
    free(buf);
}

static void fail_loop(const char *what, const char *path, const char *const *ov, int nov) {
    long live0 = deft_alloc_live();
    int k;
    bool clean = true;
    for (k = 1; k < 100000; k++) {
        struct deft_yolo_config c;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_yolo_config_load(path, ov, nov, &c);
        deft_alloc_fail_after(0);
        if (s == DEFT_OK) {
            deft_yolo_config_free(&c);
            break;
        }
        if (s != DEFT_ERR_NOMEM || deft_alloc_live() != live0) {
            clean = false;
            printf("  %s: fail at %d gave %s (%ld live): %s\n", what, k, deft_status_str(s),
                   deft_alloc_live() - live0, deft_last_error());
            break;
        }
    }
    CHECK(clean && k > 10 && k < 100000, "%s: %d allocation failures, all clean", what, k - 1);
}

int main(void) {
    deft_log_set_level(DEFT_LOG_ERROR);
    const char *shared = test_shared_dir();
    test_anchor_parser();
    if (shared) test_tao_specs(shared);
    else test_skip_part("../shared not found: the TAO sample specs are not checked");
    test_yaml_equivalent();
    test_overrides();
    test_errors();
    test_help();
    const char *ov[] = {"training_config.num_epochs=5", "dataset_config.data_sources.1.label_directory_path=x",
                        "dataset_config.data_sources.1.image_directory_path=y",
                        "dataset_config.target_class_mapping.p=P"};
    fail_loop("yaml + overrides", write_file("fail.yaml", base_yaml), ov, 4);
    if (shared) {
        char p[600];
        snprintf(p, sizeof p, "%s/tao_specs/yolo_v4_train_resnet18_kitti.txt", shared);
        fail_loop("TAO yolo_v4", p, NULL, 0);
    }
    return test_summary();
}

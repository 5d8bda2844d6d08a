/* test_detectnet_v2_spec.c - TAO's DetectNet_v2 specs: the four sample specs
 * in ../shared/tao_specs (train, retrain with QAT, inference, dataset_convert)
 * load as they are and give the values written in them; each spec given to
 * the wrong loader is named; bad variants of the TAO texts (a typo, a class
 * missing from one per-class block, an unknown class key, a bad objective, a
 * backbone deft does not build, a width not a multiple of 16, a loss mask
 * filter, HYBRID clustering, a TensorRT inferencer, COCO conversion, a bad
 * partition mode) exit 2 with file:line of the field and its name; the
 * summary, --help-spec and the YAML print round trip; allocation failures
 * are clean statuses. Expected values are the literals of the spec texts. */
#include <string.h>
#include "deft_test.h"
#include "deft/detectnet_v2_spec.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

static char path_buf[512];
static const char *write_file(const char *name, const char *text) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path_buf, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path_buf;
}

/* text with the first `from` replaced by `to`; *line = 1-based line where it starts. */
static char *replace(const char *text, const char *from, const char *to, int *line) {
    const char *p = strstr(text, from);
    if (!p) return NULL;
    size_t a = (size_t)(p - text);
    char *out = malloc(strlen(text) - strlen(from) + strlen(to) + 1);
    memcpy(out, text, a);
    strcpy(out + a, to);
    strcat(out, p + strlen(from));
    int ln = 1;
    for (const char *q = text; q < p; q++) ln += *q == '\n';
    if (line) *line = ln;
    return out;
}

static void expect_fail(const char *what, enum deft_status s, const char *path, int line, const char *f1,
                        const char *f2) {
    const char *m = deft_last_error();
    CHECK(s != DEFT_OK && deft_status_exit_code(s) == 2, "%s: status %s exit %d: %s", what, deft_status_str(s),
          deft_status_exit_code(s), m);
    if (s == DEFT_OK) return;
    char at[600];
    snprintf(at, sizeof at, "%s:%d:", path, line);
    CHECK(line <= 0 || strstr(m, at), "%s: message has '%s': %s", what, at, m);
    CHECK(!f1 || strstr(m, f1), "%s: message has '%s': %s", what, f1, m);
    CHECK(!f2 || strstr(m, f2), "%s: message has '%s': %s", what, f2, m);
}

static const char *train_txt, *infer_txt, *convert_txt;

static int class_index(const struct deft_dnv2_config *c, const char *name) {
    for (int k = 0; k < c->n_classes; k++)
        if (!strcmp(c->class_names[k], name)) return k;
    return -1;
}

static void test_train(const char *path, bool qat) {
    struct deft_dnv2_config c;
    enum deft_status s = deft_dnv2_config_load(path, NULL, 0, &c);
    CHECK(s == DEFT_OK, "%s loads: %s", path, deft_last_error());
    if (s) return;
    CHECK(c.random_seed == 42, "random_seed");
    CHECK(c.n_classes == 3 && !strcmp(c.class_names[0], "car") && !strcmp(c.class_names[1], "cyclist") &&
              !strcmp(c.class_names[2], "pedestrian"), "classes in cost_function_config order");
    const struct deft_dnv2_model_config *m = &c.model_config;
    CHECK(!strcmp(m->arch, "resnet") && m->num_layers == 18 && m->use_batch_norm, "model_config");
    CHECK_NEAR(m->objective_set.bbox.scale, 35.0, 1e-9, "bbox scale");
    CHECK_NEAR(m->objective_set.bbox.offset, 0.5, 1e-9, "bbox offset");
    CHECK(m->objective_set.has_cov && m->objective_set.has_bbox, "objective_set");
    CHECK(m->load_graph == qat && c.training_config.enable_qat == qat, "load_graph / enable_qat %d", qat);
    CHECK(strstr(m->pretrained_model_file, qat ? "resnet18_nopool_bn_detectnet_v2_pruned.hdf5" : "resnet18.hdf5"),
          "pretrained_model_file %s", m->pretrained_model_file);
    const struct deft_dnv2_preprocessing *p = &c.augmentation_config.preprocessing;
    CHECK(p->output_image_width == 1248 && p->output_image_height == 384 && p->output_image_channel == 3, "input");
    CHECK_NEAR(c.augmentation_config.color_augmentation.saturation_shift_max, 0.20000000298, 1e-12, "saturation");
    CHECK_NEAR(c.augmentation_config.spatial_augmentation.translate_max_x, 8.0, 0, "translate");
    const struct deft_dnv2_dataset_config *d = &c.dataset_config;
    CHECK(d->n_data_sources == 1 && strstr(d->data_sources[0].tfrecords_path, "kitti_trainval/*") &&
              !strcmp(d->data_sources[0].image_directory_path, "/workspace/tao-experiments/data/training"),
          "data source");
    CHECK(d->n_target_class_mapping == 5 && !strcmp(d->target_class_mapping[3].key, "person_sitting") &&
              !strcmp(d->target_class_mapping[3].value, "pedestrian"), "mapping");
    CHECK(d->has_validation_fold && d->validation_fold == 0 && !d->has_validation_data_source, "validation_fold");
    CHECK(!strcmp(d->image_extension, "png"), "image_extension");
    int cy = class_index(&c, "cyclist"), ped = class_index(&c, "pedestrian");
    const struct deft_dnv2_target_class *tc = &c.cost_function_config.target_classes[cy];
    CHECK(tc->class_weight == 8.0 && tc->n_objectives == 2 && !strcmp(tc->objectives[1].name, "bbox") &&
              tc->objectives[1].initial_weight == 10.0 && tc->objectives[1].weight_target == 1.0, "cyclist cost");
    CHECK_NEAR(c.cost_function_config.max_objective_weight, 0.999899983406, 1e-12, "max_objective_weight");
    const struct deft_dnv2_raster_class *r = &c.bbox_rasterizer_config.target_class_config[c.raster_of[0]].value;
    CHECK_NEAR(r->cov_radius_x, 0.40000000596, 1e-12, "car raster radius");
    CHECK_NEAR(c.bbox_rasterizer_config.deadzone_radius, 0.400000154972, 1e-12, "deadzone");
    const struct deft_dnv2_clustering_config *cl =
        &c.postprocessing_config.target_class_config[c.postproc_of[ped]].value.clustering_config;
    CHECK_NEAR(cl->dbscan_eps, 0.230000004172, 1e-12, "pedestrian eps");
    CHECK_NEAR(cl->coverage_threshold, 0.00749999983236, 1e-12, "pedestrian coverage threshold");
    CHECK(cl->clustering_algorithm == DEFT_DNV2_DBSCAN && cl->dbscan_min_samples == 1 &&
              cl->minimum_bounding_box_height == 20, "clustering");
    const struct deft_dnv2_training_config *t = &c.training_config;
    CHECK(t->batch_size_per_gpu == 4 && t->num_epochs == 120 && t->checkpoint_interval == 10, "training");
    CHECK(t->learning_rate.kind == DEFT_DNV2_LR_SOFT_START_ANNEALING &&
              t->learning_rate.soft_start_annealing_schedule.max_learning_rate == 5e-05, "lr");
    CHECK(t->regularizer.type == DEFT_DNV2_REG_L1 && t->optimizer.has_adam, "regularizer, adam");
    CHECK_NEAR(t->optimizer.adam.beta1, 0.899999976158, 1e-12, "beta1");
    const struct deft_dnv2_evaluation_config *e = &c.evaluation_config;
    CHECK(e->average_precision_mode == DEFT_DNV2_AP_INTEGRATE && e->first_validation_epoch == 30 &&
              e->n_evaluation_box_config == 3 && e->evaluation_box_config[0].value.minimum_width == 10, "evaluation");
    CHECK_NEAR(e->minimum_detection_ground_truth_overlap[0].value, 0.699999988079, 1e-12, "car IoU");
    CHECK(strstr(c.ignored_fields, "visualizer") && strstr(c.ignored_fields, "cost_scaling"),
          "ignored fields listed: %s", c.ignored_fields);
    /* summary */
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    deft_dnv2_config_summary(&c, f);
    fclose(f);
    CHECK(strstr(buf, "1248 x 384 x 3") && strstr(buf, "grid 78 x 24") && strstr(buf, "resnet18") &&
              strstr(buf, "1 cyclist") && strstr(buf, "eps 0.15") && strstr(buf, "fold 0") &&
              strstr(buf, "no TFRecords") && strstr(buf, "INTEGRATE"), "summary:\n%s", buf);
    free(buf);
    /* YAML print -> reload gives the same summary */
    buf = NULL;
    f = open_memstream(&buf, &n);
    deft_dnv2_config_print(&c, f);
    fclose(f);
    struct deft_dnv2_config y;
    s = deft_dnv2_config_load(write_file("round.yaml", buf), NULL, 0, &y);
    CHECK(s == DEFT_OK, "printed YAML reloads: %s\n%s", deft_last_error(), buf);
    free(buf);
    if (!s) {
        char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        FILE *fa = open_memstream(&a, &na), *fb = open_memstream(&b, &nb);
        deft_dnv2_config_summary(&c, fa);
        deft_dnv2_config_summary(&y, fb);
        fclose(fa);
        fclose(fb);
        /* the first line names the file; "not used" lists what each text wrote */
        char *a2 = strchr(a, '\n'), *b2 = strchr(b, '\n'), *ua = strstr(a, "  not used"), *ub = strstr(b, "  not used");
        if (ua) *ua = 0;
        if (ub) *ub = 0;
        CHECK(a2 && b2 && !strcmp(a2, b2), "round trip summary:\n%s\n---\n%s", a, b);
        free(a);
        free(b);
        deft_dnv2_config_free(&y);
    }
    deft_dnv2_config_free(&c);
}

static void test_inference(const char *path) {
    struct deft_dnv2_infer_config c;
    enum deft_status s = deft_dnv2_infer_config_load(path, NULL, 0, &c);
    CHECK(s == DEFT_OK, "%s loads: %s", path, deft_last_error());
    if (s) return;
    const struct deft_dnv2_inferencer_config *ic = &c.inferencer_config;
    CHECK(ic->n_target_classes == 3 && !strcmp(ic->target_classes[2], "pedestrian"), "target_classes");
    CHECK(ic->image_width == 1248 && ic->image_height == 384 && ic->image_channels == 3 && ic->batch_size == 16,
          "input");
    CHECK(ic->has_tlt_config && strstr(ic->tlt_config.model, "resnet18_detector_pruned.hdf5"), "tlt model");
    const struct deft_dnv2_bbox_handler_config *bh = &c.bbox_handler_config;
    CHECK(bh->kitti_dump && !bh->disable_overlay && bh->overlay_linewidth == 2 &&
              bh->n_classwise_bbox_handler_config == 4, "bbox_handler_config");
    for (int k = 0; k < 3; k++)
        CHECK(c.handler_of[k] == k, "class %d has its own entry (%d)", k, c.handler_of[k]);
    const struct deft_dnv2_classwise_bbox *ped = &bh->classwise_bbox_handler_config[2].value;
    CHECK(ped->bbox_color.R == 255 && ped->bbox_color.G == 0 && !strcmp(ped->output_map, "pedestrian") &&
              !strcmp(ped->confidence_model, "aggregate_cov") && ped->clustering_config.minimum_bounding_box_height == 4,
          "pedestrian handler");
    CHECK_NEAR(ped->clustering_config.dbscan_eps, 0.3, 1e-12, "eps");
    deft_dnv2_infer_config_free(&c);
}

static void test_convert(const char *path) {
    struct deft_dnv2_convert_config c;
    enum deft_status s = deft_dnv2_convert_config_load(path, NULL, 0, &c);
    CHECK(s == DEFT_OK, "%s loads: %s", path, deft_last_error());
    if (s) return;
    const struct deft_dnv2_kitti_config *k = &c.kitti_config;
    CHECK(c.has_kitti_config && !strcmp(k->root_directory_path, "/workspace/tao-experiments/data/training") &&
              !strcmp(k->image_dir_name, "image_2") && !strcmp(k->label_dir_name, "label_2") &&
              !strcmp(k->image_extension, ".png") && !strcmp(k->partition_mode, "random") &&
              k->num_partitions == 2 && k->val_split == 14 && k->num_shards == 10, "kitti_config");
    CHECK(!strcmp(c.image_directory_path, "/workspace/tao-experiments/data/training"), "image_directory_path");
    CHECK(strstr(c.ignored_fields, "num_shards"), "num_shards noted: %s", c.ignored_fields);
    deft_dnv2_convert_config_free(&c);
}

static void test_wrong_kind(const char *train, const char *infer, const char *convert) {
    struct deft_dnv2_config c;
    struct deft_dnv2_infer_config i;
    struct deft_dnv2_convert_config v;
    expect_fail("inference spec to train", deft_dnv2_config_load(infer, NULL, 0, &c), infer, 0, "inference spec",
                "detectnet_v2 inference -e");
    expect_fail("convert spec to train", deft_dnv2_config_load(convert, NULL, 0, &c), convert, 0,
                "dataset_convert spec", NULL);
    expect_fail("train spec to inference", deft_dnv2_infer_config_load(train, NULL, 0, &i), train, 0,
                "experiment spec", NULL);
    expect_fail("train spec to convert", deft_dnv2_convert_config_load(train, NULL, 0, &v), train, 0,
                "experiment spec", NULL);
}

enum which { TRAIN, INFER, CONVERT };

/* One bad variant: `from` -> `to` in the spec text; the error names file:line and f1/f2. */
static void bad(enum which w, const char *what, const char *from, const char *to, int line_delta, const char *f1,
                const char *f2) {
    const char *base = w == TRAIN ? train_txt : w == INFER ? infer_txt : convert_txt;
    int line = 0;
    char *t = replace(base, from, to, &line);
    CHECK(t != NULL, "%s: '%s' is in the spec", what, from);
    if (!t) return;
    char name[64];
    snprintf(name, sizeof name, "bad_%d.txt", line);
    const char *p = write_file(name, t);
    enum deft_status s;
    if (w == TRAIN) {
        struct deft_dnv2_config c;
        s = deft_dnv2_config_load(p, NULL, 0, &c);
        if (!s) deft_dnv2_config_free(&c);
    } else if (w == INFER) {
        struct deft_dnv2_infer_config c;
        s = deft_dnv2_infer_config_load(p, NULL, 0, &c);
        if (!s) deft_dnv2_infer_config_free(&c);
    } else {
        struct deft_dnv2_convert_config c;
        s = deft_dnv2_convert_config_load(p, NULL, 0, &c);
        if (!s) deft_dnv2_convert_config_free(&c);
    }
    expect_fail(what, s, p, line_delta < 0 ? 0 : line + line_delta, f1, f2);
    free(t);
}

static void test_bad_variants(void) {
    bad(TRAIN, "typo", "dbscan_eps: 0.20000000298", "dbscan_epss: 0.2", 0, "dbscan_epss", "did you mean 'dbscan_eps'");
    bad(TRAIN, "class missing in the rasterizer",
        "  target_class_config {\n    key: \"cyclist\"\n    value {\n      cov_center_x: 0.5\n      cov_center_y: 0.5\n"
        "      cov_radius_x: 1.0\n      cov_radius_y: 1.0\n      bbox_min_radius: 1.0\n    }\n  }\n", "", -1,
        "bbox_rasterizer_config.target_class_config has no entry for class 'cyclist'", NULL);
    bad(TRAIN, "unknown class key in postprocessing", "key: \"cyclist\"\n    value {\n      clustering_config",
        "key: \"cyclists\"\n    value {\n      clustering_config", 0,
        "'cyclists' is not a class of cost_function_config.target_classes", "did you mean 'cyclist'");
    bad(TRAIN, "objective name", "name: \"cov\"", "name: \"coverage\"", 0, "objective 'coverage'", "cov, bbox");
    bad(TRAIN, "class twice", "name: \"pedestrian\"", "name: \"car\"", 0, "'car' is given twice", NULL);
    bad(TRAIN, "backbone deft does not build", "arch: \"resnet\"", "arch: \"vgg\"", 0, "model_config.arch 'vgg'",
        "resnet");
    bad(TRAIN, "unknown backbone", "arch: \"resnet\"", "arch: \"resnt\"", 0, "not a DetectNet_v2 backbone",
        "did you mean 'resnet'");
    bad(TRAIN, "resnet depth", "num_layers: 18", "num_layers: 19", 0, "num_layers 19", NULL);
    bad(TRAIN, "no batch norm", "use_batch_norm: true", "use_batch_norm: false", 0, "use_batch_norm", NULL);
    bad(TRAIN, "all_projections", "use_batch_norm: true", "use_batch_norm: true\n  all_projections: true", 1,
        "all_projections", NULL);
    bad(TRAIN, "width not a multiple of 16", "output_image_width: 1248", "output_image_width: 1250", 0,
        "output_image_width = 1250", "multiple of 16");
    bad(TRAIN, "loss mask filter", "random_seed: 42\n", "random_seed: 42\nloss_mask_label_filter {\n  mask_multiplier: 0\n}\n",
        1, "loss_mask_label_filter", "not supported");
    bad(TRAIN, "HYBRID", "clustering_algorithm: DBSCAN", "clustering_algorithm: HYBRID", 0, "HYBRID", NULL);
    bad(TRAIN, "confidence model", "minimum_bounding_box_height: 20\n      }\n",
        "minimum_bounding_box_height: 20\n      }\n      confidence_config { confidence_model_filename: \"car.uff\" }\n",
        2, "confidence_model_filename", NULL);
    bad(TRAIN, "out of range", "cov_center_x: 0.5", "cov_center_x: 1.5", 0, "cov_center_x", NULL);
    bad(TRAIN, "annealing before soft start", "annealing: 0.699999988079", "annealing: 0.05", 0, "annealing", NULL);
    bad(TRAIN, "two validation splits", "validation_fold: 0",
        "validation_fold: 0\n  validation_data_source { image_directory_path: \"v\" }", 1, "alternatives", NULL);
    bad(INFER, "TensorRT inferencer", "tlt_config{\n    model: \"/workspace/tao-experiments/detectnet_v2/experiment_dir_retrain/weights/resnet18_detector_pruned.hdf5\"\n  }",
        "tensorrt_config{\n    etlt_model: \"m.etlt\"\n  }", 0, "inferencer_config.tensorrt_config", "tlt_config");
    bad(INFER, "handler for an unknown class", "key:\"cyclist\"", "key:\"bicycle\"", 0,
        "'bicycle' is not a class of inferencer_config.target_classes", NULL);
    bad(INFER, "confidence model", "confidence_model: \"aggregate_cov\"\n      output_map: \"car\"",
        "confidence_model: \"learned\"\n      output_map: \"car\"", 0, "confidence_model 'learned'", NULL);
    bad(INFER, "height not a multiple of 16", "image_height: 384", "image_height: 380", 0, "image_height", NULL);
    bad(CONVERT, "COCO", "kitti_config {\n  root_directory_path: \"/workspace/tao-experiments/data/training\"\n"
        "  image_dir_name: \"image_2\"\n  label_dir_name: \"label_2\"\n  image_extension: \".png\"\n"
        "  partition_mode: \"random\"\n  num_partitions: 2\n  val_split: 14\n  num_shards: 10\n}",
        "coco_config {\n  root_directory_path: \"c\"\n}", 0, "coco_config", "KITTI");
    bad(CONVERT, "KITTI and COCO", "kitti_config {", "coco_config {\n  root_directory_path: \"c\"\n}\nkitti_config {",
        0, "alternatives", NULL);
    bad(CONVERT, "partition mode", "partition_mode: \"random\"", "partition_mode: \"shuffle\"", 0,
        "partition_mode 'shuffle'", NULL);
    bad(CONVERT, "random with 3 partitions", "num_partitions: 2", "num_partitions: 3", 0, "num_partitions 3", NULL);
    bad(CONVERT, "typo", "val_split: 14", "val_splt: 14", 0, "val_splt", "did you mean 'val_split'");
}

static void test_help(void) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    deft_dnv2_config_help(f);
    fclose(f);
    CHECK(strstr(buf, "experiment spec") && strstr(buf, "inference spec") && strstr(buf, "dataset_convert spec") &&
              strstr(buf, "cost_function_config.target_classes[].objectives[].weight_target") &&
              strstr(buf, "postprocessing_config.target_class_config[].value.clustering_config.dbscan_eps") &&
              strstr(buf, "bbox_handler_config.classwise_bbox_handler_config") &&
              strstr(buf, "kitti_config.val_split"), "help lists the three schemas");
    free(buf);
}

static void fail_loop(const char *what, const char *path) {
    long live0 = deft_alloc_live();
    int k;
    bool clean = true;
    for (k = 1; k < 200000; k++) {
        struct deft_dnv2_config c;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_dnv2_config_load(path, NULL, 0, &c);
        deft_alloc_fail_after(0);
        if (s == DEFT_OK) {
            deft_dnv2_config_free(&c);
            break;
        }
        if (s != DEFT_ERR_NOMEM || deft_alloc_live() != live0) {
            clean = false;
            printf("  %s: fail at %d gave %s (%ld live): %s\n", what, k, deft_status_str(s),
                   deft_alloc_live() - live0, deft_last_error());
            break;
        }
    }
    CHECK(clean && k > 10 && k < 200000, "%s: %d allocation failures, all clean", what, k - 1);
}

int main(void) {
    deft_log_set_level(DEFT_LOG_ERROR);
    const char *shared = test_shared_dir();
    if (!shared) test_skip("../shared not found: the TAO sample specs are this test's input");
    char tp[600], qp[600], ip[600], cp[600];
    snprintf(tp, sizeof tp, "%s/tao_specs/detectnet_v2_train_resnet18_kitti.txt", shared);
    snprintf(qp, sizeof qp, "%s/tao_specs/detectnet_v2_retrain_resnet18_kitti_qat.txt", shared);
    snprintf(ip, sizeof ip, "%s/tao_specs/detectnet_v2_inference_kitti_tlt.txt", shared);
    snprintf(cp, sizeof cp, "%s/tao_specs/detectnet_v2_tfrecords_kitti_trainval.txt", shared);
    char *t = slurp(tp), *i = slurp(ip), *c = slurp(cp);
    if (!t || !i || !c) test_skip("the DetectNet_v2 TAO sample specs are missing");
    train_txt = t, infer_txt = i, convert_txt = c;
    test_train(tp, false);
    test_train(qp, true);
    test_inference(ip);
    test_convert(cp);
    test_wrong_kind(tp, ip, cp);
    test_bad_variants();
    test_help();
    fail_loop("TAO detectnet_v2 train spec", tp);
    free(t);
    free(i);
    free(c);
    return test_summary();
}

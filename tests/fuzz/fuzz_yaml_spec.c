/* fuzz_yaml_spec.c - libFuzzer target: the YAML spec reader (libyaml events
 * -> tree) and both YAML flavours of the classification schema (deft native
 * and TAO PyTorch) on arbitrary bytes: a status, never a crash, no leak;
 * accepted configs print and reload to the same config. The first byte, when
 * it is a digit, picks a --set override so that path is fuzzed too. The
 * YOLOv4 schema runs on the same input (its own overrides).
 * Build: as fuzz_prototxt.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/spec.h"
#include "deft/yolo_spec.h"
#include "spec/spec_impl.h"

static const char *const sets[] = {
    "train_config.n_epochs=3", "train_config.optimizer.adam.lr=0.1", "model_config.freeze_blocks=[0, 2]",
    "train_config.image_mean.r=1", "model_config.arch=\"vgg\"", "train_config.lr_config.cosine.soft_start=0.1",
};

static const char *const yolo_sets[] = {
    "training_config.num_epochs=3", "training_config.optimizer.sgd.momentum=0.5",
    "yolov4_config.freeze_blocks=[0, 2]", "dataset_config.target_class_mapping.van=car",
    "dataset_config.data_sources.0.label_directory_path=l", "yolov4_config.small_anchor_shape=\"[(1, 2)]\"",
};

__attribute__((noinline)) static char *print_body(const struct deft_cls_config *c, size_t *n) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, n);
    if (!f) abort();
    deft_cls_config_print(c, f);
    fclose(f);
    return buf;
}

/* The YOLOv4 schema on the same bytes: accepted configs print and reload to
 * the same config too. */
__attribute__((noinline)) static char *yolo_body(const struct deft_yolo_config *c, size_t *n) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, n);
    if (!f) abort();
    deft_yolo_config_print(c, f);
    fclose(f);
    return buf;
}

static void yolo_round_trip(const unsigned char *data, size_t size, const char *const *ov, int nov) {
    struct deft_yolo_config c;
    if (deft_yolo_config_parse((const char *)data, size, "fuzz.yaml", DEFT_SPEC_FORMAT_YAML, ov, nov, &c) != DEFT_OK)
        return;
    size_t n1 = 0, n2 = 0;
    char *a = yolo_body(&c, &n1);
    struct deft_yolo_config r;
    if (deft_yolo_config_parse(a, n1, "printed.yaml", DEFT_SPEC_FORMAT_YAML, NULL, 0, &r) != DEFT_OK) abort();
    char *b = yolo_body(&r, &n2);
    const char *ba = strchr(a, '\n'), *bb = strchr(b, '\n'); /* the first line names the source */
    if (!ba || !bb || strcmp(ba, bb) != 0) abort();
    char *sum = NULL;
    size_t ns = 0;
    FILE *f = open_memstream(&sum, &ns);
    if (!f) abort();
    deft_yolo_config_summary(&c, f);
    fclose(f);
    free(sum);
    free(a);
    free(b);
    deft_yolo_config_free(&r);
    deft_yolo_config_free(&c);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static int quiet;
    if (!quiet) deft_log_set_level(DEFT_LOG_ERROR), quiet = 1;
    long live = deft_alloc_live();
    struct deft_spec_node *t = NULL;
    if (deft_spec_parse_yaml((const char *)data, size, "fuzz.yaml", &t) == DEFT_OK && !t) abort();
    deft_spec_node_free(t);

    const char *const *ov = NULL;
    int nov = 0;
    if (size > 0 && data[0] >= '0' && data[0] <= '5') {
        ov = &sets[data[0] - '0'];
        nov = 1;
    }
    struct deft_cls_config c;
    if (deft_cls_config_parse((const char *)data, size, "fuzz.yaml", DEFT_SPEC_FORMAT_YAML, ov, nov, &c) ==
        DEFT_OK) {
        size_t n1 = 0, n2 = 0;
        char *a = print_body(&c, &n1);
        struct deft_cls_config r;
        if (deft_cls_config_parse(a, n1, "printed.yaml", DEFT_SPEC_FORMAT_YAML, NULL, 0, &r) != DEFT_OK)
            abort();
        char *b = print_body(&r, &n2);
        const char *ba = strchr(a, '\n'), *bb = strchr(b, '\n');
        if (!ba || !bb || strcmp(ba, bb) != 0) abort();
        free(a);
        free(b);
        deft_cls_config_free(&r);
        deft_cls_config_free(&c);
    }
    yolo_round_trip(data, size, nov ? &yolo_sets[data[0] - '0'] : NULL, nov);
    if (deft_alloc_live() != live) abort();
    return 0;
}

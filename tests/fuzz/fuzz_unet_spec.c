/* fuzz_unet_spec.c - libFuzzer target: the UNet schema (TAO unet protobuf
 * text and deft YAML) on arbitrary bytes, read as both flavours: a status,
 * never a crash, no leak; accepted configs print and reload to the same
 * config, and their summary and path check run. The first byte, when it is
 * a digit, picks a --set override so that path is fuzzed too.
 * Build: as fuzz_prototxt.c (make fuzz T=unet_spec). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/unet_spec.h"
#include "spec/spec_impl.h"

static const char *const sets[] = {
    "training_config.epochs=3",
    "model_config.arch=\"vgg\"",
    "dataset_config.data_class_config.target_classes.0.label_id=7",
    "dataset_config.data_class_config.ignore_label_id=1",
    "training_config.lr_scheduler.cosine_decay.decay_steps=9",
    "model_config.freeze_blocks=[0, 2]",
    "dataset_config.input_image_type=grayscale",
    "dataset_config.train_data_sources.data_source.0.image_path=a.txt",
    "model_config.activation=sigmoid",
    "dataset_config.data_class_config.target_classes.2.mapping_class=x",
};

__attribute__((noinline)) static char *body(const struct deft_unet_config *c, void (*fn)(const struct deft_unet_config *,
                                                                                          FILE *)) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) abort();
    fn(c, f);
    fclose(f);
    return buf;
}

static void round_trip(const unsigned char *data, size_t size, enum deft_spec_format fmt, const char *const *ov,
                       int nov) {
    struct deft_unet_config c;
    const char *name = fmt == DEFT_SPEC_FORMAT_YAML ? "fuzz.yaml" : "fuzz.txt";
    if (deft_unet_config_parse((const char *)data, size, name, fmt, ov, nov, &c) != DEFT_OK) return;
    char *a = body(&c, deft_unet_config_print);
    struct deft_unet_config r;
    if (deft_unet_config_parse(a, strlen(a), "printed.yaml", DEFT_SPEC_FORMAT_YAML, NULL, 0, &r) != DEFT_OK) abort();
    char *b = body(&r, deft_unet_config_print);
    const char *ba = strchr(a, '\n'), *bb = strchr(b, '\n'); /* the first line names the source */
    if (!ba || !bb || strcmp(ba, bb) != 0) abort();
    if (memcmp(c.dataset_config.label_to_class, r.dataset_config.label_to_class,
               sizeof c.dataset_config.label_to_class) != 0 ||
        c.dataset_config.n_classes != r.dataset_config.n_classes)
        abort();
    /* every label id maps to a class, the ignore mark or unknown */
    for (int v = 0; v <= DEFT_UNET_MAX_LABEL_ID; v++) {
        int k = c.dataset_config.label_to_class[v];
        if (k < DEFT_UNET_LABEL_IGNORE || k >= c.dataset_config.n_classes) abort();
    }
    free(body(&c, deft_unet_config_summary));
    if (deft_unet_config_validate_paths(&c, false) == DEFT_OK && !*c.dataset_config.train_images_path &&
        !c.dataset_config.train_data_sources.n_data_source)
        abort(); /* no training data is never "all paths exist" */
    free(a);
    free(b);
    deft_unet_config_free(&r);
    deft_unet_config_free(&c);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static int quiet;
    if (!quiet) deft_log_set_level(DEFT_LOG_ERROR), quiet = 1;
    long live = deft_alloc_live();
    const char *const *ov = NULL;
    int nov = 0;
    if (size > 0 && data[0] >= '0' && data[0] <= '9') {
        ov = &sets[data[0] - '0'];
        nov = 1;
    }
    round_trip(data, size, DEFT_SPEC_FORMAT_PROTOTXT, ov, nov);
    round_trip(data, size, DEFT_SPEC_FORMAT_YAML, ov, nov);
    if (deft_alloc_live() != live) abort();
    return 0;
}

/* fuzz_yaml_spec.c - libFuzzer target: the YAML spec reader (libyaml events
 * -> tree) and both YAML flavours of the classification schema (deft native
 * and TAO PyTorch) on arbitrary bytes: a status, never a crash, no leak;
 * accepted configs print and reload to the same config. The first byte, when
 * it is a digit, picks a --set override so that path is fuzzed too.
 * Build: as fuzz_prototxt.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/spec.h"
#include "spec/spec_impl.h"

static const char *const sets[] = {
    "train_config.n_epochs=3", "train_config.optimizer.adam.lr=0.1", "model_config.freeze_blocks=[0, 2]",
    "train_config.image_mean.r=1", "model_config.arch=\"vgg\"", "train_config.lr_config.cosine.soft_start=0.1",
};

__attribute__((noinline)) static char *print_body(const struct deft_cls_config *c, size_t *n) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, n);
    if (!f) abort();
    deft_cls_config_print(c, f);
    fclose(f);
    return buf;
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
    if (deft_alloc_live() != live) abort();
    return 0;
}

/* fuzz_prototxt.c - libFuzzer target: the protobuf-text spec parser and the
 * classification schema on arbitrary bytes: a status (never a crash), no
 * leak; accepted configs print and reload to the same config. The YOLOv4
 * schema runs on the same input.
 * Build: clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined
 * -Iinclude -Isrc src/core/alloc.c src/core/error.c src/core/log.c, the .c files of
 * src/spec, this file, -lyaml -lm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/spec.h"
#include "deft/yolo_spec.h"
#include "spec/spec_impl.h"

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
    if (deft_yolo_config_parse((const char *)data, size, "fuzz.txt", DEFT_SPEC_FORMAT_PROTOTXT, ov, nov, &c) != DEFT_OK)
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
    if (deft_spec_parse_prototxt((const char *)data, size, "fuzz.txt", &t) == DEFT_OK && !t) abort();
    deft_spec_node_free(t);

    struct deft_cls_config c;
    if (deft_cls_config_parse((const char *)data, size, "fuzz.txt", DEFT_SPEC_FORMAT_PROTOTXT, NULL, 0,
                              &c) == DEFT_OK) {
        size_t n1 = 0, n2 = 0;
        char *a = print_body(&c, &n1);
        struct deft_cls_config r;
        /* the printed YAML must reload, and print the same (first line names the source) */
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
    yolo_round_trip(data, size, NULL, 0);
    if (deft_alloc_live() != live) abort();
    return 0;
}

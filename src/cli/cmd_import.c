/* cmd_import.c - `deft model import`: pretrained weights (PyTorch .pth/.pt,
 * safetensors; format detected from the content) into a safetensors file of
 * named tensors, or, with --arch, into a deft model file ready for training,
 * evaluation and export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/deft.h"
#include "deft/io.h"
#include "deft/models.h"
#include "deft/runtime.h"
#include "cli/args.h"
#include "cli/cli.h"

/* torchvision's ImageNet preprocessing (what its pretrained weights expect). */
static const char *const torchvision_preprocess =
    "{\"channel_order\": \"rgb\", \"divisor\": 255, \"mean\": [0.485, 0.456, 0.406], "
    "\"std\": [0.229, 0.224, 0.225], \"height\": 224, \"width\": 224, "
    "\"resize\": \"center_crop\", \"crop_padding\": 32}";

static int import_usage(FILE *f) {
    fprintf(f,
            "usage: deft model import -i WEIGHTS -o OUT.safetensors [--arch NAME] [--num_classes N]\n"
            "                         [--class_names A,B,...] [--skip_mismatch]\n\n"
            "  Read pretrained weights without Python: a PyTorch torch.save file (.pth/.pt,\n"
            "  zip or legacy format; only tensor state dicts, nothing in the file is ever\n"
            "  executed) or a .safetensors file. The format is detected from the content.\n\n"
            "  without --arch  write the tensors as a plain .safetensors (names as in the file,\n"
            "                  a DataParallel 'module.' prefix removed)\n"
            "  --arch NAME     build that deft architecture (e.g. resnet18; torchvision names)\n"
            "                  and load the tensors into it by name, checking every shape; write\n"
            "                  a deft model file with torchvision's ImageNet preprocessing\n"
            "  --num_classes N classifier size (default: read from the file's classifier tensor)\n"
            "  --class_names   comma-separated class names (default class_0, class_1, ...)\n"
            "  --skip_mismatch keep the architecture's initial values for tensors whose shape\n"
            "                  differs (e.g. a new classifier head) instead of failing\n");
    return f == stdout ? 0 : 2;
}

/* The classifier size the file implies for arch: build the graph at 1 and 2
 * classes (shapes only, no data), find a param whose shape follows the class
 * count and read that dimension from the file's tensor of the same name.
 * 0 when the file has no such tensor. */
static int infer_num_classes(const char *arch, const struct deft_safetensors *st) {
    struct deft_graph *g1 = NULL, *g2 = NULL;
    int n = 0;
    if (deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 1}, &g1, NULL, NULL) ||
        deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = 2}, &g2, NULL, NULL))
        goto done;
    for (int v = 0; v < deft_graph_num_values(g1) && !n; v++) {
        const struct deft_value *a = deft_graph_value(g1, v);
        if (a->kind != DEFT_VALUE_PARAM) continue;
        int w = deft_graph_find_value(g2, a->name);
        if (w < 0) continue;
        const struct deft_value *b = deft_graph_value(g2, w);
        if (b->shape.ndim != a->shape.ndim || deft_shape_equal(&a->shape, &b->shape)) continue;
        const struct deft_tensor *t = deft_safetensors_find(st, a->name);
        if (!t || t->shape.ndim != a->shape.ndim) continue;
        for (int k = 0; k < a->shape.ndim; k++)
            if (a->shape.d[k] != b->shape.d[k] && t->shape.d[k] >= 1 && t->shape.d[k] <= 1000000) {
                n = (int)t->shape.d[k];
                break;
            }
    }
done:
    deft_graph_free(g1);
    deft_graph_free(g2);
    deft_clear_error();
    return n;
}

/* ["class_0", ...] or the given comma-separated names as a JSON array. */
static char *class_names_json(const char *list, int n) {
    cJSON *a = cJSON_CreateArray();
    if (!a) return NULL;
    if (list) {
        const char *p = list;
        for (;;) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            char *nm = malloc(len + 1);
            if (!nm) break;
            memcpy(nm, p, len);
            nm[len] = 0;
            cJSON_AddItemToArray(a, cJSON_CreateString(nm));
            free(nm);
            if (!c) break;
            p = c + 1;
        }
    } else {
        for (int i = 0; i < n; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "class_%d", i);
            cJSON_AddItemToArray(a, cJSON_CreateString(nm));
        }
    }
    char *txt = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return txt;
}

static int count_names(const char *list) {
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    return n;
}

static int import_into_arch(const char *in, const char *out, const char *arch, int num_classes,
                            const char *class_names, bool skip_mismatch,
                            const struct deft_safetensors *st) {
    struct deft_graph *g = NULL;
    struct deft_runtime *rt = NULL;
    char *cn = NULL;
    int rc = 0;
    enum deft_status s;
    bool inferred = false;
    if (!num_classes && class_names) num_classes = count_names(class_names);
    if (!num_classes) {
        num_classes = infer_num_classes(arch, st);
        inferred = num_classes > 0;
    }
    if (class_names && num_classes != count_names(class_names)) {
        fprintf(stderr, "deft model import: --class_names lists %d names but the model has %d "
                "classes\n", count_names(class_names), num_classes);
        return 2;
    }
    if ((s = deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = num_classes,
                                                        .training = false},
                              &g, NULL, NULL)))
        return cli_fail(s, NULL);
    const char *nc_meta = deft_graph_get_meta(g, "num_classes");
    int classes = nc_meta ? atoi(nc_meta) : num_classes;
    if (inferred) printf("num_classes %d (from the file's classifier)\n", classes);
    cn = class_names_json(class_names, classes);
    if (!cn) {
        rc = cli_fail(deft_set_error(DEFT_ERR_NOMEM, "out of memory"), NULL);
        goto done;
    }
    if ((s = deft_graph_set_meta(g, "preprocess", torchvision_preprocess)) ||
        (s = deft_graph_set_meta(g, "class_names", cn)) ||
        (s = deft_runtime_create(g, &(struct deft_runtime_opts){0}, &rt)) ||
        (s = deft_runtime_init_params(rt, 42))) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    int copied = 0;
    s = deft_model_copy_to_runtime(st, rt, skip_mismatch ? DEFT_LOAD_SKIP_MISMATCH : 0, &copied);
    if (s) {
        rc = cli_fail(s, in);
        if (s == DEFT_ERR_SHAPE)
            fprintf(stderr, "  (use --num_classes to match the file's classifier, or "
                    "--skip_mismatch to keep fresh weights for such tensors)\n");
        goto done;
    }
    /* tensors of the file no value took (num_batches_tracked is expected) */
    int unused = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const char *nm = st->tensors[i].name;
        size_t l = strlen(nm);
        if (deft_graph_find_value(g, nm) >= 0 ||
            (l >= 19 && !strcmp(nm + l - 19, "num_batches_tracked")))
            continue;
        if (unused < 5) fprintf(stderr, "deft model import: warning: tensor '%s' is not used by %s\n",
                                nm, arch);
        unused++;
    }
    if (unused > 5)
        fprintf(stderr, "deft model import: warning: %d more unused tensors\n", unused - 5);
    if ((s = deft_model_save(out, NULL, &(struct deft_model_save_opts){.rt = rt}))) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    printf("imported %d tensors from %s into %s (%d classes): %s\n", copied, in, arch, classes, out);
done:
    cJSON_free(cn);
    deft_runtime_free(rt);
    deft_graph_free(g);
    return rc;
}

int cmd_model_import(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *arch = NULL, *ncs = NULL, *names = NULL;
    bool err = false, skip_mismatch = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-i", "--input", &in, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &out, &err) ||
            arg_str(argc, argv, &i, NULL, "--arch", &arch, &err) ||
            arg_str(argc, argv, &i, NULL, "--num_classes", &ncs, &err) ||
            arg_str(argc, argv, &i, NULL, "--class_names", &names, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--skip_mismatch")) {
            skip_mismatch = true;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return import_usage(stdout);
        fprintf(stderr, "deft model import: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    if (!in || !out) {
        fprintf(stderr, "deft model import: -i WEIGHTS and -o OUT.safetensors are required\n");
        return 2;
    }
    long long nc = 0;
    if (ncs && !arg_parse_int("--num_classes", ncs, 1, 1000000, &nc)) return 2;
    if ((ncs || names || skip_mismatch) && !arch) {
        fprintf(stderr, "deft model import: --num_classes, --class_names and --skip_mismatch "
                "need --arch\n");
        return 2;
    }
    if (names && (!*names || strstr(names, ",,") || names[strlen(names) - 1] == ',')) {
        fprintf(stderr, "deft model import: --class_names has an empty name\n");
        return 2;
    }
    if (arch && !deft_model_arch_known(arch)) {
        struct deft_graph *g = NULL; /* for the "did you mean" message */
        enum deft_status s = deft_model_build(&(struct deft_model_opts){.arch = arch}, &g, NULL, NULL);
        deft_graph_free(g);
        return cli_fail(s ? s : DEFT_ERR_NOT_FOUND, NULL);
    }
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_weights_read(in, &st);
    if (s) return cli_fail(s, NULL);
    int rc;
    if (arch) {
        rc = import_into_arch(in, out, arch, (int)nc, names, skip_mismatch, st);
    } else {
        s = deft_safetensors_write(out, st->tensors, st->n_tensors, st->meta, st->n_meta);
        rc = s ? cli_fail(s, NULL) : 0;
        if (!s) printf("wrote %d tensors from %s to %s\n", st->n_tensors, in, out);
    }
    deft_safetensors_free(st);
    return rc;
}

/* cmd_model.c - `deft model run|info|import`. */
#include <stdio.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/io.h"
#include "deft/models.h"
#include "deft/engine.h"
#include "cli/args.h"
#include "cli/cli.h"

static int model_usage(FILE *f) {
    fprintf(f,
            "usage: deft model <action> [flags]\n\n"
            "  run  -m MODEL.safetensors|.onnx -i input.npy -o output.npy [--backend cpu|ref|cuda|cuda-emu] [--threads N]\n"
            "       Run a model on an already-preprocessed float32 NCHW tensor; the batch\n"
            "       size may differ from the one the model was saved with. An engine\n"
            "       (-m X.engine) takes exactly the batch it was converted for.\n"
            "  convert -m MODEL|FILE.onnx -o OUT.engine [--precision fp32|int8|bf16] [--batch N] [--input_shape NxCxHxW]\n"
            "       The inference graph and weights as an engine file; see `deft model convert --help`.\n"
            "  info -m FILE | --arch NAME [--size N] [--classes N] [--batch N] [--dot]\n"
            "       Layers, output shapes, parameters and FLOPs (at the given input size) of a\n"
            "       deft model, an ONNX graph, or a weights file (.pth, .safetensors): for\n"
            "       weights, the architecture is --arch or guessed from tensor names and shapes.\n"
            "  import -i FILE -o OUT.safetensors [--arch NAME] [--num_classes N] [--preprocess M]\n"
            "       A pretrained network (PyTorch .pth/.pt, ONNX, safetensors) into deft; see\n"
            "       `deft model import --help`.\n"
            "  detect -m MODEL -i DIR|IMAGE -o OUT_DIR [--raw]\n"
            "       An imported torchvision detector on images (KITTI labels with scores).\n"
            "  download NAME|URL [-o DIR] [--sha256 HEX]\n"
            "       Pretrained weights from the catalogue or a URL: progress, resume, checksum.\n"
            "  list Catalogue names and architectures.\n"
            "  init --arch NAME -o OUT.safetensors [--size N] [--classes N] [--seed N]\n"
            "       A model with freshly initialized weights.\n"
            "  preprocess -m MODEL -i DIR|IMAGE -o OUT.npy [--list OUT.txt]\n"
            "       Images preprocessed as the model records it, as one .npy batch.\n");
    return f == stdout ? 0 : 2;
}

/* The value a user means by "the output": flagged OUTPUT, else the last node's. */
static int find_output(const struct deft_graph *g) {
    int v = deft_graph_find_role(g, DEFT_ROLE_LOGITS);
    if (v >= 0) return v;
    int nn = deft_graph_num_nodes(g);
    return nn ? deft_graph_node(g, nn - 1)->out[0] : -1;
}

static int find_input(const struct deft_graph *g) {
    int v = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    if (v >= 0) return v;
    for (v = 0; v < deft_graph_num_values(g); v++)
        if (deft_graph_value(g, v)->kind == DEFT_VALUE_INPUT) return v;
    return -1;
}

static int model_run(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *backend = "cpu", *threads = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            arg_str(argc, argv, &i, "-i", "--input", &in, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &out, &err) ||
            arg_str(argc, argv, &i, NULL, "--backend", &backend, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return model_usage(stdout);
        fprintf(stderr, "deft model run: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    if (!model || !in || !out) {
        fprintf(stderr, "deft model run: -m MODEL, -i INPUT.npy and -o OUTPUT.npy are required\n");
        return 2;
    }
    if (threads) {
        long long t;
        if (!arg_parse_int("--threads", threads, 1, 1024, &t)) return 2;
        deft_set_threads((int)t);
    }
    struct deft_model *m = NULL;
    struct deft_tensor *x = NULL, *y = NULL;
    struct deft_runtime *rt = NULL;
    int rc = 0;
    enum deft_status s;
    if (deft_engine_is_engine_file(model)) {
        if ((s = deft_npy_read(in, &x))) return cli_fail(s, NULL);
        rc = cli_model_run_engine(model, x, out, backend);
        deft_tensor_free(x);
        return rc;
    }
    if ((s = deft_model_load(model, &m))) return cli_fail(s, NULL);
    if ((s = deft_npy_read(in, &x))) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    struct deft_graph *g = m->graph;
    int iv = find_input(g), ov = find_output(g);
    if (iv < 0 || ov < 0) {
        rc = cli_fail(deft_set_error(DEFT_ERR_FORMAT, "%s: the model has no input or output", model), NULL);
        goto done;
    }
    const struct deft_value *ival = deft_graph_value(g, iv);
    char want[96], got[96];
    deft_shape_str(&ival->shape, want, sizeof want);
    deft_shape_str(&x->shape, got, sizeof got);
    if (x->dtype != DEFT_F32) {
        rc = cli_fail(deft_set_error(DEFT_ERR_FORMAT, "%s: dtype is %s; the model needs float32 (%s)", in,
                                     deft_dtype_name(x->dtype), want), NULL);
        goto done;
    }
    bool same_rest = x->shape.ndim == ival->shape.ndim;
    for (int d = 1; same_rest && d < x->shape.ndim; d++) same_rest = x->shape.d[d] == ival->shape.d[d];
    if (!same_rest || x->shape.d[0] < 1) {
        rc = cli_fail(deft_set_error(DEFT_ERR_SHAPE, "%s: shape %s does not fit the model input '%s' %s "
                                     "(any batch size)", in, got, ival->name, want), NULL);
        goto done;
    }
    deft_graph_set_training(g, false);
    if ((s = deft_graph_reshape_input(g, iv, &x->shape))) {
        rc = cli_fail(s, in);
        goto done;
    }
    if ((s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend}, &rt)) ||
        (s = deft_model_copy_to_runtime(m->file, rt, 0, NULL)) ||
        (s = deft_runtime_set_input(rt, iv, x->data, (size_t)deft_tensor_numel(x))) ||
        (s = deft_runtime_run(rt))) {
        rc = cli_fail(s, model);
        goto done;
    }
    const struct deft_value *oval = deft_graph_value(g, ov);
    if ((s = deft_tensor_create(DEFT_F32, &oval->shape, &y)) ||
        (s = deft_runtime_read(rt, ov, y->data, (size_t)deft_tensor_numel(y))) ||
        (s = deft_npy_write(out, y))) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    deft_shape_str(&oval->shape, got, sizeof got);
    printf("wrote %s: '%s' %s\n", out, oval->name, got);
done:
    deft_runtime_free(rt);
    deft_tensor_free(x);
    deft_tensor_free(y);
    deft_model_free(m);
    return rc;
}

/* A deft model file: safetensors with "deft_format" metadata. */
static bool is_model_file(const char *path, const char *fmt) {
    if (strcmp(fmt, "safetensors")) return false;
    struct deft_safetensors *st = NULL;
    if (deft_safetensors_read(path, &st)) {
        deft_clear_error();
        return true; /* let deft_model_load report what is wrong */
    }
    bool yes = deft_safetensors_meta(st, "deft_format") != NULL;
    deft_safetensors_free(st);
    return yes;
}

/* Tensors of arch's graph found in st with the same shape. */
static int count_matching(const struct deft_graph *g, const struct deft_safetensors *st, int *total) {
    int matched = 0;
    *total = 0;
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *a = deft_graph_value(g, v);
        if (a->kind != DEFT_VALUE_PARAM && a->kind != DEFT_VALUE_STATE) continue;
        (*total)++;
        const struct deft_tensor *t = deft_safetensors_find(st, a->name);
        matched += t && deft_shape_equal(&t->shape, &a->shape);
    }
    return matched;
}

static void print_tensors(const struct deft_safetensors *st) {
    printf("%-56s %-5s %s\n", "tensor", "dtype", "shape");
    for (int i = 0; i < st->n_tensors; i++) {
        char sh[96];
        printf("%-56s %-5s %s\n", st->tensors[i].name, deft_dtype_name(st->tensors[i].tensor->dtype),
               deft_shape_str(&st->tensors[i].tensor->shape, sh, sizeof sh));
    }
}

/* info on a file of named weights (.pth, plain .safetensors, ...): the
 * architecture it fits (--arch, or guessed from names and shapes) with its
 * layers and FLOPs, else the tensors themselves. */
static int weights_info(const char *path, const char *fmt, const char *arch, int size, int batch,
                        bool dot) {
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_weights_read(path, &st);
    if (s) return cli_fail(s, NULL);
    int64_t numel = 0;
    for (int i = 0; i < st->n_tensors; i++) numel += deft_tensor_numel(st->tensors[i].tensor);
    int nc = 0, matched = 0, total = 0;
    const char *how = arch ? "given" : "guessed from tensor names and shapes";
    if (!arch)
        arch = cli_guess_arch(st, &nc, &matched, &total);
    else
        nc = deft_weights_num_classes(arch, st);
    struct deft_graph *g = NULL;
    int rc = 0;
    if (arch && (s = deft_model_build(&(struct deft_model_opts){.arch = arch,
                                                               .num_classes = nc ? nc : 1000,
                                                               .batch = batch, .height = size,
                                                               .width = size},
                                      &g, NULL, NULL))) {
        rc = cli_fail(s, NULL);
    } else if (dot && g) {
        deft_graph_print_dot(g, stdout);
    } else {
        printf("weights: %s  format: %s  %d tensors, %lld values\n", path, fmt, st->n_tensors,
               (long long)numel);
        if (g) {
            matched = count_matching(g, st, &total);
            printf("architecture: %s (%s); %d of its %d tensors are in the file with the same "
                   "shape; %d classes\n", arch, how, matched, total, nc ? nc : 1000);
            deft_graph_print(g, stdout);
        } else {
            printf("architecture: unknown (no deft architecture matches the tensor names; "
                   "--arch NAME compares with one)\n");
            print_tensors(st);
        }
    }
    deft_graph_free(g);
    deft_safetensors_free(st);
    return rc;
}

/* The image input's name and shape (a grey model: [N, 1, H, W]). */
static void print_input(const struct deft_graph *g) {
    int in = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    for (int v = 0; in < 0 && v < deft_graph_num_values(g); v++)
        if (deft_graph_value(g, v)->kind == DEFT_VALUE_INPUT) in = v;
    if (in < 0) return;
    char b[96];
    const struct deft_value *iv = deft_graph_value(g, in);
    printf("input: %s %s\n", iv->name, deft_shape_str(&iv->shape, b, sizeof b));
}

static int model_info(int argc, char **argv) {
    const char *model = NULL, *arch = NULL, *size = "224", *classes = "1000", *batch = "1";
    bool err = false, dot = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            arg_str(argc, argv, &i, NULL, "--arch", &arch, &err) ||
            arg_str(argc, argv, &i, NULL, "--size", &size, &err) ||
            arg_str(argc, argv, &i, NULL, "--classes", &classes, &err) ||
            arg_str(argc, argv, &i, NULL, "--batch", &batch, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--dot")) { dot = true; continue; }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return model_usage(stdout);
        fprintf(stderr, "deft model info: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    long long sz, nc, b;
    if (!arg_parse_int("--size", size, 8, 8192, &sz) || !arg_parse_int("--classes", classes, 1, 1 << 20, &nc) ||
        !arg_parse_int("--batch", batch, 1, 1 << 16, &b))
        return 2;
    struct deft_graph *g = NULL;
    struct deft_model *m = NULL;
    enum deft_status s;
    const char *fmt = NULL;
    if (model && (s = deft_weights_format(model, &fmt))) return cli_fail(s, NULL);
    if (model && !strcmp(fmt, "onnx")) {
        struct deft_safetensors *w = NULL;
        if ((s = deft_onnx_read(model, &g, &w))) return cli_fail(s, NULL);
        deft_safetensors_free(w);
    } else if (model && !is_model_file(model, fmt)) {
        return weights_info(model, fmt, arch, (int)sz, (int)b, dot);
    } else if (model) {
        if ((s = deft_model_load(model, &m))) return cli_fail(s, NULL);
        g = m->graph;
    } else if (arch) {
        if ((s = deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = (int)nc,
                                  .batch = (int)b, .height = (int)sz, .width = (int)sz}, &g, NULL, NULL)))
            return cli_fail(s, NULL);
    } else {
        fprintf(stderr, "deft model info: give -m MODEL or --arch NAME\n");
        return 2;
    }
    if (dot) {
        deft_graph_print_dot(g, stdout);
    } else {
        const char *a = deft_graph_get_meta(g, "arch");
        printf("model: %s  architecture: %s\n", model ? model : arch, a ? a : "?");
        print_input(g);
        deft_graph_print(g, stdout);
    }
    if (m) deft_model_free(m);
    else deft_graph_free(g);
    return 0;
}

int cmd_model(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return model_usage(argc < 2 ? stderr : stdout);
    if (!strcmp(argv[1], "run")) return model_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "convert")) return cmd_model_convert(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return model_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "import")) return cmd_model_import(argc - 1, argv + 1);
    if (!strcmp(argv[1], "detect")) return cmd_model_detect(argc - 1, argv + 1);
    if (!strcmp(argv[1], "download")) return cmd_model_download(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list")) return cmd_model_list(argc - 1, argv + 1);
    if (!strcmp(argv[1], "init")) return cmd_model_init(argc - 1, argv + 1);
    if (!strcmp(argv[1], "preprocess")) return cmd_model_preprocess(argc - 1, argv + 1);
    fprintf(stderr, "deft model: unknown action '%s' (run, convert, info, import, detect, download, list, init, preprocess)\n", argv[1]);
    return 2;
}

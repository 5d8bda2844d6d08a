/* cmd_import.c - `deft model import`: pretrained weights (PyTorch .pth/.pt,
 * safetensors; format detected from the content) into a safetensors file of
 * named tensors, or, with --arch, into a deft model file ready for training,
 * evaluation and export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/data.h"
#include "deft/io.h"
#include "deft/models.h"
#include "deft/runtime.h"
#include "deft/tv_detection.h"
#include "cli/args.h"
#include "cli/cli.h"

/* "a,b,c" (or one value for all three channels) into v[3]. */
static bool parse_triple(const char *flag, const char *txt, float v[3], bool positive) {
    float x[3];
    int n = 0;
    const char *p = txt;
    while (n < 3) {
        char *end;
        x[n] = strtof(p, &end);
        if (end == p || (positive && !(x[n] > 0))) break;
        n++;
        if (*end == 0) break;
        if (*end != ',') { n = -1; break; }
        p = end + 1;
    }
    if (n != 1 && n != 3) {
        fprintf(stderr, "deft model import: %s wants 1 or 3 %snumbers separated by commas, got "
                "'%s'\n", flag, positive ? "positive " : "", txt);
        return false;
    }
    for (int i = 0; i < 3; i++) v[i] = x[n == 1 ? 0 : i];
    return true;
}

static int import_usage(FILE *f) {
    fprintf(f,
            "usage: deft model import -i FILE -o OUT.safetensors [--arch NAME] [--num_classes N]\n"
            "                         [--class_names A,B,...|FILE] [--skip_mismatch]\n"
            "                         [--preprocess torchvision|torch|caffe|tf] [--mean R,G,B]\n"
            "                         [--std R,G,B] [--divisor D] [--channel_order rgb|bgr]\n"
            "                         [--min_size N] [--max_size N]\n\n"
            "  Read a pretrained network without Python. The format is detected from the\n"
            "  content, not the extension:\n"
            "    PyTorch torch.save (.pth/.pt, zip or legacy): only tensor state dicts; nothing in\n"
            "      the file is ever executed\n"
            "    ONNX (.onnx): the whole graph becomes a deft model (any network built from the\n"
            "      ops deft converts; an unsupported op is named), or with --arch its initializers\n"
            "      load by name\n"
            "    Keras HDF5 (.h5/.hdf5, TAO's layer_names/weight_names layout): libhdf5 runs in a\n"
            "      child process with a time and memory limit (DEFT_SANDBOX_SECONDS,\n"
            "      DEFT_SANDBOX_MEMORY_MB), so a forged file cannot hang or exhaust deft\n"
            "    safetensors\n\n"
            "  without --arch  a .pth/.safetensors is written as a plain .safetensors of named\n"
            "                  tensors (a DataParallel 'module.' prefix removed); an ONNX file as\n"
            "                  a deft model file (run it with `deft model run`)\n"
            "  --arch NAME     build that deft architecture (e.g. resnet18, squeezenet1_0:\n"
            "                  torchvision names) and load the tensors into it by name, checking\n"
            "                  every shape; write a deft model file. torchvision detectors\n"
            "                  (ssd300_vgg16, retinanet_resnet50_fpn, fasterrcnn_resnet50_fpn,\n"
            "                  ssdlite320_mobilenet_v3_large, fasterrcnn_mobilenet_v3_large_fpn)\n"
            "                  import the same way and\n"
            "                  run with `deft model detect`\n"
            "  --min_size N, --max_size N  a torchvision detector's GeneralizedRCNNTransform sizes\n"
            "                  (torchvision's min_size / max_size; default 800 / 1333)\n"
            "  --num_classes N classifier size (default: read from the file's classifier tensor)\n"
            "  --class_names   comma-separated class names, or a file with one per line (ImageNet's:\n"
            "                  ../shared/models/squeezenet1_0_imagenet_deepcompression/imagenet_classes.txt);\n"
            "                  default class_0, class_1, ...\n"
            "  --skip_mismatch keep the architecture's initial values for tensors whose shape\n"
            "                  differs (e.g. a new classifier head) instead of failing\n"
            "  --preprocess M  the input preprocessing the weights expect, recorded in the model\n"
            "                  and used by every later action (default torchvision: x/255, ImageNet\n"
            "                  mean and std; torch is TAO's variant, caffe BGR minus mean, tf\n"
            "                  x/127.5-1)\n"
            "  --mean, --std, --divisor, --channel_order  set those explicitly (after --preprocess):\n"
            "                  the network sees (x / divisor - mean) / std, x in 0..255, channels in\n"
            "                  that order; mean and std are given in that order too\n");
    return f == stdout ? 0 : 2;
}

struct import_opts {
    const char *in, *out, *arch, *class_names;
    char **names;           /* --class_names parsed */
    int n_names;
    struct deft_preprocess pre;
    int num_classes;
    int min_size, max_size; /* torchvision detectors' GeneralizedRCNNTransform */
    bool skip_mismatch;
};

static int import_into_arch(const struct import_opts *o, const struct deft_safetensors *st) {
    struct deft_model *m = NULL;
    struct deft_import_report rep;
    enum deft_status s = deft_model_import_weights(
        st, o->in,
        &(struct deft_import_opts){.arch = o->arch, .num_classes = o->num_classes,
                                   .class_names = (const char *const *)o->names, .n_class_names = o->n_names, .pre = &o->pre,
                                   .skip_mismatch = o->skip_mismatch},
        &m, &rep);
    if (s) {
        int rc = cli_fail(s, NULL);
        if (s == DEFT_ERR_SHAPE)
            fprintf(stderr, "  (use --num_classes to match the file's classifier, or "
                    "--skip_mismatch to keep fresh weights for such tensors)\n");
        return rc;
    }
    if (rep.num_classes_from_file) printf("num_classes %d (from the file's classifier)\n", rep.num_classes);
    s = deft_model_save(o->out, m->graph, &(struct deft_model_save_opts){.tensors = m->file->tensors,
                                                                         .n_tensors = m->file->n_tensors});
    deft_model_free(m);
    if (s) return cli_fail(s, NULL);
    printf("imported %d tensors from %s into %s (%d classes): %s\n", rep.copied, o->in, o->arch, rep.num_classes,
           o->out);
    return 0;
}

/* A torchvision detector's state dict (tv_detection.h): run it with `deft model detect`. */
static int import_tv_detector(const struct import_opts *o, const struct deft_safetensors *st) {
    struct deft_model *m = NULL;
    enum deft_status s = deft_tv_det_import(st, o->in, &(struct deft_tv_det_opts){.arch = o->arch,
                                                                                 .num_classes = o->num_classes,
                                                                                 .min_size = o->min_size,
                                                                                 .max_size = o->max_size},
                                            &m);
    if (!s && o->names) {
        const char *nc = deft_graph_get_meta(m->graph, "num_classes");
        if (atoi(nc) != o->n_names) {
            fprintf(stderr, "deft model import: --class_names lists %d names but %s has %s classes (background "
                    "included)\n", o->n_names, o->in, nc);
            deft_model_free(m);
            return 2;
        }
        s = deft_model_set_class_names(m->graph, (const char *const *)o->names, o->n_names);
    }
    if (!s) s = deft_model_save(o->out, m->graph, &(struct deft_model_save_opts){.tensors = m->file->tensors,
                                                                                .n_tensors = m->file->n_tensors});
    if (s) {
        deft_model_free(m);
        return cli_fail(s, NULL);
    }
    printf("imported %d tensors from %s into %s (%s classes with background): %s\n", m->file->n_tensors, o->in,
           o->arch, deft_graph_get_meta(m->graph, "num_classes"), o->out);
    deft_model_free(m);
    return 0;
}

/* An ONNX file's whole graph into a deft model file. */
static int import_onnx_graph(const struct import_opts *o) {
    struct deft_graph *g = NULL;
    struct deft_safetensors *w = NULL;
    int rc = 0;
    enum deft_status s = deft_onnx_read(o->in, &g, &w);
    if (s) return cli_fail(s, NULL);
    const char *nc = deft_graph_get_meta(g, "num_classes");
    int classes = nc ? atoi(nc) : 0;
    if (o->names && classes != o->n_names) {
        fprintf(stderr, "deft model import: --class_names lists %d names but the model has %d "
                "outputs\n", o->n_names, classes);
        rc = 2;
        goto done;
    }
    int iv = -1;
    for (int v = 0; v < deft_graph_num_values(g) && iv < 0; v++)
        if (deft_graph_value(g, v)->kind == DEFT_VALUE_INPUT) iv = v;
    const struct deft_value *in = deft_graph_value(g, iv);
    if (in->shape.ndim == 4 && in->shape.d[1] == 3 &&
        (s = deft_model_set_preprocess(g, &o->pre, (int)in->shape.d[2], (int)in->shape.d[3]))) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    s = classes > 0 ? deft_model_set_class_names(g, (const char *const *)o->names, classes) : DEFT_OK;
    if (s) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    if ((s = deft_model_save(o->out, g, &(struct deft_model_save_opts){
                                            .tensors = w->tensors, .n_tensors = w->n_tensors}))) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    struct deft_graph_stats gs;
    deft_graph_stats(g, &gs);
    char sh[64];
    printf("imported the ONNX graph of %s: %d nodes, %lld parameters, input '%s' %s -> %s\n",
           o->in, gs.nodes, (long long)gs.params, in->name, deft_shape_str(&in->shape, sh, sizeof sh),
           o->out);
done:
    deft_safetensors_free(w);
    deft_graph_free(g);
    return rc;
}

int cmd_model_import(int argc, char **argv) {
    struct import_opts o = {0};
    const char *ncs = NULL, *mins = NULL, *maxs = NULL, *mode = "torchvision", *mean = NULL, *std = NULL;
    const char *div = NULL, *order = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-i", "--input", &o.in, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &o.out, &err) ||
            arg_str(argc, argv, &i, NULL, "--arch", &o.arch, &err) ||
            arg_str(argc, argv, &i, NULL, "--num_classes", &ncs, &err) ||
            arg_str(argc, argv, &i, NULL, "--class_names", &o.class_names, &err) ||
            arg_str(argc, argv, &i, NULL, "--min_size", &mins, &err) ||
            arg_str(argc, argv, &i, NULL, "--max_size", &maxs, &err) ||
            arg_str(argc, argv, &i, NULL, "--preprocess", &mode, &err) ||
            arg_str(argc, argv, &i, NULL, "--mean", &mean, &err) ||
            arg_str(argc, argv, &i, NULL, "--std", &std, &err) ||
            arg_str(argc, argv, &i, NULL, "--divisor", &div, &err) ||
            arg_str(argc, argv, &i, NULL, "--channel_order", &order, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--skip_mismatch")) {
            o.skip_mismatch = true;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return import_usage(stdout);
        fprintf(stderr, "deft model import: unknown flag '%s' (see deft model import --help)\n",
                argv[i]);
        return 2;
    }
    enum deft_preprocess_mode pm;
    if (deft_preprocess_parse(mode, &pm)) return cli_fail(DEFT_ERR_INVALID_ARG, NULL);
    deft_preprocess_init(&o.pre, pm);
    float d3[3];
    if ((mean && !parse_triple("--mean", mean, o.pre.mean, false)) ||
        (std && !parse_triple("--std", std, o.pre.std, true)) ||
        (div && !parse_triple("--divisor", div, d3, true)))
        return 2;
    if (div) o.pre.divisor = d3[0];
    if (order && strcmp(order, "rgb") && strcmp(order, "bgr")) {
        fprintf(stderr, "deft model import: --channel_order is rgb or bgr, not '%s'\n", order);
        return 2;
    }
    if (order) o.pre.bgr = !strcmp(order, "bgr");
    if (!o.in || !o.out) {
        fprintf(stderr, "deft model import: -i FILE and -o OUT.safetensors are required\n");
        return 2;
    }
    long long nc = 0;
    if (ncs && !arg_parse_int("--num_classes", ncs, 1, 1000000, &nc)) return 2;
    o.num_classes = (int)nc;
    long long mn = 0, mx = 0;
    if ((mins && !arg_parse_int("--min_size", mins, 1, 8192, &mn)) ||
        (maxs && !arg_parse_int("--max_size", maxs, 1, 8192, &mx)))
        return 2;
    o.min_size = (int)mn, o.max_size = (int)mx;
    const char *fmt;
    enum deft_status s = deft_weights_format(o.in, &fmt);
    if (s) return cli_fail(s, NULL);
    bool onnx_graph = !strcmp(fmt, "onnx") && !o.arch;
    if ((ncs || o.skip_mismatch) && !o.arch) {
        fprintf(stderr, "deft model import: --num_classes and --skip_mismatch need --arch\n");
        return 2;
    }
    if (o.class_names && !o.arch && !onnx_graph) {
        fprintf(stderr, "deft model import: --class_names needs --arch (or an ONNX file)\n");
        return 2;
    }
    if (o.class_names && (s = deft_class_names_from_arg(o.class_names, &o.names, &o.n_names)))
        return cli_fail(s, NULL);
    int rc;
    bool tv_det = o.arch && deft_tv_det_known(o.arch);
    if ((mins || maxs) && !tv_det) {
        fprintf(stderr, "deft model import: --min_size and --max_size are for torchvision detectors (%s)\n",
                "retinanet_resnet50_fpn, fasterrcnn_resnet50_fpn, fasterrcnn_mobilenet_v3_large_fpn");
        deft_string_list_free(o.names, o.n_names);
        return 2;
    }
    if (tv_det && o.skip_mismatch) {
        fprintf(stderr, "deft model import: --skip_mismatch is not supported for %s\n", o.arch);
        deft_string_list_free(o.names, o.n_names);
        return 2;
    }
    if (o.arch && !tv_det && !deft_model_arch_known(o.arch)) {
        struct deft_graph *g = NULL; /* for the "did you mean" message */
        s = deft_model_build(&(struct deft_model_opts){.arch = o.arch}, &g, NULL, NULL);
        deft_graph_free(g);
        deft_string_list_free(o.names, o.n_names);
        return cli_fail(s ? s : DEFT_ERR_NOT_FOUND, NULL);
    }
    if (onnx_graph) {
        rc = import_onnx_graph(&o);
        deft_string_list_free(o.names, o.n_names);
        return rc;
    }
    struct deft_safetensors *st = NULL;
    if ((s = deft_weights_read(o.in, &st))) {
        deft_string_list_free(o.names, o.n_names);
        return cli_fail(s, NULL);
    }
    if (tv_det) {
        rc = import_tv_detector(&o, st);
    } else if (o.arch) {
        rc = import_into_arch(&o, st);
    } else {
        s = deft_safetensors_write(o.out, st->tensors, st->n_tensors, st->meta, st->n_meta);
        rc = s ? cli_fail(s, NULL) : 0;
        if (!s) printf("wrote %d tensors from %s to %s\n", st->n_tensors, o.in, o.out);
    }
    deft_safetensors_free(st);
    deft_string_list_free(o.names, o.n_names);
    return rc;
}

/* cmd_model_tools.c - `deft model init` (an architecture with freshly
 * initialized weights: tests, benchmarks, export checks) and `deft model
 * preprocess` (images as the model's recorded preprocessing makes them, one
 * .npy batch: to feed the same input to another runtime). */
#include <stdio.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/data.h"
#include "deft/io.h"
#include "deft/models.h"
#include "deft/runtime.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "tasks/classification/cls_calib.h"
#include "tasks/classification/cls_common.h"

int cmd_model_init(int argc, char **argv) {
    const char *arch = NULL, *out = NULL, *size = "224", *classes = "1000", *seed = "42",
               *mode = "torchvision", *cnames = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, NULL, "--arch", &arch, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &out, &err) ||
            arg_str(argc, argv, &i, NULL, "--size", &size, &err) ||
            arg_str(argc, argv, &i, NULL, "--classes", &classes, &err) ||
            arg_str(argc, argv, &i, NULL, "--seed", &seed, &err) ||
            arg_str(argc, argv, &i, NULL, "--preprocess", &mode, &err) ||
            arg_str(argc, argv, &i, NULL, "--class_names", &cnames, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: deft model init --arch NAME -o OUT.safetensors [--size N] [--classes N]\n"
                   "                       [--seed N] [--preprocess torchvision|torch|caffe|tf]\n"
                   "                       [--class_names A,B,...]\n"
                   "  A model of that architecture with freshly initialized weights\n"
                   "  (class names class_0..; for tests, benchmarks and export checks).\n");
            return 0;
        }
        fprintf(stderr, "deft model init: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    if (!arch || !out) {
        fprintf(stderr, "deft model init: --arch NAME and -o OUT.safetensors are required\n");
        return 2;
    }
    long long sz, nc, sd;
    if (!arg_parse_int("--size", size, 8, 8192, &sz) || !arg_parse_int("--classes", classes, 1, 1 << 20, &nc) ||
        !arg_parse_int("--seed", seed, 0, (long long)1 << 62, &sd))
        return 2;
    enum deft_preprocess_mode pm;
    if (deft_preprocess_parse(mode, &pm)) return cli_fail(DEFT_ERR_INVALID_ARG, NULL);
    struct deft_transform tf;
    deft_transform_defaults(&tf);
    deft_preprocess_init(&tf.pre, pm);
    tf.out_h = tf.out_w = (int)sz;
    tf.resize = DEFT_RESIZE_PLAIN;
    struct deft_graph *g = NULL;
    struct deft_runtime *rt = NULL;
    char *pre = NULL, *cn = NULL, **names = NULL;
    int rc = 0;
    enum deft_status s = deft_model_build(&(struct deft_model_opts){.arch = arch, .num_classes = (int)nc,
                                          .height = (int)sz, .width = (int)sz}, &g, NULL, NULL);
    if (s) return cli_fail(s, NULL);
    if (!(names = deft_calloc((size_t)nc, sizeof *names))) {
        rc = cli_fail(deft_set_error(DEFT_ERR_NOMEM, "out of memory"), NULL);
        goto done;
    }
    const char *p = cnames;
    for (int c = 0; c < nc; c++) {
        char b[256];
        size_t l = p ? strcspn(p, ",") : 0;
        if (p && (l == 0 || l >= sizeof b)) {
            rc = 2;
            fprintf(stderr, "deft model init: --class_names needs %lld non-empty names\n", nc);
            goto done;
        }
        if (p) snprintf(b, sizeof b, "%.*s", (int)l, p);
        else snprintf(b, sizeof b, "class_%d", c);
        p = p ? (p[l] ? p + l + 1 : p + l) : NULL;
        names[c] = deft_strdup(b);
    }
    if (p && *p) {
        fprintf(stderr, "deft model init: --class_names has more than %lld names\n", nc);
        rc = 2;
        goto done;
    }
    pre = cls_preprocess_to_json(&tf);
    cn = cls_class_names_to_json(names, (int)nc);
    if (!pre || !cn) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (s || (s = deft_graph_set_meta(g, "preprocess", pre)) ||
        (s = deft_graph_set_meta(g, "class_names", cn)) ||
        (s = deft_runtime_create(g, &(struct deft_runtime_opts){0}, &rt)) ||
        (s = deft_runtime_init_params(rt, (uint64_t)sd)) ||
        (s = deft_model_save(out, NULL, &(struct deft_model_save_opts){.rt = rt}))) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    printf("wrote %s: %s, 3x%lldx%lld, %lld classes, seed %lld\n", out, arch, sz, sz, nc, sd);
done:
    deft_string_list_free(names, names ? (int)nc : 0);
    deft_free(pre);
    deft_free(cn);
    deft_runtime_free(rt);
    deft_graph_free(g);
    return rc;
}

int cmd_model_preprocess(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *list = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            arg_str(argc, argv, &i, "-i", "--input", &in, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &out, &err) ||
            arg_str(argc, argv, &i, NULL, "--list", &list, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: deft model preprocess -m MODEL -i DIR|IMAGE -o OUT.npy [--list OUT.txt]\n"
                   "  The images (a folder, its class folders, sorted) preprocessed as the model\n"
                   "  records it, as one float32 [N,3,H,W] .npy ([N,1,H,W] for a grey model); --list\n"
                   "  writes their paths in order.\n");
            return 0;
        }
        fprintf(stderr, "deft model preprocess: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    if (!model || !in || !out) {
        fprintf(stderr, "deft model preprocess: -m MODEL, -i DIR|IMAGE and -o OUT.npy are required\n");
        return 2;
    }
    struct deft_model *m = NULL;
    struct deft_tensor *t = NULL;
    char **paths = NULL;
    int n = 0, rc = 0;
    struct deft_transform tf;
    enum deft_status s = deft_model_load(model, &m);
    if (!s) s = cls_transform_from_meta(m->graph, model, &tf);
    if (!s) {
        s = task_calib_list_images(in, &paths, &n);
        if (s == DEFT_ERR_NOT_FOUND) { /* a single image file */
            deft_clear_error();
            paths = deft_calloc(1, sizeof *paths);
            s = paths && (paths[0] = deft_strdup(in)) ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
            n = paths && paths[0] ? 1 : 0;
        }
    }
    int ch = deft_preprocess_channels(&tf.pre); /* 1 for a grey model */
    if (!s) s = deft_tensor_create(DEFT_F32, &(struct deft_shape){.ndim = 4, .d = {n, ch, tf.out_h, tf.out_w}}, &t);
    size_t per = (size_t)ch * tf.out_h * tf.out_w, len = 0, cap = 1;
    for (int i = 0; !s && i < n; i++) {
        void *buf;
        size_t bl;
        if ((s = deft_file_read(paths[i], 256u << 20, &buf, &bl))) break;
        s = deft_transform_bytes(&tf, buf, bl, 0, 0, (float *)t->data + (size_t)i * per);
        deft_free(buf);
        if (s) s = deft_wrap_error(s, "%s", paths[i]);
        cap += strlen(paths[i]) + 1;
    }
    if (!s) s = deft_npy_write(out, t);
    char *txt = !s && list ? deft_malloc(cap) : NULL;
    if (!s && list && !txt) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; txt && i < n; i++) len += (size_t)snprintf(txt + len, cap - len, "%s\n", paths[i]);
    if (!s && list) s = deft_file_write_atomic(list, txt, len);
    deft_free(txt);
    if (s) rc = cli_fail(s, NULL);
    else printf("wrote %s: %d images, %dx%dx%d\n", out, n, ch, tf.out_h, tf.out_w);
    deft_tensor_free(t);
    deft_string_list_free(paths, n);
    deft_model_free(m);
    return rc;
}

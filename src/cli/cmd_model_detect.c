/* cmd_model_detect.c - `deft model detect`: an imported torchvision detector
 * (tv_detection.h) on images: KITTI label files with scores, and with --raw
 * the arrays before and after NMS (.npy) for comparisons with torchvision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/deft.h"
#include "deft/data.h"
#include "deft/io.h"
#include "deft/tv_detection.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "tasks/common/calib.h"

static int detect_usage(FILE *f) {
    fprintf(f,
            "usage: deft model detect -m MODEL -i DIR|IMAGE -o OUT_DIR [--raw] [--threads N]\n\n"
            "  Run a torchvision detector imported with `deft model import --arch ssd300_vgg16|\n"
            "  retinanet_resnet50_fpn|fasterrcnn_resnet50_fpn|ssdlite320_mobilenet_v3_large|\n"
            "  fasterrcnn_mobilenet_v3_large_fpn` on images,\n"
            "  with torchvision's transform\n"
            "  and post-processing.\n"
            "  OUT_DIR/<image>.txt  one KITTI line per detection, the score last (pixels of the image)\n"
            "  --raw                also OUT_DIR/raw/<image>_boxes.npy [A,4] and _scores.npy [A,K]: every\n"
            "                       anchor's decoded, clipped box (network input pixels) and class scores\n"
            "                       before NMS (fasterrcnn: the RPN's proposals and objectness [A,1]);\n"
            "                       _dets.npy [D,6]: x1 y1 x2 y2 score label after NMS\n");
    return f == stdout ? 0 : 2;
}

static const char *base_name(const char *p, char *buf, size_t n) {
    const char *b = strrchr(p, '/');
    snprintf(buf, n, "%s", b ? b + 1 : p);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

static enum deft_status write_npy(const char *dir, const char *stem, const char *what, const float *data, int rows,
                                  int cols) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%s.npy", dir, stem, what);
    struct deft_tensor t = {.dtype = DEFT_F32, .shape = {.ndim = 2, .d = {rows, cols}}, .stride = {cols, 1},
                            .data = (void *)data};
    return deft_npy_write(path, &t);
}

/* class names from the metadata (JSON array), or NULL */
static cJSON *class_names(const struct deft_graph *g) {
    const char *cn = deft_graph_get_meta(g, "class_names");
    return cn ? cJSON_Parse(cn) : NULL;
}

static enum deft_status write_results(const char *out, const char *stem, bool raw, const struct deft_tv_det_result *r,
                                      const cJSON *names) {
    char path[4096];
    size_t cap = 64 + (size_t)r->n_det * 256, len = 0; /* a line: name <= 64 chars + numbers */
    char *txt = deft_malloc(cap);
    if (!txt) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    txt[0] = 0;
    for (int i = 0; i < r->n_det; i++) {
        const cJSON *nm = cJSON_GetArrayItem(names, r->labels[i]);
        char lab[32];
        snprintf(lab, sizeof lab, "class_%d", r->labels[i]);
        const float *b = r->boxes + 4 * i;
        len += (size_t)snprintf(txt + len, cap - len, "%.64s 0.00 0 0.00 %.2f %.2f %.2f %.2f 0.00 0.00 0.00 0.00 0.00 "
                                "0.00 0.00 %.6f\n", cJSON_IsString(nm) ? nm->valuestring : lab, b[0], b[1], b[2],
                                b[3], r->scores[i]);
    }
    snprintf(path, sizeof path, "%s/%s.txt", out, stem);
    enum deft_status s = deft_file_write_atomic(path, txt, len);
    deft_free(txt);
    if (s || !raw) return s;
    snprintf(path, sizeof path, "%s/raw", out);
    float *d = deft_malloc((size_t)(r->n_det ? r->n_det : 1) * 6 * sizeof *d);
    if (!d) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->n_det; i++) {
        memcpy(d + 6 * i, r->boxes + 4 * i, 4 * sizeof *d);
        d[6 * i + 4] = r->scores[i], d[6 * i + 5] = (float)r->labels[i];
    }
    if (!(s = deft_mkdirs(path)) && !(s = write_npy(path, stem, "boxes", r->raw_boxes, r->n_raw, 4)) &&
        !(s = write_npy(path, stem, "scores", r->raw_scores, r->n_raw, r->n_cls)))
        s = write_npy(path, stem, "dets", d, r->n_det, 6);
    deft_free(d);
    return s;
}

int cmd_model_detect(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *threads = NULL;
    bool raw = false, err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-m", "--model", &model, &err) || arg_str(argc, argv, &i, "-i", NULL, &in, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_dir", &out, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--raw")) {
            raw = true;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return detect_usage(stdout);
        fprintf(stderr, "deft model detect: unknown flag '%s' (see deft model detect --help)\n", argv[i]);
        return 2;
    }
    if (!model || !in || !out) {
        fprintf(stderr, "deft model detect: -m MODEL, -i DIR|IMAGE and -o OUT_DIR are required\n");
        return 2;
    }
    if (threads) {
        long long t;
        if (!arg_parse_int("--threads", threads, 1, 1024, &t)) return 2;
        deft_set_threads((int)t);
    }
    struct deft_model *m = NULL;
    struct deft_tv_detector *d = NULL;
    char **paths = NULL;
    int n = 0;
    enum deft_status s = deft_model_load(model, &m);
    if (!s && (s = deft_tv_detector_create(m->graph, m->file, &d))) s = deft_wrap_error(s, "%s", model);
    if (s) {
        deft_model_free(m);
        return cli_fail(s, NULL);
    }
    s = task_calib_list_images(in, &paths, &n);
    if (s == DEFT_ERR_NOT_FOUND) { /* a single image file */
        deft_clear_error();
        paths = deft_calloc(1, sizeof *paths);
        s = paths && (paths[0] = deft_strdup(in)) ? DEFT_OK : deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        n = paths && paths[0] ? 1 : 0;
    }
    if (!s) s = deft_mkdirs(out);
    cJSON *names = class_names(m->graph);
    int total = 0;
    for (int i = 0; !s && i < n; i++) {
        struct deft_image img = {0};
        struct deft_tv_det_result r = {0};
        char stem[512];
        s = deft_image_load(paths[i], NULL, &img);
        if (!s) s = deft_tv_detector_run(d, &img, &r);
        if (!s) s = write_results(out, base_name(paths[i], stem, sizeof stem), raw, &r, names);
        if (s) s = deft_wrap_error(s, "%s", paths[i]);
        total += r.n_det;
        deft_tv_det_result_free(&r);
        deft_image_free(&img);
    }
    cJSON_Delete(names);
    deft_string_list_free(paths, n);
    deft_tv_detector_free(d);
    deft_model_free(m);
    if (s) return cli_fail(s, NULL);
    printf("%d images, %d detections: %s\n", n, total, out);
    return 0;
}

/* cmd_detection.c - `deft detection dataset_convert|dataset_validate`:
 * detection datasets between KITTI, COCO and VOC, and a dataset check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include "deft/det_data.h"
#include "deft/det_eval.h"
#include "cli/args.h"

#define MAX_MAP 256

static int usage(FILE *f) {
    fprintf(f,
        "usage: deft detection <action> [flags]\n\n"
        "actions:\n"
        "  dataset_convert -i SRC --from kitti|coco|voc -o DST --to kitti|coco|voc [flags]\n"
        "      SRC/DST: KITTI and VOC: a directory of <stem>.txt / <stem>.xml; COCO: the .json file.\n"
        "      --images DIR            the images (needed from KITTI: COCO and VOC record image sizes)\n"
        "      --split LIST            only the stems listed (one per line, as VOC ImageSets/Main/*.txt)\n"
        "      --image_extension EXT   image files are <stem>.EXT (default: jpg, jpeg, png or bmp)\n"
        "      --tao_rules             read as TAO's trainer does: names lower-cased (and mapped with\n"
        "                              --map), boxes clipped to the image, degenerate and tiny boxes\n"
        "                              dropped. Without it boxes and names are copied exactly, so\n"
        "                              KITTI -> COCO -> VOC -> KITTI gives back the same boxes.\n"
        "      --map SRC=TGT           target_class_mapping entry (repeatable; implies --tao_rules)\n"
        "      --skip_bad_lines        skip and count malformed label lines instead of stopping\n"
        "      Only boxes, class names, difficult flags and image sizes travel: KITTI's truncation,\n"
        "      alpha and 3-D fields are written as 0 (occluded = 1 for difficult boxes), COCO's\n"
        "      iscrowd is the difficult flag.\n\n"
        "  dataset_validate -d LABELS [-i IMAGES] [--format kitti|coco|voc] [--split LIST]\n"
        "                   [-o REPORT.json] [--max_findings N]\n"
        "      LABELS: a KITTI label directory, a VOC Annotations directory or a COCO .json file\n"
        "      (format guessed from it when --format is not given). Without -i the images are looked\n"
        "      for beside LABELS (images/, image_2/, JPEGImages/).\n"
        "      Prints per-class box counts, a box size histogram and each finding at file:line:\n"
        "      malformed lines, zero-area boxes, boxes outside the image, boxes TAO's loader drops,\n"
        "      class names differing only in case (TAO's silent 0-AP trap), labels without images,\n"
        "      images without labels (notes: background images are legitimate), declared sizes that\n"
        "      disagree with the image. -o writes everything as JSON, plus REPORT_box_sizes.svg/.png.\n"
        "      (COCO findings are located by array index, e.g. \"annotations[12]\".)\n\n"
        "  score -l GT_DIR -p PRED_DIR [--ap_mode sample|integrate|coco|voc|voc07] [--iou 0.5]\n"
        "        [-o metrics.json] [-i IMAGES]\n"
        "      KITTI predictions (the score as a 16th field: deft/TAO inference, DeepStream's KITTI dump,\n"
        "      any tool) against KITTI ground truth, paired by file stem, with the code of `evaluate`;\n"
        "      the definition is printed beside each figure. Default: TAO's INTEGRATE at IoU 0.5.\n\n"
        "exit status: 0 success (dataset_validate: no errors or warnings; notes allowed),\n"
        "             1 dataset_validate found errors or warnings, or a runtime failure (I/O),\n"
        "             2 bad usage or unreadable/invalid input (the message names file:line).\n");
    return f == stdout ? 0 : 2;
}

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static bool parse_format(const char *flag, const char *v, enum deft_det_format *f) {
    if (deft_det_format_parse(v, f) == DEFT_OK) return true;
    fprintf(stderr, "deft detection: %s takes kitti, coco or voc, got '%s'\n", flag, v);
    return false;
}

static int convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *from = NULL, *to = NULL, *images = NULL, *split = NULL;
    const char *ext = NULL;
    struct deft_det_class_map map[MAX_MAP];
    int n_map = 0;
    bool tao = false, skip = false, err = false;
    for (int i = 1; i < argc; i++) {
        const char *m = NULL;
        if (arg_str(argc, argv, &i, "-i", "--input", &in, &err) ||
            arg_str(argc, argv, &i, "-o", "--output", &out, &err) ||
            arg_str(argc, argv, &i, NULL, "--from", &from, &err) ||
            arg_str(argc, argv, &i, NULL, "--to", &to, &err) ||
            arg_str(argc, argv, &i, NULL, "--images", &images, &err) ||
            arg_str(argc, argv, &i, NULL, "--split", &split, &err) ||
            arg_str(argc, argv, &i, NULL, "--image_extension", &ext, &err)) {
            if (err) return 2;
            continue;
        }
        if (arg_str(argc, argv, &i, NULL, "--map", &m, &err)) {
            if (err) return 2;
            const char *eq = strchr(m, '=');
            if (!eq || eq == m || !eq[1] || n_map == MAX_MAP) {
                fprintf(stderr, "deft detection dataset_convert: --map takes SOURCE=TARGET (at most "
                        "%d), got '%s'\n", MAX_MAP, m);
                return 2;
            }
            /* the argument string is ours to split */
            ((char *)eq)[0] = 0;
            map[n_map++] = (struct deft_det_class_map){m, eq + 1};
            tao = true;
            continue;
        }
        if (!strcmp(argv[i], "--tao_rules")) tao = true;
        else if (!strcmp(argv[i], "--skip_bad_lines")) skip = true;
        else if (is_help(argv[i])) return usage(stdout);
        else {
            fprintf(stderr, "deft detection dataset_convert: unknown flag '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!in || !out || !from || !to) {
        fprintf(stderr, "deft detection dataset_convert: -i SRC, --from FORMAT, -o DST and --to "
                "FORMAT are required (see --help)\n");
        return 2;
    }
    enum deft_det_format ff, tf;
    if (!parse_format("--from", from, &ff) || !parse_format("--to", to, &tf)) return 2;
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    o.raw = !tao;
    o.skip_bad_lines = skip;
    o.image_extension = ext;
    o.mapping = n_map ? map : NULL;
    o.n_mapping = n_map;
    struct deft_det_source src = {ff, images, in, split};
    struct deft_det_dataset d;
    enum deft_status st = deft_det_read(&src, 1, &o, &d);
    if (st) {
        deft_det_dataset_free(&d);
        return cli_fail(st, "dataset_convert");
    }
    const struct deft_det_read_stats *s = &d.stats;
    printf("read %s %s: %lld images (%lld without labels), %lld boxes, %d classes", from, in,
           (long long)s->images, (long long)s->background_images, (long long)s->boxes, d.n_classes);
    if (tao)
        printf("; clipped %lld, dropped %lld degenerate/tiny, %lld not in the mapping",
               (long long)s->clipped, (long long)s->dropped_small, (long long)s->unmapped);
    if (s->bad_lines) printf("; %lld malformed lines skipped", (long long)s->bad_lines);
    printf("\n");
    fflush(stdout);
    st = deft_det_write(tf, &d, out);
    deft_det_dataset_free(&d);
    if (st) return cli_fail(st, "dataset_convert");
    printf("wrote %s %s\n", to, out);
    return 0;
}

static int count_suffix(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    size_t ls = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += l > ls && !strcasecmp(e->d_name + l - ls, suffix);
    }
    closedir(d);
    return n;
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool guess_format(const char *labels, enum deft_det_format *f) {
    size_t l = strlen(labels);
    if (l > 5 && !strcasecmp(labels + l - 5, ".json")) {
        *f = DEFT_DET_COCO;
        return true;
    }
    if (!is_dir(labels)) return false;
    int xml = count_suffix(labels, ".xml"), txt = count_suffix(labels, ".txt");
    if (!xml && !txt) return false;
    *f = xml > txt ? DEFT_DET_VOC : DEFT_DET_KITTI;
    return true;
}

/* images/, image_2/ or JPEGImages/ beside the labels (the parent directory). */
static char *guess_images(const char *labels, enum deft_det_format f) {
    static const char *const names[] = {"images", "image_2", "JPEGImages", "image"};
    size_t l = strlen(labels);
    while (l > 1 && labels[l - 1] == '/') l--;
    char parent[4096];
    if (l >= sizeof parent) return NULL;
    memcpy(parent, labels, l);
    parent[l] = 0;
    char *slash = strrchr(parent, '/');
    if (f == DEFT_DET_COCO || slash) {
        if (slash) *slash = 0;
        else snprintf(parent, sizeof parent, ".");
    } else {
        snprintf(parent, sizeof parent, ".");
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", parent[0] ? parent : "/", names[i]);
        if (is_dir(p)) return strdup(p);
    }
    return NULL;
}

static int validate(int argc, char **argv) {
    const char *labels = NULL, *images = NULL, *format = NULL, *out = NULL, *split = NULL;
    const char *maxf = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-d", "--dataset", &labels, &err) ||
            arg_str(argc, argv, &i, "-i", "--images", &images, &err) ||
            arg_str(argc, argv, &i, NULL, "--format", &format, &err) ||
            arg_str(argc, argv, &i, NULL, "--split", &split, &err) ||
            arg_str(argc, argv, &i, NULL, "--max_findings", &maxf, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &out, &err)) {
            if (err) return 2;
            continue;
        }
        if (is_help(argv[i])) return usage(stdout);
        fprintf(stderr, "deft detection dataset_validate: unknown flag '%s' (see --help)\n", argv[i]);
        return 2;
    }
    if (!labels) {
        fprintf(stderr, "deft detection dataset_validate: -d LABELS is required (see --help)\n");
        return 2;
    }
    long long max_findings = 50;
    if (maxf && !arg_parse_int("--max_findings", maxf, -1, 1000000000, &max_findings)) return 2;
    enum deft_det_format f;
    if (format) {
        if (!parse_format("--format", format, &f)) return 2;
    } else if (!guess_format(labels, &f)) {
        fprintf(stderr, "deft detection dataset_validate: cannot tell the format of %s (no .json "
                "file, no .txt or .xml files in it): give --format, or check -d\n", labels);
        return 2;
    }
    char *guessed = NULL;
    if (!images && (guessed = guess_images(labels, f)))
        printf("images: %s (found beside the labels; -i to choose)\n", guessed);
    struct deft_det_source src = {f, images ? images : guessed, labels, split};
    struct deft_det_report *rep;
    enum deft_status st = deft_det_validate(&src, &rep);
    free(guessed);
    if (st) return cli_fail(st, "dataset_validate");
    deft_det_report_print(rep, stdout, (int)max_findings);
    if (out) {
        st = deft_det_report_write_json(rep, out);
        if (!st) {
            char plot[4200];
            size_t l = strlen(out);
            int keep = l > 5 && !strcmp(out + l - 5, ".json") ? (int)(l - 5) : (int)l;
            snprintf(plot, sizeof plot, "%.*s_box_sizes", keep, out);
            st = deft_det_report_plot(rep, plot);
            if (!st) printf("wrote %s and %s.svg/.png\n", out, plot);
        }
    }
    int rc = rep->by_severity[DEFT_DET_ERROR] + rep->by_severity[DEFT_DET_WARNING] ? 1 : 0;
    deft_det_report_free(rep);
    if (st) return cli_fail(st, "dataset_validate");
    return rc;
}

/* score: KITTI predictions (16th field = score) from any source against KITTI
 * ground truth, with the same code as `evaluate`. */
static int score(int argc, char **argv) {
    const char *gt = NULL, *pred = NULL, *mode = "integrate", *iou = NULL, *out = NULL, *images = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-l", "--label_dir", &gt, &err) ||
            arg_str(argc, argv, &i, "-p", "--prediction_dir", &pred, &err) ||
            arg_str(argc, argv, &i, "-i", "--images", &images, &err) ||
            arg_str(argc, argv, &i, NULL, "--ap_mode", &mode, &err) ||
            arg_str(argc, argv, &i, NULL, "--iou", &iou, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &out, &err)) {
            if (err) return 2;
            continue;
        }
        if (is_help(argv[i])) return usage(stdout);
        fprintf(stderr, "deft detection score: unknown flag '%s' (see --help)\n", argv[i]);
        return 2;
    }
    if (!gt || !pred) {
        fprintf(stderr, "deft detection score: give -l GT_DIR and -p PRED_DIR (KITTI; predictions with a score as "
                "the 16th field)\n");
        return 2;
    }
    enum deft_ap_mode m;
    if (deft_ap_mode_parse(mode, &m)) return cli_fail(DEFT_ERR_INVALID_ARG, "score --ap_mode");
    struct deft_det_eval_options o;
    deft_det_eval_options_init(&o, m);
    if (iou) {
        char *end;
        double v = strtod(iou, &end);
        if (end == iou || *end || !(v > 0 && v < 1)) {
            fprintf(stderr, "deft detection score: --iou expects a number in (0, 1), got '%s'\n", iou);
            return 2;
        }
        o.iou = v;
    }
    struct deft_det_read_opts ro;
    deft_det_read_opts_init(&ro);
    ro.probe_sizes = images != NULL;
    struct deft_det_source gs = {DEFT_DET_KITTI, images, gt, NULL}, ps = {DEFT_DET_KITTI, NULL, pred, NULL};
    struct deft_det_dataset g = {0}, p = {0};
    struct deft_det_metrics *res = NULL;
    enum deft_status st = deft_det_read(&gs, 1, &ro, &g);
    ro.with_score = true;
    ro.probe_sizes = false;
    if (!st) st = deft_det_read(&ps, 1, &ro, &p);
    if (!st) st = deft_det_eval_datasets(&g, &p, &o, &res);
    if (!st) {
        deft_det_metrics_print(stdout, res, (const char *const *)g.class_names);
        if (out) st = deft_det_metrics_write_json(out, res, (const char *const *)g.class_names);
        if (!st && out) printf("wrote %s\n", out);
    }
    deft_det_metrics_free(res);
    deft_det_dataset_free(&g);
    deft_det_dataset_free(&p);
    return st ? cli_fail(st, "score") : 0;
}

int cmd_detection(int argc, char **argv) {
    if (argc < 2 || is_help(argv[1])) return usage(argc < 2 ? stderr : stdout);
    if (!strcmp(argv[1], "dataset_convert")) return convert(argc - 1, argv + 1);
    if (!strcmp(argv[1], "dataset_validate")) return validate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "score")) return score(argc - 1, argv + 1);
    fprintf(stderr, "deft detection: unknown action '%s' (dataset_convert, dataset_validate, score; "
            "see deft detection --help)\n", argv[1]);
    return 2;
}

/* yolo_quickstart.c - `deft yolo_v4 train --data DIR [--val DIR] [--arch
 * resnet18] ...`: a TAO yolo_v4 spec built from a dataset folder and
 * sensible defaults, so a first detector needs no spec file. The folder's
 * layout says the label format (KITTI, VOC or COCO), its labels give the
 * class list, and k-means on its boxes gives the anchors (what a user would
 * otherwise do by hand with `deft yolo_v4 kmeans`). The run saves the
 * resolved spec as spec.yaml, so the user continues from a file. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "tasks/yolo_v4/yolo_task.h"

/* Where a detection dataset's parts are (absolute paths; "" when absent). */
struct layout {
    enum deft_det_format format;
    char images[PATH_MAX], labels[PATH_MAX];
    char train_list[PATH_MAX], val_list[PATH_MAX]; /* split lists found in DIR */
};

static bool is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* Does dir hold a file ending in ext (case-insensitive)? */
static bool has_files(const char *dir, const char *ext) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool found = false;
    size_t el = strlen(ext);
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        found = e->d_name[0] != '.' && l > el && !strcasecmp(e->d_name + l - el, ext);
    }
    closedir(d);
    return found;
}

static bool has_images(const char *dir) {
    return has_files(dir, ".jpg") || has_files(dir, ".jpeg") || has_files(dir, ".png") || has_files(dir, ".bmp");
}

/* The first of names under dir that is a folder holding files ending in ext, into out. */
static bool find_sub(const char *dir, const char *const *names, const char *ext, char *out) {
    for (; *names; names++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", dir, *names);
        if (is_dir(p) && (!ext || has_files(p, ext)) && realpath(p, out)) return true;
    }
    return false;
}

/* The one COCO .json of dir (or of dir/annotations) into out. */
static bool find_coco(const char *dir, char *out) {
    static const char *const names[] = {"annotations.json", "annotations_coco.json", "instances.json",
                                        "_annotations.coco.json", "annotations/instances.json", NULL};
    for (const char *const *n = names; *n; n++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", dir, *n);
        if (is_file(p) && realpath(p, out)) return true;
    }
    return false;
}

/* Split lists: DIR/ImageSets/Main/{train,val|test}.txt or DIR/{train,val|test}.txt. */
static void find_splits(const char *dir, struct layout *l) {
    static const char *const where[] = {"ImageSets/Main/", ""};
    for (int w = 0; w < 2 && !l->train_list[0]; w++) {
        char tr[PATH_MAX + 64], va[PATH_MAX + 64], te[PATH_MAX + 64];
        snprintf(tr, sizeof tr, "%s/%strain.txt", dir, where[w]);
        snprintf(va, sizeof va, "%s/%sval.txt", dir, where[w]);
        snprintf(te, sizeof te, "%s/%stest.txt", dir, where[w]);
        const char *v = is_file(va) ? va : is_file(te) ? te : NULL;
        if (is_file(tr) && v && realpath(tr, l->train_list) && !realpath(v, l->val_list)) l->train_list[0] = 0;
    }
}

static enum deft_status find_layout(const char *flag, const char *dir, struct layout *l) {
    static const char *const image_dirs[] = {"images", "JPEGImages", "image_2", "image", NULL};
    static const char *const kitti_dirs[] = {"labels", "labels_kitti", "label_2", "label", NULL};
    static const char *const voc_dirs[] = {"Annotations", "annotations", NULL};
    memset(l, 0, sizeof *l);
    struct stat st;
    if (stat(dir, &st)) return deft_set_error(DEFT_ERR_NOT_FOUND, "%s %s: %s", flag, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s %s is not a folder (expected a KITTI, VOC or COCO dataset "
                              "folder)", flag, dir);
    if (!find_sub(dir, image_dirs, NULL, l->images) || !has_images(l->images)) {
        if (!has_images(dir) || !realpath(dir, l->images))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "%s %s: no images found (expected %s/images/ or JPEGImages/ "
                                  "or image_2/ beside the labels)", flag, dir, dir);
    }
    if (find_sub(dir, kitti_dirs, ".txt", l->labels)) l->format = DEFT_DET_KITTI;
    else if (find_sub(dir, voc_dirs, ".xml", l->labels)) l->format = DEFT_DET_VOC;
    else if (find_coco(dir, l->labels)) l->format = DEFT_DET_COCO;
    else
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s %s: no labels found (expected KITTI %s/labels/*.txt, VOC "
                              "%s/Annotations/*.xml or COCO %s/annotations.json)", flag, dir, dir, dir, dir);
    if (l->format != DEFT_DET_COCO) find_splits(dir, l);
    return DEFT_OK;
}

/* "416" or "416x320": multiples of 32, as the network's strides need. */
static enum deft_status size_flag(const char *v, int *w, int *h) {
    *w = *h = 416;
    if (!v) return DEFT_OK;
    char *end;
    long a = strtol(v, &end, 10), b = a;
    if (end != v && (*end == 'x' || *end == 'X')) b = strtol(end + 1, &end, 10);
    if (*end || a < 64 || b < 64 || a > 4096 || b > 4096 || a % 32 || b % 32)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--size %s: expected W or WxH, multiples of 32 in [64, 4096]", v);
    *w = (int)a;
    *h = (int)b;
    return DEFT_OK;
}

/* "resnet18" -> arch resnet, nlayers 18; "cspdarknet_tiny" -> as is. */
static void split_arch(const char *name, char *arch, size_t cap, int *nlayers) {
    size_t n = strlen(name), k = n;
    while (k && name[k - 1] >= '0' && name[k - 1] <= '9') k--;
    *nlayers = 0;
    bool family = k < n && k > 0 && name[k - 1] != '_' && name[k - 1] != 'v' && name[k - 1] != 'b';
    snprintf(arch, cap, "%.*s", (int)(family ? k : n), name);
    if (family) *nlayers = atoi(name + k);
}

/* YOLOv4-tiny has two heads (big, mid) unless its backbone is the 3-level one. */
static bool two_heads(const char *network, const char *arch) {
    return !strcmp(network, "yolo_v4_tiny") && !(arch && strstr(arch, "_3l"));
}

static void source_block(FILE *f, const char *block, const struct layout *l, const char *split) {
    fprintf(f, "  %s {\n    label_directory_path: \"%s\"\n    image_directory_path: \"%s\"\n", block, l->labels,
            l->images);
    if (split && split[0]) fprintf(f, "    split_list_path: \"%s\"\n", split);
    fprintf(f, "  }\n");
}

/* Anchors by k-means on the training boxes at the network size. */
static enum deft_status anchors(const struct layout *tr, const struct deft_det_dataset *ds, int k, bool tiny, int w,
                                int h, char **lines) {
    double *wh = NULL, centres[2 * 9];
    int n = 0;
    enum deft_status s = deft_anchor_boxes_from_dataset(ds, w, h, 0, 0, &wh, &n);
    if (!s && n <= k)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "--data %s: %d boxes, too few for %d anchors (k-means needs more "
                           "boxes than anchors)", tr->labels, n, k);
    struct deft_anchor_kmeans_options ko;
    deft_anchor_kmeans_options_init(&ko);
    ko.seed = 42;
    ko.net_w = w;
    ko.net_h = h;
    if (!s) s = deft_anchor_kmeans(wh, n, k, &ko, centres, NULL);
    if (!s) s = deft_anchor_spec_strings(centres, k, tiny, lines);
    deft_free(wh);
    return s;
}

static enum deft_status write_spec(FILE *f, const struct deft_task_args *t, const char *network,
                                   const struct layout *tr, const struct layout *va, bool have_val,
                                   const struct deft_det_dataset *ds, const char *anchor_lines, int w, int h) {
    const char *name = deft_task_arg(t, "--arch"), *pre = deft_task_arg(t, "--pretrained");
    if (!name) name = !strcmp(network, "yolo_v4_tiny") ? "cspdarknet_tiny" : "resnet18";
    bool two = two_heads(network, name);
    char arch[64], pre_abs[PATH_MAX] = "";
    int nlayers, epochs, batch;
    split_arch(name, arch, sizeof arch, &nlayers);
    double lr = 2e-3;
    enum deft_status s;
    if ((s = deft_task_arg_int(t, "--epochs", 1, 100000, 80, &epochs)) ||
        (s = deft_task_arg_int(t, "--batch", 1, 1024, 8, &batch)))
        return s;
    const char *lrs = deft_task_arg(t, "--lr");
    if (lrs) {
        char *end;
        lr = strtod(lrs, &end);
        if (end == lrs || *end || !(lr > 0 && lr <= 10))
            return deft_set_error(DEFT_ERR_INVALID_ARG, "--lr %s: expected a number in (0, 10]", lrs);
    }
    if (pre && !realpath(pre, pre_abs))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "--pretrained %s: %s", pre, strerror(errno));
    fprintf(f, "# built by deft %s train --data: %s labels, anchors by k-means on the training boxes\n"
            "random_seed: 42\nyolov4_config {\n", network, deft_det_format_name(tr->format));
    for (const char *p = anchor_lines; *p;) { /* indented into the block */
        const char *e = strchr(p, '\n');
        int len = e ? (int)(e - p) : (int)strlen(p);
        if (len) fprintf(f, "  %.*s\n", len, p);
        p += len + (e != NULL);
    }
    fprintf(f, "  arch: \"%s\"\n", arch);
    if (nlayers) fprintf(f, "  nlayers: %d\n", nlayers);
    fprintf(f, "  box_matching_iou: 0.25\n  matching_neutral_box_iou: 0.5\n  loss_loc_weight: 1.0\n"
            "  loss_neg_obj_weights: 1.0\n  loss_class_weights: 1.0\n  big_grid_xy_extend: 0.05\n"
            "  mid_grid_xy_extend: %s\n%s}\n", two ? "0.05" : "0.1", two ? "" : "  small_grid_xy_extend: 0.2\n");
    fprintf(f, "training_config {\n  batch_size_per_gpu: %d\n  num_epochs: %d\n  checkpoint_interval: %d\n"
            "  learning_rate {\n    soft_start_cosine_annealing_schedule {\n      min_learning_rate: 1e-6\n"
            "      max_learning_rate: %.17g\n      soft_start: 0.05\n    }\n  }\n"
            "  regularizer {\n    type: L2\n    weight: 5e-5\n  }\n"
            "  optimizer {\n    adam {\n      epsilon: 1e-7\n      beta1: 0.9\n      beta2: 0.999\n    }\n  }\n",
            batch, epochs, epochs <= 20 ? 1 : 5, lr);
    if (pre_abs[0]) fprintf(f, "  pretrain_model_path: \"%s\"\n", pre_abs);
    fprintf(f, "}\neval_config {\n  average_precision_mode: INTEGRATE\n  batch_size: %d\n"
            "  matching_iou_threshold: 0.5\n}\nnms_config {\n  confidence_threshold: 0.001\n"
            "  clustering_iou_threshold: 0.5\n  top_k: 200\n}\n", batch);
    fprintf(f, "augmentation_config {\n  hue: 0.1\n  saturation: 1.5\n  exposure: 1.5\n  vertical_flip: 0.0\n"
            "  horizontal_flip: 0.5\n  jitter: 0.3\n  output_width: %d\n  output_height: %d\n  output_channel: 3\n"
            "  mosaic_prob: 0.5\n  mosaic_min_ratio: 0.2\n}\n", w, h);
    fprintf(f, "dataset_config {\n");
    source_block(f, "data_sources", tr, have_val ? NULL : tr->train_list);
    if (have_val) source_block(f, "validation_data_sources", va, NULL);
    else if (tr->val_list[0]) source_block(f, "validation_data_sources", tr, tr->val_list);
    if (tr->format != DEFT_DET_KITTI) fprintf(f, "  type: \"%s\"\n", deft_det_format_name(tr->format));
    fprintf(f, "  include_difficult_in_training: true\n");
    for (int c = 0; c < ds->n_classes; c++)
        fprintf(f, "  target_class_mapping { key: \"%s\" value: \"%s\" }\n", ds->class_names[c], ds->class_names[c]);
    fprintf(f, "}\n");
    return DEFT_OK;
}

/* An --arch the spec refuses is the flag's error, not the generated text's. */
static enum deft_status check_arch(const struct deft_task_args *t, const char *text) {
    struct deft_yolo_config cfg;
    const char *arch = deft_task_arg(t, "--arch");
    enum deft_status s = deft_yolo_config_parse(text, strlen(text), "(train --data)", DEFT_SPEC_FORMAT_PROTOTXT, NULL,
                                                0, &cfg);
    if (!s) {
        deft_yolo_config_free(&cfg);
        return DEFT_OK;
    }
    const char *m = deft_last_error(), *what = strstr(m, "yolov4_config.");
    if (!arch || !what || (strncmp(what, "yolov4_config.arch", 18) && strncmp(what, "yolov4_config.nlayers", 21)))
        return s;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", what);
    return deft_set_error(s, "--arch %s: %s", arch, msg);
}

enum deft_status yolo_quick_spec(const struct deft_task_args *t, const char *network, char **text) {
    *text = NULL;
    const char *data = deft_task_arg(t, "--data"), *val = deft_task_arg(t, "--val");
    if (!data)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "give -e SPEC, or --data DIR (a KITTI, VOC or COCO dataset folder) "
                              "to train without a spec");
    struct layout tr, va;
    enum deft_status s = find_layout("--data", data, &tr);
    if (!s && val && !(s = find_layout("--val", val, &va)) && va.format != tr.format)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "--val %s has %s labels but --data %s has %s: give both in one format",
                           val, deft_det_format_name(va.format), data, deft_det_format_name(tr.format));
    const char *arch = deft_task_arg(t, "--arch");
    bool tiny = !strcmp(network, "yolo_v4_tiny");
    if (!s && arch && tiny != !strncmp(arch, "cspdarknet_tiny", 15))
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "--arch %s: %s", arch,
                           tiny ? "yolo_v4_tiny's backbone is cspdarknet_tiny (or cspdarknet_tiny_3l); run `deft "
                                  "yolo_v4 train` for another"
                                : "a tiny backbone: run `deft yolo_v4_tiny train`");
    int w, h;
    if (!s) s = size_flag(deft_task_arg(t, "--size"), &w, &h);
    if (s) return s;
    /* the training split's boxes: its class list and its anchors */
    struct deft_det_source src = {tr.format, tr.images, tr.labels, !val && tr.train_list[0] ? tr.train_list : NULL};
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    struct deft_det_dataset ds;
    char *lines = NULL;
    s = deft_det_read(&src, 1, &o, &ds);
    if (!s && ds.n_classes == 0) s = deft_set_error(DEFT_ERR_INVALID_ARG, "--data %s: the labels hold no boxes", data);
    bool two = two_heads(network, arch);
    if (!s) s = anchors(&tr, &ds, two ? 6 : 9, two, w, h, &lines);
    size_t n = 0;
    FILE *f = s ? NULL : open_memstream(text, &n);
    if (!s && !f) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = write_spec(f, t, network, &tr, &va, val != NULL, &ds, lines, w, h);
    if (f && fclose(f) && !s) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    if (!s) s = check_arch(t, *text);
    if (!s && !val && !tr.val_list[0])
        deft_log(DEFT_LOG_WARN, "no validation set: give --val DIR, or train.txt and val.txt lists in %s "
                 "(ImageSets/Main/ or the folder itself); the run keeps its last weights", data);
    deft_free(lines);
    deft_det_dataset_free(&ds);
    if (s) {
        free(*text);
        *text = NULL;
    }
    return s;
}

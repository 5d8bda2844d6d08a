/* cls_quickstart.c - `deft classification train --data DIR [--val DIR]
 * [--arch NAME] ...`: a spec built from the flags and sensible defaults for
 * fine-tuning (ImageNet normalization, random crops and flips, SGD with
 * momentum and a cosine schedule), so a first run needs no spec file. The
 * text is deft YAML; the run saves it (resolved) as spec.yaml, so the user
 * continues from a file. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/models.h"
#include "deft/task.h"
#include "tasks/classification/cls_common.h"

/* DIR must hold at least one class folder; *abs gets its absolute path. */
static enum deft_status image_folder(const char *flag, const char *dir, char *abs) {
    struct stat st;
    if (stat(dir, &st))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "%s %s: %s", flag, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s %s is not a folder (expected one folder of images per class)",
                              flag, dir);
    DIR *d = opendir(dir);
    if (!d) return deft_set_error(DEFT_ERR_IO, "%s %s: %s", flag, dir, strerror(errno));
    int classes = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[PATH_MAX];
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!stat(p, &st) && S_ISDIR(st.st_mode)) classes++;
    }
    closedir(d);
    if (!classes)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s %s has no class folders (expected %s/<class>/<images>)", flag,
                              dir, dir);
    if (!realpath(dir, abs)) return deft_set_error(DEFT_ERR_IO, "%s %s: %s", flag, dir, strerror(errno));
    return DEFT_OK;
}

static void yaml_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static enum deft_status float_flag(const struct deft_task_args *t, const char *flag, double lo, double hi,
                                   double dflt, double *out) {
    const char *v = deft_task_arg(t, flag);
    *out = dflt;
    if (!v) return DEFT_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !(x > lo && x <= hi))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "%s %s: expected a number in (%g, %g]", flag, v, lo, hi);
    *out = x;
    return DEFT_OK;
}

/* --pretrained: a file, or a catalogue name (`deft model list`) already in
 * the download cache; a name also gives the default --arch. */
static enum deft_status pretrained_path(const char *pre, const char **arch, char *abs) {
    struct stat st;
    if (!stat(pre, &st)) {
        if (!realpath(pre, abs)) return deft_set_error(DEFT_ERR_IO, "--pretrained %s: %s", pre, strerror(errno));
        return DEFT_OK;
    }
    const struct deft_pretrained *p = deft_pretrained_find(pre);
    if (!p)
        return deft_set_error(DEFT_ERR_NOT_FOUND, "--pretrained %s: no such file, and not a name of `deft model list`",
                              pre);
    if (*arch && strcmp(*arch, p->arch))
        return deft_set_error(DEFT_ERR_INVALID_ARG, "--pretrained %s holds %s weights, not --arch %s", pre, p->arch,
                              *arch);
    *arch = p->arch;
    char dir[PATH_MAX], path[PATH_MAX + 256];
    deft_pretrained_cache_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, p->file);
    if (stat(path, &st) || !realpath(path, abs))
        return deft_set_error(DEFT_ERR_NOT_FOUND, "--pretrained %s: not downloaded yet (no %s): run `deft model download "
                              "%s` first", pre, path, p->name);
    return DEFT_OK;
}

enum deft_status cls_quick_spec(const struct deft_task_args *t, char **yaml) {
    *yaml = NULL;
    const char *data = deft_task_arg(t, "--data"), *val = deft_task_arg(t, "--val");
    const char *arch = deft_task_arg(t, "--arch"), *pre = deft_task_arg(t, "--pretrained");
    char data_abs[PATH_MAX], val_abs[PATH_MAX] = "", pre_abs[PATH_MAX] = "";
    enum deft_status s;
    if (!data) return deft_set_error(DEFT_ERR_INVALID_ARG, "give -e SPEC, or --data DIR (one folder of images per "
                                     "class) to train without a spec");
    if ((s = image_folder("--data", data, data_abs))) return s;
    if (val && (s = image_folder("--val", val, val_abs))) return s;
    const char *name;
    if (arch && (s = deft_model_resolve_arch(arch, 0, &name))) return deft_wrap_error(s, "--arch %s", arch);
    if (pre && (s = pretrained_path(pre, &arch, pre_abs))) return s;
    if (!arch) arch = "resnet18";
    if ((s = deft_model_resolve_arch(arch, 0, &name))) return deft_wrap_error(s, "--arch %s", arch);
    int epochs, batch, size;
    double lr;
    if ((s = deft_task_arg_int(t, "--epochs", 1, 100000, 10, &epochs)) ||
        (s = deft_task_arg_int(t, "--batch", 1, 4096, 16, &batch)) ||
        (s = deft_task_arg_int(t, "--size", 16, 4096, 224, &size)) ||
        (s = float_flag(t, "--lr", 0, 10, 0.01, &lr)))
        return s;
    size_t n = 0;
    FILE *f = open_memstream(yaml, &n);
    if (!f) return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    /* --grayscale: one grey channel (PIL's 'L'); pretrained RGB weights fold into it */
    int channels = deft_task_arg(t, "--grayscale") ? 1 : 3;
    fprintf(f, "# built by deft classification train --data: fine-tuning defaults\nmodel_config:\n  arch: %s\n"
            "  input_image_size: \"%d,%d,%d\"\ntrain_config:\n  train_dataset_path: ", name, channels, size, size);
    yaml_str(f, data_abs);
    if (val_abs[0]) {
        fprintf(f, "\n  val_dataset_path: ");
        yaml_str(f, val_abs);
    }
    if (pre_abs[0]) {
        fprintf(f, "\n  pretrained_model_path: ");
        yaml_str(f, pre_abs);
    }
    fprintf(f, "\n  batch_size_per_gpu: %d\n  n_epochs: %d\n  n_workers: 2\n  preprocess_mode: torch\n"
            "  enable_random_crop: true\n  enable_center_crop: true\n  optimizer:\n    sgd:\n      lr: %.17g\n"
            "      momentum: 0.9\n  lr_config:\n    cosine:\n      learning_rate: %.17g\n      soft_start: 0.05\n"
            "  reg_config:\n    type: L2\n    weight_decay: 0.00005\n",
            batch, epochs, lr, lr);
    if (fclose(f)) {
        free(*yaml);
        *yaml = NULL;
        return deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    }
    return DEFT_OK;
}

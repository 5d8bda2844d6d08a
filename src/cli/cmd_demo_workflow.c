/* cmd_demo_workflow.c - `deft demo`: with no data given, generate a small
 * labelled image set (four pattern classes, BMP files), write a spec, then
 * run classification train -> evaluate -> inference and print the accuracy.
 * `deft demo --synthetic` is the engine-only demo (cmd_demo.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/classification.h"
#include "deft/deft.h"
#include "deft/io.h"
#include "cli/args.h"

int demo_synthetic(int argc, char **argv);

enum { IMG = 40, CLASSES = 4 };
static const char *const class_names[CLASSES] = {"blob", "checker", "hstripes", "vstripes"};

static int mkdir_p(const char *path) {
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v & 255, p[1] = (v >> 8) & 255, p[2] = (v >> 16) & 255, p[3] = v >> 24; }

/* A noisy pattern image of class cls as a 24-bit BMP. */
static enum deft_status write_image(const char *path, int cls, uint64_t seed, uint64_t idx) {
    enum { ROW = IMG * 3, SIZE = 54 + ROW * IMG };
    static uint8_t bmp[SIZE];
    memset(bmp, 0, 54);
    bmp[0] = 'B', bmp[1] = 'M';
    put32(bmp + 2, SIZE), put32(bmp + 10, 54), put32(bmp + 14, 40), put32(bmp + 18, IMG), put32(bmp + 22, IMG);
    bmp[26] = 1, bmp[28] = 24;
    put32(bmp + 34, ROW * IMG);
    int phase = (int)(deft_rng_u64(seed, 21, idx) % 5), period = 4 + (int)(deft_rng_u64(seed, 22, idx) % 3);
    float tint[3];
    for (int c = 0; c < 3; c++) tint[c] = 60.0f + 80.0f * deft_rng_uniform(seed, 23 + (uint64_t)c, idx);
    for (int y = 0; y < IMG; y++)
        for (int x = 0; x < IMG; x++) {
            bool on;
            switch (cls) {
            case 0: {
                float dy = (float)y - 19.5f, dx = (float)x - 19.5f;
                on = dx * dx + dy * dy < 90.0f + 20.0f * (float)phase;
                break;
            }
            case 1: on = (((y + phase) / period) + ((x + phase) / period)) % 2; break;
            case 2: on = ((y + phase) / period) % 2; break;
            default: on = ((x + phase) / period) % 2;
            }
            for (int c = 0; c < 3; c++) {
                float v = tint[c] + (on ? 90.0f : 0.0f) +
                          45.0f * deft_rng_normal(seed, 30, (idx * IMG + (uint64_t)y) * IMG * 3 + (uint64_t)x * 3 + (uint64_t)c);
                bmp[54 + (IMG - 1 - y) * ROW + x * 3 + (2 - c)] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return deft_file_write_atomic(path, bmp, SIZE);
}

static enum deft_status make_dataset(const char *root, uint64_t seed) {
    static const char *const splits[2] = {"train", "val"};
    static const int counts[2] = {48, 16};
    uint64_t idx = 0;
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < CLASSES; c++) {
            char dir[2200];
            snprintf(dir, sizeof dir, "%s/%s/%s", root, splits[s], class_names[c]);
            if (mkdir_p(dir)) return deft_set_error(DEFT_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
            for (int i = 0; i < counts[s]; i++, idx++) {
                char path[2400];
                snprintf(path, sizeof path, "%s/%03d.bmp", dir, i);
                enum deft_status st = write_image(path, c, seed, idx);
                if (st) return st;
            }
        }
    return DEFT_OK;
}

int cmd_demo(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--synthetic")) {
            for (int j = i; j + 1 < argc; j++) argv[j] = argv[j + 1];
            return demo_synthetic(argc - 1, argv);
        }
    const char *dir = "runs/demo", *epochs = "12", *threads = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-r", "--results_dir", &dir, &err) ||
            arg_str(argc, argv, &i, NULL, "--epochs", &epochs, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: deft demo [-r DIR] [--epochs 12] [--threads N]\n"
                   "  generates a 4-class image set in DIR/data, trains resnet10 on it, evaluates and runs inference.\n"
                   "usage: deft demo --synthetic [...]   engine-only demo (see deft demo --synthetic --help)\n");
            return 0;
        }
        fprintf(stderr, "deft demo: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    long long ep, th = 0;
    if (!arg_parse_int("--epochs", epochs, 1, 1000, &ep) || (threads && !arg_parse_int("--threads", threads, 1, 1024, &th)))
        return 2;
    char data[2048], spec[2100], model[2100], val[2100];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(spec, sizeof spec, "%s/spec.yaml", dir);
    snprintf(model, sizeof model, "%s/weights/best.safetensors", dir);
    snprintf(val, sizeof val, "%s/val", data);
    printf("deft demo: generating a 4-class image set (%d train, %d val images) in %s\n", 48 * CLASSES, 16 * CLASSES, data);
    enum deft_status s = make_dataset(data, 7);
    if (s) return cli_fail(s, NULL);
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "# written by deft demo\n"
                     "model_config:\n  arch: resnet10\n  input_image_size: \"3,%d,%d\"\n"
                     "train_config:\n  train_dataset_path: %s/train\n  val_dataset_path: %s/val\n"
                     "  batch_size_per_gpu: 16\n  n_epochs: %lld\n  n_workers: 1\n  random_seed: 1\n"
                     "  optimizer:\n    sgd:\n      lr: 0.05\n      momentum: 0.9\n"
                     "  lr_config:\n    cosine:\n      learning_rate: 0.05\n      min_lr_ratio: 0.01\n      soft_start: 0.1\n"
                     "  reg_config:\n    type: L2\n    weight_decay: 0.00005\n"
                     "  enable_random_crop: true\n  preprocess_mode: torch\n"
                     "  augmentation:\n    scale_min: 0.5\n    hflip_prob: 0.5\n"
                     "  checkpoint_interval: %lld\n"
                     "eval_config:\n  eval_dataset_path: %s/val\n  top_k: 2\n  batch_size: 32\n",
                     IMG, IMG, data, data, ep, ep, data);
    if ((s = deft_file_write_atomic(spec, text, (size_t)n))) return cli_fail(s, NULL);
    struct deft_cls_args a = {.spec = spec, .results_dir = dir, .threads = (int)th, .backend = "cpu", .out = stdout};
    printf("\n== train (spec: %s) ==\n", spec);
    if ((s = deft_cls_train(&a))) return cli_fail(s, "train");
    printf("\n== evaluate ==\n");
    a.model = model;
    if ((s = deft_cls_evaluate(&a))) return cli_fail(s, "evaluate");
    printf("\n== inference on %s/blob ==\n", val);
    char blob[2200];
    snprintf(blob, sizeof blob, "%s/blob", val);
    a.input = blob;
    a.top_k = 1;
    FILE *devnull = fopen("/dev/null", "w");
    a.out = devnull ? devnull : stdout;
    s = deft_cls_inference(&a);
    if (devnull) fclose(devnull);
    if (s) return cli_fail(s, "inference");
    printf("inference: %s/inference/results.csv\n", dir);
    /* the reached accuracy, from evaluate/results.json */
    char rj[2200];
    snprintf(rj, sizeof rj, "%s/evaluate/results.json", dir);
    void *buf;
    size_t len;
    if (!deft_file_read(rj, 1 << 20, &buf, &len)) {
        const char *p = strstr(buf, "\"top1\"");
        double acc = p ? strtod(strchr(p, ':') + 1, NULL) : -1;
        printf("\ndeft demo: reached validation top-1 accuracy %.1f%% (chance is 25%%)\n", 100 * acc);
        deft_free(buf);
    }
    return 0;
}

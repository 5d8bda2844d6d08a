/* cmd_demo.c - `deft demo`: fine-tune-free smoke run that trains resnet10 on
 * generated 32x32 images of four pattern classes and shows the loss falling.
 * Batches are a pure function of (seed, step), so a resumed run sees exactly
 * the batches an uninterrupted run would. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/deft.h"
#include "deft/trainer.h"
#include "cli/args.h"

enum { SIZE = 32, CLASSES = 4 };

/* class 0: horizontal stripes, 1: vertical stripes, 2: checkerboard, 3: centred blob */
static void make_batch(float *x, float *labels, int batch, uint64_t seed, int64_t step) {
    for (int n = 0; n < batch; n++) {
        uint64_t idx = (uint64_t)step * (uint64_t)batch + (uint64_t)n;
        int cls = (int)(deft_rng_u64(seed, 11, idx) % CLASSES);
        int phase = (int)(deft_rng_u64(seed, 12, idx) % 4);
        labels[n] = (float)cls;
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < SIZE; h++)
                for (int w = 0; w < SIZE; w++) {
                    float v;
                    switch (cls) {
                    case 0: v = ((h + phase) / 4) % 2 ? 1.0f : -1.0f; break;
                    case 1: v = ((w + phase) / 4) % 2 ? 1.0f : -1.0f; break;
                    case 2: v = (((h + phase) / 4) + ((w + phase) / 4)) % 2 ? 1.0f : -1.0f; break;
                    default: {
                        float dy = (float)h - 15.5f, dx = (float)w - 15.5f;
                        v = dx * dx + dy * dy < 80.0f + 10.0f * (float)phase ? 1.0f : -1.0f;
                    }
                    }
                    size_t i = (((size_t)n * 3 + (size_t)c) * SIZE + (size_t)h) * SIZE + (size_t)w;
                    x[i] = 0.3f * v + 1.2f * deft_rng_normal(seed, 13, idx * 4096 + i % 4096);
                }
    }
}

static int mkdirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static int demo_usage(FILE *f) {
    fprintf(f, "usage: deft demo --synthetic [-r DIR] [--steps 60] [--batch 32] [--seed 1] [--threads N]\n"
               "                 [--checkpoint_every 10] [--resume] [--backend cpu|ref|cuda|cuda-emu]\n"
               "Trains resnet10 on generated 32x32 images (4 pattern classes) and prints the loss.\n"
               "Checkpoints go to DIR/weights/latest.safetensors (default DIR: runs/demo).\n");
    return f == stdout ? 0 : 2;
}

int demo_synthetic(int argc, char **argv) {
    const char *dir = "runs/demo", *steps_s = "60", *batch_s = "32", *seed_s = "1", *threads = NULL,
               *every_s = "10", *backend = "cpu";
    bool err = false, resume = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-r", "--results_dir", &dir, &err) ||
            arg_str(argc, argv, &i, NULL, "--steps", &steps_s, &err) ||
            arg_str(argc, argv, &i, NULL, "--batch", &batch_s, &err) ||
            arg_str(argc, argv, &i, NULL, "--seed", &seed_s, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err) ||
            arg_str(argc, argv, &i, NULL, "--checkpoint_every", &every_s, &err) ||
            arg_str(argc, argv, &i, NULL, "--backend", &backend, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--resume")) { resume = true; continue; }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return demo_usage(stdout);
        fprintf(stderr, "deft demo: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    long long steps, batch, seed, every, th = 0;
    if (!arg_parse_int("--steps", steps_s, 1, 1000000, &steps) || !arg_parse_int("--batch", batch_s, 1, 1024, &batch) ||
        !arg_parse_int("--seed", seed_s, 0, (1LL << 62), &seed) ||
        !arg_parse_int("--checkpoint_every", every_s, 0, 1000000, &every) ||
        (threads && !arg_parse_int("--threads", threads, 1, 1024, &th)))
        return 2;
    if (th) deft_set_threads((int)th);
    char wdir[1100], ckpt[1200], status[1200];
    snprintf(wdir, sizeof wdir, "%s/weights", dir);
    snprintf(ckpt, sizeof ckpt, "%s/latest.safetensors", wdir);
    snprintf(status, sizeof status, "%s/status.json", dir);
    if (mkdirs(wdir)) {
        fprintf(stderr, "deft demo: cannot create %s: %s\n", wdir, strerror(errno));
        return 1;
    }
    struct deft_trainer *t = NULL;
    enum deft_status s = deft_trainer_create(&(struct deft_trainer_opts){
        .model = {.arch = "resnet10", .num_classes = CLASSES, .batch = (int)batch, .height = SIZE, .width = SIZE},
        .optim = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f, .weight_decay = 5e-4f},
        .lr = {.kind = DEFT_LR_COSINE, .lr = 0.02f, .min_lr = 0.0005f, .total_steps = steps, .warmup_steps = 5},
        .backend = backend, .seed = (uint64_t)seed}, &t);
    if (s) return cli_fail(s, NULL);
    if (resume && (s = deft_trainer_resume(t, ckpt))) {
        deft_trainer_free(t);
        return cli_fail(s, "resume");
    }
    FILE *st = fopen(status, resume ? "a" : "w");
    size_t in_n = (size_t)batch * 3 * SIZE * SIZE;
    float *x = malloc(in_n * sizeof(float)), *labels = malloc((size_t)batch * sizeof(float));
    float *logits = malloc((size_t)batch * CLASSES * sizeof(float));
    int rc = 0;
    if (!x || !labels || !logits) {
        rc = cli_fail(deft_set_error(DEFT_ERR_NOMEM, "out of memory"), NULL);
        goto done;
    }
    int64_t start = deft_trainer_steps(t);
    printf("deft demo: resnet10, %lldx3x%dx%d generated images, %d classes, %s backend, %d threads%s\n",
           batch, SIZE, SIZE, CLASSES, backend, deft_get_threads(), resume ? " (resumed)" : "");
    double t0 = deft_time_now(), loss_sum = 0;
    int correct = 0, seen = 0;
    for (int64_t step = start; step < steps; step++) {
        make_batch(x, labels, (int)batch, (uint64_t)seed, step);
        float loss;
        if ((s = deft_trainer_step(t, x, labels, &loss)) ||
            (s = deft_trainer_logits(t, logits, (size_t)batch * CLASSES))) {
            rc = cli_fail(s, NULL);
            goto done;
        }
        loss_sum += loss;
        for (int n = 0; n < batch; n++) {
            int best = 0;
            for (int c = 1; c < CLASSES; c++)
                if (logits[n * CLASSES + c] > logits[n * CLASSES + best]) best = c;
            correct += best == (int)labels[n];
        }
        seen += (int)batch;
        bool log_now = (step + 1) % 10 == 0 || step + 1 == steps;
        if (log_now) {
            int64_t done_steps = step + 1 - start;
            double el = deft_time_now() - t0, avg = loss_sum / (double)(seen / batch);
            int bar = (int)(30 * (step + 1) / steps);
            printf("step %4lld/%lld [%-30.*s] loss %.4f  acc %5.1f%%  %.1f img/s\n", (long long)(step + 1),
                   steps, bar, "##############################", avg, 100.0 * correct / seen,
                   (double)done_steps * (double)batch / el);
            fflush(stdout);
            if (st) {
                fprintf(st, "{\"step\": %lld, \"loss\": %.6f, \"accuracy\": %.4f, \"time\": %.2f}\n",
                        (long long)(step + 1), avg, (double)correct / seen, el);
                fflush(st);
            }
            loss_sum = 0;
            correct = seen = 0;
        }
        if ((every > 0 && (step + 1) % every == 0) || step + 1 == steps) {
            if ((s = deft_trainer_save(t, ckpt))) {
                rc = cli_fail(s, "checkpoint");
                goto done;
            }
        }
    }
    printf("checkpoint: %s\n", ckpt);
done:
    if (st) fclose(st);
    free(x);
    free(labels);
    free(logits);
    deft_trainer_free(t);
    return rc;
}

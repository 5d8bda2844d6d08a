/* test_loader.c - the threaded loader over a generated class-folder dataset
 * with one corrupt file: skipped and counted, batches full, identical for
 * any thread count / prefetch depth, exact epoch restart, drop_last, strict
 * mode, mixup soft labels. Prints the loader throughput on hymenoptera_256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/data.h"

static char root[512];

/* Checksums of every batch of one epoch (images, labels). */
struct run {
    int batches;
    int sizes[64];
    uint64_t hash[64];
    struct deft_loader_stats stats;
};

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static enum deft_status run_epoch(struct deft_loader *l, int epoch, int B, int C, int H, int W, struct run *r) {
    float *img = malloc(sizeof(float) * (size_t)B * 3 * H * W), *lab = malloc(sizeof(float) * (size_t)B * C);
    enum deft_status st = deft_loader_start_epoch(l, epoch);
    memset(r, 0, sizeof *r);
    while (st == DEFT_OK) {
        int n = -1;
        st = deft_loader_next(l, img, lab, &n);
        if (st != DEFT_OK || n == 0) break;
        int lw = deft_loader_soft_labels(l) ? C : 1;
        r->sizes[r->batches] = n;
        r->hash[r->batches] = fnv(lab, sizeof(float) * n * lw, fnv(img, sizeof(float) * (size_t)n * 3 * H * W, 1469598103934665603ull));
        if (++r->batches == 64) break;
    }
    deft_loader_get_stats(l, &r->stats);
    free(img);
    free(lab);
    return st;
}

static bool same_runs(const struct run *a, const struct run *b) {
    if (a->batches != b->batches) return false;
    for (int i = 0; i < a->batches; i++)
        if (a->sizes[i] != b->sizes[i] || a->hash[i] != b->hash[i]) return false;
    return true;
}

static int quiet_warnings;
static void log_sink(enum deft_log_level lv, const char *msg, void *u) {
    (void)u;
    if (lv == DEFT_LOG_WARN) quiet_warnings++;
    else fprintf(stderr, "%s\n", msg);
}

int main(void) {
    snprintf(root, sizeof root, "%s/data", test_tmpdir());
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && /usr/bin/python3 '%s/tests/data/make_dataset.py' '%s'", root,
             test_source_dir(), root);
    if (system(cmd) != 0) test_skip("python3 with numpy + PIL is needed to write the test dataset");
    deft_log_set(log_sink, NULL);
    long live0 = deft_alloc_live();
    char dsdir[768];
    snprintf(dsdir, sizeof dsdir, "%s/ds", root);
    struct deft_dataset *ds = NULL;
    CHECK_OK(deft_dataset_open(dsdir, NULL, 0, &ds));
    if (!ds) return test_summary();
    const int B = 4, H = 20, W = 24, C = ds->num_classes; /* 17 samples, one corrupt */

    struct deft_loader_opts o;
    deft_loader_opts_defaults(&o);
    o.batch_size = B;
    o.seed = 11;
    o.transform.out_w = W;
    o.transform.out_h = H;
    o.transform.aug.crop = DEFT_CROP_RANDOM_RESIZED;
    o.transform.aug.hflip_prob = 0.5f;
    o.transform.aug.brightness = o.transform.aug.contrast = o.transform.aug.saturation = 0.3f;
    o.transform.aug.hue = 0.05f;
    o.transform.aug.rotate_prob = 0.5f;
    o.transform.aug.rotate_deg = 10;
    deft_preprocess_init(&o.transform.pre, DEFT_PREPROCESS_TORCHVISION);

    /* Reference: 1 thread, 1 slot. */
    struct run ref, ref1, r;
    o.num_threads = 1;
    o.prefetch = 1;
    struct deft_loader *l = NULL;
    CHECK_OK(deft_loader_create(&o, ds, &l));
    if (!l) return test_summary();
    CHECK(deft_loader_num_batches(l) == 5, "ceil(17/4) = 5 batches");
    CHECK_OK(run_epoch(l, 0, B, C, H, W, &ref));
    CHECK(ref.batches == 5 && ref.sizes[0] == 4 && ref.sizes[3] == 4 && ref.sizes[4] == 1,
          "batches full except the last: %d batches", ref.batches);
    CHECK(ref.stats.corrupt_skipped == 1 && ref.stats.images_loaded == 17,
          "corrupt skipped+counted (%lld), replacement keeps 17 loaded (%lld)",
          (long long)ref.stats.corrupt_skipped, (long long)ref.stats.images_loaded);
    CHECK(quiet_warnings == 1, "one warning for the corrupt file (got %d)", quiet_warnings);
    CHECK_OK(run_epoch(l, 1, B, C, H, W, &ref1));
    CHECK(!same_runs(&ref, &ref1), "epoch 1 differs from epoch 0");
    CHECK(ref1.stats.corrupt_skipped == 2, "corrupt counted again in epoch 1");
    CHECK(quiet_warnings == 1, "warned once per file");
    deft_loader_free(l);

    /* Any thread count / prefetch: same batches; restart at epoch 1 exact. */
    int threads[] = {2, 3, 8};
    for (int i = 0; i < 3; i++) {
        o.num_threads = threads[i];
        o.prefetch = i == 2 ? 0 : i + 1;
        CHECK_OK(deft_loader_create(&o, ds, &l));
        if (!l) continue;
        /* abandon an epoch half way */
        float *img = malloc(sizeof(float) * B * 3 * H * W), lab[64];
        int n;
        CHECK_OK(deft_loader_start_epoch(l, 5));
        CHECK_OK(deft_loader_next(l, img, lab, &n));
        free(img);
        CHECK_OK(run_epoch(l, 1, B, C, H, W, &r));
        CHECK(same_runs(&r, &ref1), "%d threads: epoch 1 identical to 1 thread", threads[i]);
        CHECK_OK(run_epoch(l, 0, B, C, H, W, &r));
        CHECK(same_runs(&r, &ref), "%d threads: epoch 0 identical", threads[i]);
        deft_loader_free(l);
    }

    /* No shuffle, no augmentation: dataset order, class ids as labels. */
    {
        struct deft_loader_opts p;
        deft_loader_opts_defaults(&p);
        p.batch_size = 5;
        p.shuffle = false;
        p.drop_last = true;
        p.num_threads = 2;
        p.transform.out_w = W;
        p.transform.out_h = H;
        CHECK_OK(deft_loader_create(&p, ds, &l));
        if (l) {
            CHECK(deft_loader_num_batches(l) == 3, "drop_last: 17/5 -> 3 batches");
            float *img = malloc(sizeof(float) * 5 * 3 * H * W), lab[5];
            int n, total = 0, nb = 0;
            bool labels_ok = true;
            CHECK_OK(deft_loader_start_epoch(l, 0));
            for (;;) {
                CHECK_OK(deft_loader_next(l, img, lab, &n));
                if (n == 0) break;
                CHECK(n == 5, "drop_last: full batches only");
                for (int i = 0; i < n; i++) {
                    int s = total + i;
                    /* position 5 is broken.jpg: replaced by another sample */
                    if (s != 5) labels_ok &= lab[i] == (float)ds->labels[s];
                }
                total += n;
                nb++;
            }
            CHECK(nb == 3 && total == 15 && labels_ok, "unshuffled order and labels (%d batches)", nb);
            /* the first sample equals a direct transform of the first file */
            CHECK_OK(deft_loader_start_epoch(l, 0));
            CHECK_OK(deft_loader_next(l, img, lab, &n));
            float *one = malloc(sizeof(float) * 3 * H * W);
            uint8_t *bytes;
            size_t nbytes;
            CHECK_OK(deft_read_file(ds->paths[0], 1 << 24, &bytes, &nbytes));
            CHECK_OK(deft_transform_bytes(&p.transform, bytes, nbytes, p.seed, 0, one));
            CHECK(!memcmp(one, img, sizeof(float) * 3 * H * W), "loader sample 0 == transform of file 0");
            deft_free(bytes);
            free(one);
            free(img);
            deft_loader_free(l);
        }
    }

    /* Mixup: soft labels, rows sum to 1, own class weight >= 0.5. */
    {
        o.mixup_alpha = 0.4f;
        o.num_threads = 2;
        o.prefetch = 0;
        CHECK_OK(deft_loader_create(&o, ds, &l));
        if (l) {
            CHECK(deft_loader_soft_labels(l), "mixup -> soft labels");
            float *img = malloc(sizeof(float) * B * 3 * H * W), lab[4 * 3];
            int n;
            CHECK_OK(deft_loader_start_epoch(l, 0));
            CHECK_OK(deft_loader_next(l, img, lab, &n));
            bool ok = n == B;
            int mixed = 0;
            for (int i = 0; i < n; i++) {
                float s = 0, mx = 0;
                for (int c = 0; c < C; c++) {
                    s += lab[i * C + c];
                    if (lab[i * C + c] > mx) mx = lab[i * C + c];
                    ok &= lab[i * C + c] >= 0;
                }
                ok &= fabsf(s - 1.0f) < 1e-5f && mx >= 0.5f - 1e-6f;
                mixed += mx < 0.999f;
            }
            CHECK(ok && mixed > 0, "mixup soft labels valid (%d mixed rows)", mixed);
            free(img);
            deft_loader_free(l);
            CHECK_OK(deft_loader_create(&o, ds, &l));
            struct run m1, m2;
            CHECK_OK(run_epoch(l, 3, B, C, H, W, &m1));
            deft_loader_free(l);
            o.num_threads = 5;
            CHECK_OK(deft_loader_create(&o, ds, &l));
            CHECK_OK(run_epoch(l, 3, B, C, H, W, &m2));
            CHECK(same_runs(&m1, &m2), "mixup batches independent of thread count");
            deft_loader_free(l);
        }
        o.mixup_alpha = 0;
    }

    /* Strict mode: the corrupt file is an error naming it. */
    o.strict = true;
    o.num_threads = 2;
    CHECK_OK(deft_loader_create(&o, ds, &l));
    if (l) {
        struct run sr;
        enum deft_status st = run_epoch(l, 0, B, C, H, W, &sr);
        CHECK(st == DEFT_ERR_FORMAT && strstr(deft_last_error(), "broken.jpg"), "strict: %s: %s",
              deft_status_str(st), deft_last_error());
        deft_loader_free(l);
    }
    o.strict = false;

    /* A dataset of nothing but corrupt files: an error, not a hang. */
    {
        struct deft_dataset bad = *ds;
        char *paths[3] = {ds->paths[5], ds->paths[5], ds->paths[5]};
        int labels[3] = {0, 0, 0};
        bad.paths = paths;
        bad.labels = labels;
        bad.num_samples = 3;
        o.batch_size = 2;
        CHECK_OK(deft_loader_create(&o, &bad, &l));
        if (l) {
            struct run sr;
            enum deft_status st = run_epoch(l, 0, 2, C, H, W, &sr);
            CHECK(st == DEFT_ERR_FORMAT && strstr(deft_last_error(), "unreadable images in a row"), "all corrupt: %s",
                  deft_last_error());
            deft_loader_free(l);
        }
        o.batch_size = B;
    }
    /* Bad options. */
    o.batch_size = 0;
    CHECK(deft_loader_create(&o, ds, &l) == DEFT_ERR_INVALID_ARG && !l, "batch 0 rejected");
    o.batch_size = B;
    deft_dataset_free(ds);
    CHECK(deft_alloc_live() == live0, "leaked %ld blocks", deft_alloc_live() - live0);

    /* Throughput on hymenoptera_256 train: 224, RRC + flip + jitter, 2 threads. */
    const char *shared = test_shared_dir();
    if (!shared) test_skip_part("../shared not found: the hymenoptera_256 checks are not run");
    if (shared) {
        char tr[1024];
        snprintf(tr, sizeof tr, "%s/data/hymenoptera_256/train", shared);
        struct deft_dataset *h = NULL;
        CHECK_OK(deft_dataset_open(tr, NULL, 0, &h));
        struct deft_loader_opts q;
        deft_loader_opts_defaults(&q);
        q.batch_size = 32;
        q.num_threads = 2;
        q.transform.aug.crop = DEFT_CROP_RANDOM_RESIZED;
        q.transform.aug.hflip_prob = 0.5f;
        q.transform.aug.brightness = q.transform.aug.contrast = q.transform.aug.saturation = 0.4f;
        q.transform.aug.hue = 0.1f;
        deft_preprocess_init(&q.transform.pre, DEFT_PREPROCESS_TORCHVISION);
        if (h && deft_loader_create(&q, h, &l) == DEFT_OK) {
            float *img = malloc(sizeof(float) * 32 * 3 * 224 * 224), lab[32];
            double t0 = deft_time_now();
            int n, total = 0;
            for (int e = 0; e < 2; e++) {
                CHECK_OK(deft_loader_start_epoch(l, e));
                while (deft_loader_next(l, img, lab, &n) == DEFT_OK && n > 0) total += n;
            }
            double dt = deft_time_now() - t0;
            struct deft_loader_stats s;
            deft_loader_get_stats(l, &s);
            printf("loader throughput: hymenoptera_256 train, 224x224, RRC+flip+jitter, 2 threads: "
                   "%d images in %.2f s = %.0f images/s (worker %.2f s, consumer waited %.2f s, corrupt %lld)\n",
                   total, dt, total / dt, s.worker_seconds, s.wait_seconds, (long long)s.corrupt_skipped);
            CHECK(total == 2 * 244 && s.corrupt_skipped == 0, "hymenoptera: 2 epochs of 244");
            free(img);
            deft_loader_free(l);
        }
        deft_dataset_free(h);
    }
    deft_log_set(NULL, NULL);
    return test_summary();
}

/* test_loader_shard.c - the distributed sampler (deft_loader_opts.rank/world):
 * with drop_last, N ranks x batch b hand out exactly the batches of one
 * process x batch N*b (rank r holds items r, r+N, ... of each global batch,
 * augmented identically, the corrupt-file replacement included); without
 * drop_last (validation) the ranks split the epoch without overlap and
 * together cover it; bad rank/world is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/data.h"

static void log_sink(enum deft_log_level lv, const char *msg, void *u) { (void)lv, (void)msg, (void)u; }

/* One epoch of a loader into imgs/labs (all its batches back to back); returns items. */
static int epoch_items(struct deft_loader *l, int epoch, int B, size_t per, float *imgs, float *labs, int *batches) {
    int total = 0;
    *batches = 0;
    if (deft_loader_start_epoch(l, epoch)) return -1;
    for (;;) {
        int n = 0;
        if (deft_loader_next(l, imgs + (size_t)total * per, labs + total, &n) || n == 0) break;
        total += n;
        ++*batches;
    }
    return total;
}

int main(void) {
    char root[600], cmd[2048];
    snprintf(root, sizeof root, "%s/data", test_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && /usr/bin/python3 '%s/tests/data/make_dataset.py' '%s'", root,
             test_source_dir(), root);
    if (system(cmd) != 0) test_skip("python3 with numpy + PIL is needed to write the test dataset");
    deft_log_set(log_sink, NULL);
    char dsdir[700];
    snprintf(dsdir, sizeof dsdir, "%s/ds", root);
    struct deft_dataset *ds = NULL;
    CHECK_OK(deft_dataset_open(dsdir, NULL, 0, &ds));
    if (!ds) return test_summary();
    const int H = 12, W = 16, N = 2, b = 3, G = N * b; /* 17 samples: 2 global batches of 6 */
    size_t per = 3 * H * W;
    struct deft_loader_opts o;
    deft_loader_opts_defaults(&o);
    o.seed = 5;
    o.num_threads = 2;
    o.drop_last = true;
    o.transform.out_w = W;
    o.transform.out_h = H;
    o.transform.aug.crop = DEFT_CROP_RANDOM_RESIZED;
    o.transform.aug.hflip_prob = 0.5f;
    o.transform.aug.brightness = 0.3f;
    deft_preprocess_init(&o.transform.pre, DEFT_PREPROCESS_TORCHVISION);
    float *one = malloc(sizeof(float) * per * 32), *lone = malloc(sizeof(float) * 32);
    float *part[2] = {malloc(sizeof(float) * per * 32), malloc(sizeof(float) * per * 32)}, lpart[2][32];
    struct deft_loader *l = NULL;
    o.batch_size = G;
    CHECK_OK(deft_loader_create(&o, ds, &l));
    int nb1 = 0, n1 = epoch_items(l, 1, G, per, one, lone, &nb1);
    deft_loader_free(l);
    CHECK(n1 == 12 && nb1 == 2, "one process x batch %d: 2 full batches (%d items, %d batches)", G, n1, nb1);
    bool same = true;
    for (int r = 0; r < N; r++) {
        o.batch_size = b;
        o.rank = r;
        o.world = N;
        CHECK_OK(deft_loader_create(&o, ds, &l));
        int nb = 0, n = epoch_items(l, 1, b, per, part[r], lpart[r], &nb);
        CHECK(n == 6 && nb == 2 && deft_loader_num_batches(l) == 2, "rank %d: 2 batches of %d (%d items)", r, b, n);
        deft_loader_free(l);
        for (int q = 0; q < n && q < 6; q++) { /* local item q = global position q*N + r */
            int gp = q * N + r;
            same = same && lpart[r][q] == lone[gp] && !memcmp(part[r] + (size_t)q * per, one + (size_t)gp * per,
                                                           per * sizeof(float));
        }
    }
    CHECK(same, "%d ranks x batch %d: every item equals one process's at its global position", N, b);

    /* validation: no drop_last, 3 ranks over 17 -> 6 + 6 + 5, no overlap */
    o.drop_last = false;
    o.shuffle = false;
    o.batch_size = 4;
    o.rank = 0;
    o.world = 0;
    CHECK_OK(deft_loader_create(&o, ds, &l));
    int nb = 0, nall = epoch_items(l, 0, 4, per, one, lone, &nb);
    deft_loader_free(l);
    int counts[3] = {0}, want[3] = {6, 6, 5};
    same = nall == 17;
    for (int r = 0; r < 3; r++) {
        o.rank = r;
        o.world = 3;
        CHECK_OK(deft_loader_create(&o, ds, &l));
        counts[r] = epoch_items(l, 0, 4, per, part[0], lpart[0], &nb);
        deft_loader_free(l);
        for (int q = 0; q < counts[r]; q++)
            same = same && !memcmp(part[0] + (size_t)q * per, one + (size_t)(q * 3 + r) * per, per * sizeof(float));
    }
    CHECK(counts[0] == want[0] && counts[1] == want[1] && counts[2] == want[2] && same,
          "3 ranks split 17 validation images 6/6/5 (%d/%d/%d) without overlap", counts[0], counts[1], counts[2]);
    o.rank = 3;
    CHECK(deft_loader_create(&o, ds, &l) == DEFT_ERR_INVALID_ARG, "rank 3 of a world of 3 is refused");
    o.rank = 0, o.world = 4, o.drop_last = true, o.batch_size = 5;
    CHECK(deft_loader_create(&o, ds, &l) == DEFT_ERR_INVALID_ARG, "17 samples < 4 ranks x batch 5 with drop_last");
    free(one), free(lone), free(part[0]), free(part[1]);
    deft_dataset_free(ds);
    return test_summary();
}

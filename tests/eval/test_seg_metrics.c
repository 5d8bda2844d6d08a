/* test_seg_metrics.c - segmentation metrics (deft/seg.h):
 *   - a hand-counted example, argmax (ties, NaN, the sigmoid head);
 *   - random masks of several sizes, with an ignore id, a class absent from
 *     both truth and prediction (NaN, left out of the means), a class never
 *     predicted and one never true, accumulated in batches and merged,
 *     against numpy (tests/ref/seg_metrics_ref.py, skipped without numpy);
 *   - metrics.json (null for NaN), the table, the confusion plot, bad input. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/seg.h"
#include "deft_test.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void test_hand_example(void) {
    /* 3 classes, ignore 9: truth / pred over 8 pixels (one ignored) */
    int32_t truth[8] = {0, 0, 1, 1, 1, 2, 9, 0};
    int32_t pred[8] = {0, 1, 1, 1, 0, 2, 2, 0};
    struct deft_seg_confusion c;
    CHECK_OK(deft_seg_confusion_init(&c, 3));
    CHECK_OK(deft_seg_confusion_add(&c, pred, truth, 8, 9));
    struct deft_seg_metrics m;
    CHECK_OK(deft_seg_metrics_compute(&c, &m));
    /* class 0: TP 2 FP 1 FN 1; class 1: TP 2 FP 1 FN 1; class 2: TP 1 */
    CHECK(m.pixels == 7 && m.classes[0].tp == 2 && m.classes[0].fp == 1 && m.classes[0].fn == 1, "counts");
    CHECK_NEAR(m.classes[0].iou, 0.5, 1e-15, "IoU 0");
    CHECK_NEAR(m.classes[1].f1, 2.0 / 3, 1e-15, "F1 1");
    CHECK_NEAR(m.classes[2].iou, 1.0, 1e-15, "IoU 2");
    CHECK_NEAR(m.miou, 2.0 / 3, 1e-15, "mIoU");
    CHECK_NEAR(m.pixel_accuracy, 5.0 / 7, 1e-15, "pixel accuracy");
    pred[3] = 3;
    CHECK(deft_seg_confusion_add(&c, pred, truth, 8, 9) == DEFT_ERR_INVALID_ARG, "prediction 3 of 3 classes");
    CHECK(strstr(deft_last_error(), "pixel 3") != NULL, "names the pixel: %s", deft_last_error());
    CHECK(c.counts[0] == 2, "a rejected batch is not counted");
    pred[3] = 1, pred[6] = 77; /* at an ignored pixel: not looked at */
    CHECK_OK(deft_seg_confusion_add(&c, pred, truth, 8, 9));
    deft_seg_metrics_free(&m);
    deft_seg_confusion_free(&c);
}

static void test_argmax(void) {
    /* 1 image, 3 channels, 1x4: ties keep the first, NaN never wins */
    float x[12] = {1, 2, NAN, 0, /* c0 */ 1, 5, 1, 0, /* c1 */ 0, 5, 3, -1 /* c2 */};
    int32_t o[4];
    CHECK_OK(deft_seg_argmax(x, 1, 3, 1, 4, o));
    CHECK(o[0] == 0 && o[1] == 1 && o[2] == 2 && o[3] == 0, "argmax %d %d %d %d", o[0], o[1], o[2], o[3]);
    float s[4] = {-0.5f, 0.0f, 0.1f, 7};
    CHECK_OK(deft_seg_argmax(s, 1, 1, 2, 2, o));
    CHECK(o[0] == 0 && o[1] == 0 && o[2] == 1 && o[3] == 1, "sigmoid head: logit > 0");
    /* over a block (256 pixels): 2 images x 3 channels x 17x19 */
    enum { N = 2, C = 3, HW = 17 * 19 };
    static float big[N * C * HW];
    static int32_t ob[N * HW];
    for (int i = 0; i < N * C * HW; i++) big[i] = (float)urand();
    CHECK_OK(deft_seg_argmax(big, N, C, 17, 19, ob));
    int bad = 0;
    for (int b = 0; b < N; b++)
        for (int j = 0; j < HW; j++) {
            int best = 0;
            for (int c = 1; c < C; c++)
                if (big[(b * C + c) * HW + j] > big[(b * C + best) * HW + j]) best = c;
            bad += ob[b * HW + j] != best;
        }
    CHECK(bad == 0, "argmax over blocks: %d wrong", bad);
}

struct mset {
    int k, n, h, w, ignore_id;
    int absent, never_pred, never_true; /* class ids (-1: none) */
};

static const struct mset sets[] = {
    {4, 1, 9, 11, 255, 2, -1, -1},
    {6, 3, 40, 50, 5, 1, 3, 0},
    {12, 2, 72, 96, 11, 7, 4, 9},
    {2, 4, 64, 64, -1, -1, -1, -1},
    {3, 1, 5, 5, 255, -1, -1, -1}, /* every pixel ignored: all NaN */
};
#define N_SETS (int)(sizeof sets / sizeof sets[0])

/* Predictions agree with the truth ~60% of the time. */
static void make_masks(const struct mset *s, int idx, int32_t *truth, int32_t *pred, size_t np) {
    for (size_t i = 0; i < np; i++) {
        int t = (int)(urand() * s->k) % s->k;
        int p = urand() < 0.6 ? t : (int)(urand() * s->k) % s->k;
        if (t == s->absent || t == s->never_true) t = (t + 1) % s->k;
        if (t == s->absent || t == s->never_true) t = (t + 1) % s->k;
        if (p == s->absent || p == s->never_pred) p = (p + 2) % s->k;
        if (p == s->absent || p == s->never_pred) p = (p + 1) % s->k;
        truth[i] = urand() < 0.1 || idx == 4 ? s->ignore_id : t;
        if (s->ignore_id < 0 && truth[i] < 0) truth[i] = t; /* no ignore id in this set */
        pred[i] = p;
    }
}

static void write_set(const char *dir, int idx, const struct mset *s, const int32_t *truth, const int32_t *pred,
                      size_t np) {
    float *a = malloc(np * sizeof *a), *b = malloc(np * sizeof *b), cfg[2] = {(float)s->k, (float)s->ignore_id};
    for (size_t i = 0; i < np; i++) a[i] = (float)truth[i], b[i] = (float)pred[i];
    int64_t sh[3] = {s->n, s->h, s->w}, sc[1] = {2};
    char p[512];
    snprintf(p, sizeof p, "%s/set%02d_truth.npy", dir, idx);
    CHECK(test_npy_write(p, a, sh, 3) == 0, "write %s", p);
    snprintf(p, sizeof p, "%s/set%02d_pred.npy", dir, idx);
    CHECK(test_npy_write(p, b, sh, 3) == 0, "write %s", p);
    snprintf(p, sizeof p, "%s/set%02d_cfg.npy", dir, idx);
    CHECK(test_npy_write(p, cfg, sc, 1) == 0, "write %s", p);
    free(a), free(b);
}

/* Per image into one matrix, except the last image, counted in a second
 * matrix and merged: what batched evaluation and workers do. */
static void metrics_of(const struct mset *s, const int32_t *truth, const int32_t *pred, struct deft_seg_metrics *m) {
    struct deft_seg_confusion c, last;
    size_t hw = (size_t)s->h * s->w;
    CHECK_OK(deft_seg_confusion_init(&c, s->k));
    CHECK_OK(deft_seg_confusion_init(&last, s->k));
    for (int b = 0; b < s->n; b++)
        CHECK_OK(deft_seg_confusion_add(b == s->n - 1 ? &last : &c, pred + b * hw, truth + b * hw, hw, s->ignore_id));
    CHECK_OK(deft_seg_confusion_merge(&c, &last));
    CHECK_OK(deft_seg_metrics_compute(&c, m));
    deft_seg_confusion_free(&c);
    deft_seg_confusion_free(&last);
}

static bool same(double a, double b, double tol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= tol * fmax(1.0, fabs(b));
}

static double compare_set(const char *dir, int idx, const struct mset *s, const struct deft_seg_metrics *m) {
    char p[512];
    snprintf(p, sizeof p, "%s/set%02d_ref.npy", dir, idx);
    int64_t sh[8];
    int nd;
    float *r = test_npy_read(p, sh, &nd);
    CHECK(r && nd == 2 && sh[0] == s->k + 1 && sh[1] == 5, "set %d: numpy reference", idx);
    if (!r) return INFINITY;
    double worst = 0, tol = 1e-6; /* the reference is stored as f32 */
    int nan_classes = 0;
    for (int c = 0; c < s->k; c++) {
        const struct deft_seg_class_metrics *q = &m->classes[c];
        double got[5] = {q->iou, q->precision, q->recall, q->f1, (double)q->support};
        for (int j = 0; j < 5; j++) {
            CHECK(same(got[j], r[c * 5 + j], tol), "set %d class %d field %d: %.9g vs numpy %.9g", idx, c, j, got[j],
                  r[c * 5 + j]);
            if (!isnan(got[j]) && !isnan(r[c * 5 + j])) worst = fmax(worst, fabs(got[j] - r[c * 5 + j]) / fmax(1, fabs(got[j])));
        }
        nan_classes += isnan(q->iou);
    }
    double gm[5] = {m->miou, m->mean_precision, m->mean_recall, m->mean_f1, m->pixel_accuracy};
    for (int j = 0; j < 5; j++) {
        CHECK(same(gm[j], r[s->k * 5 + j], tol), "set %d mean %d: %.9g vs numpy %.9g", idx, j, gm[j], r[s->k * 5 + j]);
        if (!isnan(gm[j])) worst = fmax(worst, fabs(gm[j] - r[s->k * 5 + j]));
    }
    if (s->absent >= 0) CHECK(isnan(m->classes[s->absent].iou) && isnan(m->classes[s->absent].f1), "absent -> NaN");
    if (s->never_pred >= 0) CHECK(isnan(m->classes[s->never_pred].precision), "never predicted -> precision NaN");
    if (s->never_true >= 0) CHECK(isnan(m->classes[s->never_true].recall), "never true -> recall NaN");
    printf("set %d (%d classes, %dx%dx%d, ignore %d): mIoU %.6f over %d classes (%d NaN), pixel acc %.6f; "
           "max diff vs numpy %.2e\n", idx, s->k, s->n, s->h, s->w, s->ignore_id, m->miou, m->n_classes_in_miou,
           nan_classes, m->pixel_accuracy, worst);
    free(r);
    return worst;
}

static void test_numpy(void) {
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        test_skip_part("numpy reference of the segmentation metrics: /usr/bin/python3 has no numpy "
                       "(apt-get install python3-numpy)");
        return;
    }
    const char *dir = test_tmpdir();
    struct deft_seg_metrics m[N_SETS];
    for (int i = 0; i < N_SETS; i++) {
        const struct mset *s = &sets[i];
        size_t np = (size_t)s->n * s->h * s->w;
        int32_t *truth = malloc(np * sizeof *truth), *pred = malloc(np * sizeof *pred);
        make_masks(s, i, truth, pred, np);
        write_set(dir, i, s, truth, pred, np);
        metrics_of(s, truth, pred, &m[i]);
        free(truth), free(pred);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/seg_metrics_ref.py %s", test_source_dir(), dir);
    CHECK(system(cmd) == 0, "reference failed: %s", cmd);
    double worst = 0;
    for (int i = 0; i < N_SETS; i++) {
        worst = fmax(worst, compare_set(dir, i, &sets[i], &m[i]));
        deft_seg_metrics_free(&m[i]);
    }
    printf("vs numpy: max difference %.2e over %d sets\n", worst, N_SETS);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void test_outputs(void) {
    int32_t truth[6] = {0, 0, 1, 1, 3, 3}, pred[6] = {0, 1, 1, 1, 3, 0};
    struct deft_seg_confusion c;
    CHECK_OK(deft_seg_confusion_init(&c, 4));
    CHECK_OK(deft_seg_confusion_add(&c, pred, truth, 6, 255));
    struct deft_seg_metrics m;
    CHECK_OK(deft_seg_metrics_compute(&c, &m));
    const char *names[4] = {"sky", "road", "car", "tree"};
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.json", test_tmpdir());
    CHECK_OK(deft_seg_metrics_write_json(path, &m, names));
    const char *j = slurp(path);
    CHECK(j && strstr(j, "\"mIoU\"") && strstr(j, "\"car\"") && strstr(j, "\"iou\":\tnull"),
          "metrics.json has mIoU, the class names and null for the absent class:\n%s", j ? j : "(none)");
    FILE *f = tmpfile();
    deft_seg_metrics_print(f, &m, names);
    rewind(f);
    char tab[4096] = {0};
    size_t n = fread(tab, 1, sizeof tab - 1, f);
    fclose(f);
    CHECK(n > 0 && strstr(tab, "road") && strstr(tab, "mIoU") && strstr(tab, "absent"), "table:\n%s", tab);
    snprintf(path, sizeof path, "%s/confusion", test_tmpdir());
    CHECK_OK(deft_seg_confusion_plot(path, &c, names));
    struct stat st;
    snprintf(path, sizeof path, "%s/confusion.png", test_tmpdir());
    CHECK(stat(path, &st) == 0 && st.st_size > 0, "confusion.png written");
    struct deft_seg_confusion other;
    CHECK_OK(deft_seg_confusion_init(&other, 3));
    CHECK(deft_seg_confusion_merge(&c, &other) == DEFT_ERR_INVALID_ARG, "merge of different class counts");
    deft_seg_confusion_free(&other);
    CHECK(deft_seg_confusion_init(&other, 0) == DEFT_ERR_INVALID_ARG && !other.counts, "0 classes");
    deft_seg_confusion_reset(&c);
    CHECK(c.counts[0] == 0, "reset");
    deft_seg_metrics_free(&m);
    deft_seg_confusion_free(&c);
    deft_seg_confusion_free(&other);
}

int main(void) {
    test_hand_example();
    test_argmax();
    test_outputs();
    test_numpy();
    return test_summary();
}

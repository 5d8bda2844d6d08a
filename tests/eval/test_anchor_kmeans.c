/* test_anchor_kmeans.c - TAO's kmeans anchors (deft_anchor_kmeans) against an
 * independent numpy k-medians (tests/ref/kmeans_ref.py) started from the same
 * initial centres: identical centres and step counts. Also the seed's initial
 * choice and the spec strings. */
#include <string.h>
#include "deft/det_eval.h"
#include "deft_test.h"

static uint64_t rs;
static double urand(void) {
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* Boxes from a few shape families (as a real dataset has); quantised to
 * make duplicate sizes, ties and even-count medians likely. */
static void boxes(double *wh, int n, uint64_t seed, bool quantise) {
    rs = seed;
    static const double fam[5][2] = {{0.05, 0.08}, {0.12, 0.1}, {0.3, 0.25}, {0.08, 0.3}, {0.6, 0.5}};
    for (int i = 0; i < n; i++) {
        const double *f = fam[(int)(urand() * 5)];
        double w = f[0] * exp((urand() - 0.5) * 0.8), h = f[1] * exp((urand() - 0.5) * 0.8);
        if (quantise) w = (floor(w * 64) + 1) / 64, h = (floor(h * 64) + 1) / 64;
        wh[2 * i] = fmin(w, 1.0);
        wh[2 * i + 1] = fmin(h, 1.0);
    }
}

struct kcase {
    uint64_t seed;
    int n, k, max_steps;
    bool quantise, dup_init;
};

static void run_case(const struct kcase *c, int id) {
    double *wh = malloc(sizeof(double) * 2 * (size_t)c->n), cent[2 * 16];
    int idx[16], steps = 0;
    boxes(wh, c->n, c->seed, c->quantise);
    CHECK_OK(deft_anchor_kmeans_init(c->n, c->k, c->seed, idx));
    if (c->dup_init) { /* two identical initial centres: the second cluster stays empty */
        for (int i = 0; i < c->n; i++)
            if (i != idx[0] && wh[2 * i] == wh[2 * idx[0]] && wh[2 * i + 1] == wh[2 * idx[0] + 1]) {
                idx[1] = i;
                break;
            }
    }
    struct deft_anchor_kmeans_options o;
    deft_anchor_kmeans_options_init(&o);
    o.init_idx = idx;
    o.max_steps = c->max_steps;
    CHECK_OK(deft_anchor_kmeans(wh, c->n, c->k, &o, cent, &steps));
    double miou = deft_anchor_mean_iou(wh, c->n, cent, c->k, 0, 0);

    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/kmeans%d.txt", test_tmpdir(), id);
    FILE *f = fopen(path, "w");
    fprintf(f, "%d %d %d\n", c->n, c->k, c->max_steps);
    for (int j = 0; j < c->k; j++) fprintf(f, "%d ", idx[j]);
    fprintf(f, "\n");
    for (int i = 0; i < c->n; i++) fprintf(f, "%a %a\n", wh[2 * i], wh[2 * i + 1]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/kmeans_ref.py %s", test_source_dir(), path);
    CHECK(system(cmd) == 0, "reference: %s", cmd);
    strcat(path, ".ref");
    f = fopen(path, "r");
    CHECK(f != NULL, "%s", path);
    if (f) {
        int rsteps = -1;
        CHECK(fscanf(f, "steps %d", &rsteps) == 1 && rsteps == steps, "case %d: steps %d, reference %d", id, steps, rsteps);
        double max_diff = 0;
        for (int j = 0; j < c->k; j++) {
            double w, h;
            if (fscanf(f, "%lf %lf", &w, &h) != 2) max_diff = INFINITY;
            else max_diff = fmax(max_diff, fmax(fabs(w - cent[2 * j]), fabs(h - cent[2 * j + 1])));
        }
        CHECK(max_diff == 0, "case %d: centres differ from the reference by %g", id, max_diff);
        double rm;
        CHECK(fscanf(f, " mean_iou %lf", &rm) == 1 && fabs(rm - miou) < 1e-12, "case %d: mean IoU %.12f vs %.12f", id,
              miou, rm);
        fclose(f);
    }
    printf("case %d: n %d k %d: %d steps, mean IoU %.4f\n", id, c->n, c->k, steps, miou);

    /* the seed alone reproduces the same run */
    double cent2[2 * 16];
    if (!c->dup_init) {
        struct deft_anchor_kmeans_options s;
        deft_anchor_kmeans_options_init(&s);
        s.seed = c->seed;
        s.max_steps = c->max_steps;
        CHECK_OK(deft_anchor_kmeans(wh, c->n, c->k, &s, cent2, NULL));
        CHECK(!memcmp(cent, cent2, sizeof(double) * 2 * (size_t)c->k), "seed %llu reproduces the run",
              (unsigned long long)c->seed);
        s.net_w = 416, s.net_h = 320; /* network pixels */
        CHECK_OK(deft_anchor_kmeans(wh, c->n, c->k, &s, cent2, NULL));
        double d = 0;
        for (int j = 0; j < c->k; j++) d = fmax(d, fabs(cent2[2 * j] - 416 * cent[2 * j]) + fabs(cent2[2 * j + 1] - 320 * cent[2 * j + 1]));
        CHECK(d == 0, "centres in network pixels");
        CHECK(fabs(deft_anchor_mean_iou(wh, c->n, cent2, c->k, 416, 320) - miou) < 1e-12, "mean IoU from pixels");
    }
    free(wh);
}

static void init_choice(void) {
    int a[9], b[9], c[9];
    CHECK_OK(deft_anchor_kmeans_init(20, 9, 7, a));
    CHECK_OK(deft_anchor_kmeans_init(20, 9, 7, b));
    CHECK_OK(deft_anchor_kmeans_init(20, 9, 8, c));
    CHECK(!memcmp(a, b, sizeof a), "same seed, same choice");
    CHECK(memcmp(a, c, sizeof a), "another seed, another choice");
    bool ok = true;
    for (int i = 0; i < 9; i++) {
        ok &= a[i] >= 0 && a[i] < 20;
        for (int j = 0; j < i; j++) ok &= a[i] != a[j];
    }
    CHECK(ok, "distinct indices in range");
    CHECK(deft_anchor_kmeans_init(9, 9, 1, a) == DEFT_ERR_INVALID_ARG, "k must be < n");
    double wh[6] = {0.1, 0.1, 0, 0.2, 0.3, 0.3}, cent[2];
    CHECK(deft_anchor_kmeans(wh, 3, 1, NULL, cent, NULL) == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "box 1"),
          "zero width: %s", deft_last_error());
}

static void spec_strings(void) {
    double a[18];
    for (int i = 0; i < 9; i++) a[2 * i] = 10 * (i + 1) + 0.125, a[2 * i + 1] = 20 * (i + 1) + 0.5625;
    char *s = NULL;
    CHECK_OK(deft_anchor_spec_strings(a, 9, false, &s));
    CHECK(s && !strcmp(s, "big_anchor_shape: \"[(70.12, 140.56), (80.12, 160.56), (90.12, 180.56)]\"\n"
                          "mid_anchor_shape: \"[(40.12, 80.56), (50.12, 100.56), (60.12, 120.56)]\"\n"
                          "small_anchor_shape: \"[(10.12, 20.56), (20.12, 40.56), (30.12, 60.56)]\"\n"),
          "9 anchors:\n%s", s ? s : "");
    deft_free(s);
    CHECK_OK(deft_anchor_spec_strings(a, 6, true, &s));
    CHECK(s && !strcmp(s, "big_anchor_shape: \"[(40.12, 80.56), (50.12, 100.56), (60.12, 120.56)]\"\n"
                          "mid_anchor_shape: \"[(10.12, 20.56), (20.12, 40.56), (30.12, 60.56)]\"\n"),
          "6 anchors, tiny:\n%s", s ? s : "");
    deft_free(s);
    CHECK_OK(deft_anchor_spec_strings(a, 7, false, &s)); /* 3 big, 2 mid, 2 small */
    CHECK(s && strstr(s, "big_anchor_shape: \"[(50.12, 100.56), (60.12, 120.56), (70.12, 140.56)]\"") &&
              strstr(s, "small_anchor_shape: \"[(10.12, 20.56), (20.12, 40.56)]\""),
          "7 anchors:\n%s", s ? s : "");
    deft_free(s);
    CHECK(deft_anchor_spec_strings(a, 2, false, &s) == DEFT_ERR_INVALID_ARG, "2 anchors for 3 heads");
}

/* Boxes of a dataset, normalised by each image's size, TAO's --min_x/--min_y. */
static void from_dataset(void) {
    struct deft_box b0[2] = {{10, 20, 110, 70, 0, false, 1}, {0, 0, 4, 100, 0, false, 1}};
    struct deft_box b1[1] = {{0, 0, 320, 240, 1, true, 1}};
    struct deft_det_sample smp[3] = {{"a.jpg", "a.txt", 200, 100, 2, b0}, {"b.jpg", "b.txt", 640, 480, 1, b1},
                                     {"c.jpg", NULL, 0, 0, 0, NULL}};
    struct deft_det_dataset d = {.n_classes = 2, .n = 3, .samples = smp};
    double *wh = NULL;
    int n = 0;
    CHECK_OK(deft_anchor_boxes_from_dataset(&d, 416, 416, 0, 0, &wh, &n));
    static const double want[6] = {0.5, 0.5, 0.02, 1.0, 0.5, 0.5};
    double err = n == 3 ? 0 : INFINITY;
    for (int i = 0; i < 6 && n == 3; i++) err = fmax(err, fabs(wh[i] - want[i]));
    CHECK(err < 1e-12, "normalised sizes (%d boxes, error %g)", n, err);
    deft_free(wh);
    CHECK_OK(deft_anchor_boxes_from_dataset(&d, 416, 416, 10, 0, &wh, &n)); /* 0.02 * 416 = 8.3 px: dropped */
    CHECK(n == 2, "--min_x 10 drops the narrow box (%d)", n);
    deft_free(wh);
    smp[1].width = 0;
    CHECK(deft_anchor_boxes_from_dataset(&d, 416, 416, 0, 0, &wh, &n) == DEFT_ERR_INVALID_ARG &&
              strstr(deft_last_error(), "b.jpg"),
          "unknown image size: %s", deft_last_error());
}

int main(void) {
    init_choice();
    from_dataset();
    spec_strings();
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("numpy reference skipped: /usr/bin/python3 has no numpy (apt-get install python3-numpy)\n");
        return test_summary();
    }
    static const struct kcase cases[] = {
        {1, 800, 9, 10000, false, false}, {2, 1500, 9, 10000, true, false}, {3, 600, 6, 10000, true, false},
        {4, 300, 9, 3, false, false},     {5, 1000, 9, 10000, true, true},   {6, 50, 5, 10000, true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], (int)i);
    return test_summary();
}

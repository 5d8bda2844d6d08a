/* test_dnv2_metric.c - TAO's DetectNet_v2 evaluation (src/tasks/detectnet_v2/
 * dnv2_metric.c) against tests/ref/dnv2_metric_ref.py, a numpy port of
 * compute_metrics.py's definition run at test time.
 *
 * 6 random cases (12 images, 3 classes): ground truth boxes, detections near
 * them (some duplicates, some misses, boxes on half pixels so rounding
 * matters, sizes across the evaluation_box_config limits), per-class IoU
 * thresholds 0.5 / 0.7 / 0.3: SAMPLE and INTEGRATE AP per class and mAP
 * within 1e-9. Then hand cases: a duplicate is a false positive, a class
 * without ground truth has AP 0 and counts in the mean. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "tasks/detectnet_v2/dnv2_task.h"
#include "deft_test.h"

#define NI 12
#define K 3

struct mcase {
    struct deft_det_dataset gt;
    struct deft_det_sample samples[NI];
    struct deft_box gtb[NI][16];
    struct det_dets d;
    struct deft_box *db[NI];
    int nd[NI];
    struct dnv2_eval_class ec[K];
    char dir[512];
};

static uint64_t rk;
static float unif(uint64_t seed) { return deft_rng_uniform(seed, 21, rk++); }

static void make_case(struct mcase *t, uint64_t seed) {
    static char *names[K] = {"a", "b", "c"};
    memset(&t->gt, 0, sizeof t->gt);
    t->gt.n = NI, t->gt.n_classes = K, t->gt.class_names = names, t->gt.samples = t->samples;
    const double ious[K] = {0.5, 0.7, 0.3};
    for (int k = 0; k < K; k++) t->ec[k] = (struct dnv2_eval_class){ious[k], 12, k == 1 ? 90 : 0, 8, 0};
    for (int i = 0; i < NI; i++) {
        int ng = (int)(unif(seed) * 8), nd = 0;
        t->samples[i] = (struct deft_det_sample){.boxes = t->gtb[i], .n_boxes = ng};
        t->db[i] = deft_calloc(32, sizeof(struct deft_box));
        for (int j = 0; j < ng; j++) {
            float w = 6 + 100 * unif(seed), h = 6 + 100 * unif(seed), x = 300 * unif(seed), y = 200 * unif(seed);
            int cls = (int)(unif(seed) * K);
            t->gtb[i][j] = (struct deft_box){floorf(x) + 0.5f, floorf(y), floorf(x + w) + 0.5f, y + h, cls, false, 0};
            int copies = unif(seed) < 0.2f ? 0 : unif(seed) < 0.2f ? 2 : 1;
            for (int c = 0; c < copies && nd < 30; c++) {
                float jx = (unif(seed) - 0.5f) * w * 0.5f, jy = (unif(seed) - 0.5f) * h * 0.5f;
                t->db[i][nd++] = (struct deft_box){x + jx, y + jy, x + w + jx, y + h + jy,
                                                   unif(seed) < 0.1f ? (cls + 1) % K : cls, false, unif(seed)};
            }
        }
        for (int c = (int)(unif(seed) * 3); c > 0 && nd < 32; c--) /* false alarms */
            t->db[i][nd++] = (struct deft_box){300 * unif(seed), 200 * unif(seed), 0, 0, (int)(unif(seed) * K), false,
                                               unif(seed)};
        for (int j = 0; j < nd; j++)
            if (t->db[i][j].x2 == 0) t->db[i][j].x2 = t->db[i][j].x1 + 40, t->db[i][j].y2 = t->db[i][j].y1 + 30;
        t->nd[i] = nd;
    }
    t->d = (struct det_dets){NI, t->db, t->nd};
}

static int write_case(const struct mcase *t) {
    char p[600];
    snprintf(p, sizeof p, "%s/in.txt", t->dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fprintf(f, "%d %d\n", NI, K);
    for (int k = 0; k < K; k++)
        fprintf(f, "%.9g %.9g %.9g %.9g %.9g\n", t->ec[k].iou, t->ec[k].min_h, t->ec[k].max_h > 0 ? t->ec[k].max_h : 1e9,
                t->ec[k].min_w, t->ec[k].max_w > 0 ? t->ec[k].max_w : 1e9);
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < t->samples[i].n_boxes; j++) {
            const struct deft_box *b = &t->gtb[i][j];
            fprintf(f, "g %d %d %.9g %.9g %.9g %.9g\n", i, b->cls, b->x1, b->y1, b->x2, b->y2);
        }
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < t->nd[i]; j++) {
            const struct deft_box *b = &t->db[i][j];
            fprintf(f, "d %d %d %.9g %.9g %.9g %.9g %.9g\n", i, b->cls, b->score, b->x1, b->y1, b->x2, b->y2);
        }
    return fclose(f);
}

static int tot_tp, tot_fp;

static void compare(struct mcase *t, int c) {
    char p[600], mode[32], cls[32];
    snprintf(p, sizeof p, "%s/ref.txt", t->dir);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL, "case %d: reference output", c);
    if (!f) return;
    struct deft_det_metrics *m[2] = {NULL, NULL};
    CHECK_OK(dnv2_metric(&t->gt, &t->d, t->ec, false, 0, &m[0]));
    CHECK_OK(dnv2_metric(&t->gt, &t->d, t->ec, true, 0, &m[1]));
    double v, worst = 0;
    int n = 0;
    while (m[0] && m[1] && fscanf(f, "%31s %31s %lf", mode, cls, &v) == 3) {
        const struct deft_det_metrics *mm = m[!strcmp(mode, "integrate")];
        double got = !strcmp(cls, "map") ? mm->map : mm->classes[atoi(cls)].ap;
        worst = fmax(worst, fabs(got - v));
        CHECK(fabs(got - v) <= 1e-9, "case %d %s class %s: AP %.10f, reference %.10f", c, mode, cls, got, v);
        n++;
    }
    fclose(f);
    CHECK(n == 2 * (K + 1), "case %d: %d figures compared", c, n);
    for (int k = 0; m[0] && k < K; k++) tot_tp += (int)m[0]->classes[k].tp, tot_fp += (int)m[0]->classes[k].fp;
    deft_det_metrics_free(m[0]);
    deft_det_metrics_free(m[1]);
}

/* one GT, two detections on it: the second is a false positive; class c has no GT: AP 0 in the mean */
static void hand_cases(void) {
    static char *names[2] = {"a", "b"};
    struct deft_box g = {10, 10, 50, 50, 0, false, 0};
    struct deft_box dd[2] = {{10, 10, 50, 50, 0, false, 0.9f}, {11, 10, 50, 50, 0, false, 0.8f}};
    struct deft_det_sample sm = {.boxes = &g, .n_boxes = 1};
    struct deft_det_dataset gt = {.n_classes = 2, .class_names = names, .n = 1, .samples = &sm};
    struct deft_box *pb[1] = {dd};
    int nb[1] = {2};
    struct det_dets d = {1, pb, nb};
    struct dnv2_eval_class ec[2] = {{0.5, 0, 0, 0, 0}, {0.5, 0, 0, 0, 0}};
    struct deft_det_metrics *m = NULL;
    CHECK_OK(dnv2_metric(&gt, &d, ec, false, 0, &m));
    if (!m) return;
    CHECK(m->classes[0].tp == 1 && m->classes[0].fp == 1, "duplicate detection: 1 TP, 1 FP");
    CHECK(fabs(m->classes[0].ap - 1.0) < 1e-12 && m->classes[1].ap == 0 && fabs(m->map - 0.5) < 1e-12,
          "SAMPLE AP 1 for the found class, 0 for the class without GT, mAP 0.5 (%g %g %g)", m->classes[0].ap,
          m->classes[1].ap, m->map);
    deft_det_metrics_free(m);
    /* INTEGRATE with one unique recall adds no area (TAO's sum stops at the last recall) */
    CHECK_OK(dnv2_metric(&gt, &d, ec, true, 0, &m));
    CHECK(m && m->classes[0].ap == 0, "INTEGRATE: a single recall value gives AP 0 as TAO's sum does");
    deft_det_metrics_free(m);
}

int main(void) {
    static struct mcase cases[6];
    for (int c = 0; c < 6; c++) {
        rk = 0;
        make_case(&cases[c], 500 + (uint64_t)c);
        snprintf(cases[c].dir, sizeof cases[c].dir, "%s/dnv2_metric_%d", test_tmpdir(), c);
        mkdir(cases[c].dir, 0755);
        CHECK(write_case(&cases[c]) == 0, "case %d written", c);
    }
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        test_skip_part("python3 with numpy not available: the reference is not compared");
    } else {
        for (int c = 0; c < 6; c++) {
            char cmd[2048];
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/dnv2_metric_ref.py %s", test_source_dir(),
                     cases[c].dir);
            CHECK(system(cmd) == 0, "the numpy reference ran: %s", cmd);
            compare(&cases[c], c);
        }
        printf("  %d true and %d false positives over the cases (SAMPLE)\n", tot_tp, tot_fp);
        CHECK(tot_tp > 50 && tot_fp > 20, "the cases exercise matches and misses");
    }
    hand_cases();
    for (int c = 0; c < 6; c++)
        for (int i = 0; i < NI; i++) deft_free(cases[c].db[i]);
    return test_summary();
}

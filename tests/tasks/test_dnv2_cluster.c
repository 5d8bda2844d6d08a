/* test_dnv2_cluster.c - DetectNet_v2 clustering (src/tasks/detectnet_v2/
 * dnv2_cluster.c) against tests/ref/dbscan_ref.py, a numpy DBSCAN with
 * sample weights written from the definition (scikit-learn is not
 * available) plus the same decode, aggregation and NMS, run at test time.
 *
 * Random coverage/bbox maps (objects with noisy boxes over background
 * noise, some background boxes degenerate after clipping), 4 seeds x 3
 * parameter sets (eps 0.15..0.5, weighted min_samples 1..3, confidence and
 * height filters, an NMS class, a candidate cap): identical cluster labels
 * for every candidate, identical detections (count, class, n) with boxes,
 * scores and statistics within 1e-5 relative. Then the argument checks. */
#include <string.h>
#include <sys/stat.h>
#include "tasks/detectnet_v2/dnv2_post.h"
#include "deft_test.h"

#define K 3
#define GW 24
#define GH 20
#define PLANE (GW * GH)

struct ccase {
    char name[32];
    uint64_t seed;
    struct dnv2_grid g;
    struct dnv2_cluster_class cls[K];
    int cap;
    float cov[K * PLANE], bbox[4 * K * PLANE];
    char dir[512];
};

static uint64_t rk;
static float unif(uint64_t seed) { return deft_rng_uniform(seed, 11, rk++); }
static float gauss(uint64_t seed) { return deft_rng_normal(seed, 12, rk++); }

/* Objects: cells near a box centre get high coverage and that box's
 * distances (noisy); elsewhere low coverage and random distances. */
static void fill_maps(struct ccase *t) {
    const struct dnv2_grid *g = &t->g;
    double sx = (double)g->in_w / g->gw, sy = (double)g->in_h / g->gh;
    for (int k = 0; k < K; k++) {
        float *cov = t->cov + k * PLANE, *bb = t->bbox + 4 * k * PLANE;
        for (int p = 0; p < PLANE; p++) {
            cov[p] = 0.08f * unif(t->seed);
            for (int q = 0; q < 4; q++) bb[q * PLANE + p] = 1.5f * gauss(t->seed);
        }
        int n_obj = 3 + (int)(unif(t->seed) * 3);
        for (int o = 0; o < n_obj; o++) {
            float w = 30 + 120 * unif(t->seed), h = 30 + 120 * unif(t->seed);
            float x1 = unif(t->seed) * ((float)g->in_w - w), y1 = unif(t->seed) * ((float)g->in_h - h);
            float ccx = x1 + w / 2, ccy = y1 + h / 2, rx = w / 3, ry = h / 3;
            for (int j = 0; j < GH; j++)
                for (int i = 0; i < GW; i++) {
                    double cx = i * sx + g->offset, cy = j * sy + g->offset;
                    if (fabs(cx - ccx) > rx || fabs(cy - ccy) > ry) continue;
                    int p = j * GW + i;
                    cov[p] = fmaxf(cov[p], 0.2f + 0.8f * unif(t->seed));
                    float noise = 0.04f + 0.1f * (float)(o % 2);
                    bb[p] = (float)(cx - x1) / g->scale + noise * gauss(t->seed);
                    bb[PLANE + p] = (float)(cy - y1) / g->scale + noise * gauss(t->seed);
                    bb[2 * PLANE + p] = (float)(x1 + w - cx) / g->scale + noise * gauss(t->seed);
                    bb[3 * PLANE + p] = (float)(y1 + h - cy) / g->scale + noise * gauss(t->seed);
                }
        }
    }
}

static void set_params(struct ccase *t, int set) {
    for (int k = 0; k < K; k++) {
        struct dnv2_cluster_class *p = &t->cls[k];
        *p = (struct dnv2_cluster_class){DNV2_CLUSTER_DBSCAN, 0.05f, 8, 0.3f, 1, 0.5f, 0.2f, 0.1f};
        if (set == 1) {
            p->coverage_threshold = 0.005f, p->dbscan_eps = 0.15f + 0.05f * (float)k;
            p->dbscan_min_samples = 2.7f, p->dbscan_confidence_threshold = 0.1f;
            p->minimum_bounding_box_height = 20;
            if (k == 2) p->algo = DNV2_CLUSTER_NMS, p->nms_iou_threshold = 0.3f,
                        p->nms_confidence_threshold = 0.2f;
        } else if (set == 2) {
            p->coverage_threshold = 0.02f, p->dbscan_eps = 0.5f, p->dbscan_min_samples = 3;
            p->dbscan_confidence_threshold = 0, p->minimum_bounding_box_height = 0;
            if (k == 1) p->algo = DNV2_CLUSTER_NMS, p->nms_iou_threshold = 0.5f,
                        p->nms_confidence_threshold = 0.05f;
        }
    }
    t->cap = set == 2 ? 60 : DNV2_MAX_CANDIDATES;
}

static int write_case(struct ccase *t) {
    snprintf(t->dir, sizeof t->dir, "%s/%s", test_tmpdir(), t->name);
    mkdir(t->dir, 0755);
    float cfg[8 + 8 * K] = {(float)t->g.in_w, (float)t->g.in_h, (float)t->g.gw, (float)t->g.gh,
                            t->g.scale, t->g.offset, (float)K, (float)t->cap};
    for (int k = 0; k < K; k++) {
        const struct dnv2_cluster_class *p = &t->cls[k];
        float v[8] = {(float)p->algo, p->coverage_threshold, p->minimum_bounding_box_height,
                      p->dbscan_eps, p->dbscan_min_samples, p->dbscan_confidence_threshold,
                      p->nms_iou_threshold, p->nms_confidence_threshold};
        memcpy(cfg + 8 + 8 * k, v, sizeof v);
    }
    char p[700];
    int64_t sh[3] = {8 + 8 * K};
    snprintf(p, sizeof p, "%s/cfg.npy", t->dir);
    int rc = test_npy_write(p, cfg, sh, 1);
    int64_t s3[3] = {K, GH, GW};
    snprintf(p, sizeof p, "%s/cov.npy", t->dir);
    rc |= test_npy_write(p, t->cov, s3, 3);
    s3[0] = 4 * K;
    snprintf(p, sizeof p, "%s/bbox.npy", t->dir);
    rc |= test_npy_write(p, t->bbox, s3, 3);
    return rc;
}

static float *read_ref(const struct ccase *t, const char *name, int *rows) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", t->dir, name);
    int64_t sh[4] = {0};
    int nd = 0;
    float *v = test_npy_read(p, sh, &nd);
    *rows = v && nd == 2 ? (int)sh[0] : -1;
    return v;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1.0); }

static int tot_cand, tot_clusters, tot_noise, tot_dets, tot_border, tot_contested;

/* The candidates the reference found: C's decode of the same cells and C's
 * DBSCAN on them give the same boxes and the same labels. */
static void compare_labels(const struct ccase *t, int k) {
    char nm[32];
    snprintf(nm, sizeof nm, "cand%d.npy", k);
    int n;
    float *ref = read_ref(t, nm, &n);
    CHECK(ref && n >= 0, "%s class %d: reference candidates read", t->name, k);
    if (!ref || n < 0) return;
    double *boxes = malloc(((size_t)n * 4 + 1) * sizeof *boxes);
    float *w = malloc(((size_t)n + 1) * sizeof *w);
    int *labels = malloc(((size_t)n + 1) * sizeof *labels), nc = 0, bad = 0;
    double err = 0;
    const float *cov = t->cov + k * PLANE, *bb = t->bbox + 4 * k * PLANE;
    for (int c = 0; c < n; c++) {
        int p = (int)ref[8 * c];
        dnv2_decode_cell(&t->g, p % GW, p / GW, bb[p], bb[PLANE + p], bb[2 * PLANE + p],
                         bb[3 * PLANE + p], boxes + 4 * c);
        w[c] = cov[p];
        for (int q = 0; q < 4; q++) err = fmax(err, rel(boxes[4 * c + q], ref[8 * c + 1 + q]));
    }
    CHECK(err <= 1e-6, "%s class %d: decoded boxes equal (max rel %.2e)", t->name, k, err);
    if (t->cls[k].algo == DNV2_CLUSTER_DBSCAN) {
        double ms = floor(t->cls[k].dbscan_min_samples);
        CHECK_OK(dnv2_dbscan(boxes, w, n, t->cls[k].dbscan_eps, ms < 1 ? 1 : ms, labels, &nc));
        int noise = 0, maxl = -1;
        for (int c = 0; c < n; c++) {
            bad += labels[c] != (int)ref[8 * c + 5];
            noise += labels[c] < 0;
            tot_border += labels[c] >= 0 && ref[8 * c + 6] == 0;
            tot_contested += ref[8 * c + 7] >= 2;
            if (labels[c] > maxl) maxl = labels[c];
        }
        CHECK(bad == 0 && maxl == nc - 1, "%s class %d: all %d labels equal (%d differ)",
              t->name, k, n, bad);
        tot_cand += n, tot_clusters += nc, tot_noise += noise;
    }
    free(boxes), free(w), free(labels), free(ref);
}

static void compare_detections(const struct ccase *t) {
    struct dnv2_cluster_config c = {K, t->cls, t->cap};
    struct deft_box *det = NULL;
    struct dnv2_cluster_stats *st = NULL;
    int n = 0, nref;
    CHECK_OK(dnv2_cluster(&t->g, &c, t->cov, t->bbox, &det, &st, &n));
    float *ref = read_ref(t, "det.npy", &nref);
    int bad = 0;
    double err = 0;
    for (int d = 0; ref && d < n && d < nref; d++) {
        const float *r = ref + 9 * d;
        bad += det[d].cls != (int)r[0] || st[d].n_raw != (int)r[8];
        double e[7] = {rel(det[d].x1, r[1]), rel(det[d].y1, r[2]), rel(det[d].x2, r[3]),
                       rel(det[d].y2, r[4]), rel(det[d].score, r[5]), rel(st[d].cov_mean, r[6]),
                       rel(st[d].bbox_variance, r[7])};
        for (int q = 0; q < 7; q++) err = fmax(err, e[q]);
    }
    printf("  %s: %d detections (ref %d), max rel diff %.2e\n", t->name, n, nref, err);
    CHECK(ref && n == nref && bad == 0 && err <= 1e-5,
          "%s: detections identical (%d vs %d, %d differ, rel %.2e)", t->name, n, nref, bad, err);
    tot_dets += n;
    deft_free(det), deft_free(st);
    free(ref);
}

static void bad_input(struct ccase *t) {
    struct dnv2_cluster_config c = {K, t->cls, 0};
    struct deft_box *det = (struct deft_box *)1;
    int n = -1;
    struct dnv2_grid g = t->g;
    g.gw = 0;
    CHECK(dnv2_cluster(&g, &c, t->cov, t->bbox, &det, NULL, &n) == DEFT_ERR_INVALID_ARG &&
              det == NULL && n == 0,
          "a 0-wide grid is refused, outputs cleared: %s", deft_last_error());
    g = t->g;
    g.scale = 0;
    CHECK(dnv2_cluster(&g, &c, t->cov, t->bbox, &det, NULL, &n) == DEFT_ERR_INVALID_ARG,
          "scale 0 is refused");
    struct dnv2_cluster_class saved = t->cls[1];
    t->cls[1].algo = DNV2_CLUSTER_HYBRID;
    CHECK(dnv2_cluster(&t->g, &c, t->cov, t->bbox, &det, NULL, &n) == DEFT_ERR_UNSUPPORTED &&
              strstr(deft_last_error(), "HYBRID"),
          "HYBRID is refused by name: %s", deft_last_error());
    t->cls[1] = saved;
    t->cls[1].dbscan_eps = NAN;
    CHECK(dnv2_cluster(&t->g, &c, t->cov, t->bbox, &det, NULL, &n) == DEFT_ERR_INVALID_ARG,
          "a NaN eps is refused");
    t->cls[1] = saved;
    CHECK(dnv2_cluster(&t->g, &c, NULL, t->bbox, &det, NULL, &n) == DEFT_ERR_INVALID_ARG,
          "no coverage map is refused");
    /* nothing above the threshold: no detections */
    for (int k = 0; k < K; k++) t->cls[k].coverage_threshold = 1.0f;
    CHECK_OK(dnv2_cluster(&t->g, &c, t->cov, t->bbox, &det, NULL, &n));
    CHECK(n == 0, "coverage below every threshold gives no detection (%d)", n);
    deft_free(det);
    int lab[1];
    CHECK(dnv2_dbscan(NULL, NULL, 3, 0.1, 1, lab, NULL) == DEFT_ERR_INVALID_ARG,
          "dbscan without points is refused");
    /* two equal boxes, weights 0.6 each: core only when min_samples <= 1.2 */
    double two[8] = {10, 10, 50, 50, 10, 10, 50, 50};
    float w2[2] = {0.6f, 0.6f};
    int l2[2], nc;
    CHECK_OK(dnv2_dbscan(two, w2, 2, 0.1, 1, l2, &nc));
    CHECK(nc == 1 && l2[0] == 0 && l2[1] == 0, "two equal boxes of weight 0.6: one cluster");
    CHECK_OK(dnv2_dbscan(two, w2, 2, 0.1, 2, l2, &nc));
    CHECK(nc == 0 && l2[0] == -1 && l2[1] == -1, "min_samples 2 > 1.2: both noise");
    /* a border point between two clusters joins the first: boxes 2 pixels
     * apart in x (neighbours: 1 - IoU = 1/3 <= 0.4; 4 apart: 0.57), weights
     * making the middle one non-core (1.9 < 2) and the others core */
    double row[20];
    float w5[5] = {1.5f, 0.9f, 0.1f, 0.9f, 1.5f};
    for (int i = 0; i < 5; i++) {
        double x = 8 - 2 * i; /* index 0 rightmost: the B side is cluster 0 */
        row[4 * i] = x, row[4 * i + 1] = 0, row[4 * i + 2] = x + 10, row[4 * i + 3] = 10;
    }
    int l5[5];
    CHECK_OK(dnv2_dbscan(row, w5, 5, 0.4, 2, l5, &nc));
    CHECK(nc == 2 && l5[0] == 0 && l5[1] == 0 && l5[2] == 0 && l5[3] == 1 && l5[4] == 1,
          "a border point reached by two clusters joins the first (%d %d %d %d %d)", l5[0],
          l5[1], l5[2], l5[3], l5[4]);
}

int main(void) {
    static struct ccase cases[12];
    const int n_cases = 12;
    for (int c = 0; c < n_cases; c++) {
        struct ccase *t = &cases[c];
        snprintf(t->name, sizeof t->name, "seed%d_set%d", c / 3, c % 3);
        t->seed = 100 + (uint64_t)c / 3;
        t->g = (struct dnv2_grid){384, 320, GW, GH, 35.0f, 0.5f};
        rk = 0;
        fill_maps(t);
        set_params(t, c % 3);
        CHECK(write_case(t) == 0, "%s: case written", t->name);
    }
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        test_skip_part("python3 with numpy not available: the reference is not compared");
    } else {
        char cmd[16384];
        int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/dbscan_ref.py",
                           test_source_dir());
        for (int c = 0; c < n_cases; c++)
            len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s", cases[c].dir);
        CHECK(system(cmd) == 0, "the numpy reference ran: %s", cmd);
        for (int c = 0; c < n_cases; c++) {
            for (int k = 0; k < K; k++) compare_labels(&cases[c], k);
            compare_detections(&cases[c]);
        }
        printf("  DBSCAN: %d candidates, %d clusters, %d noise, %d border points (%d reached by "
               "2+ clusters); %d detections in all\n",
               tot_cand, tot_clusters, tot_noise, tot_border, tot_contested, tot_dets);
        CHECK(tot_clusters > 50 && tot_noise > 50 && tot_dets > 50 && tot_border > 0,
              "the cases exercise clusters, noise and detections");
    }
    bad_input(&cases[0]);
    return test_summary();
}

/* test_det_ap.c - detection metrics (deft_det_eval) against the independent
 * numpy implementation in tests/ref/det_ap_ref.py, run at test time on random
 * sets (several seeds and classes, score ties, overlapping GTs, difficult and
 * crowd boxes) and on the edge cases of detection.md §6; every figure equal to
 * 1e-6. Also: metrics.json, the table, the PR plot and bad input. */
#include <string.h>
#include <cjson/cJSON.h>
#include "deft/det_eval.h"
#include "deft/io.h"
#include "deft_test.h"

#define MAX_IMG 128
#define MAX_BOX 64

struct set {
    const char *name;
    double iou, conf, coco_iou;
    int maxdets, K, n;
    int ng[MAX_IMG], nd[MAX_IMG];
    struct deft_box gt[MAX_IMG][MAX_BOX], det[MAX_IMG][MAX_BOX];
    bool crowd[MAX_IMG][MAX_BOX];
};

/* ---- random sets ---------------------------------------------------------- */
static uint64_t rng_state;
static double urand(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static int irand(int n) { return (int)(urand() * n); }

struct gen {
    uint64_t seed;
    int n, K;
    double iou, conf, coco_iou;
    int maxdets;
    bool ties, difficult, crowd, no_gt_class, no_det_class;
};

static void add_gt(struct set *s, int i, float x1, float y1, float x2, float y2, int c, bool diff, bool crowd) {
    int j = s->ng[i]++;
    s->gt[i][j] = (struct deft_box){x1, y1, x2, y2, c, diff, 1.0f};
    s->crowd[i][j] = crowd;
}
static void add_det(struct set *s, int i, float x1, float y1, float x2, float y2, int c, float score) {
    s->det[i][s->nd[i]++] = (struct deft_box){x1, y1, x2, y2, c, false, score};
}

static float q4(double v) { return (float)(floor(v * 4.0) / 4.0); } /* quarter pixels */

static void generate(struct set *s, const struct gen *g) {
    memset(s, 0, sizeof *s);
    rng_state = g->seed;
    s->n = g->n;
    s->K = g->K;
    s->iou = g->iou;
    s->conf = g->conf;
    s->coco_iou = g->coco_iou;
    s->maxdets = g->maxdets;
    int gt_classes = g->no_gt_class ? g->K - 1 : g->K; /* class K-1: no GT */
    int no_det = g->no_det_class ? g->K - 2 : -1;       /* class K-2: no detections */
    for (int i = 0; i < g->n; i++) {
        int ng = urand() < 0.15 ? 0 : 1 + irand(8);
        for (int j = 0; j < ng; j++) {
            float x1, y1, x2, y2;
            int c;
            if (j > 0 && urand() < 0.3) { /* overlapping the previous GT */
                const struct deft_box *p = &s->gt[i][j - 1];
                double w = p->x2 - p->x1, h = p->y2 - p->y1;
                x1 = q4(p->x1 + (urand() - 0.5) * 0.6 * w);
                y1 = q4(p->y1 + (urand() - 0.5) * 0.6 * h);
                x2 = x1 + q4(w * (0.7 + 0.6 * urand())) + 1;
                y2 = y1 + q4(h * (0.7 + 0.6 * urand())) + 1;
                c = urand() < 0.7 ? p->cls : irand(gt_classes);
            } else {
                double sz = exp(log(4.0) + urand() * (log(300.0) - log(4.0)));
                x1 = q4(urand() * 600);
                y1 = q4(urand() * 400);
                x2 = x1 + q4(sz * (0.5 + urand())) + 1;
                y2 = y1 + q4(sz * (0.5 + urand())) + 1;
                c = irand(gt_classes);
            }
            bool crowd = g->crowd && urand() < 0.1;
            add_gt(s, i, x1, y1, x2, y2, c, g->difficult && !crowd && urand() < 0.15, crowd);
        }
        int nd = 0;
        for (int j = 0; j < ng && nd < MAX_BOX - 8; j++) {
            int copies = urand() < 0.8 ? 1 + (urand() < 0.3) : 0;
            for (int r = 0; r < copies; r++) {
                const struct deft_box *p = &s->gt[i][j];
                double w = p->x2 - p->x1, h = p->y2 - p->y1;
                float x1 = q4(p->x1 + (urand() - 0.5) * 0.4 * w), y1 = q4(p->y1 + (urand() - 0.5) * 0.4 * h);
                float x2 = x1 + q4(w * (0.75 + 0.5 * urand())) + 0.5f, y2 = y1 + q4(h * (0.75 + 0.5 * urand())) + 0.5f;
                int c = urand() < 0.9 ? p->cls : irand(g->K);
                float sc = g->ties ? (float)(0.05 + 0.1 * irand(10)) : (float)(0.001 + 0.998 * urand());
                if (c != no_det) add_det(s, i, x1, y1, x2, y2, c, sc), nd++;
            }
        }
        for (int r = irand(5); r > 0; r--) { /* false positives anywhere */
            float x1 = q4(urand() * 600), y1 = q4(urand() * 400);
            float x2 = x1 + q4(4 + urand() * 200), y2 = y1 + q4(4 + urand() * 200);
            int c = irand(g->K);
            float sc = g->ties ? (float)(0.05 + 0.1 * irand(10)) : (float)(0.001 + 0.998 * urand());
            if (c != no_det) add_det(s, i, x1, y1, x2, y2, c, sc);
        }
    }
}

/* ---- the edge cases of detection.md §6, by hand ----------------------------- */
static void edge_cases(struct set *s) {
    memset(s, 0, sizeof *s);
    s->K = 4; /* class 2: no GT; class 3: no detections */
    s->n = 6;
    s->iou = 0.5;
    s->conf = 0.01;
    s->coco_iou = 0.5;
    s->maxdets = 100;
    /* img 0: two overlapping GTs, one detection overlapping both, score ties */
    add_gt(s, 0, 0, 0, 10, 10, 0, false, false);
    add_gt(s, 0, 5, 0, 15, 10, 0, false, false);
    add_det(s, 0, 2, 0, 12, 10, 0, 0.9f);
    add_det(s, 0, 0, 0, 10, 10, 0, 0.9f);
    add_det(s, 0, 5, 0, 15, 10, 0, 0.5f);
    add_det(s, 0, 5, 0, 15, 10, 0, 0.5f); /* duplicate: FP */
    /* img 1: IoU exactly at the threshold: plain 0.5 (TAO/COCO TP), +1 px 0.5 (VOC FP) */
    add_gt(s, 1, 0, 0, 10, 10, 0, false, false);
    add_det(s, 1, 0, 0, 10, 20, 0, 0.8f);
    add_gt(s, 1, 100, 100, 109, 109, 1, false, false);
    add_det(s, 1, 100, 100, 109, 119, 1, 0.7f);
    add_gt(s, 1, 300, 300, 340, 340, 3, false, false); /* class 3: GT only */
    /* img 2: no GT at all; detections are false positives; class 2 has no GT anywhere */
    add_det(s, 2, 20, 20, 60, 60, 0, 0.95f);
    add_det(s, 2, 20, 20, 60, 60, 2, 0.6f);
    add_det(s, 2, 30, 30, 90, 90, 2, 0.9f);
    /* img 3: a difficult GT: the detection on it is ignored; a second one is
     * ignored under VOC (max over all GTs) but a FP under TAO (unmatched only) */
    add_gt(s, 3, 50, 50, 80, 80, 1, true, false);
    add_det(s, 3, 50, 50, 80, 80, 1, 0.99f);
    add_det(s, 3, 52, 50, 82, 80, 1, 0.98f);
    add_gt(s, 3, 150, 50, 190, 90, 1, false, false);
    add_det(s, 3, 151, 50, 190, 91, 1, 0.3f);
    /* img 4: a crowd GT (COCO: repeated matches, ignored) and a large box */
    add_gt(s, 4, 200, 200, 400, 400, 0, false, true);
    add_det(s, 4, 210, 210, 250, 250, 0, 0.7f);
    add_det(s, 4, 260, 260, 300, 300, 0, 0.6f);
    add_gt(s, 4, 0, 0, 150, 150, 1, false, false);
    add_det(s, 4, 5, 5, 150, 150, 1, 0.9f);
    add_det(s, 4, 0, 0, 30, 30, 1, 0.005f); /* under conf_threshold */
    /* img 5: GT only (missed) */
    add_gt(s, 5, 10, 10, 20, 30, 0, false, false);
    add_gt(s, 5, 10, 10, 40, 30, 3, false, false);
}

/* ---- exchange with the reference -------------------------------------------- */
static bool write_set(const struct set *s, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "config %a %a %d %d %d %a\n", s->iou, s->conf, s->maxdets, s->K, s->n, s->coco_iou);
    for (int i = 0; i < s->n; i++) {
        fprintf(f, "img %d %d\n", s->ng[i], s->nd[i]);
        for (int j = 0; j < s->ng[i]; j++) {
            const struct deft_box *b = &s->gt[i][j];
            fprintf(f, "g %a %a %a %a %d %d %d\n", (double)b->x1, (double)b->y1, (double)b->x2, (double)b->y2, b->cls,
                    b->difficult, s->crowd[i][j]);
        }
        for (int j = 0; j < s->nd[i]; j++) {
            const struct deft_box *b = &s->det[i][j];
            fprintf(f, "d %a %a %a %a %d %a\n", (double)b->x1, (double)b->y1, (double)b->x2, (double)b->y2, b->cls,
                    (double)b->score);
        }
    }
    return fclose(f) == 0;
}

static bool same(double a, double b, double tol) {
    return (isnan(a) && isnan(b)) || fabs(a - b) <= tol;
}

static struct deft_det_metrics *run_mode(const struct set *s, enum deft_ap_mode mode) {
    struct deft_det_eval_image im[MAX_IMG];
    for (int i = 0; i < s->n; i++)
        im[i] = (struct deft_det_eval_image){s->gt[i], s->ng[i], s->det[i], s->nd[i], s->crowd[i]};
    struct deft_det_eval_options o;
    deft_det_eval_options_init(&o, mode);
    o.iou = mode == DEFT_AP_COCO ? s->coco_iou : s->iou;
    o.conf_threshold = s->conf;
    o.max_dets = s->maxdets;
    struct deft_det_metrics *m = NULL;
    CHECK_OK(deft_det_eval(im, s->n, s->K, &o, &m));
    return m;
}

/* Compare every figure of every mode with SET.ref. */
static void compare(const struct set *s, const char *ref) {
    FILE *f = fopen(ref, "r");
    CHECK(f != NULL, "%s: no reference output", ref);
    if (!f) return;
    char line[1024], mode[32] = "";
    struct deft_det_metrics *m = NULL;
    int modes = 0;
    while (fgets(line, sizeof line, f)) {
        double v[6];
        int k;
        long long ngt, ndet;
        if (sscanf(line, "mode %31s", mode) == 1) {
            deft_det_metrics_free(m);
            enum deft_ap_mode md;
            CHECK_OK(deft_ap_mode_parse(mode, &md));
            m = run_mode(s, md);
            modes++;
        } else if (!m) {
            continue;
        } else if (sscanf(line, "map %lf", &v[0]) == 1) {
            printf("%-18s %-9s mAP %.9f  reference %.9f\n", s->name, mode, m->map, v[0]);
            CHECK(same(m->map, v[0], 1e-6), "%s %s: mAP %.9g, reference %.9g", s->name, mode, m->map, v[0]);
        } else if (sscanf(line, "class %d %lf %lf %lf %lld %lld", &k, &v[0], &v[1], &v[2], &ngt, &ndet) == 6 &&
                   k >= 0 && k < m->n_classes) {
            const struct deft_det_class_metrics *c = &m->classes[k];
            CHECK(same(c->ap, v[0], 1e-6), "%s %s class %d: AP %.9g, reference %.9g", s->name, mode, k, c->ap, v[0]);
            CHECK(same(c->precision, v[1], 1e-6), "%s %s class %d: precision %.9g, reference %.9g", s->name, mode, k,
                  c->precision, v[1]);
            CHECK(same(c->recall, v[2], 1e-6), "%s %s class %d: recall %.9g, reference %.9g", s->name, mode, k,
                  c->recall, v[2]);
            CHECK(c->n_gt == ngt && c->n_det == ndet, "%s %s class %d: gt %lld det %lld, reference %lld %lld", s->name,
                  mode, k, (long long)c->n_gt, (long long)c->n_det, ngt, ndet);
        } else if (sscanf(line, "coco %lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
            double mine[6] = {m->coco_ap50, m->coco_ap75, m->coco_ap_small, m->coco_ap_medium, m->coco_ap_large, m->coco_ar};
            static const char *const what[6] = {"AP50", "AP75", "APs", "APm", "APl", "AR"};
            for (int j = 0; j < 6; j++)
                CHECK(same(mine[j], v[j], 1e-6), "%s coco %s %.9g, reference %.9g", s->name, what[j], mine[j], v[j]);
        }
    }
    deft_det_metrics_free(m);
    fclose(f);
    CHECK(modes == 5, "%s: %d modes in the reference output", s->name, modes);
}

/* A few figures that follow from the definitions alone (the edge-case set). */
static void edge_expectations(const struct set *s) {
    struct deft_det_metrics *voc = run_mode(s, DEFT_AP_VOC), *tao = run_mode(s, DEFT_AP_INTEGRATE),
                            *coco = run_mode(s, DEFT_AP_COCO);
    if (!voc || !tao || !coco) goto out;
    CHECK(isnan(voc->classes[2].ap) && tao->classes[2].ap == 0 && isnan(coco->classes[2].ap),
          "class without GT: VOC NaN, TAO 0, COCO NaN");
    CHECK(voc->n_classes_in_map == 3 && tao->n_classes_in_map == 4 && coco->n_classes_in_map == 3,
          "classes in the mean: %d %d %d", voc->n_classes_in_map, tao->n_classes_in_map, coco->n_classes_in_map);
    CHECK(tao->classes[3].ap == 0 && tao->classes[3].n_det == 0 && tao->classes[3].n_gt == 2, "class without detections");
    /* class 1: VOC ignores the second detection on the difficult GT, TAO counts it as FP */
    CHECK(voc->classes[1].fp < tao->classes[1].fp, "difficult GT: VOC fp %lld < TAO fp %lld",
          (long long)voc->classes[1].fp, (long long)tao->classes[1].fp);
    CHECK(tao->classes[1].n_det == 5 && tao->classes[1].n_gt == 3, "conf threshold drops a detection (%lld)",
          (long long)tao->classes[1].n_det);
out:
    deft_det_metrics_free(voc);
    deft_det_metrics_free(tao);
    deft_det_metrics_free(coco);
}

/* ---- outputs ------------------------------------------------------------- */
static void outputs(const struct set *s) {
    static const char *const names[4] = {"car", "pedestrian", "cyclist", "van"};
    struct deft_det_metrics *m = run_mode(s, DEFT_AP_COCO);
    if (!m) return;
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.json", test_tmpdir());
    CHECK_OK(deft_det_metrics_write_json(path, m, names));
    FILE *f = fopen(path, "r");
    char buf[16384] = {0};
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    cJSON *j = cJSON_Parse(buf);
    CHECK(n > 0 && j, "metrics.json parses");
    if (j) {
        cJSON *cls = cJSON_GetObjectItem(j, "classes"), *car = cls ? cJSON_GetObjectItem(cls, "car") : NULL;
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "ap_mode")), "coco"), "ap_mode");
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "iou")), "iou is a number");
        CHECK(car && fabs(cJSON_GetObjectItem(car, "AP")->valuedouble - m->classes[0].ap) < 1e-12, "car AP");
        CHECK(car && cJSON_GetObjectItem(car, "gt")->valuedouble == (double)m->classes[0].n_gt, "car gt");
        CHECK(car && cJSON_IsNumber(cJSON_GetObjectItem(car, "detections")), "car detections");
        cJSON *cyc = cls ? cJSON_GetObjectItem(cls, "cyclist") : NULL;
        CHECK(cyc && cJSON_IsNull(cJSON_GetObjectItem(cyc, "AP")), "class without GT: AP null");
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "mAP")), "mAP");
        cJSON *coco = cJSON_GetObjectItem(j, "coco");
        CHECK(coco && cJSON_IsNumber(cJSON_GetObjectItem(coco, "AP50")), "coco block");
        cJSON_Delete(j);
    }
    char *txt = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&txt, &len);
    deft_det_metrics_print(mf, m, names);
    fclose(mf);
    CHECK(txt && strstr(txt, "COCO AP@[.50:.95]") && strstr(txt, "mAP [coco") && strstr(txt, "pedestrian") &&
              strstr(txt, "AP50 [coco"),
          "table names the definition:\n%s", txt ? txt : "");
    free(txt);
    snprintf(path, sizeof path, "%s/pr_curve", test_tmpdir());
    CHECK_OK(deft_det_metrics_plot_pr(path, m, names));
    snprintf(path, sizeof path, "%s/pr_curve.png", test_tmpdir());
    FILE *png = fopen(path, "rb");
    CHECK(png != NULL, "pr_curve.png written");
    if (png) fclose(png);
    deft_det_metrics_free(m);
    /* TAO mode names its definition too */
    m = run_mode(s, DEFT_AP_SAMPLE);
    mf = open_memstream(&txt, &len);
    deft_det_metrics_print(mf, m, names);
    fclose(mf);
    CHECK(strstr(txt, "TAO SAMPLE") && strstr(txt, "mAP [sample, IoU>=0.50]"), "TAO table:\n%s", txt);
    free(txt);
    deft_det_metrics_free(m);
}

static void bad_input(void) {
    struct deft_box g = {0, 0, 10, 10, 5, false, 1}, d = {0, 0, 10, 10, 0, false, NAN};
    struct deft_det_eval_image im = {&g, 1, NULL, 0, NULL};
    struct deft_det_eval_options o;
    deft_det_eval_options_init(&o, DEFT_AP_INTEGRATE);
    struct deft_det_metrics *m = NULL;
    CHECK(deft_det_eval(&im, 1, 3, &o, &m) == DEFT_ERR_INVALID_ARG && !m && strstr(deft_last_error(), "class 5"),
          "class out of range: %s", deft_last_error());
    g.cls = 0;
    im = (struct deft_det_eval_image){&g, 1, &d, 1, NULL};
    CHECK(deft_det_eval(&im, 1, 3, &o, &m) == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "non-finite"),
          "NaN score: %s", deft_last_error());
    d.score = 0.5f;
    d.x2 = -1;
    CHECK(deft_det_eval(&im, 1, 3, &o, &m) == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "inverted"),
          "inverted box: %s", deft_last_error());
    d.x2 = 10;
    o.iou = 1.5;
    CHECK(deft_det_eval(&im, 1, 3, &o, &m) == DEFT_ERR_INVALID_ARG, "IoU 1.5");
    deft_det_eval_options_init(&o, DEFT_AP_COCO);
    o.iou = 0.6; /* not one of COCO's thresholds (0.60 is: 0.62 is not) */
    CHECK_OK(deft_det_eval(&im, 1, 3, &o, &m));
    deft_det_metrics_free(m);
    m = NULL;
    o.iou = 0.62;
    CHECK(deft_det_eval(&im, 1, 3, &o, &m) == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "0.50, 0.55"),
          "COCO iou 0.62: %s", deft_last_error());
    enum deft_ap_mode md;
    CHECK(deft_ap_mode_parse("INTEGRATE", &md) == DEFT_OK && md == DEFT_AP_INTEGRATE, "INTEGRATE parses");
    CHECK(deft_ap_mode_parse("map", &md) == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "sample, integrate, coco"),
          "unknown mode: %s", deft_last_error());
    /* no images at all: empty classes, no crash */
    deft_det_eval_options_init(&o, DEFT_AP_VOC07);
    CHECK_OK(deft_det_eval(NULL, 0, 2, &o, &m));
    CHECK(m && isnan(m->map), "no images: mAP NaN under VOC");
    deft_det_metrics_free(m);
}

/* deft_det_eval_datasets pairs files by stem and classes by name. */
static void datasets(const struct set *s) {
    static char *gt_names[4] = {"car", "pedestrian", "cyclist", "van"};
    static char *pred_names[4] = {"van", "cyclist", "pedestrian", "car"}; /* another order */
    struct deft_det_sample gs[MAX_IMG], ps[MAX_IMG];
    static struct deft_box pb[MAX_IMG][MAX_BOX];
    static char glab[MAX_IMG][64], plab[MAX_IMG][64];
    int np = 0;
    for (int i = 0; i < s->n; i++) {
        snprintf(glab[i], sizeof glab[i], "gt/%06d.txt", i);
        gs[i] = (struct deft_det_sample){NULL, glab[i], 640, 480, s->ng[i], (struct deft_box *)s->gt[i]};
        int j = s->n - 1 - i; /* prediction files in another order */
        if (j == 2) continue; /* no prediction file: no detections */
        snprintf(plab[np], sizeof plab[np], "pred/%06d.txt", j);
        for (int b = 0; b < s->nd[j]; b++) pb[np][b] = s->det[j][b], pb[np][b].cls = 3 - s->det[j][b].cls;
        ps[np] = (struct deft_det_sample){NULL, plab[np], 0, 0, s->nd[j], pb[np]};
        np++;
    }
    struct deft_det_dataset gd = {.n_classes = 4, .class_names = gt_names, .n = s->n, .samples = gs};
    struct deft_det_dataset pd = {.n_classes = 4, .class_names = pred_names, .n = np, .samples = ps};
    struct deft_det_eval_options o;
    deft_det_eval_options_init(&o, DEFT_AP_INTEGRATE);
    o.conf_threshold = s->conf;
    struct deft_det_metrics *a = NULL, *b = NULL;
    CHECK_OK(deft_det_eval_datasets(&gd, &pd, &o, &a));
    struct set t = *s;
    t.nd[2] = 0;
    b = run_mode(&t, DEFT_AP_INTEGRATE);
    CHECK(a && b && a->map == b->map && a->classes[1].n_det == b->classes[1].n_det, "datasets paired by stem and class");
    deft_det_metrics_free(a);
    deft_det_metrics_free(b);
    a = NULL;
    snprintf(plab[0], sizeof plab[0], "pred/extra.txt");
    CHECK(deft_det_eval_datasets(&gd, &pd, &o, &a) == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "extra.txt"),
          "prediction without GT: %s", deft_last_error());
    snprintf(plab[0], sizeof plab[0], "pred/%06d.txt", s->n - 1);
    pred_names[3] = "truck";
    CHECK(deft_det_eval_datasets(&gd, &pd, &o, &a) == DEFT_ERR_INVALID_ARG && strstr(deft_last_error(), "truck"),
          "unknown class: %s", deft_last_error());
    pred_names[3] = "car";
}

static struct set sets[10];

int main(void) {
    bad_input();
    static const struct gen G[] = {
        {1, 60, 4, 0.5, 0.05, 0.5, 100, true, true, true, true, true},
        {2, 80, 3, 0.7, 0.3, 0.75, 3, false, true, false, false, false},
        {3, 40, 5, 0.5, 1e-3, 0.5, 100, true, false, true, true, false},
        {4, 100, 3, 0.6, 0.5, 0.9, 100, true, true, true, false, true},
        {5, 120, 6, 0.45, 0.02, 0.55, 5, false, true, true, true, true},
        {6, 30, 3, 0.5, 0.1, 0.5, 100, true, false, false, false, false},
    };
    int n_sets = 0;
    static char names[10][32];
    for (size_t g = 0; g < sizeof G / sizeof G[0]; g++) {
        generate(&sets[n_sets], &G[g]);
        snprintf(names[n_sets], sizeof names[n_sets], "random seed %llu", (unsigned long long)G[g].seed);
        sets[n_sets].name = names[n_sets];
        n_sets++;
    }
    struct set *edge = &sets[n_sets++];
    edge_cases(edge);
    edge->name = "edge cases";
    struct set *empty = &sets[n_sets++]; /* GT only, nothing detected */
    memset(empty, 0, sizeof *empty);
    empty->name = "nothing detected";
    empty->K = 3, empty->n = 3, empty->iou = 0.5, empty->conf = 0.01, empty->coco_iou = 0.5, empty->maxdets = 100;
    add_gt(empty, 0, 0, 0, 10, 10, 0, false, false);
    add_gt(empty, 1, 5, 5, 50, 50, 1, true, false);
    struct set *no_gt = &sets[n_sets++]; /* detections only, no GT anywhere */
    memset(no_gt, 0, sizeof *no_gt);
    no_gt->name = "no ground truth";
    no_gt->K = 2, no_gt->n = 2, no_gt->iou = 0.5, no_gt->conf = 0.01, no_gt->coco_iou = 0.5, no_gt->maxdets = 100;
    add_det(no_gt, 0, 0, 0, 10, 10, 0, 0.5f);
    add_det(no_gt, 1, 0, 0, 100, 100, 1, 0.7f);

    edge_expectations(edge);
    outputs(edge);
    datasets(edge);

    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("numpy reference skipped: /usr/bin/python3 has no numpy (apt-get install python3-numpy)\n");
        return test_summary();
    }
    char cmd[8192];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/det_ap_ref.py", test_source_dir());
    char paths[10][512];
    for (int i = 0; i < n_sets; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/set%d.txt", test_tmpdir(), i);
        CHECK(write_set(&sets[i], paths[i]), "write %s", paths[i]);
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s", paths[i]);
    }
    CHECK(system(cmd) == 0, "reference failed: %s", cmd);
    for (int i = 0; i < n_sets; i++) {
        char ref[600];
        snprintf(ref, sizeof ref, "%s.ref", paths[i]);
        compare(&sets[i], ref);
    }
    return test_summary();
}

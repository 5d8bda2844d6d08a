/* test_yolo_loss.c - YOLOv4 matching, loss, gradients, decode and NMS
 * (include/deft/yolo.h) against tests/ref/yolo_ref.py, an independent
 * PyTorch implementation of detection.md §2 run at test time on the same
 * random heads and targets; plus finite differences of the C gradient and
 * the argument checks.
 *
 * Cases: 3 heads (YOLOv4) with label smoothing, class weights, an empty
 * image and two GTs in one cell; the same with focal loss; 2 heads
 * (YOLOv4-tiny) without smoothing; a batch of empty images. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include "deft/yolo.h"
#include "deft_test.h"

#define MAX_HEADS 3
#define MAX_A 3
#define MAX_GT 64

struct tcase {
    const char *name;
    int n_heads, batch, n_classes;
    struct deft_yolo_head heads[MAX_HEADS];
    float anchors[MAX_HEADS][2 * MAX_A];
    struct deft_yolo_loss_config cfg;
    float class_weights[8];
    float conf, nms_iou;
    int topk_cls, topk;
    float *outs[MAX_HEADS];
    struct deft_box gt[4][MAX_GT];
    int n_gt[4];
    char dir[512];
};

static uint64_t rng_k;
static float unif(void) { return deft_rng_uniform(1234, 7, rng_k++); }
static float gauss(void) { return deft_rng_normal(1234, 8, rng_k++); }

static size_t head_numel(const struct tcase *t, int i) {
    const struct deft_yolo_head *h = &t->heads[i];
    return (size_t)t->batch * (size_t)h->n_anchors * (size_t)(5 + t->n_classes) *
           (size_t)h->gh * (size_t)h->gw;
}

static void set_head(struct tcase *t, int i, int gh, int gw, float ext, const float *anchors) {
    memcpy(t->anchors[i], anchors, sizeof t->anchors[i]);
    t->heads[i] = (struct deft_yolo_head){gh, gw, MAX_A, t->anchors[i], ext};
}

/* Random logits: centres and sizes near the anchors (so predictions overlap
 * the GTs and the neutral region is hit), objectness and classes spread. */
static void fill_outs(struct tcase *t) {
    for (int i = 0; i < t->n_heads; i++) {
        const struct deft_yolo_head *h = &t->heads[i];
        size_t plane = (size_t)h->gh * (size_t)h->gw, n = head_numel(t, i);
        t->outs[i] = malloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++) {
            int k = (int)((j / plane) % (size_t)(5 + t->n_classes));
            float sd = k < 2 ? 1.5f : k < 4 ? 0.6f : 2.0f;
            t->outs[i][j] = sd * gauss() + (k == 4 ? -1.0f : 0.0f);
        }
    }
}

/* Random GTs around anchor sizes, inside [0, 1]; GT 1 shares GT 0's cell in
 * image 0 and nearly its box in image 1. */
static void add_gt(struct tcase *t, int b, int n) {
    for (int g = 0; g < n; g++) {
        const struct deft_yolo_head *h = &t->heads[(int)(unif() * t->n_heads) % t->n_heads];
        int a = (int)(unif() * MAX_A) % MAX_A;
        float w = h->anchors[2 * a] * (0.6f + unif()), hh = h->anchors[2 * a + 1] * (0.6f + unif());
        float cx = 0.05f + 0.9f * unif(), cy = 0.05f + 0.9f * unif();
        if (b < 2 && g == 1) {
            const struct deft_box *p = &t->gt[b][0];
            cx = (p->x1 + p->x2) / 2 + 0.001f, cy = (p->y1 + p->y2) / 2 + 0.001f;
            if (b == 1) /* nearly the same box: both GTs want one best slot, the later wins */
                w = (p->x2 - p->x1) * 1.05f, hh = (p->y2 - p->y1) * 1.02f;
        }
        struct deft_box *o = &t->gt[b][g];
        o->x1 = fmaxf(cx - w / 2, 0.0f), o->x2 = fminf(cx + w / 2, 1.0f);
        o->y1 = fmaxf(cy - hh / 2, 0.0f), o->y2 = fminf(cy + hh / 2, 1.0f);
        o->cls = (int)(unif() * t->n_classes) % t->n_classes;
        o->score = 1.0f;
    }
    t->n_gt[b] = n;
}

static int write_case(struct tcase *t) {
    snprintf(t->dir, sizeof t->dir, "%s/%s", test_tmpdir(), t->name);
    mkdir(t->dir, 0755);
    char p[700];
    float cfg[16] = {(float)t->n_classes, t->cfg.box_matching_iou, t->cfg.neutral_box_iou,
                     t->cfg.loc_weight, t->cfg.neg_obj_weight, t->cfg.cls_weight,
                     t->cfg.label_smoothing, t->cfg.focal_alpha, t->cfg.focal_gamma, t->conf,
                     t->nms_iou, (float)t->topk_cls, (float)t->topk, (float)t->n_heads,
                     (float)t->batch, t->cfg.class_weights ? 1.0f : 0.0f};
    int64_t sh[4] = {16};
    snprintf(p, sizeof p, "%s/cfg.npy", t->dir);
    int rc = test_npy_write(p, cfg, sh, 1);
    sh[0] = t->n_classes;
    snprintf(p, sizeof p, "%s/class_weights.npy", t->dir);
    rc |= test_npy_write(p, t->class_weights, sh, 1);
    float hs[MAX_HEADS][4 + 2 * MAX_A];
    for (int i = 0; i < t->n_heads; i++) {
        const struct deft_yolo_head *h = &t->heads[i];
        hs[i][0] = (float)h->gh, hs[i][1] = (float)h->gw, hs[i][2] = (float)h->n_anchors;
        hs[i][3] = h->xy_extend;
        memcpy(&hs[i][4], h->anchors, 2 * MAX_A * sizeof(float));
        int64_t hsh[4] = {t->batch, h->n_anchors * (5 + t->n_classes), h->gh, h->gw};
        snprintf(p, sizeof p, "%s/head%d.npy", t->dir, i);
        rc |= test_npy_write(p, t->outs[i], hsh, 4);
    }
    int64_t hsh[2] = {t->n_heads, 4 + 2 * MAX_A};
    snprintf(p, sizeof p, "%s/heads.npy", t->dir);
    rc |= test_npy_write(p, &hs[0][0], hsh, 2);
    float g[4 * MAX_GT][6];
    int n = 0;
    for (int b = 0; b < t->batch; b++)
        for (int k = 0; k < t->n_gt[b]; k++, n++) {
            const struct deft_box *o = &t->gt[b][k];
            g[n][0] = (float)b, g[n][1] = (float)o->cls;
            g[n][2] = o->x1, g[n][3] = o->y1, g[n][4] = o->x2, g[n][5] = o->y2;
        }
    int64_t gsh[2] = {n, 6};
    snprintf(p, sizeof p, "%s/gt.npy", t->dir);
    rc |= test_npy_write(p, &g[0][0], gsh, 2);
    return rc;
}

static float *read_ref(const struct tcase *t, const char *name, size_t *n) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", t->dir, name);
    int64_t sh[8];
    int nd = 0;
    float *v = test_npy_read(p, sh, &nd);
    *n = 1;
    for (int i = 0; i < nd; i++) *n *= (size_t)sh[i];
    if (!v) printf("cannot read %s\n", p);
    return v;
}

static const struct deft_box *const *gt_ptrs(const struct tcase *t) {
    static const struct deft_box *p[4];
    for (int b = 0; b < 4; b++) p[b] = t->gt[b];
    return p;
}

static void compare_match(const struct tcase *t, long *n_pos_total) {
    size_t n;
    float *ref = read_ref(t, "ref_assign.npy", &n);
    long slots = deft_yolo_n_slots(t->heads, t->n_heads);
    int *as = malloc((size_t)slots * sizeof *as);
    int mism = 0;
    *n_pos_total = 0;
    for (int b = 0; b < t->batch && ref; b++) {
        CHECK_OK(deft_yolo_match(t->heads, t->n_heads, t->cfg.box_matching_iou, t->gt[b],
                                 t->n_gt[b], as));
        for (long s = 0; s < slots; s++) {
            mism += as[s] != (int)ref[(size_t)b * (size_t)slots + (size_t)s];
            *n_pos_total += as[s] >= 0;
        }
    }
    CHECK(ref && n == (size_t)t->batch * (size_t)slots && mism == 0,
          "%s: matching equals the reference (%d of %ld slots differ)", t->name, mism,
          slots * t->batch);
    free(as);
    free(ref);
}

static void compare_loss(const struct tcase *t, struct deft_yolo_loss_terms *tm) {
    float *grads[MAX_HEADS];
    for (int i = 0; i < t->n_heads; i++) grads[i] = malloc(head_numel(t, i) * sizeof(float));
    CHECK_OK(deft_yolo_loss(&t->cfg, t->heads, t->n_heads, t->batch,
                            (const float *const *)t->outs, gt_ptrs(t), t->n_gt, grads, tm));
    size_t n;
    float *ref = read_ref(t, "ref_terms.npy", &n);
    double mine[5] = {tm->loc, tm->obj, tm->noobj, tm->cls, tm->total};
    static const char *names[5] = {"loc", "obj", "noobj", "cls", "total"};
    for (int k = 0; ref && k < 5; k++) {
        double rel = fabs(mine[k] - ref[k]) / fmax(fabs((double)ref[k]), 1e-12);
        if (ref[k] == 0) rel = fabs(mine[k]);
        printf("  %s %-5s deft %.7g ref %.7g rel %.2e\n", t->name, names[k], mine[k],
               (double)ref[k], rel);
        CHECK(rel <= 1e-4, "%s: %s term within 1e-4 (rel %.3g)", t->name, names[k], rel);
    }
    free(ref);
    for (int i = 0; i < t->n_heads; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "ref_grad%d.npy", i);
        float *rg = read_ref(t, nm, &n);
        double e = rg && n == head_numel(t, i) ? test_max_rel_err(grads[i], rg, n) : INFINITY;
        double gmax = 0;
        for (size_t j = 0; rg && j < n; j++) gmax = fmax(gmax, fabs(rg[j]));
        printf("  %s head %d gradient max rel err %.2e (max |grad| %.3g)\n", t->name, i, e, gmax);
        CHECK(gmax > 0, "%s: head %d has a gradient", t->name, i);
        CHECK(e <= 1e-4, "%s: head %d gradient within 1e-4 (%.3g)", t->name, i, e);
        free(rg);
        free(grads[i]);
    }
    /* the value-only call gives the same terms */
    struct deft_yolo_loss_terms v;
    CHECK_OK(deft_yolo_loss(&t->cfg, t->heads, t->n_heads, t->batch,
                            (const float *const *)t->outs, gt_ptrs(t), t->n_gt, NULL, &v));
    CHECK(v.total == tm->total, "%s: value-only total equals", t->name);
}

static void compare_detections(const struct tcase *t) {
    for (int b = 0; b < t->batch; b++) {
        struct deft_box *bx = NULL;
        int n = 0, kept = 0;
        CHECK_OK(deft_yolo_decode(t->heads, t->n_heads, t->n_classes,
                                  (const float *const *)t->outs, b, t->conf, &bx, &n));
        CHECK_OK(deft_nms_per_class(bx, n, t->nms_iou, t->topk_cls, t->topk, true, &kept));
        char nm[32];
        snprintf(nm, sizeof nm, "ref_det%d.npy", b);
        size_t rn;
        float *ref = read_ref(t, nm, &rn);
        int nref = (int)(rn / 6), bad = 0;
        double box_err = 0;
        for (int k = 0; ref && k < kept && k < nref; k++) {
            const float *r = ref + 6 * k;
            bad += bx[k].cls != (int)r[4];
            box_err = fmax(box_err, fabs(bx[k].x1 - r[0]) + fabs(bx[k].y1 - r[1]) +
                                        fabs(bx[k].x2 - r[2]) + fabs(bx[k].y2 - r[3]));
            bad += fabs(bx[k].score - r[5]) > 1e-6;
        }
        printf("  %s image %d: %d candidates, %d kept (ref %d), max box diff %.2e\n", t->name,
               b, n, kept, nref, box_err);
        CHECK(ref && kept == nref && bad == 0 && box_err <= 1e-5,
              "%s image %d: decode + NMS identical to torchvision (%d vs %d boxes, %d differ)",
              t->name, b, kept, nref, bad);
        free(ref);
        deft_free(bx);
    }
}

/* Central differences on entries of positive slots (box, objectness, a
 * class) and on negative objectness: the masks do not move there. */
static void finite_differences(struct tcase *t) {
    long slots = deft_yolo_n_slots(t->heads, t->n_heads);
    int *as = malloc((size_t)slots * sizeof *as);
    float *grads[MAX_HEADS];
    for (int i = 0; i < t->n_heads; i++) grads[i] = malloc(head_numel(t, i) * sizeof(float));
    struct deft_yolo_loss_terms tm;
    CHECK_OK(deft_yolo_loss(&t->cfg, t->heads, t->n_heads, t->batch,
                            (const float *const *)t->outs, gt_ptrs(t), t->n_gt, grads, &tm));
    CHECK_OK(deft_yolo_match(t->heads, t->n_heads, t->cfg.box_matching_iou, t->gt[0],
                             t->n_gt[0], as));
    double worst = 0, gmax = 0;
    int checked = 0, pos_seen = 0, neg_seen = 0;
    long s = 0;
    for (int i = 0; i < t->n_heads; i++) {
        const struct deft_yolo_head *h = &t->heads[i];
        size_t plane = (size_t)h->gh * (size_t)h->gw;
        for (size_t j = 0; j < head_numel(t, i); j++) gmax = fmax(gmax, fabs(grads[i][j]));
        for (int a = 0; a < h->n_anchors; a++)
            for (size_t cell = 0; cell < plane; cell++, s++) {
                bool pos = as[s] >= 0;
                if (pos ? pos_seen++ >= 4 : (neg_seen++ % 97) != 0) continue;
                for (int k = pos ? 0 : 4; k < (pos ? 6 : 5); k++) {
                    size_t at = ((size_t)a * (size_t)(5 + t->n_classes) + (size_t)k) * plane + cell;
                    float x0 = t->outs[i][at];
                    struct deft_yolo_loss_terms lp, lm;
                    t->outs[i][at] = x0 + 1e-3f;
                    double xp = t->outs[i][at];
                    CHECK_OK(deft_yolo_loss(&t->cfg, t->heads, t->n_heads, t->batch,
                                            (const float *const *)t->outs, gt_ptrs(t), t->n_gt,
                                            NULL, &lp));
                    t->outs[i][at] = x0 - 1e-3f;
                    double xm = t->outs[i][at];
                    CHECK_OK(deft_yolo_loss(&t->cfg, t->heads, t->n_heads, t->batch,
                                            (const float *const *)t->outs, gt_ptrs(t), t->n_gt,
                                            NULL, &lm));
                    t->outs[i][at] = x0;
                    double fd = (lp.total - lm.total) / (xp - xm);
                    worst = fmax(worst, fabs(fd - grads[i][at]));
                    checked++;
                }
            }
    }
    printf("  finite differences: %d entries, max |fd - analytic| %.2e (max |grad| %.2e)\n",
           checked, worst, gmax);
    CHECK(checked >= 20 && worst <= 1e-3 * gmax, "finite differences agree (%.3g of %.3g)",
          worst, gmax);
    for (int i = 0; i < t->n_heads; i++) free(grads[i]);
    free(as);
}

static void bad_input(struct tcase *t) {
    struct deft_yolo_loss_terms tm;
    struct deft_box saved = t->gt[0][0];
    t->gt[0][0].cls = t->n_classes;
    CHECK(deft_yolo_loss(&t->cfg, t->heads, t->n_heads, t->batch,
                         (const float *const *)t->outs, gt_ptrs(t), t->n_gt, NULL,
                         &tm) == DEFT_ERR_INVALID_ARG &&
              strstr(deft_last_error(), "class"),
          "a class id out of range is refused: %s", deft_last_error());
    t->gt[0][0] = saved;
    struct deft_yolo_head h = t->heads[0];
    h.gh = 0;
    int as[4];
    CHECK(deft_yolo_match(&h, 1, 0.25f, t->gt[0], 1, as) == DEFT_ERR_INVALID_ARG,
          "a 0-row grid is refused");
    float bad_anchor[6] = {0.1f, 0.0f, 0.1f, 0.1f, 0.1f, 0.1f};
    h = t->heads[0];
    h.anchors = bad_anchor;
    CHECK(deft_yolo_match(&h, 1, 0.25f, t->gt[0], 1, as) == DEFT_ERR_INVALID_ARG,
          "a zero anchor is refused");
    /* degenerate GTs are skipped, not matched */
    struct deft_box flat = {0.5f, 0.5f, 0.5f, 0.6f, 0, false, 1};
    int big[4096];
    CHECK_OK(deft_yolo_match(t->heads, t->n_heads, 0.25f, &flat, 1, big));
    int hits = 0;
    for (long s = 0; s < deft_yolo_n_slots(t->heads, t->n_heads); s++) hits += big[s] >= 0;
    CHECK(hits == 0, "a zero-width GT takes no slot");
    /* NMS: ties keep input order, limits hold */
    struct deft_box tie[3] = {{0, 0, .5f, .5f, 1, false, .9f},
                              {0, 0, .5f, .5f, 0, false, .9f},
                              {.6f, .6f, 1.2f, .9f, 0, false, .9f}};
    int k = 0;
    CHECK_OK(deft_nms_per_class(tie, 3, 0.5f, 0, 2, true, &k));
    CHECK(k == 2 && tie[0].cls == 0 && tie[0].x1 == 0 && tie[1].cls == 0 && tie[1].x2 == 1.0f,
          "NMS ties: class then input order, top_k total, clipping");
}

static void free_case(struct tcase *t) {
    for (int i = 0; i < t->n_heads; i++) free(t->outs[i]);
}

/* Runs the reference on every case, then compares each. */
static void compare_all(struct tcase *cases, int n_cases) {
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/yolo_ref.py",
                       test_source_dir());
    for (int c = 0; c < n_cases; c++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s", cases[c].dir);
    CHECK(system(cmd) == 0, "the PyTorch reference ran: %s", cmd);
    for (int c = 0; c < n_cases; c++) {
        struct tcase *t = &cases[c];
        long n_pos;
        struct deft_yolo_loss_terms tm;
        compare_match(t, &n_pos);
        compare_loss(t, &tm);
        long slots = deft_yolo_n_slots(t->heads, t->n_heads) * t->batch;
        int n_gt = 0;
        for (int b = 0; b < t->batch; b++) n_gt += t->n_gt[b];
        printf("  %s: %d GTs, %ld positive slots, %ld negative, %ld neutral\n", t->name, n_gt,
               tm.n_pos, tm.n_neg, slots - tm.n_pos - tm.n_neg);
        CHECK(tm.n_pos == n_pos, "%s: positives counted", t->name);
        if (c < 3)
            CHECK(tm.n_pos > n_gt && slots - tm.n_pos - tm.n_neg > 0,
                  "%s: several anchors per GT and the neutral region are exercised", t->name);
        else
            CHECK(tm.n_pos == 0 && tm.n_neg == slots && tm.loc == 0 && tm.cls == 0,
                  "%s: an empty batch is all negatives", t->name);
        compare_detections(t);
    }
}

int main(void) {
    bool have_ref = test_have_torch() &&
                    system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") == 0;
    if (!have_ref) test_skip_part("python3 with torch/torchvision not available: the torchvision reference is not compared");
    static const float big[6] = {0.35f, 0.3f, 0.5f, 0.6f, 0.8f, 0.7f};
    static const float mid[6] = {0.12f, 0.2f, 0.2f, 0.15f, 0.25f, 0.3f};
    static const float small[6] = {0.04f, 0.05f, 0.06f, 0.1f, 0.1f, 0.08f};
    static struct tcase cases[4];
    const int n_cases = 4;
    for (int c = 0; c < n_cases; c++) {
        struct tcase *t = &cases[c];
        bool tiny = c == 2;
        t->name = c == 0 ? "v4_smooth_cw" : c == 1 ? "v4_focal" : c == 2 ? "tiny" : "empty";
        t->n_heads = tiny ? 2 : 3;
        t->batch = c == 2 ? 2 : 3;
        t->n_classes = tiny ? 3 : 4;
        /* a 128x96 input: strides 32, 16, 8 */
        set_head(t, 0, 3, 4, 0.05f, big);
        set_head(t, 1, 6, 8, 0.1f, mid);
        if (!tiny) set_head(t, 2, 12, 16, 0.2f, small);
        t->cfg = deft_yolo_loss_config_default(t->n_classes);
        t->cfg.box_matching_iou = 0.25f;
        t->cfg.neutral_box_iou = 0.5f;
        t->cfg.loc_weight = 1.5f, t->cfg.neg_obj_weight = 0.7f, t->cfg.cls_weight = 0.8f;
        for (int k = 0; k < t->n_classes; k++) t->class_weights[k] = 0.5f + 0.5f * (float)k;
        if (c == 0) t->cfg.label_smoothing = 0.1f, t->cfg.class_weights = t->class_weights;
        if (c == 1) {
            t->cfg.focal_alpha = 0.25f, t->cfg.focal_gamma = 2.0f;
            t->cfg.label_smoothing = 0.05f, t->cfg.class_weights = t->class_weights;
        }
        if (c == 1) t->cfg.neutral_box_iou = 0.3f; /* a wider neutral region */
        if (c == 2) t->cfg.neutral_box_iou = 0.4f;
        t->conf = c == 1 ? 0.1f : 0.3f;
        t->nms_iou = 0.5f;
        t->topk_cls = c == 0 ? 15 : 0;
        t->topk = c == 0 ? 25 : c == 2 ? 40 : 0;
        fill_outs(t);
        for (int b = 0; b < t->batch; b++) add_gt(t, b, c == 3 || b == 2 ? 0 : 6 + 3 * b);
        CHECK(write_case(t) == 0, "%s: case written", t->name);
    }
    if (have_ref) compare_all(cases, n_cases);
    finite_differences(&cases[0]);
    finite_differences(&cases[1]);
    bad_input(&cases[0]);
    for (int c = 0; c < n_cases; c++) free_case(&cases[c]);
    if (!have_ref && test_failed == 0)
        test_skip("C checks passed; the reference comparison needs /usr/bin/python3 with torch "
                  "and torchvision (scripts/install-deps.sh --test)");
    return test_summary();
}

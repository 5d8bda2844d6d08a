/* test_ssd_loss.c - TAO's SSD matching, loss (value and gradients) and
 * decoding + NMS (include/deft/ssd.h) against tests/ref/ssd_ref.py, an
 * independent PyTorch reference (autograd gradients, torchvision box_iou and
 * batched_nms) run at test time on random outputs and boxes; plus finite
 * differences of the C gradient and the bad-input paths. */
#include <stdio.h>
#include <string.h>
#include "deft/det_ops.h"
#include "deft/det_priors.h"
#include "deft/ssd.h"
#include "deft/yolo.h"
#include "deft_test.h"

#define L 6
#define MAXB 3
#define MAXG 8

struct tcase {
    const char *name;
    int K, batch;
    struct deft_ssd_map maps[L];
    float *priors;
    long np;
    float *outs[2 * L];
    struct deft_box gt[MAXB][MAXG];
    int n_gt[MAXB];
    struct deft_ssd_loss_config cfg;
    char dir[512];
};

static uint64_t rng_k;
static float unif(void) { return deft_rng_uniform(4321, 3, rng_k++); }
static float gauss(void) { return deft_rng_normal(4321, 4, rng_k++); }

static size_t out_numel(const struct tcase *t, int i) {
    const struct deft_ssd_map *m = &t->maps[i % L];
    return (size_t)t->batch * (size_t)(m->boxes * (i < L ? t->K : 4)) * (size_t)m->h * (size_t)m->w;
}

static void setup(struct tcase *t, const char *name, int K, int batch, int img_w, int img_h, bool empty) {
    memset(t, 0, sizeof *t);
    t->name = name, t->K = K, t->batch = batch;
    static const double ar[] = {1.0, 2.0, 0.5};
    static const double sc[L + 1] = {0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95};
    static const double var[4] = {0.1, 0.1, 0.2, 0.2};
    struct deft_ssd_layer_params lp[L];
    int h = img_h / 8, w = img_w / 8;
    for (int l = 0; l < L; l++) {
        lp[l] = (struct deft_ssd_layer_params){h, w, sc[l], sc[l + 1], ar, 3, 0, 0, 0.5, 0.5};
        t->maps[l] = (struct deft_ssd_map){h, w, deft_ssd_boxes_per_cell(ar, 3, true)};
        h = (h + 1) / 2, w = (w + 1) / 2;
    }
    t->np = deft_ssd_prior_count(lp, L, true);
    t->priors = malloc((size_t)t->np * 8 * sizeof(float));
    long n = 0;
    CHECK_OK(deft_ssd_priors(lp, L, img_w, img_h, true, false, var, t->priors, t->np, &n));
    for (int i = 0; i < 2 * L; i++) {
        size_t k = out_numel(t, i);
        t->outs[i] = malloc(k * sizeof(float));
        for (size_t j = 0; j < k; j++) t->outs[i][j] = 1.5f * gauss();
    }
    for (int b = 0; b < batch && !empty; b++) {
        t->n_gt[b] = 2 + b % 3;
        for (int g = 0; g < t->n_gt[b]; g++) {
            /* near a random prior, so the per-prior threshold and the neutral band both fire */
            const float *p = t->priors + 8 * (long)(unif() * (float)(t->np - 1));
            float cx = (p[0] + p[2]) / 2 + 0.03f * gauss(), cy = (p[1] + p[3]) / 2 + 0.03f * gauss();
            float bw = (p[2] - p[0]) * (0.8f + 0.5f * unif()), bh = (p[3] - p[1]) * (0.8f + 0.5f * unif());
            t->gt[b][g] = (struct deft_box){cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2,
                                            (int)(unif() * (float)(K - 1)) % (K - 1), false, 1};
        }
    }
    t->cfg = deft_ssd_loss_config_default();
    snprintf(t->dir, sizeof t->dir, "%s/ssd_%s", test_tmpdir(), name);
}

static void write_case(struct tcase *t, float conf, float nms_iou, int top_k) {
    char p[700];
    snprintf(p, sizeof p, "mkdir -p %s", t->dir);
    CHECK(system(p) == 0, "mkdir %s", t->dir);
    float cfg[11] = {(float)t->K, L, (float)t->batch, t->cfg.alpha, t->cfg.neg_pos_ratio, (float)t->cfg.n_neg_min,
                     t->cfg.pos_iou, t->cfg.neg_iou, conf, nms_iou, (float)top_k};
    snprintf(p, sizeof p, "%s/cfg.npy", t->dir);
    test_npy_write(p, cfg, (int64_t[]){11}, 1);
    float maps[L * 3];
    for (int l = 0; l < L; l++) maps[3 * l] = t->maps[l].h, maps[3 * l + 1] = t->maps[l].w, maps[3 * l + 2] = t->maps[l].boxes;
    snprintf(p, sizeof p, "%s/maps.npy", t->dir);
    test_npy_write(p, maps, (int64_t[]){L, 3}, 2);
    snprintf(p, sizeof p, "%s/priors.npy", t->dir);
    test_npy_write(p, t->priors, (int64_t[]){t->np, 8}, 2);
    for (int i = 0; i < 2 * L; i++) {
        const struct deft_ssd_map *m = &t->maps[i % L];
        snprintf(p, sizeof p, "%s/%s%d.npy", t->dir, i < L ? "conf" : "loc", i % L);
        test_npy_write(p, t->outs[i], (int64_t[]){t->batch, m->boxes * (i < L ? t->K : 4), m->h, m->w}, 4);
    }
    float g[MAXB * MAXG * 6];
    int n = 0;
    for (int b = 0; b < t->batch; b++)
        for (int k = 0; k < t->n_gt[b]; k++, n++) {
            const struct deft_box *x = &t->gt[b][k];
            float r[6] = {(float)b, (float)x->cls, x->x1, x->y1, x->x2, x->y2};
            memcpy(g + 6 * n, r, sizeof r);
        }
    snprintf(p, sizeof p, "%s/gt.npy", t->dir);
    test_npy_write(p, g, (int64_t[]){n, 6}, 2);
}

static double loss_of(struct tcase *t, float *const *grads, struct deft_ssd_loss_terms *tm) {
    const struct deft_box *gt[MAXB];
    for (int b = 0; b < t->batch; b++) gt[b] = t->gt[b];
    CHECK_OK(deft_ssd_loss(&t->cfg, t->maps, L, t->K, t->priors, t->batch, (const float *const *)t->outs, gt,
                           t->n_gt, grads, tm));
    return tm->total;
}

static float *ref(const struct tcase *t, const char *name) {
    char p[700];
    int64_t sh[4];
    int nd;
    snprintf(p, sizeof p, "%s/%s", t->dir, name);
    float *r = test_npy_read(p, sh, &nd);
    CHECK(r != NULL, "%s: reference output %s", t->name, name);
    return r;
}

static void compare(struct tcase *t) {
    float *grads[2 * L];
    for (int i = 0; i < 2 * L; i++) grads[i] = calloc(out_numel(t, i), sizeof(float));
    struct deft_ssd_loss_terms tm;
    loss_of(t, grads, &tm);
    float *rt = ref(t, "ref_terms.npy"), *rl = ref(t, "ref_label.npy");
    if (!rt || !rl) return;
    int *lab = malloc((size_t)t->np * sizeof(int));
    float *tg = malloc((size_t)t->np * 4 * sizeof(float));
    long diff = 0;
    for (int b = 0; b < t->batch; b++) {
        CHECK_OK(deft_ssd_match(t->priors, t->np, t->gt[b], t->n_gt[b], t->cfg.pos_iou, t->cfg.neg_iou, lab, tg));
        for (long p = 0; p < t->np; p++) diff += lab[p] != (int)rl[(long)b * t->np + p];
    }
    CHECK(diff == 0, "%s: %ld prior labels differ from the reference's matching", t->name, diff);
    printf("  %s: %ld priors x %d images, %ld positive, %ld hard negatives kept, %ld neutral; loss %.6f (cls %.6f, "
           "loc %.6f), reference %.6f\n", t->name, t->np, t->batch, tm.n_pos, tm.n_neg, tm.n_neutral, tm.total,
           tm.cls, tm.loc, (double)rt[0]);
    CHECK(tm.n_pos == (long)rt[3] && tm.n_neg == (long)rt[4] && tm.n_neutral == (long)rt[5],
          "%s: counts %ld/%ld/%ld vs %g/%g/%g", t->name, tm.n_pos, tm.n_neg, tm.n_neutral, rt[3], rt[4], rt[5]);
    CHECK(fabs(tm.total - rt[0]) <= 1e-4 * fmax(1, fabs(rt[0])) && fabs(tm.cls - rt[1]) <= 1e-4 * fmax(1, fabs(rt[1])) &&
              fabs(tm.loc - rt[2]) <= 1e-4 * fmax(1, fabs(rt[2])),
          "%s: loss %.7g/%.7g/%.7g vs reference %.7g/%.7g/%.7g", t->name, tm.total, tm.cls, tm.loc, rt[0], rt[1], rt[2]);
    double worst = 0;
    for (int i = 0; i < 2 * L; i++) {
        char n[64];
        snprintf(n, sizeof n, "ref_g%s%d.npy", i < L ? "conf" : "loc", i % L);
        float *rg = ref(t, n);
        if (!rg) continue;
        double d = test_max_abs_diff(grads[i], rg, out_numel(t, i));
        worst = d > worst ? d : worst;
        free(rg);
    }
    printf("  %s: gradients, max abs difference to autograd %.3g\n", t->name, worst);
    CHECK(worst <= 1e-6, "%s: gradient differs from autograd by %g", t->name, worst);
    /* decode + NMS vs torchvision batched_nms */
    for (int b = 0; b < t->batch; b++) {
        struct deft_box *bx = NULL;
        int n = 0, kept = 0;
        CHECK_OK(deft_ssd_decode_image(t->maps, L, t->K, (const float *const *)t->outs, b, t->priors, 0.2f, &bx, &n));
        CHECK_OK(deft_nms_per_class(bx, n, 0.45f, 0, 50, true, &kept));
        char nm[32];
        snprintf(nm, sizeof nm, "ref_det%d.npy", b);
        char p[700];
        int64_t sh[4] = {0};
        int nd;
        snprintf(p, sizeof p, "%s/%s", t->dir, nm);
        float *rd = test_npy_read(p, sh, &nd);
        int rn = rd ? (int)sh[0] : -1;
        double md = 0;
        bool same = rn == kept;
        for (int i = 0; same && i < kept; i++) {
            const float v[6] = {bx[i].x1, bx[i].y1, bx[i].x2, bx[i].y2, (float)bx[i].cls, bx[i].score};
            same = v[4] == rd[6 * i + 4];
            for (int k = 0; k < 6; k++) md = fmax(md, fabs(v[k] - rd[6 * i + k]));
        }
        if (b == 0) printf("  %s: image 0, %d candidates, %d detections after NMS (reference %d), max difference %.3g\n",
                           t->name, n, kept, rn, md);
        CHECK(same && md <= 1e-5, "%s image %d: %d detections vs torchvision's %d (max diff %g)", t->name, b, kept, rn, md);
        free(rd);
        deft_free(bx);
    }
    /* finite differences on a few logits and offsets */
    double fd_worst = 0;
    for (int trial = 0; trial < 12; trial++) {
        int i = trial % (2 * L);
        size_t j = (size_t)(unif() * (float)(out_numel(t, i) - 1));
        float keep = t->outs[i][j];
        struct deft_ssd_loss_terms a, c;
        t->outs[i][j] = keep + 1e-2f;
        double lp = loss_of(t, NULL, &a);
        t->outs[i][j] = keep - 1e-2f;
        double lm = loss_of(t, NULL, &c);
        t->outs[i][j] = keep;
        if (a.n_neg != c.n_neg) continue; /* the mined set moved: not differentiable there */
        fd_worst = fmax(fd_worst, fabs((lp - lm) / 2e-2 - grads[i][j]));
    }
    CHECK(fd_worst < 2e-3, "%s: finite differences differ from the gradient by %g", t->name, fd_worst);
    for (int i = 0; i < 2 * L; i++) free(grads[i]);
    free(rt), free(rl), free(lab), free(tg);
}

static void bad_input(struct tcase *t) {
    struct deft_ssd_loss_terms tm;
    struct deft_ssd_map bad[L];
    memcpy(bad, t->maps, sizeof bad);
    bad[2].boxes = 0;
    CHECK(deft_ssd_loss(&t->cfg, bad, L, t->K, t->priors, t->batch, (const float *const *)t->outs, NULL, NULL, NULL,
                        &tm) == DEFT_ERR_INVALID_ARG, "a map without boxes is refused");
    CHECK(deft_ssd_loss(&t->cfg, t->maps, L, 1, t->priors, t->batch, (const float *const *)t->outs, NULL, NULL, NULL,
                        &tm) == DEFT_ERR_INVALID_ARG, "one class (no background) is refused");
    int lab[4];
    float tg[16];
    struct deft_box flat = {0.5f, 0.5f, 0.5f, 0.7f, 0, false, 1};
    CHECK_OK(deft_ssd_match(t->priors, 4, &flat, 1, 0.5f, 0.5f, lab, tg));
    CHECK(lab[0] == 0 && lab[1] == 0 && lab[2] == 0 && lab[3] == 0, "a zero-width box matches no prior");
}

int main(void) {
    bool have_ref = test_have_torch() && system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") == 0;
    static struct tcase cases[3];
    setup(&cases[0], "k4_b3", 4, 3, 128, 96, false);
    setup(&cases[1], "k2_b2_neutral", 2, 2, 96, 64, false);
    cases[1].cfg.neg_iou = 0.3f; /* a neutral band [0.3, 0.5) */
    cases[1].cfg.alpha = 0.7f;
    setup(&cases[2], "empty", 3, 2, 64, 64, true);
    cases[2].cfg.n_neg_min = 5; /* a batch without positives still learns background */
    bad_input(&cases[0]);
    if (!have_ref) {
        test_skip_part("python3 with torch/torchvision not available: the reference is not compared");
        return test_summary();
    }
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/ssd_ref.py", test_source_dir());
    for (int c = 0; c < 3; c++) {
        write_case(&cases[c], 0.2f, 0.45f, 50);
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s", cases[c].dir);
    }
    CHECK(system(cmd) == 0, "the PyTorch reference ran: %s", cmd);
    for (int c = 0; c < 3; c++) compare(&cases[c]);
    CHECK(cases[1].cfg.neg_iou < 0.5f, "neutral case configured");
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < 2 * L; i++) free(cases[c].outs[i]);
        free(cases[c].priors);
    }
    return test_summary();
}

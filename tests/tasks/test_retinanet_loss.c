/* test_retinanet_loss.c - TAO's RetinaNet loss (include/deft/ssd.h) against
 * tests/ref/retinanet_ref.py, torchvision.ops.sigmoid_focal_loss + smooth-L1
 * with autograd gradients, run at test time on random logits over five
 * levels of sub-octave priors (deft's matching labels given to both); finite
 * differences of the C gradient; sigmoid decoding; bad input. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "deft/det_priors.h"
#include "deft/ssd.h"
#include "deft/yolo.h"
#include "deft_test.h"

#define L 5
#define B 2
#define G 4

static uint64_t rk;
static float unif(void) { return deft_rng_uniform(99, 1, rk++); }
static float gauss(void) { return deft_rng_normal(99, 2, rk++); }

struct tcase {
    int K;
    struct deft_ssd_map maps[L];
    float *priors, *outs[2 * L];
    long np;
    struct deft_box gt[B][G];
    int n_gt[B];
    struct deft_retinanet_loss_config cfg;
    char dir[512];
};

static size_t numel(const struct tcase *t, int i) {
    const struct deft_ssd_map *m = &t->maps[i % L];
    return (size_t)B * (size_t)(m->boxes * (i < L ? t->K : 4)) * (size_t)m->h * (size_t)m->w;
}

static void setup(struct tcase *t, int K) {
    memset(t, 0, sizeof *t);
    t->K = K;
    static const double ar[] = {1.0, 2.0, 0.5}, sc[L + 1] = {0.1, 0.2, 0.4, 0.6, 0.8, 0.95}, var[4] = {.1, .1, .2, .2};
    struct deft_ssd_layer_params lp[L];
    int h = 96 / 8, w = 128 / 8;
    for (int l = 0; l < L; l++) {
        lp[l] = (struct deft_ssd_layer_params){h, w, sc[l], sc[l + 1], ar, 3, 0, 0, 0.5, 0.5, 3};
        t->maps[l] = (struct deft_ssd_map){h, w, 3 * deft_ssd_boxes_per_cell(ar, 3, false)};
        h = (h + 1) / 2, w = (w + 1) / 2;
    }
    t->np = deft_ssd_prior_count(lp, L, false);
    t->priors = malloc((size_t)t->np * 8 * sizeof(float));
    long n = 0;
    CHECK_OK(deft_ssd_priors(lp, L, 128, 96, false, false, var, t->priors, t->np, &n));
    CHECK(n == t->np && t->maps[0].boxes == 9, "five levels of 3 sub-octaves x 3 aspects: %ld priors", n);
    for (int i = 0; i < 2 * L; i++) {
        t->outs[i] = malloc(numel(t, i) * sizeof(float));
        for (size_t j = 0; j < numel(t, i); j++) t->outs[i][j] = 1.5f * gauss() - (i < L ? 2.0f : 0.0f);
    }
    for (int b = 0; b < B; b++) {
        t->n_gt[b] = 2 + b;
        for (int g = 0; g < t->n_gt[b]; g++) {
            const float *p = t->priors + 8 * (long)(unif() * (float)(t->np - 1));
            float cx = (p[0] + p[2]) / 2 + 0.02f * gauss(), cy = (p[1] + p[3]) / 2 + 0.02f * gauss();
            float bw = (p[2] - p[0]) * (0.8f + 0.4f * unif()), bh = (p[3] - p[1]) * (0.8f + 0.4f * unif());
            t->gt[b][g] = (struct deft_box){cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, g % (K - 1), false, 1};
        }
    }
    t->cfg = deft_retinanet_loss_config_default();
    t->cfg.loc_weight = 0.7f;
    snprintf(t->dir, sizeof t->dir, "%s/retina_k%d", test_tmpdir(), K);
}

static double loss(struct tcase *t, float *const *g, struct deft_ssd_loss_terms *tm) {
    const struct deft_box *gt[B] = {t->gt[0], t->gt[1]};
    CHECK_OK(deft_retinanet_loss(&t->cfg, t->maps, L, t->K, t->priors, B, (const float *const *)t->outs, gt, t->n_gt, g,
                                 tm));
    return tm->total;
}

static void write_case(struct tcase *t) {
    char p[700];
    snprintf(p, sizeof p, "mkdir -p %s", t->dir);
    CHECK(system(p) == 0, "mkdir");
    float cfg[6] = {(float)t->K, L, B, t->cfg.loc_weight, t->cfg.alpha, t->cfg.gamma}, maps[3 * L];
    snprintf(p, sizeof p, "%s/cfg.npy", t->dir);
    test_npy_write(p, cfg, (int64_t[]){6}, 1);
    for (int l = 0; l < L; l++) maps[3 * l] = t->maps[l].h, maps[3 * l + 1] = t->maps[l].w, maps[3 * l + 2] = t->maps[l].boxes;
    snprintf(p, sizeof p, "%s/maps.npy", t->dir);
    test_npy_write(p, maps, (int64_t[]){L, 3}, 2);
    for (int i = 0; i < 2 * L; i++) {
        const struct deft_ssd_map *m = &t->maps[i % L];
        snprintf(p, sizeof p, "%s/%s%d.npy", t->dir, i < L ? "conf" : "loc", i % L);
        test_npy_write(p, t->outs[i], (int64_t[]){B, m->boxes * (i < L ? t->K : 4), m->h, m->w}, 4);
    }
    float *lab = malloc((size_t)B * (size_t)t->np * sizeof(float)), *tg = malloc((size_t)B * (size_t)t->np * 16);
    int *li = malloc((size_t)t->np * sizeof(int));
    for (int b = 0; b < B; b++) {
        CHECK_OK(deft_ssd_match(t->priors, t->np, t->gt[b], t->n_gt[b], t->cfg.pos_iou, t->cfg.neg_iou, li,
                                tg + (size_t)b * (size_t)t->np * 4));
        for (long i = 0; i < t->np; i++) lab[(size_t)b * (size_t)t->np + (size_t)i] = (float)li[i];
    }
    snprintf(p, sizeof p, "%s/label.npy", t->dir);
    test_npy_write(p, lab, (int64_t[]){B, t->np}, 2);
    snprintf(p, sizeof p, "%s/target.npy", t->dir);
    test_npy_write(p, tg, (int64_t[]){B, t->np, 4}, 3);
    free(lab), free(tg), free(li);
}

static void compare(struct tcase *t) {
    float *g[2 * L];
    for (int i = 0; i < 2 * L; i++) g[i] = calloc(numel(t, i), sizeof(float));
    struct deft_ssd_loss_terms tm;
    loss(t, g, &tm);
    char p[700];
    int64_t sh[4];
    int nd;
    snprintf(p, sizeof p, "%s/ref_terms.npy", t->dir);
    float *rt = test_npy_read(p, sh, &nd);
    CHECK(rt != NULL, "reference terms");
    if (!rt) return;
    printf("  K=%d: %ld priors x %d, %ld positive, %ld negative, %ld neutral; loss %.6f (cls %.6f, loc %.6f), "
           "torchvision %.6f (%.6f, %.6f)\n", t->K, t->np, B, tm.n_pos, tm.n_neg, tm.n_neutral, tm.total, tm.cls, tm.loc,
           rt[0], rt[1], rt[2]);
    CHECK(tm.n_pos > 0 && tm.n_neutral > 0, "positives and neutral priors present");
    for (int k = 0; k < 3; k++) {
        double v = k == 0 ? tm.total : k == 1 ? tm.cls : tm.loc;
        CHECK(fabs(v - rt[k]) <= 1e-4 * fmax(1, fabs(rt[k])), "term %d: %.7g vs torchvision %.7g", k, v, rt[k]);
    }
    double worst = 0;
    for (int i = 0; i < 2 * L; i++) {
        snprintf(p, sizeof p, "%s/ref_g%s%d.npy", t->dir, i < L ? "conf" : "loc", i % L);
        float *rg = test_npy_read(p, sh, &nd);
        CHECK(rg != NULL, "reference gradient %d", i);
        if (rg) worst = fmax(worst, test_max_abs_diff(g[i], rg, numel(t, i)));
        free(rg);
    }
    printf("  K=%d: gradients, max abs difference to autograd %.3g\n", t->K, worst);
    CHECK(worst <= 1e-6, "gradient differs from autograd by %g", worst);
    double fd = 0;
    for (int trial = 0; trial < 12; trial++) {
        int i = trial % (2 * L);
        size_t j = (size_t)(unif() * (float)(numel(t, i) - 1));
        float keep = t->outs[i][j];
        struct deft_ssd_loss_terms a;
        t->outs[i][j] = keep + 1e-2f;
        double lp = loss(t, NULL, &a);
        t->outs[i][j] = keep - 1e-2f;
        double lm = loss(t, NULL, &a);
        t->outs[i][j] = keep;
        fd = fmax(fd, fabs((lp - lm) / 2e-2 - g[i][j]));
    }
    CHECK(fd < 2e-3, "finite differences differ from the gradient by %g", fd);
    for (int i = 0; i < 2 * L; i++) free(g[i]);
    free(rt);
}

static void decode(struct tcase *t) {
    struct deft_box *bx = NULL;
    int n = 0;
    CHECK_OK(deft_retinanet_decode_image(t->maps, L, t->K, (const float *const *)t->outs, 0, t->priors, 0.5f, &bx, &n));
    long want = 0; /* every (prior, object class) with sigmoid >= 0.5, i.e. logit >= 0 */
    float *cf = malloc((size_t)t->np * (size_t)t->K * sizeof(float));
    deft_ssd_gather(t->maps, L, t->K, (const float *const *)t->outs, 0, cf, NULL);
    for (long i = 0; i < t->np; i++)
        for (int k = 1; k < t->K; k++) want += cf[i * t->K + k] >= 0;
    bool scores_ok = true;
    for (int i = 0; i < n; i++) scores_ok = scores_ok && bx[i].score >= 0.5f && bx[i].cls >= 0 && bx[i].cls < t->K - 1;
    CHECK(n == want && scores_ok, "sigmoid decode: %d candidates, %ld logits >= 0", n, want);
    free(cf);
    deft_free(bx);
}

static void bad_input(struct tcase *t) {
    struct deft_ssd_loss_terms tm;
    struct deft_retinanet_loss_config c = t->cfg;
    c.alpha = 1.5f;
    CHECK(deft_retinanet_loss(&c, t->maps, L, t->K, t->priors, B, (const float *const *)t->outs, NULL, NULL, NULL,
                              &tm) == DEFT_ERR_INVALID_ARG, "alpha 1.5 refused");
    CHECK(deft_retinanet_loss(&t->cfg, t->maps, L, 1, t->priors, B, (const float *const *)t->outs, NULL, NULL, NULL,
                              &tm) == DEFT_ERR_INVALID_ARG, "one class refused");
    CHECK_OK(deft_retinanet_loss(&t->cfg, t->maps, L, t->K, t->priors, B, (const float *const *)t->outs, NULL, NULL,
                                 NULL, &tm));
    CHECK(tm.n_pos == 0 && tm.loc == 0 && tm.cls > 0, "no boxes: every prior negative, focal loss only (%g)", tm.cls);
}

int main(void) {
    static struct tcase c[2];
    setup(&c[0], 4);
    setup(&c[1], 2);
    c[1].cfg.gamma = 0; /* plain alpha-weighted BCE */
    bad_input(&c[0]);
    decode(&c[0]);
    if (!test_have_torch() || system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") != 0) {
        test_skip_part("python3 with torch/torchvision not available: the reference is not compared");
        return test_summary();
    }
    char cmd[2048];
    write_case(&c[0]);
    write_case(&c[1]);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/retinanet_ref.py %s %s", test_source_dir(), c[0].dir,
             c[1].dir);
    CHECK(system(cmd) == 0, "the torchvision reference ran: %s", cmd);
    compare(&c[0]);
    compare(&c[1]);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2 * L; i++) free(c[k].outs[i]);
        free(c[k].priors);
    }
    return test_summary();
}

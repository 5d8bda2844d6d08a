/* test_det_ops.c - torchvision's NMS and batched NMS, box coding and SSD
 * hard-negative mining (deft/det_ops.h) against torchvision / PyTorch computed
 * at test time (tests/ref/det_ops_ref.py): the same kept indices in the same
 * order, the same mining mask, codes within 1e-5 relative. Inputs have ties
 * (scores on a 0.05 grid, duplicated boxes) and degenerate boxes. */
#include <string.h>
#include "deft_test.h"
#include "deft/det_ops.h"

static uint64_t rng = 0x853c49e6748fea9bull;
static float urand(void) { /* [0, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0));
}

static void save(const char *key, const float *v, int64_t rows, int64_t cols) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.npy", test_tmpdir(), key);
    int64_t sh[2] = {rows, cols};
    CHECK(test_npy_write(p, v, sh, cols ? 2 : 1) == 0, "cannot write %s", p);
}

static float *load(const char *key, int64_t *n) {
    char p[512];
    snprintf(p, sizeof p, "%s/ref.%s.npy", test_tmpdir(), key);
    int64_t sh[8];
    int nd = 0;
    float *v = test_npy_read(p, sh, &nd);
    CHECK(v != NULL, "no reference %s", key);
    *n = 1;
    for (int i = 0; i < nd; i++) *n *= sh[i];
    return v;
}

static void random_boxes(float *b, int n, float size) {
    for (int i = 0; i < n; i++) {
        float *o = b + 4 * i;
        if (i % 17 == 5 && i > 0) { /* an exact duplicate */
            memcpy(o, b + 4 * (i - 1), 4 * sizeof *o);
            continue;
        }
        o[0] = urand() * size * 0.5f, o[1] = urand() * size * 0.5f; /* crowded: many overlaps */
        o[2] = o[0] + (i % 23 == 7 ? 0.0f : urand() * size * 0.5f); /* some zero-width */
        o[3] = o[1] + urand() * size * 0.5f;
    }
}

static void check_indices(const char *what, const int *ours, int n, const char *key) {
    int64_t m = 0;
    float *ref = load(key, &m);
    if (!ref) return;
    int bad = m != n ? 1 : 0;
    for (int i = 0; i < n && !bad; i++) bad = ours[i] != (int)ref[i];
    CHECK(!bad, "%s: %d kept, torchvision %lld (first difference at a position of the kept list)", what, n,
          (long long)m);
    printf("%-28s kept %d, torchvision %lld: %s\n", what, n, (long long)m, bad ? "DIFFER" : "identical");
    free(ref);
}

static void check_codes(const char *what, const float *ours, int n, const char *key, double tol) {
    int64_t m = 0;
    float *ref = load(key, &m);
    if (!ref) return;
    CHECK(m == n, "%s: %d values, reference %lld", what, n, (long long)m);
    double err = m == n ? test_max_rel_err(ours, ref, (size_t)n) : INFINITY;
    CHECK(err <= tol, "%s: max rel err %.3g > %.1g", what, err, tol);
    printf("%-28s max rel err %.3g\n", what, err);
    free(ref);
}

int main(void) {
    if (!test_have_torch()) test_skip("python3 with torch/torchvision not available");
    enum { NB = 300, NBIG = 4500, NC = 400, B = 3, P = 500 };
    static float boxes[NB * 4], scores[NB], classes[NB], bigb[NBIG * 4], bigs[NBIG], bigc[NBIG];
    static int cls_i[NB], bigc_i[NBIG], keep[NBIG];
    random_boxes(boxes, NB, 100.0f);
    for (int i = 0; i < NB; i++) {
        scores[i] = (float)(int)(urand() * 20) * 0.05f; /* many ties */
        cls_i[i] = (int)(urand() * 4);
        classes[i] = (float)cls_i[i];
    }
    random_boxes(bigb, NBIG, 400.0f);
    for (int i = 0; i < NBIG; i++) {
        bigs[i] = urand();
        bigc_i[i] = (int)(urand() * 6);
        bigc[i] = (float)bigc_i[i];
    }
    save("nms_boxes", boxes, NB, 4), save("nms_scores", scores, NB, 0), save("nms_classes", classes, NB, 0);
    save("big_boxes", bigb, NBIG, 4), save("big_scores", bigs, NBIG, 0), save("big_classes", bigc, NBIG, 0);

    static float gt[NC * 4], an[NC * 4], dl[NC * 4];
    for (int i = 0; i < NC; i++) {
        float *g = gt + 4 * i, *a = an + 4 * i;
        a[0] = urand() * 300, a[1] = urand() * 300, a[2] = a[0] + 4 + urand() * 150, a[3] = a[1] + 4 + urand() * 150;
        g[0] = a[0] + (urand() - 0.5f) * 40, g[1] = a[1] + (urand() - 0.5f) * 40;
        g[2] = g[0] + 2 + urand() * 200, g[3] = g[1] + 2 + urand() * 200;
        for (int k = 0; k < 4; k++) dl[4 * i + k] = (urand() - 0.5f) * (i % 9 == 0 ? 120.0f : 4.0f); /* some past the clamp */
    }
    save("gt", gt, NC, 4), save("anchors", an, NC, 4), save("deltas", dl, NC, 4);

    static float loss[B * P], labf[B * P];
    static int8_t lab[B * P];
    static uint8_t mask[B * P];
    for (int i = 0; i < B * P; i++) {
        float u = urand();
        lab[i] = i / P == 2 ? 0 : u < 0.04f ? 1 : u < 0.06f ? -1 : 0; /* image 2: no positive */
        loss[i] = urand() * 5.0f;
        labf[i] = lab[i];
    }
    const float hnm_min[1] = {17};
    save("hnm_loss", loss, B, P), save("hnm_label", labf, B, P), save("hnm_min", hnm_min, 1, 0);

    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/det_ops_ref.py' '%s'", test_source_dir(), test_tmpdir());
    double t0 = deft_time_now();
    CHECK(system(cmd) == 0, "det_ops_ref.py failed");
    printf("det_ops_ref.py: %.1f s\n", deft_time_now() - t0);

    int nk = 0;
    CHECK_OK(deft_nms_tv(boxes, scores, NB, 0.5, keep, &nk));
    check_indices("nms (ties, 300 boxes)", keep, nk, "nms");
    CHECK_OK(deft_batched_nms_tv(boxes, scores, cls_i, NB, 0.4, keep, &nk));
    check_indices("batched_nms (4 classes)", keep, nk, "batched_nms");
    CHECK_OK(deft_batched_nms_tv(bigb, bigs, bigc_i, NBIG, 0.5, keep, &nk));
    check_indices("batched_nms (4500, by class)", keep, nk, "batched_nms_big");
    CHECK_OK(deft_nms_tv(NULL, NULL, 0, 0.5, NULL, &nk));
    CHECK(nk == 0, "nms of nothing");
    CHECK(deft_nms_tv(NULL, scores, 3, 0.5, keep, &nk) == DEFT_ERR_INVALID_ARG, "nms without boxes accepted");

    static float out[NC * 4];
    const float wf[4] = {10, 10, 5, 5}, wr[4] = {1, 1, 1, 1}, var[4] = {0.1f, 0.1f, 0.2f, 0.2f};
    deft_box_encode(wf, gt, an, NC, out), check_codes("encode (10,10,5,5)", out, NC * 4, "enc_frcnn", 1e-5);
    deft_box_decode(wf, DEFT_BBOX_XFORM_CLIP, dl, an, NC, out), check_codes("decode (10,10,5,5)", out, NC * 4, "dec_frcnn", 1e-5);
    deft_box_encode(wr, gt, an, NC, out), check_codes("encode (1,1,1,1)", out, NC * 4, "enc_rpn", 1e-5);
    deft_box_decode(wr, DEFT_BBOX_XFORM_CLIP, dl, an, NC, out), check_codes("decode (1,1,1,1) clamped", out, NC * 4, "dec_rpn", 1e-5);
    deft_ssd_encode(var, gt, an, NC, out), check_codes("ssd encode (0.1,0.1,0.2,0.2)", out, NC * 4, "enc_ssd", 1e-5);
    deft_ssd_decode(var, dl, an, NC, out), check_codes("ssd decode (no clamp)", out, NC * 4, "dec_ssd", 1e-5);

    const struct deft_hnm_opts tv = {.neg_pos_ratio = 3}, tao = {.neg_pos_ratio = 3, .n_neg_min = 17, .batch_wide = true};
    float mf[B * P];
    CHECK_OK(deft_hard_negatives(loss, lab, B, P, &tv, mask));
    for (int i = 0; i < B * P; i++) mf[i] = mask[i];
    check_codes("hard negatives (per image)", mf, B * P, "hnm", 0);
    CHECK_OK(deft_hard_negatives(loss, lab, B, P, &tao, mask));
    for (int i = 0; i < B * P; i++) mf[i] = mask[i];
    check_codes("hard negatives (TAO, batch)", mf, B * P, "hnm_tao", 0);
    return test_summary();
}

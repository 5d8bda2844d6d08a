/* test_frcnn_host.c - Faster R-CNN's host steps against an independent
 * PyTorch/torchvision reference computed at test time (tests/ref/frcnn_ref.py):
 * TAO's four losses and their gradients on random outputs and targets; the
 * proposal layer (decode, clip, small boxes, top-N, NMS) against BoxCoder +
 * torchvision.ops.nms; the detections (softmax, class-wise decode with
 * classifier_regr_std, batched NMS) against torchvision.ops.batched_nms.
 * Without the reference the C-only checks still run: RPN targets and RoI
 * sampling (counts, labels, sampling caps, encoded deltas). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "deft_test.h"
#include "deft/det_ops.h"
#include "deft/det_priors.h"
#include "deft/detection.h"
#include "tasks/faster_rcnn/frcnn_impl.h"

enum { B = 2, A = 3, FH = 4, FW = 5, C = 3, R = 6, NW = 80, NH = 64 };

static float rnd(uint64_t stream, uint64_t i) { return deft_rng_normal(21, stream, i); }

static void write(const char *dir, const char *name, const float *v, const int64_t *sh, int nd) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.npy", dir, name);
    CHECK(test_npy_write(p, v, sh, nd) == 0, "wrote %s", p);
}

static float *read_ref(const char *dir, const char *name, size_t *n) {
    char p[1024];
    int64_t sh[8];
    int nd = 0;
    snprintf(p, sizeof p, "%s/%s.npy", dir, name);
    float *v = test_npy_read(p, sh, &nd);
    *n = 1;
    for (int i = 0; v && i < nd; i++) *n *= (size_t)sh[i];
    if (!v) *n = 0;
    return v;
}

/* RPN targets and RoI sampling on two boxes: labels, caps and deltas. */
static void check_targets(const struct frcnn_params *p) {
    const float gt[8] = {10, 8, 40, 38, 44, 20, 76, 60};
    const int gcls[2] = {2, 0};
    int8_t *lab = malloc((size_t)p->n_anchors);
    float *dl = malloc((size_t)p->n_anchors * 4 * sizeof(float));
    CHECK_OK(frcnn_rpn_targets(p, gt, 2, 1, 0, lab, dl));
    int np = 0, nn = 0, best_ok = 1;
    for (long i = 0; i < p->n_anchors; i++) np += lab[i] == 1, nn += lab[i] == 0;
    for (int g = 0; g < 2; g++) { /* each box's best anchor is positive */
        float best = 0;
        long bi = -1;
        for (long i = 0; i < p->n_anchors; i++) {
            float u = frcnn_iou(p->anchors + 4 * i, gt + 4 * g);
            if (u > best) best = u, bi = i;
        }
        best_ok &= bi >= 0 && lab[bi] == 1;
        float e[4];
        deft_box_encode((const float[4]){1, 1, 1, 1}, gt + 4 * g, p->anchors + 4 * bi, 1, e);
        if (bi >= 0 && test_max_abs_diff(e, dl + 4 * bi, 4) > 1e-6) best_ok = 0;
    }
    printf("RPN targets: %d positive, %d negative of %ld anchors (mini-batch %d)\n", np, nn, p->n_anchors, p->rpn_mini_batch);
    CHECK(np >= 2 && np <= p->rpn_mini_batch / 2 && np + nn == p->rpn_mini_batch, "RPN sampling: %d + %d", np, nn);
    CHECK(best_ok, "each box's best anchor is positive with its encoded deltas");
    /* RoIs: the boxes themselves (positives) and far boxes (background) */
    const float props[16] = {11, 8, 40, 37, 44, 21, 75, 60, 0, 40, 20, 63, 60, 0, 79, 15};
    float rois[R * 4], deltas[R * 4];
    int lb[R];
    CHECK_OK(frcnn_sample_rois(p, props, 4, gt, gcls, 2, 1, 7, rois, lb, deltas));
    int pos = 0, bg = 0;
    for (int r = 0; r < R; r++) pos += lb[r] < C, bg += lb[r] == C;
    /* 1 positive (the 25% cap of 6) and the 2 background proposals drawn, then repeated to fill 6 rows */
    CHECK(pos == 2 && bg == 4, "RoI sampling: %d positive, %d background (1 + 2 drawn, repeated)", pos, bg);
    for (int r = 0; r < R; r++)
        if (lb[r] < C) {
            int g = rois[4 * r] < 30 ? 0 : 1;
            float e[4];
            deft_box_encode(p->regr_std, gt + 4 * g, rois + 4 * r, 1, e);
            CHECK(lb[r] == gcls[g] && test_max_abs_diff(e, deltas + 4 * r, 4) < 1e-6, "positive RoI %d: class, deltas", r);
        }
    int lbad[R];
    for (int r = 0; r < R; r++) lbad[r] = C + 1;
    struct frcnn_targets tb = {.batch = 1, .rpn_label = lab, .rpn_deltas = dl, .roi_label = lbad, .roi_deltas = deltas};
    float z[1024] = {0};
    const float *o[4] = {z, z, z, z};
    struct frcnn_loss_terms tm;
    CHECK(frcnn_loss(p, &tb, o, NULL, &tm) == DEFT_ERR_INVALID_ARG, "a RoI class out of range is refused");
    free(lab), free(dl);
}

int main(void) {
    const double sc[A] = {16, 32, 48}, ra[1] = {1};
    long na = deft_frcnn_anchor_count(A, 1, FH, FW);
    float *anchors = malloc((size_t)na * 4 * sizeof(float));
    CHECK_OK(deft_frcnn_anchors(sc, A, ra, 1, 16, FH, FW, anchors, na, &na));
    struct frcnn_params p = {.net_w = NW, .net_h = NH, .fmap_w = FW, .fmap_h = FH, .n_cell_anchors = A, .n_classes = C,
                             .anchors = anchors, .n_anchors = na, .rpn_std = 1, .regr_std = {10, 10, 5, 5},
                             .rpn_min_overlap = 0.3f, .rpn_max_overlap = 0.7f, .rpn_mini_batch = 16,
                             .cls_min_overlap = 0.0f, .cls_max_overlap = 0.5f, .rois_per_image = R,
                             .lambda_rpn_class = 1.0, .lambda_rpn_regr = 2.0, .lambda_cls_class = 0.5, .lambda_cls_regr = 1.5};
    check_targets(&p);

    /* random outputs and targets */
    size_t n0 = (size_t)B * A * FH * FW, n1 = 4 * n0, n2 = (size_t)B * R * (C + 1), n3 = (size_t)B * R * 4 * C;
    size_t nl = (size_t)B * na;
    float *o[4] = {malloc(n0 * 4), malloc(n1 * 4), malloc(n2 * 4), malloc(n3 * 4)};
    float *g[4] = {calloc(n0, 4), calloc(n1, 4), calloc(n2, 4), calloc(n3, 4)};
    const size_t no[4] = {n0, n1, n2, n3};
    for (int i = 0; i < 4; i++)
        for (size_t k = 0; k < no[i]; k++) o[i][k] = rnd((uint64_t)i, k) * (i == 0 ? 2.0f : 1.0f);
    int8_t *rl = malloc(nl);
    float *rlf = malloc(nl * 4), *rd = malloc(nl * 16), *qd = malloc((size_t)B * R * 16), qlf[B * R];
    int ql[B * R];
    for (size_t k = 0; k < nl; k++) {
        rl[k] = (int8_t)(deft_rng_u64(3, 1, k) % 3) - 1;
        rlf[k] = rl[k];
        for (int j = 0; j < 4; j++) rd[4 * k + j] = rnd(10, 4 * k + j) * 0.5f;
    }
    for (int r = 0; r < B * R; r++) {
        ql[r] = (int)(deft_rng_u64(3, 2, (uint64_t)r) % (C + 1));
        qlf[r] = (float)ql[r];
        for (int j = 0; j < 4; j++) qd[4 * r + j] = rnd(11, (uint64_t)(4 * r + j)) * 1.5f;
    }
    struct frcnn_targets t = {.batch = B, .rpn_label = rl, .rpn_deltas = rd, .roi_label = ql, .roi_deltas = qd};
    struct frcnn_loss_terms tm;
    CHECK_OK(frcnn_loss(&p, &t, (const float *const *)o, g, &tm));
    struct frcnn_loss_terms tm2;
    CHECK_OK(frcnn_loss(&p, &t, (const float *const *)o, NULL, &tm2));
    CHECK(tm.total == tm2.total, "the loss without gradients is the same");

    /* proposals and detections of image 0 */
    struct frcnn_prop_cfg pc = {40, 12, 0.5f};
    float props[12 * 4], pscore[12];
    int npr = 0;
    CHECK_OK(frcnn_proposals(&p, &pc, o[0], o[1], props, pscore, &npr));
    float rois[R * 4];
    for (int r = 0; r < R; r++) { /* RoIs: proposals, padded by a fixed box */
        const float fb[4] = {8, 6, 50, 40};
        memcpy(rois + 4 * r, r < npr ? props + 4 * r : fb, sizeof fb);
    }
    const float conf = 0.2f, nms2 = 0.4f;
    struct deft_box *dets = NULL;
    int nd = 0;
    CHECK_OK(frcnn_detect(&p, o[2], o[3], rois, R, conf, nms2, 5, &dets, &nd));

    if (!test_have_torch() || system("/usr/bin/python3 -c 'import torchvision' >/dev/null 2>&1") != 0) {
        free(dets);
        test_skip("C checks passed; the PyTorch/torchvision reference needs /usr/bin/python3 with torch and torchvision");
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/frcnn_host", test_tmpdir());
    mkdir(dir, 0755);
    const float cfg[18] = {B, A, FH, FW, C, R, 1.0f, 2.0f, 0.5f, 1.5f, NW, NH, (float)pc.pre_nms_top_n,
                           (float)pc.max_boxes, pc.nms_iou, conf, nms2, 5};
    write(dir, "cfg", cfg, (const int64_t[]){18}, 1);
    write(dir, "out0", o[0], (const int64_t[]){B, A, FH, FW}, 4);
    write(dir, "out1", o[1], (const int64_t[]){B, 4 * A, FH, FW}, 4);
    write(dir, "out2", o[2], (const int64_t[]){B * R, C + 1}, 2);
    write(dir, "out3", o[3], (const int64_t[]){B * R, 4 * C}, 2);
    write(dir, "rpn_label", rlf, (const int64_t[]){B, na}, 2);
    write(dir, "rpn_deltas", rd, (const int64_t[]){B, na, 4}, 3);
    write(dir, "roi_label", qlf, (const int64_t[]){B * R}, 1);
    write(dir, "roi_deltas", qd, (const int64_t[]){B * R, 4}, 2);
    write(dir, "anchors", anchors, (const int64_t[]){na, 4}, 2);
    write(dir, "rois", rois, (const int64_t[]){R, 4}, 2);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/frcnn_ref.py %s", test_source_dir(), dir);
    CHECK(system(cmd) == 0, "the reference ran: %s", cmd);

    size_t n;
    float *rt = read_ref(dir, "ref_terms", &n);
    const double mine[5] = {tm.rpn_class, tm.rpn_regr, tm.cls_class, tm.cls_regr, tm.total};
    double werr = 0;
    for (size_t i = 0; rt && i < 5 && n == 5; i++) {
        double e = fabs(mine[i] - rt[i]) / fmax(fabs((double)rt[i]), 1e-6);
        werr = e > werr ? e : werr;
    }
    printf("losses: rpn_class %.6f rpn_regr %.6f cls_class %.6f cls_regr %.6f total %.6f; max rel err vs PyTorch %.2g\n",
           tm.rpn_class, tm.rpn_regr, tm.cls_class, tm.cls_regr, tm.total, werr);
    CHECK(rt && n == 5 && werr <= 1e-5, "the four losses and the total match PyTorch (%g)", werr);
    for (int i = 0; i < 4; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "ref_grad%d", i);
        float *rg = read_ref(dir, nm, &n);
        double e = rg && n == no[i] ? test_max_rel_err(g[i], rg, n) : INFINITY;
        printf("gradient of output %d: max rel err %.2g\n", i, e);
        CHECK(e <= 1e-4, "gradient of output %d matches autograd (%g)", i, e);
        free(rg);
    }
    float *rp = read_ref(dir, "ref_props", &n);
    bool same = rp && n == (size_t)npr * 5;
    double pe = 0;
    for (int k = 0; same && k < npr; k++) {
        pe = fmax(pe, test_max_abs_diff(props + 4 * k, rp + 5 * k, 4));
        pe = fmax(pe, fabs(pscore[k] - rp[5 * k + 4]));
    }
    printf("proposals: %d (torchvision %zu), max |diff| %.2g\n", npr, n / 5, pe);
    CHECK(same && pe <= 1e-4, "proposals equal torchvision's decode + clip + top-N + nms (%d, %g)", npr, pe);
    float *rdt = read_ref(dir, "ref_dets", &n);
    same = rdt && n == (size_t)nd * 6;
    double de = 0;
    for (int k = 0; same && k < nd; k++) {
        const float b[4] = {dets[k].x1, dets[k].y1, dets[k].x2, dets[k].y2};
        de = fmax(de, test_max_abs_diff(b, rdt + 6 * k, 4));
        de = fmax(de, fabs(dets[k].score - rdt[6 * k + 4]));
        same &= dets[k].cls == (int)rdt[6 * k + 5];
    }
    printf("detections: %d (torchvision %zu), max |diff| %.2g\n", nd, n / 6, de);
    CHECK(same && nd > 0 && de <= 1e-4, "detections equal torchvision's batched_nms (%d, %g)", nd, de);
    free(rt), free(rp), free(rdt), free(dets);
    for (int i = 0; i < 4; i++) free(o[i]), free(g[i]);
    free(rl), free(rlf), free(rd), free(qd), free(anchors);
    return test_summary();
}

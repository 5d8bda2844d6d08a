/* det_score_bench.c - time of the detection metrics (deft_det_eval) on a
 * scoring-sized set: 500 images, 10,000 predictions, 8,000 ground truths
 * (default), every definition, plus metrics.json. Run by det_score_bench.sh.
 *
 *     det_score_bench [images] [predictions] [classes] [repeats]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "deft/det_eval.h"

static uint64_t rs = 12345;
static double urand(void) {
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n_img = argc > 1 ? atoi(argv[1]) : 500, n_pred = argc > 2 ? atoi(argv[2]) : 10000;
    int K = argc > 3 ? atoi(argv[3]) : 3, reps = argc > 4 ? atoi(argv[4]) : 7;
    if (n_img < 1 || n_pred < 0 || K < 1 || reps < 1) return 2;
    int gt_per = (n_pred * 4 / 5) / n_img + 1, det_per = n_pred / n_img;
    struct deft_det_eval_image *im = calloc((size_t)n_img, sizeof *im);
    struct deft_box *gt = calloc((size_t)n_img * (size_t)gt_per, sizeof *gt);
    struct deft_box *dt = calloc((size_t)n_img * (size_t)(det_per + 1), sizeof *dt);
    int total = 0;
    for (int i = 0; i < n_img; i++) { /* detections near GTs (most), the rest anywhere */
        struct deft_box *g = gt + (size_t)i * (size_t)gt_per, *d = dt + (size_t)i * (size_t)(det_per + 1);
        for (int j = 0; j < gt_per; j++) {
            float x = (float)(urand() * 600), y = (float)(urand() * 400), s = (float)(8 + urand() * 150);
            g[j] = (struct deft_box){x, y, x + s, y + s * (float)(0.5 + urand()), (int)(urand() * K), urand() < 0.05, 1};
        }
        int nd = det_per + (i < n_pred - det_per * n_img);
        for (int j = 0; j < nd; j++) {
            const struct deft_box *r = &g[(int)(urand() * gt_per)];
            float w = r->x2 - r->x1, h = r->y2 - r->y1, dx = (float)((urand() - 0.5) * 0.3 * w);
            d[j] = (struct deft_box){r->x1 + dx, r->y1, r->x2 + dx, r->y2, urand() < 0.85 ? r->cls : (int)(urand() * K),
                                     false, (float)urand()};
        }
        total += nd;
        im[i] = (struct deft_det_eval_image){g, gt_per, d, nd, NULL};
    }
    printf("det_score_bench: %d images, %d predictions, %d ground truths, %d classes, median of %d runs\n", n_img,
           total, n_img * gt_per, K, reps);
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int mode = 0; mode < DEFT_AP_MODE_COUNT; mode++) {
        struct deft_det_eval_options o;
        deft_det_eval_options_init(&o, (enum deft_ap_mode)mode);
        o.conf_threshold = 0.001;
        double map = 0;
        for (int r = 0; r < reps; r++) {
            struct deft_det_metrics *m;
            double t0 = now();
            if (deft_det_eval(im, n_img, K, &o, &m)) {
                fprintf(stderr, "%s\n", deft_last_error());
                return 1;
            }
            char *js;
            if (deft_det_metrics_to_json(m, NULL, &js)) return 1;
            t[r] = now() - t0;
            map = m->map;
            deft_free(js);
            deft_det_metrics_free(m);
        }
        qsort(t, (size_t)reps, sizeof *t, dcmp);
        printf("{\"ap_mode\": \"%s\", \"seconds_median\": %.4f, \"seconds_min\": %.4f, \"mAP\": %.4f}\n",
               deft_ap_mode_name((enum deft_ap_mode)mode), t[reps / 2], t[0], map);
    }
    free(t);
    free(im);
    free(gt);
    free(dt);
    return 0;
}

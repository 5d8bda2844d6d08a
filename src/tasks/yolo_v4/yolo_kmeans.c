/* yolo_kmeans.c - `deft yolo_v4 kmeans`: TAO's anchor shapes (k-medians on
 * 1 - IoU) from KITTI labels, printed as spec lines ready to paste. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tasks/yolo_v4/yolo_task.h"


/* "a,b,c" -> up to max pieces (in place in buf). */
static int split_list(char *buf, char **out, int max) {
    int n = 0;
    for (char *p = buf; p && *p && n < max;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (*p) out[n++] = p;
        p = c ? c + 1 : NULL;
    }
    return n;
}

enum deft_status yolo_kmeans(const struct deft_task_args *a) {
    FILE *out = a->out ? a->out : stdout;
    const char *l = deft_task_arg(a, "--label_folders"), *i = deft_task_arg(a, "--image_folders");
    if (!i) i = a->input; /* TAO's -i */
    if (!l || !i)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "give the KITTI label and image folders: -l LABELS[,LABELS2] -i IMAGES[,IMAGES2]");
    int w, h, k, steps, min_x, min_y;
    enum deft_status s;
    if ((s = deft_task_arg_int(a, "--size_x", 32, 8192, 416, &w)) || (s = deft_task_arg_int(a, "--size_y", 32, 8192, 416, &h)) ||
        (s = deft_task_arg_int(a, "--num_clusters", 1, 64, 9, &k)) || (s = deft_task_arg_int(a, "--max_steps", 1, 100000000, 10000, &steps)) ||
        (s = deft_task_arg_int(a, "--min_x", 0, 8192, 0, &min_x)) || (s = deft_task_arg_int(a, "--min_y", 0, 8192, 0, &min_y)))
        return s;
    char lb[4096], ib[4096];
    snprintf(lb, sizeof lb, "%s", l);
    snprintf(ib, sizeof ib, "%s", i);
    char *ls[16], *is[16];
    int nl = split_list(lb, ls, 16), ni = split_list(ib, is, 16);
    if (nl != ni)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "-l names %d label folders but -i %d image folders: give them in pairs",
                              nl, ni);
    struct deft_det_source src[16];
    for (int j = 0; j < nl; j++) src[j] = (struct deft_det_source){DEFT_DET_KITTI, is[j], ls[j], NULL};
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    o.skip_bad_lines = false;
    struct deft_det_dataset ds;
    double *wh = NULL, *centres = NULL;
    int n = 0, ran = 0;
    s = deft_det_read(src, nl, &o, &ds);
    if (!s) s = deft_anchor_boxes_from_dataset(&ds, w, h, min_x, min_y, &wh, &n);
    if (!s && n <= k)
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%d boxes for %d clusters: kmeans needs more boxes than clusters", n, k);
    if (!s && !(centres = deft_malloc((size_t)k * 2 * sizeof(double)))) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
    struct deft_anchor_kmeans_options ko;
    deft_anchor_kmeans_options_init(&ko);
    ko.seed = a->seed_set ? (uint64_t)a->seed : 42;
    ko.max_steps = steps;
    ko.net_w = w;
    ko.net_h = h;
    if (!s) s = deft_anchor_kmeans(wh, n, k, &ko, centres, &ran);
    if (!s) {
        fprintf(out, "kmeans: %d boxes from %d images, %d clusters at %dx%d, %d steps, mean IoU %.4f\n", n, ds.n, k, w, h,
                ran, deft_anchor_mean_iou(wh, n, centres, k, w, h));
        fprintf(out, "anchors (w, h) in network pixels, by area:");
        for (int j = 0; j < k; j++) fprintf(out, " (%.2f, %.2f)", centres[2 * j], centres[2 * j + 1]);
        fprintf(out, "\n\n# yolov4_config lines (k = 9 for yolo_v4, 6 for yolo_v4_tiny):\n");
        char *lines = NULL;
        s = deft_anchor_spec_strings(centres, k, k == 6, &lines);
        if (!s) fprintf(out, "%s", lines);
        deft_free(lines);
    }
    deft_free(wh);
    deft_free(centres);
    deft_det_dataset_free(&ds);
    return s;
}

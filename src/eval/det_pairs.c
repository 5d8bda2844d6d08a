/* det_pairs.c - deft_det_eval_datasets: pair a prediction dataset with a
 * ground-truth dataset by file stem and class name, then deft_det_eval. */
#include <stdlib.h>
#include <string.h>
#include "eval/eval_impl.h"

struct stem {
    char *s;
    int i;
};

static int stem_cmp(const void *a, const void *b) {
    return strcmp(((const struct stem *)a)->s, ((const struct stem *)b)->s);
}

/* "dir/name.txt" -> "name" (deft_malloc'd). */
static char *stem_of(const struct deft_det_sample *s) {
    const char *p = s->label ? s->label : s->image ? s->image : "";
    const char *b = strrchr(p, '/');
    b = b ? b + 1 : p;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot > b ? (size_t)(dot - b) : strlen(b);
    char *r = deft_malloc(n + 1);
    if (r) memcpy(r, b, n), r[n] = 0;
    return r;
}

static void free_stems(struct stem *st, int n) {
    for (int i = 0; st && i < n; i++) deft_free(st[i].s);
    deft_free(st);
}

/* Prediction class index -> GT class index. */
static enum deft_status class_map(const struct deft_det_dataset *gt, const struct deft_det_dataset *pred, int *map) {
    for (int c = 0; c < pred->n_classes; c++) {
        map[c] = -1;
        for (int g = 0; g < gt->n_classes; g++)
            if (pred->class_names && gt->class_names && !strcmp(pred->class_names[c], gt->class_names[g])) map[c] = g;
    }
    return DEFT_OK;
}

enum deft_status deft_det_eval_datasets(const struct deft_det_dataset *gt, const struct deft_det_dataset *pred,
                                        const struct deft_det_eval_options *opt, struct deft_det_metrics **out) {
    if (!gt || !pred || !out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_det_eval_datasets: NULL argument");
    *out = NULL;
    struct stem *st = deft_calloc((size_t)gt->n + 1, sizeof *st);
    struct deft_det_eval_image *im = deft_calloc((size_t)gt->n + 1, sizeof *im);
    int *map = deft_malloc(((size_t)pred->n_classes + 1) * sizeof *map);
    size_t total = 0;
    for (int i = 0; i < pred->n; i++) total += pred->samples[i].n_boxes > 0 ? (size_t)pred->samples[i].n_boxes : 0;
    struct deft_box *boxes = deft_malloc((total + 1) * sizeof *boxes);
    enum deft_status s = DEFT_OK;
    if (!st || !im || !map || !boxes) s = deft_set_error(DEFT_ERR_NOMEM, "detection score: out of memory");
    for (int i = 0; !s && i < gt->n; i++) {
        st[i] = (struct stem){stem_of(&gt->samples[i]), i};
        if (!st[i].s) s = deft_set_error(DEFT_ERR_NOMEM, "detection score: out of memory");
        im[i] = (struct deft_det_eval_image){gt->samples[i].boxes, gt->samples[i].n_boxes, NULL, 0, NULL};
    }
    if (!s) {
        qsort(st, (size_t)gt->n, sizeof *st, stem_cmp);
        s = class_map(gt, pred, map);
    }
    size_t used = 0;
    for (int i = 0; !s && i < pred->n; i++) {
        const struct deft_det_sample *p = &pred->samples[i];
        struct stem key = {stem_of(p), 0};
        if (!key.s) {
            s = deft_set_error(DEFT_ERR_NOMEM, "detection score: out of memory");
            break;
        }
        struct stem *hit = bsearch(&key, st, (size_t)gt->n, sizeof *st, stem_cmp);
        deft_free(key.s);
        const char *name = p->label ? p->label : p->image ? p->image : "(unnamed)";
        if (!hit) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no ground-truth file with this name (check -l and -p)", name);
            break;
        }
        struct deft_det_eval_image *e = &im[hit->i];
        if (e->det) {
            s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: a second prediction file for the same image", name);
            break;
        }
        e->det = boxes + used;
        for (int j = 0; j < p->n_boxes; j++) {
            int c = p->boxes[j].cls;
            if (c < 0 || c >= pred->n_classes || map[c] < 0) {
                s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: box %d: class '%s' is not a ground-truth class", name, j + 1,
                                   c >= 0 && c < pred->n_classes && pred->class_names ? pred->class_names[c] : "?");
                break;
            }
            boxes[used] = p->boxes[j];
            boxes[used++].cls = map[c];
        }
        e->n_det = p->n_boxes > 0 ? p->n_boxes : 0;
    }
    if (!s) s = deft_det_eval(im, gt->n, gt->n_classes, opt, out);
    free_stems(st, gt->n);
    deft_free(im);
    deft_free(map);
    deft_free(boxes);
    return s;
}

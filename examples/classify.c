/* classify.c - embed a deft engine: load it, preprocess images as the model
 * records, run them a batch at a time, print each image's top classes.
 *
 *     deft model convert -m model.safetensors -o model.engine
 *     cc classify.c $(pkg-config --cflags --libs deft) -o classify
 *     ./classify model.engine photo1.jpg photo2.png ...
 *
 * Output, one line per image: "path<TAB>class<TAB>score" for the top class,
 * then "  class score" for the next ones (up to --top K, default 3). Scores
 * are the softmax of the engine's output. Exit 2 on bad input, 1 otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <deft/engine.h>

static void softmax(float *v, int n) {
    float m = v[0], sum = 0;
    for (int i = 1; i < n; i++) m = v[i] > m ? v[i] : m;
    for (int i = 0; i < n; i++) sum += v[i] = expf(v[i] - m);
    for (int i = 0; i < n; i++) v[i] /= sum;
}

static void print_top(const struct deft_engine *e, const char *path, float *p, int n, int top) {
    softmax(p, n);
    for (int k = 0; k < top && k < n; k++) {
        int best = 0;
        for (int i = 1; i < n; i++) best = p[i] > p[best] ? i : best;
        const char *name = deft_engine_class_name(e, best);
        char idx[32];
        snprintf(idx, sizeof idx, "class_%d", best);
        if (k == 0) printf("%s\t%s\t%.4f\n", path, name ? name : idx, p[best]);
        else printf("  %s %.4f\n", name ? name : idx, p[best]);
        p[best] = -1; /* next best */
    }
}

int main(int argc, char **argv) {
    int top = 3, first = 2;
    if (argc > 3 && !strcmp(argv[2], "--top")) top = atoi(argv[3]), first = 4;
    if (argc <= first || top < 1) {
        fprintf(stderr, "usage: classify ENGINE [--top K] IMAGE...\n");
        return 2;
    }
    struct deft_engine *e = NULL;
    struct deft_engine_context *c = NULL;
    if (deft_engine_load(argv[1], &e) || deft_engine_context_create(e, &c)) {
        fprintf(stderr, "classify: %s\n", deft_last_error());
        deft_engine_free(e);
        return 2;
    }
    struct deft_engine_info in;
    deft_engine_get_info(e, &in);
    size_t per_in = in.input_numel / (size_t)in.batch, per_out = in.output_numel / (size_t)in.batch;
    float *x = calloc(in.input_numel, sizeof *x), *y = malloc(in.output_numel * sizeof *y);
    int rc = x && y ? 0 : 1;
    /* a batch at a time; a short last batch is padded with zeros */
    for (int i = first; !rc && i < argc; i += in.batch) {
        int n = argc - i < in.batch ? argc - i : in.batch;
        for (int b = 0; !rc && b < n; b++)
            if (deft_engine_preprocess_image(e, argv[i + b], x + (size_t)b * per_in)) rc = 2;
        if (!rc && deft_engine_run(c, x, in.input_numel, y, in.output_numel)) rc = 1;
        for (int b = 0; !rc && b < n; b++) print_top(e, argv[i + b], y + (size_t)b * per_out, (int)per_out, top);
    }
    if (rc) fprintf(stderr, "classify: %s\n", deft_last_error());
    free(x);
    free(y);
    deft_engine_context_free(c);
    deft_engine_free(e);
    return rc;
}

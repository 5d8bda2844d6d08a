/* cmd_bench_yolo.c - `deft bench train|infer --arch yolo_v4_resnet18|yolo_v4_tiny`: the
 * detection networks' speed without the detection task. Training is an SGD step (momentum
 * 0.9) on an L2 loss of every head against zeros: the network's forward, backward and
 * update, which is what the detection loss adds to least. */
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "deft/autograd.h"
#include "deft/optim.h"
#include "deft/yolo_model.h"

/* "yolo_v4_tiny" -> cspdarknet_tiny, "yolo_v4_<backbone>" -> that backbone (resnet18 ...). */
static bool yolo_opts(const char *arch, struct deft_yolo_v4_opts *o) {
    if (strncmp(arch, "yolo_v4_", 8) != 0 || !arch[8]) return false;
    o->arch = strcmp(arch + 8, "tiny") == 0 ? "cspdarknet_tiny" : arch + 8;
    return true;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bool bench_is_yolo(const char *arch) { return arch && strncmp(arch, "yolo_v4_", 8) == 0; }

/* L2 of each head against a zero target input, summed: the loss value. */
static int heads_loss(struct deft_graph *g) {
    int heads[3], n = 0, total = -1;
    for (int v = 0; v < deft_graph_num_values(g) && n < 3; v++)
        if (deft_graph_value(g, v)->flags & DEFT_VF_OUTPUT) heads[n++] = v;
    for (int i = 0; i < n; i++) {
        char name[64];
        const struct deft_value *h = deft_graph_value(g, heads[i]);
        struct deft_shape s = h->shape;
        snprintf(name, sizeof name, "%s.target", h->name);
        int t = deft_input(g, name, s);
        snprintf(name, sizeof name, "%s.loss", deft_graph_value(g, heads[i])->name);
        int l = deft_loss(g, name, heads[i], t, &(struct deft_loss_attr){.kind = DEFT_LOSS_L2});
        snprintf(name, sizeof name, "loss_sum%d", i);
        total = total < 0 ? l : deft_add(g, name, total, l);
    }
    if (total >= 0) deft_graph_value_mut(g, total)->flags |= DEFT_VF_OUTPUT;
    return total;
}

int bench_yolo(const char *arch, bool train, long long sz, long long b, long long st, long long wu, int classes,
               const char *backend, bool profile) {
    struct deft_yolo_v4_opts o = {.num_classes = classes, .batch = (int)b, .height = (int)sz, .width = (int)sz,
                                  .training = train};
    if (!yolo_opts(arch, &o)) {
        fprintf(stderr, "deft bench: %s: use yolo_v4_tiny or yolo_v4_<backbone> (yolo_v4_resnet18)\n", arch);
        return 2;
    }
    struct deft_graph *g = NULL;
    struct deft_runtime *rt = NULL;
    struct deft_optim *opt = NULL;
    size_t in_n = (size_t)(b * 3 * sz * sz);
    float *x = malloc(in_n * sizeof(float));
    double *lat = malloc((size_t)st * sizeof(double));
    int rc = 0, loss = -1;
    enum deft_status s = x && lat ? deft_yolo_v4_build(&o, &g) : DEFT_ERR_NOMEM;
    if (!s && train) {
        loss = heads_loss(g);
        s = deft_graph_status(g);
        if (!s) s = deft_autograd(g, loss, &(struct deft_autograd_opts){0});
    }
    if (!s) s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend}, &rt);
    if (!s) s = deft_runtime_init_params(rt, 1);
    if (!s && train)
        s = deft_optim_create(&(struct deft_optim_config){.kind = DEFT_OPTIM_SGD, .momentum = 0.9f}, rt, &opt);
    if (s) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    for (size_t i = 0; i < in_n; i++) x[i] = deft_rng_normal(1, 0, i);
    int input = deft_graph_find_value(g, "input_1");
    for (int v = 0; v < deft_graph_num_values(g) && train; v++) { /* zero targets */
        const struct deft_value *val = deft_graph_value(g, v);
        if (val->kind != DEFT_VALUE_INPUT || v == input) continue;
        size_t n = (size_t)deft_shape_numel(&val->shape);
        float *z = calloc(n, sizeof *z);
        s = z ? deft_runtime_set_input(rt, v, z, n) : DEFT_ERR_NOMEM;
        free(z);
        if (s) {
            rc = cli_fail(s, NULL);
            goto done;
        }
    }
    for (long long i = 0; i < wu + st; i++) {
        double t0 = deft_time_now();
        s = deft_runtime_set_input(rt, input, x, in_n);
        if (!s) s = deft_runtime_run(rt);
        if (!s && train) s = deft_optim_step(opt, 0.001f);
        if (s) {
            rc = cli_fail(s, NULL);
            goto done;
        }
        if (i >= wu) lat[i - wu] = deft_time_now() - t0;
    }
    qsort(lat, (size_t)st, sizeof *lat, cmp_double);
    bench_report(train ? "train" : "infer", arch, sz, b, st, lat, rt, profile);
done:
    deft_optim_free(opt);
    deft_runtime_free(rt);
    deft_graph_free(g);
    free(x);
    free(lat);
    return rc;
}

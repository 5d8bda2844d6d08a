/* cmd_bench.c - `deft bench train|infer`: time training steps or forward
 * passes on random data and print one JSON line (images_per_s, median
 * latency per batch, peak RSS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/dist.h"
#include "deft/engine.h"
#include "deft/trainer.h"
#include "cli/args.h"
#include "cli/cli.h"

static int bench_usage(FILE *f) {
    fprintf(f, "usage: deft bench train|infer --arch NAME [--size 224] [--batch 16] [--threads N]\n"
               "                  [--steps 10] [--warmup 3] [--classes 10] [--backend cpu|ref|cuda|cuda-emu] [--profile]\n"
               "                  [--gpu_index I] [--use_amp [bf16|fp16]]  (cuda)\n"
               "       deft bench infer -m MODEL [--batch 16] ...   (a model file: its graph and weights,\n"
               "                  e.g. a pruned model; --size changes its input size)\n"
               "       deft bench infer -m X.engine [--threads N] [--steps N]  (an engine of `deft model convert`:\n"
               "                  throughput, latency p50/p90/p99, first inference, load time, peak RSS)\n"
               "       --arch yolo_v4_tiny | yolo_v4_<backbone> (yolo_v4_resnet18): the detection network\n"
               "                  (--size 416 by default; train = SGD on an L2 loss of the heads against zeros)\n"
               "Prints one JSON line: images_per_s, latency_ms (median per batch), peak_rss_mib.\n");
    return f == stdout ? 0 : 2;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_report(const char *mode, const char *what, long long sz, long long b, long long st, const double *lat,
                  struct deft_runtime *rt, bool profile) {
    double med = lat[st / 2];
    struct deft_runtime_stats rs;
    deft_runtime_stats(rt, &rs);
    printf("{\"tool\": \"deft\", \"mode\": \"%s\", \"arch\": \"%s\", \"size\": %lld, \"batch\": %lld, "
           "\"threads\": %d, \"steps\": %lld, \"images_per_s\": %.2f, \"latency_ms\": %.2f, "
           "\"min_ms\": %.2f, \"max_ms\": %.2f, \"peak_rss_mib\": %.1f, \"arena_mib\": %.1f}\n",
           mode, what, sz, b, deft_get_threads(), st, (double)b / med, med * 1e3,
           lat[0] * 1e3, lat[st - 1] * 1e3, cli_peak_rss_mib(), (double)rs.arena_bytes / (1 << 20));
    if (profile) deft_runtime_print_profile(rt, stderr);
    return 0;
}

/* Forward passes of a model file (its own graph: pruned models included). */
static int bench_model(const char *path, int size, int batch, int steps, int warmup, const char *backend,
                       bool profile) {
    struct deft_model *m = NULL;
    struct deft_runtime *rt = NULL;
    float *x = NULL;
    double *lat = malloc((size_t)steps * sizeof(double));
    int rc = 0, input = -1;
    enum deft_status s = deft_model_load(path, &m);
    if (s) goto fail;
    struct deft_graph *g = m->graph;
    input = deft_graph_find_role(g, DEFT_ROLE_IMAGE);
    if (input < 0) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: no image input", path);
        goto fail;
    }
    struct deft_shape in = deft_graph_value(g, input)->shape;
    in.d[0] = batch;
    if (size) in.d[2] = in.d[3] = size;
    deft_graph_set_training(g, false);
    if ((s = deft_graph_reshape_input(g, input, &in)) ||
        (s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend}, &rt)) ||
        (s = deft_model_copy_to_runtime(m->file, rt, 0, NULL)))
        goto fail;
    size_t n = (size_t)deft_shape_numel(&in);
    if (!(x = malloc(n * sizeof(float))) || !lat) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) x[i] = deft_rng_normal(1, 0, i);
    for (int i = 0; i < warmup + steps; i++) {
        double t0 = deft_time_now();
        if ((s = deft_runtime_set_input(rt, input, x, n)) || (s = deft_runtime_run(rt))) goto fail;
        if (i >= warmup) lat[i - warmup] = deft_time_now() - t0;
    }
    qsort(lat, (size_t)steps, sizeof *lat, cmp_double);
    rc = bench_report("infer", path, in.d[2], batch, steps, lat, rt, profile);
    goto done;
fail:
    rc = cli_fail(s, NULL);
done:
    deft_runtime_free(rt);
    deft_model_free(m);
    free(x);
    free(lat);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return bench_usage(argc < 2 ? stderr : stdout);
    bool train = !strcmp(argv[1], "train");
    if (!train && strcmp(argv[1], "infer")) {
        fprintf(stderr, "deft bench: unknown mode '%s' (train, infer)\n", argv[1]);
        return 2;
    }
    const char *arch = NULL, *model = NULL, *size = NULL, *batch = NULL, *threads = NULL, *steps = "10", *warmup = "3",
               *classes = "10", *backend = "cpu", *gpu = "0";
    bool err = false, profile = false;
    int amp = DEFT_AMP_OFF;
    for (int i = 2; i < argc; i++) {
        if (arg_str(argc, argv, &i, NULL, "--arch", &arch, &err) || arg_str(argc, argv, &i, NULL, "--size", &size, &err) ||
            arg_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            arg_str(argc, argv, &i, NULL, "--batch", &batch, &err) ||
            arg_str(argc, argv, &i, NULL, "--threads", &threads, &err) ||
            arg_str(argc, argv, &i, NULL, "--steps", &steps, &err) ||
            arg_str(argc, argv, &i, NULL, "--warmup", &warmup, &err) ||
            arg_str(argc, argv, &i, NULL, "--classes", &classes, &err) ||
            arg_str(argc, argv, &i, NULL, "--backend", &backend, &err) ||
            arg_str(argc, argv, &i, NULL, "--gpu_index", &gpu, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--profile")) { profile = true; continue; }
        if (arg_amp(argc, argv, &i, &amp, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help")) return bench_usage(stdout);
        fprintf(stderr, "deft bench: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    if (!arch == !model || (model && train)) {
        fprintf(stderr, "deft bench: give --arch NAME (e.g. resnet18, mobilenet_v2) or, for infer, -m MODEL\n");
        return 2;
    }
    bool batch_given = batch != NULL;
    if (!batch) batch = "16";
    long long sz = 224, b, th = 0, st, wu, nc, gi;
    if ((size && !arg_parse_int("--size", size, 16, 4096, &sz)) || !arg_parse_int("--batch", batch, 1, 4096, &b) ||
        !arg_parse_int("--steps", steps, 1, 100000, &st) || !arg_parse_int("--warmup", warmup, 0, 1000, &wu) ||
        !arg_parse_int("--classes", classes, 1, 100000, &nc) ||
        (threads && !arg_parse_int("--threads", threads, 1, 1024, &th)) ||
        !arg_parse_int("--gpu_index", gpu, 0, 1024, &gi))
        return 2;
    if (th) deft_set_threads((int)th);
    if (model && deft_engine_is_engine_file(model)) {
        if (size) {
            fprintf(stderr, "deft bench: an engine's input size is fixed when converted (--input_shape)\n");
            return 2;
        }
        return cli_bench_engine(model, batch_given ? (int)b : 0, (int)st, (int)wu, backend, profile);
    }
    if (model) return bench_model(model, size ? (int)sz : 0, (int)b, (int)st, (int)wu, backend, profile);
    if (bench_is_yolo(arch)) return bench_yolo(arch, train, size ? sz : 416, b, st, wu, (int)nc, backend, profile);
    struct deft_model_opts mo = {.arch = arch, .num_classes = (int)nc, .batch = (int)b, .height = (int)sz,
                                 .width = (int)sz, .training = train};
    size_t in_n = (size_t)(b * 3 * sz * sz);
    float *x = malloc(in_n * sizeof(float)), *labels = malloc((size_t)b * sizeof(float));
    double *lat = malloc((size_t)st * sizeof(double));
    struct deft_trainer *t = NULL;
    struct deft_graph *g = NULL;
    struct deft_runtime *rt = NULL;
    enum deft_status s = DEFT_OK;
    int rc = 0;
    if (!x || !labels || !lat) {
        fprintf(stderr, "deft bench: out of memory\n");
        rc = 1;
        goto done;
    }
    for (size_t i = 0; i < in_n; i++) x[i] = deft_rng_normal(1, 0, i);
    for (long long i = 0; i < b; i++) labels[i] = (float)(i % nc);
    int input = -1, logits = -1;
    if (train) {
        s = deft_trainer_create(&(struct deft_trainer_opts){.model = mo, .backend = backend, .seed = 1,
            .device_index = (int)gi, .amp = amp,
            .optim = {.kind = DEFT_OPTIM_SGD, .momentum = 0.9f}, .lr = {.lr = 0.01f}}, &t);
    } else if (!(s = deft_model_build(&mo, &g, &input, &logits))) {
        if (!(s = deft_runtime_create(g, &(struct deft_runtime_opts){.backend = backend, .device_index = (int)gi,
                                                                     .amp = (enum deft_amp)amp}, &rt)))
            s = deft_runtime_init_params(rt, 1);
    }
    if (s) {
        rc = cli_fail(s, NULL);
        goto done;
    }
    double comm0 = 0, exp0 = 0, timed = 0; /* all-reduce (and waited-for) seconds before the timed steps; their wall time */
    for (long long i = 0; i < wu + st; i++) {
        if (i == wu) comm0 = deft_dist_comm_seconds(), exp0 = deft_dist_exposed_seconds();
        double t0 = deft_time_now();
        float loss;
        if (train)
            s = deft_trainer_step(t, x, labels, &loss);
        else if (!(s = deft_runtime_set_input(rt, input, x, in_n)))
            s = deft_runtime_run(rt);
        if (s) {
            rc = cli_fail(s, NULL);
            goto done;
        }
        if (i >= wu) timed += lat[i - wu] = deft_time_now() - t0;
    }
    qsort(lat, (size_t)st, sizeof *lat, cmp_double);
    if (deft_dist_rank() == 0)
        bench_report(train ? "train" : "infer", arch, sz, b, st, lat, train ? deft_trainer_runtime(t) : rt, profile);
    if (train && deft_dist_size() > 1) { /* data parallel (mpirun): the job's figures */
        /* the all-reduce inside a step includes waiting for the slowest rank;
         * alone (after a barrier) it is the transfer: the gradient block 3 times */
        double in_steps = deft_dist_comm_seconds() - comm0, alone = 0;
        double exposed = deft_dist_exposed_seconds() - exp0; /* the compute waited for the buckets */
        size_t ng;
        float *g = deft_runtime_grad_block(deft_trainer_runtime(t), &ng);
        for (int k = 0; k < 3 && !s; k++) {
            if ((s = deft_dist_barrier())) break;
            double c0 = deft_time_now();
            s = deft_dist_allreduce_f32(g, ng, DEFT_DIST_AVG);
            alone += (deft_time_now() - c0) / 3;
        }
        if (s) {
            rc = cli_fail(s, NULL);
            goto done;
        }
        if (deft_dist_rank() == 0)
            printf("{\"ranks\": %d, \"global_batch\": %lld, \"global_images_per_s\": %.2f, \"allreduce_ms_per_step\": "
                   "%.2f, \"allreduce_share\": %.4f, \"exposed_ms_per_step\": %.2f, \"exposed_share\": %.4f, "
                   "\"gradient_mb\": %.1f, \"allreduce_alone_ms\": %.2f}\n",
                   deft_dist_size(), b * deft_dist_size(), (double)(b * deft_dist_size()) * (double)st / timed,
                   in_steps * 1e3 / (double)st, in_steps / timed, exposed * 1e3 / (double)st, exposed / timed,
                   (double)ng * 4 / 1e6, alone * 1e3);
    }
done:
    deft_trainer_free(t);
    deft_runtime_free(rt);
    deft_graph_free(g);
    free(x);
    free(labels);
    free(lat);
    return rc;
}

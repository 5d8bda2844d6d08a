/* cmd_engine.c - `deft model convert`, `deft model run -m X.engine` and
 * `deft bench infer -m X.engine` (a trtexec-like report). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft/deft.h"
#include "deft/engine.h"
#include "cli/args.h"
#include "cli/cli.h"

static int convert_usage(FILE *f) {
    fprintf(f, "usage: deft model convert -m MODEL.safetensors|FILE.onnx -o OUT.engine [--precision fp32|int8|bf16]\n"
               "                          [--batch N] [--input_shape 1x3x224x224]\n"
               "                          [--cal_cache cal.bin | --cal_image_dir DIR [--batches N] [--batch_size N]]\n"
               "  The model's inference graph (batch norm in eval mode, dropout off, batch and input\n"
               "  size fixed) and its weights as an engine file for `deft model run`, `deft bench\n"
               "  infer` and the C API (deft/engine.h). --input_shape NxCxHxW sets the batch and size.\n"
               "  int8: convolutions run in int8 with the activation ranges of a TensorRT calibration\n"
               "  cache (--cal_cache: deft's `export --data_type int8` writes one) or of an entropy\n"
               "  calibration on images (--cal_image_dir, N x N images drawn at random, default 10 x 16;\n"
               "  --calibrator entropy|minmax|percentile [--percentile P], as `export`).\n"
               "  bf16: convolutions in bf16 where the CPU has AVX512-BF16 or AMX, fp32 elsewhere.\n"
               "  An explicitly quantized ONNX (QuantizeLinear/DequantizeLinear: deft's --qdq_file,\n"
               "  PyTorch's, TAO's) converts to int8 with its own ranges unless --precision says\n"
               "  otherwise (symmetric int8: activation zero points must be 0); the default is fp32.\n"
               "  fp32: the graph is timed with oneDNN's blocked and nhwc convolution kernels and the\n"
               "  faster is recorded (\"layout\"; DEFT_ENGINE_LAYOUT=nhwc|blocked decides instead).\n"
               "  A model with several outputs (a detector's heads) keeps them all.\n");
    return f == stdout ? 0 : 2;
}

/* "1x3x224x224" into n, c, h, w. */
static bool parse_nchw(const char *s, long long d[4]) {
    char *end;
    for (int i = 0; i < 4; i++) {
        d[i] = strtoll(s, &end, 10);
        if (end == s || d[i] < 1 || d[i] > 65536 || (i < 3 && *end != 'x') || (i == 3 && *end)) return false;
        s = end + 1;
    }
    return true;
}

int cmd_model_convert(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *precision = NULL, *batch = NULL, *shape = NULL;
    const char *cal_cache = NULL, *cal_dir = NULL, *cal_batches = NULL, *cal_bs = NULL, *calibrator = NULL, *pct = NULL;
    bool err = false;
    for (int i = 1; i < argc; i++) {
        if (arg_str(argc, argv, &i, "-m", "--model", &model, &err) ||
            arg_str(argc, argv, &i, "-o", "--output_file", &out, &err) ||
            arg_str(argc, argv, &i, NULL, "--precision", &precision, &err) ||
            arg_str(argc, argv, &i, NULL, "--batch", &batch, &err) ||
            arg_str(argc, argv, &i, NULL, "--input_shape", &shape, &err) ||
            arg_str(argc, argv, &i, NULL, "--cal_cache", &cal_cache, &err) ||
            arg_str(argc, argv, &i, NULL, "--cal_image_dir", &cal_dir, &err) ||
            arg_str(argc, argv, &i, NULL, "--batches", &cal_batches, &err) ||
            arg_str(argc, argv, &i, NULL, "--batch_size", &cal_bs, &err) ||
            arg_str(argc, argv, &i, NULL, "--calibrator", &calibrator, &err) ||
            arg_str(argc, argv, &i, NULL, "--percentile", &pct, &err)) {
            if (err) return 2;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return convert_usage(stdout);
        fprintf(stderr, "deft model convert: unknown flag '%s'\n", argv[i]);
        return 2;
    }
    if (!model || !out) {
        fprintf(stderr, "deft model convert: -m MODEL and -o OUT.engine are required\n");
        return 2;
    }
    if (precision && strcmp(precision, "fp32") && strcmp(precision, "int8") && strcmp(precision, "bf16")) {
        fprintf(stderr, "deft model convert: --precision %s is not available (fp32, int8, bf16)\n", precision);
        return 2;
    }
    struct deft_engine_convert_opts o = {.precision = precision, .cal_cache = cal_cache, .cal_image_dir = cal_dir,
                                         .progress = stdout};
    long long b = 0, d[4], cb = 0, cbs = 0;
    if ((cal_batches || cal_bs || calibrator || pct) && !cal_dir) {
        fprintf(stderr, "deft model convert: --batches, --batch_size, --calibrator and --percentile go with --cal_image_dir\n");
        return 2;
    }
    if ((cal_batches && !arg_parse_int("--batches", cal_batches, 1, 100000, &cb)) ||
        (cal_bs && !arg_parse_int("--batch_size", cal_bs, 1, 4096, &cbs)))
        return 2;
    o.calibrator = calibrator;
    if (pct) {
        char *end;
        o.percentile = strtod(pct, &end);
        if (*end || !(o.percentile > 0 && o.percentile <= 100)) {
            fprintf(stderr, "deft model convert: --percentile takes a number in (0, 100], got '%s'\n", pct);
            return 2;
        }
    }
    o.cal_batches = (int)cb;
    o.cal_batch_size = (int)cbs;
    if (batch && !arg_parse_int("--batch", batch, 1, DEFT_ENGINE_MAX_BATCH, &b)) return 2;
    if (shape) {
        if (!parse_nchw(shape, d)) {
            fprintf(stderr, "deft model convert: --input_shape takes NxCxHxW (e.g. 1x3x224x224), got '%s'\n", shape);
            return 2;
        }
        if (b && b != d[0]) {
            fprintf(stderr, "deft model convert: --batch %lld disagrees with --input_shape %s\n", b, shape);
            return 2;
        }
        b = d[0];
        o.channels = (int)d[1];
        o.height = (int)d[2];
        o.width = (int)d[3];
    }
    o.batch = (int)b;
    double t0 = deft_time_now();
    enum deft_status s = deft_engine_convert(model, out, &o);
    if (s) return cli_fail(s, NULL);
    struct deft_engine *e = NULL;
    if ((s = deft_engine_load(out, &e))) return cli_fail(s, NULL);
    struct deft_engine_info in;
    deft_engine_get_info(e, &in);
    char a[96], c[96];
    printf("wrote %s: %s, batch %d, input '%s' %s, output%s", out, in.precision, in.batch, in.input_name,
           deft_shape_str(&in.input_shape, a, sizeof a), in.num_outputs > 1 ? "s" : "");
    for (int k = 0; k < in.num_outputs; k++)
        printf("%s '%s' %s", k ? "," : "", in.output_names[k], deft_shape_str(&in.output_shapes[k], c, sizeof c));
    printf(", for %s (%.2f s)\n", in.cpu, deft_time_now() - t0);
    deft_engine_free(e);
    return 0;
}

/* Load an engine and make its context, saying when it was converted elsewhere. */
static enum deft_status open_engine(const char *path, const char *backend, struct deft_engine **e,
                                    struct deft_engine_context **c, struct deft_engine_info *in) {
    enum deft_status s = deft_engine_load(path, e);
    if (s) return s;
    deft_engine_get_info(*e, in);
    if (in->cpu_differs)
        fprintf(stderr, "deft: %s was converted on a CPU with '%s'; this one has '%s': weights are prepared "
                        "for this CPU\n", path, in->cpu, deft_engine_cpu_features());
    if (!strcmp(in->precision, "bf16") && !deft_engine_bf16_native())
        fprintf(stderr, "deft: %s is bf16 and this CPU has neither AVX512-BF16 nor AMX (oneDNN runs %s): it falls back "
                        "to fp32\n", path, deft_engine_cpu_isa());
    if (!strcmp(in->precision, "int8") && !deft_engine_int8_native())
        fprintf(stderr, "deft: %s is int8 and this CPU has no VNNI or AMX (oneDNN runs %s): it runs on oneDNN's "
                        "slower int8 kernels\n", path, deft_engine_cpu_isa());
    return deft_engine_context_create_on(*e, backend, c);
}

/* Where output k goes: out itself for the first, OUT_<name>.npy (OUT less
 * its .npy; characters other than [A-Za-z0-9_.-] in the name as '_') after. */
static char *output_path(const char *out, int k, const char *name) {
    if (k == 0) return deft_strdup(out);
    size_t n = strlen(out), stem = n > 4 && !strcmp(out + n - 4, ".npy") ? n - 4 : n;
    char *p = deft_malloc(stem + strlen(name) + 6);
    if (!p) return NULL;
    memcpy(p, out, stem);
    char *q = p + stem;
    *q++ = '_';
    for (const char *c = name; *c; c++)
        *q++ = (isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-') ? *c : '_';
    strcpy(q, ".npy");
    return p;
}

int cli_model_run_engine(const char *path, const struct deft_tensor *x, const char *out, const char *backend) {
    struct deft_engine *e = NULL;
    struct deft_engine_context *c = NULL;
    struct deft_engine_info in;
    struct deft_tensor *y[DEFT_ENGINE_MAX_OUTPUTS] = {0};
    float *ptr[DEFT_ENGINE_MAX_OUTPUTS];
    char want[96], got[96];
    enum deft_status s = open_engine(path, backend, &e, &c, &in);
    if (!s && (x->dtype != DEFT_F32 || !deft_shape_equal(&x->shape, &in.input_shape)))
        s = deft_set_error(DEFT_ERR_SHAPE, "the input is %s %s; the engine %s takes float32 %s (its batch is fixed "
                           "when converted: `deft model convert --batch N`)", deft_dtype_name(x->dtype),
                           deft_shape_str(&x->shape, got, sizeof got), path,
                           deft_shape_str(&in.input_shape, want, sizeof want));
    for (int k = 0; !s && k < in.num_outputs; k++)
        if (!(s = deft_tensor_create(DEFT_F32, &in.output_shapes[k], &y[k]))) ptr[k] = y[k]->data;
    if (!s) s = deft_engine_run_outputs(c, x->data, in.input_numel, ptr, in.output_numels, in.num_outputs);
    for (int k = 0; !s && k < in.num_outputs; k++) {
        char *p = output_path(out, k, in.output_names[k]);
        if (!p) s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        else if (!(s = deft_npy_write(p, y[k])))
            printf("wrote %s: '%s' %s\n", p, in.output_names[k], deft_shape_str(&in.output_shapes[k], got, sizeof got));
        deft_free(p);
    }
    int rc = s ? cli_fail(s, NULL) : 0;
    for (int k = 0; k < DEFT_ENGINE_MAX_OUTPUTS; k++) deft_tensor_free(y[k]);
    deft_engine_context_free(c);
    deft_engine_free(e);
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int n, double p) {
    int k = (int)(p / 100.0 * n + 0.999999) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static void engine_report(const char *path, const struct deft_engine_info *in, const double *lat, int steps,
                          double load_s, double first_s, struct deft_runtime *rt, bool profile) {
    double p50 = pct(lat, steps, 50), p90 = pct(lat, steps, 90), p99 = pct(lat, steps, 99), sum = 0;
    for (int i = 0; i < steps; i++) sum += lat[i];
    double ips = in->batch * steps / sum, rss = cli_peak_rss_mib();
    struct deft_runtime_stats rs;
    deft_runtime_stats(rt, &rs);
    printf("engine:      %s (%s, batch %d, input %s %lldx%lldx%lld, converted on %s)\n", path, in->precision,
           in->batch, in->input_name, (long long)in->input_shape.d[1], (long long)in->input_shape.d[2],
           (long long)in->input_shape.d[3], in->cpu);
    printf("threads:     %d\n", deft_get_threads());
    printf("isa:         %s (oneDNN's kernels here%s)\n", deft_engine_cpu_isa(),
           !strcmp(in->precision, "int8") ? (deft_engine_int8_native() ? "; int8 with VNNI/AMX" : "; int8 without VNNI/AMX")
           : !strcmp(in->precision, "bf16") ? (deft_engine_bf16_native() ? "; bf16 convolutions" : "; bf16 fell back to fp32")
           : "");
    printf("load:        %.2f ms (file read, checks)\n", load_s * 1e3);
    printf("first run:   %.2f ms (context: weights prepared, memory planned; and one inference)\n", first_s * 1e3);
    printf("throughput:  %.2f images/s over %d runs\n", ips, steps);
    printf("latency:     min %.2f  mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms per batch\n", lat[0] * 1e3,
           sum / steps * 1e3, p50 * 1e3, p90 * 1e3, p99 * 1e3, lat[steps - 1] * 1e3);
    printf("peak RSS:    %.1f MiB\n", rss);
    printf("{\"tool\": \"deft\", \"mode\": \"infer\", \"engine\": \"%s\", \"precision\": \"%s\", \"size\": %lld, "
           "\"batch\": %d, \"threads\": %d, \"steps\": %d, \"images_per_s\": %.2f, \"latency_ms\": %.2f, "
           "\"p50_ms\": %.2f, \"p90_ms\": %.2f, \"p99_ms\": %.2f, \"min_ms\": %.2f, \"max_ms\": %.2f, "
           "\"first_ms\": %.2f, \"load_ms\": %.2f, \"peak_rss_mib\": %.1f, \"arena_mib\": %.1f, \"isa\": \"%s\", "
           "\"layout\": \"%s\"}\n",
           path, in->precision, (long long)in->input_shape.d[2], in->batch, deft_get_threads(), steps, ips,
           p50 * 1e3, p50 * 1e3, p90 * 1e3, p99 * 1e3, lat[0] * 1e3, lat[steps - 1] * 1e3, first_s * 1e3,
           load_s * 1e3, rss, (double)rs.arena_bytes / (1 << 20), deft_engine_cpu_isa(),
           in->layout ? in->layout : in->precision);
    if (profile) deft_runtime_print_profile(rt, stderr);
}

int cli_bench_engine(const char *path, int batch, int steps, int warmup, const char *backend, bool profile) {
    struct deft_engine *e = NULL;
    struct deft_engine_context *c = NULL;
    struct deft_engine_info in;
    float *x = NULL, *y[DEFT_ENGINE_MAX_OUTPUTS] = {0};
    double *lat = malloc((size_t)steps * sizeof *lat);
    int rc = 0;
    double t0 = deft_time_now(), load_s, first_s;
    enum deft_status s = deft_engine_load(path, &e);
    load_s = deft_time_now() - t0;
    if (s) goto fail;
    deft_engine_get_info(e, &in);
    if (batch && batch != in.batch) {
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: --batch %d, but the engine's batch is fixed at %d (convert "
                           "it again with --batch %d)", path, batch, in.batch, batch);
        goto fail;
    }
    bool oom = !lat || !(x = malloc(in.input_numel * sizeof *x));
    for (int k = 0; k < in.num_outputs; k++) oom |= !(y[k] = malloc(in.output_numels[k] * sizeof *y[k]));
    if (oom) {
        s = deft_set_error(DEFT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < in.input_numel; i++) x[i] = deft_rng_normal(1, 0, i);
    t0 = deft_time_now();
    deft_engine_free(e); /* the report's load and first run include everything a user's program does */
    e = NULL;
    if ((s = open_engine(path, backend, &e, &c, &in)) ||
        (s = deft_engine_run_outputs(c, x, in.input_numel, y, in.output_numels, in.num_outputs)))
        goto fail;
    first_s = deft_time_now() - t0 - load_s;
    for (int i = 0; i < warmup + steps; i++) {
        double t1 = deft_time_now();
        if ((s = deft_engine_run_outputs(c, x, in.input_numel, y, in.output_numels, in.num_outputs))) goto fail;
        if (i >= warmup) lat[i - warmup] = deft_time_now() - t1;
    }
    qsort(lat, (size_t)steps, sizeof *lat, cmp_double);
    engine_report(path, &in, lat, steps, load_s, first_s, deft_engine_context_runtime(c), profile);
    goto done;
fail:
    rc = cli_fail(s, NULL);
done:
    deft_engine_context_free(c);
    deft_engine_free(e);
    free(x);
    for (int k = 0; k < DEFT_ENGINE_MAX_OUTPUTS; k++) free(y[k]);
    free(lat);
    return rc;
}

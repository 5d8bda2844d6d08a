/* test_report.c - TensorBoard events, status.json, metrics.csv, plots.
 *
 * Files are checked twice: by the C reader (events) and by an independent
 * python script (tests/report/check_report.py: its own CRC-32C, protobuf and
 * PNG decoding, json, csv, xml.etree). Set DEFT_REPORT_SAMPLES=<dir> to keep
 * a sample loss plot and confusion matrix there.
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deft_test.h"
#include "deft/data.h"
#include "deft/io.h"
#include "deft/report.h"

static bool have_python;

static int run_check(const char *args) {
    if (!have_python) return 0;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/report/check_report.py' %s", test_source_dir(), args);
    int rc = system(cmd);
    return rc;
}

static char *slurp(const char *path, size_t *len) {
    void *d = NULL;
    size_t n = 0;
    if (deft_file_read(path, 1 << 28, &d, &n) != DEFT_OK) return NULL;
    if (len) *len = n;
    return d;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* ---- CRC ------------------------------------------------------------------ */
static void test_crc(void) {
    CHECK(deft_crc32c("123456789", 9) == 0xE3069283u, "crc32c(123456789) = %08x", deft_crc32c("123456789", 9));
    unsigned char z[32] = {0};
    CHECK(deft_crc32c(z, 32) == 0x8A9136AAu, "crc32c(32 zeros)");
    uint32_t c = deft_crc32c_update(deft_crc32c("1234", 4), "56789", 5);
    CHECK(c == 0xE3069283u, "incremental crc32c");
    /* formats.md §4.2 example record: 24-byte Event with wall_time 1700000000.0 */
    unsigned char rec[40];
    static const char hex[] = "1800000000000000a37f4b2209""00000040fc54d941""1a0d627261696e2e4576656e743a32eced8f9d";
    for (int i = 0; i < 40; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        rec[i] = (unsigned char)v;
    }
    uint32_t lc = deft_crc32c_mask(deft_crc32c(rec, 8));
    uint32_t dc = deft_crc32c_mask(deft_crc32c(rec + 12, 24));
    CHECK(lc == (uint32_t)(rec[8] | rec[9] << 8 | rec[10] << 16 | (uint32_t)rec[11] << 24), "length crc %08x", lc);
    CHECK(dc == (uint32_t)(rec[36] | rec[37] << 8 | rec[38] << 16 | (uint32_t)rec[39] << 24), "data crc %08x", dc);
    struct deft_events_data *d = NULL;
    CHECK_OK(deft_events_parse(rec, 40, "example", &d));
    if (d) {
        CHECK(d->n_records == 1 && d->file_version && strcmp(d->file_version, "brain.Event:2") == 0,
              "example record decodes");
        deft_events_data_free(d);
    }
}

/* ---- events ---------------------------------------------------------------- */
static void test_events(void) {
    char dir[512], exp[600], args[1600];
    snprintf(dir, sizeof dir, "%s/run", test_tmpdir());
    mkdir(dir, 0755);
    struct deft_events *w = NULL;
    CHECK_OK(deft_events_open(dir, &w));
    if (!w) return;
    const char *path = deft_events_path(w);
    char *pathcopy = deft_strdup(path);
    const char *base = strrchr(path, '/') + 1;
    CHECK(strncmp(base, "events.out.tfevents.", 20) == 0 && strlen(base) > 31 && base[30] == '.',
          "file name %s", base);

    snprintf(exp, sizeof exp, "%s/expected.txt", test_tmpdir());
    FILE *ef = fopen(exp, "w");
    int n_expected = 0;
    for (int epoch = 0; epoch < 12; epoch++) {
        float loss = 2.0f / (1 + epoch), top1 = 0.1f + 0.07f * epoch;
        CHECK_OK(deft_events_scalar(w, "train/loss", epoch, loss));
        CHECK_OK(deft_events_scalar(w, "val/top1", epoch, top1));
        fprintf(ef, "train/loss\t%d\t%.9g\nval/top1\t%d\t%.9g\n", epoch, loss, epoch, top1);
        n_expected += 2;
        CHECK_OK(deft_events_flush(w));
    }
    int64_t big = (int64_t)1 << 40;
    CHECK_OK(deft_events_scalar(w, "odd/nan", big, NAN));
    CHECK_OK(deft_events_scalar(w, "odd/negstep", -3, -1.5f));
    CHECK_OK(deft_events_scalar(w, "odd/inf", 7, INFINITY));
    fprintf(ef, "odd/nan\t%lld\tnan\nodd/negstep\t-3\t-1.5\nodd/inf\t7\tinf\n", (long long)big);
    n_expected += 3;
    /* an image summary (a plot rendered to PNG) */
    char plot[600];
    snprintf(plot, sizeof plot, "%s/img", test_tmpdir());
    double ys[3] = {1, 3, 2};
    struct deft_plot_series s = {"s", NULL, ys, 3};
    CHECK_OK(deft_plot_lines(plot, "img", NULL, NULL, &s, 1));
    char pngpath[620];
    snprintf(pngpath, sizeof pngpath, "%s.png", plot);
    size_t pn = 0;
    char *png = slurp(pngpath, &pn);
    CHECK(png != NULL, "plot png readable");
    if (png) CHECK_OK(deft_events_image(w, "plots/loss", 12, png, pn, 600, 960, 3));
    fprintf(ef, "#images\t1\n");
    deft_free(png);
    fclose(ef);
    CHECK_OK(deft_events_close(w));

    /* C reader */
    struct deft_events_data *d = NULL;
    CHECK_OK(deft_events_read(pathcopy, &d));
    if (d) {
        CHECK(d->n_records == 1 + n_expected + 1, "records %d", d->n_records);
        CHECK(d->file_version && strcmp(d->file_version, "brain.Event:2") == 0, "file_version");
        CHECK(d->n_scalars == n_expected, "scalars %d", d->n_scalars);
        CHECK(!d->truncated, "not truncated");
        CHECK(d->n_images == 1, "images %d", d->n_images);
        if (d->n_scalars == n_expected) {
            CHECK(strcmp(d->scalars[0].tag, "train/loss") == 0 && d->scalars[0].step == 0 &&
                      d->scalars[0].value == 2.0f,
                  "first scalar");
            CHECK(strcmp(d->scalars[23].tag, "val/top1") == 0 && d->scalars[23].step == 11 &&
                      d->scalars[23].value == 0.1f + 0.07f * 11,
                  "scalar 23");
            CHECK(d->scalars[24].step == big && isnan(d->scalars[24].value), "nan scalar at step 2^40");
            CHECK(d->scalars[25].step == -3 && d->scalars[25].value == -1.5f, "negative step");
            CHECK(isinf(d->scalars[26].value), "inf scalar");
            CHECK(d->scalars[0].wall_time > 1e9, "wall time");
        }
        deft_events_data_free(d);
    }
    /* python: framing, CRC-32C, protobuf by hand, tensorboard if present */
    snprintf(args, sizeof args, "events '%s' '%s'", pathcopy, exp);
    CHECK(run_check(args) == 0, "python events check");

    /* torn last record: tolerated; corrupted byte: FORMAT error */
    size_t len = 0;
    unsigned char *buf = (unsigned char *)slurp(pathcopy, &len);
    if (buf) {
        d = NULL;
        CHECK_OK(deft_events_parse(buf, len - 5, "torn", &d));
        if (d) {
            CHECK(d->truncated && d->n_records == 1 + n_expected, "torn record: %d records", d->n_records);
            deft_events_data_free(d);
        }
        CHECK_OK(deft_events_parse(buf, 7, "torn header", &d));
        if (d) {
            CHECK(d->truncated && d->n_records == 0, "torn header");
            deft_events_data_free(d);
        }
        buf[40] ^= 0x20;
        enum deft_status st = deft_events_parse(buf, len, "corrupt", &d);
        CHECK(st == DEFT_ERR_FORMAT && d == NULL, "corrupt byte -> FORMAT (%s)", deft_last_error());
        buf[40] ^= 0x20;
        buf[3] = 0x7F; /* absurd length */
        st = deft_events_parse(buf, len, "corrupt", &d);
        CHECK(st == DEFT_ERR_FORMAT, "bad length crc -> FORMAT");
        deft_free(buf);
    }

    /* two writers in the same second get two files */
    struct deft_events *a = NULL, *b = NULL;
    CHECK_OK(deft_events_open(dir, &a));
    CHECK_OK(deft_events_open(dir, &b));
    if (a && b) CHECK(strcmp(deft_events_path(a), deft_events_path(b)) != 0, "distinct file names");
    CHECK_OK(deft_events_close(a));
    CHECK_OK(deft_events_close(b));
    CHECK(deft_events_open("/nonexistent/dir", &a) == DEFT_ERR_IO && a == NULL, "open in missing dir");
    deft_free(pathcopy);

    /* allocation failures: no crash, no leak */
    long live0 = deft_alloc_live();
    int failures = 0;
    for (long k = 1; k < 60; k++) {
        deft_alloc_fail_after(k);
        struct deft_events *f = NULL;
        enum deft_status st = deft_events_open(dir, &f);
        if (!st) {
            for (int i = 0; i < 4 && !st; i++) st = deft_events_scalar(f, "t", i, 1.0f);
            enum deft_status st2 = deft_events_close(f);
            if (!st) st = st2;
        }
        if (st) failures++;
        deft_alloc_fail_after(0);
    }
    CHECK(failures > 0, "fault injection reached the writer");
    CHECK(deft_alloc_live() == live0, "no leaks under allocation failure (%ld vs %ld)", deft_alloc_live(), live0);
}

/* ---- status.json / metrics.csv ---------------------------------------------- */
static void test_metrics(void) {
    char dir[512], sj[600], mc[600], args[1400];
    snprintf(dir, sizeof dir, "%s/metrics", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(sj, sizeof sj, "%s/status.json", dir);
    snprintf(mc, sizeof mc, "%s/metrics.csv", dir);
    for (int e = 1; e <= 5; e++) {
        struct deft_metric val[] = {{"top1", 0.5 + 0.05 * e}, {"top5", e == 3 ? NAN : 0.9}, {"we\"ird,name", 1}};
        struct deft_metric extra[] = {{"train_top1", 0.4 + 0.1 * e}};
        struct deft_epoch_record r = {.epoch = e, .step = 100 * e, .loss = 1.0 / e, .lr = 0.01,
                                      .time = 12.5 * e, .extra = extra, .n_extra = 1,
                                      .val = val, .n_val = 3};
        CHECK_OK(deft_report_epoch(dir, &r));
    }
    size_t n = 0;
    char *t = slurp(sj, &n);
    CHECK(t && strncmp(t, "{\"epoch\":1,\"step\":100,\"loss\":1,\"lr\":0.01,\"train_top1\":0.5,\"val\":{\"top1\":0.55,",
                       60) == 0,
          "status line: %.120s", t ? t : "(none)");
    CHECK(t && strstr(t, "\"top5\":null"), "NaN is null");
    deft_free(t);
    snprintf(args, sizeof args, "status '%s' 5", sj);
    CHECK(run_check(args) == 0, "python json check");
    snprintf(args, sizeof args, "csv '%s' 5", mc);
    CHECK(run_check(args) == 0, "python csv check");
    t = slurp(mc, &n);
    CHECK(t && strncmp(t, "epoch,step,loss,lr,time,train_top1,val_top1,val_top5,\"val_we\"\"ird,name\"\n", 70) == 0,
          "csv header: %.100s", t ? t : "(none)");
    deft_free(t);

    /* different metric names: refused, file untouched */
    size_t before = 0, after = 0;
    deft_free(slurp(mc, &before));
    struct deft_metric other[] = {{"mAP", 0.3}};
    struct deft_epoch_record r2 = {.epoch = 6, .val = other, .n_val = 1};
    CHECK(deft_metrics_csv_append(mc, &r2) == DEFT_ERR_INVALID_ARG, "header mismatch refused");
    deft_free(slurp(mc, &after));
    CHECK(before == after, "csv untouched after refusal");

    /* torn last line (crash mid-append): the next line starts on a new line */
    char tj[600], tc[600];
    snprintf(tj, sizeof tj, "%s/torn.json", dir);
    snprintf(tc, sizeof tc, "%s/torn.csv", dir);
    struct deft_epoch_record r = {.epoch = 1, .step = 10, .loss = 0.5, .lr = 0.1, .time = 1};
    CHECK_OK(deft_status_json_append(tj, &r));
    CHECK_OK(deft_metrics_csv_append(tc, &r));
    FILE *f = fopen(tj, "a");
    fputs("{\"epoch\":2,\"st", f);
    fclose(f);
    f = fopen(tc, "a");
    fputs("2,2", f);
    fclose(f);
    r.epoch = 3;
    CHECK_OK(deft_status_json_append(tj, &r));
    CHECK_OK(deft_metrics_csv_append(tc, &r));
    t = slurp(tj, &n);
    CHECK(t && strstr(t, "{\"epoch\":2,\"st\n{\"epoch\":3,"), "torn json line isolated: %s", t ? t : "");
    deft_free(t);
    t = slurp(tc, &n);
    CHECK(t && strstr(t, "\n2,2\n3,10,") && strncmp(t, "epoch,", 6) == 0, "torn csv line isolated: %s", t ? t : "");
    deft_free(t);
    /* a header torn by a crash is rewritten */
    char th[600];
    snprintf(th, sizeof th, "%s/tornhdr.csv", dir);
    f = fopen(th, "w");
    fputs("epoch,st", f);
    fclose(f);
    CHECK_OK(deft_metrics_csv_append(th, &r));
    t = slurp(th, &n);
    CHECK(t && strcmp(t, "epoch,step,loss,lr,time\n3,10,0.5,0.1,1\n") == 0, "torn header: %s", t ? t : "");
    deft_free(t);

    /* bad arguments */
    struct deft_metric noname[] = {{NULL, 1}};
    struct deft_epoch_record bad = {.val = noname, .n_val = 1};
    CHECK(deft_status_json_append(tj, &bad) == DEFT_ERR_INVALID_ARG, "unnamed metric");
    CHECK(deft_report_epoch("/nonexistent/dir", &r) == DEFT_ERR_IO, "missing dir -> IO");
}

/* ---- plots ------------------------------------------------------------------- */
static void check_plot_files(const char *base, int w, int h, int min_colors, bool python_png) {
    char p[700], args[1600];
    snprintf(p, sizeof p, "%s.svg", base);
    CHECK(file_exists(p), "%s exists", p);
    snprintf(args, sizeof args, "svg '%s' >/dev/null", p);
    CHECK(run_check(args) == 0, "svg well-formed: %s", p);
    snprintf(p, sizeof p, "%s.png", base);
    size_t n = 0;
    char *d = slurp(p, &n);
    CHECK(d && n > 100 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is a PNG", p);
    deft_free(d);
    if (python_png) {
        snprintf(args, sizeof args, "png '%s' %d %d %d", p, w, h, min_colors);
        CHECK(run_check(args) == 0, "png decodes: %s", p);
    }
}

static void test_plots(const char *samples) {
    char dir[512], base[600];
    snprintf(dir, sizeof dir, "%s/plots", test_tmpdir());
    mkdir(dir, 0755);

    enum { N = 40 };
    double train[N], val[N], acc[N], vacc[N];
    for (int i = 0; i < N; i++) {
        train[i] = 2.3 * exp(-i / 8.0) + 0.05 + 0.02 * sin(i * 1.7);
        val[i] = 2.4 * exp(-i / 9.0) + 0.15 + 0.04 * cos(i * 1.3);
        acc[i] = 1 - 0.9 * exp(-i / 7.0);
        vacc[i] = 0.95 - 0.85 * exp(-i / 8.0) - 0.02 * sin(i);
    }
    val[17] = NAN; /* a gap */
    struct deft_plot_series loss[] = {{"train loss", NULL, train, N}, {"val loss", NULL, val, N}};
    snprintf(base, sizeof base, "%s/loss", dir);
    CHECK_OK(deft_plot_lines(base, "Loss", "epoch", "loss", loss, 2));
    check_plot_files(base, 960, 600, 3, true);
    struct deft_plot_series accs[] = {{"train top1", NULL, acc, N}, {"val top1", NULL, vacc, N}};
    snprintf(base, sizeof base, "%s/accuracy", dir);
    CHECK_OK(deft_plot_lines(base, "Accuracy", "epoch", "top-1", accs, 2));
    check_plot_files(base, 960, 600, 3, false);
    {   /* a text-book loss curve keeps its whole range; one spiking epoch cuts the axis, said in the title */
        char svg[600];
        size_t n = 0;
        snprintf(svg, sizeof svg, "%s/loss.svg", dir);
        char *t = slurp(svg, &n);
        CHECK(t && !memmem(t, n, "axis cut", 8), "a smooth loss curve is not cut");
        deft_free(t);
        double spike[20];
        for (int i = 0; i < 20; i++) spike[i] = 0.5 + 0.3 * exp(-i / 5.0);
        spike[9] = 80;
        struct deft_plot_series sp = {"train loss", NULL, spike, 20};
        snprintf(base, sizeof base, "%s/spike", dir);
        CHECK_OK(deft_plot_lines(base, "Loss", "epoch", "loss", &sp, 1));
        check_plot_files(base, 960, 600, 2, false);
        snprintf(svg, sizeof svg, "%s/spike.svg", dir);
        t = slurp(svg, &n);
        CHECK(t && memmem(t, n, "axis cut at", 11) && !memmem(t, n, ">80<", 4), "one spike cuts the y axis (no tick at 80)");
        deft_free(t);
    }

    /* edge cases: none may fail or crash */
    double one = 0.7, cst[5] = {3, 3, 3, 3, 3}, nan5[5] = {NAN, NAN, NAN, NAN, NAN};
    double wild[6] = {1e300, -1e300, INFINITY, -INFINITY, 0, NAN};
    double tiny[4] = {1 + 1e-13, 1 + 2e-13, 1, 1 + 3e-13};
    double xs[4] = {0.001, 0.002, 0.0035, 0.004};
    double isolated[5] = {1, NAN, 2, NAN, 3};
    double zeros[3] = {0, 0, 0};
    struct {
        const char *name;
        struct deft_plot_series s[2];
        int n;
    } cases[] = {
        {"none", {{0}}, 0},
        {"empty", {{"empty", NULL, NULL, 0}, {"also", NULL, cst, 0}}, 2},
        {"one_point", {{"one", NULL, &one, 1}}, 1},
        {"constant", {{"c", NULL, cst, 5}, {"z", NULL, zeros, 3}}, 2},
        {"all_nan", {{"nan", NULL, nan5, 5}}, 1},
        {"wild", {{"wild", NULL, wild, 6}}, 1},
        {"tiny_range", {{"tiny", xs, tiny, 4}}, 1},
        {"isolated", {{"iso", NULL, isolated, 5}, {NULL, NULL, cst, 5}}, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(base, sizeof base, "%s/edge_%s", dir, cases[i].name);
        CHECK_OK(deft_plot_lines(base, cases[i].name, "x", "y", cases[i].s, cases[i].n));
        check_plot_files(base, 960, 600, 2, i == 2);
    }
    snprintf(base, sizeof base, "%s/edge_notitle", dir);
    CHECK_OK(deft_plot_lines(base, NULL, NULL, NULL, loss, 2));
    check_plot_files(base, 960, 600, 2, false);
    snprintf(base, sizeof base, "%s/edge_xml", dir);
    CHECK_OK(deft_plot_lines(base, "<a & \"b\"> \x01 caf\xc3\xa9 \xff", "x<", "y&", loss, 2));
    check_plot_files(base, 960, 600, 2, false);
    double *bad = NULL;
    struct deft_plot_series badser = {"bad", NULL, bad, 3};
    CHECK(deft_plot_lines(base, "t", NULL, NULL, &badser, 1) == DEFT_ERR_INVALID_ARG, "NULL y refused");

    /* confusion matrices */
    const char *names[] = {"cat", "dog", "horse", "sheep", "cow"};
    int64_t cm[25] = {
        50, 3, 1, 0, 0,  //
        4, 45, 0, 2, 1,  //
        0, 1, 38, 9, 4,  //
        0, 0, 7, 41, 2,  //
        1, 0, 3, 5, 123, //
    };
    snprintf(base, sizeof base, "%s/confusion", dir);
    CHECK_OK(deft_plot_confusion(base, "Confusion matrix", names, 5, cm));
    check_plot_files(base, 0, 0, 5, true);
    int64_t c1 = 7;
    snprintf(base, sizeof base, "%s/confusion_1", dir);
    CHECK_OK(deft_plot_confusion(base, "one class", NULL, 1, &c1));
    check_plot_files(base, 0, 0, 2, false);
    int64_t zeros25[25] = {0};
    snprintf(base, sizeof base, "%s/confusion_zero", dir);
    CHECK_OK(deft_plot_confusion(base, NULL, names, 5, zeros25));
    check_plot_files(base, 0, 0, 2, false);
    const char *odd[] = {"a very very long class name that goes on", "\xc3\xa9t\xc3\xa9", NULL, "x<&>\"y"};
    int64_t c4[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, (int64_t)1 << 40};
    snprintf(base, sizeof base, "%s/confusion_odd", dir);
    CHECK_OK(deft_plot_confusion(base, "odd names", odd, 4, c4));
    check_plot_files(base, 0, 0, 2, false);
    enum { K = 300 };
    int64_t *big = deft_calloc((size_t)K * K, sizeof *big);
    for (int i = 0; i < K; i++) {
        big[(size_t)i * K + i] = 90;
        big[(size_t)i * K + (i * 7 + 3) % K] = 10;
    }
    snprintf(base, sizeof base, "%s/confusion_300", dir);
    CHECK_OK(deft_plot_confusion(base, "300 classes", NULL, K, big));
    check_plot_files(base, 0, 0, 2, false);
    deft_free(big);
    CHECK(deft_plot_confusion(base, "t", names, 0, cm) == DEFT_ERR_INVALID_ARG, "n = 0 refused");
    int64_t neg[1] = {-1};
    CHECK(deft_plot_confusion(base, "t", NULL, 1, neg) == DEFT_ERR_INVALID_ARG, "negative count refused");

    /* atomic writes: no temporaries left, failure leaves nothing */
    CHECK(count_tmp_files(dir) == 0, "no temporary files left in plots/");
    CHECK(deft_plot_lines("/nonexistent/dir/loss", "t", NULL, NULL, loss, 2) == DEFT_ERR_IO, "missing dir -> IO");
    CHECK(deft_plot_confusion("/nonexistent/dir/cm", "t", names, 5, cm) == DEFT_ERR_IO, "missing dir -> IO");

    /* allocation failures in the plotters: errors, no leaks */
    long live0 = deft_alloc_live();
    int failures = 0;
    snprintf(base, sizeof base, "%s/fault", dir);
    for (long k = 1; k < 400; k += 3) {
        deft_alloc_fail_after(k);
        enum deft_status s1 = deft_plot_lines(base, "Loss", "epoch", "loss", loss, 2);
        deft_alloc_fail_after(k);
        enum deft_status s2 = deft_plot_confusion(base, "cm", names, 5, cm);
        deft_alloc_fail_after(0);
        if (s1 || s2) failures++;
    }
    CHECK(failures > 0, "fault injection reached the plotters");
    CHECK(deft_alloc_live() == live0, "no leaks in plotters under allocation failure");
    CHECK(count_tmp_files(dir) == 0, "no temporary files left after failures");

    if (samples) {
        mkdir(samples, 0755);
        snprintf(base, sizeof base, "%s/loss", samples);
        CHECK_OK(deft_plot_lines(base, "Loss", "epoch", "loss", loss, 2));
        snprintf(base, sizeof base, "%s/accuracy", samples);
        CHECK_OK(deft_plot_lines(base, "Accuracy", "epoch", "top-1", accs, 2));
        snprintf(base, sizeof base, "%s/confusion", samples);
        CHECK_OK(deft_plot_confusion(base, "Confusion matrix", names, 5, cm));
        snprintf(base, sizeof base, "%s/edge_one_point", samples);
        CHECK_OK(deft_plot_lines(base, "one point", "x", "y", cases[2].s, 1));
        printf("samples written to %s\n", samples);
    }
}

/* A network input turned back into the picture (TensorBoard's validation
 * images): preprocessing undone for RGB and BGR models, the integer
 * downscale averaging, the grid's size and placement. */
static void test_input_images(void) {
    const int h = 6, w = 8;
    float chw[3 * 6 * 8];
    unsigned char want[6 * 8 * 3];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                unsigned char v = (unsigned char)((x * 29 + y * 41 + c * 83) % 256);
                want[(y * w + x) * 3 + c] = v;
                chw[c * h * w + y * w + x] = v;
            }
    static const enum deft_preprocess_mode modes[] = {DEFT_PREPROCESS_TORCHVISION, DEFT_PREPROCESS_CAFFE,
                                                      DEFT_PREPROCESS_TF};
    for (int m = 0; m < 3; m++) {
        struct deft_preprocess p;
        deft_preprocess_init(&p, modes[m]);
        float x[3 * 6 * 8];
        memcpy(x, chw, sizeof x);
        deft_preprocess_apply(&p, x, h, w);
        struct deft_image im;
        CHECK_OK(deft_image_from_input(x, h, w, &p, 0, &im));
        int worst = 0;
        for (int i = 0; i < h * w * 3; i++) {
            int d = abs((int)im.rgb[i] - (int)want[i]);
            worst = d > worst ? d : worst;
        }
        CHECK(im.w == w && im.h == h && worst <= 1, "input image, mode %d (bgr %d): worst pixel error %d", m, p.bgr,
              worst);
        deft_image_free(&im);
        /* max side 4: averaged 2x2 blocks */
        CHECK_OK(deft_image_from_input(x, h, w, &p, 4, &im));
        double avg = (want[0] + want[3] + want[w * 3] + want[w * 3 + 3]) / 4.0;
        CHECK(im.w == 4 && im.h == 3 && fabs(im.rgb[0] - avg) <= 1.0, "downscaled %dx%d, first pixel %d (want %.1f)",
              im.w, im.h, im.rgb[0], avg);
        deft_image_free(&im);
    }
    struct deft_image a = {2, 3, NULL}, b = {4, 1, NULL}, g;
    a.rgb = calloc(2 * 3 * 3, 1);
    b.rgb = malloc(4 * 1 * 3);
    memset(b.rgb, 200, 12);
    struct deft_image both[2] = {a, b};
    CHECK_OK(deft_image_grid(both, 2, 1, &g));
    /* one column: tiles 4 wide, 3 high, a 2-pixel gap between the rows */
    CHECK(g.w == 4 && g.h == 8 && g.rgb[(5 * 4 + 3) * 3] == 200 && g.rgb[(4 * 4) * 3] == 0,
          "grid %dx%d of a 2x3 and a 4x1 tile", g.w, g.h);
    deft_image_free(&g);
    free(a.rgb);
    free(b.rgb);
}

int main(void) {
    have_python = system("/usr/bin/python3 -c 'import json, csv, zlib, struct, xml.etree.ElementTree' "
                         ">/dev/null 2>&1") == 0;
    if (!have_python) printf("python3 not available: independent checks skipped\n");
    test_crc();
    test_events();
    test_metrics();
    test_plots(getenv("DEFT_REPORT_SAMPLES"));
    test_input_images();
    return test_summary();
}

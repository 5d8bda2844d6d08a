/* test_dataset.c - class-folder datasets: class order (sorted or explicit,
 * classes.txt), file filtering, deterministic sample order, user errors,
 * train/val class agreement, and the shared hymenoptera_256 set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deft_test.h"
#include "deft/data.h"

static char root[512];

static const char *P(const char *name) {
    static char buf[4][768];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
    return buf[k];
}

static int count_label(const struct deft_dataset *ds, int c) {
    int n = 0;
    for (int i = 0; i < ds->num_samples; i++) n += ds->labels[i] == c;
    return n;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int main(void) {
    snprintf(root, sizeof root, "%s/data", test_tmpdir());
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && /usr/bin/python3 '%s/tests/data/make_dataset.py' '%s'", root,
             test_source_dir(), root);
    if (system(cmd) != 0) test_skip("python3 with numpy + PIL is needed to write the test dataset");
    long live0 = deft_alloc_live();

    struct deft_dataset *ds = NULL;
    CHECK_OK(deft_dataset_open(P("ds"), NULL, 0, &ds));
    if (ds) {
        CHECK(ds->num_classes == 3 && !strcmp(ds->classes[0], "alpha") && !strcmp(ds->classes[1], "beta") &&
                  !strcmp(ds->classes[2], "gamma"),
              "sorted class folders");
        CHECK(ds->num_samples == 17, "17 images (txt and hidden files ignored), got %d", ds->num_samples);
        CHECK(count_label(ds, 0) == 5 && count_label(ds, 1) == 5 && count_label(ds, 2) == 7, "per-class counts");
        bool sorted = true;
        for (int i = 1; i < ds->num_samples; i++)
            sorted &= ds->labels[i - 1] < ds->labels[i] ||
                      (ds->labels[i - 1] == ds->labels[i] && strcmp(ds->paths[i - 1], ds->paths[i]) < 0);
        CHECK(sorted, "samples sorted by (class, path)");
        CHECK(ends_with(ds->paths[5], "beta/broken.jpg"), "first beta sample: %s", ds->paths[5]);
        CHECK(ends_with(ds->paths[16], "gamma/sub/deep.png"), "recursive: %s", ds->paths[16]);
    }

    /* explicit order from classes.txt */
    char **names = NULL;
    int nn = 0;
    CHECK_OK(deft_read_class_list(P("classes.txt"), &names, &nn));
    CHECK(nn == 3 && names && !strcmp(names[0], "gamma") && !strcmp(names[1], "alpha") && !strcmp(names[2], "beta"),
          "classes.txt parsed (blank lines, spaces, CR)");
    struct deft_dataset *ds2 = NULL;
    if (nn == 3) {
        CHECK_OK(deft_dataset_open(P("ds"), (const char *const *)names, nn, &ds2));
        if (ds2) {
            CHECK(count_label(ds2, 0) == 7 && count_label(ds2, 1) == 5 && ds2->labels[0] == 0 &&
                      ends_with(ds2->paths[0], "gamma/img_00.jpg"),
                  "explicit order maps gamma to 0");
        }
    }
    /* train/val agreement */
    if (ds && ds2) {
        CHECK(deft_dataset_check_classes(ds, "train", ds, "val") == DEFT_OK, "same lists agree");
        CHECK(deft_dataset_check_classes(ds, "train", ds2, "val") == DEFT_ERR_INVALID_ARG, "order differs");
        CHECK(strstr(deft_last_error(), "different order") != NULL, "order message: %s", deft_last_error());
    }
    const char *sub[] = {"alpha", "beta"};
    struct deft_dataset *ds3 = NULL;
    CHECK_OK(deft_dataset_open(P("ds"), sub, 2, &ds3)); /* gamma ignored with a warning */
    if (ds && ds3) {
        CHECK(ds3->num_samples == 10, "subset of classes: %d", ds3->num_samples);
        CHECK(deft_dataset_check_classes(ds, "train", ds3, "val") == DEFT_ERR_INVALID_ARG, "mismatch detected");
        CHECK(strstr(deft_last_error(), "only in train: [gamma]") != NULL, "mismatch message: %s",
              deft_last_error());
    }
    deft_dataset_free(ds3);
    deft_dataset_free(ds2);
    deft_string_list_free(names, nn);

    /* user errors: DEFT_ERR_INVALID_ARG (exit code 2) with a clear message */
    struct deft_dataset *bad = NULL;
    CHECK(deft_dataset_open(P("missing"), NULL, 0, &bad) == DEFT_ERR_INVALID_ARG && !bad, "missing root");
    CHECK(strstr(deft_last_error(), "does not exist") != NULL, "msg: %s", deft_last_error());
    CHECK(deft_status_exit_code(DEFT_ERR_INVALID_ARG) == 2, "exit code 2");
    CHECK(deft_dataset_open(P("no_classes"), NULL, 0, &bad) == DEFT_ERR_INVALID_ARG, "no classes");
    CHECK(strstr(deft_last_error(), "no class folders") != NULL, "msg: %s", deft_last_error());
    CHECK(deft_dataset_open(P("empty_class"), NULL, 0, &bad) == DEFT_ERR_INVALID_ARG, "empty class folder");
    CHECK(strstr(deft_last_error(), "'b' holds no images") != NULL, "msg: %s", deft_last_error());
    const char *missing_cls[] = {"alpha", "delta"};
    CHECK(deft_dataset_open(P("ds"), missing_cls, 2, &bad) == DEFT_ERR_INVALID_ARG, "listed class missing");
    CHECK(strstr(deft_last_error(), "'delta' does not exist") != NULL, "msg: %s", deft_last_error());
    const char *dup_cls[] = {"alpha", "alpha"};
    CHECK(deft_dataset_open(P("ds"), dup_cls, 2, &bad) == DEFT_ERR_INVALID_ARG, "duplicate class");
    CHECK(deft_read_class_list(P("nope.txt"), &names, &nn) == DEFT_ERR_IO, "missing classes.txt");
    /* allocation failures: every path cleans up */
    for (long k = 1; k < 200; k++) {
        long live = deft_alloc_live();
        deft_alloc_fail_after(k);
        enum deft_status st = deft_dataset_open(P("ds"), NULL, 0, &bad);
        deft_alloc_fail_after(0);
        if (st == DEFT_OK) {
            deft_dataset_free(bad);
            break;
        }
        CHECK(st == DEFT_ERR_NOMEM && !bad, "fault %ld: %s", k, deft_status_str(st));
        CHECK(deft_alloc_live() == live, "fault %ld leaked", k);
    }
    deft_dataset_free(ds);

    /* the shared hymenoptera set */
    const char *shared = test_shared_dir();
    if (shared) {
        char tr[1024], va[1024];
        snprintf(tr, sizeof tr, "%s/data/hymenoptera_256/train", shared);
        snprintf(va, sizeof va, "%s/data/hymenoptera_256/val", shared);
        struct deft_dataset *t = NULL, *v = NULL;
        CHECK_OK(deft_dataset_open(tr, NULL, 0, &t));
        CHECK_OK(deft_dataset_open(va, NULL, 0, &v));
        if (t && v) {
            CHECK(t->num_classes == 2 && !strcmp(t->classes[0], "ants") && !strcmp(t->classes[1], "bees"),
                  "hymenoptera classes [ants, bees]");
            CHECK(count_label(t, 0) == 123 && count_label(t, 1) == 121, "train counts %d/%d", count_label(t, 0),
                  count_label(t, 1));
            CHECK(count_label(v, 0) == 70 && count_label(v, 1) == 83, "val counts %d/%d", count_label(v, 0),
                  count_label(v, 1));
            CHECK_OK(deft_dataset_check_classes(t, "train", v, "val"));
        }
        deft_dataset_free(t);
        deft_dataset_free(v);
    } else {
        test_skip_part("../shared not found: the hymenoptera_256 checks are not run");
    }
    CHECK(deft_alloc_live() == live0, "leaked %ld blocks", deft_alloc_live() - live0);
    return test_summary();
}

/* test_det_readers.c - the KITTI, COCO and VOC readers on small generated
 * files, one rule at a time (detection.md §1: mapping, case, difficult,
 * degenerate / clipped / tiny boxes, bad lines with file:line, background
 * images, split lists), the writers' exact round trip, KITTI predictions
 * and the validator's findings. Expected values follow from how each input
 * is built; the real-data cross-check against Python is
 * tests/cli/test_det_dataset.sh. */
#include <string.h>
#include <sys/stat.h>
#include "deft_test.h"
#include "deft/det_data.h"

static char dir[512];

static void put(const char *rel, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "wb");
    if (!f) {
        printf("cannot write %s\n", p);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void mk(const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    mkdir(p, 0777);
}

static const char *path(const char *rel) {
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, rel);
    return p[k];
}

/* A w x h 24-bit BMP (gray pixels): the readers only probe its header. */
static void put_bmp(const char *rel, int w, int h) {
    int row = (w * 3 + 3) & ~3;
    uint32_t size = 54 + (uint32_t)(row * h);
    uint8_t hd[54] = {'B', 'M'};
    memcpy(hd + 2, &size, 4);
    uint32_t off = 54, dib = 40, img = (uint32_t)(row * h);
    int32_t W = w, H = h;
    uint16_t planes = 1, bpp = 24;
    memcpy(hd + 10, &off, 4);
    memcpy(hd + 14, &dib, 4);
    memcpy(hd + 18, &W, 4);
    memcpy(hd + 22, &H, 4);
    memcpy(hd + 26, &planes, 2);
    memcpy(hd + 28, &bpp, 2);
    memcpy(hd + 34, &img, 4);
    FILE *f = fopen(path(rel), "wb");
    fwrite(hd, 1, 54, f);
    uint8_t *px = calloc(1, (size_t)row * h);
    memset(px, 128, (size_t)row * h);
    fwrite(px, 1, (size_t)row * h, f);
    free(px);
    fclose(f);
}

static const struct deft_det_sample *find(const struct deft_det_dataset *d, const char *stem) {
    char b[256];
    for (int i = 0; i < d->n; i++)
        if (!strcmp(deft_det_sample_stem(&d->samples[i], b, sizeof b), stem)) return &d->samples[i];
    return NULL;
}

static int cls(const struct deft_det_dataset *d, const char *name) {
    for (int i = 0; i < d->n_classes; i++)
        if (!strcmp(d->class_names[i], name)) return i;
    return -1;
}

/* ---- KITTI rules ---------------------------------------------------------------- */

static void test_kitti_mapping_and_case(void) {
    const char *txt = "Car 0.00 0 0.00 10 10 50 40 0 0 0 0 0 0 0\n"
                      "van 0.00 0 0.00 10 10 50 40 0 0 0 0 0 0 0\n"
                      "\n"
                      "CAR 0.00 2 0.00 10 10 50 40 0 0 0 0 0 0 0\n"
                      "pedestrian 0.00 0 0.00 10 10 50 40 0 0 0 0 0 0 0\n"
                      "Cyclist 0.00 0 0.00 10 10 50 40 0 0 0\n";
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    struct deft_det_dataset d;
    /* no mapping: sorted lower-cased names found */
    CHECK_OK(deft_det_parse(DEFT_DET_KITTI, txt, strlen(txt), "a.txt", &o, &d));
    CHECK(d.n_classes == 4 && !strcmp(d.class_names[0], "car") && !strcmp(d.class_names[1], "cyclist") &&
              !strcmp(d.class_names[2], "pedestrian") && !strcmp(d.class_names[3], "van"),
          "classes = sorted lower-cased names (got %d)", d.n_classes);
    CHECK(d.n == 1 && d.samples[0].n_boxes == 5, "5 boxes");
    CHECK(d.samples[0].boxes[0].cls == 0 && d.samples[0].boxes[2].cls == 0, "Car and CAR are one class");
    CHECK(!d.samples[0].boxes[0].difficult && d.samples[0].boxes[2].difficult, "occluded 2 -> difficult");
    CHECK(d.stats.difficult == 1, "one difficult box");
    deft_det_dataset_free(&d);

    /* mapping: several sources -> one target, case-insensitive keys, the rest unmapped */
    struct deft_det_class_map map[] = {{"CAR", "Vehicle"}, {"van", "vehicle"}, {"cyclist", "Rider"}};
    o.mapping = map;
    o.n_mapping = 3;
    CHECK_OK(deft_det_parse(DEFT_DET_KITTI, txt, strlen(txt), "a.txt", &o, &d));
    CHECK(d.n_classes == 2 && !strcmp(d.class_names[0], "rider") && !strcmp(d.class_names[1], "vehicle"),
          "classes = sorted lower-cased targets");
    CHECK(d.samples[0].n_boxes == 4 && d.stats.unmapped == 1, "pedestrian unmapped (%lld)",
          (long long)d.stats.unmapped);
    int v = cls(&d, "vehicle");
    int nv = 0;
    for (int i = 0; i < d.samples[0].n_boxes; i++) nv += d.samples[0].boxes[i].cls == v;
    CHECK(nv == 3, "Car, van, CAR -> vehicle (%d)", nv);
    deft_det_dataset_free(&d);

    /* a source mapped to two targets is a usage error */
    struct deft_det_class_map bad[] = {{"car", "a"}, {"Car", "b"}};
    o.mapping = bad;
    o.n_mapping = 2;
    CHECK(deft_det_parse(DEFT_DET_KITTI, txt, strlen(txt), "a.txt", &o, &d) == DEFT_ERR_INVALID_ARG,
          "conflicting mapping refused");
    deft_det_dataset_free(&d);
}

static void test_kitti_bad_lines(void) {
    const char *txt = "car 0 0 0 1 2 30 40 0 0 0 0 0 0 0\n"
                      "car 0 0 0 1 2 30\n"
                      "traffic light 0 0 0 1 2 30 40 0 0 0 0 0 0 0\n"
                      "car 0 0 0 1 2 nan 40 0 0 0 0 0 0 0\n"
                      "car 0 0 0 5 6 70 80 0 0 0 0 0 0 0\n";
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    struct deft_det_dataset d;
    enum deft_status st = deft_det_parse(DEFT_DET_KITTI, txt, strlen(txt), "lab/b.txt", &o, &d);
    CHECK(st == DEFT_ERR_FORMAT, "malformed line stops: %s", deft_status_str(st));
    CHECK(strstr(deft_last_error(), "lab/b.txt:2:") != NULL, "message names file:line: %s",
          deft_last_error());
    deft_det_dataset_free(&d);
    o.skip_bad_lines = true;
    CHECK_OK(deft_det_parse(DEFT_DET_KITTI, txt, strlen(txt), "lab/b.txt", &o, &d));
    CHECK(d.stats.bad_lines == 3 && d.stats.boxes == 2, "3 bad lines skipped, 2 boxes kept (%lld, %lld)",
          (long long)d.stats.bad_lines, (long long)d.stats.boxes);
    deft_det_dataset_free(&d);
    /* the space in "traffic light" is reported as what it probably is */
    o.skip_bad_lines = false;
    const char *t3 = "traffic light 0 0 0 1 2 30 40 0 0 0 0 0 0 0\n";
    CHECK(deft_det_parse(DEFT_DET_KITTI, t3, strlen(t3), "c.txt", &o, &d) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "c.txt:1:") && strstr(deft_last_error(), "space"),
          "class name with a space: %s", deft_last_error());
    deft_det_dataset_free(&d);
    /* with_score: the 16th field is required and read */
    o.with_score = true;
    const char *p = "car 0 0 0 1 2 30 40 0 0 0 0 0 0 0 0.75\ncar 0 0 0 1 2 30 40 0 0 0 0 0 0 0\n";
    CHECK(deft_det_parse(DEFT_DET_KITTI, p, strlen(p), "p.txt", &o, &d) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "p.txt:2:"), "missing score: %s", deft_last_error());
    deft_det_dataset_free(&d);
    CHECK_OK(deft_det_parse(DEFT_DET_KITTI, p, 38, "p.txt", &o, &d));
    CHECK(d.n == 1 && d.samples[0].n_boxes == 1 && d.samples[0].boxes[0].score == 0.75f, "score read");
    deft_det_dataset_free(&d);
}

/* Clipping and dropping need the image size: a real directory with BMPs. */
static void test_kitti_dirs(void) {
    mk("k");
    mk("k/img");
    mk("k/lab");
    put_bmp("k/img/a.bmp", 100, 80);
    put_bmp("k/img/b.bmp", 2000, 8);
    put_bmp("k/img/c.bmp", 50, 50); /* no label file: a background image */
    put("k/lab/a.txt",
        "car 0 0 0 -5 10 50 90 0 0 0 0 0 0 0\n"     /* clipped to (0,10,50,80) */
        "car 0 0 0 10.2 10 10.9 40 0 0 0 0 0 0 0\n" /* int(x1) == int(x2): dropped */
        "car 0 0 0 20 30 60 30.5 0 0 0 0 0 0 0\n"   /* int(y1) == int(y2): dropped */
        "car 0 0 0 120 10 150 40 0 0 0 0 0 0 0\n"   /* outside: clipped to zero width, dropped */
        "car 0 1 0 10 10 20 20 0 0 0 0 0 0 0\n");   /* kept, difficult */
    put("k/lab/b.txt", "car 0 0 0 9.9 1 11 7 0 0 0 0 0 0 0\n" /* 1.1/2000 <= 1e-3: dropped */
                       "car 0 0 0 100 1 200 7 0 0 0 0 0 0 0\n");
    put("k/lab/orphan.txt", "car 0 0 0 1 1 5 5 0 0 0 0 0 0 0\n"); /* no image: not a sample */
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    struct deft_det_source src = {DEFT_DET_KITTI, path("k/img"), path("k/lab"), NULL};
    struct deft_det_dataset d;
    CHECK_OK(deft_det_read(&src, 1, &o, &d));
    CHECK(d.n == 3 && d.stats.images == 3 && d.stats.background_images == 1, "3 images, 1 background");
    const struct deft_det_sample *a = find(&d, "a"), *b = find(&d, "b"), *c = find(&d, "c");
    CHECK(a && b && c, "samples a b c");
    if (a && b && c) {
        CHECK(a->width == 100 && a->height == 80, "size probed %dx%d", a->width, a->height);
        CHECK(a->n_boxes == 2, "a keeps 2 boxes (%d)", a->n_boxes);
        CHECK(a->boxes[0].x1 == 0 && a->boxes[0].y1 == 10 && a->boxes[0].x2 == 50 && a->boxes[0].y2 == 80,
              "clipped box (%g %g %g %g)", a->boxes[0].x1, a->boxes[0].y1, a->boxes[0].x2, a->boxes[0].y2);
        CHECK(a->n_boxes == 2 && a->boxes[1].difficult, "difficult kept and flagged");
        CHECK(b->n_boxes == 1 && b->boxes[0].x1 == 100, "tiny normalised box dropped");
        CHECK(c->n_boxes == 0 && c->label == NULL, "background image");
    }
    CHECK(d.stats.clipped == 2, "clipped counted (%lld)", (long long)d.stats.clipped);
    CHECK(d.stats.dropped_small == 4, "dropped counted (%lld)", (long long)d.stats.dropped_small);
    deft_det_dataset_free(&d);

    /* split list: stems selected, comments/blank lines skipped, missing image = list:line */
    put("k/list.txt", "# train\nc\n\na\n");
    src.split = path("k/list.txt");
    CHECK_OK(deft_det_read(&src, 1, &o, &d));
    CHECK(d.n == 2 && find(&d, "a") && find(&d, "c") && !find(&d, "b"), "split selects a and c");
    deft_det_dataset_free(&d);
    put("k/list2.txt", "a\nmissing\n");
    src.split = path("k/list2.txt");
    CHECK(deft_det_read(&src, 1, &o, &d) == DEFT_ERR_NOT_FOUND &&
              strstr(deft_last_error(), "list2.txt:2:"), "missing image named with list:line: %s",
          deft_last_error());
    deft_det_dataset_free(&d);

    /* two sources appended; image_extension filters the images */
    char *img = strdup(path("k/img")), *lab = strdup(path("k/lab")), *lst = strdup(path("k/list.txt"));
    struct deft_det_source two[2] = {{DEFT_DET_KITTI, img, lab, NULL}, {DEFT_DET_KITTI, img, lab, lst}};
    CHECK_OK(deft_det_read(two, 2, &o, &d));
    CHECK(d.n == 5, "appended 3 + 2 samples (%d)", d.n);
    deft_det_dataset_free(&d);
    o.image_extension = "png";
    src = two[0];
    CHECK_OK(deft_det_read(&src, 1, &o, &d));
    CHECK(d.n == 0, "no .png images");
    deft_det_dataset_free(&d);
    free(img);
    free(lab);
    free(lst);
}

/* ---- COCO ----------------------------------------------------------------------- */

static void test_coco(void) {
    const char *js =
        "{\"images\": [{\"id\": 7, \"file_name\": \"x.jpg\", \"width\": 100, \"height\": 50},"
        "              {\"id\": 3, \"file_name\": \"y.jpg\", \"width\": 10, \"height\": 10}],"
        " \"categories\": [{\"id\": 2, \"name\": \"Dog\"}, {\"id\": 1, \"name\": \"cat\"}],"
        " \"annotations\": [{\"image_id\": 7, \"category_id\": 2, \"bbox\": [10, 5, 20.5, 30], \"iscrowd\": 1},"
        "                   {\"image_id\": 7, \"category_id\": 1, \"bbox\": [90, 0, 20, 10], \"iscrowd\": 0}]}";
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    struct deft_det_dataset d;
    CHECK_OK(deft_det_parse(DEFT_DET_COCO, js, strlen(js), "ann.json", &o, &d));
    CHECK(d.n == 2 && d.n_classes == 2 && !strcmp(d.class_names[0], "cat") &&
              !strcmp(d.class_names[1], "dog"), "COCO classes");
    const struct deft_det_sample *x = find(&d, "x"), *y = find(&d, "y");
    CHECK(x && y && x->n_boxes == 2 && y->n_boxes == 0, "boxes per image");
    if (x && x->n_boxes == 2) {
        CHECK(x->boxes[0].difficult && x->boxes[0].cls == 1 && x->boxes[0].x2 == 30.5f &&
                  x->boxes[0].y2 == 35, "iscrowd -> difficult, xywh -> xyxy");
        CHECK(!x->boxes[1].difficult && x->boxes[1].x2 == 100, "clipped to the declared width");
    }
    CHECK(d.stats.clipped == 1, "one clipped");
    deft_det_dataset_free(&d);
    const char *bad = "{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"categories\": "
                      "[{\"id\": 1, \"name\": \"a\"}], \"annotations\": [{\"image_id\": 1, "
                      "\"category_id\": 1, \"bbox\": [0, 0, 5, 5]}, {\"image_id\": 9, "
                      "\"category_id\": 1, \"bbox\": [0, 0, 5, 5]}]}";
    CHECK(deft_det_parse(DEFT_DET_COCO, bad, strlen(bad), "ann.json", &o, &d) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "annotations[1]"), "unknown image id: %s", deft_last_error());
    deft_det_dataset_free(&d);
    o.skip_bad_lines = true;
    CHECK_OK(deft_det_parse(DEFT_DET_COCO, bad, strlen(bad), "ann.json", &o, &d));
    CHECK(d.stats.bad_lines == 1 && d.stats.boxes == 1, "skipped annotation counted");
    deft_det_dataset_free(&d);
    o.skip_bad_lines = false;
    CHECK(deft_det_parse(DEFT_DET_COCO, "{\"images\": [", 12, "t.json", &o, &d) == DEFT_ERR_FORMAT,
          "truncated JSON");
    deft_det_dataset_free(&d);
}

/* ---- VOC ------------------------------------------------------------------------ */

static void test_voc(void) {
    const char *xml = "<annotation>\n  <filename>v.jpg</filename>\n"
                      "  <size><width>64</width><height>48</height><depth>3</depth></size>\n"
                      "  <object><name>Cat</name><difficult>1</difficult>\n"
                      "    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30.5</xmax><ymax>40</ymax></bndbox>\n"
                      "  </object>\n"
                      "  <object><name>dog</name>\n"
                      "    <bndbox><xmin>10</xmin><ymin>2</ymin><xmax>70</xmax><ymax>40</ymax></bndbox>\n"
                      "  </object>\n</annotation>\n";
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    struct deft_det_dataset d;
    CHECK_OK(deft_det_parse(DEFT_DET_VOC, xml, strlen(xml), "v.xml", &o, &d));
    CHECK(d.n == 1 && d.samples[0].n_boxes == 2 && d.samples[0].width == 64, "VOC sample");
    if (d.n == 1 && d.samples[0].n_boxes == 2) {
        CHECK(d.samples[0].boxes[0].difficult && !d.samples[0].boxes[1].difficult, "<difficult>");
        CHECK(d.samples[0].boxes[0].x2 == 30.5f && d.samples[0].boxes[1].x2 == 64, "box, clipped");
        CHECK(!strcmp(d.class_names[d.samples[0].boxes[0].cls], "cat"), "lower-cased");
    }
    deft_det_dataset_free(&d);
    const char *broken = "<annotation>\n<object><name>a</name>\n<bndbox><xmin>1</xmin>\n</object>\n";
    CHECK(deft_det_parse(DEFT_DET_VOC, broken, strlen(broken), "w.xml", &o, &d) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "w.xml:"), "malformed XML: %s", deft_last_error());
    deft_det_dataset_free(&d);
    const char *nobox = "<annotation>\n<object>\n<name>a</name>\n<bndbox><xmin>1</xmin><ymin>x</ymin>"
                        "<xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>";
    CHECK(deft_det_parse(DEFT_DET_VOC, nobox, strlen(nobox), "n.xml", &o, &d) == DEFT_ERR_FORMAT &&
              strstr(deft_last_error(), "n.xml:4:") && strstr(deft_last_error(), "ymin"),
          "bad number with line: %s", deft_last_error());
    deft_det_dataset_free(&d);
    const char *dtd = "<!DOCTYPE a [<!ENTITY x \"y\">]><annotation></annotation>";
    CHECK(deft_det_parse(DEFT_DET_VOC, dtd, strlen(dtd), "d.xml", &o, &d) == DEFT_ERR_FORMAT,
          "DTD refused");
    deft_det_dataset_free(&d);
}

/* ---- writers -------------------------------------------------------------------- */

static bool same(const struct deft_det_dataset *a, const struct deft_det_dataset *b) {
    if (a->n != b->n || a->n_classes != b->n_classes) return false;
    for (int c = 0; c < a->n_classes; c++)
        if (strcmp(a->class_names[c], b->class_names[c])) return false;
    for (int i = 0; i < a->n; i++) {
        const struct deft_det_sample *s = &a->samples[i], *t = &b->samples[i];
        if (s->n_boxes != t->n_boxes || s->width != t->width || s->height != t->height) return false;
        for (int k = 0; k < s->n_boxes; k++) {
            const struct deft_box *p = &s->boxes[k], *q = &t->boxes[k];
            if (p->x1 != q->x1 || p->y1 != q->y1 || p->x2 != q->x2 || p->y2 != q->y2 ||
                p->cls != q->cls || p->difficult != q->difficult)
                return false;
        }
    }
    return true;
}

static void test_round_trip(void) {
    mk("r");
    mk("r/img");
    mk("r/lab");
    put_bmp("r/img/p.bmp", 300, 200);
    put_bmp("r/img/q.bmp", 64, 64);
    put_bmp("r/img/e.bmp", 16, 16);
    /* awkward floats: thirds, many digits, tiny and large values, names with case */
    put("r/lab/p.txt", "Car 0.50 1 0.1 0.3333333 1.1 299.99 199.123456 1 2 3 4 5 6 7\n"
                       "car 0 0 0 12.345 0.1 13.5 0.30000001 0 0 0 0 0 0 0\n"
                       "Truck 0 3 0 1e-5 2 250 3.0000002 0 0 0 0 0 0 0\n");
    put("r/lab/q.txt", "Truck 0 0 0 0 0 64 64 0 0 0 0 0 0 0\n");
    put("r/lab/e.txt", "");
    struct deft_det_read_opts o;
    deft_det_read_opts_init(&o);
    o.raw = true;
    struct deft_det_source k0 = {DEFT_DET_KITTI, path("r/img"), path("r/lab"), NULL};
    struct deft_det_dataset a, b, c, e;
    CHECK_OK(deft_det_read(&k0, 1, &o, &a));
    CHECK(a.n_classes == 3 && !strcmp(a.class_names[0], "Car"), "raw keeps names as written");
    CHECK_OK(deft_det_write(DEFT_DET_COCO, &a, path("r/out/x.json")));
    struct deft_det_source s1 = {DEFT_DET_COCO, NULL, path("r/out/x.json"), NULL};
    CHECK_OK(deft_det_read(&s1, 1, &o, &b));
    CHECK(same(&a, &b), "KITTI -> COCO exact");
    CHECK_OK(deft_det_write(DEFT_DET_VOC, &b, path("r/out/voc")));
    struct deft_det_source s2 = {DEFT_DET_VOC, NULL, path("r/out/voc"), NULL};
    CHECK_OK(deft_det_read(&s2, 1, &o, &c));
    CHECK(same(&a, &c), "COCO -> VOC exact");
    CHECK_OK(deft_det_write(DEFT_DET_KITTI, &c, path("r/out/kitti")));
    struct deft_det_source s3 = {DEFT_DET_KITTI, path("r/img"), path("r/out/kitti"), NULL};
    CHECK_OK(deft_det_read(&s3, 1, &o, &e));
    CHECK(same(&a, &e), "VOC -> KITTI exact");
    deft_det_dataset_free(&a);
    deft_det_dataset_free(&b);
    deft_det_dataset_free(&c);
    deft_det_dataset_free(&e);

    /* KITTI predictions: 16 fields, read back with with_score */
    const char *names[] = {"car", "truck"};
    struct deft_box boxes[2] = {{1.5f, 2, 30, 40, 1, false, 0.912345f}, {0, 0, 10, 10, 0, false, 1e-4f}};
    CHECK_OK(deft_det_write_kitti_predictions(path("r/pred.txt"), boxes, 2, names, 2));
    o.raw = false;
    o.with_score = true;
    void *buf = NULL;
    FILE *f = fopen(path("r/pred.txt"), "rb");
    char text[1024] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = 0;
    (void)buf;
    CHECK_OK(deft_det_parse(DEFT_DET_KITTI, text, n, "pred.txt", &o, &a));
    CHECK(a.n == 1 && a.samples[0].n_boxes == 2 && a.samples[0].boxes[0].score == 0.912345f &&
              a.samples[0].boxes[1].score == 1e-4f && a.samples[0].boxes[0].x1 == 1.5f,
          "predictions read back exactly");
    deft_det_dataset_free(&a);
    /* COCO needs sizes: KITTI without images is refused with a hint */
    o.with_score = false;
    o.raw = true;
    struct deft_det_source ni = {DEFT_DET_KITTI, NULL, path("r/lab"), NULL};
    CHECK_OK(deft_det_read(&ni, 1, &o, &a));
    CHECK(deft_det_write(DEFT_DET_COCO, &a, path("r/out/y.json")) == DEFT_ERR_INVALID_ARG &&
              strstr(deft_last_error(), "image directory"), "size needed: %s", deft_last_error());
    deft_det_dataset_free(&a);
}

/* ---- validation ------------------------------------------------------------------- */

static bool has(const struct deft_det_report *r, const char *kind, const char *file_end, int line) {
    for (int i = 0; i < r->n_findings; i++) {
        const struct deft_det_finding *f = &r->findings[i];
        size_t l = strlen(f->file), e = strlen(file_end);
        if (!strcmp(f->kind, kind) && l >= e && !strcmp(f->file + l - e, file_end) && f->line == line)
            return true;
    }
    return false;
}

static void test_validate(void) {
    mk("v");
    mk("v/img");
    mk("v/lab");
    put_bmp("v/img/a.bmp", 100, 100);
    put_bmp("v/img/bg.bmp", 10, 10);
    put("v/lab/a.txt", "RBC 0 0 0 10 10 50 50 0 0 0 0 0 0 0\n"
                       "rbc 0 0 0 10 10 10 50 0 0 0 0 0 0 0\n"
                       "RBC 0 0 0 90 10 120 50 0 0 0 0 0 0 0\n"
                       "RBC 0 0 0 10 10\n"
                       "RBC 0 0 0 10.1 10 10.9 50 0 0 0 0 0 0 0\n");
    put("v/lab/lonely.txt", "WBC 0 0 0 1 1 5 5 0 0 0 0 0 0 0\n");
    struct deft_det_source src = {DEFT_DET_KITTI, path("v/img"), path("v/lab"), NULL};
    struct deft_det_report *r = NULL;
    CHECK_OK(deft_det_validate(&src, &r));
    if (!r) return;
    CHECK(has(r, "zero_area", "a.txt", 2), "zero area at a.txt:2");
    CHECK(has(r, "outside_image", "a.txt", 3), "outside at a.txt:3");
    CHECK(has(r, "malformed", "a.txt", 4), "malformed at a.txt:4");
    CHECK(has(r, "tao_drops", "a.txt", 5), "TAO drop at a.txt:5");
    CHECK(has(r, "case_clash", "a.txt", 2), "case clash at a.txt:2 (first 'rbc')");
    CHECK(has(r, "label_without_image", "lonely.txt", 0), "label without image");
    CHECK(has(r, "image_without_label", "bg.bmp", 0), "image without label");
    CHECK(r->n_classes == 3 && r->n_boxes == 5, "classes RBC rbc WBC, 5 boxes (%d, %lld)", r->n_classes,
          (long long)r->n_boxes);
    CHECK_OK(deft_det_report_write_json(r, path("v/out/report.json")));
    CHECK_OK(deft_det_report_plot(r, path("v/out/sizes")));
    struct stat st;
    CHECK(stat(path("v/out/sizes.svg"), &st) == 0 && stat(path("v/out/sizes.png"), &st) == 0, "plot");
    deft_det_report_free(r);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    long live = deft_alloc_live();
    deft_log_set_level(DEFT_LOG_ERROR);
    test_kitti_mapping_and_case();
    test_kitti_bad_lines();
    test_kitti_dirs();
    test_coco();
    test_voc();
    test_round_trip();
    test_validate();
    CHECK(deft_alloc_live() == live, "no leaked deft allocations (%ld)", deft_alloc_live() - live);
    return test_summary();
}

/* test_pth.c - PyTorch checkpoint reader (deft_pth_read / deft_weights_read),
 * cross-checked against real torch.save files written at test time by
 * /usr/bin/python3 + torch:
 *   - a dict of every dtype, non-contiguous views, shared storages with
 *     offsets, stride-0 expansions, 0-d and empty tensors, a Parameter:
 *     every tensor byte-identical (zip and legacy formats);
 *   - torchvision resnet18's state_dict (122 tensors), zip and legacy;
 *   - a checkpoint {"epoch", "state_dict", "optimizer"} and DataParallel
 *     "module." names;
 *   - hostile files: os.system / builtins.eval via __reduce__ (refused by
 *     name, nothing executed), a pickled nn.Module, a TorchScript archive;
 *     truncations at many offsets and 200 random byte flips of both formats:
 *     errors, no crash, no leak;
 *   - format detection (safetensors, HDF5, ONNX-like, junk) and, when the CLI
 *     has it, `deft model import`. */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "deft_test.h"
#include "deft/io.h"
#include "io/pth_impl.h"

static char path_buf[4][512];
static int path_i;
static const char *tmp_path(const char *name) {
    char *b = path_buf[path_i++ & 3];
    snprintf(b, 512, "%s/%s", test_tmpdir(), name);
    return b;
}

static const char *py_script =
    "import os, sys, collections, torch, torchvision\n"
    "out = sys.argv[1]\n"
    "torch.manual_seed(0)\n"
    "def man(stem, sd):\n"
    "    off = 0\n"
    "    with open(os.path.join(out, stem + '.bin'), 'wb') as fb, open(os.path.join(out, stem + '.txt'), 'w') as fm:\n"
    "        for k, t in sd.items():\n"
    "            c = t.detach().contiguous()\n"
    "            dt = {torch.float32: 'f32', torch.float64: 'f64', torch.float16: 'f16', torch.bfloat16: 'bf16',\n"
    "                  torch.int64: 'i64', torch.int32: 'i32', torch.int16: 'i32', torch.int8: 'i8',\n"
    "                  torch.uint8: 'u8', torch.bool: 'u8'}[c.dtype]\n"
    "            if c.dtype == torch.bfloat16: raw = c.view(torch.int16).numpy().tobytes()\n"
    "            elif c.dtype == torch.bool: raw = c.to(torch.uint8).numpy().tobytes()\n"
    "            elif c.dtype == torch.int16: raw = c.to(torch.int32).numpy().tobytes()\n"
    "            else: raw = c.numpy().tobytes()\n"
    "            fm.write('%s %s %d %d %d %s\\n' % (k, dt, off, len(raw), c.dim(), ' '.join(str(d) for d in c.shape)))\n"
    "            fb.write(raw); off += len(raw)\n"
    "def save(name, obj, legacy=False):\n"
    "    torch.save(obj, os.path.join(out, name), _use_new_zipfile_serialization=not legacy)\n"
    "base = torch.arange(20, dtype=torch.float32)\n"
    "m = torch.randn(3, 5)\n"
    "sd = collections.OrderedDict()\n"
    "sd['f32'] = torch.randn(3, 4)\n"
    "sd['f64'] = torch.randn(2, 3, dtype=torch.float64)\n"
    "sd['f16'] = torch.randn(5).half()\n"
    "sd['bf16'] = torch.randn(4).bfloat16()\n"
    "sd['i64'] = torch.tensor([1, -2, 3**30], dtype=torch.int64)\n"
    "sd['i32'] = torch.tensor([7, -8], dtype=torch.int32)\n"
    "sd['i16'] = torch.tensor([-300, 5], dtype=torch.int16)\n"
    "sd['i8'] = torch.tensor([-5, 6], dtype=torch.int8)\n"
    "sd['u8'] = torch.tensor([250, 3], dtype=torch.uint8)\n"
    "sd['bool'] = torch.tensor([True, False, True])\n"
    "sd['transposed'] = m.t()\n"
    "sd['strided'] = m[:, ::2]\n"
    "sd['shared_a'] = base[5:10]\n"
    "sd['shared_b'] = base[2:8].view(2, 3)\n"
    "sd['scalar'] = torch.tensor(3.5)\n"
    "sd['num_batches_tracked'] = torch.tensor(7)\n"
    "sd['empty'] = torch.zeros(0, 3)\n"
    "sd['expanded'] = torch.arange(3.).expand(4, 3)\n"
    "sd['nd6'] = torch.randn(1, 2, 1, 2, 1, 2)\n"
    "sd['param'] = torch.nn.Parameter(torch.randn(2, 2))\n"
    "save('tensors.pt', sd); save('tensors_legacy.pt', sd, True); man('tensors', sd)\n"
    "net = torchvision.models.resnet18()\n"
    "rs = collections.OrderedDict((k, v.clone()) for k, v in net.state_dict().items())\n"
    "save('resnet18.pt', rs); save('resnet18_legacy.pt', rs, True); man('resnet18', rs)\n"
    "opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)\n"
    "net(torch.randn(1, 3, 64, 64)).sum().backward(); opt.step()\n"
    "small = collections.OrderedDict((k, rs[k]) for k in list(rs)[:5])\n"
    "save('ckpt.pt', {'epoch': 3, 'best': 0.5, 'arch': 'resnet18', 'state_dict': small,\n"
    "                 'optimizer': opt.state_dict(), 'flags': [None, True, (1, 2.5)]})\n"
    "save('ckpt_legacy.pt', {'epoch': 3, 'model': {'state_dict': small}}, True)\n"
    "save('dp.pt', collections.OrderedDict(('module.' + k, v) for k, v in small.items()))\n"
    "save('dp_resnet18.pt', {'state_dict': collections.OrderedDict(('module.' + k, v) for k, v in rs.items())})\n"
    "marker = os.path.join(out, 'PWNED')\n"
    "class Evil:\n"
    "    def __reduce__(self): return (os.system, ('touch ' + marker,))\n"
    "class Evil2:\n"
    "    def __reduce__(self): return (eval, ('open(%r, \"w\")' % marker,))\n"
    "save('evil.pt', {'x': torch.zeros(2), 'y': Evil()})\n"
    "save('evil_legacy.pt', {'y': Evil()}, True)\n"
    "save('evil_eval.pt', Evil2())\n"
    "save('module.pt', torch.nn.Linear(2, 2))\n"
    "torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(out, 'script.pt'))\n"
    "save('single.pt', torch.zeros(3))\n"
    "save('r18_10.pt', {'model': torchvision.models.resnet18(num_classes=10).state_dict()})\n"
    "# handcrafted archives: tensors that lie about their storage\n"
    "import pickle, zipfile, io, struct, torch._utils\n"
    "class St:\n"
    "    def __init__(s, key, numel): s.key, s.numel = key, numel\n"
    "class T:\n"
    "    def __init__(s, st, off, size, stride): s.a = (st, off, size, stride)\n"
    "    def __reduce__(s): return (torch._utils._rebuild_tensor_v2, s.a + (False, collections.OrderedDict()))\n"
    "class P(pickle.Pickler):\n"
    "    def persistent_id(s, o):\n"
    "        return ('storage', torch.FloatStorage, o.key, 'cpu', o.numel) if isinstance(o, St) else None\n"
    "def craft(name, t, nbytes, method=zipfile.ZIP_STORED):\n"
    "    b = io.BytesIO(); P(b, protocol=2).dump(collections.OrderedDict([('w', t)]))\n"
    "    with zipfile.ZipFile(os.path.join(out, name), 'w') as z:\n"
    "        z.writestr('x/data.pkl', b.getvalue())\n"
    "        z.writestr(zipfile.ZipInfo('x/data/0'), struct.pack('<%df' % (nbytes // 4), *range(nbytes // 4)), compress_type=method)\n"
    "craft('h_good.pt', T(St('0', 6), 1, (2, 2), (1, 2)), 24)\n"
    "craft('h_oob.pt', T(St('0', 4), 2, (3,), (1,)), 16)\n"
    "craft('h_huge.pt', T(St('0', 1), 0, (1 << 20, 1 << 20), (0, 0)), 4)\n"
    "craft('h_claim.pt', T(St('0', 100), 0, (2,), (1,)), 16)\n"
    "craft('h_missing.pt', T(St('7', 4), 0, (2,), (1,)), 16)\n"
    "craft('h_deflate.pt', T(St('0', 4), 0, (2,), (1,)), 16, zipfile.ZIP_DEFLATED)\n"
    "craft('h_overflow.pt', T(St('0', 4), 1 << 62, (1 << 40, 1 << 40), (1 << 40, 1 << 40)), 16)\n"
    "with zipfile.ZipFile(os.path.join(out, 'h_nested.pt'), 'w') as z:\n"
    "    z.writestr('x/data.pkl', b'\\x80\\x02' + b'(' * 100000 + b']' * 100000 + b'.')\n"
    "with zipfile.ZipFile(os.path.join(out, 'h_deep.pt'), 'w') as z:\n"
    "    z.writestr('x/data.pkl', b'\\x80\\x02' + b'(' * 1100000 + b'.')\n";

static bool gen_files(void) {
    const char *script = tmp_path("gen.py");
    FILE *f = fopen(script, "w");
    if (!f) return false;
    fputs(py_script, f);
    fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, test_tmpdir());
    return system(cmd) == 0;
}

/* Compare st with the manifest <stem>.txt / raw bytes <stem>.bin. Returns the
 * number of tensors that matched. subset: st holds only some of them. */
static int check_tensors(const struct deft_safetensors *st, const char *stem, const char *label,
                         bool subset) {
    char mp[600], bp[600];
    snprintf(mp, sizeof mp, "%s/%s.txt", test_tmpdir(), stem);
    snprintf(bp, sizeof bp, "%s/%s.bin", test_tmpdir(), stem);
    void *raw = NULL;
    size_t rlen = 0;
    CHECK_OK(deft_file_read(bp, (size_t)1 << 30, &raw, &rlen));
    FILE *f = fopen(mp, "r");
    CHECK(f != NULL, "manifest %s", mp);
    int n_ok = 0, n_lines = 0;
    char line[1024];
    while (f && raw && fgets(line, sizeof line, f)) {
        char name[512], dt[16];
        long long off, nb;
        int nd, used = 0;
        if (sscanf(line, "%511s %15s %lld %lld %d%n", name, dt, &off, &nb, &nd, &used) != 5) continue;
        n_lines++;
        struct deft_shape shp = {.ndim = nd};
        const char *q = line + used;
        for (int i = 0; i < nd && i < DEFT_MAX_DIMS; i++) {
            char *e;
            shp.d[i] = strtoll(q, &e, 10);
            q = e;
        }
        const struct deft_tensor *t = deft_safetensors_find(st, name);
        if (subset && !t) continue;
        bool ok = t && !strcmp(deft_dtype_name(t->dtype), dt) && deft_shape_equal(&t->shape, &shp) &&
                  (long long)deft_tensor_nbytes(t) == nb && off + nb <= (long long)rlen &&
                  (nb == 0 || !memcmp(t->data, (char *)raw + off, (size_t)nb));
        CHECK(ok, "%s: tensor '%s' (%s) differs from torch (found=%d dtype=%s)", label, name, dt,
              t != NULL, t ? deft_dtype_name(t->dtype) : "-");
        n_ok += ok;
    }
    if (f) fclose(f);
    CHECK(subset || st->n_tensors == n_lines, "%s: %d tensors, torch has %d", label, st->n_tensors, n_lines);
    deft_free(raw);
    return n_ok;
}
static int check_against(const struct deft_safetensors *st, const char *stem, const char *label) {
    return check_tensors(st, stem, label, false);
}

/* The zip reader's CRC-32 (slice-by-8): the standard check value, and any split
 * of a buffer (every length mod 8, both alignments) gives the one-call value. */
static void test_crc32(void) {
    CHECK(deft_crc32(0, (const unsigned char *)"123456789", 9) == 0xCBF43926u, "CRC-32 check value");
    unsigned char buf[203];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 131 + 7);
    const uint32_t whole = deft_crc32(0, buf, sizeof buf);
    int bad = 0;
    for (size_t cut = 0; cut <= sizeof buf; cut++)
        bad += deft_crc32(deft_crc32(0, buf, cut), buf + cut, sizeof buf - cut) != whole;
    CHECK(bad == 0, "CRC-32 of a buffer split at every offset equals the whole (%d differ)", bad);
}

static void test_read(const char *file, const char *stem, int expect_n) {
    struct deft_safetensors *st = NULL;
    enum deft_status s = deft_pth_read(tmp_path(file), &st);
    CHECK(s == DEFT_OK, "%s: %s", file, deft_last_error());
    if (!st) return;
    int n = check_against(st, stem, file);
    CHECK(n == expect_n, "%s: %d of %d tensors identical", file, n, expect_n);
    printf("%s: %d tensors identical to torch (%s)\n", file, n, deft_safetensors_meta(st, "source_format"));
    deft_safetensors_free(st);
    /* deft_weights_read detects the format from the content */
    st = NULL;
    CHECK_OK(deft_weights_read(tmp_path(file), &st));
    CHECK(st && st->n_tensors == expect_n, "%s via deft_weights_read", file);
    deft_safetensors_free(st);
}

static void test_checkpoints(void) {
    struct deft_safetensors *st = NULL;
    CHECK_OK(deft_pth_read(tmp_path("ckpt.pt"), &st));
    if (st) {
        CHECK(st->n_tensors == 5, "ckpt: state_dict picked (%d tensors)", st->n_tensors);
        CHECK(deft_safetensors_find(st, "conv1.weight") && deft_safetensors_find(st, "bn1.running_var"),
              "ckpt: names");
        CHECK(check_tensors(st, "resnet18", "ckpt", true) == 5, "ckpt values");
        deft_safetensors_free(st);
    }
    st = NULL;
    CHECK_OK(deft_pth_read(tmp_path("ckpt_legacy.pt"), &st));
    CHECK(st && st->n_tensors == 5 && deft_safetensors_find(st, "bn1.weight"),
          "legacy {'model': {'state_dict': ...}}");
    deft_safetensors_free(st);
    st = NULL;
    CHECK_OK(deft_pth_read(tmp_path("dp.pt"), &st));
    CHECK(st && st->n_tensors == 5 && deft_safetensors_find(st, "conv1.weight") &&
              !deft_safetensors_find(st, "module.conv1.weight"),
          "DataParallel 'module.' stripped");
    deft_safetensors_free(st);
    st = NULL;
    CHECK_OK(deft_pth_read(tmp_path("dp_resnet18.pt"), &st));
    if (st) CHECK(check_against(st, "resnet18", "dp_resnet18") == 122, "dp resnet18 values");
    deft_safetensors_free(st);
}

static void expect_refusal(const char *file, enum deft_status want, const char *needle) {
    struct deft_safetensors *st = NULL;
    long live = deft_alloc_live();
    enum deft_status s = deft_weights_read(tmp_path(file), &st);
    CHECK(s == want && st == NULL, "%s: got %s (%s), want %s", file, deft_status_str(s),
          deft_last_error(), deft_status_str(want));
    CHECK(strstr(deft_last_error(), needle) != NULL, "%s: message '%s' should contain '%s'", file,
          deft_last_error(), needle);
    CHECK(deft_alloc_live() == live, "%s: no leak", file);
    printf("%s refused: %s\n", file, deft_last_error());
}

static void test_hostile_files(void) {
    expect_refusal("evil.pt", DEFT_ERR_UNSUPPORTED, "'posix.system'");
    expect_refusal("evil_legacy.pt", DEFT_ERR_UNSUPPORTED, "'posix.system'");
    expect_refusal("evil_eval.pt", DEFT_ERR_UNSUPPORTED, "'builtins.eval'");
    struct stat sb;
    CHECK(stat(tmp_path("PWNED"), &sb) != 0, "nothing was executed");
    expect_refusal("module.pt", DEFT_ERR_UNSUPPORTED, "torch.nn.modules.linear.Linear");
    expect_refusal("script.pt", DEFT_ERR_UNSUPPORTED, "TorchScript");
    expect_refusal("single.pt", DEFT_ERR_UNSUPPORTED, "single tensor");
    struct deft_safetensors *st = NULL;
    CHECK_OK(deft_pth_read(tmp_path("h_good.pt"), &st));
    const struct deft_tensor *w = st ? deft_safetensors_find(st, "w") : NULL;
    const float *wf = w ? w->data : NULL;
    CHECK(w && w->shape.ndim == 2 && wf[0] == 1 && wf[1] == 3 && wf[2] == 2 && wf[3] == 4,
          "handcrafted strided view gathered");
    deft_safetensors_free(st);
    expect_refusal("h_oob.pt", DEFT_ERR_FORMAT, "reaches element 4");
    expect_refusal("h_huge.pt", DEFT_ERR_FORMAT, "far more than the file holds");
    expect_refusal("h_claim.pt", DEFT_ERR_FORMAT, "claims 100 elements");
    expect_refusal("h_missing.pt", DEFT_ERR_FORMAT, "storage '7' is missing");
    expect_refusal("h_deflate.pt", DEFT_ERR_UNSUPPORTED, "compressed");
    expect_refusal("h_overflow.pt", DEFT_ERR_FORMAT, "overflows");
    expect_refusal("h_nested.pt", DEFT_ERR_UNSUPPORTED, "holds a list");
    expect_refusal("h_deep.pt", DEFT_ERR_FORMAT, "stack too deep");
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_corruption(const char *file) {
    void *img = NULL;
    size_t len = 0;
    CHECK_OK(deft_file_read(tmp_path(file), (size_t)1 << 30, &img, &len));
    if (!img) return;
    long live = deft_alloc_live();
    unsigned char *buf = malloc(len ? len : 1);
    int trunc_ok = 0, trunc_n = 0;
    /* truncations: every byte of the first 600 and 300 spread offsets */
    for (size_t cut = 0; cut < len; cut += cut < 600 ? 1 : len / 300 + 1) {
        struct deft_safetensors *st = NULL;
        memcpy(buf, img, cut);
        enum deft_status s = deft_pth_parse(buf, cut, "trunc", &st);
        trunc_n++;
        trunc_ok += s == DEFT_OK;
        deft_safetensors_free(st);
    }
    CHECK(trunc_ok == 0, "%s: %d of %d truncations accepted", file, trunc_ok, trunc_n);
    /* 200 random byte flips (1-4 bytes each) */
    int flip_err = 0;
    for (int k = 0; k < 200; k++) {
        memcpy(buf, img, len);
        int nf = 1 + (int)(rnd() % 4);
        for (int j = 0; j < nf; j++) buf[rnd() % len] ^= (unsigned char)(1 + rnd() % 255);
        struct deft_safetensors *st = NULL;
        enum deft_status s = deft_pth_parse(buf, len, "flip", &st);
        flip_err += s != DEFT_OK;
        CHECK((s == DEFT_OK) == (st != NULL), "status and result agree");
        deft_safetensors_free(st);
    }
    /* flips in the pickle itself (not CRC-protected in legacy files) */
    CHECK(deft_alloc_live() == live, "%s: corrupt inputs leak %ld blocks", file,
          deft_alloc_live() - live);
    printf("%s: %d truncations all refused; %d of 200 byte flips refused, the rest read\n", file,
           trunc_n, flip_err);
    free(buf);
    deft_free(img);
}

/* Allocation failures at every step of a small read: errors, no leak. */
static void test_alloc_failures(void) {
    void *img = NULL;
    size_t len = 0;
    CHECK_OK(deft_file_read(tmp_path("tensors.pt"), (size_t)1 << 30, &img, &len));
    if (!img) return;
    long live = deft_alloc_live();
    int fails = 0;
    for (long k = 1; k < 2000; k++) {
        struct deft_safetensors *st = NULL;
        deft_alloc_fail_after(k);
        enum deft_status s = deft_pth_parse(img, len, "oom", &st);
        deft_alloc_fail_after(0);
        deft_safetensors_free(st);
        if (s == DEFT_OK) break;
        fails++;
    }
    CHECK(fails > 10 && deft_alloc_live() == live, "allocation failures: %d, leak %ld", fails,
          deft_alloc_live() - live);
    deft_free(img);
}

static void write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(d, 1, n, f);
    fclose(f);
}

static void test_detection(void) {
    /* safetensors written by deft */
    struct deft_tensor *t = NULL;
    struct deft_shape s2 = {2, {2, 2}};
    CHECK_OK(deft_tensor_create(DEFT_F32, &s2, &t));
    struct deft_named_tensor nt = {"w", t};
    CHECK_OK(deft_safetensors_write(tmp_path("w.safetensors"), &nt, 1, NULL, 0));
    deft_tensor_free(t);
    struct deft_safetensors *st = NULL;
    const char *fmt = NULL;
    CHECK_OK(deft_weights_format(tmp_path("w.safetensors"), &fmt));
    CHECK(fmt && !strcmp(fmt, "safetensors"), "safetensors detected");
    CHECK_OK(deft_weights_read(tmp_path("w.safetensors"), &st));
    CHECK(st && st->n_tensors == 1, "safetensors via deft_weights_read");
    deft_safetensors_free(st);
    write_file(tmp_path("k.h5"), "\x89HDF\r\n\x1a\n\0\0\0\0", 12);
    expect_refusal("k.h5", DEFT_ERR_FORMAT, "not a readable HDF5 file"); /* detected, then read */
    write_file(tmp_path("m.onnx"), "\x08\x07\x12\x07pytorch", 10);
    expect_refusal("m.onnx", DEFT_ERR_FORMAT, "not a valid ONNX model");
    write_file(tmp_path("junk.bin"), "hello world, not weights", 24);
    expect_refusal("junk.bin", DEFT_ERR_FORMAT, "unrecognized");
    write_file(tmp_path("empty.pt"), "", 0);
    expect_refusal("empty.pt", DEFT_ERR_FORMAT, "unrecognized");
    st = NULL;
    CHECK(deft_weights_read(tmp_path("does_not_exist.pt"), &st) == DEFT_ERR_NOT_FOUND, "missing file: not found (exit 2)");
}

static void test_cli(void) {
    const char *bin = getenv("DEFT_BIN");
    if (!bin) {
        printf("DEFT_BIN not set: CLI checks skipped\n");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s model import --help >/dev/null 2>&1", bin);
    if (system(cmd) != 0) {
        printf("`deft model import` not available in this CLI: CLI checks skipped\n");
        return;
    }
    const char *out = tmp_path("r18.safetensors");
    snprintf(cmd, sizeof cmd, "%s model import -i %s -o %s --arch resnet18", bin,
             tmp_path("dp_resnet18.pt"), out);
    CHECK(system(cmd) == 0, "%s", cmd);
    struct deft_model *m = NULL;
    CHECK_OK(deft_model_load(out, &m));
    if (m) {
        CHECK(check_tensors(m->file, "resnet18", "import", true) >= 100, "imported weights");
        const char *pre = deft_graph_get_meta(m->graph, "preprocess");
        char comp[512] = "";
        for (size_t i = 0, j = 0; pre && pre[i] && j + 1 < sizeof comp; i++)
            if (pre[i] != ' ') comp[j++] = pre[i], comp[j] = 0;
        CHECK(strstr(comp, "\"mean\":[0.485,0.456,0.406]") && strstr(comp, "\"crop_padding\":32") &&
                  strstr(comp, "\"resize\":\"center_crop\""),
              "preprocess meta: %s", pre ? pre : "(none)");
        const char *cn = deft_graph_get_meta(m->graph, "class_names");
        CHECK(cn && strstr(cn, "\"class_999\""), "class names: %.60s", cn ? cn : "(none)");
        deft_model_free(m);
    }
    const char *plain = tmp_path("plain.safetensors");
    snprintf(cmd, sizeof cmd, "%s model import -i %s -o %s", bin, tmp_path("tensors_legacy.pt"), plain);
    CHECK(system(cmd) == 0, "%s", cmd);
    struct deft_safetensors *st = NULL;
    CHECK_OK(deft_safetensors_read(plain, &st));
    if (st) CHECK(check_against(st, "tensors", "plain import") == 20, "plain import values");
    deft_safetensors_free(st);
    snprintf(cmd, sizeof cmd, "%s model import -i %s -o %s --arch resnet18 --num_classes 10 2>%s",
             bin, tmp_path("resnet18.pt"), tmp_path("bad.safetensors"), tmp_path("err.txt"));
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "wrong num_classes exits 2 (rc %d)", rc);
    void *e = NULL;
    size_t el = 0;
    if (deft_file_read(tmp_path("err.txt"), 1 << 20, &e, &el) == DEFT_OK) {
        CHECK(strstr(e, "fc.weight") && strstr(e, "[1000, 512]") && strstr(e, "[10, 512]"),
              "mismatch message names the tensor and both shapes: %s", (char *)e);
        deft_free(e);
    }
    /* num_classes read from the file's classifier */
    snprintf(cmd, sizeof cmd, "%s model import -i %s -o %s --arch resnet18 --class_names %s", bin,
             tmp_path("r18_10.pt"), tmp_path("r18_10.safetensors"), "a,b,c,d,e,f,g,h,i,j");
    CHECK(system(cmd) == 0, "%s", cmd);
    m = NULL;
    CHECK_OK(deft_model_load(tmp_path("r18_10.safetensors"), &m));
    if (m) {
        const struct deft_tensor *fc = deft_safetensors_find(m->file, "fc.weight");
        CHECK(fc && fc->shape.d[0] == 10, "inferred 10 classes");
        const char *cn = deft_graph_get_meta(m->graph, "class_names");
        CHECK(cn && strstr(cn, "\"j\""), "given class names: %s", cn ? cn : "(none)");
        deft_model_free(m);
    }
    /* a new head: --skip_mismatch keeps the fresh classifier */
    snprintf(cmd, sizeof cmd, "%s model import -i %s -o %s --arch resnet18 --num_classes 3 "
             "--skip_mismatch 2>/dev/null", bin, tmp_path("resnet18.pt"), tmp_path("r18_3.safetensors"));
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "%s model import -i %s -o %s 2>/dev/null", bin, tmp_path("evil.pt"),
             tmp_path("evil.safetensors"));
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) != 0, "evil import fails");
}

int main(void) {
    if (!test_have_torch()) test_skip("python3 with torch is not available");
    if (!gen_files()) {
        printf("generating torch files failed\n");
        return 1;
    }
    long live0 = deft_alloc_live();
    test_crc32();
    test_read("tensors.pt", "tensors", 20);
    test_read("tensors_legacy.pt", "tensors", 20);
    test_read("resnet18.pt", "resnet18", 122);
    test_read("resnet18_legacy.pt", "resnet18", 122);
    test_checkpoints();
    test_hostile_files();
    test_corruption("tensors.pt");
    test_corruption("tensors_legacy.pt");
    test_corruption("dp.pt");
    test_corruption("ckpt_legacy.pt");
    test_alloc_failures();
    test_detection();
    CHECK(deft_alloc_live() == live0, "no leak overall (%ld blocks)", deft_alloc_live() - live0);
    test_cli();
    return test_summary();
}

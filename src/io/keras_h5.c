/* keras_h5.c - Keras 2 HDF5 weights (TAO's pretrained .hdf5, model.save or
 * save_weights) through libhdf5, into named tensors in deft's layouts.
 *
 * The weight group (the root, or "model_weights" under it) lists its layers in
 * the attribute layer_names; each layer group lists its datasets in
 * weight_names ("conv1/kernel:0"), paths relative to the layer group. Both
 * may be split into layer_names0, layer_names1, ... when long. Names become
 * "<path>.<role>": the weight name's directory with '/' -> '.' ("conv1",
 * "backbone.block_1a_conv_1" stays "block_1a_conv_1" as Keras writes it) and
 * the role PyTorch would use: kernel/gamma -> weight, bias/beta -> bias,
 * moving_mean -> running_mean, moving_variance -> running_var. Keras layouts
 * are converted: conv kernels HWIO -> OIHW, depthwise HW,C,M -> (C*M),1,H,W,
 * Conv2DTranspose HW,O,I -> I,O,H,W (the same permutation), dense [in, out]
 * -> [out, in]. */
#include <errno.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include "io/io_impl.h"

#define H5_MAX_NAMES 1000000     /* layers or weights listed in one attribute */
#define H5_MAX_STRLEN 65536
#define H5_MAX_ELEMS (1ll << 31)  /* elements in one weight */

struct names { char **s; int n; };

static void names_free(struct names *l) {
    for (int i = 0; i < l->n; i++) deft_free(l->s[i]);
    deft_free(l->s);
    l->s = NULL;
    l->n = 0;
}

static enum deft_status names_push(struct names *l, const char *p, size_t len, const char *file) {
    if (l->n >= H5_MAX_NAMES) return deft_set_error(DEFT_ERR_FORMAT, "%s: too many names", file);
    if ((l->n & (l->n - 1)) == 0) {
        char **s = deft_realloc(l->s, (size_t)(l->n ? 2 * l->n : 1) * sizeof *s);
        if (!s) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", file);
        l->s = s;
    }
    char *c = deft_malloc(len + 1);
    if (!c) return deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", file);
    memcpy(c, p, len);
    c[len] = 0;
    l->s[l->n++] = c;
    return DEFT_OK;
}

/* Append the strings of one attribute (fixed-length or variable-length). */
static enum deft_status read_str_attr(hid_t obj, const char *attr, struct names *l,
                                      const char *file) {
    enum deft_status s = DEFT_OK;
    hid_t a = H5Aopen(obj, attr, H5P_DEFAULT), t = -1, sp = -1, mt = -1;
    void *buf = NULL;
    if (a < 0) return deft_set_error(DEFT_ERR_FORMAT, "%s: cannot read attribute %s", file, attr);
    t = H5Aget_type(a);
    sp = H5Aget_space(a);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || n < 0 || n > H5_MAX_NAMES) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: attribute %s is not a list of strings", file, attr);
        goto done;
    }
    if (n == 0) goto done;
    mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 does not convert ASCII <-> UTF-8 */
    if (H5Tis_variable_str(t) > 0) {
        char **v = deft_calloc((size_t)n, sizeof *v);
        if (!v) goto oom;
        buf = v;
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, v) < 0) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: cannot read attribute %s", file, attr);
            goto done;
        }
        for (hssize_t i = 0; i < n && !s; i++)
            s = names_push(l, v[i] ? v[i] : "", v[i] ? strnlen(v[i], H5_MAX_STRLEN) : 0, file);
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
    } else {
        size_t w = H5Tget_size(t);
        if (w == 0 || w > H5_MAX_STRLEN) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: attribute %s has strings of %zu bytes", file,
                               attr, w);
            goto done;
        }
        char *f = deft_malloc((size_t)n * w);
        if (!f) goto oom;
        buf = f;
        if (H5Tset_size(mt, w) < 0 || H5Tset_strpad(mt, H5T_STR_NULLPAD) < 0 || H5Aread(a, mt, f) < 0) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: cannot read attribute %s", file, attr);
            goto done;
        }
        for (hssize_t i = 0; i < n && !s; i++) s = names_push(l, f + i * w, strnlen(f + i * w, w), file);
    }
    goto done;
oom:
    s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", file);
done:
    deft_free(buf);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return s;
}

/* name, or name0, name1, ... when Keras split it (absent: an empty list). */
static enum deft_status read_names(hid_t obj, const char *name, struct names *l, const char *file) {
    if (H5Aexists(obj, name) > 0) return read_str_attr(obj, name, l, file);
    for (int k = 0;; k++) {
        char nm[80];
        snprintf(nm, sizeof nm, "%s%d", name, k);
        if (H5Aexists(obj, nm) <= 0) return DEFT_OK;
        enum deft_status s = read_str_attr(obj, nm, l, file);
        if (s) return s;
    }
}

/* The deft name of a Keras weight ("block_1a_conv_1/kernel:0" -> "block_1a_conv_1.weight")
 * and its role. */
enum role { R_PLAIN, R_KERNEL, R_DEPTHWISE };
static void weight_name(const char *layer, const char *w, char *out, size_t n, enum role *role) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", w);
    char *colon = strrchr(buf, ':');
    if (colon && colon > strrchr(buf, '/')) *colon = 0; /* ":0" */
    char *slash = strrchr(buf, '/');
    const char *leaf = slash ? slash + 1 : buf;
    if (slash) *slash = 0;
    for (char *p = buf; slash && *p; p++)
        if (*p == '/') *p = '.';
    const char *dir = slash ? buf : layer;
    static const char *const map[][2] = {{"kernel", "weight"}, {"gamma", "weight"},
                                         {"bias", "bias"}, {"beta", "bias"},
                                         {"moving_mean", "running_mean"},
                                         {"moving_variance", "running_var"},
                                         {"depthwise_kernel", "weight"},
                                         {"pointwise_kernel", "pointwise.weight"}};
    const char *r = leaf;
    *role = R_PLAIN;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(leaf, map[i][0])) {
            r = map[i][1];
            if (i == 0 || i == 7) *role = R_KERNEL;
            if (i == 6) *role = R_DEPTHWISE;
        }
    snprintf(out, n, "%s.%s", dir, r);
}

/* Keras layout -> deft layout (see the top of the file). */
static enum deft_status to_deft_layout(const float *src, const struct deft_shape *ks, enum role role,
                                       struct deft_tensor **out) {
    const int64_t *d = ks->d;
    struct deft_shape sh = *ks;
    if (role == R_KERNEL && ks->ndim == 4)
        sh = deft_shape4(d[3], d[2], d[0], d[1]);
    else if (role == R_DEPTHWISE && ks->ndim == 4)
        sh = deft_shape4(d[2] * d[3], 1, d[0], d[1]);
    else if (role == R_KERNEL && ks->ndim == 2)
        sh = (struct deft_shape){.ndim = 2, .d = {d[1], d[0]}};
    enum deft_status s = deft_tensor_create(DEFT_F32, &sh, out);
    if (s) return s;
    float *o = (*out)->data;
    int64_t numel = deft_shape_numel(ks);
    if (role == R_PLAIN || ks->ndim == 1 || ks->ndim == 3) {
        memcpy(o, src, (size_t)numel * sizeof *o);
    } else if (ks->ndim == 2) {
        for (int64_t i = 0; i < d[0]; i++)
            for (int64_t j = 0; j < d[1]; j++) o[j * d[0] + i] = src[i * d[1] + j];
    } else {
        /* src [kh][kw][a][b]: kernel a=in b=out -> [b][a][kh][kw] (a transposed conv's
         * a=out b=in gives deft's [in][out][kh][kw] by the same move); depthwise
         * a=channel b=multiplier -> [a*M+b][0][kh][kw] */
        int64_t kh = d[0], kw = d[1], A = d[2], B = d[3];
        for (int64_t y = 0; y < kh; y++)
            for (int64_t x = 0; x < kw; x++)
                for (int64_t a = 0; a < A; a++)
                    for (int64_t b = 0; b < B; b++) {
                        float v = src[((y * kw + x) * A + a) * B + b];
                        if (role == R_DEPTHWISE)
                            o[((a * B + b) * kh + y) * kw + x] = v;
                        else
                            o[((b * A + a) * kh + y) * kw + x] = v;
                    }
    }
    return DEFT_OK;
}

static enum deft_status read_weight(hid_t lg, const char *layer, const char *wname,
                                    const char *file, struct deft_safetensors *st) {
    enum deft_status s = DEFT_OK;
    float *buf = NULL;
    hid_t ds = H5Dopen2(lg, wname, H5P_DEFAULT), sp = -1, t = -1;
    if (ds < 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: layer '%s' lists weight '%s', which is not "
                              "in the file", file, layer, wname);
    sp = H5Dget_space(ds);
    t = H5Dget_type(ds);
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[DEFT_MAX_DIMS];
    if (t < 0 || H5Tget_class(t) != H5T_FLOAT) {
        s = deft_set_error(DEFT_ERR_UNSUPPORTED, "%s: weight '%s' is not floating point", file, wname);
        goto done;
    }
    if (nd < 0 || nd > DEFT_MAX_DIMS || H5Sget_simple_extent_dims(sp, dims, NULL) != nd) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: weight '%s' has %d dimensions", file, wname, nd);
        goto done;
    }
    struct deft_shape ks = {.ndim = nd};
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        ks.d[i] = (int64_t)dims[i];
        if (dims[i] > (hsize_t)H5_MAX_ELEMS || (numel *= (int64_t)dims[i]) > H5_MAX_ELEMS) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: weight '%s' is too large", file, wname);
            goto done;
        }
    }
    if (nd == 0) ks = (struct deft_shape){.ndim = 1, .d = {1}};
    buf = deft_malloc((size_t)(numel ? numel : 1) * sizeof *buf);
    if (!buf) {
        s = deft_set_error(DEFT_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    if (numel && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: cannot read weight '%s'", file, wname);
        goto done;
    }
    char name[1100];
    enum role role;
    weight_name(layer, wname, name, sizeof name, &role);
    struct deft_tensor *out;
    if ((s = to_deft_layout(buf, &ks, role, &out))) goto done;
    s = deft_io_tensor_list_add(st, name, out);
done:
    deft_free(buf);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return s;
}

static enum deft_status read_layers(hid_t wg, const char *file,
                                    struct deft_safetensors *st) {
    struct names layers = {0}, weights = {0};
    enum deft_status s = read_names(wg, "layer_names", &layers, file);
    for (int i = 0; i < layers.n && !s; i++) {
        hid_t lg = H5Gopen2(wg, layers.s[i], H5P_DEFAULT);
        if (lg < 0) {
            s = deft_set_error(DEFT_ERR_FORMAT, "%s: layer '%s' is listed but has no group", file,
                               layers.s[i]);
            break;
        }
        s = read_names(lg, "weight_names", &weights, file);
        for (int k = 0; k < weights.n && !s; k++)
            s = read_weight(lg, layers.s[i], weights.s[k], file, st);
        names_free(&weights);
        H5Gclose(lg);
    }
    names_free(&layers);
    return s;
}

/* Open path, or (image != NULL) an in-memory file image through the core
 * driver; the file is read-only either way. */
static hid_t open_h5(const char *path, const void *image, size_t len) {
    if (!image) return H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    hid_t f = -1;
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 && H5Pset_file_image(fapl, (void *)image, len) >= 0)
        f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

static enum deft_status keras_h5_load(const char *path, const void *image, size_t len,
                                      struct deft_safetensors **out) {
    *out = NULL;
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are ours to report */
    enum deft_status s = DEFT_OK;
    struct deft_safetensors *st = NULL;
    hid_t f = open_h5(path, image, len), root = -1, wg = -1;
    if (f < 0) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: not a readable HDF5 file", path);
        goto done;
    }
    root = H5Gopen2(f, "/", H5P_DEFAULT);
    if (root < 0) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: cannot open the HDF5 root group", path);
        goto done;
    }
    bool at_root = H5Aexists(root, "layer_names") > 0 || H5Aexists(root, "layer_names0") > 0;
    if (!at_root && H5Lexists(root, "model_weights", H5P_DEFAULT) > 0)
        wg = H5Gopen2(root, "model_weights", H5P_DEFAULT);
    if (!at_root && wg < 0) {
        s = deft_set_error(DEFT_ERR_FORMAT, "%s: an HDF5 file but not Keras weights (no "
                           "layer_names attribute, no model_weights group)", path);
        goto done;
    }
    if ((s = deft_io_tensor_list_new("keras hdf5", &st))) goto done;
    if ((s = read_layers(wg >= 0 ? wg : root, path, st))) goto done;
    if (st->n_tensors == 0) {
        s = deft_set_error(DEFT_ERR_NOT_FOUND, "%s: the Keras file holds no weights", path);
        goto done;
    }
    s = deft_io_check_unique_names(st, path, " (from the Keras weight names)");
done:
    if (wg >= 0) H5Gclose(wg);
    if (root >= 0) H5Gclose(root);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (s) {
        deft_safetensors_free(st);
        return s;
    }
    *out = st;
    return DEFT_OK;
}

/* libhdf5 runs in a child process (sandbox.c): it trusts the sizes a file
 * declares, and a forged file can make it allocate gigabytes or spin. */
struct h5_job {
    const char *path;
    const void *image;
    size_t len;
};
static enum deft_status h5_job_run(void *ctx, struct deft_safetensors **out) {
    const struct h5_job *j = ctx;
    return keras_h5_load(j->path, j->image, j->len, out);
}

enum deft_status deft_keras_h5_read(const char *path, struct deft_safetensors **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return deft_set_error(errno == ENOENT ? DEFT_ERR_NOT_FOUND : DEFT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct h5_job j = {path, NULL, 0};
    H5open(); /* once, here: each child starts with the library initialized */
    return deft_io_sandboxed(path, (size_t)sb.st_size, h5_job_run, &j, out);
}

enum deft_status deft_keras_h5_parse(const void *buf, size_t len, const char *name,
                                     struct deft_safetensors **out) {
    *out = NULL;
    if (len < 8 || memcmp(buf, "\211HDF\r\n\032\n", 8) != 0)
        return deft_set_error(DEFT_ERR_FORMAT, "%s: not an HDF5 file (no signature)", name);
    struct h5_job j = {name, buf, len};
    H5open();
    return deft_io_sandboxed(name, len, h5_job_run, &j, out);
}

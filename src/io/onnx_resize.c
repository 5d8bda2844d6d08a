/* onnx_resize.c - ONNX Resize / Upsample onto deft's upsample op (nearest or
 * bilinear over H and W), exact or refused.
 *
 * ONNX has five coordinate transforms, four nearest rounding modes and scales
 * that need not give whole sizes; deft's kernel has PyTorch's two index rules.
 * Rather than a table of which combinations agree, the converter computes,
 * for every output row and column, the source ONNX's specification picks
 * (Resize-11..17) and the one deft's kernel picks (src/backend/ref/upsample.c,
 * in its float arithmetic), and imports the node only when they are the
 * same; otherwise it refuses naming the attributes. Cubic and
 * tf_crop_and_resize have no deft kernel and are refused. */
#include <math.h>
#include <string.h>
#include "io/onnx_impl.h"

#define BAD(...) oi_fail(im, DEFT_ERR_UNSUPPORTED, __VA_ARGS__)

/* ONNX's source coordinate of output index o (scale: the given factor, or out/in). */
static double onnx_coord(const char *ct, int64_t o, int64_t in, int64_t out, double scale) {
    if (!strcmp(ct, "half_pixel")) return ((double)o + 0.5) / scale - 0.5;
    if (!strcmp(ct, "pytorch_half_pixel")) return out > 1 ? ((double)o + 0.5) / scale - 0.5 : 0;
    if (!strcmp(ct, "align_corners")) return out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0;
    if (!strcmp(ct, "asymmetric")) return (double)o / scale;
    if (!strcmp(ct, "tf_half_pixel_for_nn")) return ((double)o + 0.5) / scale;
    return NAN;
}

static int64_t clamp_i(int64_t i, int64_t in) { return i < 0 ? 0 : i > in - 1 ? in - 1 : i; }

static int64_t onnx_nearest(const char *nm, double x, int64_t in) {
    double f = floor(x);
    int64_t i;
    if (!strcmp(nm, "floor")) i = (int64_t)f;
    else if (!strcmp(nm, "ceil")) i = (int64_t)ceil(x);
    else if (x - f == 0.5) i = (int64_t)f + !strcmp(nm, "round_prefer_ceil");
    else i = (int64_t)floor(x + 0.5);
    return clamp_i(i, in);
}

/* deft's source of output o (upsample.c): nearest index, or the bilinear
 * coordinate after the kernel's clamping to [0, in-1]. */
static double deft_coord(bool nearest, bool align, int64_t o, int64_t in, int64_t out) {
    if (out == in) return (double)o;
    if (nearest) {
        if (out == 2 * in) return (double)(o >> 1);
        int64_t i = (int64_t)floorf((float)o * ((float)in / (float)out));
        return (double)(i > in - 1 ? in - 1 : i);
    }
    float src;
    if (align) {
        float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
        src = scale * (float)o;
    } else {
        src = (float)in / (float)out * ((float)o + 0.5f) - 0.5f;
        if (src < 0) src = 0;
    }
    return src > (float)(in - 1) ? (double)(in - 1) : (double)src;
}

/* True when deft's kernel reads the sources ONNX's specification reads on
 * this axis (bilinear coordinates to 1e-4 of a pixel: float vs double). */
static bool axis_agrees(bool nearest, bool align, const char *ct, const char *nm, int64_t in,
                        int64_t out, double scale) {
    for (int64_t o = 0; o < out; o++) {
        double x = onnx_coord(ct, o, in, out, scale), d = deft_coord(nearest, align, o, in, out);
        if (isnan(x)) return false;
        if (nearest ? (double)onnx_nearest(nm, x, in) != d
                    : fabs(fmin(fmax(x, 0), (double)(in - 1)) - d) > 1e-4)
            return false;
    }
    return true;
}

/* Output H, W and the ONNX scales of H and W, from the scales or sizes input
 * (or Upsample-7's attribute). */
static enum deft_status out_size(struct onnx_imp *im, const struct deft_shape *s, bool upsample_op,
                                 int64_t out[2], double sc[2], bool *from_scales) {
    float scale[4] = {1, 1, 1, 1};
    const struct deft_tensor *t;
    int scales_in = upsample_op || im->opset < 11 ? 1 : 2;
    *from_scales = true;
    if (upsample_op && im->opset < 9) {
        const Onnx__AttributeProto *a = oi_attr(im, "scales");
        if (!a || a->n_floats != 4) return BAD("attribute scales must give 4 factors");
        for (int i = 0; i < 4; i++) scale[i] = a->floats[i];
    } else if (oi_has_input(im, scales_in) && (t = oi_const(im, scales_in)) && deft_tensor_numel(t) > 0) {
        if (deft_tensor_numel(t) != 4 || deft_tensor_to_f32(t, scale)) return BAD("scales must give 4 factors");
    } else if (im->status) {
        return im->status;
    } else if (!upsample_op && im->opset >= 11 && oi_has_input(im, 3)) {
        if (!(t = oi_const(im, 3))) return im->status;
        if (t->dtype != DEFT_I64 || deft_tensor_numel(t) != 4) return BAD("sizes must give 4 sizes");
        const int64_t *q = t->data;
        if (q[0] != s->d[0] || q[1] != s->d[1]) return BAD("only H and W may be resized");
        *from_scales = false;
        for (int i = 0; i < 2; i++) {
            out[i] = q[2 + i];
            sc[i] = (double)q[2 + i] / (double)s->d[2 + i];
        }
    } else {
        return BAD("neither scales nor sizes is given");
    }
    if (*from_scales) {
        if (scale[0] != 1 || scale[1] != 1) return BAD("only H and W may be resized (scales %g, %g)",
                                                      (double)scale[0], (double)scale[1]);
        for (int i = 0; i < 2; i++) {
            if (!(scale[2 + i] > 0 && scale[2 + i] <= 1024)) return BAD("scale factors out of range");
            sc[i] = scale[2 + i];
            out[i] = (int64_t)floor((double)s->d[2 + i] * sc[i]);
        }
    }
    if (out[0] < 1 || out[1] < 1 || out[0] > 65536 || out[1] > 65536) return BAD("bad output size");
    return DEFT_OK;
}

/* Attributes of later opsets that change the result: refused unless default. */
static enum deft_status check_later_attrs(struct onnx_imp *im) {
    char b[32];
    if (oi_attr_i(im, "antialias", 0)) return BAD("attribute antialias=1 is not supported");
    if (oi_attr(im, "axes")) return BAD("attribute axes is not supported (give all 4 scales or sizes)");
    if (strcmp(oi_attr_s(im, "keep_aspect_ratio_policy", "stretch", b, sizeof b), "stretch"))
        return BAD("attribute keep_aspect_ratio_policy='%s' is not supported", b);
    return DEFT_OK;
}

enum deft_status oi_resize(struct onnx_imp *im) {
    int x = oi_act(im, 0);
    if (x < 0) return oi_bind(im, -1);
    const struct deft_shape *s = &deft_graph_value(im->g, x)->shape;
    if (s->ndim != 4) return BAD("only [N, C, H, W] inputs are supported");
    bool upsample_op = !strcmp(im->node->op_type, "Upsample"), from_scales;
    int64_t out[2];
    double sc[2];
    if (check_later_attrs(im) || out_size(im, s, upsample_op, out, sc, &from_scales)) return im->status;
    char mb[32], cb[40], nb[32];
    const char *mode = oi_attr_s(im, "mode", "nearest", mb, sizeof mb);
    /* before Resize-11: asymmetric coordinates; nearest rounds down when enlarging */
    bool old = upsample_op || im->opset < 11;
    const char *ct = old ? "asymmetric" : oi_attr_s(im, "coordinate_transformation_mode", "half_pixel", cb, sizeof cb);
    const char *nm = old ? "floor" : oi_attr_s(im, "nearest_mode", "round_prefer_floor", nb, sizeof nb);
    bool nearest = !strcmp(mode, "nearest");
    if (!nearest && strcmp(mode, "linear") && strcmp(mode, "bilinear"))
        return BAD("mode '%s' is not supported (nearest and linear are)", mode);
    if (old && nearest && (sc[0] < 1 || sc[1] < 1))
        return BAD("nearest downsampling before Resize-11 is not supported");
    bool align = !strcmp(ct, "align_corners");
    /* the 1.12 reference takes in*scale as the output length: only whole sizes agree */
    if (align && from_scales)
        for (int i = 0; i < 2; i++)
            if ((double)s->d[2 + i] * sc[i] != (double)out[i])
                return BAD("align_corners with scale %g of size %lld (not a whole size) is not "
                           "supported; give sizes", sc[i], (long long)s->d[2 + i]);
    for (int i = 0; i < 2; i++)
        if (!axis_agrees(nearest, align, ct, nm, s->d[2 + i], out[i], sc[i]))
            return BAD("%s resize of %s from %lld to %lld with coordinate_transformation_mode=%s%s%s "
                       "is not supported: deft's kernel would read other source pixels", mode,
                       i ? "W" : "H", (long long)s->d[2 + i], (long long)out[i], ct,
                       nearest ? " nearest_mode=" : "", nearest ? nm : "");
    struct deft_attr a = {.shape = {.ndim = 4, .d = {0, 0, out[0], out[1]}}};
    a.upsample.mode = nearest ? DEFT_UPSAMPLE_NEAREST : DEFT_UPSAMPLE_BILINEAR;
    a.upsample.align_corners = !nearest && align;
    return oi_bind(im, oi_add_node(im, DEFT_OP_UPSAMPLE, false, &x, 1, &a));
}

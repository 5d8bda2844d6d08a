/* preprocess.c - input normalization modes as TAO makenet defines them
 * (nvidia_tao_tf1/cv/makenet/utils/preprocess_input.py, see
 * ../shared/reference/tao.md 4.1), plus torchvision's and a custom mode.
 * The arithmetic order matches the Python formulas: (x / divisor - mean) / std. */
#include <strings.h>
#include "deft/data.h"

void deft_preprocess_init(struct deft_preprocess *p, enum deft_preprocess_mode mode) {
    p->mode = mode;
    p->bgr = false;
    p->divisor = 1.0f;
    p->channels = 3;
    for (int c = 0; c < 3; c++) {
        p->mean[c] = 0.0f;
        p->std[c] = 1.0f;
    }
    switch (mode) {
    case DEFT_PREPROCESS_CAFFE:
        p->bgr = true;
        p->mean[0] = 103.939f;
        p->mean[1] = 116.779f;
        p->mean[2] = 123.68f;
        break;
    case DEFT_PREPROCESS_TORCH:
    case DEFT_PREPROCESS_TORCHVISION:
        p->divisor = 255.0f;
        p->mean[0] = 0.485f;
        p->mean[1] = 0.456f;
        p->mean[2] = 0.406f;
        if (mode == DEFT_PREPROCESS_TORCH) {
            p->std[0] = p->std[1] = p->std[2] = 0.224f;
        } else {
            p->std[0] = 0.229f;
            p->std[1] = 0.224f;
            p->std[2] = 0.225f;
        }
        break;
    case DEFT_PREPROCESS_TF:
        p->divisor = 127.5f;
        p->mean[0] = p->mean[1] = p->mean[2] = 1.0f;
        break;
    default:
        break;
    }
}

int deft_preprocess_channels(const struct deft_preprocess *p) { return p->channels == 1 ? 1 : 3; }

/* TAO makenet's grey constants (preprocess_input.py, tao.md 4.1); torchvision
 * has none, so the mean of its three means and stds. */
void deft_preprocess_set_gray(struct deft_preprocess *p) {
    p->channels = 1;
    p->bgr = false; /* one plane: no channel order */
    switch (p->mode) {
    case DEFT_PREPROCESS_CAFFE: p->mean[0] = 117.3786f; break;
    case DEFT_PREPROCESS_TORCH: p->mean[0] = 0.449f, p->std[0] = 0.224f; break;
    case DEFT_PREPROCESS_TORCHVISION: p->mean[0] = 0.449f, p->std[0] = 0.226f; break;
    default: break; /* tf: x / 127.5 - 1 whatever the channels; custom: the caller's */
    }
    p->mean[1] = p->mean[2] = p->mean[0];
    p->std[1] = p->std[2] = p->std[0];
}

enum deft_status deft_preprocess_parse(const char *name, enum deft_preprocess_mode *mode) {
    static const struct {
        const char *name;
        enum deft_preprocess_mode mode;
    } tab[] = {{"caffe", DEFT_PREPROCESS_CAFFE},
               {"torch", DEFT_PREPROCESS_TORCH},
               {"tf", DEFT_PREPROCESS_TF},
               {"torchvision", DEFT_PREPROCESS_TORCHVISION}};
    for (size_t i = 0; name && i < sizeof tab / sizeof tab[0]; i++)
        if (!strcasecmp(name, tab[i].name)) {
            *mode = tab[i].mode;
            return DEFT_OK;
        }
    return deft_set_error(DEFT_ERR_INVALID_ARG,
                          "unknown preprocess mode '%s' (expected caffe, torch, tf or torchvision)",
                          name ? name : "(null)");
}

void deft_preprocess_apply(const struct deft_preprocess *p, float *chw, int h, int w) {
    size_t plane = (size_t)h * w;
    int nc = deft_preprocess_channels(p);
    if (p->bgr && nc == 3) {
        float *r = chw, *b = chw + 2 * plane;
        for (size_t i = 0; i < plane; i++) {
            float t = r[i];
            r[i] = b[i];
            b[i] = t;
        }
    }
    for (int c = 0; c < nc; c++) {
        float *x = chw + c * plane;
        float d = p->divisor, m = p->mean[c], s = p->std[c];
        if (d == 1.0f && s == 1.0f) {
            for (size_t i = 0; i < plane; i++) x[i] = x[i] - m;
        } else {
            for (size_t i = 0; i < plane; i++) x[i] = (x[i] / d - m) / s;
        }
    }
}

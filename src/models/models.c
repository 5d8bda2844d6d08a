/* models.c - the architecture registry (name -> family builder), option
 * defaults and validation, and the helpers the families share. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "models/models_impl.h"

struct arch_entry {
    const char *name;
    deft_model_family_fn build;
    const void *cfg;
    float default_dropout; /* before the classifier in training graphs */
};

static const struct deft_resnet_cfg resnet10 = {false, {1, 1, 1, 1}};
static const struct deft_resnet_cfg resnet18 = {false, {2, 2, 2, 2}};
static const struct deft_resnet_cfg resnet34 = {false, {3, 4, 6, 3}};
static const struct deft_resnet_cfg resnet50 = {true, {3, 4, 6, 3}};
static const struct deft_resnet_cfg resnet101 = {true, {3, 4, 23, 3}};
static const struct deft_resnet_cfg resnet152 = {true, {3, 8, 36, 3}};

static const struct arch_entry archs[] = {
    {"resnet10", deft_model_resnet, &resnet10, 0.0f},
    {"resnet18", deft_model_resnet, &resnet18, 0.0f},
    {"resnet34", deft_model_resnet, &resnet34, 0.0f},
    {"resnet50", deft_model_resnet, &resnet50, 0.0f},
    {"resnet101", deft_model_resnet, &resnet101, 0.0f},
    {"resnet152", deft_model_resnet, &resnet152, 0.0f},
    {"mobilenet_v2", deft_model_mobilenet_v2, NULL, 0.2f},
};
#define N_ARCHS ((int)(sizeof archs / sizeof archs[0]))

static const char *const arch_names[] = {"resnet10",  "resnet18",  "resnet34",     "resnet50",
                                         "resnet101", "resnet152", "mobilenet_v2", NULL};
_Static_assert(sizeof arch_names / sizeof arch_names[0] == N_ARCHS + 1,
               "arch_names must list every registry entry");

const char *const *deft_model_arch_names(void) { return arch_names; }

static const struct arch_entry *find_arch(const char *name) {
    for (int i = 0; i < N_ARCHS; i++)
        if (strcasecmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

bool deft_model_arch_known(const char *arch) { return arch && find_arch(arch); }

/* Case-insensitive Levenshtein distance, for "did you mean" (names are short). */
static int edit_distance(const char *a, const char *b) {
    int lb = (int)strlen(b), row[64];
    if (lb >= 63) return 1 << 20;
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; a[i - 1]; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static enum deft_status unknown_arch(const char *arch) {
    char known[512];
    size_t k = 0;
    const char *best = NULL;
    int best_d = 1 << 20, len = (int)strlen(arch);
    for (int i = 0; i < N_ARCHS && k < sizeof known; i++) {
        k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", archs[i].name);
        int d = len < 256 ? edit_distance(arch, archs[i].name) : 1 << 20;
        if (d < best_d) {
            best_d = d;
            best = archs[i].name;
        }
    }
    /* close enough to be a typo: a couple of edits, or a third of the name */
    int limit = len / 3 > 2 ? len / 3 : 2;
    if (best && best_d <= limit)
        return deft_set_error(DEFT_ERR_NOT_FOUND,
                              "unknown architecture '%s' (known: %s); did you mean '%s'?", arch,
                              known, best);
    return deft_set_error(DEFT_ERR_NOT_FOUND, "unknown architecture '%s' (known: %s)", arch, known);
}

/* ---- shared helpers ------------------------------------------------------ */

const char *deft_model_name(struct deft_model_ctx *m, const char *fmt, ...) {
    char *buf = m->names[m->next_name];
    m->next_name = (m->next_name + 1) % DEFT_MODEL_NAME_RING;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, DEFT_MODEL_NAME_MAX, fmt, ap);
    va_end(ap);
    return buf;
}

/* The param feeding input slot `slot` of the node that produced value y. */
static struct deft_value *input_param(struct deft_graph *g, int y, int slot) {
    if (y < 0) return NULL;
    const struct deft_value *out = deft_graph_value(g, y);
    if (out->producer < 0) return NULL;
    const struct deft_node *nd = deft_graph_node(g, out->producer);
    if (slot >= nd->n_in || nd->in[slot] < 0) return NULL;
    return deft_graph_value_mut(g, nd->in[slot]);
}

int deft_model_conv(struct deft_model_ctx *m, const char *name, int x, int out_ch, int kernel,
                    int stride, int pad, int groups) {
    struct deft_conv_attr a = {.stride = {stride, stride}, .pad = {pad, pad, pad, pad},
                               .dilation = {1, 1}, .groups = groups};
    int y = deft_conv2d(m->g, name, x, out_ch, kernel, kernel, &a, false);
    struct deft_value *w = input_param(m->g, y, 1);
    if (w) {
        w->init = DEFT_INIT_KAIMING_NORMAL_FAN_OUT;
        /* PyTorch's fan_out is out_channels * kh * kw whatever the groups (a
         * depthwise 3x3 over 96 channels has fan_out 864, not 9). */
        w->fan_out = out_ch * kernel * kernel;
    }
    return y;
}

int deft_model_bn(struct deft_model_ctx *m, const char *name, int x) {
    return deft_batchnorm(m->g, name, x, m->bn);
}

int deft_model_head(struct deft_model_ctx *m, int x, const char *dropout_name, const char *fc_name,
                    bool normal_init) {
    int y = deft_global_avgpool(m->g, "avgpool", x);
    y = deft_flatten(m->g, "flatten", y);
    if (m->training && m->dropout > 0)
        y = deft_dropout(m->g, dropout_name, y, m->dropout, true, m->seed);
    y = deft_linear(m->g, fc_name, y, m->num_classes, true);
    if (normal_init) {
        struct deft_value *w = input_param(m->g, y, 1), *b = input_param(m->g, y, 2);
        if (w) w->init = DEFT_INIT_NORMAL_001;
        if (b) b->init = DEFT_INIT_ZEROS;
    }
    return y;
}

/* ---- entry point --------------------------------------------------------- */

static enum deft_status check_dim(const char *what, int v, int max) {
    if (v < 1 || v > max)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "model options: %s %d out of range (1..%d)",
                              what, v, max);
    return DEFT_OK;
}

static enum deft_status set_meta(struct deft_graph *g, const struct deft_model_ctx *m, int c, int h,
                                 int w) {
    char buf[160];
    enum deft_status s;
    snprintf(buf, sizeof buf, "\"%s\"", m->arch);
    if ((s = deft_graph_set_meta(g, "arch", buf))) return s;
    snprintf(buf, sizeof buf, "%d", m->num_classes);
    if ((s = deft_graph_set_meta(g, "num_classes", buf))) return s;
    snprintf(buf, sizeof buf, "[%d,%d,%d]", c, h, w);
    return deft_graph_set_meta(g, "input_shape", buf);
}

enum deft_status deft_model_build(const struct deft_model_opts *o, struct deft_graph **out,
                                  int *input, int *logits) {
    if (!out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_model_build: out is NULL");
    *out = NULL;
    if (!o || !o->arch || !o->arch[0])
        return deft_set_error(DEFT_ERR_INVALID_ARG, "model options: arch is not set");
    const struct arch_entry *e = find_arch(o->arch);
    if (!e) return unknown_arch(o->arch);

    int classes = o->num_classes ? o->num_classes : 1000;
    int batch = o->batch ? o->batch : 1, ch = o->channels ? o->channels : 3;
    int h = o->height ? o->height : 224, w = o->width ? o->width : 224;
    enum deft_status s;
    if ((s = check_dim("num_classes", classes, 1 << 24)) || (s = check_dim("batch", batch, 1 << 20)) ||
        (s = check_dim("channels", ch, 1 << 16)) || (s = check_dim("height", h, 1 << 16)) ||
        (s = check_dim("width", w, 1 << 16)))
        return s;
    float p = o->dropout == 0 ? e->default_dropout : o->dropout < 0 ? 0 : o->dropout;
    if (!(p < 1)) /* also rejects NaN */
        return deft_set_error(DEFT_ERR_INVALID_ARG, "model options: dropout %g must be below 1",
                              (double)o->dropout);
    float wm = o->width_mult == 0 ? 1.0f : o->width_mult;
    if (!(wm > 0 && wm <= 16))
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "model options: width_mult %g out of range (0, 16]",
                              (double)o->width_mult);
    if (o->training && o->bn_mode != DEFT_BN_TRAIN && o->bn_mode != DEFT_BN_FROZEN &&
        o->bn_mode != DEFT_BN_EVAL)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "model options: bad bn_mode %d", (int)o->bn_mode);

    /* The context holds ~1 KiB of name buffers: keep it off small thread stacks. */
    struct deft_model_ctx *m = deft_calloc(1, sizeof *m);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory building %s", e->name);
    m->arch = e->name;
    m->num_classes = classes;
    m->bn = o->training ? o->bn_mode : DEFT_BN_EVAL;
    m->dropout = p;
    m->width_mult = wm;
    m->training = o->training;
    m->features_only = o->features_only;
    m->seed = o->seed;

    struct deft_graph *g = NULL;
    if ((s = deft_graph_create(&g))) {
        deft_free(m);
        return s;
    }
    m->g = g;
    int x = deft_input(g, "input_1", deft_shape4(batch, ch, h, w));
    int y = x >= 0 ? e->build(m, x, e->cfg) : -1;
    s = deft_graph_status(g);
    if (!s && y < 0) /* a family returned -1 without a sticky error: a bug, still an error */
        s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: builder produced no output", e->name);
    if (s) {
        deft_wrap_error(s, "building %s for input [%d, %d, %d, %d]", e->name, batch, ch, h, w);
    } else {
        deft_graph_value_mut(g, y)->flags |= DEFT_VF_OUTPUT;
        if ((s = set_meta(g, m, ch, h, w)))
            deft_wrap_error(s, "building %s", e->name);
    }
    deft_free(m);
    if (s) {
        deft_graph_free(g);
        return s;
    }
    *out = g;
    if (input) *input = x;
    if (logits) *logits = y;
    return DEFT_OK;
}

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
    float default_dropout;        /* before the classifier in training graphs */
    deft_model_blocks_fn blocks;  /* freeze_blocks: block index -> param prefixes */
    const char *family;           /* TAO's arch name when it takes n_layers ("resnet"), else NULL */
    int depth;                    /* TAO's n_layers for that family (18 for resnet18) */
    int size;                     /* default input height/width, 0 -> 224 */
};

static const struct deft_resnet_cfg resnet10 = {false, {1, 1, 1, 1}};
static const struct deft_resnet_cfg resnet18 = {false, {2, 2, 2, 2}};
static const struct deft_resnet_cfg resnet34 = {false, {3, 4, 6, 3}};
static const struct deft_resnet_cfg resnet50 = {true, {3, 4, 6, 3}};
static const struct deft_resnet_cfg resnet101 = {true, {3, 4, 23, 3}};
static const struct deft_resnet_cfg resnet152 = {true, {3, 8, 36, 3}};
static const struct deft_vgg_cfg vgg16 = {16, false}, vgg19 = {19, false};
static const struct deft_vgg_cfg vgg16_bn = {16, true}, vgg19_bn = {19, true};
static const struct deft_squeezenet_cfg squeezenet1_0 = {10}, squeezenet1_1 = {11};
/* torchvision's (width, depth) multipliers; resolution and dropout in the table */
static const struct deft_efficientnet_cfg effnet_b0 = {1.0, 1.0}, effnet_b1 = {1.0, 1.1};
static const struct deft_efficientnet_cfg effnet_b2 = {1.1, 1.2}, effnet_b3 = {1.2, 1.4};
static const struct deft_darknet_cfg darknet19 = {DEFT_DARKNET19}, darknet53 = {DEFT_DARKNET53};
static const struct deft_darknet_cfg cspdarknet53 = {DEFT_CSPDARKNET53};
static const struct deft_darknet_cfg cspdarknet_tiny = {DEFT_CSPDARKNET_TINY};

static const struct arch_entry archs[] = {
    {"resnet10", deft_model_resnet, &resnet10, 0.0f, deft_model_resnet_blocks, "resnet", 10, 0},
    {"resnet18", deft_model_resnet, &resnet18, 0.0f, deft_model_resnet_blocks, "resnet", 18, 0},
    {"resnet34", deft_model_resnet, &resnet34, 0.0f, deft_model_resnet_blocks, "resnet", 34, 0},
    {"resnet50", deft_model_resnet, &resnet50, 0.0f, deft_model_resnet_blocks, "resnet", 50, 0},
    {"resnet101", deft_model_resnet, &resnet101, 0.0f, deft_model_resnet_blocks, "resnet", 101, 0},
    {"resnet152", deft_model_resnet, &resnet152, 0.0f, deft_model_resnet_blocks, "resnet", 152, 0},
    {"mobilenet_v2", deft_model_mobilenet_v2, NULL, 0.2f, deft_model_mobilenet_v2_blocks, NULL, 0, 0},
    {"vgg16", deft_model_vgg, &vgg16, 0.5f, deft_model_vgg_blocks, "vgg", 16, 0},
    {"vgg19", deft_model_vgg, &vgg19, 0.5f, deft_model_vgg_blocks, "vgg", 19, 0},
    {"vgg16_bn", deft_model_vgg, &vgg16_bn, 0.5f, deft_model_vgg_blocks, NULL, 16, 0},
    {"vgg19_bn", deft_model_vgg, &vgg19_bn, 0.5f, deft_model_vgg_blocks, NULL, 19, 0},
    {"mobilenet_v1", deft_model_mobilenet_v1, NULL, 0.2f, deft_model_mobilenet_v1_blocks, NULL, 0, 0},
    {"efficientnet_b0", deft_model_efficientnet, &effnet_b0, 0.2f, deft_model_efficientnet_blocks,
     NULL, 0, 224},
    {"efficientnet_b1", deft_model_efficientnet, &effnet_b1, 0.2f, deft_model_efficientnet_blocks,
     NULL, 0, 240},
    {"efficientnet_b2", deft_model_efficientnet, &effnet_b2, 0.3f, deft_model_efficientnet_blocks,
     NULL, 0, 260},
    {"efficientnet_b3", deft_model_efficientnet, &effnet_b3, 0.3f, deft_model_efficientnet_blocks,
     NULL, 0, 300},
    {"googlenet", deft_model_googlenet, NULL, 0.2f, deft_model_googlenet_blocks, NULL, 0, 0},
    {"squeezenet1_0", deft_model_squeezenet, &squeezenet1_0, 0.5f, deft_model_squeezenet_blocks,
     NULL, 0, 0},
    {"squeezenet1_1", deft_model_squeezenet, &squeezenet1_1, 0.5f, deft_model_squeezenet_blocks,
     NULL, 0, 0},
    {"darknet19", deft_model_darknet, &darknet19, 0.0f, deft_model_darknet_blocks, "darknet", 19, 0},
    {"darknet53", deft_model_darknet, &darknet53, 0.0f, deft_model_darknet_blocks, "darknet", 53, 0},
    {"cspdarknet53", deft_model_darknet, &cspdarknet53, 0.0f, deft_model_darknet_blocks,
     "cspdarknet", 53, 0},
    {"cspdarknet_tiny", deft_model_darknet, &cspdarknet_tiny, 0.0f, deft_model_darknet_blocks, NULL,
     0, 0},
};
#define N_ARCHS ((int)(sizeof archs / sizeof archs[0]))

static const char *const arch_names[] = {
    "resnet10",        "resnet18",        "resnet34",        "resnet50",      "resnet101",
    "resnet152",       "mobilenet_v2",    "vgg16",           "vgg19",         "vgg16_bn",
    "vgg19_bn",        "mobilenet_v1",    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "googlenet",       "squeezenet1_0",   "squeezenet1_1", "darknet19",
    "darknet53",       "cspdarknet53",    "cspdarknet_tiny", NULL};
_Static_assert(sizeof arch_names / sizeof arch_names[0] == N_ARCHS + 1,
               "arch_names must list every registry entry");

/* Other spellings of a registry name (TAO's without n_layers). */
static const struct { const char *alias, *name; } aliases[] = {
    {"squeezenet", "squeezenet1_0"}, /* TAO's squeezenet: conv1 96 7x7/2 + fire2..fire9 (v1.0) */
};

const char *const *deft_model_arch_names(void) { return arch_names; }

static const struct arch_entry *find_arch(const char *name) {
    for (int i = 0; i < N_ARCHS; i++)
        if (strcasecmp(archs[i].name, name) == 0) return &archs[i];
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(aliases[i].alias, name) == 0) return find_arch(aliases[i].name);
    return NULL;
}

static bool is_family(const char *name) {
    for (int i = 0; i < N_ARCHS; i++)
        if (archs[i].family && strcasecmp(archs[i].family, name) == 0) return true;
    return false;
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
        /* a typo of a family name ("restnet") suggests the family (used with n_layers) */
        for (int f = 0; f < 2; f++) {
            const char *cand = f ? archs[i].family : archs[i].name;
            int d = cand && len < 256 ? edit_distance(arch, cand) : 1 << 20;
            if (d < best_d) {
                best_d = d;
                best = cand;
            }
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

int deft_model_bn_eps(struct deft_model_ctx *m, const char *name, int x, float eps) {
    return deft_batchnorm_ex(m->g, name, x,
                             &(struct deft_bn_attr){.eps = eps, .momentum = 0.1f, .mode = m->bn});
}

struct deft_value *deft_model_weight_of(struct deft_model_ctx *m, int y) {
    return input_param(m->g, y, 1);
}

struct deft_value *deft_model_bias_of(struct deft_model_ctx *m, int y) {
    return input_param(m->g, y, 2);
}

int deft_model_conv_bias(struct deft_model_ctx *m, const char *name, int x, int out_ch, int kernel,
                         int stride, int pad) {
    struct deft_conv_attr a = {.stride = {stride, stride}, .pad = {pad, pad, pad, pad},
                               .dilation = {1, 1}, .groups = 1};
    int y = deft_conv2d(m->g, name, x, out_ch, kernel, kernel, &a, true);
    struct deft_value *w = input_param(m->g, y, 1), *b = input_param(m->g, y, 2);
    if (w) {
        w->init = DEFT_INIT_KAIMING_NORMAL_FAN_OUT;
        w->fan_out = out_ch * kernel * kernel;
    }
    if (b) b->init = DEFT_INIT_ZEROS;
    return y;
}

int deft_model_adaptive_avgpool(struct deft_model_ctx *m, const char *name, int x, int oh, int ow) {
    if (x < 0) return -1;
    const struct deft_shape *s = &deft_graph_value(m->g, x)->shape;
    int64_t h = s->d[2], w = s->d[3];
    if (h == oh && w == ow) return x;
    if (h % oh == 0 && w % ow == 0) {
        int kh = (int)(h / oh), kw = (int)(w / ow);
        return deft_pool(m->g, name, x, &(struct deft_pool_attr){
                             .kind = DEFT_POOL_AVG, .kernel = {kh, kw}, .stride = {kh, kw}});
    }
    if (oh > DEFT_MAX_INPUTS || ow > DEFT_MAX_INPUTS) {
        deft_set_error(DEFT_ERR_SHAPE, "%s: adaptive average pool %lldx%lld -> %dx%d not supported",
                       name, (long long)h, (long long)w, oh, ow);
        return -1;
    }
    /* PyTorch's bins: rows [floor(i*h/oh), ceil((i+1)*h/oh)), the same for columns. */
    int rows[DEFT_MAX_INPUTS], cols[DEFT_MAX_INPUTS];
    char base[DEFT_MODEL_NAME_MAX];
    snprintf(base, sizeof base, "%s", name);
    for (int i = 0; i < oh; i++) {
        int64_t r0 = i * h / oh, r1 = ((i + 1) * h + oh - 1) / oh;
        int r = deft_slice(m->g, deft_model_name(m, "%s.r%d", base, i), x, 2, r0, r1);
        for (int j = 0; j < ow; j++) {
            int64_t c0 = j * w / ow, c1 = ((j + 1) * w + ow - 1) / ow;
            int c = deft_slice(m->g, deft_model_name(m, "%s.r%dc%d", base, i, j), r, 3, c0, c1);
            cols[j] = deft_global_avgpool(m->g, deft_model_name(m, "%s.r%dc%d.mean", base, i, j), c);
        }
        rows[i] = deft_concat(m->g, deft_model_name(m, "%s.r%d.cat", base, i), cols, ow, 3);
    }
    return deft_concat(m->g, base, rows, oh, 2);
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

/* ---- names: arch (+ TAO's n_layers) -> registry entry --------------------- */

static enum deft_status resolve(const char *arch, int n_layers, const struct arch_entry **out) {
    *out = NULL;
    if (!arch || !arch[0])
        return deft_set_error(DEFT_ERR_INVALID_ARG, "model options: arch is not set");
    if (n_layers < 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "model options: n_layers %d is negative",
                              n_layers);
    const struct arch_entry *e = find_arch(arch);
    if (e) {
        /* "resnet18" with n_layers 18 (or 0) is fine, with 50 a contradiction */
        if (n_layers && e->depth && e->depth != n_layers)
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "model options: arch '%s' contradicts n_layers %d", arch, n_layers);
        *out = e;
        return DEFT_OK;
    }
    if (!is_family(arch)) return unknown_arch(arch);
    char depths[160];
    size_t k = 0;
    for (int i = 0; i < N_ARCHS; i++) {
        if (!archs[i].family || strcasecmp(archs[i].family, arch) != 0) continue;
        if (archs[i].depth == n_layers) {
            *out = &archs[i];
            return DEFT_OK;
        }
        if (k < sizeof depths)
            k += (size_t)snprintf(depths + k, sizeof depths - k, "%s%d", k ? ", " : "", archs[i].depth);
    }
    if (!n_layers)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "model options: arch '%s' needs n_layers (one of %s)", arch, depths);
    return deft_set_error(DEFT_ERR_NOT_FOUND, "model options: %s has no %d-layer variant (n_layers: %s)",
                          arch, n_layers, depths);
}

enum deft_status deft_model_resolve_arch(const char *arch, int n_layers, const char **name) {
    const struct arch_entry *e;
    enum deft_status s = resolve(arch, n_layers, &e);
    if (name) *name = s ? NULL : e->name;
    return s;
}

/* ---- freeze blocks ------------------------------------------------------- */

#define MAX_PREFIXES 32

/* The registry entry named by `arch`, or by the graph's "arch" metadata when arch is NULL. */
static enum deft_status entry_for(const struct deft_graph *g, const char *arch,
                                  const struct arch_entry **e) {
    char buf[64];
    if (!arch && g) {
        const char *m = deft_graph_get_meta(g, "arch");
        size_t n = m ? strlen(m) : 0;
        if (n < 3 || n - 2 >= sizeof buf || m[0] != '"' || m[n - 1] != '"')
            return deft_set_error(DEFT_ERR_INVALID_ARG,
                                  "freeze_blocks: no arch given and the graph has no \"arch\" metadata");
        memcpy(buf, m + 1, n - 2);
        buf[n - 2] = 0;
        arch = buf;
    }
    return resolve(arch, 0, e);
}

static int prefixes_of(const struct arch_entry *e, int block, char (*out)[DEFT_MODEL_PREFIX_MAX]) {
    int n = block < 0 ? -1 : e->blocks(e->cfg, block, out, MAX_PREFIXES);
    if (n < 0) {
        int nb = 0;
        char tmp[MAX_PREFIXES][DEFT_MODEL_PREFIX_MAX];
        while (nb < 256 && e->blocks(e->cfg, nb, tmp, MAX_PREFIXES) >= 0) nb++;
        deft_set_error(DEFT_ERR_INVALID_ARG, "%s: freeze block %d out of range (0..%d)", e->name, block,
                       nb - 1);
    }
    return n;
}

int deft_model_num_blocks(const char *arch) {
    const struct arch_entry *e;
    if (resolve(arch, 0, &e)) return -1;
    char tmp[MAX_PREFIXES][DEFT_MODEL_PREFIX_MAX];
    int nb = 0;
    while (nb < 256 && e->blocks(e->cfg, nb, tmp, MAX_PREFIXES) >= 0) nb++;
    return nb;
}

int deft_model_block_prefixes(const char *arch, int block, char *buf, size_t cap) {
    const struct arch_entry *e;
    if (resolve(arch, 0, &e)) return -1;
    char pre[MAX_PREFIXES][DEFT_MODEL_PREFIX_MAX];
    int n = prefixes_of(e, block, pre);
    if (n < 0) return -1;
    size_t k = 0;
    if (buf && cap) buf[0] = 0;
    for (int i = 0; i < n && buf && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? "," : "", pre[i]);
    return n;
}

int deft_model_freeze_blocks(struct deft_graph *g, const char *arch, const int *blocks, int n) {
    if (!g || (n > 0 && !blocks) || n < 0) {
        deft_set_error(DEFT_ERR_INVALID_ARG, "deft_model_freeze_blocks: bad arguments");
        return -1;
    }
    const struct arch_entry *e;
    if (entry_for(g, arch, &e)) return -1;
    char pre[MAX_PREFIXES][DEFT_MODEL_PREFIX_MAX];
    for (int i = 0; i < n; i++) /* validate all first: nothing changes on error */
        if (prefixes_of(e, blocks[i], pre) < 0) return -1;
    /* Count each param once even when a block is listed twice. */
    int before = 0, after = 0;
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        before += val->kind == DEFT_VALUE_PARAM && (val->flags & DEFT_VF_FROZEN);
    }
    for (int i = 0; i < n; i++) {
        int np = prefixes_of(e, blocks[i], pre);
        for (int j = 0; j < np; j++) (void)deft_graph_freeze(g, pre[j], true);
    }
    for (int v = 0; v < deft_graph_num_values(g); v++) {
        const struct deft_value *val = deft_graph_value(g, v);
        after += val->kind == DEFT_VALUE_PARAM && (val->flags & DEFT_VF_FROZEN);
    }
    return after - before;
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
    if (!o) return deft_set_error(DEFT_ERR_INVALID_ARG, "model options: arch is not set");
    const struct arch_entry *e;
    enum deft_status s = resolve(o->arch, o->n_layers, &e);
    if (s) return s;

    int classes = o->num_classes ? o->num_classes : 1000;
    int batch = o->batch ? o->batch : 1, ch = o->channels ? o->channels : 3;
    int size = e->size ? e->size : 224;
    int h = o->height ? o->height : size, w = o->width ? o->width : size;
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
    for (int i = 0; i < 5; i++) m->taps[i] = -1;
    m->act = DEFT_ACT_LEAKY_RELU;
    m->act_alpha = 0.1f;

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
        if ((s = deft_graph_set_role(g, DEFT_ROLE_IMAGE, x)) ||
            (s = deft_graph_set_role(g, m->features_only ? "features" : DEFT_ROLE_LOGITS, y)) ||
            (s = set_meta(g, m, ch, h, w)))
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

/* ---- backbones with feature taps ------------------------------------------ */

enum deft_status deft_backbone_build(struct deft_graph *g, int x, const struct deft_backbone_opts *o,
                                     struct deft_backbone_taps *taps) {
    if (!g || !o || !taps)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_backbone_build: NULL argument");
    taps->s2 = taps->s4 = taps->s8 = taps->s16 = taps->s32 = taps->last = -1;
    taps->last_stride = 0;
    taps->arch = NULL;
    if (x < 0 || x >= deft_graph_num_values(g) || deft_graph_value(g, x)->shape.ndim != 4)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_backbone_build: x must be a 4-D value");
    const struct arch_entry *e;
    enum deft_status s = resolve(o->arch, o->n_layers, &e);
    if (s) return s;
    if (e->build != deft_model_resnet && e->build != deft_model_darknet &&
        e->build != deft_model_mobilenet_v2)
        return deft_set_error(DEFT_ERR_UNSUPPORTED,
                              "backbone %s has no feature taps (resnet*, mobilenet_v2, darknet19/53, "
                              "cspdarknet53, cspdarknet_tiny have)", e->name);
    if (o->activation && o->activation[0] && strcmp(o->activation, "leaky_relu") != 0 &&
        strcmp(o->activation, "mish") != 0 && strcmp(o->activation, "relu") != 0)
        return deft_set_error(DEFT_ERR_INVALID_ARG,
                              "backbone activation '%s' unknown (leaky_relu, mish or relu)",
                              o->activation);
    struct deft_model_ctx *m = deft_calloc(1, sizeof *m);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory building %s", e->name);
    m->g = g;
    m->arch = e->name;
    m->num_classes = 1;
    m->bn = o->training ? o->bn_mode : DEFT_BN_EVAL;
    m->width_mult = o->width_mult > 0 ? o->width_mult : 1.0f;
    m->training = o->training;
    m->features_only = true;
    m->det_layout = o->detection_layout;
    if (o->rcnn_layout && e->build != deft_model_resnet) {
        deft_free(m);
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "the Faster R-CNN layout (layer4 as the RCNN head) is resnet's; "
                              "%s has none", e->name);
    }
    m->rcnn_part = o->rcnn_layout ? 1 : 0;
    for (int i = 0; i < 5; i++) m->taps[i] = -1;
    /* TAO: force_relu wins; else the spec's activation; its default is leaky ReLU 0.1 */
    bool mish = o->activation && strcmp(o->activation, "mish") == 0;
    bool relu = o->force_relu || (o->activation && strcmp(o->activation, "relu") == 0);
    m->act = relu ? DEFT_ACT_RELU : mish ? DEFT_ACT_MISH : DEFT_ACT_LEAKY_RELU;
    m->act_alpha = relu || mish ? 0.0f : 0.1f;
    int y = e->build(m, x, e->cfg);
    s = deft_graph_status(g);
    if (!s && y < 0) s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: builder produced no output", e->name);
    if (!s) {
        taps->s8 = m->taps[0];
        taps->s16 = m->taps[1];
        taps->s32 = m->taps[2];
        taps->s2 = m->taps[3];
        taps->s4 = m->taps[4];
        taps->last = y;
        /* every family reaches stride 32, but the detection layout stops resnet and
         * mobilenet_v2 at 16 */
        taps->last_stride = (m->det_layout && e->build != deft_model_darknet) || m->rcnn_part ? 16 : 32;
        taps->arch = e->name;
    }
    deft_free(m);
    return s;
}

enum deft_status deft_backbone_build_rcnn_head(struct deft_graph *g, int x, const struct deft_backbone_opts *o,
                                               int stride, int *out) {
    if (!g || !o || !out) return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_backbone_build_rcnn_head: NULL argument");
    *out = -1;
    if (x < 0 || x >= deft_graph_num_values(g) || deft_graph_value(g, x)->shape.ndim != 4 || stride < 1 || stride > 2)
        return deft_set_error(DEFT_ERR_INVALID_ARG, "deft_backbone_build_rcnn_head: x must be 4-D, stride 1 or 2");
    const struct arch_entry *e;
    enum deft_status s = resolve(o->arch, o->n_layers, &e);
    if (s) return s;
    if (e->build != deft_model_resnet)
        return deft_set_error(DEFT_ERR_UNSUPPORTED, "%s has no Faster R-CNN head layout (resnet has)", e->name);
    struct deft_model_ctx *m = deft_calloc(1, sizeof *m);
    if (!m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory building %s", e->name);
    m->g = g;
    m->arch = e->name;
    m->num_classes = 1;
    m->bn = o->training ? o->bn_mode : DEFT_BN_EVAL;
    m->width_mult = 1.0f;
    m->training = o->training;
    m->features_only = true;
    m->rcnn_part = 2;
    m->rcnn_stride = stride;
    for (int i = 0; i < 5; i++) m->taps[i] = -1;
    int y = e->build(m, x, e->cfg);
    s = deft_graph_status(g);
    if (!s && y < 0) s = deft_set_error(DEFT_ERR_INVALID_ARG, "%s: no RCNN head built", e->name);
    if (!s) *out = y;
    deft_free(m);
    return s;
}

enum deft_status deft_model_ctx_new(const char *arch, bool training, struct deft_model_ctx **m, struct deft_graph **g) {
    *m = deft_calloc(1, sizeof **m); /* ~1 KiB of name buffers: off small thread stacks */
    *g = NULL;
    if (!*m) return deft_set_error(DEFT_ERR_NOMEM, "out of memory building %s", arch);
    enum deft_status s = deft_graph_create(g);
    if (s) {
        deft_free(*m);
        *m = NULL;
        return s;
    }
    (*m)->g = *g;
    (*m)->arch = arch;
    (*m)->bn = training ? DEFT_BN_TRAIN : DEFT_BN_EVAL;
    (*m)->training = training;
    (*m)->act = DEFT_ACT_RELU;
    for (int i = 0; i < 5; i++) (*m)->taps[i] = -1;
    return DEFT_OK;
}

enum deft_status deft_model_ctx_finish(struct deft_model_ctx *m, struct deft_graph *g, enum deft_status s,
                                       const char *net, int n, int c, int h, int w, struct deft_graph **out) {
    const char *arch = m->arch;
    deft_free(m);
    if (s) {
        deft_wrap_error(s, "building %s (%s) for input [%d, %d, %d, %d]", net, arch, n, c, h, w);
        deft_graph_free(g);
        return s;
    }
    *out = g;
    return DEFT_OK;
}

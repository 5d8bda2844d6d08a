/* darknet.c - DarkNet-19 (YOLO9000's classifier), DarkNet-53 (YOLOv3's backbone) and
 * CSPDarkNet-53 (YOLOv4's), conv + BN + leaky ReLU 0.1 throughout. No torchvision peer:
 * names follow timm's cspnet.py (darknet53, cspdarknet53) so its state_dicts load by name,
 * and darknet19 uses the same scheme.
 *
 *   ConvNormAct "<p>":  "<p>.conv" (no bias), "<p>.bn", "<p>.act" (leaky 0.1)
 *   stem.conv1          3x3/1 -> 32
 *   darknet19  stages.S (S = 0..4): "stages.S.pool" maxpool 2x2/2, then ConvNormActs
 *              "stages.S.blocks.J" (3x3 and 1x1 alternating: 64 | 128,64,128 | 256,128,256 |
 *              512,256,512,256,512 | 1024,512,1024,512,1024)
 *   darknet53  stages.S: "conv_down" 3x3/2 -> C (64,128,256,512,1024), then blocks.J
 *              (1,2,8,8,4 of them): conv1 1x1 -> C/2, conv2 3x3 -> C, "add" with the input
 *   cspdarknet53 stages.S: conv_down 3x3/2 -> C, conv_exp 1x1 -> E (2C in stage 0, else C),
 *              split in halves "split.0" (kept) / "split.1" (through the blocks: conv1 1x1,
 *              conv2 3x3, add; stage 0: 64 -> 32 -> 64, else C/2 -> C/2 -> C/2),
 *              conv_transition_b 1x1 -> E/2, "cat" of the halves, conv_transition 1x1 -> C
 *   head.global_pool - head.flatten - head.drop (training, p > 0) - head.fc
 *
 * darknet19's original classifier is a 1x1 conv (1000) before the average pool; the linear
 * after the pool computes the same function with the same parameter count.
 */
#include <stdio.h>
#include "models/models_impl.h"

static int cna(struct deft_model_ctx *m, const char *p, int x, int out, int k, int stride) {
    int y = deft_model_conv(m, deft_model_name(m, "%s.conv", p), x, out, k, stride, (k - 1) / 2, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn", p), y);
    return deft_act(m->g, deft_model_name(m, "%s.act", p), y, DEFT_ACT_LEAKY_RELU, 0.1f);
}

/* conv1 1x1 -> mid, conv2 3x3 -> out, + input */
static int dark_block(struct deft_model_ctx *m, int s, int j, int x, int mid, int out) {
    char p[48], q[64];
    snprintf(p, sizeof p, "stages.%d.blocks.%d", s, j);
    snprintf(q, sizeof q, "%s.conv1", p);
    int y = cna(m, q, x, mid, 1, 1);
    snprintf(q, sizeof q, "%s.conv2", p);
    y = cna(m, q, y, out, 3, 1);
    return deft_add(m->g, deft_model_name(m, "%s.add", p), y, x);
}

static const int dn19[5][6] = {{64}, {128, 64, 128}, {256, 128, 256}, {512, 256, 512, 256, 512},
                               {1024, 512, 1024, 512, 1024}};
static const int depth53[5] = {1, 2, 8, 8, 4};

static int darknet19(struct deft_model_ctx *m, int y) {
    for (int s = 0; s < 5; s++) {
        y = deft_pool(m->g, deft_model_name(m, "stages.%d.pool", s), y,
                      &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2},
                                               .stride = {2, 2}});
        for (int j = 0; j < 6 && dn19[s][j]; j++) {
            char p[48];
            snprintf(p, sizeof p, "stages.%d.blocks.%d", s, j);
            y = cna(m, p, y, dn19[s][j], j % 2 ? 1 : 3, 1);
        }
    }
    return y;
}

static int darknet53(struct deft_model_ctx *m, int y) {
    for (int s = 0; s < 5; s++) {
        int c = 64 << s;
        char p[48];
        snprintf(p, sizeof p, "stages.%d.conv_down", s);
        y = cna(m, p, y, c, 3, 2);
        for (int j = 0; j < depth53[s]; j++) y = dark_block(m, s, j, y, c / 2, c);
    }
    return y;
}

static int cspdarknet53(struct deft_model_ctx *m, int y) {
    for (int s = 0; s < 5; s++) {
        int c = 64 << s, e = s == 0 ? 2 * c : c;
        int block_out = s == 0 ? c : c / 2, mid = c / 2; /* timm: bottle_ratio 0.5, then 1 */
        char p[48], q[64];
        snprintf(p, sizeof p, "stages.%d", s);
        snprintf(q, sizeof q, "%s.conv_down", p);
        y = cna(m, q, y, c, 3, 2);
        snprintf(q, sizeof q, "%s.conv_exp", p);
        y = cna(m, q, y, e, 1, 1);
        int h[2];
        h[0] = deft_slice(m->g, deft_model_name(m, "%s.split.0", p), y, 1, 0, e / 2);
        h[1] = deft_slice(m->g, deft_model_name(m, "%s.split.1", p), y, 1, e / 2, e);
        for (int j = 0; j < depth53[s]; j++) h[1] = dark_block(m, s, j, h[1], mid, block_out);
        snprintf(q, sizeof q, "%s.conv_transition_b", p);
        h[1] = cna(m, q, h[1], e / 2, 1, 1);
        if (h[0] < 0 || h[1] < 0) return -1;
        y = deft_concat(m->g, deft_model_name(m, "%s.cat", p), h, 2, 1);
        snprintf(q, sizeof q, "%s.conv_transition", p);
        y = cna(m, q, y, c, 1, 1);
    }
    return y;
}

int deft_model_darknet(struct deft_model_ctx *m, int x, const void *cfg) {
    const struct deft_darknet_cfg *c = cfg;
    int y = cna(m, "stem.conv1", x, 32, 3, 1);
    y = c->kind == DEFT_DARKNET19 ? darknet19(m, y)
        : c->kind == DEFT_DARKNET53 ? darknet53(m, y)
                                     : cspdarknet53(m, y);
    if (m->features_only) return y;
    y = deft_global_avgpool(m->g, "head.global_pool", y);
    y = deft_flatten(m->g, "head.flatten", y);
    if (m->training && m->dropout > 0) y = deft_dropout(m->g, "head.drop", y, m->dropout, true, m->seed);
    y = deft_linear(m->g, "head.fc", y, m->num_classes, true);
    struct deft_value *w = deft_model_weight_of(m, y), *b = deft_model_bias_of(m, y);
    if (w) w->init = DEFT_INIT_NORMAL_001; /* timm: N(0, 0.01), zero bias */
    if (b) b->init = DEFT_INIT_ZEROS;
    return y;
}

/* Block 0 = the stem, 1..5 = stages.0..stages.4. */
int deft_model_darknet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX], int max) {
    (void)cfg;
    if (block < 0 || block > 5 || max < 1) return -1;
    if (block == 0)
        snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "stem.");
    else
        snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "stages.%d.", block - 1);
    return 1;
}

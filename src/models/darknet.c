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
 *   cspdarknet_tiny (YOLOv4-tiny's backbone, TAO's cspdarknet_tiny): stem.conv0 3x3/2 -> 32,
 *              stem.conv1 3x3/2 -> 64, stages.0..2 CSP tiny blocks (C = 64, 128, 256: conv0
 *              3x3 C, "split" = its second half, conv1 3x3 C/2, conv2 3x3 C/2, "cat0"
 *              [conv2, conv1], conv3 1x1 C, "cat1" [conv0, conv3], "pool" maxpool 2x2/2),
 *              stages.3 3x3 -> 512
 *   head.global_pool - head.flatten - head.drop (training, p > 0) - head.fc
 *
 * The activation is the context's (leaky 0.1 unless a YOLO spec asks for mish or relu).
 * Feature taps: the end of the stage at stride 8, 16, 32 (cspdarknet_tiny: stages.1.conv3,
 * stages.2.conv3 - before the concat and pool, as TAO's neck reads them - and stages.3).
 *
 * darknet19's original classifier is a 1x1 conv (1000) before the average pool; the linear
 * after the pool computes the same function with the same parameter count.
 */
#include <stdio.h>
#include "models/models_impl.h"

static int cna(struct deft_model_ctx *m, const char *p, int x, int out, int k, int stride) {
    int y = deft_model_conv(m, deft_model_name(m, "%s.conv", p), x, out, k, stride, (k - 1) / 2, 1);
    y = deft_model_bn(m, deft_model_name(m, "%s.bn", p), y);
    return deft_act(m->g, deft_model_name(m, "%s.act", p), y, m->act, m->act_alpha);
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
        deft_model_tap(m, 2 << s, y);
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
        deft_model_tap(m, 2 << s, y);
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
        deft_model_tap(m, 2 << s, y);
    }
    return y;
}

/* YOLOv4-tiny's CSP block: conv0 3x3 C; its second half through conv1, conv2 (3x3 C/2);
 * cat0 [conv2, conv1]; conv3 1x1 C; cat1 [conv0, conv3]; maxpool 2x2/2. */
static int csp_tiny_stage(struct deft_model_ctx *m, int s, int x, int c, int stride_in) {
    char q[48];
    snprintf(q, sizeof q, "stages.%d.conv0", s);
    int r0 = cna(m, q, x, c, 3, 1);
    int h = deft_slice(m->g, deft_model_name(m, "stages.%d.split", s), r0, 1, c / 2, c);
    snprintf(q, sizeof q, "stages.%d.conv1", s);
    int r1 = cna(m, q, h, c / 2, 3, 1);
    snprintf(q, sizeof q, "stages.%d.conv2", s);
    int y = cna(m, q, r1, c / 2, 3, 1);
    if (y < 0 || r1 < 0) return -1;
    y = deft_concat(m->g, deft_model_name(m, "stages.%d.cat0", s), (int[]){y, r1}, 2, 1);
    snprintf(q, sizeof q, "stages.%d.conv3", s);
    y = cna(m, q, y, c, 1, 1);
    deft_model_tap(m, stride_in, y); /* TAO's neck reads conv_N_conv_3 */
    if (y < 0 || r0 < 0) return -1;
    y = deft_concat(m->g, deft_model_name(m, "stages.%d.cat1", s), (int[]){r0, y}, 2, 1);
    return deft_pool(m->g, deft_model_name(m, "stages.%d.pool", s), y,
                     &(struct deft_pool_attr){.kind = DEFT_POOL_MAX, .kernel = {2, 2},
                                              .stride = {2, 2}});
}

static int cspdarknet_tiny(struct deft_model_ctx *m, int x) {
    int y = cna(m, "stem.conv0", x, 32, 3, 2);
    y = cna(m, "stem.conv1", y, 64, 3, 2);
    for (int s = 0; s < 3; s++) y = csp_tiny_stage(m, s, y, 64 << s, 4 << s);
    y = cna(m, "stages.3", y, 512, 3, 1);
    deft_model_tap(m, 32, y);
    return y;
}

int deft_model_darknet(struct deft_model_ctx *m, int x, const void *cfg) {
    const struct deft_darknet_cfg *c = cfg;
    int y = c->kind == DEFT_CSPDARKNET_TINY ? cspdarknet_tiny(m, x) : cna(m, "stem.conv1", x, 32, 3, 1);
    y = c->kind == DEFT_DARKNET19 ? darknet19(m, y)
        : c->kind == DEFT_DARKNET53 ? darknet53(m, y)
        : c->kind == DEFT_CSPDARKNET53 ? cspdarknet53(m, y)
                                       : y;
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

/* Block 0 = the stem, 1..5 = stages.0..stages.4; cspdarknet_tiny as TAO numbers it:
 * 0 stem.conv0, 1 stem.conv1, 2..4 stages.0..2, 5 stages.3. */
int deft_model_darknet_blocks(const void *cfg, int block, char (*out)[DEFT_MODEL_PREFIX_MAX], int max) {
    const struct deft_darknet_cfg *c = cfg;
    if (block < 0 || block > 5 || max < 1) return -1;
    if (c && c->kind == DEFT_CSPDARKNET_TINY) {
        if (block < 2)
            snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "stem.conv%d.", block);
        else
            snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "stages.%d.", block - 2);
        return 1;
    }
    if (block == 0)
        snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "stem.");
    else
        snprintf(out[0], DEFT_MODEL_PREFIX_MAX, "stages.%d.", block - 1);
    return 1;
}

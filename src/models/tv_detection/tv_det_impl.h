/* tv_det_impl.h (internal) - the graph builders of torchvision's detectors
 * (tv_detection.h) and what they share. */
#ifndef DEFT_TV_DET_IMPL_H
#define DEFT_TV_DET_IMPL_H

#include "deft/tv_detection.h"
#include "models/models_impl.h"

/* fasterrcnn: the proposals the box head takes (rpn_post_nms_top_n_test) */
#define TV_FRCNN_ROIS 1000

/* Conv with bias, torchvision's names, square kernel. */
int deft_tv_conv(struct deft_model_ctx *m, const char *name, int x, int out_ch, int k, int stride, int pad,
                 int dilation);
/* A stride-1 "same" conv (k odd) of a head shared by the levels: new params
 * `name` at level 0, level 0's params for the others (node "<name>.l<level>"). */
int deft_tv_shared_conv(struct deft_model_ctx *m, const char *name, int level, int x, int out_ch, int k);
/* torchvision's resnet_fpn_backbone on ResNet-50 from stage `first` (1: C2..C5,
 * 2: C3..C5): the FPN outputs into p, returns their count (-1 on error). */
int deft_tv_resnet50_fpn(struct deft_model_ctx *m, int x, int first, int p[4]);
/* Conv2dNormActivation: conv "<p>.0" (no bias, pad (k-1)/2), BN "<p>.1" with eps,
 * activation node "<p>.2" (act: enum deft_act_kind, < 0: none). */
int deft_tv_conv_bn_act(struct deft_model_ctx *m, const char *p, int x, int out, int k, int stride, int groups,
                        int act, float eps);
/* torchvision's mobilenet_v3_large features (tv_mobilenet_v3.c). */
enum tv_mbv3_layout { TV_MBV3_BODY, TV_MBV3_SSDLITE }; /* parameter names: backbone.body.* or ssdlite's */
struct tv_mbv3_opts {
    enum tv_mbv3_layout layout;
    bool reduced_tail; /* C4 on at half width (torchvision's reduced_tail) */
    float bn_eps;      /* 1e-3 (ssdlite's norm_layer), 1e-5 (fasterrcnn's BatchNorm2d / FrozenBatchNorm2d) */
};
struct tv_mbv3_taps {
    int c4_expand, c4, last;         /* features[13].block[0] (C4's expansion), features[13], features[16] */
    int c4_expand_ch, c4_ch, last_ch;
};
/* The features from image x; returns taps->last (-1 on error, sticky in the graph). */
int deft_tv_mobilenet_v3_large(struct deft_model_ctx *m, int x, const struct tv_mbv3_opts *o, struct tv_mbv3_taps *t);
/* The options' reduced_tail (mobilenet_v3 detectors). */
bool deft_tv_reduced_tail(const struct deft_model_ctx *m);
/* torchvision's FeaturePyramidNetwork (256 channels, no norm) on the n maps c
 * (finest first): outputs into p, returns n (-1 on error). */
int deft_tv_fpn(struct deft_model_ctx *m, const int *c, int n, int *p);
/* Flag y as a model output with role `role` ("tv_cls_0"). */
void deft_tv_output(struct deft_model_ctx *m, const char *role, int y);

int deft_tv_build_ssd300_vgg16(struct deft_model_ctx *m, int x);
int deft_tv_build_retinanet_resnet50_fpn(struct deft_model_ctx *m, int x);
int deft_tv_build_fasterrcnn_resnet50_fpn(struct deft_model_ctx *m, int x);
int deft_tv_build_ssdlite320_mobilenet_v3_large(struct deft_model_ctx *m, int x);
int deft_tv_build_fasterrcnn_mobilenet_v3_large_fpn(struct deft_model_ctx *m, int x);

#endif

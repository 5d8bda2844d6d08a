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
/* Flag y as a model output with role `role` ("tv_cls_0"). */
void deft_tv_output(struct deft_model_ctx *m, const char *role, int y);

int deft_tv_build_ssd300_vgg16(struct deft_model_ctx *m, int x);
int deft_tv_build_retinanet_resnet50_fpn(struct deft_model_ctx *m, int x);
int deft_tv_build_fasterrcnn_resnet50_fpn(struct deft_model_ctx *m, int x);

#endif

/* tv_det_impl.h (internal) - the graph builders of torchvision's detectors
 * (tv_detection.h) and what they share. */
#ifndef DEFT_TV_DET_IMPL_H
#define DEFT_TV_DET_IMPL_H

#include "deft/tv_detection.h"
#include "models/models_impl.h"

/* Conv with bias, torchvision's names, square kernel. */
int deft_tv_conv(struct deft_model_ctx *m, const char *name, int x, int out_ch, int k, int stride, int pad,
                 int dilation);
/* Flag y as a model output with role `role` ("tv_cls_0"). */
void deft_tv_output(struct deft_model_ctx *m, const char *role, int y);

int deft_tv_build_ssd300_vgg16(struct deft_model_ctx *m, int x);
int deft_tv_build_retinanet_resnet50_fpn(struct deft_model_ctx *m, int x);

#endif

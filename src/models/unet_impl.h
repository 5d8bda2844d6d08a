/* unet_impl.h (internal) - what the UNet builders share: unet.c resolves the options and
 * builds the resnet and vanilla UNets, unet_vgg.c, unet_efficientnet.c and unet_shufflenet.c
 * the VGG, EfficientNet-B0 and ShuffleNet ones (topologies in include/deft/unet_model.h). */
#ifndef DEFT_UNET_IMPL_H
#define DEFT_UNET_IMPL_H

#include "deft/unet_model.h"
#include "models/models_impl.h"

/* Transposed conv doubling the size: kernel k, stride 2, padding (k - 2) / 2, with bias
 * (TF's "same" padding for these kernels is symmetric, so this is TAO's layer too). */
int deft_unet_up2(struct deft_model_ctx *m, const char *name, int x, int out, int k);

/* Encoder + decoder on input x of m->g for the registry arch ("vgg16", "vgg19_bn",
 * "efficientnet_b0"); *out is the logits value. Errors are sticky in m->g as well. */
enum deft_status deft_unet_build_vgg(struct deft_model_ctx *m, const struct deft_unet_opts *o, const char *arch,
                                     int x, int *out);
enum deft_status deft_unet_build_efficientnet(struct deft_model_ctx *m, const struct deft_unet_opts *o,
                                              const char *arch, int x, int *out);
/* TAO's ShuffleNet UNet (no registry encoder: its names are TAO's layers). */
enum deft_status deft_unet_build_shufflenet(struct deft_model_ctx *m, const struct deft_unet_opts *o, int x,
                                            int *out);

#endif

/* catalogue.c - public pretrained weights deft can download by name: the
 * torchvision ImageNet-1k checkpoints of the architectures deft builds with
 * torchvision's layout. Files are served from download.pytorch.org (or the
 * mirror in $DEFT_MODEL_MIRROR); each file name ends in the first 8 hex digits
 * of its SHA-256, which is what torch.hub checks and what deft checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "deft/models.h"

static const struct deft_pretrained catalogue[] = {
    {"resnet18", "resnet18", "resnet18-f37072fd.pth", "ImageNet-1k top-1 69.8%, 44.7 MB"},
    {"resnet34", "resnet34", "resnet34-b627a593.pth", "ImageNet-1k top-1 73.3%, 83.3 MB"},
    {"resnet50", "resnet50", "resnet50-0676ba61.pth", "ImageNet-1k top-1 76.1% (V1), 97.8 MB"},
    {"resnet101", "resnet101", "resnet101-63fe2227.pth", "ImageNet-1k top-1 77.4% (V1), 171 MB"},
    {"resnet152", "resnet152", "resnet152-394f9c45.pth", "ImageNet-1k top-1 78.3% (V1), 230 MB"},
    {"vgg16", "vgg16", "vgg16-397923af.pth", "ImageNet-1k top-1 71.6%, 528 MB"},
    {"vgg19", "vgg19", "vgg19-dcbb9e9d.pth", "ImageNet-1k top-1 72.4%, 548 MB"},
    {"vgg16_bn", "vgg16_bn", "vgg16_bn-6c64b313.pth", "ImageNet-1k top-1 73.4%, 528 MB"},
    {"vgg19_bn", "vgg19_bn", "vgg19_bn-c79401a0.pth", "ImageNet-1k top-1 74.2%, 548 MB"},
    {"mobilenet_v2", "mobilenet_v2", "mobilenet_v2-b0353104.pth", "ImageNet-1k top-1 71.9% (V1), 13.6 MB"},
    {"squeezenet1_0", "squeezenet1_0", "squeezenet1_0-b66bff10.pth", "ImageNet-1k top-1 58.1%, 4.8 MB"},
    {"squeezenet1_1", "squeezenet1_1", "squeezenet1_1-b8a52dc0.pth", "ImageNet-1k top-1 58.2%, 4.7 MB"},
    {"googlenet", "googlenet", "googlenet-1378be20.pth", "ImageNet-1k top-1 69.8%, 49.7 MB"},
    {"efficientnet_b0", "efficientnet_b0", "efficientnet_b0_rwightman-3dd342df.pth",
     "ImageNet-1k top-1 77.7%, 20.5 MB"},
    {"efficientnet_b1", "efficientnet_b1", "efficientnet_b1_rwightman-533bc792.pth",
     "ImageNet-1k top-1 78.6% (V1), 30.1 MB"},
    {"efficientnet_b2", "efficientnet_b2", "efficientnet_b2_rwightman-bcdf34b7.pth",
     "ImageNet-1k top-1 80.6%, 35.2 MB"},
    {"efficientnet_b3", "efficientnet_b3", "efficientnet_b3_rwightman-cf984f9c.pth",
     "ImageNet-1k top-1 82.0%, 47.2 MB"},
    {NULL, NULL, NULL, NULL},
};

const struct deft_pretrained *deft_pretrained_all(void) { return catalogue; }

const struct deft_pretrained *deft_pretrained_find(const char *name) {
    for (const struct deft_pretrained *p = catalogue; p->name; p++)
        if (!strcasecmp(p->name, name)) return p;
    return NULL;
}

void deft_pretrained_cache_dir(char *out, size_t n) {
    const char *d = getenv("DEFT_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(out, n, "%s", d);
    else if (x && *x) snprintf(out, n, "%s/deft/models", x);
    else snprintf(out, n, "%s/.cache/deft/models", h && *h ? h : ".");
}

void deft_pretrained_url(const struct deft_pretrained *p, char *url, size_t n) {
    const char *base = getenv("DEFT_MODEL_MIRROR");
    if (!base || !*base) base = "https://download.pytorch.org/models/";
    size_t l = strlen(base);
    snprintf(url, n, "%s%s%s", base, l && base[l - 1] == '/' ? "" : "/", p->file);
}

void deft_pretrained_sha256_prefix(const struct deft_pretrained *p, char out[9]) {
    const char *dash = strrchr(p->file, '-');
    snprintf(out, 9, "%.8s", dash ? dash + 1 : "");
}

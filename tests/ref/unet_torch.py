#!/usr/bin/env python3
"""unet_torch.py - an independent PyTorch UNet (TAO's resnet-UNet, vgg-UNet, EfficientNet-B0
UNet, ShuffleNet UNet and vanilla_unet_dynamic topologies, deft's parameter names) for
tests/models/test_unet_model.c.

Written from TAO's description (cv/unet/model: resnet_unet.py's decoder of four
transposed-conv blocks 256/128/64/64 over the skips at strides 8, 4, 2, then a 3x3 conv to
the classes; vgg_unet.py's taps (block 1's first ReLU, the pools of blocks 1-4, block 5's
third conv), its extra pool and five linear 4x4 transposed-conv blocks; efficientnet_unet.py's
taps (block1a/2a/3a/5a_project_bn) and five 2x2 transposed-conv DoubleConv blocks
512..32; shufflenet_unet.py over TAO's ShuffleNet template at its defaults (groups 1, so
no channel shuffle; stages of 4/8/4 units, 144/288/576 channels; Keras "same" padding at
the bottom/right of stride-2 windows) with its FCN-8s-like decoder of class maps;
vanilla_unet_dynamic.py's 32..512 encoder, 1024 centre and mirrored decoder), not from
deft's C. The encoders but ShuffleNet's are torchvision's: resnet re-strided so layer4 stays
at stride 16 (TAO's UNet encoder output stride), vgg16/19(_bn).features cut after block 5's
third conv, efficientnet_b0.features.

usage: unet_torch.py DIR:ARCH:CLASSES:CHANNELS:BN ...
    (ARCH resnet18|resnet34|vgg16|vgg19|efficientnet_b0|shufflenet|vanilla, BN 0|1; vgg with BN: vgg*_bn)
    each DIR holds weights.safetensors (deft's params and BN statistics) and x.npy [N, C, H, W];
    writes logits.npy (eval mode, float64) and nparams.txt; exits 1 when the parameter names
    or shapes differ from deft's.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet_parity import read_safetensors  # noqa: E402


def conv3(cin, cout, bn):
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=not bn)


class Up(nn.Module):
    """deconv 4x4/2 -> concat skip -> [BN] -> ReLU -> conv 3x3 -> [BN] -> ReLU."""

    def __init__(self, cin, cskip, cout, bn):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        self.bn = bn
        if bn:
            self.bn1 = nn.BatchNorm2d(cout + cskip)
            self.bn2 = nn.BatchNorm2d(cout)
        self.conv = conv3(cout + cskip, cout, bn)

    def forward(self, x, skip):
        y = self.deconv(x)
        if skip is not None:
            y = torch.cat([y, skip], 1)
        y = torch.relu(self.bn1(y) if self.bn else y)
        y = self.conv(y)
        return torch.relu(self.bn2(y) if self.bn else y)


class ResNetUNet(nn.Module):
    def __init__(self, depth, classes, channels, bn):
        super().__init__()
        r = getattr(torchvision.models, "resnet%d" % depth)()
        if channels != 3:
            r.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        blk = r.layer4[0]
        blk.conv1.stride = (1, 1) if depth < 50 else blk.conv1.stride
        if depth >= 50:
            blk.conv2.stride = (1, 1)
        blk.downsample[0].stride = (1, 1)
        for name in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(r, name))
        self.maxpool = r.maxpool
        exp = 4 if depth >= 50 else 1
        self.up1 = Up(512 * exp, 128 * exp, 256, bn)
        self.up2 = Up(256, 64 * exp, 128, bn)
        self.up3 = Up(128, 64, 64, bn)
        self.up4 = Up(64, 0, 64, bn)
        self.logits = nn.Conv2d(64, classes, 3, 1, 1)

    def forward(self, x):
        s2 = torch.relu(self.bn1(self.conv1(x)))
        s4 = self.layer1(self.maxpool(s2))
        s8 = self.layer2(s4)
        y = self.layer4(self.layer3(s8))
        y = self.up1(y, s8)
        y = self.up2(y, s4)
        y = self.up3(y, s2)
        y = self.up4(y, None)
        return self.logits(y)


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, bn):
        super().__init__()
        self.bn = bn
        self.conv1 = conv3(cin, cout, bn)
        self.conv2 = conv3(cout, cout, bn)
        if bn:
            self.conv1_bn = nn.BatchNorm2d(cout)
            self.conv2_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = self.conv1(x)
        y = torch.relu(self.conv1_bn(y) if self.bn else y)
        y = self.conv2(y)
        return torch.relu(self.conv2_bn(y) if self.bn else y)


class VanillaUNet(nn.Module):
    def __init__(self, classes, channels, bn):
        super().__init__()
        self.bnflag = bn
        cin = channels
        for i in range(5):
            setattr(self, "enc%d" % i, DoubleConv(cin, 32 << i, bn))
            cin = 32 << i
        self.center = DoubleConv(512, 1024, bn)
        cin = 1024
        for i in range(4, -1, -1):
            d = nn.Module()
            d.deconv = nn.ConvTranspose2d(cin, 32 << i, 2, 2, 0)
            if bn:
                d.bn = nn.BatchNorm2d(2 * (32 << i))
            d.conv1 = conv3(2 * (32 << i), 32 << i, bn)
            d.conv2 = conv3(32 << i, 32 << i, bn)
            if bn:
                d.conv1_bn = nn.BatchNorm2d(32 << i)
                d.conv2_bn = nn.BatchNorm2d(32 << i)
            setattr(self, "dec%d" % i, d)
            cin = 32 << i
        self.logits = nn.Conv2d(32, classes, 1)

    def forward(self, x):
        skips = []
        y = x
        for i in range(5):
            s = getattr(self, "enc%d" % i)(y)
            skips.append(s)
            y = nn.functional.max_pool2d(s, 2, 2)
        y = self.center(y)
        bn = self.bnflag
        for i in range(4, -1, -1):
            d = getattr(self, "dec%d" % i)
            y = torch.cat([skips[i], d.deconv(y)], 1)
            y = torch.relu(d.bn(y) if bn else y)
            y = d.conv1(y)
            y = torch.relu(d.conv1_bn(y) if bn else y)
            y = d.conv2(y)
            y = torch.relu(d.conv2_bn(y) if bn else y)
        return self.logits(y)


class VggUNet(nn.Module):
    def __init__(self, depth, classes, channels, bn):
        super().__init__()
        # torchvision's vgg features without its 100M-parameter classifier (slow to initialise)
        v = torchvision.models.vgg
        f = v.make_layers(v.cfgs["D" if depth == 16 else "E"], batch_norm=bn)
        if channels != 3:
            f[0] = nn.Conv2d(channels, 64, 3, 1, 1)
        convs = [i for i, mod in enumerate(f) if isinstance(mod, nn.Conv2d)]
        pools = [i for i, mod in enumerate(f) if isinstance(mod, nn.MaxPool2d)]
        self.first_relu = convs[0] + (2 if bn else 1)
        self.pool_at = pools[:4]
        # block 5 ends at its third conv's ReLU (TAO's block_5c_relu), for VGG-19 too
        last = convs[len(convs) - (4 if depth == 19 else 3) + 2] + (2 if bn else 1)
        self.features = f[:last + 1]
        widths = [512, 256, 128, 64, 64]
        cin = 512
        for i, c in enumerate(widths):
            d = nn.Module()
            d.deconv = nn.ConvTranspose2d(cin, c, 4, 2, 1)
            d.conv1 = nn.Conv2d(2 * c, c, 3, 1, 1)
            d.conv2 = nn.Conv2d(c, c, 3, 1, 1)
            setattr(self, "up%d" % (i + 1), d)
            cin = c
        self.logits = nn.Conv2d(64, classes, 1)

    def forward(self, x):
        taps = {}
        y = x
        for i, mod in enumerate(self.features):
            y = mod(y)
            taps[i] = y
        skips = [taps[self.first_relu]] + [taps[p] for p in self.pool_at]
        y = nn.functional.max_pool2d(y, 2, 2)
        for i in range(5):
            d = getattr(self, "up%d" % (i + 1))
            y = d.conv2(d.conv1(torch.cat([d.deconv(y), skips[4 - i]], 1)))  # no activation: TAO's
        return self.logits(y)


class EffUp(nn.Module):
    def __init__(self, cin, cskip, cout, bn):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 2, 2, 0)
        self.conv1 = nn.Conv2d(cout + cskip, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout) if bn else None

    def forward(self, x, skip):
        y = self.deconv(x)
        if skip is not None:
            y = torch.cat([y, skip], 1)
        y = torch.relu(self.bn1(self.conv1(y)))
        y = self.conv2(y)
        return torch.relu(self.bn2(y) if self.bn2 is not None else y)


class EfficientNetUNet(nn.Module):
    def __init__(self, classes, channels, bn):
        super().__init__()
        f = torchvision.models.efficientnet_b0().features
        if channels != 3:
            f[0][0] = nn.Conv2d(channels, 32, 3, 2, 1, bias=False)
        self.features = f
        chans = [(1280, 112, 512), (512, 40, 256), (256, 24, 128), (128, 16, 64), (64, 0, 32)]
        for i, (cin, cskip, cout) in enumerate(chans):
            setattr(self, "up%d" % (i + 1), EffUp(cin, cskip, cout, bn))
        self.logits = nn.Conv2d(32, classes, 1)

    def forward(self, x):
        skips = []
        y = self.features[0](x)
        for s in range(1, 8):
            for j, blk in enumerate(self.features[s]):
                y = blk(y)
                if j == 0 and s in (1, 2, 3, 5):  # TAO's block{1,2,3,5}a_project_bn
                    skips.append(y)
        y = self.features[8](y)
        for i in range(5):
            y = getattr(self, "up%d" % (i + 1))(y, skips[3 - i] if i < 4 else None)
        return self.logits(y)


def same_s2(x, value=0.0):
    """Keras "same" for a 3x3 stride-2 window on an even side: pad bottom/right by one."""
    return nn.functional.pad(x, (0, 1, 0, 1), value=value)


class ShuffleUnit(nn.Module):
    """TAO's shuffle unit with groups 1 (its channel shuffle is then the identity)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        mid = cout // 4
        self.stride = stride
        self.gconv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn_gconv1 = nn.BatchNorm2d(mid, eps=1e-3)
        self.dwconv = nn.Conv2d(mid, mid, 3, stride, 1 if stride == 1 else 0, groups=mid, bias=False)
        self.bn_dwconv = nn.BatchNorm2d(mid, eps=1e-3)
        self.gconv2 = nn.Conv2d(mid, cout if stride == 1 else cout - cin, 1, bias=False)
        self.bn_gconv2 = nn.BatchNorm2d(self.gconv2.out_channels, eps=1e-3)

    def forward(self, x):
        y = torch.relu(self.bn_gconv1(self.gconv1(x)))
        y = self.bn_dwconv(self.dwconv(y if self.stride == 1 else same_s2(y)))
        y = self.bn_gconv2(self.gconv2(y))
        if self.stride == 1:
            return torch.relu(y + x)
        # TF's "same" average pool: the sum over the window's cells inside the map / their count
        f = nn.functional.avg_pool2d
        s = f(same_s2(x), 3, 2, divisor_override=1)
        n = f(same_s2(torch.ones_like(x[:, :1])), 3, 2, divisor_override=1)
        return torch.relu(torch.cat([y, s / n], 1))


class ShuffleNetUNet(nn.Module):
    """TAO's shufflenet_unet.py: ShuffleNet template defaults (groups 1, 24 -> 144/288/576,
    4 + 8 + 4 units), score_fr, FCN-8s-like decoder."""

    def __init__(self, classes, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 24, 3, 2, 0, bias=False)
        cin = 24
        for stage, (units, cout) in enumerate(((4, 144), (8, 288), (4, 576)), 2):
            st = nn.Module()
            for b in range(units):
                st.add_module("block%d" % (b + 1), ShuffleUnit(cin, cout, 2 if b == 0 else 1))
                cin = cout
            setattr(self, "stage%d" % stage, st)
        self.score_fr = nn.Conv2d(576, classes, 1)
        self.upscore = nn.ConvTranspose2d(classes, classes, 4, 2, 1)
        self.upscore_bn = nn.BatchNorm2d(classes, eps=1e-2)
        self.score_feed1 = nn.Conv2d(288, classes, 1)
        self.score_feed1_bn = nn.BatchNorm2d(classes, eps=1e-3)
        self.upscore4 = nn.ConvTranspose2d(classes, classes, 4, 2, 1)
        self.upscore4_bn = nn.BatchNorm2d(classes, eps=1e-2)
        self.score_feed2 = nn.Conv2d(144, classes, 1)
        self.score_feed2_bn = nn.BatchNorm2d(classes, eps=1e-3)
        self.logits = nn.ConvTranspose2d(classes, classes, 16, 8, 4)

    def forward(self, x):
        y = torch.relu(self.conv1(same_s2(x)))
        y = nn.functional.max_pool2d(same_s2(y, float("-inf")), 3, 2)
        outs = {}
        for stage in (2, 3, 4):
            for blk in getattr(self, "stage%d" % stage).children():
                y = blk(y)
            outs[stage] = y
        y = self.score_fr(y)
        y = self.upscore_bn(self.upscore(y)) + torch.relu(self.score_feed1_bn(self.score_feed1(outs[3])))
        y = self.upscore4_bn(self.upscore4(y)) + torch.relu(self.score_feed2_bn(self.score_feed2(outs[2])))
        return self.logits(y)


def run(job):
    d, arch, classes, channels, bn = job.split(":")
    classes, channels, bn = int(classes), int(channels), bn == "1"
    if arch == "vanilla":
        m = VanillaUNet(classes, channels, bn)
    elif arch.startswith("vgg"):
        m = VggUNet(int(arch[3:5]), classes, channels, bn)
    elif arch == "efficientnet_b0":
        m = EfficientNetUNet(classes, channels, bn)
    elif arch == "shufflenet":
        m = ShuffleNetUNet(classes, channels)  # TAO builds it the same whatever use_batch_norm says
    else:
        m = ResNetUNet(int(arch[len("resnet"):]), classes, channels, bn)
    m = m.double().eval()
    w = read_safetensors(os.path.join(d, "weights.safetensors"))
    sd = m.state_dict()
    ours = {k for k in sd if not k.endswith("num_batches_tracked")}
    if ours != set(w):
        print("%s: names differ; only torch: %s; only deft: %s" %
              (d, sorted(ours - set(w))[:5], sorted(set(w) - ours)[:5]))
        return False
    for k in ours:
        if tuple(sd[k].shape) != tuple(w[k].shape):
            print("%s: %s is %s in torch, %s in deft" % (d, k, tuple(sd[k].shape), w[k].shape))
            return False
        sd[k] = torch.from_numpy(np.asarray(w[k], dtype=np.float64))
    m.load_state_dict(sd)
    x = torch.from_numpy(np.load(os.path.join(d, "x.npy")).astype(np.float64))
    with torch.no_grad():
        y = m(x)
    np.save(os.path.join(d, "logits.npy"), y.numpy().astype(np.float32))
    n = sum(p.numel() for p in m.parameters())
    open(os.path.join(d, "nparams.txt"), "w").write("%d\n" % n)
    return True


if __name__ == "__main__":
    torch.set_num_threads(2)
    ok = all([run(j) for j in sys.argv[1:]])
    sys.exit(0 if ok else 1)

#!/usr/bin/env python3
"""yolo_v4_torch.py - an independent PyTorch YOLOv4 / YOLOv4-tiny (TAO's topology, deft's
parameter names) for tests/models/test_yolo_model.c and bench/yolo_speed.sh.

Written from TAO's description (cv/yolo_v4/models/base_model.py, architecture/yolo_arch.py,
core/templates/cspdarknet_tiny.py), not from deft's C: torchvision's own resnet / mobilenet_v2
modules (re-strided to TAO's detection layout: output stride 16), the darknets as timm's
cspnet names them, the neck (SPP) and PAN spelt out below.

usage: yolo_v4_torch.py DIR:ARCH:CLASSES:ACT:FORCE_RELU ...   (ACT leaky|mish|relu)
    each DIR holds weights.safetensors (deft's params and BN statistics) and x.npy [N, 3, H, W];
    writes head_s32.npy, head_s16.npy[, head_s8.npy] (eval mode, float64 math) and
    nparams.txt; exits 1 when the parameter names or shapes differ from deft's.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet_parity import read_safetensors  # noqa: E402


def act_module(kind):
    return {"leaky": lambda: nn.LeakyReLU(0.1), "mish": nn.Mish, "relu": nn.ReLU}[kind]()


class CBA(nn.Module):
    """conv (no bias, 'same' padding) + BN + activation."""

    def __init__(self, cin, cout, k, stride, act):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act_module(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


# ---- backbones: forward(x) -> (s8, s16, last) ------------------------------------------

class ResNetBackbone(nn.Module):
    def __init__(self, depth):
        super().__init__()
        R = torchvision.models.resnet
        if depth == 10:
            m = R.ResNet(R.BasicBlock, [1, 1, 1, 1])
        else:
            m = getattr(torchvision.models, "resnet%d" % depth)()
        blk = m.layer4[0]  # TAO's last_stride 1: layer4 keeps stride 16
        (blk.conv2 if depth >= 50 else blk.conv1).stride = (1, 1)
        blk.downsample[0].stride = (1, 1)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(m, name))
        self.channels = (128, 256, 512) if depth < 50 else (512, 1024, 2048)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        s8 = self.layer2(self.layer1(x))
        s16 = self.layer3(s8)
        return s8, s16, self.layer4(s16)


class MobileNetV2Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torchvision.models.mobilenet_v2().features
        self.features[14].conv[1][0].stride = (1, 1)  # TAO's stride-16 MobileNetV2
        self.channels = (32, 96, 1280)

    def forward(self, x):
        s8 = self.features[:7](x)
        s16 = self.features[7:14](s8)
        return s8, s16, self.features[14:](s16)


class DarkBlock(nn.Module):
    def __init__(self, c, mid, out, act):
        super().__init__()
        self.conv1 = CBA(c, mid, 1, 1, act)
        self.conv2 = CBA(mid, out, 3, 1, act)

    def forward(self, x):
        return self.conv2(self.conv1(x)) + x


class DarkStage(nn.Module):
    """darknet53's stage, or cspdarknet53's with csp=True (timm's cspnet layout)."""

    def __init__(self, s, cin, depth, csp, act):
        super().__init__()
        c = 64 << s
        self.csp = csp
        self.conv_down = CBA(cin, c, 3, 2, act)
        if not csp:
            self.blocks = nn.ModuleList([DarkBlock(c, c // 2, c, act) for _ in range(depth)])
            return
        e = 2 * c if s == 0 else c
        self.conv_exp = CBA(c, e, 1, 1, act)
        out, mid = (c, c // 2) if s == 0 else (c // 2, c // 2)
        self.blocks = nn.ModuleList([DarkBlock(e // 2, mid, out, act) for _ in range(depth)])
        self.conv_transition_b = CBA(e // 2, e // 2, 1, 1, act)
        self.conv_transition = CBA(e, c, 1, 1, act)

    def forward(self, x):
        x = self.conv_down(x)
        if not self.csp:
            for b in self.blocks:
                x = b(x)
            return x
        x = self.conv_exp(x)
        a, b = x.chunk(2, dim=1)
        for blk in self.blocks:
            b = blk(b)
        return self.conv_transition(torch.cat([a, self.conv_transition_b(b)], 1))


class Darknet19Stage(nn.Module):
    def __init__(self, cin, widths, act):
        super().__init__()
        layers, c = [], cin
        for j, w in enumerate(widths):
            layers.append(CBA(c, w, 1 if j % 2 else 3, 1, act))
            c = w
        self.blocks = nn.ModuleList(layers)

    def forward(self, x):
        x = F.max_pool2d(x, 2, 2)
        for b in self.blocks:
            x = b(x)
        return x


class DarknetBackbone(nn.Module):
    def __init__(self, kind, act):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv1 = CBA(3, 32, 3, 1, act)
        if kind == "darknet19":
            w = [[64], [128, 64, 128], [256, 128, 256], [512, 256, 512, 256, 512],
                 [1024, 512, 1024, 512, 1024]]
            cins = [32, 64, 128, 256, 512]
            self.stages = nn.ModuleList([Darknet19Stage(cins[s], w[s], act) for s in range(5)])
        else:
            depth = [1, 2, 8, 8, 4]
            self.stages = nn.ModuleList([DarkStage(s, 32 if s == 0 else 32 << s, depth[s],
                                                   kind == "cspdarknet53", act) for s in range(5)])
        self.channels = (256, 512, 1024)

    def forward(self, x):
        x = self.stem.conv1(x)
        outs = []
        for st in self.stages:
            x = st(x)
            outs.append(x)
        return outs[2], outs[3], outs[4]


class TinyStage(nn.Module):
    """TAO's csp_tiny_block."""

    def __init__(self, cin, c, act):
        super().__init__()
        self.conv0 = CBA(cin, c, 3, 1, act)
        self.conv1 = CBA(c // 2, c // 2, 3, 1, act)
        self.conv2 = CBA(c // 2, c // 2, 3, 1, act)
        self.conv3 = CBA(c, c, 1, 1, act)

    def forward(self, x):
        r0 = self.conv0(x)
        r1 = self.conv1(r0[:, r0.shape[1] // 2:])
        tap = self.conv3(torch.cat([self.conv2(r1), r1], 1))
        return F.max_pool2d(torch.cat([r0, tap], 1), 2, 2), tap


class TinyBackbone(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv0 = CBA(3, 32, 3, 2, act)
        self.stem.conv1 = CBA(32, 64, 3, 2, act)
        self.stages = nn.ModuleList([TinyStage(64, 64, act), TinyStage(128, 128, act),
                                     TinyStage(256, 256, act), CBA(512, 512, 3, 1, act)])
        self.channels = (128, 256, 512)

    def forward(self, x):
        x = self.stem.conv1(self.stem.conv0(x))
        taps = []
        for st in self.stages[:3]:
            x, t = st(x)
            taps.append(t)
        return taps[1], taps[2], self.stages[3](x)


# ---- YOLOv4 ------------------------------------------------------------------------------

# arch -> (map sizes c0, c1, expand conv channels)
NECK = {"resnet10": (128, 64, 512), "resnet18": (128, 64, 512), "resnet34": (128, 64, 512),
        "resnet50": (256, 128, 1024), "mobilenet_v2": (32, 16, 96),
        "darknet19": (256, 128, 0), "darknet53": (256, 128, 0), "cspdarknet53": (256, 128, 0),
        "cspdarknet_tiny": (128, 0, 0)}


class YoloV4(nn.Module):
    def __init__(self, arch, classes, act="leaky", force_relu=False, anchors=(3, 3, 3)):
        super().__init__()
        bact = "relu" if force_relu else act
        nact = "relu" if force_relu else "leaky"
        if arch.startswith("resnet"):
            self.backbone = ResNetBackbone(int(arch[6:]))
        elif arch == "mobilenet_v2":
            self.backbone = MobileNetV2Backbone()
        elif arch == "cspdarknet_tiny":
            self.backbone = TinyBackbone(bact)
        else:
            self.backbone = DarknetBackbone(arch, bact)
        self.tiny = arch == "cspdarknet_tiny"
        c0, c1, self.expand = NECK[arch]
        ch8, ch16, chl = self.backbone.channels

        def cba(name, cin, cout, k, s=1):
            setattr(self, name, CBA(cin, cout, k, s, nact))

        out = [a * (5 + classes) for a in anchors]
        if self.tiny:
            cba("yolo_conv1_1", chl, 2 * c0, 1)
            cba("yolo_conv1_6", 2 * c0, 4 * c0, 3)
            cba("yolo_conv2", 2 * c0, c0, 1)
            cba("yolo_conv3_6", c0 + ch16, 2 * c0, 3)
            self.head_s32 = nn.Conv2d(4 * c0, out[0], 1)
            self.head_s16 = nn.Conv2d(2 * c0, out[1], 1)
            return
        cba("yolo_neck_1", chl, 512, 1)
        cba("yolo_neck_2", 512, 1024, 3)
        cba("yolo_neck_3", 1024, 512, 1)
        cba("yolo_spp_conv", 2048, 512, 1)
        big = 512
        if self.expand:
            cba("yolo_expand_conv1", 512, self.expand, 3, 2)
            big = self.expand
        cba("yolo_conv1_2", big, 4 * c0, 3)
        cba("yolo_conv1_3", 4 * c0, 2 * c0, 1)
        cba("yolo_conv2", 2 * c0, c0, 1)
        cba("yolo_x_branch", ch16, c0, 1)
        cba("yolo_conv3_1", 2 * c0, c0, 1)
        cba("yolo_conv3_2", c0, 2 * c0, 3)
        cba("yolo_conv3_3", 2 * c0, c0, 1)
        cba("yolo_conv3_4", c0, 2 * c0, 3)
        cba("yolo_conv3_5", 2 * c0, c0, 1)
        cba("yolo_conv4", c0, c1, 1)
        cba("yolo_x_branch_2", ch8, c1, 1)
        cba("yolo_conv5_1", 2 * c1, c1, 1)
        cba("yolo_conv5_2", c1, 2 * c1, 3)
        cba("yolo_conv5_3", 2 * c1, c1, 1)
        cba("yolo_conv5_4", c1, 2 * c1, 3)
        cba("yolo_conv5_5", 2 * c1, c1, 1)
        cba("yolo_conv5_6", c1, 2 * c1, 3)
        cba("yolo_sm_branch_conv", c1, c0, 3, 2)
        cba("yolo_conv3_5_1", 2 * c0, c0, 1)
        cba("yolo_conv3_4_2", c0, 2 * c0, 3)
        cba("yolo_conv3_5_1_1", 2 * c0, c0, 1)
        cba("yolo_conv3_6", c0, 2 * c0, 3)
        cba("md_leaky_conv512", 2 * c0, 256, 1)
        cba("md_leaky_conv512_down", 256, 512, 3, 2)
        cba("md_leaky_conv1024", 256, 512, 3)
        cba("yolo_conv1_3_1", c0 + 512, 2 * c0, 1)
        cba("yolo_conv1_4", 2 * c0, 4 * c0, 3)
        cba("yolo_conv1_5", 4 * c0, 2 * c0, 1)
        cba("yolo_conv1_6", 2 * c0, 4 * c0, 3)
        cba("bg_leaky_conv512", 4 * c0, 512, 1)
        cba("bg_leaky_conv1024", 512, 1024, 3)
        self.head_s32 = nn.Conv2d(1024, out[0], 1)
        self.head_s16 = nn.Conv2d(512, out[1], 1)
        self.head_s8 = nn.Conv2d(2 * c1, out[2], 1)

    def forward(self, x):
        s8, s16, last = self.backbone(x)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        if self.tiny:
            x = self.yolo_conv1_1(last)
            bg = self.yolo_conv1_6(x)
            x = torch.cat([up(self.yolo_conv2(x)), s16], 1)
            return self.head_s32(bg), self.head_s16(self.yolo_conv3_6(x))
        n = self.yolo_neck_3(self.yolo_neck_2(self.yolo_neck_1(last)))
        spp = [F.max_pool2d(n, k, 1, k // 2) for k in (5, 9, 13)]
        x = self.yolo_spp_conv(torch.cat(spp + [n], 1))
        if self.expand:
            x = self.yolo_expand_conv1(x)
        branch0 = self.yolo_conv2(self.yolo_conv1_3(self.yolo_conv1_2(x)))
        x = torch.cat([up(branch0), self.yolo_x_branch(s16)], 1)
        for name in ("yolo_conv3_1", "yolo_conv3_2", "yolo_conv3_3", "yolo_conv3_4", "yolo_conv3_5"):
            x = getattr(self, name)(x)
        nxt = x
        x = torch.cat([up(self.yolo_conv4(nxt)), self.yolo_x_branch_2(s8)], 1)
        for name in ("yolo_conv5_1", "yolo_conv5_2", "yolo_conv5_3", "yolo_conv5_4", "yolo_conv5_5"):
            x = getattr(self, name)(x)
        sm = self.yolo_conv5_6(x)
        x = torch.cat([nxt, self.yolo_sm_branch_conv(x)], 1)
        for name in ("yolo_conv3_5_1", "yolo_conv3_4_2", "yolo_conv3_5_1_1", "yolo_conv3_6"):
            x = getattr(self, name)(x)
        md = self.md_leaky_conv512(x)
        md_out = self.md_leaky_conv1024(md)
        x = torch.cat([branch0, self.md_leaky_conv512_down(md)], 1)
        for name in ("yolo_conv1_3_1", "yolo_conv1_4", "yolo_conv1_5", "yolo_conv1_6",
                     "bg_leaky_conv512", "bg_leaky_conv1024"):
            x = getattr(self, name)(x)
        return self.head_s32(x), self.head_s16(md_out), self.head_s8(sm)


def deft_name(k):
    """torch state_dict key -> deft's (the backbone wrapper is not a level in deft)."""
    return k[len("backbone."):] if k.startswith("backbone.") else k


def load_deft(m, w):
    """Load deft's tensors by name; returns a list of mismatches (empty when all agree)."""
    sd = m.state_dict()
    bad, seen = [], set()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        d = deft_name(k)
        seen.add(d)
        if d not in w:
            bad.append("torch has %s, deft does not" % d)
        elif tuple(w[d].shape) != tuple(sd[k].shape):
            bad.append("%s: deft %s, torch %s" % (d, tuple(w[d].shape), tuple(sd[k].shape)))
        else:
            sd[k] = w[d]
    bad += ["deft has %s, torch does not" % k for k in w if k not in seen]
    m.load_state_dict(sd)
    return bad


def reference(d, arch, classes, act, force_relu):
    m = YoloV4(arch, int(classes), act, force_relu == "1",
               anchors=(3, 3) if arch == "cspdarknet_tiny" else (3, 3, 3))
    bad = load_deft(m, read_safetensors(os.path.join(d, "weights.safetensors")))
    for b in bad[:20]:
        print("yolo_v4_torch %s:" % arch, b)
    n = sum(p.numel() for p in m.parameters())
    with open(os.path.join(d, "nparams.txt"), "w") as f:
        f.write("%d\n" % n)
    m.double().eval()
    x = torch.from_numpy(np.load(os.path.join(d, "x.npy"))).double()
    with torch.no_grad():
        outs = m(x)
    for name, y in zip(("head_s32", "head_s16", "head_s8"), outs):
        np.save(os.path.join(d, name + ".npy"), y.numpy().astype(np.float32))
    return not bad


def main():
    torch.set_num_threads(2)
    ok = True
    for job in sys.argv[1:]:
        ok &= reference(*job.split(":"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

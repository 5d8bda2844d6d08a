#!/usr/bin/env python3
"""camvid_torch.py - the PyTorch peer of bench/unet_camvid.sh: torchvision's LR-ASPP
(mobilenet_v3_large) or FCN (resnet50), from scratch, on the CamVid subset with the recipe of
specs/unet_resnet18_camvid.txt: 320x240, batch 8, Adam 1e-3 with cosine decay to 1e-5, L2 1e-5,
hflip 0.5, TAO's crop-and-resize (p 0.5, ratio 0.1), brightness 0.1 (normalized units), inputs
x/127.5 - 1, id 11 ignored. Prints per epoch the seconds and the val mIoU over the 11 classes
(classes absent from truth and prediction skipped, as deft and TAO do).

usage: /usr/bin/python3 bench/camvid_torch.py CAMVID_DIR EPOCHS [lraspp|fcn] [THREADS]
"""
import math, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

root, epochs = sys.argv[1], int(sys.argv[2])
arch = sys.argv[3] if len(sys.argv) > 3 else "lraspp"
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
torch.manual_seed(42)
rng = np.random.default_rng(42)
W, H, C, IGNORE = 320, 240, 11, 11


def load(split):
    names = sorted(os.listdir(f"{root}/{split}/images"))
    xs, ys = [], []
    for n in names:
        im = Image.open(f"{root}/{split}/images/{n}").convert("RGB")
        lb = Image.open(f"{root}/{split}/labels/{os.path.splitext(n)[0]}.png")
        xs.append(np.asarray(im, np.float32))
        ys.append(np.asarray(lb, np.int64))
    return xs, ys


def transform(x, y, train):
    h, w = y.shape
    box = (0, 0, w, h)
    if train and rng.random() < 0.5:  # each side moves in by U(0, 0.1)
        l, r, t, b = rng.random(4) * 0.1
        box = (l * w, t * h, (1 - r) * w, (1 - b) * h)
    xi = Image.fromarray(x.astype(np.uint8)).resize((W, H), Image.BILINEAR, box=box)
    yi = Image.fromarray(y.astype(np.uint8)).resize((W, H), Image.NEAREST, box=box)
    xa = np.asarray(xi, np.float32) / 127.5 - 1
    ya = np.asarray(yi, np.int64)
    if train:
        if rng.random() < 0.5:
            xa, ya = xa[:, ::-1], ya[:, ::-1]
        xa = np.clip(xa + rng.uniform(-0.1, 0.1), -1, 1)
    return xa.transpose(2, 0, 1).copy(), ya.copy()


def miou(conf):
    tp = np.diag(conf).astype(float)
    den = conf.sum(0) + conf.sum(1) - tp
    iou = np.where(den > 0, tp / np.maximum(den, 1), np.nan)
    return np.nanmean(iou), iou


tx, ty = load("train")
vx, vy = load("val")
if arch == "fcn":
    m = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=C, aux_loss=False)
else:
    m = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=C)
opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-8, weight_decay=0)
steps = epochs * (len(tx) // 8)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
for e in range(epochs):
    m.train()
    t0 = time.time()
    order = rng.permutation(len(tx))
    for b in range(len(tx) // 8):
        batch = [transform(tx[i], ty[i], True) for i in order[b * 8:(b + 1) * 8]]
        x = torch.from_numpy(np.stack([p[0] for p in batch]))
        y = torch.from_numpy(np.stack([p[1] for p in batch]))
        out = m(x)["out"]
        loss = F.cross_entropy(out, y, ignore_index=IGNORE)
        l2 = sum((p * p).sum() for n, p in m.named_parameters() if p.ndim > 1)
        opt.zero_grad()
        (loss + 1e-5 * l2).backward()
        opt.step()
        sched.step()
    t1 = time.time()
    m.eval()
    conf = np.zeros((C, C), np.int64)
    with torch.no_grad():
        for i in range(len(vx)):
            x, y = transform(vx[i], vy[i], False)
            p = m(torch.from_numpy(x)[None])["out"][0].argmax(0).numpy()
            k = y != IGNORE
            conf += np.bincount(y[k] * C + p[k], minlength=C * C).reshape(C, C)
    mi, _ = miou(conf)
    print("epoch %d/%d: %.1f s training, val mIoU %.4f, pixel accuracy %.4f" %
          (e + 1, epochs, t1 - t0, mi, np.trace(conf) / conf.sum()), flush=True)

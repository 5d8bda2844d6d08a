#!/usr/bin/python3
"""seg_loss_ref.py - PyTorch references for tests/unit/test_seg_loss.c.

For every DIR/caseN_cfg.npy written by the C test, computes the loss the
config names in float64 with PyTorch and its gradient by autograd, and writes
caseN_loss_ref.txt (total ce dice) and caseN_grad_ref.npy.

cfg = [kind, n_classes, ignore_id, sigmoid, has_weights, w_0, ..., w_{K-1}]
kind: 0 cross_entropy, 1 dice, 2 cross_dice_sum. logits [n, C, h, w] f32,
target [n, h, w] class ids stored as f32.

The definitions, written from the documents rather than from deft's code:
  cross entropy  F.cross_entropy(weight=w, ignore_index=ignore, reduction='mean')
                 (sigmoid head: BCE-with-logits per pixel, weighted mean w[y])
  dice           TAO's dice_coef on NCHW: sums over axis 1 (classes) of p*t and
                 p*p + t*t with the one-hot target, eps 0, per-pixel 1 - Dice
                 averaged over the pixels whose target is not the ignore id
                 (sigmoid head: the same on the single channel, t = y)
"""
import glob
import sys

import numpy as np
import torch
import torch.nn.functional as F


def ce_softmax(x, y, w, ignore):
    return F.cross_entropy(x, y, weight=w, ignore_index=ignore, reduction="mean")


def dice_softmax(x, y, valid, k):
    p = torch.softmax(x, dim=1)
    t = F.one_hot(torch.where(valid, y, torch.zeros_like(y)), k).permute(0, 3, 1, 2).to(x.dtype)
    d = 2 * (p * t).sum(dim=1) / (p * p + t * t).sum(dim=1)
    return (1 - d)[valid].mean()


def ce_sigmoid(x, y, valid, w):
    z = x[:, 0]
    t = torch.where(valid, y, torch.zeros_like(y)).to(x.dtype)
    per = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    wy = w[torch.where(valid, y, torch.zeros_like(y))] * valid.to(x.dtype)
    return (wy * per).sum() / wy.sum()


def dice_sigmoid(x, y, valid):
    p = torch.sigmoid(x[:, 0])
    t = torch.where(valid, y, torch.zeros_like(y)).to(x.dtype)
    d = 2 * p * t / (p * p + t * t)
    return (1 - d)[valid].mean()


def run(base):
    cfg = np.load(base + "_cfg.npy").astype(np.float64)
    kind, k, ignore, sigmoid, has_w = (int(v) for v in cfg[:5])
    w = torch.tensor(cfg[5:5 + k] if has_w else np.ones(k), dtype=torch.float64)
    x = torch.tensor(np.load(base + "_logits.npy").astype(np.float64), requires_grad=True)
    y = torch.tensor(np.load(base + "_target.npy").astype(np.int64))
    valid = y != ignore
    if sigmoid:
        ce, dice = ce_sigmoid(x, y, valid, w), dice_sigmoid(x, y, valid)
    else:
        ce, dice = ce_softmax(x, y, w if has_w else None, ignore), dice_softmax(x, y, valid, k)
    total = ce if kind == 0 else dice if kind == 1 else ce + dice
    total.backward()
    with open(base + "_loss_ref.txt", "w") as f:
        f.write("%.17g %.17g %.17g\n" % (total.item(), ce.item(), dice.item()))
    np.save(base + "_grad_ref.npy", x.grad.numpy().astype(np.float32))


def main():
    torch.set_num_threads(1)
    for cfg in sorted(glob.glob(sys.argv[1] + "/case*_cfg.npy")):
        run(cfg[: -len("_cfg.npy")])


if __name__ == "__main__":
    main()

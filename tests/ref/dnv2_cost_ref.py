#!/usr/bin/env python3
"""PyTorch reference for DetectNet_v2's cost (tao.md §3.3), written from the
definition, gradients by autograd (float64):

  cov  = mean(mask * w * -(t log(p + 1e-5) + (1 - t) log(1 - p + 1e-5))),
         w = fg where t > 0.5 else 1 - fg, p = the input or sigmoid(input)
  bbox = mean(mask * cov_norm * |pred - target|) over n x 4 x H x W
  total = sum_k cw_k / sum(cw) * (ow_k,cov * cov_k + ow_k,bbox * bbox_k),
  ow initialised to initial_weight / sum per class; after the epoch (all
  batches), with auto-weighting: ow = clamp(normalised weight_target /
  sum of batch means, min, max), kept when the weights sum to 0.

Usage: dnv2_cost_ref.py DIR...; DIR holds cfg.npy [n, K, gh, gw, logits,
autoweight, min, max, batches], cls.npy [K, 6] (class_weight, fg,
init_cov, init_bbox, target_cov, target_bbox), cov/cov_norm/bbox/mask.npy
(targets) and pred_cov<b>.npy, pred_bbox<b>.npy; writes terms<b>.npy
[1 + 2K], grad_cov<b>.npy, grad_bbox<b>.npy, weights.npy [K, 2] and
after.npy [1] (batch 0's total with the new weights).
"""
import sys
import numpy as np
import torch


def load(d, name):
    return torch.from_numpy(np.load("%s/%s.npy" % (d, name)).astype(np.float64))


def costs(d, cfg, cls, b):
    n, K, gh, gw = (int(v) for v in cfg[:4])
    pc = load(d, "pred_cov%d" % b).reshape(n, K, gh, gw).requires_grad_()
    pb = load(d, "pred_bbox%d" % b).reshape(n, K, 4, gh, gw).requires_grad_()
    t = load(d, "cov").reshape(n, K, gh, gw)
    tn = load(d, "cov_norm").reshape(n, K, 1, gh, gw)
    tb = load(d, "bbox").reshape(n, K, 4, gh, gw)
    m = load(d, "mask").reshape(n, K, gh, gw)
    p = torch.sigmoid(pc) if cfg[4] > 0 else pc
    means = []
    for k in range(K):
        fg = float(cls[k, 1])
        w = torch.where(t[:, k] > 0.5, torch.full_like(t[:, k], fg), torch.full_like(t[:, k], 1 - fg))
        bce = -(t[:, k] * torch.log(p[:, k] + 1e-5) + (1 - t[:, k]) * torch.log(1 - p[:, k] + 1e-5))
        means.append((m[:, k] * w * bce).mean())
        means.append((m[:, k, None] * tn[:, k] * (pb[:, k] - tb[:, k]).abs()).mean())
    return pc, pb, means


def total(cls, ow, means):
    cw = cls[:, 0] / cls[:, 0].sum()
    return sum(cw[k] * (ow[k][0] * means[2 * k] + ow[k][1] * means[2 * k + 1])
               for k in range(len(cls)))


def run(d):
    cfg = np.load(d + "/cfg.npy").astype(np.float64)
    cls = np.load(d + "/cls.npy").astype(np.float64)
    K = len(cls)
    ow = [[c[2] / (c[2] + c[3]), c[3] / (c[2] + c[3])] for c in cls]
    sums = np.zeros((K, 2))
    for b in range(int(cfg[8])):
        pc, pb, means = costs(d, cfg, cls, b)
        tot = total(cls, ow, means)
        tot.backward()
        mv = [float(v) for v in means]
        sums += np.array(mv).reshape(K, 2)
        np.save("%s/terms%d.npy" % (d, b), np.array([float(tot)] + mv, np.float32))
        np.save("%s/grad_cov%d.npy" % (d, b), pc.grad.numpy().astype(np.float32))
        np.save("%s/grad_bbox%d.npy" % (d, b), pb.grad.numpy().astype(np.float32))
    if cfg[5] > 0:
        for k in range(K):
            w = [cls[k, 4 + o] * (0.0 if sums[k, o] == 0 else 1.0 / sums[k, o]) for o in range(2)]
            if sum(w) == 0:
                continue
            ow[k] = [min(max(v / sum(w), cfg[6]), cfg[7]) for v in w]
    np.save(d + "/weights.npy", np.array(ow, np.float32))
    _, _, means = costs(d, cfg, cls, 0)
    np.save(d + "/after.npy", np.array([float(total(cls, ow, means))], np.float32))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        run(d)

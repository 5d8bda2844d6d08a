"""retinanet_ref.py DIR... - the RetinaNet focal loss reference for
tests/tasks/test_retinanet_loss.c: torchvision.ops.sigmoid_focal_loss over the
non-neutral priors' object classes + loc_weight * smooth-L1 over the positives,
both / max(1, n_pos), on the conf/loc maps deft wrote (NCHW, SSD's layout) and
deft's matching labels/targets; gradients by autograd. Writes ref_terms.npy
[total, cls, loc] and ref_g{conf,loc}<l>.npy."""
import sys
import numpy as np
import torch
from torchvision.ops import sigmoid_focal_loss


def rows(t, boxes, k):  # [B, boxes*k, h, w] -> [B, h*w*boxes, k], deft_ssd_gather's order
    b, _, h, w = t.shape
    return t.permute(0, 2, 3, 1).reshape(b, h * w * boxes, k)


def run(d):
    cfg = np.load(f"{d}/cfg.npy")  # K, L, batch, loc_weight, alpha, gamma
    K, L, B = int(cfg[0]), int(cfg[1]), int(cfg[2])
    lw, alpha, gamma = float(cfg[3]), float(cfg[4]), float(cfg[5])
    maps = np.load(f"{d}/maps.npy").astype(int)
    conf = [torch.tensor(np.load(f"{d}/conf{l}.npy"), dtype=torch.float64, requires_grad=True) for l in range(L)]
    loc = [torch.tensor(np.load(f"{d}/loc{l}.npy"), dtype=torch.float64, requires_grad=True) for l in range(L)]
    label = torch.tensor(np.load(f"{d}/label.npy")).long()  # [B, P]
    tgt = torch.tensor(np.load(f"{d}/target.npy"), dtype=torch.float64)  # [B, P, 4]
    z = torch.cat([rows(conf[l], maps[l][2], K) for l in range(L)], 1)
    r = torch.cat([rows(loc[l], maps[l][2], 4) for l in range(L)], 1)
    onehot = torch.nn.functional.one_hot(label.clamp(min=0), K).double()[..., 1:]
    keep = (label >= 0)
    fl = sigmoid_focal_loss(z[..., 1:][keep], onehot[keep], alpha=alpha, gamma=gamma, reduction="sum")
    pos = label > 0
    sl1 = torch.nn.functional.smooth_l1_loss(r[pos], tgt[pos], reduction="sum", beta=1.0)
    norm = max(1.0, float(pos.sum()))
    cls, lc = fl / norm, lw * sl1 / norm
    total = cls + lc
    total.backward()
    np.save(f"{d}/ref_terms.npy", np.array([total.item(), cls.item(), lc.item()], np.float32))
    for l in range(L):
        np.save(f"{d}/ref_gconf{l}.npy", conf[l].grad.numpy().astype(np.float32))
        np.save(f"{d}/ref_gloc{l}.npy", loc[l].grad.numpy().astype(np.float32))


for d in sys.argv[1:]:
    run(d)

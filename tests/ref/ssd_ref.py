"""Independent PyTorch reference of TAO's SSD matching, loss (value and
gradients by autograd) and decoding + NMS, as ../shared/reference/detection.md
§5 and TAO's cv/ssd (SSDInputEncoder, SSDLoss, DecodeDetections) define them,
for tests/tasks/test_ssd_loss.c.

    ssd_ref.py CASE_DIR...

Each CASE_DIR holds (float32 .npy, written by the C test):
  cfg.npy    [K (classes with background), n_maps, batch, alpha, neg_pos_ratio,
              n_neg_min, pos_iou, neg_iou, conf_threshold, nms_iou, top_k]
  maps.npy   [n_maps, 3]: h, w, boxes per cell
  priors.npy [P, 8]: x1 y1 x2 y2 (normalised), 4 variances
  conf<l>.npy [batch, boxes*K, h, w], loc<l>.npy [batch, boxes*4, h, w]
  gt.npy     [n, 6]: image, class (0-based object class), x1, y1, x2, y2
and receives ref_terms.npy [total, cls, loc, n_pos, n_neg_kept, n_neutral],
ref_label.npy [batch, P] (-1 neutral, 0 background, k+1), ref_gconf<l>.npy,
ref_gloc<l>.npy and ref_det<b>.npy [k, 6] (x1, y1, x2, y2, class, score).

Written from the description, not from deft's C: IoU by torchvision.ops.box_iou,
the greedy bipartite step as TF's bipartite_match (global best pair first),
the loss spelled out tensor-wise in float64 and differentiated by autograd,
NMS by torchvision.ops.batched_nms.
"""
import os
import sys

import numpy as np
import torch
import torchvision

torch.set_default_dtype(torch.float64)


def load(d, n):
    return np.load(os.path.join(d, n))


def save(d, n, a):
    np.save(os.path.join(d, n), np.asarray(a, dtype=np.float32))


def match(priors, gt, pos, neg):
    P = priors.shape[0]
    label = np.zeros(P, dtype=np.int64)
    tgt = np.zeros((P, 4))
    if len(gt) == 0:
        return label, tgt
    boxes = torch.tensor(gt[:, 2:6], dtype=torch.float64)
    valid = ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).numpy()
    sim = torchvision.ops.box_iou(boxes, torch.tensor(priors[:, :4], dtype=torch.float64)).numpy()
    sim = sim.astype(np.float32)  # the C side computes IoU in float
    sim[~valid] = 0
    owner = -np.ones(P, dtype=np.int64)
    best = np.full(P, -1.0)
    for p in range(P):
        for g in range(len(gt)):
            if valid[g] and sim[g, p] > best[p]:
                best[p], owner[p] = sim[g, p], g
    s = sim.copy()
    s[~valid] = -2
    bip = {}
    for _ in range(int(valid.sum())):
        g, p = np.unravel_index(np.argmax(s), s.shape)  # first maximum in row-major order
        bip[p] = g
        s[g, :] = -2
        s[:, p] = -2
    assign = -np.ones(P, dtype=np.int64)
    for p in range(P):
        if p in bip:
            assign[p] = bip[p]
        elif owner[p] >= 0 and best[p] >= pos:
            assign[p] = owner[p]
        elif best[p] >= neg:
            label[p] = -1
    for p in np.nonzero(assign >= 0)[0]:
        g = gt[assign[p]]
        label[p] = int(g[1]) + 1
        a = priors[p]
        acx, acy, aw, ah = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2, a[2] - a[0], a[3] - a[1]
        gcx, gcy, gw, gh = (g[2] + g[4]) / 2, (g[3] + g[5]) / 2, g[4] - g[2], g[5] - g[3]
        tgt[p] = [(gcx - acx) / aw / a[4], (gcy - acy) / ah / a[5], np.log(gw / aw) / a[6], np.log(gh / ah) / a[7]]
    return label, tgt


def flat(t, K):  # [B, boxes*K, h, w] -> [B, h*w*boxes, K] (TAO's Permute(2,3,1) + Reshape)
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, K)


def run(d):
    c = load(d, "cfg.npy").astype(np.float64)
    K, L, B = int(c[0]), int(c[1]), int(c[2])
    alpha, ratio, nmin, pos, neg, conf_t, nms_iou, top_k = c[3], c[4], int(c[5]), c[6], c[7], c[8], c[9], int(c[10])
    priors = load(d, "priors.npy").astype(np.float64)
    gt = load(d, "gt.npy").astype(np.float64).reshape(-1, 6)
    confs = [torch.tensor(load(d, "conf%d.npy" % l).astype(np.float64), requires_grad=True) for l in range(L)]
    locs = [torch.tensor(load(d, "loc%d.npy" % l).astype(np.float64), requires_grad=True) for l in range(L)]
    conf = torch.cat([flat(x, K) for x in confs], 1)
    loc = torch.cat([flat(x, 4) for x in locs], 1)
    labels, tgts = [], []
    for b in range(B):
        lb, tg = match(priors, gt[gt[:, 0] == b], pos, neg)
        labels.append(lb)
        tgts.append(tg)
    label = torch.tensor(np.stack(labels))
    tgt = torch.tensor(np.stack(tgts))
    onehot = torch.zeros_like(conf)
    for k in range(K):
        onehot[..., k] = (label == k).double()
    prob = torch.clamp(torch.softmax(conf, -1), min=1e-15)
    ce = -(onehot * torch.log(prob)).sum(-1)
    diff = loc - tgt
    ad = diff.abs()
    sl1 = torch.where(ad < 1, 0.5 * diff ** 2, ad - 0.5).sum(-1)
    positives = (label > 0).double()
    negatives = (label == 0).double()
    n_pos = positives.sum()
    neg_all = (ce * negatives).detach().reshape(-1)
    nnz = int((neg_all != 0).sum())
    k = min(max(int(ratio * n_pos.item()), nmin), nnz)
    keep = torch.zeros_like(neg_all)
    if k > 0:
        order = np.argsort(-neg_all.numpy(), kind="stable")[:k]
        keep[torch.tensor(order)] = 1
    keep = keep.reshape(B, -1)
    norm = torch.clamp(n_pos, min=1.0)
    cls = ((ce * positives).sum() + (ce * keep).sum()) / norm
    locl = alpha * (sl1 * positives).sum() / norm
    total = cls + locl
    total.backward()
    save(d, "ref_terms.npy", [total.item(), cls.item(), locl.item(), n_pos.item(), keep.sum().item(),
                              float((label < 0).sum())])
    save(d, "ref_label.npy", label.numpy())
    for l in range(L):
        save(d, "ref_gconf%d.npy" % l, confs[l].grad.numpy())
        save(d, "ref_gloc%d.npy" % l, locs[l].grad.numpy())
    # decode: softmax, centre-size with variances, candidates >= conf, NMS per class, best top_k, clipped
    with torch.no_grad():
        pr = torch.tensor(priors)
        acx, acy = (pr[:, 0] + pr[:, 2]) / 2, (pr[:, 1] + pr[:, 3]) / 2
        aw, ah = pr[:, 2] - pr[:, 0], pr[:, 3] - pr[:, 1]
        for b in range(B):
            p = torch.softmax(conf[b], -1)
            t = loc[b]
            cx = t[:, 0] * pr[:, 4] * aw + acx
            cy = t[:, 1] * pr[:, 5] * ah + acy
            w = torch.exp(t[:, 2] * pr[:, 6]) * aw
            h = torch.exp(t[:, 3] * pr[:, 7]) * ah
            boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
            cand_b, cand_s, cand_c = [], [], []
            for kk in range(1, K):
                m = p[:, kk] >= conf_t
                cand_b.append(boxes[m]), cand_s.append(p[m, kk]), cand_c.append(torch.full((int(m.sum()),), kk - 1))
            bb, ss, cc = torch.cat(cand_b), torch.cat(cand_s), torch.cat(cand_c)
            keep_i = torchvision.ops.batched_nms(bb, ss, cc, nms_iou)[:top_k]
            out = torch.cat([bb[keep_i].clamp(0, 1), cc[keep_i, None].double(), ss[keep_i, None]], 1)
            save(d, "ref_det%d.npy" % b, out.numpy().reshape(-1, 6))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        run(d)

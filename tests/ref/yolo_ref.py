"""Independent PyTorch reference of YOLOv4's matching, loss (value and
gradients by autograd), decode and NMS as ../shared/reference/detection.md §2
describes TAO's, for tests/tasks/test_yolo_loss.c.

    yolo_ref.py CASE_DIR...

Each CASE_DIR holds (float32 .npy, written by the C test):
  cfg.npy    [n_classes, box_matching_iou, neutral_iou, loc_w, neg_obj_w, cls_w,
              label_smoothing, focal_alpha, focal_gamma, conf_threshold, nms_iou,
              top_k_per_class, top_k_total, n_heads, batch, has_class_weights]
  heads.npy  [n_heads, 4 + 2*A_max]: gh, gw, A, grid_xy_extend, (w, h) per anchor
  class_weights.npy [C]
  head<i>.npy [batch, A*(5+C), gh, gw]; channel a*(5+C)+k: tx ty tw th obj cls...
  gt.npy     [n, 6]: image, class, x1, y1, x2, y2 (normalised to the input)
and receives ref_terms.npy [loc, obj, noobj, cls, total], ref_grad<i>.npy,
ref_assign.npy [batch, slots] (GT index or -1; slots ordered head, anchor,
row, column) and ref_det<b>.npy [k, 6] (x1, y1, x2, y2, class, score).

Written from the description (not from deft's C): matching walks the GTs in
order keeping a per-slot "IoU that put the holder there" (best anchors lock
their slot with IoU 1 after being written), the loss is spelled out
tensor-wise in float64 and differentiated by torch.autograd, NMS is
torchvision.ops.batched_nms.
"""
import math
import os
import sys

import numpy as np
import torch
import torchvision

torch.set_default_dtype(torch.float64)


def load(d, name):
    return np.load(os.path.join(d, name))


def save(d, name, a):
    np.save(os.path.join(d, name), np.asarray(a, dtype=np.float32))


class Case:
    def __init__(self, d):
        c = load(d, "cfg.npy").astype(np.float64)
        self.C = int(c[0])
        (self.match_iou, self.neutral, self.w_loc, self.w_neg, self.w_cls, self.smooth,
         self.alpha, self.gamma, self.conf, self.nms_iou) = [float(v) for v in c[1:11]]
        self.topk_cls, self.topk = int(c[11]), int(c[12])
        self.n_heads, self.B = int(c[13]), int(c[14])
        self.cw = load(d, "class_weights.npy").astype(np.float64) if c[15] else np.ones(self.C)
        hs = load(d, "heads.npy").astype(np.float64)
        self.heads = []
        for i in range(self.n_heads):
            gh, gw, A, ext = int(hs[i, 0]), int(hs[i, 1]), int(hs[i, 2]), float(hs[i, 3])
            anchors = [(float(hs[i, 4 + 2 * a]), float(hs[i, 5 + 2 * a])) for a in range(A)]
            out = torch.from_numpy(load(d, "head%d.npy" % i).astype(np.float64))
            self.heads.append(dict(gh=gh, gw=gw, A=A, ext=ext, anchors=anchors, out=out))
        g = load(d, "gt.npy").astype(np.float64).reshape(-1, 6)
        self.gt = [g[g[:, 0] == b, 1:] for b in range(self.B)]


def shape_iou(w, h, aw, ah):
    inter = min(w, aw) * min(h, ah)
    return inter / (w * h + aw * ah - inter)


def match(case, gts):
    """slot -> GT index (or -1), TAO's encoder walked GT by GT."""
    anchors = []  # (head, a, aw, ah, slot offset of the head)
    off = 0
    for i, h in enumerate(case.heads):
        for a, (aw, ah) in enumerate(h["anchors"]):
            anchors.append((i, a, aw, ah, off))
        off += h["A"] * h["gh"] * h["gw"]
    holder = np.full(off, -1, dtype=np.int64)
    held_iou = np.zeros(off)

    def slot(k, cx, cy):
        i, a, _, _, base = anchors[k]
        h = case.heads[i]
        col = int(math.floor(min(max(cx * h["gw"], 0.0), h["gw"] - 1e-3)))
        row = int(math.floor(min(max(cy * h["gh"], 0.0), h["gh"] - 1e-3)))
        return base + (a * h["gh"] + row) * h["gw"] + col

    for gi, (_, x1, y1, x2, y2) in enumerate(gts):
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ious = [shape_iou(w, h, aw, ah) for (_, _, aw, ah, _) in anchors]
        for k, v in enumerate(ious):
            if v > case.match_iou:
                s = slot(k, cx, cy)
                if v > held_iou[s]:
                    holder[s], held_iou[s] = gi, v
        s = slot(int(np.argmax(ious)), cx, cy)
        holder[s], held_iou[s] = gi, 1.0
    return holder


def smooth(y, s):
    return y * (1 - s) + s / 2


def bce(logit, y, case):
    p = torch.sigmoid(logit)
    l = -(y * torch.log(torch.clamp(p, min=1e-18))
          + (1 - y) * torch.log(torch.clamp(1 - p, min=1e-18)))
    if case.alpha > 0 and case.gamma > 0:
        pt = y * p + (1 - y) * (1 - p)
        l = (1 - pt) ** case.gamma * (y * case.alpha + (1 - y) * (1 - case.alpha)) * l
    return l


def ciou_loss(g, p):
    """g, p: [N, 4] (cx, cy, w, h); CIoU loss per row, TAO's constants."""
    gx1, gx2 = g[:, 0] - g[:, 2] / 2, g[:, 0] + g[:, 2] / 2
    gy1, gy2 = g[:, 1] - g[:, 3] / 2, g[:, 1] + g[:, 3] / 2
    px1, px2 = p[:, 0] - p[:, 2] / 2, p[:, 0] + p[:, 2] / 2
    py1, py2 = p[:, 1] - p[:, 3] / 2, p[:, 1] + p[:, 3] / 2
    iw = torch.clamp(torch.minimum(gx2, px2) - torch.maximum(gx1, px1), min=0)
    ih = torch.clamp(torch.minimum(gy2, py2) - torch.maximum(gy1, py1), min=0)
    inter = iw * ih
    union = g[:, 2] * g[:, 3] + p[:, 2] * p[:, 3] - inter
    iou = inter / (union + 1e-18)
    ew = torch.maximum(gx2, px2) - torch.minimum(gx1, px1)
    eh = torch.maximum(gy2, py2) - torch.minimum(gy1, py1)
    rho2 = (g[:, 0] - p[:, 0]) ** 2 + (g[:, 1] - p[:, 1]) ** 2
    ang = torch.atan2(g[:, 2], g[:, 3] + 1e-18) - torch.atan2(p[:, 2], p[:, 3] + 1e-18)
    v = 4 / math.pi ** 2 * ang ** 2
    alpha = v / (1 - iou + v + 1e-18)
    return 1 - iou + rho2 / (ew ** 2 + eh ** 2 + 1e-18) + alpha * v


def decode(h, t):
    """t: [A, 5+C, gh, gw] of one image -> cx, cy, w, h, each [A, gh, gw]."""
    s = 1 + h["ext"]
    rows = torch.arange(h["gh"]).view(1, -1, 1).double()
    cols = torch.arange(h["gw"]).view(1, 1, -1).double()
    aw = torch.tensor([a[0] for a in h["anchors"]]).view(-1, 1, 1)
    ah = torch.tensor([a[1] for a in h["anchors"]]).view(-1, 1, 1)
    cx = (cols + torch.sigmoid(t[:, 0]) * s - (s - 1) / 2) / h["gw"]
    cy = (rows + torch.sigmoid(t[:, 1]) * s - (s - 1) / 2) / h["gh"]
    w = aw * torch.exp(torch.clamp(t[:, 2], max=8.0))
    hh = ah * torch.exp(torch.clamp(t[:, 3], max=8.0))
    return cx, cy, w, hh


def loss(case):
    C, B = case.C, case.B
    outs = [h["out"].clone().requires_grad_(True) for h in case.heads]
    terms = torch.zeros(4)
    assigns = []
    for b in range(B):
        gts = case.gt[b]
        holder = torch.from_numpy(match(case, gts))
        assigns.append(holder.numpy())
        preds, objs, clss = [], [], []
        for h, o in zip(case.heads, outs):
            t = o[b].view(h["A"], 5 + C, h["gh"], h["gw"])
            cx, cy, w, hh = decode(h, t)
            preds.append(torch.stack([cx, cy, w, hh], -1).reshape(-1, 4))
            objs.append(t[:, 4].reshape(-1))
            clss.append(t[:, 5:].permute(0, 2, 3, 1).reshape(-1, C))
        pred, obj, cls = torch.cat(preds), torch.cat(objs), torch.cat(clss)
        pos = holder >= 0
        # negatives: max IoU of the decoded box with the GTs that hold a slot
        held = sorted(set(holder[pos].tolist()))
        neg = ~pos
        if held:
            gb = torch.from_numpy(gts[held, 1:5])
            pb = pred.detach()
            pb = torch.stack([pb[:, 0] - pb[:, 2] / 2, pb[:, 1] - pb[:, 3] / 2,
                              pb[:, 0] + pb[:, 2] / 2, pb[:, 1] + pb[:, 3] / 2], -1)
            neg = neg & (torchvision.ops.box_iou(pb, gb).max(1).values < case.neutral)
        terms[2] = terms[2] + case.w_neg * bce(obj[neg], smooth(0.0, case.smooth), case).sum() / B
        if not pos.any():
            continue
        g = torch.from_numpy(gts[holder[pos].numpy()])
        gbox = torch.stack([(g[:, 1] + g[:, 3]) / 2, (g[:, 2] + g[:, 4]) / 2,
                            g[:, 3] - g[:, 1], g[:, 4] - g[:, 2]], -1)
        gcls = g[:, 0].long()
        cw = torch.from_numpy(case.cw)[gcls]
        scale = (2 - gbox[:, 2] * gbox[:, 3]) * cw
        terms[0] = terms[0] + case.w_loc * (ciou_loss(gbox, pred[pos]) * scale).sum() / B
        terms[1] = terms[1] + bce(obj[pos], smooth(1.0, case.smooth), case).sum() / B
        onehot = smooth(torch.nn.functional.one_hot(gcls, C).double(), case.smooth)
        terms[3] = terms[3] + case.w_cls * (bce(cls[pos], onehot, case).sum(1) * cw).sum() / B
    total = terms.sum()
    total.backward()
    return (torch.cat([terms.detach(), total.detach().view(1)]).numpy(),
            [o.grad.numpy() for o in outs], np.stack(assigns))


def detect(case, b):
    C = case.C
    boxes, scores, labels = [], [], []
    for h in case.heads:
        t = h["out"][b].view(h["A"], 5 + C, h["gh"], h["gw"])
        cx, cy, w, hh = decode(h, t)
        sc = torch.sigmoid(t[:, 4:5]) * torch.sigmoid(t[:, 5:])  # [A, C, gh, gw]
        bx = torch.stack([cx - w / 2, cy - hh / 2, cx + w / 2, cy + hh / 2], -1)  # [A, gh, gw, 4]
        sc = sc.permute(0, 2, 3, 1).reshape(-1, C)
        bx = bx.reshape(-1, 4)
        keep = sc > case.conf
        idx = keep.nonzero()
        boxes.append(bx[idx[:, 0]])
        scores.append(sc[keep])
        labels.append(idx[:, 1])
    boxes = torch.cat(boxes).float().double()  # the C side keeps float32 boxes
    scores, labels = torch.cat(scores), torch.cat(labels)
    keep = torchvision.ops.batched_nms(boxes, scores, labels, case.nms_iou)  # by score, descending
    per_class = {}
    sel = []
    for k in keep.tolist():
        c = int(labels[k])
        per_class[c] = per_class.get(c, 0) + 1
        if case.topk_cls <= 0 or per_class[c] <= case.topk_cls:
            sel.append(k)
    if case.topk > 0:
        sel = sel[:case.topk]
    sel = torch.tensor(sel, dtype=torch.long)
    out = torch.cat([boxes[sel].clamp(0, 1), labels[sel].double().view(-1, 1),
                     scores[sel].view(-1, 1)], 1)
    return out.numpy().reshape(-1, 6)


def main():
    for d in sys.argv[1:]:
        case = Case(d)
        terms, grads, assign = loss(case)
        save(d, "ref_terms.npy", terms)
        for i, g in enumerate(grads):
            save(d, "ref_grad%d.npy" % i, g)
        save(d, "ref_assign.npy", assign)
        for b in range(case.B):
            save(d, "ref_det%d.npy" % b, detect(case, b))


if __name__ == "__main__":
    main()

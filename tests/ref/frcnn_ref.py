"""Independent PyTorch / torchvision reference for test_frcnn_host.c, computed at test time.

Reads the case written by the C test from DIR and writes:
  ref_terms.npy  [rpn_class, rpn_regr, cls_class, cls_regr, total]  TAO's four losses (lambdas applied)
  ref_grad{0..3}.npy  d(total)/d(output) by autograd
  ref_props.npy  [n, 5] proposals (x1, y1, x2, y2, sigmoid score): torchvision BoxCoder decode,
                 clip_boxes_to_image, remove_small_boxes(1), top-N by score, ops.nms, keep max
  ref_dets.npy   [n, 6] detections (x1, y1, x2, y2, score, class): softmax, per-class decode with
                 BoxCoder(10, 10, 5, 5), clip, score >= conf, ops.batched_nms, keep max
"""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import batched_nms, clip_boxes_to_image, nms, remove_small_boxes

d = sys.argv[1]
L = lambda n: torch.from_numpy(np.load(f"{d}/{n}.npy").astype(np.float32))
cfg = L("cfg").double().numpy()  # B A h w C R lambdas(4) net_w net_h pre_n max_boxes nms_iou conf nms2 max_dets
B, A, h, w, C, R = (int(v) for v in cfg[:6])
lam = cfg[6:10]
net_w, net_h, pre_n, max_boxes, nms_iou, conf, nms2, max_dets = cfg[10:18]

outs = [L(f"out{i}").double().requires_grad_(True) for i in range(4)]
rpn_label = L("rpn_label").long()          # [B, h*w*A] in anchor order (row, column, anchor)
rpn_deltas = L("rpn_deltas").double()      # [B, h*w*A, 4]
roi_label = L("roi_label").long()          # [B*R]
roi_deltas = L("roi_deltas").double()      # [B*R, 4]

# outputs to anchor order: cls [B, A, h, w] -> [B, h, w, A]; regr [B, 4A, h, w] -> [B, h, w, A, 4]
cls = outs[0].permute(0, 2, 3, 1).reshape(B, -1)
reg = outs[1].reshape(B, A, 4, h, w).permute(0, 3, 4, 1, 2).reshape(B, -1, 4)
valid = rpn_label >= 0
pos = rpn_label == 1


def smooth_l1(x, sigma):
    s2 = sigma * sigma
    ax = x.abs()
    return torch.where(ax <= 1.0 / s2, 0.5 * s2 * x * x, ax - 0.5 / s2)


bce = F.binary_cross_entropy_with_logits(cls, rpn_label.clamp(min=0).double(), reduction="none")
rpn_class = lam[0] * (bce * valid).sum() / max(int(valid.sum()), 1)
rpn_regr = lam[1] * (smooth_l1(rpn_deltas - reg, 3.0) * pos[..., None]).sum() / max(4 * int(pos.sum()), 1)
cls_class = lam[2] * F.cross_entropy(outs[2], roi_label, reduction="sum") / max(B * R, 1)
rpos = roi_label < C
idx = torch.nonzero(rpos).flatten()
pr = outs[3].reshape(B * R, C, 4)[idx, roi_label[idx]]
cls_regr = lam[3] * smooth_l1(roi_deltas[idx] - pr, 1.0).sum() / max(4 * len(idx), 1)
total = rpn_class + rpn_regr + cls_class + cls_regr
total.backward()
np.save(f"{d}/ref_terms.npy", np.array([t.item() for t in (rpn_class, rpn_regr, cls_class, cls_regr, total)], np.float32))
for i in range(4):
    np.save(f"{d}/ref_grad{i}.npy", outs[i].grad.numpy().astype(np.float32))

# proposals of image 0 (float32, as deft)
anchors = L("anchors")
c0 = L("out0")[0].permute(1, 2, 0).reshape(-1)
r0 = L("out1")[0].reshape(A, 4, h, w).permute(2, 3, 0, 1).reshape(-1, 4)
boxes = BoxCoder((1.0, 1.0, 1.0, 1.0), bbox_xform_clip=math.log(1000.0 / 16)).decode_single(r0, anchors)
boxes = clip_boxes_to_image(boxes, (int(net_h), int(net_w)))
keep = remove_small_boxes(boxes, 1.0)
boxes, c0 = boxes[keep], c0[keep]
order = torch.argsort(c0, descending=True, stable=True)[: int(pre_n)]
boxes, c0 = boxes[order], c0[order]
k = nms(boxes, c0, float(nms_iou))[: int(max_boxes)]
np.save(f"{d}/ref_props.npy", torch.cat([boxes[k], torch.sigmoid(c0[k])[:, None]], 1).numpy())

# detections of image 0's RoIs
rois = L("rois")
n = rois.shape[0]
prob = torch.softmax(L("out2")[:n].double(), 1).float()
dr = L("out3")[:n].reshape(n, C, 4)
coder = BoxCoder((10.0, 10.0, 5.0, 5.0), bbox_xform_clip=math.log(1000.0 / 16))
bx, sc, lb = [], [], []
for r in range(n):
    for c in range(C):
        if prob[r, c] >= conf:
            b = coder.decode_single(dr[r, c][None], rois[r][None])
            bx.append(clip_boxes_to_image(b, (int(net_h), int(net_w)))[0])
            sc.append(prob[r, c])
            lb.append(c)
if bx:
    bx, sc, lb = torch.stack(bx), torch.stack(sc), torch.tensor(lb)
    k = batched_nms(bx, sc, lb, float(nms2))[: int(max_dets)]
    dets = torch.cat([bx[k], sc[k][:, None], lb[k][:, None].float()], 1)
else:
    dets = torch.zeros((0, 6))
np.save(f"{d}/ref_dets.npy", dets.numpy())

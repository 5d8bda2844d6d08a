#!/usr/bin/python3
"""det_ops_ref.py - torchvision / PyTorch references for tests/eval/test_det_ops.c.

Usage: det_ops_ref.py <dir>

Reads the test's inputs (<dir>/*.npy, float32) and writes <dir>/ref.*.npy:
  nms, batched_nms, batched_nms_big  torchvision.ops.nms / batched_nms kept indices
  enc_frcnn, dec_frcnn, enc_rpn, dec_rpn  torchvision BoxCoder (weights 10,10,5,5 / 1,1,1,1)
  enc_ssd, dec_ssd              BoxCoder with weights 1/variances (TAO's SSD coding)
  hnm                           torchvision SSD compute_loss's negative selection, as a mask
  hnm_tao                       TAO's batch-wide rule (Keras SSD loss) in numpy
"""
import math
import sys

import numpy as np
import torch
import torchvision
from torchvision.models.detection._utils import BoxCoder


def main():
    d = sys.argv[1]
    ld = lambda k: torch.from_numpy(np.load(f"{d}/{k}.npy"))
    sv = lambda k, t: np.save(f"{d}/ref.{k}.npy", np.ascontiguousarray(np.asarray(t, np.float32)))

    b, s = ld("nms_boxes"), ld("nms_scores")
    sv("nms", torchvision.ops.nms(b, s, 0.5).numpy())
    c = ld("nms_classes").long()
    sv("batched_nms", torchvision.ops.batched_nms(b, s, c, 0.4).numpy())
    bb, bs, bc = ld("big_boxes"), ld("big_scores"), ld("big_classes").long()
    sv("batched_nms_big", torchvision.ops.batched_nms(bb, bs, bc, 0.5).numpy())

    gt, an, dl = ld("gt"), ld("anchors"), ld("deltas")
    clip = math.log(1000.0 / 16)
    for key, w in (("frcnn", (10.0, 10.0, 5.0, 5.0)), ("rpn", (1.0, 1.0, 1.0, 1.0)),
                   ("ssd", (1 / 0.1, 1 / 0.1, 1 / 0.2, 1 / 0.2))):
        bc_ = BoxCoder(w, bbox_xform_clip=clip if key != "ssd" else 1e9)
        sv(f"enc_{key}", bc_.encode_single(gt, an).numpy())
        sv(f"dec_{key}", bc_.decode_single(dl, an).numpy())

    loss, lab = ld("hnm_loss"), ld("hnm_label")
    # torchvision SSD compute_loss: per image, 3 * n_pos hardest negatives
    fg = lab > 0
    num_neg = 3 * fg.sum(1, keepdim=True)
    neg = loss.clone()
    neg[lab != 0] = -float("inf")  # positives, and the ignored priors torchvision's SSD does not have
    _, idx = neg.sort(1, descending=True)
    # rank < num_neg, but never a positive or ignored prior (when num_neg exceeds the negatives)
    bg = (idx.sort(1)[1] < num_neg) & (lab == 0)
    sv("hnm", (fg | bg).numpy())
    # TAO (Keras SSD loss): batch-wide top-k over the negatives' losses
    ln, lb = loss.numpy().reshape(-1), lab.numpy().reshape(-1)
    neg_all = ln * (lb == 0)
    k = min(max(3 * int((lb > 0).sum()), int(np.load(f"{d}/hnm_min.npy")[0])), int(np.count_nonzero(neg_all)))
    order = np.argsort(-neg_all, kind="stable")[:k]  # tf.nn.top_k: lower index first on ties
    m = (lb > 0).copy()
    m[order] = True
    sv("hnm_tao", m.reshape(lab.shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())

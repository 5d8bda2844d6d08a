#!/usr/bin/python3
"""seg_metrics_ref.py - numpy reference for tests/eval/test_seg_metrics.c.

For every DIR/setN_cfg.npy ([n_classes, ignore_id]) with setN_pred.npy and
setN_truth.npy (class ids as f32, any shape), writes setN_ref.npy: rows
[iou, precision, recall, f1, support] per class, then one row
[mIoU, mean precision, mean recall, mean F1, pixel accuracy].

Computed per class from the boolean masks (not from a confusion matrix):
A = truth == c, B = pred == c over the pixels whose truth is not ignored;
IoU = |A & B| / |A | B|, precision = |A & B| / |B|, recall = |A & B| / |A|,
F1 (Dice) = 2 |A & B| / (|A| + |B|); 0/0 is NaN, and the means skip NaN
(np.nanmean), as TAO's getScoreAverage does.
"""
import glob
import sys
import warnings

import numpy as np


def div(a, b):
    return a / b if b > 0 else np.nan


def run(base):
    k, ignore = (int(v) for v in np.load(base + "_cfg.npy"))
    pred = np.load(base + "_pred.npy").astype(np.int64).ravel()
    truth = np.load(base + "_truth.npy").astype(np.int64).ravel()
    keep = (truth != ignore) & (truth >= 0) & (truth < k)
    pred, truth = pred[keep], truth[keep]
    rows = []
    for c in range(k):
        a, b = truth == c, pred == c
        inter, union = np.sum(a & b), np.sum(a | b)
        rows.append([div(inter, union), div(inter, b.sum()), div(inter, a.sum()),
                     div(2 * inter, a.sum() + b.sum()), a.sum()])
    per = np.array(rows, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN column -> NaN
        means = [np.nanmean(per[:, i]) for i in range(4)]
    acc = float(np.mean(pred == truth)) if truth.size else np.nan
    out = np.vstack([per, [means + [acc]]]).astype(np.float32)
    np.save(base + "_ref.npy", out)


def main():
    for cfg in sorted(glob.glob(sys.argv[1] + "/set*_cfg.npy")):
        run(cfg[: -len("_cfg.npy")])


if __name__ == "__main__":
    main()

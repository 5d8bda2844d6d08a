#!/usr/bin/python3
"""kmeans_ref.py - an independent numpy k-medians for tests/eval/test_anchor_kmeans.c:
TAO's kmeans action (detection.md §2) with given initial centres.

Input (floats as C's %a hex): "n K MAX_STEPS", a line of K initial box
indices, then n lines "W H". Output SET.ref: "steps S", K lines "W H" (repr)
sorted by area, "mean_iou V".
Rules: IoU of corner-aligned boxes; argmax (first maximum) over centres;
assignments start all 0 and the loop stops when they do not change; centres
move to the median of their boxes' w and h; an empty cluster keeps its
centre (deft's rule where numpy's median of nothing would give NaN)."""
import sys

import numpy as np


def pair_iou(w0, h0, w1, h1):
    n0, n1 = len(w0), len(w1)
    W0 = np.repeat(w0, n1).reshape(n0, n1)
    H0 = np.repeat(h0, n1).reshape(n0, n1)
    W1 = np.tile(w1, n0).reshape(n0, n1)
    H1 = np.tile(h1, n0).reshape(n0, n1)
    inter = np.minimum(W0, W1) * np.minimum(H0, H1)
    return inter / (W0 * H0 + W1 * H1 - inter)


def main(path):
    with open(path) as f:
        n, k, max_steps = (int(v) for v in f.readline().split())
        init = [int(v) for v in f.readline().split()]
        wh = np.array([[float.fromhex(v) for v in f.readline().split()] for _ in range(n)])
    w, h = wh[:, 0].copy(), wh[:, 1].copy()
    cw, ch = w[init].copy(), h[init].copy()
    assign = np.zeros(n, dtype=int)
    steps = 0
    for _ in range(max_steps):
        steps += 1
        new = np.argmax(pair_iou(w, h, cw, ch), axis=1)
        if np.all(new == assign):
            break
        assign = new
        for j in range(k):
            sel = assign == j
            if np.any(sel):
                cw[j] = np.median(w[sel])
                ch[j] = np.median(h[sel])
    order = sorted(range(k), key=lambda j: cw[j] * ch[j])
    best = np.max(pair_iou(w, h, cw, ch), axis=1)
    with open(path + ".ref", "w") as f:
        f.write("steps %d\n" % steps)
        for j in order:
            f.write("%r %r\n" % (float(cw[j]), float(ch[j])))
        f.write("mean_iou %r\n" % float(np.mean(best)))


if __name__ == "__main__":
    for p in sys.argv[1:]:
        main(p)

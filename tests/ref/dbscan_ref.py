#!/usr/bin/env python3
"""Independent numpy reference for DetectNet_v2's clustering
(tao.md §3.4, detection.md §4), written from the definitions:

* candidates: cells with cov > coverage_threshold (at most max_candidates,
  the highest coverage first, ties by grid order), decoded
  x1 = cx - L*scale ... with cx = i*in_w/gw + offset, clipped to the image
  and to x2 >= x1, y2 >= y1;
* DBSCAN (sklearn's semantics, weighted): neighbours of i are the j with
  1 - IoU(i, j) <= eps (IoU = inter / (union + 1e-5), the diagonal counts
  like any pair); i is core when the coverage sum over its neighbours is
  >= max(int(min_samples), 1). Clusters are the connected components of
  core points under the neighbour relation, numbered by their lowest core
  index; a non-core point joins the lowest-numbered cluster with a core
  member among its neighbours, else it is noise (-1);
* each cluster: box = coverage-weighted mean, confidence = coverage sum,
  mean coverage, bbox variance sqrt(mean_c(sum_i wn_i (b_ic - m_c)^2) /
  max(area, 1e-3)); dropped when height <= minimum_bounding_box_height or
  confidence < dbscan_confidence_threshold;
* NMS: greedy by coverage (the highest remaining first: the current slot
  unless a later one is strictly higher, then the first of those, which
  swaps places with it), IoU with +1 pixel, suppress IoU > nms_iou_threshold,
  keep coverage > nms_confidence_threshold; box = the cell's own box and
  coverage;
* each class's detections by confidence descending (stable).

Usage: dbscan_ref.py DIR...; each DIR holds cfg.npy, cov.npy [K,H,W],
bbox.npy [4K,H,W]; writes cand<k>.npy [n, 8] (cell, x1, y1, x2, y2, label,
core, number of clusters reaching a non-core point)
and det.npy [m, 9] (class, x1, y1, x2, y2, score, cov_mean, variance, n).
"""
import sys
import numpy as np


def decode(cov, bbox, k, g, thr, cap):
    in_w, in_h, gw, gh, scale, offset = g
    c = cov[k].reshape(-1)
    cells = np.nonzero(c > np.float32(thr))[0]
    if len(cells) > cap:
        order = sorted(cells.tolist(), key=lambda p: (-float(c[p]), p))
        cells = np.array(sorted(order[:cap]), dtype=np.int64)
    i = (cells % gw).astype(np.float64)
    j = (cells // gw).astype(np.float64)
    cx = i * (in_w / gw) + offset
    cy = j * (in_h / gh) + offset
    ltrb = [bbox[4 * k + q].reshape(-1)[cells].astype(np.float64) for q in range(4)]
    x1 = np.clip(cx - ltrb[0] * scale, 0.0, in_w)
    y1 = np.clip(cy - ltrb[1] * scale, 0.0, in_h)
    x2 = np.minimum(np.maximum(cx + ltrb[2] * scale, x1), in_w)
    y2 = np.minimum(np.maximum(cy + ltrb[3] * scale, y1), in_h)
    return cells, np.stack([x1, y1, x2, y2], axis=1), c[cells].astype(np.float64)


def iou_matrix(b):
    x1, y1, x2, y2 = b.T
    iw = np.maximum(0.0, np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :]))
    ih = np.maximum(0.0, np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :]))
    inter = iw * ih
    area = (x2 - x1) * (y2 - y1)
    return inter / (area[:, None] + area[None, :] - inter + 1e-5)


def dbscan(boxes, w, eps, min_samples):
    n = len(w)
    nb = (1.0 - iou_matrix(boxes)) <= eps if n else np.zeros((0, 0), bool)
    ms = max(int(min_samples), 1)
    core = np.array([np.cumsum(w[nb[i]])[-1] >= ms if nb[i].any() else False
                     for i in range(n)], dtype=bool)
    labels = -np.ones(n, dtype=np.int64)
    comp = -np.ones(n, dtype=np.int64)
    n_comp = 0
    for s in range(n):  # components of core points, numbered by lowest index
        if not core[s] or comp[s] >= 0:
            continue
        members, frontier = {s}, [s]
        while frontier:
            nxt = []
            for i in frontier:
                for j in np.nonzero(nb[i] & core)[0]:
                    if j not in members:
                        members.add(int(j))
                        nxt.append(int(j))
            frontier = nxt
        for i in members:
            comp[i] = n_comp
        n_comp += 1
    n_reach = np.zeros(n, dtype=np.int64)
    for i in range(n):
        if core[i]:
            labels[i] = comp[i]
        else:  # border: the first cluster with a core point that reaches it
            reach = [comp[j] for j in np.nonzero(core)[0] if nb[j, i]]
            n_reach[i] = len(set(reach))
            if reach:
                labels[i] = min(reach)
    return labels, n_comp, core, n_reach


def summarise(boxes, w):
    sw = w.sum()
    wn = w / sw
    m = (boxes * wn[:, None]).sum(axis=0)
    area = max((m[2] - m[0]) * (m[3] - m[1]), 0.001)
    var = np.sqrt(np.mean((wn[:, None] * (boxes - m) ** 2).sum(axis=0)) / area)
    return m, sw, sw / len(w), var


def nms(boxes, w, iou_thr, conf_thr):
    n = len(w)
    order, sc = list(range(n)), [float(v) for v in w]

    def iou1(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
        aa = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
        ab = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        return iw * ih / (aa + ab - iw * ih)

    for i in range(n):
        if i + 1 < n:
            best = max(sc[i + 1:])
            m = i + 1 + sc[i + 1:].index(best)
            if sc[i] < best:
                order[i], order[m] = order[m], order[i]
                sc[i], sc[m] = sc[m], sc[i]
        for k in range(i + 1, n):
            if iou1(boxes[order[i]], boxes[order[k]]) > iou_thr:
                sc[k] = 0.0
    return [order[k] for k in range(n) if sc[k] > conf_thr]


def run(d):
    cfg = np.load(d + "/cfg.npy").astype(np.float64)
    cov = np.load(d + "/cov.npy")
    bbox = np.load(d + "/bbox.npy")
    g = (cfg[0], cfg[1], int(cfg[2]), int(cfg[3]), cfg[4], cfg[5])
    n_cls, cap = int(cfg[6]), int(cfg[7])
    dets = []
    for k in range(n_cls):
        algo, thr, min_h, eps, min_s, conf, nms_iou, nms_conf = cfg[8 + 8 * k: 16 + 8 * k]
        cells, boxes, w = decode(cov, bbox, k, g, np.float32(thr), cap)
        labels = -np.ones(len(w))
        core, n_reach = np.zeros(len(w)), np.zeros(len(w))
        mine = []
        if int(algo) == 0:
            labels, nc, core, n_reach = dbscan(boxes, w, eps, min_s)
            for c in range(nc):
                sel = labels == c
                m, sw, cm, var = summarise(boxes[sel], w[sel])
                if m[3] - m[1] <= min_h or sw < conf:
                    continue
                mine.append([k, *m, sw, cm, var, sel.sum()])
        else:
            for o in nms(boxes, w, nms_iou, nms_conf):
                mine.append([k, *boxes[o], w[o], w[o], 0.0, 1])
        mine.sort(key=lambda r: -r[5])  # stable
        dets += mine
        cand = np.concatenate([cells[:, None].astype(np.float64), boxes,
                               np.asarray(labels, np.float64)[:, None],
                               np.asarray(core, np.float64)[:, None],
                               np.asarray(n_reach, np.float64)[:, None]], axis=1)
        np.save(d + "/cand%d.npy" % k, cand.reshape(-1, 8).astype(np.float32))
    np.save(d + "/det.npy", np.array(dets, dtype=np.float64).reshape(-1, 9).astype(np.float32))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        run(d)

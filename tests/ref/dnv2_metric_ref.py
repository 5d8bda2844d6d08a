"""TAO's DetectNet_v2 evaluation (evaluation/compute_metrics.py), written in
numpy from its definition, for tests/tasks/test_dnv2_metric.c.

  - ground truth and detections whose size falls outside the class's
    evaluation_box_config (h < min_h, w < min_w, h > max_h, w > max_w) are
    dropped; boxes are rounded to whole pixels (Python's round: half to even);
  - IoU with border_pixels 'include' (+1 on each side length);
  - per class, detections sorted by confidence (stable), each takes the GT of
    highest IoU among all of its image's GT of that class (np.argmax: first
    of equal); IoU < threshold or a GT already matched: false positive;
  - precision = tp / (tp + fp), recall = tp / n_gt;
  - SAMPLE: mean over t in linspace(0, 1, 11) of max precision at recall >= t;
    INTEGRATE: over np.unique recalls r_0 < ... < r_m, sum for i < m of
    (r_{i+1} - r_i) * max(precision of the run of r_i, that maximum for i+1),
    the maximum for r_m being 0; NaN AP -> 0; mAP the mean over classes.

usage: dnv2_metric_ref.py CASE_DIR  (reads in.txt, writes ref.txt: "mode class AP" lines)
"""
import sys
import numpy as np


def iou(g, p):
    ix = np.maximum(0, np.minimum(g[:, 2], p[2]) - np.maximum(g[:, 0], p[0]) + 1)
    iy = np.maximum(0, np.minimum(g[:, 3], p[3]) - np.maximum(g[:, 1], p[1]) + 1)
    inter = ix * iy
    ag = (g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1)
    ap = (p[2] - p[0] + 1) * (p[3] - p[1] + 1)
    return inter / (ag + ap - inter)


def valid(b, c):
    w, h = b[2] - b[0], b[3] - b[1]
    min_h, max_h, min_w, max_w = c
    return not (h < min_h or w < min_w or h > max_h or w > max_w)


def ap_of(tp, fp, n_gt, mode):
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    prec = np.where(ctp + cfp > 0, ctp / np.maximum(ctp + cfp, 1), 0)
    rec = ctp / n_gt if n_gt else ctp * np.nan
    if mode == "sample":
        ap = 0.0
        for t in np.linspace(0, 1, 11):
            sel = prec[rec >= t]
            ap += sel.max() if sel.size else 0.0
        ap /= 11
    else:
        ur, idx = np.unique(rec, return_index=True)
        mp, dr = np.zeros(ur.shape), np.zeros(ur.shape)
        for i in range(len(ur) - 2, -1, -1):
            mp[i] = max(prec[idx[i]:idx[i + 1]].max(), mp[i + 1])
            dr[i] = ur[i + 1] - ur[i]
        ap = float(np.sum(mp * dr))
    return 0.0 if np.isnan(ap) else ap


def main(d):
    lines = open(d + "/in.txt").read().split("\n")
    n_img, n_cls = map(int, lines[0].split())
    cfg = [tuple(map(float, lines[1 + k].split())) for k in range(n_cls)]  # iou min_h max_h min_w max_w
    gt, det = [[] for _ in range(n_img)], []
    for ln in lines[1 + n_cls:]:
        f = ln.split()
        if not f:
            continue
        if f[0] == "g":
            gt[int(f[1])].append((int(f[2]), [float(v) for v in f[3:7]]))
        else:
            det.append((int(f[1]), int(f[2]), float(f[3]), [float(v) for v in f[4:8]]))
    out = []
    for mode in ("sample", "integrate"):
        aps = []
        for k in range(n_cls):
            c = cfg[k][1:]
            g = {i: np.array([[round(v) for v in b] for cl, b in gt[i] if cl == k and valid(b, c)], dtype=float)
                 for i in range(n_img)}
            n_gt = sum(len(v) for v in g.values())
            p = [(i, s, [round(v) for v in b]) for i, cl, s, b in det if cl == k and valid(b, c)]
            order = np.argsort(-np.array([s for _, s, _ in p], dtype=np.float32), kind="mergesort")
            tp, fp = np.zeros(len(p)), np.zeros(len(p))
            matched = {}
            for r, j in enumerate(order):
                i, _, b = p[j]
                if len(g[i]) == 0:
                    fp[r] = 1
                    continue
                o = iou(g[i], np.array(b, dtype=float))
                m = int(np.argmax(o))
                if o[m] < cfg[k][0]:
                    fp[r] = 1
                elif not matched.setdefault(i, np.zeros(len(g[i]), bool))[m]:
                    tp[r], matched[i][m] = 1, True
                else:
                    fp[r] = 1
            ap = ap_of(tp, fp, n_gt, mode) if len(p) else 0.0
            aps.append(ap)
            out.append("%s %d %.10f" % (mode, k, ap))
        out.append("%s map %.10f" % (mode, float(np.mean(aps))))
    open(d + "/ref.txt", "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])

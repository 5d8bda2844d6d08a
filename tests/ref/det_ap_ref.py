#!/usr/bin/python3
"""det_ap_ref.py - an independent numpy implementation of the three mAP
definitions of ../shared/reference/detection.md §6, for tests/eval/test_det_ap.c.

Each definition is written the way its original is structured, not the way
deft's C code is:
  voc07 / voc       py-faster-rcnn voc_eval: one pass over all detections of a
                    class in global score order, max IoU over all GTs (+1 px).
  sample/integrate  TAO's evaluator: per image, detections of all classes in
                    score order, T/P lists with the missed GTs appended at
                    score 0, the confidence threshold applied only when the
                    curve is built.
  coco              pycocotools: evaluateImg per (image, class, area), then
                    accumulate into precision[T, R, K, A] and summarize.
Ties are broken by input order (stable sorts), as deft documents.

Usage: det_ap_ref.py SET.txt [SET.txt ...]; writes SET.txt.ref beside each.
Input (floats as C's %a hex):
  config IOU CONF MAXDETS N_CLASSES N_IMAGES COCO_IOU
  img N_GT N_DET
  g X1 Y1 X2 Y2 CLS DIFFICULT CROWD
  d X1 Y1 X2 Y2 CLS SCORE
Output per mode: "mode NAME", "map V", "class K AP PREC REC NGT NDET",
and for coco "coco AP50 AP75 APS APM APL AR".
"""
import sys

import numpy as np

EPS = np.finfo(np.float64).eps


def read_set(path):
    imgs = []
    cfg = None
    with open(path) as f:
        for line in f:
            t = line.split()
            if not t:
                continue
            if t[0] == "config":
                cfg = dict(iou=float.fromhex(t[1]), conf=float.fromhex(t[2]), maxdets=int(t[3]),
                           K=int(t[4]), N=int(t[5]), coco_iou=float.fromhex(t[6]))
            elif t[0] == "img":
                imgs.append(dict(gt=[], det=[]))
            elif t[0] == "g":
                x1, y1, x2, y2 = (float.fromhex(v) for v in t[1:5])
                imgs[-1]["gt"].append((x1, y1, x2, y2, int(t[5]), int(t[6]), int(t[7])))
            elif t[0] == "d":
                x1, y1, x2, y2 = (float.fromhex(v) for v in t[1:5])
                imgs[-1]["det"].append((x1, y1, x2, y2, int(t[5]), float.fromhex(t[6])))
    assert cfg and len(imgs) == cfg["N"]
    return cfg, imgs


# ---------------------------------------------------------------- AP rules
def ap_11point(rec, prec):
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        sel = rec >= t
        p = np.max(prec[sel]) if np.sum(sel) > 0 else 0.0
        ap += p / 11.0
    return ap


def ap_allpoint(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


# ---------------------------------------------------------------- VOC
def voc(cfg, imgs, use07):
    K, thr, conf = cfg["K"], cfg["iou"], cfg["conf"]
    out = []
    for k in range(K):
        recs = []
        npos = 0
        for im in imgs:
            g = [b for b in im["gt"] if b[4] == k]
            bb = np.array([b[:4] for b in g], dtype=np.float64).reshape(-1, 4)
            diff = np.array([b[5] for b in g], dtype=bool)
            recs.append(dict(bbox=bb, difficult=diff, det=[False] * len(g)))
            npos += int(np.sum(~diff))
        ids, confs, BB = [], [], []
        for i, im in enumerate(imgs):
            for d in im["det"]:
                if d[4] == k and d[5] >= conf:
                    ids.append(i)
                    confs.append(d[5])
                    BB.append(d[:4])
        confs = np.array(confs, dtype=np.float64)
        BB = np.array(BB, dtype=np.float64).reshape(-1, 4)
        order = np.argsort(-confs, kind="mergesort")
        BB = BB[order]
        ids = [ids[j] for j in order]
        nd = len(ids)
        tp = np.zeros(nd)
        fp = np.zeros(nd)
        for d in range(nd):
            R = recs[ids[d]]
            bb = BB[d]
            ovmax = -np.inf
            G = R["bbox"]
            if G.size > 0:
                ixmin = np.maximum(G[:, 0], bb[0])
                iymin = np.maximum(G[:, 1], bb[1])
                ixmax = np.minimum(G[:, 2], bb[2])
                iymax = np.minimum(G[:, 3], bb[3])
                iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
                ih = np.maximum(iymax - iymin + 1.0, 0.0)
                inters = iw * ih
                uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) +
                       (G[:, 2] - G[:, 0] + 1.0) * (G[:, 3] - G[:, 1] + 1.0) - inters)
                ov = inters / uni
                ovmax = np.max(ov)
                jmax = int(np.argmax(ov))
            if ovmax > thr:
                if not R["difficult"][jmax]:
                    if not R["det"][jmax]:
                        tp[d] = 1.0
                        R["det"][jmax] = True
                    else:
                        fp[d] = 1.0
            else:
                fp[d] = 1.0
        fp = np.cumsum(fp)
        tp = np.cumsum(tp)
        prec = tp / np.maximum(tp + fp, EPS)
        if npos > 0:
            rec = tp / float(npos)
            ap = ap_11point(rec, prec) if use07 else ap_allpoint(rec, prec)
            r_end = rec[-1] if nd else 0.0
        else:
            ap, r_end = float("nan"), 0.0
        p_end = prec[-1] if nd else 0.0
        out.append((ap, p_end, r_end, npos, nd))
    return out


# ---------------------------------------------------------------- TAO
def iou_plain(box, boxes):
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    wh = np.maximum(0.0, hi - lo)
    inter = wh[:, 0] * wh[:, 1]
    a = (box[2] - box[0]) * (box[3] - box[1])
    b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (a + b - inter)


def tao(cfg, imgs, sample):
    K, thr, conf = cfg["K"], cfg["iou"], cfg["conf"]
    assert conf > 0, "TAO's curve counts missed GTs (score 0) as TP when conf <= 0"
    T = [[] for _ in range(K)]
    P = [[] for _ in range(K)]
    for im in imgs:
        gts = [np.array([b[:4] for b in im["gt"] if b[4] == k], dtype=np.float64).reshape(-1, 4) for k in range(K)]
        hard = [np.array([b[5] for b in im["gt"] if b[4] == k], dtype=np.float64) for k in range(K)]
        valid = [np.ones(len(g)) for g in gts]
        hard_left = [h.sum() for h in hard]
        dets = im["det"]
        scores = np.array([d[5] for d in dets], dtype=np.float64)
        for j in np.argsort(-scores, kind="mergesort"):
            d = dets[j]
            k, s = d[4], d[5]
            if len(gts[k]) == 0:
                T[k].append(0)
                P[k].append(s)
                continue
            ov = iou_plain(np.array(d[:4], dtype=np.float64), gts[k]) * valid[k]
            if np.max(ov) >= thr:
                m = int(np.argmax(ov))
                valid[k][m] = 0.0
                if hard[k][m] < 0.5:
                    T[k].append(1)
                    P[k].append(s)
                else:
                    hard_left[k] -= 1
            else:
                T[k].append(0)
                P[k].append(s)
        for k in range(K):
            miss = int(round(valid[k].sum() - hard_left[k]))
            T[k] += [1] * miss
            P[k] += [0.0] * miss
    out = []
    for k in range(K):
        Ta, Pa = np.array(T[k]), np.array(P[k], dtype=np.float64)
        o = np.argsort(-Pa, kind="mergesort")
        npos = int(np.sum(Ta))
        tp = fp = 0
        prec, rec = [], []
        for t, p in zip(Ta[o], Pa[o]):
            if t == 1 and p >= conf:
                tp += 1
            elif t == 0 and p >= conf:
                fp += 1
            prec.append(tp / (tp + fp) if tp + fp else 0.0)
            rec.append(tp / npos if npos > 0 else 0.0)
        rec, prec = np.array(rec), np.array(prec)
        ap = ap_11point(rec, prec) if sample else ap_allpoint(rec, prec)
        nd = sum(1 for im in imgs for d in im["det"] if d[4] == k and d[5] >= conf)
        out.append((ap, prec[-1] if len(prec) else 0.0, rec[-1] if len(rec) else 0.0, npos, nd))
    return out


# ---------------------------------------------------------------- COCO
IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
AREAS = [[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]


def xywh(b):
    return [b[0], b[1], b[2] - b[0], b[3] - b[1]]


def bbox_iou(dts, gts, crowd):
    out = np.zeros((len(dts), len(gts)))
    for g, G in enumerate(gts):
        for d, D in enumerate(dts):
            w = min(D[0] + D[2], G[0] + G[2]) - max(D[0], G[0])
            h = min(D[1] + D[3], G[1] + G[3]) - max(D[1], G[1])
            if w <= 0 or h <= 0:
                continue
            i = w * h
            u = D[2] * D[3] if crowd[g] else D[2] * D[3] + G[2] * G[3] - i
            out[d, g] = i / u
    return out


def coco_eval_img(gts, dts, ious, aRng, maxDet):
    if not gts and not dts:
        return None
    ig = [1 if (g["ignore"] or g["area"] < aRng[0] or g["area"] > aRng[1]) else 0 for g in gts]
    gtind = np.argsort(ig, kind="mergesort")
    gts = [gts[i] for i in gtind]
    ig = np.array([ig[i] for i in gtind])
    dts = dts[:maxDet]
    ious = ious[:, gtind] if len(ious) else ious
    iscrowd = [g["crowd"] for g in gts]
    T, G, D = len(IOU_THRS), len(gts), len(dts)
    gtm = np.zeros((T, G))
    dtm = np.zeros((T, D))
    dtIg = np.zeros((T, D))
    if len(ious):
        for tind, t in enumerate(IOU_THRS):
            for dind in range(D):
                iou = min([t, 1 - 1e-10])
                m = -1
                for gind in range(G):
                    if gtm[tind, gind] > 0 and not iscrowd[gind]:
                        continue
                    if m > -1 and ig[m] == 0 and ig[gind] == 1:
                        break
                    if ious[dind, gind] < iou:
                        continue
                    iou = ious[dind, gind]
                    m = gind
                if m == -1:
                    continue
                dtIg[tind, dind] = ig[m]
                dtm[tind, dind] = gts[m]["id"]
                gtm[tind, m] = dind + 1
    a = np.array([d["area"] < aRng[0] or d["area"] > aRng[1] for d in dts]).reshape((1, D))
    dtIg = np.logical_or(dtIg, np.logical_and(dtm == 0, np.repeat(a, T, 0)))
    return dict(dtScores=[d["score"] for d in dts], dtm=dtm, dtIg=dtIg, gtIg=ig)


def coco(cfg, imgs):
    K, conf, maxDet = cfg["K"], cfg["conf"], cfg["maxdets"]
    T, R, A = len(IOU_THRS), len(REC_THRS), len(AREAS)
    precision = -np.ones((T, R, K, A))
    recall = -np.ones((T, K, A))
    end_pr = np.zeros((T, K))
    n_gt = np.zeros(K, dtype=int)
    n_det = np.zeros(K, dtype=int)
    evals = {}
    for k in range(K):
        for i, im in enumerate(imgs):
            gts = [dict(bbox=xywh(b), area=(b[2] - b[0]) * (b[3] - b[1]), crowd=b[6], ignore=b[6] or b[5], id=j + 1)
                   for j, b in enumerate(x for x in im["gt"] if x[4] == k)]
            dts = [dict(bbox=xywh(d), area=(d[2] - d[0]) * (d[3] - d[1]), score=d[5])
                   for d in im["det"] if d[4] == k and d[5] >= conf]
            o = np.argsort([-d["score"] for d in dts], kind="mergesort")
            dts = [dts[j] for j in o][:maxDet]
            ious = bbox_iou([d["bbox"] for d in dts], [g["bbox"] for g in gts], [g["crowd"] for g in gts]) \
                if dts and gts else []
            n_det[k] += len(dts)
            for a, rng in enumerate(AREAS):
                evals[k, a, i] = coco_eval_img(gts, dts, ious, rng, maxDet)
    for k in range(K):
        for a in range(A):
            E = [evals[k, a, i] for i in range(len(imgs))]
            E = [e for e in E if e is not None]
            if not E:
                continue
            scores = np.concatenate([e["dtScores"][0:maxDet] for e in E])
            inds = np.argsort(-scores, kind="mergesort")
            dtm = np.concatenate([e["dtm"][:, 0:maxDet] for e in E], axis=1)[:, inds]
            dtIg = np.concatenate([e["dtIg"][:, 0:maxDet] for e in E], axis=1)[:, inds]
            gtIg = np.concatenate([e["gtIg"] for e in E])
            npig = np.count_nonzero(gtIg == 0)
            if a == 0:
                n_gt[k] = npig
            if npig == 0:
                continue
            tps = np.logical_and(dtm, np.logical_not(dtIg))
            fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtIg))
            tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
            fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
            for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
                nd = len(tp)
                rc = tp / npig
                pr = tp / (fp + tp + np.spacing(1))
                q = np.zeros((R,))
                recall[t, k, a] = rc[-1] if nd else 0
                if a == 0:
                    end_pr[t, k] = tp[-1] / (tp[-1] + fp[-1]) if nd and tp[-1] + fp[-1] > 0 else 0.0
                pr = pr.tolist()
                q = q.tolist()
                for i in range(nd - 1, 0, -1):
                    if pr[i] > pr[i - 1]:
                        pr[i - 1] = pr[i]
                inds2 = np.searchsorted(rc, REC_THRS, side="left")
                try:
                    for ri, pi in enumerate(inds2):
                        q[ri] = pr[pi]
                except IndexError:
                    pass
                precision[t, :, k, a] = np.array(q)

    def summ(p):
        p = p[p > -1]
        return float(np.mean(p)) if p.size else float("nan")

    ti = int(np.argmin(np.abs(IOU_THRS - cfg["coco_iou"])))
    per = []
    for k in range(K):
        if precision[0, 0, k, 0] > -1:
            per.append((summ(precision[:, :, k, 0]), end_pr[ti, k], recall[ti, k, 0], n_gt[k], n_det[k]))
        else:
            per.append((float("nan"), 0.0, 0.0, n_gt[k], n_det[k]))
    t75 = int(np.where(IOU_THRS == 0.75)[0][0])
    summary = (summ(precision[0, :, :, 0]), summ(precision[t75, :, :, 0]), summ(precision[:, :, :, 1]),
               summ(precision[:, :, :, 2]), summ(precision[:, :, :, 3]), summ(recall[:, :, 0]))
    return summ(precision[:, :, :, 0]), per, summary


def main():
    for path in sys.argv[1:]:
        cfg, imgs = read_set(path)
        lines = []
        for name in ("voc07", "voc", "sample", "integrate", "coco"):
            summary = None
            if name == "coco":
                mAP, per, summary = coco(cfg, imgs)
            else:
                per = voc(cfg, imgs, name == "voc07") if name.startswith("voc") else tao(cfg, imgs, name == "sample")
                if name.startswith("voc"):
                    aps = [p[0] for p in per if not np.isnan(p[0])]
                    mAP = float(np.mean(aps)) if aps else float("nan")
                else:
                    mAP = float(np.mean([p[0] for p in per]))
            lines.append("mode %s" % name)
            lines.append("map %r" % mAP)
            for k, p in enumerate(per):
                lines.append("class %d %r %r %r %d %d" % (k, float(p[0]), float(p[1]), float(p[2]), p[3], p[4]))
            if summary:
                lines.append("coco " + " ".join("%r" % float(v) for v in summary))
        with open(path + ".ref", "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

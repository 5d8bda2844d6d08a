#!/usr/bin/env python3
"""Independent numpy reference for DetectNet_v2's ground-truth rasterizer
(tao.md §3.2), written from the definition, every cell of the grid tested
against every box (no windowing):

* box to grid space: coordinates times float32(grid / input);
* centre c = min + cov_center * (max - min); s = c - min when cov_center <
  0.5 else max - c; coverage radii cs = max(cov_radius * s, 0.1), then
  enlarged to >= bbox_min_radius on x and then on y keeping the aspect
  ratio; dead-zone radii ds = max((1 - dz) * cs + dz * s, cs);
  inv_area = 1 / max(4 cs_x cs_y, 1); all float32 in TAO's order;
* cell (px, py): samples at px + 0.125 + 0.25 m (4x4); u = (fx - c) / ds as
  fx * (1/ds) + fy * 0 + (-c / ds); a sample is in the dead zone when
  u^2 + v^2 < 1, in the coverage ellipse when (u * ds/cs)^2 + ... < 1;
  a, c = fractions of the 16 samples;
* per class, boxes by ymax ascending (stable); per cell, max = 0, then for
  each box: a >= max and a > 0 clears (max = 0, all targets 0); c >= max and
  c > 0 writes cov = c, cov_norm = inv_area * c, bbox = ((cx - x1), (cy -
  y1), (x2 - cx), (y2 - cy)) / scale with cx = px * in_w / gw + offset;
* loss mask: 1, or mask_multiplier in cells whose centre (px + 0.5,
  py + 0.5) lies in [x1, x2) x [y1, y2) of a mask box scaled by grid/input
  (its class, or all for class -1), unless preserve_ground_truth and
  cov > 0.

Usage: dnv2_raster_ref.py DIR...; DIR holds cfg.npy, cls.npy [K, 5],
boxes.npy [n, 5] (cls, x1, y1, x2, y2), masks.npy [m, 5]; writes cov.npy,
cov_norm.npy, mask.npy [K, gh, gw] and bbox.npy [4K, gh, gw].
"""
import sys
import numpy as np

f32 = np.float32


def ellipse(b, p, dz, kx, ky):
    xmin, ymin, xmax, ymax = f32(b[1]) * kx, f32(b[2]) * ky, f32(b[3]) * kx, f32(b[4]) * ky
    ccx, ccy, crx, cry, mr = (f32(v) for v in p)
    cx = xmin + ccx * (xmax - xmin)
    cy = ymin + ccy * (ymax - ymin)
    sx = cx - xmin if ccx < f32(0.5) else xmax - cx
    sy = cy - ymin if ccy < f32(0.5) else ymax - cy
    csx, csy = max(crx * sx, f32(0.1)), max(cry * sy, f32(0.1))
    rx, ry = max(csx, mr), (mr * csy / csx if csx < mr else csy)
    csx, csy = rx, ry
    rx, ry = (mr * csx / csy if csy < mr else csx), max(csy, mr)
    csx, csy = rx, ry
    dsx = max((f32(1) - dz) * csx + dz * sx, csx)
    dsy = max((f32(1) - dz) * csy + dz * sy, csy)
    m0, m4 = f32(1) / dsx, f32(1) / dsy
    return dict(m0=m0, m4=m4, m6=-cx * m0, m7=-cy * m4, icrx=f32(1) / (csx * m0),
                icry=f32(1) / (csy * m4), inv_area=f32(1) / max(csx * csy * f32(4), f32(1)),
                ymax=ymax, box=[float(v) for v in b[1:5]])


def fractions(e, gw, gh):
    px, py = np.meshgrid(np.arange(gw, dtype=f32), np.arange(gh, dtype=f32))
    a = np.zeros((gh, gw), f32)
    c = np.zeros((gh, gw), f32)
    for m in range(4):
        fy = py + f32(0.125) + f32(0.25) * f32(m)
        for n in range(4):
            fx = px + f32(0.125) + f32(0.25) * f32(n)
            tx = fx * e['m0'] + fy * f32(0) + e['m6']
            ty = fx * f32(0) + fy * e['m4'] + e['m7']
            txc, tyc = tx * e['icrx'], ty * e['icry']
            c += np.where(txc * txc + tyc * tyc < f32(1), f32(1 / 16), f32(0))
            a += np.where(tx * tx + ty * ty < f32(1), f32(1 / 16), f32(0))
    return a, c


def run(d):
    cfg = np.load(d + "/cfg.npy")
    in_w, in_h, gw, gh = (int(v) for v in cfg[:4])
    scale, offset, dz, mult, preserve = (float(v) for v in cfg[4:9])
    params = np.load(d + "/cls.npy")
    boxes = np.load(d + "/boxes.npy").reshape(-1, 5)
    masks = np.load(d + "/masks.npy").reshape(-1, 5)
    K = len(params)
    kx, ky = f32(gw / in_w), f32(gh / in_h)
    cov = np.zeros((K, gh, gw), np.float64)
    norm = np.zeros((K, gh, gw), np.float64)
    bbox = np.zeros((4 * K, gh, gw), np.float64)
    cxs = np.arange(gw)[None, :] * (in_w / gw) + offset + np.zeros((gh, 1))
    cys = np.arange(gh)[:, None] * (in_h / gh) + offset + np.zeros((1, gw))
    for k in range(K):
        es = [ellipse(b, params[k], f32(dz), kx, ky) for b in boxes if int(b[0]) == k]
        es.sort(key=lambda e: e['ymax'])  # stable
        mx = np.zeros((gh, gw), f32)
        for e in es:
            a, c = fractions(e, gw, gh)
            clear = (a >= mx) & (a > 0)
            mx[clear] = 0
            cov[k][clear] = 0
            norm[k][clear] = 0
            bbox[4 * k:4 * k + 4][:, clear] = 0
            put = (c >= mx) & (c > 0)
            mx[put] = c[put]
            cov[k][put] = c[put]
            norm[k][put] = (e['inv_area'] * c)[put]
            x1, y1, x2, y2 = e['box']
            vals = [(cxs - x1) / scale, (cys - y1) / scale, (x2 - cxs) / scale, (y2 - cys) / scale]
            for q in range(4):
                bbox[4 * k + q][put] = vals[q][put]
    mask = np.ones((K, gh, gw), np.float64)
    ccx = np.arange(gw)[None, :] + 0.5 + np.zeros((gh, 1))
    ccy = np.arange(gh)[:, None] + 0.5 + np.zeros((1, gw))
    gx, gy = gw / in_w, gh / in_h
    for m in masks:
        inside = ((ccx >= float(m[1]) * gx) & (ccx < float(m[3]) * gx) &
                  (ccy >= float(m[2]) * gy) & (ccy < float(m[4]) * gy))
        for k in range(K):
            if int(m[0]) >= 0 and int(m[0]) != k:
                continue
            sel = inside & ~((preserve > 0) & (cov[k] > 0))
            mask[k][sel] = mult
    for name, v in (("cov", cov), ("cov_norm", norm), ("bbox", bbox), ("mask", mask)):
        np.save("%s/%s.npy" % (d, name), v.astype(np.float32))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        run(d)

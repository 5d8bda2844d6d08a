"""Reference side of test_import_tv_detectors.sh: torchvision's detectors
(0.14) with random weights, run on images; deft's output compared with them.

make ARCH OUT.pth [IMGDIR]        ARCH with seeded random weights (eval mode), saved; the
                                  mobilenet_v3 ones scaled to unit activations on IMGDIR's photos
run ARCH PTH IMGDIR OUTDIR [MIN MAX]  torchvision on every image of IMGDIR: OUTDIR/raw/
                                  <stem>_boxes.npy, _scores.npy (every anchor's decoded,
                                  clipped box and class scores before NMS; fasterrcnn: the
                                  RPN's proposals and objectness before its NMS) and _dets.npy
                                  (x1 y1 x2 y2 score label after NMS), as `deft model detect --raw`
makerun ARCH OUT.pth CALIBDIR IMGDIR OUTDIR [MIN MAX]  make (scaled on CALIBDIR), then run
makerun_list FILE                 makerun of each line of FILE (its arguments): one torch
                                  start-up for all; OUTDIR/done marks each one that
                                  succeeded, a failure is printed and the others go on
compare DEFT_DIR REF_DIR          both dirs' raw/ arrays: boxes within 1e-3 relative
                                  (|a-b| <= 1e-3 max(|b|, 1)), scores within 1e-4, same labels,
                                  before and after NMS; prints the worst differences
"""
import os, sys
import numpy as np
if sys.argv[1:2] != ["compare"]:  # compare needs numpy alone: no torch import (2 CPU-s)
    import torch, torchvision
    import torch.nn.functional as F
    from PIL import Image
    import torchvision.transforms.functional as TF
    from torchvision.models import detection as D
    from torchvision.ops import boxes as box_ops
    torch.set_num_threads(2)
NUM_CLASSES = 6


def build(arch, min_size=None, max_size=None):
    kw = {"weights": None, "weights_backbone": None, "num_classes": NUM_CLASSES}
    if arch in ("retinanet_resnet50_fpn", "fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn"):
        if min_size:
            kw.update(min_size=min_size, max_size=max_size)
    return getattr(D, arch)(**kw).eval()


def unit_convs(net, forward):
    """each Conv2d of net rescaled, in forward order, to an output std of 1 under forward()"""
    def hook(conv, inp, out):
        b = conv.bias[None, :, None, None] if conv.bias is not None else 0
        k = 1.0 / max(float((out - b).std()), 1e-6)
        conv.weight.mul_(k)
        return (out - b) * k + b
    hs = [c.register_forward_hook(hook) for c in net.modules() if isinstance(c, torch.nn.Conv2d)]
    forward()
    for h in hs:
        h.remove()


def calib_images(d):
    return [img for _, img in images(d)] if d else [torch.rand(3, 240, 320)]


def make(arch, out, calib=None):
    torch.manual_seed(0)
    m = build(arch)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
        if arch == "ssd300_vgg16":
            # the random VGG's maps are large (inputs 0..255): scale each level's head so
            # its logits have std 2 and its box deltas std 1 on a test image (no ties at 1.0)
            il, _ = m.transform([torch.rand(3, 240, 320)])
            feats = list(m.backbone(il.tensors).values())
            for heads, target in ((m.head.classification_head.module_list, 2.0),
                                  (m.head.regression_head.module_list, 1.0)):
                for conv, f in zip(heads, feats):
                    conv.bias.uniform_(-1, 1)
                    conv.weight.mul_(target / float((conv(f) - conv.bias[:, None, None]).std()))
        if arch == "ssdlite320_mobilenet_v3_large":
            # random init (normal std 0.03) fades to maps that are constant in space (tied
            # scores): every backbone conv scaled to outputs of std 1 on the photos (noise has
            # other statistics), so each layer keeps its input's variation at a size that
            # float32 handles; each level's head then scaled to logits of std 1 (bias
            # -1..1; larger ones tie softmax scores at 1.0), box deltas of std 1
            il, _ = m.transform(calib_images(calib))
            unit_convs(m.backbone, lambda: m.backbone(il.tensors))
            feats = list(m.backbone(il.tensors).values())
            for heads, target in ((m.head.classification_head.module_list, 1.0),
                                  (m.head.regression_head.module_list, 1.0)):
                for blk, f in zip(heads, feats):
                    conv, t = blk[1], blk[0](f)
                    conv.bias.uniform_(-1, 1)
                    conv.weight.mul_(target / float((conv(t) - conv.bias[:, None, None]).std()))
        if arch == "retinanet_resnet50_fpn":
            # the prior-probability bias (-4.6) leaves nearly every score < 0.05: logits of
            # std 1.5 around -3..-1, box deltas of std 0.5 on a test image
            m.transform.min_size, m.transform.max_size = (320,), 512
            il, _ = m.transform([torch.rand(3, 240, 320)])
            feats = list(m.backbone(il.tensors).values())
            for h, last, target in ((m.head.classification_head, "cls_logits", 1.5),
                                    (m.head.regression_head, "bbox_reg", 0.5)):
                conv = getattr(h, last)
                y = torch.cat([(conv(h.conv(f)) - conv.bias[:, None, None]).flatten() for f in feats])
                conv.weight.mul_(target / float(y.std()))
                if last == "cls_logits":
                    conv.bias.uniform_(-3.0, -1.0)
        if arch.startswith("fasterrcnn"):
            # random init gives objectness ~0 and class logits ~0 (every score 1/6): RPN logits
            # of std 2 (bias -1..1) and deltas std 0.5, box head logits std 2 and deltas std 0.5
            m.transform.min_size, m.transform.max_size = (320,), 512
            il, _ = m.transform([torch.rand(3, 240, 320)])
            if arch == "fasterrcnn_mobilenet_v3_large_fpn":
                # the mobilenet's maps, as ssdlite's, scaled to unit size on the photos
                # (the heads below on one of them: noise gives the RPN's deltas another size,
                # and eight photos' 8000 proposals take minutes)
                ic, _ = m.transform(calib_images(calib))
                unit_convs(m.backbone.body, lambda: m.backbone.body(ic.tensors))
                il, _ = m.transform(calib_images(calib)[:1])
            feats = m.backbone(il.tensors)
            t = [m.rpn.head.conv(f) for f in feats.values()]
            for conv, target in ((m.rpn.head.cls_logits, 2.0), (m.rpn.head.bbox_pred, 0.5)):
                y = torch.cat([(conv(f) - conv.bias[:, None, None]).flatten() for f in t])
                conv.weight.mul_(target / float(y.std()))
            m.rpn.head.cls_logits.bias.uniform_(-1.0, 1.0)
            props, _ = m.rpn(il, feats)
            bf = m.roi_heads.box_head(m.roi_heads.box_roi_pool(feats, props, il.image_sizes))
            for lin, target in ((m.roi_heads.box_predictor.cls_score, 2.0), (m.roi_heads.box_predictor.bbox_pred, 0.5)):
                lin.weight.mul_(target / float((lin(bf) - lin.bias).std()))
    torch.save(m.state_dict(), out)


def images(d):
    names = sorted(f for f in os.listdir(d) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    return [(os.path.splitext(f)[0], TF.to_tensor(Image.open(os.path.join(d, f)).convert("RGB"))) for f in names]


def raw(arch, m, img):
    """torchvision's own steps up to (not including) the per-class selection"""
    il, _ = m.transform([img])
    feats = m.backbone(il.tensors)
    if arch.startswith("fasterrcnn"):
        # the RPN before its NMS: every anchor's proposal (clipped) and objectness probability
        from torchvision.models.detection.rpn import concat_box_prediction_layers
        feats = list(feats.values())
        obj, deltas = m.rpn.head(feats)
        anchors = m.rpn.anchor_generator(il, feats)[0]
        obj, deltas = concat_box_prediction_layers(obj, deltas)
        boxes = m.rpn.box_coder.decode_single(deltas, anchors)
        return box_ops.clip_boxes_to_image(boxes, il.image_sizes[0]), torch.sigmoid(obj)
    if isinstance(feats, torch.Tensor):
        feats = {"0": feats}
    feats = list(feats.values())
    ho = m.head(feats)
    anchors = m.anchor_generator(il, feats)[0]
    if arch.startswith("ssd"):
        boxes = m.box_coder.decode_single(ho["bbox_regression"][0], anchors)
        scores = F.softmax(ho["cls_logits"][0], dim=-1)
    else:
        boxes = m.box_coder.decode_single(ho["bbox_regression"][0], anchors)
        scores = torch.sigmoid(ho["cls_logits"][0])
    boxes = box_ops.clip_boxes_to_image(boxes, il.image_sizes[0])
    return boxes, scores


def run(arch, pth, imgdir, out, min_size=None, max_size=None):
    m = build(arch, min_size, max_size)
    m.load_state_dict(torch.load(pth))
    os.makedirs(os.path.join(out, "raw"), exist_ok=True)
    for stem, img in images(imgdir):
        with torch.no_grad():
            b, s = raw(arch, m, img)
            det = m([img])[0]
        p = os.path.join(out, "raw", stem)
        np.save(p + "_boxes.npy", b.numpy().astype(np.float32))
        np.save(p + "_scores.npy", s.numpy().astype(np.float32))
        d = torch.cat([det["boxes"], det["scores"][:, None], det["labels"][:, None].float()], 1)
        np.save(p + "_dets.npy", d.numpy().astype(np.float32))


def box_err(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0))) if a.size else 0.0


def match_dets(a, b):
    """greedy: each reference detection to the unused deft one of its label closest in box"""
    used = np.zeros(len(a), bool)
    worst_b = worst_s = 0.0
    miss = 0
    for r in b:
        best, bi = None, -1
        for i, q in enumerate(a):
            if used[i] or q[5] != r[5]:
                continue
            e = box_err(q[None, :4], r[None, :4])
            if best is None or e < best:
                best, bi = e, i
        if bi < 0 or best > 1e-3 or abs(a[bi][4] - r[4]) > 1e-4:
            miss += 1
            continue
        used[bi] = True
        worst_b = max(worst_b, best)
        worst_s = max(worst_s, abs(float(a[bi][4] - r[4])))
    return miss, worst_b, worst_s


def compare(dd, rd):
    stems = sorted(f[:-10] for f in os.listdir(os.path.join(rd, "raw")) if f.endswith("_boxes.npy"))
    wb = ws = wdb = wds = 0.0
    ok = True
    ndet = 0
    for st in stems:
        L = lambda d, w: np.load(os.path.join(d, "raw", st + "_" + w + ".npy"))
        try:
            ab, asc, ad = L(dd, "boxes"), L(dd, "scores"), L(dd, "dets")
        except FileNotFoundError as e:
            print("%s: deft wrote nothing: %s" % (st, e))
            return 1
        rb, rs, rdt = L(rd, "boxes"), L(rd, "scores"), L(rd, "dets")
        if ab.shape != rb.shape or asc.shape != rs.shape:
            print("%s: shapes %s %s vs torchvision %s %s" % (st, ab.shape, asc.shape, rb.shape, rs.shape))
            return 1
        eb, es = box_err(ab, rb), float(np.max(np.abs(asc - rs)))
        miss, edb, eds = match_dets(ad, rdt)
        extra = len(ad) - (len(rdt) - miss)
        print("%-10s before NMS: %d anchors x %d classes, box %.2e, score %.2e | after NMS: %d vs %d detections, "
              "%d unmatched, box %.2e, score %.2e" % (st, rb.shape[0], rs.shape[1], eb, es, len(ad), len(rdt),
                                                      miss + extra, edb, eds))
        ok &= eb <= 1e-3 and es <= 1e-4 and miss == 0 and extra == 0 and len(ad) == len(rdt)
        wb, ws, wdb, wds = max(wb, eb), max(ws, es), max(wdb, edb), max(wds, eds)
        ndet += len(rdt)
    print("worst: before NMS box %.2e (relative), score %.2e; after NMS (%d detections) box %.2e, score %.2e"
          % (wb, ws, ndet, wdb, wds))
    return 0 if ok and stems else 1


if __name__ == "__main__":
    c = sys.argv[1]
    if c == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif c == "makerun":  # make, then run: one torch start-up for both
        make(sys.argv[2], sys.argv[3], sys.argv[4])
        mm = [int(v) for v in sys.argv[7:9]] if len(sys.argv) > 8 else [None, None]
        run(sys.argv[2], sys.argv[3], sys.argv[5], sys.argv[6], *mm)
    elif c == "makerun_list":
        failed = 0
        for line in open(sys.argv[2]):
            a = line.split()
            if not a:
                continue
            try:
                make(a[0], a[1], a[2])
                run(a[0], a[1], a[3], a[4], *([int(v) for v in a[5:7]] if len(a) > 6 else [None, None]))
                open(os.path.join(a[4], "done"), "w").close()
            except Exception:
                import traceback
                traceback.print_exc()
                failed = 1
        sys.exit(failed)
    elif c == "run":
        mm = [int(v) for v in sys.argv[6:8]] if len(sys.argv) > 7 else [None, None]
        run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], *mm)
    elif c == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))

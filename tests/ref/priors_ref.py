"""Reference anchors and priors for tests/eval/test_det_priors.c, computed at
test time. argv: OUT_DIR. Writes float32 binaries:
  tv_ssd.bin    torchvision DefaultBoxGenerator (TAO's SSD sample: 300x300,
                scales 0.05..0.85, aspects 1, 2, 1/2, 3, 1/3, two boxes for 1,
                maps 38/19/10/5/3/2), xyxy in 0-1.
  tv_ssd_steps.bin  the same with steps 8, 16, 32, 64, 100, 300.
  tv_frcnn.bin  torchvision AnchorGenerator, sizes (32, 64) x aspect (1, 0.25, 4)
                on a 5x7 map at stride 16, xyxy in pixels.
  np_frcnn.bin  numpy, from TAO's definition: TAO's sample (64, 128, 256) x
                (1, 0.5, 2) on 24x78 at stride 16.
  np_ssd_clip.bin numpy, TAO's AnchorBoxes with clip_boxes on a 320x240 input.
Differences between torchvision's and TAO's definitions (the C test undoes them):
  - AnchorGenerator's aspect ratio is h/w (TAO's ratio is w/h), its order is
    ratio-major (TAO: scale-major), its centres are at stride*i (TAO:
    stride*(i + 0.5)) and it rounds the base anchors to integers (exact here:
    the sizes chosen have integer halves).
  - DefaultBoxGenerator takes the extra aspects as pairs (a, 1/a) and sizes
    relative to each side of the image (TAO: to the shorter side; equal for a
    square input); its clip clamps normalised w/h, not TAO's pixel rule; it has
    no variances (torchvision's box coder takes weights 10, 10, 5, 5 = 1/var).
"""
import math
import sys

import numpy as np

out = sys.argv[1]


def save(name, a):
    np.asarray(a, dtype=np.float32).tofile(f"{out}/{name}")


def ssd_tao(img_w, img_h, maps, scales, ars, two, clip, steps=None, offsets=None):
    size = min(img_w, img_h)
    res = []
    for k, (fh, fw) in enumerate(maps):
        wh = []
        for a in ars:
            if a == 1:
                wh.append((scales[k] * size, scales[k] * size))
                if two:
                    s = math.sqrt(scales[k] * scales[k + 1]) * size
                    wh.append((s, s))
            else:
                wh.append((scales[k] * size * math.sqrt(a), scales[k] * size / math.sqrt(a)))
        sh = steps[k] if steps else img_h / fh
        sw = steps[k] if steps else img_w / fw
        oh = ow = offsets[k] if offsets else 0.5
        for y in range(fh):
            for x in range(fw):
                cy, cx = (oh + y) * sh, (ow + x) * sw
                for w, h in wh:
                    b = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
                    if clip:
                        for i in range(4):
                            side = img_w if i % 2 == 0 else img_h
                            b[i] = side - 1 if b[i] >= side else (0 if b[i] < 0 else b[i])
                    res.append([b[0] / img_w, b[1] / img_h, b[2] / img_w, b[3] / img_h])
    return np.array(res)


def frcnn_tao(scales, ratios, stride, fh, fw):
    res = []
    for y in range(fh):
        for x in range(fw):
            for s in scales:
                for r in ratios:
                    w, h = s * math.sqrt(r), s / math.sqrt(r)
                    cx, cy = stride * (x + 0.5), stride * (y + 0.5)
                    res.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.array(res)


scales = [0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]
maps = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (2, 2)]
save("np_frcnn.bin", frcnn_tao([64, 128, 256], [1, 0.5, 2], 16, 24, 78))
save("np_ssd_clip.bin", ssd_tao(320, 240, [(30, 40), (15, 20), (8, 10), (4, 5), (2, 3), (1, 2)], scales,
                                 [1.0, 2.0, 0.5], True, True))
try:
    import torch
    from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
    from torchvision.models.detection.image_list import ImageList
except Exception as e:  # noqa: BLE001
    print(f"torchvision not available: {e}")
    sys.exit(0)

img = ImageList(torch.zeros(1, 3, 300, 300), [(300, 300)])
for name, steps in (("tv_ssd.bin", None), ("tv_ssd_steps.bin", [8, 16, 32, 64, 100, 300])):
    gen = DefaultBoxGenerator([[2, 3]] * 6, scales=scales, steps=steps, clip=False)  # its clip is not TAO's
    feats = [torch.zeros(1, 1, h, w) for h, w in maps]
    boxes = gen(img, feats)[0] / 300.0
    save(name, boxes.double().numpy())
ag = AnchorGenerator(sizes=((32, 64),), aspect_ratios=((1.0, 4.0, 0.25),))
a = ag(ImageList(torch.zeros(1, 3, 80, 112), [(80, 112)]), [torch.zeros(1, 1, 5, 7)])[0]
save("tv_frcnn.bin", a.double().numpy())
print("ok")

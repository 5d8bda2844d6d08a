"""Writes a small class-folder dataset for tests/data/test_dataset.c and
test_loader.c: usage: make_dataset.py ROOT.

ROOT/ds/{alpha,beta,gamma}/ with 5/4/6 images (jpg, JPEG, png, bmp) plus
gamma/sub/deep.png (found recursively), a text
file and a hidden file that must be ignored, and beta/broken.jpg, a
truncated JPEG. ROOT/empty_class/{a,b}: b holds only a .txt file.
ROOT/classes.txt lists gamma, alpha, beta with blank lines and spaces.
"""
import os
import sys

import numpy as np
from PIL import Image

root = sys.argv[1]
rng = np.random.default_rng(7)
ds = os.path.join(root, "ds")
counts = {"alpha": 5, "beta": 4, "gamma": 6}
for ci, (cls, n) in enumerate(counts.items()):
    d = os.path.join(ds, cls)
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        w, h = 30 + 7 * i, 24 + 5 * ((i + ci) % 3)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img[..., ci] = 40 * ci + 10 * i  # a class tint
        ext = ["jpg", "png", "JPEG", "bmp", "jpeg", "PNG"][i % 6]
        fmt = {"jpg": "JPEG", "jpeg": "JPEG", "JPEG": "JPEG", "png": "PNG", "PNG": "PNG", "bmp": "BMP"}[ext]
        Image.fromarray(img).save(os.path.join(d, "img_%02d.%s" % (i, ext)), format=fmt)
    open(os.path.join(d, "notes.txt"), "w").write("not an image\n")
    open(os.path.join(d, ".hidden.jpg"), "w").write("hidden\n")
good = open(os.path.join(ds, "alpha", "img_00.jpg"), "rb").read()
open(os.path.join(ds, "beta", "broken.jpg"), "wb").write(good[: len(good) // 2])
os.makedirs(os.path.join(ds, "gamma", "sub"), exist_ok=True)
Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(os.path.join(ds, "gamma", "sub", "deep.png"))
for c in ["a", "b"]:
    os.makedirs(os.path.join(root, "empty_class", c), exist_ok=True)
Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.path.join(root, "empty_class", "a", "x.png"))
open(os.path.join(root, "empty_class", "b", "readme.txt"), "w").write("x")
os.makedirs(os.path.join(root, "no_classes"), exist_ok=True)
open(os.path.join(root, "classes.txt"), "w").write("gamma\n\n  alpha \r\nbeta\n")

"""Writes the test images of tests/data/test_*.c and their references.

usage: make_images.py OUTDIR [--torch]
Images are written with PIL (and zlib for 16-bit RGB PNG); reference pixels
are PIL's own decode (or numpy formulas), saved as float32 .npy files.
With --torch, also torch/torchvision references for resize and jitter.
"""
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

out = sys.argv[1]
with_torch = "--torch" in sys.argv
rng = np.random.default_rng(1234)


def save_ref(name, arr):
    np.save(os.path.join(out, name), np.ascontiguousarray(arr, dtype=np.float32))


def smooth_image(w, h):
    """A smooth color image (JPEG-friendly) with some texture."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 128 + 90 * np.cos((x + y) / 13.0)
    b = 60 + 180 * (x / max(w - 1, 1))
    img = np.stack([r, g, b], -1) + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def png_chunk(tag, data):
    c = tag + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


def write_png16_rgb(path, arr16):
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    data += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    open(path, "wb").write(data)


# --- JPEG -----------------------------------------------------------------
rgb = smooth_image(67, 45)
Image.fromarray(rgb).save(os.path.join(out, "rgb.jpg"), quality=95)
save_ref("rgb_jpg.npy", np.asarray(Image.open(os.path.join(out, "rgb.jpg")).convert("RGB")))
Image.fromarray(rgb).save(os.path.join(out, "prog.jpg"), quality=90, progressive=True)
save_ref("prog_jpg.npy", np.asarray(Image.open(os.path.join(out, "prog.jpg")).convert("RGB")))
gray = smooth_image(40, 30)[:, :, 0]
Image.fromarray(gray, "L").save(os.path.join(out, "gray.jpg"), quality=95)
save_ref("gray_jpg.npy", np.asarray(Image.open(os.path.join(out, "gray.jpg")).convert("RGB")))
Image.fromarray(rgb).convert("CMYK").save(os.path.join(out, "cmyk.jpg"), quality=95)
save_ref("cmyk_jpg.npy", np.asarray(Image.open(os.path.join(out, "cmyk.jpg")).convert("RGB")))
big = smooth_image(800, 600)
Image.fromarray(big).save(os.path.join(out, "big.jpg"), quality=92)
im = Image.open(os.path.join(out, "big.jpg"))
im.draft("RGB", (200, 150))  # libjpeg DCT scaling 1/4
save_ref("big_draft.npy", np.asarray(im.convert("RGB")))
# a .png name holding JPEG bytes: detection is by content
Image.fromarray(rgb).save(os.path.join(out, "really_jpeg.png"), format="JPEG", quality=95)

# --- PNG ------------------------------------------------------------------
Image.fromarray(rgb).save(os.path.join(out, "rgb.png"))
save_ref("rgb_png.npy", rgb)
rgba = np.concatenate([rgb, rng.integers(0, 256, (45, 67, 1), dtype=np.uint8)], -1)
Image.fromarray(rgba, "RGBA").save(os.path.join(out, "rgba.png"))
save_ref("rgba_png.npy", rgb)
Image.fromarray(gray, "L").save(os.path.join(out, "gray.png"))
save_ref("gray_png.npy", np.asarray(Image.fromarray(gray, "L").convert("RGB")))
la = Image.fromarray(np.stack([gray, 255 - gray], -1), "LA")
la.save(os.path.join(out, "gray_alpha.png"))
save_ref("gray_alpha_png.npy", np.asarray(Image.fromarray(gray, "L").convert("RGB")))
pal = Image.fromarray(rgb).quantize(colors=50)
pal.save(os.path.join(out, "palette.png"))
save_ref("palette_png.npy", np.asarray(pal.convert("RGB")))
bw = (gray > 128).astype(np.uint8) * 255
Image.fromarray(bw, "L").convert("1").save(os.path.join(out, "bw.png"))
save_ref("bw_png.npy", np.repeat(bw[:, :, None], 3, -1))
rgb16 = rng.integers(0, 65536, (21, 33, 3), dtype=np.uint16)
write_png16_rgb(os.path.join(out, "rgb16.png"), rgb16)
save_ref("rgb16_png.npy", (rgb16 >> 8).astype(np.uint8))
g16 = rng.integers(0, 65536, (19, 23), dtype=np.uint16)
Image.fromarray(g16.astype(np.uint16), "I;16").save(os.path.join(out, "gray16.png"))
save_ref("gray16_png.npy", np.repeat((g16 >> 8)[:, :, None], 3, -1))

# --- BMP ------------------------------------------------------------------
Image.fromarray(rgb).save(os.path.join(out, "rgb.bmp"))
save_ref("rgb_bmp.npy", rgb)
pal.save(os.path.join(out, "palette.bmp"))
save_ref("palette_bmp.npy", np.asarray(pal.convert("RGB")))

# --- hostile headers --------------------------------------------------------
ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
open(os.path.join(out, "bomb.png"), "wb").write(
    b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))
jb = bytearray(open(os.path.join(out, "rgb.jpg"), "rb").read())
i = 2
while i < len(jb):  # find SOF0 and claim 65000 x 65000
    marker, seglen = jb[i + 1], (jb[i + 2] << 8) | jb[i + 3]
    if marker in (0xC0, 0xC1, 0xC2):
        jb[i + 5:i + 9] = struct.pack(">HH", 65000, 65000)
        break
    i += 2 + seglen
open(os.path.join(out, "bomb.jpg"), "wb").write(bytes(jb))

# --- resize / preprocess references ----------------------------------------
src = rng.integers(0, 256, (29, 37, 3), dtype=np.uint8)
Image.fromarray(src).save(os.path.join(out, "src.png"))
chw = src.transpose(2, 0, 1).astype(np.float32)
save_ref("src_chw.npy", chw)
x = chw
caffe = x[::-1].copy() - np.array([103.939, 116.779, 123.68], np.float32)[:, None, None]
save_ref("pre_caffe.npy", caffe)
m = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
save_ref("pre_torch.npy", (x / np.float32(255.0) - m) / np.float32(0.224))
s = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
save_ref("pre_torchvision.npy", (x / np.float32(255.0) - m) / s)
save_ref("pre_tf.npy", x / np.float32(127.5) - np.float32(1.0))
# grey: PIL's convert('L') (TAO reads grey images with PIL), then TAO's grey constants
g = np.asarray(Image.open(os.path.join(out, "src.png")).convert("L"), np.float32)[None]
save_ref("src_gray.npy", g)
save_ref("pre_gray_caffe.npy", g - np.float32(117.3786))
save_ref("pre_gray_torch.npy", (g / np.float32(255.0) - np.float32(0.449)) / np.float32(0.224))
save_ref("pre_gray_torchvision.npy", (g / np.float32(255.0) - np.float32(0.449)) / np.float32(0.226))
save_ref("pre_gray_tf.npy", g / np.float32(127.5) - np.float32(1.0))

if with_torch:
    import torch
    import torch.nn.functional as F
    t = torch.from_numpy(chw)[None]
    for (oh, ow, aa, name) in [(40, 50, False, "up"), (17, 20, False, "down"), (7, 9, True, "aa"),
                               (29, 37, False, "same")]:
        r = F.interpolate(t, size=(oh, ow), mode="bilinear", align_corners=False, antialias=aa)
        save_ref("rs_%s.npy" % name, r[0].numpy())
    for (oh, ow, name) in [(40, 50, "up"), (17, 20, "down"), (7, 9, "far")]:  # the fixed filters
        for mode in ("bilinear", "nearest-exact", "bicubic"):
            kw = {} if mode == "nearest-exact" else {"align_corners": False}
            r = F.interpolate(t, size=(oh, ow), mode=mode, **kw)
            save_ref("rs_%s_%s.npy" % (mode.split("-")[0], name), r[0].numpy())
    try:
        import cv2  # OpenCV's INTER_AREA: the fractional-overlap mean when shrinking
        for (oh, ow, name) in [(17, 20, "down"), (7, 9, "far")]:
            r = cv2.resize(src.astype(np.float32), (ow, oh), interpolation=cv2.INTER_AREA)
            save_ref("rs_area_%s.npy" % name, r.transpose(2, 0, 1))
    except ImportError:
        pass
    crop = t[:, :, 3:18, 5:25]
    save_ref("rs_crop.npy", F.interpolate(crop, size=(12, 16), mode="bilinear", align_corners=False)[0].numpy())
    import torchvision.transforms.functional as TF
    f01 = t[0] / 255.0
    save_ref("cj_bright.npy", (TF.adjust_brightness(f01, 1.3) * 255).numpy())
    save_ref("cj_contrast.npy", (TF.adjust_contrast(f01, 0.6) * 255).numpy())
    save_ref("cj_sat.npy", (TF.adjust_saturation(f01, 1.7) * 255).numpy())
    save_ref("cj_hue.npy", (TF.adjust_hue(f01, 0.21) * 255).numpy())
    save_ref("cj_hue_neg.npy", (TF.adjust_hue(f01, -0.4) * 255).numpy())

#!/usr/bin/python3
"""gen_ops.py - PyTorch references for the per-op tests (tests/ops/test_ref_ops.c).

Usage: gen_ops.py <manifest> <dir>

Each manifest line is `<case> <op> key=value ...` (lists comma-separated). The
inputs of case C are <dir>/C.<name>.npy (f32, written by the C test); this
script computes the forward result and, with autograd and the upstream
gradient `dy` (or `dloss`) from the test, the input gradients, in float64, and
writes them to <dir>/C.ref.<name>.npy. One process handles every case so torch
is imported once.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_grad_enabled(True)
DT = torch.float64


def parse_value(v):
    parts = v.split(",")
    out = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            out.append(float(p))
    return out if len(out) > 1 else out[0]


def as_list(v, n=None):
    v = v if isinstance(v, list) else [v]
    return v * n if n and len(v) == 1 else v


class Case:
    def __init__(self, d, name, args):
        self.d, self.name, self.a = d, name, args

    def load(self, key, grad=False):
        t = torch.from_numpy(np.load(f"{self.d}/{self.name}.{key}.npy")).to(DT)
        return t.requires_grad_(grad)

    def has(self, key):
        return os.path.exists(f"{self.d}/{self.name}.{key}.npy")

    def save(self, key, t):
        if t is None:
            return
        a = t.detach().to(torch.float32).numpy() if torch.is_tensor(t) else np.asarray(t, np.float32)
        np.save(f"{self.d}/{self.name}.ref.{key}.npy", np.ascontiguousarray(a, dtype=np.float32))


def conv2d(c):
    a = c.a
    x, w = c.load("x", True), c.load("w", True)
    b = c.load("b", True) if c.has("b") else None
    t, l, bo, r = as_list(a["pad"])
    # PyTorch pads symmetrically only; an explicit zero pad gives the 4-sided one.
    y = F.conv2d(F.pad(x, (l, r, t, bo)), w, b, stride=as_list(a["stride"], 2),
                 dilation=as_list(a["dil"], 2), groups=a["groups"])
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad), c.save("dw", w.grad)
    c.save("db", b.grad if b is not None else None)


def conv_transpose2d(c):
    a = c.a
    x, w = c.load("x", True), c.load("w", True)
    b = c.load("b", True) if c.has("b") else None
    t, l, bo, r = as_list(a["pad"])
    # 4-sided padding of a transposed conv crops its full (unpadded) output.
    full = F.conv_transpose2d(x, w, b, stride=as_list(a["stride"], 2),
                              output_padding=as_list(a["opad"], 2), groups=a["groups"],
                              dilation=as_list(a["dil"], 2))
    oh, ow = a["out"]
    y = full[:, :, t:t + oh, l:l + ow]
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad), c.save("dw", w.grad)
    c.save("db", b.grad if b is not None else None)


def batchnorm(c):
    a = c.a
    x, gamma, beta = c.load("x", True), c.load("gamma", True), c.load("beta", True)
    rm, rv = c.load("rmean"), c.load("rvar")
    train = a["mode"] == 0
    dims = [0] + list(range(2, x.dim()))
    if train:
        save_mean = x.detach().mean(dims)
        save_var = x.detach().var(dims, unbiased=False)
    else:
        save_mean, save_var = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=train, momentum=a["momentum"],
                     eps=a["eps"])
    y.backward(c.load("dy"))
    c.save("y", y), c.save("save_mean", save_mean), c.save("save_var", save_var)
    c.save("rmean", rm), c.save("rvar", rv)
    c.save("dx", x.grad), c.save("dgamma", gamma.grad), c.save("dbeta", beta.grad)


ACTS = {
    0: lambda x, al: F.relu(x),
    1: lambda x, al: F.relu6(x),
    2: lambda x, al: F.leaky_relu(x, al),
    3: lambda x, al: torch.sigmoid(x),
    4: lambda x, al: torch.tanh(x),
    5: lambda x, al: F.silu(x),
    6: lambda x, al: F.hardswish(x),
    7: lambda x, al: F.mish(x),
    8: lambda x, al: F.hardsigmoid(x),
    9: lambda x, al: torch.exp(x),
    10: lambda x, al: torch.log(x),
    11: lambda x, al: torch.sqrt(x),
    12: lambda x, al: torch.abs(x),
    13: lambda x, al: torch.neg(x),
    14: lambda x, al: torch.reciprocal(x),
    15: lambda x, al: F.softplus(x),
    16: lambda x, al: F.softsign(x),
    17: lambda x, al: F.elu(x, al),
    18: lambda x, al: torch.erf(x),
}


def act(c):
    x = c.load("x", True)
    y = ACTS[c.a["kind"]](x, c.a["alpha"])
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad)


def pool(c):
    a = c.a
    x = c.load("x", True)
    t, l, bo, r = as_list(a["pad"])
    assert t == bo and l == r, "PyTorch pooling pads symmetrically"
    k, s = as_list(a["kernel"], 2), as_list(a["stride"], 2)
    if a["kind"] == 0:
        y, idx = F.max_pool2d(x, k, s, (t, l), ceil_mode=bool(a["ceil"]), return_indices=True)
        c.save("idx", idx.to(torch.float64))
    else:
        y = F.avg_pool2d(x, k, s, (t, l), ceil_mode=bool(a["ceil"]),
                         count_include_pad=bool(a["cip"]))
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad)


def global_avgpool(c):
    x = c.load("x", True)
    y = F.adaptive_avg_pool2d(x, 1)
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad)


def binary(c, fn):
    x, z = c.load("a", True), c.load("b", True)
    y = fn(x, z)
    y.backward(c.load("dy"))
    c.save("y", y), c.save("da", x.grad), c.save("db", z.grad)


def concat(c):
    xs = [c.load(f"x{i}") for i in range(c.a["n"])]
    c.save("y", torch.cat(xs, c.a["axis"]))


def slice_(c):
    x = c.load("x")
    idx = tuple(slice(s, e) for s, e in zip(as_list(c.a["start"]), as_list(c.a["end"])))
    c.save("y", x[idx])


def pad(c):
    x = c.load("x")
    before, after = as_list(c.a["before"]), as_list(c.a["after"])
    spec = []
    for bfr, aft in reversed(list(zip(before, after))):
        spec += [bfr, aft]
    c.save("y", F.pad(x, spec))


def upsample(c):
    a = c.a
    x = c.load("x", True)
    size = tuple(as_list(a["size"]))
    if a["mode"] == 0:
        y = F.interpolate(x, size=size, mode="nearest")
    else:
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=bool(a["align"]))
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad)


def linear(c):
    x, w = c.load("x", True), c.load("w", True)
    b = c.load("b", True) if c.has("b") else None
    y = F.linear(x, w, b)
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad), c.save("dw", w.grad)
    c.save("db", b.grad if b is not None else None)


def softmax(c):
    x = c.load("x", True)
    y = torch.softmax(x, c.a["axis"])
    y.backward(c.load("dy"))
    c.save("y", y), c.save("dx", x.grad)


def loss(c):
    import torchvision.ops
    a = c.a
    x, t = c.load("x", True), c.load("t")
    kind = a["kind"]
    if kind == 0:
        tt = t.long() if t.dim() == 1 else t
        l = F.cross_entropy(x, tt, label_smoothing=a["smoothing"])
    elif kind == 1:
        l = F.binary_cross_entropy_with_logits(x, t)
    elif kind == 2:
        l = torchvision.ops.sigmoid_focal_loss(x, t, alpha=a["alpha"], gamma=a["gamma"],
                                               reduction="mean")
    elif kind == 3:
        l = F.l1_loss(x, t)
    elif kind == 4:
        l = F.smooth_l1_loss(x, t, beta=a["beta"])
    else:
        l = F.mse_loss(x, t)
    l.backward(c.load("dloss").reshape(()))
    c.save("loss", l.reshape(1)), c.save("dx", x.grad)


def crop_and_resize(x, boxes, out, image):
    """TF's tf.image.crop_and_resize (bilinear, extrapolation 0) of boxes
    divided by (image - 1), as TAO's CropAndResize layer calls it, written
    with differentiable indexing. Sample points in float32 as TF computes them."""
    n, ch, h, w = x.shape
    f32 = np.float32
    ys_all = []
    res = []
    for row in boxes.detach().to(torch.float32).numpy():
        b = int(row[0])
        x1, y1, x2, y2 = (f32(row[1]) / f32(image[1] - 1), f32(row[2]) / f32(image[0] - 1),
                          f32(row[3]) / f32(image[1] - 1), f32(row[4]) / f32(image[0] - 1))

        def grid(a, z, size, cnt):
            if cnt > 1:
                step = (z - a) * f32(size - 1) / f32(cnt - 1)
                return np.array([a * f32(size - 1) + f32(i) * step for i in range(cnt)], np.float32)
            return np.array([f32(0.5) * (a + z) * f32(size - 1)], np.float32)

        ys, xs = grid(y1, y2, h, out[0]), grid(x1, x2, w, out[1])
        vy, vx = (ys >= 0) & (ys <= h - 1), (xs >= 0) & (xs <= w - 1)
        ty, by = np.clip(np.floor(ys), 0, h - 1).astype(np.int64), np.clip(np.ceil(ys), 0, h - 1).astype(np.int64)
        tx, bx = np.clip(np.floor(xs), 0, w - 1).astype(np.int64), np.clip(np.ceil(xs), 0, w - 1).astype(np.int64)
        ly = torch.tensor((ys - np.floor(ys)).astype(np.float64), dtype=DT).view(-1, 1)
        lx = torch.tensor((xs - np.floor(xs)).astype(np.float64), dtype=DT).view(1, -1)
        img = x[b]
        g = lambda yy, xx: img[:, yy][:, :, xx]
        top = g(ty, tx) * (1 - lx) + g(ty, bx) * lx
        bot = g(by, tx) * (1 - lx) + g(by, bx) * lx
        v = top * (1 - ly) + bot * ly
        mask = torch.tensor(np.outer(vy, vx).astype(np.float64), dtype=DT)
        res.append(v * mask)
    return torch.stack(res)


def roi_align(c):
    import torchvision.ops
    a = c.a
    boxes = c.load("boxes")
    out = as_list(a["out"], 2)
    if a["mode"] == 0:
        # float32, as users run it: the adaptive sample count ceil(roi / bins)
        # is then computed in the same precision as deft's
        x = c.load("x").to(torch.float32).requires_grad_(True)
        y = torchvision.ops.roi_align(x, boxes.to(torch.float32), out, spatial_scale=a["scale"],
                                      sampling_ratio=a["sr"], aligned=bool(a["aligned"]))
        y.backward(c.load("dy").to(torch.float32))
    else:
        x = c.load("x", True)
        image = as_list(a["image"], 2)
        y = crop_and_resize(x, boxes, out, image)
        y.backward(c.load("dy"))
        # the peer itself checked against torchvision: with one sample per bin at
        # the bin centre, roi_align(aligned) samples TF's grid wherever both
        # interpolate inside the map
        if out[0] > 1 and out[1] > 1:
            sy, sx = (x.shape[2] - 1) / (image[0] - 1), (x.shape[3] - 1) / (image[1] - 1)
            ref = []
            for row in boxes.tolist():
                x1, y1, x2, y2 = row[1] * sx, row[2] * sy, row[3] * sx, row[4] * sy
                bh, bw = (y2 - y1) / (out[0] - 1), (x2 - x1) / (out[1] - 1)
                ref.append([row[0], x1 - 0.5 * bw + 0.5, y1 - 0.5 * bh + 0.5,
                            x1 - 0.5 * bw + 0.5 + out[1] * bw, y1 - 0.5 * bh + 0.5 + out[0] * bh])
            tv = torchvision.ops.roi_align(x.detach(), torch.tensor(ref, dtype=DT), out, 1.0, 1, True)
            inside = y.detach() != 0
            err = (tv - y.detach())[inside].abs().max().item() if inside.any() else 0.0
            assert err < 1e-4, f"crop_and_resize peer differs from torchvision roi_align by {err}"
    c.save("y", y), c.save("dx", x.grad)


OPS = {
    "conv2d": conv2d, "conv_transpose2d": conv_transpose2d, "batchnorm": batchnorm,
    "act": act, "pool": pool, "global_avgpool": global_avgpool,
    "add": lambda c: binary(c, torch.add), "mul": lambda c: binary(c, torch.mul),
    "concat": concat, "slice": slice_, "pad": pad, "upsample": upsample, "linear": linear,
    "softmax": softmax, "loss": loss, "roi_align": roi_align,
}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[2]
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            name, op = parts[0], parts[1]
            args = dict(kv.split("=", 1) for kv in parts[2:] if "=" in kv)
            args = {k: parse_value(v) for k, v in args.items()}
            try:
                OPS[op](Case(d, name, args))
            except Exception as e:  # report and go on: the C side flags the missing files
                print(f"gen_ops.py: case {name} ({op}) failed: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

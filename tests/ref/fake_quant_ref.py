#!/usr/bin/python3
"""fake_quant_ref.py - PyTorch references for tests/ops/test_fake_quant.c.

Usage: fake_quant_ref.py <dir>

<dir>/manifest.txt has one line per case, `<case> <kind> key=value ...`; the
case's tensors are <dir>/<case>.<name>.npy (f32, written by the C test):

  tensor   x, dy, amax[1]: y = torch.fake_quantize_per_tensor_affine(x,
           scale = amax / 127 (float32), 0, -128, 127) and dx = d(sum(dy * y))/dx
  channel  x, dy, axis=A: per-channel scales max|x_c| / 127 along A (float32),
           y = torch.fake_quantize_per_channel_affine(x, scales, 0, A, -127, 127), dx
  conv     x, w, b, t, amax[1], stride=S pad=P: y = conv2d(fq(x), fq_c(w), b),
           loss = mean((y - t)^2); y, loss and the gradients of x, w, b

Outputs: <dir>/<case>.ref.<name>.npy. PyTorch's own straight-through backward
of fake_quantize_* gives the reference gradients.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True


def load(d, case, name):
    return torch.from_numpy(np.load(f"{d}/{case}.{name}.npy").astype(np.float32))


def save(d, case, name, t):
    np.save(f"{d}/{case}.ref.{name}.npy", np.ascontiguousarray(t.detach().numpy(), dtype=np.float32))


def tensor_scale(amax):
    # deft computes amax / 127.0f in float32; IEEE division gives the same float here
    return float(np.float32(amax) / np.float32(127.0))


def fq_tensor(x, amax):
    return torch.fake_quantize_per_tensor_affine(x, tensor_scale(amax), 0, -128, 127)


def fq_channel(x, axis):
    dims = [i for i in range(x.dim()) if i != axis]
    m = x.detach().abs().amax(dim=dims).numpy().astype(np.float32)
    s = m / np.float32(127.0)
    s[s == 0] = 1.0  # an all-zero channel quantizes to zero with any scale
    zp = torch.zeros(len(s), dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(x, torch.from_numpy(s), zp, axis, -127, 127)


def main():
    d = sys.argv[1]
    for line in open(f"{d}/manifest.txt"):
        parts = line.split()
        if not parts:
            continue
        case, kind = parts[0], parts[1]
        a = dict(p.split("=", 1) for p in parts[2:])
        if kind in ("tensor", "channel"):
            x = load(d, case, "x").requires_grad_(True)
            y = fq_tensor(x, load(d, case, "amax")[0].item()) if kind == "tensor" else fq_channel(x, int(a["axis"]))
            y.backward(load(d, case, "dy"))
            save(d, case, "y", y)
            save(d, case, "dx", x.grad)
        elif kind == "conv":
            x = load(d, case, "x").requires_grad_(True)
            w = load(d, case, "w").requires_grad_(True)
            b = load(d, case, "b").requires_grad_(True)
            y = F.conv2d(fq_tensor(x, load(d, case, "amax")[0].item()), fq_channel(w, 0), b,
                         stride=int(a["stride"]), padding=int(a["pad"]))
            loss = ((y - load(d, case, "t")) ** 2).mean()
            loss.backward()
            save(d, case, "y", y)
            save(d, case, "loss", loss.reshape(1))
            save(d, case, "dx", x.grad)
            save(d, case, "dw", w.grad)
            save(d, case, "db", b.grad)
        else:
            raise SystemExit(f"unknown case kind {kind}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""gen_autograd.py - PyTorch references for the gradient check (tests/ops/test_gradcheck.c).

Usage: gen_autograd.py <manifest> <dir>

Each manifest line is `<case> <op> grads=<name>,<name>... key=value ...` (lists
comma-separated). Case C is one op applied to tensors stored as
<dir>/C.<name>.npy (f32, written by the C test; names are the deft graph's value
names: "x", "conv.weight", "bn.running_var", ...), followed -- unless the op is
itself a loss -- by an L2 (MSE, mean) loss against <dir>/C.target.npy. In
float64 this script computes the op's output, the loss and, by autograd with
d(loss) = 1, the gradient of every tensor named in `grads`, and writes them to
<dir>/C.ref.y.npy, C.ref.loss.npy and C.ref.grad.<name>.npy. One process
handles every case so torch is imported once.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_ops import ACTS, as_list, crop_and_resize, parse_value  # noqa: E402  (shared with the per-kernel test)

torch.set_grad_enabled(True)
DT = torch.float64


class Case:
    def __init__(self, d, name, args, grads):
        self.d, self.name, self.a, self.grads = d, name, args, grads
        self.t_ = {}

    def path(self, key):
        return f"{self.d}/{self.name}.{key}.npy"

    def has(self, key):
        return os.path.exists(self.path(key))

    def t(self, key):
        """The tensor `key` (requires_grad when its gradient is wanted)."""
        if key not in self.t_:
            t = torch.from_numpy(np.load(self.path(key))).to(DT)
            self.t_[key] = t.requires_grad_(key in self.grads)
        return self.t_[key]

    def opt(self, key):
        return self.t(key) if self.has(key) else None

    def save(self, key, t):
        a = t.detach().to(torch.float32).numpy()
        np.save(f"{self.d}/{self.name}.ref.{key}.npy", np.ascontiguousarray(a, dtype=np.float32))


def conv2d(c):
    a = c.a
    t, l, bo, r = as_list(a["pad"])
    # PyTorch pads symmetrically only; an explicit zero pad gives the 4-sided one.
    return F.conv2d(F.pad(c.t("x"), (l, r, t, bo)), c.t("conv.weight"), c.opt("conv.bias"),
                    stride=as_list(a["stride"], 2), dilation=as_list(a["dil"], 2),
                    groups=a["groups"])


def conv_transpose2d(c):
    a = c.a
    t, l, _, _ = as_list(a["pad"])
    # 4-sided padding of a transposed conv crops its full (unpadded) output.
    full = F.conv_transpose2d(c.t("x"), c.t("conv.weight"), c.opt("conv.bias"),
                              stride=as_list(a["stride"], 2),
                              output_padding=as_list(a["opad"], 2), groups=a["groups"],
                              dilation=as_list(a["dil"], 2))
    oh, ow = a["out"]
    return full[:, :, t:t + oh, l:l + ow]


def batchnorm(c):
    a = c.a
    rm, rv = c.t("bn.running_mean").clone(), c.t("bn.running_var").clone()
    return F.batch_norm(c.t("x"), rm, rv, c.t("bn.weight"), c.t("bn.bias"),
                        training=a["mode"] == 0, momentum=a["momentum"], eps=a["eps"])


def act(c):
    return ACTS[c.a["kind"]](c.t("x"), c.a["alpha"])


def pool(c):
    a = c.a
    x = c.t("x")
    t, l, bo, r = as_list(a["pad"])
    assert t == bo and l == r, "PyTorch pooling pads symmetrically"
    k, s = as_list(a["kernel"], 2), as_list(a["stride"], 2)
    if a["kind"] == 0:
        return F.max_pool2d(x, k, s, (t, l), ceil_mode=bool(a["ceil"]))
    return F.avg_pool2d(x, k, s, (t, l), ceil_mode=bool(a["ceil"]),
                        count_include_pad=bool(a["cip"]))


def concat(c):
    return torch.cat([c.t(f"x{i}") for i in range(c.a["n"])], c.a["axis"])


def slice_(c):
    idx = tuple(slice(s, e) for s, e in zip(as_list(c.a["start"]), as_list(c.a["end"])))
    return c.t("x")[idx]


def pad(c):
    before, after = as_list(c.a["before"]), as_list(c.a["after"])
    spec = []
    for bfr, aft in reversed(list(zip(before, after))):
        spec += [bfr, aft]
    return F.pad(c.t("x"), spec)


def upsample(c):
    a = c.a
    size = tuple(as_list(a["size"]))
    if a["mode"] == 0:
        return F.interpolate(c.t("x"), size=size, mode="nearest")
    return F.interpolate(c.t("x"), size=size, mode="bilinear", align_corners=bool(a["align"]))


def focal(x, t, alpha, gamma):
    try:
        import torchvision.ops
        return torchvision.ops.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma,
                                                  reduction="mean")
    except ImportError:  # the same formula as torchvision's
        p = torch.sigmoid(x)
        ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * ((1 - p_t) ** gamma)
        if alpha >= 0:
            loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
        return loss.mean()


def loss(c):
    a = c.a
    x, t = c.t("x"), c.t("target")
    kind = a["kind"]
    if kind == 0:
        tt = t.long() if t.dim() == x.dim() - 1 else t
        return F.cross_entropy(x, tt, label_smoothing=a["smoothing"])
    if kind == 1:
        return F.binary_cross_entropy_with_logits(x, t)
    if kind == 2:
        return focal(x, t, a["alpha"], a["gamma"])
    if kind == 3:
        return F.l1_loss(x, t)
    if kind == 4:
        return F.smooth_l1_loss(x, t, beta=a["beta"])
    return F.mse_loss(x, t)


def roi_align(c):
    import torchvision.ops
    a = c.a
    out = as_list(a["out"], 2)
    if a["mode"] == 1:
        return crop_and_resize(c.t("x"), c.t("boxes"), out, as_list(a["image"], 2))
    # float32 as deft samples (the adaptive sample count is a float ceil)
    y = torchvision.ops.roi_align(c.t("x").float(), c.t("boxes").float(), out, spatial_scale=a["scale"],
                                  sampling_ratio=a["sr"], aligned=bool(a["aligned"]))
    return y.to(DT)


OPS = {
    "roi_align": roi_align,
    "conv2d": conv2d, "conv_transpose2d": conv_transpose2d, "batchnorm": batchnorm, "act": act,
    "pool": pool, "global_avgpool": lambda c: F.adaptive_avg_pool2d(c.t("x"), 1),
    "add": lambda c: c.t("a") + c.t("b"), "mul": lambda c: c.t("a") * c.t("b"),
    "mul_self": lambda c: c.t("a") * c.t("a"),
    "concat": concat, "slice": slice_, "pad": pad,
    "reshape": lambda c: c.t("x").reshape(as_list(c.a["shape"])),
    "transpose": lambda c: c.t("x").permute(as_list(c.a["perm"])),
    "upsample": upsample,
    "linear": lambda c: F.linear(c.t("x"), c.t("fc.weight"), c.opt("fc.bias")),
    # deft's mask (from its counter-based RNG) is given: y = x * mask
    "dropout": lambda c: c.t("x") * c.t("mask"),
    "softmax": lambda c: torch.softmax(c.t("x"), c.a["axis"]),
    "loss": loss,
}


def run_case(d, name, op, args, grads):
    c = Case(d, name, args, grads)
    y = OPS[op](c)
    l = y.reshape(()) if op == "loss" else F.mse_loss(y, c.t("target"))
    l.backward()
    c.save("y", y)
    c.save("loss", l.reshape(1))
    for g in grads:
        t = c.t(g)
        c.save(f"grad.{g}", t.grad if t.grad is not None else torch.zeros_like(t))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[2]
    failed = 0
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            name, op = parts[0], parts[1]
            kv = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            grads = [g for g in kv.pop("grads", "").split(",") if g]
            args = {k: parse_value(v) for k, v in kv.items()}
            try:
                run_case(d, name, op, args, grads)
            except Exception as e:  # report and go on: the C side flags the missing files
                print(f"gen_autograd.py: case {name} ({op}) failed: {e!r}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

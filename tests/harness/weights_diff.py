#!/usr/bin/python3
"""weights_diff.py A B [--tiny T] [--min-tensors N]: how far the weights of checkpoint A are from
B's, for the data-parallel tests. Per tensor max|a-b| / max|b|; tensors still at rounding level
(max|b| < T, default 1e-6: batch-norm biases that get ~1e-12 gradients) are compared absolutely,
their relative error being that of the summation order. Prints one line:
    worst REL NAME tiny_abs ABS tensors N state {train_state}
"""
import argparse, json, struct
import numpy as np


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    d = b[8 + n:]
    t = {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], np.float32)
         for k, v in h.items() if k != "__metadata__" and not k.startswith("__optim__")}
    return t, h["__metadata__"]["train_state"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tiny", type=float, default=1e-6)
    ap.add_argument("--min-tensors", type=int, default=20)
    o = ap.parse_args()
    (a, st), (b, _) = load(o.a), load(o.b)
    assert a.keys() == b.keys() and len(a) > o.min_tensors, "different tensors"
    worst, name, tiny = 0.0, "", 0.0
    for k in a:
        m = float(np.abs(b[k]).max())
        d = float(np.abs(a[k] - b[k]).max())
        if m < o.tiny or m == 0:
            tiny = max(tiny, d)
            continue
        if d / m > worst:
            worst, name = d / m, k
    print(f"worst {worst:.3e} {name} tiny_abs {tiny:.1e} tensors {len(a)} state {st}")


if __name__ == "__main__":
    main()

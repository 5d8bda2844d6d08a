#!/usr/bin/env python3
"""PyTorch side of bench/yolo_speed.sh: the same YOLOv4 networks (tests/ref/yolo_v4_torch.py,
the definition deft's parity test checks against), float32, CPU.

usage: yolo_torch_bench.py train|infer ARCH SIZE BATCH STEPS WARMUP THREADS CLASSES
ARCH: yolo_v4_tiny or yolo_v4_<backbone>. Training: SGD (momentum 0.9) on the L2 loss of
every head against zeros (summed per-head means), as `deft bench train --arch yolo_v4_*`.
Prints one JSON line like deft bench.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from yolo_v4_torch import YoloV4  # noqa: E402


def main():
    mode, arch, size, batch, steps, warmup, threads, classes = sys.argv[1:9]
    size, batch, steps, warmup, threads = map(int, (size, batch, steps, warmup, threads))
    torch.set_num_threads(threads)
    backbone = "cspdarknet_tiny" if arch == "yolo_v4_tiny" else arch[len("yolo_v4_"):]
    tiny = backbone == "cspdarknet_tiny"
    m = YoloV4(backbone, int(classes), anchors=(3, 3) if tiny else (3, 3, 3))
    x = torch.randn(batch, 3, size, size)
    lat = []
    if mode == "train":
        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=0.001, momentum=0.9)
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = sum(F.mse_loss(h, torch.zeros_like(h)) for h in m(x))
            loss.backward()
            opt.step()
            lat.append(time.perf_counter() - t0)
    else:
        m.eval()
        with torch.no_grad():
            for i in range(warmup + steps):
                t0 = time.perf_counter()
                m(x)
                lat.append(time.perf_counter() - t0)
    lat = sorted(lat[warmup:])
    med = lat[len(lat) // 2]
    print(json.dumps({"tool": "pytorch", "mode": mode, "arch": arch, "size": size, "batch": batch,
                      "threads": threads, "steps": steps, "images_per_s": round(batch / med, 2),
                      "latency_ms": round(med * 1e3, 2), "min_ms": round(lat[0] * 1e3, 2),
                      "max_ms": round(lat[-1] * 1e3, 2), "torch": torch.__version__}))


if __name__ == "__main__":
    main()

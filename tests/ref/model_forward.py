#!/usr/bin/env python3
"""model_forward.py - torchvision forward outputs for tests/models/test_model_forward.c.

Usage: model_forward.py DIR ARCH:CLASSES:SIZE ...

For each request writes DIR/ARCH/ (float32 .npy files):
    <state_dict key>.npy    every parameter and buffer (less num_batches_tracked)
    x.npy                   input [2, 3, SIZE, SIZE], N(0, 1)
    y.npy                   the eval-mode output [2, CLASSES]

Weights are torchvision's own random initialization (seeded), with BN running
statistics and affine parameters randomized too so eval-mode BN is not the identity.
"""
import os
import sys

import numpy as np
import torch
import torchvision

EXTRA = {"googlenet": dict(aux_logits=False, transform_input=False, init_weights=True)}


def main():
    torch.set_num_threads(2)
    out = sys.argv[1]
    for req in sys.argv[2:]:
        arch, classes, size = req.split(":")
        torch.manual_seed(0)
        m = getattr(torchvision.models, arch)(num_classes=int(classes), **EXTRA.get(arch, {}))
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.normal_(0, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.normal_(0, 0.1)
        m.eval()
        d = os.path.join(out, arch)
        os.makedirs(d, exist_ok=True)
        for k, t in m.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                np.save(os.path.join(d, k + ".npy"), t.detach().numpy().astype(np.float32))
        x = torch.randn(2, 3, int(size), int(size))
        with torch.no_grad():
            y = m(x)
        np.save(os.path.join(d, "x.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(d, "y.npy"), y.numpy().astype(np.float32))


if __name__ == "__main__":
    main()

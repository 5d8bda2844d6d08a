#!/usr/bin/env python3
"""model_manifest.py - torchvision's view of a model, for tests/models/test_model_builders.c.

Usage: model_manifest.py ARCH:CLASSES[:flops] ...

For each request prints, one item per line (whitespace separated, easy to parse in C):

    model <arch> <classes> <size>           size: the input height = width used below (224)
    param <name> <ndim> <d0> <d1> ...       trainable parameters (state_dict order)
    state <name> <ndim> <d0> ...            buffers, except num_batches_tracked
    out <module> <ndim> <d0> ...            output shape of every Conv2d/Linear (only with :flops)
    total <params>
    flops <2*MACs of Conv2d + Linear at 1x3x224x224>   (only with :flops)
    end

Why a forward pass (on the meta device) for FLOPs: hooks see the real output shapes, so strides and
paddings are checked too, not only parameter shapes.
"""
import sys

import torch
import torchvision


def dims(shape):
    return "%d %s" % (len(shape), " ".join(str(int(d)) for d in shape))


def no_init(tensor, *args, **kwargs):
    return tensor


# constructor arguments beyond num_classes
EXTRA = {
    # no auxiliary classifiers, no input re-normalization, our initializer stubs
    "googlenet": dict(aux_logits=False, transform_input=False, init_weights=False),
}


def manifest(arch, classes, flops):
    m = getattr(torchvision.models, arch)(num_classes=classes, **EXTRA.get(arch, {})).eval()
    print("model %s %d 224" % (arch, classes))
    params = dict(m.named_parameters())
    for name, t in m.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        print("%s %s %s" % ("param" if name in params else "state", name, dims(t.shape)))
    print("total %d" % sum(p.numel() for p in m.parameters()))
    if flops:
        total = [0]
        outs = []

        def hook(mod, inp, out, name=None):
            if isinstance(mod, torch.nn.Conv2d):
                k = mod.weight.shape
                total[0] += 2 * out.numel() * k[1] * k[2] * k[3]
            else:
                total[0] += 2 * out.numel() * mod.in_features
            outs.append((name, tuple(out.shape)))

        for name, mod in m.named_modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                mod.register_forward_hook(lambda mo, i, o, n=name: hook(mo, i, o, n))
        with torch.no_grad():
            m.to("meta")(torch.zeros(1, 3, 224, 224, device="meta"))
        for name, shape in outs:
            print("out %s %s" % (name, dims(shape)))
        print("flops %d" % total[0])
    print("end")


def main():
    torch.set_num_threads(2)
    # Only names and shapes matter: skip the (slow) random initialization, and
    # run the FLOPs forward pass on the meta device (shapes, no arithmetic).
    for fn in ("kaiming_uniform_", "kaiming_normal_", "uniform_", "normal_", "constant_",
               "zeros_", "ones_", "trunc_normal_", "xavier_uniform_"):
        setattr(torch.nn.init, fn, no_init)
    for req in sys.argv[1:]:
        parts = req.split(":")
        manifest(parts[0], int(parts[1]) if len(parts) > 1 else 1000,
                 len(parts) > 2 and parts[2] == "flops")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

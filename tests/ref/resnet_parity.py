"""PyTorch side of test_resnet18_parity: load the weights deft wrote
(safetensors, read with json+numpy so no extra package is needed), run one
training step of torchvision's resnet18 on the same batch and write the loss
and every parameter gradient; then continue with SGD for the loss curve.
The model runs in float64: PyTorch's float32 CPU kernels are not an oracle
everywhere (on an AMD EPYC, torch 1.13's float32 gradient of layer2.0.conv2 on
this batch is 7.2e-2 of its scale away from float64, with or without mkldnn;
on an Intel Xeon it was within 1e-3), while float64 agrees with deft's
float32 backends and its double-accumulating reference backend alike.

usage: resnet_parity.py DIR STEPS  (DIR holds weights.safetensors, x.npy, y.npy)
"""
import json, struct, sys
import numpy as np
import torch, torchvision

def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n])
    data = buf[8 + n:]
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32"
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"]).copy())
    return out

def train(w, x, y, steps, dtype, d=None):
    """SGD on the batch(es) in dtype; returns the losses and the step-0 gradients
    (written as grad.<name>.npy into d when d is given)."""
    m = torchvision.models.resnet18(num_classes=int(w["fc.bias"].shape[0]))
    sd = m.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        sd[k] = w[k]
    m.load_state_dict(sd)
    m.to(dtype).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.0005, momentum=0.9)
    lossf = torch.nn.CrossEntropyLoss()
    losses, grads = [], {}
    for step in range(steps):
        xb = x[step % x.shape[0]] if x.dim() == 5 else x
        yb = y[step % y.shape[0]] if y.dim() == 2 else y
        opt.zero_grad()
        loss = lossf(m(xb.to(dtype)), yb)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            for name, p in m.named_parameters():
                grads[name] = p.grad.detach().double().clone().numpy()  # a copy: float64 .double() is the buffer itself
                if d:
                    np.save(f"{d}/grad.{name}.npy", grads[name].astype(np.float32))
        opt.step()
    return np.array(losses), grads

def main():
    d, steps = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(2)
    torch.manual_seed(0)
    w = read_safetensors(f"{d}/weights.safetensors")
    x = torch.from_numpy(np.load(f"{d}/x.npy"))
    y = torch.from_numpy(np.load(f"{d}/y.npy")).long()
    l64, g64 = train(w, x, y, steps, torch.float64, d)
    np.save(f"{d}/losses.npy", l64.astype(np.float32))
    # how far PyTorch's own float32 run lands from float64, in the test's metrics
    l32, g32 = train(w, x, y, steps, torch.float32)
    gerr = max(np.abs(g32[n] - g64[n]).max() / max(np.abs(g64[n]).max(), 1e-30) for n in g64)
    lerr = (np.abs(l32 - l64) / np.abs(l64)).max()
    np.save(f"{d}/torch32_err.npy", np.array([gerr, lerr], dtype=np.float32))

if __name__ == "__main__":
    main()

"""PyTorch side of test_resnet18_parity: load the weights deft wrote
(safetensors, read with json+numpy so no extra package is needed), run one
training step of torchvision's resnet18 on the same batch and write the loss
and every parameter gradient; then continue with SGD for the loss curve.

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

def main():
    d, steps = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(2)
    torch.manual_seed(0)
    w = read_safetensors(f"{d}/weights.safetensors")
    x = torch.from_numpy(np.load(f"{d}/x.npy"))
    y = torch.from_numpy(np.load(f"{d}/y.npy")).long()
    m = torchvision.models.resnet18(num_classes=int(w["fc.bias"].shape[0]))
    sd = m.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        sd[k] = w[k]
    m.load_state_dict(sd)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.0005, momentum=0.9)
    lossf = torch.nn.CrossEntropyLoss()
    losses = []
    for step in range(steps):
        xb = x[step % x.shape[0]] if x.dim() == 5 else x
        yb = y[step % y.shape[0]] if y.dim() == 2 else y
        opt.zero_grad()
        loss = lossf(m(xb), yb)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            for name, p in m.named_parameters():
                np.save(f"{d}/grad.{name}.npy", p.grad.detach().numpy().astype(np.float32))
            np.save(f"{d}/bn1.running_mean.npy", m.bn1.running_mean.numpy().astype(np.float32))
        opt.step()
    np.save(f"{d}/losses.npy", np.array(losses, dtype=np.float32))

main()

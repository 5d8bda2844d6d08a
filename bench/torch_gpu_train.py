#!/usr/bin/python3
"""PyTorch peer for the CUDA backend (issue 8, Must show 2): ResNet-18 training
steps on the GPU, channels_last + torch.autocast (bf16 or fp16 with GradScaler),
SGD momentum 0.9, random input, 10-class head. Prints one JSON line.

  /usr/bin/python3 bench/torch_gpu_train.py --batch 64 --size 224 --amp bf16
"""
import argparse, json, time
import torch, torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--steps", type=int, default=30)
ap.add_argument("--warmup", type=int, default=10)
ap.add_argument("--amp", choices=["off", "bf16", "fp16"], default="bf16")
a = ap.parse_args()
if not torch.cuda.is_available():
    raise SystemExit("torch_gpu_train.py: this torch has no CUDA device")
dev = torch.device("cuda")
m = torchvision.models.resnet18(weights=None, num_classes=10).to(dev).to(memory_format=torch.channels_last)
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(a.batch, 3, a.size, a.size, device=dev).to(memory_format=torch.channels_last)
y = torch.arange(a.batch, device=dev) % 10
dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.amp)
scaler = torch.cuda.amp.GradScaler(enabled=a.amp == "fp16")
def step():
    with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = torch.nn.functional.cross_entropy(m(x), y)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
for _ in range(a.warmup): step()
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(a.steps): step()
torch.cuda.synchronize()
dt = time.perf_counter() - t0
print(json.dumps({"tool": "torch", "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0),
                  "amp": a.amp, "batch": a.batch, "size": a.size, "images_per_s": round(a.steps * a.batch / dt, 1)}))
